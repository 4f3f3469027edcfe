//! `tufa serve` end to end: the real binary, its RSTUF API, python-tuf's
//! ngclient reading what it publishes, and `tufa verify` on the result.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::time::{Duration, Instant};

use tufa_tests::server::Server;
use tufa_tests::{http, published_targets, run_python, verify_clean};

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

fn post(base: &str, path: &str, body: &str) -> String {
    let (status, text) = http(base, "POST", path, body);
    assert_eq!(status, 202, "{path}: {text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["data"]["task_id"].as_str().unwrap().to_string()
}

fn artifacts(paths: &[&str], publish: bool) -> String {
    let list: Vec<serde_json::Value> = paths
        .iter()
        .enumerate()
        .map(|(i, p)| {
            serde_json::json!({"path": p, "info": {"length": i + 1, "hashes": {"sha256": format!("{:064x}", i + 1)}}})
        })
        .collect();
    serde_json::json!({"artifacts": list, "publish_artifacts": publish}).to_string()
}

fn wait_success(base: &str, id: &str) {
    let start = Instant::now();
    loop {
        let (_, body) = http(base, "GET", &format!("/api/v1/task/?task_id={id}"), "");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        if v["data"]["state"] == "SUCCESS" {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "task {id}: {body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `publish_artifacts: false` stages changes: later published changes go
/// out without them (the staged ones are written beside the logged ones),
/// and `artifacts/publish` releases them all, removals included.
#[test]
fn staged_changes_wait_for_an_explicit_publish() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &["--dev", "--dev-bins", "4"]);
    let base = server.base_url.clone();
    let published = |server: &Server| published_targets(&server.metadata_dir());
    let set = |paths: &[&str]| paths.iter().map(|p| p.to_string()).collect();

    let live = post(
        &base,
        "/api/v1/artifacts/",
        &artifacts(&["a/1", "a/2"], true),
    );
    wait_success(&base, &live);
    // Staged, then a published change logged after it, then a staged
    // removal: only the published change goes out.
    post(
        &base,
        "/api/v1/artifacts/",
        &artifacts(&["s/1", "s/2"], false),
    );
    let other = post(&base, "/api/v1/artifacts/", &artifacts(&["a/3"], true));
    post(
        &base,
        "/api/v1/artifacts/delete",
        &serde_json::json!({"artifacts": ["a/1"], "publish_artifacts": false}).to_string(),
    );
    wait_success(&base, &other);
    assert_eq!(published(&server), set(&["a/1", "a/2", "a/3"]));

    let release = post(&base, "/api/v1/artifacts/publish", "");
    wait_success(&base, &release);
    assert_eq!(published(&server), set(&["a/2", "a/3", "s/1", "s/2"]));
    server.kill();
    verify_clean(&server.metadata_dir());
}
