//! The resolving context: collected problems, options, caches, and the helpers every section
//! uses (paths relative to the file that wrote them, secrets).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::error::Problems;
use super::keys;
use super::load::io_reason;
use super::located::{Located, Origin, StrOr};
use super::raw::RawSecret;
use super::spec::{OverlaySpec, SecretSource};

/// How to load a recipe.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Use this base image instead of the recipe's `base` (`--base PATH`).
    pub base: Option<PathBuf>,
    /// Do not check that password, passphrase and seed sources (files, environment
    /// variables) are readable: for validating a recipe where the secrets are not available
    /// (a CI job without them). Their syntax is still checked.
    pub skip_secrets: bool,
}

/// State shared while resolving one recipe.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub problems: Problems,
    pub options: LoadOptions,
    key_files: HashMap<PathBuf, Result<Vec<String>, String>>,
    pub(crate) overlays: HashMap<Origin, Option<OverlaySpec>>,
}

impl Ctx {
    pub fn new(options: LoadOptions) -> Self {
        Self {
            problems: Problems::default(),
            options,
            key_files: HashMap::new(),
            overlays: HashMap::new(),
        }
    }

    /// Records a problem.
    pub fn problem(&mut self, at: &Origin, message: impl Into<String>) {
        self.problems.add(at, message);
    }

    /// Records `Err`s as problems at `at`; `Some` for `Ok`.
    pub fn check<T>(&mut self, at: &Origin, r: Result<T, String>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.problem(at, e);
                None
            }
        }
    }

    /// The keys in an `authorized_keys`-style file, read once per file.
    pub fn key_file(&mut self, path: &Path) -> Result<Vec<String>, String> {
        self.key_files
            .entry(path.to_owned())
            .or_insert_with(|| {
                match crate::io::bounded::read_to_string(path, crate::io::bounded::KEY_FILE_LIMIT) {
                    Ok(text) => {
                        let keys = keys::authorized_keys_text(&text)
                            .map_err(|(line, e)| format!("{} line {line}: {e}", path.display()))?;
                        if keys.is_empty() {
                            Err(format!("{} holds no key", path.display()))
                        } else {
                            Ok(keys)
                        }
                    }
                    Err(e) => Err(format!("cannot read {}: {}", path.display(), io_reason(&e))),
                }
            })
            .clone()
    }

    /// A secret source from `{ file }` / `{ env }` (or an inline string if `inline` names what
    /// it is, else an inline string is refused with `refuse_inline`), checked unless secrets
    /// are skipped.
    pub fn secret(
        &mut self,
        v: &Located<StrOr<RawSecret>>,
        inline_ok: bool,
        refuse_inline: &str,
    ) -> Option<SecretSource> {
        let source = match &v.value {
            StrOr::Str(s) if inline_ok => SecretSource::Inline(s.clone()),
            StrOr::Str(_) => {
                self.problem(&v.at, refuse_inline);
                return None;
            }
            StrOr::Full(RawSecret { file, env }) => {
                self.file_or_env(&v.at, file.as_ref(), env.as_ref())?
            }
        };
        self.check_secret(&v.at, &source);
        Some(source)
    }

    /// Exactly one of `file` / `env`.
    pub fn file_or_env(
        &mut self,
        at: &Origin,
        file: Option<&Located<String>>,
        env: Option<&Located<String>>,
    ) -> Option<SecretSource> {
        match (file, env) {
            (Some(f), None) => Some(SecretSource::File(resolve_path(&f.at, &f.value))),
            (None, Some(e)) => {
                let ok = !e.value.is_empty()
                    && e.value
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !e.value.starts_with(|c: char| c.is_ascii_digit());
                if ok {
                    Some(SecretSource::Env(e.value.clone()))
                } else {
                    self.problem(
                        &e.at,
                        format!("{:?} is not an environment variable name", e.value),
                    );
                    None
                }
            }
            (Some(_), Some(_)) => {
                self.problem(at, "give either `file` or `env`, not both");
                None
            }
            (None, None) => {
                self.problem(at, "give `file: PATH` or `env: VARIABLE`");
                None
            }
        }
    }

    /// Checks that a secret can be read (unless secrets are skipped).
    pub fn check_secret(&mut self, at: &Origin, source: &SecretSource) {
        if self.options.skip_secrets || matches!(source, SecretSource::Inline(_)) {
            return;
        }
        if let Err(e) = source.read() {
            self.problem(
                at,
                format!("{e} (pass --skip-secrets to validate without secrets)"),
            );
        }
    }
}

/// A path written in a recipe: `~/…` is under `$HOME`, an absolute path stays, anything else
/// is relative to the directory of the recipe file that wrote it.
pub(crate) fn resolve_path(at: &Origin, s: &str) -> PathBuf {
    if let Some(rest) = s.strip_prefix("~/")
        && let Some(home) = std::env::var_os("HOME")
    {
        return Path::new(&home).join(rest);
    }
    let p = Path::new(s);
    if p.is_absolute() {
        return p.to_owned();
    }
    at.file.parent().unwrap_or(Path::new("")).join(p)
}
