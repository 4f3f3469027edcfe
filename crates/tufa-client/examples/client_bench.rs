//! The client benchmark: what `../shared/bench/client_refresh.py` measures
//! of python-tuf's ngclient, measured of tufa's updater, so that
//! `bench/run-client.sh` can set the two side by side.
//!
//! ```text
//! client_bench --metadata-url URL --target-base-url URL --root ROOT.json
//!              --target PATH [--repeats 5]
//! ```
//!
//! Each repeat, with a fresh empty cache:
//!   `Updater::with_trusted_root`     -> init
//!   `refresh()`                      -> refresh (root N+1, timestamp, snapshot, targets)
//!   `get_targetinfo(target)`         -> lookup (the one bin needed)
//!   `download_target(info)`          -> download (hash-prefixed target file)
//! then a warm pass on the same cache (a new updater, refresh, lookup,
//! `find_cached_target`). Bytes are body bytes as received, requests every
//! request made (404s included), as `client_refresh.py` counts them. Prints
//! one JSON line: the medians, and every run.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{Value, json};
use tufa_client::updater::{Error, Fetcher, HttpConfig, HttpFetcher, Updater, UpdaterConfig};

/// One request: URL, body bytes, status (200, the HTTP error, or 0 for a
/// failure without one).
type Log = Arc<Mutex<Vec<(String, u64, u16)>>>;

#[derive(Debug)]
struct CountingFetcher {
    inner: HttpFetcher,
    log: Log,
}

struct CountingSink<'a> {
    out: &'a mut dyn Write,
    n: u64,
}

impl Write for CountingSink<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

impl Fetcher for CountingFetcher {
    fn fetch(&self, url: &str, max_length: u64, sink: &mut dyn Write) -> Result<u64, Error> {
        let mut counting = CountingSink { out: sink, n: 0 };
        let result = self.inner.fetch(url, max_length, &mut counting);
        let status = match &result {
            Ok(_) => 200,
            Err(Error::Http { status, .. }) => *status,
            Err(_) => 0,
        };
        if let Ok(mut log) = self.log.lock() {
            log.push((url.to_string(), counting.n, status));
        }
        result
    }
}

struct Args {
    metadata_url: String,
    target_base_url: String,
    root: PathBuf,
    target: String,
    repeats: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut metadata_url = None;
    let mut target_base_url = None;
    let mut root = None;
    let mut target = None;
    let mut repeats = 5;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--metadata-url" => metadata_url = Some(value()?),
            "--target-base-url" => target_base_url = Some(value()?),
            "--root" => root = Some(PathBuf::from(value()?)),
            "--target" => target = Some(value()?),
            "--repeats" => repeats = value()?.parse().map_err(|e| format!("--repeats: {e}"))?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        metadata_url: metadata_url.ok_or("--metadata-url is required")?,
        target_base_url: target_base_url.ok_or("--target-base-url is required")?,
        root: root.ok_or("--root is required")?,
        target: target.ok_or("--target is required")?,
        repeats: repeats.max(1),
    })
}

fn updater(args: &Args, dir: &std::path::Path, root: &[u8], log: &Log) -> Result<Updater, String> {
    let mut config = UpdaterConfig::new(dir.join("metadata"), args.metadata_url.clone());
    config.target_dir = Some(dir.join("targets"));
    config.target_base_url = Some(args.target_base_url.clone());
    let fetcher = CountingFetcher {
        inner: HttpFetcher::new(HttpConfig::default()).map_err(|e| e.to_string())?,
        log: log.clone(),
    };
    Updater::with_trusted_root(config, Box::new(fetcher), root).map_err(|e| e.to_string())
}

fn take(log: &Log) -> Vec<(String, u64, u16)> {
    log.lock()
        .map(|mut l| std::mem::take(&mut *l))
        .unwrap_or_default()
}

fn one_run(args: &Args, root: &[u8]) -> Result<Value, String> {
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    for sub in ["metadata", "targets"] {
        std::fs::create_dir_all(work.path().join(sub)).map_err(|e| e.to_string())?;
    }
    let log: Log = Arc::default();

    // -- fresh cache --
    let t0 = Instant::now();
    let mut up = updater(args, work.path(), root, &log)?;
    let t1 = Instant::now();
    up.refresh().map_err(|e| format!("refresh: {e}"))?;
    let t2 = Instant::now();
    let info = up
        .get_targetinfo(&args.target)
        .map_err(|e| format!("lookup: {e}"))?
        .ok_or(format!("target not found: {}", args.target))?;
    let t3 = Instant::now();
    let path = up
        .download_target(&info, None, None)
        .map_err(|e| format!("download: {e}"))?;
    let t4 = Instant::now();
    let size = std::fs::metadata(&path).map_err(|e| e.to_string())?.len();
    if size != info.file.length {
        return Err("downloaded target has the wrong length".into());
    }
    let cold = take(&log);
    drop(up);

    // -- warm cache (same directories, nothing changed on the server) --
    let w0 = Instant::now();
    let mut wup = updater(args, work.path(), root, &log)?;
    wup.refresh().map_err(|e| format!("warm refresh: {e}"))?;
    let winfo = wup
        .get_targetinfo(&args.target)
        .map_err(|e| format!("warm lookup: {e}"))?
        .ok_or("warm lookup found nothing")?;
    if wup.find_cached_target(&winfo, None).is_none() {
        return Err("the warm pass did not find the cached target".into());
    }
    let w1 = Instant::now();
    let warm = take(&log);

    let secs = |a: Instant, b: Instant| (b - a).as_secs_f64();
    let sum = |log: &[(String, u64, u16)], part: &str| -> u64 {
        log.iter()
            .filter(|r| part.is_empty() || r.0.contains(part))
            .map(|r| r.1)
            .sum()
    };
    let metadata_part = metadata_marker(&args.metadata_url);
    Ok(json!({
        "init_s": secs(t0, t1),
        "refresh_s": secs(t1, t2),
        "lookup_s": secs(t2, t3),
        "download_s": secs(t3, t4),
        "total_s": secs(t0, t4),
        "bytes": sum(&cold, ""),
        "metadata_bytes": sum(&cold, &metadata_part),
        "target_bytes": sum(&cold, "") - sum(&cold, &metadata_part),
        "requests": cold.len(),
        "warm_total_s": secs(w0, w1),
        "warm_bytes": sum(&warm, ""),
        "warm_requests": warm.len(),
        "_request_log": cold,
        "_warm_request_log": warm,
    }))
}

/// The part of a URL that marks a metadata request (`/metadata/`).
fn metadata_marker(metadata_url: &str) -> String {
    let trimmed = metadata_url.trim_end_matches('/');
    let last = trimmed.rsplit('/').next().unwrap_or(trimmed);
    format!("/{last}/")
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("client_bench: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let root = match std::fs::read(&args.root) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("client_bench: reading {}: {e}", args.root.display());
            return std::process::ExitCode::FAILURE;
        }
    };
    let mut runs = Vec::new();
    for i in 0..args.repeats {
        match one_run(&args, &root) {
            Ok(r) => {
                eprintln!(
                    "run {}/{}: total {:.4}s bytes {} warm {:.4}s",
                    i + 1,
                    args.repeats,
                    r["total_s"].as_f64().unwrap_or(f64::NAN),
                    r["bytes"],
                    r["warm_total_s"].as_f64().unwrap_or(f64::NAN)
                );
                runs.push(r);
            }
            Err(e) => {
                eprintln!("client_bench: {e}");
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    let mut out = serde_json::Map::new();
    out.insert("bench".into(), json!("tufa_client"));
    out.insert("target".into(), json!(args.target));
    out.insert("repeats".into(), json!(args.repeats));
    let keys: Vec<String> = runs[0]
        .as_object()
        .map(|o| o.keys().filter(|k| !k.starts_with('_')).cloned().collect())
        .unwrap_or_default();
    for k in keys {
        let values: Vec<f64> = runs.iter().filter_map(|r| r[&k].as_f64()).collect();
        let m = median(values);
        let v = if runs.iter().all(|r| r[&k].is_u64()) {
            json!(m as u64)
        } else {
            json!((m * 1e6).round() / 1e6)
        };
        out.insert(format!("median_{k}"), v);
    }
    let totals: Vec<f64> = runs.iter().filter_map(|r| r["total_s"].as_f64()).collect();
    out.insert(
        "min_total_s".into(),
        json!(totals.iter().copied().fold(f64::INFINITY, f64::min)),
    );
    out.insert(
        "max_total_s".into(),
        json!(totals.iter().copied().fold(0.0, f64::max)),
    );
    out.insert("request_log".into(), runs[0]["_request_log"].clone());
    out.insert(
        "warm_request_log".into(),
        runs[0]["_warm_request_log"].clone(),
    );
    out.insert("runs_total_s".into(), json!(totals));
    println!("{}", Value::Object(out));
    std::process::ExitCode::SUCCESS
}
