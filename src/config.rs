//! Typed, layered settings: defaults < config file (TOML) < `AGENTHQ_*` environment < flags.
//!
//! The environment and flag layers are read by clap (each flag names its variable), so they
//! arrive here as one [`Overrides`] value in which a flag already beats its variable. Loading
//! settings never writes anything; checking that the data dir is usable is the job of the
//! commands that use it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::api::client_ip::TrustedProxies;
pub use crate::ops::rate_limit::{PlanLimit, RateLimitSettings};
pub use crate::ops::sched::CpuScheduling;

/// Default listen address (loopback: exposing the server is an explicit choice).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default request body limit: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// Blocking threads per HTTP worker. Measured on 2 vCPUs (`benches/RESULTS.md`): with
/// actix-web's 256 per worker, 1,000 connections reading the board ran hundreds of database
/// reads at once, each stretched by all the others: p99 ~1.2 s, with client timeouts. With 32
/// the reads beyond them wait in line instead: p99 ~0.25 s and no timeouts (the median rose
/// from ~0.1 to ~0.14 s), and 64 connections saw no difference. 16 made the board's p99 at 64
/// connections worse.
pub const DEFAULT_BLOCKING_THREADS: usize = 32;

/// A value that must never be printed: `Debug` and `Display` redact it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Where the data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite files in the data dir (the default).
    Sqlite,
    /// A PostgreSQL server (planned; the URL is kept redacted).
    Postgres(Secret),
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub backend: Backend,
    pub listen: SocketAddr,
    /// Requests to `<slug>.<base_domain>` resolve to tenant `<slug>`.
    pub base_domain: Option<String>,
    pub public_url: Option<String>,
    pub metrics_token: Option<Secret>,
    /// Log filter (`info`, `agenthq=debug,warn`, …); each command has its own default.
    pub log: Option<String>,
    pub log_format: LogFormat,
    pub http: HttpSettings,
    /// Proxies whose `X-Forwarded-For` is believed (parsed from `http.trusted_proxies`).
    pub trusted_proxies: TrustedProxies,
    pub storage: StorageSettings,
    pub rate_limits: RateLimitSettings,
    /// MCP server configurations: which targets may be saved and pinged, and how pings run.
    pub mcp: McpSettings,
    /// Agent hook events (`POST /api/events`): batch limits and retention.
    pub hook_events: HookEventSettings,
    /// WebSocket delivery (`GET /api/ws`): connection cap, heartbeats, queues, resume ring.
    pub realtime: RealtimeSettings,
    /// The job queue (`queue.db`) and its workers.
    pub queue: QueueConfig,
    /// Agent runs: turn and depth limits, timeouts, the policy for runs that never finish.
    pub agents: AgentsConfig,
    /// The first platform admin, for unattended installs (`AGENTHQ_ADMIN_EMAIL` and
    /// `AGENTHQ_ADMIN_PASSWORD`): created at start when no platform admin exists.
    pub bootstrap_admin: Option<(String, Secret)>,
    /// The master key as `AGENTHQ_MASTER_KEY` (base64 of 32 bytes); unset: `master.key` in
    /// the data dir.
    pub master_key: Option<Secret>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Largest accepted request body; larger ones get 413 `PAYLOAD_TOO_LARGE`.
    pub max_body_bytes: usize,
    /// HTTP worker threads; 0 means one per CPU core.
    pub workers: usize,
    /// Threads each HTTP worker may run blocking work on at once (reads of the tenant
    /// databases, sign-in hashing); more wait their turn, first come first served. 0 means
    /// actix-web's own bound (512 shared by the workers).
    pub blocking_threads: usize,
    /// How the server's threads are scheduled (see `ops::sched`).
    pub cpu_scheduling: CpuScheduling,
    /// How long a graceful shutdown waits for in-flight requests.
    pub shutdown_timeout_secs: u64,
    /// Origins (`https://app.example.com`) whose pages may call the API from a browser, with
    /// credentials. Empty (the default): no CORS headers, so browsers allow same-origin only.
    pub cors_allowed_origins: Vec<String>,
    /// Addresses or networks (`10.0.0.0/8`, `127.0.0.1`) of reverse proxies in front of the
    /// server. Only a request from one of them has its `X-Forwarded-For` believed; the client
    /// is then the nearest address in that header that is not itself a trusted proxy.
    /// Empty (the default): the TCP peer is the client.
    pub trusted_proxies: Vec<String>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            workers: 0,
            blocking_threads: DEFAULT_BLOCKING_THREADS,
            cpu_scheduling: CpuScheduling::default(),
            shutdown_timeout_secs: 30,
            cors_allowed_origins: Vec::new(),
            trusted_proxies: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSettings {
    /// Tenant databases kept open at once (least recently used ones are closed beyond this).
    pub max_open_tenants: usize,
    /// Connections per open tenant database.
    pub tenant_pool_size: u32,
    /// How long a SQLite call waits for a lock before giving up with `Busy`.
    pub busy_timeout_ms: u64,
    /// How often the server checks the registry for changes made by other processes (the CLI).
    pub registry_poll_ms: u64,
}

impl Default for StorageSettings {
    fn default() -> Self {
        Self {
            max_open_tenants: 1000,
            tenant_pool_size: 4,
            busy_timeout_ms: 5000,
            registry_poll_ms: 250,
        }
    }
}

/// `[mcp]`: what MCP server configurations may point at, and how a ping runs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct McpSettings {
    /// Whether `stdio` servers (a command line run on this host) may be configured. Off by
    /// default: it lets tenant admins name programs for the server to run.
    pub allow_stdio: bool,
    /// Whether server URIs may point at loopback, private, link-local and other internal
    /// addresses. Off by default (the SSRF guard); turn on only where every tenant admin is
    /// trusted with the internal network (a single-team install, tests).
    pub allow_private_networks: bool,
    /// The whole ping (connect, initialize, list tools) must finish within this.
    pub ping_timeout_ms: u64,
    /// Largest response body a ping reads from a server.
    pub max_response_bytes: usize,
}

impl Default for McpSettings {
    fn default() -> Self {
        Self {
            allow_stdio: false,
            allow_private_networks: false,
            ping_timeout_ms: 10_000,
            max_response_bytes: 1024 * 1024,
        }
    }
}

/// `[hook_events]`: how many hook events a request may carry and how long they are kept.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HookEventSettings {
    /// Most events in one `POST /api/events`.
    pub max_batch: usize,
    /// Largest single event (bytes of its JSON).
    pub max_event_bytes: usize,
    /// Each tenant keeps at most this many events (the oldest go first).
    pub max_rows_per_tenant: u64,
    /// Events older than this are deleted.
    pub max_age_days: u32,
    /// When retention runs: a cron expression (5 fields, or 6 with seconds first), UTC.
    pub retention_schedule: String,
}

impl Default for HookEventSettings {
    fn default() -> Self {
        Self {
            max_batch: 100,
            max_event_bytes: 256 * 1024,
            max_rows_per_tenant: 100_000,
            max_age_days: 30,
            retention_schedule: "0 * * * *".into(),
        }
    }
}

/// `[realtime]`: the WebSocket hub's limits.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RealtimeSettings {
    /// Open WebSocket connections the server accepts in all; more are refused with 503.
    pub max_connections: usize,
    /// How often the server pings each socket.
    pub heartbeat_secs: u64,
    /// A socket that sends nothing (not even a pong) for this long is closed.
    pub idle_timeout_secs: u64,
    /// How often each socket's credential, membership and tenant are checked again (this
    /// also catches changes made by the CLI or another instance).
    pub revalidate_secs: u64,
    /// Events a socket may fall behind by before it is closed as a slow consumer.
    pub queue_events: usize,
    /// A socket whose client reads nothing for this long while events wait is closed as a
    /// slow consumer.
    pub send_timeout_secs: u64,
    /// Recent events kept per tenant for `?since=` resumes.
    pub replay_events: usize,
    /// How long a tenant's recent events are kept after its last socket closed.
    pub replay_keep_secs: u64,
    /// Most topics one socket may subscribe to.
    pub max_topics: usize,
}

impl Default for RealtimeSettings {
    fn default() -> Self {
        Self {
            max_connections: 20_000,
            heartbeat_secs: 20,
            idle_timeout_secs: 60,
            revalidate_secs: 30,
            queue_events: 1024,
            send_timeout_secs: 10,
            replay_events: 1024,
            replay_keep_secs: 120,
            max_topics: 100,
        }
    }
}

/// `[agents]`: how agent runs are driven.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentsConfig {
    /// Model calls one run may make before it fails with `MAX_TURNS`.
    pub max_turns: u32,
    /// Tasks one agent may run at once.
    pub agent_concurrency: u32,
    /// How deep delegation may nest (a task a human created is depth 0).
    pub max_delegation_depth: u32,
    /// `max_tokens` of each model call unless the provider's config sets it.
    pub max_tokens: u32,
    /// How long one run may take before its attempt times out.
    pub run_timeout_secs: u64,
    /// Attempts of a run job (a crash or a provider outage); after the last the task fails.
    pub run_max_attempts: u32,
    /// What a run that ends without `finish_task` and without open subtasks does:
    /// `complete` (with the model's last text as the result) or `fail`.
    pub unfinished_policy: String,
    /// When pending tasks without a run job (e.g. after a crash) are found and queued (cron).
    pub sweep_schedule: String,
}

impl Default for AgentsConfig {
    fn default() -> Self {
        Self {
            max_turns: 30,
            agent_concurrency: 1,
            max_delegation_depth: 5,
            max_tokens: 4096,
            run_timeout_secs: 1800,
            run_max_attempts: 3,
            unfinished_policy: "complete".into(),
            sweep_schedule: "* * * * *".into(),
        }
    }
}

impl AgentsConfig {
    fn check(&self) -> Result<(), String> {
        if self.max_turns == 0
            || self.agent_concurrency == 0
            || self.max_tokens == 0
            || self.run_timeout_secs == 0
            || self.run_max_attempts == 0
        {
            return Err(
                "max_turns, agent_concurrency, max_tokens, run_timeout_secs and \
                        run_max_attempts must be greater than 0"
                    .into(),
            );
        }
        if !matches!(self.unfinished_policy.as_str(), "complete" | "fail") {
            return Err("unfinished_policy must be \"complete\" or \"fail\"".into());
        }
        crate::queue::CronExpr::parse(&self.sweep_schedule)
            .map(|_| ())
            .map_err(|e| format!("sweep_schedule: {e}"))
    }
}

/// `[queue]`: the job queue's workers, retries, per-plan caps and retention.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Jobs this process runs at once.
    pub concurrency: usize,
    /// Most jobs one claim takes (one transaction).
    pub batch_size: usize,
    /// How long a claim holds a job without renewal (a killed process's jobs run again after
    /// at most this long).
    pub lease_secs: u64,
    /// How often idle workers look for due jobs nobody woke them for (delayed jobs, retries,
    /// jobs enqueued by another process).
    pub poll_ms: u64,
    /// How often expired leases are returned to the queue.
    pub reap_secs: u64,
    /// Retry delays: attempt n waits a random time up to `min(cap, base × 2^(n-1))`.
    pub backoff_base_ms: u64,
    pub backoff_cap_secs: u64,
    /// Attempts of a job unless its kind says otherwise; after the last it is `dead`.
    pub max_attempts: u32,
    /// How long one attempt may run unless its kind says otherwise.
    pub timeout_secs: u64,
    /// How long shutdown lets running jobs finish before releasing them to the next start.
    pub shutdown_grace_secs: u64,
    /// `normal` (default) or `full`: how hard `queue.db` syncs each commit.
    pub synchronous: String,
    /// Jobs of one tenant that may run at once, by plan.
    pub tenant_concurrency: PlanConcurrency,
    /// Finished jobs are pruned: succeeded and cancelled ones after this many hours…
    pub keep_succeeded_hours: u64,
    /// …failed and dead ones (kept for inspection and retry) after this many days.
    pub keep_dead_days: u64,
    /// When finished jobs are pruned (cron, UTC).
    pub prune_schedule: String,
    /// When the databases' write-ahead logs are checkpointed (cron, UTC).
    pub checkpoint_schedule: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlanConcurrency {
    pub free: u32,
    pub team: u32,
    pub enterprise: u32,
}

impl Default for PlanConcurrency {
    fn default() -> Self {
        Self {
            free: 2,
            team: 8,
            enterprise: 32,
        }
    }
}

impl PlanConcurrency {
    pub fn of(&self, plan: crate::domain::Plan) -> u32 {
        match plan {
            crate::domain::Plan::Free => self.free,
            crate::domain::Plan::Team => self.team,
            crate::domain::Plan::Enterprise => self.enterprise,
        }
    }
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            concurrency: 64,
            batch_size: 128,
            lease_secs: 30,
            poll_ms: 500,
            reap_secs: 10,
            backoff_base_ms: 1000,
            backoff_cap_secs: 3600,
            max_attempts: 5,
            timeout_secs: 600,
            shutdown_grace_secs: 10,
            synchronous: "normal".into(),
            tenant_concurrency: PlanConcurrency::default(),
            keep_succeeded_hours: 24,
            keep_dead_days: 7,
            prune_schedule: "*/10 * * * *".into(),
            checkpoint_schedule: "*/5 * * * *".into(),
        }
    }
}

impl QueueConfig {
    /// Checks the values; the queue's settings when they hold.
    pub fn settings(&self) -> Result<crate::queue::QueueSettings, String> {
        use std::time::Duration;
        let synchronous = match self.synchronous.as_str() {
            "normal" => crate::queue::Synchronous::Normal,
            "full" => crate::queue::Synchronous::Full,
            other => {
                return Err(format!(
                    "synchronous must be `normal` or `full`, not `{other}`"
                ));
            }
        };
        let positive = [
            ("concurrency", self.concurrency as u64),
            ("batch_size", self.batch_size as u64),
            ("lease_secs", self.lease_secs),
            ("poll_ms", self.poll_ms),
            ("reap_secs", self.reap_secs),
            ("backoff_base_ms", self.backoff_base_ms),
            ("backoff_cap_secs", self.backoff_cap_secs),
            ("max_attempts", u64::from(self.max_attempts)),
            ("timeout_secs", self.timeout_secs),
            ("keep_succeeded_hours", self.keep_succeeded_hours),
            ("keep_dead_days", self.keep_dead_days),
            (
                "tenant_concurrency.free",
                u64::from(self.tenant_concurrency.free),
            ),
            (
                "tenant_concurrency.team",
                u64::from(self.tenant_concurrency.team),
            ),
            (
                "tenant_concurrency.enterprise",
                u64::from(self.tenant_concurrency.enterprise),
            ),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{name} must be greater than 0"));
        }
        if self.keep_succeeded_hours > 87_600 || self.keep_dead_days > 3650 {
            return Err("jobs are kept at most ten years".into());
        }
        for (name, cron) in [
            ("prune_schedule", &self.prune_schedule),
            ("checkpoint_schedule", &self.checkpoint_schedule),
        ] {
            crate::queue::CronExpr::parse(cron).map_err(|e| format!("{name}: {e}"))?;
        }
        Ok(crate::queue::QueueSettings {
            lease: Duration::from_secs(self.lease_secs),
            poll_interval: Duration::from_millis(self.poll_ms),
            concurrency: self.concurrency,
            batch_size: self.batch_size,
            backoff: crate::queue::Backoff {
                base: Duration::from_millis(self.backoff_base_ms),
                cap: Duration::from_secs(self.backoff_cap_secs),
            },
            default_max_attempts: self.max_attempts,
            default_timeout: Duration::from_secs(self.timeout_secs),
            shutdown_grace: Duration::from_secs(self.shutdown_grace_secs),
            reap_interval: Duration::from_secs(self.reap_secs),
            synchronous,
            ..crate::queue::QueueSettings::default()
        })
    }
}

/// The config file, as written by a user. Every key is optional; unknown keys are errors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<Secret>,
    pub listen: Option<String>,
    pub base_domain: Option<String>,
    pub public_url: Option<String>,
    pub metrics_token: Option<Secret>,
    pub log: Option<String>,
    pub log_format: Option<LogFormat>,
    #[serde(default)]
    pub http: Option<HttpSettings>,
    #[serde(default)]
    pub storage: Option<StorageSettings>,
    #[serde(default)]
    pub rate_limits: Option<RateLimitSettings>,
    #[serde(default)]
    pub mcp: Option<McpSettings>,
    #[serde(default)]
    pub hook_events: Option<HookEventSettings>,
    #[serde(default)]
    pub realtime: Option<RealtimeSettings>,
    #[serde(default)]
    pub queue: Option<QueueConfig>,
    #[serde(default)]
    pub agents: Option<AgentsConfig>,
}

/// Values from the environment and the command line (clap merges the two, flags first).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<Secret>,
    pub listen: Option<String>,
    pub base_domain: Option<String>,
    pub public_url: Option<String>,
    pub metrics_token: Option<Secret>,
    pub log: Option<String>,
    pub log_format: Option<LogFormat>,
    pub max_body_bytes: Option<usize>,
    pub max_open_tenants: Option<usize>,
    pub workers: Option<usize>,
    pub blocking_threads: Option<usize>,
    pub cpu_scheduling: Option<CpuScheduling>,
    pub cors_allowed_origins: Option<Vec<String>>,
    pub trusted_proxies: Option<Vec<String>>,
    pub admin_email: Option<String>,
    pub admin_password: Option<Secret>,
    pub master_key: Option<Secret>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    ParseFile { path: PathBuf, message: String },
    #[error("invalid {setting}: {message}")]
    Invalid {
        setting: &'static str,
        message: String,
    },
}

fn invalid(setting: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting,
        message: message.into(),
    }
}

impl Settings {
    /// Builds the settings from all layers and validates them.
    pub fn load(o: Overrides) -> Result<Self, ConfigError> {
        let file = match &o.config {
            Some(path) => read_file(path)?,
            None => FileSettings::default(),
        };
        let mut http = file.http.unwrap_or_default();
        let mut storage = file.storage.unwrap_or_default();
        if let Some(v) = o.max_body_bytes {
            http.max_body_bytes = v;
        }
        if let Some(v) = o.workers {
            http.workers = v;
        }
        if let Some(v) = o.blocking_threads {
            http.blocking_threads = v;
        }
        if let Some(v) = o.cpu_scheduling {
            http.cpu_scheduling = v;
        }
        if let Some(v) = o.cors_allowed_origins {
            http.cors_allowed_origins = v;
        }
        for origin in &mut http.cors_allowed_origins {
            *origin = parse_origin(origin)?;
        }
        if let Some(v) = o.trusted_proxies {
            http.trusted_proxies = v;
        }
        let trusted_proxies = TrustedProxies::parse(&http.trusted_proxies)
            .map_err(|e| invalid("trusted proxies", e))?;
        let rate_limits = file.rate_limits.unwrap_or_default();
        rate_limits
            .validate()
            .map_err(|e| invalid("rate limits", e))?;
        if let Some(v) = o.max_open_tenants {
            storage.max_open_tenants = v;
        }
        let mcp = file.mcp.unwrap_or_default();
        if mcp.ping_timeout_ms == 0 || mcp.max_response_bytes == 0 {
            return Err(invalid(
                "mcp",
                "ping_timeout_ms and max_response_bytes must be greater than 0",
            ));
        }
        let hook_events = file.hook_events.unwrap_or_default();
        if hook_events.max_batch == 0
            || hook_events.max_event_bytes == 0
            || hook_events.max_rows_per_tenant == 0
            || hook_events.max_age_days == 0
        {
            return Err(invalid("hook_events", "every limit must be greater than 0"));
        }
        crate::queue::CronExpr::parse(&hook_events.retention_schedule)
            .map_err(|e| invalid("hook_events.retention_schedule", e.to_string()))?;
        let realtime = file.realtime.unwrap_or_default();
        if realtime.max_connections == 0
            || realtime.heartbeat_secs == 0
            || realtime.idle_timeout_secs <= realtime.heartbeat_secs
            || realtime.revalidate_secs == 0
            || realtime.queue_events == 0
            || realtime.send_timeout_secs == 0
            || realtime.replay_events == 0
            || realtime.max_topics == 0
        {
            return Err(invalid(
                "realtime",
                "every limit must be greater than 0, and idle_timeout_secs greater than heartbeat_secs",
            ));
        }
        let queue = file.queue.unwrap_or_default();
        queue.settings().map_err(|e| invalid("queue", e))?;
        let agents = file.agents.unwrap_or_default();
        agents.check().map_err(|e| invalid("agents", e))?;

        let data_dir = o
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("./agenthq-data"));
        if data_dir.as_os_str().is_empty() {
            return Err(invalid("data dir", "must not be empty"));
        }
        let backend = parse_backend(o.database_url.or(file.database_url))?;
        let listen = parse_listen(
            o.listen
                .or(file.listen)
                .as_deref()
                .unwrap_or(DEFAULT_LISTEN),
        )?;
        let base_domain = o
            .base_domain
            .or(file.base_domain)
            .map(|d| parse_base_domain(&d))
            .transpose()?;
        let public_url = o
            .public_url
            .or(file.public_url)
            .map(|u| parse_public_url(&u))
            .transpose()?;
        let metrics_token = o.metrics_token.or(file.metrics_token);
        if metrics_token
            .as_ref()
            .is_some_and(|t| t.expose().len() < 16)
        {
            return Err(invalid(
                "metrics token",
                "must be at least 16 characters long",
            ));
        }
        let log = o.log.or(file.log);
        if let Some(log) = &log {
            tracing_subscriber::EnvFilter::try_new(log)
                .map_err(|e| invalid("log filter", format!("'{log}': {e}")))?;
        }
        let log_format = o.log_format.or(file.log_format).unwrap_or_default();

        if http.max_body_bytes == 0 {
            return Err(invalid("max body bytes", "must be greater than 0"));
        }
        if storage.max_open_tenants == 0 {
            return Err(invalid("max open tenants", "must be at least 1"));
        }
        if storage.tenant_pool_size == 0 {
            return Err(invalid("storage.tenant_pool_size", "must be at least 1"));
        }
        if storage.registry_poll_ms == 0 || storage.registry_poll_ms > 1000 {
            return Err(invalid(
                "storage.registry_poll_ms",
                "must be between 1 and 1000 (changes must be seen within a second)",
            ));
        }

        let bootstrap_admin = match (o.admin_email, o.admin_password) {
            (Some(email), Some(password)) => Some((email, password)),
            (None, None) => None,
            _ => {
                return Err(invalid(
                    "bootstrap admin",
                    "set both AGENTHQ_ADMIN_EMAIL and AGENTHQ_ADMIN_PASSWORD, or neither",
                ));
            }
        };

        if let Some(key) = &o.master_key {
            crate::secrets::MasterKey::from_base64(key.expose())
                .map_err(|e| invalid("master key", e.to_string()))?;
        }

        Ok(Self {
            master_key: o.master_key,
            data_dir,
            backend,
            listen,
            base_domain,
            public_url,
            metrics_token,
            log,
            log_format,
            http,
            trusted_proxies,
            storage,
            rate_limits,
            mcp,
            hook_events,
            realtime,
            queue,
            agents,
            bootstrap_admin,
        })
    }

    /// The log filter to use: the configured one, else the command's default.
    pub fn log_filter<'a>(&'a self, default: &'a str) -> &'a str {
        self.log.as_deref().unwrap_or(default)
    }
}

fn read_file(path: &Path) -> Result<FileSettings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::ParseFile {
        path: path.to_owned(),
        // toml's message spans several lines (a source excerpt); the CLI prints one line.
        message: e.message().to_owned()
            + &e.span()
                .map(|s| format!(" (at byte {})", s.start))
                .unwrap_or_default(),
    })
}

fn parse_backend(url: Option<Secret>) -> Result<Backend, ConfigError> {
    let Some(url) = url else {
        return Ok(Backend::Sqlite);
    };
    let text = url.expose();
    if text.is_empty() || text.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        Ok(Backend::Postgres(url))
    } else {
        Err(invalid(
            "database url",
            "expected postgres://… (or leave it unset for embedded SQLite)",
        ))
    }
}

/// Parses a browser origin: `http(s)://host[:port]`, no path; lower-cased as browsers send it.
fn parse_origin(s: &str) -> Result<String, ConfigError> {
    let origin = s.trim().to_ascii_lowercase();
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    match rest {
        Some(host)
            if !host.is_empty()
                && host.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
                }) =>
        {
            Ok(origin)
        }
        _ => Err(invalid(
            "CORS origin",
            format!("'{s}': expected http(s)://host[:port] with no path (and no '*')"),
        )),
    }
}

/// Parses `HOST:PORT` where HOST is an IP address or `localhost`.
pub fn parse_listen(s: &str) -> Result<SocketAddr, ConfigError> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Some(port) = s.strip_prefix("localhost:")
        && let Ok(port) = port.parse::<u16>()
    {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    Err(invalid(
        "listen address",
        format!("'{s}': expected IP:PORT, e.g. 127.0.0.1:8080 or [::]:8080"),
    ))
}

fn parse_base_domain(d: &str) -> Result<String, ConfigError> {
    let d = d.trim().trim_end_matches('.').to_ascii_lowercase();
    let valid_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if d.is_empty() || d.len() > 253 || !d.split('.').all(valid_label) {
        return Err(invalid(
            "base domain",
            format!("'{d}' is not a host name such as agenthq.example.com"),
        ));
    }
    Ok(d)
}

fn parse_public_url(u: &str) -> Result<String, ConfigError> {
    let u = u.trim().trim_end_matches('/');
    let rest = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() => Ok(u.to_owned()),
        _ => Err(invalid(
            "public url",
            format!("'{u}' must be an http:// or https:// URL"),
        )),
    }
}

#[cfg(test)]
mod cors_tests {
    use super::*;

    #[test]
    fn cors_origins_are_bare_http_origins() {
        assert_eq!(
            parse_origin("https://App.Example.com").unwrap(),
            "https://app.example.com"
        );
        assert_eq!(
            parse_origin("http://localhost:5173").unwrap(),
            "http://localhost:5173"
        );
        for bad in [
            "*",
            "app.example.com",
            "https://example.com/path",
            "https://",
            "ftp://x",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn config_file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let s = Settings::load(Overrides::default()).unwrap();
        assert_eq!(s.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(s.data_dir, PathBuf::from("./agenthq-data"));
        assert_eq!(s.backend, Backend::Sqlite);
        assert_eq!(s.http.max_body_bytes, 1024 * 1024);
        assert_eq!(s.log_format, LogFormat::Text);
        assert_eq!(s.http.cpu_scheduling, CpuScheduling::Batch);
        assert_eq!(s.http.blocking_threads, 32);
    }

    #[test]
    fn blocking_threads_come_from_the_file_or_the_environment() {
        let f = config_file("[http]\nblocking_threads = 8\n");
        let s = Settings::load(Overrides {
            config: Some(f.path().to_owned()),
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(s.http.blocking_threads, 8);
        let s = Settings::load(Overrides {
            config: Some(f.path().to_owned()),
            blocking_threads: Some(0),
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(s.http.blocking_threads, 0, "the override wins");
    }

    #[test]
    fn cpu_scheduling_comes_from_the_file_or_the_environment_and_is_checked() {
        let f = config_file("[http]\ncpu_scheduling = \"normal\"\n");
        let from_file = |o: Overrides| {
            Settings::load(Overrides {
                config: Some(f.path().to_owned()),
                ..o
            })
        };
        let s = from_file(Overrides::default()).unwrap();
        assert_eq!(s.http.cpu_scheduling, CpuScheduling::Normal);
        let s = from_file(Overrides {
            cpu_scheduling: Some(CpuScheduling::Batch),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.http.cpu_scheduling, CpuScheduling::Batch);

        let f = config_file("[http]\ncpu_scheduling = \"fifo\"\n");
        let err = Settings::load(Overrides {
            config: Some(f.path().to_owned()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("fifo") && err.contains("batch"), "{err}");
    }

    #[test]
    fn the_file_beats_defaults_and_overrides_beat_the_file() {
        let f = config_file(
            "listen = \"0.0.0.0:9000\"\nbase_domain = \"Example.COM\"\n[http]\nmax_body_bytes = 10\n[storage]\nmax_open_tenants = 7\n",
        );
        let s = Settings::load(Overrides {
            config: Some(f.path().to_owned()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.listen, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(s.base_domain.as_deref(), Some("example.com"));
        assert_eq!(s.http.max_body_bytes, 10);
        assert_eq!(s.storage.max_open_tenants, 7);
        assert_eq!(s.storage.tenant_pool_size, 4, "unset keys keep defaults");

        let s = Settings::load(Overrides {
            config: Some(f.path().to_owned()),
            listen: Some("127.0.0.1:1".into()),
            max_body_bytes: Some(20),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.listen, "127.0.0.1:1".parse().unwrap());
        assert_eq!(s.http.max_body_bytes, 20);
    }

    #[test]
    fn an_unknown_config_key_is_an_error_naming_it() {
        let f = config_file("listen = \"127.0.0.1:1\"\nlisten_port = 3\n");
        let err = Settings::load(Overrides {
            config: Some(f.path().to_owned()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("listen_port"), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");

        let f = config_file("[storage]\nmax_tenants = 3\n");
        let err = Settings::load(Overrides {
            config: Some(f.path().to_owned()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("max_tenants"), "{err}");
    }

    #[test]
    fn bad_values_are_rejected_with_the_setting_named() {
        let cases = [
            (
                Overrides {
                    listen: Some("nonsense".into()),
                    ..Default::default()
                },
                "listen address",
            ),
            (
                Overrides {
                    listen: Some("127.0.0.1:99999".into()),
                    ..Default::default()
                },
                "listen address",
            ),
            (
                Overrides {
                    base_domain: Some("bad domain".into()),
                    ..Default::default()
                },
                "base domain",
            ),
            (
                Overrides {
                    public_url: Some("ftp://x".into()),
                    ..Default::default()
                },
                "public url",
            ),
            (
                Overrides {
                    max_body_bytes: Some(0),
                    ..Default::default()
                },
                "max body bytes",
            ),
            (
                Overrides {
                    database_url: Some(Secret::new("mysql://x")),
                    ..Default::default()
                },
                "database url",
            ),
            (
                Overrides {
                    log: Some("info,[[[".into()),
                    ..Default::default()
                },
                "log filter",
            ),
            (
                Overrides {
                    trusted_proxies: Some(vec!["10.0.0.0/8".into(), "proxy.local".into()]),
                    ..Default::default()
                },
                "trusted proxies",
            ),
        ];
        for (o, needle) in cases {
            let err = Settings::load(o).unwrap_err().to_string();
            assert!(err.contains(needle), "{err} should mention {needle}");
        }
    }

    #[test]
    fn rate_limits_come_from_the_file_and_are_checked() {
        let f = config_file(
            "[rate_limits]\nlogin_burst = 3\n[rate_limits.team]\nrequests_per_minute = 10\nburst = 2\n",
        );
        let s = Settings::load(Overrides {
            config: Some(f.path().to_owned()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.rate_limits.login_burst, 3);
        assert_eq!(
            s.rate_limits.login_per_minute, 10,
            "unset keys keep defaults"
        );
        assert_eq!(
            s.rate_limits.plan(crate::domain::Plan::Team),
            PlanLimit {
                requests_per_minute: 10,
                burst: 2
            }
        );
        assert_eq!(s.rate_limits.free.requests_per_minute, 120);

        let f = config_file("[rate_limits.free]\nrequests_per_minute = 0\nburst = 1\n");
        let err = Settings::load(Overrides {
            config: Some(f.path().to_owned()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("rate_limits.free"), "{err}");
    }

    #[test]
    fn mcp_and_hook_event_sections_come_from_the_file() {
        let s = Settings::load(Overrides::default()).unwrap();
        assert!(!s.mcp.allow_stdio && !s.mcp.allow_private_networks);
        assert_eq!(s.hook_events.max_batch, 100);

        let f = config_file(
            "[mcp]\nallow_stdio = true\nping_timeout_ms = 500\n[hook_events]\nmax_batch = 5\nmax_age_days = 2\n",
        );
        let s = Settings::load(Overrides {
            config: Some(f.path().to_owned()),
            ..Default::default()
        })
        .unwrap();
        assert!(s.mcp.allow_stdio);
        assert!(!s.mcp.allow_private_networks, "unset keys keep defaults");
        assert_eq!(s.mcp.ping_timeout_ms, 500);
        assert_eq!(s.hook_events.max_batch, 5);
        assert_eq!(s.hook_events.max_age_days, 2);

        let f = config_file("[hook_events]\nmax_batch = 0\n");
        let err = Settings::load(Overrides {
            config: Some(f.path().to_owned()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("hook_events"), "{err}");
    }

    #[test]
    fn localhost_is_accepted_as_a_listen_host() {
        assert_eq!(
            parse_listen("localhost:8080").unwrap(),
            "127.0.0.1:8080".parse().unwrap()
        );
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let s = Settings::load(Overrides {
            metrics_token: Some(Secret::new("super-secret-token-123")),
            database_url: Some(Secret::new("postgres://u:pw@h/db")),
            ..Default::default()
        })
        .unwrap();
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("super-secret"), "{dbg}");
        assert!(!dbg.contains("pw@"), "{dbg}");
    }
}
