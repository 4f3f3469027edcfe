//! The trusted metadata set: every check of the specification's client
//! workflow (section 5) that needs no I/O, in the order the workflow runs
//! them. The updater feeds it bytes (local or downloaded) and persists what
//! it accepts.
//!
//! As python-tuf's `TrustedMetadataSet`, a timestamp or snapshot that is
//! signed correctly but expired (or, for snapshot, not the version timestamp
//! lists) is still kept as *intermediate* metadata: it cannot be used to go
//! further, but it is what a newer download is checked against for rollback.

use std::collections::{BTreeMap, BTreeSet};

use tufa_metadata::{Key, RawMetadata, Role, Root, Snapshot, Targets, Timestamp, UtcTime};

use super::error::Error;

/// What happened to a new timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimestampUpdate {
    /// The new timestamp is now trusted.
    Updated,
    /// Same version as the trusted one: the trusted one stays, nothing changed.
    Unchanged,
}

/// The metadata trusted so far in one update.
#[derive(Debug)]
pub(crate) struct TrustedSet {
    reference_time: UtcTime,
    root: Root,
    timestamp: Option<Timestamp>,
    snapshot: Option<Snapshot>,
    /// Top-level `targets` and delegated roles, by role name.
    targets: BTreeMap<String, Targets>,
    /// `(delegator, role)` pairs verified so far.
    delegations: BTreeSet<(String, String)>,
}

fn parse(role: &str, bytes: &[u8]) -> Result<RawMetadata, Error> {
    RawMetadata::from_slice(role, bytes).map_err(|source| Error::Invalid {
        role: role.to_string(),
        source: Box::new(source),
    })
}

fn typed<T: Role>(role: &str, raw: RawMetadata) -> Result<T, Error> {
    raw.into_metadata::<T>(role)
        .map(|m| m.signed)
        .map_err(|source| Error::Invalid {
            role: role.to_string(),
            source: Box::new(source),
        })
}

fn verify_by_root(root: &Root, role: &str, raw: &RawMetadata) -> Result<(), Error> {
    root.verify_role(role, raw)
        .map(|_| ())
        .map_err(|source| Error::Signatures {
            role: role.to_string(),
            by: format!("root version {}", root.version),
            source: Box::new(source),
        })
}

impl TrustedSet {
    /// Loads the trusted root: it must be signed by a threshold of its own
    /// root keys. Its expiry does not matter yet (the chain may replace it).
    pub(crate) fn new(root_bytes: &[u8], reference_time: UtcTime) -> Result<TrustedSet, Error> {
        let raw = parse("root", root_bytes)?;
        let root: Root = typed("root", raw.clone())?;
        verify_by_root(&root, "root", &raw)?;
        Ok(TrustedSet {
            reference_time,
            root,
            timestamp: None,
            snapshot: None,
            targets: BTreeMap::new(),
            delegations: BTreeSet::new(),
        })
    }

    pub(crate) fn reference_time(&self) -> UtcTime {
        self.reference_time
    }

    pub(crate) fn root(&self) -> &Root {
        &self.root
    }

    pub(crate) fn timestamp(&self) -> Option<&Timestamp> {
        self.timestamp.as_ref()
    }

    pub(crate) fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    pub(crate) fn targets(&self, role: &str) -> Option<&Targets> {
        self.targets.get(role)
    }

    /// Whether `role` is trusted as verified against `delegator`.
    pub(crate) fn contains(&self, role: &str, delegator: &str) -> bool {
        self.delegations
            .contains(&(delegator.to_string(), role.to_string()))
    }

    /// Step 5.3: root version N+1, signed by a threshold of root N's keys and
    /// of its own. Expiry is checked only for the final root.
    pub(crate) fn update_root(&mut self, bytes: &[u8]) -> Result<(), Error> {
        if self.timestamp.is_some() {
            return Err(Error::Config(
                "root cannot be updated after timestamp".into(),
            ));
        }
        let raw = parse("root", bytes)?;
        verify_by_root(&self.root, "root", &raw)?;
        let new: Root = typed("root", raw.clone())?;
        let expected = self.root.version + 1;
        if new.version != expected {
            return Err(if new.version <= self.root.version {
                Error::Rollback {
                    role: "root".into(),
                    trusted: self.root.version,
                    found: new.version,
                }
            } else {
                Error::VersionMismatch {
                    role: "root".into(),
                    expected,
                    found: new.version,
                }
            });
        }
        verify_by_root(&new, "root", &raw)?;
        self.root = new;
        Ok(())
    }

    /// Step 5.3.10: the final root must not be expired.
    pub(crate) fn check_final_root(&self) -> Result<(), Error> {
        check_expiry("root", &self.root, self.reference_time)
    }

    /// Step 5.4. A lower version is a rollback; an equal version leaves the
    /// trusted timestamp in place; the snapshot version it lists must not go
    /// down. An expired timestamp is kept as intermediate and reported.
    pub(crate) fn update_timestamp(&mut self, bytes: &[u8]) -> Result<TimestampUpdate, Error> {
        if self.snapshot.is_some() {
            return Err(Error::Config(
                "timestamp cannot be updated after snapshot".into(),
            ));
        }
        self.check_final_root()?;
        let raw = parse("timestamp", bytes)?;
        verify_by_root(&self.root, "timestamp", &raw)?;
        let new: Timestamp = typed("timestamp", raw)?;
        let new_snapshot = snapshot_meta_version(&new)?;
        if let Some(trusted) = &self.timestamp {
            if new.version < trusted.version {
                return Err(Error::Rollback {
                    role: "timestamp".into(),
                    trusted: trusted.version,
                    found: new.version,
                });
            }
            if new.version == trusted.version {
                return Ok(TimestampUpdate::Unchanged);
            }
            let trusted_snapshot = snapshot_meta_version(trusted)?;
            if new_snapshot < trusted_snapshot {
                return Err(Error::Rollback {
                    role: "snapshot".into(),
                    trusted: trusted_snapshot,
                    found: new_snapshot,
                });
            }
        }
        self.timestamp = Some(new);
        self.check_final_timestamp()?;
        Ok(TimestampUpdate::Updated)
    }

    /// The trusted timestamp exists and is not expired.
    pub(crate) fn check_final_timestamp(&self) -> Result<&Timestamp, Error> {
        let timestamp = self
            .timestamp
            .as_ref()
            .ok_or_else(|| Error::Config("no trusted timestamp".into()))?;
        check_expiry("timestamp", timestamp, self.reference_time)?;
        Ok(timestamp)
    }

    /// Step 5.5. Length and hashes from timestamp are checked before the
    /// signatures (skipped for a copy this client verified before, whose
    /// hashes may since have changed: it is only used if it is still the
    /// version timestamp lists). No role the trusted snapshot lists may go
    /// down in version or disappear. An expired snapshot, or one of another
    /// version than timestamp lists, is kept as intermediate and reported.
    pub(crate) fn update_snapshot(&mut self, bytes: &[u8], local: bool) -> Result<(), Error> {
        if self.targets.contains_key("targets") {
            return Err(Error::Config(
                "snapshot cannot be updated after targets".into(),
            ));
        }
        let timestamp = self.check_final_timestamp()?;
        let meta = timestamp.snapshot_meta().map_err(|source| Error::Invalid {
            role: "timestamp".into(),
            source: Box::new(source),
        })?;
        if !local {
            meta.verify_data("snapshot", bytes)
                .map_err(|source| Error::LengthOrHash {
                    what: "snapshot".into(),
                    source: Box::new(source),
                })?;
        }
        let raw = parse("snapshot", bytes)?;
        verify_by_root(&self.root, "snapshot", &raw)?;
        let new: Snapshot = typed("snapshot", raw)?;
        if let Some(trusted) = &self.snapshot {
            for (name, old) in &trusted.meta {
                let role = name.strip_suffix(".json").unwrap_or(name);
                let Some(now) = new.meta.get(name) else {
                    return Err(Error::RoleRemoved {
                        role: role.to_string(),
                        snapshot_version: new.version,
                    });
                };
                if now.version < old.version {
                    return Err(Error::Rollback {
                        role: role.to_string(),
                        trusted: old.version,
                        found: now.version,
                    });
                }
            }
        }
        self.snapshot = Some(new);
        self.check_final_snapshot()?;
        Ok(())
    }

    /// The trusted snapshot exists, is not expired, and is the version the
    /// trusted timestamp lists.
    pub(crate) fn check_final_snapshot(&self) -> Result<&Snapshot, Error> {
        let snapshot = self
            .snapshot
            .as_ref()
            .ok_or_else(|| Error::Config("no trusted snapshot".into()))?;
        check_expiry("snapshot", snapshot, self.reference_time)?;
        let timestamp = self.check_final_timestamp()?;
        let expected = snapshot_meta_version(timestamp)?;
        if snapshot.version != expected {
            return Err(Error::VersionMismatch {
                role: "snapshot".into(),
                expected,
                found: snapshot.version,
            });
        }
        Ok(snapshot)
    }

    /// Steps 5.6 and 5.6.7: top-level targets (delegator `root`) or a
    /// delegated role, checked against the length and hashes snapshot lists,
    /// signed by a threshold of the delegator's keys for it, the version
    /// snapshot lists, and not expired.
    pub(crate) fn update_delegated_targets(
        &mut self,
        bytes: &[u8],
        role: &str,
        delegator: &str,
    ) -> Result<Targets, Error> {
        let snapshot = self.check_final_snapshot()?;
        let meta = snapshot
            .role_meta(role)
            .ok_or_else(|| Error::NotInSnapshot {
                role: role.to_string(),
                snapshot_version: snapshot.version,
            })?
            .clone();
        meta.verify_data(role, bytes)
            .map_err(|source| Error::LengthOrHash {
                what: role.to_string(),
                source: Box::new(source),
            })?;
        let raw = parse(role, bytes)?;
        if delegator == "root" {
            verify_by_root(&self.root, role, &raw)?;
        } else {
            let parent = self.targets.get(delegator).ok_or_else(|| {
                Error::Config(format!("{role}: delegator {delegator} is not trusted yet"))
            })?;
            parent
                .verify_delegate(delegator, role, &raw)
                .map_err(|source| Error::Signatures {
                    role: role.to_string(),
                    by: delegator.to_string(),
                    source: Box::new(source),
                })?;
        }
        let new: Targets = typed(role, raw)?;
        if new.version != meta.version {
            return Err(Error::VersionMismatch {
                role: role.to_string(),
                expected: meta.version,
                found: new.version,
            });
        }
        check_expiry(role, &new, self.reference_time)?;
        self.targets.insert(role.to_string(), new.clone());
        self.delegations
            .insert((delegator.to_string(), role.to_string()));
        Ok(new)
    }
}

fn snapshot_meta_version(timestamp: &Timestamp) -> Result<u64, Error> {
    timestamp
        .snapshot_meta()
        .map(|m| m.version)
        .map_err(|source| Error::Invalid {
            role: "timestamp".into(),
            source: Box::new(source),
        })
}

fn check_expiry<T: Role>(role: &str, signed: &T, reference_time: UtcTime) -> Result<(), Error> {
    if signed.is_expired(reference_time) {
        return Err(Error::Expired {
            role: role.to_string(),
            version: signed.version(),
            expires: signed.expires(),
            reference_time,
        });
    }
    Ok(())
}

/// Whether `role`'s keys or threshold differ between two roots (step
/// 5.3.11). The order keyids are listed in does not matter; a keyid whose
/// key object changed does.
pub(crate) fn role_keys_changed(old: &Root, new: &Root, role: &str) -> bool {
    type Authorised = (u64, BTreeMap<String, Option<Key>>);
    let keys = |root: &Root| -> Option<Authorised> {
        let r = root.roles.get(role)?;
        let k = r
            .keyids
            .iter()
            .map(|id| (id.clone(), root.keys.get(id).cloned()))
            .collect();
        Some((r.threshold, k))
    };
    keys(old) != keys(new)
}
