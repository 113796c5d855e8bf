//! [`RootFs`]: the small set of file operations piimage needs on a root filesystem.
//!
//! The trait is ours so that the ext4 writer behind it can be swapped (see
//! `docs/ext4-writer.md`). Its contract:
//!
//! - **Paths** are absolute, already resolved paths inside the filesystem (`/etc/hostname`):
//!   no `.` or `..` components. Intermediate symlinks are *not* followed at this layer: a path
//!   through one (`/lib/x` where `/lib -> usr/lib`) fails with [`RootFsError::NotADirectory`]
//!   (also from [`RootFs::lookup`], which answers `None` only when a component is missing).
//!   Resolving them is the caller's job.
//! - **The final component is never followed**: [`RootFs::lookup`] on a symlink describes the
//!   link itself (lstat), [`RootFs::unlink`] removes the link, [`RootFs::set_meta`] changes the
//!   link's owner (lchown).
//! - **Modes** are the permission bits (`0o7777`: rwx plus setuid, setgid, sticky); the file
//!   type is implied by the operation.
//! - Nothing is guaranteed on disk before [`RootFs::finish`] returns `Ok`. After an error the
//!   filesystem stays consistent (every operation is one or more journaled transactions), but an
//!   operation may be half done (e.g. a file created and not yet filled): callers that need
//!   all-or-nothing discard the whole scratch overlay on error.

use std::fmt;

/// The largest file piimage reads whole from an image (16 MiB). Only configuration files are
/// read whole (`/etc/passwd`, `group`, `shadow`, `os-release`, unit files, `sshd_config`, files
/// a recipe edits or appends to): on a real system they are some KiB, a big `/etc/group` some
/// hundred KiB. The size comes from the inode and is checked before anything is allocated, so a
/// sparse 1 TiB `/etc/passwd` is refused with its path instead of exhausting memory.
pub const MAX_WHOLE_READ: u64 = 16 << 20;

/// The type of an inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A device node, FIFO or socket.
    Other,
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::File => "regular file",
            Self::Dir => "directory",
            Self::Symlink => "symbolic link",
            Self::Other => "special file",
        })
    }
}

/// Owner of an inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Owner {
    /// User id (32-bit on ext4).
    pub uid: u32,
    /// Group id (32-bit on ext4).
    pub gid: u32,
}

impl Owner {
    /// root:root.
    pub const ROOT: Self = Self { uid: 0, gid: 0 };

    /// An owner from a uid and a gid.
    pub fn new(uid: u32, gid: u32) -> Self {
        Self { uid, gid }
    }
}

/// What [`RootFs::lookup`] tells about an inode (lstat).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// The type.
    pub kind: FileKind,
    /// Permission bits (`mode & 0o7777`).
    pub mode: u16,
    /// Owner.
    pub owner: Owner,
    /// Size in bytes (for a symlink: the length of its target).
    pub size: u64,
    /// Hard link count.
    pub links: u16,
    /// Modification time, seconds since the Unix epoch.
    pub mtime: i64,
    /// The target of a symlink, `None` for other kinds.
    pub symlink_target: Option<String>,
}

/// One entry of [`RootFs::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The name (lossily decoded if it is not UTF-8).
    pub name: String,
    /// The type, from the directory entry.
    pub kind: FileKind,
}

/// A change of permission bits and/or owner ([`RootFs::set_meta`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MetaChange {
    /// New permission bits, if any.
    pub mode: Option<u16>,
    /// New uid, if any.
    pub uid: Option<u32>,
    /// New gid, if any.
    pub gid: Option<u32>,
}

/// File operations on a writable root filesystem.
pub trait RootFs {
    /// Describes the inode at `path` without following a final symlink; `None` if it does not
    /// exist.
    fn lookup(&self, path: &str) -> Result<Option<Meta>, RootFsError>;

    /// The whole content of the regular file at `path`; a file larger than [`MAX_WHOLE_READ`]
    /// is refused ([`RootFsError::TooLarge`]) before anything is allocated.
    fn read(&self, path: &str) -> Result<Vec<u8>, RootFsError>;

    /// Creates the regular file `path`, or replaces the content of the existing one, and sets
    /// its mode, owner and mtime (atime too). The parent directory must exist. Replacing keeps
    /// the inode (and so its hard links and extended attributes). An existing non-regular file
    /// at `path` is an error ([`RootFsError::WrongKind`]).
    fn write_file(
        &mut self,
        path: &str,
        data: &[u8],
        mode: u16,
        owner: Owner,
        mtime: i64,
    ) -> Result<(), RootFsError>;

    /// Creates `path` and its missing ancestors as directories with `mode` and `owner` (like
    /// `mkdir -p`). Existing directories are left as they are; an existing non-directory on the
    /// way is an error.
    fn mkdir_p(&mut self, path: &str, mode: u16, owner: Owner) -> Result<(), RootFsError>;

    /// Creates the symlink `path` pointing at `target` (stored verbatim; not resolved). The
    /// parent must exist; an existing entry at `path` is an error.
    fn symlink(&mut self, path: &str, target: &str, owner: Owner) -> Result<(), RootFsError>;

    /// Changes permission bits and/or owner of `path` (not following a final symlink; a mode
    /// change on a symlink is refused, as Linux has no lchmod).
    fn set_meta(&mut self, path: &str, change: MetaChange) -> Result<(), RootFsError>;

    /// Removes the file, symlink or empty directory at `path`.
    fn unlink(&mut self, path: &str) -> Result<(), RootFsError>;

    /// The entries of the directory `dir`, without `.` and `..`, sorted by name.
    fn list(&self, dir: &str) -> Result<Vec<DirEntry>, RootFsError>;

    /// Free space in bytes, as the superblock counts it (including blocks reserved for root).
    fn free_bytes(&self) -> Result<u64, RootFsError>;

    /// Flushes and releases the filesystem. Any error is fatal: the image must be discarded.
    /// Every later call fails with [`RootFsError::Finished`].
    fn finish(&mut self) -> Result<(), RootFsError>;
}

/// Errors of [`RootFs`] operations. Each names the operation and the path.
#[derive(Debug, thiserror::Error)]
pub enum RootFsError {
    /// The filesystem may not be written (see `gate`).
    #[error(transparent)]
    Refused(#[from] super::gate::GateError),
    /// A path that is not absolute and normalised.
    #[error("{op} {path}: invalid path inside the filesystem: {why}")]
    InvalidPath {
        /// The operation.
        op: &'static str,
        /// The path.
        path: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The path (or one of its directories) does not exist.
    #[error("{op} {path}: no such file or directory")]
    NotFound {
        /// The operation.
        op: &'static str,
        /// The path.
        path: String,
    },
    /// A component on the way is not a directory (possibly a symlink: they are not followed
    /// here).
    #[error(
        "{op} {path}: a component of the path is not a directory (symlinks are not followed at this layer)"
    )]
    NotADirectory {
        /// The operation.
        op: &'static str,
        /// The path.
        path: String,
    },
    /// An entry already exists where a new one was to be created.
    #[error("{op} {path}: already exists")]
    AlreadyExists {
        /// The operation.
        op: &'static str,
        /// The path.
        path: String,
    },
    /// The existing inode has a type the operation does not accept.
    #[error("{op} {path}: is a {found}")]
    WrongKind {
        /// The operation.
        op: &'static str,
        /// The path.
        path: String,
        /// What is there.
        found: FileKind,
    },
    /// A file to read whole is larger than [`MAX_WHOLE_READ`].
    #[error(
        "{op} {path}: the file is {size} bytes, more than the {} MiB piimage reads of a configuration file (damaged or hostile image?)",
        MAX_WHOLE_READ >> 20
    )]
    TooLarge {
        /// The operation.
        op: &'static str,
        /// The path.
        path: String,
        /// The size its inode records.
        size: u64,
    },
    /// A directory to remove is not empty.
    #[error("{op} {path}: directory not empty")]
    NotEmpty {
        /// The operation.
        op: &'static str,
        /// The path.
        path: String,
    },
    /// Not enough free space.
    #[error(
        "{op} {path}: not enough space in the ext4 filesystem: needs {} MiB more \
         ({} MiB needed, {} MiB free, {} MiB kept free); grow the partition",
        mib_up(.needed_bytes.saturating_add(*.keep_free_bytes).saturating_sub(*.free_bytes)),
        mib_up(*.needed_bytes), .free_bytes >> 20, mib_up(*.keep_free_bytes)
    )]
    OutOfSpace {
        /// The operation.
        op: &'static str,
        /// The path.
        path: String,
        /// Bytes the operation needs (estimated).
        needed_bytes: u64,
        /// Bytes free before it.
        free_bytes: u64,
        /// Bytes piimage keeps free as a margin.
        keep_free_bytes: u64,
    },
    /// Something the backend cannot do (a documented limitation, not corruption).
    #[error("{op} {path}: not supported: {why}")]
    Unsupported {
        /// The operation.
        op: &'static str,
        /// The path.
        path: String,
        /// The limitation.
        why: String,
    },
    /// The backend failed.
    #[error("{op} {path}: ext4 writer error")]
    Backend {
        /// The operation.
        op: &'static str,
        /// The path.
        path: String,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The filesystem was already finished (or a previous finish failed).
    #[error("{op} {path}: the filesystem was already finished")]
    Finished {
        /// The operation.
        op: &'static str,
        /// The path.
        path: String,
    },
}

/// Bytes to MiB, rounded up.
fn mib_up(bytes: u64) -> u64 {
    bytes.div_ceil(1 << 20)
}

impl RootFsError {
    /// For [`RootFsError::OutOfSpace`]: how many bytes the filesystem lacks.
    pub fn short_by_bytes(&self) -> Option<u64> {
        match self {
            Self::OutOfSpace {
                needed_bytes,
                free_bytes,
                keep_free_bytes,
                ..
            } => Some(
                needed_bytes
                    .saturating_add(*keep_free_bytes)
                    .saturating_sub(*free_bytes),
            ),
            _ => None,
        }
    }
}

/// Checks that `path` is absolute and normalised; returns its components.
pub fn split_path<'p>(op: &'static str, path: &'p str) -> Result<Vec<&'p str>, RootFsError> {
    let bad = |why| RootFsError::InvalidPath {
        op,
        path: path.to_owned(),
        why,
    };
    let rest = path.strip_prefix('/').ok_or_else(|| bad("not absolute"))?;
    let parts: Vec<&str> = rest.split('/').filter(|c| !c.is_empty()).collect();
    for c in &parts {
        if *c == "." || *c == ".." {
            return Err(bad("`.` and `..` must be resolved by the caller"));
        }
        if c.len() > 255 {
            return Err(bad("a name is longer than 255 bytes"));
        }
        if c.contains('\0') {
            return Err(bad("a name contains a NUL byte"));
        }
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_checked() {
        assert_eq!(split_path("t", "/").unwrap(), Vec::<&str>::new());
        assert_eq!(split_path("t", "/etc//ssh/").unwrap(), ["etc", "ssh"]);
        for bad in ["etc", "/a/../b", "/./a", ""] {
            assert!(
                matches!(split_path("t", bad), Err(RootFsError::InvalidPath { .. })),
                "{bad}"
            );
        }
        assert!(split_path("t", &format!("/{}", "x".repeat(256))).is_err());
    }

    #[test]
    fn out_of_space_says_how_much_more() {
        let e = RootFsError::OutOfSpace {
            op: "write",
            path: "/big".into(),
            needed_bytes: 10 << 20,
            free_bytes: 3 << 20,
            keep_free_bytes: 1 << 20,
        };
        assert_eq!(e.short_by_bytes(), Some(8 << 20));
        let text = e.to_string();
        assert!(text.contains("needs 8 MiB more"), "{text}");
        assert!(text.starts_with("write /big:"), "{text}");
    }
}
