//! A per-tenant broadcast of domain events, numbered and kept in a short ring for resuming.
//!
//! Services publish after their change is committed, so a subscriber never sees an event for
//! something that was rolled back. Each event is serialised once, when published, and shared by
//! every socket that sends it.
//!
//! A tenant's channel exists while someone listens to it and for `keep_idle` after the last one
//! left (so a client that reconnects after a blip can resume); publishing to a tenant nobody
//! watches costs a map lookup and nothing else.
//!
//! Sequence numbers grow by one per event of a tenant. A channel starts counting at the time it
//! was created, in microseconds since 1970, so numbers also grow across channel lifetimes and
//! restarts (as long as a tenant publishes fewer than a million events a second): a `since`
//! from before the channel existed is simply older than its ring, and the client is told to
//! refetch rather than given a wrong replay.
//!
//! NOTE: delivery to subscribers is best effort by design (a `broadcast` channel drops the
//! oldest events for a subscriber that falls behind, and it learns so from `Lagged`); the
//! database, not the bus, is the record.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytestring::ByteString;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::broadcast;

use super::topic::Topic;
use crate::domain::TenantId;

/// One domain event: `{type, tenant, data, at, seq}` (CONTRACT.md, Realtime).
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
    /// Position in the tenant's stream.
    pub seq: u64,
}

/// An event as sockets send it. Only its text is kept (not the event's data as a JSON value):
/// a tenant's ring holds up to `ring` frames, and each parsed copy would double that memory.
#[derive(Debug)]
pub struct Frame {
    /// Position in the tenant's stream.
    pub seq: u64,
    /// E.g. `task.created`.
    pub kind: &'static str,
    /// Who receives it: empty for every socket of the tenant, else only sockets subscribed to
    /// one of these (high-volume streams such as `run.event`).
    pub topics: Box<[Topic]>,
    /// The event as JSON text, shared by every socket that sends it.
    pub text: ByteString,
    /// When it was published, for the fan-out latency.
    pub published: Instant,
}

/// Sizes and lifetimes of the channels.
#[derive(Debug, Clone, Copy)]
pub struct BusLimits {
    /// Events a subscriber may fall behind by before it is told it lagged.
    pub channel_capacity: usize,
    /// Recent events kept per tenant for resuming.
    pub ring: usize,
    /// How long a tenant's channel (and ring) outlives its last subscriber.
    pub keep_idle: Duration,
}

impl Default for BusLimits {
    fn default() -> Self {
        BusLimits {
            channel_capacity: 1024,
            ring: 1024,
            keep_idle: Duration::from_secs(120),
        }
    }
}

struct Channel {
    sender: broadcast::Sender<Arc<Frame>>,
    next_seq: u64,
    ring: VecDeque<Arc<Frame>>,
    /// Since when nobody listens (checked when sweeping).
    idle_since: Option<Instant>,
}

impl Channel {
    fn new(capacity: usize) -> Self {
        Channel {
            sender: broadcast::channel(capacity).0,
            next_seq: u64::try_from(Utc::now().timestamp_micros())
                .unwrap_or(1)
                .max(1),
            ring: VecDeque::new(),
            idle_since: None,
        }
    }

    /// The last sequence number issued (one below the first when none was).
    fn latest(&self) -> u64 {
        self.next_seq - 1
    }
}

impl Frame {
    /// The event's `data`, parsed again from its text (for tests and diagnostics; sockets
    /// send the text as it is).
    pub fn data(&self) -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(&self.text)
            .map(|mut v| v["data"].take())
            .unwrap_or_default()
    }
}

/// What a subscriber missed since the sequence number it gave.
#[derive(Debug)]
pub enum Missed {
    /// These events, oldest first (possibly none).
    Events(Vec<Arc<Frame>>),
    /// More than the ring holds (or a number this stream never issued): the client should
    /// refetch its state.
    TooOld,
}

/// A receiver of a tenant's events from now on, and what came before it.
pub struct Subscription {
    pub receiver: broadcast::Receiver<Arc<Frame>>,
    /// The last sequence number published before `receiver` was made.
    pub latest: u64,
    /// What the subscriber missed, when it said since when.
    pub missed: Option<Missed>,
}

pub struct EventBus {
    limits: BusLimits,
    channels: Mutex<HashMap<TenantId, Channel>>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new(BusLimits::default())
    }
}

impl EventBus {
    pub fn new(limits: BusLimits) -> Self {
        EventBus {
            limits,
            channels: Mutex::new(HashMap::new()),
        }
    }

    fn channels(&self) -> MutexGuard<'_, HashMap<TenantId, Channel>> {
        // Nothing below panics while holding the lock; a poisoned map is still consistent.
        self.channels.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes `kind` with `data` to every subscriber of the tenant.
    pub fn publish(
        &self,
        tenant: TenantId,
        slug: &str,
        kind: &'static str,
        data: serde_json::Value,
    ) {
        self.publish_to(tenant, slug, kind, data, Vec::new());
    }

    /// Publishes `kind` with `data` to the tenant's subscribers of one of `topics` (every
    /// subscriber when `topics` is empty).
    pub fn publish_to(
        &self,
        tenant: TenantId,
        slug: &str,
        kind: &'static str,
        data: serde_json::Value,
        topics: Vec<Topic>,
    ) {
        let mut channels = self.channels();
        let Some(channel) = channels.get_mut(&tenant) else {
            return;
        };
        let event = DomainEvent {
            kind,
            tenant: slug.into(),
            data,
            at: crate::domain::now(),
            seq: channel.next_seq,
        };
        let text = match serde_json::to_string(&event) {
            Ok(text) => ByteString::from(text),
            Err(e) => {
                // Values built by services serialise infallibly; if one ever does not, the
                // change stands and only the notification is lost.
                tracing::error!(error = %e, kind, "event not serialisable");
                return;
            }
        };
        channel.next_seq += 1;
        let frame = Arc::new(Frame {
            seq: event.seq,
            kind,
            topics: topics.into_boxed_slice(),
            text,
            published: Instant::now(),
        });
        if channel.ring.len() >= self.limits.ring {
            channel.ring.pop_front();
        }
        channel.ring.push_back(frame.clone());
        if channel.sender.send(frame).is_err() && channel.idle_since.is_none() {
            channel.idle_since = Some(Instant::now());
        }
    }

    /// Whether the tenant's events go anywhere: it has subscribers, or had some recently
    /// (who may resume). When it does not, publishing drops the event: callers may skip
    /// building it.
    pub fn is_heard(&self, tenant: TenantId) -> bool {
        self.channels().contains_key(&tenant)
    }

    /// A receiver of the tenant's events from now on.
    pub fn subscribe(&self, tenant: TenantId) -> broadcast::Receiver<Arc<Frame>> {
        self.resume(tenant, None).receiver
    }

    /// A receiver of the tenant's events from now on and, when `since` is given, the events
    /// after it that the subscriber missed. Both are taken under one lock: nothing falls
    /// between the replay and the live stream, and nothing comes twice.
    pub fn resume(&self, tenant: TenantId, since: Option<u64>) -> Subscription {
        let mut channels = self.channels();
        let channel = channels
            .entry(tenant)
            .or_insert_with(|| Channel::new(self.limits.channel_capacity));
        channel.idle_since = None;
        let latest = channel.latest();
        let missed = since.map(|since| {
            let oldest_kept = channel.ring.front().map_or(channel.next_seq, |f| f.seq);
            if since == latest {
                Missed::Events(Vec::new())
            } else if since < latest && since + 1 >= oldest_kept {
                Missed::Events(
                    channel
                        .ring
                        .iter()
                        .filter(|f| f.seq > since)
                        .cloned()
                        .collect(),
                )
            } else {
                Missed::TooOld
            }
        });
        Subscription {
            receiver: channel.sender.subscribe(),
            latest,
            missed,
        }
    }

    /// Forgets the channels nobody has listened to for `keep_idle`; returns how many are left.
    pub fn sweep(&self) -> usize {
        let now = Instant::now();
        let mut channels = self.channels();
        channels.retain(|_, c| {
            if c.sender.receiver_count() > 0 {
                c.idle_since = None;
                return true;
            }
            let idle_since = *c.idle_since.get_or_insert(now);
            now.duration_since(idle_since) < self.limits.keep_idle
        });
        channels.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parsed(frame: &Frame) -> serde_json::Value {
        serde_json::from_str(&frame.text).unwrap()
    }

    #[tokio::test]
    async fn subscribers_get_only_their_tenants_events() {
        let bus = EventBus::default();
        let (a, b) = (TenantId::new(), TenantId::new());
        let mut rx_a = bus.subscribe(a);
        let mut rx_b = bus.subscribe(b);
        bus.publish(a, "acme", "task.created", json!({ "id": 1 }));
        bus.publish(b, "globex", "task.created", json!({ "id": 2 }));
        let got_a = rx_a.recv().await.unwrap();
        let got_b = rx_b.recv().await.unwrap();
        let (got_a, got_b) = (parsed(&got_a), parsed(&got_b));
        assert_eq!(
            (got_a["tenant"].as_str(), got_a["data"]["id"].as_i64()),
            (Some("acme"), Some(1))
        );
        assert_eq!(
            (got_b["tenant"].as_str(), got_b["data"]["id"].as_i64()),
            (Some("globex"), Some(2))
        );
        assert!(rx_a.try_recv().is_err(), "nothing else for acme");
    }

    #[test]
    fn only_a_tenant_with_subscribers_is_heard() {
        let bus = EventBus::default();
        let (a, b) = (TenantId::new(), TenantId::new());
        let _rx = bus.subscribe(a);
        assert!(bus.is_heard(a));
        assert!(!bus.is_heard(b));
    }

    #[tokio::test]
    async fn events_are_numbered_one_by_one_and_serialised_once() {
        let bus = EventBus::default();
        let t = TenantId::new();
        let mut rx = bus.subscribe(t);
        bus.publish(t, "acme", "agent.created", json!({ "n": 1 }));
        bus.publish(t, "acme", "agent.updated", json!({ "n": 2 }));
        let (first, second) = (rx.recv().await.unwrap(), rx.recv().await.unwrap());
        assert_eq!(second.seq, first.seq + 1);
        let parsed: serde_json::Value = serde_json::from_str(&first.text).unwrap();
        assert_eq!(parsed["type"], "agent.created");
        assert_eq!(parsed["tenant"], "acme");
        assert_eq!(parsed["seq"], first.seq);
        assert_eq!(parsed["data"]["n"], 1);
        assert!(parsed["at"].is_string());
    }

    #[test]
    fn resuming_replays_exactly_what_was_missed() {
        let bus = EventBus::default();
        let t = TenantId::new();
        let first = bus.resume(t, None);
        for n in 0..5 {
            bus.publish(t, "acme", "task.updated", json!({ "n": n }));
        }
        let since = first.latest + 2; // saw two of the five
        let again = bus.resume(t, Some(since));
        let Some(Missed::Events(missed)) = again.missed else {
            panic!("expected a replay");
        };
        let ns: Vec<i64> = missed
            .iter()
            .map(|f| parsed(f)["data"]["n"].as_i64().unwrap())
            .collect();
        assert_eq!(ns, vec![2, 3, 4]);
        assert_eq!(again.latest, first.latest + 5);
        let up_to_date = bus.resume(t, Some(again.latest));
        assert!(matches!(up_to_date.missed, Some(Missed::Events(v)) if v.is_empty()));
    }

    #[test]
    fn a_gap_older_than_the_ring_asks_for_a_refetch() {
        let bus = EventBus::new(BusLimits {
            ring: 3,
            ..BusLimits::default()
        });
        let t = TenantId::new();
        let start = bus.resume(t, None).latest;
        for n in 0..10 {
            bus.publish(t, "acme", "task.updated", json!({ "n": n }));
        }
        assert!(matches!(
            bus.resume(t, Some(start)).missed,
            Some(Missed::TooOld)
        ));
        // The ring holds the last three: resuming from just before them still works.
        let Some(Missed::Events(v)) = bus.resume(t, Some(start + 7)).missed else {
            panic!("expected a replay");
        };
        assert_eq!(v.len(), 3);
        // A number from an earlier life of the channel (or another boot) is older than it.
        assert!(matches!(
            bus.resume(t, Some(5)).missed,
            Some(Missed::TooOld)
        ));
    }

    #[test]
    fn numbers_keep_growing_when_a_channel_is_made_again() {
        let bus = EventBus::new(BusLimits {
            keep_idle: Duration::ZERO,
            ..BusLimits::default()
        });
        let t = TenantId::new();
        drop(bus.subscribe(t));
        bus.publish(t, "acme", "agent.created", json!({}));
        let before = bus.resume(t, None).latest;
        assert_eq!(bus.sweep(), 0, "nobody listens and keep_idle is zero");
        assert!(bus.resume(t, None).latest > before);
    }

    #[test]
    fn idle_channels_are_kept_for_a_while_then_forgotten() {
        let bus = EventBus::default();
        let t = TenantId::new();
        drop(bus.subscribe(t));
        assert_eq!(bus.sweep(), 1, "kept for resuming");
        let quick = EventBus::new(BusLimits {
            keep_idle: Duration::ZERO,
            ..BusLimits::default()
        });
        drop(quick.subscribe(t));
        quick.publish(t, "acme", "agent.created", json!({}));
        assert_eq!(quick.sweep(), 0);
        quick.publish(t, "acme", "agent.created", json!({}));
        assert!(
            quick.channels().is_empty(),
            "publishing alone creates nothing"
        );
    }
}
