//! The base and the output directory (cases 6 and 7): a base that changes during a build fails
//! it with nothing committed; an output directory is always consistent (one writer at a time,
//! all of a build or none of it, no foreign file replaced).

use std::os::unix::fs::FileExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use xtask::fixtures::{self, Fixture, Format};

use super::{fails_with, files, piimage, sha256};
use crate::support::{run_ok, sh, tree};

/// A copy of the Bookworm fixture as `dir/base.img`, with `/home/carol -> /root` (which only a
/// node giving carol a home refuses, while it is applied).
fn base(dir: &Path) {
    let raw = fixtures::fixture_path(Fixture::RaspiosBookworm, Format::Raw).unwrap();
    let off = fixtures::info(Fixture::RaspiosBookworm).root.offset();
    sh(
        dir,
        &format!("cp --sparse=always {} base.img", raw.display()),
    );
    let spec = format!("{}?offset={off}", dir.join("base.img").display());
    run_ok("debugfs", &["-w", "-R", "symlink /home/carol /root", &spec]);
}

/// A seeded three-node recipe `dir/NAME` writing raw images and bmaps to `out/`; `n3_extra`
/// is YAML added to node n3.
fn recipe(dir: &Path, name: &str, timezone: &str, n3_extra: &str) -> String {
    std::fs::write(
        dir.join(name),
        format!(
            "cluster: {{ name: lab }}\nseed: s3cr3t-seed\nbase: {{ path: base.img }}\n\
             timezone: {timezone}\n\
             nodes:\n  - {{ name: n1 }}\n  - {{ name: n2 }}\n  - {{ name: n3{n3_extra} }}\n\
             output: {{ dir: out, formats: [img, bmap] }}\n"
        ),
    )
    .unwrap();
    name.to_owned()
}

/// Every file under `dir` with its sha256 (and no partial file anywhere).
fn snapshot(dir: &Path) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = files(dir)
        .into_iter()
        .map(|f| {
            let h = sha256(Path::new(&f));
            (f, h)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn issue15_a_build_that_fails_at_node_3_leaves_the_previous_build_whole() {
    let dir = crate::support::tmp();
    let d = dir.path();
    base(d);
    let first = recipe(d, "a.yaml", "Etc/UTC", "");
    let out = piimage(d, &["build", &first]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = snapshot(&d.join("out"));
    assert!(before.iter().any(|(f, _)| f.ends_with("lab-n3.img")));

    // The same cluster and seed, changed images; n3 (in the second batch with --jobs 1) fails
    // while it is applied, after n1 and n2 are written.
    let second = recipe(
        d,
        "b.yaml",
        "Europe/Berlin",
        ", users: [{ name: carol, uid: 1500, groups: [] }]",
    );
    let out = piimage(d, &["build", &second, "--jobs", "1"]);
    fails_with(&out, &["node n3", "/home/carol"]);
    // Nothing of the failed build stands: the directory is byte for byte what the first build
    // left, so SHA256SUMS still describes every image in it.
    assert_eq!(snapshot(&d.join("out")), before);
    sh(&d.join("out"), "sha256sum --quiet -c SHA256SUMS");
    let hidden: Vec<String> = files(&d.join("out"))
        .into_iter()
        .filter(|f| f.contains(".partial-"))
        .collect();
    assert!(hidden.is_empty(), "{hidden:?}");
}

/// Holds `dir/.piimage.lock` with util-linux `flock` until the child is killed.
struct Holder(Child);

impl Holder {
    fn lock(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let lock = dir.join(".piimage.lock");
        // --no-fork: flock becomes the sleep, so killing it releases the lock.
        let child = Command::new("flock")
            .arg("--no-fork")
            .arg(&lock)
            .args(["sleep", "60"])
            .stdout(Stdio::null())
            .spawn()
            .expect("util-linux flock");
        let start = Instant::now();
        // Wait until the lock is taken.
        while Command::new("flock")
            .args(["-n", lock.to_str().unwrap(), "true"])
            .status()
            .unwrap()
            .success()
        {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "flock never locked"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self(child)
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn issue15_a_second_writer_is_refused_and_leaves_the_first_ones_partial_files() {
    let dir = crate::support::tmp();
    let d = dir.path();
    base(d);
    let r = recipe(d, "a.yaml", "Etc/UTC", "");
    let outdir = d.join("out");
    // A finished build elsewhere, to merge from.
    let out = piimage(d, &["build", &r, "--out", "other"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let holder = Holder::lock(&outdir);
    // What a build in progress has written so far.
    std::fs::write(outdir.join(".lab-n1.img.partial-AbCdEf"), b"in progress").unwrap();
    let out = piimage(d, &["build", &r]);
    fails_with(
        &out,
        &[
            "another piimage (build, merge or localize) is writing this directory",
            "out",
        ],
    );
    assert_eq!(
        std::fs::read(outdir.join(".lab-n1.img.partial-AbCdEf")).unwrap(),
        b"in progress",
        "the other build's partial file was kept"
    );
    assert!(!outdir.join("lab-n1.img").exists());
    let out = piimage(d, &["merge", "other", "--out", "out"]);
    fails_with(&out, &["another piimage"]);
    let out = piimage(d, &["localize", "out"]);
    fails_with(&out, &["another piimage"]);

    // Once the other writer is gone, a build runs and sweeps what it left.
    drop(holder);
    let out = piimage(d, &["build", &r]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!outdir.join(".lab-n1.img.partial-AbCdEf").exists());
    assert!(outdir.join("lab-n1.img").exists());
}

#[test]
fn issue15_an_output_directory_holding_foreign_files_loses_nothing() {
    let dir = crate::support::tmp();
    let d = dir.path();
    base(d);
    let r = recipe(d, "a.yaml", "Etc/UTC", "");
    // `--out ~/.ssh` by mistake: the user's own known_hosts and a file named like a hosts.
    let ssh = d.join("dot-ssh");
    std::fs::create_dir(&ssh).unwrap();
    std::fs::write(ssh.join("known_hosts"), "github.com ssh-ed25519 AAAA\n").unwrap();
    std::fs::write(ssh.join("hosts"), "mine\n").unwrap();
    let before = tree(&ssh);
    let out = piimage(d, &["build", &r, "--out", "dot-ssh"]);
    fails_with(
        &out,
        &[
            "dot-ssh",
            "hosts, known_hosts exist and were not written by piimage",
            "move them away or choose another output directory",
        ],
    );
    assert_eq!(tree(&ssh), before, "nothing replaced, nothing added");

    // An image of a node's name that no record names is foreign too.
    let img_dir = d.join("imgs");
    std::fs::create_dir(&img_dir).unwrap();
    std::fs::write(img_dir.join("lab-n2.img"), b"someone else's image").unwrap();
    let out = piimage(d, &["build", &r, "--out", "imgs"]);
    fails_with(&out, &["lab-n2.img exists and was not written by piimage"]);
    assert_eq!(
        std::fs::read(img_dir.join("lab-n2.img")).unwrap(),
        b"someone else's image"
    );

    // A directory piimage wrote is rebuilt in place (its files are recorded), and a merge
    // into the foreign directory is refused the same way.
    let out = piimage(d, &["build", &r]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = piimage(d, &["build", &r]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = piimage(d, &["merge", "out", "--out", "dot-ssh"]);
    fails_with(&out, &["known_hosts", "not written by piimage"]);
    assert_eq!(tree(&ssh), before);
}

#[test]
fn issue15_a_base_written_to_during_the_build_fails_it_with_nothing_committed() {
    let dir = crate::support::tmp();
    let d = dir.path();
    base(d);
    let r = recipe(d, "a.yaml", "Etc/UTC", "");
    let base_path = d.join("base.img");
    let before = sha256(&base_path);
    let len = std::fs::metadata(&base_path).unwrap().len();

    // Another program writes the base (the same bytes again, so only its ctime moves) all the
    // time piimage runs.
    let stop = AtomicBool::new(false);
    let out = std::thread::scope(|s| {
        s.spawn(|| {
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&base_path)
                .unwrap();
            let mut last = [0u8; 512];
            f.read_exact_at(&mut last, len - 512).unwrap();
            while !stop.load(Ordering::Relaxed) {
                f.write_all_at(&last, len - 512).unwrap();
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        let out = piimage(d, &["build", &r]);
        stop.store(true, Ordering::Relaxed);
        out
    });
    fails_with(
        &out,
        &[
            "base.img",
            "the file changed while piimage was reading it",
            "nothing was written under a final name",
        ],
    );
    assert_eq!(files(&d.join("out")), Vec::<String>::new());
    assert_eq!(sha256(&base_path), before);
}
