//! Entry points for fuzzing: each takes arbitrary bytes, runs one reader, checker or editor of
//! piimage on them the way a build does, and returns. An error is a fine answer; a panic, an
//! abort or a hang is a bug.
//!
//! Two drivers call them (see `docs/fuzzing.md`):
//! - the cargo-fuzz targets in `fuzz/` (libFuzzer, nightly), for long runs on a developer's
//!   machine, with the seed corpora in `fuzz/corpus/<target>/`;
//! - `tests/integration/fuzz.rs`, which mutates the same committed seeds with proptest for a
//!   bounded number of cases on every `cargo test`, so CI runs them too.
//!
//! Each function also asserts the properties that must hold whatever the input (an editor's
//! result is stable when applied twice, a keyfile value cannot open a section, ...): those
//! assertions are what a fuzzer reports as crashes.

use std::io::Cursor;
use std::sync::Arc;

use crate::disk::cow::CowDisk;
use crate::disk::storage::MemStorage;
use crate::disk::{Storage, Window};
use crate::fs::ext4::rootfs::{Owner, RootFs};
use crate::fs::ext4::walk::Ext4Walker;
use crate::fs::ext4::write::{Ext4Writer, WriteOptions};
use crate::fs::ext4::{Ext4Reader, gate};
use crate::fs::fat::{FatReader, FatWriter};
use crate::fs::{Filesystem, probe};
use crate::image::Layout;
use crate::ops::text::{cmdline, config_txt, table::Table};
use crate::plan::network;

/// How far an input got: the property tests check the unmutated seeds reach [`Depth::Written`],
/// so the mutations start from inputs that exercise every stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Depth {
    /// Refused when opened (a clear error).
    Refused,
    /// Read, but refused for writing.
    Read,
    /// Read and written.
    Written,
}

/// Files a build reads from a root filesystem.
const ROOT_FILES: &[&str] = &[
    "/etc/passwd",
    "/etc/group",
    "/etc/shadow",
    "/etc/os-release",
    "/etc/hosts",
    "/etc/fstab",
];

/// Files a build reads from a boot partition.
const BOOT_FILES: &[&str] = &["cmdline.txt", "config.txt", "user-data", "network-config"];

/// A whole disk image: the partition table, each partition's filesystem kind, and the readers
/// of the FAT and ext4 partitions found.
pub fn disk_image(data: &[u8]) -> Depth {
    let storage: Arc<dyn Storage> = Arc::new(MemStorage::new(data.to_vec()));
    let Ok(layout) = Layout::detect(&storage) else {
        return Depth::Refused;
    };
    let mut depth = Depth::Written;
    for p in &layout.table.partitions {
        // Detect already refused partitions past the end of the disk.
        let window = p
            .window(Arc::clone(&storage))
            .expect("Layout::detect accepted a partition outside the disk");
        match probe(&storage, p) {
            Ok(Some(Filesystem::Vfat)) => {
                let mut bytes = vec![0; usize::try_from(window.len()).unwrap_or(0)];
                if window.read_at(0, &mut bytes).is_ok() {
                    depth = depth.min(fat(&bytes));
                }
            }
            Ok(Some(Filesystem::Ext4)) => depth = depth.min(ext4_read_window(window)),
            _ => {}
        }
    }
    depth
}

/// A FAT volume: opened for reading and for writing, its boot files read, and a build's
/// writes (a file replaced, a directory made, a file removed) applied to a copy.
pub fn fat(data: &[u8]) -> Depth {
    let Ok(reader) = FatReader::open(Cursor::new(data)) else {
        return Depth::Refused;
    };
    let _ = reader.root_names();
    let _ = reader.list("overlays");
    for name in BOOT_FILES {
        let _ = reader.read(name);
    }
    let Ok(writer) = FatWriter::open(Cursor::new(data.to_vec()), 1_700_000_000) else {
        return Depth::Read;
    };
    let _ = writer.write_file(
        "cmdline.txt",
        b"console=serial0,115200 root=PARTUUID=x rw\n",
    );
    let _ = writer.mkdir_p("firmware/seed");
    let _ = writer.write_file("firmware/seed/user-data", &[b'x'; 5000]);
    let _ = writer.remove("config.txt");
    match writer.finish() {
        Ok(_) => Depth::Written,
        Err(_) => Depth::Read,
    }
}

/// An ext4 filesystem: the gate, the reader on the files a build reads, the read-only walker
/// (netboot), then the writer on a copy-on-write layer doing what a build does.
pub fn ext4(data: &[u8]) -> Depth {
    let storage = Arc::new(MemStorage::new(data.to_vec()));
    let len = storage.len();
    let Ok(window) = Window::new(Arc::clone(&storage), 0, len) else {
        return Depth::Refused;
    };
    if ext4_read_window(window) == Depth::Refused {
        return Depth::Refused;
    }

    let cow = Arc::new(CowDisk::new(Arc::clone(&storage)));
    let Ok(window) = Window::new(Arc::clone(&cow), 0, len) else {
        return Depth::Read;
    };
    let Ok(mut fs) = Ext4Writer::open(window, WriteOptions::new(1_700_000_000)) else {
        return Depth::Read;
    };
    let owner = Owner::new(1000, 1000);
    let _ = fs.write_file("/etc/hostname", b"node1\n", 0o644, Owner::new(0, 0), 0);
    let _ = fs.mkdir_p("/home/alice/.ssh", 0o700, owner);
    let _ = fs.write_file(
        "/home/alice/.ssh/authorized_keys",
        &[b'k'; 3000],
        0o600,
        owner,
        0,
    );
    let _ = fs.symlink(
        "/etc/localtime",
        "/usr/share/zoneinfo/UTC",
        Owner::new(0, 0),
    );
    let _ = fs.unlink("/etc/motd");
    let _ = fs.list("/etc");
    let _ = fs.free_bytes();
    let finished = fs.finish();
    // The base is never written: every write went to the layer.
    assert_eq!(
        storage.to_vec(),
        data,
        "the writer changed the base under its layer"
    );
    if finished.is_ok() {
        Depth::Written
    } else {
        Depth::Read
    }
}

/// The gate, the walker and the reader; [`Depth::Written`] when the gate would let a build
/// write.
fn ext4_read_window<S: Storage + ?Sized + 'static>(window: Window<Arc<S>>) -> Depth {
    if gate::check_writable(&window).is_err() {
        // A build stops here; inspect still reads what it can.
        return match Ext4Reader::open(window) {
            Ok(reader) => {
                let _ = reader.read_text("/etc/os-release");
                Depth::Read
            }
            Err(_) => Depth::Refused,
        };
    }
    if let Ok(walker) = Ext4Walker::open(window.clone()) {
        let mut budget = 10_000u32;
        let _ = walker.walk(&mut |_, content| {
            budget = budget.saturating_sub(1);
            if budget == 0 {
                return Err(std::io::Error::other("walk budget spent"));
            }
            std::io::copy(
                &mut std::io::Read::take(content, 1 << 16),
                &mut std::io::sink(),
            )
            .map(drop)
        });
    }
    let Ok(reader) = Ext4Reader::open(window) else {
        return Depth::Refused;
    };
    for path in ROOT_FILES {
        let _ = reader.read_text(path);
    }
    for dir in ["/", "/etc", "/home", "/root"] {
        let _ = reader.list(dir);
        let _ = reader.is_dir(dir);
    }
    let _ = reader.read_link("/etc/hosts");
    let _ = reader.kind("/etc/hosts", true);
    Depth::Written
}

/// The text editors of `ops::text` on an arbitrary file, each with the properties it promises.
/// The input's first line is the token/line to set, the rest the file.
pub fn text_editors(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (arg, file) = text.split_once('\n').unwrap_or((&text, ""));

    // cmdline.txt: setting a token twice is setting it once; it is then present.
    let token = arg.split_whitespace().next().unwrap_or("quiet");
    let once = cmdline::set(file, token);
    assert_eq!(
        cmdline::set(&once, token),
        once,
        "cmdline::set is not stable"
    );
    assert!(
        cmdline::tokens(&once).contains(&token),
        "cmdline::set lost {token:?}"
    );
    let removed = cmdline::remove(&once, token);
    assert!(
        !cmdline::tokens(&removed).contains(&token),
        "cmdline::remove kept {token:?}"
    );

    // NetworkManager keyfile values: one line, and GLib reads back exactly the value.
    let value = network::keyfile_value(&text);
    assert!(
        !value.contains(['\n', '\r']),
        "keyfile value {value:?} breaks its line"
    );
    assert_eq!(
        glib_unescape(&value),
        text,
        "keyfile value does not read back"
    );

    // config.txt: ensuring a line twice is ensuring it once.
    let line = arg.lines().next().unwrap_or("").trim();
    if !line.is_empty() && !line.starts_with('[') && !line.starts_with('#') {
        for section in [None, Some("all"), Some("pi5")] {
            let once = config_txt::ensure_line(file, section, line);
            assert_eq!(
                config_txt::ensure_line(&once, section, line),
                once,
                "config_txt::ensure_line is not stable"
            );
        }
        let _ = config_txt::remove_line(file, line);
    }

    // Colon tables (passwd, group, shadow): edits keep every other line as it was.
    let mut t = Table::parse(file);
    let fields: Vec<&str> = arg.split(':').collect();
    // Keys as the recipe allows them (user and group names); `#` starts a comment line.
    let name = |k: &&&str| {
        !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    };
    if let Some(key) = fields.first().filter(name) {
        let before = Table::parse(file);
        t.upsert(&fields);
        let _ = t.set_field(key, 1, "x");
        t.add_member(key, 3, "alice");
        t.remove_member_everywhere(3, "bob");
        let rendered = t.render();
        let again = Table::parse(&rendered);
        assert!(again.get(key).is_some(), "upserted {key:?} is gone");
        for other in before.keys() {
            if other != *key && !other.is_empty() {
                assert!(again.get(other).is_some(), "editing {key:?} lost {other:?}");
            }
        }
    }
}

/// A key file value as GLib's `g_key_file_get_string` unescapes it.
fn glib_unescape(value: &str) -> String {
    let mut out = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('s') => out.push(' '),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// A recipe, loaded, merged and validated as `piimage validate` does, from a file in a
/// scratch directory.
pub fn recipe(data: &[u8], scratch: &std::path::Path) {
    let path = scratch.join("recipe.yaml");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let _ = crate::recipe::load(&path, &crate::recipe::LoadOptions::default());
}
