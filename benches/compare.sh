#!/usr/bin/env bash
# Side by side: two builds of agenthq (e.g. before and after a change) and bare actix-web, each
# on its own free 127.0.0.1 port with its own data dir and tenant `acme`, measured in
# alternation so the machine's drift hits them alike. Answers "did this change make the
# common path slower?" where run-to-run noise would hide it.
#
#   git worktree add /tmp/before <rev>
#   (cd /tmp/before && CARGO_TARGET_DIR=/tmp/before-target cargo build --release --bin agenthq)
#   OLD_BIN=/tmp/before-target/release/agenthq benches/compare.sh
#
# Measures `GET /healthz` and `GET /api/tenant` (X-Tenant: acme, anonymous) on both builds
# and the bare server's route; ROUNDS (6) × DURATION (4 s), wrk -t$THREADS -c$CONNS.
# Knobs: OLD_BIN (required), ROUNDS, DURATION, CONNS (64), THREADS (2), SKIP_BUILD,
# CARGO_TARGET_DIR. Needs: wrk, curl, python3.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
ROUNDS=${ROUNDS:-6}
DURATION=${DURATION:-4}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
OLD_BIN=${OLD_BIN:?set OLD_BIN to the agenthq binary to compare against}

# shellcheck source=benches/wrk_lib.sh
source "$ROOT/benches/wrk_lib.sh"

unset "${!AGENTHQ_@}"
export AGENTHQ_LOG=warn
declare -A PORT PID
start() { # name binary
    "$2" tenant create acme --data-dir "$WORK/$1" >/dev/null
    PORT[$1]=$(free_port)
    "$2" serve --listen "127.0.0.1:${PORT[$1]}" --data-dir "$WORK/$1" >/dev/null 2>"$WORK/$1.log" &
    PID[$1]=$!
    PIDS+=("${PID[$1]}")
    wait_up "http://127.0.0.1:${PORT[$1]}/api/tenant" "X-Tenant: acme"
}
start old "$OLD_BIN"
start new "$BIN"
PORT[bare]=$(free_port)
"$BARE" "127.0.0.1:${PORT[bare]}" 2>"$WORK/bare.log" &
PID[bare]=$!
PIDS+=("${PID[bare]}")
wait_up "http://127.0.0.1:${PORT[bare]}/api/tenant"

echo "== old ($OLD_BIN) vs new ($BIN) vs bare: ${DURATION}s per run, $ROUNDS rounds, c=$CONNS =="
for r in $(seq "$ROUNDS"); do
    ROUND=$r
    run bare "$CONNS" "$DURATION" "http://127.0.0.1:${PORT[bare]}/api/tenant" "${PID[bare]}" "X-Tenant: acme"
    # Alternate which build goes first: the later runs of a round tend to be slower here.
    order="old new"
    (( r % 2 )) || order="new old"
    for build in $order; do
        run "$build-healthz" "$CONNS" "$DURATION" "http://127.0.0.1:${PORT[$build]}/healthz" "${PID[$build]}"
        run "$build-tenant" "$CONNS" "$DURATION" "http://127.0.0.1:${PORT[$build]}/api/tenant" "${PID[$build]}" "X-Tenant: acme"
    done
done

echo "  ---- medians of $ROUNDS rounds ----"
python3 - "$RESULTS" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
med = lambda name, col: statistics.median(float(r[col]) for r in rows if r[0] == name)
bare = med("bare", 2)
for name in ["bare", "old-healthz", "new-healthz", "old-tenant", "new-tenant"]:
    print(f"  {name:12s} {med(name, 2):>9.0f} req/s ({med(name, 2) / bare:6.1%} of bare)  "
          f"p99 {med(name, 3):6.2f} ms  server CPU {med(name, 7):6.2f} us/req")
PY
