//! The FAT boot sector and BIOS parameter block (BPB), parsed from its 512 bytes.

use crate::fs::bytes::{le16, le32};
use serde::Serialize;

/// Errors decoding or reading a FAT filesystem.
#[derive(Debug, thiserror::Error)]
pub enum FatError {
    /// The boot sector is not a FAT boot sector.
    #[error("not a FAT filesystem: {0}")]
    NotFat(&'static str),
    /// Reading failed.
    #[error("reading the FAT filesystem")]
    Io(#[from] std::io::Error),
    /// The allocation table is damaged (a chain loops, is cross-linked or leaves the volume).
    #[error("the FAT boot filesystem is damaged: {0}; run `fsck.fat` on the partition first")]
    Damaged(String),
    /// The FAT library reported an error.
    #[error("FAT error at {path}: {detail}")]
    Library {
        /// Path inside the filesystem.
        path: String,
        /// What the library said.
        detail: String,
    },
}

/// FAT12, FAT16 or FAT32: FAT32 when the BPB has no 16-bit FAT size (as Linux decides),
/// else by cluster count (fatgen103).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum FatType {
    /// Fewer than 4085 clusters.
    Fat12,
    /// Fewer than 65525 clusters.
    Fat16,
    /// 65525 clusters or more.
    Fat32,
}

impl std::fmt::Display for FatType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Fat12 => "FAT12",
            Self::Fat16 => "FAT16",
            Self::Fat32 => "FAT32",
        })
    }
}

/// The decoded boot sector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootSector {
    /// Bytes per sector (512 on every image we know).
    pub bytes_per_sector: u16,
    /// Sectors per cluster.
    pub sectors_per_cluster: u8,
    /// Reserved sectors before the first FAT.
    pub reserved_sectors: u16,
    /// Number of FAT copies.
    pub fats: u8,
    /// Root directory entries (FAT12/16 only; 0 on FAT32).
    pub root_entries: u16,
    /// Total sectors of the volume.
    pub total_sectors: u32,
    /// Sectors per FAT.
    pub sectors_per_fat: u32,
    /// First cluster of the root directory (FAT32).
    pub root_cluster: u32,
    /// Volume serial number (`mkfs.fat -i`).
    pub volume_id: u32,
    /// Volume label from the extended BPB, trimmed.
    pub label: String,
    /// FAT type by cluster count.
    pub fat_type: FatType,
    /// Number of data clusters.
    pub clusters: u32,
}

impl BootSector {
    /// Decodes the first sector of a FAT volume.
    pub fn from_bytes(b: &[u8; 512]) -> Result<Self, FatError> {
        if b[510..512] != [0x55, 0xAA] {
            return Err(FatError::NotFat("no 55 AA signature in the boot sector"));
        }
        if !(b[0] == 0xEB || b[0] == 0xE9) {
            return Err(FatError::NotFat("no jump instruction at the start"));
        }
        let bytes_per_sector = le16(b, 11);
        if !matches!(bytes_per_sector, 512 | 1024 | 2048 | 4096) {
            return Err(FatError::NotFat("invalid bytes per sector"));
        }
        let sectors_per_cluster = b[13];
        if sectors_per_cluster == 0 || !sectors_per_cluster.is_power_of_two() {
            return Err(FatError::NotFat("invalid sectors per cluster"));
        }
        let reserved_sectors = le16(b, 14);
        let fats = b[16];
        if reserved_sectors == 0 || fats == 0 {
            return Err(FatError::NotFat("no reserved sectors or no FAT"));
        }
        let root_entries = le16(b, 17);
        let total16 = le16(b, 19);
        let fat16_size = le16(b, 22);
        let total_sectors = if total16 != 0 {
            u32::from(total16)
        } else {
            le32(b, 32)
        };
        let sectors_per_fat = if fat16_size != 0 {
            u32::from(fat16_size)
        } else {
            le32(b, 36)
        };
        let root_dir_sectors = (u32::from(root_entries) * 32).div_ceil(u32::from(bytes_per_sector));
        let data_start = u32::from(reserved_sectors)
            .checked_add(u32::from(fats).saturating_mul(sectors_per_fat))
            .and_then(|s| s.checked_add(root_dir_sectors))
            .ok_or(FatError::NotFat("layout overflows"))?;
        let data_sectors = total_sectors
            .checked_sub(data_start)
            .ok_or(FatError::NotFat("FATs larger than the volume"))?;
        let clusters = data_sectors / u32::from(sectors_per_cluster);
        // Linux and mkfs.fat treat a volume with BPB_FATSz16 == 0 as FAT32 whatever its
        // cluster count (fatgen103 decides by count alone); follow what the Pi's kernel does.
        let fat_type = if fat16_size == 0 && root_entries == 0 {
            FatType::Fat32
        } else if clusters < 4085 {
            FatType::Fat12
        } else if clusters < 65525 {
            FatType::Fat16
        } else {
            FatType::Fat32
        };
        // The extended BPB sits at 36 (FAT12/16) or 64 (FAT32); 0x29 marks id and label present.
        let ebpb = if fat16_size == 0 { 64 } else { 36 };
        let (volume_id, label) = if b[ebpb + 2] == 0x29 {
            let label = String::from_utf8_lossy(&b[ebpb + 7..ebpb + 18])
                .trim_end()
                .to_owned();
            (le32(b, ebpb + 3), label)
        } else {
            (0, String::new())
        };
        Ok(Self {
            bytes_per_sector,
            sectors_per_cluster,
            reserved_sectors,
            fats,
            root_entries,
            total_sectors,
            sectors_per_fat,
            root_cluster: if fat16_size == 0 { le32(b, 44) } else { 0 },
            volume_id,
            label,
            fat_type,
            clusters,
        })
    }

    /// Cluster size in bytes.
    pub fn cluster_size(&self) -> u32 {
        u32::from(self.bytes_per_sector) * u32::from(self.sectors_per_cluster)
    }

    /// Size of the volume in bytes.
    pub fn volume_size(&self) -> u64 {
        u64::from(self.total_sectors) * u64::from(self.bytes_per_sector)
    }
}

/// True when the 512 bytes look like a FAT boot sector.
pub fn looks_like_fat(b: &[u8; 512]) -> bool {
    BootSector::from_bytes(b).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A FAT32 boot sector as `mkfs.fat -F 32 -s 4 -n bootfs` writes it for 512 MiB.
    fn fat32_bootfs() -> [u8; 512] {
        let mut b = [0u8; 512];
        b[0] = 0xEB;
        b[11..13].copy_from_slice(&512u16.to_le_bytes());
        b[13] = 4;
        b[14..16].copy_from_slice(&32u16.to_le_bytes());
        b[16] = 2;
        b[32..36].copy_from_slice(&1_048_576u32.to_le_bytes());
        b[36..40].copy_from_slice(&1024u32.to_le_bytes());
        b[44..48].copy_from_slice(&2u32.to_le_bytes());
        b[66] = 0x29;
        b[67..71].copy_from_slice(&0x1234_abcdu32.to_le_bytes());
        b[71..82].copy_from_slice(b"bootfs     ");
        b[510] = 0x55;
        b[511] = 0xAA;
        b
    }

    #[test]
    fn decodes_fat32() {
        let bs = BootSector::from_bytes(&fat32_bootfs()).unwrap();
        assert_eq!(bs.fat_type, FatType::Fat32);
        assert_eq!(bs.cluster_size(), 2048);
        assert_eq!(bs.label, "bootfs");
        assert_eq!(bs.volume_id, 0x1234_abcd);
        assert_eq!(bs.root_cluster, 2);
        assert_eq!(bs.volume_size(), 512 << 20);
    }

    #[test]
    fn refuses_non_fat() {
        let mut cases = vec![("zeros", [0u8; 512])];
        let mut b = fat32_bootfs();
        b[13] = 3;
        cases.push(("bad cluster size", b));
        let mut b = fat32_bootfs();
        b[0] = 0;
        cases.push(("no jump", b));
        let mut b = fat32_bootfs();
        b[36..40].copy_from_slice(&600_000u32.to_le_bytes());
        cases.push(("FATs too big", b));
        for (name, b) in cases {
            assert!(BootSector::from_bytes(&b).is_err(), "{name}");
        }
    }
}
