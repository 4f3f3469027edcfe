//! `tufa serve` end to end: the real binary, its RSTUF API, python-tuf's
//! ngclient reading what it publishes, and `tufa verify` on the result.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use tufa_tests::server::Server;
use tufa_tests::{run_python, verify_clean};

/// 10,000 artifacts in 100 concurrent requests into 16384 bins; ngclient
/// finds every one in the bin python-tuf's SuccinctRoles names; 1,000
/// removed are gone.
#[test]
fn ten_thousand_artifacts_verified_by_ngclient() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &["--dev", "--dev-bins", "16384"]);
    let root = server.metadata_dir().join("1.root.json");
    let out = run_python(
        "e2e_artifacts.py",
        &[server.base_url.as_ref(), root.as_os_str()],
    );
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    server.kill();
    verify_clean(&server.metadata_dir());
}

/// Bad requests are refused with a 4xx JSON error naming the field, and
/// nothing is half-applied.
#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &["--dev", "--dev-bins", "4"]);
    run_python("e2e_bad_input.py", &[server.base_url.as_ref()]);
    server.kill();
    verify_clean(&server.metadata_dir());
}
