//! A per-tenant broadcast of domain events.
//!
//! Services publish after their change is committed, so a subscriber never sees an event for
//! something that was rolled back. A tenant's channel exists only while someone listens to it:
//! publishing to a tenant nobody watches costs a map lookup and nothing else.
//!
//! NOTE: delivery to subscribers is best effort by design (a `broadcast` channel drops the
//! oldest events for a subscriber that falls behind, and it learns so from `Lagged`); the
//! database, not the bus, is the record. The WebSocket hub turns a lag into "refetch".

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::broadcast;

use crate::domain::TenantId;

/// Events kept per subscriber before the oldest are dropped for it.
const CHANNEL_CAPACITY: usize = 1024;

/// One domain event: `{type, tenant, data, at}` (CONTRACT.md, Realtime).
#[derive(Debug, Clone, Serialize)]
pub struct DomainEvent {
    /// E.g. `task.created`, `agent.deleted`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The tenant's slug.
    pub tenant: Arc<str>,
    pub data: serde_json::Value,
    #[serde(serialize_with = "crate::domain::time::serialize")]
    pub at: DateTime<Utc>,
}

#[derive(Default)]
pub struct EventBus {
    channels: Mutex<HashMap<TenantId, broadcast::Sender<Arc<DomainEvent>>>>,
}

impl EventBus {
    pub fn new() -> Self {
        Self::default()
    }

    fn channels(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<TenantId, broadcast::Sender<Arc<DomainEvent>>>> {
        // Nothing below panics while holding the lock; a poisoned map is still consistent.
        self.channels.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes `kind` with `data` to the tenant's subscribers, if it has any.
    pub fn publish(
        &self,
        tenant: TenantId,
        slug: &str,
        kind: &'static str,
        data: serde_json::Value,
    ) {
        let mut channels = self.channels();
        let Some(sender) = channels.get(&tenant) else {
            return;
        };
        let event = DomainEvent {
            kind,
            tenant: slug.into(),
            data,
            at: crate::domain::now(),
        };
        if sender.send(Arc::new(event)).is_err() {
            // Every receiver is gone: forget the channel.
            channels.remove(&tenant);
        }
    }

    /// A receiver of the tenant's events from now on.
    pub fn subscribe(&self, tenant: TenantId) -> broadcast::Receiver<Arc<DomainEvent>> {
        self.channels()
            .entry(tenant)
            .or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0)
            .subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn subscribers_get_only_their_tenants_events() {
        let bus = EventBus::new();
        let (a, b) = (TenantId::new(), TenantId::new());
        let mut rx_a = bus.subscribe(a);
        let mut rx_b = bus.subscribe(b);
        bus.publish(a, "acme", "task.created", json!({ "id": 1 }));
        bus.publish(b, "globex", "task.created", json!({ "id": 2 }));
        let got_a = rx_a.recv().await.unwrap();
        let got_b = rx_b.recv().await.unwrap();
        assert_eq!(
            (&*got_a.tenant, got_a.data["id"].as_i64()),
            ("acme", Some(1))
        );
        assert_eq!(
            (&*got_b.tenant, got_b.data["id"].as_i64()),
            ("globex", Some(2))
        );
        assert!(rx_a.try_recv().is_err(), "nothing else for acme");
    }

    #[test]
    fn publishing_without_subscribers_keeps_no_channel() {
        let bus = EventBus::new();
        let t = TenantId::new();
        drop(bus.subscribe(t));
        bus.publish(t, "acme", "agent.created", json!({}));
        assert!(bus.channels().is_empty());
    }
}
