//! Growing an image to a card's size (`output.size`): the disk, its root partition and the
//! ext4 filesystem in it.
//!
//! Official images are trimmed to their contents plus a small margin (image-formats.md §1) and
//! grow their root partition on first boot. A build that sets `output.size` grows them here
//! instead, once per base (every node shares the grown base), so the node has its space from
//! the first boot and the build has room for large overlays:
//! 1. the disk is a [`CowDisk::grown`] over the base: zeros past the base's end;
//! 2. the root partition must be the last primary partition of an MBR table (as in every
//!    official image); its sector count is set to reach the new end of the disk (MBR entries
//!    hold 32-bit sector counts: at most 2 TiB);
//! 3. the ext4 filesystem is grown to fill the partition ([`crate::fs::ext4::grow`]).
//!
//! GPT images are refused for now: growing one also moves the backup table to the new end.

use crate::disk::mbr;
use crate::disk::partition::TableKind;
use crate::disk::{SECTOR_SIZE, Storage, Window};
use crate::fs::ext4::Ext4Error;
use crate::fs::ext4::grow::{GrowReport, grow};

use crate::image::Layout;

/// Why an image cannot be grown.
#[derive(Debug, thiserror::Error)]
pub enum GrowError {
    /// The image's layout is not one piimage grows.
    #[error("cannot grow this image: {0}")]
    Unsupported(String),
    /// The new size is too small or too large.
    #[error("output.size: {0}")]
    Size(String),
    /// Reading or writing the disk failed.
    #[error("growing the image")]
    Io(#[from] std::io::Error),
    /// The root filesystem could not be grown.
    #[error("growing the root filesystem (partition {partition})")]
    Ext4 {
        /// Partition number.
        partition: u32,
        /// Why.
        #[source]
        source: Ext4Error,
    },
}

/// What growing did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Growth {
    /// Root partition number.
    pub partition: u32,
    /// Root partition length before and after, in bytes.
    pub old_len: u64,
    /// After.
    pub new_len: u64,
    /// The filesystem's side.
    pub ext4: GrowReport,
}

/// Grows the root partition of `disk` (already as long as the new image, with zeros past the
/// old end; `layout` as read before growing) to the end of the disk, and its ext4 filesystem
/// with it. `old_len` is the length of the image before growing.
///
/// # Errors
/// See [`GrowError`]; the disk may then hold part of the change and must be dropped.
pub fn grow_root<S: Storage>(disk: &S, layout: &Layout, old_len: u64) -> Result<Growth, GrowError> {
    let table = &layout.table;
    if table.kind != TableKind::Mbr {
        return Err(GrowError::Unsupported(format!(
            "its partition table is {}; only MBR images (every official Raspberry Pi OS and \
             Ubuntu raspi image) can be grown",
            table.kind
        )));
    }
    let root = layout
        .root
        .as_ref()
        .ok_or_else(|| GrowError::Unsupported("it has no ext4 root partition".into()))?;
    if !(1..=4).contains(&root.number) {
        return Err(GrowError::Unsupported(format!(
            "the root partition {} is a logical partition",
            root.number
        )));
    }
    let root_end = root.offset() + root.len();
    if let Some(after) = table
        .partitions
        .iter()
        .find(|p| p.number != root.number && p.offset() >= root_end)
    {
        return Err(GrowError::Unsupported(format!(
            "partition {} lies after the root partition {}",
            after.number, root.number
        )));
    }
    let new_len = disk.len();
    if new_len < old_len {
        return Err(GrowError::Size(format!(
            "{new_len} bytes is smaller than the base image ({old_len} bytes)"
        )));
    }
    let sector = SECTOR_SIZE;
    let start = root.offset() / sector;
    let sectors = u32::try_from(new_len / sector - start).map_err(|_| {
        GrowError::Size(format!(
            "{new_len} bytes is past what an MBR partition can address (2 TiB)"
        ))
    })?;
    let new_part_len = u64::from(sectors) * sector;
    if new_part_len < root.len() {
        return Err(GrowError::Size(format!(
            "{new_len} bytes would end the root partition before its current end"
        )));
    }
    mbr::set_primary_length(disk, root.number, start, sectors)?;

    let window = Window::new(disk, root.offset(), new_part_len)?;
    let ext4 = grow(&window, new_part_len).map_err(|source| GrowError::Ext4 {
        partition: root.number,
        source,
    })?;
    Ok(Growth {
        partition: root.number,
        old_len: root.len(),
        new_len: new_part_len,
        ext4,
    })
}
