//! The repository service: accepts changes (committed to the state store
//! before it answers) and runs the one publisher that turns them into signed
//! metadata.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{Mutex, Notify};
use tufa_metadata::{Metadata, Root, SuccinctRoles, UtcTime};

use crate::bootstrap;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::online_key::OnlineKeySource;
use crate::publisher::{BINS_PREFIX, Publication, Publisher};
use crate::settings::{
    BOOTSTRAP_KEY, BootstrapState, FORCE_KEY, ForceResign, Layout, OFFLINE_ROLES_KEY, OfflineRoles,
    PENDING_ROOT_KEY, PendingRoot, RECENTLY_CLAIMED, ROOT_KEY, RepositorySettings, SETTINGS_KEY,
    UNCLAIMED,
};
use crate::signing::{SigningPurpose, SigningState};
use crate::storage::Storage;
use crate::store::{ArtifactChange, NewTask, Store};
use crate::task::{Task, TaskKind, new_task_id};
use crate::validate;

/// Where a repository keeps its state and how it finds its online key.
#[derive(Debug, Clone)]
pub struct RepositoryConfig {
    /// Keys for `--dev`, index files, and by default `DIR/tufa.db` (state)
    /// and `DIR/metadata/` (published metadata).
    pub data_dir: PathBuf,
    pub online_key: OnlineKeySource,
    /// The state store: `sqlite://PATH` or `postgres://...`; `None` means
    /// `sqlite://DATA_DIR/tufa.db`.
    pub database_url: Option<String>,
    /// The metadata storage (see [`Storage::open`]); `None` means `DATA_DIR/metadata`.
    pub storage: Option<String>,
}

impl RepositoryConfig {
    /// Everything in one data directory, the online key at `DIR/keys/online.pem`.
    pub fn in_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        RepositoryConfig {
            online_key: OnlineKeySource::in_data_dir(&data_dir),
            data_dir,
            database_url: None,
            storage: None,
        }
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("tufa.db").display()))
    }
}

/// A request accepted for publication.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    pub task_id: String,
    pub artifacts: Vec<String>,
    pub last_update: UtcTime,
}

/// Proof of being the repository's one publisher; released on drop (and by
/// the operating system or PostgreSQL when the process dies).
#[derive(Debug)]
pub struct PublisherLock {
    held: HeldLock,
    /// The epoch this holder raised the publisher lease to.
    pub epoch: i64,
}

#[derive(Debug)]
enum HeldLock {
    /// `DATA_DIR/publisher.lock`, an OS file lock (SQLite: one machine).
    File(#[allow(dead_code)] std::fs::File),
    /// A PostgreSQL session advisory lock, held by this connection.
    Postgres(sqlx::AnyConnection),
}

/// How often a standby publisher tries the lock: a dead publisher's
/// successor starts within this (plus PostgreSQL noticing the dead session).
const LOCK_POLL: Duration = Duration::from_secs(1);
/// How often an idle publisher looks for changes other processes accepted.
const CHANGE_POLL: Duration = Duration::from_millis(250);

/// While changes keep arriving, the publisher rests after each publication
/// for twice as long as publishing them would take (estimated from the last
/// publication's time per bin and the bins the changes accepted since touch,
/// or the last publication's time if longer), at most this long. A burst is
/// then published in one or two large publications instead of many that
/// re-sign the same bins one after the other, and accepting keeps most of
/// the machine meanwhile. At 1,000 artifacts/s a publication takes about
/// 100 ms and the rest ends at the first pause between requests (p99
/// about 300 ms from accepted to published, measured).
const MAX_REST: Duration = Duration::from_secs(2);
/// The rest ends as soon as no change has arrived for this long.
const QUIET: Duration = Duration::from_millis(50);

/// The advisory lock key of the publisher: "tufa" in ASCII.
const PUBLISHER_ADVISORY_LOCK: i64 = 0x7475_6661;

impl PublisherLock {
    /// Fails when the lock may have been lost: the PostgreSQL session that
    /// holds it is gone (PostgreSQL released it then).
    pub async fn check(&mut self) -> Result<()> {
        match &mut self.held {
            HeldLock::File(_) => Ok(()),
            HeldLock::Postgres(conn) => {
                use sqlx::Connection;
                conn.ping().await.map_err(Error::Database)
            }
        }
    }
}

/// A handle on the repository service; cheap to clone.
#[derive(Debug, Clone)]
pub struct Repository {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    storage: Storage,
    data_dir: PathBuf,
    database_url: String,
    online_key: OnlineKeySource,
    clock: Clock,
    wake: Notify,
    /// Serialises bootstrap and root-update acceptance in this process
    /// (the store refuses a second one across processes).
    bootstrap_lock: Mutex<()>,
    last_publication: Mutex<Option<Publication>>,
    last_error: Mutex<Option<String>>,
    /// Artifact changes this process accepted since the publisher last
    /// read a batch: how large the next publication will be.
    accepted: AtomicU64,
}

/// How many of `bins` hash bins `changes` changes to random paths touch,
/// expected: each bin is missed by all of them with probability
/// (1 - 1/bins)^changes.
fn bins_touched(bins: u32, changes: u64) -> f64 {
    let bins = f64::from(bins.max(1));
    bins * (1.0 - (-(changes as f64) / bins).exp())
}

impl Repository {
    /// Opens the repository in a data directory, creating what is missing.
    pub async fn open(config: RepositoryConfig) -> Result<Repository> {
        Repository::open_with_clock(config, Clock::default()).await
    }

    /// As [`Repository::open`], with the publisher on `clock` (tests move it forward).
    pub async fn open_with_clock(config: RepositoryConfig, clock: Clock) -> Result<Repository> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| Error::storage(&config.data_dir, e))?;
        let database_url = config.database_url();
        let store = Store::open(&database_url).await?;
        let storage = Storage::open(config.storage.as_deref(), &config.data_dir)?;
        Ok(Repository {
            inner: Arc::new(Inner {
                store,
                storage,
                online_key: config.online_key,
                data_dir: config.data_dir.clone(),
                database_url,
                clock,
                wake: Notify::new(),
                bootstrap_lock: Mutex::new(()),
                last_publication: Mutex::new(None),
                last_error: Mutex::new(None),
                accepted: AtomicU64::new(0),
            }),
        })
    }

    /// The published metadata.
    pub fn storage(&self) -> &Storage {
        &self.inner.storage
    }

    /// The state store's URL (it may hold a password: never log it as is).
    pub fn database_url(&self) -> &str {
        &self.inner.database_url
    }

    /// The data directory (keys, index files, and by default state and metadata).
    pub fn data_dir(&self) -> &std::path::Path {
        &self.inner.data_dir
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Where bootstrap stands; `None` before any bootstrap request.
    pub async fn bootstrap_state(&self) -> Result<Option<BootstrapState>> {
        self.inner.store.setting(BOOTSTRAP_KEY).await
    }

    async fn require_bootstrapped(&self) -> Result<RepositorySettings> {
        match self.bootstrap_state().await? {
            Some(BootstrapState::Done { .. }) => {}
            Some(state) => {
                return Err(Error::NotBootstrapped {
                    state: state.rstuf_value(),
                });
            }
            None => {
                return Err(Error::NotBootstrapped {
                    state: "None".into(),
                });
            }
        }
        self.settings().await
    }

    /// The settings, read from the store every time: another process may
    /// have changed them (`PUT /api/v1/config/`, a root update).
    async fn settings(&self) -> Result<RepositorySettings> {
        self.inner
            .store
            .setting(SETTINGS_KEY)
            .await?
            .ok_or_else(|| Error::Corrupt("bootstrapped but no settings stored".into()))
    }

    /// Accepts a bootstrap payload (RSTUF's format). The first metadata is
    /// written by the publisher; the task succeeds once it is.
    pub async fn bootstrap(&self, payload: &Value) -> Result<String> {
        let _guard = self.inner.bootstrap_lock.lock().await;
        if let Some(state) = self.bootstrap_state().await? {
            return Err(Error::AlreadyBootstrapped {
                task_id: state.task_id().to_string(),
            });
        }
        let bootstrap = bootstrap::parse_payload(payload)?;
        self.require_online_key(&bootstrap.settings.online_keyid)?;
        let task_id = new_task_id();
        if !bootstrap.fully_signed {
            let root: Value = serde_json::from_slice(&bootstrap.root.to_bytes()?)
                .map_err(|e| Error::Corrupt(e.to_string()))?;
            let state = SigningState {
                task_id: task_id.clone(),
                purpose: SigningPurpose::Bootstrap {
                    settings: bootstrap.settings,
                    offline: bootstrap.offline,
                },
                root,
            };
            let task = NewTask {
                id: task_id.clone(),
                kind: TaskKind::Bootstrap.as_str(),
                message: "Bootstrap accepted; root waits for more signatures.".into(),
                details: json!({"bootstrap": format!("signing-{task_id}")}),
                done: false,
            };
            self.start_signing(state, &task, true).await?;
            return Ok(task_id);
        }
        let root_value: Value = serde_json::from_slice(&bootstrap.root.to_bytes()?)
            .map_err(|e| Error::Corrupt(e.to_string()))?;
        let settings_value =
            serde_json::to_value(&bootstrap.settings).map_err(|e| Error::Corrupt(e.to_string()))?;
        let state = serde_json::to_value(BootstrapState::Pending {
            task_id: task_id.clone(),
        })
        .map_err(|e| Error::Corrupt(e.to_string()))?;
        let task = NewTask {
            id: task_id.clone(),
            kind: TaskKind::Bootstrap.as_str(),
            message: "Bootstrap accepted.".into(),
            details: json!({"bootstrap": format!("pre-{task_id}")}),
            done: false,
        };
        let mut entries = vec![
            (BOOTSTRAP_KEY, state),
            (SETTINGS_KEY, settings_value),
            (ROOT_KEY, root_value),
        ];
        if let Some(offline) = &bootstrap.offline {
            let value = serde_json::to_value(offline).map_err(|e| Error::Corrupt(e.to_string()))?;
            entries.push((OFFLINE_ROLES_KEY, value));
        }
        let claimed = self
            .inner
            .store
            .create_settings_with_task(&entries, BOOTSTRAP_KEY, &task)
            .await?;
        if !claimed {
            // Another API process accepted a bootstrap a moment ago.
            let task_id = self
                .bootstrap_state()
                .await?
                .map_or_else(String::new, |s| s.task_id().to_string());
            return Err(Error::AlreadyBootstrapped { task_id });
        }
        self.inner.wake.notify_one();
        Ok(task_id)
    }

    fn succinct(settings: &RepositorySettings) -> SuccinctRoles {
        SuccinctRoles {
            keyids: vec![settings.online_keyid.clone()],
            threshold: 1,
            bit_length: settings.bit_length(),
            name_prefix: BINS_PREFIX.into(),
            unrecognized: serde_json::Map::new(),
        }
    }

    /// Refuses unless this service holds the online key `keyid`.
    fn require_online_key(&self, keyid: &str) -> Result<()> {
        if self.inner.online_key.find(keyid)?.is_some() {
            return Ok(());
        }
        let held = self.inner.online_key.keyids();
        Err(Error::invalid(
            "metadata.root.signed.roles",
            if held.is_empty() {
                format!(
                    "the online key in root is {keyid}, but this service has no online key (see --online-key)"
                )
            } else {
                format!(
                    "the online key in root is {keyid}, but this service holds only {}",
                    held.join(", ")
                )
            },
        ))
    }

    /// The root the repository trusts now.
    pub async fn trusted_root(&self) -> Result<Metadata<Root>> {
        let value: Value = self
            .inner
            .store
            .setting(ROOT_KEY)
            .await?
            .ok_or_else(|| Error::Corrupt("no root stored".into()))?;
        Ok(tufa_metadata::RawMetadata::from_value("root", value)?.into_metadata("root")?)
    }

    /// Accepts `POST /api/v1/metadata/`: `{metadata: {root: <root N+1>}}`.
    ///
    /// The new root must be version N+1 and signed by a threshold of both
    /// the trusted root's keys and its own. When it changes the online key,
    /// the service must hold the new key: every online role is re-signed with
    /// it before the new root is published, and the old key keeps signing
    /// alongside until then, so clients on either root verify throughout.
    pub async fn update_root(&self, payload: &Value) -> Result<String> {
        let settings = self.require_bootstrapped().await?;
        let _guard = self.inner.bootstrap_lock.lock().await;
        if let Some(pending) = self
            .inner
            .store
            .setting::<PendingRoot>(PENDING_ROOT_KEY)
            .await?
        {
            return Err(Error::invalid(
                "metadata.root",
                format!(
                    "root update task {} is still being published",
                    pending.task_id
                ),
            ));
        }
        let value = payload
            .get("metadata")
            .and_then(|m| m.get("root"))
            .ok_or_else(|| Error::invalid("metadata.root", "is required"))?;
        let trusted = self.trusted_root().await?;
        let update = bootstrap::check_root_update(&trusted, value, settings.layout)?;
        if update.online_keyid != settings.online_keyid {
            if settings.layout == Layout::Pep480 {
                return Err(Error::invalid(
                    "metadata.root.signed.roles",
                    format!(
                        "changes the online key from {} to {}: in the pep480 layout the offline targets delegates to the online key, so that needs a new offline targets, which tufa does not support yet",
                        settings.online_keyid, update.online_keyid
                    ),
                ));
            }
            self.require_online_key(&update.online_keyid)?;
        }
        if settings.layout == Layout::Pep480 {
            self.check_offline_targets_still_verify(value).await?;
        }
        if self.signing_state().await?.is_some() {
            return Err(Error::invalid(
                "metadata.root",
                "another root is waiting for signatures",
            ));
        }
        let task_id = new_task_id();
        if !update.fully_signed {
            let task = NewTask {
                id: task_id.clone(),
                kind: TaskKind::MetadataUpdate.as_str(),
                message: format!("Root version {} waits for more signatures.", update.version),
                details: json!({"role": "root", "version": update.version}),
                done: false,
            };
            let state = SigningState {
                task_id: task_id.clone(),
                purpose: SigningPurpose::Update,
                root: value.clone(),
            };
            self.start_signing(state, &task, false).await?;
            return Ok(task_id);
        }
        let pending = PendingRoot {
            task_id: task_id.clone(),
            root: value.clone(),
        };
        let pending_value =
            serde_json::to_value(&pending).map_err(|e| Error::Corrupt(e.to_string()))?;
        let task = NewTask {
            id: task_id.clone(),
            kind: TaskKind::MetadataUpdate.as_str(),
            message: format!("Root version {} accepted.", update.version),
            details: json!({"role": "root", "version": update.version, "online_key_rotated": update.online_keyid != settings.online_keyid}),
            done: false,
        };
        if !self
            .inner
            .store
            .create_settings_with_task(
                &[(PENDING_ROOT_KEY, pending_value)],
                PENDING_ROOT_KEY,
                &task,
            )
            .await?
        {
            return Err(Error::invalid(
                "metadata.root",
                "another root update is being published",
            ));
        }
        self.inner.wake.notify_one();
        Ok(task_id)
    }

    /// pep480: root N+1 must still accept the published offline targets
    /// (the service cannot re-sign it to follow a change of targets keys).
    async fn check_offline_targets_still_verify(&self, new_root: &Value) -> Result<()> {
        let offline: OfflineRoles = self
            .inner
            .store
            .setting(OFFLINE_ROLES_KEY)
            .await?
            .ok_or_else(|| Error::Corrupt("pep480 repository without offline roles".into()))?;
        let root: Metadata<Root> = tufa_metadata::RawMetadata::from_value("root", new_root.clone())
            .and_then(|r| r.into_metadata("root"))
            .map_err(|e| Error::invalid("metadata.root", e.to_string()))?;
        let raw = tufa_metadata::RawMetadata::from_value("targets", offline.targets)?;
        root.signed.verify_role("targets", &raw).map_err(|e| {
            Error::invalid(
                "metadata.root.signed.roles.targets",
                format!(
                    "the published offline targets would no longer verify ({e}); a new offline targets is not supported yet"
                ),
            )
        })?;
        Ok(())
    }

    /// Accepts `POST /api/v1/metadata/online`: `{roles: [...]}`, an empty list
    /// meaning every online role: re-signs them now (new versions, new expiry).
    pub async fn force_online_update(&self, payload: &Value) -> Result<String> {
        let settings = self.require_bootstrapped().await?;
        let roles = match payload.get("roles") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(list)) => list
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let name = r
                        .as_str()
                        .ok_or_else(|| Error::invalid(format!("roles[{i}]"), "must be a string"))?;
                    let succinct = Self::succinct(&settings);
                    let delegating = match settings.layout {
                        Layout::Pep458 => matches!(name, "targets"),
                        Layout::Pep480 => matches!(name, UNCLAIMED | RECENTLY_CLAIMED),
                    };
                    if delegating
                        || matches!(name, "snapshot" | "timestamp" | "bins")
                        || succinct.is_delegated_role(name)
                    {
                        Ok(name.to_string())
                    } else {
                        Err(Error::invalid(
                            format!("roles[{i}]"),
                            format!("{name:?} is not an online role"),
                        ))
                    }
                })
                .collect::<Result<Vec<_>>>()?,
            Some(_) => return Err(Error::invalid("roles", "must be a list of role names")),
        };
        let task_id = new_task_id();
        let force = ForceResign {
            task_id: task_id.clone(),
            roles: roles.clone(),
        };
        let task = NewTask {
            id: task_id.clone(),
            kind: TaskKind::ForceOnlineUpdate.as_str(),
            message: "Online roles re-signed.".into(),
            details: json!({"roles": if !roles.is_empty() { json!(roles) } else if settings.layout.is_pep458() { json!(["targets", "bins", "snapshot", "timestamp"]) } else { json!([UNCLAIMED, RECENTLY_CLAIMED, "bins", "snapshot", "timestamp"]) }}),
            done: false,
        };
        let value = serde_json::to_value(&force).map_err(|e| Error::Corrupt(e.to_string()))?;
        self.inner
            .store
            .set_settings_with_task(&[(FORCE_KEY, value)], &task)
            .await?;
        self.inner.wake.notify_one();
        Ok(task_id)
    }

    /// Publishes a pending root update (see [`Repository::update_root`]).
    async fn apply_root_update(&self, p: &mut Publisher, pending: PendingRoot) -> Result<()> {
        let root: Metadata<Root> =
            tufa_metadata::RawMetadata::from_value("root", pending.root.clone())?
                .into_metadata("root")?;
        let mut settings = self.settings().await?;
        let new_keyid = bootstrap::online_keyid(&root.signed, settings.layout)?;
        if new_keyid != settings.online_keyid {
            let signer = self.inner.online_key.find(&new_keyid)?.ok_or_else(|| {
                Error::OnlineKey(format!("new online key {new_keyid} is not available"))
            })?;
            let key =
                root.signed.keys.get(&new_keyid).cloned().ok_or_else(|| {
                    Error::Corrupt("new root does not list its online key".into())
                })?;
            tracing::info!(old = %settings.online_keyid, new = %new_keyid, "online key rotation: signing with both keys");
            p.add_online_key(signer, key);
            p.resign_all().await?;
            p.publish_root(&root).await?;
            p.retire_online_keys_except(&new_keyid);
            settings.online_keyid = new_keyid;
            p.set_settings(settings.clone());
            p.resign_all().await?;
        } else {
            p.publish_root(&root).await?;
        }
        let root_keys = root.signed.role("root")?;
        settings.root_threshold = root_keys.threshold;
        settings.root_num_keys = root_keys.keyids.len();
        let settings_value =
            serde_json::to_value(&settings).map_err(|e| Error::Corrupt(e.to_string()))?;
        self.inner
            .store
            .commit_root_update(
                &[
                    (SETTINGS_KEY, settings_value),
                    (ROOT_KEY, pending.root.clone()),
                ],
                PENDING_ROOT_KEY,
            )
            .await?;
        self.inner
            .store
            .finish_task(
                &pending.task_id,
                crate::task::TaskState::Success,
                true,
                None,
            )
            .await?;
        tracing::info!(version = root.signed.version, "root published");
        Ok(())
    }

    /// Accepts `POST /api/v1/artifacts/`: `{artifacts: [{path, info}],
    /// publish_artifacts, add_task_id_to_custom}`. All or nothing: one bad
    /// artifact refuses the request, naming it.
    pub async fn add_artifacts(&self, payload: &Value) -> Result<Accepted> {
        let settings = self.require_bootstrapped().await?;
        let obj = validate::object(payload, "body")?;
        let publish = validate::bool_field(obj, "publish_artifacts", true)?;
        let add_task_id = validate::bool_field(obj, "add_task_id_to_custom", false)?;
        let artifacts = obj
            .get("artifacts")
            .and_then(Value::as_array)
            .ok_or_else(|| Error::invalid("artifacts", "is required and must be a list"))?;
        if artifacts.is_empty() {
            return Err(Error::invalid("artifacts", "must not be empty"));
        }
        let task_id = new_task_id();
        let succinct = Self::succinct(&settings);
        let mut by_path: BTreeMap<String, (usize, ArtifactChange)> = BTreeMap::new();
        let mut order = Vec::with_capacity(artifacts.len());
        for (i, artifact) in artifacts.iter().enumerate() {
            let field = format!("artifacts[{i}]");
            let path = artifact
                .get("path")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    Error::invalid(format!("{field}.path"), "is required and must be a string")
                })?;
            validate::target_path(&format!("{field}.path"), path)?;
            let info = artifact
                .get("info")
                .ok_or_else(|| Error::invalid(format!("{field}.info"), "is required"))?;
            let mut file = validate::artifact_info(&format!("{field}.info"), info)?;
            if add_task_id {
                let mut custom = file
                    .custom()
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                custom.insert("added_by_task_id".into(), Value::String(task_id.clone()));
                file.unrecognized
                    .insert("custom".into(), Value::Object(custom));
            }
            let info = serde_json::to_string(&file).map_err(|e| Error::Corrupt(e.to_string()))?;
            let change = ArtifactChange {
                path: path.to_string(),
                bin: succinct.bin_for_target(path) as u32,
                info: Some(info),
            };
            if let Some((j, earlier)) = by_path.get(path) {
                if earlier.info != change.info {
                    return Err(Error::invalid(
                        format!("{field}.path"),
                        format!("{path:?} is also artifacts[{j}] with different info"),
                    ));
                }
                continue;
            }
            order.push(path.to_string());
            by_path.insert(path.to_string(), (i, change));
        }
        let roles: BTreeSet<String> = by_path
            .values()
            .map(|(_, c)| succinct.bin_name(u64::from(c.bin)))
            .collect();
        let changes: Vec<ArtifactChange> = by_path.into_values().map(|(_, c)| c).collect();
        let task = NewTask {
            id: task_id.clone(),
            kind: TaskKind::AddArtifacts.as_str(),
            message: if publish {
                "Artifact(s) Added".into()
            } else {
                "Artifact(s) Added. Publishing skipped.".into()
            },
            details: json!({"added_artifacts": order, "invalid_paths": [], "artifact_roles": roles}),
            done: !publish,
        };
        self.inner
            .store
            .record_changes(&changes, !publish, &task)
            .await?;
        if publish {
            self.note_accepted(changes.len());
        }
        Ok(Accepted {
            task_id,
            artifacts: order,
            last_update: UtcTime::now(),
        })
    }

    /// Accepts `POST /api/v1/artifacts/delete`: `{artifacts: [path], publish_artifacts}`.
    pub async fn remove_artifacts(&self, payload: &Value) -> Result<Accepted> {
        let settings = self.require_bootstrapped().await?;
        let obj = validate::object(payload, "body")?;
        let publish = validate::bool_field(obj, "publish_artifacts", true)?;
        let paths = obj
            .get("artifacts")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                Error::invalid("artifacts", "is required and must be a list of paths")
            })?;
        if paths.is_empty() {
            return Err(Error::invalid("artifacts", "must not be empty"));
        }
        let mut unique = Vec::new();
        let mut seen = BTreeSet::new();
        for (i, p) in paths.iter().enumerate() {
            let path = p
                .as_str()
                .ok_or_else(|| Error::invalid(format!("artifacts[{i}]"), "must be a string"))?;
            validate::target_path(&format!("artifacts[{i}]"), path)?;
            if seen.insert(path.to_string()) {
                unique.push(path.to_string());
            }
        }
        let present = self.inner.store.present_paths(&unique).await?;
        let succinct = Self::succinct(&settings);
        let (deleted, not_found): (Vec<String>, Vec<String>) =
            unique.iter().cloned().partition(|p| present.contains(p));
        let changes: Vec<ArtifactChange> = deleted
            .iter()
            .map(|p| ArtifactChange {
                path: p.clone(),
                bin: succinct.bin_for_target(p) as u32,
                info: None,
            })
            .collect();
        let task_id = new_task_id();
        let task = NewTask {
            id: task_id.clone(),
            kind: TaskKind::RemoveArtifacts.as_str(),
            message: "Artifact(s) removed".into(),
            details: json!({"deleted_artifacts": deleted, "not_found_artifacts": not_found}),
            done: !publish || changes.is_empty(),
        };
        self.inner
            .store
            .record_changes(&changes, !publish, &task)
            .await?;
        if publish && !changes.is_empty() {
            self.note_accepted(changes.len());
        }
        Ok(Accepted {
            task_id,
            artifacts: unique,
            last_update: UtcTime::now(),
        })
    }

    /// Accepts `POST /api/v1/artifacts/publish/`: publishes every staged change.
    pub async fn publish_artifacts(&self) -> Result<Accepted> {
        self.require_bootstrapped().await?;
        let task_id = new_task_id();
        let task = NewTask {
            id: task_id.clone(),
            kind: TaskKind::PublishArtifacts.as_str(),
            message: "Artifact(s) published".into(),
            details: json!({}),
            done: false,
        };
        self.inner.store.unstage_all(&task).await?;
        self.inner.wake.notify_one();
        Ok(Accepted {
            task_id,
            artifacts: Vec::new(),
            last_update: UtcTime::now(),
        })
    }

    pub async fn task(&self, id: &str) -> Result<Option<Task>> {
        self.inner.store.task(id).await
    }

    pub async fn tasks(&self, limit: u32, state: Option<&str>) -> Result<Vec<Task>> {
        self.inner.store.tasks(limit, state).await
    }

    /// Accepts `PUT /api/v1/config/`: `{settings: {expiration: {ROLE: DAYS}}}`
    /// changes role lifetimes from the next signing of each role on.
    pub async fn update_config(&self, payload: &Value) -> Result<String> {
        let mut settings = self.require_bootstrapped().await?;
        let expiration = payload
            .get("settings")
            .and_then(|s| s.get("expiration"))
            .and_then(Value::as_object)
            .ok_or_else(|| {
                Error::invalid("settings.expiration", "is required and must be an object")
            })?;
        if expiration.is_empty() {
            return Err(Error::invalid(
                "settings.expiration",
                "must name at least one role",
            ));
        }
        let mut changed = serde_json::Map::new();
        for (role, days) in expiration {
            let field = format!("settings.expiration.{role}");
            let days = days
                .as_u64()
                .filter(|d| (1..=3650).contains(d))
                .ok_or_else(|| {
                    Error::invalid(
                        &field,
                        format!("must be a number of days from 1 to 3650, got {days}"),
                    )
                })? as u32;
            let e = &mut settings.expiration;
            match role.as_str() {
                "root" => e.root = days,
                "targets" => e.targets = days,
                "snapshot" => e.snapshot = days,
                "timestamp" => e.timestamp = days,
                "bins" => e.bins = days,
                _ => return Err(Error::invalid(&field, "is not a role of this repository")),
            }
            changed.insert(role.clone(), json!(days));
        }
        let task_id = new_task_id();
        let task = NewTask {
            id: task_id.clone(),
            kind: TaskKind::UpdateSettings.as_str(),
            message: "Settings updated.".into(),
            details: json!({"expiration": changed}),
            done: true,
        };
        let value = serde_json::to_value(&settings).map_err(|e| Error::Corrupt(e.to_string()))?;
        self.inner
            .store
            .set_settings_with_task(&[(SETTINGS_KEY, value)], &task)
            .await?;
        self.inner.wake.notify_one();
        Ok(task_id)
    }

    /// The settings of a bootstrapped pep480 repository; `None` for any
    /// other (and before bootstrap), which has no project roles.
    pub(crate) async fn pep480_settings(&self) -> Result<Option<RepositorySettings>> {
        match self.settings().await {
            Ok(s) if s.layout == Layout::Pep480 => Ok(Some(self.require_bootstrapped().await?)),
            _ => Ok(None),
        }
    }

    /// Serialises delegation changes in this process (read-modify-write of one settings entry).
    pub(crate) async fn delegation_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.inner.bootstrap_lock.lock().await
    }

    /// pep480: publishes accepted project metadata and delegation changes
    /// (re-signing recently-claimed), then finishes their tasks.
    async fn publish_delegations(&self, p: &mut Publisher) -> Result<bool> {
        use crate::delegations::DELEGATIONS_KEY;
        let (state, _) = self.project_delegations().await?;
        if state.pending_tasks.is_empty() {
            p.set_projects(state.published);
            return Ok(false);
        }
        let mut published = state.published.clone();
        published.retain(|name, _| state.accepted.contains_key(name));
        // Uploads for a delegation removed since: not published, their task fails.
        let mut dropped = BTreeSet::new();
        for upload in &state.uploads {
            if !state.accepted.contains_key(&upload.role) {
                dropped.insert(upload.task_id.clone());
                continue;
            }
            p.publish_project(&upload.role, &upload.metadata).await?;
            published.insert(upload.role.clone(), upload.delegation.clone());
        }
        p.set_projects(published.clone());
        p.force(&[RECENTLY_CLAIMED.to_string()]);
        let outcome = p.step().await?;
        // Changes accepted meanwhile (by any process) stay for the next step:
        // compare-and-swap against what was read.
        let done: BTreeSet<String> = state.pending_tasks.iter().cloned().collect();
        loop {
            let (mut now, old) = self.project_delegations().await?;
            now.pending_tasks.retain(|t| !done.contains(t));
            now.uploads.retain(|u| !done.contains(&u.task_id));
            now.published = published.clone();
            let value = serde_json::to_value(&now).map_err(|e| Error::Corrupt(e.to_string()))?;
            if self
                .inner
                .store
                .replace_setting(DELEGATIONS_KEY, old.as_deref(), &value, None)
                .await?
            {
                break;
            }
        }
        for task in &done {
            let (state, status, error) = if dropped.contains(task) {
                (
                    crate::task::TaskState::Failure,
                    false,
                    Some("the project's delegation was removed before publication"),
                )
            } else {
                (crate::task::TaskState::Success, true, None)
            };
            self.inner
                .store
                .finish_task(task, state, status, error)
                .await?;
        }
        if let Some(publication) = outcome {
            *self.inner.last_publication.lock().await = Some(publication);
        }
        Ok(true)
    }

    /// Settings as RSTUF's `GET /api/v1/config/` lists them.
    pub async fn config(&self) -> Result<Value> {
        let state = self.bootstrap_state().await?;
        let mut out = serde_json::Map::new();
        out.insert(
            "bootstrap".into(),
            state.map_or(Value::Null, |s| Value::String(s.rstuf_value())),
        );
        if let Ok(settings) = self.settings().await {
            let e = settings.expiration;
            for (role, days) in [
                ("root", e.root),
                ("targets", e.targets),
                ("snapshot", e.snapshot),
                ("timestamp", e.timestamp),
                ("bins", e.bins),
            ] {
                out.insert(format!("{role}_expiration"), json!(days));
                let (threshold, keys) = if role == "root" {
                    (settings.root_threshold, settings.root_num_keys)
                } else {
                    (1, 1)
                };
                out.insert(format!("{role}_threshold"), json!(threshold));
                out.insert(format!("{role}_num_keys"), json!(keys));
            }
            out.insert(
                "number_of_delegated_bins".into(),
                json!(settings.number_of_delegated_bins),
            );
            out.insert(
                "targets_online_key".into(),
                json!(settings.layout.is_pep458()),
            );
            out.insert("layout".into(), json!(settings.layout.as_str()));
            if settings.layout == Layout::Pep480
                && let Ok(root) = self.trusted_root().await
                && let Ok(targets) = root.signed.role("targets")
            {
                out.insert("targets_threshold".into(), json!(targets.threshold));
                out.insert("targets_num_keys".into(), json!(targets.keyids.len()));
            }
        }
        Ok(Value::Object(out))
    }

    /// pep480's offline roles (targets, claimed) close to expiry: within
    /// [`offline_margin`] of it, or expired. The service cannot re-sign them,
    /// so `/healthz` warns while there is still time for a key ceremony.
    pub async fn offline_roles_expiring(&self) -> Result<Vec<(String, u64, UtcTime)>> {
        let Ok(settings) = self.settings().await else {
            return Ok(Vec::new());
        };
        if settings.layout != Layout::Pep480 {
            return Ok(Vec::new());
        }
        let margin = offline_margin(settings.expiration.seconds("targets"));
        let now = UtcTime::now().unix();
        let mut out = Vec::new();
        for name in ["targets", crate::settings::CLAIMED] {
            if let Some(role) = self.inner.store.role(name).await?
                && role.expires - now <= margin
            {
                out.push((
                    name.to_string(),
                    role.version,
                    UtcTime::from_unix(role.expires),
                ));
            }
        }
        Ok(out)
    }

    /// The last publication and the last publisher error, for health checks and metrics.
    pub async fn publisher_status(&self) -> (Option<Publication>, Option<String>) {
        (
            self.inner.last_publication.lock().await.clone(),
            self.inner.last_error.lock().await.clone(),
        )
    }

    /// Takes the publisher lock if nobody holds it, and with it the
    /// publisher lease (a new epoch). On SQLite the lock is
    /// `DATA_DIR/publisher.lock`, an OS file lock; on PostgreSQL a session
    /// advisory lock on a connection of its own. Either is released when
    /// the process dies, so a standby worker takes over within its next poll.
    pub async fn try_lock_publisher(&self, holder: &str) -> Result<Option<PublisherLock>> {
        let held = match self.inner.store.engine() {
            crate::store::Engine::Sqlite => {
                let path = self.inner.data_dir.join("publisher.lock");
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&path)
                    .map_err(|e| Error::storage(&path, e))?;
                match file.try_lock() {
                    Ok(()) => HeldLock::File(file),
                    Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
                    Err(std::fs::TryLockError::Error(e)) => return Err(Error::storage(&path, e)),
                }
            }
            crate::store::Engine::Postgres => {
                let mut conn = self.inner.store.dedicated_connection().await?;
                let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                    .bind(PUBLISHER_ADVISORY_LOCK)
                    .fetch_one(&mut conn)
                    .await?;
                if !locked {
                    return Ok(None);
                }
                HeldLock::Postgres(conn)
            }
        };
        let epoch = self.inner.store.claim_publisher(holder).await?;
        Ok(Some(PublisherLock { held, epoch }))
    }

    /// Wakes the publisher (after a change made outside the API, e.g. an import).
    pub fn wake_publisher(&self) {
        self.inner.wake.notify_one();
    }

    /// Runs the publisher until the process ends. It waits for the
    /// publisher lock (a standby worker waits here), then publishes: the
    /// bootstrap when one is pending, every pending change, every role due
    /// for re-signing. Errors are logged and retried after a pause, with
    /// versions reconciled against storage again; losing the lock (the
    /// database went away, or another worker took over) drops everything
    /// prepared and starts again from waiting.
    pub async fn run_publisher(self) {
        let holder = format!(
            "{}:{}",
            rustix::system::uname().nodename().to_string_lossy(),
            std::process::id()
        );
        let mut waiting_logged = false;
        loop {
            let mut lock = match self.try_lock_publisher(&holder).await {
                Ok(Some(lock)) => lock,
                Ok(None) => {
                    if !waiting_logged {
                        tracing::info!("another process publishes; standing by");
                        waiting_logged = true;
                    }
                    tokio::time::sleep(LOCK_POLL).await;
                    continue;
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot take the publisher lock; retrying");
                    *self.inner.last_error.lock().await = Some(e.to_string());
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            waiting_logged = false;
            tracing::info!(epoch = lock.epoch, holder = %holder, "publisher lock taken: this process publishes");
            self.publish_while_locked(&mut lock).await;
            tracing::warn!(epoch = lock.epoch, "publisher lock lost: standing by");
        }
    }

    /// Publishes until the lock is lost.
    async fn publish_while_locked(&self, lock: &mut PublisherLock) {
        let mut publisher: Option<Publisher> = None;
        loop {
            if let Err(e) = lock.check().await {
                tracing::error!(error = %e, "the publisher lock's database session failed");
                *self.inner.last_error.lock().await = Some(e.to_string());
                return;
            }
            let worked = match self.publisher_step(&mut publisher, lock.epoch).await {
                Ok(worked) => {
                    *self.inner.last_error.lock().await = None;
                    worked
                }
                Err(e @ Error::NotPublisher { .. }) => {
                    tracing::error!(error = %e, "stopping");
                    *self.inner.last_error.lock().await = Some(e.to_string());
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, "publication failed; retrying");
                    *self.inner.last_error.lock().await = Some(e.to_string());
                    publisher = None;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if worked {
                self.rest_while_changes_arrive(&mut publisher).await;
            } else {
                // Changes accepted by this process wake it at once; those
                // accepted by other processes are seen at the next poll.
                let _ = tokio::time::timeout(CHANGE_POLL, self.inner.wake.notified()).await;
            }
        }
    }

    /// Counts accepted artifact changes and wakes the publisher.
    fn note_accepted(&self, changes: usize) {
        self.inner.accepted.fetch_add(
            u64::try_from(changes).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        self.inner.wake.notify_one();
    }

    /// After a publication: rests while this process keeps accepting
    /// changes, and not at all once none has arrived for [`QUIET`]. The rest
    /// lasts twice as long as publishing the changes accepted so far would
    /// take, or as the last publication took if longer; at most [`MAX_REST`].
    ///
    /// Meanwhile the publisher reads the changes as they are logged, so the
    /// batch after the rest has little left to read.
    async fn rest_while_changes_arrive(&self, publisher: &mut Option<Publisher>) {
        let bins = publisher.as_ref().map_or(0, Publisher::bin_count);
        let Some((took, per_bin)) = self.inner.last_publication.lock().await.as_ref().map(|p| {
            let took = Duration::from_millis(u64::try_from(p.millis).unwrap_or(u64::MAX));
            let per_bin = took / u32::try_from(p.bins_signed.max(1)).unwrap_or(u32::MAX);
            (took, per_bin)
        }) else {
            return;
        };
        let started = tokio::time::Instant::now();
        loop {
            let accepted = self.inner.accepted.load(Ordering::Relaxed);
            let next = per_bin.mul_f64(bins_touched(bins, accepted));
            let until = started + (took.max(next) * 2).min(MAX_REST);
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return;
            }
            if tokio::time::timeout(QUIET.min(left), self.inner.wake.notified())
                .await
                .is_err()
            {
                return;
            }
            if let Some(publisher) = publisher.as_mut() {
                publisher.read_ahead().await;
            }
        }
    }

    /// Publishes once if there is work. Returns whether it did something.
    pub async fn publisher_step(
        &self,
        publisher: &mut Option<Publisher>,
        epoch: i64,
    ) -> Result<bool> {
        let state = self.bootstrap_state().await?;
        let Some(state) = state else {
            return Ok(false);
        };
        if matches!(state, BootstrapState::Signing { .. }) {
            // Root waits for signatures; nothing to publish yet.
            return Ok(false);
        }
        if publisher.is_none() {
            let settings = self.settings().await?;
            let signer = self
                .inner
                .online_key
                .find(&settings.online_keyid)?
                .ok_or_else(|| {
                    Error::OnlineKey(format!(
                        "online key {} is not available",
                        settings.online_keyid
                    ))
                })?;
            let root_value: Value = self
                .inner
                .store
                .setting(ROOT_KEY)
                .await?
                .ok_or_else(|| Error::Corrupt("no root stored".into()))?;
            let root: Metadata<Root> = tufa_metadata::RawMetadata::from_value("root", root_value)?
                .into_metadata("root")?;
            let mut p = Publisher::new(
                self.inner.store.clone(),
                self.inner.storage.clone(),
                signer,
                settings,
                &root.signed,
                self.inner.clock.clone(),
                epoch,
            )
            .await?;
            if let BootstrapState::Pending { task_id } = &state {
                tracing::info!(task_id, "bootstrapping: writing the first metadata");
                let offline: Option<OfflineRoles> =
                    self.inner.store.setting(OFFLINE_ROLES_KEY).await?;
                if p.layout() == Layout::Pep480 && offline.is_none() {
                    return Err(Error::Corrupt(
                        "pep480 bootstrap without its offline roles".into(),
                    ));
                }
                p.write_initial(&root, offline.as_ref()).await?;
                let done = serde_json::to_value(BootstrapState::Done {
                    task_id: task_id.clone(),
                })
                .map_err(|e| Error::Corrupt(e.to_string()))?;
                self.inner
                    .store
                    .finish_bootstrap(BOOTSTRAP_KEY, done, task_id)
                    .await?;
                *publisher = Some(p);
                return Ok(true);
            }
            *publisher = Some(p);
        }
        let Some(p) = publisher.as_mut() else {
            return Ok(false);
        };
        // Expiry settings may change at run time (PUT /api/v1/config/).
        p.set_settings(self.settings().await?);
        if let Some(pending) = self
            .inner
            .store
            .setting::<PendingRoot>(PENDING_ROOT_KEY)
            .await?
        {
            self.apply_root_update(p, pending).await?;
            return Ok(true);
        }
        if let Some(force) = self.inner.store.setting::<ForceResign>(FORCE_KEY).await? {
            p.force(&force.roles);
            let outcome = p.step().await?;
            self.inner.store.delete_setting(FORCE_KEY).await?;
            self.inner
                .store
                .finish_task(&force.task_id, crate::task::TaskState::Success, true, None)
                .await?;
            if let Some(publication) = outcome {
                *self.inner.last_publication.lock().await = Some(publication);
            }
            return Ok(true);
        }
        if p.layout() == Layout::Pep480 && self.publish_delegations(p).await? {
            return Ok(true);
        }
        self.inner.accepted.store(0, Ordering::Relaxed);
        match p.step().await? {
            Some(publication) => {
                tracing::info!(
                    snapshot = publication.snapshot_version,
                    bins = publication.bins_signed,
                    changes = publication.artifact_changes,
                    tasks = publication.tasks_completed,
                    ms = publication.millis as u64,
                    "published"
                );
                *self.inner.last_publication.lock().await = Some(publication);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

/// How long before expiry an offline role is reported: a quarter of its
/// lifetime, at most 30 days (time enough to gather its key holders).
pub fn offline_margin(lifetime_seconds: i64) -> i64 {
    (lifetime_seconds / 4).min(30 * 86_400)
}
