//! YAML scalars for the documents the planner writes by hand (cloud-init, netplan, inventory).

/// `s` as a YAML double-quoted scalar: `\`, `"` and control characters escaped.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `s` plain when it is a safe bare word (letters, digits, `-_.`), else quoted.
pub(crate) fn key(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        s.to_owned()
    } else {
        quote(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars() {
        assert_eq!(quote(r#"a "b" \c"#), r#""a \"b\" \\c""#);
        assert_eq!(quote("x\ny\u{1}"), "\"x\\ny\\u0001\"");
        assert_eq!(key("worker-01"), "worker-01");
        assert_eq!(key("a b"), "\"a b\"");
        assert_eq!(key(""), "\"\"");
    }
}
