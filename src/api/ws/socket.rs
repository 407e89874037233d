//! One open socket: sends the tenant's events (those of the topics it subscribed to for
//! topic-bound streams), answers its client messages, pings it, checks its credential again
//! now and then, and closes it with a clear code when the hub, the client or the event stream
//! says so.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_ws::{CloseCode, CloseReason, Message, MessageStream, Session};
use bytestring::ByteString;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::Secret;
use crate::auth::session::SessionSecret;
use crate::domain::TenantStatus;
use crate::realtime::{CloseCause, Connection, Frame, Missed, Subscription, Topic};
use crate::services::Scope;
use crate::startup::AppState;

/// Largest client message accepted (they are small JSON commands).
pub const MAX_CLIENT_MESSAGE: usize = 64 * 1024;

pub struct Socket {
    pub state: actix_web::web::Data<AppState>,
    pub scope: Scope,
    pub secret: Secret,
    pub registration: Connection,
    pub session: Session,
    pub stream: MessageStream,
}

/// How the loop ended.
enum End {
    /// The client closed or the connection dropped: nothing more to send.
    Gone,
    /// The server closes the socket for this reason.
    Close(CloseCause),
}

/// A client message.
#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
enum Command {
    Subscribe { topics: Vec<String> },
    Unsubscribe { topics: Vec<String> },
}

impl Socket {
    pub async fn run(mut self, subscription: Subscription) {
        let end = self.serve(subscription).await;
        let session = self.session.clone();
        if let End::Close(cause) = end {
            if cause == CloseCause::SlowConsumer {
                self.state.metrics.ws_slow_consumer();
            }
            let code = match cause {
                CloseCause::Shutdown => CloseCode::Away,
                other => CloseCode::Other(other.code()),
            };
            let close = session.close(Some(CloseReason {
                code,
                description: Some(cause.reason().to_owned()),
            }));
            // The client may be gone already, or (a slow consumer) have a full queue that
            // the close frame would wait behind: then the connection is just dropped.
            let wait = Duration::from_secs(self.state.settings.realtime.send_timeout_secs);
            let _ = tokio::time::timeout(wait, close).await;
        }
        drop(self.registration);
    }

    async fn serve(&mut self, subscription: Subscription) -> End {
        let settings = self.state.settings.realtime.clone();
        let send_timeout = Duration::from_secs(settings.send_timeout_secs);
        let Subscription {
            mut receiver,
            latest,
            missed,
        } = subscription;
        let hello = self.message(
            "hello",
            json!({
                "seq": latest,
                "heartbeat_secs": settings.heartbeat_secs,
                "idle_timeout_secs": settings.idle_timeout_secs,
            }),
        );
        if let Err(end) = self.send(hello, send_timeout).await {
            return end;
        }
        match missed {
            None => {}
            Some(Missed::Events(frames)) => {
                for frame in frames {
                    if let Err(end) = self.deliver(&frame, &HashSet::new(), send_timeout).await {
                        return end;
                    }
                }
            }
            Some(Missed::TooOld) => {
                let resync = self.message(
                    "resync",
                    json!({
                        "seq": latest,
                        "reason": "the events after `since` are no longer kept; refetch, then follow from `seq`",
                    }),
                );
                if let Err(end) = self.send(resync, send_timeout).await {
                    return end;
                }
            }
        }

        let mut topics: HashSet<Topic> = HashSet::new();
        let mut heard = Instant::now();
        let idle_timeout = Duration::from_secs(settings.idle_timeout_secs);
        let mut heartbeat = interval(settings.heartbeat_secs, 1.0);
        // Sockets that connected together (a reconnect storm, a load test) spread their
        // checks over the period instead of making them all at once.
        let mut revalidate = interval(
            settings.revalidate_secs,
            rand::Rng::random_range(&mut rand::rng(), 0.5..1.5),
        );
        let mut close = self.registration.close.clone();
        loop {
            tokio::select! {
                biased;
                changed = close.changed() => {
                    let cause = *close.borrow();
                    return match (changed, cause) {
                        (_, Some(cause)) => End::Close(cause),
                        // The hub is gone: the server is stopping.
                        (Err(_), None) => End::Close(CloseCause::Shutdown),
                        (Ok(()), None) => continue,
                    };
                }
                incoming = self.stream.next() => {
                    heard = Instant::now();
                    match incoming {
                        None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return End::Gone,
                        Some(Ok(Message::Ping(bytes))) => {
                            if self.session.pong(&bytes).await.is_err() {
                                return End::Gone;
                            }
                        }
                        Some(Ok(Message::Text(text))) => {
                            let reply = self.command(&text, &mut topics, settings.max_topics).await;
                            if let Err(end) = self.send(reply, send_timeout).await {
                                return end;
                            }
                        }
                        Some(Ok(Message::Binary(_))) => {
                            let reply = error("VALIDATION_FAILED", "send commands as JSON text messages");
                            if let Err(end) = self.send(self.message("error", reply), send_timeout).await {
                                return end;
                            }
                        }
                        Some(Ok(_)) => {} // pongs, continuations, no-ops
                    }
                }
                event = receiver.recv() => match event {
                    Ok(frame) => {
                        if let Err(end) = self.deliver(&frame, &topics, send_timeout).await {
                            return end;
                        }
                    }
                    // More events arrived than the queue holds while the socket was writing:
                    // the client reads too slowly to keep up.
                    Err(RecvError::Lagged(_)) => return End::Close(CloseCause::SlowConsumer),
                    Err(RecvError::Closed) => return End::Close(CloseCause::Shutdown),
                },
                _ = heartbeat.tick() => {
                    if heard.elapsed() > idle_timeout {
                        return End::Close(CloseCause::IdleTimeout);
                    }
                    if self.session.ping(b"").await.is_err() {
                        return End::Gone;
                    }
                }
                _ = revalidate.tick() => {
                    if let Some(cause) = self.still_allowed().await {
                        return End::Close(cause);
                    }
                }
            }
        }
    }

    /// Sends `frame` unless it is bound to topics this socket did not subscribe to.
    async fn deliver(
        &mut self,
        frame: &Arc<Frame>,
        topics: &HashSet<Topic>,
        timeout: Duration,
    ) -> Result<(), End> {
        if !frame.topics.is_empty() && !frame.topics.iter().any(|t| topics.contains(t)) {
            return Ok(());
        }
        self.send(frame.text.clone(), timeout).await?;
        self.state.metrics.ws_event_sent(frame.published.elapsed());
        Ok(())
    }

    /// Queues `text` for the socket; a client that leaves it unread for `timeout` (while the
    /// outgoing queue is full) is a slow consumer.
    async fn send(&mut self, text: ByteString, timeout: Duration) -> Result<(), End> {
        match tokio::time::timeout(timeout, self.session.text(text)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_closed)) => Err(End::Gone),
            Err(_elapsed) => Err(End::Close(CloseCause::SlowConsumer)),
        }
    }

    /// A message of the server's own (not an event of the stream, so without `seq`).
    fn message(&self, kind: &str, data: Value) -> ByteString {
        let message = json!({
            "type": kind,
            "tenant": &*self.scope.slug,
            "data": data,
            "at": crate::domain::time::format_rfc3339(&crate::domain::now()),
        });
        ByteString::from(message.to_string())
    }

    /// Handles one client message; returns the reply.
    async fn command(
        &mut self,
        text: &str,
        topics: &mut HashSet<Topic>,
        max_topics: usize,
    ) -> ByteString {
        let command: Command = match serde_json::from_str(text) {
            Ok(c) => c,
            Err(e) => {
                return self.message(
                    "error",
                    error(
                        "VALIDATION_FAILED",
                        &format!(
                            "{e}; send {{\"op\":\"subscribe\"|\"unsubscribe\",\"topics\":[\"agent:<id>\",\"task:<id>\",\"thread:<id>\"]}}"
                        ),
                    ),
                );
            }
        };
        let (subscribe, names) = match command {
            Command::Subscribe { topics } => (true, topics),
            Command::Unsubscribe { topics } => (false, topics),
        };
        if names.len() > max_topics {
            return self.message(
                "error",
                error(
                    "VALIDATION_FAILED",
                    &format!("at most {max_topics} topics per message"),
                ),
            );
        }
        let mut refused = Vec::new();
        let mut parsed = Vec::new();
        for name in names {
            match Topic::parse(&name) {
                Ok(topic) => parsed.push((name, topic)),
                Err(reason) => refused.push(json!({ "topic": name, "reason": reason })),
            }
        }
        // Both ways the names are resolved as events carry them (an agent by id, even when
        // given by name), so unsubscribing by either form works.
        let scope = self.scope.clone();
        let asked: Vec<Topic> = parsed.iter().map(|(_, t)| t.clone()).collect();
        let checked = super::super::service::run(scope, move |s| {
            asked
                .iter()
                .map(|t| crate::services::realtime::authorize_topic(s, t))
                .collect::<Result<Vec<_>, _>>()
        })
        .await;
        let checked = match checked {
            Ok(checked) => checked,
            Err(e) => {
                return self.message(
                    "error",
                    error(e.code(), "the topics could not be checked; retry"),
                );
            }
        };
        for ((name, asked), resolved) in parsed.into_iter().zip(checked) {
            match resolved {
                Some(topic) if !subscribe => {
                    topics.remove(&topic);
                }
                None if !subscribe => {
                    topics.remove(&asked);
                }
                Some(topic) if topics.len() < max_topics || topics.contains(&topic) => {
                    topics.insert(topic);
                }
                Some(_) => refused.push(json!({
                    "topic": name,
                    "reason": format!("a socket subscribes to at most {max_topics} topics"),
                })),
                None => refused.push(json!({
                    "topic": name,
                    "reason": "names nothing in this tenant",
                })),
            }
        }
        let mut current: Vec<String> = topics.iter().map(Topic::to_string).collect();
        current.sort();
        self.message(
            "subscribed",
            json!({ "topics": current, "refused": refused }),
        )
    }

    /// Whether the socket's credential, membership and tenant still hold; the close cause
    /// when not. A check that cannot be made (storage busy) keeps the socket.
    async fn still_allowed(&self) -> Option<CloseCause> {
        let tenant = self.state.directory.get(&self.scope.slug);
        if !tenant.is_some_and(|t| t.status == TenantStatus::Active && t.id == self.scope.tenant) {
            return Some(CloseCause::AccessEnded);
        }
        let state = self.state.clone();
        let tenant = self.scope.tenant;
        let slug = self.scope.slug.clone();
        // The cache answers for most sockets without I/O: it forgets every token as soon as
        // anything a token's validity depends on changes, here or in another process.
        if let Secret::Token(secret) = &self.secret
            && let Some(token) = state.tokens.cached(secret)
        {
            return (token.tenant_id != tenant).then_some(CloseCause::AccessEnded);
        }
        let check = match &self.secret {
            Secret::Token(secret) => {
                let secret = secret.clone();
                actix_web::web::block(move || {
                    state.tokens.authenticate(&secret).map(|token| match token {
                        Some(t) if t.tenant_id == tenant => None,
                        Some(_) => Some(CloseCause::AccessEnded),
                        None => Some(CloseCause::CredentialEnded),
                    })
                })
                .await
            }
            Secret::Session(secret) => {
                let secret: SessionSecret = secret.clone();
                actix_web::web::block(move || {
                    state
                        .sessions
                        .authenticate(&secret)
                        .map(|signed_in| match signed_in {
                            Some(s) if s.tenants.iter().any(|(t, _)| **t == *slug) => None,
                            Some(_) => Some(CloseCause::AccessEnded),
                            None => Some(CloseCause::CredentialEnded),
                        })
                })
                .await
            }
        };
        match check {
            Ok(Ok(verdict)) => verdict,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot check a WebSocket's credential; keeping it open");
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "WebSocket credential check failed");
                None
            }
        }
    }
}

fn error(code: &str, message: &str) -> Value {
    json!({ "code": code, "message": message })
}

/// An interval of `secs` whose first tick comes `first_fraction` periods from now.
fn interval(secs: u64, first_fraction: f64) -> tokio::time::Interval {
    let period = Duration::from_secs(secs);
    let first = tokio::time::Instant::now() + period.mul_f64(first_fraction);
    let mut interval = tokio::time::interval_at(first, period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval
}
