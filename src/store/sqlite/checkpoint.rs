//! WAL checkpoints mostly off the write path.
//!
//! SQLite's automatic checkpoint runs inside the commit that takes the write-ahead log past
//! 1,000 pages: that commit copies the log's pages into the database file and syncs both
//! while it still holds the tenant's writer, so every other write of the tenant waits for it.
//! Under agent runs (one tenant, 64 runs at once) the writer was busy all of the time and
//! these checkpoints were ~9 % of its CPU, plus their `fsync`s, which no CPU profile shows.
//!
//! Here a commit that takes the log past [`REQUEST_PAGES`] asks one background thread (for the
//! process) to checkpoint the file, in `PASSIVE` mode on a connection of its own: it copies
//! the bulk of the log while writers go on appending to it. Only a checkpoint that copies
//! everything lets the next write start the log over from its beginning, and writes keep
//! coming; so the first commit after the background pass checkpoints inline as SQLite would,
//! copying only the frames written during that pass. Should the thread fall behind (many
//! busy tenants), a commit that finds the log past [`INLINE_PAGES`] checkpoints inline
//! anyway: the log stays bounded as with SQLite's own checkpoints.

use std::ffi::c_int;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, OnceLock};

use rusqlite::Connection;
use rusqlite::hooks::Wal;
use rusqlite::wal::CheckpointMode;

use super::connection::SqliteManager;

/// Log size (pages) at which a commit asks for a checkpoint: 4 × SQLite's default of 1,000.
/// A checkpoint copies each page the log holds once, however many commits wrote it, and a busy
/// tenant's commits keep writing the same pages (the right edge of each index, the full-text
/// index's structure): checkpointing a quarter as often copies fewer pages. Measured with 64
/// task creators over 10 tenants: bytes the server wrote per creation 36 – 37 → 34 KB, and
/// 7,040 → 7,528 created/s (median of four alternating pairs; `benches/RESULTS.md`). The log
/// of a busy tenant is ~16 MB instead of ~4 MB; its bound ([`INLINE_PAGES`]) did not change.
const REQUEST_PAGES: c_int = 4000;

/// Log size (pages) at which a commit checkpoints itself: the background thread is behind.
/// Keeps a tenant's log near ~32 MB at most (unless a long read holds it back), as it was
/// when checkpoints were asked for at 1,000.
const INLINE_PAGES: c_int = 8000;

static BACKGROUND: AtomicU64 = AtomicU64::new(0);
static INLINE: AtomicU64 = AtomicU64::new(0);

/// Checkpoints run so far by the process: in the background, and inline by a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointTotals {
    pub background: u64,
    pub inline: u64,
}

pub fn checkpoint_totals() -> CheckpointTotals {
    CheckpointTotals {
        background: BACKGROUND.load(Ordering::Relaxed),
        inline: INLINE.load(Ordering::Relaxed),
    }
}

/// A database whose log wants a checkpoint.
struct Target {
    manager: SqliteManager,
    /// Where its checkpoint is: [`IDLE`], [`QUEUED`] or [`COPIED`].
    stage: AtomicU8,
}

/// No checkpoint asked for.
const IDLE: u8 = 0;
/// Asked for, not yet run by the thread: a busy writer asks once.
const QUEUED: u8 = 1;
/// The thread copied the log as it was: the next commit finishes the checkpoint.
const COPIED: u8 = 2;

/// Makes `conn`'s commits leave checkpoints of its database to the background thread. It
/// replaces SQLite's automatic checkpoint on that connection (both are the one WAL hook).
pub(super) fn hand_off(conn: &mut Connection, manager: SqliteManager) -> rusqlite::Result<()> {
    let target = Arc::new(Target {
        manager,
        stage: AtomicU8::new(IDLE),
    });
    conn.wal_hook(Some(move |wal: &mut Wal, pages: c_int| {
        if pages >= INLINE_PAGES {
            checkpoint_inline(wal);
        } else if pages >= REQUEST_PAGES {
            match target.stage.load(Ordering::Acquire) {
                IDLE => {
                    target.stage.store(QUEUED, Ordering::Release);
                    let sent = worker().is_some_and(|w| w.send(target.clone()).is_ok());
                    if !sent {
                        target.stage.store(IDLE, Ordering::Release);
                        checkpoint_inline(wal);
                    }
                }
                COPIED => {
                    target.stage.store(IDLE, Ordering::Release);
                    checkpoint_inline(wal);
                }
                _ => {}
            }
        }
        // An error here would fail the statement whose commit already happened.
        Ok(())
    }))
}

fn checkpoint_inline(wal: &mut Wal) {
    match wal.checkpoint_v2(CheckpointMode::PASSIVE) {
        Ok(_) => {
            INLINE.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => tracing::debug!(error = %e, "inline WAL checkpoint did not run"),
    }
}

/// The background thread's queue, started on first use; `None` if the thread could not start
/// (commits then checkpoint inline, as SQLite would).
fn worker() -> Option<&'static Sender<Arc<Target>>> {
    static WORKER: OnceLock<Option<Sender<Arc<Target>>>> = OnceLock::new();
    WORKER
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Arc<Target>>();
            let started = std::thread::Builder::new()
                .name("sqlite-checkpoint".into())
                .spawn(move || {
                    for target in rx {
                        checkpoint(&target.manager);
                        target.stage.store(COPIED, Ordering::Release);
                    }
                });
            match started {
                Ok(_) => Some(tx),
                Err(e) => {
                    tracing::warn!(error = %e, "no checkpoint thread: commits checkpoint inline");
                    None
                }
            }
        })
        .as_ref()
}

fn checkpoint(manager: &SqliteManager) {
    // A database deleted meanwhile (a purged tenant) fails to open: nothing to do then.
    let outcome = manager
        .open()
        .and_then(|conn| conn.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE));
    match outcome {
        Ok(_) => {
            BACKGROUND.fetch_add(1, Ordering::Relaxed);
        }
        // Busy: another checkpoint of the same file is running, which does the same work.
        Err(e) => tracing::debug!(error = %e, "background WAL checkpoint did not run"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// Frames the log file has room for: its 32-byte header, then a 24-byte header and a
    /// page per frame. A log started over keeps its size, so this is its high-water mark.
    fn wal_frames(path: &std::path::Path) -> u64 {
        let wal = path.with_extension("db-wal");
        std::fs::metadata(wal).map_or(0, |m| m.len().saturating_sub(32) / (4096 + 24))
    }

    #[test]
    fn commits_leave_checkpoints_to_the_thread_and_the_log_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let timeout = Duration::from_secs(5);
        super::super::connection::create_file(&path, timeout)
            .unwrap()
            .execute_batch("CREATE TABLE t (v INTEGER PRIMARY KEY, pad BLOB)")
            .unwrap();
        let mut conn = SqliteManager::new(&path, timeout).open().unwrap();
        hand_off(&mut conn, SqliteManager::new(&path, timeout)).unwrap();
        let before = checkpoint_totals().background;
        // Each commit writes at least one new page (4 KiB of padding): without checkpoints
        // the log would reach ~70,000 frames. A checkpoint that runs while a writer appends
        // does not let the log start over; the inline one at the end of each cycle does.
        let mut insert = conn
            .prepare("INSERT INTO t (v, pad) VALUES (?1, zeroblob(4096))")
            .unwrap();
        for v in 0..3 * INLINE_PAGES {
            insert.execute([v]).unwrap();
            assert!(
                wal_frames(&path) <= 2 * u64::try_from(INLINE_PAGES).unwrap(),
                "the log grew without bound: {} frames",
                wal_frames(&path)
            );
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while checkpoint_totals().background == before {
            assert!(Instant::now() < deadline, "no background checkpoint ran");
            std::thread::yield_now();
        }
        let rows: i64 = conn
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, i64::from(3 * INLINE_PAGES));
    }
}
