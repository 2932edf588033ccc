#!/bin/bash
# tests/bench/fs/pstor-tier-bench.sh - the tiering mover on real data: a volume written with lz4
# from a tar of system files (/usr/include, /usr/lib/python3*, /usr/share/doc: text, code and some
# already-compressed files), then cold_compression zstd:19. Prints `name: value` lines: stored
# bytes before and after, bytes saved, the mover's throughput, and fio 4 KiB random-read latency
# (O_DIRECT, one job, queue depth 1) with the mover paused and while it runs at
# PSTOR_TIER_BENCH_RATE (default 1G: as fast as it goes; the rest of the pass then runs at that
# speed too). Environment: PSTOR_TIER_BENCH_MB (256), PSTOR_TIER_BENCH_FIO_S (10). Asserts nothing
# but that the data reads back byte-exact. Leaves nothing behind.
set -euo pipefail

BUILD=${PSTOR_BUILD_DIR:-build}
SIZE_MB=${PSTOR_TIER_BENCH_MB:-256}
FIO_S=${PSTOR_TIER_BENCH_FIO_S:-10}
W=$(mktemp -d "${PSTOR_BENCH_DIR:-/var/tmp}/pstor-tier-bench.XXXXXX")
M=$W/m
PID=
cleanup() {
	if mountpoint -q "$M" 2>/dev/null; then fusermount3 -u "$M" || umount -l "$M"; fi
	[ -z "$PID" ] || wait "$PID" 2>/dev/null || true
	rm -rf "$W"
}
trap cleanup EXIT
[ "$(id -u)" = 0 ] || { echo "needs root (FUSE mounts)"; exit 77; }
command -v fio >/dev/null || { echo "needs fio"; exit 77; }

tar cf - /usr/include /usr/lib/python3* /usr/share/doc 2>/dev/null | head -c $((SIZE_MB << 20)) \
	>"$W/data" || true
BYTES=$(stat -c %s "$W/data")
"$BUILD/fs/mkfs.pstorfs" -q --size $((SIZE_MB * 3 + 256))M "$W/img" >/dev/null
mkdir -p "$M"
"$BUILD/fs/pstorfs" "$W/img" "$M" -f -o compression=lz4 >"$W/log" 2>&1 &
PID=$!
for _ in $(seq 100); do [ -e "$M/.pstorage/ctl" ] && break; sleep 0.1; done
ctl() { echo "$1" >"$M/.pstorage/ctl"; }
j() { # FILE EXPR
	python3 -c 'import json, sys; j = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
		"$M/.pstorage/$1" "$2"
}
truncate -s "$BYTES" "$M/volumes/data"
dd if="$W/data" of="$M/volumes/data" bs=1M conv=notrunc status=none
ctl sync
ctl "config set tier_rate 0"
ctl "volume set data cold_compression zstd:19"
before=$(j reduction.json 'j["after_compression_bytes"]')
echo "dataset_bytes: $BYTES"
echo "stored_bytes_lz4: $before"

fio_lat() { # NAME
	fio --name="$1" --filename="$M/volumes/data" --direct=1 --rw=randread --bs=4k \
		--ioengine=psync --iodepth=1 --time_based --runtime="$FIO_S" --size="$BYTES" \
		--output-format=json >"$W/$1.json"
	python3 - "$W/$1.json" "$1" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))["jobs"][0]["read"]
p = r["clat_ns"]["percentile"]
print("%s_read_iops: %.0f" % (sys.argv[2], r["iops"]))
print("%s_read_lat_mean_us: %.1f" % (sys.argv[2], r["clat_ns"]["mean"] / 1000))
print("%s_read_lat_p50_us: %.1f" % (sys.argv[2], p["50.000000"] / 1000))
print("%s_read_lat_p99_us: %.1f" % (sys.argv[2], p["99.000000"] / 1000))
EOF
}
fio_lat idle
ctl "config set tier_rate ${PSTOR_TIER_BENCH_RATE:-1G}"
t0=$(date +%s.%N)
fio_lat moving
echo "moved_during_fio_bytes: $(j analytics/tiering.json 'j["mover"]["bytes_before"]')"
ctl "config set tier_rate 1G" # the rest of the pass at full speed
while [ "$(j analytics/tiering.json 'j["mover"]["passes"]')" = 0 ]; do sleep 0.5; done
t1=$(date +%s.%N)
after=$(j reduction.json 'j["after_compression_bytes"]')
echo "stored_bytes_zstd19: $after"
echo "bytes_saved_mover: $(j analytics/tiering.json 'j["mover"]["bytes_saved"]')"
echo "bytes_saved_pool: $((before - after))"
echo "saved_percent: $(python3 -c "print(round(100 * ($before - $after) / $before, 1))")"
echo "chunks_moved: $(j analytics/tiering.json 'j["mover"]["chunks_moved"]')"
echo "pass_seconds: $(python3 -c "print(round($t1 - $t0, 1))")"
echo "mover_throughput_stored_bytes_per_s: $(j analytics/tiering.json 'j["mover"]["throughput_bytes_per_second"]')"
echo "mover_throughput_logical_mb_per_s: $(python3 -c "print(round($BYTES / ($t1 - $t0) / 1e6, 2))")"
cmp <(dd if="$M/volumes/data" iflag=direct bs=1M status=none) "$W/data" && echo "byte_exact: yes"
