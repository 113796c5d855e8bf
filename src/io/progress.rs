//! A reader that reports the bytes read through it to a [`Progress`].

use std::io::{self, Read};

use crate::progress::Progress;

/// Wraps a reader and calls [`Progress::advance`] with every successful read's length.
///
/// It does not call `start` or `finish`; the code that owns the phase does.
pub struct ProgressReader<'p, R> {
    inner: R,
    progress: &'p dyn Progress,
    bytes: u64,
}

impl<'p, R> ProgressReader<'p, R> {
    /// Wraps `inner`, reporting to `progress`.
    pub fn new(inner: R, progress: &'p dyn Progress) -> Self {
        Self {
            inner,
            progress,
            bytes: 0,
        }
    }

    /// The number of bytes read so far.
    pub fn byte_count(&self) -> u64 {
        self.bytes
    }

    /// The wrapped reader.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// Returns the wrapped reader.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R> std::fmt::Debug for ProgressReader<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProgressReader")
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

impl<R: Read> Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let n64 = u64::try_from(n).unwrap_or(u64::MAX);
        self.bytes += n64;
        if n > 0 {
            self.progress.advance(n64);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<u64>>);
    impl Progress for Recorder {
        fn start(&self, _what: &str, _total: Option<u64>) {}
        fn advance(&self, n: u64) {
            self.0.lock().unwrap().push(n);
        }
        fn finish(&self) {}
    }

    #[test]
    fn reports_every_read() {
        let rec = Recorder::default();
        let data = vec![7u8; 10_000];
        let mut r = ProgressReader::new(&data[..], &rec);
        let mut buf = [0u8; 4096];
        let mut total = 0;
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            total += n;
        }
        assert_eq!(total, 10_000);
        assert_eq!(r.byte_count(), 10_000);
        assert_eq!(*rec.0.lock().unwrap(), vec![4096, 4096, 1808]);
    }
}
