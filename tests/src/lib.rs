//! Shared helpers for tufa's integration and interop tests.
//!
//! The peers (python-tuf, securesystemslib, cryptography) live in a virtual
//! environment that `.ci/run` creates at `.venv` in the checkout. Set
//! `TUFA_TEST_PYTHON` to use another interpreter.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub mod postgres;
pub mod proxy;
pub mod repo_builder;
pub mod server;

/// The workspace root (the checkout).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The Python interpreter that has the test peers installed.
///
/// Panics with instructions when there is none: an interop test that silently
/// skipped would prove nothing.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("TUFA_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = workspace_root().join(".venv/bin/python");
    assert!(
        venv.exists(),
        "no Python test peers: run `bash .ci/run` once (it creates .venv with tuf and securesystemslib) or set TUFA_TEST_PYTHON"
    );
    venv
}

/// The `rstuf` CLI (PyPI `repository-service-tuf`), from `.venv-rstuf`
/// (or `TUFA_TEST_RSTUF`).
pub fn rstuf() -> PathBuf {
    if let Some(p) = std::env::var_os("TUFA_TEST_RSTUF") {
        return PathBuf::from(p);
    }
    let bin = workspace_root().join(".venv-rstuf/bin/rstuf");
    assert!(
        bin.exists(),
        "no rstuf CLI: run `bash .ci/run` once (it creates .venv-rstuf) or set TUFA_TEST_RSTUF"
    );
    bin
}

/// A script under `tests/python/`.
pub fn python_script(name: &str) -> PathBuf {
    workspace_root().join("tests/python").join(name)
}

/// Runs a script from `tests/python/` with arguments; panics with its
/// output when it fails.
pub fn run_python(script: &str, args: &[&std::ffi::OsStr]) -> Output {
    let out = Command::new(python())
        .arg(python_script(script))
        .args(args)
        .output()
        .expect("start python");
    assert!(
        out.status.success(),
        "{script} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The `tufa` binary built for these tests.
pub fn tufa_bin() -> PathBuf {
    // Integration tests of this crate get CARGO_BIN_EXE_* only for their own
    // package's binaries, so find it beside the test executable.
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join(format!("tufa{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} not built: run `cargo build -p tufa-cli` (cargo test --workspace does)",
        bin.display()
    );
    bin
}

/// Every target path the live metadata in a consistent-snapshot directory
/// publishes (timestamp -> snapshot -> each targets role listed), read
/// without verification: pair it with `tufa verify`.
pub fn published_targets(metadata_dir: &Path) -> std::collections::BTreeSet<String> {
    use tufa_metadata::{Metadata, Snapshot, Targets, Timestamp};
    let read = |name: &str| {
        std::fs::read(metadata_dir.join(name))
            .unwrap_or_else(|e| panic!("{}: {e}", metadata_dir.join(name).display()))
    };
    let timestamp = Metadata::<Timestamp>::from_slice(&read("timestamp.json"))
        .expect("timestamp.json parses")
        .signed;
    let version = timestamp.snapshot_meta().expect("snapshot meta").version;
    let snapshot = Metadata::<Snapshot>::from_slice(&read(&format!("{version}.snapshot.json")))
        .expect("snapshot parses")
        .signed;
    let mut paths = std::collections::BTreeSet::new();
    for (file, meta) in &snapshot.meta {
        let targets = Metadata::<Targets>::from_slice(&read(&format!("{}.{file}", meta.version)))
            .expect("targets role parses")
            .signed;
        paths.extend(targets.targets.into_keys());
    }
    paths
}

/// Runs `tufa verify` on a metadata directory and fails the test with what
/// it reported unless everything verifies.
pub fn verify_clean(metadata: &Path) {
    let out = Command::new(tufa_bin())
        .arg("verify")
        .arg(metadata)
        .output()
        .expect("run tufa verify");
    assert!(
        out.status.success(),
        "tufa verify {} failed:\n{}\n{}",
        metadata.display(),
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with("ok "))
            .collect::<Vec<_>>()
            .join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One HTTP/1.0 request to `http://HOST:PORT` (no client library, so a test
/// sees exactly what the server sent): (status, body). Status 0 when the
/// server cannot be reached.
pub fn http_request(base: &str, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://").trim_end_matches('/');
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return (0, Vec::new());
    };
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(30)));
    let head = format!(
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    if stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body))
        .is_err()
    {
        return (0, Vec::new());
    }
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(response.len(), |p| p + 4);
    let status = String::from_utf8_lossy(&response[..split])
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, response[split..].to_vec())
}

/// [`http_request`] with a text body and answer (the JSON API).
pub fn http(base: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let (status, body) = http_request(base, method, path, body.as_bytes());
    (status, String::from_utf8_lossy(&body).into_owned())
}
