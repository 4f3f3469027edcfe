//! The offline root ceremony: root keys, threshold, the online key, expiries
//! and bins become a signed root and a bootstrap payload in RSTUF's format.
//!
//! Root is signed with whichever root private keys are present; keys given
//! as public PEM only are listed but do not sign here.

use serde_json::Value;
use tufa_metadata::{Key, Metadata, PrivateKey, Root, Signer, UtcTime};

use crate::bootstrap;
use crate::error::{Error, Result};
use crate::settings::Expiration;

/// One root key holder.
#[derive(Debug)]
pub struct RootKey {
    pub key: Key,
    /// Present when the private key is here to sign with.
    pub signer: Option<PrivateKey>,
    /// A name for people (`x-rstuf-key-name`).
    pub name: Option<String>,
}

/// Everything the ceremony decides.
#[derive(Debug)]
pub struct Ceremony {
    pub root_keys: Vec<RootKey>,
    pub root_threshold: u64,
    pub online_key: Key,
    pub expiration: Expiration,
    pub bins: u32,
    /// Allow a root threshold of 1 (for development only).
    pub dev: bool,
}

/// The ceremony's result.
#[derive(Debug)]
pub struct CeremonyResult {
    pub root: Metadata<Root>,
    pub payload: Value,
    /// Root signatures made here.
    pub signatures: usize,
}

impl Ceremony {
    /// Checks the choices and builds and signs root v1.
    pub fn run(self) -> Result<CeremonyResult> {
        if self.root_keys.is_empty() {
            return Err(Error::invalid(
                "root keys",
                "at least one root key is needed",
            ));
        }
        let min = if self.dev { 1 } else { 2 };
        if self.root_threshold < min {
            return Err(Error::invalid(
                "root threshold",
                format!("must be at least {min} (a threshold of 1 is allowed only with --dev)"),
            ));
        }
        if self.root_threshold > self.root_keys.len() as u64 {
            return Err(Error::invalid(
                "root threshold",
                format!(
                    "{} is more than the {} root keys",
                    self.root_threshold,
                    self.root_keys.len()
                ),
            ));
        }
        if !(2..=16384).contains(&self.bins) || !self.bins.is_power_of_two() {
            return Err(Error::invalid(
                "bins",
                format!("must be a power of two from 2 to 16384, got {}", self.bins),
            ));
        }
        let online_keyid = self.online_key.keyid();
        if self.root_keys.iter().any(|k| k.key.keyid() == online_keyid) {
            return Err(Error::invalid("online key", "must not also be a root key"));
        }
        let mut root = Root::new(UtcTime::now().plus_seconds(self.expiration.seconds("root")));
        for rk in &self.root_keys {
            let mut key = rk.key.clone();
            if let Some(name) = &rk.name {
                key.unrecognized
                    .insert("x-rstuf-key-name".into(), Value::String(name.clone()));
            }
            root.add_key("root", key)?;
        }
        if let Some(r) = root.roles.get_mut("root") {
            r.threshold = self.root_threshold;
        }
        let mut online = self.online_key.clone();
        online
            .unrecognized
            .insert("x-rstuf-key-name".into(), Value::String("online".into()));
        online.unrecognized.insert(
            "x-rstuf-online-key-uri".into(),
            Value::String(format!("fn:{online_keyid}")),
        );
        for role in ["targets", "snapshot", "timestamp"] {
            root.add_key(role, online.clone())?;
        }
        let mut md = Metadata::new(root);
        let mut signatures = 0;
        for rk in &self.root_keys {
            if let Some(signer) = &rk.signer {
                md.sign(signer as &dyn Signer)?;
                signatures += 1;
            }
        }
        let payload = bootstrap::payload(&self.expiration, self.bins, &md)?;
        Ok(CeremonyResult {
            root: md,
            payload,
            signatures,
        })
    }
}
