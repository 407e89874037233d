//! SQL of agent hook events in a tenant database.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, params};

use super::registry::{format_time, parse_time};
use super::tenants::SqliteTenantStore;
use crate::audit::AuditEntry;
use crate::domain::hook_event::{HookEvent, HookEventFilter, RetentionReport};
use crate::store::StoreError;
use crate::store::hook_events::HookEventRepo;

fn event_from_row(r: &Row<'_>) -> Result<HookEvent, StoreError> {
    let payload: String = r.get(5)?;
    Ok(HookEvent {
        id: r.get(0)?,
        agent_id: r.get(1)?,
        task_id: r.get(2)?,
        session_id: r.get(3)?,
        event_type: r.get(4)?,
        payload: serde_json::from_str(&payload)
            .map_err(|e| StoreError::Corrupt(format!("hook event payload is not JSON: {e}")))?,
        received_at: parse_time(&r.get::<_, String>(6)?)?,
    })
}

impl HookEventRepo for SqliteTenantStore {
    fn hook_event_task_exists(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .read()?
            .prepare_cached("SELECT 1 FROM tasks WHERE id = ?1")?
            .query_row([id], |_| Ok(()))
            .optional()?
            .is_some())
    }

    fn insert_hook_events(
        &self,
        events: &[HookEvent],
        audit: &AuditEntry,
    ) -> Result<(), StoreError> {
        self.write_audited(audit, |tx| {
            let mut insert = tx.prepare_cached(
                "INSERT INTO hook_events (id, agent_id, task_id, session_id, event_type, \
                 payload, received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for e in events {
                insert.execute(params![
                    e.id,
                    e.agent_id,
                    e.task_id,
                    e.session_id,
                    e.event_type,
                    e.payload.to_string(),
                    format_time(&e.received_at),
                ])?;
            }
            Ok(())
        })
    }

    fn hook_events(&self, filter: &HookEventFilter) -> Result<Vec<HookEvent>, StoreError> {
        let (after_at, after_id) = match &filter.page.after {
            Some(key) => {
                let (at, id) = key
                    .split_once('|')
                    .ok_or_else(|| StoreError::Internal("an unchecked hook event cursor".into()))?;
                (Some(at.to_owned()), Some(id.to_owned()))
            }
            None => (None, None),
        };
        let conn = self.read()?;
        let mut stmt = conn.prepare_cached(
            "SELECT id, agent_id, task_id, session_id, event_type, payload, received_at \
             FROM hook_events \
             WHERE (?1 IS NULL OR session_id = ?1) \
             AND (?2 IS NULL OR event_type = ?2) \
             AND (?3 IS NULL OR agent_id = ?3) \
             AND (?4 IS NULL OR task_id = ?4) \
             AND (?5 IS NULL OR (received_at, id) < (?5, ?6)) \
             ORDER BY received_at DESC, id DESC LIMIT ?7",
        )?;
        let mut rows = stmt.query(params![
            filter.session_id,
            filter.event_type,
            filter.agent_id,
            filter.task_id,
            after_at,
            after_id,
            filter.page.fetch(),
        ])?;
        let mut events = Vec::new();
        while let Some(row) = rows.next()? {
            events.push(event_from_row(row)?);
        }
        Ok(events)
    }

    fn prune_hook_events(
        &self,
        older_than: DateTime<Utc>,
        keep: u64,
    ) -> Result<RetentionReport, StoreError> {
        self.write(|tx| {
            let deleted_by_age = tx
                .prepare_cached("DELETE FROM hook_events WHERE received_at < ?1")?
                .execute([format_time(&older_than)])? as u64;
            let keep = i64::try_from(keep).unwrap_or(i64::MAX);
            let deleted_by_count = tx
                .prepare_cached(
                    "DELETE FROM hook_events WHERE id IN (SELECT id FROM hook_events \
                     ORDER BY received_at DESC, id DESC LIMIT -1 OFFSET ?1)",
                )?
                .execute([keep])? as u64;
            Ok(RetentionReport {
                deleted_by_age,
                deleted_by_count,
            })
        })
    }
}
