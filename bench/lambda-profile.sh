#!/usr/bin/env bash
# Builds the release binary with several profile settings and measures, for
# each, the binary's size and its cold start through the Lambda emulator
# (process start to the first body byte of a waiting request, median of 5) and
# the CPU time the server spends per GiB streamed (three full GETs of a 1 GiB
# sparse file from the local server, user + system time from /proc).
# Usage: bench/lambda-profile.sh [variant ...]   (default: all)
# Needs cargo-lambda (scripts/test.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A variants=(
  [o3-plain]="CARGO_PROFILE_RELEASE_OPT_LEVEL=3 CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_STRIP=none"
  [o3-lto]="CARGO_PROFILE_RELEASE_OPT_LEVEL=3 CARGO_PROFILE_RELEASE_LTO=fat CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 CARGO_PROFILE_RELEASE_STRIP=symbols"
  [os-lto]="CARGO_PROFILE_RELEASE_OPT_LEVEL=s CARGO_PROFILE_RELEASE_LTO=fat CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 CARGO_PROFILE_RELEASE_STRIP=symbols"
  [oz-lto]="CARGO_PROFILE_RELEASE_OPT_LEVEL=z CARGO_PROFILE_RELEASE_LTO=fat CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 CARGO_PROFILE_RELEASE_STRIP=symbols"
)
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(o3-plain o3-lto os-lto oz-lto)

cargo test --no-run --test it >/dev/null 2>&1
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
truncate -s 1G "$data/big.bin"
port=39091
ticks_per_sec=$(getconf CLK_TCK)

cpu_ms_per_gib() {
  "$1" --dir "$data" --addr "127.0.0.1:$port" >/dev/null 2>&1 &
  local pid=$!
  until curl -s -o /dev/null "http://127.0.0.1:$port/big.bin" -r 0-0; do sleep 0.1; done
  local before after
  before=$(awk '{print $14+$15}' "/proc/$pid/stat")
  for _ in 1 2 3; do curl -s -o /dev/null "http://127.0.0.1:$port/big.bin"; done
  after=$(awk '{print $14+$15}' "/proc/$pid/stat")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo $(( (after - before) * 1000 / ticks_per_sec / 3 ))
}

printf '%-10s %12s  %-12s %s\n' variant bytes "cold start" "CPU ms/GiB"
for name in "${names[@]}"; do
  dir="target/profiles/$name"
  env ${variants[$name]} cargo build --release --quiet --target-dir "$dir"
  bin="$dir/release/media-streamer"
  size=$(stat -c %s "$bin")
  cold=$(MEDIA_STREAMER_BIN="$PWD/$bin" cargo test --quiet --test it cold_start_to_first_byte -- --nocapture 2>/dev/null \
    | sed -n 's/.*median of 5: \([^ ]*\) .*/\1/p')
  cpu=$(cpu_ms_per_gib "$bin")
  printf '%-10s %12s  %-12s %s\n' "$name" "$size" "$cold" "$cpu"
done
