//! `.xz` output as one stream of independent blocks, one block per chunk.
//!
//! Spec: "The .xz File Format" 1.2.1 (<https://tukaani.org/xz/xz-file-format.txt>): a stream
//! header (§2.1.1: magic, stream flags, CRC32), blocks (§3: a block header, LZMA2 data, padding
//! to 4 bytes, the check), an index (§4: one record of unpadded and uncompressed size per block,
//! padding, CRC32) and a stream footer (§2.1.2: CRC32, backward size, flags, `YZ`).
//!
//! Each chunk is compressed on its own by liblzma's raw LZMA2 encoder (the dictionary starts
//! empty, so a block never refers to another), and piimage writes the container itself. Every
//! block header records the compressed and uncompressed sizes, as `xz -T` writes them, so
//! multithreaded decoders (`xz -T0 -d`, liblzma's MT decoder) decode the blocks in parallel. The
//! check is CRC32 (check ID 1), which every xz decoder supports.
//!
//! Rejected designs: concatenating one whole `.xz` stream per chunk (valid, but `xz -l` shows
//! hundreds of streams and decoders do not parallelise across streams); liblzma's MT stream
//! encoder with one thread per chunk to get sized block headers (spawns a thread per chunk and
//! still needs the stream taken apart to merge the indexes).

use std::io;

use liblzma::stream::{Action, Filters, LzmaOptions, Status, Stream};

/// Stream header magic (§2.1.1.1).
const HEADER_MAGIC: [u8; 6] = [0xFD, b'7', b'z', b'X', b'Z', 0x00];
/// Stream footer magic (§2.1.2.4).
const FOOTER_MAGIC: [u8; 2] = [b'Y', b'Z'];
/// Stream flags: no reserved bits, check type 0x01 = CRC32 (§2.1.1.2).
const STREAM_FLAGS: [u8; 2] = [0x00, 0x01];
/// Size of the CRC32 check stored after each block.
const CHECK_SIZE: u64 = 4;
/// Filter ID of LZMA2 (§5.3.1).
const FILTER_LZMA2: u64 = 0x21;
/// Block flags (§3.1.2): one filter (bits 0-1 = 0), compressed size present (0x40),
/// uncompressed size present (0x80).
const BLOCK_FLAGS: u8 = 0x40 | 0x80;

fn crc32(data: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(data);
    c.sum()
}

/// Appends `n` as a multibyte integer (§1.2): 7 bits per byte, low first, high bit = more.
fn varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push(u8::try_from(n & 0x7F).unwrap_or(0) | 0x80);
        n >>= 7;
    }
    out.push(u8::try_from(n).unwrap_or(0));
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// The LZMA2 dictionary-size property byte (§5.3.1): the smallest encodable size
/// `(2 | (p & 1)) << (p / 2 + 11)` not below `dict`, and that size.
fn dict_props(dict: u32) -> (u8, u32) {
    for p in 0u8..40 {
        let size = (2u32 | u32::from(p & 1)) << (p / 2 + 11);
        if size >= dict {
            return (p, size);
        }
    }
    (40, u32::MAX)
}

/// The stream header.
pub fn stream_header() -> Vec<u8> {
    let mut h = HEADER_MAGIC.to_vec();
    h.extend_from_slice(&STREAM_FLAGS);
    h.extend_from_slice(&crc32(&STREAM_FLAGS).to_le_bytes());
    h
}

/// The block header (§3.1) for a block of `compressed` LZMA2 bytes holding `uncompressed`.
fn block_header(compressed: u64, uncompressed: u64, props: u8) -> Vec<u8> {
    let mut h = vec![0, BLOCK_FLAGS];
    varint(&mut h, compressed);
    varint(&mut h, uncompressed);
    varint(&mut h, FILTER_LZMA2);
    varint(&mut h, 1);
    h.push(props);
    pad4(&mut h);
    // Header size byte: (real size including the CRC32) / 4 - 1.
    h[0] = u8::try_from((h.len() + 4) / 4 - 1).unwrap_or(0);
    let crc = crc32(&h);
    h.extend_from_slice(&crc.to_le_bytes());
    h
}

/// Compresses chunks into xz blocks.
pub struct XzChunks {
    options: LzmaOptions,
    props: u8,
    raw: Vec<u8>,
}

impl std::fmt::Debug for XzChunks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XzChunks")
            .field("props", &self.props)
            .finish_non_exhaustive()
    }
}

impl XzChunks {
    /// An encoder at `preset` (0-9) for chunks of at most `chunk_size` bytes: the dictionary
    /// is the preset's, capped at the chunk size (a larger one would only cost memory).
    ///
    /// # Errors
    /// An invalid preset.
    pub fn new(preset: u32, chunk_size: u64) -> io::Result<Self> {
        let mut options = LzmaOptions::new_preset(preset).map_err(io::Error::other)?;
        // LzmaOptions has no getter: presets 0-9 use 256 KiB .. 64 MiB (liblzma's
        // `lzma_lzma_preset`); cap at the chunk size, rounded to an encodable size.
        let chunk_dict = dict_props(u32::try_from(chunk_size).unwrap_or(u32::MAX)).1;
        let dict = preset_dict_size(preset).min(chunk_dict);
        let (props, dict) = dict_props(dict);
        options.dict_size(dict);
        Ok(Self {
            options,
            props,
            raw: Vec::new(),
        })
    }

    /// Compresses `data` into one complete block appended to `out`; returns the block's
    /// unpadded size (header + compressed data + check, §4.3.1).
    ///
    /// # Errors
    /// liblzma failed.
    pub fn compress(&mut self, data: &[u8], out: &mut Vec<u8>) -> io::Result<u64> {
        let mut filters = Filters::new();
        filters.lzma2(&self.options);
        let mut stream = Stream::new_raw_encoder(&filters).map_err(io::Error::other)?;
        self.raw.clear();
        self.raw.reserve(data.len() + data.len() / 16 + 4096);
        loop {
            let consumed = usize::try_from(stream.total_in()).unwrap_or(usize::MAX);
            let input = data.get(consumed..).unwrap_or(&[]);
            if self.raw.len() == self.raw.capacity() {
                self.raw.reserve(data.len() / 4 + 4096);
            }
            match stream
                .process_vec(input, &mut self.raw, Action::Finish)
                .map_err(io::Error::other)?
            {
                Status::StreamEnd => break,
                Status::Ok | Status::GetCheck => {}
                Status::MemNeeded => return Err(io::Error::other("liblzma: out of memory")),
            }
        }
        let compressed = self.raw.len() as u64;
        let uncompressed = data.len() as u64;
        let header = block_header(compressed, uncompressed, self.props);
        let start = out.len();
        out.extend_from_slice(&header);
        out.extend_from_slice(&self.raw);
        while !(out.len() - start).is_multiple_of(4) {
            out.push(0);
        }
        out.extend_from_slice(&crc32(data).to_le_bytes());
        Ok(header.len() as u64 + compressed + CHECK_SIZE)
    }
}

/// Dictionary sizes of liblzma presets 0-9 (`lzma_lzma_preset`).
fn preset_dict_size(preset: u32) -> u32 {
    const SIZES: [u32; 10] = [
        256 << 10,
        1 << 20,
        2 << 20,
        4 << 20,
        4 << 20,
        8 << 20,
        8 << 20,
        16 << 20,
        32 << 20,
        64 << 20,
    ];
    let level = usize::try_from(preset & 0x1F).unwrap_or(9).min(9);
    SIZES[level]
}

/// The index of a stream, built as blocks are written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XzIndex {
    records: Vec<(u64, u64)>,
}

impl XzIndex {
    /// Records a block of `unpadded` bytes (see [`XzChunks::compress`]) holding `uncompressed`.
    pub fn push(&mut self, unpadded: u64, uncompressed: u64) {
        self.records.push((unpadded, uncompressed));
    }

    /// The index and stream footer that end the stream.
    pub fn trailer(&self) -> Vec<u8> {
        let mut index = vec![0x00];
        varint(&mut index, self.records.len() as u64);
        for &(unpadded, uncompressed) in &self.records {
            varint(&mut index, unpadded);
            varint(&mut index, uncompressed);
        }
        pad4(&mut index);
        let crc = crc32(&index);
        index.extend_from_slice(&crc.to_le_bytes());
        // Backward size (§2.1.2.2): the index size / 4 - 1.
        let backward = u32::try_from(index.len() / 4 - 1).unwrap_or(u32::MAX);
        let mut tail = backward.to_le_bytes().to_vec();
        tail.extend_from_slice(&STREAM_FLAGS);
        index.extend_from_slice(&crc32(&tail).to_le_bytes());
        index.extend_from_slice(&tail);
        index.extend_from_slice(&FOOTER_MAGIC);
        index
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn varint_table() {
        let cases: &[(u64, &[u8])] = &[
            (0, &[0]),
            (0x7F, &[0x7F]),
            (0x80, &[0x80, 0x01]),
            (0x21, &[0x21]),
            (4 << 20, &[0x80, 0x80, 0x80, 0x02]),
        ];
        for &(n, want) in cases {
            let mut v = Vec::new();
            varint(&mut v, n);
            assert_eq!(v, want, "{n}");
        }
    }

    #[test]
    fn dict_props_table() {
        assert_eq!(dict_props(1), (0, 4096));
        assert_eq!(dict_props(4096), (0, 4096));
        assert_eq!(dict_props(4097), (1, 6144));
        assert_eq!(dict_props(4 << 20), (20, 4 << 20));
        assert_eq!(dict_props(8 << 20), (22, 8 << 20));
        assert_eq!(dict_props(u32::MAX), (40, u32::MAX));
    }

    #[test]
    fn header_layout() {
        let h = block_header(1000, 4 << 20, 20);
        assert!(h.len().is_multiple_of(4));
        assert_eq!(usize::from(h[0]) * 4 + 4, h.len());
        assert_eq!(h[1], 0xC0);
        assert_eq!(stream_header().len(), 12);
    }

    #[test]
    fn blocks_and_index_decode_with_liblzma() {
        let chunks: Vec<Vec<u8>> = vec![
            vec![0u8; 65536],
            (0..100_000u32)
                .map(|i| u8::try_from(i * 7 % 251).unwrap())
                .collect(),
            b"tail".to_vec(),
            Vec::new(),
        ];
        let mut enc = XzChunks::new(6, 128 << 10).unwrap();
        let mut file = stream_header();
        let mut index = XzIndex::default();
        for c in &chunks {
            let before = file.len();
            let unpadded = enc.compress(c, &mut file).unwrap();
            assert!((file.len() - before).is_multiple_of(4));
            index.push(unpadded, c.len() as u64);
        }
        file.extend_from_slice(&index.trailer());
        let mut back = Vec::new();
        liblzma::read::XzDecoder::new(&file[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, chunks.concat());

        // An empty stream (no blocks) is valid too.
        let mut empty = stream_header();
        empty.extend_from_slice(&XzIndex::default().trailer());
        let mut back = Vec::new();
        liblzma::read::XzDecoder::new(&empty[..])
            .read_to_end(&mut back)
            .unwrap();
        assert!(back.is_empty());
    }
}
