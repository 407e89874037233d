//! What runs a job: handlers, registered by kind.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use super::job::Job;

/// The kind of the built-in handler that does nothing (benchmarks, smoke tests).
pub const NOOP_KIND: &str = "noop";

/// Everything a handler gets for one attempt.
#[derive(Debug, Clone)]
pub struct JobContext {
    /// The job as claimed: `attempts` counts this attempt.
    pub job: Arc<Job>,
    /// Fires when the job is cancelled, when the attempt times out (the future is then
    /// dropped, but tasks the handler spawned see it), and when shutdown's grace period ends.
    /// Long handlers should check it between steps and pass it to whatever they wait on.
    pub cancel: CancellationToken,
}

impl JobContext {
    /// This attempt, from 1.
    pub fn attempt(&self) -> u32 {
        self.job.attempts
    }

    /// The payload as `T`; a payload that does not parse fails the job permanently (retrying
    /// cannot fix it).
    pub fn payload<T: serde::de::DeserializeOwned>(&self) -> Result<T, JobFailure> {
        self.job
            .payload_as()
            .map_err(|e| JobFailure::permanent(format!("invalid payload: {e}")))
    }
}

/// Why an attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFailure {
    pub message: String,
    /// No retry: the job ends `failed` at once.
    pub permanent: bool,
}

impl JobFailure {
    /// A failure worth retrying (after backoff, while attempts remain).
    pub fn retry(message: impl fmt::Display) -> Self {
        Self {
            message: message.to_string(),
            permanent: false,
        }
    }

    /// A failure no retry can fix (bad input, a deleted agent…).
    pub fn permanent(message: impl fmt::Display) -> Self {
        Self {
            message: message.to_string(),
            permanent: true,
        }
    }
}

impl fmt::Display for JobFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<anyhow::Error> for JobFailure {
    /// Retryable, with the whole cause chain as the message.
    fn from(e: anyhow::Error) -> Self {
        Self::retry(format!("{e:#}"))
    }
}

/// Runs jobs of one kind. See the module documentation of [`crate::queue`] for the contract
/// (at-least-once, idempotent, cancellation).
pub trait JobHandler: Send + Sync + 'static {
    fn run(&self, ctx: JobContext) -> BoxFuture<'static, Result<(), JobFailure>>;
}

/// A handler from an async closure.
pub fn handler_fn<F, Fut>(f: F) -> Arc<dyn JobHandler>
where
    F: Fn(JobContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), JobFailure>> + Send + 'static,
{
    Arc::new(FnHandler(f))
}

struct FnHandler<F>(F);

impl<F, Fut> JobHandler for FnHandler<F>
where
    F: Fn(JobContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), JobFailure>> + Send + 'static,
{
    fn run(&self, ctx: JobContext) -> BoxFuture<'static, Result<(), JobFailure>> {
        (self.0)(ctx).boxed()
    }
}

/// Succeeds at once.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopHandler;

impl JobHandler for NoopHandler {
    fn run(&self, _ctx: JobContext) -> BoxFuture<'static, Result<(), JobFailure>> {
        futures_util::future::ready(Ok(())).boxed()
    }
}

/// Handlers by job kind. A claimed job whose kind has no handler fails permanently.
#[derive(Clone)]
pub struct HandlerRegistry {
    handlers: HashMap<String, Arc<dyn JobHandler>>,
}

impl HandlerRegistry {
    /// A registry with the built-in [`NoopHandler`] under [`NOOP_KIND`].
    pub fn new() -> Self {
        let mut registry = Self {
            handlers: HashMap::new(),
        };
        registry.register(NOOP_KIND, Arc::new(NoopHandler));
        registry
    }

    /// Registers (or replaces) the handler of `kind`.
    pub fn register(&mut self, kind: impl Into<String>, handler: Arc<dyn JobHandler>) -> &mut Self {
        self.handlers.insert(kind.into(), handler);
        self
    }

    /// `register` for building in one expression.
    pub fn with(mut self, kind: impl Into<String>, handler: Arc<dyn JobHandler>) -> Self {
        self.register(kind, handler);
        self
    }

    pub fn get(&self, kind: &str) -> Option<&Arc<dyn JobHandler>> {
        self.handlers.get(kind)
    }

    pub fn kinds(&self) -> impl Iterator<Item = &str> {
        self.handlers.keys().map(String::as_str)
    }
}

impl Default for HandlerRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for HandlerRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kinds: Vec<_> = self.kinds().collect();
        kinds.sort_unstable();
        f.debug_struct("HandlerRegistry")
            .field("kinds", &kinds)
            .finish()
    }
}
