//! The TUF client side of tufa.
//!
//! - [`updater`]: the TUF client workflow (specification section 5) against a
//!   repository over HTTP, as python-tuf's ngclient does it.
//! - [`audit`]: the offline check of a whole published repository that a
//!   mirror operator or auditor runs (`tufa verify`).
//!
//! Both build on the verification core in `tufa-metadata`; the proxy for pip
//! and uv will build on the updater.

pub mod audit;
pub mod limits;
pub mod role_name;
pub mod updater;
