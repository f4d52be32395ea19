#!/usr/bin/env bash
# Installs the external tools Switchboard's tests need, only if missing.
# apt-get update runs at most once, and only when something is missing.
# sudo is used only when not running as root.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

pkgs=()
need_cmd() { command -v "$1" >/dev/null 2>&1 || pkgs+=("$2"); }
need_gst() { gst-inspect-1.0 "$1" >/dev/null 2>&1 || pkgs+=("$2"); }

need_cmd ffmpeg ffmpeg
need_cmd ffprobe ffmpeg
need_cmd rtmpdump rtmpdump
need_cmd gst-launch-1.0 gstreamer1.0-tools
need_cmd redis-server redis-server
need_cmd redis-cli redis-tools
need_cmd openssl openssl          # signs JWTs in the API tests independently of the server
need_cmd python3 python3          # a client with a tiny receive buffer (slow-viewer test)
need_cmd nginx nginx              # foreign RTMP server for relay tests and benchmarks
ls /usr/lib/nginx/modules/ngx_rtmp_module.so >/dev/null 2>&1 || pkgs+=(libnginx-mod-rtmp)
need_cmd chromium chromium        # browser tests (driven by playwright-core)
need_cmd node nodejs
need_cmd npm npm
if command -v gst-inspect-1.0 >/dev/null 2>&1; then
    need_gst rtmp2sink gstreamer1.0-plugins-bad
    need_gst h264parse gstreamer1.0-plugins-bad
    need_gst flvmux gstreamer1.0-plugins-good
    need_gst flvdemux gstreamer1.0-plugins-good
    need_gst aacparse gstreamer1.0-plugins-good
else
    pkgs+=(gstreamer1.0-tools gstreamer1.0-plugins-bad gstreamer1.0-plugins-good)
fi

if [ "${#pkgs[@]}" -gt 0 ]; then
    mapfile -t pkgs < <(printf '%s\n' "${pkgs[@]}" | sort -u)
    echo "deps: installing ${pkgs[*]}"
    $SUDO apt-get update
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${pkgs[@]}"
else
    echo "deps: all present (ffmpeg, rtmpdump, GStreamer, redis, openssl, nginx-rtmp, chromium, node)"
fi

# Rust lint/format components used by `make test`.
if command -v rustup >/dev/null 2>&1; then
    cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
    cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
fi
