//! Local files: raw in place, each compression format, truncated, corrupt and bad input.

use std::fs;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::PathBuf;
use std::process::Command;

use piimage::disk::source::{Cache, SourceError, decode_to, resolve};
use piimage::io::hashing::Sha256Digest;
use piimage::io::sniff::Compression;
use piimage::progress::NoProgress;

use super::data::{
    Data, Phases, VARIANTS, assert_cache_empty, assert_good_raw, files_under, path_spec,
};
use crate::support::sh;

#[test]
fn every_compression_decodes_identically_sparse_and_read_only() {
    let data = Data::new();
    // The xz variant must really be multi-block, or the MT decoder is not exercised.
    let out = Command::new("xz")
        .args(["--robot", "-l"])
        .arg(data.path("image.img.xz"))
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    let blocks: u32 = listing
        .lines()
        .find_map(|l| l.strip_prefix("file\t"))
        .and_then(|l| l.split('\t').nth(1))
        .and_then(|b| b.parse().ok())
        .unwrap_or_else(|| panic!("xz --robot -l: {listing}"));
    assert!(blocks >= 8, "xz file has {blocks} blocks");

    for v in VARIANTS {
        let cache_dir = crate::support::tmp();
        let cache = Cache::at(cache_dir.path());
        let src = data.path(v.file);
        let sha = Sha256Digest::of(&data.bytes(v.file));
        let phases = Phases::default();
        let base = resolve(&path_spec(src.clone(), None), &cache, &phases).unwrap();
        assert_eq!(base.compression, v.compression, "case {}", v.name);
        assert_eq!(base.source_sha256, Some(sha), "case {}", v.name);
        assert_eq!(base.raw_path, cache.raw_path(&sha), "case {}", v.name);
        assert_eq!(base.origin, src.display().to_string(), "case {}", v.name);
        assert_good_raw(&base, &data.image, v.name);
        assert_eq!(phases.count("decompressing "), 1, "case {}", v.name);
        assert_eq!(
            files_under(cache_dir.path()),
            vec![format!("raw/{sha}.img")],
            "case {}: only the raw image is cached",
            v.name
        );

        // Second time: reused, not decoded again; a given (correct) sha256 is accepted.
        let again = resolve(&path_spec(src, Some(sha)), &cache, &phases).unwrap();
        assert_eq!(again, base, "case {}", v.name);
        assert_eq!(
            phases.count("decompressing "),
            1,
            "case {}: decoded twice",
            v.name
        );
    }
}

#[test]
fn local_raw_image_is_used_in_place() {
    let data = Data::new();
    let cache_dir = crate::support::tmp();
    let cache = Cache::at(cache_dir.path().join("cache"));
    let path = data.path("image.img");
    let before = fs::metadata(&path).unwrap();

    let base = resolve(&path_spec(path.clone(), None), &cache, &NoProgress).unwrap();
    assert_eq!(base.raw_path, path);
    assert_eq!(base.compression, Compression::None);
    assert_eq!(base.source_sha256, None);
    assert_eq!(base.size, data.image.len() as u64);

    let sha = Sha256Digest::of(&data.image);
    let base = resolve(&path_spec(path.clone(), Some(sha)), &cache, &NoProgress).unwrap();
    assert_eq!(base.raw_path, path);
    assert_eq!(base.source_sha256, Some(sha));

    let after = fs::metadata(&path).unwrap();
    assert_eq!(after.mtime(), before.mtime(), "the raw image was modified");
    assert_eq!(after.permissions().mode(), before.permissions().mode());
    assert!(
        !cache.root().exists(),
        "a raw image must not touch the cache"
    );
}

#[test]
fn local_sha256_mismatch_leaves_nothing() {
    let data = Data::new();
    let wrong = Sha256Digest::of(b"something else");
    for file in ["image.img", "image.img.xz"] {
        let cache_dir = crate::support::tmp();
        let cache = Cache::at(cache_dir.path());
        let path = data.path(file);
        let err = resolve(&path_spec(path.clone(), Some(wrong)), &cache, &NoProgress).unwrap_err();
        let actual = Sha256Digest::of(&data.bytes(file));
        assert_eq!(
            err.to_string(),
            format!(
                "sha256 mismatch for {}: expected {wrong}, got {actual}",
                path.display()
            ),
            "case {file}"
        );
        assert_cache_empty(&cache_dir, file);
    }
}

#[test]
fn truncated_compressed_files_fail_clearly_and_leave_nothing() {
    let data = Data::new();
    for v in VARIANTS {
        let full = data.bytes(v.file);
        for (cut_name, keep) in [
            ("half", full.len() / 2),
            ("all but 1 byte", full.len() - 1),
            ("header only", 12),
        ] {
            let case = format!("{} cut to {cut_name}", v.name);
            let dir = crate::support::tmp();
            let path = dir.path().join(v.file);
            fs::write(&path, &full[..keep]).unwrap();
            let cache_dir = crate::support::tmp();
            let cache = Cache::at(cache_dir.path());
            let err = resolve(&path_spec(path.clone(), None), &cache, &NoProgress).unwrap_err();
            match &err {
                SourceError::Truncated {
                    path: p,
                    compression,
                } => {
                    assert_eq!(p, &path, "case {case}");
                    assert_eq!(*compression, v.compression, "case {case}");
                }
                other => panic!("case {case}: want Truncated, got {other:?}: {other}"),
            }
            let msg = err.to_string();
            assert!(
                msg.starts_with(&path.display().to_string()),
                "case {case}: {msg}"
            );
            assert!(msg.contains("truncated"), "case {case}: {msg}");
            assert_cache_empty(&cache_dir, &case);
        }
    }
}

#[test]
fn corrupt_compressed_files_fail_clearly_and_leave_nothing() {
    let data = Data::new();
    for v in VARIANTS {
        let mut bytes = data.bytes(v.file);
        let mid = bytes.len() / 2;
        for b in &mut bytes[mid..mid + 64] {
            *b ^= 0x5A;
        }
        let dir = crate::support::tmp();
        let path = dir.path().join(v.file);
        fs::write(&path, &bytes).unwrap();
        let cache_dir = crate::support::tmp();
        let cache = Cache::at(cache_dir.path());
        let err = resolve(&path_spec(path.clone(), None), &cache, &NoProgress).unwrap_err();
        assert!(
            matches!(&err, SourceError::Corrupt { path: p, .. } if *p == path),
            "case {}: {err:?}",
            v.name
        );
        assert!(
            err.to_string().contains("corrupt"),
            "case {}: {err}",
            v.name
        );
        assert_cache_empty(&cache_dir, v.name);
    }
}

#[test]
fn bad_local_files_table() {
    let dir = crate::support::tmp();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        fs::write(&p, bytes).unwrap();
        p
    };
    let tiny_xz = {
        write("tiny", &[7u8; 100]);
        sh(dir.path(), "xz -k -c tiny > tiny.xz");
        dir.path().join("tiny.xz")
    };
    let cases: Vec<(&str, PathBuf, String)> = vec![
        (
            "missing",
            dir.path().join("nope.img"),
            format!("{}: no such file", dir.path().join("nope.img").display()),
        ),
        (
            "empty",
            write("empty.img", b""),
            format!(
                "not a disk image: {}/empty.img is 0 bytes",
                dir.path().display()
            ),
        ),
        (
            "tiny",
            write("tiny.img", &[1u8; 100]),
            format!(
                "not a disk image: {}/tiny.img is 100 bytes",
                dir.path().display()
            ),
        ),
        (
            "tiny after decoding",
            tiny_xz.clone(),
            format!(
                "not a disk image: {} decodes to 100 bytes",
                tiny_xz.display()
            ),
        ),
        (
            "zip",
            write("x.zip", b"PK\x03\x04\x14\x00\x00\x00\x08\x00rest of a zip"),
            format!(
                "{}/x.zip: zip archives are not supported; extract the .img first (unzip FILE)",
                dir.path().display()
            ),
        ),
        (
            "bzip2",
            write("x.img.bz2", b"BZh91AY&SY\x00\x01\x02"),
            format!(
                "{}/x.img.bz2: bzip2-compressed images are not supported; decompress it first \
                 (bunzip2 -k FILE)",
                dir.path().display()
            ),
        ),
        (
            "directory",
            dir.path().to_owned(),
            format!("{}: not a regular file", dir.path().display()),
        ),
    ];
    for (name, path, want) in cases {
        let cache_dir = crate::support::tmp();
        let cache = Cache::at(cache_dir.path());
        let err = resolve(&path_spec(path, None), &cache, &NoProgress).unwrap_err();
        assert_eq!(err.to_string(), want, "case {name}");
        assert_cache_empty(&cache_dir, name);
    }
}

#[test]
fn decode_to_writes_a_sparse_copy() {
    let data = Data::new();
    let out_dir = crate::support::tmp();
    let dst = out_dir.path().join("out.img");
    let size = decode_to(&data.path("image.img.zst"), &dst, &NoProgress).unwrap();
    assert_eq!(size, data.image.len() as u64);
    assert!(fs::read(&dst).unwrap() == data.image);
    assert_eq!(files_under(out_dir.path()), vec!["out.img".to_owned()]);
}
