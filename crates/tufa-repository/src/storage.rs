//! Where published metadata lives: a directory (the default) or
//! S3-compatible object storage, written so that a reader never sees a half
//! state and a crash never publishes one.
//!
//! Every file but `timestamp.json` is written once as `{version}.{role}.json`,
//! and appears under its name only complete: a reader (a client guessing
//! ahead, a mirror copying the directory) sees no file or the whole file.
//! Targets roles are written to an unnamed temporary file (`O_TMPFILE`)
//! and linked into place, or where the filesystem cannot do that, written
//! under a temporary name and renamed; they are made durable together
//! ([`DirectoryStorage::sync_files`]) before the snapshot that names them
//! is written. Snapshots and roots go through a temporary file and a hard
//! link, which never replaces; `timestamp.json` through a temporary file
//! and a rename, so readers see the old or the new one.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use rayon::prelude::*;

use crate::error::{Error, Result};

/// Object uploads in flight at once during a publication.
const OBJECT_PUT_CONCURRENCY: usize = 32;

/// Where the published metadata lives.
#[derive(Debug, Clone)]
pub enum Storage {
    /// A directory (the embedded default: `DATA_DIR/metadata`).
    Directory(DirectoryStorage),
    /// S3-compatible object storage.
    Object(ObjectStorage),
}

impl Storage {
    /// Opens storage from `--storage`: `s3://BUCKET[/PREFIX][?endpoint=URL&region=R&allow_http=true]`
    /// (credentials from the usual AWS_* variables), `file:///DIR` or a
    /// directory path; `None` means `DATA_DIR/metadata`.
    pub fn open(spec: Option<&str>, data_dir: &Path) -> Result<Storage> {
        match spec {
            None | Some("") => Ok(Storage::Directory(DirectoryStorage::open(
                data_dir.join("metadata"),
            )?)),
            Some(s) if s.starts_with("s3://") => Ok(Storage::Object(ObjectStorage::open_s3(s)?)),
            Some(s) => {
                let dir = s.strip_prefix("file://").unwrap_or(s);
                Ok(Storage::Directory(DirectoryStorage::open(dir)?))
            }
        }
    }

    /// The directory, when storage is one.
    pub fn directory(&self) -> Option<&DirectoryStorage> {
        match self {
            Storage::Directory(d) => Some(d),
            Storage::Object(_) => None,
        }
    }

    /// Where storage is, for messages (no credentials).
    pub fn describe(&self) -> String {
        match self {
            Storage::Directory(d) => d.dir().display().to_string(),
            Storage::Object(o) => o.describe(),
        }
    }

    /// Reads a published file, `None` when it does not exist.
    pub async fn read(&self, name: &str) -> Result<Option<Vec<u8>>> {
        match self {
            Storage::Directory(d) => {
                let d = d.clone();
                let name = name.to_string();
                tokio::task::spawn_blocking(move || d.read(&name))
                    .await
                    .map_err(|e| Error::Corrupt(format!("storage task failed: {e}")))?
            }
            Storage::Object(o) => o.read(name).await,
        }
    }

    /// Whether a published file exists.
    pub async fn exists(&self, name: &str) -> Result<bool> {
        match self {
            Storage::Directory(d) => Ok(d.path(name).is_file()),
            Storage::Object(o) => o.exists(name).await,
        }
    }

    /// Uploads files that [`Storage::write_or_keep`] kept for the object
    /// store (a directory wrote them already); then all of `names` are made
    /// durable. Nothing may name them before this returns.
    pub async fn finish_files(
        &self,
        kept: Vec<(String, Vec<u8>)>,
        names: Vec<String>,
    ) -> Result<()> {
        match self {
            Storage::Directory(d) => {
                let d = d.clone();
                tokio::task::spawn_blocking(move || d.sync_files(&names))
                    .await
                    .map_err(|e| Error::Corrupt(format!("sync task failed: {e}")))?
            }
            // An object store's PUT is durable when it answers.
            Storage::Object(o) => o.put_many(kept).await,
        }
    }

    /// Called on a signing thread: a directory writes the file now (not yet
    /// durable); an object store gets it back to upload with the others.
    pub fn write_or_keep(&self, name: &str, bytes: Vec<u8>) -> Result<Option<(String, Vec<u8>)>> {
        match self {
            Storage::Directory(d) => d.write(name, &bytes).map(|()| None),
            Storage::Object(_) => Ok(Some((name.to_string(), bytes))),
        }
    }

    /// Writes a file durably, replacing any earlier one: only for `timestamp.json`.
    pub async fn write_durable(&self, name: &str, bytes: Vec<u8>) -> Result<()> {
        match self {
            Storage::Directory(d) => {
                let d = d.clone();
                let name = name.to_string();
                tokio::task::spawn_blocking(move || d.write_durable(&name, &bytes))
                    .await
                    .map_err(|e| Error::Corrupt(format!("storage task failed: {e}")))?
            }
            Storage::Object(o) => o.put(name, bytes, PutMode::Overwrite).await,
        }
    }

    /// Writes a file durably that must never change once published (a
    /// snapshot or a root): refused if a different file of that name exists;
    /// the same bytes again are fine (a publication retried after a crash).
    pub async fn write_once(&self, name: &str, bytes: Vec<u8>) -> Result<()> {
        match self {
            Storage::Directory(d) => {
                let d = d.clone();
                let name = name.to_string();
                tokio::task::spawn_blocking(move || d.write_once(&name, &bytes))
                    .await
                    .map_err(|e| Error::Corrupt(format!("storage task failed: {e}")))?
            }
            Storage::Object(o) => match o.put(name, bytes.clone(), PutMode::Create).await {
                Err(Error::AlreadyPublished { .. }) => {
                    if o.read(name).await?.as_deref() == Some(&bytes[..]) {
                        Ok(())
                    } else {
                        Err(Error::AlreadyPublished {
                            name: name.to_string(),
                        })
                    }
                }
                other => other,
            },
        }
    }
}

/// Published metadata in an S3-compatible bucket, under a prefix.
#[derive(Debug, Clone)]
pub struct ObjectStorage {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    described: String,
}

impl ObjectStorage {
    /// Opens `s3://BUCKET[/PREFIX][?endpoint=URL&region=R&allow_http=true&conditional_put=etag|disabled]`.
    pub fn open_s3(spec: &str) -> Result<ObjectStorage> {
        let invalid = |reason: String| Error::invalid("storage", reason);
        let url = url::Url::parse(spec).map_err(|e| invalid(format!("{spec:?}: {e}")))?;
        let bucket = url
            .host_str()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| invalid(format!("{spec:?} names no bucket")))?;
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        for (key, value) in url.query_pairs() {
            builder = match key.as_ref() {
                "endpoint" => {
                    let http = value.starts_with("http://");
                    builder.with_endpoint(value.as_ref()).with_allow_http(http)
                }
                "region" => builder.with_region(value.as_ref()),
                "allow_http" => builder.with_allow_http(value == "true"),
                "conditional_put" => {
                    match value.as_ref() {
                        "etag" => builder
                            .with_conditional_put(object_store::aws::S3ConditionalPut::ETagMatch),
                        "disabled" => builder
                            .with_conditional_put(object_store::aws::S3ConditionalPut::Disabled),
                        other => {
                            return Err(invalid(format!(
                                "conditional_put must be etag or disabled, not {other:?}"
                            )));
                        }
                    }
                }
                other => {
                    return Err(invalid(format!(
                        "unknown option {other:?} (endpoint, region, allow_http, conditional_put)"
                    )));
                }
            };
        }
        let store = builder
            .build()
            .map_err(|e| invalid(format!("{}: {e}", Self::describe_url(&url))))?;
        let prefix = url.path().trim_matches('/').to_string();
        Ok(ObjectStorage {
            store: Arc::new(store),
            prefix,
            described: Self::describe_url(&url),
        })
    }

    fn describe_url(url: &url::Url) -> String {
        let mut shown = url.clone();
        shown.set_query(None);
        let _ = shown.set_password(None);
        shown.to_string()
    }

    pub fn describe(&self) -> String {
        self.described.clone()
    }

    fn location(&self, name: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(name)
        } else {
            ObjectPath::from(format!("{}/{name}", self.prefix))
        }
    }

    fn error(&self, name: &str, e: object_store::Error) -> Error {
        match e {
            object_store::Error::AlreadyExists { .. }
            | object_store::Error::Precondition { .. } => Error::AlreadyPublished {
                name: name.to_string(),
            },
            e => Error::ObjectStorage {
                name: format!("{}/{name}", self.described.trim_end_matches('/')),
                reason: e.to_string(),
            },
        }
    }

    async fn read(&self, name: &str) -> Result<Option<Vec<u8>>> {
        match self.store.get(&self.location(name)).await {
            Ok(result) => Ok(Some(
                result
                    .bytes()
                    .await
                    .map_err(|e| self.error(name, e))?
                    .to_vec(),
            )),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error(name, e)),
        }
    }

    async fn exists(&self, name: &str) -> Result<bool> {
        match self.store.head(&self.location(name)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.error(name, e)),
        }
    }

    async fn put(&self, name: &str, bytes: Vec<u8>, mode: PutMode) -> Result<()> {
        let options = PutOptions {
            mode,
            ..PutOptions::default()
        };
        self.store
            .put_opts(&self.location(name), PutPayload::from(bytes), options)
            .await
            .map(|_| ())
            .map_err(|e| self.error(name, e))
    }

    async fn put_many(&self, files: Vec<(String, Vec<u8>)>) -> Result<()> {
        use futures_util::stream::{StreamExt, TryStreamExt};
        futures_util::stream::iter(files)
            .map(|(name, bytes)| async move { self.put(&name, bytes, PutMode::Overwrite).await })
            .buffer_unordered(OBJECT_PUT_CONCURRENCY)
            .try_collect::<()>()
            .await
    }
}

/// Above this many files (a bootstrap, or re-signing every bin), one
/// `syncfs` replaces per-file fsyncs. Ordinary publications keep per-file
/// fsyncs: syncfs also waits for unrelated writes on the same filesystem.
const SYNCFS_THRESHOLD: usize = 128;

/// A metadata directory.
#[derive(Debug, Clone)]
pub struct DirectoryStorage {
    dir: PathBuf,
    /// Whether unnamed temporary files work here; cleared at the first
    /// refusal, and every write after that takes a temporary name.
    unnamed_files: Arc<std::sync::atomic::AtomicBool>,
}

/// Why an unnamed temporary file could not be linked into place.
enum UnnamedWrite {
    /// The filesystem (or a missing `/proc`) does not allow it: use a name.
    Unsupported,
    Failed(std::io::Error),
}

impl DirectoryStorage {
    /// Opens (and creates) the directory.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| Error::storage(&dir, e))?;
        Ok(DirectoryStorage {
            dir,
            unnamed_files: Arc::new(std::sync::atomic::AtomicBool::new(cfg!(
                target_os = "linux"
            ))),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of a file name in the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes `bytes` as `name`, which appears only complete. Not yet
    /// durable: call [`DirectoryStorage::sync_files`] before naming it
    /// elsewhere. For a version no snapshot names yet: a file of that name
    /// (left by a publication that crashed before its snapshot) is replaced.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<()> {
        use std::sync::atomic::Ordering;
        let path = self.dir.join(name);
        if self.unnamed_files.load(Ordering::Relaxed) {
            match self.write_unnamed(&path, bytes) {
                Ok(()) => return Ok(()),
                Err(UnnamedWrite::Failed(e)) => return Err(Error::storage(&path, e)),
                Err(UnnamedWrite::Unsupported) => {
                    self.unnamed_files.store(false, Ordering::Relaxed);
                }
            }
        }
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| Error::storage(&tmp, e))?;
        file.write_all(bytes).map_err(|e| Error::storage(&tmp, e))?;
        drop(file);
        fs::rename(&tmp, &path).map_err(|e| Error::storage(&path, e))
    }

    /// Linux: an `O_TMPFILE` file in the directory, written, then linked as
    /// `path`. It costs one directory entry where a temporary name and a
    /// rename cost three changes to the directory (a rename per file was a
    /// fifth of a large publication's CPU time).
    #[cfg(target_os = "linux")]
    fn write_unnamed(&self, path: &Path, bytes: &[u8]) -> std::result::Result<(), UnnamedWrite> {
        use rustix::fs::{AtFlags, CWD, Mode, OFlags};
        use rustix::io::Errno;
        use std::os::fd::AsRawFd;
        // What a filesystem without O_TMPFILE answers (a missing directory
        // is ENOENT, a real error).
        let fd = rustix::fs::open(
            &self.dir,
            OFlags::TMPFILE | OFlags::WRONLY | OFlags::CLOEXEC,
            Mode::from_bits_truncate(0o666),
        )
        .map_err(|e| match e {
            Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL => UnnamedWrite::Unsupported,
            e => UnnamedWrite::Failed(e.into()),
        })?;
        let mut file = File::from(fd);
        file.write_all(bytes).map_err(UnnamedWrite::Failed)?;
        // Linking an unnamed file by its descriptor needs /proc (or a
        // capability, for AT_EMPTY_PATH).
        let source = format!("/proc/self/fd/{}", file.as_raw_fd());
        let link = || rustix::fs::linkat(CWD, &source, CWD, path, AtFlags::SYMLINK_FOLLOW);
        match link() {
            Ok(()) => Ok(()),
            Err(Errno::EXIST) => {
                fs::remove_file(path).map_err(UnnamedWrite::Failed)?;
                link().map_err(|e| UnnamedWrite::Failed(e.into()))
            }
            // No /proc, or linking refused by policy.
            Err(Errno::NOENT | Errno::PERM | Errno::ACCESS) => Err(UnnamedWrite::Unsupported),
            Err(e) => Err(UnnamedWrite::Failed(e.into())),
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn write_unnamed(&self, _: &Path, _: &[u8]) -> std::result::Result<(), UnnamedWrite> {
        Err(UnnamedWrite::Unsupported)
    }

    /// Writes a file that must never change once written: durable, and
    /// refused if a different file of that name exists (see [`Storage::write_once`]).
    pub fn write_once(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let path = self.dir.join(name);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let mut file = File::create(&tmp).map_err(|e| Error::storage(&tmp, e))?;
        file.write_all(bytes).map_err(|e| Error::storage(&tmp, e))?;
        file.sync_all().map_err(|e| Error::storage(&tmp, e))?;
        drop(file);
        // A hard link, unlike a rename, fails rather than replace.
        let linked = fs::hard_link(&tmp, &path);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => self.sync_dir(),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if fs::read(&path).map_err(|e| Error::storage(&path, e))? == bytes {
                    Ok(())
                } else {
                    Err(Error::AlreadyPublished {
                        name: name.to_string(),
                    })
                }
            }
            Err(e) => Err(Error::storage(&path, e)),
        }
    }

    /// Writes and fsyncs one file, then the directory: for the timestamp,
    /// the last file of a publication.
    pub fn write_durable(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let path = self.dir.join(name);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let mut file = File::create(&tmp).map_err(|e| Error::storage(&tmp, e))?;
        file.write_all(bytes).map_err(|e| Error::storage(&tmp, e))?;
        file.sync_all().map_err(|e| Error::storage(&tmp, e))?;
        drop(file);
        fs::rename(&tmp, &path).map_err(|e| Error::storage(&path, e))?;
        self.sync_dir()
    }

    /// Makes files written with [`DirectoryStorage::write`] durable, in parallel,
    /// then the directory entries that name them.
    pub fn sync_files(&self, names: &[String]) -> Result<()> {
        if names.len() > SYNCFS_THRESHOLD {
            // One syncfs costs about what a handful of fsyncs do (DESIGN.md:
            // 8 ms against 136 us a file), so for a large publication it
            // is far cheaper than syncing 16,384 files one by one.
            let dir = File::open(&self.dir).map_err(|e| Error::storage(&self.dir, e))?;
            return rustix::fs::syncfs(&dir).map_err(|e| Error::storage(&self.dir, e.into()));
        }
        names.par_iter().try_for_each(|name| {
            let path = self.dir.join(name);
            File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(|e| Error::storage(&path, e))
        })?;
        self.sync_dir()
    }

    fn sync_dir(&self) -> Result<()> {
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::storage(&self.dir, e))
    }

    /// Reads a file, `None` when it does not exist.
    pub fn read(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let path = self.dir.join(name);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::storage(&path, e)),
        }
    }

    /// True when `name` is a file tufa publishes (so it may be served).
    pub fn is_metadata_name(name: &str) -> bool {
        name.ends_with(".json")
            && !name.starts_with('.')
            && !name.contains('/')
            && !name.contains('\\')
            && name.len() <= 255
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Both ways of writing a targets role: the file appears complete,
    /// a leftover of a crashed publication is replaced, no temporary name
    /// is left behind.
    #[test]
    fn a_written_file_replaces_a_leftover_and_leaves_nothing_else() {
        for unnamed in [true, false] {
            let tmp = tempfile::tempdir().unwrap();
            let storage = DirectoryStorage::open(tmp.path()).unwrap();
            storage
                .unnamed_files
                .store(unnamed, std::sync::atomic::Ordering::Relaxed);
            fs::write(storage.path("3.bins-0a.json"), b"{\"half").unwrap();
            storage.write("3.bins-0a.json", b"{\"whole\":1}").unwrap();
            storage.write("3.bins-0b.json", b"{}").unwrap();
            assert_eq!(
                fs::read(storage.path("3.bins-0a.json")).unwrap(),
                b"{\"whole\":1}"
            );
            assert_eq!(names(tmp.path()), ["3.bins-0a.json", "3.bins-0b.json"]);
            storage
                .sync_files(&["3.bins-0a.json".into(), "3.bins-0b.json".into()])
                .unwrap();
            if cfg!(target_os = "linux") && unnamed {
                // This filesystem can do it: no fallback was needed.
                assert!(
                    storage
                        .unnamed_files
                        .load(std::sync::atomic::Ordering::Relaxed)
                );
            }
        }
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let storage = DirectoryStorage::open(tmp.path().join("m")).unwrap();
        fs::remove_dir(tmp.path().join("m")).unwrap();
        match storage.write("1.bins-0.json", b"{}") {
            Err(Error::Storage { path, .. }) => assert!(path.ends_with("1.bins-0.json"), "{path}"),
            other => panic!("expected a storage error, got {other:?}"),
        }
    }
}
