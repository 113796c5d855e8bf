//! The gate's check of every block group's metadata, before the writer allocates from it.
//!
//! The writer trusts the group descriptors and bitmaps: a block bitmap that marks used blocks
//! free makes it hand those blocks to new files (multiply-claimed blocks, a damaged `/home`).
//! So for every group, as `e2fsck` passes 0 and 5 do (spec: `group_descr.html`, `bitmaps.html`,
//! `checksums.html`):
//!
//! - the descriptor's checksum (`metadata_csum`: crc32c; `gdt_csum`: crc16);
//! - its block bitmap, inode bitmap and inode table lie inside the filesystem;
//! - with `metadata_csum`, the block and inode bitmap checksums (skipped for groups flagged
//!   `BLOCK_UNINIT` / `INODE_UNINIT`, which have no bitmap on disk);
//! - the block bitmap marks as used every fixed metadata block in the group (superblock and
//!   descriptor backups, reserved descriptor blocks, and every bitmap and inode table placed
//!   there): a bitmap that frees metadata is damaged whatever its checksum says.
//!
//! This reads two blocks per group (256 groups of a 32 GiB root: 2 MiB).

use super::bitmap::BlockBitmap;
use super::gate::GateError;
use super::group_desc::{BG_INODE_UNINIT, DescCsum, GroupLayout, csum_seed};
use super::superblock::{Ext4Error, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE, Superblock, ext4_crc32c};
use crate::disk::{Storage, Window};

fn damaged(what: &'static str, group: u32, why: String) -> GateError {
    GateError::Group { what, group, why }
}

/// Checks every group of the filesystem in `window` (superblock `sb`).
pub fn check_groups<S: Storage>(window: &Window<S>, sb: &Superblock) -> Result<(), GateError> {
    let mut raw = [0u8; SUPERBLOCK_SIZE];
    window
        .read_at(SUPERBLOCK_OFFSET, &mut raw)
        .map_err(Ext4Error::from)?;
    let layout = GroupLayout::new(sb, &raw)?;
    if layout.unsupported.is_some() {
        return Ok(()); // refused by feature before this is reached
    }
    let seed = csum_seed(sb);
    let descs = super::allocation::read_descriptors(window, &layout, seed)?;
    let bs = u64::from(layout.block_size);
    let n = layout.blocks_count;
    let mut metadata: Vec<Vec<(u64, u64)>> = vec![Vec::new(); descs.len()];
    for (g, (d, ok)) in (0u32..).zip(&descs) {
        if !ok {
            return Err(damaged(
                "the descriptor",
                g,
                format!(
                    "has checksum {:04x}, which does not match its content",
                    d.checksum
                ),
            ));
        }
        for (what, first, count) in [
            ("the block bitmap", d.block_bitmap, 1),
            ("the inode bitmap", d.inode_bitmap, 1),
            ("the inode table", d.inode_table, layout.inode_table_blocks),
        ] {
            let end = first.saturating_add(count);
            if first < layout.first_data_block || end > n {
                return Err(damaged(
                    what,
                    g,
                    format!("lies at blocks {first}..{end}, outside the filesystem's {n} blocks"),
                ));
            }
            if let Some(h) = layout.group_of(first) {
                metadata[h as usize].push((first, count));
            }
        }
    }
    let csum = DescCsum::of(sb);
    if csum.enabled() && !layout.metadata_csum {
        // gdt_csum (crc16): read_descriptors checks crc32c only.
        let mut table = vec![0u8; descs.len() * layout.desc_size];
        window
            .read_at(layout.gdt_offset(), &mut table)
            .map_err(Ext4Error::from)?;
        for (g, raw_desc) in (0u32..).zip(table.chunks_exact(layout.desc_size)) {
            let computed = csum.compute(g, raw_desc);
            let stored = u16::from_le_bytes([raw_desc[0x1E], raw_desc[0x1F]]);
            if computed != stored {
                return Err(damaged(
                    "the descriptor",
                    g,
                    format!("has checksum {stored:04x}, {computed:04x} computed"),
                ));
            }
        }
    }
    let mask = if layout.desc_size >= 64 {
        !0u32
    } else {
        0xFFFF
    };
    let mut block = vec![0u8; usize::try_from(bs).unwrap_or(4096)];
    let ipg_bytes = usize::try_from(sb.inodes_per_group / 8).unwrap_or(usize::MAX);
    for (g, (d, _)) in (0u32..).zip(&descs) {
        if !d.block_uninit() {
            window
                .read_at(d.block_bitmap * bs, &mut block)
                .map_err(Ext4Error::from)?;
            if layout.metadata_csum {
                let c = BlockBitmap::checksum(seed, &block, layout.blocks_per_group) & mask;
                if c != d.block_bitmap_csum & mask {
                    return Err(damaged(
                        "the block bitmap",
                        g,
                        format!(
                            "has checksum {:08x} in its descriptor, {c:08x} computed (stale or altered bitmap)",
                            d.block_bitmap_csum & mask
                        ),
                    ));
                }
            }
            let start = layout.group_start(g);
            let map = BlockBitmap::from_bytes(&block, layout.blocks_in_group(g));
            let fixed = layout.super_backup_blocks(g).min(layout.blocks_in_group(g));
            let mut runs = vec![(start, fixed)];
            runs.extend_from_slice(&metadata[g as usize]);
            for (first, count) in runs {
                if let Some(b) = (first..first + count).find(|&b| !map.is_used(b - start)) {
                    return Err(damaged(
                        "the block bitmap",
                        g,
                        format!("marks metadata block {b} free"),
                    ));
                }
            }
        }
        if layout.metadata_csum && d.flags & BG_INODE_UNINIT == 0 {
            window
                .read_at(d.inode_bitmap * bs, &mut block)
                .map_err(Ext4Error::from)?;
            let c = ext4_crc32c(seed, &block[..ipg_bytes.min(block.len())]) & mask;
            if c != d.inode_bitmap_csum & mask {
                return Err(damaged(
                    "the inode bitmap",
                    g,
                    format!(
                        "has checksum {:08x} in its descriptor, {c:08x} computed",
                        d.inode_bitmap_csum & mask
                    ),
                ));
            }
        }
    }
    Ok(())
}
