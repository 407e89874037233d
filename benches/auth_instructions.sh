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

# shellcheck source=benches/callgrind_lib.sh
source "$ROOT/benches/callgrind_lib.sh"
serve_under_callgrind

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
PYTHONPATH="$ROOT/benches" python3 - "$N" "$WORK"/callgrind.out.1 "$WORK"/callgrind.out.2 <<'PY'
import sys
from callgrind_counts import counts
n = int(sys.argv[1])
anon_total, anon = counts(sys.argv[2], n)
auth_total, auth = counts(sys.argv[3], n)
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
