//! A damaged base (case 1): refused before anything is written, naming the structure, when
//! `e2fsck -fn` already rejects it.

use std::path::Path;

use xtask::fixtures::{self, Fixture, Format};

use super::{fails_with, files, piimage, recipe, sha256};
use crate::support::{run, run_ok, sh};

/// Copies the Bookworm fixture to `dir/base.img`, runs `debugfs -w` `commands` on its root and
/// then `script` in `dir` (`$OFF` is the root's byte offset); asserts that `e2fsck -fn` now
/// rejects it and returns the offset.
fn damaged_base(dir: &Path, commands: &[&str], script: &str) -> u64 {
    let raw = fixtures::fixture_path(Fixture::RaspiosBookworm, Format::Raw).unwrap();
    let off = fixtures::info(Fixture::RaspiosBookworm).root.offset();
    sh(
        dir,
        &format!("cp --sparse=always {} base.img", raw.display()),
    );
    let spec = format!("{}?offset={off}", dir.join("base.img").display());
    for c in commands {
        run_ok("debugfs", &["-w", "-R", c, &spec]);
    }
    sh(dir, &format!("OFF={off}\n{script}"));
    let fsck = run("e2fsck", &["-fn", &spec]);
    assert_ne!(fsck.status.code(), Some(0), "e2fsck -fn accepts the damage");
    off
}

/// A build on `dir/base.img` fails with `want`, writes nothing and leaves the base as it was.
fn refused(dir: &Path, want: &[&str]) {
    let before = sha256(&dir.join("base.img"));
    let r = recipe(dir, "users: [{ name: alice, password: \"!\" }]\n");
    let mut all = vec!["run `e2fsck -f` on the image first"];
    all.extend_from_slice(want);
    fails_with(&piimage(dir, &["build", r.to_str().unwrap()]), &all);
    assert_eq!(files(&dir.join("out")), Vec::<String>::new());
    assert_eq!(sha256(&dir.join("base.img")), before, "the base changed");
}

#[test]
fn issue15_superblock_fields_e2fsck_rejects_are_refused() {
    for (field, value) in [
        ("desc_size", "3"),
        ("desc_size", "0x1000"),
        ("desc_size", "0xffff"),
        ("log_cluster_size", "5"),
        ("clusters_per_group", "1000"),
        ("first_ino", "3"),
        ("log_groups_per_flex", "0xff"),
    ] {
        let dir = crate::support::tmp();
        damaged_base(dir.path(), &[&format!("ssv {field} {value}")], "");
        refused(dir.path(), &[&format!("s_{field} is ")]);
    }
}

#[test]
fn issue15_a_block_bitmap_with_a_stale_checksum_is_refused() {
    let dir = crate::support::tmp();
    // Group 0's block bitmap (block 14 of the Bookworm fixture, 4 KiB blocks): clear the bits of
    // blocks 8192..8447, which hold files, without updating its checksum.
    let info = sh(
        dir.path(),
        &format!(
            "dumpe2fs '{}?offset={}' 2>/dev/null | grep -m1 'Block bitmap at'",
            fixtures::fixture_path(Fixture::RaspiosBookworm, Format::Raw)
                .unwrap()
                .display(),
            fixtures::info(Fixture::RaspiosBookworm).root.offset()
        ),
    );
    let bitmap: u64 = info.split_whitespace().nth(3).unwrap().parse().unwrap();
    damaged_base(
        dir.path(),
        &[],
        &format!(
            "head -c 32 /dev/zero | dd of=base.img bs=1 seek=$((OFF + {bitmap} * 4096 + 1024)) conv=notrunc status=none"
        ),
    );
    refused(
        dir.path(),
        &["the block bitmap of block group 0 has checksum"],
    );
}

#[test]
fn issue15_a_block_bitmap_freeing_metadata_is_refused_even_with_a_valid_checksum() {
    let dir = crate::support::tmp();
    // debugfs recomputes the checksum: only the content is wrong (an inode table block free).
    let info = sh(
        dir.path(),
        &format!(
            "dumpe2fs '{}?offset={}' 2>/dev/null | grep -m1 'Inode table at'",
            fixtures::fixture_path(Fixture::RaspiosBookworm, Format::Raw)
                .unwrap()
                .display(),
            fixtures::info(Fixture::RaspiosBookworm).root.offset()
        ),
    );
    let first: u64 = info
        .split_whitespace()
        .nth(3)
        .unwrap()
        .split('-')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    damaged_base(dir.path(), &[&format!("freeb {}", first + 1)], "");
    refused(
        dir.path(),
        &[&format!(
            "the block bitmap of block group 0 marks metadata block {} free",
            first + 1
        )],
    );
}

#[test]
fn issue15_a_looping_cmdline_chain_is_refused_before_anything_is_written() {
    use std::io::{Read, Seek, SeekFrom, Write};
    let dir = crate::support::tmp();
    let d = dir.path();
    let raw = fixtures::fixture_path(Fixture::RaspiosBookworm, Format::Raw).unwrap();
    let info = fixtures::info(Fixture::RaspiosBookworm);
    let off = info.boot.start_sector * 512;
    sh(d, &format!("cp --sparse=always {} base.img", raw.display()));
    // cmdline.txt's first cluster, as mtools reports it (`::/cmdline.txt <136>`).
    let shown = run_ok(
        "mshowfat",
        &[
            "-i",
            &format!("{}@@{off}", d.join("base.img").display()),
            "::/cmdline.txt",
        ],
    );
    let cluster: u32 = shown
        .split(['<', '>', '-'])
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // Its FAT32 entry (both copies) now points back at itself.
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(d.join("base.img"))
        .unwrap();
    let mut bs = [0u8; 512];
    f.seek(SeekFrom::Start(off)).unwrap();
    f.read_exact(&mut bs).unwrap();
    let reserved = u64::from(u16::from_le_bytes([bs[14], bs[15]]));
    let fat_len = u64::from(u32::from_le_bytes([bs[36], bs[37], bs[38], bs[39]])) * 512;
    for copy in 0..u64::from(bs[16]) {
        f.seek(SeekFrom::Start(
            off + reserved * 512 + copy * fat_len + 4 * u64::from(cluster),
        ))
        .unwrap();
        f.write_all(&cluster.to_le_bytes()).unwrap();
    }
    drop(f);
    let part = d.join("p1.img");
    crate::support::copy_range(&d.join("base.img"), off, info.boot.sectors * 512, &part);
    let fsck = run("fsck.fat", &["-n", part.to_str().unwrap()]);
    assert_ne!(fsck.status.code(), Some(0), "fsck.fat -n accepts the loop");
    let before = sha256(&d.join("base.img"));
    let r = recipe(d, "boot: { cmdline: { add: [quiet] } }\n");
    fails_with(
        &piimage(d, &["build", r.to_str().unwrap()]),
        &[
            &format!("the chain through cluster {cluster} loops back on itself"),
            "run `fsck.fat` on the partition first",
        ],
    );
    assert_eq!(files(&d.join("out")), Vec::<String>::new());
    assert_eq!(sha256(&d.join("base.img")), before);
}

#[test]
fn issue15_a_file_block_freed_with_a_valid_bitmap_checksum_is_refused() {
    let dir = crate::support::tmp();
    let d = dir.path();
    let raw = fixtures::fixture_path(Fixture::RaspiosBookworm, Format::Raw).unwrap();
    let off = fixtures::info(Fixture::RaspiosBookworm).root.offset();
    // The first block of a file, as debugfs lists it; `freeb` keeps the checksum valid.
    let blocks = crate::support::debugfs(&raw, off, "blocks /usr/share/misc/pci.ids");
    let block: u64 = blocks.split_whitespace().next().unwrap().parse().unwrap();
    damaged_base(d, &[&format!("freeb {block}")], "");
    refused(
        d,
        &[&format!(
            "its data uses block {block}, which the block bitmap marks free"
        )],
    );
}

/// A shell line that inverts the byte at `$OFF + at` of `base.img`.
fn flip(at: u64) -> String {
    format!(
        "python3 -c \"f=open('base.img','r+b');p=$OFF+{at};f.seek(p);b=f.read(1)[0];f.seek(p);f.write(bytes([b^0xff]))\""
    )
}

/// The Bookworm fixture's root filesystem: its raw image and the root's byte offset.
fn bookworm_root() -> (std::path::PathBuf, u64) {
    (
        fixtures::fixture_path(Fixture::RaspiosBookworm, Format::Raw).unwrap(),
        fixtures::info(Fixture::RaspiosBookworm).root.offset(),
    )
}

#[test]
fn issue15_an_inode_with_a_stale_checksum_is_refused() {
    let dir = crate::support::tmp();
    let (raw, off) = bookworm_root();
    // "Inode 51 is part of block group 0\n\tlocated at block 21, offset 0x0200"
    let imap = crate::support::debugfs(&raw, off, "imap /etc/hostname");
    let ino: u64 = imap.split_whitespace().nth(1).unwrap().parse().unwrap();
    let words: Vec<&str> = imap.split_whitespace().collect();
    let block: u64 = words[words.len() - 3]
        .trim_end_matches(',')
        .parse()
        .unwrap();
    let at = u64::from_str_radix(words[words.len() - 1].trim_start_matches("0x"), 16).unwrap();
    // i_mtime's low byte, without updating the inode's checksum.
    damaged_base(dir.path(), &[], &flip(block * 4096 + at + 0x10));
    refused(
        dir.path(),
        &[&format!("inode {ino}: it fails its checksum (stored ")],
    );
}

#[test]
fn issue15_a_directory_block_with_a_stale_checksum_is_refused() {
    // /var/backups (".", ".." in one leaf block) is a directory the planner never reads, so
    // the write gate, which verifies every directory block, is the check that finds it.
    // /home is listed by the planner's reader, which finds the damage first.
    for (path, at, want) in [
        (
            "/var/backups",
            100,
            "its directory block {block} fails its checksum",
        ),
        (
            "/home",
            24 + 8,
            "directory block in inode {ino} has an invalid checksum",
        ),
    ] {
        let dir = crate::support::tmp();
        let (raw, off) = bookworm_root();
        let block: u64 = crate::support::debugfs(&raw, off, &format!("blocks {path}"))
            .trim()
            .parse()
            .unwrap();
        let stat = crate::support::debugfs(&raw, off, &format!("stat {path}"));
        let ino: u64 = stat.split_whitespace().nth(1).unwrap().parse().unwrap();
        // Byte 100 of /var/backups' block is unused space inside ".."'s record; byte 32 of
        // /home's is the first letter of "pi". Either way the entries stay well formed and
        // only the block's checksum is stale.
        damaged_base(dir.path(), &[], &flip(block * 4096 + at));
        let want = want
            .replace("{block}", &block.to_string())
            .replace("{ino}", &ino.to_string());
        let want = if path == "/var/backups" {
            format!("inode {ino}: {want}")
        } else {
            want
        };
        refused(dir.path(), &[&want]);
    }
}

#[test]
fn issue15_an_htree_root_with_a_stale_checksum_is_refused() {
    let dir = crate::support::tmp();
    let (raw, off) = bookworm_root();
    // /usr/bin is an indexed (htree) directory: its first block is the htree root. Change
    // the hash of its second index entry (the first after the count/limit/block header).
    let stat = crate::support::debugfs(&raw, off, "stat /usr/bin");
    assert!(stat.contains("Flags: 0x81000"), "not an htree: {stat}");
    let ino: u64 = stat.split_whitespace().nth(1).unwrap().parse().unwrap();
    let blocks = crate::support::debugfs(&raw, off, "blocks /usr/bin");
    let block: u64 = blocks.split_whitespace().next().unwrap().parse().unwrap();
    damaged_base(dir.path(), &[], &flip(block * 4096 + 0x28));
    // The planner's reader walks /usr/bin (it checks the users' shells) and finds it first;
    // the write gate verifies the same htree checksums (`src/fs/ext4/claims.rs`).
    refused(
        dir.path(),
        &[&format!("in inode {ino} has an invalid checksum")],
    );
}
