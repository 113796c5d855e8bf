//! `config.txt` lines and `cmdline.txt` tokens, and shared-storage mounts in `/etc/fstab`.

use crate::ops::{FileAttrs, FileOp, Part, TextEdit};
use crate::recipe::MountSpec;

fn boot_edit(path: &str, edit: TextEdit) -> FileOp {
    FileOp::Edit {
        part: Part::Boot,
        path: path.to_owned(),
        edit,
    }
}

/// Operations for `config.txt` lines (`(section, line)`) and `cmdline.txt` tokens.
pub fn boot_ops(
    config: &[(Option<String>, String)],
    add: &[String],
    remove: &[String],
) -> Vec<FileOp> {
    let mut ops: Vec<FileOp> = config
        .iter()
        .map(|(section, line)| {
            boot_edit(
                "/config.txt",
                TextEdit::ConfigEnsure {
                    section: section.clone(),
                    line: line.clone(),
                },
            )
        })
        .collect();
    for t in remove {
        ops.push(boot_edit(
            "/cmdline.txt",
            TextEdit::CmdlineRemove { token: t.clone() },
        ));
    }
    for t in add {
        ops.push(boot_edit(
            "/cmdline.txt",
            TextEdit::CmdlineSet { token: t.clone() },
        ));
    }
    ops
}

/// Operations adding mounts to `/etc/fstab` and creating their mount points (unless a mount
/// says `create: false`).
pub fn mount_ops(mounts: &[MountSpec]) -> Vec<FileOp> {
    let mut ops = Vec::new();
    for m in mounts.iter() {
        if m.create {
            ops.push(FileOp::Mkdir {
                part: Part::Root,
                path: m.target.clone(),
                owner: FileAttrs::root(0o755),
            });
        }
        ops.push(FileOp::Edit {
            part: Part::Root,
            path: "/etc/fstab".to_owned(),
            edit: TextEdit::EnsureLine {
                line: format!(
                    "{}\t{}\t{}\t{}\t0\t0",
                    m.source, m.target, m.fstype, m.options
                ),
            },
        });
    }
    ops
}
