//! The JBD2 journal superblock, found through the journal inode, for the write gate.
//!
//! The ext4 superblock's `needs_recovery` flag says whether the kernel must replay the journal;
//! the journal's own superblock says whether it holds transactions at all (`s_start != 0`) and
//! whether it recorded an error (`s_errno`). This module reads that superblock with our own
//! minimal decoding, independent of the writer crate:
//!
//! 1. the journal inode (`s_journal_inum`, normally 8) is located through the group descriptor
//!    table ([`GroupDesc`]; `meta_bg` is refused by the gate before this runs) and the inode
//!    table (`inodes.html`);
//! 2. its logical block 0 is mapped through the extent tree in `i_block` ([`super::extent`]),
//!    or, for an ext3-style journal inode, the first direct block pointer;
//! 3. that block starts with the journal superblock, big-endian (`journal.html`).

use super::extent::{self, Header};
use super::group_desc::GroupDesc;
use super::inode;
use super::superblock::Superblock;
use crate::disk::{Storage, Window};
use crate::fs::bytes::le32;

/// `JBD2_MAGIC_NUMBER`, the first four bytes of every journal block header.
pub const JBD2_MAGIC: u32 = 0xC03B_3998;

/// `JBD2_FEATURE_INCOMPAT_REVOKE`.
pub const JOURNAL_INCOMPAT_REVOKE: u32 = 0x1;
/// `JBD2_FEATURE_INCOMPAT_64BIT`.
pub const JOURNAL_INCOMPAT_64BIT: u32 = 0x2;
/// `JBD2_FEATURE_INCOMPAT_CSUM_V2`.
pub const JOURNAL_INCOMPAT_CSUM_V2: u32 = 0x8;
/// `JBD2_FEATURE_INCOMPAT_CSUM_V3`.
pub const JOURNAL_INCOMPAT_CSUM_V3: u32 = 0x10;

/// Journal incompat feature names, by bit, as e2fsprogs prints them.
const JOURNAL_INCOMPAT: &[(u32, &str)] = &[
    (JOURNAL_INCOMPAT_REVOKE, "journal_incompat_revoke"),
    (JOURNAL_INCOMPAT_64BIT, "journal_64bit"),
    (0x4, "journal_async_commit"),
    (JOURNAL_INCOMPAT_CSUM_V2, "journal_checksum_v2"),
    (JOURNAL_INCOMPAT_CSUM_V3, "journal_checksum_v3"),
    (0x20, "journal_fast_commit"),
];

/// The fields of the journal superblock the gate looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalSuperblock {
    /// `h_blocktype`: 3 (v1) or 4 (v2).
    pub block_type: u32,
    /// `s_sequence`: first transaction expected in the log.
    pub sequence: u32,
    /// `s_start`: first log block of the oldest live transaction; 0 = the journal is empty.
    pub start: u32,
    /// `s_errno`: an error the journal recorded (0 = none).
    pub errno: i32,
    /// `s_feature_incompat` (v2 only; 0 for v1).
    pub feature_incompat: u32,
}

impl JournalSuperblock {
    /// Decodes the first 1024 bytes of journal block 0. `None` without the JBD2 magic or with a
    /// block type that is not a superblock.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() < 0x30 {
            return None;
        }
        let be32 = |o: usize| u32::from_be_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let block_type = be32(0x4);
        if be32(0x0) != JBD2_MAGIC || !(block_type == 3 || block_type == 4) {
            return None;
        }
        Some(Self {
            block_type,
            sequence: be32(0x18),
            start: be32(0x1C),
            errno: i32::from_be_bytes([b[0x20], b[0x21], b[0x22], b[0x23]]),
            feature_incompat: if block_type == 4 { be32(0x28) } else { 0 },
        })
    }

    /// True when the log holds no transaction to replay.
    pub fn is_clean(&self) -> bool {
        self.start == 0
    }

    /// Names of the journal incompat features set, unknown bits as `journal_incompat_bitN`.
    pub fn incompat_names(&self) -> Vec<String> {
        (0..32)
            .map(|i| 1u32 << i)
            .filter(|bit| self.feature_incompat & bit != 0)
            .map(|bit| {
                JOURNAL_INCOMPAT
                    .iter()
                    .find(|(b, _)| *b == bit)
                    .map_or_else(
                        || format!("journal_incompat_bit{}", bit.trailing_zeros()),
                        |(_, n)| (*n).to_owned(),
                    )
            })
            .collect()
    }
}

/// Why the journal superblock could not be read.
#[derive(Debug, thiserror::Error)]
pub enum JournalReadError {
    /// Reading the partition failed.
    #[error("reading the journal")]
    Io(#[from] std::io::Error),
    /// A structure on the way to the journal is malformed.
    #[error("the journal cannot be located: {0}")]
    Corrupt(String),
}

fn corrupt(what: impl Into<String>) -> JournalReadError {
    JournalReadError::Corrupt(what.into())
}

/// Reads the raw inode `ino` (the first 160 bytes are enough for what we decode).
fn read_inode<S: Storage>(
    window: &Window<S>,
    sb: &Superblock,
    ino: u32,
) -> Result<Vec<u8>, JournalReadError> {
    if ino == 0 || ino > sb.inodes_count {
        return Err(corrupt(format!("inode {ino} is out of range")));
    }
    let bs = u64::from(sb.block_size);
    let group = u64::from((ino - 1) / sb.inodes_per_group);
    let index = u64::from((ino - 1) % sb.inodes_per_group);
    // The descriptor table starts in the block after the superblock's (group_descr.html).
    let gdt = (u64::from(sb.first_data_block) + 1) * bs;
    let desc_size = usize::from(sb.desc_size.max(32));
    let mut desc = vec![0u8; desc_size];
    window.read_at(
        gdt + group * u64::try_from(desc_size).unwrap_or(32),
        &mut desc,
    )?;
    let table = GroupDesc::from_bytes(&desc, desc_size).inode_table;
    if table == 0 || table >= sb.blocks_count {
        return Err(corrupt(format!(
            "inode table of group {group} at block {table}"
        )));
    }
    let mut raw = vec![0u8; usize::from(sb.inode_size).min(256)];
    window.read_at(table * bs + index * u64::from(sb.inode_size), &mut raw[..])?;
    Ok(raw)
}

/// Maps logical block `logical` of an inode whose raw bytes are `inode` (extent tree or ext3
/// direct pointers; only the first 12 blocks of the latter).
fn map_logical<S: Storage>(
    window: &Window<S>,
    sb: &Superblock,
    inode: &[u8],
    logical: u32,
) -> Result<u64, JournalReadError> {
    let i_block = inode::i_block(inode);
    if inode::flags(inode) & inode::EXTENTS_FL == 0 {
        let slot = usize::try_from(logical).map_err(|_| corrupt("block index"))?;
        if slot >= 12 {
            return Err(corrupt(
                "indirect-mapped journal block beyond the direct pointers",
            ));
        }
        return Ok(u64::from(le32(i_block, slot * 4)));
    }
    let bs = usize::try_from(sb.block_size).map_err(|_| corrupt("block size"))?;
    let mut node = i_block.to_vec();
    for _ in 0..=extent::MAX_DEPTH {
        let header = Header::parse(&node)
            .ok_or_else(|| corrupt("bad extent header magic in the journal inode"))?;
        if !header.entries_fit(node.len()) {
            return Err(corrupt("extent node overflows its block"));
        }
        let entries = usize::from(header.entries);
        if header.depth == 0 {
            return (0..entries)
                .find_map(|i| extent::extent(&node, i).map(logical))
                .ok_or_else(|| corrupt(format!("journal block {logical} is not mapped")));
        }
        // Index node: the last entry whose first logical block is <= `logical`.
        let child = (0..entries)
            .map(|i| extent::index(&node, i))
            .take_while(|e| e.first <= logical)
            .last()
            .ok_or_else(|| corrupt(format!("journal block {logical} is not mapped")))?;
        let leaf = child.leaf;
        if leaf == 0 || leaf >= sb.blocks_count {
            return Err(corrupt(format!("extent index points at block {leaf}")));
        }
        let mut block = vec![0u8; bs];
        window.read_at(leaf * u64::from(sb.block_size), &mut block)?;
        node = block;
    }
    Err(corrupt("extent tree of the journal inode is too deep"))
}

/// Reads the journal superblock of the internal journal; `Ok(None)` when the filesystem has no
/// journal inode. An unreadable or magic-less journal superblock is an error.
pub fn read_journal_superblock<S: Storage>(
    window: &Window<S>,
    sb: &Superblock,
) -> Result<Option<JournalSuperblock>, JournalReadError> {
    if sb.journal_inum == 0 {
        return Ok(None);
    }
    let inode = read_inode(window, sb, sb.journal_inum)?;
    let block = map_logical(window, sb, &inode, 0)?;
    if block == 0 || block >= sb.blocks_count {
        return Err(corrupt(format!("journal block 0 maps to block {block}")));
    }
    let mut b = [0u8; 1024];
    window.read_at(block * u64::from(sb.block_size), &mut b)?;
    JournalSuperblock::from_bytes(&b)
        .map(Some)
        .ok_or_else(|| corrupt(format!("no journal superblock magic at block {block}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jsb(start: u32, incompat: u32) -> [u8; 1024] {
        let mut b = [0u8; 1024];
        b[0..4].copy_from_slice(&JBD2_MAGIC.to_be_bytes());
        b[4..8].copy_from_slice(&4u32.to_be_bytes());
        b[0x18..0x1C].copy_from_slice(&7u32.to_be_bytes());
        b[0x1C..0x20].copy_from_slice(&start.to_be_bytes());
        b[0x28..0x2C].copy_from_slice(&incompat.to_be_bytes());
        b
    }

    #[test]
    fn decodes_clean_and_dirty() {
        let clean = JournalSuperblock::from_bytes(&jsb(0, 0x10)).unwrap();
        assert!(clean.is_clean());
        assert_eq!(clean.sequence, 7);
        assert_eq!(clean.incompat_names(), ["journal_checksum_v3"]);
        let dirty = JournalSuperblock::from_bytes(&jsb(1, 0x4 | 1 << 9)).unwrap();
        assert!(!dirty.is_clean());
        assert_eq!(
            dirty.incompat_names(),
            ["journal_async_commit", "journal_incompat_bit9"]
        );
    }

    #[test]
    fn refuses_non_superblocks() {
        let mut b = jsb(0, 0);
        b[7] = 1; // descriptor block
        assert!(JournalSuperblock::from_bytes(&b).is_none());
        assert!(JournalSuperblock::from_bytes(&[0u8; 1024]).is_none());
    }
}
