//! The one way the tests run the `piimage` binary.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A `piimage` command line with a clean environment: no inherited `PIIMAGE_*` variable nor
/// `NO_COLOR`, and `XDG_CACHE_HOME` in a directory of its own, so the user's cache and settings
/// never reach a test and two tests never share a cache.
///
/// `quiet` and `private_cache` add `--quiet` and `--cache-dir` after every other argument, as
/// the subcommands take them.
pub struct Piimage {
    cmd: Command,
    args: Vec<OsString>,
    trailing: Vec<OsString>,
    home: tempfile::TempDir,
    cache: Option<tempfile::TempDir>,
}

impl Default for Piimage {
    fn default() -> Self {
        Self::new()
    }
}

impl Piimage {
    pub fn new() -> Self {
        let home = tempfile::tempdir().expect("tempdir");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_piimage"));
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("PIIMAGE_") {
                cmd.env_remove(&k);
            }
        }
        cmd.env_remove("NO_COLOR")
            .env("XDG_CACHE_HOME", home.path().join("xdg-cache"));
        Self {
            cmd,
            args: Vec::new(),
            trailing: Vec::new(),
            home,
            cache: None,
        }
    }

    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.args.push(a.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Self {
        self.cmd.env(k, v);
        self
    }

    pub fn envs(mut self, envs: &[(&str, &str)]) -> Self {
        for (k, v) in envs {
            self.cmd.env(k, v);
        }
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.cmd.current_dir(dir);
        self
    }

    pub fn stdin(mut self, s: Stdio) -> Self {
        self.cmd.stdin(s);
        self
    }

    /// `--quiet` after the arguments.
    pub fn quiet(mut self) -> Self {
        self.trailing.push("--quiet".into());
        self
    }

    /// `--cache-dir DIR` after the arguments.
    pub fn cache_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.trailing.push("--cache-dir".into());
        self.trailing.push(dir.as_ref().as_os_str().to_owned());
        self
    }

    /// `--cache-dir` in a directory of this command's own, removed after it runs.
    pub fn private_cache(mut self) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path: PathBuf = dir.path().to_owned();
        self.cache = Some(dir);
        self.cache_dir(path)
    }

    /// The command, to spawn by hand; the guard keeps its directories alive.
    pub fn command(mut self) -> (Command, Guard) {
        self.cmd.args(&self.args).args(&self.trailing);
        let guard = Guard {
            _home: self.home,
            _cache: self.cache,
        };
        (self.cmd, guard)
    }

    /// Runs it to the end; panics only if it cannot start.
    pub fn run(self) -> Output {
        let (mut cmd, _guard) = self.command();
        cmd.output().expect("run piimage")
    }

    /// Runs it and asserts exit 0, with its stdout and stderr in the panic message.
    pub fn success(self) -> Output {
        let line = self.line();
        let out = self.run();
        assert!(
            out.status.success(),
            "piimage {line} failed ({}):\n{}",
            out.status,
            text(&out)
        );
        out
    }

    /// Runs it and asserts a non-zero exit, with its stdout and stderr in the panic message.
    pub fn failure(self) -> Output {
        let line = self.line();
        let out = self.run();
        assert!(
            !out.status.success(),
            "piimage {line} succeeded:\n{}",
            text(&out)
        );
        out
    }

    fn line(&self) -> String {
        self.args
            .iter()
            .chain(&self.trailing)
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Keeps a spawned command's directories until it is dropped.
pub struct Guard {
    _home: tempfile::TempDir,
    _cache: Option<tempfile::TempDir>,
}

/// Standard output as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Standard output then standard error.
pub fn text(out: &Output) -> String {
    format!("{}{}", stdout(out), stderr(out))
}
