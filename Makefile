# Switchboard — build, run and test entry points.
#
#   make build    debug build of the whole workspace
#   make run      release build, then run with ./config.toml
#   make test     deps -> fmt check -> clippy -> unit + integration tests
#   make e2e      integration tests only (tests/*.rs)
#   make deps     install missing external tools (ffmpeg, rtmpdump, GStreamer, redis)
#   make bench    run scripts/bench.sh if present
#   make web      fetch the console's player libraries (npm) into statics/vendor/
#   make browser-test  the console in headless Chromium (playwright-core)
#   make fmt / clippy / clean
#
# The e2e tests spawn ffmpeg/ffprobe/gst-launch/rtmpdump next to the server.
# Cargo runs test binaries one at a time; --test-threads caps the tests
# running at once inside a binary, and SB_E2E_JOBS caps the e2e tests that
# hold a server at once (see tests/common/mod.rs). Both default to 2 so the
# suite fits a 2-core box.

SHELL        := /bin/bash
CARGO        ?= cargo
TEST_THREADS ?= 2
SB_E2E_JOBS  ?= 2
export SB_E2E_JOBS

.PHONY: all build release run test e2e deps fmt fmt-check clippy bench clean web browser-test

all: build

build:
	$(CARGO) build --workspace

release:
	$(CARGO) build --release

run: release web
	./target/release/switchboard --config_file=config.toml

test:
	$(MAKE) --no-print-directory deps
	$(MAKE) --no-print-directory web
	$(MAKE) --no-print-directory fmt-check
	$(MAKE) --no-print-directory clippy
	$(CARGO) test --workspace -- --test-threads=$(TEST_THREADS)
	$(MAKE) --no-print-directory browser-test

# The console's player libraries come from npm at pinned versions (package-lock.json) and are
# copied into statics/vendor/; nothing is loaded from a CDN at run time.
web:
	bash scripts/build-web.sh

browser-test: build web
	bash scripts/browser-test.sh

e2e:
	$(CARGO) test --workspace --test '*' -- --test-threads=$(TEST_THREADS)

deps:
	./scripts/deps.sh

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

bench:
	@if [ -f scripts/bench.sh ]; then bash scripts/bench.sh; \
	else echo "bench: scripts/bench.sh not present; nothing to run"; fi

clean:
	$(CARGO) clean
