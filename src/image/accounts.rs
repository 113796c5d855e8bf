//! Users from `/etc/passwd` and `/etc/group` (see `passwd(5)`, `group(5)`).

use serde::Serialize;

/// A regular (human) user: uid 1000 ..= 59999, as Debian's `adduser` allocates them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Home directory.
    pub home: String,
    /// Login shell.
    pub shell: String,
    /// Supplementary groups, in `/etc/group` order.
    pub groups: Vec<String>,
}

/// First and last uid of regular users (Debian's `FIRST_UID`/`LAST_UID`).
pub const REGULAR_UIDS: std::ops::RangeInclusive<u32> = 1000..=59999;

/// Regular users from passwd and group text. Malformed lines are skipped.
pub fn regular_users(passwd: &str, group: &str) -> Vec<User> {
    let groups: Vec<(String, Vec<String>)> = group
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 4).then(|| {
                let members = f[3]
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(str::to_owned)
                    .collect();
                (f[0].to_owned(), members)
            })
        })
        .collect();
    passwd
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 7 {
                return None;
            }
            let uid: u32 = f[2].parse().ok()?;
            let gid: u32 = f[3].parse().ok()?;
            REGULAR_UIDS.contains(&uid).then(|| User {
                name: f[0].to_owned(),
                uid,
                gid,
                home: f[5].to_owned(),
                shell: f[6].to_owned(),
                groups: groups
                    .iter()
                    .filter(|(_, m)| m.iter().any(|m| m == f[0]))
                    .map(|(g, _)| g.clone())
                    .collect(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_regular_users_and_groups() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n\
                      pi:x:1000:1000:,,,:/home/pi:/bin/bash\nbroken line\nbob:x:1001:1001::/home/bob:/bin/sh\n";
        let group = "root:x:0:\nadm:x:4:pi\nsudo:x:27:pi,bob\npi:x:1000:\n";
        let users = regular_users(passwd, group);
        assert_eq!(users.len(), 2);
        assert_eq!(users[0].name, "pi");
        assert_eq!(users[0].groups, ["adm", "sudo"]);
        assert_eq!(users[1].groups, ["sudo"]);
        assert_eq!(users[1].shell, "/bin/sh");
    }
}
