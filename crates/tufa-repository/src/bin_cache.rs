//! The publisher's copy of what each hash bin publishes, with every target
//! already in canonical form.
//!
//! Without it, re-signing a bin reads all of the bin's rows from the state
//! store and re-encodes each one, although only the pending changes differ
//! from the last version. At PyPI's size (hundreds of targets per bin) a
//! 1,000-artifact batch would read hundreds of thousands of rows; with the
//! copy it reads the 1,000 pending ones. The copy is bounded: past its byte
//! limit it is dropped and refilled from the store as bins are needed.
//!
//! It holds exactly "published state plus the changes being published", so
//! it is only trusted by the publisher that filled it, and dropped when a
//! publication fails half-way.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use crate::error::{Error, Result};

/// A bin's targets: path to the canonical bytes of its file info.
pub(crate) type BinTargets = BTreeMap<String, Box<[u8]>>;

/// One target of a bin: (bin, path, canonical info).
pub(crate) type CachedTarget = (u32, String, Box<[u8]>);

/// Bytes counted per target beyond its path and info: the map node, the
/// string and box headers.
const ENTRY_OVERHEAD: usize = 96;

/// Canonical bytes of a stored target file info (JSON text, as the API
/// recorded it).
pub(crate) fn canonical_info(path: &str, info: &str) -> Result<Box<[u8]>> {
    let value: Value = serde_json::from_str(info)
        .map_err(|e| Error::Corrupt(format!("stored info of {path}: {e}")))?;
    if !value.is_object() {
        return Err(Error::Corrupt(format!(
            "stored info of {path} is not an object"
        )));
    }
    tufa_metadata::canonical::to_canonical_bytes(&value)
        .map(Vec::into_boxed_slice)
        .map_err(|e| Error::Corrupt(format!("stored info of {path}: {e}")))
}

/// Encodes a bin's stored rows (path, info JSON) into [`BinTargets`].
pub(crate) fn encode_bin(rows: Vec<(String, String)>) -> Result<BinTargets> {
    rows.into_iter()
        .map(|(path, info)| {
            let bytes = canonical_info(&path, &info)?;
            Ok((path, bytes))
        })
        .collect()
}

/// Bins' targets, bounded by an estimate of the memory they take.
#[derive(Debug, Default)]
pub(crate) struct BinCache {
    bins: HashMap<u32, BinTargets>,
    bytes: usize,
    limit: usize,
}

impl BinCache {
    /// An empty cache that holds up to about `limit` bytes.
    pub(crate) fn new(limit: usize) -> BinCache {
        BinCache {
            bins: HashMap::new(),
            bytes: 0,
            limit,
        }
    }

    fn entry_size(path: &str, info: &[u8]) -> usize {
        path.len() + info.len() + ENTRY_OVERHEAD
    }

    pub(crate) fn contains(&self, bin: u32) -> bool {
        self.bins.contains_key(&bin)
    }

    pub(crate) fn get(&self, bin: u32) -> Option<&BinTargets> {
        self.bins.get(&bin)
    }

    /// Adds a bin read whole from the store (replacing any copy of it).
    pub(crate) fn insert_bin(&mut self, bin: u32, targets: BinTargets) {
        let size: usize = targets.iter().map(|(p, i)| Self::entry_size(p, i)).sum();
        self.bytes += size;
        if let Some(old) = self.bins.insert(bin, targets) {
            let old_size: usize = old.iter().map(|(p, i)| Self::entry_size(p, i)).sum();
            self.bytes -= old_size;
        }
    }

    /// Replaces the whole cache with every bin of a repository of `bins`
    /// bins: those with no entry in `targets` are cached empty.
    pub(crate) fn fill(&mut self, bins: u32, targets: Vec<CachedTarget>) {
        self.clear();
        self.bins = (0..bins).map(|b| (b, BinTargets::new())).collect();
        for (bin, path, info) in targets {
            self.bytes += Self::entry_size(&path, &info);
            // Paths are unique in the store; a repeat replaces, counted once.
            if let Some(old) = self.bins.entry(bin).or_default().insert(path.clone(), info) {
                self.bytes -= Self::entry_size(&path, &old);
            }
        }
    }

    /// Applies one change to a cached bin: new info, or `None` to remove.
    /// A bin not cached is left alone (it is read whole when needed).
    pub(crate) fn apply(&mut self, bin: u32, path: &str, info: Option<Box<[u8]>>) {
        let Some(targets) = self.bins.get_mut(&bin) else {
            return;
        };
        match info {
            Some(info) => {
                let added = Self::entry_size(path, &info);
                match targets.get_mut(path) {
                    Some(old) => {
                        self.bytes = self.bytes + added - Self::entry_size(path, old);
                        *old = info;
                    }
                    None => {
                        self.bytes += added;
                        targets.insert(path.to_string(), info);
                    }
                }
            }
            None => {
                if let Some(old) = targets.remove(path) {
                    self.bytes -= Self::entry_size(path, &old);
                }
            }
        }
    }

    /// The bound, in estimated bytes.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Estimated bytes a target of this size takes in the cache.
    pub(crate) fn estimated_entry_size(path_and_info: usize) -> usize {
        path_and_info + ENTRY_OVERHEAD
    }

    /// Empties the cache.
    pub(crate) fn clear(&mut self) {
        self.bins.clear();
        self.bytes = 0;
    }

    /// Empties the cache if it holds more than its limit.
    pub(crate) fn trim(&mut self) {
        if self.bytes > self.limit {
            self.clear();
        }
    }

    /// The estimated bytes held.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(n: u64) -> Box<[u8]> {
        canonical_info(
            "p",
            &format!(r#"{{"length":{n},"hashes":{{"sha256":"{:064x}"}}}}"#, n),
        )
        .unwrap()
    }

    #[test]
    fn stored_info_becomes_canonical() {
        let bytes = canonical_info(
            "a",
            r#"{"length": 5, "hashes": {"sha256": "ab"}, "custom": {"z": 1, "a": "x\ny"}}"#,
        )
        .unwrap();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            "{\"custom\":{\"a\":\"x\ny\",\"z\":1},\"hashes\":{\"sha256\":\"ab\"},\"length\":5}"
        );
        assert!(matches!(canonical_info("a", "[1]"), Err(Error::Corrupt(_))));
        assert!(matches!(
            canonical_info("a", r#"{"length": 1.5}"#),
            Err(Error::Corrupt(_))
        ));
    }

    #[test]
    fn applies_changes_to_cached_bins_only_and_counts_bytes() {
        let mut cache = BinCache::new(1 << 20);
        cache.insert_bin(1, BinTargets::from([("a".to_string(), info(1))]));
        let start = cache.bytes();
        cache.apply(1, "b", Some(info(2)));
        cache.apply(2, "c", Some(info(3)));
        assert!(!cache.contains(2), "an uncached bin is read whole later");
        let bin = cache.get(1).unwrap();
        assert_eq!(bin.keys().collect::<Vec<_>>(), ["a", "b"]);
        cache.apply(1, "b", None);
        cache.apply(1, "missing", None);
        assert_eq!(cache.bytes(), start);
        cache.apply(1, "a", None);
        assert_eq!(cache.bytes(), 0);
    }

    #[test]
    fn fill_caches_every_bin_even_empty_ones() {
        let mut cache = BinCache::new(1 << 20);
        cache.insert_bin(9, BinTargets::new());
        cache.fill(4, vec![(1, "a".into(), info(1)), (3, "b".into(), info(2))]);
        assert!((0..4).all(|b| cache.contains(b)));
        assert!(!cache.contains(9));
        assert!(cache.get(0).unwrap().is_empty());
        assert_eq!(cache.get(3).unwrap().keys().collect::<Vec<_>>(), ["b"]);
        cache.apply(1, "a", None);
        cache.apply(3, "b", None);
        assert_eq!(cache.bytes(), 0);
    }

    #[test]
    fn trim_drops_everything_past_the_limit() {
        let mut cache = BinCache::new(200);
        cache.insert_bin(1, BinTargets::from([("a".to_string(), info(1))]));
        cache.trim();
        assert!(cache.contains(1));
        cache.insert_bin(2, BinTargets::from([("b".to_string(), info(2))]));
        cache.trim();
        assert!(!cache.contains(1) && !cache.contains(2));
        assert_eq!(cache.bytes(), 0);
    }
}
