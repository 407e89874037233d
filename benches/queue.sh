#!/usr/bin/env bash
# Figures of the job queue (issue 6): no-op jobs through AgentHQ's queue (benches/queue.rs,
# synchronous=NORMAL and FULL) and, in the same run, through BullMQ on a local Redis with AOF
# `appendfsync everysec` (benches/peers/bullmq_bench.js): JOBS jobs enqueued in batches of
# BATCH then drained (enqueue, drain and end-to-end jobs/s), and enqueue → handler-start
# latency over LATENCY_JOBS sequential jobs (p50/p99). Rounds alternate the three; medians
# per label at the end.
#
#   benches/queue.sh
#   ROUNDS=5 JOBS=100000 CONCURRENCY=256 SKIP_BUILD=1 benches/queue.sh
#
# Knobs: ROUNDS (3), JOBS (100000), BATCH (1000), CONCURRENCY (256, both sides),
# LATENCY_JOBS (1000), CARGO_TARGET_DIR. Needs cargo, node + npm, redis-server
# (apt-get install -y redis-server), python3. Redis listens on 127.0.0.1 only.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
ROUNDS=${ROUNDS:-3}
JOBS=${JOBS:-100000}
BATCH=${BATCH:-1000}
CONCURRENCY=${CONCURRENCY:-256}
LATENCY_JOBS=${LATENCY_JOBS:-1000}

for tool in cargo node npm redis-server python3; do
    command -v "$tool" >/dev/null || { echo "error: $tool is required" >&2; exit 1; }
done
cd "$ROOT"
# shellcheck source=benches/common.sh
source "$ROOT/benches/common.sh"
BENCH=$(bench_executable queue)
[[ -x $BENCH ]] || { echo "error: cannot build the queue bench" >&2; exit 1; }
[[ -d benches/peers/node_modules/bullmq ]] || (cd benches/peers && npm ci --no-audit --no-fund >/dev/null)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/agenthq-bench-queue.XXXXXX")
REDIS_PID=
cleanup() {
    [[ -n $REDIS_PID ]] && kill "$REDIS_PID" 2>/dev/null && wait "$REDIS_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

REDIS_PORT=$(free_port)
redis_start() {
    rm -rf "$WORK/redis" && mkdir -p "$WORK/redis"
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$WORK/redis" --save '' \
        --appendonly yes --appendfsync everysec --daemonize no --loglevel warning \
        >"$WORK/redis.log" 2>&1 &
    REDIS_PID=$!
    for _ in $(seq 100); do
        redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "error: redis did not start" >&2; exit 1
}
redis_stop() { kill "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null || true; REDIS_PID=; }

echo "== $JOBS no-op jobs (batches of $BATCH, concurrency $CONCURRENCY), $LATENCY_JOBS sequential for latency; $(nproc) CPUs; redis $(redis-server --version | grep -o 'v=[^ ]*') =="
for round in $(seq "$ROUNDS"); do
    echo "-- round $round" >&2
    redis_start
    node benches/peers/bullmq_bench.js "$REDIS_PORT" "$JOBS" "$BATCH" "$CONCURRENCY" "$LATENCY_JOBS" \
        | tee -a "$WORK/results.jsonl"
    redis_stop
    for sync in normal full; do
        mkdir -p "$WORK/q-$round-$sync"
        "$BENCH" --synchronous "$sync" --jobs "$JOBS" --batch "$BATCH" --concurrency "$CONCURRENCY" \
            --latency-jobs "$LATENCY_JOBS" --dir "$WORK/q-$round-$sync" | tee -a "$WORK/results.jsonl"
        rm -rf "$WORK/q-$round-$sync"
    done
done

python3 - "$WORK/results.jsonl" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in runs:
    by.setdefault(r["label"], []).append(r)
keys = ["enqueue_per_sec", "drain_per_sec", "end_to_end_per_sec", "latency_p50_ms", "latency_p99_ms"]
print("\n| label (median of n) | " + " | ".join(keys) + " |")
print("|---|" + "---|" * len(keys))
med = {label: {k: statistics.median(r[k] for r in rs) for k in keys} for label, rs in by.items()}
for label, m in med.items():
    print(f"| {label} ({len(by[label])}) | " + " | ".join(f"{m[k]:g}" for k in keys) + " |")
if "bullmq" in med:
    for label in ("agenthq-normal", "agenthq-full"):
        if label in med:
            print(f"{label} / bullmq end to end: {med[label]['end_to_end_per_sec'] / med['bullmq']['end_to_end_per_sec']:.2f}x, "
                  f"p99 latency {med[label]['latency_p99_ms']} vs {med['bullmq']['latency_p99_ms']} ms")
PY
