//! Noticing that a file changed while piimage was reading it.
//!
//! A build reads its base image many times over (once per node, in pieces, and again when a
//! raw output is cloned from it). If another program writes the file meanwhile, the nodes are
//! built from a mixture of two images: their root filesystems can carry a journal or bitmaps
//! of one and inodes of the other, and the sha256 of each output no longer describes what was
//! meant. Copying the base first would cost a whole image per build; instead a [`FilePin`]
//! remembers the file's identity and change stamps when it is opened, and [`FilePin::check`]
//! compares them again before anything is committed.
//!
//! What is compared: device and inode (of the open file and of the path, so a file renamed
//! over the path is noticed too), size, mtime, and ctime. The kernel sets ctime on every write
//! and metadata change and no unprivileged call can set it back, so a write that restores the
//! old mtime (`touch -d`) is still seen. The check is done on metadata only and costs
//! microseconds.

use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

/// The identity and change stamps of a file at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(m: &Metadata) -> Self {
        Self {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }

    /// What differs from `earlier`, in words.
    fn differences(&self, earlier: &Self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if (self.dev, self.ino) != (earlier.dev, earlier.ino) {
            v.push("it is another file now (replaced or renamed over)");
        }
        if self.size != earlier.size {
            v.push("its size changed");
        }
        if self.mtime != earlier.mtime {
            v.push("its modification time changed");
        }
        if self.ctime != earlier.ctime && v.is_empty() {
            v.push("it was written to or its metadata changed (ctime)");
        }
        v
    }
}

/// A file whose content must not change while it is in use.
#[derive(Debug)]
pub struct FilePin {
    path: PathBuf,
    file: File,
    stamp: Stamp,
}

/// The pinned file changed.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    /// Its stamps differ.
    #[error(
        "{}: the file changed while piimage was reading it ({}); nothing was written under a \
         final name. Do not modify or replace a base image during a build",
        path.display(), what.join(", ")
    )]
    Changed {
        /// The file.
        path: PathBuf,
        /// What changed.
        what: Vec<&'static str>,
    },
    /// It could not be examined.
    #[error("{}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

impl FilePin {
    /// Pins `file`, opened from `path`: its stamps now are the reference.
    ///
    /// # Errors
    /// The file cannot be examined.
    pub fn new(path: &Path, file: &File) -> Result<Self, PinError> {
        let io = |source| PinError::Io {
            path: path.to_owned(),
            source,
        };
        let file = file.try_clone().map_err(io)?;
        let stamp = Stamp::of(&file.metadata().map_err(io)?);
        Ok(Self {
            path: path.to_owned(),
            file,
            stamp,
        })
    }

    /// Opens and pins `path`.
    ///
    /// # Errors
    /// The file cannot be opened or examined.
    pub fn open(path: &Path) -> Result<Self, PinError> {
        let file = File::open(path).map_err(|source| PinError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::new(path, &file)
    }

    /// The pinned path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks that neither the open file nor the file now at the path differs from when it
    /// was pinned.
    ///
    /// # Errors
    /// [`PinError::Changed`] naming what changed; [`PinError::Io`] if the path is gone.
    pub fn check(&self) -> Result<(), PinError> {
        let io = |source| PinError::Io {
            path: self.path.clone(),
            source,
        };
        let now = Stamp::of(&self.file.metadata().map_err(io)?);
        let mut what = now.differences(&self.stamp);
        match std::fs::metadata(&self.path) {
            Ok(m) => {
                let at_path = Stamp::of(&m);
                if (at_path.dev, at_path.ino) != (self.stamp.dev, self.stamp.ino) {
                    what.push("another file now stands at its path (replaced or renamed over)");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                what.push("it was removed from its path");
            }
            Err(e) => return Err(io(e)),
        }
        what.dedup();
        if what.is_empty() {
            Ok(())
        } else {
            Err(PinError::Changed {
                path: self.path.clone(),
                what,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::os::unix::fs::FileExt as _;

    use super::*;

    fn file_with(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("base.img");
        std::fs::write(&path, bytes).unwrap();
        (dir, path)
    }

    #[test]
    fn unchanged_file_passes() {
        let (_d, path) = file_with(b"0123456789");
        let pin = FilePin::open(&path).unwrap();
        // Reading does not change anything.
        let _ = std::fs::read(&path).unwrap();
        pin.check().unwrap();
    }

    #[test]
    fn a_write_in_place_is_seen_even_with_the_old_mtime_restored() {
        let (_d, path) = file_with(b"0123456789");
        let before = std::fs::metadata(&path).unwrap().modified().unwrap();
        let pin = FilePin::open(&path).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(b"X", 3).unwrap();
        // Put the mtime back as `touch -d` would; ctime still moves.
        f.set_modified(before).unwrap();
        drop(f);
        let err = pin.check().unwrap_err().to_string();
        assert!(err.contains("base.img"), "{err}");
        assert!(
            err.contains("changed while piimage was reading it"),
            "{err}"
        );
        assert!(err.contains("ctime"), "{err}");
    }

    #[test]
    fn truncation_and_replacement_are_seen() {
        let (_d, path) = file_with(b"0123456789");
        let pin = FilePin::open(&path).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(4)
            .unwrap();
        assert!(
            pin.check()
                .unwrap_err()
                .to_string()
                .contains("size changed")
        );

        let (d, path) = file_with(b"0123456789");
        let pin = FilePin::open(&path).unwrap();
        let other = d.path().join("other");
        let mut f = File::create(&other).unwrap();
        f.write_all(b"0123456789").unwrap();
        std::fs::rename(&other, &path).unwrap();
        let err = pin.check().unwrap_err().to_string();
        assert!(err.contains("another file now stands at its path"), "{err}");

        std::fs::remove_file(&path).unwrap();
        let err = pin.check().unwrap_err().to_string();
        assert!(err.contains("removed from its path"), "{err}");
    }
}
