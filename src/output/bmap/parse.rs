//! Reading a `.bmap` (format 2.x, sha256) back: what `piimage flash` writes and verifies.
//!
//! Only the elements a flasher needs are read: `ImageSize`, `BlockSize`, `ChecksumType`,
//! `BmapFileChecksum` and the `Range` elements of `BlockMap`, each `first-last` or a single
//! block, with its `chksum` attribute. The file checksum is checked the way [`super::xml`]
//! writes it: the sha256 of the text with the stored value replaced, at its first occurrence,
//! by 64 ASCII zeros. bmap 1.x files (sha1, or no per-range checksums) are refused: piimage
//! never writes them, and a range without a checksum cannot be verified.
//!
//! The parser is a small scanner over the text, not a general XML parser: the format is flat,
//! and entities, CDATA or namespaces never occur in it.

use crate::io::hashing::Sha256Digest;

use super::BlockRange;

/// The largest `.bmap` read: a map of millions of ranges is not a map.
pub const MAX_BMAP_LEN: u64 = 64 << 20;

/// A parsed block map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedBmap {
    /// Image size in bytes.
    pub image_size: u64,
    /// Block size in bytes.
    pub block_size: u64,
    /// The mapped ranges, in file order, each with its sha256.
    pub ranges: Vec<(BlockRange, Sha256Digest)>,
}

impl ParsedBmap {
    /// The bytes `[start, end)` of `range`, clipped to the image.
    #[must_use]
    pub fn byte_span(&self, range: &BlockRange) -> (u64, u64) {
        let start = range.first.saturating_mul(self.block_size);
        let end = range
            .last
            .saturating_add(1)
            .saturating_mul(self.block_size)
            .min(self.image_size);
        (start, end)
    }

    /// Bytes in mapped ranges.
    #[must_use]
    pub fn mapped_bytes(&self) -> u64 {
        self.ranges
            .iter()
            .map(|(r, _)| {
                let (s, e) = self.byte_span(r);
                e - s
            })
            .sum()
    }
}

/// Why a `.bmap` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BmapParseError {
    /// An element is missing.
    #[error("no <{0}> element")]
    Missing(&'static str),
    /// An element's value is not what it must be.
    #[error("line {line}: <{element}> {detail}")]
    Bad {
        /// The line (1-based).
        line: usize,
        /// The element.
        element: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// The file's own checksum does not match its text.
    #[error(
        "its BmapFileChecksum {stored} does not match the file (sha256 {actual}): the file was changed or damaged"
    )]
    FileChecksum {
        /// The stored value.
        stored: String,
        /// The sha256 computed.
        actual: String,
    },
}

/// Parses and verifies the text of a `.bmap`.
///
/// # Errors
/// See [`BmapParseError`]: missing or malformed elements, a checksum type other than sha256,
/// ranges out of order, overlapping or past the image, a wrong file checksum.
pub fn parse(text: &str) -> Result<ParsedBmap, BmapParseError> {
    let line_of = |pos: usize| text[..pos].matches('\n').count() + 1;
    let element = |name: &'static str| -> Result<(&str, usize), BmapParseError> {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        let start = text.find(&open).ok_or(BmapParseError::Missing(name))? + open.len();
        let len = text[start..]
            .find(&close)
            .ok_or(BmapParseError::Missing(name))?;
        Ok((text[start..start + len].trim(), start))
    };
    let number = |name: &'static str| -> Result<u64, BmapParseError> {
        let (value, at) = element(name)?;
        value.parse().map_err(|_| BmapParseError::Bad {
            line: line_of(at),
            element: name,
            detail: format!("{value:?} is not a number"),
        })
    };
    let image_size = number("ImageSize")?;
    let block_size = number("BlockSize")?;
    if block_size == 0 || block_size % 512 != 0 {
        let (_, at) = element("BlockSize")?;
        return Err(BmapParseError::Bad {
            line: line_of(at),
            element: "BlockSize",
            detail: format!("{block_size} is not a multiple of 512"),
        });
    }
    let (kind, at) = element("ChecksumType")?;
    if kind != "sha256" {
        return Err(BmapParseError::Bad {
            line: line_of(at),
            element: "ChecksumType",
            detail: format!("{kind:?} is not supported (only sha256, bmap format 2)"),
        });
    }
    let (stored, at) = element("BmapFileChecksum")?;
    let stored_digest: Sha256Digest = stored.parse().map_err(|_| BmapParseError::Bad {
        line: line_of(at),
        element: "BmapFileChecksum",
        detail: format!("{stored:?} is not a sha256"),
    })?;
    let zeroed = text.replacen(stored, &"0".repeat(64), 1);
    let actual = Sha256Digest::of(zeroed.as_bytes());
    if actual != stored_digest {
        return Err(BmapParseError::FileChecksum {
            stored: stored.to_owned(),
            actual: actual.to_string(),
        });
    }

    let map_start = text
        .find("<BlockMap>")
        .ok_or(BmapParseError::Missing("BlockMap"))?;
    let map_end = map_start
        + text[map_start..]
            .find("</BlockMap>")
            .ok_or(BmapParseError::Missing("BlockMap"))?;
    let blocks = image_size.div_ceil(block_size);
    let mut ranges: Vec<(BlockRange, Sha256Digest)> = Vec::new();
    let mut cursor = map_start;
    while let Some(found) = text[cursor..map_end].find("<Range") {
        let pos = cursor + found;
        let bad = |detail: String| BmapParseError::Bad {
            line: line_of(pos),
            element: "Range",
            detail,
        };
        let tail = &text[pos..map_end];
        let gt = tail.find('>').ok_or_else(|| bad("is not closed".into()))?;
        let attrs = &tail[..gt];
        let end = tail
            .find("</Range>")
            .ok_or_else(|| bad("has no </Range>".into()))?;
        let body = tail[gt + 1..end].trim();
        let sum = attrs
            .split_once("chksum=\"")
            .and_then(|(_, v)| v.split_once('"'))
            .map(|(v, _)| v)
            .ok_or_else(|| bad("has no chksum attribute".into()))?;
        let digest: Sha256Digest = sum
            .parse()
            .map_err(|_| bad(format!("chksum {sum:?} is not a sha256")))?;
        let (a, b) = body.split_once('-').unwrap_or((body, body));
        let parse = |s: &str| {
            s.trim()
                .parse::<u64>()
                .map_err(|_| bad(format!("{body:?} is not a block range")))
        };
        let range = BlockRange {
            first: parse(a)?,
            last: parse(b)?,
        };
        if range.first > range.last || range.last >= blocks {
            return Err(bad(format!(
                "{body} is outside the image's {blocks} blocks"
            )));
        }
        if let Some((prev, _)) = ranges.last()
            && range.first <= prev.last
        {
            return Err(bad(format!(
                "{body} overlaps or precedes the range before it"
            )));
        }
        cursor = pos + end + "</Range>".len();
        ranges.push((range, digest));
    }
    Ok(ParsedBmap {
        image_size,
        block_size,
        ranges,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::bmap::{BlockMap, xml};

    fn sample() -> (BlockMap, Vec<Sha256Digest>, String) {
        let map = BlockMap {
            image_size: 10 * 4096 + 100,
            ranges: vec![
                BlockRange { first: 0, last: 1 },
                BlockRange { first: 4, last: 4 },
                BlockRange { first: 9, last: 10 },
            ],
            notes: vec![],
        };
        let d = vec![
            Sha256Digest::of(b"a"),
            Sha256Digest::of(b"b"),
            Sha256Digest::of(b"c"),
        ];
        let text = xml::render(&map, &d);
        (map, d, text)
    }

    #[test]
    fn round_trip_of_what_piimage_writes() {
        let (map, d, text) = sample();
        let parsed = parse(&text).unwrap();
        assert_eq!(parsed.image_size, map.image_size);
        assert_eq!(parsed.block_size, 4096);
        let want: Vec<_> = map.ranges.iter().copied().zip(d).collect();
        assert_eq!(parsed.ranges, want);
        assert_eq!(
            parsed.byte_span(&map.ranges[2]),
            (9 * 4096, 10 * 4096 + 100)
        );
        assert_eq!(parsed.mapped_bytes(), 3 * 4096 + 100 + 4096);
    }

    #[test]
    fn refusals_table() {
        let (_, d, text) = sample();
        let edit = |from: &str, to: &str| {
            // Re-sign after the edit so only the intended fault remains.
            let t = text.replacen(from, to, 1);
            let start = t.find("<BmapFileChecksum> ").unwrap() + 19;
            let stored = t[start..start + 64].to_owned();
            let zeroed = t.replacen(&stored, &"0".repeat(64), 1);
            zeroed.replacen(
                &"0".repeat(64),
                &Sha256Digest::of(zeroed.as_bytes()).to_string(),
                1,
            )
        };
        let cases: Vec<(&str, String, &str)> = vec![
            (
                "tampered range",
                text.replacen("> 4 <", "> 5 <", 1),
                "does not match the file",
            ),
            ("sha1", edit("> sha256 <", "> sha1 <"), "only sha256"),
            (
                "past the end",
                edit("> 9-10 <", "> 9-11 <"),
                "outside the image's 11 blocks",
            ),
            (
                "out of order",
                edit("> 4 <", "> 0 <"),
                "overlaps or precedes",
            ),
            (
                "no checksum",
                edit(&format!("chksum=\"{}\"", d[1]), "x=\"\""),
                "no chksum attribute",
            ),
            (
                "no size",
                text.replacen("ImageSize", "Size", 2),
                "no <ImageSize>",
            ),
            (
                "bad block size",
                edit("> 4096 <", "> 1000 <"),
                "not a multiple of 512",
            ),
        ];
        for (name, input, want) in cases {
            let err = parse(&input).expect_err(name).to_string();
            assert!(err.contains(want), "case {name}: {err}");
        }
        assert!(parse(&edit("> 4 <", "> 4 <")).is_ok(), "re-signing works");
    }
}
