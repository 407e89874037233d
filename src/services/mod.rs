//! Services: the rules of the tenant domain (agents, tasks, chat, board, settings, MCP
//! servers, hook events). Handlers parse input and call one service function; services check
//! the rules, call the repositories (one transaction per change, its audit entry included),
//! and publish the domain event once the change is committed.
//!
//! Every function here is blocking (it talks to the tenant's database): the HTTP layer calls
//! it through [`crate::api`]'s `run`, on the blocking pool or on the tenant's write queue.
//!
//! What a change does beyond its transaction (publishing its event, handing tasks to the
//! runtime) goes through [`after_commit`]: at once, or, inside [`defer_effects`]
//! (where the write queue runs requests whose commits it does later), once the commit is done.

pub mod agents;
pub mod board;
pub mod chat;
pub mod hook_events;
pub mod mcp_servers;
pub mod providers;
pub mod realtime;
pub mod settings;
pub mod tasks;
pub mod usage;

use std::cell::RefCell;
use std::sync::Arc;

use serde_json::Value;

use crate::audit::{Actor, AuditEntry, Origin, Target};
use crate::deferral;
use crate::domain::{Invalid, TenantId};
use crate::realtime::EventBus;
use crate::store::{StoreError, TenantStore, WriteIntent};

/// Why a service refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The thing (named in the message) does not exist in this tenant.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state; `details` says what would be allowed.
    #[error("{message}")]
    Conflict { message: String, details: Value },
    /// The caller may not do this (beyond what the role policy already checked).
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ServiceError {
    pub fn not_found(message: impl Into<String>) -> Self {
        ServiceError::NotFound(message.into())
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        ServiceError::Conflict {
            message: message.into(),
            details: Value::Null,
        }
    }
}

/// Something to do once a change is committed.
type Effect = Box<dyn FnOnce()>;

thread_local! {
    /// While this thread runs [`defer_effects`]'s closure: the effects it deferred.
    static EFFECTS: deferral::Slot<Effect> = const { RefCell::new(None) };
}

/// Runs `f` with the effects of its changes ([`after_commit`]) held back: the caller
/// runs them with [`Effects::run`] once the changes are committed, or drops them if the
/// commit failed.
pub fn defer_effects<T>(f: impl FnOnce() -> T) -> (T, Effects) {
    let (value, effects) = deferral::collect(&EFFECTS, f);
    (value, Effects(effects))
}

/// Runs `effect` once the changes made so far are committed: now, or when the caller of the
/// enclosing [`defer_effects`] has committed them.
pub fn after_commit(effect: impl FnOnce() + 'static) {
    if let Err(effect) = deferral::push(&EFFECTS, Box::new(effect) as Effect) {
        effect();
    }
}

/// The effects [`defer_effects`] held back, in the order they were made.
#[must_use = "effects are lost unless run"]
pub struct Effects(Vec<Effect>);

impl Effects {
    pub fn run(self) {
        self.0.into_iter().for_each(|effect| effect());
    }
}

/// Who is acting, on which tenant: what every service call gets. It carries the tenant's
/// store, the event bus, and what the audit log records of the actor and the request.
#[derive(Clone)]
pub struct Scope {
    pub tenant: TenantId,
    /// The tenant's slug, as events name it.
    pub slug: Arc<str>,
    pub store: Arc<dyn TenantStore>,
    pub events: Arc<EventBus>,
    pub actor: Actor,
    pub origin: Origin,
    /// Hands tasks that became runnable to the agent runtime.
    pub runs: Arc<dyn RunWaker>,
    /// The write the request announced, if it changes anything: held as long as the scope
    /// is (see [`crate::store::WriteIntent`]). The HTTP layer runs a request whose scope has
    /// one on its tenant's write queue.
    pub write_intent: Option<Arc<WriteIntent>>,
}

/// Hands runnable tasks to the agent runtime (as `run_task` jobs). Services call it after the
/// commit that made the tasks runnable; it never fails the change (a task it could not queue
/// is found by the runtime's periodic sweep).
pub trait RunWaker: Send + Sync {
    fn wake(&self, tenant: TenantId, tasks: &[crate::domain::task::Task]);
}

/// For scopes without a runtime (command-line tools): tasks wait for the server's sweep.
pub struct NoRuntime;

impl RunWaker for NoRuntime {
    fn wake(&self, _tenant: TenantId, _tasks: &[crate::domain::task::Task]) {}
}

impl Scope {
    /// An audit entry for `action` on `target`, made now by this scope's actor.
    pub fn audit(&self, action: &str, target: Target) -> AuditEntry {
        AuditEntry::new(&self.actor, &self.origin, action, target)
    }

    /// Hands tasks to the runtime; those that are not runnable are ignored there.
    ///
    /// Only tasks whose assignee can run are handed over (a read, cheaper than queueing a job
    /// that would find nothing to do); the others wait until their agent gets a provider or is
    /// resumed, which wakes them.
    pub fn wake(&self, tasks: &[crate::domain::task::Task]) {
        let runnable: Vec<crate::domain::task::Task> = tasks
            .iter()
            .filter(|t| {
                t.assignee_id.as_deref().is_some_and(|a| {
                    self.store.agent_runnable(a).unwrap_or_else(|e| {
                        tracing::warn!(error = %e, "cannot check an agent; the sweep will queue its task");
                        false
                    })
                })
            })
            .cloned()
            .collect();
        if !runnable.is_empty() {
            self.hand_over_owned(runnable);
        }
    }

    /// Hands tasks to the runtime that are known to be runnable (their assignee was checked
    /// in the transaction that wrote them).
    pub fn hand_over(&self, tasks: &[crate::domain::task::Task]) {
        self.hand_over_owned(tasks.to_vec());
    }

    fn hand_over_owned(&self, tasks: Vec<crate::domain::task::Task>) {
        let (runs, tenant) = (self.runs.clone(), self.tenant);
        after_commit(move || runs.wake(tenant, &tasks));
    }

    /// Hands every runnable task of the tenant (or of one agent) to the runtime: after a
    /// change that can make waiting work runnable (a provider set, an agent resumed).
    pub fn wake_waiting(&self, agent_id: Option<&str>) -> Result<(), ServiceError> {
        let tasks: Vec<crate::domain::task::Task> = self
            .store
            .runnable_tasks(10_000)?
            .into_iter()
            .filter(|t| agent_id.is_none() || t.assignee_id.as_deref() == agent_id)
            .collect();
        if !tasks.is_empty() {
            self.hand_over_owned(tasks);
        }
        Ok(())
    }

    /// Publishes a domain event of this tenant once the change is committed.
    pub fn publish(&self, kind: &'static str, data: Value) {
        let (events, tenant, slug) = (self.events.clone(), self.tenant, self.slug.clone());
        after_commit(move || events.publish(tenant, &slug, kind, data));
    }

    /// Publishes `kind` with `value` serialised as its data (not serialised at all when no
    /// one hears the tenant's events).
    pub fn publish_value(&self, kind: &'static str, value: &impl serde::Serialize) {
        if !self.events.is_heard(self.tenant) {
            return;
        }
        match serde_json::to_value(value) {
            Ok(data) => self.publish(kind, data),
            // Domain types serialise infallibly (no maps with non-string keys); if one ever
            // does not, the change stands and only the notification is lost.
            Err(e) => tracing::error!(error = %e, kind, "event not serialisable"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;

    #[test]
    fn effects_run_at_once_outside_a_frame_and_after_the_caller_commits_inside_one() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let note = |what: &'static str| {
            let log = log.clone();
            move || log.borrow_mut().push(what)
        };
        after_commit(note("outside"));
        let ((), effects) = defer_effects(|| {
            after_commit(note("first"));
            let ((), inner) = defer_effects(|| after_commit(note("inner")));
            after_commit(note("second"));
            inner.run();
        });
        assert_eq!(*log.borrow(), ["outside", "inner"]);
        effects.run();
        assert_eq!(*log.borrow(), ["outside", "inner", "first", "second"]);

        let ((), dropped) = defer_effects(|| after_commit(note("lost")));
        drop(dropped); // as when the commit failed
        after_commit(note("after"));
        assert_eq!(log.borrow().last(), Some(&"after"));
        assert!(!log.borrow().contains(&"lost"));
    }
}
