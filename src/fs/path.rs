//! Resolving paths inside an image, never on the host.
//!
//! Official images use merged `/usr` (`/bin`, `/sbin`, `/lib` are symlinks into `usr/`), so a
//! recipe path like `/lib/systemd/system/x.service` must land in `/usr/lib/systemd/system/`.
//! Intermediate symlinks are followed: relative targets from the link's directory, absolute
//! targets from the image's root. Like Linux, at most [`MAX_SYMLINKS`] links are followed per
//! path; unlike Linux, `..` at the root is an error rather than a no-op, so that nothing a
//! recipe or an image's own links say can point above the image's root.

use std::collections::VecDeque;

/// The most symlinks followed while resolving one path (Linux's `MAXSYMLINKS`).
pub const MAX_SYMLINKS: u32 = 40;

/// Longest path accepted (Linux's `PATH_MAX`).
pub const PATH_MAX: usize = 4096;

/// Errors resolving a path inside an image.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PathError {
    /// The path does not start with `/`.
    #[error("{path}: paths inside the image must be absolute")]
    NotAbsolute {
        /// The path.
        path: String,
    },
    /// `..` would go above the image's root.
    #[error("{path}: escapes above the image's root")]
    Escape {
        /// The path as given.
        path: String,
    },
    /// Too many symlinks (a loop).
    #[error("{path}: too many levels of symbolic links (loop?)")]
    Loop {
        /// The path as given.
        path: String,
    },
    /// A path or name that is too long, empty or holds a NUL byte.
    #[error("{path}: {why}")]
    Invalid {
        /// The path as given.
        path: String,
        /// What is wrong.
        why: &'static str,
    },
    /// Looking up a component failed.
    #[error("{path}: {detail}")]
    Lookup {
        /// The component being looked up.
        path: String,
        /// What the filesystem said.
        detail: String,
    },
}

/// What resolution needs of a filesystem: the target of a symlink.
pub trait SymlinkLookup {
    /// `Ok(Some(target))` when `path` (already resolved up to its last component) is a symlink,
    /// `Ok(None)` when it is anything else or does not exist.
    fn symlink_target(&self, path: &str) -> Result<Option<String>, String>;
}

fn join(stack: &[String]) -> String {
    if stack.is_empty() {
        "/".to_owned()
    } else {
        let mut s = String::new();
        for c in stack {
            s.push('/');
            s.push_str(c);
        }
        s
    }
}

fn components(path: &str) -> impl DoubleEndedIterator<Item = &str> {
    path.split('/').filter(|c| !c.is_empty() && *c != ".")
}

/// Resolves `path` inside the image. Every intermediate symlink is followed; the last
/// component is followed only when `follow_last` is true (so a recipe can replace a symlink
/// itself, or write through it). Missing components are fine: the result is where the file
/// would be created.
pub fn resolve(fs: &dyn SymlinkLookup, path: &str, follow_last: bool) -> Result<String, PathError> {
    let err_path = || path.to_owned();
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute { path: err_path() });
    }
    if path.len() > PATH_MAX {
        return Err(PathError::Invalid {
            path: err_path(),
            why: "path too long",
        });
    }
    if path.contains('\0') {
        return Err(PathError::Invalid {
            path: err_path(),
            why: "path contains a NUL byte",
        });
    }
    let mut todo: VecDeque<String> = components(path).map(str::to_owned).collect();
    let mut stack: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(c) = todo.pop_front() {
        if c == ".." {
            if stack.pop().is_none() {
                return Err(PathError::Escape { path: err_path() });
            }
            continue;
        }
        if c.len() > 255 {
            return Err(PathError::Invalid {
                path: err_path(),
                why: "a file name is longer than 255 bytes",
            });
        }
        stack.push(c);
        if todo.is_empty() && !follow_last {
            break;
        }
        let here = join(&stack);
        let target = fs
            .symlink_target(&here)
            .map_err(|detail| PathError::Lookup { path: here, detail })?;
        let Some(target) = target else { continue };
        links += 1;
        if links > MAX_SYMLINKS {
            return Err(PathError::Loop { path: err_path() });
        }
        stack.pop();
        if target.starts_with('/') {
            stack.clear();
        }
        if target.is_empty() {
            return Err(PathError::Invalid {
                path: err_path(),
                why: "a symlink on the way has an empty target",
            });
        }
        for t in components(&target).rev() {
            todo.push_front(t.to_owned());
        }
    }
    Ok(join(&stack))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct Links(HashMap<&'static str, &'static str>);

    impl SymlinkLookup for Links {
        fn symlink_target(&self, path: &str) -> Result<Option<String>, String> {
            Ok(self.0.get(path).map(|t| (*t).to_owned()))
        }
    }

    fn image() -> Links {
        Links(HashMap::from([
            ("/bin", "usr/bin"),
            ("/lib", "usr/lib"),
            ("/sbin", "usr/sbin"),
            ("/etc/alternatives/editor", "/usr/bin/nano"),
            ("/usr/lib/up", "../../etc"),
            ("/loop/a", "b"),
            ("/loop/b", "a"),
            ("/escape", "../.."),
            ("/abs", "/usr//./lib/"),
            (
                "/etc/resolv.conf",
                "../run/systemd/resolve/stub-resolv.conf",
            ),
        ]))
    }

    #[test]
    fn resolves_inside_the_image() {
        let fs = image();
        let cases: &[(&str, bool, &str)] = &[
            (
                "/lib/systemd/system/x.service",
                true,
                "/usr/lib/systemd/system/x.service",
            ),
            ("/bin", false, "/bin"),
            ("/bin", true, "/usr/bin"),
            ("/bin/", true, "/usr/bin"),
            (
                "/etc/alternatives/editor",
                false,
                "/etc/alternatives/editor",
            ),
            ("/etc/alternatives/editor", true, "/usr/bin/nano"),
            ("/lib/up/hostname", true, "/etc/hostname"),
            ("/usr/./bin/../sbin//x", true, "/usr/sbin/x"),
            ("/abs/x", true, "/usr/lib/x"),
            (
                "/etc/resolv.conf",
                true,
                "/run/systemd/resolve/stub-resolv.conf",
            ),
            ("/", true, "/"),
            ("/new/dir/file", true, "/new/dir/file"),
        ];
        for (path, follow, want) in cases {
            assert_eq!(resolve(&fs, path, *follow).unwrap(), *want, "{path}");
        }
    }

    #[test]
    fn refuses_escapes_loops_and_bad_paths() {
        let fs = image();
        let long = format!("/{}", "x".repeat(256));
        type Check = fn(&PathError) -> bool;
        let cases: &[(&str, Check)] = &[
            ("relative/path", |e| {
                matches!(e, PathError::NotAbsolute { .. })
            }),
            ("/..", |e| matches!(e, PathError::Escape { .. })),
            ("/etc/../../x", |e| matches!(e, PathError::Escape { .. })),
            ("/escape/x", |e| matches!(e, PathError::Escape { .. })),
            ("/loop/a/x", |e| matches!(e, PathError::Loop { .. })),
            ("/a\0b", |e| matches!(e, PathError::Invalid { .. })),
            (&long, |e| matches!(e, PathError::Invalid { .. })),
        ];
        for (path, ok) in cases {
            let e = resolve(&fs, path, true).unwrap_err();
            assert!(ok(&e), "{path}: {e}");
        }
    }
}
