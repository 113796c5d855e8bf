//! Errors of the output stage.

use std::io;
use std::path::PathBuf;

use crate::output::ImageFormat;

/// Why an output could not be written. No output stands under its final name after any of
/// these (see [`super::PartialFile`]).
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// A file operation failed.
    #[error("{what} {}", path.display())]
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
    #[error("reading the image at byte {offset}")]
    Read {
        /// Byte offset in the image.
        offset: u64,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A compressor failed.
    #[error("compressing the image bytes at offset {offset} to {format}")]
    Compress {
        /// The output format.
        format: ImageFormat,
        /// Image offset of the piece being compressed.
        offset: u64,
        /// The compressor's error.
        #[source]
        source: io::Error,
    },
    /// The cache of compressed base chunks failed (its temporary file).
    #[error("the cache of compressed base chunks")]
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
    #[error("reading the image to map it for its bmap")]
    Bmap(#[source] io::Error),
    /// The build was cancelled (Ctrl-C); see [`crate::cancel`].
    #[error(transparent)]
    Interrupted(io::Error),
    /// The options are inconsistent.
    #[error("invalid output options: {0}")]
    Invalid(String),
    /// Another piimage is writing the output directory.
    #[error(
        "{}: another piimage (build, merge or localize) is writing this directory; wait for \
         it to finish or give this {what} another output directory",
        dir.display()
    )]
    Busy {
        /// The directory.
        dir: PathBuf,
        /// What was refused.
        what: String,
    },
    /// Files the build would replace that piimage did not write.
    #[error(
        "{}: {} not written by piimage (no record in {}/records names {}); piimage replaces \
         only its own files: move {} away or choose another output directory",
        dir.display(), list(names), dir.display(), them(names), them(names)
    )]
    Foreign {
        /// The directory.
        dir: PathBuf,
        /// The files, by name.
        names: Vec<String>,
    },
}

fn list(names: &[String]) -> String {
    let shown: Vec<&str> = names.iter().take(5).map(String::as_str).collect();
    let more = names.len().saturating_sub(shown.len());
    let mut s = shown.join(", ");
    if more > 0 {
        s.push_str(&format!(" and {more} more"));
    }
    if names.len() == 1 {
        format!("{s} exists and was")
    } else {
        format!("{s} exist and were")
    }
}

fn them(names: &[String]) -> &'static str {
    if names.len() == 1 { "it" } else { "them" }
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
