//! Syntax of the small values a recipe holds: hostnames, login names, unit names, sizes,
//! modes, paths. Each check returns a message that says what is expected.

/// Accounts every Debian or Ubuntu base image already has (or reserves); a recipe user with
/// one of these names would clash with the system.
pub const RESERVED_USERS: &[&str] = &[
    "root",
    "daemon",
    "bin",
    "sys",
    "sync",
    "games",
    "man",
    "lp",
    "mail",
    "news",
    "uucp",
    "proxy",
    "www-data",
    "backup",
    "list",
    "irc",
    "nobody",
    "_apt",
    "messagebus",
    "sshd",
    "systemd-network",
    "systemd-timesync",
    "systemd-resolve",
    "polkitd",
    "syslog",
];

/// A hostname label (RFC 1123): 1 to 63 of `a-z`, `0-9` and `-`, not starting or ending
/// with `-`.
pub fn hostname_label(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("empty name".into());
    }
    if s.len() > 63 {
        return Err(format!("{s:?} is longer than 63 characters"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        let hint = if c.is_ascii_uppercase() {
            " (use lowercase)"
        } else {
            ""
        };
        return Err(format!(
            "{s:?} is not a valid hostname: {c:?} is not allowed{hint}; use a-z, 0-9 and -"
        ));
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err(format!(
            "{s:?} is not a valid hostname: it starts or ends with -"
        ));
    }
    Ok(())
}

/// A DNS name: labels separated by dots, at most 253 characters.
pub fn domain(s: &str) -> Result<(), String> {
    if s.len() > 253 {
        return Err(format!("{s:?} is longer than 253 characters"));
    }
    for label in s.split('.') {
        hostname_label(label).map_err(|e| format!("{s:?} is not a valid domain name: {e}"))?;
    }
    Ok(())
}

/// A login or group name: `^[a-z_][a-z0-9_-]*$`, at most 32 characters.
pub fn login_name(s: &str) -> Result<(), String> {
    let ok_first = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let ok_rest = s
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !ok_first || !ok_rest {
        return Err(format!(
            "{s:?} is not a valid name: use a lowercase letter or _ first, then a-z, 0-9, _ or -"
        ));
    }
    if s.len() > 32 {
        return Err(format!("{s:?} is longer than 32 characters"));
    }
    Ok(())
}

/// A role: `^[a-z][a-z0-9_]*$` (it becomes an Ansible group name, where `-` is not allowed).
pub fn role(s: &str) -> Result<(), String> {
    let ok = s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && s.len() <= 63;
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a valid role: use a lowercase letter first, then a-z, 0-9 or _ \
             (roles become Ansible group names)"
        ))
    }
}

/// A template variable name: `^[A-Za-z_][A-Za-z0-9_]*$`.
pub fn var_name(s: &str) -> Result<(), String> {
    let ok = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a valid variable name: templates can only use letters, digits and _"
        ))
    }
}

/// A systemd unit name; `.service` is added when there is no unit suffix.
pub fn unit_name(s: &str) -> Result<String, String> {
    const SUFFIXES: &[&str] = &[
        ".service",
        ".socket",
        ".timer",
        ".target",
        ".path",
        ".mount",
        ".automount",
        ".swap",
    ];
    let ok = !s.is_empty()
        && s.len() <= 255
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || ":_.@-\\".contains(c));
    if !ok {
        return Err(format!(
            "{s:?} is not a valid systemd unit name (letters, digits and :_.@- only)"
        ));
    }
    if SUFFIXES.iter().any(|x| s.ends_with(x)) {
        Ok(s.to_owned())
    } else if s.contains('.') {
        Err(format!(
            "{s:?}: unknown unit type; use one of {}",
            SUFFIXES.join(", ")
        ))
    } else {
        Ok(format!("{s}.service"))
    }
}

/// A network interface name (at most 15 characters, no `/` or whitespace).
pub fn interface_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 15
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a valid interface name (at most 15 of a-z, A-Z, 0-9, _ . -)"
        ))
    }
}

/// A size such as `32G`, `512M`, `8GiB` or a number of bytes. Units are powers of 1024.
pub fn size(s: &str) -> Result<u64, String> {
    let bad =
        || format!("{s:?} is not a size: write a number with an optional K, M, G or T (e.g. 32G)");
    let t = s.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits_end);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => return Err(bad()),
    };
    let bytes = n
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{s:?} is too large"))?;
    if bytes == 0 {
        return Err(format!("{s:?}: the size must not be zero"));
    }
    Ok(bytes)
}

/// Octal permission bits, as `chmod` takes them: `0644`, `600`, `2775`.
pub fn mode(s: &str) -> Result<u32, String> {
    let t = s.strip_prefix("0o").unwrap_or(s);
    if t.is_empty() || t.len() > 5 || !t.chars().all(|c| ('0'..='7').contains(&c)) {
        return Err(format!(
            "{s:?} is not an octal mode: write it as chmod does, e.g. \"0644\" or \"0755\""
        ));
    }
    let m = u32::from_str_radix(t, 8).map_err(|e| e.to_string())?;
    if m > 0o7777 {
        return Err(format!("{s:?} is more than 07777"));
    }
    Ok(m)
}

/// An absolute path inside the image: starts with `/`, no `.` or `..` component, no
/// control characters.
pub fn image_path(s: &str) -> Result<(), String> {
    if !s.starts_with('/') {
        return Err(format!(
            "{s:?} is not an absolute path (it must start with /)"
        ));
    }
    if s.split('/').any(|c| c == ".." || c == ".") {
        return Err(format!("{s:?} must not contain . or .. components"));
    }
    if s.chars().any(char::is_control) {
        return Err(format!("{s:?} contains a control character"));
    }
    Ok(())
}

/// A time zone name as in the tz database (`Europe/London`, `UTC`).
pub fn timezone(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && !s.starts_with('/')
        && s.split('/').all(|part| {
            !part.is_empty()
                && part != ".."
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_+-".contains(c))
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a time zone name; use one from the tz database, e.g. Europe/London or UTC"
        ))
    }
}

/// A locale (`en_GB.UTF-8`, `C.UTF-8`).
pub fn locale(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-@".contains(c))
        && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    if ok {
        Ok(())
    } else {
        Err(format!("{s:?} is not a locale name, e.g. en_GB.UTF-8"))
    }
}

/// An XKB keyboard layout or model (`gb`, `us`, `pc105`).
pub fn xkb_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_,-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!("{s:?} is not an XKB name (e.g. gb, us, pc105)"))
    }
}

/// A `config.txt` conditional section name, without brackets: `all`, `pi4`, `cm5`,
/// `board-type=0x17`, `HDMI:0`, `gpio4=1`, `tryboot`, `EDID=…`.
pub fn config_section(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || ":=+_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a config.txt section: write the name without brackets, e.g. pi4, all, cm5"
        ))
    }
}

/// One `cmdline.txt` token: non-empty, no whitespace.
pub fn cmdline_token(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("empty cmdline token".into());
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{s:?} contains whitespace: cmdline.txt is one line of tokens; write each token as \
             its own list item"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "worker-01", "x1", &"a".repeat(63)] {
            hostname_label(ok).unwrap();
        }
        for bad in ["", "-a", "a-", "Worker", "a_b", "a.b", &"a".repeat(64)] {
            assert!(hostname_label(bad).is_err(), "{bad}");
        }
        assert!(hostname_label("Worker").unwrap_err().contains("lowercase"));
        domain("lab.example.org").unwrap();
        assert!(domain("lab..org").is_err());
        for ok in ["alice", "_x", "a-b_c1"] {
            login_name(ok).unwrap();
        }
        for bad in ["Alice", "1a", "a b", "", &"a".repeat(33)] {
            assert!(login_name(bad).is_err(), "{bad}");
        }
        role("k3s_server").unwrap();
        assert!(role("k3s-server").is_err());
        var_name("k3s_url").unwrap();
        assert!(var_name("k3s-url").is_err());
        assert_eq!(unit_name("nftables").unwrap(), "nftables.service");
        assert_eq!(unit_name("fstrim.timer").unwrap(), "fstrim.timer");
        assert!(unit_name("a b").is_err() && unit_name("x.conf").is_err());
        interface_name("eth0").unwrap();
        assert!(interface_name("a/b").is_err());
    }

    #[test]
    fn sizes_and_modes() {
        assert_eq!(size("32G").unwrap(), 32 << 30);
        assert_eq!(size("8GiB").unwrap(), 8 << 30);
        assert_eq!(size("512m").unwrap(), 512 << 20);
        assert_eq!(size("4096").unwrap(), 4096);
        for bad in ["", "G", "1.5G", "3X", "0", "99999999999T"] {
            assert!(size(bad).is_err(), "{bad}");
        }
        assert_eq!(mode("0644").unwrap(), 0o644);
        assert_eq!(mode("600").unwrap(), 0o600);
        assert_eq!(mode("2775").unwrap(), 0o2775);
        for bad in ["", "0888", "rw", "17777", "-1"] {
            assert!(mode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths_and_misc() {
        image_path("/etc/motd").unwrap();
        for bad in ["etc", "/a/../b", "/a/./b"] {
            assert!(image_path(bad).is_err(), "{bad}");
        }
        timezone("Europe/London").unwrap();
        timezone("UTC").unwrap();
        assert!(timezone("../etc").is_err() && timezone("Europe London").is_err());
        locale("en_GB.UTF-8").unwrap();
        assert!(locale("en GB").is_err());
        config_section("pi4").unwrap();
        config_section("board-type=0x17").unwrap();
        assert!(config_section("[pi4]").is_err() && config_section("pi 4").is_err());
        cmdline_token("cgroup_enable=memory").unwrap();
        assert!(cmdline_token("a b").is_err());
    }
}
