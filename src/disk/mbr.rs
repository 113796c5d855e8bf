//! Writing an MBR: the disk signature, a primary entry's length, or a whole sector 0.
//! ([`super::partition`] reads tables; everything that writes MBR bytes is here.)
//!
//! Sector 0 of an MBR disk: bytes 440..444 hold the 32-bit disk signature (the `xxxxxxxx` of
//! `PARTUUID=xxxxxxxx-NN`), 446..510 four 16-byte primary entries, 510..512 the `55 AA`
//! signature. An entry is: status (0x80 = active), first sector as CHS (3 bytes), partition
//! type, last sector as CHS, first sector as a 32-bit LBA, sector count (32 bits, so at most
//! 2 TiB of 512-byte sectors).

use std::io;

use super::Storage;

/// Offset of the disk signature in sector 0.
pub const DISK_ID_OFFSET: u64 = DISK_ID as u64;
/// [`DISK_ID_OFFSET`] as an index into sector 0.
const DISK_ID: usize = 440;
/// Offset of the first primary entry.
const ENTRIES: usize = 446;
/// Bytes per entry.
const ENTRY_LEN: usize = 16;

/// One primary partition entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrimaryEntry {
    /// Marked active (status 0x80).
    pub active: bool,
    /// Partition type byte (0x0c FAT32 LBA, 0x83 Linux).
    pub kind: u8,
    /// First sector.
    pub start_lba: u32,
    /// Length in sectors.
    pub sectors: u32,
}

impl PrimaryEntry {
    /// The 16 bytes of the entry, with CHS addresses as partitioning tools write them.
    pub fn encode(&self) -> [u8; ENTRY_LEN] {
        let mut e = [0u8; ENTRY_LEN];
        e[0] = if self.active { 0x80 } else { 0 };
        e[1..4].copy_from_slice(&chs(u64::from(self.start_lba)));
        e[4] = self.kind;
        let last = (u64::from(self.start_lba) + u64::from(self.sectors)).saturating_sub(1);
        e[5..8].copy_from_slice(&chs(last));
        e[8..12].copy_from_slice(&self.start_lba.to_le_bytes());
        e[12..16].copy_from_slice(&self.sectors.to_le_bytes());
        e
    }
}

/// Sector 0 of a new MBR disk with signature `disk_id` and up to four primary `entries`.
///
/// # Panics
/// Never: more than four entries are ignored.
pub fn sector0(disk_id: u32, entries: &[PrimaryEntry]) -> [u8; 512] {
    let mut s = [0u8; 512];
    s[DISK_ID..DISK_ID + 4].copy_from_slice(&disk_id.to_le_bytes());
    for (i, e) in entries.iter().take(4).enumerate() {
        let at = ENTRIES + ENTRY_LEN * i;
        s[at..at + ENTRY_LEN].copy_from_slice(&e.encode());
    }
    s[510] = 0x55;
    s[511] = 0xAA;
    s
}

/// Writes `id` as the disk signature of `disk`.
pub fn write_disk_id<S: Storage + ?Sized>(disk: &S, id: u32) -> io::Result<()> {
    disk.write_at(DISK_ID_OFFSET, &id.to_le_bytes())
}

/// Sets the length of primary partition `number` (1 to 4), which starts at `start_lba`, to
/// `sectors`: its sector count and the CHS address of its last sector.
///
/// # Errors
/// `InvalidInput` for a `number` outside 1..=4; the disk's write errors.
pub fn set_primary_length<S: Storage + ?Sized>(
    disk: &S,
    number: u32,
    start_lba: u64,
    sectors: u32,
) -> io::Result<()> {
    if !(1..=4).contains(&number) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("partition {number} is not a primary MBR entry"),
        ));
    }
    let entry = (ENTRIES + ENTRY_LEN * (number as usize - 1)) as u64;
    let last = (start_lba + u64::from(sectors)).saturating_sub(1);
    disk.write_at(entry + 5, &chs(last))?;
    disk.write_at(entry + 12, &sectors.to_le_bytes())
}

/// The CHS address of sector `lba` as an MBR entry stores it (255 heads, 63 sectors per
/// track), or the "beyond CHS" marker 1023/254/63 that partitioning tools write past 8 GiB.
pub fn chs(lba: u64) -> [u8; 3] {
    const HEADS: u64 = 255;
    const SECTORS: u64 = 63;
    let cylinder = lba / (HEADS * SECTORS);
    if cylinder > 1023 {
        return [0xFE, 0xFF, 0xFF];
    }
    let head = (lba / SECTORS) % HEADS;
    let sector = lba % SECTORS + 1;
    // Cylinder bits 8-9 go to the top of the sector byte.
    let b = |v: u64| u8::try_from(v & 0xFF).unwrap_or(0xFF);
    [b(head), b(sector | ((cylinder >> 2) & 0xC0)), b(cylinder)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::{MemStorage, PartitionTable};

    #[test]
    fn chs_matches_the_usual_geometry() {
        // Sector 0: cylinder 0, head 0, sector 1.
        assert_eq!(chs(0), [0, 1, 0]);
        // One track further: head 1.
        assert_eq!(chs(63), [1, 1, 0]);
        // Cylinder 256 sets bit 8 (0x40 in the sector byte).
        assert_eq!(chs(256 * 255 * 63), [0, 0x41, 0]);
        // Past cylinder 1023.
        assert_eq!(chs(1024 * 255 * 63), [0xFE, 0xFF, 0xFF]);
    }

    #[test]
    fn written_sector0_reads_back_through_the_table_reader() {
        let entry = |kind, start_lba, sectors| PrimaryEntry {
            active: false,
            kind,
            start_lba,
            sectors,
        };
        let s = sector0(
            0x1234_abcd,
            &[entry(0x0c, 2048, 4096), entry(0x83, 8192, 8192)],
        );
        let mut disk = vec![0u8; 16384 * 512];
        disk[..512].copy_from_slice(&s);
        let disk = MemStorage::new(disk);
        let t = PartitionTable::read(&disk).unwrap();
        assert_eq!(t.disk_id.to_string(), "1234abcd");
        assert_eq!(t.partitions.len(), 2);
        assert_eq!(t.partitions[1].offset(), 8192 * 512);
        assert_eq!(t.partitions[1].len(), 8192 * 512);

        set_primary_length(&disk, 2, 8192, 4096).unwrap();
        write_disk_id(&disk, 7).unwrap();
        let t = PartitionTable::read(&disk).unwrap();
        assert_eq!(t.disk_id.to_string(), "00000007");
        assert_eq!(t.partitions[1].len(), 4096 * 512);
        let mut e = [0u8; 16];
        disk.read_at(446 + 16, &mut e).unwrap();
        assert_eq!(e[5..8], chs(8192 + 4096 - 1));
        assert!(set_primary_length(&disk, 5, 0, 1).is_err());
    }
}
