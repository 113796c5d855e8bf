//! The server's configuration next to the nodes' trees: `dnsmasq.conf` (proxy-DHCP and TFTP),
//! an `/etc/exports` snippet, and a README saying how to install them.

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::recipe::NetbootSpec;

/// One node as the server sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedNode {
    /// The node's name (its root is `EXPORT_ROOT/NAME`).
    pub name: String,
    /// Its TFTP directory name (serial or MAC).
    pub boot_dir: String,
    /// The root archive's file name (under `roots/`).
    pub archive: String,
}

/// The network of `server/prefix` and its netmask (IPv4; `resolve` refuses IPv6).
fn network(spec: &NetbootSpec) -> (String, String) {
    let IpAddr::V4(v4) = spec.server else {
        return (spec.server.to_string(), String::new());
    };
    let mask = if spec.prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(spec.prefix.min(32)))
    };
    let net = std::net::Ipv4Addr::from(u32::from(v4) & mask);
    (net.to_string(), std::net::Ipv4Addr::from(mask).to_string())
}

/// NFS source of node `name`'s root.
pub fn root_source(spec: &NetbootSpec, name: &str) -> (String, String) {
    (
        spec.server.to_string(),
        format!("{}/{name}", spec.export_root),
    )
}

/// NFS source of a board's TFTP directory.
pub fn boot_source(spec: &NetbootSpec, boot_dir: &str) -> String {
    format!("{}:{}/{boot_dir}", spec.server, spec.tftp_root)
}

/// `dnsmasq.conf`: no DNS, proxy-DHCP on the server's network (the network's own DHCP server
/// hands out addresses; dnsmasq only adds the boot offer the Raspberry Pi bootloader looks for),
/// TFTP from `tftp_root`.
pub fn dnsmasq_conf(spec: &NetbootSpec, cluster: &str) -> String {
    let (net, mask) = network(spec);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# piimage netboot for cluster {cluster}: proxy-DHCP boot offers and TFTP (README.md)."
    );
    s.push_str("# No DNS service: this dnsmasq only answers boot requests.\n");
    s.push_str("port=0\n");
    let _ = writeln!(s, "listen-address={}", spec.server);
    s.push_str("bind-dynamic\n");
    let _ = writeln!(s, "dhcp-range={net},proxy,{mask}");
    s.push_str("# The bootloader looks for this PXE service (CSA 0, the menu text it matches).\n");
    s.push_str("pxe-service=0,\"Raspberry Pi Boot\"\n");
    s.push_str("# Many boards powering on at once: answer after the network's DHCP server.\n");
    let _ = writeln!(s, "dhcp-reply-delay={}", spec.reply_delay);
    s.push_str("enable-tftp\n");
    let _ = writeln!(s, "tftp-root={}", spec.tftp_root);
    s.push_str("log-dhcp\n");
    s
}

/// The `/etc/exports` lines: each node's root, and the TFTP tree (mounted on the nodes'
/// `/boot/firmware`), to the server's network only, `no_root_squash` (a root filesystem
/// needs root's files to be root's).
pub fn exports(spec: &NetbootSpec, nodes: &[ServedNode]) -> String {
    let (net, _) = network(spec);
    let client = format!("{net}/{}", spec.prefix);
    let opts = "rw,sync,no_subtree_check,no_root_squash";
    let mut s = String::from("# piimage netboot: append to /etc/exports, then `exportfs -ra`.\n");
    for n in nodes {
        let _ = writeln!(s, "{}/{} {client}({opts})", spec.export_root, n.name);
    }
    let _ = writeln!(s, "{} {client}({opts})", spec.tftp_root);
    s
}

/// The README of the netboot directory.
pub fn readme(spec: &NetbootSpec, cluster: &str, nodes: &[ServedNode]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Network boot for cluster {cluster}\n");
    let _ = writeln!(
        s,
        "Server {} (TFTP and NFS), roots under {}, TFTP root {}.\n",
        spec.server, spec.export_root, spec.tftp_root
    );
    s.push_str("## On the server (as root, from this directory)\n\n```sh\n");
    s.push_str("apt-get install dnsmasq nfs-kernel-server zstd\n");
    let _ = writeln!(s, "mkdir -p {}", spec.tftp_root);
    let _ = writeln!(s, "cp -r tftp/. {}/", spec.tftp_root);
    for n in nodes {
        let root = format!("{}/{}", spec.export_root, n.name);
        let _ = writeln!(
            s,
            "mkdir -p {root} && tar --zstd --numeric-owner --xattrs --xattrs-include='*' -xpf roots/{} -C {root}",
            n.archive
        );
    }
    s.push_str("cat exports >> /etc/exports && exportfs -ra\n");
    s.push_str(
        "cp dnsmasq.conf /etc/dnsmasq.d/piimage-netboot.conf && systemctl restart dnsmasq\n",
    );
    s.push_str("```\n\n");
    s.push_str(
        "`exportfs -ra` and `dnsmasq --test` check the files first. The network's own DHCP \
         server keeps handing out addresses: dnsmasq runs as a proxy and only adds the boot \
         offer.\n\n",
    );
    s.push_str("## Nodes\n\n| node | board (TFTP directory) | root |\n|---|---|---|\n");
    for n in nodes {
        let _ = writeln!(
            s,
            "| {} | {} | {}:{}/{} |",
            n.name, n.boot_dir, spec.server, spec.export_root, n.name
        );
    }
    s.push_str(
        "\n## On each board, once\n\n\
         Raspberry Pi 4 and 5 boot from the network when their EEPROM's boot order lists it: \
         `sudo rpi-eeprom-config --edit` and set `BOOT_ORDER=0xf21` (SD card first, then \
         network, then start again; `0xf12` puts the network first). A board whose TFTP \
         directory is its MAC address also needs `TFTP_PREFIX=2`. The serial number the \
         bootloader uses is the last 8 hex digits of \
         `cat /sys/firmware/devicetree/base/serial-number`, also shown on the bootloader's \
         screen.\n\n",
    );
    s.push_str(
        "## What differs from the node's SD image\n\n\
         - `cmdline.txt`: `root=/dev/nfs nfsroot=SERVER:ROOT,vers=3 rw ip=dhcp rootwait` \
         instead of the SD root and its first-boot resize;\n\
         - `/etc/fstab`: no SD partitions, no swap; the root and the board's TFTP directory \
         (on `/boot/firmware`) over NFS;\n\
         - swap and SD-only units masked (`/etc/systemd/system/UNIT -> /dev/null`): \
         `dphys-swapfile.service`, `piimage-grow-root.service`, where the image has them.\n",
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> NetbootSpec {
        NetbootSpec {
            server: "10.0.0.1".parse().unwrap(),
            prefix: 24,
            export_root: "/srv/nfs/pico".into(),
            tftp_root: "/srv/tftp".into(),
            reply_delay: 2,
        }
    }

    #[test]
    fn dnsmasq_and_exports_name_the_network() {
        let conf = dnsmasq_conf(&spec(), "pico");
        assert!(
            conf.contains("\ndhcp-range=10.0.0.0,proxy,255.255.255.0\n"),
            "{conf}"
        );
        assert!(conf.contains("\npxe-service=0,\"Raspberry Pi Boot\"\n"));
        assert!(conf.contains("\ndhcp-reply-delay=2\n"));
        assert!(conf.contains("\ntftp-root=/srv/tftp\n"));
        let nodes = [ServedNode {
            name: "w1".into(),
            boot_dir: "1a2b3c4d".into(),
            archive: "w1.root.tar.zst".into(),
        }];
        let ex = exports(&spec(), &nodes);
        assert!(
            ex.contains(
                "\n/srv/nfs/pico/w1 10.0.0.0/24(rw,sync,no_subtree_check,no_root_squash)\n"
            )
        );
        assert!(
            readme(&spec(), "pico", &nodes)
                .contains("-xpf roots/w1.root.tar.zst -C /srv/nfs/pico/w1")
        );
    }
}
