//! The TUF client side of tufa.
//!
//! Today: [`audit`], the offline check of a whole published repository that a
//! mirror operator or auditor runs (`tufa verify`). The updater and the proxy
//! for pip and uv build on the same verification core in `tufa-metadata`.

pub mod audit;
pub mod limits;
pub mod role_name;
