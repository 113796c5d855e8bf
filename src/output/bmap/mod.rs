//! Block maps (`.bmap`, format 2.0, as `bmaptool` reads them) built from what the filesystems
//! use.
//!
//! A bmap lists the *mapped* blocks of an image; `bmaptool copy` writes only those and leaves
//! the rest of the target as it was, so an unmapped block must be one whose content nobody
//! reads. `bmaptool create` maps the file's non-hole extents, which is wrong both ways for an
//! image that was edited in place (allocated blocks that happen to be zero are dropped; stale
//! free blocks are copied). piimage maps instead, in [`map_image`]:
//! - everything outside the partitions whose filesystem it understands: the partition table and
//!   the gap before the first partition, gaps between partitions (extended boot records live
//!   there), the area after the last one (a GPT's backup), and every partition of another kind;
//! - in a FAT partition: the reserved sectors, every FAT copy, the FAT12/16 root directory and
//!   every cluster that any FAT copy marks in use (see [`crate::fs::fat::table`]);
//! - in an ext4 partition: every block its block bitmaps mark in use, with uninitialised groups
//!   and damaged metadata handled conservatively (see [`crate::fs::ext4::allocation`]);
//! - a partition whose filesystem cannot be decoded is mapped whole, with a note.
//!
//! The block size is 4096 bytes; byte ranges are widened to whole blocks. Each range carries
//! the sha256 of its bytes, and the file carries `BmapFileChecksum` (see [`xml`]). Format
//! reference: `yoctoproject/bmaptool` `BmapCreate.py` / `BmapCopy.py`, summarised in
//! `image-formats.md` §4.

mod hasher;
mod mapping;
pub mod parse;
pub mod xml;

pub use hasher::RangeHasher;
pub use mapping::map_image;

/// The bmap block size: 4 KiB, what `bmaptool create` uses on common filesystems.
pub const BMAP_BLOCK_SIZE: u64 = 4096;

/// An inclusive range of mapped blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct BlockRange {
    /// First block.
    pub first: u64,
    /// Last block (inclusive).
    pub last: u64,
}

impl BlockRange {
    /// Number of blocks.
    pub fn blocks(&self) -> u64 {
        self.last - self.first + 1
    }
}

/// The mapped blocks of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockMap {
    /// Image size in bytes.
    pub image_size: u64,
    /// Mapped ranges, sorted, disjoint and non-adjacent.
    pub ranges: Vec<BlockRange>,
    /// Partitions mapped whole because they could not be decoded, and why.
    pub notes: Vec<String>,
}

impl BlockMap {
    /// The map of byte ranges `[start, end)` of an image of `image_size` bytes: each range
    /// widened to whole blocks and clipped to the image, then sorted and merged.
    pub fn from_byte_ranges(image_size: u64, byte_ranges: &[(u64, u64)]) -> Self {
        let blocks = image_size.div_ceil(BMAP_BLOCK_SIZE);
        let mut spans: Vec<(u64, u64)> = byte_ranges
            .iter()
            .filter(|&&(s, e)| s < e && s < image_size)
            .map(|&(s, e)| {
                let first = s / BMAP_BLOCK_SIZE;
                let end = e.min(image_size).div_ceil(BMAP_BLOCK_SIZE).min(blocks);
                (first, end)
            })
            .collect();
        spans.sort_unstable();
        let mut ranges: Vec<BlockRange> = Vec::with_capacity(spans.len());
        for (first, end) in spans {
            match ranges.last_mut() {
                Some(r) if r.last + 1 >= first => r.last = r.last.max(end - 1),
                _ => ranges.push(BlockRange {
                    first,
                    last: end - 1,
                }),
            }
        }
        Self {
            image_size,
            ranges,
            notes: Vec::new(),
        }
    }

    /// `BlocksCount`: the image size in blocks, rounded up.
    pub fn blocks_count(&self) -> u64 {
        self.image_size.div_ceil(BMAP_BLOCK_SIZE)
    }

    /// `MappedBlocksCount`.
    pub fn mapped_blocks(&self) -> u64 {
        self.ranges.iter().map(BlockRange::blocks).sum()
    }

    /// The image bytes `[start, end)` of range `r` (the last block may be short).
    pub fn byte_span(&self, r: &BlockRange) -> (u64, u64) {
        (
            r.first * BMAP_BLOCK_SIZE,
            ((r.last + 1) * BMAP_BLOCK_SIZE).min(self.image_size),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_ranges_become_block_ranges() {
        let r = |first, last| BlockRange { first, last };
        // (name, image size, byte ranges, block ranges)
        type Case = (&'static str, u64, Vec<(u64, u64)>, Vec<BlockRange>);
        let cases: Vec<Case> = vec![
            ("empty", 8192, vec![], vec![]),
            ("one byte", 8192, vec![(5000, 5001)], vec![r(1, 1)]),
            ("widened", 40960, vec![(4095, 8193)], vec![r(0, 2)]),
            (
                "merged when adjacent",
                40960,
                vec![(8192, 12288), (0, 4096), (4096, 8192)],
                vec![r(0, 2)],
            ),
            (
                "kept apart",
                40960,
                vec![(0, 4096), (8192, 8193)],
                vec![r(0, 0), r(2, 2)],
            ),
            (
                "clipped",
                10000,
                vec![(9000, 50000), (20000, 30000)],
                vec![r(2, 2)],
            ),
        ];
        for (name, size, bytes, want) in cases {
            let m = BlockMap::from_byte_ranges(size, &bytes);
            assert_eq!(m.ranges, want, "case {name}");
        }
        let m = BlockMap::from_byte_ranges(10000, &[(0, 10000)]);
        assert_eq!((m.blocks_count(), m.mapped_blocks()), (3, 3));
        assert_eq!(m.byte_span(&m.ranges[0]), (0, 10000));
    }
}
