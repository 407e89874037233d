#!/usr/bin/env bash
# Figures of the domain API (issue 4): the task list and the kanban board on a tenant with
# 100,000 tasks, beside a bare actix-web handler serving a 50-task page; and task creation
# across 10 tenants.
#
#   benches/tasks.sh                     # build release, seed, 3 rounds x 8 s per level
#   ROUNDS=5 DURATION=10 benches/tasks.sh
#   SKIP_BUILD=1 benches/tasks.sh        # reuse the binaries in $CARGO_TARGET_DIR
#
# Sets up through the real binary 10 tenants (t0 … t9, free plan with its rate limit raised
# so the load generator is never refused), an owner and an API token in each, and one agent
# per tenant (POST /api/agents). Then:
#   C. POST /api/tasks for DURATION s, wrk -c64, round-robin over the 10 tenants' tokens (one
#      tenant per request; each tenant is its own SQLite file): created tasks per second.
#   C2. One client creating tasks one at a time: latency per creation (a lone write's commit
#      waits for no one).
#   Seeds t0 up to TASKS (100,000) tasks with Python's sqlite3 straight into its database
#      file (the FTS and board-count triggers fire as for the API; statuses spread over every
#      column; the server keeps running), then checks the list through the API.
#   A. GET /api/tasks?limit=50 (t0's token) vs the bare server's 50-task page, alternating,
#      at each connection level: req/s, p50, p99, and the ratio of medians.
#   B. GET /api/tasks/board (t0) at each level.
#
# Knobs: ROUNDS (3), DURATION seconds per run (8), CONNS ("64 1000"), THREADS (wrk, 2),
# WARMUP seconds (2), TASKS (100000), CARGO_TARGET_DIR, BIN_B (another agenthq binary: it serves
# the same data on a second port, and A/B measure it too, as list_b and board_b, right after
# the first binary in every round; e.g. BIN_B=... ARGS_B="--cpu-scheduling normal"),
# ONLY=post (stop after C: to compare
# builds' task creation, alternate runs of each, e.g.
#   for r in 1 2 3; do for b in old new; do
#     ONLY=post SKIP_BUILD=1 CARGO_TARGET_DIR=/tmp/$b benches/tasks.sh; done; done).
# Needs: wrk (apt-get install wrk), curl, python3, cargo. Targets 127.0.0.1 only.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8}
CONNS=${CONNS:-"64 1000"}
THREADS=${THREADS:-2}
WARMUP=${WARMUP:-2}
TASKS=${TASKS:-100000}

# shellcheck source=benches/wrk_lib.sh
source "$ROOT/benches/wrk_lib.sh"

unset "${!AGENTHQ_@}"
export AGENTHQ_LOG=warn
DATA=$WORK/data
CONFIG=$WORK/agenthq.toml
cat >"$CONFIG" <<'TOML'
[rate_limits.free]
requests_per_minute = 4000000000
burst = 4000000000
TOML

TOKENS=()
for i in $(seq 0 9); do
    "$BIN" tenant create "t$i" --data-dir "$DATA" >/dev/null
    printf 'bench password 1234\n' | "$BIN" user create --email "owner@t$i.test" --password-stdin --data-dir "$DATA" >/dev/null
    "$BIN" user add --tenant "t$i" --email "owner@t$i.test" --role owner --data-dir "$DATA" >/dev/null
    TOKENS+=("$("$BIN" token create --tenant "t$i" --email "owner@t$i.test" --name bench --data-dir "$DATA")")
done
T0_ID=$("$BIN" tenant list --json --data-dir "$DATA" | python3 -c 'import json,sys; print(next(t["id"] for t in json.load(sys.stdin) if t["slug"]=="t0"))')

BARE_PORT=$(free_port)
"$BARE" "127.0.0.1:$BARE_PORT" 2>"$WORK/bare.log" &
BARE_PID=$!
PIDS+=("$BARE_PID")
PORT=$(free_port)
"$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$DATA" --config "$CONFIG" 2>"$WORK/agenthq.log" &
PID=$!
PIDS+=("$PID")
URL=http://127.0.0.1:$PORT
wait_up "http://127.0.0.1:$BARE_PORT/api/tasks"
wait_up "$URL/healthz"

for i in $(seq 0 9); do
    curl -fsS -o /dev/null -H "Authorization: Bearer ${TOKENS[$i]}" -H 'Content-Type: application/json' \
        -d '{"name":"worker","display_name":"Worker","level":"ic"}' "$URL/api/agents" \
        || { echo "error: cannot create an agent in t$i" >&2; exit 1; }
done

echo "== C. POST /api/tasks over 10 tenants, wrk -t$THREADS -c64, ${DURATION}s =="
cat >"$WORK/post.lua" <<'LUA'
local tokens = {}
for t in string.gmatch(os.getenv("BENCH_TOKENS"), "[^,]+") do tokens[#tokens + 1] = t end
local n = 0
request = function()
    n = n + 1
    local headers = {
        ["Authorization"] = "Bearer " .. tokens[(n % #tokens) + 1],
        ["Content-Type"] = "application/json",
    }
    local body = '{"prompt":"Benchmark task ' .. n .. ': write the quarterly summary","tags":["bench"]}'
    return wrk.format("POST", "/api/tasks", headers, body)
end
LUA
BENCH_TOKENS=$(IFS=,; echo "${TOKENS[*]}")
export BENCH_TOKENS
ROUND=1
store_totals() { # writes and commits on tenant databases so far
    curl -fsS "$URL/metrics" | awk '/^agenthq_store_writes_total /{w = $2}
        /^agenthq_store_commits_total /{c = $2} END {print w, c}'
}
read -r w0 c0 <<<"$(store_totals)"
t0=$(cpu_ticks "$PID")
out=$(wrk -t"$THREADS" -c64 -d"${DURATION}s" --latency -s "$WORK/post.lua" "$URL/api/tasks")
t1=$(cpu_ticks "$PID")
read -r w1 c1 <<<"$(store_totals)"
echo "$out" | grep -E 'Requests/sec|Non-2xx|Socket errors|^\s+(50|99)%' | sed 's/^/  /'
python3 - "$out" "$((t1 - t0))" "$CLK_TCK" "$((c1 - c0))" "$((w1 - w0))" <<'PY'
import re, sys
out, ticks, hz, commits, writes = sys.argv[1], *map(int, sys.argv[2:])
served = int(re.search(r"(\d+) requests in", out).group(1))
print(f"  server CPU per creation {ticks / hz * 1e6 / max(served, 1):.0f} us; "
      f"writes per commit {writes / max(commits, 1):.2f} ({writes} writes, {commits} commits)")
PY
created=$(python3 - "$DATA" <<'PY'
import glob, sqlite3, sys
print(sum(sqlite3.connect(f).execute("SELECT COUNT(*) FROM tasks").fetchone()[0]
          for f in glob.glob(sys.argv[1] + "/tenants/*.db")))
PY
)
echo "  tasks in the 10 tenant databases afterwards: $created"

# A client alone, one creation at a time: its commits have no one to wait for.
echo "== C2. POST /api/tasks by one client, one request at a time (t1) =="
python3 - "$PORT" "${TOKENS[1]}" <<'PY'
import http.client, json, statistics, sys, time
conn = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]))
headers = {"Authorization": "Bearer " + sys.argv[2], "Content-Type": "application/json"}
took = []
for i in range(450):
    start = time.perf_counter()
    conn.request("POST", "/api/tasks", json.dumps({"prompt": f"Sequential task {i}"}), headers)
    response = conn.getresponse()
    response.read()
    assert response.status == 201, response.status
    took.append(time.perf_counter() - start)
took = took[50:]  # after warming up
print(f"  latency per creation: median {statistics.median(took) * 1e3:.2f} ms, "
      f"p99 {statistics.quantiles(took, n=100)[98] * 1e3:.2f} ms ({len(took)} requests)")
PY
[[ "${ONLY:-}" == post ]] && exit 0

echo "== seeding t0 up to $TASKS tasks (sqlite3, straight into the file) =="
python3 - "$DATA/tenants/$T0_ID.db" "$TASKS" <<'PY'
import os, random, sqlite3, sys, time
path, want = sys.argv[1], int(sys.argv[2])
db = sqlite3.connect(path, timeout=30)
have = db.execute("SELECT COUNT(*) FROM tasks").fetchone()[0]
agent = db.execute("SELECT id FROM agents LIMIT 1").fetchone()[0]
statuses = ["pending"] * 30 + ["blocked"] * 10 + ["running"] * 5 + ["review"] * 10 + \
           ["completed"] * 35 + ["failed"] * 5 + ["cancelled"] * 5
rng = random.Random(7)
start_ms = int(time.time() * 1000) - (want - have)   # one task per millisecond up to now
def uuid7(ms):
    r = rng.getrandbits(74)
    h = f"{ms:012x}7{(r >> 62) & 0xfff:03x}{0x8 | ((r >> 60) & 0x3):x}{r & ((1 << 60) - 1):015x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
def iso(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"
rows = []
for k in range(want - have):
    ms = start_ms + k
    rows.append((uuid7(ms), f"Seeded task {k}: review the quarterly figures for region {k % 17}",
                 rng.choice([-1, 0, 0, 1, 2]), rng.choice(statuses), agent, iso(ms), iso(ms)))
with db:
    db.executemany("INSERT INTO tasks (id, prompt, priority, tags, status, assignee_id, created_at, updated_at) "
                   "VALUES (?, ?, ?, '[\"seed\"]', ?, ?, ?, ?)", rows)
print(f"  t0 has {db.execute('SELECT COUNT(*) FROM tasks').fetchone()[0]} tasks")
PY
LIST_URL="$URL/api/tasks?limit=50"
AUTH="Authorization: Bearer ${TOKENS[0]}"
curl -fsS -H "$AUTH" "$LIST_URL" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert len(d["items"]) == 50 and d["next_cursor"], "a full page with a cursor"
page, item = json.dumps(d, separators=(",", ":")), json.dumps(d["items"][0], separators=(",", ":"))
print(f"  one page: {len(page)} bytes, {len(item)} per task")'
curl -fsS "http://127.0.0.1:$BARE_PORT/api/tasks" | python3 -c '
import json, sys
d = json.load(sys.stdin)
page, item = json.dumps(d, separators=(",", ":")), json.dumps(d["items"][0], separators=(",", ":"))
print(f"  bare page: {len(page)} bytes, {len(item)} per task")'

if [[ -n "${BIN_B:-}" ]]; then
    PORT_B=$(free_port)
    # shellcheck disable=SC2086 # ARGS_B is a list of arguments
    "$BIN_B" serve --listen "127.0.0.1:$PORT_B" --data-dir "$DATA" --config "$CONFIG" \
        ${ARGS_B:-} 2>"$WORK/agenthq-b.log" &
    PID_B=$!
    PIDS+=("$PID_B")
    URL_B=http://127.0.0.1:$PORT_B
    wait_up "$URL_B/healthz"
fi
run_b() { # name conns url-path: the same run against BIN_B's server, when there is one
    [[ -n "${BIN_B:-}" ]] && run "$1" "$2" "$DURATION" "$URL_B$3" "$PID_B" "$AUTH"
    return 0
}

echo "== A/B. GET /api/tasks?limit=50 and /api/tasks/board on $TASKS tasks vs bare =="
echo "  $(nproc) cores shared by wrk (-t$THREADS) and the server; ${DURATION}s per run, $ROUNDS rounds"
BARE_URL=http://127.0.0.1:$BARE_PORT/api/tasks
for c in $CONNS; do
    run warmup "$c" "$WARMUP" "$BARE_URL" "$BARE_PID"
    run warmup "$c" "$WARMUP" "$LIST_URL" "$PID" "$AUTH"
    if [[ -n "${BIN_B:-}" ]]; then
        run warmup "$c" "$WARMUP" "$URL_B/api/tasks?limit=50" "$PID_B" "$AUTH"
    fi
done
for r in $(seq "$ROUNDS"); do
    ROUND=$r
    echo "  -- round $r --"
    for c in $CONNS; do
        if (( r % 2 )); then
            run bare "$c" "$DURATION" "$BARE_URL" "$BARE_PID"
            run list "$c" "$DURATION" "$LIST_URL" "$PID" "$AUTH"
            run_b list_b "$c" "/api/tasks?limit=50"
        else
            run list "$c" "$DURATION" "$LIST_URL" "$PID" "$AUTH"
            run_b list_b "$c" "/api/tasks?limit=50"
            run bare "$c" "$DURATION" "$BARE_URL" "$BARE_PID"
        fi
        run board "$c" "$DURATION" "$URL/api/tasks/board" "$PID" "$AUTH"
        run_b board_b "$c" "/api/tasks/board"
    done
done
python3 - "$RESULTS" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
print("  ---- medians ----")
by = {}
for name, conns, rps, p99, p50, non2xx, errs, cpu, rnd in rows:
    by.setdefault((name, conns), []).append((float(rps), float(p99), float(p50), int(non2xx), int(errs)))
for conns in sorted({c for _, c in by}, key=int):
    line = []
    for name in ("bare", "list", "board", "list_b", "board_b"):
        runs = by.get((name, conns), [])
        if not runs:
            continue
        rps = statistics.median(r[0] for r in runs)
        p99 = statistics.median(r[1] for r in runs)
        bad = sum(r[3] + r[4] for r in runs)
        line.append(f"{name} {rps:,.0f} req/s p99 {p99:.1f} ms{' (' + str(bad) + ' non-2xx/errors)' if bad else ''}")
    ratio = statistics.median(r[0] for r in by[("list", conns)]) / statistics.median(r[0] for r in by[("bare", conns)])
    print(f"  c={conns}: " + " | ".join(line) + f" | list/bare {ratio:.1%}")
PY
