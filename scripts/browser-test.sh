#!/usr/bin/env bash
# Browser test of the web console (tests/browser/*.test.mjs, node's test runner).
#
# Starts target/debug/switchboard (`cargo build` first, a no-op when fresh) on free loopback ports
# with the repository root as working directory so statics/ resolves, publishes the harness's
# test file (target/test-media/av640.flv, encoded here once if missing) with
# `ffmpeg -re -stream_loop -1 -c copy`, and a second server with a JWT secret for the token
# flow. Headless Debian chromium (installed with apt-get if missing) is driven by
# playwright-core. Every process started here is killed on exit. Logs and screenshots go to
# target/artifacts/.
#
# Env: SWITCHBOARD_BIN (a prebuilt binary to test instead), SB_LOG_LEVEL (default info).
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
artifacts=$root/target/artifacts
work=$root/target/browser-test
mkdir -p "$artifacts" "$work"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

if [ ! -x /usr/bin/chromium ]; then
    echo "browser-test: installing chromium"
    $SUDO apt-get update
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
fi
for tool in ffmpeg curl node; do
    command -v "$tool" >/dev/null 2>&1 || { echo "browser-test: $tool not found" >&2; exit 1; }
done

bash scripts/build-web.sh

# A no-op when `make test` has just built it; keeps a direct run from testing a stale binary.
bin=${SWITCHBOARD_BIN:-}
if [ -z "$bin" ]; then
    cargo build --bin switchboard
    bin=target/debug/switchboard
fi

# Same encode as tests/common/mod.rs test_media(), so both reuse one cached file.
media=target/test-media/av640.flv
if [ ! -f "$media" ]; then
    mkdir -p target/test-media
    tmp="$media.tmp-$$"
    ffmpeg -hide_banner -loglevel error -nostdin -y \
        -f lavfi -i testsrc2=size=640x360:rate=30 \
        -f lavfi -i sine=frequency=440:sample_rate=44100 -t 10 \
        -c:v libx264 -preset ultrafast -tune zerolatency -g 30 -keyint_min 30 -sc_threshold 0 \
        -pix_fmt yuv420p -b:v 800k -c:a aac -b:a 96k -f flv "$tmp"
    mv "$tmp" "$media"
fi

pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Eight distinct free ports, all held open at once while being picked.
read -r -a ports < <(node -e '
  const net = require("net");
  const servers = [];
  const pick = () => new Promise((ok, fail) => {
    const s = net.createServer();
    s.on("error", fail);
    s.listen(0, "127.0.0.1", () => { servers.push(s); ok(s.address().port); });
  });
  (async () => {
    const ports = [];
    for (let i = 0; i < 8; i++) ports.push(await pick());
    servers.forEach((s) => s.close());
    console.log(ports.join(" "));
  })();
')

cat > "$work/config.toml" <<'TOML'
[[server]]
appname = "live"
live = true
hls = true
flv = true
api = true
TOML

level=${SB_LOG_LEVEL:-info}
jwt_secret="browser-test-secret-$$-$RANDOM"

start_server() { # name rtmp flv hls api [extra flags...]
    local name=$1 rtmp=$2 flv=$3 hls=$4 api=$5
    shift 5
    "$bin" --config_file="$work/config.toml" \
        --rtmp_addr="127.0.0.1:$rtmp" --httpflv_addr="127.0.0.1:$flv" \
        --hls_addr="127.0.0.1:$hls" --api_addr="127.0.0.1:$api" \
        --level="$level" "$@" >"$artifacts/browser-$name.log" 2>&1 &
    pids+=($!)
    local deadline=$((SECONDS + 20))
    until curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$api/console-config.json"; do
        if [ $SECONDS -ge $deadline ] || ! kill -0 "${pids[-1]}" 2>/dev/null; then
            echo "browser-test: $name server did not start; log:" >&2
            tail -n 40 "$artifacts/browser-$name.log" >&2
            exit 1
        fi
        sleep 0.1
    done
}

start_server server "${ports[0]}" "${ports[1]}" "${ports[2]}" "${ports[3]}"
start_server jwt-server "${ports[4]}" "${ports[5]}" "${ports[6]}" "${ports[7]}" \
    --jwt_secret="$jwt_secret"

room="console$$"
api="http://127.0.0.1:${ports[3]}"
key=$(curl -s --max-time 5 "$api/control/get?room=$room" |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log(JSON.parse(s).data||"")}catch(e){console.log("")}})')
if [ -z "$key" ]; then
    echo "browser-test: could not get a stream key from $api/control/get" >&2
    exit 1
fi

ffmpeg -hide_banner -loglevel error -nostdin -re -stream_loop -1 -i "$media" -c copy \
    -f flv "rtmp://127.0.0.1:${ports[0]}/live/$key" >"$artifacts/browser-ffmpeg.log" 2>&1 &
pids+=($!)

flv_url="http://127.0.0.1:${ports[1]}/live/$room.flv"
deadline=$((SECONDS + 20))
until [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$flv_url" || true)" = 200 ]; do
    if [ $SECONDS -ge $deadline ]; then
        echo "browser-test: $flv_url never went live; ffmpeg log:" >&2
        cat "$artifacts/browser-ffmpeg.log" >&2
        exit 1
    fi
    sleep 0.2
done

export SB_API="$api" SB_ROOM="$room" SB_HLS_PORT="${ports[2]}" SB_FLV_PORT="${ports[1]}"
export SB_RTMP_PORT="${ports[0]}" SB_ARTIFACTS="$artifacts"
export SB_JWT_API="http://127.0.0.1:${ports[7]}" SB_JWT_SECRET="$jwt_secret"

status=0
node --test tests/browser/*.test.mjs || status=$?
if [ $status -ne 0 ]; then
    echo "browser-test: failed; server logs in $artifacts/browser-*.log" >&2
fi
exit $status
