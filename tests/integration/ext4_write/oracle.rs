//! The oracles: `e2fsck -fn` must exit 0, and `debugfs` must read back exactly the model.
//!
//! One debugfs run per check: `ls -p` of every directory of the model (names, type+mode,
//! uid, gid, size: nothing missing, nothing extra), `stat` of every touched path (links, mtime,
//! fast symlink targets) and `dump` of every touched file and slow symlink (content).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use super::fixture::{Entry, Node, OFFSET, Tree};
use crate::support::run;

/// Expected mtimes of written files, by path.
pub type Mtimes = BTreeMap<String, i64>;

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => "/",
    }
}

fn name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn type_bits(node: &Node) -> u32 {
    match node {
        Node::File(_) => 0o100000,
        Node::Dir => 0o040000,
        Node::Symlink(_) => 0o120000,
    }
}

/// `e2fsck -fn` on the filesystem at [`OFFSET`]: `Err` with its report unless it exits 0.
pub fn e2fsck(disk: &Path) -> Result<(), String> {
    crate::support::e2fsck(disk, OFFSET).map(drop)
}

/// Runs debugfs with a command file on the filesystem at [`OFFSET`]; returns each command's
/// output, keyed by the command line.
pub fn debugfs_script(disk: &Path, cmds: &[String], scratch: &Path) -> BTreeMap<String, String> {
    let cmd_file = scratch.join("debugfs.cmd");
    std::fs::write(&cmd_file, cmds.join("\n") + "\n").unwrap();
    let spec = format!("{}?offset={OFFSET}", disk.display());
    let out = run("debugfs", &["-f", cmd_file.to_str().unwrap(), &spec]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut sections = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some(cmd) = line.strip_prefix("debugfs: ") {
            if let Some((c, body)) = current.take() {
                sections.insert(c, body);
            }
            current = Some((cmd.to_owned(), String::new()));
        } else if let Some((_, body)) = current.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    if let Some((c, body)) = current {
        sections.insert(c, body);
    }
    sections
}

/// A uid or gid as debugfs prints it: a signed 32-bit number.
fn id(text: &str) -> u32 {
    text.parse::<i64>()
        .ok()
        .and_then(|v| u32::try_from(v.rem_euclid(1 << 32)).ok())
        .unwrap_or(u32::MAX)
}

fn field<'a>(stat: &'a str, key: &str) -> Option<&'a str> {
    let at = stat.find(key)? + key.len();
    stat[at..].split_whitespace().next()
}

/// Checks the filesystem in `disk` against `tree`: e2fsck clean, every directory listing equal,
/// and, for every `touched` path, links, mtime (when in `mtimes`), content and link target.
/// Returns a description of the first mismatches (empty when all is equal).
pub fn compare(
    disk: &Path,
    tree: &Tree,
    touched: &BTreeSet<String>,
    mtimes: &Mtimes,
    scratch: &Path,
) -> Vec<String> {
    let mut problems = Vec::new();
    if let Err(report) = e2fsck(disk) {
        problems.push(report);
        return problems;
    }
    let mut children: BTreeMap<&str, Vec<(&str, &Entry)>> = BTreeMap::new();
    for (path, e) in tree {
        if path != "/" {
            children.entry(parent(path)).or_default().push((path, e));
        }
        if e.node == Node::Dir {
            children.entry(path).or_default();
        }
    }
    let mut cmds: Vec<String> = children.keys().map(|d| format!("ls -p \"{d}\"")).collect();
    let dump_dir = scratch.join("dump");
    std::fs::create_dir_all(&dump_dir).unwrap();
    let mut dumps = Vec::new();
    for (i, path) in touched.iter().enumerate() {
        let Some(e) = tree.get(path) else { continue };
        cmds.push(format!("stat \"{path}\""));
        let needs_dump = match &e.node {
            Node::File(_) => true,
            Node::Symlink(t) => t.len() >= 60,
            Node::Dir => false,
        };
        if needs_dump {
            let host = dump_dir.join(format!("f{i}"));
            cmds.push(format!("dump \"{path}\" \"{}\"", host.display()));
            dumps.push((path.clone(), host));
        }
    }
    let out = debugfs_script(disk, &cmds, scratch);

    for (dir, kids) in &children {
        let Some(listing) = out.get(&format!("ls -p \"{dir}\"")) else {
            problems.push(format!("no listing of {dir}"));
            continue;
        };
        let mut found: BTreeMap<String, (u32, u32, u32, String)> = BTreeMap::new();
        for line in listing.lines() {
            let f: Vec<&str> = line.split('/').collect();
            // debugfs lists an emptied first entry of a block (inode 0) too: it is free space.
            if f.len() < 7 || f[1] == "0" || f[5] == "." || f[5] == ".." {
                continue;
            }
            if *dir == "/" && f[5] == "lost+found" {
                continue;
            }
            let mode = u32::from_str_radix(f[2], 8).unwrap_or(u32::MAX);
            found.insert(f[5].to_owned(), (mode, id(f[3]), id(f[4]), f[6].to_owned()));
        }
        for (path, e) in kids {
            let want_mode = type_bits(&e.node) | u32::from(e.mode);
            let want_size = match &e.node {
                Node::File(d) => d.len().to_string(),
                Node::Symlink(t) => t.len().to_string(),
                Node::Dir => String::new(),
            };
            match found.remove(name(path)) {
                None => problems.push(format!("{path}: missing")),
                Some((mode, uid, gid, size)) => {
                    let want_mode = if matches!(e.node, Node::Symlink(_)) {
                        0o120777
                    } else {
                        want_mode
                    };
                    if (mode, uid, gid) != (want_mode, e.uid, e.gid)
                        || (!want_size.is_empty() && size != want_size)
                    {
                        problems.push(format!(
                            "{path}: debugfs mode {mode:o} uid {uid} gid {gid} size {size}, \
                             model {want_mode:o} {} {} {want_size}",
                            e.uid, e.gid
                        ));
                    }
                }
            }
        }
        for extra in found.keys() {
            problems.push(format!("{dir}/{extra}: not in the model"));
        }
    }

    for path in touched {
        let Some(e) = tree.get(path) else { continue };
        let stat = out
            .get(&format!("stat \"{path}\""))
            .cloned()
            .unwrap_or_default();
        let want_links = match e.node {
            Node::Dir => {
                2 + children
                    .get(path.as_str())
                    .map_or(0, |k| k.iter().filter(|(_, c)| c.node == Node::Dir).count())
                    + usize::from(path == "/")
            }
            _ => 1,
        };
        if field(&stat, "Links:") != Some(want_links.to_string().as_str()) {
            problems.push(format!(
                "{path}: links {:?}, model {want_links}",
                field(&stat, "Links:")
            ));
        }
        if let Some(want) = mtimes.get(path) {
            let got = field(&stat, " mtime:")
                .and_then(|v| v.strip_prefix("0x"))
                .and_then(|v| v.split(':').next())
                .and_then(|v| i64::from_str_radix(v, 16).ok());
            if got != Some(*want) {
                problems.push(format!("{path}: mtime {got:?}, model {want}"));
            }
        }
        if let Node::Symlink(t) = &e.node
            && t.len() < 60
        {
            let want = format!("Fast link dest: \"{t}\"");
            if !stat.contains(&want) {
                problems.push(format!("{path}: fast link target differs, want {t:?}"));
            }
        }
    }
    for (path, host) in dumps {
        let want: &[u8] = match &tree[&path].node {
            Node::File(d) => d,
            Node::Symlink(t) => t.as_bytes(),
            Node::Dir => unreachable!(),
        };
        match std::fs::read(&host) {
            Ok(got) if got == want => {}
            Ok(got) => problems.push(format!(
                "{path}: content differs ({} bytes read back, {} in the model)",
                got.len(),
                want.len()
            )),
            Err(err) => problems.push(format!("{path}: debugfs dump failed: {err}")),
        }
    }
    problems.truncate(20);
    problems
}

/// Panics with the mismatches and `context` (the op log) unless there are none.
pub fn assert_same(problems: &[String], context: &str) {
    if !problems.is_empty() {
        let mut msg = String::new();
        for p in problems {
            let _ = writeln!(msg, "  {p}");
        }
        panic!("debugfs read-back differs from the model:\n{msg}{context}");
    }
}

/// The extents debugfs lists for `path` (`stat`'s EXTENTS section), and the tree depth.
pub fn extents(disk: &Path, path: &str, scratch: &Path) -> (usize, usize) {
    let cmd = format!("stat \"{path}\"");
    let out = debugfs_script(disk, std::slice::from_ref(&cmd), scratch);
    let stat = out.get(&cmd).cloned().unwrap_or_default();
    let section = stat.split("EXTENTS:").nth(1).unwrap_or("");
    let leaves = section
        .split(", ")
        .filter(|s| s.trim_start().starts_with('(') && !s.contains("ETB"))
        .count();
    let depth = usize::from(section.contains("ETB"));
    (leaves, depth)
}
