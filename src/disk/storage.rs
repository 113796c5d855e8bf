//! Positioned, shared access to the bytes of a whole disk image.
//!
//! Filesystems never see the disk: they see a [`Window`](super::Window) over a [`Storage`].
//! A `Storage` reads and writes at absolute offsets through `&self`, so several windows (the
//! boot and the root partition) can share one disk. Read-only storage refuses writes.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

/// Random access to the bytes of a disk image.
pub trait Storage: Send + Sync {
    /// Length of the storage in bytes.
    fn len(&self) -> u64;

    /// True when the storage holds no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fill `buf` from `offset`. Reading past the end is an `UnexpectedEof` error.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;

    /// Write `buf` at `offset`. Read-only storage returns `PermissionDenied`.
    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()>;
}

impl<S: Storage + ?Sized> Storage for &S {
    fn len(&self) -> u64 {
        (**self).len()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        (**self).read_at(offset, buf)
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        (**self).write_at(offset, buf)
    }
}

impl<S: Storage + ?Sized> Storage for std::sync::Arc<S> {
    fn len(&self) -> u64 {
        (**self).len()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        (**self).read_at(offset, buf)
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        (**self).write_at(offset, buf)
    }
}

/// Checks that `len` bytes at `offset` lie inside `[0, total)`.
pub(crate) fn check_range(offset: u64, len: usize, total: u64) -> io::Result<()> {
    let end = u64::try_from(len)
        .ok()
        .and_then(|l| offset.checked_add(l))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "offset overflow"))?;
    if end > total {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("access to bytes {offset}..{end} is past the end ({total} bytes)"),
        ));
    }
    Ok(())
}

/// A disk image file, opened read-only (the base image) or read-write (a scratch copy).
#[derive(Debug)]
pub struct FileStorage {
    file: File,
    len: u64,
    writable: bool,
    path: PathBuf,
}

impl FileStorage {
    /// Opens `path` read-only. Writes through this storage are refused.
    pub fn open_read_only(path: &Path) -> io::Result<Self> {
        Self::from_read_only_file(File::open(path)?, path)
    }

    /// Reads `file`, opened from `path` (which only names it in messages). Writes through
    /// this storage are refused.
    pub fn from_read_only_file(file: File, path: &Path) -> io::Result<Self> {
        let len = file.metadata()?.len();
        Ok(Self {
            file,
            len,
            writable: false,
            path: path.to_owned(),
        })
    }

    /// Opens `path` for reading and writing. Never use this on a base image.
    pub fn open_read_write(path: &Path) -> io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)?;
        let len = file.metadata()?.len();
        Ok(Self {
            file,
            len,
            writable: true,
            path: path.to_owned(),
        })
    }

    /// The path this storage was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Storage for FileStorage {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(offset, buf.len(), self.len)?;
        self.file.read_exact_at(buf, offset)
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        if !self.writable {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{} is opened read-only", self.path.display()),
            ));
        }
        check_range(offset, buf.len(), self.len)?;
        self.file.write_all_at(buf, offset)
    }
}

/// An in-memory disk, for tests and small images.
#[derive(Debug, Default)]
pub struct MemStorage {
    bytes: RwLock<Vec<u8>>,
}

impl MemStorage {
    /// A storage holding `bytes`.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self {
            bytes: RwLock::new(bytes),
        }
    }

    /// A copy of the current bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        self.bytes.read().map(|b| b.clone()).unwrap_or_default()
    }
}

fn poisoned() -> io::Error {
    io::Error::other("in-memory storage lock poisoned")
}

impl Storage for MemStorage {
    fn len(&self) -> u64 {
        self.bytes.read().map(|b| b.len() as u64).unwrap_or(0)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let bytes = self.bytes.read().map_err(|_| poisoned())?;
        check_range(offset, buf.len(), bytes.len() as u64)?;
        let start = usize::try_from(offset).map_err(io::Error::other)?;
        buf.copy_from_slice(&bytes[start..start + buf.len()]);
        Ok(())
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        let mut bytes = self.bytes.write().map_err(|_| poisoned())?;
        check_range(offset, buf.len(), bytes.len() as u64)?;
        let start = usize::try_from(offset).map_err(io::Error::other)?;
        bytes[start..start + buf.len()].copy_from_slice(buf);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_storage_reads_and_writes_in_bounds() {
        let s = MemStorage::new(vec![0; 16]);
        s.write_at(4, b"abcd").unwrap();
        let mut buf = [0; 6];
        s.read_at(3, &mut buf).unwrap();
        assert_eq!(&buf, b"\0abcd\0");
    }

    #[test]
    fn accesses_past_the_end_fail() {
        let s = MemStorage::new(vec![0; 16]);
        let mut buf = [0; 4];
        assert_eq!(
            s.read_at(13, &mut buf).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        assert!(s.write_at(16, b"x").is_err());
        assert!(s.read_at(u64::MAX, &mut buf).is_err());
    }

    #[test]
    fn read_only_file_refuses_writes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.img");
        std::fs::write(&p, [7u8; 1024]).unwrap();
        let s = FileStorage::open_read_only(&p).unwrap();
        let mut b = [0; 2];
        s.read_at(1022, &mut b).unwrap();
        assert_eq!(b, [7, 7]);
        let e = s.write_at(0, b"x").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(std::fs::read(&p).unwrap(), vec![7u8; 1024]);
    }
}
