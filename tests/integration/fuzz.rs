//! Issue 15, fuzzing in CI: the entry points of `piimage::fuzz` (the same the cargo-fuzz targets
//! in `fuzz/` call) on mutations of the committed seed corpora in `fuzz/corpus/`, for a bounded
//! number of cases on every `cargo test` (`PIIMAGE_FUZZ_CASES`, default 256 per target).
//!
//! The mutations aim at metadata: they land in the seed's non-zero sectors (superblocks,
//! descriptors, bitmaps, inode tables, directories, FATs, partition tables), as bytes or as
//! boundary 32-bit values, and the ext4 superblock checksum can be resealed afterwards so a
//! mutated field gets past the checksum to the code that uses it. A failing case is kept by
//! proptest in `proptest-regressions/` and becomes a regression test once committed.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use piimage::fs::ext4::superblock::{SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE, seal};
use proptest::prelude::*;
use proptest::sample::Index;

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

/// Seeds of a target, loaded once, with the offsets of their non-zero 512-byte sectors.
struct Seeds {
    seeds: Vec<(Vec<u8>, Vec<usize>)>,
}

impl Seeds {
    fn load(target: &str) -> Self {
        let seeds = corpus(target)
            .into_iter()
            .map(|bytes| {
                let hot = bytes
                    .chunks(512)
                    .enumerate()
                    .filter(|(_, s)| s.iter().any(|&b| b != 0))
                    .map(|(i, _)| i * 512)
                    .collect::<Vec<_>>();
                (bytes, hot)
            })
            .collect();
        Self { seeds }
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Byte { sector: Index, at: u16, value: u8 },
    Word { sector: Index, at: u16, value: u32 },
    Zero { sector: Index, len: u16 },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let word = prop_oneof![
        Just(0u32),
        Just(1),
        Just(0xff),
        Just(0xffff),
        Just(0x7fff_ffff),
        Just(0x8000_0000),
        Just(0xffff_ffff),
        any::<u32>(),
    ];
    prop_oneof![
        (any::<Index>(), 0u16..512, any::<u8>()).prop_map(|(sector, at, value)| Mutation::Byte {
            sector,
            at,
            value
        }),
        (any::<Index>(), 0u16..509, word).prop_map(|(sector, at, value)| Mutation::Word {
            sector,
            at,
            value
        }),
        (any::<Index>(), 1u16..4096).prop_map(|(sector, len)| Mutation::Zero { sector, len }),
    ]
}

fn mutate(seeds: &Seeds, pick: &Index, mutations: &[Mutation], reseal: bool) -> Vec<u8> {
    let (seed, hot) = &seeds.seeds[pick.index(seeds.seeds.len())];
    let mut data = seed.clone();
    if hot.is_empty() {
        return data;
    }
    for m in mutations {
        match m {
            Mutation::Byte { sector, at, value } => {
                data[hot[sector.index(hot.len())] + usize::from(*at)] = *value;
            }
            Mutation::Word { sector, at, value } => {
                let o = hot[sector.index(hot.len())] + usize::from(*at);
                data[o..o + 4].copy_from_slice(&value.to_le_bytes());
            }
            Mutation::Zero { sector, len } => {
                let o = hot[sector.index(hot.len())];
                let end = (o + usize::from(*len)).min(data.len());
                data[o..end].fill(0);
            }
        }
    }
    if reseal {
        let sb = SUPERBLOCK_OFFSET as usize;
        if let Some(raw) = data.get_mut(sb..sb + SUPERBLOCK_SIZE) {
            seal(raw.try_into().unwrap());
        }
    }
    data
}

fn cases() -> u32 {
    std::env::var("PIIMAGE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn seeds(target: &'static str, cell: &'static OnceLock<Seeds>) -> &'static Seeds {
    cell.get_or_init(|| Seeds::load(target))
}

static EXT4: OnceLock<Seeds> = OnceLock::new();
static FAT: OnceLock<Seeds> = OnceLock::new();
static DISK: OnceLock<Seeds> = OnceLock::new();

#[test]
fn issue15_fuzz_seeds_are_read_as_their_real_tools_made_them() {
    // The unmutated seeds must get past every check, or the fuzzing below only ever
    // exercises refusals.
    use piimage::disk::storage::MemStorage;
    use piimage::disk::{Storage, Window};
    use piimage::fs::ext4::Ext4Reader;
    use piimage::fuzz::Depth;
    use std::sync::Arc;
    let ext4 = corpus("ext4");
    for (seed, name) in ext4.iter().zip(["journal.img", "no-journal.img"]) {
        assert_eq!(piimage::fuzz::ext4(seed), Depth::Written, "{name}");
    }
    for seed in corpus("fat") {
        assert_eq!(piimage::fuzz::fat(&seed), Depth::Written);
    }
    for seed in corpus("disk") {
        assert_eq!(piimage::fuzz::disk_image(&seed), Depth::Written);
    }
    for seed in ext4 {
        let s = Arc::new(MemStorage::new(seed));
        let len = s.len();
        let r = Ext4Reader::open(Window::new(s, 0, len).unwrap()).unwrap();
        let passwd = r.read_text("/etc/passwd").unwrap().unwrap();
        assert!(passwd.contains("pi:x:1000:1000"), "{passwd}");
    }
    for seed in corpus("fat") {
        let r = piimage::fs::fat::FatReader::open(std::io::Cursor::new(seed)).unwrap();
        let cmdline = r.read("cmdline.txt").unwrap().unwrap();
        assert!(String::from_utf8(cmdline).unwrap().contains("rootwait"));
    }
    for seed in corpus("disk") {
        let s: Arc<dyn Storage> = Arc::new(MemStorage::new(seed));
        let layout = piimage::image::Layout::detect(&s).unwrap();
        assert!(layout.boot.is_some() && layout.root.is_some(), "{layout:?}");
    }
}

/// Inputs that once crashed a fuzz target, kept in `fuzz/regressions/` under the name of their
/// target (`disk-...`, `ext4-...`): each one is now refused or read, and never panics (these
/// tests run with debug assertions, so an arithmetic overflow panics here too).
#[test]
fn issue15_fuzz_regressions_no_longer_crash() {
    use piimage::fuzz::Depth;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let data = std::fs::read(&path).unwrap();
        let depth = match name.split('-').next().unwrap() {
            "disk" => piimage::fuzz::disk_image(&data),
            "ext4" => piimage::fuzz::ext4(&data),
            "fat" => piimage::fuzz::fat(&data),
            other => panic!("{name}: no fuzz target {other:?}"),
        };
        if name == "disk-mbrman-overflow" {
            // An extended partition whose EBR has an unused first entry starting at sector
            // 2^32 - 1: mbrman 0.6.1 added it to the EBR's sector and overflowed.
            assert_eq!(depth, Depth::Refused, "{name}");
        }
        seen += 1;
    }
    assert!(seen >= 1, "no regressions in {}", dir.display());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn issue15_fuzz_ext4(
        pick in any::<Index>(),
        mutations in prop::collection::vec(mutation(), 1..6),
        reseal in any::<bool>(),
    ) {
        piimage::fuzz::ext4(&mutate(seeds("ext4", &EXT4), &pick, &mutations, reseal));
    }

    #[test]
    fn issue15_fuzz_fat(pick in any::<Index>(), mutations in prop::collection::vec(mutation(), 1..6)) {
        piimage::fuzz::fat(&mutate(seeds("fat", &FAT), &pick, &mutations, false));
    }

    #[test]
    fn issue15_fuzz_disk_image(
        pick in any::<Index>(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        piimage::fuzz::disk_image(&mutate(seeds("disk", &DISK), &pick, &mutations, false));
    }

    #[test]
    fn issue15_fuzz_text_editors(arg in "[ -~]{0,40}", file in "(?s).{0,400}") {
        piimage::fuzz::text_editors(format!("{arg}\n{file}").as_bytes());
    }

    #[test]
    fn issue15_fuzz_text_editors_on_seeds(
        pick in any::<Index>(),
        edits in prop::collection::vec((any::<Index>(), "[ -~\n\t]{0,12}"), 0..6),
    ) {
        let seeds = corpus("text");
        let mut text = String::from_utf8(seeds[pick.index(seeds.len())].clone()).unwrap();
        for (at, insert) in edits {
            let mut i = at.index(text.len() + 1);
            while !text.is_char_boundary(i) { i -= 1; }
            text.insert_str(i, &insert);
        }
        piimage::fuzz::text_editors(text.as_bytes());
    }

    #[test]
    fn issue15_fuzz_recipe(
        edits in prop::collection::vec((any::<Index>(), any::<Index>(), "[ -~\n]{0,16}"), 1..5),
    ) {
        let seeds = corpus("recipe");
        let mut text = String::from_utf8(seeds[0].clone()).unwrap();
        for (at, cut, insert) in edits {
            let mut i = at.index(text.len() + 1);
            while !text.is_char_boundary(i) { i -= 1; }
            let mut j = (i + cut.index(24)).min(text.len());
            while !text.is_char_boundary(j) { j -= 1; }
            text.replace_range(i..j, &insert);
        }
        let dir = crate::support::tmp();
        piimage::fuzz::recipe(text.as_bytes(), dir.path());
    }
}
