//! Output files written under a temporary name and renamed when complete.
//!
//! A [`PartialFile`] for `dir/NAME` is created as `dir/.NAME.partial-XXXXXX` (same directory,
//! so the final rename is atomic on one filesystem). [`PartialFile::commit`] syncs it (when
//! asked) and renames it to `NAME`; dropping it without committing removes it. So on an error
//! nothing stands under the final name, and on a kill (Ctrl-C, SIGKILL, power loss) at most a
//! hidden `.NAME.partial-*` is left, which [`sweep_partials`] removes on the next build.
//!
//! [`commit_all`] renames a node's outputs together: if one rename fails, the outputs already
//! renamed are removed again.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use super::OutputError;

/// The infix that marks partial outputs.
pub const PARTIAL_INFIX: &str = ".partial-";

/// A file being written in its final directory under a temporary name.
#[derive(Debug)]
pub struct PartialFile {
    tmp: NamedTempFile,
    dest: PathBuf,
}

impl PartialFile {
    /// Starts writing `dest`: creates `.NAME.partial-*` beside it (mode 0644).
    ///
    /// # Errors
    /// The directory is missing or not writable.
    pub fn create(dest: &Path) -> Result<Self, OutputError> {
        Self::create_with_mode(dest, 0o644)
    }

    /// Starts writing `dest`, a file that holds secrets (a node image: its host private keys
    /// and password hashes): mode 0600 from its creation on, as `coreos-installer` creates
    /// images; the owner can widen it if the images must be shared.
    ///
    /// # Errors
    /// The directory is missing or not writable.
    pub fn create_private(dest: &Path) -> Result<Self, OutputError> {
        Self::create_with_mode(dest, 0o600)
    }

    fn create_with_mode(dest: &Path, mode: u32) -> Result<Self, OutputError> {
        let dir = parent_dir(dest);
        let name = dest
            .file_name()
            .ok_or_else(|| OutputError::Invalid(format!("{} has no file name", dest.display())))?
            .to_string_lossy()
            .into_owned();
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}{PARTIAL_INFIX}"))
            .permissions(file_permissions(mode))
            .tempfile_in(dir)
            .map_err(|e| OutputError::file("creating a temporary file for", dest, e))?;
        Ok(Self {
            tmp,
            dest: dest.to_owned(),
        })
    }

    /// The open file.
    pub fn file(&self) -> &File {
        self.tmp.as_file()
    }

    /// The open file, mutably.
    pub fn file_mut(&mut self) -> &mut File {
        self.tmp.as_file_mut()
    }

    /// The temporary path.
    pub fn temp_path(&self) -> &Path {
        self.tmp.path()
    }

    /// The final path.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Syncs the data to disk if `sync`, then renames the file to its final name, replacing
    /// any file there.
    ///
    /// # Errors
    /// Syncing or renaming failed; the temporary file is removed.
    pub fn commit(self, sync: bool) -> Result<PathBuf, OutputError> {
        if sync {
            self.tmp
                .as_file()
                .sync_all()
                .map_err(|e| OutputError::file("syncing", &self.dest, e))?;
        }
        self.tmp
            .persist(&self.dest)
            .map_err(|e| OutputError::file("renaming into", &self.dest, e.error))?;
        Ok(self.dest)
    }
}

impl PartialFile {
    /// Finishes writing: syncs the data if `sync` and closes the file, which stays under its
    /// temporary name (and is removed if the [`PendingFile`] is dropped) until
    /// [`commit_pending`] renames it. A build holds every node's outputs this way until all
    /// are complete, without one open file each.
    ///
    /// # Errors
    /// Syncing failed; the temporary file is removed.
    pub fn finish(self, sync: bool) -> Result<PendingFile, OutputError> {
        if sync {
            self.tmp
                .as_file()
                .sync_all()
                .map_err(|e| OutputError::file("syncing", &self.dest, e))?;
        }
        Ok(PendingFile {
            path: self.tmp.into_temp_path(),
            dest: self.dest,
        })
    }
}

/// A complete output, closed, still under its temporary name.
#[derive(Debug)]
pub struct PendingFile {
    path: tempfile::TempPath,
    dest: PathBuf,
}

impl PendingFile {
    /// The final path.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// The temporary path.
    pub fn temp_path(&self) -> &Path {
        &self.path
    }
}

/// Renames every pending file to its final name, in order; if one rename fails, removes those
/// already renamed and drops (removes) the rest. Then syncs the directories if `sync`.
///
/// # Errors
/// The first failure.
pub fn commit_pending(files: Vec<PendingFile>, sync: bool) -> Result<Vec<PathBuf>, OutputError> {
    let mut done: Vec<PathBuf> = Vec::with_capacity(files.len());
    let mut files = files.into_iter();
    for f in files.by_ref() {
        let PendingFile { path, dest } = f;
        match path.persist(&dest) {
            Ok(()) => done.push(dest),
            Err(e) => {
                for path in &done {
                    let _ = fs::remove_file(path);
                }
                return Err(OutputError::file("renaming into", &dest, e.error));
            }
        }
    }
    if sync {
        let mut dirs: Vec<&Path> = done.iter().map(|p| parent_dir(p)).collect();
        dirs.sort();
        dirs.dedup();
        for d in dirs {
            if let Ok(dir) = File::open(d) {
                let _ = dir.sync_all();
            }
        }
    }
    Ok(done)
}

/// Commits every file, in order; if one fails, removes those already renamed and drops the
/// rest, so either all outputs stand under their final names or none does.
///
/// # Errors
/// The first failure.
pub fn commit_all(files: Vec<PartialFile>, sync: bool) -> Result<Vec<PathBuf>, OutputError> {
    let mut done: Vec<PathBuf> = Vec::with_capacity(files.len());
    let mut files = files.into_iter();
    for f in files.by_ref() {
        match f.commit(sync) {
            Ok(path) => done.push(path),
            Err(e) => {
                for path in &done {
                    let _ = fs::remove_file(path);
                }
                return Err(e);
            }
        }
    }
    if sync && let Some(first) = done.first() {
        // Make the renames durable too.
        if let Ok(dir) = File::open(parent_dir(first)) {
            let _ = dir.sync_all();
        }
    }
    Ok(done)
}

/// Removes `.NAME.partial-*` files left in `dir` by an interrupted build. Returns how many.
///
/// # Errors
/// `dir` cannot be listed.
pub fn sweep_partials(dir: &Path) -> std::io::Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.')
            && name.contains(PARTIAL_INFIX)
            && entry.file_type().is_ok_and(|t| t.is_file())
            && fs::remove_file(entry.path()).is_ok()
        {
            removed += 1;
        }
    }
    Ok(removed)
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn file_permissions(mode: u32) -> fs::Permissions {
    use std::os::unix::fs::PermissionsExt as _;
    fs::Permissions::from_mode(mode)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn commit_renames_and_drop_removes() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("n1.img.zst");
        let mut p = PartialFile::create(&dest).unwrap();
        p.file_mut().write_all(b"data").unwrap();
        let shown = names(dir.path());
        assert_eq!(shown.len(), 1);
        assert!(shown[0].starts_with(".n1.img.zst.partial-"), "{shown:?}");
        assert_eq!(p.commit(false).unwrap(), dest);
        assert_eq!(names(dir.path()), ["n1.img.zst"]);
        assert_eq!(fs::read(&dest).unwrap(), b"data");

        let other = dir.path().join("n2.img");
        let p = PartialFile::create(&other).unwrap();
        drop(p);
        assert_eq!(names(dir.path()), ["n1.img.zst"], "dropped partial removed");
    }

    #[test]
    fn commit_all_is_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let a = PartialFile::create(&dir.path().join("a")).unwrap();
        let b = PartialFile::create(&dir.path().join("b")).unwrap();
        // Make the second rename fail: its destination is a non-empty directory.
        fs::create_dir(dir.path().join("b")).unwrap();
        fs::write(dir.path().join("b/x"), b"").unwrap();
        assert!(commit_all(vec![a, b], true).is_err());
        assert_eq!(
            names(dir.path()),
            ["b"],
            "a was renamed back out of the way"
        );
    }

    #[test]
    fn pending_files_wait_under_their_temporary_names() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = PartialFile::create(&dir.path().join("a")).unwrap();
        a.file_mut().write_all(b"A").unwrap();
        let a = a.finish(true).unwrap();
        let b = PartialFile::create(&dir.path().join("b"))
            .unwrap()
            .finish(false)
            .unwrap();
        let shown = names(dir.path());
        assert_eq!(shown.len(), 2);
        assert!(shown.iter().all(|n| n.contains(PARTIAL_INFIX)), "{shown:?}");
        let done = commit_pending(vec![a, b], true).unwrap();
        assert_eq!(done.len(), 2);
        assert_eq!(names(dir.path()), ["a", "b"]);
        assert_eq!(fs::read(dir.path().join("a")).unwrap(), b"A");

        // Dropped before the commit: nothing is left.
        let c = PartialFile::create(&dir.path().join("c"))
            .unwrap()
            .finish(false)
            .unwrap();
        drop(c);
        assert_eq!(names(dir.path()), ["a", "b"]);
    }

    #[test]
    fn sweep_removes_only_partials() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(".n1.img.partial-abc"), b"").unwrap();
        fs::write(dir.path().join("n1.img"), b"").unwrap();
        fs::write(dir.path().join(".hidden"), b"").unwrap();
        assert_eq!(sweep_partials(dir.path()).unwrap(), 1);
        assert_eq!(names(dir.path()), [".hidden", "n1.img"]);
    }
}
