//! Content digests (`sha256:<hex>`) and readers that verify them while data streams through.

use std::fmt;
use std::io::{self, Read};
use std::str::FromStr;

use sha2::{Digest as _, Sha256, Sha512};

use crate::error::ImageError;

/// A content digest: algorithm and lowercase hex. Only sha256 and sha512 are accepted, the two
/// the OCI image spec registers.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }
    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

impl Digest {
    /// The sha256 digest of `data`.
    pub fn sha256_of(data: &[u8]) -> Digest {
        Digest {
            algorithm: Algorithm::Sha256,
            hex: hex::encode(Sha256::digest(data)),
        }
    }

    /// The digest of `data` with this digest's algorithm.
    pub fn compute_like(&self, data: &[u8]) -> Digest {
        let mut h = Hasher::new(self.algorithm);
        h.update(data);
        h.finish()
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The hex part, without the algorithm.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// `sha256:0123456789ab` — the first 12 hex digits, for tables.
    pub fn short(&self) -> String {
        format!("{}:{}", self.algorithm.name(), &self.hex[..12])
    }

    /// Checks that `data` has this digest.
    pub fn verify(&self, input: &str, data: &[u8]) -> Result<(), ImageError> {
        let actual = self.compute_like(data);
        if &actual == self {
            Ok(())
        } else {
            Err(ImageError::DigestMismatch {
                input: input.to_string(),
                expected: self.to_string(),
                actual: actual.to_string(),
            })
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

impl FromStr for Digest {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (alg, hex) = s
            .split_once(':')
            .ok_or_else(|| format!("digest {s:?} has no algorithm prefix"))?;
        let algorithm = match alg {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            other => return Err(format!("digest {s:?}: unsupported algorithm {other:?}")),
        };
        if hex.len() != algorithm.hex_len()
            || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(format!(
                "digest {s:?}: expected {} lowercase hex digits",
                algorithm.hex_len()
            ));
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_string(),
        })
    }
}

impl TryFrom<String> for Digest {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.to_string()
    }
}

/// An incremental hash for one algorithm.
pub(crate) enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl Hasher {
    pub(crate) fn new(algorithm: Algorithm) -> Hasher {
        match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }
    pub(crate) fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }
    pub(crate) fn finish(self) -> Digest {
        let (algorithm, hex) = match self {
            Hasher::Sha256(h) => (Algorithm::Sha256, hex::encode(h.finalize())),
            Hasher::Sha512(h) => (Algorithm::Sha512, hex::encode(h.finalize())),
        };
        Digest { algorithm, hex }
    }
}

/// A reader that hashes what passes through and, at end of input, fails with
/// [`ImageError::DigestMismatch`] unless the data had the expected digest. Without an expected
/// digest it only computes one (sha256), available from [`DigestingReader::digest`] at the end.
pub(crate) struct DigestingReader<R> {
    inner: R,
    hasher: Option<Hasher>,
    expected: Option<Digest>,
    result: Option<Digest>,
    input: String,
    bytes: u64,
}

impl<R: Read> DigestingReader<R> {
    pub(crate) fn new(inner: R, expected: Option<Digest>, input: impl Into<String>) -> Self {
        let algorithm = expected.as_ref().map_or(Algorithm::Sha256, |d| d.algorithm);
        DigestingReader {
            inner,
            hasher: Some(Hasher::new(algorithm)),
            expected,
            result: None,
            input: input.into(),
            bytes: 0,
        }
    }

    /// The digest of everything read, once the end was reached.
    pub(crate) fn digest(&self) -> Option<&Digest> {
        self.result.as_ref()
    }

    /// Bytes read so far.
    pub(crate) fn byte_count(&self) -> u64 {
        self.bytes
    }
}

impl<R: Read> Read for DigestingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.bytes += n as u64;
            if let Some(h) = self.hasher.as_mut() {
                h.update(&buf[..n]);
            }
            return Ok(n);
        }
        if let Some(h) = self.hasher.take() {
            let actual = h.finish();
            if let Some(expected) = &self.expected
                && *expected != actual
            {
                return Err(ImageError::DigestMismatch {
                    input: self.input.clone(),
                    expected: expected.to_string(),
                    actual: actual.to_string(),
                }
                .into_io());
            }
            self.result = Some(actual);
        }
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let d: Digest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            .parse()
            .unwrap();
        assert_eq!(d, Digest::sha256_of(b""));
        assert_eq!(d.short(), "sha256:e3b0c44298fc");
        assert!("sha256:abc".parse::<Digest>().is_err());
        assert!(
            "md5:d41d8cd98f00b204e9800998ecf8427e"
                .parse::<Digest>()
                .is_err()
        );
        assert!(
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
                .parse::<Digest>()
                .is_err()
        );
        assert!("nocolon".parse::<Digest>().is_err());
    }

    #[test]
    fn reader_verifies_at_end() {
        let good = Digest::sha256_of(b"hello");
        let mut r = DigestingReader::new(&b"hello"[..], Some(good.clone()), "blob");
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(r.digest(), Some(&good));
        assert_eq!(r.byte_count(), 5);

        let mut r = DigestingReader::new(&b"hellO"[..], Some(good), "blob x");
        let err = r.read_to_end(&mut Vec::new()).unwrap_err();
        let err = ImageError::from_io("blob x", err);
        assert!(
            matches!(&err, ImageError::DigestMismatch { input, .. } if input == "blob x"),
            "{err}"
        );
    }
}
