//! `tufa verify DIR [--root FILE] [--at TIME]`.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use tufa_client::audit::{AuditOptions, audit};
use tufa_metadata::UtcTime;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The metadata directory (`1.root.json`, `timestamp.json`, `N.snapshot.json`, ...).
    dir: PathBuf,
    /// The trusted root to start from [default: DIR/1.root.json].
    #[arg(long, value_name = "FILE")]
    root: Option<PathBuf>,
    /// Check expiry at this time, `YYYY-MM-DDTHH:MM:SSZ` [default: now].
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
}

/// Prints one line per role and a summary; exit 0 when everything holds, 1 when not.
pub fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    if !args.dir.is_dir() {
        bail!("{} is not a directory", args.dir.display());
    }
    let at = match &args.at {
        Some(s) => UtcTime::parse(s).with_context(|| format!("--at {s:?}"))?,
        None => UtcTime::now(),
    };
    let report = audit(&AuditOptions {
        dir: args.dir.clone(),
        trusted_root: args.root.clone(),
        at,
    });

    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for role in &report.roles {
        let version = role
            .version
            .map(|v| format!("v{v}"))
            .unwrap_or_else(|| "v?".into());
        match &role.outcome {
            Ok(s) => {
                let targets = s
                    .targets
                    .map(|n| format!(", {n} targets"))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "ok    {} {version}: {}/{} signatures, expires {}{targets}",
                    role.role, s.signatures, s.threshold, s.expires
                )?;
            }
            Err(reason) => writeln!(out, "FAIL  {} {version}: {reason}", role.role)?,
        }
    }
    let failed = report.failures().count();
    let total = report.roles.len();
    if report.is_ok() {
        writeln!(
            out,
            "verified {total} roles in {} at {at}: all good",
            args.dir.display()
        )?;
        out.flush()?;
        Ok(ExitCode::SUCCESS)
    } else {
        writeln!(
            out,
            "FAILED: {failed} of {total} roles in {} at {at}",
            args.dir.display()
        )?;
        out.flush()?;
        for role in report.failures() {
            let version = role.version.map(|v| format!(" v{v}")).unwrap_or_default();
            if let Err(reason) = &role.outcome {
                eprintln!("tufa verify: {}{version}: {reason}", role.role);
            }
        }
        Ok(ExitCode::from(1))
    }
}
