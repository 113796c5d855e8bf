//! Writing into an ext4 partition: [`Ext4Writer`], our [`RootFs`] on top of `rust-fs-ext4`
//! (pinned `=0.8.0`, import name `fs_ext4`; see `docs/ext4-writer.md`).
//!
//! [`Ext4Writer::open`] first runs our own pre-flight [`gate`](super::gate) (clean state, empty
//! journal, no orphans, whitelisted features), then mounts the window read-write with a
//! [`FixedRuntime`] so that timestamps and inode generations are deterministic.
//!
//! What the crate does, as seen through this adapter (all checked by
//! `tests/integration/ext4_write.rs` against `e2fsck -fn` and `debugfs`):
//!
//! - every mutation is a JBD2 transaction written to the journal and checkpointed at once; the
//!   journal is empty again after each operation (kernel docs `journal.html`);
//! - path lookup follows no symlinks: an intermediate symlink is "not a directory", a final one
//!   is the link itself;
//! - replacing a file keeps its inode (number, links, extended attributes such as
//!   `security.capability`); content is truncated and written again with `pwrite`, which cuts
//!   large writes into journal-sized transactions and splits allocations into several extents
//!   when free space is fragmented;
//! - directories it creates stay linear (no htree index) however large they grow; entries
//!   added to existing htree directories go through the index, splitting leaves as needed.
//!
//! Its documented limits (errors, never corruption): no extent tree of depth ≥ 2 (very
//! fragmented files), no split of an htree *internal* node (about 50 000 entries in one indexed
//! directory at 4 KiB blocks).

mod clock;
mod device;
mod space;

use std::sync::Arc;

use fs_ext4::Filesystem;
use fs_ext4::dir::DirEntryType;
use fs_ext4::inode::{Inode, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};

pub use clock::FixedRuntime;
pub use device::WindowDevice;
pub use space::SpaceNeed;

use super::gate::check_writable;
use super::read::read_superblock;
use super::rootfs::{DirEntry, FileKind, Meta, MetaChange, Owner, RootFs, RootFsError, split_path};
use crate::disk::{Storage, Window};

/// Bytes kept free by default, on top of every estimate.
pub const DEFAULT_KEEP_FREE_BYTES: u64 = 4 << 20;

/// How to open a filesystem for writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOptions {
    /// The time every timestamp the writer sets by itself gets (seconds since 1970), and the
    /// seed of inode generations: e.g. `SOURCE_DATE_EPOCH`.
    pub epoch: i64,
    /// Free space that must remain after each write.
    pub keep_free_bytes: u64,
}

impl WriteOptions {
    /// Options with the clock at `epoch` and [`DEFAULT_KEEP_FREE_BYTES`].
    pub fn new(epoch: i64) -> Self {
        Self {
            epoch,
            keep_free_bytes: DEFAULT_KEEP_FREE_BYTES,
        }
    }
}

/// A writable ext4 filesystem in a partition window.
pub struct Ext4Writer<S> {
    window: Arc<Window<S>>,
    fs: Option<Filesystem>,
    opts: WriteOptions,
    block_size: u64,
}

impl<S> std::fmt::Debug for Ext4Writer<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ext4Writer")
            .field("opts", &self.opts)
            .field("block_size", &self.block_size)
            .field("finished", &self.fs.is_none())
            .finish_non_exhaustive()
    }
}

fn kind_of_mode(mode: u16) -> FileKind {
    match mode & S_IFMT {
        S_IFREG => FileKind::File,
        S_IFDIR => FileKind::Dir,
        S_IFLNK => FileKind::Symlink,
        _ => FileKind::Other,
    }
}

fn kind_of_entry(t: DirEntryType) -> FileKind {
    match t {
        DirEntryType::RegFile => FileKind::File,
        DirEntryType::Directory => FileKind::Dir,
        DirEntryType::Symlink => FileKind::Symlink,
        _ => FileKind::Other,
    }
}

/// Maps a crate error to ours, with the operation and the path.
fn map_err(op: &'static str, path: &str, e: fs_ext4::Error) -> RootFsError {
    use fs_ext4::Error as E;
    let path = path.to_owned();
    match e {
        E::NotFound => RootFsError::NotFound { op, path },
        E::NotADirectory => RootFsError::NotADirectory { op, path },
        E::AlreadyExists => RootFsError::AlreadyExists { op, path },
        E::IsADirectory => RootFsError::WrongKind {
            op,
            path,
            found: FileKind::Dir,
        },
        E::DirectoryNotEmpty => RootFsError::NotEmpty { op, path },
        E::Unsupported(why) => RootFsError::Unsupported {
            op,
            path,
            why: why.to_owned(),
        },
        other => RootFsError::Backend {
            op,
            path,
            source: Box::new(other),
        },
    }
}

impl<S: Storage + 'static> Ext4Writer<S> {
    /// Runs the gate on the filesystem in `window`, then mounts it for writing. The storage
    /// must be `'static` (owned, or an `Arc`: e.g. `Window<Arc<CowDisk>>`), as the crate keeps
    /// its device in an `Arc<dyn BlockDevice>`. The gate reads only; nothing is written before
    /// the first operation.
    pub fn open(window: Window<S>, opts: WriteOptions) -> Result<Self, RootFsError> {
        let sb = check_writable(&window)?;
        super::claims::check_claims(&window, &sb)?;
        let window = Arc::new(window);
        let dev: Arc<dyn fs_ext4::block_io::BlockDevice> =
            Arc::new(WindowDevice::new(Arc::clone(&window)));
        let fs = Filesystem::mount_with_runtime(dev, Arc::new(FixedRuntime::new(opts.epoch)))
            .map_err(|e| map_err("mount", "/", e))?;
        Ok(Self {
            window,
            fs: Some(fs),
            opts,
            block_size: u64::from(sb.block_size),
        })
    }

    /// The options this writer was opened with.
    pub fn options(&self) -> WriteOptions {
        self.opts
    }

    fn fs(&self, op: &'static str, path: &str) -> Result<&Filesystem, RootFsError> {
        self.fs.as_ref().ok_or_else(|| RootFsError::Finished {
            op,
            path: path.to_owned(),
        })
    }

    /// Fails with [`RootFsError::OutOfSpace`] unless `need` fits, keeping the margin.
    pub fn ensure_space(
        &self,
        op: &'static str,
        path: &str,
        need: SpaceNeed,
    ) -> Result<(), RootFsError> {
        let needed_bytes = need.bytes(self.block_size);
        let free_bytes = self.free_bytes()?;
        if needed_bytes.saturating_add(self.opts.keep_free_bytes) > free_bytes {
            return Err(RootFsError::OutOfSpace {
                op,
                path: path.to_owned(),
                needed_bytes,
                free_bytes,
                keep_free_bytes: self.opts.keep_free_bytes,
            });
        }
        Ok(())
    }

    /// Maps a crate error like [`map_err`], turning ENOSPC into [`RootFsError::OutOfSpace`].
    fn fail(
        &self,
        op: &'static str,
        path: &str,
        need: SpaceNeed,
        e: fs_ext4::Error,
    ) -> RootFsError {
        if matches!(e, fs_ext4::Error::NoSpaceLeftOnDevice) {
            return RootFsError::OutOfSpace {
                op,
                path: path.to_owned(),
                needed_bytes: need.bytes(self.block_size),
                free_bytes: self.free_bytes().unwrap_or(0),
                keep_free_bytes: self.opts.keep_free_bytes,
            };
        }
        map_err(op, path, e)
    }

    /// The inode at `path` (not following a final symlink); `None` if missing.
    fn stat(&self, op: &'static str, path: &str) -> Result<Option<(u32, Inode)>, RootFsError> {
        split_path(op, path)?;
        let fs = self.fs(op, path)?;
        let ino = match fs.lookup_path_bytes(path.as_bytes()) {
            Ok(ino) => ino,
            Err(fs_ext4::Error::NotFound) => return Ok(None),
            Err(e) => return Err(map_err(op, path, e)),
        };
        let inode = fs.stat_ino(ino).map_err(|e| map_err(op, path, e))?;
        Ok(Some((ino, inode)))
    }

    fn expect_kind(
        op: &'static str,
        path: &str,
        inode: &Inode,
        want: FileKind,
    ) -> Result<(), RootFsError> {
        let found = kind_of_mode(inode.mode);
        if found == want {
            Ok(())
        } else {
            Err(RootFsError::WrongKind {
                op,
                path: path.to_owned(),
                found,
            })
        }
    }

    /// Writes `data` into the empty regular file `ino` and sets its metadata.
    fn fill(
        &self,
        path: &str,
        ino: u32,
        data: &[u8],
        need: SpaceNeed,
        attrs: (u16, Owner, i64),
    ) -> Result<(), RootFsError> {
        let op = "write";
        let fs = self.fs(op, path)?;
        let (mode, owner, mtime) = attrs;
        if !data.is_empty() {
            fs.apply_pwrite_ino(ino, 0, data)
                .map_err(|e| self.fail(op, path, need, e))?;
        }
        let inode = fs.stat_ino(ino).map_err(|e| map_err(op, path, e))?;
        if inode.uid != owner.uid || inode.gid != owner.gid {
            fs.apply_chown_ino(ino, owner.uid, owner.gid)
                .map_err(|e| map_err(op, path, e))?;
        }
        // Mode last, from a fresh stat: a chown must not be able to drop setuid/setgid bits.
        let inode = fs.stat_ino(ino).map_err(|e| map_err(op, path, e))?;
        if inode.mode & 0o7777 != mode & 0o7777 {
            fs.apply_chmod_ino(ino, mode & 0o7777)
                .map_err(|e| map_err(op, path, e))?;
        }
        fs.apply_utimens_ino(ino, mtime, 0, mtime, 0)
            .map_err(|e| map_err(op, path, e))
    }
}

impl<S: Storage + 'static> RootFs for Ext4Writer<S> {
    fn lookup(&self, path: &str) -> Result<Option<Meta>, RootFsError> {
        let op = "lookup";
        let Some((ino, inode)) = self.stat(op, path)? else {
            return Ok(None);
        };
        let kind = kind_of_mode(inode.mode);
        let symlink_target = if kind == FileKind::Symlink {
            let t = self
                .fs(op, path)?
                .read_link_ino(ino)
                .map_err(|e| map_err(op, path, e))?;
            Some(String::from_utf8_lossy(&t).into_owned())
        } else {
            None
        };
        Ok(Some(Meta {
            kind,
            mode: inode.mode & 0o7777,
            owner: Owner::new(inode.uid, inode.gid),
            size: inode.size,
            links: inode.links_count,
            mtime: inode.mtime,
            symlink_target,
        }))
    }

    fn read(&self, path: &str) -> Result<Vec<u8>, RootFsError> {
        let op = "read";
        let (ino, inode) = self.stat(op, path)?.ok_or_else(|| RootFsError::NotFound {
            op,
            path: path.to_owned(),
        })?;
        Self::expect_kind(op, path, &inode, FileKind::File)?;
        let size = usize::try_from(inode.size)
            .ok()
            .filter(|_| inode.size <= super::rootfs::MAX_WHOLE_READ)
            .ok_or_else(|| RootFsError::TooLarge {
                op,
                path: path.to_owned(),
                size: inode.size,
            })?;
        let fs = self.fs(op, path)?;
        let mut out = vec![0u8; size];
        let mut done = 0;
        while done < size {
            let n = fs
                .read_ino(
                    ino,
                    u64::try_from(done).unwrap_or(u64::MAX),
                    &mut out[done..],
                )
                .map_err(|e| map_err(op, path, e))?;
            if n == 0 {
                break;
            }
            done += n;
        }
        out.truncate(done);
        Ok(out)
    }

    fn write_file(
        &mut self,
        path: &str,
        data: &[u8],
        mode: u16,
        owner: Owner,
        mtime: i64,
    ) -> Result<(), RootFsError> {
        let op = "write";
        if split_path(op, path)?.is_empty() {
            return Err(RootFsError::WrongKind {
                op,
                path: path.to_owned(),
                found: FileKind::Dir,
            });
        }
        let data_bytes = u64::try_from(data.len()).unwrap_or(u64::MAX);
        let attrs = (mode, owner, mtime);
        match self.stat(op, path)? {
            Some((ino, inode)) => {
                Self::expect_kind(op, path, &inode, FileKind::File)?;
                let need = SpaceNeed {
                    data_bytes,
                    freed_blocks: inode.blocks.saturating_mul(512) / self.block_size,
                    ..SpaceNeed::default()
                };
                self.ensure_space(op, path, need)?;
                let fs = self.fs(op, path)?;
                if inode.size > 0 {
                    fs.apply_truncate_ino(ino, 0)
                        .map_err(|e| map_err(op, path, e))?;
                }
                self.fill(path, ino, data, need, attrs)
            }
            None => {
                let need = SpaceNeed {
                    data_bytes,
                    entries: 1,
                    ..SpaceNeed::default()
                };
                self.ensure_space(op, path, need)?;
                let ino = self
                    .fs(op, path)?
                    .apply_create(path, mode & 0o7777)
                    .map_err(|e| self.fail(op, path, need, e))?;
                self.fill(path, ino, data, need, attrs)
            }
        }
    }

    fn mkdir_p(&mut self, path: &str, mode: u16, owner: Owner) -> Result<(), RootFsError> {
        let op = "mkdir";
        let parts = split_path(op, path)?;
        let mut cur = String::new();
        for part in parts {
            cur.push('/');
            cur.push_str(part);
            match self.stat(op, &cur)? {
                Some((_, inode)) => Self::expect_kind(op, &cur, &inode, FileKind::Dir)?,
                None => {
                    let need = SpaceNeed {
                        entries: 1,
                        dirs: 1,
                        ..SpaceNeed::default()
                    };
                    self.ensure_space(op, &cur, need)?;
                    let fs = self.fs(op, &cur)?;
                    let ino = fs
                        .apply_mkdir(&cur, mode & 0o7777)
                        .map_err(|e| self.fail(op, &cur, need, e))?;
                    if owner != Owner::ROOT {
                        fs.apply_chown_ino(ino, owner.uid, owner.gid)
                            .map_err(|e| map_err(op, &cur, e))?;
                    }
                }
            }
        }
        Ok(())
    }

    fn symlink(&mut self, path: &str, target: &str, owner: Owner) -> Result<(), RootFsError> {
        let op = "symlink";
        if split_path(op, path)?.is_empty() {
            return Err(RootFsError::AlreadyExists {
                op,
                path: path.to_owned(),
            });
        }
        let need = SpaceNeed {
            entries: 1,
            slow_symlinks: u64::from(target.len() >= 60),
            ..SpaceNeed::default()
        };
        self.ensure_space(op, path, need)?;
        let fs = self.fs(op, path)?;
        let ino = fs
            .apply_symlink(target, path)
            .map_err(|e| self.fail(op, path, need, e))?;
        if owner != Owner::ROOT {
            fs.apply_chown_ino(ino, owner.uid, owner.gid)
                .map_err(|e| map_err(op, path, e))?;
        }
        Ok(())
    }

    fn set_meta(&mut self, path: &str, change: MetaChange) -> Result<(), RootFsError> {
        let op = "chmod/chown";
        let (ino, inode) = self.stat(op, path)?.ok_or_else(|| RootFsError::NotFound {
            op,
            path: path.to_owned(),
        })?;
        let fs = self.fs(op, path)?;
        if change.mode.is_some() && kind_of_mode(inode.mode) == FileKind::Symlink {
            return Err(RootFsError::Unsupported {
                op,
                path: path.to_owned(),
                why: "the mode of a symlink cannot be changed (no lchmod)".into(),
            });
        }
        // Owner first, mode last: a chown must not be able to drop setuid/setgid bits.
        if change.uid.is_some() || change.gid.is_some() {
            fs.apply_chown_ino(
                ino,
                change.uid.unwrap_or(u32::MAX),
                change.gid.unwrap_or(u32::MAX),
            )
            .map_err(|e| map_err(op, path, e))?;
        }
        if let Some(mode) = change.mode {
            fs.apply_chmod_ino(ino, mode & 0o7777)
                .map_err(|e| map_err(op, path, e))?;
        }
        Ok(())
    }

    fn unlink(&mut self, path: &str) -> Result<(), RootFsError> {
        let op = "remove";
        let (_, inode) = self.stat(op, path)?.ok_or_else(|| RootFsError::NotFound {
            op,
            path: path.to_owned(),
        })?;
        let fs = self.fs(op, path)?;
        if kind_of_mode(inode.mode) == FileKind::Dir {
            fs.apply_rmdir(path)
        } else {
            fs.apply_unlink(path)
        }
        .map_err(|e| map_err(op, path, e))
    }

    fn list(&self, dir: &str) -> Result<Vec<DirEntry>, RootFsError> {
        let op = "list";
        let (ino, inode) = self.stat(op, dir)?.ok_or_else(|| RootFsError::NotFound {
            op,
            path: dir.to_owned(),
        })?;
        Self::expect_kind(op, dir, &inode, FileKind::Dir)?;
        let entries = self
            .fs(op, dir)?
            .read_dir_ino(ino)
            .map_err(|e| map_err(op, dir, e))?;
        let mut out: Vec<DirEntry> = entries
            .into_iter()
            .filter(|e| e.name != b"." && e.name != b"..")
            .map(|e| DirEntry {
                name: String::from_utf8_lossy(&e.name).into_owned(),
                kind: kind_of_entry(e.file_type),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn free_bytes(&self) -> Result<u64, RootFsError> {
        // The crate's cache writes through and every commit is checkpointed at once, so the
        // superblock in the window is current between operations.
        let sb = read_superblock(&self.window).map_err(|e| RootFsError::Backend {
            op: "statfs",
            path: "/".into(),
            source: Box::new(e),
        })?;
        Ok(sb.free_bytes())
    }

    fn finish(&mut self) -> Result<(), RootFsError> {
        let op = "finish";
        let fs = self.fs.take().ok_or_else(|| RootFsError::Finished {
            op,
            path: "/".into(),
        })?;
        fs.finish().map_err(|e| map_err(op, "/", e))?;
        // The crate restores the state it found (VALID) and clears needs_recovery after each
        // commit: check that it did, with our own decoder, so a later reader is not surprised.
        check_writable(&self.window).map_err(|e| RootFsError::Backend {
            op,
            path: "/".into(),
            source: Box::new(e),
        })?;
        Ok(())
    }
}
