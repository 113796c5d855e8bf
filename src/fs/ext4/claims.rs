//! Blocks claimed by inodes but marked free: the damage a bitmap with a *valid* checksum can
//! still carry (`debugfs freeb` on a file's block recomputes the checksum). The writer would
//! hand such a block to a new file, and two files would share it.
//!
//! So before writing, every inode the inode bitmaps mark used is read from the inode tables
//! (`inodes.html`), and every block it claims must be used in the block bitmaps
//! ([`super::allocation::read_block_usage`], which also computes `BLOCK_UNINIT` groups):
//! extent trees (`ifork.html`: the index and leaf blocks and each extent's blocks), classic
//! block maps (12 direct pointers, then single, double and triple indirect blocks, as the
//! resize inode uses) and the extended-attribute block. Device nodes, FIFOs, sockets and fast
//! symlinks claim no block. With `metadata_csum` the same walk verifies each in-use inode's
//! checksum, each extent tree block's tail and each directory block's (leaf tail or htree
//! `dx_tail`) against the inode's seed (`checksums.html`), so no damaged structure is written
//! on, even one the build does not touch. Walks are bounded: an extent tree at most 5 levels deep with at
//! most as many entries as fit its node, block numbers inside the filesystem.
//!
//! Cost: one read of the used part of each inode table (`bg_itable_unused` is honoured with
//! `gdt_csum`/`metadata_csum`), 256 bytes per inode (under 1 MiB on the fixtures, about 25 MiB
//! for the 100 000 inodes of a full Raspberry Pi OS root), plus the extent and indirect blocks.
//! It runs once per node, when the node's writer opens. Its time was not measured separately
//! (a whole debug-build one-node build of the Bookworm fixture takes about 6 s here).

use super::allocation::read_block_usage;
use super::extent::{self, Header};
use super::features::feature;
use super::gate::GateError;
use super::group_desc::{BG_INODE_UNINIT, GroupLayout, csum_seed};
use super::inode::{self, EXTENTS_FL, INDEX_FL, INLINE_DATA_FL};
use super::superblock::{Ext4Error, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE, Superblock, ext4_crc32c};
use crate::disk::{Storage, Window};
use crate::fs::bytes::{le16, le32};

struct Walk<'a, S: Storage> {
    window: &'a Window<S>,
    bs: u64,
    blocks: u64,
    used: &'a [(u64, u64)],
    ino: u64,
    buf: Vec<u8>,
    /// With `metadata_csum`: the inode's checksum seed, for its extent and directory blocks.
    csum: Option<u32>,
    /// The data runs of a directory inode, collected to verify its blocks.
    dir_runs: Option<Vec<(u64, u64)>>,
}

impl<S: Storage> Walk<'_, S> {
    fn bad(&self, why: String) -> GateError {
        GateError::Inode { ino: self.ino, why }
    }

    /// `count` blocks from `first` must be inside the filesystem and used.
    fn claim(&self, first: u64, count: u64, what: &str) -> Result<(), GateError> {
        let end = first.saturating_add(count);
        if first == 0 || end > self.blocks {
            return Err(self.bad(format!(
                "its {what} claims blocks {first}..{end}, outside the filesystem's {} blocks",
                self.blocks
            )));
        }
        let mut b = first;
        while b < end {
            // The used run holding b, if any.
            let i = self.used.partition_point(|&(f, _)| f <= b);
            match i.checked_sub(1).map(|i| self.used[i]) {
                Some((f, c)) if b < f + c => b = f + c,
                _ => {
                    return Err(self.bad(format!(
                        "its {what} uses block {b}, which the block bitmap marks free"
                    )));
                }
            }
        }
        Ok(())
    }

    fn read_block(&mut self, b: u64) -> Result<Vec<u8>, GateError> {
        self.window
            .read_at(b * self.bs, &mut self.buf)
            .map_err(Ext4Error::from)?;
        Ok(self.buf.clone())
    }

    fn extents(&mut self, node: &[u8], depth_left: u16) -> Result<(), GateError> {
        let header = Header::parse(node)
            .ok_or_else(|| self.bad("an extent node has no F30A magic".into()))?;
        if !header.entries_fit(node.len()) || header.depth > depth_left {
            return Err(self.bad(format!(
                "an extent node claims {} entries at depth {}",
                header.entries, header.depth
            )));
        }
        for i in 0..usize::from(header.entries) {
            if header.depth == 0 {
                let e = extent::extent(node, i);
                let len = u64::from(e.len);
                self.claim(e.start, len, "data")?;
                // An unwritten extent holds no directory entries.
                if !e.unwritten
                    && let Some(runs) = self.dir_runs.as_mut()
                {
                    runs.push((e.start, len));
                }
            } else {
                let leaf = extent::index(node, i).leaf;
                self.claim(leaf, 1, "extent tree")?;
                let child = self.read_block(leaf)?;
                if let Some(seed) = self.csum {
                    self.extent_tail(&child, leaf, seed)?;
                }
                self.extents(&child, header.depth - 1)?;
            }
        }
        Ok(())
    }

    /// An extent tree block's `ext4_extent_tail`: `crc32c(inode seed, the block up to the tail)`
    /// right after its `eh_max` entries.
    fn extent_tail(&self, node: &[u8], block: u64, seed: u32) -> Result<(), GateError> {
        let Some(at) = Header::parse(node)
            .map(|h| h.tail_offset())
            .filter(|at| at + 4 <= node.len())
        else {
            // The walk reports the bad header.
            return Ok(());
        };
        let want = ext4_crc32c(seed, &node[..at]);
        if le32(node, at) != want {
            return Err(self.bad(format!(
                "its extent tree block {block} fails its checksum (stored {:#010x}, computed {want:#010x})",
                le32(node, at)
            )));
        }
        Ok(())
    }

    /// Verifies the checksums of a directory's blocks (`dirents.html`): a leaf block ends in a
    /// 12-byte tail entry (inode 0, `rec_len` 12, file type 0xDE) holding
    /// `crc32c(inode seed, the block before the tail)`; an htree node (the root, block 0 of an
    /// indexed directory, or an interior node: one empty entry spanning the block) holds
    /// `crc32c(inode seed, the header and its `count` entries, then the tail's reserved word and a zero word)`
    /// in the `dx_tail` after its `limit` entries. A block with neither is left to the writer's
    /// crate, as is a directory without `metadata_csum`.
    fn directory(
        &mut self,
        runs: &[(u64, u64)],
        indexed: bool,
        seed: u32,
    ) -> Result<(), GateError> {
        let bs = usize::try_from(self.bs).unwrap_or(4096);
        let mut logical = 0u64;
        for &(start, len) in runs {
            for b in start..start + len {
                let block = self.read_block(b)?;
                let first_inode = le32(&block, 0);
                let first_len = usize::from(le16(&block, 4));
                let count_offset = if indexed && logical == 0 {
                    Some(0x20)
                } else if indexed && first_inode == 0 && first_len == bs {
                    Some(8)
                } else {
                    None
                };
                logical += 1;
                if let Some(co) = count_offset {
                    self.dx_tail(&block, co, b, seed)?;
                    continue;
                }
                let tail = &block[bs - 12..];
                let is_tail =
                    le32(tail, 0) == 0 && le16(tail, 4) == 12 && tail[6] == 0 && tail[7] == 0xDE;
                if !is_tail {
                    continue;
                }
                let want = ext4_crc32c(seed, &block[..bs - 12]);
                if le32(tail, 8) != want {
                    return Err(self.bad(format!(
                        "its directory block {b} fails its checksum (stored {:#010x}, computed {want:#010x})",
                        le32(tail, 8)
                    )));
                }
            }
        }
        Ok(())
    }

    fn dx_tail(&self, block: &[u8], co: usize, b: u64, seed: u32) -> Result<(), GateError> {
        let limit = usize::from(le16(block, co));
        let count = usize::from(le16(block, co + 2));
        let tail = co + 8 * limit;
        if count > limit || tail + 8 > block.len() {
            return Err(self.bad(format!(
                "its htree block {b} claims {count} of {limit} index entries, more than fit"
            )));
        }
        let c = ext4_crc32c(seed, &block[..co + 8 * count]);
        let c = ext4_crc32c(c, &block[tail..tail + 4]);
        let want = ext4_crc32c(c, &[0; 4]);
        if le32(block, tail + 4) != want {
            return Err(self.bad(format!(
                "its htree block {b} fails its checksum (stored {:#010x}, computed {want:#010x})",
                le32(block, tail + 4)
            )));
        }
        Ok(())
    }

    fn indirect(&mut self, b: u64, level: u8) -> Result<(), GateError> {
        if b == 0 {
            return Ok(());
        }
        self.claim(b, 1, if level == 0 { "data" } else { "block map" })?;
        if level == 0 {
            return Ok(());
        }
        let block = self.read_block(b)?;
        for p in block.chunks_exact(4) {
            let next = u64::from(u32::from_le_bytes([p[0], p[1], p[2], p[3]]));
            self.indirect(next, level - 1)?;
        }
        Ok(())
    }
}

/// Checks that every block an in-use inode claims is marked used.
///
/// # Errors
/// [`GateError::Inode`] naming the inode and block, or a read error.
pub fn check_claims<S: Storage>(window: &Window<S>, sb: &Superblock) -> Result<(), GateError> {
    let mut raw = [0u8; SUPERBLOCK_SIZE];
    window
        .read_at(SUPERBLOCK_OFFSET, &mut raw)
        .map_err(Ext4Error::from)?;
    let layout = GroupLayout::new(sb, &raw)?;
    if layout.unsupported.is_some() {
        return Ok(());
    }
    let usage = read_block_usage(window)?;
    let descs = super::allocation::read_descriptors(window, &layout, csum_seed(sb))?;
    let bs = u64::from(layout.block_size);
    let isz = usize::from(sb.inode_size);
    let ipg = u64::from(sb.inodes_per_group);
    let lazy = sb
        .features
        .intersects(feature::UNINIT_BG.or(feature::METADATA_CSUM));
    let is64 = sb.features.contains(feature::BIT64);
    let seed = csum_seed(sb);
    let csums = sb.features.contains(feature::METADATA_CSUM);
    let mut walk = Walk {
        window,
        bs,
        blocks: layout.blocks_count,
        used: &usage.used,
        ino: 0,
        buf: vec![0u8; usize::try_from(bs).unwrap_or(4096)],
        csum: None,
        dir_runs: None,
    };
    let mut bitmap = vec![0u8; usize::try_from(bs).unwrap_or(4096)];
    for (g, (d, _)) in (0u64..).zip(&descs) {
        if d.flags & BG_INODE_UNINIT != 0 {
            continue;
        }
        let unused = if lazy { u64::from(d.itable_unused) } else { 0 };
        let count = ipg.saturating_sub(unused);
        if count == 0 {
            continue;
        }
        window
            .read_at(d.inode_bitmap * bs, &mut bitmap)
            .map_err(Ext4Error::from)?;
        let len = usize::try_from(count).unwrap_or(0) * isz;
        let mut table = vec![0u8; len];
        window
            .read_at(d.inode_table * bs, &mut table)
            .map_err(Ext4Error::from)?;
        for i in 0..usize::try_from(count).unwrap_or(0) {
            if bitmap[i / 8] & (1 << (i % 8)) == 0 {
                continue;
            }
            walk.ino = g * ipg + i as u64 + 1;
            let inode = &table[i * isz..(i + 1) * isz];
            let mode = le16(inode, 0) & 0xF000;
            let flags = inode::flags(inode);
            let ino32 = u32::try_from(walk.ino).unwrap_or(u32::MAX);
            walk.csum = None;
            if csums {
                let (stored, want) = (
                    inode::stored_checksum(inode),
                    inode::checksum(seed, ino32, inode),
                );
                // e2fsprogs takes an all-zero inode (never initialised) as valid.
                if stored != want && inode.iter().any(|&b| b != 0) {
                    return Err(walk.bad(format!(
                        "it fails its checksum (stored {stored:#010x}, computed {want:#010x})"
                    )));
                }
                let c = ext4_crc32c(seed, &ino32.to_le_bytes());
                walk.csum = Some(ext4_crc32c(c, &inode[0x64..0x68]));
            }
            walk.dir_runs = (mode == 0x4000 && walk.csum.is_some()).then(Vec::new);
            let acl = u64::from(le32(inode, 0x68))
                | if is64 {
                    u64::from(le16(inode, 0x76)) << 32
                } else {
                    0
                };
            if acl != 0 {
                walk.claim(acl, 1, "extended-attribute block")?;
            }
            let i_block = inode::i_block(inode);
            let blocks = le32(inode, 0x1C);
            let special = matches!(mode, 0x1000 | 0x2000 | 0x6000 | 0xC000);
            let fast_symlink = mode == 0xA000 && flags & EXTENTS_FL == 0 && blocks == 0;
            if special || fast_symlink || flags & INLINE_DATA_FL != 0 || mode == 0 && walk.ino > 11
            {
                continue;
            }
            if flags & EXTENTS_FL != 0 {
                walk.extents(i_block, extent::MAX_DEPTH)?;
                if let (Some(runs), Some(seed)) = (walk.dir_runs.take(), walk.csum) {
                    walk.directory(&runs, flags & INDEX_FL != 0, seed)?;
                }
            } else {
                for (k, p) in i_block.chunks_exact(4).enumerate() {
                    let b = u64::from(u32::from_le_bytes([p[0], p[1], p[2], p[3]]));
                    let level = match k {
                        0..=11 => 0,
                        12 => 1,
                        13 => 2,
                        _ => 3,
                    };
                    walk.indirect(b, level)?;
                }
            }
        }
    }
    Ok(())
}
