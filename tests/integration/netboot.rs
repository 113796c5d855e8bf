//! issue 12: the `netboot` output. Each node's root archive, extracted as root with GNU tar,
//! is compared file by file with the node's own image read by `debugfs` (content through
//! `rdump`, type, mode, owner, link count, inode sharing, mtime, device numbers through
//! `stat`, extended attributes through `ea_list`); the TFTP tree with the FAT read by `mcopy`;
//! the server files with `dnsmasq --test`, an exports(5) syntax check and `exportfs -ra` in a
//! private mount namespace.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use xtask::fixtures::{self, Fixture, Format};

use crate::support::Piimage;
use crate::support::{debugfs, e2fsck_clean, run, run_ok, sh};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A copy of the Bookworm fixture with what its root lacks: a file with `security.capability`
/// (and a `user.` attribute) and a second hard link to it, character and block devices (one
/// with a minor above 255, the new encoding), a FIFO owned by uid 1000, and a
/// `dphys-swapfile.service` for the netboot output to mask. Written with `debugfs -w`, checked
/// with `e2fsck -fn`.
fn prepared_base(dir: &Path) -> PathBuf {
    let src = fixtures::fixture_path(Fixture::RaspiosBookworm, Format::Raw).unwrap();
    let base = dir.join("base.img");
    std::fs::copy(&src, &base).unwrap();
    // v2 capability: CAP_NET_RAW (bit 13) permitted.
    let mut cap = vec![0u8; 20];
    cap[..4].copy_from_slice(&0x0200_0001u32.to_le_bytes());
    cap[4..8].copy_from_slice(&(1u32 << 13).to_le_bytes());
    std::fs::write(dir.join("cap.bin"), &cap).unwrap();
    std::fs::write(dir.join("ping.txt"), b"not really ping\n").unwrap();
    std::fs::write(
        dir.join("dphys.service"),
        b"[Unit]\nDescription=swap file\n",
    )
    .unwrap();
    let cmds = format!(
        "mkdir /srv/nb\n\
         write {d}/ping.txt /srv/nb/pingcap\n\
         ea_set -f {d}/cap.bin /srv/nb/pingcap security.capability\n\
         ea_set /srv/nb/pingcap user.note hello\n\
         sif /srv/nb/pingcap mode 0100755\n\
         ln /srv/nb/pingcap /srv/nb/pingcap-link\n\
         sif /srv/nb/pingcap links_count 2\n\
         cd /srv/nb\n\
         mknod null c 1 3\n\
         sif null mode 020666\n\
         mknod sda1 b 8 1\n\
         sif sda1 mode 060660\n\
         mknod bigminor c 240 1000\n\
         sif bigminor mode 020600\n\
         mknod fifo p\n\
         sif fifo mode 010640\n\
         sif fifo uid 1000\n\
         write {d}/dphys.service /usr/lib/systemd/system/dphys-swapfile.service\n",
        d = dir.display()
    );
    std::fs::write(dir.join("cmds"), cmds).unwrap();
    let root = fixtures::info(Fixture::RaspiosBookworm).root.offset();
    let spec = format!("{}?offset={root}", base.display());
    run_ok(
        "debugfs",
        &["-w", "-f", &dir.join("cmds").display().to_string(), &spec],
    );
    e2fsck_clean(&base, root);
    base
}

fn recipe(dir: &Path, out: &Path) -> PathBuf {
    let key = repo().join("recipes/keys/admin.pub");
    let text = format!(
        "cluster: {{ name: pico }}\n\
         base: {{ path: unused.img }}\n\
         seed: test-seed-not-secret\n\
         epoch: 1767225600\n\
         output: {{ dir: {out}, formats: [img, netboot], name: \"{{node}}\" }}\n\
         netboot: {{ server: 10.0.0.1/24, export_root: /srv/nfs/pico, dhcp_reply_delay: 2 }}\n\
         users:\n  - name: alice\n    ssh_authorized_keys: [ {{ file: {key} }} ]\n\
         boot:\n  config_txt: [ dtparam=i2c_arm=on ]\n  cmdline: {{ add: [cgroup_memory=1] }}\n\
         nodes:\n\
         \x20 - {{ name: nb-1, serial: \"1A2B3C4D\", address: 10.0.0.11/24 }}\n\
         \x20 - {{ name: nb-2, mac: \"DC:A6:32:01:02:03\", address: 10.0.0.12/24 }}\n",
        out = out.display(),
        key = key.display()
    );
    let p = dir.join("netboot.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

fn piimage(args: &[&str]) -> std::process::Output {
    Piimage::new()
        .args(args)
        .quiet()
        .private_cache()
        .current_dir(repo())
        .run()
}

/// What `debugfs stat` and `ea_list` say about one path.
#[derive(Debug, Default)]
struct Stat {
    inode: u64,
    kind: String,
    mode: u32,
    uid: u32,
    gid: u32,
    links: u64,
    mtime: i64,
    device: Option<(u32, u32)>,
    xattrs: BTreeMap<String, Vec<u8>>,
}

fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let i = text.find(key)? + key.len();
    text[i..].split_whitespace().next()
}

/// `  name (len) = value`: hex bytes, or a quoted string.
fn parse_xattr_line(line: &str) -> Option<(String, Vec<u8>)> {
    let line = line.trim();
    let (name, rest) = line.split_once(" (")?;
    let (len, value) = rest.split_once(") = ")?;
    let len: usize = len.parse().ok()?;
    let bytes = if let Some(q) = value.strip_prefix('"') {
        q.strip_suffix('"').unwrap_or(q).as_bytes().to_vec()
    } else {
        value
            .split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    };
    assert_eq!(bytes.len(), len, "xattr line {line:?}");
    Some((name.to_owned(), bytes))
}

/// Runs `stat` and `ea_list` for every path in one debugfs session.
fn debugfs_stats(img: &Path, offset: u64, paths: &[String], dir: &Path) -> HashMap<String, Stat> {
    let mut cmds = String::new();
    for p in paths {
        cmds.push_str(&format!("stat \"{p}\"\nea_list \"{p}\"\n"));
    }
    let file = dir.join("stat-cmds");
    std::fs::write(&file, cmds).unwrap();
    let spec = format!("{}?offset={offset}", img.display());
    let out = run("debugfs", &["-f", &file.display().to_string(), &spec]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut stats = HashMap::new();
    let mut current: Option<(String, Stat)> = None;
    let mut in_ea = false;
    for chunk in text.split("debugfs: ").skip(1) {
        let (cmd, body) = chunk.split_once('\n').unwrap_or((chunk, ""));
        if let Some(p) = cmd.strip_prefix("stat ") {
            if let Some((path, s)) = current.take() {
                stats.insert(path, s);
            }
            let p = p.trim_matches('"').to_owned();
            let mut s = Stat {
                inode: field(body, "Inode:").unwrap().parse().unwrap(),
                kind: body
                    .split("Type: ")
                    .nth(1)
                    .unwrap()
                    .split("  ")
                    .next()
                    .unwrap()
                    .trim()
                    .to_owned(),
                mode: u32::from_str_radix(field(body, "Mode:").unwrap(), 8).unwrap(),
                uid: field(body, "User:").unwrap().parse().unwrap(),
                gid: field(body, "Group:").unwrap().parse().unwrap(),
                links: field(body, "Links:").unwrap().parse().unwrap(),
                ..Stat::default()
            };
            let mtime = field(body, " mtime: 0x").unwrap();
            s.mtime = i64::from_str_radix(mtime.split(':').next().unwrap(), 16).unwrap();
            if let Some(d) = field(body, "Device major/minor number: ") {
                let (a, b) = d.split_once(':').unwrap();
                s.device = Some((a.parse().unwrap(), b.parse().unwrap()));
            }
            current = Some((p, s));
            in_ea = false;
        } else if cmd.starts_with("ea_list ") {
            in_ea = true;
            if let Some((_, s)) = current.as_mut() {
                for line in body
                    .lines()
                    .skip_while(|l| !l.starts_with("Extended attributes:"))
                {
                    if let Some((k, v)) = parse_xattr_line(line) {
                        s.xattrs.insert(k, v);
                    }
                }
            }
        }
    }
    let _ = in_ea;
    if let Some((path, s)) = current.take() {
        stats.insert(path, s);
    }
    stats
}

/// Every path under `root` (relative, sorted), not following symlinks.
fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let abs = root.join(&rel);
        let meta = std::fs::symlink_metadata(&abs).unwrap();
        if !rel.as_os_str().is_empty() {
            out.push(rel.clone());
        }
        if meta.is_dir() {
            for e in std::fs::read_dir(&abs).unwrap() {
                stack.push(rel.join(e.unwrap().file_name()));
            }
        }
    }
    out.sort();
    out
}

fn xattrs_of(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut names = vec![0u8; 65536];
    let n = rustix::fs::llistxattr(path, &mut names).unwrap();
    let mut out = BTreeMap::new();
    for name in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = String::from_utf8(name.to_vec()).unwrap();
        let mut value = vec![0u8; 65536];
        let len = rustix::fs::lgetxattr(path, name.as_str(), &mut value).unwrap();
        value.truncate(len);
        out.insert(name, value);
    }
    out
}

fn dev_major_minor(dev: u64) -> (u32, u32) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (u32::try_from(major).unwrap(), u32::try_from(minor).unwrap())
}

fn kind_name(ft: std::fs::FileType) -> &'static str {
    if ft.is_dir() {
        "directory"
    } else if ft.is_symlink() {
        "symlink"
    } else if ft.is_file() {
        "regular"
    } else if ft.is_char_device() {
        "character special"
    } else if ft.is_block_device() {
        "block special"
    } else if ft.is_fifo() {
        "FIFO"
    } else {
        "other"
    }
}

/// The image's root dumped with `debugfs rdump` (regular files, directories, symlinks).
fn rdump(img: &Path, offset: u64, dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    let listing = debugfs(img, offset, "ls -p /");
    let mut tops = Vec::new();
    for line in listing.lines() {
        let parts: Vec<&str> = line.split('/').collect();
        if parts.len() > 5 && !matches!(parts[5], "." | ".." | "lost+found" | "") {
            tops.push(format!("/{}", parts[5]));
        }
    }
    let cmd = format!("rdump {} {}", tops.join(" "), dest.display());
    debugfs(img, offset, &cmd);
}

/// Compares one node's extracted archive with its image; returns how many paths were compared.
fn compare_root(img: &Path, offset: u64, extracted: &Path, work: &Path, edited: &[&str]) -> usize {
    let dumped = work.join("rdump");
    rdump(img, offset, &dumped);
    let paths = walk(extracted);
    let mut names: Vec<String> = paths
        .iter()
        .map(|p| format!("/{}", p.display()))
        .filter(|p| !edited.contains(&p.as_str()))
        .collect();
    names.insert(0, "/".to_owned());
    let stats = debugfs_stats(img, offset, &names, work);
    // Every name of the archive is in the image, with the same metadata.
    let mut by_inode: HashMap<u64, u64> = HashMap::new();
    for name in &names {
        let rel = name.trim_start_matches('/');
        let ex = extracted.join(rel);
        let meta = std::fs::symlink_metadata(&ex).unwrap();
        let s = stats
            .get(name)
            .unwrap_or_else(|| panic!("{name}: in the archive, not in the image"));
        let what = format!("{name} (inode {})", s.inode);
        assert_eq!(kind_name(meta.file_type()), s.kind, "{what}: type");
        if !meta.file_type().is_symlink() {
            assert_eq!(meta.mode() & 0o7777, s.mode, "{what}: mode");
        }
        assert_eq!((meta.uid(), meta.gid()), (s.uid, s.gid), "{what}: owner");
        if !meta.is_dir() {
            assert_eq!(meta.nlink(), s.links, "{what}: link count");
            assert_eq!(meta.mtime(), s.mtime, "{what}: mtime");
            // Names sharing an extracted inode share an image inode, and only those.
            let first = by_inode.entry(meta.ino()).or_insert(s.inode);
            assert_eq!(*first, s.inode, "{what}: hard links");
        }
        if let Some(d) = s.device {
            assert_eq!(dev_major_minor(meta.rdev()), d, "{what}: device number");
        }
        let image_xattrs: BTreeMap<String, Vec<u8>> = s
            .xattrs
            .iter()
            .filter(|(k, _)| !k.starts_with("system."))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(xattrs_of(&ex), image_xattrs, "{what}: extended attributes");
        let dumped_path = dumped.join(rel);
        if meta.is_file() {
            assert_eq!(
                std::fs::read(&ex).unwrap(),
                std::fs::read(&dumped_path).unwrap(),
                "{what}: content"
            );
        } else if meta.file_type().is_symlink() {
            assert_eq!(
                std::fs::read_link(&ex).unwrap(),
                std::fs::read_link(&dumped_path).unwrap(),
                "{what}: link target"
            );
        }
    }
    // Every name of the image (as rdump writes it) is in the archive.
    let archived: BTreeSet<PathBuf> = paths.into_iter().collect();
    for p in walk(&dumped) {
        assert!(
            archived.contains(&p),
            "/{}: in the image, not in the archive",
            p.display()
        );
    }
    names.len()
}

#[test]
fn issue12_netboot_roots_and_tftp_trees_match_the_node_images() {
    let work = tempfile::tempdir_in(repo().join("target")).unwrap();
    let dir = work.path();
    let base = prepared_base(dir);
    let out = dir.join("out");
    let recipe = recipe(dir, &out);
    let r = piimage(&[
        "build",
        &recipe.display().to_string(),
        "--base",
        &base.display().to_string(),
    ]);
    assert!(
        r.status.success(),
        "build failed:\n{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let info = fixtures::info(Fixture::RaspiosBookworm);
    let (boot_off, root_off) = (info.boot.offset(), info.root.offset());
    let nb = out.join("netboot");

    for (node, board) in [("nb-1", "1a2b3c4d"), ("nb-2", "dc-a6-32-01-02-03")] {
        let img = out.join(format!("{node}.img"));
        e2fsck_clean(&img, root_off);
        let work = dir.join(format!("work-{node}"));
        let ex = work.join("root");
        std::fs::create_dir_all(&ex).unwrap();
        let archive = nb.join(format!("roots/{node}.root.tar.zst"));
        sh(
            &work,
            &format!(
                "tar --zstd --numeric-owner --xattrs --xattrs-include='*' -xpf '{}' -C root",
                archive.display()
            ),
        );
        // The edited files, as the netboot output says.
        let fstab = std::fs::read_to_string(ex.join("etc/fstab")).unwrap();
        let live: Vec<&str> = fstab.lines().filter(|l| !l.starts_with('#')).collect();
        assert!(
            live.iter().all(|l| !l.contains("PARTUUID=")),
            "SD lines left in fstab:\n{fstab}"
        );
        assert!(
            live.contains(
                &format!("10.0.0.1:/srv/nfs/pico/{node} / nfs defaults,vers=3,noatime 0 0")
                    .as_str()
            ),
            "{fstab}"
        );
        assert!(
            live.contains(
                &format!("10.0.0.1:/srv/tftp/{board} /boot/firmware nfs defaults,vers=3 0 0")
                    .as_str()
            ),
            "{fstab}"
        );
        for unit in ["dphys-swapfile.service", "piimage-grow-root.service"] {
            let link = ex.join("etc/systemd/system").join(unit);
            assert_eq!(
                std::fs::read_link(&link).unwrap(),
                Path::new("/dev/null"),
                "{unit} masked"
            );
        }
        // The image itself keeps its SD fstab and its growth unit.
        let img_fstab = debugfs(&img, root_off, "cat /etc/fstab");
        assert!(img_fstab.contains("PARTUUID="), "{img_fstab}");
        let edited = [
            "/etc/fstab",
            "/etc/systemd/system/dphys-swapfile.service",
            "/etc/systemd/system/piimage-grow-root.service",
        ];
        let compared = compare_root(&img, root_off, &ex, &work, &edited);
        assert!(compared > 500, "only {compared} paths compared");
        // What the test's base added is there, as it was written.
        let nbdir = ex.join("srv/nb");
        let a = std::fs::symlink_metadata(nbdir.join("pingcap")).unwrap();
        let b = std::fs::symlink_metadata(nbdir.join("pingcap-link")).unwrap();
        assert_eq!((a.ino(), a.nlink()), (b.ino(), 2));
        assert_eq!(
            xattrs_of(&nbdir.join("pingcap"))["security.capability"][4..8],
            (1u32 << 13).to_le_bytes()
        );
        let big = std::fs::symlink_metadata(nbdir.join("bigminor")).unwrap();
        assert_eq!(dev_major_minor(big.rdev()), (240, 1000));
        assert!(
            std::fs::symlink_metadata(nbdir.join("fifo"))
                .unwrap()
                .file_type()
                .is_fifo()
        );

        // The TFTP tree is the FAT, but for cmdline.txt.
        let fat = work.join("fat");
        std::fs::create_dir_all(&fat).unwrap();
        sh(
            &work,
            &format!("mcopy -s -n -i '{}@@{boot_off}' ::/ fat/", img.display()),
        );
        let tftp = nb.join("tftp").join(board);
        let fat_files = walk(&fat);
        let tftp_files = walk(&tftp);
        assert_eq!(fat_files, tftp_files, "{board}: file names");
        for p in &fat_files {
            let (x, y) = (fat.join(p), tftp.join(p));
            if x.is_dir() || p == Path::new("cmdline.txt") {
                continue;
            }
            assert_eq!(
                std::fs::read(&x).unwrap(),
                std::fs::read(&y).unwrap(),
                "{p:?}"
            );
        }
        let config = std::fs::read_to_string(tftp.join("config.txt")).unwrap();
        assert!(config.contains("dtparam=i2c_arm=on"), "{config}");
        let cmdline = std::fs::read_to_string(tftp.join("cmdline.txt")).unwrap();
        let image_cmdline = std::fs::read_to_string(fat.join("cmdline.txt")).unwrap();
        assert!(image_cmdline.contains("root=PARTUUID="), "{image_cmdline}");
        assert!(
            cmdline.ends_with(&format!(
                " root=/dev/nfs nfsroot=10.0.0.1:/srv/nfs/pico/{node},vers=3 rw ip=dhcp rootwait\n"
            )),
            "{cmdline:?}"
        );
        assert!(
            !cmdline.contains("PARTUUID") && !cmdline.contains("init="),
            "{cmdline}"
        );
        // The node's other tokens stay, in order.
        let kept: Vec<&str> = image_cmdline
            .split_whitespace()
            .filter(|t| {
                !t.starts_with("root=") && !t.starts_with("rootfstype=") && *t != "rootwait"
            })
            .collect();
        let got: Vec<&str> = cmdline.split_whitespace().take(kept.len()).collect();
        assert_eq!(got, kept, "{cmdline}");
        assert!(cmdline.contains("cgroup_memory=1"));
    }

    // The server's files.
    let conf = nb.join("dnsmasq.conf");
    let test = run("dnsmasq", &["--test", "-C", &conf.display().to_string()]);
    assert!(
        test.status.success(),
        "dnsmasq --test: {}{}",
        String::from_utf8_lossy(&test.stdout),
        String::from_utf8_lossy(&test.stderr)
    );
    let conf_text = std::fs::read_to_string(&conf).unwrap();
    for line in [
        "dhcp-range=10.0.0.0,proxy,255.255.255.0",
        "pxe-service=0,\"Raspberry Pi Boot\"",
        "dhcp-reply-delay=2",
        "tftp-root=/srv/tftp",
        "enable-tftp",
    ] {
        assert!(
            conf_text.lines().any(|l| l == line),
            "{line} in\n{conf_text}"
        );
    }
    let exports = std::fs::read_to_string(nb.join("exports")).unwrap();
    crate::support::exports_accepted(
        &exports,
        &["/srv/nfs/pico/nb-1", "/srv/nfs/pico/nb-2", "/srv/tftp"],
    );
    let readme = std::fs::read_to_string(nb.join("README.md")).unwrap();
    assert!(readme.contains("BOOT_ORDER=0xf21"));
    assert!(readme.contains("-xpf roots/nb-2.root.tar.zst -C /srv/nfs/pico/nb-2"));
}

/// Loads `text` as a recipe; returns `(field, line, message)` of each problem.
fn problems(text: &str) -> Vec<(String, u64, String)> {
    let dir = crate::support::tmp();
    std::fs::write(dir.path().join("base.img"), b"x").unwrap();
    std::fs::write(dir.path().join("r.yaml"), text).unwrap();
    match piimage::recipe::load(
        &dir.path().join("r.yaml"),
        &piimage::recipe::LoadOptions::default(),
    ) {
        Ok(_) => Vec::new(),
        Err(e) => e
            .problems
            .iter()
            .map(|p| (p.field.clone(), p.line, p.message.clone()))
            .collect(),
    }
}

#[test]
fn issue12_netboot_recipe_mistakes_name_their_line_and_field() {
    let head = "cluster: { name: lab }\nbase: { path: base.img }\n";
    let with = |rest: &str| format!("{head}output: {{ formats: [img, netboot] }}\n{rest}");
    for (name, text, field, line, says) in [
        (
            "no netboot section",
            with("nodes:\n  - { name: a, serial: 1a2b3c4d }\n"),
            "output.formats",
            3,
            "needs a `netboot:` section",
        ),
        (
            "no serial",
            with("netboot: { server: 10.0.0.1/24 }\nnodes:\n  - { name: a }\n"),
            "output.formats",
            3,
            "node \"a\" has no `serial:`",
        ),
        (
            "bad serial",
            with("netboot: { server: 10.0.0.1/24 }\nnodes:\n  - { name: a, serial: 1a2b3 }\n"),
            "nodes[0].serial",
            6,
            "not a board serial number",
        ),
        (
            "serial on a range",
            with(
                "netboot: { server: 10.0.0.1/24 }\nnodes:\n  - { range: \"w{1..2}\", serial: 1a2b3c4d }\n",
            ),
            "nodes[0].serial",
            6,
            "a range takes `serials`",
        ),
        (
            "too few serials",
            with(
                "netboot: { server: 10.0.0.1/24 }\nnodes:\n  - { range: \"w{1..2}\", serials: [1a2b3c4d] }\n",
            ),
            "nodes[0].serials",
            6,
            "1 serials for a range of 2 nodes",
        ),
        (
            "the same board twice",
            with(
                "netboot: { server: 10.0.0.1/24 }\nnodes:\n  - { name: a, serial: 1a2b3c4d }\n  - { name: b, mac: \"dc:a6:32:01:02:03\" }\n  - { name: c, serial: 1A2B3C4D }\n",
            ),
            "output.formats",
            3,
            "nodes \"a\" and \"c\" have the same board id 1a2b3c4d",
        ),
        (
            "IPv6 server",
            with(
                "netboot: { server: \"fd00::1/64\" }\nnodes:\n  - { name: a, serial: 1a2b3c4d }\n",
            ),
            "netboot.server",
            4,
            "IPv4 only",
        ),
        (
            "export root with a comma",
            with(
                "netboot: { server: 10.0.0.1/24, export_root: \"/srv/a,b\" }\nnodes:\n  - { name: a, serial: 1a2b3c4d }\n",
            ),
            "netboot.export_root",
            4,
            "not a usable server directory",
        ),
        (
            "netboot alone",
            format!(
                "{head}output: {{ formats: [netboot] }}\nnetboot: {{ server: 10.0.0.1/24 }}\nnodes:\n  - {{ name: a, serial: 1a2b3c4d }}\n"
            ),
            "output.formats",
            3,
            "no image format",
        ),
    ] {
        let got = problems(&text);
        assert!(
            got.iter()
                .any(|(f, l, m)| f == field && *l == line && m.contains(says)),
            "{name}: want {field} at line {line} saying {says:?}, got {got:#?}"
        );
    }
    // Without the netboot format, serials are checked but nothing else is asked for.
    assert!(
        problems(&format!(
            "{head}nodes:\n  - {{ name: a, serial: 1a2b3c4d }}\n"
        ))
        .is_empty()
    );
}
