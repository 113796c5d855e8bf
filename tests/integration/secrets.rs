//! Generated secrets checked by the real consumers: libxcrypt (through Python's `crypt`) for
//! password hashes, `ssh-keygen` for host keys.

use std::os::unix::fs::PermissionsExt;

use piimage::secrets::hostkey::ed25519;
use piimage::secrets::password::{Scheme, hash};
use piimage::secrets::rng::derived_rng;

use crate::support::run_ok;

#[test]
fn password_hashes_verify_with_libxcrypt() {
    let passwords = [
        "hunter2",
        "correct horse battery staple",
        "pässwörd-ünïcode",
        "x",
    ];
    let mut script = String::from("import crypt, sys\nok = True\n");
    for (i, pw) in passwords.iter().enumerate() {
        for scheme in [Scheme::Yescrypt, Scheme::Sha512] {
            let h = hash(
                pw,
                scheme,
                &mut derived_rng(b"seed", "password", &format!("u{i}")),
            )
            .unwrap();
            script.push_str(&format!(
                "ok = ok and crypt.crypt({pw:?}, {h:?}) == {h:?} and crypt.crypt('wrong', {h:?}) != {h:?}\n"
            ));
        }
    }
    script.push_str("print('OK' if ok else 'MISMATCH')\n");
    let out = run_ok("python3", &["-W", "ignore", "-c", &script]);
    assert_eq!(out.trim(), "OK");
}

#[test]
fn host_keys_are_what_ssh_keygen_reads() {
    let dir = crate::support::tmp();
    for node in ["node-01", "worker-07"] {
        let key = ed25519(node, &mut derived_rng(b"seed", "ssh-host-ed25519", node)).unwrap();
        let path = dir.path().join(format!("{node}_key"));
        std::fs::write(&path, &key.private_openssh).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let derived = run_ok("ssh-keygen", &["-y", "-f", path.to_str().unwrap()]);
        assert!(
            derived.starts_with(&key.public_key),
            "{derived} vs {}",
            key.public_key
        );
        let pubpath = dir.path().join(format!("{node}_key.pub"));
        std::fs::write(&pubpath, &key.public_openssh).unwrap();
        let fp = run_ok("ssh-keygen", &["-l", "-f", pubpath.to_str().unwrap()]);
        assert!(
            fp.contains(&key.fingerprint)
                && fp.contains(&format!("root@{node}"))
                && fp.contains("(ED25519)"),
            "{fp}"
        );
    }
}
