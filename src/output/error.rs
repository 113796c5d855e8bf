//! Errors of the output stage.

use std::io;
use std::path::PathBuf;

use crate::io::sniff::Compression;

/// Why an output could not be written. No output stands under its final name after any of
/// these (see [`super::PartialFile`]).
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// A file operation failed.
    #[error("{what} {}: {source}", path.display())]
    File {
        /// What was being done ("creating", "writing", "renaming into", ...).
        what: &'static str,
        /// The file (its final name).
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Reading the image (base or overlay) failed.
    #[error("reading the image at byte {offset}: {source}")]
    Read {
        /// Byte offset in the image.
        offset: u64,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A compressor failed.
    #[error("compressing chunk {chunk} to {format}: {source}")]
    Compress {
        /// The output format.
        format: Compression,
        /// The chunk index.
        chunk: u64,
        /// The compressor's error.
        #[source]
        source: io::Error,
    },
    /// The cache of compressed base chunks failed (its temporary file).
    #[error("the cache of compressed base chunks: {0}")]
    Cache(#[source] io::Error),
    /// A node image is not the size of its base.
    #[error("the node image is {node} bytes but its base is {base} bytes")]
    SizeMismatch {
        /// Node image length.
        node: u64,
        /// Base image length.
        base: u64,
    },
    /// Reading the partition table or filesystem metadata for the bmap failed.
    #[error("reading the image to map it for its bmap: {0}")]
    Bmap(#[source] io::Error),
    /// The build was cancelled (Ctrl-C); see [`crate::cancel`].
    #[error("{0}")]
    Interrupted(#[source] io::Error),
    /// The options are inconsistent.
    #[error("invalid output options: {0}")]
    Invalid(String),
}

impl OutputError {
    pub(crate) fn file(what: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::File {
            what,
            path: path.into(),
            source,
        }
    }
}
