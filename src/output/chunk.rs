//! Chunk geometry: how an image is cut into independently compressed chunks, and which chunks
//! a node changed.
//!
//! Chunks are `chunk_size` bytes (a multiple of [`COW_BLOCK`]), aligned from byte 0; the last
//! one may be shorter. A chunk is *dirty* for a node when any of the node's changed overlay
//! blocks ([`crate::disk::CowDisk::changed_blocks`], in `COW_BLOCK` units) lies in it; a clean
//! chunk's bytes are the base's bytes, so its compressed form can be shared.

use crate::disk::cow::COW_BLOCK;

use super::OutputError;

/// The default chunk size: 4 MiB. Smaller chunks make per-node work smaller (a node
/// recompresses whole chunks) but compress a little worse (each chunk starts with an empty
/// dictionary); at 4 MiB the loss is below 1 % for zstd and a few percent for xz on real images.
pub const DEFAULT_CHUNK_SIZE: u64 = 4 << 20;

/// The default grain of dirty chunks: 256 KiB. A chunk a node changed is not recompressed
/// whole but as sub-blocks of this size, of which the node compresses only those holding a
/// changed block; the others are the base's, compressed once and shared like clean chunks
/// (see `docs/performance.md` for the measurements behind the choice).
pub const DEFAULT_GRAIN: u64 = 256 << 10;

/// The smallest chunk size accepted (64 KiB).
pub const MIN_CHUNK_SIZE: u64 = 64 << 10;

/// The largest chunk size accepted (64 MiB): a chunk and its compressed form are held in
/// memory per worker.
pub const MAX_CHUNK_SIZE: u64 = 64 << 20;

const COW_BLOCK_U64: u64 = COW_BLOCK as u64;

/// How an image of a given length is cut into chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkLayout {
    chunk_size: u64,
    image_len: u64,
}

impl ChunkLayout {
    /// The layout of an image of `image_len` bytes in chunks of `chunk_size`.
    ///
    /// # Errors
    /// [`OutputError::Invalid`] unless `chunk_size` is a multiple of 4 KiB between
    /// [`MIN_CHUNK_SIZE`] and [`MAX_CHUNK_SIZE`].
    pub fn new(image_len: u64, chunk_size: u64) -> Result<Self, OutputError> {
        if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size)
            || !chunk_size.is_multiple_of(COW_BLOCK_U64)
        {
            return Err(OutputError::Invalid(format!(
                "chunk size {chunk_size} is not a multiple of 4 KiB between 64 KiB and 64 MiB"
            )));
        }
        Ok(Self {
            chunk_size,
            image_len,
        })
    }

    /// The chunk size.
    pub fn chunk_size(&self) -> u64 {
        self.chunk_size
    }

    /// The image length.
    pub fn image_len(&self) -> u64 {
        self.image_len
    }

    /// The number of chunks.
    pub fn count(&self) -> u64 {
        self.image_len.div_ceil(self.chunk_size)
    }

    /// Byte offset and length of chunk `i`.
    pub fn range(&self, i: u64) -> (u64, usize) {
        let start = i.saturating_mul(self.chunk_size).min(self.image_len);
        let len = (self.image_len - start).min(self.chunk_size);
        (start, usize::try_from(len).unwrap_or(usize::MAX))
    }

    /// The largest chunk length, as a buffer size.
    pub fn max_len(&self) -> usize {
        usize::try_from(self.chunk_size.min(self.image_len)).unwrap_or(usize::MAX)
    }

    /// The sub-blocks of chunk `i` in `fine`, a layout of the same image whose chunk size
    /// divides this one's: the range of `fine`'s chunk indexes that tile chunk `i`.
    pub fn sub_blocks(&self, i: u64, fine: &ChunkLayout) -> std::ops::Range<u64> {
        let per = (self.chunk_size / fine.chunk_size).max(1);
        let start = i.saturating_mul(per).min(fine.count());
        start..start.saturating_add(per).min(fine.count())
    }

    /// Which chunks hold at least one of `changed_blocks` (ascending or not; indexes in
    /// `COW_BLOCK` units; blocks past the end are ignored).
    pub fn dirty(&self, changed_blocks: &[u64]) -> Vec<bool> {
        let n = usize::try_from(self.count()).unwrap_or(usize::MAX);
        let mut dirty = vec![false; n];
        let per_chunk = self.chunk_size / COW_BLOCK_U64;
        for &b in changed_blocks {
            if let Some(d) = usize::try_from(b / per_chunk)
                .ok()
                .and_then(|c| dirty.get_mut(c))
            {
                *d = true;
            }
        }
        dirty
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_table() {
        // (name, image_len, chunk_size, count, last chunk range)
        type Case = (&'static str, u64, u64, u64, (u64, usize));
        let cases: &[Case] = &[
            ("empty", 0, 1 << 20, 0, (0, 0)),
            ("exact", 4 << 20, 1 << 20, 4, (3 << 20, 1 << 20)),
            ("short tail", (4 << 20) + 512, 1 << 20, 5, (4 << 20, 512)),
            ("smaller than a chunk", 1000, 1 << 20, 1, (0, 1000)),
        ];
        for &(name, len, size, count, last) in cases {
            let l = ChunkLayout::new(len, size).unwrap();
            assert_eq!(l.count(), count, "case {name}");
            if count > 0 {
                assert_eq!(l.range(count - 1), last, "case {name}");
            }
            assert_eq!(l.range(count), (len, 0), "case {name}: past the end");
        }
    }

    #[test]
    fn invalid_sizes_are_refused() {
        for size in [0, 4096, MIN_CHUNK_SIZE + 1, MAX_CHUNK_SIZE * 2] {
            assert!(ChunkLayout::new(1 << 30, size).is_err(), "{size}");
        }
    }

    #[test]
    fn sub_blocks_tile_their_chunk() {
        let len = (10 << 20) + 5000;
        let coarse = ChunkLayout::new(len, 4 << 20).unwrap();
        let fine = ChunkLayout::new(len, 256 << 10).unwrap();
        let mut next = 0;
        for c in 0..coarse.count() {
            let subs = coarse.sub_blocks(c, &fine);
            assert_eq!(subs.start, next, "chunk {c}");
            let (start, clen) = coarse.range(c);
            let (first, _) = fine.range(subs.start);
            let (last, last_len) = fine.range(subs.end - 1);
            assert_eq!(first, start, "chunk {c}");
            assert_eq!(last + last_len as u64, start + clen as u64, "chunk {c}");
            next = subs.end;
        }
        assert_eq!(next, fine.count());
        assert!(coarse.sub_blocks(coarse.count(), &fine).is_empty());
    }

    #[test]
    fn dirty_chunks() {
        let l = ChunkLayout::new(10 << 20, 1 << 20).unwrap();
        // 256 blocks per chunk: block 0 -> chunk 0, 255 -> 0, 256 -> 1, 2559 -> 9.
        let d = l.dirty(&[0, 255, 256, 2559, 1_000_000]);
        let want: Vec<bool> = (0..10).map(|i| [0, 1, 9].contains(&i)).collect();
        assert_eq!(d, want);
    }
}
