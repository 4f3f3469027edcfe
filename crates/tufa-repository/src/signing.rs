//! Distributed asynchronous signing (as RSTUF's DAS): a root that arrives
//! with fewer signatures than its threshold waits here while other key
//! holders add theirs one at a time (`GET`/`POST /api/v1/metadata/sign`),
//! each from their own machine. When the thresholds are met, the bootstrap
//! or root update proceeds as if it had arrived fully signed.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tufa_metadata::{Metadata, RawMetadata, Root, Signature};

use crate::bootstrap;
use crate::error::{Error, Result};
use crate::repository::Repository;
use crate::settings::{
    BOOTSTRAP_KEY, BootstrapState, OFFLINE_ROLES_KEY, OfflineRoles, PENDING_ROOT_KEY, PendingRoot,
    ROOT_KEY, RepositorySettings, SETTINGS_KEY,
};
use crate::store::NewTask;
use crate::task::{TaskKind, new_task_id};

pub(crate) const SIGNING_KEY: &str = "signing";

/// What a root waiting for signatures is for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "purpose", rename_all = "lowercase")]
pub enum SigningPurpose {
    /// The first root; `settings` come from the bootstrap payload.
    Bootstrap {
        settings: RepositorySettings,
        /// pep480's offline roles, already fully signed, kept until root is.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        offline: Option<OfflineRoles>,
    },
    /// Root N+1.
    Update,
}

/// A root waiting for signatures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SigningState {
    /// The bootstrap or metadata-update task that waits for it.
    pub task_id: String,
    #[serde(flatten)]
    pub purpose: SigningPurpose,
    /// The root document with the signatures so far.
    pub root: Value,
}

fn corrupt(e: impl std::fmt::Display) -> Error {
    Error::Corrupt(e.to_string())
}

impl Repository {
    /// The root waiting for signatures, if any.
    pub async fn signing_state(&self) -> Result<Option<SigningState>> {
        self.store().setting(SIGNING_KEY).await
    }

    /// `GET /api/v1/metadata/sign`: the metadata waiting for signatures, with
    /// the trusted root when it is a root update (whose keys sign too).
    pub async fn metadata_to_sign(&self) -> Result<Value> {
        let mut out = serde_json::Map::new();
        if let Some(state) = self.signing_state().await? {
            out.insert("root".into(), state.root.clone());
            if state.purpose == SigningPurpose::Update {
                let trusted = self.trusted_root().await?;
                let value: Value = serde_json::from_slice(&trusted.to_bytes()?).map_err(corrupt)?;
                out.insert("trusted_root".into(), value);
            }
        }
        Ok(Value::Object(out))
    }

    /// Starts waiting for signatures (called by bootstrap and root update).
    pub(crate) async fn start_signing(
        &self,
        state: SigningState,
        task: &NewTask,
        bootstrap: bool,
    ) -> Result<()> {
        let mut settings = vec![(SIGNING_KEY, serde_json::to_value(&state).map_err(corrupt)?)];
        if bootstrap {
            let value = serde_json::to_value(BootstrapState::Signing {
                task_id: state.task_id.clone(),
            })
            .map_err(corrupt)?;
            settings.push((BOOTSTRAP_KEY, value));
        }
        // Another process may have started one at the same moment.
        let claim = if bootstrap {
            BOOTSTRAP_KEY
        } else {
            SIGNING_KEY
        };
        if self
            .store()
            .create_settings_with_task(&settings, claim, task)
            .await?
        {
            Ok(())
        } else if bootstrap {
            Err(Error::AlreadyBootstrapped {
                task_id: "(started by another process)".into(),
            })
        } else {
            Err(Error::invalid(
                "metadata.root",
                "another root is waiting for signatures",
            ))
        }
    }

    /// `POST /api/v1/metadata/sign`: `{role: "root", signature: {keyid, sig}}`.
    /// The signature must be valid, by a root key of the pending root (or,
    /// for an update, of the trusted root).
    pub async fn add_signature(&self, payload: &Value) -> Result<String> {
        let role = payload
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::invalid("role", "is required"))?;
        if role != "root" {
            return Err(Error::invalid(
                "role",
                format!("{role:?} has no metadata waiting for signatures"),
            ));
        }
        let signature: Signature = payload
            .get("signature")
            .cloned()
            .ok_or_else(|| Error::invalid("signature", "is required"))
            .and_then(|v| {
                serde_json::from_value(v).map_err(|e| Error::invalid("signature", e.to_string()))
            })?;
        let mut state = self
            .signing_state()
            .await?
            .ok_or_else(|| Error::invalid("role", "no root is waiting for signatures"))?;
        let mut pending: Metadata<Root> =
            RawMetadata::from_value("root", state.root.clone())?.into_metadata("root")?;
        let trusted = match state.purpose {
            SigningPurpose::Update => Some(self.trusted_root().await?),
            SigningPurpose::Bootstrap { .. } => None,
        };
        let key = pending
            .signed
            .keys
            .get(&signature.keyid)
            .filter(|_| {
                pending
                    .signed
                    .role("root")
                    .is_ok_and(|r| r.keyids.contains(&signature.keyid))
            })
            .or_else(|| {
                trusted.as_ref().and_then(|t| {
                    t.signed.keys.get(&signature.keyid).filter(|_| {
                        t.signed
                            .role("root")
                            .is_ok_and(|r| r.keyids.contains(&signature.keyid))
                    })
                })
            })
            .ok_or_else(|| {
                Error::invalid(
                    "signature.keyid",
                    format!("{} is not a root key", signature.keyid),
                )
            })?;
        let bytes = pending.signed_bytes()?;
        let sig = hex::decode(&signature.sig)
            .map_err(|_| Error::invalid("signature.sig", "is not hex"))?;
        if !key.verifier(&signature.keyid)?.verify(&bytes, &sig) {
            return Err(Error::invalid(
                "signature.sig",
                format!(
                    "is not a valid signature of root by key {}",
                    signature.keyid
                ),
            ));
        }
        pending.signatures.retain(|s| s.keyid != signature.keyid);
        pending.signatures.push(signature);
        let root_value: Value = serde_json::from_slice(&pending.to_bytes()?).map_err(corrupt)?;
        let raw = RawMetadata::from_value("root", root_value.clone())?;
        let complete = match &trusted {
            None => pending.signed.verify_role("root", &raw).is_ok(),
            Some(t) => {
                let (by_trusted, by_new) = bootstrap::root_update_signatures(t, &pending, &raw);
                by_trusted.is_satisfied() && by_new.is_satisfied()
            }
        };
        state.root = root_value.clone();
        let task_id = new_task_id();
        let task = NewTask {
            id: task_id.clone(),
            kind: TaskKind::SignMetadata.as_str(),
            message: if complete {
                "Root signed: threshold met.".into()
            } else {
                "Signature added.".into()
            },
            details: json!({"role": "root", "complete": complete}),
            done: true,
        };
        if !complete {
            let value = serde_json::to_value(&state).map_err(corrupt)?;
            self.store()
                .set_settings_with_task(&[(SIGNING_KEY, value)], &task)
                .await?;
            return Ok(task_id);
        }
        let mut settings = Vec::new();
        match &state.purpose {
            SigningPurpose::Bootstrap {
                settings: repo,
                offline,
            } => {
                settings.push((SETTINGS_KEY, serde_json::to_value(repo).map_err(corrupt)?));
                if let Some(offline) = offline {
                    settings.push((
                        OFFLINE_ROLES_KEY,
                        serde_json::to_value(offline).map_err(corrupt)?,
                    ));
                }
                settings.push((ROOT_KEY, root_value));
                settings.push((
                    BOOTSTRAP_KEY,
                    serde_json::to_value(BootstrapState::Pending {
                        task_id: state.task_id.clone(),
                    })
                    .map_err(corrupt)?,
                ));
            }
            SigningPurpose::Update => {
                let pending_root = PendingRoot {
                    task_id: state.task_id.clone(),
                    root: root_value,
                };
                settings.push((
                    PENDING_ROOT_KEY,
                    serde_json::to_value(&pending_root).map_err(corrupt)?,
                ));
            }
        }
        self.store()
            .finish_signing(&settings, SIGNING_KEY, &task)
            .await?;
        self.wake_publisher();
        Ok(task_id)
    }

    /// `POST /api/v1/metadata/sign/delete`: `{role: "root"}` abandons the
    /// root waiting for signatures (a bootstrap in signing can start again).
    pub async fn abort_signing(&self, payload: &Value) -> Result<String> {
        let role = payload
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::invalid("role", "is required"))?;
        let state = self
            .signing_state()
            .await?
            .filter(|_| role == "root")
            .ok_or_else(|| {
                Error::invalid(
                    "role",
                    format!("{role:?} has no metadata waiting for signatures"),
                )
            })?;
        self.store()
            .finish_task(
                &state.task_id,
                crate::task::TaskState::Failure,
                false,
                Some("signing abandoned"),
            )
            .await?;
        if matches!(state.purpose, SigningPurpose::Bootstrap { .. }) {
            self.store().delete_setting(BOOTSTRAP_KEY).await?;
        }
        self.store().delete_setting(SIGNING_KEY).await?;
        let task_id = new_task_id();
        let task = NewTask {
            id: task_id.clone(),
            kind: TaskKind::DeleteSignMetadata.as_str(),
            message: "Metadata signing abandoned.".into(),
            details: json!({"role": role}),
            done: true,
        };
        self.store().insert_task(&task, None).await?;
        Ok(task_id)
    }
}
