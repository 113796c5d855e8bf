//! Raspberry Pi Imager manifest (`piimage::output::manifest`), checked against Imager's published
//! JSON schema (`tests/fixtures/rpi-imager/os-list-schema.json`) with Python's `jsonschema`
//! (CI: `python3 -m pip install jsonschema`), and its `file://` URLs decoded by Python's
//! `urllib`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use piimage::output::manifest::{
    FileDigest, ImageEntry, Manifest, arm64_devices, file_uri, manifest, path_from_file_uri,
    release_date,
};
use sha2::{Digest, Sha256};

/// `jsonschema.validate(manifest, schema)`; argv[1] is the manifest, argv[2] the schema.
const VALIDATE: &str = "import json,jsonschema,sys; \
                        jsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2])))";

pub(crate) fn schema_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rpi-imager/os-list-schema.json")
}

fn python(args: &[&std::ffi::OsStr]) -> Output {
    let out = Command::new("python3")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "python3 lacks a module (CI: python3 -m pip install jsonschema):\n{stderr}"
    );
    out
}

/// Runs the validator; `Ok` if the manifest is valid, else `Err(stderr)`. Panics unless the
/// failure is a `jsonschema` `ValidationError`, so a broken setup cannot pass a negative test.
pub(crate) fn validate(manifest: &Path, schema: &Path) -> Result<(), String> {
    let out = python(&[
        "-c".as_ref(),
        VALIDATE.as_ref(),
        manifest.as_ref(),
        schema.as_ref(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() {
        return Ok(());
    }
    assert!(
        stderr.contains("jsonschema.exceptions.ValidationError"),
        "the validator failed for another reason:\n{stderr}"
    );
    Err(stderr)
}

fn digest(bytes: &[u8]) -> FileDigest {
    FileDigest {
        size: u64::try_from(bytes.len()).unwrap(),
        sha256: hex::encode(Sha256::digest(bytes)),
    }
}

/// A build's outputs: three nodes in a directory whose name needs percent-encoding, one raw
/// image and two zstd-compressed ones with a bmap.
struct Build {
    _dir: tempfile::TempDir,
    out: PathBuf,
    entries: Vec<ImageEntry>,
    files: Vec<NodeFiles>,
}

/// What one entry should describe.
struct NodeFiles {
    /// The file Imager reads.
    image: PathBuf,
    /// sha256 of its bytes.
    download_sha256: String,
    /// sha256 of the uncompressed image.
    extract_sha256: String,
    bmap: Option<PathBuf>,
}

/// A way to break a manifest.
type Breaker = fn(&mut serde_json::Value);

fn build() -> Build {
    let dir = crate::support::tmp();
    let out = dir.path().join("out dir #1 (ü)");
    fs::create_dir(&out).unwrap();
    let mut entries = Vec::new();
    let mut files = Vec::new();
    for (i, stem) in ["node1", "node 2", "node%3+x"].into_iter().enumerate() {
        let raw: Vec<u8> = (0..70_000u32)
            .map(|n| u8::try_from((n * 7 + u32::try_from(i).unwrap()) % 251).unwrap())
            .collect();
        let extract = digest(&raw);
        let (image, download, bmap) = if i == 0 {
            let image = out.join(format!("{stem}.img"));
            fs::write(&image, &raw).unwrap();
            (image, digest(&raw), None)
        } else {
            let image = out.join(format!("{stem}.img.zst"));
            let compressed = zstd::encode_all(raw.as_slice(), 3).unwrap();
            fs::write(&image, &compressed).unwrap();
            let bmap = out.join(format!("{stem}.img.bmap"));
            fs::write(&bmap, "<bmap/>\n").unwrap();
            (image, digest(&compressed), Some(bmap))
        };
        let mut entry = ImageEntry::customised(
            format!("cluster {stem}"),
            file_uri(&image).unwrap(),
            download.clone(),
            extract.clone(),
            release_date(1_776_038_400),
        );
        if let Some(bmap) = &bmap {
            entry = entry.with_bmap(file_uri(bmap).unwrap());
        }
        entries.push(entry);
        files.push(NodeFiles {
            image,
            download_sha256: download.sha256,
            extract_sha256: extract.sha256,
            bmap,
        });
    }
    Build {
        _dir: dir,
        out,
        entries,
        files,
    }
}

fn write(out: &Path, stem: &str, value: &impl serde::Serialize) -> PathBuf {
    let path = out.join(Manifest::file_name(stem));
    fs::write(&path, serde_json::to_string_pretty(value).unwrap()).unwrap();
    path
}

/// The published schema with `imager.devices` added (an array of `{name, description, icon,
/// tags, matching_type}`), the one key Imager reads there that the schema predates.
pub(crate) fn schema_with_imager_devices(out: &Path) -> PathBuf {
    let mut schema: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(schema_path()).unwrap()).unwrap();
    schema["properties"]["imager"]["properties"]["devices"] = serde_json::json!({
        "type": "array",
        "items": {
            "type": "object",
            "required": ["name", "tags"],
            "properties": {
                "name": {"type": "string"},
                "description": {"type": "string"},
                "icon": {"type": "string"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "matching_type": {"enum": ["exclusive", "inclusive"]}
            }
        }
    });
    write(out, "schema-with-devices", &schema)
}

#[test]
fn manifest_without_devices_passes_the_published_schema() {
    let b = build();
    let m = manifest(&b.entries, &[]);
    let path = b.out.join("x.rpi-imager-manifest");
    fs::write(&path, m.to_json()).unwrap();
    validate(&path, &schema_path()).unwrap_or_else(|e| panic!("rejected:\n{e}"));
}

#[test]
fn manifest_with_devices_passes_the_schema_plus_imager_devices() {
    let b = build();
    let m = manifest(&b.entries, &arm64_devices());
    let path = b.out.join("x.rpi-imager-manifest");
    fs::write(&path, m.to_json()).unwrap();
    let schema = schema_with_imager_devices(&b.out);
    validate(&path, &schema).unwrap_or_else(|e| panic!("rejected:\n{e}"));

    // The published schema itself refuses `imager.devices` (additionalProperties: false). If a
    // newer copy of it accepts the key, drop `schema_with_imager_devices` and validate directly.
    let err = validate(&path, &schema_path()).expect_err("the published schema now allows it");
    assert!(err.contains("'devices' was unexpected"), "{err}");
}

#[test]
fn schema_rejects_broken_manifests() {
    let b = build();
    let good: serde_json::Value =
        serde_json::from_str(&manifest(&b.entries, &[]).to_json()).unwrap();
    let cases: [(&str, Breaker); 4] = [
        ("missing extract_sha256", |v| {
            v["os_list"][1]
                .as_object_mut()
                .unwrap()
                .remove("extract_sha256");
        }),
        ("extract_size as a string", |v| {
            v["os_list"][0]["extract_size"] = "70000".into();
        }),
        ("no os_list", |v| {
            v.as_object_mut().unwrap().remove("os_list");
        }),
        ("unknown top-level key", |v| {
            v["piimage"] = true.into();
        }),
    ];
    for (name, break_it) in cases {
        let mut bad = good.clone();
        break_it(&mut bad);
        let path = write(&b.out, "bad", &bad);
        assert!(
            validate(&path, &schema_path()).is_err(),
            "{name}: the schema accepted it"
        );
    }
}

#[test]
fn manifest_urls_and_checksums_describe_the_files() {
    let b = build();
    let m = manifest(&b.entries, &arm64_devices());
    let path = b.out.join("x.rpi-imager-manifest");
    fs::write(&path, m.to_json()).unwrap();
    let v: serde_json::Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    let os_list = v["os_list"].as_array().unwrap();
    assert_eq!(os_list.len(), b.files.len());

    // Python decodes the URLs: urlparse, then unquote_to_bytes of the path.
    const DECODE: &str = "import sys,urllib.parse as p\n\
                          for u in sys.argv[1:]:\n    \
                              r=p.urlparse(u); assert r.scheme=='file' and r.netloc=='', u\n    \
                              sys.stdout.buffer.write(p.unquote_to_bytes(r.path)+b'\\0')";
    let mut urls: Vec<String> = Vec::new();
    for (e, f) in os_list.iter().zip(&b.files) {
        let NodeFiles {
            image,
            download_sha256,
            extract_sha256,
            bmap,
        } = f;
        assert_eq!(e["init_format"], "none");
        assert_eq!(e["architecture"], "armv8");
        assert_eq!(e["release_date"], "2026-04-13");
        assert_eq!(
            e["devices"],
            serde_json::json!(["pi5-64bit", "pi4-64bit", "pi3-64bit"])
        );
        let data = fs::read(image).unwrap();
        assert_eq!(e["image_download_size"], data.len());
        assert_eq!(e["image_download_sha256"], download_sha256.as_str());
        assert_eq!(
            e["image_download_sha256"],
            hex::encode(Sha256::digest(&data))
        );
        assert_eq!(e["extract_sha256"], extract_sha256.as_str());
        assert_eq!(e["extract_size"], 70_000);

        let url = e["url"].as_str().unwrap();
        assert!(url.starts_with("file:///") && !url.contains(' '), "{url}");
        assert_eq!(path_from_file_uri(url).as_deref(), Some(image.as_path()));
        urls.push(url.to_owned());
        match (bmap, e.get("bmap_url")) {
            (Some(bmap), Some(u)) => {
                let u = u.as_str().unwrap();
                assert_eq!(path_from_file_uri(u).as_deref(), Some(bmap.as_path()));
                urls.push(u.to_owned());
            }
            (None, None) => {}
            (want, got) => panic!("bmap {want:?} but bmap_url {got:?}"),
        }
    }

    let mut args: Vec<&std::ffi::OsStr> = vec!["-c".as_ref(), DECODE.as_ref()];
    args.extend(urls.iter().map(|u| std::ffi::OsStr::new(u.as_str())));
    let out = python(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decoded: Vec<&[u8]> = out
        .stdout
        .split(|&c| c == 0)
        .filter(|s| !s.is_empty())
        .collect();
    let expected: Vec<PathBuf> = b
        .files
        .iter()
        .flat_map(|f| std::iter::once(f.image.clone()).chain(f.bmap.clone()))
        .collect();
    assert_eq!(decoded.len(), expected.len());
    for (got, want) in decoded.iter().zip(&expected) {
        assert_eq!(
            *got,
            want.to_str().unwrap().as_bytes(),
            "{}",
            want.display()
        );
    }
}
