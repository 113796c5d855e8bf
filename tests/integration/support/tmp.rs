//! A directory per test, removed when the test ends: tests share no fixed path, so they run in
//! parallel and write nothing into the source tree.

/// A fresh temporary directory, removed when dropped.
pub fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}
