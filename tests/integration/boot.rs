//! First boot, proven (issue 9): a node built by piimage is booted under qemu, its OS's own
//! first-boot machinery runs over what piimage baked, and every setting of the recipe is checked
//! on the running node, before and after a reboot, from a copy of the output directory (as a
//! downloaded CI artifact would be) with the generated `ssh_config`, `known_hosts` and inventory.
//!
//! The bases are the bootable images of `cargo xtask bootable` (real Debian trees laid out like
//! the official images, with their first-boot steps imitated; tests/fixtures/INDEX.md says what
//! they imitate and what they do not). They need root, mmdebstrap and qemu: without them the
//! tests say so and pass, except under CI (`CI=true`), where they fail.

mod vm;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use xtask::bootable::{Bootable, Flavour};

use crate::support::Piimage;
use crate::support::{e2fsck_clean, run_ok, sh};
use vm::{Reached, Ssh, Vm, boot_files, free_port, wait_for_ssh};

/// Generous bound on one boot, SSH login included (TCG on 2 shared cores: usually 1-3 minutes).
const BOOT_LIMIT: Duration = Duration::from_secs(15 * 60);

/// How many times a boot may end in a reboot before SSH answers (Bookworm's firstboot reboots
/// once when it is left armed).
const MAX_BOOTS: usize = 3;

/// The bootable base of `flavour`, or `None` (with the reason printed) when this machine cannot
/// build or boot one and this is not CI.
fn base(flavour: Flavour) -> Option<Bootable> {
    if let Some(missing) = xtask::bootable::prerequisites() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "boot tests need {missing} under CI (ci/test.sh installs them)"
        );
        eprintln!(
            "skipping the {} boot test: missing {missing}",
            flavour.name()
        );
        return None;
    }
    let (b, _) = xtask::bootable::bootable(flavour, false).expect("building the bootable base");
    Some(b)
}

struct Case {
    flavour: Flavour,
    /// The image's default user, and what the recipe does with it.
    default_user: Option<&'static str>,
    /// A locale the recipe asks for (generated on first boot when the image lacks it).
    locale: &'static str,
    /// Whether the image runs cloud-init.
    cloud_init: bool,
    /// Whether partitions are named by PARTUUID (Raspberry Pi OS) rather than labels (Ubuntu).
    partuuid: bool,
}

fn case(flavour: Flavour) -> Case {
    match flavour {
        Flavour::Bookworm => Case {
            flavour,
            default_user: Some("pi"),
            locale: "en_GB.UTF-8",
            cloud_init: false,
            partuuid: true,
        },
        // Not generated in the image (it has en_GB): piimage's locale-gen unit makes it.
        Flavour::Trixie => Case {
            flavour,
            default_user: Some("pi"),
            locale: "en_US.UTF-8",
            cloud_init: true,
            partuuid: true,
        },
        Flavour::Ubuntu => Case {
            flavour,
            default_user: None,
            locale: "en_US.UTF-8",
            cloud_init: true,
            partuuid: false,
        },
    }
}

/// carol's password, baked into `/etc/shadow`: cloud-init's first boot must leave it as it is
/// (the seed on FAT carries no hash; `openssl passwd -6 -salt bootsalt carol-boot-pw`).
const CAROL_HASH: &str = "$6$bootsalt$QUErHaYHIsd8RMdVvhmLe1UrFjfiTq6tH56iPHu.NZPqJP9mi6mrVKi/ZI3Rtr8PC1fNJdkQfcB0Z4kVZy/Gn/";

/// A first-boot step of the presets' kind (issue 16), written where `dir` says: the presets' own
/// runner (`overlays/presets/firstboot`) and a unit shaped like theirs, around a command that
/// fails on its first attempt and succeeds on its second. It needs no network, so the boot
/// proves the mechanism every preset's install relies on: run at boot, retried, logged to the
/// journal, a marker left, never run again.
fn preset_step_overlay(dir: &Path) {
    let unit = dir.join("etc/systemd/system/piimage-boottest.service");
    std::fs::create_dir_all(unit.parent().unwrap()).unwrap();
    std::fs::write(
        &unit,
        "[Unit]\n\
         Description=A first-boot step like the presets' installs (piimage boot test)\n\
         Wants=network-online.target\n\
         After=network-online.target\n\
         ConditionPathExists=!/var/lib/piimage-presets/boottest.done\n\
         \n\
         [Service]\n\
         Type=simple\n\
         RemainAfterExit=yes\n\
         ExecStart=/usr/local/sbin/piimage-preset-step boottest /usr/local/lib/piimage-presets/boottest\n\
         SyslogIdentifier=boottest\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n",
    )
    .unwrap();
    let step = dir.join("usr/local/lib/piimage-presets/boottest");
    std::fs::create_dir_all(step.parent().unwrap()).unwrap();
    std::fs::write(
        &step,
        "#!/bin/sh\n\
         # Fails once (as an install does before the network is up), then succeeds.\n\
         mkdir -p /var/lib/boottest\n\
         echo attempt >>/var/lib/boottest/attempts\n\
         [ -e /var/lib/boottest/failed-once ] && exit 0\n\
         touch /var/lib/boottest/failed-once\n\
         exit 1\n",
    )
    .unwrap();
}

/// The preset-style step of [`preset_step_overlay`] ran at first boot: two attempts (the first
/// failed and was retried), the marker, the runner's lines in the journal.
fn check_preset_step(c: &Case, ssh: &Ssh<'_>) {
    let name = c.flavour.name();
    let marker = "/var/lib/piimage-presets/boottest.done";
    // The retry waits 10 s; allow for a slow emulated boot.
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    while !ssh.run(&format!("test -e {marker}")).status.success() {
        assert!(
            std::time::Instant::now() < deadline,
            "{name}: the preset-style first-boot step left no marker:\n{}",
            ssh.ok("sudo -n journalctl --no-pager -u piimage-boottest; systemctl status piimage-boottest || true")
        );
        std::thread::sleep(Duration::from_secs(3));
    }
    assert_eq!(
        ssh.ok("cat /var/lib/boottest/attempts"),
        "attempt\nattempt\n",
        "{name}: one failed attempt, one retry"
    );
    let journal = ssh.ok("sudo -n journalctl --no-pager -o cat -u piimage-boottest");
    for line in [
        "boottest: attempt 1: /usr/local/lib/piimage-presets/boottest",
        "boottest: attempt 1 failed; next one in 10s",
        "boottest: attempt 2: /usr/local/lib/piimage-presets/boottest",
        "boottest: done; /var/lib/piimage-presets/boottest.done written",
    ] {
        assert!(
            journal.contains(line),
            "{name}: {line:?} not in the journal:\n{journal}"
        );
    }
}

/// After a reboot the step did not run again: its unit's condition (the marker) was false.
fn check_preset_step_done(c: &Case, ssh: &Ssh<'_>) {
    let name = c.flavour.name();
    assert_eq!(
        ssh.ok("cat /var/lib/boottest/attempts"),
        "attempt\nattempt\n",
        "{name}: the step ran again after the reboot"
    );
    assert_eq!(
        ssh.ok("systemctl show -P ConditionResult piimage-boottest.service")
            .trim(),
        "no",
        "{name}: the step's unit was not skipped by its marker"
    );
}

/// The two-node recipe every flavour is built with. Node addresses are in qemu's user-network
/// subnet, so the static address of node-a is the one qemu forwards SSH to.
fn recipe(c: &Case, pubkey: &str) -> String {
    let default_user = match c.default_user {
        Some(_) => "default_user: { rename: admin }\n",
        None => "",
    };
    format!(
        "cluster: {{ name: boot, domain: boot.test }}\n\
         seed: boot-test-seed\n\
         output: {{ dir: out, name: \"{{node}}\", formats: [img] }}\n\
         {default_user}\
         users:\n\
         \x20 - name: admin\n\
         \x20   gecos: Cluster administrator\n\
         \x20   groups: [adm, sudo]\n\
         \x20   sudo: nopassword\n\
         \x20   ssh_authorized_keys: [\"{pubkey}\"]\n\
         \x20 - name: carol\n\
         \x20   groups: [users]\n\
         \x20   password: \"{CAROL_HASH}\"\n\
         \x20   ssh_authorized_keys: [\"{pubkey}\"]\n\
         ssh: {{ enable: true, password_authentication: false, permit_root_login: false, host_keys: generate }}\n\
         timezone: Europe/Berlin\n\
         locale: {locale}\n\
         keyboard: de\n\
         network:\n\
         \x20 interfaces:\n\
         \x20   eth0: {{ gateway: 10.0.2.2, dns: [10.0.2.3] }}\n\
         overlays:\n\
         \x20 - {runner}\n\
         \x20 - source: step\n\
         \x20   rules: [{{ glob: \"/usr/local/lib/piimage-presets/*\", mode: \"0755\" }}]\n\
         services: {{ enable: [piimage-boottest.service] }}\n\
         nodes:\n\
         \x20 - {{ name: node-a, address: 10.0.2.15/24 }}\n\
         \x20 - {{ name: node-b, address: 10.0.2.16/24 }}\n",
        locale = c.locale,
        runner = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("overlays/presets/firstboot")
            .display(),
    )
}

/// The MBR disk id of `disk` as sfdisk reads it (8 lowercase hex digits).
fn disk_id(disk: &Path) -> String {
    let dump = run_ok("sfdisk", &["--dump", disk.to_str().unwrap()]);
    let id = dump
        .lines()
        .find_map(|l| l.strip_prefix("label-id: 0x"))
        .unwrap_or_else(|| panic!("no label-id in:\n{dump}"));
    id.trim().to_owned()
}

/// Boots `disk` until SSH answers, following reboots made by first-boot scripts.
fn boot(
    b: &Bootable,
    disk: &Path,
    work: &Path,
    ssh: &mut Ssh<'_>,
    label: &str,
) -> (Vm, Vec<String>) {
    let mut cmdlines = Vec::new();
    for n in 0..MAX_BOOTS {
        let files = boot_files(disk, b.boot_offset, &b.kernel, &b.initrd, work);
        cmdlines.push(files.cmdline.clone());
        let port = free_port();
        ssh.port = port;
        let console = work.join(format!("console-{label}-{n}.log"));
        let mut vm = Vm::start(disk, &files, &console, port);
        match wait_for_ssh(&mut vm, ssh, BOOT_LIMIT) {
            Reached::Ready => return (vm, cmdlines),
            Reached::Exited(status) => {
                eprintln!(
                    "{}: boot {n} ({label}) ended ({status}) before SSH answered",
                    b.flavour.name()
                );
            }
        }
    }
    panic!(
        "{}: no SSH login after {MAX_BOOTS} boots; command lines seen: {cmdlines:?}",
        b.flavour.name()
    );
}

/// Every assertion about the running node that holds on every boot.
fn check_running(c: &Case, ssh: &Ssh<'_>, node_disk_id: &str) {
    let name = c.flavour.name();
    assert_eq!(ssh.ok("hostname").trim(), "node-a", "{name}: hostname");
    // /etc/hosts names the other node (by short name and FQDN) and the node itself.
    let other = ssh.ok("getent hosts node-b");
    assert!(other.starts_with("10.0.2.16"), "{name}: node-b is {other}");
    assert!(
        ssh.ok("getent hosts node-b.boot.test")
            .starts_with("10.0.2.16"),
        "{name}: FQDN of node-b"
    );
    // The static address of the recipe is the node's.
    let addr = ssh.ok("ip -4 -o addr show dev eth0");
    assert!(addr.contains("inet 10.0.2.15/24"), "{name}: eth0 is {addr}");
    // Users, groups, sudo.
    assert_eq!(ssh.ok("id -un").trim(), "admin");
    let groups = ssh.ok("id -nG admin");
    for g in ["adm", "sudo"] {
        assert!(
            groups.split_whitespace().any(|x| x == g),
            "{name}: admin's groups are {groups}"
        );
    }
    assert_eq!(
        ssh.ok("sudo -n id -u").trim(),
        "0",
        "{name}: passwordless sudo"
    );
    let shadow = ssh.ok("sudo -n getent shadow carol");
    assert_eq!(
        shadow.split(':').nth(1),
        Some(CAROL_HASH),
        "{name}: carol's baked password after first boot: {shadow}"
    );
    let carol = ssh.ok("id -nG carol");
    assert!(
        !carol.split_whitespace().any(|g| g == "sudo"),
        "{name}: carol must not be in sudo: {carol}"
    );
    if let Some(default) = c.default_user {
        // Renamed: admin has the default user's uid and home, and the old name is gone.
        assert_eq!(ssh.ok("id -u admin").trim(), "1000", "{name}: admin's uid");
        let gone = ssh.run(&format!("getent passwd {default}"));
        assert_eq!(
            gone.status.code(),
            Some(2),
            "{name}: {default} still exists: {}",
            String::from_utf8_lossy(&gone.stdout)
        );
    } else {
        // cloud-init must not have created the distribution's default user.
        let ubuntu = ssh.run("getent passwd ubuntu");
        assert_eq!(
            ubuntu.status.code(),
            Some(2),
            "{name}: cloud-init created the default user: {}",
            String::from_utf8_lossy(&ubuntu.stdout)
        );
    }
    // Password logins are refused by the server, whatever the client offers.
    let pw = ssh
        .command(
            &[
                "-o",
                "PubkeyAuthentication=no",
                "-o",
                "PreferredAuthentications=password,keyboard-interactive",
            ],
            "true",
        )
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&pw.stderr);
    assert!(
        !pw.status.success() && err.contains("Permission denied (publickey)"),
        "{name}: password login not refused as expected: {err}"
    );
    let effective = ssh.ok("sudo -n sshd -T");
    for line in ["passwordauthentication no", "permitrootlogin no"] {
        assert!(
            effective.lines().any(|l| l == line),
            "{name}: sshd -T lacks `{line}`"
        );
    }
    // Time zone, locale and keyboard in effect.
    assert_eq!(
        ssh.ok("timedatectl show -p Timezone --value").trim(),
        "Europe/Berlin",
        "{name}: time zone"
    );
    let zone = ssh.ok("date +%Z");
    assert!(
        matches!(zone.trim(), "CET" | "CEST"),
        "{name}: date says {zone}"
    );
    let lang = ssh.ok("echo $LANG");
    assert_eq!(lang.trim(), c.locale, "{name}: LANG of a login");
    let generated = ssh.ok("locale -a");
    let want = c.locale.replace("UTF-8", "utf8");
    assert!(
        generated.lines().any(|l| l == want),
        "{name}: {want} is not generated: {generated}"
    );
    let ok = ssh.ok("LC_ALL=$LANG locale 2>&1 >/dev/null");
    assert!(ok.is_empty(), "{name}: locale complains: {ok}");
    let kb = ssh.ok("localectl status");
    assert!(
        kb.lines().any(|l| l.trim() == "X11 Layout: de"),
        "{name}: keyboard: {kb}"
    );
    // The boot partition is mounted, by the node's own identity.
    assert_eq!(
        ssh.ok("findmnt -no SOURCE /boot/firmware").trim(),
        "/dev/vda1",
        "{name}: /boot/firmware"
    );
    let fstab_src = ssh.ok("findmnt --fstab -no SOURCE /boot/firmware");
    let cmdline = ssh.ok("cat /proc/cmdline");
    if c.partuuid {
        assert_eq!(
            fstab_src.trim(),
            format!("PARTUUID={node_disk_id}-01"),
            "{name}: fstab names the boot partition"
        );
        assert!(
            cmdline.contains(&format!("root=PARTUUID={node_disk_id}-02")),
            "{name}: /proc/cmdline is {cmdline}"
        );
        assert_eq!(
            ssh.ok("sudo -n blkid -s PTUUID -o value /dev/vda").trim(),
            node_disk_id,
            "{name}: the disk id on the running node"
        );
    } else {
        assert_eq!(fstab_src.trim(), "LABEL=system-boot", "{name}: fstab");
        assert!(cmdline.contains("root=LABEL=writable"), "{name}: {cmdline}");
    }
    // cloud-init finished without error (or is not installed), and nothing failed.
    if c.cloud_init {
        // `done` with no error. Exit 2 ("degraded done", recoverable errors) is accepted only
        // for deprecations of the image's own datasource configuration: Ubuntu's `fs_label`
        // (deprecated since cloud-init 24.3), which the official image ships.
        let status = ssh.run("cloud-init status --wait --long");
        let text = String::from_utf8_lossy(&status.stdout);
        let recoverable: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.starts_with("recoverable_errors:"))
            .filter(|l| l.trim_start().starts_with("- "))
            .collect();
        let only_image_deprecations =
            status.status.code() == Some(2) && recoverable.iter().all(|l| l.contains("fs_label"));
        assert!(
            (status.status.success() || only_image_deprecations)
                && text.contains("status: done")
                && text.contains("errors: []"),
            "{name}: cloud-init ({}):\n{text}\n{}",
            status.status,
            ssh.ok(
                "sudo -n grep -E 'WARNING|ERROR|Traceback|DEPRECAT' /var/log/cloud-init.log || true"
            )
        );
    } else {
        assert!(!ssh.run("command -v cloud-init").status.success());
    }
    let state = ssh.run("systemctl is-system-running --wait");
    let failed = ssh.ok("systemctl --failed --no-legend --plain");
    assert!(
        failed.trim().is_empty(),
        "{name}: failed units:\n{failed}\n(system state: {})",
        String::from_utf8_lossy(&state.stdout)
    );
    assert_eq!(
        String::from_utf8_lossy(&state.stdout).trim(),
        "running",
        "{name}: system state"
    );
}

/// The root partition reaches the end of the (larger) disk, and its filesystem fills it.
fn check_grown(c: &Case, ssh: &Ssh<'_>, disk_bytes: u64) {
    let name = c.flavour.name();
    let part = ssh.ok("cat /sys/class/block/vda2/start /sys/class/block/vda2/size");
    let v: Vec<u64> = part
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    let end = (v[0] + v[1]) * 512;
    assert!(
        end <= disk_bytes && disk_bytes - end < 1 << 20,
        "{name}: root partition ends at {end}, the disk at {disk_bytes}"
    );
    let fs = ssh.ok("findmnt -bno SIZE /");
    let fs: u64 = fs.trim().parse().unwrap();
    assert!(
        fs > v[1] * 512 * 9 / 10,
        "{name}: root filesystem is {fs} bytes in a {} byte partition",
        v[1] * 512
    );
}

fn ansible_ping(dir: &Path, port: u16, key: &Path) {
    let out = Command::new("ansible")
        .current_dir(std::env::temp_dir())
        .arg("-i")
        .arg(dir.join("inventory.yaml"))
        .args(["node-a", "-m", "ping", "-e", "ansible_host=127.0.0.1"])
        .arg("-e")
        .arg(format!("ansible_port={port}"))
        .arg("--private-key")
        .arg(key)
        .env_remove("ANSIBLE_HOST_KEY_CHECKING")
        .output()
        .expect("running ansible (ci/test.sh installs ansible-core)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("\"ping\": \"pong\""),
        "ansible ping through the generated inventory failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn first_boot(flavour: Flavour) {
    let Some(b) = base(flavour) else { return };
    let c = case(flavour);
    let name = flavour.name();
    let tmp = crate::support::tmp();
    let work = tmp.path();
    // The login key, and the recipe.
    let key = work.join("id_ed25519");
    run_ok(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "boot-test",
            "-f",
            key.to_str().unwrap(),
        ],
    );
    let pubkey = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let build = work.join("build");
    std::fs::create_dir(&build).unwrap();
    std::fs::write(build.join("boot.yaml"), recipe(&c, pubkey.trim())).unwrap();
    preset_step_overlay(&build.join("step"));
    let cache = work.join("cache");
    let (mut pi, _pi_dirs) = Piimage::new().command();
    let out = pi
        .current_dir(&build)
        .args(["build", "boot.yaml", "--quiet", "--base"])
        .arg(&b.image)
        .arg("--cache-dir")
        .arg(&cache)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name}: piimage build failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The output directory moves, as a downloaded CI artifact would: the build's is gone.
    let handoff = work.join("downloaded");
    sh(
        work,
        &format!(
            "cp -a '{}' '{}'",
            build.join("out").display(),
            handoff.display()
        ),
    );
    std::fs::remove_dir_all(build.join("out")).unwrap();
    let _ = std::fs::remove_dir_all(&cache);

    // The disk is larger than the image, as a card is.
    let disk = work.join("disk.img");
    sh(
        work,
        &format!(
            "cp --sparse=always '{}' '{}' && truncate -s +1G '{}'",
            handoff.join("node-a.img").display(),
            disk.display(),
            disk.display()
        ),
    );
    let disk_bytes = std::fs::metadata(&disk).unwrap().len();
    let node_id = disk_id(&disk);
    if c.partuuid {
        assert_ne!(node_id, b.disk_id, "{name}: the node has its own disk id");
    }

    let mut ssh = Ssh {
        dir: &handoff,
        node: "node-a",
        port: 0,
        key: &key,
    };
    let (vm, cmdlines) = boot(&b, &disk, work, &mut ssh, "first");
    assert_eq!(
        cmdlines.len(),
        1,
        "{name}: the first boot rebooted before SSH answered (command lines {cmdlines:?})"
    );
    check_running(&c, &ssh, &node_id);
    check_grown(&c, &ssh, disk_bytes);
    check_preset_step(&c, &ssh);
    ansible_ping(&handoff, ssh.port, &key);
    let instance = c
        .cloud_init
        .then(|| ssh.ok("cat /var/lib/cloud/data/instance-id"));

    // Reboot: the same host key (strict checking again), disk id and settings.
    let _ = ssh.run("sudo -n systemctl reboot");
    let mut vm = vm;
    assert!(
        vm.wait_exit(BOOT_LIMIT).is_some(),
        "{name}: the node did not reboot\n{}",
        vm.console_tail(40)
    );
    drop(vm);
    let (vm, _) = boot(&b, &disk, work, &mut ssh, "reboot");
    check_running(&c, &ssh, &node_id);
    check_preset_step_done(&c, &ssh);
    if let Some(before) = instance {
        assert_eq!(
            ssh.ok("cat /var/lib/cloud/data/instance-id"),
            before,
            "{name}: cloud-init saw a new instance"
        );
    }
    let _ = ssh.run("sudo -n systemctl poweroff");
    let mut vm = vm;
    let _ = vm.wait_exit(Duration::from_secs(120));
    drop(vm);
    assert_eq!(disk_id(&disk), node_id, "{name}: disk id after the reboots");
    e2fsck_clean(&disk, b.root_offset);
}

#[test]
fn issue9_bookworm_first_boot_keeps_baked_settings() {
    first_boot(Flavour::Bookworm);
}

#[test]
fn issue9_trixie_first_boot_keeps_baked_settings() {
    first_boot(Flavour::Trixie);
}

#[test]
fn issue9_ubuntu_first_boot_keeps_baked_settings() {
    first_boot(Flavour::Ubuntu);
}

#[test]
fn kernel_cmdline_keeps_the_node_tokens() {
    assert_eq!(
        vm::kernel_cmdline(
            "console=serial0,115200 console=tty1 root=PARTUUID=0a0b0c0d-02 rootwait quiet"
        ),
        "root=PARTUUID=0a0b0c0d-02 rootwait quiet console=ttyS0,115200 net.ifnames=0 panic=-1"
    );
}
