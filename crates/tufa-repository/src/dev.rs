//! `--dev`: a working repository with one command, keys generated on the spot.
//!
//! Root keys and the online key are written under `DIR/keys` (mode 0600).
//! Anyone who can read that directory can sign for the repository: for
//! trying tufa out, never for production.

use std::path::Path;

use serde_json::Value;
use tufa_metadata::{Metadata, PrivateKey, Root, Scheme, Signer, UtcTime};

use crate::bootstrap;
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
    let root_keys = [load_or_create("root-1.pem")?, load_or_create("root-2.pem")?];
    let online = load_or_create("online.pem")?;
    let expiration = Expiration::default();
    let mut root = Root::new(UtcTime::now().plus_seconds(expiration.seconds("root")));
    for key in &root_keys {
        root.add_key("root", key.public_key().clone())?;
    }
    if let Some(r) = root.roles.get_mut("root") {
        r.threshold = 2;
    }
    for role in ["targets", "snapshot", "timestamp"] {
        root.add_key(role, online.public_key().clone())?;
    }
    let mut md = Metadata::new(root);
    for key in &root_keys {
        md.sign(key)?;
    }
    bootstrap::payload(&expiration, bins, &md)
}
