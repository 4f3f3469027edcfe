//! The repository's settings, fixed at bootstrap (expiries may change later).

use serde::{Deserialize, Serialize};

/// Role lifetimes in days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expiration {
    pub root: u32,
    pub targets: u32,
    pub snapshot: u32,
    pub timestamp: u32,
    pub bins: u32,
}

impl Default for Expiration {
    /// PEP 458 as amended for Warehouse: bins 7 days.
    fn default() -> Self {
        Expiration {
            root: 365,
            targets: 365,
            snapshot: 1,
            timestamp: 1,
            bins: 7,
        }
    }
}

impl Expiration {
    /// Lifetime in seconds of role `role` (any bin counts as `bins`).
    pub fn seconds(&self, role: &str) -> i64 {
        let days = match role {
            "root" => self.root,
            // pep480's online delegating roles live as long as pep458's online targets.
            "targets" | "unclaimed" | "recently-claimed" => self.targets,
            "snapshot" => self.snapshot,
            "timestamp" => self.timestamp,
            _ => self.bins,
        };
        i64::from(days) * 86_400
    }
}

/// Where bootstrap stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum BootstrapState {
    /// Accepted; the publisher has not written the first metadata yet.
    Pending { task_id: String },
    /// Root waits for more signatures (distributed asynchronous signing).
    Signing { task_id: String },
    /// The repository is live.
    Done { task_id: String },
}

impl BootstrapState {
    pub fn task_id(&self) -> &str {
        match self {
            BootstrapState::Pending { task_id }
            | BootstrapState::Signing { task_id }
            | BootstrapState::Done { task_id } => task_id,
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self, BootstrapState::Done { .. })
    }

    /// RSTUF's `BOOTSTRAP` value: `pre-<task>` while pending, `<task>` when done.
    pub fn rstuf_value(&self) -> String {
        match self {
            BootstrapState::Pending { task_id } => format!("pre-{task_id}"),
            BootstrapState::Signing { task_id } => format!("signing-{task_id}"),
            BootstrapState::Done { task_id } => task_id.clone(),
        }
    }
}

/// The delegation layout, fixed at bootstrap (DESIGN.md section 2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// `targets` (online) delegates straight to the succinct bins (RSTUF-identical).
    #[default]
    Pep458,
    /// `targets` (offline) delegates to `claimed` (offline), `recently-claimed`
    /// and `unclaimed` (online; it delegates to the bins), for developer signing.
    Pep480,
}

impl Layout {
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::Pep458 => "pep458",
            Layout::Pep480 => "pep480",
        }
    }

    pub fn is_pep458(&self) -> bool {
        *self == Layout::Pep458
    }
}

/// The pep480 role that holds the bins.
pub const UNCLAIMED: &str = "unclaimed";
/// The pep480 online role for newly claimed projects.
pub const RECENTLY_CLAIMED: &str = "recently-claimed";
/// The pep480 offline role for projects claimed for good.
pub const CLAIMED: &str = "claimed";
/// The paths claimed and recently-claimed are trusted for (any project's files).
pub const PROJECT_FILES_PATTERN: &str = "packages/*/*";

/// Everything fixed at bootstrap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositorySettings {
    pub expiration: Expiration,
    pub number_of_delegated_bins: u32,
    /// The keyid of the online key that signs targets, snapshot, timestamp and bins.
    pub online_keyid: String,
    /// Root's threshold and number of keys, for `GET /config`.
    pub root_threshold: u64,
    pub root_num_keys: usize,
    /// Absent in settings stored before pep480 existed (and never written for
    /// pep458), so those databases load unchanged.
    #[serde(default, skip_serializing_if = "Layout::is_pep458")]
    pub layout: Layout,
}

impl RepositorySettings {
    /// `log2(number_of_delegated_bins)`.
    pub fn bit_length(&self) -> u32 {
        self.number_of_delegated_bins.trailing_zeros()
    }
}

pub(crate) const SETTINGS_KEY: &str = "repository";
pub(crate) const BOOTSTRAP_KEY: &str = "bootstrap";
pub(crate) const ROOT_KEY: &str = "root";
pub(crate) const PENDING_ROOT_KEY: &str = "pending_root";
pub(crate) const FORCE_KEY: &str = "force_online";
/// pep480: the offline `targets` and `claimed` given at bootstrap (published as given).
pub(crate) const OFFLINE_ROLES_KEY: &str = "offline_roles";

/// pep480's offline roles as their signers made them: published byte for
/// byte (canonical JSON), never re-signed by the service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfflineRoles {
    pub targets: serde_json::Value,
    pub claimed: serde_json::Value,
}

/// A root update accepted and waiting for the publisher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingRoot {
    pub task_id: String,
    pub root: serde_json::Value,
}

/// A forced re-signing of online roles waiting for the publisher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForceResign {
    pub task_id: String,
    /// Role names; empty means every online role.
    pub roles: Vec<String>,
}
