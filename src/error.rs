//! Turning an error into text. Every error type of the library follows one rule, the one of
//! `std` and `anyhow`: a variant that returns a cause from [`Error::source`] does not print
//! it; its message carries only what this layer knows (a path, a partition, an inode, a
//! block, a recipe field). The whole story is the chain, so an error becomes text through
//! [`chain`], never through `to_string()` alone (which would drop the causes).
//!
//! See `docs/errors.md`.

use std::error::Error;

/// `err` and its causes on one line, outermost first: `outer: cause: root cause`. Each
/// message appears once, as it is.
#[must_use]
pub fn chain(err: &dyn Error) -> String {
    let mut out = err.to_string();
    let mut next = err.source();
    while let Some(cause) = next {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        next = cause.source();
    }
    out
}
