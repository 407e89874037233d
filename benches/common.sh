# Shell helpers every benchmark script shares (sourced; needs python3 and curl).
# shellcheck shell=bash

# A free TCP port on 127.0.0.1.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Waits up to 30 s for `url` to answer 2xx (with an optional extra request header).
wait_up() { # url [header]
    for _ in $(seq 300); do
        if curl -fsS -o /dev/null ${2:+-H "$2"} "$1" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "error: $1 did not come up" >&2
    return 1
}

# Builds the `harness = false` bench target `name` (release) and prints its executable's path.
bench_executable() { # name
    CARGO_TARGET_DIR="$TARGET" cargo bench --bench "$1" --no-run --message-format=json 2>/dev/null \
        | python3 -c 'import json,sys
name = sys.argv[1]
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == name and m.get("executable"):
        print(m["executable"])' "$1"
}
