//! The ext4 superblock: 1024 bytes at byte 1024 of the filesystem.
//!
//! Layout from the kernel's `super.html`. The checksum (crc32c over bytes `0..0x3FC`, stored at
//! `0x3FC`) is verified when `metadata_csum` is set. [`Superblock`] decodes; the few fields
//! piimage rewrites (the sizes and counts growth changes, [`SizeFields`]) are encoded into the raw
//! bytes, which [`seal`] then checksums.

use serde::Serialize;

use super::features::{self, FeatureSet};
use crate::fs::bytes::{halves32, le16, le32, put16, put32};

/// Byte offset of the superblock inside the filesystem.
pub const SUPERBLOCK_OFFSET: u64 = 1024;
/// Size of the superblock.
pub const SUPERBLOCK_SIZE: usize = 1024;
/// `s_magic`.
pub const EXT4_MAGIC: u16 = 0xEF53;

/// Errors decoding or reading an ext4 filesystem.
#[derive(Debug, thiserror::Error)]
pub enum Ext4Error {
    /// No ext2/3/4 magic number.
    #[error("not an ext4 filesystem: no superblock magic EF53 at byte 1080 (found {found:04x})")]
    BadMagic {
        /// What was found.
        found: u16,
    },
    /// The superblock checksum does not match.
    #[error("corrupt ext4 superblock: checksum {stored:08x} stored, {computed:08x} computed")]
    BadChecksum {
        /// The stored checksum.
        stored: u32,
        /// The computed checksum.
        computed: u32,
    },
    /// A field is out of range.
    #[error("corrupt ext4 superblock: {0}")]
    Corrupt(String),
    /// Reading failed.
    #[error("reading the ext4 filesystem")]
    Io(#[from] std::io::Error),
    /// Growing is refused: the filesystem uses a feature or layout the grower does not handle.
    #[error("cannot grow the ext4 filesystem: it uses `{feature}`, which piimage does not handle")]
    Unsupported {
        /// The feature as `dumpe2fs -h` names it (or the layout property, e.g. `block size 65536`).
        feature: String,
    },
    /// Growing is refused: the filesystem is not in a clean, checked state.
    #[error("cannot grow the ext4 filesystem: {reason}")]
    NotClean {
        /// What is wrong (e.g. `needs_recovery`), and what to do about it.
        reason: String,
    },
    /// The requested size is one offline growth (without moving blocks) cannot reach.
    #[error("cannot grow the ext4 filesystem: {0}")]
    CannotGrow(String),
    /// The ext4 reader library refused or failed.
    #[error(
        "ext4: {path}: the file is {size} bytes, more than the {} MiB piimage reads of a configuration file (damaged or hostile image?)",
        super::rootfs::MAX_WHOLE_READ >> 20
    )]
    TooLarge {
        /// The path read.
        path: String,
        /// The size its inode records.
        size: u64,
    },
    /// ext4-view could not read a path.
    #[error("ext4: {path}: {detail}")]
    Reader {
        /// Path inside the filesystem.
        path: String,
        /// What the reader said.
        detail: String,
    },
}

/// `s_state` bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FsState(pub u16);

impl FsState {
    /// Cleanly unmounted.
    pub fn is_valid(self) -> bool {
        self.0 & 0x1 != 0
    }
    /// Errors were detected.
    pub fn has_errors(self) -> bool {
        self.0 & 0x2 != 0
    }
    /// Orphans are being recovered.
    pub fn orphans_recovering(self) -> bool {
        self.0 & 0x4 != 0
    }
}

/// The decoded superblock fields piimage uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock {
    /// Total inodes.
    pub inodes_count: u32,
    /// Total blocks (64-bit when the `64bit` feature is set).
    pub blocks_count: u64,
    /// Blocks reserved for root.
    pub reserved_blocks_count: u64,
    /// Free blocks.
    pub free_blocks_count: u64,
    /// Free inodes.
    pub free_inodes_count: u32,
    /// First data block (1 for 1 KiB blocks, else 0).
    pub first_data_block: u32,
    /// Block size in bytes.
    pub block_size: u32,
    /// Blocks per group.
    pub blocks_per_group: u32,
    /// Inodes per group.
    pub inodes_per_group: u32,
    /// Mount count since the last check.
    pub mount_count: u16,
    /// `s_state`.
    pub state: FsState,
    /// Revision level (1 = dynamic).
    pub rev_level: u32,
    /// Inode size in bytes.
    pub inode_size: u16,
    /// Feature words.
    pub features: FeatureSet,
    /// Filesystem UUID.
    pub uuid: [u8; 16],
    /// Volume label.
    pub label: String,
    /// Where it was last mounted.
    pub last_mounted: String,
    /// Journal inode (0 without a journal).
    pub journal_inum: u32,
    /// Head of the orphan inode list (0 when empty).
    pub last_orphan: u32,
    /// Group descriptor size (32, or 64 with `64bit`).
    pub desc_size: u16,
    /// Default hash version for htree directories.
    pub def_hash_version: u8,
    /// `s_checksum_seed` (meaningful with `metadata_csum_seed`).
    pub checksum_seed: u32,
    /// Orphan file inode (`orphan_file`).
    pub orphan_file_inum: u32,
    /// `s_mkfs_time`.
    pub mkfs_time: u32,
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// ext4's crc32c convention: the raw (not inverted) CRC state continued from `seed`.
pub fn ext4_crc32c(seed: u32, data: &[u8]) -> u32 {
    !crc32c::crc32c_append(!seed, data)
}

impl Superblock {
    /// Decodes the 1024-byte superblock.
    pub fn from_bytes(b: &[u8; SUPERBLOCK_SIZE]) -> Result<Self, Ext4Error> {
        let magic = le16(b, 0x38);
        if magic != EXT4_MAGIC {
            return Err(Ext4Error::BadMagic { found: magic });
        }
        let features = FeatureSet {
            compat: le32(b, 0x5C),
            incompat: le32(b, 0x60),
            ro_compat: le32(b, 0x64),
        };
        if features.ro_compat & features::RO_COMPAT_METADATA_CSUM != 0 {
            let stored = le32(b, 0x3FC);
            let computed = ext4_crc32c(!0, &b[..0x3FC]);
            if stored != computed {
                return Err(Ext4Error::BadChecksum { stored, computed });
            }
        }
        let log = le32(b, 0x18);
        if log > 6 {
            return Err(Ext4Error::Corrupt(format!(
                "block size 2^(10+{log}) is invalid"
            )));
        }
        let block_size = 1024u32 << log;
        let is64 = features.incompat & features::INCOMPAT_64BIT != 0;
        let wide = |lo: usize, hi: usize| {
            let hi = if is64 { u64::from(le32(b, hi)) } else { 0 };
            hi << 32 | u64::from(le32(b, lo))
        };
        let sb = Self {
            inodes_count: le32(b, 0x0),
            blocks_count: wide(0x4, 0x150),
            reserved_blocks_count: wide(0x8, 0x154),
            free_blocks_count: wide(0xC, 0x158),
            free_inodes_count: le32(b, 0x10),
            first_data_block: le32(b, 0x14),
            block_size,
            blocks_per_group: le32(b, 0x20),
            inodes_per_group: le32(b, 0x28),
            mount_count: le16(b, 0x34),
            state: FsState(le16(b, 0x3A)),
            rev_level: le32(b, 0x4C),
            inode_size: if le32(b, 0x4C) == 0 {
                128
            } else {
                le16(b, 0x58)
            },
            features,
            uuid: b[0x68..0x78].try_into().unwrap_or([0; 16]),
            label: cstr(&b[0x78..0x88]),
            last_mounted: cstr(&b[0x88..0xC8]),
            journal_inum: le32(b, 0xE0),
            last_orphan: le32(b, 0xE8),
            desc_size: if is64 { le16(b, 0xFE).max(32) } else { 32 },
            def_hash_version: b[0xFC],
            checksum_seed: le32(b, 0x270),
            orphan_file_inum: le32(b, 0x280),
            mkfs_time: le32(b, 0x108),
        };
        if sb.blocks_per_group == 0 || sb.inodes_per_group == 0 {
            return Err(Ext4Error::Corrupt("zero blocks or inodes per group".into()));
        }
        if sb.free_blocks_count > sb.blocks_count {
            return Err(Ext4Error::Corrupt(format!(
                "{} free blocks of {}",
                sb.free_blocks_count, sb.blocks_count
            )));
        }
        Ok(sb)
    }

    /// Size of the filesystem in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.blocks_count * u64::from(self.block_size)
    }

    /// Free space in bytes (including blocks reserved for root).
    pub fn free_bytes(&self) -> u64 {
        self.free_blocks_count * u64::from(self.block_size)
    }

    /// True when the journal holds transactions that must be replayed (`needs_recovery`).
    pub fn needs_recovery(&self) -> bool {
        self.features.incompat & features::INCOMPAT_RECOVER != 0
    }

    /// True when orphan inodes are pending (old list or orphan file).
    pub fn has_orphans(&self) -> bool {
        self.last_orphan != 0 || self.features.ro_compat & features::RO_COMPAT_ORPHAN_PRESENT != 0
    }

    /// The UUID in its usual text form.
    pub fn uuid_string(&self) -> String {
        let u = &self.uuid;
        format!(
            "{}-{}-{}-{}-{}",
            hex::encode(&u[0..4]),
            hex::encode(&u[4..6]),
            hex::encode(&u[6..8]),
            hex::encode(&u[8..10]),
            hex::encode(&u[10..16])
        )
    }
}

/// `s_block_group_nr`: the group a superblock copy lives in.
pub const BLOCK_GROUP_NR_OFFSET: usize = 0x5A;
/// `s_state`.
pub const STATE_OFFSET: usize = 0x3A;
/// `s_checksum`.
const CHECKSUM_OFFSET: usize = 0x3FC;

/// The superblock fields that depend on the size of the filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeFields {
    /// `s_inodes_count`.
    pub inodes_count: u32,
    /// `s_blocks_count` (`_lo` and, with `64bit`, `_hi`).
    pub blocks_count: u64,
    /// `s_r_blocks_count`.
    pub reserved_blocks_count: u64,
    /// `s_free_blocks_count`.
    pub free_blocks_count: u64,
    /// `s_free_inodes_count`.
    pub free_inodes_count: u32,
    /// `s_reserved_gdt_blocks`.
    pub reserved_gdt_blocks: u16,
    /// `s_overhead_clusters` (0: the kernel computes it at mount).
    pub overhead_clusters: u32,
}

impl SizeFields {
    /// Decodes the fields from raw superblock bytes.
    pub fn from_bytes(b: &[u8; SUPERBLOCK_SIZE]) -> Self {
        let is64 = le32(b, 0x60) & features::INCOMPAT_64BIT != 0;
        let wide = |lo: usize, hi: usize| {
            let hi = if is64 { u64::from(le32(b, hi)) } else { 0 };
            hi << 32 | u64::from(le32(b, lo))
        };
        Self {
            inodes_count: le32(b, 0x0),
            blocks_count: wide(0x4, 0x150),
            reserved_blocks_count: wide(0x8, 0x154),
            free_blocks_count: wide(0xC, 0x158),
            free_inodes_count: le32(b, 0x10),
            reserved_gdt_blocks: le16(b, 0xCE),
            overhead_clusters: le32(b, 0x248),
        }
    }

    /// Encodes the fields into raw superblock bytes (the high halves only with `64bit`; without
    /// it the caller keeps the counts below 2^32). The checksum is left stale: call [`seal`].
    pub fn write_to(&self, b: &mut [u8; SUPERBLOCK_SIZE]) {
        let is64 = le32(b, 0x60) & features::INCOMPAT_64BIT != 0;
        let mut wide = |v: u64, lo: usize, hi: usize| {
            let (l, h) = halves32(v);
            put32(b, lo, l);
            if is64 {
                put32(b, hi, h);
            }
        };
        wide(self.blocks_count, 0x4, 0x150);
        wide(self.reserved_blocks_count, 0x8, 0x154);
        wide(self.free_blocks_count, 0xC, 0x158);
        put32(b, 0x0, self.inodes_count);
        put32(b, 0x10, self.free_inodes_count);
        put16(b, 0xCE, self.reserved_gdt_blocks);
        put32(b, 0x248, self.overhead_clusters);
    }
}

/// Stores the superblock checksum when the filesystem has `metadata_csum` (else leaves the
/// bytes as they are).
pub fn seal(b: &mut [u8; SUPERBLOCK_SIZE]) {
    if le32(b, 0x64) & features::RO_COMPAT_METADATA_CSUM != 0 {
        let c = ext4_crc32c(!0, &b[..CHECKSUM_OFFSET]);
        put32(b, CHECKSUM_OFFSET, c);
    }
}

/// True when `sb` (the 1024 bytes at offset 1024) carries the ext2/3/4 magic.
pub fn looks_like_ext4(sb: &[u8]) -> bool {
    sb.len() >= 0x3A && le16(sb, 0x38) == EXT4_MAGIC
}

/// A small, clean filesystem's superblock with `features` (one 32768-block group, journal in
/// inode 8), for unit tests.
#[cfg(test)]
pub(crate) fn test_superblock(features: FeatureSet) -> Superblock {
    Superblock {
        inodes_count: 8192,
        blocks_count: 32768,
        reserved_blocks_count: 0,
        free_blocks_count: 1000,
        free_inodes_count: 100,
        first_data_block: 0,
        block_size: 4096,
        blocks_per_group: 32768,
        inodes_per_group: 8192,
        mount_count: 0,
        state: FsState(1),
        rev_level: 1,
        inode_size: 256,
        features,
        uuid: [0; 16],
        label: String::new(),
        last_mounted: String::new(),
        journal_inum: 8,
        last_orphan: 0,
        desc_size: 32,
        def_hash_version: 1,
        checksum_seed: 0,
        orphan_file_inum: 0,
        mkfs_time: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> [u8; SUPERBLOCK_SIZE] {
        let mut b = [0u8; SUPERBLOCK_SIZE];
        b[0x0..0x4].copy_from_slice(&8192u32.to_le_bytes());
        b[0x4..0x8].copy_from_slice(&32768u32.to_le_bytes());
        b[0xC..0x10].copy_from_slice(&20000u32.to_le_bytes());
        b[0x18..0x1C].copy_from_slice(&2u32.to_le_bytes());
        b[0x20..0x24].copy_from_slice(&32768u32.to_le_bytes());
        b[0x28..0x2C].copy_from_slice(&8192u32.to_le_bytes());
        b[0x38..0x3A].copy_from_slice(&EXT4_MAGIC.to_le_bytes());
        b[0x3A..0x3C].copy_from_slice(&1u16.to_le_bytes());
        b[0x4C..0x50].copy_from_slice(&1u32.to_le_bytes());
        b[0x58..0x5A].copy_from_slice(&256u16.to_le_bytes());
        b[0x60..0x64].copy_from_slice(&0x2c2u32.to_le_bytes());
        b[0x64..0x68].copy_from_slice(&0x400u32.to_le_bytes());
        b[0x78..0x7E].copy_from_slice(b"rootfs");
        let c = ext4_crc32c(!0, &b[..0x3FC]);
        b[0x3FC..].copy_from_slice(&c.to_le_bytes());
        b
    }

    #[test]
    fn decodes_and_verifies() {
        let sb = Superblock::from_bytes(&sample()).unwrap();
        assert_eq!(sb.block_size, 4096);
        assert_eq!(sb.label, "rootfs");
        assert_eq!(sb.free_bytes(), 20000 * 4096);
        assert!(sb.state.is_valid());
        assert!(!sb.needs_recovery());
        assert_eq!(sb.desc_size, 32);
    }

    #[test]
    fn refuses_corruption() {
        let mut b = sample();
        b[0x78] = b'X';
        assert!(matches!(
            Superblock::from_bytes(&b),
            Err(Ext4Error::BadChecksum { .. })
        ));
        let mut b = sample();
        b[0x38] = 0;
        assert!(matches!(
            Superblock::from_bytes(&b),
            Err(Ext4Error::BadMagic { .. })
        ));
    }

    #[test]
    fn size_fields_round_trip_and_seal() {
        let mut b = sample();
        let mut f = SizeFields::from_bytes(&b);
        assert_eq!((f.inodes_count, f.blocks_count), (8192, 32768));
        f.blocks_count = 65536;
        f.free_blocks_count = 50000;
        f.reserved_gdt_blocks = 7;
        f.write_to(&mut b);
        assert!(matches!(
            Superblock::from_bytes(&b),
            Err(Ext4Error::BadChecksum { .. })
        ));
        seal(&mut b);
        let sb = Superblock::from_bytes(&b).unwrap();
        assert_eq!((sb.blocks_count, sb.free_blocks_count), (65536, 50000));
        assert_eq!(SizeFields::from_bytes(&b), f);
    }

    #[test]
    fn crc32c_matches_known_value() {
        // crc32c("123456789") = 0xE3069283 (the standard check value).
        assert_eq!(!ext4_crc32c(!0, b"123456789"), 0xE306_9283);
    }
}
