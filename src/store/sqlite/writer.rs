//! The one writer connection of a tenant database, shared by concurrent writers through group
//! commit.
//!
//! SQLite lets one transaction write at a time, and most of a small write's cost is its commit:
//! every page it touched (the table, each index, the full-text index, the counters, the audit
//! log) becomes a WAL frame written by the kernel, whether one row changed on that page or
//! fifty. So writers that arrive while another one writes do not each commit: each runs in its
//! own savepoint inside the transaction that is open, and the last writer of the burst commits
//! for all of them. A write still returns only after the commit that holds it succeeded, and a
//! write that fails (or panics) rolls back its own savepoint only.
//!
//! The first write of a transaction needs no savepoint: nothing else is in the transaction yet
//! (later writers wait for the writer while it runs), so when it fails the whole transaction
//! rolls back. Under load most transactions hold one write, and a savepoint is not free: every
//! page the write touches is first copied to the statement journal, and releasing it makes the
//! full-text index flush its pending terms to a segment of their own.
//!
//! Measured under load before this (64 concurrent creators over 10 tenants): ~48 `pwrite`s and
//! ~550 µs of server CPU per task creation, a third of it in the kernel writing WAL frames.
//!
//! Writers rarely arrive *while* another one writes, though: a write is short, and on a busy
//! machine the next request of the same tenant is usually still being parsed. So requests
//! that are going to write say so first ([`Writer::intend`]), and a writer about to commit
//! lingers while such requests are under way and not yet in its transaction: at most
//! [`LINGER`] at a time, and until [`MAX_OPEN`] after the transaction began. It commits at
//! once when no one else announced a write: a lone write waits for nothing. Measured over 10
//! tenants (64 concurrent creators), this took commits from 1.3 to ~2.4 writes each and task
//! creations from ~3,800 to ~4,600 per second (see `benches/RESULTS.md`).
//!
//! A thread that runs many requests one after another (a tenant's write queue, see
//! `crate::api`) batches without waiting at all: it runs them inside [`defer_commits`], where
//! each write joins the open transaction and returns at once, and commits once for all of
//! them ([`Deferred::commit`]) before it answers any. Its reads go through the writer
//! connection meanwhile ([`Writer::deferred_reader`]), so each request sees what the ones
//! before it wrote. Measured over 10 tenants (64 concurrent creators, 10 alternating pairs):
//! task creations from 8,666 to 12,047 per second, server CPU per creation 195 → 136 µs.
//! Changing HTTP requests now all run that way; lingering is what writers outside the queues
//! (the agent runtime, the CLI) do, while requests they announced have yet to join.

use std::cell::{Cell, RefCell};
use std::ops::Deref;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::connection::SqliteManager;
use crate::deferral;
use crate::store::StoreError;

/// The most writes one commit carries, so a steady stream of writers still commits regularly
/// (and each waits for at most this many others).
const MAX_BATCH: usize = 64;

/// The longest a commit waits at a time for an announced write to join its transaction.
const LINGER: Duration = Duration::from_millis(2);

/// The longest a transaction stays open for announced writes (a write waits at most this
/// long for the others of its batch).
const MAX_OPEN: Duration = Duration::from_millis(8);

/// A write left uncommitted: its writer, and the transaction it joined.
type DeferredWrite = (Arc<Writer>, Arc<Batch>);

thread_local! {
    /// While this thread runs [`defer_commits`]'s closure: the transactions its writes joined.
    static DEFERRED: deferral::Slot<DeferredWrite> = const { RefCell::new(None) };
    /// Whether this thread is inside [`Writer::write`]'s closure (which holds the writer).
    static WRITING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with the commits of its writes left to the caller: each write joins its writer's
/// open transaction (opening one if none is) and returns as soon as it ran, uncommitted.
/// The caller commits them with [`Deferred::commit`], and must: until then the transaction
/// stays open and holds later writers back. A write that fails is undone alone, as always;
/// one that brings its transaction to [`MAX_BATCH`] writes commits it then and there.
///
/// Frames nest; each commits its own writes (committing a transaction commits every write
/// it holds, whichever frame made it).
pub fn defer_commits<T>(f: impl FnOnce() -> T) -> (T, Deferred) {
    let (value, writes) = deferral::collect(&DEFERRED, f);
    (value, Deferred(writes))
}

/// Writes made inside [`defer_commits`], not known to be committed yet.
#[must_use = "the transactions stay open until they are committed"]
pub struct Deferred(Vec<DeferredWrite>);

impl Deferred {
    /// Commits the transactions that hold the writes (those still open; others may have
    /// been committed by later writers meanwhile) and returns their outcome: `Ok` once every
    /// write is durable, else the first failure. Commits that are already done cost nothing,
    /// so the frames of one batch can each be committed in turn.
    pub fn commit(self) -> Result<(), StoreError> {
        let mut outcome = Ok(());
        for (writer, batch) in &self.0 {
            let r = writer.commit_open(batch);
            if outcome.is_ok() {
                outcome = r;
            }
        }
        outcome
    }
}

fn deferring() -> bool {
    deferral::is_open(&DEFERRED)
}

/// Writes and commits of every tenant writer of the process, for the metrics.
static WRITES: AtomicU64 = AtomicU64::new(0);
static COMMITS: AtomicU64 = AtomicU64::new(0);

/// How many writes the tenant writers of this process committed, in how many commits: their
/// ratio is the mean number of writes a commit carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteTotals {
    pub writes: u64,
    pub commits: u64,
}

pub fn write_totals() -> WriteTotals {
    WriteTotals {
        writes: WRITES.load(Ordering::Relaxed),
        commits: COMMITS.load(Ordering::Relaxed),
    }
}

pub(super) struct Writer {
    manager: SqliteManager,
    /// Writers that arrived and wait for `state`: while there are any, the writer holding
    /// `state` leaves the commit to them.
    arriving: AtomicUsize,
    /// Requests under way that announced a write ([`Writer::intend`]).
    intents: AtomicUsize,
    /// Writers in [`Writer::linger`], waiting on `joined`.
    lingering: AtomicUsize,
    state: Mutex<State>,
    /// Signalled, while someone lingers, when an intent ended or the open transaction ended
    /// (a writer that lingered, then saw a later one join, waits here for its outcome).
    joined: Condvar,
    /// [`LINGER`] and [`MAX_OPEN`] (longer in tests, so that they do not race the clock).
    linger: Duration,
    max_open: Duration,
}

#[derive(Default)]
struct State {
    /// Opened on the first write, dropped when the file went away or broke under it.
    conn: Option<Connection>,
    /// The transaction open on `conn`.
    open: Option<OpenTransaction>,
}

struct OpenTransaction {
    batch: Arc<Batch>,
    /// How many writes it holds.
    writes: usize,
    began: Instant,
}

/// The outcome of one transaction, awaited by the writes it holds.
#[derive(Default)]
struct Batch {
    outcome: Mutex<Option<Result<(), StoreError>>>,
    settled: Condvar,
}

impl Batch {
    fn settle(&self, outcome: Result<(), StoreError>) {
        *self.outcome.lock().unwrap_or_else(PoisonError::into_inner) = Some(outcome);
        self.settled.notify_all();
    }

    fn wait(&self) -> Result<(), StoreError> {
        let mut outcome = self.outcome.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(done) = &*outcome {
                return done.clone();
            }
            outcome = self
                .settled
                .wait(outcome)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl Writer {
    pub(super) fn new(manager: SqliteManager) -> Self {
        Writer {
            manager,
            arriving: AtomicUsize::new(0),
            intents: AtomicUsize::new(0),
            lingering: AtomicUsize::new(0),
            state: Mutex::new(State::default()),
            joined: Condvar::new(),
            linger: LINGER,
            max_open: MAX_OPEN,
        }
    }

    /// Announces a write that is coming: until the returned guard is dropped, a transaction
    /// about to commit lingers for it (see the module's documentation). Taken by a request
    /// before its work starts, dropped when that work is done: never inside a write, whose
    /// thread holds the lock that dropping an intent may take.
    pub(super) fn intend(self: &Arc<Self>) -> Intent {
        self.intents.fetch_add(1, Ordering::SeqCst);
        Intent(self.clone())
    }

    /// Runs `f` inside a write transaction and returns once that transaction committed.
    /// `f`'s changes commit all together or not at all; an error from `f` undoes them and
    /// is returned as is.
    pub(super) fn write<T>(
        self: &Arc<Self>,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.arriving.fetch_add(1, Ordering::SeqCst);
        // Every path below leaves the transaction open only when `state` is consistent, so a
        // poisoned lock (a panic outside `f`) still guards a usable connection.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        self.arriving.fetch_sub(1, Ordering::SeqCst);

        let first = state.open.is_none();
        let (conn, batch) = state.begin(&self.manager)?;
        let opened = if first {
            Ok(())
        } else {
            run(conn, "SAVEPOINT write")
        };
        let outcome = match opened {
            Ok(()) => {
                let outer = WRITING.replace(true);
                let outcome = panic::catch_unwind(AssertUnwindSafe(|| f(conn)));
                WRITING.set(outer);
                outcome
            }
            Err(e) => Ok(Err(e.into())),
        };
        let kept = matches!(outcome, Ok(Ok(_)));
        let closed = if first {
            Ok(()) // a failed first write is undone with its transaction, below
        } else if kept {
            run(conn, "RELEASE write")
        } else {
            conn.execute_batch("ROLLBACK TO write; RELEASE write")
        };
        // Some failures (disk full, I/O errors) make SQLite roll back the whole transaction on
        // its own: the batch's earlier writes are gone with it and must not be reported done.
        let lost = closed.is_err() || conn.is_autocommit();
        let broken = match &outcome {
            Ok(Err(e @ (StoreError::Missing(_) | StoreError::Corrupt(_)))) => Some(e.clone()),
            _ if lost => Some(match closed {
                Err(e) => StoreError::from(e),
                Ok(()) => StoreError::Unavailable("the transaction was rolled back".into()),
            }),
            // Alone in its transaction: rolling the transaction back undoes just this write.
            Ok(Err(e)) if first => Some(e.clone()),
            Err(_) if first => Some(StoreError::Internal("the write panicked".into())),
            _ => None,
        };
        // The writers lingering before this one are not woken: the commit is this one's to
        // do now, and theirs ends when it is done (see below).
        let writes = state.record_write();
        let may_stay_open = broken.is_none() && writes < MAX_BATCH;
        let committed = if may_stay_open && deferring() {
            drop(state);
            if kept {
                // The frame is open: `deferring` said so, and nothing closes it meanwhile.
                let _ = deferral::push(&DEFERRED, (self.clone(), batch));
            }
            Ok(())
        } else {
            let mut leave_commit = may_stay_open && self.arriving.load(Ordering::SeqCst) > 0;
            if !leave_commit && may_stay_open {
                (state, leave_commit) = self.linger(state, &batch, writes);
            }
            if leave_commit {
                drop(state);
                // A write that failed has nothing in the batch to wait for.
                if kept { batch.wait() } else { Ok(()) }
            } else {
                self.end(state, broken)
            }
        };
        match outcome {
            Ok(Ok(value)) => committed.map(|()| value),
            Ok(Err(e)) => Err(e),
            Err(panicked) => panic::resume_unwind(panicked),
        }
    }

    /// Commits the transaction of `batch` if it is still open (a deferred write's, see
    /// [`defer_commits`]), else waits for its outcome.
    fn commit_open(&self, batch: &Arc<Batch>) -> Result<(), StoreError> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let open = state
            .open
            .as_ref()
            .is_some_and(|t| Arc::ptr_eq(&t.batch, batch));
        if !open {
            drop(state);
            return batch.wait();
        }
        self.end(state, None)
    }

    /// Ends the open transaction (commits it, or rolls it back when `broken` says so), lets
    /// go of the writer, then gives the writes it held their outcome.
    fn end(
        &self,
        mut state: MutexGuard<'_, State>,
        broken: Option<StoreError>,
    ) -> Result<(), StoreError> {
        let (batch, r) = state.finish(broken);
        drop(state);
        // Waking the batch's writers after letting go of the writer: a woken thread may take
        // this one's CPU, and must not do so while it holds every other write back.
        batch.settle(r.clone());
        // Writers of the batch that lingered before a later one joined wait on `joined`;
        // settled first, so that they find their outcome when they wake.
        if self.lingering.load(Ordering::SeqCst) > 0 {
            self.joined.notify_all();
        }
        r
    }

    /// The writer connection, for a read made inside [`defer_commits`] (outside a write): it
    /// sees the writes left uncommitted there. `None` elsewhere, where reads use the pool
    /// (and must: the writer is not free for them). Holds the writer while it lives.
    pub(super) fn deferred_reader(&self) -> Option<Result<WriterConn<'_>, StoreError>> {
        if !deferring() || WRITING.get() {
            return None;
        }
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(e) = state.connection(&self.manager) {
            return Some(Err(e));
        }
        Some(Ok(WriterConn(state)))
    }

    /// Keeps the open transaction (`batch`, holding `writes` writes) open while announced
    /// writes are still to come: for at most [`LINGER`] at a time and until [`MAX_OPEN`]
    /// after it began. Returns whether another write joined meanwhile: the commit is then
    /// that write's to do.
    fn linger<'a>(
        &'a self,
        mut state: MutexGuard<'a, State>,
        batch: &Arc<Batch>,
        writes: usize,
    ) -> (MutexGuard<'a, State>, bool) {
        let Some(began) = state.open.as_ref().map(|t| t.began) else {
            return (state, false);
        };
        let deadline = (Instant::now() + self.linger).min(began + self.max_open);
        // Counted before `intents` is read: an intent ending after that read sees this and
        // signals (see `Intent::drop`).
        self.lingering.fetch_add(1, Ordering::SeqCst);
        let joined = loop {
            // Every write of the batch came from a request that is still under way (it waits
            // for this commit), so only intents beyond `writes` are writes still to come.
            let now = Instant::now();
            if self.intents.load(Ordering::SeqCst) <= writes || now >= deadline {
                break false;
            }
            state = self
                .joined
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            let same = state
                .open
                .as_ref()
                .is_some_and(|t| Arc::ptr_eq(&t.batch, batch) && t.writes == writes);
            if !same {
                break true;
            }
        };
        self.lingering.fetch_sub(1, Ordering::SeqCst);
        (state, joined)
    }
}

/// A write announced by a request that is under way ([`Writer::intend`]); dropping it ends
/// the announcement.
pub(super) struct Intent(Arc<Writer>);

impl Drop for Intent {
    fn drop(&mut self) {
        let writer = &self.0;
        writer.intents.fetch_sub(1, Ordering::SeqCst);
        if writer.lingering.load(Ordering::SeqCst) > 0 {
            // Taking the lock first: a lingering writer holds it from reading `intents` until
            // it waits, so the signal cannot fall between the two.
            drop(writer.state.lock().unwrap_or_else(PoisonError::into_inner));
            writer.joined.notify_all();
        }
    }
}

/// The writer connection lent to a read ([`Writer::deferred_reader`]).
pub(super) struct WriterConn<'a>(MutexGuard<'a, State>);

impl Deref for WriterConn<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        // Only made from a state whose connection is open, which nothing closes while the
        // guard is held.
        self.0
            .conn
            .as_ref()
            .expect("a lent writer connection is open")
    }
}

/// Runs one of the writer's fixed statements from the connection's statement cache:
/// `execute_batch` would parse it again on every write.
fn run(conn: &Connection, sql: &str) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

impl State {
    /// The writer connection, opened if it is not.
    fn connection(&mut self, manager: &SqliteManager) -> Result<&Connection, StoreError> {
        Ok(match &mut self.conn {
            Some(conn) => conn,
            empty => {
                let mut conn = manager.open()?;
                super::checkpoint::hand_off(&mut conn, manager.sibling())?;
                empty.insert(conn)
            }
        })
    }

    /// The connection, with a transaction open on it.
    fn begin(&mut self, manager: &SqliteManager) -> Result<(&Connection, Arc<Batch>), StoreError> {
        self.connection(manager)?;
        let Some(conn) = &self.conn else {
            return Err(StoreError::Internal("the writer connection is gone".into()));
        };
        let batch = match &self.open {
            Some(open) => open.batch.clone(),
            None => {
                run(conn, "BEGIN IMMEDIATE")?;
                let batch = Arc::new(Batch::default());
                self.open = Some(OpenTransaction {
                    batch: batch.clone(),
                    writes: 0,
                    began: Instant::now(),
                });
                batch
            }
        };
        Ok((conn, batch))
    }

    /// Counts one more write in the open transaction; returns how many it holds.
    fn record_write(&mut self) -> usize {
        match &mut self.open {
            Some(open) => {
                open.writes += 1;
                open.writes
            }
            None => 0,
        }
    }

    /// Ends the open transaction: commits it, or rolls it back when `broken` says it cannot
    /// be kept. Returns the batch of writes it held, for the caller to settle with the
    /// outcome once it let go of the writer.
    fn finish(&mut self, broken: Option<StoreError>) -> (Arc<Batch>, Result<(), StoreError>) {
        let Some(OpenTransaction { batch, writes, .. }) = self.open.take() else {
            return (Arc::default(), Ok(()));
        };
        let Some(conn) = &self.conn else {
            let gone = StoreError::Unavailable("the writer connection is gone".into());
            return (batch, Err(gone));
        };
        let outcome = match broken {
            None => run(conn, "COMMIT").map_err(StoreError::from),
            Some(e) => Err(e),
        };
        if outcome.is_ok() {
            WRITES.fetch_add(writes as u64, Ordering::Relaxed);
            COMMITS.fetch_add(1, Ordering::Relaxed);
        }
        if outcome.is_err() {
            if !conn.is_autocommit() {
                // Nothing more can go wrong that matters: the connection is dropped below if
                // the rollback leaves it unusable.
                let _ = conn.execute_batch("ROLLBACK");
            }
            if !conn.is_autocommit()
                || matches!(
                    outcome,
                    Err(StoreError::Missing(_)
                        | StoreError::Corrupt(_)
                        | StoreError::Unavailable(_))
                )
            {
                // The file went away or broke under us: reopen next time rather than keep a
                // connection to a ghost.
                self.conn = None;
            }
        }
        (batch, outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;
    use std::thread;

    fn manager(path: &std::path::Path) -> SqliteManager {
        SqliteManager::new(path, std::time::Duration::from_secs(5))
    }

    fn writer() -> (tempfile::TempDir, Arc<Writer>, SqliteManager) {
        let (dir, writer, manager) = bare_writer();
        (dir, Arc::new(writer), manager)
    }

    /// A writer whose timing a test can still set.
    fn bare_writer() -> (tempfile::TempDir, Writer, SqliteManager) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        super::super::connection::create_file(&path, std::time::Duration::from_secs(5))
            .unwrap()
            .execute_batch("CREATE TABLE t (v INTEGER PRIMARY KEY)")
            .unwrap();
        (dir, Writer::new(manager(&path)), manager(&path))
    }

    fn count(manager: &SqliteManager) -> i64 {
        manager
            .open()
            .unwrap()
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap()
    }

    /// The values stored, in order.
    fn values(manager: &SqliteManager) -> Vec<i64> {
        manager
            .open()
            .unwrap()
            .prepare("SELECT v FROM t ORDER BY v")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn insert(conn: &Connection, v: i64) -> Result<(), StoreError> {
        conn.execute("INSERT INTO t (v) VALUES (?1)", [v])?;
        Ok(())
    }

    /// Starts a write of 1 that holds the writer until another writer waits behind it, then
    /// ends with `outcome`; returns once that write holds the writer.
    fn write_until_another_arrives(
        writer: &Arc<Writer>,
        outcome: Result<(), StoreError>,
    ) -> thread::JoinHandle<Result<(), StoreError>> {
        let first = {
            let writer = writer.clone();
            thread::spawn(move || {
                writer.write(|c| {
                    insert(c, 1)?;
                    while writer.arriving.load(Ordering::SeqCst) == 0 {
                        thread::yield_now();
                    }
                    outcome
                })
            })
        };
        while writer.state.try_lock().is_ok() {
            thread::yield_now(); // until the first write holds the connection
        }
        first
    }

    /// Writes 2, checking from another connection that nothing is committed yet: the write
    /// that came first is still in the open transaction, which this one joins.
    fn write_into_the_open_transaction(writer: &Arc<Writer>, manager: &SqliteManager) {
        let reader = manager.open().unwrap();
        writer
            .write(|c| {
                let seen: i64 = reader.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?;
                assert_eq!(seen, 0, "the first write committed on its own");
                insert(c, 2)
            })
            .unwrap();
    }

    #[test]
    fn a_write_is_committed_when_it_returns() {
        let (_dir, writer, manager) = writer();
        writer.write(|c| insert(c, 1)).unwrap();
        assert_eq!(count(&manager), 1);
    }

    #[test]
    fn a_failed_write_undoes_only_its_own_changes() {
        let (_dir, writer, manager) = writer();
        writer.write(|c| insert(c, 1)).unwrap();
        let err = writer
            .write(|c| {
                insert(c, 2)?;
                insert(c, 1) // duplicate key
            })
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        writer.write(|c| insert(c, 3)).unwrap();
        assert_eq!(values(&manager), vec![1, 3]);
    }

    #[test]
    fn a_failed_first_write_leaves_the_writes_waiting_behind_it_to_commit() {
        let (_dir, writer, manager) = writer();
        let first =
            write_until_another_arrives(&writer, Err(StoreError::Conflict("refused".into())));
        writer.write(|c| insert(c, 2)).unwrap();
        let err = first.join().unwrap().unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        assert_eq!(values(&manager), vec![2]);
    }

    #[test]
    fn a_panicking_write_leaves_the_writer_usable() {
        let (_dir, writer, manager) = writer();
        let caught = panic::catch_unwind(AssertUnwindSafe(|| {
            writer.write(|c| -> Result<(), StoreError> {
                insert(c, 7)?;
                panic!("boom")
            })
        }));
        assert!(caught.is_err());
        writer.write(|c| insert(c, 8)).unwrap();
        assert_eq!(count(&manager), 1);
    }

    #[test]
    fn a_writer_arriving_during_a_write_commits_both() {
        let (_dir, writer, manager) = writer();
        let first = write_until_another_arrives(&writer, Ok(()));
        write_into_the_open_transaction(&writer, &manager);
        first.join().unwrap().unwrap();
        assert_eq!(count(&manager), 2);
    }

    #[test]
    fn concurrent_writes_all_commit() {
        let (_dir, writer, manager) = writer();
        let threads = 16;
        let per_thread = 200;
        let start = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (writer, start) = (writer.clone(), start.clone());
                thread::spawn(move || {
                    start.wait();
                    for i in 0..per_thread {
                        let v = (t * per_thread + i) as i64;
                        writer.write(|c| insert(c, v)).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(count(&manager), (threads * per_thread) as i64);
    }

    /// A writer whose commits linger for an hour: a test that finishes did not wait for the
    /// clock.
    fn patient_writer() -> (tempfile::TempDir, Arc<Writer>, SqliteManager) {
        let (dir, mut writer, manager) = bare_writer();
        writer.linger = Duration::from_secs(3600);
        writer.max_open = Duration::from_secs(3600);
        (dir, Arc::new(writer), manager)
    }

    /// Starts a write of `v` by a request that announced it, on its own thread; returns once
    /// that write waits for others to join its transaction.
    fn lingering_write(writer: &Arc<Writer>, v: i64) -> thread::JoinHandle<Result<(), StoreError>> {
        let intent = writer.intend();
        let handle = {
            let writer = writer.clone();
            thread::spawn(move || {
                let done = writer.write(|c| insert(c, v));
                drop(intent);
                done
            })
        };
        let started = Instant::now();
        while writer.lingering.load(Ordering::SeqCst) == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(10) && !handle.is_finished(),
                "the write did not wait for the announced one"
            );
            thread::yield_now();
        }
        handle
    }

    #[test]
    fn a_write_commits_at_once_when_no_other_write_is_announced() {
        let (_dir, writer, manager) = patient_writer();
        let intent = writer.intend(); // the request's own
        writer.write(|c| insert(c, 1)).unwrap();
        drop(intent);
        writer.write(|c| insert(c, 2)).unwrap(); // none announced at all
        assert_eq!(values(&manager), vec![1, 2]);
    }

    #[test]
    fn a_commit_waits_for_an_announced_write_and_carries_it() {
        let (_dir, writer, manager) = patient_writer();
        let announced = writer.intend();
        let first = lingering_write(&writer, 1);
        write_into_the_open_transaction(&writer, &manager);
        drop(announced);
        first.join().unwrap().unwrap();
        assert_eq!(values(&manager), vec![1, 2]);
    }

    #[test]
    fn a_writer_that_lingered_returns_when_a_later_one_commits_for_it() {
        let (_dir, writer, manager) = patient_writer();
        let announced = writer.intend();
        let first = lingering_write(&writer, 1);
        write_into_the_open_transaction(&writer, &manager); // joins, and commits both
        // `announced` still stands: only the commit can have ended the first write's wait.
        let started = Instant::now();
        while !first.is_finished() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the first write was not told of the commit that held it"
            );
            thread::yield_now();
        }
        first.join().unwrap().unwrap();
        drop(announced);
        assert_eq!(values(&manager), vec![1, 2]);
    }

    #[test]
    fn a_commit_stops_waiting_when_the_announced_write_is_called_off() {
        let (_dir, writer, manager) = patient_writer();
        let announced = writer.intend();
        let first = lingering_write(&writer, 1);
        assert_eq!(
            count(&manager),
            0,
            "committed before the announcement ended"
        );
        drop(announced); // the request wrote nothing after all
        first.join().unwrap().unwrap();
        assert_eq!(count(&manager), 1);
    }

    #[test]
    fn a_failing_write_that_joins_a_waiting_commit_undoes_only_itself() {
        let (_dir, writer, manager) = patient_writer();
        let announced = writer.intend();
        let first = lingering_write(&writer, 1);
        let err = writer.write(|c| insert(c, 1)).unwrap_err(); // duplicate key
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        drop(announced);
        first.join().unwrap().unwrap();
        assert_eq!(values(&manager), vec![1]);
    }

    #[test]
    fn a_write_is_visible_to_other_connections_when_it_returns() {
        let (dir, writer, _) = writer();
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let writer = writer.clone();
                let conn = manager(&dir.path().join("w.db")).open().unwrap();
                thread::spawn(move || {
                    for i in 0..100 {
                        let v = t * 1000 + i;
                        writer.write(|c| insert(c, v)).unwrap();
                        let seen: i64 = conn
                            .query_row("SELECT COUNT(*) FROM t WHERE v = ?1", [v], |r| r.get(0))
                            .unwrap();
                        assert_eq!(seen, 1, "write {v} returned before it committed");
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }

    #[test]
    fn deferred_writes_stay_uncommitted_until_committed_then_commit_together() {
        let (_dir, writer, manager) = writer();
        let (written, deferred) = defer_commits(|| {
            writer.write(|c| insert(c, 1))?;
            writer.write(|c| insert(c, 2))
        });
        written.unwrap();
        assert_eq!(count(&manager), 0, "a deferred write committed on its own");
        deferred.commit().unwrap();
        assert_eq!(values(&manager), vec![1, 2]);
        // Outside a frame, writes commit as they return again.
        writer.write(|c| insert(c, 3)).unwrap();
        assert_eq!(count(&manager), 3);
    }

    #[test]
    fn a_read_inside_a_deferred_frame_sees_the_frames_writes() {
        let (_dir, writer, _manager) = writer();
        assert!(
            writer.deferred_reader().is_none(),
            "outside a frame reads use the pool"
        );
        let (seen, deferred) = defer_commits(|| {
            writer.write(|c| insert(c, 1)).unwrap();
            let inside_a_write = writer
                .write(|_| Ok(writer.deferred_reader().is_none()))
                .unwrap();
            let reader = writer.deferred_reader().unwrap().unwrap();
            let seen: i64 = reader
                .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
                .unwrap();
            (inside_a_write, seen)
        });
        deferred.commit().unwrap();
        assert_eq!(seen, (true, 1));
    }

    #[test]
    fn a_failed_deferred_write_is_undone_alone() {
        let (_dir, writer, manager) = writer();
        let (duplicate, deferred) = defer_commits(|| {
            writer.write(|c| insert(c, 1)).unwrap();
            let duplicate = writer.write(|c| insert(c, 1));
            writer.write(|c| insert(c, 2)).unwrap();
            duplicate
        });
        assert!(
            matches!(duplicate, Err(StoreError::Conflict(_))),
            "{duplicate:?}"
        );
        deferred.commit().unwrap();
        assert_eq!(values(&manager), vec![1, 2]);
    }

    #[test]
    fn a_failed_commit_fails_every_frame_it_held_and_the_writer_goes_on() {
        let (_dir, writer, manager) = writer();
        writer
            .write(|c| {
                c.execute_batch(
                    "CREATE TABLE parent (id INTEGER PRIMARY KEY); \
                     CREATE TABLE child (p INTEGER REFERENCES parent (id) \
                         DEFERRABLE INITIALLY DEFERRED)",
                )?;
                Ok(())
            })
            .unwrap();
        let ((), first) = defer_commits(|| writer.write(|c| insert(c, 1)).unwrap());
        // Checked only at COMMIT: the transaction holding both frames cannot commit.
        let ((), second) = defer_commits(|| {
            writer
                .write(|c| {
                    c.execute("INSERT INTO child (p) VALUES (42)", [])?;
                    Ok(())
                })
                .unwrap();
        });
        assert!(first.commit().is_err());
        assert!(second.commit().is_err());
        assert_eq!(count(&manager), 0);
        writer.write(|c| insert(c, 2)).unwrap();
        assert_eq!(values(&manager), vec![2]);
    }

    #[test]
    fn a_deferred_write_committed_by_a_later_writer_reports_that_commit() {
        let (_dir, writer, manager) = writer();
        let ((), deferred) = defer_commits(|| writer.write(|c| insert(c, 1)).unwrap());
        // Another thread's write joins the open transaction and, with no one else announced,
        // commits it.
        let other = writer.clone();
        thread::spawn(move || other.write(|c| insert(c, 2)).unwrap())
            .join()
            .unwrap();
        assert_eq!(values(&manager), vec![1, 2]);
        deferred.commit().unwrap();
    }

    #[test]
    fn frames_nest_and_each_commits_its_own_writes() {
        let (_dir, writer, manager) = writer();
        let (inner, outer) = defer_commits(|| {
            writer.write(|c| insert(c, 1)).unwrap();
            let ((), inner) = defer_commits(|| writer.write(|c| insert(c, 2)).unwrap());
            // Back in the outer frame: still deferred.
            writer.write(|c| insert(c, 3)).unwrap();
            inner
        });
        assert_eq!(count(&manager), 0);
        inner.commit().unwrap();
        assert_eq!(
            values(&manager),
            vec![1, 2, 3],
            "one transaction held all three"
        );
        outer.commit().unwrap();
        assert!(!deferring(), "the frame did not end");
    }
}
