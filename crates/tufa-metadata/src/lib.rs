//! TUF metadata for tufa: types, canonical JSON, keys, signatures, hashes,
//! succinct hash bins and delegation resolution.
//!
//! Byte-exact with python-tuf and securesystemslib, which define TUF interop
//! in practice. No I/O: everything here is a pure function of its inputs, so
//! the client, the repository and auditors share one implementation.

pub mod bins;
pub mod canonical;
pub mod delegation;
pub mod error;
pub mod hash;
pub mod json;
pub mod key;
pub mod metadata;
mod rsa_pss;
pub mod signer;
pub mod time;

pub use error::Error;
pub use hash::HashAlgorithm;
pub use key::{Key, Scheme, Signature};
pub use metadata::{
    DelegatedRole, Delegations, MetaFile, Metadata, RawMetadata, Role, Root, Snapshot,
    SuccinctRoles, TargetFile, Targets, Timestamp,
};
pub use signer::{PrivateKey, Signer};
pub use time::UtcTime;
