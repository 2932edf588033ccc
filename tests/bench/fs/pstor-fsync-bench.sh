#!/bin/bash
# tests/bench/fs/pstor-fsync-bench.sh - latency of 4 KiB write + fdatasync through pstorfs, next to
# bindfs (a passthrough FUSE file system) and the raw directory, all on the same backing file
# system: fio psync, iodepth 1, fdatasync after every write, one writer and then N writers (group
# commit). Prints `name: value` lines and a table; asserts nothing. Leaves nothing behind.
#
# usage: pstor-fsync-bench.sh [--quick] [--jobs N]
#   --quick   5 s per run on 64 MiB files instead of 15 s on 256 MiB
#   --jobs N  writers of the concurrent run (default 4; 0 skips it)
# env:   PSTOR_BENCH_DIR (default /var/tmp)  work dir parent, on the file system under test
#        PSTOR_BUILD_DIR (default <repo>/build)
#        PSTOR_BENCH_TARGETS (default "raw bindfs pstorfs")
set -euo pipefail

QUICK=0
NJOBS=4
while [[ $# -gt 0 ]]; do
	case $1 in
	--quick) QUICK=1 ;;
	--jobs)
		[[ ${2:-} =~ ^[0-9]+$ ]] || {
			echo "usage: $0 [--quick] [--jobs N]" >&2
			exit 2
		}
		NJOBS=$2
		shift
		;;
	*)
		echo "usage: $0 [--quick] [--jobs N]" >&2
		exit 2
		;;
	esac
	shift
done
if ((QUICK)); then
	SIZE_MB=64 RUNTIME=5
else
	SIZE_MB=256 RUNTIME=15
fi

ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
BUILD=${PSTOR_BUILD_DIR:-$ROOT/build}
PSTORFS=$BUILD/fs/pstorfs
MKFS=$BUILD/fs/mkfs.pstorfs
TARGETS=${PSTOR_BENCH_TARGETS:-raw bindfs pstorfs}

skip() {
	echo "pstor-fsync-bench: skipped: $*" >&2
	exit 77
}
[[ $(id -u) == 0 ]] || skip "needs root (FUSE mounts)"
for t in fio python3 fusermount3 mountpoint flock; do
	command -v "$t" >/dev/null || skip "$t not installed"
done
[[ -c /dev/fuse ]] || skip "no /dev/fuse"

WORK=$(mktemp -d "${PSTOR_BENCH_DIR:-/var/tmp}/pstor-fsync-bench.XXXXXX")
MOUNTS=() # FUSE mount points, unmounted in reverse order
IMAGES=() # pstorfs images: wait for the daemon's flock before removing them

cleanup() {
	local rc=$? i
	set +e
	trap - EXIT INT TERM
	for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
		mountpoint -q "${MOUNTS[i]}" || continue
		fusermount3 -u "${MOUNTS[i]}" 2>/dev/null ||
			{ sleep 1 && fusermount3 -u "${MOUNTS[i]}"; } ||
			fusermount3 -uz "${MOUNTS[i]}"
	done
	# umount returns before a FUSE daemon has finished destroy: wait for its device lock.
	for i in "${IMAGES[@]}"; do
		flock -x -w 60 "$i" true || echo "pstor-fsync-bench: $i still locked after 60 s" >&2
	done
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_mounted() { # MNT: up to 10 s
	local i
	for ((i = 0; i < 100; i++)); do
		mountpoint -q "$1" && return 0
		sleep 0.1
	done
	echo "pstor-fsync-bench: $1 did not mount" >&2
	return 1
}

declare -A FILE=() # target -> file fio runs on

setup_raw() {
	mkdir -p "$WORK/raw"
	FILE[raw]=$WORK/raw/bench
}

setup_bindfs() {
	command -v bindfs >/dev/null || {
		echo "bindfs: not installed, skipped"
		return 1
	}
	mkdir -p "$WORK/bindfs.src" "$WORK/bindfs.mnt"
	MOUNTS+=("$WORK/bindfs.mnt")
	bindfs "$WORK/bindfs.src" "$WORK/bindfs.mnt" || return 1
	wait_mounted "$WORK/bindfs.mnt" || return 1
	FILE[bindfs]=$WORK/bindfs.mnt/bench
}

setup_pstorfs() {
	[[ -x $PSTORFS && -x $MKFS ]] || {
		echo "pstorfs: not built ($PSTORFS), skipped"
		return 1
	}
	local img=$WORK/pstorfs.img mnt=$WORK/pstorfs.mnt
	mkdir -p "$mnt"
	truncate -s 16G "$img"
	"$MKFS" --size 16G "$img" >"$WORK/mkfs.log" 2>&1 || {
		echo "pstorfs: mkfs.pstorfs failed: $(tail -1 "$WORK/mkfs.log")"
		return 1
	}
	IMAGES+=("$img")
	MOUNTS+=("$mnt")
	"$PSTORFS" "$img" "$mnt" || {
		echo "pstorfs: mount failed (exit $?)"
		return 1
	}
	wait_mounted "$mnt" || return 1
	truncate -s "$((SIZE_MB * 2))M" "$mnt/volumes/bench" || {
		echo "pstorfs: cannot create volumes/bench, skipped"
		return 1
	}
	FILE[pstorfs]=$mnt/volumes/bench
}

# Unique, incompressible buffers for every write: otherwise pstorfs would dedupe them all.
DATA=(--refill_buffers --randrepeat=0 --buffer_compress_percentage=0 --dedupe_percentage=0)

# Lay the file out first, so the timed runs overwrite allocated blocks on every target (no
# extent allocation on the raw file system, no first-write map growth on pstorfs).
layout() { # TARGET
	fio --name=layout --filename="${FILE[$1]}" --size="${SIZE_MB}M" --rw=write --bs=1M \
		--ioengine=psync --end_fsync=1 "${DATA[@]}" --output="$WORK/layout.$1.out" \
		>/dev/null
}

# fio: 4 KiB random writes, each followed by fdatasync; NJ writers on disjoint parts of the file.
run_fio() { # TARGET NJ -> the JSON's path
	local t=$1 nj=$2 out=$WORK/fio.$1.$2.json
	fio --name="fsync$nj" --filename="${FILE[$t]}" --size="$((SIZE_MB / nj))M" \
		--offset_increment="$((SIZE_MB / nj))M" --numjobs="$nj" --group_reporting \
		--rw=randwrite --bs=4k --ioengine=psync --iodepth=1 --fdatasync=1 \
		--time_based --runtime="$RUNTIME" --fallocate=none "${DATA[@]}" \
		--output-format=json --output="$out" >/dev/null 2>"$out.err" || true
	echo "$out"
}

# fio JSON -> "ops p50w p99w p50s p99s meanw means" (latencies in us), or "error".
fio_stats() { # JSON NJ
	python3 - "$1" "$2" <<'EOF'
import json, sys
path, nj = sys.argv[1], int(sys.argv[2])
try:
    with open(path) as f:
        txt = f.read()
    job = json.loads(txt[txt.index("{"):])["jobs"][0]
    if job.get("error"):
        raise ValueError(job["error"])
    w, s = job["write"]["clat_ns"], job["sync"]["lat_ns"]
    p = lambda d, k: d["percentile"][k] / 1e3
    print("%.0f %.1f %.1f %.1f %.1f %.1f %.1f" % (
        job["write"]["iops"], p(w, "50.000000"), p(w, "99.000000"), p(s, "50.000000"),
        p(s, "99.000000"), w["mean"] / 1e3, s["mean"] / 1e3))
except Exception:
    print("error")
EOF
}

echo "bench: pstor-fsync-bench$( ((QUICK)) && echo ' --quick') --jobs $NJOBS"
echo "kernel: $(uname -r)"
echo "cpus: $(nproc)"
echo "underlying_fs: $(findmnt -no FSTYPE,SOURCE -T "$WORK" | tr -s ' ')"
echo "file_MiB: $SIZE_MB"
echo "runtime_s: $RUNTIME"
ACTIVE=()
for t in $TARGETS; do
	if "setup_$t"; then ACTIVE+=("$t"); fi
done
echo "targets: ${ACTIVE[*]}"

declare -A RES=() # target.nj -> fio_stats line
RUNS=(1)
((NJOBS > 1)) && RUNS+=("$NJOBS")
for t in "${ACTIVE[@]}"; do
	layout "$t" || {
		echo "$t: layout write failed"
		continue
	}
	for nj in "${RUNS[@]}"; do
		RES[$t.$nj]=$(fio_stats "$(run_fio "$t" "$nj")" "$nj")
		read -r ops p50w p99w p50s p99s mw ms <<<"${RES[$t.$nj]}"
		echo "fsync.j$nj.$t.ops_per_s: $ops"
		[[ $ops == error ]] && continue
		echo "fsync.j$nj.$t.write_p50_us: $p50w"
		echo "fsync.j$nj.$t.write_p99_us: $p99w"
		echo "fsync.j$nj.$t.sync_p50_us: $p50s"
		echo "fsync.j$nj.$t.sync_p99_us: $p99s"
		echo "fsync.j$nj.$t.write_plus_sync_mean_us:" \
			"$(python3 -c "print('%.1f' % ($mw + $ms))")"
	done
done

# The table: write+sync is the mean write latency plus the mean sync latency; per writer it
# equals 1/(ops/s per writer) minus fio's own overhead.
echo
python3 - "${RUNS[@]}" -- "${ACTIVE[@]}" -- "${!RES[@]}" -- "${RES[@]}" <<'EOF'
import sys
a = sys.argv[1:]
i = a.index("--"); runs = a[:i]; a = a[i + 1:]
i = a.index("--"); targets = a[:i]; a = a[i + 1:]
i = a.index("--"); keys = a[:i]; vals = a[i + 1:]
res = dict(zip(keys, vals))
hdr = "%-8s %4s %9s %10s %10s %10s %10s %12s" % (
    "target", "jobs", "ops/s", "write p50", "write p99", "sync p50", "sync p99", "w+sync mean")
print(hdr + "   (latencies in us)")
rows = {}
for nj in runs:
    for t in targets:
        v = res.get("%s.%s" % (t, nj), "error").split()
        if len(v) != 7:
            print("%-8s %4s %9s" % (t, nj, "error"))
            continue
        ops, p50w, p99w, p50s, p99s, mw, ms = map(float, v)
        rows[(t, nj)] = (ops, p50w, p99w, p50s, p99s, mw + ms)
        print("%-8s %4s %9.0f %10.1f %10.1f %10.1f %10.1f %12.1f" % (
            t, nj, ops, p50w, p99w, p50s, p99s, mw + ms))
    a, b = rows.get(("pstorfs", nj)), rows.get(("bindfs", nj))
    if a and b:
        print("%-8s %4s %8.2fx %9.2fx %9.2fx %9.2fx %9.2fx %11.2fx" % (
            "ps/bind", nj, *(x / y if y else float("nan") for x, y in zip(a, b))))
EOF
