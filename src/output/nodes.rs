//! Building many nodes from one base, in parallel with bounded memory.
//!
//! Two phases:
//! 1. the base chunks that at least one node leaves untouched are compressed, once, by up to
//!    `jobs` threads ([`ChunkCache::prefill`](super::ChunkCache::prefill)); chunks every node
//!    changes are skipped; so are, at the grain, the sub-blocks of dirty chunks that at least
//!    one node whose chunk is dirty leaves untouched;
//! 2. nodes are built by up to `jobs` threads, one node per thread at a time
//!    ([`build_node`]): each copies the cached pieces and compresses only its changed
//!    sub-blocks (or, with sub-blocks off, its dirty chunks).
//!
//! Memory per thread is a few chunk-sized buffers plus one encoder per format (about 20 MiB
//! for zstd at the default 4 MiB chunks; xz's encoder adds about 11 times the dictionary, which
//! is capped at the chunk size); nothing grows with the image or the number of nodes. Compressed
//! base chunks live in the cache's temporary file, not in memory.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::chunk::ChunkLayout;
use super::node::{PendingNode, write_node};
use super::spec::{NodeImage, NodeOutputSpec, NodeOutputs};
use super::{BaseCache, OutputError};
use crate::progress::Progress;

/// Builds every node of `nodes` into `dir` (see the module docs), with up to `jobs` threads
/// (0 means one per core), renaming the outputs into place: [`write_nodes`], then one commit
/// of every node's files together. Results are in the order of `nodes`.
///
/// # Errors
/// The first node error (in node order); nothing of any node is left under a final name.
pub fn build_nodes(
    cache: &BaseCache,
    nodes: &[NodeImage<'_>],
    dir: &Path,
    spec: &NodeOutputSpec,
    jobs: usize,
    progress: &dyn Progress,
) -> Result<Vec<NodeOutputs>, OutputError> {
    let pending = write_nodes(cache, nodes, dir, spec, jobs, progress)?;
    let mut out = Vec::with_capacity(pending.len());
    let mut all_files = Vec::new();
    for p in pending {
        out.push(p.outputs);
        all_files.extend(p.files);
    }
    super::partial::commit_pending(all_files, spec.sync)?;
    Ok(out)
}

/// Writes every node of `nodes` into `dir` under temporary names (see the module docs), with
/// up to `jobs` threads (0 means one per core). Reports two phases to `progress`: "compressing
/// the base" and "writing node images". Results are in the order of `nodes`; the caller
/// commits them (a build commits all its nodes together, with their records).
///
/// # Errors
/// The first node error (in node order); nodes not started yet are not built, and nothing
/// written is left.
pub fn write_nodes(
    cache: &BaseCache,
    nodes: &[NodeImage<'_>],
    dir: &Path,
    spec: &NodeOutputSpec,
    jobs: usize,
    progress: &dyn Progress,
) -> Result<Vec<PendingNode>, OutputError> {
    let jobs = if jobs == 0 {
        std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
    } else {
        jobs
    };
    for n in nodes {
        n.check_name()?;
    }
    prefill(cache, nodes, spec, jobs, progress)?;

    let total = cache.layout().image_len() * nodes.len() as u64;
    progress.start(
        &format!("writing {} node image{}", nodes.len(), plural(nodes.len())),
        Some(total),
    );
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<PendingNode, OutputError>>>> =
        Mutex::new((0..nodes.len()).map(|_| None).collect());
    let worker = || {
        while !failed.load(Ordering::Relaxed) {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(node) = nodes.get(i) else { break };
            let r = write_node(cache, node, dir, spec, progress);
            if r.is_err() {
                failed.store(true, Ordering::Relaxed);
            }
            if let Ok(mut all) = results.lock() {
                all[i] = Some(r);
            }
        }
    };
    std::thread::scope(|s| {
        for _ in 0..jobs.min(nodes.len()) {
            s.spawn(worker);
        }
    });
    progress.finish();
    let results = results
        .into_inner()
        .map_err(|_| OutputError::Cache(std::io::Error::other("a node worker panicked")))?;
    let mut out = Vec::with_capacity(nodes.len());
    let mut first_error = None;
    for r in results {
        match r {
            Some(Ok(o)) => out.push(o),
            Some(Err(e)) => {
                first_error.get_or_insert(e);
            }
            None => {}
        }
    }
    match first_error {
        Some(e) => Err(e),
        None if out.len() == nodes.len() => Ok(out),
        None => Err(OutputError::Cache(std::io::Error::other(
            "a node worker panicked",
        ))),
    }
}

/// Phase 1: compress the base chunks some node leaves clean, for every compressed format.
fn prefill(
    cache: &BaseCache,
    nodes: &[NodeImage<'_>],
    spec: &NodeOutputSpec,
    jobs: usize,
    progress: &dyn Progress,
) -> Result<(), OutputError> {
    let layout = cache.layout();
    let n = usize::try_from(layout.count()).unwrap_or(0);
    let mut wanted = vec![false; n];
    for node in nodes {
        for (w, d) in wanted.iter_mut().zip(layout.dirty(node.changed_blocks())) {
            *w |= !d;
        }
    }
    // Sub-blocks: those some node leaves clean in a chunk it dirties.
    let fine = cache.fine_layout();
    let mut wanted_fine = vec![false; fine.map_or(0, |f| usize::try_from(f.count()).unwrap_or(0))];
    if let Some(fl) = fine {
        for node in nodes {
            let sub_dirty = fl.dirty(node.changed_blocks());
            for (c, d) in (0u64..).zip(layout.dirty(node.changed_blocks())) {
                if !d {
                    continue;
                }
                for s in layout.sub_blocks(c, &fl) {
                    let s = usize::try_from(s).unwrap_or(usize::MAX);
                    if let (Some(w), Some(false)) = (wanted_fine.get_mut(s), sub_dirty.get(s)) {
                        *w = true;
                    }
                }
            }
        }
    }
    let formats: Vec<_> = spec
        .formats
        .iter()
        .copied()
        .filter(|f| f.is_compressed())
        .collect();
    if formats.is_empty() || nodes.is_empty() {
        return Ok(());
    }
    let bytes_of = |l: ChunkLayout, w: &[bool]| -> u64 {
        (0u64..)
            .zip(w)
            .filter(|&(_, &w)| w)
            .map(|(i, _)| l.range(i).1 as u64)
            .sum()
    };
    let wanted_bytes = bytes_of(layout, &wanted) + fine.map_or(0, |fl| bytes_of(fl, &wanted_fine));
    progress.start(
        "compressing the base image",
        Some(wanted_bytes * formats.len() as u64),
    );
    let result = formats.iter().try_for_each(|&f| {
        cache
            .chunks(f)
            .and_then(|c| c.prefill(&wanted, jobs, progress))?;
        match cache.sub_blocks(f)? {
            Some(c) if wanted_fine.contains(&true) => c.prefill(&wanted_fine, jobs, progress),
            _ => Ok(()),
        }
    });
    progress.finish();
    result
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn builders_can_be_shared_across_threads() {
        // What lets callers run `build_node` from rayon or their own threads.
        assert_send_sync::<BaseCache>();
        assert_send_sync::<NodeImage<'static>>();
        assert_send_sync::<NodeOutputSpec>();
    }
}
