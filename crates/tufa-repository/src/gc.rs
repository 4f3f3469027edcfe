//! Retention of published metadata: consistent-snapshot versions that the
//! live timestamp can no longer reach are deleted once they have been
//! superseded for longer than a grace period.
//!
//! Kept, always:
//! - `timestamp.json`, the live snapshot and every role version it lists;
//! - every `N.root.json` (clients walk the root chain from any old root);
//! - any version at or above a role's live version (a publication in
//!   progress writes its files before the snapshot that names them);
//! - files this module does not recognise.
//!
//! "Superseded for longer than the grace period" is read from file times:
//! version `v` of a role stopped being live when the next version of that
//! role on disk was written, so `v` goes once that next file's mtime is older
//! than the grace period (and therefore `v`'s own mtime is, too). A client
//! that fetched a timestamp just before a publication can still fetch what
//! it names for the whole grace period.
//!
//! Versions only move forward, so a plan stays safe while the publisher
//! keeps publishing: what it deletes was already unreachable when planned.
//! Deleting is paced (batches with pauses): removing many files at once makes
//! creating files in the same ext4 directory much slower for minutes, and the
//! publisher creates thousands.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tufa_metadata::{Metadata, Snapshot, Timestamp};

use crate::error::{Error, Result};

/// A metadata file that may be deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Garbage {
    pub name: String,
    pub role: String,
    pub version: u64,
    pub bytes: u64,
    /// How long ago the version superseding it was written.
    pub superseded_for: Duration,
}

/// What a collection would do.
#[derive(Debug, Clone, Default)]
pub struct GcPlan {
    pub timestamp_version: u64,
    pub snapshot_version: u64,
    /// Files to delete, oldest versions first.
    pub delete: Vec<Garbage>,
    /// Bytes the deletions free.
    pub bytes: u64,
    /// Files kept because the live timestamp reaches them.
    pub kept_live: usize,
    /// `N.root.json` files (always kept).
    pub kept_roots: usize,
    /// Unreachable versions superseded less than the grace period ago.
    pub kept_recent: usize,
    /// Versions above the live one (a publication in progress, or left by a crash).
    pub kept_newer: usize,
    /// Files not of the form `N.ROLE.json`, or of roles snapshot does not list.
    pub kept_other: usize,
}

/// How fast to delete.
#[derive(Debug, Clone, Copy)]
pub struct Pacing {
    /// Files deleted between pauses.
    pub batch: usize,
    pub pause: Duration,
}

impl Default for Pacing {
    /// 500 files then 250 ms: at most 2,000 files a second.
    fn default() -> Self {
        Pacing {
            batch: 500,
            pause: Duration::from_millis(250),
        }
    }
}

/// What a collection did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcOutcome {
    pub deleted: usize,
    pub bytes: u64,
    /// Planned files already gone (another collection ran at the same time).
    pub missing: usize,
}

/// Splits `N.ROLE.json` into `(N, ROLE)`.
pub fn parse_versioned_name(name: &str) -> Option<(u64, &str)> {
    let stem = name.strip_suffix(".json")?;
    let (version, role) = stem.split_once('.')?;
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) || role.is_empty() {
        return None;
    }
    Some((version.parse().ok()?, role))
}

fn read(dir: &Path, name: &str) -> Result<Vec<u8>> {
    let path = dir.join(name);
    std::fs::read(&path).map_err(|e| Error::storage(&path, e))
}

/// Plans a collection of the metadata directory `dir`: nothing is deleted.
pub fn plan(dir: &Path, grace: Duration, now: SystemTime) -> Result<GcPlan> {
    let timestamp = Metadata::<Timestamp>::from_slice(&read(dir, "timestamp.json")?)?.signed;
    let snapshot_version = timestamp.snapshot_meta()?.version;
    let snapshot_name = format!("{snapshot_version}.snapshot.json");
    let snapshot = Metadata::<Snapshot>::from_slice(&read(dir, &snapshot_name)?)?.signed;
    // The live version of every role but root and timestamp.
    let mut live: HashMap<String, u64> = HashMap::new();
    live.insert("snapshot".into(), snapshot_version);
    for (file, meta) in &snapshot.meta {
        if let Some(role) = file.strip_suffix(".json") {
            live.insert(role.to_string(), meta.version);
        }
    }

    let mut plan = GcPlan {
        timestamp_version: timestamp.version,
        snapshot_version,
        ..GcPlan::default()
    };
    // role -> version -> (name, bytes, mtime)
    let mut versions: HashMap<String, BTreeMap<u64, (String, u64, SystemTime)>> = HashMap::new();
    let entries = std::fs::read_dir(dir).map_err(|e| Error::storage(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::storage(dir, e))?;
        let Ok(name) = entry.file_name().into_string() else {
            plan.kept_other += 1;
            continue;
        };
        if name == "timestamp.json" {
            plan.kept_live += 1;
            continue;
        }
        let Some((version, role)) = parse_versioned_name(&name) else {
            plan.kept_other += 1;
            continue;
        };
        if role == "root" {
            plan.kept_roots += 1;
            continue;
        }
        let Some(&live_version) = live.get(role) else {
            plan.kept_other += 1;
            continue;
        };
        if version == live_version {
            plan.kept_live += 1;
            continue;
        }
        if version > live_version {
            plan.kept_newer += 1;
            continue;
        }
        let meta = match entry.metadata() {
            Ok(m) => m,
            // Deleted meanwhile (another collection).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::storage(&entry.path(), e)),
        };
        if !meta.is_file() {
            plan.kept_other += 1;
            continue;
        }
        let mtime = meta
            .modified()
            .map_err(|e| Error::storage(&entry.path(), e))?;
        versions
            .entry(role.to_string())
            .or_default()
            .insert(version, (name, meta.len(), mtime));
    }

    // The live file's time supersedes the newest old version.
    for (role, old) in &mut versions {
        let live_name = format!("{}.{role}.json", live[role.as_str()]);
        let live_mtime = std::fs::metadata(dir.join(&live_name))
            .and_then(|m| m.modified())
            .ok();
        let mut next_mtime = live_mtime;
        for (&version, (name, bytes, mtime)) in old.iter().rev() {
            let superseded = next_mtime.unwrap_or(now);
            let age = now.duration_since(superseded).unwrap_or(Duration::ZERO);
            if next_mtime.is_some() && age >= grace {
                plan.delete.push(Garbage {
                    name: name.clone(),
                    role: role.clone(),
                    version,
                    bytes: *bytes,
                    superseded_for: age,
                });
                plan.bytes += bytes;
            } else {
                plan.kept_recent += 1;
            }
            next_mtime = Some(*mtime);
        }
    }
    plan.delete
        .sort_by(|a, b| (a.version, &a.role).cmp(&(b.version, &b.role)));
    Ok(plan)
}

/// Deletes what `plan` lists, `pacing.batch` files at a time with a pause in
/// between; `progress` is told how many are done after each batch. Makes the
/// directory durable at the end.
pub fn execute(
    dir: &Path,
    plan: &GcPlan,
    pacing: Pacing,
    progress: &mut dyn FnMut(usize),
) -> Result<GcOutcome> {
    let mut outcome = GcOutcome::default();
    let batch = pacing.batch.max(1);
    for (i, chunk) in plan.delete.chunks(batch).enumerate() {
        if i > 0 && !pacing.pause.is_zero() {
            std::thread::sleep(pacing.pause);
        }
        for garbage in chunk {
            let path: PathBuf = dir.join(&garbage.name);
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    outcome.deleted += 1;
                    outcome.bytes += garbage.bytes;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => outcome.missing += 1,
                Err(e) => return Err(Error::storage(&path, e)),
            }
        }
        progress(outcome.deleted + outcome.missing);
    }
    if outcome.deleted > 0 {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::storage(dir, e))?;
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            parse_versioned_name("12.bins-0a.json"),
            Some((12, "bins-0a"))
        );
        assert_eq!(
            parse_versioned_name("3.project-zope.interface.json"),
            Some((3, "project-zope.interface"))
        );
        assert_eq!(parse_versioned_name("1.root.json"), Some((1, "root")));
        for bad in [
            "timestamp.json",
            ".1.x.json.tmp",
            "x.root.json",
            "1..json",
            "1.x.txt",
        ] {
            assert_eq!(parse_versioned_name(bad), None, "{bad}");
        }
    }
}
