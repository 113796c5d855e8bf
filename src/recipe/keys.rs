//! SSH authorized keys: every line is parsed as an OpenSSH public key (with `authorized_keys`
//! options allowed) before it goes anywhere near an image.

use std::str::FromStr;

use ssh_key::authorized_keys::Entry;

/// Checks one `authorized_keys` line and returns it trimmed.
pub fn authorized_key(line: &str) -> Result<String, String> {
    let line = line.trim();
    if line.starts_with("-----BEGIN") {
        return Err(
            "this is a private key: give the public key (the .pub file) instead, and keep the \
             private key out of the recipe"
                .into(),
        );
    }
    if line.starts_with("---- BEGIN SSH2 PUBLIC KEY") {
        return Err(
            "this is an RFC 4716 (SSH2) key: convert it with `ssh-keygen -i -f FILE`".into(),
        );
    }
    match Entry::from_str(line) {
        Ok(_) => Ok(line.to_owned()),
        Err(e) => {
            let shown: String = line.chars().take(40).collect();
            let more = if line.chars().count() > 40 { "..." } else { "" };
            Err(format!(
                "not an OpenSSH public key ({e}): {shown:?}{more}; expected a line like \
                 `ssh-ed25519 AAAA... comment`"
            ))
        }
    }
}

/// `e` without the quoted line [`authorized_key`] includes.
fn unquoted(e: &str) -> String {
    match e.split_once("): \"") {
        Some((reason, _)) => format!(
            "{reason}); the line is not shown (a key file must hold public keys only; is this \
             file a secret?)"
        ),
        None => e.to_owned(),
    }
}

/// The key lines of an `authorized_keys`-style text (blank lines and `#` comments skipped),
/// each with its 1-based line number, or the first bad line's number and reason.
pub fn authorized_keys_text(text: &str) -> Result<Vec<String>, (usize, String)> {
    let mut keys = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        // A file given as a key file may be a secret named by mistake: never quote it.
        keys.push(authorized_key(t).map_err(|e| (i + 1, unquoted(&e)))?);
    }
    Ok(keys)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const ED25519: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMIf4tgMRn7TdebiWUVfGCTjQREZU8dfIMrLms6oXDeo test@ed25519";
    pub(crate) const RSA: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQCTQhgIeMTndRwSc1uune3G+whRFA+aIU4aUuElkS6DpdJ0NJXcNq7FZ4I36/XdULywri2evBslMNZKYlv8Erfj73VIYxT4Gr9Lr10RLU3/vUuPPDgf/tmOFYjy6PGI5sd8XOSe0fMG7SRCN7XNPSL59vlSh7FoD/jb/ahDF6FYBWxaxJ9fYVANVxkZePAGqnBHQs7O1QhmzEwEAvQOlpFS2TJFNuS/zTwkB+b16iJOor+ijatuwtzFWKTB1T9P+ZtMtkSHJQfAsrUrVTMGSC/A2E1Ya/QU1MT1Mtkv5mqnsddsxGSNg8zrf7VPqpuqVXpgSZ1qaINj5jUaZvO7GAt1aMXYWgK0/sXB/jG6s68wcpjllPFX9KKdWPXWBYWYp8ojForGbsJGbM4kugBQiLxIWHG5J216qFuG6tQSDUm3DEHGQaMIAgxMJtqJlkvFGBLBWJfZuOtjhVM1FdnlR/eKZDEciMCM+Sr3j2zZCq7Mw+4dBrBqFzxE0vynHhXy9a0= test@rsa";
    const ECDSA: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBAbjWzvt+kwBLdc0G4mx/w4SHi2Rha3oom6HW40zNNBnL+MLfIshnG/nQv5YEAOjArXYk8S6R9O8pPi94fuNpW0= test@ecdsa";

    #[test]
    fn real_keys_parse() {
        for k in [ED25519, RSA, ECDSA] {
            assert_eq!(authorized_key(k).unwrap(), k);
        }
        let with_opts = format!("no-port-forwarding,from=\"10.0.0.0/24\" {ED25519}");
        authorized_key(&with_opts).unwrap();
        let no_comment = ED25519.rsplit_once(' ').unwrap().0;
        authorized_key(no_comment).unwrap();
    }

    #[test]
    fn bad_keys_are_refused_with_a_reason() {
        let truncated = &ED25519[..40];
        for bad in [
            "ssh-ed25519",
            truncated,
            "ssh-ed2559 AAAAC3NzaC1lZDI1NTE5AAAAIMIf4tgMRn7TdebiWUVfGCTjQREZU8dfIMrLms6oXDeo x",
            "hunter2",
        ] {
            let e = authorized_key(bad).unwrap_err();
            assert!(e.contains("not an OpenSSH public key"), "{bad}: {e}");
        }
        assert!(
            authorized_key("-----BEGIN OPENSSH PRIVATE KEY-----")
                .unwrap_err()
                .contains("private key")
        );
        let text = format!("# team\n{ED25519}\n\n{RSA}\nbroken line here\n");
        assert_eq!(authorized_keys_text(&text).unwrap_err().0, 5);
        assert_eq!(
            authorized_keys_text(&format!("{ED25519}\n")).unwrap().len(),
            1
        );
    }
}
