//! Chunk compressors and the containers that join their output into one standard file.
//!
//! Every chunk is compressed on its own (no shared dictionary or window), so a chunk's
//! compressed bytes depend only on the chunk's bytes, the format and the level: that is what
//! lets [`super::ChunkCache`] reuse a base's compressed chunks byte for byte in every node.
//!
//! | format | piece per chunk | file |
//! |---|---|---|
//! | zstd | one frame ([`zstd`]) | frames concatenated |
//! | xz | one block ([`xz`]) | stream header, blocks, index, footer |
//! | gzip | one member ([`gzip`]) | members concatenated |

pub mod gzip;
pub mod xz;
pub mod zstd;

use std::io;

use crate::output::ImageFormat;

/// Compression levels, one per format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Levels {
    /// zstd level (1-22).
    pub zstd: i32,
    /// xz preset (0-9).
    pub xz: u32,
    /// gzip level (0-9).
    pub gzip: u32,
}

impl Default for Levels {
    /// The command-line tools' defaults: `zstd -3`, `xz -6`, `gzip -6`.
    fn default() -> Self {
        Self {
            zstd: 3,
            xz: 6,
            gzip: 6,
        }
    }
}

/// A compressor of chunks for one format; one per thread.
#[derive(Debug)]
pub enum ChunkEncoder {
    /// zstd frames.
    Zstd(zstd::ZstdChunks),
    /// xz blocks.
    Xz(xz::XzChunks),
    /// gzip members.
    Gzip(gzip::GzipChunks),
}

impl ChunkEncoder {
    /// An encoder for `format` at `levels`, for chunks of at most `chunk_size` bytes.
    ///
    /// # Errors
    /// `format` is [`ImageFormat::Raw`], or the level is refused.
    pub fn new(format: ImageFormat, levels: &Levels, chunk_size: u64) -> io::Result<Self> {
        match format {
            ImageFormat::Zstd => Ok(Self::Zstd(zstd::ZstdChunks::new(levels.zstd)?)),
            ImageFormat::Xz => Ok(Self::Xz(xz::XzChunks::new(levels.xz, chunk_size)?)),
            ImageFormat::Gzip => Ok(Self::Gzip(gzip::GzipChunks::new(levels.gzip))),
            ImageFormat::Raw => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "raw images are not compressed in chunks",
            )),
        }
    }

    /// Compresses `data` into one piece appended to `out`; returns the piece's index size
    /// (for xz, the block's unpadded size; otherwise its length).
    ///
    /// # Errors
    /// The compressor failed.
    pub fn compress(&mut self, data: &[u8], out: &mut Vec<u8>) -> io::Result<u64> {
        match self {
            Self::Zstd(e) => e.compress(data, out),
            Self::Xz(e) => e.compress(data, out),
            Self::Gzip(e) => e.compress(data, out),
        }
    }
}

/// What goes around the pieces to make one file: for xz a stream header before them and an
/// index and footer after; nothing for zstd and gzip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Container {
    /// Pieces are simply concatenated.
    Concat,
    /// One xz stream; the index grows with each piece.
    Xz(xz::XzIndex),
}

impl Container {
    /// The container for `format`.
    pub fn new(format: ImageFormat) -> Self {
        match format {
            ImageFormat::Xz => Self::Xz(xz::XzIndex::default()),
            _ => Self::Concat,
        }
    }

    /// Bytes before the first piece.
    pub fn header(&self) -> Vec<u8> {
        match self {
            Self::Concat => Vec::new(),
            Self::Xz(_) => xz::stream_header(),
        }
    }

    /// Records a piece of index size `index_size` holding `uncompressed` bytes.
    pub fn push(&mut self, index_size: u64, uncompressed: u64) {
        if let Self::Xz(index) = self {
            index.push(index_size, uncompressed);
        }
    }

    /// Bytes after the last piece.
    pub fn trailer(&self) -> Vec<u8> {
        match self {
            Self::Concat => Vec::new(),
            Self::Xz(index) => index.trailer(),
        }
    }
}
