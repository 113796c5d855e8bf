//! HTTP(S) downloads into the cache, verified against a sha256 while streaming.
//!
//! ureq 3 with rustls and the webpki roots: connect timeout [`CONNECT_TIMEOUT`], a per-read
//! timeout [`READ_TIMEOUT`] (a stalled transfer fails; a slow one does not), up to 10 redirects,
//! no `Accept-Encoding` (the bytes on disk must be the bytes that were hashed). Proxies come from
//! the usual `HTTPS_PROXY`/`NO_PROXY` variables, except for loopback hosts, which are always
//! reached directly.
//!
//! A download is bounded: by the `Content-Length` the server announced (ureq stops there), by
//! [`MAX_DOWNLOAD`] and by the free space of the cache's filesystem less [`KEEP_FREE`], checked
//! before the body is read (an announced 10^15 bytes is refused at once) and again every
//! [`SPACE_CHECK_EVERY`] bytes while it streams (a body without a length, or a disk that other
//! programs fill meanwhile).

use std::io::{self, Read};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::SourceError;
use super::cache::{Cache, new_partial, persist_read_only};
use super::decode::MIN_IMAGE_SIZE;
use crate::io::BUF_SIZE;
use crate::io::hashing::{HashingWriter, Sha256Digest};
use crate::io::sniff::{Compression, SNIFF_LEN, sniff};
use crate::io::sparse::SparseWriter;
use crate::progress::Progress;

/// How long to wait for a TCP (and TLS) connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a single read (response headers or a piece of the body) may stall.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// The largest image piimage downloads (64 GiB; official compressed images are under 3 GiB).
pub const MAX_DOWNLOAD: u64 = 64 << 30;
/// Space left free on the cache's filesystem (1 GiB): a download never fills the disk.
pub const KEEP_FREE: u64 = 1 << 30;
/// How often (in bytes received) the free space is checked again while a body streams.
pub const SPACE_CHECK_EVERY: u64 = 256 << 20;

/// Bytes available to an unprivileged writer in `dir`'s filesystem; `None` if unknown.
fn free_space(dir: &std::path::Path) -> Option<u64> {
    let s = rustix::fs::statvfs(dir).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

/// Refuses `size` more bytes in `dir` when they exceed [`MAX_DOWNLOAD`] (counting `size`
/// whole) or the free space less [`KEEP_FREE`] (counting only `more`, the bytes still to come).
pub(crate) fn check_room(
    url: &str,
    what: &'static str,
    size: u64,
    more: u64,
    free: Option<u64>,
) -> Result<(), SourceError> {
    let err = |limit_what: String, limit| SourceError::TooLarge {
        url: url.to_owned(),
        what,
        size,
        limit_what,
        limit,
    };
    if size > MAX_DOWNLOAD {
        return Err(err("piimage downloads".to_owned(), MAX_DOWNLOAD));
    }
    if let Some(free) = free {
        let room = free.saturating_sub(KEEP_FREE);
        if more > room {
            return Err(err(
                format!("the cache's free space less {} GiB", KEEP_FREE >> 30),
                room,
            ));
        }
    }
    Ok(())
}

/// Checks that `url` is an `http://` or `https://` URL with a host, and returns the host.
pub(crate) fn check_url(url: &str) -> Result<&str, SourceError> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(SourceError::BadUrl {
            url: url.to_owned(),
            detail: "expected http://HOST/PATH or https://HOST/PATH".to_owned(),
        });
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(SourceError::UnsupportedScheme {
            url: url.to_owned(),
        });
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        host_port.split(':').next().unwrap_or_default()
    };
    if host.is_empty() {
        return Err(SourceError::BadUrl {
            url: url.to_owned(),
            detail: "no host name".to_owned(),
        });
    }
    Ok(host)
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn agent(direct: bool) -> ureq::Agent {
    let mut config = ureq::Agent::config_builder()
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_recv_response(Some(READ_TIMEOUT))
        .timeout_per_read(Some(READ_TIMEOUT))
        .http_status_as_error(false)
        .max_redirects(10)
        .user_agent(concat!("piimage/", env!("CARGO_PKG_VERSION")));
    if direct {
        config = config.proxy(None);
    }
    config.build().into()
}

/// Downloads `url` into the cache as `downloads/<expected>.<ext>`, verifying its sha256.
///
/// On any error (including a mismatch), nothing is left in the cache.
pub(crate) fn download(
    url: &str,
    expected: &Sha256Digest,
    cache: &Cache,
    progress: &dyn Progress,
) -> Result<(PathBuf, Compression), SourceError> {
    let host = check_url(url)?;
    let _polling = crate::cancel::polling();
    let mut response = agent(is_loopback(host))
        .get(url)
        .call()
        .map_err(|e| call_error(url, e))?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(SourceError::Http {
            url: url.to_owned(),
            status,
        });
    }
    let total = response.body().content_length();
    let tmp = new_partial(&cache.downloads_dir())?;
    if let Some(total) = total {
        check_room(
            url,
            "the server announces",
            total,
            total,
            free_space(&cache.downloads_dir()),
        )?;
    }
    progress.start(&format!("downloading {url}"), total);
    let result = receive(
        url,
        response.body_mut().as_reader(),
        total,
        tmp,
        cache,
        progress,
    );
    progress.finish();
    let (tmp, actual, compression, size) = result?;
    if actual != *expected {
        return Err(SourceError::Sha256Mismatch {
            what: url.to_owned(),
            expected: *expected,
            actual,
        });
    }
    if compression == Compression::None && size < MIN_IMAGE_SIZE {
        return Err(SourceError::NotAnImage {
            what: url.to_owned(),
            size,
            decoded: false,
        });
    }
    let dst = cache.download_path(expected, compression);
    persist_read_only(tmp, &dst)?;
    Ok((dst, compression))
}

/// Streams the body into `tmp`, hashing it and sniffing its first bytes.
fn receive(
    url: &str,
    mut body: impl Read,
    total: Option<u64>,
    tmp: tempfile::NamedTempFile,
    cache: &Cache,
    progress: &dyn Progress,
) -> Result<(tempfile::NamedTempFile, Sha256Digest, Compression, u64), SourceError> {
    let dst_dir = cache.downloads_dir();
    let write_error = |e: io::Error| SourceError::io("writing into", &dst_dir, e);
    let mut out = HashingWriter::new(SparseWriter::new(tmp));
    let mut buf = vec![0u8; BUF_SIZE];
    let mut head = Vec::with_capacity(SNIFF_LEN);
    let mut compression = None;
    let mut next_space_check = SPACE_CHECK_EVERY;
    loop {
        crate::cancel::check().map_err(write_error)?;
        let received = out.byte_count();
        if received >= next_space_check || received > MAX_DOWNLOAD {
            next_space_check = received.saturating_add(SPACE_CHECK_EVERY);
            let more = total.map_or(SPACE_CHECK_EVERY, |t| t.saturating_sub(received));
            check_room(url, "received", received, more, free_space(&dst_dir))?;
        }
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(SourceError::Interrupted {
                    url: url.to_owned(),
                    received: out.byte_count(),
                    expected: total,
                    detail: e.to_string(),
                });
            }
        };
        if compression.is_none() {
            let take = (SNIFF_LEN - head.len()).min(n);
            head.extend_from_slice(&buf[..take]);
            if head.len() == SNIFF_LEN {
                compression = Some(sniff_url(url, &head)?);
            }
        }
        std::io::Write::write_all(&mut out, &buf[..n]).map_err(write_error)?;
        progress.advance(u64::try_from(n).unwrap_or(u64::MAX));
    }
    let compression = match compression {
        Some(c) => c,
        None => sniff_url(url, &head)?,
    };
    let received = out.byte_count();
    if let Some(total) = total.filter(|&t| t != received) {
        return Err(SourceError::Interrupted {
            url: url.to_owned(),
            received,
            expected: Some(total),
            detail: "the connection closed early".to_owned(),
        });
    }
    let (sparse, digest) = out.into_parts();
    let (tmp, _) = sparse.finish().map_err(write_error)?;
    Ok((tmp, digest, compression, received))
}

fn sniff_url(url: &str, head: &[u8]) -> Result<Compression, SourceError> {
    sniff(head).map_err(|kind| SourceError::UnsupportedCompression {
        what: url.to_owned(),
        kind,
    })
}

fn call_error(url: &str, e: ureq::Error) -> SourceError {
    let url = url.to_owned();
    match e {
        ureq::Error::Io(e) => SourceError::Unreachable {
            url,
            detail: e.to_string(),
        },
        ureq::Error::HostNotFound => SourceError::Unreachable {
            url,
            detail: "host not found".to_owned(),
        },
        ureq::Error::ConnectionFailed => SourceError::Unreachable {
            url,
            detail: "connection failed".to_owned(),
        },
        ureq::Error::Timeout(t) => SourceError::Unreachable {
            url,
            detail: format!("timed out ({t})"),
        },
        ureq::Error::Tls(detail) => SourceError::Unreachable {
            url,
            detail: format!("TLS: {detail}"),
        },
        ureq::Error::BadUri(detail) => SourceError::BadUrl { url, detail },
        ureq::Error::TooManyRedirects => SourceError::Download {
            url,
            detail: "too many redirects".to_owned(),
        },
        e => SourceError::Download {
            url,
            detail: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue15_room_is_checked_against_the_limit_and_the_free_space() {
        let gib = 1u64 << 30;
        // (name, size, more, free, error wanted)
        type Case<'a> = (&'a str, u64, u64, Option<u64>, Option<&'a str>);
        let cases: [Case; 5] = [
            ("fits", gib, gib, Some(10 * gib), None),
            ("free space unknown", gib, gib, None, None),
            (
                "announces 10^15 bytes",
                1_000_000_000_000_000,
                1_000_000_000_000_000,
                Some(10 * gib),
                Some(
                    "u: the server announces 1000000000000000 bytes, more than piimage downloads (68719476736 bytes)",
                ),
            ),
            (
                "disk nearly full",
                2 * gib,
                2 * gib,
                Some(2 * gib),
                Some("more than the cache's free space less 1 GiB (1073741824 bytes)"),
            ),
            ("the rest fits", 9 * gib, gib / 2, Some(2 * gib), None),
        ];
        for (name, size, more, free, want) in cases {
            let got = check_room("u", "the server announces", size, more, free);
            match (want, got) {
                (None, Ok(())) => {}
                (Some(w), Err(e)) => assert!(e.to_string().contains(w), "{name}: {e}"),
                (w, g) => panic!("{name}: wanted {w:?}, got {g:?}"),
            }
        }
    }

    #[test]
    fn check_url_table() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("https://example.com/x.img.xz", Ok("example.com")),
            ("http://127.0.0.1:8080/x", Ok("127.0.0.1")),
            ("HTTPS://Example.com", Ok("Example.com")),
            ("http://user:pw@host:1/x", Ok("host")),
            ("http://[::1]:80/x", Ok("::1")),
            ("http://h?q=1", Ok("h")),
            ("ftp://example.com/x.img", Err("unsupported URL scheme")),
            ("file:///tmp/x.img", Err("unsupported URL scheme")),
            ("example.com/x.img", Err("invalid URL: expected http://")),
            ("http:///x", Err("invalid URL: no host name")),
            ("https://", Err("invalid URL: no host name")),
        ];
        for (url, want) in cases {
            match (want, check_url(url)) {
                (Ok(h), Ok(got)) => assert_eq!(got, *h, "{url}"),
                (Err(msg), Err(e)) => {
                    let e = e.to_string();
                    assert!(e.starts_with(url), "{url}: {e}");
                    assert!(e.contains(msg), "{url}: {e}");
                }
                (want, got) => panic!("{url}: want {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn loopback_table() {
        for (host, want) in [
            ("localhost", true),
            ("LocalHost", true),
            ("127.0.0.1", true),
            ("127.1.2.3", true),
            ("::1", true),
            ("10.0.0.1", false),
            ("example.com", false),
        ] {
            assert_eq!(is_loopback(host), want, "{host}");
        }
    }
}
