//! Metadata storage failing under a running service: changes are still
//! accepted (the state store has them), nothing is published while writes
//! fail, `/healthz` says why, and once storage is back every accepted
//! change is published and `tufa verify` is clean.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::time::{Duration, Instant};

use tufa_tests::server::Server;
use tufa_tests::{http, published_targets, verify_clean};

fn add(base: &str, name: &str) -> String {
    let body = format!(
        r#"{{"artifacts":[{{"path":"packages/{name}/{name}-1.0.tar.gz","info":{{"length":1,"hashes":{{"sha256":"{}"}}}}}}]}}"#,
        "ab".repeat(32)
    );
    let (status, body) = http(base, "POST", "/api/v1/artifacts/", &body);
    assert_eq!(status, 202, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["data"]["task_id"].as_str().unwrap().to_string()
}

fn state(base: &str, task: &str) -> String {
    let (_, body) = http(base, "GET", &format!("/api/v1/task/?task_id={task}"), "");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["data"]["state"].as_str().unwrap_or_default().to_string()
}

fn wait_success(base: &str, task: &str) {
    let start = Instant::now();
    while state(base, task) != "SUCCESS" {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "task {task} not published"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn failing_metadata_storage_delays_but_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--dev", "--dev-bins", "16"]);
    let base = server.base_url.clone();
    wait_success(&base, &add(&base, "before"));

    // The metadata directory goes away (an unmounted volume): a plain file
    // stands in its place, so every write fails, even as root.
    let metadata = server.metadata_dir();
    let away = dir.path().join("metadata.away");
    std::fs::rename(&metadata, &away).unwrap();
    std::fs::write(&metadata, b"not a directory").unwrap();

    let during = add(&base, "during");
    let start = Instant::now();
    loop {
        let (status, body) = http(&base, "GET", "/healthz", "");
        if status == 503 {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["status"], "degraded", "{body}");
            assert!(
                v["publisher_error"].as_str().unwrap().contains("metadata"),
                "{body}"
            );
            assert_eq!(v["artifacts_pending"], 1, "{body}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "healthz never reported the failure: {status} {body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(state(&base, &during), "PENDING");
    // Reading metadata fails as an outage (503 with a JSON reason), not a 500.
    let (status, body) = http(&base, "GET", "/metadata/timestamp.json", "");
    assert_eq!(status, 503, "{body}");

    // Storage comes back: the pending change is published.
    std::fs::remove_file(&metadata).unwrap();
    std::fs::rename(&away, &metadata).unwrap();
    wait_success(&base, &during);
    let (status, body) = http(&base, "GET", "/healthz", "");
    assert_eq!(status, 200, "{body}");
    drop(server);

    verify_clean(&metadata);
    let published = published_targets(&metadata);
    assert!(published.contains("packages/before/before-1.0.tar.gz"));
    assert!(published.contains("packages/during/during-1.0.tar.gz"));
}
