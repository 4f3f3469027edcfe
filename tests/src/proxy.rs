//! Running `tufa proxy` as a real process, and pip and uv against it, for
//! the proxy tests (`proxy_pip.rs` over a static python-tuf-built index,
//! `proxy_serve.rs` over `tufa serve --dev`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use tufa_client::proxy::cached_files;
use tufa_metadata::HashAlgorithm;

use crate::{tufa_bin, workspace_root};

/// A running `tufa proxy`, killed on drop.
#[derive(Debug)]
pub struct ProxyProcess {
    child: Child,
    /// `http://127.0.0.1:PORT/simple/`, for pip's and uv's `--index-url`.
    pub url: String,
    pub cache: PathBuf,
    stderr: PathBuf,
}

impl ProxyProcess {
    /// `tufa proxy UPSTREAM... --listen 127.0.0.1:0 --cache-dir CACHE EXTRA...`;
    /// returns once it printed the URL it listens on. Its log goes to
    /// `CACHE.log`.
    pub fn start(upstream: &[String], cache: &Path, extra: &[&str]) -> ProxyProcess {
        let stderr = cache.with_extension("log");
        let mut child = Command::new(tufa_bin())
            .arg("proxy")
            .args(upstream)
            .args(["--listen", "127.0.0.1:0", "--cache-dir"])
            .arg(cache)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("log file"))
            .spawn()
            .expect("start tufa proxy");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the proxy's URL");
        assert!(
            line.starts_with("http://127.0.0.1:"),
            "tufa proxy did not start: {line:?}\n{}",
            std::fs::read_to_string(&stderr).unwrap_or_default()
        );
        ProxyProcess {
            child,
            url: line.trim().to_string(),
            cache: cache.to_path_buf(),
            stderr,
        }
    }

    /// What the proxy logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// `(status line, body)` of a GET through the proxy.
    pub fn get(&self, path: &str) -> (String, String) {
        let hostport = self
            .url
            .trim_start_matches("http://")
            .split('/')
            .next()
            .expect("host")
            .to_string();
        let mut s = TcpStream::connect(&hostport).expect("connect to the proxy");
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n\r\n"
        )
        .expect("send");
        let mut response = Vec::new();
        s.read_to_end(&mut response).expect("read");
        let response = String::from_utf8_lossy(&response).into_owned();
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        let status = head.lines().next().unwrap_or("").to_string();
        (status, body.to_string())
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A program in the test peers' `.venv/bin` (python, uv, twine).
pub fn venv_bin(name: &str) -> PathBuf {
    workspace_root().join(".venv/bin").join(name)
}

/// Every file in the proxy's cache is named by its own sha256: nothing
/// unverified (nor any temporary file) was left there.
pub fn assert_cache_verified(cache: &Path) {
    for file in cached_files(cache) {
        let name = file
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let bytes = std::fs::read(&file).expect("read cached file");
        assert_eq!(
            hex::encode(HashAlgorithm::Sha256.digest(&bytes)),
            name,
            "{} in the cache does not hold the bytes its name says",
            file.display()
        );
    }
}

/// The environment for pip and uv: no configuration or extra sources from
/// the machine, no caches, no retries.
pub fn installer(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    for var in [
        "PIP_FIND_LINKS",
        "PIP_EXTRA_INDEX_URL",
        "PIP_INDEX_URL",
        "UV_INDEX_URL",
        "UV_EXTRA_INDEX_URL",
        "UV_FIND_LINKS",
        "UV_INDEX",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("PIP_CONFIG_FILE", "/dev/null")
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env("PIP_NO_CACHE_DIR", "1")
        .env("PIP_RETRIES", "0")
        .env("UV_NO_CONFIG", "1")
        .env("UV_NO_CACHE", "1")
        .env("UV_HTTP_RETRIES", "0")
        .env("UV_PYTHON_DOWNLOADS", "never");
    cmd
}

/// An installer's exit status and output, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The installer failed, and its output shows the proxy's 502 and why.
pub fn assert_refused(out: &Output, what: &str) {
    let all = text(out);
    assert!(!out.status.success(), "install should fail: {all}");
    let reason = format!("TUF verification failed for {what}");
    assert!(all.contains(&reason), "no {reason:?} in the output: {all}");
    assert!(all.contains("502"), "no 502 in the output: {all}");
}
