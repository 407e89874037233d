//! The job queue's figures (issue 6): no-op jobs through `agenthq::queue` exactly as the
//! server runs them (`queue.db` in a temp dir, the worker pool, the `noop` handler).
//!
//! 1. Throughput: `--jobs` no-op jobs enqueued in batches of `--batch` (one transaction
//!    each), then drained by one worker pool: enqueue jobs/s, drain jobs/s, and end to end
//!    (first enqueue to last completion). The pool starts after the last enqueue, as the
//!    BullMQ peer's worker does.
//! 2. Latency: `--latency-jobs` jobs one at a time, each enqueued after the previous one
//!    started: enqueue → handler start, p50/p99.
//!
//! Prints one JSON line. Run by `benches/queue.sh` beside BullMQ; alone:
//! `cargo bench --bench queue -- --synchronous normal`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use agenthq::queue::{
    HandlerRegistry, JobContext, JobFailure, JobSpec, Queue, QueueSettings, Synchronous, handler_fn,
};
use clap::{Parser, ValueEnum};
use tokio::sync::{Notify, mpsc};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Sync {
    Normal,
    Full,
}

#[derive(Parser, Debug)]
struct Args {
    #[arg(long, value_enum, default_value = "normal")]
    synchronous: Sync,
    #[arg(long, default_value_t = 100_000)]
    jobs: usize,
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Jobs the pool runs at once.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Most jobs one claim takes.
    #[arg(long, default_value_t = 256)]
    claim_batch: usize,
    #[arg(long, default_value_t = 1000)]
    latency_jobs: usize,
    /// Where queue.db goes (default: a temp dir).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
}

fn settings(args: &Args) -> QueueSettings {
    QueueSettings {
        concurrency: args.concurrency,
        batch_size: args.claim_batch,
        synchronous: match args.synchronous {
            Sync::Normal => Synchronous::Normal,
            Sync::Full => Synchronous::Full,
        },
        ..QueueSettings::default()
    }
}

fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    (sorted[rank - 1].as_secs_f64() * 1e6).round() / 1e3
}

async fn throughput(args: &Args, dir: &std::path::Path) -> anyhow::Result<serde_json::Value> {
    let queue = Queue::open(&dir.join("throughput.db"), settings(args))?;
    let done = Arc::new(AtomicUsize::new(0));
    let all_done = Arc::new(Notify::new());
    let total = args.jobs;
    let handlers = {
        let (done, all_done) = (done.clone(), all_done.clone());
        HandlerRegistry::new().with(
            "bench.noop",
            handler_fn(move |_ctx: JobContext| {
                let (done, all_done) = (done.clone(), all_done.clone());
                async move {
                    if done.fetch_add(1, Ordering::Relaxed) + 1 == total {
                        all_done.notify_one();
                    }
                    Ok::<(), JobFailure>(())
                }
            }),
        )
    };
    let started = Instant::now();
    let mut left = args.jobs;
    while left > 0 {
        let n = left.min(args.batch);
        let specs = (0..n).map(|_| JobSpec::new("bench.noop")).collect();
        queue.enqueue_batch(specs).await?;
        left -= n;
    }
    let enqueued = Instant::now();
    let finished = all_done.notified();
    let pool = queue.workers(handlers).start();
    finished.await;
    let end = Instant::now();
    pool.shutdown().await;
    queue.close().await?;
    let rate = |n: usize, d: Duration| (n as f64 / d.as_secs_f64()).round();
    Ok(serde_json::json!({
        "enqueue_per_sec": rate(args.jobs, enqueued - started),
        "drain_per_sec": rate(args.jobs, end - enqueued),
        "end_to_end_per_sec": rate(args.jobs, end - started),
    }))
}

async fn latency(args: &Args, dir: &std::path::Path) -> anyhow::Result<serde_json::Value> {
    let queue = Queue::open(&dir.join("latency.db"), settings(args))?;
    let (started_tx, mut started_rx) = mpsc::unbounded_channel::<Instant>();
    let handlers = HandlerRegistry::new().with(
        "bench.latency",
        handler_fn(move |_ctx: JobContext| {
            let _ = started_tx.send(Instant::now());
            async { Ok::<(), JobFailure>(()) }
        }),
    );
    let pool = queue.workers(handlers).start();
    let mut samples = Vec::with_capacity(args.latency_jobs);
    for _ in 0..args.latency_jobs {
        let t = Instant::now();
        queue.enqueue(JobSpec::new("bench.latency")).await?;
        let began = started_rx
            .recv()
            .await
            .ok_or_else(|| anyhow::anyhow!("the pool stopped"))?;
        samples.push(began - t);
    }
    pool.shutdown().await;
    queue.close().await?;
    samples.sort();
    Ok(serde_json::json!({
        "latency_p50_ms": quantile_ms(&samples, 0.5),
        "latency_p99_ms": quantile_ms(&samples, 0.99),
    }))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let temp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| temp.path().to_owned());
    let t = throughput(&args, &dir).await?;
    let l = latency(&args, &dir).await?;
    let mut report = serde_json::json!({
        "label": format!("agenthq-{:?}", args.synchronous).to_lowercase(),
        "jobs": args.jobs,
        "batch": args.batch,
        "concurrency": args.concurrency,
    });
    for part in [t, l] {
        if let (Some(out), serde_json::Value::Object(part)) = (report.as_object_mut(), part) {
            out.extend(part);
        }
    }
    println!("{report}");
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // The server's shape: a multi-threaded runtime on every core.
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(args))
}
