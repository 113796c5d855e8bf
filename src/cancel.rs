//! Cancellation of long work (Ctrl-C).
//!
//! Signals are process-wide, so the request is too: one flag ([`flag`]) that the binary sets
//! from its SIGINT/SIGTERM handler (`signal_hook::flag::register`) and that long loops poll
//! through [`check`] (each compressed chunk, each decoded megabyte). An interrupted operation
//! returns an [`io::ErrorKind::Interrupted`] error like any other failure, so the usual error
//! paths run: partial outputs are removed when dropped and nothing stands under a final name.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};

static FLAG: LazyLock<Arc<AtomicBool>> = LazyLock::new(|| Arc::new(AtomicBool::new(false)));

/// The process-wide cancellation flag, for a signal handler to set.
pub fn flag() -> Arc<AtomicBool> {
    Arc::clone(&FLAG)
}

/// Asks every long operation of this process to stop at its next check.
pub fn request() {
    FLAG.store(true, Ordering::Relaxed);
}

/// True once cancellation was requested.
pub fn is_requested() -> bool {
    FLAG.load(Ordering::Relaxed)
}

/// The error that interrupted operations return.
pub fn interrupted() -> io::Error {
    io::Error::new(io::ErrorKind::Interrupted, "interrupted")
}

/// `Err(interrupted())` once cancellation was requested.
///
/// # Errors
/// Cancellation was requested.
pub fn check() -> io::Result<()> {
    if is_requested() {
        Err(interrupted())
    } else {
        Ok(())
    }
}
