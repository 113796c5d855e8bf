//! cloud-init: a guard when settings are baked, and NoCloud seeds when asked for.
//!
//! NoCloud needs both `user-data` and `meta-data` (image-formats.md §2.5); Raspberry Pi OS
//! Trixie reads them from `/boot/firmware`, Ubuntu from the FAT labelled `system-boot`: in both
//! cases the root of the boot partition. Every node gets its own `instance-id`, so cloud-init
//! treats a re-flashed card as a new instance.
//!
//! When settings are baked, cloud-init must not undo them on first boot: the guard drop-in keeps
//! the hostname, leaves `/etc/hosts` alone (`manage_etc_hosts` rewrites it on every boot),
//! keeps baked host keys and leaves the baked network alone.

use crate::ops::{FileAttrs, FileOp, Part};

use super::users::{Account, SudoRule};
use super::yaml::quote as q;

/// Path of the guard drop-in.
pub const GUARD: &str = "/etc/cloud/cloud.cfg.d/99-piimage.cfg";

/// The guard text.
///
/// No `users:` here: the schema wants a non-empty list, and cloud-init skips creating users
/// that exist, so the seed's `user-data` lists the baked users instead (which also stops it from
/// creating the distribution's default user).
pub fn guard(host_keys_baked: bool, network_baked: bool) -> String {
    let mut s = String::from(
        "# Written by piimage: this node's settings are baked into the image.\n\
         # Keep cloud-init from redoing or undoing them on first boot.\n\
         preserve_hostname: true\n\
         manage_etc_hosts: false\n",
    );
    if host_keys_baked {
        s.push_str("ssh_deletekeys: false\nssh_genkeytypes: [ed25519]\n");
    }
    if network_baked {
        s.push_str("network:\n  config: disabled\n");
    }
    s
}

/// What a seed's `user-data` sets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SeedSpec {
    /// Short hostname.
    pub hostname: String,
    /// Fully qualified name, if any.
    pub fqdn: Option<String>,
    /// Users.
    pub users: Vec<Account>,
    /// Allow SSH password logins.
    /// `None` leaves sshd's password setting to what is baked (cloud-init would rewrite it and
    /// restart sshd in the middle of the first boot).
    pub ssh_pwauth: Option<bool>,
    /// Time zone.
    pub timezone: Option<String>,
    /// Locale.
    pub locale: Option<String>,
    /// Keyboard layout.
    pub keyboard: Option<String>,
    /// Extra top-level user-data, already rendered as YAML lines (merged last).
    pub extra_yaml: String,
    /// The users' passwords are baked into `/etc/shadow` (cloud-init mode `bake`): the seed
    /// then carries no hash, only `lock_passwd: false` for a user with a usable password, so
    /// cloud-init (which skips users that exist, then locks their passwords unless told not to)
    /// leaves the baked one alone. The seed lies on the FAT partition, readable by every user
    /// of the node.
    pub passwords_baked: bool,
}

/// `#cloud-config` user-data for a node.
pub fn user_data(spec: &SeedSpec) -> String {
    let mut s = String::from("#cloud-config\n# Written by piimage.\n");
    s.push_str(&format!("hostname: {}\n", q(&spec.hostname)));
    if let Some(f) = &spec.fqdn {
        s.push_str(&format!("fqdn: {}\n", q(f)));
    }
    s.push_str("manage_etc_hosts: false\n");
    if let Some(pw) = spec.ssh_pwauth {
        s.push_str(&format!("ssh_pwauth: {pw}\n"));
    }
    if let Some(tz) = &spec.timezone {
        s.push_str(&format!("timezone: {}\n", q(tz)));
    }
    if let Some(l) = &spec.locale {
        s.push_str(&format!("locale: {}\n", q(l)));
    }
    if let Some(k) = &spec.keyboard {
        s.push_str(&format!("keyboard:\n  layout: {}\n", q(k)));
    }
    if !spec.users.is_empty() {
        s.push_str("users:\n");
        for u in &spec.users {
            s.push_str(&format!("  - name: {}\n", q(&u.name)));
            if let Some(uid) = u.uid {
                s.push_str(&format!("    uid: {uid}\n"));
            }
            if !u.gecos.is_empty() {
                s.push_str(&format!("    gecos: {}\n", q(&u.gecos)));
            }
            s.push_str(&format!("    shell: {}\n", q(&u.shell)));
            if !u.groups.is_empty() {
                let g: Vec<String> = u.groups.iter().map(|g| q(g)).collect();
                s.push_str(&format!("    groups: [{}]\n", g.join(", ")));
            }
            match u.sudo {
                SudoRule::None => s.push_str("    sudo: null\n"),
                SudoRule::Password => s.push_str("    sudo: \"ALL=(ALL:ALL) ALL\"\n"),
                SudoRule::NoPassword => s.push_str("    sudo: \"ALL=(ALL) NOPASSWD:ALL\"\n"),
            }
            match (&u.password_hash, u.locked) {
                (Some(_), false) if spec.passwords_baked => {
                    s.push_str("    lock_passwd: false\n");
                }
                (Some(h), false) => {
                    s.push_str("    lock_passwd: false\n");
                    s.push_str(&format!("    hashed_passwd: {}\n", q(h)));
                }
                _ => s.push_str("    lock_passwd: true\n"),
            }
            if !u.authorized_keys.is_empty() {
                s.push_str("    ssh_authorized_keys:\n");
                for k in &u.authorized_keys {
                    s.push_str(&format!("      - {}\n", q(k)));
                }
            }
        }
    }
    s.push_str(&spec.extra_yaml);
    s
}

/// `meta-data` with the node's instance id.
pub fn meta_data(instance_id: &str, hostname: &str) -> String {
    format!(
        "instance-id: {}\nlocal-hostname: {}\n",
        q(instance_id),
        q(hostname)
    )
}

/// Operations writing seeds (`user-data`, `meta-data`, and `network-config` when given) to the
/// root of the boot partition.
pub fn seed_ops(
    user_data: String,
    meta_data: String,
    network_config: Option<String>,
) -> Vec<FileOp> {
    let w = |path: &str, data: String| FileOp::Write {
        part: Part::Boot,
        path: path.to_owned(),
        data: data.into_bytes(),
        owner: FileAttrs::root(0o644),
    };
    let mut ops = vec![w("/user-data", user_data), w("/meta-data", meta_data)];
    match network_config {
        Some(n) => ops.push(w("/network-config", n)),
        None => ops.push(FileOp::Remove {
            part: Part::Boot,
            path: "/network-config".to_owned(),
        }),
    }
    ops
}

/// The guard drop-in operation.
pub fn guard_op(host_keys_baked: bool, network_baked: bool) -> FileOp {
    FileOp::Write {
        part: Part::Root,
        path: GUARD.to_owned(),
        data: guard(host_keys_baked, network_baked).into_bytes(),
        owner: FileAttrs::root(0o644),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(passwords_baked: bool) -> SeedSpec {
        SeedSpec {
            hostname: "n1".into(),
            users: vec![
                Account {
                    name: "alice".into(),
                    shell: "/bin/bash".into(),
                    password_hash: Some("$y$j9T$salt$hash".into()),
                    ..Account::default()
                },
                Account {
                    name: "bob".into(),
                    shell: "/bin/bash".into(),
                    ..Account::default()
                },
            ],
            passwords_baked,
            ..SeedSpec::default()
        }
    }

    #[test]
    fn a_seed_beside_baked_passwords_carries_no_hash_and_does_not_lock() {
        let u = user_data(&spec(true));
        assert!(!u.contains("$y$"), "{u}");
        assert!(!u.contains("hashed_passwd"), "{u}");
        let alice = &u[u
            .find("name: \"alice\"")
            .or_else(|| u.find("name: alice"))
            .unwrap()..];
        let alice = &alice[..alice.find("- name:").unwrap_or(alice.len())];
        assert!(alice.contains("lock_passwd: false"), "{u}");
        let bob = &u[u.find("bob").unwrap()..];
        assert!(bob.contains("lock_passwd: true"), "{u}");
    }

    #[test]
    fn a_seed_that_creates_the_users_carries_their_hashes() {
        let u = user_data(&spec(false));
        assert!(u.contains("hashed_passwd: "), "{u}");
        assert!(u.contains("$y$j9T$salt$hash"), "{u}");
    }
}
