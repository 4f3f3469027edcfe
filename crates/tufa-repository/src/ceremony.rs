//! The offline root ceremony: root keys, threshold, the online key, expiries
//! and bins become a signed root and a bootstrap payload in RSTUF's format.
//!
//! Root is signed with whichever root private keys are present; keys given
//! as public PEM only are listed but do not sign here.

use serde_json::Value;
use tufa_metadata::{Key, Metadata, PrivateKey, Root, Signer, Targets, UtcTime};

use crate::bootstrap;
use crate::error::{Error, Result};
use crate::settings::{Expiration, Layout};

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
    pub layout: Layout,
    /// pep480: targets' offline keys; empty means the root keys.
    pub targets_keys: Vec<RootKey>,
    /// pep480: targets' threshold; `None` means the root threshold.
    pub targets_threshold: Option<u64>,
    /// pep480: claimed's offline keys; empty means the targets keys.
    pub claimed_keys: Vec<RootKey>,
    /// pep480: claimed's threshold; `None` means the targets threshold.
    pub claimed_threshold: Option<u64>,
}

/// Signs `md` with every private key among `keys` that `keyids` lists and
/// fails unless `threshold` is met: offline roles cannot be completed later.
fn sign_offline(
    role: &str,
    md: &mut Metadata<Targets>,
    keys: &[RootKey],
    threshold: u64,
) -> Result<usize> {
    let mut signed = std::collections::BTreeSet::new();
    for k in keys {
        if let Some(signer) = &k.signer
            && signed.insert(signer.keyid().to_string())
        {
            md.sign(signer as &dyn Signer)?;
        }
    }
    if (signed.len() as u64) < threshold {
        return Err(Error::invalid(
            format!("{role} keys"),
            format!(
                "{role} must be fully signed at the ceremony: {} of {threshold} signatures made; give the private keys (PEM files)",
                signed.len()
            ),
        ));
    }
    Ok(signed.len())
}

fn check_threshold(role: &str, threshold: u64, keys: usize) -> Result<()> {
    if threshold < 1 || threshold > keys as u64 {
        return Err(Error::invalid(
            format!("{role} threshold"),
            format!("must be from 1 to the {keys} {role} keys, got {threshold}"),
        ));
    }
    Ok(())
}

/// The ceremony's result.
#[derive(Debug)]
pub struct CeremonyResult {
    pub root: Metadata<Root>,
    pub payload: Value,
    /// Root signatures made here.
    pub signatures: usize,
}

/// pep480's offline keys as the ceremony resolved them.
struct OfflineKeys<'a> {
    targets: &'a [RootKey],
    targets_threshold: u64,
    claimed: &'a [RootKey],
    claimed_threshold: u64,
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
        let offline = match self.layout {
            Layout::Pep458 => None,
            Layout::Pep480 => {
                let targets: &[RootKey] = if self.targets_keys.is_empty() {
                    &self.root_keys
                } else {
                    &self.targets_keys
                };
                let targets_threshold = self.targets_threshold.unwrap_or(self.root_threshold);
                check_threshold("targets", targets_threshold, unique_keys(targets))?;
                let claimed: &[RootKey] = if self.claimed_keys.is_empty() {
                    targets
                } else {
                    &self.claimed_keys
                };
                let claimed_threshold = self.claimed_threshold.unwrap_or(targets_threshold);
                check_threshold("claimed", claimed_threshold, unique_keys(claimed))?;
                if targets
                    .iter()
                    .chain(claimed)
                    .any(|k| k.key.keyid() == online_keyid)
                {
                    return Err(Error::invalid(
                        "online key",
                        "must not also be a targets or claimed key: they are offline in pep480",
                    ));
                }
                Some(OfflineKeys {
                    targets,
                    targets_threshold,
                    claimed,
                    claimed_threshold,
                })
            }
        };
        let mut root = Root::new(UtcTime::now().plus_seconds(self.expiration.seconds("root")));
        for rk in &self.root_keys {
            root.add_key("root", named(rk))?;
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
        match &offline {
            None => root.add_key("targets", online.clone())?,
            Some(o) => {
                for k in o.targets {
                    root.add_key("targets", named(k))?;
                }
                if let Some(r) = root.roles.get_mut("targets") {
                    r.threshold = o.targets_threshold;
                }
            }
        }
        for role in ["snapshot", "timestamp"] {
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
        let payload = match &offline {
            None => bootstrap::payload(&self.expiration, self.bins, &md)?,
            Some(o) => {
                let expires = UtcTime::now().plus_seconds(self.expiration.seconds("targets"));
                let mut targets = Targets::new(expires);
                let claimed_keys: Vec<Key> = o.claimed.iter().map(named).collect();
                targets.delegations = Some(crate::pep480::targets_delegations(
                    &claimed_keys,
                    o.claimed_threshold,
                    &online,
                ));
                let mut targets = Metadata::new(targets);
                sign_offline("targets", &mut targets, o.targets, o.targets_threshold)?;
                let mut claimed = Targets::new(expires);
                claimed.delegations = Some(crate::pep480::empty_delegations());
                let mut claimed = Metadata::new(claimed);
                sign_offline("claimed", &mut claimed, o.claimed, o.claimed_threshold)?;
                bootstrap::payload_pep480(&self.expiration, self.bins, &md, &targets, &claimed)?
            }
        };
        Ok(CeremonyResult {
            root: md,
            payload,
            signatures,
        })
    }
}

/// The public key with its holder's name (`x-rstuf-key-name`).
fn named(k: &RootKey) -> Key {
    let mut key = k.key.clone();
    if let Some(name) = &k.name {
        key.unrecognized
            .insert("x-rstuf-key-name".into(), Value::String(name.clone()));
    }
    key
}

fn unique_keys(keys: &[RootKey]) -> usize {
    keys.iter()
        .map(|k| k.key.keyid())
        .collect::<std::collections::BTreeSet<_>>()
        .len()
}
