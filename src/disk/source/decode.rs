//! Streaming decompression of xz, gzip and zstd into sparse raw images.
//!
//! - xz: liblzma's multithreaded decoder. It decodes blocks in parallel when the stream has
//!   several (as `xz -T0` writes them) and falls back to one thread otherwise. Concatenated
//!   streams and stream padding are handled here, because the MT decoder has no
//!   `LZMA_CONCATENATED` flag in the `liblzma` bindings.
//! - zstd: single-threaded by design, with `window_log_max(31)` so `zstd --long=31` files decode.
//! - gzip: flate2 (zlib-rs backend), all members.
//!
//! Input ending early gives [`SourceError::Truncated`]; anything else the decoder rejects gives
//! [`SourceError::Corrupt`]; read errors of the input file give [`SourceError::Io`].

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;
use std::rc::Rc;

use liblzma::bufread::XzDecoder;
use liblzma::stream::{MtStreamBuilder, Stream};
use tempfile::NamedTempFile;

use super::SourceError;
use super::cache::{new_partial, persist_read_only};
use crate::io::BUF_SIZE;
use crate::io::progress::ProgressReader;
use crate::io::sniff::Compression;
use crate::io::sparse::SparseWriter;
use crate::progress::Progress;

/// The smallest file that can be a disk image: one sector, holding the partition table.
pub const MIN_IMAGE_SIZE: u64 = 512;

/// The largest decoded base piimage makes (256 GiB; official images decode to under 8 GiB).
/// A small compressed file can decode to far more (a "decompression bomb"): zeros cost no
/// space in the sparse output but take time, other bytes fill the disk.
pub const MAX_DECODED: u64 = 256 << 30;

/// Bounds on one decode: the decoded length, and the free space kept on the cache's
/// filesystem, checked every `check_every` decoded bytes (holes take no space, so only
/// written data counts).
#[derive(Debug, Clone, Copy)]
struct Limits {
    max_len: u64,
    keep_free: u64,
    check_every: u64,
}

impl Limits {
    const DEFAULT: Self = Self {
        max_len: MAX_DECODED,
        keep_free: super::download::KEEP_FREE,
        check_every: super::download::SPACE_CHECK_EVERY,
    };
}

/// Decodes `src` (in `compression`) into a new read-only (0444) sparse file `dst`.
///
/// The output is written to a partial file in `dst`'s directory and renamed to `dst` only when
/// complete; on error nothing is left behind. Progress is reported as "decompressing `what`".
/// Returns the decoded size.
pub(crate) fn decode_into(
    src: &Path,
    compression: Compression,
    dst: &Path,
    what: &str,
    progress: &dyn Progress,
) -> Result<u64, SourceError> {
    let _polling = crate::cancel::polling();
    let dir = dst.parent().unwrap_or(Path::new("."));
    let input = File::open(src).map_err(|e| SourceError::io("opening", src, e))?;
    let total = input
        .metadata()
        .map_err(|e| SourceError::io("reading metadata of", src, e))?
        .len();
    let tmp = new_partial(dir)?;
    progress.start(&format!("decompressing {what}"), Some(total));
    let result = decode_stream(input, src, compression, tmp, dst, progress, Limits::DEFAULT);
    progress.finish();
    let (tmp, size) = result?;
    persist_read_only(tmp, dst)?;
    Ok(size)
}

fn decode_stream(
    input: File,
    src: &Path,
    compression: Compression,
    tmp: NamedTempFile,
    dst: &Path,
    progress: &dyn Progress,
    limits: Limits,
) -> Result<(NamedTempFile, u64), SourceError> {
    let dir = dst.parent().unwrap_or(Path::new(".")).to_owned();
    let input_error = Rc::new(RefCell::new(None));
    let input = Tracked {
        inner: input,
        error: Rc::clone(&input_error),
    };
    let input = BufReader::with_capacity(BUF_SIZE, ProgressReader::new(input, progress));
    let classify = |e: io::Error| -> SourceError {
        if let Some(source) = input_error.borrow_mut().take() {
            return SourceError::io("reading", src, source);
        }
        if e.kind() == io::ErrorKind::UnexpectedEof {
            SourceError::Truncated {
                path: src.to_owned(),
                compression,
            }
        } else {
            SourceError::Corrupt {
                path: src.to_owned(),
                compression,
                detail: e.to_string(),
            }
        }
    };
    let mut decoder = decoder(input, compression).map_err(classify)?;

    let mut out = SparseWriter::new(tmp);
    let mut buf = vec![0u8; BUF_SIZE];
    let (mut decoded, mut next_check) = (0u64, limits.check_every);
    let too_large = |size: u64, limit_what: String, limit: u64| SourceError::DecodedTooLarge {
        path: src.to_owned(),
        size,
        limit_what,
        limit,
    };
    loop {
        crate::cancel::check().map_err(|e| SourceError::io("decoding into", dst, e))?;
        let n = match decoder.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(classify(e)),
        };
        decoded += n as u64;
        if decoded > limits.max_len {
            return Err(too_large(
                decoded,
                "the largest base piimage decodes".to_owned(),
                limits.max_len,
            ));
        }
        out.write_all(&buf[..n])
            .map_err(|e| SourceError::io("writing", dst, e))?;
        if decoded >= next_check {
            next_check = decoded.saturating_add(limits.check_every);
            if let Ok(s) = rustix::fs::statvfs(&dir) {
                let free = s.f_bavail.saturating_mul(s.f_frsize);
                if free < limits.keep_free {
                    return Err(too_large(
                        decoded,
                        format!(
                            "what fits while keeping {} MiB free in the cache",
                            limits.keep_free >> 20
                        ),
                        free,
                    ));
                }
            }
        }
    }
    drop(decoder);
    let (tmp, stats) = out
        .finish()
        .map_err(|e| SourceError::io("writing", dst, e))?;
    if stats.len < MIN_IMAGE_SIZE {
        return Err(SourceError::NotAnImage {
            what: src.display().to_string(),
            size: stats.len,
            decoded: compression.is_compressed(),
        });
    }
    Ok((tmp, stats.len))
}

/// A reader of the decoded bytes of `input`, which is in `compression`: the same decoders
/// [`decode_into`] uses (all xz streams, all gzip members, zstd up to `--long=31` windows).
/// Errors while reading are `UnexpectedEof` for truncated input, else the decoder's error.
///
/// # Errors
/// The decoder could not be set up (xz threads, zstd parameters).
pub fn decoder<'a, R: BufRead + 'a>(
    input: R,
    compression: Compression,
) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match compression {
        Compression::None => Box::new(input),
        Compression::Xz => Box::new(XzStreams::new(input)?),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
        Compression::Zstd => {
            let mut d = zstd::stream::read::Decoder::with_buffer(input)?;
            d.window_log_max(31)?;
            Box::new(d)
        }
    })
}

/// Records the input file's own read errors, so they are not blamed on the compressed data.
struct Tracked {
    inner: File,
    error: Rc<RefCell<Option<io::Error>>>,
}

impl Read for Tracked {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            if e.kind() == io::ErrorKind::Interrupted {
                return e;
            }
            let kind = e.kind();
            *self.error.borrow_mut() = Some(e);
            io::Error::new(kind, "reading the input failed")
        })
    }
}

/// The xz magic bytes that start every stream.
const XZ_MAGIC: [u8; 6] = [0xFD, b'7', b'z', b'X', b'Z', 0x00];

/// Decodes a sequence of xz streams, separated by optional stream padding (zero bytes), the
/// way `xz -d` does, each with the multithreaded decoder.
struct XzStreams<R: BufRead> {
    /// `None` once the input is exhausted.
    decoder: Option<XzDecoder<R>>,
}

impl<R: BufRead> XzStreams<R> {
    fn new(input: R) -> io::Result<Self> {
        Ok(Self {
            decoder: Some(XzDecoder::new_stream(input, mt_decoder()?)),
        })
    }
}

impl<R: BufRead> Read for XzStreams<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(decoder) = self.decoder.as_mut() else {
                return Ok(0);
            };
            let n = decoder.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            // End of a stream: skip padding, then either the input ends or a new stream starts.
            let Some(decoder) = self.decoder.take() else {
                return Ok(0);
            };
            let mut input = decoder.into_inner();
            loop {
                let data = input.fill_buf()?;
                let zeros = data.iter().take_while(|&&b| b == 0).count();
                let more = zeros == data.len() && !data.is_empty();
                input.consume(zeros);
                if !more {
                    break;
                }
            }
            match input.fill_buf()?.first() {
                None => return Ok(0),
                Some(&b) if b == XZ_MAGIC[0] => {
                    self.decoder = Some(XzDecoder::new_stream(input, mt_decoder()?));
                }
                Some(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "unexpected data after the end of the xz stream",
                    ));
                }
            }
        }
    }
}

/// A multithreaded xz stream decoder: one thread per CPU, within a quarter of the RAM.
fn mt_decoder() -> io::Result<Stream> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX));
    MtStreamBuilder::new()
        .threads(threads)
        .timeout_ms(0)
        .memlimit_threading(threading_memlimit())
        // The builder defaults this to 0, which makes every stream fail with MemLimit.
        .memlimit_stop(u64::MAX)
        .decoder()
        .map_err(io::Error::from)
}

/// The memory above which liblzma decodes with fewer threads: a quarter of the RAM (as `xz`
/// does), or 1 GiB when the RAM size is unknown.
fn threading_memlimit() -> u64 {
    const FALLBACK: u64 = 1 << 30;
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| parse_mem_total(&s))
        .map_or(FALLBACK, |total| (total / 4).max(64 << 20))
}

/// The `MemTotal` line of `/proc/meminfo`, in bytes.
fn parse_mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut words = line.split_whitespace().skip(1);
    let kib: u64 = words.next()?.parse().ok()?;
    (words.next() == Some("kB")).then_some(kib.checked_mul(1024)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;
    use std::io::Cursor;

    fn xz(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        liblzma::read::XzEncoder::new(data, 1)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn decode_xz(input: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        XzStreams::new(Cursor::new(input))?.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn xz_streams_table() {
        let a = xz(b"first stream ");
        let b = xz(b"second stream");
        let cat = |parts: &[&[u8]]| parts.concat();
        /// (name, input, decoded output or error kind)
        type Case = (&'static str, Vec<u8>, Result<&'static [u8], io::ErrorKind>);
        let cases: Vec<Case> = vec![
            ("one stream", a.clone(), Ok(b"first stream ")),
            (
                "two streams",
                cat(&[&a, &b]),
                Ok(b"first stream second stream"),
            ),
            (
                "padding",
                cat(&[&a, &[0; 8], &b, &[0; 4]]),
                Ok(b"first stream second stream"),
            ),
            (
                "garbage after",
                cat(&[&a, b"junk"]),
                Err(io::ErrorKind::InvalidData),
            ),
            (
                "truncated",
                a[..a.len() - 5].to_vec(),
                Err(io::ErrorKind::UnexpectedEof),
            ),
            (
                "second truncated",
                cat(&[&a, &b[..b.len() / 2]]),
                Err(io::ErrorKind::UnexpectedEof),
            ),
        ];
        for (name, input, want) in cases {
            match (want, decode_xz(&input)) {
                (Ok(w), Ok(got)) => assert_eq!(got, w, "case {name}"),
                (Err(kind), Err(e)) => assert_eq!(e.kind(), kind, "case {name}: {e}"),
                (want, got) => panic!("case {name}: want {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn mem_total_table() {
        let cases = [
            (
                "MemTotal:       16318360 kB\nMemFree: 1 kB\n",
                Some(16_318_360 * 1024),
            ),
            ("MemFree: 1 kB\n", None),
            ("MemTotal: x kB\n", None),
            ("MemTotal: 5 MB\n", None),
            ("", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_mem_total(input), want, "{input:?}");
        }
        assert!(threading_memlimit() >= 64 << 20);
    }

    fn decode_with(limits: Limits, data: &[u8]) -> (Result<u64, SourceError>, usize) {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("bomb.xz");
        std::fs::write(&src, xz(data)).unwrap();
        let out_dir = dir.path().join("raw");
        std::fs::create_dir(&out_dir).unwrap();
        let dst = out_dir.join("x.img");
        let input = File::open(&src).unwrap();
        let tmp = new_partial(&out_dir).unwrap();
        let r = decode_stream(input, &src, Compression::Xz, tmp, &dst, &NoProgress, limits)
            .map(|(_, n)| n);
        (r, std::fs::read_dir(&out_dir).unwrap().count())
    }

    #[test]
    fn issue15_a_decompression_bomb_stops_at_the_limits_and_leaves_nothing() {
        let data = vec![0xA5u8; 3 << 20];
        let limits = Limits {
            max_len: 1 << 20,
            ..Limits::DEFAULT
        };
        let (r, left) = decode_with(limits, &data);
        let err = r.unwrap_err();
        assert!(
            matches!(err, SourceError::DecodedTooLarge { limit, size, .. } if limit == 1 << 20 && size > limit),
            "{err}"
        );
        assert!(err.to_string().contains("bomb.xz"), "{err}");
        assert_eq!(left, 0, "a partial file was left");
        // The free space the cache keeps: never this much free, so the first check stops it.
        let limits = Limits {
            keep_free: u64::MAX,
            check_every: 1 << 20,
            ..Limits::DEFAULT
        };
        let (r, left) = decode_with(limits, &data);
        let err = r.unwrap_err();
        assert!(err.to_string().contains("keeping"), "{err}");
        assert_eq!(left, 0);
        // Within the limits it decodes.
        let (r, _) = decode_with(Limits::DEFAULT, &data);
        assert_eq!(r.unwrap(), 3 << 20);
    }

    #[test]
    fn tiny_output_is_not_an_image_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("tiny.xz");
        std::fs::write(&src, xz(&[1; 100])).unwrap();
        let out_dir = dir.path().join("raw");
        let dst = out_dir.join("x.img");
        let err = decode_into(&src, Compression::Xz, &dst, "tiny.xz", &NoProgress).unwrap_err();
        assert!(
            matches!(
                err,
                SourceError::NotAnImage {
                    size: 100,
                    decoded: true,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(std::fs::read_dir(&out_dir).unwrap().count(), 0);
    }
}
