//! `cmdline.txt`: one line of space-separated kernel parameters.
//!
//! Edits work on tokens and keep every untouched byte: token order, the separators around
//! untouched tokens, and the presence or absence of a trailing newline. Raspberry Pi OS greps
//! for `' resize'`, so tokens stay separated by spaces.
//!
//! # Parameters that take one value, and the others
//!
//! The kernel hands every `key=value` token to whoever registered `key`, in order, and many
//! keys are meant to be given more than once: `console=` (one per console, the last one is
//! `/dev/console`), `cgroup_enable=`/`cgroup_disable=` (one controller each), `ip=`,
//! `hugepagesz=`/`hugepages=` (in pairs), `systemd.wants=`, `systemd.mask=`, `rd.driver.*`.
//! Replacing those by key loses settings: k3s's `cgroup_enable=cpuset cgroup_memory=1
//! cgroup_enable=memory` would keep only the last `cgroup_enable`. So [`set`] replaces in
//! place only for the keys of [`SINGLE_VALUE_KEYS`]: parameters whose documentation (the
//! kernel's `admin-guide/kernel-parameters.txt`, systemd's `kernel-command-line(7)`, and the
//! Raspberry Pi kernel's own `cgroup_memory=`) describes one value, where a second token is
//! either ignored or silently overrides the first. Every other `key=value` token is appended
//! unless that exact token is already there, as bare tokens (`quiet`, `rootwait`) always are.
//! The list is deliberately short and conservative: a key missing from it only means an
//! old value stays next to the new one, which the recipe can remove with `cmdline.remove:
//! [key=]`; a repeatable key wrongly listed would lose a value.

/// The key of a token: the part before `=`, or the whole token.
fn key(token: &str) -> &str {
    token.split_once('=').map_or(token, |(k, _)| k)
}

/// Splits into (body, line ending).
fn split_eol(text: &str) -> (&str, &str) {
    let body = text.trim_end_matches(['\n', '\r']);
    (body, &text[body.len()..])
}

/// Byte ranges of the tokens in `body`.
fn token_spans(body: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = None;
    for (i, c) in body.char_indices() {
        match (c.is_whitespace(), start) {
            (false, None) => start = Some(i),
            (true, Some(s)) => {
                spans.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        spans.push((s, body.len()));
    }
    spans
}

/// The tokens of a command line.
pub fn tokens(text: &str) -> Vec<&str> {
    let (body, _) = split_eol(text);
    token_spans(body)
        .into_iter()
        .map(|(s, e)| &body[s..e])
        .collect()
}

/// Keys that take one value: a new `key=value` replaces the old one in place (see the module
/// docs). Compared exactly; the kernel treats `-` and `_` alike only in module parameters,
/// none of which are listed.
pub const SINGLE_VALUE_KEYS: &[&str] = &[
    // Root filesystem and init (kernel-parameters.txt).
    "root",
    "rootfstype",
    "rootflags",
    "rootdelay",
    "rootwait",
    "init",
    "rdinit",
    "resume",
    "nfsroot",
    // Kernel behaviour with one setting.
    "loglevel",
    "panic",
    "maxcpus",
    "nr_cpus",
    "cma",
    "coherent_pool",
    "consoleblank",
    "elevator",
    "ipv6.disable",
    "net.ifnames",
    "biosdevname",
    "cfg80211.ieee80211_regdom",
    "vt.global_cursor_default",
    "8250.nr_uarts",
    "dwc_otg.lpm_enable",
    "smsc95xx.macaddr",
    "apparmor",
    "selinux",
    "security",
    "lsm",
    "audit",
    // Raspberry Pi kernels: memory cgroup on or off (one switch).
    "cgroup_memory",
    // systemd-fsck and systemd (kernel-command-line(7)).
    "fsck.mode",
    "fsck.repair",
    "systemd.unit",
    "systemd.log_level",
    "systemd.log_target",
    "systemd.show_status",
    "systemd.firstboot",
    "systemd.machine_id",
];

/// True when `key` takes one value (see [`SINGLE_VALUE_KEYS`]).
pub fn single_value(key: &str) -> bool {
    SINGLE_VALUE_KEYS.contains(&key)
}

/// Sets `token`: a `key=value` token whose key takes one value ([`SINGLE_VALUE_KEYS`])
/// replaces the first token with the same key in place (and drops later duplicates); any other
/// token is appended unless that exact token is already there. Returns the new text.
pub fn set(text: &str, token: &str) -> String {
    let (body, eol) = split_eol(text);
    let k = key(token);
    let by_key = token.contains('=') && single_value(k);
    let spans = token_spans(body);
    let matching: Vec<(usize, usize)> = spans
        .iter()
        .copied()
        .filter(|&(s, e)| {
            let t = &body[s..e];
            if by_key { key(t) == k } else { t == token }
        })
        .collect();
    match matching.first() {
        None => {
            let sep = if body.is_empty() { "" } else { " " };
            format!("{body}{sep}{token}{eol}")
        }
        Some(&(s, e)) => {
            // Work from the end so earlier offsets stay valid: drop later duplicates of the
            // key (or of the exact token), then replace the first occurrence in place.
            let mut out = body.to_owned();
            for &(ds, de) in matching[1..].iter().rev() {
                out = remove_span(&out, ds, de);
            }
            out.replace_range(s..e, token);
            out.push_str(eol);
            out
        }
    }
}

/// Removes the token at `[s, e)` and one separating space.
fn remove_span(body: &str, s: usize, e: usize) -> String {
    let before = &body[..s];
    let after = &body[e..];
    if let Some(b) = before.strip_suffix(' ') {
        format!("{b}{after}")
    } else if let Some(a) = after.strip_prefix(' ') {
        format!("{before}{a}")
    } else {
        format!("{before}{after}")
    }
}

/// Removes every token equal to `token`, or, for a pattern ending in `=` (`init=`), every
/// token with that key. A pattern with another `=` before its last (`a=b=`) names no key (a
/// key ends at the first `=`), so it removes that exact token. Returns the new text.
pub fn remove(text: &str, token: &str) -> String {
    let (body, eol) = split_eol(text);
    let by_key = token.strip_suffix('=').filter(|k| !k.contains('='));
    let mut out = body.to_owned();
    for (s, e) in token_spans(body).into_iter().rev() {
        let t = &body[s..e];
        let hit = match by_key {
            Some(k) => key(t) == k,
            None => t == token,
        };
        if hit {
            out = remove_span(&out, s, e);
        }
    }
    out.push_str(eol);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRIXIE: &str = "console=serial0,115200 console=tty1 root=PARTUUID=1234abcd-02 rootfstype=ext4 fsck.repair=yes rootwait resize\n";

    #[test]
    fn a_pattern_with_two_equals_removes_that_token() {
        // Found by the fuzz target (tests/integration/fuzz.rs): `a=b=` was taken as the key
        // `a=b`, which no token has, so nothing was removed.
        assert_eq!(remove("quiet a=b= a=c\n", "a=b="), "quiet a=c\n");
        assert_eq!(remove("== x\n", "=="), "x\n");
        assert_eq!(remove("a=1 a=2 b\n", "a="), "b\n");
    }

    #[test]
    fn set_and_remove_tokens() {
        let cases: &[(&str, &str, &str, &str)] = &[
            (
                "append bare",
                TRIXIE,
                "cgroup_memory=1",
                "console=serial0,115200 console=tty1 root=PARTUUID=1234abcd-02 rootfstype=ext4 fsck.repair=yes rootwait resize cgroup_memory=1\n",
            ),
            (
                "replace in place",
                TRIXIE,
                "root=PARTUUID=99999999-02",
                "console=serial0,115200 console=tty1 root=PARTUUID=99999999-02 rootfstype=ext4 fsck.repair=yes rootwait resize\n",
            ),
            ("present bare", TRIXIE, "rootwait", TRIXIE),
            ("no newline", "a b", "c", "a b c"),
            ("empty", "", "quiet", "quiet"),
            ("crlf kept", "a\r\n", "b", "a b\r\n"),
            (
                "single-value duplicates collapse",
                "root=a x root=b y\n",
                "root=c",
                "root=c x y\n",
            ),
            (
                "repeatable key appends",
                TRIXIE,
                "console=ttyAMA0,115200",
                "console=serial0,115200 console=tty1 root=PARTUUID=1234abcd-02 rootfstype=ext4 fsck.repair=yes rootwait resize console=ttyAMA0,115200\n",
            ),
            (
                "repeatable exact token kept once",
                TRIXIE,
                "console=tty1",
                TRIXIE,
            ),
            (
                "cgroup_enable appends",
                "a cgroup_enable=cpuset\n",
                "cgroup_enable=memory",
                "a cgroup_enable=cpuset cgroup_enable=memory\n",
            ),
            (
                "cgroup_memory replaces",
                "a cgroup_memory=0 b\n",
                "cgroup_memory=1",
                "a cgroup_memory=1 b\n",
            ),
            (
                "fsck.repair replaces",
                TRIXIE,
                "fsck.repair=no",
                "console=serial0,115200 console=tty1 root=PARTUUID=1234abcd-02 rootfstype=ext4 fsck.repair=no rootwait resize\n",
            ),
            (
                "init replaces",
                "quiet init=/usr/lib/raspberrypi-sys-mods/firstboot\n",
                "init=/sbin/init",
                "quiet init=/sbin/init\n",
            ),
            (
                "a key is not a prefix",
                "rootwait rootfstype=ext4\n",
                "root=/dev/sda2",
                "rootwait rootfstype=ext4 root=/dev/sda2\n",
            ),
            (
                "module parameter appends",
                "a usbcore.quirks=x\n",
                "usbcore.quirks=y",
                "a usbcore.quirks=x usbcore.quirks=y\n",
            ),
        ];
        for (name, text, token, want) in cases {
            assert_eq!(set(text, token), *want, "{name}");
        }
        let removals: &[(&str, &str, &str, &str)] = &[
            (
                "resize",
                TRIXIE,
                "resize",
                "console=serial0,115200 console=tty1 root=PARTUUID=1234abcd-02 rootfstype=ext4 fsck.repair=yes rootwait\n",
            ),
            (
                "by key",
                "quiet init=/usr/lib/raspberrypi-sys-mods/firstboot splash\n",
                "init=",
                "quiet splash\n",
            ),
            ("first", "quiet splash", "quiet", "splash"),
            ("absent", TRIXIE, "nope", TRIXIE),
            ("all copies", "a x a x a", "a", "x x"),
        ];
        for (name, text, token, want) in removals {
            assert_eq!(remove(text, token), *want, "{name}");
        }
    }

    #[test]
    fn issue9_k3s_cgroup_line_keeps_both_controllers() {
        // The common k3s line, in both orders: every controller survives.
        let base = "console=serial0,115200 console=tty1 root=PARTUUID=8a4c1f27-02 rootfstype=ext4 fsck.repair=yes rootwait resize\n";
        for order in [
            [
                "cgroup_enable=cpuset",
                "cgroup_memory=1",
                "cgroup_enable=memory",
            ],
            [
                "cgroup_enable=memory",
                "cgroup_memory=1",
                "cgroup_enable=cpuset",
            ],
        ] {
            let mut text = base.to_owned();
            for t in order {
                text = set(&text, t);
            }
            let toks = tokens(&text);
            for t in order {
                assert_eq!(toks.iter().filter(|x| **x == t).count(), 1, "{t} in {text}");
            }
            assert_eq!(toks.len(), 10, "{text}");
            // Applying the same line again changes nothing.
            let mut again = text.clone();
            for t in order {
                again = set(&again, t);
            }
            assert_eq!(again, text);
        }
    }

    #[test]
    fn tokens_split_on_whitespace() {
        assert_eq!(tokens("  a  b\tc\n"), ["a", "b", "c"]);
        assert!(tokens("\n").is_empty());
    }
}
