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
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    if !inputs.iter().any(|d| same_dir(d, out)) {
        // What the output directory already holds must fit too.
        set.add_dir(out, "merge")?;
    }
    crate::output::sweep_partials(out)?;
    let mut copied = Vec::new();
    let mut built = Vec::new();
    let built_records: Vec<Located> = set.built().cloned().collect();
    for located in &built_records {
        let src = dir_of(&located.path);
        check_files(src, located)?;
        built.push(located.record.node.name.clone());
        if same_dir(src, out) {
            continue;
        }
        for f in located.record.image.iter().flat_map(|i| &i.files) {
            let dest = out.join(&f.name);
            copy_file(&src.join(&f.name), &dest)?;
            copied.push(dest);
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

/// Copies `src` to `dest` through a partial file (the kernel copies or clones the data).
fn copy_file(src: &Path, dest: &Path) -> Result<()> {
    let mut from =
        std::fs::File::open(src).with_context(|| format!("opening {}", src.display()))?;
    let mut to = crate::output::PartialFile::create(dest)?;
    std::io::copy(&mut from, to.file_mut())
        .with_context(|| format!("copying {} to {}", src.display(), dest.display()))?;
    to.commit(true)?;
    Ok(())
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
