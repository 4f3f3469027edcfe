//! pep480 project roles: delegations from `recently-claimed` to
//! `project-{name}` added through RSTUF's `/api/v1/delegations`, and the
//! developer-signed project metadata uploaded for them.
//!
//! The service never signs a project role. A delegation is *accepted* when
//! added, but `recently-claimed` *publishes* it only together with the first
//! project metadata signed by its keys: a delegation to a role with no
//! metadata (or metadata signed by keys it no longer lists) would make
//! every client lookup of that project fail.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tufa_metadata::delegation::matches_path_pattern;
use tufa_metadata::metadata::check_signatures;
use tufa_metadata::{
    DelegatedRole, Delegations, Key, Metadata, RawMetadata, Role, Targets, UtcTime,
};

use crate::error::{Error, Result};
use crate::pep480::{PROJECT_PREFIX, check_project_role, normalise_project, project_pattern};
use crate::repository::Repository;
use crate::store::NewTask;
use crate::task::{TaskKind, new_task_id};

/// A change of the project roles.
#[derive(Clone, Copy)]
enum Change<'a> {
    Roles(DelegationAction, &'a Value),
    Upload(&'a Map<String, Value>),
}

/// How often a change of the project roles is retried when others changed them meanwhile.
const CHANGE_ATTEMPTS: usize = 16;

/// The settings entry holding [`ProjectDelegations`].
pub(crate) const DELEGATIONS_KEY: &str = "project_delegations";

/// One project role's delegation: its developers' keys and threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectRole {
    pub keys: BTreeMap<String, Key>,
    pub role: DelegatedRole,
}

/// Developer metadata accepted and waiting for the publisher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Upload {
    pub task_id: String,
    pub role: String,
    pub version: u64,
    pub metadata: Value,
    /// The delegation it was checked against: published with it.
    pub delegation: ProjectRole,
}

/// The project roles of a pep480 repository.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProjectDelegations {
    /// Added through the API: uploads are checked against these.
    pub accepted: BTreeMap<String, ProjectRole>,
    /// What recently-claimed lists: each published project metadata verifies with it.
    pub published: BTreeMap<String, ProjectRole>,
    pub uploads: Vec<Upload>,
    /// Delegation tasks that finish with the next publication.
    pub pending_tasks: Vec<String>,
}

impl ProjectDelegations {
    /// recently-claimed's delegations: the published project roles, by name.
    pub fn recently_claimed(published: &BTreeMap<String, ProjectRole>) -> Delegations {
        let mut d = crate::pep480::empty_delegations();
        let mut roles = Vec::new();
        for p in published.values() {
            d.keys.extend(p.keys.clone());
            roles.push(p.role.clone());
        }
        d.roles = Some(roles);
        d
    }
}

/// What `/api/v1/delegations` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DelegationAction {
    Add,
    Update,
    Delete,
}

fn corrupt(e: impl std::fmt::Display) -> Error {
    Error::Corrupt(e.to_string())
}

/// Parses `{delegations: {keys, roles}}` into project roles, each checked.
fn parse_roles(payload: &Value) -> Result<Vec<ProjectRole>> {
    let d = payload
        .get("delegations")
        .and_then(Value::as_object)
        .ok_or_else(|| Error::invalid("delegations", "is required and must be an object"))?;
    let mut keys = BTreeMap::new();
    if let Some(given) = d.get("keys") {
        let given = given
            .as_object()
            .ok_or_else(|| Error::invalid("delegations.keys", "must be an object"))?;
        for (keyid, value) in given {
            let field = format!("delegations.keys.{keyid}");
            let key: Key = serde_json::from_value(value.clone())
                .map_err(|e| Error::invalid(&field, e.to_string()))?;
            key.verifier(keyid)
                .map_err(|e| Error::invalid(&field, e.to_string()))?;
            if key.keyid() != *keyid {
                return Err(Error::invalid(
                    &field,
                    format!("the keyid of this key is {}", key.keyid()),
                ));
            }
            keys.insert(keyid.clone(), key);
        }
    }
    let roles = d
        .get("roles")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::invalid("delegations.roles", "is required and must be a list"))?;
    if roles.is_empty() {
        return Err(Error::invalid("delegations.roles", "must not be empty"));
    }
    let mut out = Vec::new();
    for (i, r) in roles.iter().enumerate() {
        let field = format!("delegations.roles[{i}]");
        let name = r
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::invalid(format!("{field}.name"), "is required"))?;
        let project = name.strip_prefix(PROJECT_PREFIX).unwrap_or(name);
        let pattern = project_pattern(project);
        let paths = match r.get("paths") {
            None | Some(Value::Null) => vec![pattern.clone()],
            Some(p) => serde_json::from_value(p.clone())
                .map_err(|e| Error::invalid(format!("{field}.paths"), e.to_string()))?,
        };
        let terminating = match r.get("terminating") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(Error::invalid(
                    format!("{field}.terminating"),
                    "must be true",
                ));
            }
        };
        let keyids: Vec<String> = r
            .get("keyids")
            .cloned()
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| Error::invalid(format!("{field}.keyids"), e.to_string()))?
            .ok_or_else(|| Error::invalid(format!("{field}.keyids"), "is required"))?;
        let threshold = r
            .get("threshold")
            .and_then(Value::as_u64)
            .ok_or_else(|| Error::invalid(format!("{field}.threshold"), "is required (>= 1)"))?;
        let mut unrecognized = Map::new();
        if let Some(policy) = r.get("x-rstuf-expire-policy") {
            unrecognized.insert("x-rstuf-expire-policy".into(), policy.clone());
        }
        let role = DelegatedRole {
            name: name.to_string(),
            keyids: keyids.clone(),
            threshold,
            terminating,
            paths: Some(paths),
            path_hash_prefixes: None,
            unrecognized,
        };
        if normalise_project(project) != project || !name.starts_with(PROJECT_PREFIX) {
            return Err(Error::invalid(
                format!("{field}.name"),
                format!("{name:?} must be project-{{PEP 503 normalised name}}"),
            ));
        }
        check_project_role(&role, &keys, &field)?;
        let role_keys = keyids
            .iter()
            .filter_map(|k| keys.get(k).map(|key| (k.clone(), key.clone())))
            .collect();
        out.push(ProjectRole {
            keys: role_keys,
            role,
        });
    }
    Ok(out)
}

impl Repository {
    /// The project roles and the exact stored text (for a compare-and-swap).
    pub(crate) async fn project_delegations(&self) -> Result<(ProjectDelegations, Option<String>)> {
        let text = self.store().setting_text(DELEGATIONS_KEY).await?;
        let state = match &text {
            None => ProjectDelegations::default(),
            Some(t) => serde_json::from_str(t).map_err(corrupt)?,
        };
        Ok((state, text))
    }

    /// Runs a change of the project roles until it applies to the state it
    /// read: API processes and the publisher may change it at the same time.
    async fn change_delegations(&self, change: Change<'_>) -> Result<String> {
        let _guard = self.delegation_lock().await;
        for _ in 0..CHANGE_ATTEMPTS {
            let (state, old) = self.project_delegations().await?;
            let (state, task) = match change {
                Change::Roles(action, payload) => Self::delegation_change(state, action, payload)?,
                Change::Upload(given) => self.upload_change(state, given).await?,
            };
            let value = serde_json::to_value(&state).map_err(corrupt)?;
            if self
                .store()
                .replace_setting(DELEGATIONS_KEY, old.as_deref(), &value, Some(&task))
                .await?
            {
                self.wake_publisher();
                return Ok(task.id);
            }
        }
        Err(Error::Corrupt(format!(
            "project delegations changed by others {CHANGE_ATTEMPTS} times in a row; try again"
        )))
    }

    /// `POST`/`PUT /api/v1/delegations`, `POST /api/v1/delegations/delete`.
    /// `Ok(None)` on a pep458 repository (it has no custom delegations).
    pub async fn delegations(
        &self,
        action: DelegationAction,
        payload: &Value,
    ) -> Result<Option<String>> {
        if self.pep480_settings().await?.is_none() {
            return Ok(None);
        }
        let task_id = self
            .change_delegations(Change::Roles(action, payload))
            .await?;
        Ok(Some(task_id))
    }

    fn delegation_change(
        mut state: ProjectDelegations,
        action: DelegationAction,
        payload: &Value,
    ) -> Result<(ProjectDelegations, NewTask)> {
        let mut delegated = Vec::new();
        let mut failed = Vec::new();
        if action == DelegationAction::Delete {
            let roles = payload
                .get("delegations")
                .and_then(|d| d.get("roles"))
                .and_then(Value::as_array)
                .ok_or_else(|| {
                    Error::invalid("delegations.roles", "is required and must be a list")
                })?;
            for (i, r) in roles.iter().enumerate() {
                let name = r.get("name").and_then(Value::as_str).ok_or_else(|| {
                    Error::invalid(format!("delegations.roles[{i}].name"), "is required")
                })?;
                // Uploads waiting for it fail at the next publication.
                if state.accepted.remove(name).is_some() {
                    delegated.push(name.to_string());
                } else {
                    failed.push(name.to_string());
                }
            }
        } else {
            for role in parse_roles(payload)? {
                let name = role.role.name.clone();
                let exists = state.accepted.contains_key(&name);
                if exists == (action == DelegationAction::Update) {
                    state.accepted.insert(name.clone(), role);
                    delegated.push(name);
                } else {
                    failed.push(name);
                }
            }
        }
        let task_id = new_task_id();
        let pending = !delegated.is_empty();
        if pending {
            state.pending_tasks.push(task_id.clone());
        }
        let task = NewTask {
            id: task_id.clone(),
            kind: TaskKind::MetadataDelegation.as_str(),
            message: "Delegation(s) processed.".into(),
            details: json!({"delegated_roles": delegated, "failed_roles": failed, "action": match action {
                DelegationAction::Add => "add", DelegationAction::Update => "update", DelegationAction::Delete => "delete" }}),
            done: !pending,
        };
        Ok((state, task))
    }

    /// `POST /api/v1/delegations/metadata`: `{metadata: {ROLE: <signed
    /// targets metadata>}}`, made and signed by the project's developers.
    /// Checked against the accepted delegation; published as given.
    pub async fn upload_project_metadata(&self, payload: &Value) -> Result<String> {
        if self.pep480_settings().await?.is_none() {
            return Err(Error::invalid(
                "metadata",
                "project metadata needs the pep480 layout",
            ));
        }
        let given = payload
            .get("metadata")
            .and_then(Value::as_object)
            .filter(|m| !m.is_empty())
            .ok_or_else(|| Error::invalid("metadata", "is required: {ROLE: metadata}"))?;
        self.change_delegations(Change::Upload(given)).await
    }

    async fn upload_change(
        &self,
        mut state: ProjectDelegations,
        given: &Map<String, Value>,
    ) -> Result<(ProjectDelegations, NewTask)> {
        let task_id = new_task_id();
        let mut roles = Vec::new();
        for (name, doc) in given {
            let field = format!("metadata.{name}");
            let delegation = state.accepted.get(name).cloned().ok_or_else(|| {
                Error::invalid(
                    &field,
                    "is not a project role recently-claimed delegates to",
                )
            })?;
            let raw = RawMetadata::from_value(name, doc.clone())
                .map_err(|e| Error::invalid(&field, e.to_string()))?;
            if raw.role_type() != Some("targets") {
                return Err(Error::invalid(
                    format!("{field}.signed._type"),
                    "must be targets",
                ));
            }
            let verification = check_signatures(
                name,
                &delegation.role.keyids,
                delegation.role.threshold,
                &delegation.keys,
                raw.signed_bytes(),
                raw.signatures(),
            );
            if !verification.is_satisfied() {
                return Err(Error::invalid(
                    format!("{field}.signatures"),
                    format!(
                        "{} valid signature(s) by the delegation's keys; {} needed",
                        verification.signed.len(),
                        verification.threshold
                    ),
                ));
            }
            let md: Metadata<Targets> = raw
                .into_metadata(name)
                .map_err(|e| Error::invalid(&field, e.to_string()))?;
            let published = self.store().role(name).await?.map_or(0, |r| r.version);
            let pending = state
                .uploads
                .iter()
                .filter(|u| u.role == *name)
                .map(|u| u.version)
                .max()
                .unwrap_or(0);
            let floor = published.max(pending);
            if md.signed.version <= floor || (floor == 0 && md.signed.version != 1) {
                return Err(Error::invalid(
                    format!("{field}.signed.version"),
                    if floor == 0 {
                        format!(
                            "must be 1 (nothing published yet), got {}",
                            md.signed.version
                        )
                    } else {
                        format!("must be greater than {floor}, got {}", md.signed.version)
                    },
                ));
            }
            if md.signed.is_expired(UtcTime::now()) {
                return Err(Error::invalid(
                    format!("{field}.signed.expires"),
                    format!("{} is in the past", md.signed.expires),
                ));
            }
            let pattern = delegation
                .role
                .paths
                .as_ref()
                .and_then(|p| p.first())
                .cloned()
                .unwrap_or_default();
            if let Some(path) = md
                .signed
                .targets
                .keys()
                .find(|p| !matches_path_pattern(p, &pattern))
            {
                return Err(Error::invalid(
                    format!("{field}.signed.targets"),
                    format!("{path:?} is outside {pattern:?}"),
                ));
            }
            if md.signed.delegations.is_some() {
                return Err(Error::invalid(
                    format!("{field}.signed.delegations"),
                    "a project role delegates no further",
                ));
            }
            roles.push(name.clone());
            state.uploads.push(Upload {
                task_id: task_id.clone(),
                role: name.clone(),
                version: md.signed.version,
                metadata: doc.clone(),
                delegation,
            });
        }
        state.pending_tasks.push(task_id.clone());
        let task = NewTask {
            id: task_id.clone(),
            kind: TaskKind::ProjectMetadata.as_str(),
            message: "Project metadata accepted.".into(),
            details: json!({"roles": roles}),
            done: false,
        };
        Ok((state, task))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tufa_metadata::{PrivateKey, Scheme, Signer};

    fn payload(name: &str, extra: Value) -> (Value, String) {
        let key = PrivateKey::generate(Scheme::Ed25519).unwrap();
        let keyid = key.keyid().to_string();
        let mut role = json!({"name": name, "keyids": [keyid], "threshold": 1});
        if let (Some(role), Some(extra)) = (role.as_object_mut(), extra.as_object()) {
            role.extend(extra.clone());
        }
        let body = json!({"delegations": {"keys": {&keyid: key.public_key()}, "roles": [role]}});
        (body, keyid)
    }

    fn field(result: Result<Vec<ProjectRole>>) -> String {
        match result {
            Err(Error::InvalidRequest { field, .. }) => field,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn rstuf_payload_becomes_a_terminating_project_role() {
        let (body, keyid) = payload("project-foo", json!({"x-rstuf-expire-policy": 30}));
        let roles = parse_roles(&body).unwrap();
        assert_eq!(roles.len(), 1);
        let r = &roles[0].role;
        assert!(r.terminating);
        assert_eq!(
            r.paths.as_deref(),
            Some(&["packages/foo/*".to_string()][..])
        );
        assert_eq!(r.keyids, std::slice::from_ref(&keyid));
        assert!(roles[0].keys.contains_key(&keyid));
    }

    #[test]
    fn bad_project_roles_name_the_field() {
        let cases = [
            ("project-Foo", json!({}), "delegations.roles[0].name"),
            ("foo", json!({}), "delegations.roles[0].name"),
            (
                "project-foo",
                json!({"paths": ["packages/*/*"]}),
                "delegations.roles[0].paths",
            ),
            (
                "project-foo",
                json!({"terminating": false}),
                "delegations.roles[0].terminating",
            ),
            (
                "project-foo",
                json!({"threshold": 0}),
                "delegations.roles[0].threshold",
            ),
            (
                "project-foo",
                json!({"threshold": 2}),
                "delegations.roles[0].threshold",
            ),
            (
                "project-foo",
                json!({"keyids": ["ab"]}),
                "delegations.roles[0].keyids",
            ),
        ];
        for (name, extra, want) in cases {
            let (body, _) = payload(name, extra);
            assert_eq!(field(parse_roles(&body)), want, "{name}");
        }
        let (mut body, keyid) = payload("project-foo", json!({}));
        let key = body["delegations"]["keys"][&keyid].take();
        body["delegations"]["keys"] = json!({ "00": key });
        assert_eq!(field(parse_roles(&body)), "delegations.keys.00");
    }
}
