#!/bin/bash
# Data temperature on a real mount (fs/vol/pfs_temp.c): a region written often is hot, one read
# once warm, one left alone frozen, and they age into cold and frozen by the temp_* settings; the
# temperatures survive an unmount and kill -9 (at most one analytics_interval lost); scrub, GC
# and the reports warm nothing; rename keeps them, delete drops them; bad settings are refused.
. "$(dirname "$0")/lib.sh"
need_binaries

IMG=$T/img
M=$T/m
TJ=$M/.pstorage/analytics/temperature.json

setting() { # KEY VALUE
	ctl "$M" "config set $1 $2"
}

# Bytes by class of volume NAME: "hot warm cold frozen" (from temperature.json)
classes() { # NAME
	"$PY" - "$TJ" "$1" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
v = [v for v in d['volumes'] if v['name'] == sys.argv[2]]
assert v, d
v = v[0]
assert sum(v[k + '_bytes'] for k in ('hot', 'warm', 'cold', 'frozen')) == v['written_bytes'], v
print(v['hot_bytes'] >> 20, v['warm_bytes'] >> 20, v['cold_bytes'] >> 20, v['frozen_bytes'] >> 20)
PYEOF
}

# The hottest extents of NAME as "offset:heat:last_access" words (heat to 0.1)
hottest() { # NAME
	"$PY" - "$TJ" "$1" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
v = [v for v in d['volumes'] if v['name'] == sys.argv[2]]
print(' '.join('%d:%.1f:%d' % (e['offset'], e['heat'], e['last_access'])
               for e in (v[0]['hottest'] if v else [])))
PYEOF
}

tracker() { # FIELD of temperature.json's tracker
	"$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["tracker"][sys.argv[2]])' \
		"$TJ" "$1"
}

want_classes() { # NAME "HOT WARM COLD FROZEN" (MiB)
	local got
	got=$(classes "$1")
	[ "$got" = "$2" ] || fail "$1: hot/warm/cold/frozen MiB are '$got', want '$2': $(cat "$TJ")"
}

# 4 KiB direct writes (each one FUSE request, one access) at OFFSET, N times
hit_write() { # NAME OFFSET N
	local i
	for ((i = 0; i < $3; i++)); do
		put_at "$T/blk" "$M/volumes/$1" "$2" oflag=direct,seek_bytes
	done
}

hit_read() { # NAME OFFSET
	dd if="$M/volumes/$1" of=/dev/null bs=4096 count=1 skip="$2" iflag=direct,skip_bytes \
		status=none
}

wait_save() { # until the tracker saved after the current time
	local t0 n=50
	t0=$(date +%s)
	until [ "$(tracker last_save)" -gt "$t0" ]; do
		n=$((n - 1))
		[ $n -gt 0 ] || fail "no temperature save within 5 s: $(cat "$TJ")"
		sleep 0.1
	done
}

setup_volume() { # a volume of 3 MiB written at once (every extent accessed once)
	pstor_mkfs "$IMG" 256M
	pstor_mount "$IMG" "$M" analytics_interval=1
	rand_file "$T/blk" 4096
	rand_file "$T/r3" $((3 << 20))
	truncate -s 4M "$M/volumes/v"
	put_at "$T/r3" "$M/volumes/v" 0 oflag=direct
}

case_classes_follow_access() {
	setup_volume
	# Ages are whole seconds (an access at x.99 s is 1 s old at x+1.0): 2 s of margin for the
	# checks that follow an access.
	setting temp_hot_heat 8
	setting temp_cold_after 3
	setting temp_frozen_after 5
	sleep 5.2
	check "left alone past temp_frozen_after, all of it is frozen"
	want_classes v "0 0 0 3"
	check "written 10 times: hot; read once: warm; the third MiB untouched: frozen"
	hit_write v 0 10
	hit_read v $((1 << 20))
	want_classes v "1 1 0 1"
	grep -q '^hot  *1048576 bytes (1 extents)$' "$M/.pstorage/volumes/v/temperature" ||
		fail "volumes/v/temperature: $(cat "$M/.pstorage/volumes/v/temperature")"
	grep -q '^pstorfs_temperature_bytes{class="hot"} 1048576$' "$M/.pstorage/metrics" ||
		fail "metrics: $(grep temperature "$M/.pstorage/metrics")"
	grep -q '^(pool) *3145728  *1048576  *1048576  *0  *1048576$' \
		"$M/.pstorage/analytics/temperature" ||
		fail "temperature: $(cat "$M/.pstorage/analytics/temperature")"
	check "past temp_cold_after the accessed ones are cold (a new setting applies at once)"
	setting temp_cold_after 1
	sleep 1.1
	want_classes v "0 0 2 1"
	pstor_umount "$M"
}

case_survives_remount_and_kill9() {
	setup_volume
	setting temp_half_life 315360000 # heats do not move during the test
	hit_write v 0 10
	hit_read v $((2 << 20))
	local h1 h2 h3
	h1=$(hottest v)
	log "hottest before unmount: $h1"
	case "$h1" in 0:11.0:*" $((2 << 20)):2.0:"*) ;; *) fail "hottest: $h1" ;; esac
	check "an unmount and remount keep every extent's heat and last access"
	pstor_umount "$M"
	pstor_mount "$IMG" "$M"
	h2=$(hottest v)
	[ "$h2" = "$h1" ] || fail "after remount: '$h2', before: '$h1'"
	[ "$(cat "$M/.pstorage/config/temp_half_life")" = 315360000 ] || fail "setting not kept"
	check "kill -9 keeps what the last save held"
	hit_write v $((1 << 20)) 20
	wait_save
	h3=$(hottest v)
	pstor_kill9 "$M"
	pstor_mount "$IMG" "$M"
	[ "$(hottest v)" = "$h3" ] || fail "after kill -9: '$(hottest v)', before: '$h3'"
	case "$h3" in "$((1 << 20)):21.0:"*) ;; *) fail "hottest: $h3" ;; esac
	pstor_umount "$M"
}

case_scrub_gc_and_reports_warm_nothing() {
	setup_volume
	setting temp_cold_after 1
	hit_write v 0 3
	ctl "$M" sync
	sleep 1.2
	want_classes v "0 0 3 0"
	local before accesses n=100
	before=$(hottest v)
	accesses=$(tracker accesses)
	check "scrub, gc, sync and reading every report leave the temperatures alone"
	ctl "$M" "scrub start"
	until grep -q '"state": "done"' "$M/.pstorage/scrub.json"; do
		n=$((n - 1))
		[ $n -gt 0 ] || fail "scrub did not finish: $(cat "$M/.pstorage/scrub.json")"
		sleep 0.1
	done
	ctl "$M" "gc start"
	ctl "$M" sync
	cat "$M"/.pstorage/analytics/* "$M"/.pstorage/volumes/v/* "$M/.pstorage/metrics" >/dev/null
	want_classes v "0 0 3 0"
	[ "$(hottest v)" = "$before" ] || fail "hottest moved: '$(hottest v)', was '$before'"
	[ "$(tracker accesses)" = "$accesses" ] || fail "accesses $(tracker accesses), was $accesses"
	pstor_umount "$M"
}

case_rename_keeps_delete_drops() {
	setup_volume
	hit_write v 0 5
	local h
	h=$(hottest v)
	ctl "$M" "volume rename v w"
	[ "$(hottest w)" = "$h" ] || fail "renamed: '$(hottest w)', was '$h'"
	ctl "$M" "volume delete w"
	ctl "$M" "volume create w 4M"
	[ -z "$(hottest w)" ] || fail "a new volume of the old name has '$(hottest w)'"
	pstor_umount "$M"
	pstor_mount "$IMG" "$M"
	[ -z "$(hottest w)" ] || fail "after remount the new volume has '$(hottest w)'"
	pstor_umount "$M"
}

case_bad_settings_are_refused() {
	pstor_mkfs "$IMG" 256M
	pstor_mount "$IMG" "$M"
	local k v r
	for k in temp_cold_after temp_frozen_after temp_hot_heat temp_half_life; do
		v=$(cat "$M/.pstorage/config/$k")
		for bad in 0 -1 abc 1.5 315360001; do
			expect_ctl "$M" EINVAL "config set $k $bad"
			r=$(write_errno "$M/.pstorage/config/$k" "$bad")
			[ "$r" = EINVAL ] || fail "echo $bad > config/$k: $r"
		done
		[ "$(cat "$M/.pstorage/config/$k")" = "$v" ] || fail "$k changed to $(cat "$M/.pstorage/config/$k")"
	done
	grep -q "temp_half_life must be an integer from 1 to 315360000" "$M/.pstorage/ctl" || fail "reason: $(cat "$M/.pstorage/ctl")"
	[ "$(cat "$M/.pstorage/config/temp_cold_after")" = 86400 ] || fail "default cold_after"
	[ "$(cat "$M/.pstorage/config/temp_frozen_after")" = 2592000 ] || fail "default frozen_after"
	pstor_umount "$M"
}

run_cases
