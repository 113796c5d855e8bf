//! Disk images: where a base image comes from, its partition table, and bounded partition windows.

pub mod cow;
pub mod gpt;
pub mod mbr;
pub mod partition;
pub mod source;
pub mod storage;
pub mod window;

pub use cow::CowDisk;
pub use partition::{Partition, PartitionError, PartitionTable, TableKind};
pub use storage::{FileStorage, MemStorage, Storage};
pub use window::Window;

/// The logical sector size of every image piimage handles (SD cards, eMMC and the official images).
pub const SECTOR_SIZE: u64 = 512;
