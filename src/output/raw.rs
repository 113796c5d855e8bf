//! Raw `.img` outputs without rewriting the whole image.
//!
//! When the base is a file, a node's raw image starts as a copy of it and only the node's
//! changed blocks are written over it:
//! 1. a reflink clone (`FICLONE`, through `rustix`'s safe wrapper) where the filesystem shares
//!    extents (btrfs, XFS, bcachefs, ...): no data is copied at all;
//! 2. otherwise a sparse copy: only the base's data extents (`SEEK_DATA`/`SEEK_HOLE`) are
//!    copied, in the kernel (`copy_file_range`), falling back to reads and writes where that is
//!    refused; holes stay holes;
//! 3. then every changed block is read from the node's image and written in place.
//!
//! Without a base file the raw image is streamed through [`crate::io::sparse::SparseWriter`]
//! with the other outputs (see [`super::node`]).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use rustix::fs::SeekFrom;
use rustix::io::Errno;

use crate::disk::Storage;
use crate::disk::cow::COW_BLOCK;
use crate::io::BUF_SIZE;

/// How a raw output was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawMethod {
    /// Reflink clone of the base, then the changed blocks.
    Reflink,
    /// Sparse copy of the base's data extents, then the changed blocks.
    SparseCopy,
    /// Streamed with the other outputs, zero blocks left as holes.
    Streamed,
}

/// Makes `dst` (empty, writable) the base file `base` with `changed_blocks` (in `COW_BLOCK`
/// units) taken from `disk`. Returns how the base was copied.
///
/// # Errors
/// I/O errors, or the base file's length differs from `disk`'s.
pub fn clone_and_patch(
    base: &Path,
    dst: &File,
    disk: &dyn Storage,
    changed_blocks: &[u64],
) -> io::Result<RawMethod> {
    let src = File::open(base)?;
    let len = disk.len();
    let base_len = src.metadata()?.len();
    if base_len != len {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the base file is {base_len} bytes but the image is {len}"),
        ));
    }
    let method = if rustix::fs::ioctl_ficlone(dst, &src).is_ok() {
        RawMethod::Reflink
    } else {
        sparse_copy(&src, dst, len)?;
        RawMethod::SparseCopy
    };
    dst.set_len(len)?;
    let block = COW_BLOCK as u64;
    let mut buf = vec![0u8; COW_BLOCK];
    for &b in changed_blocks {
        let off = b.saturating_mul(block);
        if off >= len {
            continue;
        }
        let n = usize::try_from((len - off).min(block)).unwrap_or(COW_BLOCK);
        disk.read_at(off, &mut buf[..n])?;
        dst.write_all_at(&buf[..n], off)?;
    }
    Ok(method)
}

/// Copies the data extents of `src` (`len` bytes) to the same offsets of `dst`.
fn sparse_copy(src: &File, dst: &File, len: u64) -> io::Result<()> {
    let mut pos = 0;
    while pos < len {
        let data = match rustix::fs::seek(src, SeekFrom::Data(pos)) {
            Ok(d) => d,
            // No data after `pos`.
            Err(Errno::NXIO) => break,
            // SEEK_DATA unsupported: copy everything that is left.
            Err(_) => return copy_range(src, dst, pos, len),
        };
        if data >= len {
            break;
        }
        let hole = rustix::fs::seek(src, SeekFrom::Hole(data)).map_or(len, |h| h.min(len));
        copy_range(src, dst, data, hole)?;
        pos = hole;
    }
    Ok(())
}

/// Copies bytes `[start, end)` of `src` to the same offsets of `dst`.
fn copy_range(src: &File, dst: &File, start: u64, end: u64) -> io::Result<()> {
    let mut off_in = start;
    let mut off_out = start;
    while off_in < end {
        let want = usize::try_from((end - off_in).min(1 << 30)).unwrap_or(1 << 30);
        match rustix::fs::copy_file_range(src, Some(&mut off_in), dst, Some(&mut off_out), want) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(_) => {}
            Err(Errno::INTR) => {}
            Err(Errno::XDEV | Errno::NOSYS | Errno::OPNOTSUPP | Errno::INVAL | Errno::PERM) => {
                return copy_range_userspace(src, dst, off_in, end);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn copy_range_userspace(src: &File, dst: &File, start: u64, end: u64) -> io::Result<()> {
    let mut buf = vec![0u8; BUF_SIZE];
    let mut off = start;
    while off < end {
        let n = usize::try_from((end - off).min(BUF_SIZE as u64)).unwrap_or(BUF_SIZE);
        src.read_exact_at(&mut buf[..n], off)?;
        dst.write_all_at(&buf[..n], off)?;
        off += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::{Seek, Write};

    use super::*;
    use crate::disk::{CowDisk, FileStorage};

    #[test]
    fn copies_sparsely_and_patches() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base.img");
        let len = 8u64 << 20;
        {
            let mut f = File::create(&base).unwrap();
            f.set_len(len).unwrap();
            f.write_all(b"MBR").unwrap();
            f.seek(io::SeekFrom::Start(5 << 20)).unwrap();
            f.write_all(&[7u8; 100_000]).unwrap();
        }
        let storage = FileStorage::open_read_only(&base).unwrap();
        let disk = CowDisk::new(&storage);
        disk.write_at(4096 * 300 + 10, b"changed").unwrap();
        disk.write_at(len - 3, b"end").unwrap();
        let out = tempfile::tempfile().unwrap();
        let changed = disk.changed_blocks().unwrap();
        let method = clone_and_patch(&base, &out, &disk, &changed).unwrap();
        assert!(matches!(method, RawMethod::Reflink | RawMethod::SparseCopy));
        let mut want = vec![0u8; usize::try_from(len).unwrap()];
        disk.read_at(0, &mut want).unwrap();
        let mut got = vec![0u8; want.len()];
        out.read_exact_at(&mut got, 0).unwrap();
        assert!(got == want, "raw output differs from base + overlay");
        use std::os::unix::fs::MetadataExt as _;
        if method == RawMethod::SparseCopy {
            assert!(
                out.metadata().unwrap().blocks() * 512 < 1 << 20,
                "holes kept"
            );
        }
    }

    #[test]
    fn refuses_a_base_of_another_length() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base.img");
        std::fs::write(&base, [0u8; 8192]).unwrap();
        let disk = crate::disk::MemStorage::new(vec![0; 4096]);
        let out = tempfile::tempfile().unwrap();
        assert!(clone_and_patch(&base, &out, &disk, &[]).is_err());
    }
}
