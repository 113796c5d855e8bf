//! The compressed base kept across builds: one file of pieces per base, format, level and piece
//! size, under the piimage cache (`<cache>/compressed/`).
//!
//! A rebuild of a recipe (or of another recipe on the same base) needs the same compressed base
//! chunks and sub-blocks as the build before; compressing them again is most of a cold build.
//! After a build, each [`ChunkCache`](super::ChunkCache) is written to a *piece file*; the next
//! build loads it ([`ChunkCache::load`](super::ChunkCache::load)) and compresses only what it
//! does not hold.
//!
//! # Key
//! A piece file's name is the sha256 of a text naming everything its bytes depend on: the base
//! (the sha256 of the source file as given, the image length, and the piimage version, which
//! fixes how a grown image is made), the format, the level, the piece size (chunk size or
//! grain) and the codec libraries' versions ([`codec_versions`]). Anything else changes the
//! name, so a file is never used for pieces it does not hold. A local raw base given without a
//! sha256 is never hashed (see [`crate::disk::source`]), so it gets no piece files.
//!
//! # Layout of a piece file (integers little-endian)
//! ```text
//! data       the pieces' bytes, back to back
//! table      one entry of 24 bytes per piece slot: offset u64, length u64 (u64::MAX: absent),
//!            index size u64 (see ChunkEncoder::compress)
//! footer     magic "PIIMGPC1", slot count u64, data length u64, sha256 of all bytes before it
//! ```
//!
//! # Trust
//! Files are written as hidden partial files and renamed to their name only when complete and
//! synced, read-only (0444), never over an existing file: like the decoded bases of
//! [`crate::disk::source::Cache`], the first finished copy is kept, because another build may
//! be reading it. Unlike those, a piece file is validated before use (its length against the
//! footer, every table entry inside the data, the sha256 of the whole file, computed while it is
//! copied in): a bad file is ignored and removed, and the build compresses what it needs. A
//! file is read once per build, so checking it costs one pass over the compressed base.
//!
//! # Bound
//! At most [`MAX_FILES`] piece files are kept; after writing one, the least recently used
//! (by modification time, refreshed when a file is loaded) are removed.

use std::path::{Path, PathBuf};

use crate::io::hashing::Sha256Digest;
use crate::output::ImageFormat;

use super::codec::Levels;

/// The most piece files kept (a base in three formats, chunks and sub-blocks, is 6).
pub const MAX_FILES: usize = 12;

/// The file name extension of piece files.
pub const EXTENSION: &str = "pieces";

/// The versions of the codec libraries the pieces of `format` depend on: the crates pinned in
/// `Cargo.toml` and, for zstd, the linked library's own version.
pub fn codec_versions(format: ImageFormat) -> String {
    match format {
        ImageFormat::Zstd => format!(
            "zstd crate 0.14.4, libzstd {}",
            zstd::zstd_safe::version_string()
        ),
        ImageFormat::Xz => "liblzma crate 0.4.9 (static)".to_owned(),
        ImageFormat::Gzip => "flate2 crate 1.1.11 (zlib-rs)".to_owned(),
        ImageFormat::Raw => String::new(),
    }
}

/// Where the piece files of one base live, and the part of their key that names the base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PieceStore {
    dir: PathBuf,
    base_key: String,
}

impl PieceStore {
    /// Piece files in `dir` for the base whose source file has sha256 `source` and whose image
    /// is `image_len` bytes long.
    pub fn new(dir: impl Into<PathBuf>, source: &Sha256Digest, image_len: u64) -> Self {
        Self {
            dir: dir.into(),
            base_key: format!(
                "base source sha256 {source}; image length {image_len}; piimage {}",
                env!("CARGO_PKG_VERSION")
            ),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The piece file for `format` at `levels` with pieces of `piece_size` bytes.
    pub fn path(&self, format: ImageFormat, levels: &Levels, piece_size: u64) -> PathBuf {
        let level = match format {
            ImageFormat::Zstd => i64::from(levels.zstd),
            ImageFormat::Xz => i64::from(levels.xz),
            ImageFormat::Gzip => i64::from(levels.gzip),
            ImageFormat::Raw => 0,
        };
        let key = format!(
            "piimage piece file v1; {}; format {}; level {level}; piece size {piece_size}; {}",
            self.base_key,
            // The names of the earlier `Compression` type, so caches made before stay valid.
            match format {
                ImageFormat::Raw => "img",
                ImageFormat::Zstd => "zst",
                ImageFormat::Xz => "xz",
                ImageFormat::Gzip => "gz",
            },
            codec_versions(format)
        );
        self.dir
            .join(format!("{}.{EXTENSION}", Sha256Digest::of(key.as_bytes())))
    }

    /// Removes the least recently used piece files beyond [`MAX_FILES`] (best effort).
    pub fn evict(&self) {
        evict(&self.dir, MAX_FILES);
    }
}

/// Removes the oldest (by modification time) `*.pieces` files in `dir` beyond `keep`.
fn evict(dir: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == EXTENSION))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    // Newest first; ties broken by name so the choice is stable.
    files.sort_by(|a, b| b.cmp(a));
    for (_, path) in files.into_iter().skip(keep) {
        let _ = std::fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_change_with_every_input() {
        let a = Sha256Digest::of(b"a");
        let b = Sha256Digest::of(b"b");
        let l = Levels::default();
        let s = PieceStore::new("/c", &a, 1 << 30);
        let p = s.path(ImageFormat::Zstd, &l, 4 << 20);
        assert_eq!(p, s.path(ImageFormat::Zstd, &l, 4 << 20), "stable");
        assert!(p.starts_with("/c"));
        let others = [
            PieceStore::new("/c", &b, 1 << 30).path(ImageFormat::Zstd, &l, 4 << 20),
            PieceStore::new("/c", &a, 2 << 30).path(ImageFormat::Zstd, &l, 4 << 20),
            s.path(ImageFormat::Xz, &l, 4 << 20),
            s.path(ImageFormat::Zstd, &l, 256 << 10),
            s.path(
                ImageFormat::Zstd,
                &Levels {
                    zstd: 19,
                    ..Levels::default()
                },
                4 << 20,
            ),
        ];
        for o in &others {
            assert_ne!(&p, o);
        }
    }

    #[test]
    fn codec_versions_match_cargo_lock() {
        let lock = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock"));
        for (name, version) in [
            ("zstd", "0.14.4"),
            ("liblzma", "0.4.9"),
            ("flate2", "1.1.11"),
        ] {
            assert!(
                lock.contains(&format!("name = \"{name}\"\nversion = \"{version}\"")),
                "Cargo.lock: {name} is no longer {version}: update codec_versions"
            );
        }
        assert!(codec_versions(ImageFormat::Zstd).contains(zstd::zstd_safe::version_string()));
    }

    #[test]
    fn eviction_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        for i in 0..5u64 {
            let p = dir.path().join(format!("{i}.{EXTENSION}"));
            let f = std::fs::File::create(&p).unwrap();
            f.set_modified(t0 + std::time::Duration::from_secs(i))
                .unwrap();
        }
        std::fs::write(dir.path().join("other"), b"x").unwrap();
        evict(dir.path(), 2);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["3.pieces", "4.pieces", "other"]);
    }
}
