//! `tufa db migrate`: bring a state store's schema up to date (every
//! command that opens the store also does this on start).

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use tufa_repository::store::{Store, redact_url};

#[derive(Debug, Args)]
pub struct DbArgs {
    #[command(subcommand)]
    command: DbCommand,
}

#[derive(Debug, Subcommand)]
enum DbCommand {
    /// Apply every migration not yet applied.
    Migrate {
        /// sqlite://PATH or postgres://USER[:PASSWORD]@HOST[:PORT]/DB
        #[arg(long, env = "TUFA_DATABASE_URL")]
        database_url: String,
    },
}

pub async fn run(args: DbArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        DbCommand::Migrate { database_url } => {
            let shown = redact_url(&database_url);
            let store = Store::connect(&database_url)
                .await
                .with_context(|| format!("connecting to {shown}"))?;
            let count = store
                .migrate()
                .await
                .with_context(|| format!("migrating {shown}"))?;
            println!("{shown}: schema up to date ({count} migrations)");
            Ok(ExitCode::SUCCESS)
        }
    }
}
