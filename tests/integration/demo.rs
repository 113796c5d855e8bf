//! The demo base committed in `demo/` and README's two commands (issue 13, item 8).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use crate::support;
use crate::support::Piimage;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The two commands of README's first code block.
fn readme_commands() -> (String, String) {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let block = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("README.md has a ```sh block");
    let lines: Vec<&str> = block.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        2,
        "README's first block is two commands: {lines:?}"
    );
    (lines[0].to_owned(), lines[1].to_owned())
}

fn sha256_reader(mut out: impl Read) -> String {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = out.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    hex::encode(h.finalize())
}

fn sha256_file(path: &Path) -> String {
    sha256_reader(std::fs::File::open(path).unwrap())
}

/// sha256 of what the real `xz -dc` decodes `path` to.
fn sha256_of_xz_decoded(path: &Path) -> String {
    let mut child = Command::new("xz")
        .args(["-dc", "--"])
        .arg(path)
        .stdout(Stdio::piped())
        .spawn()
        .expect("xz runs");
    let sum = sha256_reader(child.stdout.take().unwrap());
    assert!(child.wait().unwrap().success(), "xz -dc {}", path.display());
    sum
}

#[test]
fn issue13_demo_base_decodes_to_the_fixture_the_builder_makes_now() {
    let raw = xtask::fixture_path(xtask::DEMO_FIXTURE, xtask::Format::Raw).unwrap();
    let index = std::fs::read_to_string(raw.parent().unwrap().join(xtask::INDEX_FILE)).unwrap();
    let index: serde_json::Value = serde_json::from_str(&index).unwrap();
    let entry = index["fixtures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == xtask::DEMO_FIXTURE.name())
        .expect("the demo fixture is in index.json");
    let want = entry["files"]["raw"]["sha256"].as_str().unwrap();
    // The index is the builder's own record; check it against the file too.
    assert_eq!(sha256_file(&raw), want);
    let demo = xtask::demo_path();
    assert!(demo.is_file(), "{} is committed", demo.display());
    assert_eq!(
        sha256_of_xz_decoded(&demo),
        want,
        "{} is not the {} fixture the builder makes now: run `cargo xtask demo` and commit it",
        demo.display(),
        xtask::DEMO_FIXTURE.name()
    );
}

#[test]
fn issue13_readme_commands_are_the_demo_build_and_the_ci_test_script() {
    let (build, test) = readme_commands();
    let rel = format!("demo/{}", xtask::DEMO_FILE);
    assert_eq!(
        build,
        format!("cargo run --release -- build recipes/worker.yaml --base {rel}")
    );
    assert_eq!(test, "bash ci/test.sh");
    assert!(repo().join(&rel).is_file());
    // CI runs README's test command, not a copy of it.
    let ci = std::fs::read_to_string(repo().join(".ci/run")).unwrap();
    assert!(
        ci.lines().any(|l| l.trim() == test),
        ".ci/run runs `{test}`"
    );
    let script = std::fs::read_to_string(repo().join("ci/test.sh")).unwrap();
    assert!(script.contains("cargo test --workspace --locked"));
}

/// README's first command, with the debug binary and into a temporary directory: the shipped
/// worker recipe builds on the committed demo base, and its images are sound.
#[test]
fn issue13_readme_first_command_builds_the_worker_recipe_on_the_demo_base() {
    let out = crate::support::tmp();
    let cache = crate::support::tmp();
    let (mut pi, _pi_dirs) = Piimage::new().command();
    let run = pi
        .args(["build", "recipes/worker.yaml", "--base"])
        .arg(xtask::demo_path())
        .arg("--out")
        .arg(out.path())
        .args(["--node", "worker-01", "--node", "worker-08", "--quiet"])
        .arg("--cache-dir")
        .arg(cache.path())
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    for node in ["worker-01", "worker-08"] {
        let xz = out.path().join(format!("pico-{node}.img.xz"));
        let img = out.path().join(format!("pico-{node}.img"));
        support::sh(
            out.path(),
            &format!("xz -dc {} > {}", xz.display(), img.display()),
        );
        let info = xtask::DEMO_FIXTURE.info();
        let (boot, root) = (&info.boot, &info.root);
        support::e2fsck_clean(&img, root.offset());
        support::fsck_fat_clean(&img, boot.offset(), boot.size());
        let hostname = support::debugfs(&img, root.offset(), "cat /etc/hostname");
        assert_eq!(hostname.trim(), node);
        std::fs::remove_file(&img).unwrap();
    }
    let sums = std::fs::read_to_string(out.path().join("SHA256SUMS")).unwrap();
    assert!(sums.contains("pico-worker-01.img.xz") && sums.contains("pico-worker-08.img.xz"));
}
