//! Links inside the image (case 3): writes and ownership changes never go through them.

use std::path::Path;

use xtask::fixtures::{self, Fixture, Format};

use super::{fails_with, files, piimage, recipe, sha256};
use crate::support::{debugfs, e2fsck_clean, run_ok, sh};

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJvmLoGRr4WXyQ2EGvJ3xKkuC1ZW5s4RjyNQC6jpbTKK alice@laptop";

/// A copy of the Bookworm fixture as `dir/base.img` after the debugfs `commands`; returns the
/// root filesystem's offset.
fn base_with(dir: &Path, commands: &[&str]) -> u64 {
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
    e2fsck_clean(&dir.join("base.img"), off);
    off
}

#[test]
fn issue15_hosts_linked_to_shadow_never_overwrites_shadow() {
    let dir = crate::support::tmp();
    let off = base_with(
        dir.path(),
        &["rm /etc/hosts", "symlink /etc/hosts /etc/shadow"],
    );
    let shadow_before = debugfs(&dir.path().join("base.img"), off, "cat /etc/shadow");
    let r = recipe(dir.path(), "");
    let out = piimage(dir.path(), &["build", r.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // The link was replaced by a file (as `install` does); /etc/shadow is as it was.
    let img = dir.path().join("out/lab-n1.img");
    e2fsck_clean(&img, off);
    assert_eq!(debugfs(&img, off, "cat /etc/shadow"), shadow_before);
    let st = debugfs(&img, off, "stat /etc/shadow");
    assert!(st.contains("Mode:  0640"), "{st}");
    let st = debugfs(&img, off, "stat /etc/hosts");
    assert!(st.contains("Type: regular"), "{st}");
    assert!(debugfs(&img, off, "cat /etc/hosts").contains("n1"));
}

#[test]
fn issue15_a_home_linked_to_root_is_refused_with_its_path() {
    let dir = crate::support::tmp();
    base_with(dir.path(), &["symlink /home/alice /root"]);
    let before = sha256(&dir.path().join("base.img"));
    let r = recipe(
        dir.path(),
        &format!("users: [{{ name: alice, ssh_authorized_keys: [\"{KEY}\"] }}]\n"),
    );
    fails_with(
        &piimage(dir.path(), &["build", r.to_str().unwrap()]),
        &["/home/alice is a symbolic link in the image (to /root)"],
    );
    assert_eq!(files(&dir.path().join("out")), Vec::<String>::new());
    assert_eq!(sha256(&dir.path().join("base.img")), before);
}

#[test]
fn issue15_an_ssh_dir_linked_elsewhere_is_refused() {
    let dir = crate::support::tmp();
    base_with(
        dir.path(),
        &["mkdir /home/alice", "symlink /home/alice/.ssh /etc/ssh"],
    );
    let r = recipe(
        dir.path(),
        &format!("users: [{{ name: alice, ssh_authorized_keys: [\"{KEY}\"] }}]\n"),
    );
    fails_with(
        &piimage(dir.path(), &["build", r.to_str().unwrap()]),
        &["/home/alice/.ssh is a symbolic link in the image (to /etc/ssh)"],
    );
    assert_eq!(files(&dir.path().join("out")), Vec::<String>::new());
}
