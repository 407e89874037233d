//! Prometheus series of agent runs: runs by outcome, model calls and their latency, tokens and
//! cost, and the platform's own time per turn (a run's time minus the time spent waiting for
//! the model, divided by its turns).

use std::time::Duration;

use prometheus::{Counter, Histogram, HistogramOpts, IntCounterVec, Opts};

pub struct RunMetrics {
    runs: IntCounterVec,
    model_seconds: Histogram,
    overhead_per_turn: Histogram,
    tokens: IntCounterVec,
    cost_usd: Counter,
}

impl RunMetrics {
    pub fn register(registry: &prometheus::Registry) -> Result<Self, prometheus::Error> {
        let runs = IntCounterVec::new(
            Opts::new("agent_runs_total", "Finished agent runs by outcome"),
            &["outcome"],
        )?;
        let model_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "agent_model_call_seconds",
                "Latency of model calls (retries included)",
            )
            .buckets(vec![
                0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
            ]),
        )?;
        let overhead_per_turn = Histogram::with_opts(
            HistogramOpts::new(
                "agent_run_overhead_per_turn_seconds",
                "Platform time per model turn of a run: the run's time minus model calls, over its turns",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075,
                0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ]),
        )?;
        let tokens = IntCounterVec::new(
            Opts::new(
                "agent_tokens_total",
                "Model tokens by type (input, output, cache_read, cache_write)",
            ),
            &["type"],
        )?;
        let cost_usd = Counter::new(
            "agent_cost_usd_total",
            "What model calls cost, in US dollars",
        )?;
        registry.register(Box::new(runs.clone()))?;
        registry.register(Box::new(model_seconds.clone()))?;
        registry.register(Box::new(overhead_per_turn.clone()))?;
        registry.register(Box::new(tokens.clone()))?;
        registry.register(Box::new(cost_usd.clone()))?;
        Ok(Self {
            runs,
            model_seconds,
            overhead_per_turn,
            tokens,
            cost_usd,
        })
    }

    /// A model call took `elapsed` and used `usage`, costing `cost_micros`.
    pub fn model_call(
        &self,
        elapsed: Duration,
        usage: &crate::agents::providers::Usage,
        cost_micros: i64,
    ) {
        self.model_seconds.observe(elapsed.as_secs_f64());
        for (kind, n) in [
            ("input", usage.input_tokens),
            ("output", usage.output_tokens),
            ("cache_read", usage.cache_read_tokens),
            ("cache_write", usage.cache_write_tokens),
        ] {
            if n > 0 {
                self.tokens.with_label_values(&[kind]).inc_by(n);
            }
        }
        self.cost_usd.inc_by(cost_micros as f64 / 1e6);
    }

    /// A run ended with `outcome` after `elapsed`, of which `model` waiting for `turns` calls.
    pub fn run_ended(&self, outcome: &str, elapsed: Duration, model: Duration, turns: u32) {
        self.runs.with_label_values(&[outcome]).inc();
        if turns > 0 {
            let platform = elapsed.saturating_sub(model);
            self.overhead_per_turn
                .observe(platform.as_secs_f64() / f64::from(turns));
        }
    }
}
