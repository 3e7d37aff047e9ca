#!/usr/bin/env bash
# Renders the index page of sample-media/ in headless Chromium to
# docs/index-page.png (the picture in the README).
# Usage: scripts/screenshot-index.sh   (needs chromium: apt-get install chromium)
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet
port=3000  # the default address, as `cargo run --release` shows it
if (exec 3<>"/dev/tcp/127.0.0.1/${port}") 2>/dev/null; then
  echo "port ${port} is in use: stop what listens there first" >&2; exit 1
fi
MEDIA_ADDR="127.0.0.1:${port}" target/release/media-streamer >/dev/null &
server=$!
profile=$(mktemp -d)
trap 'kill "$server" 2>/dev/null; rm -rf "$profile"' EXIT
for _ in $(seq 50); do
  if (exec 3<>"/dev/tcp/127.0.0.1/${port}") 2>/dev/null; then break; fi
  sleep 0.1
done

chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --mute-audio --hide-scrollbars --user-data-dir="$profile" \
  --window-size=1280,1100 --virtual-time-budget=10000 \
  --screenshot="$PWD/docs/index-page.png" "http://127.0.0.1:${port}/" 2>/dev/null
echo "wrote docs/index-page.png"
