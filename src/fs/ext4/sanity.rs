//! Range checks of the superblock fields the writer and the readers rely on, as `e2fsck`
//! (`check_super_block`) and libext2fs (`ext2fs_open2`) make them, so that a superblock e2fsck
//! calls corrupt is refused before anything is written (spec: the kernel's `super.html`).
//!
//! Each rule below was checked against e2fsck 1.47: a fixture with the field set out of range by
//! `debugfs ssv` fails `e2fsck -fn` (the tests in `tests/integration/hostile/damage.rs` keep
//! that true). Features piimage refuses anyway (`bigalloc`, `meta_bg`) are not special-cased:
//! without `bigalloc` a cluster is a block.

use super::features::feature;
use super::superblock::{SUPERBLOCK_SIZE, Superblock};
use crate::fs::bytes::{le16, le32};

/// A field out of range: its name as `dumpe2fs` / `debugfs ssv` spell it, the value found and
/// the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadField {
    /// The field (`s_desc_size`).
    pub field: &'static str,
    /// The value found.
    pub value: u64,
    /// What it must be.
    pub rule: String,
}

/// Checks the fields of the raw superblock `raw` (decoded as `sb`).
pub fn check_fields(raw: &[u8; SUPERBLOCK_SIZE], sb: &Superblock) -> Result<(), BadField> {
    let bad = |field, value: u64, rule: String| Err(BadField { field, value, rule });
    let bs = u64::from(sb.block_size);
    let log_block = le32(raw, 0x18);
    let log_cluster = le32(raw, 0x1C);
    if log_cluster != log_block {
        return bad(
            "s_log_cluster_size",
            log_cluster.into(),
            format!("{log_block}, as s_log_block_size without bigalloc"),
        );
    }
    let bpg = u64::from(sb.blocks_per_group);
    if !(8..=8 * bs).contains(&bpg) || bpg % 8 != 0 {
        return bad(
            "s_blocks_per_group",
            bpg,
            format!("a multiple of 8 from 8 to {}", 8 * bs),
        );
    }
    let cpg = u64::from(le32(raw, 0x24));
    if cpg != bpg {
        return bad(
            "s_clusters_per_group",
            cpg,
            format!("{bpg}, as s_blocks_per_group without bigalloc"),
        );
    }
    let want_first = u32::from(sb.block_size == 1024);
    if sb.first_data_block != want_first {
        return bad(
            "s_first_data_block",
            sb.first_data_block.into(),
            format!("{want_first} with {}-byte blocks", sb.block_size),
        );
    }
    if sb.rev_level > 1 {
        return bad("s_rev_level", sb.rev_level.into(), "0 or 1".to_owned());
    }
    let inode_size = u64::from(sb.inode_size);
    if sb.rev_level == 1 && (!inode_size.is_power_of_two() || !(128..=bs).contains(&inode_size)) {
        return bad(
            "s_inode_size",
            inode_size,
            format!("a power of two from 128 to {bs}"),
        );
    }
    let ipg = u64::from(sb.inodes_per_group);
    let ipg_max = (bs / inode_size.max(1) * bpg).min(65_536).min(8 * bs);
    if !(1..=ipg_max).contains(&ipg) {
        return bad("s_inodes_per_group", ipg, format!("from 1 to {ipg_max}"));
    }
    let groups = sb
        .blocks_count
        .saturating_sub(sb.first_data_block.into())
        .div_ceil(bpg);
    if u64::from(sb.inodes_count) != groups.saturating_mul(ipg) {
        return bad(
            "s_inodes_count",
            sb.inodes_count.into(),
            format!("{groups} groups x {ipg} inodes per group"),
        );
    }
    if sb.rev_level == 1 {
        let first_ino = u64::from(le32(raw, 0x54));
        if !(11..=u64::from(sb.inodes_count)).contains(&first_ino) {
            return bad(
                "s_first_ino",
                first_ino,
                format!("from 11 to {}", sb.inodes_count),
            );
        }
    }
    let desc_size = u64::from(le16(raw, 0xFE));
    let is64 = sb.features.contains(feature::BIT64);
    if (desc_size != 0 || is64)
        && (!desc_size.is_power_of_two() || desc_size > 1024 || (is64 && desc_size < 64))
    {
        return bad(
            "s_desc_size",
            desc_size,
            if is64 {
                "a power of two from 64 to 1024 with 64bit".to_owned()
            } else {
                "0 or a power of two up to 1024".to_owned()
            },
        );
    }
    let log_flex = u64::from(raw[0x174]);
    if log_flex > 31 {
        return bad("s_log_groups_per_flex", log_flex, "at most 31".to_owned());
    }
    let reserved_gdt = u64::from(le16(raw, 0xCE));
    if reserved_gdt > bs / 4 {
        return bad(
            "s_reserved_gdt_blocks",
            reserved_gdt,
            format!("at most {}", bs / 4),
        );
    }
    if sb.reserved_blocks_count > sb.blocks_count / 2 {
        return bad(
            "s_r_blocks_count",
            sb.reserved_blocks_count,
            format!("at most half of the {} blocks", sb.blocks_count),
        );
    }
    if sb.free_inodes_count > sb.inodes_count {
        return bad(
            "s_free_inodes_count",
            sb.free_inodes_count.into(),
            format!("at most the {} inodes", sb.inodes_count),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A consistent 4 KiB-block superblock: 2 groups of 32768 blocks, 8192 inodes each.
    fn raw() -> [u8; SUPERBLOCK_SIZE] {
        let mut b = [0u8; SUPERBLOCK_SIZE];
        let put32 = |b: &mut [u8; SUPERBLOCK_SIZE], o: usize, v: u32| {
            b[o..o + 4].copy_from_slice(&v.to_le_bytes());
        };
        put32(&mut b, 0x0, 16384); // inodes
        put32(&mut b, 0x4, 65536); // blocks
        put32(&mut b, 0x8, 3276); // reserved
        put32(&mut b, 0xC, 1000); // free blocks
        put32(&mut b, 0x10, 100); // free inodes
        put32(&mut b, 0x18, 2); // log block size
        put32(&mut b, 0x1C, 2); // log cluster size
        put32(&mut b, 0x20, 32768);
        put32(&mut b, 0x24, 32768);
        put32(&mut b, 0x28, 8192);
        b[0x38..0x3A].copy_from_slice(&0xEF53u16.to_le_bytes());
        b[0x3A] = 1;
        put32(&mut b, 0x4C, 1); // rev
        put32(&mut b, 0x54, 11); // first ino
        b[0x58..0x5A].copy_from_slice(&256u16.to_le_bytes());
        put32(&mut b, 0x60, 0x2 | 0x40 | 0x200); // filetype, extent, flex_bg
        b[0xCE..0xD0].copy_from_slice(&15u16.to_le_bytes());
        b[0x174] = 4;
        b
    }

    #[test]
    fn a_consistent_superblock_passes() {
        let b = raw();
        check_fields(&b, &Superblock::from_bytes(&b).unwrap()).unwrap();
    }

    #[test]
    fn issue15_fields_e2fsck_rejects_are_refused_by_name() {
        // (field offset, width, value, field named)
        let cases: &[(usize, usize, u32, &str)] = &[
            (0xFE, 2, 3, "s_desc_size"),
            (0xFE, 2, 0x1000, "s_desc_size"),
            (0xFE, 2, 0xFFFF, "s_desc_size"),
            (0x1C, 4, 5, "s_log_cluster_size"),
            (0x24, 4, 1000, "s_clusters_per_group"),
            (0x54, 4, 3, "s_first_ino"),
            (0x54, 4, 20000, "s_first_ino"),
            (0x174, 1, 0xFF, "s_log_groups_per_flex"),
            (0x20, 4, 1000, "s_clusters_per_group"),
            (0x28, 4, 8, "s_inodes_count"),
            (0x58, 2, 200, "s_inode_size"),
            (0x14, 4, 1, "s_first_data_block"),
            (0x8, 4, 50000, "s_r_blocks_count"),
            (0xCE, 2, 2000, "s_reserved_gdt_blocks"),
            (0x4C, 4, 2, "s_rev_level"),
            (0x0, 4, 100, "s_inodes_count"),
        ];
        for &(at, width, value, field) in cases {
            let mut b = raw();
            b[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
            let Ok(sb) = Superblock::from_bytes(&b) else {
                continue; // the decoder already refuses it
            };
            let err = check_fields(&b, &sb).unwrap_err();
            assert_eq!(err.field, field, "{field} = {value}: {err:?}");
        }
    }
}
