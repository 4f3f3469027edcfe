use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{SPEC_VERSION, TOP_LEVEL_ROLES, check_role_keys, common_fields};
use crate::error::Error;
use crate::hash::{HashAlgorithm, hash_reader, verify_hashes};
use crate::key::Key;
use crate::time::UtcTime;

/// The `signed` part of `targets.json` or of a delegated targets role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Targets {
    #[serde(rename = "_type")]
    pub type_: String,
    pub spec_version: String,
    pub version: u64,
    pub expires: UtcTime,
    pub targets: BTreeMap<String, TargetFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegations: Option<Delegations>,
    #[serde(flatten)]
    pub unrecognized: Map<String, Value>,
}

common_fields!(Targets, "targets");

impl Targets {
    pub fn new(expires: UtcTime) -> Targets {
        Targets {
            type_: "targets".into(),
            spec_version: SPEC_VERSION.into(),
            version: 1,
            expires,
            targets: BTreeMap::new(),
            delegations: None,
            unrecognized: Map::new(),
        }
    }

    fn check(&self, name: &str) -> Result<(), Error> {
        for (path, file) in &self.targets {
            if file.hashes.is_empty() {
                return Err(Error::malformed(
                    name,
                    format!("target {path} lists no hashes"),
                ));
            }
        }
        match &self.delegations {
            Some(d) => d.check(name),
            None => Ok(()),
        }
    }
}

/// A target file's length and hashes; `custom` and anything else is kept in
/// `unrecognized`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetFile {
    pub length: u64,
    pub hashes: BTreeMap<String, String>,
    #[serde(flatten)]
    pub unrecognized: Map<String, Value>,
}

impl TargetFile {
    /// Target info for `data` with the given hash algorithms.
    pub fn from_bytes(data: &[u8], algorithms: &[HashAlgorithm]) -> TargetFile {
        let hashes = algorithms
            .iter()
            .map(|a| (a.name().to_string(), hex::encode(a.digest(data))))
            .collect();
        TargetFile {
            length: data.len() as u64,
            hashes,
            unrecognized: Map::new(),
        }
    }

    /// Target info for a stream of any size, read once in constant memory.
    pub fn from_reader<R: std::io::Read>(
        reader: R,
        algorithms: &[HashAlgorithm],
    ) -> Result<TargetFile, Error> {
        let (length, hashes) = hash_reader(reader, algorithms)?;
        Ok(TargetFile {
            length,
            hashes,
            unrecognized: Map::new(),
        })
    }

    /// The `custom` object, if any.
    pub fn custom(&self) -> Option<&Value> {
        self.unrecognized.get("custom")
    }

    /// Checks `data` against the length and every listed hash.
    pub fn verify_data(&self, what: &str, data: &[u8]) -> Result<(), Error> {
        if self.length != data.len() as u64 {
            return Err(Error::LengthMismatch {
                what: what.to_string(),
                expected: self.length,
                found: data.len() as u64,
            });
        }
        verify_hashes(what, data, &self.hashes)
    }
}

/// A targets role's `delegations`: keys, and either `roles` or `succinct_roles`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delegations {
    pub keys: BTreeMap<String, Key>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<DelegatedRole>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub succinct_roles: Option<SuccinctRoles>,
    #[serde(flatten)]
    pub unrecognized: Map<String, Value>,
}

impl Delegations {
    fn check(&self, name: &str) -> Result<(), Error> {
        match (&self.roles, &self.succinct_roles) {
            (Some(roles), None) => {
                let mut names = BTreeSet::new();
                for role in roles {
                    if TOP_LEVEL_ROLES.contains(&role.name.as_str()) {
                        return Err(Error::malformed(
                            name,
                            format!("delegated role name {:?} is a top-level role", role.name),
                        ));
                    }
                    if !names.insert(role.name.as_str()) {
                        return Err(Error::malformed(
                            name,
                            format!("delegated role {:?} listed twice", role.name),
                        ));
                    }
                    check_role_keys(
                        &format!("{name} delegation {}", role.name),
                        &role.keyids,
                        role.threshold,
                    )?;
                    if role.paths.is_some() == role.path_hash_prefixes.is_some() {
                        return Err(Error::malformed(
                            name,
                            format!(
                                "delegated role {:?} needs exactly one of paths and path_hash_prefixes",
                                role.name
                            ),
                        ));
                    }
                }
                Ok(())
            }
            (None, Some(succinct)) => {
                check_role_keys(
                    &format!("{name} succinct_roles"),
                    &succinct.keyids,
                    succinct.threshold,
                )?;
                if !(1..=32).contains(&succinct.bit_length) {
                    return Err(Error::malformed(
                        name,
                        "succinct_roles bit_length must be between 1 and 32",
                    ));
                }
                Ok(())
            }
            _ => Err(Error::malformed(
                name,
                "delegations need exactly one of roles and succinct_roles",
            )),
        }
    }
}

/// One entry of `delegations.roles`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelegatedRole {
    pub name: String,
    pub keyids: Vec<String>,
    pub threshold: u64,
    pub terminating: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_hash_prefixes: Option<Vec<String>>,
    #[serde(flatten)]
    pub unrecognized: Map<String, Value>,
}

/// TAP 15 succinct hash-bin delegation: `2^bit_length` bins named
/// `{name_prefix}-{hex}`, all signed by the same keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuccinctRoles {
    pub keyids: Vec<String>,
    pub threshold: u64,
    pub bit_length: u32,
    pub name_prefix: String,
    #[serde(flatten)]
    pub unrecognized: Map<String, Value>,
}
