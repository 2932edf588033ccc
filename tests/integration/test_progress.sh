#!/bin/bash
# Progress lines of long work, as e2fsck -C 0 and mkfs.xfs show them: mkfs.pstorfs's discard,
# fsck.pstorfs's scan, chunk check and repair, and the mount's recovery draw "WHAT: N% (.., RATE/s)"
# on a terminal (a pty from script(1)), and nothing when the output is a pipe or a file, or
# with -q.
. "$(dirname "$0")/lib.sh"
need_binaries
need script
FSCK=$PSTOR_BUILD_DIR/fs/fsck.pstorfs

# Runs CMD... on a pty; its output (with the \r of redrawn lines) in FILE.
on_tty() { # FILE CMD...
	local out=$1 cmd="" a
	shift
	for a in "$@"; do
		cmd+=" $(printf '%q' "$a")"
	done
	script -qec "$cmd" /dev/null >"$out" 2>&1 || true
}

# A progress line: WHAT, a percentage, and a rate.
has_progress() { # FILE WHAT
	grep -aqE "$2: +[0-9]+\.[0-9]% \([0-9]+/[0-9]+ [A-Za-z]+, [0-9]+ [A-Za-z]+/s\)" "$1"
}

case_mkfs_discard() {
	on_tty "$T/tty.out" "$MKFS" --size 8G "$T/img"
	has_progress "$T/tty.out" discarding || fail "no discard progress on a tty: $(cat -A "$T/tty.out")"
	grep -aq '100.0% (8191/8191 MiB' "$T/tty.out" || fail "the discard did not reach 100%"
	grep -aq 'pstorfs namespace on' "$T/tty.out" || fail "no summary after the progress line"
	check "mkfs.pstorfs on a tty: $(tr '\r' '\n' <"$T/tty.out" | grep -a -m1 discarding)"
	"$MKFS" --force "$T/img" >"$T/pipe.out" 2>&1
	! grep -aq '%' "$T/pipe.out" || fail "progress in piped output: $(cat -A "$T/pipe.out")"
	on_tty "$T/quiet.out" "$MKFS" --force -q "$T/img"
	! grep -aq 'discarding' "$T/quiet.out" || fail "-q: progress on a tty"
	grep -aq 'pstorfs namespace on' "$T/quiet.out" || fail "-q: $(cat "$T/quiet.out")"
	check "no progress when piped, nor with -q"
}

# A namespace with data in it, unmounted.
with_data() {
	pstor_mkfs "$T/img" 2G
	pstor_mount "$T/img" "$T/m"
	truncate -s 64M "$T/m/volumes/v"
	rand_file "$T/data" $((16 << 20))
	dd if="$T/data" of="$T/m/volumes/v" bs=1M conv=notrunc,fsync status=none
	ctl "$T/m" "snapshot create v s1"
	pstor_umount "$T/m"
}

case_fsck_passes() {
	with_data
	on_tty "$T/tty.out" "$FSCK" "$T/img"
	has_progress "$T/tty.out" "scan: segments" || fail "no scan progress: $(cat -A "$T/tty.out")"
	has_progress "$T/tty.out" "check: reading chunks" || fail "no check progress: $(cat -A "$T/tty.out")"
	grep -aq '^clean' "$T/tty.out" || fail "fsck on a tty: $(cat "$T/tty.out")"
	on_tty "$T/repair.out" "$FSCK" --repair --rebuild "$T/img"
	has_progress "$T/repair.out" "repair: rebuilding maps" ||
		fail "no repair progress: $(cat -A "$T/repair.out")"
	check "fsck.pstorfs on a tty: scan, check and repair progress"
	local rc=0
	"$FSCK" "$T/img" >"$T/pipe.out" 2>&1 || rc=$?
	[ $rc = 0 ] || fail "fsck after the rebuild: status $rc: $(cat "$T/pipe.out")"
	! grep -aq '%' "$T/pipe.out" || fail "progress in piped output: $(cat -A "$T/pipe.out")"
	on_tty "$T/quiet.out" "$FSCK" -q "$T/img"
	! grep -aq '%' "$T/quiet.out" || fail "-q: progress on a tty: $(cat -A "$T/quiet.out")"
	grep -aq '^clean' "$T/quiet.out" || fail "-q: $(cat "$T/quiet.out")"
	check "no progress when piped, nor with -q"
}

case_mount_recovery() {
	with_data
	mkdir -p "$T/m"
	# On a terminal (the daemon in the foreground under script); recovery=scan walks every
	# segment.
	script -qec "$(printf '%q ' "$PSTORFS" "$T/img" "$T/m" -f -o recovery=scan)" /dev/null \
		>"$T/tty.out" 2>&1 &
	local spid=$! n=600
	until is_mounted "$T/m"; do
		_wait_gone "$spid" 0 && fail "pstorfs exited on the tty: $(cat "$T/tty.out")"
		n=$((n - 1))
		[ $n -gt 0 ] || fail "no mount within 60 s"
		sleep 0.1
	done
	pstor_adopt_mount "$T/m"
	pstor_umount "$T/m"
	wait "$spid" || true
	has_progress "$T/tty.out" "recovery: reading segments" ||
		fail "no recovery progress on a tty: $(cat -A "$T/tty.out")"
	check "mount on a tty: $(tr '\r' '\n' <"$T/tty.out" | grep -a 'recovery: ' | tail -n 1)"
	# In the foreground with output to a file (tests, systemd): none.
	pstor_mount "$T/img" "$T/m" recovery=scan
	pstor_umount "$T/m"
	! grep -aq 'recovery:.*%' "$T"/pstorfs.*.log || fail "recovery progress in a log file"
	check "none when stderr is a file"
}

run_cases
