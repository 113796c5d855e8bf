//! ext4 block group descriptors and the group layout they live in.
//!
//! Descriptors are decoded with [`GroupDesc::from_bytes`] and encoded back with
//! [`GroupDesc::write_to`]; their checksum (`bg_checksum`) is computed by [`DescCsum`]: crc16 with
//! `gdt_csum` (`uninit_bg`), the low half of crc32c with `metadata_csum`.
//!
//! Spec: the kernel's `group_descr.html` (descriptor fields) and `blockgroup.html` (where the
//! superblock and descriptor-table backups are: every group without `sparse_super`; groups 0, 1
//! and the powers of 3, 5 and 7 with it; groups 0 and `s_backup_bgs[0..2]` with
//! `sparse_super2`). The descriptor table starts in the block after the superblock's
//! (`s_first_data_block + 1`) and is followed by `s_reserved_gdt_blocks` blocks kept for online
//! resize.
//!
//! Not supported (the caller is told, through [`GroupLayout::unsupported`]): `meta_bg`, which
//! scatters the descriptor table over the disk, and `bigalloc`, whose bitmaps count clusters.

use super::superblock::{Ext4Error, SUPERBLOCK_SIZE, Superblock, ext4_crc32c};
use crate::fs::bytes::{halves16, halves32, le16, le32, put16, put32};

/// `bg_flags`: the inode table and bitmap are not initialised.
pub const BG_INODE_UNINIT: u16 = 0x1;
/// `bg_flags`: the block bitmap is not initialised (it must be computed, see
/// [`super::bitmap::BlockBitmap::uninit`]).
pub const BG_BLOCK_UNINIT: u16 = 0x2;
/// `bg_flags`: the inode table is zeroed.
pub const BG_INODE_ZEROED: u16 = 0x4;

/// `RO_COMPAT_SPARSE_SUPER`.
const RO_COMPAT_SPARSE_SUPER: u32 = 0x1;
/// `RO_COMPAT_BIGALLOC`.
const RO_COMPAT_BIGALLOC: u32 = 0x200;
/// `COMPAT_SPARSE_SUPER2`.
const COMPAT_SPARSE_SUPER2: u32 = 0x200;
/// `INCOMPAT_META_BG`.
const INCOMPAT_META_BG: u32 = 0x10;
/// Offset of `bg_checksum` inside a descriptor.
const BG_CHECKSUM_OFFSET: usize = 0x1E;
/// Descriptors at least this long carry the high halves (`*_hi` fields).
const DESC_SIZE_64: usize = 64;

/// One decoded block group descriptor (32 bytes, or 64 with the `64bit` feature).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupDesc {
    /// Block number of the block bitmap.
    pub block_bitmap: u64,
    /// Block number of the inode bitmap.
    pub inode_bitmap: u64,
    /// First block of the inode table.
    pub inode_table: u64,
    /// Free blocks in the group.
    pub free_blocks_count: u32,
    /// Free inodes in the group.
    pub free_inodes_count: u32,
    /// Directories in the group.
    pub used_dirs_count: u32,
    /// `bg_flags` (`BG_*`).
    pub flags: u16,
    /// crc32c of the block bitmap: the low 16 bits, plus the high 16 when the descriptor has them.
    pub block_bitmap_csum: u32,
    /// crc32c of the inode bitmap, like `block_bitmap_csum`.
    pub inode_bitmap_csum: u32,
    /// Inodes at the end of the group's table never used (`bg_itable_unused`).
    pub itable_unused: u32,
    /// `bg_checksum`.
    pub checksum: u16,
}

impl GroupDesc {
    /// Decodes a descriptor of `desc_size` bytes (`b.len()` must be at least that).
    pub fn from_bytes(b: &[u8], desc_size: usize) -> Self {
        let wide = desc_size >= DESC_SIZE_64;
        let pair = |lo: u32, hi_off: usize| {
            let hi = if wide { u64::from(le32(b, hi_off)) } else { 0 };
            hi << 32 | u64::from(lo)
        };
        let split = |lo: usize, hi: usize| {
            let hi = if wide { u32::from(le16(b, hi)) } else { 0 };
            hi << 16 | u32::from(le16(b, lo))
        };
        Self {
            block_bitmap: pair(le32(b, 0x0), 0x20),
            inode_bitmap: pair(le32(b, 0x4), 0x24),
            inode_table: pair(le32(b, 0x8), 0x28),
            free_blocks_count: split(0xC, 0x2C),
            free_inodes_count: split(0xE, 0x2E),
            used_dirs_count: split(0x10, 0x30),
            flags: le16(b, 0x12),
            block_bitmap_csum: split(0x18, 0x38),
            inode_bitmap_csum: split(0x1A, 0x3A),
            itable_unused: split(0x1C, 0x32),
            checksum: le16(b, BG_CHECKSUM_OFFSET),
        }
    }

    /// Encodes every field but `bg_checksum` into `b` (at least `desc_size` bytes); bytes of
    /// fields this type does not model (`bg_exclude_bitmap`, reserved) are left as they are.
    /// With 32-byte descriptors the high halves are dropped: the caller keeps block numbers
    /// below 2^32 and counts below 2^16 there (a group holds at most `8 * block_size` of each).
    pub fn write_to(&self, b: &mut [u8], desc_size: usize) {
        let wide = desc_size >= DESC_SIZE_64;
        let mut pair = |v: u64, lo: usize, hi: usize| {
            let (l, h) = halves32(v);
            put32(b, lo, l);
            if wide {
                put32(b, hi, h);
            }
        };
        pair(self.block_bitmap, 0x0, 0x20);
        pair(self.inode_bitmap, 0x4, 0x24);
        pair(self.inode_table, 0x8, 0x28);
        let mut split = |v: u32, lo: usize, hi: usize| {
            let (l, h) = halves16(v);
            put16(b, lo, l);
            if wide {
                put16(b, hi, h);
            }
        };
        split(self.free_blocks_count, 0xC, 0x2C);
        split(self.free_inodes_count, 0xE, 0x2E);
        split(self.used_dirs_count, 0x10, 0x30);
        split(self.block_bitmap_csum, 0x18, 0x38);
        split(self.inode_bitmap_csum, 0x1A, 0x3A);
        split(self.itable_unused, 0x1C, 0x32);
        put16(b, 0x12, self.flags);
    }

    /// True when the block bitmap on disk is not initialised (`BLOCK_UNINIT`).
    pub fn block_uninit(&self) -> bool {
        self.flags & BG_BLOCK_UNINIT != 0
    }
}

/// `metadata_csum` checksum of descriptor `raw` (of group `group`):
/// `crc32c(seed, le32 group ‖ descriptor with bg_checksum = 0) & 0xFFFF`.
pub fn desc_checksum(seed: u32, group: u32, raw: &[u8]) -> u16 {
    let c = ext4_crc32c(seed, &group.to_le_bytes());
    let c = ext4_crc32c(c, &raw[..BG_CHECKSUM_OFFSET]);
    let c = ext4_crc32c(c, &[0, 0]);
    let c = ext4_crc32c(c, &raw[BG_CHECKSUM_OFFSET + 2..]);
    u16::try_from(c & 0xFFFF).unwrap_or(0)
}

/// The checksum that protects the group descriptors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DescCsum {
    /// Neither `metadata_csum` nor `gdt_csum`: `bg_checksum` is unused, and so are the lazy
    /// initialisation flags and `bg_itable_unused` (e2fsck wants them clear).
    None,
    /// `gdt_csum` (`uninit_bg`): crc16 of the UUID, the group number and the descriptor.
    Crc16 {
        /// The filesystem UUID.
        uuid: [u8; 16],
    },
    /// `metadata_csum`: the low 16 bits of [`desc_checksum`].
    Crc32c {
        /// The metadata checksum seed ([`csum_seed`]).
        seed: u32,
    },
}

/// `RO_COMPAT_GDT_CSUM` (e2fsprogs calls it `uninit_bg`).
const RO_COMPAT_GDT_CSUM: u32 = 0x10;

impl DescCsum {
    /// The descriptor checksum of the filesystem whose superblock is `sb` (`metadata_csum` wins
    /// over `gdt_csum` when both are set, as in the kernel).
    pub fn of(sb: &Superblock) -> Self {
        let ro = sb.features.ro_compat;
        if ro & super::features::RO_COMPAT_METADATA_CSUM != 0 {
            Self::Crc32c {
                seed: csum_seed(sb),
            }
        } else if ro & RO_COMPAT_GDT_CSUM != 0 {
            Self::Crc16 { uuid: sb.uuid }
        } else {
            Self::None
        }
    }

    /// True when descriptors carry a checksum (and with it the lazy-init flags).
    pub fn enabled(&self) -> bool {
        !matches!(self, Self::None)
    }

    /// The `bg_checksum` of descriptor `raw` (exactly `desc_size` bytes) of group `group`.
    pub fn compute(&self, group: u32, raw: &[u8]) -> u16 {
        match self {
            Self::None => 0,
            Self::Crc32c { seed } => desc_checksum(*seed, group, raw),
            Self::Crc16 { uuid } => {
                let c = crc16(0xFFFF, uuid);
                let c = crc16(c, &group.to_le_bytes());
                let c = crc16(c, &raw[..BG_CHECKSUM_OFFSET]);
                crc16(c, &raw[BG_CHECKSUM_OFFSET + 2..])
            }
        }
    }

    /// Stores the checksum of `raw` (group `group`) in its `bg_checksum` field.
    pub fn seal(&self, group: u32, raw: &mut [u8]) {
        let c = self.compute(group, raw);
        put16(raw, BG_CHECKSUM_OFFSET, c);
    }
}

/// CRC-16 with the polynomial 0x8005, bit-reflected (the kernel's `crc16`), continued from `crc`.
pub fn crc16(mut crc: u16, data: &[u8]) -> u16 {
    for &byte in data {
        crc ^= u16::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xA001
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// The metadata checksum seed: `s_checksum_seed` with `metadata_csum_seed`, else
/// `crc32c(~0, uuid)`.
pub fn csum_seed(sb: &Superblock) -> u32 {
    if sb.features.incompat & super::features::INCOMPAT_CSUM_SEED != 0 {
        sb.checksum_seed
    } else {
        ext4_crc32c(!0, &sb.uuid)
    }
}

/// Where the groups and their fixed metadata are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupLayout {
    /// Block size in bytes.
    pub block_size: u32,
    /// `s_first_data_block` (1 with 1 KiB blocks, else 0).
    pub first_data_block: u64,
    /// Blocks in the filesystem.
    pub blocks_count: u64,
    /// Blocks per group.
    pub blocks_per_group: u64,
    /// Number of groups.
    pub group_count: u32,
    /// Descriptor size in bytes.
    pub desc_size: usize,
    /// Blocks of the descriptor table.
    pub gdt_blocks: u64,
    /// `s_reserved_gdt_blocks`: blocks after the table kept for online resize.
    pub reserved_gdt_blocks: u64,
    /// Blocks of one group's inode table.
    pub inode_table_blocks: u64,
    /// Whether metadata checksums (`metadata_csum`) are in use.
    pub metadata_csum: bool,
    /// Why piimage cannot decode the layout, if it cannot (`meta_bg`, `bigalloc`).
    pub unsupported: Option<&'static str>,
    sparse_super: bool,
    backup_bgs: Option<[u32; 2]>,
}

impl GroupLayout {
    /// The layout of the filesystem whose superblock is `sb`, decoded from the raw bytes `raw`
    /// (for `s_reserved_gdt_blocks` at 0xCE and `s_backup_bgs` at 0x24C).
    ///
    /// # Errors
    /// [`Ext4Error::Corrupt`] when the counts are inconsistent.
    pub fn new(sb: &Superblock, raw: &[u8; SUPERBLOCK_SIZE]) -> Result<Self, Ext4Error> {
        let f = sb.features;
        let first = u64::from(sb.first_data_block);
        let bpg = u64::from(sb.blocks_per_group);
        let data_blocks = sb.blocks_count.checked_sub(first).ok_or_else(|| {
            Ext4Error::Corrupt(format!(
                "first data block {first} beyond {} blocks",
                sb.blocks_count
            ))
        })?;
        let group_count = u32::try_from(data_blocks.div_ceil(bpg))
            .map_err(|_| Ext4Error::Corrupt("too many block groups".into()))?;
        let desc_size = usize::from(sb.desc_size.max(32));
        let bs = u64::from(sb.block_size);
        let gdt_blocks = (u64::from(group_count) * desc_size as u64).div_ceil(bs);
        let inode_table_blocks =
            (u64::from(sb.inodes_per_group) * u64::from(sb.inode_size)).div_ceil(bs);
        let unsupported = if f.incompat & INCOMPAT_META_BG != 0 {
            Some("meta_bg")
        } else if f.ro_compat & RO_COMPAT_BIGALLOC != 0 {
            Some("bigalloc")
        } else {
            None
        };
        Ok(Self {
            block_size: sb.block_size,
            first_data_block: first,
            blocks_count: sb.blocks_count,
            blocks_per_group: bpg,
            group_count,
            desc_size,
            gdt_blocks,
            reserved_gdt_blocks: u64::from(le16(raw, 0xCE)),
            inode_table_blocks,
            metadata_csum: f.ro_compat & super::features::RO_COMPAT_METADATA_CSUM != 0,
            unsupported,
            sparse_super: f.ro_compat & RO_COMPAT_SPARSE_SUPER != 0,
            backup_bgs: (f.compat & COMPAT_SPARSE_SUPER2 != 0)
                .then(|| [le32(raw, 0x24C), le32(raw, 0x250)]),
        })
    }

    /// First block of group `g`.
    pub fn group_start(&self, g: u32) -> u64 {
        self.first_data_block + u64::from(g) * self.blocks_per_group
    }

    /// Blocks in group `g` (the last group may be short).
    pub fn blocks_in_group(&self, g: u32) -> u64 {
        let start = self.group_start(g);
        self.blocks_count
            .saturating_sub(start)
            .min(self.blocks_per_group)
    }

    /// The group holding block `block`, if any.
    pub fn group_of(&self, block: u64) -> Option<u32> {
        let rel = block.checked_sub(self.first_data_block)?;
        u32::try_from(rel / self.blocks_per_group)
            .ok()
            .filter(|&g| g < self.group_count)
    }

    /// True when group `g` holds a backup of the superblock and descriptor table.
    pub fn has_super_backup(&self, g: u32) -> bool {
        if g == 0 {
            return true;
        }
        if let Some(bgs) = self.backup_bgs {
            return bgs.contains(&g);
        }
        if !self.sparse_super || g == 1 {
            return true;
        }
        [3u32, 5, 7].iter().any(|&base| is_power_of(g, base))
    }

    /// Blocks at the start of group `g` taken by the superblock (or its backup), the descriptor
    /// table and the reserved descriptor blocks; 0 for a group without a backup.
    pub fn super_backup_blocks(&self, g: u32) -> u64 {
        if !self.has_super_backup(g) {
            return 0;
        }
        // With 1 KiB blocks group 0's superblock is block 1 (= s_first_data_block); either way
        // the superblock takes one block at the start of the group.
        1 + self.gdt_blocks + self.reserved_gdt_blocks
    }

    /// Byte offset (inside the filesystem) of the primary descriptor table.
    pub fn gdt_offset(&self) -> u64 {
        (self.first_data_block + 1) * u64::from(self.block_size)
    }
}

fn is_power_of(mut n: u32, base: u32) -> bool {
    while n > 1 && n.is_multiple_of(base) {
        n /= base;
    }
    n == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(
        block_size: u32,
        groups: u32,
        sparse_super: bool,
        bgs: Option<[u32; 2]>,
    ) -> GroupLayout {
        let bpg = u64::from(block_size) * 8;
        let first = u64::from(block_size == 1024);
        GroupLayout {
            block_size,
            first_data_block: first,
            blocks_count: first + u64::from(groups) * bpg,
            blocks_per_group: bpg,
            group_count: groups,
            desc_size: 32,
            gdt_blocks: 1,
            reserved_gdt_blocks: 63,
            inode_table_blocks: 512,
            metadata_csum: true,
            unsupported: None,
            sparse_super,
            backup_bgs: bgs,
        }
    }

    #[test]
    fn backup_groups_table() {
        // (name, sparse_super, backup_bgs, groups with a backup among 0..=50)
        type Bgs = Option<[u32; 2]>;
        let cases: &[(&str, bool, Bgs, &[u32])] = &[
            ("sparse_super", true, None, &[0, 1, 3, 5, 7, 9, 25, 27, 49]),
            ("sparse_super2", true, Some([1, 40]), &[0, 1, 40]),
            ("sparse_super2, none", true, Some([0, 0]), &[0]),
        ];
        for (name, sparse, bgs, want) in cases {
            let l = layout(4096, 51, *sparse, *bgs);
            let got: Vec<u32> = (0..=50).filter(|&g| l.has_super_backup(g)).collect();
            assert_eq!(&got, want, "case {name}");
            let want1 = if want.contains(&1) { 65 } else { 0 };
            assert_eq!(l.super_backup_blocks(1), want1, "case {name}");
            assert_eq!(l.super_backup_blocks(2), 0, "case {name}");
        }
        let all = layout(4096, 5, false, None);
        assert!((0..5).all(|g| all.has_super_backup(g)));
    }

    #[test]
    fn group_geometry_with_1k_blocks() {
        let mut l = layout(1024, 3, true, None);
        l.blocks_count -= 3192;
        assert_eq!(l.group_start(2), 1 + 2 * 8192);
        assert_eq!(l.blocks_in_group(2), 5000);
        assert_eq!(l.group_of(8192), Some(0));
        assert_eq!(l.group_of(8193), Some(1));
        assert_eq!(l.group_of(0), None);
        assert_eq!(l.group_of(1 + 3 * 8192), None, "beyond group_count");
        assert_eq!(l.gdt_offset(), 2048);
    }

    #[test]
    fn decodes_32_and_64_byte_descriptors() {
        let mut b = [0u8; 64];
        b[0x0..0x4].copy_from_slice(&0x1111u32.to_le_bytes());
        b[0x4..0x8].copy_from_slice(&0x2222u32.to_le_bytes());
        b[0x8..0xC].copy_from_slice(&0x3333u32.to_le_bytes());
        b[0xC..0xE].copy_from_slice(&7u16.to_le_bytes());
        b[0x12..0x14].copy_from_slice(&(BG_BLOCK_UNINIT | BG_INODE_ZEROED).to_le_bytes());
        b[0x18..0x1A].copy_from_slice(&0xBEEFu16.to_le_bytes());
        b[0x20..0x24].copy_from_slice(&1u32.to_le_bytes());
        b[0x2C..0x2E].copy_from_slice(&1u16.to_le_bytes());
        b[0x38..0x3A].copy_from_slice(&0xDEADu16.to_le_bytes());
        let narrow = GroupDesc::from_bytes(&b, 32);
        assert_eq!(narrow.block_bitmap, 0x1111);
        assert_eq!(narrow.free_blocks_count, 7);
        assert_eq!(narrow.block_bitmap_csum, 0xBEEF);
        assert!(narrow.block_uninit());
        let wide = GroupDesc::from_bytes(&b, 64);
        assert_eq!(wide.block_bitmap, 0x1_0000_1111);
        assert_eq!(wide.inode_bitmap, 0x2222);
        assert_eq!(wide.inode_table, 0x3333);
        assert_eq!(wide.free_blocks_count, 0x1_0007);
        assert_eq!(wide.block_bitmap_csum, 0xDEAD_BEEF);
    }

    #[test]
    fn write_to_round_trips() {
        let d = GroupDesc {
            block_bitmap: 0x1_0000_0010,
            inode_bitmap: 0x11,
            inode_table: 0x2_0000_0012,
            free_blocks_count: 0x1_2345,
            free_inodes_count: 0x8000,
            used_dirs_count: 3,
            flags: BG_INODE_UNINIT | BG_INODE_ZEROED,
            block_bitmap_csum: 0xDEAD_BEEF,
            inode_bitmap_csum: 0x1234_5678,
            itable_unused: 0x8000,
            checksum: 0,
        };
        let mut b = [0u8; 64];
        d.write_to(&mut b, 64);
        assert_eq!(GroupDesc::from_bytes(&b, 64), d);
        let mut n = [0u8; 32];
        d.write_to(&mut n, 32);
        let narrow = GroupDesc::from_bytes(&n, 32);
        assert_eq!(narrow.block_bitmap, 0x10, "high half dropped");
        assert_eq!(narrow.free_blocks_count, 0x2345);
        assert_eq!(narrow.inode_bitmap_csum, 0x5678);
        assert_eq!(narrow.itable_unused, 0x8000);
    }

    #[test]
    fn crc16_is_the_kernel_crc16() {
        // CRC-16/ARC: polynomial 0x8005 reflected, initial 0; check value 0xBB3D.
        assert_eq!(crc16(0, b"123456789"), 0xBB3D);
        let mut d = [7u8; 32];
        let csum = DescCsum::Crc16 { uuid: [1; 16] };
        csum.seal(2, &mut d);
        let stored = le16(&d, BG_CHECKSUM_OFFSET);
        assert_eq!(csum.compute(2, &d), stored, "the stored value is skipped");
        assert_ne!(csum.compute(3, &d), stored);
        assert_eq!(DescCsum::None.compute(2, &d), 0);
    }

    #[test]
    fn checksum_ignores_the_stored_value() {
        let mut d = [0x5Au8; 32];
        let c = desc_checksum(0x1234_5678, 3, &d);
        d[BG_CHECKSUM_OFFSET..BG_CHECKSUM_OFFSET + 2].copy_from_slice(&c.to_le_bytes());
        assert_eq!(desc_checksum(0x1234_5678, 3, &d), c);
        assert_ne!(
            desc_checksum(0x1234_5678, 4, &d),
            c,
            "the group number counts"
        );
    }
}
