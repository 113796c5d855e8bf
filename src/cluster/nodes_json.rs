//! `nodes.json`: the cluster's nodes for Terraform (`jsondecode(file("nodes.json"))`) and
//! scripts, rendered from the records like the other cluster files. The format is in
//! `docs/nodes-json.md`; fields are only ever added, anything else bumps [`SCHEMA_VERSION`].

use serde::Serialize;

use super::record::{FileRecord, NodeRecord};

/// The file name.
pub const NODES_JSON: &str = "nodes.json";

/// The format version.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Serialize)]
struct Document<'a> {
    schema_version: u32,
    cluster: &'a str,
    nodes: Vec<Node<'a>>,
}

#[derive(Serialize)]
struct Node<'a> {
    name: &'a str,
    hostname: &'a str,
    fqdn: Option<&'a str>,
    role: &'a str,
    addresses: Vec<&'a str>,
    ssh: Ssh<'a>,
    built: bool,
    image: Option<Image<'a>>,
}

#[derive(Serialize)]
struct Ssh<'a> {
    user: Option<&'a str>,
    proxy_jump: Option<&'a str>,
    host_key: Option<&'a str>,
    host_key_fingerprint: Option<String>,
}

#[derive(Serialize)]
struct Image<'a> {
    size: u64,
    sha256: Option<String>,
    files: &'a [FileRecord],
}

/// The `SHA256:…` fingerprint of an OpenSSH public key line, as `ssh-keygen -l` prints it.
fn fingerprint(key: &str) -> Option<String> {
    let key = ssh_key::PublicKey::from_openssh(key).ok()?;
    Some(key.fingerprint(ssh_key::HashAlg::Sha256).to_string())
}

/// The text of `nodes.json` for `nodes` (sorted by name) of `cluster`.
///
/// # Panics
/// Never: every field serialises.
#[must_use]
pub fn nodes_json(cluster: &str, nodes: &[&NodeRecord]) -> String {
    let doc = Document {
        schema_version: SCHEMA_VERSION,
        cluster,
        nodes: nodes
            .iter()
            .map(|r| {
                let n = &r.node;
                Node {
                    name: &n.name,
                    hostname: &n.hostname,
                    fqdn: n.fqdn.as_deref(),
                    role: &n.role,
                    addresses: n.address.iter().map(String::as_str).collect(),
                    ssh: Ssh {
                        user: n.user.as_deref(),
                        proxy_jump: n.proxy_jump.as_deref(),
                        host_key: n.host_key.as_deref(),
                        host_key_fingerprint: n.host_key.as_deref().and_then(fingerprint),
                    },
                    built: r.image.is_some(),
                    image: r.image.as_ref().map(|i| Image {
                        size: i.size,
                        sha256: i.sha256.map(|d| d.to_string()),
                        files: &i.files,
                    }),
                }
            })
            .collect(),
    };
    let mut s = serde_json::to_string_pretty(&doc).expect("nodes.json always serialises");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::hostkey::ed25519;
    use crate::secrets::rng::derived_rng;

    #[test]
    fn fingerprints_match_the_key() {
        let key = ed25519("n1", &mut derived_rng(b"s", "ssh-host-ed25519", "n1")).unwrap();
        assert_eq!(fingerprint(&key.public_key), Some(key.fingerprint));
        assert_eq!(fingerprint("ssh-ed25519 notbase64"), None);
    }
}
