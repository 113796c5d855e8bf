//! rust-fs-ext4's `BlockDevice` on a partition [`Window`].
//!
//! Reads and writes go straight to the window (window-relative byte offsets, the whole window
//! being the filesystem). `flush` is a no-op: piimage writes into a scratch copy or a
//! copy-on-write overlay, never into the user's image, so the writer's per-transaction fences
//! (four `flush` calls per journaled operation) buy nothing but time
//! (`docs/ext4-writer.md`). Durability, where it matters, is the caller's
//! business once the whole image is written.

use std::sync::Arc;

use fs_ext4::block_io::BlockDevice;

use crate::disk::{Storage, Window};

/// A [`Window`] seen as a writable block device.
#[derive(Debug)]
pub struct WindowDevice<S> {
    window: Arc<Window<S>>,
    writable: bool,
}

impl<S: Storage> WindowDevice<S> {
    /// A device over `window`.
    pub fn new(window: Arc<Window<S>>) -> Self {
        Self {
            window,
            writable: true,
        }
    }

    /// A device over `window` that refuses writes: the crate then mounts read-only (and
    /// replays no journal; [`crate::fs::ext4::walk`] reads finished, clean filesystems).
    pub fn read_only(window: Arc<Window<S>>) -> Self {
        Self {
            window,
            writable: false,
        }
    }
}

impl<S: Storage> BlockDevice for WindowDevice<S> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> fs_ext4::Result<()> {
        Ok(self.window.read_at(offset, buf)?)
    }

    fn size_bytes(&self) -> u64 {
        self.window.len()
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> fs_ext4::Result<()> {
        if !self.writable {
            return Err(fs_ext4::Error::Io(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "read-only device",
            )));
        }
        Ok(self.window.write_at(offset, buf)?)
    }

    fn flush(&self) -> fs_ext4::Result<()> {
        Ok(())
    }

    fn is_writable(&self) -> bool {
        self.writable
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::MemStorage;

    #[test]
    fn offsets_are_window_relative() {
        let disk = MemStorage::new(vec![0; 64]);
        let dev = WindowDevice::new(Arc::new(Window::new(&disk, 16, 32).unwrap()));
        dev.write_at(4, b"abc").unwrap();
        let mut b = [0u8; 3];
        disk.read_at(20, &mut b).unwrap();
        assert_eq!(&b, b"abc");
        assert_eq!(dev.size_bytes(), 32);
        assert!(dev.write_at(31, b"xy").is_err());
    }
}
