//! The state store: everything the service keeps, in SQLite in the data
//! directory (nothing to install). Every accepted change is committed here
//! before the API answers; the publisher reads pending changes from here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use crate::error::{Error, Result};
use crate::task::{Task, TaskState};

/// The SQLite state store.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
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
}

/// A role's published version and expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleVersion {
    pub version: u64,
    pub expires: i64,
}

fn now() -> i64 {
    tufa_metadata::UtcTime::now().unix()
}

impl Store {
    /// Opens (creating and migrating) the SQLite database at `path`.
    pub async fn open_sqlite(path: &Path) -> Result<Store> {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Durable commits: an accepted artifact survives a power cut.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        sqlx::migrate!("migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|e| Error::Corrupt(format!("migrating the database: {e}")))?;
        Ok(Store { pool })
    }

    /// A setting, parsed from JSON.
    pub async fn setting<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let row = sqlx::query("SELECT value FROM settings WHERE key = ?")
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

    /// Stores a setting as JSON.
    pub async fn set_setting<T: Serialize>(&self, key: &str, value: &T) -> Result<()> {
        let text = serde_json::to_string(value).map_err(|e| Error::Corrupt(e.to_string()))?;
        sqlx::query("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(text)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes a setting.
    pub async fn delete_setting(&self, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM settings WHERE key = ?")
            .bind(key)
            .execute(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        for (key, value) in settings {
            sqlx::query(
                "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .bind(*key)
            .bind(value.to_string())
            .execute(&mut *tx)
            .await?;
        }
        if let Some(key) = delete {
            sqlx::query("DELETE FROM settings WHERE key = ?")
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
    pub async fn record_changes(
        &self,
        changes: &[ArtifactChange],
        staged: bool,
        task: &NewTask,
    ) -> Result<i64> {
        let mut tx = self.pool.begin().await?;
        let seq: i64 =
            sqlx::query("UPDATE sequence SET last = last + 1 WHERE id = 1 RETURNING last")
                .fetch_one(&mut *tx)
                .await?
                .try_get("last")?;
        // Multi-row statements: one round trip per 400 changes, not per change.
        for chunk in changes.chunks(400) {
            let rows = vec!["(?, ?, ?, ?, ?)"; chunk.len()].join(", ");
            let sql = format!(
                "INSERT INTO artifacts (path, bin, info, change_seq, staged) VALUES {rows}
                 ON CONFLICT (path) DO UPDATE SET info = excluded.info, change_seq = excluded.change_seq,
                     staged = excluded.staged"
            );
            let mut query = sqlx::query(&sql);
            for change in chunk {
                query = query
                    .bind(&change.path)
                    .bind(i64::from(change.bin))
                    .bind(&change.info)
                    .bind(seq)
                    .bind(staged);
            }
            query.execute(&mut *tx).await?;
        }
        insert_task(&mut tx, task, Some(seq)).await?;
        tx.commit().await?;
        Ok(seq)
    }

    /// Which of `paths` are present (wanted, not removed).
    pub async fn present_paths(&self, paths: &[String]) -> Result<BTreeSet<String>> {
        let mut present = BTreeSet::new();
        for chunk in paths.chunks(500) {
            let placeholders = vec!["?"; chunk.len()].join(",");
            let sql = format!(
                "SELECT path FROM artifacts WHERE info IS NOT NULL AND path IN ({placeholders})"
            );
            let mut query = sqlx::query(&sql);
            for p in chunk {
                query = query.bind(p);
            }
            for row in query.fetch_all(&self.pool).await? {
                present.insert(row.try_get::<String, _>("path")?);
            }
        }
        Ok(present)
    }

    /// Releases every staged change for publication, with a task for it.
    pub async fn unstage_all(&self, task: &NewTask) -> Result<i64> {
        let mut tx = self.pool.begin().await?;
        let seq: i64 =
            sqlx::query("UPDATE sequence SET last = last + 1 WHERE id = 1 RETURNING last")
                .fetch_one(&mut *tx)
                .await?
                .try_get("last")?;
        sqlx::query("UPDATE artifacts SET staged = 0, change_seq = ? WHERE staged = 1 AND change_seq > published_seq")
            .bind(seq)
            .execute(&mut *tx)
            .await?;
        insert_task(&mut tx, task, Some(seq)).await?;
        tx.commit().await?;
        Ok(seq)
    }

    /// Records a task that needs no artifact change.
    pub async fn insert_task(&self, task: &NewTask, seq: Option<i64>) -> Result<()> {
        let mut tx = self.pool.begin().await?;
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

    /// What is pending now.
    pub async fn pending_batch(&self) -> Result<PendingBatch> {
        let mut tx = self.pool.begin().await?;
        let max_seq: i64 = sqlx::query("SELECT last FROM sequence WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?
            .try_get("last")?;
        let rows = sqlx::query(
            "SELECT DISTINCT bin FROM artifacts WHERE change_seq > published_seq AND staged = 0 AND change_seq <= ?",
        )
        .bind(max_seq)
        .fetch_all(&mut *tx)
        .await?;
        let mut bins = BTreeSet::new();
        for row in rows {
            bins.insert(
                u32::try_from(row.try_get::<i64, _>("bin")?)
                    .map_err(|e| Error::Corrupt(e.to_string()))?,
            );
        }
        let changes: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM artifacts WHERE change_seq > published_seq AND staged = 0 AND change_seq <= ?",
        )
        .bind(max_seq)
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
        let tasks: i64 = sqlx::query("SELECT COUNT(*) AS n FROM tasks WHERE state = 'PENDING' AND seq IS NOT NULL AND seq <= ?")
            .bind(max_seq)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        tx.commit().await?;
        Ok(PendingBatch {
            max_seq,
            bins,
            changes: changes as usize,
            tasks: tasks as usize,
        })
    }

    /// The targets of each bin as the batch up to `max_seq` will publish them:
    /// pending changes up to `max_seq`, published state for everything else.
    pub async fn bin_contents(
        &self,
        bins: &[u32],
        max_seq: i64,
    ) -> Result<BTreeMap<u32, Vec<(String, String)>>> {
        let mut out: BTreeMap<u32, Vec<(String, String)>> =
            bins.iter().map(|&b| (b, Vec::new())).collect();
        for chunk in bins.chunks(500) {
            let placeholders = vec!["?"; chunk.len()].join(",");
            let sql = format!(
                "SELECT path, bin, CASE WHEN staged = 0 AND change_seq <= ? THEN info ELSE published_info END AS live
                 FROM artifacts WHERE bin IN ({placeholders})"
            );
            let mut query = sqlx::query(&sql).bind(max_seq);
            for &b in chunk {
                query = query.bind(i64::from(b));
            }
            for row in query.fetch_all(&self.pool).await? {
                let live: Option<String> = row.try_get("live")?;
                if let Some(info) = live {
                    let bin = u32::try_from(row.try_get::<i64, _>("bin")?)
                        .map_err(|e| Error::Corrupt(e.to_string()))?;
                    out.entry(bin)
                        .or_default()
                        .push((row.try_get("path")?, info));
                }
            }
        }
        Ok(out)
    }

    /// Records a publication: new role versions, changes up to `max_seq`
    /// published, their tasks succeeded.
    pub async fn finish_publication(
        &self,
        max_seq: i64,
        roles: &[(String, RoleVersion)],
    ) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        for (name, role) in roles {
            sqlx::query(
                "INSERT INTO roles (name, version, expires) VALUES (?, ?, ?)
                 ON CONFLICT (name) DO UPDATE SET version = excluded.version, expires = excluded.expires",
            )
            .bind(name)
            .bind(role.version as i64)
            .bind(role.expires)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "UPDATE artifacts SET published_info = info, published_seq = change_seq
             WHERE change_seq > published_seq AND staged = 0 AND change_seq <= ?",
        )
        .bind(max_seq)
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query(
            "UPDATE tasks SET state = 'SUCCESS', status = 1, updated = ? WHERE state = 'PENDING' AND seq IS NOT NULL AND seq <= ?",
        )
        .bind(now())
        .bind(max_seq)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(done)
    }

    /// Marks one task finished.
    pub async fn finish_task(
        &self,
        id: &str,
        state: TaskState,
        status: bool,
        error: Option<&str>,
    ) -> Result<()> {
        sqlx::query("UPDATE tasks SET state = ?, status = ?, error = ?, updated = ? WHERE id = ?")
            .bind(state.as_str())
            .bind(status)
            .bind(error)
            .bind(now())
            .bind(id)
            .execute(&self.pool)
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

    /// One task.
    pub async fn task(&self, id: &str) -> Result<Option<Task>> {
        let row = sqlx::query("SELECT * FROM tasks WHERE id = ?")
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
                    "SELECT * FROM tasks WHERE state = ? ORDER BY created DESC, rowid DESC LIMIT ?",
                )
                .bind(s)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?,
                None => {
                    sqlx::query("SELECT * FROM tasks ORDER BY created DESC, rowid DESC LIMIT ?")
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await?
                }
            };
        rows.iter().map(task_from_row).collect()
    }

    /// Counts for the metrics endpoint: artifacts present, pending, tasks by state.
    pub async fn counts(&self) -> Result<BTreeMap<String, i64>> {
        let mut out = BTreeMap::new();
        let present: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM artifacts WHERE published_info IS NOT NULL")
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?;
        out.insert("artifacts_published".into(), present);
        let pending: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM artifacts WHERE change_seq > published_seq")
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?;
        out.insert("artifacts_pending".into(), pending);
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

async fn insert_task(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
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
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&task.id)
    .bind(task.kind)
    .bind(state)
    .bind(if task.done { None } else { seq })
    .bind(status)
    .bind(&task.message)
    .bind(task.details.to_string())
    .bind(t)
    .bind(t)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn task_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Task> {
    let details: Option<String> = row.try_get("details")?;
    let status: Option<i64> = row.try_get("status")?;
    Ok(Task {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        state: TaskState::parse(&row.try_get::<String, _>("state")?),
        status: status.map(|s| s != 0),
        message: row.try_get("message")?,
        error: row.try_get("error")?,
        details: details.and_then(|d| serde_json::from_str(&d).ok()),
        created: row.try_get("created")?,
        updated: row.try_get("updated")?,
    })
}
