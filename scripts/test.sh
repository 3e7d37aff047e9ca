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

# apt-get install, as root or through sudo.
apt_install() {
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@"
}

# Python tools go into .venv/ (ignored by git), never the system Python:
# Debian 12 and Ubuntu 24.04 refuse a global pip install (PEP 668). .venv/bin
# comes first on PATH for the rest of this script, so python3, cargo lambda,
# sam, cfn-lint and the tests below find what is installed there.
step "Python virtual environment (.venv)"
if ! .venv/bin/python3 -m pip --version >/dev/null 2>&1; then
  if ! python3 -m venv --clear .venv >/dev/null 2>&1; then
    # Debian and Ubuntu ship venv's pip in python3-venv (python3 comes with it).
    apt_install python3-venv
    python3 -m venv --clear .venv
  fi
fi
export PATH="$PWD/.venv/bin:$PATH"
python3 --version
pip_install() { python3 -m pip install --quiet --disable-pip-version-check "$@"; }

step "cargo-lambda (Lambda runtime emulator, from PyPI)"
if ! cargo lambda --version >/dev/null 2>&1; then
  pip_install cargo-lambda
fi
cargo lambda --version

step "moto (S3-compatible test server, from PyPI)"
if ! python3 -c 'import moto.server, flask, werkzeug' >/dev/null 2>&1; then
  pip_install 'moto[server]'
fi
python3 -c 'import moto; print("moto", moto.__version__)'

step "SAM CLI, cfn-lint and Zig (deployment checks, from PyPI)"
if ! sam --version >/dev/null 2>&1 || ! cfn-lint --version >/dev/null 2>&1 \
   || ! python3 -m ziglang version >/dev/null 2>&1; then
  pip_install aws-sam-cli cfn-lint ziglang
fi
sam --version
cfn-lint --version

step "pytest (the stack test, tests/deploy) and checkov (in a virtual environment of its own, .venv/checkov, apart from the SAM CLI's dependencies), from PyPI"
if ! python3 -m pytest --version >/dev/null 2>&1; then
  pip_install pytest
fi
if ! .venv/checkov/bin/checkov --version >/dev/null 2>&1; then
  python3 -m venv --clear .venv/checkov
  .venv/checkov/bin/python3 -m pip install --quiet --disable-pip-version-check checkov
fi
python3 -m pytest --version
echo "checkov $(.venv/checkov/bin/checkov --version)"

step "Chromium and ChromeDriver (browser tests), curl (deployment check), nasm (the x86_64 SIMD of the image codecs), ffmpeg (the video tests' inputs), from Debian"
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1 \
   || ! command -v curl >/dev/null 2>&1 || ! command -v nasm >/dev/null 2>&1 \
   || ! command -v ffmpeg >/dev/null 2>&1; then
  apt_install chromium chromium-driver fonts-dejavu-core curl nasm ffmpeg
fi
chromium --version
chromedriver --version

step "the arm64 Lambda build and its run (deployment check): Rust target aarch64-unknown-linux-gnu; qemu-user-static and libc6-arm64-cross (aarch64 glibc under /usr/aarch64-linux-gnu), from Debian"
if ! rustup target list --installed 2>/dev/null | grep -x aarch64-unknown-linux-gnu >/dev/null; then
  rustup target add aarch64-unknown-linux-gnu
fi
if ! command -v qemu-aarch64-static >/dev/null 2>&1 \
   || [ ! -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ]; then
  apt_install qemu-user-static libc6-arm64-cross
fi
qemu-aarch64-static --version | sed -n 1p

step "format"
cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml -- --check

step "lint: the workspace (server and load tester), and the fuzz targets, which must keep compiling (scripts/fuzz.sh runs them)"
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy --manifest-path fuzz/Cargo.toml --target-dir target --all-targets -- -D warnings

step "tests: the workspace (server and load tester)"
cargo test --workspace --all-targets

step "deployment: what AWS will create (the SAM transform, parameter sets, rules, quotas) and checkov"
(cd tests/deploy && python3 -m pytest -q -p no:cacheprovider)

step "deployment: lint, offline arm64 sam build, the built artifact through qemu under the emulator"
scripts/check-deploy.sh
