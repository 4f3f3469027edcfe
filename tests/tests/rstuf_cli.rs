//! The `rstuf` CLI (PyPI `repository-service-tuf`) against `tufa serve`:
//! a ceremony made by `tufa ceremony`, sent with `rstuf admin send
//! bootstrap`, then `rstuf artifact add`, `rstuf task info` and `rstuf
//! artifact download` (which verifies with python-tuf's ngclient).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use tufa_tests::server::Server;
use tufa_tests::{python, rstuf, tufa_bin};

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("start command");
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn rstuf_cmd(home: &Path) -> Command {
    let mut cmd = Command::new(rstuf());
    // rstuf keeps its config and TUF cache under $HOME.
    cmd.env("HOME", home)
        .env("COLUMNS", "200")
        .env("NO_COLOR", "1");
    cmd
}

struct StaticServer(Child, u16);

impl Drop for StaticServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Serves `dir` over HTTP on a free loopback port with Python's http.server.
fn static_server(dir: &Path) -> StaticServer {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = StaticServer(
        Command::new(python())
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--directory",
            ])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
        port,
    );
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return server;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("http.server did not start");
}

#[test]
fn rstuf_cli_bootstraps_adds_and_downloads() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    run(Command::new(tufa_bin()).current_dir(work).args([
        "ceremony",
        "--no-prompt",
        "--generate-root-keys",
        "2",
        "--root-threshold",
        "2",
        "--generate-online-key",
        "--bins",
        "64",
        "--out",
        "payload.json",
    ]));
    let server = Server::start(
        &work.join("data"),
        &[
            "--online-key",
            work.join("ceremony-keys/online.pem").to_str().unwrap(),
        ],
    );
    let api = server.base_url.clone();

    let out = run(rstuf_cmd(work).current_dir(work).args([
        "admin",
        "--api-server",
        &api,
        "send",
        "bootstrap",
        "payload.json",
    ]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Bootstrap completed."), "{text}");

    // An artifact, served by a plain static server as RSTUF deployments do.
    let artifacts = work.join("artifacts");
    std::fs::create_dir_all(artifacts.join("files")).unwrap();
    std::fs::write(artifacts.join("files/hello.txt"), b"hello from tufa\n").unwrap();
    let out = run(rstuf_cmd(work).current_dir(artifacts.join("files")).args([
        "artifact",
        "add",
        "hello.txt",
        "--path",
        "files",
        "--api-server",
        &api,
    ]));
    let text = String::from_utf8_lossy(&out.stdout);
    let task_id = text
        .split("RSTUF task ID (use to check its status) is: ")
        .nth(1)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| panic!("no task id in:\n{text}"));

    // `task info` polls until the task is done.
    let out = run(rstuf_cmd(work).args(["task", "info", &task_id, "--api-server", &api]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Task status: SUCCESS"));

    let files = static_server(&artifacts);
    let download_dir = work.join("downloads");
    let out = run(rstuf_cmd(work).args([
        "artifact",
        "download",
        "files/hello.txt",
        "--metadata-url",
        &format!("{api}/metadata"),
        "--artifacts-url",
        &format!("http://127.0.0.1:{}", files.1),
        "--directory-prefix",
        download_dir.to_str().unwrap(),
    ]));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Successfully completed artifact download")
    );
    // rstuf names the download after the percent-encoded target path.
    let got = std::fs::read(download_dir.join("files%2Fhello.txt")).unwrap();
    assert_eq!(got, b"hello from tufa\n");

    // A tampered artifact is refused by the TUF client.
    std::fs::write(
        artifacts.join("files/hello.txt"),
        b"hello from an attacker\n",
    )
    .unwrap();
    std::fs::remove_file(download_dir.join("files%2Fhello.txt")).unwrap();
    let out = rstuf_cmd(work)
        .args([
            "artifact",
            "download",
            "files/hello.txt",
            "--metadata-url",
            &format!("{api}/metadata"),
            "--artifacts-url",
            &format!("http://127.0.0.1:{}", files.1),
            "--directory-prefix",
            download_dir.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!download_dir.join("files%2Fhello.txt").exists(), "{out:?}");
}
