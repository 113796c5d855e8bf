//! ext4 writes through `Ext4Writer` (rust-fs-ext4 behind our `RootFs`), checked with the real
//! e2fsprogs: `e2fsck -fn` must exit 0 and `debugfs` must read back what was written, on every
//! feature mix of the official images (`docs/ext4-writer.md`).

mod fixture;
mod oracle;
mod prop;
mod refusals;

use std::collections::BTreeSet;
use std::path::Path;

use piimage::disk::{FileStorage, Window};
use piimage::fs::ext4::rootfs::{FileKind, MetaChange, Owner, RootFs, RootFsError};
use piimage::fs::ext4::write::{Ext4Writer, WriteOptions};

use fixture::{
    Entry, Fixture, MIX_1K, MIX_B, MIX_PIGEN, MIX_TRIXIE, MIX_UBUNTU, MIXES, Mix, Node, OFFSET,
    assert_outside_untouched, copy_disk, fixture,
};
use oracle::{Mtimes, assert_same, compare, debugfs_script, e2fsck, extents};
use prop::{EPOCH, Rng, base_seed, cases, run_case, tally};

use crate::support::sh;

fn open(disk: &Path, fx: &Fixture, opts: WriteOptions) -> Ext4Writer<FileStorage> {
    let storage = FileStorage::open_read_write(disk).unwrap();
    Ext4Writer::open(Window::new(storage, OFFSET, fx.fs_len).unwrap(), opts).unwrap()
}

fn open_result(disk: &Path, len: u64, offset: u64) -> Result<Ext4Writer<FileStorage>, RootFsError> {
    let storage = FileStorage::open_read_write(disk).unwrap();
    Ext4Writer::open(
        Window::new(storage, offset, len).unwrap(),
        WriteOptions::new(EPOCH),
    )
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| u8::try_from((i * 31 + usize::from(seed)) % 251).unwrap())
        .collect()
}

fn stat_field(disk: &Path, path: &str, key: &str, scratch: &Path) -> String {
    let cmd = format!("stat \"{path}\"");
    let out = debugfs_script(disk, std::slice::from_ref(&cmd), scratch);
    let stat = out.get(&cmd).cloned().unwrap_or_default();
    let at = stat.find(key).map_or(stat.len(), |i| i + key.len());
    stat[at..]
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

const MTIME: i64 = 1_600_000_000;

/// The expected state of a directed test.
struct Model {
    tree: fixture::Tree,
    touched: BTreeSet<String>,
    mtimes: Mtimes,
}

impl Model {
    fn new(fx: &Fixture) -> Self {
        Self {
            tree: fx.tree.clone(),
            touched: BTreeSet::new(),
            mtimes: Mtimes::new(),
        }
    }

    fn set(&mut self, path: &str, node: Node, mode: u16, owner: Owner) {
        self.touched.insert(path.to_owned());
        self.tree.insert(
            path.to_owned(),
            Entry {
                node,
                mode,
                uid: owner.uid,
                gid: owner.gid,
            },
        );
    }

    fn put(
        &mut self,
        fs: &mut Ext4Writer<FileStorage>,
        path: &str,
        data: Vec<u8>,
        mode: u16,
        owner: Owner,
    ) {
        fs.write_file(path, &data, mode, owner, MTIME).unwrap();
        self.mtimes.insert(path.to_owned(), MTIME);
        self.set(path, Node::File(data), mode, owner);
    }
}

/// Directed operations on one mix, with the semantics the lead relies on.
fn directed(mix: Mix) {
    let fx = fixture(mix);
    let dir = crate::support::tmp();
    let disk = copy_disk(&fx, dir.path());
    // An xattr on a file we will replace: replacing keeps the inode, so it must survive.
    let spec = format!("{}?offset={OFFSET}", disk.display());
    sh(
        dir.path(),
        &format!("debugfs -w -R 'ea_set /usr/sbin/sshd user.piimage kept' '{spec}' 2>/dev/null"),
    );
    let ino_before = stat_field(&disk, "/usr/sbin/sshd", "Inode:", dir.path());
    let mut m = Model::new(&fx);
    let mut fs = open(&disk, &fx, WriteOptions::new(EPOCH));

    // lstat semantics and no symlink following at this layer.
    let bin = fs.lookup("/bin").unwrap().unwrap();
    assert_eq!(bin.kind, FileKind::Symlink);
    assert_eq!(bin.symlink_target.as_deref(), Some("usr/bin"));
    assert!(matches!(
        fs.read("/bin/command-with-a-long-name-00001"),
        Err(RootFsError::NotADirectory { .. })
    ));
    assert!(matches!(
        fs.write_file("/lib/x.service", b"x", 0o644, Owner::ROOT, 0),
        Err(RootFsError::NotADirectory { .. })
    ));
    assert!(fs.lookup("/nope/deeper").unwrap().is_none());
    assert!(matches!(
        fs.write_file("/bin", b"x", 0o644, Owner::ROOT, 0),
        Err(RootFsError::WrongKind {
            found: FileKind::Symlink,
            ..
        })
    ));
    assert!(matches!(
        fs.set_meta(
            "/bin",
            MetaChange {
                mode: Some(0o700),
                ..MetaChange::default()
            }
        ),
        Err(RootFsError::Unsupported { .. })
    ));
    assert!(matches!(
        fs.unlink("/usr"),
        Err(RootFsError::NotEmpty { .. })
    ));
    assert!(matches!(
        fs.write_file("relative", b"", 0o644, Owner::ROOT, 0),
        Err(RootFsError::InvalidPath { .. })
    ));
    assert_eq!(
        fs.read("/usr/bin/command-with-a-long-name-00042").unwrap(),
        b"#!/bin/sh\necho 42\n"
    );
    assert_eq!(fs.list("/usr/bin").unwrap().len(), fixture::HTREE_ENTRIES);

    m.put(
        &mut fs,
        "/etc/hostname",
        b"node-01\n".to_vec(),
        0o644,
        Owner::ROOT,
    );
    m.put(
        &mut fs,
        "/usr/sbin/sshd",
        pattern(70_000, 3),
        0o4755,
        Owner::ROOT,
    );
    m.put(
        &mut fs,
        "/etc/big.bin",
        pattern(7 << 20, 9),
        0o600,
        Owner::new(100_000, 70_000),
    );
    m.put(&mut fs, "/etc/empty", Vec::new(), 0o640, Owner::new(0, 42));
    fs.mkdir_p("/home/pi/.ssh/a/b/c", 0o700, Owner::new(1000, 1000))
        .unwrap();
    for p in [
        "/home/pi/.ssh",
        "/home/pi/.ssh/a",
        "/home/pi/.ssh/a/b",
        "/home/pi/.ssh/a/b/c",
    ] {
        m.set(p, Node::Dir, 0o700, Owner::new(1000, 1000));
    }
    m.touched.insert("/home/pi".to_owned());
    m.put(
        &mut fs,
        "/home/pi/.ssh/authorized_keys",
        b"ssh-ed25519 AAAA k\n".to_vec(),
        0o600,
        Owner::new(1000, 1000),
    );
    let slow = format!("/usr/lib/{}", "t".repeat(100));
    for (path, target) in [("/etc/fast", "../usr/bin/x"), ("/etc/slow", slow.as_str())] {
        fs.symlink(path, target, Owner::new(5, 6)).unwrap();
        assert_eq!(
            fs.lookup(path).unwrap().unwrap().symlink_target.as_deref(),
            Some(target)
        );
        m.set(
            path,
            Node::Symlink(target.to_owned()),
            0o777,
            Owner::new(5, 6),
        );
    }
    assert!(matches!(
        fs.symlink("/etc/fast", "x", Owner::ROOT),
        Err(RootFsError::AlreadyExists { .. })
    ));
    fs.unlink("/etc/long-link").unwrap();
    m.tree.remove("/etc/long-link");
    fs.unlink("/var/empty").unwrap();
    m.tree.remove("/var/empty");
    m.touched.insert("/var".to_owned());
    fs.set_meta(
        "/etc/shadow",
        MetaChange {
            mode: Some(0o600),
            uid: Some(0),
            gid: Some(4_000_000_000),
        },
    )
    .unwrap();
    let e = m.tree.get_mut("/etc/shadow").unwrap();
    (e.mode, e.gid) = (0o600, 4_000_000_000);
    m.touched.insert("/etc/shadow".to_owned());
    let meta = fs.lookup("/etc/big.bin").unwrap().unwrap();
    assert_eq!(
        (
            meta.kind, meta.mode, meta.owner, meta.size, meta.links, meta.mtime
        ),
        (
            FileKind::File,
            0o600,
            Owner::new(100_000, 70_000),
            7 << 20,
            1,
            MTIME
        )
    );
    assert_eq!(fs.read("/etc/big.bin").unwrap(), pattern(7 << 20, 9));
    assert!(fs.free_bytes().unwrap() > 0);
    fs.finish().unwrap();
    assert!(matches!(fs.lookup("/"), Err(RootFsError::Finished { .. })));

    assert_same(
        &compare(&disk, &m.tree, &m.touched, &m.mtimes, dir.path()),
        mix.name,
    );
    assert_eq!(
        stat_field(&disk, "/usr/sbin/sshd", "Inode:", dir.path()),
        ino_before,
        "replacing must keep the inode"
    );
    let ea = sh(
        dir.path(),
        &format!("debugfs -R 'ea_get /usr/sbin/sshd user.piimage' '{spec}' 2>/dev/null"),
    );
    assert!(ea.contains("kept"), "xattr lost on replace: {ea}");
    assert_outside_untouched(&disk, fx.fs_len);
}

#[test]
fn directed_ops_b_nocsum() {
    directed(MIX_B);
}

#[test]
fn directed_ops_pigen() {
    directed(MIX_PIGEN);
}

#[test]
fn directed_ops_ubuntu() {
    directed(MIX_UBUNTU);
}

#[test]
fn directed_ops_trixie() {
    directed(MIX_TRIXIE);
}

#[test]
fn directed_ops_1k_blocks() {
    directed(MIX_1K);
}

/// What rust-fs-ext4 itself leaves when it runs out of space (our estimate bypassed): the
/// chunks of a large `pwrite` committed before the failure stay, and the filesystem is clean.
#[test]
fn crate_out_of_space_leaves_a_consistent_filesystem() {
    use fs_ext4::Filesystem;
    use piimage::fs::ext4::write::{FixedRuntime, WindowDevice};
    use std::sync::Arc;
    let fx = fixture(MIX_TRIXIE);
    let dir = crate::support::tmp();
    let disk = copy_disk(&fx, dir.path());
    let storage = FileStorage::open_read_write(&disk).unwrap();
    let window = Arc::new(Window::new(storage, OFFSET, fx.fs_len).unwrap());
    let fs = Filesystem::mount_with_runtime(
        Arc::new(WindowDevice::new(window)),
        Arc::new(FixedRuntime::new(EPOCH)),
    )
    .unwrap();
    let ino = fs.apply_create("/huge", 0o644).unwrap();
    let err = fs
        .apply_pwrite_ino(ino, 0, &pattern(80 << 20, 1))
        .unwrap_err();
    assert!(
        matches!(err, fs_ext4::Error::NoSpaceLeftOnDevice),
        "{err:?}"
    );
    let left = fs.stat_ino(ino).unwrap().size;
    fs.finish().unwrap();
    e2fsck(&disk).unwrap();
    eprintln!("crate ENOSPC: /huge left with {left} bytes of 80 MiB; e2fsck clean");
}

fn prop_mix(mix: Mix) {
    let base = base_seed();
    let logs: Vec<Vec<String>> = (0..cases()).map(|case| run_case(mix, base, case)).collect();
    eprintln!(
        "{}: {} cases (PIIMAGE_PROPTEST_SEED={base}): {}",
        mix.name,
        logs.len(),
        tally(&logs)
    );
}

#[test]
fn random_ops_match_model_b_nocsum() {
    prop_mix(MIX_B);
}

#[test]
fn random_ops_match_model_pigen() {
    prop_mix(MIX_PIGEN);
}

#[test]
fn random_ops_match_model_ubuntu() {
    prop_mix(MIX_UBUNTU);
}

#[test]
fn random_ops_match_model_trixie() {
    prop_mix(MIX_TRIXIE);
}

/// Free space broken into 64 KiB holes: a 6 MiB file needs many extents and a depth-1 tree.
#[test]
fn fragmented_free_space_gives_multi_extent_files() {
    let fx = fixture(MIX_PIGEN);
    let dir = crate::support::tmp();
    let disk = copy_disk(&fx, dir.path());
    let opts = WriteOptions {
        keep_free_bytes: 0,
        ..WriteOptions::new(EPOCH)
    };
    let mut fs = open(&disk, &fx, opts);
    fs.mkdir_p("/frag", 0o755, Owner::ROOT).unwrap();
    let mut i = 0;
    let block = pattern(65536, 1);
    while fs
        .write_file(&format!("/frag/{i:05}"), &block, 0o644, Owner::ROOT, 0)
        .is_ok()
    {
        i += 1;
    }
    // A write refused by the crate itself may leave the file created: drop it.
    if fs.lookup(&format!("/frag/{i:05}")).unwrap().is_some() {
        fs.unlink(&format!("/frag/{i:05}")).unwrap();
    }
    for j in (0..i).step_by(2) {
        fs.unlink(&format!("/frag/{j:05}")).unwrap();
    }
    let big = pattern(6 << 20, 7);
    fs.write_file("/big", &big, 0o644, Owner::ROOT, 0).unwrap();
    assert_eq!(fs.read("/big").unwrap(), big);
    fs.finish().unwrap();
    e2fsck(&disk).unwrap();
    let (leaves, depth) = extents(&disk, "/big", dir.path());
    assert!(leaves > 4 && depth == 1, "{leaves} extents, depth {depth}");
    eprintln!("fragmented: /big has {leaves} extents under a depth-{depth} tree");
    let mut tree = fx.tree.clone();
    tree.insert(
        "/big".into(),
        Entry {
            node: Node::File(big),
            mode: 0o644,
            uid: 0,
            gid: 0,
        },
    );
    for j in (1..i).step_by(2) {
        tree.insert(
            format!("/frag/{j:05}"),
            Entry {
                node: Node::File(pattern(65536, 1)),
                mode: 0o644,
                uid: 0,
                gid: 0,
            },
        );
    }
    tree.insert(
        "/frag".into(),
        Entry {
            node: Node::Dir,
            mode: 0o755,
            uid: 0,
            gid: 0,
        },
    );
    let touched = BTreeSet::from(["/big".to_owned(), "/frag".to_owned()]);
    assert_same(
        &compare(&disk, &tree, &touched, &Mtimes::new(), dir.path()),
        "fragmented",
    );
}

/// Filling the filesystem stops with the clear error; what was written before stays consistent.
#[test]
fn filling_the_filesystem_is_a_clear_out_of_space_error() {
    for keep_free in [WriteOptions::new(EPOCH).keep_free_bytes, 0] {
        let fx = fixture(MIX_TRIXIE);
        let dir = crate::support::tmp();
        let disk = copy_disk(&fx, dir.path());
        let opts = WriteOptions {
            keep_free_bytes: keep_free,
            ..WriteOptions::new(EPOCH)
        };
        let mut fs = open(&disk, &fx, opts);
        let chunk = pattern(3 << 20, 5);
        let mut written = 0;
        let err = loop {
            match fs.write_file(&format!("/fill-{written}"), &chunk, 0o644, Owner::ROOT, 0) {
                Ok(()) => written += 1,
                Err(e) => break e,
            }
            assert!(written < 100, "never ran out of space");
        };
        let text = err.to_string();
        assert!(
            matches!(err, RootFsError::OutOfSpace { .. }) && text.contains("MiB more"),
            "{text}"
        );
        assert!(err.short_by_bytes().unwrap() > 0, "{text}");
        // Small files still fit in what is left above the margin.
        fs.write_file("/after", b"small", 0o644, Owner::ROOT, 0)
            .unwrap();
        fs.finish().unwrap();
        e2fsck(&disk).unwrap();
        assert!(
            written > 5,
            "{written} files of 3 MiB in a 64 MiB filesystem"
        );
    }
}

/// The same operations with the same epoch give byte-identical partitions.
#[test]
fn same_ops_and_epoch_give_identical_partitions() {
    let fx = fixture(MIX_TRIXIE);
    let dir = crate::support::tmp();
    let run = |name: &str, epoch: i64| {
        let sub = dir.path().join(name);
        std::fs::create_dir(&sub).unwrap();
        let disk = copy_disk(&fx, &sub);
        let mut fs = open(&disk, &fx, WriteOptions::new(epoch));
        let mut rng = Rng::new(42);
        fs.mkdir_p("/etc/piimage/deep/er", 0o755, Owner::new(1000, 1000))
            .unwrap();
        for i in 0..60 {
            let n = usize::try_from(rng.range(0, 50_000)).unwrap();
            fs.write_file(
                &format!("/etc/piimage/f{i}"),
                &rng.bytes(n),
                0o644,
                Owner::ROOT,
                7,
            )
            .unwrap();
        }
        fs.write_file("/etc/hostname", b"n1\n", 0o644, Owner::ROOT, 7)
            .unwrap();
        fs.write_file("/usr/bin/big", &pattern(3 << 20, 1), 0o755, Owner::ROOT, 7)
            .unwrap();
        fs.symlink("/etc/piimage/l", &"y".repeat(70), Owner::ROOT)
            .unwrap();
        fs.unlink("/etc/piimage/f3").unwrap();
        fs.finish().unwrap();
        e2fsck(&disk).unwrap();
        std::fs::read(&disk).unwrap()
    };
    let a = run("a", EPOCH);
    let b = run("b", EPOCH);
    assert!(a == b, "two runs with the same epoch differ");
    let c = run("c", EPOCH + 1);
    assert!(a != c, "the epoch does not reach the filesystem");
}

/// A typical node (50 files, 10 MiB) on a ~200 MiB filesystem: printed, not asserted.
#[test]
fn typical_node_timing() {
    let dir = crate::support::tmp();
    let img = dir.path().join("fs.img");
    sh(
        dir.path(),
        "truncate -s 200M fs.img
         mkdir -p tree/usr/bin tree/etc
         for i in $(seq 1 1500); do echo $i > tree/usr/bin/cmd-$i; done
         mke2fs -q -F -t ext4 -T default -b 4096 -O ^64bit,^huge_file -d tree fs.img
         e2fsck -fyD fs.img >/dev/null 2>&1 || test $? -eq 1",
    );
    let start = std::time::Instant::now();
    let mut fs = open_result(&img, 200 << 20, 0).unwrap();
    let opened = start.elapsed();
    fs.mkdir_p("/etc/ssh/sshd_config.d", 0o755, Owner::ROOT)
        .unwrap();
    fs.mkdir_p("/home/node/.ssh", 0o700, Owner::new(1000, 1000))
        .unwrap();
    for i in 0..47 {
        fs.write_file(
            &format!("/etc/f{i}"),
            &pattern(4000, 2),
            0o644,
            Owner::ROOT,
            0,
        )
        .unwrap();
    }
    fs.write_file(
        "/usr/bin/payload",
        &pattern(9 << 20, 4),
        0o755,
        Owner::ROOT,
        0,
    )
    .unwrap();
    fs.write_file("/etc/hostname", b"node\n", 0o644, Owner::ROOT, 0)
        .unwrap();
    fs.symlink("/etc/localtime", "/usr/share/zoneinfo/UTC", Owner::ROOT)
        .unwrap();
    fs.finish().unwrap();
    let total = start.elapsed();
    eprintln!(
        "ext4 typical node: open {opened:?}, 50 files / ~9.2 MiB written and finished in {total:?}"
    );
    let spec = format!("{}?offset=0", img.display());
    let out = crate::support::run("e2fsck", &["-fn", &spec]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn every_mix_fixture_is_what_it_claims() {
    for mix in MIXES {
        let fx = fixture(mix);
        let spec = format!("{}?offset={OFFSET}", fx.disk.display());
        let out = crate::support::run("dumpe2fs", &["-h", &spec]);
        let text = String::from_utf8_lossy(&out.stdout);
        for f in mix.features.split(',') {
            let (neg, name) = f.strip_prefix('^').map_or((false, f), |n| (true, n));
            let has = text
                .lines()
                .find(|l| l.starts_with("Filesystem features:"))
                .is_some_and(|l| l.split_whitespace().any(|w| w == name));
            assert_eq!(has, !neg, "{}: {f}", mix.name);
        }
    }
}

/// Opening (gate + mount) and finishing without operations leaves the partition byte-identical.
#[test]
fn open_and_finish_without_ops_writes_nothing() {
    let fx = fixture(MIX_UBUNTU);
    let dir = crate::support::tmp();
    let disk = copy_disk(&fx, dir.path());
    let before = std::fs::read(&disk).unwrap();
    let mut fs = open(&disk, &fx, WriteOptions::new(EPOCH));
    assert!(fs.lookup("/etc/hostname").unwrap().is_some());
    fs.finish().unwrap();
    assert!(std::fs::read(&disk).unwrap() == before);
}
