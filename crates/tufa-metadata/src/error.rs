//! The one error type of this crate. Variants carry the facts a person needs
//! to see what was wrong: the role, the numbers, the key.

/// Everything that can go wrong reading, writing, signing or verifying metadata.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not JSON, or not the JSON shape this role needs.
    #[error("{what} is not valid: {reason}")]
    Malformed { what: String, reason: String },

    /// Canonical JSON has no floats.
    #[error("canonical JSON allows integers only, found {0}")]
    NonCanonicalNumber(String),

    /// Serialising a value to JSON failed.
    #[error("cannot serialise metadata: {0}")]
    Serialize(String),

    /// The metadata says it is another type of role than the one expected.
    #[error("expected {expected} metadata, found _type {found:?}")]
    WrongType { expected: String, found: String },

    /// The same keyid signs twice in one `signatures` list.
    #[error("{role}: keyid {keyid} appears more than once in signatures")]
    DuplicateSignature { role: String, keyid: String },

    /// Fewer valid signatures from authorised keys than the threshold asks.
    #[error("{role}: {found} of {threshold} required signatures are valid")]
    ThresholdNotMet {
        role: String,
        found: usize,
        threshold: u64,
    },

    /// The delegator has no delegation to a role of this name.
    #[error("{delegator} does not delegate to {role}")]
    UnknownDelegation { delegator: String, role: String },

    /// A key object that cannot be used: unknown type or a malformed public key.
    #[error("key {keyid}: {reason}")]
    InvalidKey { keyid: String, reason: String },

    /// A private key could not be loaded or generated.
    #[error("private key: {0}")]
    PrivateKey(String),

    /// Signing failed (the signer's own error).
    #[error("signing failed: {0}")]
    Signing(String),

    /// A hash algorithm name that is not `sha256`, `sha512` or `blake2b-256`.
    #[error("unsupported hash algorithm {0:?}")]
    UnsupportedHashAlgorithm(String),

    /// Data does not match a recorded hash.
    #[error("{what}: {algorithm} hash is {found}, expected {expected}")]
    HashMismatch {
        what: String,
        algorithm: String,
        expected: String,
        found: String,
    },

    /// Data does not have the recorded length.
    #[error("{what}: length is {found}, expected {expected}")]
    LengthMismatch {
        what: String,
        expected: u64,
        found: u64,
    },

    /// Metadata past its `expires`.
    #[error("{role} version {version} expired at {expires}")]
    Expired {
        role: String,
        version: u64,
        expires: String,
    },

    /// A version that is not the one required (rollback, mix-and-match).
    #[error("{role}: version {found}, expected {expected}")]
    VersionMismatch {
        role: String,
        expected: u64,
        found: u64,
    },

    /// A date that is not exactly `YYYY-MM-DDTHH:MM:SSZ`.
    #[error("invalid date {0:?}: expected YYYY-MM-DDTHH:MM:SSZ")]
    InvalidDate(String),

    /// Reading data for hashing failed.
    #[error("reading {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn malformed(what: impl Into<String>, reason: impl ToString) -> Self {
        Error::Malformed {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}
