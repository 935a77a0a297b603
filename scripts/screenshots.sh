#!/usr/bin/env bash
# Renders every page sesame shows people — for the default look (tenant
# `demo`) and a branded tenant (`acme`), in English and French, at 390×844
# and 1280×800, light and dark — in headless Chromium, saves PNGs under
# target/screenshots/, and runs axe-core on each: any serious or critical
# violation fails the script. Not part of CI.
#
#   scripts/screenshots.sh            # builds sesame (debug) first
#   SESAME_BIN=target/release/sesame scripts/screenshots.sh
#
# Needs Debian's chromium (installed with apt-get when missing) and node;
# playwright-core and axe-core are installed from npm into
# target/screenshots/node. No browser is ever downloaded.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
out=$root/target/screenshots
node_dir=$out/node
mkdir -p "$out" "$node_dir"

if [ ! -x /usr/bin/chromium ]; then
    apt-get install -y chromium
fi
if [ ! -d "$node_dir/node_modules/playwright-core" ] || [ ! -d "$node_dir/node_modules/axe-core" ]; then
    (cd "$node_dir" && [ -f package.json ] || echo '{"private":true}' > package.json
     cd "$node_dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund playwright-core@1 axe-core@4)
fi

bin=${SESAME_BIN:-}
if [ -z "$bin" ]; then
    (cd "$root" && cargo build --bin sesame)
    bin=$target/debug/sesame
fi

work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cp -r "$root/examples/branding" "$work/"
# The example as written, on a free port and a throwaway database.
SESAME_LISTEN=127.0.0.1:$port
sed -e "s|127.0.0.1:8080|$SESAME_LISTEN|g" \
    -e "s|sqlite://data/branding.db|sqlite://$work/sesame.db|" \
    "$root/examples/branding.yaml" > "$work/branding.yaml"
"$bin" serve -c "$work/branding.yaml" > "$work/stdout.log" 2> "$work/stderr.log" &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
    grep -q "sesame listening on" "$work/stdout.log" 2>/dev/null && break
    sleep 0.2
done
grep -q "sesame listening on" "$work/stdout.log" || { cat "$work/stderr.log"; exit 1; }

NODE_DIR=$node_dir BASE=http://$SESAME_LISTEN OUT=$out DB=$work/sesame.db \
    node "$root/scripts/screenshots/shoot.cjs"
