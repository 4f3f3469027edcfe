//! The service on PostgreSQL: a real server started by the test on
//! 127.0.0.1, the same API and publisher as on SQLite, ngclient and
//! `tufa verify` on what it publishes, and PostgreSQL restarting under it.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::process::Command;
use std::time::{Duration, Instant};

use tufa_tests::postgres::Postgres;
use tufa_tests::server::{Server, Worker};
use tufa_tests::{http, published_targets, run_python, tufa_bin, verify_clean};

fn add_artifact(base: &str, i: usize) -> (u16, String) {
    let body = format!(
        r#"{{"artifacts":[{{"path":"packages/p{i}/p{i}-1.0.tar.gz","info":{{"length":{i},"hashes":{{"sha256":"{:064x}"}}}}}}]}}"#,
        i
    );
    http(base, "POST", "/api/v1/artifacts/", &body)
}

fn task_state(base: &str, task_id: &str) -> Option<String> {
    let (status, body) = http(base, "GET", &format!("/api/v1/task/?task_id={task_id}"), "");
    if status != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v["data"]["state"].as_str().map(String::from)
}

fn task_id(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    v["data"]["task_id"].as_str().unwrap().to_string()
}

fn wait_success(base: &str, ids: &[String], timeout: Duration) {
    let start = Instant::now();
    for id in ids {
        loop {
            match task_state(base, id).as_deref() {
                Some("SUCCESS") => break,
                Some("FAILURE" | "ERRORED" | "REVOKED" | "REJECTED") => panic!("task {id} failed"),
                _ => {}
            }
            assert!(
                start.elapsed() < timeout,
                "task {id} not done in {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The whole API on PostgreSQL: artifacts added in concurrent requests and
/// removed, ngclient finding exactly what should be there, `tufa verify`
/// clean; `tufa db migrate` on the live database is a no-op.
#[test]
fn serve_on_postgres_publishes_what_ngclient_verifies() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let url = pg.url();
    let mut server = Server::start(
        dir.path(),
        &["--dev", "--dev-bins", "256", "--database-url", &url],
    );
    assert!(
        !dir.path().join("tufa.db").exists(),
        "state must be in PostgreSQL, not SQLite"
    );
    let root = server.metadata_dir().join("1.root.json");
    let out = run_python(
        "e2e_artifacts.py",
        &[
            server.base_url.as_ref(),
            root.as_os_str(),
            "--count".as_ref(),
            "2000".as_ref(),
            "--requests".as_ref(),
            "40".as_ref(),
            "--remove".as_ref(),
            "200".as_ref(),
        ],
    );
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    let migrate = Command::new(tufa_bin())
        .args(["db", "migrate", "--database-url", &url])
        .output()
        .unwrap();
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );
    assert!(String::from_utf8_lossy(&migrate.stdout).contains("schema up to date"));
    server.kill();
    verify_clean(&server.metadata_dir());
}

/// PostgreSQL restarting under a running API process and worker: requests
/// made while it is down get a 503 with a JSON reason (never a 500 or a
/// hang), the worker gets its lock back, and everything accepted before
/// and after is published.
#[test]
fn postgres_restart_is_survived() {
    let mut pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let url = pg.url();
    let _worker = Worker::start(dir.path(), &["--database-url", &url]);
    let server = Server::start(
        dir.path(),
        &[
            "--dev",
            "--dev-bins",
            "64",
            "--no-publisher",
            "--database-url",
            &url,
        ],
    );
    let base = server.base_url.clone();
    let mut ids = Vec::new();
    for i in 0..20 {
        let (status, body) = add_artifact(&base, i);
        assert_eq!(status, 202, "{body}");
        ids.push(task_id(&body));
    }
    wait_success(&base, &ids, Duration::from_secs(60));

    pg.kill();
    let (status, body) = add_artifact(&base, 1000);
    assert_eq!(status, 503, "while PostgreSQL is down: {status} {body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        v["detail"]["error"]
            .as_str()
            .unwrap()
            .contains("unreachable"),
        "{body}"
    );
    pg.restart();

    // Accepted again once PostgreSQL is back (the pool reconnects).
    let start = Instant::now();
    let mut after = Vec::new();
    for i in 20..40 {
        loop {
            let (status, body) = add_artifact(&base, i);
            if status == 202 {
                after.push(task_id(&body));
                break;
            }
            assert_eq!(status, 503, "{body}");
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "API did not recover"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    wait_success(&base, &after, Duration::from_secs(90));
    drop(server);
    let metadata = dir.path().join("metadata");
    verify_clean(&metadata);
    // Every accepted artifact is in the published metadata, and the one
    // refused while PostgreSQL was down is not.
    let published = published_targets(&metadata);
    for i in 0..40 {
        let path = format!("packages/p{i}/p{i}-1.0.tar.gz");
        assert!(published.contains(&path), "{path} not published");
    }
    assert!(!published.contains("packages/p1000/p1000-1.0.tar.gz"));
}

/// `tufa import` into PostgreSQL while the service runs: one change, one
/// task, published by the running publisher; the same CSV again changes
/// nothing; a bad row refuses the whole import.
#[test]
fn import_into_postgres() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let url = pg.url();
    let server = Server::start(
        dir.path(),
        &["--dev", "--dev-bins", "64", "--database-url", &url],
    );
    let csv = dir.path().join("import.csv");
    let mut rows = String::new();
    for i in 0..3000 {
        rows.push_str(&format!(
            "packages/imp{i}/imp{i}-1.0.tar.gz;{};sha256;{:064x}\n",
            i + 1,
            i
        ));
    }
    std::fs::write(&csv, &rows).unwrap();
    let import = |csv: &std::path::Path| {
        Command::new(tufa_bin())
            .args(["import", "--database-url", &url, "--data-dir"])
            .arg(dir.path())
            .arg("--csv")
            .arg(csv)
            .output()
            .unwrap()
    };
    let out = import(&csv);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("3000 new or changed"), "{said}");
    let again = import(&csv);
    assert!(again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("nothing new to publish"),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "packages/ok/ok-1.0.tar.gz;1;sha256;00\n../x;1;sha256;00\n",
    )
    .unwrap();
    let refused = import(&bad);
    assert!(!refused.status.success());
    drop(server);
    let metadata = dir.path().join("metadata");
    verify_clean(&metadata);
    let published = published_targets(&metadata);
    assert_eq!(
        published
            .iter()
            .filter(|p| p.starts_with("packages/imp"))
            .count(),
        3000
    );
    assert!(!published.contains("packages/ok/ok-1.0.tar.gz"));
}
