//! Targets roles encoded straight from target entries that are already in
//! canonical form.
//!
//! A repository re-signs thousands of hash bins per publication, and each
//! bin's targets change little between versions. Keeping every target's
//! canonical bytes and splicing them into the role is one pass over bytes,
//! where [`Metadata::to_bytes`](super::Metadata::to_bytes) serialises the
//! whole role twice (once to sign, once to write) through a JSON tree. The
//! bytes are identical: the tests compare the two for arbitrary targets.

use serde_json::Value;

use super::{SPEC_VERSION, TargetFile};
use crate::canonical::{escape_control_characters, to_canonical_bytes, write_str};
use crate::error::Error;
use crate::signer::Signer;
use crate::time::UtcTime;

/// The canonical bytes of one target's file info (its value in `targets`).
pub fn target_file_bytes(file: &TargetFile) -> Result<Vec<u8>, Error> {
    let value = serde_json::to_value(file).map_err(|e| Error::Serialize(e.to_string()))?;
    to_canonical_bytes(&value)
}

/// The canonical `signed` bytes of a targets role with no delegations and
/// no extra fields (a hash bin): `targets` is (path, [`target_file_bytes`])
/// in ascending path order, which a `BTreeMap<String, _>` iterates in.
pub fn bin_signed_bytes<'a, I>(
    version: u64,
    expires: UtcTime,
    targets: I,
    size_hint: usize,
) -> Vec<u8>
where
    I: IntoIterator<Item = (&'a str, &'a [u8])>,
{
    let mut out = Vec::with_capacity(size_hint + 128);
    out.extend_from_slice(b"{\"_type\":\"targets\",\"expires\":");
    write_str(&expires.to_string(), &mut out);
    out.extend_from_slice(b",\"spec_version\":");
    write_str(SPEC_VERSION, &mut out);
    out.extend_from_slice(b",\"targets\":{");
    let mut previous: Option<&str> = None;
    for (i, (path, info)) in targets.into_iter().enumerate() {
        // Canonical JSON orders keys by code point, which for UTF-8 is byte order.
        debug_assert!(previous.is_none_or(|p| p < path));
        previous = Some(path);
        if i > 0 {
            out.push(b',');
        }
        write_str(path, &mut out);
        out.push(b':');
        out.extend_from_slice(info);
    }
    out.extend_from_slice(b"},\"version\":");
    out.extend_from_slice(version.to_string().as_bytes());
    out.push(b'}');
    out
}

/// Signs canonical `signed` bytes with every signer and returns the file
/// bytes [`Metadata::to_bytes`](super::Metadata::to_bytes) would write for
/// the same document and signatures.
pub fn sign_encoded(signed: &[u8], signers: &[&dyn Signer]) -> Result<Vec<u8>, Error> {
    let mut signatures: Vec<(String, String)> = Vec::with_capacity(signers.len());
    for signer in signers {
        let keyid = signer.keyid().to_string();
        let sig = hex::encode(signer.sign(signed)?);
        // As `Metadata::add_signature`: one signature per key, the last wins.
        signatures.retain(|(k, _)| *k != keyid);
        signatures.push((keyid, sig));
    }
    let body = escape_control_characters(signed);
    let mut out = Vec::with_capacity(body.len() + 32 + signatures.len() * 200);
    out.extend_from_slice(b"{\"signatures\":[");
    for (i, (keyid, sig)) in signatures.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // Key ids and signatures are hex: nothing in them needs escaping.
        let entry = Value::Object(
            [
                ("keyid".to_string(), Value::String(keyid.clone())),
                ("sig".to_string(), Value::String(sig.clone())),
            ]
            .into_iter()
            .collect(),
        );
        out.extend_from_slice(&to_canonical_bytes(&entry)?);
    }
    out.extend_from_slice(b"],\"signed\":");
    out.extend_from_slice(&body);
    out.push(b'}');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use serde_json::{Map, json};

    use super::*;
    use crate::key::Scheme;
    use crate::metadata::{Metadata, Targets};
    use crate::signer::PrivateKey;

    fn file(length: u64, sha: &str, custom: Option<Value>) -> TargetFile {
        let mut unrecognized = Map::new();
        if let Some(c) = custom {
            unrecognized.insert("custom".into(), c);
        }
        TargetFile {
            length,
            hashes: BTreeMap::from([("sha256".to_string(), sha.to_string())]),
            unrecognized,
        }
    }

    /// The fast encoding against the serde one: same signed bytes, same file.
    fn check(targets: BTreeMap<String, TargetFile>, version: u64, expires: i64) {
        let expires = UtcTime::from_unix(expires);
        let key_a = PrivateKey::generate(Scheme::Ed25519).unwrap();
        let key_b = PrivateKey::generate(Scheme::EcdsaP256).unwrap();
        let mut role = Targets::new(expires);
        role.version = version;
        role.targets = targets.clone();
        let mut md = Metadata::new(role);
        let signed = md.signed_bytes().unwrap();

        let encoded: Vec<(String, Vec<u8>)> = targets
            .iter()
            .map(|(p, f)| (p.clone(), target_file_bytes(f).unwrap()))
            .collect();
        let fast = bin_signed_bytes(
            version,
            expires,
            encoded.iter().map(|(p, b)| (p.as_str(), b.as_slice())),
            0,
        );
        assert_eq!(
            String::from_utf8_lossy(&fast),
            String::from_utf8_lossy(&signed)
        );

        // ECDSA signatures are randomised: compare by reusing the fast
        // path's signatures in the serde document.
        let file_bytes = sign_encoded(&fast, &[&key_a, &key_b]).unwrap();
        let written = Metadata::<Targets>::from_slice(&file_bytes).unwrap();
        md.signatures = written.signatures.clone();
        assert_eq!(file_bytes, md.to_bytes().unwrap());
        for key in [&key_a, &key_b] {
            let sig = md
                .signatures
                .iter()
                .find(|s| s.keyid == key.keyid())
                .unwrap();
            let verifier = key.public_key().verifier(key.keyid()).unwrap();
            assert!(verifier.verify(&signed, &hex::decode(&sig.sig).unwrap()));
        }
    }

    #[test]
    fn empty_bin() {
        check(BTreeMap::new(), 1, 1_900_000_000);
    }

    #[test]
    fn escapes_quotes_and_control_characters_as_the_serde_path_does() {
        let targets = BTreeMap::from([
            ("a\"b\\c/d.whl".to_string(), file(1, "00", None)),
            (
                "é/𝄞.tar.gz".to_string(),
                file(
                    2,
                    "ff",
                    Some(json!({"note": "line\nbreak\u{1}", "n": [1, -2]})),
                ),
            ),
        ]);
        check(targets, 7, 2_000_000_000);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn same_bytes_as_serde(
            entries in proptest::collection::btree_map(
                "[a-z0-9é/_.\"\\\\\\n-]{1,24}",
                (0u64..u64::MAX, "[0-9a-f]{64}", proptest::option::of("[ -~\\t\\n]{0,12}")),
                0..12,
            ),
            version in 1u64..u64::MAX,
            expires in 0i64..4_000_000_000,
        ) {
            let targets = entries
                .into_iter()
                .map(|(p, (len, sha, note))| (p, file(len, &sha, note.map(|n| json!({"note": n})))))
                .collect();
            check(targets, version, expires);
        }
    }
}
