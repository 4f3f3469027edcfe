//! Errors of the repository engine. A request error names the field that was
//! wrong so the API can answer 4xx with it; everything else is the service's.

/// Everything the repository engine can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A request that can never succeed as sent (HTTP 422).
    #[error("{field}: {reason}")]
    InvalidRequest { field: String, reason: String },

    /// The repository has not been bootstrapped yet (or is still bootstrapping).
    #[error("the repository is not bootstrapped (state: {state})")]
    NotBootstrapped { state: String },

    /// A second bootstrap.
    #[error("the repository is already bootstrapped (task {task_id})")]
    AlreadyBootstrapped { task_id: String },

    /// Metadata could not be built, signed or verified.
    #[error(transparent)]
    Metadata(#[from] tufa_metadata::Error),

    /// The state store failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),

    /// Writing or reading published metadata failed.
    #[error("metadata storage {path}: {source}")]
    Storage {
        path: String,
        source: std::io::Error,
    },

    /// Object storage failed (after its own retries).
    #[error("object storage {name}: {reason}")]
    ObjectStorage { name: String, reason: String },

    /// A file that is written once (a snapshot or a root version) exists
    /// with other content: another publisher wrote it.
    #[error("{name} is already published with other content; another publisher is active")]
    AlreadyPublished { name: String },

    /// This process no longer holds the publisher lock: another worker
    /// took over, so nothing this one prepared may be recorded.
    #[error(
        "the publisher lock was lost (epoch {ours}, current {current}); another worker publishes now"
    )]
    NotPublisher { ours: i64, current: i64 },

    /// The online signing key is missing or does not match root.
    #[error("online key: {0}")]
    OnlineKey(String),

    /// Stored state that this version cannot read: a bug or a hand edit.
    #[error("corrupt repository state: {0}")]
    Corrupt(String),
}

impl Error {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidRequest {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// True when the failure is the state store or metadata storage being
    /// unreachable for now (a restart, a lost connection): worth a retry,
    /// answered 503 rather than 500.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Database(e) => match e {
                sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => true,
                sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                    // 08: connection exception; 57P0x: the server is shutting
                    // down or starting; 53300: too many connections.
                    code.starts_with("08") || code.starts_with("57P") || code == "53300"
                }),
                _ => false,
            },
            // The metadata directory failing (a full or read-only disk, an
            // unmounted volume) is the same kind of outage for a client.
            Error::ObjectStorage { .. } | Error::Storage { .. } => true,
            _ => false,
        }
    }

    pub(crate) fn storage(path: &std::path::Path, source: std::io::Error) -> Self {
        Error::Storage {
            path: path.display().to_string(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
