//! Raw `.img` outputs without rewriting the whole image.
//!
//! When the base is a file, a node's raw image starts as a copy of it and only the node's
//! changed blocks are written over it:
//! 1. a reflink clone (`FICLONE`, through `rustix`'s safe wrapper) where the filesystem shares
//!    extents (btrfs, XFS, bcachefs, ...): no data is copied at all;
//! 2. otherwise a sparse copy: only the base's data extents (`SEEK_DATA`/`SEEK_HOLE`) are
//!    copied, written around the page cache (`O_DIRECT`, see [`crate::io::direct`]); holes
//!    stay holes. (`copy_file_range` was used before: on filesystems without shared extents it
//!    copies through the page cache, which `ci/bench-output.sh` measured at about 2 s per node
//!    for a 2 GiB base on a VM, most of it in the kernel's page-cache copy.)
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
use crate::io::direct::{
    ALIGN, AlignedBuf, DIRECT_BUF_SIZE, is_alignment_error, set_buffered, try_direct,
};

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
    let mut out = Writer::new(dst);
    let method = if rustix::fs::ioctl_ficlone(dst, &src).is_ok() {
        RawMethod::Reflink
    } else {
        sparse_copy(&src, &mut out, len)?;
        RawMethod::SparseCopy
    };
    dst.set_len(len)?;
    let block = COW_BLOCK as u64;
    for &b in changed_blocks {
        let off = b.saturating_mul(block);
        if off >= len {
            continue;
        }
        let n = usize::try_from((len - off).min(block)).unwrap_or(COW_BLOCK);
        disk.read_at(off, out.buf.get_mut(n))?;
        out.write(off, n)?;
    }
    out.finish()?;
    Ok(method)
}

/// Positioned writes of an aligned buffer into the raw output, around the page cache where
/// the filesystem allows it (see [`crate::io::direct`]): a sparse copy writes the whole used
/// part of the base once per node, never read back by the build.
struct Writer<'f> {
    file: &'f File,
    buf: AlignedBuf,
    direct: bool,
}

impl<'f> Writer<'f> {
    fn new(file: &'f File) -> Self {
        Self {
            file,
            buf: AlignedBuf::default(),
            direct: try_direct(file),
        }
    }

    /// Writes the first `n` bytes of the buffer at `off`; what `O_DIRECT` cannot take (a
    /// piece not aligned to [`ALIGN`]: the end of an image that is not a whole number of 4
    /// KiB blocks) goes through the page cache.
    fn write(&mut self, off: u64, n: usize) -> io::Result<()> {
        let data = self.buf.get(n);
        let aligned = off.is_multiple_of(ALIGN as u64) && n.is_multiple_of(ALIGN);
        if self.direct && aligned {
            match self.file.write_all_at(data, off) {
                Ok(()) => return Ok(()),
                Err(e) if is_alignment_error(&e) => {
                    set_buffered(self.file)?;
                    self.direct = false;
                }
                Err(e) => return Err(e),
            }
        }
        if self.direct {
            set_buffered(self.file)?;
            self.file.write_all_at(data, off)?;
            self.direct = try_direct(self.file);
            return Ok(());
        }
        self.file.write_all_at(data, off)
    }

    /// Leaves the file in ordinary mode.
    fn finish(self) -> io::Result<()> {
        if self.direct {
            set_buffered(self.file)?;
        }
        Ok(())
    }
}

/// Copies the data extents of `src` (`len` bytes) to the same offsets of `out`.
fn sparse_copy(src: &File, out: &mut Writer<'_>, len: u64) -> io::Result<()> {
    let mut pos = 0;
    while pos < len {
        let data = match rustix::fs::seek(src, SeekFrom::Data(pos)) {
            Ok(d) => d,
            // No data after `pos`.
            Err(Errno::NXIO) => break,
            // SEEK_DATA unsupported: copy everything that is left.
            Err(_) => return copy_range(src, out, pos, len),
        };
        if data >= len {
            break;
        }
        let hole = rustix::fs::seek(src, SeekFrom::Hole(data)).map_or(len, |h| h.min(len));
        copy_range(src, out, data, hole)?;
        pos = hole;
    }
    Ok(())
}

/// Copies bytes `[start, end)` of `src` to the same offsets of `out`.
fn copy_range(src: &File, out: &mut Writer<'_>, start: u64, end: u64) -> io::Result<()> {
    let mut off = start;
    while off < end {
        let n = usize::try_from((end - off).min(DIRECT_BUF_SIZE as u64)).unwrap_or(DIRECT_BUF_SIZE);
        src.read_exact_at(out.buf.get_mut(n), off)?;
        out.write(off, n)?;
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
        // A whole number of 4 KiB blocks, and an image ending in a half block (its tail cannot
        // be written with O_DIRECT).
        for len in [8u64 << 20, (8 << 20) + 512] {
            copy_and_patch_case(len);
        }
    }

    fn copy_and_patch_case(len: u64) {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base.img");
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
