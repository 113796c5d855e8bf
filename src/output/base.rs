//! Everything the output stage computes once per base image and shares across its nodes.
//!
//! A [`BaseCache`] holds, for one base image:
//! - one [`ChunkCache`] per compressed format, created on first use;
//! - one more [`ChunkCache`] per compressed format at the *grain* (a fraction of the chunk
//!   size): a chunk a node changed is written as sub-blocks of the grain, the node's changed
//!   sub-blocks compressed for it, the others taken from this cache (see [`CacheConfig::grain`]);
//! - the sha256 of byte ranges of the base that bmaps map (a node's bmap range that no changed
//!   block touches has the base's bytes, so its digest is computed once);
//! - the base file's path, if it is a file, so raw outputs can start as a clone or sparse copy
//!   of it;
//! - optionally a [`PieceStore`]: each chunk cache then starts from the piece file an earlier
//!   build left, and [`BaseCache::persist`] writes the pieces for the next build.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::OutputError;
use super::cache::ChunkCache;
use super::chunk::{ChunkLayout, DEFAULT_CHUNK_SIZE, DEFAULT_GRAIN};
use super::codec::Levels;
use super::store::PieceStore;
use crate::disk::{FileStorage, Storage};
use crate::io::hashing::Sha256Digest;
use crate::output::ImageFormat;

/// How a base's outputs are compressed and where the cache lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// Chunk size in bytes (see [`super::chunk`]).
    pub chunk_size: u64,
    /// Sub-block size of dirty chunks, in bytes: a multiple of 4 KiB of at least 64 KiB that
    /// divides `chunk_size`. A grain of 0 or of at least `chunk_size` turns sub-blocks off
    /// (a node then recompresses each chunk it changed whole).
    pub grain: u64,
    /// Compression levels.
    pub levels: Levels,
    /// Directory for the cache's anonymous temporary files (normally the output directory:
    /// the cache of a base holds about one compressed image per format).
    pub work_dir: PathBuf,
}

impl CacheConfig {
    /// Default chunk size and levels, cache files in `work_dir`.
    pub fn new(work_dir: impl Into<PathBuf>) -> Self {
        Self {
            chunk_size: DEFAULT_CHUNK_SIZE,
            grain: DEFAULT_GRAIN,
            levels: Levels::default(),
            work_dir: work_dir.into(),
        }
    }
}

/// What the output stage keeps per base image; see the module docs.
pub struct BaseCache {
    base: Arc<dyn Storage>,
    base_file: Option<PathBuf>,
    layout: ChunkLayout,
    fine_layout: Option<ChunkLayout>,
    config: CacheConfig,
    chunks: Mutex<Vec<Arc<ChunkCache>>>,
    fine: Mutex<Vec<Arc<ChunkCache>>>,
    store: Option<PieceStore>,
    range_digests: Mutex<HashMap<(u64, u64), Sha256Digest>>,
}

impl std::fmt::Debug for BaseCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BaseCache")
            .field("base_file", &self.base_file)
            .field("layout", &self.layout)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn poisoned() -> OutputError {
    OutputError::Cache(std::io::Error::other("base cache lock poisoned"))
}

impl BaseCache {
    /// A cache for the base image `base`. Raw outputs of its nodes are streamed (see
    /// [`Self::with_base_file`] for cloning instead).
    ///
    /// # Errors
    /// An invalid chunk size or grain.
    pub fn new(base: Arc<dyn Storage>, config: CacheConfig) -> Result<Self, OutputError> {
        let layout = ChunkLayout::new(base.len(), config.chunk_size)?;
        let fine_layout = if config.grain == 0 || config.grain >= config.chunk_size {
            None
        } else if !config.chunk_size.is_multiple_of(config.grain) {
            return Err(OutputError::Invalid(format!(
                "grain {} does not divide the chunk size {}",
                config.grain, config.chunk_size
            )));
        } else {
            Some(ChunkLayout::new(base.len(), config.grain)?)
        };
        Ok(Self {
            base,
            base_file: None,
            layout,
            fine_layout,
            config,
            chunks: Mutex::new(Vec::new()),
            fine: Mutex::new(Vec::new()),
            store: None,
            range_digests: Mutex::new(HashMap::new()),
        })
    }

    /// A cache for the raw base image file at `path`, opened read-only; raw node outputs start
    /// as a reflink clone (or sparse copy) of it.
    ///
    /// # Errors
    /// The file cannot be opened, or the chunk size is invalid.
    pub fn open(path: &Path, config: CacheConfig) -> Result<Self, OutputError> {
        let storage = FileStorage::open_read_only(path)
            .map_err(|e| OutputError::file("opening the base image", path, e))?;
        Ok(Self::new(Arc::new(storage), config)?.with_base_file(path))
    }

    /// Declares that the base's bytes are exactly those of the file at `path`, so raw outputs
    /// can be cloned from it. The file must not change while the cache is in use.
    #[must_use]
    pub fn with_base_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.base_file = Some(path.into());
        self
    }

    /// Keeps compressed pieces across builds in `store`: chunk caches start from its piece
    /// files, [`Self::persist`] writes them.
    #[must_use]
    pub fn with_store(mut self, store: PieceStore) -> Self {
        self.store = Some(store);
        self
    }

    /// Writes every chunk cache used so far to the store's piece files (those not there yet),
    /// then bounds the store. Returns how many files were written; 0 without a store. Call it
    /// after the nodes are built.
    ///
    /// # Errors
    /// A piece file could not be written (nothing is left under its name).
    pub fn persist(&self) -> Result<usize, OutputError> {
        let Some(store) = &self.store else {
            return Ok(0);
        };
        let mut caches: Vec<Arc<ChunkCache>> = self.chunks.lock().map_err(|_| poisoned())?.clone();
        caches.extend(self.fine.lock().map_err(|_| poisoned())?.iter().cloned());
        let mut written = 0;
        for c in caches {
            let path = store.path(c.format(), &self.config.levels, c.layout().chunk_size());
            if c.store(&path)? {
                written += 1;
            }
        }
        store.evict();
        Ok(written)
    }

    /// The base image.
    pub fn base(&self) -> &Arc<dyn Storage> {
        &self.base
    }

    /// The base file, if declared.
    pub fn base_file(&self) -> Option<&Path> {
        self.base_file.as_deref()
    }

    /// The chunk layout.
    pub fn layout(&self) -> ChunkLayout {
        self.layout
    }

    /// The layout of dirty chunks' sub-blocks, unless sub-blocks are off.
    pub fn fine_layout(&self) -> Option<ChunkLayout> {
        self.fine_layout
    }

    /// The configuration.
    pub fn config(&self) -> &CacheConfig {
        &self.config
    }

    /// The chunk cache for `format` (compressed formats only), created on first use.
    ///
    /// # Errors
    /// `format` is raw, or the cache file cannot be created.
    pub fn chunks(&self, format: ImageFormat) -> Result<Arc<ChunkCache>, OutputError> {
        self.cache_in(&self.chunks, self.layout, format)
    }

    /// The sub-block cache for `format` (compressed formats only), created on first use;
    /// `None` when sub-blocks are off.
    ///
    /// # Errors
    /// `format` is raw, or the cache file cannot be created.
    pub fn sub_blocks(&self, format: ImageFormat) -> Result<Option<Arc<ChunkCache>>, OutputError> {
        match self.fine_layout {
            Some(layout) => self.cache_in(&self.fine, layout, format).map(Some),
            None => Ok(None),
        }
    }

    fn cache_in(
        &self,
        caches: &Mutex<Vec<Arc<ChunkCache>>>,
        layout: ChunkLayout,
        format: ImageFormat,
    ) -> Result<Arc<ChunkCache>, OutputError> {
        let mut all = caches.lock().map_err(|_| poisoned())?;
        if let Some(c) = all.iter().find(|c| c.format() == format) {
            return Ok(Arc::clone(c));
        }
        let c = Arc::new(ChunkCache::new(
            Arc::clone(&self.base),
            layout,
            format,
            self.config.levels,
            &self.config.work_dir,
        )?);
        if let Some(store) = &self.store {
            c.load(&store.path(format, &self.config.levels, layout.chunk_size()))?;
        }
        all.push(Arc::clone(&c));
        Ok(c)
    }

    /// The digest of the base's bytes `[start, end)`, if computed before.
    pub(crate) fn range_digest(&self, start: u64, end: u64) -> Option<Sha256Digest> {
        self.range_digests
            .lock()
            .ok()
            .and_then(|m| m.get(&(start, end)).copied())
    }

    /// Remembers the digest of the base's bytes `[start, end)`.
    pub(crate) fn remember_range(&self, start: u64, end: u64, digest: Sha256Digest) {
        if let Ok(mut m) = self.range_digests.lock() {
            m.insert((start, end), digest);
        }
    }
}
