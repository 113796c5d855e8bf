//! Offline ext4 growth (`piimage::fs::ext4::grow::grow`), proven against e2fsprogs.
//!
//! Each case makes a filesystem with the real `mke2fs -d` (a small tree of files), places it in a
//! disk file (at an unaligned offset, between bytes of a known pattern, for some cases), extends
//! the partition with zeros and grows it with our code. Then:
//!
//! - `e2fsck -fn` exits 0;
//! - `dumpe2fs -h` shows the block, inode and group counts (and the reserved-blocks count) that
//!   `resize2fs` gives for a copy of the same filesystem and size — the oracle;
//! - the superblock backup in the last backup group carries the new counts;
//! - every file reads back identical through `debugfs`;
//! - `debugfs -w` writes a file bigger than the old free space, which therefore lands (partly)
//!   in the new space, reads back identical, and `e2fsck -fn` stays clean;
//! - the bytes of the disk outside the partition are untouched.
//!
//! The matrix covers `^64bit` (Raspberry Pi OS) and `64bit` (Ubuntu), with and without
//! `metadata_csum_seed,orphan_file`, growing inside the old last group, across new groups with
//! new backup groups (3, 5, 7, 9, 25, 27), and far enough that the descriptor table takes
//! reserved blocks. Further cases: `gdt_csum` and no descriptor checksum, no `resize_inode`, 1 KiB
//! blocks, small groups (bitmap padding). Refusals (`meta_bg`, `bigalloc`, `sparse_super2`,
//! journal to replay, unclean state, too many descriptor blocks, shrinking) name the reason and
//! leave every byte as it was; two growths of the same input give the same bytes. Files are
//! sparse, so a 16 GiB filesystem costs a few MiB.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use piimage::disk::{FileStorage, Window};
use piimage::fs::ext4::Ext4Error;
use piimage::fs::ext4::grow::{GrowReport, grow};
use sha2::{Digest, Sha256};

use crate::support::{debugfs, e2fsck_quiet, run, run_ok, sh};

const MIB: u64 = 1 << 20;
/// Where the partition starts in the disk file for the offset cases (not block-aligned).
const OFFSET: u64 = 3 * MIB + 512;
/// Pattern bytes after the partition in the offset cases.
const TAIL: u64 = MIB;
/// The byte around the partition.
const PATTERN: u8 = 0xA5;

/// The files of the test tree: path inside the filesystem, content.
fn tree_files() -> Vec<(&'static str, Vec<u8>)> {
    let big: Vec<u8> = (0..3 * MIB)
        .map(|i| u8::try_from(i * 131 % 251).unwrap())
        .collect();
    vec![
        ("etc/hostname", b"raspberrypi\n".to_vec()),
        ("etc/os-release", b"PRETTY_NAME=\"Test\"\n".to_vec()),
        ("home/pi/notes.txt", b"grow me\n".repeat(1000)),
        ("usr/lib/blob.bin", big),
    ]
}

/// Makes `fs.img` in `dir` with `mke2fs -d`: `size` MiB, the `-O` features, extra options.
fn make_fs(dir: &Path, features: &str, extra: &str, mib: u64) -> PathBuf {
    let root = dir.join("tree");
    for (path, body) in tree_files() {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
    std::fs::create_dir_all(root.join("var/empty")).unwrap();
    let features = if features.is_empty() {
        String::new()
    } else {
        format!("-O {features}")
    };
    sh(
        dir,
        &format!(
            "rm -f fs.img
             mke2fs -q -F -t ext4 -T default -L rootfs {features} {extra} -d tree fs.img {mib}M \
             >/dev/null 2>&1"
        ),
    );
    dir.join("fs.img")
}

/// `dumpe2fs -h` of the filesystem at `offset` of `img` (or of a backup superblock), as
/// field -> value.
fn dumpe2fs_h(img: &Path, offset: u64, backup: Option<(u64, u32)>) -> BTreeMap<String, String> {
    let spec = format!("{}?offset={offset}", img.display());
    let mut args = vec!["-h".to_owned()];
    if let Some((block, bs)) = backup {
        args.extend(["-o".into(), format!("superblock={block}")]);
        args.extend(["-o".into(), format!("blocksize={bs}")]);
    }
    args.push(spec);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run("dumpe2fs", &args);
    assert!(
        out.status.success(),
        "dumpe2fs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

fn field(h: &BTreeMap<String, String>, key: &str) -> u64 {
    h.get(key)
        .unwrap_or_else(|| panic!("dumpe2fs has no {key:?}"))
        .parse()
        .unwrap_or_else(|e| panic!("{key}: {e}"))
}

/// The counts the oracle and our growth must agree on.
#[derive(Debug, PartialEq, Eq)]
struct Counts {
    blocks: u64,
    inodes: u64,
    groups: u64,
    reserved_blocks: u64,
    reserved_gdt_blocks: u64,
}

fn counts(h: &BTreeMap<String, String>) -> Counts {
    let blocks = field(h, "Block count");
    let first = field(h, "First block");
    Counts {
        blocks,
        inodes: field(h, "Inode count"),
        groups: (blocks - first).div_ceil(field(h, "Blocks per group")),
        reserved_blocks: field(h, "Reserved block count"),
        reserved_gdt_blocks: h
            .get("Reserved GDT blocks")
            .map_or(0, |v| v.parse().unwrap()),
    }
}

/// What `resize2fs` makes of a copy of `fs` extended to `new_len` bytes.
fn oracle(fs: &Path, new_len: u64) -> Counts {
    let dir = fs.parent().unwrap();
    sh(
        dir,
        &format!(
            "cp --sparse=always fs.img oracle.img && truncate -s {new_len} oracle.img
             resize2fs oracle.img >/dev/null 2>&1"
        ),
    );
    let img = dir.join("oracle.img");
    let c = counts(&dumpe2fs_h(&img, 0, None));
    std::fs::remove_file(img).unwrap();
    c
}

/// Builds `disk.img`: `offset` pattern bytes, the filesystem, zeros up to `new_len`, then (with
/// an offset) `TAIL` pattern bytes. Sparse where zero.
fn make_disk(fs: &Path, offset: u64, new_len: u64) -> PathBuf {
    let disk = fs.with_file_name("disk.img");
    let mut f = std::fs::File::create(&disk).unwrap();
    let tail = if offset > 0 { TAIL } else { 0 };
    f.set_len(offset + new_len + tail).unwrap();
    if offset > 0 {
        f.write_all(&vec![PATTERN; usize::try_from(offset).unwrap()])
            .unwrap();
        f.seek(SeekFrom::Start(offset + new_len)).unwrap();
        f.write_all(&vec![PATTERN; usize::try_from(TAIL).unwrap()])
            .unwrap();
    }
    drop(f);
    sh(
        fs.parent().unwrap(),
        &format!(
            "dd if=fs.img of=disk.img bs=1M seek={offset} oflag=seek_bytes conv=sparse,notrunc \
             status=none"
        ),
    );
    disk
}

fn grow_disk(disk: &Path, offset: u64, new_len: u64) -> Result<GrowReport, Ext4Error> {
    let storage = FileStorage::open_read_write(disk).unwrap();
    let window = Window::new(storage, offset, new_len).unwrap();
    grow(&window, new_len)
}

fn sha(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

/// The bytes of `disk` outside `[offset, offset + len)` are still the pattern.
fn assert_outside_untouched(disk: &Path, offset: u64, len: u64) {
    if offset == 0 {
        return;
    }
    let mut f = std::fs::File::open(disk).unwrap();
    let mut head = vec![0u8; usize::try_from(offset).unwrap()];
    f.read_exact(&mut head).unwrap();
    assert!(
        head.iter().all(|&b| b == PATTERN),
        "bytes before the partition changed"
    );
    f.seek(SeekFrom::Start(offset + len)).unwrap();
    let mut tail = Vec::new();
    f.read_to_end(&mut tail).unwrap();
    assert_eq!(tail.len() as u64, TAIL);
    assert!(
        tail.iter().all(|&b| b == PATTERN),
        "bytes after the partition changed"
    );
}

/// Physical block ranges of `path`'s extents, from `debugfs ex`.
fn extents(disk: &Path, offset: u64, path: &str) -> Vec<(u64, u64)> {
    debugfs(disk, offset, &format!("ex {path}"))
        .lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            // "0/ 0   1/  2     0 - 25932   6835 -  32767  25933"
            let dash: Vec<usize> = (0..cols.len()).filter(|&i| cols[i] == "-").collect();
            let at = *dash.get(1)?;
            Some((cols[at - 1].parse().ok()?, cols[at + 1].parse().ok()?))
        })
        .collect()
}

/// One growth case.
struct Case {
    /// `mke2fs -O`.
    features: &'static str,
    /// More `mke2fs` options.
    extra: &'static str,
    /// Size before, MiB.
    old_mib: u64,
    /// Size after, bytes.
    new_len: u64,
    /// Partition offset in the disk file.
    offset: u64,
    /// Whether the descriptor table must take reserved blocks.
    takes_reserved: bool,
}

const PI: &str = "^64bit";
const PI_147: &str = "^64bit,metadata_csum_seed,orphan_file";
const UBUNTU: &str = "64bit";
const UBUNTU_147: &str = "64bit,metadata_csum_seed,orphan_file";

fn run_case(case: &Case) {
    let dir = crate::support::tmp();
    let fs = make_fs(dir.path(), case.features, case.extra, case.old_mib);
    let before = dumpe2fs_h(&fs, 0, None);
    let old = counts(&before);
    let bs = field(&before, "Block size");
    let want = oracle(&fs, case.new_len);
    let disk = make_disk(&fs, case.offset, case.new_len);
    let off = case.offset;

    let report = grow_disk(&disk, off, case.new_len).unwrap();
    e2fsck_quiet(&disk, off);
    let after = dumpe2fs_h(&disk, off, None);
    let got = counts(&after);
    assert_eq!(got, want, "ours vs resize2fs");
    assert_eq!(
        report,
        GrowReport {
            old_blocks: old.blocks,
            new_blocks: got.blocks,
            old_groups: u32::try_from(old.groups).unwrap(),
            new_groups: u32::try_from(got.groups).unwrap(),
        }
    );
    assert_eq!(
        got.reserved_gdt_blocks < old.reserved_gdt_blocks,
        case.takes_reserved,
        "reserved descriptor blocks {} -> {}",
        old.reserved_gdt_blocks,
        got.reserved_gdt_blocks
    );
    assert_eq!(after.get("Filesystem state").unwrap(), "clean");

    // The last backup superblock carries the new geometry and its group number.
    let last_backup = (1..got.groups)
        .rev()
        .find(|&g| [1u64, 3, 5, 7].iter().any(|&b| is_power(g, b)))
        .unwrap();
    let first = field(&after, "First block");
    let backup_block = first + last_backup * field(&after, "Blocks per group");
    let copy = dumpe2fs_h(&disk, off, Some((backup_block, u32::try_from(bs).unwrap())));
    assert_eq!(counts(&copy), got, "backup in group {last_backup}");
    assert_backups_consistent(&disk, off);

    for (path, body) in tree_files() {
        let out = run(
            "debugfs",
            &["-R", &format!("cat /{path}"), &spec(&disk, off)],
        );
        assert!(out.stdout == body, "{path} reads back different");
    }

    // A file bigger than the old free space must use new blocks.
    let old_free = field(&before, "Free blocks") * bs;
    let new_free = field(&after, "Free blocks") * bs;
    let size = old_free + ((new_free - old_free) / 2).min(64 * MIB);
    let src = dir.path().join("big.bin");
    // A 1 MiB pattern, each copy stamped with its index: no two MiB of the file alike.
    let chunk: Vec<u8> = (0..MIB).map(|i| u8::try_from(i % 253).unwrap()).collect();
    let mut body = Vec::with_capacity(usize::try_from(size).unwrap());
    while (body.len() as u64) < size {
        let n = body.len() as u64 / MIB;
        body.extend_from_slice(&n.to_le_bytes());
        body.extend_from_slice(&chunk[8..]);
    }
    body.truncate(usize::try_from(size).unwrap());
    std::fs::write(&src, &body).unwrap();
    sh(
        dir.path(),
        &format!(
            "debugfs -w -R 'write big.bin /big' '{}' >/dev/null 2>&1",
            spec(&disk, off)
        ),
    );
    let ex = extents(&disk, off, "/big");
    assert!(
        ex.iter().any(|&(_, last)| last >= old.blocks),
        "no block of /big past the old end ({} blocks): {ex:?}",
        old.blocks
    );
    e2fsck_quiet(&disk, off);
    let out = run("debugfs", &["-R", "cat /big", &spec(&disk, off)]);
    assert!(sha(&out.stdout) == sha(&body), "/big reads back different");
    assert_outside_untouched(&disk, off, case.new_len);
}

fn read_at(f: &std::fs::File, at: u64, len: u64) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let mut b = vec![0u8; usize::try_from(len).unwrap()];
    f.read_exact_at(&mut b, at).unwrap();
    b
}

fn le(b: &[u8], at: usize, n: usize) -> u64 {
    (0..n).rev().fold(0, |v, i| v << 8 | u64::from(b[at + i]))
}

/// Every superblock backup equals the primary but for `s_state`, `s_block_group_nr` (its group)
/// and the checksum; every descriptor-table backup equals the primary. Decoded here, apart from
/// the code under test, from `super.html`.
fn assert_backups_consistent(disk: &Path, offset: u64) {
    let f = std::fs::File::open(disk).unwrap();
    let sb = read_at(&f, offset + 1024, 1024);
    let is64 = le(&sb, 0x60, 4) & 0x80 != 0;
    let blocks = le(&sb, 0x4, 4) | if is64 { le(&sb, 0x150, 4) << 32 } else { 0 };
    let first = le(&sb, 0x14, 4);
    let bs = 1024u64 << le(&sb, 0x18, 4);
    let bpg = le(&sb, 0x20, 4);
    let desc = if is64 { le(&sb, 0xFE, 2) } else { 32 };
    let groups = (blocks - first).div_ceil(bpg);
    let gdt_len = (groups * desc).div_ceil(bs) * bs;
    let gdt = read_at(&f, offset + (first + 1) * bs, gdt_len);
    let masked = |mut b: Vec<u8>| {
        for r in [0x3A..0x3C, 0x5A..0x5C, 0x3FC..0x400] {
            b[r].fill(0);
        }
        b
    };
    let primary = masked(sb.clone());
    let backups: Vec<u64> = (1..groups)
        .filter(|&g| [1, 3, 5, 7].iter().any(|&b| is_power(g, b)))
        .collect();
    for &g in &backups {
        let start = first + g * bpg;
        let copy = read_at(&f, offset + start * bs, 1024);
        assert_eq!(
            le(&copy, 0x5A, 2),
            g % 65536,
            "s_block_group_nr of group {g}"
        );
        assert!(
            masked(copy) == primary,
            "superblock backup in group {g} differs"
        );
        assert!(
            read_at(&f, offset + (start + 1) * bs, gdt_len) == gdt,
            "descriptor backup in group {g} differs"
        );
    }
}

fn spec(disk: &Path, offset: u64) -> String {
    format!("{}?offset={offset}", disk.display())
}

fn is_power(mut n: u64, base: u64) -> bool {
    if base == 1 {
        return n == 1;
    }
    while n > 1 && n.is_multiple_of(base) {
        n /= base;
    }
    n == 1
}

/// 160 MiB: group 1 (a backup group) is the short last one. 300 MiB: group 2 (no backup) is.
const SMALL_OLD: u64 = 160;
const BIG_OLD: u64 = 300;
/// 29 groups: new backups in 3, 5, 7, 9, 25 and 27, a short last group.
const MEDIUM: u64 = 3700 * MIB;

macro_rules! cases {
    ($($name:ident: $case:expr;)*) => {$(
        #[test]
        fn $name() {
            run_case(&$case);
        }
    )*};
}

cases! {
    pi_small: Case { features: PI, extra: "", old_mib: SMALL_OLD, new_len: 240 * MIB, offset: 0, takes_reserved: false };
    pi_medium: Case { features: PI, extra: "", old_mib: SMALL_OLD, new_len: MEDIUM, offset: OFFSET, takes_reserved: false };
    // 130 groups of 32-byte descriptors: a second descriptor block; backups in 49, 81, 125.
    pi_large: Case { features: PI, extra: "", old_mib: SMALL_OLD, new_len: 16600 * MIB, offset: 0, takes_reserved: true };
    pi147_small: Case { features: PI_147, extra: "", old_mib: BIG_OLD, new_len: 380 * MIB, offset: OFFSET, takes_reserved: false };
    pi147_medium: Case { features: PI_147, extra: "", old_mib: BIG_OLD, new_len: MEDIUM, offset: 0, takes_reserved: false };
    pi147_large: Case { features: PI_147, extra: "", old_mib: BIG_OLD, new_len: 16600 * MIB, offset: OFFSET, takes_reserved: true };
    ubuntu_small: Case { features: UBUNTU, extra: "", old_mib: SMALL_OLD, new_len: 240 * MIB, offset: OFFSET, takes_reserved: false };
    ubuntu_medium: Case { features: UBUNTU, extra: "", old_mib: SMALL_OLD, new_len: MEDIUM, offset: 0, takes_reserved: false };
    // 65 groups of 64-byte descriptors: a second descriptor block; a backup in 49.
    ubuntu_large: Case { features: UBUNTU, extra: "", old_mib: SMALL_OLD, new_len: 8300 * MIB, offset: OFFSET, takes_reserved: true };
    ubuntu147_small: Case { features: UBUNTU_147, extra: "", old_mib: BIG_OLD, new_len: 380 * MIB, offset: 0, takes_reserved: false };
    ubuntu147_medium: Case { features: UBUNTU_147, extra: "", old_mib: BIG_OLD, new_len: MEDIUM, offset: OFFSET, takes_reserved: false };
    ubuntu147_large: Case { features: UBUNTU_147, extra: "", old_mib: BIG_OLD, new_len: 8300 * MIB, offset: 0, takes_reserved: true };
    // crc16 descriptor checksums, no bitmap checksums.
    gdt_csum_medium: Case { features: "^64bit,^metadata_csum,uninit_bg", extra: "", old_mib: SMALL_OLD, new_len: MEDIUM, offset: 0, takes_reserved: false };
    // No descriptor checksum: no lazy-init flags.
    no_csum_medium: Case { features: "^64bit,^metadata_csum", extra: "", old_mib: SMALL_OLD, new_len: MEDIUM, offset: 0, takes_reserved: false };
    // No reserved descriptor blocks: growth within the descriptor table's slack.
    no_resize_inode_medium: Case { features: "^64bit,^resize_inode", extra: "", old_mib: SMALL_OLD, new_len: MEDIUM, offset: 0, takes_reserved: false };
    // 1 KiB blocks, 8 MiB groups: 75 groups need 3 descriptor blocks (32 per block).
    one_k_large: Case { features: PI, extra: "-b 1024", old_mib: 64, new_len: 600 * MIB, offset: OFFSET, takes_reserved: true };
    // 2 KiB blocks, 32 MiB groups: 47 groups of 64-byte descriptors need a second block.
    two_k_large: Case { features: UBUNTU_147, extra: "-b 2048", old_mib: 100, new_len: 1500 * MIB, offset: 0, takes_reserved: true };
    // One short group (group 0, with the primary superblock and every bitmap) grows full.
    pi_single_group: Case { features: PI_147, extra: "", old_mib: 64, new_len: 1024 * MIB, offset: OFFSET, takes_reserved: false };
    // The old last group is full: only new groups.
    ubuntu_aligned: Case { features: UBUNTU, extra: "", old_mib: 128, new_len: 600 * MIB, offset: 0, takes_reserved: false };
    // 16 MiB groups: bitmaps padded past 4096 blocks; many groups, reserved blocks taken.
    small_groups_large: Case { features: PI, extra: "-g 4096", old_mib: 100, new_len: 2100 * MIB, offset: 0, takes_reserved: true };
}

/// Refused growth: the error names the reason and no byte of the disk changes.
fn assert_refused(what: &str, disk: &Path, new_len: u64, check: impl Fn(&Ext4Error) -> bool) {
    let before = std::fs::read(disk).unwrap();
    let blocks_before = std::fs::metadata(disk).unwrap().blocks();
    let err = grow_disk(disk, 0, new_len).unwrap_err();
    assert!(check(&err), "{what}: unexpected error {err:?}");
    assert!(
        std::fs::read(disk).unwrap() == before,
        "{what}: refused, but written: {err}"
    );
    assert_eq!(std::fs::metadata(disk).unwrap().blocks(), blocks_before);
}

#[test]
fn unsupported_features_are_refused_by_name() {
    let dir = crate::support::tmp();
    for (features, extra, name) in [
        ("meta_bg,^resize_inode", "", "meta_bg"),
        ("bigalloc", "-C 16384", "bigalloc"),
        ("sparse_super2", "", "sparse_super2"),
        ("^sparse_super,^resize_inode", "", "^sparse_super"),
        ("quota", "", "quota"),
    ] {
        let fs = make_fs(dir.path(), features, extra, 64);
        let disk = make_disk(&fs, 0, 100 * MIB);
        assert_refused(features, &disk, 100 * MIB, |e| {
            matches!(e, Ext4Error::Unsupported { feature } if feature == name)
                && e.to_string().contains(&format!("`{name}`"))
        });
    }
}

#[test]
fn unclean_filesystems_are_refused() {
    let dir = crate::support::tmp();
    let journal_tx = "printf 'jo\\njw -b 100 /dev/null\\njc\\n' > jw.cmd; \
                      debugfs -w -f jw.cmd disk.img >/dev/null 2>&1";
    let ssv = |f: &str| format!("debugfs -w -R 'ssv {f}' disk.img >/dev/null 2>&1");
    for (what, script, needle) in [
        ("needs_recovery", journal_tx.to_owned(), "needs_recovery"),
        (
            "journal not empty",
            format!(
                "{journal_tx}; debugfs -w -R 'feature -needs_recovery' disk.img >/dev/null 2>&1"
            ),
            "journal is not empty",
        ),
        ("not clean", ssv("state 0"), "not cleanly unmounted"),
        ("errors", ssv("state 3"), "recorded errors"),
        ("orphans", ssv("last_orphan 12"), "orphan"),
    ] {
        let fs = make_fs(dir.path(), PI_147, "", 64);
        let disk = make_disk(&fs, 0, 100 * MIB);
        sh(dir.path(), &script);
        assert_refused(what, &disk, 100 * MIB, |e| {
            matches!(e, Ext4Error::NotClean { reason } if reason.contains(needle))
                && e.to_string().contains("e2fsck -f")
        });
    }
}

#[test]
fn growth_past_the_reserved_descriptor_blocks_is_refused() {
    let dir = crate::support::tmp();
    let fs = make_fs(dir.path(), PI, "", SMALL_OLD);
    // 1 descriptor block + 9 reserved hold 1280 groups; 1281 groups (160 GiB + 128 MiB) do not.
    let new_len = 1281 * 128 * MIB;
    let disk = make_disk(&fs, 0, new_len);
    // Too big to read twice: compare the filesystem's own bytes and the allocated size.
    let head = |d: &Path| {
        let mut b = vec![0u8; usize::try_from(SMALL_OLD * MIB).unwrap()];
        std::fs::File::open(d).unwrap().read_exact(&mut b).unwrap();
        sha(&b)
    };
    let before = head(&disk);
    let blocks = std::fs::metadata(&disk).unwrap().blocks();
    let err = grow_disk(&disk, 0, new_len).unwrap_err();
    assert!(
        matches!(&err, Ext4Error::CannotGrow(m) if m.contains("11 descriptor blocks")),
        "{err:?}"
    );
    assert!(head(&disk) == before);
    assert_eq!(std::fs::metadata(&disk).unwrap().blocks(), blocks);
    // resize2fs can (it moves blocks); 1280 groups are within reach for us.
    assert!(grow_disk(&disk, 0, 1280 * 128 * MIB).is_ok());
    e2fsck_quiet(&disk, 0);
}

#[test]
fn shrinking_is_refused_and_no_growth_is_no_change() {
    let dir = crate::support::tmp();
    let fs = make_fs(dir.path(), PI, "", SMALL_OLD);
    let disk = make_disk(&fs, 0, SMALL_OLD * MIB);
    assert_refused(
        "shrink",
        &disk,
        100 * MIB,
        |e| matches!(e, Ext4Error::CannotGrow(m) if m.contains("shrinking")),
    );
    // The same size, or a fragment of a group too small to keep, changes nothing.
    let same = |disk: &Path, len: u64| {
        let before = std::fs::read(disk).unwrap();
        let r = grow_disk(disk, 0, len).unwrap();
        assert!(!r.grew(), "{r:?}");
        assert!(std::fs::read(disk).unwrap() == before);
        r
    };
    same(&disk, SMALL_OLD * MIB);
    let dir2 = crate::support::tmp();
    let fs2 = make_fs(dir2.path(), PI, "", 128);
    let len = 128 * MIB + 100 * 4096;
    let disk2 = make_disk(&fs2, 0, len);
    let r = same(&disk2, len);
    assert_eq!((r.old_blocks, r.old_groups, r.new_groups), (32768, 1, 1));
    assert_eq!(oracle(&fs2, len).blocks, 32768, "resize2fs agrees");
}

#[test]
fn nonzero_bytes_past_the_end_are_refused() {
    let dir = crate::support::tmp();
    let fs = make_fs(dir.path(), PI, "", SMALL_OLD);
    let new_len = 300 * MIB;
    let disk = make_disk(&fs, 0, new_len);
    // Group 2's inode table will start at block 65538 (256 MiB + 8 KiB).
    let f = std::fs::OpenOptions::new().write(true).open(&disk).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &[PATTERN; 65536], 256 * MIB).unwrap();
    drop(f);
    assert_refused(
        "garbage",
        &disk,
        new_len,
        |e| matches!(e, Ext4Error::CannotGrow(m) if m.contains("not zero")),
    );
}

/// Growth after `resize2fs` (its placement: bitmaps in old groups, `BLOCK_UNINIT` groups), twice
/// in a row, then `resize2fs` again on our result.
#[test]
fn chained_with_resize2fs() {
    let dir = crate::support::tmp();
    let fs = make_fs(dir.path(), PI_147, "", SMALL_OLD);
    sh(
        dir.path(),
        "truncate -s 1G fs.img && resize2fs fs.img >/dev/null 2>&1",
    );
    let final_len = 17 * 1024 * MIB;
    let want = oracle(&fs, final_len);
    for len in [5 * 1024 * MIB, final_len] {
        sh(dir.path(), &format!("truncate -s {len} fs.img"));
        assert!(grow_disk(&fs, 0, len).unwrap().grew());
        e2fsck_quiet(&fs, 0);
    }
    assert_eq!(counts(&dumpe2fs_h(&fs, 0, None)), want);
    assert_backups_consistent(&fs, 0);
    sh(
        dir.path(),
        "truncate -s 20G fs.img && resize2fs fs.img >/dev/null 2>&1",
    );
    e2fsck_quiet(&fs, 0);
    for (path, body) in tree_files() {
        let out = run("debugfs", &["-R", &format!("cat /{path}"), &spec(&fs, 0)]);
        assert!(out.stdout == body, "{path} reads back different");
    }
}

#[test]
fn growth_is_deterministic() {
    let dir = crate::support::tmp();
    let fs = make_fs(dir.path(), PI_147, "", SMALL_OLD);
    // 6 groups: a new backup in group 3, reserved blocks untouched.
    let new_len = 700 * MIB;
    let a = make_disk(&fs, 0, new_len);
    let b = dir.path().join("copy.img");
    sh(dir.path(), "cp --sparse=always disk.img copy.img");
    grow_disk(&a, 0, new_len).unwrap();
    grow_disk(&b, 0, new_len).unwrap();
    run_ok("cmp", &[a.to_str().unwrap(), b.to_str().unwrap()]);
    e2fsck_quiet(&a, 0);
}
