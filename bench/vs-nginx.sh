#!/usr/bin/env bash
# The local server against nginx (sendfile on, 2 workers) on the same files,
# same machine, same run. For each workload, each round runs wrk against both
# (in alternating order) and takes the ratio media-streamer / nginx; the
# script prints the median ratio of the rounds, the raw medians, and the
# media-streamer process's peak RSS over the whole run. It also reads each
# server's CPU time (user + system, all its processes) around every run and
# prints CPU per request: throughput moves with whatever else the machine
# runs, the CPU a request costs much less, so that column is the one to read
# on a busy machine.
#
# Workloads (wrk, 2 threads):
#   ranges  random closed ranges of 64 KiB..1 MiB over a 200 MiB file, 16 connections: requests/s
#   probes  Range: bytes=0-1, 32 connections: requests/s
#   full    whole GETs of a 3 MB file, 8 connections: bytes/s
#
# Usage: bench/vs-nginx.sh [ROUNDS [SECONDS]]   (default 3 rounds of 10 s)
#        MEDIA_STREAMER_BIN=path/to/media-streamer bench/vs-nginx.sh ...
# Installs nginx and wrk from Debian when missing; stops all it started.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
seconds=${2:-10}

if ! command -v nginx >/dev/null 2>&1 || ! command -v wrk >/dev/null 2>&1; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nginx-light wrk
fi

# MEDIA_STREAMER_BIN measures another build (another commit's, say).
bin=${MEDIA_STREAMER_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --quiet --bin media-streamer
  bin="$PWD/target/release/media-streamer"
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "nothing listens on port $1" >&2; return 1
}

data="$work/data"
mkdir -p "$data"
big_size=$((200 * 1024 * 1024))
head -c "$big_size" /dev/urandom > "$data/big.bin"
head -c 3000000 /dev/urandom > "$data/3mb.bin"
cat "$data"/* > /dev/null   # both servers read from the page cache

nginx_port=$(free_port)
mkdir -p "$work/nginx"
cat > "$work/nginx/nginx.conf" <<EOF
worker_processes 2;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
$( [ "$(id -u)" -eq 0 ] && echo "user root;" )
events { worker_connections 4096; }
http {
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  types { application/octet-stream bin; }
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  server {
    listen 127.0.0.1:$nginx_port;
    root $data;
  }
}
EOF
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
nginx_pid=$!
pids+=("$nginx_pid")

ms_port=$(free_port)
# No access log, as nginx runs with none.
RUST_LOG=warn "$bin" serve --dir "$data" --addr "127.0.0.1:$ms_port" > "$work/media-streamer.log" 2>&1 &
ms_pid=$!
pids+=("$ms_pid")
wait_port "$nginx_port"
wait_port "$ms_port"

# Both must answer the workloads' requests right before they are timed.
for port in "$nginx_port" "$ms_port"; do
  probe=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' -r 0-1 "http://127.0.0.1:$port/big.bin")
  range=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' -r 1000-66535 "http://127.0.0.1:$port/big.bin")
  full=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' "http://127.0.0.1:$port/3mb.bin")
  if [ "$probe $range $full" != "206 2 206 65536 200 3000000" ]; then
    echo "port $port answered: $probe / $range / $full" >&2; exit 1
  fi
done

for w in random-range probe; do
  cat bench/wrk/report.lua "bench/wrk/$w.lua" > "$work/$w.lua"
done
cp bench/wrk/report.lua "$work/full.lua"

# CPU ticks (user + system) used so far by a process and its children's
# threads: nginx is a master and its workers.
tck=$(getconf CLK_TCK)
cpu_ticks() {
  local total=0 pid
  for pid in "$@" $(pgrep -P "$1" || true); do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done
  echo "$total"
}

# run WORKLOAD PORT PID -> "requests bytes duration_us cpu_us"
run() {
  local workload=$1 port=$2 pid=$3 out before
  before=$(cpu_ticks "$pid")
  case "$workload" in
    ranges) out=$(wrk -t2 -c16 -d"${seconds}s" -s "$work/random-range.lua" "http://127.0.0.1:$port/big.bin" -- "$big_size") ;;
    probes) out=$(wrk -t2 -c32 -d"${seconds}s" -s "$work/probe.lua" "http://127.0.0.1:$port/big.bin") ;;
    full)   out=$(wrk -t2 -c8 -d"${seconds}s" -s "$work/full.lua" "http://127.0.0.1:$port/3mb.bin") ;;
  esac
  local result cpu_us
  cpu_us=$(( ($(cpu_ticks "$pid") - before) * 1000000 / tck ))
  result=$(grep '^RESULT' <<<"$out")
  read -r _ requests bytes duration status_errors socket_errors <<<"$result"
  if [ "$status_errors" != 0 ] || [ "$socket_errors" != 0 ]; then
    echo "$workload on port $port: $status_errors bad statuses, $socket_errors socket errors" >&2
    exit 1
  fi
  echo "$requests $bytes $duration $cpu_us"
}

results="$work/results"
: > "$results"
for round in $(seq "$rounds"); do
  for workload in ranges probes full; do
    if [ $((round % 2)) -eq 1 ]; then order="nginx media-streamer"; else order="media-streamer nginx"; fi
    for server in $order; do
      port=$nginx_port pid=$nginx_pid
      [ "$server" = media-streamer ] && port=$ms_port pid=$ms_pid
      echo "$round $workload $server $(run "$workload" "$port" "$pid")" >> "$results"
      printf 'round %s %-7s %-15s done\n' "$round" "$workload" "$server" >&2
    done
  done
done

peak_kib=$(awk '/VmHWM/ {print $2}' "/proc/$ms_pid/status")
python3 - "$results" "$peak_kib" "$rounds" "$seconds" <<'EOF'
import statistics, sys
path, peak_kib, rounds, seconds = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
runs = {}
for line in open(path):
    rnd, workload, server, requests, nbytes, duration_us, cpu_us = line.split()
    secs = int(duration_us) / 1e6
    runs[(int(rnd), workload, server)] = (
        int(requests) / secs, int(nbytes) / secs, int(cpu_us) / int(requests))
metric = {"ranges": ("requests/s", 0), "probes": ("requests/s", 0), "full": ("MiB/s", 1)}
target = {"ranges": 1.0, "probes": 0.8, "full": 1.0}
print(f"\n{rounds} rounds of {seconds} s per workload and server; ratio = media-streamer / nginx, median of the rounds\n")
print("| workload | metric | nginx (median) | media-streamer (median) | ratio | target |")
print("| --- | --- | --- | --- | --- | --- |")
for workload in ("ranges", "probes", "full"):
    name, i = metric[workload]
    rnds = sorted({r for (r, w, _) in runs if w == workload})
    scale = 1 / 2**20 if i == 1 else 1
    ng = [runs[(r, workload, "nginx")][i] * scale for r in rnds]
    ms = [runs[(r, workload, "media-streamer")][i] * scale for r in rnds]
    ratios = [m / n for m, n in zip(ms, ng)]
    ratio = statistics.median(ratios)
    mark = "met" if ratio >= target[workload] else "MISSED"
    print(f"| {workload} | {name} | {statistics.median(ng):,.0f} | {statistics.median(ms):,.0f} | "
          f"{ratio:.2f}x ({', '.join(f'{r:.2f}' for r in ratios)}) | >= {target[workload]}x {mark} |")
print(f"\nCPU per request (user + system, microseconds), median of the rounds; "
      "ratio = nginx / media-streamer (above 1: media-streamer spends less)\n")
print("| workload | nginx | media-streamer | ratio |")
print("| --- | --- | --- | --- |")
for workload in ("ranges", "probes", "full"):
    rnds = sorted({r for (r, w, _) in runs if w == workload})
    ng = [runs[(r, workload, "nginx")][2] for r in rnds]
    ms = [runs[(r, workload, "media-streamer")][2] for r in rnds]
    ratios = [n / m for m, n in zip(ms, ng)]
    print(f"| {workload} | {statistics.median(ng):,.1f} | {statistics.median(ms):,.1f} | "
          f"{statistics.median(ratios):.2f}x ({', '.join(f'{r:.2f}' for r in ratios)}) |")
print(f"\nmedia-streamer peak RSS over the whole run: {peak_kib / 1024:.1f} MiB (target <= 32 MiB)")
EOF
