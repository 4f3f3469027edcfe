//! Finding the online signing key.
//!
//! The private key never leaves the service: it is read from a PKCS#8 PEM
//! file (optionally encrypted, the password from an environment variable),
//! checked against root's online keyid, and never logged or returned.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tufa_metadata::{PrivateKey, Signer};

use crate::error::{Error, Result};

/// Where online keys come from: PEM files named explicitly, and any
/// `online*.pem` in the data directory's `keys/`. Several keys may be present
/// at once, so an online-key rotation can sign with the old and the new key.
#[derive(Debug, Clone, Default)]
pub struct OnlineKeySource {
    files: Vec<PathBuf>,
    scan_dir: Option<PathBuf>,
    /// The variable holding the password of encrypted key files.
    password_env: Option<String>,
}

impl OnlineKeySource {
    /// `DIR/keys/online*.pem`.
    pub fn in_data_dir(data_dir: &Path) -> Self {
        OnlineKeySource {
            files: Vec::new(),
            scan_dir: Some(data_dir.join("keys")),
            password_env: None,
        }
    }

    /// One key file (`file:PATH` or a plain path), password from
    /// `TUFA_ONLINE_KEY_PASSWORD`.
    pub fn from_uri(uri: &str) -> Self {
        let path = uri.strip_prefix("file:").unwrap_or(uri);
        OnlineKeySource {
            files: vec![PathBuf::from(path)],
            scan_dir: None,
            password_env: Some("TUFA_ONLINE_KEY_PASSWORD".into()),
        }
    }

    /// Explicit key files (a `file:` prefix is allowed), and `DIR/keys/online*.pem`;
    /// passwords from `TUFA_ONLINE_KEY_PASSWORD`.
    pub fn with_files(files: &[PathBuf], data_dir: &Path) -> Self {
        let files = files
            .iter()
            .map(|f| {
                let s = f.to_string_lossy();
                PathBuf::from(s.strip_prefix("file:").unwrap_or(&s).to_string())
            })
            .collect();
        OnlineKeySource {
            files,
            scan_dir: Some(data_dir.join("keys")),
            password_env: Some("TUFA_ONLINE_KEY_PASSWORD".into()),
        }
    }

    fn candidates(&self) -> Vec<PathBuf> {
        let mut out = self.files.clone();
        if let Some(dir) = &self.scan_dir
            && let Ok(entries) = std::fs::read_dir(dir)
        {
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("online") && n.ends_with(".pem"))
                })
                .collect();
            found.sort();
            out.extend(found);
        }
        out
    }

    /// Every key available. A named file that cannot be read is an error;
    /// so is any file that is not a usable private key.
    pub fn load_all(&self) -> Result<Vec<Arc<dyn Signer>>> {
        let password = self
            .password_env
            .as_deref()
            .and_then(|v| std::env::var(v).ok());
        let mut out: Vec<Arc<dyn Signer>> = Vec::new();
        for path in self.candidates() {
            let pem = std::fs::read_to_string(&path)
                .map_err(|e| Error::OnlineKey(format!("cannot read {}: {e}", path.display())))?;
            let key = PrivateKey::from_pem(&pem, password.as_deref().map(str::as_bytes), None)
                .map_err(|e| Error::OnlineKey(format!("{}: {e}", path.display())))?;
            if !out.iter().any(|k| k.keyid() == key.keyid()) {
                out.push(Arc::new(key));
            }
        }
        Ok(out)
    }

    /// The key with `keyid`, if available.
    pub fn find(&self, keyid: &str) -> Result<Option<Arc<dyn Signer>>> {
        Ok(self.load_all()?.into_iter().find(|k| k.keyid() == keyid))
    }

    /// The keyids available, for error messages.
    pub fn keyids(&self) -> Vec<String> {
        self.load_all()
            .map(|keys| keys.iter().map(|k| k.keyid().to_string()).collect())
            .unwrap_or_default()
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
