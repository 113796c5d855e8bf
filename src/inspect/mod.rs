//! `piimage inspect`: what an image is, read without root.
//!
//! The report renders what [`crate::image`] reads: the partition table, the FAT boot
//! partition and the ext4 root partition. Its JSON form is stable and documented in `docs/inspect-json.md`; bump
//! [`SCHEMA_VERSION`] on any incompatible change.

mod render;

pub use render::human_bytes;

use std::path::Path;

use serde::Serialize;

use crate::disk::partition::{DiskId, PartitionType};
use crate::disk::{Storage, TableKind};
pub use crate::image::accounts::User;
pub use crate::image::firstboot::{FirstBoot, Mechanism};
pub use crate::image::os::{OsFamily, OsInfo};
use crate::image::{BaseImage, BootFacts, ImageError, accounts, firstboot, os_info};

/// Version of the JSON report layout.
pub const SCHEMA_VERSION: u32 = 1;

pub use crate::fs::Filesystem;

/// Where the image came from and what it is on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageInfo {
    /// The path or URL the user gave.
    pub origin: String,
    /// `raw`, `xz`, `gzip` or `zstd`.
    pub compression: String,
    /// The raw (decompressed) image inspected.
    pub raw_path: String,
    /// Size of the raw image in bytes.
    pub size: u64,
}

/// One partition in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionInfo {
    /// 1-based number.
    pub number: u32,
    /// First sector.
    pub start_sector: u64,
    /// Length in sectors.
    pub sectors: u64,
    /// Byte offset.
    pub offset: u64,
    /// Length in bytes.
    pub size: u64,
    /// Type code (`0x0c`) or GUID.
    #[serde(rename = "type")]
    pub ptype: PartitionType,
    /// Human name of the type.
    pub type_name: String,
    /// MBR boot flag.
    pub bootable: bool,
    /// `PARTUUID` as Linux shows it.
    pub partuuid: String,
    /// Detected filesystem, if any.
    pub filesystem: Option<Filesystem>,
    /// Filesystem label, if any.
    pub label: Option<String>,
}

/// The partition table in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableInfo {
    /// `mbr` or `gpt`.
    pub kind: TableKind,
    /// Disk signature (8 hex digits) or GUID.
    pub disk_id: DiskId,
    /// Partitions in table order.
    pub partitions: Vec<PartitionInfo>,
    /// Damage worked around (a bad GPT copy when the other is valid); omitted when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// One `[section]` of `config.txt` with its active lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigSection {
    /// Section filter without brackets (`all`, `pi4`, `cm4`); empty before the first header.
    pub name: String,
    /// Non-empty, non-comment lines, trimmed.
    pub lines: Vec<String>,
}

/// The FAT boot partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootInfo {
    /// Partition number.
    pub partition: u32,
    /// Volume label.
    pub label: String,
    /// `FAT12`, `FAT16` or `FAT32`.
    pub fat_type: String,
    /// Cluster size in bytes.
    pub cluster_size: u32,
    /// Volume serial number, 8 hex digits.
    pub volume_id: String,
    /// `config.txt` by section, if present.
    pub config_txt: Option<Vec<ConfigSection>>,
    /// `cmdline.txt` tokens, if present.
    pub cmdline: Option<Vec<String>>,
    /// Names in the root directory.
    pub files: Vec<String>,
}

/// The ext4 root partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RootInfo {
    /// Partition number.
    pub partition: u32,
    /// Volume label.
    pub label: String,
    /// Filesystem UUID.
    pub uuid: String,
    /// Block size in bytes.
    pub block_size: u32,
    /// Inode size in bytes.
    pub inode_size: u16,
    /// Total blocks.
    pub blocks: u64,
    /// Free blocks.
    pub free_blocks: u64,
    /// Free bytes.
    pub free_bytes: u64,
    /// Free inodes.
    pub free_inodes: u32,
    /// Feature names as `dumpe2fs` prints them.
    pub features: Vec<String>,
    /// `clean`, `not-clean` or `errors`.
    pub state: String,
    /// `clean`, `needs-recovery` or `none`.
    pub journal: String,
    /// Orphan inodes pending.
    pub orphans: bool,
}

/// Everything `piimage inspect` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The image file.
    pub image: ImageInfo,
    /// The partition table.
    pub partition_table: TableInfo,
    /// The boot partition (first FAT partition), if any.
    pub boot: Option<BootInfo>,
    /// The root partition (first ext4 partition), if any.
    pub root: Option<RootInfo>,
    /// The OS, from `/etc/os-release`.
    pub os: Option<OsInfo>,
    /// `/etc/hostname`.
    pub hostname: Option<String>,
    /// Regular users (uid 1000..=59999).
    pub users: Vec<User>,
    /// The first-boot mechanism.
    pub first_boot: Option<FirstBoot>,
}

impl Report {
    /// The human-readable table.
    pub fn to_text(&self) -> String {
        render::text(self)
    }
}

/// Splits `config.txt` into sections of active lines.
pub fn parse_config_txt(text: &str) -> Vec<ConfigSection> {
    let mut out = vec![ConfigSection {
        name: String::new(),
        lines: Vec::new(),
    }];
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            out.push(ConfigSection {
                name: name.to_owned(),
                lines: Vec::new(),
            });
        } else if let Some(last) = out.last_mut() {
            last.lines.push(line.to_owned());
        }
    }
    if out[0].lines.is_empty() {
        out.remove(0);
    }
    out
}

/// Inspects the raw image at `path`. The file is opened read-only.
///
/// # Errors
/// See [`ImageError`]: every FAT and ext4 partition must open.
pub fn inspect(path: &Path) -> Result<Report, ImageError> {
    let image = BaseImage::open(path)?;
    let table = &image.layout().table;
    let mut parts = Vec::new();
    let mut boot = None;
    let mut root = None;
    let mut fat = None;
    let mut ext = None;
    for (p, fs) in table.partitions.iter().zip(&image.layout().filesystems) {
        let mut label = None;
        match fs {
            Some(Filesystem::Vfat) => {
                let opened = image.fat(p)?;
                label = Some(opened.reader.boot_sector().label.clone());
                if fat.is_none() {
                    fat = Some((p.number, opened.reader));
                }
            }
            Some(Filesystem::Ext4) => {
                let opened = image.ext4(p)?;
                label = Some(opened.reader.superblock().label.clone());
                if ext.is_none() {
                    ext = Some((p.number, opened.reader));
                }
            }
            None => {}
        }
        parts.push(PartitionInfo {
            number: p.number,
            start_sector: p.start_sector,
            sectors: p.sectors,
            offset: p.offset(),
            size: p.len(),
            ptype: p.ptype,
            type_name: p.ptype.name().to_owned(),
            bootable: p.bootable,
            partuuid: p.partuuid.clone(),
            filesystem: *fs,
            label: label.filter(|l| !l.is_empty()),
        });
    }

    let mut cmdline_tokens = Vec::new();
    let mut boot_files = Vec::new();
    if let Some((number, reader)) = &fat {
        let err = |source| ImageError::Fat {
            partition: *number,
            source,
        };
        let text = |name: &str| -> Result<Option<String>, ImageError> {
            Ok(reader
                .read(name)
                .map_err(err)?
                .map(|d| String::from_utf8_lossy(&d).into_owned()))
        };
        let facts = BootFacts::read(reader).map_err(err)?;
        cmdline_tokens = facts.cmdline_tokens().to_vec();
        boot_files = facts.files;
        let cmdline = facts.cmdline;
        let bs = reader.boot_sector();
        boot = Some(BootInfo {
            partition: *number,
            label: bs.label.clone(),
            fat_type: bs.fat_type.to_string(),
            cluster_size: bs.cluster_size(),
            volume_id: format!("{:08x}", bs.volume_id),
            config_txt: text("config.txt")?.map(|t| parse_config_txt(&t)),
            cmdline,
            files: boot_files.clone(),
        });
    }

    let (mut os, mut hostname, mut users, mut first_boot) = (None, None, Vec::new(), None);
    if let Some((number, reader)) = &ext {
        let err = |source| ImageError::Ext4 {
            partition: *number,
            source,
        };
        let sb = reader.superblock();
        root = Some(RootInfo {
            partition: *number,
            label: sb.label.clone(),
            uuid: sb.uuid_string(),
            block_size: sb.block_size,
            inode_size: sb.inode_size,
            blocks: sb.blocks_count,
            free_blocks: sb.free_blocks_count,
            free_bytes: sb.free_bytes(),
            free_inodes: sb.free_inodes_count,
            features: sb.features.names(),
            state: if sb.state.has_errors() {
                "errors"
            } else if sb.state.is_valid() {
                "clean"
            } else {
                "not-clean"
            }
            .to_owned(),
            journal: if sb.journal_inum == 0 {
                "none"
            } else if sb.needs_recovery() {
                "needs-recovery"
            } else {
                "clean"
            }
            .to_owned(),
            orphans: sb.has_orphans(),
        });
        let text = |p: &str| reader.read_text(p).map_err(err);
        os = os_info(reader).map_err(err)?;
        hostname = text("/etc/hostname")?
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty());
        if let Some(passwd) = text("/etc/passwd")? {
            users = accounts::regular_users(&passwd, &text("/etc/group")?.unwrap_or_default());
        }
        first_boot = Some(firstboot::detect(
            os.as_ref().map(|o| o.family),
            &cmdline_tokens,
            &boot_files,
            reader,
        ));
    }

    Ok(Report {
        schema_version: SCHEMA_VERSION,
        image: ImageInfo {
            origin: path.display().to_string(),
            compression: "raw".to_owned(),
            raw_path: path.display().to_string(),
            size: image.storage().len(),
        },
        partition_table: TableInfo {
            kind: table.kind,
            disk_id: table.disk_id,
            partitions: parts,
            warnings: table.warnings.clone(),
        },
        boot,
        root,
        os,
        hostname,
        users,
        first_boot,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_txt_sections() {
        let t = "# comment\ndtparam=audio=on\n\n[pi4]\narm_boost=1\n[all]\n# x\ndtoverlay=vc4-kms-v3d\n";
        let s = parse_config_txt(t);
        let names: Vec<&str> = s.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["", "pi4", "all"]);
        assert_eq!(s[0].lines, ["dtparam=audio=on"]);
        assert_eq!(s[2].lines, ["dtoverlay=vc4-kms-v3d"]);
        assert!(parse_config_txt("[all]\n").iter().all(|c| c.name == "all"));
    }
}
