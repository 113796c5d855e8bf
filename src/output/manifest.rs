//! Raspberry Pi Imager manifest: a `NAME.rpi-imager-manifest` listing a build's node images.
//!
//! The file is Imager's repository JSON (`{"imager": {...}, "os_list": [...]}`; see
//! `image-formats.md` §2.8 and `doc/json-schema/os-list-schema.json` in
//! `raspberrypi/rpi-imager`). Users open it with `rpi-imager --repo FILE`, by double-clicking
//! it, or under App Options → Content Repository.
//!
//! Each [`ImageEntry`] is an image that piimage has already customised, so it carries
//! `"init_format": "none"`: Imager 2.x then offers no customisation of its own (Imager 1.x
//! ignores the value and still assumes `systemd`).
//!
//! # URLs
//! Imager takes each `url` as it is: it does not resolve a relative reference against the
//! manifest's own location (`src/oslistmodel.cpp` copies the string, and Imager warns that a
//! local `--repo` file needs absolute URLs). A manifest that must survive being moved therefore
//! cannot hold `file://` URLs of the build machine. [`image_url`] makes either
//! - `BASE_URL/NAME` with a [`BaseUrl`] (`output.base_url`, `--base-url`): for a manifest served
//!   over HTTP(S) next to its images, or a fixed `file:///` location; or
//! - the bare, percent-encoded file name: a relative reference (RFC 3986) that resolves to the
//!   image next to the manifest, for tools that resolve it, and that `piimage localize` turns
//!   into an absolute `file://` URL at the destination ([`file_uri`]).
//!
//! `file://` URIs are built from an absolute path the way Python's `pathlib.Path.as_uri()`
//! builds them (Imager's own `create_local_json.py` uses that): every byte except ASCII letters,
//! digits, `-._~` and `/` is percent-encoded.
//!
//! # `imager.devices` and the published schema
//! Imager builds its device chooser from `imager.devices` (`src/hwlistmodel.cpp`) and shows an
//! entry for a device only when they share a tag, so a self-contained manifest should list its
//! devices ([`arm64_devices`]). The published schema predates that key: in the copy kept in
//! `tests/fixtures/rpi-imager/` (rpi-imager commit `71754dd`), `imager` allows only
//! `latest_version`, `url`, `default_os`, `embedded_default_os` and
//! `embedded_default_destination`, with `additionalProperties: false`. piimage writes
//! `imager.devices` anyway because Imager needs it; call [`manifest`] with no devices to get a
//! file without `imager`, which the schema accepts as it is. The OS entries satisfy the schema
//! either way (it allows additional properties there, which is where `devices`, `init_format`,
//! `architecture`, `image_download_sha256` and `bmap_url` go).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The manifest's file-name extension (without the dot).
pub const MANIFEST_EXTENSION: &str = "rpi-imager-manifest";

/// `init_format` for an image that must not be customised by Imager.
pub const INIT_FORMAT_NONE: &str = "none";

/// `architecture` of a 64-bit Arm image.
pub const ARCHITECTURE_ARMV8: &str = "armv8";

/// Device tags of the boards that run a 64-bit Raspberry Pi OS or Ubuntu image.
pub const ARM64_TAGS: [&str; 3] = ["pi5-64bit", "pi4-64bit", "pi3-64bit"];

/// Why an entry could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// A `file://` URI needs an absolute path.
    #[error("a manifest URL needs an absolute path, not {0:?}")]
    RelativePath(PathBuf),
}

/// The whole manifest. Fields serialise in declaration order, so the output is stable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Metadata for Imager itself; absent when there are no devices to list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imager: Option<Imager>,
    /// The images.
    pub os_list: Vec<ImageEntry>,
}

/// The manifest's `imager` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Imager {
    /// The boards offered in Imager's device chooser.
    pub devices: Vec<Device>,
}

/// How a device matches entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchingType {
    /// Show only entries that share a tag with the device.
    Exclusive,
    /// Also show entries without `devices`.
    Inclusive,
}

/// One board in `imager.devices`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// Name in the chooser, e.g. `Raspberry Pi 5`.
    pub name: String,
    /// One line under the name.
    pub description: String,
    /// Icon URL; empty for none.
    pub icon: String,
    /// Tags matched against each entry's `devices`.
    pub tags: Vec<String>,
    /// How entries are matched.
    pub matching_type: MatchingType,
}

/// One image in `os_list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageEntry {
    /// Name in Imager's OS list.
    pub name: String,
    /// One line under the name.
    pub description: String,
    /// Icon URL; empty for none.
    pub icon: String,
    /// `file://` URI of the image file Imager reads (compressed or raw).
    pub url: String,
    /// Size of the uncompressed image in bytes.
    pub extract_size: u64,
    /// Lowercase hex sha256 of the uncompressed image. Imager aborts a write that does not
    /// match it.
    pub extract_sha256: String,
    /// Size of the file at `url` in bytes.
    pub image_download_size: u64,
    /// Lowercase hex sha256 of the file at `url`.
    pub image_download_sha256: String,
    /// `YYYY-MM-DD` ([`release_date`]).
    pub release_date: String,
    /// Always [`INIT_FORMAT_NONE`] for piimage's images.
    pub init_format: String,
    /// Device tags ([`ARM64_TAGS`]).
    pub devices: Vec<String>,
    /// [`ARCHITECTURE_ARMV8`].
    pub architecture: String,
    /// `file://` URI of the image's `.bmap` (used by fastboot flashing only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bmap_url: Option<String>,
}

/// Size and lowercase hex sha256 of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDigest {
    /// Size in bytes.
    pub size: u64,
    /// Lowercase hex sha256.
    pub sha256: String,
}

impl ImageEntry {
    /// An entry for the customised arm64 image at `url` (the file Imager reads, see
    /// [`image_url`]), whose own size and sha256 are `download` and whose uncompressed size and
    /// sha256 are `extract` (the same as `download` for a raw `.img`). The description is
    /// generic, the icon empty, the devices [`ARM64_TAGS`]; change the public fields to taste.
    #[must_use]
    pub fn customised(
        name: impl Into<String>,
        url: String,
        download: FileDigest,
        extract: FileDigest,
        release_date: String,
    ) -> Self {
        Self {
            name: name.into(),
            description: "Customised by piimage".to_owned(),
            icon: String::new(),
            url,
            extract_size: extract.size,
            extract_sha256: extract.sha256,
            image_download_size: download.size,
            image_download_sha256: download.sha256,
            release_date,
            init_format: INIT_FORMAT_NONE.to_owned(),
            devices: ARM64_TAGS.iter().map(|&t| t.to_owned()).collect(),
            architecture: ARCHITECTURE_ARMV8.to_owned(),
            bmap_url: None,
        }
    }

    /// The entry with `bmap_url` set to `url`.
    #[must_use]
    pub fn with_bmap(mut self, url: String) -> Self {
        self.bmap_url = Some(url);
        self
    }
}

/// Where a served manifest's images are: an `http://`, `https://` or `file:///` URL of the
/// directory holding them. Displayed with one trailing `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl(String);

impl std::str::FromStr for BaseUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let rest = ["https://", "http://", "file:///"]
            .iter()
            .find_map(|p| s.strip_prefix(p).map(|r| (p, r)));
        let Some((scheme, rest)) = rest else {
            return Err(format!(
                "{s:?}: a base URL starts with https://, http:// or file:///"
            ));
        };
        if let Some(c) = s
            .chars()
            .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#' | '"' | '\\'))
        {
            return Err(format!(
                "{s:?}: {c:?} cannot appear in a base URL (percent-encode it)"
            ));
        }
        let rest = rest.trim_end_matches('/');
        if rest.is_empty() && *scheme != "file:///" {
            return Err(format!("{s:?}: no host"));
        }
        if rest.is_empty() {
            Ok(Self((*scheme).to_owned()))
        } else {
            Ok(Self(format!("{scheme}{rest}/")))
        }
    }
}

impl std::fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The `url` of the file `file_name` of the output directory: `BASE/NAME` with a base URL, else
/// the percent-encoded name alone (a relative reference; see the module docs).
#[must_use]
pub fn image_url(base: Option<&BaseUrl>, file_name: &str) -> String {
    let name = percent_encode(file_name.as_bytes(), b"-._~");
    match base {
        Some(b) => format!("{b}{name}"),
        None => name,
    }
}

/// The default devices for arm64 images: Raspberry Pi 5, 4 and 3, each matching only its own
/// 64-bit tag.
pub fn arm64_devices() -> Vec<Device> {
    [
        ("Raspberry Pi 5", "Pi 5 / 500 / CM5", "pi5-64bit"),
        ("Raspberry Pi 4", "Pi 4 / 400 / CM4", "pi4-64bit"),
        ("Raspberry Pi 3", "Pi 3 / 3+ / CM3", "pi3-64bit"),
    ]
    .into_iter()
    .map(|(name, description, tag)| Device {
        name: name.to_owned(),
        description: description.to_owned(),
        icon: String::new(),
        tags: vec![tag.to_owned()],
        matching_type: MatchingType::Exclusive,
    })
    .collect()
}

/// The manifest listing `entries`, with `imager.devices` = `devices` (no `imager` object at all
/// when `devices` is empty; see the module docs).
pub fn manifest(entries: &[ImageEntry], devices: &[Device]) -> Manifest {
    Manifest {
        imager: (!devices.is_empty()).then(|| Imager {
            devices: devices.to_vec(),
        }),
        os_list: entries.to_vec(),
    }
}

impl Manifest {
    /// Pretty JSON (two-space indent, fields in declaration order) ending in a newline.
    ///
    /// # Panics
    /// Never: every field serialises (no maps with non-string keys, no floats).
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("a Manifest always serialises");
        text.push('\n');
        text
    }

    /// The file name of a manifest whose stem is `stem`: `STEM.rpi-imager-manifest`.
    pub fn file_name(stem: &str) -> String {
        format!("{stem}.{MANIFEST_EXTENSION}")
    }
}

/// The `file://` URI of the absolute path `path`, as Python's `pathlib.Path.as_uri()` writes it:
/// each byte other than ASCII letters, digits, `-._~` and `/` becomes `%XX` (uppercase hex).
///
/// # Errors
/// `path` is relative.
pub fn file_uri(path: &Path) -> Result<String, ManifestError> {
    if !path.is_absolute() {
        return Err(ManifestError::RelativePath(path.to_owned()));
    }
    let mut uri = String::from("file://");
    uri.push_str(&percent_encode(&path_bytes(path), b"-._~/"));
    Ok(uri)
}

/// `bytes` with each byte other than ASCII letters, digits and `keep` as `%XX` (uppercase hex).
fn percent_encode(bytes: &[u8], keep: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || keep.contains(&b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
    out
}

/// The absolute path a `file:///...` URI names (percent-decoded); `None` if `uri` is not of
/// that form or holds a malformed `%` escape.
pub fn path_from_file_uri(uri: &str) -> Option<PathBuf> {
    let encoded = uri.strip_prefix("file://")?.as_bytes();
    if encoded.first() != Some(&b'/') {
        return None;
    }
    let mut bytes = Vec::with_capacity(encoded.len());
    let mut i = 0;
    while let Some(&b) = encoded.get(i) {
        if b == b'%' {
            let hex = encoded.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            bytes.push(b);
            i += 1;
        }
    }
    path_from_bytes(bytes)
}

#[cfg(unix)]
fn path_bytes(path: &Path) -> std::borrow::Cow<'_, [u8]> {
    use std::os::unix::ffi::OsStrExt;
    std::borrow::Cow::Borrowed(path.as_os_str().as_bytes())
}

#[cfg(not(unix))]
fn path_bytes(path: &Path) -> std::borrow::Cow<'_, [u8]> {
    std::borrow::Cow::Owned(path.to_string_lossy().replace('\\', "/").into_bytes())
}

#[cfg(unix)]
fn path_from_bytes(bytes: Vec<u8>) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    Some(PathBuf::from(std::ffi::OsString::from_vec(bytes)))
}

#[cfg(not(unix))]
fn path_from_bytes(bytes: Vec<u8>) -> Option<PathBuf> {
    String::from_utf8(bytes).ok().map(PathBuf::from)
}

/// The UTC date `YYYY-MM-DD` of the Unix time `unix` (seconds), for `release_date`.
pub fn release_date(unix: u64) -> String {
    let (year, month, day) = crate::civil::civil_from_days(unix / 86_400);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str) -> ImageEntry {
        ImageEntry::customised(
            "node1",
            file_uri(Path::new(path)).unwrap(),
            FileDigest {
                size: 10,
                sha256: "a".repeat(64),
            },
            FileDigest {
                size: 20,
                sha256: "b".repeat(64),
            },
            release_date(1_776_038_400),
        )
    }

    #[test]
    fn release_dates() {
        // Expected values from Python's datetime.fromtimestamp(t, timezone.utc).date().
        let cases = [
            ("epoch", 0, "1970-01-01"),
            ("last second of day 0", 86_399, "1970-01-01"),
            ("day 1", 86_400, "1970-01-02"),
            ("leap day 2000", 951_782_400, "2000-02-29"),
            ("end of leap day 2000", 951_868_799, "2000-02-29"),
            ("end of leap day 2024", 1_709_251_199, "2024-02-29"),
            ("image-formats example", 1_776_038_400, "2026-04-13"),
            ("2100 is not leap", 4_107_542_400, "2100-03-01"),
            ("year 9999", 253_402_300_799, "9999-12-31"),
            ("1234567890", 1_234_567_890, "2009-02-13"),
        ];
        for (name, t, want) in cases {
            assert_eq!(release_date(t), want, "{name}");
        }
        // Must not overflow or panic.
        assert!(!release_date(u64::MAX).is_empty());
    }

    #[test]
    fn file_uris_match_pathlib_as_uri() {
        // Expected values from Python's pathlib.PurePosixPath(p).as_uri().
        let cases = [
            ("plain", "/out/node1.img.xz", "file:///out/node1.img.xz"),
            ("space", "/out/node 1.img.xz", "file:///out/node%201.img.xz"),
            (
                "utf-8 and reserved",
                "/a/ü#?%.img",
                "file:///a/%C3%BC%23%3F%25.img",
            ),
            (
                "sub-delims",
                "/x/a+b=c;d@e:f,g&h$i!j'k(l)m*n~o_p.q-r",
                "file:///x/a%2Bb%3Dc%3Bd%40e%3Af%2Cg%26h%24i%21j%27k%28l%29m%2An~o_p.q-r",
            ),
            (
                "unsafe",
                "/t/[x]{y}|z^`\"<>\\",
                "file:///t/%5Bx%5D%7By%7D%7Cz%5E%60%22%3C%3E%5C",
            ),
        ];
        for (name, path, want) in cases {
            let uri = file_uri(Path::new(path)).unwrap();
            assert_eq!(uri, want, "{name}");
            assert_eq!(path_from_file_uri(&uri).unwrap(), Path::new(path), "{name}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_paths_round_trip() {
        use std::os::unix::ffi::OsStrExt;
        let path = Path::new(std::ffi::OsStr::from_bytes(b"/x/\xff.img"));
        let uri = file_uri(path).unwrap();
        assert_eq!(uri, "file:///x/%FF.img");
        assert_eq!(path_from_file_uri(&uri).unwrap(), path);
    }

    #[test]
    fn relative_paths_and_bad_uris_are_refused() {
        assert_eq!(
            file_uri(Path::new("out/x.img")),
            Err(ManifestError::RelativePath(PathBuf::from("out/x.img")))
        );
        for bad in [
            "http:///x",
            "file://host/x",
            "file:///x%2",
            "file:///x%zz",
            "file:///x%",
        ] {
            assert_eq!(path_from_file_uri(bad), None, "{bad}");
        }
    }

    #[test]
    fn entry_defaults() {
        let e = entry("/out/node 1.img.zst")
            .with_bmap(file_uri(Path::new("/out/node 1.img.bmap")).unwrap());
        assert_eq!(e.url, "file:///out/node%201.img.zst");
        assert_eq!(e.bmap_url.as_deref(), Some("file:///out/node%201.img.bmap"));
        assert_eq!(e.init_format, "none");
        assert_eq!(e.architecture, "armv8");
        assert_eq!(e.devices, ["pi5-64bit", "pi4-64bit", "pi3-64bit"]);
        assert_eq!((e.image_download_size, e.extract_size), (10, 20));
        assert_eq!(e.image_download_sha256, "a".repeat(64));
        assert_eq!(e.extract_sha256, "b".repeat(64));
        assert_eq!(e.release_date, "2026-04-13");
    }

    #[test]
    fn image_urls_with_and_without_a_base() {
        let base = |s: &str| s.parse::<BaseUrl>();
        assert_eq!(image_url(None, "pico-w 1.img.xz"), "pico-w%201.img.xz");
        let cases = [
            (
                "https",
                "https://dl.example/pico/v1",
                "https://dl.example/pico/v1/a.img.xz",
            ),
            ("trailing slashes", "http://h/x//", "http://h/x/a.img.xz"),
            ("file", "file:///srv/pico", "file:///srv/pico/a.img.xz"),
            ("file root", "file:///", "file:///a.img.xz"),
        ];
        for (name, b, want) in cases {
            assert_eq!(
                image_url(Some(&base(b).unwrap()), "a.img.xz"),
                want,
                "{name}"
            );
        }
        for bad in [
            "ftp://h/x",
            "https://",
            "/srv/pico",
            "https://h/a b",
            "https://h/?x",
            "file://h/x",
        ] {
            assert!(base(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_entry_tag_has_a_device() {
        let devices = arm64_devices();
        let tags: Vec<&str> = devices
            .iter()
            .flat_map(|d| d.tags.iter().map(String::as_str))
            .collect();
        for tag in ARM64_TAGS {
            assert!(tags.contains(&tag), "{tag}");
        }
        assert!(
            devices
                .iter()
                .all(|d| d.matching_type == MatchingType::Exclusive)
        );
    }

    #[test]
    fn json_shape_and_field_order() {
        let m = manifest(&[entry("/o/a.img.xz")], &arm64_devices());
        let text = m.to_json();
        assert!(text.ends_with("}\n"));
        let keys = [
            "\"name\"",
            "\"description\"",
            "\"icon\"",
            "\"url\"",
            "\"extract_size\"",
            "\"extract_sha256\"",
            "\"image_download_size\"",
            "\"image_download_sha256\"",
            "\"release_date\"",
            "\"init_format\"",
            "\"devices\"",
            "\"architecture\"",
        ];
        let os_list = text.find("\"os_list\"").unwrap();
        let mut at = os_list;
        for key in keys {
            let found = text[at..].find(key).unwrap_or_else(|| panic!("{key}"));
            at += found;
        }
        assert!(text.find("\"imager\"").unwrap() < os_list);
        assert!(!text.contains("bmap_url"), "None is omitted");
        assert!(text.contains("\"matching_type\": \"exclusive\""));
        // Deterministic, and it reads back.
        assert_eq!(text, m.to_json());
        assert_eq!(serde_json::from_str::<Manifest>(&text).unwrap(), m);
    }

    #[test]
    fn no_devices_no_imager_object() {
        let m = manifest(&[entry("/o/a.img")], &[]);
        assert_eq!(m.imager, None);
        let v: serde_json::Value = serde_json::from_str(&m.to_json()).unwrap();
        assert!(v.get("imager").is_none());
        assert_eq!(v["os_list"][0]["init_format"], "none");
        assert_eq!(Manifest::file_name("x"), "x.rpi-imager-manifest");
    }
}
