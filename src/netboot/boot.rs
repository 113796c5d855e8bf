//! The boot side of a network-booted node: `cmdline.txt` for an NFS root, and the TFTP tree
//! copied from the node's FAT partition.

use std::path::Path;

use crate::fs::fat::FatReader;

/// Keys of the tokens the NFS root replaces (whatever their value).
const REPLACED_KEYS: &[&str] = &[
    "root",
    "rootfstype",
    "rootflags",
    "nfsroot",
    "nfsrootdebug",
    "ip",
    "rootwait",
    "ro",
    "rw",
    // Raspberry Pi OS Trixie's first-boot resize (a bare token).
    "resize",
];

/// True for an `init=` token that runs a first-boot resize or first-boot script: they work on
/// the SD card's partitions, which a network-booted node does not have.
fn is_sd_init(token: &str) -> bool {
    token.strip_prefix("init=").is_some_and(|v| {
        v.contains("firstboot") || v.contains("init_resize") || v.contains("resize")
    })
}

/// `cmdline.txt` for an NFS root: the node's tokens in their order, without those naming the
/// SD root (`root=`, `rootfstype=`, `ro`/`rw`, `rootwait`, `ip=`, first-boot resize `init=`),
/// then `root=/dev/nfs nfsroot=SERVER:PATH,vers=3 rw ip=dhcp rootwait`. One line, ending in a
/// newline.
pub fn nfs_cmdline(node_cmdline: &str, server: &str, path: &str) -> String {
    let mut out: Vec<String> = node_cmdline
        .split_whitespace()
        .filter(|t| {
            let key = t.split_once('=').map_or(*t, |(k, _)| k);
            !REPLACED_KEYS.contains(&key) && !is_sd_init(t)
        })
        .map(str::to_owned)
        .collect();
    out.extend([
        "root=/dev/nfs".to_owned(),
        format!("nfsroot={server}:{path},vers=3"),
        "rw".to_owned(),
        "ip=dhcp".to_owned(),
        "rootwait".to_owned(),
    ]);
    let mut s = out.join(" ");
    s.push('\n');
    s
}

/// Every file of the FAT volume, as `(path, content)` sorted by path (directories walked
/// recursively, `/`-separated paths without a leading `/`).
///
/// # Errors
/// The FAT could not be read (the error names the path).
pub fn boot_files<D: std::io::Read + std::io::Seek>(
    fat: &FatReader<D>,
) -> Result<Vec<(String, Vec<u8>)>, crate::fs::fat::FatError> {
    let mut out = Vec::new();
    let mut dirs = vec![String::new()];
    while let Some(dir) = dirs.pop() {
        let Some(entries) = fat.entries(&dir)? else {
            continue;
        };
        for (name, is_dir) in entries {
            let path = if dir.is_empty() {
                name
            } else {
                format!("{dir}/{name}")
            };
            if is_dir {
                dirs.push(path);
            } else if let Some(data) = fat.read(&path)? {
                out.push((path, data));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Writes `files` under `dir` (created; parents of each file too).
///
/// # Errors
/// The first file that cannot be written, with its path.
pub fn write_tree(dir: &Path, files: &[(String, Vec<u8>)]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (path, data) in files {
        let dest = dir.join(path);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&dest, data)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", dest.display())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_for_an_nfs_root() {
        for (name, input, want) in [
            (
                "bookworm, firstboot already disarmed",
                "console=serial0,115200 console=tty1 root=PARTUUID=5e3da3c1-02 rootfstype=ext4 \
                 fsck.repair=yes rootwait quiet cgroup_enable=memory\n",
                "console=serial0,115200 console=tty1 fsck.repair=yes quiet cgroup_enable=memory \
                 root=/dev/nfs nfsroot=10.0.0.1:/srv/nfs/w1,vers=3 rw ip=dhcp rootwait\n",
            ),
            (
                "first-boot init and trixie resize removed, other init kept",
                "root=/dev/mmcblk0p2 ro resize init=/usr/lib/raspberrypi-sys-mods/firstboot",
                "root=/dev/nfs nfsroot=10.0.0.1:/srv/nfs/w1,vers=3 rw ip=dhcp rootwait\n",
            ),
            (
                "an own init= and an old nfsroot",
                "init=/sbin/myinit nfsroot=1.2.3.4:/x ip=1.2.3.5 console=tty1",
                "init=/sbin/myinit console=tty1 root=/dev/nfs \
                 nfsroot=10.0.0.1:/srv/nfs/w1,vers=3 rw ip=dhcp rootwait\n",
            ),
        ] {
            assert_eq!(
                nfs_cmdline(input, "10.0.0.1", "/srv/nfs/w1"),
                want,
                "{name}"
            );
        }
    }
}
