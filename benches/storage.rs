//! Storage benchmarks (foundation issue, figures 1 and 2). Run:
//!
//! ```text
//! CARGO_TARGET_DIR=… cargo bench --bench storage                 # everything
//! CARGO_TARGET_DIR=… cargo bench --bench storage -- provision    # figure 1 only
//! CARGO_TARGET_DIR=… cargo bench --bench storage -- migrate      # figure 2 only
//! ```
//!
//! Knobs (environment): `BENCH_PROVISION_TENANTS` (1000), `BENCH_RUNS` (3),
//! `BENCH_MIGRATE_TENANTS` (10000), `BENCH_MIGRATE_JOBS` (2 per core, like `agenthq migrate`),
//! `BENCH_JOBS_SWEEP` (set to 0 to skip the jobs sweep), `AGENTHQ_BENCH_TMPDIR` (where the data
//! dirs go; default the system temp dir).

mod common;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agenthq::data_dir::DataDir;
use agenthq::domain::{Plan, Tenant, TenantId, TenantSlug, TenantStatus};
use agenthq::store::Storage;
use agenthq::store::migrations::MigrationSet;
use agenthq::store::sqlite::SqliteTenantDatabases;
use agenthq::tenancy::migrate::{migrate_all, tenants_with_data};
use common::*;

const PROVISION_TARGET_P50_MS: f64 = 10.0;
const MIGRATE_TARGET_S: f64 = 30.0;

fn main() {
    let sections = sections();
    let runs = env_usize("BENCH_RUNS", 3);
    println!(
        "agenthq storage benchmarks — {} cores, data under {}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        std::env::var("AGENTHQ_BENCH_TMPDIR")
            .unwrap_or_else(|_| std::env::temp_dir().display().to_string())
    );
    if wants(&sections, "provision") {
        bench_provision(env_usize("BENCH_PROVISION_TENANTS", 1000), runs);
    }
    if wants(&sections, "migrate") {
        bench_migrate(env_usize("BENCH_MIGRATE_TENANTS", 10_000), runs);
    }
}

fn row(label: &str, s: &Summary) {
    println!(
        "  {label:<36} n={:<6} p50 {:>7.2} ms  p90 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  mean {:>7.2} ms",
        s.n, s.p50, s.p90, s.p99, s.max, s.mean
    );
}

// ---------------------------------------------------------------------------------------------
// Figure 1: provisioning

fn bench_provision(n: usize, runs: usize) {
    println!("\n== 1. Provisioning: TenantLifecycle::create, {n} tenants per run, {runs} runs ==");
    let sql = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/tenant/V1__domain.sql");
    let anchor = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/sqlite_anchor.py");
    let mut ours = Vec::new();
    let mut python = Vec::new();
    for run in 1..=runs {
        let dir = temp_dir("agenthq-bench-provision-");
        let s = summarize(&provision(dir.path(), n, false));
        row(&format!("run {run}: agenthq create"), &s);
        ours.push(s);
        drop(dir);
        // Side by side: the bare-file anchor right after, on the same file system.
        let dir = temp_dir("agenthq-bench-anchor-");
        match python_anchor(&anchor, &sql, n, dir.path()) {
            Some(s) => {
                row(&format!("run {run}: python sqlite3 bare file"), &s);
                python.push(s);
            }
            None => println!("  run {run}: python3 anchor skipped (python3 not available)"),
        }
    }
    let m = median_summary(&ours);
    println!("  ---- median of {runs} runs ----");
    row("agenthq create", &m);
    if !python.is_empty() {
        let p = median_summary(&python);
        row("python sqlite3 bare file (measured)", &p);
        println!("  agenthq / python-bare p50 ratio: {:.2}", m.p50 / p.p50);
    }
    println!(
        "  target p50 <= {PROVISION_TARGET_P50_MS} ms: {}   (anchors, quoted: PostgreSQL schema-per-tenant p50 ≈ 41 ms; python bare file p50 ≈ 5.2 ms)",
        verdict(m.p50 <= PROVISION_TARGET_P50_MS)
    );
    provision_breakdown(n.min(300));
}

/// Runs `benches/sqlite_anchor.py`: the same tables in a bare SQLite file per tenant.
fn python_anchor(script: &Path, sql: &Path, n: usize, dir: &Path) -> Option<Summary> {
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg("--sql")
        .arg(sql)
        .arg("--n")
        .arg(n.to_string())
        .arg("--dir")
        .arg(dir)
        .stderr(Stdio::inherit())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    // One duration in seconds per line.
    let samples: Vec<Duration> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse::<f64>().ok())
        .map(Duration::from_secs_f64)
        .collect();
    (samples.len() == n).then(|| summarize(&samples))
}

/// Where provisioning time goes: the steps of `TenantLifecycle::create`, done one by one
/// through the public storage traits, plus the raw cost of the syncs the publish step does.
fn provision_breakdown(n: usize) {
    println!(
        "\n  -- where the time goes ({n} tenants, the steps of create() called one by one) --"
    );
    let dir = temp_dir("agenthq-bench-breakdown-");
    let storage = Storage::open(&settings(dir.path())).expect("open storage");
    let (mut claim_t, mut insert_t, mut create_t, mut activate_t, mut release_t) =
        (vec![], vec![], vec![], vec![], vec![]);
    for i in 0..n {
        let now = agenthq::domain::now();
        let tenant = Tenant {
            id: TenantId::new(),
            slug: TenantSlug::parse(&slug(i)).expect("slug"),
            name: slug(i),
            status: TenantStatus::Provisioning,
            plan: Plan::Free,
            created_at: now,
            updated_at: now,
        };
        let t = Instant::now();
        let claim = storage
            .tenants
            .claim(tenant.id)
            .expect("claim")
            .expect("free");
        claim_t.push(t.elapsed());
        let t = Instant::now();
        storage.registry.insert_tenant(&tenant).expect("insert");
        insert_t.push(t.elapsed());
        let t = Instant::now();
        storage.tenants.create(&claim, &tenant).expect("create db");
        create_t.push(t.elapsed());
        let t = Instant::now();
        storage
            .registry
            .update_tenant_status(tenant.id, TenantStatus::Provisioning, TenantStatus::Active)
            .expect("activate");
        activate_t.push(t.elapsed());
        let t = Instant::now();
        drop(claim);
        release_t.push(t.elapsed());
    }
    row("claim (lock file + flock)", &summarize(&claim_t));
    row("registry insert (WAL txn)", &summarize(&insert_t));
    row("tenant db build+publish", &summarize(&create_t));
    row("registry activate (WAL txn)", &summarize(&activate_t));
    row("release claim (unlink)", &summarize(&release_t));
    let sample = storage
        .registry
        .list_tenants()
        .ok()
        .and_then(|t| t.first().cloned());
    storage.close();
    if let Some(t) = sample {
        let db = DataDir::new(dir.path()).tenant_db(&t.id);
        let size = fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
        println!("  tenant db file size: {} KiB", size / 1024);
        sync_probe(dir.path(), size as usize, n);
    }
}

/// The publish step's I/O alone: write a file of a tenant db's size, fsync it, rename it into
/// place, fsync the directory.
fn sync_probe(root: &Path, size: usize, n: usize) {
    let aside = root.join("probe-aside");
    let target = root.join("probe-live");
    fs::create_dir_all(&aside).expect("probe dir");
    fs::create_dir_all(&target).expect("probe dir");
    let data = vec![0x5au8; size];
    let (mut write_t, mut fsync_t, mut publish_t) = (vec![], vec![], vec![]);
    for i in 0..n {
        let a = aside.join(format!("{i}.db"));
        let t = Instant::now();
        fs::File::create(&a)
            .and_then(|mut f| f.write_all(&data))
            .expect("probe write");
        write_t.push(t.elapsed());
        let t = Instant::now();
        fs::File::open(&a)
            .and_then(|f| f.sync_all())
            .expect("fsync");
        fsync_t.push(t.elapsed());
        let t = Instant::now();
        fs::rename(&a, target.join(format!("{i}.db"))).expect("rename");
        fs::File::open(&target)
            .and_then(|f| f.sync_all())
            .expect("dir fsync");
        publish_t.push(t.elapsed());
    }
    row("probe: write file (no sync)", &summarize(&write_t));
    row("probe: fsync file", &summarize(&fsync_t));
    row("probe: rename + fsync dir", &summarize(&publish_t));
}

// ---------------------------------------------------------------------------------------------
// Figure 2: migration fan-out

fn bench_migrate(n: usize, runs: usize) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = env_usize("BENCH_MIGRATE_JOBS", cores * 2);
    println!("\n== 2. Migration fan-out over {n} tenant files (jobs = {jobs}, {runs} runs) ==");
    let dir = temp_dir("agenthq-bench-migrate-");
    eprint!("  provisioning {n} tenants ");
    let started = Instant::now();
    let times = provision(dir.path(), n, true);
    println!(
        "  provisioned {n} tenants in {:.1} s (setup, not a target)",
        started.elapsed().as_secs_f64()
    );
    row(&format!("create() while filling {n}"), &summarize(&times));
    let size: u64 = fs::read_dir(DataDir::new(dir.path()).tenants_dir())
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    println!(
        "  tenant files on disk: {:.0} MiB (in the page cache: runs are warm-cache)",
        size as f64 / 1048576.0
    );

    // The real binary, on tenants already at its (shipped) schema: the check-only pass. Runs
    // first: once the library adds a V2 the binary refuses the databases as too new.
    let mut binary = Vec::new();
    let mut binary_fanout = Vec::new();
    for run in 1..=runs {
        let t = Instant::now();
        let out = agenthq_command()
            .arg("migrate")
            .arg("--data-dir")
            .arg(dir.path())
            .arg("--jobs")
            .arg(jobs.to_string())
            .stderr(Stdio::inherit())
            .output()
            .expect("run agenthq migrate");
        let wall = t.elapsed().as_secs_f64();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "agenthq migrate failed: {stdout}");
        assert!(
            stdout.contains(&format!("{n} already current")),
            "unexpected migrate output: {stdout}"
        );
        let fanout = stdout
            .rsplit_once('(')
            .and_then(|(_, r)| r.strip_suffix("s)\n").or_else(|| r.strip_suffix("s)")))
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(f64::NAN);
        println!(
            "  run {run}: `agenthq migrate` (binary, all current)  wall {wall:>6.2} s  (fan-out it reports: {fanout:.1} s)"
        );
        binary.push(wall);
        binary_fanout.push(fanout);
    }

    let registry_storage = Storage::open(&settings(dir.path())).expect("open storage");
    let tenants = tenants_with_data(registry_storage.registry.list_tenants().expect("list"));
    registry_storage.close();
    drop(registry_storage);
    assert_eq!(tenants.len(), n);

    // The library, one new column per run (V2, V3, …): each run is a real one-column migration
    // of every tenant file.
    let settings = settings(dir.path());
    let maintenance = Arc::new(scheduled_thread_pool::ScheduledThreadPool::new(1));
    let mut version = 1;
    let mut extra: Vec<(String, String)> = Vec::new();
    let fanout = |jobs: usize, extra: &mut Vec<(String, String)>, version: &mut i64| {
        *version += 1;
        let column = if *version == 2 {
            "bench_note".to_owned()
        } else {
            format!("bench_note_{version}")
        };
        extra.push((
            format!("V{version}__bench_column"),
            format!("ALTER TABLE agents ADD COLUMN {column} TEXT;"),
        ));
        let pairs: Vec<(&str, &str)> = extra
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let set =
            MigrationSet::tenant().extended(MigrationSet::from_sql(&pairs).expect("migration set"));
        let dbs = SqliteTenantDatabases::new(
            DataDir::new(dir.path()),
            &settings.storage,
            maintenance.clone(),
        )
        .with_migrations(set);
        let summary = migrate_all(&dbs, &tenants, jobs, &|| {});
        assert!(
            summary.failed.is_empty(),
            "failures: {:?}",
            summary.failed.first()
        );
        assert_eq!(summary.migrated, n);
        let check = migrate_all(&dbs, &tenants, jobs, &|| {});
        assert_eq!(check.already_current, n);
        assert_has_column(dir.path(), &tenants[n / 2], &column);
        (summary.elapsed.as_secs_f64(), check.elapsed.as_secs_f64())
    };
    let mut lib = Vec::new();
    let mut lib_check = Vec::new();
    for run in 1..=runs {
        let (t, c) = fanout(jobs, &mut extra, &mut version);
        println!(
            "  run {run}: migrate_all V{version} (+1 column)  {t:>6.2} s   then check-only pass {c:>6.2} s"
        );
        lib.push(t);
        lib_check.push(c);
    }
    if std::env::var("BENCH_JOBS_SWEEP").as_deref() != Ok("0") {
        for j in [1, 2, 8] {
            let (t, _) = fanout(j, &mut extra, &mut version);
            println!("  jobs sweep: jobs={j:<2} migrate_all V{version} (+1 column)  {t:>6.2} s");
        }
    }
    let m = median(&lib);
    println!("  ---- medians of {runs} runs ----");
    println!(
        "  library migrate_all, +1 column, {n} tenants : {m:>6.2} s   target <= {MIGRATE_TARGET_S} s: {}",
        verdict(m <= MIGRATE_TARGET_S)
    );
    println!(
        "  library check-only pass (all current)       : {:>6.2} s",
        median(&lib_check)
    );
    println!(
        "  binary `agenthq migrate`, all current       : {:>6.2} s wall (its fan-out: {:.1} s)",
        median(&binary),
        median(&binary_fanout)
    );
}

fn assert_has_column(root: &Path, tenant: &Tenant, column: &str) {
    let db = DataDir::new(root).tenant_db(&tenant.id);
    let conn = rusqlite::Connection::open(db).expect("open tenant db");
    let found: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM pragma_table_info('agents') WHERE name = ?1",
            [column],
            |r| r.get(0),
        )
        .expect("table info");
    assert_eq!(found, 1, "column {column} missing after migration");
}
