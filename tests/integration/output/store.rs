//! Issue 14: the compressed base kept across builds ([`piimage::output::store`]).

use std::path::Path;

use piimage::disk::FileStorage;
use piimage::io::hashing::Sha256Digest;
use piimage::output::ImageFormat;
use piimage::output::{BaseCache, CacheConfig, NodeOutputSpec, PieceStore, build_nodes};
use piimage::progress::NoProgress;

use super::{
    SYNTH_CHUNK, decompress, names, node_images, overlaid_disks, read_all, spec_all, subdir,
    write_synthetic_base,
};
use crate::support::run_ok;

const FORMATS: [ImageFormat; 3] = [ImageFormat::Zstd, ImageFormat::Xz, ImageFormat::Gzip];

/// Builds two nodes into a fresh `out` with a cache backed by `store`; returns the cache's
/// count of base pieces compressed (all formats, chunks and sub-blocks) and the written files.
fn build(base: &Path, out: &Path, store: &PieceStore) -> (u64, usize) {
    let storage = FileStorage::open_read_only(base).unwrap();
    let disks = overlaid_disks(&storage, 2, 60);
    let nodes = node_images(&disks, "n");
    let config = CacheConfig {
        chunk_size: SYNTH_CHUNK,
        ..CacheConfig::new(out)
    };
    let cache = BaseCache::open(base, config)
        .unwrap()
        .with_store(store.clone());
    let spec = NodeOutputSpec {
        formats: FORMATS.to_vec(),
        ..spec_all(false)
    };
    build_nodes(&cache, &nodes, out, &spec, 2, &NoProgress).unwrap();
    let mut compressed = 0;
    for f in FORMATS {
        compressed += cache.chunks(f).unwrap().compressed_chunks();
        compressed += cache.sub_blocks(f).unwrap().unwrap().compressed_chunks();
    }
    let written = cache.persist().unwrap();
    // Every output decodes to its node's image.
    for (i, d) in disks.iter().enumerate() {
        let want = read_all(d);
        for (tool, ext) in [("zstd", "zst"), ("xz", "xz"), ("gzip", "gz")] {
            let file = out.join(format!("n{i}.img.{ext}"));
            run_ok(tool, &["-t", file.to_str().unwrap()]);
            assert!(decompress(tool, &file) == want, "{}", file.display());
        }
    }
    (compressed, written)
}

fn pieces(dir: &Path) -> Vec<String> {
    names(dir)
        .into_iter()
        .filter(|n| n.ends_with(".pieces"))
        .collect()
}

#[test]
fn issue14_warm_rebuild_compresses_nothing_of_the_base_and_is_byte_identical() {
    let tmp = crate::support::tmp();
    let base = tmp.path().join("base.img");
    write_synthetic_base(&base);
    let store_dir = tmp.path().join("compressed");
    let store = PieceStore::new(&store_dir, &Sha256Digest::of(b"the base"), super::SYNTH_LEN);

    let cold = subdir(tmp.path(), "cold");
    let (compressed, written) = build(&base, &cold, &store);
    assert!(compressed > 0);
    assert_eq!(written, 6, "chunks and sub-blocks, three formats");
    let files = pieces(&store_dir);
    assert_eq!(files.len(), 6, "{files:?}");
    for f in &files {
        let mode = std::fs::metadata(store_dir.join(f)).unwrap().permissions();
        assert!(mode.readonly(), "{f}");
    }
    assert!(
        names(&store_dir).iter().all(|n| !n.starts_with('.')),
        "no partial file left"
    );

    let warm = subdir(tmp.path(), "warm");
    let (compressed, written) = build(&base, &warm, &store);
    assert_eq!(compressed, 0, "the warm build compressed base pieces again");
    assert_eq!(written, 0, "existing piece files are kept, not replaced");
    for n in names(&cold) {
        let a = std::fs::read(cold.join(&n)).unwrap();
        let b = std::fs::read(warm.join(&n)).unwrap();
        assert!(a == b, "{n}: warm differs from cold");
    }

    // Another key (here: another base) does not see these files.
    let other = PieceStore::new(&store_dir, &Sha256Digest::of(b"another"), super::SYNTH_LEN);
    let again = subdir(tmp.path(), "other");
    let (compressed, _) = build(&base, &again, &other);
    assert!(compressed > 0);
    assert_eq!(pieces(&store_dir).len(), 12);
}

#[test]
fn issue14_damaged_piece_files_are_ignored_and_removed() {
    let tmp = crate::support::tmp();
    let base = tmp.path().join("base.img");
    write_synthetic_base(&base);
    let store_dir = tmp.path().join("compressed");
    let store = PieceStore::new(&store_dir, &Sha256Digest::of(b"the base"), super::SYNTH_LEN);
    let cold = subdir(tmp.path(), "cold");
    build(&base, &cold, &store);
    let mut files = pieces(&store_dir);
    files.sort();
    // One file with a flipped byte in its data, one truncated, one cut to nothing.
    let damage: [fn(&mut Vec<u8>); 3] = [|b| b[10] ^= 1, |b| b.truncate(b.len() - 1), Vec::clear];
    for (f, hurt) in files.iter().zip(damage) {
        let p = store_dir.join(f);
        let mut bytes = std::fs::read(&p).unwrap();
        hurt(&mut bytes);
        std::fs::remove_file(&p).unwrap();
        std::fs::write(&p, bytes).unwrap();
    }
    let warm = subdir(tmp.path(), "warm");
    let (compressed, written) = build(&base, &warm, &store);
    assert!(compressed > 0, "damaged files were used");
    assert_eq!(
        written, 3,
        "the damaged files were removed and written again"
    );
    for n in names(&cold) {
        let a = std::fs::read(cold.join(&n)).unwrap();
        let b = std::fs::read(warm.join(&n)).unwrap();
        assert!(a == b, "{n}: differs after damaged piece files");
    }
}
