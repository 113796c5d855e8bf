//! A copy-on-write disk: reads fall through to a read-only base, writes land in a per-node
//! overlay of changed blocks.
//!
//! The overlay keeps changed blocks in memory up to a bound, then spills further blocks to an
//! anonymous temporary file. Many nodes share one base image; the base is only ever read. The
//! output stage walks [`CowDisk::changed_blocks`] to know what differs from the base.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Mutex;

use super::storage::{Storage, check_range};

/// Overlay granularity in bytes (the ext4 block size of every official image).
pub const COW_BLOCK: usize = 4096;
const COW_BLOCK_U64: u64 = COW_BLOCK as u64;

/// Default bound on overlay memory before blocks spill to a temporary file (64 MiB).
pub const DEFAULT_MEMORY_LIMIT: usize = 64 << 20;

enum Slot {
    Mem(Box<[u8; COW_BLOCK]>),
    Spilled(u64),
}

struct Overlay {
    blocks: BTreeMap<u64, Slot>,
    mem_bytes: usize,
    mem_limit: usize,
    spill: Option<File>,
    spill_slots: u64,
}

impl Overlay {
    fn load(&self, slot: &Slot, buf: &mut [u8; COW_BLOCK]) -> io::Result<()> {
        match slot {
            Slot::Mem(b) => buf.copy_from_slice(&b[..]),
            Slot::Spilled(i) => self
                .spill
                .as_ref()
                .ok_or_else(|| io::Error::other("spill file missing"))?
                .read_exact_at(buf, i * COW_BLOCK_U64)?,
        }
        Ok(())
    }

    fn store(&mut self, index: u64, data: &[u8; COW_BLOCK]) -> io::Result<()> {
        match self.blocks.get_mut(&index) {
            Some(Slot::Mem(b)) => {
                b.copy_from_slice(data);
                return Ok(());
            }
            Some(Slot::Spilled(i)) => {
                let off = *i * COW_BLOCK_U64;
                return self
                    .spill
                    .as_ref()
                    .ok_or_else(|| io::Error::other("spill file missing"))?
                    .write_all_at(data, off);
            }
            None => {}
        }
        if self.mem_bytes + COW_BLOCK <= self.mem_limit {
            self.blocks.insert(index, Slot::Mem(Box::new(*data)));
            self.mem_bytes += COW_BLOCK;
            return Ok(());
        }
        if self.spill.is_none() {
            self.spill = Some(tempfile::tempfile()?);
        }
        let slot = self.spill_slots;
        self.spill
            .as_ref()
            .ok_or_else(|| io::Error::other("spill file missing"))?
            .write_all_at(data, slot * COW_BLOCK_U64)?;
        self.spill_slots += 1;
        self.blocks.insert(index, Slot::Spilled(slot));
        Ok(())
    }
}

/// The pieces of the byte range `[offset, offset + len)` by overlay block:
/// (block index, offset inside the block, length, position in the caller's buffer).
fn spans(offset: u64, len: usize) -> impl Iterator<Item = (u64, usize, usize, usize)> {
    let mut at = 0;
    std::iter::from_fn(move || {
        if at >= len {
            return None;
        }
        let pos = offset + at as u64;
        // Always below COW_BLOCK, so it fits.
        let within = usize::try_from(pos % COW_BLOCK_U64).unwrap_or(0);
        let n = (COW_BLOCK - within).min(len - at);
        let span = (pos / COW_BLOCK_U64, within, n, at);
        at += n;
        Some(span)
    })
}

/// A disk whose writes go to an overlay over a read-only base.
pub struct CowDisk<B> {
    base: B,
    /// Length of the disk: the base's, or more for a grown disk (zeros past the base).
    len: u64,
    overlay: Mutex<Overlay>,
}

impl<B> std::fmt::Debug for CowDisk<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (n, mem) = self
            .overlay
            .lock()
            .map(|o| (o.blocks.len(), o.mem_bytes))
            .unwrap_or_default();
        f.debug_struct("CowDisk")
            .field("changed_blocks", &n)
            .field("overlay_memory", &mem)
            .finish_non_exhaustive()
    }
}

fn poisoned() -> io::Error {
    io::Error::other("copy-on-write overlay lock poisoned")
}

/// Statistics about an overlay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OverlayStats {
    /// Blocks that differ from (or were written over) the base.
    pub changed_blocks: u64,
    /// Bytes held in memory.
    pub memory_bytes: u64,
    /// Bytes spilled to the temporary file.
    pub spilled_bytes: u64,
}

impl<B: Storage> CowDisk<B> {
    /// An overlay over `base` with the default memory bound.
    pub fn new(base: B) -> Self {
        Self::with_memory_limit(base, DEFAULT_MEMORY_LIMIT)
    }

    /// An overlay over `base` keeping at most `limit` bytes of changed blocks in memory.
    pub fn with_memory_limit(base: B, limit: usize) -> Self {
        Self {
            len: base.len(),
            base,
            overlay: Mutex::new(Overlay {
                blocks: BTreeMap::new(),
                mem_bytes: 0,
                mem_limit: limit,
                spill: None,
                spill_slots: 0,
            }),
        }
    }

    /// An overlay over `base` that is `len` bytes long: past the base's end it reads zeros
    /// until written (a disk image grown to a card's size).
    ///
    /// # Errors
    /// `len` is shorter than the base.
    pub fn grown(base: B, len: u64) -> io::Result<Self> {
        if len < base.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot shrink a {} byte disk to {len} bytes", base.len()),
            ));
        }
        let mut disk = Self::new(base);
        disk.len = len;
        Ok(disk)
    }

    /// Reads `buf` from the base at `offset`; past the base's end the bytes are zeros.
    fn read_base(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let avail = usize::try_from(self.base.len().saturating_sub(offset))
            .map_or(buf.len(), |a| a.min(buf.len()));
        buf[avail..].fill(0);
        if avail > 0 {
            self.base.read_at(offset, &mut buf[..avail])?;
        }
        Ok(())
    }

    /// The base storage.
    pub fn base(&self) -> &B {
        &self.base
    }

    /// Indexes (in [`COW_BLOCK`] units) of blocks written through this disk, ascending.
    pub fn changed_blocks(&self) -> io::Result<Vec<u64>> {
        let o = self.overlay.lock().map_err(|_| poisoned())?;
        Ok(o.blocks.keys().copied().collect())
    }

    /// Memory and spill usage.
    pub fn stats(&self) -> OverlayStats {
        self.overlay
            .lock()
            .map(|o| OverlayStats {
                changed_blocks: o.blocks.len() as u64,
                memory_bytes: o.mem_bytes as u64,
                spilled_bytes: o.spill_slots * COW_BLOCK_U64,
            })
            .unwrap_or_default()
    }

    /// Reads one whole block of the disk as it is now (the base's tail block is zero-padded).
    fn read_block(&self, o: &Overlay, index: u64, buf: &mut [u8; COW_BLOCK]) -> io::Result<()> {
        if let Some(slot) = o.blocks.get(&index) {
            return o.load(slot, buf);
        }
        let start = index * COW_BLOCK_U64;
        self.read_base(start, buf)
    }
}

impl<B: Storage> Storage for CowDisk<B> {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(offset, buf.len(), self.len())?;
        let o = self.overlay.lock().map_err(|_| poisoned())?;
        if o.blocks.is_empty() {
            return self.read_base(offset, buf);
        }
        let mut block = [0u8; COW_BLOCK];
        // Untouched blocks are read from the base in runs, one read per run.
        let mut run: Option<usize> = None;
        for (index, within, n, at) in spans(offset, buf.len()) {
            match o.blocks.get(&index) {
                Some(slot) => {
                    if let Some(start) = run.take() {
                        self.read_base(offset + start as u64, &mut buf[start..at])?;
                    }
                    o.load(slot, &mut block)?;
                    buf[at..at + n].copy_from_slice(&block[within..within + n]);
                }
                None => {
                    run.get_or_insert(at);
                }
            }
        }
        if let Some(start) = run {
            self.read_base(offset + start as u64, &mut buf[start..])?;
        }
        Ok(())
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        check_range(offset, buf.len(), self.len())?;
        let mut o = self.overlay.lock().map_err(|_| poisoned())?;
        let mut block = [0u8; COW_BLOCK];
        for (index, within, n, at) in spans(offset, buf.len()) {
            if n < COW_BLOCK {
                self.read_block(&o, index, &mut block)?;
            }
            block[within..within + n].copy_from_slice(&buf[at..at + n]);
            o.store(index, &block)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::disk::MemStorage;

    fn pattern(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| u8::try_from(i * 7 % 251).unwrap())
            .collect()
    }

    #[test]
    fn reads_fall_through_and_writes_stay_in_the_overlay() {
        let base = MemStorage::new(pattern(5 * COW_BLOCK + 100));
        let disk = CowDisk::new(&base);
        disk.write_at(4090, b"0123456789").unwrap();
        let mut buf = [0u8; 20];
        disk.read_at(4085, &mut buf).unwrap();
        let mut want = pattern(5 * COW_BLOCK + 100)[4085..4105].to_vec();
        want[5..15].copy_from_slice(b"0123456789");
        assert_eq!(&buf[..], &want[..]);
        assert_eq!(disk.changed_blocks().unwrap(), [0, 1]);
        assert_eq!(
            base.to_vec(),
            pattern(5 * COW_BLOCK + 100),
            "base untouched"
        );
        // The partial tail block.
        disk.write_at(5 * COW_BLOCK as u64 + 98, b"ab").unwrap();
        assert!(disk.write_at(5 * COW_BLOCK as u64 + 99, b"ab").is_err());
    }

    #[test]
    fn spills_beyond_the_memory_bound() {
        let base = MemStorage::new(vec![0; 64 * COW_BLOCK]);
        let disk = CowDisk::with_memory_limit(&base, 4 * COW_BLOCK);
        for i in 0..10u8 {
            disk.write_at(u64::from(i) * COW_BLOCK_U64 * 3, &[i + 1; 10])
                .unwrap();
        }
        let s = disk.stats();
        assert_eq!(s.changed_blocks, 10);
        assert_eq!(s.memory_bytes, 4 * COW_BLOCK_U64);
        assert_eq!(s.spilled_bytes, 6 * COW_BLOCK_U64);
        for i in 0..10u8 {
            let mut b = [0u8; 11];
            disk.read_at(u64::from(i) * COW_BLOCK_U64 * 3, &mut b)
                .unwrap();
            assert_eq!(&b[..10], &[i + 1; 10]);
            assert_eq!(b[10], 0);
        }
        // Rewriting a spilled block updates it in place.
        disk.write_at(27 * COW_BLOCK_U64 + 5, b"zz").unwrap();
        let mut b = [0u8; 8];
        disk.read_at(27 * COW_BLOCK_U64, &mut b).unwrap();
        assert_eq!(&b, &[10, 10, 10, 10, 10, b'z', b'z', 10]);
        assert_eq!(disk.stats().changed_blocks, 10);
    }

    #[test]
    fn a_grown_disk_reads_zeros_past_the_base_until_written() {
        let base = MemStorage::new(pattern(COW_BLOCK + 100));
        assert!(CowDisk::grown(&base, 10).is_err(), "no shrinking");
        let disk = CowDisk::grown(&base, 4 * COW_BLOCK_U64).unwrap();
        assert_eq!(disk.len(), 4 * COW_BLOCK_U64);
        let mut all = vec![1u8; 4 * COW_BLOCK];
        disk.read_at(0, &mut all).unwrap();
        assert_eq!(&all[..COW_BLOCK + 100], &pattern(COW_BLOCK + 100)[..]);
        assert!(all[COW_BLOCK + 100..].iter().all(|&b| b == 0));
        disk.write_at(3 * COW_BLOCK_U64 + 1, b"xy").unwrap();
        disk.write_at(COW_BLOCK_U64 + 99, b"ab").unwrap();
        disk.read_at(0, &mut all).unwrap();
        assert_eq!(&all[COW_BLOCK + 99..COW_BLOCK + 102], b"ab\0");
        assert_eq!(&all[3 * COW_BLOCK..3 * COW_BLOCK + 4], b"\0xy\0");
        assert!(disk.write_at(4 * COW_BLOCK_U64 - 1, b"zz").is_err());
        assert_eq!(base.to_vec(), pattern(COW_BLOCK + 100));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Any sequence of writes reads back like the same writes on a plain in-memory disk,
        /// whatever the memory bound, and never changes the base.
        #[test]
        fn behaves_like_a_plain_disk(
            writes in prop::collection::vec((0u64..40_000, prop::collection::vec(any::<u8>(), 1..9000)), 1..20),
            limit_blocks in 0usize..6,
        ) {
            let len = 48_000usize;
            let base = MemStorage::new(pattern(len));
            let model = MemStorage::new(pattern(len));
            let disk = CowDisk::with_memory_limit(&base, limit_blocks * COW_BLOCK);
            for (off, data) in &writes {
                let n = data.len().min(len - usize::try_from(*off).unwrap());
                disk.write_at(*off, &data[..n]).unwrap();
                model.write_at(*off, &data[..n]).unwrap();
            }
            let mut got = vec![0u8; len];
            disk.read_at(0, &mut got).unwrap();
            prop_assert_eq!(got, model.to_vec());
            prop_assert_eq!(base.to_vec(), pattern(len));
        }
    }
}
