//! `tufa serve`: the repository service on the embedded default.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use tufa_repository::Repository;

use crate::repo_args::RepoArgs;

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "TUFA_LISTEN")]
    listen: SocketAddr,
    /// Serve the API only and leave publishing to `tufa worker` processes
    /// (on PostgreSQL, with any number of API processes).
    #[arg(long)]
    no_publisher: bool,
    /// Bootstrap an empty repository at once with generated keys under
    /// DATA_DIR/keys. For trying tufa out, never for production.
    #[arg(long)]
    dev: bool,
    /// Number of hash bins for --dev.
    #[arg(long, default_value_t = tufa_repository::dev::DEV_BINS)]
    dev_bins: u32,
    /// The largest file the bundled index accepts from `twine upload`, in bytes.
    #[arg(long, default_value_t = tufa_repository::index::DEFAULT_MAX_UPLOAD_SIZE, env = "TUFA_MAX_UPLOAD_SIZE")]
    max_upload_size: u64,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let data_dir = args.repo.data_dir.clone();
    let repo = Repository::open(args.repo.config())
        .await
        .with_context(|| format!("opening {}", args.repo.describe_database()))?;

    let index = tufa_repository::index::Index::with_store(repo.store(), &data_dir);
    index.set_max_upload_size(args.max_upload_size).await?;
    let mut dev_token = None;
    if args.dev && repo.bootstrap_state().await?.is_none() {
        if index.users().await?.is_empty() {
            dev_token = Some(index.add_user("dev").await?);
        }
        let keys = data_dir.join("keys");
        eprintln!(
            "WARNING: --dev: generating root and online keys in {} (mode 0600).",
            keys.display()
        );
        eprintln!(
            "WARNING: anyone who can read that directory can sign for this repository. Never use --dev in production."
        );
        let payload = tufa_repository::dev::dev_bootstrap_payload(&keys, args.dev_bins)?;
        let task = repo
            .bootstrap(&payload)
            .await
            .context("bootstrapping the dev repository")?;
        eprintln!("bootstrap task {task} accepted ({} bins)", args.dev_bins);
    }

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let publisher = (!args.no_publisher).then(|| tokio::spawn(repo.clone().run_publisher()));
    tokio::spawn(repo.store().clone().run_checkpointer());
    if let Some(token) = dev_token {
        eprintln!(
            "  index:     http://{addr}/simple/ (pip install --index-url http://{addr}/simple/ ...)"
        );
        eprintln!("  upload token for user dev (shown once): {token}");
        eprintln!(
            "  upload:    twine upload --repository-url http://{addr}/legacy/ -u __token__ -p TOKEN dist/*"
        );
    }
    eprintln!("tufa serve: listening on http://{addr}");
    eprintln!("  API:       http://{addr}/api/v1/");
    eprintln!("  metadata:  http://{addr}/metadata/");
    match repo.storage().directory() {
        Some(dir) => eprintln!("  root.json: {}", dir.path("1.root.json").display()),
        None => eprintln!(
            "  root.json: http://{addr}/metadata/1.root.json (metadata in {})",
            repo.storage().describe()
        ),
    }
    if args.no_publisher {
        eprintln!("  publisher: none here (--no-publisher); run tufa worker");
    }
    tufa_server::serve(listener, repo, shutdown_signal()).await?;
    if let Some(publisher) = publisher {
        publisher.abort();
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
