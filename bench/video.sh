#!/usr/bin/env bash
# Video: faststart on the fly and frames, against a stored faststart file and
# ffmpeg, on one server in one run, median of N rounds (default 5).
#
#   bench/video.sh [ROUNDS]
#   MEDIA_STREAMER_BIN=path/to/media-streamer bench/video.sh ...   # another build
#
# Input: a 1080p H.264 + AAC MP4 of 120 s, about 170 MB, with moov after mdat
# (ffmpeg's default), and the same streams copied with -movflags +faststart;
# generated once into target/bench-video and reused. The script checks both
# layouts with a box listing before it starts.
#
# 1. Time to first byte of `Range: bytes=0-` on the moov-at-end file, which
#    the server answers faststart on the fly, as curl sees it
#    (time_starttransfer, client start-up and scheduling included) and as the
#    server logs it (ttfb_ms of the access line: request in to first body
#    byte out):
#    - cold: the moov layout cache has never seen the key. The file is served
#      under a new name for each cold request (a hard link: same bytes, same
#      page cache), as the cache is per key; no restart.
#    - warm: the same request again, layout cached.
#    - stored: the faststart copy, requested the same way (its layout
#      already known to be served as stored). Target: warm <= 1.1x stored.
#    A round takes the median of TTFB_REQUESTS (default 5) of each, the
#    three kinds interleaved.
# 2. The picture at 90 s as a 640 px JPEG: `?frame=90&w=640&fmt=jpeg` (no
#    MEDIA_DERIVED_DIR: every request decodes anew), curl's time_total, against
#    `ffmpeg -threads 1 -ss 90 -i URL -frames:v 1 -vf scale=640:-1` reading the
#    same file's URL without parameters from the same server, process wall
#    time (start-up included). Target: ours/ffmpeg <= 1.0x. The two pictures
#    are compared (PSNR) to show both took the same frame.
# 3. Bytes read from the source for that frame: ours from the server's debug
#    line `frame read ... bytes_read=N`; ffmpeg's as the sum of bytes_sent of
#    the server's access log lines for its requests, and as ffmpeg's own
#    count of bytes it consumed (`Statistics: N bytes read`, -v verbose).
#
# Both engines run once before the rounds (not counted), and engines alternate
# order from round to round. Installs ffmpeg and curl from Debian when
# missing; stops the server it started and removes its files.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
root=$PWD
frame_secs=${FRAME_SECS:-90}
ttfb_requests=${TTFB_REQUESTS:-5}

need() { command -v "$1" >/dev/null 2>&1; }
if ! need ffmpeg || ! need ffprobe || ! need curl || ! need python3; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq ffmpeg curl python3 >/dev/null
fi

bin=${MEDIA_STREAMER_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --quiet --bin media-streamer
  bin="$root/target/release/media-streamer"
fi

inputs=$root/target/bench-video
mkdir -p "$inputs"
big=$inputs/big.mp4
stored=$inputs/big-faststart.mp4
if ! [ -f "$big" ]; then
  echo "making $big (120 s of 1080p H.264 at 11 Mbit/s; a few minutes)" >&2
  ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc2=size=1920x1080:rate=30 \
    -f lavfi -i sine=frequency=440:sample_rate=48000 -t 120 \
    -c:v libx264 -preset veryfast -b:v 11M -maxrate 11M -bufsize 22M -g 60 -pix_fmt yuv420p \
    -c:a aac -b:a 128k -shortest -y "$inputs/big.part.mp4"
  mv "$inputs/big.part.mp4" "$big"
fi
if ! [ -f "$stored" ]; then
  ffmpeg -hide_banner -loglevel error -i "$big" -c copy -movflags +faststart -y "$inputs/faststart.part.mp4"
  mv "$inputs/faststart.part.mp4" "$stored"
fi

# top_level FILE: the top-level box types in file order, space-separated.
top_level() {
  python3 - "$1" <<'EOF'
import struct, sys
kinds = []
with open(sys.argv[1], "rb") as f:
    f.seek(0, 2); end = f.tell(); at = 0
    while at + 8 <= end:
        f.seek(at)
        size, kind = struct.unpack(">I4s", f.read(8))
        if size == 1:
            size = struct.unpack(">Q", f.read(8))[0]
        elif size == 0:
            size = end - at
        if size < 8:
            break
        kinds.append(kind.decode("latin-1"))
        at += size
print(" ".join(kinds))
EOF
}
big_boxes=$(top_level "$big")
stored_boxes=$(top_level "$stored")
case "$big_boxes" in *mdat*moov*) ;; *) echo "$big: moov does not follow mdat ($big_boxes)" >&2; exit 1 ;; esac
case "$stored_boxes" in *moov*mdat*) ;; *) echo "$stored: moov does not precede mdat ($stored_boxes)" >&2; exit 1 ;; esac
size=$(stat -c %s "$big")

# The served directory sits beside the inputs so that hard links work.
work=$(mktemp -d "$inputs/run.XXXXXX")
serve=$work/serve
mkdir -p "$serve"
ln "$big" "$serve/big.mp4"
ln "$stored" "$serve/stored.mp4"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
cat "$big" "$stored" > /dev/null   # every engine reads from the page cache

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
log=$work/server.log
# JSON lines: the access log (target "access", info) and the frame reads (debug).
RUST_LOG=info,media_streamer=debug MEDIA_LOG_FORMAT=json \
  "$bin" serve --dir "$serve" --addr "127.0.0.1:$port" > "$log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  sleep 0.05
done
base=http://127.0.0.1:$port

results=$work/results
: > "$results"
record() { echo "$*" >> "$results"; }

# log_from OFFSET: the server log written after byte OFFSET.
log_size() { stat -c %s "$log"; }
log_from() { tail -c +"$(($1 + 1))" "$log"; }

# ttfb NAME: "curl_ms server_ms" to the first byte of `Range: bytes=0-` on
# NAME; checks the 206 and its 5 MiB.
ttfb() {
  local mark out server=""
  mark=$(log_size)
  out=$(curl -s -o /dev/null -H 'Range: bytes=0-' -w '%{http_code} %{size_download} %{time_starttransfer}' "$base/$1")
  read -r status got seconds <<<"$out"
  if [ "$status" != 206 ] || [ "$got" != 5242880 ]; then echo "$1: status $status, $got bytes" >&2; exit 1; fi
  for _ in $(seq 200); do # the access line follows the body's end
    server=$(log_from "$mark" | sed -n 's/.*"ttfb_ms":\([0-9.]*\).*"target":"access".*/\1/p' | head -n1)
    [ -n "$server" ] && break
    sleep 0.01
  done
  echo "$(awk -v s="$seconds" 'BEGIN { printf "%.3f", s * 1000 }') ${server:--}"
}

# ours ROUND: renders the frame; records its time and the bytes it read.
ours() {
  local mark out
  mark=$(log_size)
  out=$(curl -s -o "$work/ours.jpg" -w '%{http_code} %{content_type} %{time_total}' \
    "$base/big.mp4?frame=$frame_secs&w=640&fmt=jpeg")
  read -r status type seconds <<<"$out"
  if [ "$status" != 200 ] || [ "$type" != image/jpeg ]; then
    echo "frame: status $status, type $type" >&2; exit 1
  fi
  local read_bytes
  read_bytes=$(log_from "$mark" | python3 -c '
import json, sys
for line in sys.stdin:
    try: rec = json.loads(line)
    except ValueError: continue
    f = rec.get("fields", rec)
    if f.get("message") == "frame read": print(f["bytes_read"], f["samples"])')
  if [ -z "$read_bytes" ]; then echo "frame: no 'frame read' line in the server log" >&2; exit 1; fi
  [ -n "$1" ] && record "$1 ours_ms $(awk -v s="$seconds" 'BEGIN { printf "%.3f", s * 1000 }')"
  [ -n "$1" ] && record "$1 ours_read $read_bytes"
  return 0
}

# ffmpeg_frame ROUND: ffmpeg takes the frame from the URL; records its wall
# time, the bytes the server sent it and the bytes it says it read.
ffmpeg_frame() {
  local mark t0 t1
  mark=$(log_size)
  t0=$(date +%s%N)
  ffmpeg -hide_banner -nostdin -v verbose -threads 1 -ss "$frame_secs" -i "$base/big.mp4" \
    -frames:v 1 -vf scale=640:-1 -f image2 -y "$work/ffmpeg.jpg" 2> "$work/ffmpeg.log"
  t1=$(date +%s%N)
  sleep 0.3   # the access line of a dropped connection is written when the server sees it go
  local sent consumed
  sent=$(log_from "$mark" | python3 -c '
import json, sys
total = requests = 0
for line in sys.stdin:
    try: rec = json.loads(line)
    except ValueError: continue
    if rec.get("target") == "access":
        total += rec.get("fields", rec)["bytes_sent"]; requests += 1
print(total, requests)')
  consumed=$(sed -n 's/.*Statistics: \([0-9]*\) bytes read.*/\1/p' "$work/ffmpeg.log" | head -n1)
  [ -n "$1" ] && record "$1 ffmpeg_ms $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e6 }')"
  [ -n "$1" ] && record "$1 ffmpeg_sent $sent"
  [ -n "$1" ] && record "$1 ffmpeg_consumed ${consumed:--}"
  return 0
}

# Once before the rounds: the stored file's layout is known, the moov-at-end
# file's layout is cached for ffmpeg's requests, both engines have started once.
ttfb stored.mp4 > /dev/null
ttfb big.mp4 > /dev/null
ours ""
ffmpeg_frame ""

for round in $(seq "$rounds"); do
  for i in $(seq "$ttfb_requests"); do
    name=cold-$round-$i.mp4
    ln "$big" "$serve/$name"
    if [ $(((round + i) % 2)) -eq 1 ]; then
      record "$round.$i cold $(ttfb "$name")"
      record "$round.$i warm $(ttfb "$name")"
      record "$round.$i stored $(ttfb stored.mp4)"
    else
      record "$round.$i stored $(ttfb stored.mp4)"
      record "$round.$i cold $(ttfb "$name")"
      record "$round.$i warm $(ttfb "$name")"
    fi
  done
  if [ $((round % 2)) -eq 1 ]; then
    ours "$round"
    ffmpeg_frame "$round"
  else
    ffmpeg_frame "$round"
    ours "$round"
  fi
  printf 'round %s done\n' "$round" >&2
done

psnr=$(ffmpeg -hide_banner -nostdin -i "$work/ours.jpg" -i "$work/ffmpeg.jpg" -lavfi psnr -f null - 2>&1 |
  sed -n 's/.*PSNR.* average:\([0-9.inf]*\).*/\1/p' | tail -n1)
dims() { ffprobe -v error -select_streams v:0 -show_entries stream=width,height -of csv=p=0:s=x "$1"; }

python3 - "$results" "$rounds" "$size" "$frame_secs" "$psnr" "$(dims "$work/ours.jpg")" "$(dims "$work/ffmpeg.jpg")" <<'EOF'
import os, statistics, sys
path, rounds, size, frame, psnr, ours_dims, ff_dims = sys.argv[1:]
size = int(size)
runs, ttfb = {}, {}
for line in open(path):
    rnd, name, *values = line.split()
    if name in ("cold", "warm", "stored"):
        # per round: the median of its requests, as curl and as the server saw it
        per = ttfb.setdefault(name, {}).setdefault(rnd.split(".")[0], ([], []))
        per[0].append(float(values[0])); per[1].append(float(values[1]))
    else:
        runs.setdefault(name, []).append(values)
for name, by_round in ttfb.items():
    for rnd in sorted(by_round, key=int):
        curl_ms, server_ms = by_round[rnd]
        runs.setdefault(name, []).append(
            [f"{statistics.median(curl_ms):.3f}", f"{statistics.median(server_ms):.3f}"])
def med(name, i=0, scale=1.0):
    return statistics.median(float(v[i]) * scale for v in runs[name] if v[i] != "-")
def all_of(name, i=0, scale=1.0, fmt="{:.2f}"):
    return ", ".join(fmt.format(float(v[i]) * scale) for v in runs[name])
cold, warm, stored = med("cold"), med("warm"), med("stored")
cold_s, warm_s, stored_s = med("cold", 1), med("warm", 1), med("stored", 1)
ours, ff = med("ours_ms"), med("ffmpeg_ms")
frame_ratios = [float(o[0]) / float(f[0]) for o, f in zip(runs["ours_ms"], runs["ffmpeg_ms"])]
cold_ratios = [float(c[0]) / float(s[0]) for c, s in zip(runs["cold"], runs["stored"])]
cold_ratios_s = [float(c[1]) / float(s[1]) for c, s in zip(runs["cold"], runs["stored"])]
warm_ratios = [float(w[0]) / float(s[0]) for w, s in zip(runs["warm"], runs["stored"])]
warm_ratios_s = [float(w[1]) / float(s[1]) for w, s in zip(runs["warm"], runs["stored"])]
read, samples = med("ours_read"), med("ours_read", 1)
sent, requests = med("ffmpeg_sent"), med("ffmpeg_sent", 1)
consumed = [float(v[0]) for v in runs["ffmpeg_consumed"] if v[0] != "-"]
mib = lambda n: f"{n / 2**20:,.2f} MiB ({n / size:.2%})"
met = lambda ok: "met" if ok else "MISSED"
print(f"\n{os.cpu_count()} cores, load {open('/proc/loadavg').read().split()[0]}; "
      f"median of {rounds} rounds (TTFB: each round the median of its requests); file {size:,} bytes ({size / 2**20:,.1f} MiB); "
      f"frame at {frame} s, 640 px JPEG\n")
print("| measure | media-streamer | reference | ratio | target |")
print("| --- | --- | --- | --- | --- |")
ratios = lambda rs: f"{statistics.median(rs):.2f}x ({', '.join(f'{r:.2f}' for r in rs)})"
print(f"| TTFB `bytes=0-` (curl), cold moov cache | {cold:.2f} ms | stored faststart file {stored:.2f} ms "
      f"| {ratios(cold_ratios)} | |")
print(f"| TTFB `bytes=0-` (curl), warm moov cache | {warm:.2f} ms | stored faststart file {stored:.2f} ms "
      f"| {ratios(warm_ratios)} | <= 1.1x {met(statistics.median(warm_ratios) <= 1.1)} |")
print(f"| TTFB `bytes=0-` (server log), cold moov cache | {cold_s:.3f} ms | stored faststart file {stored_s:.3f} ms "
      f"| {ratios(cold_ratios_s)} | |")
print(f"| TTFB `bytes=0-` (server log), warm moov cache | {warm_s:.3f} ms | stored faststart file {stored_s:.3f} ms "
      f"| {ratios(warm_ratios_s)} | <= 1.1x {met(statistics.median(warm_ratios_s) <= 1.1)} |")
print(f"| frame at {frame} s, wall time | {ours:.1f} ms | ffmpeg -threads 1 {ff:.1f} ms "
      f"| {statistics.median(frame_ratios):.2f}x ({', '.join(f'{r:.2f}' for r in frame_ratios)}) "
      f"| <= 1.0x {met(statistics.median(frame_ratios) <= 1.0)} |")
print(f"| bytes read for the frame | {mib(read)}, {samples:.0f} samples | ffmpeg: server sent {mib(sent)} "
      f"in {requests:.0f} requests; ffmpeg consumed "
      f"{mib(statistics.median(consumed)) if consumed else '-'} | {read / sent:.3f}x of sent | |")
print(f"\nper round, ms, curl: cold {all_of('cold')}; warm {all_of('warm')}; stored {all_of('stored')}")
print(f"per round, ms, server: cold {all_of('cold', 1, fmt='{:.3f}')}; warm {all_of('warm', 1, fmt='{:.3f}')}; "
      f"stored {all_of('stored', 1, fmt='{:.3f}')}")
print(f"per round, ms: ours {all_of('ours_ms', fmt='{:.1f}')}; "
      f"ffmpeg {all_of('ffmpeg_ms', fmt='{:.1f}')}")
print(f"last round's pictures: ours {ours_dims}, ffmpeg {ff_dims}, PSNR between them {psnr or '-'} dB")
EOF
