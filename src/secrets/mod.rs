//! Secrets a build generates: password hashes, SSH host keys, Wi-Fi PSKs, and the recipe's
//! cluster-wide `secrets:` (tokens, key pairs).
//!
//! Builds are reproducible: every random value (salts, host keys, disk ids, connection UUIDs) is
//! drawn from a generator seeded with `sha256(recipe seed ‖ purpose ‖ node)` ([`rng`]), through
//! one function per value in [`derive`], so the same recipe and seed give the same bytes, and
//! different nodes or purposes never share a value. The seed is the secret that
//! protects generated host keys: anyone holding the recipe seed can regenerate them.

pub mod cluster;
pub mod derive;
pub mod hostkey;
pub mod password;
pub mod rng;
pub mod wifi;
