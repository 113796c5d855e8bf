//! Offline growth of an ext4 filesystem to fill a larger partition (what `resize2fs` does when it
//! enlarges), without mounting anything.
//!
//! Spec: the kernel's ext4 data structures (<https://docs.kernel.org/filesystems/ext4/>):
//! `super.html`, `group_descr.html`, `blockgroup.html` (flexible block groups, `sparse_super`
//! backups in groups 0, 1 and the powers of 3, 5 and 7, "Reserved GDT blocks"), `bitmaps.html`
//! and `checksums.html`. Checked against e2fsprogs by `tests/integration/ext4_grow.rs`
//! (`e2fsck -fn` clean, the same block, inode and group counts as `resize2fs`).
//!
//! [`grow`] does, in this order of computation (nothing is written before everything is known
//! and checked):
//!
//! 1. the new geometry (`grow/geometry.rs`): blocks rounded down, a too-small last group left out,
//!    descriptor blocks taken from the reserved ones, reserved-blocks fraction kept;
//! 2. the old last group, if it was short, gets the new blocks: their bits in its block bitmap
//!    (padding until now) are cleared, the padding past the new end set;
//! 3. each new group gets its block bitmap, inode bitmap and inode table inside itself, after its
//!    superblock and descriptor backup if it has one. Its bitmaps are written for real (no
//!    `BLOCK_UNINIT`); it is flagged `INODE_UNINIT | INODE_ZEROED` with every inode unused when
//!    descriptors are checksummed, and with no flag otherwise (the flags mean nothing then);
//! 4. the resize inode is rebuilt for the new geometry (`grow/resize_inode.rs`);
//! 5. the superblock gets the new counts (free counts summed from the descriptors,
//!    `s_overhead_clusters` cleared so that the kernel computes it, as `resize2fs` does), and
//!    every superblock and descriptor-table copy is written: new groups' first, the primary
//!    superblock last. Backup superblocks carry their group number and, as e2fsprogs and the
//!    kernel leave them, no "cleanly unmounted" bit, so that a filesystem mounted from a backup
//!    gets checked.
//!
//! **Precondition**: every byte past the old end of the filesystem is zero (the image was
//! extended with zeros, as `truncate` or a sparse copy does). The new inode tables are then
//! already zeroed, which `INODE_ZEROED` records; the first block of each is checked.
//!
//! Growth is not crash-safe (there is no journal transaction): run it on a scratch copy, as
//! piimage does. The result depends only on the input bytes and the new size.
//!
//! Supported: block sizes 1, 2 and 4 KiB; `64bit` or not; `metadata_csum` (with or without
//! `metadata_csum_seed`), `gdt_csum` (`uninit_bg`) or no descriptor checksum; `flex_bg`;
//! `resize_inode` or not; `orphan_file`; and the other features of the official images
//! (`has_journal ext_attr dir_index filetype extent sparse_super large_file huge_file dir_nlink
//! extra_isize`). Refused, naming the reason ([`Ext4Error::Unsupported`],
//! [`Ext4Error::NotClean`], [`Ext4Error::CannotGrow`]), before any write: every other feature
//! (among them `meta_bg`, `bigalloc`, `sparse_super2`), no `sparse_super`, a filesystem not
//! cleanly unmounted, with errors, with orphans or a journal to replay, shrinking, and growth
//! that needs more descriptor blocks than are reserved (resize2fs would move blocks; we do not).
//!
//! Rejected design: placing new groups' bitmaps and inode tables next to their flex group's
//! leader, as `resize2fs` does. It needs a free-space search in old groups and gains little
//! offline; `flex_bg` allows the metadata anywhere, and in-group placement keeps every new group
//! self-contained.

mod geometry;
mod precheck;
mod resize_inode;

pub use geometry::Target;

use super::bitmap::{BlockBitmap, mark};
use super::features::INCOMPAT_64BIT;
use super::group_desc::{BG_INODE_UNINIT, BG_INODE_ZEROED, GroupDesc, GroupLayout};
use super::inode::{self, DIND_BLOCK, RESIZE_INO};
use super::superblock::{
    BLOCK_GROUP_NR_OFFSET, Ext4Error, STATE_OFFSET, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE, SizeFields,
    Superblock, seal,
};
use crate::disk::{Storage, Window};
use crate::fs::bytes::{halves16, le16, put16};
use precheck::Loaded;
use resize_inode::ReservedGdt;

/// `s_state` bit: cleanly unmounted.
const STATE_VALID: u16 = 0x1;

/// What [`grow`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrowReport {
    /// Blocks before.
    pub old_blocks: u64,
    /// Blocks after (equal to `old_blocks` when nothing changed).
    pub new_blocks: u64,
    /// Block groups before.
    pub old_groups: u32,
    /// Block groups after.
    pub new_groups: u32,
}

impl GrowReport {
    /// True when the filesystem got bigger.
    pub fn grew(&self) -> bool {
        self.new_blocks > self.old_blocks
    }
}

/// Grows the ext4 filesystem in `dev` (a partition window or storage whose `len()` is already the
/// new, larger size) to fill its first `new_len_bytes` bytes.
///
/// Precondition: the bytes past the old end of the filesystem are all zero. A size that adds no
/// usable block returns the report unchanged and writes nothing.
///
/// # Errors
/// [`Ext4Error::Unsupported`], [`Ext4Error::NotClean`] or [`Ext4Error::CannotGrow`] when growth
/// is refused (nothing is written then), [`Ext4Error::Corrupt`] and the decoding errors for a
/// damaged filesystem, [`Ext4Error::Io`] when reading or writing fails (`new_len_bytes` past
/// `dev.len()` among them).
pub fn grow<S: Storage>(dev: &S, new_len_bytes: u64) -> Result<GrowReport, Ext4Error> {
    let win = Window::new(dev, 0, new_len_bytes)?;
    let fs = Loaded::read(&win)?;
    let old = &fs.layout;
    let unchanged = GrowReport {
        old_blocks: old.blocks_count,
        new_blocks: old.blocks_count,
        old_groups: old.group_count,
        new_groups: old.group_count,
    };
    let before = geometry::Before {
        layout: old,
        inodes_per_group: fs.sb.inodes_per_group,
        reserved_blocks: fs.sb.reserved_blocks_count,
        is64: fs.sb.features.incompat & INCOMPAT_64BIT != 0,
        resize_inode: fs.resize_inode,
    };
    let Some(target) = geometry::target(&before, new_len_bytes)? else {
        return Ok(unchanged);
    };
    let plan = Plan::new(&win, &fs, &target)?;
    plan.write(&win, &fs)?;
    Ok(GrowReport {
        new_blocks: target.blocks,
        new_groups: target.groups,
        ..unchanged
    })
}

/// One block (or superblock) to write: byte offset and bytes.
type Write = (u64, Vec<u8>);

/// Everything growth writes, computed before the first write.
struct Plan {
    new: GroupLayout,
    /// The new superblock.
    raw: [u8; SUPERBLOCK_SIZE],
    /// The new descriptor table, `gdt_blocks` whole blocks.
    gdt: Vec<u8>,
    /// The old last group's block bitmap, when that group grows.
    last_bitmap: Option<Write>,
    /// The resize inode's blocks, then the inode itself.
    resize: Vec<Write>,
}

impl Plan {
    fn new<S: Storage>(win: &Window<S>, fs: &Loaded, t: &Target) -> Result<Self, Ext4Error> {
        let old = &fs.layout;
        let bs = block_len(old);
        // The new geometry, decoded back through the same code that reads a filesystem.
        let mut size = SizeFields::from_bytes(&fs.raw);
        size.blocks_count = t.blocks;
        size.inodes_count = t.inodes;
        size.reserved_blocks_count = t.reserved_blocks;
        size.reserved_gdt_blocks = u16::try_from(t.reserved_gdt_blocks)
            .map_err(|_| Ext4Error::Corrupt("reserved descriptor blocks past 2^16".into()))?;
        size.free_blocks_count = 0;
        size.free_inodes_count = 0;
        size.overhead_clusters = 0;
        let mut raw = fs.raw;
        size.write_to(&mut raw);
        seal(&mut raw);
        let new = GroupLayout::new(&Superblock::from_bytes(&raw)?, &raw)?;
        if new.group_count != t.groups || new.gdt_blocks != t.gdt_blocks {
            return Err(Ext4Error::Corrupt(format!(
                "new geometry disagrees: {} groups, {} descriptor blocks",
                new.group_count, new.gdt_blocks
            )));
        }

        let ds = old.desc_size;
        let gdt_len = usize::try_from(new.gdt_blocks)
            .ok()
            .and_then(|n| n.checked_mul(bs))
            .ok_or_else(|| Ext4Error::Corrupt("descriptor table too large".into()))?;
        let mut gdt = vec![0u8; gdt_len.max(fs.gdt.len())];
        gdt[..fs.gdt.len()].copy_from_slice(&fs.gdt);
        gdt.truncate(gdt_len);

        let last = old.group_count - 1;
        let last_bitmap = if new.blocks_in_group(last) > old.blocks_in_group(last) {
            Some(extend_last_group(win, fs, &new, &mut gdt)?)
        } else {
            None
        };
        for g in old.group_count..new.group_count {
            let (d, _, _) = new_group(fs, &new, g)?;
            // The inode table must be zero already (the precondition); look at its first block.
            let mut first = vec![0u8; bs];
            win.read_at(d.inode_table * block_u64(old), &mut first)?;
            if first.iter().any(|&b| b != 0) {
                return Err(Ext4Error::CannotGrow(format!(
                    "block {} past the old end of the filesystem is not zero (the partition must \
                     be extended with zeros)",
                    d.inode_table
                )));
            }
            let slot = slot_mut(&mut gdt, g, ds)?;
            d.write_to(slot, ds);
            fs.csum.seal(g, slot);
        }

        let (mut free_blocks, mut free_inodes) = (0u64, 0u64);
        for d in gdt.chunks_exact(ds).take(to_usize(new.group_count)) {
            let d = GroupDesc::from_bytes(d, ds);
            free_blocks += u64::from(d.free_blocks_count);
            free_inodes += u64::from(d.free_inodes_count);
        }
        size.free_blocks_count = free_blocks;
        size.free_inodes_count = u32::try_from(free_inodes)
            .map_err(|_| Ext4Error::Corrupt(format!("{free_inodes} free inodes")))?;
        size.write_to(&mut raw);
        seal(&mut raw);
        Superblock::from_bytes(&raw)?;

        let resize = if fs.resize_inode {
            rebuild_resize_inode(win, fs, &new)?
        } else {
            Vec::new()
        };
        Ok(Self {
            new,
            raw,
            gdt,
            last_bitmap,
            resize,
        })
    }

    fn write<S: Storage>(&self, win: &Window<S>, fs: &Loaded) -> Result<(), Ext4Error> {
        let new = &self.new;
        let bs = block_u64(new);
        // 1. New groups' bitmaps (all past the old end).
        for g in fs.layout.group_count..new.group_count {
            let (d, block_bitmap, inode_bitmap) = new_group(fs, new, g)?;
            win.write_at(d.block_bitmap * bs, &block_bitmap)?;
            win.write_at(d.inode_bitmap * bs, &inode_bitmap)?;
        }
        // 2. The resize inode, then the old last group's bitmap.
        for (at, bytes) in self.resize.iter().chain(&self.last_bitmap) {
            win.write_at(*at, bytes)?;
        }
        // 3. Every backup: descriptor table, then superblock.
        for g in (1..new.group_count).filter(|&g| new.has_super_backup(g)) {
            let start = new.group_start(g);
            win.write_at((start + 1) * bs, &self.gdt)?;
            let mut copy = self.raw;
            put16(&mut copy, BLOCK_GROUP_NR_OFFSET, halves16(g).0);
            let state = le16(&copy, STATE_OFFSET) & !STATE_VALID;
            put16(&mut copy, STATE_OFFSET, state);
            seal(&mut copy);
            win.write_at(start * bs, &copy)?;
        }
        // 4. The primary descriptor table, the primary superblock last.
        win.write_at(new.gdt_offset(), &self.gdt)?;
        win.write_at(SUPERBLOCK_OFFSET, &self.raw)?;
        Ok(())
    }
}

fn block_u64(l: &GroupLayout) -> u64 {
    u64::from(l.block_size)
}

fn block_len(l: &GroupLayout) -> usize {
    to_usize(l.block_size)
}

fn to_usize(n: u32) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn slot_mut(gdt: &mut [u8], g: u32, ds: usize) -> Result<&mut [u8], Ext4Error> {
    let at = to_usize(g).saturating_mul(ds);
    gdt.get_mut(at..at.saturating_add(ds))
        .ok_or_else(|| Ext4Error::Corrupt(format!("no room for descriptor {g}")))
}

/// Checksum of a bitmap as stored in a descriptor: the low 16 bits only in a 32-byte one.
fn stored_bitmap_csum(c: u32, desc_size: usize) -> u32 {
    if desc_size >= 64 { c } else { c & 0xFFFF }
}

/// The descriptor and the block and inode bitmaps of new group `g` of layout `new`.
fn new_group(
    fs: &Loaded,
    new: &GroupLayout,
    g: u32,
) -> Result<(GroupDesc, Vec<u8>, Vec<u8>), Ext4Error> {
    let bs = block_len(new);
    let bits = u64::from(new.block_size) * 8;
    let n = new.blocks_in_group(g);
    let backup = new.super_backup_blocks(g);
    let used = backup + 2 + new.inode_table_blocks;
    if used >= n {
        return Err(Ext4Error::Corrupt(format!(
            "group {g} of {n} blocks cannot hold its {used} blocks of metadata"
        )));
    }
    let ipg = fs.sb.inodes_per_group;
    let mut block_bitmap = vec![0u8; bs];
    mark(&mut block_bitmap, 0, used, true);
    mark(&mut block_bitmap, n, bits - n, true);
    let mut inode_bitmap = vec![0u8; bs];
    mark(
        &mut inode_bitmap,
        u64::from(ipg),
        bits - u64::from(ipg),
        true,
    );
    let lazy = fs.csum.enabled();
    let bitmap_csum = |bytes: &[u8], count: u64| {
        if fs.metadata_csum {
            stored_bitmap_csum(BlockBitmap::checksum(fs.seed, bytes, count), new.desc_size)
        } else {
            0
        }
    };
    let first_meta = new.group_start(g) + backup;
    let d = GroupDesc {
        block_bitmap: first_meta,
        inode_bitmap: first_meta + 1,
        inode_table: first_meta + 2,
        free_blocks_count: u32::try_from(n - used).unwrap_or(0),
        free_inodes_count: ipg,
        used_dirs_count: 0,
        flags: if lazy {
            BG_INODE_UNINIT | BG_INODE_ZEROED
        } else {
            0
        },
        block_bitmap_csum: bitmap_csum(&block_bitmap, new.blocks_per_group),
        inode_bitmap_csum: bitmap_csum(&inode_bitmap, u64::from(ipg)),
        itable_unused: if lazy { ipg } else { 0 },
        checksum: 0,
    };
    Ok((d, block_bitmap, inode_bitmap))
}

/// Gives the old last group its new blocks: updates its descriptor in `gdt` and returns its new
/// block bitmap.
fn extend_last_group<S: Storage>(
    win: &Window<S>,
    fs: &Loaded,
    new: &GroupLayout,
    gdt: &mut [u8],
) -> Result<Write, Ext4Error> {
    let old = &fs.layout;
    let bs = block_u64(old);
    let last = old.group_count - 1;
    let mut d = fs.desc(last)?;
    let (n_old, n_new) = (old.blocks_in_group(last), new.blocks_in_group(last));
    if d.block_uninit() {
        // Neither mke2fs, resize2fs nor the kernel leave the last group without a bitmap, and
        // e2fsck rejects it ("Last group block bitmap uninitialized").
        return Err(Ext4Error::Corrupt(format!(
            "the last group ({last}) is flagged BLOCK_UNINIT"
        )));
    }
    if d.block_bitmap >= old.blocks_count {
        return Err(Ext4Error::Corrupt(format!(
            "group {last} block bitmap at block {} is outside the filesystem",
            d.block_bitmap
        )));
    }
    let mut bitmap = vec![0u8; block_len(old)];
    win.read_at(d.block_bitmap * bs, &mut bitmap)?;
    if fs.metadata_csum {
        let c = BlockBitmap::checksum(fs.seed, &bitmap, old.blocks_per_group);
        if stored_bitmap_csum(c, old.desc_size) != d.block_bitmap_csum {
            return Err(Ext4Error::Corrupt(format!(
                "group {last} block bitmap checksum does not match"
            )));
        }
    }
    let bits = bs * 8;
    mark(&mut bitmap, n_old, n_new - n_old, false);
    mark(&mut bitmap, n_new, bits - n_new, true);
    d.free_blocks_count = u32::try_from(n_new - n_old)
        .ok()
        .and_then(|more| d.free_blocks_count.checked_add(more))
        .ok_or_else(|| Ext4Error::Corrupt(format!("group {last} free block count")))?;
    if fs.metadata_csum {
        let c = BlockBitmap::checksum(fs.seed, &bitmap, old.blocks_per_group);
        d.block_bitmap_csum = stored_bitmap_csum(c, old.desc_size);
    }
    let slot = slot_mut(gdt, last, old.desc_size)?;
    d.write_to(slot, old.desc_size);
    fs.csum.seal(last, slot);
    Ok((d.block_bitmap * bs, bitmap))
}

/// The reserved-descriptor geometry of `layout`.
fn reserved_gdt(layout: &GroupLayout) -> ReservedGdt {
    ReservedGdt {
        block_size: layout.block_size,
        first_data_block: layout.first_data_block,
        blocks_per_group: layout.blocks_per_group,
        gdt_blocks: layout.gdt_blocks,
        reserved: layout.reserved_gdt_blocks,
        backup_groups: (1..layout.group_count)
            .filter(|&g| layout.has_super_backup(g))
            .collect(),
    }
}

/// Checks the resize inode against the old geometry and returns the writes that rebuild it for
/// the new one: the reserved blocks' lists, the double-indirect block, the inode.
fn rebuild_resize_inode<S: Storage>(
    win: &Window<S>,
    fs: &Loaded,
    new: &GroupLayout,
) -> Result<Vec<Write>, Ext4Error> {
    let old = &fs.layout;
    let bs = block_u64(old);
    let ipg = fs.sb.inodes_per_group;
    let table = fs.desc((RESIZE_INO - 1) / ipg)?.inode_table;
    let isz = u64::from(fs.sb.inode_size);
    let at = table * bs + u64::from((RESIZE_INO - 1) % ipg) * isz;
    let mut raw = vec![0u8; usize::from(fs.sb.inode_size)];
    win.read_at(at, &mut raw)?;
    let bad = |what: String| Ext4Error::Corrupt(format!("resize inode: {what}"));
    if fs.metadata_csum
        && inode::stored_checksum(&raw) != inode::checksum(fs.seed, RESIZE_INO, &raw)
    {
        return Err(bad("checksum does not match".into()));
    }
    let pointers = inode::block_pointers(&raw);
    let dind = u64::from(pointers[DIND_BLOCK]);
    let stray = (0..pointers.len()).any(|i| i != DIND_BLOCK && pointers[i] != 0);
    if stray || dind == 0 || dind >= old.blocks_count {
        return Err(bad(format!("block pointers {pointers:?}")));
    }
    let mut block = vec![0u8; block_len(old)];
    win.read_at(dind * bs, &mut block)?;
    reserved_gdt(old).verify(&block, |b| {
        let mut list = vec![0u8; block_len(old)];
        win.read_at(b * bs, &mut list)?;
        Ok(list)
    })?;
    let built = reserved_gdt(new).build()?;
    inode::set_block_count(&mut raw, built.block_count, old.block_size)
        .ok_or_else(|| bad(format!("{} blocks", built.block_count)))?;
    if fs.metadata_csum {
        inode::seal(fs.seed, RESIZE_INO, &mut raw);
    }
    let mut writes: Vec<Write> = built.ind.into_iter().map(|(b, l)| (b * bs, l)).collect();
    writes.push((dind * bs, built.dind));
    writes.push((at, raw));
    Ok(writes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_group_layout() {
        use crate::fs::ext4::group_desc::{DescCsum, csum_seed};
        use crate::fs::ext4::superblock::SUPERBLOCK_SIZE;
        // 4 KiB blocks, 3 groups of 32768 blocks, 8192 inodes (512 table blocks) per group,
        // 2 reserved descriptor blocks, metadata_csum, last group 10000 blocks.
        let mut raw = [0u8; SUPERBLOCK_SIZE];
        raw[0x0..0x4].copy_from_slice(&(3 * 8192u32).to_le_bytes());
        raw[0x4..0x8].copy_from_slice(&(2 * 32768 + 10000u32).to_le_bytes());
        raw[0x18..0x1C].copy_from_slice(&2u32.to_le_bytes());
        raw[0x20..0x24].copy_from_slice(&32768u32.to_le_bytes());
        raw[0x28..0x2C].copy_from_slice(&8192u32.to_le_bytes());
        raw[0x38..0x3A].copy_from_slice(&0xEF53u16.to_le_bytes());
        raw[0x4C..0x50].copy_from_slice(&1u32.to_le_bytes());
        raw[0x58..0x5A].copy_from_slice(&256u16.to_le_bytes());
        raw[0x64..0x68].copy_from_slice(&(0x1u32 | 0x400).to_le_bytes());
        raw[0xCE..0xD0].copy_from_slice(&2u16.to_le_bytes());
        seal(&mut raw);
        let s = Superblock::from_bytes(&raw).unwrap();
        let layout = GroupLayout::new(&s, &raw).unwrap();
        let fs = Loaded {
            raw,
            csum: DescCsum::of(&s),
            metadata_csum: true,
            seed: csum_seed(&s),
            sb: s,
            layout: layout.clone(),
            resize_inode: true,
            gdt: Vec::new(),
        };
        // Group 1 holds a backup (1 + 1 + 2 blocks); group 2 does not and is short.
        let (d, bb, ib) = new_group(&fs, &layout, 1).unwrap();
        assert_eq!(
            (d.block_bitmap, d.inode_bitmap, d.inode_table),
            (32772, 32773, 32774)
        );
        assert_eq!(d.free_blocks_count, 32768 - 4 - 2 - 512);
        assert_eq!(d.flags, BG_INODE_UNINIT | BG_INODE_ZEROED);
        assert_eq!(d.itable_unused, 8192);
        let map = BlockBitmap::from_bytes(&bb, 32768);
        assert_eq!(map.used_runs(), vec![(0, 518)]);
        assert!(
            ib[..1024].iter().all(|&b| b == 0) && ib[1024..].iter().all(|&b| b == 0xFF),
            "8192 free inodes, then padding to the end of the block"
        );
        assert_eq!(
            d.block_bitmap_csum,
            BlockBitmap::checksum(fs.seed, &bb, 32768) & 0xFFFF
        );
        let (d, bb, _) = new_group(&fs, &layout, 2).unwrap();
        assert_eq!(d.block_bitmap, 65536);
        assert_eq!(d.free_blocks_count, 10000 - 514);
        let map = BlockBitmap::from_bytes(&bb, 32768);
        assert_eq!(
            map.used_runs(),
            vec![(0, 514), (10000, 22768)],
            "padding set"
        );
    }
}
