//! Applying one node's [`FileOp`]s to its root (ext4) and boot (FAT) filesystems.
//!
//! Paths are resolved inside the image ([`crate::fs::path`]): intermediate symlinks are followed
//! (merged `/usr`: `/lib/systemd/...` lands in `/usr/lib/systemd/...`), the final component
//! never is. A write replaces a symlink at its path with the new file, as `install` does; an
//! edit or append of a symlink, and a directory created where a symlink is, are refused with the
//! link's path and target: a link planted in the image (`/etc/hosts -> /etc/shadow`) must not
//! redirect what piimage writes. A root-owned directory that is a link to a directory is left as
//! it is (as `mkdir -p` does; its target is not chmod-ed or chown-ed). An operation that gives a user (not root) ownership (a home,
//! `.ssh`, `authorized_keys`, an overlay rule) is refused when any directory on its way is a
//! symlink (`/home/alice -> /root`), so a user is never given a directory the link points at.
//! Consecutive edits are applied in memory and each edited file is written once (see
//! `Edits`). Applying stops at the first failing operation; the caller discards the node's
//! overlay, so a node's operations take effect all together or not at all.

use std::io::{Read, Seek, Write};

use crate::fs::ext4::rootfs::{FileKind, MetaChange, Owner as FsOwner, RootFs, RootFsError};
use crate::fs::fat::{FatError, FatWriter};
use crate::fs::path::{self, PathError, SymlinkLookup};
use crate::ops::{FileAttrs, FileOp, Part, apply_text_edit};

/// Why an operation failed; names the operation's index, partition and path.
#[derive(Debug, thiserror::Error)]
#[error("operation {index} ({part}:{path})")]
pub struct ApplyError {
    /// Index of the operation in the node's list.
    pub index: usize,
    /// Partition.
    pub part: Part,
    /// Path as given.
    pub path: String,
    /// What went wrong.
    #[source]
    pub kind: ApplyErrorKind,
}

/// The cause of an [`ApplyError`].
#[derive(Debug, thiserror::Error)]
pub enum ApplyErrorKind {
    /// Path resolution failed.
    #[error(transparent)]
    Path(#[from] PathError),
    /// The ext4 writer failed.
    #[error(transparent)]
    Root(#[from] RootFsError),
    /// The FAT writer failed.
    #[error(transparent)]
    Boot(#[from] FatError),
    /// A text edit could not be applied.
    #[error("cannot edit: {0}")]
    Edit(String),
    /// A symlink in the image where the operation must not go through one.
    #[error(
        "{link} is a symbolic link in the image (to {target}); piimage {what} (replace or remove the link first)"
    )]
    Link {
        /// The link.
        link: String,
        /// Its target.
        target: String,
        /// What is refused.
        what: &'static str,
    },
    /// The operation makes no sense on this partition or entry.
    #[error("{0}")]
    Invalid(String),
}

struct Links<'a>(&'a dyn RootFs);

impl SymlinkLookup for Links<'_> {
    fn symlink_target(&self, path: &str) -> Result<Option<String>, String> {
        match self.0.lookup(path) {
            Ok(Some(meta)) if meta.kind == FileKind::Symlink => Ok(meta.symlink_target),
            Ok(_) => Ok(None),
            Err(e) => Err(crate::error::chain(&e)),
        }
    }
}

/// The target of the symlink at `p` (not following it), `None` for anything else or nothing.
fn link_at(fs: &dyn RootFs, p: &str) -> Result<Option<String>, ApplyErrorKind> {
    Ok(match fs.lookup(p)? {
        Some(m) if m.kind == FileKind::Symlink => Some(m.symlink_target.unwrap_or_default()),
        _ => None,
    })
}

/// Refuses `p` when it is a symlink (`what` says what is refused).
fn not_a_link(fs: &dyn RootFs, p: &str, what: &'static str) -> Result<(), ApplyErrorKind> {
    match link_at(fs, p)? {
        Some(target) => Err(ApplyErrorKind::Link {
            link: p.to_owned(),
            target,
            what,
        }),
        None => Ok(()),
    }
}

/// For an operation giving `owner` (not root) ownership of `path` (as given): refuses when
/// `path` or any directory on its way is a symlink.
fn no_links_for_user(
    fs: &dyn RootFs,
    path: &str,
    uid: u32,
    gid: u32,
) -> Result<(), ApplyErrorKind> {
    if uid == 0 && gid == 0 {
        return Ok(());
    }
    let mut prefix = String::new();
    for c in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
        prefix.push('/');
        prefix.push_str(c);
        match fs.lookup(&prefix)? {
            None => break,
            Some(m) if m.kind == FileKind::Symlink => {
                return Err(ApplyErrorKind::Link {
                    link: prefix,
                    target: m.symlink_target.unwrap_or_default(),
                    what: "gives a user's files and directories only to real directories, never through a link",
                });
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

fn mode16(mode: u32) -> u16 {
    u16::try_from(mode & 0o7777).unwrap_or(0o644)
}

fn fs_owner(o: &FileAttrs) -> FsOwner {
    FsOwner::new(o.uid, o.gid)
}

/// chmod + chown to `o`.
fn full_change(o: &FileAttrs) -> MetaChange {
    MetaChange {
        mode: Some(mode16(o.mode)),
        uid: Some(o.uid),
        gid: Some(o.gid),
    }
}

/// A text file being edited: successive edits of one file are applied in memory and the file
/// is written once, before the next operation that is not an edit (which may look at it) and
/// at the end. A user's account edits touch `/etc/group` and `/etc/gshadow` dozens of times;
/// this writes each once.
struct Pending<M> {
    /// Resolved path (root) or path as given (boot).
    path: String,
    text: String,
    meta: M,
    /// Changed since loaded (or created).
    dirty: bool,
    /// The last operation that edited it, for errors while writing.
    index: usize,
}

struct Edits<M> {
    pending: Vec<Pending<M>>,
    /// Paths compare ignoring ASCII case (FAT).
    ignore_case: bool,
}

impl<M> Edits<M> {
    fn new(ignore_case: bool) -> Self {
        Self {
            pending: Vec::new(),
            ignore_case,
        }
    }

    /// Applies `edit` to the file `path`, loading it with `load` (text, meta, created) the
    /// first time.
    fn edit(
        &mut self,
        index: usize,
        path: String,
        edit: &crate::ops::TextEdit,
        load: impl FnOnce() -> Result<(String, M, bool), ApplyErrorKind>,
    ) -> Result<(), ApplyErrorKind> {
        let same = |p: &Pending<M>| {
            if self.ignore_case {
                p.path.eq_ignore_ascii_case(&path)
            } else {
                p.path == path
            }
        };
        let i = match self.pending.iter().position(same) {
            Some(i) => i,
            None => {
                let (text, meta, created) = load()?;
                self.pending.push(Pending {
                    path,
                    text,
                    meta,
                    dirty: created,
                    index,
                });
                self.pending.len() - 1
            }
        };
        let p = &mut self.pending[i];
        let new = apply_text_edit(&p.text, edit).map_err(ApplyErrorKind::Edit)?;
        if new != p.text {
            p.text = new;
            p.dirty = true;
        }
        p.index = index;
        Ok(())
    }

    /// Writes every changed file with `store`, in the order they were first edited.
    fn flush(
        &mut self,
        mut store: impl FnMut(&str, &str, &M) -> Result<(), ApplyErrorKind>,
    ) -> Result<(), (usize, ApplyErrorKind)> {
        for p in self.pending.drain(..) {
            if p.dirty {
                store(&p.path, &p.text, &p.meta).map_err(|k| (p.index, k))?;
            }
        }
        Ok(())
    }
}

fn utf8(path: &str, bytes: Vec<u8>) -> Result<String, ApplyErrorKind> {
    String::from_utf8(bytes).map_err(|_| ApplyErrorKind::Edit(format!("{path} is not UTF-8 text")))
}

/// Applies the root-partition operations of `ops` (in order) with modification time `epoch`.
pub fn apply_root(fs: &mut dyn RootFs, ops: &[FileOp], epoch: i64) -> Result<(), ApplyError> {
    let err = |index: usize, kind| ApplyError {
        index,
        part: Part::Root,
        path: ops[index].path().to_owned(),
        kind,
    };
    let mut edits: Edits<(u16, FsOwner)> = Edits::new(false);
    let flush = |fs: &mut dyn RootFs, edits: &mut Edits<(u16, FsOwner)>| {
        edits
            .flush(|p, text, (mode, owner)| {
                Ok(fs.write_file(p, text.as_bytes(), *mode, *owner, epoch)?)
            })
            .map_err(|(i, k)| err(i, k))
    };
    for (index, op) in ops.iter().enumerate() {
        if op.part() != Part::Root {
            continue;
        }
        if let FileOp::Edit { path, edit, .. } = op {
            edit_root(fs, &mut edits, index, path, edit).map_err(|k| err(index, k))?;
            continue;
        }
        flush(fs, &mut edits)?;
        apply_root_op(fs, op, epoch).map_err(|k| err(index, k))?;
    }
    flush(fs, &mut edits)
}

fn edit_root(
    fs: &mut dyn RootFs,
    edits: &mut Edits<(u16, FsOwner)>,
    index: usize,
    path: &str,
    edit: &crate::ops::TextEdit,
) -> Result<(), ApplyErrorKind> {
    let p = path::resolve(&Links(fs), path, false)?;
    not_a_link(fs, &p, "does not edit a file through a link")?;
    edits.edit(index, p.clone(), edit, || match fs.lookup(&p)? {
        Some(meta) => Ok((utf8(&p, fs.read(&p)?)?, (meta.mode, meta.owner), false)),
        None if edit.creates_missing() => {
            ensure_parent(fs, &p)?;
            Ok((String::new(), (0o644, FsOwner::ROOT), true))
        }
        None => Err(ApplyErrorKind::Edit(format!("{p} does not exist"))),
    })
}

fn ensure_parent(fs: &mut dyn RootFs, path: &str) -> Result<(), ApplyErrorKind> {
    let dir = parent(path);
    if dir != "/" {
        fs.mkdir_p(dir, 0o755, FsOwner::ROOT)?;
    }
    Ok(())
}

fn apply_root_op(fs: &mut dyn RootFs, op: &FileOp, epoch: i64) -> Result<(), ApplyErrorKind> {
    let resolve = |fs: &dyn RootFs, p: &str, follow: bool| path::resolve(&Links(fs), p, follow);
    match op {
        FileOp::Write {
            path, data, owner, ..
        } => {
            no_links_for_user(fs, path, owner.uid, owner.gid)?;
            let p = resolve(fs, path, false)?;
            if link_at(fs, &p)?.is_some() {
                fs.unlink(&p)?; // replaced by the new file, as `install` does
            }
            ensure_parent(fs, &p)?;
            fs.write_file(&p, data, mode16(owner.mode), fs_owner(owner), epoch)?;
        }
        FileOp::Append {
            path, data, owner, ..
        } => {
            no_links_for_user(fs, path, owner.uid, owner.gid)?;
            let p = resolve(fs, path, false)?;
            not_a_link(fs, &p, "does not append to a file through a link")?;
            match fs.lookup(&p)? {
                Some(meta) => {
                    let mut content = fs.read(&p)?;
                    content.extend_from_slice(data);
                    fs.write_file(&p, &content, meta.mode, meta.owner, epoch)?;
                }
                None => {
                    ensure_parent(fs, &p)?;
                    fs.write_file(&p, data, mode16(owner.mode), fs_owner(owner), epoch)?;
                }
            }
        }
        FileOp::Mkdir { path, owner, .. } => {
            no_links_for_user(fs, path, owner.uid, owner.gid)?;
            let p = resolve(fs, path, false)?;
            if link_at(fs, &p)?.is_some() {
                // A root-owned directory that is a link to a directory (merged `/usr`'s `/lib`
                // in an overlay tree) exists, as for `mkdir -p`; its target keeps its mode and
                // owner. A link to anything else is refused.
                let target = resolve(fs, path, true)?;
                if fs.lookup(&target)?.is_some_and(|m| m.kind == FileKind::Dir) {
                    return Ok(());
                }
                not_a_link(fs, &p, "does not create a directory where a link is")?;
            }
            ensure_parent(fs, &p)?;
            fs.mkdir_p(&p, mode16(owner.mode), fs_owner(owner))?;
            fs.set_meta(&p, full_change(owner))?;
        }
        FileOp::Symlink {
            path,
            target,
            uid,
            gid,
        } => {
            let p = resolve(fs, path, false)?;
            match fs.lookup(&p)? {
                Some(m) if m.kind == FileKind::Dir => {
                    return Err(ApplyErrorKind::Invalid(format!(
                        "{p} is a directory; a symlink cannot replace it"
                    )));
                }
                Some(_) => fs.unlink(&p)?,
                None => ensure_parent(fs, &p)?,
            }
            fs.symlink(&p, target, FsOwner::new(*uid, *gid))?;
        }
        FileOp::Remove { path, .. } => {
            let p = resolve(fs, path, false)?;
            if fs.lookup(&p)?.is_some() {
                fs.unlink(&p)?;
            }
        }
        FileOp::SetOwner { path, owner } => {
            no_links_for_user(fs, path, owner.uid, owner.gid)?;
            let p = resolve(fs, path, false)?;
            fs.set_meta(&p, full_change(owner))?;
        }
        FileOp::Edit { .. } => unreachable!("edits are applied through `Edits`"),
    }
    Ok(())
}

/// Applies the boot-partition operations of `ops` (in order). FAT has no owners, modes or
/// symlinks, and compares names case-insensitively.
pub fn apply_boot<D: Read + Write + Seek>(
    fat: &FatWriter<D>,
    ops: &[FileOp],
) -> Result<(), ApplyError> {
    let err = |index: usize, kind| ApplyError {
        index,
        part: Part::Boot,
        path: ops[index].path().to_owned(),
        kind,
    };
    let mut edits: Edits<()> = Edits::new(true);
    let flush = |edits: &mut Edits<()>| {
        edits
            .flush(|p, text, ()| Ok(fat.write_file(p, text.as_bytes())?))
            .map_err(|(i, k)| err(i, k))
    };
    for (index, op) in ops.iter().enumerate() {
        if op.part() != Part::Boot {
            continue;
        }
        check_boot_path(op.path()).map_err(|k| err(index, k))?;
        if let FileOp::Edit { path, edit, .. } = op {
            edits
                .edit(index, path.clone(), edit, || match fat.read(path)? {
                    Some(old) => Ok((utf8(path, old)?, (), false)),
                    None if edit.creates_missing() => Ok((String::new(), (), true)),
                    None => Err(ApplyErrorKind::Edit(format!("{path} does not exist"))),
                })
                .map_err(|k| err(index, k))?;
            continue;
        }
        flush(&mut edits)?;
        apply_boot_op(fat, op).map_err(|k| err(index, k))?;
    }
    flush(&mut edits)
}

fn check_boot_path(p: &str) -> Result<(), ApplyErrorKind> {
    if !p.starts_with('/') || p.split('/').any(|c| c == "..") {
        return Err(ApplyErrorKind::Path(PathError::Escape {
            path: p.to_owned(),
        }));
    }
    Ok(())
}

fn apply_boot_op<D: Read + Write + Seek>(
    fat: &FatWriter<D>,
    op: &FileOp,
) -> Result<(), ApplyErrorKind> {
    match op {
        FileOp::Write { path, data, .. } => fat.write_file(path, data)?,
        FileOp::Append { path, data, .. } => {
            let mut content = fat.read(path)?.unwrap_or_default();
            content.extend_from_slice(data);
            fat.write_file(path, &content)?;
        }
        FileOp::Mkdir { path, .. } => fat.mkdir_p(path)?,
        FileOp::Remove { path, .. } => {
            fat.remove(path)?;
        }
        FileOp::Edit { .. } => unreachable!("edits are applied through `Edits`"),
        FileOp::Symlink { .. } | FileOp::SetOwner { .. } => {
            return Err(ApplyErrorKind::Invalid(
                "FAT has no symlinks, owners or modes".to_owned(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parent;

    #[test]
    fn parents() {
        for (p, want) in [("/a", "/"), ("/a/b", "/a"), ("/a/b/c", "/a/b"), ("/", "/")] {
            assert_eq!(parent(p), want, "{p}");
        }
    }
}
