//! Property test: random sequences of [`RootFs`] operations against an in-memory model, checked
//! with e2fsck and debugfs. Seeded by a hand-rolled generator: `PIIMAGE_PROPTEST_SEED` (a
//! number; default fixed so CI is reproducible; `random` for a time-derived seed) and
//! `PIIMAGE_PROPTEST_CASES` (cases per feature mix, default 50) reproduce or widen a run.

use std::collections::BTreeSet;

use piimage::disk::{FileStorage, Window};
use piimage::fs::ext4::rootfs::{MetaChange, Owner, RootFs};
use piimage::fs::ext4::write::{Ext4Writer, WriteOptions};

use super::fixture::{
    Entry, Mix, Node, OFFSET, Tree, assert_outside_untouched, copy_disk, fixture,
};
use super::oracle::{Mtimes, assert_same, compare};

/// The epoch every case writes with.
pub const EPOCH: i64 = 1_767_225_600;

/// splitmix64: small, seedable, good enough to pick operations.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo).max(1)
    }

    /// True with probability `percent`%.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.range(0, 100) < percent
    }

    /// A random element.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        let i = usize::try_from(self.range(0, items.len() as u64)).unwrap();
        &items[i]
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            out.extend_from_slice(&self.next().to_le_bytes());
        }
        out.truncate(n);
        out
    }

    /// A file name of `1..max` safe characters.
    pub fn name(&mut self, max: u64) -> String {
        const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789-_.ABCXYZ";
        let len = self.range(1, max);
        let s: String = (0..len).map(|_| char::from(*self.pick(CHARS))).collect();
        if s == "." || s == ".." {
            format!("{s}x")
        } else {
            s
        }
    }

    fn id(&mut self) -> u32 {
        match self.range(0, 4) {
            0 => 0,
            1 => u32::try_from(self.range(1, 65_535)).unwrap(),
            _ => u32::try_from(self.range(65_536, 0x7FFF_FFFF)).unwrap(),
        }
    }
}

/// The base seed of this run.
pub fn base_seed() -> u64 {
    match std::env::var("PIIMAGE_PROPTEST_SEED") {
        Ok(s) if s == "random" => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs() ^ u64::from(d.subsec_nanos())),
        Ok(s) => s
            .parse()
            .expect("PIIMAGE_PROPTEST_SEED must be a number or `random`"),
        Err(_) => 0x0005_EED0_F911_3A6E,
    }
}

/// Cases per mix.
pub fn cases() -> u64 {
    std::env::var("PIIMAGE_PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50)
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// One case: state shared by the generator and the checker.
struct Case {
    rng: Rng,
    fs: Ext4Writer<FileStorage>,
    tree: Tree,
    touched: BTreeSet<String>,
    mtimes: Mtimes,
    log: Vec<String>,
    heavy_done: bool,
}

impl Case {
    fn paths(&self, f: impl Fn(&str, &Entry) -> bool) -> Vec<String> {
        self.tree
            .iter()
            .filter(|(p, e)| f(p, e))
            .map(|(p, _)| p.clone())
            .collect()
    }

    fn new_name_in(&mut self, dir: &str) -> String {
        let max = if self.rng.chance(5) { 256 } else { 40 };
        loop {
            let p = join(dir, &self.rng.name(max));
            if !self.tree.contains_key(&p) {
                return p;
            }
        }
    }

    fn content(&mut self) -> Vec<u8> {
        let free = self.fs.free_bytes().unwrap();
        let n = match self.rng.range(0, 100) {
            0..70 => self.rng.range(0, 200),
            70..90 => self.rng.range(200, 20_000),
            90..95 => self.rng.range(20_000, 300_000),
            _ if free > (24 << 20) => self.rng.range(1 << 20, 6 << 20),
            _ => self.rng.range(0, 5000),
        };
        self.rng.bytes(usize::try_from(n).unwrap())
    }

    fn write(&mut self, path: String, data: Vec<u8>) {
        let mode = u16::try_from(self.rng.range(0, 0o10000)).unwrap();
        let (uid, gid) = (self.rng.id(), self.rng.id());
        let mtime = i64::try_from(self.rng.range(0, 0x7FFF_FFFF)).unwrap();
        self.log.push(format!(
            "write {path} ({} bytes) mode {mode:o} {uid}:{gid} mtime {mtime}",
            data.len()
        ));
        self.fs
            .write_file(&path, &data, mode, Owner::new(uid, gid), mtime)
            .unwrap_or_else(|e| self.fail(&e.to_string()));
        self.mtimes.insert(path.clone(), mtime);
        self.touched.insert(path.clone());
        self.tree.insert(
            path,
            Entry {
                node: Node::File(data),
                mode,
                uid,
                gid,
            },
        );
    }

    fn mkdir_p(&mut self, path: String) {
        let mode = *self.rng.pick(&[0o755u16, 0o700, 0o1777, 0o2775, 0o750]);
        let (uid, gid) = (self.rng.id(), self.rng.id());
        self.log
            .push(format!("mkdir -p {path} mode {mode:o} {uid}:{gid}"));
        self.fs
            .mkdir_p(&path, mode, Owner::new(uid, gid))
            .unwrap_or_else(|e| self.fail(&e.to_string()));
        let mut cur = path.as_str();
        while cur != "/" && !self.tree.contains_key(cur) {
            self.touched.insert(cur.to_owned());
            self.touched.insert(parent(cur).to_owned());
            self.tree.insert(
                cur.to_owned(),
                Entry {
                    node: Node::Dir,
                    mode,
                    uid,
                    gid,
                },
            );
            cur = parent(cur);
        }
    }

    fn step(&mut self) {
        let dirs = self.paths(|_, e| e.node == Node::Dir);
        match self.rng.range(0, 100) {
            0..25 => {
                let dir = self.rng.pick(&dirs).clone();
                let path = self.new_name_in(&dir);
                let data = self.content();
                self.write(path, data);
            }
            25..40 => {
                let files = self.paths(|_, e| matches!(e.node, Node::File(_)));
                let path = self.rng.pick(&files).clone();
                let data = self.content();
                self.write(path, data);
            }
            40..50 => {
                let mut path = self.rng.pick(&dirs).clone();
                for _ in 0..self.rng.range(1, 7) {
                    path = join(&path, &self.rng.name(20));
                }
                if !self.tree.contains_key(&path) {
                    self.mkdir_p(path);
                }
            }
            50..60 => {
                let dir = self.rng.pick(&dirs).clone();
                let path = self.new_name_in(&dir);
                let len = if self.rng.chance(50) {
                    self.rng.range(1, 60)
                } else {
                    self.rng.range(60, 300)
                };
                let mut target = String::from(if self.rng.chance(30) { "/" } else { "" });
                while target.len() < usize::try_from(len).unwrap() {
                    target.push_str(&self.rng.name(12));
                    target.push('/');
                }
                target.truncate(usize::try_from(len).unwrap());
                let (uid, gid) = (self.rng.id(), self.rng.id());
                self.log
                    .push(format!("symlink {path} -> {target} {uid}:{gid}"));
                self.fs
                    .symlink(&path, &target, Owner::new(uid, gid))
                    .unwrap_or_else(|e| self.fail(&e.to_string()));
                self.touched.insert(path.clone());
                self.tree.insert(
                    path,
                    Entry {
                        node: Node::Symlink(target),
                        mode: 0o777,
                        uid,
                        gid,
                    },
                );
            }
            60..72 => {
                let tree = &self.tree;
                let victims = self.paths(|p, e| {
                    p != "/"
                        && (e.node != Node::Dir
                            || !tree.keys().any(|k| k.len() > p.len() && parent(k) == p))
                });
                let path = self.rng.pick(&victims).clone();
                self.log.push(format!("remove {path}"));
                self.fs
                    .unlink(&path)
                    .unwrap_or_else(|e| self.fail(&e.to_string()));
                self.tree.remove(&path);
                self.touched.remove(&path);
                self.touched.insert(parent(&path).to_owned());
            }
            72..95 => {
                let all = self.paths(|p, _| p != "/");
                let path = self.rng.pick(&all).clone();
                let is_link = matches!(self.tree[&path].node, Node::Symlink(_));
                let change = MetaChange {
                    mode: (!is_link && self.rng.chance(60))
                        .then(|| u16::try_from(self.rng.range(0, 0o10000)).unwrap()),
                    uid: self.rng.chance(60).then(|| self.rng.id()),
                    gid: self.rng.chance(60).then(|| self.rng.id()),
                };
                self.log.push(format!("set_meta {path} {change:?}"));
                self.fs
                    .set_meta(&path, change)
                    .unwrap_or_else(|e| self.fail(&e.to_string()));
                let e = self.tree.get_mut(&path).unwrap();
                e.mode = change.mode.unwrap_or(e.mode);
                e.uid = change.uid.unwrap_or(e.uid);
                e.gid = change.gid.unwrap_or(e.gid);
                self.touched.insert(path);
            }
            95..98 if !self.heavy_done => {
                self.heavy_done = true;
                let n = self.rng.range(100, 400);
                self.log
                    .push(format!("-- {n} files into the htree dir /usr/bin"));
                for _ in 0..n {
                    let path = self.new_name_in("/usr/bin");
                    let n = usize::try_from(self.rng.range(0, 300)).unwrap();
                    let data = self.rng.bytes(n);
                    self.write(path, data);
                }
            }
            98..100 if !self.heavy_done => {
                self.heavy_done = true;
                let dir = self.new_name_in("/var");
                self.mkdir_p(dir.clone());
                self.log
                    .push(format!("-- 500 entries into the new dir {dir}"));
                for i in 0..500 {
                    let path = join(&dir, &format!("entry-{i:03}-{}", self.rng.name(30)));
                    let n = usize::try_from(self.rng.range(0, 64)).unwrap();
                    let data = self.rng.bytes(n);
                    self.write(path, data);
                }
            }
            _ => {}
        }
    }

    fn fail(&self, what: &str) -> ! {
        panic!("{what}\n{}", self.context());
    }

    fn context(&self) -> String {
        format!(
            "op log ({} ops):\n  {}",
            self.log.len(),
            self.log.join("\n  ")
        )
    }
}

/// Runs case number `case` of `mix` with the run's base seed; returns its op log.
pub fn run_case(mix: Mix, base: u64, case: u64) -> Vec<String> {
    let fx = fixture(mix);
    let dir = crate::support::tmp();
    let disk = copy_disk(&fx, dir.path());
    let mut seed_rng = Rng::new(base ^ case.wrapping_mul(0x1000_0000_01B3));
    for b in mix.name.bytes() {
        seed_rng = Rng::new(seed_rng.next() ^ u64::from(b));
    }
    let storage = FileStorage::open_read_write(&disk).unwrap();
    let window = Window::new(storage, OFFSET, fx.fs_len).unwrap();
    let fs = Ext4Writer::open(window, WriteOptions::new(EPOCH)).unwrap();
    let mut c = Case {
        rng: seed_rng,
        fs,
        tree: fx.tree.clone(),
        touched: BTreeSet::new(),
        mtimes: Mtimes::new(),
        log: vec![format!(
            "mix {} ({}), PIIMAGE_PROPTEST_SEED={base}, case {case}",
            mix.name, mix.features
        )],
        heavy_done: false,
    };
    let ops = c.rng.range(3, 20);
    for _ in 0..ops {
        c.step();
    }
    c.fs.finish().unwrap_or_else(|e| c.fail(&e.to_string()));
    let problems = compare(&disk, &c.tree, &c.touched, &c.mtimes, dir.path());
    assert_same(&problems, &c.context());
    assert_outside_untouched(&disk, fx.fs_len);
    c.log
}

/// Counts operations by kind in op logs (printed by the tests, to show what a run covered).
pub fn tally(logs: &[Vec<String>]) -> String {
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for line in logs.iter().flat_map(|l| l.iter().skip(1)) {
        let mut kind = line.split_whitespace().next().unwrap_or("").to_owned();
        if line.starts_with("-- ") {
            kind = if line.contains("htree") {
                "bulk-htree"
            } else {
                "dir-500"
            }
            .into();
        } else if kind == "write" {
            let bytes: usize = line
                .split('(')
                .nth(1)
                .and_then(|r| r.split(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            if bytes >= 1 << 20 {
                kind = "write>=1MiB".into();
            }
        } else if kind == "symlink" {
            let target = line.split(" -> ").nth(1).unwrap_or("");
            let len = target.rsplit_once(' ').map_or(0, |(t, _)| t.len());
            kind = if len >= 60 {
                "symlink-slow"
            } else {
                "symlink-fast"
            }
            .into();
        }
        *counts.entry(kind).or_default() += 1;
    }
    counts
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
