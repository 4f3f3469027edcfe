//! The interactive root ceremony: `tufa ceremony` at a real terminal (a
//! pseudo-terminal from util-linux's `script`), answered line by line as a
//! person would, defaults taken on empty lines and a bad answer asked again;
//! the payload it writes bootstraps `tufa serve`.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use tufa_tests::server::Server;
use tufa_tests::tufa_bin;

#[test]
fn ceremony_prompts_at_a_terminal_and_its_payload_bootstraps() {
    let work = tempfile::tempdir().unwrap();
    let command = format!(
        "{} ceremony --keys-dir keys --out payload.json",
        tufa_bin().display()
    );
    let mut child = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(work.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run script(1) from util-linux");
    // root 400 days; targets, snapshot, timestamp, bins: defaults; bins:
    // "abc" (refused, asked again), then 64; root key files: none (generate);
    // keys to generate: 3; threshold: 2; online key: none (generate).
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"400\n\n\n\n\nabc\n64\n\n3\n2\n\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    for prompt in [
        "Days until root expires [365]:",
        "Days until each bin expires [7]:",
        "Number of hash bins (power of two, 2 to 16384) [16384]:",
        "not valid: invalid digit",
        "Root keys to generate [2]:",
        "Root threshold [2]:",
        "Online key file (PEM; empty to generate one):",
        "root v1 carries 3 signature(s), threshold 2",
    ] {
        assert!(shown.contains(prompt), "missing {prompt:?} in:\n{shown}");
    }

    let payload: serde_json::Value =
        serde_json::from_slice(&std::fs::read(work.path().join("payload.json")).unwrap()).unwrap();
    let roles = &payload["settings"]["roles"];
    assert_eq!(roles["root"]["expiration"], 400);
    assert_eq!(roles["targets"]["expiration"], 365);
    assert_eq!(roles["bins"]["expiration"], 7);
    assert_eq!(roles["bins"]["number_of_delegated_bins"], 64);
    let root = &payload["metadata"]["root"];
    assert_eq!(root["signed"]["roles"]["root"]["threshold"], 2);
    assert_eq!(
        root["signed"]["roles"]["root"]["keyids"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(root["signatures"].as_array().unwrap().len(), 3);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(work.path().join("keys/root-1.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "private keys are for their owner only");
    }

    // The service holding the online key takes the payload and publishes.
    let data = tempfile::tempdir().unwrap();
    let online = work.path().join("keys/online.pem");
    let server = Server::start(data.path(), &["--online-key", online.to_str().unwrap()]);
    let sent = Command::new(tufa_bin())
        .args(["admin", "--api", &server.base_url, "send-bootstrap"])
        .arg(work.path().join("payload.json"))
        .output()
        .unwrap();
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    server.wait_bootstrapped(Duration::from_secs(120));
    let verify = Command::new(tufa_bin())
        .arg("verify")
        .arg(server.metadata_dir())
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
}
