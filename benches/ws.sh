#!/usr/bin/env bash
# Figures of the realtime hub (issue 5): CONNECTIONS WebSocket connections over TENANTS tenants,
# one event per tenant every INTERVAL_MS for DURATION s, against AgentHQ and, in the same run,
# against a minimal Node Socket.io broadcast server (benches/peers/socketio_server.js) on the
# same workload. The load generator is benches/ws_load.rs (tokio-tungstenite); it prints one
# JSON line per run: delivery latency p50/p90/p99/max, losses, server RSS and CPU, connection
# set-up rate.
#
#   benches/ws.sh                                   # 10,000 connections, 100 tenants, 10 ms, 60 s
#   CONNECTIONS=2000 TENANTS=1 INTERVAL_MS=100 benches/ws.sh   # the Socket.io reference shape
#   ROUNDS=2 PEERS="agenthq socketio" SKIP_BUILD=1 benches/ws.sh
#
# Knobs: CONNECTIONS (10000), TENANTS (100), INTERVAL_MS (10), DURATION (60), WARMUP (5),
# PAYLOAD (200 bytes of event data), ROUNDS (1), PEERS ("agenthq socketio", run alternating
# in this order each round), CARGO_TARGET_DIR. Needs: cargo, node + npm (the peer's
# `npm ci` runs here), curl, python3. Everything listens on 127.0.0.1 only.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
CONNECTIONS=${CONNECTIONS:-10000}
TENANTS=${TENANTS:-100}
INTERVAL_MS=${INTERVAL_MS:-10}
DURATION=${DURATION:-60}
WARMUP=${WARMUP:-5}
PAYLOAD=${PAYLOAD:-200}
ROUNDS=${ROUNDS:-1}
PEERS=${PEERS:-"agenthq socketio"}

for tool in cargo node npm curl python3; do
    command -v "$tool" >/dev/null || { echo "error: $tool is required" >&2; exit 1; }
done

cd "$ROOT"
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    CARGO_TARGET_DIR="$TARGET" cargo build --release --bin agenthq
fi
# shellcheck source=benches/common.sh
source "$ROOT/benches/common.sh"
LOADGEN=$(bench_executable ws_load)
BIN=$TARGET/release/agenthq
[[ -x $BIN && -x $LOADGEN ]] || { echo "error: cannot build $BIN or the load generator" >&2; exit 1; }
[[ -d benches/peers/node_modules/socket.io ]] || (cd benches/peers && npm ci --no-audit --no-fund >/dev/null)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/agenthq-bench-ws.XXXXXX")
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# Every connection is a descriptor in the server and in the load generator.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true


# --- AgentHQ set-up: TENANTS tenants, one member with a token in each, a platform admin.
unset "${!AGENTHQ_@}"
export AGENTHQ_LOG=warn
DATA=$WORK/data
CONFIG=$WORK/agenthq.toml
cat >"$CONFIG" <<'TOML'
# The load generator opens 100 sockets per tenant within a second or two.
[rate_limits.free]
requests_per_minute = 4000000000
burst = 4000000000
TOML
echo "setting up $TENANTS tenants…" >&2
printf 'bench password 1234\n' | "$BIN" user create --email member@bench.test --password-stdin --data-dir "$DATA" >/dev/null
printf 'bench password 1234\n' | "$BIN" user create --email root@bench.test --platform-admin --password-stdin --data-dir "$DATA" >/dev/null
: >"$WORK/tenants"
for i in $(seq 0 $(( TENANTS - 1 ))); do
    "$BIN" tenant create "t$i" --data-dir "$DATA" >/dev/null
    "$BIN" user add --tenant "t$i" --email member@bench.test --role member --data-dir "$DATA" >/dev/null
    echo "t$i $("$BIN" token create --tenant "t$i" --email member@bench.test --name bench --data-dir "$DATA")" >>"$WORK/tenants"
done

run_agenthq() { # label
    local port pid login cookie csrf
    port=$(free_port)
    "$BIN" serve --listen "127.0.0.1:$port" --data-dir "$DATA" --config "$CONFIG" 2>"$WORK/agenthq.log" &
    pid=$!
    PIDS+=("$pid")
    wait_up "http://127.0.0.1:$port/healthz"
    login=$(curl -fsS -D "$WORK/login.headers" -H 'Content-Type: application/json' \
        -d '{"email":"root@bench.test","password":"bench password 1234"}' "http://127.0.0.1:$port/api/auth/login")
    cookie=$(grep -i '^set-cookie:' "$WORK/login.headers" | head -n1 | sed -E 's/^[Ss]et-[Cc]ookie: *([^;]*).*/\1/')
    csrf=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["csrf_token"])' "$login")
    "$LOADGEN" --target agenthq --url "http://127.0.0.1:$port" --tenants-file "$WORK/tenants" \
        --admin-cookie "$cookie" --csrf "$csrf" --server-pid "$pid" --label "$1" \
        --connections "$CONNECTIONS" --interval-ms "$INTERVAL_MS" --duration "$DURATION" \
        --warmup "$WARMUP" --payload-bytes "$PAYLOAD" | tee -a "$WORK/results.jsonl"
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
}

run_socketio() { # label
    local port pid
    port=$(free_port)
    node benches/peers/socketio_server.js 127.0.0.1 "$port" >"$WORK/socketio.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    wait_up "http://127.0.0.1:$port/healthz"
    "$LOADGEN" --target socketio --url "http://127.0.0.1:$port" --tenants-file "$WORK/tenants" \
        --server-pid "$pid" --label "$1" \
        --connections "$CONNECTIONS" --interval-ms "$INTERVAL_MS" --duration "$DURATION" \
        --warmup "$WARMUP" --payload-bytes "$PAYLOAD" | tee -a "$WORK/results.jsonl"
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
}

echo "== $CONNECTIONS connections, $TENANTS tenants, an event per tenant every ${INTERVAL_MS} ms, ${DURATION} s measured; $(nproc) CPUs =="
for round in $(seq "$ROUNDS"); do
    for peer in $PEERS; do
        echo "-- round $round: $peer" >&2
        "run_$peer" "$peer"
    done
done

python3 - "$WORK/results.jsonl" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in runs:
    by.setdefault(r["label"], []).append(r)
keys = ["connections", "setup_per_sec", "delivered_per_sec", "loss_pct", "p50_ms", "p99_ms", "max_ms",
        "server_rss_max_mib", "server_rss_peak_mib", "server_cpu_pct", "client_cpu_pct", "dropped_sockets"]
print("\n| peer | " + " | ".join(keys) + " |")
print("|---|" + "---|" * len(keys))
for label, rs in by.items():
    print(f"| {label} (median of {len(rs)}) | " + " | ".join(str(statistics.median(r[k] for r in rs)) for k in keys) + " |")
PY
