//! The editing engine on each fixture: a node's operations applied through a copy-on-write disk,
//! checked with e2fsck, fsck.fat, debugfs, mtools and sfdisk. The base never changes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use piimage::disk::{CowDisk, FileStorage, Storage};
use piimage::io::hashing::Sha256Digest;
use piimage::ops::{FileAttrs, FileOp, Part, TextEdit};
use piimage::pipeline::identity::{partuuid_ops, set_disk_id};
use piimage::pipeline::{Layout, apply_node};
use piimage::secrets::derive::disk_id as derive_disk_id;
use xtask::fixtures::{self, Fixture, Format};

use crate::support::{debugfs, e2fsck_clean, fsck_fat_clean, mtype, run_ok};

const EPOCH: i64 = 1_767_225_600; // 2026-01-01

fn hash(path: &Path) -> Sha256Digest {
    Sha256Digest::of_reader(std::fs::File::open(path).unwrap())
        .unwrap()
        .0
}

/// Writes the node's disk out: a sparse copy of the base, then every changed block.
fn materialise<B: Storage>(disk: &CowDisk<B>, base: &Path, out: &Path) {
    let st = std::process::Command::new("cp")
        .args([
            "--sparse=always",
            base.to_str().unwrap(),
            out.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let f = std::fs::OpenOptions::new().write(true).open(out).unwrap();
    let mut buf = vec![0u8; 4096];
    use std::os::unix::fs::FileExt;
    for b in disk.changed_blocks().unwrap() {
        let off = b * 4096;
        let n = usize::try_from((disk.len() - off).min(4096)).unwrap();
        disk.read_at(off, &mut buf[..n]).unwrap();
        f.write_all_at(&buf[..n], off).unwrap();
    }
}

fn w(part: Part, path: &str, data: &[u8], mode: u32, uid: u32, gid: u32) -> FileOp {
    FileOp::Write {
        part,
        path: path.into(),
        data: data.to_vec(),
        owner: FileAttrs { mode, uid, gid },
    }
}

fn edit(part: Part, path: &str, edit: TextEdit) -> FileOp {
    FileOp::Edit {
        part,
        path: path.into(),
        edit,
    }
}

const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJvmLoGRr4WXyQ2EGvJ3xKkuC1ZW5s4RjyNQC6jpbTKK alice@laptop\n";

/// A typical node: hostname, hosts, a user with a key, a unit enabled through merged /usr,
/// a NetworkManager keyfile, cmdline and config.txt tweaks, cloud-init seeds.
fn node_ops(big: &[u8]) -> Vec<FileOp> {
    vec![
        w(Part::Root, "/etc/hostname", b"node-07\n", 0o644, 0, 0),
        edit(Part::Root, "/etc/hosts", TextEdit::EnsureLine { line: "10.0.0.7\tnode-07".into() }),
        edit(
            Part::Root,
            "/etc/passwd",
            TextEdit::TableUpsert {
                fields: "alice:x:1001:1001:Alice:/home/alice:/bin/bash".split(':').map(str::to_owned).collect(),
            },
        ),
        edit(
            Part::Root,
            "/etc/group",
            TextEdit::TableUpsert { fields: vec!["alice".into(), "x".into(), "1001".into(), "".into()] },
        ),
        edit(
            Part::Root,
            "/etc/group",
            TextEdit::TableAddMember { key: "sudo".into(), index: 3, member: "alice".into() },
        ),
        FileOp::Mkdir { part: Part::Root, path: "/home/alice/.ssh".into(), owner: FileAttrs { mode: 0o700, uid: 1001, gid: 1001 } },
        FileOp::SetOwner { path: "/home/alice".into(), owner: FileAttrs { mode: 0o750, uid: 1001, gid: 1001 } },
        w(Part::Root, "/home/alice/.ssh/authorized_keys", KEY.as_bytes(), 0o600, 1001, 1001),
        w(Part::Root, "/lib/systemd/system/piimage-test.service", b"[Unit]\nDescription=test\n[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n", 0o644, 0, 0),
        FileOp::Symlink {
            path: "/etc/systemd/system/multi-user.target.wants/piimage-test.service".into(),
            target: "/usr/lib/systemd/system/piimage-test.service".into(),
            uid: 0,
            gid: 0,
        },
        w(Part::Root, "/etc/NetworkManager/system-connections/eth0.nmconnection", b"[connection]\nid=eth0\ntype=ethernet\n", 0o600, 0, 0),
        w(Part::Root, "/opt/data/blob.bin", big, 0o644, 70000, 70001),
        FileOp::Remove { part: Part::Root, path: "/etc/skel/.bash_logout".into() },
        edit(Part::Boot, "/cmdline.txt", TextEdit::CmdlineSet { token: "cgroup_memory=1".into() }),
        edit(Part::Boot, "/cmdline.txt", TextEdit::CmdlineSet { token: "cgroup_enable=memory".into() }),
        edit(Part::Boot, "/config.txt", TextEdit::ConfigEnsure { section: Some("all".into()), line: "dtparam=i2c_arm=on".into() }),
        w(Part::Boot, "/user-data", b"#cloud-config\nmanage_etc_hosts: false\n", 0o644, 0, 0),
        w(Part::Boot, "/meta-data", b"instance-id: node-07\n", 0o644, 0, 0),
    ]
}

fn stat(img: &Path, off: u64, path: &str) -> String {
    debugfs(img, off, &format!("stat {path}"))
}

fn assert_meta(img: &Path, off: u64, path: &str, mode: u32, uid: u32, gid: u32) {
    let s = stat(img, off, path);
    assert!(
        s.contains(&format!("Mode:  {mode:04o}")),
        "{path}: mode {mode:o} not in\n{s}"
    );
    assert!(
        s.contains(&format!("User: {uid:>5}")),
        "{path}: uid {uid} not in\n{s}"
    );
    assert!(
        s.contains(&format!("Group: {gid:>5}")),
        "{path}: gid {gid} not in\n{s}"
    );
}

#[test]
fn a_node_on_every_fixture() {
    let big: Vec<u8> = (0..6_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for fixture in Fixture::ALL {
        let info = fixtures::info(fixture);
        let base_path = fixtures::fixture_path(fixture, Format::Raw).unwrap();
        let before = hash(&base_path);
        let base = FileStorage::open_read_only(&base_path).unwrap();
        let layout = Layout::detect(&base).unwrap();
        let disk = Arc::new(CowDisk::new(base));
        let new_id = derive_disk_id(b"test-seed", "node-07", info.disk_id);
        let mut ops = node_ops(&big);
        ops.extend(partuuid_ops(info.disk_id, new_id));
        set_disk_id(&disk, new_id).unwrap();
        apply_node(&disk, &layout, &ops, EPOCH).unwrap_or_else(|e| panic!("{}: {e}", info.name));

        let dir = crate::support::tmp();
        let out: PathBuf = dir.path().join("node.img");
        materialise(&disk, &base_path, &out);
        drop(disk);
        assert_eq!(hash(&base_path), before, "{}: base changed", info.name);

        let (boot, root) = (info.boot.offset(), info.root.offset());
        e2fsck_clean(&out, root);
        fsck_fat_clean(&out, boot, info.boot.size());

        let cat = |p: &str| debugfs(&out, root, &format!("cat {p}"));
        assert_eq!(cat("/etc/hostname"), "node-07\n");
        assert!(
            cat("/etc/hosts").ends_with("10.0.0.7\tnode-07\n"),
            "{}",
            info.name
        );
        assert!(cat("/etc/passwd").contains("\nalice:x:1001:1001:Alice:/home/alice:/bin/bash\n"));
        assert!(
            cat("/etc/group")
                .lines()
                .any(|l| l.starts_with("sudo:") && l.ends_with("alice"))
        );
        assert_eq!(cat("/home/alice/.ssh/authorized_keys"), KEY);
        assert_meta(
            &out,
            root,
            "/home/alice/.ssh/authorized_keys",
            0o600,
            1001,
            1001,
        );
        assert_meta(&out, root, "/home/alice/.ssh", 0o700, 1001, 1001);
        assert_meta(&out, root, "/home/alice", 0o750, 1001, 1001);
        // Merged /usr: written through the /lib symlink, landed in /usr/lib.
        assert!(
            cat("/usr/lib/systemd/system/piimage-test.service").contains("ExecStart=/bin/true")
        );
        let link = stat(
            &out,
            root,
            "/etc/systemd/system/multi-user.target.wants/piimage-test.service",
        );
        assert!(
            link.contains("Fast link dest: \"/usr/lib/systemd/system/piimage-test.service\""),
            "{link}"
        );
        assert_meta(
            &out,
            root,
            "/etc/NetworkManager/system-connections/eth0.nmconnection",
            0o600,
            0,
            0,
        );
        assert_meta(&out, root, "/opt/data/blob.bin", 0o644, 70000, 70001);
        let dumped = dir.path().join("blob.bin");
        debugfs(
            &out,
            root,
            &format!("dump /opt/data/blob.bin {}", dumped.display()),
        );
        assert!(
            std::fs::read(&dumped).unwrap() == big,
            "{}: blob differs",
            info.name
        );
        assert!(!crate::support::debugfs_exists(
            &out,
            root,
            "/etc/skel/.bash_logout"
        ));

        let cmdline = String::from_utf8(mtype(&out, boot, "/cmdline.txt")).unwrap();
        let want = info
            .cmdline
            .replace(&format!("{:08x}", info.disk_id), &format!("{new_id:08x}"));
        assert_eq!(
            cmdline.trim_end(),
            format!("{want} cgroup_memory=1 cgroup_enable=memory")
        );
        assert!(
            String::from_utf8(mtype(&out, boot, "/config.txt"))
                .unwrap()
                .contains("dtparam=i2c_arm=on\n")
        );
        assert_eq!(mtype(&out, boot, "/meta-data"), b"instance-id: node-07\n");

        // The new disk id: sfdisk, cmdline.txt and fstab agree.
        let dump = run_ok("sfdisk", &["--dump", out.to_str().unwrap()]);
        assert!(
            dump.contains(&format!("label-id: 0x{new_id:08x}")),
            "{dump}"
        );
        let fstab = cat("/etc/fstab");
        if info.cmdline.contains("PARTUUID=") {
            assert!(
                fstab.contains(&format!("PARTUUID={new_id:08x}-02")),
                "{fstab}"
            );
            assert!(!fstab.contains(&format!("{:08x}", info.disk_id)), "{fstab}");
        } else {
            assert!(fstab.contains("LABEL=writable"), "{fstab}");
        }
    }
}

#[test]
fn same_ops_same_epoch_same_bytes() {
    let base_path = fixtures::fixture_path(Fixture::RaspiosTrixie, Format::Raw).unwrap();
    let base = Arc::new(FileStorage::open_read_only(&base_path).unwrap());
    let layout = Layout::detect(&*base).unwrap();
    let big = vec![7u8; 300_000];
    let build = || {
        let disk = Arc::new(CowDisk::new(Arc::clone(&base)));
        apply_node(&disk, &layout, &node_ops(&big), EPOCH).unwrap();
        let blocks = disk.changed_blocks().unwrap();
        let mut bytes = vec![0u8; blocks.len() * 4096];
        for (i, b) in blocks.iter().enumerate() {
            disk.read_at(b * 4096, &mut bytes[i * 4096..(i + 1) * 4096])
                .unwrap();
        }
        (blocks, bytes)
    };
    let (a, b) = (build(), build());
    assert!(!a.0.is_empty());
    assert_eq!(a.0, b.0, "different blocks changed");
    assert!(a.1 == b.1, "changed blocks differ in content");
}

#[test]
fn a_failing_operation_fails_the_node_and_names_it() {
    let base_path = fixtures::fixture_path(Fixture::RaspiosBookworm, Format::Raw).unwrap();
    let before = hash(&base_path);
    let base = FileStorage::open_read_only(&base_path).unwrap();
    let layout = Layout::detect(&base).unwrap();
    let disk = Arc::new(CowDisk::new(base));
    let mut ops = node_ops(b"x");
    ops.insert(
        3,
        edit(
            Part::Root,
            "/etc/no-such-file",
            TextEdit::TableAddMember {
                key: "sudo".into(),
                index: 3,
                member: "x".into(),
            },
        ),
    );
    let err = apply_node(&disk, &layout, &ops, EPOCH)
        .map_err(|e| piimage::error::chain(&e))
        .unwrap_err();
    assert!(
        err.contains("operation 3") && err.contains("/etc/no-such-file"),
        "{err}"
    );
    assert!(err.contains("root partition (p2)"), "{err}");
    drop(disk);
    assert_eq!(hash(&base_path), before);

    // Escapes through the image's own links are refused.
    let base = FileStorage::open_read_only(&base_path).unwrap();
    let disk = Arc::new(CowDisk::new(base));
    let ops = vec![w(Part::Root, "/usr/../../etc/x", b"x", 0o644, 0, 0)];
    let err = apply_node(&disk, &layout, &ops, EPOCH)
        .map_err(|e| piimage::error::chain(&e))
        .unwrap_err();
    assert!(err.contains("escapes above the image's root"), "{err}");
}

#[test]
fn filling_the_root_gives_a_clear_out_of_space_error() {
    let base_path = fixtures::fixture_path(Fixture::Ubuntu2404, Format::Raw).unwrap();
    let base = FileStorage::open_read_only(&base_path).unwrap();
    let layout = Layout::detect(&base).unwrap();
    let disk = Arc::new(CowDisk::new(base));
    let huge = vec![1u8; 400 << 20];
    let ops = vec![w(Part::Root, "/var/huge.bin", &huge, 0o644, 0, 0)];
    let err = apply_node(&disk, &layout, &ops, EPOCH)
        .map_err(|e| piimage::error::chain(&e))
        .unwrap_err();
    assert!(
        err.contains("not enough space") && err.contains("MiB more"),
        "{err}"
    );
    assert!(err.contains("/var/huge.bin"), "{err}");
}
