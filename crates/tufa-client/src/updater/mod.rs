//! The TUF updater: the specification's detailed client workflow (section 5),
//! step for step, with python-tuf's ngclient as the reference for every
//! choice the specification leaves open.
//!
//! - One fixed reference time per [`Updater`] (5.1); the trusted root is
//!   loaded once (5.2).
//! - Root chain (5.3): version N+1 until the server answers 403 or 404, at
//!   most 256 rotations, each signed by a threshold of the old root's keys
//!   and of its own; the final root must not be expired; when the timestamp
//!   or snapshot keys changed, the cached timestamp and snapshot are deleted.
//! - Timestamp (5.4), snapshot (5.5), targets (5.6) and delegated roles
//!   (5.6.7) with their rollback, freeze and mix-and-match checks (see
//!   [`trusted`](self) for the rules); the walk is the pre-order
//!   depth-first search of [`tufa_metadata::delegation::find_target`].
//! - Local copies first: a cached snapshot or targets role that is still
//!   the version the newer metadata lists is used without a download, so a
//!   refresh with nothing new downloads only `timestamp.json` (after the
//!   root probe the specification requires), and a lookup downloads only the
//!   roles on its path (one hash bin, never all of them).
//! - Every accepted file is persisted atomically (temporary file, rename)
//!   as `{role}.json`, the role name percent-encoded. Roots are also made
//!   durable (fsync of the file and its directory) before they are relied
//!   on; the other roles and downloaded targets only with
//!   [`UpdaterConfig::sync_writes`], as in python-tuf, whose ngclient never
//!   fsyncs: a file a crash lost or tore is found invalid on the next start
//!   and downloaded again.
//! - Downloads are bounded: metadata by the listed length or the configured
//!   maximum, targets by their signed length; the [`HttpFetcher`] adds
//!   timeouts and a minimum transfer rate.

mod error;
mod fetch;
mod trusted;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use tufa_metadata::delegation::{RoleLoader, find_target};
use tufa_metadata::hash::{MultiHasher, hash_reader};
use tufa_metadata::{HashAlgorithm, Root, Snapshot, TargetFile, Targets, Timestamp, UtcTime};

pub use error::Error;
pub use fetch::{Fetcher, HttpConfig, HttpFetcher, fetch_bytes};

use crate::limits::{
    ROOT_MAX_LENGTH, SNAPSHOT_MAX_LENGTH, TARGETS_MAX_LENGTH, TIMESTAMP_MAX_LENGTH, read_bounded,
};
use crate::role_name;
use trusted::{TimestampUpdate, TrustedSet, role_keys_changed};

/// python-tuf's `max_root_rotations`.
pub const MAX_ROOT_ROTATIONS: u64 = 256;

/// Where the updater keeps its files and fetches from, and its limits. The
/// defaults are python-tuf's `UpdaterConfig`'s.
#[derive(Debug, Clone)]
pub struct UpdaterConfig {
    /// Trusted metadata: `root.json`, `timestamp.json`, `{role}.json`.
    pub metadata_dir: PathBuf,
    /// Base URL of the metadata (`.../metadata/`).
    pub metadata_base_url: String,
    /// Default directory for downloaded targets.
    pub target_dir: Option<PathBuf>,
    /// Default base URL of the targets; may differ per download.
    pub target_base_url: Option<String>,
    pub max_root_rotations: u64,
    /// Most delegated roles visited in one lookup (the top-level targets
    /// role not counted, as in python-tuf).
    pub max_delegations: usize,
    pub root_max_length: u64,
    pub timestamp_max_length: u64,
    pub snapshot_max_length: u64,
    pub targets_max_length: u64,
    /// With consistent snapshots, fetch targets as `dir/HASH.basename`.
    /// Turn off for servers that keep targets under their plain names
    /// (such as Warehouse's `files.pythonhosted.org`).
    pub prefix_targets_with_hash: bool,
    /// The fixed update start time; `None` means now, when the updater is made.
    pub reference_time: Option<UtcTime>,
    /// fsync every persisted timestamp, snapshot, targets role and target
    /// file (and its directory), not only roots. Off by default: each fsync
    /// costs milliseconds, and what a crash loses is downloaded again.
    pub sync_writes: bool,
}

impl UpdaterConfig {
    pub fn new(metadata_dir: impl Into<PathBuf>, metadata_base_url: impl Into<String>) -> Self {
        UpdaterConfig {
            metadata_dir: metadata_dir.into(),
            metadata_base_url: metadata_base_url.into(),
            target_dir: None,
            target_base_url: None,
            max_root_rotations: MAX_ROOT_ROTATIONS,
            max_delegations: tufa_metadata::delegation::MAX_DELEGATIONS,
            root_max_length: ROOT_MAX_LENGTH,
            timestamp_max_length: TIMESTAMP_MAX_LENGTH,
            snapshot_max_length: SNAPSHOT_MAX_LENGTH,
            targets_max_length: TARGETS_MAX_LENGTH,
            prefix_targets_with_hash: true,
            reference_time: None,
            sync_writes: false,
        }
    }
}

/// A target as a trusted targets role lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetInfo {
    /// The target path (the name the metadata signs).
    pub path: String,
    /// Its length and hashes.
    pub file: TargetFile,
    /// The role that lists it.
    pub role: String,
}

/// A TUF client for one repository. Make one per update: the reference
/// time is fixed when it is made, and [`Updater::refresh`] runs once.
#[derive(Debug)]
pub struct Updater {
    config: UpdaterConfig,
    fetcher: Box<dyn Fetcher>,
    trusted: TrustedSet,
    /// The bytes of the trusted root, as persisted.
    root_bytes: Vec<u8>,
    refreshed: bool,
}

const ROOT_HISTORY: &str = "root_history";

/// Characters percent-encoded in a target path's URL: what may not stand
/// in a URL path as it is (`?`, `#`, `%`, spaces, controls...). `/` keeps
/// separating segments.
const TARGET_PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

fn ensure_trailing_slash(url: &str) -> String {
    if url.ends_with('/') {
        url.to_string()
    } else {
        format!("{url}/")
    }
}

impl Updater {
    /// An updater that trusts `{metadata_dir}/root.json`, as python-tuf with
    /// `bootstrap=None` and the conformance suite's clients do. Reads no
    /// network; fails if that root is not signed by its own threshold.
    pub fn new(config: UpdaterConfig, fetcher: Box<dyn Fetcher>) -> Result<Updater, Error> {
        let path = config.metadata_dir.join(role_name::file_name("root"));
        let bytes = read_local(&path, config.root_max_length)?;
        Updater::build(config, fetcher, bytes)
    }

    /// An updater whose trust anchor is `root` (for example a root shipped
    /// inside the application). Earlier verified roots in the metadata
    /// directory's `root_history/` spare downloads but are re-verified.
    pub fn with_trusted_root(
        config: UpdaterConfig,
        fetcher: Box<dyn Fetcher>,
        root: &[u8],
    ) -> Result<Updater, Error> {
        let updater = Updater::build(config, fetcher, root.to_vec())?;
        // The anchor comes with every start, so its copy need not be durable.
        updater.persist_root_history(updater.trusted.root().version, root, false)?;
        Ok(updater)
    }

    fn build(
        config: UpdaterConfig,
        fetcher: Box<dyn Fetcher>,
        root_bytes: Vec<u8>,
    ) -> Result<Updater, Error> {
        let reference_time = config.reference_time.unwrap_or_else(UtcTime::now);
        let trusted = TrustedSet::new(&root_bytes, reference_time)?;
        Ok(Updater {
            config,
            fetcher,
            trusted,
            root_bytes,
            refreshed: false,
        })
    }

    pub fn config(&self) -> &UpdaterConfig {
        &self.config
    }

    /// The fixed update start time all expiry checks use.
    pub fn reference_time(&self) -> UtcTime {
        self.trusted.reference_time()
    }

    /// The trusted root (the newest after a refresh).
    pub fn root(&self) -> &Root {
        self.trusted.root()
    }

    pub fn timestamp(&self) -> Option<&Timestamp> {
        self.trusted.timestamp()
    }

    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.trusted.snapshot()
    }

    /// A trusted targets role (`targets` or a delegated role loaded so far).
    pub fn targets(&self, role: &str) -> Option<&Targets> {
        self.trusted.targets(role)
    }

    /// Updates root, timestamp, snapshot and top-level targets (5.3 to 5.6).
    /// Runs once per updater: make a new one to refresh again.
    pub fn refresh(&mut self) -> Result<(), Error> {
        if self.refreshed {
            return Err(Error::Config(
                "refresh runs once per Updater: make a new Updater to refresh again".into(),
            ));
        }
        self.refreshed = true;
        self.load_root()?;
        self.load_timestamp()?;
        self.load_snapshot()?;
        self.load_targets("targets", "root")?;
        Ok(())
    }

    /// Finds `target_path` with the pre-order depth-first delegation walk,
    /// loading only the roles on the way (refreshing first if needed).
    /// `Ok(None)` when no trusted role lists it.
    pub fn get_targetinfo(&mut self, target_path: &str) -> Result<Option<TargetInfo>, Error> {
        if !self.refreshed {
            self.refresh()?;
        }
        let top = self
            .trusted
            .targets("targets")
            .cloned()
            .ok_or_else(|| Error::Config("top-level targets is not trusted".into()))?;
        let max_roles = self.config.max_delegations.saturating_add(1);
        let mut loader = WalkLoader {
            updater: self,
            error: None,
        };
        match find_target(&top, target_path, max_roles, &mut loader) {
            Ok(found) => Ok(found.map(|f| TargetInfo {
                path: target_path.to_string(),
                file: f.file,
                role: f.role,
            })),
            Err(e) => Err(loader.error.take().unwrap_or(Error::Invalid {
                role: "targets".into(),
                source: Box::new(e),
            })),
        }
    }

    /// As [`Updater::get_targetinfo`], but a missing target is an error.
    pub fn require_targetinfo(&mut self, target_path: &str) -> Result<TargetInfo, Error> {
        self.get_targetinfo(target_path)?
            .ok_or_else(|| Error::TargetNotFound {
                path: target_path.to_string(),
            })
    }

    /// Where [`Updater::download_target`] puts a target by default:
    /// `target_dir/{percent-encoded path}` (python-tuf's naming).
    pub fn target_file_path(&self, info: &TargetInfo) -> Result<PathBuf, Error> {
        let dir = self.config.target_dir.as_ref().ok_or_else(|| {
            Error::Config("no target directory configured and no file path given".into())
        })?;
        Ok(dir.join(role_name::encode(&info.path)))
    }

    /// The local file for `info` if it exists with the signed length and
    /// hashes, so it need not be downloaded again.
    pub fn find_cached_target(
        &self,
        info: &TargetInfo,
        filepath: Option<&Path>,
    ) -> Option<PathBuf> {
        let path = match filepath {
            Some(p) => p.to_path_buf(),
            None => self.target_file_path(info).ok()?,
        };
        let algorithms = algorithms(info).ok()?;
        let file = File::open(&path).ok()?;
        let (length, hashes) = hash_reader(std::io::BufReader::new(file), &algorithms).ok()?;
        let matches = length == info.file.length
            && info.file.hashes.iter().all(|(name, want)| {
                hashes
                    .get(name)
                    .is_some_and(|h| h.eq_ignore_ascii_case(want))
            });
        matches.then_some(path)
    }

    /// The URL a target is fetched from: with consistent snapshots (and
    /// `prefix_targets_with_hash`), `base/dir/HASH.basename` with the first
    /// listed hash.
    pub fn target_url(&self, info: &TargetInfo, base_url: Option<&str>) -> Result<String, Error> {
        let base = match base_url.or(self.config.target_base_url.as_deref()) {
            Some(b) => ensure_trailing_slash(b),
            None => {
                return Err(Error::Config(
                    "no target base URL configured or given".into(),
                ));
            }
        };
        let mut path = info.path.clone();
        if self.trusted.root().consistent_snapshot && self.config.prefix_targets_with_hash {
            let hash = info
                .file
                .hashes
                .values()
                .next()
                .ok_or_else(|| Error::Invalid {
                    role: info.role.clone(),
                    source: Box::new(tufa_metadata::Error::Malformed {
                        what: info.path.clone(),
                        reason: "no hashes listed".into(),
                    }),
                })?;
            path = match path.rsplit_once('/') {
                Some((dir, base)) => format!("{dir}/{hash}.{base}"),
                None => format!("{hash}.{path}"),
            };
        }
        Ok(format!("{base}{}", utf8_percent_encode(&path, TARGET_PATH)))
    }

    /// Downloads a target (at most its signed length), checks its length
    /// and every listed hash, and only then moves it into place atomically.
    /// Returns the file's path. A file already there with the signed length
    /// and hashes is kept and not fetched again.
    pub fn download_target(
        &self,
        info: &TargetInfo,
        filepath: Option<&Path>,
        target_base_url: Option<&str>,
    ) -> Result<PathBuf, Error> {
        let path = match filepath {
            Some(p) => p.to_path_buf(),
            None => self.target_file_path(info)?,
        };
        if let Some(cached) = self.find_cached_target(info, Some(&path)) {
            return Ok(cached);
        }
        let url = self.target_url(info, target_base_url)?;
        let algorithms = algorithms(info)?;
        let dir = parent_dir(&path);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(|e| Error::io(&dir, e))?;
        let hasher = {
            let mut sink = HashingWriter {
                out: BufWriter::new(tmp.as_file_mut()),
                hasher: MultiHasher::new(&algorithms),
            };
            self.fetcher.fetch(&url, info.file.length, &mut sink)?;
            sink.out.flush().map_err(|e| Error::io(&path, e))?;
            sink.hasher
        };
        let (length, hashes) = hasher.finish();
        let what = format!("target {} from {url}", info.path);
        if length != info.file.length {
            return Err(Error::LengthOrHash {
                what,
                source: Box::new(tufa_metadata::Error::LengthMismatch {
                    what: info.path.clone(),
                    expected: info.file.length,
                    found: length,
                }),
            });
        }
        for (name, want) in &info.file.hashes {
            let found = hashes.get(name).cloned().unwrap_or_default();
            if !found.eq_ignore_ascii_case(want) {
                return Err(Error::LengthOrHash {
                    what,
                    source: Box::new(tufa_metadata::Error::HashMismatch {
                        what: info.path.clone(),
                        algorithm: name.clone(),
                        expected: want.clone(),
                        found,
                    }),
                });
            }
        }
        if self.config.sync_writes {
            tmp.as_file().sync_all().map_err(|e| Error::io(&path, e))?;
        }
        tmp.persist(&path).map_err(|e| Error::io(&path, e.error))?;
        if self.config.sync_writes {
            sync_dir(&dir);
        }
        Ok(path)
    }

    // ---- 5.3 root ----

    fn load_root(&mut self) -> Result<(), Error> {
        let start = self.trusted.root().clone();
        let first = start.version.saturating_add(1);
        let last = start.version.saturating_add(self.config.max_root_rotations);
        for next in first..=last {
            // A root verified in an earlier run spares the download; it is
            // verified again all the same.
            let local = self
                .dir()
                .join(ROOT_HISTORY)
                .join(format!("{next}.root.json"));
            if let Ok(bytes) = read_local(&local, self.config.root_max_length)
                && self.trusted.update_root(&bytes).is_ok()
            {
                self.root_bytes = bytes;
                continue;
            }
            let url = self.metadata_url("root", Some(next));
            let bytes = match fetch_bytes(self.fetcher.as_ref(), &url, self.config.root_max_length)
            {
                Ok(bytes) => bytes,
                Err(e) if e.is_not_found() => break,
                Err(e) => return Err(e),
            };
            self.trusted.update_root(&bytes)?;
            self.persist_root_history(next, &bytes, true)?;
            write_atomic(&self.local_path("root"), &bytes)?;
            self.root_bytes = bytes;
        }
        // Whatever the anchor was, root.json is now the newest trusted root
        // (made durable when it was downloaded, above).
        let root_json = self.dir().join(role_name::file_name("root"));
        if !same_contents(&root_json, &self.root_bytes) {
            write_file(&root_json, &self.root_bytes, self.config.sync_writes)?;
        }
        self.trusted.check_final_root()?;
        let new = self.trusted.root();
        if role_keys_changed(&start, new, "timestamp") || role_keys_changed(&start, new, "snapshot")
        {
            // 5.3.11: forget versions an attacker with the old keys may have
            // fast-forwarded.
            self.remove_local("timestamp")?;
            self.remove_local("snapshot")?;
        }
        Ok(())
    }

    // ---- 5.4 timestamp ----

    fn load_timestamp(&mut self) -> Result<(), Error> {
        let limit = self.config.timestamp_max_length;
        if let Ok(bytes) = read_local(&self.local_path("timestamp"), limit) {
            // Invalid or expired local copies are fine: the download decides.
            let _ = self.trusted.update_timestamp(&bytes);
        }
        let url = self.metadata_url("timestamp", None);
        let bytes = fetch_bytes(self.fetcher.as_ref(), &url, limit)?;
        match self.trusted.update_timestamp(&bytes)? {
            TimestampUpdate::Unchanged => {
                // The trusted timestamp stays; it must still be unexpired.
                self.trusted.check_final_timestamp()?;
                Ok(())
            }
            TimestampUpdate::Updated => self.persist("timestamp", &bytes),
        }
    }

    // ---- 5.5 snapshot ----

    fn load_snapshot(&mut self) -> Result<(), Error> {
        let timestamp = self.trusted.check_final_timestamp()?;
        let meta = timestamp
            .snapshot_meta()
            .map_err(|source| Error::Invalid {
                role: "timestamp".into(),
                source: Box::new(source),
            })?
            .clone();
        let limit = meta.length.unwrap_or(self.config.snapshot_max_length);
        if let Ok(bytes) = read_local(&self.local_path("snapshot"), limit)
            && self.trusted.update_snapshot(&bytes, true).is_ok()
        {
            return Ok(());
        }
        let version = self
            .trusted
            .root()
            .consistent_snapshot
            .then_some(meta.version);
        let url = self.metadata_url("snapshot", version);
        let bytes = fetch_bytes(self.fetcher.as_ref(), &url, limit)?;
        self.trusted.update_snapshot(&bytes, false)?;
        self.persist("snapshot", &bytes)
    }

    // ---- 5.6 targets and delegated roles ----

    fn load_targets(&mut self, role: &str, delegator: &str) -> Result<Targets, Error> {
        if self.trusted.contains(role, delegator)
            && let Some(t) = self.trusted.targets(role)
        {
            return Ok(t.clone());
        }
        let snapshot = self.trusted.check_final_snapshot()?;
        let meta = snapshot
            .role_meta(role)
            .ok_or_else(|| Error::NotInSnapshot {
                role: role.to_string(),
                snapshot_version: snapshot.version,
            })?
            .clone();
        let limit = meta.length.unwrap_or(self.config.targets_max_length);
        if let Ok(bytes) = read_local(&self.local_path(role), limit)
            && let Ok(t) = self
                .trusted
                .update_delegated_targets(&bytes, role, delegator)
        {
            return Ok(t);
        }
        let version = self
            .trusted
            .root()
            .consistent_snapshot
            .then_some(meta.version);
        let url = self.metadata_url(role, version);
        let bytes = fetch_bytes(self.fetcher.as_ref(), &url, limit)?;
        let t = self
            .trusted
            .update_delegated_targets(&bytes, role, delegator)?;
        self.persist(role, &bytes)?;
        Ok(t)
    }

    // ---- files and URLs ----

    fn dir(&self) -> &Path {
        &self.config.metadata_dir
    }

    fn local_path(&self, role: &str) -> PathBuf {
        self.dir().join(role_name::file_name(role))
    }

    fn metadata_url(&self, role: &str, version: Option<u64>) -> String {
        let base = ensure_trailing_slash(&self.config.metadata_base_url);
        match version {
            Some(v) => format!("{base}{}", role_name::versioned_file_name(v, role)),
            None => format!("{base}{}", role_name::file_name(role)),
        }
    }

    /// Persists a non-root role: atomically, durably only with `sync_writes`.
    fn persist(&self, role: &str, bytes: &[u8]) -> Result<(), Error> {
        write_file(&self.local_path(role), bytes, self.config.sync_writes)
    }

    /// Keeps a verified root as `root_history/{version}.root.json`; a file
    /// already there with these bytes is left alone.
    fn persist_root_history(&self, version: u64, bytes: &[u8], durable: bool) -> Result<(), Error> {
        let dir = self.dir().join(ROOT_HISTORY);
        let path = dir.join(format!("{version}.root.json"));
        if same_contents(&path, bytes) {
            return Ok(());
        }
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        write_file(&path, bytes, durable || self.config.sync_writes)
    }

    fn remove_local(&self, role: &str) -> Result<(), Error> {
        let path = self.local_path(role);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(path, e)),
        }
    }
}

/// Loads delegated roles for the walk, keeping the updater's own error
/// (the walk's trait speaks `tufa_metadata::Error` only).
struct WalkLoader<'a> {
    updater: &'a mut Updater,
    error: Option<Error>,
}

impl RoleLoader for WalkLoader<'_> {
    fn load(
        &mut self,
        role: &str,
        delegator: &str,
        _parent: &Targets,
    ) -> Result<Targets, tufa_metadata::Error> {
        self.updater.load_targets(role, delegator).map_err(|e| {
            let message = e.to_string();
            self.error = Some(e);
            tufa_metadata::Error::Malformed {
                what: role.to_string(),
                reason: message,
            }
        })
    }
}

/// The hash algorithms a target lists; an unknown one is an error (an
/// attacker could otherwise list only algorithms this client skips).
fn algorithms(info: &TargetInfo) -> Result<Vec<HashAlgorithm>, Error> {
    if info.file.hashes.is_empty() {
        return Err(Error::Invalid {
            role: info.role.clone(),
            source: Box::new(tufa_metadata::Error::Malformed {
                what: info.path.clone(),
                reason: "no hashes listed".into(),
            }),
        });
    }
    info.file
        .hashes
        .keys()
        .map(|name| {
            HashAlgorithm::from_name(name).map_err(|source| Error::LengthOrHash {
                what: format!("target {}", info.path),
                source: Box::new(source),
            })
        })
        .collect()
}

struct HashingWriter<W: Write> {
    out: W,
    hasher: MultiHasher,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Reads a local file of at most `limit` bytes.
fn read_local(path: &Path, limit: u64) -> Result<Vec<u8>, Error> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    match read_bounded(file, limit) {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(limit)) => Err(Error::LengthExceeded {
            url: path.display().to_string(),
            limit,
        }),
        Err(e) => Err(Error::io(path, e)),
    }
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Writes `bytes` to `path` so that a crash leaves either the old file or
/// the new one: a temporary file beside it, fsync, rename, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    write_file(path, bytes, true)
}

/// A temporary file beside `path`, renamed over it: readers see the old
/// file or the new one, never a part. With `durable`, the file is fsynced
/// before the rename and the directory after it.
fn write_file(path: &Path, bytes: &[u8], durable: bool) -> Result<(), Error> {
    let dir = parent_dir(path);
    let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(|e| Error::io(&dir, e))?;
    tmp.write_all(bytes).map_err(|e| Error::io(tmp.path(), e))?;
    if durable {
        tmp.as_file()
            .sync_all()
            .map_err(|e| Error::io(tmp.path(), e))?;
    }
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    if durable {
        sync_dir(&dir);
    }
    Ok(())
}

/// Whether the file at `path` holds exactly `bytes` (false if unreadable).
fn same_contents(path: &Path, bytes: &[u8]) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.len() == bytes.len() as u64)
        && std::fs::read(path).is_ok_and(|b| b == bytes)
}

/// Makes a rename durable. Best effort: not every platform can open a
/// directory for syncing.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests;
