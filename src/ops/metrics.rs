//! Prometheus metrics of the process: HTTP traffic, tenants and storage, process resources.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::domain::TenantStatus;

/// The metric handles of one (metrics instance, status, method) under a route.
struct Handles {
    instance: usize,
    status: u16,
    method: String,
    requests: IntCounter,
    duration: Histogram,
}

/// Metric handles by route template, per thread: looked up without allocating.
type HandleCache = HashMap<String, Vec<Handles>>;

thread_local! {
    static HANDLES: RefCell<HandleCache> = RefCell::new(HashMap::new());
}

/// Tells apart `Metrics` instances in the per-thread cache (tests run several servers).
static NEXT_INSTANCE: AtomicUsize = AtomicUsize::new(0);

pub struct Metrics {
    instance: usize,
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    pub tenant_pools_open: IntGauge,
    tenants: IntGaugeVec,
    /// Requests refused by a rate limit, by limit (`tenant`, `login`, `account`).
    rate_limited: IntCounterVec,
    /// Tenant database writes and the commits that carried them (group commit).
    store_writes: IntCounter,
    store_commits: IntCounter,
    /// WAL checkpoints of tenant databases, by where they ran (`background`, `inline`).
    store_checkpoints: IntCounterVec,
    store_sync: std::sync::Mutex<()>,
    ws_connections: IntGauge,
    ws_connections_by_tenant: IntGaugeVec,
    ws_events_sent: IntCounter,
    ws_slow_consumers: IntCounter,
    ws_fanout_seconds: Histogram,
    /// The job queue's series (the worker pool's observer).
    pub queue: std::sync::Arc<super::queue_metrics::QueueMetrics>,
    /// Agent runs: outcomes, model calls, tokens, cost, platform time per turn.
    pub runs: std::sync::Arc<super::run_metrics::RunMetrics>,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("agenthq".into()), None)?;
        let http_requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by method, route and status",
            ),
            &["method", "route", "status"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by method and route",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
            ]),
            &["method", "route"],
        )?;
        let tenant_pools_open = IntGauge::new(
            "tenant_pools_open",
            "Tenant databases open (connection pools in the LRU cache)",
        )?;
        let tenants = IntGaugeVec::new(Opts::new("tenants", "Tenants by status"), &["status"])?;
        let rate_limited = IntCounterVec::new(
            Opts::new(
                "rate_limited_total",
                "Requests refused with 429 by a rate limit, by limit",
            ),
            &["limit"],
        )?;
        let store_writes = IntCounter::new(
            "store_writes_total",
            "Write transactions of services on tenant databases (each in its own savepoint)",
        )?;
        let store_commits = IntCounter::new(
            "store_commits_total",
            "Commits on tenant databases; writes / commits is the mean group-commit size",
        )?;
        let store_checkpoints = IntCounterVec::new(
            Opts::new(
                "store_checkpoints_total",
                "WAL checkpoints of tenant databases: by the background thread, or inline by a \
                 commit that finished one or found the log too long",
            ),
            &["where"],
        )?;
        let ws_connections =
            IntGauge::new("ws_connections", "Open WebSocket connections (GET /api/ws)")?;
        let ws_connections_by_tenant = IntGaugeVec::new(
            Opts::new(
                "ws_connections_by_tenant",
                "Open WebSocket connections by tenant slug (tenants with none are not listed)",
            ),
            &["tenant"],
        )?;
        let ws_events_sent = IntCounter::new(
            "ws_events_sent_total",
            "Events written to WebSocket connections (replays included)",
        )?;
        let ws_slow_consumers = IntCounter::new(
            "ws_slow_consumers_total",
            "WebSocket connections closed because they fell behind the event stream",
        )?;
        let ws_fanout_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "ws_fanout_seconds",
                "Time from an event's publication to its hand-off to a socket",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ]),
        )?;
        let build = IntGaugeVec::new(
            Opts::new("build_info", "Build of this process"),
            &["version"],
        )?;
        build.with_label_values(&[crate::VERSION]).set(1);

        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(tenant_pools_open.clone()))?;
        registry.register(Box::new(tenants.clone()))?;
        registry.register(Box::new(rate_limited.clone()))?;
        registry.register(Box::new(store_writes.clone()))?;
        registry.register(Box::new(store_commits.clone()))?;
        registry.register(Box::new(store_checkpoints.clone()))?;
        registry.register(Box::new(ws_connections.clone()))?;
        registry.register(Box::new(ws_connections_by_tenant.clone()))?;
        registry.register(Box::new(ws_events_sent.clone()))?;
        registry.register(Box::new(ws_slow_consumers.clone()))?;
        registry.register(Box::new(ws_fanout_seconds.clone()))?;
        registry.register(Box::new(build))?;
        let queue = std::sync::Arc::new(super::queue_metrics::QueueMetrics::register(&registry)?);
        let runs = std::sync::Arc::new(super::run_metrics::RunMetrics::register(&registry)?);
        // Process metrics (CPU, RSS, open fds…) keep their conventional unprefixed names.
        #[cfg(target_os = "linux")]
        {
            let process = Registry::new();
            process.register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))?;
            registry.register(Box::new(ProcessMetrics(process)))?;
        }
        Ok(Self {
            instance: NEXT_INSTANCE.fetch_add(1, Ordering::Relaxed),
            registry,
            http_requests,
            http_duration,
            tenant_pools_open,
            tenants,
            rate_limited,
            store_writes,
            store_commits,
            store_checkpoints,
            store_sync: std::sync::Mutex::new(()),
            ws_connections,
            ws_connections_by_tenant,
            ws_events_sent,
            ws_slow_consumers,
            ws_fanout_seconds,
            queue,
            runs,
        })
    }

    /// A WebSocket connection of `tenant` opened.
    pub fn ws_connected(&self, tenant: &str) {
        self.ws_connections.inc();
        self.ws_connections_by_tenant
            .with_label_values(&[tenant])
            .inc();
    }

    /// A WebSocket connection of `tenant` closed.
    pub fn ws_disconnected(&self, tenant: &str) {
        self.ws_connections.dec();
        let gauge = self.ws_connections_by_tenant.with_label_values(&[tenant]);
        gauge.dec();
        if gauge.get() <= 0 {
            // Keeps the label set to tenants with connections.
            let _ = self.ws_connections_by_tenant.remove_label_values(&[tenant]);
        }
    }

    /// An event handed to a socket `since_published` after its publication.
    pub fn ws_event_sent(&self, since_published: Duration) {
        self.ws_events_sent.inc();
        self.ws_fanout_seconds
            .observe(since_published.as_secs_f64());
    }

    /// A socket closed for falling behind.
    pub fn ws_slow_consumer(&self) {
        self.ws_slow_consumers.inc();
    }

    /// Counts a request refused by the rate limit `limit`.
    pub fn count_rate_limited(&self, limit: &str) {
        self.rate_limited.with_label_values(&[limit]).inc();
    }

    pub fn observe_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        // NOTE: `with_label_values` hashes the labels and takes a lock twice per request; it
        // was the costliest line of the middleware in profiles. Each worker thread keeps the
        // handles it has used (the label set is bounded: route templates, not paths).
        HANDLES.with_borrow_mut(|handles| {
            let for_route = match handles.get_mut(route) {
                Some(v) => v,
                None => handles.entry(route.to_owned()).or_default(),
            };
            let found = for_route.iter().position(|h| {
                h.instance == self.instance && h.status == status && h.method == method
            });
            let index = found.unwrap_or_else(|| {
                let status_text = status.to_string();
                for_route.push(Handles {
                    instance: self.instance,
                    status,
                    method: method.to_owned(),
                    requests: self.http_requests.with_label_values(&[
                        method,
                        route,
                        status_text.as_str(),
                    ]),
                    duration: self.http_duration.with_label_values(&[method, route]),
                });
                for_route.len() - 1
            });
            let h = &for_route[index];
            h.requests.inc();
            h.duration.observe(elapsed.as_secs_f64());
        });
    }

    pub fn set_tenant_counts(&self, counts: impl IntoIterator<Item = (TenantStatus, i64)>) {
        for status in TenantStatus::ALL {
            self.tenants.with_label_values(&[status.as_str()]).set(0);
        }
        for (status, n) in counts {
            self.tenants.with_label_values(&[status.as_str()]).set(n);
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        // Process-wide totals kept by the store, brought in one scrape at a time (two at once
        // would both add the same difference).
        let _one_at_a_time = self
            .store_sync
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let totals = crate::store::sqlite::write_totals();
        self.store_writes
            .inc_by(totals.writes.saturating_sub(self.store_writes.get()));
        self.store_commits
            .inc_by(totals.commits.saturating_sub(self.store_commits.get()));
        let checkpoints = crate::store::sqlite::checkpoint_totals();
        for (place, total) in [
            ("background", checkpoints.background),
            ("inline", checkpoints.inline),
        ] {
            let counter = self.store_checkpoints.with_label_values(&[place]);
            counter.inc_by(total.saturating_sub(counter.get()));
        }
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        String::from_utf8(out).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}

/// Exposes a separate registry's metrics without the `agenthq_` prefix.
struct ProcessMetrics(Registry);

impl prometheus::core::Collector for ProcessMetrics {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        Vec::new()
    }
    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        self.0.gather()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_route_template_and_status() {
        let m = Metrics::new().unwrap();
        m.observe_request("GET", "/api/agents/{id}", 200, Duration::from_millis(3));
        m.observe_request("GET", "/api/agents/{id}", 200, Duration::from_millis(3));
        let text = m.render().unwrap();
        assert!(
            text.contains(
                "agenthq_http_requests_total{method=\"GET\",route=\"/api/agents/{id}\",status=\"200\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains("agenthq_http_request_duration_seconds_bucket"));
        assert!(text.contains("agenthq_build_info"));
    }
}
