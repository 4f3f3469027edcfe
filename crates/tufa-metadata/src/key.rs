//! Public keys as TUF metadata lists them, keyids, and signature verification.
//!
//! Supported schemes (securesystemslib names): `ed25519` (hex public key),
//! `ecdsa-sha2-nistp256` and `ecdsa-sha2-nistp384` (PEM SPKI, DER signatures),
//! `rsassa-pss-sha256` (PEM SPKI; any salt length accepted on verify, as
//! securesystemslib's `PSS.AUTO` does) and, for completeness,
//! `rsassa-pss-sha384/512` and `rsa-pkcs1v15-sha256/384/512`.

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use spki::der::{Decode, DecodePem};

use crate::canonical::to_canonical_bytes;
use crate::error::Error;
use crate::hash::HashAlgorithm;

/// A public key object: `{keytype, scheme, keyval: {public}}` plus any other
/// fields, which are kept and re-signed unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Key {
    pub keytype: String,
    pub scheme: String,
    pub keyval: KeyVal,
    #[serde(flatten)]
    pub unrecognized: Map<String, Value>,
}

/// The `keyval` object of a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyVal {
    pub public: String,
    #[serde(flatten)]
    pub unrecognized: Map<String, Value>,
}

/// The signature schemes tufa can verify and create.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scheme {
    Ed25519,
    EcdsaP256,
    EcdsaP384,
    RsaPss(HashAlgorithm),
    RsaPkcs1v15(HashAlgorithm),
}

impl Scheme {
    /// The `(keytype, scheme)` pair securesystemslib writes for this scheme.
    pub fn names(self) -> (&'static str, &'static str) {
        match self {
            Scheme::Ed25519 => ("ed25519", "ed25519"),
            Scheme::EcdsaP256 => ("ecdsa", "ecdsa-sha2-nistp256"),
            Scheme::EcdsaP384 => ("ecdsa", "ecdsa-sha2-nistp384"),
            Scheme::RsaPss(HashAlgorithm::Sha512) => ("rsa", "rsassa-pss-sha512"),
            Scheme::RsaPss(HashAlgorithm::Sha256) | Scheme::RsaPss(_) => {
                ("rsa", "rsassa-pss-sha256")
            }
            Scheme::RsaPkcs1v15(HashAlgorithm::Sha512) => ("rsa", "rsa-pkcs1v15-sha512"),
            Scheme::RsaPkcs1v15(_) => ("rsa", "rsa-pkcs1v15-sha256"),
        }
    }

    /// Parses a `(keytype, scheme)` pair as securesystemslib accepts it.
    pub fn from_names(keytype: &str, scheme: &str) -> Option<Scheme> {
        Some(match (keytype, scheme) {
            ("ed25519", "ed25519") => Scheme::Ed25519,
            ("ecdsa" | "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256") => Scheme::EcdsaP256,
            ("ecdsa" | "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp384") => Scheme::EcdsaP384,
            ("rsa", "rsassa-pss-sha256") => Scheme::RsaPss(HashAlgorithm::Sha256),
            ("rsa", "rsassa-pss-sha512") => Scheme::RsaPss(HashAlgorithm::Sha512),
            ("rsa", "rsa-pkcs1v15-sha256") => Scheme::RsaPkcs1v15(HashAlgorithm::Sha256),
            ("rsa", "rsa-pkcs1v15-sha512") => Scheme::RsaPkcs1v15(HashAlgorithm::Sha512),
            _ => return None,
        })
    }
}

impl Key {
    /// A key with no extra fields.
    pub fn new(scheme: Scheme, public: String) -> Key {
        let (keytype, scheme) = scheme.names();
        Key {
            keytype: keytype.to_string(),
            scheme: scheme.to_string(),
            keyval: KeyVal {
                public,
                unrecognized: Map::new(),
            },
            unrecognized: Map::new(),
        }
    }

    /// A key from a PEM `PUBLIC KEY` (SubjectPublicKeyInfo), as key holders
    /// hand them over for a ceremony. Ed25519 keys become hex as TUF lists
    /// them; ECDSA and RSA keys stay PEM. RSA defaults to `rsassa-pss-sha256`.
    pub fn from_public_pem(pem: &str, scheme: Option<Scheme>) -> Result<Key, Error> {
        let invalid = |reason: String| Error::InvalidKey {
            keyid: "(new key)".into(),
            reason,
        };
        let spki = spki::SubjectPublicKeyInfoOwned::from_pem(pem.as_bytes())
            .map_err(|e| invalid(format!("not a PEM public key: {e}")))?;
        let bits = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| invalid("public key bit string is not whole bytes".into()))?;
        let oid = spki.algorithm.oid;
        let key = if oid == ED25519_OID {
            Key::new(Scheme::Ed25519, hex::encode(bits))
        } else if oid == EC_PUBLIC_KEY_OID {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<spki::ObjectIdentifier>().ok())
                .ok_or_else(|| invalid("EC key without a named curve".into()))?;
            let scheme = if curve == P256_OID {
                Scheme::EcdsaP256
            } else if curve == P384_OID {
                Scheme::EcdsaP384
            } else {
                return Err(invalid(format!("unsupported EC curve {curve}")));
            };
            Key::new(scheme, normalise_pem(pem))
        } else if oid == RSA_ENCRYPTION_OID {
            let scheme = match scheme {
                Some(s @ (Scheme::RsaPss(_) | Scheme::RsaPkcs1v15(_))) => s,
                _ => Scheme::RsaPss(HashAlgorithm::Sha256),
            };
            Key::new(scheme, normalise_pem(pem))
        } else {
            return Err(invalid(format!("unsupported key algorithm {oid}")));
        };
        // Parse it the way verification will, so a bad key fails now.
        key.verifier("(new key)")?;
        Ok(key)
    }

    /// The default keyid: hex sha256 of the canonical `{keytype, scheme, keyval}`,
    /// without any other field (securesystemslib's `compute_default_keyid`).
    pub fn keyid(&self) -> String {
        let mut obj = Map::new();
        obj.insert("keytype".into(), Value::String(self.keytype.clone()));
        obj.insert("scheme".into(), Value::String(self.scheme.clone()));
        let keyval = serde_json::to_value(&self.keyval).unwrap_or(Value::Null);
        obj.insert("keyval".into(), keyval);
        // Strings, objects and no floats: canonical encoding cannot fail here.
        let bytes = to_canonical_bytes(&Value::Object(obj)).unwrap_or_default();
        hex::encode(HashAlgorithm::Sha256.digest(&bytes))
    }

    /// The scheme, if tufa supports it.
    pub fn scheme(&self) -> Option<Scheme> {
        Scheme::from_names(&self.keytype, &self.scheme)
    }

    /// Parses the public key so it can verify many signatures.
    ///
    /// `keyid` only labels errors.
    pub fn verifier(&self, keyid: &str) -> Result<Verifier, Error> {
        let invalid = |reason: &str| Error::InvalidKey {
            keyid: keyid.to_string(),
            reason: reason.to_string(),
        };
        let scheme = self.scheme().ok_or_else(|| {
            invalid(&format!(
                "unsupported keytype/scheme {}/{}",
                self.keytype, self.scheme
            ))
        })?;
        let public = match scheme {
            Scheme::Ed25519 => {
                let raw = hex::decode(&self.keyval.public)
                    .map_err(|_| invalid("ed25519 public key is not hex"))?;
                if raw.len() != 32 {
                    return Err(invalid("ed25519 public key is not 32 bytes"));
                }
                raw
            }
            _ => {
                let spki = spki::SubjectPublicKeyInfoOwned::from_pem(self.keyval.public.as_bytes())
                    .map_err(|e| {
                        invalid(&format!(
                            "public key is not a PEM SubjectPublicKeyInfo: {e}"
                        ))
                    })?;
                let expected_oid = match scheme {
                    Scheme::EcdsaP256 | Scheme::EcdsaP384 => EC_PUBLIC_KEY_OID,
                    _ => RSA_ENCRYPTION_OID,
                };
                if spki.algorithm.oid != expected_oid {
                    return Err(invalid(&format!(
                        "public key algorithm {} does not fit scheme {}",
                        spki.algorithm.oid, self.scheme
                    )));
                }
                if let (Scheme::EcdsaP256 | Scheme::EcdsaP384, Some(param)) =
                    (scheme, &spki.algorithm.parameters)
                {
                    let curve = param
                        .decode_as::<spki::ObjectIdentifier>()
                        .map_err(|_| invalid("EC key without a named curve"))?;
                    let want = if scheme == Scheme::EcdsaP256 {
                        P256_OID
                    } else {
                        P384_OID
                    };
                    if curve != want {
                        return Err(invalid(&format!(
                            "EC curve {curve} does not fit scheme {}",
                            self.scheme
                        )));
                    }
                }
                spki.subject_public_key
                    .as_bytes()
                    .ok_or_else(|| invalid("public key bit string is not whole bytes"))?
                    .to_vec()
            }
        };
        if let Scheme::RsaPss(_) | Scheme::RsaPkcs1v15(_) = scheme {
            let rsa = pkcs1::RsaPublicKey::from_der(&public)
                .map_err(|e| invalid(&format!("RSA public key: {e}")))?;
            if rsa.modulus.as_bytes().len() * 8 < 2048 - 8 {
                return Err(invalid("RSA modulus shorter than 2048 bits"));
            }
        }
        Ok(Verifier { scheme, public })
    }
}

/// The PEM block alone, with `\n` line ends and a final newline, as
/// securesystemslib stores SPKI keys.
fn normalise_pem(pem: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in pem.lines().map(str::trim) {
        if line.starts_with("-----BEGIN") {
            inside = true;
        }
        if inside {
            out.push_str(line);
            out.push('\n');
        }
        if line.starts_with("-----END") {
            break;
        }
    }
    out
}

const ED25519_OID: spki::ObjectIdentifier = spki::ObjectIdentifier::new_unwrap("1.3.101.112");
const EC_PUBLIC_KEY_OID: spki::ObjectIdentifier =
    spki::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const RSA_ENCRYPTION_OID: spki::ObjectIdentifier =
    spki::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const P256_OID: spki::ObjectIdentifier = spki::ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const P384_OID: spki::ObjectIdentifier = spki::ObjectIdentifier::new_unwrap("1.3.132.0.34");

/// A parsed public key, ready to verify signatures.
#[derive(Debug, Clone)]
pub struct Verifier {
    scheme: Scheme,
    /// Raw Ed25519 key, uncompressed EC point, or PKCS#1 RSAPublicKey DER.
    public: Vec<u8>,
}

impl Verifier {
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// True when `sig` is a valid signature of `msg`.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let alg: &'static dyn VerificationAlgorithm = match self.scheme {
            Scheme::Ed25519 => &signature::ED25519,
            Scheme::EcdsaP256 => &signature::ECDSA_P256_SHA256_ASN1,
            Scheme::EcdsaP384 => &signature::ECDSA_P384_SHA384_ASN1,
            Scheme::RsaPss(HashAlgorithm::Sha512) => &signature::RSA_PSS_2048_8192_SHA512,
            Scheme::RsaPss(_) => &signature::RSA_PSS_2048_8192_SHA256,
            Scheme::RsaPkcs1v15(HashAlgorithm::Sha512) => &signature::RSA_PKCS1_2048_8192_SHA512,
            Scheme::RsaPkcs1v15(_) => &signature::RSA_PKCS1_2048_8192_SHA256,
        };
        if UnparsedPublicKey::new(alg, &self.public)
            .verify(msg, sig)
            .is_ok()
        {
            return true;
        }
        // aws-lc-rs checks PSS with salt length = digest length only; other
        // signers use other salts, and securesystemslib accepts any.
        match self.scheme {
            Scheme::RsaPss(hash) => crate::rsa_pss::verify_any_salt(&self.public, hash, msg, sig),
            _ => false,
        }
    }
}

/// A signature in a metadata envelope: `{keyid, sig}` plus any other fields
/// (a Sigstore `bundle`, say), kept unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    pub keyid: String,
    pub sig: String,
    #[serde(flatten)]
    pub unrecognized: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyid_ignores_extra_fields() {
        let mut key = Key::new(
            Scheme::Ed25519,
            "4e777de0d275f9d28588dd9a1606cc748e548f9e22b6795b7cb3f63f98035fcb".into(),
        );
        let plain = key.keyid();
        key.unrecognized
            .insert("x-rstuf-key-name".into(), Value::String("online".into()));
        assert_eq!(key.keyid(), plain);
    }

    #[test]
    fn public_pem_gives_the_same_key_as_the_private_key() {
        use crate::signer::{PrivateKey, Signer};
        for scheme in [Scheme::Ed25519, Scheme::EcdsaP256, Scheme::EcdsaP384] {
            let private = PrivateKey::generate(scheme).unwrap();
            let pem = private.public_pem().unwrap();
            let key = Key::from_public_pem(&pem, None).unwrap();
            assert_eq!(key.keyid(), private.keyid(), "{scheme:?}");
        }
        assert!(
            Key::from_public_pem(
                "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
                None
            )
            .is_err()
        );
    }

    #[test]
    fn unsupported_scheme_is_a_named_error() {
        let key = Key {
            keytype: "dsa".into(),
            ..Key::new(Scheme::Ed25519, "00".into())
        };
        let err = key.verifier("abc").unwrap_err();
        assert!(
            err.to_string()
                .contains("unsupported keytype/scheme dsa/ed25519"),
            "{err}"
        );
    }

    #[test]
    fn malformed_public_keys_are_errors_not_panics() {
        for (scheme, public) in [
            (Scheme::Ed25519, "zz"),
            (Scheme::Ed25519, "00"),
            (Scheme::EcdsaP256, "not pem"),
            (
                Scheme::RsaPss(HashAlgorithm::Sha256),
                "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            ),
        ] {
            assert!(Key::new(scheme, public.into()).verifier("k").is_err());
        }
    }
}
