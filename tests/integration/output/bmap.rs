//! bmaps: ext4 usage against `dumpe2fs`, the fixtures' maps against `e2fsck`/`fsck.fat` on a
//! copy whose unmapped blocks are garbage, and the real `bmaptool copy` of every format.

use std::os::unix::fs::FileExt;
use std::path::Path;

use piimage::disk::{CowDisk, FileStorage, Storage, Window};
use piimage::fs::ext4::allocation::{BlockUsage, merge_runs, read_block_usage};
use piimage::fs::fat::BootSector;
use piimage::fs::fat::table::{FatLayout, used_clusters};
use piimage::io::hashing::Sha256Digest;
use piimage::output::ImageFormat;
use piimage::output::{BaseCache, CacheConfig, NodeImage, NodeOutputSpec, build_node};
use piimage::progress::NoProgress;
use xtask::fixtures::{self, Fixture, Format};

use super::{names, subdir};
use crate::support::{e2fsck_clean, fsck_fat_clean, run, run_ok, sh};

const GARBAGE: u8 = 0xA5;

/// Free block runs of every group, as `dumpe2fs` prints them ("  Free blocks: 5-9, 12").
fn dumpe2fs_free(spec: &str) -> Vec<(u64, u64)> {
    let out = run_ok("dumpe2fs", &[spec]);
    let mut free = Vec::new();
    for line in out.lines() {
        let Some(list) = line.strip_prefix("  Free blocks: ") else {
            continue;
        };
        for item in list.split(", ").filter(|s| !s.is_empty()) {
            let (a, b) = item.split_once('-').unwrap_or((item, item));
            let (a, b): (u64, u64) = (a.trim().parse().unwrap(), b.trim().parse().unwrap());
            free.push((a, b - a + 1));
        }
    }
    merge_runs(free)
}

/// The complement of `runs` in `[0, total)`.
fn complement(runs: &[(u64, u64)], total: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut pos = 0;
    for &(f, c) in runs {
        if f > pos {
            out.push((pos, f - pos));
        }
        pos = f + c;
    }
    if pos < total {
        out.push((pos, total - pos));
    }
    out
}

fn usage_of(path: &Path, offset: u64, len: u64) -> BlockUsage {
    let storage = FileStorage::open_read_only(path).unwrap();
    let window = Window::new(&storage, offset, len).unwrap();
    read_block_usage(&window).unwrap()
}

#[test]
fn ext4_usage_matches_dumpe2fs() {
    let tmp = crate::support::tmp();
    let tree = subdir(tmp.path(), "tree");
    sh(
        &tree,
        "mkdir -p etc usr/bin && head -c 3000000 /dev/urandom > usr/bin/big \
         && for i in $(seq 1 200); do echo file $i > etc/f$i; done",
    );
    // (name, mke2fs options, size): BLOCK_UNINIT groups appear in all of these.
    let cases: &[(&str, &str, &str)] = &[
        ("defaults", "-b 4096", "1G"),
        ("pi-gen", "-b 4096 -O ^64bit,^huge_file", "1G"),
        ("64bit", "-b 4096 -O 64bit", "1G"),
        ("no flex_bg", "-b 4096 -O ^flex_bg", "1G"),
        (
            "no sparse_super",
            "-b 4096 -O ^sparse_super,^resize_inode",
            "600M",
        ),
        (
            "sparse_super2",
            "-b 4096 -O sparse_super2,^resize_inode",
            "1G",
        ),
        ("1k blocks", "-b 1024", "300M"),
        (
            "no metadata_csum",
            "-b 4096 -O ^metadata_csum,uninit_bg",
            "1G",
        ),
    ];
    let mut uninit_seen = 0;
    for (name, opts, size) in cases {
        let img = tmp.path().join(format!("{}.img", name.replace(' ', "-")));
        let img_s = img.to_str().unwrap();
        sh(
            tmp.path(),
            &format!(
                "mke2fs -q -F -t ext4 -T default {opts} -d {} {img_s} {size}",
                tree.display()
            ),
        );
        let len = std::fs::metadata(&img).unwrap().len();
        let usage = usage_of(&img, 0, len);
        assert_eq!(usage.whole, None, "case {name}");
        assert!(usage.distrusted_groups.is_empty(), "case {name}");
        let free = dumpe2fs_free(img_s);
        let want = complement(&free, usage.blocks_count);
        assert_eq!(
            usage.used, want,
            "case {name}: used blocks differ from dumpe2fs"
        );
        if run_ok("dumpe2fs", &[img_s]).contains("BLOCK_UNINIT") {
            uninit_seen += 1;
        }
    }
    assert!(
        uninit_seen >= 4,
        "BLOCK_UNINIT groups were exercised in {uninit_seen} cases"
    );

    // A block bitmap whose checksum fails makes its whole group count as used.
    let img = tmp.path().join("defaults.img");
    let dump = run_ok("dumpe2fs", &[img.to_str().unwrap()]);
    let bitmap: u64 = dump
        .lines()
        .find_map(|l| l.trim().strip_prefix("Block bitmap at "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
    f.write_all_at(&[0x5A], bitmap * 4096 + 4000).unwrap();
    let usage = usage_of(&img, 0, std::fs::metadata(&img).unwrap().len());
    assert_eq!(usage.distrusted_groups, vec![0]);
    assert!(
        usage.used[0].0 == 0 && usage.used[0].1 >= 32768,
        "{:?}",
        usage.used[0]
    );

    // meta_bg is not decoded: the whole filesystem counts as used.
    let img = tmp.path().join("meta_bg.img");
    sh(
        tmp.path(),
        &format!(
            "mke2fs -q -F -t ext4 -b 4096 -O meta_bg,^resize_inode {} 256M",
            img.display()
        ),
    );
    let len = std::fs::metadata(&img).unwrap().len();
    let usage = usage_of(&img, 0, len);
    assert_eq!(usage.whole, Some("meta_bg"));
    assert_eq!(usage.used, vec![(0, usage.blocks_count)]);

    // The fixtures' root filesystems.
    for f in Fixture::ALL {
        let info = fixtures::info(f);
        let path = fixtures::fixture_path(f, Format::Raw).unwrap();
        let usage = usage_of(&path, info.root.offset(), info.root.size());
        let free = dumpe2fs_free(&format!("{}?offset={}", path.display(), info.root.offset()));
        assert_eq!(
            usage.used,
            complement(&free, usage.blocks_count),
            "{}",
            info.name
        );
    }
}

/// Parses a bmap's `ImageSize` and ranges (inclusive block numbers) without piimage's code.
fn parse_bmap(text: &str) -> (u64, Vec<(u64, u64)>) {
    let tag = |name: &str| -> u64 {
        let open = format!("<{name}>");
        let start = text.find(&open).unwrap() + open.len();
        let end = start + text[start..].find('<').unwrap();
        text[start..end].trim().parse().unwrap()
    };
    assert_eq!(tag("BlockSize"), 4096);
    let ranges = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("<Range chksum=\""))
        .map(|l| {
            let body = l
                .split('>')
                .nth(1)
                .unwrap()
                .split('<')
                .next()
                .unwrap()
                .trim();
            let (a, b) = body.split_once('-').unwrap_or((body, body));
            (a.parse().unwrap(), b.parse().unwrap())
        })
        .collect();
    (tag("ImageSize"), ranges)
}

/// Whether `[off, off + len)` lies in the mapped `ranges`.
fn is_mapped(ranges: &[(u64, u64)], off: u64, len: u64) -> bool {
    let (first, last) = (off / 4096, (off + len - 1) / 4096);
    ranges.iter().any(|&(a, b)| a <= last && first <= b)
}

/// Writes `GARBAGE` over every unmapped block of `copy` (what a reused SD card may hold).
fn fill_unmapped(copy: &Path, size: u64, ranges: &[(u64, u64)]) {
    let f = std::fs::OpenOptions::new().write(true).open(copy).unwrap();
    f.set_len(size).unwrap();
    let garbage = vec![GARBAGE; 1 << 20];
    let mut pos = 0u64;
    let write_gap = |from: u64, to: u64| {
        let mut at = from;
        while at < to {
            let n = (to - at).min(garbage.len() as u64);
            f.write_all_at(&garbage[..usize::try_from(n).unwrap()], at)
                .unwrap();
            at += n;
        }
    };
    for &(a, b) in ranges {
        write_gap(pos, (a * 4096).min(size));
        pos = ((b + 1) * 4096).min(size);
    }
    write_gap(pos, size);
}

/// Asserts that `copy` equals `raw` in every mapped block.
fn assert_mapped_equal(copy: &Path, raw: &Path, ranges: &[(u64, u64)], size: u64, case: &str) {
    let a = std::fs::File::open(copy).unwrap();
    let b = std::fs::File::open(raw).unwrap();
    let mut x = vec![0u8; 1 << 20];
    let mut y = vec![0u8; 1 << 20];
    for &(first, last) in ranges {
        let (mut at, end) = (first * 4096, ((last + 1) * 4096).min(size));
        while at < end {
            let n = usize::try_from((end - at).min(1 << 20)).unwrap();
            a.read_exact_at(&mut x[..n], at).unwrap();
            b.read_exact_at(&mut y[..n], at).unwrap();
            assert!(x[..n] == y[..n], "{case}: mapped bytes at {at} differ");
            at += n as u64;
        }
    }
}

/// A node of fixture `f`: a new disk id, plus garbage in a free ext4 block and a free FAT
/// cluster (unmapped, so it must not matter). Returns the disk and the garbage offsets.
fn fixture_node(base: &FileStorage, f: Fixture) -> (CowDisk<&FileStorage>, [u64; 2]) {
    let info = fixtures::info(f);
    let disk = CowDisk::new(base);
    disk.write_at(440, &0x1234_5678u32.to_le_bytes()).unwrap();
    let root = Window::new(base, info.root.offset(), info.root.size()).unwrap();
    let usage = read_block_usage(&root).unwrap();
    let free_block = usage.used[0].0 + usage.used[0].1;
    let ext4_garbage = info.root.offset() + free_block * 4096;
    let boot = Window::new(base, info.boot.offset(), info.boot.size()).unwrap();
    let mut sector = [0u8; 512];
    boot.read_at(0, &mut sector).unwrap();
    let layout = FatLayout::new(&BootSector::from_bytes(&sector).unwrap());
    // A 4 KiB-aligned disk block made only of free clusters (clusters may be 512 bytes).
    let used = used_clusters(&boot, &layout, 0).unwrap();
    let ends = used.iter().map(|&(f, c)| f + c);
    let starts = used
        .iter()
        .skip(1)
        .map(|&(f, _)| f)
        .chain([layout.clusters + 2]);
    let fat_garbage = ends
        .zip(starts)
        .find_map(|(free, next_used)| {
            let from = info.boot.offset() + layout.cluster_offset(free);
            let to = info.boot.offset() + layout.cluster_offset(next_used);
            let block = from.div_ceil(4096) * 4096;
            (block + 4096 <= to).then_some(block)
        })
        .expect("a free 4 KiB block in the FAT data region");
    for at in [ext4_garbage, fat_garbage] {
        disk.write_at(at, &[0x77; 4096]).unwrap();
    }
    (disk, [ext4_garbage, fat_garbage])
}

/// The checks on a copy whose unmapped blocks are garbage: both filesystems clean, every
/// boot file and the large root file intact, the node's garbage gone.
fn check_garbage_copy(copy: &Path, raw: &Path, f: Fixture, garbage_at: [u64; 2]) {
    let info = fixtures::info(f);
    e2fsck_clean(copy, info.root.offset());
    fsck_fat_clean(copy, info.boot.offset(), info.boot.size());
    let dir = crate::support::tmp();
    for (img, sub) in [(copy, "copy"), (raw, "raw")] {
        let target = subdir(dir.path(), sub);
        let spec = format!("{}@@{}", img.display(), info.boot.offset());
        run_ok(
            "mcopy",
            &["-s", "-n", "-i", &spec, "::*", target.to_str().unwrap()],
        );
    }
    sh(dir.path(), "diff -r raw copy");
    let sha = |img: &Path| {
        sh(
            dir.path(),
            &format!(
                "debugfs -R 'cat {}' '{}?offset={}' 2>/dev/null | sha256sum",
                info.large_file,
                img.display(),
                info.root.offset()
            ),
        )
    };
    assert_eq!(sha(copy), sha(raw), "{}: {}", info.name, info.large_file);
    let file = std::fs::File::open(copy).unwrap();
    for at in garbage_at {
        let mut b = [0u8; 4096];
        file.read_exact_at(&mut b, at).unwrap();
        assert_eq!(
            b, [GARBAGE; 4096],
            "{}: free block at {at} was mapped",
            info.name
        );
    }
}

#[test]
fn fixture_bmaps_map_what_the_filesystems_need() {
    let tmp = crate::support::tmp();
    for f in Fixture::ALL {
        let info = fixtures::info(f);
        let path = fixtures::fixture_path(f, Format::Raw).unwrap();
        let base = FileStorage::open_read_only(&path).unwrap();
        let (disk, garbage_at) = fixture_node(&base, f);
        let out = subdir(tmp.path(), info.name);
        let cache = BaseCache::open(&path, CacheConfig::new(&out)).unwrap();
        let node = NodeImage::from_cow("node", &disk).unwrap();
        let spec = NodeOutputSpec {
            formats: vec![ImageFormat::Raw],
            bmap: true,
            image_sha256: true,
            sync: false,
        };
        let built = build_node(&cache, &node, &out, &spec, &NoProgress).unwrap();
        assert!(built.bmap_notes.is_empty(), "{:?}", built.bmap_notes);
        let text = std::fs::read_to_string(out.join("node.img.bmap")).unwrap();
        let (size, ranges) = parse_bmap(&text);
        assert_eq!(size, info.image_size);
        let mapped: u64 = ranges.iter().map(|(a, b)| b - a + 1).sum();
        assert!(
            mapped * 4 < size / 4096,
            "{}: {mapped} blocks mapped of {}",
            info.name,
            size / 4096
        );
        assert!(
            is_mapped(&ranges, 0, info.boot.offset()),
            "partition table area"
        );
        for at in garbage_at {
            assert!(
                !is_mapped(&ranges, at, 4096),
                "{}: free block mapped",
                info.name
            );
        }
        // A reused card: garbage everywhere, then only the mapped blocks written.
        let raw = out.join("node.img");
        let copy = out.join("copy.img");
        std::fs::copy(&raw, &copy).unwrap();
        fill_unmapped(&copy, size, &ranges);
        check_garbage_copy(&copy, &raw, f, garbage_at);
    }
}

#[test]
fn bmaptool_copy_of_every_format_reproduces_the_mapped_blocks() {
    let f = Fixture::RaspiosTrixie;
    let tmp = crate::support::tmp();
    let path = fixtures::fixture_path(f, Format::Raw).unwrap();
    let base = FileStorage::open_read_only(&path).unwrap();
    let (disk, garbage_at) = fixture_node(&base, f);
    let out = subdir(tmp.path(), "out");
    let cache = BaseCache::open(&path, CacheConfig::new(&out)).unwrap();
    let node = NodeImage::from_cow("node", &disk).unwrap();
    let spec = super::spec_all(true);
    let built = build_node(&cache, &node, &out, &spec, &NoProgress).unwrap();
    assert_eq!(
        names(&out),
        [
            "node.img",
            "node.img.bmap",
            "node.img.gz",
            "node.img.xz",
            "node.img.zst"
        ]
    );

    // Every format decodes with the stock tool to the raw output, which is base + overlay.
    let image = Window::new(&disk, 0, disk.len()).unwrap();
    let (want, _) = Sha256Digest::of_reader(image).unwrap();
    assert_eq!(built.image_sha256, Some(want));
    let sums = sh(
        &out,
        "sha256sum < node.img; for t in zstd:zst xz:xz gzip:gz; do \
         ${t%%:*} -dc node.img.${t##*:} | sha256sum; done",
    );
    for line in sums.lines() {
        assert_eq!(
            line.split_whitespace().next(),
            Some(want.to_string().as_str())
        );
    }
    let bmap = out.join("node.img.bmap");
    let (size, ranges) = parse_bmap(&std::fs::read_to_string(&bmap).unwrap());
    let raw = out.join("node.img");
    for ext in ["img", "img.zst", "img.xz", "img.gz"] {
        let src = out.join(format!("node.{ext}"));
        let dest = tmp.path().join(format!("dest-{ext}.img"));
        // bmaptool verifies the bmap's own checksum and every range's sha256 while copying.
        let r = run(
            "bmaptool",
            &[
                "copy",
                "--bmap",
                bmap.to_str().unwrap(),
                src.to_str().unwrap(),
                dest.to_str().unwrap(),
            ],
        );
        assert!(
            r.status.success(),
            "bmaptool copy {ext}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        assert_eq!(std::fs::metadata(&dest).unwrap().len(), size, "{ext}");
        assert_mapped_equal(&dest, &raw, &ranges, size, ext);
        if ext == "img.zst" {
            // bmaptool truncates a regular-file target, so the unmapped blocks read as zeros;
            // make them garbage, as on a reused card, before checking the filesystems.
            fill_unmapped(&dest, size, &ranges);
            check_garbage_copy(&dest, &raw, f, garbage_at);
        }
        std::fs::remove_file(&dest).unwrap();
    }
}
