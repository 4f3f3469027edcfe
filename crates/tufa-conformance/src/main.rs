//! `tufa-conformance`: tufa's updater behind the client-under-test CLI of
//! the TUF conformance suite (its `CLIENT-CLI.md`):
//!
//! ```text
//! tufa-conformance --metadata-dir DIR init TRUSTED_ROOT
//! tufa-conformance --metadata-url URL --metadata-dir DIR refresh
//! tufa-conformance --metadata-url URL --metadata-dir DIR \
//!     --target-name NAME [--target-name NAME ...] \
//!     --target-base-url URL --target-dir DIR download
//! ```
//!
//! Exit status 0 on success and 1 on any failure, the error on stderr. The
//! metadata directory then holds a plain `{role}.json` for every trusted
//! role (delegated role names percent-encoded).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use tufa_client::updater::{self, HttpConfig, HttpFetcher, Updater, UpdaterConfig};

#[derive(Debug, Parser)]
#[command(
    name = "tufa-conformance",
    version,
    about = "tufa's TUF updater, speaking the TUF conformance suite's client CLI"
)]
struct Cli {
    /// Directory of the client's trusted metadata.
    #[arg(long, global = true, value_name = "DIR")]
    metadata_dir: Option<PathBuf>,
    /// Base URL of the repository's metadata.
    #[arg(long, global = true, value_name = "URL")]
    metadata_url: Option<String>,
    /// Target path to download (repeatable; downloaded in order).
    #[arg(long = "target-name", global = true, value_name = "NAME")]
    target_names: Vec<String>,
    /// Base URL of the repository's targets.
    #[arg(long, global = true, value_name = "URL")]
    target_base_url: Option<String>,
    /// Directory to store downloaded targets in.
    #[arg(long, global = true, value_name = "DIR")]
    target_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Trust TRUSTED_ROOT: copy it into the metadata directory (no network).
    Init {
        /// The initial trusted root.json.
        trusted_root: PathBuf,
    },
    /// Update the top-level metadata as the TUF client workflow says.
    Refresh,
    /// Refresh, then download and verify each --target-name in order.
    Download,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // --help and --version succeed; every other usage error is a failure.
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tufa-conformance: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let metadata_dir = cli
        .metadata_dir
        .clone()
        .context("--metadata-dir is required")?;
    match &cli.command {
        Command::Init { trusted_root } => init(&metadata_dir, trusted_root),
        Command::Refresh => {
            let mut updater = updater(&cli, &metadata_dir)?;
            updater.refresh()?;
            Ok(())
        }
        Command::Download => download(&cli, &metadata_dir),
    }
}

fn init(metadata_dir: &Path, trusted_root: &Path) -> Result<()> {
    let bytes = std::fs::read(trusted_root)
        .with_context(|| format!("cannot read {}", trusted_root.display()))?;
    std::fs::create_dir_all(metadata_dir)
        .with_context(|| format!("cannot create {}", metadata_dir.display()))?;
    updater::write_atomic(&metadata_dir.join("root.json"), &bytes)?;
    Ok(())
}

fn updater(cli: &Cli, metadata_dir: &Path) -> Result<Updater> {
    let url = cli
        .metadata_url
        .clone()
        .context("--metadata-url is required")?;
    let mut config = UpdaterConfig::new(metadata_dir, url);
    config.target_dir = cli.target_dir.clone();
    config.target_base_url = cli.target_base_url.clone();
    let fetcher = HttpFetcher::new(HttpConfig::default())?;
    Ok(Updater::new(config, Box::new(fetcher))?)
}

fn download(cli: &Cli, metadata_dir: &Path) -> Result<()> {
    if cli.target_names.is_empty() {
        bail!("download needs at least one --target-name");
    }
    if cli.target_base_url.is_none() || cli.target_dir.is_none() {
        bail!("download needs --target-base-url and --target-dir");
    }
    let mut updater = updater(cli, metadata_dir)?;
    updater.refresh()?;
    for name in &cli.target_names {
        let info = updater.require_targetinfo(name)?;
        // Kept without a request when already downloaded with these hashes.
        updater.download_target(&info, None, None)?;
    }
    Ok(())
}
