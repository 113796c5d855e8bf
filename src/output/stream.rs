//! The plain one-pass compressors: a whole image as one zstd frame, one xz stream or one gzip
//! member, with each format's own multithreaded encoder.
//!
//! Not used by the node builders (their chunked outputs are what makes N nodes cost little
//! more than one); kept as the reference the chunked outputs are checked against, and for a
//! one-off image where the last few percent of size matter more than time.

use std::io::{self, Write};

use liblzma::stream::{Check, MtStreamBuilder};

use super::OutputError;
use super::codec::Levels;
use crate::disk::Storage;
use crate::io::BUF_SIZE;
use crate::output::ImageFormat;

/// Compresses all of `disk` to `out` in `format` with up to `threads` threads; returns the
/// compressed size. zstd frames record the content size and a checksum, with a window of at
/// most 2^23 bytes; xz uses CRC64 and blocks of three dictionaries (as `xz -T` does).
///
/// # Errors
/// Reading, compressing or writing failed; [`OutputError::Invalid`] for a raw format.
pub fn compress_whole(
    disk: &dyn Storage,
    format: ImageFormat,
    levels: &Levels,
    threads: u32,
    out: impl Write,
) -> Result<u64, OutputError> {
    let mut out = Counting { inner: out, n: 0 };
    let err = |source| OutputError::Compress {
        format,
        offset: 0,
        source,
    };
    match format {
        ImageFormat::Zstd => {
            let mut enc = zstd::stream::Encoder::new(&mut out, levels.zstd).map_err(err)?;
            enc.multithread(threads).map_err(err)?;
            enc.include_checksum(true).map_err(err)?;
            enc.window_log(23).map_err(err)?;
            enc.set_pledged_src_size(Some(disk.len())).map_err(err)?;
            copy(disk, &mut enc, format)?;
            enc.finish().map_err(err)?;
        }
        ImageFormat::Xz => {
            let stream = MtStreamBuilder::new()
                .threads(threads.max(1))
                .preset(levels.xz)
                .check(Check::Crc64)
                .encoder()
                .map_err(|e| err(io::Error::other(e)))?;
            let mut enc = liblzma::write::XzEncoder::new_stream(&mut out, stream);
            copy(disk, &mut enc, format)?;
            enc.finish().map_err(err)?;
        }
        ImageFormat::Gzip => {
            let mut enc = flate2::GzBuilder::new()
                .mtime(0)
                .operating_system(3)
                .write(&mut out, flate2::Compression::new(levels.gzip.min(9)));
            copy(disk, &mut enc, format)?;
            enc.finish().map_err(err)?;
        }
        ImageFormat::Raw => {
            return Err(OutputError::Invalid(
                "compress_whole needs a compressed format".into(),
            ));
        }
    }
    out.flush().map_err(err)?;
    Ok(out.n)
}

fn copy(disk: &dyn Storage, w: &mut impl Write, format: ImageFormat) -> Result<(), OutputError> {
    let len = disk.len();
    let mut buf = vec![0u8; BUF_SIZE];
    let mut off = 0;
    while off < len {
        let n = usize::try_from((len - off).min(BUF_SIZE as u64)).unwrap_or(BUF_SIZE);
        disk.read_at(off, &mut buf[..n])
            .map_err(|source| OutputError::Read {
                offset: off,
                source,
            })?;
        w.write_all(&buf[..n])
            .map_err(|source| OutputError::Compress {
                format,
                offset: 0,
                source,
            })?;
        off += n as u64;
    }
    Ok(())
}

struct Counting<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
