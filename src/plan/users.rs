//! Users, baked into the account tables (`passwd(5)`, `shadow(5)`, `group(5)`, `gshadow(5)`,
//! `subuid(5)`), with homes made from `/etc/skel`, SSH keys and sudo rules.
//!
//! On Raspberry Pi OS, defining users disarms the first-boot user wizard (`userconfig.service`)
//! and brings the console login back, as `cancel-rename` would.

use crate::ops::{FileAttrs, FileOp, Part, TextEdit};

use super::NodeConflict;
use super::profile::Profile;

/// How a user may use sudo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SudoRule {
    /// Not at all.
    #[default]
    None,
    /// With their password.
    Password,
    /// Without a password.
    NoPassword,
}

/// One user to bake, with secrets already resolved (the password is a crypt hash).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Account {
    /// Login name.
    pub name: String,
    /// uid (the next free one from 1000 when `None`).
    pub uid: Option<u32>,
    /// GECOS field.
    pub gecos: String,
    /// Login shell.
    pub shell: String,
    /// Supplementary groups (must exist in the image).
    pub groups: Vec<String>,
    /// sudo rule.
    pub sudo: SudoRule,
    /// crypt(3) hash, or `None` for no password (`!`: key-only login).
    pub password_hash: Option<String>,
    /// Lock the account (`!` before the hash).
    pub locked: bool,
    /// OpenSSH public keys for `~/.ssh/authorized_keys`.
    pub authorized_keys: Vec<String>,
}

fn edit(path: &str, edit: TextEdit) -> FileOp {
    FileOp::Edit {
        part: Part::Root,
        path: path.to_owned(),
        edit,
    }
}

fn row(fields: &[&str]) -> TextEdit {
    TextEdit::TableUpsert {
        fields: fields.iter().map(|s| (*s).to_owned()).collect(),
    }
}

fn remove_row(key: &str) -> TextEdit {
    TextEdit::TableRemove {
        key: key.to_owned(),
    }
}

const TABLES: [&str; 6] = [
    "/etc/passwd",
    "/etc/shadow",
    "/etc/group",
    "/etc/gshadow",
    "/etc/subuid",
    "/etc/subgid",
];

/// Operations removing the image's default user (`pi` on Raspberry Pi OS) completely.
pub fn remove_user_ops(profile: &Profile, name: &str) -> Vec<FileOp> {
    let mut ops: Vec<FileOp> = TABLES.iter().map(|t| edit(t, remove_row(name))).collect();
    for g in &profile.groups {
        for (table, index) in [("/etc/group", 3), ("/etc/gshadow", 3)] {
            ops.push(edit(
                table,
                TextEdit::TableRemoveMember {
                    key: g.clone(),
                    index,
                    member: name.to_owned(),
                },
            ));
        }
    }
    ops.push(FileOp::Remove {
        part: Part::Root,
        path: format!("/etc/sudoers.d/010_{name}-nopasswd"),
    });
    if let Some((_, paths)) = profile.home_trees.iter().find(|(u, _)| u == name) {
        for p in paths {
            ops.push(FileOp::Remove {
                part: Part::Root,
                path: p.clone(),
            });
        }
    }
    ops
}

/// Operations adding `users` (after any removal), with shadow "last changed" set from `epoch`.
pub fn user_ops(
    profile: &Profile,
    users: &[Account],
    removed: &[String],
    epoch: i64,
) -> Result<Vec<FileOp>, NodeConflict> {
    let mut ops = Vec::new();
    let days = (epoch / 86_400).to_string();
    let mut taken: Vec<u32> = profile
        .users
        .iter()
        .filter(|u| !removed.contains(&u.name))
        .map(|u| u.uid)
        .collect();
    taken.extend(users.iter().filter_map(|u| u.uid));
    let home_mode = if profile.family == crate::image::os::OsFamily::Ubuntu {
        0o750
    } else {
        0o700
    };
    for u in users {
        if profile.users.iter().any(|e| e.name == u.name) && !removed.contains(&u.name) {
            return Err(NodeConflict::UserExists {
                user: u.name.clone(),
            });
        }
        let uid = match u.uid {
            Some(uid) => uid,
            None => {
                let next = (1000..60000).find(|c| !taken.contains(c)).ok_or_else(|| {
                    NodeConflict::NoFreeUid {
                        user: u.name.clone(),
                    }
                })?;
                taken.push(next);
                next
            }
        };
        for g in &u.groups {
            if !profile.groups.contains(g) {
                return Err(NodeConflict::UnknownGroup {
                    user: u.name.clone(),
                    group: g.clone(),
                });
            }
        }
        let (uid_s, home) = (uid.to_string(), format!("/home/{}", u.name));
        let hash = match (&u.password_hash, u.locked) {
            (Some(h), false) => h.clone(),
            (Some(h), true) => format!("!{h}"),
            (None, _) => "!".to_owned(),
        };
        let sub = (100_000 + u64::from(uid.saturating_sub(1000)) * 65_536).to_string();
        ops.push(edit(
            "/etc/passwd",
            row(&[&u.name, "x", &uid_s, &uid_s, &u.gecos, &home, &u.shell]),
        ));
        ops.push(edit(
            "/etc/shadow",
            row(&[&u.name, &hash, &days, "0", "99999", "7", "", "", ""]),
        ));
        ops.push(edit("/etc/group", row(&[&u.name, "x", &uid_s, ""])));
        ops.push(edit("/etc/gshadow", row(&[&u.name, "!", "", ""])));
        ops.push(edit("/etc/subuid", row(&[&u.name, &sub, "65536"])));
        ops.push(edit("/etc/subgid", row(&[&u.name, &sub, "65536"])));
        let mut groups = u.groups.clone();
        if u.sudo == SudoRule::Password
            && profile.groups.iter().any(|g| g == "sudo")
            && !groups.iter().any(|g| g == "sudo")
        {
            groups.push("sudo".to_owned());
        }
        for g in &groups {
            for table in ["/etc/group", "/etc/gshadow"] {
                ops.push(edit(
                    table,
                    TextEdit::TableAddMember {
                        key: g.clone(),
                        index: 3,
                        member: u.name.clone(),
                    },
                ));
            }
        }
        let owner = |mode| FileAttrs {
            mode,
            uid,
            gid: uid,
        };
        ops.push(FileOp::Mkdir {
            part: Part::Root,
            path: home.clone(),
            owner: owner(home_mode),
        });
        for e in &profile.skel {
            let path = format!("{home}/{}", e.rel);
            ops.push(match &e.data {
                Some(d) => FileOp::Write {
                    part: Part::Root,
                    path,
                    data: d.clone(),
                    owner: owner(0o644),
                },
                None => FileOp::Mkdir {
                    part: Part::Root,
                    path,
                    owner: owner(0o755),
                },
            });
        }
        if !u.authorized_keys.is_empty() {
            ops.push(FileOp::Mkdir {
                part: Part::Root,
                path: format!("{home}/.ssh"),
                owner: owner(0o700),
            });
            let mut keys = u.authorized_keys.join("\n");
            keys.push('\n');
            ops.push(FileOp::Write {
                part: Part::Root,
                path: format!("{home}/.ssh/authorized_keys"),
                data: keys.into_bytes(),
                owner: owner(0o600),
            });
        }
        let rule = match u.sudo {
            SudoRule::None => None,
            SudoRule::Password => Some(format!("{} ALL=(ALL:ALL) ALL\n", u.name)),
            SudoRule::NoPassword => Some(format!("{} ALL=(ALL) NOPASSWD: ALL\n", u.name)),
        };
        if let Some(rule) = rule {
            ops.push(FileOp::Write {
                part: Part::Root,
                path: format!("/etc/sudoers.d/010_piimage-{}", u.name),
                data: rule.into_bytes(),
                owner: FileAttrs::root(0o440),
            });
        }
    }
    Ok(ops)
}

/// On Raspberry Pi OS: stop the first-boot user wizard and restore the console login.
pub fn disarm_user_wizard() -> Vec<FileOp> {
    vec![
        FileOp::Remove {
            part: Part::Root,
            path: "/etc/systemd/system/multi-user.target.wants/userconfig.service".to_owned(),
        },
        FileOp::Symlink {
            path: "/etc/systemd/system/getty.target.wants/getty@tty1.service".to_owned(),
            target: "/usr/lib/systemd/system/getty@.service".to_owned(),
            uid: 0,
            gid: 0,
        },
    ]
}
