//! The cluster files of an output directory, rendered from the records its builds left there.
//!
//! Every build writes one [record](record) per node into `DIR/records/` and then renders
//! `SHA256SUMS`, `hosts`, `known_hosts`, `ssh_config`, `inventory.yaml`, `nodes.json` and the
//! Raspberry Pi Imager manifest from **all** records present, so builds of several recipes (or of single
//! nodes) into one directory add up instead of overwriting each other, and
//! [`merge`](merge::merge) combines shard directories into one. Nodes are listed by name, so
//! the files do not depend on the order of builds or shards.
//!
//! No file names a path of the building machine: the images are named by file name,
//! `ssh_config` finds `known_hosts` relatively and the inventory under `{{ inventory_dir }}`
//! (see [`crate::plan::cluster`]), and the manifest's URLs are relative references or under a
//! [`BaseUrl`]. [`localize`] writes, at the destination, the two files that need an absolute
//! path: `ssh_config.local` and `CLUSTER.local.rpi-imager-manifest`.

pub mod merge;
pub mod nodes_json;
pub mod record;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::io::hashing::Sha256Digest;
use crate::output::checksums::{SHA256SUMS, sha256sums_text};
use crate::output::manifest::{
    BaseUrl, FileDigest, ImageEntry, Manifest, arm64_devices, file_uri, image_url, manifest,
};
use crate::plan::cluster::{ClusterNode, hosts, inventory, known_hosts, ssh_config};
use record::{RecordSet, check_files};

/// The name of the `ssh_config` that [`localize`] writes.
pub const LOCAL_SSH_CONFIG: &str = "ssh_config.local";

/// How the cluster files are rendered.
#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    /// Where a served manifest's images are; `None`: relative references.
    pub base_url: Option<BaseUrl>,
}

/// The names of the files [`render`] and [`localize`] may write in a directory of `cluster`.
pub fn cluster_file_names(cluster: &str) -> Vec<String> {
    vec![
        SHA256SUMS.to_owned(),
        "hosts".to_owned(),
        "known_hosts".to_owned(),
        "ssh_config".to_owned(),
        "inventory.yaml".to_owned(),
        nodes_json::NODES_JSON.to_owned(),
        Manifest::file_name(cluster),
        LOCAL_SSH_CONFIG.to_owned(),
        Manifest::file_name(&format!("{cluster}.local")),
    ]
}

/// Refuses to replace, in `dir`, a file piimage did not write: `node_files` (the image and
/// bmap files a build is about to write) and the cluster files of `cluster`. A file is
/// piimage's when `set` (the records of `dir`) names it: a node file listed by a built record,
/// or any cluster file of a directory that has records. So an output directory pointed by
/// mistake at `~/.ssh` or `/etc` loses nothing (`known_hosts`, `hosts`).
///
/// # Errors
/// [`OutputError::Foreign`] naming every such file.
pub fn check_foreign(
    dir: &Path,
    set: &RecordSet,
    cluster: &str,
    node_files: &[String],
) -> Result<(), crate::output::OutputError> {
    let ours_by_record: std::collections::BTreeSet<&str> = set
        .built()
        .flat_map(|l| l.record.image.iter().flat_map(|i| &i.files))
        .map(|f| f.name.as_str())
        .collect();
    let cluster_files = cluster_file_names(cluster);
    let mut foreign: Vec<String> = Vec::new();
    let candidates = node_files
        .iter()
        .map(|n| (n, false))
        .chain(cluster_files.iter().map(|n| (n, true)));
    for (name, is_cluster_file) in candidates {
        if std::fs::symlink_metadata(dir.join(name)).is_err() {
            continue;
        }
        let ours = if is_cluster_file {
            !set.is_empty()
        } else {
            ours_by_record.contains(name.as_str())
        };
        if !ours && !foreign.contains(name) {
            foreign.push(name.clone());
        }
    }
    if foreign.is_empty() {
        Ok(())
    } else {
        Err(crate::output::OutputError::Foreign {
            dir: dir.to_owned(),
            names: foreign,
        })
    }
}

/// Writes the cluster files of `dir` from `set` (the records of `dir`); returns their paths.
///
/// # Errors
/// A built record names a file that is not in `dir` with its size, or writing failed.
pub fn render(dir: &Path, set: &RecordSet, opts: &RenderOptions) -> Result<Vec<PathBuf>> {
    for located in set.built() {
        check_files(dir, located)?;
    }
    let nodes: Vec<ClusterNode> = set.nodes().into_iter().map(|r| r.node.clone()).collect();
    let sums: Vec<(String, Sha256Digest)> = set
        .built()
        .flat_map(|l| l.record.image.iter().flat_map(|i| &i.files))
        .map(|f| (f.name.clone(), f.sha256))
        .collect();
    let mut files = vec![
        (SHA256SUMS.to_owned(), sha256sums_text(&sums)),
        ("hosts".to_owned(), hosts(&nodes)),
        ("known_hosts".to_owned(), known_hosts(&nodes)),
        ("ssh_config".to_owned(), ssh_config(&nodes, "known_hosts")),
        ("inventory.yaml".to_owned(), inventory(&nodes)),
    ];
    if let Some(identity) = set.identity() {
        files.push((
            nodes_json::NODES_JSON.to_owned(),
            nodes_json::nodes_json(&identity.cluster, &set.nodes()),
        ));
    }
    if let Some((name, text)) = imager_manifest(set, |f| image_url(opts.base_url.as_ref(), f)) {
        files.push((name, text));
    }
    files
        .into_iter()
        .map(|(name, text)| write_whole(&dir.join(name), &text))
        .collect()
}

/// The manifest's file name and text, if any built record has the uncompressed image's sha256
/// (builds compute it only when `output.imager_manifest` asks for a manifest). `url` maps a file
/// name of the directory to its URL.
fn imager_manifest(set: &RecordSet, url: impl Fn(&str) -> String) -> Option<(String, String)> {
    let cluster = &set.identity()?.cluster;
    let mut entries = Vec::new();
    for located in set.built() {
        let r = &located.record;
        let Some(image) = &r.image else { continue };
        let Some(extract_sha) = image.sha256 else {
            continue;
        };
        // Imager reads .xz, .gz, .zst and raw; offer the smallest download.
        let Some(file) = image
            .files
            .iter()
            .filter(|f| f.is_image())
            .min_by_key(|f| f.size)
        else {
            continue;
        };
        let mut entry = ImageEntry::customised(
            format!("{cluster} {} (piimage)", r.node.name),
            url(&file.name),
            FileDigest {
                size: file.size,
                sha256: file.sha256.to_string(),
            },
            FileDigest {
                size: image.size,
                sha256: extract_sha.to_string(),
            },
            image.release_date.clone(),
        );
        if let Some(b) = image.files.iter().find(|f| !f.is_image()) {
            entry = entry.with_bmap(url(&b.name));
        }
        entries.push(entry);
    }
    if entries.is_empty() {
        return None;
    }
    let text = manifest(&entries, &arm64_devices()).to_json();
    Some((Manifest::file_name(cluster), text))
}

/// Writes, in `dir` as it is now, `ssh_config.local` (naming `DIR/known_hosts` by its absolute
/// path, so `ssh -F DIR/ssh_config.local NODE` works from any directory and the file can be
/// `Include`d from `~/.ssh/config`) and, when the directory has a manifest's worth of records,
/// `CLUSTER.local.rpi-imager-manifest` with `file://` URLs of its images (what Raspberry Pi
/// Imager opens from local disk). Run it again after moving the directory.
///
/// # Errors
/// No records in `dir`, a record names a missing file, or a path `ssh_config` cannot hold.
pub fn localize(dir: &Path) -> Result<Vec<PathBuf>> {
    let abs = std::path::absolute(dir).with_context(|| dir.display().to_string())?;
    if !abs.is_dir() {
        bail!("{}: not a directory", abs.display());
    }
    let _lock = crate::output::DirLock::acquire(&abs, "localize")?;
    let set = RecordSet::read_dir(&abs, "localize")?;
    let Some(identity) = set.identity() else {
        bail!(
            "{}: no records (records/built/*.json): not an output directory of piimage build \
             or merge",
            abs.display()
        );
    };
    for located in set.built() {
        check_files(&abs, located)?;
    }
    let kh = abs.join("known_hosts");
    let kh_text = kh
        .to_str()
        .with_context(|| format!("{}: not UTF-8, ssh_config cannot name it", kh.display()))?;
    if kh_text.contains(['"', '\n']) || kh_text.contains("${") {
        bail!(
            "{}: ssh_config cannot name a path with `\"`, a newline or `${{`; move the directory",
            kh.display()
        );
    }
    let nodes: Vec<ClusterNode> = set.nodes().into_iter().map(|r| r.node.clone()).collect();
    let mut out = vec![write_whole(
        &abs.join(LOCAL_SSH_CONFIG),
        &ssh_config(&nodes, &kh_text.replace('%', "%%")),
    )?];
    let url = |name: &str| file_uri(&abs.join(name)).unwrap_or_default();
    if let Some((_, text)) = imager_manifest(&set, url) {
        let name = Manifest::file_name(&format!("{}.local", identity.cluster));
        out.push(write_whole(&abs.join(name), &text)?);
    }
    Ok(out)
}

/// Writes `text` to `path` through a partial file renamed into place when complete, as every
/// output is.
pub(crate) fn write_whole(path: &Path, text: &str) -> Result<PathBuf> {
    use std::io::Write as _;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut f = crate::output::PartialFile::create(path)?;
    f.file_mut()
        .write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(f.commit(true)?)
}
