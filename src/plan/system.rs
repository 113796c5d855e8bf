//! Time zone, locale and keyboard, as Debian's own tools leave them.
//!
//! - time zone: `/etc/localtime -> /usr/share/zoneinfo/ZONE` and `/etc/timezone`
//!   (`timedatectl`/`dpkg-reconfigure tzdata`);
//! - locale: `/etc/default/locale` (`update-locale`); the locale must be generated in the image
//!   (`/usr/lib/locale`), which piimage cannot do without running code, so C.UTF-8 and
//!   locales the image already has are what works;
//! - keyboard: `/etc/default/keyboard` (`XKBLAYOUT`, `XKBMODEL`), read by console-setup.

use crate::ops::{FileOp, Owner, Part, TextEdit};

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
            owner: Owner::root(0o644),
        },
    ]
}

/// Operations setting `LANG`.
pub fn locale_ops(lang: &str) -> Vec<FileOp> {
    vec![FileOp::Write {
        part: Part::Root,
        path: "/etc/default/locale".to_owned(),
        data: format!("LANG={lang}\n").into_bytes(),
        owner: Owner::root(0o644),
    }]
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
