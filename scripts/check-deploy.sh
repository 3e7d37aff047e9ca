#!/usr/bin/env bash
# Checks the SAM deployment without an AWS account: lints the template, checks
# that it carries the edge function as scripts/render-template.py makes it, builds
# it offline (an x86_64 build, the machine's own architecture), checks that the
# artifacts hold the bootstrap and the bundled media where the template says,
# then runs the built bootstrap under the Lambda emulator and asks it for a
# range of a sample. Prints the lint results, the build time and the artifact
# sizes. Needs cfn-lint, aws-sam-cli, cargo-lambda and ziglang (scripts/test.sh
# installs them in .venv/).
set -euo pipefail
cd "$(dirname "$0")/.."
# First on PATH: the Python tools that scripts/test.sh installs in .venv/.
if [ -d .venv/bin ]; then export PATH="$PWD/.venv/bin:$PATH"; fi

build_dir=$(mktemp -d)
emulator_pid=""
function_pid=""
cleanup() {
  [ -n "$function_pid" ] && kill "$function_pid" 2>/dev/null || true
  [ -n "$emulator_pid" ] && kill "$emulator_pid" 2>/dev/null || true
  rm -rf "$build_dir" "$build_dir.log" "$build_dir.validate"
}
trap cleanup EXIT

echo "cfn-lint template.yaml"
cfn-lint template.yaml
echo "  clean"

echo "scripts/render-template.py --check"
python3 scripts/render-template.py --check
echo "  template.yaml carries deploy/edge/verify-link.js as rendered"

echo "sam validate --lint"
export SAM_CLI_TELEMETRY=0
sam validate --lint --region us-east-1 >"$build_dir.validate" 2>&1 || { cat "$build_dir.validate"; exit 1; }
grep -o 'template.yaml is a valid SAM Template' "$build_dir.validate" | sed 's/^/  /'
echo "  clean"

echo "sam build (Architecture=x86_64)"
started=$(date +%s)
# --no-cached: a fresh build directory gains nothing from SAM's cache, whose
# checksum of the whole code directory (target/ included) fails when a cargo
# build beside it removes a file while SAM reads the tree.
sam build --build-dir "$build_dir" --no-cached \
  --parameter-overrides Architecture=x86_64 >"$build_dir.log" 2>&1 || { cat "$build_dir.log"; exit 1; }
echo "  built in $(( $(date +%s) - started )) s"

bootstrap="$build_dir/MediaFunction/bootstrap"
media="$build_dir/SampleMediaLayer/sample-media"
test -x "$bootstrap" || { echo "no bootstrap at $bootstrap"; exit 1; }
for f in sample-media/*; do
  cmp -s "$f" "$media/${f#sample-media/}" || { echo "layer lacks $f"; exit 1; }
done
printf '  bootstrap: %s bytes\n  sample-media layer: %s bytes in %s files\n' \
  "$(stat -c %s "$bootstrap")" "$(du -sb "$media" | cut -f1)" "$(ls "$media" | wc -l)"
[ "$(ls "$build_dir/MediaFunction")" = "bootstrap" ] || { echo "function artifact holds more than bootstrap"; exit 1; }

echo "the built bootstrap under the Lambda emulator"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cargo lambda watch --only-lambda-apis -A 127.0.0.1 -P "$port" >/dev/null 2>&1 &
emulator_pid=$!
# Listening is enough: a request would wait for a function to take it.
for _ in $(seq 1 600); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
AWS_LAMBDA_RUNTIME_API="http://127.0.0.1:$port/.rt" AWS_LAMBDA_FUNCTION_NAME=_ \
  AWS_LAMBDA_FUNCTION_VERSION=1 AWS_LAMBDA_FUNCTION_MEMORY_SIZE=512 \
  MEDIA_DIR="$media" "$bootstrap" >/dev/null 2>&1 &
function_pid=$!
headers=$(curl -s --max-time 20 -D - -o "$build_dir/body" -r 0-1023 "http://127.0.0.1:$port/test-pattern.mp4")
status=$(printf '%s' "$headers" | head -n1 | tr -d '\r')
range=$(printf '%s' "$headers" | tr -d '\r' | sed -n 's/^content-range: //Ip')
expected=$(head -c 1024 sample-media/test-pattern.mp4 | sha256sum)
got=$(sha256sum < "$build_dir/body")
size=$(stat -c %s sample-media/test-pattern.mp4)
if [ "$status" != "HTTP/1.1 206 Partial Content" ] || [ "$range" != "bytes 0-1023/$size" ] || [ "$got" != "$expected" ]; then
  echo "unexpected answer: $status / $range"; exit 1
fi
echo "  $status, content-range: $range, the file's first 1024 bytes"
