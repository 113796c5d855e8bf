//! The pre-flight gate: may piimage write into this ext4 filesystem?
//!
//! Runs before any write, from our own decoding of the superblock
//! (<https://docs.kernel.org/filesystems/ext4/super.html>) and of the journal superblock
//! (`journal.html`), independently of the writer crate. It refuses, naming the reason:
//!
//! - a filesystem that was not cleanly unmounted (`s_state` without VALID, or with ERROR), whose
//!   journal needs replaying (`needs_recovery`, or a journal superblock with `s_start != 0`), whose
//!   journal recorded an error (`s_errno`), or that has orphan inodes pending (`s_last_orphan`,
//!   `orphan_present`): all of these want `e2fsck -f` first, not an offline editor;
//! - every feature outside a whitelist, the features of the official Raspberry Pi OS and Ubuntu
//!   images (see `docs/ext4-writer.md`): the writer would leave structures it
//!   does not maintain (quota, project, verity, mmp, ...) stale, or does not understand them
//!   (inline_data, encrypt, casefold, meta_bg, bigalloc, large_dir, unknown bits);
//! - block sizes other than 1, 2 and 4 KiB (what the writer implements);
//! - journal features the writer cannot produce (async commit, fast commit, unknown bits);
//! - a superblock field out of the range e2fsck accepts ([`super::sanity`]), and block or inode
//!   bitmaps and group descriptors whose checksums do not match (the writer allocates from
//!   them: a stale bitmap would make it hand out blocks that files still use).

use super::features::{FeatureSet, feature};
use super::journal::{self, JournalReadError, JournalSuperblock, read_journal_superblock};
use super::read::read_superblock;
use super::superblock::{Ext4Error, Superblock};
use crate::disk::{Storage, Window};

/// The features the writer keeps consistent: those of the official Raspberry Pi OS and Ubuntu
/// images (`docs/ext4-writer.md`).
pub const ALLOWED: FeatureSet = feature::HAS_JOURNAL
    .or(feature::EXT_ATTR)
    .or(feature::RESIZE_INODE)
    .or(feature::DIR_INDEX)
    .or(feature::SPARSE_SUPER2)
    .or(feature::ORPHAN_FILE)
    .or(feature::FILETYPE)
    .or(feature::EXTENT)
    .or(feature::BIT64)
    .or(feature::FLEX_BG)
    .or(feature::METADATA_CSUM_SEED)
    .or(feature::SPARSE_SUPER)
    .or(feature::LARGE_FILE)
    .or(feature::HUGE_FILE)
    .or(feature::UNINIT_BG)
    .or(feature::DIR_NLINK)
    .or(feature::EXTRA_ISIZE)
    .or(feature::METADATA_CSUM);

/// Feature bits that are states, checked by [`check_state`] rather than whitelisted.
pub const STATES: FeatureSet = feature::NEEDS_RECOVERY.or(feature::ORPHAN_PRESENT);

/// Journal incompat features the writer produces correctly.
const ALLOWED_JOURNAL_INCOMPAT: u32 = journal::JOURNAL_INCOMPAT_REVOKE
    | journal::JOURNAL_INCOMPAT_64BIT
    | journal::JOURNAL_INCOMPAT_CSUM_V2
    | journal::JOURNAL_INCOMPAT_CSUM_V3;

/// Why piimage refuses to write into an ext4 filesystem.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// A superblock field is out of range.
    #[error(
        "the ext4 superblock is damaged: {} is {} (must be {}); run `e2fsck -f` on the image first",
        .0.field, .0.value, .0.rule
    )]
    Field(super::sanity::BadField),
    /// A group's metadata does not check out.
    #[error(
        "the ext4 filesystem is damaged: {what} of block group {group} {why}; run `e2fsck -f` on the image first"
    )]
    Group {
        /// Which structure (`the block bitmap`, `the descriptor`).
        what: &'static str,
        /// The group.
        group: u32,
        /// What is wrong.
        why: String,
    },
    /// An inode claims blocks the bitmaps do not account for.
    #[error(
        "the ext4 filesystem is damaged: inode {ino}: {why}; run `e2fsck -f` on the image first"
    )]
    Inode {
        /// The inode number.
        ino: u64,
        /// What is wrong.
        why: String,
    },
    /// The superblock could not be read or decoded.
    #[error(transparent)]
    Superblock(#[from] Ext4Error),
    /// A feature outside the whitelist is set.
    #[error(
        "the ext4 filesystem uses the feature `{feature}`, which piimage cannot write safely \
         (supported: the features of the official Raspberry Pi OS and Ubuntu images)"
    )]
    UnsupportedFeature {
        /// The feature, as `dumpe2fs -h` names it (unknown bits as `FEATURE_I31` etc.).
        feature: String,
    },
    /// The journal uses a feature the writer cannot produce.
    #[error("the ext4 journal uses the feature `{feature}`, which piimage cannot write")]
    UnsupportedJournalFeature {
        /// The journal feature, as e2fsprogs names it.
        feature: String,
    },
    /// The block size is one the writer does not implement.
    #[error("the ext4 block size {0} is not supported for writing (1024, 2048 or 4096)")]
    BlockSize(u32),
    /// `s_state` lacks VALID_FS.
    #[error("the ext4 filesystem was not cleanly unmounted; run `e2fsck -f` on the image first")]
    NotClean,
    /// `s_state` has ERROR_FS.
    #[error("the ext4 filesystem has recorded errors; run `e2fsck -f` on the image first")]
    HasErrors,
    /// `needs_recovery` is set.
    #[error(
        "the ext4 filesystem has the feature `needs_recovery` (its journal must be replayed); \
         run `e2fsck -f` on the image first"
    )]
    NeedsRecovery,
    /// The journal holds transactions.
    #[error(
        "the ext4 journal is not empty (s_start {start}, sequence {sequence}); run `e2fsck -f` \
         on the image first"
    )]
    JournalDirty {
        /// `s_start`.
        start: u32,
        /// `s_sequence`.
        sequence: u32,
    },
    /// The journal recorded an error.
    #[error("the ext4 journal recorded error {errno}; run `e2fsck -f` on the image first")]
    JournalError {
        /// `s_errno`.
        errno: i32,
    },
    /// The filesystem claims a journal the gate cannot find.
    #[error("the ext4 filesystem has `has_journal` but no journal inode")]
    MissingJournal,
    /// The journal superblock could not be read.
    #[error(transparent)]
    Journal(#[from] JournalReadError),
    /// Orphan inodes are pending.
    #[error(
        "the ext4 filesystem has orphan inodes pending (s_last_orphan {last_orphan}, \
         orphan_present {orphan_present}); run `e2fsck -f` on the image first"
    )]
    Orphans {
        /// Head of the orphan list.
        last_orphan: u32,
        /// The `orphan_present` ro_compat bit.
        orphan_present: bool,
    },
}

/// The first feature of `features` outside the whitelist [`ALLOWED`], in `dumpe2fs` order.
/// `needs_recovery` is not a feature in this sense and is reported separately.
pub fn refused_feature(features: &FeatureSet) -> Option<String> {
    first_outside(features, ALLOWED)
}

/// The first feature of `features` (in `dumpe2fs` order, unknown bits as `FEATURE_I31`) not
/// in `allowed`; the [`STATES`] are checked by [`check_state`] instead.
pub fn first_outside(features: &FeatureSet, allowed: FeatureSet) -> Option<String> {
    features
        .minus(allowed.or(STATES))
        .names()
        .into_iter()
        .next()
}

/// Checks everything the superblock alone can tell.
pub fn check_superblock(sb: &Superblock) -> Result<(), GateError> {
    if let Some(feature) = refused_feature(&sb.features) {
        return Err(GateError::UnsupportedFeature { feature });
    }
    if !matches!(sb.block_size, 1024 | 2048 | 4096) {
        return Err(GateError::BlockSize(sb.block_size));
    }
    check_state(sb)
}

/// Checks the superblock's state: nothing to replay, no recorded error, cleanly unmounted, no
/// orphan pending.
pub fn check_state(sb: &Superblock) -> Result<(), GateError> {
    if sb.needs_recovery() {
        return Err(GateError::NeedsRecovery);
    }
    if sb.state.has_errors() {
        return Err(GateError::HasErrors);
    }
    if !sb.state.is_valid() || sb.state.orphans_recovering() {
        return Err(GateError::NotClean);
    }
    if sb.has_orphans() {
        return Err(GateError::Orphans {
            last_orphan: sb.last_orphan,
            orphan_present: sb.features.contains(feature::ORPHAN_PRESENT),
        });
    }
    Ok(())
}

/// Checks the journal superblock: empty, no recorded error, no feature the writer lacks.
pub fn check_journal(jsb: &JournalSuperblock) -> Result<(), GateError> {
    let refused = JournalSuperblock {
        feature_incompat: jsb.feature_incompat & !ALLOWED_JOURNAL_INCOMPAT,
        ..*jsb
    };
    if let Some(feature) = refused.incompat_names().into_iter().next() {
        return Err(GateError::UnsupportedJournalFeature { feature });
    }
    check_journal_state(jsb)
}

/// Checks that the journal is empty and recorded no error.
pub fn check_journal_state(jsb: &JournalSuperblock) -> Result<(), GateError> {
    if !jsb.is_clean() {
        return Err(GateError::JournalDirty {
            start: jsb.start,
            sequence: jsb.sequence,
        });
    }
    if jsb.errno != 0 {
        return Err(GateError::JournalError { errno: jsb.errno });
    }
    Ok(())
}

/// The state checks alone, whatever the features ([`check_state`], then an empty journal
/// without a recorded error): what any change to the filesystem needs, such as growing it.
pub fn check_clean<S: Storage>(window: &Window<S>, sb: &Superblock) -> Result<(), GateError> {
    check_state(sb)?;
    match read_journal_superblock(window, sb)? {
        Some(jsb) => check_journal_state(&jsb),
        None if sb.features.contains(feature::HAS_JOURNAL) => Err(GateError::MissingJournal),
        None => Ok(()),
    }
}

/// The superblock's field ranges ([`super::sanity`]).
pub fn check_fields<S: Storage>(window: &Window<S>, sb: &Superblock) -> Result<(), GateError> {
    let mut raw = [0u8; super::superblock::SUPERBLOCK_SIZE];
    window
        .read_at(super::superblock::SUPERBLOCK_OFFSET, &mut raw)
        .map_err(Ext4Error::from)?;
    super::sanity::check_fields(&raw, sb).map_err(GateError::Field)
}

/// Runs the whole gate on the filesystem in `window`; returns its superblock when writing is
/// safe.
pub fn check_writable<S: Storage>(window: &Window<S>) -> Result<Superblock, GateError> {
    let sb = read_superblock(window)?;
    check_superblock(&sb)?;
    check_fields(window, &sb)?;
    super::verify::check_groups(window, &sb)?;
    match read_journal_superblock(window, &sb)? {
        Some(jsb) => check_journal(&jsb)?,
        None if sb.features.contains(feature::HAS_JOURNAL) => {
            return Err(GateError::MissingJournal);
        }
        None => {}
    }
    Ok(sb)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::ext4::superblock::FsState;

    /// A pi-gen bookworm root (^64bit,^huge_file, Debian 12 defaults).
    fn pi_gen() -> FeatureSet {
        FeatureSet {
            compat: 0x4 | 0x8 | 0x10 | 0x20,
            incompat: 0x2 | 0x40 | 0x200,
            ro_compat: 0x1 | 0x2 | 0x20 | 0x40 | 0x400,
        }
    }

    fn sb_with(features: FeatureSet) -> Superblock {
        crate::fs::ext4::superblock::test_superblock(features)
    }

    #[test]
    fn official_mixes_pass() {
        let mut f = pi_gen();
        check_superblock(&sb_with(f)).unwrap();
        // Ubuntu 25.10 / trixie: + 64bit, huge_file, orphan_file, metadata_csum_seed.
        f.incompat |= 0x80 | 0x2000;
        f.ro_compat |= 0x8;
        f.compat |= 0x1000;
        check_superblock(&sb_with(f)).unwrap();
    }

    #[test]
    fn refuses_by_name() {
        let cases: &[(&str, u32, u32, u32)] = &[
            ("inline_data", 0, 0x8000, 0),
            ("encrypt", 0, 0x10000, 0),
            ("casefold", 0, 0x20000, 0),
            ("meta_bg", 0, 0x10, 0),
            ("journal_dev", 0, 0x8, 0),
            ("mmp", 0, 0x100, 0),
            ("large_dir", 0, 0x4000, 0),
            ("bigalloc", 0, 0, 0x200),
            ("quota", 0, 0, 0x100),
            ("project", 0, 0, 0x2000),
            ("verity", 0, 0, 0x8000),
            ("fast_commit", 0x400, 0, 0),
            ("FEATURE_I31", 0, 1 << 31, 0),
            ("FEATURE_C20", 1 << 20, 0, 0),
        ];
        for &(name, c, i, r) in cases {
            let mut f = pi_gen();
            f.compat |= c;
            f.incompat |= i;
            f.ro_compat |= r;
            let e = check_superblock(&sb_with(f)).unwrap_err();
            match &e {
                GateError::UnsupportedFeature { feature } => assert_eq!(feature, name),
                other => panic!("{name}: {other:?}"),
            }
            assert!(e.to_string().contains(&format!("`{name}`")), "{e}");
        }
    }

    #[test]
    fn refuses_unclean_states() {
        let mut sb = sb_with(pi_gen());
        sb.features.incompat |= 0x4;
        assert!(matches!(
            check_superblock(&sb),
            Err(GateError::NeedsRecovery)
        ));
        let mut sb = sb_with(pi_gen());
        sb.state = FsState(0);
        assert!(matches!(check_superblock(&sb), Err(GateError::NotClean)));
        sb.state = FsState(3);
        assert!(matches!(check_superblock(&sb), Err(GateError::HasErrors)));
        let mut sb = sb_with(pi_gen());
        sb.last_orphan = 12;
        assert!(matches!(
            check_superblock(&sb),
            Err(GateError::Orphans { .. })
        ));
        let mut sb = sb_with(pi_gen());
        sb.features.ro_compat |= 0x10000;
        assert!(matches!(
            check_superblock(&sb),
            Err(GateError::Orphans { .. })
        ));
        let mut sb = sb_with(pi_gen());
        sb.block_size = 65536;
        assert!(matches!(
            check_superblock(&sb),
            Err(GateError::BlockSize(65536))
        ));
    }

    #[test]
    fn journal_checks() {
        let j = |start, errno, incompat| JournalSuperblock {
            block_type: 4,
            sequence: 3,
            start,
            errno,
            feature_incompat: incompat,
        };
        check_journal(&j(0, 0, 0x1 | 0x2 | 0x10)).unwrap();
        assert!(matches!(
            check_journal(&j(1, 0, 0)),
            Err(GateError::JournalDirty {
                start: 1,
                sequence: 3
            })
        ));
        assert!(matches!(
            check_journal(&j(0, -5, 0)),
            Err(GateError::JournalError { errno: -5 })
        ));
        let e = check_journal(&j(0, 0, 0x20)).unwrap_err();
        assert!(e.to_string().contains("journal_fast_commit"), "{e}");
    }
}
