//! The hash algorithms TUF metadata records: `sha256`, `sha512`, `blake2b-256`.
//!
//! Names follow securesystemslib: `blake2b-256` is BLAKE2b with a 32-byte
//! digest; plain `blake2b` is the 64-byte digest and is also understood.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;

use blake2::digest::consts::U32;
use blake2::{Blake2b, Blake2b512};
use sha2::{Digest, Sha256, Sha512};

use crate::error::Error;

/// A hash algorithm that tufa can compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum HashAlgorithm {
    Sha256,
    Sha512,
    Blake2b256,
    Blake2b512,
}

impl HashAlgorithm {
    /// The name used as a key in TUF `hashes` objects.
    pub fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Sha512 => "sha512",
            HashAlgorithm::Blake2b256 => "blake2b-256",
            HashAlgorithm::Blake2b512 => "blake2b",
        }
    }

    /// Parses a `hashes` key; unknown names are an error the caller decides on.
    pub fn from_name(name: &str) -> Result<Self, Error> {
        Ok(match name {
            "sha256" => HashAlgorithm::Sha256,
            "sha512" => HashAlgorithm::Sha512,
            "blake2b-256" => HashAlgorithm::Blake2b256,
            "blake2b" | "blake2b-512" => HashAlgorithm::Blake2b512,
            other => return Err(Error::UnsupportedHashAlgorithm(other.to_string())),
        })
    }

    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            HashAlgorithm::Sha256 | HashAlgorithm::Blake2b256 => 32,
            HashAlgorithm::Sha512 | HashAlgorithm::Blake2b512 => 64,
        }
    }

    /// A fresh incremental hasher.
    pub fn hasher(self) -> Hasher {
        match self {
            HashAlgorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            HashAlgorithm::Sha512 => Hasher::Sha512(Sha512::new()),
            HashAlgorithm::Blake2b256 => Hasher::Blake2b256(Blake2b::<U32>::new()),
            HashAlgorithm::Blake2b512 => Hasher::Blake2b512(Blake2b512::new()),
        }
    }

    /// The digest of `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        let mut h = self.hasher();
        h.update(data);
        h.finalize()
    }
}

impl fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An incremental hasher for one algorithm.
#[derive(Clone)]
#[non_exhaustive]
pub enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
    Blake2b256(Blake2b<U32>),
    Blake2b512(Blake2b512),
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Hasher")
    }
}

impl Hasher {
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
            Hasher::Blake2b256(h) => h.update(data),
            Hasher::Blake2b512(h) => h.update(data),
        }
    }

    pub fn finalize(self) -> Vec<u8> {
        match self {
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
            Hasher::Blake2b256(h) => h.finalize().to_vec(),
            Hasher::Blake2b512(h) => h.finalize().to_vec(),
        }
    }
}

/// Hashes one stream with several algorithms at once and counts its length.
#[derive(Debug, Clone)]
pub struct MultiHasher {
    hashers: Vec<(HashAlgorithm, Hasher)>,
    length: u64,
}

impl MultiHasher {
    pub fn new(algorithms: &[HashAlgorithm]) -> Self {
        MultiHasher {
            hashers: algorithms.iter().map(|&a| (a, a.hasher())).collect(),
            length: 0,
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        self.length += data.len() as u64;
        for (_, h) in &mut self.hashers {
            h.update(data);
        }
    }

    /// Length so far.
    pub fn length(&self) -> u64 {
        self.length
    }

    /// The length and `{name: hex}` digests, as TUF's `hashes` object holds them.
    pub fn finish(self) -> (u64, BTreeMap<String, String>) {
        let hashes = self
            .hashers
            .into_iter()
            .map(|(a, h)| (a.name().to_string(), hex::encode(h.finalize())))
            .collect();
        (self.length, hashes)
    }
}

/// Streams `reader` to its end, returning its length and hex digests.
///
/// Reads in 64 KiB chunks so a file of any size costs constant memory.
pub fn hash_reader<R: Read>(
    mut reader: R,
    algorithms: &[HashAlgorithm],
) -> Result<(u64, BTreeMap<String, String>), Error> {
    let mut hasher = MultiHasher::new(algorithms);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(Error::Io {
                    what: "target data".into(),
                    source,
                });
            }
        };
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finish())
}

/// Checks `data` against a `hashes` object: every listed algorithm that is
/// known must match, at least one must be known, and unknown names fail
/// (an attacker could otherwise list only an algorithm we skip).
pub fn verify_hashes(
    what: &str,
    data: &[u8],
    hashes: &BTreeMap<String, String>,
) -> Result<(), Error> {
    if hashes.is_empty() {
        return Err(Error::malformed(what, "no hashes listed"));
    }
    for (name, expected) in hashes {
        let algorithm = HashAlgorithm::from_name(name)?;
        let found = hex::encode(algorithm.digest(data));
        if !found.eq_ignore_ascii_case(expected) {
            return Err(Error::HashMismatch {
                what: what.to_string(),
                algorithm: name.clone(),
                expected: expected.clone(),
                found,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        assert_eq!(
            hex::encode(HashAlgorithm::Sha256.digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex::encode(HashAlgorithm::Blake2b256.digest(b"abc")),
            "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319"
        );
    }

    #[test]
    fn streamed_equals_one_shot() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let algs = [
            HashAlgorithm::Sha256,
            HashAlgorithm::Blake2b256,
            HashAlgorithm::Sha512,
        ];
        let (len, hashes) = hash_reader(&data[..], &algs).unwrap();
        assert_eq!(len, 200_000);
        for a in algs {
            assert_eq!(hashes[a.name()], hex::encode(a.digest(&data)));
        }
        verify_hashes("t", &data, &hashes).unwrap();
    }

    #[test]
    fn mismatch_and_unknown_algorithm_fail() {
        let mut hashes = BTreeMap::new();
        hashes.insert("sha256".to_string(), "00".repeat(32));
        assert!(matches!(
            verify_hashes("t", b"x", &hashes),
            Err(Error::HashMismatch { .. })
        ));
        let mut unknown = BTreeMap::new();
        unknown.insert("md5".to_string(), "00".to_string());
        assert!(matches!(
            verify_hashes("t", b"x", &unknown),
            Err(Error::UnsupportedHashAlgorithm(_))
        ));
    }
}
