//! Tasks, as RSTUF's API reports them: every write request gets one, and it
//! succeeds once its change is published.

use serde::Serialize;
use serde_json::value::RawValue;

/// A task's state, with RSTUF's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
#[non_exhaustive]
pub enum TaskState {
    Pending,
    Started,
    Running,
    Success,
    Failure,
    Errored,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Pending => "PENDING",
            TaskState::Started => "STARTED",
            TaskState::Running => "RUNNING",
            TaskState::Success => "SUCCESS",
            TaskState::Failure => "FAILURE",
            TaskState::Errored => "ERRORED",
        }
    }

    pub fn parse(s: &str) -> TaskState {
        match s {
            "STARTED" => TaskState::Started,
            "RUNNING" => TaskState::Running,
            "SUCCESS" => TaskState::Success,
            "FAILURE" => TaskState::Failure,
            "ERRORED" => TaskState::Errored,
            _ => TaskState::Pending,
        }
    }
}

/// What a task does (RSTUF's task names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskKind {
    Bootstrap,
    AddArtifacts,
    RemoveArtifacts,
    PublishArtifacts,
    ForceOnlineUpdate,
    MetadataUpdate,
    SignMetadata,
    DeleteSignMetadata,
    UpdateSettings,
    MetadataDelegation,
    ProjectMetadata,
}

impl TaskKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Bootstrap => "bootstrap",
            TaskKind::AddArtifacts => "add_artifacts",
            TaskKind::RemoveArtifacts => "remove_artifacts",
            TaskKind::PublishArtifacts => "publish_artifacts",
            TaskKind::ForceOnlineUpdate => "force_online_metadata_update",
            TaskKind::MetadataUpdate => "metadata_update",
            TaskKind::SignMetadata => "sign_metadata",
            TaskKind::DeleteSignMetadata => "delete_sign_metadata",
            TaskKind::UpdateSettings => "update_settings",
            TaskKind::MetadataDelegation => "metadata_delegation",
            TaskKind::ProjectMetadata => "project_metadata",
        }
    }
}

/// A task as stored and reported.
#[derive(Debug, Clone)]
pub struct Task {
    pub id: String,
    pub kind: String,
    pub state: TaskState,
    /// `Some(true)` once it succeeded, `Some(false)` when it failed.
    pub status: Option<bool>,
    pub message: Option<String>,
    pub error: Option<String>,
    /// The result details as stored: JSON text, checked but not parsed, so
    /// listing tasks of 1,000 artifacts each does not rebuild every list.
    pub details: Option<Box<RawValue>>,
    pub created: i64,
    pub updated: i64,
}

/// A fresh random task id: 32 hex digits, like RSTUF's `uuid4().hex`.
pub fn new_task_id() -> String {
    use aws_lc_rs::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    // SystemRandom only fails if the OS has no entropy source at all.
    if aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut bytes)
        .is_err()
    {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        bytes = nanos.to_le_bytes();
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    hex::encode(bytes)
}
