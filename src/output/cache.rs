//! The cache of a base image's compressed chunks, shared by every node built from that base.
//!
//! A node's image is its base plus a few changed blocks, so most of its chunks are the base's
//! chunks byte for byte, and (see [`super::codec`]) so are their compressed forms. A
//! [`ChunkCache`] compresses each base chunk at most once, the first time some node needs it
//! (or ahead of time, in parallel, through [`ChunkCache::prefill`]), and hands the same bytes to
//! every later node. Chunks that every node changes (the one holding the MBR, for instance,
//! when each node gets its own disk identifier) are never compressed for the base at all.
//!
//! Memory stays bounded whatever the image size: compressed chunks go to an anonymous temporary
//! file (in a directory the caller chooses, normally the output directory); the cache keeps only
//! an offset and a length per chunk. Unlike the node images, this file goes through the page
//! cache: every node reads every piece again, and `ci/bench-output.sh` measured reads straight
//! from the device (`O_DIRECT`) at about twice the build time of cached ones. Each chunk slot has its own lock, so threads compress
//! different chunks in parallel and a thread that needs a chunk another thread is compressing
//! waits for it instead of compressing it again.

use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::FileExt;

use sha2::{Digest as _, Sha256};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::io::direct::AlignedBuf;
use std::sync::{Arc, Mutex};

use super::OutputError;
use super::chunk::ChunkLayout;
use super::codec::{ChunkEncoder, Levels};
use crate::disk::Storage;
use crate::output::ImageFormat;
use crate::progress::Progress;

/// Where one compressed chunk lies in the cache file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachedPiece {
    offset: u64,
    len: usize,
    /// Completion order: the piece was the `seq`-th written to the cache file (from 1).
    seq: u64,
    /// The piece's index size (see [`ChunkEncoder::compress`]).
    pub index_size: u64,
}

/// Reads cached pieces through a window of the cache file, so that a node's run of clean
/// chunks (whose pieces lie one after the other) costs a few large reads instead of one per
/// piece.
#[derive(Debug, Default)]
pub struct PieceReader {
    buf: AlignedBuf,
    /// File offset of the window.
    start: u64,
    /// Valid bytes in the window.
    len: usize,
    /// Pieces completed when the window was read: later ones may be missing from it.
    seq: u64,
}

/// Magic at the start of a piece file's footer (see [`super::store`]).
const PIECES_MAGIC: [u8; 8] = *b"PIIMGPC1";
/// Length of a piece file's footer: magic, slot count, data length, sha256.
const FOOTER_LEN: usize = 8 + 8 + 8 + 32;
/// Length of a piece file's table entry.
const ENTRY_LEN: u64 = 24;

/// Size of a [`PieceReader`] window.
const WINDOW: u64 = 16 << 20;

impl CachedPiece {
    /// Length of the compressed piece in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for an empty piece.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Reusable buffers for compressing chunks (one set per thread).
#[derive(Debug, Default)]
pub struct ChunkBuffers {
    /// Uncompressed chunk bytes.
    pub input: Vec<u8>,
    /// Compressed piece bytes.
    pub output: Vec<u8>,
}

/// The compressed chunks of one base image, in one format.
pub struct ChunkCache {
    base: Arc<dyn Storage>,
    layout: ChunkLayout,
    format: ImageFormat,
    levels: Levels,
    spill: File,
    spill_end: Mutex<u64>,
    /// Pieces completely written so far.
    written: AtomicU64,
    slots: Vec<Mutex<Option<CachedPiece>>>,
    compressed: AtomicU64,
}

impl std::fmt::Debug for ChunkCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkCache")
            .field("format", &self.format)
            .field("layout", &self.layout)
            .field("compressed", &self.compressed)
            .finish_non_exhaustive()
    }
}

fn poisoned() -> OutputError {
    OutputError::Cache(std::io::Error::other("chunk cache lock poisoned"))
}

impl ChunkCache {
    /// An empty cache for `base` in `format`, keeping compressed chunks in an anonymous file in
    /// `spill_dir`.
    ///
    /// # Errors
    /// The temporary file cannot be created, or `format` is raw.
    pub fn new(
        base: Arc<dyn Storage>,
        layout: ChunkLayout,
        format: ImageFormat,
        levels: Levels,
        spill_dir: &Path,
    ) -> Result<Self, OutputError> {
        if !format.is_compressed() {
            return Err(OutputError::Invalid(
                "raw images have no chunk cache".into(),
            ));
        }
        let spill = tempfile::tempfile_in(spill_dir)
            .map_err(|e| OutputError::file("creating the chunk cache in", spill_dir, e))?;
        let n = usize::try_from(layout.count()).unwrap_or(usize::MAX);
        Ok(Self {
            base,
            layout,
            format,
            levels,
            spill,
            spill_end: Mutex::new(0),
            written: AtomicU64::new(0),
            slots: (0..n).map(|_| Mutex::new(None)).collect(),
            compressed: AtomicU64::new(0),
        })
    }

    /// The format.
    pub fn format(&self) -> ImageFormat {
        self.format
    }

    /// The chunk layout.
    pub fn layout(&self) -> ChunkLayout {
        self.layout
    }

    /// A new encoder for this cache's format and levels.
    ///
    /// # Errors
    /// The compressor cannot be set up.
    pub fn encoder(&self) -> Result<ChunkEncoder, OutputError> {
        ChunkEncoder::new(self.format, &self.levels, self.layout.chunk_size()).map_err(|source| {
            OutputError::Compress {
                format: self.format,
                offset: 0,
                source,
            }
        })
    }

    /// How many base chunks have been compressed so far.
    pub fn compressed_chunks(&self) -> u64 {
        self.compressed.load(Ordering::Relaxed)
    }

    /// Bytes of compressed chunks held.
    pub fn cached_bytes(&self) -> u64 {
        self.spill_end.lock().map(|e| *e).unwrap_or(0)
    }

    /// The compressed piece of base chunk `i`, compressing it first unless done before.
    /// `data`, if given, must be chunk `i`'s bytes in the base (it saves reading them again).
    ///
    /// # Errors
    /// Reading the base, compressing or writing the cache file failed.
    pub fn piece(
        &self,
        i: u64,
        data: Option<&[u8]>,
        encoder: &mut ChunkEncoder,
        bufs: &mut ChunkBuffers,
    ) -> Result<CachedPiece, OutputError> {
        let slot = usize::try_from(i)
            .ok()
            .and_then(|s| self.slots.get(s))
            .ok_or_else(|| OutputError::Invalid(format!("chunk {i} is past the image end")))?;
        let mut slot = slot.lock().map_err(|_| poisoned())?;
        if let Some(piece) = *slot {
            return Ok(piece);
        }
        let (offset, len) = self.layout.range(i);
        let data = match data {
            Some(d) => d,
            None => {
                bufs.input.resize(len, 0);
                self.base
                    .read_at(offset, &mut bufs.input)
                    .map_err(|source| OutputError::Read { offset, source })?;
                &bufs.input
            }
        };
        bufs.output.clear();
        let index_size =
            encoder
                .compress(data, &mut bufs.output)
                .map_err(|source| OutputError::Compress {
                    format: self.format,
                    offset,
                    source,
                })?;
        let piece_len = bufs.output.len();
        let at = {
            let mut end = self.spill_end.lock().map_err(|_| poisoned())?;
            let at = *end;
            *end += piece_len as u64;
            at
        };
        self.spill
            .write_all_at(&bufs.output, at)
            .map_err(OutputError::Cache)?;
        let seq = self.written.fetch_add(1, Ordering::AcqRel) + 1;
        let piece = CachedPiece {
            offset: at,
            len: piece_len,
            seq,
            index_size,
        };
        *slot = Some(piece);
        self.compressed.fetch_add(1, Ordering::Relaxed);
        Ok(piece)
    }

    /// The bytes of `piece`, from `reader`'s window, which is moved to start at `piece` when
    /// the piece is not in it.
    ///
    /// # Errors
    /// Reading the cache file failed.
    pub fn read<'r>(
        &self,
        piece: &CachedPiece,
        reader: &'r mut PieceReader,
    ) -> Result<&'r [u8], OutputError> {
        let inside = piece.seq <= reader.seq
            && piece.offset >= reader.start
            && piece.offset + piece.len as u64 <= reader.start + reader.len as u64;
        if !inside {
            self.fill(piece, reader)?;
        }
        let at = usize::try_from(piece.offset - reader.start).unwrap_or(usize::MAX);
        let window = reader.buf.get(reader.len);
        window
            .get(at..at + piece.len)
            .ok_or_else(|| OutputError::Cache(std::io::ErrorKind::UnexpectedEof.into()))
    }

    /// Reads the window of `reader` from `piece`'s offset on: up to [`WINDOW`] bytes, at
    /// least the piece, at most to the end of the pieces reserved so far.
    fn fill(&self, piece: &CachedPiece, reader: &mut PieceReader) -> Result<(), OutputError> {
        // Every piece completed before this load is completely in the file before the read.
        reader.seq = self.written.load(Ordering::Acquire);
        let end = *self.spill_end.lock().map_err(|_| poisoned())?;
        let want = (piece.len as u64)
            .max(WINDOW)
            .min(end.saturating_sub(piece.offset));
        let want = usize::try_from(want).unwrap_or(usize::MAX);
        reader.start = piece.offset;
        reader.len = 0;
        let buf = reader.buf.get_mut(want);
        let mut got = 0;
        while got < want {
            match self
                .spill
                .read_at(&mut buf[got..], piece.offset + got as u64)
            {
                // The end of the file: pieces still being written lie past it.
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(OutputError::Cache(e)),
            }
        }
        reader.len = got;
        Ok(())
    }

    /// Compresses, with up to `jobs` threads, every chunk `i` with `wanted[i]` that is not
    /// cached yet. Progress is advanced by the uncompressed bytes of each chunk handled.
    ///
    /// # Errors
    /// The first failure; the other threads stop at their next chunk.
    pub fn prefill(
        &self,
        wanted: &[bool],
        jobs: usize,
        progress: &dyn Progress,
    ) -> Result<(), OutputError> {
        let todo: Vec<u64> = (0u64..)
            .zip(wanted)
            .filter(|&(i, &w)| w && !self.is_cached(i))
            .map(|(i, _)| i)
            .collect();
        let next = AtomicU64::new(0);
        let failed = AtomicBool::new(false);
        let threads = jobs.clamp(1, todo.len().max(1));
        let worker = || -> Result<(), OutputError> {
            let mut encoder = self.encoder()?;
            let mut bufs = ChunkBuffers::default();
            while !failed.load(Ordering::Relaxed) {
                if let Err(e) = crate::cancel::check() {
                    failed.store(true, Ordering::Relaxed);
                    return Err(OutputError::Interrupted(e));
                }
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(&i) = usize::try_from(k).ok().and_then(|k| todo.get(k)) else {
                    break;
                };
                if let Err(e) = self.piece(i, None, &mut encoder, &mut bufs) {
                    failed.store(true, Ordering::Relaxed);
                    return Err(e);
                }
                progress.advance(self.layout.range(i).1 as u64);
            }
            Ok(())
        };
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads).map(|_| s.spawn(worker)).collect();
            let mut result = Ok(());
            for h in handles {
                let r = h.join().unwrap_or_else(|_| {
                    Err(OutputError::Cache(std::io::Error::other("worker panicked")))
                });
                if result.is_ok() {
                    result = r;
                }
            }
            result
        })
    }

    /// Loads the pieces of the piece file at `path` (written by [`Self::store`] for the same
    /// base, format, levels and layout; see [`super::store`]) into this cache, which must be
    /// new. Returns how many pieces were loaded: 0 when there is no file, or when the file is
    /// not valid (it is then removed, best effort). Refreshes the file's modification time.
    ///
    /// # Errors
    /// The cache is not new, or its own file cannot be written.
    pub fn load(&self, path: &Path) -> Result<u64, OutputError> {
        if self.cached_bytes() != 0 || self.compressed_chunks() != 0 {
            return Err(OutputError::Invalid(
                "pieces are loaded into a new cache only".into(),
            ));
        }
        let Ok(file) = File::open(path) else {
            return Ok(0);
        };
        match self.load_from(&file) {
            Ok(Some(n)) => {
                let _ = file.set_modified(std::time::SystemTime::now());
                Ok(n)
            }
            Ok(None) => {
                drop(file);
                let _ = std::fs::remove_file(path);
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }

    /// [`Self::load`] of an open file: `Ok(None)` when it is not valid (nothing loaded).
    fn load_from(&self, file: &File) -> Result<Option<u64>, OutputError> {
        let Ok(meta) = file.metadata() else {
            return Ok(None);
        };
        let file_len = meta.len();
        let mut footer = [0u8; FOOTER_LEN];
        if file_len < FOOTER_LEN as u64
            || file
                .read_exact_at(&mut footer, file_len - FOOTER_LEN as u64)
                .is_err()
            || footer[..8] != PIECES_MAGIC
        {
            return Ok(None);
        }
        let word = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&footer[at..at + 8]);
            u64::from_le_bytes(b)
        };
        let (count, data_len) = (word(8), word(16));
        if count != self.slots.len() as u64
            || count
                .checked_mul(ENTRY_LEN)
                .and_then(|t| t.checked_add(data_len))
                .and_then(|t| t.checked_add(FOOTER_LEN as u64))
                != Some(file_len)
        {
            return Ok(None);
        }
        // Copy the data into this cache's file, hashing everything up to the digest.
        let mut hash = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut at = 0u64;
        while at < data_len {
            let n = usize::try_from((data_len - at).min(buf.len() as u64)).unwrap_or(0);
            if file.read_exact_at(&mut buf[..n], at).is_err() {
                return Ok(None);
            }
            hash.update(&buf[..n]);
            self.spill
                .write_all_at(&buf[..n], at)
                .map_err(OutputError::Cache)?;
            at += n as u64;
        }
        let mut table = vec![0u8; usize::try_from(count * ENTRY_LEN).unwrap_or(0)];
        if file.read_exact_at(&mut table, data_len).is_err() {
            return Ok(None);
        }
        hash.update(&table);
        hash.update(&footer[..FOOTER_LEN - 32]);
        if hash.finalize()[..] != footer[FOOTER_LEN - 32..] {
            return Ok(None);
        }
        let mut pieces = Vec::with_capacity(self.slots.len());
        for e in table.chunks_exact(24) {
            let w = |k: usize| {
                let mut b = [0u8; 8];
                b.copy_from_slice(&e[k * 8..k * 8 + 8]);
                u64::from_le_bytes(b)
            };
            let (offset, len, index_size) = (w(0), w(1), w(2));
            if len == u64::MAX {
                pieces.push(None);
                continue;
            }
            if offset.checked_add(len).is_none_or(|end| end > data_len) || index_size > len {
                return Ok(None);
            }
            pieces.push(Some(CachedPiece {
                offset,
                len: usize::try_from(len).unwrap_or(usize::MAX),
                seq: 1,
                index_size,
            }));
        }
        let mut loaded = 0;
        for (slot, piece) in self.slots.iter().zip(pieces) {
            if piece.is_some() {
                loaded += 1;
            }
            *slot.lock().map_err(|_| poisoned())? = piece;
        }
        *self.spill_end.lock().map_err(|_| poisoned())? = data_len;
        self.written.store(1, Ordering::Release);
        Ok(Some(loaded))
    }

    /// Writes this cache's pieces as the piece file `path` (see [`super::store`]), unless a
    /// file of that name exists: it holds pieces of the same key and may be in use, so it is
    /// kept. Returns whether the file was written. Call it when no thread uses the cache.
    ///
    /// # Errors
    /// Reading this cache's file or writing the piece file failed.
    pub fn store(&self, path: &Path) -> Result<bool, OutputError> {
        if path.exists() {
            return Ok(false);
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        let cache_err = |e: crate::disk::source::SourceError| {
            OutputError::Cache(std::io::Error::other(crate::error::chain(&e)))
        };
        let mut tmp = crate::disk::source::cache::new_partial(dir).map_err(cache_err)?;
        let data_len = self.cached_bytes();
        let mut hash = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut at = 0u64;
        let write_err = |e| OutputError::file("writing", path, e);
        while at < data_len {
            let n = usize::try_from((data_len - at).min(buf.len() as u64)).unwrap_or(0);
            self.spill
                .read_exact_at(&mut buf[..n], at)
                .map_err(OutputError::Cache)?;
            hash.update(&buf[..n]);
            tmp.write_all(&buf[..n]).map_err(write_err)?;
            at += n as u64;
        }
        let mut tail = Vec::with_capacity(self.slots.len() * 24 + FOOTER_LEN);
        for slot in &self.slots {
            let piece = *slot.lock().map_err(|_| poisoned())?;
            let (offset, len, index_size) = match piece {
                Some(p) => (p.offset, p.len as u64, p.index_size),
                None => (0, u64::MAX, 0),
            };
            for w in [offset, len, index_size] {
                tail.extend_from_slice(&w.to_le_bytes());
            }
        }
        tail.extend_from_slice(&PIECES_MAGIC);
        tail.extend_from_slice(&(self.slots.len() as u64).to_le_bytes());
        tail.extend_from_slice(&data_len.to_le_bytes());
        hash.update(&tail);
        tail.extend_from_slice(&hash.finalize());
        tmp.write_all(&tail).map_err(write_err)?;
        crate::disk::source::cache::persist_read_only(tmp, path).map_err(cache_err)?;
        Ok(true)
    }

    fn is_cached(&self, i: u64) -> bool {
        usize::try_from(i)
            .ok()
            .and_then(|s| self.slots.get(s))
            .and_then(|s| s.lock().ok().map(|p| p.is_some()))
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::MemStorage;
    use crate::progress::NoProgress;

    fn base() -> Arc<dyn Storage> {
        let bytes: Vec<u8> = (0..(1u32 << 20) + 5000)
            .map(|i| u8::try_from(i / 4096 % 7).unwrap())
            .collect();
        Arc::new(MemStorage::new(bytes))
    }

    #[test]
    fn compresses_each_chunk_once_and_reuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let base = base();
        let layout = ChunkLayout::new(base.len(), 256 << 10).unwrap();
        let cache = ChunkCache::new(
            base,
            layout,
            ImageFormat::Zstd,
            Levels::default(),
            dir.path(),
        )
        .unwrap();
        let mut enc = cache.encoder().unwrap();
        let mut bufs = ChunkBuffers::default();
        let p = cache.piece(1, None, &mut enc, &mut bufs).unwrap();
        let again = cache.piece(1, None, &mut enc, &mut bufs).unwrap();
        assert_eq!(p, again);
        assert_eq!(cache.compressed_chunks(), 1);
        cache
            .prefill(&[true, true, false, true, true], 3, &NoProgress)
            .unwrap();
        assert_eq!(
            cache.compressed_chunks(),
            4,
            "chunk 2 not wanted, chunk 1 cached"
        );
        let mut reader = PieceReader::default();
        let out = cache.read(&p, &mut reader).unwrap();
        let back = zstd::stream::decode_all(out).unwrap();
        let mut want = vec![0u8; 256 << 10];
        cache.base.read_at(256 << 10, &mut want).unwrap();
        assert_eq!(back, want);
        assert!(
            cache.piece(5, None, &mut enc, &mut bufs).is_err(),
            "past the end"
        );
    }

    #[test]
    fn raw_has_no_cache() {
        let dir = tempfile::tempdir().unwrap();
        let layout = ChunkLayout::new(1 << 20, 256 << 10).unwrap();
        let r = ChunkCache::new(
            base(),
            layout,
            ImageFormat::Raw,
            Levels::default(),
            dir.path(),
        );
        assert!(matches!(r, Err(OutputError::Invalid(_))));
    }
}
