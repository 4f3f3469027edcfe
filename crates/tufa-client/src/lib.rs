//! The TUF client side of tufa.
//!
//! - [`updater`]: the TUF client workflow (specification section 5) against a
//!   repository over HTTP, as python-tuf's ngclient does it.
//! - [`audit`]: the offline check of a whole published repository that a
//!   mirror operator or auditor runs (`tufa verify`).
//! - [`pypi`]: which TUF target signs which page or file of a Python index.
//! - [`proxy`]: a local index for pip and uv that serves only what the
//!   updater verified.
//!
//! All build on the verification core in `tufa-metadata`.

pub mod audit;
pub mod limits;
pub mod proxy;
pub mod pypi;
pub mod role_name;
pub mod updater;
