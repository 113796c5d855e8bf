//! What the planner needs to know about a base image: its OS family, first-boot mechanism,
//! default user, which network stack it runs, and the files new homes are made from.
//!
//! Read once per base from the image itself (from [`crate::image`]'s facts, as `inspect` shows
//! them), never guessed from a name.

use std::collections::BTreeMap;

use super::catalog::Catalog;
use super::units::{UnitFile, read_units};
use crate::fs::ext4::Ext4Reader;
use crate::image::accounts::{User, regular_users};
use crate::image::firstboot::{self, FirstBoot, Mechanism};
use crate::image::os::{OsFamily, OsInfo};

/// A file or directory of `/etc/skel`, copied into each new home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkelEntry {
    /// Path relative to `/etc/skel` (`.bashrc`, `.config/x`).
    pub rel: String,
    /// Content (`None` for a directory).
    pub data: Option<Vec<u8>>,
}

/// The facts of one base image.
#[derive(Debug, Clone)]
pub struct Profile {
    /// OS family.
    pub family: OsFamily,
    /// `/etc/os-release`.
    pub os: Option<OsInfo>,
    /// First-boot behaviour.
    pub first_boot: FirstBoot,
    /// The image's regular users (uid 1000..=59999): on Raspberry Pi OS, `pi`.
    pub users: Vec<User>,
    /// NetworkManager is installed (`/etc/NetworkManager` exists).
    pub network_manager: bool,
    /// netplan is installed (`/etc/netplan` exists).
    pub netplan: bool,
    /// `/etc/skel`, recursively.
    pub skel: Vec<SkelEntry>,
    /// Groups that exist in `/etc/group`.
    pub groups: Vec<String>,
    /// For each regular user, every path under their home (deepest first), for removal.
    pub home_trees: Vec<(String, Vec<String>)>,
    /// Every account of `/etc/passwd` with its uid.
    pub uids: Vec<(String, u32)>,
    /// Every group of `/etc/group` with its gid.
    pub gids: Vec<(String, u32)>,
    /// The login shells `/etc/shells` lists, in file order.
    pub shells: Vec<String>,
    /// The system unit files, by name (for `services.enable`).
    pub units: BTreeMap<String, UnitFile>,
    /// The tokens of the base's `cmdline.txt`.
    pub cmdline: Vec<String>,
    /// Which of the programs piimage's first-boot units run exist in the image
    /// ([`super::firstboot::GROW_TOOLS`]).
    pub programs: Vec<String>,
    /// Time zones, locales and keyboard layouts the image offers.
    pub catalog: Catalog,
}

fn ids(table: &str) -> Vec<(String, u32)> {
    table
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some((f.first()?.to_string(), f.get(2)?.parse().ok()?))
        })
        .collect()
}

/// Reading the base image's root failed.
#[derive(Debug, thiserror::Error)]
#[error("reading the base image's root filesystem")]
pub struct ProfileError(#[from] crate::fs::ext4::Ext4Error);

fn skel(
    reader: &Ext4Reader,
    dir: &str,
    rel: &str,
    out: &mut Vec<SkelEntry>,
) -> Result<(), ProfileError> {
    for name in reader.list(dir)? {
        let path = format!("{dir}/{name}");
        let rel = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        if reader.read_link(&path)?.is_some() {
            continue; // symlinks in skel are rare; skip rather than guess
        }
        if reader.is_dir(&path)? {
            out.push(SkelEntry {
                rel: rel.clone(),
                data: None,
            });
            skel(reader, &path, &rel, out)?;
        } else if let Some(data) = reader.read(&path)? {
            out.push(SkelEntry {
                rel,
                data: Some(data),
            });
        }
    }
    Ok(())
}

/// Every path under `dir`, children before their directory.
fn tree(reader: &Ext4Reader, dir: &str, out: &mut Vec<String>) -> Result<(), ProfileError> {
    for name in reader.list(dir)? {
        let path = format!("{dir}/{name}");
        if reader.is_dir(&path)? {
            tree(reader, &path, out)?;
        }
        out.push(path);
    }
    Ok(())
}

impl Profile {
    /// Reads the profile from the root filesystem and the boot partition's command line and
    /// file names.
    pub fn read(
        reader: &Ext4Reader,
        cmdline: &[String],
        boot_files: &[String],
    ) -> Result<Self, ProfileError> {
        let text = |p: &str| reader.read_text(p);
        let os = crate::image::os_info(reader)?;
        let family = os.as_ref().map_or(OsFamily::Other, |o| o.family);
        let group = text("/etc/group")?.unwrap_or_default();
        let passwd = text("/etc/passwd")?.unwrap_or_default();
        let users = regular_users(&passwd, &group);
        let gids_text = group.clone();
        let groups = gids_text
            .lines()
            .filter_map(|l| l.split(':').next())
            .filter(|g| !g.is_empty() && !g.starts_with('#'))
            .map(str::to_owned)
            .collect();
        let first_boot = firstboot::detect(Some(family), cmdline, boot_files, reader);
        let mut home_trees = Vec::new();
        for u in &users {
            let mut paths = Vec::new();
            tree(reader, &u.home, &mut paths)?;
            paths.push(u.home.clone());
            home_trees.push((u.name.clone(), paths));
        }
        let mut skel_entries = Vec::new();
        skel(reader, "/etc/skel", "", &mut skel_entries)?;
        Ok(Self {
            family,
            os,
            first_boot,
            users,
            network_manager: reader.exists("/etc/NetworkManager")?,
            netplan: reader.exists("/etc/netplan")?,
            skel: skel_entries,
            groups,
            home_trees,
            uids: ids(&passwd),
            gids: ids(&group),
            shells: text("/etc/shells")?
                .unwrap_or_default()
                .lines()
                .map(str::trim)
                .filter(|l| l.starts_with('/'))
                .map(str::to_owned)
                .collect(),
            units: read_units(reader)?,
            cmdline: cmdline.to_vec(),
            programs: super::firstboot::GROW_TOOLS
                .iter()
                .map(|p| reader.exists(p).map(|e| e.then(|| (*p).to_owned())))
                .filter_map(Result::transpose)
                .collect::<Result<_, _>>()?,
            catalog: Catalog::read(reader)?,
        })
    }

    /// True on Raspberry Pi OS.
    pub fn is_raspios(&self) -> bool {
        self.family == OsFamily::Raspios
    }

    /// True when cloud-init runs on first boot.
    pub fn has_cloud_init(&self) -> bool {
        self.first_boot.cloud_init
    }

    /// True when the program at `path` (one of [`super::firstboot::GROW_TOOLS`]) exists.
    pub fn has_program(&self, path: &str) -> bool {
        self.programs.iter().any(|p| p == path)
    }

    /// The first-boot mechanism.
    pub fn mechanism(&self) -> Mechanism {
        self.first_boot.mechanism
    }
}
