#!/usr/bin/env bash
# Measures the README's Cluster figures, each the median of RUNS runs (default 3), every run on
# fresh servers:
#   - latency across nodes: two nodes of one cluster and a Redis of their own, 100 clients spread
#     over both (chatd-load --addr A --addr B), 500 messages a second for 10 s; p50 and p99 of
#     the deliveries that crossed from one node to the other (`cross_latency`);
#   - a burst across nodes (50 clients x 10,000 messages, half on each node): nothing lost or
#     duplicated, and each node's CPU per 1,000 deliveries to its own clients, against one chatd
#     without a cluster under the same burst in the same round (and the same for the 500 msg/s
#     run); Redis's CPU time beside them. And one chatd alone with one node's share of the burst
#     (25 clients x 20,000 messages: the same 500,000 lines, each to the 25 members a node has),
#     which tells the cost of being a node from the cost of having half the members per line.
# The machine has 2 cores: nodes, Redis and chatd-load share them (nothing is pinned), so the
# figures include that contention; the JSON of every run is kept in $CARGO_TARGET_DIR/perf/cluster/.
#
#   [BURST=MESSAGES] scripts/perf-cluster.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
# Messages per client in the bursts: long enough (24.5 M deliveries, about 2 s) that a burst's
# first moments (buffers and TCP windows growing) weigh little; with 2,000, one chatd's figure
# went from 16 to 40 us per 1,000 run to run, with 10,000 from 16 to 26.
burst=${BURST:-10000}
target=${CARGO_TARGET_DIR:-target}
cargo build --quiet --release --bin chatd --bin chatd-load
chatd=$target/release/chatd
load=$target/release/chatd-load
ulimit -n "$(ulimit -Hn)"
out=$target/perf/cluster
mkdir -p "$out"
: >"$out/runs.jsonl"
scratch=$(mktemp -d /dev/shm/chatd-cluster.XXXXXX)
started=()
stop_all() {
    for pid in "${started[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${started[@]}"; do wait "$pid" 2>/dev/null || true; done
    started=()
}
trap 'stop_all; rm -rf "$scratch"' EXIT

chatd_flags=(--no-console --history 0 --no-flood-control --no-history-store
             --max-outbuf $((256 << 20)) --outbuf-soft $((256 << 20)) --max-clients 11000)

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_redis: a Redis of its own on a free port, no persistence; sets $redis_url and $redis_pid.
start_redis() {
    local port
    port=$(free_port)
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$scratch" \
        >/dev/null 2>&1 &
    redis_pid=$!
    started+=("$redis_pid")
    redis_url=redis://127.0.0.1:$port
    for _ in $(seq 100); do
        if [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ]; then return 0; fi
        sleep 0.05
    done
    echo "redis-server did not start" >&2
    exit 1
}

# start_chatd NAME [FLAGS...]: a chatd on a free port; sets $addr and $pid.
start_chatd() {
    local name=$1
    shift
    mkdir -p "$scratch/$name"
    "$chatd" --listen 127.0.0.1:0 --data-dir "$scratch/$name" "${chatd_flags[@]}" "$@" \
        </dev/null >"$scratch/$name.out" 2>"$scratch/$name.err" &
    pid=$!
    started+=("$pid")
    for _ in $(seq 200); do
        addr=$( (sed -n 's/^chatd listening on //p' "$scratch/$name.out" 2>/dev/null || true) | head -1)
        if [ -n "$addr" ]; then return 0; fi
        sleep 0.05
    done
    echo "chatd $name did not start: $(cat "$scratch/$name.err")" >&2
    exit 1
}

# The CPU time (user + system, in clock ticks) process $1 has used so far.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

for round in $(seq "$runs"); do
    # One chatd alone, for the single-node figures: the same burst and the same rate.
    start_chatd single
    "$load" burst --addr "$addr" --server-pid "$pid" --clients 50 --messages "$burst" --size 64 \
        --timeout 120 --json --quiet --label 'chatd alone' | jq -c '. + {round: '"$round"', shape: "single"}' \
        >>"$out/runs.jsonl" || true
    stop_all
    # One chatd alone with one node's share of that burst: the same lines, to its 25 members.
    start_chatd share
    "$load" burst --addr "$addr" --server-pid "$pid" --clients 25 --messages $((burst * 2)) --size 64 \
        --timeout 120 --json --quiet --label 'chatd alone, a node share' | jq -c '. + {round: '"$round"', shape: "share"}' \
        >>"$out/runs.jsonl" || true
    stop_all
    start_chatd single
    "$load" rate --addr "$addr" --server-pid "$pid" --clients 100 --rate 500 --duration 10 \
        --timeout 120 --json --quiet --label 'chatd alone' | jq -c '. + {round: '"$round"', shape: "single-rate"}' \
        >>"$out/runs.jsonl" || true
    stop_all
    # Two nodes and their Redis.
    for shape in rate burst; do
        start_redis
        start_chatd a --cluster "$redis_url" --node-name perf-a
        a_addr=$addr a_pid=$pid
        start_chatd b --cluster "$redis_url" --node-name perf-b
        b_addr=$addr b_pid=$pid
        redis_before=$(ticks "$redis_pid")
        if [ "$shape" = rate ]; then
            args=(rate --clients 100 --rate 500 --duration 10)
        else
            args=(burst --clients 50 --messages "$burst" --size 64)
        fi
        "$load" "${args[@]}" --addr "$a_addr" --addr "$b_addr" --server-pid "$a_pid" --server-pid "$b_pid" \
            --timeout 120 --json --quiet --label 'chatd cluster' >"$scratch/run.json" || true
        redis_ticks=$(( $(ticks "$redis_pid") - redis_before ))
        jq -c '. + {round: '"$round"', shape: "'"$shape"'", redis_cpu_ns: '"$((redis_ticks * 10000000))"'}' \
            "$scratch/run.json" >>"$out/runs.jsonl"
        stop_all
    done
done

median() { # median SHAPE JQ-EXPRESSION
    jq -s --arg shape "$1" "[.[] | select(.shape == \$shape) | $2 | select(. != null)] | sort |
        if length == 0 then null else .[length / 2 | floor] end" "$out/runs.jsonl"
}
single=$(median single '.server.cpu_us_per_1k_deliveries | round')
share=$(median share '.server.cpu_us_per_1k_deliveries | round')
node_a=$(median burst '.nodes[0].cpu_us_per_1k_deliveries | round')
node_b=$(median burst '.nodes[1].cpu_us_per_1k_deliveries | round')
single_rate=$(median single-rate '.server.cpu_us_per_1k_deliveries | round')
rate_a=$(median rate '.nodes[0].cpu_us_per_1k_deliveries | round')
rate_b=$(median rate '.nodes[1].cpu_us_per_1k_deliveries | round')
echo "| figure | median of $runs |"
echo "|---|---|"
printf '| cross-node latency at 500 msg/s, p50 / p99 | %s / %s us |\n' \
    "$(median rate '.cross_latency.p50_ns / 1000 | round')" "$(median rate '.cross_latency.p99_ns / 1000 | round')"
printf '| rate run: lost / duplicated | %s / %s |\n' "$(median rate '.lost')" "$(median rate '.duplicated')"
printf '| burst across nodes: lost / duplicated | %s / %s |\n' "$(median burst '.lost')" "$(median burst '.duplicated')"
printf '| burst: CPU us per 1k deliveries, node A / node B / one chatd alone | %s / %s / %s |\n' \
    "$node_a" "$node_b" "$single"
printf '| burst: one chatd alone with one node share (25 clients x %s: the same lines, 25 members) | %s |\n' "$((burst * 2))" "$share"
printf '| 500 msg/s: CPU us per 1k deliveries, node A / node B / one chatd alone | %s / %s / %s |\n' \
    "$rate_a" "$rate_b" "$single_rate"
printf '| one chatd alone at 500 msg/s: p99 latency | %s us |\n' "$(median single-rate '.latency.p99_ns / 1000 | round')"
printf '| Redis CPU ms: burst / 10 s at 500 msg/s | %s / %s |\n' "$(median burst '.redis_cpu_ns / 1e6 | round')" \
    "$(median rate '.redis_cpu_ns / 1e6 | round')"
# Each round's nodes against that round's chatd alone (the same burst, or the same rate).
per_round() { # per_round NODES-SHAPE ALONE-SHAPE
    jq -s -r --arg nodes "$1" --arg alone "$2" 'group_by(.round)[]
        | (map(select(.shape == $alone))[0].server.cpu_us_per_1k_deliveries) as $base
        | (map(select(.shape == $nodes))[0].nodes // [])
        | map(.cpu_us_per_1k_deliveries / $base * 100 | round / 100 | tostring) | join(" ")' \
        "$out/runs.jsonl" | paste -sd, - | sed 's/,/, /g'
}
printf 'per round, node / one chatd alone: burst %s; 500 msg/s %s\n' \
    "$(per_round burst single)" "$(per_round rate single-rate)"
echo "Every run's JSON: $out/runs.jsonl"
