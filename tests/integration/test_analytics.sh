#!/bin/bash
# Analytics on a real mount: per-volume usage counts each chunk once (the demo's volume: its data
# twice, then a snapshot), the counter history grows every analytics_interval and survives an
# unmount and kill -9, `analytics import` replaces it with a checked CSV (a bad one changes
# nothing), the box's forecasts are recorded and graded as history time passes, and a bad
# analytics_interval option refuses the mount.
. "$(dirname "$0")/lib.sh"
need_binaries

IMG=$T/img
M=$T/m
HIST=$M/.pstorage/analytics/history.csv

# history.csv has no size (st_size 0, read through): compare its bytes, never its size, as a
# plain `cmp A B` of two regular files would.
same_hist() { # FILE
	cat "$HIST" | cmp -s - "$1"
}

rows() { # data lines of history.csv
	tail -n +2 "$HIST" | wc -l
}

wait_rows() { # N: until history.csv has at least N rows (30 s at most)
	local n=300
	until [ "$(rows)" -ge "$1" ]; do
		n=$((n - 1))
		[ $n -gt 0 ] || fail "history.csv has $(rows) rows, waited for $1"
		sleep 0.1
	done
}

case_demo_volume_counts_chunks_once() {
	pstor_mkfs "$IMG" 1G
	pstor_mount "$IMG" "$M"
	check "a volume holding 32 MiB of text twice, then a snapshot of it"
	text_file "$T/text" $((32 << 20))
	truncate -s 64M "$M/volumes/demo"
	put_at "$T/text" "$M/volumes/demo" 0
	put_at "$T/text" "$M/volumes/demo" $((32 << 20))
	ctl "$M" "snapshot create demo s1"
	ctl "$M" sync
	local written unique shared used red
	written=$(vol_attr "$M" demo written)
	unique=$(vol_attr "$M" demo unique)
	shared=$(vol_attr "$M" demo shared)
	used=$(df_used "$M")
	red=$(cat "$M/.pstorage/volumes/demo/reduction")
	log "written $written, unique $unique, shared $shared, pool used $used, reduction $red"
	[ "$written" = $((64 << 20)) ] || fail "written $written, want $((64 << 20))"
	[ "$unique" = 0 ] || fail "unique $unique: the snapshot shares every chunk"
	[ "$shared" -gt 0 ] || fail "shared is 0"
	[ "$shared" -le "$used" ] || fail "shared $shared exceeds what the pool holds ($used)"
	# Each chunk once: the volume's share is what the pool stores for it, so written / shared
	# is twice the compression ratio (at least 2:1 for text).
	"$PY" -c "import sys; w,s,r=$written,$shared,float('${red%%:*}'); \
sys.exit(0 if r >= 2.0 and abs(r - w / s) < 0.01 else 1)" ||
		fail "reduction $red, want written/shared = $("$PY" -c "print($written/$shared)") >= 2"
	pstor_umount "$M"
}

case_history_survives_remount_and_kill9() {
	pstor_mkfs "$IMG" 256M
	pstor_mount "$IMG" "$M" analytics_interval=1
	[ "$(cat "$M/.pstorage/config/analytics_interval")" = 1 ] || fail "analytics_interval not 1"
	head -n 1 "$HIST" | grep -q '^time,physical_used_bytes,' || fail "header: $(head -n 1 "$HIST")"
	truncate -s 8M "$M/volumes/v"
	rand_file "$T/r" $((4 << 20))
	put_at "$T/r" "$M/volumes/v" 0
	wait_rows 3
	check "rows are one interval apart, physical_used_bytes grows with the data"
	"$PY" - "$HIST" <<'PYEOF' || fail "history.csv: $(cat "$HIST")"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
t = [int(r['time']) for r in rows]
assert all(b > a for a, b in zip(t, t[1:])), t
assert all(b - a <= 3 for a, b in zip(t, t[1:])), t
assert int(rows[-1]['physical_used_bytes']) >= 4 << 20, rows[-1]
assert int(rows[-1]['logical_written_bytes']) == 4 << 20, rows[-1]
PYEOF
	check "an unmount and remount keep every row"
	pstor_umount "$M"
	pstor_mount "$IMG" "$M"
	cp "$HIST" "$T/h1"
	[ "$(tail -n +2 "$T/h1" | wc -l)" -ge 3 ] || fail "rows lost over a remount: $(cat "$T/h1")"
	[ "$(cat "$M/.pstorage/config/analytics_interval")" = 1 ] || fail "setting not kept"
	wait_rows $(($(tail -n +2 "$T/h1" | wc -l) + 2))
	check "volumes.csv: a row for the volume at the mount's first sample, each chunk once"
	local VC=$M/.pstorage/analytics/volumes.csv
	head -n 1 "$VC" | grep -qx 'time,volume,size_bytes,written_bytes,unique_bytes,shared_bytes' ||
		fail "volumes.csv header: $(head -n 1 "$VC")"
	grep -qE "^[0-9]+,v,8388608,4194304,[0-9]+,0$" "$VC" || fail "volumes.csv: $(cat "$VC")"
	check "kill -9 keeps every row that history.csv showed before it"
	cp "$HIST" "$T/h2"
	pstor_kill9 "$M"
	pstor_mount "$IMG" "$M"
	cp "$HIST" "$T/h3"
	head -n "$(wc -l <"$T/h2")" "$T/h3" | cmp -s - "$T/h2" ||
		fail "rows lost over kill -9: before $(wc -l <"$T/h2") lines, after $(wc -l <"$T/h3")"
	head -n "$(wc -l <"$T/h1")" "$T/h3" | cmp -s - "$T/h1" || fail "older rows changed"
	pstor_umount "$M"
}

case_fsck_repair_and_rebuild_keep_the_mount() {
	pstor_mkfs "$IMG" 256M
	pstor_mount "$IMG" "$M" analytics_interval=1
	truncate -s 4M "$M/volumes/v"
	rand_file "$T/r" $((1 << 20))
	put_at "$T/r" "$M/volumes/v" 0
	wait_rows 2
	pstor_umount "$M"
	local FSCK=$PSTOR_BUILD_DIR/fs/fsck.pstorfs rc=0
	check "fsck --repair of a namespace with history: it mounts, the history is kept"
	"$FSCK" --repair -q "$IMG" >"$T/fsck.out" 2>&1 || rc=$?
	[ $rc -le 1 ] || fail "fsck --repair: status $rc: $(cat "$T/fsck.out")"
	pstor_mount "$IMG" "$M"
	[ "$(rows)" -ge 2 ] || fail "history lost by fsck --repair: $(cat "$HIST")"
	cmp -s <(get_at "$M/volumes/v" 0 $((1 << 20))) "$T/r" || fail "data changed"
	pstor_umount "$M"
	check "fsck --rebuild (metadata rebuilt from the segments): it mounts; the history may go"
	rc=0
	"$FSCK" --rebuild -q "$IMG" >"$T/fsck.out" 2>&1 || rc=$?
	[ $rc -le 1 ] || fail "fsck --rebuild: status $rc: $(cat "$T/fsck.out")"
	pstor_mount "$IMG" "$M" analytics_interval=1
	head -n 1 "$HIST" | grep -q '^time,physical_used_bytes,' || fail "history.csv: $(cat "$HIST")"
	log "after the rebuild: $(rows) rows"
	local before
	before=$(rows)
	wait_rows $((before + 1))
	cmp -s <(get_at "$M/volumes/v" 0 $((1 << 20))) "$T/r" || fail "data changed"
	pstor_umount "$M"
}

case_import_replaces_history_bad_files_change_nothing() {
	pstor_mkfs "$IMG" 256M
	# A day between samples: the box's own samples stay out of the way.
	pstor_mount "$IMG" "$M" analytics_interval=86400
	check "90 days of hourly samples import; history.csv gives them back, downsampled"
	"$PY" - "$T/90d.csv" <<'PYEOF'
import sys
t0 = 1735689600  # 2025-01-01
with open(sys.argv[1], 'w') as f:
    f.write('time,physical_used_bytes,capacity_bytes,volumes\n')
    for i in range(90 * 24):
        f.write('%d,%d,%d,%d\n' % (t0 + i * 3600 + 17, 10**9 + i * 10**7, 10**12, 3))
PYEOF
	ctl "$M" "analytics import $T/90d.csv"
	grep -q "imported 2160 samples" "$M/.pstorage/ctl" || fail "ctl says: $(cat "$M/.pstorage/ctl")"
	# Hourly samples: the raw tier (2 days) and the hourly tier (90 days) keep every one.
	[ "$(rows)" = 2160 ] || fail "history.csv has $(rows) rows, want 2160"
	"$PY" - "$T/90d.csv" "$HIST" <<'PYEOF' || fail "imported rows differ"
import csv, sys
a = list(csv.DictReader(open(sys.argv[1])))
b = list(csv.DictReader(open(sys.argv[2])))
assert len(a) == len(b)
for x, y in zip(a, b):
    for k in x:
        assert x[k] == y[k], (k, x[k], y[k])
    assert y['reduction_ratio'] == '', y
PYEOF
	cp "$HIST" "$T/before"
	check "garbage, out-of-order or duplicate times, absurd values: EINVAL, nothing changes"
	printf 'time,physical_used_bytes\n1735689600,1\n1735689600,2\n' >"$T/dup.csv"
	printf 'time,physical_used_bytes\n1735689660,1\n1735689600,2\n' >"$T/order.csv"
	printf 'time,physical_used_bytes\n1735689600,-1\n' >"$T/neg.csv"
	printf 'time,physical_used_bytes\n1735689600,99999999999999999999999\n' >"$T/huge.csv"
	printf 'time,physical_used_bytes,capacity_bytes\n1735689600,20,10\n' >"$T/over.csv"
	head -c 4096 /dev/urandom >"$T/garbage.csv"
	printf 'PK\003\004 not a csv at all\n' >"$T/zip.csv"
	: >"$T/empty.csv"
	local f
	for f in dup order neg huge over garbage zip empty; do
		expect_ctl "$M" EINVAL "analytics import $T/$f.csv"
		grep -q "error: analytics import $T/$f.csv: line [0-9]*: \|empty file" "$M/.pstorage/ctl" ||
			fail "$f: no reason: $(cat "$M/.pstorage/ctl")"
		log "$f: $(cat "$M/.pstorage/ctl")"
		same_hist "$T/before" || { diff "$HIST" "$T/before" | head -5; fail "$f.csv changed the history"; }
	done
	grep -q "line 3: time 1735689600 is not after" <(
		expect_ctl "$M" EINVAL "analytics import $T/order.csv"
		cat "$M/.pstorage/ctl"
	) || fail "the out-of-order line is not named"
	expect_ctl "$M" ENOENT "analytics import $T/missing.csv"
	expect_ctl "$M" EINVAL "analytics import relative.csv"
	expect_ctl "$M" EINVAL "analytics import"
	same_hist "$T/before" || fail "the history changed"
	check "the imported history survives a remount"
	pstor_umount "$M"
	pstor_mount "$IMG" "$M" analytics_interval=86400
	same_hist "$T/before" || fail "the history changed over a remount"
	pstor_umount "$M"
}

case_import_drives_the_capacity_forecast() {
	pstor_mkfs "$IMG" 256M
	pstor_mount "$IMG" "$M" analytics_interval=86400
	local C=$M/.pstorage/analytics/capacity
	check "12 hours of history: the forecast says it needs 24 h, and makes up nothing"
	"$PY" - "$T/12h.csv" 0.5 <<'PYEOF'
import random, sys
days = float(sys.argv[2])
random.seed(5)
t0 = 1735689600
with open(sys.argv[1], 'w') as f:
    f.write('time,physical_used_bytes,capacity_bytes\n')
    for i in range(int(days * 24 * 6)):
        d = i / 144
        f.write('%d,%d,%d\n' % (t0 + i * 600, 2e11 + 1e9 * d + random.gauss(0, 1e8), 10**12))
PYEOF
	ctl "$M" "analytics import $T/12h.csv"
	grep -q "need 24 h of samples (have 11.8 h)" "$C" || fail "capacity: $(cat "$C")"
	"$PY" - "$C.json" <<'PYEOF' || fail "capacity.json: $(cat "$C.json")"
import json, sys
j = json.load(open(sys.argv[1]))
assert j['status'] == 'insufficient_history' and j['model'] is None and j['forecasts'] == [], j
assert 'need 24 h' in j['message'], j
PYEOF
	check "90 days growing 1 GB a day: forecasts at 7/30/90 days with nested intervals, the full date"
	"$PY" - "$T/90d.csv" 90 <<'PYEOF'
import random, sys
days = float(sys.argv[2])
random.seed(5)
t0 = 1735689600
with open(sys.argv[1], 'w') as f:
    f.write('time,physical_used_bytes,capacity_bytes\n')
    for i in range(int(days * 24)):
        d = i / 24
        f.write('%d,%d,%d\n' % (t0 + i * 3600, 2e11 + 1e9 * d + random.gauss(0, 1e8), 4 * 10**11))
PYEOF
	ctl "$M" "analytics import $T/90d.csv"
	log "$(cat "$C")"
	"$PY" - "$C.json" <<'PYEOF' || fail "capacity.json: $(cat "$C.json")"
import json, sys
j = json.load(open(sys.argv[1]))
assert j['status'] == 'ok', j
assert j['model'] in ('linear', 'holt_damped', 'changepoint', 'exponential', 'drift'), j
fc = j['forecasts']
assert [f['horizon_days'] for f in fc] == [7, 30, 90], fc
now = j['used_bytes']
for f in fc:
    keys = ('lo95_bytes', 'lo80_bytes', 'used_bytes', 'hi80_bytes', 'hi95_bytes')
    v = [f[k] for k in keys]
    assert v == sorted(v), f
    truth = min(2e11 + 1e9 * (90 - 1 / 24 + f['horizon_days']), 4e11)
    assert abs(f['used_bytes'] - truth) < 0.02 * truth, (f, truth)
    assert f['lo95_bytes'] <= truth <= f['hi95_bytes'], (f, truth)
assert abs(j['growth_bytes_per_day'] - 1e9) < 0.05e9, j
full = j['full']
want = (4 * 10**11 - now) / 1e9
assert full['within_year'] and abs(full['days'] - want) <= 0.05 * want + 1, (full, want)
assert full['days_lo95'] <= full['days'] <= full['days_hi95'], full
PYEOF
	grep -q "^model        " "$C" || fail "capacity: $(cat "$C")"
	grep -q "^full         in [0-9]* days" "$C" || fail "capacity: $(cat "$C")"
	check "the forecast as gauges in .pstorage/metrics"
	cat "$M/.pstorage/metrics" >"$T/metrics"
	"$PY" - "$T/metrics" "$C.json" <<'PYEOF' || fail "metrics: $(grep -E 'analytics|capacity_f' "$T/metrics")"
import json, sys
m = {}
for line in open(sys.argv[1]):
    if line.startswith('#'):
        continue
    k, v = line.rsplit(' ', 1)
    m[k] = float(v)
j = json.load(open(sys.argv[2]))
assert m['pstorfs_analytics_history_samples'] == 2160, m
assert m['pstorfs_capacity_full_timestamp_seconds'] == j['full']['timestamp'], j['full']
for f in j['forecasts']:
    for b in ('used', 'lo80', 'hi80', 'lo95', 'hi95'):
        k = 'pstorfs_capacity_forecast_%s_bytes{horizon_days="%d"}' % (b, f['horizon_days'])
        assert m[k] == f[b + '_bytes'], (k, m.get(k), f)
PYEOF
	if command -v promtool >/dev/null; then
		promtool check metrics <"$T/metrics" >"$T/promtool.out" 2>&1 ||
			fail "promtool: $(cat "$T/promtool.out")"
	fi
	pstor_umount "$M"
}

case_health_grades_and_forecasts_wear_out() {
	pstor_mkfs "$IMG" 256M
	pstor_mount "$IMG" "$M" analytics_interval=86400
	local H=$M/.pstorage/analytics/health
	check "a fresh pool: ok, and the wear-out forecast needs 24 h"
	grep -q "^health       ok$" "$H" || fail "health: $(cat "$H")"
	grep -q "^wear-out     need 24 h of samples" "$H" || fail "health: $(cat "$H")"
	check "60 days of life used growing 0.5% a day from 40%: wear-out in about 60 days, a warning"
	"$PY" - "$T/wear.csv" <<'PYEOF'
import random, sys
random.seed(2)
t0 = 1735689600
with open(sys.argv[1], 'w') as f:
    f.write('time,physical_used_bytes,life_used_percent,host_bytes_written,device_bytes_written\n')
    for i in range(60 * 24):
        d = i / 24
        f.write('%d,%d,%.4f,%d,%d\n' % (t0 + i * 3600, 1e10, 40 + 0.5 * d + random.gauss(0, 0.05),
                                        1e9 * i, 1.3e9 * i))
PYEOF
	ctl "$M" "analytics import $T/wear.csv"
	log "$(cat "$H")"
	"$PY" - "$H.json" "$M/.pstorage/metrics" <<'PYEOF' || fail "health.json: $(cat "$H.json")"
import json, sys
j = json.load(open(sys.argv[1]))
assert j['status'] == 'warning', j
assert any('wear-out foreseen in' in r['text'] for r in j['reasons']), j
w = j['wearout']
assert w['status'] == 'ok' and w['within_year'], w
assert abs(w['days'] - 60) <= 2, w
assert w['days_lo95'] <= w['days'] <= w['days_hi95'], w
assert j['wearout_source'] == 'life_used_percent' and j['smart'] is None, j
assert abs(j['life_used_percent'] - 70) < 1, j
assert abs(j['write_amplification']['last_7_days'] - 1.3) < 0.01, j
m = {}
for line in open(sys.argv[2]):
    if not line.startswith('#'):
        k, v = line.rsplit(' ', 1)
        m[k] = float(v)
assert m['pstorfs_health_status'] == 1, m.get('pstorfs_health_status')
assert m['pstorfs_wearout_timestamp_seconds'] == w['timestamp'], w
PYEOF
	if command -v promtool >/dev/null; then
		promtool check metrics <"$M/.pstorage/metrics" >"$T/promtool.out" 2>&1 ||
			fail "promtool: $(cat "$T/promtool.out")"
	fi
	pstor_umount "$M"
}

case_history_never_takes_the_maps_room() {
	check "a small pool: an import bigger than 3/4 of the metadata area is refused, the pool works"
	pstor_mkfs "$IMG" 64M
	pstor_mount "$IMG" "$M" analytics_interval=86400
	"$PY" - "$T/big.csv" <<'PYEOF'
import sys
t0 = 1735689600
with open(sys.argv[1], 'w') as f:
    f.write('time,physical_used_bytes,capacity_bytes,volumes,snapshots,read_ops,write_ops\n')
    for i in range(40 * 86400 // 60):
        f.write('%d,%d,%d,1,0,%d,%d\n' % (t0 + i * 60, 10**7 + i, 6 * 10**7, i, i))
PYEOF
	expect_ctl "$M" ENOSPC "analytics import $T/big.csv"
	grep -q "cannot store the history: No space left on device" "$M/.pstorage/ctl" ||
		fail "ctl: $(cat "$M/.pstorage/ctl")"
	[ "$(rows)" = 0 ] || fail "a refused import left $(rows) rows"
	truncate -s 16M "$M/volumes/v"
	rand_file "$T/r" $((8 << 20))
	put_at "$T/r" "$M/volumes/v" 0
	ctl "$M" "snapshot create v s"
	ctl "$M" sync
	cmp -s <(get_at "$M/volumes/v" 0 $((8 << 20))) "$T/r" || fail "data differs"
	pstor_umount "$M"
}

case_svg_charts_render() {
	need rsvg-convert
	pstor_mkfs "$IMG" 256M
	pstor_mount "$IMG" "$M" analytics_interval=86400
	local A=$M/.pstorage/analytics f
	check "with no history the charts still render, and say why they show no forecast"
	for f in capacity wear; do
		cat "$A/$f.svg" >"$T/$f.0.svg"
		rsvg-convert -o "$T/$f.0.png" "$T/$f.0.svg" 2>"$T/rsvg.err" ||
			fail "rsvg-convert $f.svg: $(cat "$T/rsvg.err")"
		grep -q "need 24 h of samples" "$T/$f.0.svg" || fail "$f.svg: no message"
	done
	check "90 days of history: history, cone, limit and full date render"
	"$PY" - "$T/90d.csv" <<'PYEOF'
import random, sys
random.seed(9)
t0 = 1735689600
with open(sys.argv[1], 'w') as f:
    f.write('time,physical_used_bytes,capacity_bytes,life_used_percent\n')
    for i in range(90 * 24):
        d = i / 24
        f.write('%d,%d,%d,%.3f\n' % (t0 + i * 3600, 2e11 + 2e9 * d + random.gauss(0, 1e8), 5 * 10**11,
                                     20 + 0.5 * d))
PYEOF
	ctl "$M" "analytics import $T/90d.csv"
	for f in capacity wear; do
		cat "$A/$f.svg" >"$T/$f.svg"
		rsvg-convert -o "$T/$f.png" "$T/$f.svg" 2>"$T/rsvg.err" ||
			fail "rsvg-convert $f.svg: $(cat "$T/rsvg.err")"
		[ "$(head -c 8 "$T/$f.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
			fail "$f.png is not a PNG"
		grep -q "<polygon" "$T/$f.svg" || fail "$f.svg: no forecast cone"
		grep -q ">full 2025-" "$T/$f.svg" || fail "$f.svg: no full date"
	done
	pstor_umount "$M"
}

case_forecasts_grade_themselves_across_imports() {
	pstor_mkfs "$IMG" 256M
	pstor_mount "$IMG" "$M" analytics_interval=86400
	local C=$M/.pstorage/analytics/capacity H=$M/.pstorage/analytics/health d
	check "a fresh pool: nothing recorded, nothing scored"
	grep -q "^observed     no forecast has reached its horizon yet (0 recorded)" "$C" ||
		fail "capacity: $(cat "$C")"
	# 80 days of hourly samples, 1 GB a day of used and 0.3% a day of life used; each import
	# below is a prefix of it, as a box that lived those days would have seen.
	"$PY" - "$T" <<'PYEOF'
import random, sys
random.seed(11)
t0 = 1735689600
rows = []
for i in range(80 * 24):
    d = i / 24
    rows.append('%d,%d,%d,%.4f\n' % (t0 + i * 3600, 2e11 + 1e9 * d + random.gauss(0, 1e8), 4 * 10**11,
                                     20 + 0.3 * d + random.gauss(0, 0.03)))
for days in (40, 45, 50, 55, 60, 80):
    with open('%s/d%d.csv' % (sys.argv[1], days), 'w') as f:
        f.write('time,physical_used_bytes,capacity_bytes,life_used_percent\n')
        f.writelines(rows[:days * 24])
random.seed(12)
with open('%s/other.csv' % sys.argv[1], 'w') as f:
    f.write('time,physical_used_bytes,capacity_bytes,life_used_percent\n')
    for i in range(80 * 24):
        f.write('%d,%d,%d,%.4f\n' % (t0 + i * 3600, 3e11 - 5e8 * i / 24, 4 * 10**11, 50))
PYEOF
	check "days 0..40: the import records today's forecasts (capacity, wear-out); none scored"
	ctl "$M" "analytics import $T/d40.csv"
	grep -q "imported 960 samples; kept 0 of 0 recorded forecasts$" "$M/.pstorage/ctl" ||
		fail "ctl: $(cat "$M/.pstorage/ctl")"
	"$PY" - "$C.json" <<'PYEOF' || fail "capacity.json: $(cat "$C.json")"
import json, sys
g = json.load(open(sys.argv[1]))['grading']
assert g['recorded'] == 1 and g['scored'] == 0, g
assert g['message'] == 'no forecast has reached its horizon yet', g
assert [h['scored'] for h in g['horizons']] == [0, 0, 0], g
PYEOF
	grep -q "^observed     no forecast has reached its horizon yet (1 recorded)" "$C" ||
		fail "capacity: $(cat "$C")"
	check "a refused import keeps the recorded forecasts"
	printf 'time,physical_used_bytes\n1735689660,1\n1735689600,2\n' >"$T/order.csv"
	expect_ctl "$M" EINVAL "analytics import $T/order.csv"
	grep -q '"recorded": 1' "$C.json" || fail "capacity.json: $(cat "$C.json")"
	check "days 0..45 .. 0..60 extend it: every recorded forecast is kept, one more each"
	local n=2
	for d in 45 50 55 60; do
		ctl "$M" "analytics import $T/d$d.csv"
		grep -q "kept $n of $n recorded forecasts$" "$M/.pstorage/ctl" ||
			fail "d$d: ctl: $(cat "$M/.pstorage/ctl")"
		n=$((n + 2))
	done
	check "days 0..80: the forecasts made on days 40..60 are scored at the horizons that passed"
	ctl "$M" "analytics import $T/d80.csv"
	grep -q "kept 10 of 10 recorded forecasts$" "$M/.pstorage/ctl" ||
		fail "ctl: $(cat "$M/.pstorage/ctl")"
	log "$(cat "$C")"
	"$PY" - "$C.json" "$H.json" <<'PYEOF' || fail "capacity.json: $(cat "$C.json") health.json: $(cat "$H.json")"
import json, sys
c = json.load(open(sys.argv[1]))
g = c['grading']
assert g['recorded'] == 6 and g['scored'] == 5 and g['message'] is None, g
h = {x['horizon_days']: x for x in g['horizons']}
# Made on days 40, 45, .. 60 (the newest sample an hour before): +7 days has passed for all
# five, +30 for those of days 40, 45 and 50 (day 80 is the newest sample), +90 for none.
assert h[7]['scored'] == 5 and h[30]['scored'] == 3 and h[90]['scored'] == 0, g
for k in (7, 30):
    x = h[k]
    # A clean line: errors of the noise's size (0.1 GB), far below a day's growth.
    assert 0 <= x['abs_error_p50_bytes'] <= x['abs_error_p90_bytes'] < 1e9, x
    assert x['rel_error_p90'] < 0.005, x
    assert 0.6 <= x['coverage95'] <= 1 and 0 <= x['coverage80'] <= x['coverage95'], x
assert h[90]['coverage95'] is None and h[90]['abs_error_p50_bytes'] is None, h[90]
fd = g['full_date']
assert fd['decided'] == 0 and fd['reached'] == 0, fd
# Next to the model's own interval, each forecast shows the band observed here.
obs = {f['horizon_days']: f['observed'] for f in c['forecasts']}
assert obs[7]['scored'] == 5 and obs[7]['abs_error_p90_bytes'] == round(h[7]['abs_error_p90_bytes']), obs
assert obs[90]['scored'] == 0 and obs[90]['coverage95'] is None, obs
w = json.load(open(sys.argv[2]))['wearout_grading']
wh = {x['horizon_days']: x for x in w['horizons']}
assert w['recorded'] == 6 and wh[30]['scored'] == 3 and wh[90]['scored'] == 0, w
assert wh[30]['abs_error_p90_percent'] < 0.5, w
PYEOF
	grep -qE "^\+7   days .* \+-[0-9.]+ GiB, [0-5]/5 [0-5]/5$" "$C" || fail "capacity: $(cat "$C")"
	grep -q "^  +30  days   3 scored: abs error median" "$C" || fail "capacity: $(cat "$C")"
	grep -q "^  +90  days   no forecast has reached its horizon yet" "$C" || fail "capacity: $(cat "$C")"
	grep -q "^wear graded  the box's own past forecasts" "$H" || fail "health: $(cat "$H")"
	check "the recorded forecasts survive a remount"
	cat "$C.json" >"$T/before.json"
	pstor_umount "$M"
	pstor_mount "$IMG" "$M" analytics_interval=86400
	cat "$C.json" | cmp -s - "$T/before.json" || fail "capacity.json changed over a remount"
	check "another box's history drops them: none of its values match"
	ctl "$M" "analytics import $T/other.csv"
	grep -q "kept 0 of 12 recorded forecasts$" "$M/.pstorage/ctl" ||
		fail "ctl: $(cat "$M/.pstorage/ctl")"
	grep -q '"recorded": 1, "scored": 0' "$C.json" || fail "capacity.json: $(cat "$C.json")"
	pstor_umount "$M"
}

case_sampler_records_a_forecast_a_day_of_history_time() {
	pstor_mkfs "$IMG" 256M
	pstor_mount "$IMG" "$M" analytics_interval=1
	local C=$M/.pstorage/analytics/capacity.json
	check "a history ending a day before now: the sampler's next row records a forecast"
	# Imported as the box's own: 3 days of used about what this pool holds, ending 1 day and
	# 30 s ago; the import records one forecast, the sampler's next row (now) another.
	"$PY" - "$T/h.csv" "$(date +%s)" <<'PYEOF'
import sys
end = int(sys.argv[2]) - 86400 - 30
with open(sys.argv[1], 'w') as f:
    f.write('time,physical_used_bytes,capacity_bytes\n')
    for i in range(3 * 24, -1, -1):
        f.write('%d,%d,%d\n' % (end - i * 3600, 10**7 + (3 * 24 - i) * 10**4, 2 * 10**8))
PYEOF
	ctl "$M" "analytics import $T/h.csv"
	grep -q "kept 0 of 0 recorded forecasts$" "$M/.pstorage/ctl" || fail "ctl: $(cat "$M/.pstorage/ctl")"
	local n=100
	until grep -q '"recorded": 2' "$C"; do
		n=$((n - 1))
		[ $n -gt 0 ] || fail "no forecast recorded by the sampler: $(grep -A2 grading "$C")"
		sleep 0.1
	done
	check "one a day: more samples record nothing more"
	sleep 2
	grep -q '"recorded": 2' "$C" || fail "capacity.json: $(grep -A2 grading "$C")"
	pstor_umount "$M"
}

case_bad_interval_option_refuses_the_mount() {
	pstor_mkfs "$IMG" 256M
	mkdir -p "$M"
	local v rc
	for v in 0 -5 86401 1x ""; do
		rc=0
		"$PSTORFS" "$IMG" "$M" -f -o "analytics_interval=$v" >"$T/out" 2>&1 || rc=$?
		[ $rc = 1 ] || fail "analytics_interval=$v: status $rc"
		grep -q "bad option analytics_interval=$v (1..86400)" "$T/out" ||
			fail "analytics_interval=$v: $(cat "$T/out")"
		! is_mounted "$M" || fail "mounted with analytics_interval=$v"
	done
	expect_ctl_interval() {
		pstor_mount "$IMG" "$M" analytics_interval=7
		[ "$(cat "$M/.pstorage/config/analytics_interval")" = 7 ] || fail "option not applied"
		[ "$(write_errno "$M/.pstorage/config/analytics_interval" 0)" = EINVAL ] ||
			fail "analytics_interval 0 accepted"
		pstor_umount "$M"
	}
	expect_ctl_interval
}

run_cases
