//! The audit log: who did what to which thing, from where, and when.
//!
//! Every mutation is recorded: tenant actions in the tenant's own database (`audit_log`),
//! platform actions (tenant lifecycle, sign-ins, users) in the registry (`platform_audit_log`).
//! Both tables are append-only: database triggers refuse UPDATE and DELETE, and no route edits
//! or deletes entries.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::now;

/// Who acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ActorKind {
    /// A signed-in user.
    User,
    /// An API token (acting for the user who created it).
    Token,
    /// An agent run (agent-run token).
    Agent,
    /// The platform itself: the CLI, start-up, background work.
    System,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::User => "user",
            ActorKind::Token => "token",
            ActorKind::Agent => "agent",
            ActorKind::System => "system",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(ActorKind::User),
            "token" => Some(ActorKind::Token),
            "agent" => Some(ActorKind::Agent),
            "system" => Some(ActorKind::System),
            _ => None,
        }
    }
}

/// An actor: its kind and id (a user id, token id, agent id, or a name such as `cli`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: Option<String>,
}

impl Actor {
    /// The command line of this installation.
    pub fn cli() -> Self {
        Actor {
            kind: ActorKind::System,
            id: Some("cli".into()),
        }
    }
}

/// Where a request came from: filled in from the HTTP request, empty for the CLI.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub request_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// One entry, as stored and as listed.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// A UUIDv7: entries sort by id in the order they were made.
    pub id: String,
    pub actor_type: ActorKind,
    pub actor_id: Option<String>,
    /// `<thing>.<verb>`, e.g. `member.added`, `token.revoked`, `tenant.suspended`.
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    /// Action-specific facts (never secrets): e.g. the role given.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    pub request_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    #[serde(serialize_with = "crate::domain::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
}

impl AuditEntry {
    /// A new entry made now.
    pub fn new(actor: &Actor, origin: &Origin, action: &str, target: Target) -> Self {
        AuditEntry {
            id: uuid::Uuid::now_v7().to_string(),
            actor_type: actor.kind,
            actor_id: actor.id.clone(),
            action: action.to_owned(),
            target_type: target.kind.map(str::to_owned),
            target_id: target.id,
            details: serde_json::Value::Object(Default::default()),
            request_id: origin.request_id.clone(),
            ip: origin.ip.clone(),
            user_agent: origin.user_agent.clone(),
            created_at: now(),
        }
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// What an action was done to.
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub kind: Option<&'static str>,
    pub id: Option<String>,
}

impl Target {
    pub fn new(kind: &'static str, id: impl ToString) -> Self {
        Target {
            kind: Some(kind),
            id: Some(id.to_string()),
        }
    }

    pub fn none() -> Self {
        Target::default()
    }
}

/// Which entries to list: every filter is optional; entries come newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditFilter {
    pub actor_type: Option<ActorKind>,
    pub actor_id: Option<String>,
    pub action: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    /// Entries made at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Entries made before this time.
    pub until: Option<DateTime<Utc>>,
    /// The cursor: only entries older than this id (the last id of the previous page).
    pub before_id: Option<String>,
    /// Page size (1..=100).
    pub limit: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_made_in_sequence_sort_by_id() {
        let actor = Actor::cli();
        let ids: Vec<String> = (0..1000)
            .map(|_| AuditEntry::new(&actor, &Origin::default(), "x.y", Target::none()).id)
            .collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
    }

    #[test]
    fn actor_kinds_round_trip_through_their_names() {
        for kind in [
            ActorKind::User,
            ActorKind::Token,
            ActorKind::Agent,
            ActorKind::System,
        ] {
            assert_eq!(ActorKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(ActorKind::parse("root"), None);
    }
}
