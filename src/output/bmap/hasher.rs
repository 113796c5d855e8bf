//! The sha256 of every mapped range, computed while the image streams past.
//!
//! Ranges that no changed block touches hold the base's bytes; their digests come from the
//! [`BaseCache`] when a previous node computed them, and are stored there when this node
//! computes them. [`RangeHasher::needs`] tells the streaming pass which chunks it must read for
//! the ranges still to hash.

use sha2::{Digest as _, Sha256};

use super::BlockMap;
use crate::disk::cow::COW_BLOCK;
use crate::io::hashing::Sha256Digest;
use crate::output::BaseCache;
use crate::output::chunk::ChunkLayout;

/// Hashes the ranges of a [`BlockMap`] from sequential chunks of the image.
#[derive(Debug)]
pub struct RangeHasher {
    /// Byte spans of the ranges.
    spans: Vec<(u64, u64)>,
    /// Whether each range's bytes are the base's (no changed block in it).
    clean: Vec<bool>,
    digests: Vec<Option<Sha256Digest>>,
    /// The first range not finished yet, and its running hash.
    next: usize,
    running: Option<Sha256>,
}

impl RangeHasher {
    /// Plans the hashing of `map`'s ranges for an image whose blocks `changed_blocks` (sorted,
    /// in `COW_BLOCK` units) differ from the base of `cache`; takes known digests from `cache`.
    pub fn new(map: &BlockMap, changed_blocks: &[u64], cache: &BaseCache) -> Self {
        let spans: Vec<(u64, u64)> = map.ranges.iter().map(|r| map.byte_span(r)).collect();
        let block = COW_BLOCK as u64;
        let clean: Vec<bool> = spans
            .iter()
            .map(|&(s, e)| {
                let first = s / block;
                let last = (e - 1) / block;
                let i = changed_blocks.partition_point(|&b| b < first);
                changed_blocks.get(i).is_none_or(|&b| b > last)
            })
            .collect();
        let digests = spans
            .iter()
            .zip(&clean)
            .map(|(&(s, e), &c)| if c { cache.range_digest(s, e) } else { None })
            .collect();
        Self {
            spans,
            clean,
            digests,
            next: 0,
            running: None,
        }
    }

    /// Which chunks of `layout` must be fed to hash the ranges whose digest is not known.
    pub fn needs(&self, layout: &ChunkLayout) -> Vec<bool> {
        let n = usize::try_from(layout.count()).unwrap_or(0);
        let mut need = vec![false; n];
        let size = layout.chunk_size();
        for (&(s, e), d) in self.spans.iter().zip(&self.digests) {
            if d.is_some() {
                continue;
            }
            for c in s / size..=(e - 1) / size {
                if let Some(x) = usize::try_from(c).ok().and_then(|c| need.get_mut(c)) {
                    *x = true;
                }
            }
        }
        need
    }

    /// Feeds the image bytes `data` found at `offset`. Every chunk that [`Self::needs`] marks
    /// must be fed, in ascending order; others may be.
    pub fn feed(&mut self, offset: u64, data: &[u8], cache: &BaseCache) {
        let end = offset + data.len() as u64;
        while let Some(&(s, e)) = self.spans.get(self.next) {
            if s >= end {
                break;
            }
            if self.digests[self.next].is_some() {
                self.next += 1;
                continue;
            }
            let lo = s.max(offset);
            let hi = e.min(end);
            if lo < hi {
                let running = self.running.get_or_insert_with(Sha256::new);
                let from = usize::try_from(lo - offset).unwrap_or(0);
                let to = usize::try_from(hi - offset).unwrap_or(0);
                running.update(&data[from..to]);
            }
            if e > end {
                break;
            }
            let digest =
                Sha256Digest::from_bytes(self.running.take().unwrap_or_default().finalize().into());
            if self.clean[self.next] {
                cache.remember_range(s, e, digest);
            }
            self.digests[self.next] = Some(digest);
            self.next += 1;
        }
    }

    /// The digests of all ranges, once every needed chunk was fed; `None` if some is missing.
    pub fn finish(self) -> Option<Vec<Sha256Digest>> {
        self.digests.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::disk::{MemStorage, Storage};
    use crate::output::CacheConfig;
    use crate::output::bmap::BlockRange;

    #[test]
    fn clean_ranges_are_hashed_once_per_base() {
        let dir = tempfile::tempdir().unwrap();
        let bytes: Vec<u8> = (0..(1u32 << 20))
            .map(|i| u8::try_from(i % 251).unwrap())
            .collect();
        let base: Arc<dyn Storage> = Arc::new(MemStorage::new(bytes.clone()));
        let config = CacheConfig {
            chunk_size: 256 << 10,
            ..CacheConfig::new(dir.path())
        };
        let cache = BaseCache::new(base, config).unwrap();
        let layout = cache.layout();
        // Range A: blocks 1-70 (crosses a chunk boundary); range B: blocks 200-201.
        let map = BlockMap {
            image_size: 1 << 20,
            ranges: vec![
                BlockRange { first: 1, last: 70 },
                BlockRange {
                    first: 200,
                    last: 201,
                },
            ],
            notes: vec![],
        };
        let want = [
            Sha256Digest::of(&bytes[4096..71 * 4096]),
            Sha256Digest::of(&bytes[200 * 4096..202 * 4096]),
        ];
        let feed_all = |h: &mut RangeHasher, need: &[bool]| {
            for (c, &n) in (0u64..).zip(need) {
                if n {
                    let (off, len) = layout.range(c);
                    let start = usize::try_from(off).unwrap();
                    h.feed(off, &bytes[start..start + len], &cache);
                }
            }
        };
        // A node that changed block 201: range A is clean, B is not.
        let mut first = RangeHasher::new(&map, &[201], &cache);
        let need = first.needs(&layout);
        assert_eq!(need, [true, true, false, true]);
        feed_all(&mut first, &need);
        assert_eq!(first.finish().unwrap(), want);
        // Another such node: A's digest comes from the cache, only B's chunk is needed.
        let mut second = RangeHasher::new(&map, &[201, 500], &cache);
        let need = second.needs(&layout);
        assert_eq!(need, [false, false, false, true]);
        feed_all(&mut second, &need);
        assert_eq!(second.finish().unwrap(), want);
    }
}
