//! Issue 9: what only the base image knows (time zone, locale, keyboard layout, `dtoverlay=`
//! files) is checked by `plan`, `build` and `validate --base`, naming the recipe's
//! file:line:column and field and what the image has instead; good settings build, and the
//! result is read back with debugfs, mtools, e2fsck and systemd-analyze.

use std::path::{Path, PathBuf};
use std::process::Output;

use xtask::fixtures::{self, Fixture, Format};

use crate::support::Piimage;
use crate::support::{debugfs, debugfs_exists, e2fsck_clean, fsck_fat_clean, mtype, run, run_ok};

/// The head of every recipe here; settings follow from line 4.
const HEAD: &str = "cluster: { name: lab }\nnodes: [{ name: n1 }]\noutput: { formats: [img] }\n";

fn base(f: Fixture) -> PathBuf {
    fixtures::fixture_path(f, Format::Raw).expect("fixtures")
}

/// `piimage ARGS` in `dir`, with a cache of its own.
fn piimage(dir: &Path, args: &[&str]) -> Output {
    Piimage::new()
        .current_dir(dir)
        .args(args)
        .quiet()
        .cache_dir(dir.join("cache"))
        .run()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Runs plan, build and validate --base on `r.yaml` in `dir` and checks each fails with
/// status 1, every one of `want` in its error, and no image written.
fn fails_everywhere(dir: &Path, img: &Path, want: &[&str]) {
    let b = img.to_str().unwrap();
    let out = dir.join("out");
    for args in [
        vec!["plan", "r.yaml", "--base", b],
        vec![
            "build",
            "r.yaml",
            "--base",
            b,
            "--out",
            out.to_str().unwrap(),
        ],
        vec!["validate", "r.yaml", "--base", b],
        vec!["validate", "r.yaml", "--base", b, "--skip-secrets"],
    ] {
        let o = piimage(dir, &args);
        let (stdout, stderr) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {stdout}\n{stderr}");
        for w in want {
            assert!(stderr.contains(w), "{args:?}: {w:?} not in\n{stderr}");
        }
        assert!(!stdout.contains("ok: the recipe is valid"), "{stdout}");
        let written: Vec<_> = std::fs::read_dir(&out)
            .map(|d| d.map(|e| e.unwrap().file_name()).collect())
            .unwrap_or_default();
        assert!(written.is_empty(), "{args:?} wrote {written:?}");
    }
}

fn recipe(dir: &Path, settings: &str) {
    std::fs::write(dir.join("r.yaml"), format!("{HEAD}{settings}")).unwrap();
}

#[test]
fn issue9_mistaken_settings_fail_plan_build_and_validate() {
    let img = base(Fixture::RaspiosBookworm);
    let cases: &[(&str, &[&str])] = &[
        (
            "timezone: Europe/Berlinn\n",
            &[
                "r.yaml:4:11: timezone: time zone \"Europe/Berlinn\" is not in the image",
                "did you mean Europe/Berlin?",
            ],
        ),
        (
            "locale: xx_YY.UTF-8\n",
            &[
                "r.yaml:4:9: locale: locale \"xx_YY.UTF-8\" is not one the image can \
                 generate (not in /usr/share/i18n/SUPPORTED); the nearest it has: ",
            ],
        ),
        (
            "locale: en_UD.UTF-8\n",
            &["r.yaml:4:9: locale: ", "did you mean en_US.UTF-8, "],
        ),
        (
            "keyboard: qq\n",
            &[
                "r.yaml:4:11: keyboard: keyboard layout \"qq\" is not in the image (no \
                 /usr/share/X11/xkb/symbols/qq); the nearest it has: ",
            ],
        ),
        (
            "keyboard: { layout: gbb, model: pc105 }\n",
            &["r.yaml:4:21: keyboard.layout: ", "did you mean gb, "],
        ),
        (
            "boot:\n  config_txt:\n    - dtoverlay=\n    - dtoverlay=rpi-poe-plsu,poe_fan_temp0=50000\n",
            &[
                "r.yaml:7:7: boot.config_txt[1]: dtoverlay \"rpi-poe-plsu\": the boot \
                 partition has no overlays/rpi-poe-plsu.dtbo; did you mean rpi-poe-plus?",
            ],
        ),
        (
            // A role's setting, reported where it is written, once for both nodes.
            "roles:\n  node:\n    timezone: Europe/Lodnon\n",
            &[
                "r.yaml:6:15: roles.node.timezone: ",
                "did you mean Europe/London?",
            ],
        ),
    ];
    for (settings, want) in cases {
        let dir = crate::support::tmp();
        recipe(dir.path(), settings);
        fails_everywhere(dir.path(), &img, want);
    }
    // Every problem at once.
    let dir = crate::support::tmp();
    recipe(
        dir.path(),
        "timezone: Europe/Berlinn\nlocale: xx_YY.UTF-8\nkeyboard: qq\n\
         boot: { config_txt: [dtoverlay=rpi-poe-plsu] }\n",
    );
    fails_everywhere(
        dir.path(),
        &img,
        &[
            "4 problems in the recipe:",
            "r.yaml:4:11: timezone:",
            "r.yaml:5:9: locale:",
            "r.yaml:6:11: keyboard:",
            "r.yaml:7:22: boot.config_txt[0]:",
        ],
    );
}

#[test]
fn issue9_image_without_tzdata_is_named() {
    let dir = crate::support::tmp();
    let img = dir.path().join("no-tzdata.img");
    run_ok(
        "cp",
        &[
            "--sparse=always",
            base(Fixture::RaspiosTrixie).to_str().unwrap(),
            img.to_str().unwrap(),
        ],
    );
    let info = fixtures::info(Fixture::RaspiosTrixie);
    let spec = format!("{}?offset={}", img.display(), info.root.offset());
    run_ok(
        "debugfs",
        &["-w", "-R", "unlink /usr/share/zoneinfo", &spec],
    );
    assert!(!debugfs_exists(
        &img,
        info.root.offset(),
        "/usr/share/zoneinfo"
    ));
    recipe(dir.path(), "timezone: Europe/Berlin\n");
    fails_everywhere(
        dir.path(),
        &img,
        &[
            "r.yaml:4:11: timezone: time zone \"Europe/Berlin\": the image has no time zone \
           data (/usr/share/zoneinfo is missing: the package tzdata is not installed)",
        ],
    );
    // Without a time zone in the recipe, the same image is fine.
    recipe(dir.path(), "locale: C.UTF-8\n");
    let o = piimage(
        dir.path(),
        &["validate", "r.yaml", "--base", img.to_str().unwrap()],
    );
    assert!(o.status.success(), "{:?}", text(&o));
}

/// The lines of `text` that are neither empty nor comments.
fn active(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .collect()
}

#[test]
fn issue9_good_settings_build_and_read_back() {
    let dir = crate::support::tmp();
    let d = dir.path();
    // A boot overlay that brings its own .dtbo: the check counts it.
    std::fs::create_dir_all(d.join("boot/overlays")).unwrap();
    std::fs::write(d.join("boot/overlays/lab-sensor.dtbo"), b"\xd0\x0d\xfe\xed").unwrap();
    std::fs::write(
        d.join("r.yaml"),
        "cluster: { name: lab }\n\
         nodes:\n  - name: n1\n  - { name: n2, timezone: UTC }\n\
         output: { formats: [img] }\n\
         timezone: Europe/Berlin\nlocale: en_US.UTF-8\nkeyboard: { layout: de, model: pc105 }\n\
         boot:\n  config_txt:\n    - dtoverlay=rpi-poe-plus\n    - dtoverlay=DISABLE-WIFI\n    - dtoverlay=lab-sensor\n\
         \x20 cmdline: { add: [cgroup_enable=cpuset, cgroup_memory=1, cgroup_enable=memory] }\n\
         overlays: [{ source: boot, target: boot }]\n",
    )
    .unwrap();
    let img = base(Fixture::RaspiosBookworm);
    let b = img.to_str().unwrap();
    let info = fixtures::info(Fixture::RaspiosBookworm);

    // validate --base and plan pass; plan shows the final cmdline line and the locale unit.
    let o = piimage(d, &["validate", "r.yaml", "--base", b]);
    assert!(o.status.success(), "{:?}", text(&o));
    let o = piimage(d, &["plan", "r.yaml", "--base", b, "--node", "n1"]);
    let (plan, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let k3s = " cgroup_enable=cpuset cgroup_memory=1 cgroup_enable=memory";
    assert!(
        plan.lines().any(|l| l
            .starts_with("      + console=serial0,115200 console=tty1 root=PARTUUID=")
            && l.ends_with(k3s)),
        "no final cmdline line ending {k3s:?} in\n{plan}"
    );
    assert!(plan.contains("  edit    root:/etc/locale.gen"), "{plan}");
    assert!(plan.contains("      + en_US.UTF-8 UTF-8\n"), "{plan}");
    assert!(
        plan.contains("  write   root:/etc/systemd/system/piimage-locale-gen.service"),
        "{plan}"
    );

    let out = d.join("out");
    let o = piimage(
        d,
        &[
            "build",
            "r.yaml",
            "--base",
            b,
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{:?}", text(&o));
    let (boot, root) = (info.boot.offset(), info.root.offset());
    for (node, zone) in [("n1", "Europe/Berlin"), ("n2", "UTC")] {
        let img = out.join(format!("lab-{node}.img"));
        e2fsck_clean(&img, root);
        fsck_fat_clean(&img, boot, info.boot.size());
        let cat = |p: &str| debugfs(&img, root, &format!("cat {p}"));
        let stat = |p: &str| debugfs(&img, root, &format!("stat {p}"));
        // /etc/locale.gen: the image's locale and the recipe's, nothing else.
        let gen_file = cat("/etc/locale.gen");
        let mut want: Vec<String> = info
            .l10n
            .locale_gen_enabled
            .iter()
            .map(|l| format!("{l} UTF-8"))
            .collect();
        want.push("en_US.UTF-8 UTF-8".into());
        want.sort();
        assert_eq!(active(&gen_file), want, "{node}");
        assert!(
            gen_file.contains(
                "\n# en_US ISO-8859-1\n# en_US.ISO-8859-15 ISO-8859-15\nen_US.UTF-8 UTF-8\n"
            ),
            "{node}"
        );
        assert_eq!(cat("/etc/default/locale"), "LANG=en_US.UTF-8\n");
        // The unit that generates it on first boot, enabled, and valid for systemd.
        let unit = cat("/etc/systemd/system/piimage-locale-gen.service");
        assert!(unit.contains("ExecStart=/usr/sbin/locale-gen\n"), "{unit}");
        assert!(
            stat("/etc/systemd/system/multi-user.target.wants/piimage-locale-gen.service")
                .contains("Fast link dest: \"/etc/systemd/system/piimage-locale-gen.service\""),
            "{node}"
        );
        let unit_file = d.join(format!("{node}-piimage-locale-gen.service"));
        std::fs::write(&unit_file, &unit).unwrap();
        let v = run("systemd-analyze", &["verify", unit_file.to_str().unwrap()]);
        assert!(v.status.success(), "systemd-analyze verify: {:?}", text(&v));
        // /etc/localtime names the zone, and the zone is a regular file in the image,
        // following the image's own links (UTC -> Etc/UTC).
        let link = stat("/etc/localtime");
        assert!(
            link.contains(&format!("Fast link dest: \"/usr/share/zoneinfo/{zone}\"")),
            "{link}"
        );
        let target = stat(&format!("/usr/share/zoneinfo/{zone}"));
        let file = if zone == "UTC" {
            assert!(target.contains("Fast link dest: \"Etc/UTC\""), "{target}");
            "/usr/share/zoneinfo/Etc/UTC".to_owned()
        } else {
            format!("/usr/share/zoneinfo/{zone}")
        };
        assert!(stat(&file).contains("Type: regular"), "{node}: {file}");
        assert!(cat(&file).starts_with("TZif"), "{node}: {file}");
        assert_eq!(cat("/etc/timezone"), format!("{zone}\n"));
        let kb = cat("/etc/default/keyboard");
        assert!(kb.contains("XKBLAYOUT=\"de\"\n"), "{kb}");
        // The boot partition, read back with mtools.
        let cmdline = String::from_utf8(mtype(&img, boot, "/cmdline.txt")).unwrap();
        assert!(cmdline.ends_with(&format!("{k3s}\n")), "{cmdline}");
        assert_eq!(cmdline.lines().count(), 1, "{cmdline}");
        let tokens: Vec<&str> = cmdline.split_whitespace().collect();
        for t in [
            "cgroup_enable=cpuset",
            "cgroup_enable=memory",
            "cgroup_memory=1",
            "console=tty1",
        ] {
            assert_eq!(
                tokens.iter().filter(|x| **x == t).count(),
                1,
                "{t}: {cmdline}"
            );
        }
        // Everything the base had stays, in order, before the additions, but for the first-boot
        // tokens piimage disarms (Bookworm's `init=`, Trixie's `resize`; docs/first-boot.md).
        let base_tokens: Vec<&str> = info
            .cmdline
            .split_whitespace()
            .filter(|t| !t.starts_with("init=") && *t != "resize")
            .collect();
        assert_eq!(tokens.len(), base_tokens.len() + 3, "{cmdline}");
        // (The root= token names the node's own disk id, not the base's.)
        let key = |t: &str| {
            t.split_once("=PARTUUID=")
                .map_or(t.to_owned(), |(k, _)| k.to_owned())
        };
        assert_eq!(
            tokens[..base_tokens.len()]
                .iter()
                .map(|t| key(t))
                .collect::<Vec<_>>(),
            base_tokens.iter().map(|t| key(t)).collect::<Vec<_>>(),
            "{cmdline}"
        );
        let config = String::from_utf8(mtype(&img, boot, "/config.txt")).unwrap();
        for l in [
            "dtoverlay=rpi-poe-plus\n",
            "dtoverlay=DISABLE-WIFI\n",
            "dtoverlay=lab-sensor\n",
        ] {
            assert!(config.contains(l), "{l} not in\n{config}");
        }
        assert_eq!(
            mtype(&img, boot, "/overlays/lab-sensor.dtbo"),
            b"\xd0\x0d\xfe\xed"
        );
    }
}

#[test]
fn issue9_locale_generated_on_first_boot_only_when_the_image_lacks_it() {
    // (fixture, locale, unit expected, locale.gen diff): the image's own locale (enabled in
    // locale.gen on Raspberry Pi OS, from the language pack on Ubuntu) and C.UTF-8 are
    // already generated.
    let raspios = fixtures::info(Fixture::RaspiosTrixie).l10n;
    let ubuntu = fixtures::info(Fixture::Ubuntu2404).l10n;
    assert_eq!(raspios.locale_gen_enabled, ["en_GB.UTF-8"]);
    assert_eq!(ubuntu.language_pack, ["en_US.UTF-8"]);
    assert!(ubuntu.locale_gen_enabled.is_empty());
    let cases = [
        (Fixture::RaspiosTrixie, "en_GB.UTF-8", false, None),
        (Fixture::RaspiosTrixie, "C.UTF-8", false, None),
        (
            Fixture::RaspiosTrixie,
            "de_DE.UTF-8",
            true,
            Some("+ de_DE.UTF-8 UTF-8\n"),
        ),
        (
            Fixture::Ubuntu2404,
            "en_US.UTF-8",
            false,
            Some("+ en_US.UTF-8 UTF-8\n"),
        ),
        (
            Fixture::Ubuntu2404,
            "fr_FR.UTF-8",
            true,
            Some("+ fr_FR.UTF-8 UTF-8\n"),
        ),
    ];
    for (fixture, locale, unit, gen_line) in cases {
        let dir = crate::support::tmp();
        recipe(dir.path(), &format!("locale: {locale}\n"));
        let img = base(fixture);
        let o = piimage(
            dir.path(),
            &["plan", "r.yaml", "--base", img.to_str().unwrap()],
        );
        let (plan, err) = text(&o);
        assert!(o.status.success(), "{locale}: {err}");
        assert_eq!(
            plan.contains("piimage-locale-gen.service"),
            unit,
            "{fixture:?} {locale}:\n{plan}"
        );
        // The locale.gen diff: the line uncommented, or nothing changed.
        match gen_line {
            Some(l) => assert!(plan.contains(l), "{fixture:?} {locale}:\n{plan}"),
            None => assert!(!plan.contains(" UTF-8\n      ..."), "{locale}:\n{plan}"),
        }
    }
}

/// `(section, line)` of every active line of a `config.txt` (`None` before the first header).
fn config_lines(text: &str) -> Vec<(Option<String>, String)> {
    let mut section = None;
    let mut out = Vec::new();
    for l in active(text) {
        let l = l.trim();
        match l.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            Some(name) => section = Some(name.to_owned()),
            None => out.push((section.clone(), l.to_owned())),
        }
    }
    out
}

#[test]
fn issue11_hardware_settings_become_config_txt_lines() {
    let dir = crate::support::tmp();
    let d = dir.path();
    std::fs::write(
        d.join("r.yaml"),
        "cluster: { name: lab }\n\
         output: { formats: [img], medium: nvme }\n\
         nodes:\n\
         \x20 - name: n1\n\
         \x20   hardware:\n\
         \x20     poe_hat: poe_plus\n\
         \x20     poe_fan: [{ temp: 50 }, { temp: 60, hysteresis: 4 }]\n\
         \x20     wifi: false\n\
         \x20     bluetooth: false\n\
         \x20     pcie_gen: 3\n\
         \x20 - { name: n2, hardware: { wifi: true } }\n",
    )
    .unwrap();
    let img = base(Fixture::RaspiosBookworm);
    let info = fixtures::info(Fixture::RaspiosBookworm);
    let out = d.join("out");
    let o = piimage(
        d,
        &[
            "build",
            "r.yaml",
            "--base",
            img.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{:?}", text(&o));
    let base_config = String::from_utf8(mtype(&img, info.boot.offset(), "/config.txt")).unwrap();
    let base_lines = config_lines(&base_config);
    let all = |l: &str| (Some("all".to_owned()), l.to_owned());
    let pi5 = |l: &str| (Some("pi5".to_owned()), l.to_owned());
    type Lines = Vec<(Option<String>, String)>;
    let wants: [(&str, Lines); 2] = [
        (
            "n1",
            vec![
                all(
                    "dtoverlay=rpi-poe-plus,poe_fan_temp0=50000,poe_fan_temp0_hyst=2000,\
                     poe_fan_temp1=60000,poe_fan_temp1_hyst=4000",
                ),
                all("dtoverlay=disable-wifi"),
                all("dtoverlay=disable-bt"),
                pi5("dtparam=pciex1"),
                pi5("dtparam=pciex1_gen=3"),
            ],
        ),
        // Wi-Fi on adds nothing; the NVMe medium turns the Pi 5's PCIe connector on.
        ("n2", vec![pi5("dtparam=pciex1")]),
    ];
    for (node, want) in wants {
        let img = out.join(format!("lab-{node}.img"));
        fsck_fat_clean(&img, info.boot.offset(), info.boot.size());
        let config = String::from_utf8(mtype(&img, info.boot.offset(), "/config.txt")).unwrap();
        let lines = config_lines(&config);
        // The image's own lines stay, in order; the hardware's follow them.
        assert_eq!(
            &lines[..base_lines.len()],
            &base_lines[..],
            "{node}:\n{config}"
        );
        assert_eq!(&lines[base_lines.len()..], &want[..], "{node}:\n{config}");
    }

    // Mistakes are recipe problems at their line and field.
    let cases: &[(&str, &str)] = &[
        (
            "hardware: { poe_fan: [{ temp: 50 }] }\n",
            "r.yaml:4:22: hardware.poe_fan: poe_fan sets the fan of a PoE HAT",
        ),
        (
            "hardware: { poe_hat: poe, poe_fan: [{ temp: 60 }, { temp: 55 }] }\n",
            "r.yaml:4:59: hardware.poe_fan[1].temp: 55 °C: each fan step is hotter than the one \
             before it",
        ),
        (
            "hardware: { poe_hat: poe, poe_fan: [{ temp: 50000 }] }\n",
            "r.yaml:4:45: hardware.poe_fan[0].temp: 50000 °C: a fan step is between 20 and 100 °C",
        ),
        (
            "hardware: { poe_hat: poe, poe_fan: [{ temp: 50, hysteresis: 30 }] }\n",
            "r.yaml:4:61: hardware.poe_fan[0].hysteresis: hysteresis 30 °C: at most 20 °C",
        ),
        (
            "hardware: { poe_hat: poe, poe_fan: [{temp: 30}, {temp: 40}, {temp: 50}, {temp: 60}, {temp: 70}] }\n",
            "r.yaml:4:36: hardware.poe_fan: the PoE HAT fan has 1 to 4 steps (this lists 5)",
        ),
        (
            "hardware: { pcie_gen: 4 }\n",
            "r.yaml:4:23: hardware.pcie_gen: pcie_gen 4: the Raspberry Pi 5's PCIe connector",
        ),
        (
            "hardware: { poe_hat: poe_plus_plus }\n",
            "r.yaml:4:22: hardware.poe_hat: unknown variant `poe_plus_plus`",
        ),
    ];
    for (settings, want) in cases {
        let dir = crate::support::tmp();
        recipe(dir.path(), settings);
        let o = piimage(dir.path(), &["validate", "r.yaml"]);
        let (_, stderr) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{settings}: {stderr}");
        assert!(
            stderr.contains(want),
            "{settings}: {want:?} not in\n{stderr}"
        );
    }
}
