//! `tufa proxy --index-url URL --metadata-url URL --root ROOT.json
//! [--listen 127.0.0.1:PORT] [--cache-dir DIR]`: a local index for pip and
//! uv that serves only what it verified through TUF.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tufa_client::proxy::{self, ProxyConfig};

/// Where the proxy reads from; shared by `tufa proxy`, `tufa pip`, `tufa uv`.
#[derive(Debug, Args)]
pub struct UpstreamArgs {
    /// The index whose files TUF signs: `https://host/` or `https://host/simple/`
    /// (targets `simple/...` and `packages/...` are fetched below it).
    #[arg(long, value_name = "URL", env = "TUFA_INDEX_URL")]
    pub index_url: String,
    /// Base URL of the TUF metadata (`.../metadata/`).
    #[arg(long, value_name = "URL", env = "TUFA_METADATA_URL")]
    pub metadata_url: String,
    /// The trusted root, the trust anchor.
    #[arg(long, value_name = "FILE", env = "TUFA_ROOT")]
    pub root: PathBuf,
    /// Trusted metadata and verified files [default: the user cache
    /// directory, `~/.cache/tufa/proxy`].
    #[arg(long, value_name = "DIR", env = "TUFA_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Refresh the TUF metadata when the last refresh is older than this.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub refresh_interval: u64,
    /// Fetch targets under their plain names even with consistent snapshots
    /// (for hosts that do not serve `{hash}.{name}`).
    #[arg(long)]
    pub plain_target_urls: bool,
}

impl UpstreamArgs {
    pub fn config(&self) -> anyhow::Result<ProxyConfig> {
        let root = std::fs::read(&self.root)
            .with_context(|| format!("reading the trusted root {}", self.root.display()))?;
        let cache_dir = match &self.cache_dir {
            Some(d) => d.clone(),
            None => default_cache_dir()?,
        };
        let mut config = ProxyConfig::new(
            self.index_url.clone(),
            self.metadata_url.clone(),
            root,
            cache_dir,
        );
        config.refresh_interval = Duration::from_secs(self.refresh_interval);
        config.prefix_targets_with_hash = !self.plain_target_urls;
        Ok(config)
    }
}

fn default_cache_dir() -> anyhow::Result<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
        return Ok(PathBuf::from(x).join("tufa/proxy"));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .context("no HOME: give --cache-dir")?;
    Ok(PathBuf::from(home).join(".cache/tufa/proxy"))
}

#[derive(Debug, Args)]
pub struct ProxyArgs {
    #[command(flatten)]
    upstream: UpstreamArgs,
    /// Address to listen on (port 0: any free port; the address is printed).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:3141")]
    listen: SocketAddr,
}

pub async fn run(args: ProxyArgs) -> anyhow::Result<ExitCode> {
    let config = args.upstream.config()?;
    let running = proxy::start(config, args.listen)
        .await
        .map_err(|r| anyhow::anyhow!("{}", r.reason))?;
    // The one line on stdout: where pip and uv should point.
    println!("{}", running.index_url());
    tokio::select! {
        r = running.wait() => r.context("serving")?,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(ExitCode::SUCCESS)
}
