//! `tufa gc`: delete published metadata versions that the live timestamp can
//! no longer reach, once superseded for longer than a grace period. Roots,
//! `timestamp.json` and everything the live timestamp reaches are kept.
//! Safe while `tufa serve` publishes.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use clap::Args;
use tufa_repository::gc::{self, Pacing};

#[derive(Debug, Args)]
pub struct GcArgs {
    /// The data directory (its metadata/ is collected).
    #[arg(long, default_value = "tufa-data", env = "TUFA_DATA_DIR")]
    data_dir: PathBuf,
    /// List what would be deleted and the bytes freed; delete nothing.
    #[arg(long)]
    dry_run: bool,
    /// Keep an unreachable version until it has been superseded for this
    /// many seconds (clients mid-update may still fetch it).
    #[arg(long, value_name = "SECONDS", default_value_t = 86_400)]
    grace: u64,
    /// Files deleted between pauses.
    #[arg(long, value_name = "FILES", default_value_t = Pacing::default().batch)]
    batch: usize,
    /// Pause between batches, in milliseconds (deleting many files at once
    /// slows file creation in the same ext4 directory for minutes).
    #[arg(long, value_name = "MS", default_value_t = Pacing::default().pause.as_millis() as u64)]
    pause_ms: u64,
}

fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{bytes} B")
    }
}

pub fn run(args: GcArgs) -> anyhow::Result<ExitCode> {
    let dir = args.data_dir.join("metadata");
    let grace = Duration::from_secs(args.grace);
    let plan = gc::plan(&dir, grace, SystemTime::now())
        .with_context(|| format!("reading {}", dir.display()))?;
    println!(
        "live: timestamp version {}, snapshot version {}",
        plan.timestamp_version, plan.snapshot_version
    );
    println!(
        "kept: {} live, {} roots, {} superseded less than {} s ago, {} newer than live, {} other",
        plan.kept_live,
        plan.kept_roots,
        plan.kept_recent,
        args.grace,
        plan.kept_newer,
        plan.kept_other
    );
    if args.dry_run {
        for g in &plan.delete {
            println!(
                "would delete {} ({} bytes, superseded {} s ago)",
                g.name,
                g.bytes,
                g.superseded_for.as_secs()
            );
        }
        println!(
            "dry run: would delete {} files, freeing {} ({} bytes)",
            plan.delete.len(),
            human(plan.bytes),
            plan.bytes
        );
        return Ok(ExitCode::SUCCESS);
    }
    if plan.delete.is_empty() {
        println!("nothing to delete");
        return Ok(ExitCode::SUCCESS);
    }
    let pacing = Pacing {
        batch: args.batch,
        pause: Duration::from_millis(args.pause_ms),
    };
    let total = plan.delete.len();
    let mut last_report = std::time::Instant::now();
    let outcome = gc::execute(&dir, &plan, pacing, &mut |done| {
        if last_report.elapsed() >= Duration::from_secs(5) {
            last_report = std::time::Instant::now();
            eprintln!("deleted {done}/{total}");
        }
    })
    .with_context(|| format!("deleting in {}", dir.display()))?;
    println!(
        "deleted {} files, freed {} ({} bytes){}",
        outcome.deleted,
        human(outcome.bytes),
        outcome.bytes,
        if outcome.missing > 0 {
            format!("; {} already gone", outcome.missing)
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}
