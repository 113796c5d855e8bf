//! FAT writes checked with fsck.fat and mtools.

use std::path::Path;

use piimage::disk::{FileStorage, Window};
use piimage::fs::fat::FatWriter;

use crate::support::{fsck_fat_clean, mtype, run_ok, sh};

const OFFSET: u64 = 8192 * 512;
const LEN: u64 = 512 << 20;

fn make_boot(dir: &Path, cluster_sectors: u8) -> std::path::PathBuf {
    let img = dir.join("disk.img");
    sh(
        dir,
        &format!(
            "truncate -s 600M disk.img
             printf 'label: dos\\nlabel-id: 0x11223344\\nstart=8192,size=1048576,type=c\\n' | sfdisk -q disk.img
             mkfs.fat -F 32 -s {cluster_sectors} -n bootfs -i 12345678 --offset 8192 disk.img 524288 >/dev/null
             printf 'console=tty1 root=PARTUUID=11223344-02 rootwait\\n' > cmdline.txt
             printf '[all]\\ndtparam=audio=on\\n' > config.txt
             mkdir -p overlays && printf 'x' > overlays/README
             mcopy -s -m -i disk.img@@{OFFSET} cmdline.txt config.txt overlays ::/"
        ),
    );
    img
}

#[test]
fn writes_replaces_and_removes_files_cleanly() {
    for cluster_sectors in [1u8, 4] {
        let dir = tempfile::tempdir().unwrap();
        let img = make_boot(dir.path(), cluster_sectors);
        let disk = FileStorage::open_read_write(&img).unwrap();
        let w = FatWriter::open(Window::new(&disk, OFFSET, LEN).unwrap(), 1_700_000_000).unwrap();
        let big: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        w.write_file(
            "/cmdline.txt",
            b"console=tty1 root=PARTUUID=aabbccdd-02 rootwait cgroup_memory=1\n",
        )
        .unwrap();
        w.write_file("/user-data", b"#cloud-config\nhostname: node1\n")
            .unwrap();
        w.write_file("/meta-data", b"instance-id: node1\n").unwrap();
        w.write_file("/network-config", b"network:\n  version: 2\n")
            .unwrap();
        w.write_file("/ssh", b"").unwrap();
        w.write_file("/piimage/deep/dir/big.bin", &big).unwrap();
        for i in 0..60 {
            w.write_file(
                &format!("/many/long-file-name-{i:03}.conf"),
                format!("{i}\n").as_bytes(),
            )
            .unwrap();
        }
        assert!(w.remove("/overlays/README").unwrap());
        assert!(!w.remove("/nope").unwrap());
        assert_eq!(
            w.read("/meta-data").unwrap().unwrap(),
            b"instance-id: node1\n"
        );
        w.finish().unwrap();

        fsck_fat_clean(&img, OFFSET, LEN);
        assert_eq!(
            mtype(&img, OFFSET, "/cmdline.txt"),
            b"console=tty1 root=PARTUUID=aabbccdd-02 rootwait cgroup_memory=1\n"
        );
        assert_eq!(
            mtype(&img, OFFSET, "/user-data"),
            b"#cloud-config\nhostname: node1\n"
        );
        assert_eq!(
            mtype(&img, OFFSET, "/network-config"),
            b"network:\n  version: 2\n"
        );
        assert_eq!(mtype(&img, OFFSET, "/piimage/deep/dir/big.bin"), big);
        assert_eq!(
            mtype(&img, OFFSET, "/many/long-file-name-059.conf"),
            b"59\n"
        );
        assert_eq!(
            mtype(&img, OFFSET, "/config.txt"),
            b"[all]\ndtparam=audio=on\n"
        );
        let listing = run_ok(
            "mdir",
            &["-b", "-i", &format!("{}@@{OFFSET}", img.display()), "::/"],
        );
        assert!(listing.contains("::/ssh"), "{listing}");
        assert!(listing.contains("::/user-data"), "{listing}");
        let overlays = run_ok(
            "mdir",
            &[
                "-b",
                "-i",
                &format!("{}@@{OFFSET}", img.display()),
                "::/overlays",
            ],
        );
        assert!(!overlays.contains("README"), "{overlays}");
    }
}
