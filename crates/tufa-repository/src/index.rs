//! The bundled package index's state: upload users and their tokens,
//! projects and their owners, distribution files (stored content-addressed
//! under `DATA_DIR/files/sha256/`), and the generated PEP 503 / PEP 691
//! project pages.
//!
//! An upload commits, in one database transaction, the file's row, both
//! regenerated pages and the TUF target changes
//! (`packages/{project}/{filename}`, for a wheel with METADATA also
//! `packages/{project}/{filename}.metadata` (PEP 658),
//! `simple/{project}/index.html`, `simple/{project}/index.json`) under one
//! change sequence number, so the normal publisher signs them together. Pages are kept by the SHA-256 of
//! their bytes and served only as the bytes the *published* target info of
//! their path names: a page is visible exactly when its target is signed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::{AnyPool, Row};
use tufa_metadata::{HashAlgorithm, SuccinctRoles, TargetFile, UtcTime};

use crate::error::{Error, Result};
use crate::publisher::BINS_PREFIX;
use crate::settings::{RepositorySettings, SETTINGS_KEY};
use crate::store::{ArtifactChange, Engine, PUBLISHED_INFO, Store, log_changes, next_seq};

/// The setting that holds the largest accepted upload, in bytes.
pub const MAX_UPLOAD_SIZE_KEY: &str = "index_max_upload_size";
/// The default largest upload: 100 MiB.
pub const DEFAULT_MAX_UPLOAD_SIZE: u64 = 100 * 1024 * 1024;

/// Why an upload or index change was refused.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The request can never succeed as sent (HTTP 400).
    #[error("{0}")]
    Invalid(String),
    /// The user may not change this project (HTTP 403).
    #[error("{0}")]
    Forbidden(String),
    /// No such project or file (HTTP 404).
    #[error("{0}")]
    NotFound(String),
    /// The service failed.
    #[error(transparent)]
    Repository(#[from] Error),
}

impl From<sqlx::Error> for IndexError {
    fn from(e: sqlx::Error) -> Self {
        IndexError::Repository(Error::Database(e))
    }
}

/// PEP 503 normalisation: runs of `-`, `_`, `.` become one `-`, lower case.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.extend(c.to_lowercase());
        }
    }
    if sep {
        out.push('-');
    }
    out
}

/// A valid project name (PEP 508): ASCII letters and digits, with `.`, `_`,
/// `-` inside.
pub fn valid_project_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 200
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

fn version_eq(from_filename: &str, version: &str) -> bool {
    let a = from_filename.replace('_', "-").to_ascii_lowercase();
    let b = version.replace('_', "-").to_ascii_lowercase();
    a == b
}

/// Checks that `filename` is a wheel or sdist of `project` at `version`
/// (names compared normalised). Returns the PEP 691 packagetype.
pub fn check_filename(
    filename: &str,
    project: &str,
    version: &str,
) -> std::result::Result<&'static str, String> {
    if filename.is_empty()
        || filename.len() > 255
        || !filename
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-' | b'+' | b'!'))
    {
        return Err(format!("Invalid distribution file name {filename:?}."));
    }
    let want = normalize_name(project);
    if let Some(stem) = filename.strip_suffix(".whl") {
        let parts: Vec<&str> = stem.split('-').collect();
        if !(parts.len() == 5 || parts.len() == 6) || parts.iter().any(|p| p.is_empty()) {
            return Err(format!(
                "Invalid wheel filename {filename:?}: expected NAME-VERSION(-BUILD)-PYTHON-ABI-PLATFORM.whl."
            ));
        }
        if normalize_name(parts[0]) != want {
            return Err(format!(
                "Start filename for {project:?} with {:?}.",
                want.replace('-', "_")
            ));
        }
        if !version_eq(parts[1], version) {
            return Err(format!(
                "Version in filename {filename:?} should be {version:?}."
            ));
        }
        return Ok("bdist_wheel");
    }
    let stem = filename
        .strip_suffix(".tar.gz")
        .or_else(|| filename.strip_suffix(".zip"))
        .ok_or_else(|| {
            format!("Invalid file extension in {filename:?}: use .whl, .tar.gz or .zip.")
        })?;
    let Some((name, ver)) = stem.rsplit_once('-') else {
        return Err(format!(
            "Invalid sdist filename {filename:?}: expected NAME-VERSION.tar.gz."
        ));
    };
    if normalize_name(name) != want {
        return Err(format!(
            "Start filename for {project:?} with {:?}.",
            want.replace('-', "_")
        ));
    }
    if !version_eq(ver, version) {
        return Err(format!(
            "Version in filename {filename:?} should be {version:?}."
        ));
    }
    Ok("sdist")
}

/// The largest METADATA file read out of a wheel (PEP 658).
pub const MAX_CORE_METADATA_SIZE: u64 = 8 * 1024 * 1024;

/// A wheel's core metadata (its `.dist-info/METADATA`), stored
/// content-addressed and signed as `packages/{project}/{filename}.metadata`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreMetadata {
    pub size: u64,
    pub sha256: String,
    pub blake2b_256: String,
}

impl CoreMetadata {
    /// The size and hashes of these METADATA bytes.
    pub fn of(bytes: &[u8]) -> CoreMetadata {
        CoreMetadata {
            size: bytes.len() as u64,
            sha256: sha256_hex(bytes),
            blake2b_256: hex::encode(HashAlgorithm::Blake2b256.digest(bytes)),
        }
    }

    fn target_info(&self) -> TargetFile {
        target_info(self.size, &self.blake2b_256, &self.sha256)
    }
}

fn target_info(length: u64, blake2b_256: &str, sha256: &str) -> TargetFile {
    TargetFile {
        length,
        hashes: [
            ("blake2b-256".to_string(), blake2b_256.to_string()),
            ("sha256".to_string(), sha256.to_string()),
        ]
        .into_iter()
        .collect(),
        unrecognized: serde_json::Map::new(),
    }
}

/// The target path of a file's core metadata (PEP 658: the file's URL
/// with `.metadata` appended).
pub fn metadata_target(project: &str, filename: &str) -> String {
    format!("packages/{project}/{filename}.metadata")
}

/// Reads `{name}-{version}.dist-info/METADATA` (name and version as the
/// wheel's filename spells them; a `.dist-info` directory whose name
/// normalises to the same is accepted too) out of the wheel at `path`.
/// `Ok(None)` if the wheel has none; `Invalid` if it is not a readable zip
/// archive or the METADATA is larger than [`MAX_CORE_METADATA_SIZE`].
/// Reads at most that many bytes of it, whatever the archive claims.
pub fn wheel_metadata(
    path: &Path,
    filename: &str,
) -> std::result::Result<Option<Vec<u8>>, IndexError> {
    use std::io::Read;

    let invalid = |what: String| IndexError::Invalid(format!("Invalid wheel {filename:?}: {what}"));
    let mut parts = filename.trim_end_matches(".whl").split('-');
    let (Some(name), Some(version)) = (parts.next(), parts.next()) else {
        return Err(invalid("not NAME-VERSION-...whl".into()));
    };
    let file = std::fs::File::open(path).map_err(|e| Error::storage(path, e))?;
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| invalid(format!("not a readable zip archive ({e})")))?;
    let exact = format!("{name}-{version}.dist-info/METADATA");
    let entry = if archive.index_for_name(&exact).is_some() {
        Some(exact)
    } else {
        archive
            .file_names()
            .filter_map(std::result::Result::ok)
            .find(|n| {
                n.strip_suffix(".dist-info/METADATA")
                    .filter(|dir| !dir.contains('/'))
                    .and_then(|dir| dir.rsplit_once('-'))
                    .is_some_and(|(n, v)| {
                        normalize_name(n) == normalize_name(name) && version_eq(v, version)
                    })
            })
            .map(std::borrow::Cow::into_owned)
    };
    let Some(entry) = entry else {
        return Ok(None);
    };
    let mut member = archive
        .by_name(&entry)
        .map_err(|e| invalid(format!("cannot read {entry} ({e})")))?;
    if member.size() > MAX_CORE_METADATA_SIZE {
        return Err(invalid(format!(
            "{entry} is larger than {MAX_CORE_METADATA_SIZE} bytes"
        )));
    }
    let mut bytes = Vec::new();
    (&mut member)
        .take(MAX_CORE_METADATA_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| invalid(format!("cannot read {entry} ({e})")))?;
    if bytes.len() as u64 > MAX_CORE_METADATA_SIZE {
        return Err(invalid(format!(
            "{entry} is larger than {MAX_CORE_METADATA_SIZE} bytes"
        )));
    }
    Ok(Some(bytes))
}

/// A received file, hashed and in a temporary file, ready to commit.
#[derive(Debug, Clone)]
pub struct NewFile {
    /// The project name as uploaded (normalised when stored).
    pub project: String,
    pub version: String,
    pub filename: String,
    pub size: u64,
    pub sha256: String,
    pub blake2b_256: String,
    pub requires_python: Option<String>,
    /// The wheel's METADATA, already in the store at [`Index::blob_path`].
    pub metadata: Option<CoreMetadata>,
}

/// The upload accepted: its change sequence number and target path.
#[derive(Debug, Clone)]
pub struct Uploaded {
    pub seq: i64,
    pub project: String,
    pub target: String,
}

/// A published file: where its bytes are and what the metadata signs.
#[derive(Debug, Clone)]
pub struct PublishedFile {
    pub path: PathBuf,
    pub info: TargetFile,
}

/// The index's handle on the state store and the file store.
#[derive(Debug, Clone)]
pub struct Index {
    pool: AnyPool,
    /// Write transactions (see `Store::writer`).
    writer: AnyPool,
    engine: Engine,
    /// Published state reads (the log holds the latest publication's
    /// changes for a moment).
    store: Store,
    data_dir: PathBuf,
}

#[derive(Debug)]
struct FileRow {
    filename: String,
    version: String,
    size: i64,
    sha256: String,
    requires_python: Option<String>,
    yanked: Option<String>,
    upload_time: i64,
    metadata_sha256: Option<String>,
}

fn random_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| Error::Corrupt("no randomness".into()))?;
    Ok(format!("tufa-{}", hex::encode(bytes)))
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(HashAlgorithm::Sha256.digest(data))
}

fn now() -> i64 {
    UtcTime::now().unix()
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// The PEP 503 page of a project (PEP 629 repository version 1.1).
fn render_html(project: &str, files: &[FileRow]) -> Vec<u8> {
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html>\n  <head>\n");
    out.push_str("    <meta name=\"pypi:repository-version\" content=\"1.1\">\n");
    out.push_str(&format!(
        "    <title>Links for {}</title>\n  </head>\n  <body>\n    <h1>Links for {}</h1>\n",
        escape_html(project),
        escape_html(project)
    ));
    for f in files {
        out.push_str(&format!(
            "    <a href=\"../../packages/{}/{}#sha256={}\"",
            project,
            escape_html(&f.filename),
            f.sha256
        ));
        if let Some(rp) = &f.requires_python {
            out.push_str(&format!(" data-requires-python=\"{}\"", escape_html(rp)));
        }
        if let Some(sha) = &f.metadata_sha256 {
            // PEP 714's name, and PEP 658's for older installers.
            out.push_str(&format!(
                " data-dist-info-metadata=\"sha256={sha}\" data-core-metadata=\"sha256={sha}\""
            ));
        }
        if let Some(reason) = &f.yanked {
            out.push_str(&format!(" data-yanked=\"{}\"", escape_html(reason)));
        }
        out.push_str(&format!(">{}</a><br/>\n", escape_html(&f.filename)));
    }
    out.push_str("  </body>\n</html>\n");
    out.into_bytes()
}

/// The PEP 691 JSON page of a project, with PEP 700's `versions`, `size`
/// and `upload-time`.
fn render_json(project: &str, files: &[FileRow]) -> Vec<u8> {
    let mut versions: Vec<&str> = Vec::new();
    let mut list = Vec::new();
    for f in files {
        if !versions.contains(&f.version.as_str()) {
            versions.push(&f.version);
        }
        let mut file = json!({
            "filename": f.filename,
            "url": format!("../../packages/{project}/{}", f.filename),
            "hashes": {"sha256": f.sha256},
            "requires-python": f.requires_python,
            "size": f.size,
            "upload-time": UtcTime::from_unix(f.upload_time).to_string(),
        });
        if let Some(sha) = &f.metadata_sha256 {
            file["core-metadata"] = json!({"sha256": sha});
            file["dist-info-metadata"] = json!({"sha256": sha});
        }
        file["yanked"] = match &f.yanked {
            None => Value::Bool(false),
            Some(r) if r.is_empty() => Value::Bool(true),
            Some(r) => Value::String(r.clone()),
        };
        list.push(file);
    }
    let page = json!({
        "meta": {"api-version": "1.1"},
        "name": project,
        "files": list,
        "versions": versions,
    });
    let mut bytes = serde_json::to_vec(&page).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

impl Index {
    /// Opens the index of the repository in `data_dir` (migrating the
    /// database first if nothing has yet).
    pub async fn open(data_dir: &Path) -> Result<Index> {
        std::fs::create_dir_all(data_dir).map_err(|e| Error::storage(data_dir, e))?;
        let store = Store::open_sqlite(&data_dir.join("tufa.db")).await?;
        Ok(Index::with_store(&store, data_dir))
    }

    /// The index on a repository's state store, its files under `data_dir`.
    pub fn with_store(store: &Store, data_dir: &Path) -> Index {
        Index {
            pool: store.pool().clone(),
            writer: store.writer().clone(),
            engine: store.engine(),
            store: store.clone(),
            data_dir: data_dir.to_path_buf(),
        }
    }

    /// Where uploads are received before they are committed.
    pub fn incoming_dir(&self) -> PathBuf {
        self.data_dir.join("files").join("incoming")
    }

    /// Where the file with this SHA-256 (hex) lives.
    pub fn blob_path(&self, sha256: &str) -> PathBuf {
        let a = sha256.get(0..2).unwrap_or("00");
        let b = sha256.get(2..4).unwrap_or("00");
        self.data_dir
            .join("files")
            .join("sha256")
            .join(a)
            .join(b)
            .join(sha256)
    }

    /// Adds an upload user; returns the API token, which is never stored
    /// (only its SHA-256 is).
    pub async fn add_user(&self, name: &str) -> std::result::Result<String, IndexError> {
        if name.is_empty()
            || name.len() > 100
            || !name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
        {
            return Err(IndexError::Invalid(format!(
                "invalid user name {name:?}: use letters, digits, '.', '_' and '-'"
            )));
        }
        let token = random_token()?;
        let done = sqlx::query(
            "INSERT INTO index_users (name, token_sha256, created) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(name)
        .bind(sha256_hex(token.as_bytes()))
        .bind(now())
        .execute(&self.writer)
        .await?;
        if done.rows_affected() == 0 {
            return Err(IndexError::Invalid(format!("user {name:?} already exists")));
        }
        Ok(token)
    }

    /// Gives a user a new token (the old one stops working).
    pub async fn reset_token(&self, name: &str) -> std::result::Result<String, IndexError> {
        let token = random_token()?;
        let done = sqlx::query("UPDATE index_users SET token_sha256 = $1 WHERE name = $2")
            .bind(sha256_hex(token.as_bytes()))
            .bind(name)
            .execute(&self.writer)
            .await?;
        if done.rows_affected() == 0 {
            return Err(IndexError::NotFound(format!("no user {name:?}")));
        }
        Ok(token)
    }

    /// The users' names.
    pub async fn users(&self) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT name FROM index_users ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| r.try_get("name").map_err(Error::from))
            .collect()
    }

    /// The user a token belongs to.
    pub async fn authenticate(&self, token: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT name FROM index_users WHERE token_sha256 = $1")
            .bind(sha256_hex(token.as_bytes()))
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("name")).transpose()?)
    }

    /// The largest accepted upload.
    pub async fn max_upload_size(&self) -> Result<u64> {
        let row = sqlx::query("SELECT value FROM settings WHERE key = $1")
            .bind(MAX_UPLOAD_SIZE_KEY)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => r
                .try_get::<String, _>("value")?
                .parse()
                .unwrap_or(DEFAULT_MAX_UPLOAD_SIZE),
            None => DEFAULT_MAX_UPLOAD_SIZE,
        })
    }

    /// Sets the largest accepted upload (`tufa serve --max-upload-size`).
    pub async fn set_max_upload_size(&self, bytes: u64) -> Result<()> {
        sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .bind(MAX_UPLOAD_SIZE_KEY)
            .bind(bytes.to_string())
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn succinct(&self) -> std::result::Result<SuccinctRoles, IndexError> {
        let row = sqlx::query("SELECT value FROM settings WHERE key = $1")
            .bind(SETTINGS_KEY)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Err(IndexError::Repository(Error::NotBootstrapped {
                state: "None".into(),
            }));
        };
        let settings: RepositorySettings =
            serde_json::from_str(&row.try_get::<String, _>("value")?)
                .map_err(|e| Error::Corrupt(format!("settings: {e}")))?;
        Ok(SuccinctRoles {
            keyids: vec![settings.online_keyid.clone()],
            threshold: 1,
            bit_length: settings.bit_length(),
            name_prefix: BINS_PREFIX.into(),
            unrecognized: serde_json::Map::new(),
        })
    }

    /// Commits an upload whose bytes are already at [`Index::blob_path`]:
    /// checks ownership and that the filename is new, records the file,
    /// regenerates both pages and records the three target changes, all in
    /// one transaction under one change sequence number.
    pub async fn commit_upload(
        &self,
        user: &str,
        file: &NewFile,
    ) -> std::result::Result<Uploaded, IndexError> {
        let succinct = self.succinct().await?;
        let project = normalize_name(&file.project);
        let mut tx = self.writer.begin().await?;
        // A write first: the transaction holds the write lock from here on,
        // so everything read below is current.
        let seq: i64 =
            sqlx::query("UPDATE sequence SET last = last + 1 WHERE id = 1 RETURNING last")
                .fetch_one(&mut *tx)
                .await?
                .try_get("last")?;
        let owner: Option<String> = sqlx::query("SELECT owner FROM index_projects WHERE name = $1")
            .bind(&project)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get("owner"))
            .transpose()?;
        match owner {
            Some(owner) if owner != user => {
                return Err(IndexError::Forbidden(format!(
                    "The user '{user}' isn't allowed to upload to project '{project}'."
                )));
            }
            Some(_) => {}
            None => {
                sqlx::query(
                    "INSERT INTO index_projects (name, owner, created) VALUES ($1, $2, $3)",
                )
                .bind(&project)
                .bind(user)
                .bind(now())
                .execute(&mut *tx)
                .await?;
            }
        }
        let exists = sqlx::query("SELECT 1 FROM index_files WHERE filename = $1")
            .bind(&file.filename)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_some() {
            return Err(IndexError::Invalid(format!(
                "File already exists ('{}', with sha256 hash {}).",
                file.filename, file.sha256
            )));
        }
        sqlx::query(
            "INSERT INTO index_files (filename, project, version, size, sha256, blake2b_256,
                 requires_python, yanked, upload_time, uploader,
                 metadata_size, metadata_sha256, metadata_blake2b_256)
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8, $9, $10, $11, $12)",
        )
        .bind(&file.filename)
        .bind(&project)
        .bind(&file.version)
        .bind(file.size as i64)
        .bind(&file.sha256)
        .bind(&file.blake2b_256)
        .bind(&file.requires_python)
        .bind(now())
        .bind(user)
        .bind(file.metadata.as_ref().map(|m| m.size as i64))
        .bind(file.metadata.as_ref().map(|m| m.sha256.as_str()))
        .bind(file.metadata.as_ref().map(|m| m.blake2b_256.as_str()))
        .execute(&mut *tx)
        .await?;
        let target = format!("packages/{project}/{}", file.filename);
        let info = target_info(file.size, &file.blake2b_256, &file.sha256);
        let mut changes = vec![(target.clone(), Some(info))];
        if let Some(m) = &file.metadata {
            changes.push((
                metadata_target(&project, &file.filename),
                Some(m.target_info()),
            ));
        }
        changes.extend(regenerate_pages(&mut tx, &project).await?);
        record_changes(&mut tx, self.engine, &succinct, seq, &changes).await?;
        tx.commit().await?;
        Ok(Uploaded {
            seq,
            project,
            target,
        })
    }

    /// Yanks (PEP 592) or un-yanks a file: the pages are regenerated and
    /// published. Returns the change sequence number.
    pub async fn set_yanked(
        &self,
        project: &str,
        filename: &str,
        reason: Option<&str>,
    ) -> std::result::Result<i64, IndexError> {
        let succinct = self.succinct().await?;
        let project = normalize_name(project);
        let mut tx = self.writer.begin().await?;
        let seq = next_seq(&mut tx).await?;
        let done = sqlx::query(
            "UPDATE index_files SET yanked = $1 WHERE project = $2 AND filename = $3 AND deleted = 0",
        )
        .bind(reason)
        .bind(&project)
        .bind(filename)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(IndexError::NotFound(format!(
                "no file {filename:?} in project {project:?}"
            )));
        }
        let changes = regenerate_pages(&mut tx, &project).await?;
        record_changes(&mut tx, self.engine, &succinct, seq, &changes).await?;
        tx.commit().await?;
        Ok(seq)
    }

    /// Deletes one file of a project, or (`filename` `None`) the whole
    /// project: targets removed, pages regenerated (or removed), published.
    /// The filenames stay used. Returns the change sequence number.
    pub async fn delete(
        &self,
        project: &str,
        filename: Option<&str>,
    ) -> std::result::Result<i64, IndexError> {
        let succinct = self.succinct().await?;
        let project = normalize_name(project);
        let mut tx = self.writer.begin().await?;
        let seq = next_seq(&mut tx).await?;
        let rows = sqlx::query(
            "SELECT filename, CASE WHEN metadata_sha256 IS NULL THEN 0 ELSE 1 END AS has_metadata
             FROM index_files WHERE project = $1 AND deleted = 0",
        )
        .bind(&project)
        .fetch_all(&mut *tx)
        .await?;
        let mut names: Vec<(String, bool)> = rows
            .iter()
            .map(|r| {
                Ok((
                    r.try_get("filename")?,
                    r.try_get::<i64, _>("has_metadata")? != 0,
                ))
            })
            .collect::<std::result::Result<_, sqlx::Error>>()?;
        if let Some(f) = filename {
            names.retain(|(n, _)| n == f);
            if names.is_empty() {
                return Err(IndexError::NotFound(format!(
                    "no file {f:?} in project {project:?}"
                )));
            }
        } else if names.is_empty() {
            return Err(IndexError::NotFound(format!("no project {project:?}")));
        }
        let mut changes: Vec<(String, Option<TargetFile>)> = Vec::new();
        for (name, has_metadata) in &names {
            // Keep the name used (as PyPI does): the row stays, marked deleted.
            sqlx::query("UPDATE index_files SET deleted = 1 WHERE filename = $1")
                .bind(name)
                .execute(&mut *tx)
                .await?;
            changes.push((format!("packages/{project}/{name}"), None));
            if *has_metadata {
                changes.push((metadata_target(&project, name), None));
            }
        }
        changes.extend(regenerate_pages(&mut tx, &project).await?);
        record_changes(&mut tx, self.engine, &succinct, seq, &changes).await?;
        tx.commit().await?;
        Ok(seq)
    }

    /// Waits until the change `seq` is published (or `timeout`): every
    /// change up to the published mark is live.
    pub async fn wait_published(&self, seq: i64, timeout: Duration) -> Result<bool> {
        let start = std::time::Instant::now();
        loop {
            if self.store.published_seq().await? >= seq {
                return Ok(true);
            }
            if start.elapsed() >= timeout {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The published bytes of a project's page (`index.html` or
    /// `index.json`): exactly the bytes the live metadata signs.
    pub async fn published_page(&self, project: &str, name: &str) -> Result<Option<Vec<u8>>> {
        // Two lookups rather than a JSON function in SQL: the same on both engines.
        let info = self
            .store
            .published_info(&format!("simple/{project}/{name}"))
            .await?;
        let Some(info) = info else {
            return Ok(None);
        };
        let info: TargetFile = serde_json::from_str(&info)
            .map_err(|e| Error::Corrupt(format!("published info of a page: {e}")))?;
        let Some(sha256) = info.hashes.get("sha256") else {
            return Ok(None);
        };
        let row = sqlx::query("SELECT body FROM index_pages WHERE sha256 = $1")
            .bind(sha256)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("body")).transpose()?)
    }

    /// Projects with a published page, normalised names in order.
    pub async fn published_projects(&self) -> Result<Vec<String>> {
        let rows = sqlx::query(&format!(
            "SELECT name FROM index_projects p WHERE EXISTS (
                 SELECT 1 FROM artifacts a WHERE a.path = 'simple/' || p.name || '/index.html'
                     AND {PUBLISHED_INFO} IS NOT NULL)
             ORDER BY name"
        ))
        .fetch_all(&self.pool)
        .await?;
        let mut names = rows
            .iter()
            .map(|r| r.try_get("name").map_err(Error::from))
            .collect::<Result<BTreeSet<String>>>()?;
        if self.store.published_in_log().await? {
            // The last publication's pages, until they are moved into `artifacts`.
            let logged = sqlx::query(
                "SELECT path, info FROM artifact_log
                 WHERE path LIKE 'simple/%/index.html'
                     AND seq <= (SELECT published FROM sequence WHERE id = 1)
                 ORDER BY id",
            )
            .fetch_all(&self.pool)
            .await?;
            for row in logged {
                let path: String = row.try_get("path")?;
                let Some(name) = path
                    .strip_prefix("simple/")
                    .and_then(|p| p.strip_suffix("/index.html"))
                else {
                    continue;
                };
                if row.try_get::<Option<String>, _>("info")?.is_some() {
                    names.insert(name.to_string());
                } else {
                    names.remove(name);
                }
            }
        }
        Ok(names.into_iter().collect())
    }

    /// A published file: the target info the live metadata signs for
    /// `packages/{project}/{filename}` and where those bytes are stored.
    pub async fn published_file(
        &self,
        project: &str,
        filename: &str,
    ) -> Result<Option<PublishedFile>> {
        let info = self
            .store
            .published_info(&format!("packages/{project}/{filename}"))
            .await?;
        let Some(info) = info else {
            return Ok(None);
        };
        let info: TargetFile =
            serde_json::from_str(&info).map_err(|e| Error::Corrupt(e.to_string()))?;
        let Some(sha256) = info.hashes.get("sha256") else {
            return Ok(None);
        };
        Ok(Some(PublishedFile {
            path: self.blob_path(sha256),
            info,
        }))
    }
}

/// Regenerates both pages of a project from its current files, storing
/// their bytes; returns their target changes (removals when no file is left).
async fn regenerate_pages(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    project: &str,
) -> Result<Vec<(String, Option<TargetFile>)>> {
    let rows = sqlx::query(
        "SELECT filename, version, size, sha256, requires_python, yanked, upload_time,
             metadata_sha256
         FROM index_files WHERE project = $1 AND deleted = 0 ORDER BY upload_time, filename",
    )
    .bind(project)
    .fetch_all(&mut **tx)
    .await?;
    let files = rows
        .iter()
        .map(|r| {
            Ok(FileRow {
                filename: r.try_get("filename")?,
                version: r.try_get("version")?,
                size: r.try_get("size")?,
                sha256: r.try_get("sha256")?,
                requires_python: r.try_get("requires_python")?,
                yanked: r.try_get("yanked")?,
                upload_time: r.try_get("upload_time")?,
                metadata_sha256: r.try_get("metadata_sha256")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut changes = Vec::new();
    for (name, bytes) in [
        ("index.html", render_html(project, &files)),
        ("index.json", render_json(project, &files)),
    ] {
        let path = format!("simple/{project}/{name}");
        if files.is_empty() {
            changes.push((path, None));
            continue;
        }
        let info =
            TargetFile::from_bytes(&bytes, &[HashAlgorithm::Blake2b256, HashAlgorithm::Sha256]);
        let sha = sha256_hex(&bytes);
        sqlx::query("INSERT INTO index_pages (sha256, body) VALUES ($1, $2) ON CONFLICT (sha256) DO NOTHING")
            .bind(sha)
            .bind(bytes)
            .execute(&mut **tx)
            .await?;
        changes.push((path, Some(info)));
    }
    Ok(changes)
}

/// Records target changes as the artifact API does (the same log, the same
/// sequence number), for the publisher.
async fn record_changes(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    engine: Engine,
    succinct: &SuccinctRoles,
    seq: i64,
    changes: &[(String, Option<TargetFile>)],
) -> Result<()> {
    let changes = changes
        .iter()
        .map(|(path, info)| {
            let info = info
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(|e| Error::Corrupt(e.to_string()))?;
            let bin = u32::try_from(succinct.bin_for_target(path))
                .map_err(|e| Error::Corrupt(e.to_string()))?;
            Ok(ArtifactChange {
                path: path.clone(),
                bin,
                info,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    log_changes(tx, engine, seq, &changes).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalise_as_pep_503_says() {
        assert_eq!(normalize_name("Friendly-Bard"), "friendly-bard");
        assert_eq!(normalize_name("FRIENDLY._-bard"), "friendly-bard");
        assert_eq!(normalize_name("a_b.c"), "a-b-c");
        assert!(valid_project_name("Foo.Bar_baz-1"));
        assert!(!valid_project_name("-foo"));
        assert!(!valid_project_name("foo/bar"));
    }

    #[test]
    fn filenames_are_checked_against_project_and_version() {
        assert_eq!(
            check_filename("my_pkg-1.0-py3-none-any.whl", "My.Pkg", "1.0"),
            Ok("bdist_wheel")
        );
        assert_eq!(
            check_filename("my_pkg-1.0.tar.gz", "my-pkg", "1.0"),
            Ok("sdist")
        );
        assert_eq!(
            check_filename("my-pkg-1.0.tar.gz", "my_pkg", "1.0"),
            Ok("sdist")
        );
        assert!(check_filename("other-1.0.tar.gz", "my-pkg", "1.0").is_err());
        assert!(check_filename("my_pkg-1.1-py3-none-any.whl", "my-pkg", "1.0").is_err());
        assert!(check_filename("my_pkg-1.0.exe", "my-pkg", "1.0").is_err());
        assert!(check_filename("../x-1.0.tar.gz", "x", "1.0").is_err());
        assert!(check_filename("my_pkg-1.0-py3-any.whl", "my-pkg", "1.0").is_err());
    }

    #[test]
    fn pages_escape_and_list_files() {
        let files = vec![FileRow {
            filename: "a-1.0.tar.gz".into(),
            version: "1.0".into(),
            size: 3,
            sha256: "ab".into(),
            requires_python: Some(">=3.8,<4".into()),
            yanked: None,
            upload_time: 0,
            metadata_sha256: None,
        }];
        let html = String::from_utf8(render_html("a", &files)).unwrap_or_default();
        assert!(html.contains(
            "<a href=\"../../packages/a/a-1.0.tar.gz#sha256=ab\" data-requires-python=\"&gt;=3.8,&lt;4\">a-1.0.tar.gz</a>"
        ), "{html}");
        let json: Value = serde_json::from_slice(&render_json("a", &files)).unwrap_or_default();
        assert_eq!(json["versions"], json!(["1.0"]));
        assert_eq!(json["files"][0]["upload-time"], "1970-01-01T00:00:00Z");
        assert_eq!(json["files"][0]["yanked"], false);
    }

    fn write_zip(path: &Path, entries: &[(&str, &[u8])]) {
        use std::io::Write;
        let file = std::fs::File::create(path).expect("create");
        let mut zip = zip::ZipWriter::new(file);
        for (name, data) in entries {
            zip.start_file(
                *name,
                zip::write::SimpleFileOptions::default()
                    .compression_method(zip::CompressionMethod::Stored),
            )
            .expect("start");
            zip.write_all(data).expect("write");
        }
        zip.finish().expect("finish");
    }

    #[test]
    fn wheel_metadata_is_read_by_the_filename_s_name_and_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let w = dir.path().join("w.whl");
        write_zip(
            &w,
            &[
                ("my_pkg/__init__.py", b""),
                ("my_pkg-1.0.dist-info/METADATA", b"Name: my-pkg\n"),
            ],
        );
        let got = wheel_metadata(&w, "my_pkg-1.0-py3-none-any.whl").expect("read");
        assert_eq!(got.as_deref(), Some(&b"Name: my-pkg\n"[..]));
        // A directory name that normalises the same.
        let got = wheel_metadata(&w, "My.Pkg-1.0-py3-none-any.whl").expect("read");
        assert_eq!(got.as_deref(), Some(&b"Name: my-pkg\n"[..]));
        // Another project's or version's METADATA is not this wheel's.
        assert_eq!(
            wheel_metadata(&w, "my_pkg-2.0-py3-none-any.whl").expect("read"),
            None
        );
        write_zip(&w, &[("sub/my_pkg-1.0.dist-info/METADATA", b"x")]);
        assert_eq!(
            wheel_metadata(&w, "my_pkg-1.0-py3-none-any.whl").expect("read"),
            None
        );
        std::fs::write(&w, b"PK\x03\x04 not a zip").expect("write");
        match wheel_metadata(&w, "my_pkg-1.0-py3-none-any.whl") {
            Err(IndexError::Invalid(m)) => assert!(m.contains("not a readable zip archive"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
