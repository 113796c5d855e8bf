//! The real tools that serve as oracles, one helper a tool: each returns what the tool says or
//! asserts it is clean, with the tool's output in the panic message.

use std::collections::BTreeSet;
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

/// `/etc/exports` syntax (exports(5)): `PATH CLIENT(OPTIONS)`, an absolute path, a client
/// network in CIDR form, options from the list nfs-utils knows; and, where `exportfs` is
/// installed, its own parser on the file (in a private mount namespace over /etc/exports).
pub fn exports_accepted(text: &str, want: &[&str]) {
    const OPTIONS: &[&str] = &[
        "rw",
        "ro",
        "sync",
        "async",
        "no_subtree_check",
        "no_root_squash",
        "root_squash",
    ];
    let mut paths = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (path, client) = line.split_once(' ').unwrap();
        assert!(path.starts_with('/'), "{line}");
        let (net, opts) = client.split_once('(').unwrap();
        let opts = opts.strip_suffix(')').unwrap();
        assert!(net.parse::<ipnet::IpNet>().is_ok(), "{line}: client {net}");
        for o in opts.split(',') {
            assert!(OPTIONS.contains(&o), "{line}: option {o}");
        }
        paths.push(path.to_owned());
    }
    assert_eq!(paths, want);
    exportfs_accepts(text, &paths);
}

/// `exportfs -ra` on `text` as `/etc/exports`, in a private mount namespace where
/// `/etc/exports`, `/var/lib/nfs` and the exported trees' top directory are bind mounts of
/// scratch files, so the machine's own exports are untouched. Skipped (with a note) where
/// `unshare` or `exportfs` is missing or not root, and where the kernel's NFS server is
/// mounted (`/proc/fs/nfsd`: exportfs would tell it about the exports); fails under
/// `CI=true` when the tools are missing.
fn exportfs_accepts(text: &str, paths: &[String]) {
    let have = |tool: &str| {
        Command::new("sh")
            .arg("-c")
            .arg(format!("PATH=$PATH:/usr/sbin:/sbin command -v {tool}"))
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    if !(root && have("unshare") && have("exportfs")) {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "exportfs check needs root, unshare and exportfs (nfs-kernel-server)"
        );
        eprintln!("note: exportfs not run (needs root, unshare, nfs-kernel-server)");
        return;
    }
    if Path::new("/proc/fs/nfsd/exports").exists() {
        eprintln!("note: exportfs not run: the kernel's NFS server is mounted here");
        return;
    }
    let scratch = crate::support::tmp();
    let d = scratch.path();
    std::fs::write(d.join("exports"), text).unwrap();
    for sub in ["nfs-state", "top"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    let tops: BTreeSet<&str> = paths
        .iter()
        .map(|p| p.trim_start_matches('/').split('/').next().unwrap())
        .collect();
    assert_eq!(
        tops.len(),
        1,
        "the test's exports share one top directory: {tops:?}"
    );
    let top = format!("/{}", tops.iter().next().unwrap());
    let mkdirs: Vec<String> = paths.iter().map(|p| format!("mkdir -p '{p}'")).collect();
    let script = format!(
        "set -e\n\
         mount --bind '{d}/exports' /etc/exports\n\
         mount --bind '{d}/nfs-state' /var/lib/nfs\n\
         mkdir -p '{top}' && mount --bind '{d}/top' '{top}'\n\
         {mkdirs}\n\
         exportfs -ra\n\
         cat /var/lib/nfs/etab\n",
        d = d.display(),
        mkdirs = mkdirs.join("\n")
    );
    let out = run("unshare", &["-m", "sh", "-c", &script]);
    let etab = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "exportfs -ra refused the exports:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for p in paths {
        assert!(
            etab.lines().any(|l| l.starts_with(&format!("{p}\t"))),
            "{p} not exported:\n{etab}"
        );
    }
}

/// Fails under `CI=true` (where `ci/install-test-tools.sh` installed every oracle) when `tool`
/// is missing; elsewhere says so on stderr and returns false.
fn oracle_present(tool: &str, package: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("PATH=$PATH:/usr/sbin:/sbin command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{tool} is missing ({package}; ci/install-test-tools.sh installs it)"
        );
        eprintln!("note: {tool} not run: not installed ({package})");
    }
    found
}

/// `docker-compose config -q` on `text` as `compose.yaml`: the Compose file validates against
/// the Compose schema (no Docker daemon needed). Returns whether it ran.
pub fn compose_accepts(text: &str) -> bool {
    if !oracle_present("docker-compose", "docker-compose") {
        return false;
    }
    let dir = crate::support::tmp();
    let f = dir.path().join("compose.yaml");
    std::fs::write(&f, text).unwrap();
    let out = run(
        "docker-compose",
        &["-f", f.to_str().unwrap(), "config", "-q"],
    );
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "docker-compose config refused:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    true
}

/// Open MPI's own reading of `hostfile`: `mpirun --display-map --do-not-launch` with as many
/// processes as `want` has slots maps them onto exactly `want` (`(host, slots)`, in order).
/// Its exit status says nothing with `--do-not-launch`, so the map is read from stdout and a
/// hostfile parse error from stderr. Returns whether it ran.
pub fn mpirun_maps(hostfile: &str, want: &[(String, u32)]) -> bool {
    if !oracle_present("mpirun", "openmpi-bin") {
        return false;
    }
    let dir = crate::support::tmp();
    let f = dir.path().join("hostfile");
    std::fs::write(&f, hostfile).unwrap();
    let total: u32 = want.iter().map(|(_, n)| n).sum();
    let np = total.to_string();
    let out = Command::new("mpirun")
        .args(["--allow-run-as-root", "--hostfile"])
        .arg(&f)
        .args(["--display-map", "--do-not-launch", "-np", &np, "true"])
        .env("OMPI_MCA_plm", "isolated")
        .output()
        .expect("mpirun runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        !stderr.contains("parse error") && !stderr.contains("not enough slots"),
        "mpirun refused the hostfile:\n{hostfile}\n{stderr}"
    );
    let mapped: Vec<(String, u32)> = stdout
        .lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("Data for node: ")?;
            let mut f = rest.split('\t');
            let host = f.next()?.trim().to_owned();
            let slots = f.next()?.trim().strip_prefix("Num slots: ")?.parse().ok()?;
            Some((host, slots))
        })
        .collect();
    assert_eq!(
        mapped, want,
        "mpirun's map of:\n{hostfile}\n{stdout}\n{stderr}"
    );
    true
}
