//! Tenant databases as SQLite files: atomic creation, removal, migration, and the bounded LRU of
//! open connection pools.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::num::NonZeroUsize;
use std::ops::Deref;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::Utc;
use lru::LruCache;
use rusqlite::{Connection, OptionalExtension, params};
use scheduled_thread_pool::ScheduledThreadPool;

use super::audit::{self, AuditTable};
use super::connection::{SqliteManager, SqlitePool, create_file, write_tx};
use super::registry::format_time;
use super::settings::read_workspace;
use super::writer::{Writer, WriterConn};
use crate::audit::{AuditEntry, AuditFilter};
use crate::config::StorageSettings;
use crate::data_dir::DataDir;
use crate::domain::workspace::Workspace;
use crate::domain::{Tenant, TenantId};
use crate::failpoint::failpoint;
use crate::store::migrations::MigrationSet;
use crate::store::{
    MigrationOutcome, ProvisioningClaim, StoreError, TenantDatabases, TenantStore, WriteIntent,
};

/// Identity of a file on disk. A pool is only used while the file it was opened on is still the
/// file at the tenant's path: a deleted file must fail requests (not keep serving a ghost inode
/// whose writes would be lost), and a replaced file (restored backup) must be reopened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileIdentity {
    dev: u64,
    ino: u64,
}

fn file_identity(path: &Path) -> io::Result<FileIdentity> {
    let meta = fs::metadata(path)?;
    Ok(FileIdentity {
        dev: meta.dev(),
        ino: meta.ino(),
    })
}

struct OpenTenant {
    store: Arc<SqliteTenantStore>,
    file: FileIdentity,
    /// The tenant's database path, kept so the file check allocates nothing.
    path: PathBuf,
    /// When `file` was last confirmed to be the file at `path` (ms since `epoch`).
    checked_at_ms: AtomicU64,
}

/// How long an open tenant's file is trusted before it is checked again (see `cached`).
const FILE_CHECK_INTERVAL: Duration = Duration::from_millis(50);

pub struct SqliteTenantDatabases {
    dir: DataDir,
    busy_timeout: Duration,
    pool_size: u32,
    migrations: MigrationSet,
    maintenance: Arc<ScheduledThreadPool>,
    open: Mutex<LruCache<TenantId, Arc<OpenTenant>>>,
    /// Serialises cold opens so two requests for the same closed tenant open it once.
    opening: Mutex<()>,
    /// Origin of the coarse clock used for file checks.
    epoch: Instant,
}

impl SqliteTenantDatabases {
    pub fn new(
        dir: DataDir,
        settings: &StorageSettings,
        maintenance: Arc<ScheduledThreadPool>,
    ) -> Self {
        let cap = NonZeroUsize::new(settings.max_open_tenants).unwrap_or(NonZeroUsize::MIN);
        Self {
            dir,
            busy_timeout: Duration::from_millis(settings.busy_timeout_ms),
            pool_size: settings.tenant_pool_size,
            migrations: MigrationSet::tenant(),
            maintenance,
            open: Mutex::new(LruCache::new(cap)),
            opening: Mutex::new(()),
            epoch: Instant::now(),
        }
    }

    /// Uses another migration set than the shipped one (tests and benchmarks of migrations).
    pub fn with_migrations(mut self, migrations: MigrationSet) -> Self {
        self.migrations = migrations;
        self
    }

    fn cache(&self) -> MutexGuard<'_, LruCache<TenantId, Arc<OpenTenant>>> {
        // The critical sections below never panic midway, so a poisoned lock still guards a
        // consistent cache; recover it rather than take the whole server down.
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A cached pool, if it is still backed by the file at the tenant's path.
    fn cached(&self, id: TenantId) -> Result<Option<Arc<SqliteTenantStore>>, StoreError> {
        let Some(entry) = self.cache().get(&id).cloned() else {
            return Ok(None);
        };
        // NOTE: a stat costs ~1 µs, as much as the rest of tenant resolution, so the file is
        // checked at most once per FILE_CHECK_INTERVAL per tenant rather than per request. The
        // trade-off: a file deleted or replaced underneath an open pool is noticed within that
        // interval instead of at once (writes in between go to the unlinked file).
        let now = self.epoch.elapsed().as_millis() as u64;
        let last = entry.checked_at_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) < FILE_CHECK_INTERVAL.as_millis() as u64 {
            return Ok(Some(entry.store.clone()));
        }
        match file_identity(&entry.path) {
            Ok(current) if current == entry.file => {
                entry.checked_at_ms.store(now, Ordering::Relaxed);
                Ok(Some(entry.store.clone()))
            }
            Ok(_) => {
                tracing::warn!(tenant_id = %id, "tenant database file was replaced; reopening");
                self.close(id);
                Ok(None)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                tracing::error!(tenant_id = %id, "tenant database file disappeared while open");
                self.close(id);
                Err(missing(id))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn open_uncached(&self, id: TenantId) -> Result<Arc<OpenTenant>, StoreError> {
        let path = self.dir.tenant_db(&id);
        let file = file_identity(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => missing(id),
            _ => e.into(),
        })?;
        let manager = SqliteManager::new(&path, self.busy_timeout);
        // Check with a direct connection: a pool would retry a failing connect until its
        // timeout, turning "this file is damaged" into a slow, vague "timed out". The checked
        // connection then becomes the pool's first one.
        let mut conn = manager
            .open()
            .map_err(|e| describe_open_error(id, e.into()))?;
        self.check_and_migrate(id, &mut conn)?;
        let pool = manager
            .with_preopened(conn)
            .into_pool(self.pool_size, self.maintenance.clone());
        Ok(Arc::new(OpenTenant {
            store: Arc::new(SqliteTenantStore {
                id,
                pool,
                writer: Arc::new(Writer::new(SqliteManager::new(&path, self.busy_timeout))),
            }),
            file,
            path,
            checked_at_ms: AtomicU64::new(self.epoch.elapsed().as_millis() as u64),
        }))
    }

    /// Verifies that the file is this tenant's database and brings its schema up to date.
    fn check_and_migrate(
        &self,
        id: TenantId,
        conn: &mut Connection,
    ) -> Result<MigrationOutcome, StoreError> {
        let owner = read_owner(conn).map_err(|e| describe_open_error(id, e))?;
        if owner.as_deref() != Some(id.to_string().as_str()) {
            return Err(StoreError::Corrupt(format!(
                "the database file of tenant {id} does not belong to it"
            )));
        }
        self.migrations
            .apply(conn)
            .map_err(|e| describe_open_error(id, e))
    }

    fn remove_db_files(db: &Path) -> Result<(), StoreError> {
        let mut paths = vec![db.to_owned()];
        paths.extend(DataDir::sqlite_side_files(db));
        for p in paths {
            match fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn ids_in(dir: &Path, ext: &str) -> Result<Vec<TenantId>, StoreError> {
        let mut ids = Vec::new();
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(ids),
            Err(e) => return Err(e.into()),
        };
        for entry in entries {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some(ext) {
                continue;
            }
            if let Some(id) = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| TenantId::parse(s).ok())
                && !ids.contains(&id)
            {
                ids.push(id);
            }
        }
        Ok(ids)
    }
}

/// The tenant id recorded inside a database file; `None` for a SQLite file that is not a
/// tenant database at all.
fn read_owner(conn: &Connection) -> Result<Option<String>, StoreError> {
    let has_meta: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tenant_meta')",
        [],
        |r| r.get(0),
    )?;
    if !has_meta {
        return Ok(None);
    }
    Ok(conn
        .query_row(
            "SELECT value FROM tenant_meta WHERE key = 'tenant_id'",
            [],
            |r| r.get(0),
        )
        .optional()?)
}

fn missing(id: TenantId) -> StoreError {
    StoreError::Missing(format!("the database file of tenant {id} is missing"))
}

fn describe_open_error(id: TenantId, e: StoreError) -> StoreError {
    match e {
        StoreError::Corrupt(detail) => StoreError::Corrupt(format!(
            "the database file of tenant {id} is damaged ({detail})"
        )),
        other => other,
    }
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// Holds the lock file of a provisioning; dropping it (or the process dying) releases it.
struct LockFile {
    path: PathBuf,
    _file: File,
}

impl Drop for LockFile {
    fn drop(&mut self) {
        // Remove before the lock is released (when `_file` drops), so a waiting process can
        // never lock a path we are about to delete.
        let _ = fs::remove_file(&self.path);
    }
}

impl TenantDatabases for SqliteTenantDatabases {
    fn claim(&self, id: TenantId) -> Result<Option<ProvisioningClaim>, StoreError> {
        let path = self.dir.provisioning_lock(&id);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(ProvisioningClaim::new(
                id,
                Box::new(LockFile { path, _file: file }),
            ))),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(e.into()),
        }
    }

    fn create(&self, claim: &ProvisioningClaim, tenant: &Tenant) -> Result<(), StoreError> {
        let id = claim.id;
        let aside = self.dir.provisioning_db(&id);
        let live = self.dir.tenant_db(&id);
        if live.exists() {
            return Err(StoreError::Conflict(format!(
                "a database for tenant {id} already exists"
            )));
        }
        Self::remove_db_files(&aside)?;
        {
            let mut conn = create_file(&aside, self.busy_timeout)?;
            // The file is not live yet and a crash discards it, so build it without a journal
            // or syncs; it is synced once, whole, before it is published.
            conn.execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;")?;
            self.migrations.apply(&mut conn)?;
            write_tx(&mut conn, |tx| {
                let now = format_time(&Utc::now());
                tx.execute(
                    "INSERT INTO tenant_meta (key, value) VALUES ('tenant_id', ?1)",
                    [id.to_string()],
                )?;
                tx.execute(
                    "INSERT INTO workspace (id, name, created_at, updated_at) \
                     VALUES (1, ?1, ?2, ?2)",
                    params![tenant.name, now],
                )?;
                Ok(())
            })?;
            conn.execute_batch("PRAGMA journal_mode = WAL;")?;
        }
        failpoint("provision.after_build");
        File::open(&aside)?.sync_all()?;
        fs::rename(&aside, &live)?;
        sync_dir(&self.dir.tenants_dir())?;
        failpoint("provision.after_publish");
        Ok(())
    }

    fn remove(&self, id: TenantId) -> Result<(), StoreError> {
        self.close(id);
        Self::remove_db_files(&self.dir.tenant_db(&id))?;
        Self::remove_db_files(&self.dir.provisioning_db(&id))?;
        sync_dir(&self.dir.tenants_dir())?;
        Ok(())
    }

    fn open(&self, id: TenantId) -> Result<Arc<dyn TenantStore>, StoreError> {
        if let Some(store) = self.cached(id)? {
            return Ok(store);
        }
        let _opening = self.opening.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(store) = self.cached(id)? {
            return Ok(store);
        }
        let entry = self.open_uncached(id)?;
        let store = entry.store.clone();
        if let Some((evicted, _)) = self.cache().push(id, entry)
            && evicted != id
        {
            tracing::debug!(tenant_id = %evicted, "closed least recently used tenant database");
        }
        Ok(store)
    }

    fn open_if_cached(&self, id: TenantId) -> Result<Option<Arc<dyn TenantStore>>, StoreError> {
        Ok(self.cached(id)?.map(|s| s as Arc<dyn TenantStore>))
    }

    fn close(&self, id: TenantId) {
        // The pool closes when the last request holding it finishes.
        self.cache().pop(&id);
    }

    fn migrate(&self, id: TenantId) -> Result<MigrationOutcome, StoreError> {
        let path = self.dir.tenant_db(&id);
        if !path.exists() {
            return Err(missing(id));
        }
        // A direct connection: migrating every tenant must not churn the pool cache.
        let mut conn =
            r2d2::ManageConnection::connect(&SqliteManager::new(&path, self.busy_timeout))?;
        self.check_and_migrate(id, &mut conn)
    }

    fn sweep_abandoned(&self, known: &[TenantId]) -> Result<usize, StoreError> {
        let dir = self.dir.provisioning_dir();
        let mut ids = Self::ids_in(&dir, "db")?;
        for id in Self::ids_in(&dir, "lock")? {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        let mut swept = 0;
        for id in ids.into_iter().filter(|id| !known.contains(id)) {
            if let Some(claim) = self.claim(id)? {
                Self::remove_db_files(&self.dir.provisioning_db(&id))?;
                drop(claim);
                swept += 1;
            }
        }
        for id in Self::ids_in(&self.dir.tenants_dir(), "db")? {
            if !known.contains(&id) {
                tracing::warn!(
                    tenant_id = %id,
                    "tenant database file has no registry entry; left in place"
                );
            }
        }
        Ok(swept)
    }

    fn open_count(&self) -> usize {
        self.cache().len()
    }

    fn close_all(&self) {
        let entries: Vec<_> = {
            let mut cache = self.cache();
            let entries = cache.iter().map(|(_, e)| e.clone()).collect();
            cache.clear();
            entries
        };
        for entry in entries {
            if let Ok(conn) = entry.store.pool.get()
                && let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            {
                tracing::warn!(tenant_id = %entry.store.id, error = %e, "checkpoint failed");
            }
        }
    }

    fn checkpoint_open(&self) -> usize {
        let entries: Vec<_> = self.cache().iter().map(|(_, e)| e.clone()).collect();
        let mut done = 0;
        for entry in entries {
            let checkpoint = || -> Result<(), StoreError> {
                let conn = entry.store.pool.get()?;
                conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE);")?;
                Ok(())
            };
            match checkpoint() {
                Ok(()) => done += 1,
                Err(e) => {
                    tracing::warn!(tenant_id = %entry.store.id, error = %e, "checkpoint failed")
                }
            }
        }
        done
    }
}

/// A connection a read runs on ([`SqliteTenantStore::read`]).
pub(super) enum ReadConn<'a> {
    Pool(r2d2::PooledConnection<SqliteManager>),
    Writer(WriterConn<'a>),
}

impl Deref for ReadConn<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        match self {
            ReadConn::Pool(conn) => conn,
            ReadConn::Writer(conn) => conn,
        }
    }
}

/// One open tenant database. The repository impls of each domain area live in sibling
/// modules (`agents.rs`, `tasks.rs`, …) and reach the database through [`Self::read`] and
/// [`Self::write_audited`].
///
/// Reads use the pool; every write goes through one writer connection per tenant.
/// NOTE: SQLite lets one transaction write at a time anyway. With writes spread over the pool,
/// concurrent writers of one tenant met `SQLITE_BUSY` and slept in SQLite's busy handler
/// (1, 2, 5, 10… ms), and each write found its connection's page cache stale from the other
/// connections' commits and re-read the pages it touched (measured under load: ~4 sleeps and
/// ~50 `pread`s per task creation before, none and ~5 after). One connection queues writers
/// without sleeping, keeps its cache and prepared statements warm, and lets concurrent
/// writers share commits ([`Writer`]). The busy timeout still covers writers in other
/// processes (the CLI).
pub struct SqliteTenantStore {
    id: TenantId,
    pool: SqlitePool,
    writer: Arc<Writer>,
}

impl SqliteTenantStore {
    /// A connection for reads: one of the pool's, or, inside
    /// [`super::writer::defer_commits`], the writer's (which sees the writes deferred there).
    pub(super) fn read(&self) -> Result<ReadConn<'_>, StoreError> {
        match self.writer.deferred_reader() {
            Some(writer) => Ok(ReadConn::Writer(writer?)),
            None => Ok(ReadConn::Pool(self.pool.get()?)),
        }
    }

    /// Runs `f` in one write transaction (`BEGIN IMMEDIATE`) and appends `audit` to the
    /// tenant's audit log in the same transaction: a change and its record commit together or
    /// not at all.
    pub(super) fn write_audited<T>(
        &self,
        audit: &AuditEntry,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.write(|tx| {
            let value = f(tx)?;
            audit::append(tx, AuditTable::Tenant, audit)?;
            Ok(value)
        })
    }

    /// Runs `f` in one write transaction without an audit entry (for changes the platform
    /// makes on its own account, e.g. retention, which are not actions of anyone).
    pub(super) fn write<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.writer.write(f)
    }
}

impl TenantStore for SqliteTenantStore {
    fn tenant_id(&self) -> TenantId {
        self.id
    }

    fn intend_write(&self) -> WriteIntent {
        WriteIntent::held(self.writer.intend())
    }

    fn workspace(&self) -> Result<Workspace, StoreError> {
        read_workspace(&*self.read()?)
    }

    fn rename_workspace(&self, name: &str) -> Result<Workspace, StoreError> {
        self.write(|tx| {
            tx.prepare_cached("UPDATE workspace SET name = ?1, updated_at = ?2 WHERE id = 1")?
                .execute(params![name, format_time(&Utc::now())])?;
            read_workspace(tx)
        })
    }

    fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.write(|tx| audit::append(tx, AuditTable::Tenant, entry))
    }

    fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        audit::page(&*self.read()?, AuditTable::Tenant, filter)
    }
}
