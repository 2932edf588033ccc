#!/bin/bash
# A full device: a thin volume larger than the namespace is filled with unique incompressible
# data until a write fails. The failure is ENOSPC, the daemon stays up and mounted, everything
# fsync'd before reads back byte-exact, and the reports still read. Deleting a snapshot and a
# volume on the full device works, df shows the space back, and new writes succeed again; the
# same after an unmount and remount while full.
. "$(dirname "$0")/lib.sh"
need_binaries
need df dd cmp

IMG=$T/img
M=$T/m
V=$M/volumes/v
pstor_mkfs "$IMG" 256M
pstor_mount "$IMG" "$M"
CAP=$(df -B1 --output=size "$M" | tail -n 1 | tr -d ' ')
MiB=$((1 << 20))

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

# Used bytes fall by at least DROP within 20 s (a gc start now and then).
expect_space_back() { # BEFORE DROP WHAT
	local before=$1 drop=$2 n=0 now
	while :; do
		now=$(df_used "$M")
		[ $((before - now)) -lt "$drop" ] || break
		[ $n -lt 40 ] || fail "$3: df used went from $before to $now, expected $drop less"
		[ $((n % 8)) -ne 0 ] || ctl "$M" "gc start"
		sleep 0.5
		n=$((n + 1))
	done
	log "$3: df used $((before / MiB)) MiB -> $((now / MiB)) MiB"
}

check "a thin volume larger than the namespace ($((CAP / MiB)) MiB)"
if ! truncate -s 1G "$V" 2>"$T/trunc.err"; then
	softfail "truncate -s 1G on a $((CAP / MiB)) MiB namespace: $(cat "$T/trunc.err")"
	truncate -s "$((CAP / 4096 * 4096))" "$V"
fi

check "data fsync'd before the device fills up: A (then snapshot s0), B over A, C after"
rand_file "$T/A" $((24 * MiB))
rand_file "$T/B" $((24 * MiB))
rand_file "$T/C" $((64 * MiB))
put_at "$T/A" "$V" 0 conv=fsync
ctl "$M" "snapshot create v s0"
put_at "$T/B" "$V" 0 conv=fsync
put_at "$T/C" "$V" $((24 * MiB)) conv=fsync

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

check "snapshot delete on the full device gives A's space back; new writes succeed"
u0=$(df_used "$M")
ctl "$M" "snapshot delete v s0"
[ ! -e "$M/snapshots/v/s0" ] || fail "snapshots/v/s0 still there"
expect_space_back "$u0" $((16 * MiB)) "snapshot delete"
rand_file "$T/D" $((8 * MiB))
put_at "$T/D" "$V" $((88 * MiB)) conv=fsync || fail "a write after the snapshot delete failed"
same "$T/D" 88
same "$T/B" 0
same "$T/C" 24
alive "after the snapshot delete"

check "full again, snapshot s1; unmount and remount while full"
ctl "$M" "snapshot create v s1"
put_at "$T/A" "$V" 0 conv=fsync # B now only in s1
n=$(fill_up 96)
log "wrote $n MiB more before ENOSPC"
alive "full again"

pstor_umount "$M"
pstor_mount "$IMG" "$M"
alive "after the remount"
same "$T/A" 0
same "$T/C" 24
same "$T/D" 88
cmp -s <(get_at "$M/snapshots/v/s1" 0 $((24 * MiB))) "$T/B" || fail "snapshot s1 lost B"
expect_errno "dd if=/dev/urandom of='$V' bs=1M count=8 seek=$((96 + n + 1)) oflag=direct \
	conv=notrunc status=none" ENOSPC

check "after the remount: snapshot delete and volume delete (rm) give everything back"
u0=$(df_used "$M")
ctl "$M" "snapshot delete v s1"
expect_space_back "$u0" $((16 * MiB)) "snapshot delete after the remount"
u0=$(df_used "$M")
rm "$V"
[ ! -e "$V" ] || fail "rm did not delete $V"
expect_space_back "$u0" $((CAP / 2)) "volume delete"
alive "after the volume delete"

check "new writes succeed again and survive a remount"
truncate -s 1G "$M/volumes/w" 2>/dev/null || truncate -s 128M "$M/volumes/w"
V=$M/volumes/w
rand_file "$T/E" $((96 * MiB))
put_at "$T/E" "$V" 0 conv=fsync || fail "writes after the volume delete failed"
same "$T/E" 0

check "full: punch 16 MiB that only the volume holds, and write 8 MiB there at once"
n=$(fill_up 96)
log "wrote $n MiB more before ENOSPC"
# The punched space comes back with the next checkpoint; a write that finds the device full
# while releases wait must get that checkpoint now, not ENOSPC until the commit thread runs.
fallocate -p -o $((16 * MiB)) -l $((16 * MiB)) "$V" || fail "fallocate -p on the full device"
rand_file "$T/F" $((8 * MiB))
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
pass
