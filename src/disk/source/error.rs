//! Errors of the image-source layer. Every variant names the file or URL and what is wrong.

use std::io;
use std::path::PathBuf;

use crate::io::hashing::Sha256Digest;
use crate::io::sniff::{Compression, UnsupportedFormat};

/// Why a base image could not be found, fetched, verified or decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// A local path does not exist.
    #[error("{}: no such file", path.display())]
    NotFound {
        /// The missing path.
        path: PathBuf,
    },
    /// A local path exists but is not a regular file.
    #[error("{}: not a regular file", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// An I/O error while working on a file or directory.
    #[error("{op} {}", path.display())]
    Io {
        /// What was being done: "reading", "writing", "creating directory", ...
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Compressed data ends before the compressed stream does.
    #[error(
        "{}: truncated {compression} data: the file ends before the compressed stream does \
         (incomplete download or copy?)",
        path.display()
    )]
    Truncated {
        /// The compressed file.
        path: PathBuf,
        /// Its format.
        compression: Compression,
    },
    /// Compressed data that does not decode.
    #[error("{}: corrupt {compression} data: {detail}", path.display())]
    Corrupt {
        /// The compressed file.
        path: PathBuf,
        /// Its format.
        compression: Compression,
        /// The decoder's complaint.
        detail: String,
    },
    /// A recognised format that piimage refuses (zip, bzip2, ...).
    #[error("{what}: {kind}")]
    UnsupportedCompression {
        /// The file or URL.
        what: String,
        /// The format, whose message says what to do instead.
        kind: UnsupportedFormat,
    },
    /// Too small to hold even a partition table.
    #[error(
        "not a disk image: {what} {} {size} bytes",
        if *decoded { "decodes to" } else { "is" }
    )]
    NotAnImage {
        /// The file or URL.
        what: String,
        /// Its (decoded) size.
        size: u64,
        /// Whether `size` is the size after decompression.
        decoded: bool,
    },
    /// A compressed base decodes to more than piimage makes or than the cache has room for.
    #[error(
        "{}: decoding stopped at {size} bytes: more than {limit_what} ({limit} bytes); a damaged or hostile compressed image?",
        path.display()
    )]
    DecodedTooLarge {
        /// The compressed file.
        path: std::path::PathBuf,
        /// Bytes decoded when it stopped.
        size: u64,
        /// What the limit is.
        limit_what: String,
        /// The limit.
        limit: u64,
    },
    /// The content does not have the sha256 it was promised to have.
    #[error("sha256 mismatch for {what}: expected {expected}, got {actual}")]
    Sha256Mismatch {
        /// The file or URL.
        what: String,
        /// The sha256 given by the user.
        expected: Sha256Digest,
        /// The sha256 of the content.
        actual: Sha256Digest,
    },
    /// A URL base without a sha256.
    #[error("{url}: a URL base needs a sha256 (downloads are verified and cached by it)")]
    MissingSha256 {
        /// The URL.
        url: String,
    },
    /// A URL whose scheme is not http or https.
    #[error("{url}: unsupported URL scheme; only http:// and https:// URLs are supported")]
    UnsupportedScheme {
        /// The URL.
        url: String,
    },
    /// A malformed URL.
    #[error("{url}: invalid URL: {detail}")]
    BadUrl {
        /// The URL.
        url: String,
        /// What is wrong.
        detail: String,
    },
    /// The server answered with a status other than 200.
    #[error("{url}: the server answered HTTP {status}{}", reason_suffix(*status))]
    Http {
        /// The URL.
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// No connection could be made (DNS, refused, timeout, TLS).
    #[error("{url}: unreachable: {detail}")]
    Unreachable {
        /// The URL.
        url: String,
        /// Why.
        detail: String,
    },
    /// The request failed after connecting (protocol error, too many redirects, ...).
    #[error("{url}: download failed: {detail}")]
    Download {
        /// The URL.
        url: String,
        /// Why.
        detail: String,
    },
    /// The download would not fit: larger than [`super::download::MAX_DOWNLOAD`] or than the
    /// free space of the cache.
    #[error("{url}: {what} {size} bytes, more than {limit_what} ({limit} bytes); nothing was kept")]
    TooLarge {
        /// The URL.
        url: String,
        /// "the server announces" or "received".
        what: &'static str,
        /// The size announced or received so far.
        size: u64,
        /// What the limit is.
        limit_what: String,
        /// The limit.
        limit: u64,
    },
    /// The connection broke while the body was being received.
    #[error(
        "{url}: download interrupted after {received}{} bytes: {detail}",
        expected.map(|n| format!(" of {n}")).unwrap_or_default()
    )]
    Interrupted {
        /// The URL.
        url: String,
        /// Bytes received before the failure.
        received: u64,
        /// The announced length (Content-Length), if any.
        expected: Option<u64>,
        /// Why.
        detail: String,
    },
    /// Neither `XDG_CACHE_HOME` nor `HOME` is set.
    #[error("no cache directory: set XDG_CACHE_HOME or HOME")]
    NoCacheDir,
}

fn reason_suffix(status: u16) -> String {
    ureq::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map(|r| format!(" {r}"))
        .unwrap_or_default()
}

impl SourceError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        let a: Sha256Digest = "aa".repeat(32).parse().unwrap();
        let b: Sha256Digest = "bb".repeat(32).parse().unwrap();
        let cases: Vec<(SourceError, String)> = vec![
            (
                SourceError::NotFound {
                    path: "x.img".into(),
                },
                "x.img: no such file".into(),
            ),
            (
                SourceError::Truncated {
                    path: "x.img.xz".into(),
                    compression: Compression::Xz,
                },
                "x.img.xz: truncated xz data: the file ends before the compressed stream does \
                 (incomplete download or copy?)"
                    .into(),
            ),
            (
                SourceError::NotAnImage {
                    what: "x.img".into(),
                    size: 10,
                    decoded: false,
                },
                "not a disk image: x.img is 10 bytes".into(),
            ),
            (
                SourceError::NotAnImage {
                    what: "x.img.gz".into(),
                    size: 0,
                    decoded: true,
                },
                "not a disk image: x.img.gz decodes to 0 bytes".into(),
            ),
            (
                SourceError::Sha256Mismatch {
                    what: "http://h/x".into(),
                    expected: a,
                    actual: b,
                },
                format!("sha256 mismatch for http://h/x: expected {a}, got {b}"),
            ),
            (
                SourceError::Http {
                    url: "http://h/x".into(),
                    status: 404,
                },
                "http://h/x: the server answered HTTP 404 Not Found".into(),
            ),
            (
                SourceError::Http {
                    url: "http://h/x".into(),
                    status: 599,
                },
                "http://h/x: the server answered HTTP 599".into(),
            ),
            (
                SourceError::Interrupted {
                    url: "u".into(),
                    received: 5,
                    expected: Some(9),
                    detail: "eof".into(),
                },
                "u: download interrupted after 5 of 9 bytes: eof".into(),
            ),
            (
                SourceError::Interrupted {
                    url: "u".into(),
                    received: 5,
                    expected: None,
                    detail: "eof".into(),
                },
                "u: download interrupted after 5 bytes: eof".into(),
            ),
            (
                SourceError::UnsupportedCompression {
                    what: "x.zip".into(),
                    kind: UnsupportedFormat::Zip,
                },
                "x.zip: zip archives are not supported; extract the .img first (unzip FILE)".into(),
            ),
            (
                SourceError::io("reading", "x.img", io::Error::other("boom")),
                "reading x.img".into(),
            ),
        ];
        for (err, want) in cases {
            assert_eq!(err.to_string(), want);
        }
    }
}
