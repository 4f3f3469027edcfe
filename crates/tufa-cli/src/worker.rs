//! `tufa worker`: a publisher process for the scaled-out deployment. Any
//! number may run; one holds the publisher lock and publishes, the others
//! stand by and take over within seconds when it dies.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use tufa_repository::Repository;

use crate::repo_args::RepoArgs;

#[derive(Debug, Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    repo: RepoArgs,
}

pub async fn run(args: WorkerArgs) -> anyhow::Result<ExitCode> {
    let repo = Repository::open(args.repo.config())
        .await
        .with_context(|| format!("opening {}", args.repo.describe_database()))?;
    eprintln!(
        "tufa worker (pid {}): state {}, metadata {}",
        std::process::id(),
        args.repo.describe_database(),
        repo.storage().describe()
    );
    tokio::select! {
        () = repo.run_publisher() => {}
        () = crate::serve::shutdown_signal() => {
            eprintln!("tufa worker: stopping");
        }
    }
    Ok(ExitCode::SUCCESS)
}
