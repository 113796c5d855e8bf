//! Little-endian field access for the on-disk decoders (FAT and ext4 store everything LE).
//! Callers check lengths first; an offset past the slice panics like any slice index.

/// The little-endian `u16` at byte `o` of `b`.
pub(crate) fn le16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}

/// The little-endian `u32` at byte `o` of `b`.
pub(crate) fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

/// Stores `v` little-endian at byte `o` of `b`.
pub(crate) fn put16(b: &mut [u8], o: usize, v: u16) {
    b[o..o + 2].copy_from_slice(&v.to_le_bytes());
}

/// Stores `v` little-endian at byte `o` of `b`.
pub(crate) fn put32(b: &mut [u8], o: usize, v: u32) {
    b[o..o + 4].copy_from_slice(&v.to_le_bytes());
}

/// The low and high 16-bit halves of `v` (ext4 splits many counts into `_lo`/`_hi` fields).
pub(crate) fn halves16(v: u32) -> (u16, u16) {
    let [a, b, c, d] = v.to_le_bytes();
    (u16::from_le_bytes([a, b]), u16::from_le_bytes([c, d]))
}

/// The low and high 32-bit halves of `v`.
pub(crate) fn halves32(v: u64) -> (u32, u32) {
    let [a, b, c, d, e, f, g, h] = v.to_le_bytes();
    (
        u32::from_le_bytes([a, b, c, d]),
        u32::from_le_bytes([e, f, g, h]),
    )
}
