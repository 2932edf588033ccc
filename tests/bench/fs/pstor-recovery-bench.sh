#!/bin/bash
# tests/bench/fs/pstor-recovery-bench.sh - how long a mount takes after kill -9, with N GiB
# written: from the flash checkpoint (the default) against a full scan of every segment
# summary (recovery=scan), the peer in the same run, on the same image. Prints figures only.
#
# Usage: pstor-recovery-bench.sh [GIB]     (default 10; about 1 min per GiB here)
# Env:   PSTOR_BUILD_DIR (default <repo>/build), PSTOR_BENCH_DIR (default /var/tmp)
#
# Steps: mkfs a sparse image of GIB * 1.25, write GIB of unique half-compressible data with
# fio, wait for a commit, kill -9 the daemon; mount (checkpoint) and time it; kill -9 again;
# mount with recovery=scan and time it; unmount cleanly and time a mount after a clean stop.
set -euo pipefail

GIB=${1:-10}
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
BUILD=${PSTOR_BUILD_DIR:-$ROOT/build}
PSTORFS=$BUILD/fs/pstorfs
MKFS=$BUILD/fs/mkfs.pstorfs

skip() {
	echo "pstor-recovery-bench: skipped: $*" >&2
	exit 77
}
[[ $(id -u) == 0 ]] || skip "needs root (FUSE mounts)"
for t in fio fusermount3 mountpoint flock pgrep; do
	command -v "$t" >/dev/null || skip "$t not installed"
done
[[ -x $PSTORFS && -x $MKFS ]] || skip "not built ($PSTORFS)"

WORK=$(mktemp -d "${PSTOR_BENCH_DIR:-/var/tmp}/pstor-recovery-bench.XXXXXX")
IMG=$WORK/pool.img
MNT=$WORK/mnt
mkdir -p "$MNT"

cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	if mountpoint -q "$MNT"; then
		fusermount3 -u "$MNT" 2>/dev/null || { sleep 1 && fusermount3 -u "$MNT"; } ||
			fusermount3 -uz "$MNT"
	fi
	flock -x -w 120 "$IMG" true 2>/dev/null
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }

# Mounts with OPTS, waits until the mount is there; prints the wall seconds it took.
mount_timed() {
	local t0 t1 i
	t0=$(now)
	"$PSTORFS" "$IMG" "$MNT" "$@"
	for ((i = 0; i < 6000; i++)); do
		mountpoint -q "$MNT" && break
		sleep 0.01
	done
	mountpoint -q "$MNT" || {
		echo "pstor-recovery-bench: mount did not come up" >&2
		exit 1
	}
	t1=$(now)
	echo "$t1 - $t0" | bc -l
}

daemon_pid() { pgrep -f -x "$PSTORFS $IMG $MNT.*" | head -1; }

crash() {
	local pid
	pid=$(daemon_pid)
	[[ -n $pid ]] || {
		echo "pstor-recovery-bench: no daemon to kill" >&2
		exit 1
	}
	kill -9 "$pid"
	while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
	fusermount3 -uz "$MNT" 2>/dev/null || true
	flock -x -w 60 "$IMG" true
}

field() { # FILE KEY: the value after "KEY:" in a .pstorage text file
	sed -n "s/^$2: *//p" "$MNT/.pstorage/$1" | head -1
}

report() { # LABEL WALL
	printf '%-26s wall %7.2f s  fs mount %7.3f s  flash open %7.3f s  from checkpoint %s  segments walked %s\n' \
		"$1" "$2" "$(sed -n 's/.*"mount_seconds": \([0-9.]*\).*/\1/p' "$MNT/.pstorage/status.json")" \
		"$(field flash/stats 'open: seconds')" "$(field flash/stats 'open from checkpoint')" \
		"$(field flash/stats 'open: segments walked')"
}

SIZE=$((GIB * 1024 * 5 / 4))M
truncate -s "$SIZE" "$IMG"
"$MKFS" --size "$SIZE" "$IMG" >"$WORK/mkfs.log"
mount_timed >/dev/null
truncate -s "${GIB}G" "$MNT/volumes/v"
echo "writing $GIB GiB (unique blocks, half compressible) ..."
t0=$(now)
fio --name=fill --filename="$MNT/volumes/v" --rw=write --bs=1M --size="${GIB}G" \
	--ioengine=psync --refill_buffers --randrepeat=0 --buffer_compress_percentage=50 \
	--dedupe_percentage=0 --end_fsync=0 >"$WORK/fio.log"
t1=$(now)
printf 'written in %.1f s; flash: %s segments in use, %s live chunks, checkpoint %s (%s bytes)\n' \
	"$(echo "$t1 - $t0" | bc -l)" \
	"$(($(field flash/stats 'segments open') + $(field flash/stats 'segments closed')))" \
	"$(field flash/stats 'live chunks')" "$(field flash/stats checkpoint)" "$(field flash/stats 'checkpoint bytes')"
sleep 6 # one background commit: the maps reach SQLite, as they would in service
crash
sync
echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
w=$(mount_timed)
report "after kill -9, checkpoint" "$w"
crash
sync
echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
w=$(mount_timed -o recovery=scan)
report "after kill -9, full scan" "$w"
fusermount3 -u "$MNT"
flock -x -w 120 "$IMG" true
sync
echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
w=$(mount_timed)
report "after a clean stop" "$w"
# The data is all there: a sample of the volume reads back without error.
dd if="$MNT/volumes/v" of=/dev/null bs=1M count=256 skip=$((GIB * 512)) status=none
echo "read back 256 MiB from the middle of the volume: ok"
