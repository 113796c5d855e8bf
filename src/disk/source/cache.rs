//! The on-disk cache of downloads and decoded images.
//!
//! Layout (all names derive from the sha256 of the *compressed* file, i.e. of what was downloaded
//! or given):
//!
//! ```text
//! <root>/downloads/<sha256>.<img|xz|gz|zst>   verified downloads, mode 0444
//! <root>/raw/<sha256>.img                      decoded sparse raw images, mode 0444
//! <root>/{downloads,raw}/.partial-*            work in progress (removed on error)
//! <root>/compressed/<sha256>.pieces            compressed base pieces kept across builds,
//!                                              mode 0444 (crate::output::store)
//! ```
//!
//! A file gets its final name only by an atomic rename after it is complete, synced and (for
//! downloads) verified, so the presence of a final name is the proof: cached files are trusted
//! without re-hashing. Re-verifying a multi-GB file on every run would cost more than the
//! download it protects against. `rm -r` the cache directory to start over.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tempfile::NamedTempFile;

use super::SourceError;
use crate::io::hashing::Sha256Digest;
use crate::io::sniff::Compression;

/// The prefix of files being written into the cache.
pub(crate) const PARTIAL_PREFIX: &str = ".partial-";

/// Partial files untouched for this long belong to a process that died; they are removed.
const STALE_PARTIAL_AGE: Duration = Duration::from_secs(60 * 60);

/// The piimage cache directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// `$XDG_CACHE_HOME/piimage`, else `$HOME/.cache/piimage` (a relative or empty
    /// `XDG_CACHE_HOME` is ignored, as the XDG base directory specification says).
    ///
    /// # Errors
    /// [`SourceError::NoCacheDir`] when neither variable is usable.
    pub fn from_env() -> Result<Self, SourceError> {
        Self::from_vars(std::env::var_os("XDG_CACHE_HOME"), std::env::var_os("HOME"))
    }

    fn from_vars(xdg: Option<OsString>, home: Option<OsString>) -> Result<Self, SourceError> {
        if let Some(xdg) = xdg.filter(|x| Path::new(x).is_absolute()) {
            return Ok(Self::at(PathBuf::from(xdg).join("piimage")));
        }
        match home.filter(|h| !h.is_empty()) {
            Some(home) => Ok(Self::at(PathBuf::from(home).join(".cache").join("piimage"))),
            None => Err(SourceError::NoCacheDir),
        }
    }

    /// A cache rooted at `dir` (created when first written to).
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self { root: dir.into() }
    }

    /// The cache's root directory.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of verified downloads.
    #[must_use]
    pub fn downloads_dir(&self) -> PathBuf {
        self.root.join("downloads")
    }

    /// The directory of decoded raw images.
    #[must_use]
    pub fn raw_dir(&self) -> PathBuf {
        self.root.join("raw")
    }

    /// Where the download with this sha256 and format lives.
    #[must_use]
    pub fn download_path(&self, sha256: &Sha256Digest, compression: Compression) -> PathBuf {
        self.downloads_dir()
            .join(format!("{sha256}.{}", compression.extension()))
    }

    /// Where the raw image decoded from the file with this sha256 lives.
    #[must_use]
    pub fn raw_path(&self, sha256: &Sha256Digest) -> PathBuf {
        self.raw_dir().join(format!("{sha256}.img"))
    }

    /// A complete download with this sha256, if the cache holds one.
    #[must_use]
    pub fn find_download(&self, sha256: &Sha256Digest) -> Option<(PathBuf, Compression)> {
        Compression::ALL.into_iter().find_map(|c| {
            let path = self.download_path(sha256, c);
            path.is_file().then_some((path, c))
        })
    }
}

/// Creates `dir` if needed, removes stale partial files in it, and opens a new partial file.
pub(crate) fn new_partial(dir: &Path) -> Result<NamedTempFile, SourceError> {
    fs::create_dir_all(dir).map_err(|e| SourceError::io("creating directory", dir, e))?;
    sweep_stale_partials(dir);
    tempfile::Builder::new()
        .prefix(PARTIAL_PREFIX)
        .tempfile_in(dir)
        .map_err(|e| SourceError::io("creating a temporary file in", dir, e))
}

/// Syncs a complete partial file, makes it read-only (0444) and renames it to `dst`, unless
/// `dst` appeared meanwhile: cache files are named by what they hold, so another piimage
/// finished the same file first, and a build may already be reading it (its base is pinned,
/// `crate::io::pin`): that one is kept and ours is dropped.
pub(crate) fn persist_read_only(tmp: NamedTempFile, dst: &Path) -> Result<(), SourceError> {
    tmp.as_file()
        .sync_all()
        .map_err(|e| SourceError::io("writing", dst, e))?;
    fs::set_permissions(tmp.path(), read_only_permissions(tmp.as_file(), dst)?)
        .map_err(|e| SourceError::io("setting permissions of", dst, e))?;
    match tmp.persist_noclobber(dst) {
        Ok(_) => Ok(()),
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(SourceError::io("renaming into", dst, e.error)),
    }
}

#[cfg(unix)]
fn read_only_permissions(_: &fs::File, _: &Path) -> Result<fs::Permissions, SourceError> {
    use std::os::unix::fs::PermissionsExt as _;
    Ok(fs::Permissions::from_mode(0o444))
}

#[cfg(not(unix))]
fn read_only_permissions(file: &fs::File, dst: &Path) -> Result<fs::Permissions, SourceError> {
    let mut perms = file
        .metadata()
        .map_err(|e| SourceError::io("reading metadata of", dst, e))?
        .permissions();
    perms.set_readonly(true);
    Ok(perms)
}

/// Best effort: removes partial files left by processes that were killed. A live writer
/// touches its file at least every read timeout, far more often than `STALE_PARTIAL_AGE`.
fn sweep_stale_partials(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let stale = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(PARTIAL_PREFIX))
            && entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| now.duration_since(t).unwrap_or_default() > STALE_PARTIAL_AGE);
        if stale {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_vars_table() {
        /// (name, XDG_CACHE_HOME, HOME, expected root)
        type Case = (
            &'static str,
            Option<&'static str>,
            Option<&'static str>,
            Option<&'static str>,
        );
        let cases: &[Case] = &[
            ("xdg wins", Some("/x"), Some("/h"), Some("/x/piimage")),
            ("no xdg", None, Some("/h"), Some("/h/.cache/piimage")),
            ("empty xdg", Some(""), Some("/h"), Some("/h/.cache/piimage")),
            (
                "relative xdg ignored",
                Some("rel"),
                Some("/h"),
                Some("/h/.cache/piimage"),
            ),
            ("xdg only", Some("/x"), None, Some("/x/piimage")),
            ("nothing", None, None, None),
            ("empty home", None, Some(""), None),
        ];
        for (name, xdg, home, want) in cases {
            let got = Cache::from_vars(xdg.map(OsString::from), home.map(OsString::from));
            match (want, got) {
                (Some(w), Ok(c)) => assert_eq!(c.root(), Path::new(w), "case {name}"),
                (None, Err(SourceError::NoCacheDir)) => {}
                (want, got) => panic!("case {name}: want {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn layout() {
        let sha = Sha256Digest::of(b"abc");
        let cache = Cache::at("/c");
        assert_eq!(
            cache.download_path(&sha, Compression::Xz),
            Path::new(&format!("/c/downloads/{sha}.xz"))
        );
        assert_eq!(
            cache.download_path(&sha, Compression::None),
            Path::new(&format!("/c/downloads/{sha}.img"))
        );
        assert_eq!(
            cache.raw_path(&sha),
            Path::new(&format!("/c/raw/{sha}.img"))
        );
    }

    #[cfg(unix)]
    #[test]
    fn persist_keeps_a_file_another_process_finished_first() {
        let dir = tempfile::tempdir().unwrap();
        let dst = dir.path().join("raw-abc.img");
        std::fs::write(&dst, b"first").unwrap();
        let first_ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&dst).unwrap());
        let mut tmp = new_partial(dir.path()).unwrap();
        std::io::Write::write_all(&mut tmp, b"second").unwrap();
        persist_read_only(tmp, &dst).unwrap();
        let m = std::fs::metadata(&dst).unwrap();
        assert_eq!(std::os::unix::fs::MetadataExt::ino(&m), first_ino);
        assert_eq!(std::fs::read(&dst).unwrap(), b"first");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "ours was removed"
        );
    }

    #[test]
    fn persist_makes_read_only_and_find_download_sees_it() {
        use std::io::Write as _;
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path());
        let sha = Sha256Digest::of(b"data");
        assert_eq!(cache.find_download(&sha), None);
        let mut tmp = new_partial(&cache.downloads_dir()).unwrap();
        tmp.write_all(b"data").unwrap();
        let dst = cache.download_path(&sha, Compression::Gzip);
        persist_read_only(tmp, &dst).unwrap();
        let mode = fs::metadata(&dst).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o444);
        assert_eq!(cache.find_download(&sha), Some((dst, Compression::Gzip)));
        let names: Vec<_> = fs::read_dir(cache.downloads_dir()).unwrap().collect();
        assert_eq!(names.len(), 1, "no partial file left: {names:?}");
    }

    #[test]
    fn stale_partials_are_swept_fresh_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let stale = dir.path().join(format!("{PARTIAL_PREFIX}old"));
        let fresh = dir.path().join(format!("{PARTIAL_PREFIX}new"));
        let other = dir.path().join("keep.img");
        for p in [&stale, &fresh, &other] {
            fs::write(p, b"x").unwrap();
        }
        let old = SystemTime::now() - 2 * STALE_PARTIAL_AGE;
        fs::File::options()
            .write(true)
            .open(&stale)
            .unwrap()
            .set_modified(old)
            .unwrap();
        fs::File::options()
            .write(true)
            .open(&other)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let tmp = new_partial(dir.path()).unwrap();
        assert!(!stale.exists());
        assert!(fresh.exists());
        assert!(other.exists());
        drop(tmp);
    }
}
