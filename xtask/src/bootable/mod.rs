//! Bootable test images: real Debian trees (amd64, from `mmdebstrap`) laid out like the official
//! Raspberry Pi OS Bookworm, Raspberry Pi OS Trixie and Ubuntu raspi images, with their
//! first-boot machinery imitated, so that a node piimage built from one can be booted under qemu
//! and checked while it runs. What they imitate and what they do not: `tests/fixtures/INDEX.md`,
//! "Bootable images".
//!
//! The work is done by `build.sh` and `setup.sh` beside this file (an OS tree is assembled
//! with shell tools); this module caches their result under `target/bootable/FLAVOUR/`, stamped
//! with a hash of the scripts and their files, and locked like the fixtures so that concurrent
//! tests share one build. Building needs root, `mmdebstrap` and the Debian mirror; booting needs
//! `qemu-system-x86_64`. [`prerequisites`] says what is missing.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::fixtures::cache;

/// Bump to rebuild every cached bootable image.
pub const BOOTABLE_VERSION: u32 = 1;

/// The OS flavours a bootable image imitates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Flavour {
    /// Raspberry Pi OS Bookworm: `init=.../firstboot`, NetworkManager, no cloud-init.
    Bookworm,
    /// Raspberry Pi OS Trixie: ` resize` (initramfs), cloud-init NoCloud from `/boot/firmware`.
    Trixie,
    /// Ubuntu Server raspi: labels, netplan + networkd, cloud-init NoCloud on `system-boot`.
    Ubuntu,
}

impl Flavour {
    /// Every flavour.
    pub const ALL: [Self; 3] = [Self::Bookworm, Self::Trixie, Self::Ubuntu];

    /// The name used on the command line and in paths.
    pub fn name(self) -> &'static str {
        match self {
            Self::Bookworm => "bookworm",
            Self::Trixie => "trixie",
            Self::Ubuntu => "ubuntu",
        }
    }

    /// Parses [`Flavour::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// A built bootable image and the facts the builder wrote beside it.
#[derive(Clone, Debug)]
pub struct Bootable {
    /// The flavour.
    pub flavour: Flavour,
    /// The raw disk image (read-only: copy it before writing).
    pub image: PathBuf,
    /// The MBR disk id, as 8 lowercase hex digits.
    pub disk_id: String,
    /// Byte offset of the boot (FAT) partition.
    pub boot_offset: u64,
    /// Byte offset of the root (ext4) partition.
    pub root_offset: u64,
    /// Name of the kernel on the boot partition.
    pub kernel: String,
    /// Name of the initramfs on the boot partition.
    pub initrd: String,
}

fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/bootable")
}

/// `target/bootable` (or under `$CARGO_TARGET_DIR`).
pub fn bootable_dir() -> PathBuf {
    crate::fixtures::fixtures_dir()
        .parent()
        .map_or_else(|| PathBuf::from("target"), Path::to_path_buf)
        .join("bootable")
}

/// What this machine lacks to build and boot the images, if anything.
pub fn prerequisites() -> Option<String> {
    let mut missing = Vec::new();
    if !is_root() {
        missing.push("root (mmdebstrap's root mode and chroot)".to_owned());
    }
    for tool in [
        "mmdebstrap",
        "qemu-system-x86_64",
        "mcopy",
        "sfdisk",
        "mkfs.fat",
    ] {
        if crate::fixtures::cmd::find(tool).is_err() {
            missing.push(tool.to_owned());
        }
    }
    (!missing.is_empty()).then(|| missing.join(", "))
}

fn is_root() -> bool {
    // The effective uid, read without a libc binding: /proc/self/status "Uid: real effective ...".
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

fn hash_tree(dir: &Path, rel: &str, h: &mut Sha256) -> Result<()> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()?;
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let rel = format!("{rel}/{}", name.to_string_lossy());
        if path.is_dir() {
            hash_tree(&path, &rel, h)?;
        } else if rel.ends_with(".sh") || !rel.ends_with(".rs") {
            let data = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            h.update(format!("{rel}\n{}\n", data.len()));
            h.update(&data);
        }
    }
    Ok(())
}

fn stamp(flavour: Flavour) -> Result<String> {
    let mut h = Sha256::new();
    h.update(format!(
        "piimage-bootable v{BOOTABLE_VERSION} {}\n",
        flavour.name()
    ));
    hash_tree(&scripts_dir(), "", &mut h)?;
    Ok(format!("{:x}", h.finalize()))
}

fn read_info(flavour: Flavour, dir: &Path) -> Result<Bootable> {
    let path = dir.join("info.env");
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let map: BTreeMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
    let get = |k: &str| {
        map.get(k)
            .map(|v| (*v).to_owned())
            .with_context(|| format!("{}: no {k}=", path.display()))
    };
    let num = |k: &str| -> Result<u64> {
        get(k)?
            .parse()
            .with_context(|| format!("{}: {k} is not a number", path.display()))
    };
    Ok(Bootable {
        flavour,
        image: dir.join("disk.img"),
        disk_id: get("disk_id")?,
        boot_offset: num("boot_offset")?,
        root_offset: num("root_offset")?,
        kernel: get("kernel")?,
        initrd: get("initrd")?,
    })
}

/// Builds the bootable image of `flavour` unless the cache holds an up-to-date one (or `force`),
/// and returns it with whether it was built now. Safe to call from several processes at once;
/// when the build fails, the error carries the end of its log.
pub fn bootable(flavour: Flavour, force: bool) -> Result<(Bootable, bool)> {
    if let Some(missing) = prerequisites() {
        bail!("cannot build bootable images here: missing {missing} (ci/test.sh installs them)");
    }
    let dir = bootable_dir().join(flavour.name());
    let stamp = stamp(flavour)?;
    let rebuilt = cache::ensure(&dir, &stamp, force, |tmp| {
        let out = Command::new("bash")
            .arg(scripts_dir().join("build.sh"))
            .arg(tmp)
            .arg(flavour.name())
            .arg(scripts_dir().join("files"))
            .env(
                "PATH",
                format!(
                    "{}:/usr/sbin:/sbin",
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .output()
            .context("running build.sh")?;
        if !out.status.success() {
            let log = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            bail!(
                "building the {} bootable image failed ({}):\n{}",
                flavour.name(),
                out.status,
                tail.join("\n")
            );
        }
        Ok(())
    })?;
    Ok((read_info(flavour, &dir)?, rebuilt))
}
