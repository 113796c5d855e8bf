//! Missing and late checks (case 9): what only the image knows is checked by `validate --base`,
//! `plan` and `build` before anything is written, what only the recipe knows by `validate`,
//! each with the recipe's file:line:column and field.

use std::path::Path;

use xtask::fixtures::{self, Fixture, Format};

use super::{fails_with, files, piimage};
use crate::support::{debugfs, e2fsck_clean, sh};

fn base(dir: &Path) {
    let raw = fixtures::fixture_path(Fixture::RaspiosBookworm, Format::Raw).unwrap();
    sh(
        dir,
        &format!("cp --sparse=always {} base.img", raw.display()),
    );
}

/// `r.yaml`: one node n1 on `base.img`, raw images to `out/`, then `extra`.
fn recipe(dir: &Path, extra: &str, output: &str) {
    std::fs::write(
        dir.join("r.yaml"),
        format!(
            "cluster: {{ name: lab }}\nbase: {{ path: base.img }}\nnodes: [{{ name: n1 }}]\n\
             output: {{ dir: out, formats: [img]{output} }}\n{extra}"
        ),
    )
    .unwrap();
}

/// validate --base, plan and build all fail with `want`, and build writes nothing.
fn refused_against_the_image(dir: &Path, want: &[&str]) {
    fails_with(
        &piimage(dir, &["validate", "r.yaml", "--base", "base.img"]),
        want,
    );
    fails_with(
        &piimage(dir, &["plan", "r.yaml", "--base", "base.img"]),
        want,
    );
    fails_with(
        &piimage(dir, &["build", "r.yaml", "--base", "base.img"]),
        want,
    );
    assert_eq!(files(&dir.join("out")), Vec::<String>::new());
}

#[test]
fn issue15_a_uid_the_kept_default_user_has_is_refused() {
    let dir = crate::support::tmp();
    let d = dir.path();
    base(d);
    // The fixture's default user is pi, uid 1000, kept unless the recipe says otherwise.
    recipe(d, "users:\n  - { name: bob, uid: 1000 }\n", "");
    refused_against_the_image(
        d,
        &[
            "r.yaml:6:23: users[0].uid: uid 1000 is already \"pi\"'s in the image",
            "`default_user: remove`",
        ],
    );
    // Once pi goes, uid 1000 is bob's.
    recipe(
        d,
        "default_user: remove\nusers:\n  - { name: bob, uid: 1000 }\n",
        "",
    );
    let out = piimage(d, &["build", "r.yaml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let off = fixtures::info(Fixture::RaspiosBookworm).root.offset();
    e2fsck_clean(&d.join("out/lab-n1.img"), off);
    let passwd = debugfs(&d.join("out/lab-n1.img"), off, "cat /etc/passwd");
    let with_1000: Vec<&str> = passwd.lines().filter(|l| l.contains(":1000:")).collect();
    assert_eq!(with_1000.len(), 1, "{passwd}");
    assert!(with_1000[0].starts_with("bob:"), "{passwd}");
}

#[test]
fn issue15_the_default_users_own_name_needs_default_user_remove() {
    let dir = crate::support::tmp();
    let d = dir.path();
    base(d);
    recipe(d, "users:\n  - { name: pi }\n", "");
    let err =
        String::from_utf8_lossy(&piimage(d, &["validate", "r.yaml", "--base", "base.img"]).stderr)
            .into_owned();
    assert!(
        err.contains("r.yaml:6:13: users[0].name: user \"pi\" already exists in the image"),
        "{err}"
    );
    assert!(err.contains("`default_user: remove`"), "{err}");
    assert!(
        !err.contains("remove_default_user"),
        "a hint naming no field: {err}"
    );
}

#[test]
fn issue15_shells_and_groups_missing_from_the_image_are_refused() {
    let dir = crate::support::tmp();
    let d = dir.path();
    base(d);
    recipe(
        d,
        "users:\n  - { name: bob, shell: /bin/nosuch, groups: [vidoe] }\n",
        "",
    );
    refused_against_the_image(
        d,
        &[
            "users[0].shell: shell \"/bin/nosuch\" is not in the image",
            "/bin/bash",
            "users[0].groups[0]: group \"vidoe\" does not exist",
            "video",
        ],
    );
    // A shell through the image's own links (/bin/sh -> dash) is fine.
    recipe(d, "users:\n  - { name: bob, shell: /bin/sh }\n", "");
    let out = piimage(d, &["validate", "r.yaml", "--base", "base.img"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn issue15_output_names_and_sizes_are_checked_by_validate() {
    let dir = crate::support::tmp();
    let d = dir.path();
    let long = "x".repeat(300);
    for (output, want) in [
        (
            ", name: \".{node}\"",
            "would be written as \".n1\": a name starting with `.`",
        ),
        (
            ", name: \"a\\nb{node}\"",
            "'\\n' cannot be in an output name",
        ),
        (", name: \"a b{node}\"", "' ' cannot be in an output name"),
        (
            &format!(", name: \"{long}{{node}}\"")[..],
            "bytes is too long for an output name",
        ),
        (", name: \"\"", "an output name must not be empty"),
        (
            ", size: 1000001",
            "output.size: 1000001 bytes is not a whole number of 512-byte",
        ),
        (", size: 3T", "more than an MBR partition table can address"),
    ] {
        recipe(d, "", output);
        let err = fails_with(&piimage(d, &["validate", "r.yaml"]), &["r.yaml:4:", want]);
        assert!(err.contains("output."), "{err}");
    }
}

#[test]
fn issue15_an_ssid_with_a_line_break_is_refused() {
    let dir = crate::support::tmp();
    let d = dir.path();
    recipe(
        d,
        "network:\n  interfaces:\n    wlan0:\n      wifi: { ssid: \"a\\n[connection]\\nb\", passphrase: \"12345678\", country: GB }\n",
        "",
    );
    fails_with(
        &piimage(d, &["validate", "r.yaml"]),
        &[
            "r.yaml:8:",
            "network.interfaces.wlan0.wifi.ssid",
            "control character '\\n'",
        ],
    );
}
