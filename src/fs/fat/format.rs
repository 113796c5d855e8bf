//! Formatting an empty FAT32 volume, laid out as `mkfs.fat -F 32 -s 1` lays it out: a boot
//! sector with the BIOS parameter block, the FSInfo sector, a third sector holding only the
//! `55 AA` signature, the same three again at sector 6 (the backup), two FATs, and an empty root
//! directory in cluster 2. Files are then added through [`super::write::FatWriter`].

use super::FatError;

/// Reserved sectors (boot sector, FSInfo, backup boot sector at 6, ...), as `mkfs.fat -F 32`.
const RESERVED: u32 = 32;

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// The smallest volume [`fat32`] formats: below it the volume has fewer than the 65 525
/// clusters that make a FAT32 (with one sector per cluster).
pub const MIN_SECTORS: u32 = 67_584;

/// An empty FAT32 volume of `sectors` 512-byte sectors (one per cluster), `hidden` sectors
/// before it on its disk, with volume id `serial`.
///
/// # Errors
/// [`FatError::NotFat`] when `sectors` is below [`MIN_SECTORS`].
pub fn fat32(sectors: u32, hidden: u32, serial: u32) -> Result<Vec<u8>, FatError> {
    if sectors < MIN_SECTORS {
        return Err(FatError::NotFat(
            "a FAT32 volume needs at least 67584 sectors of 512 bytes (33 MiB)",
        ));
    }
    // 4 bytes per cluster, 128 entries per sector: enough for every sector of the volume.
    let fat_sectors = sectors.div_ceil(128);
    let mut v = vec![0u8; sectors as usize * 512];
    let clusters = sectors - RESERVED - 2 * fat_sectors;
    let mut bs = [0u8; 512];
    bs[0..3].copy_from_slice(&[0xEB, 0x58, 0x90]);
    bs[3..11].copy_from_slice(b"piimage ");
    put16(&mut bs, 11, 512);
    bs[13] = 1;
    put16(&mut bs, 14, u16::try_from(RESERVED).unwrap_or(32));
    bs[16] = 2;
    bs[21] = 0xF8;
    put16(&mut bs, 24, 63);
    put16(&mut bs, 26, 255);
    put32(&mut bs, 28, hidden);
    put32(&mut bs, 32, sectors);
    put32(&mut bs, 36, fat_sectors);
    put32(&mut bs, 44, 2);
    put16(&mut bs, 48, 1);
    put16(&mut bs, 50, 6);
    bs[64] = 0x80;
    bs[66] = 0x29;
    put32(&mut bs, 67, serial);
    bs[71..82].copy_from_slice(b"NO NAME    ");
    bs[82..90].copy_from_slice(b"FAT32   ");
    bs[510] = 0x55;
    bs[511] = 0xAA;
    let mut info = [0u8; 512];
    put32(&mut info, 0, 0x4161_5252);
    put32(&mut info, 484, 0x6141_7272);
    put32(&mut info, 488, clusters - 1);
    put32(&mut info, 492, 3);
    put32(&mut info, 508, 0xAA55_0000);
    for base in [0usize, 6] {
        v[base * 512..base * 512 + 512].copy_from_slice(&bs);
        v[(base + 1) * 512..(base + 2) * 512].copy_from_slice(&info);
        // The third boot sector of the set carries only the signature, as mkfs.fat writes it.
        v[(base + 2) * 512 + 510] = 0x55;
        v[(base + 2) * 512 + 511] = 0xAA;
    }
    for fat in 0..2u32 {
        let at = ((RESERVED + fat * fat_sectors) * 512) as usize;
        put32(&mut v, at, 0x0FFF_FFF8);
        put32(&mut v, at + 4, 0x0FFF_FFFF);
        put32(&mut v, at + 8, 0x0FFF_FFFF);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::fat::{BootSector, FatType};

    #[test]
    fn formats_a_fat32_the_boot_sector_parser_accepts() {
        let v = fat32(MIN_SECTORS, 2048, 0xabcd_0123).unwrap();
        assert_eq!(v.len(), MIN_SECTORS as usize * 512);
        let bs = BootSector::from_bytes(v[..512].try_into().unwrap()).unwrap();
        assert_eq!(bs.fat_type, FatType::Fat32);
        assert!(fat32(MIN_SECTORS - 1, 0, 0).is_err());
    }
}
