//! Streaming an image onto a target and reading it back.
//!
//! The image is decoded as it is read (the decoders of [`crate::disk::source::decoder`]; no
//! temporary copy) in [`BUF_SIZE`] pieces. With a block map only the mapped ranges are written,
//! and each range's sha256 is checked against the map as its last byte passes: a mismatch stops
//! the write, naming the range (the target is then incomplete, as with `bmaptool copy`).
//! Without a map every byte is written, except, on a regular file, all-zero 4 KiB blocks past
//! the file's old end (they read back as zeros anyway, so the file stays sparse).
//!
//! Verification reads the written spans back after `fsync` and after asking the kernel to drop
//! its cached copy of them (`posix_fadvise(DONTNEED)`, so the bytes come from the medium and not
//! from the page cache), and compares their sha256: per range with a map, the whole image
//! without one.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::{FileExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use super::FlashError;
use super::target::Target;
use crate::io::BUF_SIZE;
use crate::io::hashing::Sha256Digest;
use crate::io::progress::ProgressReader;
use crate::io::sniff::{Compression, SNIFF_LEN, sniff};
use crate::output::bmap::parse::ParsedBmap;
use crate::progress::Progress;

/// Zero blocks of this size are skipped on sparse-capable targets.
const ZERO_BLOCK: usize = 4096;

/// What a flash did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlashReport {
    /// The image's format.
    pub compression: Compression,
    /// The decoded image size.
    pub image_size: u64,
    /// Bytes written to the target.
    pub written: u64,
    /// Bytes read back and verified.
    pub verified: u64,
    /// Whether a block map chose what to write.
    pub with_bmap: bool,
    /// Time spent writing and verifying.
    pub elapsed: Duration,
}

/// Opens the target for writing: a block device exclusively (`O_EXCL`: the kernel refuses
/// while anything has it mounted or claimed), a regular file created if missing.
///
/// # Errors
/// The open fails (permission, busy).
pub fn open_target(target: &Target) -> Result<File, FlashError> {
    let mut options = OpenOptions::new();
    options.read(true).write(true);
    match target {
        Target::File(_) => {
            options.create(true);
        }
        Target::Device(d) => {
            // Only real block devices: O_EXCL without O_CREAT means "exclusive" only for them.
            if is_block_device(&d.path) {
                let excl = i32::try_from(rustix::fs::OFlags::EXCL.bits()).unwrap_or(0);
                options.custom_flags(excl);
            }
        }
    }
    options
        .open(target.path())
        .map_err(|source| FlashError::Target {
            what: "opening",
            path: target.path().to_owned(),
            source,
        })
}

fn is_block_device(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_block_device())
}

/// The format of the image at `path`, from its magic bytes.
///
/// # Errors
/// The file cannot be read, or is a refused container (zip, bzip2, ...).
pub fn image_format(path: &Path) -> Result<Compression, FlashError> {
    let mut head = [0u8; SNIFF_LEN];
    let mut file = File::open(path).map_err(|source| FlashError::Image {
        what: "opening",
        path: path.to_owned(),
        source,
    })?;
    let n = read_full(&mut file, &mut head).map_err(|source| FlashError::Image {
        what: "reading",
        path: path.to_owned(),
        source,
    })?;
    sniff(&head[..n]).map_err(|source| FlashError::Format {
        path: path.to_owned(),
        source,
    })
}

/// Writes `image` (any format) onto `target` through the already opened `out`, only the
/// ranges of `bmap` when given, then verifies by reading back. `what` labels the progress.
///
/// # Errors
/// Reading or decoding the image, a range not matching the map, the image running past the
/// device's end, writing, syncing, or a read-back that differs.
pub fn write_and_verify(
    image: &Path,
    bmap: Option<&ParsedBmap>,
    target: &Target,
    out: &File,
    what: &str,
    progress: &dyn Progress,
) -> Result<FlashReport, FlashError> {
    let _polling = crate::cancel::polling();
    let started = Instant::now();
    let compression = image_format(image)?;
    let img_err = |what: &'static str| {
        let path = image.to_owned();
        move |source: io::Error| FlashError::Image { what, path, source }
    };
    let tgt_err = |what: &'static str| {
        let path = target.path().to_owned();
        move |source: io::Error| FlashError::Target { what, path, source }
    };
    let file = File::open(image).map_err(img_err("opening"))?;
    let total = file.metadata().map_err(img_err("reading"))?.len();
    let (limit, old_len) = match target {
        Target::Device(d) => (Some(d.size), None),
        Target::File(_) => (
            None,
            Some(out.metadata().map_err(tgt_err("examining"))?.len()),
        ),
    };

    progress.start(what, Some(total));
    let mut input = BufReader::with_capacity(BUF_SIZE, ProgressReader::new(file, progress));
    input.fill_buf().map_err(img_err("reading"))?;
    let result = (|| {
        let mut decoder =
            crate::disk::source::decoder(input, compression).map_err(img_err("decoding"))?;
        let mut sink = Sink {
            out,
            target: target.path(),
            bmap,
            next_range: 0,
            range_hash: Sha256::new(),
            whole_hash: Sha256::new(),
            old_len,
            written: 0,
        };
        let mut buf = vec![0u8; BUF_SIZE];
        let mut pos = 0u64;
        loop {
            crate::cancel::check().map_err(tgt_err("writing"))?;
            let n = read_full(&mut decoder, &mut buf).map_err(img_err("decoding"))?;
            if n == 0 {
                break;
            }
            let end = pos + u64::try_from(n).unwrap_or(u64::MAX);
            if let Some(size) = limit
                && end > size
            {
                return Err(FlashError::PastEnd {
                    target: target.path().to_owned(),
                    size,
                });
            }
            sink.put(pos, &buf[..n])?;
            pos = end;
        }
        Ok((pos, sink.written, sink.whole_hash.finalize()))
    })();
    progress.finish();
    let (image_size, written, whole) = result?;
    if let Some(map) = bmap
        && map.image_size != image_size
    {
        return Err(FlashError::SizeMismatch {
            expected: map.image_size,
            actual: image_size,
        });
    }
    if let Some(old) = old_len
        && old < image_size
    {
        out.set_len(image_size).map_err(tgt_err("extending"))?;
    }
    out.sync_all().map_err(tgt_err("syncing"))?;

    // Verify.
    let spans: Vec<(u64, u64, Sha256Digest)> = match bmap {
        Some(map) => map
            .ranges
            .iter()
            .map(|(r, d)| {
                let (s, e) = map.byte_span(r);
                (s, e, *d)
            })
            .collect(),
        None => vec![(0, image_size, Sha256Digest::from_bytes(whole.into()))],
    };
    let verify_total: u64 = spans.iter().map(|(s, e, _)| e - s).sum();
    progress.start("verifying", Some(verify_total));
    let result = verify(out, target.path(), &spans, progress);
    progress.finish();
    result?;
    Ok(FlashReport {
        compression,
        image_size,
        written,
        verified: verify_total,
        with_bmap: bmap.is_some(),
        elapsed: started.elapsed(),
    })
}

/// Where decoded bytes go.
struct Sink<'a> {
    out: &'a File,
    target: &'a Path,
    bmap: Option<&'a ParsedBmap>,
    next_range: usize,
    range_hash: Sha256,
    whole_hash: Sha256,
    /// A regular file's length before the flash (zero blocks past it are skipped).
    old_len: Option<u64>,
    written: u64,
}

impl Sink<'_> {
    fn write(&mut self, at: u64, data: &[u8]) -> Result<(), FlashError> {
        self.out
            .write_all_at(data, at)
            .map_err(|source| FlashError::Target {
                what: "writing",
                path: self.target.to_owned(),
                source,
            })?;
        self.written += u64::try_from(data.len()).unwrap_or(u64::MAX);
        Ok(())
    }

    /// Takes the image bytes at `pos`.
    fn put(&mut self, pos: u64, data: &[u8]) -> Result<(), FlashError> {
        let end = pos + u64::try_from(data.len()).unwrap_or(u64::MAX);
        let Some(map) = self.bmap else {
            self.whole_hash.update(data);
            return self.put_all(pos, data);
        };
        while let Some((range, digest)) = map.ranges.get(self.next_range) {
            let (s, e) = map.byte_span(range);
            if s >= end {
                break;
            }
            let (a, b) = (s.max(pos), e.min(end));
            if a < b {
                let slice = &data[offset(a - pos)..offset(b - pos)];
                self.range_hash.update(slice);
                self.write(a, slice)?;
            }
            if e > end {
                break;
            }
            let got = Sha256Digest::from_bytes(
                std::mem::replace(&mut self.range_hash, Sha256::new())
                    .finalize()
                    .into(),
            );
            if got != *digest {
                return Err(FlashError::RangeMismatch {
                    first: range.first,
                    last: range.last,
                    expected: digest.to_string(),
                    actual: got.to_string(),
                    target: self.target.to_owned(),
                });
            }
            self.next_range += 1;
        }
        Ok(())
    }

    /// Writes everything, except zero blocks past a regular file's old end.
    fn put_all(&mut self, pos: u64, data: &[u8]) -> Result<(), FlashError> {
        let Some(old) = self.old_len else {
            return self.write(pos, data);
        };
        let mut at = 0usize;
        while at < data.len() {
            let abs = pos + u64::try_from(at).unwrap_or(u64::MAX);
            let n = ZERO_BLOCK.min(data.len() - at);
            let block = &data[at..at + n];
            if abs < old || block.iter().any(|&b| b != 0) {
                self.write(abs, block)?;
            }
            at += n;
        }
        Ok(())
    }
}

fn offset(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Reads back `spans` of `out` and compares their sha256.
fn verify(
    out: &File,
    target: &Path,
    spans: &[(u64, u64, Sha256Digest)],
    progress: &dyn Progress,
) -> Result<(), FlashError> {
    let err = |source: io::Error| FlashError::Target {
        what: "reading back",
        path: target.to_owned(),
        source,
    };
    // Drop the cached pages so the read comes from the medium; failure only weakens the check.
    let _ = rustix::fs::fadvise(out, 0, None, rustix::fs::Advice::DontNeed);
    let mut buf = vec![0u8; BUF_SIZE];
    for &(start, end, want) in spans {
        let mut hash = Sha256::new();
        let mut at = start;
        while at < end {
            crate::cancel::check().map_err(err)?;
            let n = offset((end - at).min(u64::try_from(BUF_SIZE).unwrap_or(u64::MAX)));
            out.read_exact_at(&mut buf[..n], at).map_err(err)?;
            hash.update(&buf[..n]);
            at += u64::try_from(n).unwrap_or(u64::MAX);
            progress.advance(u64::try_from(n).unwrap_or(u64::MAX));
        }
        let got = Sha256Digest::from_bytes(hash.finalize().into());
        if got != want {
            return Err(FlashError::Verify {
                start,
                end,
                expected: want.to_string(),
                actual: got.to_string(),
                target: PathBuf::from(target),
            });
        }
    }
    Ok(())
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted && !crate::cancel::is_requested() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::bmap::{BlockMap, BlockRange, xml};
    use crate::progress::NoProgress;

    /// An image with data in blocks 0, 3-4 and 9, and its map.
    fn image() -> (Vec<u8>, String) {
        let mut img = vec![0u8; 10 * 4096 + 300];
        for (i, b) in img.iter_mut().enumerate() {
            let block = i / 4096;
            if [0, 3, 4, 9, 10].contains(&block) {
                *b = u8::try_from(i % 251).unwrap();
            }
        }
        let map = BlockMap {
            image_size: u64::try_from(img.len()).unwrap(),
            ranges: vec![
                BlockRange { first: 0, last: 0 },
                BlockRange { first: 3, last: 4 },
                BlockRange { first: 9, last: 10 },
            ],
            notes: vec![],
        };
        let digests: Vec<_> = map
            .ranges
            .iter()
            .map(|r| {
                let (s, e) = map.byte_span(r);
                Sha256Digest::of(&img[offset(s)..offset(e)])
            })
            .collect();
        (img, xml::render(&map, &digests))
    }

    #[test]
    fn bmap_writes_only_mapped_ranges_and_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let (img, text) = image();
        let src = dir.path().join("n.img");
        std::fs::write(&src, &img).unwrap();
        let map = crate::output::bmap::parse::parse(&text).unwrap();
        let dst = dir.path().join("card");
        std::fs::write(&dst, vec![0xA5; 12 * 4096]).unwrap();
        let target = Target::File(dst.clone());
        let out = open_target(&target).unwrap();
        let r = write_and_verify(&src, Some(&map), &target, &out, "t", &NoProgress).unwrap();
        assert_eq!(r.written, 4 * 4096 + 300);
        let got = std::fs::read(&dst).unwrap();
        assert_eq!(got.len(), 12 * 4096, "a longer file keeps its length");
        for block in 0..11 {
            let span = block * 4096..(block * 4096 + 4096).min(img.len());
            if [0, 3, 4, 9, 10].contains(&block) {
                assert_eq!(got[span.clone()], img[span], "block {block}");
            } else {
                assert!(
                    got[span].iter().all(|&b| b == 0xA5),
                    "block {block} untouched"
                );
            }
        }
    }

    #[test]
    fn bmap_mismatch_names_the_range() {
        let dir = tempfile::tempdir().unwrap();
        let (mut img, text) = image();
        img[3 * 4096 + 7] ^= 1;
        let src = dir.path().join("n.img");
        std::fs::write(&src, &img).unwrap();
        let map = crate::output::bmap::parse::parse(&text).unwrap();
        let target = Target::File(dir.path().join("card"));
        let out = open_target(&target).unwrap();
        let err = write_and_verify(&src, Some(&map), &target, &out, "t", &NoProgress)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("blocks 3-4 of the image do not match"),
            "{err}"
        );
    }

    #[test]
    fn without_bmap_a_new_file_is_the_image_and_sparse() {
        let dir = tempfile::tempdir().unwrap();
        let (img, _) = image();
        let src = dir.path().join("n.img");
        std::fs::write(&src, &img).unwrap();
        let target = Target::File(dir.path().join("card"));
        let out = open_target(&target).unwrap();
        let r = write_and_verify(&src, None, &target, &out, "t", &NoProgress).unwrap();
        assert_eq!(std::fs::read(target.path()).unwrap(), img);
        assert_eq!(r.written, 4 * 4096 + 300, "zero blocks skipped");
        assert_eq!(r.verified, u64::try_from(img.len()).unwrap());
    }
}
