//! The pep480 layout end to end: `tufa ceremony --layout pep480` signs an
//! offline targets and claimed, `tufa serve` is bootstrapped with them through
//! `tufa admin`, artifacts go in through the RSTUF API, and python-tuf's
//! ngclient finds them by walking targets -> claimed -> recently-claimed ->
//! unclaimed -> bins; `tufa verify` is clean; bad payloads are refused.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use tufa_metadata::{Metadata, PrivateKey, Root, Signer, Targets};
use tufa_tests::server::Server;
use tufa_tests::{http, run_python, tufa_bin, verify_clean};

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

fn key(dir: &Path, name: &str) -> PrivateKey {
    let pem = std::fs::read_to_string(dir.join("ceremony-keys").join(name)).unwrap();
    PrivateKey::from_pem(&pem, None, None).unwrap()
}

/// Replaces every signature of `doc` (a targets or root document) by `keys`'.
fn resign<T: tufa_metadata::Role>(doc: &Value, keys: &[&PrivateKey]) -> Value {
    let mut md: Metadata<T> = Metadata::from_slice(&serde_json::to_vec(doc).unwrap()).unwrap();
    md.signatures.clear();
    for k in keys {
        md.sign(*k as &dyn Signer).unwrap();
    }
    serde_json::from_slice(&md.to_bytes().unwrap()).unwrap()
}

/// POSTs a bootstrap payload; asserts a 4xx whose body names `field`.
fn refused(base: &str, payload: &Value, field: &str) {
    let (status, body) = http(base, "POST", "/api/v1/bootstrap/", &payload.to_string());
    assert!(
        (400..500).contains(&status),
        "expected a 4xx naming {field}, got {status}: {body}"
    );
    assert!(
        body.contains(field),
        "the refusal should name {field}: {body}"
    );
}

#[test]
fn pep480_ceremony_bootstrap_artifacts_and_ngclient_walk() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    ok(tufa(
        w,
        &[
            "ceremony",
            "--no-prompt",
            "--dev",
            "--layout",
            "pep480",
            "--generate-root-keys",
            "2",
            "--generate-online-key",
            "--bins",
            "16",
            "--out",
            "payload.json",
        ],
    ));
    let payload: Value =
        serde_json::from_slice(&std::fs::read(w.join("payload.json")).unwrap()).unwrap();
    assert_eq!(payload["settings"]["layout"], "pep480");
    let root_1 = key(w, "root-1.pem");
    let root_2 = key(w, "root-2.pem");
    let online = key(w, "online.pem");

    let data = w.join("data");
    let server = Server::start(
        &data,
        &[
            "--online-key",
            w.join("ceremony-keys/online.pem").to_str().unwrap(),
        ],
    );
    let api = server.base_url.clone();

    // Bad payloads: refused with a 4xx naming the field, nothing stored
    // (the good payload is accepted afterwards).
    let mut missing = payload.clone();
    missing["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("claimed");
    refused(&api, &missing, "metadata.claimed");

    let mut swapped = payload.clone();
    {
        let targets = &mut swapped["metadata"]["targets"];
        let roles = targets["signed"]["delegations"]["roles"]
            .as_array_mut()
            .unwrap();
        roles.swap(0, 1);
        *targets = resign::<Targets>(targets, &[&root_1, &root_2]);
    }
    refused(&api, &swapped, "metadata.targets.signed.delegations.roles");

    let mut online_targets = payload.clone();
    {
        let root = &mut online_targets["metadata"]["root"];
        root["signed"]["roles"]["targets"]["keyids"] = serde_json::json!([online.keyid()]);
        *root = resign::<Root>(root, &[&root_1, &root_2]);
        let targets = &mut online_targets["metadata"]["targets"];
        *targets = resign::<Targets>(targets, &[&online]);
    }
    refused(&api, &online_targets, "metadata.root.signed.roles.targets");

    // Root as the ceremony made it, targets signed by the online key instead
    // of the targets keys: its signatures do not meet root's targets role.
    let mut online_signed = payload.clone();
    {
        let targets = &mut online_signed["metadata"]["targets"];
        *targets = resign::<Targets>(targets, &[&online]);
    }
    refused(&api, &online_signed, "metadata.targets.signatures");

    // claimed signed by the online key: not claimed's keys.
    let mut online_claimed = payload.clone();
    {
        let claimed = &mut online_claimed["metadata"]["claimed"];
        *claimed = resign::<Targets>(claimed, &[&online]);
    }
    refused(&api, &online_claimed, "metadata.claimed.signatures");

    // claimed delegating to a project role whose metadata the service
    // would not have: refused.
    let mut claimed_project = payload.clone();
    {
        let claimed = &mut claimed_project["metadata"]["claimed"];
        let keyid = root_1.keyid().to_string();
        claimed["signed"]["delegations"] = serde_json::json!({
            "keys": {&keyid: root_1.public_key()},
            "roles": [{"name": "project-foo", "keyids": [keyid], "threshold": 1,
                       "terminating": true, "paths": ["packages/foo/*"]}],
        });
        *claimed = resign::<Targets>(claimed, &[&root_1, &root_2]);
    }
    refused(
        &api,
        &claimed_project,
        "metadata.claimed.signed.delegations.roles",
    );

    let (_, state) = http(&api, "GET", "/api/v1/bootstrap/", "");
    assert!(state.contains("\"bootstrap\":false"), "{state}");

    ok(tufa(
        w,
        &["admin", "--api", &api, "send-bootstrap", "payload.json"],
    ));
    let (status, config) = http(&api, "GET", "/api/v1/config/", "");
    assert_eq!(status, 200, "{config}");
    assert!(config.contains("\"layout\":\"pep480\""), "{config}");
    assert!(config.contains("\"targets_online_key\":false"), "{config}");

    // The offline roles are published exactly as the ceremony signed them.
    let metadata = server.metadata_dir();
    for role in ["targets", "claimed"] {
        let published = std::fs::read(metadata.join(format!("1.{role}.json"))).unwrap();
        let given = tufa_metadata::canonical::to_json_bytes(&payload["metadata"][role]).unwrap();
        assert_eq!(published, given, "1.{role}.json is not the ceremony's");
    }

    let root1 = metadata.join("1.root.json");
    let out = run_python("pep480_client.py", &[api.as_ref(), root1.as_os_str()]);
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));

    // Forced re-signing touches only online roles; the offline ones stay v1.
    let (status, body) = http(&api, "POST", "/api/v1/metadata/online", "{\"roles\":[]}");
    assert_eq!(status, 202, "{body}");
    let (status, body) = http(
        &api,
        "POST",
        "/api/v1/metadata/online",
        "{\"roles\":[\"targets\"]}",
    );
    assert!((400..500).contains(&status), "targets is offline: {body}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !metadata.join("2.unclaimed.json").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "unclaimed not re-signed"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(metadata.join("2.recently-claimed.json").exists());
    assert!(!metadata.join("2.targets.json").exists());
    assert!(!metadata.join("2.claimed.json").exists());

    // Online-key rotation would need a new offline targets: refused, clearly.
    ok(tufa(w, &["keygen", "--out", "online-2.pem"]));
    let rotation = tufa(
        w,
        &[
            "admin",
            "--api",
            &api,
            "update-root",
            "--root-key",
            "ceremony-keys/root-1.pem",
            "--online-key",
            "online-2.pub",
        ],
    );
    let said = String::from_utf8_lossy(&rotation.stderr).into_owned()
        + &String::from_utf8_lossy(&rotation.stdout);
    assert!(!rotation.status.success(), "{said}");
    assert!(said.contains("pep480"), "{said}");
    assert!(!metadata.join("2.root.json").exists());
    // A root update that keeps the online and targets keys goes through.
    ok(tufa(
        w,
        &[
            "admin",
            "--api",
            &api,
            "update-root",
            "--root-key",
            "ceremony-keys/root-1.pem",
            "--root-expiration",
            "300",
        ],
    ));
    assert!(metadata.join("2.root.json").exists());

    let report = ok(Command::new(tufa_bin())
        .arg("verify")
        .arg(&metadata)
        .output()
        .unwrap());
    for role in [
        "targets",
        "claimed",
        "recently-claimed",
        "unclaimed",
        "bins-0",
    ] {
        assert!(
            report
                .lines()
                .any(|l| l.starts_with("ok") && l.contains(&format!(" {role} v"))),
            "tufa verify did not check {role}:\n{report}"
        );
    }
    drop(server);
    verify_clean(&metadata);
}

/// An offline role close to expiry makes `/healthz` warn (the service
/// cannot re-sign it): targets signed for 1 day while the settings say a
/// targets lifetime is 3650 days, so the 30-day margin is reached at once.
#[test]
fn healthz_warns_about_offline_roles_near_expiry() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    ok(tufa(
        w,
        &[
            "ceremony",
            "--no-prompt",
            "--dev",
            "--layout",
            "pep480",
            "--generate-root-keys",
            "1",
            "--generate-online-key",
            "--bins",
            "4",
            "--targets-expiration",
            "1",
            "--out",
            "payload.json",
        ],
    ));
    let mut payload: Value =
        serde_json::from_slice(&std::fs::read(w.join("payload.json")).unwrap()).unwrap();
    payload["settings"]["roles"]["targets"]["expiration"] = serde_json::json!(3650);
    std::fs::write(w.join("payload.json"), payload.to_string()).unwrap();
    let server = Server::start(
        &w.join("data"),
        &[
            "--online-key",
            w.join("ceremony-keys/online.pem").to_str().unwrap(),
        ],
    );
    let api = server.base_url.clone();
    let (_, before) = http(&api, "GET", "/healthz", "");
    assert!(!before.contains("offline_roles_expiring"), "{before}");
    ok(tufa(
        w,
        &["admin", "--api", &api, "send-bootstrap", "payload.json"],
    ));
    let (status, body) = http(&api, "GET", "/healthz", "");
    assert_eq!(status, 200, "{body}");
    let health: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "warning", "{body}");
    let roles: Vec<&str> = health["offline_roles_expiring"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["targets", "claimed"], "{body}");
}

/// A pep480 repository bootstrapped with `tufa admin` from a `--dev` ceremony.
fn bootstrapped(w: &Path) -> Server {
    ok(tufa(
        w,
        &[
            "ceremony",
            "--no-prompt",
            "--dev",
            "--layout",
            "pep480",
            "--generate-root-keys",
            "1",
            "--generate-online-key",
            "--bins",
            "8",
            "--out",
            "payload.json",
        ],
    ));
    let server = Server::start(
        &w.join("data"),
        &[
            "--online-key",
            w.join("ceremony-keys/online.pem").to_str().unwrap(),
        ],
    );
    ok(tufa(
        w,
        &[
            "admin",
            "--api",
            &server.base_url,
            "send-bootstrap",
            "payload.json",
        ],
    ));
    server
}

/// PEP 480 end to end: a developer key made by securesystemslib, the
/// delegation added with the real API, project metadata signed by
/// python-tuf uploaded and found by ngclient; the project's bins files are
/// not trusted; bad uploads refused; key rotation; removal (see
/// tests/python/pep480_project.py). `tufa verify` clean afterwards.
#[test]
fn developer_signed_project_roles() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let server = bootstrapped(w);
    let root1 = server.metadata_dir().join("1.root.json");
    let out = run_python(
        "pep480_project.py",
        &[server.base_url.as_ref(), root1.as_os_str()],
    );
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    let metadata = server.metadata_dir();
    // Published as the developer signed them, listed in snapshot for good.
    assert!(metadata.join("1.project-foo.json").exists());
    assert!(metadata.join("2.project-foo.json").exists());
    assert!(
        tufa_tests::published_targets(&metadata).contains("packages/foo/foo-2.0.tar.gz"),
        "snapshot no longer lists project-foo after its removal"
    );
    drop(server);
    verify_clean(&metadata);
}

/// A pep458 repository keeps answering that it has no custom delegations.
#[test]
fn pep458_delegations_still_unsupported() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(tmp.path(), &["--dev", "--dev-bins", "4"]);
    let body =
        r#"{"delegations":{"keys":{},"roles":[{"name":"project-foo","keyids":[],"threshold":1}]}}"#;
    let (status, answer) = http(&server.base_url, "POST", "/api/v1/delegations", body);
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer.contains("custom delegations are not supported"),
        "{answer}"
    );
}

/// Distributed signing with pep480: root signed by 1 of 2 at the ceremony
/// (targets fully signed by its own keys there); the offline roles wait with
/// root and are published once the second holder signs. A ceremony whose
/// targets cannot be fully signed fails.
#[test]
fn pep480_root_signed_later_keeps_the_offline_roles() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let data = w.join("data");
    std::fs::create_dir_all(data.join("keys")).unwrap();
    for k in ["root-1.pem", "root-2.pem", "targets-1.pem", "targets-2.pem"] {
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
    let online_pub = data.join("keys/online.pub");
    let ceremony = |targets_2: &str| {
        tufa(
            w,
            &[
                "ceremony",
                "--no-prompt",
                "--layout",
                "pep480",
                "--root-key",
                "root-1.pem",
                "--root-key",
                "root-2.pub",
                "--root-threshold",
                "2",
                "--targets-key",
                "targets-1.pem",
                "--targets-key",
                targets_2,
                "--targets-threshold",
                "2",
                "--online-key",
                online_pub.to_str().unwrap(),
                "--bins",
                "4",
                "--out",
                "payload.json",
            ],
        )
    };
    let short = ceremony("targets-2.pub");
    assert!(!short.status.success());
    assert!(
        String::from_utf8_lossy(&short.stderr).contains("fully signed"),
        "{}",
        String::from_utf8_lossy(&short.stderr)
    );
    ok(ceremony("targets-2.pem"));

    let server = Server::start(&data, &[]);
    let api = server.base_url.clone();
    ok(tufa(
        w,
        &["admin", "--api", &api, "send-bootstrap", "payload.json"],
    ));
    assert!(!server.metadata_dir().join("timestamp.json").exists());
    ok(tufa(
        w,
        &["admin", "--api", &api, "sign", "--root-key", "root-2.pem"],
    ));
    server.wait_for_file("timestamp.json", std::time::Duration::from_secs(60));
    server.wait_bootstrapped(std::time::Duration::from_secs(60));
    let metadata = server.metadata_dir();
    assert!(metadata.join("1.targets.json").exists());
    assert!(metadata.join("1.claimed.json").exists());
    let root1 = metadata.join("1.root.json");
    run_python(
        "pep480_client.py",
        &[
            api.as_ref(),
            root1.as_os_str(),
            "--projects".as_ref(),
            "3".as_ref(),
        ],
    );
    drop(server);
    verify_clean(&metadata);
}

/// `tufa admin delegation add|upload|update|remove`: the CLI wrappers of the
/// delegations API, with project metadata made and signed by tufa-metadata.
#[test]
fn admin_delegation_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let server = bootstrapped(w);
    let api = server.base_url.clone();
    let metadata = server.metadata_dir();
    ok(tufa(w, &["keygen", "--out", "dev.pem"]));
    ok(tufa(w, &["keygen", "--out", "dev-2.pem"]));
    let admin = |args: &[&str]| {
        let mut all = vec!["admin", "--api", &api, "delegation"];
        all.extend_from_slice(args);
        tufa(w, &all)
    };
    ok(admin(&["add", "Foo.Bar", "--key", "dev.pub"]));
    // Adding it again is not applied, and says so.
    assert!(
        !admin(&["add", "foo-bar", "--key", "dev.pub"])
            .status
            .success()
    );

    let sign = |key: &str, version: u64| {
        let dev = {
            let pem = std::fs::read_to_string(w.join(key)).unwrap();
            PrivateKey::from_pem(&pem, None, None).unwrap()
        };
        let mut targets = Targets::new(tufa_metadata::UtcTime::now().plus_seconds(86_400));
        targets.version = version;
        targets.targets.insert(
            "packages/foo-bar/foo_bar-1.0.tar.gz".into(),
            tufa_metadata::TargetFile::from_bytes(
                b"foo-bar 1.0",
                &[tufa_metadata::HashAlgorithm::Sha256],
            ),
        );
        let mut md = Metadata::new(targets);
        md.sign(&dev as &dyn Signer).unwrap();
        let file = w.join(format!("project-{version}.json"));
        std::fs::write(&file, md.to_bytes().unwrap()).unwrap();
        file
    };
    let v1 = sign("dev.pem", 1);
    ok(admin(&["upload", "foo-bar", v1.to_str().unwrap()]));
    assert!(metadata.join("1.project-foo-bar.json").exists());
    assert!(
        tufa_tests::published_targets(&metadata).contains("packages/foo-bar/foo_bar-1.0.tar.gz")
    );
    // Signed by a key the delegation does not list: refused, naming the field.
    let bad = sign("dev-2.pem", 2);
    let out = admin(&["upload", "foo-bar", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("metadata.project-foo-bar.signatures"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ok(admin(&["update", "foo-bar", "--key", "dev-2.pub"]));
    ok(admin(&["upload", "foo-bar", bad.to_str().unwrap()]));
    assert!(metadata.join("2.project-foo-bar.json").exists());
    ok(admin(&["remove", "foo-bar"]));
    drop(server);
    verify_clean(&metadata);
}
