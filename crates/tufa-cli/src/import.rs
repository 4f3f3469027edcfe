//! `tufa import`: register an existing index's files in bulk, from RSTUF's
//! CSV (`path;size;hash-type;hash`), as one publication.
//!
//! Works on a bootstrapped data directory whether or not `tufa serve` runs
//! on it: the rows are committed in one transaction (SQLite in WAL mode lets
//! both processes in), then, if a `tufa serve` has the database open, its
//! publisher publishes the batch and this command waits for the task;
//! otherwise this command runs the publisher itself for that one batch.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
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
    /// Record the import and stop: the next `tufa serve` on the data
    /// directory publishes it.
    #[arg(long)]
    no_publish: bool,
}

/// A process other than this one with `path` open (Linux: from /proc).
#[derive(Debug, Clone)]
pub struct Holder {
    pub pid: u32,
    pub cmdline: Vec<String>,
}

impl Holder {
    /// `tufa serve` (or anything run with a `serve` argument).
    fn is_server(&self) -> bool {
        self.cmdline.iter().skip(1).any(|a| a == "serve")
    }
}

/// Processes other than this one that have `path` open.
pub fn processes_with_open(path: &Path) -> Vec<Holder> {
    let Ok(target) = path.canonicalize() else {
        return Vec::new();
    };
    let me = std::process::id();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let open = fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l == target));
        if open {
            let cmdline = std::fs::read(entry.path().join("cmdline"))
                .map(|b| {
                    b.split(|&c| c == 0)
                        .filter(|s| !s.is_empty())
                        .map(|s| String::from_utf8_lossy(s).into_owned())
                        .collect()
                })
                .unwrap_or_default();
            out.push(Holder { pid, cmdline });
        }
    }
    out
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
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
    if !db.exists() {
        bail!(
            "{} has no repository (no tufa.db): bootstrap it first (tufa serve)",
            args.data_dir.display()
        );
    }
    let repo = Repository::open(RepositoryConfig {
        data_dir: args.data_dir.clone(),
        online_key,
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
    publish(&repo, &db, &task_id).await?;
    println!(
        "published (task {task_id}) in {:.1} s; total {:.1} s",
        publish_started.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// Gets the import published: by a running `tufa serve` if there is one
/// (waiting for its task), else by running the publisher here.
async fn publish(repo: &Repository, db: &Path, task_id: &str) -> anyhow::Result<()> {
    let spinner = bar(0, "{spinner} [{elapsed_precise}] {msg}");
    spinner.enable_steady_tick(Duration::from_millis(200));
    loop {
        let server = processes_with_open(db).into_iter().find(Holder::is_server);
        match server {
            Some(server) => {
                spinner.set_message(format!(
                    "waiting for tufa serve (pid {}) to publish task {task_id}",
                    server.pid
                ));
                eprintln!(
                    "tufa serve (pid {}) runs on this data directory: its publisher publishes the import",
                    server.pid
                );
                while alive(server.pid) {
                    let task = repo.task(task_id).await?;
                    match task.map(|t| t.state) {
                        Some(TaskState::Success) => {
                            spinner.finish_and_clear();
                            return Ok(());
                        }
                        Some(TaskState::Pending | TaskState::Started | TaskState::Running) => {}
                        other => bail!("task {task_id} ended {other:?}"),
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                eprintln!("tufa serve (pid {}) exited before publishing", server.pid);
            }
            None => {
                if repo.task(task_id).await?.map(|t| t.state) == Some(TaskState::Success) {
                    spinner.finish_and_clear();
                    return Ok(());
                }
                spinner.set_message("publishing".to_string());
                let mut publisher = None;
                repo.publisher_step(&mut publisher)
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
