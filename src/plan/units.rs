//! `services.enable`: systemd units enabled the way `systemctl enable` does it.
//!
//! `systemctl enable UNIT` reads the unit file's `[Install]` section (systemd.unit(5)) and, in
//! `/etc/systemd/system`, links the unit into `TARGET.wants/` for each `WantedBy=`, into
//! `TARGET.requires/` for each `RequiredBy=`, creates each `Alias=` as a link, and enables the
//! units named by `Also=` as well. The links point at the unit file. A unit without any of
//! these cannot be enabled ("static"); `systemctl` says so, and so does piimage.
//!
//! Unit files are looked up by name in the node's own writes first (an overlay that ships the
//! unit), then in the image, in systemd's order: `/etc/systemd/system`,
//! `/usr/local/lib/systemd/system`, `/usr/lib/systemd/system`. A template instance
//! (`getty@tty2.service`) uses its template's file (`getty@.service`), and `%i` in the section
//! stands for the instance.

use std::collections::BTreeMap;

use crate::fs::ext4::{Ext4Error, Ext4Reader};
use crate::ops::{FileOp, Part};

/// Where systemd looks for system units, most important first.
pub const UNIT_DIRS: [&str; 3] = [
    "/etc/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
];

/// The `[Install]` section of a unit file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Install {
    /// `WantedBy=` targets.
    pub wanted_by: Vec<String>,
    /// `RequiredBy=` targets.
    pub required_by: Vec<String>,
    /// `Alias=` names.
    pub alias: Vec<String>,
    /// `Also=` units.
    pub also: Vec<String>,
}

impl Install {
    /// Parses the `[Install]` section of `text` (several assignments add up; an empty
    /// assignment resets the list, as systemd does).
    pub fn parse(text: &str) -> Self {
        let mut install = Self::default();
        let mut in_install = false;
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if line.starts_with('[') {
                in_install = line == "[Install]";
                continue;
            }
            if !in_install {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let list = match key.trim() {
                "WantedBy" => &mut install.wanted_by,
                "RequiredBy" => &mut install.required_by,
                "Alias" => &mut install.alias,
                "Also" => &mut install.also,
                _ => continue,
            };
            let value = value.trim();
            if value.is_empty() {
                list.clear();
            }
            list.extend(value.split_whitespace().map(str::to_owned));
        }
        install
    }

    /// True when there is nothing to enable (a "static" unit).
    pub fn is_empty(&self) -> bool {
        self.wanted_by.is_empty()
            && self.required_by.is_empty()
            && self.alias.is_empty()
            && self.also.is_empty()
    }
}

/// A unit file of the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitFile {
    /// Path of the file.
    pub path: String,
    /// Its `[Install]` section.
    pub install: Install,
}

/// The unit files of an image, by file name (the first found in [`UNIT_DIRS`] order).
///
/// # Errors
/// Reading the filesystem failed.
pub fn read_units(reader: &Ext4Reader) -> Result<BTreeMap<String, UnitFile>, Ext4Error> {
    let mut units = BTreeMap::new();
    for dir in UNIT_DIRS {
        for name in reader.list(dir)? {
            if units.contains_key(&name) || !is_unit_name(&name) {
                continue;
            }
            let path = format!("{dir}/{name}");
            // Links to /dev/null (masked units) and directories read as nothing useful.
            if reader.read_link(&path)?.as_deref() == Some("/dev/null") {
                continue;
            }
            let Ok(Some(text)) = reader.read_text(&path) else {
                continue;
            };
            units.insert(
                name,
                UnitFile {
                    path,
                    install: Install::parse(&text),
                },
            );
        }
    }
    Ok(units)
}

fn is_unit_name(name: &str) -> bool {
    const KINDS: [&str; 11] = [
        ".service",
        ".socket",
        ".target",
        ".timer",
        ".path",
        ".mount",
        ".automount",
        ".swap",
        ".slice",
        ".scope",
        ".device",
    ];
    KINDS
        .iter()
        .any(|k| name.len() > k.len() && name.ends_with(k))
}

/// The template file name of an instance (`getty@tty2.service` -> `getty@.service`) and the
/// instance, or `None` for a plain unit.
fn template_of(unit: &str) -> Option<(String, &str)> {
    let (prefix, rest) = unit.split_once('@')?;
    let dot = rest.rfind('.')?;
    let (instance, suffix) = rest.split_at(dot);
    (!instance.is_empty()).then(|| (format!("{prefix}@{suffix}"), instance))
}

/// The links that enable `units`: `(link path, target)`, in a stable order. `written` are the
/// node's own file writes (overlays), searched before `image`.
///
/// # Errors
/// A unit that is nowhere to be found, or that has no `[Install]` section, with the reason.
pub fn enable_links(
    units: &[String],
    written: &[FileOp],
    image: &BTreeMap<String, UnitFile>,
) -> Result<Vec<(String, String)>, String> {
    let mut links: Vec<(String, String)> = Vec::new();
    let mut todo: Vec<String> = units.to_vec();
    let mut done: Vec<String> = Vec::new();
    while let Some(unit) = todo.pop() {
        if done.contains(&unit) {
            continue;
        }
        done.push(unit.clone());
        let (file_name, instance) = match template_of(&unit) {
            Some((t, i)) => (t, Some(i.to_owned())),
            None => (unit.clone(), None),
        };
        let file = find(&file_name, written, image).ok_or_else(|| {
            format!(
                "services.enable: no unit file {file_name} in the image ({}) or the node's \
                 overlays",
                UNIT_DIRS.join(", ")
            )
        })?;
        if file.install.is_empty() {
            return Err(format!(
                "services.enable: {} has no [Install] section (WantedBy=, RequiredBy=, \
                 Alias=), so it cannot be enabled; it starts when something that needs it \
                 starts",
                file.path
            ));
        }
        let fill = |name: &str| match &instance {
            Some(i) => name.replace("%i", i),
            None => name.to_owned(),
        };
        let mut add = |link: String| {
            if !links.iter().any(|(l, _)| *l == link) {
                links.push((link, file.path.clone()));
            }
        };
        for t in &file.install.wanted_by {
            add(format!("/etc/systemd/system/{}.wants/{unit}", fill(t)));
        }
        for t in &file.install.required_by {
            add(format!("/etc/systemd/system/{}.requires/{unit}", fill(t)));
        }
        for a in &file.install.alias {
            add(format!("/etc/systemd/system/{}", fill(a)));
        }
        todo.extend(file.install.also.iter().map(|a| fill(a)));
    }
    Ok(links)
}

/// The unit file `name` among the node's writes, then the image.
fn find(name: &str, written: &[FileOp], image: &BTreeMap<String, UnitFile>) -> Option<UnitFile> {
    UNIT_DIRS
        .iter()
        .find_map(|dir| {
            let path = format!("{dir}/{name}");
            written.iter().rev().find_map(|op| match op {
                FileOp::Write {
                    part: Part::Root,
                    path: p,
                    data,
                    ..
                } if *p == path => Some(UnitFile {
                    path: path.clone(),
                    install: Install::parse(&String::from_utf8_lossy(data)),
                }),
                _ => None,
            })
        })
        .or_else(|| image.get(name).cloned())
}

/// A unit file of piimage's own, written to `/etc/systemd/system/NAME` and enabled the way
/// `systemctl enable` does for `WantedBy=multi-user.target` (the only target piimage's one-shot
/// first-boot units use).
pub fn own_unit(name: &str, text: String) -> Vec<crate::ops::FileOp> {
    use crate::ops::{FileAttrs, FileOp, Part};
    let unit = format!("/etc/systemd/system/{name}");
    vec![
        FileOp::Write {
            part: Part::Root,
            path: unit.clone(),
            data: text.into_bytes(),
            owner: FileAttrs::root(0o644),
        },
        FileOp::Symlink {
            path: format!("/etc/systemd/system/multi-user.target.wants/{name}"),
            target: unit,
            uid: 0,
            gid: 0,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::FileAttrs;

    const SSH: &str = "[Unit]\nDescription=OpenBSD Secure Shell server\n\n[Service]\nExecStart=/usr/sbin/sshd -D\n\n[Install]\nWantedBy=multi-user.target\nAlias=sshd.service\n";

    fn image() -> BTreeMap<String, UnitFile> {
        let mut m = BTreeMap::new();
        for (name, text) in [
            ("ssh.service", SSH),
            (
                "ssh.socket",
                "[Socket]\nListenStream=22\n[Install]\nWantedBy=sockets.target\n",
            ),
            (
                "getty@.service",
                "[Service]\nExecStart=agetty %I\n[Install]\nWantedBy=getty.target\nDefaultInstance=tty1\n",
            ),
            (
                "systemd-journald.service",
                "[Unit]\nDescription=Journal\n[Service]\nType=notify\n",
            ),
            (
                "both.service",
                "[Install]\nWantedBy=multi-user.target\nAlso=ssh.socket\n",
            ),
        ] {
            m.insert(
                name.to_owned(),
                UnitFile {
                    path: format!("/usr/lib/systemd/system/{name}"),
                    install: Install::parse(text),
                },
            );
        }
        m
    }

    #[test]
    fn parses_install_like_systemd() {
        let i = Install::parse(
            "[Unit]\nWantedBy=not-this.target\n[Install]\nWantedBy=a.target b.target\n# x\nWantedBy=c.target\nRequiredBy=\nRequiredBy=d.target\nAlias=e.service\n",
        );
        assert_eq!(i.wanted_by, ["a.target", "b.target", "c.target"]);
        assert_eq!(i.required_by, ["d.target"]);
        assert_eq!(i.alias, ["e.service"]);
        assert!(Install::parse("[Service]\nExecStart=x\n").is_empty());
    }

    #[test]
    fn links_follow_the_install_section() {
        let links = enable_links(&["ssh.service".into()], &[], &image()).unwrap();
        assert_eq!(
            links,
            [
                (
                    "/etc/systemd/system/multi-user.target.wants/ssh.service".to_owned(),
                    "/usr/lib/systemd/system/ssh.service".to_owned()
                ),
                (
                    "/etc/systemd/system/sshd.service".to_owned(),
                    "/usr/lib/systemd/system/ssh.service".to_owned()
                ),
            ]
        );
        let links = enable_links(&["both.service".into()], &[], &image()).unwrap();
        assert!(links.iter().any(|(l, t)| l
            == "/etc/systemd/system/sockets.target.wants/ssh.socket"
            && t == "/usr/lib/systemd/system/ssh.socket"));
        let links = enable_links(&["getty@tty2.service".into()], &[], &image()).unwrap();
        assert_eq!(
            links,
            [(
                "/etc/systemd/system/getty.target.wants/getty@tty2.service".to_owned(),
                "/usr/lib/systemd/system/getty@.service".to_owned()
            )]
        );
    }

    #[test]
    fn overlay_units_come_first_and_errors_name_the_unit() {
        let written = [FileOp::Write {
            part: Part::Root,
            path: "/etc/systemd/system/k3s-install.service".into(),
            data: b"[Service]\nType=oneshot\n[Install]\nWantedBy=multi-user.target\n".to_vec(),
            owner: FileAttrs::root(0o644),
        }];
        let links = enable_links(&["k3s-install.service".into()], &written, &image()).unwrap();
        assert_eq!(
            links,
            [(
                "/etc/systemd/system/multi-user.target.wants/k3s-install.service".to_owned(),
                "/etc/systemd/system/k3s-install.service".to_owned()
            )]
        );
        let e = enable_links(&["nope.service".into()], &written, &image()).unwrap_err();
        assert!(e.contains("nope.service"), "{e}");
        let e = enable_links(&["systemd-journald.service".into()], &[], &image()).unwrap_err();
        assert!(e.contains("no [Install] section"), "{e}");
    }
}
