//! ext4 fixtures: small filesystems made by the real `mke2fs`, shaped like the official images'
//! roots (merged /usr symlinks, an htree-indexed /usr/bin of 1500 entries, a home directory owned
//! by uid 1000), placed at a nonzero offset inside a bigger disk file whose bytes outside the
//! filesystem are a known pattern.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::support::sh;

/// Where the filesystem starts inside the disk file (not a multiple of the block size).
pub const OFFSET: u64 = (3 << 20) + 512;
/// Bytes after the filesystem.
pub const TAIL: u64 = 1 << 20;
/// The byte filling the disk outside the filesystem.
pub const PATTERN: u8 = 0xA5;
/// Entries of the pre-populated htree directory.
pub const HTREE_ENTRIES: usize = 1500;

/// One feature mix of `docs/ext4-writer.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    /// Short name.
    pub name: &'static str,
    /// `mke2fs -O` argument.
    pub features: &'static str,
    /// Size in MiB.
    pub mib: u64,
    /// Blocks per group (`-g`), 0 for the default.
    pub blocks_per_group: u32,
    /// Block size (`-b`).
    pub block_size: u32,
}

/// (b) no metadata_csum: group descriptors checksummed with crc16 (gdt_csum / uninit_bg).
pub const MIX_B: Mix = Mix {
    name: "b-nocsum",
    features: "^64bit,^metadata_csum,^huge_file",
    mib: 64,
    blocks_per_group: 4096,
    block_size: 4096,
};
/// (e) pi-gen bookworm: `^64bit,^huge_file` with metadata_csum.
pub const MIX_PIGEN: Mix = Mix {
    name: "e-pigen",
    features: "^64bit,^huge_file",
    mib: 64,
    blocks_per_group: 4096,
    block_size: 4096,
};
/// Ubuntu 24.04: the upstream defaults (64bit, metadata_csum, huge_file), default group size.
pub const MIX_UBUNTU: Mix = Mix {
    name: "ubuntu2404",
    features: "64bit,metadata_csum,huge_file",
    mib: 128,
    blocks_per_group: 0,
    block_size: 4096,
};
/// Raspberry Pi OS trixie-like: pi-gen's mix plus e2fsprogs 1.47 defaults.
pub const MIX_TRIXIE: Mix = Mix {
    name: "trixie",
    features: "^64bit,^huge_file,orphan_file,metadata_csum_seed",
    mib: 64,
    blocks_per_group: 4096,
    block_size: 4096,
};

/// pi-gen's mix with 1 KiB blocks (what mke2fs picks for small filesystems without `-T default`).
pub const MIX_1K: Mix = Mix {
    name: "pigen-1k",
    features: "^64bit,^huge_file",
    mib: 64,
    blocks_per_group: 0,
    block_size: 1024,
};

/// All mixes.
pub const MIXES: [Mix; 4] = [MIX_B, MIX_PIGEN, MIX_UBUNTU, MIX_TRIXIE];

/// What a tree entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A regular file and its content.
    File(Vec<u8>),
    /// A directory.
    Dir,
    /// A symlink and its target.
    Symlink(String),
}

/// A tree entry with its metadata (what debugfs must read back).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Kind and content.
    pub node: Node,
    /// Permission bits.
    pub mode: u16,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// Absolute path -> entry, for the whole filesystem (except lost+found).
pub type Tree = BTreeMap<String, Entry>;

/// A built fixture: the disk file and the tree it holds.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// The disk file (never written; copy it).
    pub disk: PathBuf,
    /// Filesystem size in bytes.
    pub fs_len: u64,
    /// What is in it.
    pub tree: Tree,
    /// The nonzero pieces of the disk file, for fast sparse copies.
    pub pieces: std::sync::Arc<Vec<(u64, Vec<u8>)>>,
    /// Length of the disk file.
    pub disk_len: u64,
}

fn write_tree(root: &Path) {
    let file = |rel: &str, body: &[u8], mode: u32| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    file("etc/hostname", b"raspberrypi\n", 0o644);
    file(
        "etc/passwd",
        b"root:x:0:0:root:/root:/bin/bash\npi:x:1000:1000:,,,:/home/pi:/bin/bash\n",
        0o644,
    );
    file("etc/shadow", b"root:*:19000:0:99999:7:::\n", 0o640);
    file(
        "etc/ssh/sshd_config",
        b"Include /etc/ssh/sshd_config.d/*.conf\nKbdInteractiveAuthentication no\n",
        0o644,
    );
    file(
        "usr/lib/systemd/system/ssh.service",
        b"[Unit]\nDescription=OpenBSD Secure Shell server\n",
        0o644,
    );
    file("usr/sbin/sshd", &vec![0x7fu8; 9000], 0o755);
    file("home/pi/.bashrc", b"# ~/.bashrc\n", 0o644);
    for i in 0..HTREE_ENTRIES {
        file(
            &format!("usr/bin/command-with-a-long-name-{i:05}"),
            format!("#!/bin/sh\necho {i}\n").as_bytes(),
            0o755,
        );
    }
    std::fs::create_dir_all(root.join("var/empty")).unwrap();
    std::os::unix::fs::symlink("usr/bin", root.join("bin")).unwrap();
    std::os::unix::fs::symlink("usr/sbin", root.join("sbin")).unwrap();
    std::os::unix::fs::symlink("usr/lib", root.join("lib")).unwrap();
    std::os::unix::fs::symlink("x".repeat(90), root.join("etc/long-link")).unwrap();
    for dir in [
        "", "etc", "etc/ssh", "usr", "usr/bin", "usr/lib", "usr/sbin", "home",
    ] {
        std::fs::set_permissions(root.join(dir), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    for dir in [
        "usr/lib/systemd",
        "usr/lib/systemd/system",
        "home/pi",
        "var",
        "var/empty",
    ] {
        std::fs::set_permissions(root.join(dir), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// Reads the host tree into the model, with `/home/pi` chowned to 1000:1000 as the fixture's
/// debugfs script does.
fn read_tree(root: &Path) -> Tree {
    let mut tree = Tree::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let md = std::fs::symlink_metadata(&p).unwrap();
            let rel = format!("/{}", p.strip_prefix(root).unwrap().display());
            let node = if md.file_type().is_symlink() {
                Node::Symlink(std::fs::read_link(&p).unwrap().display().to_string())
            } else if md.is_dir() {
                stack.push(p.clone());
                Node::Dir
            } else {
                Node::File(std::fs::read(&p).unwrap())
            };
            let (uid, gid) = if rel.starts_with("/home/pi") {
                (1000, 1000)
            } else {
                (md.uid(), md.gid())
            };
            let mode = u16::try_from(md.mode() & 0o7777).unwrap();
            tree.insert(
                rel,
                Entry {
                    node,
                    mode,
                    uid,
                    gid,
                },
            );
        }
    }
    let md = std::fs::metadata(root).unwrap();
    tree.insert(
        "/".into(),
        Entry {
            node: Node::Dir,
            mode: 0o755,
            uid: md.uid(),
            gid: md.gid(),
        },
    );
    tree
}

fn build(mix: Mix, dir: &Path) -> Fixture {
    let root = dir.join("tree");
    write_tree(&root);
    let tree = read_tree(&root);
    let g = if mix.blocks_per_group == 0 {
        String::new()
    } else {
        format!("-g {}", mix.blocks_per_group)
    };
    let fs_len = mix.mib << 20;
    sh(
        dir,
        &format!(
            "truncate -s {mib}M fs.img
             export E2FSPROGS_FAKE_TIME=1700000000
             mke2fs -q -F -t ext4 -T default -b {bs} {g} -O {features} -L rootfs \\
               -U 6b0f1c2e-58d4-4c7a-9a43-3c5d0e7f9a11 -E hash_seed=0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6 \\
               -d tree fs.img
             printf 'sif /home/pi uid 1000\\nsif /home/pi gid 1000\\nsif /home/pi/.bashrc uid 1000\\nsif /home/pi/.bashrc gid 1000\\n' > own.cmd
             debugfs -w -f own.cmd fs.img >/dev/null 2>&1
             e2fsck -fyD fs.img >/dev/null 2>&1 || test $? -eq 1
             e2fsck -fn fs.img >/dev/null
             debugfs -R 'stat /usr/bin' fs.img 2>/dev/null | grep -q 'Flags: 0x.*1...$'
             python3 -c \"import sys; sys.stdout.buffer.write(bytes([{PATTERN}])*{OFFSET})\" > disk.img
             dd if=fs.img of=disk.img bs=1M oflag=seek_bytes seek={OFFSET} conv=sparse,notrunc status=none
             truncate -s {end} disk.img
             python3 -c \"import sys; sys.stdout.buffer.write(bytes([{PATTERN}])*{TAIL})\" >> disk.img
             rm -r fs.img tree",
            mib = mix.mib,
            end = OFFSET + fs_len,
            bs = mix.block_size,
            features = mix.features,
        ),
    );
    let disk = dir.join("disk.img");
    let (pieces, disk_len) = chunks(&disk);
    Fixture {
        disk,
        fs_len,
        tree,
        pieces: std::sync::Arc::new(pieces),
        disk_len,
    }
}

/// The fixture for `mix`, built once per test process in the cargo target's temp dir.
pub fn fixture(mix: Mix) -> Fixture {
    static BUILT: Mutex<BTreeMap<&'static str, Fixture>> = Mutex::new(BTreeMap::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    built
        .entry(mix.name)
        .or_insert_with(|| {
            // Rebuilt by every test process, in one fixed place so that nothing accumulates.
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
                .join("ext4-fixtures")
                .join(mix.name);
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            build(mix, &dir)
        })
        .clone()
}

/// Granularity of the sparse copy.
const CHUNK: usize = 64 << 10;

/// The nonzero `CHUNK`-sized pieces of the disk file, and its length.
fn chunks(disk: &Path) -> (Vec<(u64, Vec<u8>)>, u64) {
    let bytes = std::fs::read(disk).unwrap();
    let pieces = bytes
        .chunks(CHUNK)
        .enumerate()
        .filter(|(_, c)| c.iter().any(|&b| b != 0))
        .map(|(i, c)| ((i * CHUNK) as u64, c.to_vec()))
        .collect();
    (pieces, bytes.len() as u64)
}

/// A private copy of the fixture's disk in `dir`, sparse: only the nonzero pieces are written
/// (the filesystems are mostly empty, and 200 full copies cost more than the tests).
pub fn copy_disk(fx: &Fixture, dir: &Path) -> PathBuf {
    use std::os::unix::fs::FileExt;
    let p = dir.join("disk.img");
    let dst = std::fs::File::create(&p).unwrap();
    dst.set_len(fx.disk_len).unwrap();
    for (off, piece) in fx.pieces.iter() {
        dst.write_all_at(piece, *off).unwrap();
    }
    p
}

/// Asserts the disk bytes outside the filesystem window still hold the pattern.
pub fn assert_outside_untouched(disk: &Path, fs_len: u64) {
    let bytes = std::fs::read(disk).unwrap();
    let off = usize::try_from(OFFSET).unwrap();
    let end = off + usize::try_from(fs_len).unwrap();
    assert_eq!(bytes.len(), end + usize::try_from(TAIL).unwrap());
    assert!(bytes[..off].iter().all(|&b| b == PATTERN), "prefix changed");
    assert!(bytes[end..].iter().all(|&b| b == PATTERN), "tail changed");
}
