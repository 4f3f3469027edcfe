//! `tufa ceremony`: the offline root ceremony, scriptable by flags, with
//! prompts (and defaults) for whatever a person at a terminal left out.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use tufa_metadata::{HashAlgorithm, Key, PrivateKey, Scheme, Signer};
use tufa_repository::Expiration;
use tufa_repository::ceremony::{Ceremony, RootKey};
use tufa_repository::online_key::write_private_key;

/// Key types a ceremony can generate.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KeyType {
    Ed25519,
    #[value(name = "ecdsa-sha2-nistp256")]
    EcdsaP256,
    #[value(name = "ecdsa-sha2-nistp384")]
    EcdsaP384,
    #[value(name = "rsassa-pss-sha256")]
    RsaPss,
}

impl KeyType {
    pub fn scheme(self) -> Scheme {
        match self {
            KeyType::Ed25519 => Scheme::Ed25519,
            KeyType::EcdsaP256 => Scheme::EcdsaP256,
            KeyType::EcdsaP384 => Scheme::EcdsaP384,
            KeyType::RsaPss => Scheme::RsaPss(HashAlgorithm::Sha256),
        }
    }
}

/// Repository layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Layout {
    /// targets delegates straight to succinct hash bins (RSTUF-identical).
    Pep458,
    /// claimed / recently-claimed / unclaimed, for developer signing.
    Pep480,
}

#[derive(Debug, Args)]
pub struct CeremonyArgs {
    /// Where to write the bootstrap payload (RSTUF's format).
    #[arg(long, default_value = "ceremony-payload.json")]
    out: PathBuf,
    /// A root key: PEM private key (signs root here) or PEM public key (listed only). Repeatable.
    #[arg(long = "root-key", value_name = "FILE")]
    root_keys: Vec<PathBuf>,
    /// Environment variable holding the password of encrypted root key files.
    #[arg(long, value_name = "VAR")]
    root_key_password_env: Option<String>,
    /// Generate this many root keys into --keys-dir (each mode 0600).
    #[arg(long, value_name = "N")]
    generate_root_keys: Option<usize>,
    /// The type of generated keys.
    #[arg(long, value_enum, default_value = "ed25519")]
    key_type: KeyType,
    /// Where generated keys are written.
    #[arg(long, default_value = "ceremony-keys")]
    keys_dir: PathBuf,
    /// Signatures needed on root (at least 2 unless --dev).
    #[arg(long, value_name = "N")]
    root_threshold: Option<u64>,
    /// The online key (PEM public or private key). Its private part stays with the service.
    #[arg(long, value_name = "FILE")]
    online_key: Option<PathBuf>,
    /// Generate the online key into --keys-dir/online.pem.
    #[arg(long)]
    generate_online_key: bool,
    /// Days until root expires.
    #[arg(long, value_name = "DAYS")]
    root_expiration: Option<u32>,
    /// Days until targets expires.
    #[arg(long, value_name = "DAYS")]
    targets_expiration: Option<u32>,
    /// Days until snapshot expires.
    #[arg(long, value_name = "DAYS")]
    snapshot_expiration: Option<u32>,
    /// Days until timestamp expires.
    #[arg(long, value_name = "DAYS")]
    timestamp_expiration: Option<u32>,
    /// Days until each hash bin expires.
    #[arg(long, value_name = "DAYS")]
    bins_expiration: Option<u32>,
    /// Number of hash bins (a power of two from 2 to 16384).
    #[arg(long, value_name = "N")]
    bins: Option<u32>,
    /// Repository layout.
    #[arg(long, value_enum, default_value = "pep458")]
    layout: Layout,
    /// pep480: a targets key (offline): PEM private key (signs targets here)
    /// or PEM public key (listed only). Repeatable. Default: the root keys.
    #[arg(long = "targets-key", value_name = "FILE")]
    targets_keys: Vec<PathBuf>,
    /// pep480: signatures needed on targets. Default: the root threshold.
    #[arg(long, value_name = "N")]
    targets_threshold: Option<u64>,
    /// pep480: a claimed key (offline), as --targets-key. Default: the targets keys.
    #[arg(long = "claimed-key", value_name = "FILE")]
    claimed_keys: Vec<PathBuf>,
    /// pep480: signatures needed on claimed. Default: the targets threshold.
    #[arg(long, value_name = "N")]
    claimed_threshold: Option<u64>,
    /// Allow a root threshold of 1. For development only.
    #[arg(long)]
    dev: bool,
    /// Never prompt, even at a terminal: take defaults for what flags left out.
    #[arg(long)]
    no_prompt: bool,
}

struct Prompter {
    interactive: bool,
}

impl Prompter {
    fn ask<T>(&self, question: &str, given: Option<T>, default: T) -> anyhow::Result<T>
    where
        T: std::str::FromStr + std::fmt::Display,
        T::Err: std::fmt::Display,
    {
        if let Some(v) = given {
            return Ok(v);
        }
        if !self.interactive {
            return Ok(default);
        }
        loop {
            eprint!("{question} [{default}]: ");
            std::io::stderr().flush()?;
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            let line = line.trim();
            if line.is_empty() {
                return Ok(default);
            }
            match line.parse() {
                Ok(v) => return Ok(v),
                Err(e) => eprintln!("  not valid: {e}"),
            }
        }
    }

    fn ask_text(&self, question: &str) -> anyhow::Result<String> {
        eprint!("{question}: ");
        std::io::stderr().flush()?;
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Ok(line.trim().to_string())
    }
}

/// Loads a PEM key file: private (can sign) or public.
fn load_key(path: &Path, password_env: Option<&str>) -> anyhow::Result<(Key, Option<PrivateKey>)> {
    let pem =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    if pem.contains("PRIVATE KEY") {
        let password = password_env.and_then(|v| std::env::var(v).ok());
        let key = PrivateKey::from_pem(&pem, password.as_deref().map(str::as_bytes), None)
            .with_context(|| format!("loading {}", path.display()))?;
        Ok((key.public_key().clone(), Some(key)))
    } else {
        let key = Key::from_public_pem(&pem, None)
            .with_context(|| format!("loading {}", path.display()))?;
        Ok((key, None))
    }
}

fn generate(dir: &Path, name: &str, key_type: KeyType) -> anyhow::Result<PrivateKey> {
    let key = PrivateKey::generate(key_type.scheme())?;
    let path = dir.join(name);
    write_private_key(&path, &key.to_pkcs8_pem(None)?)
        .with_context(|| format!("writing {}", path.display()))?;
    let public = dir.join(format!("{}.pub", name.trim_end_matches(".pem")));
    std::fs::write(&public, key.public_pem()?)
        .with_context(|| format!("writing {}", public.display()))?;
    eprintln!(
        "generated {} key {} -> {}",
        key.public_key().scheme,
        key.keyid(),
        path.display()
    );
    Ok(key)
}

pub fn run(args: CeremonyArgs) -> anyhow::Result<ExitCode> {
    if args.layout == Layout::Pep458
        && (!args.targets_keys.is_empty()
            || args.targets_threshold.is_some()
            || !args.claimed_keys.is_empty()
            || args.claimed_threshold.is_some())
    {
        bail!(
            "--targets-key, --targets-threshold, --claimed-key and --claimed-threshold need --layout pep480 (in pep458 targets uses the online key)"
        );
    }
    let interactive = !args.no_prompt && std::io::stdin().is_terminal();
    let p = Prompter { interactive };
    let defaults = Expiration::default();
    let expiration = Expiration {
        root: p.ask(
            "Days until root expires",
            args.root_expiration,
            defaults.root,
        )?,
        targets: p.ask(
            "Days until targets expires",
            args.targets_expiration,
            defaults.targets,
        )?,
        snapshot: p.ask(
            "Days until snapshot expires",
            args.snapshot_expiration,
            defaults.snapshot,
        )?,
        timestamp: p.ask(
            "Days until timestamp expires",
            args.timestamp_expiration,
            defaults.timestamp,
        )?,
        bins: p.ask(
            "Days until each bin expires",
            args.bins_expiration,
            defaults.bins,
        )?,
    };
    let bins = p.ask(
        "Number of hash bins (power of two, 2 to 16384)",
        args.bins,
        16384,
    )?;

    let password_env = args.root_key_password_env.as_deref();
    let mut root_keys = Vec::new();
    let mut files = args.root_keys.clone();
    if files.is_empty() && args.generate_root_keys.is_none() && interactive {
        let answer = p.ask_text("Root key files (PEM, comma separated; empty to generate keys)")?;
        files = answer
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect();
    }
    for path in &files {
        let (key, signer) = load_key(path, password_env)?;
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned());
        root_keys.push(RootKey { key, signer, name });
    }
    let generate_n = match args.generate_root_keys {
        Some(n) => n,
        None if files.is_empty() => p.ask("Root keys to generate", None, 2usize)?,
        None => 0,
    };
    for i in 1..=generate_n {
        let name = format!("root-{i}.pem");
        let signer = generate(&args.keys_dir, &name, args.key_type)?;
        root_keys.push(RootKey {
            key: signer.public_key().clone(),
            signer: Some(signer),
            name: Some(name),
        });
    }
    let default_threshold = if args.dev { 1 } else { 2 };
    let root_threshold = p.ask("Root threshold", args.root_threshold, default_threshold)?;

    let online_key = match (&args.online_key, args.generate_online_key) {
        (Some(path), false) => load_key(path, None)?.0,
        (None, true) => generate(&args.keys_dir, "online.pem", args.key_type)?
            .public_key()
            .clone(),
        (Some(_), true) => bail!("give --online-key or --generate-online-key, not both"),
        (None, false) if interactive => {
            let answer = p.ask_text("Online key file (PEM; empty to generate one)")?;
            if answer.is_empty() {
                generate(&args.keys_dir, "online.pem", args.key_type)?
                    .public_key()
                    .clone()
            } else {
                load_key(Path::new(&answer), None)?.0
            }
        }
        (None, false) => bail!("no online key: give --online-key FILE or --generate-online-key"),
    };

    let offline_keys = |files: &[PathBuf]| -> anyhow::Result<Vec<RootKey>> {
        files
            .iter()
            .map(|path| {
                let (key, signer) = load_key(path, password_env)?;
                let name = path.file_stem().map(|s| s.to_string_lossy().into_owned());
                Ok(RootKey { key, signer, name })
            })
            .collect()
    };
    let result = Ceremony {
        root_keys,
        root_threshold,
        online_key,
        expiration,
        bins,
        dev: args.dev,
        layout: match args.layout {
            Layout::Pep458 => tufa_repository::Layout::Pep458,
            Layout::Pep480 => tufa_repository::Layout::Pep480,
        },
        targets_keys: offline_keys(&args.targets_keys)?,
        targets_threshold: args.targets_threshold,
        claimed_keys: offline_keys(&args.claimed_keys)?,
        claimed_threshold: args.claimed_threshold,
    }
    .run()?;
    let text = serde_json::to_string_pretty(&result.payload)?;
    std::fs::write(&args.out, text + "\n")
        .with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!(
        "root v1 carries {} signature(s), threshold {}; bootstrap payload written to {}",
        result.signatures,
        root_threshold,
        args.out.display()
    );
    if args.layout == Layout::Pep480 {
        eprintln!(
            "layout pep480: offline targets v1 and claimed v1 signed and included in the payload"
        );
    }
    if (result.signatures as u64) < root_threshold {
        eprintln!(
            "root needs {} more signature(s) before the service accepts it",
            root_threshold - result.signatures as u64
        );
    }
    Ok(ExitCode::SUCCESS)
}
