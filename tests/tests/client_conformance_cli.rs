//! The `tufa-conformance` binary as the TUF conformance suite drives it
//! (its CLIENT-CLI.md): init, refresh and download against a repository
//! served over HTTP, exit status 0 or 1, the trusted metadata left in the
//! metadata directory and the requests made.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tufa_tests::repo_builder::{Repo, TestServer, trusted_versions};

fn conformance_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join(format!("tufa-conformance{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} not built: run `cargo build -p tufa-conformance` (.ci/run builds all binaries first)",
        bin.display()
    );
    bin
}

fn run(args: &[&str]) -> Output {
    Command::new(conformance_bin())
        .args(args)
        .output()
        .expect("run tufa-conformance")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

struct Case {
    _tmp: tempfile::TempDir,
    server: TestServer,
    repo: Repo,
    meta: String,
    targets: String,
    root: String,
}

fn case() -> Case {
    let mut repo = Repo::new(true);
    repo.add_target("targets", "top.txt", b"top level");
    repo.delegate(
        "targets",
        "team/a?b",
        Some(vec!["team/*".into()]),
        None,
        true,
    );
    repo.add_target("team/a?b", "team/file.bin", b"delegated bytes");
    repo.add_target("targets", "later.txt", b"later");
    repo.publish();
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start();
    repo.serve(&server);
    let root = tmp.path().join("initial_root.json");
    std::fs::write(&root, repo.root_bytes(1)).expect("write root");
    let meta = tmp.path().join("metadata");
    let targets = tmp.path().join("targets");
    std::fs::create_dir_all(&meta).expect("mkdir");
    std::fs::create_dir_all(&targets).expect("mkdir");
    let s = |p: &Path| p.to_str().expect("utf-8 path").to_string();
    Case {
        server,
        repo,
        meta: s(&meta),
        targets: s(&targets),
        root: s(&root),
        _tmp: tmp,
    }
}

impl Case {
    fn metadata_url(&self) -> String {
        self.server.url("metadata")
    }

    fn targets_url(&self) -> String {
        self.server.url("targets")
    }

    fn init(&self) {
        let out = run(&["--metadata-dir", &self.meta, "init", &self.root]);
        assert!(out.status.success(), "init: {}", stderr(&out));
    }

    fn download(&self, names: &[&str]) -> Output {
        let (murl, turl) = (self.metadata_url(), self.targets_url());
        let mut args = vec!["--metadata-url", &murl, "--metadata-dir", &self.meta];
        for n in names {
            args.extend(["--target-name", n]);
        }
        args.extend([
            "--target-dir",
            &self.targets,
            "--target-base-url",
            &turl,
            "download",
        ]);
        run(&args)
    }
}

#[test]
fn init_copies_the_root_and_makes_no_request() {
    let c = case();
    c.init();
    assert_eq!(
        std::fs::read(Path::new(&c.meta).join("root.json")).expect("root.json"),
        c.repo.root_bytes(1)
    );
    assert!(c.server.requests().is_empty());
}

#[test]
fn refresh_persists_every_top_level_role_and_fails_with_exit_1() {
    let c = case();
    c.init();
    let murl = c.metadata_url();
    let out = run(&[
        "--metadata-url",
        &murl,
        "--metadata-dir",
        &c.meta,
        "refresh",
    ]);
    assert!(out.status.success(), "refresh: {}", stderr(&out));
    assert_eq!(
        c.server.requests(),
        [
            "metadata/2.root.json",
            "metadata/timestamp.json",
            "metadata/2.snapshot.json",
            "metadata/2.targets.json"
        ]
    );
    let v = trusted_versions(Path::new(&c.meta));
    for f in [
        "root.json",
        "timestamp.json",
        "snapshot.json",
        "targets.json",
    ] {
        assert!(v.contains_key(f), "{f}: {v:?}");
    }
    // Flags may also follow the subcommand.
    let out = run(&[
        "refresh",
        "--metadata-dir",
        &c.meta,
        "--metadata-url",
        &murl,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    // A broken repository: exit 1 and a message.
    c.server.remove("metadata/timestamp.json");
    let out = run(&[
        "--metadata-url",
        &murl,
        "--metadata-dir",
        &c.meta,
        "refresh",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("404"), "{}", stderr(&out));
}

#[test]
fn download_fetches_in_order_caches_and_stops_at_the_first_failure() {
    let c = case();
    c.init();
    let out = c.download(&["top.txt", "team/file.bin"]);
    assert!(out.status.success(), "download: {}", stderr(&out));
    let tdir = Path::new(&c.targets);
    assert_eq!(
        std::fs::read(tdir.join("top.txt")).expect("top"),
        b"top level"
    );
    assert_eq!(
        std::fs::read(tdir.join("team%2Ffile.bin")).expect("delegated"),
        b"delegated bytes"
    );
    // Every trusted role, the delegated one included, as a plain file.
    let v = trusted_versions(Path::new(&c.meta));
    assert_eq!(v.get("team%2Fa%3Fb.json"), Some(&1), "{v:?}");
    assert!(
        c.server
            .requests()
            .contains(&"metadata/1.team%2Fa%3Fb.json".to_string())
    );

    // Again: nothing but the root probe and timestamp, no target.
    c.server.clear_requests();
    let out = c.download(&["top.txt", "team/file.bin"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        c.server.requests(),
        ["metadata/2.root.json", "metadata/timestamp.json"]
    );

    // A missing target fails with exit 1; the one after it is not fetched.
    c.server.clear_requests();
    let out = c.download(&["missing.txt", "later.txt"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("missing.txt"), "{}", stderr(&out));
    assert!(!tdir.join("later.txt").exists());
    assert!(!c.server.requests().iter().any(|r| r.contains("later.txt")));

    // A tampered target fails and leaves no file.
    let path = c.repo.target_path("later.txt");
    c.server.put(&path, b"LATER".to_vec());
    let out = c.download(&["later.txt"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!tdir.join("later.txt").exists());
}

#[test]
fn usage_errors_exit_1() {
    let c = case();
    assert_eq!(run(&[]).status.code(), Some(1));
    assert_eq!(
        run(&["--metadata-dir", &c.meta, "frobnicate"])
            .status
            .code(),
        Some(1)
    );
    // download without target names or without a base URL
    let murl = c.metadata_url();
    c.init();
    let out = run(&[
        "--metadata-url",
        &murl,
        "--metadata-dir",
        &c.meta,
        "download",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(c.server.requests().is_empty());
    // A metadata directory without a trusted root.
    let out = run(&[
        "--metadata-url",
        &murl,
        "--metadata-dir",
        &c.targets,
        "refresh",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(run(&["--help"]).status.success());
}
