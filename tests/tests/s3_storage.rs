//! Metadata on S3-compatible object storage: moto's S3 server (PyPI,
//! server mode) on 127.0.0.1, `tufa serve --storage s3://...`, and
//! python-tuf's ngclient reading the repository back through tufa, and the
//! bucket's own copy audited by `tufa verify`.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tufa_tests::server::Server;
use tufa_tests::{
    http_request, published_targets, python, python_script, run_python, tufa_bin, workspace_root,
};

const BUCKET: &str = "tufa-metadata";

/// moto's S3 server, killed on drop.
struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    fn start() -> Moto {
        let bin = workspace_root().join(".venv/bin/moto_server");
        assert!(
            bin.exists(),
            "no moto_server: run `bash .ci/run` once (it installs tests/python/requirements.txt)"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let moto = Moto { child, port };
        let start = Instant::now();
        while moto.request("GET", "/", b"").0 != 200 {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "moto_server did not start"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        moto
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// An unsigned request (moto does not check signatures): (status, body).
    fn request(&self, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        http_request(&self.endpoint(), method, path, body)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_get(base: &str, path: &str) -> (u16, Vec<u8>) {
    http_request(base, "GET", path, b"")
}

#[test]
fn metadata_on_s3_is_read_back_by_ngclient() {
    let moto = Moto::start();
    let (status, body) = moto.request("PUT", &format!("/{BUCKET}"), b"");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let dir = tempfile::tempdir().unwrap();
    let storage = format!(
        "--storage=s3://{BUCKET}/repo?endpoint={}&region=us-east-1",
        moto.endpoint()
    );
    let (server, _) = Server::start_with_env(
        dir.path(),
        &["--dev", "--dev-bins", "64", &storage],
        &[
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ],
    );
    assert!(
        !dir.path().join("metadata").exists(),
        "metadata must go to the bucket, not the data directory"
    );

    // ngclient through the API and the metadata tufa serves from the bucket.
    let (status, root) = http_get(&server.base_url, "/metadata/1.root.json");
    assert_eq!(status, 200);
    let root_path = dir.path().join("1.root.json");
    std::fs::write(&root_path, &root).unwrap();
    let out = run_python(
        "e2e_artifacts.py",
        &[
            server.base_url.as_ref(),
            root_path.as_os_str(),
            "--count".as_ref(),
            "1000".as_ref(),
            "--requests".as_ref(),
            "20".as_ref(),
            "--remove".as_ref(),
            "100".as_ref(),
        ],
    );
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));

    // The bucket itself holds a complete, valid repository: copy it out
    // (boto3, signed requests) and audit it; its live files are the ones served.
    let copy = tempfile::tempdir().unwrap();
    let listed = Command::new(python())
        .arg(python_script("s3_download.py"))
        .arg(moto.endpoint())
        .arg(BUCKET)
        .arg("repo")
        .arg(copy.path())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .output()
        .unwrap();
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    for name in ["1.root.json", "timestamp.json"] {
        let (_, served) = http_get(&server.base_url, &format!("/metadata/{name}"));
        assert_eq!(
            std::fs::read(copy.path().join(name)).unwrap(),
            served,
            "{name}"
        );
    }
    let verify = Command::new(tufa_bin())
        .arg("verify")
        .arg(copy.path())
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "tufa verify of the bucket: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let published = published_targets(copy.path());
    assert_eq!(
        published
            .iter()
            .filter(|p| p.starts_with("packages/project"))
            .count(),
        900
    );
}
