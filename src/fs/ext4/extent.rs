//! Extent tree nodes (the kernel's `ifork.html`): the one place their bytes are decoded.
//!
//! An extent-mapped inode (`EXT4_EXTENTS_FL`) keeps the root node of its tree in `i_block`
//! (60 bytes: room for 4 entries); deeper nodes fill a block each and end with a 4-byte
//! `ext4_extent_tail` (a crc32c under `metadata_csum`) after their `eh_max` entries. Every
//! node starts with a 12-byte header:
//!
//! | offset | field | meaning |
//! |---|---|---|
//! | 0x0 | `eh_magic` | 0xF30A |
//! | 0x2 | `eh_entries` | entries in use |
//! | 0x4 | `eh_max` | entries the node has room for |
//! | 0x6 | `eh_depth` | 0 for a leaf; an index node's children are one level lower |
//!
//! then 12-byte entries: in a leaf, extents (`ee_block` first logical block, `ee_len` length,
//! `ee_start_hi`/`ee_start_lo` first physical block; a length above 32768 marks an unwritten
//! extent of `len - 32768` blocks); in an index node, `ei_block` (first logical block the child
//! covers) and the child's block number (`ei_leaf_lo`, `ei_leaf_hi`).

use crate::fs::bytes::{le16, le32};

/// `eh_magic`.
pub const MAGIC: u16 = 0xF30A;
/// The deepest tree the kernel accepts (`EXT4_MAX_EXTENT_DEPTH`).
pub const MAX_DEPTH: u16 = 5;
/// Bytes of the header, and of each entry.
const HEADER_LEN: usize = 12;
const ENTRY_LEN: usize = 12;
/// `ee_len` above this marks an unwritten extent (`EXT_INIT_MAX_LEN`).
const INIT_MAX_LEN: u16 = 32_768;

/// A node's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// `eh_entries`.
    pub entries: u16,
    /// `eh_max`.
    pub max: u16,
    /// `eh_depth`.
    pub depth: u16,
}

impl Header {
    /// The header of `node`; `None` without the magic (or shorter than a header).
    pub fn parse(node: &[u8]) -> Option<Self> {
        (node.len() >= HEADER_LEN && le16(node, 0) == MAGIC).then(|| Self {
            entries: le16(node, 2),
            max: le16(node, 4),
            depth: le16(node, 6),
        })
    }

    /// True when the `entries` in use fit in a node of `len` bytes.
    pub fn entries_fit(&self, len: usize) -> bool {
        usize::from(self.entries) <= len.saturating_sub(HEADER_LEN) / ENTRY_LEN
    }

    /// Offset of the `ext4_extent_tail` in a block node: right after its `eh_max` entries.
    pub fn tail_offset(&self) -> usize {
        HEADER_LEN + ENTRY_LEN * usize::from(self.max)
    }
}

/// A leaf entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    /// First logical block (`ee_block`).
    pub first: u32,
    /// Blocks covered (unwritten extents without their marker).
    pub len: u32,
    /// True for an unwritten (preallocated) extent, which reads as zeros.
    pub unwritten: bool,
    /// First physical block.
    pub start: u64,
}

impl Extent {
    /// The physical block of `logical`, when this extent covers it.
    pub fn map(&self, logical: u32) -> Option<u64> {
        let off = logical.checked_sub(self.first)?;
        (off < self.len).then(|| self.start + u64::from(off))
    }
}

/// An index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Index {
    /// First logical block the child covers (`ei_block`).
    pub first: u32,
    /// The child node's block.
    pub leaf: u64,
}

fn entry(node: &[u8], i: usize) -> &[u8] {
    &node[HEADER_LEN + ENTRY_LEN * i..HEADER_LEN + ENTRY_LEN * (i + 1)]
}

/// The `i`th entry of the leaf `node`. `i` must be below the header's `entries`, which must
/// fit the node ([`Header::entries_fit`]).
pub fn extent(node: &[u8], i: usize) -> Extent {
    let e = entry(node, i);
    let raw_len = le16(e, 4);
    let unwritten = raw_len > INIT_MAX_LEN;
    Extent {
        first: le32(e, 0),
        len: u32::from(if unwritten {
            raw_len - INIT_MAX_LEN
        } else {
            raw_len
        }),
        unwritten,
        start: u64::from(le16(e, 6)) << 32 | u64::from(le32(e, 8)),
    }
}

/// The `i`th entry of the index `node` (same conditions as [`extent`]).
pub fn index(node: &[u8], i: usize) -> Index {
    let e = entry(node, i);
    Index {
        first: le32(e, 0),
        leaf: u64::from(le16(e, 8)) << 32 | u64::from(le32(e, 4)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(depth: u16, entries: &[[u8; 12]]) -> Vec<u8> {
        let mut n = vec![0u8; 60];
        n[0..2].copy_from_slice(&MAGIC.to_le_bytes());
        n[2..4].copy_from_slice(&u16::try_from(entries.len()).unwrap().to_le_bytes());
        n[4..6].copy_from_slice(&4u16.to_le_bytes());
        n[6..8].copy_from_slice(&depth.to_le_bytes());
        for (i, e) in entries.iter().enumerate() {
            n[12 + 12 * i..24 + 12 * i].copy_from_slice(e);
        }
        n
    }

    fn leaf_entry(first: u32, len: u16, start: u64) -> [u8; 12] {
        let mut e = [0u8; 12];
        e[0..4].copy_from_slice(&first.to_le_bytes());
        e[4..6].copy_from_slice(&len.to_le_bytes());
        e[6..8].copy_from_slice(&u16::try_from(start >> 32).unwrap().to_le_bytes());
        e[8..12].copy_from_slice(&u32::try_from(start & 0xFFFF_FFFF).unwrap().to_le_bytes());
        e
    }

    #[test]
    fn decodes_leaves_and_indexes() {
        let n = node(
            0,
            &[
                leaf_entry(0, 8, 0x1_0000_0010),
                leaf_entry(8, 32_768 + 4, 500),
            ],
        );
        let h = Header::parse(&n).unwrap();
        assert_eq!((h.entries, h.max, h.depth), (2, 4, 0));
        assert!(h.entries_fit(n.len()));
        assert_eq!(h.tail_offset(), 60);
        let a = extent(&n, 0);
        assert_eq!(
            (a.first, a.len, a.unwritten, a.start),
            (0, 8, false, 0x1_0000_0010)
        );
        assert_eq!(a.map(7), Some(0x1_0000_0017));
        assert_eq!(a.map(8), None);
        let b = extent(&n, 1);
        assert_eq!((b.len, b.unwritten), (4, true));
        // A full-length initialised extent is not unwritten.
        let c = extent(&node(0, &[leaf_entry(0, 32_768, 9)]), 0);
        assert_eq!((c.len, c.unwritten), (32_768, false));

        let mut idx = [0u8; 12];
        idx[0..4].copy_from_slice(&100u32.to_le_bytes());
        idx[4..8].copy_from_slice(&7u32.to_le_bytes());
        idx[8..10].copy_from_slice(&1u16.to_le_bytes());
        let i = index(&node(1, &[idx]), 0);
        assert_eq!((i.first, i.leaf), (100, (1 << 32) | 7));
    }

    #[test]
    fn refuses_what_is_not_a_node() {
        let mut n = node(0, &[]);
        assert!(Header::parse(&n[..11]).is_none());
        n[0] = 0;
        assert!(Header::parse(&n).is_none());
        let mut full = node(0, &[]);
        full[2..4].copy_from_slice(&5u16.to_le_bytes());
        assert!(!Header::parse(&full).unwrap().entries_fit(60));
    }
}
