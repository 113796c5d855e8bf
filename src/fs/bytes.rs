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
