//! Free-space estimates, checked before each write so that running out of space is a clear
//! error and not a half-applied operation.
//!
//! Estimates are deliberately pessimistic: data blocks, plus one extent-tree leaf and one block
//! in a thousand for extent metadata when a file is split into several extents (kernel docs
//! `ifork.html`: four extents fit in the inode, a leaf block holds `(bs - 12) / 12`), plus one
//! block of directory growth per new entry (`directory.html`). Inodes come from the inode
//! tables and cost no blocks.

/// What an operation is about to allocate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpaceNeed {
    /// Bytes of file content written.
    pub data_bytes: u64,
    /// Bytes of file content freed first (a replaced file's old blocks).
    pub freed_blocks: u64,
    /// New directory entries (each may need a new directory block).
    pub entries: u64,
    /// New directories (one block each).
    pub dirs: u64,
    /// Symlinks too long to be stored in the inode (one block each).
    pub slow_symlinks: u64,
}

impl SpaceNeed {
    /// Blocks needed, net of what is freed, at block size `bs`.
    pub fn blocks(&self, bs: u64) -> u64 {
        let data = self.data_bytes.div_ceil(bs.max(1));
        let tree = if data > 0 { 1 + data / 1000 } else { 0 };
        (data + tree + self.entries + self.dirs + self.slow_symlinks)
            .saturating_sub(self.freed_blocks)
    }

    /// Bytes needed, net, at block size `bs`.
    pub fn bytes(&self, bs: u64) -> u64 {
        self.blocks(bs).saturating_mul(bs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates() {
        let new_file = SpaceNeed {
            data_bytes: 10 * 4096 + 1,
            entries: 1,
            ..SpaceNeed::default()
        };
        assert_eq!(new_file.blocks(4096), 11 + 1 + 1);
        let replace = SpaceNeed {
            data_bytes: 4096,
            freed_blocks: 5,
            ..SpaceNeed::default()
        };
        assert_eq!(replace.blocks(4096), 0);
        assert_eq!(SpaceNeed::default().bytes(4096), 0);
    }
}
