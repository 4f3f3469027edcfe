//! `tufa user` (upload users and their API tokens) and `tufa index` (yank,
//! un-yank and delete files or projects of the bundled index), directly on
//! the data directory. A running `tufa serve` publishes the changes within
//! about a second; a stopped one when it next starts.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use tufa_repository::index::Index;

#[derive(Debug, Args)]
pub struct UserArgs {
    /// The data directory of the service.
    #[arg(
        long,
        default_value = "tufa-data",
        env = "TUFA_DATA_DIR",
        global = true
    )]
    data_dir: PathBuf,
    /// The state store, when not DATA_DIR/tufa.db (sqlite://PATH or postgres://...).
    #[arg(long, env = "TUFA_DATABASE_URL", global = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: UserCommand,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Add an upload user and print their API token (shown once; only its
    /// hash is stored). Upload with `twine upload -u __token__ -p TOKEN`.
    Add { name: String },
    /// Replace a user's API token and print the new one.
    ResetToken { name: String },
    /// List the upload users.
    List,
}

#[derive(Debug, Args)]
pub struct IndexArgs {
    /// The data directory of the service.
    #[arg(
        long,
        default_value = "tufa-data",
        env = "TUFA_DATA_DIR",
        global = true
    )]
    data_dir: PathBuf,
    /// The state store, when not DATA_DIR/tufa.db (sqlite://PATH or postgres://...).
    #[arg(long, env = "TUFA_DATABASE_URL", global = true)]
    database_url: Option<String>,
    /// Wait until the running `tufa serve` has published the change (up to
    /// SECONDS, default 60); exit 1 if it has not by then.
    #[arg(
        long,
        global = true,
        value_name = "SECONDS",
        num_args = 0..=1,
        default_missing_value = "60"
    )]
    wait: Option<u64>,
    #[command(subcommand)]
    command: IndexCommand,
}

#[derive(Debug, Subcommand)]
enum IndexCommand {
    /// Yank a file (PEP 592): still listed and downloadable, but installers
    /// skip it unless pinned.
    Yank {
        project: String,
        filename: String,
        /// Why, shown to users.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Undo a yank.
    Unyank { project: String, filename: String },
    /// Delete one file, or with no FILENAME the whole project: the pages
    /// and targets go; the filenames stay used.
    Delete {
        project: String,
        filename: Option<String>,
    },
}

async fn open(data_dir: &std::path::Path, database_url: Option<&str>) -> anyhow::Result<Index> {
    match database_url {
        None => Index::open(data_dir)
            .await
            .with_context(|| format!("opening {}", data_dir.display())),
        Some(url) => {
            let store = tufa_repository::store::Store::open(url)
                .await
                .with_context(|| format!("opening {}", tufa_repository::store::redact_url(url)))?;
            Ok(Index::with_store(&store, data_dir))
        }
    }
}

pub async fn run_user(args: UserArgs) -> anyhow::Result<ExitCode> {
    let index = open(&args.data_dir, args.database_url.as_deref()).await?;
    match args.command {
        UserCommand::Add { name } => {
            let token = index.add_user(&name).await?;
            eprintln!("user {name} added; API token (shown once, keep it secret):");
            println!("{token}");
        }
        UserCommand::ResetToken { name } => {
            let token = index.reset_token(&name).await?;
            eprintln!("new API token for {name} (shown once; the old one no longer works):");
            println!("{token}");
        }
        UserCommand::List => {
            for name in index.users().await? {
                println!("{name}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn run_index(args: IndexArgs) -> anyhow::Result<ExitCode> {
    let index = open(&args.data_dir, args.database_url.as_deref()).await?;
    let seq = match &args.command {
        IndexCommand::Yank {
            project,
            filename,
            reason,
        } => index.set_yanked(project, filename, Some(reason)).await?,
        IndexCommand::Unyank { project, filename } => {
            index.set_yanked(project, filename, None).await?
        }
        IndexCommand::Delete { project, filename } => {
            index.delete(project, filename.as_deref()).await?
        }
    };
    let Some(seconds) = args.wait else {
        eprintln!("change {seq} recorded; tufa serve publishes it within about a second");
        return Ok(ExitCode::SUCCESS);
    };
    eprintln!("change {seq} recorded; waiting for tufa serve to publish it");
    // Every change also regenerates (or removes) the project's pages, all
    // under one sequence number, which the publisher signs together.
    if index
        .wait_published(seq, std::time::Duration::from_secs(seconds))
        .await?
    {
        eprintln!("change {seq} published");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "change {seq} not published within {seconds} s: is tufa serve running on {}?",
            args.data_dir.display()
        );
        Ok(ExitCode::FAILURE)
    }
}
