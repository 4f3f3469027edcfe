//! Private keys and signing.
//!
//! [`Signer`] is the seam for pluggable key storage (files today; PKCS#11 or
//! a cloud KMS later): the repository only ever asks a signer for its public
//! key and a signature. [`PrivateKey`] is the in-process implementation, for
//! PKCS#8 PEM files, plain or password-encrypted as Python's `cryptography`
//! writes them.

use std::fmt;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use pkcs8::der::Decode;
use pkcs8::der::pem::LineEnding;

use crate::error::Error;
use crate::hash::HashAlgorithm;
use crate::key::{Key, Scheme};

/// Something that can sign metadata: a private key in memory, an HSM, a KMS.
pub trait Signer: Send + Sync + fmt::Debug {
    /// The public key that verifies this signer's signatures.
    fn public_key(&self) -> &Key;

    /// The keyid under which this signer's signatures are listed.
    fn keyid(&self) -> &str;

    /// Signs `msg` (the canonical bytes of a `signed` object).
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, Error>;
}

enum KeyMaterial {
    Ed25519(Ed25519KeyPair),
    Ecdsa(EcdsaKeyPair),
    Rsa(aws_lc_rs::rsa::KeyPair),
}

/// A private key held in memory.
pub struct PrivateKey {
    material: KeyMaterial,
    public: Key,
    keyid: String,
    pkcs8: pkcs8::SecretDocument,
}

impl fmt::Debug for PrivateKey {
    /// Never prints key material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("scheme", &self.public.scheme)
            .field("keyid", &self.keyid)
            .finish_non_exhaustive()
    }
}

const ED25519_OID: pkcs8::ObjectIdentifier = pkcs8::ObjectIdentifier::new_unwrap("1.3.101.112");
const EC_OID: pkcs8::ObjectIdentifier = pkcs8::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const RSA_OID: pkcs8::ObjectIdentifier =
    pkcs8::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const P256_OID: pkcs8::ObjectIdentifier =
    pkcs8::ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const P384_OID: pkcs8::ObjectIdentifier = pkcs8::ObjectIdentifier::new_unwrap("1.3.132.0.34");

/// PBKDF2 iterations for encrypted key files; cryptography uses a similar count.
const PBKDF2_ITERATIONS: u32 = 600_000;

fn key_err(e: impl fmt::Display) -> Error {
    Error::PrivateKey(e.to_string())
}

impl PrivateKey {
    /// Generates a new key. RSA keys are 3072 bits, as securesystemslib makes them.
    pub fn generate(scheme: Scheme) -> Result<PrivateKey, Error> {
        let rng = SystemRandom::new();
        let der: Vec<u8> = match scheme {
            Scheme::Ed25519 => Ed25519KeyPair::generate_pkcs8v1(&rng)
                .map_err(key_err)?
                .as_ref()
                .to_vec(),
            Scheme::EcdsaP256 => {
                EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
                    .map_err(key_err)?
                    .as_ref()
                    .to_vec()
            }
            Scheme::EcdsaP384 => {
                EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P384_SHA384_ASN1_SIGNING, &rng)
                    .map_err(key_err)?
                    .as_ref()
                    .to_vec()
            }
            Scheme::RsaPss(_) | Scheme::RsaPkcs1v15(_) => {
                let kp = aws_lc_rs::rsa::KeyPair::generate(KeySize::Rsa3072).map_err(key_err)?;
                let der: Pkcs8V1Der = kp.as_der().map_err(key_err)?;
                der.as_ref().to_vec()
            }
        };
        PrivateKey::from_pkcs8_der(&der, Some(scheme))
    }

    /// Loads an unencrypted PKCS#8 DER key. `scheme` picks among the schemes a
    /// key type allows (RSA: PSS or PKCS#1 v1.5); `None` takes the default.
    pub fn from_pkcs8_der(der: &[u8], requested: Option<Scheme>) -> Result<PrivateKey, Error> {
        let info = pkcs8::PrivateKeyInfo::from_der(der)
            .map_err(|e| key_err(format!("not PKCS#8: {e}")))?;
        let oid = info.algorithm.oid;
        let (material, scheme) = if oid == ED25519_OID {
            let kp = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(key_err)?;
            (KeyMaterial::Ed25519(kp), Scheme::Ed25519)
        } else if oid == EC_OID {
            let curve = info
                .algorithm
                .parameters_oid()
                .map_err(|_| key_err("EC key without a named curve"))?;
            let (alg, scheme) = if curve == P256_OID {
                (
                    &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                    Scheme::EcdsaP256,
                )
            } else if curve == P384_OID {
                (
                    &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
                    Scheme::EcdsaP384,
                )
            } else {
                return Err(key_err(format!("unsupported EC curve {curve}")));
            };
            let kp = EcdsaKeyPair::from_pkcs8(alg, der).map_err(key_err)?;
            (KeyMaterial::Ecdsa(kp), scheme)
        } else if oid == RSA_OID {
            let kp = aws_lc_rs::rsa::KeyPair::from_pkcs8(der).map_err(key_err)?;
            let scheme = match requested {
                Some(s @ (Scheme::RsaPss(_) | Scheme::RsaPkcs1v15(_))) => s,
                _ => Scheme::RsaPss(HashAlgorithm::Sha256),
            };
            (KeyMaterial::Rsa(kp), scheme)
        } else {
            return Err(key_err(format!("unsupported key algorithm {oid}")));
        };
        if let Some(requested) = requested {
            let family = material_family(&material);
            let (keytype, name) = requested.names();
            if keytype != family {
                return Err(key_err(format!(
                    "a {family} key cannot sign with scheme {name}"
                )));
            }
        }
        let public_value = match &material {
            KeyMaterial::Ed25519(kp) => hex::encode(kp.public_key().as_ref()),
            KeyMaterial::Ecdsa(kp) => {
                let der: PublicKeyX509Der = kp.public_key().as_der().map_err(key_err)?;
                spki_pem(der.as_ref())?
            }
            KeyMaterial::Rsa(kp) => {
                let der: PublicKeyX509Der = kp.public_key().as_der().map_err(key_err)?;
                spki_pem(der.as_ref())?
            }
        };
        let public = Key::new(scheme, public_value);
        let keyid = public.keyid();
        let pkcs8 = pkcs8::SecretDocument::try_from(der).map_err(key_err)?;
        Ok(PrivateKey {
            material,
            public,
            keyid,
            pkcs8,
        })
    }

    /// Loads a PKCS#8 PEM key (`PRIVATE KEY`, or `ENCRYPTED PRIVATE KEY` with a password).
    pub fn from_pem(
        pem: &str,
        password: Option<&[u8]>,
        scheme: Option<Scheme>,
    ) -> Result<PrivateKey, Error> {
        let (label, doc) = pkcs8::SecretDocument::from_pem(pem)
            .map_err(|e| key_err(format!("not a PEM key: {e}")))?;
        match label {
            "PRIVATE KEY" => PrivateKey::from_pkcs8_der(doc.as_bytes(), scheme),
            "ENCRYPTED PRIVATE KEY" => {
                let password = password
                    .ok_or_else(|| key_err("the key is encrypted and no password was given"))?;
                let enc =
                    pkcs8::EncryptedPrivateKeyInfo::from_der(doc.as_bytes()).map_err(key_err)?;
                let plain = enc.decrypt(password).map_err(|_| {
                    key_err("cannot decrypt the key: wrong password or unsupported encryption")
                })?;
                PrivateKey::from_pkcs8_der(plain.as_bytes(), scheme)
            }
            other => Err(key_err(format!(
                "PEM label {other:?} is not PKCS#8; convert with `openssl pkcs8 -topk8`"
            ))),
        }
    }

    /// The key as PKCS#8 PEM, encrypted (PBES2: PBKDF2-SHA256, AES-256-CBC)
    /// when a password is given.
    pub fn to_pkcs8_pem(&self, password: Option<&[u8]>) -> Result<String, Error> {
        let pem = match password {
            None => self
                .pkcs8
                .to_pem("PRIVATE KEY", LineEnding::LF)
                .map_err(key_err)?,
            Some(password) => {
                let rng = SystemRandom::new();
                let mut salt = [0u8; 16];
                let mut iv = [0u8; 16];
                rng.fill(&mut salt).map_err(key_err)?;
                rng.fill(&mut iv).map_err(key_err)?;
                let params = pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(
                    PBKDF2_ITERATIONS,
                    &salt,
                    &iv,
                )
                .map_err(key_err)?;
                let info =
                    pkcs8::PrivateKeyInfo::from_der(self.pkcs8.as_bytes()).map_err(key_err)?;
                let enc = info
                    .encrypt_with_params(params, password)
                    .map_err(key_err)?;
                enc.to_pem("ENCRYPTED PRIVATE KEY", LineEnding::LF)
                    .map_err(key_err)?
            }
        };
        Ok(pem.to_string())
    }

    /// The public key as a PEM `PUBLIC KEY` (SubjectPublicKeyInfo), to hand
    /// to a ceremony or another key holder.
    pub fn public_pem(&self) -> Result<String, Error> {
        let der: PublicKeyX509Der = match &self.material {
            KeyMaterial::Ed25519(kp) => kp.public_key().as_der().map_err(key_err)?,
            KeyMaterial::Ecdsa(kp) => kp.public_key().as_der().map_err(key_err)?,
            KeyMaterial::Rsa(kp) => kp.public_key().as_der().map_err(key_err)?,
        };
        spki_pem(der.as_ref())
    }

    pub fn scheme(&self) -> Scheme {
        match self.public.scheme() {
            Some(s) => s,
            None => Scheme::Ed25519,
        }
    }
}

/// The keytype of the loaded material.
fn material_family(material: &KeyMaterial) -> &'static str {
    match material {
        KeyMaterial::Ed25519(_) => "ed25519",
        KeyMaterial::Ecdsa(_) => "ecdsa",
        KeyMaterial::Rsa(_) => "rsa",
    }
}

fn spki_pem(der: &[u8]) -> Result<String, Error> {
    let doc = spki::Document::from_der(der).map_err(key_err)?;
    doc.to_pem("PUBLIC KEY", LineEnding::LF).map_err(key_err)
}

impl Signer for PrivateKey {
    fn public_key(&self) -> &Key {
        &self.public
    }

    fn keyid(&self) -> &str {
        &self.keyid
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, Error> {
        let rng = SystemRandom::new();
        match &self.material {
            KeyMaterial::Ed25519(kp) => Ok(kp.sign(msg).as_ref().to_vec()),
            KeyMaterial::Ecdsa(kp) => Ok(kp
                .sign(&rng, msg)
                .map_err(|e| Error::Signing(e.to_string()))?
                .as_ref()
                .to_vec()),
            KeyMaterial::Rsa(kp) => {
                let padding: &'static dyn signature::RsaEncoding = match self.scheme() {
                    Scheme::RsaPss(HashAlgorithm::Sha512) => &signature::RSA_PSS_SHA512,
                    Scheme::RsaPkcs1v15(HashAlgorithm::Sha512) => &signature::RSA_PKCS1_SHA512,
                    Scheme::RsaPkcs1v15(_) => &signature::RSA_PKCS1_SHA256,
                    _ => &signature::RSA_PSS_SHA256,
                };
                let mut sig = vec![0u8; kp.public_modulus_len()];
                kp.sign(padding, &rng, msg, &mut sig)
                    .map_err(|e| Error::Signing(e.to_string()))?;
                Ok(sig)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Scheme; 4] = [
        Scheme::Ed25519,
        Scheme::EcdsaP256,
        Scheme::EcdsaP384,
        Scheme::RsaPss(HashAlgorithm::Sha256),
    ];

    #[test]
    fn generate_sign_verify_every_scheme() {
        for scheme in ALL {
            let key = PrivateKey::generate(scheme).unwrap();
            let sig = key.sign(b"payload").unwrap();
            let verifier = key.public_key().verifier(key.keyid()).unwrap();
            assert!(verifier.verify(b"payload", &sig), "{scheme:?}");
            assert!(!verifier.verify(b"payloaD", &sig), "{scheme:?}");
            assert_eq!(key.public_key().keyid(), key.keyid());
        }
    }

    #[test]
    fn pem_round_trip_plain_and_encrypted() {
        for scheme in [Scheme::Ed25519, Scheme::EcdsaP256] {
            let key = PrivateKey::generate(scheme).unwrap();
            let plain = key.to_pkcs8_pem(None).unwrap();
            assert!(plain.starts_with("-----BEGIN PRIVATE KEY-----"));
            assert_eq!(
                PrivateKey::from_pem(&plain, None, None).unwrap().keyid(),
                key.keyid()
            );
            let enc = key.to_pkcs8_pem(Some(b"hunter2")).unwrap();
            assert!(enc.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
            assert_eq!(
                PrivateKey::from_pem(&enc, Some(b"hunter2"), None)
                    .unwrap()
                    .keyid(),
                key.keyid()
            );
            assert!(PrivateKey::from_pem(&enc, Some(b"wrong"), None).is_err());
            assert!(PrivateKey::from_pem(&enc, None, None).is_err());
        }
    }

    #[test]
    fn debug_never_shows_key_material() {
        let key = PrivateKey::generate(Scheme::Ed25519).unwrap();
        let pem = key.to_pkcs8_pem(None).unwrap();
        let body: String = pem.lines().nth(1).unwrap().to_string();
        assert!(!format!("{key:?}").contains(&body));
    }
}
