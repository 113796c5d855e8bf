//! `cmdline.txt`: one line of space-separated kernel parameters.
//!
//! Edits work on tokens and keep every untouched byte: token order, the separators around
//! untouched tokens, and the presence or absence of a trailing newline. Raspberry Pi OS greps
//! for `' resize'`, so tokens stay separated by spaces.

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

/// Sets `token`: a `key=value` token replaces the first token with the same key in place (and
/// drops later duplicates); a bare token is appended if absent. Returns the new text.
pub fn set(text: &str, token: &str) -> String {
    let (body, eol) = split_eol(text);
    let k = key(token);
    let spans = token_spans(body);
    let matching: Vec<(usize, usize)> = spans
        .iter()
        .copied()
        .filter(|&(s, e)| {
            let t = &body[s..e];
            if token.contains('=') {
                key(t) == k
            } else {
                t == token
            }
        })
        .collect();
    match matching.first() {
        None => {
            let sep = if body.is_empty() { "" } else { " " };
            format!("{body}{sep}{token}{eol}")
        }
        Some(&(s, e)) => {
            // Work from the end so earlier offsets stay valid: drop later duplicates of the
            // key, then replace the first occurrence in place.
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
/// token with that key. Returns the new text.
pub fn remove(text: &str, token: &str) -> String {
    let (body, eol) = split_eol(text);
    let by_key = token.strip_suffix('=');
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
                "duplicate keys collapse",
                "console=a x console=b y\n",
                "console=c",
                "console=c x y\n",
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
    fn tokens_split_on_whitespace() {
        assert_eq!(tokens("  a  b\tc\n"), ["a", "b", "c"]);
        assert!(tokens("\n").is_empty());
    }
}
