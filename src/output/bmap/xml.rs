//! The bmap 2.0 XML text.
//!
//! Layout as `bmaptool create` writes it (`BmapCreate.py`): `ImageSize`, `BlockSize`,
//! `BlocksCount`, `MappedBlocksCount`, `ChecksumType`, `BmapFileChecksum`, then `BlockMap` with
//! one `<Range chksum="...">first-last</Range>` per range (a single number when first = last).
//! `BmapFileChecksum` is the sha256 of the whole file with its own value written as 64 ASCII
//! zeros (how `BmapCopy.py` verifies it), so it is computed over the text with zeros and then
//! patched in.

use std::fmt::Write as _;

use super::{BMAP_BLOCK_SIZE, BlockMap};
use crate::io::hashing::Sha256Digest;

/// The bmap format version written.
pub const BMAP_VERSION: &str = "2.0";

const ZEROS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The `.bmap` text of `map`, whose ranges have the sha256 digests `digests` (same order).
///
/// # Panics
/// If `digests` and `map.ranges` differ in length (a bug in the caller).
pub fn render(map: &BlockMap, digests: &[Sha256Digest]) -> String {
    assert_eq!(map.ranges.len(), digests.len(), "one digest per range");
    let mapped = map.mapped_blocks();
    let count = map.blocks_count();
    let percent = if count == 0 {
        0.0
    } else {
        // Display only; precision loss is irrelevant.
        #[allow(clippy::cast_precision_loss)]
        {
            mapped as f64 * 100.0 / count as f64
        }
    };
    let mut s = String::with_capacity(1024 + 100 * map.ranges.len());
    s.push_str("<?xml version=\"1.0\" ?>\n");
    s.push_str(
        "<!-- Block map of a disk image, written by piimage. Mapped blocks are those the\n     \
         partition table and the filesystems use (read from the FAT and the ext4 block\n     \
         bitmaps); the others are free space, which a flashing tool need not write. -->\n\n",
    );
    let _ = writeln!(s, "<bmap version=\"{BMAP_VERSION}\">");
    let _ = writeln!(s, "    <!-- Image size in bytes: {} -->", map.image_size);
    let _ = writeln!(s, "    <ImageSize> {} </ImageSize>\n", map.image_size);
    let _ = writeln!(s, "    <!-- Size of a block in bytes -->");
    let _ = writeln!(s, "    <BlockSize> {BMAP_BLOCK_SIZE} </BlockSize>\n");
    let _ = writeln!(s, "    <!-- Count of blocks in the image file -->");
    let _ = writeln!(s, "    <BlocksCount> {count} </BlocksCount>\n");
    let _ = writeln!(s, "    <!-- Count of mapped blocks: {percent:.1}% -->");
    let _ = writeln!(s, "    <MappedBlocksCount> {mapped} </MappedBlocksCount>\n");
    let _ = writeln!(s, "    <!-- Type of checksum used in this file -->");
    let _ = writeln!(s, "    <ChecksumType> sha256 </ChecksumType>\n");
    let _ = writeln!(
        s,
        "    <!-- The checksum of this file, computed with this value set to 64 zeros -->"
    );
    let _ = writeln!(s, "    <BmapFileChecksum> {ZEROS} </BmapFileChecksum>\n");
    let _ = writeln!(s, "    <BlockMap>");
    for (r, d) in map.ranges.iter().zip(digests) {
        if r.first == r.last {
            let _ = writeln!(s, "        <Range chksum=\"{d}\"> {} </Range>", r.first);
        } else {
            let _ = writeln!(
                s,
                "        <Range chksum=\"{d}\"> {}-{} </Range>",
                r.first, r.last
            );
        }
    }
    s.push_str("    </BlockMap>\n</bmap>\n");
    let file_digest = Sha256Digest::of(s.as_bytes()).to_string();
    s.replacen(ZEROS, &file_digest, 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::bmap::BlockRange;

    #[test]
    fn file_checksum_verifies_as_bmaptool_does() {
        let map = BlockMap {
            image_size: 10_000,
            ranges: vec![
                BlockRange { first: 0, last: 0 },
                BlockRange { first: 2, last: 2 },
            ],
            notes: vec![],
        };
        let d = [Sha256Digest::of(b"a"), Sha256Digest::of(b"b")];
        let text = render(&map, &d);
        assert!(text.contains("<BlocksCount> 3 </BlocksCount>"));
        assert!(text.contains("<MappedBlocksCount> 2 </MappedBlocksCount>"));
        assert!(text.contains(&format!("<Range chksum=\"{}\"> 2 </Range>", d[1])));
        // BmapCopy: find the stored digest, zero its first occurrence, hash, compare.
        let start = text.find("<BmapFileChecksum> ").unwrap() + 19;
        let stored = &text[start..start + 64];
        let zeroed = text.replacen(stored, ZEROS, 1);
        assert_eq!(Sha256Digest::of(zeroed.as_bytes()).to_string(), stored);
        assert_eq!(render(&map, &d), text, "reproducible");
    }
}
