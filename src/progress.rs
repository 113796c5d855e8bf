//! Progress reporting from library code.
//!
//! Library code never prints. Long operations (downloads, decompression, image writes) report
//! through [`Progress`]; the CLI implements it with indicatif bars, tests use [`NoProgress`].

/// Receives progress of one long operation at a time.
pub trait Progress: Send + Sync {
    /// A new phase starts. `total` is in bytes when known.
    fn start(&self, what: &str, total: Option<u64>);
    /// `n` more bytes of the current phase are done.
    fn advance(&self, n: u64);
    /// The current phase is over (successfully or not).
    fn finish(&self);

    /// A part of the current phase starts, which runs beside other parts (one node's image,
    /// say); `total` is in bytes when known. The phase's own [`Progress::advance`] calls
    /// continue to count the phase as a whole.
    fn task_start(&self, _name: &str, _total: Option<u64>) {}
    /// `n` more bytes of the part `name` are done.
    fn task_advance(&self, _name: &str, _n: u64) {}
    /// The part `name` is over (successfully or not).
    fn task_finish(&self, _name: &str) {}
}

/// A [`Progress`] that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _what: &str, _total: Option<u64>) {}
    fn advance(&self, _n: u64) {}
    fn finish(&self) {}
}
