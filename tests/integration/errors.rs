//! Issue 13 item 4: an error's causes are printed once each, in order, as they are (no
//! message repeats its cause). Real failures, read from the CLI's stderr and `--json`.

use std::path::Path;

use crate::hostile::{fails_with, piimage, recipe};
use crate::support::sh;

/// `base.img`: an MBR image with a FAT boot and an ext4 root partition.
fn base_image(dir: &Path) {
    sh(
        dir,
        "truncate -s 64M base.img
         printf 'label: dos\\nstart=2048,size=65536,type=c\\nstart=67584,size=61440,type=83\\n' | sfdisk -q base.img
         mkfs.fat -F 32 -n BOOT --offset 2048 base.img 32768 >/dev/null 2>&1
         mkdir -p tree/etc && printf 'ID=debian\\nVERSION_ID=\"13\"\\n' > tree/etc/os-release
         mke2fs -q -F -t ext4 -O metadata_csum -L root -E offset=$((67584*512)) -d tree base.img 30M",
    );
}

/// Changes one byte of the root's volume name: the superblock keeps its magic but its
/// checksum no longer matches.
fn damage_root_superblock(dir: &Path) {
    sh(
        dir,
        "printf X | dd of=base.img bs=1 seek=$((67584*512+1024+120)) conv=notrunc status=none",
    );
}

/// Each of `pieces` is in `text` exactly once, in this order, joined by `: `.
fn once_each_in_order(text: &str, pieces: &[&str]) {
    for p in pieces {
        assert_eq!(
            text.matches(p).count(),
            1,
            "{p:?} not exactly once in:\n{text}"
        );
    }
    let joined = pieces.join(": ");
    assert!(text.contains(&joined), "{joined:?} not in:\n{text}");
}

#[test]
fn issue13_a_damaged_root_prints_each_layer_once() {
    let dir = crate::support::tmp();
    base_image(dir.path());
    damage_root_superblock(dir.path());
    let r = recipe(dir.path(), "");
    let pieces = [
        "base.img",
        "partition 2 (ext4)",
        "corrupt ext4 superblock: checksum",
    ];
    let err = fails_with(&piimage(dir.path(), &["build", "r.yaml"]), &[]);
    assert!(err.starts_with("error: building r.yaml: "), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    once_each_in_order(&err, &pieces);
    assert!(
        err.trim_end().ends_with(" computed"),
        "the root cause ends the line: {err}"
    );

    // --json carries the same chain as its one message.
    let out = piimage(dir.path(), &["plan", "--json", r.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let message = v["errors"][0]["message"].as_str().unwrap();
    once_each_in_order(message, &pieces);
}

#[test]
fn issue13_an_io_failure_prints_its_context_and_its_cause_once() {
    let dir = crate::support::tmp();
    base_image(dir.path());
    // A regular file where the output directory must go.
    std::fs::write(dir.path().join("out"), b"").unwrap();
    recipe(dir.path(), "");
    let err = fails_with(&piimage(dir.path(), &["build", "r.yaml"]), &[]);
    assert!(
        err.starts_with("error: building r.yaml: creating "),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    once_each_in_order(&err, &["/out", "File exists (os error 17)"]);
    assert!(
        err.trim_end().ends_with("/out: File exists (os error 17)"),
        "{err}"
    );
}

#[test]
fn issue13_a_planning_error_names_the_node_and_the_setting_and_writes_nothing() {
    let dir = crate::support::tmp();
    base_image(dir.path());
    let r = recipe(dir.path(), "services: { enable: [nope.service] }\n");
    let err = fails_with(&piimage(dir.path(), &["build", "r.yaml"]), &[]);
    assert_eq!(err.lines().count(), 1, "{err}");
    once_each_in_order(
        &err,
        &[
            "building r.yaml",
            "node n1",
            "services.enable: no unit file nope.service in the image",
        ],
    );
    assert!(
        crate::hostile::files(&dir.path().join("out")).is_empty(),
        "a failed plan leaves no output"
    );

    let out = piimage(dir.path(), &["plan", "--json", r.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let message = v["errors"][0]["message"].as_str().unwrap();
    once_each_in_order(
        message,
        &["node n1", "services.enable: no unit file nope.service"],
    );
}
