//! The gate, from outside: filesystems made by mke2fs with an unsupported feature, or left
//! unclean by debugfs, are refused by name, and nothing is written to them.

use std::path::Path;

use piimage::fs::ext4::gate::GateError;
use piimage::fs::ext4::rootfs::RootFsError;

use super::open_result;
use crate::support::sh;

fn small_fs(dir: &Path, features: &str, extra: &str) -> std::path::PathBuf {
    sh(
        dir,
        &format!(
            "rm -f fs.img; truncate -s 32M fs.img
             mke2fs -q -F -t ext4 -T default -b 4096 -O {features} fs.img >/dev/null 2>&1
             {extra}"
        ),
    );
    dir.join("fs.img")
}

#[test]
fn unsupported_features_are_refused_by_name() {
    let dir = crate::support::tmp();
    for (features, name) in [
        ("inline_data", "inline_data"),
        ("casefold", "casefold"),
        ("encrypt", "encrypt"),
        ("quota", "quota"),
        ("project,quota", "quota"),
        ("bigalloc", "bigalloc"),
        ("meta_bg,^resize_inode", "meta_bg"),
        ("large_dir", "large_dir"),
        ("mmp", "mmp"),
        ("verity", "verity"),
        ("stable_inodes", "stable_inodes"),
        ("fast_commit", "fast_commit"),
    ] {
        let img = small_fs(dir.path(), features, "");
        let before = std::fs::read(&img).unwrap();
        let err = open_result(&img, 32 << 20, 0).unwrap_err();
        match &err {
            RootFsError::Refused(GateError::UnsupportedFeature { feature }) => {
                assert_eq!(feature, name, "{features}");
            }
            other => panic!("{features}: {other:?}"),
        }
        assert!(err.to_string().contains(&format!("`{name}`")), "{err}");
        assert!(
            std::fs::read(&img).unwrap() == before,
            "{features}: refused but written"
        );
    }
}

#[test]
fn unclean_filesystems_are_refused() {
    let dir = crate::support::tmp();
    let journal_tx = "printf 'jo\\njw -b 100 /dev/null\\njc\\n' > jw.cmd; \
                      debugfs -w -f jw.cmd fs.img >/dev/null 2>&1";
    let ssv = |field: &str| format!("debugfs -w -R 'ssv {field}' fs.img >/dev/null 2>&1");
    let cases = [
        ("needs_recovery", journal_tx.to_owned()),
        (
            "journal dirty",
            format!("{journal_tx}; debugfs -w -R 'feature -needs_recovery' fs.img >/dev/null 2>&1"),
        ),
        ("not clean", ssv("state 0")),
        ("errors", ssv("state 3")),
        ("orphans", ssv("last_orphan 12")),
        ("clean control", ssv("state 1")),
    ];
    for (what, script) in cases {
        let img = small_fs(
            dir.path(),
            "^64bit,^huge_file,orphan_file,metadata_csum_seed",
            &script,
        );
        let res = open_result(&img, 32 << 20, 0);
        let ok = matches!(
            (what, &res),
            (
                "needs_recovery",
                Err(RootFsError::Refused(GateError::NeedsRecovery))
            ) | (
                "journal dirty",
                Err(RootFsError::Refused(GateError::JournalDirty { .. }))
            ) | ("not clean", Err(RootFsError::Refused(GateError::NotClean)))
                | ("errors", Err(RootFsError::Refused(GateError::HasErrors)))
                | (
                    "orphans",
                    Err(RootFsError::Refused(GateError::Orphans { .. }))
                )
                | ("clean control", Ok(_))
        );
        assert!(ok, "{what}: {:?}", res.map(|_| ()));
        if let Err(e) = res {
            assert!(e.to_string().contains("e2fsck -f"), "{e}");
        }
    }
}
