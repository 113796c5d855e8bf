//! An interrupted build leaves no file under a final name.
//!
//! The test binary runs itself as the builder: `interrupt_helper` does nothing unless
//! `PIIMAGE_OUTPUT_INTERRUPT_DIR` is set; then it builds a node slowly (its progress sleeps),
//! and the parent kills it mid-write with SIGKILL, then with SIGINT (no handler: the default
//! action ends the process without running any destructor).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use piimage::disk::{CowDisk, FileStorage};
use piimage::output::{NodeImage, build_node, sweep_partials};
use piimage::progress::Progress;

use super::{names, subdir, synthetic_cache, write_overlay, write_synthetic_base};

const ENV: &str = "PIIMAGE_OUTPUT_INTERRUPT_DIR";

/// Creates `started` at the first progress, then sleeps at every step.
struct Slow<'a> {
    marker: &'a Path,
}

impl Progress for Slow<'_> {
    fn start(&self, _what: &str, _total: Option<u64>) {}
    fn advance(&self, _n: u64) {
        if !self.marker.exists() {
            std::fs::write(self.marker, b"").unwrap();
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    fn finish(&self) {}
}

#[test]
fn interrupt_helper() {
    let Some(dir) = std::env::var_os(ENV) else {
        return;
    };
    let dir = Path::new(&dir);
    let base_path = dir.join("base.img");
    write_synthetic_base(&base_path);
    let storage = FileStorage::open_read_only(&base_path).unwrap();
    let disk = CowDisk::new(&storage);
    write_overlay(&disk, 3);
    let out = dir.join("out");
    let cache = synthetic_cache(&base_path, &out, false);
    let node = NodeImage::from_cow("node", &disk).unwrap();
    let spec = super::spec_all(true);
    let marker = dir.join("started");
    build_node(&cache, &node, &out, &spec, &Slow { marker: &marker }).unwrap();
    std::fs::write(dir.join("finished"), b"").unwrap();
}

#[test]
fn an_interrupted_build_leaves_no_final_file() {
    let exe = std::env::current_exe().unwrap();
    for signal in ["KILL", "INT"] {
        let tmp = crate::support::tmp();
        let out = subdir(tmp.path(), "out");
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "output::interrupt::interrupt_helper",
                "--nocapture",
            ])
            .env(ENV, tmp.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = tmp.path().join("started");
        let deadline = Instant::now() + Duration::from_secs(120);
        while !started.exists() {
            assert!(
                Instant::now() < deadline,
                "the helper never started writing"
            );
            assert!(
                child.try_wait().unwrap().is_none(),
                "the helper exited early"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // Some chunks into the pass.
        std::thread::sleep(Duration::from_millis(700));
        let status = Command::new("kill")
            .args([format!("-{signal}"), child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = child.wait().unwrap();
        assert!(
            !exit.success(),
            "SIG{signal}: the helper was not interrupted"
        );
        assert!(!tmp.path().join("finished").exists(), "SIG{signal}");

        let left = names(&out);
        assert!(
            left.iter()
                .all(|n| n.starts_with(".node.") && n.contains(".partial-")),
            "SIG{signal}: a final name stands: {left:?}"
        );
        assert!(
            !left.is_empty(),
            "SIG{signal}: killed before writing anything"
        );
        assert_eq!(sweep_partials(&out).unwrap(), left.len());
        assert!(names(&out).is_empty());
    }
}
