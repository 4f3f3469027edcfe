use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{SPEC_VERSION, common_fields};
use crate::error::Error;
use crate::hash::verify_hashes;
use crate::time::UtcTime;

/// An entry of snapshot's or timestamp's `meta`: a metadata file's version
/// and, optionally, its length and hashes.
///
/// `Deserialize` is written out rather than derived: a derived one with a
/// `flatten` field buffers every entry before reading it, and a snapshot of
/// 16384 hash bins has 16384 entries (that was a quarter of a client's whole
/// refresh).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MetaFile {
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashes: Option<BTreeMap<String, String>>,
    #[serde(flatten)]
    pub unrecognized: Map<String, Value>,
}

impl<'de> Deserialize<'de> for MetaFile {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entry;

        impl<'de> serde::de::Visitor<'de> for Entry {
            type Value = MetaFile;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a METAFILES entry (an object with \"version\")")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<MetaFile, A::Error> {
                use serde::de::Error as _;
                let mut version: Option<u64> = None;
                let mut length: Option<Option<u64>> = None;
                let mut hashes: Option<Option<BTreeMap<String, String>>> = None;
                let mut unrecognized = Map::new();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "version" if version.is_some() => {
                            return Err(A::Error::duplicate_field("version"));
                        }
                        "version" => version = Some(map.next_value()?),
                        "length" if length.is_some() => {
                            return Err(A::Error::duplicate_field("length"));
                        }
                        "length" => length = Some(map.next_value()?),
                        "hashes" if hashes.is_some() => {
                            return Err(A::Error::duplicate_field("hashes"));
                        }
                        "hashes" => hashes = Some(map.next_value()?),
                        _ => {
                            let value: Value = map.next_value()?;
                            if unrecognized.insert(key, value).is_some() {
                                return Err(A::Error::custom("duplicate field"));
                            }
                        }
                    }
                }
                Ok(MetaFile {
                    version: version.ok_or_else(|| A::Error::missing_field("version"))?,
                    length: length.flatten(),
                    hashes: hashes.flatten(),
                    unrecognized,
                })
            }
        }

        deserializer.deserialize_map(Entry)
    }
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

/// A `BTreeMap<String, T>` read by collecting the members and building the
/// map in one go, rather than searching the tree for each insert: for a
/// snapshot's 16384 sorted entries that is one pass instead of 16384
/// searches. The last of duplicate keys wins, as with a derived reader.
struct BulkMap<T>(BTreeMap<String, T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for BulkMap<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members<T>(std::marker::PhantomData<T>);

        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Members<T> {
            type Value = BulkMap<T>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<BulkMap<T>, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0).min(4096));
                while let Some(entry) = map.next_entry::<String, T>()? {
                    members.push(entry);
                }
                Ok(BulkMap(members.into_iter().collect()))
            }
        }

        deserializer.deserialize_map(Members(std::marker::PhantomData))
    }
}

/// `Deserialize` for [`Timestamp`] and [`Snapshot`], which have the same
/// fields. Written out because a derived one with the `flatten` field
/// buffers the whole document (all 16384 `meta` entries of a 16384-bin
/// snapshot) before reading it again: more than half of a client's refresh.
macro_rules! meta_role_deserialize {
    ($ty:ident, $expecting:literal) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Fields;

                impl<'de> serde::de::Visitor<'de> for Fields {
                    type Value = $ty;

                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str($expecting)
                    }

                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<$ty, A::Error> {
                        use serde::de::Error as _;
                        let mut type_: Option<String> = None;
                        let mut spec_version: Option<String> = None;
                        let mut version: Option<u64> = None;
                        let mut expires: Option<UtcTime> = None;
                        let mut meta: Option<BTreeMap<String, MetaFile>> = None;
                        let mut unrecognized = Map::new();
                        fn once<T, E: serde::de::Error>(
                            slot: &mut Option<T>,
                            name: &'static str,
                            value: T,
                        ) -> Result<(), E> {
                            if slot.replace(value).is_some() {
                                return Err(E::duplicate_field(name));
                            }
                            Ok(())
                        }
                        while let Some(key) = map.next_key::<String>()? {
                            match key.as_str() {
                                "_type" => once(&mut type_, "_type", map.next_value()?)?,
                                "spec_version" => {
                                    once(&mut spec_version, "spec_version", map.next_value()?)?
                                }
                                "version" => once(&mut version, "version", map.next_value()?)?,
                                "expires" => once(&mut expires, "expires", map.next_value()?)?,
                                "meta" => once(
                                    &mut meta,
                                    "meta",
                                    map.next_value::<BulkMap<MetaFile>>()?.0,
                                )?,
                                _ => {
                                    let value: Value = map.next_value()?;
                                    if unrecognized.insert(key, value).is_some() {
                                        return Err(A::Error::custom("duplicate field"));
                                    }
                                }
                            }
                        }
                        Ok($ty {
                            type_: type_.ok_or_else(|| A::Error::missing_field("_type"))?,
                            spec_version: spec_version
                                .ok_or_else(|| A::Error::missing_field("spec_version"))?,
                            version: version.ok_or_else(|| A::Error::missing_field("version"))?,
                            expires: expires.ok_or_else(|| A::Error::missing_field("expires"))?,
                            meta: meta.ok_or_else(|| A::Error::missing_field("meta"))?,
                            unrecognized,
                        })
                    }
                }

                deserializer.deserialize_map(Fields)
            }
        }
    };
}

/// The `signed` part of `timestamp.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
meta_role_deserialize!(Timestamp, "the signed part of timestamp metadata");

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
#[derive(Debug, Clone, PartialEq, Serialize)]
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
meta_role_deserialize!(Snapshot, "the signed part of snapshot metadata");

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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    #[test]
    fn meta_file_reads_every_field_and_keeps_unknown_ones() {
        let v = json!({"version": 3, "length": 10, "hashes": {"sha256": "ab"}, "x-extra": [1, {"a": null}]});
        let m: MetaFile = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(m.version, 3);
        assert_eq!(m.length, Some(10));
        assert_eq!(m.hashes.as_ref().unwrap()["sha256"], "ab");
        assert_eq!(m.unrecognized["x-extra"], json!([1, {"a": null}]));
        assert_eq!(serde_json::to_value(&m).unwrap(), v);
        // From bytes too, and nulls read as absent.
        let m: MetaFile =
            serde_json::from_slice(br#"{"length":null,"version":1,"hashes":null}"#).unwrap();
        assert_eq!(m, MetaFile::new(1));
    }

    #[test]
    fn snapshot_and_timestamp_read_every_field_and_keep_unknown_ones() {
        let v = json!({
            "_type": "snapshot", "spec_version": "1.0.31", "version": 7,
            "expires": "2030-01-01T00:00:00Z", "x-note": {"a": [1]},
            "meta": {"targets.json": {"version": 2}, "bin-0.json": {"version": 3, "length": 9}},
        });
        let s: Snapshot = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(s.version, 7);
        assert_eq!(s.meta["bin-0.json"].length, Some(9));
        assert_eq!(s.unrecognized["x-note"], json!({"a": [1]}));
        assert_eq!(serde_json::to_value(&s).unwrap(), v);
        let mut t = v.clone();
        t["_type"] = json!("timestamp");
        let t: Timestamp = serde_json::from_value(t).unwrap();
        assert_eq!(t.meta.len(), 2);
        for missing in ["_type", "spec_version", "version", "expires", "meta"] {
            let mut bad = v.clone();
            bad.as_object_mut().unwrap().remove(missing);
            let e = serde_json::from_value::<Snapshot>(bad).unwrap_err();
            assert!(e.to_string().contains(missing), "{e}");
        }
        for (field, value) in [
            ("version", json!("7")),
            ("expires", json!("tomorrow")),
            ("meta", json!([])),
            ("_type", json!(1)),
        ] {
            let mut bad = v.clone();
            bad[field] = value;
            assert!(serde_json::from_value::<Snapshot>(bad).is_err(), "{field}");
        }
        assert!(serde_json::from_slice::<Snapshot>(
            br#"{"_type":"snapshot","spec_version":"1","version":1,"version":2,"expires":"2030-01-01T00:00:00Z","meta":{}}"#
        )
        .is_err());
    }

    #[test]
    fn meta_file_refuses_what_the_derived_reader_refused() {
        for bad in [
            json!({}),
            json!({"length": 1}),
            json!({"version": "1"}),
            json!({"version": -1}),
            json!({"version": 1.5}),
            json!({"version": 1, "length": "1"}),
            json!({"version": 1, "hashes": ["sha256"]}),
            json!([1]),
        ] {
            assert!(
                serde_json::from_value::<MetaFile>(bad.clone()).is_err(),
                "{bad}"
            );
        }
        assert!(serde_json::from_slice::<MetaFile>(br#"{"version":1,"version":2}"#).is_err());
    }
}
