//! WebSocket load generator (issue 5): holds N connections spread over T tenants, publishes one
//! event per tenant every `interval` for `duration`, and measures delivery latency (publish →
//! receive, one clock: publisher and receivers are this process), losses, the connection
//! set-up rate, and the server's RSS and CPU (from `/proc/<pid>`).
//!
//! Two targets speak the same workload:
//! - `agenthq`: sockets at `/api/ws?token=…` (one API token per tenant); events published by
//!   `POST /api/admin/realtime/test-events` as a signed-in platform admin, one request per tick
//!   carrying every tenant's event;
//! - `socketio`: the peer in `benches/peers/socketio_server.js`; sockets speak Engine.IO v4 /
//!   Socket.IO v5 over a plain WebSocket (`/socket.io/?EIO=4&transport=websocket&tenant=…`,
//!   `40` to join, `42[…]` events, `2`/`3` pings), one room per tenant; events published by
//!   `POST /publish` with the same body.
//!
//! Run by `benches/ws.sh`; alone:
//! `cargo bench --bench ws_load -- --target agenthq --url http://127.0.0.1:PORT
//!  --tokens FILE --admin-cookie C --csrf X --server-pid PID`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;

#[path = "common/latency.rs"]
mod latency;
use latency::Histogram;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Target {
    Agenthq,
    Socketio,
}

#[derive(Parser, Debug)]
struct Args {
    #[arg(long, value_enum)]
    target: Target,
    /// The server's base URL, `http://127.0.0.1:PORT`.
    #[arg(long)]
    url: String,
    /// Lines `slug token` (agenthq) or `slug` (socketio), one per tenant.
    #[arg(long)]
    tenants_file: std::path::PathBuf,
    /// Session cookie (`name=value`) of a platform admin (agenthq).
    #[arg(long, default_value = "")]
    admin_cookie: String,
    /// Its CSRF token (agenthq).
    #[arg(long, default_value = "")]
    csrf: String,
    /// The server's process id, for its RSS and CPU.
    #[arg(long)]
    server_pid: u32,
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// Milliseconds between two events of one tenant.
    #[arg(long, default_value_t = 10)]
    interval_ms: u64,
    /// Seconds of measured publishing.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Seconds of publishing before measuring starts.
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    /// Size of each event's `data` in bytes (JSON text).
    #[arg(long, default_value_t = 200)]
    payload_bytes: usize,
    /// Handshakes in flight while connecting.
    #[arg(long, default_value_t = 200)]
    connect_concurrency: usize,
    /// Publish requests in flight at most (a tick finding none free is skipped and counted).
    #[arg(long, default_value_t = 64)]
    max_inflight_publishes: usize,
    /// A label for the output.
    #[arg(long, default_value = "")]
    label: String,
}

/// Shared counters of the run.
struct Run {
    target: Target,
    clock: Instant,
    /// Events sent at or after this (µs on `clock`) are measured.
    measure_from: AtomicU64,
    /// …and before this.
    measure_until: AtomicU64,
    histogram: Histogram,
    received: AtomicU64,
    unparsed: AtomicU64,
    connected: AtomicU64,
    failed_connects: AtomicU64,
    dropped: AtomicU64,
    expected: AtomicU64,
    skipped_ticks: AtomicU64,
    failed_publishes: AtomicU64,
    stopping: AtomicBool,
}

impl Run {
    fn now_us(&self) -> u64 {
        self.clock.elapsed().as_micros() as u64
    }

    fn measured(&self, t: u64) -> bool {
        t >= self.measure_from.load(Ordering::Relaxed)
            && t < self.measure_until.load(Ordering::Relaxed)
    }

    /// Records the event in `text` (its `"t":<µs>` field).
    fn on_event(&self, text: &str) {
        let now = self.now_us();
        match sent_at(text) {
            Some(t) if self.measured(t) => {
                self.histogram.record(now.saturating_sub(t));
                self.received.fetch_add(1, Ordering::Relaxed);
            }
            Some(_) => {}
            None => {
                self.unparsed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The number after the first `"t":` in `text`.
fn sent_at(text: &str) -> Option<u64> {
    let at = text.find("\"t\":")? + 4;
    let digits: &str = &text[at..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

struct Tenant {
    slug: String,
    token: String,
}

fn read_tenants(args: &Args) -> anyhow::Result<Vec<Tenant>> {
    let text = std::fs::read_to_string(&args.tenants_file)?;
    let tenants: Vec<Tenant> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut parts = l.split_whitespace();
            Tenant {
                slug: parts.next().unwrap_or_default().to_owned(),
                token: parts.next().unwrap_or_default().to_owned(),
            }
        })
        .collect();
    anyhow::ensure!(!tenants.is_empty(), "no tenants in {:?}", args.tenants_file);
    Ok(tenants)
}

fn socket_url(args: &Args, tenant: &Tenant) -> String {
    let base = args.url.replacen("http", "ws", 1);
    match args.target {
        Target::Agenthq => format!("{base}/api/ws?token={}", tenant.token),
        Target::Socketio => format!(
            "{base}/socket.io/?EIO=4&transport=websocket&tenant={}",
            tenant.slug
        ),
    }
}

/// One client: connects, joins, then records every event until the run stops.
async fn client(
    url: String,
    run: Arc<Run>,
    gate: Arc<Semaphore>,
    connected: tokio::sync::mpsc::Sender<()>,
    mut stop: watch::Receiver<bool>,
) {
    let permit = gate.acquire_owned().await;
    let Ok((ws, _)) = tokio_tungstenite::connect_async(url.as_str()).await else {
        run.failed_connects.fetch_add(1, Ordering::Relaxed);
        let _ = connected.send(()).await;
        return;
    };
    let (mut sink, mut stream) = ws.split();
    // Joined: agenthq says `hello`; Socket.IO sends the Engine.IO open packet (`0{…}`), the
    // client asks to connect to the default namespace (`40`) and is told so (`40{…}`).
    let mut joined = false;
    while !joined {
        let Some(Ok(msg)) = stream.next().await else {
            run.failed_connects.fetch_add(1, Ordering::Relaxed);
            let _ = connected.send(()).await;
            return;
        };
        let Message::Text(text) = msg else { continue };
        match run.target {
            Target::Agenthq => joined = text.contains("\"hello\""),
            Target::Socketio if text.starts_with("0{") => {
                if sink.send(Message::text("40")).await.is_err() {
                    break;
                }
            }
            Target::Socketio => joined = text.starts_with("40"),
        }
    }
    drop(permit);
    run.connected.fetch_add(1, Ordering::Relaxed);
    let _ = connected.send(()).await;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(text))) => match run.target {
                    Target::Socketio if text.as_str() == "2" => {
                        if sink.send(Message::text("3")).await.is_err() {
                            break;
                        }
                    }
                    _ => run.on_event(&text),
                },
                Some(Ok(Message::Ping(p))) => {
                    if sink.send(Message::Pong(p)).await.is_err() {
                        break;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    if !run.stopping.load(Ordering::Relaxed) {
                        run.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    return;
                }
            }
        }
    }
    let _ = sink.close().await;
}

/// Publishes every tenant's event once per tick until `until`.
async fn publisher(
    args: Arc<Args>,
    run: Arc<Run>,
    tenants: Arc<Vec<Tenant>>,
    per_tenant: Arc<Vec<u64>>,
    until: Instant,
) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.max_inflight_publishes)
        .build()
        .unwrap_or_default();
    let endpoint = match args.target {
        Target::Agenthq => format!("{}/api/admin/realtime/test-events", args.url),
        Target::Socketio => format!("{}/publish", args.url),
    };
    let inflight = Arc::new(Semaphore::new(args.max_inflight_publishes));
    let mut tick = tokio::time::interval(Duration::from_millis(args.interval_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // `{"t":<µs>,"pad":"…"}` of `payload_bytes` in all.
    let pad = "x".repeat(args.payload_bytes);
    let frame = r#"{"t":,"pad":""}"#.len();
    while Instant::now() < until {
        tick.tick().await;
        let Ok(permit) = inflight.clone().try_acquire_owned() else {
            run.skipped_ticks.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let t = run.now_us();
        let pad = &pad[..args
            .payload_bytes
            .saturating_sub(frame + t.to_string().len())];
        let mut body = String::with_capacity(tenants.len() * (args.payload_bytes + 40) + 16);
        body.push_str(r#"{"events":["#);
        for (i, tenant) in tenants.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(&format!(
                r#"{{"tenant":"{}","data":{{"t":{t},"pad":"{pad}"}}}}"#,
                tenant.slug
            ));
        }
        body.push_str("]}");
        let measured = run.measured(t);
        let expected: u64 = per_tenant.iter().sum();
        let request = http
            .post(&endpoint)
            .header("Content-Type", "application/json")
            .header("Cookie", &args.admin_cookie)
            .header("X-CSRF-Token", &args.csrf)
            .body(body);
        let run = run.clone();
        tokio::spawn(async move {
            let ok = matches!(request.send().await, Ok(r) if r.status().is_success());
            if !ok {
                run.failed_publishes.fetch_add(1, Ordering::Relaxed);
            } else if measured {
                run.expected.fetch_add(expected, Ordering::Relaxed);
            }
            drop(permit);
        });
    }
    // Wait for the requests still in flight.
    let _ = inflight
        .acquire_many(args.max_inflight_publishes as u32)
        .await;
}

/// `(RSS now, peak RSS)` in MiB and CPU seconds (user + system) of a process.
fn process_stats(pid: &str) -> Option<(f64, f64, f64)> {
    let (rss, hwm, user, system) = process_stats_split(pid)?;
    Some((rss, hwm, user + system))
}

/// `(RSS now, peak RSS)` in MiB and CPU seconds in user and system mode of a process.
fn process_stats_split(pid: &str) -> Option<(f64, f64, f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<f64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb / 1024.0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command (which may hold spaces) start at ") ".
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the command.
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    // USER_HZ is 100 on Linux.
    Some((
        field("VmRSS:")?,
        field("VmHWM:")?,
        user / 100.0,
        system / 100.0,
    ))
}

async fn main_async(args: Args) -> anyhow::Result<()> {
    let args = Arc::new(args);
    let tenants = Arc::new(read_tenants(&args)?);
    let run = Arc::new(Run {
        target: args.target,
        clock: Instant::now(),
        measure_from: AtomicU64::new(u64::MAX),
        measure_until: AtomicU64::new(u64::MAX),
        histogram: Histogram::new(),
        received: AtomicU64::new(0),
        unparsed: AtomicU64::new(0),
        connected: AtomicU64::new(0),
        failed_connects: AtomicU64::new(0),
        dropped: AtomicU64::new(0),
        expected: AtomicU64::new(0),
        skipped_ticks: AtomicU64::new(0),
        failed_publishes: AtomicU64::new(0),
        stopping: AtomicBool::new(false),
    });
    let server = args.server_pid.to_string();
    let (rss_idle, _, _) =
        process_stats(&server).ok_or_else(|| anyhow::anyhow!("no process {server}"))?;

    // 1. Connect every client, round-robin over the tenants.
    let mut per_tenant = vec![0u64; tenants.len()];
    let gate = Arc::new(Semaphore::new(args.connect_concurrency));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (connected_tx, mut connected_rx) = tokio::sync::mpsc::channel(1024);
    let started = Instant::now();
    let mut clients = Vec::with_capacity(args.connections);
    for i in 0..args.connections {
        let tenant = &tenants[i % tenants.len()];
        per_tenant[i % tenants.len()] += 1;
        clients.push(tokio::spawn(client(
            socket_url(&args, tenant),
            run.clone(),
            gate.clone(),
            connected_tx.clone(),
            stop_rx.clone(),
        )));
    }
    drop(connected_tx);
    for _ in 0..args.connections {
        if connected_rx.recv().await.is_none() {
            break;
        }
    }
    let setup = started.elapsed();
    let connected = run.connected.load(Ordering::Relaxed);
    let failed = run.failed_connects.load(Ordering::Relaxed);
    eprintln!(
        "connected {connected} of {} in {:.2} s ({failed} failed)",
        args.connections,
        setup.as_secs_f64()
    );
    anyhow::ensure!(connected > 0, "no connection succeeded");
    let (rss_connected, _, _) = process_stats(&server).unwrap_or_default();

    // 2. Publish: warm-up, then the measured window.
    let per_tenant = Arc::new(per_tenant);
    let warmup = Duration::from_secs(args.warmup);
    let window = Duration::from_secs(args.duration);
    let publishing_until = Instant::now() + warmup + window;
    let publisher = tokio::spawn(publisher(
        args.clone(),
        run.clone(),
        tenants.clone(),
        per_tenant.clone(),
        publishing_until,
    ));
    tokio::time::sleep(warmup).await;
    let cpu_start = process_stats_split(&server).unwrap_or_default();
    let self_cpu_start = process_stats("self").map(|s| s.2).unwrap_or_default();
    let measure_start = Instant::now();
    run.measure_from.store(run.now_us(), Ordering::Relaxed);
    let mut rss_max: f64 = 0.0;
    let mut samples = tokio::time::interval(Duration::from_secs(1));
    while measure_start.elapsed() < window {
        samples.tick().await;
        if let Some((rss, _, _)) = process_stats(&server) {
            rss_max = rss_max.max(rss);
        }
    }
    run.measure_until.store(run.now_us(), Ordering::Relaxed);
    let cpu_end = process_stats_split(&server).unwrap_or_default();
    let self_cpu_end = process_stats("self").map(|s| s.2).unwrap_or_default();
    let measured_secs = measure_start.elapsed().as_secs_f64();
    let _ = publisher.await;

    // 3. Let the last events arrive (up to 10 s), then stop.
    let drain_until = Instant::now() + Duration::from_secs(10);
    while run.received.load(Ordering::Relaxed) < run.expected.load(Ordering::Relaxed)
        && Instant::now() < drain_until
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (rss_end, hwm, _) = process_stats(&server).unwrap_or_default();
    rss_max = rss_max.max(rss_end);
    run.stopping.store(true, Ordering::Relaxed);
    let _ = stop_tx.send(true);
    for c in clients {
        let _ = c.await;
    }

    let expected = run.expected.load(Ordering::Relaxed);
    let received = run.received.load(Ordering::Relaxed);
    let lost = expected.saturating_sub(received);
    // CPU seconds over the window as a percentage of one core.
    let pct = |secs: f64| (secs / measured_secs * 1000.0).round() / 10.0;
    let label = if args.label.is_empty() {
        format!("{:?}", args.target).to_lowercase()
    } else {
        args.label.clone()
    };
    let report = serde_json::json!({
        "label": label,
        "connections": connected,
        "failed_connects": failed,
        "tenants": tenants.len(),
        "interval_ms": args.interval_ms,
        "payload_bytes": args.payload_bytes,
        "measured_secs": (measured_secs * 10.0).round() / 10.0,
        "setup_secs": (setup.as_secs_f64() * 100.0).round() / 100.0,
        "setup_per_sec": (connected as f64 / setup.as_secs_f64()).round(),
        "expected": expected,
        "received": received,
        "lost": lost,
        "loss_pct": if expected > 0 { (lost as f64 * 1e4 / expected as f64).round() / 100.0 } else { 0.0 },
        "delivered_per_sec": (received as f64 / measured_secs).round(),
        "p50_ms": run.histogram.quantile_ms(0.50),
        "p90_ms": run.histogram.quantile_ms(0.90),
        "p99_ms": run.histogram.quantile_ms(0.99),
        "p999_ms": run.histogram.quantile_ms(0.999),
        "max_ms": run.histogram.quantile_ms(1.0),
        "server_rss_idle_mib": rss_idle.round(),
        "server_rss_connected_mib": rss_connected.round(),
        "server_rss_max_mib": rss_max.round(),
        "server_rss_peak_mib": hwm.round(),
        "server_cpu_pct": pct(cpu_end.2 + cpu_end.3 - cpu_start.2 - cpu_start.3),
        "server_cpu_user_pct": pct(cpu_end.2 - cpu_start.2),
        "server_cpu_system_pct": pct(cpu_end.3 - cpu_start.3),
        "client_cpu_pct": pct(self_cpu_end - self_cpu_start),
        "dropped_sockets": run.dropped.load(Ordering::Relaxed),
        "skipped_ticks": run.skipped_ticks.load(Ordering::Relaxed),
        "failed_publishes": run.failed_publishes.load(Ordering::Relaxed),
        "unparsed": run.unparsed.load(Ordering::Relaxed),
    });
    println!("{report}");
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Each connection is a file descriptor.
    if let Ok((_, hard)) = rlimit::Resource::NOFILE.get() {
        let _ = rlimit::Resource::NOFILE.set(hard, hard);
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(main_async(args))
}
