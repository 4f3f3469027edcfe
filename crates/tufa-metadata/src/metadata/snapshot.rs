use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{SPEC_VERSION, common_fields};
use crate::error::Error;
use crate::hash::verify_hashes;
use crate::time::UtcTime;

/// An entry of snapshot's or timestamp's `meta`: a metadata file's version
/// and, optionally, its length and hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaFile {
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashes: Option<BTreeMap<String, String>>,
    #[serde(flatten)]
    pub unrecognized: Map<String, Value>,
}

impl MetaFile {
    /// A version-only entry, as tufa writes them.
    pub fn new(version: u64) -> Self {
        MetaFile {
            version,
            length: None,
            hashes: None,
            unrecognized: Map::new(),
        }
    }

    /// Checks `data` against the length and hashes, where they are listed.
    pub fn verify_data(&self, what: &str, data: &[u8]) -> Result<(), Error> {
        if let Some(length) = self.length
            && length != data.len() as u64
        {
            return Err(Error::LengthMismatch {
                what: what.to_string(),
                expected: length,
                found: data.len() as u64,
            });
        }
        if let Some(hashes) = &self.hashes {
            verify_hashes(what, data, hashes)?;
        }
        Ok(())
    }

    fn check(&self, name: &str) -> Result<(), Error> {
        if self.version == 0 {
            return Err(Error::malformed(name, "meta version must be at least 1"));
        }
        if self.hashes.as_ref().is_some_and(BTreeMap::is_empty) {
            return Err(Error::malformed(name, "meta hashes must not be empty"));
        }
        Ok(())
    }
}

/// The `signed` part of `timestamp.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timestamp {
    #[serde(rename = "_type")]
    pub type_: String,
    pub spec_version: String,
    pub version: u64,
    pub expires: UtcTime,
    pub meta: BTreeMap<String, MetaFile>,
    #[serde(flatten)]
    pub unrecognized: Map<String, Value>,
}

common_fields!(Timestamp, "timestamp");

impl Timestamp {
    pub fn new(expires: UtcTime, snapshot: MetaFile) -> Timestamp {
        Timestamp {
            type_: "timestamp".into(),
            spec_version: SPEC_VERSION.into(),
            version: 1,
            expires,
            meta: BTreeMap::from([("snapshot.json".to_string(), snapshot)]),
            unrecognized: Map::new(),
        }
    }

    /// The snapshot entry (checked to exist when the document was read).
    pub fn snapshot_meta(&self) -> Result<&MetaFile, Error> {
        self.meta
            .get("snapshot.json")
            .ok_or_else(|| Error::malformed("timestamp", "meta has no snapshot.json"))
    }

    fn check(&self, name: &str) -> Result<(), Error> {
        if self.meta.len() != 1 || !self.meta.contains_key("snapshot.json") {
            return Err(Error::malformed(
                name,
                "meta must hold exactly snapshot.json",
            ));
        }
        self.meta.values().try_for_each(|m| m.check(name))
    }
}

/// The `signed` part of `snapshot.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    #[serde(rename = "_type")]
    pub type_: String,
    pub spec_version: String,
    pub version: u64,
    pub expires: UtcTime,
    pub meta: BTreeMap<String, MetaFile>,
    #[serde(flatten)]
    pub unrecognized: Map<String, Value>,
}

common_fields!(Snapshot, "snapshot");

impl Snapshot {
    pub fn new(expires: UtcTime) -> Snapshot {
        Snapshot {
            type_: "snapshot".into(),
            spec_version: SPEC_VERSION.into(),
            version: 1,
            expires,
            meta: BTreeMap::new(),
            unrecognized: Map::new(),
        }
    }

    /// The entry for targets role `role` (`{role}.json`).
    pub fn role_meta(&self, role: &str) -> Option<&MetaFile> {
        self.meta.get(&format!("{role}.json"))
    }

    fn check(&self, name: &str) -> Result<(), Error> {
        self.meta.values().try_for_each(|m| m.check(name))
    }
}
