//! The ext4 block bitmap: one bit per block of a group, set when the block is in use.
//!
//! Spec: the kernel's `bitmaps.html` and `checksums.html` (the bitmap checksum is
//! `crc32c(seed, bitmap[0 .. clusters_per_group / 8])`, low 16 bits in the descriptor, high 16
//! bits too when descriptors are 64 bytes). A group flagged `BLOCK_UNINIT` has no bitmap on
//! disk: [`BlockBitmap::uninit`] rebuilds it the way the kernel's `ext4_init_block_bitmap` does
//! (the superblock and descriptor-table backup, plus every bitmap and inode table that lies in
//! the group; everything else in such a group is free).

use super::group_desc::GroupLayout;
use super::superblock::ext4_crc32c;

/// A decoded block bitmap of one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockBitmap {
    bits: Vec<u8>,
    blocks: u64,
}

impl BlockBitmap {
    /// The bitmap of a group of `blocks` blocks, from its on-disk bytes (bits past `blocks`
    /// are padding and ignored).
    pub fn from_bytes(bytes: &[u8], blocks: u64) -> Self {
        let n = usize::try_from(blocks.div_ceil(8))
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        Self {
            bits: bytes[..n].to_vec(),
            blocks: blocks.min(n as u64 * 8),
        }
    }

    /// The `metadata_csum` checksum of the on-disk bitmap `bytes` of a filesystem with
    /// `blocks_per_group` blocks per group.
    pub fn checksum(seed: u32, bytes: &[u8], blocks_per_group: u64) -> u32 {
        let n = usize::try_from(blocks_per_group / 8)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        ext4_crc32c(seed, &bytes[..n])
    }

    /// The bitmap the kernel computes for a `BLOCK_UNINIT` group `g`: its superblock and
    /// descriptor backup (if it has one), and the metadata `ranges` (absolute `(first, count)`
    /// block runs of bitmaps and inode tables, of any group) that fall inside it.
    pub fn uninit(layout: &GroupLayout, g: u32, ranges: &[(u64, u64)]) -> Self {
        let blocks = layout.blocks_in_group(g);
        let start = layout.group_start(g);
        let end = start + blocks;
        let mut map = Self {
            bits: vec![0; usize::try_from(blocks.div_ceil(8)).unwrap_or(0)],
            blocks,
        };
        map.set_range(0, layout.super_backup_blocks(g).min(blocks));
        for &(first, count) in ranges {
            let lo = first.max(start);
            let hi = first.saturating_add(count).min(end);
            if lo < hi {
                map.set_range(lo - start, hi - lo);
            }
        }
        map
    }

    fn set_range(&mut self, first: u64, count: u64) {
        for i in first..first + count {
            if let Ok(byte) = usize::try_from(i / 8) {
                self.bits[byte] |= 1 << (i % 8);
            }
        }
    }

    /// Blocks covered (the group's length).
    pub fn len(&self) -> u64 {
        self.blocks
    }

    /// True for a group of no blocks.
    pub fn is_empty(&self) -> bool {
        self.blocks == 0
    }

    /// Whether block `i` (relative to the group start) is in use.
    pub fn is_used(&self, i: u64) -> bool {
        i < self.blocks
            && usize::try_from(i / 8)
                .ok()
                .and_then(|b| self.bits.get(b))
                .is_some_and(|byte| byte & (1 << (i % 8)) != 0)
    }

    /// Runs of used blocks as `(first, count)`, relative to the group start, ascending.
    pub fn used_runs(&self) -> Vec<(u64, u64)> {
        let mut runs: Vec<(u64, u64)> = Vec::new();
        let mut i = 0u64;
        while i < self.blocks {
            let byte = usize::try_from(i / 8)
                .ok()
                .and_then(|b| self.bits.get(b))
                .copied()
                .unwrap_or(0);
            // Whole bytes of free or used blocks in one step.
            if i.is_multiple_of(8) && i + 8 <= self.blocks && (byte == 0 || byte == 0xFF) {
                if byte == 0xFF {
                    push_run(&mut runs, i, 8);
                }
                i += 8;
                continue;
            }
            if byte & (1 << (i % 8)) != 0 {
                push_run(&mut runs, i, 1);
            }
            i += 1;
        }
        runs
    }
}

/// Sets (`used`) or clears `count` bits of the raw bitmap `bytes` from bit `first`; bits past
/// the end of `bytes` are ignored. Used to build bitmaps, including the padding past the end of
/// a group that the spec wants set.
pub fn mark(bytes: &mut [u8], first: u64, count: u64, used: bool) {
    let end = first.saturating_add(count).min(
        u64::try_from(bytes.len())
            .unwrap_or(u64::MAX)
            .saturating_mul(8),
    );
    let mut i = first;
    while i < end {
        let Ok(byte) = usize::try_from(i / 8) else {
            return;
        };
        // Whole bytes in one step.
        let fill = if used { 0xFF } else { 0 };
        if i.is_multiple_of(8) && i + 8 <= end {
            bytes[byte] = fill;
            i += 8;
            continue;
        }
        let bit = 1u8 << (i % 8);
        if used {
            bytes[byte] |= bit;
        } else {
            bytes[byte] &= !bit;
        }
        i += 1;
    }
}

/// Appends `(first, count)` to `runs`, merging it with the last run when adjacent.
fn push_run(runs: &mut Vec<(u64, u64)>, first: u64, count: u64) {
    match runs.last_mut() {
        Some((f, c)) if *f + *c == first => *c += count,
        _ => runs.push((first, count)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::ext4::superblock::{SUPERBLOCK_SIZE, Superblock};

    #[test]
    fn runs_table() {
        // (name, bytes, blocks, runs)
        type Runs = &'static [(u64, u64)];
        let cases: &[(&str, &[u8], u64, Runs)] = &[
            ("empty", &[0, 0], 16, &[]),
            ("full", &[0xFF, 0xFF], 16, &[(0, 16)]),
            ("first and last", &[0x01, 0x80], 16, &[(0, 1), (15, 1)]),
            ("across bytes", &[0xC0, 0xFF, 0x03], 24, &[(6, 12)]),
            ("padding ignored", &[0xFF, 0xFF], 12, &[(0, 12)]),
            ("short bytes", &[0xFF], 100, &[(0, 8)]),
        ];
        for (name, bytes, blocks, want) in cases {
            let map = BlockBitmap::from_bytes(bytes, *blocks);
            assert_eq!(map.used_runs(), *want, "case {name}");
        }
        let map = BlockBitmap::from_bytes(&[0b0000_0100], 8);
        assert!(map.is_used(2) && !map.is_used(3) && !map.is_used(8));
    }

    fn test_layout() -> GroupLayout {
        // A 4 KiB-block filesystem of 3 groups with sparse_super and 2 reserved GDT blocks.
        let mut raw = [0u8; SUPERBLOCK_SIZE];
        raw[0x0..0x4].copy_from_slice(&3000u32.to_le_bytes());
        raw[0x4..0x8].copy_from_slice(&(3 * 32768u32).to_le_bytes());
        raw[0x18..0x1C].copy_from_slice(&2u32.to_le_bytes());
        raw[0x20..0x24].copy_from_slice(&32768u32.to_le_bytes());
        raw[0x28..0x2C].copy_from_slice(&1000u32.to_le_bytes());
        raw[0x38..0x3A].copy_from_slice(&0xEF53u16.to_le_bytes());
        raw[0x4C..0x50].copy_from_slice(&1u32.to_le_bytes());
        raw[0x58..0x5A].copy_from_slice(&256u16.to_le_bytes());
        raw[0x64..0x68].copy_from_slice(&1u32.to_le_bytes());
        raw[0xCE..0xD0].copy_from_slice(&2u16.to_le_bytes());
        let sb = Superblock::from_bytes(&raw).unwrap();
        GroupLayout::new(&sb, &raw).unwrap()
    }

    #[test]
    fn uninit_group_maps_its_backup_and_foreign_metadata() {
        let l = test_layout();
        assert_eq!(
            (l.group_count, l.gdt_blocks, l.inode_table_blocks),
            (3, 1, 63)
        );
        // Group 1 holds a backup (1 + 1 + 2 blocks) and, say, group 2's bitmaps.
        let g1 = 32768;
        let meta = [(g1 + 100, 2), (g1 + 102, 63), (5, 1)];
        let map = BlockBitmap::uninit(&l, 1, &meta);
        assert_eq!(map.used_runs(), vec![(0, 4), (100, 65)]);
        // Group 2 has no backup under sparse_super.
        let map = BlockBitmap::uninit(&l, 2, &meta);
        assert!(map.used_runs().is_empty());
    }

    #[test]
    fn mark_sets_and_clears_ranges() {
        let mut b = [0u8; 4];
        mark(&mut b, 3, 14, true);
        assert_eq!(b, [0xF8, 0xFF, 0x01, 0]);
        mark(&mut b, 8, 4, false);
        assert_eq!(b, [0xF8, 0xF0, 0x01, 0]);
        mark(&mut b, 30, 100, true);
        assert_eq!(b[3], 0xC0, "clipped at the end");
    }

    #[test]
    fn checksum_covers_blocks_per_group_bits() {
        let mut bytes = vec![0u8; 4096];
        let c = BlockBitmap::checksum(7, &bytes, 16384);
        bytes[2048] = 0xFF;
        assert_eq!(BlockBitmap::checksum(7, &bytes, 16384), c, "past bpg/8");
        bytes[2047] = 1;
        assert_ne!(BlockBitmap::checksum(7, &bytes, 16384), c);
    }
}
