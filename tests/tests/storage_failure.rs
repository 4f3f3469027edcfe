//! Metadata storage failing under a running service: changes are still
//! accepted (the state store has them), nothing is published while writes
//! fail, `/healthz` says why, and once storage is back every accepted
//! change is published and `tufa verify` is clean.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use tufa_tests::server::Server;
use tufa_tests::{published_targets, tufa_bin};

fn http(base: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

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

    let out = Command::new(tufa_bin())
        .arg("verify")
        .arg(&metadata)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let published = published_targets(&metadata);
    assert!(published.contains("packages/before/before-1.0.tar.gz"));
    assert!(published.contains("packages/during/during-1.0.tar.gz"));
}
