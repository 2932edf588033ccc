#!/bin/bash
# Two boxes, each in its own network namespace joined by a veth pair, mirroring pods over TLS:
# stretch (fingerprints first), writes through both mounts, snapshots, verify, bad input, a peer
# with a bad certificate, a stale epoch replayed by hand, async replication, and a series of
# faults (the link cut with nftables, kill -9 of either daemon) under a writer that journals every
# acknowledged write, checked on every serving box after each fault.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_cluster.sh"
need_binaries
need nft sha256sum
WRITER=$PSTOR_BUILD_DIR/tests/tools/pstor-crash-writer
[ -x "$WRITER" ] || skip "pstor-crash-writer is not built"

# Two mounted boxes that know each other, link up.
two_boxes() { # [extra mount options]
	cl_net_up
	pstor_mkfs "$T/a.img" 2G
	pstor_mkfs "$T/b.img" 2G
	cl_mount a "$T/a.img" "${1:-}"
	cl_mount b "$T/b.img" "${1:-}"
	cl_ctl a cluster peer add boxb 10.77.0.2:$CL_PORT
	cl_ctl b cluster peer add boxa 10.77.0.1:$CL_PORT
	cl_link_up a
	cl_link_up b
}

# Pod P1 holding volumes NAMES (made with SIZE on box a), stretched to b and in sync.
stretched_pod() { # SIZE NAMES...
	local size=$1 v
	shift
	cl_ctl a pod create p1
	for v in "$@"; do
		[ -e "$T/a/volumes/$v" ] || cl_ctl a volume create "$v" "$size"
		cl_ctl a pod add p1 "$v"
	done
	cl_ctl a pod stretch p1 boxb
	cl_wait_state a p1 in_sync 60
	cl_wait_state b p1 in_sync 60
}

same_on_both() { # VOLUME...: byte-identical replicas
	local v a b
	for v in "$@"; do
		a=$(cl_sha "$T/a/volumes/$v")
		b=$(cl_sha "$T/b/volumes/$v")
		[ "$a" = "$b" ] || fail "volume $v differs: box a $a, box b $b"
	done
}

json() { # FILE PYTHON-EXPRESSION-ON-d
	"$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"
}

pod_json() { # BOX FIELD: a field of pod p1 in the box's cluster/status.json
	json "$T/$1/.pstorage/cluster/status.json" "[p for p in d['pods'] if p['name']=='p1'][0]['$2']"
}

ctl_fails() { # BOX ERRNO-TEXT COMMAND...: the command must fail with that reason
	local b=$1 want=$2
	shift 2
	if echo "$*" >"$T/$b/.pstorage/ctl" 2>"$T/ctl.err"; then
		fail "box $b: '$*' succeeded"
	fi
	grep -q "$want" "$T/ctl.err" || fail "box $b: '$*' failed with '$(cat "$T/ctl.err")', want '$want'"
	check "box $b refuses '$*': $(cat "$T/$b/.pstorage/ctl")"
}

case_stretch_is_fingerprint_first() {
	two_boxes
	# The same 32 MiB of data on both boxes (box b in a volume of its own), plus a snapshot.
	head -c 32M /dev/urandom >"$T/data"
	cl_ctl a volume create v1 64M
	cl_ctl b volume create other 64M
	dd if="$T/data" of="$T/a/volumes/v1" bs=1M conv=notrunc status=none
	dd if="$T/data" of="$T/b/volumes/other" bs=1M conv=notrunc status=none
	cl_ctl a snapshot create v1 s1
	dd if=/dev/urandom of="$T/a/volumes/v1" bs=4k count=16 seek=100 conv=notrunc status=none
	stretched_pod 64M v1
	same_on_both v1
	[ "$(cl_sha "$T/a/snapshots/v1/s1")" = "$(cl_sha "$T/b/snapshots/v1/s1")" ] ||
		fail "snapshot s1 differs between the boxes"
	local wire logical
	wire=$(pod_json a wire_bytes)
	logical=$(pod_json a logical_bytes)
	check "stretch of 2 x 64 MiB (snapshot + volume) whose data box b held: $wire bytes on the wire for $logical logical"
	[ "$wire" -le $((logical / 20)) ] || fail "stretch sent $wire bytes for $logical logical (over 5%)"
	# Unique data travels once, as stored.
	cl_ctl a volume create v2 16M
	head -c 16M /dev/urandom >"$T/data2"
	dd if="$T/data2" of="$T/a/volumes/v2" bs=1M conv=notrunc status=none
	local w0
	w0=$(json "$T/a/.pstorage/cluster/status.json" "d['peers'][0]['bytes_sent']")
	cl_ctl a pod add p1 v2
	cl_wait_state a p1 in_sync 60
	cl_wait_state b p1 in_sync 60
	same_on_both v1 v2
	local w1
	w1=$(json "$T/a/.pstorage/cluster/status.json" "d['peers'][0]['bytes_sent']")
	check "adding 16 MiB of unique data sent $((w1 - w0)) bytes"
	[ $((w1 - w0)) -lt $((17 * 1048576)) ] || fail "unique data sent $((w1 - w0)) bytes for 16 MiB"
}

case_writes_through_both_boxes() {
	two_boxes
	stretched_pod 64M v1 v2
	# Box a leads; box b forwards its writes there. Both serve reads and writes.
	dd if=/dev/urandom of="$T/a/volumes/v1" bs=64k count=64 conv=notrunc,fsync status=none
	dd if=/dev/urandom of="$T/b/volumes/v1" bs=4k count=300 seek=2000 conv=notrunc,fsync status=none
	dd if=/dev/urandom of="$T/b/volumes/v2" bs=1M count=8 seek=3 oflag=direct conv=notrunc status=none
	head -c 100000 /dev/urandom >"$T/odd"
	dd if="$T/odd" of="$T/a/volumes/v2" bs=100000 seek=12345 oflag=seek_bytes conv=notrunc status=none
	truncate -s 96M "$T/b/volumes/v2"
	sync "$T/b/volumes/v2"
	same_on_both v1 v2
	[ "$(stat -c %s "$T/a/volumes/v2")" = $((96 * 1048576)) ] || fail "resize on b did not reach a"
	# A snapshot taken on either box exists on both, at the same point.
	cl_ctl b snapshot create v1 fromb
	cl_ctl a snapshot create v2 froma
	[ "$(cl_sha "$T/a/snapshots/v1/fromb")" = "$(cl_sha "$T/b/snapshots/v1/fromb")" ] ||
		fail "snapshot fromb differs"
	[ "$(cl_sha "$T/a/snapshots/v2/froma")" = "$(cl_sha "$T/b/snapshots/v2/froma")" ] ||
		fail "snapshot froma differs"
	# A clone within the pod (copy_file_range from a snapshot) travels as a clone.
	"$PY" -c 'import os, sys
s = os.open(sys.argv[1], os.O_RDONLY)
d = os.open(sys.argv[2], os.O_WRONLY)
n = os.copy_file_range(s, d, 8 << 20, 0, 1 << 20)
assert n == 8 << 20, n' "$T/a/snapshots/v1/fromb" "$T/a/volumes/v2"
	same_on_both v1 v2
	cl_ctl a pod verify p1
	check "$(cat "$T/a/.pstorage/ctl")"
	grep -q ": 0 differ" "$T/a/.pstorage/ctl" || fail "verify found differences"
	grep -q '^cluster     box boxa, peer boxb up' "$T/a/.pstorage/status" ||
		fail "status has no cluster line: $(grep cluster "$T/a/.pstorage/status")"
	grep -q 'pstorfs_cluster_pod_state{pod="p1",state="in_sync"} 1' "$T/b/.pstorage/metrics" ||
		fail "metrics lack the pod state"
}

case_pod_snapshot_is_consistent() {
	two_boxes
	stretched_pod 16M v1 v2
	# One writer stamps generation N into v1, then the same N into v2, over and over (through
	# box b, which forwards to the leader): a pod snapshot must never see v2 ahead of v1, nor
	# v1 more than one ahead, and both boxes must hold the same snapshots.
	"$PY" -c '
import os, struct, sys, time
a = os.open(sys.argv[1], os.O_WRONLY | os.O_DIRECT)
b = os.open(sys.argv[2], os.O_WRONLY | os.O_DIRECT)
import mmap
buf = mmap.mmap(-1, 4096)
end = time.time() + 4
n = 0
while time.time() < end:
    n += 1
    buf[0:8] = struct.pack("<Q", n)
    os.pwrite(a, buf, 0)
    os.pwrite(b, buf, 0)
' "$T/b/volumes/v1" "$T/b/volumes/v2" &
	local wp=$! i g1 g2
	for i in 1 2 3 4 5; do
		sleep 0.5
		cl_ctl a pod snapshot p1 s$i
	done
	wait $wp
	for i in 1 2 3 4 5; do
		g1=$(od -An -tu8 -N8 "$T/a/snapshots/v1/s$i" | tr -d ' ')
		g2=$(od -An -tu8 -N8 "$T/a/snapshots/v2/s$i" | tr -d ' ')
		[ "$g2" -le "$g1" ] && [ "$g1" -le $((g2 + 1)) ] ||
			fail "pod snapshot s$i is not consistent: v1 at $g1, v2 at $g2"
		for v in v1 v2; do
			[ "$(cl_sha "$T/a/snapshots/$v/s$i")" = "$(cl_sha "$T/b/snapshots/$v/s$i")" ] ||
				fail "snapshot $v/s$i differs between the boxes"
		done
		check "pod snapshot s$i: v1 at generation $g1, v2 at $g2, the same on both boxes"
	done
	ctl_fails a "File exists" pod snapshot p1 s1
	ctl_fails b "Invalid argument" pod snapshot p1 s9
	same_on_both v1 v2
}

case_bad_commands_change_nothing() {
	two_boxes
	cl_ctl a volume create v1 16M
	cl_ctl a volume create v9 16M
	cl_ctl b volume create v9 16M
	cl_ctl a pod create p1
	cl_ctl a pod create p2
	ctl_fails a "File exists" pod create p1
	ctl_fails a "Invalid argument" pod create bad/name
	ctl_fails a "No such file" pod add p1 nosuch
	ctl_fails a "No such file" pod add nopod v1
	cl_ctl a pod add p1 v1
	ctl_fails a "Device or resource busy" pod add p2 v1
	ctl_fails a "No such file" pod stretch p1 boxz
	ctl_fails a "Invalid argument" pod set p1 colour blue
	ctl_fails a "Invalid argument" pod set p1 replication sometimes
	ctl_fails a "Invalid argument" cluster peer add boxa 10.0.0.1:1
	ctl_fails a "Invalid argument" cluster peer add boxc nowhere
	ctl_fails a "Device or resource busy" cluster peer add boxc 10.0.0.3:7001
	ctl_fails a "Invalid argument" pod verify p1
	# A name the peer already has: the stretch fails and nothing changes on either box.
	cl_ctl a pod add p2 v9
	ctl_fails a "File exists" pod stretch p2 boxb
	[ "$(cl_state a p2)" = local ] || fail "p2 is $(cl_state a p2) after a failed stretch"
	[ "$(cl_state b p2)" = none ] || fail "box b has p2 after a failed stretch"
	cl_ctl a pod stretch p1 boxb
	cl_wait_state b p1 in_sync 30
	ctl_fails a "Device or resource busy" volume delete v1
	ctl_fails a "Device or resource busy" volume rename v1 v7
	ctl_fails b "Invalid argument" pod remove p1 v1
	ctl_fails a "Device or resource busy" cluster peer remove boxb
	ctl_fails a "Invalid argument" pod resolve p1 boxa
	# A box without a cluster says so.
	pstor_mkfs "$T/c.img" 1G
	pstor_mount "$T/c.img" "$T/c"
	if echo "pod create x" >"$T/c/.pstorage/ctl" 2>/dev/null; then fail "pod create without a cluster"; fi
	grep -q "not in a cluster" "$T/c/.pstorage/ctl" || fail "no reason: $(cat "$T/c/.pstorage/ctl")"
	grep -q '"cluster": "standalone"' "$T/c/.pstorage/status.json" || fail "standalone box"
}

case_bad_certificate_is_refused() {
	cl_net_up
	sh "$PSTOR_SRC_DIR/tests/cluster/mkcerts.sh" "$T/other" boxb >/dev/null
	pstor_mkfs "$T/a.img" 1G
	pstor_mkfs "$T/b.img" 1G
	cl_mount a "$T/a.img"
	# Box b's certificate is signed by a CA box a does not trust (and b trusts its own CA).
	local wrap="$T/pstorfs-nsb"
	printf '#!/bin/sh\nexec nsenter --net=/run/netns/%s %s "$@"\n' "${CL_NS}b" "$PSTORFS" >"$wrap"
	chmod +x "$wrap"
	PSTORFS=$wrap pstor_mount "$T/b.img" "$T/b" "$(cl_opts b "$T/other")"
	cl_ctl a cluster peer add boxb 10.77.0.2:$CL_PORT
	cl_ctl b cluster peer add boxa 10.77.0.1:$CL_PORT
	cl_ctl a volume create v1 16M
	cl_ctl a pod create p1
	cl_ctl a pod add p1 v1
	local n=100
	until [ "$(json "$T/a/.pstorage/cluster/status.json" "d['refused_connections']")" -gt 0 ] ||
		[ "$(json "$T/b/.pstorage/cluster/status.json" "d['refused_connections']")" -gt 0 ]; do
		n=$((n - 1))
		[ $n -gt 0 ] || fail "no connection refused in 10 s"
		sleep 0.1
	done
	grep -q '"link":"down"' "$T/a/.pstorage/cluster/status.json" || fail "the link came up"
	ctl_fails a "Transport endpoint is not connected" pod stretch p1 boxb
	[ ! -e "$T/b/volumes/v1" ] || fail "box b got a volume"
	check "refused: $(grep -h refused "$T/a/.pstorage/cluster/status" "$T/b/.pstorage/cluster/status" | tr '\n' ' ')"
	grep -q "refused a connection\|certificate" "${_DLOG[$T/a]}" "${_DLOG[$T/b]}" ||
		fail "the refusal is not logged"
}

case_stale_epoch_is_refused() {
	two_boxes
	stretched_pod 16M v1
	cl_cut
	cl_wait_state a p1 degraded 15
	dd if=/dev/urandom of="$T/a/volumes/v1" bs=4k count=10 conv=notrunc,fsync status=none
	cl_heal
	cl_wait_state b p1 in_sync 30
	[ "$(pod_json b epoch)" = 2 ] || fail "box b's epoch is $(pod_json b epoch), not 2"
	local before
	before=$(cl_sha "$T/b/volumes/v1")
	cl_ctl a pod test-replay-stale p1
	local n=50
	until [ "$(json "$T/b/.pstorage/cluster/status.json" "d['refused_stale_epochs']")" = 1 ]; do
		n=$((n - 1))
		[ $n -gt 0 ] || fail "box b did not refuse the stale write"
		sleep 0.1
	done
	[ "$(cl_sha "$T/b/volumes/v1")" = "$before" ] || fail "the stale write changed box b"
	same_on_both v1
}

case_async_ships_in_order() {
	two_boxes
	stretched_pod 32M v1
	cl_ctl a pod set p1 replication async
	[ "$(pod_json b replication)" = async ] || fail "box b does not know the pod is async"
	dd if=/dev/urandom of="$T/a/volumes/v1" bs=64k count=256 conv=notrunc status=none
	if dd if=/dev/zero of="$T/b/volumes/v1" bs=4k count=1 conv=notrunc status=none 2>/dev/null; then
		fail "box b took a write to an async pod it does not lead"
	fi
	sync "$T/a/volumes/v1" # fsync: what it covers reached box b
	same_on_both v1
	[ "$(pod_json a in_flight_changes)" = 0 ] || fail "changes in flight after fsync"
	check "async lag after fsync: $(pod_json a async_lag_seconds) s, $(pod_json a async_lag_bytes) bytes"
}

# fio_through_a_cut BOX WAIT_BOX STATE: 4k random writes at qd32 into BOX's v1 for 2 s
# ($T/fio.out), the link cut 0.7 s in; once WAIT_BOX's p1 is in STATE, fio must end within 30 s
# (no write left unanswered). Its exit status in FIO_RC.
fio_through_a_cut() {
	local fpid
	fio --name=q --filename="$T/$1/volumes/v1" --direct=1 --ioengine=libaio --rw=randwrite \
		--bs=4k --iodepth=32 --size=32M --time_based --runtime=2 --randrepeat=0 \
		--output="$T/fio.out" >/dev/null 2>&1 &
	fpid=$!
	sleep 0.7
	cl_cut
	cl_wait_state "$2" p1 "$3" 15
	_wait_gone $fpid 30 || fail "fio on box $1 still waits for writes 30 s after the cut"
	FIO_RC=0
	wait $fpid || FIO_RC=$?
}

# The leader answers a stretched pod's writes from the acknowledgement's thread (PENDING: the
# FUSE thread takes the next request meanwhile). 32 direct writes in flight, the link cut
# under them: each is answered once the peer is declared gone (the leader serves alone: no
# error), none is lost, and unmounting waits for none (all answered).
case_queued_writes_are_answered_through_a_cut() {
	need fio
	two_boxes
	stretched_pod 32M v1
	fio_through_a_cut a a degraded
	[ "$FIO_RC" = 0 ] || fail "fio: status $FIO_RC: $(grep -i err "$T/fio.out" | head -3)"
	local n
	n=$("$PY" -c "import re,sys; print(re.search(r'issued rwts: total=\d+,(\d+)', open(sys.argv[1]).read()).group(1))" "$T/fio.out")
	[ "$n" -gt 0 ] || fail "no writes issued"
	cl_heal
	cl_wait_state b p1 in_sync 60
	same_on_both v1
	check "$n writes at queue depth 32, answered through the cut; replicas identical"
}

case_forwarded_writes_overlap_and_are_answered_through_a_cut() {
	need fio
	two_boxes
	stretched_pod 32M v1
	# Box b's writes go to the leader (box a) and come back applied; many at once (qd32),
	# answered as the leader's answers arrive, read back right on box b and equal on both.
	fio --name=f --filename="$T/b/volumes/v1" --direct=1 --ioengine=libaio --rw=randwrite \
		--bs=4k --iodepth=32 --size=8M --randrepeat=0 --verify=crc32c --do_verify=1 \
		--output="$T/fio.verify" >/dev/null 2>&1 || fail "fio verify through box b: $(grep -i -m3 'err\|verify' "$T/fio.verify")"
	same_on_both v1
	# In flight through a cut: every write gets its answer (EIO once box b stops serving),
	# none hangs.
	fio_through_a_cut b b offline
	log "fio through the cut: status $FIO_RC, $(grep -m1 -o 'err= *[0-9]*' "$T/fio.out" || echo 'no error line')"
	cl_heal
	cl_wait_state b p1 in_sync 60
	same_on_both v1
	check "forwarded writes at queue depth 32 verify on box b, are answered through a cut; replicas identical"
}

case_split_is_refused_until_resolved() {
	two_boxes
	stretched_pod 16M v1
	cl_cut
	cl_wait_state a p1 degraded 15
	cl_wait_state b p1 offline 15
	dd if=/dev/urandom of="$T/a/volumes/v1" bs=4k count=8 conv=notrunc,fsync status=none
	# A broken arbiter lets box b serve too, in the same epoch (fault injection).
	cl_ctl b pod test-take-over p1
	cl_wait_state b p1 degraded 5
	dd if=/dev/urandom of="$T/b/volumes/v1" bs=4k count=8 seek=100 conv=notrunc,fsync status=none
	cl_heal
	cl_wait_state a p1 split 30
	cl_wait_state b p1 split 30
	if dd if="$T/a/volumes/v1" of=/dev/null bs=4k count=1 status=none 2>/dev/null; then
		fail "a split pod serves reads"
	fi
	grep -q "split" "${_DLOG[$T/a]}" || fail "the split is not logged"
	ctl_fails b "Invalid argument" pod resolve p1 boxa
	cl_ctl a pod resolve p1 boxa
	cl_wait_state a p1 in_sync 60
	cl_wait_state b p1 in_sync 60
	same_on_both v1
	check "split refused, then resolved keeping box a: $(grep '^pod' "$T/b/.pstorage/cluster/status")"
}

case_snapshots_taken_alone_reach_the_peer() {
	two_boxes
	stretched_pod 32M v1
	cl_ctl a snapshot create v1 old
	cl_ctl a snapshot create v1 gone
	cl_cut
	cl_wait_state a p1 degraded 15
	# While alone: writes, a snapshot, more writes, a second one, one deleted, a resize.
	dd if=/dev/urandom of="$T/a/volumes/v1" bs=64k count=16 seek=3 conv=notrunc status=none
	cl_ctl a snapshot create v1 mid
	dd if=/dev/urandom of="$T/a/volumes/v1" bs=64k count=16 seek=200 conv=notrunc status=none
	cl_ctl a snapshot delete v1 gone
	cl_ctl a snapshot create v1 late
	truncate -s 40M "$T/a/volumes/v1"
	dd if=/dev/urandom of="$T/a/volumes/v1" bs=64k count=4 seek=600 conv=notrunc status=none
	cl_heal
	cl_wait_state b p1 in_sync 60
	same_on_both v1
	local s
	for s in old mid late; do
		[ -e "$T/b/snapshots/v1/$s" ] || fail "snapshot $s is missing on box b"
		[ "$(cl_sha "$T/a/snapshots/v1/$s")" = "$(cl_sha "$T/b/snapshots/v1/$s")" ] ||
			fail "snapshot $s differs between the boxes"
	done
	[ ! -e "$T/b/snapshots/v1/gone" ] || fail "snapshot gone was not deleted on box b"
	check "snapshots after the resync on box b: $(ls "$T/b/snapshots/v1" | tr '\n' ' ')"
}

# A cut drops packets silently: box b learns of it only when its pings go unanswered, and serves
# reads until then. Box a must not answer a write alone before that moment.
case_reads_on_the_peer_never_miss_a_write_alone() {
	two_boxes
	stretched_pod 16M v1
	head -c 4096 /dev/urandom >"$T/new"
	cl_cut_reset
	dd if="$T/new" of="$T/a/volumes/v1" bs=4k seek=7 oflag=direct conv=notrunc,fsync status=none
	if dd if="$T/b/volumes/v1" of="$T/read" bs=4k skip=7 count=1 iflag=direct status=none \
		2>/dev/null; then
		cmp -s "$T/new" "$T/read" ||
			fail "box b served a stale block after box a answered a write alone"
	fi
	cl_wait_state a p1 degraded 15
	cl_wait_state b p1 offline 15
	cl_heal
	cl_wait_state b p1 in_sync 60
	same_on_both v1
}

# A 1 MiB sequential stream marks the regions ahead of it dirty (32 MiB a save) and then writes
# into them without waiting for a save, since the map already committed holds them: kill -9 of
# the leader in the middle, and every write dd saw made durable (O_DSYNC: the contract covers
# those; a write acknowledged without it may be lost with the box that crashed, on both, since
# the leader's copy is the pod's) must be on both boxes, replicas identical.
case_a_stream_killed_midway_resyncs_what_was_marked_ahead() {
	local n
	two_boxes
	stretched_pod 128M v1
	head -c 128M /dev/urandom >"$T/src"
	# One dd a MiB, so the count of the durable ones is exact.
	(for ((i = 0; i < 128; i++)); do
		dd if="$T/src" of="$T/a/volumes/v1" bs=1M skip=$i seek=$i count=1 \
			oflag=direct,dsync conv=notrunc status=none 2>/dev/null || break
		echo $((i + 1)) >"$T/acked"
	done) &
	local dpid=$!
	sleep 0.7
	pstor_kill9 "$T/a"
	wait "$dpid" || true
	n=$(cat "$T/acked" 2>/dev/null || echo 0)
	remount a
	cl_wait_state a p1 in_sync 60
	cl_wait_state b p1 in_sync 60
	same_on_both v1
	((n == 0)) || cmp -n $((n * 1048576)) "$T/src" "$T/b/volumes/v1" ||
		fail "box b lacks some of the $n MiB dd saw written"
	check "killed after $n MiB of 128: both boxes hold them, replicas identical"
}

case_preferred_box_leads() {
	two_boxes
	stretched_pod 16M v1
	cl_ctl a pod set p1 preferred boxb
	[ "$(pod_json a leader)" = boxb ] && [ "$(pod_json b leader)" = boxb ] ||
		fail "leader is $(pod_json a leader) / $(pod_json b leader), not boxb"
	dd if=/dev/urandom of="$T/a/volumes/v1" bs=4k count=64 conv=notrunc,fsync status=none
	dd if=/dev/urandom of="$T/b/volumes/v1" bs=4k count=64 seek=64 conv=notrunc,fsync status=none
	same_on_both v1
	# Now box b serves alone when the link fails, and box a stops.
	cl_cut
	cl_wait_state b p1 degraded 15
	cl_wait_state a p1 offline 15
	dd if=/dev/urandom of="$T/b/volumes/v1" bs=4k count=64 seek=200 conv=notrunc,fsync status=none
	cl_heal
	cl_wait_state a p1 in_sync 30
	same_on_both v1
}

# ---- faults -------------------------------------------------------------------------------------

# The partition suite (test_cluster_partition.sh) runs the randomized faults with a mediator;
# these keep the part-1 rule (no mediator) and the crash writer's sync modes covered.
FAULTS=${PSTOR_CLUSTER_FAULTS:-8}

writer_run() { # BOX SECONDS: writes to box's cw0, cw1 in the background; pid in WPID
	"$WRITER" run "$T/$1/volumes" "$T/journal" --volumes 2 --blocks 1024 --threads 2 \
		--seconds "$2" >>"$T/writer.log" 2>&1 &
	WPID=$!
}

writer_wait() { # the writer may end with an I/O error (its box stopped serving): not a failure
	local rc=0
	wait "$WPID" || rc=$?
	[ $rc = 0 ] || [ $rc = 3 ] || fail "writer: status $rc: $(tail -3 "$T/writer.log")"
}

verify_box() { # BOX
	"$WRITER" verify "$T/$1/volumes" "$T/journal" --volumes 2 --blocks 1024 >"$T/verify.log" 2>&1 ||
		fail "box $1 lost acknowledged writes: $(tail -5 "$T/verify.log")"
}

remount() { # BOX
	cl_mount "$1" "$T/$1.img"
}

case_faults() {
	local i kind total=0
	two_boxes
	cl_ctl a volume create cw0 4M
	cl_ctl a volume create cw1 4M
	stretched_pod 4M cw0 cw1
	"$WRITER" fill "$T/a/volumes" "$T/journal" --volumes 2 --blocks 1024 >"$T/writer.log" 2>&1
	for ((i = 0; total < FAULTS; i++)); do
		kind=$((i % 5))
		case $kind in
		0) # the link cut while box a (the leader) writes; a serves alone, b stops
			writer_run a 3
			sleep 1
			cl_cut
			cl_wait_state b p1 offline 15
			writer_wait
			cl_heal
			;;
		1) # the link cut while box b writes: its writes fail once it is offline
			writer_run b 3
			sleep 1
			cl_cut
			writer_wait
			cl_wait_state a p1 degraded 15
			cl_heal
			;;
		2) # kill -9 of the follower while the leader writes
			writer_run a 3
			sleep 1
			pstor_kill9 "$T/b"
			writer_wait
			remount b
			;;
		3) # kill -9 of the leader while it writes
			writer_run a 3
			sleep 1
			pstor_kill9 "$T/a"
			writer_wait
			remount a
			;;
		4) # kill -9 of the leader while the follower writes through it
			writer_run b 3
			sleep 1
			pstor_kill9 "$T/a"
			writer_wait
			remount a
			;;
		esac
		total=$((total + 1))
		cl_wait_state a p1 in_sync 60
		cl_wait_state b p1 in_sync 60
		verify_box a
		verify_box b
		same_on_both cw0 cw1
		check "fault $total (kind $kind): both boxes hold every acknowledged write ($(grep -c . "$T/writer.log") writer lines: $(tail -1 "$T/writer.log")), replicas identical"
	done
	check "$total faults; writer: $(tail -1 "$T/writer.log")"
}

run_cases
