//! A node's root filesystem as a tar stream, read straight from the ext4 image.
//!
//! Every inode the [walk](crate::fs::ext4::walk) reaches becomes one member named `./PATH`
//! (directories `./PATH/`, the root `./`), in the walk's fixed order, so one filesystem always
//! gives the same bytes. Members are ustar headers with numeric owners only (no user or group
//! names: the build machine's `/etc/passwd` means nothing to the node), the inode's permission
//! bits, owner and mtime. A second name of an inode already archived (link count above one,
//! not a directory) is a hard-link member pointing at the first name. Character and block
//! devices carry their numbers, FIFOs are FIFOs; sockets are left out (tar has no member type
//! for them, and a socket is recreated by whoever listens on it).
//!
//! Extended attributes go into a POSIX pax extended header before their member, as
//! `SCHILY.xattr.NAME` records (the keys GNU tar and bsdtar read with `--xattrs`). Names in
//! the `system.` namespace are not copied: ext4 keeps POSIX ACLs there in its own binary form,
//! not the one `setxattr` takes, and `system.data` is the inline-data area itself. Paths and
//! link targets that do not fit ustar's fields go into the same pax header (`path`,
//! `linkpath`), as do uids and gids above ustar's 7 octal digits.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;

use tar::{EntryType, Header};

use crate::fs::ext4::walk::{EntryKind, WalkEntry};

/// Largest uid/gid ustar's octal field holds.
const USTAR_ID_MAX: u32 = 0o7_777_777;

/// What the archive holds, for the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArchiveStats {
    /// Members written (pax headers not counted).
    pub members: u64,
    /// Hard-link members among them.
    pub hard_links: u64,
    /// Members with extended attributes.
    pub with_xattrs: u64,
    /// Sockets left out.
    pub sockets_skipped: u64,
    /// Bytes of file content.
    pub content_bytes: u64,
}

/// One pax record: `LEN key=value\n`, where LEN counts the whole record, itself included.
fn pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Writes a node's root into a tar stream.
pub struct RootArchive<W: Write> {
    builder: tar::Builder<W>,
    /// Inode -> the member name of its first name.
    first_names: HashMap<u32, Vec<u8>>,
    stats: ArchiveStats,
}

impl<W: Write> std::fmt::Debug for RootArchive<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootArchive")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn member_name(e: &WalkEntry) -> Vec<u8> {
    let mut name = b"./".to_vec();
    name.extend_from_slice(&e.path);
    if e.kind == EntryKind::Dir && !e.path.is_empty() {
        name.push(b'/');
    }
    name
}

/// Sets the header's name field to `name` if ustar can hold it; otherwise to its first 100
/// bytes, and returns false (the pax `path` record then carries it).
fn set_name(h: &mut Header, name: &[u8]) -> bool {
    if h.set_path(std::ffi::OsStr::from_bytes(name)).is_ok() && h.path_bytes().as_ref() == name {
        return true;
    }
    let field = &mut h.as_old_mut().name;
    field.fill(0);
    let n = name.len().min(field.len());
    field[..n].copy_from_slice(&name[..n]);
    false
}

fn set_link(h: &mut Header, target: &[u8]) -> bool {
    if h.set_link_name_literal(target).is_ok()
        && h.link_name_bytes().is_some_and(|l| l.as_ref() == target)
    {
        return true;
    }
    let field = &mut h.as_old_mut().linkname;
    field.fill(0);
    let n = target.len().min(field.len());
    field[..n].copy_from_slice(&target[..n]);
    false
}

impl<W: Write> RootArchive<W> {
    /// An archive writing into `w`.
    pub fn new(w: W) -> Self {
        let mut builder = tar::Builder::new(w);
        builder.mode(tar::HeaderMode::Deterministic);
        Self {
            builder,
            first_names: HashMap::new(),
            stats: ArchiveStats::default(),
        }
    }

    /// Appends one walked inode (for a regular file, `content` is its data).
    ///
    /// # Errors
    /// Writing failed, or the content was shorter than the inode's size.
    pub fn append(&mut self, e: &WalkEntry, content: &mut dyn Read) -> std::io::Result<()> {
        let name = member_name(e);
        let mut h = Header::new_ustar();
        let mut pax = Vec::new();
        let hard_link = if e.kind != EntryKind::Dir && e.links > 1 {
            match self.first_names.get(&e.ino) {
                Some(first) => Some(first.clone()),
                None => {
                    self.first_names.insert(e.ino, name.clone());
                    None
                }
            }
        } else {
            None
        };
        let (kind, size) = match (&hard_link, e.kind) {
            (Some(_), _) => (EntryType::Link, 0),
            (None, EntryKind::File) => (EntryType::Regular, e.size),
            (None, EntryKind::Dir) => (EntryType::Directory, 0),
            (None, EntryKind::Symlink) => (EntryType::Symlink, 0),
            (None, EntryKind::CharDevice) => (EntryType::Char, 0),
            (None, EntryKind::BlockDevice) => (EntryType::Block, 0),
            (None, EntryKind::Fifo) => (EntryType::Fifo, 0),
            (None, EntryKind::Socket) => {
                self.stats.sockets_skipped += 1;
                return Ok(());
            }
        };
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(u32::from(e.mode));
        h.set_uid(u64::from(e.uid.min(USTAR_ID_MAX)));
        h.set_gid(u64::from(e.gid.min(USTAR_ID_MAX)));
        if e.uid > USTAR_ID_MAX {
            pax_record(&mut pax, "uid", e.uid.to_string().as_bytes());
        }
        if e.gid > USTAR_ID_MAX {
            pax_record(&mut pax, "gid", e.gid.to_string().as_bytes());
        }
        h.set_mtime(u64::try_from(e.mtime).unwrap_or(0));
        if !set_name(&mut h, &name) {
            pax_record(&mut pax, "path", &name);
        }
        let target = match (&hard_link, e.kind) {
            (Some(first), _) => Some(first.as_slice()),
            (None, EntryKind::Symlink) => e.link_target.as_deref(),
            _ => None,
        };
        if let Some(t) = target
            && !set_link(&mut h, t)
        {
            pax_record(&mut pax, "linkpath", t);
        }
        if matches!(kind, EntryType::Char | EntryType::Block) {
            h.set_device_major(e.device.0)?;
            h.set_device_minor(e.device.1)?;
        } else {
            h.set_device_major(0)?;
            h.set_device_minor(0)?;
        }
        // Attributes belong to the inode: a hard-link member gets them with its first name.
        let mut any_xattr = false;
        if hard_link.is_none() {
            for (k, v) in e.xattrs.iter().filter(|(k, _)| !k.starts_with("system.")) {
                pax_record(&mut pax, &format!("SCHILY.xattr.{k}"), v);
                any_xattr = true;
            }
        }
        if !pax.is_empty() {
            let mut ph = Header::new_ustar();
            ph.set_entry_type(EntryType::XHeader);
            // A short name derived from the member's, as other archivers write it.
            let base = e.path.rsplit(|b| *b == b'/').next().unwrap_or_default();
            let mut pname = b"./PaxHeaders/".to_vec();
            pname.extend_from_slice(&base[..base.len().min(80)]);
            set_name(&mut ph, &pname);
            ph.set_size(pax.len() as u64);
            ph.set_mode(0o644);
            ph.set_mtime(u64::try_from(e.mtime).unwrap_or(0));
            ph.set_cksum();
            self.builder.append(&ph, pax.as_slice())?;
        }
        h.set_cksum();
        if size > 0 {
            self.builder.append(&h, content.take(size))?;
        } else {
            self.builder.append(&h, std::io::empty())?;
        }
        self.stats.members += 1;
        self.stats.content_bytes += size;
        self.stats.hard_links += u64::from(hard_link.is_some());
        self.stats.with_xattrs += u64::from(any_xattr);
        Ok(())
    }

    /// Writes the end-of-archive blocks and returns the writer with the stats.
    ///
    /// # Errors
    /// Writing failed.
    pub fn finish(self) -> std::io::Result<(W, ArchiveStats)> {
        let stats = self.stats;
        let w = self.builder.into_inner()?;
        Ok((w, stats))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, ino: u32, kind: EntryKind, links: u16) -> WalkEntry {
        WalkEntry {
            path: path.as_bytes().to_vec(),
            ino,
            kind,
            mode: 0o644,
            uid: 1000,
            gid: 1000,
            mtime: 1_700_000_000,
            size: 0,
            links,
            device: (0, 0),
            link_target: None,
            xattrs: Vec::new(),
        }
    }

    #[test]
    fn pax_record_lengths_count_themselves() {
        for (key, value) in [
            ("path", "a".repeat(5)),
            ("path", "b".repeat(93)),
            ("k", String::new()),
        ] {
            let mut out = Vec::new();
            pax_record(&mut out, key, value.as_bytes());
            let text = String::from_utf8(out.clone()).unwrap();
            let (len, _) = text.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), out.len(), "{text:?}");
        }
    }

    #[test]
    fn members_round_trip_through_the_tar_reader() {
        let mut a = RootArchive::new(Vec::new());
        let mut root = entry("", 2, EntryKind::Dir, 3);
        root.mode = 0o755;
        a.append(&root, &mut std::io::empty()).unwrap();
        let mut f = entry("bin/ping", 12, EntryKind::File, 2);
        f.size = 5;
        f.mode = 0o755;
        f.xattrs = vec![
            (
                "security.capability".into(),
                vec![1, 0, 0, 2, 0x20, 0, 0, 0],
            ),
            ("system.posix_acl_access".into(), vec![2]),
        ];
        a.append(&f, &mut &b"hello"[..]).unwrap();
        let l = entry("bin/ping2", 12, EntryKind::File, 2);
        a.append(&l, &mut &b"hello"[..]).unwrap();
        let mut d = entry("dev/null", 13, EntryKind::CharDevice, 1);
        d.device = (1, 3);
        a.append(&d, &mut std::io::empty()).unwrap();
        let long = format!("{}/file", "d".repeat(200));
        let mut s = entry(&long, 14, EntryKind::Symlink, 1);
        s.link_target = Some("t".repeat(150).into_bytes());
        a.append(&s, &mut std::io::empty()).unwrap();
        a.append(
            &entry("run/sock", 15, EntryKind::Socket, 1),
            &mut std::io::empty(),
        )
        .unwrap();
        let (bytes, stats) = a.finish().unwrap();
        assert_eq!(stats.members, 5);
        assert_eq!(stats.hard_links, 1);
        assert_eq!(stats.with_xattrs, 1);
        assert_eq!(stats.sockets_skipped, 1);

        let mut ar = tar::Archive::new(bytes.as_slice());
        let mut seen = Vec::new();
        for m in ar.entries().unwrap() {
            let mut m = m.unwrap();
            let path = m.path_bytes().into_owned();
            let kind = m.header().entry_type();
            let link = m.link_name_bytes().map(|l| l.into_owned());
            let xattrs: Vec<(String, Vec<u8>)> = m
                .pax_extensions()
                .unwrap()
                .into_iter()
                .flatten()
                .map(|ext| {
                    let e = ext.unwrap();
                    (e.key().unwrap().to_owned(), e.value_bytes().to_vec())
                })
                .filter(|(k, _)| k.starts_with("SCHILY.xattr."))
                .collect();
            let mut data = Vec::new();
            m.read_to_end(&mut data).unwrap();
            assert_eq!(m.header().uid().unwrap(), 1000);
            assert!(m.header().username_bytes().is_none_or(<[u8]>::is_empty));
            seen.push((String::from_utf8(path).unwrap(), kind, link, xattrs, data));
        }
        assert_eq!(seen[0].0, "./");
        assert_eq!(seen[0].1, EntryType::Directory);
        assert_eq!(seen[1].0, "./bin/ping");
        assert_eq!(seen[1].4, b"hello");
        assert_eq!(
            seen[1].3,
            [(
                "SCHILY.xattr.security.capability".to_owned(),
                vec![1, 0, 0, 2, 0x20, 0, 0, 0]
            )]
        );
        assert_eq!(seen[2].1, EntryType::Link);
        assert_eq!(seen[2].2.as_deref(), Some(&b"./bin/ping"[..]));
        assert!(seen[2].4.is_empty());
        assert_eq!(seen[3].1, EntryType::Char);
        assert_eq!(seen[4].0, format!("./{long}"));
        assert_eq!(seen[4].2.as_deref(), Some("t".repeat(150).as_bytes()));
        assert_eq!(seen.len(), 5);
    }
}
