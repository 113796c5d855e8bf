//! Benchmark: applying a typical node's operations (50 files, ~10 MiB) through the
//! copy-on-write disk, on each fixture, against a baseline measured in the same run: the same
//! files written with `debugfs -w` into a sparse copy of the image (what a rootless shell
//! script would do).
//!
//! Run with `cargo bench --bench apply`. Reports wall time per node (median of several runs),
//! the overlay's memory, and the baseline's time. Nothing here asserts a time.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use piimage::disk::{CowDisk, FileStorage};
use piimage::ops::{FileAttrs, FileOp, Part};
use piimage::pipeline::{Layout, apply_node};
use xtask::fixtures::{self, Fixture, Format};

const RUNS: usize = 5;

fn ops() -> Vec<FileOp> {
    let mut ops = Vec::new();
    for i in 0..48u32 {
        // 47 small files and one ~9.5 MiB file: about 10 MiB in all.
        let len = if i == 0 {
            9_500_000
        } else {
            2_000 + 300 * (i as usize)
        };
        let data: Vec<u8> = (0..len)
            .map(|j| ((j as u32).wrapping_mul(2_654_435_761).wrapping_add(i) >> 11) as u8)
            .collect();
        ops.push(FileOp::Write {
            part: Part::Root,
            path: format!("/opt/node/dir{}/file{i:02}.dat", i % 6),
            data,
            owner: FileAttrs::root(0o644),
        });
    }
    ops.push(FileOp::Write {
        part: Part::Root,
        path: "/etc/hostname".into(),
        data: b"node-01\n".to_vec(),
        owner: FileAttrs::root(0o644),
    });
    ops.push(FileOp::Write {
        part: Part::Boot,
        path: "/meta-data".into(),
        data: b"instance-id: node-01\n".to_vec(),
        owner: FileAttrs::root(0o644),
    });
    ops
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn baseline(base: &Path, root_offset: u64, ops: &[FileOp], dir: &Path) -> Duration {
    // Stage the files on the host, then one debugfs -w script, as a shell script would.
    let mut script = String::new();
    let mut made = std::collections::BTreeSet::new();
    for (i, op) in ops.iter().enumerate() {
        if let FileOp::Write {
            part: Part::Root,
            path,
            data,
            ..
        } = op
        {
            let host = dir.join(format!("f{i}"));
            std::fs::write(&host, data).unwrap();
            let parent = Path::new(path)
                .parent()
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            let mut cur = String::new();
            for c in parent.split('/').filter(|c| !c.is_empty()) {
                cur.push('/');
                cur.push_str(c);
                if made.insert(cur.clone()) {
                    script.push_str(&format!("mkdir {cur}\n"));
                }
            }
            script.push_str(&format!("rm {path}\nwrite {} {path}\n", host.display()));
        }
    }
    let script_path = dir.join("script");
    std::fs::write(&script_path, script).unwrap();
    let copy = dir.join("copy.img");
    let start = Instant::now();
    assert!(
        Command::new("cp")
            .args([
                "--sparse=always",
                base.to_str().unwrap(),
                copy.to_str().unwrap()
            ])
            .status()
            .unwrap()
            .success()
    );
    let spec = format!("{}?offset={root_offset}", copy.display());
    let out = Command::new("debugfs")
        .args(["-w", "-f", script_path.to_str().unwrap(), &spec])
        .output()
        .unwrap();
    assert!(out.status.success());
    let took = start.elapsed();
    std::fs::remove_file(&copy).unwrap();
    took
}

fn main() {
    let ops = ops();
    let bytes: usize = ops
        .iter()
        .map(|o| match o {
            FileOp::Write { data, .. } => data.len(),
            _ => 0,
        })
        .sum();
    println!(
        "typical node: {} operations, {:.1} MiB of file data, {RUNS} runs each\n",
        ops.len(),
        bytes as f64 / 1048576.0
    );
    println!(
        "{:<18} {:>12} {:>14} {:>16} {:>10}",
        "fixture", "piimage", "overlay memory", "debugfs baseline", "ratio"
    );
    for fixture in Fixture::ALL {
        let info = fixtures::info(fixture);
        let path = fixtures::fixture_path(fixture, Format::Raw).unwrap();
        let base = Arc::new(FileStorage::open_read_only(&path).unwrap());
        let layout = Layout::detect(&*base).unwrap();
        let mut times = Vec::new();
        let mut mem = 0;
        for _ in 0..RUNS {
            let start = Instant::now();
            let disk = Arc::new(CowDisk::new(Arc::clone(&base)));
            apply_node(&disk, &layout, &ops, 1_767_225_600).unwrap();
            times.push(start.elapsed());
            mem = disk.stats().memory_bytes + disk.stats().spilled_bytes;
        }
        let dir = tempfile::tempdir().unwrap();
        let base_times: Vec<Duration> = (0..RUNS)
            .map(|_| baseline(&path, info.root.offset(), &ops, dir.path()))
            .collect();
        let (ours, theirs) = (median(times), median(base_times));
        println!(
            "{:<18} {:>10.1}ms {:>11.1} MiB {:>14.1}ms {:>9.2}x",
            info.name,
            ours.as_secs_f64() * 1e3,
            mem as f64 / 1048576.0,
            theirs.as_secs_f64() * 1e3,
            theirs.as_secs_f64() / ours.as_secs_f64()
        );
    }
}
