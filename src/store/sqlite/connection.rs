//! SQLite connections: how every connection is configured, and the r2d2 manager that makes them.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use scheduled_thread_pool::ScheduledThreadPool;

use crate::store::StoreError;

pub type SqlitePool = r2d2::Pool<SqliteManager>;

/// Makes configured connections to one database file. It never creates the file: a missing
/// tenant file must be an error, not a silently empty tenant.
#[derive(Debug)]
pub struct SqliteManager {
    path: PathBuf,
    busy_timeout: Duration,
    /// A connection opened (and checked) before the pool existed, handed out as the pool's
    /// first connection instead of opening a second one.
    preopened: Mutex<Option<Connection>>,
}

impl SqliteManager {
    pub fn new(path: impl Into<PathBuf>, busy_timeout: Duration) -> Self {
        Self {
            path: path.into(),
            busy_timeout,
            preopened: Mutex::new(None),
        }
    }

    /// Opens a configured connection now, outside any pool.
    pub fn open(&self) -> Result<Connection, rusqlite::Error> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(&self.path, flags)?;
        configure(&conn, self.busy_timeout)?;
        Ok(conn)
    }

    /// Another manager of the same file, with the same settings.
    pub fn sibling(&self) -> Self {
        Self::new(&self.path, self.busy_timeout)
    }

    /// Makes `conn` (a connection to the same file) the pool's first connection.
    pub fn with_preopened(self, conn: Connection) -> Self {
        *self.preopened.lock().unwrap_or_else(|e| e.into_inner()) = Some(conn);
        self
    }

    /// Builds a pool with no connections yet (they open on first use, so opening a pool costs
    /// nothing and a broken file fails the first checkout, not the build). All pools share one
    /// maintenance thread: r2d2 would otherwise start a thread per pool, and there is one pool
    /// per open tenant.
    pub fn into_pool(self, max_size: u32, maintenance: Arc<ScheduledThreadPool>) -> SqlitePool {
        r2d2::Pool::builder()
            .max_size(max_size)
            .min_idle(Some(0))
            .idle_timeout(Some(Duration::from_secs(300)))
            .max_lifetime(None)
            .connection_timeout(self.busy_timeout)
            // Checking a connection on every checkout costs a round trip per query; broken
            // connections surface as query errors instead, which map to StoreError anyway.
            .test_on_check_out(false)
            .thread_pool(maintenance)
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build_unchecked(self)
    }
}

impl r2d2::ManageConnection for SqliteManager {
    type Connection = Connection;
    type Error = rusqlite::Error;

    fn connect(&self) -> Result<Connection, rusqlite::Error> {
        let preopened = self
            .preopened
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        match preopened {
            Some(conn) => Ok(conn),
            None => self.open(),
        }
    }

    fn is_valid(&self, conn: &mut Connection) -> Result<(), rusqlite::Error> {
        conn.execute_batch("")
    }

    fn has_broken(&self, _conn: &mut Connection) -> bool {
        false
    }
}

/// Opens (creating) a database file for building it: used for new registries and new tenants.
pub fn create_file(path: &Path, busy_timeout: Duration) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    configure(&conn, busy_timeout)?;
    Ok(conn)
}

/// Settings every connection gets. WAL lets readers proceed while one writer writes;
/// `synchronous=NORMAL` is durable in WAL mode except for the last transactions before a power
/// loss (never corruption); foreign keys are off by default in SQLite and we rely on them.
/// `temp_store=MEMORY` keeps statement journals (what a savepoint, or a statement whose
/// triggers write several rows, needs to undo itself) in memory: on disk they spilled to
/// temporary files and were most of the `pwrite`s of a task creation (measured: ~40 per
/// request, against ~10 for the WAL itself). They hold only pages the current transaction
/// changed, so memory stays bounded by the largest transaction.
///
/// The query planner stability guarantee (QPSG) keeps a prepared statement's plan independent
/// of the values bound to it. Without it, SQLite marks a statement whose plan may depend on a
/// bound value — any `LIMIT ?` in the bundled 3.54 — and binding that parameter expires it,
/// so every paginated query was parsed and planned again on each run (measured: 26 % of the
/// server's CPU on `GET /api/tasks?limit=50`, all in `sqlite3Reprepare`). Our queries do not
/// rely on value-dependent plans (search goes through FTS5, not `LIKE ?`).
fn configure(conn: &Connection, busy_timeout: Duration) -> Result<(), rusqlite::Error> {
    conn.busy_timeout(busy_timeout)?;
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    conn.set_prepared_statement_cache_capacity(64);
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;",
    )
}

/// Runs `f` in a write transaction that takes the write lock up front (`BEGIN IMMEDIATE`), so
/// a transaction never fails half-way through on a lock upgrade; it commits when `f` succeeds
/// and rolls back otherwise.
pub fn write_tx<T>(
    conn: &mut Connection,
    f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let value = f(&tx)?;
    tx.commit()?;
    Ok(value)
}
