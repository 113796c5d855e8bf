//! `piimage inspect` on every fixture in every format, and on every kind of bad input.

use std::path::{Path, PathBuf};

use serde_json::Value;
use xtask::fixtures::{self, Fixture, Format};

use crate::support::Piimage;
use crate::support::sh;

fn piimage(args: &[&str], cache: &Path) -> std::process::Output {
    Piimage::new().args(args).cache_dir(cache).run()
}

fn inspect_json(image: &Path, cache: &Path) -> Value {
    let out = piimage(&["inspect", "--json", image.to_str().unwrap()], cache);
    assert!(
        out.status.success(),
        "inspect {}: {}",
        image.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("valid JSON")
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

/// Compares one report with what the fixture builder put in the image.
fn check_report(r: &Value, info: &fixtures::FixtureInfo, case: &str) {
    assert_eq!(r["schema_version"], 1, "{case}");
    let t = &r["partition_table"];
    assert_eq!(t["kind"], "mbr", "{case}");
    assert_eq!(t["disk_id"], format!("{:08x}", info.disk_id), "{case}");
    let parts = t["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 2, "{case}");
    for (p, want, fs, label) in [
        (&parts[0], &info.boot, "vfat", info.fat.label),
        (&parts[1], &info.root, "ext4", info.ext4.label),
    ] {
        assert_eq!(p["number"], u64::from(want.number), "{case}");
        assert_eq!(p["start_sector"], want.start_sector, "{case}");
        assert_eq!(p["sectors"], want.sectors, "{case}");
        assert_eq!(p["type"], format!("0x{:02x}", want.mbr_type), "{case}");
        assert_eq!(p["filesystem"], fs, "{case}");
        assert_eq!(p["label"], label, "{case}");
        assert_eq!(p["partuuid"], info.partuuid(want.number), "{case}");
    }
    assert_eq!(r["image"]["size"], info.image_size, "{case}");

    let b = &r["boot"];
    assert_eq!(b["label"], info.fat.label, "{case}");
    assert_eq!(b["fat_type"], "FAT32", "{case}");
    assert_eq!(
        b["cluster_size"],
        u64::from(info.fat.sectors_per_cluster) * 512,
        "{case}"
    );
    assert_eq!(
        b["volume_id"],
        format!("{:08x}", info.fat.volume_id),
        "{case}"
    );
    let want_cmdline: Vec<String> = info.cmdline.split_whitespace().map(str::to_owned).collect();
    assert_eq!(strs(&b["cmdline"]), want_cmdline, "{case}");
    assert!(
        b["config_txt"].as_array().is_some_and(|s| !s.is_empty()),
        "{case}"
    );
    let files = strs(&b["files"]);
    for f in info.boot_files {
        assert!(
            files.iter().any(|x| x == f),
            "{case}: boot file {f} missing from {files:?}"
        );
    }

    let rt = &r["root"];
    assert_eq!(rt["label"], info.ext4.label, "{case}");
    assert_eq!(rt["uuid"], info.ext4.uuid, "{case}");
    assert_eq!(rt["block_size"], info.ext4.block_size, "{case}");
    assert_eq!(rt["inode_size"], info.ext4.inode_size, "{case}");
    assert_eq!(rt["state"], "clean", "{case}");
    assert_eq!(rt["journal"], "clean", "{case}");
    assert_eq!(rt["orphans"], false, "{case}");
    let mut features = strs(&rt["features"]);
    features.sort();
    let mut want_features: Vec<String> =
        info.ext4.features.iter().map(|s| (*s).to_owned()).collect();
    want_features.sort();
    assert_eq!(features, want_features, "{case}");
    assert!(
        rt["free_bytes"].as_u64().unwrap() > 16 << 20,
        "{case}: room for edits"
    );

    let os = &r["os"];
    let family = if info.os.raspberry_pi_os {
        "raspios"
    } else if info.os.id == "ubuntu" {
        "ubuntu"
    } else {
        "debian"
    };
    assert_eq!(os["family"], family, "{case}");
    assert_eq!(os["id"], info.os.id, "{case}");
    assert_eq!(os["version_id"], info.os.version_id, "{case}");
    assert_eq!(os["codename"], info.os.codename, "{case}");
    assert_eq!(os["pretty_name"], info.os.pretty_name, "{case}");
    assert_eq!(r["hostname"], info.hostname, "{case}");

    let users = r["users"].as_array().unwrap();
    assert_eq!(users.len(), info.users.len(), "{case}: {users:?}");
    for (u, want) in users.iter().zip(info.users) {
        assert_eq!(u["name"], want.name, "{case}");
        assert_eq!(u["uid"], want.uid, "{case}");
        assert_eq!(u["gid"], want.gid, "{case}");
        assert_eq!(u["home"], want.home, "{case}");
        let mut g = strs(&u["groups"]);
        g.sort();
        let mut wg: Vec<String> = want.groups.iter().map(|s| (*s).to_owned()).collect();
        wg.sort();
        assert_eq!(g, wg, "{case}: groups of {}", want.name);
    }

    let fb = &r["first_boot"];
    assert_eq!(fb["mechanism"], info.first_boot.as_str(), "{case}");
    let units = strs(&fb["enabled_units"]);
    for u in info.enabled_units {
        if [
            "userconfig.service",
            "regenerate_ssh_host_keys.service",
            "rpi-resize.service",
        ]
        .contains(&u.unit)
        {
            assert!(
                units.iter().any(|x| x == u.unit),
                "{case}: {} not reported enabled",
                u.unit
            );
        }
    }
    match &info.cloud_init {
        Some(ci) => {
            assert_eq!(fb["cloud_init"], true, "{case}");
            let seed = fb["cloud_init_seed"].as_str().unwrap_or_default();
            if let Some(s) = ci.seedfrom {
                assert_eq!(seed, s, "{case}");
            }
            if let Some(l) = ci.fs_label {
                assert_eq!(seed, format!("label={l}"), "{case}");
            }
            let present = strs(&fb["boot_seed_files"]);
            for f in ci.seed_files {
                assert!(
                    present.iter().any(|x| x == f),
                    "{case}: seed {f} not found in {present:?}"
                );
            }
        }
        None => assert_eq!(fb["cloud_init"], false, "{case}"),
    }
}

#[test]
fn every_fixture_in_every_format() {
    let cache = crate::support::tmp();
    for fixture in Fixture::ALL {
        let info = fixtures::info(fixture);
        for format in Format::ALL {
            let path = fixtures::fixture_path(fixture, format).expect("fixture");
            let case = format!("{} {:?}", info.name, format);
            let r = inspect_json(&path, cache.path());
            check_report(&r, &info, &case);
            let want_compression = match format {
                Format::Raw => "raw",
                Format::Xz => "xz",
                Format::Gz => "gzip",
                Format::Zst => "zstd",
            };
            assert_eq!(r["image"]["compression"], want_compression, "{case}");
        }
    }
}

#[test]
fn human_output_names_the_essentials() {
    let cache = crate::support::tmp();
    let path = fixtures::fixture_path(Fixture::RaspiosBookworm, Format::Raw).unwrap();
    let out = piimage(&["inspect", path.to_str().unwrap()], cache.path());
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let info = fixtures::info(Fixture::RaspiosBookworm);
    for needle in [
        "Raspberry Pi OS",
        "bookworm",
        info.hostname,
        "pi (uid 1000",
        "Raspberry Pi OS firstboot",
        "W95 FAT32 (LBA)",
        &info.partuuid(2),
        "metadata_csum",
        "journal clean",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

struct Bad {
    name: &'static str,
    /// Builds the input in `dir`; returns the argument list for `inspect`.
    make: fn(&Path) -> Vec<String>,
    /// Texts the one-line error must hold.
    want: &'static [&'static str],
}

fn raw_fixture() -> PathBuf {
    fixtures::fixture_path(Fixture::RaspiosBookworm, Format::Raw).unwrap()
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

#[test]
fn bad_inputs_fail_with_one_clear_error_and_no_cache_debris() {
    let cases = [
        Bad {
            name: "text file",
            make: |d| {
                let p = d.join("notes.txt");
                std::fs::write(&p, "hello, this is not a disk image\n").unwrap();
                vec![s(&p)]
            },
            want: &["notes.txt", "not a disk image"],
        },
        Bad {
            name: "no partition table",
            make: |d| {
                let p = d.join("zeros.img");
                std::fs::write(&p, vec![0u8; 1 << 20]).unwrap();
                vec![s(&p)]
            },
            want: &["zeros.img", "no partition table"],
        },
        Bad {
            name: "truncated raw image",
            make: |d| {
                let p = d.join("half.img");
                let src = raw_fixture();
                let len = std::fs::metadata(&src).unwrap().len();
                sh(
                    d,
                    &format!(
                        "cp --sparse=always {} half.img && truncate -s {} half.img",
                        src.display(),
                        len * 3 / 4
                    ),
                );
                vec![s(&p)]
            },
            want: &["half.img", "partition 2 ends at byte", "truncated image"],
        },
        Bad {
            name: "truncated xz",
            make: |d| {
                let src = fixtures::fixture_path(Fixture::RaspiosBookworm, Format::Xz).unwrap();
                let p = d.join("cut.img.xz");
                let len = std::fs::metadata(&src).unwrap().len();
                sh(
                    d,
                    &format!("head -c {} {} > cut.img.xz", len * 2 / 3, src.display()),
                );
                vec![s(&p)]
            },
            want: &["cut.img.xz", "truncated xz"],
        },
        Bad {
            name: "corrupt ext4 superblock",
            make: |d| {
                let info = fixtures::info(Fixture::RaspiosBookworm);
                let p = d.join("corrupt.img");
                let at = info.root.offset() + 1024 + 0x78;
                sh(
                    d,
                    &format!(
                        "cp --sparse=always {} corrupt.img && printf 'XXXX' | dd of=corrupt.img bs=1 seek={at} conv=notrunc status=none",
                        raw_fixture().display()
                    ),
                );
                vec![s(&p)]
            },
            want: &["corrupt.img", "partition 2", "corrupt ext4 superblock"],
        },
        Bad {
            name: "sha256 mismatch",
            make: |_| {
                vec![
                    s(&fixtures::fixture_path(Fixture::RaspiosTrixie, Format::Zst).unwrap()),
                    "--sha256".into(),
                    "00".repeat(32),
                ]
            },
            want: &[
                "raspios-trixie.img.zst",
                "sha256 mismatch",
                "0000000000000000",
            ],
        },
        Bad {
            name: "unreachable URL",
            make: |_| {
                // A port nothing listens on: bind, learn the port, close.
                let port = std::net::TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port();
                vec![
                    format!("http://127.0.0.1:{port}/os.img.xz"),
                    "--sha256".into(),
                    "ab".repeat(32),
                ]
            },
            want: &["http://127.0.0.1:", "os.img.xz"],
        },
        Bad {
            name: "URL without sha256",
            make: |_| vec!["https://downloads.example/os.img.xz".into()],
            want: &["os.img.xz", "sha256"],
        },
        Bad {
            name: "missing file",
            make: |d| vec![s(&d.join("nope.img"))],
            want: &["nope.img", "no such file"],
        },
    ];
    for case in cases {
        let dir = crate::support::tmp();
        let cache = crate::support::tmp();
        let args = (case.make)(dir.path());
        let mut argv = vec!["inspect"];
        argv.extend(args.iter().map(String::as_str));
        let out = piimage(&argv, cache.path());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}: {err}", case.name);
        assert!(out.stdout.is_empty(), "{}: printed a report", case.name);
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{}: one line expected:\n{err}",
            case.name
        );
        assert!(err.starts_with("error: "), "{}: {err}", case.name);
        for w in case.want {
            assert!(err.contains(w), "{}: {w:?} not in {err}", case.name);
        }
        let debris: Vec<_> = walk(cache.path());
        assert!(debris.is_empty(), "{}: cache holds {debris:?}", case.name);
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn gpt_disks_are_read_too() {
    let dir = crate::support::tmp();
    sh(
        dir.path(),
        "truncate -s 700M gpt.img
         printf 'label: gpt\\nlabel-id: 0D1B8E44-3F0B-4A62-9C5E-0123456789AB\\nstart=2048,size=1048576,type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B,name=boot\\nstart=1050624,size=262144,type=B921B045-1DF0-41C3-AF44-4C6F280D3FAE,name=root\\n' | sfdisk -q gpt.img
         mkfs.fat -F 32 -n BOOT --offset 2048 gpt.img 524288 >/dev/null
         mkdir -p tree/etc && printf 'ID=debian\\nVERSION_ID=\"13\"\\nVERSION_CODENAME=trixie\\n' > tree/etc/os-release
         mke2fs -q -F -t ext4 -T default -L root -E offset=$((1050624*512)) -d tree gpt.img 128M",
    );
    let cache = crate::support::tmp();
    let r = inspect_json(&dir.path().join("gpt.img"), cache.path());
    let t = &r["partition_table"];
    assert_eq!(t["kind"], "gpt");
    assert_eq!(t["disk_id"], "0D1B8E44-3F0B-4A62-9C5E-0123456789AB");
    let p = t["partitions"].as_array().unwrap();
    assert_eq!(p[0]["type_name"], "EFI System");
    assert_eq!(p[0]["filesystem"], "vfat");
    assert_eq!(p[1]["type_name"], "Linux root (ARM-64)");
    assert_eq!(p[1]["start_sector"], 1_050_624);
    assert_eq!(p[1]["label"], "root");
    assert_eq!(r["os"]["codename"], "trixie");
    assert_eq!(r["os"]["family"], "debian");
}
