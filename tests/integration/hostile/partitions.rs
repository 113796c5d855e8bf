//! Partition tables: absurd GPT fields (case 4) and overlapping partitions (case 2).

use std::path::Path;

use xtask::fixtures::{self, Fixture, Format};

use super::{fails_with, files, piimage, recipe, sha256};
use crate::support::{run_ok, sh};

fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// Sets `number_of_partition_entries` / `size_of_partition_entry` of the GPT header at `lba`
/// and reseals its CRC, so only the fields themselves are wrong.
fn patch_gpt(img: &Path, lba: u64, entries: u32, entry_size: u32) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(img)
        .unwrap();
    let mut h = [0u8; 92];
    f.seek(SeekFrom::Start(lba * 512)).unwrap();
    f.read_exact(&mut h).unwrap();
    assert_eq!(&h[..8], b"EFI PART");
    h[80..84].copy_from_slice(&entries.to_le_bytes());
    h[84..88].copy_from_slice(&entry_size.to_le_bytes());
    h[16..20].fill(0);
    let c = crc32(&h);
    h[16..20].copy_from_slice(&c.to_le_bytes());
    f.seek(SeekFrom::Start(lba * 512)).unwrap();
    f.write_all(&h).unwrap();
}

/// A GPT image with a FAT and an ext4 partition (as in the inspect tests), 64 MiB.
fn gpt_image(dir: &Path) -> std::path::PathBuf {
    sh(
        dir,
        "truncate -s 64M gpt.img
         printf 'label: gpt\\nstart=2048,size=65536,type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\\nstart=67584,size=61440,type=B921B045-1DF0-41C3-AF44-4C6F280D3FAE\\n' | sfdisk -q gpt.img
         mkfs.fat -F 32 -n BOOT --offset 2048 gpt.img 32768 >/dev/null
         mkdir -p tree/etc && printf 'ID=debian\\nVERSION_ID=\"13\"\\n' > tree/etc/os-release
         mke2fs -q -F -t ext4 -L root -E offset=$((67584*512)) -d tree gpt.img 30M",
    );
    dir.join("gpt.img")
}

#[test]
fn issue15_gpt_with_absurd_entry_count_uses_the_backup_and_says_so() {
    let dir = crate::support::tmp();
    let img = gpt_image(dir.path());
    // 0xFFFFFFFF entries made gptman reserve ~650 GB and abort.
    patch_gpt(&img, 1, 0xFFFF_FFFF, 128);
    let out = piimage(dir.path(), &["inspect", "--json", "gpt.img"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let t = &r["partition_table"];
    assert_eq!(t["partitions"][1]["start_sector"], 67584);
    assert_eq!(t["partitions"][1]["label"], "root");
    let w = t["warnings"][0].as_str().unwrap();
    assert!(
        w.contains("primary GPT (sector 1) is damaged: 4294967295 partition entries"),
        "{w}"
    );
    let human = piimage(dir.path(), &["inspect", "gpt.img"]);
    assert!(String::from_utf8_lossy(&human.stdout).contains("warning: the primary GPT"));
    // plan and build say so too.
    std::fs::write(
        dir.path().join("r.yaml"),
        "cluster: { name: lab }\nbase: { path: gpt.img }\nnodes: [{ name: n1 }]\noutput: { dir: out, formats: [img] }\n",
    )
    .unwrap();
    let plan = piimage(dir.path(), &["plan", "r.yaml"]);
    assert!(
        plan.status.success(),
        "{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    assert!(
        String::from_utf8_lossy(&plan.stdout)
            .starts_with("warning: the primary GPT (sector 1) is damaged")
    );
    let build = piimage(dir.path(), &["build", "r.yaml"]);
    let err = String::from_utf8_lossy(&build.stderr);
    assert!(build.status.success(), "{err}");
    assert!(
        err.contains("warning: the primary GPT (sector 1) is damaged"),
        "{err}"
    );
}

#[test]
fn issue15_gpt_entry_size_zero_in_both_copies_is_an_error_not_a_panic() {
    let dir = crate::support::tmp();
    let img = gpt_image(dir.path());
    let last = std::fs::metadata(&img).unwrap().len() / 512 - 1;
    patch_gpt(&img, 1, 128, 0);
    patch_gpt(&img, last, 128, 0);
    fails_with(
        &piimage(dir.path(), &["inspect", "gpt.img"]),
        &[
            "gpt.img",
            "invalid GPT",
            "primary header: partition entry size 0 (only 128 is supported)",
            &format!("backup header (sector {last}): partition entry size 0"),
        ],
    );
}

#[test]
fn issue15_root_partition_inside_the_boot_partition_is_refused_before_writing() {
    let dir = crate::support::tmp();
    let info = fixtures::info(Fixture::RaspiosBookworm);
    let raw = fixtures::fixture_path(Fixture::RaspiosBookworm, Format::Raw).unwrap();
    // Move the root filesystem into the second half of the FAT partition, where the (small)
    // FAT leaves nothing: each filesystem alone stays clean.
    let boot = info.boot.start_sector;
    let root_start = boot + 524_288;
    sh(
        dir.path(),
        &format!(
            "cp --sparse=always {raw} base.img
             dd if={raw} of=base.img bs=1M iflag=skip_bytes,count_bytes oflag=seek_bytes skip={old} seek={new} count={len} conv=notrunc,sparse status=none",
            raw = raw.display(),
            old = info.root.start_sector * 512,
            new = root_start * 512,
            len = info.root.sectors * 512,
        ),
    );
    // sfdisk refuses to write overlapping entries: set partition 2's start by hand.
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join("base.img"))
            .unwrap();
        f.seek(SeekFrom::Start(446 + 16 + 8)).unwrap();
        f.write_all(&u32::try_from(root_start).unwrap().to_le_bytes())
            .unwrap();
    }
    let img = dir.path().join("base.img");
    crate::support::e2fsck_clean(&img, root_start * 512);
    let before = sha256(&img);
    let r = recipe(dir.path(), "boot: { config_txt: [dtparam=audio=off] }\n");
    let out = piimage(dir.path(), &["build", r.to_str().unwrap()]);
    fails_with(
        &out,
        &[
            &format!(
                "partitions 1 (sectors {boot}..{}) and 2 (sectors {root_start}..",
                boot + 1_048_576
            ),
            "overlap",
        ],
    );
    assert_eq!(sha256(&img), before, "the base changed");
    assert_eq!(files(&dir.path().join("out")), Vec::<String>::new());
    fails_with(&piimage(dir.path(), &["inspect", "base.img"]), &["overlap"]);
    let _ = run_ok;
}

/// The MBR reader (ours since mbrman 0.6.1 overflowed on an EBR; `src/disk/mbr.rs`) against
/// `sfdisk`: a disk with primary, extended and logical partitions made by sfdisk reads back
/// with the numbers, starts, lengths and types `sfdisk --json` reports, and a FAT and an ext4
/// volume on logical partitions are found by their labels.
#[test]
fn issue15_mbr_with_logical_partitions_reads_as_sfdisk_does() {
    let dir = crate::support::tmp();
    sh(
        dir.path(),
        "truncate -s 64M d.img
         printf 'label: dos\\nlabel-id: 0x11223344\\nstart=2048,size=16384,type=c,bootable\\nstart=18432,type=5\\nstart=20480,size=20480,type=c\\nstart=43008,size=40960,type=83\\n' | sfdisk -q d.img
         mkfs.fat -F 32 -n LBOOT --offset 20480 d.img 10240 >/dev/null
         mkdir -p tree/etc && printf 'ID=debian\\nVERSION_ID=\"13\"\\n' > tree/etc/os-release
         mke2fs -q -F -t ext4 -L lroot -E offset=$((43008*512)) -d tree d.img 20M",
    );
    let img = dir.path().join("d.img");
    let oracle = run_ok("sfdisk", &["--json", img.to_str().unwrap()]);
    let oracle: serde_json::Value = serde_json::from_str(&oracle).unwrap();
    let want: Vec<(u64, u64, u64, String)> = oracle["partitiontable"]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        // The extended container is not a filesystem; piimage lists only what it holds.
        .filter(|p| p["type"] != "5")
        .map(|p| {
            let node = p["node"].as_str().unwrap();
            let number = node.rsplit("d.img").next().unwrap().parse().unwrap();
            let kind = format!("0x{:0>2}", p["type"].as_str().unwrap());
            (
                number,
                p["start"].as_u64().unwrap(),
                p["size"].as_u64().unwrap(),
                kind,
            )
        })
        .collect();
    assert_eq!(want.len(), 3, "{oracle}");
    let out = piimage(dir.path(), &["inspect", "--json", "d.img"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let t = &r["partition_table"];
    assert_eq!(t["disk_id"], "11223344");
    let got: Vec<(u64, u64, u64, String)> = t["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["number"].as_u64().unwrap(),
                p["start_sector"].as_u64().unwrap(),
                p["sectors"].as_u64().unwrap(),
                p["type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(got, want);
    let parts = t["partitions"].as_array().unwrap();
    assert_eq!(parts[0]["bootable"], true);
    assert_eq!(parts[1]["partuuid"], "11223344-05");
    assert_eq!(parts[1]["label"], "LBOOT");
    assert_eq!(parts[2]["label"], "lroot");
}
