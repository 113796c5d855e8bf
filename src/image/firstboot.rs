//! Which first-boot mechanism an image will use (see image-formats.md §1 and §2).
//!
//! - Raspberry Pi OS Bookworm: `init=/usr/lib/raspberrypi-sys-mods/firstboot` on the kernel
//!   command line (resize, host keys, `userconf.txt`, `ssh`, `custom.toml`, then reboot).
//! - Raspberry Pi OS Trixie: ` resize` on the command line (initramfs grows p2 and rotates the
//!   disk id) and cloud-init NoCloud reading `user-data`/`meta-data` from `/boot/firmware`.
//! - Ubuntu raspi: cloud-init NoCloud on the FAT partition labelled `system-boot`.

use serde::Serialize;

use super::os::OsFamily;

/// Read access to the root filesystem, as far as detection needs it.
pub trait RootProbe {
    /// True when `path` exists.
    fn exists(&self, path: &str) -> bool;
    /// The text of `path`, if it exists.
    fn read_text(&self, path: &str) -> Option<String>;
    /// Entry names of the directory at `path` (empty when missing).
    fn list(&self, path: &str) -> Vec<String>;
}

/// The first-boot mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mechanism {
    /// Bookworm's `raspberrypi-sys-mods/firstboot` init script.
    RaspiosFirstboot,
    /// Trixie's initramfs resize plus cloud-init NoCloud from `/boot/firmware`.
    RaspiosCloudInit,
    /// Trixie-style resize with no cloud-init installed.
    RaspiosResize,
    /// Ubuntu's cloud-init NoCloud on the `system-boot` label.
    UbuntuCloudInit,
    /// cloud-init with a datasource we do not recognise.
    CloudInit,
    /// Nothing recognised: settings must be baked.
    None,
}

impl std::fmt::Display for Mechanism {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::RaspiosFirstboot => {
                "Raspberry Pi OS firstboot (init=/usr/lib/raspberrypi-sys-mods/firstboot)"
            }
            Self::RaspiosCloudInit => {
                "Raspberry Pi OS resize + cloud-init NoCloud (/boot/firmware)"
            }
            Self::RaspiosResize => "Raspberry Pi OS resize (no cloud-init)",
            Self::UbuntuCloudInit => "Ubuntu cloud-init NoCloud (label system-boot)",
            Self::CloudInit => "cloud-init (unrecognised datasource)",
            Self::None => "none recognised",
        })
    }
}

/// What the image will do on first boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FirstBoot {
    /// The mechanism.
    pub mechanism: Mechanism,
    /// The root partition is grown on first boot (and, on Raspberry Pi OS, the disk id rotated).
    pub resize: bool,
    /// cloud-init is installed in the root filesystem.
    pub cloud_init: bool,
    /// Where cloud-init looks for its NoCloud seed, if configured.
    pub cloud_init_seed: Option<String>,
    /// Seed files present on the boot partition (`user-data`, `meta-data`, `network-config`,
    /// `userconf.txt`, `ssh`, `firstrun.sh`, `custom.toml`, ...).
    pub boot_seed_files: Vec<String>,
    /// systemd units that matter on first boot and are enabled
    /// (`userconfig.service`, `regenerate_ssh_host_keys.service`, `rpi-resize.service`, `ssh.service`, ...).
    pub enabled_units: Vec<String>,
}

/// Units whose state changes what a first boot does.
const UNITS: &[&str] = &[
    "userconfig.service",
    "regenerate_ssh_host_keys.service",
    "rpi-resize.service",
    "sshswitch.service",
    "ssh.service",
    "cloud-init.service",
    "cloud-init-local.service",
    "cloud-init-main.service",
];

/// Files on the boot partition that first-boot mechanisms consume.
const SEED_FILES: &[&str] = &[
    "user-data",
    "meta-data",
    "network-config",
    "vendor-data",
    "userconf.txt",
    "userconf",
    "ssh",
    "ssh.txt",
    "firstrun.sh",
    "custom.toml",
    "rpi-preseed.toml",
];

/// Units enabled the way `systemctl enable` does it: a symlink in some `*.wants` directory
/// under `/etc/systemd/system`.
pub fn enabled_units(root: &dyn RootProbe) -> Vec<String> {
    let base = "/etc/systemd/system";
    let mut out = Vec::new();
    for dir in root
        .list(base)
        .into_iter()
        .filter(|d| d.ends_with(".wants"))
    {
        for unit in root.list(&format!("{base}/{dir}")) {
            if UNITS.contains(&unit.as_str()) && !out.contains(&unit) {
                out.push(unit);
            }
        }
    }
    out.sort();
    out
}

/// The NoCloud seed location configured in `/etc/cloud/cloud.cfg.d/*.cfg`, if any.
fn nocloud_seed(root: &dyn RootProbe) -> Option<String> {
    let dir = "/etc/cloud/cloud.cfg.d";
    for name in root.list(dir).into_iter().filter(|n| n.ends_with(".cfg")) {
        let Some(text) = root.read_text(&format!("{dir}/{name}")) else {
            continue;
        };
        for line in text.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
            if let Some(v) = line.strip_prefix("seedfrom:") {
                return Some(v.trim().trim_matches(['"', '\'']).to_owned());
            }
            if let Some(v) = line.strip_prefix("fs_label:") {
                return Some(format!("label={}", v.trim().trim_matches(['"', '\''])));
            }
        }
    }
    None
}

/// Detects the first-boot mechanism from the command line, the boot files and the root.
pub fn detect(
    family: Option<OsFamily>,
    cmdline: &[String],
    boot_files: &[String],
    root: &dyn RootProbe,
) -> FirstBoot {
    let has = |t: &str| cmdline.iter().any(|x| x == t);
    let firstboot_init = cmdline
        .iter()
        .any(|t| t == "init=/usr/lib/raspberrypi-sys-mods/firstboot");
    let cloud_init = root.exists("/usr/bin/cloud-init") || root.exists("/etc/cloud/cloud.cfg");
    let seed = if cloud_init { nocloud_seed(root) } else { None };
    let resize = has("resize") || firstboot_init;
    let mechanism = if firstboot_init {
        Mechanism::RaspiosFirstboot
    } else if cloud_init {
        match (&seed, family) {
            (Some(s), _) if s.starts_with("file:///boot/firmware") => Mechanism::RaspiosCloudInit,
            (Some(s), _) if s == "label=system-boot" => Mechanism::UbuntuCloudInit,
            (None, Some(OsFamily::Ubuntu)) => Mechanism::UbuntuCloudInit,
            _ => Mechanism::CloudInit,
        }
    } else if has("resize") && family == Some(OsFamily::Raspios) {
        Mechanism::RaspiosResize
    } else {
        Mechanism::None
    };
    let mut boot_seed_files: Vec<String> = boot_files
        .iter()
        .filter(|f| SEED_FILES.iter().any(|s| s.eq_ignore_ascii_case(f)))
        .cloned()
        .collect();
    boot_seed_files.sort();
    FirstBoot {
        mechanism,
        resize,
        cloud_init,
        cloud_init_seed: seed,
        boot_seed_files,
        enabled_units: enabled_units(root),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// A root filesystem as a map from path to contents; directories are implied.
    struct MapRoot(BTreeMap<&'static str, &'static str>);

    impl RootProbe for MapRoot {
        fn exists(&self, path: &str) -> bool {
            self.0
                .keys()
                .any(|k| *k == path || k.starts_with(&format!("{path}/")))
        }
        fn read_text(&self, path: &str) -> Option<String> {
            self.0.get(path).map(|s| (*s).to_owned())
        }
        fn list(&self, path: &str) -> Vec<String> {
            let prefix = format!("{path}/");
            let mut v: Vec<String> = self
                .0
                .keys()
                .filter_map(|k| k.strip_prefix(&prefix))
                .map(|rest| rest.split('/').next().unwrap_or(rest).to_owned())
                .collect();
            v.dedup();
            v
        }
    }

    fn tokens(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn detects_each_official_mechanism() {
        let bookworm = MapRoot(BTreeMap::from([(
            "/etc/systemd/system/multi-user.target.wants/userconfig.service",
            "",
        )]));
        let fb = detect(
            Some(OsFamily::Raspios),
            &tokens(
                "root=PARTUUID=1-02 rootwait quiet init=/usr/lib/raspberrypi-sys-mods/firstboot",
            ),
            &["config.txt".into(), "ssh".into()],
            &bookworm,
        );
        assert_eq!(fb.mechanism, Mechanism::RaspiosFirstboot);
        assert!(fb.resize);
        assert_eq!(fb.boot_seed_files, ["ssh"]);
        assert_eq!(fb.enabled_units, ["userconfig.service"]);

        let trixie = MapRoot(BTreeMap::from([
            ("/etc/cloud/cloud.cfg", "x"),
            (
                "/etc/cloud/cloud.cfg.d/99_raspberry-pi.cfg",
                "datasource_list: [ NoCloud, None ]\ndatasource:\n  NoCloud:\n    seedfrom: file:///boot/firmware\n",
            ),
        ]));
        let fb = detect(
            Some(OsFamily::Raspios),
            &tokens("rootwait resize"),
            &[],
            &trixie,
        );
        assert_eq!(fb.mechanism, Mechanism::RaspiosCloudInit);
        assert_eq!(fb.cloud_init_seed.as_deref(), Some("file:///boot/firmware"));

        let ubuntu = MapRoot(BTreeMap::from([
            ("/usr/bin/cloud-init", "x"),
            (
                "/etc/cloud/cloud.cfg.d/99-fake_cloud.cfg",
                "datasource_list: [ NoCloud, None ]\ndatasource:\n  NoCloud:\n    fs_label: system-boot\n",
            ),
        ]));
        let fb = detect(
            Some(OsFamily::Ubuntu),
            &tokens("root=LABEL=writable fixrtc"),
            &[],
            &ubuntu,
        );
        assert_eq!(fb.mechanism, Mechanism::UbuntuCloudInit);
        assert!(!fb.resize);

        let bare = MapRoot(BTreeMap::new());
        assert_eq!(detect(None, &[], &[], &bare).mechanism, Mechanism::None);
        assert_eq!(
            detect(Some(OsFamily::Raspios), &tokens("resize"), &[], &bare).mechanism,
            Mechanism::RaspiosResize
        );
    }
}
