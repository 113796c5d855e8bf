//! Colon-separated account tables: `/etc/passwd`, `shadow`, `group`, `gshadow`, `subuid`,
//! `subgid` (see `passwd(5)`, `shadow(5)`, `group(5)`, `subuid(5)`).
//!
//! Rows are keyed by their first field. Edits touch only the rows they name and keep every
//! other byte, including comments, blank lines and the final newline (or its absence).

/// A parsed table that can be edited and written back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    lines: Vec<String>,
    trailing_newline: bool,
}

impl Table {
    /// Parses `text`.
    pub fn parse(text: &str) -> Self {
        let trailing_newline = text.is_empty() || text.ends_with('\n');
        let body = text.strip_suffix('\n').unwrap_or(text);
        let lines = if body.is_empty() && text.is_empty() {
            Vec::new()
        } else {
            body.split('\n').map(str::to_owned).collect()
        };
        Self {
            lines,
            trailing_newline,
        }
    }

    /// The text again.
    pub fn render(&self) -> String {
        let mut out = self.lines.join("\n");
        if self.trailing_newline && !self.lines.is_empty() {
            out.push('\n');
        }
        out
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.lines
            .iter()
            .position(|l| !l.starts_with('#') && l.split(':').next() == Some(key))
    }

    /// The fields of the row keyed `key`.
    pub fn get(&self, key: &str) -> Option<Vec<&str>> {
        self.position(key)
            .map(|i| self.lines[i].split(':').collect())
    }

    /// Keys of all rows, in order.
    pub fn keys(&self) -> Vec<&str> {
        self.lines
            .iter()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| l.split(':').next())
            .collect()
    }

    /// Replaces the row keyed by `fields[0]`, or appends it.
    pub fn upsert(&mut self, fields: &[&str]) {
        let line = fields.join(":");
        match fields.first().and_then(|k| self.position(k)) {
            Some(i) => self.lines[i] = line,
            None => self.lines.push(line),
        }
    }

    /// Removes the row keyed `key`; true if it existed.
    pub fn remove(&mut self, key: &str) -> bool {
        match self.position(key) {
            Some(i) => {
                self.lines.remove(i);
                true
            }
            None => false,
        }
    }

    /// Sets field `index` of the row keyed `key`; false if there is no such row.
    pub fn set_field(&mut self, key: &str, index: usize, value: &str) -> bool {
        let Some(i) = self.position(key) else {
            return false;
        };
        let mut fields: Vec<String> = self.lines[i].split(':').map(str::to_owned).collect();
        if fields.len() <= index {
            fields.resize(index + 1, String::new());
        }
        fields[index] = value.to_owned();
        self.lines[i] = fields.join(":");
        true
    }

    /// Adds `member` to the comma-separated list in field `index` of row `key` (the member
    /// list of `group` is field 3, of `gshadow` field 3). False if there is no such row.
    pub fn add_member(&mut self, key: &str, index: usize, member: &str) -> bool {
        let Some(fields) = self.get(key) else {
            return false;
        };
        let current = fields.get(index).copied().unwrap_or("");
        let mut members: Vec<&str> = current.split(',').filter(|m| !m.is_empty()).collect();
        if members.contains(&member) {
            return true;
        }
        members.push(member);
        let joined = members.join(",");
        self.set_field(key, index, &joined)
    }

    /// Removes `member` from the list in field `index` of row `key`; false if no such row.
    pub fn remove_member(&mut self, key: &str, index: usize, member: &str) -> bool {
        let Some(fields) = self.get(key) else {
            return false;
        };
        let current = fields.get(index).copied().unwrap_or("");
        let kept: Vec<&str> = current
            .split(',')
            .filter(|m| !m.is_empty() && *m != member)
            .collect();
        let joined = kept.join(",");
        if joined != current {
            self.set_field(key, index, &joined);
        }
        true
    }

    /// Removes `member` from the list in field `index` of every row.
    pub fn remove_member_everywhere(&mut self, index: usize, member: &str) {
        for line in &mut self.lines {
            if line.starts_with('#') {
                continue;
            }
            let mut fields: Vec<String> = line.split(':').map(str::to_owned).collect();
            if let Some(list) = fields.get_mut(index) {
                let kept: Vec<&str> = list
                    .split(',')
                    .filter(|m| !m.is_empty() && *m != member)
                    .collect();
                let joined = kept.join(",");
                if joined != *list {
                    *list = joined;
                    *line = fields.join(":");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GROUP: &str = "root:x:0:\nadm:x:4:pi\nsudo:x:27:pi\npi:x:1000:\n";

    #[test]
    fn edits_touch_only_their_rows() {
        let mut t = Table::parse(GROUP);
        assert_eq!(t.render(), GROUP);
        assert!(t.add_member("sudo", 3, "alice"));
        assert!(t.add_member("sudo", 3, "alice"));
        assert!(t.add_member("root", 3, "alice"));
        assert!(!t.add_member("nope", 3, "alice"));
        t.upsert(&["alice", "x", "1001", ""]);
        assert_eq!(
            t.render(),
            "root:x:0:alice\nadm:x:4:pi\nsudo:x:27:pi,alice\npi:x:1000:\nalice:x:1001:\n"
        );
        t.remove_member_everywhere(3, "pi");
        assert!(t.remove("pi"));
        assert_eq!(
            t.render(),
            "root:x:0:alice\nadm:x:4:\nsudo:x:27:alice\nalice:x:1001:\n"
        );
        assert_eq!(t.keys(), ["root", "adm", "sudo", "alice"]);
    }

    #[test]
    fn keeps_comments_and_missing_final_newline() {
        let text = "# comment\nroot:*:19000:0:99999:7:::\npi:!:19000:0:99999:7:::";
        let mut t = Table::parse(text);
        assert!(t.set_field("pi", 1, "$y$j9T$salt$hash"));
        assert_eq!(
            t.render(),
            "# comment\nroot:*:19000:0:99999:7:::\npi:$y$j9T$salt$hash:19000:0:99999:7:::"
        );
        assert_eq!(Table::parse("").render(), "");
        let mut e = Table::parse("");
        e.upsert(&["a", "1"]);
        assert_eq!(e.render(), "a:1\n");
    }
}
