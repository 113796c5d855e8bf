//! The few inode fields piimage's own code touches directly (the writer crate handles the rest).
//!
//! Spec: the kernel's `inodes.html` and `checksums.html`. An inode is `s_inode_size` bytes of
//! the inode table; with `metadata_csum` it carries
//! `crc32c(seed, le32 inode number ‖ le32 i_generation ‖ the inode with its checksum fields zeroed)`,
//! the low 16 bits in `l_i_checksum_lo` (0x7C) and, when the inode is large enough to have it
//! (`i_extra_isize` ≥ 4), the high 16 bits in `i_checksum_hi` (0x82).

use super::superblock::ext4_crc32c;
use crate::fs::bytes::{halves16, le16, le32, put16, put32};

/// Inode number of the resize inode (the reserved descriptor blocks).
pub const RESIZE_INO: u32 = 7;
/// Offset of `i_blocks_lo`.
const BLOCKS_LO: usize = 0x1C;
/// Offset of `i_flags`.
const FLAGS: usize = 0x20;
/// Offset of `i_block[]` (15 little-endian `u32`s for block-mapped inodes).
pub const I_BLOCK: usize = 0x28;
/// Entries in `i_block[]`.
pub const N_BLOCKS: usize = 15;
/// Index of the double-indirect pointer in `i_block[]`.
pub const DIND_BLOCK: usize = 13;
/// Offset of `i_generation`.
const GENERATION: usize = 0x64;
/// Offset of `l_i_blocks_high`.
const BLOCKS_HIGH: usize = 0x74;
/// Offset of `l_i_checksum_lo`.
const CHECKSUM_LO: usize = 0x7C;
/// Offset of `i_extra_isize` (inodes larger than 128 bytes).
const EXTRA_ISIZE: usize = 0x80;
/// Offset of `i_checksum_hi`.
const CHECKSUM_HI: usize = 0x82;
/// `EXT4_HUGE_FILE_FL`: `i_blocks` counts filesystem blocks instead of 512-byte sectors.
const HUGE_FILE_FL: u32 = 0x4_0000;
/// `EXT4_INDEX_FL`: a hashed-tree (htree) directory.
pub const INDEX_FL: u32 = 0x1000;
/// `EXT4_EXTENTS_FL`: `i_block` holds the root of an extent tree ([`super::extent`]).
pub const EXTENTS_FL: u32 = 0x8_0000;
/// `EXT4_INLINE_DATA_FL`: the data is in `i_block` and an extended attribute.
pub const INLINE_DATA_FL: u32 = 0x1000_0000;
/// Bytes of `i_block`.
pub const I_BLOCK_LEN: usize = N_BLOCKS * 4;

/// `i_flags` of the raw inode `raw`.
pub fn flags(raw: &[u8]) -> u32 {
    le32(raw, FLAGS)
}

/// `i_block` of the raw inode `raw` (an extent tree root, or block pointers).
pub fn i_block(raw: &[u8]) -> &[u8] {
    &raw[I_BLOCK..I_BLOCK + I_BLOCK_LEN]
}
/// Smallest inode (`EXT2_GOOD_OLD_INODE_SIZE`).
const OLD_INODE_SIZE: usize = 128;

/// True when the raw inode `raw` has room for `i_checksum_hi`.
fn has_checksum_hi(raw: &[u8]) -> bool {
    raw.len() > OLD_INODE_SIZE
        && usize::from(le16(raw, EXTRA_ISIZE)) >= CHECKSUM_HI + 2 - OLD_INODE_SIZE
}

/// The `metadata_csum` checksum of inode `ino` whose raw bytes (`s_inode_size` of them) are `raw`.
/// Inodes without room for `i_checksum_hi` store only the low 16 bits.
pub fn checksum(seed: u32, ino: u32, raw: &[u8]) -> u32 {
    let c = ext4_crc32c(seed, &ino.to_le_bytes());
    let c = ext4_crc32c(c, &raw[GENERATION..GENERATION + 4]);
    let c = ext4_crc32c(c, &raw[..CHECKSUM_LO]);
    let c = ext4_crc32c(c, &[0, 0]);
    if has_checksum_hi(raw) {
        let c = ext4_crc32c(c, &raw[CHECKSUM_LO + 2..CHECKSUM_HI]);
        let c = ext4_crc32c(c, &[0, 0]);
        ext4_crc32c(c, &raw[CHECKSUM_HI + 2..])
    } else {
        ext4_crc32c(c, &raw[CHECKSUM_LO + 2..]) & 0xFFFF
    }
}

/// The checksum stored in `raw` (both halves when the inode has the high one).
pub fn stored_checksum(raw: &[u8]) -> u32 {
    let hi = if has_checksum_hi(raw) {
        u32::from(le16(raw, CHECKSUM_HI))
    } else {
        0
    };
    hi << 16 | u32::from(le16(raw, CHECKSUM_LO))
}

/// Stores the checksum of inode `ino` into `raw`.
pub fn seal(seed: u32, ino: u32, raw: &mut [u8]) {
    let (lo, hi) = halves16(checksum(seed, ino, raw));
    put16(raw, CHECKSUM_LO, lo);
    if has_checksum_hi(raw) {
        put16(raw, CHECKSUM_HI, hi);
    }
}

/// The block pointers `i_block[]` of a block-mapped inode.
pub fn block_pointers(raw: &[u8]) -> [u32; N_BLOCKS] {
    std::array::from_fn(|i| le32(raw, I_BLOCK + 4 * i))
}

/// Sets `i_blocks` to `blocks` filesystem blocks of `block_size` bytes, in 512-byte sectors
/// (or in blocks when the inode has `HUGE_FILE_FL`). `None` when the count does not fit the
/// 48 bits of the field.
pub fn set_block_count(raw: &mut [u8], blocks: u64, block_size: u32) -> Option<()> {
    let units = if le32(raw, FLAGS) & HUGE_FILE_FL != 0 {
        blocks
    } else {
        blocks.checked_mul(u64::from(block_size / 512))?
    };
    let lo = u32::try_from(units & 0xFFFF_FFFF).ok()?;
    let hi = u16::try_from(units >> 32).ok()?;
    put32(raw, BLOCKS_LO, lo);
    put16(raw, BLOCKS_HIGH, hi);
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inode(size: usize, extra: u16) -> Vec<u8> {
        let mut raw: Vec<u8> = (0..size)
            .map(|i| u8::try_from(i * 7 % 251).unwrap())
            .collect();
        if size > OLD_INODE_SIZE {
            put16(&mut raw, EXTRA_ISIZE, extra);
        }
        put32(&mut raw, FLAGS, 0);
        raw
    }

    #[test]
    fn seal_then_verify_table() {
        // (name, inode size, i_extra_isize, stores the high half)
        let cases: &[(&str, usize, u16, bool)] = &[
            ("256-byte inode", 256, 32, true),
            ("extra_isize too small", 256, 2, false),
            ("128-byte inode", 128, 0, false),
        ];
        for &(name, size, extra, hi) in cases {
            let mut raw = inode(size, extra);
            seal(0x1234_5678, 7, &mut raw);
            assert_eq!(
                stored_checksum(&raw),
                checksum(0x1234_5678, 7, &raw),
                "case {name}"
            );
            assert_eq!(has_checksum_hi(&raw), hi, "case {name}");
            assert_ne!(
                checksum(0x1234_5678, 8, &raw),
                checksum(0x1234_5678, 7, &raw)
            );
            raw[0x10] ^= 1;
            assert_ne!(stored_checksum(&raw), checksum(0x1234_5678, 7, &raw));
        }
    }

    #[test]
    fn block_count_units() {
        let mut raw = inode(256, 32);
        set_block_count(&mut raw, 19, 4096).unwrap();
        assert_eq!(le32(&raw, BLOCKS_LO), 152);
        assert_eq!(le16(&raw, BLOCKS_HIGH), 0);
        put32(&mut raw, FLAGS, HUGE_FILE_FL);
        set_block_count(&mut raw, 1 << 33, 4096).unwrap();
        assert_eq!((le32(&raw, BLOCKS_LO), le16(&raw, BLOCKS_HIGH)), (0, 2));
        assert!(set_block_count(&mut raw, 1 << 50, 4096).is_none());
        assert_eq!(block_pointers(&raw)[0], le32(&raw, I_BLOCK));
    }
}
