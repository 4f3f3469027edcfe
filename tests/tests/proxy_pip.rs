//! `tufa proxy`, `tufa pip`, `tufa uv` and `tufa download` against a small
//! index signed by python-tuf (`tests/python/proxy_build_repo.py`), served
//! by the in-test HTTP server (which counts requests): real pip and real uv
//! install a wheel through the proxy; a tampered file or page upstream makes
//! the same install fail with the proxy's reason in the installer's output;
//! nothing unverified is left in the cache.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;
use tufa_client::proxy::cached_files;
use tufa_metadata::HashAlgorithm;
use tufa_tests::proxy::{
    ProxyProcess, assert_cache_verified, assert_refused, installer, text, venv_bin,
};
use tufa_tests::repo_builder::TestServer;
use tufa_tests::{run_python, tufa_bin};

const WHEEL_TARGET: &str = "packages/tufa-demo/tufa_demo-1.0-py3-none-any.whl";
const PAGE_TARGET: &str = "simple/tufa-demo/index.html";

/// The python-tuf-built index, served over HTTP.
struct Index {
    dir: TempDir,
    server: TestServer,
    summary: Value,
}

impl Index {
    fn build() -> Index {
        let dir = TempDir::new().expect("tempdir");
        let out = dir.path().join("repo");
        let output = run_python("proxy_build_repo.py", &[out.as_os_str()]);
        let summary: Value = serde_json::from_slice(&output.stdout).expect("summary JSON");
        let server = TestServer::start();
        server.put_dir("metadata", &out.join("metadata"));
        server.put_dir("index", &out.join("index"));
        Index {
            dir,
            server,
            summary,
        }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("repo/metadata/1.root.json")
    }

    fn upstream_args(&self) -> Vec<String> {
        vec![
            "--index-url".into(),
            self.server.url("index/simple/"),
            "--metadata-url".into(),
            self.server.url("metadata/"),
            "--root".into(),
            self.root().display().to_string(),
        ]
    }

    /// Serves other bytes for every name of `target` (plain and hash-prefixed).
    fn tamper(&self, target: &str) {
        for path in self.summary["files"][target]
            .as_array()
            .expect("served names")
        {
            let path = format!("index/{}", path.as_str().expect("path"));
            let mut bytes = self.server.get(&path).expect("served");
            let i = bytes.len() / 2;
            bytes[i] ^= 0x20;
            self.server.put(&path, bytes);
        }
    }

    fn timestamp_requests(&self) -> usize {
        self.server
            .requests()
            .iter()
            .filter(|r| r.ends_with("timestamp.json"))
            .count()
    }
}

/// A running `tufa proxy` over the index.
struct Proxy;

impl Proxy {
    fn start(index: &Index, cache: &Path, extra: &[&str]) -> ProxyProcess {
        ProxyProcess::start(&index.upstream_args(), cache, extra)
    }
}

fn pip_install(index_url: &str, target: &Path) -> Output {
    pip_install_with(index_url, target, &[])
}

fn pip_install_with(index_url: &str, target: &Path, extra: &[&str]) -> Output {
    installer(venv_bin("python"))
        .args(["-m", "pip", "install"])
        .args(extra)
        .args(["--index-url", index_url, "--target"])
        .arg(target)
        .arg("Tufa.Demo")
        .output()
        .expect("run pip")
}

fn uv_install(index_url: &str, target: &Path) -> Output {
    installer(venv_bin("uv"))
        .args(["pip", "install", "--no-cache", "--index-url", index_url])
        .arg("--python")
        .arg(venv_bin("python"))
        .arg("--target")
        .arg(target)
        .arg("tufa-demo")
        .output()
        .expect("run uv")
}

fn assert_installed(target: &Path, out: &Output) {
    assert!(out.status.success(), "install failed: {}", text(out));
    let module = std::fs::read_to_string(target.join("tufa_demo/__init__.py"))
        .unwrap_or_else(|e| panic!("tufa_demo not installed ({e}): {}", text(out)));
    assert_eq!(module, "VERSION = \"1.0\"\n");
}

#[test]
fn pip_installs_through_the_proxy_and_refuses_a_tampered_file() {
    let index = Index::build();
    let tmp = TempDir::new().expect("tempdir");
    let proxy = Proxy::start(&index, &tmp.path().join("cache"), &[]);
    let url = proxy.url.clone();

    let out = pip_install(&url, &tmp.path().join("t1"));
    assert_installed(&tmp.path().join("t1"), &out);
    // Twice, and a cached file altered on disk is not served: it is fetched
    // and verified again.
    let sha = index.summary["targets"][WHEEL_TARGET]["sha256"]
        .as_str()
        .expect("sha256")
        .to_string();
    let cached = proxy.cache.join("sha256").join(&sha);
    std::fs::write(&cached, b"not the wheel").expect("alter the cache");
    let out = pip_install(&url, &tmp.path().join("t2"));
    assert_installed(&tmp.path().join("t2"), &out);
    assert_cache_verified(&proxy.cache);
    assert_eq!(cached_files(&proxy.cache).len(), 2, "page and wheel cached");
    // One refresh for the whole process (interval 60 s).
    assert_eq!(
        index.timestamp_requests(),
        1,
        "{:?}",
        index.server.requests()
    );

    // The file altered upstream: a proxy with a fresh cache refuses it.
    index.tamper(WHEEL_TARGET);
    let proxy = Proxy::start(&index, &tmp.path().join("cache2"), &[]);
    let out = pip_install(&proxy.url, &tmp.path().join("t3"));
    assert_refused(&out, WHEEL_TARGET);
    assert!(!tmp.path().join("t3/tufa_demo").exists());
    assert!(
        proxy.log().contains("refused: TUF verification failed"),
        "refusal not logged: {}",
        proxy.log()
    );
    assert_cache_verified(&proxy.cache);
    assert_eq!(
        cached_files(&proxy.cache).len(),
        1,
        "only the page is cached"
    );
}

#[test]
fn uv_installs_through_the_proxy_and_both_refuse_a_tampered_page() {
    let index = Index::build();
    let tmp = TempDir::new().expect("tempdir");
    let proxy = Proxy::start(&index, &tmp.path().join("cache"), &[]);
    let out = uv_install(&proxy.url, &tmp.path().join("t1"));
    assert_installed(&tmp.path().join("t1"), &out);
    assert_cache_verified(&proxy.cache);

    index.tamper(PAGE_TARGET);
    let proxy = Proxy::start(&index, &tmp.path().join("cache2"), &[]);
    let out = uv_install(&proxy.url, &tmp.path().join("t2"));
    assert_refused(&out, PAGE_TARGET);
    // pip logs why it skipped an index page only with -vv ("Could not fetch
    // URL ...: 502 Server Error: <reason>").
    let out = pip_install_with(&proxy.url, &tmp.path().join("t3"), &["-vv"]);
    assert_refused(&out, PAGE_TARGET);
    assert!(cached_files(&proxy.cache).is_empty());

    // And a tampered file through uv.
    let index = Index::build();
    index.tamper(WHEEL_TARGET);
    let proxy = Proxy::start(&index, &tmp.path().join("cache3"), &[]);
    let out = uv_install(&proxy.url, &tmp.path().join("t4"));
    assert_refused(&out, WHEEL_TARGET);
    assert_cache_verified(&proxy.cache);
}

#[test]
fn tufa_pip_and_tufa_uv_run_the_installer_through_a_proxy() {
    let index = Index::build();
    let tmp = TempDir::new().expect("tempdir");
    let cache = tmp.path().join("cache");
    let run = |tool: &str, tool_flag: &[&str], args: &[&str], target: &Path| -> Output {
        installer(tufa_bin())
            .arg(tool)
            .args(index.upstream_args())
            .arg("--cache-dir")
            .arg(&cache)
            .args(tool_flag)
            .args(args)
            .arg(target)
            .output()
            .expect("run tufa")
    };
    let python = venv_bin("python").display().to_string();
    let uv = venv_bin("uv").display().to_string();
    let pip_args = ["install", "tufa-demo", "--target"];
    let uv_args = [
        "pip",
        "install",
        "tufa-demo",
        "--python",
        &python,
        "--target",
    ];

    let out = run(
        "pip",
        &["--python", &python],
        &pip_args,
        &tmp.path().join("p1"),
    );
    assert_installed(&tmp.path().join("p1"), &out);
    let out = run("uv", &["--uv", &uv], &uv_args, &tmp.path().join("u1"));
    assert_installed(&tmp.path().join("u1"), &out);

    // An index option of the installer's own would bypass the proxy.
    let out = run(
        "pip",
        &["--python", &python],
        &[
            "install",
            "--index-url",
            "http://example.invalid/",
            "tufa-demo",
            "--target",
        ],
        &tmp.path().join("p0"),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("sets the index itself"),
        "{}",
        text(&out)
    );

    // Tampered upstream: the installer fails, and its exit status is tufa's.
    index.tamper(WHEEL_TARGET);
    std::fs::remove_dir_all(&cache).expect("clear the cache");
    let out = run(
        "pip",
        &["--python", &python],
        &pip_args,
        &tmp.path().join("p2"),
    );
    assert_refused(&out, WHEEL_TARGET);
    assert_eq!(
        out.status.code(),
        Some(1),
        "pip's exit status: {}",
        text(&out)
    );
    let out = run("uv", &["--uv", &uv], &uv_args, &tmp.path().join("u2"));
    assert_refused(&out, WHEEL_TARGET);
    assert_cache_verified(&cache);
}

#[test]
fn unsigned_paths_are_refused_with_404_and_the_reason() {
    let index = Index::build();
    // On the server, but not signed.
    index.server.put(
        "index/packages/tufa-demo/evil-1.0-py3-none-any.whl",
        b"evil".to_vec(),
    );
    index
        .server
        .put("index/simple/index.html", b"<a href=x>".to_vec());
    let tmp = TempDir::new().expect("tempdir");
    let proxy = Proxy::start(&index, &tmp.path().join("cache"), &[]);

    for (path, target) in [
        (
            "/packages/tufa-demo/evil-1.0-py3-none-any.whl",
            "packages/tufa-demo/evil-1.0-py3-none-any.whl",
        ),
        (
            "/packages/Tufa_Demo/nope.tar.gz",
            "packages/tufa-demo/nope.tar.gz",
        ),
        ("/simple/ghost/", "simple/ghost/index.html"),
        ("/simple/", "simple/index.html"),
    ] {
        let (status, body) = proxy.get(path);
        assert!(status.starts_with("HTTP/1.1 404 "), "{path}: {status}");
        let reason = format!("not a signed target: {target}");
        assert!(status.contains(&reason), "{path}: {status}");
        assert!(body.contains(&reason), "{path}: {body}");
        assert!(proxy.log().contains(&reason), "{path}: not logged");
    }
    let (status, _) = proxy.get("/elsewhere");
    assert!(status.starts_with("HTTP/1.1 404 "), "{status}");

    // The page is served with its links through the proxy.
    let (status, body) = proxy.get("/simple/tufa-demo/");
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let sha = index.summary["targets"][WHEEL_TARGET]["sha256"]
        .as_str()
        .expect("sha256");
    assert!(
        body.contains(&format!(
            "href=\"/packages/tufa-demo/tufa_demo-1.0-py3-none-any.whl#sha256={sha}\""
        )),
        "{body}"
    );
    assert!(!body.contains("../../packages"), "{body}");
    assert_eq!(cached_files(&proxy.cache).len(), 1);
    assert_cache_verified(&proxy.cache);
}

#[test]
fn the_proxy_refreshes_once_per_start_and_then_per_interval() {
    let index = Index::build();
    let tmp = TempDir::new().expect("tempdir");
    let proxy = Proxy::start(&index, &tmp.path().join("cache"), &[]);
    for _ in 0..3 {
        assert!(proxy.get("/simple/tufa-demo/").0.contains(" 200 "));
    }
    assert_eq!(index.timestamp_requests(), 1);
    drop(proxy);

    index.server.clear_requests();
    let proxy = Proxy::start(
        &index,
        &tmp.path().join("cache"),
        &["--refresh-interval", "1"],
    );
    assert!(proxy.get("/simple/tufa-demo/").0.contains(" 200 "));
    assert_eq!(index.timestamp_requests(), 1);
    std::thread::sleep(Duration::from_millis(1100));
    assert!(proxy.get("/simple/tufa-demo/").0.contains(" 200 "));
    assert!(proxy.get("/simple/tufa-demo/").0.contains(" 200 "));
    assert_eq!(
        index.timestamp_requests(),
        2,
        "{:?}",
        index.server.requests()
    );
}

#[test]
fn tufa_download_verifies_targets() {
    let index = Index::build();
    let tmp = TempDir::new().expect("tempdir");
    let download = |dir: &str| {
        Command::new(tufa_bin())
            .arg("download")
            .args(["--metadata-url", &index.server.url("metadata/")])
            .arg("--root")
            .arg(index.root())
            .args(["--target-base-url", &index.server.url("index/")])
            .arg("--target-dir")
            .arg(tmp.path().join(dir))
            .args([WHEEL_TARGET, PAGE_TARGET])
            .output()
            .expect("run tufa download")
    };
    let out = download("ok");
    assert!(out.status.success(), "{}", text(&out));
    let wheel = std::fs::read(tmp.path().join("ok/tufa_demo-1.0-py3-none-any.whl"))
        .expect("wheel downloaded");
    assert_eq!(
        hex::encode(HashAlgorithm::Sha256.digest(&wheel)),
        index.summary["targets"][WHEEL_TARGET]["sha256"]
            .as_str()
            .expect("sha256")
    );
    assert!(tmp.path().join("ok/index.html").exists());

    index.tamper(WHEEL_TARGET);
    let out = download("bad");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("does not match its signed length and hashes"),
        "{}",
        text(&out)
    );
    assert!(
        !tmp.path()
            .join("bad/tufa_demo-1.0-py3-none-any.whl")
            .exists()
    );
    let listed: Vec<_> = std::fs::read_dir(tmp.path().join("bad"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(listed.is_empty(), "left behind: {listed:?}");
}
