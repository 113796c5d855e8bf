//! The real tools that serve as oracles, one helper a tool: each returns what the tool says or
//! asserts it is clean, with the tool's output in the panic message.

use std::path::Path;
use std::process::{Command, Output};

use sha2::Digest as _;

/// Runs `cmd` with `args`, with /usr/sbin on PATH; panics with its output if it cannot start.
pub fn run(cmd: &str, args: &[&str]) -> Output {
    let path = format!(
        "{}:/usr/sbin:/sbin",
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new(cmd)
        .args(args)
        .env("PATH", path)
        .env("MTOOLS_SKIP_CHECK", "1")
        .env("TZ", "UTC")
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {cmd}: {e} (is it installed? ci/test.sh installs it)")
        })
}

/// Runs and asserts success; returns stdout as text.
pub fn run_ok(cmd: &str, args: &[&str]) -> String {
    let out = run(cmd, args);
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a shell script with `set -eu` in `dir`.
pub fn sh(dir: &Path, script: &str) -> String {
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("set -euo pipefail\n{script}"))
        .current_dir(dir)
        .env(
            "PATH",
            format!(
                "{}:/usr/sbin:/sbin",
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("MTOOLS_SKIP_CHECK", "1")
        .env("TZ", "UTC")
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "script failed:\n{script}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `e2fsck -fn` on the ext4 filesystem at byte `offset` of `img`: its report (stdout) when it
/// exits 0, else `Err` with what it said.
pub fn e2fsck(img: &Path, offset: u64) -> Result<String, String> {
    let spec = format!("{}?offset={offset}", img.display());
    let out = run("e2fsck", &["-fn", &spec]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.code() == Some(0) {
        return Ok(stdout);
    }
    Err(format!(
        "e2fsck -fn {spec} exited {:?}:\n{stdout}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// `e2fsck -fn` on the ext4 filesystem at byte `offset` of `img`; panics with its report unless
/// it exits 0.
pub fn e2fsck_clean(img: &Path, offset: u64) {
    if let Err(report) = e2fsck(img, offset) {
        panic!("{report}");
    }
}

/// `e2fsck -fn` exits 0 and says nothing but its pass headers and its summary.
pub fn e2fsck_quiet(img: &Path, offset: u64) {
    let text = e2fsck(img, offset).unwrap_or_else(|report| panic!("{report}"));
    let complaints: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("Pass ") && !l.contains(" files ("))
        .collect();
    assert!(
        complaints.is_empty(),
        "e2fsck -fn exited Some(0) with complaints:\n{text}"
    );
}

/// `debugfs -R CMD` on the filesystem at `offset`; returns stdout.
pub fn debugfs(img: &Path, offset: u64, cmd: &str) -> String {
    let spec = format!("{}?offset={offset}", img.display());
    let out = run("debugfs", &["-R", cmd, &spec]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `fsck.fat -n` on a copy of the FAT partition at `offset`, `len` bytes; panics unless clean.
pub fn fsck_fat_clean(img: &Path, offset: u64, len: u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let part = dir.path().join("p.img");
    copy_range(img, offset, len, &part);
    let out = run("fsck.fat", &["-n", part.to_str().expect("utf8")]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.code() == Some(0) && !text.contains("Dirty bit"),
        "fsck.fat -n exited {:?}:\n{text}",
        out.status.code()
    );
}

/// Copies `len` bytes at `offset` of `src` to a new sparse file `dst`.
pub fn copy_range(src: &Path, offset: u64, len: u64, dst: &Path) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut f = std::fs::File::open(src).expect("open");
    f.seek(SeekFrom::Start(offset)).expect("seek");
    let mut out = std::fs::File::create(dst).expect("create");
    let mut left = len;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let n = usize::try_from(left.min(buf.len() as u64)).expect("fits");
        f.read_exact(&mut buf[..n]).expect("read");
        if buf[..n].iter().all(|&b| b == 0) {
            out.seek(SeekFrom::Current(i64::try_from(n).expect("fits")))
                .expect("seek");
        } else {
            out.write_all(&buf[..n]).expect("write");
        }
        left -= n as u64;
    }
    out.set_len(len).expect("set_len");
}

/// `mtype` of a file on the FAT at `offset`.
pub fn mtype(img: &Path, offset: u64, path: &str) -> Vec<u8> {
    let spec = format!("{}@@{offset}", img.display());
    let out = run("mtype", &["-i", &spec, &format!("::{path}")]);
    assert!(
        out.status.success(),
        "mtype {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// True when `path` exists in the ext4 filesystem at `offset` (debugfs reports a missing path
/// on stderr).
pub fn debugfs_exists(img: &Path, offset: u64, path: &str) -> bool {
    let spec = format!("{}?offset={offset}", img.display());
    let out = run("debugfs", &["-R", &format!("stat {path}"), &spec]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "debugfs failed: {err}");
    !err.contains("File not found by ext2_lookup")
}

/// Every regular file under `dir` (recursively) by relative path, with the sha256 of its bytes
/// (its text instead, for a small UTF-8 file, so a difference shows); sorted, so two trees
/// compare with `assert_eq!`.
pub fn tree(dir: &Path) -> std::collections::BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut std::collections::BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                let bytes = std::fs::read(&p).unwrap();
                let shown = match String::from_utf8(bytes) {
                    Ok(text) if text.len() < 64 * 1024 => text,
                    Ok(text) => hex::encode(sha2::Sha256::digest(text.as_bytes())),
                    Err(e) => hex::encode(sha2::Sha256::digest(e.as_bytes())),
                };
                out.insert(rel, shown);
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}
