# Shared by the wrk benchmarks (http.sh, auth.sh), sourced after the caller set ROOT, TARGET
# and THREADS: builds the release binaries (unless SKIP_BUILD=1), makes $WORK (removed on exit,
# with every pid in PIDS stopped), and defines free_port, wait_up and `run` (one wrk run,
# recorded in $RESULTS and printed).
# shellcheck shell=bash

for tool in wrk curl python3; do
    command -v "$tool" >/dev/null || { echo "error: $tool is required (wrk: apt-get install -y wrk)" >&2; exit 1; }
done

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET" cargo build --release --bin agenthq --example bare_actix)
fi
BIN=$TARGET/release/agenthq
BARE=$TARGET/release/examples/bare_actix
[[ -x $BIN && -x $BARE ]] || { echo "error: build $BIN and $BARE first" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/agenthq-bench-http.XXXXXX")
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        # Bounded wait, then force.
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wrk at 1000 connections needs more than the usual 1024 descriptors; servers inherit it.
ulimit -n "$(( $(ulimit -Hn) < 65536 ? $(ulimit -Hn) : 65536 ))" 2>/dev/null || true

# shellcheck source=benches/common.sh
source "$ROOT/benches/common.sh"

RESULTS=$WORK/results.tsv
: >"$RESULTS"

CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime of a process

# One wrk run; appends "server conns rps p99_ms p50_ms non2xx errors cpu_us_per_request round"
# to $RESULTS. cpu_us_per_request is the server's own CPU time (user+sys) per request served.
ROUND=0
run() { # name conns seconds url server-pid [header...]
    local name=$1 conns=$2 secs=$3 url=$4 pid=$5 out t0 t1 h
    local -a headers=()
    for h in "${@:6}"; do headers+=(-H "$h"); done
    t0=$(cpu_ticks "$pid")
    out=$(timeout $(( secs + 30 )) wrk -t"$THREADS" -c"$conns" -d"${secs}s" --latency \
        "${headers[@]}" "$url")
    t1=$(cpu_ticks "$pid")
    [[ $name == warmup ]] && return 0
    python3 - "$name" "$conns" "$out" "$(( t1 - t0 ))" "$CLK_TCK" "$ROUND" >>"$RESULTS" <<'PY'
import re, sys
name, conns, out, ticks, hz, rnd = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
total = int(re.search(r"(\d+) requests in", out).group(1))
cpu_us = ticks / hz * 1e6 / max(total, 1)
def ms(v, unit):
    return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
lat = dict((p, ms(v, u)) for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M))
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
print(f"{name}\t{conns}\t{rps:.0f}\t{lat['99']:.3f}\t{lat['50']:.3f}\t{non2xx.group(1) if non2xx else 0}\t{sum(map(int, errs.groups())) if errs else 0}\t{cpu_us:.2f}\t{rnd}")
PY
    tail -n1 "$RESULTS" | awk -F'\t' '{printf "  %-16s c=%-5s %9s req/s  p50 %7s ms  p99 %7s ms  server CPU %6s us/req  non-2xx %s  socket errors %s\n", $1, $2, $3, $5, $4, $8, $6, $7}'
}
