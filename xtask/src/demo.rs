//! The demo base committed to the repository (`demo/`), so README's first command needs no
//! tool a fresh machine lacks: building the fixtures needs `sfdisk`, `mkfs.fat` and `mtools`.
//!
//! It is the Raspberry Pi OS Trixie fixture in its `.img.xz` form, byte for byte. A test
//! (`tests/integration/demo.rs`) checks that the committed file decodes to the raw image the
//! fixture builder makes now, so the two cannot drift; `cargo xtask demo` refreshes it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::fixtures::{Fixture, Format};

/// The fixture the demo base is.
pub const DEMO_FIXTURE: Fixture = Fixture::RaspiosTrixie;

/// The demo base's file name inside `demo/`.
pub const DEMO_FILE: &str = "raspios-trixie-demo.img.xz";

/// `<workspace>/demo/raspios-trixie-demo.img.xz`.
pub fn demo_path() -> PathBuf {
    workspace().join("demo").join(DEMO_FILE)
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Builds the fixtures if needed (`force`: rebuilds them) and copies the demo fixture's
/// `.img.xz` over [`demo_path`] (through a temporary file, so a failure leaves the old one).
pub fn refresh_demo(force: bool, progress: &(dyn Fn(&str) + Sync)) -> Result<PathBuf> {
    let outcome = crate::fixtures::build_fixtures(&crate::fixtures_dir(), force, progress)?;
    let from = outcome.dir.join(Format::Xz.file_name(DEMO_FIXTURE));
    let to = demo_path();
    let tmp = to.with_extension("xz.tmp");
    std::fs::copy(&from, &tmp)
        .with_context(|| format!("copying {} to {}", from.display(), tmp.display()))?;
    std::fs::rename(&tmp, &to).with_context(|| format!("renaming to {}", to.display()))?;
    Ok(to)
}
