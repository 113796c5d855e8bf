//! SHA-256 digests and stream adapters that hash what passes through them.
//!
//! [`Sha256Digest`] is the value type used wherever piimage names content by hash (recipes,
//! cache keys, manifests): it parses from 64 hex digits in either case and prints lowercase hex.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256Digest([u8; 32]);

impl Sha256Digest {
    /// Wraps raw digest bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw digest bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The digest of `data`.
    #[must_use]
    pub fn of(data: &[u8]) -> Self {
        Self(Sha256::digest(data).into())
    }

    /// Reads `reader` to the end and returns its digest and length in bytes.
    ///
    /// # Errors
    /// Any error of `reader`.
    pub fn of_reader(reader: impl Read) -> io::Result<(Self, u64)> {
        let mut hashing = HashingReader::new(reader);
        io::copy(&mut hashing, &mut io::sink())?;
        let len = hashing.byte_count();
        Ok((hashing.digest(), len))
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Digest({self})")
    }
}

/// Why a string is not a SHA-256 digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid sha256 {shown:?}: {reason}")]
pub struct ParseDigestError {
    /// The input, shortened if long.
    shown: String,
    reason: String,
}

impl FromStr for Sha256Digest {
    type Err = ParseDigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = |reason: String| {
            let shown = if s.chars().count() > 80 {
                format!("{}...", s.chars().take(80).collect::<String>())
            } else {
                s.to_owned()
            };
            ParseDigestError { shown, reason }
        };
        if let Some((pos, c)) = s.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
            return Err(fail(format!(
                "{c:?} at byte {pos} is not a hex digit (expected 64 hex digits)"
            )));
        }
        if s.len() != 64 {
            return Err(fail(format!("expected 64 hex digits, got {}", s.len())));
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s, &mut bytes).map_err(|e| fail(e.to_string()))?;
        Ok(Self(bytes))
    }
}

impl serde::Serialize for Sha256Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Sha256Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A reader that hashes every byte read through it.
#[derive(Debug)]
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R> HashingReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// The number of bytes read so far.
    pub fn byte_count(&self) -> u64 {
        self.bytes
    }

    /// The digest of the bytes read so far.
    pub fn digest(&self) -> Sha256Digest {
        Sha256Digest(self.hasher.clone().finalize().into())
    }

    /// The wrapped reader.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// Returns the wrapped reader and the digest of the bytes read.
    pub fn into_parts(self) -> (R, Sha256Digest) {
        (self.inner, Sha256Digest(self.hasher.finalize().into()))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += u64::try_from(n).unwrap_or(u64::MAX);
        Ok(n)
    }
}

/// A writer that hashes every byte the inner writer accepts.
#[derive(Debug)]
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// The number of bytes written so far.
    pub fn byte_count(&self) -> u64 {
        self.bytes
    }

    /// The digest of the bytes written so far.
    pub fn digest(&self) -> Sha256Digest {
        Sha256Digest(self.hasher.clone().finalize().into())
    }

    /// The wrapped writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// The wrapped writer, mutably (bytes written directly to it are not hashed).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Returns the wrapped writer and the digest of the bytes written.
    pub fn into_parts(self) -> (W, Sha256Digest) {
        (self.inner, Sha256Digest(self.hasher.finalize().into()))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += u64::try_from(n).unwrap_or(u64::MAX);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// sha256("abc"), FIPS 180-2 appendix B.1.
    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    /// sha256(""), FIPS 180-2.
    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parse_table() {
        let upper = ABC.to_ascii_uppercase();
        let too_long = format!("{ABC}0");
        let cases: &[(&str, &str, Result<&str, &str>)] = &[
            ("lowercase", ABC, Ok(ABC)),
            ("uppercase", &upper, Ok(ABC)),
            ("empty", "", Err("expected 64 hex digits, got 0")),
            ("short", &ABC[..63], Err("expected 64 hex digits, got 63")),
            ("long", &too_long, Err("expected 64 hex digits, got 65")),
            (
                "non-hex",
                &ABC.replace('b', "g"),
                Err("'g' at byte 0 is not a hex digit"),
            ),
            (
                "sha256: prefix",
                "sha256:abc",
                Err("'s' at byte 0 is not a hex digit"),
            ),
            (
                "trailing newline",
                &format!("{ABC}\n"),
                Err("'\\n' at byte 64 is not"),
            ),
            ("multibyte", "é", Err("'é' at byte 0 is not a hex digit")),
        ];
        for (name, input, want) in cases {
            let got = input.parse::<Sha256Digest>();
            match (want, got) {
                (Ok(hex), Ok(d)) => assert_eq!(d.to_string(), *hex, "case {name}"),
                (Err(msg), Err(e)) => {
                    let e = e.to_string();
                    assert!(e.starts_with("invalid sha256 "), "case {name}: {e}");
                    assert!(e.contains(msg), "case {name}: {e:?} lacks {msg:?}");
                }
                (want, got) => panic!("case {name}: want {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn long_input_is_shortened_in_errors() {
        let e = "x"
            .repeat(1000)
            .parse::<Sha256Digest>()
            .unwrap_err()
            .to_string();
        assert!(e.len() < 200, "{e}");
    }

    #[test]
    fn display_debug_bytes_roundtrip() {
        let d: Sha256Digest = ABC.parse().unwrap();
        assert_eq!(format!("{d}"), ABC);
        assert_eq!(format!("{d:?}"), format!("Sha256Digest({ABC})"));
        assert_eq!(Sha256Digest::from_bytes(*d.as_bytes()), d);
        assert_eq!(Sha256Digest::of(b"abc"), d);
        assert_eq!(Sha256Digest::of(b"").to_string(), EMPTY);
    }

    #[test]
    fn serde_as_hex_string() {
        let d: Sha256Digest = ABC.parse().unwrap();
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"{ABC}\""));
        let back: Sha256Digest =
            serde_json::from_str(&format!("\"{}\"", ABC.to_uppercase())).unwrap();
        assert_eq!(back, d);
        let err = serde_json::from_str::<Sha256Digest>("\"abc\"").unwrap_err();
        assert!(err.to_string().contains("expected 64 hex digits"), "{err}");
    }

    #[test]
    fn reader_hashes_what_is_read() {
        let data: Vec<u8> = (0..100_000u32)
            .map(|i| u8::try_from(i % 251).unwrap())
            .collect();
        let (digest, len) = Sha256Digest::of_reader(&data[..]).unwrap();
        assert_eq!(digest, Sha256Digest::of(&data));
        assert_eq!(len, 100_000);

        let mut r = HashingReader::new(&b"abcdef"[..]);
        let mut buf = [0u8; 3];
        r.read_exact(&mut buf).unwrap();
        assert_eq!(r.byte_count(), 3);
        assert_eq!(r.digest().to_string(), ABC);
        let (rest, digest) = r.into_parts();
        assert_eq!(rest, b"def");
        assert_eq!(digest.to_string(), ABC);
    }

    /// A writer that accepts at most 2 bytes per call.
    struct Dribble(Vec<u8>);
    impl Write for Dribble {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(2);
            self.0.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn writer_hashes_only_accepted_bytes() {
        let mut w = HashingWriter::new(Dribble(Vec::new()));
        assert_eq!(w.write(b"abcdef").unwrap(), 2);
        w.write_all(b"c").unwrap();
        w.flush().unwrap();
        assert_eq!(w.byte_count(), 3);
        let (inner, digest) = w.into_parts();
        assert_eq!(inner.0, b"abc");
        assert_eq!(digest.to_string(), ABC);
    }
}
