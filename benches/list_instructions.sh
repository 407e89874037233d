#!/usr/bin/env bash
# The task list's cost in instructions, not seconds: counts the user-space instructions the
# server executes per `GET /api/tasks?limit=50` (a full page of 50 tasks, with an API token),
# under valgrind's callgrind, and the functions they go to. Counts repeat for the same binary
# and inputs whatever else the machine is doing, so this judges a change to the list's path
# where wrk (tasks.sh) only sees the machine's noise. The kernel's share and the CPU's speed
# are not in these counts.
#
#   benches/list_instructions.sh              # build release, 300 requests
#   N=1000 SKIP_BUILD=1 benches/list_instructions.sh
#
# Seeds 2,000 tasks (Python's sqlite3, straight into the tenant's file, before the server
# starts), starts the server under callgrind with one worker, warms up with 50 requests, then
# counts N requests; every answer is checked (200, 50 tasks).
#
# Needs: valgrind (callgrind_control, callgrind_annotate), curl, python3, cargo. 127.0.0.1 only.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
for tool in valgrind callgrind_control callgrind_annotate curl python3; do
    command -v "$tool" >/dev/null || { echo "error: $tool is required (apt-get install -y valgrind)" >&2; exit 1; }
done
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET" cargo build --release --bin agenthq)
fi
BIN=$TARGET/release/agenthq
N=${N:-300}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/agenthq-bench-list.XXXXXX")
PID=
cleanup() {
    [[ -n $PID ]] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
unset "${!AGENTHQ_@}"
export AGENTHQ_LOG=warn
DATA=$WORK/data
cat >"$WORK/agenthq.toml" <<'TOML'
[rate_limits.free]
requests_per_minute = 4000000000
burst = 4000000000
TOML
"$BIN" tenant create acme --data-dir "$DATA" >/dev/null
printf 'bench password 1234\n' | "$BIN" user create --email ada@example.com --password-stdin --data-dir "$DATA" >/dev/null
"$BIN" user add --tenant acme --email ada@example.com --role owner --data-dir "$DATA" >/dev/null
TOKEN=$("$BIN" token create --tenant acme --email ada@example.com --name bench --data-dir "$DATA")
TID=$("$BIN" tenant list --json --data-dir "$DATA" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
# 2,000 tasks, one per millisecond up to a few seconds ago, over three statuses.
python3 - "$DATA/tenants/$TID.db" <<'PY'
import random, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1])
rng = random.Random(7)
start = int(time.time() * 1000) - 5000
def iso(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"
rows = [(f"0198a1b2-c3d4-7e5f-8a9b-{k:012d}",
         f"Seeded task {k}: review the quarterly figures for region {k % 17}",
         rng.choice([-1, 0, 1, 2]), rng.choice(["pending", "completed", "review"]),
         iso(start + k), iso(start + k)) for k in range(2000)]
with db:
    db.executemany("INSERT INTO tasks (id, prompt, priority, tags, status, created_at, updated_at) "
                   "VALUES (?, ?, ?, '[\"seed\"]', ?, ?, ?)", rows)
PY
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$WORK" && exec valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" \
    "$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$DATA" --config "$WORK/agenthq.toml" \
    --workers 1 >"$WORK/server.log" 2>&1) &
PID=$!
for _ in $(seq 600); do
    curl -fsS -o /dev/null "http://127.0.0.1:$PORT/healthz" 2>/dev/null && break
    sleep 0.1
done
# Sequential keep-alive requests; checks every answer.
requests() { # n
    python3 - "$PORT" "$1" "$TOKEN" <<'PY'
import http.client, sys
port, n, token = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
conn = http.client.HTTPConnection("127.0.0.1", port)
for _ in range(n):
    conn.request("GET", "/api/tasks?limit=50", headers={"Authorization": "Bearer " + token})
    res = conn.getresponse()
    body = res.read()
    if res.status != 200 or body.count(b'"prompt"') != 50:
        sys.exit(f"error: unexpected answer {res.status} {body[:200]!r}")
PY
}
requests 50
callgrind_control -z "$PID" >/dev/null 2>&1
requests "$N"
callgrind_control -d list "$PID" >/dev/null 2>&1
python3 - "$N" "$WORK"/callgrind.out.1 <<'PY'
import re, subprocess, sys
n = int(sys.argv[1])
out = subprocess.run(["callgrind_annotate", "--auto=no", "--threshold=100", sys.argv[2]], capture_output=True, text=True, check=True).stdout
total = 0; per = {}
for line in out.splitlines():
    m = re.match(r"^\s*([\d,]+)\s+\([^)]*\)\s+(.*)$", line)
    if not m: continue
    v, name = int(m.group(1).replace(",", "")), m.group(2)
    if name.startswith("PROGRAM TOTALS"): total = v
    else:
        name = re.sub(r"\s*\[[^\]]*\]$", "", name).split(":", 1)[-1]; per[name] = per.get(name, 0) + v
print(f"instructions per GET /api/tasks?limit=50 (user space, callgrind, {n} requests, one worker): {total/n:,.0f}")
# Inherited totals (thread start, the runtime's block_on) cover everything; leave them out.
print("  largest (exclusive instructions per request):")
for k, v in sorted(((k, v) for k, v in per.items() if v < 0.5 * total), key=lambda kv: -kv[1])[:20]:
    print(f"  {v/n:9,.0f}  {k[:100]}")
PY
