//! The composition root of the server: storage, tenancy, HTTP and background tasks are
//! assembled here, once. `Application::build` binds the listener (port 0 in tests) and
//! `run_until_stopped` serves until the given shutdown future resolves, then shuts down
//! gracefully: stop accepting, finish in-flight requests, stop background tasks, checkpoint
//! and close every database.

use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::{Condition, from_fn};
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use tokio::sync::watch;

use crate::api::{self, extract, middleware};
use crate::auth::login::Sessions;
use crate::auth::run_token::{self, RunTokens};
use crate::auth::setup::SetupLink;
use crate::auth::tokens::Tokens;
use crate::auth::users::Users;
use crate::auth::{Email, Password, PasswordHasher};
use crate::config::Settings;
use crate::ops::metrics::Metrics;
use crate::ops::rate_limit::{LoginBackoff, RateLimits};
use crate::queue::Queue;
use crate::realtime::{BusLimits, EventBus, Hub};
use crate::secrets::TenantKeys;
use crate::store::{Storage, StoreError, blocking};
use crate::tenancy::{TenantDirectory, TenantLifecycle, TenantResolver};

/// Shared state of the running server.
pub struct AppState {
    pub settings: Arc<Settings>,
    pub storage: Storage,
    pub directory: Arc<TenantDirectory>,
    pub lifecycle: TenantLifecycle,
    pub sessions: Sessions,
    pub tokens: Tokens,
    pub users: Users,
    /// The one-time link that creates the first platform admin (pending only on a fresh
    /// install without one).
    pub setup: SetupLink,
    pub metrics: Arc<Metrics>,
    pub rate_limits: RateLimits,
    /// Signs and checks the tokens of agent runs (for the runtimes and the MCP endpoint).
    pub run_tokens: RunTokens,
    /// Domain events of every tenant, published by the services after each change.
    pub events: Arc<EventBus>,
    /// The open WebSocket connections (`GET /api/ws`).
    pub hub: Arc<Hub>,
    /// The job queue (`queue.db`); its worker pool runs while the server serves.
    pub queue: Queue,
    /// Queues agent runs for tasks that become runnable.
    pub runs: Arc<crate::agents::dispatch::Dispatcher>,
    /// Each tenant's data key, which seals its secrets (provider API keys).
    pub secrets: Arc<TenantKeys>,
    /// The HTTP client of calls to LLM providers (shared: one connection pool).
    pub llm_http: reqwest::Client,
}

impl AppState {
    /// The services of a server over `storage`.
    pub fn new(
        settings: Arc<Settings>,
        storage: Storage,
        hasher: PasswordHasher,
        metrics: Arc<Metrics>,
        secrets: Arc<TenantKeys>,
        llm_http: reqwest::Client,
        queue: Queue,
    ) -> Self {
        let backoff = Arc::new(LoginBackoff::new(&settings.rate_limits));
        let runs = Arc::new(crate::agents::dispatch::Dispatcher::new(
            queue.clone(),
            &settings.agents,
        ));
        AppState {
            runs,
            rate_limits: RateLimits::new(&settings.rate_limits),
            run_tokens: RunTokens::new(&secrets.primary_master_key(), run_token::DEFAULT_TTL),
            directory: Arc::new(TenantDirectory::new()),
            lifecycle: TenantLifecycle::new(storage.clone()),
            sessions: Sessions::new(storage.clone(), hasher.clone(), backoff),
            tokens: Tokens::new(storage.clone()),
            users: Users::new(storage.clone(), hasher),
            setup: SetupLink::default(),
            events: Arc::new(EventBus::new(BusLimits {
                channel_capacity: settings.realtime.queue_events,
                ring: settings.realtime.replay_events,
                keep_idle: Duration::from_secs(settings.realtime.replay_keep_secs),
            })),
            hub: Arc::new(Hub::new(settings.realtime.max_connections, metrics.clone())),
            storage,
            metrics,
            settings,
            queue,
            secrets,
            llm_http,
        }
    }

    /// Updates gauges that are read from state rather than counted as they happen.
    pub fn refresh_gauges(&self) {
        self.metrics
            .tenant_pools_open
            .set(self.storage.tenants.open_count() as i64);
        let mut counts = std::collections::HashMap::new();
        for t in self.directory.all().values() {
            *counts.entry(t.status).or_insert(0i64) += 1;
        }
        self.metrics.set_tenant_counts(counts);
    }

    /// Picks up registry changes at once (after a change made in this process).
    pub fn sync_directory_now(&self) -> Result<(), StoreError> {
        self.sync_directory().map(|_| ())
    }

    /// Applies registry changes made elsewhere: reloads the directory when the change counter
    /// moved, and closes the databases of tenants that are no longer served.
    fn sync_directory(&self) -> Result<bool, StoreError> {
        self.tokens
            .observe_access_generation(self.storage.registry.access_generation()?);
        let generation = self.storage.registry.generation()?;
        if Some(generation) == self.directory.generation() {
            return Ok(false);
        }
        for change in self.directory.reload(&*self.storage.registry)? {
            tracing::info!(tenant_id = %change.id, status = ?change.status, "tenant no longer served");
            self.hub.close_tenant(change.id);
            self.secrets.forget(change.id);
            self.storage.tenants.close(change.id);
        }
        Ok(true)
    }
}

pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
}

impl Application {
    /// Opens storage, recovers from any interrupted operation, and binds `settings.listen`.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(settings.listen)
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        Self::build_with_listener(settings, listener).await
    }

    pub async fn build_with_listener(
        settings: Settings,
        listener: TcpListener,
    ) -> anyhow::Result<Self> {
        let settings = Arc::new(settings);
        let storage = {
            let s = settings.clone();
            blocking(move || Storage::open(&s)).await.with_context(|| {
                format!("cannot open storage in {}", settings.data_dir.display())
            })?
        };
        let lifecycle = TenantLifecycle::new(storage.clone());
        let report = {
            let lifecycle = lifecycle.clone();
            tokio::task::spawn_blocking(move || lifecycle.recover())
                .await
                .context("recovery task failed")?
                .context("recovery of interrupted tenant operations failed")?
        };
        if report != Default::default() {
            tracing::warn!(?report, "recovered interrupted tenant operations");
        }
        let secrets = {
            let data_dir = crate::data_dir::DataDir::new(&settings.data_dir);
            let from_env = settings.master_key.clone();
            let registry = storage.registry.clone();
            tokio::task::spawn_blocking(move || {
                TenantKeys::open(registry, &data_dir, from_env.as_ref().map(|k| k.expose()))
            })
            .await
            .context("master key task failed")??
        };
        let llm_http = llm_http_client().context("cannot set up the LLM HTTP client")?;
        let hasher = PasswordHasher::new().context("cannot set up password hashing")?;
        let admin_exists = ensure_platform_admin(&settings, &storage, hasher.clone()).await?;
        let metrics = Arc::new(Metrics::new().context("cannot register metrics")?);
        let queue = {
            let s = settings.clone();
            tokio::task::spawn_blocking(move || crate::ops::queue_runtime::open(&s))
                .await
                .context("queue task failed")??
        };
        let state = web::Data::new(AppState::new(
            settings.clone(),
            storage.clone(),
            hasher,
            metrics,
            Arc::new(secrets),
            llm_http,
            queue,
        ));
        let directory = state.directory.clone();
        {
            let state = state.clone();
            blocking(move || state.sync_directory())
                .await
                .context("cannot load the tenant directory")?;
        }
        let resolver = web::Data::new(TenantResolver::new(
            settings.base_domain.clone(),
            directory,
            storage.tenants.clone(),
        ));

        let port = listener.local_addr()?.port();
        if !admin_exists {
            print_setup_link(&state, listener.local_addr()?)?;
        }
        let limit = settings.http.max_body_bytes;
        let app_state = state.clone();
        let cors_origins = settings.http.cors_allowed_origins.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .app_data(resolver.clone())
                .app_data(extract::json_config(limit))
                .app_data(extract::payload_config(limit))
                .app_data(extract::query_config())
                .app_data(extract::path_config())
                .wrap(security_headers())
                .wrap(extract::json_error_responses())
                .wrap(from_fn(middleware::authenticate))
                .wrap(Condition::new(
                    !cors_origins.is_empty(),
                    cors(&cors_origins),
                ))
                .wrap(from_fn(middleware::observe))
                .configure(api::configure)
                .default_service(web::to(crate::ops::assets::serve_or_not_found))
        })
        .disable_signals()
        .shutdown_timeout(settings.http.shutdown_timeout_secs);
        if settings.http.workers > 0 {
            server = server.workers(settings.http.workers);
        }
        if settings.http.blocking_threads > 0 {
            server = server.worker_max_blocking_threads(settings.http.blocking_threads);
        }
        let server = server.listen(listener)?.run();
        Ok(Self {
            port,
            server,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Serves until `shutdown` resolves (or the server stops by itself), then shuts down.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let poll = Duration::from_millis(self.state.settings.storage.registry_poll_ms);
        let workers = crate::ops::queue_runtime::start(&self.state)
            .await
            .context("cannot start the job queue's workers")?;
        let watcher = tokio::spawn(watch_registry(self.state.clone(), poll, stop_rx));

        let handle = self.server.handle();
        let mut server = tokio::spawn(self.server);
        let served = tokio::select! {
            res = &mut server => res,
            () = shutdown => {
                tracing::info!("shutting down: draining in-flight requests");
                // Sockets never finish on their own: close them ("going away") so the drain
                // below waits only for requests.
                self.state.hub.shut_down();
                handle.stop(true).await;
                server.await
            }
        };

        let _ = stop_tx.send(true);
        if let Err(e) = watcher.await {
            tracing::error!(error = %e, "registry watcher failed");
        }
        // Running jobs get the grace period to finish; the rest are released for the next
        // start (or another instance) to pick up at once.
        let report = workers.shutdown().await;
        tracing::info!(?report, "job workers stopped");
        if let Err(e) = self.state.queue.close().await {
            tracing::warn!(error = %e, "closing the queue failed");
        }
        let storage = self.state.storage.clone();
        tokio::task::spawn_blocking(move || storage.close())
            .await
            .context("closing storage failed")?;
        tracing::info!("stopped");
        served
            .context("server task failed")?
            .context("server failed")
    }
}

/// Cross-origin access for the configured origins only (used only when some are configured):
/// credentials allowed, the API's methods and request headers, preflights cached for an hour.
fn cors(origins: &[String]) -> actix_cors::Cors {
    use actix_web::http::{Method, header};
    origins
        .iter()
        .fold(actix_cors::Cors::default(), |cors, o| {
            cors.allowed_origin(o)
        })
        .allowed_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::HeaderName::from_static("x-csrf-token"),
            header::HeaderName::from_static("x-tenant"),
            header::HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([
            header::HeaderName::from_static("x-request-id"),
            header::RETRY_AFTER,
        ])
        .supports_credentials()
        .max_age(3600)
}

/// Headers every response carries. The CSP allows only the embedded UI's own files; no
/// framing, no sniffing, no referrers to other sites.
fn security_headers() -> actix_web::middleware::DefaultHeaders {
    actix_web::middleware::DefaultHeaders::new()
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Referrer-Policy", "strict-origin-when-cross-origin"))
        .add(("X-Frame-Options", "DENY"))
        .add((
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ))
}

/// Prints the one-time setup link on stdout, for the operator's console only: it is a secret,
/// so it never goes through the log.
fn print_setup_link(state: &AppState, bound: std::net::SocketAddr) -> anyhow::Result<()> {
    let secret = state
        .setup
        .issue()
        .context("cannot generate a setup link")?;
    let base = match &state.settings.public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => format!("http://{bound}"),
    };
    tracing::warn!(
        "no platform admin exists yet: open the setup link printed on standard output, or run \
         `agenthq user create --email EMAIL --platform-admin`"
    );
    println!(
        "No platform admin exists yet. Open this link to create one (it works once, until the \
         server restarts):\n  {base}/setup#token={secret}"
    );
    Ok(())
}

/// Creates the first platform admin from the settings on a fresh install. Returns whether a
/// platform admin exists.
async fn ensure_platform_admin(
    settings: &Settings,
    storage: &Storage,
    hasher: PasswordHasher,
) -> anyhow::Result<bool> {
    let admin = match &settings.bootstrap_admin {
        Some((email, password)) => Some((
            Email::parse(email).map_err(|e| anyhow::anyhow!("invalid AGENTHQ_ADMIN_EMAIL: {e}"))?,
            Password::parse(password.expose().to_owned())
                .map_err(|e| anyhow::anyhow!("invalid AGENTHQ_ADMIN_PASSWORD: {e}"))?,
        )),
        None => None,
    };
    let users = Users::new(storage.clone(), hasher);
    let exists = tokio::task::spawn_blocking(move || users.bootstrap_admin(admin))
        .await
        .context("admin set-up task failed")?
        .context("cannot create the first platform admin")?;
    Ok(exists)
}

/// Polls the registry's change counter so status changes made by other processes (the CLI)
/// take effect within `poll`.
async fn watch_registry(
    state: web::Data<AppState>,
    poll: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut healthy = true;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        // Recent events of tenants nobody has watched for a while are forgotten.
        state.events.sweep();
        let s = state.clone();
        match blocking(move || s.sync_directory()).await {
            Ok(_) if !healthy => {
                tracing::info!("registry readable again");
                healthy = true;
            }
            Ok(_) => {}
            Err(e) => {
                // Changes made elsewhere cannot be seen: stop trusting cached tokens.
                state.tokens.invalidate();
                // Logged on the transition only: a broken disk must not flood the log 4 times
                // a second.
                if healthy {
                    tracing::error!(error = %e, "cannot read the registry; tenant changes are not picked up");
                    healthy = false;
                }
            }
        }
    }
}

/// A future that resolves on SIGTERM or SIGINT (Ctrl-C). The handlers are installed when this
/// is called, not when the future is first polled, so call it before the listener is bound:
/// a signal that arrives once the port accepts connections must stop the server gracefully,
/// not kill it. Must be called inside a tokio runtime.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received"),
                    _ = int.recv() => tracing::info!("SIGINT received"),
                }
            }
            (term, int) => {
                let e = term.err().or(int.err());
                tracing::warn!(error = ?e, "cannot listen for signals; stop the server with SIGKILL");
                std::future::pending::<()>().await;
            }
        }
    }
}

/// The client of LLM provider calls: rustls, a bounded connect time. Each call sets its own
/// overall timeout (from the provider's `timeout_secs`). No proxy from the environment: the
/// providers' base URLs are what an admin configured, loopback included.
fn llm_http_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(90))
        .user_agent(concat!("agenthq/", env!("CARGO_PKG_VERSION")))
        .build()
}
