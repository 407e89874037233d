#!/usr/bin/env bash
# Figures of the identity issue: sign-in latency (the argon2 cost) and the price of
# authentication, tenant resolution and rate limiting on a route's throughput.
#
#   benches/auth.sh                      # build release, login timing, 12 rounds x 4 s
#   ROUNDS=5 DURATION=20 benches/auth.sh
#   SKIP_BUILD=1 benches/auth.sh         # reuse the binaries already in $CARGO_TARGET_DIR
#
# Sets up, through the real binary: tenant `acme`, user ada@example.com (owner) and an API
# token for her; starts `agenthq serve` (AGENTHQ_LOG=warn) on a free 127.0.0.1 port with a
# config that raises the sign-in limit (the bench signs in 200 times from one address) and the
# free plan's quota and burst to 4e9 (every request is still counted; none is refused).
# NOTE: the burst must be huge too: GCRA tolerates early arrivals only up to burst × interval,
# and with an interval of 15 ns a worker preempted between reading the clock and updating the
# state would otherwise be refused. (With real quotas that tolerance is seconds.)
#
# A. Sign-in: LOGINS (200) sequential `POST /api/auth/login` with the right password over one
#    keep-alive connection (python http.client), each timed; p50/p90/p99. The cost is one
#    argon2id verification at the parameters in the stored hash, plus a session insert.
# B. Throughput of `GET /api/tenant` (X-Tenant: acme) with the token — authenticated (token
#    cache), tenant resolved, counted against the tenant's quota, answered with the caller's
#    role and RateLimit-* headers — against the same route anonymous (the public card: tenant
#    resolution only). wrk -t$THREADS, alternating within each round; ratio of medians and
#    per-round ratios.
#
# Knobs: ROUNDS (12), DURATION seconds per run (4), CONNS ("64"), THREADS (wrk, 2),
# WARMUP seconds (2), LOGINS (200), CARGO_TARGET_DIR.
# Needs: wrk (apt-get install wrk), curl, python3, cargo. Targets 127.0.0.1 only.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
ROUNDS=${ROUNDS:-12}
DURATION=${DURATION:-4}
CONNS=${CONNS:-"64"}
THREADS=${THREADS:-2}
WARMUP=${WARMUP:-2}
LOGINS=${LOGINS:-200}

# shellcheck source=benches/wrk_lib.sh
source "$ROOT/benches/wrk_lib.sh"

unset "${!AGENTHQ_@}"
export AGENTHQ_LOG=warn
DATA=$WORK/data
PASSWORD='bench password 1234'
CONFIG=$WORK/agenthq.toml
cat >"$CONFIG" <<'TOML'
[rate_limits]
login_per_minute = 1000000
login_burst = 1000000
[rate_limits.free]
requests_per_minute = 4000000000
burst = 4000000000
TOML

"$BIN" tenant create acme --data-dir "$DATA" >/dev/null
printf '%s\n' "$PASSWORD" | "$BIN" user create --email ada@example.com --password-stdin --data-dir "$DATA" >/dev/null
"$BIN" user add --tenant acme --email ada@example.com --role owner --data-dir "$DATA" >/dev/null
TOKEN=$("$BIN" token create --tenant acme --email ada@example.com --name bench --data-dir "$DATA")

PORT=$(free_port)
"$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$DATA" --config "$CONFIG" 2>"$WORK/agenthq.log" &
PID=$!
PIDS+=("$PID")
URL=http://127.0.0.1:$PORT/api/tenant
wait_up "$URL" "X-Tenant: acme"
curl -fsS -H 'X-Tenant: acme' -H "Authorization: Bearer $TOKEN" "$URL" | grep -q '"role":"owner"' \
    || { echo "error: the token is not accepted" >&2; exit 1; }

echo "== A. Sign-in latency: $LOGINS sequential POST /api/auth/login (right password) =="
PHC=$(python3 - "$DATA/registry.db" <<'PY'
import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute("SELECT password_hash FROM users LIMIT 1").fetchone()[0].split("$")[3])
PY
)
echo "  argon2id parameters in the stored hash: $PHC"
python3 - "$PORT" "$LOGINS" "$PASSWORD" <<'PY'
import http.client, json, statistics, sys, time
port, n, password = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
conn = http.client.HTTPConnection("127.0.0.1", port)
body = json.dumps({"email": "ada@example.com", "password": password})
times = []
for i in range(n + 5):
    t0 = time.perf_counter()
    conn.request("POST", "/api/auth/login", body, {"Content-Type": "application/json"})
    res = conn.getresponse()
    res.read()
    dt = (time.perf_counter() - t0) * 1000
    if res.status != 200:
        sys.exit(f"error: login answered {res.status}")
    if i >= 5:  # the first few warm up the connection and the process
        times.append(dt)
times.sort()
q = lambda p: times[min(len(times) - 1, int(p * len(times)))]
print(f"  login p50 {statistics.median(times):.1f} ms, p90 {q(0.90):.1f} ms, p99 {q(0.99):.1f} ms, "
      f"min {times[0]:.1f} ms, max {times[-1]:.1f} ms over {n}")
PY

echo "== B. GET /api/tenant: token + tenant + rate limit vs anonymous (tenant only) =="
echo "  $(nproc) cores shared by wrk (-t$THREADS) and the server; ${DURATION}s per run, $ROUNDS rounds"
AUTH="Authorization: Bearer $TOKEN"
for c in $CONNS; do
    run warmup "$c" "$WARMUP" "$URL" "$PID" "X-Tenant: acme"
    run warmup "$c" "$WARMUP" "$URL" "$PID" "X-Tenant: acme" "$AUTH"
done
# Odd rounds run anonymous first, even rounds authenticated first: on this shared machine the
# second run of a pair is systematically a little slower (seen in side-by-side runs of two
# identical paths), and alternating the order cancels that out of the paired ratios.
for r in $(seq "$ROUNDS"); do
    ROUND=$r
    echo "  -- round $r --"
    for c in $CONNS; do
        if (( r % 2 )); then
            run anonymous "$c" "$DURATION" "$URL" "$PID" "X-Tenant: acme"
            run authenticated "$c" "$DURATION" "$URL" "$PID" "X-Tenant: acme" "$AUTH"
        else
            run authenticated "$c" "$DURATION" "$URL" "$PID" "X-Tenant: acme" "$AUTH"
            run anonymous "$c" "$DURATION" "$URL" "$PID" "X-Tenant: acme"
        fi
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
    a, t = med("anonymous", conns, 2), med("authenticated", conns, 2)
    print(f"  c={conns:<5} anonymous {a:>9.0f} req/s (p99 {med('anonymous', conns, 3):.2f} ms) | "
          f"authenticated {t:>9.0f} req/s (p99 {med('authenticated', conns, 3):.2f} ms) | "
          f"ratio {t / a:.1%}")
    by_round = {}
    for r in rows:
        if r[1] == conns:
            by_round.setdefault(r[8], {})[r[0]] = float(r[2])
    paired = [v["authenticated"] / v["anonymous"] for v in by_round.values() if len(v) == 2]
    if paired:
        print(f"         per-round ratios {', '.join(f'{x:.1%}' for x in paired)}; "
              f"median {statistics.median(paired):.1%}")
    print(f"         server CPU per request: anonymous {med('anonymous', conns, 7):.1f} us, "
          f"authenticated {med('authenticated', conns, 7):.1f} us")
    print(f"  target ratio >= 90% at c={conns}: {'PASS' if t / a >= 0.90 else 'FAIL'}")
bad = [r for r in rows if r[5] != "0" or r[6] != "0"]
for r in bad:
    print(f"  WARNING: {r[0]} c={r[1]}: {r[5]} non-2xx responses, {r[6]} socket errors")
PY
