//! `config.txt`: firmware settings, one per line, grouped by conditional `[section]` filters.
//!
//! Edits add or remove whole lines and keep every other byte as it was. A line is added at the
//! end of the last `[name]` section (the one whose settings win), or in a new `[name]` section
//! appended to the file.

/// Splits text into lines that keep their endings.
fn lines(text: &str) -> Vec<&str> {
    text.split_inclusive('\n').collect()
}

fn header(line: &str) -> Option<&str> {
    line.trim()
        .strip_prefix('[')
        .and_then(|l| l.strip_suffix(']'))
}

/// The line ending the file uses (`\r\n` if its first line has one).
fn eol(text: &str) -> &'static str {
    if text
        .split_inclusive('\n')
        .next()
        .is_some_and(|l| l.ends_with("\r\n"))
    {
        "\r\n"
    } else {
        "\n"
    }
}

/// Ensures the active line `line` is in section `section` (`None`: before the first header, or
/// in the last `[all]` section when the file has headers). A line already present in any
/// section of that name counts as present, so the edit is idempotent.
pub fn ensure_line(text: &str, section: Option<&str>, line: &str) -> String {
    let nl = eol(text);
    let ls = lines(text);
    // Index ranges of each section's body: (name, start, end).
    let mut sections: Vec<(Option<&str>, usize, usize)> = vec![(None, 0, ls.len())];
    for (i, l) in ls.iter().enumerate() {
        if let Some(name) = header(l) {
            if let Some(last) = sections.last_mut() {
                last.2 = i;
            }
            sections.push((Some(name), i + 1, ls.len()));
        }
    }
    let has_headers = sections.len() > 1;
    let want = match section {
        Some(s) => Some(s),
        None if has_headers => Some("all"),
        None => None,
    };
    let already = sections
        .iter()
        .filter(|(n, _, _)| *n == want)
        .any(|&(_, start, end)| ls[start..end].iter().any(|l| l.trim() == line));
    if already {
        return text.to_owned();
    }
    let target = sections.iter().rev().find(|(n, _, _)| *n == want).copied();
    let mut out = String::with_capacity(text.len() + line.len() + 16);
    match target {
        Some((_, start, end)) => {
            // Insert after the last non-blank line of the section.
            let mut at = end;
            while at > start && ls[at - 1].trim().is_empty() {
                at -= 1;
            }
            for l in &ls[..at] {
                out.push_str(l);
            }
            if at > 0 && !ls[at - 1].ends_with('\n') {
                out.push_str(nl);
            }
            out.push_str(line);
            out.push_str(nl);
            for l in &ls[at..] {
                out.push_str(l);
            }
        }
        None => {
            out.push_str(text);
            if !text.is_empty() && !text.ends_with('\n') {
                out.push_str(nl);
            }
            if let Some(name) = want {
                if !text.is_empty() {
                    out.push_str(nl);
                }
                out.push('[');
                out.push_str(name);
                out.push(']');
                out.push_str(nl);
            }
            out.push_str(line);
            out.push_str(nl);
        }
    }
    out
}

/// Removes every active line equal to `line` (after trimming), in any section.
pub fn remove_line(text: &str, line: &str) -> String {
    lines(text)
        .into_iter()
        .filter(|l| l.trim() != line)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOOKWORM: &str = "# For more options see config.txt(5)\ndtparam=audio=on\n\n[cm4]\notg_mode=1\n\n[all]\narm_64bit=1\n\n[pi4]\narm_boost=1\n\n[all]\ndtoverlay=vc4-kms-v3d\n";

    #[test]
    fn ensure_line_cases() {
        let cases: &[(&str, &str, Option<&str>, &str, &str)] = &[
            (
                "into the last [all]",
                BOOKWORM,
                None,
                "dtparam=i2c_arm=on",
                "# For more options see config.txt(5)\ndtparam=audio=on\n\n[cm4]\notg_mode=1\n\n[all]\narm_64bit=1\n\n[pi4]\narm_boost=1\n\n[all]\ndtoverlay=vc4-kms-v3d\ndtparam=i2c_arm=on\n",
            ),
            (
                "into an existing section",
                BOOKWORM,
                Some("pi4"),
                "over_voltage=2",
                "# For more options see config.txt(5)\ndtparam=audio=on\n\n[cm4]\notg_mode=1\n\n[all]\narm_64bit=1\n\n[pi4]\narm_boost=1\nover_voltage=2\n\n[all]\ndtoverlay=vc4-kms-v3d\n",
            ),
            (
                "a new section",
                BOOKWORM,
                Some("pi5"),
                "dtparam=pciex1",
                "# For more options see config.txt(5)\ndtparam=audio=on\n\n[cm4]\notg_mode=1\n\n[all]\narm_64bit=1\n\n[pi4]\narm_boost=1\n\n[all]\ndtoverlay=vc4-kms-v3d\n\n[pi5]\ndtparam=pciex1\n",
            ),
            (
                "already there",
                BOOKWORM,
                Some("all"),
                "arm_64bit=1",
                BOOKWORM,
            ),
            ("no headers", "a=1\n", None, "b=2", "a=1\nb=2\n"),
            ("no final newline", "a=1", None, "b=2", "a=1\nb=2\n"),
            ("empty file", "", Some("all"), "x=1", "[all]\nx=1\n"),
            ("crlf", "a=1\r\n", None, "b=2", "a=1\r\nb=2\r\n"),
        ];
        for (name, text, section, line, want) in cases {
            assert_eq!(ensure_line(text, *section, line), *want, "{name}");
            let again = ensure_line(want, *section, line);
            assert_eq!(again, *want, "{name}: not idempotent");
        }
    }

    #[test]
    fn remove_line_keeps_the_rest() {
        let got = remove_line(BOOKWORM, "arm_boost=1");
        assert_eq!(got, BOOKWORM.replace("arm_boost=1\n", ""));
        assert_eq!(remove_line(BOOKWORM, "nope"), BOOKWORM);
    }
}
