//! One node's image: a copy-on-write disk over the base with the node's operations applied.
//!
//! [`Layout::detect`] ([`crate::image`]) finds the boot (first FAT) and root (first ext4) partitions of a base
//! once; [`apply_node`] opens both filesystems on the node's [`CowDisk`], applies the root
//! operations, then the boot operations, and finishes both. On any error the caller drops the
//! node's disk: the overlay goes with it and the base was never written, so nothing is kept
//! of a failed node.

use std::sync::Arc;

use crate::disk::{CowDisk, Partition, PartitionError, Storage, Window};
use crate::fs::ext4::rootfs::{RootFs, RootFsError};
use crate::fs::ext4::write::{Ext4Writer, WriteOptions};
use crate::fs::fat::{FatError, FatWriter};
use crate::image::Layout;
use crate::ops::{FileOp, Part};

use super::apply::{ApplyError, apply_boot, apply_root};

/// Errors building one node's image.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The base's partition table is unusable.
    #[error(transparent)]
    Partition(#[from] PartitionError),
    /// The base has no partition of a kind the operations need.
    #[error("the image has no {0} partition")]
    Missing(&'static str),
    /// Reading the disk failed.
    #[error("reading partition {partition}")]
    Io {
        /// Partition number.
        partition: u32,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The root filesystem could not be opened or finished.
    #[error("root partition (p{partition}, ext4)")]
    Root {
        /// Partition number.
        partition: u32,
        /// Why.
        #[source]
        source: RootFsError,
    },
    /// The boot filesystem could not be opened or finished.
    #[error("boot partition (p{partition}, FAT)")]
    Boot {
        /// Partition number.
        partition: u32,
        /// Why.
        #[source]
        source: FatError,
    },
    /// An operation failed.
    #[error("{partition_name} partition (p{partition})")]
    Apply {
        /// `root` or `boot`.
        partition_name: Part,
        /// Partition number.
        partition: u32,
        /// Why.
        #[source]
        source: ApplyError,
    },
}

fn window<B: Storage>(
    disk: &Arc<CowDisk<B>>,
    p: &Partition,
) -> Result<Window<Arc<CowDisk<B>>>, NodeError> {
    p.window(Arc::clone(disk)).map_err(|source| NodeError::Io {
        partition: p.number,
        source,
    })
}

/// Applies `ops` to the node disk `disk` (root operations first, then boot), with every
/// timestamp at `epoch`.
pub fn apply_node<B: Storage + 'static>(
    disk: &Arc<CowDisk<B>>,
    layout: &Layout,
    ops: &[FileOp],
    epoch: i64,
) -> Result<(), NodeError> {
    let wants = |part| ops.iter().any(|o| o.part() == part);
    if wants(Part::Root) {
        let p = layout
            .root
            .as_ref()
            .ok_or(NodeError::Missing("ext4 root"))?;
        let root_err = |source| NodeError::Root {
            partition: p.number,
            source,
        };
        let mut fs =
            Ext4Writer::open(window(disk, p)?, WriteOptions::new(epoch)).map_err(root_err)?;
        apply_root(&mut fs, ops, epoch).map_err(|source| NodeError::Apply {
            partition_name: Part::Root,
            partition: p.number,
            source,
        })?;
        fs.finish().map_err(root_err)?;
    }
    if wants(Part::Boot) {
        let p = layout.boot.as_ref().ok_or(NodeError::Missing("FAT boot"))?;
        let boot_err = |source| NodeError::Boot {
            partition: p.number,
            source,
        };
        let epoch_u = u64::try_from(epoch).unwrap_or(0);
        let fat = FatWriter::open(window(disk, p)?, epoch_u).map_err(boot_err)?;
        apply_boot(&fat, ops).map_err(|source| NodeError::Apply {
            partition_name: Part::Boot,
            partition: p.number,
            source,
        })?;
        fat.finish().map_err(boot_err)?;
    }
    Ok(())
}
