#!/bin/bash
# tests/bench/fs/pstor-fs-bench.sh - fio side by side, in one run, on a loop device (device floor),
# pstor-passthrough (FUSE ceiling), bindfs (FUSE peer) and pstorfs in both caching modes of its
# image file (pstorfs: O_DIRECT, the default; pstorfs_buffered: -o cache=buffered, through the
# host's page cache), then pstorfs's reduction of real data against the offline ceiling. Prints
# `name: value` lines; asserts nothing.
# It must leave nothing behind: every mount, loop device and file it made is undone on exit.
#
# usage: pstor-fs-bench.sh [--quick]
# env:   PSTOR_BENCH_DIR (default /var/tmp)  work dir parent, on the file system under test
#        PSTOR_BUILD_DIR (default <repo>/build)
#        PSTOR_BENCH_TARGETS (default "loop passthrough bindfs pstorfs pstorfs_buffered")
#        PSTOR_BENCH_JOBS (default: all) job names to run, e.g. "randread4k seqwrite1m"
#        PSTOR_BENCH_DATASETS (default "mixed unique")
#        PSTOR_BENCH_REDUCTION (default 1) 0 skips the reduction part
#        PSTOR_BENCH_BASE_BUILD  a build dir of an older pstorfs: adds the target pstorfs_base
#                                (its daemon with its own defaults), for before/after in one run
#        PSTOR_BENCH_REPEAT (default 1) runs of each job, the targets taking turns run by run;
#                                the median is printed (and each run as <name>.runs)
set -euo pipefail

# The key of MNT/.pstorage/reduction.json that holds the overall reduction ratio (fs/README.md).
REDUCTION_KEY=total_ratio
PSTORFS_OPTS="compression=lz4"
CEILING_CODEC=lz4 # must match PSTORFS_OPTS
BINDFS_OPTS=()    # bindfs as Debian ships it: single-threaded, clears O_DIRECT

QUICK=0
case "${1:-}" in
--quick) QUICK=1 ;;
"") ;;
*)
	echo "usage: $0 [--quick]" >&2
	exit 2
	;;
esac
REPEAT=${PSTOR_BENCH_REPEAT:-1}
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || {
	echo "pstor-fs-bench: PSTOR_BENCH_REPEAT must be a positive integer" >&2
	exit 2
}
if ((QUICK)); then
	SIZE_MB=512 RUNTIME=3 DATA_CAP_MB=256
else
	SIZE_MB=2048 RUNTIME=10 DATA_CAP_MB=1024
fi

ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
BUILD=${PSTOR_BUILD_DIR:-$ROOT/build}
PASSTHROUGH=$BUILD/tests/bench/fs/pstor-passthrough
CEILING=$BUILD/tests/bench/fs/pstor-reduction-ceiling
PSTORFS=$BUILD/fs/pstorfs
MKFS=$BUILD/fs/mkfs.pstorfs
TARGETS=${PSTOR_BENCH_TARGETS:-loop passthrough bindfs pstorfs pstorfs_buffered}
DATASETS=${PSTOR_BENCH_DATASETS:-mixed unique}

skip() {
	echo "pstor-fs-bench: skipped: $*" >&2
	exit 77
}
[[ $(id -u) == 0 ]] || skip "needs root (loop devices, FUSE mounts)"
for t in fio python3 losetup fusermount3 mountpoint flock; do
	command -v "$t" >/dev/null || skip "$t not installed"
done
[[ -c /dev/fuse ]] || skip "no /dev/fuse"
[[ -x $PASSTHROUGH && -x $CEILING ]] || skip "build the bench first: cmake --build $BUILD"

WORK=$(mktemp -d "${PSTOR_BENCH_DIR:-/var/tmp}/pstor-fs-bench.XXXXXX")
MOUNTS=()  # FUSE mount points, unmounted in reverse order
LOOPS=()   # loop devices to detach
IMAGES=()  # pstorfs images: wait for the daemon's flock before removing them
PT_PID=""  # pstor-passthrough runs with -f in the background

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
	[[ -n $PT_PID ]] && wait "$PT_PID" 2>/dev/null
	# umount returns before a FUSE daemon has finished destroy: wait for its device lock.
	for i in "${IMAGES[@]}"; do
		flock -x -w 60 "$i" true || echo "pstor-fs-bench: $i still locked after 60 s" >&2
	done
	for i in "${LOOPS[@]}"; do
		losetup -d "$i"
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
	echo "pstor-fs-bench: $1 did not mount" >&2
	return 1
}

# Data sets: fio buffer options. randrepeat=0 for both, so that each pass writes fresh buffers
# (with the same dedupe/compress mix) instead of repeating the layout pass byte for byte.
declare -A DATASET=(
	[mixed]="--dedupe_percentage=50 --buffer_compress_percentage=50 --buffer_compress_chunk=4k --refill_buffers --randrepeat=0"
	[unique]="--refill_buffers --buffer_compress_percentage=0 --dedupe_percentage=0 --randrepeat=0"
)
# name rw bs iodepth numjobs unit [fio options]
# seqwrite1m_durable ends with an fsync, which fio counts in the job's time: every target then
# pays for making its bytes durable. Without it the peers' writes may still sit in a write cache
# under them (a virtual disk's host page cache: here an fsync of 2 GiB written at 1.8 GB/s
# took 1.4 s), while pstorfs's commits (commit_interval_ms) flush the device during the run.
JOBS=(
	"seqwrite1m write 1M 8 1 MBps"
	"seqwrite1m_durable write 1M 8 1 MBps --end_fsync=1"
	"seqread1m read 1M 8 1 MBps"
	"randwrite4k randwrite 4k 32 1 IOPS"
	"randwrite4k_2jobs randwrite 4k 32 2 IOPS"
	"randread4k randread 4k 32 1 IOPS"
)
if [[ -n ${PSTOR_BENCH_JOBS:-} ]]; then
	sel=()
	for j in "${JOBS[@]}"; do
		[[ " $PSTOR_BENCH_JOBS " == *" ${j%% *} "* ]] && sel+=("$j")
	done
	JOBS=("${sel[@]}")
fi
declare -A FILE=() # target -> file fio runs on
declare -A RES=()  # job.dataset.target -> value

# fio JSON -> one number (MB/s or IOPS), "error" if the job failed.
fio_value() { # JSON rw UNIT
	python3 - "$@" <<'EOF'
import json, sys
path, rw, unit = sys.argv[1:4]
try:
    with open(path) as f:
        txt = f.read()
    job = json.loads(txt[txt.index("{"):])["jobs"][0]
    if job.get("error"):
        raise ValueError
    d = job["read" if "read" in rw else "write"]
    print("%.1f" % (d["bw_bytes"] / 1e6 if unit == "MBps" else d["iops"]))
except Exception:
    print("error")
EOF
}

run_fio() { # TARGET DATASET NAME RW BS QD NJ UNIT [time_based [fio options]]
	local target=$1 ds=$2 name=$3 rw=$4 bs=$5 qd=$6 nj=$7 unit=$8 timed=${9:-1}
	local out=$WORK/fio.$name.$ds.$target.json args=()
	((timed)) && args=(--time_based --runtime="$RUNTIME")
	# shellcheck disable=SC2206 # options split on spaces
	args+=(${10:-})
	# shellcheck disable=SC2086 # DATASET holds several options
	fio --name="$name" --filename="${FILE[$target]}" --size="${SIZE_MB}M" --rw="$rw" --bs="$bs" \
		--iodepth="$qd" --numjobs="$nj" --group_reporting --direct=1 --ioengine=libaio \
		--fallocate=none "${args[@]}" ${DATASET[$ds]} --output-format=json \
		--output="$out" >/dev/null 2>"$out.err" || true
	fio_value "$out" "$rw" "$unit"
}

setup_loop() {
	truncate -s "$((SIZE_MB + 64))M" "$WORK/loop.img"
	local dev
	if ! dev=$(losetup -f --show --direct-io=on "$WORK/loop.img" 2>/dev/null); then
		dev=$(losetup -f --show "$WORK/loop.img") || return 1
		echo "loop: direct-io=on refused, using a buffered loop device" >&2
	fi
	LOOPS+=("$dev")
	FILE[loop]=$dev
}

setup_passthrough() {
	mkdir -p "$WORK/pt.src" "$WORK/pt.mnt"
	MOUNTS+=("$WORK/pt.mnt")
	"$PASSTHROUGH" "$WORK/pt.src" "$WORK/pt.mnt" -f &
	PT_PID=$!
	wait_mounted "$WORK/pt.mnt" || return 1
	FILE[passthrough]=$WORK/pt.mnt/bench
}

setup_bindfs() {
	command -v bindfs >/dev/null || {
		echo "bindfs: not installed, skipped"
		return 1
	}
	mkdir -p "$WORK/bindfs.src" "$WORK/bindfs.mnt"
	MOUNTS+=("$WORK/bindfs.mnt")
	bindfs "${BINDFS_OPTS[@]}" "$WORK/bindfs.src" "$WORK/bindfs.mnt" || return 1
	wait_mounted "$WORK/bindfs.mnt" || return 1
	FILE[bindfs]=$WORK/bindfs.mnt/bench
}

mount_pstorfs() { # IMG MNT [EXTRA_OPTS [BUILD_DIR]]
	local pstorfs=${4:-$BUILD}/fs/pstorfs mkfs=${4:-$BUILD}/fs/mkfs.pstorfs
	mkdir -p "$2"
	truncate -s 16G "$1"
	"$mkfs" --size 16G "$1" >"$WORK/mkfs.log" 2>&1 || {
		echo "pstorfs: mkfs.pstorfs failed: $(tail -1 "$WORK/mkfs.log")"
		return 1
	}
	IMAGES+=("$1")
	MOUNTS+=("$2")
	"$pstorfs" "$1" "$2" -o "$PSTORFS_OPTS${3:+,$3}" || {
		echo "pstorfs: mount failed (exit $?)"
		return 1
	}
	wait_mounted "$2" || return 1
}

setup_pstorfs_as() { # TARGET [EXTRA_OPTS [BUILD_DIR]]
	local t=$1 b=${3:-$BUILD}
	[[ -x $b/fs/pstorfs && -x $b/fs/mkfs.pstorfs ]] || {
		echo "$t: not built, skipped"
		return 1
	}
	mount_pstorfs "$WORK/$t.img" "$WORK/$t.mnt" "${2:-}" "$b" || return 1
	# The caching mode the daemon got (a host filesystem may refuse O_DIRECT).
	echo "$t.cache: $(sed -n 's/^cache  *//p' "$WORK/$t.mnt/.pstorage/flash/identity")"
	truncate -s 8G "$WORK/$t.mnt/volumes/bench" || {
		echo "$t: cannot create volumes/bench, skipped"
		return 1
	}
	FILE[$t]=$WORK/$t.mnt/volumes/bench
}
setup_pstorfs() { setup_pstorfs_as pstorfs; }
setup_pstorfs_buffered() { setup_pstorfs_as pstorfs_buffered cache=buffered; }
setup_pstorfs_base() {
	[[ -n ${PSTOR_BENCH_BASE_BUILD:-} ]] || {
		echo "pstorfs_base: PSTOR_BENCH_BASE_BUILD not set, skipped"
		return 1
	}
	setup_pstorfs_as pstorfs_base "" "$PSTOR_BENCH_BASE_BUILD"
}

echo "bench: pstor-fs-bench$( ((QUICK)) && echo ' --quick')"
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

# The median of the numbers given ("error" when one run failed).
median() {
	python3 -c 'import sys
v = sys.argv[1:]
print("error" if "error" in v else "%.1f" % sorted(map(float, v))[len(v) // 2])' "$@"
}

for ds in $DATASETS; do
	# Lay the file out with this data set so that reads hit real data.
	for t in "${ACTIVE[@]}"; do
		v=$(run_fio "$t" "$ds" layout write 1M 8 1 MBps 0)
		echo "layout.$ds.$t.MBps: $v"
	done
	# With repeats, the targets take turns run by run: on a shared machine the load moves
	# within minutes, and one target's runs back to back would all meet the same load.
	for j in "${JOBS[@]}"; do
		read -r name rw bs qd nj unit extra <<<"$j"
		declare -A RUNS=()
		for ((r = 0; r < REPEAT; r++)); do
			for t in "${ACTIVE[@]}"; do
				RUNS[$t]+="$(run_fio "$t" "$ds" "$name" "$rw" "$bs" "$qd" "$nj" "$unit" 1 "$extra") "
			done
		done
		for t in "${ACTIVE[@]}"; do
			# shellcheck disable=SC2086 # a list of numbers
			v=$(median ${RUNS[$t]})
			RES[$name.$ds.$t]=$v
			echo "$name.$ds.$t.$unit: $v"
			if ((REPEAT > 1)); then
				echo "$name.$ds.$t.runs: ${RUNS[$t]% }"
			fi
		done
		unset RUNS
	done
	for j in "${JOBS[@]}"; do
		read -r name _ <<<"$j"
		base=${RES[$name.$ds.passthrough]:-}
		for t in "${ACTIVE[@]}"; do
			[[ $t == passthrough ]] && continue
			v=${RES[$name.$ds.$t]}
			if [[ $base =~ ^[0-9.]+$ && $v =~ ^[0-9.]+$ ]] && [[ $base != 0.0 ]]; then
				echo "$name.$ds.$t.ratio_to_passthrough: $(python3 -c "print('%.2f' % ($v / $base))")"
			fi
		done
	done
done

[[ ${PSTOR_BENCH_REDUCTION:-1} == 1 ]] || exit 0
# Real data: a tar of system files, written twice back to back into one fresh pstorfs volume.
cap=$((DATA_CAP_MB << 20))
tar -cf - /usr/lib /usr/share 2>/dev/null | head -c "$cap" >"$WORK/data.tar" || true
# Whole MiBs, so the second copy starts on a block boundary and dd's seek is exact.
data_mb=$(($(stat -c %s "$WORK/data.tar") >> 20))
truncate -s "$((data_mb << 20))" "$WORK/data.tar"
echo "reduction.data_MiB: $data_mb"
echo "reduction.logical_MiB: $((data_mb * 2))"
ceiling_out=$(cat "$WORK/data.tar" "$WORK/data.tar" | "$CEILING" --codec "$CEILING_CODEC" /dev/stdin)
sed -n 's/^\(codec\|logical_bytes\|unique_blocks\|stored_bytes\|ceiling_ratio\): /reduction.ceiling.&/p' \
	<<<"$ceiling_out"
ceiling=$(sed -n 's/^ceiling_ratio: //p' <<<"$ceiling_out")

reduce_pstorfs() {
	[[ -x $PSTORFS && -x $MKFS ]] || {
		echo "reduction.pstorfs: not built, skipped"
		return 0
	}
	local mnt=$WORK/reduce.mnt vol
	mount_pstorfs "$WORK/reduce.img" "$mnt" || return 0
	vol=$mnt/volumes/reduce
	truncate -s "$((data_mb * 2 + 64))M" "$vol" || {
		echo "pstorfs: cannot create volumes/reduce"
		return 0
	}
	if ! dd if="$WORK/data.tar" of="$vol" bs=1M conv=notrunc,fsync status=none ||
		! dd if="$WORK/data.tar" of="$vol" bs=1M seek="$data_mb" conv=notrunc,fsync status=none; then
		echo "pstorfs: dd into volumes/reduce failed"
		return 0
	fi
	[[ -e $mnt/.pstorage/ctl ]] && { echo sync >"$mnt/.pstorage/ctl" || true; }
	if cat "$WORK/data.tar" "$WORK/data.tar" | cmp -s -n "$((data_mb << 21))" - "$vol"; then
		echo "reduction.pstorfs.readback: identical"
	else
		echo "reduction.pstorfs.readback: DIFFERS"
	fi
	python3 - "$mnt/.pstorage/reduction.json" "$REDUCTION_KEY" "$ceiling" <<'EOF'
import json, sys
path, key, ceiling = sys.argv[1], sys.argv[2], float(sys.argv[3] or 0)
try:
    with open(path) as f:
        rep = json.load(f)
except Exception as e:
    print("reduction.pstorfs: cannot read %s: %s" % (path, e))
    sys.exit(0)
for k, v in rep.items():
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        print("reduction.pstorfs.%s: %s" % (k, v))
ratio = rep.get(key)
if not isinstance(ratio, (int, float)):
    print("reduction.pstorfs: no number under key %r" % key)
elif ceiling > 0:
    print("reduction.fraction_of_ceiling: %.3f" % (ratio / ceiling))
EOF
}
reduce_pstorfs
