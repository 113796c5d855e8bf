//! `piimage flash`: writing built node images onto SD cards, USB disks and eMMC modules.
//!
//! - [`target`]: what the target is (a block device, a stand-in under a simulated root, or a
//!   regular file) and the safety checks run before anything is written;
//! - [`write`]: decoding any output format while streaming it onto the target, only the
//!   ranges the `.bmap` maps, and reading them back to verify;
//! - [`batch`]: many cards in a row, each written when a new removable device appears, with a
//!   log of which node went onto which card.
//!
//! The library never prints and never asks: the CLI shows devices, asks for confirmation and
//! draws progress through [`crate::progress::Progress`] and [`batch::BatchEvents`].
//! The design and its limits are described in `docs/flashing.md`.

pub mod batch;
mod error;
pub mod target;
pub mod write;

use std::path::{Path, PathBuf};

pub use error::FlashError;
pub use target::{BlockDevice, Checks, SysRoot, Target};
pub use write::{FlashReport, open_target, write_and_verify};

use crate::output::bmap::parse::{MAX_BMAP_LEN, ParsedBmap, parse};

/// The node an image file belongs to: its name up to `.img` (`worker-01.img.zst` ->
/// `worker-01`), else the file name without its last extension.
#[must_use]
pub fn node_name(image: &Path) -> String {
    let name = image
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(i) = name.rfind(".img") {
        return name[..i].to_owned();
    }
    match name.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem.to_owned(),
        _ => name,
    }
}

/// The `.bmap` beside `image` as `build` names it (`NODE.img.bmap`), if it exists.
#[must_use]
pub fn bmap_beside(image: &Path) -> Option<PathBuf> {
    let path = image.with_file_name(format!("{}.img.bmap", node_name(image)));
    path.is_file().then_some(path)
}

/// Reads and verifies a `.bmap`.
///
/// # Errors
/// It cannot be read, is too large, or is invalid (see [`parse`]).
pub fn load_bmap(path: &Path) -> Result<ParsedBmap, FlashError> {
    let text = crate::io::bounded::read_to_string(path, MAX_BMAP_LEN).map_err(|source| {
        FlashError::BmapRead {
            path: path.to_owned(),
            source,
        }
    })?;
    parse(&text).map_err(|source| FlashError::Bmap {
        path: path.to_owned(),
        source,
    })
}

/// The image's decoded size when it is known before decoding: the map's `ImageSize`, or the
/// length of a raw image. (A compressed image without a map is measured while it is written:
/// running past the device's end stops the write.)
///
/// # Errors
/// The image cannot be read.
pub fn known_size(image: &Path, bmap: Option<&ParsedBmap>) -> Result<Option<u64>, FlashError> {
    if let Some(map) = bmap {
        return Ok(Some(map.image_size));
    }
    if write::image_format(image)?.is_compressed() {
        return Ok(None);
    }
    let len = std::fs::metadata(image)
        .map_err(|source| FlashError::Image {
            what: "examining",
            path: image.to_owned(),
            source,
        })?
        .len();
    Ok(Some(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_name_table() {
        for (file, node) in [
            ("worker-01.img", "worker-01"),
            ("worker-01.img.zst", "worker-01"),
            ("/out/cp.img.xz", "cp"),
            ("disk.raw", "disk"),
            ("plain", "plain"),
        ] {
            assert_eq!(node_name(Path::new(file)), node, "{file}");
        }
    }
}
