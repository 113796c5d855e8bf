//! Compression detection by magic bytes, never by file name.
//!
//! Supported: xz (`FD 37 7A 58 5A 00`, <https://tukaani.org/xz/xz-file-format.txt> §2.1.1.1),
//! gzip (`1F 8B`, RFC 1952 §2.3.1), zstd (`28 B5 2F FD`, RFC 8878 §3.1.1), and anything else is
//! taken as a raw image (whether it really is a disk image is checked by the partition-table code).
//!
//! Recognised but refused, each with a message that says what to do instead: zip (`PK\3\4`,
//! `PK\5\6`, `PK\7\8`), bzip2 (`BZh1`..`BZh9`), lz4 frames (`04 22 4D 18`) and 7z
//! (`37 7A BC AF 27 1C`).
//!
//! Rejected design: single-entry zip support. Official Raspberry Pi OS and Ubuntu images have
//! been `.img.xz` since 2020; only old Raspbian releases came as `.zip`, and zip needs random
//! access to the central directory (it cannot be decoded while streaming a download). Telling
//! the user to run `unzip` costs less than another dependency.

use std::fmt;

/// The number of leading bytes [`sniff`] looks at. Fewer is fine (short input is raw).
pub const SNIFF_LEN: usize = 6;

/// A compression format piimage can decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Not compressed: a raw disk image.
    None,
    /// xz (LZMA2), possibly multi-block and multi-stream.
    Xz,
    /// gzip, possibly several members.
    Gzip,
    /// Zstandard, possibly several frames.
    Zstd,
}

impl Compression {
    /// Every variant, raw first.
    pub const ALL: [Compression; 4] = [
        Compression::None,
        Compression::Xz,
        Compression::Gzip,
        Compression::Zstd,
    ];

    /// The conventional file-name extension, without the dot (`img` for raw).
    #[must_use]
    pub fn extension(self) -> &'static str {
        match self {
            Compression::None => "img",
            Compression::Xz => "xz",
            Compression::Gzip => "gz",
            Compression::Zstd => "zst",
        }
    }

    /// Whether data in this format must be decoded before use.
    #[must_use]
    pub fn is_compressed(self) -> bool {
        self != Compression::None
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::None => "raw",
            Compression::Xz => "xz",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        })
    }
}

/// Serialised as its `Display` name: `raw`, `xz`, `gzip`, `zstd`.
impl serde::Serialize for Compression {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A recognised container or compression format that piimage refuses.
///
/// The `Display` text is a complete sentence telling the user what to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum UnsupportedFormat {
    /// A zip archive.
    #[error("zip archives are not supported; extract the .img first (unzip FILE)")]
    Zip,
    /// bzip2.
    #[error("bzip2-compressed images are not supported; decompress it first (bunzip2 -k FILE)")]
    Bzip2,
    /// An lz4 frame.
    #[error("lz4-compressed images are not supported; decompress it first (lz4 -d FILE)")]
    Lz4,
    /// A 7z archive.
    #[error("7z archives are not supported; extract the .img first (7z x FILE)")]
    SevenZip,
}

/// Detects the format of data starting with `header` (give it at least [`SNIFF_LEN`] bytes when
/// the data is that long).
///
/// # Errors
/// [`UnsupportedFormat`] when the magic bytes are those of a format piimage refuses.
pub fn sniff(header: &[u8]) -> Result<Compression, UnsupportedFormat> {
    const XZ: &[u8] = &[0xFD, b'7', b'z', b'X', b'Z', 0x00];
    const GZIP: &[u8] = &[0x1F, 0x8B];
    const ZSTD: &[u8] = &[0x28, 0xB5, 0x2F, 0xFD];
    const LZ4: &[u8] = &[0x04, 0x22, 0x4D, 0x18];
    const SEVEN_ZIP: &[u8] = &[b'7', b'z', 0xBC, 0xAF, 0x27, 0x1C];
    const ZIP: [&[u8]; 3] = [b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"];

    if header.starts_with(XZ) {
        Ok(Compression::Xz)
    } else if header.starts_with(GZIP) {
        Ok(Compression::Gzip)
    } else if header.starts_with(ZSTD) {
        Ok(Compression::Zstd)
    } else if ZIP.iter().any(|magic| header.starts_with(magic)) {
        Err(UnsupportedFormat::Zip)
    } else if header.len() >= 4 && header.starts_with(b"BZh") && matches!(header[3], b'1'..=b'9') {
        Err(UnsupportedFormat::Bzip2)
    } else if header.starts_with(LZ4) {
        Err(UnsupportedFormat::Lz4)
    } else if header.starts_with(SEVEN_ZIP) {
        Err(UnsupportedFormat::SevenZip)
    } else {
        Ok(Compression::None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniff_table() {
        let mbr = {
            let mut b = vec![0xFA, 0x31, 0xC0, 0x8E, 0xD8, 0x8E];
            b.resize(512, 0);
            b[510] = 0x55;
            b[511] = 0xAA;
            b
        };
        let cases: &[(&str, &[u8], Result<Compression, UnsupportedFormat>)] = &[
            ("empty", b"", Ok(Compression::None)),
            ("mbr boot code", &mbr, Ok(Compression::None)),
            ("all zero", &[0; 16], Ok(Compression::None)),
            ("xz", b"\xFD7zXZ\x00\x00\x04", Ok(Compression::Xz)),
            (
                "xz magic cut short is raw",
                b"\xFD7zXZ",
                Ok(Compression::None),
            ),
            ("xz wrong last byte", b"\xFD7zXZ\x01", Ok(Compression::None)),
            ("gzip", b"\x1F\x8B\x08\x00", Ok(Compression::Gzip)),
            ("gzip two bytes", b"\x1F\x8B", Ok(Compression::Gzip)),
            ("zstd", b"\x28\xB5\x2F\xFD\x04\x58", Ok(Compression::Zstd)),
            ("zip", b"PK\x03\x04\x14\x00", Err(UnsupportedFormat::Zip)),
            (
                "empty zip",
                b"PK\x05\x06\x00\x00",
                Err(UnsupportedFormat::Zip),
            ),
            (
                "spanned zip",
                b"PK\x07\x08\x00\x00",
                Err(UnsupportedFormat::Zip),
            ),
            ("bzip2", b"BZh91AY&SY", Err(UnsupportedFormat::Bzip2)),
            ("BZh without level is raw", b"BZhx", Ok(Compression::None)),
            (
                "lz4",
                b"\x04\x22\x4D\x18\x64\x40",
                Err(UnsupportedFormat::Lz4),
            ),
            (
                "7z",
                b"7z\xBC\xAF\x27\x1C",
                Err(UnsupportedFormat::SevenZip),
            ),
        ];
        for (name, header, want) in cases {
            assert_eq!(sniff(header), *want, "case {name}");
        }
    }

    #[test]
    fn display_and_extension() {
        let cases = [
            (Compression::None, "raw", "img"),
            (Compression::Xz, "xz", "xz"),
            (Compression::Gzip, "gzip", "gz"),
            (Compression::Zstd, "zstd", "zst"),
        ];
        for (c, display, ext) in cases {
            assert_eq!(c.to_string(), display);
            assert_eq!(c.extension(), ext);
            assert_eq!(c.is_compressed(), c != Compression::None);
        }
        assert_eq!(Compression::ALL.len(), cases.len());
    }

    #[test]
    fn unsupported_messages_say_what_to_do() {
        assert_eq!(
            UnsupportedFormat::Zip.to_string(),
            "zip archives are not supported; extract the .img first (unzip FILE)"
        );
        for f in [
            UnsupportedFormat::Zip,
            UnsupportedFormat::Bzip2,
            UnsupportedFormat::Lz4,
            UnsupportedFormat::SevenZip,
        ] {
            assert!(f.to_string().contains("not supported; "), "{f:?}");
        }
    }
}
