//! A bounded window onto a [`Storage`]: what a filesystem sees of its partition.
//!
//! Offsets inside the window start at 0 and never reach outside `[start, start + len)` of the
//! underlying disk. The window implements `std::io::{Read, Write, Seek}` (for FAT libraries) and
//! positioned access (for ext4 readers and writers).

use std::io::{self, Read, Seek, SeekFrom, Write};

use super::storage::{Storage, check_range};

/// A partition-sized slice of a disk.
#[derive(Debug, Clone)]
pub struct Window<S> {
    storage: S,
    start: u64,
    len: u64,
    pos: u64,
}

impl<S: Storage> Window<S> {
    /// A window of `len` bytes at `start`. Fails if it does not fit inside the storage.
    pub fn new(storage: S, start: u64, len: u64) -> io::Result<Self> {
        let end = start
            .checked_add(len)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "window overflows"))?;
        if end > storage.len() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "window {start}..{end} is past the end of the disk ({} bytes)",
                    storage.len()
                ),
            ));
        }
        Ok(Self {
            storage,
            start,
            len,
            pos: 0,
        })
    }

    /// Length of the window in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True for a zero-length window.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Byte offset of the window on the disk.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// The storage under the window.
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// Fill `buf` from window offset `offset`.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(offset, buf.len(), self.len)?;
        self.storage.read_at(self.start + offset, buf)
    }

    /// Write `buf` at window offset `offset`.
    pub fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        check_range(offset, buf.len(), self.len)?;
        self.storage.write_at(self.start + offset, buf)
    }

    fn remaining(&self, want: usize) -> usize {
        let left = self.len.saturating_sub(self.pos);
        usize::try_from(left).map_or(want, |l| l.min(want))
    }
}

/// A window is itself a storage (of its own length), so that code written against [`Storage`]
/// runs on a partition as well as on a whole disk or a file.
impl<S: Storage> Storage for Window<S> {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        Window::read_at(self, offset, buf)
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        Window::write_at(self, offset, buf)
    }
}

impl<S: Storage> Read for Window<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.remaining(buf.len());
        if n == 0 {
            return Ok(0);
        }
        self.read_at(self.pos, &mut buf[..n])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<S: Storage> Write for Window<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.remaining(buf.len());
        if n == 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "write past the end of the partition",
            ));
        }
        self.write_at(self.pos, &buf[..n])?;
        self.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<S: Storage> Seek for Window<S> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(o) => Some(o),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let target = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        self.pos = target;
        Ok(target)
    }
}

impl<S: Storage + 'static> ext4_view::Ext4Read for Window<S> {
    fn read(
        &mut self,
        start_byte: u64,
        dst: &mut [u8],
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync + 'static>> {
        self.read_at(start_byte, dst).map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::MemStorage;

    #[test]
    fn window_is_bounded() {
        let disk = MemStorage::new((0u8..=99).collect());
        let mut w = Window::new(&disk, 10, 20).unwrap();
        let mut buf = Vec::new();
        w.read_to_end(&mut buf).unwrap();
        assert_eq!(buf, (10u8..30).collect::<Vec<_>>());
        w.seek(SeekFrom::Start(18)).unwrap();
        assert_eq!(w.write(b"xyz").unwrap(), 2);
        assert!(w.write(b"q").is_err());
        let mut all = [0u8; 100];
        disk.read_at(0, &mut all).unwrap();
        assert_eq!(&all[28..31], b"xy\x1e");
    }

    #[test]
    fn window_is_a_storage() {
        let disk = MemStorage::new(vec![0; 100]);
        let w = Window::new(&disk, 10, 20).unwrap();
        let inner = Window::new(&w, 5, 10).unwrap();
        inner.write_at(0, b"ab").unwrap();
        assert!(inner.write_at(9, b"cd").is_err());
        assert_eq!(Storage::len(&w), 20);
        let mut b = [0u8; 2];
        disk.read_at(15, &mut b).unwrap();
        assert_eq!(&b, b"ab");
    }

    #[test]
    fn window_past_disk_end_is_refused() {
        let disk = MemStorage::new(vec![0; 100]);
        assert!(Window::new(&disk, 90, 11).is_err());
        assert!(Window::new(&disk, u64::MAX, 2).is_err());
        let w = Window::new(&disk, 90, 10).unwrap();
        assert!(w.read_at(5, &mut [0; 6]).is_err());
    }
}
