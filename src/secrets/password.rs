//! Password hashes in the crypt(3) formats libxcrypt (and so PAM on Debian and Ubuntu) reads.
//!
//! yescrypt (`$y$`) is the default of Debian 11+ and Ubuntu 22.04+; SHA-512 crypt (`$6$`) is
//! offered for older consumers (Raspberry Pi OS's `userconf.txt` documents `openssl passwd -6`).
//! Salts are 16 bytes for yescrypt and 12 bytes (16 crypt-base64 characters) for SHA-512:
//! glibc and libxcrypt read at most 16 salt characters, so a longer salt would make a hash
//! that never verifies (the `sha-crypt` default of 22 characters is that trap).

use rand_chacha::rand_core::RngCore;
use sha_crypt::{ShaCrypt, password_hash::PasswordHasher as _};
use yescrypt::Yescrypt;

/// Which crypt scheme to emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scheme {
    /// yescrypt, `$y$j9T$…` (libxcrypt's default cost).
    #[default]
    Yescrypt,
    /// SHA-512 crypt, `$6$…` with 5000 rounds.
    Sha512,
}

/// Hashing failed (only on internal parameter errors).
#[derive(Debug, thiserror::Error)]
#[error("hashing a password: {0}")]
pub struct HashError(String);

/// Hashes `password` with a salt drawn from `rng`.
pub fn hash(password: &str, scheme: Scheme, rng: &mut impl RngCore) -> Result<String, HashError> {
    match scheme {
        Scheme::Yescrypt => {
            let mut salt = [0u8; 16];
            rng.fill_bytes(&mut salt);
            Yescrypt::default()
                .hash_password_with_salt(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| HashError(e.to_string()))
        }
        Scheme::Sha512 => {
            let mut salt = [0u8; 12];
            rng.fill_bytes(&mut salt);
            ShaCrypt::default()
                .hash_password_with_salt(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| HashError(e.to_string()))
        }
    }
}

/// True when `s` looks like a crypt(3) hash piimage accepts from a recipe (`$y$`, `$6$`,
/// `$5$`, `$2b$`/`$2y$`), or a lock marker (`!`, `*`, `!…`).
pub fn looks_like_hash(s: &str) -> bool {
    if s == "*" || s.starts_with('!') {
        return true;
    }
    let ok_chars = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "$./=,".contains(c));
    ok_chars
        && ["$y$", "$6$", "$5$", "$2b$", "$2y$", "$gy$"]
            .iter()
            .any(|p| s.starts_with(p))
        && s.len() > 20
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::rng::derived_rng;

    #[test]
    fn shapes_and_determinism() {
        let mut rng = derived_rng(b"seed", "password", "alice");
        let y = hash("hunter2", Scheme::Yescrypt, &mut rng).unwrap();
        assert!(y.starts_with("$y$j9T$"), "{y}");
        let mut rng2 = derived_rng(b"seed", "password", "alice");
        assert_eq!(hash("hunter2", Scheme::Yescrypt, &mut rng2).unwrap(), y);
        let s = hash("hunter2", Scheme::Sha512, &mut rng).unwrap();
        let salt = s
            .trim_start_matches("$6$")
            .trim_start_matches("rounds=5000$")
            .split('$')
            .next()
            .unwrap();
        assert_eq!(salt.len(), 16, "{s}");
        assert!(looks_like_hash(&y) && looks_like_hash(&s));
        for bad in ["hunter2", "$1$abc$def", "", "$6$", "$y$ j9T$x"] {
            assert!(!looks_like_hash(bad), "{bad}");
        }
        assert!(looks_like_hash("!") && looks_like_hash("*") && looks_like_hash("!$y$j9T$abc"));
    }
}
