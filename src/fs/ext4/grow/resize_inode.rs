//! The resize inode (inode 7, feature `resize_inode`): how the reserved descriptor blocks are
//! recorded, so that e2fsck and the kernel's online resize find them.
//!
//! Spec: `blockgroup.html` ("Reserved GDT blocks") and `inodes.html` / `ifork.html` (block
//! maps). The inode is block-mapped and uses only its double-indirect pointer
//! (`i_block[13]`). That block is an array of 32-bit block numbers: entry
//! `(gdt_blocks + i) mod (block_size / 4)` holds the primary reserved descriptor block `i`
//! (the `i`-th block after the descriptor table). Each of those blocks is in turn read as an
//! indirect block listing its copies in the groups that hold a backup (1, 3, 5, 7, 9, 25, 27, …
//! in ascending order), which are the inode's "data" blocks. `i_blocks` counts the double-indirect
//! block, the reserved blocks and all their copies.
//!
//! Growth rebuilds the whole structure for the new geometry (reserved blocks taken by the
//! descriptor table drop out, new backup groups add copies), after checking that the existing one
//! matches the old geometry the same way e2fsck does.

use crate::fs::bytes::{le32, put32};
use crate::fs::ext4::superblock::Ext4Error;

/// The reserved descriptor blocks of one geometry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservedGdt {
    /// Block size in bytes.
    pub block_size: u32,
    /// `s_first_data_block`.
    pub first_data_block: u64,
    /// Blocks per group.
    pub blocks_per_group: u64,
    /// Blocks of the descriptor table.
    pub gdt_blocks: u64,
    /// `s_reserved_gdt_blocks`.
    pub reserved: u64,
    /// The groups other than 0 that hold a backup, ascending.
    pub backup_groups: Vec<u32>,
}

/// The blocks of a rebuilt resize inode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResizeBlocks {
    /// The double-indirect block.
    pub dind: Vec<u8>,
    /// Each primary reserved descriptor block with its contents (the list of its copies).
    pub ind: Vec<(u64, Vec<u8>)>,
    /// Blocks the inode maps (for `i_blocks`).
    pub block_count: u64,
}

fn corrupt(what: String) -> Ext4Error {
    Ext4Error::Corrupt(format!("resize inode: {what}"))
}

impl ReservedGdt {
    fn per_block(&self) -> u64 {
        u64::from(self.block_size / 4)
    }

    /// Block number of the `i`-th primary reserved descriptor block.
    fn primary(&self, i: u64) -> u64 {
        self.first_data_block + 1 + self.gdt_blocks + i
    }

    /// Index of the `i`-th reserved block in the double-indirect block.
    fn dind_index(&self, i: u64) -> usize {
        usize::try_from((self.gdt_blocks + i) % self.per_block()).unwrap_or(0)
    }

    /// The copies of primary block `p` in the backup groups.
    fn copies(&self, p: u64) -> impl Iterator<Item = u64> + '_ {
        self.backup_groups
            .iter()
            .map(move |&g| p + u64::from(g) * self.blocks_per_group)
    }

    /// Checks that the layout can be expressed: 32-bit block numbers, one double-indirect
    /// block, one indirect block per reserved block.
    fn check_fits(&self) -> Result<(), Ext4Error> {
        if self.gdt_blocks + self.reserved > self.per_block() {
            return Err(Ext4Error::Unsupported {
                feature: format!(
                    "resize_inode with {} descriptor and {} reserved blocks (more than one \
                     double-indirect block maps)",
                    self.gdt_blocks, self.reserved
                ),
            });
        }
        if self.backup_groups.len() as u64 > self.per_block() {
            return Err(corrupt(
                "more backup groups than an indirect block lists".into(),
            ));
        }
        let last = self.primary(self.reserved);
        let far = self
            .backup_groups
            .last()
            .map_or(last, |&g| last + u64::from(g) * self.blocks_per_group);
        if u32::try_from(far).is_err() {
            return Err(corrupt(format!("block {far} is past 2^32")));
        }
        Ok(())
    }

    /// Builds the double-indirect block and the reserved blocks' lists for this geometry.
    ///
    /// # Errors
    /// [`Ext4Error::Unsupported`] or [`Ext4Error::Corrupt`] when the geometry cannot be
    /// expressed in a resize inode.
    pub fn build(&self) -> Result<ResizeBlocks, Ext4Error> {
        self.check_fits()?;
        let bs = usize::try_from(self.block_size).unwrap_or(4096);
        let mut dind = vec![0u8; bs];
        let mut ind = Vec::new();
        let mut count = 1;
        for i in 0..self.reserved {
            let p = self.primary(i);
            put32(&mut dind, 4 * self.dind_index(i), block32(p)?);
            let mut list = vec![0u8; bs];
            for (k, copy) in self.copies(p).enumerate() {
                put32(&mut list, 4 * k, block32(copy)?);
            }
            count += 1 + self.backup_groups.len() as u64;
            ind.push((p, list));
        }
        Ok(ResizeBlocks {
            dind,
            ind,
            block_count: count,
        })
    }

    /// Checks existing blocks against this geometry: every reserved block listed at its place in
    /// `dind`, and each one's list (`ind(block)`) naming its copies in order, as e2fsck checks.
    ///
    /// # Errors
    /// [`Ext4Error::Corrupt`] on any difference, or what `ind` returns.
    pub fn verify(
        &self,
        dind: &[u8],
        mut ind: impl FnMut(u64) -> Result<Vec<u8>, Ext4Error>,
    ) -> Result<(), Ext4Error> {
        self.check_fits()?;
        for i in 0..self.reserved {
            let p = self.primary(i);
            let at = self.dind_index(i);
            let found = le32(dind, 4 * at);
            if u64::from(found) != p {
                return Err(corrupt(format!(
                    "entry {at} of the double-indirect block is {found}, not reserved block {p}"
                )));
            }
            let list = ind(p)?;
            for (k, copy) in self.copies(p).enumerate() {
                let found = le32(&list, 4 * k);
                if u64::from(found) != copy {
                    return Err(corrupt(format!(
                        "reserved block {p} lists {found} as copy {k}, not {copy}"
                    )));
                }
            }
        }
        Ok(())
    }
}

fn block32(b: u64) -> Result<u32, Ext4Error> {
    u32::try_from(b).map_err(|_| corrupt(format!("block {b} is past 2^32")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `mke2fs -T default` made for 160 MiB without `64bit`: descriptor block 1, reserved
    /// blocks 2..=10 in entries 1..=9 of the double-indirect block, each with one copy in group 1.
    fn mke2fs_160m() -> ReservedGdt {
        ReservedGdt {
            block_size: 4096,
            first_data_block: 0,
            blocks_per_group: 32768,
            gdt_blocks: 1,
            reserved: 9,
            backup_groups: vec![1],
        }
    }

    #[test]
    fn builds_what_mke2fs_made() {
        let r = mke2fs_160m().build().unwrap();
        let entries: Vec<(usize, u32)> = (0..1024)
            .map(|i| (i, le32(&r.dind, 4 * i)))
            .filter(|&(_, v)| v != 0)
            .collect();
        assert_eq!(
            entries,
            (1..=9)
                .map(|i| (i, u32::try_from(i).unwrap() + 1))
                .collect::<Vec<_>>()
        );
        assert_eq!(r.ind[0].0, 2);
        assert_eq!(le32(&r.ind[0].1, 0), 32770);
        assert_eq!(le32(&r.ind[0].1, 4), 0);
        // debugfs: "Blockcount: 152" sectors = 19 blocks.
        assert_eq!(r.block_count, 19);
        let lookup = |b: u64| {
            Ok(r.ind
                .iter()
                .find(|(p, _)| *p == b)
                .map(|(_, l)| l.clone())
                .unwrap_or_default())
        };
        mke2fs_160m().verify(&r.dind, lookup).unwrap();
    }

    #[test]
    fn growth_consumes_and_extends() {
        // 130 groups: a second descriptor block (block 2 leaves the reserve), backups in 1, 3,
        // 5, 7, 9, 25, 27, 49, 81, 125.
        let mut g = mke2fs_160m();
        g.gdt_blocks = 2;
        g.reserved = 8;
        g.backup_groups = vec![1, 3, 5, 7, 9, 25, 27, 49, 81, 125];
        let r = g.build().unwrap();
        assert_eq!(le32(&r.dind, 4), 0, "block 2 is a descriptor block now");
        assert_eq!(le32(&r.dind, 8), 3, "entry 2 keeps block 3");
        assert_eq!(r.ind.len(), 8);
        let list: Vec<u32> = (0..11).map(|k| le32(&r.ind[0].1, 4 * k)).collect();
        assert_eq!(list[0], 3 + 32768);
        assert_eq!(list[9], 3 + 125 * 32768);
        assert_eq!(list[10], 0);
        assert_eq!(r.block_count, 1 + 8 * 11);
        // The old structure no longer matches the new geometry.
        let old = mke2fs_160m().build().unwrap();
        let e = g
            .verify(&old.dind, |_| Ok(vec![0; 4096]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("resize inode"), "{e}");
    }

    #[test]
    fn refuses_what_it_cannot_express() {
        let mut g = mke2fs_160m();
        g.reserved = 1024;
        assert!(matches!(g.build(), Err(Ext4Error::Unsupported { .. })));
        let mut g = mke2fs_160m();
        g.backup_groups = vec![1, 177_147];
        assert!(matches!(g.build(), Err(Ext4Error::Corrupt(_))));
    }
}
