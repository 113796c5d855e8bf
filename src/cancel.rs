//! Cancellation of long work (Ctrl-C, SIGTERM).
//!
//! Signals are process-wide, so the request is too: one flag ([`flag`]) that the binary sets
//! from its SIGINT/SIGTERM handler and that long loops poll through [`check`] (each compressed
//! chunk, each decoded megabyte). An interrupted operation returns an
//! [`io::ErrorKind::Interrupted`] error like any other failure, so the usual error paths run:
//! partial outputs are removed when dropped and nothing stands under a final name.
//!
//! Only code that polls can stop this way, so such code marks itself with a [`Polling`] guard
//! (downloading, decoding, writing outputs). A signal that arrives while no guard is alive
//! (validating, rendering templates, planning, opening a FIFO given as a secret: nothing to
//! clean up) ends the process at once: [`on_signal`] says which to do. Either way the exit
//! status is 128 + the signal number ([`exit_status`]): 130 for SIGINT, 143 for SIGTERM.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

/// The signals received and the polling sections alive.
#[derive(Debug)]
struct State {
    /// The first signal received (0 before any).
    signal: AtomicI32,
    /// How many [`Polling`] guards are alive.
    polling: AtomicUsize,
}

impl State {
    const fn new() -> Self {
        Self {
            signal: AtomicI32::new(0),
            polling: AtomicUsize::new(0),
        }
    }

    fn on_signal(&self, signal: i32) -> OnSignal {
        let first = self
            .signal
            .compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok();
        if first && self.polling.load(Ordering::SeqCst) > 0 {
            OnSignal::Stop
        } else {
            OnSignal::Exit(self.exit_status().unwrap_or(128 + signal))
        }
    }

    fn exit_status(&self) -> Option<i32> {
        match self.signal.load(Ordering::SeqCst) {
            0 => None,
            s => Some(128 + s),
        }
    }
}

static STATE: State = State::new();

static FLAG: LazyLock<Arc<AtomicBool>> = LazyLock::new(|| Arc::new(AtomicBool::new(false)));

/// Alive while the code that holds it polls [`check`] and cleans up when interrupted.
#[must_use = "the guard marks the section it lives in"]
#[derive(Debug)]
pub struct Polling(());

impl Drop for Polling {
    fn drop(&mut self) {
        STATE.polling.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Marks a polling section until the guard is dropped.
pub fn polling() -> Polling {
    STATE.polling.fetch_add(1, Ordering::SeqCst);
    Polling(())
}

/// What the signal handler does with a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnSignal {
    /// Set the flag: a polling section will stop and clean up.
    Stop,
    /// End the process now with this status.
    Exit(i32),
}

/// Records `signal`, asks the work to stop ([`request`]) and says what else to do: nothing
/// more when it is the first signal and a polling section is alive, else exit at once.
pub fn on_signal(signal: i32) -> OnSignal {
    let what = STATE.on_signal(signal);
    request();
    what
}

/// 128 + the first signal received, as shells report a process a signal ended; `None` before
/// any signal.
pub fn exit_status() -> Option<i32> {
    STATE.exit_status()
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue15_signals_exit_at_once_unless_a_section_polls() {
        // A state of its own: the process-wide one would interrupt the other tests.
        let st = State::new();
        assert_eq!(st.exit_status(), None);
        assert_eq!(
            st.on_signal(2),
            OnSignal::Exit(130),
            "nothing polls: exit at once"
        );
        let st = State::new();
        st.polling.fetch_add(1, Ordering::SeqCst);
        assert_eq!(st.on_signal(15), OnSignal::Stop);
        assert_eq!(st.exit_status(), Some(143));
        // A second signal ends the process, with the first one's status.
        assert_eq!(st.on_signal(2), OnSignal::Exit(143));
    }
}
