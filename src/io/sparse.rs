//! A writer that leaves holes for all-zero blocks.
//!
//! Disk images are mostly zeros (free space in the filesystems, the gap before the first
//! partition). [`SparseWriter`] buffers what it is given, writes runs of non-zero
//! [`SPARSE_BLOCK`]-aligned blocks, and seeks over all-zero blocks instead of writing them, so
//! the file system allocates no space for them. [`SparseWriter::finish`] sets the final length,
//! so a trailing run of zeros becomes a hole too.
//!
//! The target must read as zeros where nothing is written: a new or truncated file.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};

use crate::io::BUF_SIZE;

/// The granularity of holes: 4 KiB, the block size of common file systems and of the page
/// cache. Only whole, aligned, all-zero blocks become holes.
pub const SPARSE_BLOCK: usize = 4096;

/// Something whose length can be set, as [`File::set_len`] does.
pub trait SetLen {
    /// Truncates or extends to `len` bytes; an extension reads as zeros.
    ///
    /// # Errors
    /// The underlying error.
    fn set_len(&mut self, len: u64) -> io::Result<()>;
}

impl SetLen for File {
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        File::set_len(self, len)
    }
}

impl SetLen for &File {
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        File::set_len(self, len)
    }
}

impl SetLen for tempfile::NamedTempFile {
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.as_file().set_len(len)
    }
}

impl SetLen for io::Cursor<Vec<u8>> {
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        let len = usize::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
        self.get_mut().resize(len, 0);
        Ok(())
    }
}

/// Writes a stream to `W`, turning aligned all-zero blocks into holes.
///
/// Call [`finish`](Self::finish) at the end: it writes what is buffered and sets the length.
/// Dropping the writer without `finish` loses buffered data.
#[derive(Debug)]
pub struct SparseWriter<W> {
    inner: W,
    /// Buffered data; it starts at `flushed`, which is always a multiple of `SPARSE_BLOCK`.
    buf: Vec<u8>,
    /// Logical offset up to which data has been passed to `inner` (written or skipped).
    flushed: u64,
    /// The current physical position of `inner`.
    pos: u64,
    data_bytes: u64,
    hole_bytes: u64,
}

/// How much [`SparseWriter`] wrote and skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SparseStats {
    /// The logical length of the output.
    pub len: u64,
    /// Bytes actually written.
    pub data_bytes: u64,
    /// Bytes skipped as holes (`len - data_bytes`).
    pub hole_bytes: u64,
}

impl<W: Write + Seek + SetLen> SparseWriter<W> {
    /// Wraps `inner`, which must be empty (or read as zeros) and positioned at offset 0.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            buf: Vec::with_capacity(BUF_SIZE),
            flushed: 0,
            pos: 0,
            data_bytes: 0,
            hole_bytes: 0,
        }
    }

    /// The logical number of bytes written so far.
    pub fn len(&self) -> u64 {
        self.flushed + u64::try_from(self.buf.len()).unwrap_or(u64::MAX)
    }

    /// Whether nothing has been written yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes out the buffered blocks; a partial last block stays buffered unless `all`.
    fn drain(&mut self, all: bool) -> io::Result<()> {
        let usable = if all {
            self.buf.len()
        } else {
            self.buf.len() - self.buf.len() % SPARSE_BLOCK
        };
        let mut start = 0;
        while start < usable {
            let end = (start + SPARSE_BLOCK).min(usable);
            let zero = is_zero(&self.buf[start..end]);
            // Extend the run of blocks of the same kind.
            let mut run_end = end;
            while run_end < usable {
                let next = (run_end + SPARSE_BLOCK).min(usable);
                if is_zero(&self.buf[run_end..next]) != zero {
                    break;
                }
                run_end = next;
            }
            let run_len = u64::try_from(run_end - start).unwrap_or(u64::MAX);
            if zero {
                self.hole_bytes += run_len;
            } else {
                let offset = self.flushed + u64::try_from(start).unwrap_or(u64::MAX);
                if self.pos != offset {
                    self.inner.seek(SeekFrom::Start(offset))?;
                }
                self.inner.write_all(&self.buf[start..run_end])?;
                self.pos = offset + run_len;
                self.data_bytes += run_len;
            }
            start = run_end;
        }
        self.buf.drain(..usable);
        self.flushed += u64::try_from(usable).unwrap_or(u64::MAX);
        Ok(())
    }

    /// Writes what is buffered, sets the final length (so trailing zeros are a hole), flushes,
    /// and returns the inner writer with statistics.
    ///
    /// # Errors
    /// Any error of the inner writer.
    pub fn finish(mut self) -> io::Result<(W, SparseStats)> {
        self.drain(true)?;
        self.inner.flush()?;
        self.inner.set_len(self.flushed)?;
        let stats = SparseStats {
            len: self.flushed,
            data_bytes: self.data_bytes,
            hole_bytes: self.hole_bytes,
        };
        Ok((self.inner, stats))
    }
}

impl<W: Write + Seek + SetLen> Write for SparseWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = BUF_SIZE - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= BUF_SIZE {
            self.drain(false)?;
        }
        Ok(n)
    }

    /// Does nothing: data is only written to `inner` in whole blocks, or by `finish`.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn is_zero(block: &[u8]) -> bool {
    // Compare in 16-byte chunks; the compiler vectorises this well.
    let (chunks, rest) = block.as_chunks::<16>();
    chunks.iter().all(|c| u128::from_ne_bytes(*c) == 0) && rest.iter().all(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Read};
    #[cfg(unix)]
    use std::os::unix::fs::MetadataExt as _;

    /// Data: `(offset, len, byte)` runs of a non-zero byte on a zero background.
    fn image(len: usize, runs: &[(usize, usize, u8)]) -> Vec<u8> {
        let mut v = vec![0u8; len];
        for &(off, n, b) in runs {
            v[off..off + n].fill(b);
        }
        v
    }

    #[test]
    fn roundtrip_table() {
        const B: usize = SPARSE_BLOCK;
        // (name, data, write chunk size, expected data bytes)
        let cases: Vec<(&str, Vec<u8>, usize, u64)> = vec![
            ("empty", vec![], 7, 0),
            ("all zero", vec![0; 3 * BUF_SIZE + 5], 65_536, 0),
            ("one byte", vec![9], 1, 1),
            (
                "tail partial block",
                image(B + 10, &[(B + 3, 1, 1)]),
                100,
                10,
            ),
            ("zero partial tail", image(B + 10, &[(0, 1, 1)]), 100, 4096),
            (
                "unaligned run",
                image(10 * B, &[(B - 1, 2, 5)]),
                333,
                2 * 4096,
            ),
            (
                "across buffer boundary",
                image(
                    2 * BUF_SIZE + B,
                    &[(BUF_SIZE - 3, 6, 7), (2 * BUF_SIZE, 1, 1)],
                ),
                BUF_SIZE / 3,
                3 * 4096,
            ),
            (
                "dense",
                (0..5 * B)
                    .map(|i| u8::try_from(i % 255 + 1).unwrap())
                    .collect(),
                4095,
                5 * 4096,
            ),
            (
                "huge write",
                image(3 * BUF_SIZE, &[(BUF_SIZE, B, 3)]),
                3 * BUF_SIZE,
                4096,
            ),
        ];
        for (name, data, chunk, want_data) in cases {
            let mut w = SparseWriter::new(Cursor::new(Vec::new()));
            for piece in data.chunks(chunk.max(1)) {
                w.write_all(piece).unwrap();
            }
            assert_eq!(w.len(), data.len() as u64, "case {name}");
            let (out, stats) = w.finish().unwrap();
            assert_eq!(out.get_ref().len(), data.len(), "case {name}: length");
            assert!(out.get_ref() == &data, "case {name}: content");
            assert_eq!(stats.len, data.len() as u64, "case {name}");
            assert_eq!(stats.data_bytes, want_data, "case {name}: data bytes");
            assert_eq!(
                stats.hole_bytes,
                stats.len - want_data,
                "case {name}: hole bytes"
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn file_gets_holes() {
        let len = 4 * BUF_SIZE;
        let data = image(len, &[(100, 10, 1), (len - 1, 1, 2)]);
        let mut file = tempfile::tempfile().unwrap();
        let mut w = SparseWriter::new(&file);
        w.write_all(&data).unwrap();
        w.finish().unwrap();
        let meta = file.metadata().unwrap();
        assert_eq!(meta.len(), len as u64);
        // Two 4 KiB blocks of data; allow for file systems with larger blocks.
        assert!(
            meta.blocks() * 512 < (len as u64) / 2,
            "blocks: {}",
            meta.blocks()
        );
        let mut back = Vec::new();
        file.seek(SeekFrom::Start(0)).unwrap();
        file.read_to_end(&mut back).unwrap();
        assert!(back == data);
    }

    #[cfg(unix)]
    #[test]
    fn trailing_zeros_are_a_hole() {
        let file = tempfile::tempfile().unwrap();
        let mut w = SparseWriter::new(&file);
        w.write_all(&[1]).unwrap();
        w.write_all(&vec![0; 8 * BUF_SIZE]).unwrap();
        let (_, stats) = w.finish().unwrap();
        assert_eq!(stats.len, 8 * BUF_SIZE as u64 + 1);
        let meta = file.metadata().unwrap();
        assert_eq!(meta.len(), stats.len);
        assert!(meta.blocks() * 512 <= 1 << 20, "blocks: {}", meta.blocks());
    }
}
