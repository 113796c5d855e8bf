//! The MBR on disk: reading its primary entries and the chain of extended boot records (EBRs)
//! behind an extended partition, and writing the disk signature, a primary entry's length or a
//! whole sector 0. ([`super::partition`] turns what is read here into [`Partition`]s.)
//!
//! Sector 0 of an MBR disk: bytes 440..444 hold the 32-bit disk signature (the `xxxxxxxx` of
//! `PARTUUID=xxxxxxxx-NN`), 446..510 four 16-byte primary entries, 510..512 the `55 AA`
//! signature. An entry is: status (0x80 = active), first sector as CHS (3 bytes), partition
//! type, last sector as CHS, first sector as a 32-bit LBA, sector count (32 bits, so at most
//! 2 TiB of 512-byte sectors).
//!
//! An extended partition (types 0x05, 0x0f, 0x85, 0xc5, 0xd5) holds a linked list of EBRs. Each
//! EBR is a sector laid out like sector 0 (entries at 446, `55 AA` at 510) using only its first
//! two entries: the first is a logical partition whose start counts from this EBR, the second,
//! if used, links to the next EBR, whose start counts from the extended partition's first sector.
//! Linux numbers the logical partitions 5, 6, ... in chain order, one number per used entry.
//! The reader here is bounded on hostile input: at most [`MAX_LOGICAL`] EBRs, each link strictly
//! forward (so the chain cannot loop), no sector number past 2^32 and no EBR past the end of
//! the image.

use std::io;

use super::partition::PartitionError;
use super::{SECTOR_SIZE, Storage};

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

/// The most logical partitions (EBRs) accepted in an extended partition; Linux numbers at most
/// 256 partitions per disk.
pub const MAX_LOGICAL: usize = 256;

/// A used entry of the table, with its sector numbers made absolute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The number Linux gives it: 1 to 4 for primary entries, 5 on for logical ones.
    pub number: u32,
    /// Marked active (status 0x80).
    pub active: bool,
    /// Partition type byte.
    pub kind: u8,
    /// First sector, counted from the start of the disk.
    pub start: u64,
    /// Length in sectors.
    pub sectors: u64,
}

impl Entry {
    /// An extended partition: the container of the EBR chain, not a filesystem.
    pub fn is_extended(&self) -> bool {
        is_extended(self.kind)
    }
}

fn is_extended(kind: u8) -> bool {
    matches!(kind, 0x05 | 0x0f | 0x85 | 0xc5 | 0xd5)
}

/// A decoded MBR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// The 32-bit disk signature.
    pub disk_id: u32,
    /// The used entries: primary ones (extended included) in table order, then logical ones.
    pub entries: Vec<Entry>,
}

/// The raw fields of the `i`-th entry of a sector laid out like sector 0: status, type, first
/// sector (relative), sector count.
fn raw_entry(sector: &[u8; 512], i: usize) -> (u8, u8, u32, u32) {
    let e = &sector[ENTRIES + ENTRY_LEN * i..ENTRIES + ENTRY_LEN * (i + 1)];
    let le = |a: usize| u32::from_le_bytes([e[a], e[a + 1], e[a + 2], e[a + 3]]);
    (e[0], e[4], le(8), le(12))
}

/// Decodes the MBR whose sector 0 is `sector0` (already checked for `55 AA`), following the EBR
/// chain of its first extended partition on `disk`.
///
/// # Errors
/// [`PartitionError::Mbr`] for a status byte other than 00 or 80, an EBR chain that is too long,
/// loops, leaves the image or computes a sector past 2^32, or a later EBR without its
/// signature; [`PartitionError::OnTable`] for a used entry starting at sector 0 (the MBR
/// itself); the disk's read errors.
pub fn read<S: Storage + ?Sized>(disk: &S, sector0: &[u8; 512]) -> Result<Table, PartitionError> {
    let disk_id = u32::from_le_bytes([
        sector0[DISK_ID],
        sector0[DISK_ID + 1],
        sector0[DISK_ID + 2],
        sector0[DISK_ID + 3],
    ]);
    let mut entries = Vec::new();
    let mut extended = None;
    for i in 0..4 {
        let number = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let (status, kind, start, sectors) = raw_entry(sector0, i);
        check_status(status, || format!("entry {number}"))?;
        if kind == 0 {
            continue;
        }
        if start == 0 {
            // The UEFI specification puts a protective (0xEE) entry at sector 1; one at 0
            // claims the MBR itself.
            return Err(PartitionError::OnTable {
                number,
                start: 0,
                end: u64::from(sectors),
                what: if kind == 0xEE {
                    "sector 0 is the MBR (a protective GPT entry starts at sector 1)"
                } else {
                    "sector 0 is the MBR"
                }
                .to_owned(),
            });
        }
        if is_extended(kind) && extended.is_none() {
            extended = Some(start);
        }
        entries.push(Entry {
            number,
            active: status == 0x80,
            kind,
            start: u64::from(start),
            sectors: u64::from(sectors),
        });
    }
    if let Some(first) = extended {
        read_logical(disk, first, &mut entries)?;
    }
    Ok(Table { disk_id, entries })
}

fn check_status(status: u8, what: impl Fn() -> String) -> Result<(), PartitionError> {
    if status == 0 || status == 0x80 {
        return Ok(());
    }
    Err(PartitionError::Mbr(format!(
        "{} has status byte {status:#04x} (only 0x00 and 0x80 are valid)",
        what()
    )))
}

/// Follows the EBR chain of the extended partition starting at sector `first`.
fn read_logical<S: Storage + ?Sized>(
    disk: &S,
    first: u32,
    entries: &mut Vec<Entry>,
) -> Result<(), PartitionError> {
    let bad = |why: String| PartitionError::Mbr(format!("extended partition: {why}"));
    let mut number = 5u32;
    // The current EBR, counted from `first`.
    let mut rel = 0u32;
    for n in 1..=MAX_LOGICAL + 1 {
        if n > MAX_LOGICAL {
            return Err(bad(format!("more than {MAX_LOGICAL} logical partitions")));
        }
        let ebr = first
            .checked_add(rel)
            .ok_or_else(|| bad(format!("EBR {n} lies past sector 2^32")))?;
        let at = u64::from(ebr) * SECTOR_SIZE;
        if at + SECTOR_SIZE > disk.len() {
            return Err(bad(format!(
                "EBR {n} at sector {ebr} is past the end of the image"
            )));
        }
        let mut s = [0u8; 512];
        disk.read_at(at, &mut s)?;
        if s[510..512] != [0x55, 0xAA] {
            if n == 1 {
                // An empty extended partition needs no EBR.
                return Ok(());
            }
            return Err(bad(format!(
                "EBR {n} at sector {ebr} does not end with 55 AA"
            )));
        }
        for i in 0..2 {
            check_status(s[ENTRIES + ENTRY_LEN * i], || {
                format!("EBR {n} entry {}", i + 1)
            })?;
        }
        let (status, kind, start, sectors) = raw_entry(&s, 0);
        if kind != 0 && sectors != 0 {
            let abs = ebr.checked_add(start).ok_or_else(|| {
                bad(format!(
                    "logical partition {number} starts past sector 2^32"
                ))
            })?;
            if start == 0 {
                return Err(bad(format!(
                    "logical partition {number} starts on its own EBR (sector {ebr})"
                )));
            }
            entries.push(Entry {
                number,
                active: status == 0x80,
                kind,
                start: u64::from(abs),
                sectors: u64::from(sectors),
            });
            number += 1;
        }
        let (_, next_kind, next, _) = raw_entry(&s, 1);
        if !is_extended(next_kind) || next == 0 {
            return Ok(());
        }
        if next <= rel {
            return Err(bad(format!(
                "EBR {} links back to sector {} (a loop)",
                n,
                u64::from(first) + u64::from(next)
            )));
        }
        rel = next;
    }
    Ok(())
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

    /// A disk of `sectors` sectors whose sector 0 holds `primary`, plus EBRs: (sector, logical
    /// entry as (type, start relative to the EBR, length), link as (type, start relative to
    /// the extended partition)).
    type Ebr = (usize, (u8, u32, u32), (u8, u32));

    fn disk_with_ebrs(sectors: usize, primary: &[PrimaryEntry], ebrs: &[Ebr]) -> MemStorage {
        let mut d = vec![0u8; sectors * 512];
        d[..512].copy_from_slice(&sector0(0xfeed_0001, primary));
        for &(at, (kind, start, len), (next_kind, next)) in ebrs {
            let s = &mut d[at * 512..(at + 1) * 512];
            s[ENTRIES + 4] = kind;
            s[ENTRIES + 8..ENTRIES + 12].copy_from_slice(&start.to_le_bytes());
            s[ENTRIES + 12..ENTRIES + 16].copy_from_slice(&len.to_le_bytes());
            s[ENTRIES + 16 + 4] = next_kind;
            s[ENTRIES + 16 + 8..ENTRIES + 16 + 12].copy_from_slice(&next.to_le_bytes());
            s[510] = 0x55;
            s[511] = 0xAA;
        }
        MemStorage::new(d)
    }

    fn primary(kind: u8, start_lba: u32, sectors: u32) -> PrimaryEntry {
        PrimaryEntry {
            active: false,
            kind,
            start_lba,
            sectors,
        }
    }

    fn read_disk(disk: &MemStorage) -> Result<Table, PartitionError> {
        let mut s0 = [0u8; 512];
        disk.read_at(0, &mut s0).unwrap();
        read(disk, &s0)
    }

    #[test]
    fn logical_partitions_are_numbered_from_5_in_chain_order() {
        // Extended at 32..96; EBRs at 32 (logical 33..41) and 48 (logical 50..60); an EBR with
        // an empty first entry in between takes no number, as in Linux.
        let disk = disk_with_ebrs(
            128,
            &[primary(0x0c, 8, 24), primary(0x05, 32, 64)],
            &[
                (32, (0x83, 1, 8), (0x05, 12)),
                (44, (0, 0, 0), (0x05, 16)),
                (48, (0x83, 2, 10), (0, 0)),
            ],
        );
        let t = read_disk(&disk).unwrap();
        let got: Vec<_> = t
            .entries
            .iter()
            .map(|e| (e.number, e.kind, e.start, e.sectors))
            .collect();
        assert_eq!(
            got,
            [
                (1, 0x0c, 8, 24),
                (2, 0x05, 32, 64),
                (5, 0x83, 33, 8),
                (6, 0x83, 50, 10)
            ]
        );
        assert!(t.entries[1].is_extended());
    }

    #[test]
    fn hostile_ebr_chains_are_refused() {
        let ext = [primary(0x0c, 8, 24), primary(0x0f, 32, 64)];
        let cases: Vec<(&str, MemStorage, &str)> = vec![
            (
                // The fuzz regression: an unused entry starting at 2^32 - 1 overflowed mbrman.
                "unused entry past 2^32 is ignored, the empty chain reads",
                disk_with_ebrs(128, &ext, &[(32, (0, u32::MAX, 1), (0, 0))]),
                "",
            ),
            (
                "logical start past 2^32",
                disk_with_ebrs(128, &ext, &[(32, (0x83, u32::MAX, 1), (0, 0))]),
                "logical partition 5 starts past sector 2^32",
            ),
            (
                "link past the image",
                disk_with_ebrs(128, &ext, &[(32, (0x83, 1, 1), (0x05, 1000))]),
                "EBR 2 at sector 1032 is past the end of the image",
            ),
            (
                "second EBR without signature",
                disk_with_ebrs(128, &ext, &[(32, (0x83, 1, 1), (0x05, 8))]),
                "EBR 2 at sector 40 does not end with 55 AA",
            ),
            (
                "self link",
                disk_with_ebrs(
                    128,
                    &ext,
                    &[(32, (0x83, 1, 1), (0x05, 4)), (36, (0x83, 1, 1), (0x05, 4))],
                ),
                "EBR 2 links back to sector 36 (a loop)",
            ),
            (
                "logical on its own EBR",
                disk_with_ebrs(128, &ext, &[(32, (0x83, 0, 4), (0, 0))]),
                "logical partition 5 starts on its own EBR (sector 32)",
            ),
        ];
        for (name, disk, want) in cases {
            match read_disk(&disk) {
                Ok(_) if want.is_empty() => {}
                Ok(t) => panic!("{name}: accepted {t:?}"),
                Err(e) => assert!(
                    !want.is_empty() && e.to_string().contains(want),
                    "{name}: {e}"
                ),
            }
        }
        // A status byte other than 00/80 means sector 0 is not an MBR (a FAT boot sector, say).
        let mut d = vec![0u8; 64 * 512];
        d[..512].copy_from_slice(&sector0(1, &[primary(0x83, 8, 8)]));
        d[ENTRIES + 16] = 0x12;
        let err = read_disk(&MemStorage::new(d)).unwrap_err().to_string();
        assert!(err.contains("entry 2 has status byte 0x12"), "{err}");
    }
}
