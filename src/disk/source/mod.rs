//! Where a base image comes from: a local file or an http(s) URL, raw or compressed.
//!
//! [`resolve`] turns a [`BaseSpec`] into a [`ResolvedBase`]: a raw image file on disk that callers
//! open read-only.
//!
//! - A local raw image is used in place: never copied, never modified. If a sha256 is given it
//!   is verified first.
//! - A local compressed image (xz, gzip, zstd; detected by magic bytes, see
//!   [`crate::io::sniff`]) is hashed, then decoded into the cache at `raw/<sha256>.img` (sparse,
//!   read-only), unless that file is already there.
//! - A URL (sha256 required) is downloaded to `downloads/<sha256>.<ext>`, verified while
//!   streaming, then decoded like a local file, or used in place if it is raw. A download
//!   already in the cache is reused without a request and without re-hashing: files get their
//!   final name only after verification (see [`Cache`]). If `downloads/` is emptied, the URL is
//!   fetched again even when its decoded image is still in `raw/`: the download is what the
//!   sha256 names.
//!
//! Every failure leaves the cache as it was (partial files are removed) and names the file or
//! URL in its [`SourceError`].

pub(crate) mod cache;
mod decode;
mod download;
mod error;

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

pub use cache::Cache;
pub use decode::{MIN_IMAGE_SIZE, decoder};
pub use download::{CONNECT_TIMEOUT, READ_TIMEOUT};
pub use error::SourceError;

use crate::io::BUF_SIZE;
use crate::io::hashing::{HashingReader, Sha256Digest};
use crate::io::progress::ProgressReader;
use crate::io::sniff::{Compression, SNIFF_LEN, sniff};
use crate::progress::Progress;

/// Where to get a base image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseSpec {
    /// A local file, raw or compressed. If `sha256` is given, the file must have it.
    Path {
        /// The file.
        path: PathBuf,
        /// The sha256 of the file as it is on disk (compressed, if it is).
        sha256: Option<Sha256Digest>,
    },
    /// An `http://` or `https://` URL; what it serves must have `sha256`.
    Url {
        /// The URL.
        url: String,
        /// The sha256 of the body.
        sha256: Sha256Digest,
    },
}

impl BaseSpec {
    /// Interprets `base` as a URL if it contains `://`, else as a path.
    ///
    /// # Errors
    /// A URL with another scheme than http(s) or without a host, or without `sha256`.
    pub fn parse(base: &str, sha256: Option<Sha256Digest>) -> Result<Self, SourceError> {
        if !base.contains("://") {
            return Ok(Self::Path {
                path: PathBuf::from(base),
                sha256,
            });
        }
        download::check_url(base)?;
        match sha256 {
            Some(sha256) => Ok(Self::Url {
                url: base.to_owned(),
                sha256,
            }),
            None => Err(SourceError::MissingSha256 {
                url: base.to_owned(),
            }),
        }
    }

    /// The path or URL, for messages.
    #[must_use]
    pub fn origin(&self) -> String {
        match self {
            Self::Path { path, .. } => path.display().to_string(),
            Self::Url { url, .. } => url.clone(),
        }
    }
}

/// A resolved base image: a raw image file, ready to be opened read-only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedBase {
    /// The raw image: the user's own file for a local raw image, else a read-only cache file.
    pub raw_path: PathBuf,
    /// How the source was compressed.
    pub compression: Compression,
    /// The sha256 of the source as given (compressed). `None` for a local raw image given
    /// without a sha256, which is not hashed.
    pub source_sha256: Option<Sha256Digest>,
    /// The path or URL the image came from.
    pub origin: String,
    /// The size of the raw image in bytes.
    pub size: u64,
}

/// Finds, downloads, verifies and decodes a base image as needed; see the module docs.
///
/// # Errors
/// See [`SourceError`]; on error the cache holds no partial file.
pub fn resolve(
    spec: &BaseSpec,
    cache: &Cache,
    progress: &dyn Progress,
) -> Result<ResolvedBase, SourceError> {
    match spec {
        BaseSpec::Path { path, sha256 } => resolve_path(path, sha256.as_ref(), cache, progress),
        BaseSpec::Url { url, sha256 } => resolve_url(url, sha256, cache, progress),
    }
}

fn resolve_path(
    path: &Path,
    expected: Option<&Sha256Digest>,
    cache: &Cache,
    progress: &dyn Progress,
) -> Result<ResolvedBase, SourceError> {
    let meta = fs::metadata(path).map_err(|e| open_error(path, e))?;
    if !meta.is_file() {
        return Err(SourceError::NotAFile {
            path: path.to_owned(),
        });
    }
    let compression = sniff_file(path)?;
    let origin = path.display().to_string();
    if compression == Compression::None {
        check_raw_size(&origin, meta.len())?;
    }
    let sha256 = if compression.is_compressed() || expected.is_some() {
        let actual = hash_file(path, progress)?;
        if let Some(expected) = expected.filter(|&&e| e != actual) {
            return Err(SourceError::Sha256Mismatch {
                what: origin,
                expected: *expected,
                actual,
            });
        }
        Some(actual)
    } else {
        None
    };
    let (raw_path, size) = match sha256.filter(|_| compression.is_compressed()) {
        Some(sha256) => decoded(path, compression, &sha256, &origin, cache, progress)?,
        None => (path.to_owned(), meta.len()),
    };
    Ok(ResolvedBase {
        raw_path,
        compression,
        source_sha256: sha256,
        origin,
        size,
    })
}

fn resolve_url(
    url: &str,
    sha256: &Sha256Digest,
    cache: &Cache,
    progress: &dyn Progress,
) -> Result<ResolvedBase, SourceError> {
    download::check_url(url)?;
    let (download, compression) = match cache.find_download(sha256) {
        Some(found) => found,
        None => download::download(url, sha256, cache, progress)?,
    };
    let (raw_path, size) = if compression.is_compressed() {
        decoded(&download, compression, sha256, url, cache, progress)?
    } else {
        let size = fs::metadata(&download)
            .map_err(|e| SourceError::io("reading metadata of", &download, e))?
            .len();
        (download, size)
    };
    Ok(ResolvedBase {
        raw_path,
        compression,
        source_sha256: Some(*sha256),
        origin: url.to_owned(),
        size,
    })
}

/// The cached raw image decoded from `src` (which came from `origin`), decoding it first if
/// the cache lacks it.
fn decoded(
    src: &Path,
    compression: Compression,
    sha256: &Sha256Digest,
    origin: &str,
    cache: &Cache,
    progress: &dyn Progress,
) -> Result<(PathBuf, u64), SourceError> {
    let raw = cache.raw_path(sha256);
    let size = match fs::metadata(&raw) {
        Ok(meta) if meta.is_file() => meta.len(),
        _ => decode::decode_into(src, compression, &raw, origin, progress)?,
    };
    Ok((raw, size))
}

fn check_raw_size(what: &str, size: u64) -> Result<(), SourceError> {
    if size < MIN_IMAGE_SIZE {
        return Err(SourceError::NotAnImage {
            what: what.to_owned(),
            size,
            decoded: false,
        });
    }
    Ok(())
}

fn open_error(path: &Path, e: io::Error) -> SourceError {
    if e.kind() == io::ErrorKind::NotFound {
        SourceError::NotFound {
            path: path.to_owned(),
        }
    } else {
        SourceError::io("opening", path, e)
    }
}

/// Detects the compression of a file by its magic bytes.
///
/// # Errors
/// The file cannot be read, or is in a format piimage refuses (zip, bzip2, ...).
pub fn sniff_file(path: &Path) -> Result<Compression, SourceError> {
    let file = File::open(path).map_err(|e| open_error(path, e))?;
    let mut head = Vec::with_capacity(SNIFF_LEN);
    file.take(u64::try_from(SNIFF_LEN).unwrap_or(u64::MAX))
        .read_to_end(&mut head)
        .map_err(|e| SourceError::io("reading", path, e))?;
    sniff(&head).map_err(|kind| SourceError::UnsupportedCompression {
        what: path.display().to_string(),
        kind,
    })
}

/// The sha256 of a file, reporting progress as "hashing PATH".
///
/// # Errors
/// The file cannot be read.
pub fn hash_file(path: &Path, progress: &dyn Progress) -> Result<Sha256Digest, SourceError> {
    let file = File::open(path).map_err(|e| open_error(path, e))?;
    let total = file.metadata().ok().map(|m| m.len());
    progress.start(&format!("hashing {}", path.display()), total);
    let mut reader = HashingReader::new(ProgressReader::new(file, progress));
    let mut buf = vec![0u8; BUF_SIZE];
    let result = loop {
        match reader.read(&mut buf) {
            Ok(0) => break Ok(reader.digest()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(SourceError::io("reading", path, e)),
        }
    };
    progress.finish();
    result
}

/// Decodes `src` (any supported format, detected by magic bytes) into a new read-only sparse
/// file `dst`, via a partial file beside it that is removed on error. Returns the decoded size.
///
/// # Errors
/// See [`SourceError`]; `dst` is not created on error.
pub fn decode_to(src: &Path, dst: &Path, progress: &dyn Progress) -> Result<u64, SourceError> {
    let compression = sniff_file(src)?;
    decode::decode_into(src, compression, dst, &src.display().to_string(), progress)
}
