//! `tufa download --metadata-url URL --root ROOT.json [--metadata-dir DIR]
//! [--target-base-url URL] [--target-dir DIR] TARGET...`: TUF-verified
//! downloads through the updater.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use tufa_client::updater::{HttpConfig, HttpFetcher, Updater, UpdaterConfig};

#[derive(Debug, Args)]
pub struct DownloadArgs {
    /// Base URL of the TUF metadata (`.../metadata/`).
    #[arg(long, value_name = "URL", env = "TUFA_METADATA_URL")]
    metadata_url: String,
    /// The trusted root, the trust anchor (shipped with the application).
    #[arg(long, value_name = "FILE", env = "TUFA_ROOT")]
    root: PathBuf,
    /// Where trusted metadata is kept between runs [default: a temporary
    /// directory, so only --root is trusted].
    #[arg(long, value_name = "DIR")]
    metadata_dir: Option<PathBuf>,
    /// Base URL of the targets [default: the metadata URL's origin, where
    /// `tufa serve` serves `packages/` and `simple/`].
    #[arg(long, value_name = "URL")]
    target_base_url: Option<String>,
    /// Where the files go, each under its base name.
    #[arg(long, value_name = "DIR", default_value = ".")]
    target_dir: PathBuf,
    /// Fetch targets under their plain names even with consistent snapshots
    /// (for hosts that do not serve `{hash}.{name}`).
    #[arg(long)]
    plain_target_urls: bool,
    /// Target paths, as the metadata signs them (`packages/demo/demo-1.0.tar.gz`).
    #[arg(required = true, value_name = "TARGET")]
    targets: Vec<String>,
}

/// The origin (`scheme://host[:port]/`) of a URL.
pub fn origin(url: &str) -> String {
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    let end = url[after_scheme..]
        .find('/')
        .map(|i| after_scheme + i)
        .unwrap_or(url.len());
    format!("{}/", &url[..end])
}

/// Prints each file's path; exit 0 when every target verified, 1 at the
/// first that did not (the error on stderr).
pub fn run(args: DownloadArgs) -> anyhow::Result<ExitCode> {
    let root = std::fs::read(&args.root)
        .with_context(|| format!("reading the trusted root {}", args.root.display()))?;
    let mut names = BTreeSet::new();
    for t in &args.targets {
        let base = t.rsplit('/').next().unwrap_or(t);
        if base.is_empty() || base == "." || base == ".." {
            bail!("{t:?} does not name a file");
        }
        if !names.insert(base.to_string()) {
            bail!("two targets are named {base:?}; download them into different directories");
        }
    }
    let _tmp;
    let metadata_dir = match &args.metadata_dir {
        Some(d) => d.clone(),
        None => {
            _tmp = tempfile::tempdir().context("creating a temporary metadata directory")?;
            _tmp.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&metadata_dir)
        .with_context(|| format!("creating {}", metadata_dir.display()))?;
    std::fs::create_dir_all(&args.target_dir)
        .with_context(|| format!("creating {}", args.target_dir.display()))?;
    let mut config = UpdaterConfig::new(&metadata_dir, args.metadata_url.clone());
    config.target_base_url = Some(
        args.target_base_url
            .clone()
            .unwrap_or_else(|| origin(&args.metadata_url)),
    );
    config.target_dir = Some(args.target_dir.clone());
    config.prefix_targets_with_hash = !args.plain_target_urls;
    let fetcher = HttpFetcher::new(HttpConfig::default())?;
    let mut updater = Updater::with_trusted_root(config, Box::new(fetcher), &root)?;
    if let Err(e) = updater.refresh() {
        eprintln!("tufa: TUF refresh failed: {}", chain(&e));
        return Ok(ExitCode::FAILURE);
    }
    for target in &args.targets {
        let result = updater.require_targetinfo(target).and_then(|info| {
            let base = target.rsplit('/').next().unwrap_or(target);
            let path = args.target_dir.join(base);
            updater.download_target(&info, Some(&path), None)
        });
        match result {
            Ok(path) => println!("{}", path.display()),
            Err(e) => {
                eprintln!("tufa: {target}: {}", chain(&e));
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// An error and its sources, on one line.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
