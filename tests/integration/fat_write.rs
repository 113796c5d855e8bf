//! FAT writes checked with fsck.fat and mtools.

use std::path::Path;

use piimage::disk::{FileStorage, Window};
use piimage::fs::fat::FatWriter;

use crate::support::{fsck_fat_clean, mtype, run_ok, sh};

const OFFSET: u64 = 8192 * 512;
const LEN: u64 = 512 << 20;

fn make_boot(dir: &Path, cluster_sectors: u8) -> std::path::PathBuf {
    let img = dir.join("disk.img");
    sh(
        dir,
        &format!(
            "truncate -s 600M disk.img
             printf 'label: dos\\nlabel-id: 0x11223344\\nstart=8192,size=1048576,type=c\\n' | sfdisk -q disk.img
             mkfs.fat -F 32 -s {cluster_sectors} -n bootfs -i 12345678 --offset 8192 disk.img 524288 >/dev/null
             printf 'console=tty1 root=PARTUUID=11223344-02 rootwait\\n' > cmdline.txt
             printf '[all]\\ndtparam=audio=on\\n' > config.txt
             mkdir -p overlays && printf 'x' > overlays/README
             mcopy -s -m -i disk.img@@{OFFSET} cmdline.txt config.txt overlays ::/"
        ),
    );
    img
}

#[test]
fn writes_replaces_and_removes_files_cleanly() {
    for cluster_sectors in [1u8, 4] {
        let dir = crate::support::tmp();
        let img = make_boot(dir.path(), cluster_sectors);
        let disk = FileStorage::open_read_write(&img).unwrap();
        let w = FatWriter::open(Window::new(&disk, OFFSET, LEN).unwrap(), 1_700_000_000).unwrap();
        let big: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        w.write_file(
            "/cmdline.txt",
            b"console=tty1 root=PARTUUID=aabbccdd-02 rootwait cgroup_memory=1\n",
        )
        .unwrap();
        w.write_file("/user-data", b"#cloud-config\nhostname: node1\n")
            .unwrap();
        w.write_file("/meta-data", b"instance-id: node1\n").unwrap();
        w.write_file("/network-config", b"network:\n  version: 2\n")
            .unwrap();
        w.write_file("/ssh", b"").unwrap();
        w.write_file("/piimage/deep/dir/big.bin", &big).unwrap();
        for i in 0..60 {
            w.write_file(
                &format!("/many/long-file-name-{i:03}.conf"),
                format!("{i}\n").as_bytes(),
            )
            .unwrap();
        }
        assert!(w.remove("/overlays/README").unwrap());
        assert!(!w.remove("/nope").unwrap());
        assert_eq!(
            w.read("/meta-data").unwrap().unwrap(),
            b"instance-id: node1\n"
        );
        w.finish().unwrap();

        fsck_fat_clean(&img, OFFSET, LEN);
        assert_eq!(
            mtype(&img, OFFSET, "/cmdline.txt"),
            b"console=tty1 root=PARTUUID=aabbccdd-02 rootwait cgroup_memory=1\n"
        );
        assert_eq!(
            mtype(&img, OFFSET, "/user-data"),
            b"#cloud-config\nhostname: node1\n"
        );
        assert_eq!(
            mtype(&img, OFFSET, "/network-config"),
            b"network:\n  version: 2\n"
        );
        assert_eq!(mtype(&img, OFFSET, "/piimage/deep/dir/big.bin"), big);
        assert_eq!(
            mtype(&img, OFFSET, "/many/long-file-name-059.conf"),
            b"59\n"
        );
        assert_eq!(
            mtype(&img, OFFSET, "/config.txt"),
            b"[all]\ndtparam=audio=on\n"
        );
        let listing = run_ok(
            "mdir",
            &["-b", "-i", &format!("{}@@{OFFSET}", img.display()), "::/"],
        );
        assert!(listing.contains("::/ssh"), "{listing}");
        assert!(listing.contains("::/user-data"), "{listing}");
        let overlays = run_ok(
            "mdir",
            &[
                "-b",
                "-i",
                &format!("{}@@{OFFSET}", img.display()),
                "::/overlays",
            ],
        );
        assert!(!overlays.contains("README"), "{overlays}");
    }
}

mod property {
    //! Random sequences of FAT operations against a model, checked with fsck.fat and mtools.

    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

    use super::*;
    use crate::support::run;

    const P_OFFSET: u64 = 2048 * 512;
    const P_LEN: u64 = 64 << 20;

    #[derive(Debug, Clone)]
    enum Op {
        Write(String, Vec<u8>),
        Remove(String),
        Mkdir(String),
    }

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("config.txt".to_owned()),
            Just("cmdline.txt".to_owned()),
            Just("user-data".to_owned()),
            Just("SSH".to_owned()),
            "[a-z][a-z0-9_-]{0,20}(\\.[a-z]{1,4})?",
        ]
    }

    fn path() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => name().prop_map(|n| format!("/{n}")),
            2 => (name(), name()).prop_map(|(d, n)| format!("/d-{d}/{n}")),
            1 => (name(), name(), name()).prop_map(|(a, b, n)| format!("/x-{a}/y-{b}/{n}")),
        ]
    }

    fn data() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            3 => prop::collection::vec(any::<u8>(), 0..600),
            1 => (1usize..200_000, any::<u8>()).prop_map(|(n, seed)| {
                (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
            }),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (path(), data()).prop_map(|(p, d)| Op::Write(p, d)),
            2 => path().prop_map(Op::Remove),
            1 => (name(), name()).prop_map(|(a, b)| Op::Mkdir(format!("/m-{a}/n-{b}"))),
        ]
    }

    fn seed() -> [u8; 32] {
        let s: u64 = std::env::var("PIIMAGE_PROPTEST_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0x05ee_dfa7);
        let mut out = [0u8; 32];
        out[..8].copy_from_slice(&s.to_le_bytes());
        out
    }

    /// Lower-cased path, as FAT compares names.
    fn key(p: &str) -> String {
        p.to_ascii_lowercase()
    }

    #[test]
    fn random_fat_ops_match_the_model_and_fsck_clean() {
        let template_dir = crate::support::tmp();
        sh(
            template_dir.path(),
            &format!(
                "truncate -s 70M t.img
                 printf 'label: dos\\nstart=2048,size={},type=c\\n' | sfdisk -q t.img
                 mkfs.fat -F 32 -s 1 -n bootfs -i 0badf00d --offset 2048 t.img {} >/dev/null
                 printf 'x\\n' > config.txt && mcopy -i t.img@@{P_OFFSET} config.txt ::/",
                P_LEN / 512,
                P_LEN / 1024
            ),
        );
        let template = template_dir.path().join("t.img");
        let cases: u32 = std::env::var("PIIMAGE_FAT_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(100);
        let mut runner = TestRunner::new_with_rng(
            Config {
                cases,
                failure_persistence: None,
                ..Config::default()
            },
            TestRng::from_seed(RngAlgorithm::ChaCha, &seed()),
        );
        runner
            .run(&prop::collection::vec(op(), 1..25), |ops| {
                let dir = crate::support::tmp();
                let img = dir.path().join("c.img");
                sh(
                    dir.path(),
                    &format!("cp --sparse=always {} c.img", template.display()),
                );
                let disk = FileStorage::open_read_write(&img).unwrap();
                let w =
                    FatWriter::open(Window::new(&disk, P_OFFSET, P_LEN).unwrap(), 1_700_000_000)
                        .unwrap();
                // Model: lower-cased path -> (path as written, content); directories that exist.
                let mut files: BTreeMap<String, (String, Vec<u8>)> = BTreeMap::new();
                files.insert(
                    "/config.txt".into(),
                    ("/config.txt".into(), b"x\n".to_vec()),
                );
                let mut dirs: Vec<String> = Vec::new();
                for op in &ops {
                    match op {
                        Op::Write(p, d) => {
                            // A path whose parent is a file, or that is a directory, is an error.
                            let parent_is_file =
                                files.keys().any(|f| key(p).starts_with(&format!("{f}/")));
                            let is_dir = dirs.iter().any(|dd| key(dd) == key(p))
                                || files.keys().any(|f| f.starts_with(&format!("{}/", key(p))));
                            let r = w.write_file(p, d);
                            if parent_is_file || is_dir {
                                prop_assert!(r.is_err(), "{p} should fail");
                                continue;
                            }
                            r.unwrap();
                            files.insert(key(p), (p.clone(), d.clone()));
                            let mut cur = String::new();
                            for c in p
                                .split('/')
                                .filter(|c| !c.is_empty())
                                .collect::<Vec<_>>()
                                .split_last()
                                .unwrap()
                                .1
                            {
                                cur.push('/');
                                cur.push_str(c);
                                if !dirs.iter().any(|dd| key(dd) == key(&cur)) {
                                    dirs.push(cur.clone());
                                }
                            }
                        }
                        Op::Remove(p) => {
                            if dirs.iter().any(|dd| key(dd) == key(p)) {
                                continue; // directories are not removed in this model
                            }
                            let existed = files.remove(&key(p)).is_some();
                            let r = w.remove(p);
                            if files.keys().any(|f| key(p).starts_with(&format!("{f}/"))) {
                                prop_assert!(r.is_err() || !r.unwrap());
                                continue;
                            }
                            prop_assert_eq!(r.unwrap(), existed, "{}", p);
                        }
                        Op::Mkdir(p) => {
                            if files
                                .keys()
                                .any(|f| key(p).starts_with(&format!("{f}/")) || *f == key(p))
                            {
                                prop_assert!(w.mkdir_p(p).is_err());
                                continue;
                            }
                            w.mkdir_p(p).unwrap();
                            let mut cur = String::new();
                            for c in p.split('/').filter(|c| !c.is_empty()) {
                                cur.push('/');
                                cur.push_str(c);
                                if !dirs.iter().any(|dd| key(dd) == key(&cur)) {
                                    dirs.push(cur.clone());
                                }
                            }
                        }
                    }
                }
                w.finish().unwrap();
                drop(disk);
                fsck_fat_clean(&img, P_OFFSET, P_LEN);
                for (shown, content) in files.values() {
                    prop_assert_eq!(&mtype(&img, P_OFFSET, shown), content, "{}", shown);
                }
                for d in &dirs {
                    let out = run(
                        "mdir",
                        &[
                            "-b",
                            "-i",
                            &format!("{}@@{P_OFFSET}", img.display()),
                            &format!("::{d}"),
                        ],
                    );
                    prop_assert!(out.status.success(), "directory {} missing", d);
                }
                Ok(())
            })
            .unwrap();
    }
}
