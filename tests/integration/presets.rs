//! Issue 16, purpose presets (`recipes/presets/*`): each preset builds on every fixture it
//! claims, its images pass `e2fsck -fn` and `fsck.fat -n`, the files it bakes are read back with
//! `debugfs` (content, mode, owner), its units pass `systemd-analyze verify` and its scripts
//! `sh -n`, its secrets are the seed's (the same on every node, another seed another value) and
//! never appear in the build's or `plan`'s output or in a world-readable output file; generated
//! files go through their own validators (`ansible-playbook --syntax-check`, `ssh-keygen`,
//! `terraform`, a hostfile parser).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use xtask::fixtures::{self, Fixture, Format};

use crate::support::{debugfs, e2fsck_clean, fsck_fat_clean, run};

const SEED: &str = "preset-test-seed";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs piimage (quiet, private cache) with `PIIMAGE_SEED=seed`.
fn piimage(args: &[&str], seed: &str) -> Output {
    let cache = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_piimage"))
        .args(args)
        .arg("--quiet")
        .arg("--cache-dir")
        .arg(cache.path())
        .env("PIIMAGE_SEED", seed)
        .current_dir(repo())
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(out: &Output, what: &str) -> String {
    assert!(out.status.success(), "{what} failed:\n{}", text(out));
    text(out)
}

/// The shipped preset `name`, as shipped but for raw (`img`) outputs (fast to read back), plus
/// `extra` YAML: a recipe under target/ extending it.
fn wrapper(name: &str, tag: &str, extra: &str) -> PathBuf {
    let p = repo().join("target").join(format!(
        "test-preset-{name}-{tag}-{}.yaml",
        std::process::id()
    ));
    std::fs::write(
        &p,
        format!(
            "extends: ../recipes/presets/{name}/recipe.yaml\noutput: {{ formats: [img] }}\n{extra}"
        ),
    )
    .unwrap();
    p
}

/// A built preset: its output directory and the fixture's facts.
struct Built {
    dir: tempfile::TempDir,
    fixture: Fixture,
    log: String,
}

impl Built {
    fn image(&self, node: &str) -> PathBuf {
        self.dir.path().join(format!("pico-{node}.img"))
    }

    fn root(&self) -> u64 {
        self.fixture.info().root.offset()
    }

    /// `debugfs -R "cat PATH"` on `node`'s root filesystem.
    fn cat(&self, node: &str, path: &str) -> String {
        debugfs(&self.image(node), self.root(), &format!("cat {path}"))
    }

    /// (mode, uid, gid) of `path` on `node`, from `debugfs stat`.
    fn stat(&self, node: &str, path: &str) -> (u32, u32, u32) {
        let s = debugfs(&self.image(node), self.root(), &format!("stat {path}"));
        let field = |name: &str| -> u32 {
            let rest = s
                .split(name)
                .nth(1)
                .unwrap_or_else(|| panic!("{node}:{path}: no {name} in\n{s}"));
            let word = rest.split_whitespace().next().unwrap();
            if name == "Mode:" {
                u32::from_str_radix(word, 8).unwrap()
            } else {
                word.parse().unwrap()
            }
        };
        (field("Mode:"), field("User:"), field("Group:"))
    }

    /// Dumps `paths` of `node` into `root` (keeping their directories and modes).
    fn dump(&self, node: &str, paths: &[&str], root: &Path) {
        for p in paths {
            let dest = root.join(p.trim_start_matches('/'));
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            let cmd = format!("dump -p {p} {}", dest.display());
            debugfs(&self.image(node), self.root(), &cmd);
            assert!(dest.exists(), "{node}: {p} was not in the image");
        }
    }

    /// Both filesystems of every built image are clean for their checkers.
    fn fsck(&self, nodes: &[&str]) {
        let info = self.fixture.info();
        for n in nodes {
            e2fsck_clean(&self.image(n), info.root.offset());
            fsck_fat_clean(&self.image(n), info.boot.offset(), info.boot.size());
        }
    }
}

fn build(recipe: &Path, fixture: Fixture, nodes: &[&str], seed: &str) -> Built {
    let base = fixtures::fixture_path(fixture, Format::Xz).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec![
        "build".to_owned(),
        recipe.display().to_string(),
        "--base".into(),
        base.display().to_string(),
        "--out".into(),
        dir.path().display().to_string(),
    ];
    for n in nodes {
        args.push("--node".into());
        args.push((*n).to_owned());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let log = ok(&piimage(&args, seed), &format!("build {args:?}"));
    Built { dir, fixture, log }
}

/// `systemd-analyze verify` of `units` in a root holding the node's units and the programs they
/// start (dumped from the image), with the host's own systemd units for the targets they name.
fn verify_units(b: &Built, node: &str, units: &[&str], programs: &[&str]) {
    let Some(_) = which("systemd-analyze") else {
        panic!("systemd-analyze is missing (the systemd package)");
    };
    let root = tempfile::tempdir().unwrap();
    let files: Vec<String> = units
        .iter()
        .map(|u| format!("/etc/systemd/system/{u}"))
        .collect();
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    b.dump(node, &files, root.path());
    b.dump(node, programs, root.path());
    let sys = root.path().join("usr/lib/systemd");
    std::fs::create_dir_all(&sys).unwrap();
    let out = run(
        "cp",
        &["-a", "/usr/lib/systemd/system", sys.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out));
    let mut args = vec![
        "verify".to_owned(),
        format!("--root={}", root.path().display()),
    ];
    args.extend(units.iter().map(|u| (*u).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run("systemd-analyze", &args);
    assert!(
        out.status.success() && out.stderr.is_empty() && out.stdout.is_empty(),
        "{node}: systemd-analyze {args:?}:\n{}",
        text(&out)
    );
    for p in programs {
        let path = root.path().join(p.trim_start_matches('/'));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755, "{node}: {p} is not 0755");
        let body = std::fs::read_to_string(&path).unwrap();
        if body.starts_with("#!/bin/sh") {
            let out = run("sh", &["-n", path.to_str().unwrap()]);
            assert!(out.status.success(), "{node}: sh -n {p}:\n{}", text(&out));
        }
    }
}

fn which(tool: &str) -> Option<PathBuf> {
    let path = format!(
        "{}:/usr/sbin:/sbin",
        std::env::var("PATH").unwrap_or_default()
    );
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// No world-readable file of the output directory holds `secret`, and the images (which do)
/// are 0600.
fn not_world_readable(dir: &Path, secret: &str) {
    fn walk(dir: &Path, secret: &str) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                walk(&e.path(), secret);
                continue;
            }
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".img") {
                assert_eq!(meta.mode() & 0o077, 0, "{name} is readable by others");
                continue;
            }
            if meta.mode() & 0o004 != 0 {
                let bytes = std::fs::read(e.path()).unwrap();
                assert!(
                    !String::from_utf8_lossy(&bytes).contains(secret),
                    "{name} (world-readable) holds the secret"
                );
            }
        }
    }
    walk(dir, secret);
}

/// `validate` prints the preset's description.
fn validate_prints_description(name: &str, words: &str) {
    let recipe = format!("recipes/presets/{name}/recipe.yaml");
    let out = ok(&piimage(&["validate", &recipe], SEED), "validate");
    assert!(
        out.contains(words),
        "{name}: validate shows no description:\n{out}"
    );
    assert!(out.contains("ok: the recipe is valid"), "{out}");
}

/// The fixtures the k3s preset claims (its README says so too).
const K3S_FIXTURES: [Fixture; 2] = [Fixture::RaspiosBookworm, Fixture::RaspiosTrixie];

#[test]
fn issue16_k3s_preset_bakes_one_seeded_token_and_the_server_url() {
    validate_prints_description(
        "k3s",
        "k3s (Kubernetes): the gateway gw runs the k3s server",
    );
    let recipe = wrapper("k3s", "single", "");
    let nodes = ["gw", "worker-01", "worker-02"];
    let token = piimage::secrets::cluster::token(SEED.as_bytes(), "k3s_token");
    for (i, fixture) in K3S_FIXTURES.into_iter().enumerate() {
        // The second fixture is built with another seed: another token.
        let seed = if i == 0 {
            SEED.to_owned()
        } else {
            format!("{SEED}-2")
        };
        let want = piimage::secrets::cluster::token(seed.as_bytes(), "k3s_token");
        let b = build(&recipe, fixture, &nodes, &seed);
        b.fsck(&nodes);
        assert!(!b.log.contains(&want), "the build printed the token");
        not_world_readable(b.dir.path(), &want);
        for n in nodes {
            assert_eq!(
                b.cat(n, "/etc/rancher/k3s/token"),
                format!("{want}\n"),
                "{n}"
            );
            assert_eq!(
                b.stat(n, "/etc/rancher/k3s/token"),
                (0o600, 0, 0),
                "{n}"
            );
            let config = b.cat(n, "/etc/rancher/k3s/config.yaml");
            assert!(
                config.contains("token-file: /etc/rancher/k3s/token\n"),
                "{config}"
            );
            assert!(config.contains(&format!("node-name: {n}\n")), "{config}");
            if n == "gw" {
                assert!(
                    config.contains("write-kubeconfig-mode: \"0600\"\n"),
                    "{config}"
                );
                assert!(
                    !config.contains("server:") && !config.contains("cluster-init"),
                    "{config}"
                );
                assert!(config.contains("node-ip: 10.42.0.1\n"), "{config}");
            } else {
                assert!(
                    config.contains("\nserver: https://10.42.0.1:6443\n"),
                    "{config}"
                );
            }
            let wants = debugfs(
                &b.image(n),
                b.root(),
                "ls /etc/systemd/system/multi-user.target.wants",
            );
            assert!(
                wants.contains("piimage-k3s-install.service"),
                "{n}: {wants}"
            );
            verify_units(
                &b,
                n,
                &["piimage-k3s-install.service"],
                &[
                    "/usr/local/sbin/piimage-preset-step",
                    "/usr/local/lib/piimage-presets/k3s-install",
                ],
            );
        }
        assert_eq!(i == 0, want == token, "the token is the seed's");
    }
    std::fs::remove_file(recipe).ok();
}

#[test]
fn issue16_k3s_preset_ha_servers_and_plan_hides_the_token() {
    let recipe = wrapper(
        "k3s",
        "ha",
        "vars:\n  k3s_servers: [worker-01, worker-02, worker-03]\n",
    );
    let nodes = ["gw", "worker-01", "worker-02", "worker-04"];
    let b = build(&recipe, Fixture::RaspiosTrixie, &nodes, SEED);
    b.fsck(&nodes);
    let config = |n| b.cat(n, "/etc/rancher/k3s/config.yaml");
    let first = config("worker-01");
    assert!(
        first.contains("\ncluster-init: true\n") && !first.contains("server:"),
        "{first}"
    );
    let second = config("worker-02");
    assert!(
        second.contains("\nserver: https://10.42.0.11:6443\n"),
        "{second}"
    );
    assert!(
        second.contains("write-kubeconfig-mode") && !second.contains("cluster-init"),
        "{second}"
    );
    for agent in ["gw", "worker-04"] {
        let c = config(agent);
        assert!(c.contains("\nserver: https://10.42.0.11:6443\n"), "{c}");
        assert!(!c.contains("write-kubeconfig-mode"), "{c}");
    }
    // plan (text and JSON) shows the token file but not the token.
    let token = piimage::secrets::cluster::token(SEED.as_bytes(), "k3s_token");
    let base = fixtures::fixture_path(Fixture::RaspiosTrixie, Format::Xz).unwrap();
    for json in [false, true] {
        let mut args = vec![
            "plan",
            recipe.to_str().unwrap(),
            "--base",
            base.to_str().unwrap(),
            "--node",
            "worker-02",
        ];
        if json {
            args.push("--json");
        }
        let out = ok(&piimage(&args, SEED), "plan");
        assert!(out.contains("/etc/rancher/k3s/token"), "{out}");
        assert!(!out.contains(&token), "plan shows the token");
    }
    // A server list naming no node is a validate error naming the template.
    let bad = wrapper("k3s", "bad", "vars:\n  k3s_servers: [nowhere]\n");
    let out = piimage(&["validate", bad.to_str().unwrap()], SEED);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(
        t.contains("config.yaml.j2")
            && t.contains("k3s_servers_first_entry_must_name_a_node_with_an_address"),
        "{t}"
    );
    for r in [recipe, bad] {
        std::fs::remove_file(r).ok();
    }
}
