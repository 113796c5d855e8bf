//! `piimage build` end to end on the fixtures, checked with the real tools.

use std::path::{Path, PathBuf};

use xtask::fixtures::{self, Fixture, Format};

use crate::support::{
    Piimage, debugfs, debugfs_exists, e2fsck_clean, fsck_fat_clean, mtype, run, run_ok, sh,
};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn piimage(args: &[&str], envs: &[(&str, &str)]) -> std::process::Output {
    Piimage::new()
        .args(args)
        .quiet()
        .private_cache()
        .current_dir(repo())
        .envs(envs)
        .run()
}

fn build_ok(args: &[&str], envs: &[(&str, &str)]) {
    let out = piimage(args, envs);
    assert!(
        out.status.success(),
        "build {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn unxz(path: &Path) -> PathBuf {
    let raw = path.with_extension("");
    sh(
        path.parent().unwrap(),
        &format!("xz -dkc '{}' > '{}'", path.display(), raw.display()),
    );
    raw
}

/// A recipe next to the shipped ones (so their relative paths work) that adds a seed.
fn seeded(name: &str, extends: &str) -> PathBuf {
    let p = repo()
        .join("target")
        .join(format!("test-{name}-{}.yaml", std::process::id()));
    std::fs::write(
        &p,
        format!("extends: ../recipes/{extends}\nseed: {{ env: PIIMAGE_TEST_SEED }}\n"),
    )
    .unwrap();
    p
}

/// The worker recipe built on bookworm for worker-01 and worker-02, twice with the same seed;
/// built once and shared by the `worker_bookworm_*` tests, which only read it.
struct WorkerBuild {
    /// The first build's output directory.
    out: PathBuf,
    /// The second build's output directory.
    again: PathBuf,
    /// worker-01's image, decompressed outside `out`.
    img: PathBuf,
    info: xtask::fixtures::FixtureInfo,
}

fn worker_build() -> &'static WorkerBuild {
    static BUILD: std::sync::OnceLock<WorkerBuild> = std::sync::OnceLock::new();
    BUILD.get_or_init(|| {
        // Under cargo's per-target scratch directory, made anew by each test run.
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("build-worker-bookworm");
        std::fs::remove_dir_all(&dir).ok();
        let (out, again, raw) = (dir.join("out"), dir.join("again"), dir.join("raw"));
        for d in [&out, &again, &raw] {
            std::fs::create_dir_all(d).unwrap();
        }
        let base = fixtures::fixture_path(Fixture::RaspiosBookworm, Format::Xz).unwrap();
        let recipe = seeded("worker", "worker.yaml");
        for o in [&out, &again] {
            let args = [
                "build",
                recipe.to_str().unwrap(),
                "--base",
                base.to_str().unwrap(),
                "--out",
                o.to_str().unwrap(),
                "--node",
                "worker-01",
                "--node",
                "worker-02",
            ];
            build_ok(&args, &[("PIIMAGE_TEST_SEED", "s3cret")]);
        }
        std::fs::remove_file(&recipe).ok();
        let img = raw.join("pico-worker-01.img");
        sh(
            &raw,
            &format!(
                "xz -dkc '{}' > '{}'",
                out.join("pico-worker-01.img.xz").display(),
                img.display()
            ),
        );
        WorkerBuild {
            out,
            again,
            img,
            info: fixtures::info(Fixture::RaspiosBookworm),
        }
    })
}

#[test]
fn worker_bookworm_filesystems_are_clean_and_name_the_node() {
    let w = worker_build();
    let (img, info) = (&w.img, &w.info);
    let (boot, root) = (info.boot.offset(), info.root.offset());
    e2fsck_clean(img, root);
    fsck_fat_clean(img, boot, info.boot.size());
    let cat = |p: &str| debugfs(img, root, &format!("cat {p}"));
    assert_eq!(cat("/etc/hostname"), "worker-01\n");
    let hosts = cat("/etc/hosts");
    for n in ["gw", "worker-01", "worker-08"] {
        assert!(
            hosts.contains(&format!("{n}.pico.lan {n}\n")),
            "{n} missing from\n{hosts}"
        );
    }
    assert!(
        hosts.contains("127.0.1.1\tworker-01.pico.lan worker-01\n"),
        "{hosts}"
    );
}

#[test]
fn worker_bookworm_pi_became_admin_with_the_shipped_key() {
    let w = worker_build();
    let (img, info) = (&w.img, &w.info);
    let root = info.root.offset();
    let cat = |p: &str| debugfs(img, root, &format!("cat {p}"));
    // The default user pi became admin (uid 1000), with the shipped key; pi is gone.
    let passwd = cat("/etc/passwd");
    assert!(passwd.contains("\nadmin:x:1000:1000:"), "{passwd}");
    assert!(!passwd.contains("\npi:"), "{passwd}");
    let keys = cat("/home/admin/.ssh/authorized_keys");
    let shipped = std::fs::read_to_string(repo().join("recipes/keys/admin.pub")).unwrap();
    assert_eq!(keys.trim(), shipped.trim());
    let st = debugfs(img, root, "stat /home/admin/.ssh/authorized_keys");
    assert!(
        st.contains("Mode:  0600") && st.contains("User:  1000"),
        "{st}"
    );
}

#[test]
fn worker_bookworm_disarms_the_wizard_and_enables_the_units() {
    let w = worker_build();
    let (img, info) = (&w.img, &w.info);
    let root = info.root.offset();
    // The first-boot user wizard is disarmed, sshd enabled with the baked key kept.
    assert!(!debugfs_exists(
        img,
        root,
        "/etc/systemd/system/multi-user.target.wants/userconfig.service"
    ));
    assert!(!debugfs_exists(
        img,
        root,
        "/etc/systemd/system/multi-user.target.wants/regenerate_ssh_host_keys.service"
    ));
    assert!(
        debugfs(
            img,
            root,
            "stat /etc/systemd/system/multi-user.target.wants/ssh.service"
        )
        .contains("/usr/lib/systemd/system/ssh.service")
    );
    // services.enable follows the unit's [Install] section, as systemctl does: the overlay
    // ships k3s-install.service in /etc/systemd/system, wanted by multi-user.target.
    assert!(
        debugfs(
            img,
            root,
            "stat /etc/systemd/system/multi-user.target.wants/k3s-install.service"
        )
        .contains("Fast link dest: \"/etc/systemd/system/k3s-install.service\"")
    );
}

#[test]
fn worker_bookworm_host_key_is_in_known_hosts_and_sshd_accepts_it() {
    let w = worker_build();
    let (img, info, out) = (&w.img, &w.info, &w.out);
    let root = info.root.offset();
    let cat = |p: &str| debugfs(img, root, &format!("cat {p}"));
    // The baked host key is the one in known_hosts, and sshd accepts the config with it.
    let dir = crate::support::tmp();
    let key = dir.path().join("hostkey");
    debugfs(
        img,
        root,
        &format!("dump /etc/ssh/ssh_host_ed25519_key {}", key.display()),
    );
    sh(dir.path(), "chmod 600 hostkey");
    let public = run_ok("ssh-keygen", &["-y", "-f", key.to_str().unwrap()]);
    let public: String = public
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let kh = std::fs::read_to_string(out.join("known_hosts")).unwrap();
    assert!(
        kh.contains(&format!(
            "worker-01,worker-01.pico.lan,10.42.0.11 {}",
            public.trim()
        )),
        "{kh}\n{public}"
    );
    // With a seed, known_hosts names every node of the cluster, built here or not.
    assert_eq!(kh.lines().count(), 9, "{kh}");
    assert!(
        kh.contains("gw,gw.pico.lan,192.168.1.50 ssh-ed25519 "),
        "{kh}"
    );
    let conf = dir.path().join("sshd_config");
    std::fs::write(
        &conf,
        cat("/etc/ssh/sshd_config.d/10-piimage.conf")
            .replace("/etc/ssh/ssh_host_ed25519_key", key.to_str().unwrap()),
    )
    .unwrap();
    std::fs::create_dir_all("/run/sshd").ok();
    run_ok("sshd", &["-t", "-f", conf.to_str().unwrap()]);
}

#[test]
fn worker_bookworm_network_boot_settings_and_disk_id() {
    let w = worker_build();
    let (img, info) = (&w.img, &w.info);
    let (boot, root) = (info.boot.offset(), info.root.offset());
    let cat = |p: &str| debugfs(img, root, &format!("cat {p}"));
    // NetworkManager keyfile, 0600 root.
    let nm = debugfs(
        img,
        root,
        "stat /etc/NetworkManager/system-connections/eth0.nmconnection",
    );
    assert!(
        nm.contains("Mode:  0600") && nm.contains("User:     0"),
        "{nm}"
    );
    assert!(
        cat("/etc/NetworkManager/system-connections/eth0.nmconnection")
            .contains("address1=10.42.0.11/24,10.42.0.1\n")
    );
    // Boot settings, k3s overlay rendered, the NFS mount.
    // issue 9: the k3s line keeps both cgroup_enable= tokens (read back with mtools).
    let cmdline = String::from_utf8(mtype(img, boot, "/cmdline.txt")).unwrap();
    assert!(
        cmdline
            .trim_end()
            .ends_with(" cgroup_enable=cpuset cgroup_memory=1 cgroup_enable=memory"),
        "{cmdline}"
    );
    assert_eq!(cmdline.lines().count(), 1, "{cmdline}");
    assert!(cat("/etc/rancher/k3s/config.yaml").contains("node-name: worker-01"));
    assert!(
        cat("/etc/fstab")
            .contains("nas:/export/pico\t/mnt/shared\tnfs\tdefaults,_netdev,nofail\t0\t0")
    );
    // A new disk id, the same in the MBR, cmdline.txt and fstab.
    let dump = run_ok("sfdisk", &["--dump", img.to_str().unwrap()]);
    let id = dump
        .lines()
        .find_map(|l| l.strip_prefix("label-id: 0x"))
        .unwrap()
        .to_owned();
    assert_ne!(id, format!("{:08x}", info.disk_id));
    assert!(
        cmdline.contains(&format!("root=PARTUUID={id}-02")),
        "{cmdline}"
    );
    assert!(cat("/etc/fstab").contains(&format!("PARTUUID={id}-01")));
    // Bookworm's firstboot (new host keys, new disk id) is disarmed; piimage's own unit grows
    // the root on first boot instead (issue 9).
    assert!(
        !cmdline.contains("init=") && !cmdline.contains("firstboot"),
        "{cmdline}"
    );
    assert!(cat("/usr/local/sbin/piimage-grow-root").contains("sfdisk"));
    assert!(
        cat("/etc/systemd/system/piimage-grow-root.service")
            .contains("ExecStart=/usr/local/sbin/piimage-grow-root")
    );
    assert!(
        debugfs(
            img,
            root,
            "stat /etc/systemd/system/multi-user.target.wants/piimage-grow-root.service"
        )
        .contains("Fast link dest: \"/etc/systemd/system/piimage-grow-root.service\"")
    );
}

#[test]
fn worker_bookworm_sums_bmap_and_imager_manifest() {
    let w = worker_build();
    let (info, out) = (&w.info, &w.out);
    let root = info.root.offset();
    // SHA256SUMS verifies; the bmap is accepted by bmaptool.
    sh(out, "sha256sum -c --quiet SHA256SUMS");
    let copy = crate::support::tmp();
    let dest = copy.path().join("copy.img");
    run_ok(
        "bmaptool",
        &[
            "copy",
            "--bmap",
            out.as_path()
                .join("pico-worker-01.img.bmap")
                .to_str()
                .unwrap(),
            out.as_path()
                .join("pico-worker-01.img.xz")
                .to_str()
                .unwrap(),
            dest.to_str().unwrap(),
        ],
    );
    e2fsck_clean(&dest, root);

    // The Raspberry Pi Imager manifest lists both images as already customised.
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("pico.rpi-imager-manifest")).unwrap())
            .unwrap();
    let list = m["os_list"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    for e in list {
        assert_eq!(e["init_format"], "none");
        // A relative reference: the file next to the manifest (no path of this machine).
        let url = e["url"].as_str().unwrap();
        assert!(!url.contains('/') && !url.contains(':'), "{url}");
        let path = out.join(url);
        assert!(path.is_file(), "{url}");
        assert_eq!(
            e["image_download_size"],
            std::fs::metadata(&path).unwrap().len()
        );
    }
    std::fs::remove_file(&dest).unwrap();
}

#[test]
fn worker_bookworm_same_seed_builds_byte_identical_outputs() {
    let w = worker_build();
    // Same seed, same recipe, same base: byte-identical outputs.
    // Every file, cluster files and records included, whatever the directory's name.
    assert_eq!(crate::support::tree(&w.out), crate::support::tree(&w.again));
}

#[test]
fn ubuntu_worker_bakes_and_seeds_cloud_init() {
    let out = crate::support::tmp();
    let base = fixtures::fixture_path(Fixture::Ubuntu2404, Format::Zst).unwrap();
    let o = out.path().to_str().unwrap();
    build_ok(
        &[
            "build",
            "recipes/ubuntu-worker.yaml",
            "--base",
            base.to_str().unwrap(),
            "--out",
            o,
        ],
        &[],
    );
    let info = fixtures::info(Fixture::Ubuntu2404);
    let image = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".img.xz"))
        .expect("an .img.xz output");
    let img = unxz(&image);
    let (boot, root) = (info.boot.offset(), info.root.offset());
    e2fsck_clean(&img, root);
    fsck_fat_clean(&img, boot, info.boot.size());
    let dir = crate::support::tmp();
    // The seed on system-boot passes cloud-init's schema and has a per-node instance id.
    let ud = dir.path().join("user-data");
    std::fs::write(&ud, mtype(&img, boot, "/user-data")).unwrap();
    run_ok(
        "cloud-init",
        &["schema", "--config-file", ud.to_str().unwrap()],
    );
    let md = String::from_utf8(mtype(&img, boot, "/meta-data")).unwrap();
    assert!(md.starts_with("instance-id: \""), "{md}");
    // The baked netplan generates, and the guard keeps cloud-init off the baked settings.
    let np = debugfs(&img, root, "cat /etc/netplan/90-piimage.yaml");
    std::fs::create_dir_all(dir.path().join("etc/netplan")).unwrap();
    let npf = dir.path().join("etc/netplan/90-piimage.yaml");
    std::fs::write(&npf, np).unwrap();
    sh(dir.path(), "chmod 600 etc/netplan/90-piimage.yaml");
    run_ok(
        "netplan",
        &["generate", "--root-dir", dir.path().to_str().unwrap()],
    );
    let guard = debugfs(&img, root, "cat /etc/cloud/cloud.cfg.d/99-piimage.cfg");
    assert!(
        guard.contains("manage_etc_hosts: false") && guard.contains("network:\n  config: disabled"),
        "{guard}"
    );
    let g = dir.path().join("guard");
    std::fs::write(&g, format!("#cloud-config\n{guard}")).unwrap();
    run_ok(
        "cloud-init",
        &["schema", "--config-file", g.to_str().unwrap()],
    );
    // Ubuntu names partitions by label: cmdline and fstab untouched there.
    let cmdline = String::from_utf8(mtype(&img, boot, "/cmdline.txt")).unwrap();
    assert!(cmdline.contains("root=LABEL=writable"), "{cmdline}");
}

#[test]
fn a_broken_recipe_builds_nothing() {
    let out = crate::support::tmp();
    let dir = crate::support::tmp();
    let r = dir.path().join("bad.yaml");
    std::fs::write(&r, "cluster: { name: lab }\nbase: { path: nope.img }\nnodes:\n  - name: n1\n    adress: 10.0.0.1\n").unwrap();
    let o = piimage(
        &[
            "build",
            r.to_str().unwrap(),
            "--out",
            out.path().to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.yaml:5:5") && err.contains("adress"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
    let _ = run;
}

#[test]
fn plan_shows_files_and_diffs_and_writes_no_image() {
    let base = fixtures::fixture_path(Fixture::RaspiosTrixie, Format::Raw).unwrap();
    let before = std::fs::read_dir(repo().join("out"))
        .map(|d| d.count())
        .unwrap_or(0);
    let o = piimage(
        &[
            "plan",
            "recipes/gateway.yaml",
            "--base",
            base.to_str().unwrap(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.starts_with("node gw ("), "{text}");
    for want in [
        "write   root:/etc/hostname  0644 0:0  3 bytes",
        "      - raspberrypi\n      + gw\n",
        "write   root:/home/admin/.ssh/authorized_keys  0600 1000:1000",
        "edit    boot:/cmdline.txt",
        "write   boot:/meta-data",
        // nftables.service is wanted by sysinit.target (its [Install] section), not by
        // multi-user.target; k3s-install.service comes from the overlay.
        "symlink root:/etc/systemd/system/sysinit.target.wants/nftables.service  -> /usr/lib/systemd/system/nftables.service",
        "symlink root:/etc/systemd/system/multi-user.target.wants/k3s-install.service  -> /etc/systemd/system/k3s-install.service",
    ] {
        assert!(text.contains(want), "{want:?} not in\n{text}");
    }
    let after = std::fs::read_dir(repo().join("out"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(before, after, "plan wrote into the output directory");
}

/// Every recipe section, built on every fixture and read back.
#[test]
fn every_section_on_every_fixture() {
    let recipe = repo().join("tests/fixtures/recipes/all-sections.yaml");
    for fixture in Fixture::ALL {
        let info = fixtures::info(fixture);
        let out = crate::support::tmp();
        let base = fixtures::fixture_path(fixture, Format::Raw).unwrap();
        build_ok(
            &[
                "build",
                recipe.to_str().unwrap(),
                "--base",
                base.to_str().unwrap(),
                "--out",
                out.path().to_str().unwrap(),
            ],
            &[("PIIMAGE_TEST_PASSWORD", "hunter22")],
        );
        let img = out.path().join("n1.img");
        let (boot, root) = (info.boot.offset(), info.root.offset());
        let case = info.name;
        e2fsck_clean(&img, root);
        fsck_fat_clean(&img, boot, info.boot.size());
        let cat = |p: &str| debugfs(&img, root, &format!("cat {p}"));
        let stat = |p: &str| debugfs(&img, root, &format!("stat {p}"));
        let meta = |p: &str, mode: &str, uid: u32| {
            let s = stat(p);
            assert!(
                s.contains(&format!("Mode:  {mode}")) && s.contains(&format!("User: {uid:>5}")),
                "{case} {p}: {s}"
            );
        };
        let ubuntu = fixture == Fixture::Ubuntu2404;

        // users and default user
        let passwd = cat("/etc/passwd");
        assert!(
            passwd.contains("\nalice:x:1500:1500:Alice:/home/alice:/bin/bash\n"),
            "{case}: {passwd}"
        );
        assert!(passwd.lines().any(|l| l.starts_with("bob:x:")), "{case}");
        assert!(
            !passwd.lines().any(|l| l.starts_with("pi:")),
            "{case}: pi not removed"
        );
        assert!(!debugfs_exists(&img, root, "/home/pi"), "{case}");
        let shadow = cat("/etc/shadow");
        let hash = shadow
            .lines()
            .find_map(|l| l.strip_prefix("alice:"))
            .unwrap()
            .split(':')
            .next()
            .unwrap()
            .to_owned();
        let ok = run_ok(
            "python3",
            &[
                "-W",
                "ignore",
                "-c",
                &format!("import crypt; print(crypt.crypt('hunter22', {hash:?}) == {hash:?})"),
            ],
        );
        assert_eq!(ok.trim(), "True", "{case}: {hash}");
        assert!(
            shadow.lines().any(|l| l.starts_with("bob:!")),
            "{case}: bob not locked"
        );
        assert!(
            cat("/etc/group")
                .lines()
                .any(|l| l.starts_with("adm:") && l.contains("alice")),
            "{case}"
        );
        meta("/etc/sudoers.d/010_piimage-alice", "0440", 0);
        assert_eq!(
            cat("/etc/sudoers.d/010_piimage-bob"),
            "bob ALL=(ALL) NOPASSWD: ALL\n"
        );
        meta("/home/alice", if ubuntu { "0750" } else { "0700" }, 1500);
        meta("/home/alice/.ssh/authorized_keys", "0600", 1500);
        assert!(
            debugfs_exists(&img, root, "/home/alice/.bashrc"),
            "{case}: skel not copied"
        );
        // ssh
        let dropin = cat("/etc/ssh/sshd_config.d/10-piimage.conf");
        assert!(
            dropin.contains("PasswordAuthentication yes\n") && dropin.contains("MaxAuthTries 4\n"),
            "{case}: {dropin}"
        );
        meta("/etc/ssh/ssh_host_ed25519_key", "0600", 0);
        // hosts
        let hosts = cat("/etc/hosts");
        assert!(
            hosts.contains("10.9.0.12\tn2.lab.test n2\n")
                && hosts.contains("10.9.0.5\tnas.lab.test nas\n"),
            "{case}: {hosts}"
        );
        // network
        let psk = piimage::secrets::wifi::psk("LabNet", "correct-horse").unwrap();
        if ubuntu {
            let np = cat("/etc/netplan/90-piimage.yaml");
            assert!(
                np.contains("\"10.9.0.11/24\"")
                    && np.contains(&psk)
                    && np.contains("via: \"10.9.0.1\""),
                "{case}: {np}"
            );
            meta("/etc/netplan/90-piimage.yaml", "0600", 0);
        } else {
            let eth = cat("/etc/NetworkManager/system-connections/eth0.nmconnection");
            assert!(
                eth.contains("address1=10.9.0.11/24,10.9.0.1\n") && eth.contains("dns=10.9.0.1;\n"),
                "{case}: {eth}"
            );
            let wlan = cat("/etc/NetworkManager/system-connections/wlan0.nmconnection");
            assert!(
                wlan.contains("ssid=LabNet\n") && wlan.contains(&format!("psk={psk}\n")),
                "{case}: {wlan}"
            );
            meta(
                "/etc/NetworkManager/system-connections/wlan0.nmconnection",
                "0600",
                0,
            );
        }
        assert!(
            cat("/etc/sysctl.d/90-piimage-forwarding.conf").contains("net.ipv4.ip_forward=1"),
            "{case}"
        );
        // boot
        let cmdline = String::from_utf8(mtype(&img, boot, "/cmdline.txt")).unwrap();
        assert!(
            cmdline.contains(" cgroup_memory=1")
                && !cmdline.split_whitespace().any(|t| t == "quiet"),
            "{case}: {cmdline}"
        );
        assert_eq!(
            cmdline.contains("cfg80211.ieee80211_regdom=GB"),
            !ubuntu,
            "{case}: {cmdline}"
        );
        let config = String::from_utf8(mtype(&img, boot, "/config.txt")).unwrap();
        assert!(
            config.contains("dtparam=i2c_arm=on\n") && config.contains("arm_boost=1\n"),
            "{case}"
        );
        // mounts
        assert!(
            cat("/etc/fstab")
                .contains("nas:/export/lab\t/mnt/lab\tnfs\tdefaults,_netdev,nofail\t0\t0"),
            "{case}"
        );
        assert!(stat("/mnt/lab").contains("Type: directory"), "{case}");
        // time zone, locale, keyboard
        assert!(
            stat("/etc/localtime").contains("\"/usr/share/zoneinfo/Europe/Berlin\""),
            "{case}"
        );
        assert_eq!(cat("/etc/timezone"), "Europe/Berlin\n");
        assert_eq!(cat("/etc/default/locale"), "LANG=C.UTF-8\n");
        let kb = cat("/etc/default/keyboard");
        assert!(
            kb.contains("XKBLAYOUT=\"de\"\n") && kb.contains("XKBMODEL=\"pc105\"\n"),
            "{case}: {kb}"
        );
        // services
        assert!(
            stat("/etc/systemd/system/multi-user.target.wants/cron.service")
                .contains("/usr/lib/systemd/system/cron.service"),
            "{case}"
        );
        assert!(
            stat("/etc/systemd/system/bluetooth.service").contains("\"/dev/null\""),
            "{case}"
        );
        // overlay template
        assert_eq!(
            cat("/etc/piimage/node.conf"),
            "node=n1 role=worker cluster=lab\n"
        );
        assert_eq!(cat("/etc/piimage/static.txt"), "static file\n");
        // cloud-init images: the guard and a per-node seed that passes the schema
        if info.cloud_init.is_some() {
            assert!(
                cat("/etc/cloud/cloud.cfg.d/99-piimage.cfg").contains("manage_etc_hosts: false"),
                "{case}"
            );
            let md = String::from_utf8(mtype(&img, boot, "/meta-data")).unwrap();
            assert!(md.contains("instance-id: \"lab-n1\""), "{case}: {md}");
            let ud = out.path().join("user-data");
            std::fs::write(&ud, mtype(&img, boot, "/user-data")).unwrap();
            run_ok(
                "cloud-init",
                &["schema", "--config-file", ud.to_str().unwrap()],
            );
        }
    }
}

#[test]
fn ctrl_c_stops_the_build_and_removes_partial_outputs() {
    use std::time::{Duration, Instant};
    let out = crate::support::tmp();
    let cache = crate::support::tmp();
    let base = fixtures::fixture_path(Fixture::RaspiosBookworm, Format::Xz).unwrap();
    // All eight workers as .img.xz: long enough to be caught while writing.
    let (mut pi, _pi_dirs) = Piimage::new().command();
    let mut child = pi
        .args(["build", "recipes/worker.yaml", "--quiet", "--jobs", "1"])
        .arg("--base")
        .arg(&base)
        .arg("--out")
        .arg(out.path())
        .arg("--cache-dir")
        .arg(cache.path())
        .current_dir(repo())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let partial = |dir: &Path| {
        std::fs::read_dir(dir).unwrap().any(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".partial-")
        })
    };
    let deadline = Instant::now() + Duration::from_secs(300);
    while !partial(out.path()) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the build ended before it could be interrupted"
        );
        assert!(Instant::now() < deadline, "no partial output appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    run_ok("kill", &["-INT", &child.id().to_string()]);
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    // The handler removed the hidden partial files; a node that was complete before the
    // signal may stand under its final name, and then it is whole.
    for e in std::fs::read_dir(out.path()).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.contains(".partial-"), "left behind: {name}");
        if name.ends_with(".img.xz") {
            run_ok("xz", &["-t", out.path().join(&name).to_str().unwrap()]);
        }
    }
    assert!(!out.path().join("SHA256SUMS").exists());
}

/// `output.size` grows the image, its root partition and the ext4 filesystem once for every
/// node, so an overlay larger than the base's free space fits; checked with sfdisk, dumpe2fs,
/// e2fsck, fsck.fat and debugfs.
#[test]
fn output_size_grows_the_image_and_the_root_filesystem() {
    let out = crate::support::tmp();
    let big = crate::support::tmp();
    // 200 MiB: more than the fixture's root has free (about 160 MiB).
    sh(
        big.path(),
        "mkdir -p opt/data && { yes 'piimage grows the root' || true; } | head -c 200M > opt/data/blob",
    );
    let base = fixtures::fixture_path(Fixture::RaspiosBookworm, Format::Xz).unwrap();
    let recipe = repo()
        .join("target")
        .join(format!("test-grow-{}.yaml", std::process::id()));
    std::fs::write(
        &recipe,
        format!(
            "extends: ../recipes/worker.yaml\nseed: {{ env: PIIMAGE_TEST_SEED }}\n\
             output: {{ formats: [img, img.zst], size: 1G, device_size: 1073741824 }}\n\
             roles:\n  worker:\n    overlays: [ ../overlays/common, ../overlays/k3s, {} ]\n",
            big.path().display()
        ),
    )
    .unwrap();
    let o = out.path().to_str().unwrap();
    let args = [
        "build",
        recipe.to_str().unwrap(),
        "--base",
        base.to_str().unwrap(),
        "--out",
        o,
        "--node",
        "worker-03",
    ];
    build_ok(&args, &[("PIIMAGE_TEST_SEED", "grow")]);
    let plan = piimage(
        &[
            "plan",
            recipe.to_str().unwrap(),
            "--base",
            base.to_str().unwrap(),
            "--node",
            "worker-03",
        ],
        &[("PIIMAGE_TEST_SEED", "grow")],
    );
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(
        text.starts_with("image grown to 1 GiB (output.size): root partition 2 from 200 MiB to "),
        "{text}{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    let img = out.path().join("pico-worker-03.img");
    assert_eq!(std::fs::metadata(&img).unwrap().len(), 1 << 30);
    let info = fixtures::info(Fixture::RaspiosBookworm);
    let (boot, root) = (info.boot.offset(), info.root.offset());
    // The root partition reaches the end of the image; the boot partition is unchanged.
    let dump = run_ok("sfdisk", &["--dump", img.to_str().unwrap()]);
    let start = root / 512;
    let want = format!(
        "start={start:>12}, size={:>12}, type=83",
        (1u64 << 21) - start
    );
    assert!(dump.contains(&want), "{want} not in\n{dump}");
    assert!(
        dump.contains(&format!("size={:>12}, type=c", info.boot.size() / 512)),
        "{dump}"
    );
    e2fsck_clean(&img, root);
    fsck_fat_clean(&img, boot, info.boot.size());
    let spec = format!("{}?offset={root}", img.display());
    let sb = run_ok("dumpe2fs", &["-h", &spec]);
    let blocks = ((1u64 << 30) - root) / 4096;
    assert!(
        sb.lines()
            .any(|l| l.starts_with("Block count:") && l.ends_with(&format!(" {blocks}"))),
        "block count {blocks}:\n{sb}"
    );
    // The node's settings and the big file are there, byte for byte.
    assert_eq!(debugfs(&img, root, "cat /etc/hostname"), "worker-03\n");
    let back = out.path().join("blob.back");
    run_ok(
        "debugfs",
        &[
            "-R",
            &format!("dump /opt/data/blob {}", back.display()),
            &spec,
        ],
    );
    assert_eq!(
        std::fs::read(&back).unwrap(),
        std::fs::read(big.path().join("opt/data/blob")).unwrap()
    );
    // The compressed image is the same image.
    let unzst = out.path().join("unzst.img");
    run_ok(
        "zstd",
        &[
            "-dqf",
            out.path().join("pico-worker-03.img.zst").to_str().unwrap(),
            "-o",
            unzst.to_str().unwrap(),
        ],
    );
    assert_eq!(
        run_ok("cmp", &[img.to_str().unwrap(), unzst.to_str().unwrap()]),
        ""
    );

    // A grown build is as reproducible as any other.
    let again = crate::support::tmp();
    let mut args2 = args;
    args2[5] = again.path().to_str().unwrap();
    build_ok(&args2, &[("PIIMAGE_TEST_SEED", "grow")]);
    for f in ["pico-worker-03.img", "pico-worker-03.img.zst"] {
        assert!(
            std::fs::read(out.path().join(f)).unwrap()
                == std::fs::read(again.path().join(f)).unwrap(),
            "{f} differs between two builds"
        );
    }

    // Sizes piimage refuses before anything is written: below the base, and not a whole
    // number of sectors.
    for (size, want) in [
        ("100M", "smaller than the base"),
        ("1000000001", "512-byte sectors"),
    ] {
        std::fs::write(
            &recipe,
            format!("extends: ../recipes/worker.yaml\noutput: {{ size: {size} }}\n"),
        )
        .unwrap();
        let out2 = crate::support::tmp();
        let r = piimage(
            &[
                "build",
                recipe.to_str().unwrap(),
                "--base",
                base.to_str().unwrap(),
                "--out",
                out2.path().to_str().unwrap(),
            ],
            &[],
        );
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(1), "{err}");
        assert!(
            err.contains("output.size") && err.contains(want),
            "{size}: {err}"
        );
        assert_eq!(std::fs::read_dir(out2.path()).unwrap().count(), 0);
    }

    // Issue 11: an image larger than `output.device_size` is refused by build, plan and
    // validate --base before anything is written; a `size` larger than it by validate alone.
    for (output, want) in [
        (
            "{ device_size: 100M }",
            "the device (104857600 bytes, 100 MiB)",
        ),
        (
            "{ size: 1G, device_size: 1073741312 }",
            "output.size (1073741824 bytes) is larger than output.device_size (1073741312 bytes)",
        ),
    ] {
        std::fs::write(
            &recipe,
            format!("extends: ../recipes/worker.yaml\noutput: {output}\n"),
        )
        .unwrap();
        let out2 = crate::support::tmp();
        let r = recipe.to_str().unwrap();
        let b = base.to_str().unwrap();
        let o2 = out2.path().to_str().unwrap();
        for args in [
            &["build", r, "--base", b, "--out", o2][..],
            &["plan", r, "--base", b],
            &["validate", r, "--base", b],
        ] {
            let run = piimage(args, &[]);
            let err = String::from_utf8_lossy(&run.stderr);
            assert_eq!(run.status.code(), Some(1), "{args:?}: {err}");
            assert!(
                err.contains("output.") && err.contains(want),
                "{args:?}: {err}"
            );
        }
        assert_eq!(std::fs::read_dir(out2.path()).unwrap().count(), 0);
    }
    let _ = std::fs::remove_file(&recipe);
}

/// Issue 9: the image's own first-boot steps that would replace the disk id (and on Bookworm the
/// host keys) are disarmed on every Raspberry Pi OS fixture, piimage's growth unit replaces them
/// unless `boot.grow_root: false`, Ubuntu is left to cloud-init, `plan` shows it all, and bake
/// mode's seeds do not repeat baked settings.
#[test]
fn issue9_firstboot_disarmed_and_growth_kept() {
    for fixture in Fixture::ALL {
        let info = fixtures::info(fixture);
        let case = info.name;
        let ubuntu = fixture == Fixture::Ubuntu2404;
        let base = fixtures::fixture_path(fixture, Format::Raw).unwrap();
        for grow in [true, false] {
            let dir = crate::support::tmp();
            let recipe = dir.path().join("r.yaml");
            std::fs::write(
                &recipe,
                format!(
                    "cluster: {{ name: fb }}\nnodes: [{{ name: n1 }}]\ntimezone: Europe/London\n\
                     keyboard: gb\nboot: {{ grow_root: {grow} }}\n\
                     output: {{ dir: out, formats: [img], name: \"{{node}}\" }}\n"
                ),
            )
            .unwrap();
            let r = recipe.to_str().unwrap();
            let b = base.to_str().unwrap();
            let plan = piimage(&["plan", r, "--base", b], &[]);
            assert!(
                plan.status.success(),
                "{case}: {}",
                String::from_utf8_lossy(&plan.stderr)
            );
            let plan = String::from_utf8_lossy(&plan.stdout).into_owned();
            build_ok(&["build", r, "--base", b], &[]);
            let img = dir.path().join("out/n1.img");
            let (boot, root) = (info.boot.offset(), info.root.offset());
            e2fsck_clean(&img, root);
            fsck_fat_clean(&img, boot, info.boot.size());
            let cmdline = String::from_utf8(mtype(&img, boot, "/cmdline.txt")).unwrap();
            let base_cmdline = String::from_utf8(mtype(&base, boot, "/cmdline.txt")).unwrap();
            let tokens: Vec<&str> = cmdline.split_whitespace().collect();
            assert!(
                !tokens
                    .iter()
                    .any(|t| t.starts_with("init=") || *t == "resize"),
                "{case}: {cmdline}"
            );
            if ubuntu {
                assert_eq!(
                    cmdline, base_cmdline,
                    "{case}: Ubuntu's cmdline.txt is untouched"
                );
            }
            let unit = "/etc/systemd/system/piimage-grow-root.service";
            let installed = debugfs_exists(&img, root, unit);
            assert_eq!(
                installed,
                grow && !ubuntu,
                "{case} grow_root={grow}: {unit}"
            );
            assert_eq!(
                plan.contains("piimage-grow-root.service"),
                grow && !ubuntu,
                "{case} grow_root={grow}: plan:\n{plan}"
            );
            if !ubuntu {
                assert!(plan.contains("boot:/cmdline.txt"), "{case}: plan:\n{plan}");
            }
            if info.cloud_init.is_some() {
                // Bake mode: the seed lists the baked users and hostname, not what is baked.
                let ud = String::from_utf8(mtype(&img, boot, "/user-data")).unwrap();
                assert!(
                    ud.contains("hostname: \"n1\"") || ud.contains("hostname: n1"),
                    "{case}: {ud}"
                );
                assert!(
                    !ud.contains("timezone:") && !ud.contains("keyboard:"),
                    "{case}: the seed repeats baked settings:\n{ud}"
                );
                assert_eq!(debugfs(&img, root, "cat /etc/timezone"), "Europe/London\n");
            }
        }
    }
}
