//! The file allocation table: which clusters are in use, and where the FAT regions are.
//!
//! Spec: Microsoft "FAT: General Overview of On-Disk Format" (fatgen103), §3 (regions: reserved
//! sectors, the FAT copies, the FAT12/16 root directory, then the data clusters numbered from
//! 2) and §4 (entries: 12 bits packed in pairs, 16 bits, or the low 28 bits of 32; 0 means
//! free, anything else, including bad-cluster and end-of-chain marks, counts as used here).
//!
//! Read-only. Used by the bmap writer, which maps the metadata regions and every used cluster.

use super::boot_sector::{BootSector, FatError, FatType};
use crate::disk::{Storage, Window};

/// The bytes of the FAT read at a time.
const READ_SIZE: usize = 1 << 20;

/// Where the regions of a FAT volume lie, in bytes from the start of the volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FatLayout {
    /// FAT12, FAT16 or FAT32.
    pub fat_type: FatType,
    /// Start of the first FAT (the end of the reserved sectors).
    pub fat_offset: u64,
    /// Length of one FAT copy.
    pub fat_len: u64,
    /// Number of FAT copies.
    pub fats: u8,
    /// Start of the data region (cluster 2).
    pub data_offset: u64,
    /// Cluster size in bytes.
    pub cluster_size: u64,
    /// Number of data clusters.
    pub clusters: u32,
}

impl FatLayout {
    /// The layout described by a boot sector.
    pub fn new(bs: &BootSector) -> Self {
        let sector = u64::from(bs.bytes_per_sector);
        let fat_offset = u64::from(bs.reserved_sectors) * sector;
        let fat_len = u64::from(bs.sectors_per_fat) * sector;
        let root_dir = (u64::from(bs.root_entries) * 32).div_ceil(sector) * sector;
        Self {
            fat_type: bs.fat_type,
            fat_offset,
            fat_len,
            fats: bs.fats,
            data_offset: fat_offset + u64::from(bs.fats) * fat_len + root_dir,
            cluster_size: u64::from(bs.cluster_size()),
            clusters: bs.clusters,
        }
    }

    /// Byte offset of cluster `c` (2 or more).
    pub fn cluster_offset(&self, c: u32) -> u64 {
        self.data_offset + u64::from(c.saturating_sub(2)) * self.cluster_size
    }

    fn entry_bits(&self) -> u64 {
        match self.fat_type {
            FatType::Fat12 => 12,
            FatType::Fat16 => 16,
            FatType::Fat32 => 32,
        }
    }
}

/// Decodes entry `n` of a FAT whose bytes start at `fat` (which must hold it).
pub(super) fn entry(fat_type: FatType, fat: &[u8], n: usize) -> u32 {
    match fat_type {
        FatType::Fat12 => {
            let o = n + n / 2;
            let v = u16::from_le_bytes([fat[o], fat[o + 1]]);
            u32::from(if n.is_multiple_of(2) {
                v & 0x0FFF
            } else {
                v >> 4
            })
        }
        FatType::Fat16 => u32::from(u16::from_le_bytes([fat[2 * n], fat[2 * n + 1]])),
        FatType::Fat32 => {
            let o = 4 * n;
            u32::from_le_bytes([fat[o], fat[o + 1], fat[o + 2], fat[o + 3]]) & 0x0FFF_FFFF
        }
    }
}

/// Used clusters of FAT copy `copy` as sorted `(first_cluster, count)` runs.
///
/// # Errors
/// Reading fails, or the FAT lies outside the window.
pub fn used_clusters<S: Storage>(
    window: &Window<S>,
    layout: &FatLayout,
    copy: u8,
) -> Result<Vec<(u32, u32)>, FatError> {
    let start = layout.fat_offset + u64::from(copy) * layout.fat_len;
    let needed_entries = u64::from(layout.clusters) + 2;
    let needed_bytes = (needed_entries * layout.entry_bits()).div_ceil(8);
    let fat_bytes = layout.fat_len.min(needed_bytes);
    let last = u32::try_from((fat_bytes * 8 / layout.entry_bits()).min(needed_entries))
        .unwrap_or(u32::MAX);
    let bits = layout.entry_bits();
    let mut runs: Vec<(u32, u32)> = Vec::new();
    // Pieces of an even number of entries, so FAT12 pairs never straddle two pieces; at most
    // READ_SIZE bytes even with 32-bit entries.
    let per_piece = u32::try_from(READ_SIZE / 4).unwrap_or(u32::MAX);
    let mut buf = vec![0u8; READ_SIZE];
    let mut first = 0u32;
    while first < last {
        let n = (last - first).min(per_piece);
        let off = u64::from(first) * bits / 8;
        let end = ((u64::from(first) + u64::from(n)) * bits).div_ceil(8);
        let len = usize::try_from(end - off)
            .unwrap_or(READ_SIZE)
            .min(READ_SIZE);
        window.read_at(start + off, &mut buf[..len])?;
        for i in 0..n {
            let c = first + i;
            if c >= 2 && entry(layout.fat_type, &buf, i as usize) != 0 {
                match runs.last_mut() {
                    Some((f, k)) if *f + *k == c => *k += 1,
                    _ => runs.push((c, 1)),
                }
            }
        }
        first += n;
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::MemStorage;

    fn boot(fat_type: FatType, clusters: u32) -> BootSector {
        BootSector {
            bytes_per_sector: 512,
            sectors_per_cluster: 4,
            reserved_sectors: 32,
            fats: 2,
            root_entries: if fat_type == FatType::Fat32 { 0 } else { 512 },
            total_sectors: 0,
            sectors_per_fat: 8,
            root_cluster: 2,
            volume_id: 0,
            label: String::new(),
            fat_type,
            clusters,
        }
    }

    #[test]
    fn layout_regions() {
        let l = FatLayout::new(&boot(FatType::Fat32, 1000));
        assert_eq!(
            (l.fat_offset, l.fat_len, l.data_offset),
            (16384, 4096, 24576)
        );
        assert_eq!(l.cluster_offset(2), 24576);
        assert_eq!(l.cluster_offset(5), 24576 + 3 * 2048);
        let l = FatLayout::new(&boot(FatType::Fat16, 1000));
        assert_eq!(l.data_offset, 24576 + 512 * 32, "FAT16 root directory");
    }

    #[test]
    fn used_runs_per_fat_type() {
        // Entries: 0,1 reserved; 2..=4 used; 5 free; 6 used (end of chain); 7 bad; 8 free.
        let values = [
            0xFFF8u32,
            0xFFFF,
            3,
            4,
            0x0FFF_FFFF,
            0,
            0x0FFF_FFFF,
            0x0FFF_FFF7,
            0,
        ];
        for fat_type in [FatType::Fat12, FatType::Fat16, FatType::Fat32] {
            let b = boot(fat_type, 7);
            let l = FatLayout::new(&b);
            let mut disk = vec![0u8; 64 * 1024];
            let mut fat = vec![0u8; 4096];
            for (n, &v) in values.iter().enumerate() {
                match fat_type {
                    FatType::Fat12 => {
                        let v = u16::try_from(v & 0xFFF).unwrap();
                        let o = n + n / 2;
                        let old = u16::from_le_bytes([fat[o], fat[o + 1]]);
                        let new = if n % 2 == 0 {
                            (old & 0xF000) | v
                        } else {
                            (old & 0x000F) | (v << 4)
                        };
                        fat[o..o + 2].copy_from_slice(&new.to_le_bytes());
                    }
                    FatType::Fat16 => fat[2 * n..2 * n + 2]
                        .copy_from_slice(&u16::try_from(v & 0xFFFF).unwrap().to_le_bytes()),
                    FatType::Fat32 => fat[4 * n..4 * n + 4].copy_from_slice(&v.to_le_bytes()),
                }
            }
            let o = usize::try_from(l.fat_offset).unwrap();
            disk[o..o + 4096].copy_from_slice(&fat);
            let storage = MemStorage::new(disk);
            let w = Window::new(&storage, 0, 64 * 1024).unwrap();
            let runs = used_clusters(&w, &l, 0).unwrap();
            assert_eq!(runs, vec![(2, 3), (6, 2)], "{fat_type}");
            assert!(used_clusters(&w, &l, 1).unwrap().is_empty(), "{fat_type}");
        }
    }
}
