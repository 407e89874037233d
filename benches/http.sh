#!/usr/bin/env bash
# Throughput of the tenant-resolved route against a bare actix-web handler (figure 5).
#
#   benches/http.sh                      # build release, 3 rounds x 10 s per server and level
#   ROUNDS=5 DURATION=20 benches/http.sh
#   SKIP_BUILD=1 benches/http.sh         # reuse the binaries already in $CARGO_TARGET_DIR
#
# Starts `agenthq serve` (AGENTHQ_LOG=warn: no access logs) with one tenant `acme`, and
# examples/bare_actix, each on a free 127.0.0.1 port; then, per round and per connection
# level, runs wrk against bare and agenthq alternately (plus agenthq's tenant-less /healthz,
# which separates the cost of the app's middleware from the cost of tenant resolution).
# Prints every run and the medians. Everything listens on and targets 127.0.0.1 only.
#
# Knobs: ROUNDS (3), DURATION seconds per run (10), CONNS ("64 1000"), THREADS (wrk, 2),
# WARMUP seconds (2), HEALTHZ (1: also measure /healthz; 0: skip), CARGO_TARGET_DIR.
# Needs: wrk (apt-get install wrk), curl, python3 (free ports and medians), cargo.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONNS=${CONNS:-"64 1000"}
THREADS=${THREADS:-2}
WARMUP=${WARMUP:-2}
HEALTHZ=${HEALTHZ:-1}

# shellcheck source=benches/wrk_lib.sh
source "$ROOT/benches/wrk_lib.sh"

unset "${!AGENTHQ_@}"
export AGENTHQ_LOG=warn
DATA=$WORK/data
"$BIN" tenant create acme --data-dir "$DATA" >/dev/null

BARE_PORT=$(free_port)
"$BARE" "127.0.0.1:$BARE_PORT" 2>"$WORK/bare.log" &
BARE_PID=$!
PIDS+=("$BARE_PID")
AHQ_PORT=$(free_port)
"$BIN" serve --listen "127.0.0.1:$AHQ_PORT" --data-dir "$DATA" 2>"$WORK/agenthq.log" &
AHQ_PID=$!
PIDS+=("$AHQ_PID")

BARE_URL=http://127.0.0.1:$BARE_PORT/api/tenant
AHQ_URL=http://127.0.0.1:$AHQ_PORT/api/tenant
HEALTHZ_URL=http://127.0.0.1:$AHQ_PORT/healthz
wait_up "$BARE_URL"
wait_up "$AHQ_URL" "X-Tenant: acme"
curl -fsS -H 'X-Tenant: acme' "$AHQ_URL" | grep -q '"slug":"acme"' || { echo "error: agenthq does not serve acme" >&2; exit 1; }

echo "== 5. Throughput: GET /api/tenant (X-Tenant: acme) vs bare actix-web =="
echo "  $(nproc) cores shared by wrk (-t$THREADS) and the server under test; ${DURATION}s per run, $ROUNDS rounds"
for c in $CONNS; do
    run warmup "$c" "$WARMUP" "$BARE_URL" "$BARE_PID" "X-Tenant: acme"
    run warmup "$c" "$WARMUP" "$AHQ_URL" "$AHQ_PID" "X-Tenant: acme"
done
for r in $(seq "$ROUNDS"); do
    ROUND=$r
    echo "  -- round $r --"
    for c in $CONNS; do
        run bare "$c" "$DURATION" "$BARE_URL" "$BARE_PID" "X-Tenant: acme"
        run agenthq "$c" "$DURATION" "$AHQ_URL" "$AHQ_PID" "X-Tenant: acme"
        if [[ $HEALTHZ == 1 ]]; then run agenthq-healthz "$c" "$DURATION" "$HEALTHZ_URL" "$AHQ_PID" "X-Tenant: acme"; fi
    done
done

echo "  ---- medians of $ROUNDS rounds ----"
python3 - "$RESULTS" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
def med(name, conns, col):
    v = [float(r[col]) for r in rows if r[0] == name and r[1] == conns]
    return statistics.median(v) if v else float("nan")
for conns in sorted({r[1] for r in rows}, key=int):
    b, a = med("bare", conns, 2), med("agenthq", conns, 2)
    h = med("agenthq-healthz", conns, 2)
    print(f"  c={conns:<5} bare {b:>9.0f} req/s (p99 {med('bare', conns, 3):.2f} ms) | "
          f"agenthq /api/tenant {a:>9.0f} req/s (p99 {med('agenthq', conns, 3):.2f} ms, "
          f"p50 {med('agenthq', conns, 4):.2f} ms) | ratio {a / b:.1%}"
          + (f" | agenthq /healthz {h:.0f} req/s ({h / b:.1%})" if h == h else ""))
    # Bare and agenthq run back to back in each round: the per-round ratio is less exposed to
    # the machine's drift (other tenants of the host, CPU steal) than the ratio of medians.
    by_round = {}
    for r in rows:
        if r[1] == conns and r[0] in ("bare", "agenthq"):
            by_round.setdefault(r[8], {})[r[0]] = float(r[2])
    paired = [v["agenthq"] / v["bare"] for v in by_round.values() if len(v) == 2]
    if paired:
        print(f"         per-round ratios {', '.join(f'{x:.1%}' for x in paired)}; "
              f"median {statistics.median(paired):.1%}")
    cpu = lambda n: med(n, conns, 7)
    print(f"         server CPU per request: bare {cpu('bare'):.1f} us, agenthq /api/tenant "
          f"{cpu('agenthq'):.1f} us" + (f", agenthq /healthz {cpu('agenthq-healthz'):.1f} us"
                                        if h == h else ""))
    if conns == "64":
        p99 = med("agenthq", conns, 3)
        print(f"  target ratio >= 70% at c=64: {'PASS' if a / b >= 0.70 else 'FAIL'}; "
              f"target p99 <= 10 ms at c=64: {'PASS' if p99 <= 10 else 'FAIL'}")
    elif conns == "1000":
        print(f"  target ratio >= 70% at c=1000: {'PASS' if a / b >= 0.70 else 'FAIL'}")
bad = [r for r in rows if r[5] != "0" or r[6] != "0"]
for r in bad:
    print(f"  WARNING: {r[0]} c={r[1]}: {r[5]} non-2xx responses, {r[6]} socket errors")
PY
