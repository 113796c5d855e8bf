//! Downloads through the loopback server: decoding, reuse, redirects and failures.

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;

use piimage::disk::source::{BaseSpec, Cache, SourceError, resolve};
use piimage::io::hashing::Sha256Digest;
use piimage::io::sniff::Compression;
use piimage::progress::NoProgress;

use super::data::{Data, Phases, assert_cache_empty, assert_good_raw, files_under};
use super::server::{Reply, Server};

fn url_spec(url: String, sha256: Sha256Digest) -> BaseSpec {
    BaseSpec::Url { url, sha256 }
}

#[test]
fn download_decodes_and_is_reused_without_a_request() {
    let data = Data::new();
    let xz = data.bytes("image.img.xz");
    let sha = Sha256Digest::of(&xz);
    let server = Server::start(vec![("/image.img.xz", Reply::Ok(xz))], 1);
    let cache_dir = crate::support::tmp();
    let cache = Cache::at(cache_dir.path());
    let url = server.url("/image.img.xz");
    let phases = Phases::default();

    let base = resolve(&url_spec(url.clone(), sha), &cache, &phases).unwrap();
    assert_eq!(base.origin, url);
    assert_eq!(base.compression, Compression::Xz);
    assert_eq!(base.source_sha256, Some(sha));
    assert_good_raw(&base, &data.image, "first");
    assert_eq!(
        files_under(cache_dir.path()),
        vec![format!("downloads/{sha}.xz"), format!("raw/{sha}.img")]
    );
    let download = cache_dir.path().join(format!("downloads/{sha}.xz"));
    let mode = fs::metadata(&download).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o444, "the download is read-only");
    assert_eq!(server.requests(), 1);
    assert_eq!(phases.count(&format!("downloading {url}")), 1);
    assert_eq!(phases.count(&format!("decompressing {url}")), 1);

    let again = resolve(&url_spec(url.clone(), sha), &cache, &phases).unwrap();
    assert_eq!(again, base);
    assert_eq!(server.requests(), 1, "the second resolve made a request");
    assert_eq!(phases.count("downloading "), 1);
    assert_eq!(phases.count("decompressing "), 1);

    // With the decoded image gone, the cached download is decoded again, still offline.
    let raw = cache.raw_path(&sha);
    fs::remove_file(&raw).unwrap();
    let third = resolve(&url_spec(url, sha), &cache, &phases).unwrap();
    assert_eq!(third, base);
    assert_eq!(server.requests(), 1);
    assert_eq!(phases.count("decompressing "), 2);
    server.join();
}

#[test]
fn downloaded_raw_image_is_used_in_place() {
    let data = Data::new();
    let sha = Sha256Digest::of(&data.image);
    let server = Server::start(vec![("/image.img", Reply::Ok(data.image.clone()))], 1);
    let cache_dir = crate::support::tmp();
    let cache = Cache::at(cache_dir.path());
    let base = resolve(
        &url_spec(server.url("/image.img"), sha),
        &cache,
        &NoProgress,
    )
    .unwrap();
    assert_eq!(base.compression, Compression::None);
    assert_eq!(base.raw_path, cache.download_path(&sha, Compression::None));
    assert_good_raw(&base, &data.image, "raw download");
    assert_eq!(
        files_under(cache_dir.path()),
        vec![format!("downloads/{sha}.img")]
    );
    server.join();
}

#[test]
fn download_follows_redirects() {
    let data = Data::new();
    let gz = data.bytes("image.img.gz");
    let sha = Sha256Digest::of(&gz);
    let server = Server::start(
        vec![
            ("/latest", Reply::Redirect("/images/image.img.gz")),
            ("/images/image.img.gz", Reply::Ok(gz)),
        ],
        2,
    );
    let cache_dir = crate::support::tmp();
    let cache = Cache::at(cache_dir.path());
    let base = resolve(&url_spec(server.url("/latest"), sha), &cache, &NoProgress).unwrap();
    assert_eq!(base.compression, Compression::Gzip);
    assert_good_raw(&base, &data.image, "redirect");
    assert_eq!(server.requests(), 2);
    server.join();
}

#[test]
fn download_failures_table() {
    let data = Data::new();
    let xz = data.bytes("image.img.xz");
    let sha = Sha256Digest::of(&xz);
    let wrong = Sha256Digest::of(b"not it");
    let closed_port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };

    /// Checks an error, given the URL.
    type Check = Box<dyn Fn(&SourceError, &str) -> bool>;
    // (name, reply on the route, sha256 to ask for, check)
    let cases: Vec<(&str, Option<Reply>, Sha256Digest, Check)> = vec![
        (
            "sha256 mismatch",
            Some(Reply::Ok(xz.clone())),
            wrong,
            Box::new(move |e, url| {
                e.to_string() == format!("sha256 mismatch for {url}: expected {wrong}, got {sha}")
            }),
        ),
        (
            "404",
            None,
            sha,
            Box::new(|e, url| {
                matches!(e, SourceError::Http { status: 404, .. })
                    && e.to_string() == format!("{url}: the server answered HTTP 404 Not Found")
            }),
        ),
        (
            "connection closes mid-body",
            Some(Reply::CloseAfter(xz.clone(), xz.len() / 3)),
            sha,
            Box::new(|e, url| {
                matches!(
                    e,
                    SourceError::Interrupted {
                        expected: Some(_),
                        ..
                    }
                ) && e
                    .to_string()
                    .starts_with(&format!("{url}: download interrupted after "))
            }),
        ),
        (
            "issue15 the server announces 10^15 bytes",
            Some(Reply::Announce(xz.clone(), 1_000_000_000_000_000)),
            sha,
            Box::new(|e, url| {
                e.to_string()
                    == format!(
                        "{url}: the server announces 1000000000000000 bytes, more than piimage downloads (68719476736 bytes); nothing was kept"
                    )
            }),
        ),
        (
            "raw body too small",
            Some(Reply::Ok(vec![1; 100])),
            Sha256Digest::of(&[1; 100]),
            Box::new(|e, url| e.to_string() == format!("not a disk image: {url} is 100 bytes")),
        ),
        (
            "zip body",
            Some(Reply::Ok(b"PK\x03\x04 and then some zip data".to_vec())),
            sha,
            Box::new(|e, url| {
                matches!(e, SourceError::UnsupportedCompression { .. })
                    && e.to_string()
                        .starts_with(&format!("{url}: zip archives are not supported"))
            }),
        ),
    ];
    for (name, reply, ask, check) in cases {
        let routes = reply
            .map(|r| vec![("/image.img.xz", r)])
            .unwrap_or_default();
        let server = Server::start(routes, 1);
        let url = server.url("/image.img.xz");
        let cache_dir = crate::support::tmp();
        let cache = Cache::at(cache_dir.path());
        let err = resolve(&url_spec(url.clone(), ask), &cache, &NoProgress).unwrap_err();
        assert!(check(&err, &url), "case {name}: {err:?}: {err}");
        assert_cache_empty(&cache_dir, name);
        server.join();
    }

    // Nothing listens on the port.
    let url = format!("http://127.0.0.1:{closed_port}/image.img.xz");
    let cache_dir = crate::support::tmp();
    let err = resolve(
        &url_spec(url.clone(), sha),
        &Cache::at(cache_dir.path()),
        &NoProgress,
    )
    .unwrap_err();
    assert!(matches!(err, SourceError::Unreachable { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(&format!("{url}: unreachable: ")),
        "{err}"
    );
    assert_cache_empty(&cache_dir, "unreachable");
}

#[test]
fn url_specs_table() {
    let sha = Sha256Digest::of(b"x");
    let cases: &[(&str, Option<Sha256Digest>, Result<&str, &str>)] = &[
        (
            "https://example.com/a.img.xz",
            Some(sha),
            Ok("https://example.com/a.img.xz"),
        ),
        (
            "http://127.0.0.1:1/a.img",
            Some(sha),
            Ok("http://127.0.0.1:1/a.img"),
        ),
        ("./a.img", None, Ok("./a.img")),
        (
            "ftp://example.com/a.img.xz",
            Some(sha),
            Err(
                "ftp://example.com/a.img.xz: unsupported URL scheme; only http:// and https:// URLs are supported",
            ),
        ),
        (
            "https://example.com/a.img.xz",
            None,
            Err(
                "https://example.com/a.img.xz: a URL base needs a sha256 (downloads are verified and cached by it)",
            ),
        ),
    ];
    for (base, sha256, want) in cases {
        match (want, BaseSpec::parse(base, *sha256)) {
            (Ok(origin), Ok(spec)) => assert_eq!(spec.origin(), *origin),
            (Err(msg), Err(e)) => assert_eq!(e.to_string(), *msg),
            (want, got) => panic!("{base}: want {want:?}, got {got:?}"),
        }
    }

    // resolve checks the scheme too, before any I/O.
    let cache_dir = crate::support::tmp();
    let spec = url_spec("ftp://example.com/a.img.xz".to_owned(), sha);
    let err = resolve(&spec, &Cache::at(cache_dir.path()), &NoProgress).unwrap_err();
    assert!(
        matches!(err, SourceError::UnsupportedScheme { .. }),
        "{err:?}"
    );
    assert_cache_empty(&cache_dir, "ftp");
}
