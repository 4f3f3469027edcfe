//! `--dev`: a working repository with one command, keys generated on the spot.
//!
//! Root keys and the online key are written under `DIR/keys` (mode 0600).
//! Anyone who can read that directory can sign for the repository: for
//! trying tufa out, never for production.

use std::path::Path;

use serde_json::Value;
use tufa_metadata::{PrivateKey, Scheme, Signer};

use crate::ceremony::{Ceremony, RootKey};
use crate::error::{Error, Result};
use crate::online_key::write_private_key;
use crate::settings::Expiration;

/// The number of bins a dev repository gets (small, so it starts at once).
pub const DEV_BINS: u32 = 256;

/// Generates (or reuses) dev keys in `keys_dir` and returns a signed bootstrap payload.
pub fn dev_bootstrap_payload(keys_dir: &Path, bins: u32) -> Result<Value> {
    let load_or_create = |name: &str| -> Result<PrivateKey> {
        let path = keys_dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(pem) => PrivateKey::from_pem(&pem, None, None).map_err(Error::from),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = PrivateKey::generate(Scheme::Ed25519)?;
                write_private_key(&path, &key.to_pkcs8_pem(None)?)
                    .map_err(|e| Error::storage(&path, e))?;
                Ok(key)
            }
            Err(e) => Err(Error::storage(&path, e)),
        }
    };
    let root_keys = ["root-1.pem", "root-2.pem"]
        .into_iter()
        .map(|name| {
            let signer = load_or_create(name)?;
            Ok(RootKey {
                key: signer.public_key().clone(),
                signer: Some(signer),
                name: Some(name.into()),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let online = load_or_create("online.pem")?;
    let ceremony = Ceremony {
        root_keys,
        root_threshold: 2,
        online_key: online.public_key().clone(),
        expiration: Expiration::default(),
        bins,
        dev: true,
        layout: crate::settings::Layout::Pep458,
        targets_keys: Vec::new(),
        targets_threshold: None,
        claimed_keys: Vec::new(),
        claimed_threshold: None,
    };
    Ok(ceremony.run()?.payload)
}
