//! Bulk import of an existing index's files before go-live: RSTUF's CSV
//! (`path;size;hash-type;hash`, no header), every row checked, everything
//! recorded in one transaction as one change, so the publisher turns it into
//! one publication.
//!
//! The CSV is streamed: a reader thread parses and checks rows and hands
//! batches to the database writer, which inserts them with multi-row
//! `INSERT OR IGNORE` statements (and an `UPDATE ... FROM (VALUES ...)` for
//! the rows of a batch that were registered before) inside a single
//! `BEGIN IMMEDIATE` transaction. A bad row (or a path listed twice with different info) rolls
//! everything back and names `file:line`. Memory stays small: a batch in
//! flight plus 16 bytes of path digest per row for the duplicate check.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Connection, Row, SqliteConnection};
use tufa_metadata::{HashAlgorithm, SuccinctRoles};

use crate::error::{Error, Result};
use crate::publisher::BINS_PREFIX;
use crate::repository::Repository;
use crate::settings::{RepositorySettings, SETTINGS_KEY};
use crate::store::{Engine, SAVE_PUBLISHED_INFO};
use crate::task::new_task_id;
use crate::validate;

/// Rows per `INSERT` statement (3 bound values each, well under SQLite's
/// 32766-variable limit).
pub const ROWS_PER_STATEMENT: usize = 2000;

/// The task kind an import is recorded under.
pub const IMPORT_TASK_KIND: &str = "import_artifacts";

/// Counters the caller may poll while an import runs (for a progress bar).
#[derive(Debug, Default)]
pub struct ImportProgress {
    /// CSV bytes read so far, over all files.
    pub bytes: AtomicU64,
    /// Rows read so far, over all files.
    pub rows: AtomicU64,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Data rows read (blank lines not counted).
    pub rows: u64,
    /// Distinct paths among them.
    pub artifacts: u64,
    /// Rows repeating an earlier row of the import exactly (skipped).
    pub duplicates: u64,
    /// Artifacts new or with new info: what the publication will sign.
    pub changed: u64,
    /// Bins holding at least one imported artifact.
    pub bins: usize,
    /// The task that succeeds once the import is published; `None` when
    /// nothing changed (nothing to publish).
    pub task_id: Option<String>,
    /// The change sequence number of the import.
    pub seq: i64,
    /// Time spent reading, checking and committing.
    pub elapsed: Duration,
}

/// One checked CSV row, ready to insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRow {
    pub path: String,
    pub bin: u32,
    /// The target file info as stored (`TargetFile` JSON).
    pub info: String,
}

/// The stored info of a target file with one hash: the bytes
/// `serde_json::to_string(&TargetFile)` gives, without building one.
fn info_json(length: u64, algorithm: &str, hex_digest: &str) -> String {
    format!(r#"{{"length":{length},"hashes":{{"{algorithm}":"{hex_digest}"}}}}"#)
}

/// Parses and checks one CSV line (without its line end). `Ok(None)` for a
/// blank line. Errors are reasons, without the location.
pub fn parse_row(line: &str, succinct: &SuccinctRoles) -> Result<Option<ImportRow>, String> {
    if line.trim().is_empty() {
        return Ok(None);
    }
    let mut fields = line.split(';');
    let (Some(path), Some(size), Some(algorithm), Some(digest), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(format!(
            "expected 4 fields `path;size;hash-type;hash`, got {}",
            line.split(';').count()
        ));
    };
    validate::target_path("path", path).map_err(|e| match e {
        Error::InvalidRequest { reason, .. } => format!("path {reason}"),
        other => other.to_string(),
    })?;
    if size.is_empty() || !size.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "size must be a non-negative integer, got {:?}",
            truncate(size)
        ));
    }
    let length = u64::from_str(size).map_err(|_| format!("size {size} is too large"))?;
    let hash = HashAlgorithm::from_name(algorithm).map_err(|_| {
        format!(
            "unknown hash type {:?} (use sha256, sha512 or blake2b-256)",
            truncate(algorithm)
        )
    })?;
    let want = hash.digest_len() * 2;
    if digest.len() != want || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "{algorithm} hash must be {want} hex digits, got {:?}",
            truncate(digest)
        ));
    }
    let info = info_json(length, algorithm, &digest.to_ascii_lowercase());
    Ok(Some(ImportRow {
        path: path.to_string(),
        bin: succinct.bin_for_target(path) as u32,
        info,
    }))
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

/// The succinct bins of a repository's settings.
pub fn succinct_roles(settings: &RepositorySettings) -> SuccinctRoles {
    SuccinctRoles {
        keyids: vec![settings.online_keyid.clone()],
        threshold: 1,
        bit_length: settings.bit_length(),
        name_prefix: BINS_PREFIX.into(),
        unrecognized: serde_json::Map::new(),
    }
}

/// What the reader thread hands the writer.
enum Batch {
    Rows(Vec<ImportRow>),
    Done(ReadStats),
}

#[derive(Debug, Default)]
struct ReadStats {
    rows: u64,
    artifacts: u64,
    duplicates: u64,
    bins: usize,
}

/// First sighting of a path: where, and a digest of its info.
struct Seen {
    file: u32,
    line: u64,
    info: u64,
}

fn location(file: &Path, line: u64) -> String {
    format!("{}:{line}", file.display())
}

/// Reads every file, checks every row, and sends batches of rows. Stops at
/// the first error (returned) or when the receiver is gone.
fn read_files(
    files: &[PathBuf],
    succinct: &SuccinctRoles,
    progress: &ImportProgress,
    tx: &tokio::sync::mpsc::Sender<Result<Batch>>,
) -> Result<()> {
    let mut seen: HashMap<[u8; 16], Seen> = HashMap::new();
    let mut stats = ReadStats::default();
    let mut bins = vec![false; 1usize << succinct.bit_length];
    let mut batch = Vec::with_capacity(ROWS_PER_STATEMENT);
    let mut buf = Vec::with_capacity(512);
    for (file_index, file) in files.iter().enumerate() {
        let f = File::open(file).map_err(|e| Error::storage(file, e))?;
        let mut reader = BufReader::with_capacity(1 << 20, f);
        let mut line_no = 0u64;
        loop {
            buf.clear();
            let n = reader
                .read_until(b'\n', &mut buf)
                .map_err(|e| Error::storage(file, e))?;
            if n == 0 {
                break;
            }
            line_no += 1;
            progress.bytes.fetch_add(n as u64, Ordering::Relaxed);
            let mut bytes = buf.as_slice();
            if let Some(rest) = bytes.strip_suffix(b"\n") {
                bytes = rest.strip_suffix(b"\r").unwrap_or(rest);
            }
            let line = std::str::from_utf8(bytes)
                .map_err(|_| Error::invalid(location(file, line_no), "is not valid UTF-8"))?;
            let row = match parse_row(line, succinct) {
                Ok(Some(row)) => row,
                Ok(None) => continue,
                Err(reason) => return Err(Error::invalid(location(file, line_no), reason)),
            };
            stats.rows += 1;
            let digest = HashAlgorithm::Sha256.digest(row.path.as_bytes());
            let mut key = [0u8; 16];
            key.copy_from_slice(&digest[..16]);
            let mut h = DefaultHasher::new();
            row.info.hash(&mut h);
            let info = h.finish();
            if let Some(first) = seen.get(&key) {
                if first.info != info {
                    return Err(Error::invalid(
                        location(file, line_no),
                        format!(
                            "{:?} is also {} with different size or hash",
                            row.path,
                            location(&files[first.file as usize], first.line)
                        ),
                    ));
                }
                stats.duplicates += 1;
                continue;
            }
            seen.insert(
                key,
                Seen {
                    file: file_index as u32,
                    line: line_no,
                    info,
                },
            );
            stats.artifacts += 1;
            if let Some(b) = bins.get_mut(row.bin as usize) {
                *b = true;
            }
            batch.push(row);
            if batch.len() == ROWS_PER_STATEMENT {
                progress.rows.store(stats.rows, Ordering::Relaxed);
                let full = std::mem::replace(&mut batch, Vec::with_capacity(ROWS_PER_STATEMENT));
                if tx.blocking_send(Ok(Batch::Rows(full))).is_err() {
                    return Ok(());
                }
            }
        }
    }
    progress.rows.store(stats.rows, Ordering::Relaxed);
    if !batch.is_empty() && tx.blocking_send(Ok(Batch::Rows(batch))).is_err() {
        return Ok(());
    }
    stats.bins = bins.iter().filter(|b| **b).count();
    let _ = tx.blocking_send(Ok(Batch::Done(stats)));
    Ok(())
}

/// `INSERT OR IGNORE` of `rows` new artifacts. `OR IGNORE` cannot abort
/// half way, so SQLite needs no statement journal for it: copying every page
/// a multi-row `ON CONFLICT DO UPDATE` touches into one was a third of the
/// import's time.
fn insert_sql(rows: usize, seq: i64) -> String {
    let mut sql = String::with_capacity(80 + rows * 16);
    sql.push_str("INSERT OR IGNORE INTO artifacts (path, bin, info, change_seq, staged) VALUES ");
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str("(?,?,?,");
        sql.push_str(&seq.to_string());
        sql.push_str(",0)");
    }
    sql
}

/// Updates the artifacts of a batch that were already registered with other
/// info (or removed). One already registered with the same info is left
/// alone, so importing the same CSV twice publishes nothing the second time.
fn update_sql(rows: usize, seq: i64) -> String {
    let mut sql = String::with_capacity(300 + rows * 8);
    sql.push_str("UPDATE artifacts SET ");
    sql.push_str(SAVE_PUBLISHED_INFO);
    sql.push_str(", bin = v.column2, info = v.column3, change_seq = ");
    sql.push_str(&seq.to_string());
    sql.push_str(", staged = 0 FROM (VALUES ");
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str("(?,?,?)");
    }
    sql.push_str(
        ") AS v WHERE artifacts.path = v.column1 AND artifacts.info IS NOT v.column3 \
         AND artifacts.change_seq <> ",
    );
    sql.push_str(&seq.to_string());
    sql
}

fn bind_rows<'q>(
    sql: &'q str,
    rows: &'q [ImportRow],
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    let mut query = sqlx::query(sql);
    for row in rows {
        query = query
            .bind(row.path.as_str())
            .bind(i64::from(row.bin))
            .bind(row.info.as_str());
    }
    query
}

fn unix_now() -> i64 {
    tufa_metadata::UtcTime::now().unix()
}

impl Repository {
    /// The state database of this repository (`DATA_DIR/tufa.db`; the
    /// metadata directory is `DATA_DIR/metadata`).
    /// The SQLite file, `None` on PostgreSQL.
    fn database_path(&self) -> Option<PathBuf> {
        self.database_url()
            .strip_prefix("sqlite://")
            .map(|path| PathBuf::from(path.split('?').next().unwrap_or(path)))
    }

    /// The settings fixed at bootstrap, or an error when the repository is
    /// not (yet) bootstrapped.
    pub async fn bootstrapped_settings(&self) -> Result<RepositorySettings> {
        match self.bootstrap_state().await? {
            Some(state) if state.is_done() => {}
            Some(state) => {
                return Err(Error::NotBootstrapped {
                    state: state.rstuf_value(),
                });
            }
            None => {
                return Err(Error::NotBootstrapped {
                    state: "None".into(),
                });
            }
        }
        self.store()
            .setting::<RepositorySettings>(SETTINGS_KEY)
            .await?
            .ok_or_else(|| Error::Corrupt("bootstrapped but no settings stored".into()))
    }

    /// Imports RSTUF CSV files (`path;size;hash-type;hash`) as one change
    /// with one task, all or nothing. Publishing is left to the publisher
    /// (a running `tufa serve`, or [`Repository::publisher_step`]).
    pub async fn import_csv(
        &self,
        files: &[PathBuf],
        progress: Arc<ImportProgress>,
    ) -> Result<ImportSummary> {
        let started = Instant::now();
        let settings = self.bootstrapped_settings().await?;
        let succinct = succinct_roles(&settings);
        for file in files {
            std::fs::metadata(file).map_err(|e| Error::storage(file, e))?;
        }

        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Batch>>(8);
        let reader = {
            let files = files.to_vec();
            let progress = Arc::clone(&progress);
            let succinct = succinct.clone();
            std::thread::Builder::new()
                .name("tufa-import-csv".into())
                .spawn(move || {
                    if let Err(e) = read_files(&files, &succinct, &progress, &tx) {
                        let _ = tx.blocking_send(Err(e));
                    }
                })
                .map_err(|e| Error::Corrupt(format!("starting the CSV reader: {e}")))?
        };

        let result = match self.database_path() {
            Some(path) => self.write_sqlite(&path, &mut rx, files, started).await,
            None => self.write_any(&mut rx, files, started).await,
        };
        // On error the transaction was dropped (rolled back); stop the reader.
        drop(rx);
        let _ = reader.join();
        if result.is_ok() {
            self.wake_publisher();
        }
        result
    }

    /// The SQLite writer: a connection of its own with a large page cache,
    /// `INSERT OR IGNORE` plus an `UPDATE` for re-registered paths.
    async fn write_sqlite(
        &self,
        path: &Path,
        rx: &mut tokio::sync::mpsc::Receiver<Result<Batch>>,
        files: &[PathBuf],
        started: Instant,
    ) -> Result<ImportSummary> {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            // 64 MiB of page cache: inserting in CSV (random) order takes 12 s
            // for a million rows with 16 MiB, 7 s with 64 MiB or more.
            .pragma("cache_size", "-65536")
            .pragma("temp_store", "memory");
        let mut conn = SqliteConnection::connect_with(&options).await?;
        let result = async {
            // Take the write lock now rather than at the first insert.
            let mut db = conn.begin_with("BEGIN IMMEDIATE").await?;
            let seq: i64 =
                sqlx::query("UPDATE sequence SET last = last + 1 WHERE id = 1 RETURNING last")
                    .fetch_one(&mut *db)
                    .await?
                    .try_get("last")?;
            // Changes the API logged come first: the import's rows overwrite them.
            for sql in Engine::Sqlite.merge_log() {
                sqlx::query(&sql).execute(&mut *db).await?;
            }
            let full_sql = insert_sql(ROWS_PER_STATEMENT, seq);
            let mut changed = 0u64;
            let stats = loop {
                let Some(batch) = rx.recv().await else {
                    return Err(Error::Corrupt("the CSV reader stopped unexpectedly".into()));
                };
                match batch? {
                    Batch::Rows(rows) => {
                        let short;
                        let sql = if rows.len() == ROWS_PER_STATEMENT {
                            &full_sql
                        } else {
                            short = insert_sql(rows.len(), seq);
                            &short
                        };
                        let inserted = bind_rows(sql, &rows)
                            .execute(&mut *db)
                            .await?
                            .rows_affected();
                        changed += inserted;
                        if inserted < rows.len() as u64 {
                            // Some were registered before: update those whose info differs.
                            let sql = update_sql(rows.len(), seq);
                            changed += bind_rows(&sql, &rows)
                                .execute(&mut *db)
                                .await?
                                .rows_affected();
                        }
                    }
                    Batch::Done(stats) => break stats,
                }
            };
            let task_id = if changed > 0 {
                let id = new_task_id();
                let details = import_details(files, &stats, changed);
                let now = unix_now();
                sqlx::query(
                    "INSERT INTO tasks (id, kind, state, seq, status, message, details, created, updated)
                     VALUES (?, ?, 'PENDING', ?, NULL, ?, ?, ?, ?)",
                )
                .bind(&id)
                .bind(IMPORT_TASK_KIND)
                .bind(seq)
                .bind("Artifact(s) imported")
                .bind(details.to_string())
                .bind(now)
                .bind(now)
                .execute(&mut *db)
                .await?;
                db.commit().await?;
                Some(id)
            } else {
                // Nothing new: leave the sequence as it was.
                db.rollback().await?;
                None
            };
            Ok(ImportSummary::of(&stats, changed, task_id, seq, started))
        }
        .await;
        let _ = conn.close().await;
        result
    }

    /// The writer for any other engine (PostgreSQL): one transaction on the
    /// store's pool, a multi-row upsert that changes only what differs.
    async fn write_any(
        &self,
        rx: &mut tokio::sync::mpsc::Receiver<Result<Batch>>,
        files: &[PathBuf],
        started: Instant,
    ) -> Result<ImportSummary> {
        let mut db = self.store().pool().begin().await?;
        let seq: i64 =
            sqlx::query("UPDATE sequence SET last = last + 1 WHERE id = 1 RETURNING last")
                .fetch_one(&mut *db)
                .await?
                .try_get("last")?;
        for sql in self.store().engine().merge_log() {
            sqlx::query(&sql).execute(&mut *db).await?;
        }
        let mut changed = 0u64;
        let stats = loop {
            let Some(batch) = rx.recv().await else {
                return Err(Error::Corrupt("the CSV reader stopped unexpectedly".into()));
            };
            match batch? {
                Batch::Rows(rows) => {
                    let values = (0..rows.len())
                        .map(|i| {
                            format!("(${}, ${}, ${}, {seq}, 0)", 3 * i + 1, 3 * i + 2, 3 * i + 3)
                        })
                        .collect::<Vec<_>>()
                        .join(", ");
                    // Counts rows inserted and rows whose info changed: a
                    // path registered before with the same info is left alone.
                    let sql = format!(
                        "INSERT INTO artifacts (path, bin, info, change_seq, staged) VALUES {values}
                         ON CONFLICT (path) DO UPDATE SET {SAVE_PUBLISHED_INFO}, bin = excluded.bin, info = excluded.info,
                             change_seq = excluded.change_seq, staged = 0
                         WHERE artifacts.info IS DISTINCT FROM excluded.info"
                    );
                    let mut query = sqlx::query(&sql);
                    for row in &rows {
                        query = query
                            .bind(row.path.as_str())
                            .bind(i64::from(row.bin))
                            .bind(row.info.as_str());
                    }
                    changed += query.execute(&mut *db).await?.rows_affected();
                }
                Batch::Done(stats) => break stats,
            }
        };
        let task_id = if changed > 0 {
            let id = new_task_id();
            let now = unix_now();
            sqlx::query(
                "INSERT INTO tasks (id, kind, state, seq, status, message, details, created, updated)
                 VALUES ($1, $2, 'PENDING', $3, NULL, $4, $5, $6, $7)",
            )
            .bind(&id)
            .bind(IMPORT_TASK_KIND)
            .bind(seq)
            .bind("Artifact(s) imported")
            .bind(import_details(files, &stats, changed).to_string())
            .bind(now)
            .bind(now)
            .execute(&mut *db)
            .await?;
            db.commit().await?;
            Some(id)
        } else {
            db.rollback().await?;
            None
        };
        Ok(ImportSummary::of(&stats, changed, task_id, seq, started))
    }
}

impl ImportSummary {
    /// What a writer reports once its transaction is committed (or rolled
    /// back, when nothing changed).
    fn of(
        stats: &ReadStats,
        changed: u64,
        task_id: Option<String>,
        seq: i64,
        started: Instant,
    ) -> ImportSummary {
        ImportSummary {
            rows: stats.rows,
            artifacts: stats.artifacts,
            duplicates: stats.duplicates,
            changed,
            bins: stats.bins,
            task_id,
            seq,
            elapsed: started.elapsed(),
        }
    }
}

/// The details recorded with an import's task.
fn import_details(files: &[PathBuf], stats: &ReadStats, changed: u64) -> serde_json::Value {
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    json!({
        "csv_files": names,
        "rows": stats.rows,
        "imported_artifacts": stats.artifacts,
        "changed_artifacts": changed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use tufa_metadata::TargetFile;

    fn succinct(bits: u32) -> SuccinctRoles {
        SuccinctRoles {
            keyids: vec!["k".into()],
            threshold: 1,
            bit_length: bits,
            name_prefix: BINS_PREFIX.into(),
            unrecognized: serde_json::Map::new(),
        }
    }

    #[test]
    fn info_is_what_serde_writes() {
        let file = TargetFile {
            length: 123,
            hashes: BTreeMap::from([("blake2b-256".to_string(), "ab".repeat(32))]),
            unrecognized: serde_json::Map::new(),
        };
        assert_eq!(
            info_json(123, "blake2b-256", &"ab".repeat(32)),
            serde_json::to_string(&file).unwrap()
        );
    }

    #[test]
    fn rows() {
        let s = succinct(8);
        let row = parse_row(
            &format!("packages/a/a-1.tar.gz;42;sha256;{}", "AB".repeat(32)),
            &s,
        )
        .unwrap()
        .unwrap();
        assert_eq!(row.bin, s.bin_for_target("packages/a/a-1.tar.gz") as u32);
        assert!(row.info.contains(&"ab".repeat(32)));
        assert_eq!(parse_row("  ", &s), Ok(None));
        for (line, want) in [
            ("a;1;sha256", "expected 4 fields"),
            ("a;1;sha256;00;x", "expected 4 fields"),
            ("/a;1;sha256;00", "path \"/a\" is absolute"),
            ("a/../b;1;sha256;00", "path"),
            ("a;-1;sha256;00", "size must be a non-negative integer"),
            ("a;1.5;sha256;00", "size must be a non-negative integer"),
            ("a;;sha256;00", "size must be a non-negative integer"),
            ("a;99999999999999999999;sha256;00", "too large"),
            ("a;1;md5;00", "unknown hash type"),
            ("a;1;sha256;00", "sha256 hash must be 64 hex digits"),
        ] {
            let err = parse_row(line, &s).unwrap_err();
            assert!(err.contains(want), "{line}: {err}");
        }
        let err = parse_row(&format!("a;1;blake2b-256;{}", "zz".repeat(32)), &s).unwrap_err();
        assert!(err.contains("64 hex digits"), "{err}");
    }

    #[test]
    fn sql_shape() {
        assert_eq!(
            insert_sql(2, 7),
            "INSERT OR IGNORE INTO artifacts (path, bin, info, change_seq, staged) VALUES (?,?,?,7,0),(?,?,?,7,0)"
        );
        let update = update_sql(2, 7);
        assert!(
            update.contains("FROM (VALUES (?,?,?),(?,?,?)) AS v"),
            "{update}"
        );
        assert!(
            update.ends_with("AND artifacts.change_seq <> 7"),
            "{update}"
        );
    }
}
