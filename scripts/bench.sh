#!/usr/bin/env bash
# `make bench`: Switchboard and nginx-rtmp side by side under identical load, in one run.
#
# Prints the figures and writes BENCHMARKS.md at the repo root (figures, Switchboard/nginx
# ratios, the machine, the commands). Benchmarks are not tests: nothing here fails on a slow
# figure; the script fails only if it cannot measure.
#
# Both servers get the same publisher (ffmpeg -re -stream_loop -1 -c copy of the cached test
# media) and the same load client (benches/rtmp_load.rs: many rml_rtmp players in one tokio
# process). Each server runs alone, on free loopback ports, from config files in a temp dir;
# every process started here is stopped on exit.
#
# Knobs (environment):
#   SB_BENCH_PLAYERS  fan-out sizes                        (default "50 200")
#   SB_BENCH_WINDOW   seconds per measurement window       (default 10)
#   SB_BENCH_CYCLES   viewer connect/disconnect cycles      (default 500)
#   SB_BENCH_OUT      report file                           (default BENCHMARKS.md)
#   SB_BENCH_KEEP     keep the temp dir (configs, server logs) when set
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PLAYERS="${SB_BENCH_PLAYERS:-50 200}"
WINDOW="${SB_BENCH_WINDOW:-10}"
CYCLES="${SB_BENCH_CYCLES:-500}"
OUT="${SB_BENCH_OUT:-$ROOT/BENCHMARKS.md}"
WARMUP=3
TTFF_JOINS=30
TTFF_SPACING_MS=137   # not a divisor of the 1 s GOP, so joins land all over it
LATENCY_PLAYERS=10
CHURN_CONCURRENCY=50
STARTED_AT="$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
T_START=$SECONDS

log() { printf '\033[1mbench:\033[0m %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------------------------------------
# Processes: everything started here is in PIDS and stopped on exit.

PIDS=()
TMP=""
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 1 30); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
    if [ -n "$TMP" ] && [ -d "$TMP" ]; then
        if [ -n "${SB_BENCH_KEEP:-}" ]; then
            log "kept $TMP"
        else
            rm -rf "$TMP"
        fi
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

forget_pid() {
    local keep=() p
    for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

stop_pid() {
    local pid="$1"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    forget_pid "$pid"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

USED_PORTS=" "
free_port() {
    local port
    for _ in $(seq 1 200); do
        port=$((20000 + RANDOM % 40000))
        case "$USED_PORTS" in *" $port "*) continue ;; esac
        if ! port_open "$port"; then
            USED_PORTS+="$port "
            echo "$port"
            return 0
        fi
    done
    die "no free loopback port found"
}

wait_port() {
    local port="$1" pid="$2" what="$3"
    for _ in $(seq 1 200); do
        port_open "$port" && return 0
        kill -0 "$pid" 2>/dev/null || die "$what exited during startup (see its log in $TMP)"
        sleep 0.1
    done
    die "$what did not listen on $port within 20 s"
}

# ---------------------------------------------------------------------------------------------
# Prerequisites

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
NGINX_MODULE=""
find_rtmp_module() {
    NGINX_MODULE="$(dpkg -L libnginx-mod-rtmp 2>/dev/null | grep '/ngx_rtmp_module\.so$' | head -n1 || true)"
    [ -n "$NGINX_MODULE" ] || NGINX_MODULE="$(ls /usr/lib/nginx/modules/ngx_rtmp_module.so 2>/dev/null || true)"
}
find_rtmp_module
missing=()
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
command -v nginx >/dev/null 2>&1 || missing+=(nginx)
[ -n "$NGINX_MODULE" ] || missing+=(libnginx-mod-rtmp)
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
    find_rtmp_module
    [ -n "$NGINX_MODULE" ] || die "ngx_rtmp_module.so not found after installing libnginx-mod-rtmp"
fi
# 200+ sockets in the client, as many in the server.
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
MEDIA="$TARGET_DIR/test-media/av640.flv"
if [ ! -f "$MEDIA" ]; then
    # The same encode as tests/common/mod.rs (test_media): 10 s 640x360@30, 1 s GOP, no
    # B-frames, + 44.1 kHz AAC. Temp name + rename, as the tests do.
    log "encoding test media $MEDIA"
    mkdir -p "$(dirname "$MEDIA")"
    tmp_media="$MEDIA.tmp-bench-$$"
    ffmpeg -hide_banner -loglevel error -nostdin -y \
        -f lavfi -i testsrc2=size=640x360:rate=30 \
        -f lavfi -i sine=frequency=440:sample_rate=44100 \
        -t 10 -c:v libx264 -preset ultrafast -tune zerolatency \
        -g 30 -keyint_min 30 -sc_threshold 0 -pix_fmt yuv420p -b:v 800k \
        -c:a aac -b:a 96k -f flv "$tmp_media"
    mv "$tmp_media" "$MEDIA"
fi

log "building (cargo build --release --bin switchboard --bench rtmp_load)"
BUILD_JSON="$(cargo build --release --bin switchboard --bench rtmp_load \
    --message-format=json-render-diagnostics)" || die "cargo build failed"
SB_BIN="$(grep -o '"executable":"[^"]*/switchboard"' <<<"$BUILD_JSON" | tail -n1 | cut -d'"' -f4)"
LOAD="$(grep -o '"executable":"[^"]*/rtmp_load-[0-9a-f]*"' <<<"$BUILD_JSON" | tail -n1 | cut -d'"' -f4)"
[ -x "$SB_BIN" ] || die "switchboard binary not found in cargo's output"
[ -x "$LOAD" ] || die "rtmp_load binary not found in cargo's output"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/sb-bench.XXXXXX")"

# ---------------------------------------------------------------------------------------------
# Servers

SERVER_PID=""
RTMP_PORT=""
FLV_PORT=""

start_switchboard() {
    local dir="$TMP/switchboard"
    mkdir -p "$dir"
    RTMP_PORT="$(free_port)"
    FLV_PORT="$(free_port)"
    # HLS off: nginx-rtmp runs without it, and the HLS figure has its own script.
    cat >"$dir/config.toml" <<EOF
[[server]]
appname = "live"
live = true
hls = false
flv = true
api = false
EOF
    SB_CMD=("$SB_BIN" "--config_file=$dir/config.toml" "--rtmp_addr=127.0.0.1:$RTMP_PORT"
        "--httpflv_addr=127.0.0.1:$FLV_PORT" "--hls_addr=" "--api_addr=" "--level=warn"
        "--rtmp_noauth")
    "${SB_CMD[@]}" >"$dir/server.log" 2>&1 &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    wait_port "$RTMP_PORT" "$SERVER_PID" switchboard
    wait_port "$FLV_PORT" "$SERVER_PID" switchboard
}

start_nginx() {
    local dir="$TMP/nginx"
    mkdir -p "$dir"
    RTMP_PORT="$(free_port)"
    FLV_PORT=""
    # worker_connections: the default 512 would cap the fan-out, not the server's cost.
    cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
error_log $dir/err.log;
pid $dir/nginx.pid;
load_module $NGINX_MODULE;
events { worker_connections 4096; }
rtmp {
    server {
        listen 127.0.0.1:$RTMP_PORT;
        chunk_size 4096;
        application live {
            live on;
        }
    }
}
EOF
    NGINX_CMD=(nginx -c "$dir/nginx.conf" -p "$dir/" -e "$dir/err.log")
    "${NGINX_CMD[@]}" >"$dir/stdout.log" 2>&1 &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    wait_port "$RTMP_PORT" "$SERVER_PID" nginx
}

PUBLISHER_PID=""
start_publisher() {
    local url="$1" log_file="$2"
    ffmpeg -hide_banner -loglevel error -nostdin -re -stream_loop -1 -i "$MEDIA" \
        -c copy -f flv "$url" >"$log_file" 2>&1 &
    PUBLISHER_PID=$!
    PIDS+=("$PUBLISHER_PID")
}

# ---------------------------------------------------------------------------------------------
# Results: R[<server>.<test>.<key>] = value

declare -A R
COMMANDS=()

# client <server> <test> <args...>: runs the load client, stores its key=value lines.
client() {
    local server="$1" test="$2"
    shift 2
    local out="$TMP/$server.$test.out" k v
    [ "$test" = ready ] || COMMANDS+=("rtmp_load $*")
    # In the background so that a signal's trap runs (and stops it) at once.
    "$LOAD" "$@" >"$out" 2>"$TMP/$server.$test.err" &
    local cpid=$! status=0
    PIDS+=("$cpid")
    wait "$cpid" || status=$?
    forget_pid "$cpid"
    if [ "$status" -ne 0 ]; then
        log "$server $test: load client failed: $(tail -n3 "$TMP/$server.$test.err")"
        return 1
    fi
    while IFS='=' read -r k v; do
        [ -n "$k" ] && R["$server.$test.$k"]="$v"
    done <"$out"
    grep -v '^fanout: .* started' "$TMP/$server.$test.err" >&2 || true
    printf '  %-22s %s\n' "$server $test" "$(tr '\n' ' ' <"$out")" >&2
}

rss_of() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo ""; }

bench_server() {
    local server="$1" url
    log "=== $server ==="
    if [ "$server" = switchboard ]; then start_switchboard; else start_nginx; fi
    url="rtmp://127.0.0.1:$RTMP_PORT/live/bench"
    start_publisher "$url" "$TMP/$server.publisher.log"
    # Live = a player gets a keyframe (waits for the publisher on both servers).
    local tries=0
    until client "$server" ready ttff --url "$url" --joins 1 2>/dev/null &&
        [ "${R[$server.ready.ok]:-0}" = 1 ]; do
        tries=$((tries + 1))
        [ "$tries" -lt 3 ] || die "$server: stream never became playable (publisher log: $(cat "$TMP/$server.publisher.log"))"
    done
    sleep 1
    R["$server.idle.rss_kb"]="$(rss_of "$SERVER_PID")"

    local n
    for n in $PLAYERS; do
        client "$server" "fanout$n" fanout --url "$url" --players "$n" --warmup "$WARMUP" \
            --window "$WINDOW" --pid "$SERVER_PID"
        sleep 1
    done
    client "$server" ttff_rtmp ttff --url "$url" --joins "$TTFF_JOINS" --spacing-ms "$TTFF_SPACING_MS"
    if [ -n "$FLV_PORT" ]; then
        client "$server" ttff_flv ttff --url "http://127.0.0.1:$FLV_PORT/live/bench.flv" \
            --joins "$TTFF_JOINS" --spacing-ms "$TTFF_SPACING_MS"
    fi
    client "$server" churn churn --url "$url" --cycles "$CYCLES" \
        --concurrency "$CHURN_CONCURRENCY" --pid "$SERVER_PID"
    stop_pid "$PUBLISHER_PID"

    client "$server" latency latency --publish "rtmp://127.0.0.1:$RTMP_PORT/live/lat" \
        --play "rtmp://127.0.0.1:$RTMP_PORT/live/lat" --media "$MEDIA" \
        --players "$LATENCY_PLAYERS" --warmup "$WARMUP" --window "$WINDOW" --pid "$SERVER_PID"
    sleep 1
    client "$server" latency_load latency --publish "rtmp://127.0.0.1:$RTMP_PORT/live/lat2" \
        --play "rtmp://127.0.0.1:$RTMP_PORT/live/lat2" --media "$MEDIA" \
        --players "$LAST_N" --warmup "$WARMUP" --window "$WINDOW" --pid "$SERVER_PID"
    kill -0 "$SERVER_PID" 2>/dev/null || die "$server died during the benchmark"
    stop_pid "$SERVER_PID"
}

LAST_N="${PLAYERS##* }"
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
bench_server switchboard
bench_server nginx
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"

# The HLS engineer's script, when present: `key=value` figures on stdout, a summary on stderr.
HLS_OUT=""
HLS_SUMMARY=""
HLS_STATUS=""
if [ -f "$ROOT/scripts/bench-hls.sh" ]; then
    log "=== HLS (scripts/bench-hls.sh) ==="
    if HLS_OUT="$(timeout 180 bash "$ROOT/scripts/bench-hls.sh" 2>"$TMP/hls.err")"; then
        HLS_STATUS="ok"
    else
        HLS_STATUS="failed (exit $?)"
    fi
    HLS_SUMMARY="$(grep -v '^\s*$' "$TMP/hls.err" | tail -n 5 || true)"
    printf '%s\n' "$HLS_SUMMARY" "$HLS_OUT" >&2
fi

# ---------------------------------------------------------------------------------------------
# Report

val() { echo "${R[$1]:-}"; }
num() { [[ "$1" =~ ^-?[0-9]+(\.[0-9]+)?$ ]]; }
ratio() {
    if num "$1" && num "$2" && awk -v b="$2" 'BEGIN { exit !(b > 0) }'; then
        awk -v a="$1" -v b="$2" 'BEGIN { r = a / b; if (r != 0 && r < 0.1) printf "%.3f", r; else printf "%.2f", r }'
    else
        echo "–"
    fi
}
mib() { num "$1" && awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }' || echo "–"; }
or_dash() { [ -n "$1" ] && echo "$1" || echo "–"; }

ROWS=()
# row <metric> <switchboard> <nginx> <better: lower|higher|–>
row() {
    local sb ng
    sb="$(or_dash "$2")"
    ng="$(or_dash "$3")"
    ROWS+=("| $1 | $sb | $ng | $(ratio "$2" "$3") | $4 |")
}
players_ok() {
    local ok total
    ok="$(val "$1.$2.ok90")"
    total="$(val "$1.$2.players")"
    [ -n "$ok" ] && echo "$ok/$total" || echo ""
}

for n in $PLAYERS; do
    t="fanout$n"
    row "Fan-out $n players: server CPU, % of one core" "$(val switchboard.$t.server_cpu_pct)" "$(val nginx.$t.server_cpu_pct)" lower
    row "Fan-out $n players: server CPU ms per GB delivered" "$(val switchboard.$t.server_cpu_ms_per_gb)" "$(val nginx.$t.server_cpu_ms_per_gb)" lower
    row "Fan-out $n players: server RSS, MiB" "$(mib "$(val switchboard.$t.server_rss_kb)")" "$(mib "$(val nginx.$t.server_rss_kb)")" lower
    row "Fan-out $n players: players with ≥ 90 % of expected frames" "$(players_ok switchboard $t)" "$(players_ok nginx $t)" higher
    row "Fan-out $n players: players that got data" "$(val switchboard.$t.got_data)" "$(val nginx.$t.got_data)" higher
    row "Fan-out $n players: delivered, Mbit/s" "$(val switchboard.$t.delivered_mbps)" "$(val nginx.$t.delivered_mbps)" "–"
done
last_n="$LAST_N"
per_viewer() {
    local idle rss
    idle="$(val "$1.idle.rss_kb")"
    rss="$(val "$1.fanout$last_n.server_rss_kb")"
    num "$idle" && num "$rss" && awk -v a="$rss" -v b="$idle" -v n="$last_n" 'BEGIN { printf "%.1f", (a - b) / n }' || echo ""
}
row "Server RSS idle (publisher only), MiB" "$(mib "$(val switchboard.idle.rss_kb)")" "$(mib "$(val nginx.idle.rss_kb)")" lower
row "Memory per added viewer at $last_n, KiB" "$(per_viewer switchboard)" "$(per_viewer nginx)" lower
row "Time to first keyframe, RTMP, median ms" "$(val switchboard.ttff_rtmp.keyframe_ms_median)" "$(val nginx.ttff_rtmp.keyframe_ms_median)" lower
row "Time to first keyframe, RTMP, p95 ms" "$(val switchboard.ttff_rtmp.keyframe_ms_p95)" "$(val nginx.ttff_rtmp.keyframe_ms_p95)" lower
row "Time to first video tag, HTTP-FLV, median ms" "$(val switchboard.ttff_flv.video_ms_median)" "n/a" lower
row "Time to first video tag, HTTP-FLV, p95 ms" "$(val switchboard.ttff_flv.video_ms_p95)" "n/a" lower
row "Time to first keyframe, HTTP-FLV, median ms" "$(val switchboard.ttff_flv.keyframe_ms_median)" "n/a" lower
for t in latency latency_load; do
    if [ "$t" = latency ]; then np="$LATENCY_PLAYERS"; else np="$LAST_N"; fi
    for q in median p95 p99 max; do
        row "Publisher → player delay, $np players, $q ms" "$(val switchboard.$t.delay_ms_$q)" "$(val nginx.$t.delay_ms_$q)" lower
    done
done
row "RSS before $CYCLES viewer cycles, MiB" "$(mib "$(val switchboard.churn.rss_before_kb)")" "$(mib "$(val nginx.churn.rss_before_kb)")" lower
row "RSS after $CYCLES viewer cycles (settled), MiB" "$(mib "$(val switchboard.churn.rss_settled_kb)")" "$(mib "$(val nginx.churn.rss_settled_kb)")" lower
row "RSS growth over $CYCLES cycles, KiB" "$(val switchboard.churn.rss_growth_kb)" "$(val nginx.churn.rss_growth_kb)" lower
row "Open fds before → after the cycles" "$(val switchboard.churn.fds_before) → $(val switchboard.churn.fds_after)" "$(val nginx.churn.fds_before) → $(val nginx.churn.fds_after)" "–"
row "Failed viewer cycles" "$(val switchboard.churn.failed)" "$(val nginx.churn.failed)" lower
while IFS='=' read -r k v; do
    [ -n "$k" ] && [ -n "$v" ] && row "HLS (bench-hls.sh): $k" "$v" "n/a" "–"
done <<<"$HLS_OUT"
row "Load client CPU during fan-out $last_n, % of one core" "$(val switchboard.fanout$last_n.client_cpu_pct)" "$(val nginx.fanout$last_n.client_cpu_pct)" "–"
row "Server threads" "$(val switchboard.fanout$last_n.server_threads)" "$(val nginx.fanout$last_n.server_threads)" "–"

NPROC="$(nproc)"
CPU_MODEL="$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
MEM_GIB="$(awk '/^MemTotal:/ {printf "%.0f", $2 / 1048576}' /proc/meminfo)"
GIT_REV="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
git diff --quiet HEAD 2>/dev/null || GIT_REV="$GIT_REV + uncommitted changes"
NGINX_VERSION="$(nginx -v 2>&1 | sed 's/^nginx version: //')"
RTMP_MODULE_VERSION="$(dpkg-query -W -f='${Version}' libnginx-mod-rtmp 2>/dev/null || echo unknown)"
FFMPEG_VERSION="$(ffmpeg -version 2>/dev/null | awk 'NR == 1 {print $3}')"
RUSTC_VERSION="$(rustc -V 2>/dev/null || echo unknown)"
ELAPSED=$((SECONDS - T_START))

nginx_saturated=""
for n in $PLAYERS; do
    c="$(val nginx.fanout$n.server_cpu_pct)"
    if num "$c" && awk -v c="$c" 'BEGIN { exit !(c >= 90) }'; then
        nginx_saturated+=" $n"
    fi
done

{
    echo "# Benchmarks"
    echo
    echo "Switchboard against nginx-rtmp, measured side by side in the same run by \`make bench\`"
    echo "(\`bash scripts/bench.sh\`). The machines are shared and noisy: read the **ratios**"
    echo "(Switchboard / nginx-rtmp; below 1 means Switchboard needs less), not the absolute figures."
    echo
    echo "- Date: $STARTED_AT; run took ${ELAPSED} s"
    echo "- Machine: $NPROC cores, $CPU_MODEL, $MEM_GIB GiB; load average $LOAD_BEFORE before, $LOAD_AFTER after"
    echo "- Revision: $GIT_REV; $RUSTC_VERSION (release build)"
    echo "- nginx $NGINX_VERSION with libnginx-mod-rtmp $RTMP_MODULE_VERSION; ffmpeg $FFMPEG_VERSION"
    echo "- Command: \`make bench\` (knobs: SB_BENCH_PLAYERS=\"$PLAYERS\" SB_BENCH_WINDOW=$WINDOW SB_BENCH_CYCLES=$CYCLES)"
    echo
    echo "| Metric | Switchboard | nginx-rtmp | Ratio | Better |"
    echo "|---|---:|---:|---:|---|"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "## How it was measured"
    echo
    echo "- Media: \`$(realpath --relative-to="$ROOT" "$MEDIA" 2>/dev/null || echo "$MEDIA")\`, 10 s of 640x360@30 H.264"
    echo "  (1 s GOP, no B-frames, ~800 kbit/s) + AAC 96 kbit/s, encoded once like \`tests/common/mod.rs\`."
    echo "- Publisher for fan-out, join times and the cycles: \`ffmpeg -re -stream_loop -1 -i <media> -c copy -f flv rtmp://127.0.0.1:<port>/live/bench\`."
    echo "- Players: \`benches/rtmp_load.rs\` (rml_rtmp \`ClientSession\` per connection, all in one"
    echo "  single-threaded tokio process), the same binary and arguments against both servers."
    echo "- Fan-out: N players join, ${WARMUP} s warm-up, then a ${WINDOW} s window over which the server's"
    echo "  utime+stime (/proc/<pid>/stat) and RSS (VmRSS) are read, and each player's video frames"
    echo "  are counted (expected: 30 per second). \"CPU % of one core\" sums all the server's threads."
    echo "- Time to first keyframe: $TTFF_JOINS joins, one every $TTFF_SPACING_MS ms, from TCP connect to the first"
    echo "  video keyframe. Switchboard replays its GOP cache; nginx-rtmp has none and sends nothing"
    echo "  of the video until the next keyframe, so with a 1 s GOP it averages ~500 ms by design."
    echo "- Publisher → player delay: the load client publishes the media itself (rml_rtmp,"
    echo "  tags paced at real time) and $LATENCY_PLAYERS players in the same process match each video frame"
    echo "  by content hash to the moment the publisher wrote it; frames written in the ${WINDOW} s window count."
    echo "  Run with $LATENCY_PLAYERS and with $LAST_N players; the delay includes the load client's own time to"
    echo "  read the other players' sockets first (the same for both servers)."
    echo "- Viewer cycles: $CYCLES joins, $CHURN_CONCURRENCY at a time, each playing 100 ms past its first keyframe,"
    echo "  then leaving (half with deleteStream, half by dropping the socket); RSS and open fds"
    echo "  are read after 50 warm-up cycles and 3 s after the last one."
    echo
    echo "Per-core fairness: nginx-rtmp runs one worker process (\`worker_processes 1; master_process off\`)"
    echo "and so can use at most one core. Switchboard runs one arbiter thread per core ($NPROC here) plus"
    echo "its HTTP workers. The CPU figures are total CPU time over wall time, i.e. the work each"
    echo "server spent for the same delivered stream; that comparison is fair whatever the thread count"
    echo "as long as nginx is not saturated (≥ 90 % of its one core)."
    if [ -n "$nginx_saturated" ]; then
        echo "**In this run nginx was saturated at N =$nginx_saturated**, so its figures there are capped:"
        echo "compare the frames delivered too."
    else
        echo "In this run nginx was not saturated at any N."
    fi
    echo
    echo "Switchboard ran with \`hls = false\` in its app config (nginx-rtmp has no HLS here either) and"
    echo "\`--level=warn\`. nginx's config is the brief's plus \`worker_connections 4096\` (its default 512"
    echo "would cap the fan-out, not measure it)."
    echo
    echo "### Switchboard configuration"
    echo
    echo '```toml'
    cat "$TMP/switchboard/config.toml"
    echo '```'
    echo
    echo "### nginx-rtmp configuration"
    echo
    echo '```nginx'
    sed "s#$TMP#<tmp>#g" "$TMP/nginx/nginx.conf"
    echo '```'
    echo
    echo "### Commands (ports and paths of this run)"
    echo
    echo '```sh'
    echo "# servers (one at a time)"
    printf '%s\n' "$(printf '%q ' "${SB_CMD[@]}" | sed "s#$TMP#<tmp>#g; s#$ROOT/##g")"
    printf '%s\n' "$(printf '%q ' "${NGINX_CMD[@]}" | sed "s#$TMP#<tmp>#g")"
    echo "# publisher (fan-out, join times, cycles)"
    echo "ffmpeg -hide_banner -loglevel error -nostdin -re -stream_loop -1 -i $(realpath --relative-to="$ROOT" "$MEDIA" 2>/dev/null || echo "$MEDIA") -c copy -f flv rtmp://127.0.0.1:<port>/live/bench"
    echo "# load client; rtmp_load = cargo bench --bench rtmp_load -- (built with --release)"
    printf '%s\n' "${COMMANDS[@]}" | sed -E "s#$TMP#<tmp>#g; s#$ROOT/##g; s#--pid [0-9]+#--pid <server pid>#"
    if [ -n "$HLS_STATUS" ]; then
        echo "# HLS ($HLS_STATUS)"
        echo "bash scripts/bench-hls.sh"
    fi
    echo '```'
    if [ -n "$HLS_SUMMARY" ]; then
        echo
        echo "HLS summary from scripts/bench-hls.sh:"
        echo
        echo '```'
        printf '%s\n' "$HLS_SUMMARY"
        echo '```'
    fi
} >"$OUT"

echo
echo "| Metric | Switchboard | nginx-rtmp | Ratio | Better |"
echo "|---|---:|---:|---:|---|"
printf '%s\n' "${ROWS[@]}"
echo
log "wrote $(realpath --relative-to="$ROOT" "$OUT" 2>/dev/null || echo "$OUT") in ${ELAPSED} s"
