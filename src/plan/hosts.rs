//! `/etc/hostname` and an `/etc/hosts` that names every node of the cluster.
//!
//! Debian maps the node's own name to `127.0.1.1` (so `sudo` resolves it without DNS); the
//! cluster entries follow, then the recipe's extra entries. The whole file is written: the
//! base's own file only holds the defaults and the old hostname.

use crate::ops::{FileAttrs, FileOp, Part};

/// One `/etc/hosts` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostsLine {
    /// Address.
    pub address: String,
    /// Names (FQDN first, then short name and aliases).
    pub names: Vec<String>,
}

/// The `/etc/hosts` text for node `hostname` (with `fqdn`, if any).
pub fn hosts_file(
    hostname: &str,
    fqdn: Option<&str>,
    cluster: &[HostsLine],
    extra: &[HostsLine],
) -> String {
    let mut s = String::from(
        "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\nff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n\n",
    );
    match fqdn {
        Some(f) => s.push_str(&format!("127.0.1.1\t{f} {hostname}\n")),
        None => s.push_str(&format!("127.0.1.1\t{hostname}\n")),
    }
    if !cluster.is_empty() {
        s.push_str("\n# cluster nodes (piimage)\n");
        for e in cluster {
            s.push_str(&format!("{}\t{}\n", e.address, e.names.join(" ")));
        }
    }
    if !extra.is_empty() {
        s.push_str("\n# extra entries (piimage)\n");
        for e in extra {
            s.push_str(&format!("{}\t{}\n", e.address, e.names.join(" ")));
        }
    }
    s
}

/// Operations for hostname and hosts.
pub fn hosts_ops(hostname: &str, hosts: String) -> Vec<FileOp> {
    vec![
        FileOp::Write {
            part: Part::Root,
            path: "/etc/hostname".to_owned(),
            data: format!("{hostname}\n").into_bytes(),
            owner: FileAttrs::root(0o644),
        },
        FileOp::Write {
            part: Part::Root,
            path: "/etc/hosts".to_owned(),
            data: hosts.into_bytes(),
            owner: FileAttrs::root(0o644),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_names_every_node() {
        let cluster = [
            HostsLine {
                address: "10.0.0.1".into(),
                names: vec!["gw.lab".into(), "gw".into()],
            },
            HostsLine {
                address: "10.0.0.11".into(),
                names: vec!["w1.lab".into(), "w1".into()],
            },
        ];
        let extra = [HostsLine {
            address: "10.0.0.5".into(),
            names: vec!["nas".into()],
        }];
        let h = hosts_file("w1", Some("w1.lab"), &cluster, &extra);
        assert!(h.contains("\n127.0.1.1\tw1.lab w1\n"));
        assert!(h.contains("\n10.0.0.1\tgw.lab gw\n10.0.0.11\tw1.lab w1\n"));
        assert!(h.ends_with("10.0.0.5\tnas\n"));
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
    }
}
