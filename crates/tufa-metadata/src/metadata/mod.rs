//! The four top-level roles and delegated targets roles, as serde types that
//! keep every field they do not know.
//!
//! Each role's common fields (`_type`, `spec_version`, `version`, `expires`)
//! are checked by [`Role::validate`] when a document is read.

mod encoded;
mod envelope;
mod root;
mod snapshot;
mod targets;

pub use encoded::{bin_signed_bytes, sign_encoded, target_file_bytes};
pub use envelope::{Metadata, RawMetadata, Verification, check_signatures};
pub use root::{RoleKeys, Root, TOP_LEVEL_ROLES};
pub use snapshot::{MetaFile, Snapshot, Timestamp};
pub use targets::{DelegatedRole, Delegations, SuccinctRoles, TargetFile, Targets};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::time::UtcTime;

/// The spec version tufa writes.
pub const SPEC_VERSION: &str = "1.0.31";

/// Behaviour shared by the `signed` part of every role.
pub trait Role: Serialize + DeserializeOwned + Clone + std::fmt::Debug {
    /// The `_type` value.
    const TYPE: &'static str;

    fn version(&self) -> u64;
    fn set_version(&mut self, version: u64);
    fn expires(&self) -> UtcTime;
    fn set_expires(&mut self, expires: UtcTime);
    fn spec_version(&self) -> &str;
    fn type_field(&self) -> &str;

    /// Checks what serde cannot: `_type`, `spec_version`, `version > 0`, and
    /// each role's own invariants. `name` labels errors.
    fn validate(&self, name: &str) -> Result<(), Error> {
        if self.type_field() != Self::TYPE {
            return Err(Error::WrongType {
                expected: Self::TYPE.to_string(),
                found: self.type_field().to_string(),
            });
        }
        check_spec_version(name, self.spec_version())?;
        if self.version() == 0 {
            return Err(Error::malformed(name, "version must be at least 1"));
        }
        self.validate_role(name)
    }

    /// Role-specific invariants.
    fn validate_role(&self, _name: &str) -> Result<(), Error> {
        Ok(())
    }

    /// True when `expires` is at or before `now` (python-tuf: `now >= expires`).
    fn is_expired(&self, now: UtcTime) -> bool {
        now >= self.expires()
    }
}

/// Accepts `1.x.y` and legacy `1.x`, as python-tuf does.
fn check_spec_version(name: &str, spec: &str) -> Result<(), Error> {
    let parts: Vec<&str> = spec.split('.').collect();
    let digits = parts
        .iter()
        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if !(2..=3).contains(&parts.len()) || !digits {
        return Err(Error::malformed(
            name,
            format!("cannot parse spec_version {spec:?}"),
        ));
    }
    if parts[0] != "1" {
        return Err(Error::malformed(
            name,
            format!("unsupported spec_version {spec:?}"),
        ));
    }
    Ok(())
}

/// Implements the accessor half of [`Role`] for a struct with the common fields.
macro_rules! common_fields {
    ($ty:ty, $type_name:expr) => {
        impl $crate::metadata::Role for $ty {
            const TYPE: &'static str = $type_name;
            fn version(&self) -> u64 {
                self.version
            }
            fn set_version(&mut self, version: u64) {
                self.version = version;
            }
            fn expires(&self) -> $crate::time::UtcTime {
                self.expires
            }
            fn set_expires(&mut self, expires: $crate::time::UtcTime) {
                self.expires = expires;
            }
            fn spec_version(&self) -> &str {
                &self.spec_version
            }
            fn type_field(&self) -> &str {
                &self.type_
            }
            fn validate_role(&self, name: &str) -> Result<(), $crate::error::Error> {
                self.check(name)
            }
        }
    };
}
pub(crate) use common_fields;

/// Keyids of a role must be unique and its threshold at least 1 (python-tuf's `Role`).
fn check_role_keys(name: &str, keyids: &[String], threshold: u64) -> Result<(), Error> {
    let mut seen = std::collections::BTreeSet::new();
    for keyid in keyids {
        if !seen.insert(keyid) {
            return Err(Error::malformed(
                name,
                format!("keyid {keyid} listed twice"),
            ));
        }
    }
    if threshold < 1 {
        return Err(Error::malformed(name, "threshold must be at least 1"));
    }
    Ok(())
}
