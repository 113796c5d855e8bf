//! `.zst` output as a sequence of independent frames, one frame per chunk.
//!
//! Spec: RFC 8878 §3.1 ("a Zstandard compressed stream is a sequence of frames"; decoders
//! decompress them one after the other, so the concatenation is one valid `.zst` file, and
//! `zstd -l` lists it as N frames). Every frame records its content size and an XXH64 content
//! checksum in its header and trailer. A frame holds at most one chunk (≤ 64 MiB), so it is
//! single-segment and needs a window of at most its content size, below the 2^27 that `zstd -d`
//! accepts without `--long`.

use std::io;

use zstd::bulk::Compressor;
use zstd::zstd_safe::CParameter;

/// Compresses chunks into zstd frames.
pub struct ZstdChunks {
    compressor: Compressor<'static>,
}

impl std::fmt::Debug for ZstdChunks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZstdChunks").finish_non_exhaustive()
    }
}

impl ZstdChunks {
    /// An encoder at `level` (1-22; 3 is zstd's default).
    ///
    /// # Errors
    /// zstd refused the parameters.
    pub fn new(level: i32) -> io::Result<Self> {
        let mut compressor = Compressor::new(level)?;
        compressor.set_parameter(CParameter::ChecksumFlag(true))?;
        compressor.set_parameter(CParameter::ContentSizeFlag(true))?;
        Ok(Self { compressor })
    }

    /// Compresses `data` into one frame appended to `out`; returns the frame's length.
    ///
    /// # Errors
    /// zstd failed.
    pub fn compress(&mut self, data: &[u8], out: &mut Vec<u8>) -> io::Result<u64> {
        out.reserve(zstd::compress_bound(data.len()));
        let before = out.len();
        // A cursor at the end makes zstd append instead of overwriting from the start.
        let mut cursor = std::io::Cursor::new(&mut *out);
        cursor.set_position(before as u64);
        let n = self.compressor.compress_to_buffer(data, &mut cursor)?;
        debug_assert_eq!(out.len(), before + n);
        Ok(n as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_concatenate() {
        let mut enc = ZstdChunks::new(3).unwrap();
        let mut file = Vec::new();
        let a = vec![0u8; 100_000];
        let b: Vec<u8> = (0..50_000u32)
            .map(|i| u8::try_from(i % 13).unwrap())
            .collect();
        file.extend_from_slice(b"keep");
        let n = enc.compress(&a, &mut file).unwrap();
        assert_eq!(n + 4, file.len() as u64);
        assert_eq!(&file[..4], b"keep");
        file.drain(..4);
        enc.compress(&b, &mut file).unwrap();
        let back = zstd::stream::decode_all(&file[..]).unwrap();
        assert_eq!(back, [a.clone(), b].concat());
        // Each frame records its content size.
        assert_eq!(
            zstd::zstd_safe::get_frame_content_size(&file).unwrap(),
            Some(a.len() as u64)
        );
    }
}
