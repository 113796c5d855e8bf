//! Sequential writing of large output files around the page cache (`O_DIRECT`).
//!
//! A build writes one image per node, each as large as a compressed base image, and never reads
//! them back. Through the page cache every byte is first copied into a freshly allocated cache
//! page and later written back, and the outputs evict everything else from memory; on virtual
//! machines whose guest memory is returned to the host (virtio-balloon free page reporting) the
//! copy is also the slowest part of a build: `ci/bench-output.sh` measured about 400 MB/s
//! through the page cache against about 2.6 GB/s with `O_DIRECT` on the same disk.
//!
//! [`DirectFile`] gathers the stream into an aligned buffer and writes it in whole,
//! [`ALIGN`]-aligned pieces with `O_DIRECT`. The last piece is padded with zeros and the file is
//! then truncated to the exact length. Where the filesystem refuses `O_DIRECT` (tmpfs before
//! Linux 6.6, some FUSE filesystems) or an aligned write, it falls back to ordinary writes, so the
//! bytes written never depend on the path taken.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::sync::mpsc::{Receiver, Sender, SyncSender};
use std::thread::JoinHandle;

use rustix::fs::OFlags;
use rustix::io::Errno;

/// Alignment of the buffer, of every write offset and of every write length with `O_DIRECT`:
/// 4 KiB covers the logical block size of current disks (512 or 4096 bytes).
pub const ALIGN: usize = 4096;

/// Default buffer: 4 MiB, large enough for the device to stream.
pub const DIRECT_BUF_SIZE: usize = 4 << 20;

/// A full buffer on its way to the writer thread.
struct Job {
    buf: AlignedBuf,
    len: usize,
    at: u64,
    /// The tail of the file: padded with zeros while in `O_DIRECT` mode, which ends after it.
    last: bool,
}

/// A sequential writer for a new, empty file; see the module docs.
///
/// Writes to the device happen on a thread of their own, one buffer behind: while one buffer is
/// written (an `O_DIRECT` write waits for the device), the caller fills the other, so the
/// hashing and compressing around it do not stall on the disk.
#[derive(Debug)]
pub struct DirectFile {
    /// The buffer being filled.
    buf: AlignedBuf,
    /// A free buffer, if one is not in flight.
    spare: Option<AlignedBuf>,
    cap: usize,
    /// Bytes pending in `buf`.
    len: usize,
    /// File offset of `buf`'s first byte.
    pos: u64,
    direct: bool,
    jobs: Option<SyncSender<Job>>,
    done: Receiver<io::Result<AlignedBuf>>,
    writer: Option<JoinHandle<io::Result<File>>>,
}

impl DirectFile {
    /// Wraps `file` (empty, open for writing), switching it to `O_DIRECT` when the filesystem
    /// allows it. `buf_size` is rounded up to a multiple of [`ALIGN`].
    pub fn new(file: File, buf_size: usize) -> Self {
        Self::with_mode(file, buf_size, true)
    }

    fn with_mode(file: File, buf_size: usize, try_direct: bool) -> Self {
        let cap = buf_size.max(ALIGN).div_ceil(ALIGN) * ALIGN;
        let mut buf = AlignedBuf::default();
        buf.get_mut(cap);
        let direct = try_direct && set_direct(&file, true).is_ok();
        let (jobs, inbox) = std::sync::mpsc::sync_channel::<Job>(1);
        let (outbox, done) = std::sync::mpsc::channel();
        let writer = std::thread::spawn(move || write_jobs(file, direct, &inbox, &outbox));
        Self {
            buf,
            spare: None,
            cap,
            len: 0,
            pos: 0,
            direct,
            jobs: Some(jobs),
            done,
            writer: Some(writer),
        }
    }

    /// True when the file was switched to `O_DIRECT` (a refused write may still have switched
    /// it back).
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// Bytes written so far (including those still in the buffer).
    pub fn position(&self) -> u64 {
        self.pos + self.len as u64
    }

    /// Writes what is buffered, waits for every write, sets the exact length, switches the
    /// file back to ordinary writes and returns it.
    ///
    /// # Errors
    /// Writing or truncating failed.
    pub fn finish(mut self) -> io::Result<File> {
        let end = self.position();
        let buf = std::mem::take(&mut self.buf);
        self.send(Job {
            buf,
            len: self.len,
            at: self.pos,
            last: true,
        })?;
        drop(self.jobs.take());
        let file = self
            .writer
            .take()
            .ok_or_else(|| io::Error::other("the writer thread is gone"))?
            .join()
            .map_err(|_| io::Error::other("the writer thread panicked"))??;
        file.set_len(end)?;
        Ok(file)
    }

    /// Hands `job` to the writer thread.
    fn send(&mut self, job: Job) -> io::Result<()> {
        let sent = self
            .jobs
            .as_ref()
            .is_some_and(|jobs| jobs.send(job).is_ok());
        if sent {
            Ok(())
        } else {
            Err(self.writer_error())
        }
    }

    /// Why the writer thread stopped: the error of the write that failed.
    fn writer_error(&mut self) -> io::Error {
        match self.writer.take().map(JoinHandle::join) {
            Some(Ok(Err(e))) => e,
            Some(Err(_)) => io::Error::other("the writer thread panicked"),
            _ => io::Error::other("the writer thread stopped"),
        }
    }

    /// Sends the full buffer and continues in a free one.
    fn submit(&mut self) -> io::Result<()> {
        let next = match self.spare.take() {
            Some(b) => b,
            None if self.pos == 0 => {
                // The first buffer in flight: the second one is made now (small files never
                // need it).
                let mut b = AlignedBuf::default();
                b.get_mut(self.cap);
                b
            }
            // Wait for the writer to give one back (or report its error).
            None => match self.done.recv() {
                Ok(r) => r?,
                Err(_) => return Err(self.writer_error()),
            },
        };
        let full = std::mem::replace(&mut self.buf, next);
        self.send(Job {
            buf: full,
            len: self.len,
            at: self.pos,
            last: false,
        })?;
        self.pos += self.len as u64;
        self.len = 0;
        Ok(())
    }
}

/// The writer thread: writes each job at its offset, hands the buffer back, and returns the
/// file when the channel closes, or the first error.
fn write_jobs(
    file: File,
    mut direct: bool,
    inbox: &Receiver<Job>,
    outbox: &Sender<io::Result<AlignedBuf>>,
) -> io::Result<File> {
    for mut job in inbox {
        let result = write_job(&file, &mut direct, &mut job);
        match result {
            Ok(()) => {
                let _ = outbox.send(Ok(job.buf));
            }
            Err(e) => {
                // The caller gets a copy (an io::Error cannot be cloned), the OS code kept.
                let copy = e.raw_os_error().map_or_else(
                    || io::Error::new(e.kind(), e.to_string()),
                    io::Error::from_raw_os_error,
                );
                let _ = outbox.send(Err(copy));
                return Err(e);
            }
        }
    }
    Ok(file)
}

fn write_job(file: &File, direct: &mut bool, job: &mut Job) -> io::Result<()> {
    let n = if job.last && *direct {
        let padded = job.len.div_ceil(ALIGN) * ALIGN;
        job.buf.get_mut(padded)[job.len..].fill(0);
        padded
    } else {
        job.len
    };
    if n > 0 {
        let data = job.buf.get(n);
        match file.write_all_at(data, job.at) {
            Ok(()) => {}
            // The filesystem took O_DIRECT at open but refuses this write (an alignment it
            // needs beyond ours, say): go on with ordinary writes, unpadded.
            Err(e) if *direct && is_alignment_error(&e) => {
                set_direct(file, false)?;
                *direct = false;
                file.write_all_at(job.buf.get(job.len), job.at)?;
            }
            Err(e) => return Err(e),
        }
    }
    if job.last && *direct {
        set_direct(file, false)?;
        *direct = false;
    }
    Ok(())
}

impl Write for DirectFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(self.cap - self.len);
        self.buf.get_mut(self.cap)[self.len..self.len + n].copy_from_slice(&buf[..n]);
        self.len += n;
        if self.len == self.cap {
            self.submit()?;
        }
        Ok(n)
    }

    /// Does nothing: only whole aligned pieces can be written before [`DirectFile::finish`].
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A growable byte buffer whose start is [`ALIGN`]-aligned, for `O_DIRECT` reads and writes.
#[derive(Debug, Default)]
pub struct AlignedBuf {
    storage: Vec<u8>,
    start: usize,
}

impl AlignedBuf {
    /// The first `n` bytes of the buffer (growing it if needed), aligned; their contents are
    /// whatever was there before.
    pub fn get_mut(&mut self, n: usize) -> &mut [u8] {
        if self.storage.len() < self.start + n || self.storage.is_empty() {
            self.storage = vec![0u8; n.div_ceil(ALIGN) * ALIGN + ALIGN];
            self.start = self.storage.as_ptr().align_offset(ALIGN).min(ALIGN);
        }
        &mut self.storage[self.start..self.start + n]
    }

    /// The first `n` bytes, as last written through [`Self::get_mut`].
    ///
    /// # Panics
    /// Never for `n` up to the largest length asked of [`Self::get_mut`].
    pub fn get(&self, n: usize) -> &[u8] {
        &self.storage[self.start..self.start + n]
    }
}

/// Switches `file` to `O_DIRECT` if the filesystem allows it; returns whether it did.
pub fn try_direct(file: &File) -> bool {
    set_direct(file, true).is_ok()
}

/// Switches `file` back to ordinary (page cache) I/O.
///
/// # Errors
/// The flags cannot be changed.
pub fn set_buffered(file: &File) -> io::Result<()> {
    set_direct(file, false)
}

/// True for the error `O_DIRECT` I/O gives when the filesystem wants other alignment.
pub fn is_alignment_error(e: &io::Error) -> bool {
    e.raw_os_error() == Some(Errno::INVAL.raw_os_error())
}

fn set_direct(file: &File, on: bool) -> io::Result<()> {
    let flags = rustix::fs::fcntl_getfl(file)?;
    let flags = if on {
        flags | OFlags::DIRECT
    } else {
        flags - OFlags::DIRECT
    };
    rustix::fs::fcntl_setfl(file, flags)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| u8::try_from(i * 7 % 251).unwrap()).collect()
    }

    fn roundtrip(dir: &std::path::Path, sizes: &[usize], buf: usize) {
        for direct in [true, false] {
            roundtrip_mode(dir, sizes, buf, direct);
        }
    }

    fn roundtrip_mode(dir: &std::path::Path, sizes: &[usize], buf: usize, direct: bool) {
        let path = dir.join(format!("f{}-{buf}-{direct}", sizes.len()));
        let mut w = DirectFile::with_mode(File::create(&path).unwrap(), buf, direct);
        let mut want = Vec::new();
        for (k, &n) in sizes.iter().enumerate() {
            let piece = pattern(n + k);
            w.write_all(&piece).unwrap();
            want.extend_from_slice(&piece);
        }
        assert_eq!(w.position(), want.len() as u64);
        let f = w.finish().unwrap();
        assert_eq!(f.metadata().unwrap().len(), want.len() as u64);
        let mut got = Vec::new();
        File::open(&path).unwrap().read_to_end(&mut got).unwrap();
        assert_eq!(got, want, "sizes {sizes:?}, buffer {buf}, direct {direct}");
    }

    #[test]
    fn writes_exact_bytes_whatever_the_piece_sizes() {
        // Both paths run: where the temporary directory refuses O_DIRECT, the "direct" run
        // takes the fallback, which must give the same bytes.
        let dir = tempfile::tempdir().unwrap();
        roundtrip(dir.path(), &[], ALIGN);
        roundtrip(dir.path(), &[1], ALIGN);
        roundtrip(dir.path(), &[ALIGN], ALIGN);
        roundtrip(dir.path(), &[ALIGN - 1, 2, 3 * ALIGN + 5, 17], ALIGN);
        roundtrip(dir.path(), &[100_000, 1, 65_536, 333_333], 3 * ALIGN);
        roundtrip(dir.path(), &[1 << 20; 5], DIRECT_BUF_SIZE);
    }

    #[test]
    fn a_failed_write_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ro");
        std::fs::write(&path, b"").unwrap();
        // Open for reading only: every write fails, on the writer thread.
        let mut w = DirectFile::new(File::open(&path).unwrap(), ALIGN);
        let r = w
            .write_all(&[7u8; 5 * ALIGN])
            .and_then(|()| w.finish().map(drop));
        let e = r.expect_err("the error reached the caller");
        // The operating system's own error (EBADF), not a generic one.
        assert!(e.raw_os_error().is_some(), "{e}");
    }

    #[test]
    fn finish_leaves_an_ordinary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut w = DirectFile::new(File::create(&path).unwrap(), ALIGN);
        w.write_all(b"abc").unwrap();
        let f = w.finish().unwrap();
        // Unaligned writes after finish work: O_DIRECT is off again.
        f.write_all_at(b"def", 3).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"abcdef");
    }
}
