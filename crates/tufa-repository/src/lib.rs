//! The tufa repository engine: it keeps a TUF repository with tens of
//! thousands of hash bins signed, consistent and fresh while an index adds
//! and removes files.
//!
//! - [`store`]: the state store (SQLite in the data directory, or PostgreSQL).
//! - [`storage`]: published metadata (a directory or S3-compatible object storage; atomic, durable, snapshots and roots written once).
//! - [`repository`] also holds the publisher lock and lease (file lock or PostgreSQL advisory lock, fenced by an epoch).
//! - [`publisher`]: the single sequential publisher: batches, bins, snapshot, timestamp, expiry.
//! - [`repository`]: the service facade the HTTP API calls.
//! - [`bootstrap`]: RSTUF's bootstrap payload and its checks.

mod bin_cache;
pub mod bootstrap;
pub mod ceremony;
pub mod clock;
pub mod delegations;
pub mod dev;
pub mod error;
pub mod gc;
pub mod import;
pub mod index;
pub mod online_key;
pub mod pep480;
pub mod publisher;
pub mod repository;
pub mod settings;
pub mod signing;
pub mod storage;
pub mod store;
pub mod task;
pub mod validate;

pub use error::{Error, Result};
pub use repository::{Accepted, Repository, RepositoryConfig};
pub use settings::{BootstrapState, Expiration, Layout, RepositorySettings};
