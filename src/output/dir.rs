//! One writer at a time per output directory.
//!
//! `build`, `merge` and `localize` take an exclusive lock on `DIR/.piimage.lock` (an empty
//! file, `flock(2)`) before they look at what `DIR` holds, and keep it until they return. A
//! second piimage writing the same directory is refused at once with a message that says so,
//! instead of sweeping away the first one's partial files or interleaving its records with
//! the first one's. The lock is the kernel's: it goes away with the process however it ends
//! (Ctrl-C, SIGKILL, a crash), so a stale lock file never blocks a later build.
//!
//! The file is removed when the lock is released, so a finished (or failed) command leaves
//! nothing behind. That is safe because a taker checks, once it holds the lock, that the file
//! it locked is still the one at the path (same inode); if a releasing process removed it in
//! between, the taker starts over with the new file.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};

use super::OutputError;

/// The lock file's name in an output directory.
pub const LOCK_FILE: &str = ".piimage.lock";

/// An output directory held for writing.
#[derive(Debug)]
pub struct DirLock {
    file: File,
    path: PathBuf,
    dir: PathBuf,
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // Removed while still held (see the module docs); the lock itself goes with the file.
        let _ = std::fs::remove_file(&self.path);
        let _ = flock(&self.file, FlockOperation::Unlock);
    }
}

fn libc_nofollow() -> i32 {
    // O_NOFOLLOW: a link planted at the lock file's name is not followed.
    i32::try_from(rustix::fs::OFlags::NOFOLLOW.bits()).unwrap_or(0)
}

impl DirLock {
    /// Creates `dir` if needed and locks it for `what` (`build`, `merge`, ...).
    ///
    /// # Errors
    /// Another process holds the lock ([`OutputError::Busy`]), or the directory or its lock
    /// file cannot be created.
    pub fn acquire(dir: &Path, what: &str) -> Result<Self, OutputError> {
        std::fs::create_dir_all(dir).map_err(|e| OutputError::file("creating", dir, e))?;
        let path = dir.join(LOCK_FILE);
        for _ in 0..16 {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .mode(0o600)
                .custom_flags(libc_nofollow())
                .open(&path)
                .map_err(|e| OutputError::file("opening the lock file", &path, e))?;
            match flock(&file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {}
                Err(rustix::io::Errno::WOULDBLOCK) => {
                    return Err(OutputError::Busy {
                        dir: dir.to_owned(),
                        what: what.to_owned(),
                    });
                }
                Err(e) => return Err(OutputError::file("locking", &path, e.into())),
            }
            let held = file
                .metadata()
                .map_err(|e| OutputError::file("examining", &path, e))?;
            match std::fs::symlink_metadata(&path) {
                Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => {
                    return Ok(Self {
                        file,
                        path,
                        dir: dir.to_owned(),
                    });
                }
                // Removed (or replaced) by the holder that just released it: start over.
                _ => {}
            }
        }
        Err(OutputError::Busy {
            dir: dir.to_owned(),
            what: what.to_owned(),
        })
    }

    /// The locked directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_until_the_first_is_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("out");
        let first = DirLock::acquire(&dir, "build").unwrap();
        assert_eq!(first.dir(), dir);
        let err = DirLock::acquire(&dir, "merge").unwrap_err().to_string();
        assert!(err.contains("another piimage"), "{err}");
        assert!(err.contains(&dir.display().to_string()), "{err}");
        drop(first);
        assert!(
            !dir.join(LOCK_FILE).exists(),
            "released locks leave no file"
        );
        let again = DirLock::acquire(&dir, "build").unwrap();
        assert!(dir.join(LOCK_FILE).exists());
        drop(again);
    }
}
