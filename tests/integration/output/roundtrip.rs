//! Every format against the stock tools; chunk reuse against a one-pass compressor;
//! reproducibility; failed builds.

use std::io;
use std::sync::Arc;

use piimage::disk::{CowDisk, FileStorage, MemStorage, Storage};
use piimage::io::hashing::Sha256Digest;
use piimage::output::ImageFormat;
use piimage::output::stream::compress_whole;
use piimage::output::{
    BaseCache, CacheConfig, Levels, NodeImage, NodeOutputSpec, OutputKind, RawMethod, SHA256SUMS,
    build_node, build_nodes, write_sha256sums,
};
use piimage::progress::NoProgress;

use super::{
    SYNTH_CHUNK, decompress, names, node_images, overlaid_disks, read_all, spec_all, subdir,
    synthetic_cache, write_overlay, write_synthetic_base,
};
use crate::support::{run_ok, sh};

#[test]
fn every_format_round_trips_through_the_stock_tools() {
    let tmp = crate::support::tmp();
    let base_path = tmp.path().join("base.img");
    write_synthetic_base(&base_path);
    let storage = FileStorage::open_read_only(&base_path).unwrap();
    let disk = CowDisk::new(&storage);
    write_overlay(&disk, 1);
    let want = read_all(&disk);
    let node = NodeImage::from_cow("node-1", &disk).unwrap();

    for clone_raw in [false, true] {
        let out = subdir(tmp.path(), if clone_raw { "cloned" } else { "streamed" });
        let cache = synthetic_cache(&base_path, &out, clone_raw);
        let built = build_node(&cache, &node, &out, &spec_all(false), &NoProgress).unwrap();
        let case = if clone_raw { "cloned" } else { "streamed" };
        assert_eq!(
            names(&out),
            [
                "node-1.img",
                "node-1.img.gz",
                "node-1.img.xz",
                "node-1.img.zst"
            ],
            "{case}: final names only, no partial left"
        );
        assert_eq!(built.image_sha256, Some(Sha256Digest::of(&want)), "{case}");
        let method = built.raw_method.unwrap();
        if clone_raw {
            assert!(matches!(method, RawMethod::Reflink | RawMethod::SparseCopy));
        } else {
            assert_eq!(method, RawMethod::Streamed);
        }

        let raw = std::fs::read(out.join("node-1.img")).unwrap();
        assert!(
            raw == want,
            "{case}: raw output differs from base + overlay"
        );
        for (tool, ext) in [("zstd", "zst"), ("xz", "xz"), ("gzip", "gz")] {
            let file = out.join(format!("node-1.img.{ext}"));
            assert!(
                decompress(tool, &file) == raw,
                "{case}: {tool} -d differs from the raw output"
            );
            run_ok(tool, &["-t", file.to_str().unwrap()]);
        }
        for f in &built.files {
            let bytes = std::fs::read(&f.path).unwrap();
            assert_eq!(Sha256Digest::of(&bytes), f.sha256, "{case}: {:?}", f.kind);
            assert_eq!(bytes.len() as u64, f.size, "{case}: {:?}", f.kind);
        }
    }

    // What the tools say about the files' structure.
    // One piece per clean chunk, one per sub-block of a dirty chunk.
    let out = tmp.path().join("streamed");
    let cache = synthetic_cache(&base_path, &out, false);
    let (layout, fine) = (cache.layout(), cache.fine_layout().unwrap());
    let chunks: u64 = (0u64..)
        .zip(layout.dirty(node.changed_blocks()))
        .map(|(c, d)| {
            if d {
                layout.sub_blocks(c, &fine).count() as u64
            } else {
                1
            }
        })
        .sum();
    assert!(chunks > super::SYNTH_LEN.div_ceil(SYNTH_CHUNK), "{chunks}");
    let zst = out.join("node-1.img.zst");
    let listing = run_ok("zstd", &["-lv", zst.to_str().unwrap()]);
    assert!(
        listing.contains(&format!("# Zstandard Frames: {chunks}")),
        "{listing}"
    );
    assert!(listing.contains("Check: XXH64"), "{listing}");
    assert!(
        listing.contains(&format!("({} B)", super::SYNTH_LEN)),
        "decompressed size known from the frame headers:\n{listing}"
    );
    let xz = out.join("node-1.img.xz");
    let listing = run_ok("xz", &["-lvv", xz.to_str().unwrap()]);
    assert!(listing.contains("Streams:           1"), "{listing}");
    assert!(
        listing.contains(&format!("Blocks:            {chunks}")),
        "{listing}"
    );
    assert!(listing.contains("Sizes in headers:  Yes"), "{listing}");
    // Multithreaded decoding of the independent blocks.
    let mt = sh(
        &out,
        "xz -T2 -d -c node-1.img.xz | sha256sum | cut -d' ' -f1",
    );
    assert_eq!(mt.trim(), Sha256Digest::of(&want).to_string());
}

#[test]
fn chunk_reuse_equals_a_one_pass_compressor() {
    let tmp = crate::support::tmp();
    let base_path = tmp.path().join("base.img");
    write_synthetic_base(&base_path);
    let storage = FileStorage::open_read_only(&base_path).unwrap();
    let cache = synthetic_cache(&base_path, tmp.path(), false);
    let disks = overlaid_disks(&storage, 3, 10);
    let nodes = node_images(&disks, "n");
    let spec = NodeOutputSpec {
        formats: vec![ImageFormat::Zstd, ImageFormat::Xz, ImageFormat::Gzip],
        ..spec_all(false)
    };
    let out = subdir(tmp.path(), "out");
    let built = build_nodes(&cache, &nodes, &out, &spec, 2, &NoProgress).unwrap();

    let layout = cache.layout();
    let fine = cache.fine_layout().unwrap();
    for (node, b) in nodes.iter().zip(&built) {
        let dirty = layout.dirty(node.changed_blocks());
        let subs_of_dirty: u64 = (0u64..)
            .zip(&dirty)
            .filter(|&(_, &d)| d)
            .map(|(c, _)| layout.sub_blocks(c, &fine).count() as u64)
            .sum();
        let dirty = dirty.iter().filter(|&&d| d).count() as u64;
        let dirty_subs = fine
            .dirty(node.changed_blocks())
            .iter()
            .filter(|&&d| d)
            .count() as u64;
        assert_eq!(b.stats.dirty_chunks, dirty);
        assert_eq!(b.stats.dirty_sub_blocks, dirty_subs);
        // Only the changed sub-blocks are compressed for the node; every other piece (clean
        // chunks, clean sub-blocks of dirty chunks) is the base's.
        assert_eq!(b.stats.compressed_pieces, 3 * dirty_subs, "{}", b.name);
        assert_eq!(
            b.stats.reused_pieces,
            3 * (layout.count() - dirty + subs_of_dirty - dirty_subs),
            "{}",
            b.name
        );
        assert!(b.stats.compressed_bytes <= 3 * dirty_subs * fine.chunk_size());
        assert!(
            dirty_subs < subs_of_dirty,
            "{}: some sub-block reused",
            b.name
        );
    }
    // Chunks left clean by some node were compressed once for the base, chunks every node
    // changed never were.
    let zstd_cache = cache.chunks(ImageFormat::Zstd).unwrap();
    assert!(zstd_cache.compressed_chunks() < layout.count());

    let one_pass = subdir(tmp.path(), "one-pass");
    for (disk, b) in disks.iter().zip(&built) {
        let want = read_all(disk);
        for (format, tool) in [
            (ImageFormat::Zstd, "zstd"),
            (ImageFormat::Xz, "xz"),
            (ImageFormat::Gzip, "gzip"),
        ] {
            let reference = one_pass.join(format!("{}.{}", b.name, format.extension()));
            let file = std::fs::File::create(&reference).unwrap();
            compress_whole(disk, format, &Levels::default(), 2, file).unwrap();
            let chunked = b
                .files
                .iter()
                .find(|f| f.kind == OutputKind::Image(format))
                .unwrap();
            let a = decompress(tool, &chunked.path);
            let r = decompress(tool, &reference);
            assert!(a == r, "{} {format}: chunked and one-pass differ", b.name);
            assert!(a == want, "{} {format}: differs from the image", b.name);
        }
    }
}

#[test]
fn two_builds_are_byte_identical_and_sha256sums_checks() {
    let tmp = crate::support::tmp();
    let base_path = tmp.path().join("base.img");
    write_synthetic_base(&base_path);
    let storage = FileStorage::open_read_only(&base_path).unwrap();
    let disks = overlaid_disks(&storage, 3, 20);
    let nodes = node_images(&disks, "node");
    let mut dirs = Vec::new();
    for (run, jobs) in [(0, 1), (1, 2)] {
        let out = subdir(tmp.path(), &format!("run{run}"));
        // A fresh cache each time: nothing carried over between the builds.
        let cache = synthetic_cache(&base_path, &out, run == 1);
        let built = build_nodes(&cache, &nodes, &out, &spec_all(true), jobs, &NoProgress).unwrap();
        write_sha256sums(&out, &built, false).unwrap();
        let sums = sh(&out, "sha256sum -c SHA256SUMS");
        assert_eq!(sums.lines().count(), 3 * 5, "{sums}");
        assert!(sums.lines().all(|l| l.ends_with(": OK")), "{sums}");
        dirs.push(out);
    }
    let listing = names(&dirs[0]);
    assert_eq!(listing, names(&dirs[1]));
    assert!(listing.contains(&SHA256SUMS.to_owned()));
    assert!(listing.contains(&"node2.img.bmap".to_owned()));
    for name in &listing {
        let a = std::fs::read(dirs[0].join(name)).unwrap();
        let b = std::fs::read(dirs[1].join(name)).unwrap();
        assert!(a == b, "{name} differs between two builds");
    }
}

/// A disk whose reads fail from byte `fail_at` on.
struct Failing {
    inner: MemStorage,
    fail_at: u64,
}

impl Storage for Failing {
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        if offset + buf.len() as u64 > self.fail_at {
            return Err(io::Error::other("injected read error"));
        }
        self.inner.read_at(offset, buf)
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        self.inner.write_at(offset, buf)
    }
}

#[test]
fn a_failed_build_leaves_nothing() {
    let tmp = crate::support::tmp();
    let len = 8u64 << 20;
    let base: Arc<dyn Storage> = Arc::new(MemStorage::new(vec![1; 8 << 20]));
    let config = CacheConfig {
        chunk_size: SYNTH_CHUNK,
        ..CacheConfig::new(tmp.path())
    };
    let cache = BaseCache::new(base, config).unwrap();
    let out = subdir(tmp.path(), "out");
    // The node's image fails to read in its last chunk, after all outputs were started.
    let failing = Failing {
        inner: MemStorage::new(vec![1; 8 << 20]),
        fail_at: len - 100,
    };
    let node = NodeImage::new("n1", &failing, vec![(len / 4096) - 1]);
    let err = build_node(&cache, &node, &out, &spec_all(true), &NoProgress).unwrap_err();
    assert!(
        piimage::error::chain(&err).contains("injected read error"),
        "{err}"
    );
    assert!(names(&out).is_empty(), "left behind: {:?}", names(&out));

    // A node of another size is refused before anything is written.
    let small = MemStorage::new(vec![0; 4096]);
    let node = NodeImage::new("n2", &small, vec![]);
    let err = build_node(&cache, &node, &out, &spec_all(false), &NoProgress).unwrap_err();
    assert!(piimage::error::chain(&err).contains("4096 bytes"), "{err}");
    // So is a name that is not a plain file name.
    let ok = MemStorage::new(vec![1; 8 << 20]);
    for bad in ["../x", ".hidden", "", "a b"] {
        let node = NodeImage::new(bad, &ok, vec![]);
        assert!(build_node(&cache, &node, &out, &spec_all(false), &NoProgress).is_err());
    }
    assert!(names(&out).is_empty());
}

#[test]
fn fixture_round_trip_with_writes_in_both_filesystems() {
    use piimage::disk::Window;
    use xtask::fixtures::{self, Fixture, Format};

    let f = Fixture::RaspiosBookworm;
    let info = fixtures::info(f);
    let path = fixtures::fixture_path(f, Format::Raw).unwrap();
    let base = FileStorage::open_read_only(&path).unwrap();
    let disk = CowDisk::new(&base);
    // Random 4 KiB writes over the FAT's reserved sectors and tables and over the ext4
    // superblock, descriptors, bitmaps and inode tables (validity does not matter here).
    let mut rng = super::Rng::new(99);
    let mut block = [0u8; 4096];
    for (start, span) in [
        (info.boot.offset(), 4 << 20),
        (info.root.offset(), 64 << 20),
    ] {
        for _ in 0..8 {
            rng.fill(&mut block);
            disk.write_at(start + rng.below(span), &block).unwrap();
        }
    }
    let tmp = crate::support::tmp();
    let cache = BaseCache::open(&path, CacheConfig::new(tmp.path())).unwrap();
    let node = NodeImage::from_cow("node", &disk).unwrap();
    let spec = NodeOutputSpec {
        formats: vec![ImageFormat::Raw, ImageFormat::Zstd, ImageFormat::Gzip],
        ..spec_all(false)
    };
    let built = build_nodes(&cache, &[node], tmp.path(), &spec, 2, &NoProgress).unwrap();
    let (want, len) = Sha256Digest::of_reader(Window::new(&disk, 0, disk.len()).unwrap()).unwrap();
    assert_eq!(len, info.image_size);
    assert_eq!(built[0].image_sha256, Some(want));
    let sums = sh(
        tmp.path(),
        "sha256sum < node.img; zstd -dc node.img.zst | sha256sum; gzip -dc node.img.gz | sha256sum",
    );
    for line in sums.lines() {
        assert_eq!(
            line.split_whitespace().next(),
            Some(want.to_string().as_str())
        );
    }
}

/// Issue 14: a dirty chunk is written as sub-blocks, most of them the base's. The files stay
/// single valid streams for the stock tools, decode to the node's image like files made with
/// sub-blocks off, and a node's bytes do not depend on which other nodes share the build.
#[test]
fn issue14_sub_blocks_decode_everywhere_and_do_not_depend_on_other_nodes() {
    let tmp = crate::support::tmp();
    let base_path = tmp.path().join("base.img");
    write_synthetic_base(&base_path);
    let storage = FileStorage::open_read_only(&base_path).unwrap();
    let disks = overlaid_disks(&storage, 3, 40);
    let nodes = node_images(&disks, "n");
    let spec = NodeOutputSpec {
        formats: vec![ImageFormat::Zstd, ImageFormat::Xz, ImageFormat::Gzip],
        ..spec_all(false)
    };
    let cache_with = |work: &std::path::Path, grain: u64| {
        let config = CacheConfig {
            chunk_size: SYNTH_CHUNK,
            grain,
            ..CacheConfig::new(work)
        };
        BaseCache::open(&base_path, config).unwrap()
    };
    let all = subdir(tmp.path(), "all");
    let alone = subdir(tmp.path(), "alone");
    let whole = subdir(tmp.path(), "whole");
    build_nodes(
        &cache_with(&all, 128 << 10),
        &nodes,
        &all,
        &spec,
        2,
        &NoProgress,
    )
    .unwrap();
    let one = build_nodes(
        &cache_with(&alone, 128 << 10),
        &nodes[..1],
        &alone,
        &spec,
        1,
        &NoProgress,
    )
    .unwrap();
    let off = build_nodes(
        &cache_with(&whole, 0),
        &nodes[..1],
        &whole,
        &spec,
        1,
        &NoProgress,
    )
    .unwrap();
    assert_eq!(off[0].stats.dirty_sub_blocks, 0);
    assert!(one[0].stats.compressed_bytes < off[0].stats.compressed_bytes);

    let want = read_all(&disks[0]);
    for (tool, ext) in [("zstd", "zst"), ("xz", "xz"), ("gzip", "gz")] {
        let name = format!("n0.img.{ext}");
        let a = std::fs::read(all.join(&name)).unwrap();
        let b = std::fs::read(alone.join(&name)).unwrap();
        assert!(a == b, "{name}: depends on the other nodes of the build");
        for dir in [&alone, &whole] {
            let file = dir.join(&name);
            run_ok(tool, &["-t", file.to_str().unwrap()]);
            assert!(decompress(tool, &file) == want, "{}", file.display());
        }
    }
    // xz: one stream; every piece a block with its sizes in the header, decoded in parallel.
    let listing = run_ok("xz", &["-lvv", alone.join("n0.img.xz").to_str().unwrap()]);
    assert!(listing.contains("Streams:           1"), "{listing}");
    assert!(listing.contains("Sizes in headers:  Yes"), "{listing}");
    let mt = sh(&alone, "xz -T2 -d -c n0.img.xz | sha256sum | cut -d' ' -f1");
    assert_eq!(mt.trim(), Sha256Digest::of(&want).to_string());
    // A grain that does not divide the chunk size is refused.
    let config = CacheConfig {
        chunk_size: SYNTH_CHUNK,
        grain: 384 << 10,
        ..CacheConfig::new(tmp.path())
    };
    let err = BaseCache::open(&base_path, config).unwrap_err();
    assert!(
        piimage::error::chain(&err).contains("does not divide"),
        "{err}"
    );
}
