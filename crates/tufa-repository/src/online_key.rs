//! Finding the online signing key.
//!
//! The private key never leaves the service: it is read from a PKCS#8 PEM
//! file (optionally encrypted, the password from an environment variable),
//! checked against root's online keyid, and never logged or returned.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tufa_metadata::{PrivateKey, Signer};

use crate::error::{Error, Result};

/// Where the online key comes from.
#[derive(Debug, Clone)]
pub enum OnlineKeySource {
    /// A PEM file; `password_env` names the variable holding its password.
    File {
        path: PathBuf,
        password_env: Option<String>,
    },
}

impl OnlineKeySource {
    /// The default place in a data directory: `DIR/keys/online.pem`.
    pub fn in_data_dir(data_dir: &Path) -> Self {
        OnlineKeySource::File {
            path: data_dir.join("keys").join("online.pem"),
            password_env: None,
        }
    }

    /// Parses a signer URI: `file:PATH` or a plain path.
    pub fn from_uri(uri: &str) -> Self {
        let path = uri.strip_prefix("file:").unwrap_or(uri);
        OnlineKeySource::File {
            path: PathBuf::from(path),
            password_env: Some("TUFA_ONLINE_KEY_PASSWORD".into()),
        }
    }

    /// Loads the key, if the file exists.
    pub fn load(&self) -> Result<Option<Arc<dyn Signer>>> {
        match self {
            OnlineKeySource::File { path, password_env } => {
                let pem = match std::fs::read_to_string(path) {
                    Ok(p) => p,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => {
                        return Err(Error::OnlineKey(format!(
                            "cannot read {}: {e}",
                            path.display()
                        )));
                    }
                };
                let password = password_env.as_deref().and_then(|v| std::env::var(v).ok());
                let key = PrivateKey::from_pem(&pem, password.as_deref().map(str::as_bytes), None)
                    .map_err(|e| Error::OnlineKey(format!("{}: {e}", path.display())))?;
                Ok(Some(Arc::new(key)))
            }
        }
    }
}

/// Writes a private key file readable by its owner only, creating parents.
pub fn write_private_key(path: &Path, pem: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(pem.as_bytes())?;
    file.sync_all()
}
