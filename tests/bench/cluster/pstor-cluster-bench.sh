#!/bin/bash
# tests/bench/cluster/pstor-cluster-bench.sh - a stretched pod against an unreplicated volume of
# the same box, in one run, over a veth link between two network namespaces: fio 4k random writes
# at qd32 (IOPS, p50/p99) and at qd1 (the round trip alone), 1M sequential writes, the same
# through the other box (forwarded to the leader), the resync rate against the link's own
# throughput (iperf3), and bytes on the wire per logical byte for unique, compressible and
# duplicate data. Prints `name: value` lines; asserts nothing. Leaves nothing behind (lib.sh's
# teardown).
# The write jobs run twice: `shared` (both daemons and fio on all of this machine's cores, as the
# tests run them: the replicated path does two boxes' work on one box's cores) and `pinned`
# (two machines emulated: box a's daemon and the writer on CPU 0, box b's daemon on CPU 1, and
# the unreplicated run pinned as box a is: the same CPU budget per box). Needs 2 CPUs for the
# pinned mode (skipped with fewer).
# Each local and stretched job prints every CPU's busy share over it (cpu_busy, /proc/stat: other
# processes on the machine count, so a run shows whether its cores were free).
#
# usage: pstor-cluster-bench.sh [--quick]      env: PSTOR_BUILD_DIR (default <repo>/build),
#   PSTOR_BENCH_PERF=DIR: perf record -g of each daemon for 10 s of the shared stretched 4k job
#   (DIR/{local,a,b}.data; `perf report -i DIR/a.data --sort comm,dso,sym`);
#   PSTOR_BENCH_WRITES_ONLY=1: the write jobs only (comparing two builds);
#   PSTOR_BENCH_REPEAT=N: each write job N times (local, stretched, other box in turn each
#   run), printing each figure's median and its runs (NAME.runs).
QUICK=0
[ "${1:-}" = --quick ] && QUICK=1
set -- # lib.sh reads $1 as a case name
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../../integration/lib.sh"
source "$here/../../integration/lib_cluster.sh"
need_binaries
need fio nft iperf3
if ((QUICK)); then RUNTIME=4 RESYNC_MB=128 WIRE_MB=32; else RUNTIME=10 RESYNC_MB=512 WIRE_MB=128; fi
REPEAT=${PSTOR_BENCH_REPEAT:-1}
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || {
	echo "pstor-cluster-bench: PSTOR_BENCH_REPEAT must be a positive integer" >&2
	exit 2
}

out() { printf '%s: %s\n' "$1" "$2"; }

# fio on FILE (JOB: randwrite4k, randwrite4k_qd1: the round trip alone, seqwrite1m), direct I/O;
# prints "IOPS MBps P50us P99us".
fio_run() { # FILE JOB [CPU] [RUNTIME]
	local args=(--name=j --filename="$1" --direct=1 --ioengine=libaio --time_based
		--runtime="${4:-$RUNTIME}" --ramp_time=1 --randrepeat=0 --refill_buffers
		--output-format=json) pin=()
	[ -z "${3:-}" ] || pin=(taskset -c "$3")
	case $2 in
	randwrite4k) args+=(--rw=randwrite --bs=4k --iodepth=32 --size=512M) ;;
	randwrite4k_qd1) args+=(--rw=randwrite --bs=4k --iodepth=1 --size=512M) ;;
	seqwrite1m) args+=(--rw=write --bs=1M --iodepth=4 --size=512M) ;;
	esac
	"${pin[@]}" fio "${args[@]}" >"$T/fio.json" 2>"$T/fio.err" || {
		echo "error error error error"
		return
	}
	"$PY" - "$T/fio.json" <<'EOF'
import json, sys
w = json.load(open(sys.argv[1]))["jobs"][0]["write"]
p = w["clat_ns"]["percentile"]
print("%.0f %.1f %.0f %.0f" % (w["iops"], w["bw_bytes"] / 1e6, p["50.000000"] / 1e3,
                               p["99.000000"] / 1e3))
EOF
}

pod_field() { # BOX FIELD
	"$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); print([p for p in d['pods'] if p['name']=='p1'][0][sys.argv[2]])" \
		"$T/$1/.pstorage/cluster/status.json" "$2"
}

cl_net_up
pstor_mkfs "$T/a.img" 16G
pstor_mkfs "$T/b.img" 16G
# A ping answered late because the machine is loaded (the pinned mode leaves box b one CPU)
# would flap the link mid-job, and a job would measure the failover and resync instead: 10 s.
cl_mount a "$T/a.img" cluster_timeout_ms=10000
cl_mount b "$T/b.img" cluster_timeout_ms=10000
cl_ctl a cluster peer add boxb 10.77.0.2:$CL_PORT
cl_ctl b cluster peer add boxa 10.77.0.1:$CL_PORT
cl_link_up a
cl_ctl a volume create local 1G
cl_ctl a volume create rep 1G
cl_ctl a volume create wire 1G
cl_ctl a pod create p1
cl_ctl a pod add p1 rep
cl_ctl a pod add p1 wire
cl_ctl a pod stretch p1 boxb
cl_wait_state b p1 in_sync 120
out cluster.rtt_us "$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['peers'][0]['rtt_us'])" "$T/a/.pstorage/cluster/status.json")"

# perf record -g of PID for 10 s, 1.5 s from now, into $PSTOR_BENCH_PERF/NAME.data (background).
PERF_PIDS=()
perf_start() { # NAME PID
	(sleep 1.5 && exec perf record -q -g -p "$2" -o "$PSTOR_BENCH_PERF/$1.data" -- sleep 10) \
		>/dev/null 2>&1 &
	PERF_PIDS+=($!)
}
perf_wait() { # the recordings started (not the daemons, also children of this shell)
	wait "${PERF_PIDS[@]}"
	PERF_PIDS=()
}

# Every run's value of each name, in the order the names came (PSTOR_BENCH_REPEAT runs of a
# job: the machine's load moves within minutes, so one run can mislead by 1.5-2x). acc_print
# prints each name's median and, with more than one run, the runs themselves (NAME.runs); a
# value that is not a number, each run's, separated by ' | '.
ACC_NAMES=()
declare -A ACC
acc_reset() {
	ACC_NAMES=()
	ACC=()
}
acc() { # NAME VALUE (no '|' in VALUE)
	[ -n "${ACC[$1]+x}" ] || ACC_NAMES+=("$1")
	ACC[$1]+="${ACC[$1]+|}$2"
}
acc_print() {
	local n
	for n in "${ACC_NAMES[@]}"; do
		"$PY" -c "
import sys
name, runs = sys.argv[1], sys.argv[2].split('|')
try:
    print('%s: %s' % (name, sorted(runs, key=float)[len(runs) // 2]))
    if len(runs) > 1:
        print('%s.runs: %s' % (name, ' '.join(runs)))
except ValueError:  # not a number (cpu_busy, cpu_us_per_write): each run's
    print('%s: %s' % (name, ' | '.join(runs)))
" "$n" "${ACC[$n]}"
	done
}

# Write performance: the same jobs on the unreplicated volume and the stretched one. MODE
# prefixes the names (none for shared); CPU_A/CPU_B pin the writers (empty: not pinned).
write_jobs() { # MODE_PREFIX CPU_A CPU_B
	local m=$1 ca=$2 cb=$3 job li lb lp50 lp99 ri rb rp50 rp99 fi fb fp50 fp99 rt= rep
	for job in randwrite4k randwrite4k_qd1 seqwrite1m; do
		acc_reset
		for ((rep = 0; rep < REPEAT; rep++)); do
			write_job_once
		done
		acc_print
	done
}

# One run of JOB on the three volumes (write_jobs' locals); its lines go to acc.
write_job_once() {
	rt=
	if [ -n "${PSTOR_BENCH_PERF:-}" ] && [ -z "$m" ] && [ $job = randwrite4k ]; then
		mkdir -p "$PSTOR_BENCH_PERF"
		rt=12
		perf_start local "${_DPID[$T/a]}"
	fi
	local l0 l1
	l0=$(cpu_stat)
	read -r li lb lp50 lp99 <<<"$(fio_run "$T/a/volumes/local" $job "$ca" $rt)"
	l1=$(cpu_stat)
	if [ -n "$rt" ]; then
		perf_wait
		perf_start a "${_DPID[$T/a]}"
		perf_start b "${_DPID[$T/b]}"
	fi
	local a0 b0 a1 b1 s0 s1
	a0=$(cpu_ns "$T/a")
	b0=$(cpu_ns "$T/b")
	s0=$(cpu_stat)
	read -r ri rb rp50 rp99 <<<"$(fio_run "$T/a/volumes/rep" $job "$ca" $rt)"
	s1=$(cpu_stat)
	a1=$(cpu_ns "$T/a")
	b1=$(cpu_ns "$T/b")
	[ -z "$rt" ] || perf_wait
	read -r fi fb fp50 fp99 <<<"$(fio_run "$T/b/volumes/rep" $job "$cb")"
	acc "$m$job.local.iops" "$li"
	acc "$m$job.local.MBps" "$lb"
	acc "$m$job.local.p50_us" "$lp50"
	acc "$m$job.local.p99_us" "$lp99"
	acc "$m$job.local.cpu_busy" "$(cpu_busy "$l0" "$l1")"
	acc "$m$job.stretched_leader.iops" "$ri"
	acc "$m$job.stretched_leader.MBps" "$rb"
	acc "$m$job.stretched_leader.p50_us" "$rp50"
	acc "$m$job.stretched_leader.p99_us" "$rp99"
	acc "$m$job.stretched_other_box.iops" "$fi"
	acc "$m$job.stretched_other_box.MBps" "$fb"
	acc "$m$job.stretched_other_box.p99_us" "$fp99"
	acc "$m$job.stretched_leader.cpu_busy" "$(cpu_busy "$s0" "$s1")"
	while IFS= read -r line; do
		acc "${line%%: *}" "${line#*: }"
	done < <("$PY" -c "
import sys
sys.argv[1:] = [x if x != 'error' else '0' for x in sys.argv[1:]]  # a failed job counts 0
l, r, f = (float(x) for x in sys.argv[1:4])
print('$m$job.ratio_leader_vs_local: %.2f' % (r / l if l else 0))
print('$m$job.ratio_other_box_vs_local: %.2f' % (f / l if l else 0))
print('$m$job.added_p50_us: %s' % (int(float(sys.argv[5]) - float(sys.argv[4]))))
print('$m$job.added_p99_us: %s' % (int(float(sys.argv[7]) - float(sys.argv[6]))))
n = r * (float(sys.argv[12]) + 1)  # writes in the run and its ramp (approximate)
if n:
    print('$m$job.stretched_leader.cpu_us_per_write: box a %.1f, box b %.1f' %
          ((float(sys.argv[9]) - float(sys.argv[8])) / 1e3 / n,
           (float(sys.argv[11]) - float(sys.argv[10])) / 1e3 / n))
" "$li" "$ri" "$fi" "$lp50" "$rp50" "$lp99" "$rp99" "$a0" "$a1" "$b0" "$b1" "${rt:-$RUNTIME}")
}

# CPU time of every thread of the daemon serving MNT, in ns (schedstat: not tick-rounded).
cpu_ns() { # MNT
	cat /proc/"${_DPID[$1]}"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.0f", s}'
}

# Every CPU's busy and total jiffies ("b0 t0 b1 t1 ..."): whether a core was free is the whole
# machine's business (other processes share it), not only the daemons' CPU per write.
cpu_stat() {
	awk '/^cpu[0-9]/ {printf "%d %d ", $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8}' /proc/stat
}

cpu_busy() { # BEFORE AFTER (cpu_stat): "cpu0 NN%, cpu1 NN%, ..."
	"$PY" -c "
import sys
a, b = ([int(x) for x in s.split()] for s in sys.argv[1:3])
print(', '.join('cpu%d %.0f%%' % (i // 2, 100 * (b[i] - a[i]) / max(1, b[i + 1] - a[i + 1]))
                for i in range(0, len(a), 2)))
" "$1" "$2"
}

pin_daemon() { # MNT CPUS: every thread of the daemon serving MNT (new ones inherit it)
	taskset -a -p -c "$2" "${_DPID[$1]}" >/dev/null
}

out mode "shared (both daemons and fio on all $(nproc) CPUs)"
write_jobs "" "" ""
if [ "$(nproc)" -ge 2 ]; then
	out mode "pinned (two machines emulated: box a and its writer on CPU 0, box b on CPU 1)"
	pin_daemon "$T/a" 0
	pin_daemon "$T/b" 1
	write_jobs pinned. 0 1
	pin_daemon "$T/a" "0-$(($(nproc) - 1))"
	pin_daemon "$T/b" "0-$(($(nproc) - 1))"
else
	out mode "pinned: skipped (one CPU)"
fi

[ -z "${PSTOR_BENCH_WRITES_ONLY:-}" ] || exit 0

# Wire bytes per logical byte, by kind of data.
wire_ratio() { # NAME DD-SOURCE-FILE SEEK_MB
	local w0 l0 w1 l1
	w0=$(pod_field a wire_bytes)
	l0=$(pod_field a logical_bytes)
	dd if="$2" of="$T/a/volumes/wire" bs=1M seek="$3" oflag=direct conv=notrunc status=none
	w1=$(pod_field a wire_bytes)
	l1=$(pod_field a logical_bytes)
	out "wire_per_logical.$1" "$("$PY" -c "print('%.3f' % (($w1-$w0)/($l1-$l0)))")"
}
head -c "${WIRE_MB}M" /dev/urandom >"$T/unique"
"$PY" -c "
import os, sys
mb = int(sys.argv[2])
with open(sys.argv[1], 'wb') as f:
    for i in range(mb * 256):   # 4 KiB blocks: half random, half zeros (about 2:1 for lz4)
        f.write(os.urandom(2048) + bytes(2048))
" "$T/compressible" "$WIRE_MB"
wire_ratio unique "$T/unique" 0
wire_ratio compressible "$T/compressible" "$WIRE_MB"
wire_ratio duplicate "$T/unique" $((2 * WIRE_MB)) # the same bytes again, elsewhere

# Resync: box b away while RESYNC_MB of unique data lands on box a, then back.
head -c "${RESYNC_MB}M" /dev/urandom >"$T/resync"
cl_cut
cl_wait_state a p1 degraded 30
dd if="$T/resync" of="$T/a/volumes/rep" bs=1M oflag=direct conv=notrunc status=none
cl_heal # returns once both boxes saw the cut, as it heals it: the reconnect is timed
t0=$(date +%s.%N)
n=6000
until grep -q '"link":"up"' "$T/a/.pstorage/cluster/status.json" 2>/dev/null; do
	n=$((n - 1))
	[ $n -gt 0 ] || fail "the link did not come back within 60 s of the heal"
	sleep 0.01
done
tup=$(date +%s.%N)
cl_wait_state b p1 in_sync 600
t1=$(date +%s.%N)
resync=$("$PY" -c "print('%.1f' % ($RESYNC_MB * 1.048576 / ($t1 - $t0)))")
out resync.MBps "$resync"
# The same without the reconnect (the dial after the heal): the copy's own rate.
out resync.reconnect_s "$("$PY" -c "print('%.2f' % ($tup - $t0))")"
out resync.copy_MBps "$("$PY" -c "print('%.1f' % ($RESYNC_MB * 1.048576 / ($t1 - $tup)))")"
ip netns exec "${CL_NS}a" iperf3 -s -1 -D -p 5201 >/dev/null 2>&1
sleep 0.5
link=$(ip netns exec "${CL_NS}b" iperf3 -c 10.77.0.1 -p 5201 -t 3 -J 2>/dev/null |
	"$PY" -c "import json,sys; print('%.1f' % (json.load(sys.stdin)['end']['sum_received']['bits_per_second']/8e6))")
out link.tcp_MBps "$link"
out resync.ratio_vs_link "$("$PY" -c "print('%.3f' % ($resync / $link))")"
same=$([ "$(cl_sha "$T/a/volumes/rep")" = "$(cl_sha "$T/b/volumes/rep")" ] && echo yes || echo NO)
out replicas_identical "$same"
