//! The bundled index end to end: `tufa serve --dev` prints an upload token;
//! twine uploads a wheel and an sdist; pip downloads and installs them from
//! `/simple/`; python-tuf's ngclient checks every page and file pip fetched
//! is exactly a signed target; bad uploads are refused with a reason and
//! change nothing; 50 concurrent uploads all land; `tufa verify` is clean.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::process::Command;

use tufa_tests::server::Server;
use tufa_tests::{run_python, tufa_bin, verify_clean};

fn start(dir: &std::path::Path) -> (Server, String) {
    let (server, printed) = Server::start_capturing(
        dir,
        &["--dev", "--dev-bins", "16", "--max-upload-size", "200000"],
    );
    let token = Server::dev_token(&printed)
        .unwrap_or_else(|| panic!("no upload token printed:\n{}", printed.join("\n")));
    assert!(
        printed.iter().any(|l| l.contains("/simple/")),
        "no index URL printed:\n{}",
        printed.join("\n")
    );
    (server, token)
}

fn add_user(server: &Server, dir: &std::path::Path, name: &str) -> String {
    let out = Command::new(tufa_bin())
        .args(["user", "add", name, "--data-dir"])
        .arg(dir)
        .envs(server.cli_env())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// twine upload, pip download and install, ngclient over every byte pip
/// saw, and every kind of bad upload refused with a reason twine shows.
#[test]
fn twine_pip_and_ngclient_agree() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (server, token) = start(dir.path());
    let other = add_user(&server, dir.path(), "alice");
    assert!(other.starts_with("tufa-"), "{other}");
    let root = server.metadata_dir().join("1.root.json");
    let out = Command::new(tufa_tests::python())
        .arg(tufa_tests::python_script("index_e2e.py"))
        .arg(&server.base_url)
        .arg(&root)
        .arg(&token)
        .arg(work.path())
        .arg("basic")
        .env("TUFA_OTHER_TOKEN", &other)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "index_e2e.py basic failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    // A restart prints no new token and keeps serving the same index.
    let metadata = server.metadata_dir();
    let (server2, printed) = server.restart(&["--dev"]);
    assert!(Server::dev_token(&printed).is_none(), "{printed:?}");
    drop(server2);
    verify_clean(&metadata);
}

/// 50 uploads at once, 25 to one project and 25 to projects of their own:
/// all land, each page lists exactly its files, all signed.
#[test]
fn fifty_concurrent_uploads_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (mut server, token) = start(dir.path());
    let root = server.metadata_dir().join("1.root.json");
    let out = run_python(
        "index_e2e.py",
        &[
            server.base_url.as_ref(),
            root.as_os_str(),
            token.as_ref(),
            work.path().as_os_str(),
            "concurrent".as_ref(),
        ],
    );
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    server.kill();
    verify_clean(&server.metadata_dir());
}

/// A file registered through the API (another index serves its bytes) is
/// signed, but this index cannot serve it: a 404 that says so, not a 500.
#[test]
fn api_registered_file_is_not_found_here_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _token) = start(dir.path());
    let body = serde_json::json!({"artifacts": [{
        "path": "packages/elsewhere/elsewhere-1.0.tar.gz",
        "info": {"length": 3, "hashes": {"sha256": "ab".repeat(32)}},
    }]});
    let (status, answer) = tufa_tests::http(
        &server.base_url,
        "POST",
        "/api/v1/artifacts/",
        &body.to_string(),
    );
    assert_eq!(status, 202, "{answer}");
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    let task_id = answer["data"]["task_id"].as_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (_, task) = tufa_tests::http(
            &server.base_url,
            "GET",
            &format!("/api/v1/task/?task_id={task_id}"),
            "",
        );
        if task.contains("SUCCESS") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "task not done: {task}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (status, answer) = tufa_tests::http(
        &server.base_url,
        "GET",
        "/packages/elsewhere/elsewhere-1.0.tar.gz",
        "",
    );
    assert_eq!(status, 404, "{answer}");
    assert!(answer.contains("does not hold its bytes"), "{answer}");
}
