//! Build records: what each build wrote, one JSON file per node under `DIR/records/`.
//!
//! - `records/built/NODE.json`: a node whose images this directory holds: its cluster view
//!   ([`ClusterNode`]: names, address, login, host key) and every output file (name, kind, size,
//!   sha256), plus the uncompressed image's size and sha256 when they were computed.
//! - `records/declared/NODE.json`: a node of the recipe that this directory's builds did not
//!   make; it still belongs in `hosts`, `ssh_config` and the inventory, and in `known_hosts` when
//!   its host key derives from the seed.
//!
//! Every record names its cluster and a seed id (a one-way digest of the seed, `null` for an
//! unseeded build), so records of another cluster or seed are refused instead of mixed. The
//! format is in `docs/records.md`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::io::hashing::Sha256Digest;
use crate::plan::cluster::ClusterNode;

/// The directory of records inside an output directory.
pub const RECORDS_DIR: &str = "records";

/// The record format this version writes and reads.
pub const RECORD_FORMAT: u32 = 1;

/// Whether a record's node has images in the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RecordKind {
    /// Built here: the images are in the directory.
    Built,
    /// Named by a recipe, not built here.
    Declared,
}

impl RecordKind {
    /// The subdirectory of [`RECORDS_DIR`].
    #[must_use]
    pub const fn dir_name(self) -> &'static str {
        match self {
            Self::Built => "built",
            Self::Declared => "declared",
        }
    }
}

/// Which builds may share a directory: the same cluster, from the same seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `cluster.name`.
    pub cluster: String,
    /// [`seed_id`] of the recipe's seed; `None` for unseeded builds.
    pub seed_id: Option<String>,
}

/// A one-way, public name for `seed`: the first 16 bytes of
/// `sha256("piimage seed id v1\0" || seed)` in hex. It tells seeds apart without revealing them.
#[must_use]
pub fn seed_id(seed: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(b"piimage seed id v1\0");
    h.update(seed);
    hex::encode(&h.finalize()[..16])
}

/// One node's record. Unknown fields are ignored when reading: later versions may add fields
/// without changing [`RECORD_FORMAT`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// [`RECORD_FORMAT`].
    pub piimage_record: u32,
    /// `cluster.name`.
    pub cluster: String,
    /// [`seed_id`], or `None` for an unseeded build.
    pub seed_id: Option<String>,
    /// The node as the operator's machine sees it.
    pub node: ClusterNode,
    /// Its images, for a built node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageRecord>,
}

/// A built node's images.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// Size of the uncompressed image in bytes.
    pub size: u64,
    /// sha256 of the uncompressed image, when the build computed it (the Imager manifest
    /// needs it).
    pub sha256: Option<Sha256Digest>,
    /// `YYYY-MM-DD` of the recipe's epoch (the manifest's `release_date`).
    pub release_date: String,
    /// The files, in the order the build wrote them.
    pub files: Vec<FileRecord>,
}

/// One output file of a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// File name in the output directory.
    pub name: String,
    /// `img`, `img.zst`, `img.xz`, `img.gz` or `bmap`.
    pub kind: String,
    /// Size in bytes.
    pub size: u64,
    /// sha256 of its bytes.
    pub sha256: Sha256Digest,
}

impl FileRecord {
    /// True for an image (not a `.bmap`).
    #[must_use]
    pub fn is_image(&self) -> bool {
        self.kind != "bmap"
    }
}

impl NodeRecord {
    /// The record's identity.
    #[must_use]
    pub fn identity(&self) -> Identity {
        Identity {
            cluster: self.cluster.clone(),
            seed_id: self.seed_id.clone(),
        }
    }

    /// Pretty JSON ending in a newline; fields in declaration order, so deterministic.
    ///
    /// # Panics
    /// Never: every field serialises.
    #[must_use]
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("a NodeRecord always serialises");
        s.push('\n');
        s
    }
}

/// Why records could not be read or combined.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Reading a record or its directory failed.
    #[error("{}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A record is not valid JSON of the expected shape.
    #[error("{}: not a piimage record", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The error.
        source: serde_json::Error,
    },
    /// A record of another format version.
    #[error("{}: record format {found}, this piimage reads format {RECORD_FORMAT}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// Its `piimage_record`.
        found: u32,
    },
    /// The file name and the node name inside disagree.
    #[error("{}: the record is for node {name:?}, not for its file name", path.display())]
    Misnamed {
        /// The file.
        path: PathBuf,
        /// The node named inside.
        name: String,
    },
    /// Records of two clusters or seeds.
    #[error(
        "{}: {what}; this {context} is cluster {:?} {}. Build into another directory, or \
         remove the old records and images first",
        path.display(),
        expected.cluster,
        seed_text(expected.seed_id.as_deref())
    )]
    Mismatch {
        /// The record that disagrees.
        path: PathBuf,
        /// How it differs.
        what: String,
        /// `build` or `merge`.
        context: &'static str,
        /// What the build or the first record says.
        expected: Identity,
    },
    /// Two different built records of one node.
    #[error(
        "node {node} was built twice with different results ({} and {}): merge shards of one \
         build, each node built once",
        first.display(),
        second.display()
    )]
    Conflict {
        /// The node.
        node: String,
        /// One record.
        first: PathBuf,
        /// The other.
        second: PathBuf,
    },
    /// A record names a file that is missing or has another size.
    #[error(
        "{}: {} ({problem}); rebuild the node, or remove its record to drop it",
        record.display(),
        file.display()
    )]
    MissingFile {
        /// The record.
        record: PathBuf,
        /// The file it names.
        file: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

fn seed_text(seed: Option<&str>) -> String {
    match seed {
        Some(s) => format!("with seed id {s}"),
        None => "without a seed".to_owned(),
    }
}

/// Describes how `found` differs from `expected`, or `None` when they agree.
fn difference(found: &Identity, expected: &Identity) -> Option<String> {
    if found.cluster != expected.cluster {
        return Some(format!("a record of cluster {:?}", found.cluster));
    }
    if found.seed_id != expected.seed_id {
        return Some(format!(
            "a record of cluster {:?} built {}",
            found.cluster,
            seed_text(found.seed_id.as_deref())
        ));
    }
    None
}

/// A record and the file it was read from.
#[derive(Debug, Clone)]
pub struct Located {
    /// The record file.
    pub path: PathBuf,
    /// The record.
    pub record: NodeRecord,
}

/// The records of one or more output directories, by node name.
#[derive(Debug, Clone, Default)]
pub struct RecordSet {
    identity: Option<(Identity, PathBuf)>,
    built: BTreeMap<String, Located>,
    declared: BTreeMap<String, Located>,
}

impl RecordSet {
    /// Reads `dir/records/` (empty when there is none).
    ///
    /// # Errors
    /// A record cannot be read, or records disagree on cluster or seed.
    pub fn read_dir(dir: &Path, context: &'static str) -> Result<Self, RecordError> {
        let mut set = Self::default();
        set.add_dir(dir, context)?;
        Ok(set)
    }

    /// Adds the records of `dir/records/`: a built record already present for a node must be
    /// the same; a declared record is kept only for a node not yet declared.
    ///
    /// # Errors
    /// A record cannot be read, disagrees with the set's cluster or seed, or conflicts.
    pub fn add_dir(&mut self, dir: &Path, context: &'static str) -> Result<(), RecordError> {
        for kind in [RecordKind::Built, RecordKind::Declared] {
            for path in list(&dir.join(RECORDS_DIR).join(kind.dir_name()))? {
                let record = read_record(&path)?;
                self.add(kind, Located { path, record }, context)?;
            }
        }
        Ok(())
    }

    /// Adds one record.
    ///
    /// # Errors
    /// As [`Self::add_dir`].
    pub fn add(
        &mut self,
        kind: RecordKind,
        located: Located,
        context: &'static str,
    ) -> Result<(), RecordError> {
        let id = located.record.identity();
        match &self.identity {
            Some((expected, _)) => {
                if let Some(what) = difference(&id, expected) {
                    return Err(RecordError::Mismatch {
                        path: located.path,
                        what,
                        context,
                        expected: expected.clone(),
                    });
                }
            }
            None => self.identity = Some((id, located.path.clone())),
        }
        let name = located.record.node.name.clone();
        match kind {
            RecordKind::Built => {
                if let Some(old) = self.built.get(&name) {
                    if old.record != located.record {
                        return Err(RecordError::Conflict {
                            node: name,
                            first: old.path.clone(),
                            second: located.path,
                        });
                    }
                } else {
                    self.built.insert(name, located);
                }
            }
            RecordKind::Declared => {
                self.declared.entry(name).or_insert(located);
            }
        }
        Ok(())
    }

    /// Checks that a build or merge of `identity` may add to these records.
    ///
    /// # Errors
    /// [`RecordError::Mismatch`] naming the first record.
    pub fn check(&self, identity: &Identity, context: &'static str) -> Result<(), RecordError> {
        match &self.identity {
            Some((found, path)) => match difference(found, identity) {
                Some(what) => Err(RecordError::Mismatch {
                    path: path.clone(),
                    what,
                    context,
                    expected: identity.clone(),
                }),
                None => Ok(()),
            },
            None => Ok(()),
        }
    }

    /// The cluster and seed of the records, if there are any.
    #[must_use]
    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_ref().map(|(i, _)| i)
    }

    /// True when there is no record.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.built.is_empty() && self.declared.is_empty()
    }

    /// The built records, by node name.
    pub fn built(&self) -> impl Iterator<Item = &Located> {
        self.built.values()
    }

    /// The declared records of nodes that have no built record, by node name.
    pub fn declared_only(&self) -> impl Iterator<Item = &Located> {
        self.declared
            .values()
            .filter(|l| !self.built.contains_key(&l.record.node.name))
    }

    /// Every node: built records, else declared ones, sorted by node name (byte order), so the
    /// result does not depend on which build or shard came first.
    #[must_use]
    pub fn nodes(&self) -> Vec<&NodeRecord> {
        let mut all: Vec<&NodeRecord> = self
            .built()
            .chain(self.declared_only())
            .map(|l| &l.record)
            .collect();
        all.sort_by(|a, b| a.node.name.cmp(&b.node.name));
        all
    }
}

/// The `.json` files of `dir`, sorted; none when `dir` does not exist.
fn list(dir: &Path) -> Result<Vec<PathBuf>, RecordError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(RecordError::Io {
                path: dir.to_owned(),
                source,
            });
        }
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| RecordError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        // Partial files of an interrupted write are hidden; only complete records count.
        if name.ends_with(".json") && !name.starts_with('.') {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// Reads and checks one record file.
///
/// # Errors
/// Unreadable, malformed, another format, or named after another node.
pub fn read_record(path: &Path) -> Result<NodeRecord, RecordError> {
    let text = std::fs::read_to_string(path).map_err(|source| RecordError::Io {
        path: path.to_owned(),
        source,
    })?;
    let record: NodeRecord = serde_json::from_str(&text).map_err(|source| RecordError::Parse {
        path: path.to_owned(),
        source,
    })?;
    if record.piimage_record != RECORD_FORMAT {
        return Err(RecordError::Format {
            path: path.to_owned(),
            found: record.piimage_record,
        });
    }
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
    if stem.as_deref() != Some(record.node.name.as_str()) {
        return Err(RecordError::Misnamed {
            path: path.to_owned(),
            name: record.node.name,
        });
    }
    Ok(record)
}

/// The path of `name`'s record of `kind` in `dir`.
#[must_use]
pub fn record_path(dir: &Path, kind: RecordKind, name: &str) -> PathBuf {
    dir.join(RECORDS_DIR)
        .join(kind.dir_name())
        .join(format!("{name}.json"))
}

/// Checks that every file a built record names is in `dir` with its recorded size.
///
/// # Errors
/// [`RecordError::MissingFile`] for the first one that is not.
pub fn check_files(dir: &Path, located: &Located) -> Result<(), RecordError> {
    for f in located.record.image.iter().flat_map(|i| &i.files) {
        let file = dir.join(&f.name);
        let problem = match std::fs::metadata(&file) {
            Ok(m) if m.len() == f.size => continue,
            Ok(m) => format!("{} bytes, the record says {}", m.len(), f.size),
            Err(e) => e.to_string(),
        };
        return Err(RecordError::MissingFile {
            record: located.path.clone(),
            file,
            problem,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, cluster: &str, seed: Option<&str>, built: bool) -> NodeRecord {
        NodeRecord {
            piimage_record: RECORD_FORMAT,
            cluster: cluster.into(),
            seed_id: seed.map(Into::into),
            node: ClusterNode {
                name: name.into(),
                hostname: name.into(),
                fqdn: None,
                address: Some("10.0.0.1".into()),
                role: "worker".into(),
                host_key: None,
                user: Some("admin".into()),
                proxy_jump: None,
                identity_file: None,
                identities_only: false,
            },
            image: built.then(|| ImageRecord {
                size: 1024,
                sha256: None,
                release_date: "2024-01-01".into(),
                files: vec![FileRecord {
                    name: format!("{name}.img"),
                    kind: "img".into(),
                    size: 1024,
                    sha256: Sha256Digest::of(b""),
                }],
            }),
        }
    }

    fn at(path: &str, record: NodeRecord) -> Located {
        Located {
            path: PathBuf::from(path),
            record,
        }
    }

    #[test]
    fn seed_ids_differ_and_hide_the_seed() {
        let a = seed_id(b"s3cret");
        assert_eq!(a.len(), 32);
        assert_ne!(a, seed_id(b"s3creT"));
        assert!(!a.contains("s3cret"));
        assert_eq!(a, seed_id(b"s3cret"));
    }

    #[test]
    fn sets_refuse_other_clusters_seeds_and_conflicts() {
        let mut set = RecordSet::default();
        set.add(
            RecordKind::Built,
            at("a/w1.json", record("w1", "pico", Some("ab"), true)),
            "merge",
        )
        .unwrap();
        // The same built record twice is fine (the same shard given twice).
        set.add(
            RecordKind::Built,
            at("b/w1.json", record("w1", "pico", Some("ab"), true)),
            "merge",
        )
        .unwrap();
        let cases = [
            (
                "other cluster",
                record("w2", "nano", Some("ab"), true),
                "cluster \"nano\"",
            ),
            (
                "other seed",
                record("w2", "pico", Some("cd"), true),
                "with seed id cd",
            ),
            (
                "no seed",
                record("w2", "pico", None, true),
                "without a seed",
            ),
        ];
        for (name, r, want) in cases {
            let err = set
                .add(RecordKind::Built, at("c/w2.json", r), "merge")
                .unwrap_err();
            let text = err.to_string();
            assert!(text.starts_with("c/w2.json: "), "{name}: {text}");
            assert!(text.contains(want), "{name}: {text}");
        }
        let mut other = record("w1", "pico", Some("ab"), true);
        other.image.as_mut().unwrap().size = 2048;
        let err = set
            .add(RecordKind::Built, at("c/w1.json", other), "merge")
            .unwrap_err();
        assert!(matches!(err, RecordError::Conflict { .. }), "{err}");
        assert!(
            set.check(
                &Identity {
                    cluster: "pico".into(),
                    seed_id: None
                },
                "build"
            )
            .is_err()
        );
    }

    #[test]
    fn built_records_win_and_nodes_are_sorted() {
        let mut set = RecordSet::default();
        for (kind, r) in [
            (RecordKind::Declared, record("w2", "pico", None, false)),
            (RecordKind::Declared, record("w1", "pico", None, false)),
            (RecordKind::Built, record("w1", "pico", None, true)),
            (RecordKind::Declared, record("a0", "pico", None, false)),
        ] {
            set.add(kind, at("x.json", r), "build").unwrap();
        }
        let names: Vec<(&str, bool)> = set
            .nodes()
            .iter()
            .map(|r| (r.node.name.as_str(), r.image.is_some()))
            .collect();
        assert_eq!(names, [("a0", false), ("w1", true), ("w2", false)]);
    }

    #[test]
    fn json_round_trip_and_misnamed_files() {
        let dir = tempfile::tempdir().unwrap();
        let r = record("w1", "pico", Some("ab"), true);
        let p = dir.path().join("w1.json");
        std::fs::write(&p, r.to_json()).unwrap();
        assert_eq!(read_record(&p).unwrap(), r);
        let q = dir.path().join("w2.json");
        std::fs::write(&q, r.to_json()).unwrap();
        assert!(matches!(read_record(&q), Err(RecordError::Misnamed { .. })));
        std::fs::write(
            &q,
            r.to_json()
                .replace("\"piimage_record\": 1", "\"piimage_record\": 9"),
        )
        .unwrap();
        assert!(matches!(
            read_record(&q),
            Err(RecordError::Format { found: 9, .. })
        ));
    }
}
