//! What a flash target is, and whether writing it is safe.
//!
//! A target is a regular file (written like a disk, for tests and for users) or a whole
//! block device. Facts about a device come from the kernel's views of it, under a root that
//! tests replace with a fixture tree ([`SysRoot`]):
//! - `/sys/dev/block/MAJ:MIN` names the device of a block special file; `/sys/block/NAME/` has
//!   `dev` (its `MAJ:MIN`), `size` (512-byte sectors), `removable`, `device/{vendor,model,serial}`,
//!   one subdirectory per partition (with a `partition` file and its own `dev`), and `holders/`
//!   (device-mapper, RAID, LVM or dm-crypt devices built on it). The directory is a link into
//!   `/sys/devices/...`; a path through `/usbN/` means the disk is attached by USB, which is how
//!   card readers and USB sticks show up even where `removable` is 0;
//! - `/proc/self/mountinfo`: one line per mount, field 3 the `MAJ:MIN` of the mounted device
//!   and, after the ` - ` separator, the mount source (`/dev/sda1`); both are compared, since
//!   btrfs mounts report an anonymous device number.
//!
//! Under a replaced root, a regular file at `ROOT/dev/NAME` stands for the device NAME
//! described by `ROOT/sys/block/NAME`, so every refusal can be tested without a real disk.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::FlashError;

/// Where `/sys`, `/proc` and `/dev` are: `/` normally, a fixture tree in tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysRoot {
    root: PathBuf,
}

impl Default for SysRoot {
    fn default() -> Self {
        Self::real()
    }
}

impl SysRoot {
    /// The running system.
    #[must_use]
    pub fn real() -> Self {
        Self {
            root: PathBuf::from("/"),
        }
    }

    /// A fixture tree with `sys/`, `proc/self/mountinfo` and `dev/` below `root`.
    #[must_use]
    pub fn at(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
        }
    }

    /// Whether this is a fixture tree rather than the running system.
    #[must_use]
    pub fn is_simulated(&self) -> bool {
        self.root != Path::new("/")
    }

    /// `sys/block` under the root.
    #[must_use]
    pub fn sys_block(&self) -> PathBuf {
        self.root.join("sys/block")
    }

    /// `dev` under the root.
    #[must_use]
    pub fn dev_dir(&self) -> PathBuf {
        self.root.join("dev")
    }

    fn mountinfo(&self) -> PathBuf {
        self.root.join("proc/self/mountinfo")
    }
}

/// A device number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DevNo {
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
}

impl std::fmt::Display for DevNo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

impl std::str::FromStr for DevNo {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        let (a, b) = s.trim().split_once(':').ok_or(())?;
        Ok(Self {
            major: a.parse().map_err(|_| ())?,
            minor: b.parse().map_err(|_| ())?,
        })
    }
}

/// A whole block device, as sysfs describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockDevice {
    /// The kernel name (`sdb`, `mmcblk0`).
    pub name: String,
    /// The special file (or its stand-in) to open.
    pub path: PathBuf,
    /// Its device number.
    pub devno: DevNo,
    /// Size in bytes (0: no medium in the reader).
    pub size: u64,
    /// The kernel marks it removable.
    pub removable: bool,
    /// Attached by USB.
    pub usb: bool,
    /// Vendor and model, as the device reports them ("" when unknown).
    pub model: String,
    /// Serial number ("" when unknown).
    pub serial: String,
    /// Its partitions: kernel name and device number.
    pub partitions: Vec<(String, DevNo)>,
    /// Devices built on it or on its partitions (dm-0, md0).
    pub holders: Vec<String>,
}

impl BlockDevice {
    /// Reads device `name` from `ROOT/sys/block/NAME`, to be opened at `path`.
    ///
    /// # Errors
    /// The sysfs directory is missing or its `dev` or `size` is unreadable.
    pub fn read(root: &SysRoot, name: &str, path: &Path) -> Result<Self, FlashError> {
        let dir = root.sys_block().join(name);
        let sys_err = |file: &str, source: io::Error| FlashError::Sysfs {
            path: dir.join(file),
            source,
        };
        let read = |file: &str| fs::read_to_string(dir.join(file)).map(|s| s.trim().to_owned());
        let devno = read("dev")
            .map_err(|e| sys_err("dev", e))?
            .parse::<DevNo>()
            .map_err(|()| {
                sys_err(
                    "dev",
                    io::Error::new(io::ErrorKind::InvalidData, "not MAJ:MIN"),
                )
            })?;
        let sectors: u64 = read("size")
            .map_err(|e| sys_err("size", e))?
            .parse()
            .map_err(|_| {
                sys_err(
                    "size",
                    io::Error::new(io::ErrorKind::InvalidData, "not a number"),
                )
            })?;
        let removable = read("removable").is_ok_and(|s| s == "1");
        let usb = fs::canonicalize(&dir).is_ok_and(|p| {
            p.components()
                .any(|c| c.as_os_str().to_string_lossy().starts_with("usb"))
        });
        let vendor = read("device/vendor").unwrap_or_default();
        let model = read("device/model").unwrap_or_default();
        let model = [vendor.as_str(), model.as_str()]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        let serial = read("device/serial").unwrap_or_default();
        let mut partitions = Vec::new();
        let mut holders = list(&dir.join("holders"));
        for entry in list(&dir) {
            let sub = dir.join(&entry);
            if !sub.join("partition").is_file() {
                continue;
            }
            if let Some(no) = fs::read_to_string(sub.join("dev"))
                .ok()
                .and_then(|s| s.parse::<DevNo>().ok())
            {
                partitions.push((entry.clone(), no));
            }
            holders.extend(list(&sub.join("holders")));
        }
        partitions.sort();
        holders.sort();
        holders.dedup();
        Ok(Self {
            name: name.to_owned(),
            path: path.to_owned(),
            devno,
            size: sectors.saturating_mul(512),
            removable,
            usb,
            model,
            serial,
            partitions,
            holders,
        })
    }

    /// One line for the user: path, model, size, serial, how it is attached.
    #[must_use]
    pub fn describe(&self) -> String {
        let model = if self.model.is_empty() {
            "unknown model"
        } else {
            &self.model
        };
        let serial = if self.serial.is_empty() {
            "no serial".to_owned()
        } else {
            format!("serial {}", self.serial)
        };
        let how = match (self.usb, self.removable) {
            (true, _) => "USB",
            (false, true) => "removable",
            (false, false) => "fixed",
        };
        format!(
            "{} ({model}, {}, {serial}, {how})",
            self.path.display(),
            human_size(self.size)
        )
    }
}

/// `31.9 GB (29.7 GiB)`-style size text.
#[must_use]
pub fn human_size(bytes: u64) -> String {
    // Display only; precision loss is irrelevant.
    #[allow(clippy::cast_precision_loss)]
    let b = bytes as f64;
    format!("{:.1} GB ({:.1} GiB)", b / 1e9, b / f64::from(1u32 << 30))
}

/// The entries of a directory, sorted; none when it is missing.
fn list(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// A flash target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A regular file, written like a disk (created if missing).
    File(PathBuf),
    /// A whole block device (or, under a simulated root, its stand-in file).
    Device(BlockDevice),
}

impl Target {
    /// The path to open.
    #[must_use]
    pub fn path(&self) -> &Path {
        match self {
            Target::File(p) => p,
            Target::Device(d) => &d.path,
        }
    }
}

/// What `path` is: a block device (whole disk), its stand-in under a simulated root, or a
/// regular file (which need not exist yet).
///
/// # Errors
/// A partition instead of a whole disk, a character device or directory, a device sysfs does
/// not know.
pub fn resolve(path: &Path, root: &SysRoot) -> Result<Target, FlashError> {
    use std::os::unix::fs::FileTypeExt as _;
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(Target::File(path.to_owned()));
        }
        Err(source) => {
            return Err(FlashError::Target {
                what: "examining",
                path: path.to_owned(),
                source,
            });
        }
    };
    let ft = meta.file_type();
    if ft.is_block_device() {
        use std::os::unix::fs::MetadataExt as _;
        let rdev = meta.rdev();
        let no = DevNo {
            major: rustix::fs::major(rdev),
            minor: rustix::fs::minor(rdev),
        };
        let link = root.root.join("sys/dev/block").join(no.to_string());
        let dir = fs::canonicalize(&link).map_err(|source| FlashError::Sysfs {
            path: link.clone(),
            source,
        })?;
        let name = file_name(&dir);
        if dir.join("partition").is_file() {
            let disk = dir.parent().map(file_name).unwrap_or_default();
            return Err(FlashError::IsPartition {
                path: path.to_owned(),
                disk,
            });
        }
        return Ok(Target::Device(BlockDevice::read(root, &name, path)?));
    }
    if ft.is_file() {
        if root.is_simulated()
            && let (Some(parent), Ok(dev)) = (path.parent(), fs::canonicalize(root.dev_dir()))
            && fs::canonicalize(parent).is_ok_and(|p| p == dev)
        {
            let name = file_name(path);
            if root.sys_block().join(&name).is_dir() {
                return Ok(Target::Device(BlockDevice::read(root, &name, path)?));
            }
        }
        return Ok(Target::File(path.to_owned()));
    }
    Err(FlashError::NotADisk {
        path: path.to_owned(),
    })
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// One mount, from `mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The mounted device's number.
    pub devno: Option<DevNo>,
    /// Where it is mounted.
    pub mount_point: String,
    /// The mount source (`/dev/sda1`, or a name like `tmpfs`).
    pub source: String,
}

/// Parses `/proc/self/mountinfo` text; lines it cannot read are skipped.
#[must_use]
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fields: Vec<&str> = left.split(' ').collect();
            let devno = fields.get(2)?.parse().ok();
            let mount_point = unescape(fields.get(4)?);
            let source = unescape(right.split(' ').nth(1).unwrap_or(""));
            Some(Mount {
                devno,
                mount_point,
                source,
            })
        })
        .collect()
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        if bytes[i] == b'\\'
            && let Some(d) = octal
        {
            let v = d.iter().fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
            out.push(u8::try_from(v).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mounts of the system under `root`.
///
/// # Errors
/// `mountinfo` cannot be read.
pub fn mounts(root: &SysRoot) -> Result<Vec<Mount>, FlashError> {
    let path = root.mountinfo();
    let text = crate::io::bounded::read_to_string(&path, 16 << 20)
        .map_err(|source| FlashError::Sysfs { path, source })?;
    Ok(parse_mountinfo(&text))
}

/// Options of the safety checks.
#[derive(Debug, Clone, Copy, Default)]
pub struct Checks {
    /// Allow a device that is neither removable nor attached by USB.
    pub force: bool,
    /// The image's size in bytes, when known before writing.
    pub image_size: Option<u64>,
}

/// Refuses a device that is mounted (itself or a partition), holds the running system,
/// carries device-mapper or RAID devices, is fixed (unless `force`), has no medium, or is
/// smaller than the image.
///
/// # Errors
/// The first reason found, as a [`FlashError`] naming the device and the mount or holder.
pub fn check_device(dev: &BlockDevice, mounts: &[Mount], checks: Checks) -> Result<(), FlashError> {
    let dev_name = format!("/dev/{}", dev.name);
    let mut names = vec![(dev.name.clone(), dev.devno)];
    names.extend(dev.partitions.iter().cloned());
    // The running system first, for the clearer message.
    let mut hits: Vec<(&Mount, &str)> = Vec::new();
    for m in mounts {
        for (name, no) in &names {
            let by_source = m.source == format!("/dev/{name}");
            if m.devno == Some(*no) || by_source {
                hits.push((m, name));
            }
        }
    }
    hits.sort_by_key(|(m, _)| m.mount_point != "/");
    if let Some((m, part)) = hits.first() {
        let part = format!("/dev/{part}");
        if m.mount_point == "/" {
            return Err(FlashError::HoldsRoot {
                device: dev_name,
                partition: part,
            });
        }
        return Err(FlashError::Mounted {
            device: dev_name,
            partition: part,
            mount_point: m.mount_point.clone(),
        });
    }
    if let Some(holder) = dev.holders.first() {
        return Err(FlashError::InUse {
            device: dev_name,
            holder: holder.clone(),
        });
    }
    if !(dev.removable || dev.usb || checks.force) {
        return Err(FlashError::NotRemovable {
            device: dev.describe(),
        });
    }
    if dev.size == 0 {
        return Err(FlashError::NoMedium { device: dev_name });
    }
    if let Some(image) = checks.image_size
        && image > dev.size
    {
        return Err(FlashError::TooSmall {
            device: dev_name,
            size: dev.size,
            image,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_table() {
        let text = "\
22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw
30 22 8:17 / /media/pi/boot\\040fs rw shared:5 master:3 - vfat /dev/sdb1 rw
31 22 0:45 / /home rw - btrfs /dev/sdc2 rw
bad line
";
        let m = parse_mountinfo(text);
        assert_eq!(m.len(), 3);
        assert_eq!(
            m[0],
            Mount {
                devno: Some(DevNo {
                    major: 259,
                    minor: 2
                }),
                mount_point: "/".into(),
                source: "/dev/nvme0n1p2".into()
            }
        );
        assert_eq!(m[1].mount_point, "/media/pi/boot fs");
        assert_eq!(m[2].source, "/dev/sdc2");
    }

    fn card(name: &str, major: u32) -> BlockDevice {
        BlockDevice {
            name: name.into(),
            path: PathBuf::from(format!("/dev/{name}")),
            devno: DevNo { major, minor: 16 },
            size: 32 << 30,
            removable: true,
            usb: false,
            model: "Card".into(),
            serial: "S1".into(),
            partitions: vec![(format!("{name}1"), DevNo { major, minor: 17 })],
            holders: vec![],
        }
    }

    #[test]
    fn checks_table() {
        let mounts = parse_mountinfo(
            "22 1 8:17 / / rw - ext4 /dev/sdb1 rw\n\
             30 22 8:33 / /mnt rw - vfat /dev/sdc1 rw\n\
             31 22 0:45 / /data rw - btrfs /dev/sdd1 rw\n",
        );
        let ok = Checks {
            force: false,
            image_size: Some(1 << 30),
        };
        let fixed = BlockDevice {
            removable: false,
            ..card("sde", 66)
        };
        let mut sdc = card("sdc", 8);
        sdc.devno.minor = 32;
        sdc.partitions[0].1.minor = 33;
        let held = BlockDevice {
            holders: vec!["dm-0".into()],
            ..card("sdf", 66)
        };
        let empty = BlockDevice {
            size: 0,
            ..card("sdg", 66)
        };
        let small = BlockDevice {
            size: 512 << 20,
            ..card("sdh", 66)
        };
        let usb_fixed = BlockDevice {
            usb: true,
            ..fixed.clone()
        };
        let cases: Vec<(&str, BlockDevice, Checks, Result<(), &str>)> = vec![
            ("root", card("sdb", 8), ok, Err("holds the running system")),
            ("mounted", sdc, ok, Err("/dev/sdc1 is mounted at /mnt")),
            ("by source", card("sdd", 9), ok, Err("mounted at /data")),
            ("held", held, ok, Err("dm-0")),
            ("fixed", fixed.clone(), ok, Err("not removable")),
            ("fixed forced", fixed, Checks { force: true, ..ok }, Ok(())),
            ("usb", usb_fixed, ok, Ok(())),
            ("no medium", empty, ok, Err("no medium")),
            ("too small", small, ok, Err("smaller than the image")),
            ("fine", card("sdi", 65), ok, Ok(())),
        ];
        for (name, dev, checks, want) in cases {
            match (check_device(&dev, &mounts, checks), want) {
                (Ok(()), Ok(())) => {}
                (Err(e), Err(w)) => assert!(e.to_string().contains(w), "case {name}: {e}"),
                (got, want) => panic!("case {name}: got {got:?}, want {want:?}"),
            }
        }
    }
}
