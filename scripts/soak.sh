#!/usr/bin/env bash
# Soak test (not run by CI): CLIENTS clients chat at RATE messages a second in all for DURATION
# seconds against a release chatd with its default limits (flood control on). Prints the server's
# RSS every 30 s and chatd-load's summary: deliveries, lost, duplicated, latency, and whether every
# client stayed connected. Exits non-zero if anything was lost or anyone was dropped.
#
#   scripts/soak.sh            # 1,000 clients, 100 msg/s, 600 s
#   CLIENTS=200 RATE=50 DURATION=60 scripts/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
clients=${CLIENTS:-1000}
rate=${RATE:-100}
duration=${DURATION:-600}
target=${CARGO_TARGET_DIR:-target}
cargo build --quiet --release --bin chatd --bin chatd-load
ulimit -n "$(ulimit -Hn)"

scratch=$(mktemp -d)
server_pid=
sampler_pid=
cleanup() {
    [ -n "$sampler_pid" ] && kill "$sampler_pid" 2>/dev/null || true
    [ -n "$server_pid" ] && kill -TERM "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
    rm -rf "$scratch"
}
trap cleanup EXIT

"$target/release/chatd" --listen 127.0.0.1:0 --data-dir "$scratch/data" --no-console \
    --max-clients $((clients + 100)) </dev/null >"$scratch/stdout" 2>"$scratch/stderr" &
server_pid=$!
addr=
for _ in $(seq 100); do
    addr=$(sed -n 's/^chatd listening on //p' "$scratch/stdout" 2>/dev/null | head -1)
    [ -n "$addr" ] && break
    sleep 0.1
done
[ -n "$addr" ] || { echo "soak: chatd did not start" >&2; exit 2; }

# RSS every 30 s, from the start.
(
    started=$(date +%s)
    while kill -0 "$server_pid" 2>/dev/null; do
        rss=$(awk '/^VmRSS/ {print $2}' "/proc/$server_pid/status" 2>/dev/null || true)
        echo "soak: t=$(( $(date +%s) - started ))s server RSS ${rss:-?} KiB"
        sleep 30
    done
) &
sampler_pid=$!

echo "soak: $clients clients, $rate msg/s in all, ${duration}s, against chatd at $addr (pid $server_pid)"
status=0
"$target/release/chatd-load" rate --addr "$addr" --clients "$clients" --rate "$rate" \
    --duration "$duration" --server-pid "$server_pid" --timeout $((duration + 300)) --quiet || status=$?
kill "$sampler_pid" 2>/dev/null || true
sampler_pid=
echo "soak: server warnings and errors:"
grep -E "WARN|ERROR" "$scratch/stderr" | head -20 || echo "  (none)"
exit "$status"
