//! The SQLite job store: `queue.db`, its own file, in WAL mode.
//!
//! One writer connection behind a mutex does every write (SQLite has one writer at a time
//! anyway, and a claim must see the previous claim's commit); a second, read-only connection
//! serves lists, gets and counts so an admin page or a metrics scrape never waits behind a
//! claim. Each call holds its mutex for one short transaction.

mod claim;
mod jobs;
mod reads;
mod rows;
mod schedules;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use super::QueueError;
use super::job::{CancelOutcome, Enqueued, Job, JobId, JobState, NewJob};
use super::list::{JobCount, JobFilter, JobPage, PageRequest};
use super::schedule::{Schedule, ScheduleSpec};
use super::settings::{QueueSettings, Synchronous};
use super::store::{ClaimRequest, ExpiredLease, Finish, JobStore, PruneBefore, Renewal};
use crate::store::StoreError;
use crate::store::migrations::MigrationSet;

mod embedded {
    refinery::embed_migrations!("migrations/queue");
}

/// The migrations of `queue.db`, applied by the shared [`MigrationSet::apply`].
pub fn migrations() -> Result<MigrationSet, StoreError> {
    let runner = embedded::migrations::runner();
    let named: Vec<(String, String)> = runner
        .get_migrations()
        .iter()
        .map(|m| {
            (
                format!("V{}__{}", m.version(), m.name()),
                m.sql().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let pairs: Vec<(&str, &str)> = named
        .iter()
        .map(|(name, sql)| (name.as_str(), sql.as_str()))
        .collect();
    MigrationSet::from_sql(&pairs)
}

/// How [`SqliteJobStore::open`] configures its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteOptions {
    pub synchronous: Synchronous,
    pub busy_timeout: Duration,
}

impl From<&QueueSettings> for SqliteOptions {
    fn from(settings: &QueueSettings) -> Self {
        Self {
            synchronous: settings.synchronous,
            busy_timeout: settings.busy_timeout,
        }
    }
}

pub struct SqliteJobStore {
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
    checkpointer: Arc<Mutex<Connection>>,
    /// Checkpoints the WAL in the background; stops when the store is dropped.
    _checkpoints: Checkpoints,
}

/// How often the background thread folds the WAL back into the database file.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(250);

/// The thread that checkpoints `queue.db`. Commits never checkpoint (the writer's
/// auto-checkpoint is off): a checkpoint syncs the database file, which on a commit's path
/// made about one job in a hundred wait for it (measured with `benches/queue.rs`,
/// `synchronous=NORMAL`: enqueue → start p99 13.5–15.4 ms with auto-checkpoints, 0.8–1.0 ms
/// with this thread).
struct Checkpoints {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpoints {
    fn start(conn: Arc<Mutex<Connection>>) -> Result<Self, QueueError> {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("queue-checkpoint".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(CHECKPOINT_INTERVAL)
                {
                    // PASSIVE: copies what no reader still needs, never waits for anyone.
                    if let Err(e) = lock(&conn).execute_batch("PRAGMA wal_checkpoint(PASSIVE);") {
                        tracing::warn!(error = %e, "queue.db checkpoint failed");
                    }
                }
            })
            .map_err(|e| {
                QueueError::Storage(StoreError::Internal(format!(
                    "cannot start the queue's checkpoint thread: {e}"
                )))
            })?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpoints {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl SqliteJobStore {
    /// Opens `path`, creating and migrating it as needed.
    pub fn open(path: &Path, options: SqliteOptions) -> Result<Self, QueueError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut writer = Connection::open_with_flags(path, flags)?;
        configure(&writer, options)?;
        migrations()?.apply(&mut writer)?;
        let reader = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        configure(&reader, options)?;
        reader.execute_batch("PRAGMA query_only = ON;")?;
        writer.execute_batch("PRAGMA wal_autocheckpoint = 0;")?;
        let checkpointer = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        configure(&checkpointer, options)?;
        let checkpointer = Arc::new(Mutex::new(checkpointer));
        Ok(Self {
            _checkpoints: Checkpoints::start(checkpointer.clone())?,
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
            checkpointer,
        })
    }

    /// Runs `f` in a write transaction taken up front (`BEGIN IMMEDIATE`): a claim reads and
    /// then updates, and must not fail half-way on a lock upgrade. Commits when `f` succeeds.
    fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, QueueError>,
    ) -> Result<T, QueueError> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, QueueError>,
    ) -> Result<T, QueueError> {
        f(&lock(&self.reader))
    }

    /// The query plan of `sql` on the writer connection (tests check claims use indexes).
    #[cfg(test)]
    fn query_plan(&self, sql: &str, params: impl rusqlite::Params) -> Vec<String> {
        let conn = lock(&self.writer);
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        stmt.query_map(params, |row| row.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }
}

/// A panic while a connection was locked rolled its transaction back (the `Transaction`
/// drop does), so the connection is still good to use.
fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    conn.lock().unwrap_or_else(|e| e.into_inner())
}

/// Like the tenant databases' connections (see `store::sqlite::connection`), with the
/// durability the caller chose. The larger page cache keeps the claim and running indexes of
/// a deep queue in memory.
fn configure(conn: &Connection, options: SqliteOptions) -> Result<(), rusqlite::Error> {
    conn.busy_timeout(options.busy_timeout)?;
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    conn.set_prepared_statement_cache_capacity(64);
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = {};
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -16384;",
        options.synchronous.pragma()
    ))
}

impl JobStore for SqliteJobStore {
    fn enqueue(&self, jobs: Vec<NewJob>, now: DateTime<Utc>) -> Result<Vec<Enqueued>, QueueError> {
        self.write(|tx| jobs::enqueue(tx, &jobs, now))
    }

    fn claim(&self, request: &ClaimRequest<'_>) -> Result<Vec<Job>, QueueError> {
        if request.limit == 0 {
            return Ok(Vec::new());
        }
        self.write(|tx| claim::claim(tx, request))
    }

    fn renew(
        &self,
        owner: &str,
        ids: &[JobId],
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Renewal, QueueError> {
        if ids.is_empty() {
            return Ok(Renewal::default());
        }
        self.write(|tx| jobs::renew(tx, owner, ids, now, lease))
    }

    fn finish(
        &self,
        owner: &str,
        results: &[Finish],
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<JobState>>, QueueError> {
        if results.is_empty() {
            return Ok(Vec::new());
        }
        self.write(|tx| jobs::finish(tx, owner, results, now))
    }

    fn cancel(&self, id: JobId, now: DateTime<Utc>) -> Result<CancelOutcome, QueueError> {
        self.write(|tx| jobs::cancel(tx, id, now))
    }

    fn release(&self, owner: &str, ids: &[JobId], now: DateTime<Utc>) -> Result<usize, QueueError> {
        if ids.is_empty() {
            return Ok(0);
        }
        self.write(|tx| jobs::release(tx, owner, ids, now))
    }

    fn reap(&self, now: DateTime<Utc>) -> Result<Vec<ExpiredLease>, QueueError> {
        self.write(|tx| jobs::reap(tx, now))
    }

    fn retry(&self, id: JobId, now: DateTime<Utc>) -> Result<Job, QueueError> {
        self.write(|tx| jobs::retry(tx, id, now))
    }

    fn get(&self, id: JobId) -> Result<Job, QueueError> {
        self.read(|conn| reads::get(conn, id))
    }

    fn list(&self, filter: &JobFilter, page: &PageRequest) -> Result<JobPage, QueueError> {
        self.read(|conn| reads::list(conn, filter, page))
    }

    fn counts(&self) -> Result<Vec<JobCount>, QueueError> {
        self.read(reads::counts)
    }

    fn prune(&self, before: &PruneBefore) -> Result<u64, QueueError> {
        // Chunks of one transaction each, so a large prune never holds the writer for long.
        let mut total: u64 = 0;
        for (done_states, cutoff) in [(true, before.done), (false, before.dead)] {
            loop {
                let deleted = self.write(|tx| jobs::prune_chunk(tx, done_states, cutoff))?;
                total += u64::try_from(deleted).unwrap_or(u64::MAX);
                if deleted < jobs::PRUNE_CHUNK {
                    break;
                }
            }
        }
        Ok(total)
    }

    fn upsert_schedule(
        &self,
        spec: &ScheduleSpec,
        next_fire_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), QueueError> {
        self.write(|tx| schedules::upsert(tx, spec, next_fire_at, now))
    }

    fn delete_schedule(&self, name: &str) -> Result<bool, QueueError> {
        self.write(|tx| schedules::delete(tx, name))
    }

    fn list_schedules(&self) -> Result<Vec<Schedule>, QueueError> {
        self.read(|conn| schedules::list(conn, None))
    }

    fn due_schedules(&self, now: DateTime<Utc>) -> Result<Vec<Schedule>, QueueError> {
        self.read(|conn| schedules::list(conn, Some(now)))
    }

    fn fire_schedule(
        &self,
        name: &str,
        expected_next: DateTime<Utc>,
        next_fire_at: DateTime<Utc>,
        fires: Vec<NewJob>,
        now: DateTime<Utc>,
    ) -> Result<Option<Vec<Enqueued>>, QueueError> {
        self.write(|tx| {
            if !schedules::advance(tx, name, expected_next, next_fire_at, now)? {
                return Ok(None);
            }
            jobs::enqueue(tx, &fires, now).map(Some)
        })
    }

    fn checkpoint(&self) -> Result<(), QueueError> {
        lock(&self.checkpointer).execute_batch("PRAGMA wal_checkpoint(PASSIVE);")?;
        Ok(())
    }

    fn close(&self) {
        let conn = lock(&self.writer);
        if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);") {
            tracing::warn!(error = %e, "checkpointing queue.db at shutdown failed");
        }
    }
}

#[cfg(test)]
mod tests;
