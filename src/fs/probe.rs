//! Which filesystem a partition holds, by its magic numbers (not by the partition type).

use serde::Serialize;

use super::ext4::superblock::{SUPERBLOCK_OFFSET, looks_like_ext4};
use super::fat::boot_sector::looks_like_fat;
use crate::disk::{Partition, Storage};

/// A filesystem piimage can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Filesystem {
    /// FAT12/16/32.
    Vfat,
    /// ext2/3/4.
    Ext4,
}

/// Detects the filesystem at the start of partition `p` of `disk`.
pub fn probe<S: Storage + ?Sized>(disk: &S, p: &Partition) -> std::io::Result<Option<Filesystem>> {
    if p.len() < 2048 {
        return Ok(None);
    }
    let mut b = [0u8; 512];
    disk.read_at(p.offset(), &mut b)?;
    if looks_like_fat(&b) {
        return Ok(Some(Filesystem::Vfat));
    }
    let mut sb = [0u8; 1024];
    disk.read_at(p.offset() + SUPERBLOCK_OFFSET, &mut sb)?;
    Ok(looks_like_ext4(&sb).then_some(Filesystem::Ext4))
}
