//! Where published metadata lives: a directory (the default), written so
//! that a reader never sees a half state and a crash never publishes one.
//!
//! Every file but `timestamp.json` is written once as `{version}.{role}.json`
//! under a temporary name, made durable, then renamed into place; the caller
//! makes a publication's files durable ([`DirectoryStorage::sync_files`])
//! before it writes the snapshot and the timestamp that name them.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::error::{Error, Result};

/// Above this many files (a bootstrap, or re-signing every bin), one
/// `syncfs` replaces per-file fsyncs. Ordinary publications keep per-file
/// fsyncs: syncfs also waits for unrelated writes on the same filesystem.
const SYNCFS_THRESHOLD: usize = 2048;

/// A metadata directory.
#[derive(Debug, Clone)]
pub struct DirectoryStorage {
    dir: PathBuf,
}

impl DirectoryStorage {
    /// Opens (and creates) the directory.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| Error::storage(&dir, e))?;
        Ok(DirectoryStorage { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of a file name in the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes `bytes` as `name` through a temporary file and a rename. Not yet
    /// durable: call [`DirectoryStorage::sync_files`] before naming it elsewhere.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let path = self.dir.join(name);
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
