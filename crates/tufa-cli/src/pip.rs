//! `tufa pip [PIP ARGS...]` and `tufa uv [UV ARGS...]`: start a proxy on a
//! free port and run pip (or uv) against it, with `--index-url` pointing at
//! the proxy. The exit status is the installer's.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use tufa_client::proxy;

use crate::proxy::UpstreamArgs;

#[derive(Debug, Args)]
pub struct PipArgs {
    #[command(flatten)]
    upstream: UpstreamArgs,
    /// Run `PYTHON -m pip` [default: `pip` from PATH, else `python3 -m pip`].
    #[arg(long, value_name = "PYTHON", env = "TUFA_PYTHON")]
    python: Option<PathBuf>,
    /// The pip command line (`install demo --target DIR`, ...).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "PIP ARGS"
    )]
    args: Vec<OsString>,
}

#[derive(Debug, Args)]
pub struct UvArgs {
    #[command(flatten)]
    upstream: UpstreamArgs,
    /// The uv binary [default: `uv` from PATH].
    #[arg(long, value_name = "UV", env = "TUFA_UV")]
    uv: Option<PathBuf>,
    /// The uv command line (`pip install demo --target DIR`, ...).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "UV ARGS"
    )]
    args: Vec<OsString>,
}

/// Index options that would send the installer around the proxy.
const INDEX_OPTIONS: &[&str] = &[
    "-i",
    "--index-url",
    "--extra-index-url",
    "--default-index",
    "--index",
    "-f",
    "--find-links",
];

/// Environment variables that add sources around the proxy.
const BYPASS_VARIABLES: &[&str] = &[
    "PIP_EXTRA_INDEX_URL",
    "PIP_FIND_LINKS",
    "UV_EXTRA_INDEX_URL",
    "UV_FIND_LINKS",
    "UV_INDEX",
];

fn check_no_index_options(args: &[OsString], tool: &str) -> anyhow::Result<()> {
    for a in args {
        let s = a.to_string_lossy();
        let name = s.split('=').next().unwrap_or(&s);
        if INDEX_OPTIONS.contains(&name) {
            bail!(
                "tufa {tool} sets the index itself; give the upstream index as `tufa {tool} --index-url URL` before the {tool} arguments, not {name}"
            );
        }
    }
    Ok(())
}

/// `args` with `--index-url URL` inserted after the subcommand at `at`.
fn insert_index(args: &[OsString], at: usize, url: &str) -> Vec<OsString> {
    let mut out = args.to_vec();
    if out.len() > at {
        out.insert(at + 1, "--index-url".into());
        out.insert(at + 2, url.into());
    }
    out
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

async fn run_with_proxy(
    upstream: &UpstreamArgs,
    program: PathBuf,
    make_args: impl FnOnce(&str) -> Vec<OsString>,
    env: &[&str],
) -> anyhow::Result<ExitCode> {
    let config = upstream.config()?;
    let listen: SocketAddr = ([127, 0, 0, 1], 0).into();
    let running = proxy::start(config, listen)
        .await
        .map_err(|r| anyhow::anyhow!("{}", r.reason))?;
    let url = running.index_url();
    let args = make_args(&url);
    let mut cmd = tokio::process::Command::new(&program);
    cmd.args(&args);
    for var in BYPASS_VARIABLES {
        if std::env::var_os(var).is_some() {
            tracing::warn!(
                "{var} is set; unset for the installer: it would bypass TUF verification"
            );
            cmd.env_remove(var);
        }
    }
    for var in env {
        cmd.env(var, &url);
    }
    let status = cmd
        .status()
        .await
        .with_context(|| format!("running {}", program.display()));
    let _ = running.stop().await;
    let status = status?;
    let code = status.code().unwrap_or(1);
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

pub async fn run_pip(args: PipArgs) -> anyhow::Result<ExitCode> {
    check_no_index_options(&args.args, "pip")?;
    let (program, prefix): (PathBuf, Vec<OsString>) = match &args.python {
        Some(py) => (py.clone(), vec!["-m".into(), "pip".into()]),
        None => match find_in_path("pip") {
            Some(pip) => (pip, vec![]),
            None => ("python3".into(), vec!["-m".into(), "pip".into()]),
        },
    };
    let pip_args = args.args.clone();
    run_with_proxy(
        &args.upstream,
        program,
        |url| {
            let takes_index = pip_args.first().is_some_and(|c| {
                ["install", "download", "wheel", "index"].contains(&c.to_string_lossy().as_ref())
            });
            let rest = if takes_index {
                insert_index(&pip_args, 0, url)
            } else {
                pip_args.clone()
            };
            prefix.into_iter().chain(rest).collect()
        },
        &["PIP_INDEX_URL"],
    )
    .await
}

pub async fn run_uv(args: UvArgs) -> anyhow::Result<ExitCode> {
    check_no_index_options(&args.args, "uv")?;
    let program = match &args.uv {
        Some(uv) => uv.clone(),
        None => find_in_path("uv").context("no `uv` on PATH: give --uv PATH")?,
    };
    let uv_args = args.args.clone();
    run_with_proxy(
        &args.upstream,
        program,
        |url| {
            let is = |i: usize, words: &[&str]| {
                uv_args
                    .get(i)
                    .is_some_and(|a| words.contains(&a.to_string_lossy().as_ref()))
            };
            if is(0, &["pip"]) && is(1, &["install", "compile", "sync", "download"]) {
                insert_index(&uv_args, 1, url)
            } else {
                uv_args.clone()
            }
        },
        &["UV_INDEX_URL"],
    )
    .await
}
