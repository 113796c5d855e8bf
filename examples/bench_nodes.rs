//! Benchmark driver for the output stage (used by `ci/bench-output.sh`; not a test).
//!
//! Builds N node images from one base through `piimage::output`: decodes the base if it is
//! compressed, gives each node a new disk id plus a few changed 4 KiB blocks (in the boot
//! partition's FAT area, the root filesystem's metadata area, and at random), then builds
//! every node's outputs with `build_nodes`. Prints the time of each phase to stderr and a
//! one-line summary to stdout.
//!
//! ```text
//! bench_nodes --base IMG[.xz|.zst|.gz] --out DIR [--nodes 8] [--jobs 0] [--formats zst]
//!             [--bmap] [--image-sha256] [--sync] [--chunk-mib 4] [--grain-kib 256]
//!             [--changed 16]
//! ```

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use piimage::disk::source::{decode_to, sniff_file};
use piimage::disk::{CowDisk, FileStorage, PartitionTable, Storage};
use piimage::output::ImageFormat;
use piimage::output::{BaseCache, CacheConfig, NodeImage, NodeOutputSpec, build_nodes};
use piimage::progress::{NoProgress, Progress};

/// Prints each phase's duration to stderr.
struct PhaseTimer {
    current: Mutex<Option<(String, Instant)>>,
}

impl Progress for PhaseTimer {
    fn start(&self, what: &str, _total: Option<u64>) {
        if let Ok(mut c) = self.current.lock() {
            *c = Some((what.to_owned(), Instant::now()));
        }
    }
    fn advance(&self, _n: u64) {}
    fn finish(&self) {
        if let Ok(mut c) = self.current.lock()
            && let Some((what, t)) = c.take()
        {
            eprintln!("  {what}: {:.2} s", t.elapsed().as_secs_f64());
        }
    }
}

struct Args {
    base: PathBuf,
    out: PathBuf,
    nodes: usize,
    jobs: usize,
    spec: NodeOutputSpec,
    chunk_mib: u64,
    grain_kib: u64,
    changed: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut a = Args {
        base: PathBuf::new(),
        out: PathBuf::from("bench-out"),
        nodes: 8,
        jobs: 0,
        spec: NodeOutputSpec {
            formats: vec![ImageFormat::Zstd],
            bmap: false,
            image_sha256: false,
            sync: false,
        },
        chunk_mib: 4,
        grain_kib: piimage::output::DEFAULT_GRAIN >> 10,
        changed: 16,
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--base" => a.base = PathBuf::from(value()?),
            "--out" => a.out = PathBuf::from(value()?),
            "--nodes" => a.nodes = value()?.parse().map_err(|e| format!("--nodes: {e}"))?,
            "--jobs" => a.jobs = value()?.parse().map_err(|e| format!("--jobs: {e}"))?,
            "--chunk-mib" => {
                a.chunk_mib = value()?.parse().map_err(|e| format!("--chunk-mib: {e}"))?;
            }
            "--grain-kib" => {
                a.grain_kib = value()?.parse().map_err(|e| format!("--grain-kib: {e}"))?;
            }
            "--changed" => a.changed = value()?.parse().map_err(|e| format!("--changed: {e}"))?,
            "--formats" => {
                a.spec.formats = value()?
                    .split(',')
                    .map(|f| match f {
                        "raw" | "img" => Ok(ImageFormat::Raw),
                        "zst" => Ok(ImageFormat::Zstd),
                        "xz" => Ok(ImageFormat::Xz),
                        "gz" => Ok(ImageFormat::Gzip),
                        other => Err(format!("unknown format {other}")),
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--bmap" => a.spec.bmap = true,
            "--image-sha256" => a.spec.image_sha256 = true,
            "--sync" => a.spec.sync = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if a.base.as_os_str().is_empty() {
        return Err("--base is required".into());
    }
    Ok(a)
}

/// xorshift64*.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

/// The edits of node `i`: a disk id, then `changed` blocks spread over the boot partition's
/// first 4 MiB, the root filesystem's first 64 MiB, and anywhere.
fn edit_node<B: Storage>(disk: &CowDisk<B>, i: u64, changed: u64) -> std::io::Result<()> {
    let mut rng = 0x9E37_79B9_7F4A_7C15u64.wrapping_mul(i + 1) | 1;
    disk.write_at(440, &u32::try_from(i).unwrap_or(0).to_le_bytes())?;
    let table = PartitionTable::read(disk).map_err(std::io::Error::other)?;
    let areas: Vec<(u64, u64)> = table
        .partitions
        .iter()
        .map(|p| {
            (
                p.offset(),
                p.len().min(if p.number == 1 { 4 << 20 } else { 64 << 20 }),
            )
        })
        .chain([(0, disk.len())])
        .collect();
    let mut block = [0u8; 4096];
    for k in 0..changed {
        let (start, len) = areas[usize::try_from(k).unwrap_or(0) % areas.len()];
        for b in block.chunks_mut(8) {
            b.copy_from_slice(&next(&mut rng).to_le_bytes());
        }
        let at = start + (next(&mut rng) % (len / 4096).max(1)) * 4096;
        disk.write_at(at.min(disk.len() - 4096), &block)?;
    }
    Ok(())
}

fn main() {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench_nodes: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&a) {
        eprintln!("bench_nodes: {e}");
        std::process::exit(1);
    }
}

fn run(a: &Args) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(&a.out)?;
    let t0 = Instant::now();
    let timer = PhaseTimer {
        current: Mutex::new(None),
    };
    let raw = if sniff_file(&a.base)?.is_compressed() {
        let raw = a.out.join("base.img");
        if !raw.exists() {
            timer.start("decoding the base", None);
            decode_to(&a.base, &raw, &NoProgress)?;
            timer.finish();
        }
        raw
    } else {
        a.base.clone()
    };
    let config = CacheConfig {
        chunk_size: a.chunk_mib << 20,
        grain: a.grain_kib << 10,
        ..CacheConfig::new(&a.out)
    };
    let cache = BaseCache::open(&raw, config)?;
    let storage = FileStorage::open_read_only(&raw)?;
    let disks: Vec<CowDisk<&FileStorage>> = (0..a.nodes).map(|_| CowDisk::new(&storage)).collect();
    for (i, d) in (0u64..).zip(&disks) {
        edit_node(d, i, a.changed)?;
    }
    let nodes: Vec<NodeImage> = disks
        .iter()
        .enumerate()
        .map(|(i, d)| NodeImage::from_cow(format!("node{i:02}"), d))
        .collect::<Result<_, _>>()?;
    let built = build_nodes(&cache, &nodes, &a.out, &a.spec, a.jobs, &timer)?;
    let secs = t0.elapsed().as_secs_f64();
    let bytes: u64 = built.iter().flat_map(|n| &n.files).map(|f| f.size).sum();
    let dirty: u64 = built.iter().map(|n| n.stats.dirty_chunks).sum();
    let recompressed: u64 = built.iter().map(|n| n.stats.compressed_bytes).sum();
    let chunks = built.first().map_or(0, |n| n.stats.chunks);
    let base_chunks: u64 = a
        .spec
        .formats
        .iter()
        .filter(|f| f.is_compressed())
        .map(|&f| cache.chunks(f).map_or(0, |c| c.compressed_chunks()))
        .sum();
    println!(
        "nodes={} seconds={secs:.2} output_bytes={bytes} chunks_per_image={chunks} \
         dirty_chunks_total={dirty} base_chunks_compressed={base_chunks} \
         node_bytes_compressed_total={recompressed}",
        a.nodes
    );
    Ok(())
}
