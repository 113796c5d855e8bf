//! `overlays`: directory trees copied into the root or boot partition.
//!
//! Each overlay directory is walked before any image is opened. Nothing is followed out of
//! it: a symlink is copied as a link and must be relative and resolve inside the overlay
//! (checked lexically and, when it exists, with `canonicalize`), so a link can never make the
//! image depend on (or leak) a file of the machine that builds it. `.j2` files are parsed as
//! templates here and rendered per node later. Modes and owners are deterministic: files
//! `0644` (`0755` if executable on the host), directories `0755`, owner `root:root`, unless a
//! rule says otherwise.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Component, Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};

use super::ctx::{Ctx, resolve_path};
use super::load::io_reason;
use super::located::{Located, Origin, StrOr};
use super::raw::{RawOverlay, RawRule};
use super::spec::{EntryKind, OverlayEntry, OverlaySpec, OverlayTarget, OwnerRef, OwnerSpec};
use super::syntax;
use super::template;

/// Most entries one overlay may hold.
pub const MAX_ENTRIES: usize = 100_000;

/// Characters a FAT file name cannot hold.
const FAT_FORBIDDEN: &[char] = &['"', '*', ':', '<', '>', '?', '\\', '|'];

struct Rule {
    at: Origin,
    glob: GlobMatcher,
    mode: Option<u32>,
    owner: Option<OwnerSpec>,
    used: bool,
}

/// Resolves `overlays` (each overlay walked once, whatever the number of nodes using it).
pub(crate) fn overlays(
    ctx: &mut Ctx,
    raw: Option<&Located<Vec<Located<StrOr<RawOverlay>>>>>,
) -> Vec<OverlaySpec> {
    let mut out = Vec::new();
    for entry in raw.iter().flat_map(|l| &l.value) {
        let spec = match ctx.overlays.get(&entry.at) {
            Some(cached) => cached.clone(),
            None => {
                let spec = overlay(ctx, entry);
                ctx.overlays.insert(entry.at.clone(), spec.clone());
                spec
            }
        };
        out.extend(spec);
    }
    out
}

fn overlay(ctx: &mut Ctx, entry: &Located<StrOr<RawOverlay>>) -> Option<OverlaySpec> {
    let short;
    let r: &RawOverlay = match &entry.value {
        StrOr::Str(s) => {
            short = RawOverlay {
                source: Located::new(s.clone(), entry.at.clone()),
                target: None,
                dest: None,
                templates: None,
                rules: None,
            };
            &short
        }
        StrOr::Full(r) => r,
    };
    let source_at = &r.source.at;
    let path = resolve_path(source_at, &r.source.value);
    let root = match fs::metadata(&path).and_then(|m| {
        if m.is_dir() {
            path.canonicalize()
        } else {
            Err(std::io::Error::other("not a directory"))
        }
    }) {
        Ok(root) => root,
        Err(e) => {
            ctx.problem(
                source_at,
                format!("overlay directory {}: {}", path.display(), io_reason(&e)),
            );
            return None;
        }
    };
    let target = r.target.as_ref().map_or(OverlayTarget::Root, |t| t.value);
    let dest = match &r.dest {
        Some(d) => {
            ctx.check(&d.at, syntax::image_path(&d.value))?;
            d.value.trim_end_matches('/').to_owned()
        }
        None => String::new(),
    };
    let templates = r.templates.as_ref().is_none_or(|t| t.value);
    let mut rules = Vec::new();
    for rule in r.rules.iter().flat_map(|l| &l.value) {
        if let Some(rule) = compile_rule(ctx, rule, target) {
            rules.push(rule);
        }
    }
    let mut walk = Walk {
        ctx,
        root: &root,
        at: source_at,
        target,
        templates,
        dest: &dest,
        entries: Vec::new(),
        ok: true,
    };
    walk.dir(&root, "");
    let (mut entries, ok) = (walk.entries, walk.ok);
    for e in &mut entries {
        // Templates match by their destination (without `.j2`) and by their source name.
        let source_name = (e.kind == EntryKind::Template).then(|| format!("{}.j2", e.dest));
        for rule in rules.iter_mut().filter(|r| {
            r.glob.is_match(&e.dest) || source_name.as_ref().is_some_and(|n| r.glob.is_match(n))
        }) {
            rule.used = true;
            e.ruled = true;
            if let Some(m) = rule.mode {
                e.mode = m;
            }
            if let Some(o) = &rule.owner {
                e.owner = o.clone();
            }
        }
    }
    for rule in rules.iter().filter(|r| !r.used) {
        ctx.problem(
            &rule.at,
            format!(
                "the glob matches nothing this overlay writes ({} lands on {})",
                root.display(),
                if dest.is_empty() { "/" } else { dest.as_str() }
            ),
        );
    }
    ok.then(|| OverlaySpec {
        source: root.clone(),
        target,
        dest: if dest.is_empty() {
            "/".into()
        } else {
            dest.clone()
        },
        entries,
    })
}

fn compile_rule(ctx: &mut Ctx, rule: &Located<RawRule>, target: OverlayTarget) -> Option<Rule> {
    let r = &rule.value;
    let g = &r.glob;
    if !g.value.starts_with('/') || g.value.split('/').any(|c| c == "..") {
        ctx.problem(
            &g.at,
            format!(
                "{:?}: a rule glob is a path in the image, starting with / (e.g. \
                 /etc/rancher/k3s/*), without `..`",
                g.value
            ),
        );
        return None;
    }
    if g.value.contains(['[', ']', '{', '}', '\\']) {
        ctx.problem(
            &g.at,
            format!(
                "{:?}: rule globs support `*`, `?` and `**` only (no [classes], {{alternatives}} \
                 or escapes); write one rule per pattern",
                g.value
            ),
        );
        return None;
    }
    let glob = GlobBuilder::new(&g.value)
        .literal_separator(true)
        .build()
        .map_err(|e| format!("bad glob {:?}: {}", g.value, e.kind()));
    let glob = ctx.check(&g.at, glob)?.compile_matcher();
    let mode = match &r.mode {
        Some(m) => Some(ctx.check(&m.at, syntax::mode(&m.value))?),
        None => None,
    };
    let owner = match &r.owner {
        Some(o) => Some(ctx.check(&o.at, owner(&o.value))?),
        None => None,
    };
    if target == OverlayTarget::Boot && (mode.is_some() || owner.is_some()) {
        ctx.problem(
            &rule.at,
            "the boot partition is FAT, which has no modes or owners; rules apply to `target: root`",
        );
        return None;
    }
    if mode.is_none() && owner.is_none() {
        ctx.problem(&rule.at, "a rule sets `mode`, `owner` or both");
        return None;
    }
    Some(Rule {
        at: g.at.clone(),
        glob,
        mode,
        owner,
        used: false,
    })
}

/// `alice`, `alice:staff`, `1000`, `1000:1000`, `root:adm`.
fn owner(s: &str) -> Result<OwnerSpec, String> {
    let part = |p: &str| -> Result<OwnerRef, String> {
        if !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) {
            p.parse()
                .map(OwnerRef::Id)
                .map_err(|_| format!("{p:?} is too large for an id"))
        } else {
            syntax::login_name(p).map(|()| OwnerRef::Name(p.to_owned()))
        }
    };
    let (user, group) = match s.split_once(':') {
        Some((u, g)) => (part(u)?, part(g)?),
        None => {
            let u = part(s)?;
            (u.clone(), u)
        }
    };
    Ok(OwnerSpec { user, group })
}

struct Walk<'a> {
    ctx: &'a mut Ctx,
    root: &'a Path,
    at: &'a Origin,
    target: OverlayTarget,
    templates: bool,
    dest: &'a str,
    entries: Vec<OverlayEntry>,
    ok: bool,
}

impl Walk<'_> {
    fn fail(&mut self, message: String) {
        self.ctx.problem(self.at, message);
        self.ok = false;
    }

    fn dir(&mut self, dir: &Path, rel: &str) {
        let mut children: Vec<(String, PathBuf)> = match fs::read_dir(dir) {
            Ok(rd) => rd
                .filter_map(|e| e.ok())
                .map(|e| (e.file_name(), e.path()))
                .filter_map(|(name, path)| match name.into_string() {
                    Ok(n) => Some((n, path)),
                    Err(_) => {
                        self.fail(format!("{}: file name is not UTF-8", path.display()));
                        None
                    }
                })
                .collect(),
            Err(e) => {
                self.fail(format!("reading {}: {}", dir.display(), io_reason(&e)));
                return;
            }
        };
        children.sort();
        for (name, path) in children {
            if self.entries.len() >= MAX_ENTRIES {
                self.fail(format!(
                    "more than {MAX_ENTRIES} entries in {}",
                    self.root.display()
                ));
                return;
            }
            let rel = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            if self.target == OverlayTarget::Boot && name.contains(FAT_FORBIDDEN) {
                self.fail(format!(
                    "{}: the boot partition (FAT) cannot hold a name with any of {}",
                    path.display(),
                    FAT_FORBIDDEN.iter().collect::<String>()
                ));
                continue;
            }
            self.entry(&path, &rel);
        }
    }

    fn entry(&mut self, path: &Path, rel: &str) {
        let meta = match fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) => return self.fail(format!("{}: {}", path.display(), io_reason(&e))),
        };
        let ft = meta.file_type();
        let (kind, mode, dest_rel) = if ft.is_symlink() {
            let Some(target) = self.symlink(path, rel) else {
                return;
            };
            (EntryKind::Symlink { target }, 0o777, rel.to_owned())
        } else if ft.is_dir() {
            (EntryKind::Dir, 0o755, rel.to_owned())
        } else if ft.is_file() {
            let exec = meta.permissions().mode() & 0o111 != 0;
            let mode = if exec { 0o755 } else { 0o644 };
            match rel.strip_suffix(".j2").filter(|_| self.templates) {
                Some(stripped) => {
                    self.template(path);
                    (EntryKind::Template, mode, stripped.to_owned())
                }
                None => (EntryKind::File, mode, rel.to_owned()),
            }
        } else {
            return self.fail(format!(
                "{}: not a regular file, directory or symlink",
                path.display()
            ));
        };
        let dest = format!("{}/{dest_rel}", self.dest);
        if let Some(other) = self.entries.iter().find(|e| e.dest == dest) {
            let message = format!(
                "{} and {} both land on {dest}",
                other.source.display(),
                path.display()
            );
            self.fail(message);
        }
        let is_dir = kind == EntryKind::Dir;
        self.entries.push(OverlayEntry {
            source: path.to_owned(),
            rel: rel.to_owned(),
            dest,
            kind,
            mode,
            owner: OwnerSpec::root(),
            ruled: false,
        });
        if is_dir {
            self.dir(path, rel);
        }
    }

    /// The link's target, if it is relative and stays inside the overlay.
    fn symlink(&mut self, path: &Path, rel: &str) -> Option<String> {
        if self.target == OverlayTarget::Boot {
            self.fail(format!(
                "{}: a symlink cannot go to the boot partition (FAT has no links)",
                path.display()
            ));
            return None;
        }
        let target = match fs::read_link(path) {
            Ok(t) => t,
            Err(e) => {
                self.fail(format!("{}: {}", path.display(), io_reason(&e)));
                return None;
            }
        };
        let Some(text) = target.to_str().map(str::to_owned) else {
            self.fail(format!("{}: link target is not UTF-8", path.display()));
            return None;
        };
        let escape = |why: &str| {
            format!(
                "{} -> {text}: the symlink escapes the overlay directory {} ({why}); links must \
                 be relative and stay inside the overlay (to enable a unit, use `services.enable`)",
                path.display(),
                self.root.display()
            )
        };
        if target.is_absolute() {
            self.fail(escape("absolute target"));
            return None;
        }
        // Lexically: the link's directory, then the target's components.
        let mut stack: Vec<&str> = rel.split('/').collect();
        stack.pop();
        for c in target.components() {
            match c {
                Component::ParentDir => {
                    if stack.pop().is_none() {
                        self.fail(escape("`..` climbs out"));
                        return None;
                    }
                }
                Component::Normal(n) => stack.push(n.to_str().unwrap_or_default()),
                Component::CurDir => {}
                Component::RootDir | Component::Prefix(_) => {
                    self.fail(escape("absolute target"));
                    return None;
                }
            }
        }
        // On the host: whatever other links it passes through.
        if let Ok(resolved) = path.canonicalize()
            && !resolved.starts_with(self.root)
        {
            self.fail(escape(&format!("it resolves to {}", resolved.display())));
            return None;
        }
        Some(text)
    }

    fn template(&mut self, path: &Path) {
        let shown = path.display().to_string();
        match crate::io::bounded::read(path, crate::io::bounded::TEMPLATE_LIMIT)
            .map(String::from_utf8)
        {
            Ok(Ok(source)) => {
                if let Err(e) = template::check_syntax(&shown, &source) {
                    self.fail(format!("template {e}"));
                }
            }
            Ok(Err(_)) => self.fail(format!(
                "{shown}: a template must be UTF-8 text (rename it without .j2, or set \
                 `templates: false`)"
            )),
            Err(e) => self.fail(format!("{shown}: {}", io_reason(&e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners() {
        assert_eq!(
            owner("alice").unwrap(),
            OwnerSpec {
                user: OwnerRef::Name("alice".into()),
                group: OwnerRef::Name("alice".into())
            }
        );
        assert_eq!(
            owner("0:4").unwrap(),
            OwnerSpec {
                user: OwnerRef::Id(0),
                group: OwnerRef::Id(4)
            }
        );
        assert!(owner("Alice").is_err() && owner("a:").is_err());
    }
}
