//! Files for the operator's machine, written next to the images: `hosts`, `known_hosts`
//! (from the generated host keys, so the first SSH connection needs no trust on first use),
//! `ssh_config` (one `Host` per node, `ProxyJump` through the gateway for nodes behind one) and
//! an Ansible inventory in YAML, grouped by role.
//!
//! # Finding each other after a move
//! None of these files names a path of the machine that built them, so the output directory
//! can be moved, uploaded as a CI artifact and downloaded elsewhere:
//! - `ssh_config` names `known_hosts` relatively. OpenSSH expands `~` and `%` tokens in
//!   `UserKnownHostsFile` and opens what remains as given, so a relative name is relative to
//!   the working directory of `ssh`: `cd DIR && ssh -F ssh_config NODE`. A `ProxyJump` runs a
//!   second `ssh` with the same `-F` argument (OpenSSH builds the jump's command line from it),
//!   in the same working directory, so the jump host is checked against the same file.
//!   [`ssh_config`] takes the path to write, so a destination can render a copy with an
//!   absolute one (`piimage localize`).
//! - The inventory works from any directory: each host's `ansible_ssh_common_args` passes
//!   `-F` and `UserKnownHostsFile` under `{{ inventory_dir }}` (Ansible's absolute directory
//!   of the inventory file, templated when it connects), with `HostKeyAlias` set to the node
//!   name, so the check holds whatever `ansible_host` is. Nodes behind a gateway get an
//!   explicit `ProxyCommand` (`ssh -F ... -W [%h]:%p GATEWAY`) instead of relying on the
//!   config's `ProxyJump`: options given on the command line come first, and OpenSSH ignores
//!   a `ProxyJump` once a `ProxyCommand` is set, while a `ProxyJump`'s own `ssh` would get
//!   `-F` but not the `-o UserKnownHostsFile` option.
//! - A node given a loopback address (`ssh -o HostName=127.0.0.1`, `ansible -e
//!   ansible_host=127.0.0.1`: a forwarded port or a VM on this machine) is reached directly,
//!   never through its gateway: `ssh_config` starts with `Match host 127.0.0.1,::1,localhost` /
//!   `ProxyJump none` (`Match host` sees a `HostName` given on the command line, and the first
//!   value read wins), and the inventory's `ProxyCommand` is inside a Jinja condition on
//!   `ansible_host`.

use serde::{Deserialize, Serialize};

use super::yaml::{key as yaml_key, quote as yaml_quote};

/// One node as the operator's machine sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterNode {
    /// Short name.
    pub name: String,
    /// Host name the node gives itself.
    pub hostname: String,
    /// Fully qualified name, if the cluster has a domain.
    pub fqdn: Option<String>,
    /// The address to connect to (without prefix length).
    pub address: Option<String>,
    /// Role (group in the inventory).
    pub role: String,
    /// `ssh-ed25519 AAAA…` of the baked host key, if any.
    pub host_key: Option<String>,
    /// Login user for SSH and Ansible.
    pub user: Option<String>,
    /// Name of the node to jump through, for nodes behind a gateway.
    pub proxy_jump: Option<String>,
    /// The operator's private key for this node (`~/…` or absolute), if the recipe names one.
    pub identity_file: Option<String>,
    /// Offer only the configured identities (`IdentitiesOnly yes`).
    pub identities_only: bool,
}

/// Host names of this machine's loopback: a node given one of them as its address is reached
/// directly, not through its gateway.
const LOOPBACK: [&str; 3] = ["127.0.0.1", "::1", "localhost"];

/// Where the inventory's connection options find the generated files.
const INVENTORY_DIR: &str = "{{ inventory_dir }}";

/// `hosts`-format lines for every node with an address.
pub fn hosts(nodes: &[ClusterNode]) -> String {
    let mut s = String::from("# Cluster nodes (piimage); append to /etc/hosts on your machine.\n");
    for n in nodes {
        if let Some(a) = &n.address {
            match &n.fqdn {
                Some(f) => s.push_str(&format!("{a}\t{f} {}\n", n.name)),
                None => s.push_str(&format!("{a}\t{}\n", n.name)),
            }
        }
    }
    s
}

/// `known_hosts` lines: every name and address of a node with its baked host key.
pub fn known_hosts(nodes: &[ClusterNode]) -> String {
    let mut s = String::new();
    for n in nodes {
        let Some(key) = &n.host_key else { continue };
        let mut names = vec![n.name.clone()];
        names.extend(n.fqdn.iter().cloned());
        names.extend(n.address.iter().cloned());
        s.push_str(&format!("{} {key}\n", names.join(",")));
    }
    s
}

/// An `ssh_config` argument: double-quoted when it holds a space (the only quoting
/// `ssh_config` knows; the callers never pass a `"`).
fn config_arg(value: &str) -> String {
    if value.contains([' ', '\t']) {
        format!("\"{value}\"")
    } else {
        value.to_owned()
    }
}

/// An `ssh_config` with one `Host` block per node; `known_hosts_path` is how `ssh` finds the
/// generated `known_hosts` (`known_hosts` in the output directory: relative to the working
/// directory of `ssh`). `%` in it must already be doubled (`UserKnownHostsFile` expands tokens).
pub fn ssh_config(nodes: &[ClusterNode], known_hosts_path: &str) -> String {
    let mut s = String::from(
        "# Generated by piimage. Use with: cd THIS-DIRECTORY && ssh -F ssh_config NODE\n\
         # (known_hosts is found relative to the working directory; `piimage localize` writes\n\
         # ssh_config.local with absolute paths, to use from anywhere or Include from ~/.ssh/config).\n",
    );
    if nodes.iter().any(|n| n.proxy_jump.is_some()) {
        // First, so it wins over the `ProxyJump` below (ssh keeps the first value it reads):
        // a node given a loopback `HostName` (`-o HostName=127.0.0.1`: a forwarded port, a
        // VM) is on this machine, never behind the gateway. `Match host` sees that HostName.
        s.push_str(&format!(
            "\n# A node reached on this machine's loopback (ssh -o HostName=127.0.0.1 ...) is not\n\
             # behind the gateway.\nMatch host {}\n    ProxyJump none\n",
            LOOPBACK.join(",")
        ));
    }
    for n in nodes {
        s.push_str(&format!("\nHost {}", n.name));
        if let Some(f) = &n.fqdn {
            s.push_str(&format!(" {f}"));
        }
        s.push('\n');
        s.push_str(&format!(
            "    HostName {}\n",
            n.address
                .as_deref()
                .or(n.fqdn.as_deref())
                .unwrap_or(&n.name)
        ));
        if let Some(u) = &n.user {
            s.push_str(&format!("    User {u}\n"));
        }
        if let Some(i) = &n.identity_file {
            s.push_str(&format!("    IdentityFile {}\n", config_arg(i)));
        }
        if n.identities_only {
            s.push_str("    IdentitiesOnly yes\n");
        }
        if let Some(j) = &n.proxy_jump {
            s.push_str(&format!("    ProxyJump {j}\n"));
        }
        if n.host_key.is_some() {
            s.push_str(&format!("    HostKeyAlias {}\n", n.name));
            s.push_str(&format!(
                "    UserKnownHostsFile {}\n",
                config_arg(known_hosts_path)
            ));
            s.push_str("    StrictHostKeyChecking yes\n");
        }
    }
    s
}

/// The `ansible_ssh_common_args` of `n` (see the module docs): words Ansible splits as a shell
/// would, paths under `{{ inventory_dir }}` single-quoted so a directory with spaces works.
fn ansible_ssh_args(n: &ClusterNode) -> String {
    let mut words = vec![format!("-F '{INVENTORY_DIR}/ssh_config'")];
    if n.host_key.is_some() {
        words.push(format!(
            "-o 'UserKnownHostsFile={INVENTORY_DIR}/known_hosts'"
        ));
        words.push(format!("-o HostKeyAlias={}", n.name));
        words.push("-o StrictHostKeyChecking=yes".to_owned());
    }
    if n.identities_only {
        words.push("-o IdentitiesOnly=yes".to_owned());
    }
    if let Some(j) = &n.proxy_jump {
        // As in ssh_config: no jump when `ansible_host` is this machine's loopback.
        let loopback: Vec<String> = LOOPBACK.iter().map(|a| format!("'{a}'")).collect();
        words.push(format!(
            "{{% if ansible_host | default(inventory_hostname) not in [{}] %}}\
             -o 'ProxyCommand=ssh -F \"{INVENTORY_DIR}/ssh_config\" \
             -o \"UserKnownHostsFile={INVENTORY_DIR}/known_hosts\" -W \"[%h]:%p\" {j}'\
             {{% endif %}}",
            loopback.join(", ")
        ));
    }
    words.join(" ")
}

/// An Ansible YAML inventory: one group per role. Every host carries the connection options
/// that make it work alone (module docs).
pub fn inventory(nodes: &[ClusterNode]) -> String {
    let mut roles: Vec<&str> = nodes.iter().map(|n| n.role.as_str()).collect();
    roles.sort_unstable();
    roles.dedup();
    let mut s = String::from(
        "# Generated by piimage. First command after flashing: ansible -i inventory.yaml all -m ping\n\
         all:\n  children:\n",
    );
    for role in roles {
        s.push_str(&format!(
            "    {}:\n      hosts:\n",
            yaml_key(&role.replace('-', "_"))
        ));
        for n in nodes.iter().filter(|n| n.role == role) {
            s.push_str(&format!("        {}:\n", yaml_key(&n.name)));
            if let Some(a) = &n.address {
                s.push_str(&format!("          ansible_host: {}\n", yaml_key(a)));
            }
            if let Some(u) = &n.user {
                s.push_str(&format!("          ansible_user: {}\n", yaml_key(u)));
            }
            if let Some(i) = &n.identity_file {
                s.push_str(&format!(
                    "          ansible_ssh_private_key_file: {}\n",
                    yaml_quote(i)
                ));
            }
            s.push_str(&format!(
                "          ansible_ssh_common_args: {}\n",
                yaml_quote(&ansible_ssh_args(n))
            ));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, address: &str, role: &str, jump: Option<&str>) -> ClusterNode {
        ClusterNode {
            name: name.into(),
            hostname: name.into(),
            fqdn: Some(format!("{name}.lab")),
            address: Some(address.into()),
            role: role.into(),
            host_key: Some(format!("ssh-ed25519 AAAA{name}")),
            user: Some("alice".into()),
            proxy_jump: jump.map(Into::into),
            identity_file: None,
            identities_only: false,
        }
    }

    fn nodes() -> Vec<ClusterNode> {
        vec![
            node("gw", "192.0.2.10", "gateway", None),
            node("w1", "10.0.0.11", "k3s-worker", Some("gw")),
        ]
    }

    #[test]
    fn operator_files() {
        let n = nodes();
        assert!(hosts(&n).contains("10.0.0.11\tw1.lab w1\n"));
        assert_eq!(
            known_hosts(&n),
            "gw,gw.lab,192.0.2.10 ssh-ed25519 AAAAgw\nw1,w1.lab,10.0.0.11 ssh-ed25519 AAAAw1\n"
        );
        let c = ssh_config(&n, "known_hosts");
        assert!(c.contains(
            "\nHost w1 w1.lab\n    HostName 10.0.0.11\n    User alice\n    ProxyJump gw\n    \
             HostKeyAlias w1\n    UserKnownHostsFile known_hosts\n    StrictHostKeyChecking yes\n"
        ));
        let inv = inventory(&n);
        assert!(
            inv.contains(
                "    k3s_worker:\n      hosts:\n        w1:\n          ansible_host: 10.0.0.11\n"
            ),
            "{inv}"
        );
    }

    #[test]
    fn no_build_machine_path_and_spaces_quoted() {
        let c = ssh_config(&nodes(), "/home/a b/known_hosts");
        assert!(
            c.contains("    UserKnownHostsFile \"/home/a b/known_hosts\"\n"),
            "{c}"
        );
        let mut n = nodes();
        n[0].identity_file = Some("~/My Keys/lab".into());
        n[0].identities_only = true;
        let c = ssh_config(&n, "known_hosts");
        assert!(
            c.contains("    IdentityFile \"~/My Keys/lab\"\n    IdentitiesOnly yes\n"),
            "{c}"
        );
        let inv = inventory(&n);
        assert!(
            inv.contains("ansible_ssh_private_key_file: \"~/My Keys/lab\"\n"),
            "{inv}"
        );
    }

    #[test]
    fn inventory_connection_options() {
        let mut n = nodes();
        n[0].identities_only = true;
        n[1].host_key = None;
        let inv = inventory(&n);
        let args: Vec<&str> = inv
            .lines()
            .filter_map(|l| l.trim().strip_prefix("ansible_ssh_common_args: "))
            .collect();
        assert_eq!(
            args,
            [
                r#""-F '{{ inventory_dir }}/ssh_config' -o 'UserKnownHostsFile={{ inventory_dir }}/known_hosts' -o HostKeyAlias=gw -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes""#,
                r#""-F '{{ inventory_dir }}/ssh_config' {% if ansible_host | default(inventory_hostname) not in ['127.0.0.1', '::1', 'localhost'] %}-o 'ProxyCommand=ssh -F \"{{ inventory_dir }}/ssh_config\" -o \"UserKnownHostsFile={{ inventory_dir }}/known_hosts\" -W \"[%h]:%p\" gw'{% endif %}""#,
            ]
        );
    }
}
