//! Filesystems inside partition windows: FAT (boot) and ext4 (root).

pub(crate) mod bytes;
pub mod ext4;
pub mod fat;
pub mod path;
pub mod probe;

pub use probe::{Filesystem, probe};
