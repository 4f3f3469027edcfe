//! `tufa keygen`: a new key pair as PKCS#8 PEM (private, mode 0600) and a
//! `.pub` SubjectPublicKeyInfo PEM to hand to a ceremony.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use tufa_metadata::{PrivateKey, Signer};
use tufa_repository::online_key::write_private_key;

use crate::ceremony::KeyType;

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// The private key file to create (the public key goes beside it as NAME.pub).
    #[arg(long)]
    out: PathBuf,
    /// The key type.
    #[arg(long, value_enum, default_value = "ed25519")]
    key_type: KeyType,
    /// Encrypt the private key with the password in this environment variable.
    #[arg(long, value_name = "VAR")]
    password_env: Option<String>,
}

pub fn run(args: KeygenArgs) -> anyhow::Result<ExitCode> {
    let key = PrivateKey::generate(args.key_type.scheme())?;
    let password = match &args.password_env {
        Some(var) => Some(std::env::var(var).with_context(|| format!("${var} is not set"))?),
        None => None,
    };
    let pem = key.to_pkcs8_pem(password.as_deref().map(str::as_bytes))?;
    write_private_key(&args.out, &pem)
        .with_context(|| format!("writing {}", args.out.display()))?;
    let public = args.out.with_extension("pub");
    std::fs::write(&public, key.public_pem()?)
        .with_context(|| format!("writing {}", public.display()))?;
    println!("{}", key.keyid());
    eprintln!(
        "{} key {} -> {} (public: {})",
        key.public_key().scheme,
        key.keyid(),
        args.out.display(),
        public.display()
    );
    Ok(ExitCode::SUCCESS)
}
