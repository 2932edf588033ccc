#!/bin/bash
# tests/bench/fs/pstor-analytics-report-bench.sh - what one read of an analytics report costs the
# daemon with a year of hourly history: mkfs, mount (the sampler a day apart, out of the way),
# `analytics import` of 8,760 hourly samples, then for each of .pstorage/metrics,
# .pstorage/analytics/capacity[.json] and health[.json]: the first read after the import (the
# history just changed: computed) and the mean of N reads in a row after it (nothing changed).
# Prints `name: value` lines: wall ms per read and the daemon's CPU ms per read (utime + stime
# of the daemon from /proc, so the cat's own cost is left out). Run it with PSTOR_DAEMON set to
# an older pstorfs binary for the figures before a change. Environment: PSTOR_BUILD_DIR (build),
# PSTOR_DAEMON ($PSTOR_BUILD_DIR/fs/pstorfs), PSTOR_REPORT_BENCH_N (50), PSTOR_REPORT_BENCH_K (5),
# PSTOR_BENCH_DIR (/var/tmp). Asserts nothing. Leaves nothing behind.
set -euo pipefail

BUILD=${PSTOR_BUILD_DIR:-build}
DAEMON=${PSTOR_DAEMON:-$BUILD/fs/pstorfs}
N=${PSTOR_REPORT_BENCH_N:-50}
W=$(mktemp -d "${PSTOR_BENCH_DIR:-/var/tmp}/pstor-report-bench.XXXXXX")
M=$W/m
PID=
cleanup() {
	if mountpoint -q "$M" 2>/dev/null; then fusermount3 -u "$M" || umount -l "$M"; fi
	[ -z "$PID" ] || wait "$PID" 2>/dev/null || true
	rm -rf "$W"
}
trap cleanup EXIT
[ "$(id -u)" = 0 ] || { echo "needs root (FUSE mounts)"; exit 77; }
command -v python3 >/dev/null || { echo "needs python3"; exit 77; }

# A year of hourly samples: used bytes growing with a weekly wobble, life used and the
# device/host written counters growing (so write amplification and the wear-out have figures).
python3 - "$W/year.csv" <<'EOF'
import math, sys
t0 = 1735689600  # 2025-01-01
with open(sys.argv[1], 'w') as f:
    f.write('time,physical_used_bytes,capacity_bytes,host_bytes_written,device_bytes_written,'
            'life_used_percent,volumes\n')
    for i in range(365 * 24):
        used = 2 * 10**11 + i * 4 * 10**7 + 5 * 10**9 * math.sin(i / 168 * 2 * math.pi)
        host = i * 10**9
        f.write('%d,%d,%d,%d,%d,%.4f,%d\n' % (t0 + i * 3600, used, 10**12, host,
                                             int(host * 1.3), 2 + i * 0.003, 4))
EOF

"$BUILD/fs/mkfs.pstorfs" -q --size 1G "$W/img" >/dev/null
mkdir -p "$M"
"$DAEMON" "$W/img" "$M" -f -o analytics_interval=86400 >"$W/log" 2>&1 &
PID=$!
for _ in $(seq 100); do [ -e "$M/.pstorage/ctl" ] && break; sleep 0.1; done
[ -e "$M/.pstorage/ctl" ] || { echo "mount failed: $(cat "$W/log")"; exit 1; }
echo "analytics import $W/year.csv" >"$M/.pstorage/ctl"
echo "import: $(cat "$M/.pstorage/ctl")"
echo "history_rows: $(($(wc -l <"$M/.pstorage/analytics/history.csv") - 1))"

cpu_ticks() { # the daemon's utime + stime, in clock ticks
	awk '{ print $14 + $15 }' "/proc/$PID/stat"
}
HZ=$(getconf CLK_TCK)
now_ns() { date +%s%N; }

# Each file: K reads each right after an import (the history has just changed: computed), then
# N reads in a row after the last (nothing changed). CPU ticks are 10 ms: K and N average them.
K=${PSTOR_REPORT_BENCH_K:-5}
for f in metrics analytics/capacity analytics/capacity.json analytics/health \
	analytics/health.json; do
	name=$(basename "$f" | tr . _)
	first_ns=0 first_ticks=0
	for _ in $(seq "$K"); do
		echo "analytics import $W/year.csv" >"$M/.pstorage/ctl"
		c0=$(cpu_ticks)
		t0=$(now_ns)
		cat "$M/.pstorage/$f" >/dev/null
		t1=$(now_ns)
		c1=$(cpu_ticks)
		first_ns=$((first_ns + t1 - t0))
		first_ticks=$((first_ticks + c1 - c0))
	done
	c1=$(cpu_ticks)
	t1=$(now_ns)
	for _ in $(seq "$N"); do cat "$M/.pstorage/$f" >/dev/null; done
	t2=$(now_ns)
	c2=$(cpu_ticks)
	python3 - "$name" "$first_ns" "$first_ticks" "$K" "$((t2 - t1))" "$((c2 - c1))" "$N" \
		"$HZ" <<'EOF'
import sys
name = sys.argv[1]
fns, fticks, k, rns, rticks, n, hz = (int(x) for x in sys.argv[2:])
print("%s_first_read_ms: %.2f" % (name, fns / 1e6 / k))
print("%s_first_read_daemon_cpu_ms: %.1f" % (name, fticks * 1000 / hz / k))
print("%s_repeat_read_ms: %.2f" % (name, rns / 1e6 / n))
print("%s_repeat_read_daemon_cpu_ms: %.2f" % (name, rticks * 1000 / hz / n))
EOF
done
