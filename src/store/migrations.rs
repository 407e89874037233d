//! Embedded schema migrations, one set per database kind, applied by one function that `serve`,
//! `migrate` and provisioning share.

use refinery::{Migration, Runner};
use rusqlite::Connection;

use super::{MigrationOutcome, StoreError};

mod embedded {
    pub mod registry {
        refinery::embed_migrations!("migrations/registry");
    }
    pub mod tenant {
        refinery::embed_migrations!("migrations/tenant");
    }
}

/// An ordered set of migrations for one kind of database.
#[derive(Clone)]
pub struct MigrationSet {
    migrations: Vec<Migration>,
}

impl MigrationSet {
    pub fn registry() -> Self {
        Self::from_runner(embedded::registry::migrations::runner())
    }

    pub fn tenant() -> Self {
        Self::from_runner(embedded::tenant::migrations::runner())
    }

    fn from_runner(runner: Runner) -> Self {
        Self {
            migrations: runner.get_migrations().clone(),
        }
    }

    /// Builds a set from `(name, sql)` pairs named like files (`V2__add_column`). Used by tests
    /// and benchmarks that need a schema change the shipped set does not have.
    pub fn from_sql(pairs: &[(&str, &str)]) -> Result<Self, StoreError> {
        let migrations = pairs
            .iter()
            .map(|(name, sql)| {
                Migration::unapplied(name, sql).map_err(|e| StoreError::Migration(e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { migrations })
    }

    /// This set followed by `more`.
    pub fn extended(mut self, more: MigrationSet) -> Self {
        self.migrations.extend(more.migrations);
        self
    }

    /// The migrations of this set up to `version` (tests of a migration over existing data).
    #[cfg(test)]
    pub fn up_to(mut self, version: u32) -> Self {
        self.migrations.retain(|m| m.version() <= version as i32);
        self
    }

    /// The version a database has once every migration of this set is applied.
    pub fn latest_version(&self) -> i64 {
        self.migrations
            .iter()
            .map(|m| i64::from(m.version()))
            .max()
            .unwrap_or(0)
    }

    /// The version of a database, from refinery's history table (0 when it has none).
    pub fn current_version(conn: &Connection) -> Result<i64, StoreError> {
        let has_history: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master \
             WHERE type = 'table' AND name = 'refinery_schema_history')",
            [],
            |row| row.get(0),
        )?;
        if !has_history {
            return Ok(0);
        }
        let v: Option<i64> = conn.query_row(
            "SELECT MAX(version) FROM refinery_schema_history",
            [],
            |row| row.get(0),
        )?;
        Ok(v.unwrap_or(0))
    }

    /// Brings `conn` to the latest version of this set. All pending migrations run in one
    /// transaction, so a failure leaves the database as it was.
    pub fn apply(&self, conn: &mut Connection) -> Result<MigrationOutcome, StoreError> {
        let from = Self::current_version(conn)?;
        let latest = self.latest_version();
        if from > latest {
            return Err(StoreError::TooNew {
                found: from,
                supported: latest,
            });
        }
        if from == latest {
            return Ok(MigrationOutcome::AlreadyCurrent);
        }
        let runner = Runner::new(&self.migrations).set_grouped(true);
        match runner.run(conn) {
            Ok(_) => Ok(MigrationOutcome::Applied { from, to: latest }),
            // Another process may have migrated this database between our check and our run;
            // that is success, not failure.
            Err(e) => match Self::current_version(conn)? {
                v if v == latest => Ok(MigrationOutcome::AlreadyCurrent),
                _ => Err(StoreError::Migration(e.to_string())),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_sets_apply_to_empty_databases_and_are_idempotent() {
        for set in [MigrationSet::registry(), MigrationSet::tenant()] {
            let mut conn = Connection::open_in_memory().unwrap();
            let latest = set.latest_version();
            assert!(latest >= 1);
            assert_eq!(
                set.apply(&mut conn).unwrap(),
                MigrationOutcome::Applied {
                    from: 0,
                    to: latest
                }
            );
            assert_eq!(
                set.apply(&mut conn).unwrap(),
                MigrationOutcome::AlreadyCurrent
            );
            assert_eq!(MigrationSet::current_version(&conn).unwrap(), latest);
        }
    }

    #[test]
    fn a_database_newer_than_the_build_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        let newer = MigrationSet::tenant().extended(
            MigrationSet::from_sql(&[("V999__future", "CREATE TABLE f (x INTEGER);")]).unwrap(),
        );
        newer.apply(&mut conn).unwrap();
        match MigrationSet::tenant().apply(&mut conn) {
            Err(StoreError::TooNew { found: 999, .. }) => {}
            other => panic!("expected TooNew, got {other:?}"),
        }
    }

    #[test]
    fn a_failing_migration_leaves_the_database_unchanged() {
        let mut conn = Connection::open_in_memory().unwrap();
        MigrationSet::tenant().apply(&mut conn).unwrap();
        let before = MigrationSet::current_version(&conn).unwrap();
        let broken = MigrationSet::tenant().extended(
            MigrationSet::from_sql(&[(
                "V50__broken",
                "ALTER TABLE agents ADD COLUMN x TEXT; THIS IS NOT SQL;",
            )])
            .unwrap(),
        );
        assert!(matches!(
            broken.apply(&mut conn),
            Err(StoreError::Migration(_))
        ));
        assert_eq!(MigrationSet::current_version(&conn).unwrap(), before);
        let has_x: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM pragma_table_info('agents') WHERE name = 'x'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(has_x, 0);
    }

    #[test]
    fn v10_keeps_every_task_event_audit_entry_and_search_match() {
        let mut conn = Connection::open_in_memory().unwrap();
        MigrationSet::tenant().up_to(9).apply(&mut conn).unwrap();
        conn.execute_batch(
            "INSERT INTO tasks (id, prompt, created_at, updated_at) \
                 VALUES ('t1', 'write the quarterly summary', 'a', 'a'); \
             INSERT INTO task_events (id, task_id, kind, created_at) VALUES ('e2', 't1', 'b', 'b'); \
             INSERT INTO task_events (id, task_id, kind, created_at) VALUES ('e1', 't1', 'a', 'a'); \
             INSERT INTO audit_log (id, actor_type, action, created_at, user_agent) \
                 VALUES ('u1', 'user', 'task.created', 'a', 'curl');",
        )
        .unwrap();
        MigrationSet::tenant().apply(&mut conn).unwrap();

        let rows = |sql: &str| -> Vec<String> {
            let mut stmt = conn.prepare(sql).unwrap();
            stmt.query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        assert_eq!(
            rows("SELECT id || ':' || kind FROM task_events WHERE task_id = 't1' ORDER BY id"),
            ["e1:a", "e2:b"]
        );
        assert_eq!(
            rows("SELECT action || ':' || user_agent FROM audit_log"),
            ["task.created:curl"]
        );
        assert_eq!(
            rows("SELECT CAST(rowid AS TEXT) FROM tasks_fts WHERE tasks_fts MATCH 'quarterly'"),
            ["1"]
        );
        // Both tables are their own primary key's b-tree, and the index keeps no token counts.
        assert_eq!(
            rows(
                "SELECT name FROM pragma_table_list WHERE wr AND name NOT LIKE 'tasks_fts%' ORDER BY name"
            ),
            ["audit_log", "task_counts", "task_events"]
        );
        assert!(rows("SELECT name FROM sqlite_master WHERE name = 'tasks_fts_docsize'").is_empty());
        // Still append-only, and deleting a task still takes its events.
        for sql in ["UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log"] {
            let refused = conn.execute(sql, []).unwrap_err().to_string();
            assert!(refused.contains("append-only"), "{sql}: {refused}");
        }
        conn.execute_batch("PRAGMA foreign_keys = ON; DELETE FROM tasks WHERE id = 't1';")
            .unwrap();
        assert!(rows("SELECT id FROM task_events").is_empty());
    }
}
