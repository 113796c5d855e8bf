//! Errors of `piimage flash`.

use std::io;
use std::path::PathBuf;

use crate::output::bmap::parse::BmapParseError;

/// Why a flash was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum FlashError {
    /// Reading the image failed.
    #[error("{what} {}", path.display())]
    Image {
        /// What was being done.
        what: &'static str,
        /// The image file.
        path: PathBuf,
        /// The I/O or decoder error.
        #[source]
        source: io::Error,
    },
    /// The image's format is refused.
    #[error("{}", path.display())]
    Format {
        /// The image file.
        path: PathBuf,
        /// The format.
        #[source]
        source: crate::io::sniff::UnsupportedFormat,
    },
    /// The `.bmap` could not be read or is invalid.
    #[error("block map {}", path.display())]
    Bmap {
        /// The `.bmap` file.
        path: PathBuf,
        /// Why.
        #[source]
        source: BmapParseError,
    },
    /// Reading the `.bmap` failed.
    #[error("reading block map {}", path.display())]
    BmapRead {
        /// The `.bmap` file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The image's bytes in a mapped range differ from the `.bmap`'s checksum.
    #[error(
        "blocks {first}-{last} of the image do not match the block map (sha256 {actual}, the map says {expected}): the image or its .bmap is damaged, or they belong to different builds; {} is incomplete",
        target.display()
    )]
    RangeMismatch {
        /// First block of the range.
        first: u64,
        /// Last block of the range.
        last: u64,
        /// The map's sha256.
        expected: String,
        /// The image's sha256.
        actual: String,
        /// The target.
        target: PathBuf,
    },
    /// The image's decoded length differs from the `.bmap`'s `ImageSize`.
    #[error(
        "the image is {actual} bytes but its block map says {expected}: they belong to different builds"
    )]
    SizeMismatch {
        /// The map's size.
        expected: u64,
        /// The image's size.
        actual: u64,
    },
    /// Reading back what was written did not give the same bytes.
    #[error("verification failed: bytes {start}..{end} of {} read back with sha256 {actual}, written {expected}: the card may be faulty or counterfeit", target.display())]
    Verify {
        /// Start of the byte span.
        start: u64,
        /// End of the byte span (exclusive).
        end: u64,
        /// The sha256 written.
        expected: String,
        /// The sha256 read back.
        actual: String,
        /// The target.
        target: PathBuf,
    },
    /// Opening, writing, syncing or reading back the target failed.
    #[error("{what} {}", path.display())]
    Target {
        /// What was being done.
        what: &'static str,
        /// The target.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A sysfs or procfs file could not be read.
    #[error("reading {}", path.display())]
    Sysfs {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The target is a partition.
    #[error("{} is a partition: give the whole disk (/dev/{disk})", path.display())]
    IsPartition {
        /// The path given.
        path: PathBuf,
        /// The disk it belongs to.
        disk: String,
    },
    /// The target is neither a regular file nor a block device.
    #[error("{} is neither a block device nor a regular file", path.display())]
    NotADisk {
        /// The path given.
        path: PathBuf,
    },
    /// The device holds the running system.
    #[error(
        "{device} holds the running system ({partition} is mounted at /): refusing to overwrite it"
    )]
    HoldsRoot {
        /// The device.
        device: String,
        /// Its partition mounted at `/`.
        partition: String,
    },
    /// The device or a partition of it is mounted.
    #[error(
        "{device} is in use: {partition} is mounted at {mount_point}; unmount it first (udisksctl unmount -b {partition})"
    )]
    Mounted {
        /// The device.
        device: String,
        /// The mounted partition (or the device itself).
        partition: String,
        /// Where.
        mount_point: String,
    },
    /// Another block device is built on the device.
    #[error(
        "{device} is in use by {holder} (device mapper, LVM, RAID or encryption): refusing to overwrite it"
    )]
    InUse {
        /// The device.
        device: String,
        /// The holder.
        holder: String,
    },
    /// The device is fixed.
    #[error("{device} is not removable (an internal disk?): refusing without --force")]
    NotRemovable {
        /// The device, described.
        device: String,
    },
    /// The reader reports no medium.
    #[error("{device} has no medium (size 0): insert a card")]
    NoMedium {
        /// The device.
        device: String,
    },
    /// The device is smaller than the image.
    #[error(
        "{device} ({size} bytes) is smaller than the image ({image} bytes): the partition table and last partition would not fit"
    )]
    TooSmall {
        /// The device.
        device: String,
        /// Its size.
        size: u64,
        /// The image size.
        image: u64,
    },
    /// The decoded image ran past the end of the device.
    #[error("the image is larger than {} ({size} bytes): writing stopped there and the card is incomplete", target.display())]
    PastEnd {
        /// The target.
        target: PathBuf,
        /// The device size.
        size: u64,
    },
    /// The user did not confirm, or could not be asked.
    #[error("{0}")]
    NotConfirmed(String),
    /// The flash log or output directory could not be read or written.
    #[error("{what} {}", path.display())]
    Log {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The output directory holds no node images.
    #[error("{} holds no node images (NAME.img, NAME.img.zst, .xz or .gz)", path.display())]
    NoImages {
        /// The directory.
        path: PathBuf,
    },
}
