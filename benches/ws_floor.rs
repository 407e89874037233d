//! The floor under issue 5's workload: what this machine's loopback TCP alone can deliver.
//!
//! No WebSocket library, no JSON, no hub, no authentication. A writer process (the server's
//! stand-in, two runtime threads) holds N accepted loopback connections and, every
//! `interval`, writes one ready-made 204-byte frame (a WebSocket text frame header and 200
//! bytes of payload, the size of the realtime bench's events) to each of them. A reader
//! process (the load generator's stand-in, two runtime threads; a child of the writer) holds
//! the other ends, counts the frames and times them (send time in the payload, the system
//! clock both processes share). Two processes, as the server and `ws_load` are in
//! `benches/ws.sh`, sharing the machine's cores the same way.
//!
//! Whatever this floor cannot deliver at a latency, no server written on the same sockets
//! can: it bounds `ws.sh`'s figures on the machine that runs it.
//!
//! `cargo bench --bench ws_floor -- --connections 10000 --interval-ms 10 --duration 20`
//! (`benches/ws_floor.sh` sweeps the interval).

use std::io::BufRead;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

#[path = "common/latency.rs"]
mod latency;
use latency::Histogram;

#[derive(Parser, Debug)]
struct Args {
    /// Loopback connections held.
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// Milliseconds between two frames to one connection.
    #[arg(long, default_value_t = 10)]
    interval_ms: u64,
    /// Seconds measured, after one second of warm-up.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// Frames held back and written together, one write per connection every this many
    /// intervals (1: each frame as it is made). Trades latency for fewer system calls.
    #[arg(long, default_value_t = 1)]
    coalesce: usize,
    /// Internal: run as the reading process, connecting to this address.
    #[arg(long, hide = true)]
    reader_of: Option<SocketAddr>,
}

/// A WebSocket text frame of 200 payload bytes: `0x81`, `126`, a 16-bit length, the payload.
/// The payload starts with the send time (µs since the epoch) and a byte that is 1 when the
/// frame was sent inside the measured window.
const FRAME: usize = 204;
const HEADER: usize = 4;

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn frame(sent_us: u64, measured: bool) -> [u8; FRAME] {
    let mut f = [b'x'; FRAME];
    f[0] = 0x81;
    f[1] = 126;
    f[2..HEADER].copy_from_slice(&((FRAME - HEADER) as u16).to_be_bytes());
    f[HEADER..HEADER + 8].copy_from_slice(&sent_us.to_le_bytes());
    f[HEADER + 8] = u8::from(measured);
    f
}

fn runtime(name: &str) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        .enable_all()
        .build()
}

/// What the reader saw of the measured frames.
struct Received {
    count: AtomicU64,
    latency: Histogram,
}

/// Reads frames until the connection closes, recording each measured one's latency.
async fn read_frames(mut stream: TcpStream, seen: Arc<Received>) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut have = 0;
    loop {
        let n = match stream.read(&mut buf[have..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        have += n;
        let now = now_us();
        let mut at = 0;
        while have - at >= FRAME {
            let mut ts = [0u8; 8];
            ts.copy_from_slice(&buf[at + HEADER..at + HEADER + 8]);
            if buf[at + HEADER + 8] == 1 {
                let sent = u64::from_le_bytes(ts);
                seen.count.fetch_add(1, Ordering::Relaxed);
                seen.latency.record(now.saturating_sub(sent));
            }
            at += FRAME;
        }
        buf.copy_within(at..have, 0);
        have -= at;
    }
}

/// The reading process: connects `connections` sockets to `addr`, reads until the writer
/// closes them all, then prints `received p50_ms p99_ms` on one line.
fn reader(addr: SocketAddr, connections: usize) -> Result<(), Box<dyn std::error::Error>> {
    let rt = runtime("floor-reader")?;
    let seen = Arc::new(Received {
        count: AtomicU64::new(0),
        latency: Histogram::new(),
    });
    rt.block_on(async {
        let mut tasks = Vec::with_capacity(connections);
        for _ in 0..connections {
            let stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            tasks.push(tokio::spawn(read_frames(stream, seen.clone())));
        }
        for t in tasks {
            let _ = t.await;
        }
        Ok::<_, std::io::Error>(())
    })?;
    println!(
        "{} {:.2} {:.2}",
        seen.count.load(Ordering::Relaxed),
        seen.latency.quantile_ms(0.50),
        seen.latency.quantile_ms(0.99)
    );
    Ok(())
}

struct Sent {
    offered: AtomicU64,
    /// Frames not written because the connection's send buffer was full (its reader behind),
    /// as a hub drops a slow consumer's event.
    refused: AtomicU64,
    measure: (u64, u64),
    stopping: AtomicBool,
}

/// Every `interval`, makes one frame for each of `streams`, and every `coalesce` frames
/// writes them, never waiting on a connection.
async fn write_frames(
    streams: Vec<TcpStream>,
    interval: Duration,
    coalesce: usize,
    sent: Arc<Sent>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut pending = Vec::with_capacity(FRAME * coalesce);
    let mut measured_frames = 0;
    while !sent.stopping.load(Ordering::Relaxed) {
        tick.tick().await;
        let at = now_us();
        let measured = (sent.measure.0..sent.measure.1).contains(&at);
        pending.extend_from_slice(&frame(at, measured));
        measured_frames += u64::from(measured);
        if pending.len() < FRAME * coalesce {
            continue;
        }
        let mut refused = 0;
        for s in &streams {
            if !matches!(s.try_write(&pending), Ok(n) if n == pending.len()) {
                refused += 1;
            }
        }
        let n = streams.len() as u64;
        sent.offered
            .fetch_add(n * measured_frames, Ordering::Relaxed);
        sent.refused
            .fetch_add(refused * measured_frames, Ordering::Relaxed);
        pending.clear();
        measured_frames = 0;
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if args.coalesce == 0 {
        return Err("--coalesce must be at least 1".into());
    }
    if let Some(addr) = args.reader_of {
        return reader(addr, args.connections);
    }
    let rt = runtime("floor-writer")?;
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    let mut child = Command::new(std::env::current_exe()?)
        .args(["--reader-of", &addr.to_string()])
        .args(["--connections", &args.connections.to_string()])
        .stdout(Stdio::piped())
        .spawn()?;

    let started = std::time::Instant::now();
    let streams = rt.block_on(async {
        let mut streams = Vec::with_capacity(args.connections);
        for _ in 0..args.connections {
            let (s, _) = listener.accept().await?;
            s.set_nodelay(true)?;
            streams.push(s);
        }
        Ok::<_, std::io::Error>(streams)
    })?;
    let setup = started.elapsed();

    let from = now_us() + 1_000_000;
    let sent = Arc::new(Sent {
        offered: AtomicU64::new(0),
        refused: AtomicU64::new(0),
        measure: (from, from + args.duration * 1_000_000),
        stopping: AtomicBool::new(false),
    });
    let interval = Duration::from_millis(args.interval_ms);
    let mut first = streams;
    let second = first.split_off(first.len() / 2);
    let writers = [
        rt.spawn(write_frames(first, interval, args.coalesce, sent.clone())),
        rt.spawn(write_frames(second, interval, args.coalesce, sent.clone())),
    ];
    let tail = interval * (args.coalesce as u32 + 1);
    std::thread::sleep(Duration::from_secs(1 + args.duration) + tail);
    sent.stopping.store(true, Ordering::Relaxed);
    // Dropping the streams (when the writers end) closes them: the reader drains what is in
    // flight, then reports.
    rt.block_on(async {
        for w in writers {
            let _ = w.await;
        }
    });
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        std::io::BufReader::new(out).read_line(&mut line)?;
    }
    child.wait()?;
    let mut fields = line.split_whitespace();
    let mut next = || fields.next().and_then(|f| f.parse::<f64>().ok());
    let (received, p50, p99) = match (next(), next(), next()) {
        (Some(r), Some(a), Some(b)) => (r, a, b),
        _ => return Err(format!("the reader reported {line:?}").into()),
    };
    let offered = sent.offered.load(Ordering::Relaxed) as f64;
    let refused = sent.refused.load(Ordering::Relaxed) as f64;
    let secs = args.duration as f64;
    println!(
        "floor connections={} interval_ms={} coalesce={} offered/s={:.0} delivered/s={:.0} \
         refused/s={:.0} p50_ms={:.2} p99_ms={:.2} setup/s={:.0}",
        args.connections,
        args.interval_ms,
        args.coalesce,
        offered / secs,
        received / secs,
        refused / secs,
        p50,
        p99,
        args.connections as f64 / setup.as_secs_f64(),
    );
    Ok(())
}
