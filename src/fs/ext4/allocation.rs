//! Which blocks of an ext4 filesystem are in use, read from its group descriptors and block
//! bitmaps (never guessed from the data: an allocated block may well hold zeros).
//!
//! Used by the bmap writer, which must map every block the filesystem needs. Conservative
//! choices, each of which can only map more:
//! - a group flagged `BLOCK_UNINIT` gets the bitmap the kernel would compute for it
//!   ([`BlockBitmap::uninit`]);
//! - a group whose descriptor or bitmap checksum (`metadata_csum`) does not match, or whose
//!   bitmap lies outside the filesystem, counts as wholly used;
//! - every bitmap, inode table, superblock and descriptor-table backup is counted used whatever
//!   the bitmaps say, and so are the blocks before `s_first_data_block`;
//! - a layout piimage does not decode (`meta_bg`, `bigalloc`) counts as wholly used.

use super::bitmap::BlockBitmap;
use super::group_desc::{GroupDesc, GroupLayout, csum_seed, desc_checksum};
use super::superblock::{Ext4Error, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE, Superblock};
use crate::disk::{Storage, Window};

/// The blocks an ext4 filesystem uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockUsage {
    /// Block size in bytes.
    pub block_size: u32,
    /// Blocks in the filesystem.
    pub blocks_count: u64,
    /// Used blocks as sorted, disjoint, non-adjacent `(first, count)` runs.
    pub used: Vec<(u64, u64)>,
    /// Groups counted wholly used because their metadata did not check out.
    pub distrusted_groups: Vec<u32>,
    /// Set when the whole filesystem counts as used, with the reason (an unsupported layout).
    pub whole: Option<&'static str>,
}

impl BlockUsage {
    /// The number of used blocks.
    pub fn used_blocks(&self) -> u64 {
        self.used.iter().map(|&(_, c)| c).sum()
    }
}

/// Reads the block usage of the ext4 filesystem in `window`.
///
/// # Errors
/// The superblock is invalid, or reading fails.
pub fn read_block_usage<S: Storage>(window: &Window<S>) -> Result<BlockUsage, Ext4Error> {
    let mut raw = [0u8; SUPERBLOCK_SIZE];
    window.read_at(SUPERBLOCK_OFFSET, &mut raw)?;
    let sb = Superblock::from_bytes(&raw)?;
    let layout = GroupLayout::new(&sb, &raw)?;
    if let Some(why) = layout.unsupported {
        return Ok(BlockUsage {
            block_size: layout.block_size,
            blocks_count: layout.blocks_count,
            used: vec![(0, layout.blocks_count)],
            distrusted_groups: Vec::new(),
            whole: Some(why),
        });
    }
    let bs = u64::from(layout.block_size);
    let seed = csum_seed(&sb);
    let descs = read_descriptors(window, &layout, seed)?;

    // Every group's fixed metadata, bucketed by the group it lies in (flex_bg puts the bitmaps
    // and inode tables of many groups into the first group of each flex group).
    let mut metadata: Vec<Vec<(u64, u64)>> = vec![Vec::new(); descs.len()];
    let mut runs: Vec<(u64, u64)> = Vec::new();
    if layout.first_data_block > 0 {
        runs.push((0, layout.first_data_block));
    }
    for (d, _) in &descs {
        for run in [
            (d.block_bitmap, 1),
            (d.inode_bitmap, 1),
            (d.inode_table, layout.inode_table_blocks),
        ] {
            let run = clamp(run, layout.blocks_count);
            if run.1 == 0 {
                continue;
            }
            runs.push(run);
            if let Some(g) = layout.group_of(run.0) {
                metadata[g as usize].push(run);
            }
        }
    }

    let mut distrusted = Vec::new();
    let mut block = vec![0u8; usize::try_from(bs).unwrap_or(4096)];
    for (g, (d, desc_ok)) in (0u32..).zip(&descs) {
        let start = layout.group_start(g);
        let len = layout.blocks_in_group(g);
        runs.push((start, layout.super_backup_blocks(g).min(len)));
        let bitmap = if !desc_ok {
            None
        } else if d.block_uninit() {
            Some(BlockBitmap::uninit(&layout, g, &metadata[g as usize]))
        } else if d.block_bitmap < layout.blocks_count {
            window.read_at(d.block_bitmap * bs, &mut block)?;
            let csum_ok = !layout.metadata_csum || {
                let c = BlockBitmap::checksum(seed, &block, layout.blocks_per_group);
                let mask = if layout.desc_size >= 64 { !0 } else { 0xFFFF };
                c & mask == d.block_bitmap_csum
            };
            csum_ok.then(|| BlockBitmap::from_bytes(&block, len))
        } else {
            None
        };
        match bitmap {
            Some(map) => runs.extend(map.used_runs().into_iter().map(|(f, c)| (start + f, c))),
            None => {
                distrusted.push(g);
                runs.push((start, len));
            }
        }
    }
    Ok(BlockUsage {
        block_size: layout.block_size,
        blocks_count: layout.blocks_count,
        used: merge_runs(runs),
        distrusted_groups: distrusted,
        whole: None,
    })
}

/// The descriptors of every group, each with whether its checksum matched (always true
/// without `metadata_csum`).
pub(super) fn read_descriptors<S: Storage>(
    window: &Window<S>,
    layout: &GroupLayout,
    seed: u32,
) -> Result<Vec<(GroupDesc, bool)>, Ext4Error> {
    let size = layout.desc_size;
    let total = usize::try_from(layout.group_count)
        .ok()
        .and_then(|n| n.checked_mul(size))
        .ok_or_else(|| Ext4Error::Corrupt("descriptor table too large".into()))?;
    let mut table = vec![0u8; total];
    window.read_at(layout.gdt_offset(), &mut table)?;
    Ok((0u32..)
        .zip(table.chunks_exact(size))
        .map(|(g, raw)| {
            let d = GroupDesc::from_bytes(raw, size);
            let ok = !layout.metadata_csum || desc_checksum(seed, g, raw) == d.checksum;
            (d, ok)
        })
        .collect())
}

fn clamp((first, count): (u64, u64), limit: u64) -> (u64, u64) {
    let end = first.saturating_add(count).min(limit);
    (first.min(limit), end.saturating_sub(first.min(limit)))
}

/// Sorts `(first, count)` runs and merges overlapping and adjacent ones; drops empty runs.
pub fn merge_runs(mut runs: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    runs.retain(|&(_, c)| c > 0);
    runs.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(runs.len());
    for (first, count) in runs {
        let end = first.saturating_add(count);
        match out.last_mut() {
            Some((f, c)) if *f + *c >= first => *c = (*c).max(end - *f),
            _ => out.push((first, count)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_table() {
        type Runs = &'static [(u64, u64)];
        let cases: &[(&str, Runs, Runs)] = &[
            ("empty", &[], &[]),
            ("zero-length dropped", &[(5, 0)], &[]),
            ("adjacent", &[(0, 2), (2, 3)], &[(0, 5)]),
            ("overlap, unsorted", &[(10, 5), (0, 12)], &[(0, 15)]),
            ("contained", &[(0, 10), (2, 3)], &[(0, 10)]),
            ("disjoint", &[(7, 1), (0, 1)], &[(0, 1), (7, 1)]),
        ];
        for (name, input, want) in cases {
            assert_eq!(merge_runs(input.to_vec()), *want, "case {name}");
        }
    }

    #[test]
    fn clamp_to_the_filesystem() {
        assert_eq!(clamp((5, 10), 100), (5, 10));
        assert_eq!(clamp((95, 10), 100), (95, 5));
        assert_eq!(clamp((150, 10), 100), (100, 0));
    }
}
