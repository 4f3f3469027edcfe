//! The updater's one error type. Each variant carries the facts a person (or
//! a test) needs: the role, the versions, the URL, the limit.

use std::path::PathBuf;

use tufa_metadata::UtcTime;

/// Everything that can stop a refresh, a lookup or a download.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with an HTTP error status.
    #[error("GET {url}: HTTP status {status}")]
    Http { url: String, status: u16 },

    /// The request could not be made or the connection broke.
    #[error("GET {url}: {reason}")]
    Network { url: String, reason: String },

    /// The server sent more bytes than the limit (endless-data attack).
    #[error("GET {url}: more than {limit} bytes (endless data)")]
    LengthExceeded { url: String, limit: u64 },

    /// The server sent too slowly: nothing within the read timeout, or less
    /// than the minimum transfer rate over a window (slow-retrieval attack).
    #[error("GET {url}: transfer too slow (slow retrieval)")]
    SlowRetrieval { url: String },

    /// Writing downloaded bytes to their destination failed.
    #[error("GET {url}: writing the body failed: {source}")]
    Write {
        url: String,
        #[source]
        source: std::io::Error,
    },

    /// Metadata that is not a valid document of its role (JSON, `_type`,
    /// required fields, spec version).
    #[error("{role} metadata is invalid: {source}")]
    Invalid {
        role: String,
        #[source]
        source: Box<tufa_metadata::Error>,
    },

    /// Metadata not signed by a threshold of the keys trusted for it
    /// (arbitrary-software attack).
    #[error("{role} metadata is not signed as required ({by}): {source}")]
    Signatures {
        role: String,
        /// Whose keys it was checked against (`root version 3`, `targets`).
        by: String,
        #[source]
        source: Box<tufa_metadata::Error>,
    },

    /// Data that does not match the length or a hash its referrer lists
    /// (mix-and-match on metadata, arbitrary-software on targets).
    #[error("{what} does not match its signed length and hashes: {source}")]
    LengthOrHash {
        what: String,
        #[source]
        source: Box<tufa_metadata::Error>,
    },

    /// A version lower than one already trusted (rollback attack).
    #[error("{role}: version {found} is lower than the trusted version {trusted} (rollback)")]
    Rollback {
        role: String,
        trusted: u64,
        found: u64,
    },

    /// A version other than the one required: root N+1, snapshot as the
    /// timestamp lists it, targets roles as the snapshot lists them
    /// (mix-and-match).
    #[error("{role}: version {found}, expected version {expected}")]
    VersionMismatch {
        role: String,
        expected: u64,
        found: u64,
    },

    /// Metadata past its `expires` at the fixed reference time (freeze attack).
    #[error("{role} version {version} expired at {expires} (reference time {reference_time})")]
    Expired {
        role: String,
        version: u64,
        expires: UtcTime,
        reference_time: UtcTime,
    },

    /// A new snapshot no longer lists a role the trusted snapshot lists.
    #[error(
        "snapshot version {snapshot_version} no longer lists {role}, which the trusted snapshot lists"
    )]
    RoleRemoved { role: String, snapshot_version: u64 },

    /// A delegated role the walk needs is not listed in the trusted snapshot.
    #[error("{role} is delegated but snapshot version {snapshot_version} does not list it")]
    NotInSnapshot { role: String, snapshot_version: u64 },

    /// No trusted targets role lists the target.
    #[error("target {path:?} is not listed by any trusted targets role")]
    TargetNotFound { path: String },

    /// Local file system trouble (metadata or target directory).
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The updater was used in a way its configuration does not allow.
    #[error("{0}")]
    Config(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// True for HTTP 403 and 404, which end the root chain (no newer root).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Http { status, .. } if *status == 403 || *status == 404)
    }
}
