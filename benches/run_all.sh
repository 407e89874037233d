#!/usr/bin/env bash
# Every benchmark, in one go: builds release once, then runs
#   1+2  cargo bench --bench storage       (provisioning; migrate fan-out over 10,000 tenants)
#   3+4  cargo bench --bench tenant_http   (cold vs warm first request; RSS with 1,000 tenants)
#   5    benches/http.sh                   (wrk: /api/tenant vs bare actix-web, 64 and 1000 conns)
#   A+B  benches/auth.sh                   (sign-in latency; authenticated vs anonymous route)
#   D4   benches/tasks.sh                  (task list and board on 100,000 tasks; creation over 10 tenants)
# and tees everything, with the machine description, to $OUT (default bench-results-<time>.log
# in the current directory).
#
#   CARGO_TARGET_DIR=/work/bench-target benches/run_all.sh
#
# Takes about 15 minutes on 2 cores (most of it provisioning 10,000 tenants and the wrk
# rounds); every step is bounded by `timeout`. The knobs of each bench pass through (see
# benches/README.md), e.g. BENCH_MIGRATE_TENANTS=2000 ROUNDS=1 for a quick pass.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=${OUT:-$PWD/bench-results-$(date +%Y%m%d-%H%M%S).log}
cd "$ROOT"

exec > >(tee "$OUT") 2>&1

echo "== machine"
echo "date:    $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "commit:  $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- src migrations Cargo.toml 2>/dev/null || echo ' (+ uncommitted changes)')"
echo "cpus:    $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "memory:  $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
echo "kernel:  $(uname -r)"
echo "fs:      $(df -T "${AGENTHQ_BENCH_TMPDIR:-${TMPDIR:-/tmp}}" | awk 'NR==2 {print $2 " (" $1 ")"}') for the data dirs"
echo "rustc:   $(rustc --version)"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) before the run"
# Anything else using the CPU skews every figure here: measure it over 3 s.
busy() { awk '/^cpu / {print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat; }
read -r b0 t0 < <(busy); sleep 3; read -r b1 t1 < <(busy)
echo "cpu:     $(( 100 * (b1 - b0) / (t1 - t0 > 0 ? t1 - t0 : 1) ))% busy over 3 s before the run (should be ~0)"
# CPU time the hypervisor gave to other guests while we ran (field 8 of /proc/stat's cpu line).
steal() { awk '/^cpu / {print $9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
read -r s0 a0 < <(steal)

echo
echo "== build (release, once)"
cargo build --release --bin agenthq --example bare_actix
cargo bench --bench storage --bench tenant_http --no-run

echo
timeout 1800 cargo bench --bench storage
echo
timeout 900 cargo bench --bench tenant_http
echo
SKIP_BUILD=1 timeout 900 "$ROOT/benches/http.sh"
echo
SKIP_BUILD=1 timeout 900 "$ROOT/benches/auth.sh"
SKIP_BUILD=1 timeout 1200 "$ROOT/benches/tasks.sh"

echo
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) after the run"
read -r s1 a1 < <(steal)
echo "steal:   $(( 100 * (s1 - s0) / (a1 - a0 > 0 ? a1 - a0 : 1) ))% of CPU time stolen by the hypervisor during the run"
echo "results: $OUT"
