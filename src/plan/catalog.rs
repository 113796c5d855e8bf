//! What a base image offers for the settings only it can check: its time zones, the locales
//! it can generate (and those it already has), and its keyboard layouts. Read once per base
//! from the root filesystem, by following the image's own links inside the image (never the
//! host's files).
//!
//! - **Time zones**: every name under `/usr/share/zoneinfo` that is a regular file after the
//!   image's links are followed (Debian's `UTC -> Etc/UTC`, `GB -> Europe/London`). Directories
//!   are walked, links to directories are not (Debian once had `posix -> .`, a loop). The
//!   database's own data files (`zone.tab`, `tzdata.zi`, `leapseconds`, …), `localtime` (a link
//!   back to `/etc/localtime`) and `posixrules` are not zones. No `/usr/share/zoneinfo` at all
//!   means the image has no `tzdata`.
//! - **Locales**: Debian's `locales` package lists what `locale-gen` can build in
//!   `/usr/share/i18n/SUPPORTED` (`en_US.UTF-8 UTF-8`); `/etc/locale.gen` selects what it
//!   builds. `C`, `POSIX` and `C.UTF-8` need nothing (the C library has them). A locale counts
//!   as already generated when the image's builder asked for it: an active line of
//!   `/etc/locale.gen` or of `/var/lib/locales/supported.d/*` (Ubuntu's language packs), or a
//!   directory of its own under `/usr/lib/locale`. The binary `locale-archive` is not parsed:
//!   a locale enabled there but in none of those files is generated once more on first boot,
//!   which costs a few seconds and changes nothing.
//! - **Keyboard layouts**: the files of `/usr/share/X11/xkb/symbols` (package `xkb-data`),
//!   which console-setup compiles the console keymap from.

use std::collections::BTreeSet;

use crate::fs::ext4::{Ext4Error, Ext4Reader, FileKind};

/// Where the time zone database lives.
pub const ZONEINFO: &str = "/usr/share/zoneinfo";
/// The list of locales `locale-gen` can build.
pub const SUPPORTED: &str = "/usr/share/i18n/SUPPORTED";
/// What `locale-gen` builds.
pub const LOCALE_GEN: &str = "/etc/locale.gen";
/// The program that builds them (Debian and Ubuntu package `locales`).
pub const LOCALE_GEN_TOOL: &str = "/usr/sbin/locale-gen";
/// XKB layouts.
pub const XKB_SYMBOLS: &str = "/usr/share/X11/xkb/symbols";

/// Names under `zoneinfo` that are files but not zones.
const NOT_ZONES: &[&str] = &[
    "localtime",
    "posixrules",
    "leapseconds",
    "SECURITY",
    "+VERSION",
];

/// Deepest directory level walked under `zoneinfo` (`right/America/Argentina/Salta`).
const MAX_ZONE_DEPTH: usize = 4;

/// The facts of one base image (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    /// Zone names (`Europe/London`); `None` when the image has no `/usr/share/zoneinfo`.
    pub zones: Option<BTreeSet<String>>,
    /// Locales.
    pub locales: LocaleFacts,
    /// XKB layouts (`gb`, `us`); `None` when the image has no `xkb-data`.
    pub layouts: Option<BTreeSet<String>>,
}

/// What the image knows about locales.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocaleFacts {
    /// `/usr/share/i18n/SUPPORTED` as (name, charset) pairs, in file order; `None` when the
    /// file is missing (no `locales` package).
    pub supported: Option<Vec<(String, String)>>,
    /// Locales already generated, by [`normalize`]d name.
    pub generated: BTreeSet<String>,
    /// `/usr/sbin/locale-gen` exists.
    pub locale_gen: bool,
    /// Where `/etc/default/locale` really is, when it is a link inside `/etc` (Debian 13's
    /// `locales` makes it a link to `/etc/locale.conf`, which systemd reads too); `None` when it
    /// is a file of its own or missing.
    pub config_link_target: Option<String>,
}

/// Debian's locale settings file (`update-locale`), read by PAM at login.
pub const LOCALE_CONFIG: &str = "/etc/default/locale";

/// The absolute path a symlink at `link` with target `target` names, normalised, if it stays
/// under `/etc`.
fn resolve_in_etc(link: &str, target: &str) -> Option<String> {
    let mut parts: Vec<&str> = if target.starts_with('/') {
        Vec::new()
    } else {
        let dir = link.rsplit_once('/').map_or("", |(d, _)| d);
        dir.split('/').filter(|p| !p.is_empty()).collect()
    };
    for p in target.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    let path = format!("/{}", parts.join("/"));
    (parts.len() >= 2 && parts[0] == "etc").then_some(path)
}

impl LocaleFacts {
    /// The `SUPPORTED` entry for `locale` (compared by [`normalize`]d name).
    #[must_use]
    pub fn supported_entry(&self, locale: &str) -> Option<&(String, String)> {
        let want = normalize(locale);
        self.supported
            .as_ref()?
            .iter()
            .find(|(name, _)| normalize(name) == want)
    }

    /// True when `locale` needs no generating: built into the C library, or already there.
    #[must_use]
    pub fn is_generated(&self, locale: &str) -> bool {
        is_builtin(locale) || self.generated.contains(&normalize(locale))
    }
}

/// True for the locales every glibc system has: `C`, `POSIX`, `C.UTF-8` (any spelling).
#[must_use]
pub fn is_builtin(locale: &str) -> bool {
    matches!(normalize(locale).as_str(), "C" | "POSIX" | "C.utf8")
}

/// A locale name as the C library compares them: the codeset lowercased without
/// punctuation (`en_GB.UTF-8` -> `en_GB.utf8`, `de_DE.ISO-8859-1` -> `de_DE.iso88591`; a
/// codeset of digits only gets `iso` in front), the rest as written.
#[must_use]
pub fn normalize(locale: &str) -> String {
    let (main, modifier) = match locale.split_once('@') {
        Some((m, x)) => (m, Some(x)),
        None => (locale, None),
    };
    let mut out = match main.split_once('.') {
        Some((lang, codeset)) => {
            let mut c: String = codeset
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .map(|c| c.to_ascii_lowercase())
                .collect();
            if !c.is_empty() && c.chars().all(|c| c.is_ascii_digit()) {
                c.insert_str(0, "iso");
            }
            format!("{lang}.{c}")
        }
        None => main.to_owned(),
    };
    if let Some(m) = modifier {
        out.push('@');
        out.push_str(m);
    }
    out
}

/// The active entries of a `locale.gen`-style file: the first field of each line that is not
/// empty or a comment.
#[must_use]
pub fn active_locales(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next())
        .collect()
}

/// `SUPPORTED`'s (name, charset) pairs.
#[must_use]
pub fn parse_supported(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?.to_owned(), f.next()?.to_owned()))
        })
        .collect()
}

fn walk_zones(
    reader: &Ext4Reader,
    dir: &str,
    rel: &str,
    depth: usize,
    out: &mut BTreeSet<String>,
) -> Result<(), Ext4Error> {
    for name in reader.list(dir)? {
        let path = format!("{dir}/{name}");
        let rel = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        match reader.kind(&path, false)? {
            Some(FileKind::Dir) if depth < MAX_ZONE_DEPTH => {
                walk_zones(reader, &path, &rel, depth + 1, out)?;
            }
            Some(FileKind::File | FileKind::Symlink)
                if is_zone_name(&name) && reader.kind(&path, true)? == Some(FileKind::File) =>
            {
                out.insert(rel);
            }
            _ => {}
        }
    }
    Ok(())
}

/// False for the data files that sit next to the zones.
fn is_zone_name(name: &str) -> bool {
    !name.contains('.') && !NOT_ZONES.contains(&name)
}

impl Catalog {
    /// Reads the catalog from the image's root filesystem.
    ///
    /// # Errors
    /// Reading the filesystem failed.
    pub fn read(reader: &Ext4Reader) -> Result<Self, Ext4Error> {
        let zones = if reader.kind(ZONEINFO, true)? == Some(FileKind::Dir) {
            let mut set = BTreeSet::new();
            walk_zones(reader, ZONEINFO, "", 0, &mut set)?;
            Some(set)
        } else {
            None
        };
        let supported = reader.read_text(SUPPORTED)?.map(|t| parse_supported(&t));
        let mut generated = BTreeSet::new();
        if let Some(t) = reader.read_text(LOCALE_GEN)? {
            generated.extend(active_locales(&t).into_iter().map(normalize));
        }
        let snippets = "/var/lib/locales/supported.d";
        for name in reader.list(snippets)? {
            if let Some(t) = reader.read_text(&format!("{snippets}/{name}"))? {
                generated.extend(active_locales(&t).into_iter().map(normalize));
            }
        }
        for name in reader.list("/usr/lib/locale")? {
            if reader.kind(&format!("/usr/lib/locale/{name}"), true)? == Some(FileKind::Dir) {
                generated.insert(normalize(&name));
            }
        }
        let layouts = if reader.kind(XKB_SYMBOLS, true)? == Some(FileKind::Dir) {
            let mut set = BTreeSet::new();
            for name in reader.list(XKB_SYMBOLS)? {
                if reader.kind(&format!("{XKB_SYMBOLS}/{name}"), true)? == Some(FileKind::File) {
                    set.insert(name);
                }
            }
            Some(set)
        } else {
            None
        };
        Ok(Self {
            zones,
            locales: LocaleFacts {
                supported,
                generated,
                locale_gen: reader.kind(LOCALE_GEN_TOOL, true)? == Some(FileKind::File),
                config_link_target: reader
                    .read_link(LOCALE_CONFIG)?
                    .and_then(|t| resolve_in_etc(LOCALE_CONFIG, &t)),
            },
            layouts,
        })
    }
}

#[cfg(test)]
mod link_tests {
    use super::resolve_in_etc;

    #[test]
    fn links_resolve_inside_etc_only() {
        for (target, want) in [
            ("../locale.conf", Some("/etc/locale.conf")),
            ("/etc/locale.conf", Some("/etc/locale.conf")),
            ("./locale.d/x", Some("/etc/default/locale.d/x")),
            ("../../usr/share/x", None),
            ("../../../../x", None),
            ("/usr/lib/locale.conf", None),
        ] {
            assert_eq!(
                resolve_in_etc("/etc/default/locale", target).as_deref(),
                want,
                "{target}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locale_names_normalize_like_glibc() {
        let cases = [
            ("en_GB.UTF-8", "en_GB.utf8"),
            ("en_GB.utf8", "en_GB.utf8"),
            ("de_DE.ISO-8859-1", "de_DE.iso88591"),
            ("ja_JP.EUC-JP", "ja_JP.eucjp"),
            ("sr_RS.UTF-8@latin", "sr_RS.utf8@latin"),
            ("be_BY@latin", "be_BY@latin"),
            ("x.8859", "x.iso8859"),
            ("C", "C"),
        ];
        for (name, want) in cases {
            assert_eq!(normalize(name), want, "{name}");
        }
        for b in ["C", "POSIX", "C.UTF-8", "C.utf8"] {
            assert!(is_builtin(b), "{b}");
        }
        assert!(!is_builtin("en_US.UTF-8"));
    }

    #[test]
    fn supported_and_locale_gen_parse() {
        let sup = parse_supported("en_GB.UTF-8 UTF-8\nen_GB ISO-8859-1\n\n# x\n");
        assert_eq!(
            sup,
            [
                ("en_GB.UTF-8".to_owned(), "UTF-8".to_owned()),
                ("en_GB".to_owned(), "ISO-8859-1".to_owned())
            ]
        );
        let gen_file =
            "# header\n\n# en_US.UTF-8 UTF-8\nen_GB.UTF-8 UTF-8\n  de_DE.UTF-8 UTF-8  \n";
        assert_eq!(active_locales(gen_file), ["en_GB.UTF-8", "de_DE.UTF-8"]);
        let facts = LocaleFacts {
            config_link_target: None,
            supported: Some(sup),
            generated: active_locales(gen_file)
                .into_iter()
                .map(normalize)
                .collect(),
            locale_gen: true,
        };
        assert!(facts.is_generated("en_GB.utf8"));
        assert!(facts.is_generated("C.UTF-8"));
        assert!(!facts.is_generated("en_US.UTF-8"));
        assert_eq!(
            facts.supported_entry("en_GB.utf8").map(|e| e.1.as_str()),
            Some("UTF-8")
        );
        assert!(facts.supported_entry("xx_YY.UTF-8").is_none());
    }

    #[test]
    fn data_files_are_not_zones() {
        for n in [
            "zone.tab",
            "tzdata.zi",
            "leap-seconds.list",
            "localtime",
            "posixrules",
        ] {
            assert!(!is_zone_name(n), "{n}");
        }
        for n in ["UTC", "Berlin", "GMT+1", "Factory"] {
            assert!(is_zone_name(n), "{n}");
        }
    }
}
