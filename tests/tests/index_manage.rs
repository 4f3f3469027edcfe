//! Changing the bundled index after upload, against a running
//! `tufa serve --dev`: `tufa index yank|unyank|delete --wait` (PEP 592
//! yanks, deleting a file and a whole project), and PEP 658 / 714 core
//! metadata of uploaded wheels. After every change python-tuf's ngclient
//! sees exactly the served pages as signed targets and no deleted file, real
//! pip picks what PEP 592 says, and `tufa verify` is clean
//! (`tests/python/index_manage.py`).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use tufa_tests::server::Server;
use tufa_tests::{python, python_script, tufa_bin};

fn start(dir: &std::path::Path) -> (Server, String) {
    let (server, printed) = Server::start_capturing(dir, &["--dev", "--dev-bins", "16"]);
    let token = Server::dev_token(&printed)
        .unwrap_or_else(|| panic!("no upload token printed:\n{}", printed.join("\n")));
    (server, token)
}

fn run(phase: &str) {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (server, token) = start(dir.path());
    let root = server.metadata_dir().join("1.root.json");
    let tufa = tufa_bin();
    // `tufa index` finds the server's database through TUFA_DATABASE_URL
    // when it is not DATA_DIR/tufa.db.
    let out = std::process::Command::new(python())
        .arg(python_script("index_manage.py"))
        .arg(&server.base_url)
        .arg(&root)
        .arg(&token)
        .arg(work.path())
        .arg(&tufa)
        .arg(dir.path())
        .arg(phase)
        .envs(server.cli_env())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "index_manage.py {phase} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
}

/// Yank with and without a reason, un-yank (the pages return to the same
/// bytes), delete a file, refusals, delete the project.
#[test]
fn yank_unyank_and_delete_are_published_and_verified() {
    run("manage");
}

/// PEP 658 / 714: a wheel's METADATA is signed and served as
/// `{filename}.metadata` and offered on both pages; pip resolves from it,
/// directly and through `tufa pip` (the proxy verifies it); a wheel without
/// one is accepted without it; a broken zip is a 400; deleting removes it.
#[test]
fn core_metadata_is_signed_served_and_used_by_pip() {
    run("metadata");
}
