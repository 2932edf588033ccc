#!/bin/bash
# A full device: a thin volume larger than the namespace is filled with unique incompressible
# data until a write fails. The failure is ENOSPC, the daemon stays up and mounted, everything
# fsync'd before reads back byte-exact, and the reports still read. Deleting a snapshot and a
# volume on the full device works, df shows the space back, and new writes succeed again; the
# same after an unmount and remount while full. One case per behaviour (lib.sh run_cases).
. "$(dirname "$0")/lib.sh"
need_binaries
need df dd cmp

IMG=$T/img
M=$T/m
V=$M/volumes/v
MiB=$((1 << 20))
CAP=

setup() { # [OPTIONS]: mkfs and mount a 256 MiB namespace
	pstor_mkfs "$IMG" 256M
	pstor_mount "$IMG" "$M" "${1:-}"
	CAP=$(df -B1 --output=size "$M" | tail -n 1 | tr -d ' ')
}

alive() { # the daemon of $M still runs and serves
	local pid=${_DPID[$M]:-}
	if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then fail "the daemon died ($1)"; fi
	is_mounted "$M" || fail "$M is no longer mounted ($1)"
	cat "$M/.pstorage/status" >"$T/status" || fail "status does not read ($1)"
	grep -q '^capacity' "$T/status" || fail "status reads '$(cat "$T/status")' ($1)"
}

# fill_up START_MIB: writes unique random data from MiB START_MIB of $V on until a write
# fails; that failure must be ENOSPC. Prints the whole MiB written.
fill_up() {
	local start=$1 rc=0 bytes
	dd if=/dev/urandom of="$V" bs=1M seek="$start" oflag=direct conv=notrunc \
		2>"$T/dd.err" || rc=$?
	[ $rc -ne 0 ] || fail "filling $V from $start MiB never failed"
	grep -q 'No space left on device' "$T/dd.err" ||
		fail "the write that failed did not fail with ENOSPC: $(cat "$T/dd.err")"
	bytes=$(sed -n 's/^\([0-9]*\) bytes .*copied.*/\1/p' "$T/dd.err")
	[ -n "$bytes" ] || fail "no byte count from dd: $(cat "$T/dd.err")"
	echo $((bytes / MiB))
}

same() { # FILE OFFSET_MIB: the volume holds FILE at that offset
	cmp -s <(get_at "$V" $(($2 * MiB)) "$(stat -c %s "$1")") "$1" ||
		fail "$(basename "$1") at $2 MiB of $V does not read back exact"
}

stat_of() { # LABEL: a number from .pstorage/flash/stats
	sed -n "s/^$1: *\([0-9]*\)\$/\1/p" "$M/.pstorage/flash/stats"
}
live_bytes() { stat_of "live bytes"; }
segments() { # for messages
	echo "segments free $(stat_of "segments free"), open $(stat_of "segments open"), closed" \
		"$(stat_of "segments closed"), checkpoint $(stat_of "segments checkpoint")"
}

# before_free: df used and live bytes before a command that frees space, after a sync (so
# releases queued by earlier writes do not count as this command's)
before_free() {
	local r
	r=$(write_errno "$M/.pstorage/ctl" $'sync\n') # the case enospc checks that sync works
	[ "$r" = OK ] || log "sync before freeing: $r ($(cat "$M/.pstorage/ctl"))"
	U0=$(df_used "$M")
	L0=$(live_bytes)
}

# Space given back, waited for by events, not by time. The command that dropped the data
# (snapshot delete, rm) commits and releases the chunks before it returns (fs/pfs_vol.c
# pfs_snap_delete, pfs_vol_delete -> pfs_commit_locked -> engine_ref_put -> ftl_free), and
# `sync` returns after a commit that releases whatever was still queued: the FTL's live bytes
# must be down by then. df counts dead bytes in closed segments as free but an open segment as
# used in whole until it fills (flash/ftl_stats.c ftl_get_stats), and no ctl command closes a
# segment: freed chunks in an open segment (GC may have moved them there) show in df later.
# So `gc start` (a commit and one synchronous GC pass), then df; a bounded poll (a gc start a
# second, 30 s) only as the fallback, and said when it was needed.
expect_space_back() { # DROP WHAT (U0 and L0 from before_free)
	local drop=$1 what=$2 live now n=0
	ctl "$M" sync
	live=$(live_bytes)
	[ $((L0 - live)) -ge "$drop" ] ||
		fail "$what: the daemon released too little: live bytes $L0 -> $live after the" \
			"command and a sync, expected at least $drop less"
	ctl "$M" "gc start"
	now=$(df_used "$M")
	while [ $((U0 - now)) -lt "$drop" ]; do
		[ $n -lt 30 ] || fail "$what: df used $U0 -> $now, expected at least $drop less;" \
			"live bytes fell by $((L0 - live)) but df does not show it after sync, gc start" \
			"and $n more gc starts 1 s apart ($(segments))"
		sleep 1
		ctl "$M" "gc start"
		n=$((n + 1))
		now=$(df_used "$M")
	done
	[ $n -eq 0 ] || log "$what: df showed the space only after $n more gc starts, 1 s apart" \
		"(freed chunks in open segments?)"
	log "$what: df used $((U0 / MiB)) MiB -> $((now / MiB)) MiB," \
		"live $((L0 / MiB)) MiB -> $((live / MiB)) MiB"
}

thin_volume() { # a thin volume larger than the namespace
	if ! truncate -s 1G "$V" 2>"$T/trunc.err"; then
		softfail "truncate -s 1G on a $((CAP / MiB)) MiB namespace: $(cat "$T/trunc.err")"
		truncate -s "$((CAP / 4096 * 4096))" "$V"
	fi
}

# fsync'd before the device fills up: A (then snapshot s0), B over A, C after
abc() {
	rand_file "$T/A" $((24 * MiB))
	rand_file "$T/B" $((24 * MiB))
	rand_file "$T/C" $((64 * MiB))
	put_at "$T/A" "$V" 0 conv=fsync
	ctl "$M" "snapshot create v s0"
	put_at "$T/B" "$V" 0 conv=fsync
	put_at "$T/C" "$V" $((24 * MiB)) conv=fsync
}

case_thin_volume() {
	setup
	check "a thin volume larger than the namespace ($((CAP / MiB)) MiB)"
	thin_volume
	[ "$(stat -c %s "$V")" = $((1 << 30)) ] || softfail "$V has size $(stat -c %s "$V")"
	pstor_umount "$M"
}

case_enospc() {
	setup
	thin_volume
	check "data fsync'd before the device fills up: A (then snapshot s0), B over A, C after"
	abc
	check "fill with unique random data until a write fails: ENOSPC, the daemon stays up"
	t0=$(date +%s%N)
	n=$(fill_up 88)
	log "wrote $n MiB more in $((($(date +%s%N) - t0) / 1000000)) ms before ENOSPC"
	alive "after ENOSPC"
	r=$(write_errno "$M/.pstorage/ctl" $'sync\n')
	[ "$r" = OK ] || softfail "ctl sync on the full device: $r ($(cat "$M/.pstorage/ctl"))"
	expect_errno "dd if=/dev/urandom of='$V' bs=1M count=4 seek=$((88 + n + 1)) oflag=direct \
		conv=notrunc status=none" ENOSPC
	alive "after a second ENOSPC"
	same "$T/B" 0
	same "$T/C" 24
	cmp -s <(get_at "$M/snapshots/v/s0" 0 $((24 * MiB))) "$T/A" || fail "snapshot s0 lost A"
	cat "$M/.pstorage/reduction" "$M/.pstorage/flash/stats" "$M/.pstorage/volumes/v/summary" \
		>/dev/null || fail "a report does not read on the full device"
	pstor_umount "$M"
}

case_snapshot_delete_frees() {
	setup
	thin_volume
	abc
	n=$(fill_up 88)
	log "full after $n MiB more"
	check "snapshot delete on the full device gives A's space back; new writes succeed"
	before_free
	ctl "$M" "snapshot delete v s0"
	[ ! -e "$M/snapshots/v/s0" ] || fail "snapshots/v/s0 still there"
	expect_space_back $((16 * MiB)) "snapshot delete"
	rand_file "$T/D" $((8 * MiB))
	put_at "$T/D" "$V" $((88 * MiB)) conv=fsync || fail "a write after the snapshot delete failed"
	same "$T/D" 88
	same "$T/B" 0
	same "$T/C" 24
	alive "after the snapshot delete"
	pstor_umount "$M"
}

# Full, with snapshot s1 holding B and the volume A, C and D; unmounted and mounted again.
full_remounted() {
	setup
	thin_volume
	abc
	rand_file "$T/D" $((8 * MiB))
	put_at "$T/D" "$V" $((88 * MiB)) conv=fsync
	ctl "$M" "snapshot delete v s0"
	ctl "$M" "snapshot create v s1"
	put_at "$T/A" "$V" 0 conv=fsync # B now only in s1
	n=$(fill_up 96)
	log "wrote $n MiB more before ENOSPC"
	alive "full"
	pstor_umount "$M"
	pstor_mount "$IMG" "$M"
}

case_remount_while_full() {
	check "full, snapshot s1; unmount and remount while full"
	full_remounted
	alive "after the remount"
	same "$T/A" 0
	same "$T/C" 24
	same "$T/D" 88
	cmp -s <(get_at "$M/snapshots/v/s1" 0 $((24 * MiB))) "$T/B" || fail "snapshot s1 lost B"
	expect_errno "dd if=/dev/urandom of='$V' bs=1M count=8 seek=$((96 + n + 1)) oflag=direct \
		conv=notrunc status=none" ENOSPC
	pstor_umount "$M"
}

case_deletes_after_remount() {
	full_remounted
	check "after the remount: snapshot delete and volume delete (rm) give everything back"
	before_free
	ctl "$M" "snapshot delete v s1"
	expect_space_back $((16 * MiB)) "snapshot delete after the remount"
	before_free
	rm "$V"
	[ ! -e "$V" ] || fail "rm did not delete $V"
	expect_space_back $((CAP / 2)) "volume delete"
	alive "after the volume delete"
	pstor_umount "$M"
}

# A full device whose one volume was deleted; W is a new volume with E (96 MiB) at 0.
new_volume_after_delete() { # [OPTIONS]
	setup "${1:-}"
	thin_volume
	n=$(fill_up 0)
	log "full after $n MiB"
	rm "$V"
	truncate -s 1G "$M/volumes/w" 2>/dev/null || truncate -s 128M "$M/volumes/w"
	V=$M/volumes/w
	rand_file "$T/E" $((96 * MiB))
	put_at "$T/E" "$V" 0 conv=fsync || fail "writes after the volume delete failed"
	same "$T/E" 0
}

case_writes_after_delete() {
	check "a full device, rm of its volume: new writes succeed again and survive a remount"
	new_volume_after_delete
	pstor_umount "$M"
	pstor_mount "$IMG" "$M"
	same "$T/E" 0
	pstor_umount "$M"
}

case_punch_then_write() {
	# No timed commit in the case (the longest interval): one landing between the punch and the
	# write would give the space back first, and the retry would not be needed (CI saw that).
	new_volume_after_delete commit_interval_ms=600000
	check "full: punch 16 MiB that only the volume holds, and write 8 MiB there at once"
	n=$(fill_up 96)
	log "wrote $n MiB more before ENOSPC"
	rand_file "$T/F" $((8 * MiB))
	# The punched space comes back with the next checkpoint; a write that finds the device full
	# while releases wait must get that checkpoint now, not ENOSPC until the commit thread runs.
	fallocate -p -o $((16 * MiB)) -l $((16 * MiB)) "$V" || fail "fallocate -p on the full device"
	put_at "$T/F" "$V" $((16 * MiB)) conv=fsync ||
		fail "a write right after the punch failed ($(grep enospc "$M/.pstorage/status.json"))"
	grep -q '"enospc_retries": [1-9]' "$M/.pstorage/status.json" ||
		softfail "the write did not need the early checkpoint: $(grep enospc "$M/.pstorage/status.json")"
	cmp -s <(get_at "$V" 0 $((16 * MiB))) <(head -c $((16 * MiB)) "$T/E") || fail "E before the punch"
	same "$T/F" 16
	pstor_umount "$M"
	pstor_mount "$IMG" "$M"
	cmp -s <(get_at "$V" 0 $((16 * MiB))) <(head -c $((16 * MiB)) "$T/E") || fail "E after remount"
	same "$T/F" 16
	pstor_umount "$M"
}

# Overwritten data is released by the next commit; none is timed here (the longest interval),
# so only the early commits a short room asks for (fs/vol/pfs_io.c commit_if_short_of_room)
# and the ENOSPC retry give it back.
case_rewrites_of_half_the_pool() {
	setup commit_interval_ms=600000
	check "a volume of half the pool rewritten six times over without fsync: no write fails"
	truncate -s $((CAP / 2 / MiB * MiB)) "$V"
	local size
	size=$(stat -c %s "$V")
	for r in 1 2 3 4 5 6; do
		rand_file "$T/R" "$size"
		put_at "$T/R" "$V" 0 oflag=direct 2>"$T/dd.err" ||
			fail "rewrite $r of $((size / MiB)) MiB failed: $(cat "$T/dd.err"); $(segments)"
	done
	grep -q '"room_commits": [1-9]' "$M/.pstorage/status.json" ||
		fail "no early commit: $(grep -E 'room_commits|enospc_retries' "$M/.pstorage/status.json")"
	log "$(grep -E 'room_commits|enospc_retries' "$M/.pstorage/status.json" | tr -d ' \n')"
	same "$T/R" 0
	pstor_umount "$M"
	pstor_mount "$IMG" "$M"
	same "$T/R" 0
	pstor_umount "$M"
}

run_cases
