//! `piimage eeprom` (issue 11): the bootloader-update card from a base that carries rpi-eeprom
//! files (added to a copy of a fixture with `debugfs -w`), a bootloader image built here from
//! the published section format; the card checked with `sfdisk -d`, `fsck.fat -n`, `mdir` and
//! `mtype`; a base without the files refused.

use piimage::io::hashing::Sha256Digest;
use xtask::fixtures::{self, Fixture, Format};

use crate::support::Piimage;
use crate::support::{fsck_fat_clean, mtype, run_ok};

const FILE_MAGIC: u32 = 0x55aa_f11f;
const PAD_MAGIC: u32 = 0x55aa_feef;

/// A 2 MiB bootloader image: boot code at 0, `bootconf.txt` at 64 KiB, padding, a key file
/// at 68 KiB, erased (0xff) rest. Each section: magic and length (big-endian), a file section
/// then a 12-byte name and 4 reserved bytes; sections start on 8-byte boundaries.
fn bootloader(config: &str) -> Vec<u8> {
    let mut b = vec![0xffu8; 2 << 20];
    let mut put = |at: usize, magic: u32, name: Option<&str>, content: &[u8]| -> usize {
        let extra = if name.is_some() { 16 } else { 0 };
        b[at..at + 4].copy_from_slice(&magic.to_be_bytes());
        b[at + 4..at + 8]
            .copy_from_slice(&u32::try_from(content.len() + extra).unwrap().to_be_bytes());
        let mut c = at + 8;
        if let Some(n) = name {
            b[c..c + 16].fill(0);
            b[c..c + n.len()].copy_from_slice(n.as_bytes());
            c += 16;
        }
        b[c..c + content.len()].copy_from_slice(content);
        (c + content.len() + 7) & !7
    };
    let end = put(0, 0x55aa_f00f, None, &[0x5A; 2000]);
    put(end, PAD_MAGIC, None, &vec![0xff; 65536 - end - 8]);
    let end = put(65536, FILE_MAGIC, Some("bootconf.txt"), config.as_bytes());
    put(end, PAD_MAGIC, None, &vec![0xff; 69632 - end - 8]);
    put(69632, FILE_MAGIC, Some("pubkey.bin"), &[3; 264]);
    b
}

/// The content of file section `name`, found by walking the sections (this test's own reader).
fn section_file(img: &[u8], name: &str) -> Option<Vec<u8>> {
    let mut at = 0usize;
    while at + 8 <= img.len() {
        let magic = u32::from_be_bytes(img[at..at + 4].try_into().unwrap());
        let len = u32::from_be_bytes(img[at + 4..at + 8].try_into().unwrap()) as usize;
        if magic == 0 || magic == u32::MAX {
            return None;
        }
        if magic == FILE_MAGIC
            && img[at + 8..at + 20].split(|&b| b == 0).next() == Some(name.as_bytes())
        {
            return Some(img[at + 24..at + 8 + len].to_vec());
        }
        at = (at + 8 + len + 7) & !7;
    }
    None
}

fn eeprom(args: &[&str]) -> std::process::Output {
    Piimage::new().arg("eeprom").args(args).run()
}

#[test]
fn issue11_eeprom_card_from_the_base_files() {
    let tmp = crate::support::tmp();
    let f = Fixture::RaspiosTrixie;
    let info = fixtures::info(f);
    let fixture = fixtures::fixture_path(f, Format::Raw).unwrap();
    let base = tmp.path().join("base.img");
    run_ok(
        "cp",
        &[
            "--sparse=always",
            fixture.to_str().unwrap(),
            base.to_str().unwrap(),
        ],
    );
    let config = "[all]\nBOOT_UART=0\nBOOT_ORDER=0xf41\nPOWER_OFF_ON_HALT=1\n";
    let orig = bootloader(config);
    std::fs::write(tmp.path().join("pieeprom.bin"), &orig).unwrap();
    std::fs::write(tmp.path().join("recovery.bin"), b"recovery program").unwrap();
    let dir = "/usr/lib/firmware/raspberrypi/bootloader-2712/default";
    let cmds = format!(
        "mkdir /usr/lib/firmware\nmkdir /usr/lib/firmware/raspberrypi\n\
         mkdir /usr/lib/firmware/raspberrypi/bootloader-2712\nmkdir {dir}\ncd {dir}\n\
         write {0}/pieeprom.bin pieeprom-2025-01-01.bin\nwrite {0}/recovery.bin recovery.bin\n",
        tmp.path().display()
    );
    std::fs::write(tmp.path().join("cmds"), cmds).unwrap();
    let spec = format!("{}?offset={}", base.display(), info.root.offset());
    run_ok(
        "debugfs",
        &["-w", "-f", tmp.path().join("cmds").to_str().unwrap(), &spec],
    );

    let card = tmp.path().join("bootloader.img");
    let cache = tmp.path().join("cache");
    let args = [
        "--base",
        base.to_str().unwrap(),
        "--boot-order",
        "nvme,sd,usb,network",
        "--out",
        card.to_str().unwrap(),
        "--timestamp",
        "1700000000",
        "--cache-dir",
        cache.to_str().unwrap(),
    ];
    let out = eeprom(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("BOOT_ORDER=0xf2416"), "{stdout}");

    // The card: one FAT32 partition at 1 MiB that fsck.fat finds clean, with the three files.
    let table = run_ok("sfdisk", &["-d", card.to_str().unwrap()]);
    assert!(
        table.contains("start=        2048, size=      131072, type=c"),
        "{table}"
    );
    fsck_fat_clean(&card, 1 << 20, 64 << 20);
    let listing = run_ok(
        "mdir",
        &["-b", "-i", &format!("{}@@1048576", card.display()), "::"],
    );
    let mut names: Vec<String> = listing
        .lines()
        .map(|l| l.trim_start_matches("::/").to_lowercase())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["pieeprom.sig", "pieeprom.upd", "recovery.bin"],
        "{listing}"
    );
    assert_eq!(mtype(&card, 1 << 20, "recovery.bin"), b"recovery program");
    let upd = mtype(&card, 1 << 20, "pieeprom.upd");
    assert_eq!(upd.len(), orig.len());
    let conf = String::from_utf8(section_file(&upd, "bootconf.txt").unwrap()).unwrap();
    assert_eq!(
        conf,
        "[all]\nBOOT_UART=0\nBOOT_ORDER=0xf2416\nPOWER_OFF_ON_HALT=1\n"
    );
    assert_eq!(section_file(&upd, "pubkey.bin").unwrap(), [3u8; 264]);
    // Only the configuration's 4 KiB erase unit changed.
    assert_eq!(upd[..65536], orig[..65536]);
    assert_eq!(upd[69632..], orig[69632..]);
    let sig = String::from_utf8(mtype(&card, 1 << 20, "pieeprom.sig")).unwrap();
    assert_eq!(sig, format!("{}\nts: 1700000000\n", Sha256Digest::of(&upd)));
    // sha256sum agrees (the oracle rpi-eeprom-digest uses).
    let upd_file = tmp.path().join("upd");
    std::fs::write(&upd_file, &upd).unwrap();
    let sum = run_ok("sha256sum", &[upd_file.to_str().unwrap()]);
    assert_eq!(sum.split_whitespace().next(), sig.lines().next());

    // The same inputs give the same card.
    let again = tmp.path().join("again.img");
    let mut args2 = args;
    args2[5] = again.to_str().unwrap();
    assert!(eeprom(&args2).status.success());
    assert_eq!(
        std::fs::read(&again).unwrap(),
        std::fs::read(&card).unwrap()
    );

    // A Pi 4 bootloader is not in this base.
    let out = eeprom(&[&args[..], &["--board", "pi4"]].concat());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("has no bootloader for BCM2711"), "{err}");
}

#[test]
fn issue11_eeprom_refuses_a_base_without_the_files() {
    let tmp = crate::support::tmp();
    let fixture = fixtures::fixture_path(Fixture::RaspiosBookworm, Format::Raw).unwrap();
    let card = tmp.path().join("b.img");
    let out = eeprom(&[
        "--base",
        fixture.to_str().unwrap(),
        "--boot-order",
        "sd,nvme",
        "--out",
        card.to_str().unwrap(),
        "--cache-dir",
        tmp.path().join("cache").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("has no bootloader for BCM2712")
            && err.contains("/usr/lib/firmware/raspberrypi/bootloader-2712/default"),
        "{err}"
    );
    assert!(!card.exists());
}
