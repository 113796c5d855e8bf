//! The FAT's chains checked whole before a volume is opened: `hadris-fat` follows a chain for
//! as many bytes as the directory entry claims, so a chain that loops is read round and round
//! (a `cmdline.txt` came back as 100 kB of repeats) and a cross-linked one is shared by two
//! files. `fsck.fat` reports both; piimage refuses them before reading or writing anything.
//!
//! Every entry of the first FAT is decoded (fatgen103 §4): free (0), bad (0x?FFFFFF7),
//! end-of-chain (0x?FFFFFF8 and above) or the next cluster, which must be a data cluster
//! (2 to `clusters + 1`) that is itself in use and that no other entry points to. Then every
//! chain is walked once (the FAT is a graph with one edge per cluster: a walk that comes back
//! to a cluster of the same walk is a loop). Linear in the number of clusters: a 512 MiB
//! FAT32 with 512-byte clusters has a 4 MiB FAT.

use std::io::{Read, Seek, SeekFrom};

use super::boot_sector::{FatError, FatType};
use super::table::FatLayout;

/// Bad-cluster and end-of-chain marks start here (after masking to the entry width).
fn marks(fat_type: FatType) -> (u32, u32) {
    match fat_type {
        FatType::Fat12 => (0xFF7, 0xFF8),
        FatType::Fat16 => (0xFFF7, 0xFFF8),
        FatType::Fat32 => (0x0FFF_FFF7, 0x0FFF_FFF8),
    }
}

fn damaged(why: String) -> FatError {
    FatError::Damaged(why)
}

/// Reads the first FAT of the volume at the start of `data` and checks its chains.
///
/// # Errors
/// [`FatError::Damaged`] naming the cluster, or a read error.
pub fn check_chains<D: Read + Seek>(data: &mut D, layout: &FatLayout) -> Result<(), FatError> {
    let n = usize::try_from(layout.clusters)
        .unwrap_or(usize::MAX)
        .saturating_add(2);
    let bits: usize = match layout.fat_type {
        FatType::Fat12 => 12,
        FatType::Fat16 => 16,
        FatType::Fat32 => 32,
    };
    let need = (n * bits).div_ceil(8);
    if (need as u64) > layout.fat_len {
        return Err(damaged(format!(
            "the FAT ({} bytes) is too small for {} clusters",
            layout.fat_len, layout.clusters
        )));
    }
    let mut fat = vec![0u8; need + 1];
    data.seek(SeekFrom::Start(layout.fat_offset))?;
    data.read_exact(&mut fat[..need])?;
    let next: Vec<u32> = (0..n)
        .map(|c| super::table::entry(layout.fat_type, &fat, c))
        .collect();
    drop(fat);
    let (bad, eoc) = marks(layout.fat_type);
    let is_link = |v: u32| v != 0 && v < bad;
    let mut pointed = vec![false; n];
    for c in 2..n {
        let v = next[c];
        if !is_link(v) {
            continue;
        }
        let t = v as usize;
        if t < 2 || t >= n {
            return Err(damaged(format!(
                "cluster {c} links to {v}, outside the {} data clusters",
                layout.clusters
            )));
        }
        if next[t] == 0 {
            return Err(damaged(format!("cluster {c} links to free cluster {v}")));
        }
        if pointed[t] {
            return Err(damaged(format!(
                "cluster {v} is linked from two chains (cross-linked files)"
            )));
        }
        pointed[t] = true;
    }
    // Each cluster has at most one predecessor now, so walking from every chain head finds
    // every non-looping chain; a linked cluster never reached that way lies on a loop.
    let mut reached = vec![false; n];
    for head in 2..n {
        if pointed[head] || next[head] == 0 {
            continue;
        }
        let mut c = head;
        loop {
            reached[c] = true;
            let v = next[c];
            if !is_link(v) || v >= eoc {
                break;
            }
            c = v as usize;
        }
    }
    if let Some(c) = (2..n).find(|&c| next[c] != 0 && !reached[c]) {
        return Err(damaged(format!(
            "the chain through cluster {c} loops back on itself"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(clusters: u32) -> FatLayout {
        FatLayout {
            fat_type: FatType::Fat32,
            fat_offset: 0,
            fat_len: 4096,
            fats: 1,
            data_offset: 4096,
            cluster_size: 512,
            clusters,
        }
    }

    fn fat(entries: &[u32]) -> std::io::Cursor<Vec<u8>> {
        let mut b = vec![0u8; 4096];
        for (i, e) in entries.iter().enumerate() {
            b[4 * i..4 * i + 4].copy_from_slice(&e.to_le_bytes());
        }
        std::io::Cursor::new(b)
    }

    #[test]
    fn issue15_loops_and_cross_links_are_refused() {
        const EOC: u32 = 0x0FFF_FFFF;
        let ok: &[u32] = &[0x0FFF_FFF8, EOC, 3, 4, EOC, EOC, 0, 8, EOC];
        check_chains(&mut fat(ok), &layout(20)).unwrap();
        let cases: &[(&str, &[u32], &str)] = &[
            (
                "loop",
                &[0, 0, 3, 4, 2],
                "the chain through cluster 2 loops back",
            ),
            (
                "tail loop",
                &[0, 0, 3, 4, 3],
                "cluster 3 is linked from two chains",
            ),
            ("self loop", &[0, 0, EOC, 3], "loops back"),
            (
                "cross link",
                &[0, 0, 4, 4, EOC],
                "cluster 4 is linked from two chains",
            ),
            ("out of range", &[0, 0, 500], "cluster 2 links to 500"),
            (
                "to free",
                &[0, 0, 3, 0],
                "cluster 2 links to free cluster 3",
            ),
        ];
        for (name, entries, want) in cases {
            let err = check_chains(&mut fat(entries), &layout(20))
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{name}: {err}");
            assert!(err.contains("run `fsck.fat`"), "{name}: {err}");
        }
    }
}
