//! Issue 10, hand-off: output directories that work after being moved or downloaded, builds
//! that add up in one directory, shards and `piimage merge`, and ssh/Ansible files that connect
//! on their own. Oracles: `ssh -G`, `ssh-keygen -F`, `ansible-inventory`, `sha256sum -c`,
//! Imager's JSON schema (Python `jsonschema`), Python's `urllib` for URL resolution, and real
//! connections (`ssh`, `ansible -m ping`) to an `sshd` on 127.0.0.1 holding a node's baked key.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::json;
use sha2::{Digest, Sha256};
use xtask::fixtures::{self, Fixture, Format};

use crate::support::Piimage;
use crate::support::{debugfs, run, run_ok, sh, tree};

/// Fast outputs for the tests: zstd and a block map.
const ZST: &str = "img.zst, bmap";

const SEED: (&str, &str) = ("PIIMAGE_TEST_SEED", "handoff-seed");

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn base() -> PathBuf {
    fixtures::fixture_path(Fixture::RaspiosBookworm, Format::Xz).unwrap()
}

/// Runs piimage in `cwd` (quiet, with a private cache).
fn piimage_in(cwd: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    Piimage::new()
        .args(args)
        .quiet()
        .private_cache()
        .current_dir(cwd)
        .envs(envs)
        .run()
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A recipe next to the shipped ones (so their relative paths work): `extends`, a seed from the
/// environment, `formats` (fast ones) with a manifest, plus `extra` YAML.
fn recipe(name: &str, extends: &str, formats: &str, extra: &str) -> PathBuf {
    let p = repo()
        .join("target")
        .join(format!("test-handoff-{name}-{}.yaml", std::process::id()));
    std::fs::write(
        &p,
        format!(
            "extends: ../recipes/{extends}\nseed: {{ env: PIIMAGE_TEST_SEED }}\n\
             output: {{ formats: [{formats}], imager_manifest: true }}\n{extra}"
        ),
    )
    .unwrap();
    p
}

fn build(recipe: &Path, out: &Path, more: &[&str], seed: (&str, &str)) {
    let base = base();
    let mut args = vec![
        "build",
        recipe.to_str().unwrap(),
        "--base",
        base.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(more);
    ok(
        &piimage_in(&repo(), &args, &[seed]),
        &format!("build {args:?}"),
    );
}

const CLUSTER_FILES: [&str; 7] = [
    "SHA256SUMS",
    "nodes.json",
    "hosts",
    "known_hosts",
    "ssh_config",
    "inventory.yaml",
    "pico.rpi-imager-manifest",
];

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn sha256_file(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

/// Python resolves each relative `url` of the manifest against the manifest's own `file://`
/// URL (RFC 3986, `urllib.parse.urljoin`) and prints the local paths.
fn resolve_manifest_urls(manifest: &Path, urls: &[String]) -> Vec<PathBuf> {
    const RESOLVE: &str = "import sys,pathlib,urllib.parse as p\n\
        base=pathlib.Path(sys.argv[1]).as_uri()\n\
        for u in sys.argv[2:]:\n    \
            r=p.urlparse(p.urljoin(base,u)); assert r.scheme=='file', u\n    \
            print(p.unquote(r.path))";
    let mut c = Command::new("python3");
    c.arg("-c").arg(RESOLVE).arg(manifest).args(urls);
    let out = c.output().unwrap();
    ok(&out, "python3 urljoin");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(PathBuf::from)
        .collect()
}

/// Checks the manifest against Imager's schema (plus `imager.devices`) and that every `url`
/// and `bmap_url` resolves (with `resolve`) to a file with the recorded size and sha256.
fn check_manifest(manifest: &Path, resolve: impl Fn(&[String]) -> Vec<PathBuf>) -> usize {
    let scratch = crate::support::tmp();
    let schema = crate::manifest::schema_with_imager_devices(scratch.path());
    crate::manifest::validate(manifest, &schema).unwrap_or_else(|e| panic!("schema:\n{e}"));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(manifest).unwrap()).unwrap();
    let list = v["os_list"].as_array().unwrap();
    let urls: Vec<String> = list
        .iter()
        .map(|e| e["url"].as_str().unwrap().to_owned())
        .collect();
    let paths = resolve(&urls);
    assert_eq!(paths.len(), list.len());
    for (e, path) in list.iter().zip(&paths) {
        assert!(path.is_file(), "{} -> {}", e["url"], path.display());
        assert_eq!(
            e["image_download_size"],
            std::fs::metadata(path).unwrap().len()
        );
        assert_eq!(e["image_download_sha256"], sha256_file(path).as_str());
        // The uncompressed image has the recorded sha256 too.
        let raw = run("zstd", &["-dc", path.to_str().unwrap()]);
        assert_eq!(
            e["extract_sha256"],
            hex::encode(Sha256::digest(&raw.stdout))
        );
        let bmap = resolve(&[e["bmap_url"].as_str().unwrap().to_owned()]);
        assert!(bmap[0].is_file(), "{}", bmap[0].display());
    }
    list.len()
}

/// No file of `dir` mentions `needle` (a path of the building machine).
fn no_path_in(dir: &Path, needle: &str) {
    for (name, shown) in tree(dir) {
        assert!(!shown.contains(needle), "{name} names {needle}:\n{shown}");
    }
}

#[test]
fn issue10_gateway_and_worker_in_one_directory_survive_a_move() {
    let root = crate::support::tmp();
    let gateway = recipe("gw", "gateway.yaml", ZST, "");
    let worker = recipe("worker", "worker.yaml", ZST, "");
    let first = root.path().join("build one/out");
    let second = root.path().join("b");
    for dir in [&first, &second] {
        build(&gateway, dir, &[], SEED);
        build(&worker, dir, &["--node", "worker-01"], SEED);
    }
    // The same seeded builds in two directories: byte-identical, cluster files included.
    assert_eq!(tree(&first), tree(&second));

    // Both builds add up: SHA256SUMS and the manifest list both nodes.
    let sums = read(&first, "SHA256SUMS");
    for f in [
        "pico-gw.img.zst",
        "pico-gw.img.bmap",
        "pico-worker-01.img.zst",
    ] {
        assert!(
            sums.contains(&format!("  {f}\n")),
            "{f} missing from\n{sums}"
        );
    }
    assert_eq!(sums.lines().count(), 4, "{sums}");

    // Moved (as an artifact is downloaded elsewhere): everything still fits together.
    let moved = root.path().join("moved here");
    std::fs::rename(&first, &moved).unwrap();
    no_path_in(&moved, first.to_str().unwrap());
    no_path_in(&moved, root.path().to_str().unwrap());
    no_path_in(&moved, repo().to_str().unwrap());
    sh(&moved, "sha256sum -c --quiet SHA256SUMS");

    // known_hosts: every node (the seed gives the keys of nodes not built too).
    let kh = moved.join("known_hosts");
    assert_eq!(read(&moved, "known_hosts").lines().count(), 9);
    for name in ["gw", "worker-01", "worker-08", "10.42.0.11", "gw.pico.lan"] {
        let found = run_ok("ssh-keygen", &["-F", name, "-f", kh.to_str().unwrap()]);
        assert!(found.contains("ssh-ed25519 "), "{name}: {found}");
    }
    // nodes.json: every node, the built ones with their files; fingerprints as ssh-keygen -l
    // prints them for known_hosts.
    let nodes: serde_json::Value = serde_json::from_str(&read(&moved, "nodes.json")).unwrap();
    assert_eq!(nodes["schema_version"], 1);
    assert_eq!(nodes["cluster"], "pico");
    let list = nodes["nodes"].as_array().unwrap();
    assert_eq!(list.len(), 9);
    let fps = run_ok("ssh-keygen", &["-l", "-f", kh.to_str().unwrap()]);
    for n in list {
        let name = n["name"].as_str().unwrap();
        let fp = n["ssh"]["host_key_fingerprint"].as_str().unwrap();
        assert!(
            fps.lines().any(|l| l.contains(&format!(" {fp} {name},"))),
            "{name} {fp} not in\n{fps}"
        );
        assert_eq!(n["built"], name == "gw" || name == "worker-01", "{name}");
        if let Some(files) = n["image"]["files"].as_array() {
            assert_eq!(files.len(), 2);
            for f in files {
                let path = moved.join(f["name"].as_str().unwrap());
                assert_eq!(f["sha256"], sha256_file(&path).as_str());
            }
        }
    }
    assert_eq!(list[0]["name"], "gw");
    assert_eq!(list[0]["addresses"], serde_json::json!(["192.168.1.50"]));

    // ssh -G from the directory: known_hosts relative to it, jump through gw.
    let g = Command::new("ssh")
        .args(["-G", "-F", "ssh_config", "worker-01"])
        .current_dir(&moved)
        .output()
        .unwrap();
    ok(&g, "ssh -G");
    let eff = String::from_utf8_lossy(&g.stdout);
    for want in [
        "hostname 10.42.0.11\n",
        "user admin\n",
        "proxyjump gw\n",
        "hostkeyalias worker-01\n",
        "stricthostkeychecking true\n",
        "userknownhostsfile known_hosts\n",
    ] {
        assert!(eff.contains(want), "{want:?} not in\n{eff}");
    }

    // Item 4, addresses per network: the laptop reaches gw at its access (LAN) address, the
    // nodes' /etc/hosts name it by its cluster address.
    let g = Command::new("ssh")
        .args(["-G", "-F", "ssh_config", "gw"])
        .current_dir(&moved)
        .output()
        .unwrap();
    ok(&g, "ssh -G gw");
    assert!(String::from_utf8_lossy(&g.stdout).contains("hostname 192.168.1.50\n"));
    assert!(read(&moved, "hosts").contains("192.168.1.50\tgw.pico.lan gw\n"));
    let info = fixtures::info(Fixture::RaspiosBookworm);
    for node in ["gw", "worker-01"] {
        let raw = root.path().join(format!("{node}.img"));
        let zst = moved.join(format!("pico-{node}.img.zst"));
        run_ok(
            "zstd",
            &[
                "-q",
                "-d",
                zst.to_str().unwrap(),
                "-o",
                raw.to_str().unwrap(),
            ],
        );
        let hosts = debugfs(&raw, info.root.offset(), "cat /etc/hosts");
        assert!(
            hosts
                .lines()
                .any(|l| l.starts_with("10.42.0.1") && l.ends_with(" gw")),
            "{node}: gw's cluster address missing from /etc/hosts:\n{hosts}"
        );
        assert!(!hosts.contains("192.168.1.50"), "{node}:\n{hosts}");
        std::fs::remove_file(&raw).unwrap();
    }

    // ansible-inventory from another directory.
    let inv = moved.join("inventory.yaml");
    let out = Command::new("ansible-inventory")
        .args(["-i", inv.to_str().unwrap(), "--list"])
        .current_dir("/")
        .output()
        .unwrap();
    ok(&out, "ansible-inventory");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["gateway"]["hosts"], serde_json::json!(["gw"]));
    assert_eq!(v["worker"]["hosts"].as_array().unwrap().len(), 8, "{v}");
    assert_eq!(v["_meta"]["hostvars"]["gw"]["ansible_host"], "192.168.1.50");
    let w1 = &v["_meta"]["hostvars"]["worker-01"];
    assert_eq!(w1["ansible_host"], "10.42.0.11");
    let args = w1["ansible_ssh_common_args"].as_str().unwrap();
    for want in [
        "-F '{{ inventory_dir }}/ssh_config'",
        "-o 'UserKnownHostsFile={{ inventory_dir }}/known_hosts'",
        "-o HostKeyAlias=worker-01",
        "-o StrictHostKeyChecking=yes",
        "ProxyCommand=ssh -F \"{{ inventory_dir }}/ssh_config\"",
        "-W \"[%h]:%p\" gw'",
    ] {
        assert!(args.contains(want), "{want} not in {args}");
    }

    // The manifest: schema-valid, relative URLs resolving next to it, right sha256.
    let manifest = moved.join("pico.rpi-imager-manifest");
    assert_eq!(
        check_manifest(&manifest, |u| resolve_manifest_urls(&manifest, u)),
        2
    );

    // At the destination, localize writes the absolute forms.
    let out = piimage_in(
        Path::new("/"),
        &["localize", "--json", moved.to_str().unwrap()],
        &[],
    );
    ok(&out, "localize");
    let local = moved.join("pico.local.rpi-imager-manifest");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["files"],
        json!([
            moved.join("ssh_config.local").display().to_string(),
            local.display().to_string()
        ]),
        "{v}"
    );
    let decode = |urls: &[String]| -> Vec<PathBuf> {
        urls.iter()
            .map(|u| piimage::output::manifest::path_from_file_uri(u).unwrap_or_default())
            .collect()
    };
    assert_eq!(check_manifest(&local, decode), 2);
    let g = Command::new("ssh")
        .args(["-G", "-F"])
        .arg(moved.join("ssh_config.local"))
        .arg("gw")
        .current_dir("/")
        .output()
        .unwrap();
    ok(&g, "ssh -G ssh_config.local");
    let eff = String::from_utf8_lossy(&g.stdout);
    assert!(
        eff.contains(&format!("userknownhostsfile {}\n", kh.display())),
        "{eff}"
    );
    std::fs::remove_file(gateway).ok();
    std::fs::remove_file(worker).ok();
}

#[test]
fn issue10_four_shards_and_merge_equal_one_build() {
    let root = crate::support::tmp();
    let worker = recipe("shards", "worker.yaml", ZST, "");
    let whole = root.path().join("whole");
    build(&worker, &whole, &[], SEED);
    let shards: Vec<PathBuf> = (1..=4)
        .map(|k| {
            let dir = root.path().join(format!("shard-{k}"));
            build(&worker, &dir, &["--shard", &format!("{k}/4")], SEED);
            dir
        })
        .collect();
    // Round robin: shard 1 has worker-01 and worker-05.
    let s1 = read(&shards[0], "SHA256SUMS");
    assert!(s1.contains("pico-worker-01.img.zst") && s1.contains("pico-worker-05.img.zst"));
    assert_eq!(s1.lines().count(), 4, "{s1}");

    let merged = root.path().join("merged");
    let mut args = vec!["merge", "--json", "--out", merged.to_str().unwrap()];
    args.extend(shards.iter().map(|d| d.to_str().unwrap()));
    let out = piimage_in(root.path(), &args, &[]);
    ok(&out, "merge");
    // --json: what was merged, file names relative to the directory.
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((&v["command"], &v["ok"]), (&json!("merge"), &json!(true)));
    let mut nodes: Vec<&str> = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    nodes.sort_unstable();
    let want: Vec<String> = (1..=8).map(|i| format!("worker-0{i}")).collect();
    assert_eq!(nodes, want);
    let copied: Vec<&str> = v["copied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    for i in 1..=8 {
        assert!(
            copied.contains(&format!("pico-worker-0{i}.img.zst").as_str()),
            "{v}"
        );
    }
    for name in &copied {
        assert!(merged.join(name).is_file(), "{name}");
    }
    for f in CLUSTER_FILES {
        assert!(
            v["cluster_files"].as_array().unwrap().contains(&json!(f)),
            "{f} not in {v}"
        );
    }
    for f in CLUSTER_FILES {
        assert_eq!(read(&whole, f), read(&merged, f), "{f}");
    }
    assert_eq!(tree(&whole), tree(&merged), "images and records too");
    sh(&merged, "sha256sum -c --quiet SHA256SUMS");

    // CI's download-artifact with merge-multiple: every shard's files in one directory, then
    // `piimage merge DIR` completes it in place.
    let together = root.path().join("together");
    std::fs::create_dir(&together).unwrap();
    for s in &shards {
        sh(
            root.path(),
            &format!("cp -r '{}/.' '{}/'", s.display(), together.display()),
        );
    }
    ok(
        &piimage_in(root.path(), &["merge", together.to_str().unwrap()], &[]),
        "merge in place",
    );
    for f in CLUSTER_FILES {
        assert_eq!(read(&whole, f), read(&together, f), "{f}");
    }

    // Served over HTTPS: --base-url puts every URL under it (and changes nothing else).
    ok(
        &piimage_in(
            root.path(),
            &[
                "merge",
                together.to_str().unwrap(),
                "--base-url",
                "https://dl.example/pico/v1/",
            ],
            &[],
        ),
        "merge --base-url",
    );
    let m: serde_json::Value =
        serde_json::from_str(&read(&together, "pico.rpi-imager-manifest")).unwrap();
    let entries = m["os_list"].as_array().unwrap();
    assert_eq!(entries.len(), 8);
    for e in entries {
        for key in ["url", "bmap_url"] {
            let url = e[key].as_str().unwrap();
            let name = url.strip_prefix("https://dl.example/pico/v1/").unwrap();
            assert!(together.join(name).is_file(), "{url}");
        }
    }
    assert_eq!(read(&whole, "ssh_config"), read(&together, "ssh_config"));

    // Another seed: refused by merge and by a build into the same directory.
    let other = root.path().join("other-seed");
    build(
        &worker,
        &other,
        &["--node", "worker-01"],
        ("PIIMAGE_TEST_SEED", "another"),
    );
    let refused = |json: bool| {
        let m2 = root.path().join("m2");
        let mut args = vec!["merge", "--out", m2.to_str().unwrap()];
        args.extend([shards[0].to_str().unwrap(), other.to_str().unwrap()]);
        if json {
            args.push("--json");
        }
        let out = piimage_in(root.path(), &args, &[]);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            !m2.exists() || tree(&m2).is_empty(),
            "a refused merge writes nothing"
        );
        out
    };
    let out = refused(false);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("other-seed/records/") && err.contains("built with seed id"),
        "{err}"
    );
    let v: serde_json::Value = serde_json::from_slice(&refused(true).stdout).unwrap();
    assert_eq!(v["ok"], false);
    let message = v["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("built with seed id"), "{v}");
    let before = tree(&shards[1]);
    let base = base();
    let out = piimage_in(
        &repo(),
        &[
            "build",
            worker.to_str().unwrap(),
            "--base",
            base.to_str().unwrap(),
            "--out",
            shards[1].to_str().unwrap(),
        ],
        &[("PIIMAGE_TEST_SEED", "another")],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Build into another directory"), "{err}");
    assert_eq!(tree(&shards[1]), before, "a refused build writes nothing");
    std::fs::remove_file(worker).ok();
}

/// A free TCP port on 127.0.0.1 (bound, then released for sshd).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `sshd -D` on 127.0.0.1:`port` with `host_key`, accepting `authorized` for the current user;
/// killed on drop.
struct Sshd(std::process::Child);

impl Sshd {
    fn start(dir: &Path, host_key: &Path, authorized: &Path, port: u16) -> Self {
        let conf = dir.join("sshd_config");
        std::fs::write(
            &conf,
            format!(
                "ListenAddress 127.0.0.1:{port}\nHostKey {}\nAuthorizedKeysFile {}\n\
                 PidFile none\nUsePAM no\nStrictModes no\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n\
                 Subsystem sftp internal-sftp\n",
                host_key.display(),
                authorized.display()
            ),
        )
        .unwrap();
        std::fs::create_dir_all("/run/sshd").ok();
        let mut child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&conf)
            .stderr(std::fs::File::create(dir.join("sshd.log")).unwrap())
            .spawn()
            .unwrap();
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Self(child);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "sshd did not start:\n{}",
            std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
        );
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn issue10_ssh_and_ansible_connect_with_the_generated_files_alone() {
    let root = crate::support::tmp();
    let client = root.path().join("login key");
    run_ok(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-f",
            client.to_str().unwrap(),
        ],
    );
    let gateway = recipe(
        "login",
        "gateway.yaml",
        "img",
        &format!("ssh: {{ identity_file: \"{}\" }}\n", client.display()),
    );
    let built = root.path().join("built");
    build(&gateway, &built, &[], SEED);
    // Downloaded elsewhere.
    let dir = root.path().join("downloaded");
    std::fs::rename(&built, &dir).unwrap();

    // sshd holds the host key baked into the image.
    let info = fixtures::info(Fixture::RaspiosBookworm);
    let key = root.path().join("host_key");
    debugfs(
        &dir.join("pico-gw.img"),
        info.root.offset(),
        &format!("dump /etc/ssh/ssh_host_ed25519_key {}", key.display()),
    );
    sh(root.path(), "chmod 600 host_key");
    let authorized = root.path().join("authorized_keys");
    std::fs::copy(client.with_extension("pub"), &authorized).unwrap();
    let port = free_port();
    let _sshd = Sshd::start(root.path(), &key, &authorized, port);
    let me = run_ok("id", &["-un"]).trim().to_owned();
    let port_s = port.to_string();

    let ssh = |cwd: &Path, config: &Path| {
        Command::new("ssh")
            .arg("-F")
            .arg(config)
            .args(["-o", "HostName=127.0.0.1", "-o", &format!("Port={port}")])
            .args([
                "-o",
                &format!("User={me}"),
                "-o",
                "BatchMode=yes",
                "gw",
                "echo",
                "in",
            ])
            .current_dir(cwd)
            .output()
            .unwrap()
    };
    // `cd DIR && ssh -F ssh_config NODE`: strict checking against DIR/known_hosts, the login
    // key from the recipe's ssh.identity_file.
    let out = ssh(&dir, Path::new("ssh_config"));
    ok(&out, "ssh -F ssh_config gw");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "in\n");
    // From elsewhere, the relative known_hosts is not found: strict checking refuses.
    let out = ssh(Path::new("/"), &dir.join("ssh_config"));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Host key verification failed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A node behind the gateway given a loopback HostName (a forwarded port, a VM) is reached
    // directly: no jump through gw.
    let g = |extra: &[&str]| {
        let out = Command::new("ssh")
            .args(["-G", "-F", "ssh_config"])
            .args(extra)
            .arg("worker-01")
            .current_dir(&dir)
            .output()
            .unwrap();
        ok(&out, "ssh -G");
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(g(&[]).contains("\nproxyjump gw\n"));
    let direct = g(&["-o", "HostName=127.0.0.1"]);
    assert!(!direct.contains("proxyjump"), "{direct}");
    assert!(direct.contains("\nhostkeyalias worker-01\n"), "{direct}");
    // After `piimage localize`, ssh_config.local works from anywhere.
    ok(
        &piimage_in(Path::new("/"), &["localize", dir.to_str().unwrap()], &[]),
        "localize",
    );
    ok(
        &ssh(Path::new("/"), &dir.join("ssh_config.local")),
        "ssh_config.local",
    );

    // Ansible from another directory, host keys checked against DIR/known_hosts. The "remote"
    // is this machine: its system python runs the module (a login shell's PATH may differ).
    let python = ["/usr/bin/python3", "/usr/local/bin/python3"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .unwrap_or("python3");
    // No ControlMaster: a persisting master connection from an earlier run would be reused
    // without a new host key check (and would outlive the test).
    let ansible = |inv: &Path, node: &str| {
        Command::new("ansible")
            .arg("-i")
            .arg(inv)
            .args([node, "-m", "ping", "-e", "ansible_host=127.0.0.1"])
            .args([
                "-e",
                &format!("ansible_port={port_s}"),
                "-e",
                &format!("ansible_user={me}"),
            ])
            .env("ANSIBLE_PYTHON_INTERPRETER", python)
            .env("ANSIBLE_LOCAL_TEMP", root.path().join("ansible-tmp"))
            .env("ANSIBLE_SSH_ARGS", "-C -o ControlMaster=no")
            .env_remove("ANSIBLE_HOST_KEY_CHECKING")
            .current_dir("/")
            .output()
            .unwrap()
    };
    let out = ansible(&dir.join("inventory.yaml"), "gw");
    ok(&out, "ansible -m ping");
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"ping\": \"pong\""));
    // worker-01 (behind gw) on the loopback: reached directly, and refused because this sshd
    // holds gw's key, not worker-01's (through gw it would have failed to reach gw instead).
    let out = ansible(&dir.join("inventory.yaml"), "worker-01");
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Host key verification failed"), "{text}");
    // With another key in known_hosts, Ansible refuses to connect.
    let other = root.path().join("other");
    std::fs::create_dir(&other).unwrap();
    for f in ["inventory.yaml", "ssh_config"] {
        std::fs::copy(dir.join(f), other.join(f)).unwrap();
    }
    let wrong = std::fs::read_to_string(client.with_extension("pub")).unwrap();
    let wrong: Vec<&str> = wrong.split_whitespace().take(2).collect();
    std::fs::write(
        other.join("known_hosts"),
        format!("gw {}\n", wrong.join(" ")),
    )
    .unwrap();
    let out = ansible(&other.join("inventory.yaml"), "gw");
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("UNREACHABLE") && text.contains("Host key verification failed"),
        "{text}"
    );
    std::fs::remove_file(gateway).ok();
}
