//! The options every command that opens the repository shares: where the
//! state, the metadata and the keys are.

use std::path::PathBuf;

use clap::Args;
use tufa_repository::RepositoryConfig;
use tufa_repository::online_key::OnlineKeySource;

#[derive(Debug, Args)]
pub struct RepoArgs {
    /// Keys for --dev, the index's files and, unless --database-url and
    /// --storage say otherwise, the state (tufa.db) and the metadata (metadata/).
    #[arg(long, default_value = "tufa-data", env = "TUFA_DATA_DIR")]
    pub data_dir: PathBuf,
    /// The state store: sqlite://PATH (default: DATA_DIR/tufa.db) or
    /// postgres://USER[:PASSWORD]@HOST[:PORT]/DB for many processes.
    #[arg(long, env = "TUFA_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Where published metadata goes: a directory (default DATA_DIR/metadata)
    /// or s3://BUCKET[/PREFIX][?endpoint=URL&region=R] with the usual AWS_*
    /// credentials in the environment.
    #[arg(long, env = "TUFA_STORAGE")]
    pub storage: Option<String>,
    /// An online signing key (PKCS#8 PEM; password in TUFA_ONLINE_KEY_PASSWORD).
    /// Repeatable: during an online-key rotation the service holds both keys.
    /// Keys named DATA_DIR/keys/online*.pem are always available.
    #[arg(long = "online-key", value_name = "FILE", env = "TUFA_ONLINE_KEY")]
    pub online_keys: Vec<PathBuf>,
}

impl RepoArgs {
    pub fn config(&self) -> RepositoryConfig {
        RepositoryConfig {
            data_dir: self.data_dir.clone(),
            online_key: OnlineKeySource::with_files(&self.online_keys, &self.data_dir),
            database_url: self.database_url.clone(),
            storage: self.storage.clone(),
        }
    }

    /// Where the state is, for messages (no password).
    pub fn describe_database(&self) -> String {
        match &self.database_url {
            Some(url) => tufa_repository::store::redact_url(url),
            None => self.data_dir.join("tufa.db").display().to_string(),
        }
    }
}
