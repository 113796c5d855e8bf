//! Small stream adapters, one per file, each with its own tests.

/// The buffer size used for streaming copies throughout piimage (1 MiB).
pub const BUF_SIZE: usize = 1 << 20;

pub mod bounded;
pub mod direct;
pub mod hashing;
pub mod pin;
pub mod progress;
pub mod sniff;
pub mod sparse;
