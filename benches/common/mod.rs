//! Helpers shared by the benchmark binaries (`benches/*.rs`, all `harness = false`):
//! statistics, provisioning through the library, a minimal keep-alive HTTP/1.1 client, and a
//! guard that runs the real `agenthq` binary and always stops it.
//!
//! Not every bench uses every helper.
#![allow(dead_code)]

use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agenthq::config::{Overrides, Settings};
use agenthq::domain::{Plan, TenantSlug};
use agenthq::store::Storage;
use agenthq::tenancy::{NewTenant, TenantLifecycle};

// ---------------------------------------------------------------------------------------------
// Statistics

/// Percentiles of a set of durations (nearest-rank), in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub n: usize,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn summarize(samples: &[Duration]) -> Summary {
    let mut v: Vec<f64> = samples.iter().copied().map(ms).collect();
    v.sort_by(f64::total_cmp);
    Summary {
        n: v.len(),
        p50: percentile(&v, 50.0),
        p90: percentile(&v, 90.0),
        p99: percentile(&v, 99.0),
        max: v.last().copied().unwrap_or(f64::NAN),
        mean: v.iter().sum::<f64>() / v.len().max(1) as f64,
    }
}

pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The per-field median of several summaries (each field independently).
pub fn median_summary(runs: &[Summary]) -> Summary {
    let f = |g: fn(&Summary) -> f64| median(&runs.iter().map(g).collect::<Vec<_>>());
    Summary {
        n: runs.iter().map(|s| s.n).sum(),
        p50: f(|s| s.p50),
        p90: f(|s| s.p90),
        p99: f(|s| s.p99),
        max: f(|s| s.max),
        mean: f(|s| s.mean),
    }
}

pub fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "FAIL" }
}

// ---------------------------------------------------------------------------------------------
// Environment

/// A positive integer from the environment, or `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&v| v > 0)
        .unwrap_or(default)
}

/// The sections named on the command line (`cargo bench --bench x -- a b`), without the flags
/// cargo adds (`--bench`). Empty means "all".
pub fn sections() -> Vec<String> {
    std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect()
}

pub fn wants(sections: &[String], name: &str) -> bool {
    sections.is_empty() || sections.iter().any(|s| s == name || s == "all")
}

/// A fresh temporary directory, under `$AGENTHQ_BENCH_TMPDIR` when set (to bench another
/// file system), else the system temp dir. Removed when dropped.
pub fn temp_dir(prefix: &str) -> tempfile::TempDir {
    let mut b = tempfile::Builder::new();
    b.prefix(prefix);
    match std::env::var_os("AGENTHQ_BENCH_TMPDIR") {
        Some(base) => b.tempdir_in(base),
        None => b.tempdir(),
    }
    .expect("cannot create a temporary directory")
}

/// The release `agenthq` binary cargo built for this bench (override: `$AGENTHQ_BIN`).
pub fn agenthq_bin() -> PathBuf {
    std::env::var_os("AGENTHQ_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_agenthq")))
}

/// A `Command` for the binary with every `AGENTHQ_*` variable of the caller removed (so a
/// developer's own config cannot change what is measured) and logs at `warn`.
pub fn agenthq_command() -> Command {
    let mut cmd = Command::new(agenthq_bin());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("AGENTHQ_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("AGENTHQ_LOG", "warn").stdin(Stdio::null());
    cmd
}

// ---------------------------------------------------------------------------------------------
// Provisioning through the library

pub fn settings(data_dir: &Path) -> Settings {
    Settings::load(Overrides {
        data_dir: Some(data_dir.to_owned()),
        ..Overrides::default()
    })
    .expect("bench settings are valid")
}

pub fn slug(i: usize) -> String {
    format!("t{i:06}")
}

/// Creates tenants `t000000…` in `data_dir` through `TenantLifecycle::create`, timing each
/// call. Prints a progress dot every `n/20` tenants when `progress` is set.
pub fn provision(data_dir: &Path, n: usize, progress: bool) -> Vec<Duration> {
    let settings = settings(data_dir);
    let storage = Storage::open(&settings).expect("open storage");
    let lifecycle = TenantLifecycle::new(storage.clone());
    let mut times = Vec::with_capacity(n);
    let step = (n / 20).max(1);
    for i in 0..n {
        let new = NewTenant {
            slug: TenantSlug::parse(&slug(i)).expect("valid slug"),
            name: None,
            plan: Plan::Free,
        };
        let t0 = Instant::now();
        lifecycle.create(new).expect("create tenant");
        times.push(t0.elapsed());
        if progress && (i + 1) % step == 0 {
            eprint!(".");
        }
    }
    if progress {
        eprintln!();
    }
    storage.close();
    times
}

// ---------------------------------------------------------------------------------------------
// HTTP

/// A free loopback port (bound and released; the server binds it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("cannot find a free loopback port")
}

/// One keep-alive HTTP/1.1 connection, just enough of a client to time requests without a
/// client library's own pooling and buffering in the way.
pub struct HttpConn {
    stream: TcpStream,
    buf: Vec<u8>,
}

pub struct HttpResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

impl HttpConn {
    pub fn connect(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Self {
            stream,
            buf: Vec::with_capacity(8192),
        })
    }

    pub fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> io::Result<HttpResponse> {
        let mut req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        self.stream.write_all(req.as_bytes())?;
        self.read_response()
    }

    fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            ));
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    fn read_response(&mut self) -> io::Result<HttpResponse> {
        let head_end = loop {
            if let Some(pos) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break pos + 4;
            }
            self.fill()?;
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, format!("{m}: {head}"));
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("no status"))?;
        let mut len = None;
        for line in head.lines().skip(1) {
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse::<usize>().ok();
                } else if k.eq_ignore_ascii_case("transfer-encoding") {
                    return Err(bad("chunked responses are not supported"));
                }
            }
        }
        let len = len.ok_or_else(|| bad("no content-length"))?;
        while self.buf.len() < head_end + len {
            self.fill()?;
        }
        let body = self.buf[head_end..head_end + len].to_vec();
        self.buf.drain(..head_end + len);
        Ok(HttpResponse { status, body })
    }
}

/// The real `agenthq serve`, stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Server {
    child: Option<Child>,
    pub addr: SocketAddr,
}

impl Server {
    pub fn start(data_dir: &Path) -> Self {
        let port = free_port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let child = agenthq_command()
            .arg("serve")
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--data-dir")
            .arg(data_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot start agenthq serve");
        let mut server = Self {
            child: Some(child),
            addr,
        };
        server.wait_healthy(Duration::from_secs(60));
        server
    }

    fn wait_healthy(&mut self, limit: Duration) {
        let started = Instant::now();
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("agenthq serve exited during start-up: {status}");
            }
            if let Ok(mut c) = HttpConn::connect(self.addr)
                && c.get("/healthz", &[]).is_ok_and(|r| r.status == 200)
            {
                return;
            }
            assert!(
                started.elapsed() < limit,
                "agenthq serve not healthy after {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("server running")
    }

    /// A `kB` field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`, …) in MiB, or a plain count
    /// (`Threads`).
    pub fn proc_status(&self, key: &str) -> Option<f64> {
        let text = fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let line = text.lines().find(|l| l.starts_with(&format!("{key}:")))?;
        let mut parts = line.split_whitespace().skip(1);
        let value: f64 = parts.next()?.parse().ok()?;
        Some(if parts.next() == Some("kB") {
            value / 1024.0
        } else {
            value
        })
    }

    pub fn open_fds(&self) -> usize {
        fs::read_dir(format!("/proc/{}/fd", self.pid())).map_or(0, |d| d.count())
    }

    /// Graceful stop: SIGTERM, wait up to 30 s, then SIGKILL.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // std has no way to send SIGTERM without `unsafe`; the `kill` utility does it.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}
