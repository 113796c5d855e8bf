//! Bounded resources (case 4): files read from the image, secrets, recipes and templates.

use std::path::Path;
use std::time::{Duration, Instant};

use xtask::fixtures::{self, Fixture, Format};

use super::{fails_with, files, piimage, recipe, sha256};
use crate::support::{e2fsck_clean, run_ok, sh};

/// A copy of the Bookworm fixture as `dir/base.img` whose `path` claims `size` bytes (a sparse
/// tail, which e2fsck accepts); returns the root filesystem's offset.
fn base_with_huge(dir: &Path, path: &str, size: u64) -> u64 {
    let raw = fixtures::fixture_path(Fixture::RaspiosBookworm, Format::Raw).unwrap();
    let off = fixtures::info(Fixture::RaspiosBookworm).root.offset();
    sh(
        dir,
        &format!("cp --sparse=always {} base.img", raw.display()),
    );
    let img = dir.join("base.img");
    let spec = format!("{}?offset={off}", img.display());
    run_ok(
        "debugfs",
        &["-w", "-R", &format!("sif {path} size {size}"), &spec],
    );
    e2fsck_clean(&img, off);
    off
}

const TIB: u64 = 1 << 40;

#[test]
fn issue15_a_1tib_sparse_passwd_is_refused_by_inspect_and_build() {
    let dir = crate::support::tmp();
    base_with_huge(dir.path(), "/etc/passwd", TIB);
    let before = sha256(&dir.path().join("base.img"));
    let want = [
        "/etc/passwd",
        "the file is 1099511627776 bytes, more than the 16 MiB",
    ];
    fails_with(&piimage(dir.path(), &["inspect", "base.img"]), &want);
    let r = recipe(dir.path(), "");
    fails_with(&piimage(dir.path(), &["build", r.to_str().unwrap()]), &want);
    assert_eq!(files(&dir.path().join("out")), Vec::<String>::new());
    assert_eq!(sha256(&dir.path().join("base.img")), before);
}

#[test]
fn issue15_a_1tib_sparse_file_the_recipe_edits_is_refused_by_the_writer() {
    let dir = crate::support::tmp();
    base_with_huge(dir.path(), "/etc/shadow", TIB);
    let r = recipe(dir.path(), "users: [{ name: alice, password: \"!\" }]\n");
    fails_with(
        &piimage(dir.path(), &["build", r.to_str().unwrap()]),
        &["/etc/shadow", "the file is 1099511627776 bytes"],
    );
    assert_eq!(files(&dir.path().join("out")), Vec::<String>::new());
}

/// `validate` of `yaml` (in `dir/r.yaml`) must fail within `secs` with every `want`.
fn refused_quickly(yaml: &str, secs: u64, want: &[&str]) {
    let dir = crate::support::tmp();
    std::fs::write(dir.path().join("base.img"), b"").unwrap();
    let p = dir.path().join("r.yaml");
    std::fs::write(&p, yaml).unwrap();
    let t = Instant::now();
    let out = piimage(dir.path(), &["validate", "r.yaml"]);
    assert!(t.elapsed() < Duration::from_secs(secs), "{:?}", t.elapsed());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for w in want {
        assert!(err.contains(w), "{w:?} not in:\n{err}");
    }
}

#[test]
fn issue15_dev_zero_as_a_secret_or_a_parent_recipe_is_cut_at_the_limit() {
    refused_quickly(
        "cluster: { name: lab }\nbase: { path: base.img }\nnodes: [{ name: n1 }]\nusers:\n  - name: alice\n    password: { file: /dev/zero }\n",
        20,
        &[
            "/dev/zero",
            "larger than the 64 KiB piimage reads of such a file",
        ],
    );
    refused_quickly(
        "extends: /dev/zero\ncluster: { name: lab }\n",
        20,
        &[
            "/dev/zero",
            "larger than the 4 MiB piimage reads of such a file",
        ],
    );
}

#[test]
fn issue15_runaway_templates_fail_validate_quickly() {
    let dir = crate::support::tmp();
    std::fs::write(dir.path().join("base.img"), b"").unwrap();
    std::fs::create_dir_all(dir.path().join("ov/etc")).unwrap();
    std::fs::write(
        dir.path().join("ov/etc/big.j2"),
        "{% set ns = namespace(x='ab') %}{% for i in range(40) %}{% set ns.x = ns.x ~ ns.x %}{% endfor %}{{ ns.x }}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("ov/etc/slow.j2"),
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("r.yaml"),
        "cluster: { name: lab }\nbase: { path: base.img }\nnodes: [{ name: n1 }]\noverlays: [ov]\n",
    )
    .unwrap();
    let t = Instant::now();
    let out = piimage(dir.path(), &["validate", "r.yaml"]);
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for w in [
        "big.j2",
        "slow.j2",
        "more work than piimage allows one template",
    ] {
        assert!(err.contains(w), "{w:?} not in:\n{err}");
    }
}
