#!/usr/bin/env bash
# Figures of agent runs (issue 7): platform overhead per run against an instant fake
# OpenAI-compatible provider (benches/runs.rs, release build). Each round starts a fresh
# server and data dir; medians over the rounds at the end.
#
#   benches/runs.sh
#   ROUNDS=5 RUNS=4000 AGENTS=64 benches/runs.sh
#
# Knobs: ROUNDS (3), RUNS (2000), AGENTS (64), SERIAL_RUNS (300), CONCURRENCY (64),
# TOOLS ("read_messages list_agents": the first turn's tool, one series each),
# BASELINE (the runs bench binary of another build, e.g. a copy of
# target/release/deps/runs-* made at an earlier commit: each round then runs it too, right
# before this build, and the summary shows both side by side), CARGO_TARGET_DIR.
# Needs cargo and python3.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
ROUNDS=${ROUNDS:-3}
RUNS=${RUNS:-2000}
AGENTS=${AGENTS:-64}
SERIAL_RUNS=${SERIAL_RUNS:-300}
CONCURRENCY=${CONCURRENCY:-64}
TOOLS=${TOOLS:-read_messages list_agents}

cd "$ROOT"
# shellcheck source=benches/common.sh
source "$ROOT/benches/common.sh"
BENCH=$(bench_executable runs)
[[ -x $BENCH ]] || { echo "error: cannot build the runs bench" >&2; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/agenthq-bench-runs.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

echo "== $RUNS two-turn runs over $AGENTS agents (concurrency $CONCURRENCY), $SERIAL_RUNS serial; $(nproc) CPUs =="
BUILDS=(current)
[[ -n ${BASELINE:-} ]] && BUILDS=(baseline current)
for round in $(seq "$ROUNDS"); do
    for tool in $TOOLS; do
        for build in "${BUILDS[@]}"; do
            bin=$BENCH
            [[ $build == baseline ]] && bin=$BASELINE
            echo "-- round $round, $tool, $build" >&2
            "$bin" --runs "$RUNS" --agents "$AGENTS" --serial-runs "$SERIAL_RUNS" --tool "$tool" \
                --concurrency "$CONCURRENCY" --dir "$WORK/r$round" \
                | grep '^{' | python3 -c "import json,sys; r=json.load(sys.stdin); r['build']='$build'; print(json.dumps(r))" \
                | tee -a "$WORK/results.jsonl"
            rm -rf "$WORK/r$round"
        done
    done
done
python3 - "$WORK/results.jsonl" <<'PY'
import json, statistics, sys
all_rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
keys = ["runs_per_s", "released_overhead_per_turn_p50_ms", "runs_per_s_with_creation", "overhead_per_turn_p50_ms", "overhead_per_turn_p90_ms",
        "serial_runs_per_s", "serial_overhead_per_turn_p50_ms", "serial_overhead_per_turn_p90_ms"]
for tool, build in dict.fromkeys((r["tool"], r["build"]) for r in all_rows):
    rows = [r for r in all_rows if r["tool"] == tool and r["build"] == build]
    print("%s build, first turn calls %s — median of %d rounds:" % (build, tool, len(rows)))
    for k in keys:
        vals = [r[k] for r in rows if r.get(k) is not None]
        print("  %-34s %10.2f   (rounds: %s)" % (k, statistics.median(vals), ", ".join("%.2f" % v for v in vals)))
PY
