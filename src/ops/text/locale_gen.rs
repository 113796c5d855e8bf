//! `/etc/locale.gen`: the locales `locale-gen` builds, one `NAME CHARSET` line each
//! (`en_GB.UTF-8 UTF-8`), `#` starting a comment. Debian ships every line of
//! `/usr/share/i18n/SUPPORTED` commented out (`# en_US.UTF-8 UTF-8`); choosing a locale with
//! `dpkg-reconfigure locales` uncomments its line. [`enable`] does the same, and appends the
//! line when the file has no commented copy of it; every other byte is kept.

/// The fields of a line with any leading `#` and blanks removed.
fn fields(line: &str) -> Vec<&str> {
    line.trim_start_matches(|c: char| c == '#' || c.is_whitespace())
        .split_whitespace()
        .collect()
}

/// Enables `line` (`NAME CHARSET`): unchanged when an active line already names `NAME`;
/// otherwise the first commented line with the same fields is uncommented in place, or
/// `line` is appended. Returns the new text.
pub fn enable(text: &str, line: &str) -> String {
    let want = fields(line);
    let Some(name) = want.first() else {
        return text.to_owned();
    };
    let mut commented = None;
    let mut offset = 0;
    for l in text.split_inclusive('\n') {
        let body = l.trim_end_matches(['\n', '\r']);
        let trimmed = body.trim_start();
        if trimmed.starts_with('#') {
            if commented.is_none() && fields(trimmed) == want {
                commented = Some((offset, offset + body.len()));
            }
        } else if trimmed.split_whitespace().next() == Some(name) {
            return text.to_owned();
        }
        offset += l.len();
    }
    match commented {
        Some((s, e)) => {
            let mut out = text.to_owned();
            out.replace_range(s..e, line);
            out
        }
        None => {
            let mut out = text.to_owned();
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(line);
            out.push('\n');
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN: &str = "# This file lists locales that you wish to have built.\n\n# en_GB ISO-8859-1\n# en_GB.UTF-8 UTF-8\n# en_US.UTF-8 UTF-8\n";

    #[test]
    fn enable_uncomments_or_appends() {
        let cases = [
            (
                "uncomment",
                DEBIAN,
                "en_US.UTF-8 UTF-8",
                "# This file lists locales that you wish to have built.\n\n# en_GB ISO-8859-1\n# en_GB.UTF-8 UTF-8\nen_US.UTF-8 UTF-8\n",
            ),
            (
                "other charset stays commented",
                DEBIAN,
                "en_GB.UTF-8 UTF-8",
                "# This file lists locales that you wish to have built.\n\n# en_GB ISO-8859-1\nen_GB.UTF-8 UTF-8\n# en_US.UTF-8 UTF-8\n",
            ),
            (
                "already active",
                "en_GB.UTF-8 UTF-8\n",
                "en_GB.UTF-8 UTF-8",
                "en_GB.UTF-8 UTF-8\n",
            ),
            (
                "append",
                "# x\n",
                "de_DE.UTF-8 UTF-8",
                "# x\nde_DE.UTF-8 UTF-8\n",
            ),
            ("append after no newline", "a b", "c d", "a b\nc d\n"),
            ("empty file", "", "c d", "c d\n"),
            (
                "no space after #",
                "#de_DE.UTF-8 UTF-8\r\n",
                "de_DE.UTF-8 UTF-8",
                "de_DE.UTF-8 UTF-8\r\n",
            ),
            (
                "a comment mentioning it",
                "# see de_DE.UTF-8 UTF-8 below\n",
                "de_DE.UTF-8 UTF-8",
                "# see de_DE.UTF-8 UTF-8 below\nde_DE.UTF-8 UTF-8\n",
            ),
        ];
        for (name, text, line, want) in cases {
            assert_eq!(enable(text, line), want, "{name}");
        }
    }
}
