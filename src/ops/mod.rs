//! The file-operation vocabulary shared by the boot (FAT) and root (ext4) partitions.
//!
//! Everything a recipe asks for (users, keys, hostname, network, overlays) becomes a list of
//! [`FileOp`]s for one node. The pipeline applies a node's list to that node's copy-on-write
//! disk; one failure fails the node, and since the overlay is then discarded, nothing is
//! written for it.

pub mod text;

use serde::Serialize;

/// Which filesystem an operation targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    /// The FAT boot partition (`/boot/firmware` on the running system).
    Boot,
    /// The ext4 root partition.
    Root,
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Boot => "boot",
            Self::Root => "root",
        })
    }
}

/// Owner and permission bits of a file (FAT ignores them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FileAttrs {
    /// Permission bits (`0o644`), without the file-type bits.
    pub mode: u32,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
}

impl FileAttrs {
    /// `root:root` with `mode`.
    pub const fn root(mode: u32) -> Self {
        Self {
            mode,
            uid: 0,
            gid: 0,
        }
    }
}

/// A line-level edit of a text file; each keeps every byte it does not touch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "edit", rename_all = "kebab-case")]
pub enum TextEdit {
    /// `cmdline.txt`: set a token (`key=value` replaces the same key in place when the key takes
    /// one value, see [`text::cmdline::SINGLE_VALUE_KEYS`]; anything else is appended if absent).
    CmdlineSet {
        /// The token.
        token: String,
    },
    /// `cmdline.txt`: remove a token, or every `key=` token.
    CmdlineRemove {
        /// The token or `key=`.
        token: String,
    },
    /// `config.txt`: ensure a line in a `[section]` (`None`: the general part).
    ConfigEnsure {
        /// Section filter without brackets.
        section: Option<String>,
        /// The line.
        line: String,
    },
    /// `config.txt`: remove a line wherever it is.
    ConfigRemove {
        /// The line.
        line: String,
    },
    /// Colon table: replace or append the row keyed by its first field.
    TableUpsert {
        /// The fields.
        fields: Vec<String>,
    },
    /// Colon table: remove the row keyed `key`.
    TableRemove {
        /// First field of the row.
        key: String,
    },
    /// Colon table: set one field of a row.
    TableSetField {
        /// First field of the row.
        key: String,
        /// Field index.
        index: usize,
        /// New value.
        value: String,
    },
    /// Colon table: add a member to a comma-separated list field.
    TableAddMember {
        /// First field of the row.
        key: String,
        /// Field index (3 in `group` and `gshadow`).
        index: usize,
        /// The member.
        member: String,
    },
    /// Colon table: remove a member from a comma-separated list field (no-op if absent).
    TableRemoveMember {
        /// First field of the row.
        key: String,
        /// Field index.
        index: usize,
        /// The member.
        member: String,
    },
    /// Any text file: append `line` unless a line equal to it exists.
    EnsureLine {
        /// The line, without its newline.
        line: String,
    },
    /// `KEY=value` files (`/etc/default/*`): replace the first active `KEY=` line, or append.
    SetKeyValue {
        /// The key.
        key: String,
        /// The value, as it should appear after `=` (quote it yourself if needed).
        value: String,
    },
    /// `/etc/locale.gen`: enable a `NAME CHARSET` line (uncomment it, or append it).
    LocaleGenEnable {
        /// The line (`en_US.UTF-8 UTF-8`).
        line: String,
    },
    /// Any text file: replace every occurrence of a string.
    Replace {
        /// What to find.
        from: String,
        /// What to put instead.
        to: String,
    },
}

impl TextEdit {
    /// True for edits that make sense on a missing file (which is then created empty first).
    pub fn creates_missing(&self) -> bool {
        matches!(
            self,
            Self::EnsureLine { .. } | Self::SetKeyValue { .. } | Self::LocaleGenEnable { .. }
        )
    }
}

/// Applies `edit` to `text`. Errors name what is missing.
pub fn apply_text_edit(text: &str, edit: &TextEdit) -> Result<String, String> {
    use text::{cmdline, config_txt, table::Table};
    Ok(match edit {
        TextEdit::CmdlineSet { token } => cmdline::set(text, token),
        TextEdit::CmdlineRemove { token } => cmdline::remove(text, token),
        TextEdit::LocaleGenEnable { line } => text::locale_gen::enable(text, line),
        TextEdit::ConfigEnsure { section, line } => {
            config_txt::ensure_line(text, section.as_deref(), line)
        }
        TextEdit::ConfigRemove { line } => config_txt::remove_line(text, line),
        TextEdit::TableUpsert { fields } => {
            let mut t = Table::parse(text);
            let f: Vec<&str> = fields.iter().map(String::as_str).collect();
            t.upsert(&f);
            t.render()
        }
        TextEdit::TableRemove { key } => {
            let mut t = Table::parse(text);
            t.remove(key);
            t.render()
        }
        TextEdit::TableSetField { key, index, value } => {
            let mut t = Table::parse(text);
            if !t.set_field(key, *index, value) {
                return Err(format!("no row {key:?}"));
            }
            t.render()
        }
        TextEdit::TableAddMember { key, index, member } => {
            let mut t = Table::parse(text);
            if !t.add_member(key, *index, member) {
                return Err(format!("no row {key:?}"));
            }
            t.render()
        }
        TextEdit::TableRemoveMember { key, index, member } => {
            let mut t = Table::parse(text);
            t.remove_member(key, *index, member);
            t.render()
        }
        TextEdit::EnsureLine { line } => {
            if text.lines().any(|l| l == line) {
                text.to_owned()
            } else {
                let sep = if text.is_empty() || text.ends_with('\n') {
                    ""
                } else {
                    "\n"
                };
                format!("{text}{sep}{line}\n")
            }
        }
        TextEdit::SetKeyValue { key, value } => {
            let prefix = format!("{key}=");
            let line = format!("{key}={value}");
            let mut done = false;
            let mut out: Vec<String> = text
                .lines()
                .map(|l| {
                    if !done && l.trim_start().starts_with(&prefix) {
                        done = true;
                        line.clone()
                    } else {
                        l.to_owned()
                    }
                })
                .collect();
            if !done {
                out.push(line);
            }
            let mut s = out.join("\n");
            s.push('\n');
            s
        }
        TextEdit::Replace { from, to } => text.replace(from.as_str(), to),
    })
}

/// One operation on one node's image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum FileOp {
    /// Create or replace a regular file (parents are created `0755 root:root`).
    Write {
        /// Partition.
        part: Part,
        /// Absolute path inside the partition.
        path: String,
        /// Content.
        #[serde(skip)]
        data: Vec<u8>,
        /// Owner and mode.
        owner: FileAttrs,
    },
    /// Append to a file, creating it with `owner` if missing.
    Append {
        /// Partition.
        part: Part,
        /// Absolute path inside the partition.
        path: String,
        /// What to append.
        #[serde(skip)]
        data: Vec<u8>,
        /// Owner and mode if the file is created.
        owner: FileAttrs,
    },
    /// `mkdir -p`; the last component gets `owner`, missing parents `0755 root:root`.
    Mkdir {
        /// Partition.
        part: Part,
        /// Absolute path inside the partition.
        path: String,
        /// Owner and mode.
        owner: FileAttrs,
    },
    /// Create or replace a symlink (root partition only).
    Symlink {
        /// Absolute path of the link.
        path: String,
        /// What it points to (stored as given).
        target: String,
        /// Owner uid.
        uid: u32,
        /// Owner gid.
        gid: u32,
    },
    /// Remove a file or symlink (missing is fine).
    Remove {
        /// Partition.
        part: Part,
        /// Absolute path inside the partition.
        path: String,
    },
    /// chmod/chown (root partition only).
    SetOwner {
        /// Absolute path.
        path: String,
        /// New owner and mode.
        owner: FileAttrs,
    },
    /// A line-level edit of an existing text file.
    Edit {
        /// Partition.
        part: Part,
        /// Absolute path inside the partition.
        path: String,
        /// The edit.
        edit: TextEdit,
    },
}

impl FileOp {
    /// The partition the operation targets.
    pub fn part(&self) -> Part {
        match self {
            Self::Write { part, .. }
            | Self::Append { part, .. }
            | Self::Mkdir { part, .. }
            | Self::Remove { part, .. }
            | Self::Edit { part, .. } => *part,
            Self::Symlink { .. } | Self::SetOwner { .. } => Part::Root,
        }
    }

    /// The path the operation targets.
    pub fn path(&self) -> &str {
        match self {
            Self::Write { path, .. }
            | Self::Append { path, .. }
            | Self::Mkdir { path, .. }
            | Self::Symlink { path, .. }
            | Self::Remove { path, .. }
            | Self::SetOwner { path, .. }
            | Self::Edit { path, .. } => path,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_edits_dispatch() {
        let cases: Vec<(&str, TextEdit, &str)> = vec![
            ("a\n", TextEdit::EnsureLine { line: "b".into() }, "a\nb\n"),
            ("a", TextEdit::EnsureLine { line: "b".into() }, "a\nb\n"),
            (
                "a\nb\n",
                TextEdit::EnsureLine { line: "b".into() },
                "a\nb\n",
            ),
            (
                "x 1234-02 y\n",
                TextEdit::Replace {
                    from: "1234".into(),
                    to: "abcd".into(),
                },
                "x abcd-02 y\n",
            ),
            (
                "root:x:0:\n",
                TextEdit::TableAddMember {
                    key: "root".into(),
                    index: 3,
                    member: "a".into(),
                },
                "root:x:0:a\n",
            ),
            (
                "quiet\n",
                TextEdit::CmdlineSet {
                    token: "a=1".into(),
                },
                "quiet a=1\n",
            ),
        ];
        for (text, edit, want) in cases {
            assert_eq!(apply_text_edit(text, &edit).unwrap(), want, "{edit:?}");
        }
        let missing = TextEdit::TableSetField {
            key: "bob".into(),
            index: 1,
            value: "!".into(),
        };
        assert!(
            apply_text_edit("root:x\n", &missing)
                .unwrap_err()
                .contains("bob")
        );
    }
}
