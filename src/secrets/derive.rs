//! Every value a build derives from the recipe seed, one function each.
//!
//! All of them follow one rule ([`derived_rng`]): a ChaCha20 stream seeded with
//! `sha256("piimage" ‖ 0 ‖ seed ‖ 0 ‖ purpose ‖ 0 ‖ node ‖ 0)`, where the purpose names what the
//! value is for. The purposes are private to this file, so two places can never derive "the
//! same" value with different strings: the plan bakes a node's host key and the cluster files
//! list it through [`host_key`], and they match because there is only one way to make it.
//!
//! Changing a purpose string or the order values are drawn changes every seeded output: the
//! images' keys and ids and the `known_hosts` of clusters already built from the same seed.

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::RngCore;

use super::hostkey::{HostKey, KeyError, ed25519};
use super::rng::derived_rng;

const HOST_KEY: &str = "ssh-host-ed25519";
const DISK_ID: &str = "mbr-disk-id";
const NM_CONNECTION: &str = "nm-connection-uuid";

/// The Ed25519 host key of node `node` (its recipe name), commented `root@HOSTNAME`.
///
/// # Errors
/// [`KeyError`] if the key cannot be encoded (it does not happen for Ed25519 in practice).
pub fn host_key(seed: &[u8], node: &str, hostname: &str) -> Result<HostKey, KeyError> {
    ed25519(hostname, &mut derived_rng(seed, HOST_KEY, node))
}

/// The generator of the recipe's cluster-wide secret `name` of kind `kind` (`token`,
/// `ssh-ed25519`; see [`super::cluster`]): purpose `secret:KIND:NAME` and an empty node name,
/// so no node-scoped value (which always names its node) can share its stream.
pub fn cluster_secret_rng(seed: &[u8], kind: &str, name: &str) -> ChaCha20Rng {
    derived_rng(seed, &format!("secret:{kind}:{name}"), "")
}

/// The generator for the salt of the password hash of `user` on `node`.
pub fn password_rng(seed: &[u8], node: &str, user: &str) -> ChaCha20Rng {
    derived_rng(seed, &format!("password:{user}"), node)
}

/// The MBR disk signature of `node`: never 0 (no signature) and never `avoid` (the base's, so
/// a node's `PARTUUID=` can never be confused with the base's).
pub fn disk_id(seed: &[u8], node: &str, avoid: u32) -> u32 {
    let mut rng = derived_rng(seed, DISK_ID, node);
    loop {
        let id = rng.next_u32();
        if id != 0 && id != avoid {
            return id;
        }
    }
}

/// The NetworkManager connection UUID of interface `iface` of `node`, RFC 4122 shaped
/// (version 4, variant 1 bits set).
pub fn connection_uuid(seed: &[u8], node: &str, iface: &str) -> String {
    let mut b = [0u8; 16];
    derived_rng(seed, &format!("{NM_CONNECTION}:{iface}"), node).fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &x[..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..]
    )
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn host_keys_are_per_node_and_seed_and_carry_the_hostname() {
        let a = host_key(b"s", "n1", "n1.lan").unwrap();
        assert_eq!(a, host_key(b"s", "n1", "n1.lan").unwrap());
        assert_ne!(
            a.public_key,
            host_key(b"s", "n2", "n1.lan").unwrap().public_key
        );
        assert_ne!(
            a.public_key,
            host_key(b"t", "n1", "n1.lan").unwrap().public_key
        );
        assert!(a.public_openssh.ends_with(" root@n1.lan\n"));
        // The key is the node's, not the hostname's: renaming the host keeps the key.
        assert_eq!(
            a.public_key,
            host_key(b"s", "n1", "other").unwrap().public_key
        );
    }

    #[test]
    fn disk_ids_are_stable_distinct_and_avoid_the_base() {
        let a = disk_id(b"seed", "worker-01", 0x1234_5678);
        assert_eq!(a, disk_id(b"seed", "worker-01", 0x1234_5678));
        assert_ne!(a, disk_id(b"seed", "worker-02", 0x1234_5678));
        assert_ne!(a, disk_id(b"other", "worker-01", 0x1234_5678));
        assert_ne!(disk_id(b"seed", "worker-01", a), a);
        let ids: HashSet<u32> = (0..1000)
            .map(|i| disk_id(b"s", &format!("n{i}"), 0))
            .collect();
        assert_eq!(ids.len(), 1000);
    }

    #[test]
    fn connection_uuids_are_stable_v4_shaped_and_distinct() {
        let u = connection_uuid(b"s", "n1", "eth0");
        assert_eq!(u, connection_uuid(b"s", "n1", "eth0"));
        assert_ne!(u, connection_uuid(b"s", "n2", "eth0"));
        assert_ne!(u, connection_uuid(b"s", "n1", "wlan0"));
        let parts: Vec<&str> = u.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'));
        assert!(matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'));
    }

    #[test]
    fn purposes_never_share_a_stream() {
        let key = derived_rng(b"s", HOST_KEY, "n1").next_u64();
        let disk = derived_rng(b"s", DISK_ID, "n1").next_u64();
        let nm = derived_rng(b"s", &format!("{NM_CONNECTION}:eth0"), "n1").next_u64();
        let pw = password_rng(b"s", "n1", "eth0").next_u64();
        assert_eq!(HashSet::from([key, disk, nm, pw]).len(), 4);
    }
}
