//! Partition tables: MBR (what the official Raspberry Pi and Ubuntu raspi images use) and GPT
//! (behind a protective MBR entry of type 0xEE); the MBR and its EBR chain are decoded by
//! [`super::mbr`], the GPT by `gptman` once [`super::gpt`] has checked its headers.
//!
//! Only what the filesystems need is exposed: each partition's number, byte range and type. A
//! partition reaching past the end of the image file, starting on the table's own sectors or
//! overlapping another partition is an error before anything reads it, never silently truncated:
//! two filesystems sharing sectors would overwrite each other when one is written. GPT headers
//! are checked by [`super::gpt`] before `gptman` decodes them.

use std::fmt;
use std::io::{self, Read, Seek};

use serde::Serialize;

use super::SECTOR_SIZE;
use super::storage::Storage;
use super::window::Window;

/// Errors reading a partition table.
#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    /// The image is smaller than one sector.
    #[error("not a disk image: only {len} bytes, less than one 512-byte sector")]
    TooSmall {
        /// Length of the image.
        len: u64,
    },
    /// No 0x55AA signature at the end of sector 0.
    #[error(
        "no partition table: sector 0 does not end with the MBR signature 55 AA (found {found:02x} {found2:02x})"
    )]
    NoSignature {
        /// Byte 510.
        found: u8,
        /// Byte 511.
        found2: u8,
    },
    /// An MBR with a valid signature but no partition.
    #[error("the MBR has no partitions")]
    Empty,
    /// The MBR could not be decoded.
    #[error("invalid MBR: {0}")]
    Mbr(String),
    /// The GPT could not be decoded.
    #[error("invalid GPT behind the protective MBR: {0}")]
    Gpt(String),
    /// A partition reaches past the end of the file.
    #[error(
        "partition {number} ends at byte {end} but the image is only {disk_len} bytes (truncated image?)"
    )]
    PastEnd {
        /// 1-based partition number.
        number: u32,
        /// End offset in bytes (exclusive).
        end: u64,
        /// Length of the image.
        disk_len: u64,
    },
    /// Two partitions share sectors.
    #[error(
        "partitions {a} (sectors {a_start}..{a_end}) and {b} (sectors {b_start}..{b_end}) overlap: writing one would overwrite the other"
    )]
    Overlap {
        /// The partition that starts first.
        a: u32,
        /// Its first sector.
        a_start: u64,
        /// Its end sector (exclusive).
        a_end: u64,
        /// The other partition.
        b: u32,
        /// Its first sector.
        b_start: u64,
        /// Its end sector (exclusive).
        b_end: u64,
    },
    /// A partition lies on the table's own sectors (the MBR, or outside the GPT's usable range).
    #[error(
        "partition {number} (sectors {start}..{end}) lies on the partition table's own sectors ({what})"
    )]
    OnTable {
        /// 1-based partition number.
        number: u32,
        /// First sector.
        start: u64,
        /// End sector (exclusive).
        end: u64,
        /// Which rule.
        what: String,
    },
    /// I/O error reading the table.
    #[error("reading the partition table")]
    Io(#[from] io::Error),
}

/// The kind of partition table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TableKind {
    /// DOS/MBR table (official Raspberry Pi OS and Ubuntu raspi images).
    Mbr,
    /// GUID partition table.
    Gpt,
}

impl fmt::Display for TableKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Mbr => "dos (MBR)",
            Self::Gpt => "gpt",
        })
    }
}

/// A partition's type, as the table records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionType {
    /// MBR system id byte (0x0c FAT32 LBA, 0x83 Linux, ...).
    Mbr(u8),
    /// GPT partition type GUID (mixed-endian on disk, formatted canonically).
    Gpt([u8; 16]),
}

impl PartitionType {
    /// A short human name for well-known types.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Mbr(0x01) => "FAT12",
            Self::Mbr(0x04 | 0x06 | 0x0e) => "FAT16",
            Self::Mbr(0x0b) => "W95 FAT32",
            Self::Mbr(0x0c) => "W95 FAT32 (LBA)",
            Self::Mbr(0x05 | 0x0f | 0x85) => "Extended",
            Self::Mbr(0x82) => "Linux swap",
            Self::Mbr(0x83) => "Linux",
            Self::Mbr(0xef) => "EFI System",
            Self::Mbr(_) => "unknown",
            Self::Gpt(g) => match format_guid(g).as_str() {
                "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" => "EFI System",
                "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7" => "Microsoft basic data",
                "0FC63DAF-8483-4772-8E79-3D69D8477DE4" => "Linux filesystem",
                "B921B045-1DF0-41C3-AF44-4C6F280D3FAE" => "Linux root (ARM-64)",
                _ => "unknown",
            },
        }
    }
}

impl fmt::Display for PartitionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Mbr(b) => write!(f, "0x{b:02x}"),
            Self::Gpt(g) => f.write_str(&format_guid(g)),
        }
    }
}

impl Serialize for PartitionType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Formats a GPT GUID stored in its on-disk mixed-endian layout.
pub fn format_guid(g: &[u8; 16]) -> String {
    format!(
        "{:02X}{:02X}{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}",
        g[3],
        g[2],
        g[1],
        g[0],
        g[5],
        g[4],
        g[7],
        g[6],
        g[8],
        g[9],
        g[10],
        g[11],
        g[12],
        g[13],
        g[14],
        g[15]
    )
}

/// One partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Partition {
    /// 1-based number, as Linux names it (`p1`, `p2`; logical MBR partitions start at 5).
    pub number: u32,
    /// First sector (512 bytes).
    pub start_sector: u64,
    /// Length in sectors.
    pub sectors: u64,
    /// The type recorded in the table.
    #[serde(rename = "type")]
    pub ptype: PartitionType,
    /// MBR boot flag.
    pub bootable: bool,
    /// GPT partition name, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The `PARTUUID` Linux shows: `<diskid>-NN` for MBR, the partition GUID for GPT.
    pub partuuid: String,
}

impl Partition {
    /// Byte offset of the partition on the disk.
    pub fn offset(&self) -> u64 {
        self.start_sector * SECTOR_SIZE
    }

    /// Length of the partition in bytes.
    pub fn len(&self) -> u64 {
        self.sectors * SECTOR_SIZE
    }

    /// True for a zero-length partition.
    pub fn is_empty(&self) -> bool {
        self.sectors == 0
    }

    /// A window onto this partition of `storage`.
    ///
    /// # Errors
    /// `InvalidInput` when the partition does not lie inside `storage`.
    pub fn window<S: Storage>(&self, storage: S) -> std::io::Result<super::Window<S>> {
        super::Window::new(storage, self.offset(), self.len())
    }
}

/// The disk's identity: the MBR disk signature or the GPT disk GUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskId {
    /// 32-bit MBR disk signature (offset 440), the `xxxxxxxx` in `PARTUUID=xxxxxxxx-02`.
    Mbr(u32),
    /// GPT disk GUID.
    Gpt([u8; 16]),
}

impl fmt::Display for DiskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Mbr(id) => write!(f, "{id:08x}"),
            Self::Gpt(g) => f.write_str(&format_guid(g)),
        }
    }
}

impl Serialize for DiskId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A disk's partition table.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionTable {
    /// MBR or GPT.
    pub kind: TableKind,
    /// Disk signature or GUID.
    pub disk_id: DiskId,
    /// The partitions, in table order.
    pub partitions: Vec<Partition>,
    /// Damage found but worked around (a bad GPT copy when the other one is valid).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl PartitionTable {
    /// Reads the partition table of `disk`.
    pub fn read<S: Storage>(disk: &S) -> Result<Self, PartitionError> {
        let len = disk.len();
        if len < SECTOR_SIZE {
            return Err(PartitionError::TooSmall { len });
        }
        let mut sector0 = [0u8; 512];
        disk.read_at(0, &mut sector0)?;
        if sector0[510..512] != [0x55, 0xAA] {
            return Err(PartitionError::NoSignature {
                found: sector0[510],
                found2: sector0[511],
            });
        }
        let mbr = super::mbr::read(disk, &sector0)?;
        let (table, usable) = if mbr.entries.iter().any(|e| e.kind == 0xEE) {
            // gptman reads through `Read + Seek`: a window over the whole disk.
            Self::read_gpt(disk, &mut Window::new(disk, 0, len)?)?
        } else {
            (Self::from_mbr(&mbr), 1..=u64::MAX)
        };
        if table.partitions.is_empty() {
            return Err(PartitionError::Empty);
        }
        table.check_layout(len, &usable)?;
        Ok(table)
    }

    /// Every partition inside the file and the table's usable sectors, none sharing a sector.
    fn check_layout(
        &self,
        len: u64,
        usable: &std::ops::RangeInclusive<u64>,
    ) -> Result<(), PartitionError> {
        let end_of = |p: &Partition| p.start_sector.saturating_add(p.sectors);
        for p in &self.partitions {
            let end = p.offset().saturating_add(p.len());
            if p.start_sector.checked_mul(SECTOR_SIZE).is_none() || end > len {
                return Err(PartitionError::PastEnd {
                    number: p.number,
                    end,
                    disk_len: len,
                });
            }
            if !p.is_empty() && (p.start_sector < *usable.start() || end_of(p) - 1 > *usable.end())
            {
                return Err(PartitionError::OnTable {
                    number: p.number,
                    start: p.start_sector,
                    end: end_of(p),
                    what: if *usable.start() == 1 {
                        "sector 0 is the MBR".to_owned()
                    } else {
                        format!(
                            "the GPT's usable sectors are {}..={}",
                            usable.start(),
                            usable.end()
                        )
                    },
                });
            }
        }
        let mut by_start: Vec<&Partition> =
            self.partitions.iter().filter(|p| !p.is_empty()).collect();
        by_start.sort_by_key(|p| p.start_sector);
        for pair in by_start.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if b.start_sector < end_of(a) {
                return Err(PartitionError::Overlap {
                    a: a.number,
                    a_start: a.start_sector,
                    a_end: end_of(a),
                    b: b.number,
                    b_start: b.start_sector,
                    b_end: end_of(b),
                });
            }
        }
        Ok(())
    }

    fn from_mbr(mbr: &super::mbr::Table) -> Self {
        let id = mbr.disk_id;
        let partitions = mbr
            .entries
            .iter()
            .filter(|e| !e.is_extended())
            .map(|e| Partition {
                number: e.number,
                start_sector: e.start,
                sectors: e.sectors,
                ptype: PartitionType::Mbr(e.kind),
                bootable: e.active,
                name: None,
                partuuid: format!("{id:08x}-{:02}", e.number),
            })
            .collect();
        Self {
            kind: TableKind::Mbr,
            disk_id: DiskId::Mbr(id),
            partitions,
            warnings: Vec::new(),
        }
    }

    /// Decodes the valid GPT copy [`super::gpt::choose`] picked; returns the usable sectors too.
    fn read_gpt<S: Storage, R: Read + Seek>(
        disk: &S,
        reader: &mut R,
    ) -> Result<(Self, std::ops::RangeInclusive<u64>), PartitionError> {
        let choice = super::gpt::choose(disk).map_err(PartitionError::Gpt)?;
        let gpt_err = |e: gptman::Error| PartitionError::Gpt(e.to_string());
        reader.seek(io::SeekFrom::Start(choice.header.my_lba * SECTOR_SIZE))?;
        let header = gptman::GPTHeader::read_from(reader).map_err(gpt_err)?;
        let entries = header
            .read_partitions(reader, SECTOR_SIZE)
            .map_err(gpt_err)?;
        let mut partitions = Vec::new();
        for (i, p) in entries.iter().enumerate() {
            if !p.is_used() {
                continue;
            }
            let number = u32::try_from(i + 1).unwrap_or(u32::MAX);
            if p.ending_lba < p.starting_lba {
                return Err(PartitionError::Gpt(format!(
                    "partition {number} ends (sector {}) before it starts (sector {})",
                    p.ending_lba, p.starting_lba
                )));
            }
            partitions.push(Partition {
                number,
                start_sector: p.starting_lba,
                sectors: (p.ending_lba - p.starting_lba).saturating_add(1),
                ptype: PartitionType::Gpt(p.partition_type_guid),
                bootable: false,
                name: Some(p.partition_name.as_str().to_owned()).filter(|n| !n.is_empty()),
                partuuid: format_guid(&p.unique_partition_guid).to_lowercase(),
            });
        }
        let usable = choice.header.first_usable..=choice.header.last_usable;
        Ok((
            Self {
                kind: TableKind::Gpt,
                disk_id: DiskId::Gpt(header.disk_guid),
                partitions,
                warnings: choice.warning.into_iter().collect(),
            },
            usable,
        ))
    }

    /// The partition numbered `number` (1-based).
    pub fn get(&self, number: u32) -> Option<&Partition> {
        self.partitions.iter().find(|p| p.number == number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::MemStorage;

    fn mbr_disk(entries: &[(u8, u32, u32)], disk_len: usize) -> Vec<u8> {
        let mut d = vec![0u8; disk_len];
        d[440..444].copy_from_slice(&0x5e3d_a3c1u32.to_le_bytes());
        for (i, (sys, start, len)) in entries.iter().enumerate() {
            let e = 446 + 16 * i;
            d[e + 4] = *sys;
            d[e + 8..e + 12].copy_from_slice(&start.to_le_bytes());
            d[e + 12..e + 16].copy_from_slice(&len.to_le_bytes());
        }
        d[510] = 0x55;
        d[511] = 0xAA;
        d
    }

    #[test]
    fn reads_raspios_style_mbr() {
        let disk = MemStorage::new(mbr_disk(&[(0x0c, 16, 32), (0x83, 48, 16)], 64 * 512));
        let t = PartitionTable::read(&disk).unwrap();
        assert_eq!(t.kind, TableKind::Mbr);
        assert_eq!(t.disk_id.to_string(), "5e3da3c1");
        assert_eq!(t.partitions.len(), 2);
        let p2 = t.get(2).unwrap();
        assert_eq!(
            (p2.start_sector, p2.sectors, p2.offset()),
            (48, 16, 48 * 512)
        );
        assert_eq!(p2.partuuid, "5e3da3c1-02");
        assert_eq!(p2.ptype.name(), "Linux");
        assert_eq!(t.get(1).unwrap().ptype.to_string(), "0x0c");
    }

    #[test]
    fn bad_tables_are_refused() {
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("tiny", vec![0; 100], "not a disk image"),
            ("no signature", vec![0; 4096], "no partition table"),
            ("empty", mbr_disk(&[], 4096), "no partitions"),
            (
                "past end",
                mbr_disk(&[(0x83, 2, 100)], 4096),
                "partition 1 ends at byte 52224 but the image is only 4096 bytes",
            ),
            (
                "issue15 root inside the boot partition",
                mbr_disk(&[(0x0c, 16, 32), (0x83, 24, 16)], 64 * 512),
                "partitions 1 (sectors 16..48) and 2 (sectors 24..40) overlap",
            ),
            (
                "issue15 overlap in reverse table order",
                mbr_disk(&[(0x83, 40, 16), (0x0c, 16, 25)], 64 * 512),
                "partitions 2 (sectors 16..41) and 1 (sectors 40..56) overlap",
            ),
            (
                "issue15 partition over the MBR",
                mbr_disk(&[(0x0c, 0, 32)], 64 * 512),
                "partition 1 (sectors 0..32) lies on the partition table's own sectors (sector 0 is the MBR)",
            ),
            (
                "issue15 EBR loop",
                {
                    let mut d = mbr_disk(&[(0x0c, 16, 8), (0x05, 32, 32)], 64 * 512);
                    for (ebr, next) in [(32usize, 4u32), (36, 2)] {
                        let e = ebr * 512 + 446;
                        d[e + 4] = 0x83;
                        d[e + 8..e + 12].copy_from_slice(&1u32.to_le_bytes());
                        d[e + 12..e + 16].copy_from_slice(&1u32.to_le_bytes());
                        d[e + 16 + 4] = 0x05;
                        d[e + 16 + 8..e + 16 + 12].copy_from_slice(&next.to_le_bytes());
                        d[ebr * 512 + 510] = 0x55;
                        d[ebr * 512 + 511] = 0xAA;
                    }
                    d
                },
                "EBR 2 links back to sector 34 (a loop)",
            ),
        ];
        for (name, bytes, want) in cases {
            let err = PartitionTable::read(&MemStorage::new(bytes)).unwrap_err();
            assert!(err.to_string().contains(want), "{name}: {err}");
        }
    }

    /// A protective MBR and a GPT whose primary and backup copies are written by
    /// [`super::super::gpt::tests::put_header`], with the entries given.
    fn gpt_disk(entries: &[(u64, u64)]) -> Vec<u8> {
        let mut d = mbr_disk(&[(0xEE, 1, 199)], 200 * 512);
        for (i, (first, last)) in (1u8..).zip(entries) {
            for base in [2 * 512, 167 * 512] {
                let e = base + 128 * usize::from(i - 1);
                d[e..e + 16].copy_from_slice(&[0xAF; 16]);
                d[e + 16..e + 32].copy_from_slice(&[i; 16]);
                d[e + 32..e + 40].copy_from_slice(&first.to_le_bytes());
                d[e + 40..e + 48].copy_from_slice(&last.to_le_bytes());
            }
        }
        crate::disk::gpt::tests::put_header(&mut d, 1, 199, 2, 128, 128);
        crate::disk::gpt::tests::put_header(&mut d, 199, 1, 167, 128, 128);
        d
    }

    #[test]
    fn gpt_copies_and_layout_are_checked() {
        let t = PartitionTable::read(&MemStorage::new(gpt_disk(&[(34, 99), (100, 166)]))).unwrap();
        assert_eq!(t.kind, TableKind::Gpt);
        assert_eq!((t.partitions.len(), t.get(2).unwrap().sectors), (2, 67));
        assert!(t.warnings.is_empty());

        // issue15: a primary claiming 0xFFFFFFFF entries aborted gptman's allocation; the
        // backup is used and the table says so.
        let mut d = gpt_disk(&[(34, 99)]);
        crate::disk::gpt::tests::put_header(&mut d, 1, 199, 2, 0xFFFF_FFFF, 128);
        let t = PartitionTable::read(&MemStorage::new(d)).unwrap();
        assert_eq!(t.partitions.len(), 1);
        assert!(
            t.warnings[0].contains("primary GPT (sector 1) is damaged"),
            "{:?}",
            t.warnings
        );

        type Entries<'a> = &'a [(u64, u64)];
        let cases: [(&str, Entries, &str); 3] = [
            (
                "overlap",
                &[(34, 99), (90, 120)],
                "partitions 1 (sectors 34..100) and 2 (sectors 90..121) overlap",
            ),
            (
                "outside usable",
                &[(20, 99)],
                "the GPT's usable sectors are 34..=166",
            ),
            (
                "ends before it starts",
                &[(99, 34)],
                "partition 1 ends (sector 34) before it starts (sector 99)",
            ),
        ];
        for (name, entries, want) in cases {
            let err = PartitionTable::read(&MemStorage::new(gpt_disk(entries))).unwrap_err();
            assert!(err.to_string().contains(want), "{name}: {err}");
        }
        let mut d = gpt_disk(&[(34, 99)]);
        crate::disk::gpt::tests::put_header(&mut d, 1, 199, 2, 128, 0);
        crate::disk::gpt::tests::put_header(&mut d, 199, 1, 167, 128, 0);
        let err = PartitionTable::read(&MemStorage::new(d))
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid GPT"), "{err}");
        assert!(
            err.contains("primary header: partition entry size 0"),
            "{err}"
        );
    }

    #[test]
    fn guid_formatting_is_mixed_endian() {
        // EFI System partition type as stored on disk.
        let g = [
            0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11, 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E,
            0xC9, 0x3B,
        ];
        assert_eq!(format_guid(&g), "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
        assert_eq!(PartitionType::Gpt(g).name(), "EFI System");
    }
}
