//! GPT header and entry-array checks, made before `gptman` decodes a copy.
//!
//! `gptman` trusts the fields it reads: it reserves `number_of_partition_entries` entries up
//! front (0xFFFFFFFF is hundreds of GB) and asserts that the entries it read add up to
//! `number × size_of_partition_entry` (an entry size of 0 panics). So every field that sizes or
//! places something is checked here against the file first (UEFI 2.10 §5.3.2, "GPT Header"):
//!
//! - signature `EFI PART`, revision 1.0, header size 92 (what `gptman` decodes), header CRC32;
//! - `my_lba` is the sector the header was read from (1 for the primary);
//! - `first_usable_lba <= last_usable_lba < ` the file's last sector, and both headers lie outside
//!   the usable range;
//! - the entry size is 128 bytes (the only size `gptman` decodes; UEFI allows 128·2ⁿ, no image
//!   tool writes anything else), the count is 1 to [`MAX_ENTRIES`], and the array lies inside the
//!   file, past the primary header and outside the usable range;
//! - the entry array's CRC32.
//!
//! Both copies are checked; the primary is used when it is valid, else the backup (found at the
//! primary's `alternate_lba`, or at the file's last sector as `gptman` and the kernel look for it).
//! When one copy is bad the table carries a warning naming it, as `gdisk` does.

use super::SECTOR_SIZE;
use super::storage::Storage;

/// The largest entry count accepted (4 MiB of 128-byte entries; tools write 128).
pub const MAX_ENTRIES: u32 = 32_768;

/// The entry size `gptman` decodes.
const ENTRY_SIZE: u32 = 128;

/// A checked GPT header: the fields the rest of piimage relies on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Sector this header is stored at.
    pub my_lba: u64,
    /// Sector of the other copy.
    pub alternate_lba: u64,
    /// First sector a partition may use.
    pub first_usable: u64,
    /// Last sector a partition may use.
    pub last_usable: u64,
    /// First sector of the entry array.
    pub entries_lba: u64,
    /// Number of entries.
    pub entries: u32,
}

impl Header {
    /// Sectors the entry array occupies.
    fn array_sectors(&self) -> u64 {
        (u64::from(self.entries) * u64::from(ENTRY_SIZE)).div_ceil(SECTOR_SIZE)
    }
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(data);
    c.sum()
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Reads and checks the header stored at sector `lba` of `disk`; the error says what is wrong.
pub fn check_copy<S: Storage>(disk: &S, lba: u64) -> Result<Header, String> {
    let sectors = disk.len() / SECTOR_SIZE;
    if lba == 0 || lba >= sectors {
        return Err(format!(
            "sector {lba} is outside the image ({sectors} sectors)"
        ));
    }
    let mut s = [0u8; 512];
    disk.read_at(lba * SECTOR_SIZE, &mut s)
        .map_err(|e| format!("reading sector {lba}: {e}"))?;
    if &s[0..8] != b"EFI PART" {
        return Err(format!("no `EFI PART` signature at sector {lba}"));
    }
    if s[8..12] != [0, 0, 1, 0] {
        return Err(format!("unknown revision {:02x?}", &s[8..12]));
    }
    let header_size = le32(&s, 12);
    if header_size != 92 {
        return Err(format!("header size {header_size}, expected 92"));
    }
    let stored = le32(&s, 16);
    let mut h = s[..92].to_vec();
    h[16..20].fill(0);
    let computed = crc32(&h);
    if stored != computed {
        return Err(format!(
            "header checksum {stored:08x} does not match its content ({computed:08x})"
        ));
    }
    let hdr = Header {
        my_lba: le64(&s, 24),
        alternate_lba: le64(&s, 32),
        first_usable: le64(&s, 40),
        last_usable: le64(&s, 48),
        entries_lba: le64(&s, 72),
        entries: le32(&s, 80),
    };
    let entry_size = le32(&s, 84);
    if hdr.my_lba != lba {
        return Err(format!(
            "header at sector {lba} says it is at sector {}",
            hdr.my_lba
        ));
    }
    if entry_size != ENTRY_SIZE {
        return Err(format!(
            "partition entry size {entry_size} (only 128 is supported)"
        ));
    }
    if hdr.entries == 0 || hdr.entries > MAX_ENTRIES {
        return Err(format!(
            "{} partition entries (1 to {MAX_ENTRIES} accepted)",
            hdr.entries
        ));
    }
    if hdr.first_usable > hdr.last_usable || hdr.last_usable >= sectors {
        return Err(format!(
            "usable sectors {}..={} do not fit the image ({sectors} sectors)",
            hdr.first_usable, hdr.last_usable
        ));
    }
    if (hdr.first_usable..=hdr.last_usable).contains(&lba) {
        return Err(format!(
            "the header (sector {lba}) lies inside the usable sectors {}..={}",
            hdr.first_usable, hdr.last_usable
        ));
    }
    let array_end = hdr.entries_lba.checked_add(hdr.array_sectors());
    let array_ok = hdr.entries_lba >= 2
        && array_end.is_some_and(|end| end <= sectors)
        && !(hdr.entries_lba <= lba && array_end.is_some_and(|end| lba < end));
    let array_end = array_end.unwrap_or(u64::MAX);
    if !array_ok || (hdr.entries_lba <= hdr.last_usable && hdr.first_usable < array_end) {
        return Err(format!(
            "the entry array (sectors {}..{}) is outside the image, overlaps the header or lies inside the usable sectors {}..={}",
            hdr.entries_lba, array_end, hdr.first_usable, hdr.last_usable
        ));
    }
    let len = usize::try_from(u64::from(hdr.entries) * u64::from(ENTRY_SIZE))
        .map_err(|_| "entry array too large".to_owned())?;
    let mut array = vec![0u8; len];
    disk.read_at(hdr.entries_lba * SECTOR_SIZE, &mut array)
        .map_err(|e| format!("reading the entry array: {e}"))?;
    let stored = le32(&s, 88);
    let computed = crc32(&array);
    if stored != computed {
        return Err(format!(
            "entry array checksum {stored:08x} does not match its content ({computed:08x})"
        ));
    }
    Ok(hdr)
}

/// Which copy to decode, and a warning when the other one is bad.
#[derive(Debug)]
pub struct Choice {
    /// The valid header to decode.
    pub header: Header,
    /// Set when one copy is damaged.
    pub warning: Option<String>,
}

/// Checks both copies; `Err` carries both reasons when neither is usable.
pub fn choose<S: Storage>(disk: &S) -> Result<Choice, String> {
    let last = (disk.len() / SECTOR_SIZE).saturating_sub(1);
    match check_copy(disk, 1) {
        Ok(primary) => {
            let at = if primary.alternate_lba > 1 && primary.alternate_lba <= last {
                primary.alternate_lba
            } else {
                last
            };
            let warning = check_copy(disk, at).err().map(|why| {
                format!("the backup GPT (sector {at}) is damaged: {why}; the primary was used")
            });
            Ok(Choice {
                header: primary,
                warning,
            })
        }
        Err(primary_why) => match check_copy(disk, last) {
            Ok(backup) => Ok(Choice {
                header: backup,
                warning: Some(format!(
                    "the primary GPT (sector 1) is damaged: {primary_why}; the backup (sector {last}) was used"
                )),
            }),
            Err(backup_why) => Err(format!(
                "primary header: {primary_why}; backup header (sector {last}): {backup_why}"
            )),
        },
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::disk::MemStorage;

    /// Writes a valid header at `lba` with its entry array at `entries_lba`.
    pub(crate) fn put_header(
        d: &mut [u8],
        lba: usize,
        alt: u64,
        entries_lba: usize,
        entries: u32,
        entry_size: u32,
    ) {
        let sectors = d.len() / 512;
        let arr_len = usize::try_from(u64::from(entries) * u64::from(entry_size))
            .unwrap_or(usize::MAX)
            .min(d.len());
        let at = (entries_lba * 512).min(d.len());
        let crc = crc32(&d[at..(at + arr_len).min(d.len())]);
        let h = &mut d[lba * 512..lba * 512 + 92];
        h.fill(0);
        h[0..8].copy_from_slice(b"EFI PART");
        h[8..12].copy_from_slice(&[0, 0, 1, 0]);
        h[12..16].copy_from_slice(&92u32.to_le_bytes());
        h[24..32].copy_from_slice(&(lba as u64).to_le_bytes());
        h[32..40].copy_from_slice(&alt.to_le_bytes());
        h[40..48].copy_from_slice(&34u64.to_le_bytes());
        h[48..56].copy_from_slice(&(sectors as u64 - 34).to_le_bytes());
        h[56..72].copy_from_slice(&[0x11; 16]);
        h[72..80].copy_from_slice(&(entries_lba as u64).to_le_bytes());
        h[80..84].copy_from_slice(&entries.to_le_bytes());
        h[84..88].copy_from_slice(&entry_size.to_le_bytes());
        h[88..92].copy_from_slice(&crc.to_le_bytes());
        let c = crc32(h);
        h[16..20].copy_from_slice(&c.to_le_bytes());
    }

    fn disk() -> Vec<u8> {
        let mut d = vec![0u8; 200 * 512];
        put_header(&mut d, 1, 199, 2, 128, 128);
        put_header(&mut d, 199, 1, 167, 128, 128);
        d
    }

    #[test]
    fn valid_copies_are_accepted() {
        let c = choose(&MemStorage::new(disk())).unwrap();
        assert_eq!(c.header.my_lba, 1);
        assert_eq!(c.warning, None);
    }

    #[test]
    fn absurd_fields_are_refused_by_name() {
        let cases: &[(&str, u32, u32, usize, &str)] = &[
            (
                "huge count",
                0xFFFF_FFFF,
                128,
                2,
                "4294967295 partition entries",
            ),
            ("no entries", 0, 128, 2, "0 partition entries"),
            ("entry size 0", 128, 0, 2, "entry size 0"),
            ("entry size 64", 128, 64, 2, "entry size 64"),
            ("array past the end", 128, 128, 190, "outside the image"),
            ("array over the header", 128, 128, 1, "overlaps the header"),
        ];
        for (name, count, size, at, want) in cases {
            let mut d = disk();
            put_header(&mut d, 1, 199, *at, *count, *size);
            let err = check_copy(&MemStorage::new(d.clone()), 1).unwrap_err();
            assert!(err.contains(want), "{name}: {err}");
            // The backup is still good: it is used and the primary is named as damaged.
            let c = choose(&MemStorage::new(d)).unwrap();
            assert_eq!(c.header.my_lba, 199, "{name}");
            assert!(
                c.warning
                    .unwrap()
                    .contains("primary GPT (sector 1) is damaged")
            );
        }
    }

    #[test]
    fn bad_checksums_and_both_copies_bad() {
        let mut d = disk();
        d[2 * 512 + 5] ^= 1; // primary entry array
        let c = choose(&MemStorage::new(d.clone())).unwrap();
        assert_eq!(c.header.my_lba, 199);
        assert!(c.warning.unwrap().contains("entry array checksum"));
        d[199 * 512 + 40] ^= 1; // backup header
        let err = choose(&MemStorage::new(d)).unwrap_err();
        assert!(
            err.contains("primary header: entry array checksum"),
            "{err}"
        );
        assert!(
            err.contains("backup header (sector 199): header checksum"),
            "{err}"
        );
        let mut d = disk();
        d[199 * 512] = b'X';
        let c = choose(&MemStorage::new(d)).unwrap();
        assert_eq!(c.header.my_lba, 1);
        assert!(
            c.warning
                .unwrap()
                .contains("backup GPT (sector 199) is damaged")
        );
    }
}
