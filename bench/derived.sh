#!/usr/bin/env bash
# A stored derivative against a plain file of the same size: the local server
# with MEDIA_DERIVED_DIR, one derivative rendered and stored by a first GET,
# then wrk GETs of that derivative's URL against GETs of a copy of its bytes
# saved as an ordinary file in the same media directory. Both are whole-body
# 200s of the same length and type from the same server; the derivative's
# request also parses and checks the parameters, stats the source and reads
# the stored .meta beside it. Each round runs both (in alternating order);
# the script prints requests/s of each, median of the rounds, and the median
# of the per-round ratios derivative / file.
#
#   bench/derived.sh [ROUNDS [SECONDS]]   (default 5 rounds of 5 s)
#   MEDIA_STREAMER_BIN=path/to/media-streamer bench/derived.sh ...
#
# The source is bench/images.sh's 24 MP JPEG (made by examples/render.rs when
# missing); the derivative is its 640 px WebP. Installs wrk when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
seconds=${2:-5}
ROOT=$PWD
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
IN=$ROOT/target/bench-images
QUERY='w=640&fmt=webp'

if ! command -v wrk >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
bin=${MEDIA_STREAMER_BIN:-}
if [ -z "$bin" ]; then
  nice -n 19 cargo build --release --quiet --bin media-streamer
  bin=$TARGET/release/media-streamer
fi
if ! [ -f "$IN/photo-24mp.jpg" ]; then
  nice -n 19 cargo build --release --quiet --example render --features x86-asm
  "$TARGET/release/examples/render" --make-inputs "$IN"
fi

work=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "nothing listens on port $1" >&2; return 1
}

mkdir -p "$work/media" "$work/derived"
cp "$IN/photo-24mp.jpg" "$work/media/photo.jpg"
port=$(free_port)
# No access log, as in bench/vs-nginx.sh.
RUST_LOG=warn MEDIA_DERIVED_DIR="$work/derived" \
  "$bin" serve --dir "$work/media" --addr "127.0.0.1:$port" >"$work/server.log" 2>&1 &
pid=$!
wait_port "$port"

derived_url="http://127.0.0.1:$port/photo.jpg?$QUERY"
file_url="http://127.0.0.1:$port/plain.webp"
# The first GET renders and stores; the stored bytes become the plain file.
curl -sf -o "$work/media/plain.webp" "$derived_url"
size=$(stat -c %s "$work/media/plain.webp")
stored=$(find "$work/derived" -type f ! -name '*.meta' | head -n1)
if [ -z "$stored" ] || ! cmp -s "$stored" "$work/media/plain.webp"; then
  echo "the derivative was not stored under $work/derived" >&2; exit 1
fi
for url in "$derived_url" "$file_url"; do
  got=$(curl -s -o /dev/null -w '%{http_code} %{size_download} %{content_type}' "$url")
  if [ "$got" != "200 $size image/webp" ]; then
    echo "$url answered: $got (expected 200 $size image/webp)" >&2; exit 1
  fi
done

cp bench/wrk/report.lua "$work/report.lua"
# rps URL -> requests per second of one wrk run
rps() {
  local out result requests duration status_errors socket_errors
  out=$(wrk -t2 -c8 -d"${seconds}s" -s "$work/report.lua" "$1")
  result=$(grep '^RESULT' <<<"$out")
  read -r _ requests _ duration status_errors socket_errors <<<"$result"
  if [ "$status_errors" != 0 ] || [ "$socket_errors" != 0 ]; then
    echo "$1: $status_errors bad statuses, $socket_errors socket errors" >&2; exit 1
  fi
  awk -v r="$requests" -v d="$duration" 'BEGIN { printf "%.0f", r / (d / 1e6) }'
}

: >"$work/results"
for round in $(seq "$rounds"); do
  if [ $((round % 2)) -eq 1 ]; then
    d=$(rps "$derived_url"); f=$(rps "$file_url")
  else
    f=$(rps "$file_url"); d=$(rps "$derived_url")
  fi
  echo "$d $f" >>"$work/results"
  echo "round $round: derivative $d/s, file $f/s" >&2
done

python3 - "$work/results" "$rounds" "$seconds" "$size" <<'EOF'
import statistics, sys
path, rounds, seconds, size = sys.argv[1:]
rows = [tuple(map(float, line.split())) for line in open(path)]
ratios = [d / f for d, f in rows]
print(f"\n{rounds} rounds of {seconds} s, wrk 2 threads 8 connections, a {int(size):,}-byte WebP; "
      "ratio = derivative / file, median of the rounds\n")
print("| stored derivative (req/s) | plain file (req/s) | ratio |")
print("| --- | --- | --- |")
print(f"| {statistics.median(d for d, _ in rows):,.0f} | {statistics.median(f for _, f in rows):,.0f} | "
      f"{statistics.median(ratios):.2f}x ({', '.join(f'{r:.2f}' for r in ratios)}) |")
EOF
