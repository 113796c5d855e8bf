//! What a node's plan does to each path, as `piimage plan` shows it: the operations folded
//! into one entry per path, with the text before (read from the base) and after, and the diff
//! between them with secrets redacted ([`super::redact`]).

use crate::fs::ext4::Ext4Reader;
use crate::fs::fat::FatReader;
use crate::image::PartWindow;
use crate::ops::{FileOp, Part, apply_text_edit};

use super::redact::redact_known;

/// Reads text files of the base, as the plan's edits see them.
#[derive(Debug)]
pub struct BaseFiles {
    root: Option<Ext4Reader>,
    boot: Option<FatReader<PartWindow>>,
}

impl BaseFiles {
    /// Reads through these readers (the base's root and boot filesystems).
    pub fn new(root: Option<Ext4Reader>, boot: Option<FatReader<PartWindow>>) -> Self {
        Self { root, boot }
    }

    /// The text of `path` in `part`, `None` when it is missing, unreadable or not UTF-8.
    pub fn read(&self, part: Part, path: &str) -> Option<String> {
        let bytes = match part {
            Part::Root => self.root.as_ref()?.read(path).ok()??,
            Part::Boot => self.boot.as_ref()?.read(path).ok()??,
        };
        String::from_utf8(bytes).ok()
    }
}

/// The changed lines of `old` -> `new` with one line of context, as (sign, line) pairs; a
/// `...` entry (sign `' '`, no line) ends each hunk. Lines lose their final newline.
pub fn diff_lines(old: &str, new: &str) -> Vec<(char, Option<String>)> {
    let d = similar::TextDiff::from_lines(old, new);
    let mut out = Vec::new();
    for group in d.grouped_ops(1) {
        for op in group {
            for change in d.iter_changes(&op) {
                let sign = match change.tag() {
                    similar::ChangeTag::Delete => '-',
                    similar::ChangeTag::Insert => '+',
                    similar::ChangeTag::Equal => ' ',
                };
                let line = change.value();
                let line = line.strip_suffix('\n').unwrap_or(line);
                out.push((sign, Some(line.to_owned())));
            }
        }
        out.push((' ', None));
    }
    out
}

/// The net effect of a node's operations on one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touched {
    /// The partition.
    pub part: Part,
    /// The path in it.
    pub path: String,
    /// What happens to it last (`write`, `edit`, `mkdir`, `symlink`, `remove`, `chown`).
    pub action: &'static str,
    /// Mode, owner, size or link target.
    pub detail: String,
    /// Text before the first operation (from the base), when it is text.
    pub before: Option<String>,
    /// Text after the last operation, when it is text.
    pub after: Option<String>,
}

/// Folds the operations into one entry per path, in the order paths are first touched.
pub fn fold(ops: &[FileOp], files: &BaseFiles) -> Vec<Touched> {
    let mut out: Vec<Touched> = Vec::new();
    for op in ops {
        let (part, path) = (op.part(), op.path().to_owned());
        let i = match out.iter().position(|t| t.part == part && t.path == path) {
            Some(i) => i,
            None => {
                let before = files.read(part, &path);
                out.push(Touched {
                    part,
                    path: path.clone(),
                    action: "",
                    detail: String::new(),
                    after: before.clone(),
                    before,
                });
                out.len() - 1
            }
        };
        let t = &mut out[i];
        match op {
            FileOp::Write { data, owner, .. } => {
                t.action = "write";
                t.detail = format!(
                    "{:04o} {}:{}  {} bytes",
                    owner.mode,
                    owner.uid,
                    owner.gid,
                    data.len()
                );
                t.after = String::from_utf8(data.clone()).ok();
            }
            FileOp::Append { data, .. } => {
                t.action = if t.action.is_empty() {
                    "append"
                } else {
                    t.action
                };
                let mut text = t.after.clone().unwrap_or_default();
                text.push_str(&String::from_utf8_lossy(data));
                t.after = Some(text);
            }
            FileOp::Mkdir { owner, .. } => {
                t.action = "mkdir";
                t.detail = format!("{:04o} {}:{}", owner.mode, owner.uid, owner.gid);
            }
            FileOp::Symlink {
                target, uid, gid, ..
            } => {
                t.action = "symlink";
                t.detail = format!("-> {target}  {uid}:{gid}");
                t.after = None;
            }
            FileOp::Remove { .. } => {
                t.action = "remove";
                t.detail.clear();
                t.after = None;
            }
            FileOp::SetOwner { owner, .. } => {
                if t.action.is_empty() {
                    t.action = "chown";
                }
                t.detail = format!("{:04o} {}:{}", owner.mode, owner.uid, owner.gid);
            }
            FileOp::Edit { edit, .. } => {
                if t.action.is_empty() {
                    t.action = "edit";
                }
                let old = t.after.clone().unwrap_or_default();
                match apply_text_edit(&old, edit) {
                    Ok(new) => {
                        t.detail = format!("{} bytes", new.len());
                        t.after = Some(new);
                    }
                    Err(e) => t.detail = format!("fails: {e}"),
                }
            }
        }
    }
    out
}

/// The diff of an edited text file, secrets shown as markers that change when they do (see
/// plan::redact; `known` are the recipe's secret values as the node's plan lists them, each
/// with its name); `None` when there is nothing to compare.
pub fn changed_lines(
    t: &Touched,
    known: &[(String, String)],
) -> Option<Vec<(char, Option<String>)>> {
    let (Some(before), Some(after)) = (&t.before, &t.after) else {
        return None;
    };
    if before == after {
        return None;
    }
    let (before, after) = (
        redact_known(&t.path, before, known),
        redact_known(&t.path, after, known),
    );
    Some(diff_lines(&before, &after))
}

/// The files a plan writes to the FAT boot partition that hold secrets (what plan::redact
/// would hide: password hashes, private keys, Wi-Fi passphrases, tokens, the recipe's
/// `secrets:`). FAT has no owners or modes: Raspberry Pi OS and Ubuntu mount it readable by
/// every user of the node, so `plan` says so for each.
pub fn exposed_on_boot(touched: &[Touched], known: &[(String, String)]) -> Vec<String> {
    touched
        .iter()
        .filter(|t| t.part == Part::Boot)
        .filter(|t| {
            t.after
                .as_deref()
                .is_some_and(|after| redact_known(&t.path, after, known) != after)
        })
        .map(|t| t.path.clone())
        .collect()
}

/// The warning [`exposed_on_boot`]'s files get.
pub fn exposed_warning(path: &str) -> String {
    format!(
        "boot:{path} holds secrets (password hashes, private keys, Wi-Fi passphrases or tokens): \
         the boot partition is FAT, which has no permissions, so every user of the node can \
         read it (the recipe asked for a seed there)"
    )
}
