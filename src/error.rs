//! Turning an error into text. Every error type of the library follows one rule, the one of
//! `std` and `anyhow`: a variant that returns a cause from [`Error::source`] does not print
//! it; its message carries only what this layer knows (a path, a partition, an inode, a
//! block, a recipe field). The whole story is the chain, so an error becomes text through
//! [`chain`], never through `to_string()` alone (which would drop the causes).
//!
//! See `docs/errors.md`.

use std::error::Error;

/// `err` and its causes on one line, outermost first: `outer: cause: root cause`. Each
/// message appears once, as it is.
#[must_use]
pub fn chain(err: &dyn Error) -> String {
    let mut out = err.to_string();
    let mut next = err.source();
    while let Some(cause) = next {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        next = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::path::PathBuf;

    use super::*;
    use crate::cluster::record::RecordError;
    use crate::disk::PartitionError;
    use crate::disk::source::SourceError;
    use crate::eeprom::{CardError, EepromError};
    use crate::flash::FlashError;
    use crate::fs::ext4::Ext4Error;
    use crate::fs::ext4::gate::GateError;
    use crate::fs::ext4::journal::JournalReadError;
    use crate::fs::ext4::rootfs::RootFsError;
    use crate::fs::ext4::walk::WalkError;
    use crate::fs::fat::FatError;
    use crate::fs::path::PathError;
    use crate::image::ImageError;
    use crate::io::pin::PinError;
    use crate::io::sniff::UnsupportedFormat;
    use crate::netboot::NetbootError;
    use crate::ops::Part;
    use crate::output::OutputError;
    use crate::output::bmap::parse::BmapParseError;
    use crate::pipeline::NodeError;
    use crate::pipeline::apply::{ApplyError, ApplyErrorKind};
    use crate::pipeline::grow::GrowError;
    use crate::plan::profile::ProfileError;
    use crate::plan::{NodeConflict, PlanError};
    use crate::secrets::hostkey::KeyError;

    /// The root cause of every sample: a text no layer's own message contains.
    const ROOT: &str = "the disk caught fire";

    fn io() -> io::Error {
        io::Error::other(ROOT)
    }

    fn path() -> PathBuf {
        PathBuf::from("/tmp/base.img")
    }

    fn ext4() -> Ext4Error {
        Ext4Error::Io(io())
    }

    fn backend() -> RootFsError {
        RootFsError::Backend {
            op: "write",
            path: "/etc/hostname".into(),
            source: Box::new(io()),
        }
    }

    fn apply(kind: ApplyErrorKind) -> ApplyError {
        ApplyError {
            index: 3,
            part: Part::Root,
            path: "/etc/hostname".into(),
            kind,
        }
    }

    fn node_apply() -> NodeError {
        NodeError::Apply {
            partition_name: Part::Root,
            partition: 2,
            source: apply(ApplyErrorKind::Root(backend())),
        }
    }

    fn output() -> OutputError {
        OutputError::File {
            what: "writing",
            path: path(),
            source: io(),
        }
    }

    /// One value of every variant that has a cause, each named.
    fn samples() -> Vec<(&'static str, Box<dyn Error>)> {
        let json = serde_json::from_str::<u8>("x").unwrap_err();
        vec![
            (
                "RecordError::Io",
                Box::new(RecordError::Io {
                    path: path(),
                    source: io(),
                }),
            ),
            (
                "RecordError::Parse",
                Box::new(RecordError::Parse {
                    path: path(),
                    source: json,
                }),
            ),
            ("PartitionError::Io", Box::new(PartitionError::Io(io()))),
            (
                "SourceError::Io",
                Box::new(SourceError::Io {
                    op: "reading",
                    path: path(),
                    source: io(),
                }),
            ),
            (
                "CardError::Read",
                Box::new(CardError::Read {
                    path: "/lib/firmware".into(),
                    source: ext4(),
                }),
            ),
            (
                "CardError::Image",
                Box::new(CardError::Image {
                    path: "/lib/firmware/pieeprom.bin".into(),
                    source: EepromError::NoConfig,
                }),
            ),
            (
                "CardError::Fat",
                Box::new(CardError::Fat(FatError::Io(io()))),
            ),
            (
                "FlashError::Image",
                Box::new(FlashError::Image {
                    what: "reading",
                    path: path(),
                    source: io(),
                }),
            ),
            (
                "FlashError::Format",
                Box::new(FlashError::Format {
                    path: path(),
                    source: UnsupportedFormat::Zip,
                }),
            ),
            (
                "FlashError::Bmap",
                Box::new(FlashError::Bmap {
                    path: path(),
                    source: BmapParseError::Missing("BlockSize"),
                }),
            ),
            (
                "FlashError::BmapRead",
                Box::new(FlashError::BmapRead {
                    path: path(),
                    source: io(),
                }),
            ),
            (
                "FlashError::Target",
                Box::new(FlashError::Target {
                    what: "opening",
                    path: path(),
                    source: io(),
                }),
            ),
            (
                "FlashError::Sysfs",
                Box::new(FlashError::Sysfs {
                    path: path(),
                    source: io(),
                }),
            ),
            (
                "FlashError::Log",
                Box::new(FlashError::Log {
                    what: "writing",
                    path: path(),
                    source: io(),
                }),
            ),
            ("JournalReadError::Io", Box::new(JournalReadError::Io(io()))),
            (
                "GateError::Superblock",
                Box::new(GateError::Superblock(ext4())),
            ),
            (
                "GateError::Journal",
                Box::new(GateError::Journal(JournalReadError::Io(io()))),
            ),
            ("RootFsError::Backend", Box::new(backend())),
            (
                "RootFsError::Refused",
                Box::new(RootFsError::Refused(GateError::Superblock(ext4()))),
            ),
            ("Ext4Error::Io", Box::new(ext4())),
            ("WalkError::Visit", Box::new(WalkError::Visit(io()))),
            ("FatError::Io", Box::new(FatError::Io(io()))),
            (
                "ImageError::Open",
                Box::new(ImageError::Open {
                    path: path(),
                    source: io(),
                }),
            ),
            (
                "ImageError::Pin",
                Box::new(ImageError::Pin(PinError::Io {
                    path: path(),
                    source: io(),
                })),
            ),
            (
                "ImageError::Partition",
                Box::new(ImageError::Partition(PartitionError::Io(io()))),
            ),
            (
                "ImageError::Fat",
                Box::new(ImageError::Fat {
                    partition: 1,
                    source: FatError::Io(io()),
                }),
            ),
            (
                "ImageError::Ext4",
                Box::new(ImageError::Ext4 {
                    partition: 2,
                    source: ext4(),
                }),
            ),
            (
                "ImageError::Io",
                Box::new(ImageError::Io {
                    partition: 2,
                    source: io(),
                }),
            ),
            (
                "PinError::Io",
                Box::new(PinError::Io {
                    path: path(),
                    source: io(),
                }),
            ),
            (
                "NetbootError::Boot",
                Box::new(NetbootError::Boot {
                    node: "n1".into(),
                    partition: 1,
                    source: FatError::Io(io()),
                }),
            ),
            (
                "NetbootError::Root",
                Box::new(NetbootError::Root {
                    node: "n1".into(),
                    partition: 2,
                    source: Box::new(ext4()),
                }),
            ),
            (
                "NetbootError::Edit",
                Box::new(NetbootError::Edit {
                    node: "n1".into(),
                    source: Box::new(node_apply()),
                }),
            ),
            (
                "NetbootError::Output",
                Box::new(NetbootError::Output {
                    node: "n1".into(),
                    source: output(),
                }),
            ),
            (
                "NetbootError::Io",
                Box::new(NetbootError::Io {
                    path: path(),
                    source: io(),
                }),
            ),
            ("OutputError::File", Box::new(output())),
            (
                "OutputError::Read",
                Box::new(OutputError::Read {
                    offset: 512,
                    source: io(),
                }),
            ),
            (
                "OutputError::Compress",
                Box::new(OutputError::Compress {
                    format: crate::output::ImageFormat::Zstd,
                    offset: 512,
                    source: io(),
                }),
            ),
            ("OutputError::Cache", Box::new(OutputError::Cache(io()))),
            ("OutputError::Bmap", Box::new(OutputError::Bmap(io()))),
            (
                "OutputError::Interrupted",
                Box::new(OutputError::Interrupted(io())),
            ),
            (
                "ApplyErrorKind::Path",
                Box::new(apply(ApplyErrorKind::Path(PathError::Loop {
                    path: "/a".into(),
                }))),
            ),
            (
                "ApplyErrorKind::Root",
                Box::new(apply(ApplyErrorKind::Root(backend()))),
            ),
            (
                "ApplyErrorKind::Boot",
                Box::new(apply(ApplyErrorKind::Boot(FatError::Io(io())))),
            ),
            ("GrowError::Io", Box::new(GrowError::Io(io()))),
            (
                "GrowError::Ext4",
                Box::new(GrowError::Ext4 {
                    partition: 2,
                    source: ext4(),
                }),
            ),
            (
                "NodeError::Partition",
                Box::new(NodeError::Partition(PartitionError::Io(io()))),
            ),
            (
                "NodeError::Io",
                Box::new(NodeError::Io {
                    partition: 2,
                    source: io(),
                }),
            ),
            (
                "NodeError::Root",
                Box::new(NodeError::Root {
                    partition: 2,
                    source: backend(),
                }),
            ),
            (
                "NodeError::Boot",
                Box::new(NodeError::Boot {
                    partition: 1,
                    source: FatError::Io(io()),
                }),
            ),
            ("NodeError::Apply", Box::new(node_apply())),
            ("ProfileError", Box::new(ProfileError::from(ext4()))),
            (
                "PlanError::Node(NodeConflict::OverlayRead)",
                Box::new(PlanError::node(
                    "worker-1",
                    NodeConflict::OverlayRead {
                        path: path(),
                        source: io(),
                    },
                )),
            ),
            (
                "PlanError::Node(NodeConflict::HostKey)",
                Box::new(PlanError::node(
                    "worker-1",
                    NodeConflict::HostKey(KeyError::new(ROOT.into())),
                )),
            ),
            (
                "PlanError::SecretKey",
                Box::new(PlanError::SecretKey {
                    name: "cluster_key".into(),
                    source: KeyError::new(ROOT.into()),
                }),
            ),
        ]
    }

    #[test]
    fn no_error_prints_the_cause_it_returns() {
        for (name, err) in samples() {
            let mut level: &dyn Error = err.as_ref();
            while let Some(cause) = level.source() {
                let (outer, inner) = (level.to_string(), cause.to_string());
                assert!(
                    !outer.contains(&inner),
                    "{name}: {outer:?} prints its cause {inner:?}"
                );
                level = cause;
            }
        }
    }

    #[test]
    fn the_chain_holds_each_message_once() {
        for (name, err) in samples() {
            let text = chain(err.as_ref());
            let mut deepest: &dyn Error = err.as_ref();
            while let Some(cause) = deepest.source() {
                deepest = cause;
            }
            let root = deepest.to_string();
            assert!(text.ends_with(&root), "{name}: {text}");
            assert_eq!(text.matches(&root).count(), 1, "{name}: {text}");
            assert!(text.starts_with(&err.to_string()), "{name}: {text}");
        }
        let text = chain(&node_apply());
        assert_eq!(
            text,
            format!(
                "root partition (p2): operation 3 (root:/etc/hostname): write /etc/hostname: \
                 ext4 writer error: {ROOT}"
            )
        );
    }
}
