//! Private keys across implementations: PKCS#8 PEM files that Python's
//! `cryptography` writes (plain and password-encrypted) load in tufa with
//! securesystemslib's keyid, tufa's signatures verify in securesystemslib,
//! and the encrypted PEM tufa writes loads in `cryptography`. Operators move
//! keys between tufa, RSTUF and python-tuf tooling, so both directions matter.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::path::Path;

use serde_json::{Value, json};
use tufa_metadata::{HashAlgorithm, PrivateKey, Scheme, Signer};
use tufa_tests::run_python;

/// Non-ASCII on purpose: PKCS#5 passwords are bytes, and both sides must
/// take the same UTF-8 bytes.
const PASSWORD: &str = "p\u{e4}ssw\u{f6}rd \u{1f511}";

const KEYS: [(&str, Scheme); 4] = [
    ("ed25519", Scheme::Ed25519),
    ("p256", Scheme::EcdsaP256),
    ("p384", Scheme::EcdsaP384),
    ("rsa", Scheme::RsaPss(HashAlgorithm::Sha256)),
];

/// Canonical bytes of a small `signed` object, as a signature would cover.
const MESSAGE: &[u8] = "{\"_type\":\"targets\",\"x\":\"\u{1d11e}\\\"\"}".as_bytes();

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn read_string(path: &Path) -> String {
    String::from_utf8(read(path)).expect("UTF-8")
}

/// What Python is asked about one key tufa handled.
struct Check {
    id: String,
    key: PrivateKey,
    /// The keyid the key must have (securesystemslib's, or tufa's for keys tufa made).
    keyid: String,
}

#[test]
fn private_keys_interoperate_with_cryptography_and_securesystemslib() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    run_python("interop_keys.py", &[dir.as_os_str(), PASSWORD.as_ref()]);
    let manifest: Value = serde_json::from_slice(&read(&dir.join("keys.json"))).expect("json");

    let mut checks = Vec::new();
    for (name, scheme) in KEYS {
        let want = &manifest[name];
        let keyid = want["keyid"].as_str().expect("keyid");
        let plain_pem = read_string(&dir.join(format!("{name}.pem")));
        let enc_pem = read_string(&dir.join(format!("{name}.enc.pem")));
        assert!(enc_pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));

        let plain = PrivateKey::from_pem(&plain_pem, None, Some(scheme)).expect("plain PEM");
        let default = PrivateKey::from_pem(&plain_pem, None, None).expect("default scheme");
        let enc = PrivateKey::from_pem(&enc_pem, Some(PASSWORD.as_bytes()), Some(scheme))
            .unwrap_or_else(|e| panic!("{name}: encrypted PEM: {e}"));
        for key in [&plain, &default, &enc] {
            assert_eq!(
                key.keyid(),
                keyid,
                "{name}: keyid differs from securesystemslib's"
            );
            assert_eq!(key.scheme(), scheme, "{name}");
            // The whole public key object, byte for byte in its PEM.
            assert_eq!(
                serde_json::to_value(key.public_key()).expect("key"),
                want["key"],
                "{name}: public key differs from securesystemslib's"
            );
        }
        assert!(PrivateKey::from_pem(&enc_pem, Some(b"wrong"), Some(scheme)).is_err());
        assert!(PrivateKey::from_pem(&enc_pem, None, Some(scheme)).is_err());

        checks.push(Check {
            id: format!("python-{name}"),
            key: enc,
            keyid: keyid.to_string(),
        });
        let generated = PrivateKey::generate(scheme).expect("generate");
        let keyid = generated.keyid().to_string();
        checks.push(Check {
            id: format!("tufa-{name}"),
            key: generated,
            keyid,
        });
    }

    // Encrypting runs 600 000 PBKDF2 rounds a key: do them in parallel.
    let pems: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = checks
            .iter()
            .map(|c| s.spawn(|| c.key.to_pkcs8_pem(Some(PASSWORD.as_bytes()))))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread").expect("encrypt"))
            .collect()
    });

    let mut private_keys = Vec::new();
    let mut signatures = Vec::new();
    for (check, pem) in checks.iter().zip(&pems) {
        assert!(pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
        let path = dir.join(format!("{}.tufa.enc.pem", check.id));
        std::fs::write(&path, pem).expect("write PEM");
        let (_, scheme_name) = check.key.scheme().names();
        private_keys.push(json!({
            "id": check.id,
            "pem_file": path,
            "password": PASSWORD,
            "scheme": scheme_name,
        }));
        let sig = check.key.sign(MESSAGE).expect("sign");
        signatures.push(json!({
            "id": check.id,
            "keyid": check.keyid,
            "key": check.key.public_key(),
            "msg_hex": hex::encode(MESSAGE),
            "sig_hex": hex::encode(sig),
        }));
    }
    let request = json!({"private_keys": private_keys, "signatures": signatures});
    let req = dir.join("request.json");
    let resp = dir.join("response.json");
    std::fs::write(&req, serde_json::to_vec(&request).expect("json")).expect("write");
    run_python("interop_verify.py", &[req.as_os_str(), resp.as_os_str()]);
    let response: Value = serde_json::from_slice(&read(&resp)).expect("json");

    for check in &checks {
        let id = &check.id;
        let loaded = &response["private_keys"][id];
        assert_eq!(
            loaded["keyid"],
            json!(check.keyid),
            "{id}: cryptography loaded {loaded}"
        );
        assert_eq!(
            loaded["key"],
            serde_json::to_value(check.key.public_key()).expect("key"),
            "{id}"
        );
        let verified = &response["signatures"][id];
        assert_eq!(
            verified["valid"], true,
            "{id}: securesystemslib refused tufa's signature"
        );
        assert_eq!(verified["valid_on_other_msg"], false, "{id}");
    }
}
