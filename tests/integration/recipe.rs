//! Recipes: `piimage validate` on the shipped recipes and on broken ones (see `broken`), and
//! the library's resolution (ranges, pools, `extends`, roles, per-node overrides, templates).

mod broken;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::Piimage;
use piimage::recipe::{
    self, DefaultUser, EntryKind, LoadOptions, NodeAddress, PasswordSpec, ResolvedRecipe, Sudo,
    template,
};
use xtask::fixtures::{Fixture, Format};

/// A real public key (its private half was discarded).
pub const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMIf4tgMRn7TdebiWUVfGCTjQREZU8dfIMrLms6oXDeo test@ed25519";

/// `piimage validate RECIPE ARGS...` run in `dir`.
pub fn validate(dir: &Path, recipe: &str, args: &[&str]) -> Output {
    Piimage::new()
        .current_dir(dir)
        .arg("validate")
        .arg(recipe)
        .args(args)
        .run()
}

/// Every path under `dir` with its size, to show that nothing was written.
pub fn snapshot(dir: &Path) -> BTreeSet<(PathBuf, u64)> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let meta = fs::symlink_metadata(e.path()).unwrap();
            if meta.is_dir() {
                stack.push(e.path());
            }
            out.insert((e.path(), meta.len()));
        }
    }
    out
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture() -> PathBuf {
    xtask::fixtures::fixture_path(Fixture::RaspiosBookworm, Format::Xz).expect("fixtures")
}

fn load_text(dir: &Path, files: &[(&str, &str)]) -> ResolvedRecipe {
    for (name, text) in files {
        let p = dir.join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }
    fs::write(dir.join("base.img"), b"x").unwrap();
    recipe::load(&dir.join(files[0].0), &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn shipped_recipes_validate_against_a_fixture() {
    // Raw bases are read in place: `validate --base` writes nothing, not even to the cache.
    let raspios = xtask::fixtures::fixture_path(Fixture::RaspiosTrixie, Format::Raw).unwrap();
    let ubuntu = xtask::fixtures::fixture_path(Fixture::Ubuntu2404, Format::Raw).unwrap();
    let before = snapshot(&repo().join("recipes"));
    for (name, base) in [
        ("cluster", &raspios),
        ("worker", &raspios),
        ("gateway", &raspios),
        ("ubuntu-worker", &ubuntu),
    ] {
        let out = validate(
            &repo(),
            &format!("recipes/{name}.yaml"),
            &["--base", base.to_str().unwrap()],
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{name}: {}\n{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("cluster  pico"), "{name}: {stdout}");
        assert!(stdout.contains("(--base)"), "{name}: {stdout}");
        assert!(
            stdout.contains("worker-08  10.42.0.18/24"),
            "{name}: {stdout}"
        );
        assert!(
            stdout.ends_with(
                "image    checked against the base: time zone, locale, keyboard and dtoverlay \
                 files; every node planned\nok: the recipe is valid (nothing was built)\n"
            ),
            "{stdout}"
        );
    }
    assert_eq!(snapshot(&repo().join("recipes")), before);
}

#[test]
fn shipped_recipes_point_at_official_downloads() {
    for (name, host) in [
        (
            "worker",
            "https://downloads.raspberrypi.com/raspios_lite_arm64/",
        ),
        ("ubuntu-worker", "https://cdimage.ubuntu.com/releases/24.04"),
    ] {
        let out = validate(&repo(), &format!("recipes/{name}.yaml"), &[]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains(&format!("base     {host}")), "{stdout}");
        assert!(stdout.contains("sha256 "), "{stdout}");
    }
}

#[test]
fn shipped_worker_recipe_resolves_as_documented() {
    let options = LoadOptions {
        base: Some(fixture()),
        skip_secrets: false,
    };
    let r = recipe::load(&repo().join("recipes/worker.yaml"), &options).unwrap();
    assert_eq!(r.chain.len(), 2);
    assert!(r.base_overridden);
    let built: Vec<&str> = r.selected().map(|n| n.name.as_str()).collect();
    assert_eq!(built.len(), 8);
    assert_eq!(built[0], "worker-01");
    let w3 = r.node("worker-03").unwrap();
    assert_eq!(w3.fqdn.as_deref(), Some("worker-03.pico.lan"));
    assert_eq!(w3.index, Some(3));
    assert_eq!(w3.network.route_via.as_deref(), Some("gw"));
    let eth0 = &w3.network.interfaces[0];
    assert_eq!(eth0.name, "eth0");
    assert!(!eth0.ipv4.dhcp);
    assert_eq!(eth0.ipv4.addresses[0].to_string(), "10.42.0.13/24");
    assert_eq!(
        w3.boot.cmdline_add,
        [
            "cgroup_enable=cpuset",
            "cgroup_memory=1",
            "cgroup_enable=memory"
        ]
    );
    assert_eq!(w3.default_user, DefaultUser::Rename("admin".into()));
    let admin = &w3.users[0];
    assert_eq!(
        (admin.name.as_str(), admin.sudo),
        ("admin", Sudo::Nopassword)
    );
    assert_eq!(admin.authorized_keys.len(), 1);
    assert_eq!(w3.services.enable, ["k3s-install.service"]);
    // The k3s overlay: modes from the rules, templates rendered for the node.
    let k3s = &w3.overlays[1];
    let config = k3s
        .entries
        .iter()
        .find(|e| e.dest == "/etc/rancher/k3s/config.yaml")
        .unwrap();
    assert_eq!(
        (config.kind.clone(), config.mode),
        (EntryKind::Template, 0o600)
    );
    let script = k3s
        .entries
        .iter()
        .find(|e| e.rel == "usr/local/sbin/k3s-install.j2")
        .unwrap();
    assert_eq!(script.mode, 0o755);
    let ctx = template::context(&r, w3, &template::placeholder_extras(&r));
    let text = fs::read_to_string(&config.source).unwrap();
    let rendered = template::render("config.yaml.j2", &text, &ctx).unwrap();
    assert!(
        rendered.contains("server: https://10.42.0.1:6443\n"),
        "{rendered}"
    );
    assert!(rendered.contains("node-ip: 10.42.0.13\n"), "{rendered}");
    assert!(rendered.ends_with("piimage.role=worker\n"), "{rendered}");
    // The gateway is known (hosts) but not built here.
    let gw = r.node("gw").unwrap();
    assert!(!gw.selected);
    let hosts = r.cluster_hosts();
    assert_eq!(hosts.len(), 9);
    assert_eq!(hosts[0].names, ["gw.pico.lan", "gw"]);
}

#[test]
fn ranges_and_pools_expand() {
    let dir = crate::support::tmp();
    let r = load_text(
        dir.path(),
        &[(
            "r.yaml",
            "cluster: { name: lab }\nbase: { path: base.img }\nnodes:\n  - { name: router, address: 10.1.0.1/29 }\n  - range: w-{08..11}\n    addresses: 10.1.0.0/29\n  - range: n{1..2}\n    addresses: [fd00::a, fd00::b/64]\n  - range: x{9..10}\n    addresses: 192.168.7.9+\n",
        )],
    );
    let got: Vec<(String, String, Option<u64>)> = r
        .nodes
        .iter()
        .map(|n| (n.name.clone(), n.address.unwrap().to_string(), n.index))
        .collect();
    let want = [
        ("router", "10.1.0.1/29", None),
        ("w-08", "10.1.0.2/29", Some(8)),
        ("w-09", "10.1.0.3/29", Some(9)),
        ("w-10", "10.1.0.4/29", Some(10)),
        ("w-11", "10.1.0.5/29", Some(11)),
        ("n1", "fd00::a", Some(1)),
        ("n2", "fd00::b/64", Some(2)),
        ("x9", "192.168.7.9", Some(9)),
        ("x10", "192.168.7.10", Some(10)),
    ];
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert_eq!((g.0.as_str(), g.1.as_str(), g.2), w);
    }
    // No prefix: known address, but the interface stays on DHCP.
    let x9 = r.node("x9").unwrap();
    assert!(x9.network.interfaces.is_empty());
    assert_eq!(
        x9.address,
        Some(NodeAddress {
            ip: "192.168.7.9".parse().unwrap(),
            prefix: None
        })
    );
    assert!(r.nodes.iter().all(|n| n.selected && n.role == "node"));
}

#[test]
fn extends_merges_maps_and_replaces_scalars_and_lists() {
    let dir = crate::support::tmp();
    let parent = format!(
        "cluster: {{ name: lab, domain: lab.example, description: parent }}\nbase: {{ path: base.img }}\n\
         vars: {{ a: 1, nested: {{ x: 1, y: 2 }}, list: [1, 2] }}\n\
         ssh:\n  password_authentication: true\n  extra: {{ MaxAuthTries: 3, ClientAliveInterval: 30 }}\n\
         users:\n  - name: alice\n    ssh_authorized_keys: [\"{KEY}\"]\n\
         timezone: Europe/London\nnodes: [{{ name: p1 }}]\n"
    );
    let r = load_text(
        dir.path(),
        &[
            (
                "sub/child.yaml",
                "extends: ../parent.yaml\ncluster: { description: child }\n\
                 vars: { b: 2, nested: { y: 3 }, list: [9] }\n\
                 ssh:\n  extra: { ClientAliveInterval: 60 }\n\
                 users:\n  - { name: bob, password: { hash: '$y$j9T$abcdefghijklmnop$ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmno1' } }\n\
                 nodes: [{ name: c1 }, { name: c2 }]\n",
            ),
            ("parent.yaml", &parent),
        ],
    );
    assert_eq!(r.chain.len(), 2);
    assert_eq!(r.cluster.domain.as_deref(), Some("lab.example"));
    assert_eq!(r.cluster.description.as_deref(), Some("child"));
    let names: Vec<&str> = r.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["c1", "c2"], "lists replace");
    let n = &r.nodes[0];
    assert_eq!(
        serde_json::Value::Object(n.vars.clone()),
        serde_json::json!({"a": 1, "b": 2, "nested": {"x": 1, "y": 3}, "list": [9]})
    );
    assert!(n.ssh.password_authentication, "inherited scalar");
    assert_eq!(
        n.ssh.extra,
        [
            ("ClientAliveInterval".to_owned(), "60".to_owned()),
            ("MaxAuthTries".to_owned(), "3".to_owned())
        ]
    );
    assert_eq!(n.users.len(), 1, "users replace");
    assert_eq!(n.users[0].name, "bob");
    assert!(matches!(n.users[0].password, Some(PasswordSpec::Hash(_))));
    assert_eq!(n.timezone.as_deref(), Some("Europe/London"));
    // The base path is relative to the file that wrote it (the parent).
    match &r.base {
        piimage::disk::source::BaseSpec::Path { path, .. } => {
            assert_eq!(path.file_name().unwrap(), "base.img");
            assert!(path.exists(), "{}", path.display());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn node_settings_win_over_role_over_recipe() {
    let dir = crate::support::tmp();
    let r = load_text(
        dir.path(),
        &[(
            "r.yaml",
            "cluster: { name: lab }\nbase: { path: base.img }\n\
             timezone: UTC\nlocale: C.UTF-8\nvars: { level: recipe, keep: 1 }\n\
             ssh: { permit_root_login: false }\n\
             roles:\n  worker:\n    timezone: Europe/Paris\n    vars: { level: role }\n    ssh: { permit_root_login: true }\n\
             nodes:\n\
             \x20 - { name: a, role: worker }\n\
             \x20 - { name: b, role: worker, timezone: Asia/Tokyo, vars: { level: node }, hostname: bee }\n\
             \x20 - { name: c }\n\
             build: { nodes: [b, c] }\n",
        )],
    );
    let get = |name: &str| r.node(name).unwrap();
    assert_eq!(get("a").timezone.as_deref(), Some("Europe/Paris"));
    assert_eq!(get("b").timezone.as_deref(), Some("Asia/Tokyo"));
    assert_eq!(get("c").timezone.as_deref(), Some("UTC"));
    assert_eq!(get("a").vars["level"], "role");
    assert_eq!(get("b").vars["level"], "node");
    assert_eq!(get("b").vars["keep"], 1);
    assert_eq!(get("c").vars["level"], "recipe");
    assert!(get("a").ssh.permit_root_login && !get("c").ssh.permit_root_login);
    assert_eq!(get("b").hostname, "bee");
    assert_eq!(get("b").locale.as_deref(), Some("C.UTF-8"));
    let selected: Vec<&str> = r.selected().map(|n| n.name.as_str()).collect();
    assert_eq!(selected, ["b", "c"]);
}

#[test]
fn several_problems_are_reported_together() {
    let dir = crate::support::tmp();
    fs::write(dir.path().join("base.img"), b"x").unwrap();
    fs::write(
        dir.path().join("r.yaml"),
        "cluster: { name: lab }\nbase: { path: base.img }\nusers:\n  - name: Bob\nnodes:\n  - name: A\n  - range: w{2..1}\n",
    )
    .unwrap();
    let err = recipe::load(&dir.path().join("r.yaml"), &LoadOptions::default()).unwrap_err();
    let fields: Vec<&str> = err.problems.iter().map(|p| p.field.as_str()).collect();
    assert!(fields.contains(&"users[0].name"), "{err}");
    assert!(fields.contains(&"nodes[0].name"), "{err}");
    assert!(fields.contains(&"nodes[1].range"), "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("{} problems in the recipe:", err.problems.len()))
    );
}

#[test]
fn secrets_are_checked_unless_skipped_and_never_read_into_the_spec() {
    let dir = crate::support::tmp();
    let d = dir.path();
    fs::write(d.join("base.img"), b"x").unwrap();
    let recipe = "cluster: { name: lab }\nbase: { path: base.img }\nseed: { file: secrets/seed }\n\
        users:\n  - name: alice\n    sudo: password\n    password: { file: secrets/alice, method: sha512 }\n\
        network:\n  interfaces:\n    wlan0:\n      wifi: { ssid: home, passphrase: { file: secrets/wifi }, country: GB }\n\
        nodes: [{ name: n1 }]\n";
    fs::write(d.join("r.yaml"), recipe).unwrap();
    let out = validate(d, "r.yaml", &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for field in [
        "seed",
        "users[0].password",
        "network.interfaces.wlan0.wifi.passphrase",
    ] {
        assert!(
            stderr.contains(&format!(": {field}: ")),
            "{field}: {stderr}"
        );
    }
    let out = validate(d, "r.yaml", &["--skip-secrets"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    fs::create_dir(d.join("secrets")).unwrap();
    fs::write(d.join("secrets/seed"), "a long random seed\n").unwrap();
    fs::write(d.join("secrets/alice"), "correct horse\n").unwrap();
    fs::write(d.join("secrets/wifi"), "short\n").unwrap();
    let out = validate(d, "r.yaml", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("wifi.passphrase: the passphrase from file") && stderr.contains("8 to 63"),
        "{stderr}"
    );
    fs::write(d.join("secrets/wifi"), "long enough passphrase\n").unwrap();
    let r = recipe::load(&d.join("r.yaml"), &LoadOptions::default()).unwrap();
    let n = &r.nodes[0];
    match &n.users[0].password {
        Some(PasswordSpec::Plain { source, scheme }) => {
            assert_eq!(*scheme, recipe::PasswordScheme::Sha512);
            assert_eq!(source.read().unwrap(), "correct horse");
            assert!(!format!("{source:?}").contains("correct"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        r.seed.as_ref().unwrap().read().unwrap(),
        "a long random seed"
    );
    let wifi = n.network.interfaces[0].wifi.as_ref().unwrap();
    assert_eq!((wifi.ssid.as_str(), wifi.country.as_str()), ("home", "GB"));
    assert!(n.network.interfaces[0].ipv4.dhcp);
}
