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

use crate::support::{Piimage, text};
use crate::support::{debugfs, e2fsck_clean, fsck_fat_clean, run};

const SEED: &str = "preset-test-seed";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs piimage (quiet, private cache) with `PIIMAGE_SEED=seed`.
fn piimage(args: &[&str], seed: &str) -> Output {
    Piimage::new()
        .args(args)
        .quiet()
        .private_cache()
        .env("PIIMAGE_SEED", seed)
        .current_dir(repo())
        .run()
}

fn ok(out: &Output, what: &str) -> String {
    assert!(out.status.success(), "{what} failed:\n{}", text(out));
    text(out)
}

/// A recipe file under target/, removed when dropped (also when a test fails).
struct Wrapper(PathBuf);

impl std::ops::Deref for Wrapper {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for Wrapper {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Wrapper {
    fn drop(&mut self) {
        std::fs::remove_file(&self.0).ok();
    }
}

/// The shipped preset `name`, as shipped but for raw (`img`) outputs (fast to read back), plus
/// `extra` YAML: a recipe under target/ extending it.
fn wrapper(name: &str, tag: &str, extra: &str) -> Wrapper {
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
    Wrapper(p)
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
    let dir = crate::support::tmp();
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
    let root = crate::support::tmp();
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
            assert_eq!(b.stat(n, "/etc/rancher/k3s/token"), (0o600, 0, 0), "{n}");
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

/// The fixtures the docker, swarm and mpi presets claim.
const DOCKER_FIXTURES: [Fixture; 2] = [Fixture::RaspiosBookworm, Fixture::RaspiosTrixie];

/// `ssh-keygen -y` of a private key file: its public key, without the comment.
fn public_of(private: &str) -> String {
    let dir = crate::support::tmp();
    let p = dir.path().join("k");
    std::fs::write(&p, private).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = run("ssh-keygen", &["-y", "-f", p.to_str().unwrap()]);
    assert!(out.status.success(), "ssh-keygen -y: {}", text(&out));
    let s = String::from_utf8(out.stdout).unwrap();
    s.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

/// `ssh-keygen -l -f FILE` parses every line (authorized_keys options included).
fn keygen_lists(contents: &str, lines: usize) {
    let dir = crate::support::tmp();
    let p = dir.path().join("keys");
    std::fs::write(&p, contents).unwrap();
    let out = run("ssh-keygen", &["-l", "-f", p.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "ssh-keygen -l:\n{contents}\n{}",
        text(&out)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        lines,
        "{contents}"
    );
}

#[test]
fn issue16_docker_preset_installs_at_first_boot_and_starts_compose() {
    validate_prints_description("docker", "Docker and Docker Compose: every node installs");
    let recipe = wrapper("docker", "t", "");
    let nodes = ["gw", "worker-01"];
    for fixture in DOCKER_FIXTURES {
        let b = build(&recipe, fixture, &nodes, SEED);
        b.fsck(&nodes);
        for n in nodes {
            let install = b.cat(n, "/usr/local/lib/piimage-presets/docker-install");
            assert!(
                install.contains("apt-get install -y docker.io \"$compose\"\n"),
                "{install}"
            );
            assert!(
                install.contains("\nusermod -aG docker admin\n"),
                "{install}"
            );
            assert!(!install.contains("download.docker.com"), "{install}");
            let compose = b.cat(n, "/srv/compose/compose.yaml");
            assert_eq!(
                compose,
                std::fs::read_to_string(repo().join("recipes/presets/docker/compose/compose.yaml"))
                    .unwrap()
            );
            // Compose's own schema check on the file the node starts.
            crate::support::compose_accepts(&compose);
            let labels = b.cat(n, "/etc/docker/daemon.json");
            let v: serde_json::Value = serde_json::from_str(&labels).unwrap();
            let role = if n == "gw" { "gateway" } else { "worker" };
            assert_eq!(
                v["labels"],
                serde_json::json!([format!("piimage.role={role}"), format!("piimage.node={n}")])
            );
            let wants = debugfs(
                &b.image(n),
                b.root(),
                "ls /etc/systemd/system/multi-user.target.wants",
            );
            for u in ["piimage-docker-install.service", "piimage-compose.service"] {
                assert!(wants.contains(u), "{n}: {u} not enabled: {wants}");
            }
            verify_units(
                &b,
                n,
                &["piimage-docker-install.service", "piimage-compose.service"],
                &[
                    "/usr/local/sbin/piimage-preset-step",
                    "/usr/local/sbin/piimage-compose",
                    "/usr/local/lib/piimage-presets/docker-install",
                ],
            );
        }
    }
    // Docker's own repository when the recipe says so; anything else is a validate error.
    let repo_recipe = wrapper("docker", "repo", "vars: { docker_source: docker }\n");
    let b = build(&repo_recipe, Fixture::RaspiosTrixie, &["worker-01"], SEED);
    let install = b.cat("worker-01", "/usr/local/lib/piimage-presets/docker-install");
    assert!(
        install.contains("https://download.docker.com/linux/$ID $VERSION_CODENAME stable"),
        "{install}"
    );
    assert!(install.contains("docker-compose-plugin"), "{install}");
    let bad = wrapper("docker", "bad", "vars: { docker_source: snap }\n");
    let out = piimage(&["validate", bad.to_str().unwrap()], SEED);
    assert!(
        !out.status.success()
            && text(&out).contains("docker_source_must_be_distribution_or_docker"),
        "{}",
        text(&out)
    );
    for r in [recipe, repo_recipe, bad] {
        std::fs::remove_file(r).ok();
    }
}

#[test]
fn issue16_swarm_preset_workers_fetch_the_token_with_the_seeded_key() {
    validate_prints_description("swarm", "Docker Swarm: gw initialises the swarm");
    let recipe = wrapper("swarm", "t", "");
    let nodes = ["gw", "worker-01", "worker-02"];
    for (i, fixture) in DOCKER_FIXTURES.into_iter().enumerate() {
        let seed = if i == 0 {
            SEED.to_owned()
        } else {
            format!("{SEED}-2")
        };
        let b = build(&recipe, fixture, &nodes, &seed);
        b.fsck(&nodes);
        let key = piimage::secrets::cluster::ssh_ed25519(seed.as_bytes(), "swarm_join_key", "pico")
            .unwrap();
        let gw_host_key = b.cat("gw", "/etc/ssh/ssh_host_ed25519_key.pub");
        let gw_host_key: String = gw_host_key
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        let auth = b.cat("gw", "/var/lib/piimage-swarm-join/.ssh/authorized_keys");
        assert_eq!(
            auth,
            format!(
                "restrict,command=\"/usr/local/sbin/piimage-swarm-token\" {}\n",
                key.public_openssh
            )
        );
        keygen_lists(&auth, 1);
        let manager = b.cat("gw", "/usr/local/lib/piimage-presets/swarm-setup");
        assert!(
            manager.contains("docker swarm init --advertise-addr 10.42.0.1\n"),
            "{manager}"
        );
        assert!(
            manager.contains("docker swarm join-token -q worker >"),
            "{manager}"
        );
        for w in ["worker-01", "worker-02"] {
            let private = b.cat(w, "/etc/piimage/swarm/join_key");
            assert_eq!(private, key.private_openssh, "{w}: the seed's key");
            assert_eq!(b.stat(w, "/etc/piimage/swarm/join_key"), (0o600, 0, 0));
            assert_eq!(b.stat(w, "/etc/piimage/swarm"), (0o700, 0, 0));
            // The key the worker holds is the one the manager accepts.
            assert!(key.public_openssh.starts_with(&public_of(&private)));
            // The manager's host key, as the manager's image has it.
            let known = b.cat(w, "/etc/piimage/swarm/known_hosts");
            assert_eq!(known, format!("10.42.0.1 {gw_host_key}\n"), "{w}");
            keygen_lists(&known, 1);
            let join = b.cat(w, "/usr/local/lib/piimage-presets/swarm-setup");
            assert!(join.contains("swarm-join@10.42.0.1)\n"), "{join}");
            assert!(join.contains(" 10.42.0.1:2377\n"), "{join}");
            assert!(!join.contains("swarm init"), "{join}");
        }
        assert!(!b.log.contains("PRIVATE KEY"), "the build printed a key");
        not_world_readable(b.dir.path(), key.private_openssh.lines().nth(1).unwrap());
        for n in nodes {
            verify_units(
                &b,
                n,
                &["piimage-swarm.service", "piimage-docker-install.service"],
                &[
                    "/usr/local/sbin/piimage-preset-step",
                    "/usr/local/sbin/piimage-swarm-token",
                    "/usr/local/lib/piimage-presets/swarm-setup",
                    "/usr/local/lib/piimage-presets/docker-install",
                ],
            );
        }
    }
    std::fs::remove_file(recipe).ok();
}

#[test]
fn issue16_mpi_preset_shares_a_seeded_key_and_lists_every_slot() {
    validate_prints_description("mpi", "Parallel compute (MPI): Open MPI on every node");
    let recipe = wrapper("mpi", "t", "");
    let nodes = ["gw", "worker-01", "worker-08"];
    for fixture in DOCKER_FIXTURES {
        let b = build(&recipe, fixture, &nodes, SEED);
        b.fsck(&nodes);
        let key =
            piimage::secrets::cluster::ssh_ed25519(SEED.as_bytes(), "mpi_key", "pico").unwrap();
        let out_known = std::fs::read_to_string(b.dir.path().join("known_hosts")).unwrap();
        for n in nodes {
            let private = b.cat(n, "/home/mpi/.ssh/id_ed25519");
            assert_eq!(private, key.private_openssh, "{n}");
            assert_eq!(
                b.stat(n, "/home/mpi/.ssh/id_ed25519"),
                (0o600, 1100, 1100),
                "{n}"
            );
            assert_eq!(b.stat(n, "/home/mpi/.ssh"), (0o700, 1100, 1100), "{n}");
            assert_eq!(
                b.cat(n, "/home/mpi/.ssh/authorized_keys"),
                format!("{}\n", key.public_openssh)
            );
            assert!(key.public_openssh.starts_with(&public_of(&private)));
            // known_hosts: every node, with the host key its own image holds (checked for the
            // built ones) and the one the output directory's known_hosts names.
            let known = b.cat(n, "/home/mpi/.ssh/known_hosts");
            keygen_lists(&known, 9);
            for m in nodes {
                let host = b.cat(m, "/etc/ssh/ssh_host_ed25519_key.pub");
                let host: String = host
                    .split_whitespace()
                    .take(2)
                    .collect::<Vec<_>>()
                    .join(" ");
                assert!(
                    known.contains(&format!(" {host}\n")),
                    "{n}: {m}'s key missing:\n{known}"
                );
                assert!(
                    out_known.contains(&host),
                    "{m}: not in the output's known_hosts"
                );
            }
            // The hostfile: `HOST slots=N` for each worker, in node order, comments aside
            // (Open MPI's hostfile syntax).
            let hostfile = b.cat(n, "/home/mpi/hostfile");
            let entries: Vec<(String, u32)> = hostfile
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
                .map(|l| {
                    let mut w = l.split_whitespace();
                    let host = w.next().unwrap().to_owned();
                    let slots = w.next().and_then(|s| s.strip_prefix("slots=")).unwrap();
                    assert!(w.next().is_none(), "{l}");
                    (host, slots.parse().unwrap())
                })
                .collect();
            let want: Vec<(String, u32)> = (1..=8).map(|i| (format!("worker-{i:02}"), 4)).collect();
            assert_eq!(entries, want, "{hostfile}");
            // Open MPI reads it so too: 32 processes, 4 on each worker.
            crate::support::mpirun_maps(&hostfile, &want);
        }
        let exports = b.cat("gw", "/etc/exports.d/piimage-mpi.exports");
        assert!(
            exports.contains("\n/home/mpi 10.42.0.0/24(rw,sync,no_subtree_check,root_squash)\n"),
            "{exports}"
        );
        // nfs-utils' exportfs takes it (in a private mount namespace).
        crate::support::exports_accepted(&exports, &["/home/mpi"]);
        for w in ["worker-01", "worker-08"] {
            let fstab = b.cat(w, "/etc/fstab");
            assert!(fstab.contains("gw:/home/mpi\t/home/mpi\tnfs\tdefaults,_netdev,nofail,x-systemd.automount\t0\t0\n"), "{fstab}");
        }
        for n in nodes {
            verify_units(
                &b,
                n,
                &["piimage-mpi-install.service"],
                &[
                    "/usr/local/sbin/piimage-preset-step",
                    "/usr/local/lib/piimage-presets/mpi-install",
                ],
            );
        }
        not_world_readable(b.dir.path(), key.private_openssh.lines().nth(1).unwrap());
    }
    std::fs::remove_file(recipe).ok();
}

/// Copies the files of `src` (recursively) into `dst`.
fn copy_tree(src: &Path, dst: &Path) {
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&to).unwrap();
            copy_tree(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
}

/// Runs `cmd` in `dir` with piimage's tool PATH.
fn run_in(dir: &Path, cmd: &str, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let path = format!(
        "{}:/usr/sbin:/sbin",
        std::env::var("PATH").unwrap_or_default()
    );
    let mut c = Command::new(cmd);
    c.args(args)
        .current_dir(dir)
        .env("PATH", path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"));
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

#[test]
fn issue16_ansible_preset_playbook_runs_against_the_built_inventory() {
    validate_prints_description(
        "ansible",
        "Ansible hand-off: plain nodes reachable over SSH",
    );
    let recipe = wrapper("ansible", "t", "");
    let nodes = ["gw", "worker-01"];
    for fixture in DOCKER_FIXTURES {
        let b = build(&recipe, fixture, &nodes, SEED);
        b.fsck(&nodes);
        let dir = b.dir.path();
        copy_tree(&repo().join("recipes/presets/ansible/playbook"), dir);
        // ansible.cfg next to the images picks piimage's inventory up by itself.
        let out = run_in(
            dir,
            "ansible-playbook",
            &["--syntax-check", "site.yml"],
            None,
        );
        assert!(out.status.success(), "syntax-check:\n{}", text(&out));
        let out = run_in(dir, "ansible-playbook", &["--list-hosts", "site.yml"], None);
        let listed = ok(&out, "ansible-playbook --list-hosts");
        let plays: Vec<&str> = listed.split("play #").skip(1).collect();
        assert_eq!(plays.len(), 3, "{listed}");
        assert!(plays[0].contains("hosts (9):"), "{listed}");
        assert!(
            plays[1].contains("hosts (1):") && plays[1].contains("gw"),
            "{listed}"
        );
        assert!(
            plays[2].contains("hosts (8):") && plays[2].contains("worker-08"),
            "{listed}"
        );
        let out = run_in(dir, "ansible-inventory", &["--graph"], None);
        let graph = ok(&out, "ansible-inventory --graph");
        assert!(
            graph.contains("@gateway:") && graph.contains("@worker:"),
            "{graph}"
        );
        // The gateway role's check holds on the image: forwarding is baked.
        let sysctl = b.cat("gw", "/etc/sysctl.d/90-piimage-forwarding.conf");
        assert!(sysctl.contains("net.ipv4.ip_forward=1\n"), "{sysctl}");
    }
    std::fs::remove_file(recipe).ok();
}

#[test]
fn issue16_terraform_preset_locals_read_nodes_json() {
    validate_prints_description(
        "terraform",
        "Terraform and scripts: plain nodes, and nodes.json",
    );
    let recipe = wrapper("terraform", "t", "");
    let nodes = ["gw", "worker-01"];
    for fixture in DOCKER_FIXTURES {
        let b = build(&recipe, fixture, &nodes, SEED);
        b.fsck(&nodes);
        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(b.dir.path().join("nodes.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(json["nodes"].as_array().unwrap().len(), 9);
        if which("terraform").is_none() {
            // No Debian package: CI's image has none. Say so rather than pretend.
            eprintln!("terraform is not installed: main.tf was not evaluated");
            continue;
        }
        let tf = crate::support::tmp();
        std::fs::copy(
            repo().join("recipes/presets/terraform/main.tf"),
            tf.path().join("main.tf"),
        )
        .unwrap();
        let out = run_in(
            tf.path(),
            "terraform",
            &["init", "-backend=false", "-input=false", "-no-color"],
            None,
        );
        ok(&out, "terraform init");
        let out = run_in(tf.path(), "terraform", &["validate", "-no-color"], None);
        ok(&out, "terraform validate");
        let var = format!("nodes_json={}", b.dir.path().join("nodes.json").display());
        let eval = |expr: &str| -> serde_json::Value {
            let out = run_in(
                tf.path(),
                "terraform",
                &["console", "-var", &var],
                Some(&format!("jsonencode({expr})\n")),
            );
            assert!(
                out.status.success(),
                "terraform console {expr}:\n{}",
                text(&out)
            );
            let s: String =
                serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
            serde_json::from_str(&s).unwrap()
        };
        let workers: Vec<String> = (1..=8).map(|i| format!("worker-{i:02}")).collect();
        assert_eq!(
            eval("local.roles"),
            serde_json::json!({ "gateway": ["gw"], "worker": workers })
        );
        let addrs: Vec<String> = (11..=18).map(|i| format!("10.42.0.{i}")).collect();
        assert_eq!(eval("local.worker_addresses"), serde_json::json!(addrs));
        assert_eq!(
            eval("local.addresses[\"gw\"]"),
            serde_json::json!("192.168.1.50")
        );
        let gw_key = json["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == "gw")
            .unwrap()["ssh"]["host_key"]
            .clone();
        assert_eq!(eval("local.host_keys[\"gw\"]"), gw_key);
    }
    std::fs::remove_file(recipe).ok();
}

#[test]
fn issue16_separate_preset_gives_each_node_its_own_job() {
    validate_prints_description("separate", "Separate machines: a gateway, a DNS/DHCP node");
    let recipe = wrapper("separate", "t", "");
    let dhcp = wrapper(
        "separate",
        "dhcp",
        "roles:\n  dns:\n    vars:\n      dhcp_range: \"10.42.0.100,10.42.0.199,12h\"\n",
    );
    let nodes = ["gw", "dns", "storage", "monitor"];
    for fixture in DOCKER_FIXTURES {
        let b = build(&recipe, fixture, &nodes, SEED);
        b.fsck(&nodes);
        // Per-node files: each only where it belongs.
        let only = [
            ("dns", "/etc/dnsmasq.d/piimage-cluster.conf"),
            ("storage", "/etc/exports.d/piimage-nas.exports"),
            ("monitor", "/etc/prometheus/prometheus.yml"),
        ];
        for (owner, path) in only {
            for n in nodes {
                assert_eq!(
                    crate::support::debugfs_exists(&b.image(n), b.root(), path),
                    n == owner,
                    "{n}: {path}"
                );
            }
        }
        // dnsmasq parses its configuration (`dnsmasq --test`), without and with DHCP.
        let tmp = crate::support::tmp();
        let check_dnsmasq = |conf: &str, what: &str| {
            let f = tmp.path().join("dnsmasq.conf");
            std::fs::write(&f, conf).unwrap();
            let out = run("dnsmasq", &["--test", "-C", f.to_str().unwrap()]);
            assert!(
                out.status.success() && text(&out).contains("syntax check OK"),
                "{what}: dnsmasq --test:\n{conf}\n{}",
                text(&out)
            );
        };
        let conf = b.cat("dns", "/etc/dnsmasq.d/piimage-cluster.conf");
        assert!(
            conf.contains("\nlisten-address=127.0.0.1,10.42.0.21\n")
                && !conf.contains("dhcp-range"),
            "{conf}"
        );
        check_dnsmasq(&conf, "dns only");
        let d = build(&dhcp, fixture, &["dns"], SEED);
        let conf = d.cat("dns", "/etc/dnsmasq.d/piimage-cluster.conf");
        for line in [
            "dhcp-range=10.42.0.100,10.42.0.199,12h",
            "dhcp-option=option:router,10.42.0.1",
            "dhcp-host=gw,10.42.0.1",
            "dhcp-host=monitor,10.42.0.23",
        ] {
            assert!(conf.contains(&format!("\n{line}")), "{line}: {conf}");
        }
        check_dnsmasq(&conf, "with DHCP");
        let exports = b.cat("storage", "/etc/exports.d/piimage-nas.exports");
        assert!(
            exports.contains("\n/srv/nas 10.42.0.0/24(rw,sync,no_subtree_check,root_squash)\n"),
            "{exports}"
        );
        // prometheus.yml: YAML with one node-exporter target per node (promtool is not
        // installable here: Python's YAML parser and the shape instead).
        let prom = b.cat("monitor", "/etc/prometheus/prometheus.yml");
        let f = tmp.path().join("prometheus.yml");
        std::fs::write(&f, &prom).unwrap();
        let out = run(
            "python3",
            &[
                "-c",
                "import sys,yaml; d=yaml.safe_load(open(sys.argv[1])); \
                 print(' '.join(t for c in d['scrape_configs'][0]['static_configs'] for t in c['targets']))",
                f.to_str().unwrap(),
            ],
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "10.42.0.1:9100 10.42.0.21:9100 10.42.0.22:9100 10.42.0.23:9100",
            "{}",
            text(&out)
        );
        let want = [
            ("gw", "prometheus-node-exporter", ""),
            (
                "dns",
                "dnsmasq prometheus-node-exporter",
                "systemctl enable --now dnsmasq.service\n",
            ),
            (
                "storage",
                "nfs-kernel-server prometheus-node-exporter",
                "exportfs -ra\n",
            ),
            (
                "monitor",
                "prometheus prometheus-node-exporter",
                "systemctl enable --now prometheus.service\n",
            ),
        ];
        for (n, packages, tail) in want {
            let script = b.cat(n, "/usr/local/lib/piimage-presets/packages-install");
            assert!(
                script.contains(&format!("--force-confold {packages}\n")),
                "{n}: {script}"
            );
            assert!(script.ends_with(tail), "{n}: {script}");
            verify_units(
                &b,
                n,
                &["piimage-packages-install.service"],
                &[
                    "/usr/local/sbin/piimage-preset-step",
                    "/usr/local/lib/piimage-presets/packages-install",
                ],
            );
        }
    }
    for r in [recipe, dhcp] {
        std::fs::remove_file(r).ok();
    }
}

/// Every shipped preset, by directory name.
fn presets() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo().join("recipes/presets"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn issue16_every_preset_matches_the_schema_has_a_readme_and_is_in_the_table() {
    let names = presets();
    assert_eq!(
        names,
        [
            "ansible",
            "docker",
            "k3s",
            "mpi",
            "separate",
            "swarm",
            "terraform"
        ]
    );
    let table = std::fs::read_to_string(repo().join("recipes/README.md")).unwrap();
    for n in &names {
        let dir = repo().join("recipes/presets").join(n);
        let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
        assert!(
            readme.contains("**Builds on**"),
            "{n}: README names no fixtures"
        );
        assert!(
            table.contains(&format!("[`{n}`](presets/{n}/README.md)")),
            "{n} is not in recipes/README.md's table"
        );
        // Python's jsonschema against the shipped schema (as tests/integration/cli.rs does for
        // the top-level recipes).
        let out = run(
            "python3",
            &[
                "-c",
                "import sys,json,yaml,jsonschema; \
                 jsonschema.validate(yaml.safe_load(open(sys.argv[2])), json.load(open(sys.argv[1])))",
                repo().join("recipes/schema.json").to_str().unwrap(),
                dir.join("recipe.yaml").to_str().unwrap(),
            ],
        );
        assert!(out.status.success(), "{n}: schema:\n{}", text(&out));
    }
    // Without the seed, validate says which variable is missing (and --skip-secrets passes).
    let (mut pi, _pi_dirs) = Piimage::new().command();
    let out = pi
        .args(["validate", "recipes/presets/k3s/recipe.yaml"])
        .env_remove("PIIMAGE_SEED")
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(
        !out.status.success() && text(&out).contains("PIIMAGE_SEED"),
        "{}",
        text(&out)
    );
    let (mut pi, _pi_dirs) = Piimage::new().command();
    let out = pi
        .args([
            "validate",
            "recipes/presets/k3s/recipe.yaml",
            "--skip-secrets",
        ])
        .env_remove("PIIMAGE_SEED")
        .current_dir(repo())
        .output()
        .unwrap();
    ok(&out, "validate --skip-secrets");
}
