//! The verifying proxy in front of the bundled index: twine uploads a wheel
//! to `tufa serve --dev`; `tufa pip install` and `tufa uv pip install`
//! install it through `tufa proxy` pointed at the server's `/simple/` and
//! `/metadata/`; then the stored file's bytes are altered on disk in the
//! server's content-addressed store, and the same installs fail with the
//! proxy's reason in the installer's output, leaving nothing unverified in
//! the proxy's cache.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use tempfile::TempDir;
use tufa_client::proxy::cached_files;
use tufa_tests::proxy::{
    ProxyProcess, assert_cache_verified, assert_refused, installer, text, venv_bin,
};
use tufa_tests::server::Server;
use tufa_tests::{run_python, tufa_bin};

const WHEEL_TARGET: &str = "packages/tufa-demo/tufa_demo-1.0-py3-none-any.whl";

/// `tufa serve --dev` with one wheel uploaded by twine.
struct Index {
    server: Server,
    /// `{"filename", "sha256", "length"}` of the uploaded wheel.
    wheel: Value,
    _dir: TempDir,
}

impl Index {
    fn start(work: &Path) -> Index {
        let dir = TempDir::new().expect("tempdir");
        let (server, printed) = Server::start_capturing(dir.path(), &["--dev", "--dev-bins", "16"]);
        let token = Server::dev_token(&printed)
            .unwrap_or_else(|| panic!("no upload token printed:\n{}", printed.join("\n")));
        let upload = work.join("upload");
        let out = run_python(
            "proxy_serve_upload.py",
            &[server.base_url.as_ref(), token.as_ref(), upload.as_os_str()],
        );
        let wheel: Value = serde_json::from_slice(&out.stdout).expect("upload summary JSON");
        Index {
            server,
            wheel,
            _dir: dir,
        }
    }

    fn sha256(&self) -> &str {
        self.wheel["sha256"].as_str().expect("sha256")
    }

    /// The proxy's upstream: the server's `/simple/` and `/metadata/`.
    fn upstream_args(&self) -> Vec<String> {
        let base = &self.server.base_url;
        vec![
            "--index-url".into(),
            format!("{base}/simple/"),
            "--metadata-url".into(),
            format!("{base}/metadata/"),
            "--root".into(),
            self.server
                .metadata_dir()
                .join("1.root.json")
                .display()
                .to_string(),
        ]
    }

    /// The wheel in the server's content-addressed store.
    fn stored_wheel(&self) -> PathBuf {
        let sha = self.sha256();
        self.server
            .data_dir
            .join("files/sha256")
            .join(&sha[0..2])
            .join(&sha[2..4])
            .join(sha)
    }

    /// Flips one byte of the stored wheel (same length, other bytes).
    fn alter_stored_wheel(&self) {
        let path = self.stored_wheel();
        let mut bytes = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("the stored wheel {}: {e}", path.display()));
        assert_eq!(
            bytes.len() as u64,
            self.wheel["length"].as_u64().expect("length")
        );
        let i = bytes.len() / 2;
        bytes[i] ^= 0x20;
        let mut perms = std::fs::metadata(&path).expect("stat").permissions();
        #[allow(clippy::permissions_set_readonly_false)] // a test altering the store on purpose
        perms.set_readonly(false);
        std::fs::set_permissions(&path, perms).expect("make writable");
        std::fs::write(&path, bytes).expect("alter the stored wheel");
    }

    /// `tufa pip|uv ... UPSTREAM --cache-dir CACHE INSTALLER ARGS... --target TARGET`.
    fn tufa(&self, tool: &str, cache: &Path, target: &Path) -> Output {
        let python = venv_bin("python").display().to_string();
        let uv = venv_bin("uv").display().to_string();
        let mut cmd = installer(tufa_bin());
        cmd.arg(tool)
            .args(self.upstream_args())
            .arg("--cache-dir")
            .arg(cache);
        match tool {
            "pip" => cmd
                .args(["--python", &python])
                .args(["install", "tufa-demo", "--target"]),
            _ => cmd.args(["--uv", &uv]).args([
                "pip",
                "install",
                "tufa-demo",
                "--python",
                &python,
                "--target",
            ]),
        };
        cmd.arg(target).output().expect("run tufa")
    }
}

fn assert_installed(target: &Path, out: &Output) {
    assert!(out.status.success(), "install failed: {}", text(out));
    let module = std::fs::read_to_string(target.join("tufa_demo/__init__.py"))
        .unwrap_or_else(|e| panic!("tufa_demo not installed ({e}): {}", text(out)));
    assert!(module.starts_with("VERSION = '1.0'\n"), "{module:?}");
}

fn cached(cache: &Path, sha256: &str) -> bool {
    cached_files(cache)
        .iter()
        .any(|f| f.file_name().is_some_and(|n| n == sha256))
}

#[test]
fn pip_and_uv_install_from_tufa_serve_through_the_proxy_until_a_stored_file_is_altered() {
    let work = TempDir::new().expect("tempdir");
    let index = Index::start(work.path());
    let cache = work.path().join("cache");

    // Through `tufa proxy` itself, with plain pip: the page and the wheel
    // are verified and cached.
    let proxy = ProxyProcess::start(&index.upstream_args(), &cache, &[]);
    let out = installer(venv_bin("python"))
        .args([
            "-m",
            "pip",
            "install",
            "--index-url",
            &proxy.url,
            "--target",
        ])
        .arg(work.path().join("p0"))
        .arg("tufa-demo")
        .output()
        .expect("run pip");
    assert_installed(&work.path().join("p0"), &out);
    assert!(cached(&cache, index.sha256()), "wheel not cached");
    assert_cache_verified(&cache);
    drop(proxy);

    // `tufa pip` and `tufa uv` (each starts its own proxy) on a fresh cache.
    std::fs::remove_dir_all(&cache).expect("clear the cache");
    let out = index.tufa("pip", &cache, &work.path().join("p1"));
    assert_installed(&work.path().join("p1"), &out);
    let out = index.tufa("uv", &cache, &work.path().join("u1"));
    assert_installed(&work.path().join("u1"), &out);
    assert_cache_verified(&cache);

    // The stored file altered on disk: the server now serves other bytes.
    index.alter_stored_wheel();
    // The bytes verified before are still the ones the metadata signs, so a
    // warm cache keeps installing them; nothing is fetched for the wheel.
    let out = index.tufa("pip", &cache, &work.path().join("p2"));
    assert_installed(&work.path().join("p2"), &out);

    // A fresh cache must fetch the file, and refuses it.
    std::fs::remove_dir_all(&cache).expect("clear the cache");
    let out = index.tufa("pip", &cache, &work.path().join("p3"));
    eprintln!("tufa pip over the altered file:\n{}", text(&out));
    assert_refused(&out, WHEEL_TARGET);
    assert_eq!(
        out.status.code(),
        Some(1),
        "pip's exit status: {}",
        text(&out)
    );
    assert!(
        text(&out).contains("refused: TUF verification failed"),
        "the refusal is not logged: {}",
        text(&out)
    );
    assert!(!work.path().join("p3/tufa_demo").exists());
    let out = index.tufa("uv", &cache, &work.path().join("u3"));
    assert_refused(&out, WHEEL_TARGET);
    assert!(!work.path().join("u3/tufa_demo").exists());
    assert!(
        !cached(&cache, index.sha256()),
        "the altered wheel was cached"
    );
    assert!(
        !cached_files(&cache).is_empty(),
        "the verified project page should be cached"
    );
    assert_cache_verified(&cache);
}
