//! Generated configuration files checked by the programs that read them: `sshd -t`,
//! `netplan generate`, `cloud-init schema`.

use std::os::unix::fs::PermissionsExt;

use piimage::plan::cloud_init::{SeedSpec, guard, meta_data, user_data};
use piimage::plan::network::{Interface, IpConfig, WifiNetwork, netplan};
use piimage::plan::ssh::{SshdConfig, drop_in};
use piimage::plan::users::{Account, SudoRule};
use piimage::secrets::hostkey::ed25519;
use piimage::secrets::rng::derived_rng;

use crate::support::run;

fn check(cmd: &str, args: &[&str]) {
    let out = run(cmd, args);
    assert!(
        out.status.success(),
        "{cmd} {args:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sshd_accepts_the_drop_in() {
    let dir = crate::support::tmp();
    let key = ed25519("n1", &mut derived_rng(b"s", "ssh-host-ed25519", "n1")).unwrap();
    let key_path = dir.path().join("ssh_host_ed25519_key");
    std::fs::write(&key_path, &key.private_openssh).unwrap();
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::create_dir_all("/run/sshd").ok();
    for spec in [
        SshdConfig {
            enable: true,
            password_authentication: false,
            permit_root_login: false,
            extra: vec![
                ("MaxAuthTries".into(), "3".into()),
                ("AllowGroups".into(), "sudo ssh-users".into()),
            ],
            host_key: Some(key.clone()),
        },
        SshdConfig {
            enable: true,
            password_authentication: true,
            permit_root_login: true,
            extra: vec![],
            host_key: None,
        },
    ] {
        let conf = dir.path().join("sshd_config");
        let text = format!("{}HostKey {}\n", drop_in(&spec), key_path.display());
        std::fs::write(&conf, text).unwrap();
        check("sshd", &["-t", "-f", conf.to_str().unwrap()]);
        // And sshd reads the values back as written.
        let out = run(
            "sshd",
            &[
                "-T",
                "-f",
                conf.to_str().unwrap(),
                "-C",
                "user=x,host=h,addr=127.0.0.1",
            ],
        );
        let effective = String::from_utf8_lossy(&out.stdout).to_string();
        let pa = if spec.password_authentication {
            "yes"
        } else {
            "no"
        };
        assert!(
            effective.contains(&format!("\npasswordauthentication {pa}\n")),
            "{effective}"
        );
        let rl = if spec.permit_root_login {
            "without-password"
        } else {
            "no"
        };
        assert!(
            effective.contains(&format!("\npermitrootlogin {rl}\n")),
            "{effective}"
        );
    }
    // A broken extra setting is what sshd -t is there to catch.
    let conf = dir.path().join("bad");
    std::fs::write(
        &conf,
        format!("NoSuchKeyword yes\nHostKey {}\n", key_path.display()),
    )
    .unwrap();
    assert!(
        !run("sshd", &["-t", "-f", conf.to_str().unwrap()])
            .status
            .success()
    );
}

fn ifaces() -> Vec<Interface> {
    vec![
        Interface {
            name: "eth0".into(),
            ipv4: IpConfig {
                dhcp: false,
                addresses: vec!["10.0.0.11/24".into()],
                gateway: Some("10.0.0.1".into()),
            },
            ipv6: Some(IpConfig {
                dhcp: false,
                addresses: vec!["fd00::11/64".into()],
                gateway: Some("fd00::1".into()),
            }),
            dns: vec!["10.0.0.1".into(), "fd00::1".into()],
            search: vec!["lab.example".into()],
            wifi: None,
        },
        Interface {
            name: "wlan0".into(),
            ipv4: IpConfig {
                dhcp: true,
                ..IpConfig::default()
            },
            ipv6: None,
            dns: vec![],
            search: vec![],
            wifi: Some(WifiNetwork {
                ssid: "Lab \"5G\"".into(),
                psk: piimage::secrets::wifi::psk("Lab \"5G\"", "correct horse").unwrap(),
                country: "GB".into(),
                hidden: true,
            }),
        },
    ]
}

#[test]
fn netplan_generates_from_our_yaml() {
    let dir = crate::support::tmp();
    let np = dir.path().join("etc/netplan");
    std::fs::create_dir_all(&np).unwrap();
    let file = np.join("90-piimage.yaml");
    std::fs::write(&file, netplan(&ifaces())).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    check(
        "netplan",
        &["generate", "--root-dir", dir.path().to_str().unwrap()],
    );
    let networkd = dir
        .path()
        .join("run/systemd/network/10-netplan-eth0.network");
    let text = std::fs::read_to_string(&networkd)
        .unwrap_or_else(|e| panic!("{}: {e}", networkd.display()));
    for want in [
        "Address=10.0.0.11/24",
        "Address=fd00::11/64",
        "Gateway=10.0.0.1",
        "DNS=10.0.0.1",
        "Domains=lab.example",
    ] {
        assert!(text.contains(want), "{want} not in\n{text}");
    }
    // A broken document is rejected (the check can fail).
    std::fs::write(
        &file,
        "network:\n  version: 2\n  ethernets:\n    eth0:\n      dhcp4: maybe\n",
    )
    .unwrap();
    assert!(
        !run(
            "netplan",
            &["generate", "--root-dir", dir.path().to_str().unwrap()]
        )
        .status
        .success()
    );
}

#[test]
fn cloud_init_schema_accepts_our_user_data() {
    let dir = crate::support::tmp();
    let spec = SeedSpec {
        hostname: "worker-01".into(),
        fqdn: Some("worker-01.lab.example".into()),
        users: vec![
            Account {
                name: "alice".into(),
                uid: Some(1001),
                gecos: "Alice \"Ops\"".into(),
                shell: "/bin/bash".into(),
                groups: vec!["sudo".into(), "adm".into()],
                sudo: SudoRule::NoPassword,
                password_hash: Some("$y$j9T$abcdefghijklmnopqrstuv$0123456789abcdefghijklmnopqrstuvwxyzABCDE".into()),
                locked: false,
                authorized_keys: vec!["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJvmLoGRr4WXyQ2EGvJ3xKkuC1ZW5s4RjyNQC6jpbTKK alice@laptop".into()],
            },
            Account { name: "ops".into(), shell: "/bin/sh".into(), sudo: SudoRule::None, ..Account::default() },
        ],
        ssh_pwauth: Some(false),
        timezone: Some("Europe/London".into()),
        locale: Some("en_GB.UTF-8".into()),
        keyboard: Some("gb".into()),
        extra_yaml: "packages:\n  - nfs-common\n".into(),
        passwords_baked: false,
    };
    let baked = SeedSpec {
        passwords_baked: true,
        ..spec.clone()
    };
    for (name, text) in [
        ("user-data", user_data(&spec)),
        ("user-data-baked", user_data(&baked)),
        ("guard", guard(true, true)),
        ("guard-min", guard(false, false)),
    ] {
        let f = dir.path().join(name);
        let text = if text.starts_with("#cloud-config") {
            text
        } else {
            format!("#cloud-config\n{text}")
        };
        std::fs::write(&f, &text).unwrap();
        check(
            "cloud-init",
            &["schema", "--config-file", f.to_str().unwrap()],
        );
    }
    let md = meta_data("piimage-lab-worker-01-1a2b", "worker-01");
    assert!(md.starts_with("instance-id: \"piimage-lab-worker-01-1a2b\"\n"));
    // The schema check can fail.
    let bad = dir.path().join("bad");
    std::fs::write(
        &bad,
        "#cloud-config\nusers:\n  - name: x\n    lock_passwd: maybe\n",
    )
    .unwrap();
    assert!(
        !run(
            "cloud-init",
            &["schema", "--config-file", bad.to_str().unwrap()]
        )
        .status
        .success()
    );
}

#[test]
fn operator_files_are_read_by_ssh_and_ansible() {
    use piimage::plan::cluster::{ClusterNode, inventory, known_hosts, ssh_config};
    let dir = crate::support::tmp();
    let node = |name: &str, addr: &str, role: &str, jump: Option<&str>| {
        let key = ed25519(name, &mut derived_rng(b"s", "ssh-host-ed25519", name)).unwrap();
        ClusterNode {
            name: name.into(),
            hostname: name.into(),
            fqdn: Some(format!("{name}.lab.example")),
            address: Some(addr.into()),
            role: role.into(),
            host_key: Some(key.public_key),
            user: Some("alice".into()),
            proxy_jump: jump.map(str::to_owned),
            identity_file: None,
            identities_only: false,
        }
    };
    let nodes = vec![
        node("gateway", "192.0.2.10", "gateway", None),
        node("worker-01", "10.0.0.11", "k3s-worker", Some("gateway")),
        node("worker-02", "10.0.0.12", "k3s-worker", Some("gateway")),
    ];
    let kh = dir.path().join("known_hosts");
    std::fs::write(&kh, known_hosts(&nodes)).unwrap();
    for n in &nodes {
        let out = crate::support::run_ok(
            "ssh-keygen",
            &[
                "-F",
                n.address.as_deref().unwrap(),
                "-f",
                kh.to_str().unwrap(),
            ],
        );
        assert!(out.contains(n.host_key.as_deref().unwrap()), "{out}");
    }
    let cfg = dir.path().join("ssh_config");
    std::fs::write(&cfg, ssh_config(&nodes, kh.to_str().unwrap())).unwrap();
    let eff = crate::support::run_ok("ssh", &["-G", "-F", cfg.to_str().unwrap(), "worker-02"]);
    for want in [
        "hostname 10.0.0.12",
        "user alice",
        "proxyjump gateway",
        "hostkeyalias worker-02",
        "stricthostkeychecking true",
    ] {
        assert!(eff.contains(want), "{want} not in\n{eff}");
    }
    let inv = dir.path().join("inventory.yaml");
    std::fs::write(&inv, inventory(&nodes)).unwrap();
    let out = crate::support::run_ok(
        "ansible-inventory",
        &["-i", inv.to_str().unwrap(), "--list"],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["k3s_worker"]["hosts"],
        serde_json::json!(["worker-01", "worker-02"]),
        "{v}"
    );
    assert_eq!(
        v["_meta"]["hostvars"]["worker-01"]["ansible_host"],
        "10.0.0.11"
    );
    assert_eq!(v["_meta"]["hostvars"]["gateway"]["ansible_user"], "alice");
}
