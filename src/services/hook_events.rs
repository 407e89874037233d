//! Agent hook events: runtimes post what they are doing (Claude Code hooks, one event or a
//! batch); members read them back by session. Retention keeps every tenant's table bounded.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{Scope, ServiceError};
use crate::audit::Target;
use crate::domain::hook_event::{
    self, HookEvent, HookEventFilter, HookEventsReceived, NewHookEvent, RetentionPolicy,
    RetentionReport,
};
use crate::domain::{Invalid, Page, TenantId, now};
use crate::store::{StoreError, TenantDatabases, TenantStore};

/// What the posted events are about, from the request (the same for the whole batch).
#[derive(Debug, Clone, Default)]
pub struct Association {
    /// An agent's id or name.
    pub agent: Option<String>,
    /// A task's id.
    pub task: Option<String>,
}

/// Stores a checked batch in one transaction, with one audit entry for the whole batch, and
/// publishes one `hook.event` per event.
pub fn receive(
    scope: &Scope,
    events: Vec<NewHookEvent>,
    about: Association,
) -> Result<HookEventsReceived, ServiceError> {
    let agent_id = match &about.agent {
        Some(reference) => Some(scope.store.agent_id(reference)?.ok_or_else(|| {
            Invalid::new(
                "agent_id",
                format!("no agent with id or name '{reference}'"),
            )
        })?),
        None => None,
    };
    if let Some(task) = &about.task
        && !scope.store.hook_event_task_exists(task)?
    {
        return Err(Invalid::new("task_id", format!("no task '{task}'")).into());
    }
    let received_at = now();
    let stored: Vec<HookEvent> = events
        .into_iter()
        .map(|e| HookEvent {
            id: uuid::Uuid::now_v7().to_string(),
            agent_id: agent_id.clone(),
            task_id: about.task.clone(),
            session_id: e.session_id,
            event_type: e.event_type,
            payload: Value::Object(e.payload),
            received_at,
        })
        .collect();
    let audit = scope
        .audit("hook_events.received", Target::none())
        .with_details(summary(&stored));
    match scope.store.insert_hook_events(&stored, &audit) {
        Ok(()) => {}
        // The agent or task was deleted between the look-up and the insert.
        Err(StoreError::Conflict(_)) => {
            return Err(Invalid::new("agent_id", "the agent or task no longer exists").into());
        }
        Err(e) => return Err(e.into()),
    }
    for event in &stored {
        scope.publish_value("hook.event", event);
    }
    Ok(HookEventsReceived {
        count: stored.len(),
        ids: stored.into_iter().map(|e| e.id).collect(),
    })
}

/// What the audit entry of a batch records: how many, of which kinds, from which sessions
/// (not the payloads: they can be large and hold anything).
fn summary(events: &[HookEvent]) -> Value {
    let mut types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    types.sort_unstable();
    types.dedup();
    let mut sessions: Vec<&str> = events
        .iter()
        .filter_map(|e| e.session_id.as_deref())
        .collect();
    sessions.sort_unstable();
    sessions.dedup();
    sessions.truncate(10);
    json!({
        "count": events.len(),
        "event_types": types,
        "session_ids": sessions,
        "agent_id": events.first().and_then(|e| e.agent_id.clone()),
        "task_id": events.first().and_then(|e| e.task_id.clone()),
    })
}

pub fn list(scope: &Scope, filter: HookEventFilter) -> Result<Page<HookEvent>, ServiceError> {
    let rows = scope.store.hook_events(&filter)?;
    Ok(Page::from_rows(rows, &filter.page, hook_event::cursor_key))
}

/// Deletes a tenant's events older than the policy's age, then all but its newest
/// `max_rows`. `now` is a parameter so the rule can be tested at any time.
pub fn enforce_retention(
    store: &dyn TenantStore,
    policy: RetentionPolicy,
    now: DateTime<Utc>,
) -> Result<RetentionReport, StoreError> {
    store.prune_hook_events(now - policy.max_age, policy.max_rows)
}

/// Runs [`enforce_retention`] for each of `tenants` until `stopping()` says to stop; a tenant
/// that fails is logged and skipped. Returns how many events were deleted in all.
pub fn enforce_retention_for(
    databases: &dyn TenantDatabases,
    tenants: &[TenantId],
    policy: RetentionPolicy,
    now: DateTime<Utc>,
    stopping: impl Fn() -> bool,
) -> u64 {
    let mut deleted = 0;
    for &tenant in tenants {
        if stopping() {
            break;
        }
        match databases
            .open(tenant)
            .and_then(|store| enforce_retention(&*store, policy, now))
        {
            Ok(report) => deleted += report.deleted_by_age + report.deleted_by_count,
            Err(e) => {
                tracing::warn!(tenant_id = %tenant, error = %e, "hook event retention failed")
            }
        }
    }
    deleted
}
