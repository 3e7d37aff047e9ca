#!/usr/bin/env bash
# The soak: media-loadtest with --verify against the local server, then
# through the Lambda emulator (cargo lambda watch --only-lambda-apis, with
# INSTANCES function processes polling it, as Lambda runs one invocation per
# execution environment), each for SECONDS with CONNS connections.
# Prints both summaries; exits non-zero when either saw an error or a wrong
# byte.
#   bench/soak.sh [SECONDS] [CONNS] [INSTANCES] [PATTERN]   (60 64 4 uniform)
# Needs cargo-lambda (scripts/test.sh installs it in .venv/).
set -euo pipefail
cd "$(dirname "$0")/.."
# First on PATH: the Python tools that scripts/test.sh installs in .venv/.
if [ -d .venv/bin ]; then export PATH="$PWD/.venv/bin:$PATH"; fi

seconds=${1:-60}
conns=${2:-64}
instances=${3:-4}
pattern=${4:-uniform}
file=sample-media/test-pattern.mp4
local_port=39181
emulator_port=39182

# Separately: one cargo run unifies the two packages' dependency features, and
# the server under test is to be the one `cargo build --release` makes.
cargo build --release --quiet -p media-streamer
cargo build --release --quiet -p media-loadtest
bin=target/release/media-streamer
loadtest=target/release/media-loadtest
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

wait_for_port() {
  until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do sleep 0.1; done
}

status=0
echo "== local server: $conns connections, $seconds s, pattern $pattern"
MEDIA_DIR=sample-media MEDIA_ADDR="127.0.0.1:$local_port" RUST_LOG=warn "$bin" &
pids+=($!)
wait_for_port "$local_port"
"$loadtest" "http://127.0.0.1:$local_port/${file#sample-media/}" --verify "$file" \
  --pattern "$pattern" -c "$conns" -d "$seconds" || status=1

echo "== Lambda emulator, $instances function processes: $conns connections, $seconds s, pattern $pattern"
cargo-lambda lambda watch --only-lambda-apis -A 127.0.0.1 -P "$emulator_port" >/dev/null 2>&1 &
pids+=($!)
wait_for_port "$emulator_port"
for _ in $(seq "$instances"); do
  AWS_LAMBDA_RUNTIME_API="http://127.0.0.1:$emulator_port/.rt" AWS_LAMBDA_FUNCTION_NAME=_ \
    AWS_LAMBDA_FUNCTION_VERSION=1 AWS_LAMBDA_FUNCTION_MEMORY_SIZE=512 \
    MEDIA_DIR=sample-media RUST_LOG=warn "$bin" &
  pids+=($!)
done
"$loadtest" "http://127.0.0.1:$emulator_port/${file#sample-media/}" --verify "$file" \
  --pattern "$pattern" -c "$conns" -d "$seconds" || status=1
exit "$status"
