//! A unique, reproducible disk identity per node.
//!
//! Raspberry Pi OS names its partitions `PARTUUID=<disk id>-01/-02` in `cmdline.txt` and
//! `/etc/fstab`, where the disk id is the MBR signature at byte 440 (image-formats.md §1). Nodes
//! flashed from one base would all share it; piimage gives each node its own id, derived from
//! the build seed and the node name so rebuilds are identical, and rewrites both files to match.
//! Ubuntu names partitions by label, so its files are left as they are (the replace finds
//! nothing to change).

use sha2::{Digest, Sha256};

use crate::disk::partition::MBR_DISK_ID_OFFSET;
use crate::disk::{CowDisk, Storage};
use crate::ops::{FileOp, Part, TextEdit};

/// The disk id for `node` in a build seeded with `seed`: the first four bytes of
/// `sha256("piimage disk id" ‖ seed ‖ 0 ‖ node)`, never 0 and never `avoid` (the base's id).
pub fn derive_disk_id(seed: &[u8], node: &str, avoid: u32) -> u32 {
    let mut counter = 0u32;
    loop {
        let mut h = Sha256::new();
        h.update(b"piimage disk id");
        h.update(seed);
        h.update([0]);
        h.update(node.as_bytes());
        if counter > 0 {
            h.update(counter.to_le_bytes());
        }
        let d = h.finalize();
        let id = u32::from_le_bytes([d[0], d[1], d[2], d[3]]);
        if id != 0 && id != avoid {
            return id;
        }
        counter += 1;
    }
}

/// Writes `id` as the MBR disk signature of `disk`.
pub fn set_disk_id<B: Storage>(disk: &CowDisk<B>, id: u32) -> std::io::Result<()> {
    disk.write_at(MBR_DISK_ID_OFFSET, &id.to_le_bytes())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_distinct_and_avoid_the_base() {
        let a = derive_disk_id(b"seed", "worker-01", 0x1234_5678);
        assert_eq!(a, derive_disk_id(b"seed", "worker-01", 0x1234_5678));
        assert_ne!(a, derive_disk_id(b"seed", "worker-02", 0x1234_5678));
        assert_ne!(a, derive_disk_id(b"other", "worker-01", 0x1234_5678));
        assert_ne!(derive_disk_id(b"seed", "worker-01", a), a);
        let ids: std::collections::HashSet<u32> = (0..1000)
            .map(|i| derive_disk_id(b"s", &format!("n{i}"), 0))
            .collect();
        assert_eq!(ids.len(), 1000);
    }
}
