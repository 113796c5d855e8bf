//! ext4 feature flags (compat, incompat, ro_compat) and their names as e2fsprogs prints them.

use serde::Serialize;

/// Feature names, by bit, for each of the three words, as `dumpe2fs -h` spells them.
const COMPAT: &[(u32, &str)] = &[
    (0x1, "dir_prealloc"),
    (0x2, "imagic_inodes"),
    (0x4, "has_journal"),
    (0x8, "ext_attr"),
    (0x10, "resize_inode"),
    (0x20, "dir_index"),
    (0x40, "lazy_bg"),
    (0x80, "snapshot_bitmap"),
    (0x200, "sparse_super2"),
    (0x400, "fast_commit"),
    (0x800, "stable_inodes"),
    (0x1000, "orphan_file"),
];
const INCOMPAT: &[(u32, &str)] = &[
    (0x1, "compression"),
    (0x2, "filetype"),
    (0x4, "needs_recovery"),
    (0x8, "journal_dev"),
    (0x10, "meta_bg"),
    (0x40, "extent"),
    (0x80, "64bit"),
    (0x100, "mmp"),
    (0x200, "flex_bg"),
    (0x400, "ea_inode"),
    (0x1000, "dirdata"),
    (0x2000, "metadata_csum_seed"),
    (0x4000, "large_dir"),
    (0x8000, "inline_data"),
    (0x10000, "encrypt"),
    (0x20000, "casefold"),
];
const RO_COMPAT: &[(u32, &str)] = &[
    (0x1, "sparse_super"),
    (0x2, "large_file"),
    (0x4, "btree_dir"),
    (0x8, "huge_file"),
    (0x10, "uninit_bg"),
    (0x20, "dir_nlink"),
    (0x40, "extra_isize"),
    (0x80, "snapshot"),
    (0x100, "quota"),
    (0x200, "bigalloc"),
    (0x400, "metadata_csum"),
    (0x800, "replica"),
    (0x1000, "read-only"),
    (0x2000, "project"),
    (0x4000, "shared_blocks"),
    (0x8000, "verity"),
    (0x10000, "orphan_present"),
];

/// `INCOMPAT_RECOVER`: the journal holds transactions that must be replayed.
pub const INCOMPAT_RECOVER: u32 = 0x4;
/// `INCOMPAT_64BIT`.
pub const INCOMPAT_64BIT: u32 = 0x80;
/// `INCOMPAT_CSUM_SEED`: the checksum seed is stored in the superblock.
pub const INCOMPAT_CSUM_SEED: u32 = 0x2000;
/// `COMPAT_HAS_JOURNAL`.
pub const COMPAT_HAS_JOURNAL: u32 = 0x4;
/// `RO_COMPAT_METADATA_CSUM`.
pub const RO_COMPAT_METADATA_CSUM: u32 = 0x400;
/// `RO_COMPAT_ORPHAN_PRESENT`: the orphan file holds entries.
pub const RO_COMPAT_ORPHAN_PRESENT: u32 = 0x10000;

/// The three feature words of a superblock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FeatureSet {
    /// `s_feature_compat`.
    pub compat: u32,
    /// `s_feature_incompat`.
    pub incompat: u32,
    /// `s_feature_ro_compat`.
    pub ro_compat: u32,
}

/// Each named feature as a [`FeatureSet`] of one bit, so sets of features are typed values
/// (`feature::EXTENT.or(feature::FLEX_BG)`) and a misspelt feature does not compile.
pub mod feature {
    use super::FeatureSet;

    /// `has_journal`.
    pub const HAS_JOURNAL: FeatureSet = FeatureSet::compat(0x4);
    /// `ext_attr`.
    pub const EXT_ATTR: FeatureSet = FeatureSet::compat(0x8);
    /// `resize_inode`.
    pub const RESIZE_INODE: FeatureSet = FeatureSet::compat(0x10);
    /// `dir_index`.
    pub const DIR_INDEX: FeatureSet = FeatureSet::compat(0x20);
    /// `sparse_super2`.
    pub const SPARSE_SUPER2: FeatureSet = FeatureSet::compat(0x200);
    /// `orphan_file`.
    pub const ORPHAN_FILE: FeatureSet = FeatureSet::compat(0x1000);
    /// `filetype`.
    pub const FILETYPE: FeatureSet = FeatureSet::incompat(0x2);
    /// `needs_recovery` (a state: the journal must be replayed).
    pub const NEEDS_RECOVERY: FeatureSet = FeatureSet::incompat(super::INCOMPAT_RECOVER);
    /// `extent`.
    pub const EXTENT: FeatureSet = FeatureSet::incompat(0x40);
    /// `64bit`.
    pub const BIT64: FeatureSet = FeatureSet::incompat(super::INCOMPAT_64BIT);
    /// `flex_bg`.
    pub const FLEX_BG: FeatureSet = FeatureSet::incompat(0x200);
    /// `metadata_csum_seed`.
    pub const METADATA_CSUM_SEED: FeatureSet = FeatureSet::incompat(super::INCOMPAT_CSUM_SEED);
    /// `sparse_super`.
    pub const SPARSE_SUPER: FeatureSet = FeatureSet::ro_compat(0x1);
    /// `large_file`.
    pub const LARGE_FILE: FeatureSet = FeatureSet::ro_compat(0x2);
    /// `huge_file`.
    pub const HUGE_FILE: FeatureSet = FeatureSet::ro_compat(0x8);
    /// `uninit_bg` (`gdt_csum`).
    pub const UNINIT_BG: FeatureSet = FeatureSet::ro_compat(0x10);
    /// `dir_nlink`.
    pub const DIR_NLINK: FeatureSet = FeatureSet::ro_compat(0x20);
    /// `extra_isize`.
    pub const EXTRA_ISIZE: FeatureSet = FeatureSet::ro_compat(0x40);
    /// `metadata_csum`.
    pub const METADATA_CSUM: FeatureSet = FeatureSet::ro_compat(super::RO_COMPAT_METADATA_CSUM);
    /// `orphan_present` (a state: the orphan file holds entries).
    pub const ORPHAN_PRESENT: FeatureSet = FeatureSet::ro_compat(super::RO_COMPAT_ORPHAN_PRESENT);
}

/// Feature bits that have no known name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct UnknownFeatures {
    /// Unknown compat bits.
    pub compat: u32,
    /// Unknown incompat bits.
    pub incompat: u32,
    /// Unknown ro_compat bits.
    pub ro_compat: u32,
}

fn names(word: u32, table: &[(u32, &'static str)], out: &mut Vec<String>) -> u32 {
    let mut known = 0;
    for (bit, name) in table {
        if word & bit != 0 {
            out.push((*name).to_owned());
            known |= bit;
        }
    }
    word & !known
}

impl FeatureSet {
    /// The set of the given compat bits.
    pub const fn compat(bits: u32) -> Self {
        Self {
            compat: bits,
            incompat: 0,
            ro_compat: 0,
        }
    }

    /// The set of the given incompat bits.
    pub const fn incompat(bits: u32) -> Self {
        Self {
            compat: 0,
            incompat: bits,
            ro_compat: 0,
        }
    }

    /// The set of the given ro_compat bits.
    pub const fn ro_compat(bits: u32) -> Self {
        Self {
            compat: 0,
            incompat: 0,
            ro_compat: bits,
        }
    }

    /// Both sets.
    #[must_use]
    pub const fn or(self, other: Self) -> Self {
        Self {
            compat: self.compat | other.compat,
            incompat: self.incompat | other.incompat,
            ro_compat: self.ro_compat | other.ro_compat,
        }
    }

    /// The features of `self` not in `other`.
    #[must_use]
    pub const fn minus(self, other: Self) -> Self {
        Self {
            compat: self.compat & !other.compat,
            incompat: self.incompat & !other.incompat,
            ro_compat: self.ro_compat & !other.ro_compat,
        }
    }

    /// True when every feature of `f` is set.
    pub const fn contains(&self, f: Self) -> bool {
        self.compat & f.compat == f.compat
            && self.incompat & f.incompat == f.incompat
            && self.ro_compat & f.ro_compat == f.ro_compat
    }

    /// True when some feature of `f` is set.
    pub const fn intersects(&self, f: Self) -> bool {
        self.compat & f.compat != 0
            || self.incompat & f.incompat != 0
            || self.ro_compat & f.ro_compat != 0
    }

    /// Feature names in the order `dumpe2fs` lists them (compat, incompat, ro_compat), with
    /// unknown bits spelled `FEATURE_C12`, `FEATURE_I31`, `FEATURE_R20` as e2fsprogs does.
    pub fn names(&self) -> Vec<String> {
        let mut out = Vec::new();
        let unknown = self.unknown();
        names(self.compat, COMPAT, &mut out);
        push_unknown(unknown.compat, 'C', &mut out);
        names(self.incompat, INCOMPAT, &mut out);
        push_unknown(unknown.incompat, 'I', &mut out);
        names(self.ro_compat, RO_COMPAT, &mut out);
        push_unknown(unknown.ro_compat, 'R', &mut out);
        out
    }

    /// The bits with no name in our tables.
    pub fn unknown(&self) -> UnknownFeatures {
        let mut sink = Vec::new();
        UnknownFeatures {
            compat: names(self.compat, COMPAT, &mut sink),
            incompat: names(self.incompat, INCOMPAT, &mut sink),
            ro_compat: names(self.ro_compat, RO_COMPAT, &mut sink),
        }
    }
}

fn push_unknown(bits: u32, letter: char, out: &mut Vec<String>) {
    for i in 0..32 {
        if bits & (1 << i) != 0 {
            out.push(format!("FEATURE_{letter}{i}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dumpe2fs() {
        // A pi-gen bookworm root: ^64bit,^huge_file with the Debian 12 mke2fs defaults.
        let f = FeatureSet {
            compat: 0x4 | 0x8 | 0x10 | 0x20,
            incompat: 0x2 | 0x40 | 0x200,
            ro_compat: 0x1 | 0x2 | 0x20 | 0x40 | 0x400,
        };
        assert_eq!(
            f.names().join(" "),
            "has_journal ext_attr resize_inode dir_index filetype extent flex_bg \
             sparse_super large_file dir_nlink extra_isize metadata_csum"
        );
        assert!(f.contains(feature::METADATA_CSUM));
        assert!(f.intersects(feature::BIT64.or(feature::METADATA_CSUM)));
        assert!(!f.contains(feature::BIT64));
        assert_eq!(
            f.minus(feature::METADATA_CSUM).or(feature::METADATA_CSUM),
            f
        );
        assert_eq!(f.unknown(), UnknownFeatures::default());
    }

    #[test]
    fn unknown_bits_are_named_like_e2fsprogs() {
        let f = FeatureSet {
            compat: 1 << 12 | 1 << 20,
            incompat: 1 << 31,
            ro_compat: 0,
        };
        assert_eq!(f.names(), ["orphan_file", "FEATURE_C20", "FEATURE_I31"]);
        assert_eq!(f.unknown().incompat, 1 << 31);
    }
}
