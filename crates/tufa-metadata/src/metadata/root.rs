use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{SPEC_VERSION, check_role_keys, common_fields};
use crate::error::Error;
use crate::key::Key;
use crate::time::UtcTime;

/// The names of the four top-level roles, which root must all define.
pub const TOP_LEVEL_ROLES: [&str; 4] = ["root", "snapshot", "targets", "timestamp"];

/// The `signed` part of `root.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Root {
    #[serde(rename = "_type")]
    pub type_: String,
    pub spec_version: String,
    pub version: u64,
    pub expires: UtcTime,
    pub consistent_snapshot: bool,
    pub keys: BTreeMap<String, Key>,
    pub roles: BTreeMap<String, RoleKeys>,
    #[serde(flatten)]
    pub unrecognized: Map<String, Value>,
}

/// Which keys sign a role and how many must: root's `roles` entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleKeys {
    pub keyids: Vec<String>,
    pub threshold: u64,
    #[serde(flatten)]
    pub unrecognized: Map<String, Value>,
}

impl RoleKeys {
    pub fn new(keyids: Vec<String>, threshold: u64) -> Self {
        RoleKeys {
            keyids,
            threshold,
            unrecognized: Map::new(),
        }
    }
}

common_fields!(Root, "root");

impl Root {
    /// A root with every top-level role empty; add keys with [`Root::add_key`].
    pub fn new(expires: UtcTime) -> Root {
        Root {
            type_: "root".into(),
            spec_version: SPEC_VERSION.into(),
            version: 1,
            expires,
            consistent_snapshot: true,
            keys: BTreeMap::new(),
            roles: TOP_LEVEL_ROLES
                .iter()
                .map(|r| (r.to_string(), RoleKeys::new(Vec::new(), 1)))
                .collect(),
            unrecognized: Map::new(),
        }
    }

    /// Authorises `key` for top-level role `role`.
    pub fn add_key(&mut self, role: &str, key: Key) -> Result<(), Error> {
        let keyid = key.keyid();
        let entry = self
            .roles
            .get_mut(role)
            .ok_or_else(|| Error::malformed("root", format!("{role} is not a top-level role")))?;
        if !entry.keyids.contains(&keyid) {
            entry.keyids.push(keyid.clone());
        }
        self.keys.insert(keyid, key);
        Ok(())
    }

    /// The keys and threshold of top-level role `role`.
    pub fn role(&self, role: &str) -> Result<&RoleKeys, Error> {
        self.roles
            .get(role)
            .ok_or_else(|| Error::UnknownDelegation {
                delegator: "root".into(),
                role: role.to_string(),
            })
    }

    fn check(&self, name: &str) -> Result<(), Error> {
        let mut names: Vec<&str> = self.roles.keys().map(String::as_str).collect();
        names.sort_unstable();
        if names != TOP_LEVEL_ROLES {
            return Err(Error::malformed(
                name,
                format!("roles must be exactly {TOP_LEVEL_ROLES:?}, found {names:?}"),
            ));
        }
        for (role, keys) in &self.roles {
            check_role_keys(&format!("{name} role {role}"), &keys.keyids, keys.threshold)?;
        }
        Ok(())
    }
}
