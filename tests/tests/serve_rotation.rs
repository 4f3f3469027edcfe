//! Root rotation, online-key rotation and forced re-signing on a running
//! `tufa serve`, driven by `tufa ceremony` / `tufa admin` as an operator
//! would, with a python-tuf client following across every version and
//! `tufa verify` clean after each step.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use tufa_metadata::Signer;
use tufa_tests::server::Server;
use tufa_tests::{run_python, tufa_bin};

fn tufa(dir: &Path, args: &[&str]) -> Output {
    Command::new(tufa_bin())
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One client step: add artifacts (optionally), refresh, find everything.
fn follow(server: &Server, root: &Path, state: &Path, step: Option<&str>) -> Value {
    let mut args: Vec<&std::ffi::OsStr> = vec![
        server.base_url.as_ref(),
        root.as_os_str(),
        state.as_os_str(),
    ];
    if let Some(step) = step {
        for a in ["--step", step, "--count", "25"] {
            args.push(std::ffi::OsStr::new(a));
        }
    }
    let out = run_python("e2e_follow.py", &args);
    serde_json::from_slice(&out.stdout).unwrap()
}

fn verify(metadata: &Path) {
    ok(Command::new(tufa_bin())
        .arg("verify")
        .arg(metadata)
        .output()
        .unwrap());
}

#[test]
fn root_and_online_key_rotation_followed_by_ngclient() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    ok(tufa(
        w,
        &[
            "ceremony",
            "--no-prompt",
            "--generate-root-keys",
            "2",
            "--generate-online-key",
            "--bins",
            "32",
            "--out",
            "payload.json",
        ],
    ));
    let data = w.join("data");
    let server = Server::start(
        &data,
        &[
            "--online-key",
            w.join("ceremony-keys/online.pem").to_str().unwrap(),
        ],
    );
    let api = server.base_url.clone();
    ok(tufa(
        w,
        &["admin", "--api", &api, "send-bootstrap", "payload.json"],
    ));
    let metadata = server.metadata_dir();
    let root1 = metadata.join("1.root.json");
    let client = w.join("client");

    let s = follow(&server, &root1, &client, Some("before"));
    assert_eq!(s["root"], 1);
    verify(&metadata);

    // Root rotation: replace root-1 by a new key; signed by the old
    // threshold (root-1, root-2) and the new (root-2, root-3).
    ok(tufa(w, &["keygen", "--out", "root-3.pem"]));
    let old_keyid = {
        let pem = std::fs::read_to_string(w.join("ceremony-keys/root-1.pem")).unwrap();
        tufa_metadata::PrivateKey::from_pem(&pem, None, None)
            .unwrap()
            .public_key()
            .keyid()
    };
    // Signed by no root key at all: refused, nothing changes.
    let refused = tufa(
        w,
        &[
            "admin",
            "--api",
            &api,
            "update-root",
            "--root-key",
            "ceremony-keys/online.pem",
        ],
    );
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("HTTP 422")
            && err.contains("no valid signature by a key of the trusted root version 1"),
        "{err}"
    );
    // Signed by the new threshold (root-2, root-3) but only one old key: it
    // waits until root-1's holder adds a signature.
    let (_, err) = {
        let out = tufa(
            w,
            &[
                "admin",
                "--api",
                &api,
                "update-root",
                "--root-key",
                "ceremony-keys/root-2.pem",
                "--add-root-key",
                "root-3.pub",
                "--remove-root-key",
                &old_keyid,
                "--root-key",
                "root-3.pem",
            ],
        );
        let text = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        assert!(out.status.success(), "{text:?}");
        text
    };
    assert!(err.contains("waits for more signatures"), "{err}");
    assert!(!metadata.join("2.root.json").exists());
    ok(tufa(
        w,
        &[
            "admin",
            "--api",
            &api,
            "sign",
            "--root-key",
            "ceremony-keys/root-1.pem",
        ],
    ));
    server.wait_for_file("2.root.json", std::time::Duration::from_secs(60));
    let s = follow(&server, &root1, &client, Some("after-root-rotation"));
    assert_eq!(s["root"], 2, "{s}");
    verify(&metadata);

    // Online-key rotation: the service gets the new key, root v3 names it.
    std::fs::create_dir_all(data.join("keys")).unwrap();
    let new_online = ok(tufa(
        w,
        &[
            "keygen",
            "--out",
            data.join("keys/online-2.pem").to_str().unwrap(),
        ],
    ));
    let new_online = new_online.trim().to_string();
    ok(tufa(
        w,
        &[
            "admin",
            "--api",
            &api,
            "update-root",
            "--root-key",
            "ceremony-keys/root-2.pem",
            "--root-key",
            "root-3.pem",
            "--online-key",
            data.join("keys/online-2.pub").to_str().unwrap(),
        ],
    ));
    let s = follow(&server, &root1, &client, Some("after-online-rotation"));
    assert_eq!(s["root"], 3, "{s}");
    assert_eq!(
        s["timestamp_keyids"],
        serde_json::json!([new_online]),
        "timestamp still signed by the old key: {s}"
    );
    verify(&metadata);

    // A fresh client from 1.root.json follows the whole chain too.
    let fresh = follow(&server, &root1, &w.join("fresh-client"), None);
    assert_eq!(fresh["root"], 3);

    // Forced re-signing of every online role: a new timestamp, all still verifies.
    let before = s["timestamp"].as_u64().unwrap();
    ok(tufa(w, &["admin", "--api", &api, "resign"]));
    let s = follow(&server, &root1, &client, None);
    assert!(s["timestamp"].as_u64().unwrap() > before, "{s}");
    assert_eq!(s["artifacts"], 75);
    verify(&metadata);
}
