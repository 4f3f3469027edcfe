//! Distributed asynchronous signing: a ceremony where only one root key
//! holder is present, the others adding their signatures later with
//! `tufa admin sign`, for the bootstrap and for a root update.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::path::Path;
use std::process::{Command, Output};

use tufa_tests::server::Server;
use tufa_tests::{run_python, tufa_bin};

fn tufa(dir: &Path, args: &[&str]) -> Output {
    Command::new(tufa_bin())
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: Output) -> (String, String) {
    assert!(
        out.status.success(),
        "failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn root_signatures_added_later_by_other_key_holders() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let data = w.join("data");
    std::fs::create_dir_all(data.join("keys")).unwrap();
    for k in ["root-1.pem", "root-2.pem", "root-3.pem"] {
        ok(tufa(w, &["keygen", "--out", k]));
    }
    ok(tufa(
        w,
        &[
            "keygen",
            "--out",
            data.join("keys/online.pem").to_str().unwrap(),
        ],
    ));
    // Only root-1's holder is at the ceremony; 2 and 3 hand in public keys.
    let (_, err) = ok(tufa(
        w,
        &[
            "ceremony",
            "--no-prompt",
            "--root-key",
            "root-1.pem",
            "--root-key",
            "root-2.pub",
            "--root-key",
            "root-3.pub",
            "--root-threshold",
            "2",
            "--online-key",
            data.join("keys/online.pub").to_str().unwrap(),
            "--bins",
            "16",
            "--out",
            "payload.json",
        ],
    ));
    assert!(
        err.contains("carries 1 signature(s), threshold 2")
            && err.contains("needs 1 more signature"),
        "{err}"
    );

    let server = Server::start(&data, &[]);
    let api = server.base_url.clone();
    let (_, err) = ok(tufa(
        w,
        &["admin", "--api", &api, "send-bootstrap", "payload.json"],
    ));
    assert!(err.contains("waits for more signatures"), "{err}");
    assert!(
        !server.metadata_dir().join("timestamp.json").exists(),
        "nothing is published before root is signed"
    );

    // Holder 3 signs from elsewhere: the threshold is met and bootstrap runs.
    let (_, err) = ok(tufa(
        w,
        &["admin", "--api", &api, "sign", "--root-key", "root-3.pem"],
    ));
    assert!(err.contains("threshold met"), "{err}");
    server.wait_for_file("timestamp.json", std::time::Duration::from_secs(60));
    ok(Command::new(tufa_bin())
        .arg("verify")
        .arg(server.metadata_dir())
        .output()
        .unwrap());

    // Nothing waits now: signing again is refused with the reason.
    let out = tufa(
        w,
        &["admin", "--api", &api, "sign", "--root-key", "root-2.pem"],
    );
    assert!(!out.status.success());

    // A root update signed by one holder waits; a second completes it.
    let (_, err) = ok(tufa(
        w,
        &[
            "admin",
            "--api",
            &api,
            "update-root",
            "--root-key",
            "root-1.pem",
        ],
    ));
    assert!(err.contains("waits for more signatures"), "{err}");
    assert!(!server.metadata_dir().join("2.root.json").exists());
    let (_, err) = ok(tufa(
        w,
        &["admin", "--api", &api, "sign", "--root-key", "root-2.pem"],
    ));
    assert!(err.contains("threshold met"), "{err}");
    server.wait_for_file("2.root.json", std::time::Duration::from_secs(60));
    ok(Command::new(tufa_bin())
        .arg("verify")
        .arg(server.metadata_dir())
        .output()
        .unwrap());
    let root1 = server.metadata_dir().join("1.root.json");
    let out = run_python(
        "e2e_follow.py",
        &[
            api.as_ref(),
            root1.as_os_str(),
            w.join("client").as_os_str(),
        ],
    );
    let state: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(state["root"], 2);
}
