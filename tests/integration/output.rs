//! Output stage (`piimage::output`): every format checked with the stock tools (`zstd`, `xz`,
//! `gzip`, `sha256sum`, `bmaptool`), the chunk cache against a one-pass compressor,
//! reproducibility, bmaps against e2fsprogs and dosfstools, and interrupted or failed builds.
//!
//! Most tests use a small synthetic image (fast); the bmap tests use the fixtures.

mod bmap;
mod interrupt;
mod roundtrip;
mod store;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use piimage::disk::{CowDisk, FileStorage, Storage};
use piimage::output::{BaseCache, CacheConfig};

/// A small deterministic generator (xorshift64*), so failures reproduce.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// Length of the synthetic base: not a multiple of 4 KiB, so tails are exercised.
pub const SYNTH_LEN: u64 = (24 << 20) + 3 * 4096 + 1234;
/// Chunk size used with the synthetic base (24 chunks and a short one).
pub const SYNTH_CHUNK: u64 = 1 << 20;

/// Writes the synthetic base at `path`: random, zero, repetitive and sparse regions.
/// Every image format, with the image sha256, not synced.
pub fn spec_all(bmap: bool) -> piimage::output::NodeOutputSpec {
    use piimage::output::ImageFormat;
    piimage::output::NodeOutputSpec {
        formats: vec![
            ImageFormat::Raw,
            ImageFormat::Zstd,
            ImageFormat::Xz,
            ImageFormat::Gzip,
        ],
        bmap,
        image_sha256: true,
        sync: false,
    }
}

pub fn write_synthetic_base(path: &Path) {
    let len = usize::try_from(SYNTH_LEN).unwrap();
    let mut img = vec![0u8; len];
    let mut rng = Rng::new(7);
    let mib = 1 << 20;
    rng.fill(&mut img[..mib]);
    img[510] = 0x55;
    img[511] = 0xAA;
    rng.fill(&mut img[4 * mib..8 * mib]);
    let text = b"Raspberry Pi cluster node image, repeated text for the compressors. ";
    for (i, b) in img[8 * mib..12 * mib].iter_mut().enumerate() {
        *b = text[i % text.len()];
    }
    for _ in 0..40 {
        let at = usize::try_from(12 * (1 << 20) + rng.below(12 << 20)).unwrap() & !4095;
        rng.fill(&mut img[at..at + 4096]);
    }
    rng.fill(&mut img[len - 5000..]);
    std::fs::write(path, img).unwrap();
}

/// Writes a node's changes (seeded by `seed`) through `disk`: the disk id, a partial block,
/// writes straddling a chunk boundary and in zero regions, zeros over random data, random
/// 4 KiB blocks, and the image's short last block.
pub fn write_overlay<B: Storage>(disk: &CowDisk<B>, seed: u64) {
    let mut rng = Rng::new(seed);
    let len = disk.len();
    disk.write_at(440, &rng.next().to_le_bytes()[..4]).unwrap();
    disk.write_at((2 << 20) - 100, &[0xEE; 300]).unwrap();
    disk.write_at(5 << 20, &[0u8; 4096]).unwrap();
    let mut block = [0u8; 4096];
    for _ in 0..6 {
        rng.fill(&mut block);
        let at = rng.below(len - 4096);
        disk.write_at(at, &block).unwrap();
    }
    disk.write_at(len - 10, b"last bytes").unwrap();
}

/// `n` copy-on-write disks over `storage`, disk `i` with the overlay seeded `seed + i`.
pub fn overlaid_disks(storage: &FileStorage, n: u64, seed: u64) -> Vec<CowDisk<&FileStorage>> {
    (0..n)
        .map(|i| {
            let d = CowDisk::new(storage);
            write_overlay(&d, seed + i);
            d
        })
        .collect()
}

/// The node images of `disks`, named `{prefix}{i}`.
pub fn node_images<'a>(
    disks: &'a [CowDisk<&FileStorage>],
    prefix: &str,
) -> Vec<piimage::output::NodeImage<'a>> {
    disks
        .iter()
        .enumerate()
        .map(|(i, d)| piimage::output::NodeImage::from_cow(format!("{prefix}{i}"), d).unwrap())
        .collect()
}

/// The whole content of a storage.
pub fn read_all(s: &dyn Storage) -> Vec<u8> {
    let mut v = vec![0u8; usize::try_from(s.len()).unwrap()];
    s.read_at(0, &mut v).unwrap();
    v
}

/// `TOOL -d -c FILE` (zstd, xz, gzip): the decompressed bytes.
pub fn decompress(tool: &str, file: &Path) -> Vec<u8> {
    let out = Command::new(tool)
        .args(["-d", "-c"])
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    assert!(
        out.status.success(),
        "{tool} -d {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A base cache over the synthetic base at `path` with 1 MiB chunks, cache files in `work`.
/// With `clone_raw`, raw outputs are cloned from the base file; else they are streamed.
pub fn synthetic_cache(path: &Path, work: &Path, clone_raw: bool) -> BaseCache {
    let config = CacheConfig {
        chunk_size: SYNTH_CHUNK,
        ..CacheConfig::new(work)
    };
    if clone_raw {
        BaseCache::open(path, config).unwrap()
    } else {
        let storage = FileStorage::open_read_only(path).unwrap();
        BaseCache::new(Arc::new(storage), config).unwrap()
    }
}

/// The names in `dir`, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A new directory under `parent`.
pub fn subdir(parent: &Path, name: &str) -> PathBuf {
    let d = parent.join(name);
    std::fs::create_dir_all(&d).unwrap();
    d
}
