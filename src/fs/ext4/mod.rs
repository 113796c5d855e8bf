//! ext4 (the root partition).
//!
//! Spec: the kernel's "ext4 Data Structures and Algorithms"
//! (<https://docs.kernel.org/filesystems/ext4/>). Our own code decodes the superblock (features,
//! state, free space) so that piimage can name what it refuses; file contents are read through
//! `ext4-view`, an independent reader that verifies checksums and replays the journal in memory.
//! [`grow`] enlarges a filesystem offline (new groups, backups, resize inode) with our own
//! encoders of the superblock, group descriptors, bitmaps and inode checksum.

pub mod allocation;
pub mod bitmap;
pub mod claims;
pub mod extent;
pub mod features;
pub mod gate;
pub mod group_desc;
pub mod grow;
pub mod inode;
pub mod journal;
pub mod read;
pub mod rootfs;
pub mod sanity;
pub mod superblock;
pub mod verify;
pub mod walk;
pub mod write;

pub use features::{FeatureSet, UnknownFeatures};
pub use read::{Ext4Reader, FileKind};
pub use superblock::{Ext4Error, Superblock};
