//! Checks of a recipe against its base image, for what only the image knows: that the time
//! zone, locale and keyboard layout exist in it and that every `dtoverlay=` of
//! `boot.config_txt` has its `.dtbo` on the boot partition. Run by `plan` and `build` before
//! anything is written, and by `validate --base IMAGE`.
//!
//! Each problem names the recipe's `file:line:column: field` (from
//! [`SettingOrigins`](crate::recipe::SettingOrigins)), says what is wrong and what the image
//! offers instead: the names nearest by edit distance. A file the node's own overlays put in
//! the image counts as present (a recipe may bring its own `.dtbo` or zone file).
//!
//! The firmware reads `overlays/NAME.dtbo` from the FAT partition, whose names compare
//! case-insensitively, so the check does too. It does not read `overlay_map.dtb`, where the
//! firmware looks up renamed and deprecated overlays: an old name that only the map knows is
//! reported as missing.

use std::collections::BTreeSet;

use crate::ops::Part;
use crate::recipe::{EntryKind, NodeSpec, Origin, OverlayTarget, Problem, RecipeError};

use super::catalog::{self, Catalog};

/// How many names a suggestion lists.
const SUGGESTIONS: usize = 3;

/// The names of `candidates` nearest to `wanted` by edit distance (case-insensitive; a swap of
/// two neighbouring characters counts as one edit, as in `Lodnon`), at most
/// [`SUGGESTIONS`], nearest first, ties in name order, each with its distance.
#[must_use]
pub fn nearest<'a>(
    wanted: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Vec<(usize, &'a str)> {
    let w = wanted.to_lowercase();
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .map(|c| (strsim::osa_distance(&w, &c.to_lowercase()), c))
        .collect();
    scored.sort_unstable();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.truncate(SUGGESTIONS);
    scored
}

/// What to offer instead of `wanted`: `; did you mean A or B?` for names within a few edits
/// (a third of its length, at least 2), at most one more than the nearest, and not every
/// character replaced, else `; the nearest it has: A, B, C`, or nothing
/// when there are no candidates at all.
pub(crate) fn offer<'a>(wanted: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let near = nearest(wanted, candidates);
    let best = near.first().map_or(0, |(d, _)| *d);
    let len = wanted.chars().count();
    let close_enough = (len / 3).max(2).min(best + 1).min(len.saturating_sub(1));
    let close: Vec<&str> = near
        .iter()
        .filter(|(d, _)| *d <= close_enough)
        .map(|(_, n)| *n)
        .collect();
    let all: Vec<&str> = near.iter().map(|(_, n)| *n).collect();
    match (close.as_slice(), all.as_slice()) {
        (_, []) => String::new(),
        ([one], _) => format!("; did you mean {one}?"),
        ([init @ .., last], _) => format!("; did you mean {} or {last}?", init.join(", ")),
        ([], all) => format!("; the nearest it has: {}", all.join(", ")),
    }
}

/// The files the node's overlays put on `part`, lowercased for the boot partition.
/// The root filesystem files `node`'s overlays add.
pub(crate) fn overlay_root_files(node: &NodeSpec) -> BTreeSet<String> {
    overlay_files(node, Part::Root)
}

fn overlay_files(node: &NodeSpec, part: Part) -> BTreeSet<String> {
    node.overlays
        .iter()
        .filter(|o| {
            matches!(
                (o.target, part),
                (OverlayTarget::Boot, Part::Boot) | (OverlayTarget::Root, Part::Root)
            )
        })
        .flat_map(|o| &o.entries)
        .filter(|e| matches!(e.kind, EntryKind::File | EntryKind::Template))
        .map(|e| match part {
            Part::Boot => e.dest.to_lowercase(),
            Part::Root => e.dest.clone(),
        })
        .collect()
}

/// The overlay a `config.txt` line loads: `dtoverlay=NAME[,param=value…]` (or the older
/// `NAME:param=value`). `None` for other lines and for an empty `dtoverlay=` (which ends the
/// previous overlay's parameters).
#[must_use]
pub fn dtoverlay_name(line: &str) -> Option<&str> {
    let (key, value) = line.split_once('=')?;
    if key.trim() != "dtoverlay" {
        return None;
    }
    let name = value.split([',', ':']).next()?.trim();
    (!name.is_empty()).then_some(name)
}

fn check_timezone(zone: &str, at: &Origin, node: &NodeSpec, c: &Catalog, out: &mut Vec<Problem>) {
    if overlay_files(node, Part::Root).contains(&format!("{}/{zone}", catalog::ZONEINFO)) {
        return;
    }
    let Some(zones) = &c.zones else {
        out.push(Problem::at(
            at,
            format!(
                "time zone {zone:?}: the image has no time zone data ({} is missing: the \
                 package tzdata is not installed); use an image with tzdata, or leave \
                 `timezone` out",
                catalog::ZONEINFO
            ),
        ));
        return;
    };
    if zones.contains(zone) {
        return;
    }
    let offered = zones
        .iter()
        .map(String::as_str)
        .filter(|z| !z.starts_with("posix/") && !z.starts_with("right/"));
    out.push(Problem::at(
        at,
        format!(
            "time zone {zone:?} is not in the image (no regular file {}/{zone}){}",
            catalog::ZONEINFO,
            offer(zone, offered)
        ),
    ));
}

fn check_locale(locale: &str, at: &Origin, c: &Catalog, out: &mut Vec<Problem>) {
    let facts = &c.locales;
    if catalog::is_builtin(locale) {
        return;
    }
    let Some(supported) = &facts.supported else {
        out.push(Problem::at(
            at,
            format!(
                "locale {locale:?}: the image cannot generate locales ({} is missing: the \
                 package locales is not installed); use C.UTF-8, which every image has",
                catalog::SUPPORTED
            ),
        ));
        return;
    };
    if facts.supported_entry(locale).is_none() {
        let names = supported.iter().map(|(n, _)| n.as_str());
        out.push(Problem::at(
            at,
            format!(
                "locale {locale:?} is not one the image can generate (not in {}){}",
                catalog::SUPPORTED,
                offer(locale, names)
            ),
        ));
        return;
    }
    if !facts.is_generated(locale) && !facts.locale_gen {
        out.push(Problem::at(
            at,
            format!(
                "locale {locale:?} is not generated in the image and the image has no {} to \
                 generate it on first boot; use a locale the image has, or C.UTF-8",
                catalog::LOCALE_GEN_TOOL
            ),
        ));
    }
}

fn check_keyboard(layout: &str, at: &Origin, node: &NodeSpec, c: &Catalog, out: &mut Vec<Problem>) {
    let own = overlay_files(node, Part::Root);
    let Some(layouts) = &c.layouts else {
        out.push(Problem::at(
            at,
            format!(
                "keyboard layout {layout:?}: the image has no keyboard layouts ({} is \
                 missing: the package xkb-data is not installed)",
                catalog::XKB_SYMBOLS
            ),
        ));
        return;
    };
    // `gb,us`: several layouts, each must exist.
    for one in layout.split(',').filter(|l| !l.is_empty()) {
        if layouts.contains(one) || own.contains(&format!("{}/{one}", catalog::XKB_SYMBOLS)) {
            continue;
        }
        out.push(Problem::at(
            at,
            format!(
                "keyboard layout {one:?} is not in the image (no {}/{one}){}",
                catalog::XKB_SYMBOLS,
                offer(one, layouts.iter().map(String::as_str))
            ),
        ));
    }
}

fn check_dtoverlays(node: &NodeSpec, boot_overlays: Option<&[String]>, out: &mut Vec<Problem>) {
    let own = overlay_files(node, Part::Boot);
    for (line, at) in node.boot.config_txt.iter().zip(&node.origins.config_txt) {
        let Some(name) = dtoverlay_name(&line.line) else {
            continue;
        };
        let file = format!("{name}.dtbo");
        if own.contains(&format!("/overlays/{}", file.to_lowercase())) {
            continue;
        }
        let Some(present) = boot_overlays else {
            out.push(Problem::at(
                at,
                format!(
                    "dtoverlay {name:?}: the boot partition has no overlays/ directory, so the \
                     firmware has no overlay to load"
                ),
            ));
            continue;
        };
        if present.iter().any(|p| p.eq_ignore_ascii_case(&file)) {
            continue;
        }
        let stems: Vec<String> = present
            .iter()
            .filter_map(|p| p.to_lowercase().strip_suffix(".dtbo").map(str::to_owned))
            .collect();
        out.push(Problem::at(
            at,
            format!(
                "dtoverlay {name:?}: the boot partition has no overlays/{file}{}",
                offer(name, stems.iter().map(String::as_str))
            ),
        ));
    }
}

/// Checks every node in `nodes` against the image: `catalog` from its root filesystem,
/// `boot_overlays` the names in its boot partition's `overlays/` directory (`None`: there is
/// none). Problems shared by several nodes (a setting of the whole recipe) are reported once.
///
/// # Errors
/// Every problem found.
pub fn check_nodes<'a>(
    nodes: impl IntoIterator<Item = &'a NodeSpec>,
    catalog: &Catalog,
    boot_overlays: Option<&[String]>,
) -> Result<(), RecipeError> {
    let mut problems: Vec<Problem> = Vec::new();
    for node in nodes {
        let mut found = Vec::new();
        if let (Some(zone), Some(at)) = (&node.timezone, &node.origins.timezone) {
            check_timezone(zone, at, node, catalog, &mut found);
        }
        if let (Some(locale), Some(at)) = (&node.locale, &node.origins.locale) {
            check_locale(locale, at, catalog, &mut found);
        }
        if let (Some(k), Some(at)) = (&node.keyboard, &node.origins.keyboard) {
            check_keyboard(&k.layout, at, node, catalog, &mut found);
        }
        check_dtoverlays(node, boot_overlays, &mut found);
        for p in found {
            if !problems.contains(&p) {
                problems.push(p);
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(RecipeError { problems })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::plan::catalog::{LocaleFacts, normalize};
    use crate::recipe::{LoadOptions, ResolvedRecipe};

    fn set(names: &[&str]) -> Option<BTreeSet<String>> {
        Some(names.iter().map(|n| (*n).to_owned()).collect())
    }

    fn catalog() -> Catalog {
        Catalog {
            zones: set(&["Europe/London", "Etc/UTC", "UTC"]),
            locales: LocaleFacts {
                config_link_target: None,
                supported: Some(vec![
                    ("en_GB.UTF-8".into(), "UTF-8".into()),
                    ("de_DE.UTF-8".into(), "UTF-8".into()),
                ]),
                generated: [normalize("en_GB.UTF-8")].into_iter().collect(),
                locale_gen: true,
            },
            layouts: set(&["gb", "us"]),
        }
    }

    fn load(dir: &std::path::Path, settings: &str) -> ResolvedRecipe {
        std::fs::write(dir.join("base.img"), b"x").unwrap();
        std::fs::create_dir_all(dir.join("boot/overlays")).unwrap();
        std::fs::write(dir.join("boot/overlays/mine.dtbo"), b"x").unwrap();
        std::fs::create_dir_all(dir.join("tz/usr/share/zoneinfo/Lab")).unwrap();
        std::fs::write(dir.join("tz/usr/share/zoneinfo/Lab/Home"), b"TZif").unwrap();
        let text = format!(
            "cluster: {{ name: lab }}\nbase: {{ path: base.img }}\nnodes: [{{ name: n1 }}]\n{settings}"
        );
        let path = dir.join("r.yaml");
        std::fs::write(&path, text).unwrap();
        crate::recipe::load(&path, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn checks_against_the_catalog() {
        let overlays = vec!["rpi-poe.dtbo".to_owned(), "Disable-BT.DTBO".to_owned()];
        // (case, settings, catalog change, overlays present, expected problems)
        type Change = fn(&mut Catalog);
        let keep: Change = |_| {};
        let cases: &[(&str, &str, Change, bool, &[&str])] = &[
            (
                "all good",
                "timezone: UTC\nlocale: de_DE.UTF-8\nkeyboard: gb,us\nboot: { config_txt: [dtoverlay=disable-bt, dtoverlay=] }\n",
                keep,
                true,
                &[],
            ),
            (
                "built-in locale, no SUPPORTED",
                "locale: C.UTF-8\n",
                |c| c.locales.supported = None,
                true,
                &[],
            ),
            (
                "a zone and a dtbo from the node's overlays",
                "timezone: Lab/Home\nboot: { config_txt: [dtoverlay=MINE] }\noverlays: [{ source: boot, target: boot }, tz]\n",
                keep,
                false,
                &[],
            ),
            (
                "no tzdata",
                "timezone: UTC\n",
                |c| c.zones = None,
                true,
                &["r.yaml:4:11: timezone: time zone \"UTC\": the image has no time zone data"],
            ),
            (
                "no locales package",
                "locale: en_GB.UTF-8\n",
                |c| c.locales.supported = None,
                true,
                &["r.yaml:4:9: locale: locale \"en_GB.UTF-8\": the image cannot generate locales"],
            ),
            (
                "no locale-gen, not generated",
                "locale: de_DE.UTF-8\n",
                |c| c.locales.locale_gen = false,
                true,
                &["is not generated in the image and the image has no /usr/sbin/locale-gen"],
            ),
            (
                "no locale-gen, generated",
                "locale: en_GB.utf8\n",
                |c| c.locales.locale_gen = false,
                true,
                &[],
            ),
            (
                "no xkb-data",
                "keyboard: gb\n",
                |c| c.layouts = None,
                true,
                &[
                    "r.yaml:4:11: keyboard: keyboard layout \"gb\": the image has no keyboard layouts",
                ],
            ),
            (
                "one of two layouts",
                "keyboard: gb,uss\n",
                keep,
                true,
                &[
                    "keyboard layout \"uss\" is not in the image (no /usr/share/X11/xkb/symbols/uss); did you mean us?",
                ],
            ),
            (
                "no overlays directory",
                "boot: { config_txt: [dtoverlay=rpi-poe] }\n",
                keep,
                false,
                &[
                    "r.yaml:4:22: boot.config_txt[0]: dtoverlay \"rpi-poe\": the boot partition has no overlays/ directory",
                ],
            ),
            (
                "a section's line",
                "boot: { config_txt: [{ line: dtoverlay=rpi-poe-plus, section: pi4 }] }\n",
                keep,
                true,
                &[
                    "r.yaml:4:30: boot.config_txt[0].line: dtoverlay \"rpi-poe-plus\": the boot partition has no overlays/rpi-poe-plus.dtbo; the nearest it has: rpi-poe, disable-bt",
                ],
            ),
        ];
        for (name, settings, change, with_overlays, want) in cases {
            let dir = tempfile::tempdir().unwrap();
            let r = load(dir.path(), settings);
            let mut c = catalog();
            change(&mut c);
            let present = with_overlays.then_some(overlays.as_slice());
            let got = match check_nodes(r.selected(), &c, present) {
                Ok(()) => Vec::new(),
                Err(e) => e.problems.iter().map(ToString::to_string).collect(),
            };
            assert_eq!(got.len(), want.len(), "{name}: {got:?}");
            for (g, w) in got.iter().zip(*want) {
                let shown = g
                    .replace(&dir.path().display().to_string(), "")
                    .replace("/r.yaml", "r.yaml");
                assert!(shown.contains(w), "{name}: {w:?} not in {shown:?}");
            }
        }
    }

    #[test]
    fn nearest_names_by_edit_distance() {
        let zones = [
            "Europe/Berlin",
            "Europe/London",
            "Europe/Dublin",
            "Asia/Tokyo",
        ];
        assert_eq!(nearest("Europe/Berlinn", zones)[0], (1, "Europe/Berlin"));
        assert_eq!(nearest("europe/london", zones)[0], (0, "Europe/London"));
        assert_eq!(
            nearest("x", ["b", "a", "c", "d"]),
            [(1, "a"), (1, "b"), (1, "c")]
        );
        assert!(nearest("x", []).is_empty());
        let cases: &[(&str, &[&str], &str)] = &[
            ("Europe/Berlinn", &zones, "; did you mean Europe/Berlin?"),
            (
                "rpi-poe-plsu",
                &["rpi-poe", "rpi-poe-plus", "disable-bt", "disable-wifi"],
                "; did you mean rpi-poe-plus?",
            ),
            (
                "qq",
                &["gb", "us", "de"],
                "; the nearest it has: de, gb, us",
            ),
            ("gbb", &["gb", "us", "de"], "; did you mean gb?"),
            ("Europe/Lodnon", &zones, "; did you mean Europe/London?"),
            ("ab", &["aa", "bb", "abc"], "; did you mean aa, abc or bb?"),
            ("x", &[], ""),
        ];
        for (wanted, candidates, want) in cases {
            assert_eq!(offer(wanted, candidates.iter().copied()), *want, "{wanted}");
        }
    }

    #[test]
    fn dtoverlay_lines() {
        let cases = [
            ("dtoverlay=disable-wifi", Some("disable-wifi")),
            ("dtoverlay=i2c-rtc,ds3231", Some("i2c-rtc")),
            ("dtoverlay=lirc-rpi:gpio_out_pin=17", Some("lirc-rpi")),
            ("dtoverlay = w1-gpio", Some("w1-gpio")),
            ("dtoverlay=", None),
            ("dtparam=audio=on", None),
            ("arm_64bit=1", None),
        ];
        for (line, want) in cases {
            assert_eq!(dtoverlay_name(line), want, "{line}");
        }
    }
}
