//! Secrets out of `plan`'s diffs: password hashes, Wi-Fi PSKs, passwords, tokens and private
//! keys are replaced by a marker before the texts are compared.
//!
//! A marker names what it hides and carries the first 8 hex digits of the SHA-256 of the
//! value (`<password hash, redacted, sha256 1a2b3c4d>`), so a diff still shows *that* a secret
//! changed (the marker changes) without showing the secret; 32 bits of a hash of a salted hash
//! or of a key tell nothing usable about it. What counts as a secret:
//!
//! - in `shadow`/`gshadow`-style files (`/etc/shadow`, `/etc/gshadow`), the second field unless
//!   it is empty or a lock marker without a hash (`*`, `!`, `!!`, `!*`, `x`);
//! - every `-----BEGIN … PRIVATE KEY-----` block (host keys, also inside cloud-init YAML);
//! - the value of a `key=value` / `key: value` line whose key is one of [`SECRET_KEYS`]
//!   (NetworkManager `psk=`, netplan `password:`, wpa_supplicant `psk="…"`, cloud-init
//!   `passwd:`/`hashed_passwd:`/`plain_text_passwd:`, `token`, ...), in any file;
//! - with [`redact_known`], every occurrence of a value of the recipe's `secrets:` (a join
//!   token alone in a file has no key to recognise it by).

use sha2::{Digest, Sha256};

/// Keys whose values are secrets, compared case-insensitively.
pub const SECRET_KEYS: &[&str] = &[
    "psk",
    "password",
    "passwd",
    "hashed_passwd",
    "plain_text_passwd",
    "passphrase",
    "wpa-psk",
    "secret",
    "token",
    "k3s_token",
];

fn marker(what: &str, value: &str) -> String {
    let h = Sha256::digest(value.as_bytes());
    format!("<{what}, redacted, sha256 {}>", hex::encode(&h[..4]))
}

/// [`redact`], after replacing every occurrence of each `(name, value)` of `known` (the
/// recipe's `secrets:`) with a marker `<secret NAME, redacted, sha256 …>`.
pub fn redact_known(path: &str, text: &str, known: &[(String, String)]) -> String {
    let mut text = text.to_owned();
    // Longer values first, so a value inside another is not cut out of it first.
    let mut known: Vec<&(String, String)> = known.iter().filter(|(_, v)| !v.is_empty()).collect();
    known.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
    for (name, value) in known {
        if text.contains(value.as_str()) {
            text = text.replace(value.as_str(), &marker(&format!("secret {name}"), value));
        }
    }
    redact(path, &text)
}

/// `text` (the content of `path` in the image) with its secrets replaced by markers.
pub fn redact(path: &str, text: &str) -> String {
    let shadow = path.ends_with("/shadow") || path.ends_with("/gshadow");
    let mut out = String::with_capacity(text.len());
    let mut key_block: Option<String> = None;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let end = &line[body.len()..];
        if let Some(block) = key_block.as_mut() {
            block.push_str(line);
            if body.contains("-----END") && body.contains("PRIVATE KEY-----") {
                let indent = &body[..body.len() - body.trim_start().len()];
                out.push_str(indent);
                out.push_str(&marker("private key", block));
                out.push_str(end);
                key_block = None;
            }
            continue;
        }
        if body.contains("-----BEGIN") && body.contains("PRIVATE KEY-----") {
            key_block = Some(line.to_owned());
            continue;
        }
        if shadow {
            out.push_str(&redact_shadow(body));
        } else {
            out.push_str(&redact_key_value(body));
        }
        out.push_str(end);
    }
    if let Some(block) = key_block {
        // An unterminated block is still a key.
        out.push_str(&marker("private key", &block));
        out.push('\n');
    }
    out
}

fn redact_shadow(line: &str) -> String {
    let mut fields: Vec<&str> = line.split(':').collect();
    if fields.len() < 2 {
        return line.to_owned();
    }
    let hash = fields[1];
    let locked = hash.starts_with('!');
    let rest = hash.trim_start_matches('!');
    if matches!(rest, "" | "*" | "!" | "x") {
        return line.to_owned();
    }
    let shown = format!(
        "{}{}",
        if locked { "!" } else { "" },
        marker("password hash", rest)
    );
    fields[1] = &shown;
    fields.join(":")
}

fn redact_key_value(line: &str) -> String {
    let trimmed = line.trim_start();
    let lead = trimmed.strip_prefix("- ").unwrap_or(trimmed);
    let Some(sep) = lead.find(['=', ':']) else {
        return line.to_owned();
    };
    let key = lead[..sep].trim().trim_matches('"');
    if !SECRET_KEYS.iter().any(|k| k.eq_ignore_ascii_case(key)) {
        return line.to_owned();
    }
    let value = lead[sep + 1..].trim();
    let is_marker = value.starts_with('<') && value.contains(", redacted, sha256 ");
    if value.is_empty() || value == "|" || value == ">" || is_marker {
        return line.to_owned();
    }
    let prefix_len = line.len() - lead.len() + sep + 1;
    let gap = if lead.as_bytes()[sep] == b':' {
        " "
    } else {
        ""
    };
    format!("{}{gap}{}", &line[..prefix_len], marker(key, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue15_secrets_become_markers_and_the_rest_stays() {
        let shadow = "root:*:19000:0:99999:7:::\npi:!:19000::::::\nalice:$y$j9T$salt$hash:19000:0:99999:7:::\nbob:!$6$s$h:1::::::\n";
        let r = redact("/etc/shadow", shadow);
        assert!(
            r.starts_with("root:*:19000:0:99999:7:::\npi:!:19000::::::\n"),
            "{r}"
        );
        assert!(
            !r.contains("$y$j9T$salt$hash") && !r.contains("$6$s$h"),
            "{r}"
        );
        assert!(r.contains("alice:<password hash, redacted, sha256 "), "{r}");
        assert!(r.contains("bob:!<password hash, redacted, sha256 "), "{r}");
        assert!(r.contains(":19000:0:99999:7:::\n"), "{r}");

        let cases = [
            (
                "/etc/NetworkManager/system-connections/w.nmconnection",
                "[wifi-security]\nkey-mgmt=wpa-psk\npsk=correct horse battery\n",
                "correct horse battery",
                "psk=<psk, redacted",
            ),
            (
                "/boot/network-config",
                "      wlan0:\n        access-points:\n          \"home\":\n            password: \"s3cr3t-psk\"\n",
                "s3cr3t-psk",
                "            password: <password, redacted",
            ),
            (
                "/etc/wpa_supplicant/wpa_supplicant.conf",
                "network={\n  psk=\"hunter22\"\n}\n",
                "hunter22",
                "  psk=<psk, redacted",
            ),
            (
                "/boot/user-data",
                "users:\n  - name: a\n    passwd: $6$x$y\n",
                "$6$x$y",
                "    passwd: <passwd, redacted",
            ),
            (
                "/etc/ssh/ssh_host_ed25519_key",
                "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
                "b3BlbnNzaC1rZXktdjEAAAAA",
                "<private key, redacted, sha256 ",
            ),
            (
                "/boot/user-data",
                "ssh_keys:\n  ed25519_private: |\n    -----BEGIN OPENSSH PRIVATE KEY-----\n    AAAAkeydata\n    -----END OPENSSH PRIVATE KEY-----\n  ed25519_public: ssh-ed25519 AAAA\n",
                "AAAAkeydata",
                "    <private key, redacted",
            ),
        ];
        for (path, text, secret, want) in cases {
            let r = redact(path, text);
            assert!(!r.contains(secret), "{path}: {r}");
            assert!(r.contains(want), "{path}: {r}");
        }
        // Not secrets: settings named like them, public keys, ordinary lines.
        let sshd = "PasswordAuthentication no\npassword_authentication: true\nssh_pwauth: false\nssh-ed25519 AAAA me\n";
        assert_eq!(redact("/etc/ssh/sshd_config", sshd), sshd);
        // The same secret gives the same marker, another one a different marker.
        assert_eq!(redact("/x", "psk=a\n"), redact("/x", "psk=a\n"));
        assert_ne!(redact("/x", "psk=a\n"), redact("/x", "psk=b\n"));
    }

    #[test]
    fn issue16_known_secret_values_become_markers_anywhere() {
        let token = "0f".repeat(32);
        let known = vec![("k3s_token".to_owned(), token.clone())];
        let text = format!("{token}\nserver: https://10.0.0.1:6443\nK3S_TOKEN={token} sh\n");
        let r = redact_known("/etc/rancher/k3s/token", &text, &known);
        assert!(!r.contains(&token), "{r}");
        assert_eq!(
            r.matches("<secret k3s_token, redacted, sha256 ").count(),
            2,
            "{r}"
        );
        assert!(r.contains("server: https://10.0.0.1:6443\n"), "{r}");
        // Nothing known: the same as redact.
        assert_eq!(redact_known("/x", "psk=a\n", &[]), redact("/x", "psk=a\n"));
    }
}
