//! `.gz` output as a sequence of gzip members, one member per chunk.
//!
//! Spec: RFC 1952 §2.2 ("a gzip file consists of a series of members"); `gzip -d`, zlib's
//! `gunzip` mode with concatenation, libarchive and Python's `gzip` decode them in order. Each
//! member has no file name and a zero modification time, so outputs are reproducible. (`gzip
//! -l` reports only the last member's size, a known limitation of that listing.)

use std::io::{self, Write};

use flate2::Compression;
use flate2::GzBuilder;

/// Compresses chunks into gzip members.
#[derive(Debug)]
pub struct GzipChunks {
    level: Compression,
}

impl GzipChunks {
    /// An encoder at `level` (0-9; 6 is gzip's default).
    pub fn new(level: u32) -> Self {
        Self {
            level: Compression::new(level.min(9)),
        }
    }

    /// Compresses `data` into one member appended to `out`; returns the member's length.
    ///
    /// # Errors
    /// The deflate encoder failed.
    pub fn compress(&mut self, data: &[u8], out: &mut Vec<u8>) -> io::Result<u64> {
        let before = out.len();
        let mut enc = GzBuilder::new()
            .mtime(0)
            .operating_system(3)
            .write(std::mem::take(out), self.level);
        enc.write_all(data)?;
        *out = enc.finish()?;
        Ok((out.len() - before) as u64)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn members_concatenate() {
        let mut enc = GzipChunks::new(6);
        let mut file = Vec::new();
        enc.compress(b"hello ", &mut file).unwrap();
        enc.compress(&[0u8; 70_000], &mut file).unwrap();
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&file[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(&back[..6], b"hello ");
        assert_eq!(back.len(), 70_006);
        let mut again = Vec::new();
        GzipChunks::new(6).compress(b"hello ", &mut again).unwrap();
        assert_eq!(&file[..again.len()], &again[..], "reproducible");
    }
}
