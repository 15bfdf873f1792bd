#!/usr/bin/env bash
# Measures the README's Performance tables: chatd (text and framed) and the bare relay under the
# same load, and chatd's rooms (the one-room burst against the relay's, 1,000 users in 50 rooms
# against the one-room burst, idle memory in the lobby and in 20 rooms, 10,000 joins into one
# room), and TLS (the burst over TLS against plain text's, idle memory per TLS connection, new
# connections per second with and without TLS), and WebSocket mode (the burst over WebSocket
# against plain text's, idle memory per WebSocket connection), and the metrics (the burst with
# --metrics-listen on and scraped every 50 ms, against the bare relay's and against chatd's without
# it), and the history store (the burst with the store on a real disk against the same burst kept
# in memory only), each figure the median of RUNS runs (default 3), every run on a freshly started server.
# The server runs on core 0 (taskset -c 0), chatd-load on core 1 (taskset -c 1), both at nice -20
# when allowed, so that other processes on a shared machine get the cores only when they are idle.
#
#   scripts/perf-table.sh [RUNS] [all|rooms|tls|ws|metrics|history|irc]
#
# `rooms` measures only what the rooms table needs (the relay's and chatd's one-room burst, then
# the rooms rows), alternating them in every run so each ratio is taken within the same run.
# `tls` does the same for the TLS table: the relay's, chatd's and chatd-over-TLS's burst, idle
# memory plain and over TLS, and new connections plain and over TLS (chatd --tls-self-signed,
# chatd-load --tls).
# `ws` does the same for the WebSocket table: chatd's burst in text mode and in WebSocket mode
# (chatd-load --mode ws), and idle memory in both.
# `metrics` does the same for the metrics: the relay's burst, chatd's, and chatd's with
# --metrics-listen 127.0.0.1:0 while a scraper (on chatd-load's core) fetches /metrics every 50 ms;
# with CHATD_BEFORE=PATH (a chatd built from an earlier commit) also that binary's burst, to show
# what keeping the counters costs at all.
# `history` does the same for the history store: chatd's burst with the store (its data directory
# under $CARGO_TARGET_DIR/perf, on disk, not in /dev/shm: every commit is a real write) and with
# --no-history-store.
# `irc` does the same for IRC mode: chatd's burst in text mode, the same burst from IRC clients
# (NICK and USER, then PRIVMSG to the default room the server joins them to), and the same IRC
# burst against Debian's ngIRCd (/usr/sbin/ngircd, started on a free port with a configuration
# of its own; each client becomes an IRC operator with user mode +F, ngIRCd's relaxed flood
# protection, or ngIRCd holds every client to a few lines a second).
# Prints the table in Markdown; every run's JSON and summary are kept in $CARGO_TARGET_DIR/perf/.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
what=${2:-all}
case $what in all | rooms | tls | ws | metrics | history | irc) ;; *) echo "usage: $0 [RUNS] [all|rooms|tls|ws|metrics|history|irc]" >&2; exit 2 ;; esac
target=${CARGO_TARGET_DIR:-target}
cargo build --quiet --release --bin chatd --bin chatd-load --example bare_relay
chatd=$target/release/chatd
relay=$target/release/examples/bare_relay
load=$target/release/chatd-load
ulimit -n "$(ulimit -Hn)"
if nice -n -20 true 2>/dev/null; then
    first=(nice -n -20)
    # Niced runs are measured as they come; the other processes' share is reported beside them.
    quiet_cores=${QUIET_CORES:-100}
else
    first=()
    quiet_cores=${QUIET_CORES:-0.1}
fi
out=$target/perf
mkdir -p "$out"
: >"$out/runs.jsonl"
: >"$out/summaries.txt"
: >"$out/disturbed.jsonl"
# chatd's console shows every chat line on stdout: keep it in memory, not on disk.
scratch=$(mktemp -d /dev/shm/chatd-perf.XXXXXX)
server_pid=
scraper_pid=
stop_server() {
    if [ -n "$scraper_pid" ]; then
        kill -TERM "$scraper_pid" 2>/dev/null || true
        wait "$scraper_pid" 2>/dev/null || true
        scraper_pid=
    fi
    if [ -n "$server_pid" ]; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=
    fi
}
trap 'stop_server; rm -rf "$scratch"' EXIT

# chatd's flags for every run: no flood control and output limits far above a burst's backlog, so
# that nothing is dropped or slowed on purpose (the table says so too).
chatd_flags=(--no-console --history 0 --no-flood-control --max-outbuf $((256 << 20))
             --outbuf-soft $((256 << 20)) --max-clients 11000)

# start_server chatd|tls|metrics|relay: starts it on 127.0.0.1:0 and sets $server_pid and $addr
# (tls: chatd with a self-signed certificate, made in its fresh data directory; metrics: chatd
# with --metrics-listen 127.0.0.1:0 and a scraper fetching /metrics every 50 ms until it stops;
# store: chatd with its data directory, and so its history store, on disk; memory: chatd
# --no-history-store).
start_server() {
    rm -rf "$scratch/data" "$scratch/stdout" "$out/store-data"
    case $1 in
        store) "${first[@]}" taskset -c 0 "$chatd" --listen 127.0.0.1:0 --data-dir "$out/store-data" \
                   "${chatd_flags[@]}" </dev/null >"$scratch/stdout" 2>"$scratch/stderr" &
               word="chatd listening on" ;;
        memory) "${first[@]}" taskset -c 0 "$chatd" --listen 127.0.0.1:0 --data-dir "$scratch/data" \
                   --no-history-store "${chatd_flags[@]}" </dev/null >"$scratch/stdout" 2>"$scratch/stderr" &
               word="chatd listening on" ;;
        chatd) "${first[@]}" taskset -c 0 "$chatd" --listen 127.0.0.1:0 --data-dir "$scratch/data" \
                   "${chatd_flags[@]}" </dev/null >"$scratch/stdout" 2>"$scratch/stderr" &
               word="chatd listening on" ;;
        tls) "${first[@]}" taskset -c 0 "$chatd" --listen 127.0.0.1:0 --data-dir "$scratch/data" \
                 --tls-self-signed "${chatd_flags[@]}" </dev/null >"$scratch/stdout" 2>"$scratch/stderr" &
             word="chatd listening on" ;;
        before) "${first[@]}" taskset -c 0 "$CHATD_BEFORE" --listen 127.0.0.1:0 --data-dir "$scratch/data" \
                    "${chatd_flags[@]}" </dev/null >"$scratch/stdout" 2>"$scratch/stderr" &
                word="chatd listening on" ;;
        metrics) "${first[@]}" taskset -c 0 "$chatd" --listen 127.0.0.1:0 --data-dir "$scratch/data" \
                     --metrics-listen 127.0.0.1:0 "${chatd_flags[@]}" </dev/null >"$scratch/stdout" 2>"$scratch/stderr" &
                 word="chatd listening on" ;;
        relay) "${first[@]}" taskset -c 0 "$relay" --listen 127.0.0.1:0 --max-outbuf $((256 << 20)) \
                   </dev/null >"$scratch/stdout" 2>"$scratch/stderr" &
               word="bare_relay listening on" ;;
        ngircd) start_ngircd && return 0 ;;
    esac
    server_pid=$!
    for _ in $(seq 100); do
        addr=$( (sed -n "s/^$word //p" "$scratch/stdout" 2>/dev/null || true) | head -1)
        if [ -n "$addr" ] && [ "$1" = metrics ]; then
            start_scraper && return 0
        elif [ -n "$addr" ]; then
            return 0
        fi
        sleep 0.05
    done
    echo "$1 did not start: $(cat "$scratch/stderr")" >&2
    exit 1
}

# start_ngircd: Debian's ngIRCd on a free loopback port, in the foreground; sets $server_pid and
# $addr once it accepts connections.
start_ngircd() {
    local port
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    cat >"$scratch/ngircd.conf" <<CONF
[Global]
Name = irc.perf
Info = chatd perf-table
Listen = 127.0.0.1
Ports = $port
MotdPhrase = "perf"
AdminInfo1 = perf
AdminInfo2 = perf
AdminEMail = perf@localhost
ServerUID = $(id -u)
ServerGID = $(id -g)
[Limits]
MaxConnections = 12000
MaxConnectionsIP = 12000
MaxJoins = 0
PingTimeout = 600
PongTimeout = 600
[Options]
DNS = no
Ident = no
PAM = no
[Operator]
Name = perf
Password = perf
CONF
    "${first[@]}" taskset -c 0 /usr/sbin/ngircd -n -f "$scratch/ngircd.conf" \
        </dev/null >"$scratch/stdout" 2>"$scratch/stderr" &
    server_pid=$!
    addr=127.0.0.1:$port
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.05
    done
    echo "ngircd did not start: $(cat "$scratch/stderr")" >&2
    exit 1
}

# start_scraper: once chatd says where its metrics are, fetches /metrics every 50 ms (on core 1,
# beside chatd-load) until chatd stops; sets $scraper_pid.
start_scraper() {
    local metrics
    metrics=$( (sed -n 's|^chatd metrics on http://\(.*\)/metrics$|\1|p' "$scratch/stdout" 2>/dev/null || true) | head -1)
    [ -n "$metrics" ] || return 1
    taskset -c 1 bash -c '
        pid=$1 host=${2%:*} port=${2##*:}
        while kill -0 "$pid" 2>/dev/null; do
            if exec 3<>"/dev/tcp/$host/$port"; then
                printf "GET /metrics HTTP/1.0\r\n\r\n" >&3
                cat <&3 >/dev/null
                exec 3<&-
            fi
            sleep 0.05
        done' scraper "$server_pid" "$metrics" 2>/dev/null &
    scraper_pid=$!
}

# cpu_busy_percent: how busy the machine was over the last half second (other processes too).
cpu_busy_percent() {
    local a b
    read -r _ a1 a2 a3 a4 a5 a6 a7 _ </proc/stat
    sleep 0.5
    read -r _ b1 b2 b3 b4 b5 b6 b7 _ </proc/stat
    a=$((a1 + a2 + a3 + a4 + a5 + a6 + a7)) b=$((b1 + b2 + b3 + b4 + b5 + b6 + b7))
    echo $((100 - 100 * (b4 - a4) / (b - a > 0 ? b - a : 1)))
}

# wait_quiet: unless niced, waits (up to a minute) until nothing else keeps the machine busy: CPU
# figures taken while another process competes for the cores are not worth having.
wait_quiet() {
    [ ${#first[@]} -gt 0 ] && return 0
    for _ in $(seq 120); do
        [ "$(cpu_busy_percent)" -lt 10 ] && return 0
    done
    echo "warning: the machine stayed busy; measuring anyway" >&2
}

# measure SERVER SCENARIO [chatd-load flags...]: one run on a fresh server, its JSON appended to
# runs.jsonl. Unless niced, a run during which other processes (or the hypervisor) took over 0.1
# core is put aside in disturbed.jsonl and tried again, three times at most.
measure() {
    local server=$1 scenario=$2
    shift 2
    local server_flags=()
    case $server in
        relay) server_flags=(--welcome '')
               # A run of the relay is labelled 'bare relay' unless it is given a label of its own.
               [[ " $* " == *" --label "* ]] || server_flags+=(--label 'bare relay') ;;
        framed) server=chatd server_flags=(--mode framed --label 'chatd framed') ;;
        tls) server_flags=(--tls --label 'chatd TLS') ;;
        ws) server=chatd server_flags=(--mode ws --label 'chatd ws') ;;
        metrics) server_flags=(--label 'chatd metrics') ;;
        before) server_flags=(--label 'chatd before') ;;
        store) server_flags=(--label 'chatd store') ;;
        memory) server_flags=(--label 'chatd memory') ;;
        irc) server=chatd server_flags=(--name-template 'NICK {name}\r\nUSER {name} 0 * :{name}\r\n'
                 --say-template 'PRIVMSG #lobby :{payload}\r\n' --welcome ' 366 ' --label 'chatd irc') ;;
        ngircd) server_flags=(--name-template 'NICK {name}\r\nUSER {name} 0 * :{name}\r\nOPER perf perf\r\nMODE {name} +F\r\nJOIN #lobby\r\n'
                    --say-template 'PRIVMSG #lobby :{payload}\r\n' --welcome ' 366 ' --label 'ngircd') ;;
    esac
    for attempt in 1 2 3; do
        wait_quiet
        start_server "$server"
        # The summary goes to stderr, kept beside the JSON; a failed run still gives its JSON.
        "${first[@]}" taskset -c 1 "$load" "$scenario" --addr "$addr" --server-pid "$server_pid" --json --quiet \
            "${server_flags[@]}" "$@" >"$scratch/run.json" 2>>"$out/summaries.txt" || true
        stop_server
        if [ "$attempt" -lt 3 ] && ! jq -e --argjson most "$quiet_cores" \
            '(.machine.other_cores + .machine.steal_cores) <= $most' "$scratch/run.json" >/dev/null; then
            cat "$scratch/run.json" >>"$out/disturbed.jsonl"
            continue
        fi
        cat "$scratch/run.json" >>"$out/runs.jsonl"
        return
    done
}

# The rates: the issue's latency test, and a load both modes can be given alike (the load tool
# cannot give framed mode the text burst's pace: it checks the SHA-224 of every delivery).
latency_rate=500
same_rate=20000
# Each of 5,000 users joins the 19 rooms #r1 to #r19 besides the lobby: 20 rooms each, the most
# --max-rooms-per-user allows.
twenty_rooms='{name}\n'
for r in $(seq 19); do twenty_rooms+="/join #r$r\n"; done
rooms_rows() {
    for server in relay chatd; do
        measure "$server" burst --clients 50 --messages 2000 --size 64 --timeout 120
    done
    measure chatd burst --clients 1000 --rooms 50 --messages 200 --size 64 --timeout 120 \
        --label 'chatd 50 rooms'
    # The rooms' fan-out (19 receivers a line) in one room, for both servers: what a smaller
    # room costs by itself, apart from what many rooms cost.
    for server in relay chatd; do
        measure "$server" burst --clients 20 --messages 5000 --size 64 --timeout 120 \
            --label "$server 20 in one room"
    done
    measure chatd idle --clients 5000 --hold 2 --timeout 120 --label 'chatd idle lobby'
    measure chatd idle --clients 5000 --hold 2 --timeout 120 --name-template "$twenty_rooms" \
        --label 'chatd idle 20 rooms'
    measure chatd idle --clients 10000 --rooms 1 --hold 2 --timeout 120 --label 'chatd 10k joins'
}
# New connections: each sends one letter of a name, so chatd knows its mode (text) at once and
# greets it without waiting for a silence, and no one joins; 100 at once stays under the
# listener's backlog (more, and dropped SYNs are retried a second later).
connect_flags=(--clients 5000 --connect-batch 100 --connect-send l --timeout 120)
tls_rows() {
    for server in relay chatd tls; do
        measure "$server" burst --clients 50 --messages 2000 --size 64 --timeout 120
    done
    for server in chatd tls; do
        measure "$server" idle --clients 5000 --hold 2 --timeout 120
        measure "$server" connect "${connect_flags[@]}"
    done
}
ws_rows() {
    for server in chatd ws; do
        measure "$server" burst --clients 50 --messages 2000 --size 64 --timeout 120
        measure "$server" idle --clients 5000 --hold 2 --timeout 120
    done
}
metrics_rows() {
    local servers=(relay chatd metrics)
    [ -n "${CHATD_BEFORE:-}" ] && servers+=(before)
    for server in "${servers[@]}"; do
        measure "$server" burst --clients 50 --messages 2000 --size 64 --timeout 120
    done
}
history_rows() {
    for server in memory store; do
        measure "$server" burst --clients 50 --messages 2000 --size 64 --timeout 120
    done
}
irc_rows() {
    for server in chatd irc ngircd; do
        measure "$server" burst --clients 50 --messages 2000 --size 64 --timeout 120
    done
}
for _ in $(seq "$runs"); do
    if [ "$what" = irc ]; then
        irc_rows
        continue
    fi
    if [ "$what" = history ]; then
        history_rows
        continue
    fi
    if [ "$what" = metrics ]; then
        metrics_rows
        continue
    fi
    if [ "$what" = ws ]; then
        ws_rows
        continue
    fi
    if [ "$what" = tls ]; then
        tls_rows
        continue
    fi
    if [ "$what" = rooms ]; then
        rooms_rows
        continue
    fi
    rooms_rows # the relay's and chatd's bursts among them
    for server in relay chatd; do
        measure "$server" rate --clients 100 --rate $latency_rate --duration 10 --size 64 --timeout 60
        measure "$server" idle --clients 5000 --hold 2 --timeout 120
    done
    measure framed burst --clients 50 --messages 2000 --size 64 --timeout 120
    for server in relay chatd framed; do
        measure "$server" rate --clients 50 --rate $same_rate --duration 5 --size 64 --timeout 60
    done
done

median() { # median LABEL SCENARIO JQ-EXPRESSION [RATE]
    jq -s --arg who "$1" --arg scenario "$2" --argjson rate "${4:-null}" \
        "[.[] | select(.label == \$who and .scenario == \$scenario
                       and (\$rate == null or .rate == \$rate)) | $3] | sort
         | if length == 0 then null else .[(length - 1) / 2 | floor] end" "$out/runs.jsonl"
}

ratio() { jq -n --argjson a "$1" --argjson b "$2" 'if $a == null or $b == null then "-" else "\($a / $b * 100 | round / 100)x" end' -r; }
if [ "$what" = irc ]; then
    text_cpu=$(median chatd burst '.server.cpu_us_per_1k_deliveries')
    irc_cpu=$(median "chatd irc" burst '.server.cpu_us_per_1k_deliveries')
    ngircd_cpu=$(median ngircd burst '.server.cpu_us_per_1k_deliveries')
    irc_rate=$(median "chatd irc" burst '.deliveries_per_sec')
    ngircd_rate=$(median ngircd burst '.deliveries_per_sec')
    echo "| IRC figure | median of $runs | target |"
    echo "|---|---|---|"
    printf '| burst (50 x 2,000 x 64 B): CPU us per 1k deliveries, chatd over IRC / text mode | %.0f / %.0f = %s | within 1.3x |\n' \
        "$irc_cpu" "$text_cpu" "$(ratio "$irc_cpu" "$text_cpu")"
    printf '| burst: CPU us per 1k deliveries, ngIRCd / chatd over IRC | %.0f / %.0f = %s | at least 3x |\n' \
        "$ngircd_cpu" "$irc_cpu" "$(ratio "$ngircd_cpu" "$irc_cpu")"
    printf '| burst: deliveries per second, chatd over IRC (ngIRCd) | %.2f M (%.2f M) | |\n' \
        "$(jq -n "$irc_rate / 1e6")" "$(jq -n "$ngircd_rate / 1e6")"
    echo
    echo "chatd ran with: ${chatd_flags[*]}; $(/usr/sbin/ngircd --version 2>/dev/null | head -1 | cut -d' ' -f1-2) as start_ngircd configures it;"
    echo "server on core 0, chatd-load on core 1, medians of $runs."
    echo "Every run: $out/runs.jsonl (JSON) and $out/summaries.txt;" \
        "$(wc -l <"$out/disturbed.jsonl") disturbed runs were repeated: $out/disturbed.jsonl"
    exit 0
fi
if [ "$what" = history ]; then
    memory_cpu=$(median "chatd memory" burst '.server.cpu_us_per_1k_deliveries')
    store_cpu=$(median "chatd store" burst '.server.cpu_us_per_1k_deliveries')
    memory_rate=$(median "chatd memory" burst '.deliveries_per_sec')
    store_rate=$(median "chatd store" burst '.deliveries_per_sec')
    echo "| history store figure | median of $runs | target |"
    echo "|---|---|---|"
    printf '| burst (50 x 2,000 x 64 B): CPU us per 1k deliveries, with the store / memory only | %.0f / %.0f = %s | no slower |\n' \
        "$store_cpu" "$memory_cpu" "$(ratio "$store_cpu" "$memory_cpu")"
    printf '| burst: deliveries per second, with the store / memory only | %.0f / %.0f = %s | |\n' \
        "$store_rate" "$memory_rate" "$(ratio "$store_rate" "$memory_rate")"
    echo
    echo "chatd ran with: ${chatd_flags[*]}; the store's data directory on disk ($out/store-data);"
    echo "server on core 0, chatd-load on core 1, medians of $runs."
    exit 0
fi
if [ "$what" = metrics ]; then
    relay_cpu=$(median "bare relay" burst '.server.cpu_us_per_1k_deliveries')
    plain_cpu=$(median chatd burst '.server.cpu_us_per_1k_deliveries')
    metrics_cpu=$(median "chatd metrics" burst '.server.cpu_us_per_1k_deliveries')
    echo "| metrics figure | median of $runs | target |"
    echo "|---|---|---|"
    printf '| burst (50 x 2,000 x 64 B): CPU us per 1k deliveries, chatd with --metrics-listen (scraped every 50 ms) / bare relay | %.0f / %.0f = %s | within 1.3x |\n' \
        "$metrics_cpu" "$relay_cpu" "$(ratio "$metrics_cpu" "$relay_cpu")"
    printf '| burst: chatd with --metrics-listen / without | %.0f / %.0f = %s | |\n' \
        "$metrics_cpu" "$plain_cpu" "$(ratio "$metrics_cpu" "$plain_cpu")"
    printf '| burst: chatd without --metrics-listen / bare relay | %.0f / %.0f = %s | |\n' \
        "$plain_cpu" "$relay_cpu" "$(ratio "$plain_cpu" "$relay_cpu")"
    if [ -n "${CHATD_BEFORE:-}" ]; then
        before_cpu=$(median "chatd before" burst '.server.cpu_us_per_1k_deliveries')
        printf '| burst: chatd without --metrics-listen / %s | %.0f / %.0f = %s | |\n' \
            "$CHATD_BEFORE" "$plain_cpu" "$before_cpu" "$(ratio "$plain_cpu" "$before_cpu")"
    fi
    echo
    echo "chatd ran with: ${chatd_flags[*]}; server on core 0, chatd-load and the scraper on core 1, medians of $runs."
    echo "Every run: $out/runs.jsonl (JSON) and $out/summaries.txt;" \
        "$(wc -l <"$out/disturbed.jsonl") disturbed runs were repeated: $out/disturbed.jsonl"
    exit 0
fi
if [ "$what" = ws ]; then
    plain_cpu=$(median chatd burst '.server.cpu_us_per_1k_deliveries')
    ws_cpu=$(median "chatd ws" burst '.server.cpu_us_per_1k_deliveries')
    plain_rss=$(median chatd idle '.server.rss_per_connection')
    ws_rss=$(median "chatd ws" idle '.server.rss_per_connection')
    ws_busy=$(median "chatd ws" burst '.tool.busy')
    echo "| WebSocket figure | median of $runs | target |"
    echo "|---|---|---|"
    printf '| burst (50 x 2,000 x 64 B): CPU us per 1k deliveries, chatd over WebSocket / plain text | %.0f / %.0f = %s | within 1.3x |\n' \
        "$ws_cpu" "$plain_cpu" "$(ratio "$ws_cpu" "$plain_cpu")"
    printf '| idle RSS per connection, 5,000 over WebSocket (plain text) | %.2f KiB (%.2f KiB) | under 2 KiB |\n' \
        "$(jq -n "$ws_rss / 1024")" "$(jq -n "$plain_rss / 1024")"
    printf '| chatd-load busy in the WebSocket burst | %.0f%% | |\n' "$(jq -n "$ws_busy * 100")"
    echo
    echo "chatd ran with: ${chatd_flags[*]}; chatd-load --mode ws for WebSocket;"
    echo "server on core 0, chatd-load on core 1, medians of $runs."
    echo "Every run: $out/runs.jsonl (JSON) and $out/summaries.txt;" \
        "$(wc -l <"$out/disturbed.jsonl") disturbed runs were repeated: $out/disturbed.jsonl"
    exit 0
fi
if [ "$what" = tls ]; then
    relay_cpu=$(median "bare relay" burst '.server.cpu_us_per_1k_deliveries')
    plain_cpu=$(median chatd burst '.server.cpu_us_per_1k_deliveries')
    tls_cpu=$(median "chatd TLS" burst '.server.cpu_us_per_1k_deliveries')
    plain_rss=$(median chatd idle '.server.rss_per_connection')
    tls_rss=$(median "chatd TLS" idle '.server.rss_per_connection')
    plain_per_cpu=$(median chatd connect '.server.connections_per_cpu_sec')
    tls_per_cpu=$(median "chatd TLS" connect '.server.connections_per_cpu_sec')
    plain_wall=$(median chatd connect '.connections_per_sec')
    tls_wall=$(median "chatd TLS" connect '.connections_per_sec')
    tls_tool=$(median "chatd TLS" connect '.tool.busy')
    echo "| TLS figure | median of $runs | target |"
    echo "|---|---|---|"
    printf '| burst (50 x 2,000 x 64 B): CPU us per 1k deliveries, chatd over TLS / plain text | %.0f / %.0f = %s | at most 2x |\n' \
        "$tls_cpu" "$plain_cpu" "$(ratio "$tls_cpu" "$plain_cpu")"
    printf '| burst: CPU us per 1k deliveries, chatd plain text / bare relay | %.0f / %.0f = %s | within 1.3x |\n' \
        "$plain_cpu" "$relay_cpu" "$(ratio "$plain_cpu" "$relay_cpu")"
    printf '| idle RSS per connection, 5,000 over TLS (plain text) | %.2f KiB (%.2f KiB) | under 8 KiB |\n' \
        "$(jq -n "$tls_rss / 1024")" "$(jq -n "$plain_rss / 1024")"
    printf '| new TLS connections per second of chatd CPU (plain text) | %.0f (%.0f) | at least 1,000 |\n' \
        "$tls_per_cpu" "$plain_per_cpu"
    printf '| new TLS connections per second, wall time (plain text); chatd-load busy | %.0f (%.0f); %.0f%% | |\n' \
        "$tls_wall" "$plain_wall" "$(jq -n "$tls_tool * 100")"
    echo
    echo "chatd ran with: ${chatd_flags[*]} (and --tls-self-signed for TLS); chatd-load connect ${connect_flags[*]};"
    echo "server on core 0, chatd-load on core 1, medians of $runs."
    echo "Every run: $out/runs.jsonl (JSON) and $out/summaries.txt;" \
        "$(wc -l <"$out/disturbed.jsonl") disturbed runs were repeated: $out/disturbed.jsonl"
    exit 0
fi
relay_cpu=$(median "bare relay" burst '.server.cpu_us_per_1k_deliveries')
one_cpu=$(median chatd burst '.server.cpu_us_per_1k_deliveries')
rooms_cpu=$(median "chatd 50 rooms" burst '.server.cpu_us_per_1k_deliveries')
relay20_cpu=$(median "relay 20 in one room" burst '.server.cpu_us_per_1k_deliveries')
chatd20_cpu=$(median "chatd 20 in one room" burst '.server.cpu_us_per_1k_deliveries')
lobby_rss=$(median "chatd idle lobby" idle '.server.rss_per_connection')
twenty_rss=$(median "chatd idle 20 rooms" idle '.server.rss_per_connection')
joins_cpu=$(median "chatd 10k joins" idle '.server.cpu_ns')
echo "| rooms figure | median of $runs | target |"
echo "|---|---|---|"
printf '| one-room burst (50 x 2,000 x 64 B): CPU us per 1k deliveries, chatd / bare relay | %.0f / %.0f = %s | within 1.3x |\n' \
    "$one_cpu" "$relay_cpu" "$(ratio "$one_cpu" "$relay_cpu")"
printf '| 1,000 users in 50 rooms of 20, burst (200 x 64 B each): CPU us per 1k deliveries, against the one-room burst | %.0f / %.0f = %s | within 1.2x |\n' \
    "$rooms_cpu" "$one_cpu" "$(ratio "$rooms_cpu" "$one_cpu")"
printf '| one room of 20 (20 x 5,000 x 64 B) against one of 50: CPU us per 1k deliveries, bare relay; chatd | %.0f / %.0f = %s; %.0f / %.0f = %s | (the price of a smaller fan-out) |\n' \
    "$relay20_cpu" "$relay_cpu" "$(ratio "$relay20_cpu" "$relay_cpu")" \
    "$chatd20_cpu" "$one_cpu" "$(ratio "$chatd20_cpu" "$one_cpu")"
printf '| 50 rooms of 20 against one room of 20: CPU us per 1k deliveries | %.0f / %.0f = %s | (what many rooms cost, at one fan-out) |\n' \
    "$rooms_cpu" "$chatd20_cpu" "$(ratio "$rooms_cpu" "$chatd20_cpu")"
printf '| idle RSS per connection, 5,000 users in the lobby | %.2f KiB | under 1 KiB |\n' "$(jq -n "$lobby_rss / 1024")"
printf '| idle RSS per connection, 5,000 users in 20 rooms each | %.2f KiB (%.2f KiB more) | under 1 KiB more |\n' \
    "$(jq -n "$twenty_rss / 1024")" "$(jq -n "($twenty_rss - $lobby_rss) / 1024")"
printf '| 10,000 users joining one room (and the lobby): server CPU | %.2f s | under 3 s |\n' "$(jq -n "$joins_cpu / 1e9")"
echo
if [ "$what" = rooms ]; then
    echo "Every run: $out/runs.jsonl (JSON) and $out/summaries.txt;" \
        "$(wc -l <"$out/disturbed.jsonl") disturbed runs were repeated: $out/disturbed.jsonl"
    exit 0
fi
echo "| server | CPU us per 1k deliveries | deliveries/s | idle RSS per connection (5,000 clients) | p99 latency at 500 msg/s x 100 clients | CPU us per 1k at 20,000 msg/s x 50 clients | lost / dropped (all runs) | chatd-load busy (burst) | other processes (burst) |"
echo "|---|---|---|---|---|---|---|---|---|"
for label in "bare relay" chatd "chatd framed"; do
    cpu=$(median "$label" burst '.server.cpu_us_per_1k_deliveries')
    rate=$(median "$label" burst '.deliveries_per_sec')
    rss=$(median "$label" idle '.server.rss_per_connection')
    p99=$(median "$label" rate '.latency.p99_ns' $latency_rate)
    same=$(median "$label" rate '.server.cpu_us_per_1k_deliveries' $same_rate)
    busy=$(median "$label" burst '.tool.busy')
    others=$(median "$label" burst '.machine.other_cores')
    bad=$(jq -rs --arg who "$label" \
        '[.[] | select(.label == $who)] | "\(map(.lost) | add) / \(map(.dropped) | add)"' \
        "$out/runs.jsonl")
    kib() { [ "$1" = null ] && echo - || printf '%.2f KiB' "$(jq -n "$1 / 1024")"; }
    ms() { [ "$1" = null ] && echo - || printf '%.2f ms' "$(jq -n "$1 / 1e6")"; }
    us() { [ "$1" = null ] && echo - || printf '%.0f' "$1"; }
    printf '| %s | %.0f | %.2f M | %s | %s | %s | %s | %.0f%% | %.2f cores |\n' "$label" \
        "$cpu" "$(jq -n "$rate / 1e6")" "$(kib "$rss")" "$(ms "$p99")" "$(us "$same")" \
        "$bad" "$(jq -n "$busy * 100")" "$others"
done
echo
echo "chatd ran with: ${chatd_flags[*]}; server on core 0, chatd-load on core 1, medians of $runs."
echo "Every run: $out/runs.jsonl (JSON) and $out/summaries.txt;" \
    "$(wc -l <"$out/disturbed.jsonl") disturbed runs were repeated: $out/disturbed.jsonl"
