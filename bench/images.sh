#!/usr/bin/env bash
# Image engine against sharp and vipsthumbnail, single-threaded, cold (a new
# process per render), median of N rounds (default 5), engines interleaved
# within each round so that machine load hits all alike.
#
#   bench/images.sh [ROUNDS]
#
# Renders: 24 MP JPEG -> 1280 px WebP q75, -> 640 px JPEG q80, -> 640 px AVIF
# (default quality), 4 MP RGBA PNG -> 1280 px WebP q75.
# The engine runs through examples/render.rs (release build); sharp through
# bench/images-sharp.js with sharp.concurrency(1); vipsthumbnail with
# VIPS_CONCURRENCY=1. "render" is the library call alone (engine and sharp
# time it themselves); "process" is spawn to exit, measured here; RSS is
# /usr/bin/time's peak. Installs sharp (npm, into target/bench-sharp) and
# libvips-tools and nasm (apt) when missing; the engine is built with
# rav1e's x86_64 assembly (feature x86-asm); sources are generated into
# target/bench-images by the example. bench/derived.sh measures serving a
# stored derivative against a plain file of its size.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
ROOT=$PWD
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
SHARP_DIR=$ROOT/target/bench-sharp
IN=$ROOT/target/bench-images
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

need() { command -v "$1" >/dev/null 2>&1; }
if ! need vipsthumbnail || ! need nasm || ! [ -x /usr/bin/time ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libvips-tools time nasm >/dev/null
fi
if ! [ -d "$SHARP_DIR/node_modules/sharp" ]; then
  mkdir -p "$SHARP_DIR"
  (cd "$SHARP_DIR" && { [ -f package.json ] || npm init -y >/dev/null; } && npm install --silent sharp >/dev/null)
fi
# Niced: the build shares the machine with whatever else runs on it.
nice -n 19 cargo build --release --quiet --example render --features x86-asm
ENGINE=$TARGET/release/examples/render
if ! [ -f "$IN/photo-24mp.jpg" ] || ! [ -f "$IN/rgba-4mp.png" ]; then
  "$ENGINE" --make-inputs "$IN"
fi

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# run NAME CMD...: appends "process_ms rss_kb render_ms render_cpu_ms" to $OUT/NAME
run() {
  local name=$1; shift
  local t0 t1 json
  t0=$(now_ms)
  json=$(/usr/bin/time -f '%M' -o "$OUT/rss" "$@" 2>/dev/null | tail -n1)
  t1=$(now_ms)
  local render=- cpu=-
  if [[ $json == \{* ]]; then
    render=$(sed -E 's/.*"render_ms":([0-9.]+).*/\1/' <<<"$json")
    cpu=$(sed -E 's/.*"render_cpu_ms":([0-9.]+).*/\1/' <<<"$json")
  fi
  echo "$((t1 - t0)) $(cat "$OUT/rss") $render $cpu" >>"$OUT/$name"
}
median() { # column of file
  awk -v c="$2" '$c != "-" {print $c}' "$1" | sort -n |
    awk '{a[NR]=$1} END {if (NR==0) print "-"; else if (NR%2) printf "%.0f\n", a[(NR+1)/2]; else printf "%.0f\n", (a[NR/2]+a[NR/2+1])/2}'
}

SHARP="env NODE_PATH=$SHARP_DIR/node_modules node $ROOT/bench/images-sharp.js"
export VIPS_CONCURRENCY=1
# case: id, source, format, width, quality ("" = default), vips output suffix ("" = none)
CASES=(
  "jpg-webp1280|$IN/photo-24mp.jpg|webp|1280|75|.webp[Q=75]"
  "jpg-jpeg640|$IN/photo-24mp.jpg|jpeg|640|80|.jpg[Q=80]"
  "jpg-avif640|$IN/photo-24mp.jpg|avif|640||"
  "png-webp1280|$IN/rgba-4mp.png|webp|1280|75|.webp[Q=75]"
)
for ((r = 1; r <= ROUNDS; r++)); do
  for c in "${CASES[@]}"; do
    IFS='|' read -r id src fmt width q vout <<<"$c"
    run "$id.engine" "$ENGINE" "$src" "$OUT/e-$id" "$fmt" "$width" $q
    run "$id.sharp" $SHARP "$src" "$OUT/s-$id" "$fmt" "$width" $q
    if [ -n "$vout" ]; then
      run "$id.vips" vipsthumbnail "$src" -s "${width}x" -o "$OUT/v-$id$vout"
    fi
  done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'; }
echo
echo "median of $ROUNDS, cold, single-threaded ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
printf '%-14s | %-27s | %-27s | %-15s | %-13s | %s\n' case "engine render/cpu/process" "sharp render/cpu/process" "vips process" "RSS MB e/s/v" "ratios engine: render/sharp, process/sharp, process/vips"
for c in "${CASES[@]}"; do
  IFS='|' read -r id src fmt width q vout <<<"$c"
  e="$OUT/$id.engine"; s="$OUT/$id.sharp"; v="$OUT/$id.vips"
  er=$(median "$e" 3); ec=$(median "$e" 4); ep=$(median "$e" 1); em=$(median "$e" 2)
  sr=$(median "$s" 3); sc=$(median "$s" 4); sp=$(median "$s" 1); sm=$(median "$s" 2)
  vp=-; vm=-
  if [ -f "$v" ]; then vp=$(median "$v" 1); vm=$(median "$v" 2); fi
  mb() { awk -v k="$1" 'BEGIN { if (k == "-") print "-"; else printf "%.0f", k / 1024 }'; }
  printf '%-14s | %6s %6s %7s ms      | %6s %6s %7s ms      | %9s ms    | %3s/%3s/%3s   | %s, %s, %s\n' \
    "$id" "$er" "$ec" "$ep" "$sr" "$sc" "$sp" "$vp" "$(mb "$em")" "$(mb "$sm")" "$(mb "$vm")" \
    "$(ratio "$er" "$sr")" "$(ratio "$ep" "$sp")" "$(ratio "$ep" "$vp")"
done
echo
echo "output sizes (bytes) engine / sharp:"
for c in "${CASES[@]}"; do
  IFS='|' read -r id _ <<<"$c"
  echo "  $id: $(stat -c %s "$OUT/e-$id") / $(stat -c %s "$OUT/s-$id")"
done
