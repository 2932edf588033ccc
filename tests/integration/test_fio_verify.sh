#!/bin/bash
# fio with verify=crc32c on volume files: two concurrent random 4 KiB O_DIRECT writers (libaio,
# iodepth 16) on disjoint halves of one volume, and a sequential 1 MiB writer; each verifies what
# it wrote, then a verify-only pass after a remount reads it all back from the device.
. "$(dirname "$0")/lib.sh"
need_binaries
need fio

IMG=$T/img
M=$T/m
pstor_mkfs "$IMG" 3G
pstor_mount "$IMG" "$M"
MB=${PSTOR_IT_FIO_MB:-64} # per random job

truncate -s $((2 * MB))M "$M/volumes/rand"
truncate -s 64M "$M/volumes/seq"

cat >"$T/rand.fio" <<EOF
[global]
ioengine=libaio
direct=1
iodepth=16
verify=crc32c
verify_fatal=1
verify_dump=0
group_reporting=1

[rand]
filename=$M/volumes/rand
rw=randwrite
bs=4k
size=${MB}m
numjobs=2
offset_increment=${MB}m
EOF

cat >"$T/seq.fio" <<EOF
[global]
ioengine=libaio
direct=1
iodepth=4
verify=crc32c
verify_fatal=1
verify_dump=0

[seq]
filename=$M/volumes/seq
rw=write
bs=1M
size=64m
EOF

run_fio() { # JOBFILE WHAT [fio options]
	local job=$1 what=$2
	shift 2
	(cd "$T" && fio --output="$T/fio.out" "$@" "$job") || {
		cat "$T/fio.out" >&2
		fail "fio $what"
	}
	grep -q 'err= 0' "$T/fio.out" || {
		cat "$T/fio.out" >&2
		fail "fio $what reported an error"
	}
	grep -E '^ +(write|read):' "$T/fio.out" | sed "s/^ */  $what: /"
}

check "2 x ${MB} MiB random 4k O_DIRECT libaio iodepth 16 writes on one volume, then verify"
run_fio "$T/rand.fio" "randwrite+verify"
check "64 MiB sequential 1M writes, then verify"
run_fio "$T/seq.fio" "write+verify"
[ "$(stat -c %s "$M/volumes/rand")" = $((2 * MB << 20)) ] || fail "fio changed the volume size"

check "after unmount and remount, a verify-only pass of both"
pstor_umount "$M"
pstor_mount "$IMG" "$M"
run_fio "$T/rand.fio" "verify-only rand" --verify_only
run_fio "$T/seq.fio" "verify-only seq" --verify_only

check "kill -9 of the daemon under random writes to a third volume: the others stay intact"
truncate -s 32M "$M/volumes/churn"
ctl "$M" sync
fio --name=churn --filename="$M/volumes/churn" --rw=randwrite --bs=4k --size=32m \
	--ioengine=libaio --direct=1 --iodepth=16 --time_based=1 --runtime=30 \
	--output="$T/churn.out" >/dev/null 2>&1 &
churn=$!
sleep 3
pstor_kill9 "$M"
wait $churn || true
pstor_mount "$IMG" "$M"
run_fio "$T/rand.fio" "verify-only rand after kill -9" --verify_only
run_fio "$T/seq.fio" "verify-only seq after kill -9" --verify_only
cat "$M/volumes/churn" >/dev/null || fail "the volume written during the kill -9 does not read"

check "the verify pass can fail: corrupt one block of each job's range and expect a failure"
dd if=/dev/urandom of="$M/volumes/rand" bs=4k seek=5 count=1 conv=notrunc,fsync status=none
dd if=/dev/urandom of="$M/volumes/rand" bs=4k seek=$((MB * 256 + 5)) count=1 conv=notrunc,fsync \
	status=none
if (cd "$T" && fio --output="$T/fio.bad" --verify_only "$T/rand.fio" 2>"$T/fio.bad.err"); then
	fail "fio verify-only did not notice a corrupted block"
fi
pstor_umount "$M"
pass
