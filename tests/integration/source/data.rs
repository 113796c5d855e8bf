//! Test data (an 8 MiB image and its compressed variants) and assertions on the cache.

use std::fs;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use piimage::disk::source::{BaseSpec, ResolvedBase};
use piimage::io::hashing::Sha256Digest;
use piimage::io::sniff::Compression;
use piimage::progress::Progress;

use crate::support::sh;

const MIB: usize = 1 << 20;

/// A deterministic 8 MiB "disk image": an MBR-like first sector, pseudo-random and text
/// regions, and long zero runs (so the decoded file must be sparse).
fn image() -> Vec<u8> {
    let mut img = vec![0u8; 8 * MIB];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut random = |buf: &mut [u8]| {
        for b in buf {
            // xorshift64
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x.to_le_bytes()[0];
        }
    };
    random(&mut img[..446]);
    img[510] = 0x55;
    img[511] = 0xAA;
    random(&mut img[64 * 1024..192 * 1024]);
    let text = b"console=serial0,115200 console=tty1 root=PARTUUID=abcdef01-02 rootwait\n";
    for chunk in img[MIB..MIB + 512 * 1024].chunks_mut(text.len()) {
        chunk.copy_from_slice(&text[..chunk.len()]);
    }
    random(&mut img[5 * MIB..5 * MIB + 128 * 1024]);
    let len = img.len();
    random(&mut img[len - 4096..]);
    img
}

/// A compressed variant of `image.img`, made by a real tool.
pub struct Variant {
    pub name: &'static str,
    pub file: &'static str,
    pub script: &'static str,
    pub compression: Compression,
}

pub const VARIANTS: &[Variant] = &[
    Variant {
        name: "xz multi-block",
        file: "image.img.xz",
        script: "xz -T2 --block-size=1MiB -k -c image.img > image.img.xz",
        compression: Compression::Xz,
    },
    Variant {
        name: "gzip",
        file: "image.img.gz",
        script: "gzip -n -c image.img > image.img.gz",
        compression: Compression::Gzip,
    },
    Variant {
        name: "zstd",
        file: "image.img.zst",
        script: "zstd -q -c image.img > image.img.zst",
        compression: Compression::Zstd,
    },
    Variant {
        // From a pipe the size is unknown, so the frame keeps its 256 MiB window: above the
        // decoder's default limit (2^27), it decodes only with window_log_max raised.
        name: "zstd --long=28 from a pipe",
        file: "image.long.zst",
        script: "cat image.img | zstd -q --long=28 -c > image.long.zst",
        compression: Compression::Zstd,
    },
];

/// A directory holding `image.img` and every compressed variant of it.
pub struct Data {
    dir: tempfile::TempDir,
    /// The raw image.
    pub image: Vec<u8>,
}

impl Data {
    pub fn new() -> Self {
        let dir = crate::support::tmp();
        let image = image();
        fs::write(dir.path().join("image.img"), &image).unwrap();
        for v in VARIANTS {
            sh(dir.path(), v.script);
        }
        Self { dir, image }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn bytes(&self, name: &str) -> Vec<u8> {
        fs::read(self.path(name)).unwrap()
    }
}

/// Records the phases started, e.g. "downloading URL" or "decompressing FILE".
#[derive(Default)]
pub struct Phases(Mutex<Vec<String>>);

impl Progress for Phases {
    fn start(&self, what: &str, _total: Option<u64>) {
        self.0.lock().unwrap().push(what.to_owned());
    }
    fn advance(&self, _n: u64) {}
    fn finish(&self) {}
}

impl Phases {
    pub fn count(&self, prefix: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p.starts_with(prefix))
            .count()
    }
}

/// Every regular file under `dir`, relative to it, sorted.
pub fn files_under(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

pub fn assert_cache_empty(cache: &tempfile::TempDir, case: &str) {
    let files = files_under(cache.path());
    assert!(files.is_empty(), "case {case}: cache not empty: {files:?}");
}

/// The decoded image equals `want`, is read-only, and is sparse.
pub fn assert_good_raw(base: &ResolvedBase, want: &[u8], case: &str) {
    let meta = fs::metadata(&base.raw_path).unwrap();
    assert_eq!(base.size, want.len() as u64, "case {case}: size");
    assert_eq!(meta.len(), want.len() as u64, "case {case}: file length");
    assert!(
        fs::read(&base.raw_path).unwrap() == want,
        "case {case}: content differs"
    );
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o444,
        "case {case}: mode"
    );
    assert!(
        meta.blocks() * 512 < meta.len() / 2,
        "case {case}: not sparse: {} blocks for {} bytes",
        meta.blocks(),
        meta.len()
    );
}

pub fn path_spec(path: PathBuf, sha256: Option<Sha256Digest>) -> BaseSpec {
    BaseSpec::Path { path, sha256 }
}
