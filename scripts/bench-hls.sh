#!/usr/bin/env bash
# HLS segment latency: time from the frame that completes a segment reaching the server to the
# playlist listing that segment (benches/hls_latency.rs, release build). Prints the figure on
# stderr and `key=value` lines on stdout. Not a test: it fails only if it cannot measure.
#
# Knobs: SB_BENCH_HLS_SECS  seconds of media published (default 15; one segment per second)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec cargo bench --quiet --bench hls_latency
