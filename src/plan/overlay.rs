//! Overlays: host directory trees copied into the root or boot partition.
//!
//! Files are read without following host symlinks: a symlink in an overlay becomes the same
//! symlink in the image (target kept verbatim), so an overlay can never pull in a host file
//! from outside its directory. Entries are visited in byte order, so plans are reproducible.
//! Files ending in `.j2` are rendered as templates (Jinja syntax, `minijinja`) with the node's
//! variables, and lose the suffix. Modes come from the host file (`0644`/`0755` by its
//! executable bit) unless a rule says otherwise; owners are root unless a rule says otherwise.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use minijinja::Environment;

use crate::ops::{FileOp, Owner, Part};

/// A mode/owner rule for overlay paths matching a glob (`*`, `?`, `**`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Glob over the path inside the image (`/home/alice/.ssh/*`).
    pub glob: String,
    /// Permission bits.
    pub mode: Option<u32>,
    /// Owner uid.
    pub uid: Option<u32>,
    /// Owner gid.
    pub gid: Option<u32>,
}

/// An overlay to apply.
#[derive(Debug, Clone, PartialEq)]
pub struct OverlaySpec {
    /// Host directory.
    pub source: PathBuf,
    /// Partition.
    pub part: Part,
    /// Directory inside the partition the tree lands in.
    pub dest: String,
    /// Render `.j2` files.
    pub templates: bool,
    /// Mode/owner rules; the last matching rule wins per field.
    pub rules: Vec<Rule>,
}

/// Errors reading or rendering an overlay.
#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    /// Reading the host tree failed.
    #[error("overlay {}: {source}", path.display())]
    Io {
        /// The host path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A template did not render.
    #[error("template {}: {detail}", path.display())]
    Template {
        /// The host path.
        path: PathBuf,
        /// minijinja's message (with line).
        detail: String,
    },
    /// A name that cannot go into the image.
    #[error("overlay {}: {why}", path.display())]
    Name {
        /// The host path.
        path: PathBuf,
        /// Why.
        why: &'static str,
    },
}

/// Glob match over `/`-separated paths: `*` and `?` stay inside one component, `**` spans any.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    fn m(p: &[u8], s: &[u8]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some(b'*') if p.get(1) == Some(&b'*') => {
                let rest = p[2..].strip_prefix(b"/").unwrap_or(&p[2..]);
                (0..=s.len())
                    .any(|i| (i == 0 || s[i - 1] == b'/' || rest.is_empty()) && m(rest, &s[i..]))
            }
            Some(b'*') => (0..=s.len())
                .take_while(|&i| i == 0 || s[i - 1] != b'/')
                .any(|i| m(&p[1..], &s[i..])),
            Some(b'?') => !s.is_empty() && s[0] != b'/' && m(&p[1..], &s[1..]),
            Some(c) => s.first() == Some(c) && m(&p[1..], &s[1..]),
        }
    }
    m(pattern.as_bytes(), path.as_bytes())
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> OverlayError + '_ {
    move |source| OverlayError::Io {
        path: path.to_owned(),
        source,
    }
}

fn join(dest: &str, rel: &str) -> String {
    let d = dest.trim_end_matches('/');
    format!("{d}/{rel}")
}

/// The operations an overlay turns into, with `vars` as the template context.
pub fn overlay_ops(
    spec: &OverlaySpec,
    vars: &minijinja::Value,
) -> Result<Vec<FileOp>, OverlayError> {
    let mut env = Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .build()
        .map_err(|e| OverlayError::Template {
            path: spec.source.clone(),
            detail: e.to_string(),
        })?;
    env.set_syntax(syntax);
    let mut ops = Vec::new();
    walk(spec, &env, vars, &spec.source, "", &mut ops)?;
    Ok(ops)
}

fn owner_for(spec: &OverlaySpec, image_path: &str, default_mode: u32) -> Owner {
    let mut o = Owner::root(default_mode);
    for r in spec
        .rules
        .iter()
        .filter(|r| glob_match(&r.glob, image_path))
    {
        o.mode = r.mode.unwrap_or(o.mode);
        o.uid = r.uid.unwrap_or(o.uid);
        o.gid = r.gid.unwrap_or(o.gid);
    }
    o
}

fn walk(
    spec: &OverlaySpec,
    env: &Environment,
    vars: &minijinja::Value,
    dir: &Path,
    rel: &str,
    ops: &mut Vec<FileOp>,
) -> Result<(), OverlayError> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .collect::<Result<_, _>>()
        .map_err(io(dir))?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for e in entries {
        let host = e.path();
        let name = e
            .file_name()
            .into_string()
            .map_err(|_| OverlayError::Name {
                path: host.clone(),
                why: "file name is not UTF-8",
            })?;
        let meta = std::fs::symlink_metadata(&host).map_err(io(&host))?;
        let child_rel = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        if meta.file_type().is_symlink() {
            if spec.part == Part::Boot {
                return Err(OverlayError::Name {
                    path: host,
                    why: "FAT has no symlinks",
                });
            }
            let target = std::fs::read_link(&host).map_err(io(&host))?;
            let target = target.to_str().ok_or(OverlayError::Name {
                path: host.clone(),
                why: "symlink target is not UTF-8",
            })?;
            let path = join(&spec.dest, &child_rel);
            let o = owner_for(spec, &path, 0o777);
            ops.push(FileOp::Symlink {
                path,
                target: target.to_owned(),
                uid: o.uid,
                gid: o.gid,
            });
        } else if meta.is_dir() {
            let path = join(&spec.dest, &child_rel);
            ops.push(FileOp::Mkdir {
                part: spec.part,
                owner: owner_for(spec, &path, 0o755),
                path,
            });
            walk(spec, env, vars, &host, &child_rel, ops)?;
        } else if meta.is_file() {
            let data = std::fs::read(&host).map_err(io(&host))?;
            let exec = meta.permissions().mode() & 0o111 != 0;
            let default_mode = if exec { 0o755 } else { 0o644 };
            let (rel_out, data) = match child_rel.strip_suffix(".j2") {
                Some(stripped) if spec.templates => {
                    let text = String::from_utf8(data).map_err(|_| OverlayError::Template {
                        path: host.clone(),
                        detail: "not UTF-8 text".into(),
                    })?;
                    let out = env
                        .render_str(&text, vars)
                        .map_err(|e| OverlayError::Template {
                            path: host.clone(),
                            detail: match e.line() {
                                Some(l) => format!("line {l}: {e}"),
                                None => e.to_string(),
                            },
                        })?;
                    (stripped.to_owned(), out.into_bytes())
                }
                _ => (child_rel.clone(), data),
            };
            let path = join(&spec.dest, &rel_out);
            ops.push(FileOp::Write {
                part: spec.part,
                owner: owner_for(spec, &path, default_mode),
                path,
                data,
            });
        } else {
            return Err(OverlayError::Name {
                path: host,
                why: "special files (devices, sockets, FIFOs) are not copied",
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let cases = [
            ("/etc/*.conf", "/etc/a.conf", true),
            ("/etc/*.conf", "/etc/x/a.conf", false),
            ("/home/**", "/home/alice/.ssh/authorized_keys", true),
            (
                "/home/**/authorized_keys",
                "/home/alice/.ssh/authorized_keys",
                true,
            ),
            ("/home/**/authorized_keys", "/home/authorized_keys", true),
            ("/usr/local/bin/?", "/usr/local/bin/x", true),
            ("/usr/local/bin/?", "/usr/local/bin/xy", false),
            ("/a", "/a/b", false),
        ];
        for (p, s, want) in cases {
            assert_eq!(glob_match(p, s), want, "{p} vs {s}");
        }
    }

    #[test]
    fn tree_templates_rules_and_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("etc/k3s")).unwrap();
        std::fs::write(
            d.join("etc/k3s/config.yaml.j2"),
            "node-name: {{ node.name }}\nrole: {{ node.role }}\n",
        )
        .unwrap();
        std::fs::write(d.join("etc/motd"), "hello\n").unwrap();
        std::fs::create_dir_all(d.join("usr/local/bin")).unwrap();
        std::fs::write(d.join("usr/local/bin/tool"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            d.join("usr/local/bin/tool"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.join("etc/link")).unwrap();
        let spec = OverlaySpec {
            source: d.to_owned(),
            part: Part::Root,
            dest: "/".into(),
            templates: true,
            rules: vec![Rule {
                glob: "/etc/k3s/**".into(),
                mode: Some(0o600),
                uid: None,
                gid: None,
            }],
        };
        let vars =
            minijinja::context! { node => minijinja::context! { name => "w1", role => "worker" } };
        let ops = overlay_ops(&spec, &vars).unwrap();
        let paths: Vec<&str> = ops.iter().map(FileOp::path).collect();
        assert_eq!(
            paths,
            [
                "/etc",
                "/etc/k3s",
                "/etc/k3s/config.yaml",
                "/etc/link",
                "/etc/motd",
                "/usr",
                "/usr/local",
                "/usr/local/bin",
                "/usr/local/bin/tool"
            ]
        );
        match &ops[2] {
            FileOp::Write { data, owner, .. } => {
                assert_eq!(data, b"node-name: w1\nrole: worker\n");
                assert_eq!(owner.mode, 0o600);
            }
            o => panic!("{o:?}"),
        }
        assert!(matches!(&ops[3], FileOp::Symlink { target, .. } if target == "/etc/passwd"));
        assert!(matches!(&ops[8], FileOp::Write { owner, .. } if owner.mode == 0o755));
        // Undefined variables are errors, with the template named.
        std::fs::write(d.join("etc/bad.j2"), "x\n{{ nope }}\n").unwrap();
        let err = overlay_ops(&spec, &vars).unwrap_err().to_string();
        assert!(err.contains("bad.j2") && err.contains("line 2"), "{err}");
    }
}
