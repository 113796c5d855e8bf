//! The card image: an MBR with one FAT32 partition (type `0x0c`, at 1 MiB, 64 MiB long) that
//! holds the update files. The volume is formatted here (boot sector, FSInfo, backup boot
//! sector, two FATs, an empty root directory in cluster 2, as `mkfs.fat -F 32 -s 1` lays it
//! out) and filled through [`crate::fs::fat::write::FatWriter`].

use std::io::Cursor;

use crate::fs::fat::write::FatWriter;

use super::CardError;

/// Sectors before the partition (1 MiB).
const PART_START: u32 = 2048;
/// Partition length in sectors (64 MiB).
const PART_SECTORS: u32 = 131_072;
const RESERVED: u32 = 32;
/// Sectors per FAT: 4 bytes per cluster, 128 per sector, for every cluster of the volume.
const FAT_SECTORS: u32 = 1024;

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// An empty FAT32 volume of [`PART_SECTORS`] sectors with volume id `serial`.
fn format_fat32(serial: u32) -> Vec<u8> {
    let mut v = vec![0u8; PART_SECTORS as usize * 512];
    let clusters = PART_SECTORS - RESERVED - 2 * FAT_SECTORS;
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
    put32(&mut bs, 28, PART_START);
    put32(&mut bs, 32, PART_SECTORS);
    put32(&mut bs, 36, FAT_SECTORS);
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
        let at = ((RESERVED + fat * FAT_SECTORS) * 512) as usize;
        put32(&mut v, at, 0x0FFF_FFF8);
        put32(&mut v, at + 4, 0x0FFF_FFFF);
        put32(&mut v, at + 8, 0x0FFF_FFFF);
    }
    v
}

/// The card image holding `files` (name, bytes) in the root of its FAT partition, with file
/// times `epoch`, the MBR disk id and volume id derived from `id`.
///
/// # Errors
/// The FAT writer fails (the files do not fit).
pub fn build_card(files: &[(&str, &[u8])], epoch: u64, id: u32) -> Result<Vec<u8>, CardError> {
    let writer = FatWriter::open(Cursor::new(format_fat32(id)), epoch)?;
    for (name, data) in files {
        writer.write_file(name, data)?;
    }
    let volume = writer.finish()?.into_inner();
    let mut img = vec![0u8; PART_START as usize * 512];
    put32(&mut img, 440, id);
    let e = 446;
    img[e] = 0;
    img[e + 1..e + 4].copy_from_slice(&[0xFE, 0xFF, 0xFF]);
    img[e + 4] = 0x0C;
    img[e + 5..e + 8].copy_from_slice(&[0xFE, 0xFF, 0xFF]);
    put32(&mut img, e + 8, PART_START);
    put32(&mut img, e + 12, PART_SECTORS);
    img[510] = 0x55;
    img[511] = 0xAA;
    img.extend_from_slice(&volume);
    Ok(img)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::fat::read::FatReader;

    #[test]
    fn card_files_read_back() {
        let img = build_card(
            &[("recovery.bin", b"rec"), ("pieeprom.sig", b"sig\n")],
            1_700_000_000,
            7,
        )
        .unwrap();
        assert_eq!(img.len(), (PART_START + PART_SECTORS) as usize * 512);
        let part = Cursor::new(img[PART_START as usize * 512..].to_vec());
        let r = FatReader::open(part).unwrap();
        assert_eq!(r.read("recovery.bin").unwrap().unwrap(), b"rec");
        assert_eq!(r.read("pieeprom.sig").unwrap().unwrap(), b"sig\n");
    }
}
