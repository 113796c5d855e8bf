//! Cluster-wide secrets derived from the seed (a recipe's `secrets:` entries of kind
//! `derive`): one value for the whole cluster, the same on every node and in every build with
//! the same seed.
//!
//! Each value is drawn from [`super::derive::cluster_secret_rng`]: purpose `secret:KIND:NAME`
//! and an empty node name (so no node-scoped value, which always names its node, can collide with it): a token
//! is 32 bytes from that generator as 64 lowercase hex digits; a key pair is an Ed25519 key
//! generated from it, commented `NAME@CLUSTER`.

use ssh_key::{Algorithm, LineEnding, PrivateKey};

use super::hostkey::KeyError;
use rand_chacha::rand_core::RngCore;

use super::derive::cluster_secret_rng as rng;

/// The token called `name`: 64 lowercase hex digits.
#[must_use]
pub fn token(seed: &[u8], name: &str) -> String {
    let mut bytes = [0u8; 32];
    rng(seed, "token", name).fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// A derived key pair in OpenSSH formats.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyPair {
    /// The private key (`-----BEGIN OPENSSH PRIVATE KEY-----` …), ending in a newline.
    pub private_openssh: String,
    /// `ssh-ed25519 AAAA… NAME@CLUSTER`, without a newline.
    pub public_openssh: String,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("private_openssh", &"<redacted>")
            .field("public_openssh", &self.public_openssh)
            .finish()
    }
}

/// The Ed25519 key pair called `name` of cluster `cluster`.
///
/// # Errors
/// Key encoding failed.
pub fn ssh_ed25519(seed: &[u8], name: &str, cluster: &str) -> Result<KeyPair, KeyError> {
    let err = |e: ssh_key::Error| KeyError::new(e.to_string());
    let mut key =
        PrivateKey::random(&mut rng(seed, "ssh-ed25519", name), Algorithm::Ed25519).map_err(err)?;
    key.set_comment(format!("{name}@{cluster}"));
    let private_openssh = key.to_openssh(LineEnding::LF).map_err(err)?.to_string();
    let public_openssh = key.public_key().to_openssh().map_err(err)?;
    Ok(KeyPair {
        private_openssh,
        public_openssh,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_stable_per_seed_and_name() {
        let a = token(b"seed", "k3s_token");
        assert_eq!(a.len(), 64);
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(a, token(b"seed", "k3s_token"));
        assert_ne!(a, token(b"seed2", "k3s_token"));
        assert_ne!(a, token(b"seed", "other"));
    }

    #[test]
    fn key_pairs_are_stable_and_parse() {
        let a = ssh_ed25519(b"seed", "mpi_key", "lab").unwrap();
        assert_eq!(a, ssh_ed25519(b"seed", "mpi_key", "lab").unwrap());
        assert_ne!(
            a.public_openssh,
            ssh_ed25519(b"seed2", "mpi_key", "lab")
                .unwrap()
                .public_openssh
        );
        assert!(a.public_openssh.starts_with("ssh-ed25519 AAAA"));
        assert!(a.public_openssh.ends_with(" mpi_key@lab"));
        let parsed = PrivateKey::from_openssh(&a.private_openssh).unwrap();
        assert_eq!(parsed.public_key().to_openssh().unwrap(), a.public_openssh);
        assert!(!format!("{a:?}").contains("PRIVATE KEY"));
        // A token and a key of one name draw different bytes.
        assert_ne!(token(b"seed", "mpi_key").len(), 0);
    }
}
