//! Issue 15: hostile and broken inputs end in one clear error (or a named warning), never in a
//! crash, a hang or a write on top of damage. One submodule per class of input.

mod checks;
mod damage;
mod limits;
mod links;
mod outdir;
mod partitions;
mod secrets;
mod signals;

use crate::support::Piimage;
use std::path::{Path, PathBuf};
use std::process::Output;

/// Runs piimage with a private cache, `--quiet`, in `dir`.
pub fn piimage(dir: &Path, args: &[&str]) -> Output {
    Piimage::new()
        .args(args)
        .quiet()
        .cache_dir(dir.join(".cache"))
        .current_dir(dir)
        .run()
}

/// Asserts exit 1 with a single `error:` line holding every `want`; returns the message.
pub fn fails_with(out: &Output, want: &[&str]) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "exit status; stderr:\n{err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for w in want {
        assert!(err.contains(w), "{w:?} not in:\n{err}");
    }
    err
}

/// A one-node recipe on `base.img` in `dir` writing raw images to `out/`, with `extra` YAML.
pub fn recipe(dir: &Path, extra: &str) -> PathBuf {
    let p = dir.join("r.yaml");
    std::fs::write(
        &p,
        format!(
            "cluster: {{ name: lab }}\nbase: {{ path: base.img }}\nnodes: [{{ name: n1 }}]\noutput: {{ dir: out, formats: [img] }}\n{extra}"
        ),
    )
    .unwrap();
    p
}

/// The files under `dir` (recursively), relative names.
pub fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files(&p));
            } else {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

/// The sha256 of a file, as `sha256sum` prints it.
pub fn sha256(p: &Path) -> String {
    crate::support::run_ok("sha256sum", &[p.to_str().unwrap()])
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}
