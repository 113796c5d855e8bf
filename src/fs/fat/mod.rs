//! FAT (the boot partition): boot-sector parsing of our own, file reads through `hadris-fat`.
//!
//! Spec: Microsoft "FAT: General Overview of On-Disk Format" (fatgen103). Official Raspberry Pi OS
//! boot partitions are FAT32 (`mkfs.fat -F 32`, 512-byte sectors, 1 or 4 sectors per cluster).

pub mod boot_sector;
pub mod chains;
pub mod format;
pub mod read;
pub mod table;
pub mod write;

pub use boot_sector::{BootSector, FatError, FatType};
pub use read::FatReader;
pub use write::FatWriter;
