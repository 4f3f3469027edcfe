//! `tufa`: the command line over the tufa libraries. Parsing arguments and
//! printing results is all that happens here.

mod verify;

use std::process::ExitCode;

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
    /// Audit a consistent-snapshot TUF metadata directory offline: the root
    /// chain, then timestamp, snapshot, targets and every delegated role.
    Verify(verify::VerifyArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Verify(args) => verify::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tufa: {e:#}");
            ExitCode::from(2)
        }
    }
}
