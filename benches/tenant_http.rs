//! HTTP benchmarks against the real release binary (foundation issue, figures 3 and 4):
//! first request to a cold tenant vs a warm one, and server RSS with every tenant open.
//!
//! ```text
//! CARGO_TARGET_DIR=… cargo bench --bench tenant_http
//! ```
//!
//! Provisions `BENCH_HTTP_TENANTS` (1000) tenants through the library, then `BENCH_RUNS` (3)
//! times: starts `agenthq serve --listen 127.0.0.1:<free port>` (AGENTHQ_LOG=warn) on that data
//! dir, and over one keep-alive connection sends, for every tenant in turn,
//! `GET /api/tenant` with `X-Tenant: <slug>` twice: the first finds the tenant closed (its
//! SQLite pool is opened, the file checked and its schema version read), the second finds it
//! open. After the last tenant it reads VmRSS / VmHWM / threads / fds from /proc, then stops
//! the server (SIGTERM). Each run is a fresh process, so every tenant is cold again.
//!
//! "Cold" means: tenant pool not open in this process. The files themselves are in the OS
//! page cache (they were just written), so no disk read is in the figure.
//!
//! `GET /api/tenant` answers from the tenant directory and never queries the tenant database,
//! so after it a tenant's pool is open but holds no connection. A last section ("pools")
//! therefore measures, in this process through the library, what a request that does query
//! costs: `TenantDatabases::open` (cold), the first `workspace()` read (opens the pool's first
//! connection), a second read (warm), and the RSS growth with every tenant holding one idle
//! connection.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use agenthq::data_dir::DataDir;
use agenthq::store::Storage;
use common::*;

const COLD_TARGET_MS: f64 = 5.0;
const RSS_TARGET_MIB: f64 = 300.0;

fn main() {
    let sections = sections();
    let n = env_usize("BENCH_HTTP_TENANTS", 1000);
    let runs = env_usize("BENCH_RUNS", 3);
    println!(
        "agenthq HTTP benchmarks — binary {}",
        agenthq_bin().display()
    );
    let dir = temp_dir("agenthq-bench-http-");
    eprint!("  provisioning {n} tenants ");
    provision(dir.path(), n, true);
    if wants(&sections, "cold") || wants(&sections, "rss") {
        bench_server(dir.path(), n, runs);
    }
    if wants(&sections, "pools") {
        bench_pools(dir.path(), n);
    }
}

fn bench_server(data_dir: &Path, n: usize, runs: usize) {
    println!("\n== 3+4. Cold vs warm first request, and RSS, {n} tenants, {runs} server runs ==");
    let mut colds = Vec::new();
    let mut warms = Vec::new();
    let mut rss_after = Vec::new();
    for run in 1..=runs {
        let server = Server::start(data_dir);
        // Let start-up settle (first registry poll, allocator warm-up) before measuring.
        std::thread::sleep(Duration::from_millis(300));
        let rss_idle = server.proc_status("VmRSS").unwrap_or(f64::NAN);
        let mut conn = HttpConn::connect(server.addr).expect("connect");
        let mut cold = Vec::with_capacity(n);
        let mut warm = Vec::with_capacity(n);
        for i in 0..n {
            let s = slug(i);
            let headers = [("X-Tenant", s.as_str())];
            let t = Instant::now();
            let r = conn.get("/api/tenant", &headers).expect("cold request");
            cold.push(t.elapsed());
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
            let t = Instant::now();
            let r = conn.get("/api/tenant", &headers).expect("warm request");
            warm.push(t.elapsed());
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        }
        let rss = server.proc_status("VmRSS").unwrap_or(f64::NAN);
        let hwm = server.proc_status("VmHWM").unwrap_or(f64::NAN);
        let threads = server.proc_status("Threads").unwrap_or(f64::NAN);
        let fds = server.open_fds();
        let pools = open_pools(&mut conn);
        drop(conn);
        server.stop();
        let (c, w) = (summarize(&cold), summarize(&warm));
        println!(
            "  run {run}: cold p50 {:>6.3} ms p90 {:>6.3} p99 {:>6.3} max {:>7.3} | warm p50 {:>6.3} ms p99 {:>6.3} max {:>6.3}",
            c.p50, c.p90, c.p99, c.max, w.p50, w.p99, w.max
        );
        println!(
            "         RSS idle {rss_idle:.1} MiB -> {rss:.1} MiB with {pools} tenant pools open (peak {hwm:.1} MiB), {threads} threads, {fds} fds"
        );
        colds.push(c);
        warms.push(w);
        rss_after.push(rss);
    }
    let c = median_summary(&colds);
    let w = median_summary(&warms);
    let rss = median(&rss_after);
    println!("  ---- medians of {runs} runs ----");
    println!(
        "  cold first request  p50 {:>6.3} ms  p99 {:>6.3} ms   target cold <= {COLD_TARGET_MS} ms (p50): {}, (p99): {}",
        c.p50,
        c.p99,
        verdict(c.p50 <= COLD_TARGET_MS),
        verdict(c.p99 <= COLD_TARGET_MS)
    );
    println!(
        "  warm request        p50 {:>6.3} ms  p99 {:>6.3} ms",
        w.p50, w.p99
    );
    println!(
        "  RSS with {n} tenants open: {rss:.1} MiB   target <= {RSS_TARGET_MIB} MB: {}",
        verdict(rss <= RSS_TARGET_MIB)
    );
}

/// `agenthq_tenant_pools_open` from `/metrics` (served to loopback clients without a token).
fn open_pools(conn: &mut HttpConn) -> String {
    conn.get("/metrics", &[])
        .ok()
        .filter(|r| r.status == 200)
        .and_then(|r| {
            String::from_utf8_lossy(&r.body)
                .lines()
                .find(|l| l.starts_with("agenthq_tenant_pools_open "))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .unwrap_or_else(|| "?".into())
}

/// The process's own VmRSS in MiB.
fn self_rss() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// In-process, through the library: the full cold cost of a request that reads tenant data,
/// and the memory of one idle connection per open tenant.
fn bench_pools(data_dir: &Path, n: usize) {
    println!("\n== 3b+4b. Library, in this process: open + first query per tenant, {n} tenants ==");
    let storage = Storage::open(&settings(data_dir)).expect("open storage");
    let tenants = storage.registry.list_tenants().expect("list tenants");
    let rss_before = self_rss();
    let (mut open_t, mut first_t, mut warm_open_t, mut warm_t) = (vec![], vec![], vec![], vec![]);
    for t in &tenants {
        let started = Instant::now();
        let store = storage.tenants.open(t.id).expect("open");
        open_t.push(started.elapsed());
        let started = Instant::now();
        store.workspace().expect("first read");
        first_t.push(started.elapsed());
        let started = Instant::now();
        let store = storage.tenants.open(t.id).expect("open again");
        warm_open_t.push(started.elapsed());
        let started = Instant::now();
        store.workspace().expect("second read");
        warm_t.push(started.elapsed());
    }
    let rss_after = self_rss();
    let (o, f, wo, w) = (
        summarize(&open_t),
        summarize(&first_t),
        summarize(&warm_open_t),
        summarize(&warm_t),
    );
    let cold: Vec<Duration> = open_t.iter().zip(&first_t).map(|(a, b)| *a + *b).collect();
    let c = summarize(&cold);
    println!(
        "  cold open (check file, schema version)   p50 {:>6.3} ms  p99 {:>6.3} ms",
        o.p50, o.p99
    );
    println!(
        "  first query (pool's first connection)    p50 {:>6.3} ms  p99 {:>6.3} ms",
        f.p50, f.p99
    );
    println!(
        "  cold open + first query                  p50 {:>6.3} ms  p99 {:>6.3} ms   (target cold <= 5 ms: {})",
        c.p50,
        c.p99,
        verdict(c.p99 <= 5.0)
    );
    println!(
        "  warm open (cache hit + stat)             p50 {:>6.3} ms  p99 {:>6.3} ms",
        wo.p50, wo.p99
    );
    println!(
        "  warm query                               p50 {:>6.3} ms  p99 {:>6.3} ms",
        w.p50, w.p99
    );
    println!(
        "  RSS of this process: {rss_before:.1} MiB -> {rss_after:.1} MiB with {} tenants open, one idle connection each ({:.0} KiB per tenant)",
        storage.tenants.open_count(),
        (rss_after - rss_before) * 1024.0 / tenants.len().max(1) as f64
    );

    // What every request to an open tenant pays to find its store (the resolver calls
    // `open_if_cached`), in a hot loop, next to the `stat` of the tenant file it includes.
    if let Some(t) = tenants.first() {
        const LOOPS: u32 = 200_000;
        let started = Instant::now();
        for _ in 0..LOOPS {
            let store = storage.tenants.open_if_cached(t.id).expect("cached");
            std::hint::black_box(store);
        }
        let per_call = started.elapsed() / LOOPS;
        let path = DataDir::new(data_dir).tenant_db(&t.id);
        let started = Instant::now();
        for _ in 0..LOOPS {
            std::hint::black_box(std::fs::metadata(&path).expect("stat"));
        }
        let per_stat = started.elapsed() / LOOPS;
        println!(
            "  open_if_cached hit, hot loop: {:.2} us/call; of which stat(tenant file): {:.2} us",
            per_call.as_secs_f64() * 1e6,
            per_stat.as_secs_f64() * 1e6
        );
    }
    storage.close();
}
