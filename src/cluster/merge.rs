//! `piimage merge`: combines the output directories of several builds (the shards of a CI
//! matrix, or builds of several recipes) into one.
//!
//! The records of every input are read and checked against each other (one cluster, one seed,
//! each node built at most once, or identically); each built node's files are copied into the
//! output directory (a file system that supports it clones them) with their records, declared
//! records follow for nodes no input built, and the cluster files are rendered from the result
//! exactly as a build renders them. With a single input that is also the output, merge only
//! renders: the way to finish a directory into which CI downloaded every shard's files.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::record::{Located, RecordKind, RecordSet, check_files, record_path};
use super::{RenderOptions, render, write_whole};

/// What a merge did.
#[derive(Debug, Clone)]
pub struct MergeReport {
    /// The output directory.
    pub dir: PathBuf,
    /// Nodes with images in it.
    pub built: Vec<String>,
    /// Files copied into it.
    pub copied: Vec<PathBuf>,
    /// Cluster files written.
    pub cluster_files: Vec<PathBuf>,
}

/// The output directory a record file is in (`DIR/records/KIND/NODE.json`).
fn dir_of(record: &Path) -> &Path {
    record
        .ancestors()
        .nth(3)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."))
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Merges `inputs` into `out` (which may be one of them, and may already hold records of the
/// same cluster and seed).
///
/// # Errors
/// No input has records; records disagree on cluster or seed, or a node was built twice
/// differently; a recorded file is missing; copying or writing failed.
pub fn merge(inputs: &[PathBuf], out: &Path, opts: &RenderOptions) -> Result<MergeReport> {
    let mut set = RecordSet::default();
    for dir in inputs {
        if !dir.is_dir() {
            bail!("{}: not a directory", dir.display());
        }
        if RecordSet::read_dir(dir, "merge")?.is_empty() {
            bail!(
                "{}: no records (records/built/*.json): not an output directory of piimage \
                 build (made by a piimage without records? rebuild it)",
                dir.display()
            );
        }
        set.add_dir(dir, "merge")?;
    }
    // One writer at a time: the lock is held until the merge returns.
    let _lock = crate::output::DirLock::acquire(out, "merge")?;
    let existing = RecordSet::read_dir(out, "merge")?;
    if !inputs.iter().any(|d| same_dir(d, out)) {
        // What the output directory already holds must fit too.
        set.add_dir(out, "merge")?;
    }
    let built_records: Vec<Located> = set.built().cloned().collect();
    // Never replace files piimage did not write (`--out ~/.ssh` keeps its known_hosts).
    let to_copy: Vec<String> = built_records
        .iter()
        .filter(|l| !same_dir(dir_of(&l.path), out))
        .flat_map(|l| l.record.image.iter().flat_map(|i| &i.files))
        .map(|f| f.name.clone())
        .collect();
    if let Some(identity) = set.identity() {
        super::check_foreign(out, &existing, &identity.cluster, &to_copy)?;
    }
    crate::output::sweep_partials(out)?;
    let mut copied = Vec::new();
    let mut pending = Vec::new();
    let mut built = Vec::new();
    for located in &built_records {
        let src = dir_of(&located.path);
        check_files(src, located)?;
        built.push(located.record.node.name.clone());
        if same_dir(src, out) {
            continue;
        }
        for f in located.record.image.iter().flat_map(|i| &i.files) {
            let dest = out.join(&f.name);
            pending.push(copy_file(&src.join(&f.name), &dest, f.is_image())?);
            copied.push(dest);
        }
    }
    // Every copy is complete: the images appear together, then the records and the cluster
    // files rendered from them.
    crate::output::commit_pending(pending, true)?;
    for located in &built_records {
        if same_dir(dir_of(&located.path), out) {
            continue;
        }
        write_whole(
            &record_path(out, RecordKind::Built, &located.record.node.name),
            &located.record.to_json(),
        )?;
    }
    let declared: Vec<Located> = set.declared_only().cloned().collect();
    for located in &declared {
        if !same_dir(dir_of(&located.path), out) {
            write_whole(
                &record_path(out, RecordKind::Declared, &located.record.node.name),
                &located.record.to_json(),
            )?;
        }
    }
    let result = RecordSet::read_dir(out, "merge")?;
    let cluster_files = render(out, &result, opts)?;
    Ok(MergeReport {
        dir: out.to_owned(),
        built,
        copied,
        cluster_files,
    })
}

/// Copies `src` to `dest` through a partial file (the kernel copies or clones the data),
/// left under its temporary name. An image (host private keys, password hashes) is created
/// 0600, as `build` creates it.
fn copy_file(src: &Path, dest: &Path, private: bool) -> Result<crate::output::PendingFile> {
    let mut from =
        std::fs::File::open(src).with_context(|| format!("opening {}", src.display()))?;
    let mut to = if private {
        crate::output::PartialFile::create_private(dest)?
    } else {
        crate::output::PartialFile::create(dest)?
    };
    std::io::copy(&mut from, to.file_mut())
        .with_context(|| format!("copying {} to {}", src.display(), dest.display()))?;
    Ok(to.finish(true)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_paths_name_their_directory() {
        assert_eq!(
            dir_of(Path::new("/o/shard-1/records/built/w1.json")),
            Path::new("/o/shard-1")
        );
        assert_eq!(dir_of(Path::new("records/built/w1.json")), Path::new("."));
    }
}
