//! The SSH server: enabled the way `systemctl enable ssh` does it, settings as an
//! `sshd_config.d` drop-in (Debian's `sshd_config` includes `/etc/ssh/sshd_config.d/*.conf`
//! first, and the first value of a keyword wins), and per-node host keys.

use crate::ops::{FileAttrs, FileOp, Part};
use crate::secrets::hostkey::HostKey;

use super::profile::Profile;

/// What the recipe asks of the SSH server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshdConfig {
    /// Start sshd at boot.
    pub enable: bool,
    /// Allow password logins.
    pub password_authentication: bool,
    /// Allow root logins (with keys only, when allowed).
    pub permit_root_login: bool,
    /// Extra `Keyword value` settings, in order.
    pub extra: Vec<(String, String)>,
    /// Baked host key, or `None` to keep the image's own behaviour.
    pub host_key: Option<HostKey>,
}

/// Path of piimage's sshd drop-in.
pub const DROP_IN: &str = "/etc/ssh/sshd_config.d/10-piimage.conf";

/// The drop-in text.
pub fn drop_in(spec: &SshdConfig) -> String {
    let yes_no = |b| if b { "yes" } else { "no" };
    let mut s = String::from("# Written by piimage.\n");
    s.push_str(&format!(
        "PasswordAuthentication {}\n",
        yes_no(spec.password_authentication)
    ));
    s.push_str(&format!(
        "KbdInteractiveAuthentication {}\n",
        yes_no(spec.password_authentication)
    ));
    s.push_str(&format!(
        "PermitRootLogin {}\n",
        if spec.permit_root_login {
            "prohibit-password"
        } else {
            "no"
        }
    ));
    for (k, v) in &spec.extra {
        s.push_str(&format!("{k} {v}\n"));
    }
    s
}

fn link(path: &str, target: &str) -> FileOp {
    FileOp::Symlink {
        path: path.to_owned(),
        target: target.to_owned(),
        uid: 0,
        gid: 0,
    }
}

fn remove(path: &str) -> FileOp {
    FileOp::Remove {
        part: Part::Root,
        path: path.to_owned(),
    }
}

/// Operations for the SSH server.
pub fn ssh_ops(profile: &Profile, spec: &SshdConfig) -> Vec<FileOp> {
    let mut ops = vec![FileOp::Write {
        part: Part::Root,
        path: DROP_IN.to_owned(),
        data: drop_in(spec).into_bytes(),
        owner: FileAttrs::root(0o644),
    }];
    if spec.enable {
        // `systemctl enable ssh`: the [Install] section's WantedBy and Alias.
        ops.push(link(
            "/etc/systemd/system/multi-user.target.wants/ssh.service",
            "/usr/lib/systemd/system/ssh.service",
        ));
        ops.push(link(
            "/etc/systemd/system/sshd.service",
            "/usr/lib/systemd/system/ssh.service",
        ));
    }
    if let Some(key) = &spec.host_key {
        ops.push(FileOp::Write {
            part: Part::Root,
            path: "/etc/ssh/ssh_host_ed25519_key".to_owned(),
            data: key.private_openssh.clone().into_bytes(),
            owner: FileAttrs::root(0o600),
        });
        ops.push(FileOp::Write {
            part: Part::Root,
            path: "/etc/ssh/ssh_host_ed25519_key.pub".to_owned(),
            data: key.public_openssh.clone().into_bytes(),
            owner: FileAttrs::root(0o644),
        });
        // Bookworm's regenerate_ssh_host_keys.service wipes every host key on first boot.
        if profile
            .first_boot
            .enabled_units
            .iter()
            .any(|u| u == "regenerate_ssh_host_keys.service")
        {
            ops.push(remove(
                "/etc/systemd/system/multi-user.target.wants/regenerate_ssh_host_keys.service",
            ));
        }
        // Only the baked key type exists; sshd must not look for others.
        ops.push(FileOp::Append {
            part: Part::Root,
            path: DROP_IN.to_owned(),
            data: b"HostKey /etc/ssh/ssh_host_ed25519_key\n".to_vec(),
            owner: FileAttrs::root(0o644),
        });
    }
    ops
}
