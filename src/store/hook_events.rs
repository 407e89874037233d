//! Agent hook events: the repository interface (SQL lives in the backend, e.g. `sqlite/hook_events.rs`).

use chrono::{DateTime, Utc};

use super::StoreError;
use crate::audit::AuditEntry;
use crate::domain::hook_event::{HookEvent, HookEventFilter, RetentionReport};

/// Agent hook events of one tenant. Mutations take the audit entry and record it in the same transaction.
pub trait HookEventRepo {
    /// Whether a task with this id exists.
    fn hook_event_task_exists(&self, id: &str) -> Result<bool, StoreError>;
    /// Stores a batch in one transaction with its one audit entry.
    fn insert_hook_events(
        &self,
        events: &[HookEvent],
        audit: &AuditEntry,
    ) -> Result<(), StoreError>;
    /// Up to `filter.page.fetch()` events, newest first, after the page's cursor.
    fn hook_events(&self, filter: &HookEventFilter) -> Result<Vec<HookEvent>, StoreError>;
    /// Deletes events received before `older_than`, then all but the newest `keep`. Platform
    /// housekeeping: not audited.
    fn prune_hook_events(
        &self,
        older_than: DateTime<Utc>,
        keep: u64,
    ) -> Result<RetentionReport, StoreError>;
}
