//! Disarming the image's own first-boot steps that would undo what piimage baked, and growing
//! the root filesystem on first boot in a way that keeps the node's identity
//! (docs/first-boot.md has the whole story).
//!
//! - Raspberry Pi OS Bookworm boots once with `init=/usr/lib/raspberrypi-sys-mods/firstboot`.
//!   That script always deletes and regenerates the SSH host keys and gives the disk a new random
//!   id (rewriting `cmdline.txt` and `/etc/fstab`), then reboots; its initramfs half grows the
//!   root partition and filesystem. Removing the `init=` token disarms all of it.
//! - Raspberry Pi OS Trixie's initramfs acts on the ` resize` token: it grows the root partition
//!   and, in the same step, gives the disk a new random id. Removing the token disarms both.
//!
//! Both would change the per-node disk id piimage wrote (and Bookworm the baked host key), so the
//! token goes whenever piimage builds a node. What users expect of the first boot, the root
//! filesystem filling the card, is then done by piimage's own one-shot unit: it grows the root
//! partition in place with `sfdisk` (which keeps the disk id), tells the kernel with
//! `partx --update`, grows ext4 online with `resize2fs`, and leaves a marker so it runs once.
//! `boot.grow_root: false` keeps the image's size instead. Ubuntu's cloud-init grows the root
//! itself (`growpart`, `resizefs`) without touching identities, so nothing changes there.

use crate::image::firstboot::Mechanism;
use crate::ops::{FileAttrs, FileOp, Part, TextEdit};

use super::profile::Profile;

/// The Bookworm first-boot init token.
pub const FIRSTBOOT_INIT: &str = "init=/usr/lib/raspberrypi-sys-mods/firstboot";

/// Trixie's initramfs resize token.
pub const RESIZE_TOKEN: &str = "resize";

/// piimage's grow script in the image.
pub const GROW_SCRIPT: &str = "/usr/local/sbin/piimage-grow-root";

/// piimage's grow unit.
pub const GROW_UNIT: &str = "piimage-grow-root.service";

/// The marker the grow script leaves once it has run.
pub const GROW_MARKER: &str = "/var/lib/piimage/root-grown";

/// Programs the grow script runs, with where Debian and Ubuntu install them (`/usr/sbin` and
/// `/usr/bin`; merged `/usr` makes `/sbin` and `/bin` the same directories).
pub const GROW_TOOLS: &[&str] = &[
    "/usr/sbin/sfdisk",
    "/usr/bin/partx",
    "/usr/sbin/resize2fs",
    "/usr/bin/findmnt",
];

/// The grow script: POSIX sh, for the image's `/bin/sh`.
pub fn grow_script() -> String {
    format!(
        r#"#!/bin/sh
# Written by piimage: grow the root partition to the end of its disk and the root filesystem
# to fill it, once. Unlike the image's own first-boot resize, this keeps the disk id that
# piimage gave the node (the PARTUUIDs in cmdline.txt and /etc/fstab).
set -eu
# The root's device by number, so that a kernel booted without an initramfs (/dev/root) works too.
sys=$(readlink -f "/sys/dev/block/$(findmnt -no MAJ:MIN / | tr -d ' ')")
name=${{sys##*/}}
dev=/dev/$name
done_marker() {{ mkdir -p "${{1%/*}}" && : > "$1"; }}
if [ ! -e "$sys/partition" ]; then
  echo "the root ($dev) is not a partition: nothing to grow"
  done_marker {marker}
  exit 0
fi
part=$(cat "$sys/partition")
disk=$(basename "$(readlink -f "$sys/..")")
start=$(cat "$sys/start")
size=$(cat "$sys/size")
total=$(cat "/sys/class/block/$disk/size")
for p in /sys/class/block/"$disk"/"$disk"*; do
  if [ -e "$p/start" ] && [ "$(cat "$p/start")" -gt "$start" ]; then
    echo "a partition follows the root on /dev/$disk: the layout is left alone"
    done_marker {marker}
    exit 0
  fi
done
end=$total
# An MBR partition ends before sector 2^32 (2 TiB).
if [ "$end" -gt 4294967295 ]; then end=4294967295; fi
new=$((end - start))
if [ "$new" -gt $((size + 2048)) ]; then
  echo "growing /dev/$disk partition $part from $size to $new sectors"
  echo "$start,$new" | sfdisk --quiet --no-reread --no-tell-kernel -N "$part" "/dev/$disk"
  partx --update --nr "$part" "/dev/$disk"
fi
resize2fs "$dev"
done_marker {marker}
"#,
        marker = GROW_MARKER
    )
}

/// The grow unit.
pub fn grow_unit() -> String {
    format!(
        "# Written by piimage.\n\
         [Unit]\n\
         Description=Grow the root partition and filesystem to the whole disk (once)\n\
         After=local-fs.target\n\
         ConditionPathExists=!{GROW_MARKER}\n\
         \n\
         [Service]\n\
         Type=oneshot\n\
         ExecStart={GROW_SCRIPT}\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n"
    )
}

/// What the node's first boot does about the image's own first-boot steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disarm {
    /// `cmdline.txt` tokens removed.
    pub tokens: Vec<&'static str>,
    /// piimage's grow unit is installed.
    pub grow: bool,
}

/// Decides what to disarm on a base described by `profile`; `grow_root` is the recipe's
/// `boot.grow_root`. Fails when growth is asked for and the image lacks a tool it needs.
pub fn disarm(profile: &Profile, grow_root: bool) -> Result<Disarm, String> {
    let mut tokens = Vec::new();
    if profile.cmdline.iter().any(|t| t == FIRSTBOOT_INIT) {
        tokens.push(FIRSTBOOT_INIT);
    }
    if profile.is_raspios() && profile.cmdline.iter().any(|t| t == RESIZE_TOKEN) {
        tokens.push(RESIZE_TOKEN);
    }
    let grow = grow_root
        && !tokens.is_empty()
        && matches!(
            profile.mechanism(),
            Mechanism::RaspiosFirstboot | Mechanism::RaspiosCloudInit | Mechanism::RaspiosResize
        );
    if grow {
        let missing: Vec<&str> = GROW_TOOLS
            .iter()
            .copied()
            .filter(|t| !profile.has_program(t))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "growing the root filesystem on first boot needs {} in the image, which it \
                 lacks; set `boot.grow_root: false` (the image keeps its size; `output.size` \
                 can make it larger)",
                missing.join(", ")
            ));
        }
    }
    Ok(Disarm { tokens, grow })
}

/// The operations of `d`.
pub fn disarm_ops(d: &Disarm) -> Vec<FileOp> {
    let mut ops: Vec<FileOp> = d
        .tokens
        .iter()
        .map(|t| FileOp::Edit {
            part: Part::Boot,
            path: "/cmdline.txt".to_owned(),
            edit: TextEdit::CmdlineRemove {
                token: (*t).to_owned(),
            },
        })
        .collect();
    if d.grow {
        ops.push(FileOp::Write {
            part: Part::Root,
            path: GROW_SCRIPT.to_owned(),
            data: grow_script().into_bytes(),
            owner: FileAttrs::root(0o755),
        });
        ops.extend(super::units::own_unit(GROW_UNIT, grow_unit()));
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_is_posix_sh_that_parses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grow");
        std::fs::write(&path, grow_script()).unwrap();
        // `sh -n` parses without running; dash is Debian's /bin/sh.
        let out = std::process::Command::new("sh")
            .arg("-n")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(grow_script().contains("sfdisk --quiet --no-reread --no-tell-kernel -N"));
        assert!(grow_unit().contains(&format!("ConditionPathExists=!{GROW_MARKER}")));
    }
}
