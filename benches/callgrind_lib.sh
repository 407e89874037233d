# What the *_instructions.sh scripts share (sourced with `ROOT` and `TARGET` set): the tools
# checked, the release binary built (unless SKIP_BUILD=1) as `BIN`, a temporary data dir with
# tenant `acme`, its owner and an API token for her (`TOKEN`; the free plan's rate limit raised
# so no request is refused), removed on exit, and `serve_under_callgrind`.
# Needs valgrind, curl, python3, cargo.
# shellcheck shell=bash

for tool in valgrind callgrind_control callgrind_annotate curl python3; do
    command -v "$tool" >/dev/null || { echo "error: $tool is required (apt-get install -y valgrind)" >&2; exit 1; }
done
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET" cargo build --release --bin agenthq)
fi
BIN=$TARGET/release/agenthq

# shellcheck source=benches/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

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
PORT=$(free_port)

# Starts the server under callgrind (dumps: $WORK/callgrind.out.N) and waits until it answers.
# One worker thread, so every request runs on the thread callgrind follows, the same way.
serve_under_callgrind() {
    (cd "$WORK" && exec valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" \
        "$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$DATA" --config "$WORK/agenthq.toml" \
        --workers 1 >"$WORK/server.log" 2>&1) &
    PID=$!
    for _ in $(seq 600); do
        curl -fsS -o /dev/null "http://127.0.0.1:$PORT/healthz" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "error: the server did not come up under callgrind" >&2
    return 1
}
