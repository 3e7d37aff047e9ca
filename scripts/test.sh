#!/usr/bin/env bash
# Runs every check and test of the project, installing first what the tests
# need. Safe to run again: each install step is skipped when already done.
# Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain components"
for component in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^${component}"; then
    rustup component add "$component"
  fi
done

step "cargo-lambda (Lambda runtime emulator, from PyPI)"
if ! cargo lambda --version >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check cargo-lambda
fi
cargo lambda --version

step "moto (S3-compatible test server, from PyPI)"
if ! python3 -c 'import moto.server, flask, werkzeug' >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check 'moto[server]'
fi
python3 -c 'import moto; print("moto", moto.__version__)'

step "SAM CLI, cfn-lint and Zig (deployment checks, from PyPI)"
if ! sam --version >/dev/null 2>&1 || ! cfn-lint --version >/dev/null 2>&1 \
   || ! python3 -m ziglang version >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check aws-sam-cli cfn-lint ziglang
fi
sam --version
cfn-lint --version

step "Chromium and ChromeDriver (browser tests, from Debian)"
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver fonts-dejavu-core
fi
chromium --version
chromedriver --version

step "format"
cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml -- --check

step "lint: the workspace (server and load tester), and the fuzz targets, which must keep compiling (scripts/fuzz.sh runs them)"
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy --manifest-path fuzz/Cargo.toml --target-dir target --all-targets -- -D warnings

step "tests: the workspace (server and load tester)"
cargo test --workspace --all-targets

step "deployment: lint, offline sam build, the built artifact under the emulator"
scripts/check-deploy.sh
