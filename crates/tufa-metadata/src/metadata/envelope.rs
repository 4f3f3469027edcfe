//! The signed envelope `{"signed": ..., "signatures": [...]}`: reading it,
//! verifying a threshold of signatures, and signing.
//!
//! Verification runs over the canonical form of the *parsed JSON*, before the
//! document is turned into typed roles: a forged document is refused before
//! anything deeper reads it, and fields this code does not know stay signed.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::{Role, Root, Targets};
use crate::canonical::{to_canonical_bytes, to_canonical_bytes_sized, to_json_bytes};
use crate::error::Error;
use crate::key::{Key, Signature};
use crate::signer::Signer;

/// A parsed but not yet typed metadata document, with its canonical signed bytes.
#[derive(Debug, Clone)]
pub struct RawMetadata {
    signed: Value,
    signatures: Vec<Signature>,
    unrecognized: Map<String, Value>,
    signed_bytes: Vec<u8>,
}

impl RawMetadata {
    /// Parses a metadata file. `name` (the role) labels errors. Refuses
    /// duplicate keyids in `signatures`, as python-tuf does.
    pub fn from_slice(name: &str, bytes: &[u8]) -> Result<RawMetadata, Error> {
        let value = crate::json::value_from_slice(bytes).map_err(|e| Error::malformed(name, e))?;
        RawMetadata::from_value_sized(name, value, bytes.len())
    }

    /// As [`RawMetadata::from_slice`], from an already parsed document.
    pub fn from_value(name: &str, value: Value) -> Result<RawMetadata, Error> {
        RawMetadata::from_value_sized(name, value, 256)
    }

    /// `size_hint`: about how long the canonical signed bytes will be.
    fn from_value_sized(name: &str, value: Value, size_hint: usize) -> Result<RawMetadata, Error> {
        let Value::Object(mut doc) = value else {
            return Err(Error::malformed(name, "metadata is not a JSON object"));
        };
        let signed = match doc.remove("signed") {
            Some(v @ Value::Object(_)) => v,
            Some(_) => return Err(Error::malformed(name, "\"signed\" is not an object")),
            None => return Err(Error::malformed(name, "missing \"signed\"")),
        };
        let signatures: Vec<Signature> = match doc.remove("signatures") {
            Some(v) => serde_json::from_value(v)
                .map_err(|e| Error::malformed(name, format!("signatures: {e}")))?,
            None => return Err(Error::malformed(name, "missing \"signatures\"")),
        };
        let mut seen = BTreeSet::new();
        for sig in &signatures {
            if !seen.insert(sig.keyid.as_str()) {
                return Err(Error::DuplicateSignature {
                    role: name.to_string(),
                    keyid: sig.keyid.clone(),
                });
            }
        }
        let signed_bytes = to_canonical_bytes_sized(&signed, size_hint)?;
        Ok(RawMetadata {
            signed,
            signatures,
            unrecognized: doc,
            signed_bytes,
        })
    }

    /// The canonical bytes the signatures are over.
    pub fn signed_bytes(&self) -> &[u8] {
        &self.signed_bytes
    }

    pub fn signatures(&self) -> &[Signature] {
        &self.signatures
    }

    /// The `_type` field, if it is a string.
    pub fn role_type(&self) -> Option<&str> {
        self.signed.get("_type").and_then(Value::as_str)
    }

    /// The `version` field, if it is an unsigned integer.
    pub fn version(&self) -> Option<u64> {
        self.signed.get("version").and_then(Value::as_u64)
    }

    /// Turns the document into a typed role and checks its invariants.
    pub fn into_metadata<T: Role>(self, name: &str) -> Result<Metadata<T>, Error> {
        if let Some(found) = self.role_type()
            && found != T::TYPE
        {
            return Err(Error::WrongType {
                expected: T::TYPE.to_string(),
                found: found.to_string(),
            });
        }
        let signed: T =
            serde_json::from_value(self.signed).map_err(|e| Error::malformed(name, e))?;
        signed.validate(name)?;
        Ok(Metadata {
            signed,
            signatures: self.signatures,
            unrecognized: self.unrecognized,
        })
    }
}

/// The outcome of a threshold check: which authorised keys signed validly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub role: String,
    pub threshold: u64,
    /// Authorised keyids with a valid signature, each counted once.
    pub signed: Vec<String>,
    /// Authorised keyids without a valid signature.
    pub unsigned: Vec<String>,
}

impl Verification {
    pub fn is_satisfied(&self) -> bool {
        self.signed.len() as u64 >= self.threshold
    }

    /// `Ok` when the threshold is met, else [`Error::ThresholdNotMet`].
    pub fn into_result(self) -> Result<Self, Error> {
        if self.is_satisfied() {
            Ok(self)
        } else {
            Err(Error::ThresholdNotMet {
                role: self.role,
                found: self.signed.len(),
                threshold: self.threshold,
            })
        }
    }
}

/// Counts valid signatures over `signed_bytes` by the role's authorised keys.
///
/// Each authorised keyid counts at most once; signatures by other keys are
/// ignored; a key that cannot be parsed counts as not signed.
pub fn check_signatures(
    role: &str,
    keyids: &[String],
    threshold: u64,
    keys: &BTreeMap<String, Key>,
    signed_bytes: &[u8],
    signatures: &[Signature],
) -> Verification {
    let mut signed = Vec::new();
    let mut unsigned = Vec::new();
    let mut counted = BTreeSet::new();
    for keyid in keyids {
        if !counted.insert(keyid.as_str()) {
            continue;
        }
        let valid = keys.get(keyid).is_some_and(|key| {
            let Some(sig) = signatures.iter().find(|s| &s.keyid == keyid) else {
                return false;
            };
            let (Ok(raw_sig), Ok(verifier)) = (hex::decode(&sig.sig), key.verifier(keyid)) else {
                return false;
            };
            verifier.verify(signed_bytes, &raw_sig)
        });
        if valid {
            signed.push(keyid.clone());
        } else {
            unsigned.push(keyid.clone());
        }
    }
    Verification {
        role: role.to_string(),
        threshold,
        signed,
        unsigned,
    }
}

impl Root {
    /// Verifies `raw` as top-level role `role` against this root's keys and threshold.
    pub fn verify_role(&self, role: &str, raw: &RawMetadata) -> Result<Verification, Error> {
        let keys = self.role(role)?;
        check_signatures(
            role,
            &keys.keyids,
            keys.threshold,
            &self.keys,
            raw.signed_bytes(),
            raw.signatures(),
        )
        .into_result()
    }
}

impl Targets {
    /// Verifies `raw` as delegated role `role` against this role's delegation to it.
    pub fn verify_delegate(
        &self,
        delegator: &str,
        role: &str,
        raw: &RawMetadata,
    ) -> Result<Verification, Error> {
        let unknown = || Error::UnknownDelegation {
            delegator: delegator.to_string(),
            role: role.to_string(),
        };
        let delegations = self.delegations.as_ref().ok_or_else(unknown)?;
        let (keyids, threshold) = if let Some(roles) = &delegations.roles {
            let r = roles.iter().find(|r| r.name == role).ok_or_else(unknown)?;
            (&r.keyids, r.threshold)
        } else if let Some(succinct) = &delegations.succinct_roles {
            if !succinct.is_delegated_role(role) {
                return Err(unknown());
            }
            (&succinct.keyids, succinct.threshold)
        } else {
            return Err(unknown());
        };
        check_signatures(
            role,
            keyids,
            threshold,
            &delegations.keys,
            raw.signed_bytes(),
            raw.signatures(),
        )
        .into_result()
    }
}

/// A metadata document with a typed `signed` part.
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata<T> {
    pub signed: T,
    pub signatures: Vec<Signature>,
    /// Envelope fields other than `signed` and `signatures`.
    pub unrecognized: Map<String, Value>,
}

impl<T: Role> Metadata<T> {
    /// An unsigned document.
    pub fn new(signed: T) -> Self {
        Metadata {
            signed,
            signatures: Vec::new(),
            unrecognized: Map::new(),
        }
    }

    /// Reads a document without verifying any signature (for tools and
    /// tests; clients verify through [`RawMetadata`] first).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        RawMetadata::from_slice(T::TYPE, bytes)?.into_metadata(T::TYPE)
    }

    /// The canonical bytes of `signed`, which signatures cover.
    pub fn signed_bytes(&self) -> Result<Vec<u8>, Error> {
        let value =
            serde_json::to_value(&self.signed).map_err(|e| Error::Serialize(e.to_string()))?;
        to_canonical_bytes(&value)
    }

    /// Signs with `signer`, replacing an earlier signature by the same key.
    pub fn sign(&mut self, signer: &dyn Signer) -> Result<(), Error> {
        let bytes = self.signed_bytes()?;
        self.add_signature(signer, &bytes)
    }

    /// Signs precomputed canonical bytes (saves encoding twice when the caller has them).
    pub fn add_signature(&mut self, signer: &dyn Signer, signed_bytes: &[u8]) -> Result<(), Error> {
        let sig = hex::encode(signer.sign(signed_bytes)?);
        let keyid = signer.keyid().to_string();
        self.signatures.retain(|s| s.keyid != keyid);
        self.signatures.push(Signature {
            keyid,
            sig,
            unrecognized: Map::new(),
        });
        Ok(())
    }

    /// The whole document as canonical JSON: compact and stable, the bytes tufa
    /// serves. Control characters in strings are escaped, or no JSON parser
    /// could read the file (see [`to_json_bytes`]).
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        let mut doc = self.unrecognized.clone();
        doc.insert(
            "signed".into(),
            serde_json::to_value(&self.signed).map_err(|e| Error::Serialize(e.to_string()))?,
        );
        doc.insert(
            "signatures".into(),
            serde_json::to_value(&self.signatures).map_err(|e| Error::Serialize(e.to_string()))?,
        );
        to_json_bytes(&Value::Object(doc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::Scheme;
    use crate::metadata::TargetFile;
    use crate::signer::PrivateKey;
    use crate::time::UtcTime;

    /// A control character in a signed string must not make the file
    /// unreadable: it is escaped in the file and raw in the signed bytes.
    #[test]
    fn to_bytes_with_control_characters_reads_back_and_verifies() {
        let key = PrivateKey::generate(Scheme::Ed25519).unwrap();
        let mut targets = Targets::new(UtcTime::from_unix(2_000_000_000));
        targets.targets.insert(
            "a\u{1}b\nc".into(),
            TargetFile::from_bytes(b"x", &[crate::HashAlgorithm::Sha256]),
        );
        let mut md = Metadata::new(targets);
        md.sign(&key).unwrap();
        let bytes = md.to_bytes().unwrap();
        assert!(
            !bytes.iter().any(|&b| b < 0x20),
            "raw control character in file"
        );
        let raw = RawMetadata::from_slice("targets", &bytes).unwrap();
        assert_eq!(raw.signed_bytes(), md.signed_bytes().unwrap().as_slice());
        assert!(raw.signed_bytes().contains(&b'\n'));
        let mut keys = BTreeMap::new();
        keys.insert(key.keyid().to_string(), key.public_key().clone());
        let check = check_signatures(
            "targets",
            &[key.keyid().to_string()],
            1,
            &keys,
            raw.signed_bytes(),
            raw.signatures(),
        );
        assert!(check.is_satisfied());
        assert_eq!(raw.into_metadata::<Targets>("targets").unwrap(), md);
    }
}
