#!/usr/bin/env bash
# The loopback floor under the realtime figures (issue 5): benches/ws_floor.rs delivers
# ready-made 204-byte frames over CONNECTIONS loopback TCP connections, no WebSocket library
# and no hub, writer and reader in two processes of two runtime threads each (as the server
# and the load generator of benches/ws.sh). What it cannot deliver, no server on this machine
# can. Sweeps the interval between two frames to one connection, then the issue's 10 ms with
# frames coalesced into fewer writes (which buys system calls with latency).
#
#   benches/ws_floor.sh
#   DURATION=20 INTERVALS="100 10" COALESCE="1 5 8" SKIP_BUILD=1 benches/ws_floor.sh
#
# Knobs: CONNECTIONS (10000), DURATION (10 s measured, after 1 s of warm-up), INTERVALS
# ("100 40 20 10" ms), COALESCE ("5 8": frames per write at 10 ms), CARGO_TARGET_DIR.
# Needs cargo, GNU time and 2 x CONNECTIONS + 100 open files. 127.0.0.1 only.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
CONNECTIONS=${CONNECTIONS:-10000}
DURATION=${DURATION:-10}
INTERVALS=${INTERVALS:-"100 40 20 10"}
COALESCE=${COALESCE:-"5 8"}

cd "$ROOT"
# shellcheck source=benches/common.sh
source "$ROOT/benches/common.sh"
FLOOR=$(bench_executable ws_floor)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

echo "== loopback floor: $CONNECTIONS connections, $(nproc) cores, ${DURATION}s per run =="
for ms in $INTERVALS; do
    /usr/bin/env time -f "  (process CPU %P)" "$FLOOR" --connections "$CONNECTIONS" --interval-ms "$ms" --duration "$DURATION"
done
for n in $COALESCE; do
    /usr/bin/env time -f "  (process CPU %P)" "$FLOOR" --connections "$CONNECTIONS" --interval-ms 10 --coalesce "$n" --duration "$DURATION"
done
