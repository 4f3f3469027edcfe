//! Running `tufa serve` as a real process for tests.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::postgres::Postgres;
use crate::tufa_bin;

/// A `tufa serve` process, killed on drop.
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base_url: String,
    pub data_dir: PathBuf,
    /// The PostgreSQL server of this test when `TUFA_TEST_ENGINE=postgres`
    /// (dropped after the service, which the field order guarantees).
    pub postgres: Option<Postgres>,
}

/// The engine the service tests run on: `TUFA_TEST_ENGINE=postgres` runs
/// them on a PostgreSQL server of their own; SQLite otherwise.
pub fn test_engine_is_postgres() -> bool {
    std::env::var("TUFA_TEST_ENGINE").is_ok_and(|e| e == "postgres")
}

impl Server {
    /// Starts `tufa serve --data-dir DIR --listen 127.0.0.1:0 ARGS...` and waits
    /// until it listens (and, with `--dev`, until bootstrap has published).
    pub fn start(data_dir: &Path, args: &[&str]) -> Server {
        Server::start_capturing(data_dir, args).0
    }

    /// As [`Server::start`], also returning what the server printed before
    /// it listened (with `--dev` on an empty directory: the upload token).
    pub fn start_capturing(data_dir: &Path, args: &[&str]) -> (Server, Vec<String>) {
        Server::start_with_env(data_dir, args, &[])
    }

    /// As [`Server::start_capturing`], with extra environment variables for the service.
    pub fn start_with_env(
        data_dir: &Path,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> (Server, Vec<String>) {
        let postgres = (test_engine_is_postgres()
            && !args.iter().any(|a| a.starts_with("--database-url")))
        .then(Postgres::start);
        Server::spawn(data_dir, args, envs, postgres)
    }

    /// Stops this server and starts another on the same data (and, on
    /// PostgreSQL, the same database), as an operator restarting it would.
    pub fn restart(mut self, args: &[&str]) -> (Server, Vec<String>) {
        self.kill();
        let postgres = self.postgres.take();
        Server::spawn(&self.data_dir.clone(), args, &[], postgres)
    }

    fn spawn(
        data_dir: &Path,
        args: &[&str],
        envs: &[(&str, &str)],
        postgres: Option<Postgres>,
    ) -> (Server, Vec<String>) {
        let mut command = Command::new(tufa_bin());
        command
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0"]);
        if let Some(pg) = &postgres {
            command.arg("--database-url").arg(pg.url());
        }
        let mut child = command
            .args(args)
            .envs(envs.iter().copied())
            .env("TUFA_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tufa serve");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let mut base_url = None;
        let mut seen = Vec::new();
        for line in lines.by_ref() {
            let line = line.expect("read stderr");
            if let Some(rest) = line.strip_prefix("tufa serve: listening on ") {
                base_url = Some(rest.trim().to_string());
                break;
            }
            seen.push(line);
        }
        let base_url =
            base_url.unwrap_or_else(|| panic!("tufa serve did not start:\n{}", seen.join("\n")));
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let server = Server {
            child,
            base_url,
            data_dir: data_dir.to_path_buf(),
            postgres,
        };
        if args.contains(&"--dev") {
            // With --no-publisher a worker publishes the bootstrap, and
            // object storage has no file to wait for: ask the API only.
            if !args.iter().any(|a| a.starts_with("--storage")) {
                server.wait_for_file("timestamp.json", Duration::from_secs(180));
            }
            server.wait_bootstrapped(Duration::from_secs(180));
        }
        (server, seen)
    }

    /// Environment for `tufa` commands run against this server's state
    /// (`tufa user`, `tufa index`): its database when not the default.
    pub fn cli_env(&self) -> Vec<(String, String)> {
        self.postgres
            .iter()
            .map(|pg| ("TUFA_DATABASE_URL".to_string(), pg.url()))
            .collect()
    }

    /// The dev upload token `tufa serve --dev` printed, if any.
    pub fn dev_token(printed: &[String]) -> Option<String> {
        printed.iter().find_map(|l| {
            l.split_once("upload token for user dev (shown once): ")
                .map(|(_, t)| t.trim().to_string())
        })
    }

    /// The published metadata directory.
    pub fn metadata_dir(&self) -> PathBuf {
        self.data_dir.join("metadata")
    }

    /// Waits until the API reports bootstrap finished (the state is recorded
    /// a moment after the first timestamp is written).
    pub fn wait_bootstrapped(&self, timeout: Duration) {
        let start = Instant::now();
        loop {
            let (_, body) = crate::http(&self.base_url, "GET", "/api/v1/bootstrap", "");
            let done = body.contains("\"bootstrap\":true");
            if done {
                return;
            }
            assert!(
                start.elapsed() < timeout,
                "bootstrap not finished within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for a metadata file to appear.
    pub fn wait_for_file(&self, name: &str, timeout: Duration) {
        let path = self.metadata_dir().join(name);
        let start = Instant::now();
        while !path.exists() {
            assert!(
                start.elapsed() < timeout,
                "{} did not appear within {timeout:?}",
                path.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILLs the server and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A `tufa worker` process, killed on drop. It knows from its log whether
/// it holds the publisher lock.
#[derive(Debug)]
pub struct Worker {
    child: Child,
    leading: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Worker {
    /// Starts `tufa worker --data-dir DIR ARGS...`.
    pub fn start(data_dir: &Path, args: &[&str]) -> Worker {
        let mut child = Command::new(tufa_bin())
            .arg("worker")
            .arg("--data-dir")
            .arg(data_dir)
            .args(args)
            .env("TUFA_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tufa worker");
        let stderr = child.stderr.take().expect("stderr");
        let leading = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        {
            let leading = Arc::clone(&leading);
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if line.contains("publisher lock taken") {
                        leading.store(true, Ordering::SeqCst);
                    } else if line.contains("publisher lock lost") {
                        leading.store(false, Ordering::SeqCst);
                    }
                    if let Ok(mut log) = log.lock() {
                        log.push(line);
                    }
                }
            });
        }
        Worker {
            child,
            leading,
            log,
        }
    }

    /// Whether this worker said it publishes (and has not said it stopped).
    pub fn is_leading(&self) -> bool {
        self.leading.load(Ordering::SeqCst)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the worker logged so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// SIGKILLs the worker and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.leading.store(false, Ordering::SeqCst);
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}
