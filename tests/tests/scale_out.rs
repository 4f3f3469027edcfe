//! The scaled-out deployment: two API processes and three workers on one
//! PostgreSQL server; the publishing worker is SIGKILLed twice while 20,000
//! artifacts arrive in 400 concurrent requests. Every artifact is
//! published, versions only move forward, no published file is ever
//! rewritten, ngclient finds everything and `tufa verify` is clean.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tufa_metadata::{HashAlgorithm, Metadata, Timestamp};
use tufa_tests::postgres::Postgres;
use tufa_tests::server::{Server, Worker};
use tufa_tests::{published_targets, python, python_script, tufa_bin};

const ARTIFACTS: usize = 20_000;
const REQUESTS: usize = 400;

/// What a watcher saw of the metadata directory while the test ran.
#[derive(Debug, Default)]
struct Observed {
    /// Every timestamp version in the order seen.
    timestamps: Vec<u64>,
    /// The SHA-256 of each snapshot file when first seen.
    snapshots: BTreeMap<String, Vec<u8>>,
}

fn timestamp_version(metadata: &Path) -> Option<u64> {
    let bytes = std::fs::read(metadata.join("timestamp.json")).ok()?;
    Some(
        Metadata::<Timestamp>::from_slice(&bytes)
            .ok()?
            .signed
            .version,
    )
}

fn watch(metadata: PathBuf, stop: Arc<AtomicBool>, seen: Arc<Mutex<Observed>>) {
    while !stop.load(Ordering::SeqCst) {
        if let Some(v) = timestamp_version(&metadata) {
            let mut seen = seen.lock().unwrap();
            if seen.timestamps.last() != Some(&v) {
                seen.timestamps.push(v);
            }
        }
        if let Ok(entries) = std::fs::read_dir(&metadata) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.ends_with(".snapshot.json") && !name.starts_with('.') {
                    let mut seen = seen.lock().unwrap();
                    if !seen.snapshots.contains_key(&name)
                        && let Ok(bytes) = std::fs::read(entry.path())
                    {
                        seen.snapshots
                            .insert(name, HashAlgorithm::Sha256.digest(&bytes));
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn leader(workers: &[Worker]) -> Option<usize> {
    workers.iter().position(Worker::is_leading)
}

/// Waits until a worker leads and has published at least one timestamp
/// newer than `after`; returns it.
fn wait_for_leader_publishing(
    workers: &[Worker],
    metadata: &Path,
    after: u64,
    timeout: Duration,
) -> (usize, u64) {
    let start = Instant::now();
    loop {
        if let (Some(i), Some(v)) = (leader(workers), timestamp_version(metadata))
            && v > after
        {
            return (i, v);
        }
        assert!(
            start.elapsed() < timeout,
            "no worker published within {timeout:?}; logs:\n{}",
            workers
                .iter()
                .map(|w| w.log().join("\n"))
                .collect::<Vec<_>>()
                .join("\n---\n")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn two_apis_three_workers_and_the_leader_killed_twice() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let url = pg.url();
    let metadata = dir.path().join("metadata");
    let mut workers: Vec<Worker> = (0..3)
        .map(|_| Worker::start(dir.path(), &["--database-url", &url]))
        .collect();
    let api1 = Server::start(
        dir.path(),
        &[
            "--dev",
            "--dev-bins",
            "1024",
            "--no-publisher",
            "--database-url",
            &url,
        ],
    );
    let api2 = Server::start(dir.path(), &["--no-publisher", "--database-url", &url]);
    let bootstrap_version = timestamp_version(&metadata).expect("bootstrap published");

    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Observed::default()));
    let watcher = {
        let (metadata, stop, seen) = (metadata.clone(), Arc::clone(&stop), Arc::clone(&seen));
        std::thread::spawn(move || watch(metadata, stop, seen))
    };

    let root = metadata.join("1.root.json");
    let driver = Command::new(python())
        .arg(python_script("e2e_artifacts.py"))
        .arg(&api1.base_url)
        .arg(&root)
        .args(["--extra-base", &api2.base_url])
        .args(["--count", &ARTIFACTS.to_string()])
        .args(["--requests", &REQUESTS.to_string()])
        .args(["--remove", "500"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the driver");

    // Kill whoever publishes as soon as it has published, twice.
    let mut killed = Vec::new();
    let mut last = bootstrap_version;
    for _ in 0..2 {
        let (i, v) =
            wait_for_leader_publishing(&workers, &metadata, last, Duration::from_secs(120));
        workers[i].kill();
        killed.push((workers[i].pid(), v));
        last = v;
    }
    let out = driver.wait_with_output().expect("driver finished");
    assert!(
        out.status.success(),
        "driver failed:\n{}\n{}\nworkers:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        workers
            .iter()
            .map(|w| w.log().join("\n"))
            .collect::<Vec<_>>()
            .join("\n---\n")
    );
    eprintln!(
        "driver: {}killed leaders (pid, timestamp version): {killed:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    stop.store(true, Ordering::SeqCst);
    watcher.join().unwrap();
    drop(api1);
    drop(api2);
    let survivor = leader(&workers).expect("the third worker took over");
    drop(workers);

    // Versions only moved forward.
    let seen = seen.lock().unwrap();
    assert!(
        seen.timestamps.windows(2).all(|w| w[0] < w[1]),
        "timestamp versions went backwards: {:?}",
        seen.timestamps
    );
    // No snapshot was ever rewritten.
    for (name, first) in &seen.snapshots {
        let now = HashAlgorithm::Sha256.digest(&std::fs::read(metadata.join(name)).unwrap());
        assert_eq!(&now, first, "{name} was rewritten");
    }
    // Every artifact but the 500 removed is published.
    let published = published_targets(&metadata);
    let artifacts = published
        .iter()
        .filter(|p| p.starts_with("packages/project"))
        .count();
    assert_eq!(artifacts, ARTIFACTS - 500, "survivor: worker {survivor}");
    let verify = Command::new(tufa_bin())
        .arg("verify")
        .arg(&metadata)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "tufa verify: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
}
