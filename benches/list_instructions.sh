#!/usr/bin/env bash
# The task list's cost in instructions, not seconds: counts the user-space instructions the
# server executes per `GET /api/tasks?limit=50` (a full page of 50 tasks, with an API token),
# or with ROUTE=board per `GET /api/tasks/board` (three columns of 20), under valgrind's
# callgrind, and the functions they go to. Counts repeat for the same binary
# and inputs whatever else the machine is doing, so this judges a change to the list's path
# where wrk (tasks.sh) only sees the machine's noise. The kernel's share and the CPU's speed
# are not in these counts.
#
#   benches/list_instructions.sh              # build release, 300 requests
#   N=1000 SKIP_BUILD=1 benches/list_instructions.sh
#   ROUTE=board benches/list_instructions.sh
#
# Seeds 2,000 tasks (Python's sqlite3, straight into the tenant's file, before the server
# starts), starts the server under callgrind with one worker, warms up with 50 requests, then
# counts N requests; every answer is checked (200, and 50 or 60 tasks).
#
# Needs: valgrind (callgrind_control, callgrind_annotate), curl, python3, cargo. 127.0.0.1 only.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
N=${N:-300}
case ${ROUTE:-list} in
    list) ROUTE_PATH='/api/tasks?limit=50' TASKS_SENT=50 ;;
    board) ROUTE_PATH='/api/tasks/board' TASKS_SENT=60 ;;
    *) echo "error: ROUTE is list or board" >&2; exit 1 ;;
esac
# shellcheck source=benches/callgrind_lib.sh
source "$ROOT/benches/callgrind_lib.sh"
TENANT_ID=$("$BIN" tenant list --json --data-dir "$DATA" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')

# 2,000 tasks, one per millisecond up to a few seconds ago, over three statuses.
python3 - "$DATA/tenants/$TENANT_ID.db" <<'PY'
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
serve_under_callgrind

# Sequential keep-alive requests; checks every answer.
requests() { # n
    python3 - "$PORT" "$1" "$TOKEN" "$ROUTE_PATH" "$TASKS_SENT" <<'PY'
import http.client, sys
port, n, token, path, sent = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
conn = http.client.HTTPConnection("127.0.0.1", port)
for _ in range(n):
    conn.request("GET", path, headers={"Authorization": "Bearer " + token})
    res = conn.getresponse()
    body = res.read()
    if res.status != 200 or body.count(b'"prompt"') != sent:
        sys.exit(f"error: unexpected answer {res.status} {body[:200]!r}")
PY
}
requests 50
callgrind_control -z "$PID" >/dev/null 2>&1
requests "$N"
callgrind_control -d list "$PID" >/dev/null 2>&1
PYTHONPATH="$ROOT/benches" python3 - "$N" "$WORK"/callgrind.out.1 "$ROUTE_PATH" <<'PY'
import sys
from callgrind_counts import counts
n = int(sys.argv[1])
total, per = counts(sys.argv[2], n)
print(f"instructions per GET {sys.argv[3]} (user space, callgrind, {n} requests, one worker): {total:,.0f}")
# Inherited totals (thread start, the runtime's block_on) cover everything; leave them out.
print("  largest (exclusive instructions per request):")
for k, v in sorted(((k, v) for k, v in per.items() if v < 0.5 * total), key=lambda kv: -kv[1])[:20]:
    print(f"  {v:9,.0f}  {k[:100]}")
PY
