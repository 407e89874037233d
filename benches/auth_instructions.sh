#!/usr/bin/env bash
# The price of authentication in instructions, not seconds: counts the user-space instructions
# the server executes per `GET /api/tenant`, anonymous (tenant resolution only) and with an API
# token (token cache, membership, rate limit, RateLimit-* headers), under valgrind's callgrind.
# Instruction counts repeat exactly for the same binary and inputs whatever else the machine
# is doing, so this shows what a change to the authenticated path costs where wrk (auth.sh)
# only sees noise. It does not replace auth.sh: the kernel's share and the CPU's speed are not
# in these counts.
#
#   benches/auth_instructions.sh              # build release, 2,000 requests each way
#   N=5000 SKIP_BUILD=1 benches/auth_instructions.sh
#
# NOTE: valgrind does not emulate the SHA extensions, so under it `sha2` takes its software
# path (about 3,400 instructions per 64-byte block); on a CPU with SHA-NI (`grep sha_ni
# /proc/cpuinfo`) the token digest costs a small fraction of that. The report shows that
# function separately so it can be discounted.
#
# Needs: valgrind (callgrind_control, callgrind_annotate), curl, python3, cargo. 127.0.0.1 only.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
N=${N:-2000}
for tool in valgrind callgrind_control callgrind_annotate curl python3; do
    command -v "$tool" >/dev/null || { echo "error: $tool is required (apt-get install -y valgrind)" >&2; exit 1; }
done
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET" cargo build --release --bin agenthq)
fi
BIN=$TARGET/release/agenthq

WORK=$(mktemp -d "${TMPDIR:-/tmp}/agenthq-bench-instr.XXXXXX")
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
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

# One worker thread, so every request runs on the thread callgrind follows the same way.
(cd "$WORK" && exec valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" \
    "$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$DATA" --config "$WORK/agenthq.toml" \
    --workers 1 >"$WORK/server.log" 2>&1) &
PID=$!
for _ in $(seq 600); do
    curl -fsS -o /dev/null -H 'X-Tenant: acme' "http://127.0.0.1:$PORT/api/tenant" 2>/dev/null && break
    sleep 0.1
done

# Sequential keep-alive requests; checks every answer.
requests() { # n [token]
    python3 - "$PORT" "$@" <<'PY'
import http.client, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
headers = {"X-Tenant": "acme"}
if len(sys.argv) > 3:
    headers["Authorization"] = "Bearer " + sys.argv[3]
conn = http.client.HTTPConnection("127.0.0.1", port)
for _ in range(n):
    conn.request("GET", "/api/tenant", headers=headers)
    res = conn.getresponse()
    body = res.read()
    if res.status != 200 or (len(sys.argv) > 3) != (b'"role"' in body):
        sys.exit(f"error: unexpected answer {res.status} {body[:200]!r}")
PY
}

# Warm both paths (token cache, tenant pool, lazily built tables), then count each.
requests 200
requests 200 "$TOKEN"
callgrind_control -z "$PID" >/dev/null 2>&1
requests "$N"
callgrind_control -d anonymous "$PID" >/dev/null 2>&1
requests "$N" "$TOKEN"
callgrind_control -d authenticated "$PID" >/dev/null 2>&1

# Per-function exclusive counts of each dump, per request.
python3 - "$N" "$WORK"/callgrind.out.1 "$WORK"/callgrind.out.2 <<'PY'
import re, subprocess, sys
n = int(sys.argv[1])
def counts(path):
    out = subprocess.run(["callgrind_annotate", "--auto=no", "--threshold=100", path],
                         capture_output=True, text=True, check=True).stdout
    total, per_fn = 0, {}
    for line in out.splitlines():
        m = re.match(r"^\s*([\d,]+)\s+\([^)]*\)\s+(.*)$", line)
        if not m:
            continue
        value, name = int(m.group(1).replace(",", "")), m.group(2)
        if name.startswith("PROGRAM TOTALS"):
            total = value
        else:
            name = re.sub(r"\s*\[[^\]]*\]$", "", name).split(":", 1)[-1]
            per_fn[name] = per_fn.get(name, 0) + value
    return total / n, {k: v / n for k, v in per_fn.items()}
anon_total, anon = counts(sys.argv[2])
auth_total, auth = counts(sys.argv[3])
sha = sum(v for k, v in auth.items() if "sha256" in k) - sum(v for k, v in anon.items() if "sha256" in k)
print(f"instructions per request (user space, callgrind, {n} requests each, one worker):")
print(f"  anonymous      {anon_total:9,.0f}")
print(f"  authenticated  {auth_total:9,.0f}  (+{auth_total - anon_total:,.0f}, "
      f"of which SHA-256 in software {sha:,.0f}: +{auth_total - anon_total - sha:,.0f} without it)")
# Inherited totals (thread start, the runtime's block_on) cover everything; leave them out.
delta = sorted(((auth.get(k, 0) - anon.get(k, 0), k) for k in set(anon) | set(auth)
                if auth.get(k, 0) < 0.9 * auth_total), reverse=True)
print("  largest differences (exclusive instructions per request):")
for d, k in delta[:15]:
    print(f"    {d:+7,.0f}  {k[:110]}")
PY
