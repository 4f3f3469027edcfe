//! `tufa import`: register an existing index's files in bulk, from RSTUF's
//! CSV (`path;size;hash-type;hash`), as one publication.
//!
//! Works on a bootstrapped data directory whether or not `tufa serve` runs
//! on it: the rows are committed in one transaction (SQLite in WAL mode lets
//! both processes in), then, if a `tufa serve` holds the data directory's
//! publisher lock, its publisher publishes the batch and this command waits
//! for the task; otherwise this command takes the lock and runs the
//! publisher itself for that one batch.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tufa_repository::import::ImportProgress;
use tufa_repository::online_key::OnlineKeySource;
use tufa_repository::task::TaskState;
use tufa_repository::{Repository, RepositoryConfig};

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The data directory of a bootstrapped repository.
    #[arg(long, default_value = "tufa-data", env = "TUFA_DATA_DIR")]
    data_dir: PathBuf,
    /// A CSV file of `path;size;hash-type;hash` rows, no header (RSTUF's
    /// import format). Repeat for several files; all are one import.
    #[arg(long = "csv", value_name = "FILE", required = true)]
    csv: Vec<PathBuf>,
    /// The online signing key, used when no `tufa serve` runs on the data
    /// directory [default: DATA_DIR/keys/online.pem].
    #[arg(long, value_name = "FILE", env = "TUFA_ONLINE_KEY")]
    online_key: Option<PathBuf>,
    /// The state store when not DATA_DIR/tufa.db (sqlite://PATH or postgres://...).
    #[arg(long, env = "TUFA_DATABASE_URL")]
    database_url: Option<String>,
    /// The metadata storage, when not DATA_DIR/metadata (used only if this
    /// command publishes, i.e. when no publisher is running).
    #[arg(long, env = "TUFA_STORAGE")]
    storage: Option<String>,
    /// Record the import and stop: the next `tufa serve` on the data
    /// directory publishes it.
    #[arg(long)]
    no_publish: bool,
}

fn bar(len: u64, template: &str) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(len), target);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

pub async fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let online_key = match &args.online_key {
        Some(path) => OnlineKeySource::from_uri(&path.display().to_string()),
        None => OnlineKeySource::in_data_dir(&args.data_dir),
    };
    let db = args.data_dir.join("tufa.db");
    if args.database_url.is_none() && !db.exists() {
        bail!(
            "{} has no repository (no tufa.db): bootstrap it first (tufa serve)",
            args.data_dir.display()
        );
    }
    let repo = Repository::open(RepositoryConfig {
        data_dir: args.data_dir.clone(),
        online_key,
        database_url: args.database_url.clone(),
        storage: args.storage.clone(),
    })
    .await
    .with_context(|| format!("opening {}", args.data_dir.display()))?;
    repo.bootstrapped_settings().await?;

    let mut total = 0u64;
    for f in &args.csv {
        total += std::fs::metadata(f)
            .with_context(|| format!("reading {}", f.display()))?
            .len();
    }
    let progress = Arc::new(ImportProgress::default());
    let pb = bar(
        total,
        "{spinner} importing [{elapsed_precise}] [{wide_bar}] {bytes}/{total_bytes} {msg}",
    );
    let ticker = {
        let progress = Arc::clone(&progress);
        let pb = pb.clone();
        tokio::spawn(async move {
            loop {
                pb.set_position(progress.bytes.load(Ordering::Relaxed));
                pb.set_message(format!("{} rows", progress.rows.load(Ordering::Relaxed)));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let result = repo.import_csv(&args.csv, Arc::clone(&progress)).await;
    ticker.abort();
    pb.finish_and_clear();
    let summary = match result {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tufa import: {e}");
            eprintln!("tufa import: nothing was imported");
            return Ok(ExitCode::from(1));
        }
    };
    println!(
        "read {} rows from {} file(s): {} artifacts ({} new or changed, {} duplicate rows skipped) in {} bins, committed in {:.1} s",
        summary.rows,
        args.csv.len(),
        summary.artifacts,
        summary.changed,
        summary.duplicates,
        summary.bins,
        summary.elapsed.as_secs_f64()
    );
    let Some(task_id) = summary.task_id else {
        println!("nothing new to publish");
        return Ok(ExitCode::SUCCESS);
    };

    if args.no_publish {
        println!(
            "recorded as task {task_id}; the next tufa serve on this data directory publishes it"
        );
        return Ok(ExitCode::SUCCESS);
    }
    let publish_started = Instant::now();
    publish(&repo, &task_id).await?;
    println!(
        "published (task {task_id}) in {:.1} s; total {:.1} s",
        publish_started.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// Gets the import published: by a running `tufa serve` if there is one
/// (it holds the publisher lock; wait for its task), else by running the
/// publisher here under the same lock.
async fn publish(repo: &Repository, task_id: &str) -> anyhow::Result<()> {
    let spinner = bar(0, "{spinner} [{elapsed_precise}] {msg}");
    spinner.enable_steady_tick(Duration::from_millis(200));
    let mut told = false;
    loop {
        match repo.try_lock_publisher("tufa import").await? {
            None => {
                if !told {
                    eprintln!(
                        "a tufa serve publishes this data directory: it publishes the import"
                    );
                    spinner
                        .set_message(format!("waiting for tufa serve to publish task {task_id}"));
                    told = true;
                }
                match repo.task(task_id).await?.map(|t| t.state) {
                    Some(TaskState::Success) => {
                        spinner.finish_and_clear();
                        return Ok(());
                    }
                    Some(TaskState::Pending | TaskState::Started | TaskState::Running) => {}
                    other => bail!("task {task_id} ended {other:?}"),
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Some(lock) => {
                if repo.task(task_id).await?.map(|t| t.state) == Some(TaskState::Success) {
                    spinner.finish_and_clear();
                    return Ok(());
                }
                spinner.set_message("publishing".to_string());
                let mut publisher = None;
                repo.publisher_step(&mut publisher, lock.epoch)
                    .await
                    .context("publishing the import")?;
                let state = repo.task(task_id).await?.map(|t| t.state);
                spinner.finish_and_clear();
                if state != Some(TaskState::Success) {
                    bail!("the publication did not complete task {task_id} ({state:?})");
                }
                if let Some(p) = repo.publisher_status().await.0 {
                    println!(
                        "publication: snapshot version {}, {} bins signed, {} artifact changes, {} ms",
                        p.snapshot_version, p.bins_signed, p.artifact_changes, p.millis
                    );
                }
                return Ok(());
            }
        }
    }
}
