#!/usr/bin/env bash
# Checks the SAM deployment without an AWS account: lints the template, checks
# that it carries the edge function as scripts/render-template.py makes it, builds
# it offline for the template's default parameters (an arm64 build, what
# `sam deploy` ships unless told otherwise; the x86_64 code is exercised natively
# by `cargo test`), checks that the artifacts hold the bootstrap and the bundled
# media where the template says and that they fit Lambda's size quota, then runs
# the arm64 bootstrap through qemu under the Lambda emulator: measures its
# start-up, asks it for a range of a sample and runs the load tester's smoke
# checks against it. Prints the lint results, the build time, the artifact sizes
# and the start-up times. Needs cfn-lint, aws-sam-cli, cargo-lambda and ziglang
# (scripts/test.sh installs them in .venv/), the Rust target
# aarch64-unknown-linux-gnu, qemu-aarch64-static and an aarch64 glibc under
# /usr/aarch64-linux-gnu (Debian: qemu-user-static, libc6-arm64-cross; test.sh
# installs them too).
set -euo pipefail
cd "$(dirname "$0")/.."
# First on PATH: the Python tools that scripts/test.sh installs in .venv/.
if [ -d .venv/bin ]; then export PATH="$PWD/.venv/bin:$PATH"; fi

# Every tool this check needs, before any of it runs: a missing one fails the
# check loudly (scripts/test.sh installs them all).
missing=()
for tool in cfn-lint sam cargo-lambda curl readelf file qemu-aarch64-static; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
python3 -m ziglang version >/dev/null 2>&1 || missing+=("ziglang (Python module)")
rustup target list --installed 2>/dev/null | grep -x aarch64-unknown-linux-gnu >/dev/null \
  || missing+=("Rust target aarch64-unknown-linux-gnu")
# The bootstrap links aarch64 glibc dynamically; qemu finds it under this root.
sysroot=/usr/aarch64-linux-gnu
[ -e "$sysroot/lib/ld-linux-aarch64.so.1" ] || missing+=("aarch64 glibc under $sysroot (libc6-arm64-cross)")
if [ ${#missing[@]} -gt 0 ]; then
  echo "check-deploy.sh: missing: ${missing[*]} (scripts/test.sh installs them)" >&2
  exit 1
fi

build_dir=$(mktemp -d)
emulator_pid=""
function_pid=""
cleanup() {
  [ -n "$function_pid" ] && kill "$function_pid" 2>/dev/null || true
  [ -n "$emulator_pid" ] && kill "$emulator_pid" 2>/dev/null || true
  rm -rf "$build_dir" "$build_dir.log" "$build_dir.validate" "$build_dir.smoke"
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

echo "sam build (the template's defaults: Architecture=arm64)"
started=$(date +%s)
# --no-cached: a fresh build directory gains nothing from SAM's cache, whose
# checksum of the whole code directory (target/ included) fails when a cargo
# build beside it removes a file while SAM reads the tree. No parameter
# overrides: this is the build `sam deploy` ships by default, `cargo lambda
# build --release --arm64` (cross-linked by Zig) on this x86_64 machine.
sam build --build-dir "$build_dir" --no-cached >"$build_dir.log" 2>&1 || { cat "$build_dir.log"; exit 1; }
echo "  built in $(( $(date +%s) - started )) s"

bootstrap="$build_dir/MediaFunction/bootstrap"
media="$build_dir/SampleMediaLayer/sample-media"
test -x "$bootstrap" || { echo "no bootstrap at $bootstrap"; exit 1; }
for f in sample-media/*; do
  cmp -s "$f" "$media/${f#sample-media/}" || { echo "layer lacks $f"; exit 1; }
done
[ "$(ls "$build_dir/MediaFunction")" = "bootstrap" ] || { echo "function artifact holds more than bootstrap"; exit 1; }
case "$(file -b "$bootstrap")" in
  *"ARM aarch64"*) ;;
  *) echo "bootstrap is not an aarch64 binary: $(file -b "$bootstrap")"; exit 1 ;;
esac
needed=$(readelf -d "$bootstrap" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
# provided.al2023 (Amazon Linux 2023) has glibc 2.34: the bootstrap may ask for
# no newer symbol version (the sysroot below is newer, so running it would not tell).
glibc=$(readelf -V --wide "$bootstrap" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -n1)
[ "$(printf '%s\n2.34\n' "$glibc" | sort -V | tail -n1)" = "2.34" ] \
  || { echo "bootstrap needs glibc $glibc, provided.al2023 has 2.34"; exit 1; }
echo "  bootstrap: $(file -b "$bootstrap" | cut -d, -f1-2); needs ${needed}(glibc $glibc at most)"

# "Lambda quotas" (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html):
# "Deployment package (.zip file archive) size: 250 MB unzipped, including
# layers". Lambda counts 250 MB as 262,144,000 bytes (its refusal reads
# "Function code combined with layers exceeds the maximum allowed size of
# 262144000 bytes"). Unzipped, the function is its files (the bootstrap) and the
# layer is the files it unpacks under /opt.
files_bytes() { find "$1" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }
quota=262144000
code_bytes=$(files_bytes "$build_dir/MediaFunction")
layer_bytes=$(files_bytes "$build_dir/SampleMediaLayer")
margin=$(( quota - code_bytes - layer_bytes ))
printf '  function code (bootstrap): %s bytes\n  sample-media layer: %s bytes in %s files\n' \
  "$code_bytes" "$layer_bytes" "$(find "$build_dir/SampleMediaLayer" -type f | wc -l)"
printf '  code + layer: %s of %s bytes unzipped (Lambda quota, 250 MB), margin %s bytes\n' \
  "$(( code_bytes + layer_bytes ))" "$quota" "$margin"
[ "$margin" -ge 0 ] || { echo "the function and its layer exceed Lambda's 250 MB unzipped quota"; exit 1; }

echo "the arm64 bootstrap through qemu-aarch64-static under the Lambda emulator"
run_arm64=(qemu-aarch64-static -L "$sysroot" "$bootstrap")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cargo lambda watch --only-lambda-apis -A 127.0.0.1 -P "$port" >/dev/null 2>&1 &
emulator_pid=$!
# Listening is enough: a request would wait for a function to take it.
for _ in $(seq 1 600); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "the emulator is not listening on port $port after 60 s"; exit 1; }
export AWS_LAMBDA_FUNCTION_NAME=_ AWS_LAMBDA_FUNCTION_VERSION=1 AWS_LAMBDA_FUNCTION_MEMORY_SIZE=512 MEDIA_DIR="$media"
# Start-up, each figure the median of 5 new processes (defined in the script).
python3 scripts/lambda-startup.py --runs 5 --emulator "$port" -- "${run_arm64[@]}" | sed 's/^/  /'
AWS_LAMBDA_RUNTIME_API="http://127.0.0.1:$port/.rt" "${run_arm64[@]}" >/dev/null 2>&1 &
function_pid=$!
headers=$(curl -s --max-time 60 -D - -o "$build_dir/body" -r 0-1023 "http://127.0.0.1:$port/test-pattern.mp4")
status=$(printf '%s' "$headers" | head -n1 | tr -d '\r')
range=$(printf '%s' "$headers" | tr -d '\r' | sed -n 's/^content-range: //Ip')
expected=$(head -c 1024 sample-media/test-pattern.mp4 | sha256sum)
got=$(sha256sum < "$build_dir/body")
size=$(stat -c %s sample-media/test-pattern.mp4)
if [ "$status" != "HTTP/1.1 206 Partial Content" ] || [ "$range" != "bytes 0-1023/$size" ] || [ "$got" != "$expected" ]; then
  echo "unexpected answer: $status / $range"; exit 1
fi
echo "  $status, content-range: $range, the file's first 1024 bytes"

echo "media-loadtest smoke against it (the sample movie and image)"
# Built by `cargo test --workspace --all-targets`, which scripts/test.sh runs
# before this check.
loadtest="${CARGO_TARGET_DIR:-target}/debug/media-loadtest"
[ -x "$loadtest" ] || { echo "no $loadtest: build it first (cargo test --workspace --all-targets, as scripts/test.sh does)"; exit 1; }
smoke_code=0
"$loadtest" smoke "http://127.0.0.1:$port/test-pattern.mp4" \
  --image "http://127.0.0.1:$port/test-pattern.jpg" >"$build_dir.smoke" 2>&1 || smoke_code=$?
sed '/./s/^/  /' "$build_dir.smoke"
# Every row must pass. The one skip allowed is the row past 6 MiB: it needs an
# object over 6 MiB, and the samples are smaller.
not_passed=$(awk -F' [|] ' 'NR > 2 && /^$/ { exit } NR > 2 {
    name = $1; sub(/ +$/, "", name); result = $2; sub(/ +$/, "", result)
    if (result != "pass" && !(result == "skip" && name == "past 6 MiB")) printf "%s: %s; ", name, result
  }' "$build_dir.smoke")
passed=$(awk -F' [|] ' 'NR > 2 && /^$/ { exit } NR > 2 && $2 ~ /^pass/ { n++ } END { print n + 0 }' "$build_dir.smoke")
if [ "$smoke_code" -ne 0 ] || [ -n "$not_passed" ] || [ "$passed" -eq 0 ]; then
  echo "smoke failed (exit $smoke_code): ${not_passed:-no row passed}"; exit 1
fi
