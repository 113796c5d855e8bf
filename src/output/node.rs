//! Building one node's outputs in a single sequential pass over its image.
//!
//! For each chunk, in order: read it from the node's image if anything needs its bytes (the
//! image sha256, a streamed raw output, a dirty chunk, a bmap range still to hash), then hand
//! each compressed output either the base's cached piece (clean chunk) or, for a dirty chunk,
//! its sub-blocks: the base's cached sub-block pieces where the node changed nothing, freshly
//! compressed ones where it did (or one freshly compressed piece for the whole chunk when
//! sub-blocks are off). Every output is a [`PartialFile`] until all are complete; then
//! [`build_node`] renames them together, while [`write_node`] hands them back still under
//! their temporary names ([`PendingNode`]), for a caller that commits a whole build at once.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use super::bmap::{RangeHasher, map_image, xml};
use super::cache::{ChunkBuffers, ChunkCache, PieceReader};
use super::codec::{ChunkEncoder, Container};
use super::partial::{PartialFile, PendingFile, commit_pending};
use super::raw::{RawMethod, clone_and_patch};
use super::spec::{NodeImage, NodeOutputSpec, NodeOutputs, NodeStats, OutputFile, OutputKind};
use super::{BaseCache, OutputError};
use crate::io::direct::{DIRECT_BUF_SIZE, DirectFile};
use crate::io::hashing::{HashingWriter, Sha256Digest};
use crate::io::sparse::SparseWriter;
use crate::output::ImageFormat;
use crate::progress::Progress;

/// One compressed output being written.
struct Sink {
    format: ImageFormat,
    cache: Arc<ChunkCache>,
    reader: PieceReader,
    encoder: ChunkEncoder,
    /// The base's sub-block pieces, with their own reader and encoder (sub-blocks on).
    fine: Option<(Arc<ChunkCache>, PieceReader, ChunkEncoder)>,
    container: Container,
    partial: PartialFile,
    out: HashingWriter<DirectFile>,
}

impl Sink {
    fn write(&mut self, bytes: &[u8]) -> Result<(), OutputError> {
        self.out
            .write_all(bytes)
            .map_err(|e| OutputError::file("writing", self.partial.dest(), e))
    }

    /// Writes sub-block `s` (bytes `data`, of a dirty chunk): compressed for the node if
    /// `changed`, else the base's cached piece.
    fn sub_block(
        &mut self,
        s: u64,
        data: &[u8],
        changed: bool,
        piece: &mut Vec<u8>,
        bufs: &mut ChunkBuffers,
        stats: &mut NodeStats,
    ) -> Result<(), OutputError> {
        let Some((fine, reader, encoder)) = self.fine.as_mut() else {
            return Err(OutputError::Invalid("sub-blocks are off".into()));
        };
        let len = data.len() as u64;
        let s_offset = fine.layout().range(s).0;
        let (index_size, bytes) = if changed {
            piece.clear();
            stats.compressed_pieces += 1;
            stats.compressed_bytes += len;
            let index_size =
                encoder
                    .compress(data, piece)
                    .map_err(|source| OutputError::Compress {
                        format: self.format,
                        offset: s_offset,
                        source,
                    })?;
            (index_size, &piece[..])
        } else {
            let p = fine.piece(s, Some(data), encoder, bufs)?;
            stats.reused_pieces += 1;
            (p.index_size, fine.read(&p, reader)?)
        };
        self.container.push(index_size, len);
        self.out
            .write_all(bytes)
            .map_err(|e| OutputError::file("writing", self.partial.dest(), e))
    }
}

/// One node's part of the progress, finished however the node ends.
struct Task<'a> {
    progress: &'a dyn Progress,
    name: &'a str,
}

impl<'a> Task<'a> {
    fn start(progress: &'a dyn Progress, name: &'a str, len: u64) -> Self {
        progress.task_start(name, Some(len));
        Self { progress, name }
    }
}

impl Drop for Task<'_> {
    fn drop(&mut self) {
        self.progress.task_finish(self.name);
    }
}

/// A node's outputs, complete and closed, not yet under their final names: dropping it
/// removes them; [`PendingNode::commit`] renames them.
#[derive(Debug)]
pub struct PendingNode {
    /// What the files hold (their paths are the final ones).
    pub outputs: NodeOutputs,
    /// The files themselves.
    pub files: Vec<PendingFile>,
}

impl PendingNode {
    /// Renames the files to their final names, all or none.
    ///
    /// # Errors
    /// A rename failed; see [`commit_pending`].
    pub fn commit(self, sync: bool) -> Result<NodeOutputs, OutputError> {
        commit_pending(self.files, sync)?;
        Ok(self.outputs)
    }
}

/// Builds `node`'s outputs in `dir` and renames them into place: [`write_node`] then
/// [`PendingNode::commit`].
///
/// # Errors
/// See [`write_node`]; on error no output of this node stands under its final name.
pub fn build_node(
    cache: &BaseCache,
    node: &NodeImage<'_>,
    dir: &Path,
    spec: &NodeOutputSpec,
    progress: &dyn Progress,
) -> Result<NodeOutputs, OutputError> {
    write_node(cache, node, dir, spec, progress)?.commit(spec.sync)
}

/// Writes `node`'s outputs in `dir` as `spec` asks, from `cache`'s base, under temporary
/// names (synced when `spec.sync`). Advances `progress`
/// by the image bytes handled (the caller starts and finishes the phase).
///
/// This runs on the calling thread: base chunks not cached yet are compressed here, one after
/// the other. [`super::build_nodes`] (also for a single node) first compresses the base with
/// several threads. `write_node` may be called from several threads at once with the same
/// cache (from rayon, say); each base chunk is still compressed only once.
///
/// # Errors
/// See [`OutputError`]; on error nothing of this node is left.
pub fn write_node(
    cache: &BaseCache,
    node: &NodeImage<'_>,
    dir: &Path,
    spec: &NodeOutputSpec,
    progress: &dyn Progress,
) -> Result<PendingNode, OutputError> {
    node.check_name()?;
    let layout = cache.layout();
    let len = node.disk().len();
    if len != layout.image_len() {
        return Err(OutputError::SizeMismatch {
            node: len,
            base: layout.image_len(),
        });
    }
    let dirty = layout.dirty(node.changed_blocks());
    let fine_layout = cache.fine_layout();
    let fine_dirty = fine_layout.map(|f| f.dirty(node.changed_blocks()));
    let want_raw = spec.formats.contains(&ImageFormat::Raw);

    let bmap = if spec.bmap {
        Some(map_image(node.disk()).map_err(OutputError::Bmap)?)
    } else {
        None
    };
    let mut ranges = bmap
        .as_ref()
        .map(|m| RangeHasher::new(m, node.changed_blocks(), cache));
    let bmap_needs = ranges.as_ref().map(|r| r.needs(&layout));

    // Raw output: a clone of the base file plus the changed blocks, or streamed.
    let mut raw_partial = None;
    let mut raw_method = None;
    if want_raw {
        let dest = dir.join(NodeOutputSpec::image_file_name(
            node.name(),
            ImageFormat::Raw,
        ));
        let partial = PartialFile::create_private(&dest)?;
        if let Some(base) = cache.base_file() {
            let m = clone_and_patch(base, partial.file(), node.disk(), node.changed_blocks())
                .map_err(|e| OutputError::file("writing", &dest, e))?;
            raw_method = Some(m);
        } else {
            raw_method = Some(RawMethod::Streamed);
        }
        raw_partial = Some(partial);
    }
    let mut raw_stream = match (&raw_partial, raw_method) {
        (Some(p), Some(RawMethod::Streamed)) => Some(SparseWriter::new(p.file())),
        _ => None,
    };

    let mut sinks = Vec::new();
    for &format in spec.formats.iter().filter(|f| f.is_compressed()) {
        if sinks.iter().any(|s: &Sink| s.format == format) {
            continue;
        }
        let dest = dir.join(NodeOutputSpec::image_file_name(node.name(), format));
        let partial = PartialFile::create_private(&dest)?;
        let file = partial
            .file()
            .try_clone()
            .map_err(|e| OutputError::file("opening", &dest, e))?;
        let chunk_cache = cache.chunks(format)?;
        let encoder = chunk_cache.encoder()?;
        let fine = match cache.sub_blocks(format)? {
            Some(f) => {
                let e = f.encoder()?;
                Some((f, PieceReader::default(), e))
            }
            None => None,
        };
        let container = Container::new(format);
        let mut sink = Sink {
            format,
            cache: chunk_cache,
            reader: PieceReader::default(),
            encoder,
            fine,
            partial,
            out: HashingWriter::new(DirectFile::new(file, DIRECT_BUF_SIZE)),
            container,
        };
        let header = sink.container.header();
        sink.write(&header)?;
        sinks.push(sink);
    }

    let mut image_hash = (spec.image_sha256 || want_raw).then(Sha256::new);
    let mut stats = NodeStats {
        chunks: layout.count(),
        dirty_chunks: dirty.iter().filter(|&&d| d).count() as u64,
        dirty_sub_blocks: fine_dirty
            .as_ref()
            .map_or(0, |d| d.iter().filter(|&&d| d).count() as u64),
        ..NodeStats::default()
    };
    let _task = Task::start(progress, node.name(), len);
    let mut chunk = vec![0u8; layout.max_len()];
    let mut piece = Vec::new();
    let mut bufs = ChunkBuffers::default();
    for (c, &is_dirty) in (0u64..).zip(&dirty) {
        crate::cancel::check().map_err(OutputError::Interrupted)?;
        let (offset, clen) = layout.range(c);
        let ci = usize::try_from(c).unwrap_or(usize::MAX);
        let bmap_needs_it = bmap_needs
            .as_ref()
            .is_some_and(|n| n.get(ci).copied().unwrap_or(false));
        let read = image_hash.is_some() || raw_stream.is_some() || is_dirty || bmap_needs_it;
        let data = if read {
            node.disk()
                .read_at(offset, &mut chunk[..clen])
                .map_err(|source| OutputError::Read { offset, source })?;
            stats.bytes_read += clen as u64;
            Some(&chunk[..clen])
        } else {
            None
        };
        if let (Some(h), Some(d)) = (image_hash.as_mut(), data) {
            h.update(d);
        }
        if let (Some(r), Some(d)) = (ranges.as_mut(), data) {
            r.feed(offset, d, cache);
        }
        if let (Some(w), Some(d), Some(p)) = (raw_stream.as_mut(), data, &raw_partial) {
            w.write_all(d)
                .map_err(|e| OutputError::file("writing", p.dest(), e))?;
        }
        for sink in &mut sinks {
            match (
                data.filter(|_| is_dirty),
                fine_layout,
                fine_dirty.as_deref(),
            ) {
                (Some(d), Some(fl), Some(fd)) => {
                    for s in layout.sub_blocks(c, &fl) {
                        let (soff, slen) = fl.range(s);
                        let at = usize::try_from(soff - offset).unwrap_or(usize::MAX);
                        let sd = d
                            .get(at..at.saturating_add(slen))
                            .ok_or_else(|| OutputError::Invalid(format!("sub-block {s}")))?;
                        let changed = fd.get(usize::try_from(s).unwrap_or(usize::MAX));
                        sink.sub_block(
                            s,
                            sd,
                            changed == Some(&true),
                            &mut piece,
                            &mut bufs,
                            &mut stats,
                        )?;
                    }
                }
                (Some(d), _, _) => {
                    piece.clear();
                    stats.compressed_pieces += 1;
                    stats.compressed_bytes += d.len() as u64;
                    let index_size = sink.encoder.compress(d, &mut piece).map_err(|source| {
                        OutputError::Compress {
                            format: sink.format,
                            offset,
                            source,
                        }
                    })?;
                    sink.container.push(index_size, clen as u64);
                    sink.out
                        .write_all(&piece)
                        .map_err(|e| OutputError::file("writing", sink.partial.dest(), e))?;
                }
                (None, _, _) => {
                    let p = sink.cache.piece(c, data, &mut sink.encoder, &mut bufs)?;
                    stats.reused_pieces += 1;
                    let bytes = sink.cache.read(&p, &mut sink.reader)?;
                    sink.container.push(p.index_size, clen as u64);
                    // Fields, not `Sink::write`: `bytes` borrows `sink.reader`.
                    sink.out
                        .write_all(bytes)
                        .map_err(|e| OutputError::file("writing", sink.partial.dest(), e))?;
                }
            }
        }
        progress.advance(clen as u64);
        progress.task_advance(node.name(), clen as u64);
    }

    let image_sha256 = image_hash.map(|h| Sha256Digest::from_bytes(h.finalize().into()));
    let mut files = Vec::new();
    let mut partials = Vec::new();
    // Images in the order asked, then the bmap.
    if let Some(w) = raw_stream {
        let dest = raw_partial.as_ref().map(|p| p.dest().to_owned());
        w.finish()
            .map_err(|e| OutputError::file("writing", dest.unwrap_or_default(), e))?;
    }
    let mut raw_file = None;
    if let Some(p) = raw_partial {
        raw_file = Some(OutputFile {
            path: p.dest().to_owned(),
            kind: OutputKind::Image(ImageFormat::Raw),
            size: len,
            sha256: image_sha256.ok_or_else(|| {
                OutputError::Invalid("raw output without the image digest".into())
            })?,
        });
        partials.push(p);
    }
    let mut compressed = Vec::new();
    for mut sink in sinks {
        let trailer = sink.container.trailer();
        sink.write(&trailer)?;
        let size = sink.out.byte_count();
        let (writer, sha256) = sink.out.into_parts();
        writer
            .finish()
            .map_err(|e| OutputError::file("writing", sink.partial.dest(), e))?;
        compressed.push(OutputFile {
            path: sink.partial.dest().to_owned(),
            kind: OutputKind::Image(sink.format),
            size,
            sha256,
        });
        partials.push(sink.partial);
    }
    for format in &spec.formats {
        let found = if *format == ImageFormat::Raw {
            raw_file.take()
        } else {
            compressed
                .iter()
                .position(|f| f.kind == OutputKind::Image(*format))
                .map(|i| compressed.remove(i))
        };
        files.extend(found);
    }
    let mut bmap_notes = Vec::new();
    if let (Some(map), Some(ranges)) = (bmap, ranges) {
        let digests = ranges
            .finish()
            .ok_or_else(|| OutputError::Invalid("a bmap range was not hashed".into()))?;
        let text = xml::render(&map, &digests);
        let dest = dir.join(NodeOutputSpec::bmap_file_name(node.name()));
        let mut partial = PartialFile::create(&dest)?;
        partial
            .file_mut()
            .write_all(text.as_bytes())
            .map_err(|e| OutputError::file("writing", &dest, e))?;
        files.push(OutputFile {
            path: dest,
            kind: OutputKind::Bmap,
            size: text.len() as u64,
            sha256: Sha256Digest::of(text.as_bytes()),
        });
        partials.push(partial);
        bmap_notes = map.notes;
    }
    let pending = partials
        .into_iter()
        .map(|p| p.finish(spec.sync))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PendingNode {
        outputs: NodeOutputs {
            name: node.name().to_owned(),
            image_size: len,
            image_sha256,
            files,
            raw_method,
            bmap_notes,
            stats,
        },
        files: pending,
    })
}
