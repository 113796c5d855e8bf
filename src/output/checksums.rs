//! `SHA256SUMS`: the sha256 of every output, in GNU coreutils' format.
//!
//! One line per file, `HEX  NAME` (two spaces: text mode), sorted by name so the file is
//! reproducible; `sha256sum -c SHA256SUMS` in the output directory checks them. Names are plain
//! file names (node names are restricted to `[A-Za-z0-9._-]`, see [`super::NodeImage`]), so no
//! line needs coreutils' backslash escaping.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::OutputError;
use super::partial::PartialFile;
use super::spec::NodeOutputs;
use crate::io::hashing::Sha256Digest;

/// The file name.
pub const SHA256SUMS: &str = "SHA256SUMS";

/// The `SHA256SUMS` text for `(file name, digest)` pairs, sorted by name.
pub fn sha256sums_text(entries: &[(String, Sha256Digest)]) -> String {
    let mut sorted: Vec<&(String, Sha256Digest)> = entries.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    sorted
        .iter()
        .map(|(name, d)| format!("{d}  {name}\n"))
        .collect()
}

/// Writes `dir/SHA256SUMS` (atomically) for every file of `nodes`; returns its path.
///
/// # Errors
/// Writing failed; no `SHA256SUMS` stands then.
pub fn write_sha256sums(
    dir: &Path,
    nodes: &[NodeOutputs],
    sync: bool,
) -> Result<PathBuf, OutputError> {
    let entries: Vec<(String, Sha256Digest)> = nodes
        .iter()
        .flat_map(|n| &n.files)
        .map(|f| {
            let name = f
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (name, f.sha256)
        })
        .collect();
    let text = sha256sums_text(&entries);
    let dest = dir.join(SHA256SUMS);
    let mut partial = PartialFile::create(&dest)?;
    partial
        .file_mut()
        .write_all(text.as_bytes())
        .map_err(|e| OutputError::file("writing", &dest, e))?;
    partial.commit(sync)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_gnu_format() {
        let a = Sha256Digest::of(b"a");
        let b = Sha256Digest::of(b"b");
        let text = sha256sums_text(&[("n2.img.zst".into(), b), ("n1.img.zst".into(), a)]);
        assert_eq!(text, format!("{a}  n1.img.zst\n{b}  n2.img.zst\n"));
    }
}
