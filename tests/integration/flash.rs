//! `piimage flash` (issue 11): every output format onto a file and, as root, onto a loop
//! device, with and without the `.bmap`; the result checked against the raw image on every
//! mapped range, with `cmp`, `sfdisk -d`, `e2fsck -fn` and `fsck.fat -n`; every refusal (on
//! simulated `/sys` trees, and on a real loop device where one can be made); many cards in a
//! row with simulated devices appearing and disappearing.

use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use piimage::disk::{CowDisk, FileStorage, Storage as _};
use piimage::io::hashing::Sha256Digest;
use piimage::output::bmap::{BlockMap, BlockRange, xml};
use piimage::output::{BaseCache, CacheConfig, NodeImage, NodeOutputSpec, build_node};
use piimage::progress::NoProgress;
use xtask::fixtures::{self, Fixture, Format};

use crate::support::{Piimage, text};
use crate::support::{e2fsck_clean, fsck_fat_clean, run, run_ok};

fn flash(args: &[&str]) -> Output {
    Piimage::new()
        .arg("flash")
        .args(args)
        .stdin(Stdio::null())
        .run()
}

fn flash_ok(args: &[&str]) -> String {
    let out = flash(args);
    assert!(out.status.success(), "flash {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn flash_err(args: &[&str]) -> String {
    let out = flash(args);
    assert_eq!(out.status.code(), Some(1), "flash {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A Trixie fixture node built in every format with a `.bmap`, in `dir`: `node.img`,
/// `node.img.{zst,xz,gz}`, `node.img.bmap`.
fn build_fixture_node(dir: &Path) {
    let path = fixtures::fixture_path(Fixture::RaspiosTrixie, Format::Raw).unwrap();
    let base = FileStorage::open_read_only(&path).unwrap();
    let disk = CowDisk::new(&base);
    disk.write_at(440, &0x1122_3344u32.to_le_bytes()).unwrap();
    let cache = BaseCache::open(&path, CacheConfig::new(dir)).unwrap();
    let node = NodeImage::from_cow("node", &disk).unwrap();
    let spec = NodeOutputSpec {
        formats: piimage::output::ImageFormat::ALL.to_vec(),
        bmap: true,
        image_sha256: false,
        sync: false,
    };
    build_node(&cache, &node, dir, &spec, &NoProgress).unwrap();
}

/// The mapped byte spans of a `.bmap`, read with a scanner of this test's own (not
/// piimage's parser).
fn mapped_spans(bmap: &Path) -> Vec<(u64, u64)> {
    let t = std::fs::read_to_string(bmap).unwrap();
    let size: u64 = t
        .split("<ImageSize>")
        .nth(1)
        .unwrap()
        .split("</ImageSize>")
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    t.split("<Range ")
        .skip(1)
        .map(|r| {
            let body = r
                .split('>')
                .nth(1)
                .unwrap()
                .split('<')
                .next()
                .unwrap()
                .trim();
            let (a, b) = body.split_once('-').unwrap_or((body, body));
            let a: u64 = a.parse().unwrap();
            let b: u64 = b.parse().unwrap();
            (a * 4096, ((b + 1) * 4096).min(size))
        })
        .collect()
}

/// `got` equals `want` on every span.
fn assert_spans_equal(got: &Path, want: &Path, spans: &[(u64, u64)], case: &str) {
    let (g, w) = (
        std::fs::File::open(got).unwrap(),
        std::fs::File::open(want).unwrap(),
    );
    let mut a = vec![0u8; 1 << 20];
    let mut b = vec![0u8; 1 << 20];
    for &(s, e) in spans {
        let mut at = s;
        while at < e {
            let n = usize::try_from((e - at).min(1 << 20)).unwrap();
            g.read_exact_at(&mut a[..n], at).unwrap();
            w.read_exact_at(&mut b[..n], at).unwrap();
            assert!(
                a[..n] == b[..n],
                "{case}: bytes at {at} differ from the raw image"
            );
            at += n as u64;
        }
    }
}

/// Partition starts and sizes in bytes, from `sfdisk -d` of `img`.
fn partitions(img: &Path) -> Vec<(u64, u64)> {
    run_ok("sfdisk", &["-d", img.to_str().unwrap()])
        .lines()
        .filter_map(|l| l.split_once(" : "))
        .map(|(_, fields)| {
            let field = |name: &str| -> u64 {
                fields
                    .split(',')
                    .filter_map(|f| f.split_once('='))
                    .find(|(k, _)| k.trim() == name)
                    .map(|(_, v)| v.trim().parse().unwrap())
                    .unwrap()
            };
            (field("start") * 512, field("size") * 512)
        })
        .collect()
}

/// `e2fsck -fn` and `fsck.fat -n` on the written disk, at the offsets its own table gives.
fn check_filesystems(img: &Path) {
    let parts = partitions(img);
    assert_eq!(parts.len(), 2, "{parts:?}");
    fsck_fat_clean(img, parts[0].0, parts[0].1);
    e2fsck_clean(img, parts[1].0);
}

#[test]
fn issue11_every_format_onto_a_file_with_and_without_bmap() {
    let tmp = crate::support::tmp();
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    build_fixture_node(&out);
    let raw = out.join("node.img");
    let spans = mapped_spans(&out.join("node.img.bmap"));
    let raw_len = std::fs::metadata(&raw).unwrap().len();
    for ext in ["img", "img.zst", "img.xz", "img.gz"] {
        let src = out.join(format!("node.{ext}"));
        // With the .bmap (found beside the image): only mapped ranges are written.
        let dest = tmp.path().join(format!("bmap-{ext}.img"));
        let line = flash_ok(&[src.to_str().unwrap(), "--device", dest.to_str().unwrap()]);
        assert!(
            line.starts_with(&format!("flashed node onto {}: ", dest.display()))
                && line.contains("per the .bmap")
                && line.contains(&format!("image {raw_len} bytes")),
            "{ext}: {line}"
        );
        let mapped: u64 = spans.iter().map(|(s, e)| e - s).sum();
        assert!(line.contains(&format!("{mapped} bytes verified")), "{line}");
        assert_eq!(std::fs::metadata(&dest).unwrap().len(), raw_len);
        assert_spans_equal(&dest, &raw, &spans, ext);
        check_filesystems(&dest);
        std::fs::remove_file(&dest).unwrap();

        // Without: the whole image, byte for byte (cmp).
        let dest = tmp.path().join(format!("all-{ext}.img"));
        let line = flash_ok(&[
            src.to_str().unwrap(),
            "--device",
            dest.to_str().unwrap(),
            "--no-bmap",
        ]);
        assert!(line.contains("whole image"), "{line}");
        run_ok("cmp", &[raw.to_str().unwrap(), dest.to_str().unwrap()]);
        if ext == "img.xz" {
            check_filesystems(&dest);
        }
        std::fs::remove_file(&dest).unwrap();
    }
}

/// A loop device over a new sparse file of `size` bytes, detached when dropped.
struct Loop {
    dev: PathBuf,
    _backing: tempfile::NamedTempFile,
}

impl Loop {
    fn new(size: u64) -> Option<Self> {
        let backing = tempfile::NamedTempFile::new().unwrap();
        backing.as_file().set_len(size).unwrap();
        let out = run("losetup", &["-f", "--show", backing.path().to_str()?]);
        if !out.status.success() {
            eprintln!(
                "skipped: no loop device ({}); CI runs this as root",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return None;
        }
        let dev = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        Some(Self {
            dev,
            _backing: backing,
        })
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = run("losetup", &["-d", self.dev.to_str().unwrap_or("")]);
    }
}

#[test]
fn issue11_loop_device_with_and_without_bmap_and_its_refusals() {
    let tmp = crate::support::tmp();
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    build_fixture_node(&out);
    let raw = out.join("node.img");
    let raw_len = std::fs::metadata(&raw).unwrap().len();
    let Some(lo) = Loop::new(raw_len + (64 << 20)) else {
        return;
    };
    let dev = lo.dev.to_str().unwrap();
    let zst = out.join("node.img.zst");
    let zst = zst.to_str().unwrap();
    // A loop device is neither removable nor USB: refused without --force.
    let err = flash_err(&[zst, "--device", dev, "--yes"]);
    assert!(
        err.contains("is not removable") && err.contains("--force"),
        "{err}"
    );
    // No terminal and no --yes: refused before anything is written.
    let err = flash_err(&[zst, "--device", dev, "--force"]);
    assert!(
        err.contains("stdin is not a terminal") && err.contains("--yes"),
        "{err}"
    );

    let spans = mapped_spans(&out.join("node.img.bmap"));
    let line = flash_ok(&[zst, "--device", dev, "--force", "--yes"]);
    assert!(
        line.contains(&format!("onto {dev}")) && line.contains("per the .bmap"),
        "{line}"
    );
    assert_spans_equal(&lo.dev, &raw, &spans, "loop, bmap");
    check_filesystems(&lo.dev);

    let xz = out.join("node.img.xz");
    let line = flash_ok(&[
        xz.to_str().unwrap(),
        "-d",
        dev,
        "--force",
        "-y",
        "--no-bmap",
    ]);
    assert!(line.contains("whole image"), "{line}");
    run_ok(
        "cmp",
        &["-n", &raw_len.to_string(), raw.to_str().unwrap(), dev],
    );

    // A device smaller than the image.
    let small = Loop::new(raw_len / 2).unwrap();
    let err = flash_err(&[zst, "-d", small.dev.to_str().unwrap(), "--force", "-y"]);
    assert!(err.contains("is smaller than the image"), "{err}");
    // Without a map, a compressed image is measured while written: stopped at the end.
    let gz = out.join("node.img.gz");
    let err = flash_err(&[
        gz.to_str().unwrap(),
        "-d",
        small.dev.to_str().unwrap(),
        "--force",
        "-y",
        "--no-bmap",
    ]);
    assert!(
        err.contains("the image is larger than") && err.contains("incomplete"),
        "{err}"
    );
}

/// A simulated system: `ROOT/dev/NAME` stand-in files and `ROOT/sys/block/NAME` entries.
struct SimRoot {
    dir: tempfile::TempDir,
}

impl SimRoot {
    fn new(mountinfo: &str) -> Self {
        let dir = crate::support::tmp();
        for d in ["dev", "sys/block", "sys/devices", "proc/self"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        std::fs::write(dir.path().join("proc/self/mountinfo"), mountinfo).unwrap();
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Adds device `name` (`major:16`, partition `name`1 as `major:17`) of `size` bytes,
    /// under a USB path when `usb`.
    fn add(&self, name: &str, size: u64, removable: bool, usb: bool, serial: &str) -> PathBuf {
        let root = self.path();
        let parent = if usb {
            "sys/devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block"
        } else {
            "sys/devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block"
        };
        let real = root.join(parent).join(name);
        std::fs::create_dir_all(real.join(format!("{name}1"))).unwrap();
        std::fs::create_dir_all(real.join("device")).unwrap();
        let w = |f: &str, v: &str| std::fs::write(real.join(f), v).unwrap();
        w("dev", "8:16\n");
        w("size", &format!("{}\n", size / 512));
        w("removable", if removable { "1\n" } else { "0\n" });
        w("device/vendor", "Generic \n");
        w("device/model", "Card Reader\n");
        w("device/serial", &format!("{serial}\n"));
        w(&format!("{name}1/partition"), "1\n");
        w(&format!("{name}1/dev"), "8:17\n");
        let stand_in = root.join("dev").join(name);
        std::fs::write(&stand_in, b"").unwrap();
        std::os::unix::fs::symlink(&real, root.join("sys/block").join(name)).unwrap();
        stand_in
    }

    /// Takes device `name` out.
    fn remove(&self, name: &str) {
        std::fs::remove_file(self.path().join("sys/block").join(name)).unwrap();
    }
}

/// A small image (blocks 0, 3-4, 9, a short tail) and its `.bmap`, as `NAME.img` and
/// `NAME.img.bmap` in `dir`. Returns the image bytes.
fn small_image(dir: &Path, name: &str, seed: u8) -> Vec<u8> {
    let mut img = vec![0u8; 10 * 4096 + 300];
    for (i, b) in img.iter_mut().enumerate() {
        if [0, 3, 4, 9, 10].contains(&(i / 4096)) {
            *b = u8::try_from((i * 7 + usize::from(seed)) % 251).unwrap() | 1;
        }
    }
    let map = BlockMap {
        image_size: img.len() as u64,
        ranges: vec![
            BlockRange { first: 0, last: 0 },
            BlockRange { first: 3, last: 4 },
            BlockRange { first: 9, last: 10 },
        ],
        notes: vec![],
    };
    let digests: Vec<_> = map
        .ranges
        .iter()
        .map(|r| {
            let (s, e) = map.byte_span(r);
            Sha256Digest::of(&img[usize::try_from(s).unwrap()..usize::try_from(e).unwrap()])
        })
        .collect();
    std::fs::write(dir.join(format!("{name}.img")), &img).unwrap();
    std::fs::write(
        dir.join(format!("{name}.img.bmap")),
        xml::render(&map, &digests),
    )
    .unwrap();
    img
}

/// (case, mountinfo, size, removable, usb, extra args, the error expected or `None`).
type Case = (
    &'static str,
    &'static str,
    u64,
    bool,
    bool,
    Vec<&'static str>,
    Option<&'static str>,
);

#[test]
fn issue11_refusals_on_simulated_devices() {
    let images = crate::support::tmp();
    let img = small_image(images.path(), "n", 1);
    let src = images.path().join("n.img");
    let src = src.to_str().unwrap();
    let big = 1u64 << 30;
    let cases: Vec<Case> = vec![
        (
            "partition mounted",
            "30 22 8:17 / /media/pi/bootfs rw - vfat /dev/sdz1 rw\n",
            big,
            true,
            false,
            vec!["--yes"],
            Some("/dev/sdz1 is mounted at /media/pi/bootfs"),
        ),
        (
            "mounted, by source",
            "31 22 0:45 / /data rw - btrfs /dev/sdz1 rw\n",
            big,
            true,
            false,
            vec!["--yes"],
            Some("mounted at /data"),
        ),
        (
            "holds the running system",
            "22 1 8:17 / / rw - ext4 /dev/root rw\n",
            big,
            true,
            false,
            vec!["--yes", "--force"],
            Some("holds the running system"),
        ),
        (
            "fixed disk",
            "",
            big,
            false,
            false,
            vec!["--yes"],
            Some("is not removable"),
        ),
        (
            "fixed disk, --force",
            "",
            big,
            false,
            false,
            vec!["--yes", "--force"],
            None,
        ),
        (
            "USB disk with removable 0",
            "",
            big,
            false,
            true,
            vec!["--yes"],
            None,
        ),
        (
            "too small",
            "",
            20 * 512,
            true,
            false,
            vec!["--yes"],
            Some("(10240 bytes) is smaller than the image (41260 bytes)"),
        ),
        (
            "no medium",
            "",
            0,
            true,
            false,
            vec!["--yes"],
            Some("has no medium"),
        ),
        (
            "no terminal, no --yes",
            "",
            big,
            true,
            false,
            vec![],
            Some("stdin is not a terminal"),
        ),
    ];
    for (case, mountinfo, size, removable, usb, extra, want) in cases {
        let sim = SimRoot::new(mountinfo);
        let dev = sim.add("sdz", size, removable, usb, "SER1");
        let mut args = vec![src, "--device", dev.to_str().unwrap()];
        args.extend(extra);
        args.extend(["--sys-root", sim.path().to_str().unwrap()]);
        let out = flash(&args);
        match want {
            Some(w) => {
                assert_eq!(out.status.code(), Some(1), "{case}: {}", text(&out));
                let err = String::from_utf8_lossy(&out.stderr);
                assert!(err.contains(w), "{case}: {err}");
                assert_eq!(std::fs::metadata(&dev).unwrap().len(), 0, "{case}: written");
            }
            None => {
                assert!(out.status.success(), "{case}: {}", text(&out));
                let got = std::fs::read(&dev).unwrap();
                assert_eq!(got.len(), img.len(), "{case}");
            }
        }
    }
}

#[test]
fn issue11_bmap_checksum_mismatch_names_the_range() {
    let dir = crate::support::tmp();
    let mut img = small_image(dir.path(), "n", 2);
    img[4 * 4096 + 10] ^= 0x40;
    std::fs::write(dir.path().join("n.img"), &img).unwrap();
    let dest = dir.path().join("card.img");
    let err = flash_err(&[
        dir.path().join("n.img").to_str().unwrap(),
        "-d",
        dest.to_str().unwrap(),
    ]);
    assert!(
        err.contains("blocks 3-4 of the image do not match the block map"),
        "{err}"
    );
    // A .bmap edited by hand fails its own checksum.
    let bmap = dir.path().join("n.img.bmap");
    let t = std::fs::read_to_string(&bmap).unwrap();
    std::fs::write(&bmap, t.replacen("> 3-4 <", "> 2-4 <", 1)).unwrap();
    let err = flash_err(&[
        dir.path().join("n.img").to_str().unwrap(),
        "-d",
        dest.to_str().unwrap(),
    ]);
    assert!(
        err.contains("BmapFileChecksum") && err.contains("n.img.bmap"),
        "{err}"
    );
}

/// Waits until `f` holds, for at most 20 s.
fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn log_lines(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("flash-log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn issue11_many_cards_in_a_row_with_simulated_devices() {
    let out = crate::support::tmp();
    let a = small_image(out.path(), "alpha", 3);
    let b = small_image(out.path(), "beta", 4);
    let sim = SimRoot::new("");
    let present = sim.add("sdy", 1 << 30, true, false, "OLD");
    let (mut pi, _pi_dirs) = Piimage::new().command();
    let mut child = pi
        .args([
            "flash",
            out.path().to_str().unwrap(),
            "--yes",
            "--poll-ms",
            "10",
        ])
        .arg("--sys-root")
        .arg(sim.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        log_lines(out.path()).is_empty(),
        "a card present at the start is passed over"
    );

    let sdz = sim.add("sdz", 1 << 30, true, true, "SERZ");
    wait_for("alpha written", || log_lines(out.path()).len() == 1);
    assert_eq!(std::fs::read(&sdz).unwrap(), a);
    // Left in: never written twice.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(log_lines(out.path()).len(), 1);
    sim.remove("sdz");
    let sdx = sim.add("sdx", 1 << 30, true, false, "SERX");
    wait_for("beta written", || log_lines(out.path()).len() == 2);
    let status = child.wait().unwrap();
    let stdout: Vec<String> = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(Result::unwrap)
        .collect();
    assert!(status.success(), "{stdout:?}");
    assert_eq!(std::fs::read(&sdx).unwrap(), b);
    assert_eq!(
        std::fs::metadata(&present).unwrap().len(),
        0,
        "sdy untouched"
    );
    assert!(
        stdout
            .iter()
            .any(|l| l.starts_with("label this card: alpha")),
        "{stdout:?}"
    );
    assert!(
        stdout
            .iter()
            .any(|l| l.starts_with("label this card: beta")),
        "{stdout:?}"
    );
    let log = log_lines(out.path());
    let fields: Vec<Vec<&str>> = log.iter().map(|l| l.split('\t').collect()).collect();
    assert_eq!(fields[0][..3], ["alpha", "SERZ", sdz.to_str().unwrap()]);
    assert_eq!(fields[1][..3], ["beta", "SERX", sdx.to_str().unwrap()]);

    // Run again: nothing left to write.
    let again = flash_ok(&[
        out.path().to_str().unwrap(),
        "--yes",
        "--sys-root",
        sim.path().to_str().unwrap(),
    ]);
    assert!(
        again.contains("all nodes written: 0 in this session, 2 in"),
        "{again}"
    );
}

#[test]
fn issue11_ctrl_c_stops_the_card_loop() {
    let out = crate::support::tmp();
    small_image(out.path(), "alpha", 5);
    let sim = SimRoot::new("");
    let (mut pi, _pi_dirs) = Piimage::new().command();
    let child = pi
        .args([
            "flash",
            out.path().to_str().unwrap(),
            "--yes",
            "--poll-ms",
            "10",
        ])
        .arg("--sys-root")
        .arg(sim.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    run_ok("kill", &["-INT", &child.id().to_string()]);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("stopped: 0 cards recorded"), "{err}");
}
