//! `/etc/fstab` for an NFS root.
//!
//! The kernel mounts the root over NFS before anything reads `fstab`, so the file must not try
//! to mount the SD card: lines whose device is a disk partition (`PARTUUID=`, `UUID=`,
//! `LABEL=`, `PARTLABEL=`, `/dev/mmcblk*`, `/dev/sd*`, `/dev/nvme*`, `/dev/disk/*`) and every
//! `swap` line go, each kept as a comment saying why. Every other line (`proc`, `tmpfs`, the
//! recipe's network mounts) stays as it was. Two lines are added: the root (`SERVER:PATH` as nfs, so that
//! `systemd-remount-fs` finds its options) and the node's TFTP directory on `/boot/firmware` over NFS,
//! so that kernel and firmware updates on the node land where the board boots from.

/// Devices of the card or disk the image was made for.
fn is_disk_device(spec: &str) -> bool {
    ["PARTUUID=", "UUID=", "LABEL=", "PARTLABEL="]
        .iter()
        .any(|p| spec.starts_with(p))
        || ["/dev/mmcblk", "/dev/sd", "/dev/nvme", "/dev/disk/"]
            .iter()
            .any(|p| spec.starts_with(p))
}

/// The rewritten file. `root` and `boot` are the NFS sources (`SERVER:PATH`) of the root and
/// of the node's TFTP directory; `boot_mount` is where the image mounted its boot partition
/// (`/boot/firmware`, or `/boot` on older images), `None` to mount no boot directory.
pub fn nfs_fstab(old: &str, root: &str, boot: &str, boot_mount: Option<&str>) -> String {
    let mut out = String::from(
        "# piimage netboot: the root comes over NFS (cmdline.txt's nfsroot=); the SD card's\n\
         # partitions and swap are not mounted (see docs/netboot.md).\n",
    );
    for line in old.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let comment = line.trim_start().starts_with('#') || fields.len() < 3;
        if comment {
            out.push_str(line);
        } else if fields[2] == "swap" {
            out.push_str("# swap off on an NFS root: ");
            out.push_str(line);
        } else if is_disk_device(fields[0]) {
            out.push_str("# not on this node's disk (network boot): ");
            out.push_str(line);
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out.push_str(&format!("{root} / nfs defaults,vers=3,noatime 0 0\n"));
    if let Some(m) = boot_mount {
        out.push_str(&format!("{boot} {m} nfs defaults,vers=3 0 0\n"));
    }
    out
}

/// Where `old` mounts the boot partition (`/boot/firmware` or `/boot`), if it does.
pub fn boot_mount_point(old: &str) -> Option<String> {
    old.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| {
            f.len() >= 3
                && !f[0].starts_with('#')
                && matches!(f[1], "/boot/firmware" | "/boot")
                && f[2] == "vfat"
        })
        .map(|f| f[1].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sd_lines_and_swap_go_other_lines_stay() {
        let old = "proc            /proc           proc    defaults          0       0\n\
                   PARTUUID=5e3da3c1-01  /boot/firmware  vfat    defaults          0       2\n\
                   PARTUUID=5e3da3c1-02  /               ext4    defaults,noatime  0       1\n\
                   /var/swap none swap sw 0 0\n\
                   # a comment\n\
                   10.0.0.1:/srv/share /mnt/share nfs defaults 0 0\n";
        assert_eq!(boot_mount_point(old).as_deref(), Some("/boot/firmware"));
        let new = nfs_fstab(
            old,
            "10.0.0.1:/srv/nfs/w1",
            "10.0.0.1:/srv/tftp/1a2b3c4d",
            Some("/boot/firmware"),
        );
        let live: Vec<&str> = new.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            live,
            [
                "proc            /proc           proc    defaults          0       0",
                "10.0.0.1:/srv/share /mnt/share nfs defaults 0 0",
                "10.0.0.1:/srv/nfs/w1 / nfs defaults,vers=3,noatime 0 0",
                "10.0.0.1:/srv/tftp/1a2b3c4d /boot/firmware nfs defaults,vers=3 0 0",
            ]
        );
        assert!(new.contains("# swap off on an NFS root: /var/swap none swap sw 0 0\n"));
        assert!(new.contains("# a comment\n"));
        assert!(!nfs_fstab(old, "a:/r", "a:/b", None).contains("a:/b"));
    }
}
