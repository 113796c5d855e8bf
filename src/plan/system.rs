//! Time zone, locale and keyboard, as Debian's own tools leave them.
//!
//! - time zone: `/etc/localtime -> /usr/share/zoneinfo/ZONE` and `/etc/timezone`
//!   (`timedatectl`/`dpkg-reconfigure tzdata`);
//! - locale: `/etc/default/locale` (`update-locale`), and its line enabled in
//!   `/etc/locale.gen` (`dpkg-reconfigure locales` uncomments it) so every later `locale-gen`
//!   keeps it. A locale must also be *generated* (compiled into `/usr/lib/locale`), which
//!   piimage cannot do without running the image's code. When the image does not have it
//!   yet (see [`LocaleFacts::is_generated`]), piimage installs and enables a one-shot unit of
//!   its own, [`LOCALE_GEN_UNIT`], that runs `locale-gen` once on first boot, before logins,
//!   and leaves a marker ([`LOCALE_GEN_MARKER`]) so it never runs again; `plan` lists both
//!   files. Built-in locales (`C`, `POSIX`, `C.UTF-8`) need neither;
//! - keyboard: `/etc/default/keyboard` (`XKBLAYOUT`, `XKBMODEL`), read by console-setup.

use crate::ops::{FileAttrs, FileOp, Part, TextEdit};

use super::catalog::{LOCALE_CONFIG, LOCALE_GEN, LocaleFacts, is_builtin};

/// piimage's first-boot unit that generates the enabled locales.
pub const LOCALE_GEN_UNIT: &str = "piimage-locale-gen.service";
/// Left by [`LOCALE_GEN_UNIT`] once it has run (`StateDirectory=piimage`).
pub const LOCALE_GEN_MARKER: &str = "/var/lib/piimage/locale-gen.done";

/// The unit file of [`LOCALE_GEN_UNIT`].
fn locale_gen_unit() -> String {
    format!(
        "# Written by piimage: generates the locales enabled in /etc/locale.gen, once.\n\
         [Unit]\n\
         Description=Generate locales (piimage, first boot)\n\
         ConditionPathExists=!{LOCALE_GEN_MARKER}\n\
         After=local-fs.target\n\
         Before=systemd-user-sessions.service\n\
         \n\
         [Service]\n\
         Type=oneshot\n\
         StateDirectory=piimage\n\
         ExecStart=/usr/sbin/locale-gen\n\
         ExecStart=/usr/bin/touch {LOCALE_GEN_MARKER}\n\
         RemainAfterExit=yes\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n"
    )
}

/// Operations setting the time zone `zone` (e.g. `Europe/London`).
pub fn timezone_ops(zone: &str) -> Vec<FileOp> {
    vec![
        FileOp::Symlink {
            path: "/etc/localtime".to_owned(),
            target: format!("/usr/share/zoneinfo/{zone}"),
            uid: 0,
            gid: 0,
        },
        FileOp::Write {
            part: Part::Root,
            path: "/etc/timezone".to_owned(),
            data: format!("{zone}\n").into_bytes(),
            owner: FileAttrs::root(0o644),
        },
    ]
}

/// Operations setting `LANG`, enabling the locale in `/etc/locale.gen` and, when the image
/// has not generated it yet, the first-boot unit that does (see the module docs).
pub fn locale_ops(lang: &str, facts: &LocaleFacts) -> Vec<FileOp> {
    // Through Debian 13's link (`/etc/default/locale -> ../locale.conf`): replacing the link
    // would leave the file systemd reads with the image's old locale.
    let path = facts
        .config_link_target
        .clone()
        .unwrap_or_else(|| LOCALE_CONFIG.to_owned());
    let mut ops = vec![FileOp::Write {
        part: Part::Root,
        path,
        data: format!("LANG={lang}\n").into_bytes(),
        owner: FileAttrs::root(0o644),
    }];
    if is_builtin(lang) {
        return ops;
    }
    // SUPPORTED's spelling and charset; without one (a recipe not checked against the image),
    // the charset a `.UTF-8` name implies.
    let line = match facts.supported_entry(lang) {
        Some((name, charset)) => format!("{name} {charset}"),
        None => format!("{lang} UTF-8"),
    };
    ops.push(FileOp::Edit {
        part: Part::Root,
        path: LOCALE_GEN.to_owned(),
        edit: TextEdit::LocaleGenEnable { line },
    });
    if !facts.is_generated(lang) {
        ops.extend(super::units::own_unit(LOCALE_GEN_UNIT, locale_gen_unit()));
    }
    ops
}

/// Operations setting the console keyboard layout (and model, if given).
pub fn keyboard_ops(layout: &str, model: Option<&str>) -> Vec<FileOp> {
    let set = |key: &str, value: &str| FileOp::Edit {
        part: Part::Root,
        path: "/etc/default/keyboard".to_owned(),
        edit: TextEdit::SetKeyValue {
            key: key.to_owned(),
            value: format!("\"{value}\""),
        },
    };
    let mut ops = vec![set("XKBLAYOUT", layout)];
    if let Some(m) = model {
        ops.push(set("XKBMODEL", m));
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::catalog::normalize;

    fn facts(generated: &[&str]) -> LocaleFacts {
        LocaleFacts {
            config_link_target: None,
            supported: Some(vec![
                ("en_GB.UTF-8".into(), "UTF-8".into()),
                ("en_US.UTF-8".into(), "UTF-8".into()),
                ("de_DE@euro".into(), "ISO-8859-15".into()),
            ]),
            generated: generated.iter().map(|g| normalize(g)).collect(),
            locale_gen: true,
        }
    }

    fn paths(ops: &[FileOp]) -> Vec<&str> {
        ops.iter().map(FileOp::path).collect()
    }

    #[test]
    fn locale_is_written_through_debian_13s_link() {
        let mut f = facts(&["en_GB.UTF-8", "en_US.UTF-8"]);
        assert_eq!(
            paths(&locale_ops("en_US.UTF-8", &f))[0],
            "/etc/default/locale"
        );
        f.config_link_target = Some("/etc/locale.conf".into());
        let ops = locale_ops("en_US.UTF-8", &f);
        assert_eq!(paths(&ops)[0], "/etc/locale.conf");
        assert!(
            !paths(&ops).contains(&"/etc/default/locale"),
            "the link stays"
        );
    }

    #[test]
    fn locale_ops_enable_and_generate_only_when_needed() {
        let unit = format!("/etc/systemd/system/{LOCALE_GEN_UNIT}");
        let link = format!("/etc/systemd/system/multi-user.target.wants/{LOCALE_GEN_UNIT}");
        let f = facts(&["en_GB.UTF-8"]);
        // Built in: only LANG.
        assert_eq!(paths(&locale_ops("C.UTF-8", &f)), ["/etc/default/locale"]);
        // Already generated: LANG and locale.gen.
        assert_eq!(
            paths(&locale_ops("en_GB.utf8", &f)),
            ["/etc/default/locale", "/etc/locale.gen"]
        );
        // Not generated: the unit and its link too.
        let ops = locale_ops("en_US.UTF-8", &f);
        assert_eq!(
            paths(&ops),
            ["/etc/default/locale", "/etc/locale.gen", &unit, &link]
        );
        let FileOp::Edit { edit, .. } = &ops[1] else {
            panic!("{:?}", ops[1]);
        };
        assert_eq!(
            *edit,
            TextEdit::LocaleGenEnable {
                line: "en_US.UTF-8 UTF-8".into()
            }
        );
        // SUPPORTED's charset, whatever the recipe's spelling.
        let ops = locale_ops("de_DE@euro", &f);
        assert!(
            matches!(&ops[1], FileOp::Edit { edit: TextEdit::LocaleGenEnable { line }, .. } if line == "de_DE@euro ISO-8859-15"),
            "{ops:?}"
        );
        let FileOp::Write { data, .. } = &ops[2] else {
            panic!("{:?}", ops[2]);
        };
        let text = String::from_utf8(data.clone()).unwrap();
        assert!(text.contains("ExecStart=/usr/sbin/locale-gen\n"), "{text}");
        assert!(
            text.contains(&format!("ConditionPathExists=!{LOCALE_GEN_MARKER}\n")),
            "{text}"
        );
    }
}
