//! SSH host keys (Ed25519) in OpenSSH format, as `ssh-keygen -A` would write them.

use rand_chacha::ChaCha20Rng;
use ssh_key::{Algorithm, LineEnding, PrivateKey};

/// A generated host key pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKey {
    /// `/etc/ssh/ssh_host_ed25519_key` (mode 0600).
    pub private_openssh: String,
    /// `/etc/ssh/ssh_host_ed25519_key.pub` (mode 0644): `ssh-ed25519 AAAA… root@HOST`.
    pub public_openssh: String,
    /// `ssh-ed25519 AAAA…` without a comment, for `known_hosts`.
    pub public_key: String,
    /// `SHA256:…` fingerprint.
    pub fingerprint: String,
}

/// Key generation failed.
#[derive(Debug, thiserror::Error)]
#[error("generating an SSH host key: {0}")]
pub struct KeyError(String);

impl KeyError {
    pub(crate) fn new(message: String) -> Self {
        Self(message)
    }
}

/// Generates an Ed25519 host key for `host` from `rng`.
pub fn ed25519(host: &str, rng: &mut ChaCha20Rng) -> Result<HostKey, KeyError> {
    let err = |e: ssh_key::Error| KeyError(e.to_string());
    let mut key = PrivateKey::random(rng, Algorithm::Ed25519).map_err(err)?;
    key.set_comment(format!("root@{host}"));
    let private_openssh = key.to_openssh(LineEnding::LF).map_err(err)?.to_string();
    let public = key.public_key();
    let public_openssh = format!("{}\n", public.to_openssh().map_err(err)?);
    let mut bare = public.clone();
    bare.set_comment("");
    let public_key = bare.to_openssh().map_err(err)?.trim_end().to_owned();
    let fingerprint = public.fingerprint(ssh_key::HashAlg::Sha256).to_string();
    Ok(HostKey {
        private_openssh,
        public_openssh,
        public_key,
        fingerprint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::rng::derived_rng;

    #[test]
    fn deterministic_and_well_formed() {
        let a = ed25519("node1", &mut derived_rng(b"s", "ssh-host-ed25519", "node1")).unwrap();
        let b = ed25519("node1", &mut derived_rng(b"s", "ssh-host-ed25519", "node1")).unwrap();
        let c = ed25519("node2", &mut derived_rng(b"s", "ssh-host-ed25519", "node2")).unwrap();
        assert_eq!(a, b);
        assert_ne!(a.public_key, c.public_key);
        assert!(
            a.private_openssh
                .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n")
        );
        assert!(
            a.public_openssh.starts_with("ssh-ed25519 AAAA")
                && a.public_openssh.ends_with(" root@node1\n")
        );
        assert!(a.fingerprint.starts_with("SHA256:"));
        assert_eq!(a.public_key.split(' ').count(), 2);
    }
}
