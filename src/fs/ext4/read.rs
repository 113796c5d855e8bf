//! Reading an ext4 partition window: our superblock decoder plus `ext4-view` for files.

use std::sync::Arc;

use ext4_view::Ext4;

use super::rootfs::MAX_WHOLE_READ;
use super::superblock::{Ext4Error, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE, Superblock};
use crate::disk::{Storage, Window};

/// What a path is, as [`Ext4Reader::kind`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (only when links are not followed).
    Symlink,
    /// A device, FIFO or socket.
    Special,
}

/// A read-only ext4 filesystem inside a partition window.
pub struct Ext4Reader {
    sb: Superblock,
    fs: Ext4,
}

impl std::fmt::Debug for Ext4Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ext4Reader")
            .field("sb", &self.sb)
            .finish_non_exhaustive()
    }
}

/// Reads and decodes the superblock of the filesystem in `window`.
pub fn read_superblock<S: Storage>(window: &Window<S>) -> Result<Superblock, Ext4Error> {
    let mut b = [0u8; SUPERBLOCK_SIZE];
    window.read_at(SUPERBLOCK_OFFSET, &mut b)?;
    Superblock::from_bytes(&b)
}

fn reader_err(path: &str, e: ext4_view::Ext4Error) -> Ext4Error {
    // Damage the reader finds (a directory or extent block failing its checksum, a bad
    // entry) gets the same advice as the damage the write gate finds.
    let hint = if matches!(e, ext4_view::Ext4Error::Corrupt(_)) {
        "; the ext4 filesystem is damaged: run `e2fsck -f` on the image first"
    } else {
        ""
    };
    Ext4Error::Reader {
        path: path.to_owned(),
        detail: format!("{e}{hint}"),
    }
}

impl Ext4Reader {
    /// Opens the filesystem in `window` (checks the superblock, loads the journal in memory).
    pub fn open<S: Storage + ?Sized + 'static>(window: Window<Arc<S>>) -> Result<Self, Ext4Error>
    where
        Arc<S>: Storage,
    {
        let sb = read_superblock(&window)?;
        let fs = Ext4::load(Box::new(window)).map_err(|e| reader_err("/", e))?;
        Ok(Self { sb, fs })
    }

    /// The decoded superblock.
    pub fn superblock(&self) -> &Superblock {
        &self.sb
    }

    /// Reads a whole file; `Ok(None)` when it does not exist. Symlinks are followed inside the
    /// filesystem (absolute targets from its own root, never the host's). A file larger than
    /// [`MAX_WHOLE_READ`] is refused by its inode's size before `ext4-view` allocates it.
    pub fn read(&self, path: &str) -> Result<Option<Vec<u8>>, Ext4Error> {
        match self.fs.metadata(path) {
            Ok(m) if m.len() > MAX_WHOLE_READ => {
                return Err(Ext4Error::TooLarge {
                    path: path.to_owned(),
                    size: m.len(),
                });
            }
            Ok(_) => {}
            Err(ext4_view::Ext4Error::NotFound) => return Ok(None),
            Err(e) => return Err(reader_err(path, e)),
        }
        match self.fs.read(path) {
            Ok(d) => Ok(Some(d)),
            Err(ext4_view::Ext4Error::NotFound) => Ok(None),
            Err(e) => Err(reader_err(path, e)),
        }
    }

    /// Reads a file as UTF-8 text (lossily); `Ok(None)` when it does not exist.
    pub fn read_text(&self, path: &str) -> Result<Option<String>, Ext4Error> {
        Ok(self
            .read(path)?
            .map(|d| String::from_utf8_lossy(&d).into_owned()))
    }

    /// True when `path` is a directory (a final symlink is not followed).
    pub fn is_dir(&self, path: &str) -> Result<bool, Ext4Error> {
        match self.fs.symlink_metadata(path) {
            Ok(m) => Ok(m.is_dir()),
            Err(ext4_view::Ext4Error::NotFound) => Ok(false),
            Err(e) => Err(reader_err(path, e)),
        }
    }

    /// True when `path` exists (after following symlinks).
    pub fn exists(&self, path: &str) -> Result<bool, Ext4Error> {
        self.fs.exists(path).map_err(|e| reader_err(path, e))
    }

    /// The target of the symlink at `path`, or `None` if it is not a symlink or is missing.
    pub fn read_link(&self, path: &str) -> Result<Option<String>, Ext4Error> {
        match self.fs.read_link(path) {
            Ok(t) => Ok(Some(t.display().to_string())),
            Err(ext4_view::Ext4Error::NotFound | ext4_view::Ext4Error::NotASymlink) => Ok(None),
            Err(e) => Err(reader_err(path, e)),
        }
    }

    /// What `path` is: with `follow`, after following every symlink inside the filesystem
    /// (absolute targets from its own root), so a link to a regular file is a
    /// [`FileKind::File`]. `Ok(None)` when it does not exist, a link dangles or links loop.
    pub fn kind(&self, path: &str, follow: bool) -> Result<Option<FileKind>, Ext4Error> {
        let meta = if follow {
            self.fs.metadata(path)
        } else {
            self.fs.symlink_metadata(path)
        };
        match meta {
            Ok(m) => {
                let t = m.file_type();
                Ok(Some(if t.is_regular_file() {
                    FileKind::File
                } else if t.is_dir() {
                    FileKind::Dir
                } else if t.is_symlink() {
                    FileKind::Symlink
                } else {
                    FileKind::Special
                }))
            }
            Err(
                ext4_view::Ext4Error::NotFound
                | ext4_view::Ext4Error::TooManySymlinks
                | ext4_view::Ext4Error::NotADirectory,
            ) => Ok(None),
            Err(e) => Err(reader_err(path, e)),
        }
    }

    /// Names in the directory at `path` (without `.` and `..`); empty when it does not exist.
    pub fn list(&self, path: &str) -> Result<Vec<String>, Ext4Error> {
        let it = match self.fs.read_dir(path) {
            Ok(it) => it,
            Err(ext4_view::Ext4Error::NotFound) => return Ok(Vec::new()),
            Err(e) => return Err(reader_err(path, e)),
        };
        let mut names = Vec::new();
        for entry in it {
            let entry = entry.map_err(|e| reader_err(path, e))?;
            let name = entry.file_name().display().to_string();
            if name != "." && name != ".." {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }
}
