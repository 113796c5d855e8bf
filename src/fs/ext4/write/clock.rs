//! A deterministic [`Runtime`] for rust-fs-ext4: the clock and the inode generations.
//!
//! rust-fs-ext4 asks its `Runtime` for "now" (every timestamp it writes: crtime, ctime, the
//! mtime of directories it changes, dtime) and for new inode generations (`i_generation`, which
//! also seeds each inode's `metadata_csum` checksum; kernel docs `inodes.html`). Both are fixed
//! here by one `epoch` (seconds since 1970, e.g. from `SOURCE_DATE_EPOCH`), so the same
//! operations on the same image give byte-identical filesystems.

use std::sync::atomic::{AtomicU32, Ordering};

use fs_ext4::runtime::Runtime;

/// A frozen clock and a reproducible generation sequence.
#[derive(Debug)]
pub struct FixedRuntime {
    epoch: i64,
    counter: AtomicU32,
    seed: u32,
}

impl FixedRuntime {
    /// The clock stopped at `epoch`; generations derived from it.
    pub fn new(epoch: i64) -> Self {
        let e = epoch.to_le_bytes();
        Self {
            epoch,
            counter: AtomicU32::new(0),
            seed: u32::from_le_bytes([e[0], e[1], e[2], e[3]])
                ^ u32::from_le_bytes([e[4], e[5], e[6], e[7]]),
        }
    }
}

/// A 32-bit mixing function (murmur3's finaliser): distinct inputs give distinct outputs.
fn mix(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x85EB_CA6B);
    x ^= x >> 13;
    x = x.wrapping_mul(0xC2B2_AE35);
    x ^ (x >> 16)
}

impl Runtime for FixedRuntime {
    fn now_unix_seconds(&self) -> i64 {
        self.epoch
    }

    fn next_inode_generation(&self) -> u32 {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        mix(self.seed.wrapping_add(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_epoch_same_sequence() {
        let a = FixedRuntime::new(1_700_000_000);
        let b = FixedRuntime::new(1_700_000_000);
        let sa: Vec<u32> = (0..100).map(|_| a.next_inode_generation()).collect();
        let sb: Vec<u32> = (0..100).map(|_| b.next_inode_generation()).collect();
        assert_eq!(sa, sb);
        let mut dedup = sa.clone();
        dedup.sort_unstable();
        dedup.dedup();
        assert_eq!(dedup.len(), 100);
        assert_eq!(a.now_unix_seconds(), 1_700_000_000);
    }
}
