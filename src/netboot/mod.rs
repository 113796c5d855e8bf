//! The `netboot` output: each node as a network-booted board would get it, made from the
//! node's finished copy-on-write disk without root (`docs/netboot.md`).
//!
//! Under `OUT/netboot/`:
//! - `tftp/<serial or MAC>/`: the files of the node's FAT boot partition, `cmdline.txt`
//!   rewritten for an NFS root ([`boot::nfs_cmdline`]); `config.txt` is the node's own, with
//!   the recipe's edits;
//! - `roots/<node>.root.tar.zst`: the node's root filesystem as a tar stream read straight from
//!   its ext4 partition ([`archive`]), with `/etc/fstab` for an NFS root ([`fstab`]) and the
//!   swap and SD-only units masked. The edits go through the ordinary operations applied to a
//!   second copy-on-write layer over the node's disk, so the node's images stay as built;
//! - `dnsmasq.conf`, `exports`, `README.md`: the server's side ([`server`]).
//!
//! # Per-node archives, not a shared root
//! Every node gets a full archive. A shared read-only root with small per-node overlays would
//! save the server's disk, but the node must then assemble its root from two mounts before
//! `init` runs (an initramfs with overlayfs-over-NFS, which the official images do not ship
//! and which cannot be proven here), and every package installed on one node diverges from the
//! shared root anyway. A full, writable root per node is what the kernel's `nfsroot=` boots
//! as it is, and identical files across the nodes' directories can be deduplicated on the
//! server (`hardlink`, or a filesystem with deduplication) if space matters.

pub mod archive;
pub mod boot;
pub mod fstab;
pub mod server;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::disk::{CowDisk, Storage};
use crate::fs::ext4::Ext4Reader;
use crate::fs::ext4::walk::{Ext4Walker, WalkError};
use crate::fs::fat::{FatError, FatReader};
use crate::ops::{FileAttrs, FileOp, Part};
use crate::output::{OutputError, PartialFile, PendingFile, commit_pending};
use crate::pipeline::{Layout, NodeError, apply_node};
use crate::recipe::{NetbootSpec, NodeSpec};

pub use archive::{ArchiveStats, RootArchive};
pub use server::ServedNode;

/// The directory of the netboot output inside the output directory.
pub const NETBOOT_DIR: &str = "netboot";
/// zstd level of the root archives.
pub const ZSTD_LEVEL: i32 = 3;

/// Units masked in the root archive when the image has them: swap on a file (which would
/// live on the NFS root) and piimage's own growth of the SD card's root partition.
pub const MASKED_UNITS: &[&str] = &["dphys-swapfile.service", "piimage-grow-root.service"];

/// Where unit files may be.
const UNIT_DIRS: &[&str] = &[
    "/etc/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];

/// Why a node's netboot output failed; names the node and what was being read or written.
#[derive(Debug, thiserror::Error)]
pub enum NetbootError {
    /// The image lacks a partition.
    #[error("node {node}: the image has no {what} partition")]
    Missing {
        /// The node.
        node: String,
        /// Which partition.
        what: &'static str,
    },
    /// The boot partition could not be read.
    #[error("node {node}: boot partition {partition} (FAT)")]
    Boot {
        /// The node.
        node: String,
        /// Partition number.
        partition: u32,
        /// What failed.
        #[source]
        source: FatError,
    },
    /// The root partition could not be read.
    #[error("node {node}: root partition {partition} (ext4)")]
    Root {
        /// The node.
        node: String,
        /// Partition number.
        partition: u32,
        /// What failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The NFS-root edits could not be applied.
    #[error("node {node}: editing the root for NFS")]
    Edit {
        /// The node.
        node: String,
        /// What failed.
        #[source]
        source: Box<NodeError>,
    },
    /// An output file could not be written.
    #[error("node {node}")]
    Output {
        /// The node.
        node: String,
        /// What failed.
        #[source]
        source: OutputError,
    },
    /// A file or directory could not be written.
    #[error("{}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
}

/// What one node's netboot output wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeNetboot {
    /// The node.
    pub node: String,
    /// Its TFTP directory.
    pub tftp_dir: PathBuf,
    /// Its root archive.
    pub archive: PathBuf,
    /// Root paths whose content differs from the node's image (edited or masked).
    pub edited: Vec<String>,
    /// What the archive holds.
    pub stats: ArchiveStats,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> NetbootError + '_ {
    move |source| NetbootError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The archive's file name for a node whose output stem is `stem`.
#[must_use]
pub fn archive_name(stem: &str) -> String {
    format!("{stem}.root.tar.zst")
}

/// A TFTP tree written under a hidden name, removed unless it was committed.
#[derive(Debug)]
struct PartialDir(Option<PathBuf>);

impl Drop for PartialDir {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

/// A node's netboot output, complete but still under hidden names: the build commits it with
/// the node's images, once every node is complete; dropping it removes it.
#[derive(Debug)]
pub struct PendingNetboot {
    done: NodeNetboot,
    tftp_partial: PartialDir,
    archive: PendingFile,
}

impl PendingNetboot {
    /// Puts the TFTP tree and the archive under their final names (replacing the previous
    /// build's).
    ///
    /// # Errors
    /// A rename failed.
    pub fn commit(mut self) -> Result<NodeNetboot, NetbootError> {
        let tftp_dir = self.done.tftp_dir.clone();
        if let Some(partial) = self.tftp_partial.0.take() {
            if tftp_dir.exists() {
                std::fs::remove_dir_all(&tftp_dir).map_err(io_err(&tftp_dir))?;
            }
            std::fs::rename(&partial, &tftp_dir).map_err(io_err(&tftp_dir))?;
        }
        commit_pending(vec![self.archive], true).map_err(|source| NetbootError::Output {
            node: self.done.node.clone(),
            source,
        })?;
        Ok(self.done)
    }
}

/// Writes node `node`'s TFTP tree and root archive under `out/netboot/`, from its finished
/// `disk`, under hidden names ([`PendingNetboot::commit`] puts them in place). `stem` is the
/// node's output file stem, `epoch` the build's timestamp.
///
/// # Errors
/// A [`NetbootError`] naming the node and the partition, file or path.
pub fn write_node<B: Storage + 'static>(
    disk: &Arc<CowDisk<B>>,
    layout: &Layout,
    spec: &NetbootSpec,
    node: &NodeSpec,
    stem: &str,
    epoch: i64,
    out: &Path,
) -> Result<PendingNetboot, NetbootError> {
    let name = node.name.clone();
    let missing = |what| NetbootError::Missing {
        node: name.clone(),
        what,
    };
    let boot = layout.boot.as_ref().ok_or_else(|| missing("FAT boot"))?;
    let root = layout.root.as_ref().ok_or_else(|| missing("ext4 root"))?;
    let boot_id = node
        .boot_id
        .as_ref()
        .map_or(name.as_str(), |b| b.dir_name());
    let base = out.join(NETBOOT_DIR);

    // The boot files, cmdline.txt for the NFS root.
    let boot_err = |source: FatError| NetbootError::Boot {
        node: name.clone(),
        partition: boot.number,
        source,
    };
    let window = boot
        .window(Arc::clone(disk))
        .map_err(|e| boot_err(FatError::from(e)))?;
    let fat = FatReader::open(window).map_err(boot_err)?;
    let mut files = boot::boot_files(&fat).map_err(boot_err)?;
    let (server, root_path) = server::root_source(spec, &node.name);
    for (path, data) in &mut files {
        if path.eq_ignore_ascii_case("cmdline.txt") {
            let old = String::from_utf8_lossy(data).into_owned();
            *data = boot::nfs_cmdline(&old, &server, &root_path).into_bytes();
        }
    }
    let tftp = base.join("tftp");
    let tftp_dir = tftp.join(boot_id);
    let partial = tftp.join(format!(".{boot_id}.partial"));
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(io_err(&partial))?;
    }
    let tftp_partial = PartialDir(Some(partial.clone()));
    boot::write_tree(&partial, &files).map_err(io_err(&partial))?;

    // The root's edits, on a layer over the node's disk.
    let root_err = |source: Box<dyn std::error::Error + Send + Sync>| NetbootError::Root {
        node: name.clone(),
        partition: root.number,
        source,
    };
    let reader = Ext4Reader::open(
        root.window(Arc::clone(disk))
            .map_err(|e| root_err(e.into()))?,
    )
    .map_err(|e| root_err(e.into()))?;
    let (ops, edited) = root_edits(&reader, spec, boot_id, &node.name)
        .map_err(|e: crate::fs::ext4::Ext4Error| root_err(e.into()))?;
    let layer = Arc::new(CowDisk::new(Arc::clone(disk)));
    apply_node(&layer, layout, &ops, epoch).map_err(|source| NetbootError::Edit {
        node: name.clone(),
        source: Box::new(source),
    })?;
    let walker = Ext4Walker::open(
        root.window(Arc::clone(&layer))
            .map_err(|e| root_err(e.into()))?,
    )
    .map_err(|e| root_err(e.into()))?;

    let roots = base.join("roots");
    std::fs::create_dir_all(&roots).map_err(io_err(&roots))?;
    let archive_path = roots.join(archive_name(stem));
    let output_err = |source| NetbootError::Output {
        node: name.clone(),
        source,
    };
    let mut file = PartialFile::create(&archive_path).map_err(output_err)?;
    let write_err = |source| NetbootError::Io {
        path: archive_path.clone(),
        source,
    };
    let stats = {
        let buffered = std::io::BufWriter::with_capacity(1 << 20, file.file_mut());
        let mut enc = zstd::stream::write::Encoder::new(buffered, ZSTD_LEVEL).map_err(write_err)?;
        enc.include_checksum(true).map_err(write_err)?;
        let mut tar = RootArchive::new(enc);
        let mut count = 0u64;
        walker
            .walk(&mut |entry, content| {
                count += 1;
                if count.is_multiple_of(4096) {
                    crate::cancel::check()?;
                }
                tar.append(entry, content)
            })
            .map_err(|e| match e {
                WalkError::Visit(source) => write_err(source),
                other => root_err(other.into()),
            })?;
        let (enc, stats) = tar.finish().map_err(write_err)?;
        let mut buffered = enc.finish().map_err(write_err)?;
        buffered.flush().map_err(write_err)?;
        stats
    };
    let pending = file.finish(true).map_err(output_err)?;
    Ok(PendingNetboot {
        done: NodeNetboot {
            node: name.clone(),
            tftp_dir,
            archive: pending.dest().to_owned(),
            edited,
            stats,
        },
        tftp_partial,
        archive: pending,
    })
}

/// The operations that make a node's root fit an NFS root, and the paths they change.
fn root_edits(
    reader: &Ext4Reader,
    spec: &NetbootSpec,
    boot_id: &str,
    node: &str,
) -> Result<(Vec<FileOp>, Vec<String>), crate::fs::ext4::Ext4Error> {
    let mut ops = Vec::new();
    let mut edited = Vec::new();
    let old = reader.read_text("/etc/fstab")?.unwrap_or_default();
    let (server, root_path) = server::root_source(spec, node);
    let mount = fstab::boot_mount_point(&old);
    let new = fstab::nfs_fstab(
        &old,
        &format!("{server}:{root_path}"),
        &server::boot_source(spec, boot_id),
        mount.as_deref(),
    );
    ops.push(FileOp::Write {
        part: Part::Root,
        path: "/etc/fstab".into(),
        data: new.into_bytes(),
        owner: FileAttrs::root(0o644),
    });
    edited.push("/etc/fstab".to_owned());
    for unit in MASKED_UNITS {
        let mut present = false;
        for dir in UNIT_DIRS {
            present |= reader.kind(&format!("{dir}/{unit}"), false)?.is_some();
        }
        if present {
            let path = format!("/etc/systemd/system/{unit}");
            ops.push(FileOp::Symlink {
                path: path.clone(),
                target: "/dev/null".into(),
                uid: 0,
                gid: 0,
            });
            edited.push(path);
        }
    }
    Ok((ops, edited))
}

/// Writes `dnsmasq.conf`, `exports` and `README.md` under `out/netboot/` for `nodes`.
///
/// # Errors
/// A file could not be written.
pub fn write_server_files(
    out: &Path,
    spec: &NetbootSpec,
    cluster: &str,
    nodes: &[ServedNode],
) -> Result<Vec<PathBuf>, NetbootError> {
    let base = out.join(NETBOOT_DIR);
    std::fs::create_dir_all(&base).map_err(io_err(&base))?;
    let mut written = Vec::new();
    for (name, text) in [
        ("dnsmasq.conf", server::dnsmasq_conf(spec, cluster)),
        ("exports", server::exports(spec, nodes)),
        ("README.md", server::readme(spec, cluster, nodes)),
    ] {
        let path = base.join(name);
        let mut f = PartialFile::create(&path).map_err(|source| NetbootError::Output {
            node: String::new(),
            source,
        })?;
        f.file_mut()
            .write_all(text.as_bytes())
            .map_err(io_err(&path))?;
        written.push(f.commit(true).map_err(|source| NetbootError::Output {
            node: String::new(),
            source,
        })?);
    }
    Ok(written)
}
