//! Which bytes of an image its filesystems need (see the rules in [`super`]).

use super::BlockMap;
use crate::disk::{Partition, PartitionError, PartitionTable, Storage};
use crate::fs::ext4::Ext4Error;
use crate::fs::ext4::allocation::read_block_usage;
use crate::fs::fat::table::{FatLayout, used_clusters};
use crate::fs::fat::{BootSector, FatError};
use crate::fs::{Filesystem, probe};

/// Maps `disk`: see [`super`] for what is mapped.
///
/// # Errors
/// Reading fails. (An image without a partition table piimage can decode is mapped whole,
/// with a note in [`BlockMap::notes`].)
pub fn map_image(disk: &dyn Storage) -> std::io::Result<BlockMap> {
    let len = disk.len();
    let table = match PartitionTable::read(&disk) {
        Ok(t) => t,
        Err(PartitionError::Io(e)) => return Err(e),
        Err(e) => {
            // No table, or one piimage cannot decode: every byte may matter.
            let mut map = BlockMap::from_byte_ranges(len, &[(0, len)]);
            map.notes
                .push(format!("image mapped whole: {}", crate::error::chain(&e)));
            return Ok(map);
        }
    };
    let mut mapped: Vec<(u64, u64)> = Vec::new();
    let mut understood: Vec<(u64, u64)> = Vec::new();
    let mut notes = Vec::new();
    for p in &table.partitions {
        let span = (p.offset(), p.offset() + p.len());
        let used = match probe(&disk, p)? {
            Some(Filesystem::Vfat) => fat_bytes(disk, p),
            Some(Filesystem::Ext4) => ext4_bytes(disk, p),
            None => continue,
        };
        match used {
            Ok(ranges) => {
                mapped.extend(ranges);
                understood.push(span);
            }
            Err(Unreadable::Io(e)) => return Err(e),
            Err(Unreadable::Fs(why)) => {
                notes.push(format!("partition {} mapped whole: {why}", p.number))
            }
        }
    }
    mapped.extend(complement(len, understood));
    let mut map = BlockMap::from_byte_ranges(len, &mapped);
    map.notes = notes;
    Ok(map)
}

/// Why a filesystem's usage could not be read.
enum Unreadable {
    /// Reading the image failed: an error for the caller.
    Io(std::io::Error),
    /// The filesystem is damaged or unsupported: map it whole.
    Fs(String),
}

impl From<Ext4Error> for Unreadable {
    fn from(e: Ext4Error) -> Self {
        match e {
            Ext4Error::Io(e) => Self::Io(e),
            e => Self::Fs(crate::error::chain(&e)),
        }
    }
}

impl From<FatError> for Unreadable {
    fn from(e: FatError) -> Self {
        match e {
            FatError::Io(e) => Self::Io(e),
            e => Self::Fs(crate::error::chain(&e)),
        }
    }
}

impl From<std::io::Error> for Unreadable {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

/// The disk byte ranges a FAT partition uses: its metadata regions and used clusters (in any
/// FAT copy).
fn fat_bytes(disk: &dyn Storage, p: &Partition) -> Result<Vec<(u64, u64)>, Unreadable> {
    let window = p.window(disk)?;
    let mut sector = [0u8; 512];
    window.read_at(0, &mut sector)?;
    let bs = BootSector::from_bytes(&sector)?;
    let layout = FatLayout::new(&bs);
    let end = p.offset() + p.len();
    let mut ranges = vec![(p.offset(), (p.offset() + layout.data_offset).min(end))];
    for copy in 0..layout.fats {
        for (first, count) in used_clusters(&window, &layout, copy)? {
            let start = p.offset() + layout.cluster_offset(first);
            let stop = start + u64::from(count) * layout.cluster_size;
            ranges.push((start.min(end), stop.min(end)));
        }
    }
    Ok(ranges)
}

/// The disk byte ranges an ext4 partition uses: every block in use.
fn ext4_bytes(disk: &dyn Storage, p: &Partition) -> Result<Vec<(u64, u64)>, Unreadable> {
    let window = p.window(disk)?;
    let usage = read_block_usage(&window)?;
    let bs = u64::from(usage.block_size);
    let end = p.offset() + p.len();
    Ok(usage
        .used
        .iter()
        .map(|&(first, count)| {
            let start = p.offset().saturating_add(first.saturating_mul(bs));
            let stop = start.saturating_add(count.saturating_mul(bs));
            (start.min(end), stop.min(end))
        })
        .collect())
}

/// The parts of `[0, len)` outside every span of `spans`.
fn complement(len: u64, mut spans: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    spans.sort_unstable();
    let mut out = Vec::new();
    let mut pos = 0;
    for (s, e) in spans {
        if s > pos {
            out.push((pos, s.min(len)));
        }
        pos = pos.max(e);
    }
    if pos < len {
        out.push((pos, len));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::MemStorage;

    #[test]
    fn complement_table() {
        type Spans = &'static [(u64, u64)];
        let cases: &[(&str, u64, Spans, Spans)] = &[
            ("nothing understood", 100, &[], &[(0, 100)]),
            (
                "table gap and tail",
                100,
                &[(10, 50)],
                &[(0, 10), (50, 100)],
            ),
            (
                "gap between",
                100,
                &[(60, 100), (10, 50)],
                &[(0, 10), (50, 60)],
            ),
            ("overlapping", 100, &[(0, 60), (50, 100)], &[]),
        ];
        for (name, len, spans, want) in cases {
            assert_eq!(complement(*len, spans.to_vec()), *want, "case {name}");
        }
    }

    #[test]
    fn unpartitioned_and_unknown_partitions_are_mapped_whole() {
        let disk = MemStorage::new(vec![0; 64 << 10]);
        let m = map_image(&disk).unwrap();
        assert_eq!(m.mapped_blocks(), 16);
        assert_eq!(m.notes.len(), 1, "{:?}", m.notes);

        // One partition of an unknown filesystem: everything is mapped.
        let mut d = vec![0u8; 64 << 10];
        d[446 + 4] = 0x83;
        d[446 + 8..446 + 12].copy_from_slice(&16u32.to_le_bytes());
        d[446 + 12..446 + 16].copy_from_slice(&64u32.to_le_bytes());
        d[510] = 0x55;
        d[511] = 0xAA;
        let m = map_image(&MemStorage::new(d)).unwrap();
        assert_eq!(m.mapped_blocks(), 16);
        assert!(m.notes.is_empty());
    }
}
