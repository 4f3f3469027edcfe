//! The state store: everything the service keeps, in SQLite in the data
//! directory (nothing to install) or in PostgreSQL (many processes). Every
//! accepted change is committed here before the API answers; the publisher
//! reads pending changes from here.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor, Row};

use crate::error::{Error, Result};
use crate::task::{Task, TaskState};

/// The database engine behind a [`Store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Engine {
    /// SQLite in the data directory: the embedded default.
    Sqlite,
    /// PostgreSQL: many API processes and workers share it.
    Postgres,
}

/// The state store. One SQL dialect serves both engines: `$N` placeholders
/// (statements built at run time take theirs from [`Engine::placeholders`]),
/// `ON CONFLICT`, `RETURNING`; only the migrations differ.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    /// Where write transactions run. On SQLite one connection, so that
    /// concurrent writers queue in order on the pool instead of meeting
    /// SQLite's busy handler, which makes a waiting writer sleep in steps of
    /// up to 100 ms; on PostgreSQL the same pool as reads.
    writer: AnyPool,
    engine: Engine,
}
/// What the live metadata signs for an artifact row, as SQL: `info` once
/// the row's change is published, else `published_info`, which holds the
/// published info only while a newer change waits. Publishing therefore
/// only moves `published_seq` and clears `published_info`, rather than
/// copying every published row's info into a second column (which doubled
/// the rows and made recording a large publication take seconds).
pub(crate) const PUBLISHED_INFO: &str =
    "(CASE WHEN change_seq <= published_seq THEN info ELSE published_info END)";

/// The `SET` clause that keeps the published info of a row a new change
/// overwrites: for every statement that updates `info` of an existing row.
pub(crate) const SAVE_PUBLISHED_INFO: &str = "published_info = CASE \
     WHEN artifacts.change_seq <= artifacts.published_seq THEN artifacts.info \
     ELSE artifacts.published_info END";

/// The published mark: logged changes up to it are live.
const PUBLISHED_MARK: &str = "(SELECT published FROM sequence WHERE id = 1)";

impl Engine {
    /// Moves the logged changes up to the published mark into `artifacts`
    /// as published: the latest of each path becomes the row's wanted and
    /// published state at once. Delete them with [`DELETE_PUBLISHED_LOG`].
    fn merge_published_log(self) -> String {
        let select = match self {
            // SQLite applies an upsert's rows in order: the latest wins.
            Engine::Sqlite => format!(
                "SELECT path, bin, info, seq, seq, 0 FROM artifact_log
                 WHERE seq <= {PUBLISHED_MARK} ORDER BY path, id"
            ),
            // PostgreSQL refuses to update a row twice in one statement.
            Engine::Postgres => format!(
                "SELECT DISTINCT ON (path) path, bin, info, seq, seq, 0 FROM artifact_log
                 WHERE seq <= {PUBLISHED_MARK} ORDER BY path, id DESC"
            ),
        };
        format!(
            "INSERT INTO artifacts (path, bin, info, change_seq, published_seq, staged) {select}
             ON CONFLICT (path) DO UPDATE SET bin = excluded.bin, info = excluded.info,
                 change_seq = excluded.change_seq, published_seq = excluded.published_seq,
                 published_info = NULL, staged = 0
             WHERE artifacts.change_seq <= excluded.change_seq"
        )
    }

    /// Moves every logged change past the published mark into `artifacts`
    /// as pending, over the row's wanted state, keeping what the live
    /// metadata signs in `published_info`. After [`Engine::merge_published_log`].
    fn merge_pending_log(self) -> String {
        let select = match self {
            // `WHERE true`: SQLite's upsert needs a WHERE to parse.
            Engine::Sqlite => "SELECT path, bin, info, seq, 0 FROM artifact_log
                 WHERE true ORDER BY path, id"
                .to_string(),
            Engine::Postgres => {
                "SELECT DISTINCT ON (path) path, bin, info, seq, 0 FROM artifact_log
                 ORDER BY path, id DESC"
                    .to_string()
            }
        };
        format!(
            "INSERT INTO artifacts (path, bin, info, change_seq, staged) {select}
             ON CONFLICT (path) DO UPDATE SET {SAVE_PUBLISHED_INFO}, bin = excluded.bin,
                 info = excluded.info, change_seq = excluded.change_seq, staged = 0"
        )
    }

    /// Every statement that moves the whole log into `artifacts`, in order:
    /// for writes that go to `artifacts` directly, which must come after
    /// every logged change. Run with the `sequence` row held (every writer
    /// of the log takes it first), so nothing is logged meanwhile.
    pub(crate) fn merge_log(self) -> [String; 5] {
        [
            self.merge_published_log(),
            DELETE_PUBLISHED_REMOVALS.to_string(),
            DELETE_PUBLISHED_LOG.to_string(),
            self.merge_pending_log(),
            "DELETE FROM artifact_log".to_string(),
        ]
    }
}

/// After [`Engine::merge_published_log`], deletes the rows of the paths
/// whose removal it moved in: once no metadata signs a path and nothing
/// about it waits, it needs no row, and keeping one would grow
/// `artifacts` by a row for every file ever removed. Only the log's
/// removals are looked at, by key, so a merge of additions costs nothing.
const DELETE_PUBLISHED_REMOVALS: &str = "DELETE FROM artifacts
     WHERE path IN (SELECT path FROM artifact_log
                    WHERE info IS NULL AND seq <= (SELECT published FROM sequence WHERE id = 1))
       AND info IS NULL AND staged = 0 AND change_seq <= published_seq";

/// Deletes the logged changes [`Engine::merge_published_log`] moved.
const DELETE_PUBLISHED_LOG: &str =
    "DELETE FROM artifact_log WHERE seq <= (SELECT published FROM sequence WHERE id = 1)";

/// Changes read from the log ahead of the next batch
/// ([`Store::read_log_ahead`]), in log order.
#[derive(Debug, Default)]
pub struct LogReadAhead {
    rows: Vec<ChangeRow>,
    /// The highest log id read.
    after: i64,
    /// Too many to hold: the batch is read from `artifacts`.
    gave_up: bool,
}

impl LogReadAhead {
    fn take(&mut self, rows: Vec<ChangeRow>) {
        if let Some(last) = rows.iter().map(|r| r.4).max() {
            self.after = self.after.max(last);
        }
        self.rows.extend(rows);
    }

    /// Changes read so far.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Nothing read yet.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// A new artifact version to record.
#[derive(Debug, Clone)]
pub struct ArtifactChange {
    pub path: String,
    pub bin: u32,
    /// The target file info as JSON; `None` removes the artifact.
    pub info: Option<String>,
}

/// A task to record with a change.
#[derive(Debug, Clone)]
pub struct NewTask {
    pub id: String,
    pub kind: &'static str,
    pub message: String,
    pub details: Value,
    /// Finished at once (nothing to publish), rather than when published.
    pub done: bool,
}

/// What the publisher has to do.
#[derive(Debug, Clone, Default)]
pub struct PendingBatch {
    /// The highest change included; later changes wait for the next batch.
    pub max_seq: i64,
    /// Bins with a pending change.
    pub bins: BTreeSet<u32>,
    /// Pending artifact changes in the batch.
    pub changes: usize,
    /// Tasks waiting for this batch.
    pub tasks: usize,
    /// The pending changes themselves, as of `max_seq`; `None` when there
    /// are more than the caller wanted to hold (an import of millions).
    pub pending: Option<Vec<PendingChange>>,
}

/// One pending artifact change, as the batch publishes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingChange {
    pub path: String,
    pub bin: u32,
    /// The new target file info as JSON; `None`: removed.
    pub info: Option<String>,
}

/// A role's published version and expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleVersion {
    pub version: u64,
    pub expires: i64,
}

impl Engine {
    /// `count` placeholders for parameters `start..start + count` of a
    /// statement built at run time: `$start, $start+1, ...` on PostgreSQL,
    /// anonymous `?` on SQLite. SQLite looks a named parameter up by walking
    /// a list of all of them, so binding a 2,000-parameter multi-row insert
    /// by `$N` names is quadratic (a fifth of the API's CPU when accepting
    /// artifacts). sqlx numbers anonymous parameters by position, so a
    /// statement that uses `?` must use it for every parameter, in order.
    pub(crate) fn placeholders(self, start: usize, count: usize) -> String {
        match self {
            Engine::Sqlite => vec!["?"; count].join(", "),
            Engine::Postgres => (start..start + count)
                .map(|n| format!("${n}"))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

impl Engine {
    /// A statement that returns the rows of `select` (columns `path`, `bin`,
    /// `info`) as one JSON text `[[path, bin, info], ...]` in one column,
    /// `rows`. The publisher reads tens of thousands of rows at a time, and
    /// the driver's per-row cost (about 6 us, a channel message and two
    /// copies per row) was most of a publication's reading; the database
    /// builds the array in a fraction of that. Read with [`parse_json_rows`].
    fn json_rows(self, select: &str) -> String {
        match self {
            Engine::Sqlite => {
                format!(
                    "SELECT json_group_array(json_array(path, bin, info)) AS rows FROM ({select})"
                )
            }
            Engine::Postgres => format!(
                "SELECT COALESCE(json_agg(json_build_array(path, bin, info)), '[]'::json)::text AS rows \
                 FROM ({select}) AS selected"
            ),
        }
    }

    /// [`Engine::json_rows`] for rows that also carry their order: `seq`
    /// and `id` (0 for a row of `artifacts`).
    fn json_changes(self, select: &str) -> String {
        match self {
            Engine::Sqlite => format!(
                "SELECT json_group_array(json_array(path, bin, info, seq, id)) AS rows FROM ({select})"
            ),
            Engine::Postgres => format!(
                "SELECT COALESCE(json_agg(json_build_array(path, bin, info, seq, id)), '[]'::json)::text AS rows \
                 FROM ({select}) AS selected"
            ),
        }
    }
}

/// (path, bin, info) rows as [`Engine::json_rows`] returns them.
type JsonRows = Vec<(String, u32, Option<String>)>;

fn parse_json_rows(row: &sqlx::any::AnyRow) -> Result<JsonRows> {
    let text: String = row.try_get("rows")?;
    serde_json::from_str(&text).map_err(|e| Error::Corrupt(format!("reading artifacts: {e}")))
}

/// A database URL with any password replaced, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

fn now() -> i64 {
    tufa_metadata::UtcTime::now().unix()
}

fn bin_of(row: &sqlx::any::AnyRow) -> Result<u32> {
    u32::try_from(row.try_get::<i64, _>("bin")?).map_err(|e| Error::Corrupt(e.to_string()))
}

impl Store {
    /// Opens (creating and migrating) the SQLite database at `path`.
    pub async fn open_sqlite(path: &Path) -> Result<Store> {
        Store::open(&format!("sqlite://{}", path.display())).await
    }

    /// Opens the database a URL names (`sqlite://PATH` or
    /// `postgres://USER@HOST/DB`) and runs any migration not yet applied.
    pub async fn open(url: &str) -> Result<Store> {
        let store = Store::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Opens without migrating (`tufa db migrate` and `open` migrate).
    pub async fn connect(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let engine = if url.starts_with("sqlite:") {
            Engine::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Engine::Postgres
        } else {
            return Err(Error::invalid(
                "database-url",
                format!(
                    "{:?} is neither sqlite://PATH nor postgres://...",
                    redact_url(url)
                ),
            ));
        };
        let (pool, writer) = match engine {
            Engine::Sqlite => {
                let url = if url.contains('?') {
                    url.to_string()
                } else {
                    format!("{url}?mode=rwc")
                };
                let options = AnyConnectOptions::from_str(&url)?;
                let pool = Store::sqlite_pool(8).connect_with(options.clone()).await?;
                let writer = Store::sqlite_pool(1).connect_with(options).await?;
                (pool, writer)
            }
            Engine::Postgres => {
                let options = AnyConnectOptions::from_str(url)?;
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_with(options)
                    .await?;
                (pool.clone(), pool)
            }
        };
        Ok(Store {
            pool,
            writer,
            engine,
        })
    }

    /// Pool options for SQLite connections: WAL, so readers never wait for
    /// a writer; synchronous=FULL, so an accepted artifact survives a power
    /// cut; a page cache large enough that inserting into the artifacts
    /// table does not re-read its pages from the file; checkpoints left to
    /// [`Store::run_checkpointer`], with a high threshold as a backstop.
    fn sqlite_pool(max_connections: u32) -> AnyPoolOptions {
        AnyPoolOptions::new()
            .max_connections(max_connections)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                         PRAGMA busy_timeout = 30000; PRAGMA foreign_keys = ON; \
                         PRAGMA cache_size = -16384; PRAGMA temp_store = MEMORY; \
                         PRAGMA wal_autocheckpoint = 16384;",
                    )
                    .await?;
                    Ok(())
                })
            })
    }

    /// SQLite: copies the write-ahead log into the database every 250 ms,
    /// from a reading connection, until the process ends. SQLite otherwise
    /// checkpoints inside the commit that crosses the threshold, on the one
    /// writing connection: a fifth of the time spent accepting artifacts,
    /// and a stall for the request that triggered it. The connections'
    /// own threshold stays as a backstop (16,384 pages) for processes that
    /// do not run this. Nothing to do on PostgreSQL.
    pub async fn run_checkpointer(self) {
        if self.engine != Engine::Sqlite {
            return;
        }
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&self.pool)
                .await
            {
                tracing::warn!(error = %e, "checkpointing the SQLite write-ahead log failed");
            }
        }
    }

    /// Applies every migration not yet applied; returns how many there are in all.
    pub async fn migrate(&self) -> Result<usize> {
        let migrator = match self.engine {
            Engine::Sqlite => sqlx::migrate!("migrations/sqlite"),
            Engine::Postgres => sqlx::migrate!("migrations/postgres"),
        };
        migrator
            .run(&self.pool)
            .await
            .map_err(|e| Error::Corrupt(format!("migrating the database: {e}")))?;
        Ok(migrator.iter().count())
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The connection pool, for the modules that keep their own tables (the index).
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The pool write transactions run on (see [`Store::writer`]'s field).
    pub(crate) fn writer(&self) -> &AnyPool {
        &self.writer
    }

    /// A setting, parsed from JSON.
    pub async fn setting<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let row = sqlx::query("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            None => Ok(None),
            Some(row) => {
                let text: String = row.try_get("value")?;
                serde_json::from_str(&text)
                    .map(Some)
                    .map_err(|e| Error::Corrupt(format!("setting {key}: {e}")))
            }
        }
    }

    /// A setting's stored text, exactly (for [`Store::replace_setting`]).
    pub async fn setting_text(&self, key: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("value")).transpose()?)
    }

    /// Replaces a setting only if it still holds `old` (`None`: absent), and
    /// records `task` with it; `Ok(false)` when another process changed it
    /// first (nothing is written then). Read-modify-write across processes
    /// without losing anyone's change.
    pub async fn replace_setting(
        &self,
        key: &str,
        old: Option<&str>,
        new: &Value,
        task: Option<&NewTask>,
    ) -> Result<bool> {
        let mut tx = self.writer.begin().await?;
        let changed = match old {
            Some(old) => {
                sqlx::query("UPDATE settings SET value = $1 WHERE key = $2 AND value = $3")
                    .bind(new.to_string())
                    .bind(key)
                    .bind(old)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
            }
            None => sqlx::query(
                "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            )
            .bind(key)
            .bind(new.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected(),
        };
        if changed != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        if let Some(task) = task {
            insert_task(&mut tx, task, None).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Stores a setting as JSON.
    pub async fn set_setting<T: Serialize>(&self, key: &str, value: &T) -> Result<()> {
        let text = serde_json::to_string(value).map_err(|e| Error::Corrupt(e.to_string()))?;
        sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(text)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Deletes a setting.
    pub async fn delete_setting(&self, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM settings WHERE key = $1")
            .bind(key)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Stores settings, deletes one and records a task, all or nothing: the
    /// one way settings change together with what they mean.
    pub async fn update_settings(
        &self,
        settings: &[(&str, Value)],
        delete: Option<&str>,
        task: Option<&NewTask>,
    ) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        for (key, value) in settings {
            sqlx::query(
                "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .bind(*key)
            .bind(value.to_string())
            .execute(&mut *tx)
            .await?;
        }
        if let Some(key) = delete {
            sqlx::query("DELETE FROM settings WHERE key = $1")
                .bind(key)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(task) = task {
            insert_task(&mut tx, task, None).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Stores settings and a task in one transaction, where the setting
    /// `claim` must not exist yet: the one way to start something only one
    /// process may start (a bootstrap, a root update). `Ok(false)` when it
    /// exists already, and nothing is changed.
    pub async fn create_settings_with_task(
        &self,
        settings: &[(&str, Value)],
        claim: &str,
        task: &NewTask,
    ) -> Result<bool> {
        let mut tx = self.writer.begin().await?;
        for (key, value) in settings {
            let sql = if *key == claim {
                "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING"
            } else {
                "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
            };
            let done = sqlx::query(sql)
                .bind(*key)
                .bind(value.to_string())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if done == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
        }
        insert_task(&mut tx, task, None).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Stores settings and deletes one, atomically: the end of a root update.
    pub async fn commit_root_update(&self, settings: &[(&str, Value)], delete: &str) -> Result<()> {
        self.update_settings(settings, Some(delete), None).await
    }

    /// Stores settings, deletes one and records a task, atomically: the end
    /// of distributed signing.
    pub async fn finish_signing(
        &self,
        settings: &[(&str, Value)],
        delete: &str,
        task: &NewTask,
    ) -> Result<()> {
        self.update_settings(settings, Some(delete), Some(task))
            .await
    }

    /// Stores several settings and a task in one transaction.
    pub async fn set_settings_with_task(
        &self,
        settings: &[(&str, Value)],
        task: &NewTask,
    ) -> Result<()> {
        self.update_settings(settings, None, Some(task)).await
    }

    /// Records artifact changes and their task atomically. `staged` changes
    /// wait for an explicit publish. Returns the change sequence number.
    ///
    /// Changes to publish are appended to the log; staged ones go to
    /// `artifacts` (flagged), after the log has been moved there.
    pub async fn record_changes(
        &self,
        changes: &[ArtifactChange],
        staged: bool,
        task: &NewTask,
    ) -> Result<i64> {
        let mut tx = self.writer.begin().await?;
        let seq = next_seq(&mut tx).await?;
        if staged {
            for sql in self.engine.merge_log() {
                sqlx::query(&sql).execute(&mut *tx).await?;
            }
            // Multi-row statements: one round trip per 400 changes, not per change.
            for chunk in changes.chunks(400) {
                let rows = (0..chunk.len())
                    .map(|i| format!("({})", self.engine.placeholders(5 * i + 1, 5)))
                    .collect::<Vec<_>>()
                    .join(", ");
                let sql = format!(
                    "INSERT INTO artifacts (path, bin, info, change_seq, staged) VALUES {rows}
                     ON CONFLICT (path) DO UPDATE SET {SAVE_PUBLISHED_INFO}, info = excluded.info,
                         change_seq = excluded.change_seq, staged = excluded.staged"
                );
                let mut query = sqlx::query(&sql);
                for change in chunk {
                    query = query
                        .bind(&change.path)
                        .bind(i64::from(change.bin))
                        .bind(&change.info)
                        .bind(seq)
                        .bind(1i64);
                }
                query.execute(&mut *tx).await?;
            }
        } else {
            log_changes(&mut tx, self.engine, seq, changes).await?;
        }
        insert_task(&mut tx, task, Some(seq)).await?;
        tx.commit().await?;
        Ok(seq)
    }

    /// Which of `paths` are present (wanted, not removed): the latest
    /// logged change of a path, else its row. One statement per chunk, so
    /// both tables are read in one snapshot on either engine.
    pub async fn present_paths(&self, paths: &[String]) -> Result<BTreeSet<String>> {
        let mut present = BTreeSet::new();
        for chunk in paths.chunks(500) {
            let n = chunk.len();
            let sql = format!(
                "SELECT path, CAST(CASE WHEN info IS NULL THEN 0 ELSE 1 END AS BIGINT) AS present,
                     change_seq AS seq, CAST(0 AS BIGINT) AS id FROM artifacts WHERE path IN ({})
                 UNION ALL
                 SELECT path, CAST(CASE WHEN info IS NULL THEN 0 ELSE 1 END AS BIGINT) AS present,
                     seq, id FROM artifact_log WHERE path IN ({})",
                self.engine.placeholders(1, n),
                self.engine.placeholders(n + 1, n)
            );
            let mut query = sqlx::query(&sql);
            for p in chunk.iter().chain(chunk) {
                query = query.bind(p);
            }
            let mut latest: BTreeMap<String, ((i64, i64), bool)> = BTreeMap::new();
            for row in query.fetch_all(&self.pool).await? {
                let path: String = row.try_get("path")?;
                let order = (row.try_get::<i64, _>("seq")?, row.try_get::<i64, _>("id")?);
                let is_present = row.try_get::<i64, _>("present")? != 0;
                match latest.get_mut(&path) {
                    Some(seen) if seen.0 >= order => {}
                    Some(seen) => *seen = (order, is_present),
                    None => {
                        latest.insert(path, (order, is_present));
                    }
                }
            }
            present.extend(
                latest
                    .into_iter()
                    .filter(|(_, (_, is_present))| *is_present)
                    .map(|(path, _)| path),
            );
        }
        Ok(present)
    }

    /// Releases every staged change for publication, with a task for it.
    pub async fn unstage_all(&self, task: &NewTask) -> Result<i64> {
        let mut tx = self.writer.begin().await?;
        let seq = next_seq(&mut tx).await?;
        for sql in self.engine.merge_log() {
            sqlx::query(&sql).execute(&mut *tx).await?;
        }
        sqlx::query("UPDATE artifacts SET staged = 0, change_seq = $1 WHERE staged = 1 AND change_seq > published_seq")
            .bind(seq)
            .execute(&mut *tx)
            .await?;
        insert_task(&mut tx, task, Some(seq)).await?;
        tx.commit().await?;
        Ok(seq)
    }

    /// Moves the logged changes a recorded publication signed into
    /// `artifacts` as published. The publisher calls it right after
    /// recording a publication and before reading the next batch; until
    /// then readers of the published state also look at the log.
    pub async fn merge_published_log(&self) -> Result<()> {
        if !self.published_in_log().await? {
            return Ok(());
        }
        let mut tx = self.writer.begin().await?;
        sqlx::query("UPDATE sequence SET last = last WHERE id = 1")
            .execute(&mut *tx)
            .await?;
        sqlx::query(&self.engine.merge_published_log())
            .execute(&mut *tx)
            .await?;
        sqlx::query(DELETE_PUBLISHED_REMOVALS)
            .execute(&mut *tx)
            .await?;
        sqlx::query(DELETE_PUBLISHED_LOG).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether the log holds published changes not yet moved into
    /// `artifacts`: its oldest change (the first by id, which follows the
    /// change order) is at or below the published mark. A key lookup, not
    /// a scan.
    pub(crate) async fn published_in_log(&self) -> Result<bool> {
        let row = sqlx::query(
            "SELECT (SELECT seq FROM artifact_log ORDER BY id LIMIT 1) AS oldest, published
             FROM sequence WHERE id = 1",
        )
        .fetch_one(&self.pool)
        .await?;
        let oldest: Option<i64> = row.try_get("oldest")?;
        let published: i64 = row.try_get("published")?;
        Ok(oldest.is_some_and(|o| o <= published))
    }

    /// What the live metadata signs for `path` (`None`: not a target): the
    /// latest published change in the log, else the row's published info.
    pub(crate) async fn published_info(&self, path: &str) -> Result<Option<String>> {
        if self.published_in_log().await? {
            let rows = sqlx::query(&format!(
                "SELECT info, id FROM artifact_log WHERE path = $1 AND seq <= {PUBLISHED_MARK}
                 UNION ALL
                 SELECT {PUBLISHED_INFO} AS info, CAST(0 AS BIGINT) AS id FROM artifacts WHERE path = $1"
            ))
            .bind(path)
            .fetch_all(&self.pool)
            .await?;
            let mut latest: Option<(i64, Option<String>)> = None;
            for row in rows {
                let id: i64 = row.try_get("id")?;
                if latest.as_ref().is_none_or(|(seen, _)| id > *seen) {
                    latest = Some((id, row.try_get("info")?));
                }
            }
            return Ok(latest.and_then(|(_, info)| info));
        }
        Ok(sqlx::query(&format!(
            "SELECT {PUBLISHED_INFO} AS info FROM artifacts WHERE path = $1"
        ))
        .bind(path)
        .fetch_optional(&self.pool)
        .await?
        .map(|r| r.try_get::<Option<String>, _>("info"))
        .transpose()?
        .flatten())
    }

    /// The published mark: every change up to it is live.
    pub(crate) async fn published_seq(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT published FROM sequence WHERE id = 1")
            .fetch_one(&self.pool)
            .await?
            .try_get("published")?)
    }

    /// Moves every logged change into `artifacts` (as pending), under the
    /// `sequence` row lock like every writer of the log.
    pub async fn merge_log(&self) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("UPDATE sequence SET last = last WHERE id = 1")
            .execute(&mut *tx)
            .await?;
        for sql in self.engine.merge_log() {
            sqlx::query(&sql).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records a task that needs no artifact change.
    pub async fn insert_task(&self, task: &NewTask, seq: Option<i64>) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        insert_task(&mut tx, task, seq).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The current change sequence number.
    pub async fn last_seq(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT last FROM sequence WHERE id = 1")
            .fetch_one(&self.pool)
            .await?
            .try_get("last")?)
    }

    /// What is pending now. The changes themselves come with it when there
    /// are at most `hold` of them: one read of the pending rows serves the
    /// bins, the count and the publisher's copy of the bins. With more (an
    /// import of millions), the log is moved into `artifacts` first, where
    /// the publisher reads the bins a chunk at a time.
    pub async fn pending_batch(&self, hold: usize) -> Result<PendingBatch> {
        self.pending_batch_after(hold, LogReadAhead::default())
            .await
    }

    /// [`Store::pending_batch`], with the changes `ahead` already read from
    /// the log: only those logged since are read now.
    pub async fn pending_batch_after(
        &self,
        hold: usize,
        ahead: LogReadAhead,
    ) -> Result<PendingBatch> {
        if let Some(batch) = self.pending_in_memory(hold, ahead).await? {
            return Ok(batch);
        }
        self.merge_log().await?;
        self.pending_in_store().await
    }

    /// Reads the changes logged since `ahead` last read, while the
    /// publisher rests: the batch then reads only what came after. Gives up
    /// (and reads nothing more) past `hold` changes, where the batch is
    /// read from `artifacts` anyway.
    pub async fn read_log_ahead(&self, ahead: &mut LogReadAhead, hold: usize) -> Result<()> {
        if ahead.gave_up {
            return Ok(());
        }
        let sql = self.engine.json_changes(
            "SELECT path, bin, info, seq, id FROM artifact_log
             WHERE id > $1 AND seq > (SELECT published FROM sequence WHERE id = 1)",
        );
        let rows = parse_changes(
            &sqlx::query(&sql)
                .bind(ahead.after)
                .fetch_one(&self.pool)
                .await?,
        )?;
        ahead.take(rows);
        if ahead.rows.len() > hold {
            *ahead = LogReadAhead {
                gave_up: true,
                ..LogReadAhead::default()
            };
        }
        Ok(())
    }

    /// The pending changes, if at most `hold`: the logged ones past the
    /// published mark and the pending rows of `artifacts`; the latest change
    /// of each path wins. The log is read first: a change another writer
    /// moves into `artifacts` between the two reads (on PostgreSQL each
    /// statement has its own snapshot) is then read twice, never missed.
    async fn pending_in_memory(
        &self,
        hold: usize,
        ahead: LogReadAhead,
    ) -> Result<Option<PendingBatch>> {
        if ahead.gave_up {
            return Ok(None);
        }
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "SELECT last, published,
                 (SELECT COUNT(*) FROM artifact_log WHERE id > $1 AND seq > sequence.published)
                     AS logged
             FROM sequence WHERE id = 1",
        )
        .bind(ahead.after)
        .fetch_one(&mut *tx)
        .await?;
        let max_seq: i64 = row.try_get("last")?;
        let published: i64 = row.try_get("published")?;
        let logged: i64 = row.try_get("logged")?;
        let mut rows = ahead.rows;
        rows.retain(|r| r.3 > published);
        if usize::try_from(logged)
            .unwrap_or(usize::MAX)
            .saturating_add(rows.len())
            > hold
        {
            return Ok(None);
        }
        let log_sql = self.engine.json_changes(
            "SELECT path, bin, info, seq, id FROM artifact_log
             WHERE seq <= $1 AND id > $2 AND seq > (SELECT published FROM sequence WHERE id = 1)",
        );
        rows.extend(parse_changes(
            &sqlx::query(&log_sql)
                .bind(max_seq)
                .bind(ahead.after)
                .fetch_one(&mut *tx)
                .await?,
        )?);
        let room = hold.saturating_sub(rows.len());
        let stored_sql = self.engine.json_changes(
            "SELECT path, bin, info, change_seq AS seq, CAST(0 AS BIGINT) AS id FROM artifacts
             WHERE change_seq > published_seq AND staged = 0 AND change_seq <= $1 LIMIT $2",
        );
        let stored = parse_changes(
            &sqlx::query(&stored_sql)
                .bind(max_seq)
                .bind(i64::try_from(room.saturating_add(1)).unwrap_or(i64::MAX))
                .fetch_one(&mut *tx)
                .await?,
        )?;
        if stored.len() > room {
            return Ok(None);
        }
        let tasks = pending_tasks(&mut tx, max_seq).await?;
        tx.commit().await?;
        rows.extend(stored);
        // Per path: its latest change's order, bin and info.
        type Latest = ((i64, i64), u32, Option<String>);
        let mut latest: HashMap<String, Latest> = HashMap::with_capacity(rows.len());
        for (path, bin, info, seq, id) in rows {
            match latest.get_mut(&path) {
                Some(seen) if seen.0 >= (seq, id) => {}
                Some(seen) => *seen = ((seq, id), bin, info),
                None => {
                    latest.insert(path, ((seq, id), bin, info));
                }
            }
        }
        let mut bins = BTreeSet::new();
        let pending: Vec<PendingChange> = latest
            .into_iter()
            .map(|(path, (_, bin, info))| {
                bins.insert(bin);
                PendingChange { path, bin, info }
            })
            .collect();
        Ok(Some(PendingBatch {
            max_seq,
            bins,
            changes: pending.len(),
            tasks,
            pending: Some(pending),
        }))
    }

    /// What is pending in `artifacts`, without the changes themselves: the
    /// bins and counts of an import-sized batch.
    async fn pending_in_store(&self) -> Result<PendingBatch> {
        let mut tx = self.pool.begin().await?;
        let max_seq: i64 = sqlx::query("SELECT last FROM sequence WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?
            .try_get("last")?;
        let mut bins = BTreeSet::new();
        for row in sqlx::query(
            "SELECT DISTINCT bin FROM artifacts WHERE change_seq > published_seq AND staged = 0 AND change_seq <= $1",
        )
        .bind(max_seq)
        .fetch_all(&mut *tx)
        .await?
        {
            bins.insert(bin_of(&row)?);
        }
        let changes: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM artifacts WHERE change_seq > published_seq AND staged = 0 AND change_seq <= $1",
        )
        .bind(max_seq)
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
        let tasks = pending_tasks(&mut tx, max_seq).await?;
        tx.commit().await?;
        Ok(PendingBatch {
            max_seq,
            bins,
            changes: usize::try_from(changes).unwrap_or(0),
            tasks,
            pending: None,
        })
    }

    /// The targets of each bin in `artifacts` as the batch up to `max_seq`
    /// will publish them: pending rows up to `max_seq`, published state for
    /// everything else. Logged changes are not read here: the publisher
    /// applies the batch's changes over these, and moves the log into
    /// `artifacts` before a batch too large to hold.
    pub async fn bin_contents(
        &self,
        bins: &[u32],
        max_seq: i64,
    ) -> Result<BTreeMap<u32, Vec<(String, String)>>> {
        let mut out: BTreeMap<u32, Vec<(String, String)>> =
            bins.iter().map(|&b| (b, Vec::new())).collect();
        // A few hundred bins at a time: at PyPI's size a bin holds hundreds
        // of targets, and each read is one JSON text in memory.
        for chunk in bins.chunks(128) {
            let sql = self.engine.json_rows(&format!(
                "SELECT path, bin, CASE WHEN staged = 0 AND change_seq <= {} THEN info ELSE {PUBLISHED_INFO} END AS info
                 FROM artifacts WHERE bin IN ({})",
                self.engine.placeholders(1, 1),
                self.engine.placeholders(2, chunk.len())
            ));
            let mut query = sqlx::query(&sql).bind(max_seq);
            for &b in chunk {
                query = query.bind(i64::from(b));
            }
            for (path, bin, info) in parse_json_rows(&query.fetch_one(&self.pool).await?)? {
                if let Some(info) = info {
                    out.entry(bin).or_default().push((path, info));
                }
            }
        }
        Ok(out)
    }

    /// Every published target as (bin, path, info), if there are at most
    /// `max_rows` of them: what the live metadata signs, the publisher's
    /// starting copy of the bins. Read in pages in path order, so a
    /// repository too large for that costs at most `max_rows` rows read, and
    /// one with more than twice as many rows (removed ones included) only a
    /// count.
    pub async fn published_targets(
        &self,
        max_rows: usize,
    ) -> Result<Option<Vec<(u32, String, String)>>> {
        const PAGE: i64 = 20_000;
        // A count first (an index scan): a repository too large is not read at all.
        let present: i64 = sqlx::query("SELECT COUNT(*) AS n FROM artifacts")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        if usize::try_from(present).unwrap_or(usize::MAX) > max_rows.saturating_mul(2) {
            return Ok(None);
        }
        let sql = self.engine.json_rows(&format!(
            "SELECT path, bin, {PUBLISHED_INFO} AS info FROM artifacts
             WHERE path > {} AND {PUBLISHED_INFO} IS NOT NULL ORDER BY path LIMIT {}",
            self.engine.placeholders(1, 1),
            self.engine.placeholders(2, 1)
        ));
        let mut out = Vec::new();
        let mut after = String::new();
        loop {
            let page = parse_json_rows(
                &sqlx::query(&sql)
                    .bind(&after)
                    .bind(PAGE)
                    .fetch_one(&self.pool)
                    .await?,
            )?;
            let full = page.len() as i64 == PAGE;
            for (path, bin, info) in page {
                if path > after {
                    after.clone_from(&path);
                }
                if let Some(info) = info {
                    out.push((bin, path, info));
                }
            }
            if out.len() > max_rows {
                return Ok(None);
            }
            if !full {
                return Ok(Some(out));
            }
        }
    }

    /// A connection of its own, outside the pool (the publisher lock's session).
    pub async fn dedicated_connection(&self) -> Result<sqlx::AnyConnection> {
        Ok(self.pool.acquire().await?.detach())
    }

    /// Records a finished bootstrap: its state and its task, together.
    pub async fn finish_bootstrap(&self, key: &str, state: Value, task_id: &str) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(state.to_string())
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE tasks SET state = 'SUCCESS', status = 1, updated = $1 WHERE id = $2")
            .bind(now())
            .bind(task_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Takes over publishing: raises the publisher epoch and returns it.
    /// Call only while holding the publisher lock.
    pub async fn claim_publisher(&self, holder: &str) -> Result<i64> {
        Ok(sqlx::query(
            "UPDATE publisher SET epoch = epoch + 1, holder = $1, since = $2 WHERE id = 1 RETURNING epoch",
        )
        .bind(holder)
        .bind(now())
        .fetch_one(&self.writer)
        .await?
        .try_get("epoch")?)
    }

    /// Who publishes now: (epoch, holder, since).
    pub async fn publisher_holder(&self) -> Result<(i64, String, i64)> {
        let row = sqlx::query("SELECT epoch, holder, since FROM publisher WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok((
            row.try_get("epoch")?,
            row.try_get("holder")?,
            row.try_get("since")?,
        ))
    }

    /// Fails with [`Error::NotPublisher`] unless `epoch` is still current.
    pub async fn check_publisher(&self, epoch: i64) -> Result<()> {
        let current: i64 = sqlx::query("SELECT epoch FROM publisher WHERE id = 1")
            .fetch_one(&self.pool)
            .await?
            .try_get("epoch")?;
        if current == epoch {
            Ok(())
        } else {
            Err(Error::NotPublisher {
                ours: epoch,
                current,
            })
        }
    }

    /// Records a publication: new role versions, changes up to `max_seq`
    /// published, their tasks succeeded. Only while `epoch` is current: the
    /// row lock taken first makes a concurrent takeover wait for, or void, this.
    ///
    /// `published`: the pending changes the publication signed, when it
    /// signed them as read with the batch (see [`PendingBatch::pending`]).
    /// A change superseded by a newer one while the publication ran is then
    /// recorded as what the live metadata signs for its path.
    pub async fn finish_publication(
        &self,
        max_seq: i64,
        roles: &[(String, RoleVersion)],
        epoch: i64,
        published: Option<&[PendingChange]>,
    ) -> Result<u64> {
        let mut tx = self.writer.begin().await?;
        let fenced = sqlx::query("UPDATE publisher SET since = since WHERE id = 1 AND epoch = $1")
            .bind(epoch)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if fenced != 1 {
            drop(tx);
            let (current, _, _) = self.publisher_holder().await?;
            return Err(Error::NotPublisher {
                ours: epoch,
                current,
            });
        }
        // Multi-row statements: a publication of every bin records 16,384
        // roles, and one statement each costs a round trip apiece.
        for chunk in roles.chunks(300) {
            let rows = (0..chunk.len())
                .map(|i| format!("({})", self.engine.placeholders(3 * i + 1, 3)))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO roles (name, version, expires) VALUES {rows}
                 ON CONFLICT (name) DO UPDATE SET version = excluded.version, expires = excluded.expires"
            );
            let mut query = sqlx::query(&sql);
            for (name, role) in chunk {
                query = query
                    .bind(name)
                    .bind(role.version as i64)
                    .bind(role.expires);
            }
            query.execute(&mut *tx).await?;
        }
        // The logged changes up to `max_seq` are live from here on; they
        // are moved into `artifacts` after this commits
        // ([`Store::merge_published_log`]), so the tasks need not wait for
        // that. The row lock also makes writers of changes wait until this
        // is recorded (PostgreSQL; SQLite has one writer anyway).
        sqlx::query(
            "UPDATE sequence SET published = CASE WHEN published < $1 THEN $1 ELSE published END
             WHERE id = 1",
        )
        .bind(max_seq)
        .execute(&mut *tx)
        .await?;
        // Removals the publication signed leave no row (as in
        // [`DELETE_PUBLISHED_REMOVALS`]); the other changes are live.
        sqlx::query(
            "DELETE FROM artifacts
             WHERE change_seq > published_seq AND staged = 0 AND change_seq <= $1 AND info IS NULL",
        )
        .bind(max_seq)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE artifacts SET published_seq = change_seq, published_info = NULL
             WHERE change_seq > published_seq AND staged = 0 AND change_seq <= $1",
        )
        .bind(max_seq)
        .execute(&mut *tx)
        .await?;
        // A change the publication signed that a direct write to
        // `artifacts` (staged, publish, import) overwrote meanwhile: such a
        // row is pending with a number past the batch. Rare; looked up only then.
        if let Some(published) = published {
            let overwritten = sqlx::query(
                "SELECT path FROM artifacts WHERE change_seq > published_seq AND change_seq > $1 LIMIT 1",
            )
            .bind(max_seq)
            .fetch_optional(&mut *tx)
            .await?;
            if overwritten.is_some() {
                self.record_superseded(&mut tx, max_seq, published).await?;
            }
        }
        let done = sqlx::query(
            "UPDATE tasks SET state = 'SUCCESS', status = 1, updated = $1 WHERE state = 'PENDING' AND seq IS NOT NULL AND seq <= $2",
        )
        .bind(now())
        .bind(max_seq)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(done)
    }

    /// The rows among `published` whose change was overwritten by a newer
    /// one after the batch was read: their published info becomes what the
    /// publication signed, so the store agrees with the live metadata.
    async fn record_superseded(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        max_seq: i64,
        published: &[PendingChange],
    ) -> Result<()> {
        let mut superseded = BTreeSet::new();
        for chunk in published.chunks(500) {
            let sql = format!(
                "SELECT path FROM artifacts WHERE change_seq > {} AND path IN ({})",
                self.engine.placeholders(1, 1),
                self.engine.placeholders(2, chunk.len())
            );
            let mut query = sqlx::query(&sql).bind(max_seq);
            for change in chunk {
                query = query.bind(&change.path);
            }
            for row in query.fetch_all(&mut **tx).await? {
                superseded.insert(row.try_get::<String, _>("path")?);
            }
        }
        for change in published.iter().filter(|c| superseded.contains(&c.path)) {
            sqlx::query(
                "UPDATE artifacts SET published_info = $1 WHERE path = $2 AND change_seq > $3",
            )
            .bind(&change.info)
            .bind(&change.path)
            .bind(max_seq)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    /// Marks one task finished.
    pub async fn finish_task(
        &self,
        id: &str,
        state: TaskState,
        status: bool,
        error: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE tasks SET state = $1, status = $2, error = $3, updated = $4 WHERE id = $5",
        )
        .bind(state.as_str())
        .bind(i64::from(status))
        .bind(error)
        .bind(now())
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Every published role's version and expiry.
    pub async fn roles(&self) -> Result<BTreeMap<String, RoleVersion>> {
        let rows = sqlx::query("SELECT name, version, expires FROM roles")
            .fetch_all(&self.pool)
            .await?;
        let mut out = BTreeMap::new();
        for row in rows {
            let version: i64 = row.try_get("version")?;
            out.insert(
                row.try_get("name")?,
                RoleVersion {
                    version: version as u64,
                    expires: row.try_get("expires")?,
                },
            );
        }
        Ok(out)
    }

    /// One published role's version and expiry (without reading all 16,384 bins).
    pub async fn role(&self, name: &str) -> Result<Option<RoleVersion>> {
        let row = sqlx::query("SELECT version, expires FROM roles WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            let version: i64 = row.try_get("version")?;
            Ok(RoleVersion {
                version: version as u64,
                expires: row.try_get("expires")?,
            })
        })
        .transpose()
    }

    /// One task.
    pub async fn task(&self, id: &str) -> Result<Option<Task>> {
        let row = sqlx::query("SELECT * FROM tasks WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| task_from_row(&r)).transpose()
    }

    /// The newest tasks first, `limit` at most, optionally of one state.
    pub async fn tasks(&self, limit: u32, state: Option<&str>) -> Result<Vec<Task>> {
        let rows =
            match state {
                Some(s) => sqlx::query(
                    "SELECT * FROM tasks WHERE state = $1 ORDER BY created DESC, ord DESC LIMIT $2",
                )
                .bind(s)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?,
                None => {
                    sqlx::query("SELECT * FROM tasks ORDER BY created DESC, ord DESC LIMIT $1")
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await?
                }
            };
        rows.iter().map(task_from_row).collect()
    }

    /// Artifact changes accepted and not yet published: the pending rows
    /// (a partial index) and the log (only unpublished changes), for health
    /// checks polled often. A path changed twice counts twice.
    pub async fn pending_count(&self) -> Result<i64> {
        Ok(sqlx::query(
            "SELECT (SELECT COUNT(*) FROM artifacts WHERE change_seq > published_seq)
                     + (SELECT COUNT(*) FROM artifact_log
                         WHERE seq > (SELECT published FROM sequence WHERE id = 1)) AS n",
        )
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?)
    }

    /// Counts for the metrics endpoint: artifacts present, pending, tasks by state.
    pub async fn counts(&self) -> Result<BTreeMap<String, i64>> {
        let mut out = BTreeMap::new();
        let present: i64 = sqlx::query(&format!(
            "SELECT COUNT(*) AS n FROM artifacts WHERE {PUBLISHED_INFO} IS NOT NULL"
        ))
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        out.insert("artifacts_published".into(), present);
        out.insert("artifacts_pending".into(), self.pending_count().await?);
        for row in sqlx::query("SELECT state, COUNT(*) AS n FROM tasks GROUP BY state")
            .fetch_all(&self.pool)
            .await?
        {
            let state: String = row.try_get("state")?;
            out.insert(format!("tasks_{}", state.to_lowercase()), row.try_get("n")?);
        }
        Ok(out)
    }
}

/// A change as [`Engine::json_changes`] returns it: path, bin, info, and
/// its order (seq, id).
type ChangeRow = (String, u32, Option<String>, i64, i64);

fn parse_changes(row: &sqlx::any::AnyRow) -> Result<Vec<ChangeRow>> {
    let text: String = row.try_get("rows")?;
    serde_json::from_str(&text).map_err(|e| Error::Corrupt(format!("reading pending changes: {e}")))
}

/// Tasks waiting for the changes up to `max_seq`.
async fn pending_tasks(tx: &mut sqlx::Transaction<'_, sqlx::Any>, max_seq: i64) -> Result<usize> {
    let n: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM tasks WHERE state = 'PENDING' AND seq IS NOT NULL AND seq <= $1",
    )
    .bind(max_seq)
    .fetch_one(&mut **tx)
    .await?
    .try_get("n")?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// Takes the next change sequence number. Its row lock orders every writer
/// of changes, so numbers (and log ids) follow the commit order.
pub(crate) async fn next_seq(tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<i64> {
    Ok(
        sqlx::query("UPDATE sequence SET last = last + 1 WHERE id = 1 RETURNING last")
            .fetch_one(&mut **tx)
            .await?
            .try_get("last")?,
    )
}

/// Appends changes to publish to the log, numbered `seq`, in their order:
/// the API's and the package index's changes alike.
pub(crate) async fn log_changes(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    engine: Engine,
    seq: i64,
    changes: &[ArtifactChange],
) -> Result<()> {
    // Multi-row statements: one round trip per 400 changes, not per change.
    for chunk in changes.chunks(400) {
        let rows = (0..chunk.len())
            .map(|i| format!("({})", engine.placeholders(4 * i + 1, 4)))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("INSERT INTO artifact_log (seq, path, bin, info) VALUES {rows}");
        let mut query = sqlx::query(&sql);
        for change in chunk {
            query = query
                .bind(seq)
                .bind(&change.path)
                .bind(i64::from(change.bin))
                .bind(&change.info);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

async fn insert_task(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    task: &NewTask,
    seq: Option<i64>,
) -> Result<()> {
    let t = now();
    let (state, status) = if task.done {
        ("SUCCESS", Some(true))
    } else {
        ("PENDING", None)
    };
    sqlx::query(
        "INSERT INTO tasks (id, kind, state, seq, status, message, details, created, updated)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&task.id)
    .bind(task.kind)
    .bind(state)
    .bind(if task.done { None } else { seq })
    .bind(status.map(i64::from))
    .bind(&task.message)
    .bind(task.details.to_string())
    .bind(t)
    .bind(t)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn task_from_row(row: &sqlx::any::AnyRow) -> Result<Task> {
    let details: Option<String> = row.try_get("details")?;
    let status: Option<i64> = row.try_get("status")?;
    Ok(Task {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        state: TaskState::parse(&row.try_get::<String, _>("state")?),
        status: status.map(|s| s != 0),
        message: row.try_get("message")?,
        error: row.try_get("error")?,
        details: details.and_then(|d| RawValue::from_string(d).ok()),
        created: row.try_get("created")?,
        updated: row.try_get("updated")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str) -> NewTask {
        NewTask {
            id: id.into(),
            kind: "add_artifacts",
            message: String::new(),
            details: Value::Null,
            done: false,
        }
    }

    fn change(path: &str, info: Option<&str>) -> ArtifactChange {
        ArtifactChange {
            path: path.into(),
            bin: 3,
            info: info.map(String::from),
        }
    }

    /// What a publication that includes changes up to `max_seq` signs in
    /// bin 3: the bin as `artifacts` has it, then the logged changes, as
    /// the publisher applies them.
    async fn live(store: &Store, max_seq: i64) -> Vec<(String, String)> {
        let mut bin: BTreeMap<String, String> = store
            .bin_contents(&[3], max_seq)
            .await
            .expect("bin contents")
            .remove(&3)
            .unwrap_or_default()
            .into_iter()
            .collect();
        let logged = sqlx::query("SELECT path, info FROM artifact_log WHERE seq <= $1 ORDER BY id")
            .bind(max_seq)
            .fetch_all(store.pool())
            .await
            .expect("log");
        for row in logged {
            let path: String = row.get("path");
            match row.get::<Option<String>, _>("info") {
                Some(info) => bin.insert(path, info),
                None => bin.remove(&path),
            };
        }
        bin.into_iter().collect()
    }

    fn entries(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(p, i)| (p.to_string(), i.to_string()))
            .collect()
    }

    /// A fresh SQLite store and a publisher lease on it (keep the dir alive).
    async fn publishing_store() -> (tempfile::TempDir, Store, i64) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open_sqlite(&dir.path().join("t.db"))
            .await
            .expect("open");
        let epoch = store.claim_publisher("test").await.expect("claim");
        (dir, store, epoch)
    }

    async fn published_count(store: &Store) -> i64 {
        store.counts().await.expect("counts")["artifacts_published"]
    }

    /// The published info of a row survives newer changes until they are
    /// published themselves, however many come, and is not kept twice after.
    #[tokio::test]
    async fn published_info_stays_live_until_the_newer_change_is_published() {
        let (_dir, store, epoch) = publishing_store().await;

        let s1 = store
            .record_changes(
                &[change("a", Some("A")), change("g", Some("G"))],
                false,
                &task("t1"),
            )
            .await
            .expect("record");
        assert_eq!(live(&store, s1 - 1).await, entries(&[]));
        assert_eq!(live(&store, s1).await, entries(&[("a", "A"), ("g", "G")]));
        assert_eq!(published_count(&store).await, 0);
        store
            .finish_publication(s1, &[], epoch, None)
            .await
            .expect("finish");
        store.merge_published_log().await.expect("merge");
        assert_eq!(published_count(&store).await, 2);

        // Two changes of `a` and the removal of `g` wait; a publication
        // that stops before them still signs what was published.
        let s2 = store
            .record_changes(
                &[change("a", Some("B")), change("g", None)],
                false,
                &task("t2"),
            )
            .await
            .expect("record");
        let s3 = store
            .record_changes(&[change("a", Some("C"))], false, &task("t3"))
            .await
            .expect("record");
        assert_eq!(live(&store, s1).await, entries(&[("a", "A"), ("g", "G")]));
        // The log keeps every change: a batch up to s2 signs B.
        assert_eq!(live(&store, s2).await, entries(&[("a", "B")]));
        assert_eq!(live(&store, s3).await, entries(&[("a", "C")]));
        assert_eq!(published_count(&store).await, 2);

        store
            .finish_publication(s3, &[], epoch, None)
            .await
            .expect("finish");
        store.merge_published_log().await.expect("merge");
        assert_eq!(live(&store, s3).await, entries(&[("a", "C")]));
        assert_eq!(published_count(&store).await, 1);

        // A staged change is never live until it is released.
        let s4 = store
            .record_changes(&[change("a", Some("D"))], true, &task("t4"))
            .await
            .expect("record");
        assert_eq!(live(&store, s4).await, entries(&[("a", "C")]));
        let s5 = store.unstage_all(&task("t5")).await.expect("unstage");
        assert_eq!(live(&store, s5).await, entries(&[("a", "D")]));
        assert_eq!(live(&store, s4).await, entries(&[("a", "C")]));
    }

    /// A publication signs the batch as read. A change overwritten while it
    /// ran (here by a staged one, which the next publications leave alone)
    /// is recorded as what the live metadata signs, so a bin read afresh
    /// from the store later signs the same thing.
    #[tokio::test]
    async fn a_change_superseded_during_its_publication_is_recorded_as_published() {
        let (_dir, store, epoch) = publishing_store().await;
        store
            .record_changes(&[change("a", Some("O"))], false, &task("t0"))
            .await
            .expect("record");
        let batch = store.pending_batch(10).await.expect("batch");
        store
            .finish_publication(batch.max_seq, &[], epoch, batch.pending.as_deref())
            .await
            .expect("finish");
        store.merge_published_log().await.expect("merge");

        store
            .record_changes(
                &[change("a", Some("A")), change("b", Some("B"))],
                false,
                &task("t1"),
            )
            .await
            .expect("record");
        let batch = store.pending_batch(10).await.expect("batch");
        let mut pending = batch.pending.clone().expect("held");
        pending.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(batch.changes, 2);
        assert_eq!(batch.bins, BTreeSet::from([3]));
        assert_eq!(
            pending
                .iter()
                .map(|c| c.info.as_deref())
                .collect::<Vec<_>>(),
            [Some("A"), Some("B")]
        );
        // Meanwhile `a` gets a staged change: the publication signs A.
        store
            .record_changes(
                &[change("a", Some("S"))],
                true,
                &NewTask {
                    done: true,
                    ..task("t2")
                },
            )
            .await
            .expect("record");
        store
            .finish_publication(batch.max_seq, &[], epoch, Some(&pending))
            .await
            .expect("finish");
        store.merge_published_log().await.expect("merge");
        let now = store.last_seq().await.expect("seq");
        assert_eq!(live(&store, now).await, entries(&[("a", "A"), ("b", "B")]));
        assert_eq!(store.pending_batch(10).await.expect("batch").changes, 0);

        // Too many to hold: bins and count only.
        store
            .record_changes(
                &[change("c", Some("C")), change("d", None)],
                false,
                &task("t3"),
            )
            .await
            .expect("record");
        let batch = store.pending_batch(1).await.expect("batch");
        assert!(batch.pending.is_none());
        assert_eq!((batch.changes, batch.tasks), (2, 1));
        assert_eq!(batch.bins, BTreeSet::from([3]));
    }

    /// Accepted changes are logged; a publication moves those it signed
    /// into `artifacts` as published and leaves the later ones logged.
    /// Readers of the wanted state see the latest change of each path.
    #[tokio::test]
    async fn the_log_holds_changes_until_their_publication_is_recorded() {
        let (_dir, store, epoch) = publishing_store().await;
        let logged = |store: &Store| {
            let pool = store.pool().clone();
            async move {
                sqlx::query("SELECT COUNT(*) AS n FROM artifact_log")
                    .fetch_one(&pool)
                    .await
                    .expect("count")
                    .get::<i64, _>("n")
            }
        };
        store
            .record_changes(
                &[change("a", Some("A")), change("b", Some("B"))],
                false,
                &task("t1"),
            )
            .await
            .expect("record");
        store
            .record_changes(
                &[change("a", Some("A2")), change("b", None)],
                false,
                &task("t2"),
            )
            .await
            .expect("record");
        assert_eq!(logged(&store).await, 4);
        let paths = ["a".to_string(), "b".to_string(), "z".to_string()];
        assert_eq!(
            store.present_paths(&paths).await.expect("present"),
            BTreeSet::from(["a".to_string()])
        );
        assert_eq!(store.pending_count().await.expect("count"), 4);

        let batch = store.pending_batch(10).await.expect("batch");
        let mut pending = batch.pending.clone().expect("held");
        pending.sort_by(|x, y| x.path.cmp(&y.path));
        assert_eq!(
            pending,
            [
                PendingChange {
                    path: "a".into(),
                    bin: 3,
                    info: Some("A2".into())
                },
                PendingChange {
                    path: "b".into(),
                    bin: 3,
                    info: None
                },
            ]
        );
        assert_eq!((batch.changes, batch.tasks), (2, 2));

        // Logged while the publication runs: stays for the next one.
        let s3 = store
            .record_changes(&[change("b", Some("B3"))], false, &task("t3"))
            .await
            .expect("record");
        store
            .finish_publication(batch.max_seq, &[], epoch, Some(&pending))
            .await
            .expect("finish");
        // Published, still in the log: readers of the live state see it there.
        assert!(store.published_in_log().await.expect("window"));
        assert_eq!(store.published_seq().await.expect("mark"), batch.max_seq);
        assert_eq!(
            store.published_info("a").await.expect("info").as_deref(),
            Some("A2")
        );
        assert_eq!(store.published_info("b").await.expect("info"), None);
        assert_eq!(store.pending_count().await.expect("count"), 1);
        assert_eq!(store.pending_batch(10).await.expect("batch").changes, 1);
        store.merge_published_log().await.expect("merge");
        assert!(!store.published_in_log().await.expect("window"));
        assert_eq!(logged(&store).await, 1);
        assert_eq!(
            store.published_info("a").await.expect("info").as_deref(),
            Some("A2")
        );
        assert_eq!(store.published_info("b").await.expect("info"), None);
        assert_eq!(published_count(&store).await, 1);
        assert_eq!(live(&store, batch.max_seq).await, entries(&[("a", "A2")]));
        assert_eq!(live(&store, s3).await, entries(&[("a", "A2"), ("b", "B3")]));
        assert_eq!(
            store.present_paths(&paths).await.expect("present"),
            BTreeSet::from(["a".to_string(), "b".to_string()])
        );
        let next = store.pending_batch(10).await.expect("batch");
        assert_eq!((next.changes, next.tasks), (1, 1));

        // A batch too large to hold moves the log into `artifacts` first.
        let bulk = store.pending_batch(0).await.expect("batch");
        assert!(bulk.pending.is_none());
        assert_eq!((bulk.changes, bulk.tasks), (1, 1));
        assert_eq!(logged(&store).await, 0);
        store
            .finish_publication(bulk.max_seq, &[], epoch, None)
            .await
            .expect("finish");
        store.merge_published_log().await.expect("merge");
        assert_eq!(published_count(&store).await, 2);
        assert_eq!(store.pending_count().await.expect("count"), 0);
    }

    /// A published removal leaves no row in `artifacts`, whether it came
    /// through the log or was written there directly; one still pending,
    /// staged or followed by a newer change keeps its path's row.
    #[tokio::test]
    async fn a_published_removal_leaves_no_row() {
        let (_dir, store, epoch) = publishing_store().await;
        let rows = |store: &Store| {
            let pool = store.pool().clone();
            async move {
                sqlx::query("SELECT path FROM artifacts ORDER BY path")
                    .fetch_all(&pool)
                    .await
                    .expect("rows")
                    .iter()
                    .map(|r| r.get::<String, _>("path"))
                    .collect::<Vec<_>>()
            }
        };
        let publish = |store: &Store| {
            let store = store.clone();
            async move {
                let batch = store.pending_batch(10).await.expect("batch");
                store
                    .finish_publication(batch.max_seq, &[], epoch, batch.pending.as_deref())
                    .await
                    .expect("finish");
                store.merge_published_log().await.expect("merge");
            }
        };
        store
            .record_changes(
                &[
                    change("a", Some("A")),
                    change("b", Some("B")),
                    change("c", Some("C")),
                    change("d", Some("D")),
                ],
                false,
                &task("t1"),
            )
            .await
            .expect("record");
        publish(&store).await;
        assert_eq!(rows(&store).await, ["a", "b", "c", "d"]);

        // Through the log: `a` removed; `b` removed and added again; `c`
        // removed, but a newer addition waits.
        store
            .record_changes(
                &[change("a", None), change("b", None), change("c", None)],
                false,
                &task("t2"),
            )
            .await
            .expect("record");
        store
            .record_changes(&[change("b", Some("B2"))], false, &task("t3"))
            .await
            .expect("record");
        let batch = store.pending_batch(10).await.expect("batch");
        let s4 = store
            .record_changes(&[change("c", Some("C2"))], false, &task("t4"))
            .await
            .expect("record");
        store
            .finish_publication(batch.max_seq, &[], epoch, batch.pending.as_deref())
            .await
            .expect("finish");
        store.merge_published_log().await.expect("merge");
        assert_eq!(rows(&store).await, ["b", "d"]);
        assert_eq!(store.published_info("a").await.expect("info"), None);
        assert_eq!(store.published_info("c").await.expect("info"), None);
        assert_eq!(
            live(&store, s4).await,
            entries(&[("b", "B2"), ("c", "C2"), ("d", "D")])
        );
        publish(&store).await;
        assert_eq!(rows(&store).await, ["b", "c", "d"]);

        // Written to `artifacts` directly: a staged removal keeps its row
        // until it is released and published.
        store
            .record_changes(&[change("d", None)], true, &task("t5"))
            .await
            .expect("record");
        publish(&store).await;
        assert_eq!(rows(&store).await, ["b", "c", "d"]);
        assert_eq!(
            store.published_info("d").await.expect("info").as_deref(),
            Some("D")
        );
        store.unstage_all(&task("t6")).await.expect("unstage");
        publish(&store).await;
        assert_eq!(rows(&store).await, ["b", "c"]);
        assert_eq!(store.published_info("d").await.expect("info"), None);
        assert_eq!(published_count(&store).await, 2);
        let paths = ["a".to_string(), "c".to_string(), "d".to_string()];
        assert_eq!(
            store.present_paths(&paths).await.expect("present"),
            BTreeSet::from(["c".to_string()])
        );
    }

    /// Changes read ahead while the publisher rests make the same batch as
    /// reading them all at once, also when a staged write moved them from
    /// the log into `artifacts` in between.
    #[tokio::test]
    async fn changes_read_ahead_make_the_same_batch() {
        let (_dir, store, _epoch) = publishing_store().await;
        store
            .record_changes(
                &[change("a", Some("A")), change("b", Some("B"))],
                false,
                &task("t1"),
            )
            .await
            .expect("record");
        let mut ahead = LogReadAhead::default();
        store
            .read_log_ahead(&mut ahead, 10)
            .await
            .expect("read ahead");
        assert_eq!(ahead.len(), 2);
        store
            .record_changes(
                &[change("a", Some("A2")), change("c", None)],
                false,
                &task("t2"),
            )
            .await
            .expect("record");
        store
            .read_log_ahead(&mut ahead, 10)
            .await
            .expect("read ahead");
        assert_eq!(ahead.len(), 4);
        // A staged change moves the whole log into `artifacts`.
        store
            .record_changes(
                &[change("s", Some("S"))],
                true,
                &NewTask {
                    done: true,
                    ..task("t3")
                },
            )
            .await
            .expect("record");
        store
            .record_changes(&[change("b", Some("B4"))], false, &task("t4"))
            .await
            .expect("record");

        let sorted = |batch: PendingBatch| {
            let mut pending = batch.pending.expect("held");
            pending.sort_by(|x, y| x.path.cmp(&y.path));
            (pending, batch.tasks, batch.max_seq)
        };
        let all_at_once = sorted(store.pending_batch(10).await.expect("batch"));
        let with_ahead = sorted(store.pending_batch_after(10, ahead).await.expect("batch"));
        assert_eq!(with_ahead, all_at_once);
        let infos: Vec<(&str, Option<&str>)> = with_ahead
            .0
            .iter()
            .map(|c| (c.path.as_str(), c.info.as_deref()))
            .collect();
        assert_eq!(infos, [("a", Some("A2")), ("b", Some("B4")), ("c", None)]);
        assert_eq!(with_ahead.1, 3);

        // Past `hold`, reading ahead gives up and the batch is read in bulk.
        let mut ahead = LogReadAhead::default();
        store
            .read_log_ahead(&mut ahead, 0)
            .await
            .expect("read ahead");
        assert!(ahead.is_empty());
        let bulk = store.pending_batch_after(10, ahead).await.expect("batch");
        assert!(bulk.pending.is_none());
        assert_eq!(bulk.changes, 3);
    }

    /// The publisher's starting copy: published state only, across pages,
    /// and nothing when the repository is larger than asked for.
    #[tokio::test]
    async fn published_targets_are_the_published_state_or_nothing() {
        let (_dir, store, epoch) = publishing_store().await;
        let s1 = store
            .record_changes(
                &[change("a", Some("A")), change("b", Some("B"))],
                false,
                &task("t1"),
            )
            .await
            .expect("record");
        store
            .finish_publication(s1, &[], epoch, None)
            .await
            .expect("finish");
        store.merge_published_log().await.expect("merge");
        // Pending: a new `c`, `a` changed, `b` removed. None of it is published.
        store
            .record_changes(
                &[
                    change("c", Some("C")),
                    change("a", Some("A2")),
                    change("b", None),
                ],
                false,
                &task("t2"),
            )
            .await
            .expect("record");
        let all = store.published_targets(10).await.expect("read");
        assert_eq!(
            all,
            Some(vec![
                (3, "a".to_string(), "A".to_string()),
                (3, "b".to_string(), "B".to_string()),
            ])
        );
        assert_eq!(store.published_targets(1).await.expect("read"), None);
    }

    #[tokio::test]
    async fn replace_setting_refuses_a_stale_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("t.db")).await.unwrap();
        let a = serde_json::json!({"n": 1});
        assert!(store.replace_setting("k", None, &a, None).await.unwrap());
        // Created already: a second "absent" writer loses.
        assert!(!store.replace_setting("k", None, &a, None).await.unwrap());
        let read = store.setting_text("k").await.unwrap();
        let b = serde_json::json!({"n": 2});
        assert!(
            store
                .replace_setting("k", read.as_deref(), &b, None)
                .await
                .unwrap()
        );
        // The same read is stale now: refused, nothing written.
        let c = serde_json::json!({"n": 3});
        assert!(
            !store
                .replace_setting("k", read.as_deref(), &c, None)
                .await
                .unwrap()
        );
        assert_eq!(store.setting::<Value>("k").await.unwrap(), Some(b));
    }
}
