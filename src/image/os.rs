//! The operating system of an image, from `/etc/os-release` (and `/etc/rpi-issue`).
//!
//! Format: `os-release(5)`: `KEY=value` lines, values optionally quoted, `#` comments.

use serde::Serialize;

/// Which family of official image this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OsFamily {
    /// Raspberry Pi OS (Debian with Raspberry Pi's packages; `/etc/rpi-issue` present).
    Raspios,
    /// Plain Debian.
    Debian,
    /// Ubuntu.
    Ubuntu,
    /// Anything else with an os-release file.
    Other,
}

impl std::fmt::Display for OsFamily {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Raspios => "Raspberry Pi OS",
            Self::Debian => "Debian",
            Self::Ubuntu => "Ubuntu",
            Self::Other => "other",
        })
    }
}

/// What `/etc/os-release` says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OsInfo {
    /// The family, decided from `ID`, `ID_LIKE` and `/etc/rpi-issue`.
    pub family: OsFamily,
    /// `ID`.
    pub id: String,
    /// `VERSION_ID`, if any.
    pub version_id: Option<String>,
    /// `VERSION_CODENAME`, if any.
    pub codename: Option<String>,
    /// `PRETTY_NAME`, if any.
    pub pretty_name: Option<String>,
    /// First line of `/etc/rpi-issue` on Raspberry Pi OS.
    pub rpi_issue: Option<String>,
}

/// Parses os-release text into `(key, value)` pairs, unquoting values.
pub fn parse_os_release(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), unquote(v.trim())))
        .collect()
}

fn unquote(v: &str) -> String {
    let inner = v
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .or_else(|| v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
        .unwrap_or(v);
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl OsInfo {
    /// Builds the OS description from os-release text and the optional rpi-issue text.
    pub fn from_files(os_release: &str, rpi_issue: Option<&str>) -> Self {
        let kv = parse_os_release(os_release);
        let get = |k: &str| {
            kv.iter()
                .rev()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty())
        };
        let id = get("ID").unwrap_or_else(|| "linux".to_owned());
        let like = get("ID_LIKE").unwrap_or_default();
        let rpi_issue = rpi_issue
            .and_then(|t| t.lines().map(str::trim).find(|l| !l.is_empty()))
            .map(str::to_owned);
        let family = match id.as_str() {
            "raspbian" => OsFamily::Raspios,
            "debian" if rpi_issue.is_some() => OsFamily::Raspios,
            "debian" => OsFamily::Debian,
            "ubuntu" => OsFamily::Ubuntu,
            _ if like.split_whitespace().any(|l| l == "ubuntu") => OsFamily::Ubuntu,
            _ if rpi_issue.is_some() => OsFamily::Raspios,
            _ if like.split_whitespace().any(|l| l == "debian") => OsFamily::Debian,
            _ => OsFamily::Other,
        };
        Self {
            family,
            id,
            version_id: get("VERSION_ID"),
            codename: get("VERSION_CODENAME").or_else(|| get("UBUNTU_CODENAME")),
            pretty_name: get("PRETTY_NAME"),
            rpi_issue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOOKWORM: &str = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n\
        VERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n";
    const NOBLE: &str = "PRETTY_NAME=\"Ubuntu 24.04.3 LTS\"\nNAME=\"Ubuntu\"\nVERSION_ID=\"24.04\"\n\
        VERSION_CODENAME=noble\nID=ubuntu\nID_LIKE=debian\nUBUNTU_CODENAME=noble\n";

    #[test]
    fn families() {
        let cases = [
            (
                "raspios",
                BOOKWORM,
                Some("Raspberry Pi reference 2024-11-19\n"),
                OsFamily::Raspios,
            ),
            ("debian", BOOKWORM, None, OsFamily::Debian),
            ("ubuntu", NOBLE, None, OsFamily::Ubuntu),
            ("raspbian id", "ID=raspbian\n", None, OsFamily::Raspios),
            ("other", "ID=fedora\n", None, OsFamily::Other),
            (
                "like debian",
                "ID=kali\nID_LIKE=debian\n",
                None,
                OsFamily::Debian,
            ),
        ];
        for (name, text, issue, want) in cases {
            assert_eq!(OsInfo::from_files(text, issue).family, want, "{name}");
        }
    }

    #[test]
    fn fields_are_unquoted() {
        let os = OsInfo::from_files(NOBLE, None);
        assert_eq!(os.version_id.as_deref(), Some("24.04"));
        assert_eq!(os.codename.as_deref(), Some("noble"));
        assert_eq!(os.pretty_name.as_deref(), Some("Ubuntu 24.04.3 LTS"));
        assert_eq!(unquote(r#""a \"b\"""#), r#"a "b""#);
        assert_eq!(unquote("'x y'"), "x y");
    }
}
