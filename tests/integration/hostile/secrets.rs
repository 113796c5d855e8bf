//! Secrets (case 8): `plan` shows markers instead of secrets; errors never quote a key or
//! secret file; node images are created 0600.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use xtask::fixtures::{self, Fixture, Format};

use super::{fails_with, piimage};
use crate::support::sh;

fn trixie_recipe(dir: &Path) {
    let raw = fixtures::fixture_path(Fixture::RaspiosTrixie, Format::Raw).unwrap();
    sh(
        dir,
        &format!("cp --sparse=always {} base.img", raw.display()),
    );
    std::fs::write(dir.join("psk.txt"), "correct-horse-battery\n").unwrap();
    std::fs::write(dir.join("pw.txt"), "hunter2hunter2\n").unwrap();
    std::fs::write(
        dir.join("r.yaml"),
        "cluster: { name: lab }\nbase: { path: base.img }\nnodes: [{ name: n1 }]\n\
         output: { dir: out, formats: [img, img.zst] }\nseed: fixed-for-the-test\n\
         users: [{ name: alice, password: { file: pw.txt } }]\n\
         network:\n  interfaces:\n    wlan0:\n      wifi: { ssid: home, passphrase: { file: psk.txt }, country: GB }\n\
         cloud_init: { mode: both }\n",
    )
    .unwrap();
}

#[test]
fn issue15_plan_shows_markers_not_psks_or_password_hashes() {
    let dir = crate::support::tmp();
    trixie_recipe(dir.path());
    let out = piimage(dir.path(), &["plan", "r.yaml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for line in text.lines().filter(|l| l.trim_start().starts_with('+')) {
        assert!(
            !line.contains("$y$") && !line.contains("$6$"),
            "hash shown: {line}"
        );
        let l = line.trim_start_matches([' ', '+']);
        if let Some(v) = l
            .strip_prefix("password:")
            .or_else(|| l.strip_prefix("psk="))
        {
            assert!(
                v.trim().starts_with("<password, redacted") || v.starts_with("<psk, redacted"),
                "{line}"
            );
        }
    }
    assert!(
        text.contains("+ alice:<password hash, redacted, sha256 "),
        "{text}"
    );
    assert!(
        text.contains("password: <password, redacted, sha256 "),
        "{text}"
    );
    assert!(!text.contains("correct-horse-battery") && !text.contains("hunter2"));
}

#[test]
fn issue15_node_images_are_created_0600() {
    let dir = crate::support::tmp();
    trixie_recipe(dir.path());
    let out = piimage(dir.path(), &["build", "r.yaml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in ["lab-n1.img", "lab-n1.img.zst"] {
        let mode = std::fs::metadata(dir.path().join("out").join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{name}: {mode:o}");
    }
}

#[test]
fn issue15_errors_never_quote_a_secret_used_as_a_key_file_or_a_parent_recipe() {
    let dir = crate::support::tmp();
    let d = dir.path();
    std::fs::write(d.join("base.img"), b"").unwrap();
    std::fs::write(d.join("secret.txt"), "my-wifi-passphrase-123\n").unwrap();
    std::fs::write(
        d.join("k.yaml"),
        "cluster: { name: lab }\nbase: { path: base.img }\nnodes: [{ name: n1 }]\nusers: [{ name: alice, ssh_authorized_keys: [{ file: secret.txt }] }]\n",
    )
    .unwrap();
    std::fs::write(
        d.join("e.yaml"),
        "extends: secret.txt\ncluster: { name: lab }\n",
    )
    .unwrap();
    let err = fails_with(
        &piimage(d, &["validate", "k.yaml"]),
        &[
            "secret.txt line 1: not an OpenSSH public key",
            "the line is not shown",
        ],
    );
    assert!(!err.contains("passphrase-123"), "{err}");
    let err = fails_with(
        &piimage(d, &["validate", "e.yaml"]),
        &[
            "e.yaml:1:10",
            "secret.txt is not a recipe",
            "content is not shown",
        ],
    );
    assert!(!err.contains("passphrase-123"), "{err}");
}

#[test]
fn issue15_plan_warns_when_a_seed_puts_secrets_on_the_fat_partition() {
    let dir = crate::support::tmp();
    let d = dir.path();
    trixie_recipe(d);
    let want = |path: &str| {
        format!(
            "warning: boot:{path} holds secrets (password hashes, private keys, Wi-Fi passphrases or tokens): the boot partition is FAT, which has no permissions, so every user of the node can read it"
        )
    };
    // The seed's user-data holds alice's hash, its network-config the Wi-Fi passphrase.
    let out = piimage(d, &["plan", "r.yaml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&want("/user-data")), "{text}");
    assert!(text.contains(&want("/network-config")), "{text}");
    assert!(!text.contains(&want("/meta-data")), "{text}");
    let json = piimage(d, &["plan", "r.yaml", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let warnings = v["nodes"][0]["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].as_str().unwrap().starts_with("boot:/"),
        "{warnings:?}"
    );

    // Without a seed (settings baked into the ext4 root only), nothing on FAT holds a secret.
    let r = std::fs::read_to_string(d.join("r.yaml")).unwrap();
    std::fs::write(
        d.join("r.yaml"),
        r.replace("cloud_init: { mode: both }\n", ""),
    )
    .unwrap();
    let out = piimage(d, &["plan", "r.yaml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("holds secrets"), "{text}");
    assert!(text.contains("+ alice:<password hash, redacted"), "{text}");
}
