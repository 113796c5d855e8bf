//! Where a grown filesystem ends: its new block, group, descriptor-block and inode counts.
//!
//! The rules follow what `resize2fs` does when it enlarges a filesystem, so that piimage and
//! `resize2fs` agree on the result for the same partition (the integration tests compare them):
//!
//! - the size is rounded down to whole blocks; without `64bit` (or with `resize_inode`, whose
//!   block pointers are 32-bit) a filesystem of exactly 2^32 blocks becomes 2^32 − 1 blocks and a
//!   larger one is refused;
//! - a last group too small for its own metadata (block and inode bitmap, inode table, and the
//!   superblock and descriptor backup if it has one) plus 50 blocks is left out;
//! - the descriptor table may grow only into the reserved descriptor blocks
//!   (`s_reserved_gdt_blocks`, kept by `resize_inode`), which shrink by as much: moving blocks
//!   out of the way, as offline `resize2fs` can, is not implemented;
//! - `s_r_blocks_count` keeps its fraction of the blocks (rounded down).
//!
//! Spec: `blockgroup.html` (layout, "Reserved GDT blocks") and `super.html`.

use crate::fs::ext4::group_desc::GroupLayout;
use crate::fs::ext4::superblock::Ext4Error;

/// Blocks a last group must hold beyond its own metadata to be kept (as `resize2fs` does).
const LAST_GROUP_SLACK: u64 = 50;

/// The filesystem before growth, as far as the new geometry depends on it.
#[derive(Debug, Clone, Copy)]
pub struct Before<'a> {
    /// Its layout.
    pub layout: &'a GroupLayout,
    /// `s_inodes_per_group`.
    pub inodes_per_group: u32,
    /// `s_r_blocks_count`.
    pub reserved_blocks: u64,
    /// The `64bit` feature.
    pub is64: bool,
    /// The `resize_inode` feature.
    pub resize_inode: bool,
}

/// The geometry after growth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// Blocks in the filesystem.
    pub blocks: u64,
    /// Block groups.
    pub groups: u32,
    /// Blocks of the descriptor table.
    pub gdt_blocks: u64,
    /// Reserved descriptor blocks left (`s_reserved_gdt_blocks`).
    pub reserved_gdt_blocks: u64,
    /// `s_inodes_count`.
    pub inodes: u32,
    /// `s_r_blocks_count`.
    pub reserved_blocks: u64,
}

/// The refusal of a size of `new` blocks for a filesystem of `old` blocks.
pub fn shrinking(new: u64, old: u64) -> Ext4Error {
    Ext4Error::CannotGrow(format!(
        "the new size ({new} blocks) is smaller than the filesystem ({old} blocks); shrinking is \
         not supported"
    ))
}

/// The geometry of `before` grown to fill `new_len_bytes`; `Ok(None)` when that adds no block
/// (the same size, or only a fragment of a group too small to keep).
///
/// # Errors
/// [`Ext4Error::CannotGrow`] for a smaller size (shrinking is not supported), a size past what
/// the format or the reserved descriptor blocks allow, or too many inodes.
pub fn target(before: &Before<'_>, new_len_bytes: u64) -> Result<Option<Target>, Ext4Error> {
    let old = before.layout;
    let bs = u64::from(old.block_size);
    let mut blocks = new_len_bytes / bs;
    if blocks < old.blocks_count {
        return Err(shrinking(blocks, old.blocks_count));
    }
    let limit = u64::from(u32::MAX);
    let narrow = !before.is64 || before.resize_inode;
    if narrow && blocks == limit + 1 {
        blocks = limit;
    }
    if narrow && blocks > limit {
        let why = if before.is64 {
            "are past what the resize inode can address (2^32 - 1)"
        } else {
            "need the `64bit` feature (at most 2^32 - 1 blocks without it)"
        };
        return Err(Ext4Error::CannotGrow(format!("{blocks} blocks {why}")));
    }
    let first = old.first_data_block;
    let bpg = old.blocks_per_group;
    let per_block = bs / u64::try_from(old.desc_size).unwrap_or(u64::MAX).max(1);
    let (groups, gdt_blocks) = loop {
        let data = blocks.saturating_sub(first);
        let groups = data.div_ceil(bpg);
        let gdt_blocks = groups.div_ceil(per_block);
        let last = u32::try_from(groups.saturating_sub(1))
            .map_err(|_| Ext4Error::CannotGrow(format!("{groups} block groups are too many")))?;
        let mut overhead = 2 + old.inode_table_blocks;
        if old.has_super_backup(last) {
            overhead += 1 + gdt_blocks + old.reserved_gdt_blocks;
        }
        let rem = data % bpg;
        if groups > 1 && rem != 0 && rem < overhead + LAST_GROUP_SLACK {
            blocks -= rem;
            continue;
        }
        break (groups, gdt_blocks);
    };
    if blocks <= old.blocks_count {
        return Ok(None);
    }
    let spare = if before.resize_inode {
        old.reserved_gdt_blocks
    } else {
        0
    };
    if gdt_blocks > old.gdt_blocks + spare {
        return Err(Ext4Error::CannotGrow(format!(
            "{groups} block groups need {gdt_blocks} descriptor blocks, and only {} are available \
             ({} in use, {spare} reserved); resize2fs can move blocks to make room, piimage cannot",
            old.gdt_blocks + spare,
            old.gdt_blocks
        )));
    }
    let inodes = groups
        .checked_mul(u64::from(before.inodes_per_group))
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| {
            Ext4Error::CannotGrow(format!(
                "{groups} groups of {} inodes exceed 2^32 inodes",
                before.inodes_per_group
            ))
        })?;
    let reserved_blocks = u64::try_from(
        u128::from(before.reserved_blocks) * u128::from(blocks)
            / u128::from(old.blocks_count.max(1)),
    )
    .unwrap_or(u64::MAX);
    Ok(Some(Target {
        blocks,
        groups: u32::try_from(groups).unwrap_or(u32::MAX),
        gdt_blocks,
        reserved_gdt_blocks: old.reserved_gdt_blocks - (gdt_blocks - old.gdt_blocks).min(spare),
        inodes,
        reserved_blocks,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::ext4::superblock::{SUPERBLOCK_SIZE, Superblock};

    /// The layout `mke2fs -T default` gives a 160 MiB filesystem: 4 KiB blocks, 5120 inodes of
    /// 256 bytes per group, 9 reserved descriptor blocks without `64bit`, 19 with it.
    fn layout(is64: bool) -> GroupLayout {
        let mut raw = [0u8; SUPERBLOCK_SIZE];
        raw[0x0..0x4].copy_from_slice(&10240u32.to_le_bytes());
        raw[0x4..0x8].copy_from_slice(&40960u32.to_le_bytes());
        raw[0x18..0x1C].copy_from_slice(&2u32.to_le_bytes());
        raw[0x20..0x24].copy_from_slice(&32768u32.to_le_bytes());
        raw[0x28..0x2C].copy_from_slice(&5120u32.to_le_bytes());
        raw[0x38..0x3A].copy_from_slice(&0xEF53u16.to_le_bytes());
        raw[0x4C..0x50].copy_from_slice(&1u32.to_le_bytes());
        raw[0x58..0x5A].copy_from_slice(&256u16.to_le_bytes());
        raw[0x64..0x68].copy_from_slice(&1u32.to_le_bytes());
        let rsv: u16 = if is64 { 19 } else { 9 };
        raw[0xCE..0xD0].copy_from_slice(&rsv.to_le_bytes());
        if is64 {
            raw[0x60..0x64].copy_from_slice(&0x80u32.to_le_bytes());
            raw[0xFE..0x100].copy_from_slice(&64u16.to_le_bytes());
        }
        let sb = Superblock::from_bytes(&raw).unwrap();
        GroupLayout::new(&sb, &raw).unwrap()
    }

    const MIB: u64 = 1 << 20;

    #[test]
    fn targets_agree_with_resize2fs() {
        // (name, 64bit, new size, blocks, groups, gdt blocks, reserved gdt blocks)
        // The block counts are what resize2fs 1.47.0 gave for the same filesystem and size.
        let cases: &[(&str, bool, u64, u64, u32, u64, u64)] = &[
            ("inside the last group", false, 240 * MIB, 61440, 2, 1, 9),
            ("to a group boundary", false, 256 * MIB, 65536, 2, 1, 9),
            ("new groups", false, 3700 * MIB, 947_200, 29, 1, 9),
            ("second gdt block", false, 16600 * MIB, 4_249_600, 130, 2, 8),
            (
                "64bit, second gdt block",
                true,
                8300 * MIB,
                2_124_800,
                65,
                2,
                18,
            ),
            // 28 groups and 300 blocks: 300 < 2 + 320 + 50, the 29th group is left out.
            (
                "tiny last group",
                false,
                (28 * 32768 + 300) * 4096,
                917_504,
                28,
                1,
                9,
            ),
            // Group 25 holds a backup: it needs 2 + 320 + 1 + 1 + 9 + 50 = 383 blocks.
            (
                "backup group, too small",
                false,
                (25 * 32768 + 382) * 4096,
                819_200,
                25,
                1,
                9,
            ),
            (
                "backup group, kept",
                false,
                (25 * 32768 + 383) * 4096,
                819_583,
                26,
                1,
                9,
            ),
        ];
        for &(name, is64, len, blocks, groups, gdt, rsv) in cases {
            let l = layout(is64);
            let before = Before {
                layout: &l,
                inodes_per_group: 5120,
                reserved_blocks: 2048,
                is64,
                resize_inode: true,
            };
            let t = target(&before, len).unwrap().unwrap();
            assert_eq!(
                (t.blocks, t.groups, t.gdt_blocks, t.reserved_gdt_blocks),
                (blocks, groups, gdt, rsv),
                "case {name}"
            );
            assert_eq!(t.inodes, groups * 5120, "case {name}");
            assert_eq!(t.reserved_blocks, blocks / 20, "case {name}: 5 % kept");
        }
    }

    #[test]
    fn no_growth_and_refusals() {
        let l = layout(false);
        let mut before = Before {
            layout: &l,
            inodes_per_group: 5120,
            reserved_blocks: 2048,
            is64: false,
            resize_inode: true,
        };
        assert_eq!(target(&before, 160 * MIB).unwrap(), None, "same size");
        assert_eq!(
            target(&before, 160 * MIB + 4095).unwrap(),
            None,
            "part of a block"
        );
        let cannot = |r: Result<Option<Target>, Ext4Error>| match r {
            Err(Ext4Error::CannotGrow(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(cannot(target(&before, 100 * MIB)).contains("shrinking"));
        // 1 + 9 descriptor blocks hold 1280 groups of 32-byte descriptors.
        assert!(target(&before, 1280 * 128 * MIB).is_ok());
        let m = cannot(target(&before, 1281 * 128 * MIB));
        assert!(m.contains("11 descriptor blocks"), "{m}");
        before.resize_inode = false;
        assert!(cannot(target(&before, 129 * 128 * MIB)).contains("descriptor blocks"));
        assert!(cannot(target(&before, 17 << 40)).contains("64bit"));
        let l64 = layout(true);
        let mut wide = Before {
            layout: &l64,
            is64: true,
            ..before
        };
        wide.resize_inode = true;
        assert!(cannot(target(&wide, 17 << 40)).contains("resize inode"));
        wide.resize_inode = false;
        assert!(cannot(target(&wide, 17 << 40)).contains("descriptor blocks"));
    }
}
