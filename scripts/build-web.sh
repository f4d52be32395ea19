#!/usr/bin/env bash
# Puts the console's player libraries into statics/vendor/ from the pinned npm packages
# (package.json + package-lock.json); nothing is loaded from a CDN at run time.
#
# `npm ci` runs only when node_modules is missing or older than package-lock.json, so the
# step is cheap on every `make run`/`make test`. Needs Node >= 20 and npm.
set -euo pipefail

cd "$(dirname "$0")/.."

if ! command -v npm >/dev/null 2>&1; then
    echo "build-web: npm not found; install Node.js 20+ (e.g. apt-get install nodejs npm)" >&2
    exit 1
fi

# npm writes node_modules/.package-lock.json on every install; it is older than the lock
# file exactly when the lock changed since.
stamp=node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
    echo "build-web: npm ci"
    npm ci --no-audit --no-fund --loglevel=error
fi

vendor=statics/vendor
mkdir -p "$vendor"

copy() { # src dest: copy only when changed, so mtimes (and ETags) stay put
    if ! cmp -s "$1" "$2"; then
        cp "$1" "$2.tmp.$$"
        mv "$2.tmp.$$" "$2"
        echo "build-web: $2"
    fi
}

# mpegts.js ships its production (minified) bundle as dist/mpegts.js.
copy node_modules/mpegts.js/dist/mpegts.js "$vendor/mpegts.js"
copy node_modules/mpegts.js/LICENSE "$vendor/mpegts.js.LICENSE"
copy node_modules/hls.js/dist/hls.min.js "$vendor/hls.min.js"
copy node_modules/hls.js/LICENSE "$vendor/hls.js.LICENSE"

node -e '
  const v = (p) => require("./node_modules/" + p + "/package.json").version;
  const out = { "mpegts.js": v("mpegts.js"), "hls.js": v("hls.js") };
  const fs = require("fs");
  const file = "statics/vendor/versions.json";
  const text = JSON.stringify(out, null, 2) + "\n";
  if (!fs.existsSync(file) || fs.readFileSync(file, "utf8") !== text) fs.writeFileSync(file, text);
'
echo "build-web: statics/vendor/ ready (mpegts.js, hls.js)"
