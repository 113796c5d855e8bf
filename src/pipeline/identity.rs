//! A unique, reproducible disk identity per node.
//!
//! Raspberry Pi OS names its partitions `PARTUUID=<disk id>-01/-02` in `cmdline.txt` and
//! `/etc/fstab`, where the disk id is the MBR signature at byte 440 (image-formats.md §1). Nodes
//! flashed from one base would all share it; piimage gives each node its own id, derived from
//! the build seed and the node name (`secrets::derive::disk_id`) so rebuilds are identical, and rewrites both files to match.
//! Ubuntu names partitions by label, so its files are left as they are (the replace finds
//! nothing to change).

use crate::disk::{CowDisk, Storage};
use crate::ops::{FileOp, Part, TextEdit};

/// Writes `id` as the MBR disk signature of `disk`.
pub fn set_disk_id<B: Storage>(disk: &CowDisk<B>, id: u32) -> std::io::Result<()> {
    crate::disk::mbr::write_disk_id(disk, id)
}

/// The edits that move `cmdline.txt` and `/etc/fstab` from disk id `old` to `new`.
pub fn partuuid_ops(old: u32, new: u32) -> Vec<FileOp> {
    let edit = TextEdit::Replace {
        from: format!("PARTUUID={old:08x}-"),
        to: format!("PARTUUID={new:08x}-"),
    };
    vec![
        FileOp::Edit {
            part: Part::Boot,
            path: "/cmdline.txt".to_owned(),
            edit: edit.clone(),
        },
        FileOp::Edit {
            part: Part::Root,
            path: "/etc/fstab".to_owned(),
            edit,
        },
    ]
}
