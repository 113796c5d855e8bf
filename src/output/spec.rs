//! What to build for a node, and what was built.

use std::path::PathBuf;

use super::OutputError;
use super::raw::RawMethod;
use crate::disk::{CowDisk, Storage};
use crate::io::hashing::Sha256Digest;

/// A node's image: the base with some blocks changed.
#[derive(Clone)]
pub struct NodeImage<'a> {
    name: String,
    disk: &'a dyn Storage,
    changed_blocks: Vec<u64>,
}

impl std::fmt::Debug for NodeImage<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeImage")
            .field("name", &self.name)
            .field("changed_blocks", &self.changed_blocks.len())
            .finish_non_exhaustive()
    }
}

impl<'a> NodeImage<'a> {
    /// A node named `name` (the stem of its output files: `NAME.img.zst`, ...) whose image
    /// `disk` reads exactly as the base except in `changed_blocks` (indexes in
    /// [`crate::disk::cow::COW_BLOCK`] units). Outputs rely on that promise: a chunk with no
    /// changed block is taken from the base's cache without reading `disk`.
    pub fn new(
        name: impl Into<String>,
        disk: &'a dyn Storage,
        mut changed_blocks: Vec<u64>,
    ) -> Self {
        changed_blocks.sort_unstable();
        changed_blocks.dedup();
        Self {
            name: name.into(),
            disk,
            changed_blocks,
        }
    }

    /// The node whose image is the copy-on-write disk `disk` (its changed blocks are its
    /// overlay's).
    ///
    /// # Errors
    /// The overlay's lock is poisoned.
    pub fn from_cow<B: Storage>(
        name: impl Into<String>,
        disk: &'a CowDisk<B>,
    ) -> std::io::Result<Self> {
        Ok(Self::new(name, disk, disk.changed_blocks()?))
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The node's image.
    pub fn disk(&self) -> &'a dyn Storage {
        self.disk
    }

    /// The changed blocks, sorted.
    pub fn changed_blocks(&self) -> &[u64] {
        &self.changed_blocks
    }

    /// Checks the name is usable as a file-name stem: ASCII letters, digits, `.`, `_` and
    /// `-`, not starting with `.` (so `SHA256SUMS` needs no escaping and no output is hidden).
    pub(crate) fn check_name(&self) -> Result<(), OutputError> {
        let ok = !self.name.is_empty()
            && !self.name.starts_with('.')
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if ok {
            Ok(())
        } else {
            Err(OutputError::Invalid(format!(
                "node name {:?} is not a plain file name (letters, digits, '.', '_', '-')",
                self.name
            )))
        }
    }
}

/// The format of a node's image file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    /// A raw disk image, `.img` (sparse where the base's file is).
    Raw,
    /// Zstandard frames, `.img.zst`.
    Zstd,
    /// xz blocks, `.img.xz`.
    Xz,
    /// gzip members, `.img.gz`.
    Gzip,
}

impl ImageFormat {
    /// Every format, raw first.
    pub const ALL: [Self; 4] = [Self::Raw, Self::Xz, Self::Gzip, Self::Zstd];

    /// The file-name extension without the leading dot: `img`, `img.zst`, `img.xz`, `img.gz`.
    #[must_use]
    pub const fn extension(self) -> &'static str {
        match self {
            Self::Raw => "img",
            Self::Zstd => "img.zst",
            Self::Xz => "img.xz",
            Self::Gzip => "img.gz",
        }
    }

    /// Whether the image is compressed (everything but [`ImageFormat::Raw`]).
    #[must_use]
    pub const fn is_compressed(self) -> bool {
        !matches!(self, Self::Raw)
    }
}

/// `raw`, `zstd`, `xz`, `gzip`, as errors name them.
impl std::fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Raw => "raw",
            Self::Zstd => "zstd",
            Self::Xz => "xz",
            Self::Gzip => "gzip",
        })
    }
}

/// Which outputs to build for each node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeOutputSpec {
    /// Image formats, each written as `NAME.EXTENSION` ([`ImageFormat::extension`]).
    pub formats: Vec<ImageFormat>,
    /// Also write `NAME.img.bmap`.
    pub bmap: bool,
    /// Compute the sha256 of the uncompressed image (Raspberry Pi Imager's `extract_sha256`).
    /// It costs a read and a hash of the whole image per node; it is always computed when a raw
    /// output is requested (its entry in `SHA256SUMS` is that digest).
    pub image_sha256: bool,
    /// `fsync` every output before renaming it to its final name.
    pub sync: bool,
}

impl Default for NodeOutputSpec {
    /// `.img.zst` with the image sha256, synced.
    fn default() -> Self {
        Self {
            formats: vec![ImageFormat::Zstd],
            bmap: false,
            image_sha256: true,
            sync: true,
        }
    }
}

impl NodeOutputSpec {
    /// The file name of `node`'s image in `format`.
    pub fn image_file_name(node: &str, format: ImageFormat) -> String {
        format!("{node}.{}", format.extension())
    }

    /// The file name of `node`'s bmap (`bmaptool copy` finds `NAME.img.bmap` next to any of
    /// the image files by itself).
    pub fn bmap_file_name(node: &str) -> String {
        format!("{node}.img.bmap")
    }
}

/// What an output file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    /// The image in this format.
    Image(ImageFormat),
    /// The block map.
    Bmap,
}

/// One output file, complete under its final name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFile {
    /// Its path.
    pub path: PathBuf,
    /// What it is.
    pub kind: OutputKind,
    /// Its size in bytes.
    pub size: u64,
    /// The sha256 of its bytes.
    pub sha256: Sha256Digest,
}

/// Counters of one node's build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeStats {
    /// Chunks in the image.
    pub chunks: u64,
    /// Chunks holding a changed block.
    pub dirty_chunks: u64,
    /// Sub-blocks holding a changed block (0 when sub-blocks are off).
    pub dirty_sub_blocks: u64,
    /// Compressed pieces taken from the base's cache (summed over formats).
    pub reused_pieces: u64,
    /// Compressed pieces made for this node (summed over formats).
    pub compressed_pieces: u64,
    /// Uncompressed bytes compressed for this node (summed over formats).
    pub compressed_bytes: u64,
    /// Image bytes read.
    pub bytes_read: u64,
}

/// What was built for one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeOutputs {
    /// The node's name.
    pub name: String,
    /// Size of the uncompressed image.
    pub image_size: u64,
    /// sha256 of the uncompressed image, when computed.
    pub image_sha256: Option<Sha256Digest>,
    /// The files, images in the order of [`NodeOutputSpec::formats`], then the bmap.
    pub files: Vec<OutputFile>,
    /// How the raw image was made, if one was.
    pub raw_method: Option<RawMethod>,
    /// Partitions the bmap maps whole because they could not be decoded.
    pub bmap_notes: Vec<String>,
    /// Counters.
    pub stats: NodeStats,
}
