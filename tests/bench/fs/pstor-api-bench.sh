#!/bin/bash
# tests/bench/fs/pstor-api-bench.sh - what the REST API (fs/api) costs the data path: fio 4 KiB
# random writes (O_DIRECT, psync, one job) on a volume with the API idle, then while wrk asks
# GET /metrics and GET /api/v1/volumes at a fixed pace (one connection each, a Lua delay()
# between requests: wrk2 is not in Debian) for each delay of PSTOR_API_BENCH_DELAYS_MS (default
# "100 10": about 10 and 100 requests/s per endpoint), then idle again; and, for the record,
# while wrk asks as fast as it can (one connection each, no delay). Prints `name: value` lines:
# fio IOPS each way, the loaded/idle ratios (goal >= 0.95), the rate wrk reached and the API's
# latency p50/p99. Idle and paced runs alternate for PSTOR_API_BENCH_ROUNDS (3) rounds, in an
# order rotated each round, after one uncounted run, and their medians are compared. Environment: PSTOR_BUILD_DIR (build), PSTOR_API_BENCH_FIO_S (10),
# PSTOR_BENCH_DIR (/var/tmp). Asserts nothing. Leaves nothing behind.
set -euo pipefail

BUILD=${PSTOR_BUILD_DIR:-build}
FIO_S=${PSTOR_API_BENCH_FIO_S:-10}
DELAYS_MS=${PSTOR_API_BENCH_DELAYS_MS:-100 10}
ROUNDS=${PSTOR_API_BENCH_ROUNDS:-3}
W=$(mktemp -d "${PSTOR_BENCH_DIR:-/var/tmp}/pstor-api-bench.XXXXXX")
M=$W/m
PID=
WRK_PIDS=()
cleanup() {
	for p in "${WRK_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	if mountpoint -q "$M" 2>/dev/null; then fusermount3 -u "$M" || umount -l "$M"; fi
	[ -z "$PID" ] || wait "$PID" 2>/dev/null || true
	rm -rf "$W"
}
trap cleanup EXIT
[ "$(id -u)" = 0 ] || { echo "needs root (FUSE mounts)"; exit 77; }
for t in fio wrk python3; do
	command -v $t >/dev/null || { echo "needs $t"; exit 77; }
done

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf 'ro %s\n' "$TOKEN" >"$W/tokens"
chmod 600 "$W/tokens"
"$BUILD/fs/mkfs.pstorfs" -q --size 2G "$W/img" >/dev/null
mkdir -p "$M"
"$BUILD/fs/pstorfs" "$W/img" "$M" -f \
	-o "api_listen=127.0.0.1:$PORT,api_token_file=$W/tokens" >"$W/log" 2>&1 &
PID=$!
for _ in $(seq 100); do [ -e "$M/.pstorage/ctl" ] && break; sleep 0.1; done
echo "volume create bench 1G" >"$M/.pstorage/ctl"
for i in 1 2 3 4 5 6 7; do echo "volume create other$i 64M" >"$M/.pstorage/ctl"; done
# Written once first, so every run overwrites mapped blocks the same way.
dd if=/dev/urandom of="$M/volumes/bench" bs=1M count=512 oflag=direct conv=notrunc status=none

fio_iops() { # NAME
	fio --name="$1" --filename="$M/volumes/bench" --direct=1 --rw=randwrite --bs=4k \
		--ioengine=psync --iodepth=1 --numjobs=1 --time_based --runtime="$FIO_S" \
		--size=512M --randrepeat=0 --refill_buffers --output-format=json >"$W/$1.json"
	python3 -c 'import json, sys; print("%.0f" % json.load(open(sys.argv[1]))["jobs"][0]["write"]["iops"])' \
		"$W/$1.json"
}

for d in $DELAYS_MS; do
	echo "function delay() return $d end" >"$W/paced$d.lua"
done
: >"$W/none.lua"

wrk_start() { # NAME PATH SCRIPT CONNECTIONS
	wrk -t1 -c"$4" -d"$((FIO_S + 2))s" --timeout 5s --latency -s "$W/$3" \
		-H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT$2" >"$W/$1.wrk" 2>&1 &
	WRK_PIDS+=($!)
}

wrk_report() { # NAME
	python3 - "$W/$1.wrk" "$1" <<'EOF'
import re, sys
t, name = open(sys.argv[1]).read(), sys.argv[2]
def us(v, u):
    return float(v) * {"us": 1, "ms": 1e3, "s": 1e6}[u]
for q in ("50", "99"):
    m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)\s*$" % q, t, re.M)
    print("%s_latency_p%s_us: %s" % (name, q, round(us(*m.groups()), 1) if m else "n/a"))
m = re.search(r"Requests/sec:\s+([\d.]+)", t)
print("%s_rate_per_s: %s" % (name, m.group(1) if m else "n/a"))
m = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
print("%s_errors: %s" % (name, m.group(1) if m else 0))
EOF
}

wrk_wait() {
	for p in "${WRK_PIDS[@]}"; do wait "$p" || true; done
	WRK_PIDS=()
}

# Rounds of idle and paced runs in turn, medians compared: on a shared machine one pair of
# runs differs by more than the API costs at a few requests a second.
median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# Each round runs the conditions in a rotated order (a Latin square over the rounds): the store
# changes under the runs (GC reaches its steady state, the map grows), and with idle always
# first the paced runs were measured on an older store. One run first, not counted, for that.
declare -A runs
idles=""
conds=(idle $DELAYS_MS)
fio_iops warmup >/dev/null
for r in $(seq "$ROUNDS"); do
	for ((k = 0; k < ${#conds[@]}; k++)); do
		d=${conds[$(((k + r - 1) % ${#conds[@]}))]}
		if [ "$d" = idle ]; then
			idles+=" $(fio_iops "idle$r")"
			continue
		fi
		wrk_start "metrics_delay${d}ms" /metrics "paced$d.lua" 1
		wrk_start "volumes_delay${d}ms" /api/v1/volumes "paced$d.lua" 1
		sleep 1
		runs[$d]+=" $(fio_iops "paced$d.$r")"
		wrk_wait
	done
done
wrk_start metrics_max /metrics none.lua 1
wrk_start volumes_max /api/v1/volumes none.lua 1
sleep 1
saturated=$(fio_iops saturated)
wrk_wait

idle=$(median <<<"$idles")
echo "fio_randwrite4k_idle_iops: $idle (median of$idles)"
for d in $DELAYS_MS; do
	m=$(median <<<"${runs[$d]}")
	echo "fio_randwrite4k_api_delay${d}ms_iops: $m (median of${runs[$d]})"
	echo "fio_ratio_delay${d}ms: $(python3 -c "print(round($m / $idle, 3))")"
	wrk_report "metrics_delay${d}ms" # the last round's
	wrk_report "volumes_delay${d}ms"
done
echo "fio_randwrite4k_api_saturated_iops: $saturated"
echo "fio_ratio_saturated: $(python3 -c "print(round($saturated / $idle, 3))")"
wrk_report metrics_max
wrk_report volumes_max
