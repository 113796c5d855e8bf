//! Reading a host file whole, up to a limit that fits its role.
//!
//! Recipes, secrets, key files and templates are small; reading one that is not (`/dev/zero`
//! given as a password file, a recipe that `extends:` a disk image) must stop at the limit
//! instead of filling memory. Special files are allowed (a pipe such as `/dev/stdin` or
//! `<(pass show wifi)` is a reasonable secret source): the read is cut at `limit + 1` bytes and
//! more than `limit` is an error, [`io::ErrorKind::FileTooLarge`], whose message names the
//! limit (never the content).

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// The limit for a recipe file (each file of an `extends` chain): 4 MiB.
pub const RECIPE_LIMIT: u64 = 4 << 20;
/// The limit for a secret file (password, PSK, seed): 64 KiB; only its first line is used.
pub const SECRET_LIMIT: u64 = 64 << 10;
/// The limit for an `authorized_keys`-style key file: 1 MiB (thousands of keys).
pub const KEY_FILE_LIMIT: u64 = 1 << 20;
/// The limit for a template source: 16 MiB.
pub const TEMPLATE_LIMIT: u64 = 16 << 20;

/// Reads `path` whole, refusing more than `limit` bytes.
pub fn read(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let file = File::open(path)?;
    let mut out = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut out)?;
    if out.len() as u64 > limit {
        return Err(too_large(limit));
    }
    Ok(out)
}

/// Reads `path` whole as UTF-8 text, refusing more than `limit` bytes.
pub fn read_to_string(path: &Path, limit: u64) -> io::Result<String> {
    String::from_utf8(read(path, limit)?).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        )
    })
}

fn too_large(limit: u64) -> io::Error {
    let shown = if limit >= 1 << 20 {
        format!("{} MiB", limit >> 20)
    } else {
        format!("{} KiB", limit >> 10)
    };
    io::Error::new(
        io::ErrorKind::FileTooLarge,
        format!("larger than the {shown} piimage reads of such a file"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_hold_for_files_and_devices() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, vec![b'a'; 100]).unwrap();
        assert_eq!(read(&p, 100).unwrap().len(), 100);
        let e = read(&p, 99).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::FileTooLarge);
        // issue15: /dev/zero never ends; the read stops at the limit.
        let e = read(Path::new("/dev/zero"), SECRET_LIMIT).unwrap_err();
        assert_eq!(
            e.to_string(),
            "larger than the 64 KiB piimage reads of such a file"
        );
        let e = read_to_string(Path::new("/dev/zero"), RECIPE_LIMIT).unwrap_err();
        assert_eq!(
            e.to_string(),
            "larger than the 4 MiB piimage reads of such a file"
        );
        std::fs::write(&p, [0xff, 0xfe]).unwrap();
        assert_eq!(
            read_to_string(&p, 10).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }
}
