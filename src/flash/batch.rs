//! Many cards in a row: `piimage flash OUT_DIR`.
//!
//! The node images of a build directory are written one per card. The loop polls
//! `/sys/block` (under the [`SysRoot`]) and takes a device when it *appears*: removable or
//! attached by USB, with a medium (size above 0). Devices present when the loop starts, and
//! every device written or refused, are passed over until they disappear (card taken out, or
//! the reader's size drops to 0), so no card is ever written twice without a re-insert.
//!
//! Each card written is appended to `OUT_DIR/flash-log` (tab-separated: node, serial, device,
//! model, UTC time); nodes already in the log are not written again, so an interrupted session
//! continues where it stopped. A card that fails (refused, write or verification error) is
//! reported and its node stays next in line.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::target::{BlockDevice, Checks, SysRoot, Target, check_device, mounts};
use super::write::{FlashReport, open_target, write_and_verify};
use super::{FlashError, bmap_beside, known_size, load_bmap, node_name};
use crate::io::sniff::Compression;
use crate::progress::Progress;

/// The log's file name in the output directory.
pub const FLASH_LOG: &str = "flash-log";

/// One node's image in an output directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFile {
    /// The node.
    pub node: String,
    /// Its image (the fastest to decode of the formats present).
    pub image: PathBuf,
    /// Its `.bmap`, if present.
    pub bmap: Option<PathBuf>,
}

/// The node images of `dir`, sorted by node; per node the raw image if present, else zstd,
/// gzip, xz (fastest to decode first).
///
/// # Errors
/// The directory cannot be read or holds no images.
pub fn node_files(dir: &Path) -> Result<Vec<NodeFile>, FlashError> {
    let order = [
        Compression::None,
        Compression::Zstd,
        Compression::Gzip,
        Compression::Xz,
    ];
    let rd = fs::read_dir(dir).map_err(|source| FlashError::Log {
        what: "reading",
        path: dir.to_owned(),
        source,
    })?;
    let mut best: std::collections::BTreeMap<String, (usize, PathBuf)> = Default::default();
    for entry in rd.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let Some(rank) = order.iter().position(|c| {
            let suffix = match c {
                Compression::None => ".img".to_owned(),
                c => format!(".img.{}", c.extension()),
            };
            name.ends_with(&suffix) && name.len() > suffix.len()
        }) else {
            continue;
        };
        let path = entry.path();
        let node = node_name(&path);
        match best.get(&node) {
            Some((r, _)) if *r <= rank => {}
            _ => {
                best.insert(node, (rank, path));
            }
        }
    }
    if best.is_empty() {
        return Err(FlashError::NoImages {
            path: dir.to_owned(),
        });
    }
    Ok(best
        .into_iter()
        .map(|(node, (_, image))| NodeFile {
            bmap: bmap_beside(&image),
            node,
            image,
        })
        .collect())
}

/// A line of the flash log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// The node.
    pub node: String,
    /// The card's serial ("-" when unknown).
    pub serial: String,
    /// The device path.
    pub device: String,
    /// The card's model ("-" when unknown).
    pub model: String,
    /// When (UTC, `YYYY-MM-DDTHH:MM:SSZ`).
    pub time: String,
}

/// The entries of `dir`'s flash log (none when it does not exist).
///
/// # Errors
/// The log exists but cannot be read.
pub fn read_log(dir: &Path) -> Result<Vec<LogEntry>, FlashError> {
    let path = dir.join(FLASH_LOG);
    let text = match crate::io::bounded::read_to_string(&path, 16 << 20) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(FlashError::Log {
                what: "reading",
                path,
                source,
            });
        }
    };
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Some(LogEntry {
                node: (*f.first()?).to_owned(),
                serial: (*f.get(1)?).to_owned(),
                device: f.get(2).copied().unwrap_or("-").to_owned(),
                model: f.get(3).copied().unwrap_or("-").to_owned(),
                time: f.get(4).copied().unwrap_or("-").to_owned(),
            })
        })
        .collect())
}

/// Appends `entry` to `dir`'s flash log (with a header line when new), synced.
///
/// # Errors
/// The log cannot be written.
pub fn append_log(dir: &Path, entry: &LogEntry) -> Result<(), FlashError> {
    let path = dir.join(FLASH_LOG);
    let err = |source| FlashError::Log {
        what: "writing",
        path: path.clone(),
        source,
    };
    let new = !path.exists();
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(err)?;
    let clean = |s: &str| {
        let s = s.replace(['\t', '\n'], " ");
        if s.is_empty() { "-".to_owned() } else { s }
    };
    let mut text = String::new();
    if new {
        text.push_str("# node\tserial\tdevice\tmodel\ttime (UTC)\n");
    }
    text.push_str(&format!(
        "{}\t{}\t{}\t{}\t{}\n",
        clean(&entry.node),
        clean(&entry.serial),
        clean(&entry.device),
        clean(&entry.model),
        clean(&entry.time)
    ));
    f.write_all(text.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)
}

/// The current UTC time as `YYYY-MM-DDTHH:MM:SSZ`.
#[must_use]
pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (y, m, d) = crate::civil::civil_from_days(secs / 86_400);
    let t = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}

/// Removable (or USB) devices with a medium, present under `root` now.
#[must_use]
pub fn present_cards(root: &SysRoot) -> Vec<BlockDevice> {
    let Ok(rd) = fs::read_dir(root.sys_block()) else {
        return Vec::new();
    };
    let mut names: Vec<String> = rd
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
        .into_iter()
        .filter_map(|name| {
            let path = root.dev_dir().join(&name);
            BlockDevice::read(root, &name, &path).ok()
        })
        .filter(|d| (d.removable || d.usb) && d.size > 0)
        .collect()
}

/// Tells which device to write next: one that appeared since the last look and was not
/// passed over while present.
#[derive(Debug, Default)]
pub struct Arrivals {
    /// Devices (by name) to pass over until they disappear.
    blocked: BTreeSet<String>,
}

impl Arrivals {
    /// Starts with `present` passed over (they were there before the loop began).
    #[must_use]
    pub fn new(present: &[BlockDevice]) -> Self {
        Self {
            blocked: present.iter().map(|d| d.name.clone()).collect(),
        }
    }

    /// Given the devices present now, forgets those gone and returns a new one, which is
    /// passed over from then on.
    pub fn next(&mut self, present: &[BlockDevice]) -> Option<BlockDevice> {
        self.blocked
            .retain(|name| present.iter().any(|d| &d.name == name));
        let new = present.iter().find(|d| !self.blocked.contains(&d.name))?;
        self.blocked.insert(new.name.clone());
        Some(new.clone())
    }
}

/// What the batch loop reports; the CLI prints it and asks the user.
pub trait BatchEvents {
    /// Waiting for a card for `node`; `left` nodes remain.
    fn waiting(&self, node: &str, left: usize);
    /// Asks whether to write `node` onto `dev`.
    fn confirm(&self, node: &str, dev: &BlockDevice) -> bool;
    /// `dev` was not written (refused, declined, or the write failed); the node stays next.
    fn failed(&self, node: &str, dev: &BlockDevice, err: &FlashError);
    /// `node` was written onto `dev` and verified.
    fn flashed(&self, node: &str, dev: &BlockDevice, report: &FlashReport);
}

/// Options of the batch loop.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    /// Where `/sys`, `/proc` and `/dev` are.
    pub root: SysRoot,
    /// How often to look for new devices.
    pub poll: Duration,
}

/// Writes every node of `dir` not yet in its log, one per newly inserted card, until all are
/// written. Returns the entries written in this session.
///
/// # Errors
/// The directory or log cannot be read or written, or the user interrupted (Ctrl-C: the
/// entries written so far are in the log).
pub fn run(
    dir: &Path,
    options: &BatchOptions,
    progress: &dyn Progress,
    events: &dyn BatchEvents,
) -> Result<Vec<LogEntry>, FlashError> {
    let _polling = crate::cancel::polling();
    let done: BTreeSet<String> = read_log(dir)?.into_iter().map(|e| e.node).collect();
    let queue: Vec<NodeFile> = node_files(dir)?
        .into_iter()
        .filter(|n| !done.contains(&n.node))
        .collect();
    let mut arrivals = Arrivals::new(&present_cards(&options.root));
    let mut written = Vec::new();
    let mut i = 0;
    let mut announced = None;
    while let Some(next) = queue.get(i) {
        if announced != Some(i) {
            events.waiting(&next.node, queue.len() - i);
            announced = Some(i);
        }
        crate::cancel::check().map_err(|source| FlashError::Log {
            what: "waiting for a card for",
            path: next.image.clone(),
            source,
        })?;
        let Some(dev) = arrivals.next(&present_cards(&options.root)) else {
            std::thread::sleep(options.poll);
            continue;
        };
        match flash_card(next, &dev, options, progress, events) {
            Ok(report) => {
                let entry = LogEntry {
                    node: next.node.clone(),
                    serial: dev.serial.clone(),
                    device: dev.path.display().to_string(),
                    model: dev.model.clone(),
                    time: utc_now(),
                };
                append_log(dir, &entry)?;
                events.flashed(&next.node, &dev, &report);
                written.push(entry);
                i += 1;
            }
            Err(e) if crate::cancel::is_requested() => return Err(e),
            Err(e) => {
                events.failed(&next.node, &dev, &e);
                announced = None;
            }
        }
    }
    Ok(written)
}

fn flash_card(
    node: &NodeFile,
    dev: &BlockDevice,
    options: &BatchOptions,
    progress: &dyn Progress,
    events: &dyn BatchEvents,
) -> Result<FlashReport, FlashError> {
    let bmap = node.bmap.as_deref().map(load_bmap).transpose()?;
    let checks = Checks {
        force: false,
        image_size: known_size(&node.image, bmap.as_ref())?,
    };
    check_device(dev, &mounts(&options.root)?, checks)?;
    if !events.confirm(&node.node, dev) {
        return Err(FlashError::NotConfirmed(format!(
            "{} was not written (declined)",
            dev.path.display()
        )));
    }
    let target = Target::Device(dev.clone());
    let out = open_target(&target)?;
    write_and_verify(
        &node.image,
        bmap.as_ref(),
        &target,
        &out,
        &format!("writing {}", node.node),
        progress,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(name: &str) -> BlockDevice {
        BlockDevice {
            name: name.into(),
            path: PathBuf::from(format!("/dev/{name}")),
            devno: super::super::target::DevNo { major: 8, minor: 0 },
            size: 1 << 30,
            removable: true,
            usb: true,
            model: String::new(),
            serial: String::new(),
            partitions: vec![],
            holders: vec![],
        }
    }

    #[test]
    fn arrivals_need_a_reinsert() {
        let mut a = Arrivals::new(&[dev("sdb")]);
        assert_eq!(a.next(&[dev("sdb")]), None, "present at start");
        assert_eq!(a.next(&[dev("sdb"), dev("sdc")]).unwrap().name, "sdc");
        assert_eq!(a.next(&[dev("sdb"), dev("sdc")]), None, "written once");
        assert_eq!(a.next(&[]), None, "both taken out");
        assert_eq!(a.next(&[dev("sdc")]).unwrap().name, "sdc", "re-inserted");
        assert_eq!(a.next(&[dev("sdb"), dev("sdc")]).unwrap().name, "sdb");
    }

    #[test]
    fn node_files_prefer_raw_and_log_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "a.img.xz",
            "a.img",
            "a.img.bmap",
            "b.img.xz",
            "b.img.gz",
            "c.img.zst",
            ".a.img.partial",
            "SHA256SUMS",
        ] {
            fs::write(dir.path().join(f), b"x").unwrap();
        }
        let files = node_files(dir.path()).unwrap();
        let got: Vec<_> = files
            .iter()
            .map(|n| {
                (
                    n.node.as_str(),
                    n.image.file_name().unwrap().to_string_lossy().into_owned(),
                    n.bmap.is_some(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("a", "a.img".to_owned(), true),
                ("b", "b.img.gz".to_owned(), false),
                ("c", "c.img.zst".to_owned(), false)
            ]
        );
        let e = LogEntry {
            node: "a".into(),
            serial: String::new(),
            device: "/dev/sdc".into(),
            model: "Card\tReader".into(),
            time: utc_now(),
        };
        append_log(dir.path(), &e).unwrap();
        append_log(dir.path(), &e).unwrap();
        let log = read_log(dir.path()).unwrap();
        assert_eq!(log.len(), 2);
        assert_eq!(log[0].serial, "-");
        assert_eq!(log[0].model, "Card Reader");
        assert_eq!(log[0].time.len(), 20);
    }
}
