//! The open WebSocket connections: the connection cap, which tenant and credential each one
//! belongs to, and closing them when that credential or tenant ends or the server stops.
//!
//! A connection only holds a [`Connection`] (its registration); dropping it unregisters. To
//! close connections from elsewhere (a revoked token, a suspended tenant) the hub sends each a
//! [`CloseCause`] on its own watch channel; the connection's task closes the socket with that
//! cause's code.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::auth::UserId;
use crate::domain::TenantId;
use crate::ops::metrics::Metrics;

/// What a connection was opened with, as far as ending it is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// An API token, by id.
    Token(String),
    /// A session, by the hash of its id (as the registry stores it).
    Session(String),
}

/// Why the server closes a socket; each has its own close code (documented in the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCause {
    /// The server is shutting down (1001, going away): reconnect later.
    Shutdown,
    /// The client did not read fast enough and fell behind the event stream (4000).
    SlowConsumer,
    /// The token was revoked or expired, or the session ended (4001): authenticate again.
    CredentialEnded,
    /// The tenant was suspended or deleted, or the user is no longer a member (4003).
    AccessEnded,
    /// No message or pong from the client within the idle timeout (4008).
    IdleTimeout,
}

impl CloseCause {
    pub fn code(self) -> u16 {
        match self {
            CloseCause::Shutdown => 1001,
            CloseCause::SlowConsumer => 4000,
            CloseCause::CredentialEnded => 4001,
            CloseCause::AccessEnded => 4003,
            CloseCause::IdleTimeout => 4008,
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            CloseCause::Shutdown => "server shutting down",
            CloseCause::SlowConsumer => "slow consumer: fell behind the event stream",
            CloseCause::CredentialEnded => "credential revoked or expired",
            CloseCause::AccessEnded => "no longer allowed in this tenant",
            CloseCause::IdleTimeout => "idle timeout",
        }
    }
}

/// Why a connection was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The connection cap is reached.
    Full,
    /// The server is shutting down.
    ShuttingDown,
}

struct Entry {
    tenant: TenantId,
    slug: Arc<str>,
    user: UserId,
    credential: Credential,
    close: watch::Sender<Option<CloseCause>>,
}

#[derive(Default)]
struct Connections {
    next_id: u64,
    open: HashMap<u64, Entry>,
}

pub struct Hub {
    max_connections: usize,
    metrics: Arc<Metrics>,
    stopping: AtomicBool,
    connections: Mutex<Connections>,
}

/// One registered connection; unregisters when dropped.
pub struct Connection {
    id: u64,
    hub: Arc<Hub>,
    /// Set when the hub wants this connection closed, with the reason.
    pub close: watch::Receiver<Option<CloseCause>>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Under the lock, like `register`: the per-tenant gauge is updated in order.
        let mut connections = self.hub.connections();
        if let Some(entry) = connections.open.remove(&self.id) {
            self.hub.metrics.ws_disconnected(&entry.slug);
        }
    }
}

impl Hub {
    pub fn new(max_connections: usize, metrics: Arc<Metrics>) -> Self {
        Hub {
            max_connections,
            metrics,
            stopping: AtomicBool::new(false),
            connections: Mutex::new(Connections::default()),
        }
    }

    fn connections(&self) -> MutexGuard<'_, Connections> {
        // Nothing below panics while holding the lock; a poisoned map is still consistent.
        self.connections.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a connection, unless the cap is reached or the server is stopping.
    pub fn register(
        self: &Arc<Self>,
        tenant: TenantId,
        slug: Arc<str>,
        user: UserId,
        credential: Credential,
    ) -> Result<Connection, Refused> {
        if self.stopping.load(Ordering::SeqCst) {
            return Err(Refused::ShuttingDown);
        }
        let mut connections = self.connections();
        if connections.open.len() >= self.max_connections {
            return Err(Refused::Full);
        }
        let (close, watcher) = watch::channel(None);
        connections.next_id += 1;
        let id = connections.next_id;
        self.metrics.ws_connected(&slug);
        connections.open.insert(
            id,
            Entry {
                tenant,
                slug,
                user,
                credential,
                close,
            },
        );
        Ok(Connection {
            id,
            hub: self.clone(),
            close: watcher,
        })
    }

    /// Asks every connection `which` selects to close with `cause`; returns how many.
    fn close_where(&self, cause: CloseCause, which: impl Fn(&Entry) -> bool) -> usize {
        let connections = self.connections();
        let mut closed = 0;
        for entry in connections.open.values().filter(|e| which(e)) {
            entry.close.send_replace(Some(cause));
            closed += 1;
        }
        closed
    }

    /// Closes the connections opened with `credential` (revoked token, ended session).
    pub fn close_credential(&self, credential: &Credential) -> usize {
        self.close_where(CloseCause::CredentialEnded, |e| &e.credential == credential)
    }

    /// Closes the tenant's connections (suspended or deleted).
    pub fn close_tenant(&self, tenant: TenantId) -> usize {
        self.close_where(CloseCause::AccessEnded, |e| e.tenant == tenant)
    }

    /// Closes the connections of `user` in `tenant` (their membership ended).
    pub fn close_member(&self, tenant: TenantId, user: UserId) -> usize {
        self.close_where(CloseCause::AccessEnded, |e| {
            e.tenant == tenant && e.user == user
        })
    }

    /// Refuses new connections and closes every open one with "going away".
    pub fn shut_down(&self) -> usize {
        self.stopping.store(true, Ordering::SeqCst);
        self.close_where(CloseCause::Shutdown, |_| true)
    }

    /// Open connections.
    pub fn len(&self) -> usize {
        self.connections().open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub(max: usize) -> Arc<Hub> {
        Arc::new(Hub::new(max, Arc::new(Metrics::new().unwrap())))
    }

    fn register(
        hub: &Arc<Hub>,
        tenant: TenantId,
        user: UserId,
        credential: Credential,
    ) -> Connection {
        hub.register(tenant, "acme".into(), user, credential)
            .unwrap()
    }

    #[test]
    fn the_cap_refuses_and_a_dropped_connection_frees_its_place() {
        let hub = hub(2);
        let (t, u) = (TenantId::new(), UserId::new());
        let a = register(&hub, t, u, Credential::Token("a".into()));
        let _b = register(&hub, t, u, Credential::Token("b".into()));
        assert_eq!(
            hub.register(t, "acme".into(), u, Credential::Token("c".into()))
                .err(),
            Some(Refused::Full)
        );
        drop(a);
        assert_eq!(hub.len(), 1);
        assert!(
            hub.register(t, "acme".into(), u, Credential::Token("c".into()))
                .is_ok()
        );
    }

    #[test]
    fn closing_reaches_exactly_the_connections_it_names() {
        let hub = hub(10);
        let (t1, t2, u1, u2) = (
            TenantId::new(),
            TenantId::new(),
            UserId::new(),
            UserId::new(),
        );
        let token = register(&hub, t1, u1, Credential::Token("tok".into()));
        let session = register(&hub, t1, u2, Credential::Session("s".into()));
        let other = register(&hub, t2, u1, Credential::Session("s2".into()));

        assert_eq!(hub.close_credential(&Credential::Token("tok".into())), 1);
        assert_eq!(*token.close.borrow(), Some(CloseCause::CredentialEnded));
        assert_eq!(*session.close.borrow(), None);

        assert_eq!(hub.close_member(t1, u2), 1);
        assert_eq!(*session.close.borrow(), Some(CloseCause::AccessEnded));
        assert_eq!(*other.close.borrow(), None);

        assert_eq!(hub.close_tenant(t2), 1);
        assert_eq!(*other.close.borrow(), Some(CloseCause::AccessEnded));
    }

    #[test]
    fn shutting_down_closes_all_and_refuses_new_ones() {
        let hub = hub(10);
        let (t, u) = (TenantId::new(), UserId::new());
        let c = register(&hub, t, u, Credential::Token("a".into()));
        assert_eq!(hub.shut_down(), 1);
        assert_eq!(*c.close.borrow(), Some(CloseCause::Shutdown));
        assert_eq!(
            hub.register(t, "acme".into(), u, Credential::Token("b".into()))
                .err(),
            Some(Refused::ShuttingDown)
        );
    }
}
