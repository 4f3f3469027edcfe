//! The publisher: the one sequential writer of a repository's metadata.
//!
//! Each step coalesces every pending change into one publication: the
//! affected bins rebuilt from the state store and signed in parallel, written
//! and made durable, then one snapshot, then one timestamp. Roles close to
//! expiry are re-signed in the same way, so freshness is just another reason
//! to publish. Versions always move forward past anything already in storage,
//! so a crash between writing files and recording them is repaired by the
//! next publication.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use futures_util::FutureExt;
use rayon::prelude::*;
use serde_json::Map;
use tufa_metadata::{
    Delegations, Key, MetaFile, Metadata, Root, Signer, Snapshot, SuccinctRoles, Targets,
    Timestamp, UtcTime,
};

use crate::bin_cache::{BinCache, BinTargets, canonical_info, encode_bin};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::settings::{
    CLAIMED, Layout, OfflineRoles, RECENTLY_CLAIMED, RepositorySettings, UNCLAIMED,
};
use crate::storage::Storage;
use crate::store::{LogReadAhead, PendingChange, RoleVersion, Store};

/// Bins built, signed and written at a time: bounds memory during a
/// publication of every bin of a large repository.
const PUBLISH_CHUNK_BINS: usize = 1024;

/// Pending changes a publication holds in memory at most. A larger batch
/// (an import of millions of files) is published from the store bin by bin,
/// without the publisher's copy of the bins, so memory stays bounded.
const PENDING_IN_MEMORY: usize = 250_000;

/// The default bound of the publisher's copy of the bins (see [`crate::bin_cache`]):
/// about a million targets.
pub const DEFAULT_BIN_CACHE_BYTES: usize = 256 << 20;

/// The prefix of bin role names, as RSTUF and PEP 458 name them.
pub const BINS_PREFIX: &str = "bins";

/// What one publication did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Publication {
    pub snapshot_version: u64,
    pub timestamp_version: u64,
    pub bins_signed: usize,
    pub artifact_changes: usize,
    pub tasks_completed: u64,
    pub millis: u128,
}

/// The publisher's view of the repository.
pub struct Publisher {
    store: Store,
    storage: Storage,
    /// Every online key that signs: one, or two during an online-key rotation.
    signers: Vec<Arc<dyn Signer>>,
    settings: RepositorySettings,
    /// The public online keys the targets role delegates the bins to.
    online_keys: BTreeMap<String, Key>,
    succinct: SuccinctRoles,
    roles: BTreeMap<String, RoleVersion>,
    /// pep480: the project roles recently-claimed lists.
    projects: BTreeMap<String, crate::delegations::ProjectRole>,
    /// Roles to re-sign in the next step whatever their expiry.
    forced: BTreeSet<String>,
    /// Roles written since they were last recorded in the store.
    touched: BTreeSet<String>,
    /// What each bin publishes, so a publication reads only pending changes.
    cache: BinCache,
    /// Whether the cache was offered the whole repository yet (once per publisher).
    cache_primed: bool,
    clock: Clock,
    /// The publisher lease this publisher works under (see [`Store::claim_publisher`]).
    epoch: i64,
    /// Moving the changes of the last publication out of the log, in the
    /// background: its tasks have succeeded, and the next batch reads only
    /// changes past the published mark.
    merging: Option<tokio::task::JoinHandle<Result<()>>>,
    /// Changes read from the log while resting, for the next batch.
    ahead: LogReadAhead,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("bins", &self.settings.number_of_delegated_bins)
            .finish_non_exhaustive()
    }
}

/// How long before expiry a role is re-signed: a quarter of its lifetime or
/// one hour, whichever is smaller.
pub fn resign_margin(lifetime_seconds: i64) -> i64 {
    (lifetime_seconds / 4).min(3600)
}

impl Publisher {
    /// A publisher for a bootstrapped repository whose current root is `root`.
    pub async fn new(
        store: Store,
        storage: Storage,
        signer: Arc<dyn Signer>,
        settings: RepositorySettings,
        root: &Root,
        clock: Clock,
        epoch: i64,
    ) -> Result<Publisher> {
        if signer.keyid() != settings.online_keyid {
            return Err(Error::OnlineKey(format!(
                "root names online key {}, but the key available is {}",
                settings.online_keyid,
                signer.keyid()
            )));
        }
        let online_key = root
            .keys
            .get(&settings.online_keyid)
            .cloned()
            .ok_or_else(|| Error::Corrupt("root does not list the online key".into()))?;
        let succinct = SuccinctRoles {
            keyids: vec![settings.online_keyid.clone()],
            threshold: 1,
            bit_length: settings.bit_length(),
            name_prefix: BINS_PREFIX.into(),
            unrecognized: Map::new(),
        };
        let mut publisher = Publisher {
            store,
            storage,
            signers: vec![signer],
            online_keys: BTreeMap::from([(settings.online_keyid.clone(), online_key)]),
            settings,
            succinct,
            roles: BTreeMap::new(),
            projects: BTreeMap::new(),
            forced: BTreeSet::new(),
            touched: BTreeSet::new(),
            cache: BinCache::new(DEFAULT_BIN_CACHE_BYTES),
            cache_primed: false,
            clock,
            epoch,
            merging: None,
            ahead: LogReadAhead::default(),
        };
        publisher.roles = publisher.store.roles().await?;
        publisher.reconcile_with_storage().await?;
        Ok(publisher)
    }

    /// Raises recorded versions to what storage already publishes, so that no
    /// version is ever written twice with different content after a crash or
    /// a takeover: from the live timestamp, and from any newer snapshot a
    /// publisher wrote but did not get to name in a timestamp.
    async fn reconcile_with_storage(&mut self) -> Result<()> {
        let Some(bytes) = self.storage.read("timestamp.json").await? else {
            return Ok(());
        };
        let timestamp = Metadata::<Timestamp>::from_slice(&bytes)?.signed;
        self.raise("timestamp", timestamp.version);
        let mut snapshot_version = timestamp.snapshot_meta()?.version;
        // Publications are sequential, so at most one unnamed snapshot can
        // exist per crashed publisher; the bound only guards against a loop.
        for _ in 0..64 {
            let next = snapshot_version + 1;
            if !self
                .storage
                .exists(&format!("{next}.snapshot.json"))
                .await?
            {
                break;
            }
            snapshot_version = next;
        }
        self.raise("snapshot", snapshot_version);
        if let Some(bytes) = self
            .storage
            .read(&format!("{snapshot_version}.snapshot.json"))
            .await?
        {
            let snapshot = Metadata::<Snapshot>::from_slice(&bytes)?.signed;
            for (file, meta) in &snapshot.meta {
                if let Some(role) = file.strip_suffix(".json") {
                    self.raise(role, meta.version);
                }
            }
        }
        Ok(())
    }

    fn raise(&mut self, role: &str, version: u64) {
        let entry = self.roles.entry(role.to_string()).or_insert(RoleVersion {
            version,
            expires: 0,
        });
        if entry.version < version {
            // Expiry unknown: treat as due, so it is re-signed soon.
            *entry = RoleVersion {
                version,
                expires: 0,
            };
        }
    }

    /// The repository's layout.
    pub fn layout(&self) -> Layout {
        self.settings.layout
    }

    /// Writes the first metadata of a freshly bootstrapped repository; for
    /// pep480 also the offline roles, as their signers made them.
    pub async fn write_initial(
        &mut self,
        root: &Metadata<Root>,
        offline: Option<&OfflineRoles>,
    ) -> Result<()> {
        let root_bytes = root.to_bytes()?;
        self.storage.write_once("1.root.json", root_bytes).await?;
        self.roles.insert(
            "root".into(),
            RoleVersion {
                version: 1,
                expires: root.signed.expires.unix(),
            },
        );
        if let Some(offline) = offline {
            for (name, value) in [("targets", &offline.targets), (CLAIMED, &offline.claimed)] {
                self.write_offline(name, value).await?;
            }
        }
        let all_bins: BTreeSet<u32> = (0..self.settings.number_of_delegated_bins).collect();
        self.publish(&all_bins, true, 0, Some(Arc::default()), self.clock.now())
            .await?;
        self.touched.clear();
        let roles: Vec<(String, RoleVersion)> =
            self.roles.iter().map(|(k, v)| (k.clone(), *v)).collect();
        self.store
            .finish_publication(0, &roles, self.epoch, None)
            .await?;
        Ok(())
    }

    /// Publishes an offline role as given: the canonical JSON of the whole
    /// document (the bytes its signatures are over, plus the signatures),
    /// never re-signed here.
    async fn write_offline(&mut self, name: &str, value: &serde_json::Value) -> Result<()> {
        let md: Metadata<Targets> =
            tufa_metadata::RawMetadata::from_value(name, value.clone())?.into_metadata(name)?;
        let bytes = tufa_metadata::canonical::to_json_bytes(value)?;
        let version = md.signed.version;
        self.storage
            .write_once(&format!("{version}.{name}.json"), bytes)
            .await?;
        self.roles.insert(
            name.to_string(),
            RoleVersion {
                version,
                expires: md.signed.expires.unix(),
            },
        );
        Ok(())
    }

    /// Adds a second online key (the first step of a rotation): every role is
    /// then signed by both, and targets delegates the bins to both.
    pub fn add_online_key(&mut self, signer: Arc<dyn Signer>, key: Key) {
        self.online_keys.insert(signer.keyid().to_string(), key);
        self.succinct.keyids = self.online_keys.keys().cloned().collect();
        self.signers.push(signer);
    }

    /// Keeps only the online key `keyid` (the last step of a rotation).
    pub fn retire_online_keys_except(&mut self, keyid: &str) {
        self.signers.retain(|s| s.keyid() == keyid);
        self.online_keys.retain(|k, _| k == keyid);
        self.succinct.keyids = vec![keyid.to_string()];
    }

    /// Replaces the settings (after a root update).
    pub fn set_settings(&mut self, settings: RepositorySettings) {
        self.settings = settings;
    }

    /// Re-signs every online role now, publishing nothing new: targets, all
    /// bins, snapshot, timestamp.
    pub async fn resign_all(&mut self) -> Result<Publication> {
        let all_bins: BTreeSet<u32> = (0..self.settings.number_of_delegated_bins).collect();
        let publication = self
            .publish(&all_bins, true, 0, Some(Arc::default()), self.clock.now())
            .await?;
        self.touched.clear();
        let roles: Vec<(String, RoleVersion)> =
            self.roles.iter().map(|(k, v)| (k.clone(), *v)).collect();
        self.store
            .finish_publication(0, &roles, self.epoch, None)
            .await?;
        Ok(publication)
    }

    /// Writes root N+1, durable, after the online roles it needs are published.
    pub async fn publish_root(&mut self, root: &Metadata<Root>) -> Result<()> {
        let file = format!("{}.root.json", root.signed.version);
        let bytes = root.to_bytes()?;
        self.storage.write_once(&file, bytes).await?;
        self.roles.insert(
            "root".into(),
            RoleVersion {
                version: root.signed.version,
                expires: root.signed.expires.unix(),
            },
        );
        Ok(())
    }

    /// Makes the next step re-sign `roles` (`bins` for all bins; empty for
    /// every online role).
    pub fn force(&mut self, roles: &[String]) {
        if roles.is_empty() {
            let delegating: &[&str] = match self.settings.layout {
                Layout::Pep458 => &["targets"],
                Layout::Pep480 => &[UNCLAIMED, RECENTLY_CLAIMED],
            };
            self.forced.extend(
                delegating
                    .iter()
                    .chain(&["bins", "snapshot", "timestamp"])
                    .map(|r| r.to_string()),
            );
        } else {
            self.forced.extend(roles.iter().cloned());
        }
    }

    fn expiring(&self, role: &str, now: UtcTime) -> bool {
        if self.forced.contains(role)
            || (self.forced.contains("bins") && self.succinct.is_delegated_role(role))
        {
            return true;
        }
        let lifetime = self.settings.expiration.seconds(role);
        match self.roles.get(role) {
            None => true,
            Some(r) => r.expires - now.unix() <= resign_margin(lifetime),
        }
    }

    /// Starts moving the changes recorded as published out of the log
    /// ([`Store::merge_published_log`]), unless that is already under way.
    /// A failure loses nothing: the changes stay in the log, readers of the
    /// published state look there, and the next start retries.
    fn start_merge(&mut self) {
        if let Some(running) = &self.merging
            && !running.is_finished()
        {
            return;
        }
        if let Some(done) = self.merging.take() {
            log_merge_failure(done.now_or_never());
        }
        let store = self.store.clone();
        self.merging = Some(tokio::spawn(
            async move { store.merge_published_log().await },
        ));
    }

    /// Waits until the log holds no published change, before bins are read
    /// from `artifacts` (which would otherwise miss them).
    async fn finish_merge(&mut self) -> Result<()> {
        if let Some(running) = self.merging.take() {
            log_merge_failure(Some(running.await));
        }
        self.store.merge_published_log().await
    }

    /// Reads the changes logged since the last call, so that the next
    /// batch has only the rest to read: called while resting between
    /// publications. A failure only means the batch reads them itself.
    pub async fn read_ahead(&mut self) {
        if let Err(e) = self
            .store
            .read_log_ahead(&mut self.ahead, PENDING_IN_MEMORY)
            .await
        {
            tracing::debug!(error = %e, "reading the log ahead failed");
            self.ahead = LogReadAhead::default();
        }
    }

    /// One publication if anything is pending or due; `None` when idle.
    pub async fn step(&mut self) -> Result<Option<Publication>> {
        self.start_merge();
        let started = Instant::now();
        let now = self.clock.now();
        let ahead = std::mem::take(&mut self.ahead);
        let batch = self
            .store
            .pending_batch_after(PENDING_IN_MEMORY, ahead)
            .await?;
        let pending = batch.pending.map(Arc::new);
        let batch_read = started.elapsed();
        let mut bins = batch.bins.clone();
        for n in 0..self.settings.number_of_delegated_bins {
            if self.expiring(&self.succinct.bin_name(u64::from(n)), now) {
                bins.insert(n);
            }
        }
        // The online roles above the bins: targets (pep458), or unclaimed
        // and recently-claimed (pep480, whose targets and claimed are offline).
        let targets_due = match self.settings.layout {
            Layout::Pep458 => self.expiring("targets", now),
            Layout::Pep480 => self.expiring(UNCLAIMED, now) || self.expiring(RECENTLY_CLAIMED, now),
        };
        let due = !bins.is_empty()
            || targets_due
            || self.expiring("snapshot", now)
            || self.expiring("timestamp", now);
        if !due && batch.tasks == 0 {
            return Ok(None);
        }
        let publication = if due {
            self.publish(&bins, targets_due, batch.max_seq, pending.clone(), now)
                .await?
        } else {
            // Tasks whose changes were already published (superseded or empty).
            Publication::default()
        };
        let roles = self.changed_roles(&publication);
        let recording = Instant::now();
        let finished = self
            .store
            .finish_publication(
                batch.max_seq,
                &roles,
                self.epoch,
                pending.as_deref().map(Vec::as_slice),
            )
            .await;
        let tasks_completed = match finished {
            Ok(n) => n,
            Err(e) => {
                // The copy of the bins holds changes the store does not
                // record as published: read the bins afresh next time.
                self.cache.clear();
                return Err(e);
            }
        };
        self.start_merge();
        tracing::debug!(
            changes = batch.changes,
            batch_read_ms = batch_read.as_millis(),
            record_ms = recording.elapsed().as_millis(),
            "publication step"
        );
        Ok(Some(Publication {
            tasks_completed,
            artifact_changes: batch.changes,
            // The whole step: reading the batch, publishing, recording it.
            millis: started.elapsed().as_millis(),
            ..publication
        }))
    }

    /// Every role the last publication touched, to record in the store:
    /// only those, so a 1,000-artifact batch writes about 1,000 rows, not 16,384.
    fn changed_roles(&mut self, publication: &Publication) -> Vec<(String, RoleVersion)> {
        let touched = std::mem::take(&mut self.touched);
        if publication.timestamp_version == 0 {
            return Vec::new();
        }
        touched
            .into_iter()
            .filter_map(|name| self.roles.get(&name).map(|v| (name, *v)))
            .collect()
    }

    /// Signs and writes `bins` (and the online delegating roles if asked:
    /// targets, or unclaimed and recently-claimed), then snapshot and timestamp.
    ///
    /// `pending`: the batch's changes, to apply to the publisher's copy of
    /// the bins; `None` when there were too many to hold, and the bins are
    /// then read whole from the store, a chunk at a time.
    async fn publish(
        &mut self,
        bins: &BTreeSet<u32>,
        with_targets: bool,
        max_seq: i64,
        pending: Option<Arc<Vec<PendingChange>>>,
        now: UtcTime,
    ) -> Result<Publication> {
        let result = self
            .publish_inner(bins, with_targets, max_seq, pending, now)
            .await;
        if result.is_err() {
            // Half a publication may be in the copy of the bins.
            self.cache.clear();
        }
        result
    }

    async fn publish_inner(
        &mut self,
        bins: &BTreeSet<u32>,
        with_targets: bool,
        max_seq: i64,
        pending: Option<Arc<Vec<PendingChange>>>,
        now: UtcTime,
    ) -> Result<Publication> {
        let started = Instant::now();
        let bin_list: Vec<u32> = bins.iter().copied().collect();
        let bins_expires = now.plus_seconds(self.settings.expiration.seconds("bins"));
        let use_cache = pending.is_some();
        if !use_cache {
            // Offer the repository to the cache again after this one.
            self.cache.clear();
            self.cache_primed = false;
        }
        let mut phases = Phases::default();
        if use_cache && !self.cache_primed {
            let t = Instant::now();
            self.finish_merge().await?;
            self.prime_cache().await?;
            phases.read += t.elapsed();
        }
        let mut changes_by_bin = match pending {
            Some(pending) => tokio::task::spawn_blocking(move || encode_changes(&pending))
                .await
                .map_err(|e| Error::Corrupt(format!("encoding task failed: {e}")))??,
            None => HashMap::new(),
        };

        // Bins are built, signed and written a chunk at a time, so memory
        // stays bounded however many targets the repository holds; all the
        // files are made durable together before the snapshot names them.
        let mut written: Vec<(String, RoleVersion, String)> =
            Vec::with_capacity(bin_list.len() + 1);
        let mut kept: Vec<(String, Vec<u8>)> = Vec::new();
        for chunk in bin_list.chunks(PUBLISH_CHUNK_BINS) {
            let missing: Vec<u32> = chunk
                .iter()
                .copied()
                .filter(|&b| !self.cache.contains(b))
                .collect();
            let t = Instant::now();
            let loaded = if missing.is_empty() {
                BTreeMap::new()
            } else {
                self.finish_merge().await?;
                self.store.bin_contents(&missing, max_seq).await?
            };
            phases.read += t.elapsed();
            let t = Instant::now();
            let changes: Vec<(u32, Vec<EncodedChange>)> = chunk
                .iter()
                .filter_map(|b| changes_by_bin.remove(b).map(|c| (*b, c)))
                .collect();
            let roles: Vec<(u32, String, u64)> = chunk
                .iter()
                .map(|&b| {
                    let name = self.succinct.bin_name(u64::from(b));
                    let version = self.next_version(&name);
                    (b, name, version)
                })
                .collect();
            let cache = std::mem::take(&mut self.cache);
            let storage = self.storage.clone();
            let signers = self.signers.clone();
            let (cache, signed) = tokio::task::spawn_blocking(move || {
                sign_bins(
                    cache,
                    loaded,
                    changes,
                    &roles,
                    bins_expires,
                    &signers,
                    &storage,
                    use_cache,
                )
            })
            .await
            .map_err(|e| Error::Corrupt(format!("signing task failed: {e}")))?;
            self.cache = cache;
            phases.sign += t.elapsed();
            let (files, to_upload) = signed?;
            written.extend(files);
            // An object store uploads each chunk at once, so memory stays bounded.
            if !to_upload.is_empty() {
                self.storage.finish_files(to_upload, Vec::new()).await?;
            }
        }
        if with_targets {
            let bins_delegator = match self.settings.layout {
                Layout::Pep458 => "targets",
                Layout::Pep480 => UNCLAIMED,
            };
            let mut targets =
                Targets::new(now.plus_seconds(self.settings.expiration.seconds(bins_delegator)));
            targets.version = self.next_version(bins_delegator);
            targets.delegations = Some(Delegations {
                keys: self.online_keys.clone(),
                roles: None,
                succinct_roles: Some(self.succinct.clone()),
                unrecognized: Map::new(),
            });
            let mut roles = vec![(bins_delegator.to_string(), targets)];
            if self.settings.layout == Layout::Pep480 {
                let mut recent = Targets::new(
                    now.plus_seconds(self.settings.expiration.seconds(RECENTLY_CLAIMED)),
                );
                recent.version = self.next_version(RECENTLY_CLAIMED);
                recent.delegations = Some(self.recently_claimed_delegations());
                roles.push((RECENTLY_CLAIMED.to_string(), recent));
            }
            let (files, to_upload) = self.sign_and_write(roles).await?;
            written.extend(files);
            kept.extend(to_upload);
        }
        let files: Vec<String> = written.iter().map(|(_, _, f)| f.clone()).collect();
        let t = Instant::now();
        self.storage.finish_files(kept, files).await?;
        phases.sync = t.elapsed();
        let bins_signed = written
            .iter()
            .filter(|(n, _, _)| !matches!(n.as_str(), "targets" | UNCLAIMED | RECENTLY_CLAIMED))
            .count();
        for (name, version, _) in written {
            self.touched.insert(name.clone());
            self.roles.insert(name, version);
        }

        // Snapshot: every targets role, version only.
        let mut snapshot =
            Snapshot::new(now.plus_seconds(self.settings.expiration.seconds("snapshot")));
        snapshot.version = self.next_version("snapshot");
        for (name, role) in &self.roles {
            if !matches!(name.as_str(), "root" | "snapshot" | "timestamp") {
                snapshot
                    .meta
                    .insert(format!("{name}.json"), MetaFile::new(role.version));
            }
        }
        let snapshot_version = RoleVersion {
            version: snapshot.version,
            expires: snapshot.expires.unix(),
        };
        let mut timestamp = Timestamp::new(
            now.plus_seconds(self.settings.expiration.seconds("timestamp")),
            MetaFile::new(snapshot.version),
        );
        timestamp.version = self.next_version("timestamp");
        let timestamp_version = RoleVersion {
            version: timestamp.version,
            expires: timestamp.expires.unix(),
        };

        let signers = self.signers.clone();
        let (snapshot_bytes, timestamp_bytes) =
            tokio::task::spawn_blocking(move || -> Result<(Vec<u8>, Vec<u8>)> {
                let mut snapshot = Metadata::new(snapshot);
                let mut timestamp = Metadata::new(timestamp);
                for signer in &signers {
                    snapshot.sign(signer.as_ref())?;
                    timestamp.sign(signer.as_ref())?;
                }
                Ok((snapshot.to_bytes()?, timestamp.to_bytes()?))
            })
            .await
            .map_err(|e| Error::Corrupt(format!("signing task failed: {e}")))??;
        // A snapshot version is written once: if another publisher got
        // there first, this publication stops here, before its timestamp.
        self.storage
            .write_once(
                &format!("{}.snapshot.json", snapshot_version.version),
                snapshot_bytes,
            )
            .await?;
        // The last check before clients can see anything of this publication.
        self.store.check_publisher(self.epoch).await?;
        self.storage
            .write_durable("timestamp.json", timestamp_bytes)
            .await?;
        self.roles.insert("snapshot".into(), snapshot_version);
        self.roles.insert("timestamp".into(), timestamp_version);
        self.touched
            .extend(["snapshot".to_string(), "timestamp".to_string()]);

        tracing::debug!(
            bins = bin_list.len(),
            read_ms = phases.read.as_millis(),
            sign_and_write_ms = phases.sign.as_millis(),
            sync_ms = phases.sync.as_millis(),
            total_ms = started.elapsed().as_millis(),
            "publication phases"
        );
        Ok(Publication {
            snapshot_version: snapshot_version.version,
            timestamp_version: timestamp_version.version,
            bins_signed,
            artifact_changes: 0,
            tasks_completed: 0,
            millis: started.elapsed().as_millis(),
        })
    }

    /// Fills the copy of the bins with the whole published repository in
    /// one scan, if it fits (a new or small repository): then no bin is ever
    /// read on its own, and empty bins are known to be empty. A larger one
    /// is read a bin at a time as publications need the bins.
    async fn prime_cache(&mut self) -> Result<()> {
        self.cache_primed = true;
        // Room for the raw rows and their encoding side by side.
        let max_rows = self.cache.limit() / BinCache::estimated_entry_size(400);
        let Some(rows) = self.store.published_targets(max_rows).await? else {
            return Ok(());
        };
        let bins = self.settings.number_of_delegated_bins;
        let cache = std::mem::take(&mut self.cache);
        let (cache, result) = tokio::task::spawn_blocking(move || {
            let mut cache = cache;
            let encoded: Result<Vec<crate::bin_cache::CachedTarget>> = rows
                .into_par_iter()
                .map(|(bin, path, info)| {
                    let bytes = canonical_info(&path, &info)?;
                    Ok((bin, path, bytes))
                })
                .collect();
            let result = encoded.map(|targets| cache.fill(bins, targets));
            (cache, result)
        })
        .await
        .map_err(|e| Error::Corrupt(format!("encoding task failed: {e}")))?;
        self.cache = cache;
        result
    }

    /// Signs targets roles in parallel and writes them to a directory (not
    /// yet durable), or returns their bytes for an object store to upload.
    async fn sign_and_write(
        &self,
        roles: Vec<(String, Targets)>,
    ) -> Result<(Vec<(String, RoleVersion, String)>, Vec<(String, Vec<u8>)>)> {
        let storage = self.storage.clone();
        let signers = self.signers.clone();
        type Signed = (String, RoleVersion, String, Option<(String, Vec<u8>)>);
        let signed = tokio::task::spawn_blocking(move || -> Result<Vec<Signed>> {
            roles
                .into_par_iter()
                .map(|(name, targets)| {
                    let version = RoleVersion {
                        version: targets.version,
                        expires: targets.expires.unix(),
                    };
                    let mut md = Metadata::new(targets);
                    for signer in &signers {
                        md.sign(signer.as_ref())?;
                    }
                    let file = format!("{}.{name}.json", version.version);
                    let kept = storage.write_or_keep(&file, md.to_bytes()?)?;
                    Ok((name, version, file, kept))
                })
                .collect()
        })
        .await
        .map_err(|e| Error::Corrupt(format!("signing task failed: {e}")))??;
        let mut written = Vec::with_capacity(signed.len());
        let mut kept = Vec::new();
        for (name, version, file, bytes) in signed {
            written.push((name, version, file));
            kept.extend(bytes);
        }
        Ok((written, kept))
    }

    /// recently-claimed's delegations: the project roles added through the
    /// API (none yet), each with its developers' keys.
    fn recently_claimed_delegations(&self) -> Delegations {
        crate::delegations::ProjectDelegations::recently_claimed(&self.projects)
    }

    /// pep480: the project roles recently-claimed lists from now on.
    pub fn set_projects(&mut self, projects: BTreeMap<String, crate::delegations::ProjectRole>) {
        self.projects = projects;
    }

    /// pep480: publishes developer-signed project metadata as given (it is
    /// named in the next snapshot).
    pub async fn publish_project(&mut self, name: &str, value: &serde_json::Value) -> Result<()> {
        self.write_offline(name, value).await?;
        self.touched.insert(name.to_string());
        Ok(())
    }

    fn next_version(&self, role: &str) -> u64 {
        self.roles.get(role).map_or(1, |r| r.version + 1)
    }

    /// The number of hash bins.
    pub fn bin_count(&self) -> u32 {
        self.settings.number_of_delegated_bins
    }

    /// The bin number a target path falls in.
    pub fn bin_for(&self, path: &str) -> u32 {
        self.succinct.bin_for_target(path) as u32
    }
}

/// Where a publication's time went, for the debug log.
#[derive(Debug, Default)]
struct Phases {
    read: std::time::Duration,
    sign: std::time::Duration,
    sync: std::time::Duration,
}

/// A pending change in the form the copy of the bins holds: path and
/// canonical info (`None`: removed).
type EncodedChange = (String, Option<Box<[u8]>>);

/// The batch's changes in canonical form, grouped by bin, encoded in parallel.
fn encode_changes(pending: &[PendingChange]) -> Result<HashMap<u32, Vec<EncodedChange>>> {
    let encoded: Vec<(u32, EncodedChange)> = pending
        .par_iter()
        .map(|c| {
            let info = c
                .info
                .as_deref()
                .map(|i| canonical_info(&c.path, i))
                .transpose()?;
            Ok((c.bin, (c.path.clone(), info)))
        })
        .collect::<Result<_>>()?;
    let mut by_bin: HashMap<u32, Vec<EncodedChange>> = HashMap::new();
    for (bin, change) in encoded {
        by_bin.entry(bin).or_default().push(change);
    }
    Ok(by_bin)
}

/// Written bins: (role, version, file), and files kept for an object store.
type SignedBins = (Vec<(String, RoleVersion, String)>, Vec<(String, Vec<u8>)>);

/// Logs how a background move of published changes out of the log ended,
/// if it failed.
fn log_merge_failure(outcome: Option<std::result::Result<Result<()>, tokio::task::JoinError>>) {
    match outcome {
        Some(Ok(Err(e))) => {
            tracing::warn!(error = %e, "moving published changes out of the log failed; will retry")
        }
        Some(Err(e)) => {
            tracing::warn!(error = %e, "moving published changes out of the log stopped; will retry")
        }
        Some(Ok(Ok(()))) | None => {}
    }
}

/// On a blocking thread: brings the chunk's bins into `cache` (bins read
/// whole from the store, then the batch's changes), then encodes, signs and
/// writes each bin in parallel. The cache comes back even on failure; a
/// publication that fails clears it.
#[allow(clippy::too_many_arguments)]
fn sign_bins(
    mut cache: BinCache,
    loaded: BTreeMap<u32, Vec<(String, String)>>,
    changes: Vec<(u32, Vec<EncodedChange>)>,
    roles: &[(u32, String, u64)],
    expires: UtcTime,
    signers: &[Arc<dyn Signer>],
    storage: &Storage,
    keep: bool,
) -> (BinCache, Result<SignedBins>) {
    let encoded: Result<Vec<(u32, BinTargets)>> = loaded
        .into_par_iter()
        .map(|(bin, rows)| Ok((bin, encode_bin(rows)?)))
        .collect();
    let encoded = match encoded {
        Ok(e) => e,
        Err(e) => return (cache, Err(e)),
    };
    for (bin, targets) in encoded {
        cache.insert_bin(bin, targets);
    }
    // Bins just read already hold these changes (the read applies the
    // batch); applying them again is harmless.
    for (bin, list) in changes {
        for (path, info) in list {
            cache.apply(bin, &path, info);
        }
    }
    let signers: Vec<&dyn Signer> = signers.iter().map(|s| s.as_ref()).collect();
    let empty = BinTargets::new();
    let result = roles
        .par_iter()
        .map(|(bin, name, version)| {
            let targets = cache.get(*bin).unwrap_or(&empty);
            let size: usize = targets.iter().map(|(p, i)| p.len() + i.len() + 4).sum();
            let signed = tufa_metadata::metadata::bin_signed_bytes(
                *version,
                expires,
                targets.iter().map(|(p, i)| (p.as_str(), &i[..])),
                size,
            );
            let bytes = tufa_metadata::metadata::sign_encoded(&signed, &signers)?;
            let file = format!("{version}.{name}.json");
            let kept = storage.write_or_keep(&file, bytes)?;
            let role = RoleVersion {
                version: *version,
                expires: expires.unix(),
            };
            Ok(((name.clone(), role, file), kept))
        })
        .collect::<Result<Vec<_>>>()
        .map(|signed| {
            let mut files = Vec::with_capacity(signed.len());
            let mut kept = Vec::new();
            for (file, bytes) in signed {
                files.push(file);
                kept.extend(bytes);
            }
            (files, kept)
        });
    if keep {
        cache.trim();
    } else {
        cache.clear();
    }
    (cache, result)
}
