#!/bin/bash
# Two boxes and an etcd mediator in three network namespaces: failover decided by a race at the
# mediator, with randomized faults (link cuts, one box cut from etcd, both, one box from
# everything, a one-way cut, kill -9 and SIGSTOP of either daemon, etcd killed, a box restarted
# with its disk) while writers on both boxes journal every acknowledged write. After each round:
# no acknowledged write missing on either replica, replicas identical, and never two boxes
# acknowledging writes in a window where only one may serve. PSTOR_PARTITION_ROUNDS (30) and
# PSTOR_PARTITION_SEED (printed) rerun a series; a few hundred rounds make the soak.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_cluster.sh"
need_binaries
need nft sha256sum etcd curl
CW="$PY $PSTOR_SRC_DIR/tests/integration/cluster_writer.py"
MED="mediator=$CL_ETCD"

boxes_with_mediator() { # [extra mount options]
	cl_net3_up
	cl_etcd_start
	pstor_mkfs "$T/a.img" 1G
	pstor_mkfs "$T/b.img" 1G
	cl_mount a "$T/a.img" "$MED${1:+,$1}"
	cl_mount b "$T/b.img" "$MED${1:+,$1}"
	cl_ctl a cluster peer add boxb 10.77.0.2:$CL_PORT
	cl_ctl b cluster peer add boxa 10.77.0.1:$CL_PORT
	cl_link_up a
	cl_link_up b
	cl_ctl a pod create p1
	cl_ctl a volume create pv 8M
	cl_ctl a pod add p1 pv
	cl_ctl a pod stretch p1 boxb
	cl_wait_state a p1 in_sync 60
	cl_wait_state b p1 in_sync 60
	wait_agreed
}

json() { # FILE PYTHON-EXPRESSION-ON-d
	"$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"
}

pod_field() { # BOX FIELD (of pod p1's failover object, or of the pod with a leading '.')
	local f=$2
	if [ "${f#.}" != "$f" ]; then
		json "$T/$1/.pstorage/cluster/status.json" "[p for p in d['pods'] if p['name']=='p1'][0]['${f#.}']"
	else
		json "$T/$1/.pstorage/cluster/status.json" "[p for p in d['pods'] if p['name']=='p1'][0]['failover']['$f']"
	fi
}

wait_agreed() { # both boxes race with the same nonzero mediator revision
	local n=200 ra rb
	while :; do
		ra=$(pod_field a mediator_revision 2>/dev/null || echo 0)
		rb=$(pod_field b mediator_revision 2>/dev/null || echo 0)
		[ "$ra" != 0 ] && [ "$ra" = "$rb" ] && return 0
		n=$((n - 1))
		[ $n -gt 0 ] || fail "the boxes did not agree on a mediator revision (a $ra, b $rb)$(box_logs)"
		sleep 0.1
	done
}

now() { date +%s.%N; }

box_logs() { # the cluster lines of both daemons' logs, for a failure message
	local b
	for b in a b; do
		printf '\n--- box %s:\n' "$b"
		grep "cluster:" "${_DLOG[$T/$b]}" | grep -v "ctl:" | tail -25
	done
}

case_mediator_basics() {
	# Bad options are refused at mount with a reason (before anything listens).
	sh "$PSTOR_SRC_DIR/tests/cluster/mkcerts.sh" "$CL_CERTS" boxa boxb >/dev/null
	pstor_mkfs "$T/x.img" 1G
	mkdir -p "$T/x"
	local opts
	for opts in "$MED" "$(cl_opts a),mediator=ftp://x" "$(cl_opts a),$MED,mediator_ttl=1" \
		"$(cl_opts a),$MED,mediator_head_start_ms=x" "$(cl_opts a),cluster_timeout_ms=10" \
		"$(cl_opts a),$MED,mediator_prefix=nokey" "$(cl_opts a),mediator_ttl=5"; do
		if "$PSTORFS" "$T/x.img" "$T/x" -f -o "$opts" >"$T/x.log" 2>&1; then
			fail "mount with -o $opts succeeded"
		fi
		grep -qi "mediator\|cluster" "$T/x.log" || fail "no reason for -o $opts: $(cat "$T/x.log")"
		log "refused -o ...${opts: -40}: $(tail -1 "$T/x.log")"
	done
	check "bad mediator options refused with a reason"

	boxes_with_mediator
	grep -q "mediator: $CL_ETCD reachable" "$T/a/.pstorage/cluster/status" ||
		fail "status: $(cat "$T/a/.pstorage/cluster/status")"
	[ "$(json "$T/a/.pstorage/cluster/status.json" "d['mediator']['reachable']")" = True ] ||
		fail "status.json: mediator not reachable"
	check "status: $(grep mediator: "$T/a/.pstorage/cluster/status")"
	expect_ctl "$T/a" EINVAL "pod set p1 on_no_quorum sometimes"
	check "pod set on_no_quorum refuses a bad value: $(cat "$T/a/.pstorage/ctl")"

	# Losing the mediator while the link is up changes nothing for I/O; the leader is
	# pre-elected; if the link fails then, it serves alone and the other box stops.
	cl_etcd_kill
	local n=100
	until [ "$(pod_field a pre_elected)" = True ] && [ "$(pod_field b pre_elected)" = True ]; do
		n=$((n - 1))
		[ $n -gt 0 ] || fail "no pre-election with the mediator down: $(cat "$T/a/.pstorage/cluster/status")"
		sleep 0.1
	done
	dd if=/dev/urandom of="$T/a/volumes/pv" bs=4k count=16 conv=notrunc,fsync status=none
	dd if=/dev/urandom of="$T/b/volumes/pv" bs=4k count=16 seek=16 conv=notrunc,fsync status=none
	check "mediator down, link up: both boxes write; the leader is pre-elected"
	cl_cut_from a 10.77.0.2
	cl_wait_state a p1 degraded 15
	cl_wait_state b p1 offline 15
	dd if=/dev/urandom of="$T/a/volumes/pv" bs=4k count=16 conv=notrunc,fsync status=none
	if dd if=/dev/zero of="$T/b/volumes/pv" bs=4k count=1 conv=notrunc,fsync status=none 2>/dev/null; then
		fail "box b wrote while offline"
	fi
	check "then the link fails: the pre-elected leader serves alone, the other box gets EIO"
	cl_heal_all
	cl_etcd_start
	cl_wait_state a p1 in_sync 60
	cl_wait_state b p1 in_sync 60
	[ "$(cl_sha "$T/a/volumes/pv")" = "$(cl_sha "$T/b/volumes/pv")" ] || fail "replicas differ"
	wait_agreed
	check "healed: in sync, identical, the race re-armed at revision $(pod_field a mediator_revision)"

	# on_no_quorum=suspend: the box that stops serving holds I/O until it serves again.
	n=100
	until [ "$(pod_field a pre_elected)" = False ] && [ "$(pod_field b pre_elected)" = False ]; do
		n=$((n - 1))
		[ $n -gt 0 ] || fail "the pre-election was not released with the mediator back"
		sleep 0.1
	done
	check "mediator back: the pre-election is released"
	cl_ctl a pod set p1 on_no_quorum suspend
	[ "$(pod_field b on_no_quorum)" = suspend ] || fail "the setting did not reach box b"
	cl_cut_from b 10.77.0.1
	cl_cut_from b 10.77.0.3
	cl_wait_state b p1 offline 15
	cl_wait_state a p1 degraded 15
	(dd if=/dev/urandom of="$T/b/volumes/pv" bs=4k count=1 seek=100 conv=notrunc,fsync status=none &&
		touch "$T/held.done") &
	local held=$!
	sleep 2
	[ ! -e "$T/held.done" ] || fail "box b's write did not wait (suspend)"
	cl_heal_all
	# Bounded: a write held forever (the pod never served again) is the failure to report.
	n=600
	while kill -0 "$held" 2>/dev/null; do
		n=$((n - 1))
		if [ $n -le 0 ]; then
			pkill -KILL -P "$held" 2>/dev/null # the dd, so the teardown can unmount
			fail "the held write did not complete within 60 s of the heal$(box_logs)"
		fi
		sleep 0.1
	done
	wait "$held" || fail "the held write failed after the pod came back$(box_logs)"
	cl_wait_state b p1 in_sync 60
	check "suspend: box b's write waited through the outage and completed after the resync"
	# Held requests keep a daemon from stopping (they wait for the pod, not for unmount):
	# back to io-error before the teardown, as an admin would before taking a box down.
	cl_ctl a pod set p1 on_no_quorum io-error
}

# ---- randomized rounds -----------------------------------------------------------------------

ROUNDS=${PSTOR_PARTITION_ROUNDS:-30}
SEED=${PSTOR_PARTITION_SEED:-$(date +%s)}

pause_writers() {
	rm -f "$T/ctl/paused.a" "$T/ctl/paused.b"
	touch "$T/ctl/pause"
	local n=300
	until [ -e "$T/ctl/paused.a" ] && [ -e "$T/ctl/paused.b" ]; do
		n=$((n - 1))
		[ $n -gt 0 ] || fail "writers did not pause"
		sleep 0.05
	done
	rm -f "$T/ctl/paused.a" "$T/ctl/paused.b"
	sleep 0.05
	until [ -e "$T/ctl/paused.a" ] && [ -e "$T/ctl/paused.b" ]; do sleep 0.02; done
}

resume_writers() { rm -f "$T/ctl/pause"; }

both_in_sync() { # SECONDS: pod p1 in sync on both boxes (one poller, not a process per look)
	$CW wait "$1" in_sync "$T"/{a,b}/.pstorage/cluster/status.json >"$T/insync" ||
		fail "pod p1 not in sync on both boxes after $1 s ($(cat "$T/insync"))$(box_logs)"
}

verify_both() { # WHAT: every acknowledged write on both replicas (once both serve again)
	local b try
	for b in a b; do
		for try in 1 2 3; do
			$CW verify "$T/$b/volumes/pv" "$T/ja" "$T/jb" >"$T/verify.$b" 2>&1 && break
			grep -q "lost or wrong" "$T/verify.$b" && break # read it all: a real loss
			# A read that failed (EIO: the box stopped serving again, a link timed out
			# under load) is not a lost write: read again once both serve.
			log "$1: reading box $b failed ($(tail -1 "$T/verify.$b")); again once in sync"
			both_in_sync 60
		done
		grep -q ", 0 lost or wrong" "$T/verify.$b" ||
			fail "$1: box $b lost acknowledged writes: $(cat "$T/verify.$b")$(box_logs)"
	done
}

sigstop_box() { # BOX SECONDS
	local pid=${_DPID[$T/$1]}
	kill -STOP "$pid"
	sleep "$2"
	kill -CONT "$pid"
}

case_rounds() {
	local r kind t0 t1 label fo fos=() lost=0 splits=0 heals=()
	boxes_with_mediator
	log "seed $SEED, $ROUNDS rounds (PSTOR_PARTITION_SEED=$SEED PSTOR_PARTITION_ROUNDS=$ROUNDS to rerun)"
	RANDOM=$SEED
	export CW_STATE="$T/cw.state" # the checks read only what the journals gained
	mkdir -p "$T/ctl"
	: >"$T/windows"
	$CW run "$T/a/volumes/pv" a 0 1024 "$T/ja" "$T/ctl" &
	local wa=$!
	$CW run "$T/b/volumes/pv" b 1024 1024 "$T/jb" "$T/ctl" &
	local wb=$!
	_CLEANUP+=("kill:$wa" "kill:$wb") # before the unmounts: a writer keeps its mount busy
	for ((r = 1; r <= ROUNDS; r++)); do
		kind=$((RANDOM % 10))
		local victim=$((RANDOM % 2)) v other
		[ $victim = 0 ] && v=a other=b || v=b other=a
		fo=
		t0=$(now)
		case $kind in
		0) label="link cut"
			cl_cut_from a 10.77.0.2
			t0=$(now) # in effect from here
			sleep 2.5
			t1=$(now); cl_heal_all ;;
		1) label="box $v cut from etcd"
			cl_cut_from $v 10.77.0.3
			t0=$(now) # in effect from here
			sleep 2
			cl_heal_all; t1= ;;
		2) label="both boxes cut from etcd"
			cl_cut_from a 10.77.0.3; cl_cut_from b 10.77.0.3
			t0=$(now) # in effect from here
			sleep 2
			cl_heal_all; t1= ;;
		3) label="box $v cut from everything"
			cl_cut_from $v "$(cl_addr $other)"; cl_cut_from $v 10.77.0.3
			t0=$(now) # in effect from here
			sleep 2.5
			t1=$(now); cl_heal_all ;;
		4) label="one-way cut $v -> $other"
			cl_nft $v "out ip daddr $(cl_addr $other) drop"
			t0=$(now) # in effect from here
			sleep 2.5
			t1=$(now); cl_heal_all ;;
		5|6) label="kill -9 of box $v, restart with its disk"
			pstor_kill9 "$T/$v"
			sleep 2
			t1=$(now)
			cl_mount $v "$T/$v.img" "$MED" ;;
		7|8) label="SIGSTOP of box $v for 2.5 s"
			sigstop_box $v 2.5
			t1=$(now) ;;
		9) label="etcd killed, then the link cut (pre-election)"
			cl_etcd_kill
			sleep 1.5
			cl_cut_from a 10.77.0.2
			t0=$(now) # the window starts at the cut: until then both serve
			sleep 2
			t1=$(now); cl_heal_all; cl_etcd_start ;;
		esac
		[ $kind = 9 ] && ! kill -0 "$CL_ETCD_PID" 2>/dev/null && cl_etcd_start
		if [ -n "$t1" ]; then
			# Only one box may acknowledge writes from just after the fault to the heal
			# (until then the boxes cannot meet again), and for 2 s after it none in an
			# epoch older than the one the other box served alone in.
			awk -v a="$t0" -v b="$t1" -v l="round $r: $label" \
				'BEGIN { printf "%.6f %.6f 2.0 %s\n", a + 0.3, b, l }' >>"$T/windows"
			# (none yet when no write was acknowledged before the heal)
			fo=$(for b in a b; do $CW failover "$T/j$b" "$t0"; done |
				awk '$1 != "none"' | sort -n | head -1)
			if [ -n "$fo" ]; then fos+=("$fo"); fi
		fi
		local h0; h0=$(now)
		both_in_sync 90
		heals+=("$(awk -v a="$h0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')")
		pause_writers
		verify_both "round $r ($label, seed $SEED)"
		local try sa sb
		for try in 1 2 3; do
			sa=$(cl_sha "$T/a/volumes/pv" 2>/dev/null) && sb=$(cl_sha "$T/b/volumes/pv" 2>/dev/null) &&
				break
			both_in_sync 60 # a read failed: see verify_both
		done
		[ -n "$sa" ] && [ "$sa" = "$sb" ] ||
			fail "round $r ($label, seed $SEED): the replicas differ after the resync ($sa, $sb)$(box_logs)"
		$CW split "$T/windows" "$T/ja" "$T/jb" >"$T/split.log" ||
			fail "round $r ($label, seed $SEED): $(cat "$T/split.log")$(box_logs)"
		[ "$(cl_state a p1)" != split ] || fail "round $r: pod split"
		resume_writers
		check "round $r: $label: failover ${fo:-n/a} s, in sync again after ${heals[-1]} s; $(tail -1 "$T/verify.a")"
		$CW agreed 20 "$T"/{a,b}/.pstorage/cluster/status.json >"$T/agreed" ||
			fail "round $r: the boxes did not agree on a mediator revision ($(cat "$T/agreed"))$(box_logs)"
	done
	touch "$T/ctl/stop"
	wait $wa $wb
	local acked errs
	# grep -c fails when neither journal has a match (no write failed: rounds without a
	# failover), which pipefail would take for the test's failure.
	acked=$({ grep -c '^A' "$T/ja" "$T/jb" || true; } | awk -F: '{s+=$2} END {print s}')
	errs=$({ grep -c '^E' "$T/ja" "$T/jb" || true; } | awk -F: '{s+=$2} END {print s}')
	# An empty array prints one empty line: rounds without a failover leave none.
	printf '%s\n' "${fos[@]}" | sed '/^$/d' | sort -n >"$T/fo"
	printf '%s\n' "${heals[@]}" | sed '/^$/d' | sort -n >"$T/heal"
	local fo_sum="no failover in these rounds"
	[ ! -s "$T/fo" ] ||
		fo_sum="failover median $(awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}' "$T/fo") s, max $(tail -1 "$T/fo") s over $(wc -l <"$T/fo") rounds"
	check "$ROUNDS rounds (seed $SEED): $acked writes acknowledged ($errs failed during faults), 0 lost, 0 split brains; $fo_sum; heal to in-sync median $(awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}' "$T/heal") s, max $(tail -1 "$T/heal") s"
}

run_cases
