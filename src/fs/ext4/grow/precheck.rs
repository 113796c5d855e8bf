//! What growth accepts, checked before anything is written: features, state, layout, and the
//! descriptors' checksums. Everything here refuses with a named reason (see the parent module).

use crate::disk::{Storage, Window};
use crate::fs::bytes::le16;
use crate::fs::ext4::features::{FeatureSet, INCOMPAT_64BIT, feature};
use crate::fs::ext4::gate::{self, GateError};
use crate::fs::ext4::group_desc::{DescCsum, GroupDesc, GroupLayout, csum_seed};
use crate::fs::ext4::journal::JournalReadError;
use crate::fs::ext4::superblock::{Ext4Error, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE, Superblock};

/// Features growth keeps consistent (`needs_recovery` and `orphan_present` are states, refused
/// apart): the writer's, but `sparse_super2` (its backup layout is not moved).
const GROW: FeatureSet = gate::ALLOWED.minus(feature::SPARSE_SUPER2);

/// The filesystem as found, checked.
pub(super) struct Loaded {
    pub(super) raw: [u8; SUPERBLOCK_SIZE],
    pub(super) sb: Superblock,
    pub(super) layout: GroupLayout,
    pub(super) csum: DescCsum,
    /// Bitmap and inode checksums (`metadata_csum`).
    pub(super) metadata_csum: bool,
    pub(super) seed: u32,
    pub(super) resize_inode: bool,
    /// The descriptors, `group_count * desc_size` bytes.
    pub(super) gdt: Vec<u8>,
}

impl Loaded {
    /// Reads and checks the superblock, the state, the layout and the descriptors.
    pub(super) fn read<S: Storage>(win: &Window<S>) -> Result<Self, Ext4Error> {
        let mut raw = [0u8; SUPERBLOCK_SIZE];
        win.read_at(SUPERBLOCK_OFFSET, &mut raw)?;
        let sb = Superblock::from_bytes(&raw)?;
        check_features(&sb)?;
        // Before anything else is read: a shorter window may cut the filesystem.
        let bs = u64::from(sb.block_size);
        if sb.blocks_count > win.len() / bs {
            return Err(super::geometry::shrinking(win.len() / bs, sb.blocks_count));
        }
        check_state(win, &sb)?;
        crate::fs::ext4::sanity::check_fields(&raw, &sb).map_err(|f| Ext4Error::NotClean {
            reason: GateError::Field(f).to_string(),
        })?;
        let layout = GroupLayout::new(&sb, &raw)?;
        check_layout(&sb, &layout)?;
        let resize_inode = sb.features.contains(feature::RESIZE_INODE);
        if !resize_inode && layout.reserved_gdt_blocks != 0 {
            return Err(Ext4Error::Corrupt(format!(
                "{} reserved descriptor blocks without resize_inode",
                layout.reserved_gdt_blocks
            )));
        }
        let csum = DescCsum::of(&sb);
        let len = usize::try_from(layout.group_count)
            .ok()
            .and_then(|n| n.checked_mul(layout.desc_size))
            .ok_or_else(|| Ext4Error::Corrupt("descriptor table too large".into()))?;
        let mut gdt = vec![0u8; len];
        win.read_at(layout.gdt_offset(), &mut gdt)?;
        for (g, d) in (0u32..).zip(gdt.chunks_exact(layout.desc_size)) {
            let stored = le16(d, 0x1E);
            if csum.enabled() && csum.compute(g, d) != stored {
                return Err(Ext4Error::Corrupt(format!(
                    "group {g} descriptor checksum {stored:04x} does not match"
                )));
            }
        }
        Ok(Self {
            raw,
            metadata_csum: layout.metadata_csum,
            seed: csum_seed(&sb),
            sb,
            layout,
            csum,
            resize_inode,
            gdt,
        })
    }

    /// The old descriptor of group `g`.
    pub(super) fn desc(&self, g: u32) -> Result<GroupDesc, Ext4Error> {
        let ds = self.layout.desc_size;
        let at = usize::try_from(g).unwrap_or(usize::MAX).saturating_mul(ds);
        self.gdt
            .get(at..at.saturating_add(ds))
            .map(|raw| GroupDesc::from_bytes(raw, ds))
            .ok_or_else(|| Ext4Error::Corrupt(format!("no descriptor for group {g}")))
    }
}

fn check_features(sb: &Superblock) -> Result<(), Ext4Error> {
    if let Some(feature) = gate::first_outside(&sb.features, GROW) {
        return Err(Ext4Error::Unsupported { feature });
    }
    if !sb.features.contains(feature::SPARSE_SUPER) {
        return Err(Ext4Error::Unsupported {
            feature: "^sparse_super".into(),
        });
    }
    Ok(())
}

/// The gate's state checks ([`gate::check_clean`]), shared with the writer; what they refuse
/// becomes [`Ext4Error::NotClean`].
fn check_state<S: Storage>(win: &Window<S>, sb: &Superblock) -> Result<(), Ext4Error> {
    gate::check_clean(win, sb).map_err(|e| match e {
        GateError::Superblock(e) => e,
        GateError::Journal(JournalReadError::Io(e)) => Ext4Error::Io(e),
        GateError::Journal(JournalReadError::Corrupt(m)) => Ext4Error::Corrupt(m),
        GateError::MissingJournal => Ext4Error::Unsupported {
            feature: "has_journal without a journal inode (external journal)".into(),
        },
        other => Ext4Error::NotClean {
            reason: other.to_string(),
        },
    })
}

fn check_layout(sb: &Superblock, l: &GroupLayout) -> Result<(), Ext4Error> {
    let unsupported = |feature: String| Err(Ext4Error::Unsupported { feature });
    if let Some(why) = l.unsupported {
        return unsupported(why.into());
    }
    let bs = sb.block_size;
    if !matches!(bs, 1024 | 2048 | 4096) {
        return unsupported(format!("block size {bs}"));
    }
    if sb.rev_level < 1 {
        return unsupported("revision 0 (no dynamic inode size)".into());
    }
    let bits = bs * 8;
    let bpg = sb.blocks_per_group;
    if bpg > bits || !bpg.is_multiple_of(8) {
        return unsupported(format!("{bpg} blocks per group"));
    }
    let ipg = sb.inodes_per_group;
    if ipg > bits || !ipg.is_multiple_of(8) {
        return unsupported(format!("{ipg} inodes per group"));
    }
    let want = if sb.features.incompat & INCOMPAT_64BIT != 0 {
        64
    } else {
        32
    };
    if l.desc_size != want {
        return unsupported(format!("descriptor size {}", l.desc_size));
    }
    if l.first_data_block != u64::from(bs == 1024) {
        return Err(Ext4Error::Corrupt(format!(
            "first data block {} with {bs}-byte blocks",
            l.first_data_block
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::ext4::features::FeatureSet;
    use crate::fs::ext4::superblock::FsState;

    fn sb(compat: u32, incompat: u32, ro_compat: u32) -> Superblock {
        let mut sb = crate::fs::ext4::superblock::test_superblock(FeatureSet {
            compat,
            incompat,
            ro_compat,
        });
        sb.journal_inum = 0;
        sb
    }

    /// Raspberry Pi OS: `^64bit` with the Debian 12 defaults.
    const PI: (u32, u32, u32) = (
        0x4 | 0x8 | 0x10 | 0x20,
        0x2 | 0x40 | 0x200,
        0x1 | 0x2 | 0x8 | 0x20 | 0x40 | 0x400,
    );

    #[test]
    fn feature_refusals_name_the_feature() {
        let (c, i, r) = PI;
        check_features(&sb(c, i, r)).unwrap();
        check_features(&sb(c | 0x1000, i | 0x80 | 0x2000, r)).unwrap();
        // (name, extra compat, extra incompat, extra ro_compat, ro_compat bits removed)
        let cases: &[(&str, u32, u32, u32, u32)] = &[
            ("meta_bg", 0, 0x10, 0, 0),
            ("bigalloc", 0, 0, 0x200, 0),
            ("sparse_super2", 0x200, 0, 0, 0),
            ("quota", 0, 0, 0x100, 0),
            ("inline_data", 0, 0x8000, 0, 0),
            ("^sparse_super", 0, 0, 0, 0x1),
        ];
        for &(name, ec, ei, er, drop) in cases {
            let e = check_features(&sb(c | ec, i | ei, (r | er) & !drop)).unwrap_err();
            match &e {
                Ext4Error::Unsupported { feature } => assert_eq!(feature, name),
                other => panic!("{name}: {other:?}"),
            }
            assert!(e.to_string().contains(&format!("`{name}`")), "{e}");
        }
    }

    #[test]
    fn unclean_states_are_refused() {
        let (c, i, r) = PI;
        let disk = crate::disk::MemStorage::new(vec![0; 4096]);
        let win = Window::new(&disk, 0, 4096).unwrap();
        // (name, state, extra incompat, last orphan, expected words in the reason)
        let cases: &[(&str, u16, u32, u32, &str)] = &[
            ("needs_recovery", 1, 0x4, 0, "needs_recovery"),
            ("errors", 3, 0, 0, "recorded errors"),
            ("not unmounted", 0, 0, 0, "not cleanly unmounted"),
            ("orphans being recovered", 5, 0, 0, "not cleanly unmounted"),
            ("orphan list", 1, 0, 12, "orphan inodes"),
        ];
        for &(name, state, incompat, orphan, words) in cases {
            let mut s = sb(c, i | incompat, r);
            s.state = FsState(state);
            s.last_orphan = orphan;
            match check_state(&win, &s) {
                Err(e @ Ext4Error::NotClean { .. }) => {
                    let m = e.to_string();
                    assert!(m.contains(words) && m.contains("e2fsck -f"), "{name}: {m}");
                }
                other => panic!("{name}: {other:?}"),
            }
        }
        // Clean; no journal to look at (has_journal off: this sketch has no journal inode).
        check_state(&win, &sb(c & !0x4, i, r)).unwrap();
        assert!(matches!(
            check_state(&win, &sb(c, i, r)),
            Err(Ext4Error::Unsupported { .. })
        ));
    }
}
