//! `tufa`: the command line over the tufa libraries. Parsing arguments and
//! printing results is all that happens here.

mod admin;
mod ceremony;
mod db;
mod download;
mod gc;
mod import;
mod keygen;
mod pip;
mod proxy;
mod repo_args;
mod serve;
mod user;
mod verify;
mod worker;

use std::process::ExitCode;

/// mimalloc instead of glibc's allocator: a publication allocates and frees
/// hundreds of thousands of small buffers across threads, and glibc spent
/// about a tenth of the service's CPU time in malloc, free and page faults.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

/// Secure Python package downloads with The Update Framework (PEP 458 / PEP 480).
#[derive(Debug, Parser)]
#[command(name = "tufa", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Operator commands against a running service: send a bootstrap
    /// payload, update root, rotate the online key, re-sign, show tasks.
    Admin(admin::AdminArgs),
    /// The offline root ceremony: choose root keys, threshold, the online key,
    /// expiries and bins; sign root; write a bootstrap payload.
    Ceremony(ceremony::CeremonyArgs),
    /// Generate a key pair (PKCS#8 PEM private key, mode 0600, and NAME.pub).
    Keygen(keygen::KeygenArgs),
    /// Run the repository service: the RSTUF-compatible API, the publisher and
    /// the published metadata, on SQLite and a directory by default.
    Serve(serve::ServeArgs),
    /// Run a publisher only (scaled-out deployments: one worker publishes,
    /// the others stand by to take over).
    Worker(worker::WorkerArgs),
    /// The state store's schema.
    Db(db::DbArgs),
    /// Audit a consistent-snapshot TUF metadata directory offline: the root
    /// chain, then timestamp, snapshot, targets and every delegated role.
    Verify(verify::VerifyArgs),
    /// Register an existing index's files in bulk before go-live, from RSTUF
    /// CSV files (`path;size;hash-type;hash`), as one publication.
    Import(import::ImportArgs),
    /// Delete published metadata versions that the live timestamp can no
    /// longer reach, once superseded for longer than a grace period.
    Gc(gc::GcArgs),
    /// Upload users of the bundled index and their API tokens.
    User(user::UserArgs),
    /// Yank, un-yank or delete files and projects of the bundled index.
    Index(user::IndexArgs),
    /// Download targets verified through TUF (length and every signed hash).
    Download(download::DownloadArgs),
    /// A local package index for pip and uv that serves only pages and files
    /// it verified through TUF.
    Proxy(proxy::ProxyArgs),
    /// Run pip against a TUF-verifying proxy on a free port.
    Pip(pip::PipArgs),
    /// Run uv (`tufa uv pip install ...`) against a TUF-verifying proxy on a free port.
    Uv(pip::UvArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TUFA_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match cli.command {
        Command::Admin(args) => admin::run(args),
        Command::Ceremony(args) => ceremony::run(args),
        Command::Keygen(args) => keygen::run(args),
        Command::Serve(args) => runtime().and_then(|rt| rt.block_on(serve::run(args))),
        Command::Worker(args) => runtime().and_then(|rt| rt.block_on(worker::run(args))),
        Command::Db(args) => runtime().and_then(|rt| rt.block_on(db::run(args))),
        Command::Verify(args) => verify::run(args),
        Command::Import(args) => runtime().and_then(|rt| rt.block_on(import::run(args))),
        Command::Gc(args) => gc::run(args),
        Command::User(args) => runtime().and_then(|rt| rt.block_on(user::run_user(args))),
        Command::Index(args) => runtime().and_then(|rt| rt.block_on(user::run_index(args))),
        Command::Download(args) => download::run(args),
        Command::Proxy(args) => runtime().and_then(|rt| rt.block_on(proxy::run(args))),
        Command::Pip(args) => runtime().and_then(|rt| rt.block_on(pip::run_pip(args))),
        Command::Uv(args) => runtime().and_then(|rt| rt.block_on(pip::run_uv(args))),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tufa: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
