//! Walking a whole ext4 filesystem, every inode with what an archive needs of it.
//!
//! `ext4-view` (our reader of single files) reports neither inode numbers, device numbers nor
//! extended attributes, so the walk goes through `rust-fs-ext4` (the crate behind our writer),
//! mounted read-only on the window: directory entries with their inode numbers, the parsed
//! inode (mode, owner, times, link count), the raw `i_block` area for device numbers, and the
//! in-inode and external extended attributes (values in EA inodes followed).
//!
//! Order is fixed: a directory comes before its entries, entries are sorted by the bytes of
//! their names, so the same filesystem always walks the same way whatever the order of its
//! directory blocks. The filesystem must be clean (finished by our writer, or checked by
//! `e2fsck`): the read-only mount replays no journal.
//!
//! Device numbers follow the kernel's `ext4_inode` use of `i_block` for special files
//! (`fs/ext4/inode.c`, `old_decode_dev`/`new_decode_dev`): `i_block[0]` holds an old 8:8
//! number when it is not zero, otherwise `i_block[1]` holds the new 12:20 encoding.

use std::io::Read;
use std::sync::Arc;

use fs_ext4::Filesystem;
use fs_ext4::inode::{S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK};

use super::write::WindowDevice;
use crate::disk::{Storage, Window};

/// The root directory's inode number.
const ROOT_INO: u32 = 2;
/// Deepest directory nesting walked (a loop of directory links in a damaged image ends here).
pub const MAX_DEPTH: usize = 256;

/// The type of an inode, as an archive distinguishes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A FIFO.
    Fifo,
    /// A Unix socket.
    Socket,
}

impl EntryKind {
    fn of_mode(mode: u16) -> Option<Self> {
        Some(match mode & S_IFMT {
            S_IFREG => Self::File,
            S_IFDIR => Self::Dir,
            S_IFLNK => Self::Symlink,
            S_IFCHR => Self::CharDevice,
            S_IFBLK => Self::BlockDevice,
            S_IFIFO => Self::Fifo,
            S_IFSOCK => Self::Socket,
            _ => return None,
        })
    }
}

/// One inode reached by the walk, under one of its names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkEntry {
    /// The path from the root, `/`-separated, without a leading `/`; empty for the root.
    pub path: Vec<u8>,
    /// The inode number.
    pub ino: u32,
    /// The type.
    pub kind: EntryKind,
    /// Permission bits (`mode & 0o7777`).
    pub mode: u16,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Modification time, seconds since the Unix epoch.
    pub mtime: i64,
    /// Size in bytes (regular files; for symlinks the target length).
    pub size: u64,
    /// Hard link count.
    pub links: u16,
    /// `(major, minor)` of a device node; zeros otherwise.
    pub device: (u32, u32),
    /// A symlink's target, as stored.
    pub link_target: Option<Vec<u8>>,
    /// Extended attributes, fully qualified names (`security.capability`), sorted by name.
    pub xattrs: Vec<(String, Vec<u8>)>,
}

/// What went wrong walking; names the path and inode.
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    /// The filesystem could not be read.
    #[error("ext4: /{path} (inode {ino}): {detail}")]
    Read {
        /// The path being read.
        path: String,
        /// Its inode.
        ino: u32,
        /// What the reader said.
        detail: String,
    },
    /// The filesystem could not be mounted.
    #[error("ext4: cannot open the filesystem for reading: {0}")]
    Mount(String),
    /// Directories nest deeper than [`MAX_DEPTH`].
    #[error("ext4: /{path}: directories nest deeper than {MAX_DEPTH} levels (damaged image?)")]
    TooDeep {
        /// Where.
        path: String,
    },
    /// The visitor failed.
    #[error(transparent)]
    Visit(#[from] std::io::Error),
}

/// A read-only ext4 filesystem to walk.
pub struct Ext4Walker {
    fs: Filesystem,
}

impl std::fmt::Debug for Ext4Walker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ext4Walker").finish_non_exhaustive()
    }
}

/// The content of a regular file, read in pieces.
struct Content<'a> {
    fs: &'a Filesystem,
    ino: u32,
    pos: u64,
    size: u64,
}

impl Read for Content<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let left = usize::try_from(self.size - self.pos).unwrap_or(usize::MAX);
        let want = buf.len().min(left);
        let n = self
            .fs
            .read_ino(self.ino, self.pos, &mut buf[..want])
            .map_err(|e| std::io::Error::other(format!("inode {}: {e}", self.ino)))?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "inode {}: content ends at byte {} of {}",
                    self.ino, self.pos, self.size
                ),
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

fn lossy(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

/// Decodes a special file's device number from its `i_block` area.
fn device_number(block: &[u8; 60]) -> (u32, u32) {
    let word = |i: usize| u32::from_le_bytes([block[i], block[i + 1], block[i + 2], block[i + 3]]);
    let old = word(0);
    if old != 0 {
        ((old >> 8) & 0xff, old & 0xff)
    } else {
        let new = word(4);
        (
            (new & 0xf_ff00) >> 8,
            (new & 0xff) | ((new >> 12) & 0xf_ff00),
        )
    }
}

impl Ext4Walker {
    /// Mounts the filesystem in `window` read-only.
    pub fn open<S: Storage + 'static>(window: Window<S>) -> Result<Self, WalkError> {
        let dev: Arc<dyn fs_ext4::block_io::BlockDevice> =
            Arc::new(WindowDevice::read_only(Arc::new(window)));
        let fs = Filesystem::mount(dev).map_err(|e| WalkError::Mount(e.to_string()))?;
        Ok(Self { fs })
    }

    fn entry(&self, path: Vec<u8>, ino: u32) -> Result<WalkEntry, WalkError> {
        let err = |path: &[u8], e: fs_ext4::Error| WalkError::Read {
            path: lossy(path),
            ino,
            detail: e.to_string(),
        };
        let (inode, raw) = self
            .fs
            .read_inode_verified(ino)
            .map_err(|e| err(&path, e))?;
        let kind = EntryKind::of_mode(inode.mode).ok_or_else(|| WalkError::Read {
            path: lossy(&path),
            ino,
            detail: format!("unknown file type in mode {:o}", inode.mode),
        })?;
        let link_target = if kind == EntryKind::Symlink {
            Some(self.fs.read_link_ino(ino).map_err(|e| err(&path, e))?)
        } else {
            None
        };
        let mut xattrs: Vec<(String, Vec<u8>)> =
            fs_ext4::xattr::read_all_resolved(&self.fs, &inode, &raw)
                .map_err(|e| err(&path, e))?
                .into_iter()
                .map(|x| (x.name, x.value))
                .collect();
        xattrs.sort();
        let device = match kind {
            EntryKind::CharDevice | EntryKind::BlockDevice => device_number(&inode.block),
            _ => (0, 0),
        };
        Ok(WalkEntry {
            path,
            ino,
            kind,
            mode: inode.mode & 0o7777,
            uid: inode.uid,
            gid: inode.gid,
            mtime: inode.mtime,
            size: inode.size,
            links: inode.links_count,
            device,
            link_target,
            xattrs,
        })
    }

    /// Calls `visit` for every inode under every name, directories before their entries,
    /// entries sorted by name; for a regular file `visit` gets its content to read (it need
    /// not read it all).
    ///
    /// # Errors
    /// A [`WalkError`] naming the path and inode that could not be read, or the visitor's.
    pub fn walk(
        &self,
        visit: &mut dyn FnMut(&WalkEntry, &mut dyn Read) -> std::io::Result<()>,
    ) -> Result<(), WalkError> {
        self.walk_dir(Vec::new(), ROOT_INO, 0, visit)
    }

    fn walk_dir(
        &self,
        path: Vec<u8>,
        ino: u32,
        depth: usize,
        visit: &mut dyn FnMut(&WalkEntry, &mut dyn Read) -> std::io::Result<()>,
    ) -> Result<(), WalkError> {
        if depth > MAX_DEPTH {
            return Err(WalkError::TooDeep { path: lossy(&path) });
        }
        let me = self.entry(path.clone(), ino)?;
        visit(&me, &mut std::io::empty())?;
        let mut children = self.fs.read_dir_ino(ino).map_err(|e| WalkError::Read {
            path: lossy(&path),
            ino,
            detail: e.to_string(),
        })?;
        children.retain(|c| c.name != b"." && c.name != b".." && c.inode != 0);
        children.sort_by(|a, b| a.name.cmp(&b.name));
        for c in children {
            let mut child = path.clone();
            if !child.is_empty() {
                child.push(b'/');
            }
            child.extend_from_slice(&c.name);
            let e = self.entry(child.clone(), c.inode)?;
            match e.kind {
                EntryKind::Dir => self.walk_dir(child, c.inode, depth + 1, visit)?,
                EntryKind::File => {
                    let mut content = Content {
                        fs: &self.fs,
                        ino: c.inode,
                        pos: 0,
                        size: e.size,
                    };
                    visit(&e, &mut content)?;
                }
                _ => visit(&e, &mut std::io::empty())?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_numbers_old_and_new_encodings() {
        let mut b = [0u8; 60];
        // Old encoding: major 1, minor 3 (/dev/null) in i_block[0].
        b[..4].copy_from_slice(&0x0103u32.to_le_bytes());
        assert_eq!(device_number(&b), (1, 3));
        // New encoding in i_block[1]: major 259, minor 300000.
        let (major, minor) = (259u32, 300_000u32);
        let new = (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12);
        let mut b = [0u8; 60];
        b[4..8].copy_from_slice(&new.to_le_bytes());
        assert_eq!(device_number(&b), (major, minor));
    }

    #[test]
    fn kinds_from_modes() {
        for (mode, kind) in [
            (0o100_644, EntryKind::File),
            (0o040_755, EntryKind::Dir),
            (0o120_777, EntryKind::Symlink),
            (0o020_666, EntryKind::CharDevice),
            (0o060_660, EntryKind::BlockDevice),
            (0o010_644, EntryKind::Fifo),
            (0o140_755, EntryKind::Socket),
        ] {
            assert_eq!(EntryKind::of_mode(mode), Some(kind), "{mode:o}");
        }
        assert_eq!(EntryKind::of_mode(0o170_000), None);
    }
}
