//! Outputs: each node's image (its base plus its overlay) streamed once into raw `.img`,
//! `.img.zst`, `.img.xz` and `.img.gz` files, a `.bmap`, and `SHA256SUMS`.
//!
//! # N nodes for the price of one
//! Nodes built from one base differ from it in a few blocks. The expensive work is therefore
//! done per base, in a [`BaseCache`]:
//! - compressed outputs are sequences of independently compressed chunks (4 MiB by default):
//!   zstd frames, xz blocks in one stream, gzip members, each a standard file that the stock
//!   decompressors, Raspberry Pi Imager and bmaptool read ([`codec`]). A chunk that a node did
//!   not change is compressed once per base ([`ChunkCache`]) and copied byte for byte into
//!   every node's file. A chunk the node changed (a *dirty* chunk) is written as sub-blocks of
//!   a finer grain (256 KiB by default): the sub-blocks holding a changed block are compressed
//!   for the node, the others are the base's, compressed once per base and shared the same
//!   way;
//! - raw outputs are a reflink clone (or sparse copy) of the base file with the changed blocks
//!   written over it ([`raw`]);
//! - the sha256 of bmap ranges that no node changed is computed once ([`bmap::RangeHasher`]);
//! - with a [`PieceStore`], the compressed pieces outlive the build: a rebuild on the same
//!   base loads them and compresses only what the base's files do not hold ([`store`]).
//!
//! [`build_nodes`] builds many nodes in parallel with bounded memory; [`build_node`] builds
//! one. Both write every output as a hidden partial file renamed into place only when all of the
//! node's outputs are complete ([`partial`]), so an error or an interrupted process never leaves
//! a file under a final name. The library never prints: progress goes to a
//! [`Progress`](crate::progress::Progress).
//!
//! # Designs tried and rejected
//! - One multithreaded stream per node (`zstd -T0` style): byte-optimal, but each node costs a
//!   full compression of the image; kept only as a reference ([`stream::compress_whole`]).
//! - zstd's seekable format (a seek table in a skippable frame): not needed by any consumer,
//!   and plain frames already decode everywhere.
//! - Concatenated `.xz` streams (one per chunk): valid, but decoders do not parallelise across
//!   streams; one stream of independent, size-annotated blocks decodes in parallel.
//! - Keeping compressed base chunks in memory: about one compressed image per format, too much
//!   for large bases; they live in an anonymous temporary file instead.

pub mod base;
pub mod bmap;
pub mod cache;
pub mod checksums;
pub mod chunk;
pub mod codec;
pub mod error;
pub mod manifest;
pub mod node;
pub mod nodes;
pub mod partial;
pub mod raw;
pub mod spec;
pub mod store;
pub mod stream;

pub use base::{BaseCache, CacheConfig};
pub use cache::ChunkCache;
pub use checksums::{SHA256SUMS, write_sha256sums};
pub use chunk::{ChunkLayout, DEFAULT_CHUNK_SIZE, DEFAULT_GRAIN};
pub use codec::Levels;
pub use error::OutputError;
pub mod dir;
pub use dir::DirLock;
pub use node::{PendingNode, build_node, write_node};
pub use nodes::{build_nodes, write_nodes};
pub use partial::{PartialFile, PendingFile, commit_pending, sweep_partials};
pub use raw::RawMethod;
pub use spec::{
    ImageFormat, NodeImage, NodeOutputSpec, NodeOutputs, NodeStats, OutputFile, OutputKind,
};
pub use store::PieceStore;
