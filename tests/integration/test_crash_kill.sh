#!/bin/bash
# Crash test: what fsync/fdatasync/O_DSYNC acknowledged survives kill -9 of the daemon, and what
# was not acknowledged may be lost but never reads as garbage. Each round runs the crash writer
# (tests/tools/pstor-crash-writer.c) on three volumes while snapshots are taken and deleted and GC
# is started, then kills the daemon and the writer together, remounts and verifies everything
# against the writer's journal (kept outside the mount), snapshots included.
#
# env: PSTOR_CRASH_ROUNDS (20), PSTOR_CRASH_BLOCKS (4 KiB blocks per volume, 8192),
#      PSTOR_CRASH_SEED (bash RANDOM seed, to replay the same kill timings),
#      PSTOR_CRASH_KEEP=DIR (copy the image of every round, as the kill left it, to DIR/round.N.img)
#      PSTOR_CRASH_CHAOS ("snap gc": what runs next to the writer; "" for the writer alone)
. "$(dirname "$0")/lib.sh"
need_binaries
WRITER=$PSTOR_BUILD_DIR/tests/tools/pstor-crash-writer
[ -x "$WRITER" ] || skip "$WRITER is not built"

ROUNDS=${PSTOR_CRASH_ROUNDS:-20}
BLOCKS=${PSTOR_CRASH_BLOCKS:-8192}
NVOL=3
SEED=${PSTOR_CRASH_SEED:-$$}
RANDOM=$SEED
KEEP=${PSTOR_CRASH_KEEP:-}
CHAOS=${PSTOR_CRASH_CHAOS-snap gc}
IMG=$T/img
M=$T/m
J=$T/journal # outside the mount: it must outlive every crash
WARGS=(--volumes "$NVOL" --blocks "$BLOCKS")
# The writer stops by itself after this long (a round kills it within 3 s): if the script dies
# between starting it and killing it, it must not keep the mount busy, and ctest waiting, forever.
WRITER_MAX_S=60

# A small namespace with small segments, filled to about half with live data before the first
# round: the overwrites of the rounds then bring free space under GC's threshold within a few
# rounds, and GC (in the background, and on `gc start`) relocates live chunks from then on.
pstor_mkfs "$IMG" 160M --segment-size 1M
pstor_mount "$IMG" "$M"
log "seed $SEED (PSTOR_CRASH_SEED=$SEED replays the kill timings), $ROUNDS rounds," \
	"$NVOL volumes of $((BLOCKS / 256)) MiB"
truncate -s $((BLOCKS * 4))K "$M/volumes/cw0"
ctl "$M" "volume create cw1 $((BLOCKS * 4))K"
truncate -s $((BLOCKS * 4))K "$M/volumes/cw2"
# Every block written and acknowledged once: from here on each block has something to lose.
"$WRITER" fill "$M/volumes" "$J" "${WARGS[@]}" >"$T/fill.out" 2>&1 ||
	fail "pstor-crash-writer fill: $(cat "$T/fill.out")"
# ... and once more: the first copy turns to garbage, so the rounds start near GC's threshold and
# GC relocates however few writes a round makes (6 short rounds of the sanitizer pass, at half a
# CPU, once overwrote too little to start it). Its cleaning so far is not the rounds'.
"$WRITER" fill "$M/volumes" "$J" "${WARGS[@]}" >"$T/fill.out" 2>&1 ||
	fail "pstor-crash-writer fill (again): $(cat "$T/fill.out")"

val() { # FILE KEY: the value of a `key: value` line
	awk -v k="$2:" '$1 == k { print $2; exit }' "$1"
}

# Snapshot churn and GC while the writer runs: each snapshot replaces the older ones of its
# volume, so they never pile up. Errors are expected once the daemon is killed.
chaos() { # ROUND
	local r=$1 i=0 v s c=$M/.pstorage/ctl
	set +eE
	trap - ERR
	# Ends with the script, whatever way the script ends (teardown would wait for it otherwise).
	while kill -0 "$_MAIN_PID" 2>/dev/null; do
		i=$((i + 1))
		v=cw$((RANDOM % NVOL))
		if [[ " $CHAOS " == *" snap "* ]]; then
			echo "snapshot create $v r${r}s$i" >"$c" 2>/dev/null
			for s in "$M/snapshots/$v"/*; do
				s=${s##*/}
				[ "$s" = '*' ] || [ "$s" = "r${r}s$i" ] ||
					echo "snapshot delete $v $s" >"$c" 2>/dev/null
			done
		fi
		[[ " $CHAOS " != *" gc "* ]] || echo "gc start" >"$c" 2>/dev/null
		sleep "0.$((RANDOM % 4))"
	done
}

# gc counters of the live mount (in memory since mount, so read before each kill)
gc_cleaned() {
	sed -n 's/^gc segments cleaned: *//p' "$M/.pstorage/flash/stats" 2>/dev/null || echo 0
}

# kill -9 the daemon and the writer in one kill(1), in random order, then the snapshot churn;
# clear the dead mount. Run with stderr in a file (bash's "Killed" notices), so it returns 1 with
# CRASH_ERR set instead of calling fail; sets WRC to the writer's exit status.
crash() { # WRITER_PID CHAOS_PID
	local w=$1 c=$2 d=${_DPID[$M]:-}
	CRASH_ERR="no daemon pid for $M"
	[ -n "$d" ] || return 1
	# shellcheck disable=SC2004 # an associative array (lib.sh): the key is the pid's text
	_DEXPECT[$d]=137
	if ((RANDOM % 2)); then kill -9 "$w" "$d"; else kill -9 "$d" "$w"; fi
	kill -9 "$c"
	CRASH_ERR="daemon $d survived kill -9"
	_wait_gone "$d" 30 || return 1
	WRC=0
	wait "$w" || WRC=$?
	wait "$c" || true
	if is_mounted "$M"; then
		fusermount3 -u -z "$M" || umount -l "$M"
	fi
	CRASH_ERR="$M is still mounted after kill -9 and a lazy unmount"
	! is_mounted "$M" || return 1
	_remove_cleanup "fuse:$M"
	CRASH_ERR="kill -9 of the daemon: not the expected exit"
	_reap "$M" || return 1
}

# On a failure, keep what it takes to look at it again (teardown removes $T).
keep_evidence() { # ROUND
	local d
	d=$(mktemp -d "/var/tmp/pstor-crash-fail.XXXXXX")
	cp --sparse=always "$IMG" "$d/img" # as it is now: the daemon may still have it open
	cp "$J" "$T"/*.log "$T"/*.out "$d/" 2>/dev/null || true
	log "round $1 failed; image, journal, daemon logs and verify output kept in $d"
	log "re-check: $WRITER verify MNT/volumes $d/journal ${WARGS[*]} (after mounting $d/img)"
}

[ -z "$KEEP" ] || mkdir -p "$KEEP"
gc_fill=$(gc_cleaned)
t_start=$SECONDS
tot_writes=0 tot_acked=0 from_ckpt=0 tot_lost=0 tot_garbage=0 tot_snap=0 gc_total=0 acked=0
for ((r = 1; r <= ROUNDS; r++)); do
	"$WRITER" run "$M/volumes" "$J" "${WARGS[@]}" --seconds $WRITER_MAX_S \
		>"$T/writer.$r.out" 2>&1 &
	wpid=$!
	chaos "$r" 2>/dev/null &
	cpid=$!
	# 0.3 .. 3 s: some kills land while GC, a snapshot or a commit is in flight.
	ms=$((300 + RANDOM % 2700))
	sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"
	gc=$(gc_cleaned)
	((r > 1)) || gc=$((gc - gc_fill))
	if _wait_gone "$wpid" 0; then
		wait "$wpid" || true
		cat "$T/writer.$r.out" >&2
		keep_evidence "$r"
		# Only the daemon being killed may make a write or a sync fail.
		fail "round $r: the writer stopped before the crash:" \
			"$(grep -m1 'pstor-crash-writer:' "$T/writer.$r.out" || echo "no message")"
	fi
	if ! crash "$wpid" "$cpid" 2>"$T/crash.$r.err"; then
		cat "$T/crash.$r.err" >&2
		fail "round $r: $CRASH_ERR"
	fi
	# 137: killed; 3: it saw the daemon die first (an I/O error) in the instant between the two.
	if [ "$WRC" != 137 ] && [ "$WRC" != 3 ]; then
		cat "$T/writer.$r.out" >&2
		keep_evidence "$r"
		fail "round $r: the writer exited with status $WRC (1 = read-back mismatch)"
	fi
	[ -z "$KEEP" ] || cp --sparse=always "$IMG" "$KEEP/round.$r.img"

	pstor_mount "$IMG" "$M"
	snaps=() nsnap=0
	for v in $(seq 0 $((NVOL - 1))); do
		for s in "$M/snapshots/cw$v"/*; do
			[ -f "$s" ] || continue
			# Reads to the end without an I/O error, and holds valid blocks only.
			cat "$s" >/dev/null || softfail "round $r: reading snapshot $s failed"
			snaps+=(--snapshot "$v:$s")
			nsnap=$((nsnap + 1))
		done
	done
	vrc=0
	"$WRITER" verify "$M/volumes" "$J" "${WARGS[@]}" "${snaps[@]}" >"$T/verify.$r.out" 2>&1 ||
		vrc=$?
	V=$T/verify.$r.out
	lost=$(val "$V" lost_acked_writes)
	garbage=$(val "$V" garbage_blocks)
	sgarbage=$(val "$V" snapshot_garbage)
	racked=$(val "$V" last_epoch_acked_writes)
	rwrites=$(val "$V" last_epoch_writes)
	acked=$(val "$V" acked_writes)
	tot_writes=$((tot_writes + ${rwrites:-0}))
	tot_acked=$((tot_acked + ${racked:-0}))
	tot_lost=$((tot_lost + ${lost:-0}))
	tot_garbage=$((tot_garbage + ${garbage:-0} + ${sgarbage:-0}))
	tot_snap=$((tot_snap + nsnap))
	gc_total=$((gc_total + ${gc:-0}))
	# This mount came after the kill: from the flash checkpoint, or by a full scan. Every
	# commit (the timed ones, and each snapshot create) may write a checkpoint, so with the
	# snapshot churn most rounds have one; a kill before the first commit leaves none.
	[ "$(sed -n 's/^open from checkpoint: *//p' "$M/.pstorage/flash/stats")" = 1 ] &&
		from_ckpt=$((from_ckpt + 1))
	log "round $r: killed after ${ms} ms; writes $rwrites, acked $racked;" \
		"lost $lost, garbage $garbage; $nsnap snapshot(s), garbage $sgarbage;" \
		"gc segments cleaned $gc"
	if [ "$vrc" != 0 ]; then
		sed 's/^/  /' "$V" >&2
		keep_evidence "$r"
		fail "round $r: verify failed (status $vrc; seed $SEED)"
	fi
done
gc_total=$((gc_total + $(gc_cleaned)))
log "total: $ROUNDS rounds in $((SECONDS - t_start)) s; writes $tot_writes," \
	"acked $tot_acked ($acked in the journal with the fill); lost $tot_lost," \
	"garbage $tot_garbage; $tot_snap snapshot reads; gc segments cleaned $gc_total;" \
	"$from_ckpt remounts from the flash checkpoint"
[[ " $CHAOS " != *" snap "* ]] || [ "$from_ckpt" -gt 0 ] ||
	softfail "no remount in $ROUNDS rounds started from the flash checkpoint"
[ "$gc_total" -gt 0 ] ||
	softfail "GC cleaned no segment in $ROUNDS rounds: the test did not exercise it"
pstor_umount "$M"
pass
