//! The card image: an MBR ([`crate::disk::mbr`]) with one FAT32 partition (type `0x0c`, at
//! 1 MiB, 64 MiB long) that holds the update files, formatted by
//! [`crate::fs::fat::format::fat32`] and filled through [`crate::fs::fat::write::FatWriter`].

use std::io::Cursor;

use crate::disk::mbr::{self, PrimaryEntry};
use crate::fs::fat::format;
use crate::fs::fat::write::FatWriter;

use super::CardError;

/// Sectors before the partition (1 MiB).
const PART_START: u32 = 2048;
/// Partition length in sectors (64 MiB).
const PART_SECTORS: u32 = 131_072;
/// The card image holding `files` (name, bytes) in the root of its FAT partition, with file
/// times `epoch`, the MBR disk id and volume id derived from `id`.
///
/// # Errors
/// The FAT writer fails (the files do not fit).
pub fn build_card(files: &[(&str, &[u8])], epoch: u64, id: u32) -> Result<Vec<u8>, CardError> {
    let writer = FatWriter::open(
        Cursor::new(format::fat32(PART_SECTORS, PART_START, id)?),
        epoch,
    )?;
    for (name, data) in files {
        writer.write_file(name, data)?;
    }
    let volume = writer.finish()?.into_inner();
    let mut img = vec![0u8; PART_START as usize * 512];
    let entry = PrimaryEntry {
        active: false,
        kind: 0x0c,
        start_lba: PART_START,
        sectors: PART_SECTORS,
    };
    img[..512].copy_from_slice(&mbr::sector0(id, &[entry]));
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
