#!/usr/bin/env bash
# Builds the release binary with several profile settings and measures, for
# each, the binary's size and its cold start through the Lambda emulator
# (process start to the first body byte of a waiting request, median of 5) and
# the CPU time the function spends per GiB streamed through the emulator
# (three 1 GiB ranges of a sparse file, user + system time from /proc).
# Usage: bench/lambda-profile.sh [variant ...]   (default: all)
# Needs cargo-lambda (scripts/test.sh installs it in .venv/).
set -euo pipefail
cd "$(dirname "$0")/.."
# First on PATH: the Python tools that scripts/test.sh installs in .venv/.
if [ -d .venv/bin ]; then export PATH="$PWD/.venv/bin:$PATH"; fi

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
  cargo-lambda lambda watch --only-lambda-apis -A 127.0.0.1 -P "$port" >/dev/null 2>&1 &
  local emulator=$!
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do sleep 0.1; done
  AWS_LAMBDA_RUNTIME_API="http://127.0.0.1:$port/.rt" AWS_LAMBDA_FUNCTION_NAME=_ \
    AWS_LAMBDA_FUNCTION_VERSION=1 AWS_LAMBDA_FUNCTION_MEMORY_SIZE=512 \
    MEDIA_DIR="$data" RUST_LOG=warn "$1" >/dev/null 2>&1 &
  local pid=$!
  curl -s -o /dev/null "http://127.0.0.1:$port/big.bin" -r 0-0
  local before after
  before=$(awk '{print $14+$15}' "/proc/$pid/stat")
  for _ in 1 2 3; do curl -s -o /dev/null "http://127.0.0.1:$port/big.bin" -r 0-1073741823; done
  after=$(awk '{print $14+$15}' "/proc/$pid/stat")
  kill "$pid" "$emulator"; wait "$pid" "$emulator" 2>/dev/null || true
  echo $(( (after - before) * 1000 / ticks_per_sec / 3 ))
}

printf '%-10s %12s  %-12s %s\n' variant bytes "cold start" "Lambda CPU ms/GiB"
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
