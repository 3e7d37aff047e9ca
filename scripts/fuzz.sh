#!/usr/bin/env bash
# Runs each cargo-fuzz target under fuzz/ for a bounded time and prints what
# it did: seconds, executions, executions per second, corpus size.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]   (default: 60 s each, every target)
#
# Targets: request (raw path and header fields through the whole pipeline and
# the directory source to the response), key, range, conditional (with
# If-Range), signature, params (the image parameters), mp4 (any bytes as an
# MP4: box listing, faststart rewrite, movie and frame plans), image_header
# (the image probe and the JPEG segment walk), exif, avcc (avcC and its SPS,
# the checks before decoding), layout (a kept movie index read back).
# Inputs that
# find something are kept in
# fuzz/artifacts/TARGET/; the corpus grows in fuzz/corpus/TARGET/ from the
# seeds in fuzz/seeds/TARGET/. Installs cargo-fuzz when it is missing.
# cargo-fuzz passes AddressSanitizer's flag, which rustc takes only on
# nightly: RUSTC_BOOTSTRAP=1 lets the stable toolchain take it.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(request key range conditional signature params mp4 image_header exif avcc layout)
fi

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1

cargo fuzz build
summary=$(mktemp)
trap 'rm -f "$summary"' EXIT
printf '%-12s %8s %14s %10s %8s\n' target seconds executions exec/s corpus >"$summary"
status=0
for target in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target"
    seeds=()
    [ -d "fuzz/seeds/$target" ] && seeds=("fuzz/seeds/$target")
    log=$(mktemp)
    if ! cargo fuzz run "$target" "fuzz/corpus/$target" "${seeds[@]}" -- \
        -max_total_time="$seconds" -print_final_stats=1 \
        -artifact_prefix="fuzz/artifacts/$target/" 2>"$log"; then
        tail -n 40 "$log"
        echo "fuzz target $target FAILED; the input is in fuzz/artifacts/$target/" >&2
        status=1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
    corpus=$(find "fuzz/corpus/$target" -type f | wc -l)
    rate=$(( ${runs:-0} / ${took:-1} ))
    [ "${took:-0}" -gt 0 ] || rate=-
    printf '%-12s %8s %14s %10s %8s\n' "$target" "${took:-?}" "${runs:-?}" "$rate" "$corpus" >>"$summary"
    rm -f "$log"
done
cat "$summary"
exit "$status"
