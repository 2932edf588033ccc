#!/bin/bash
# fsck.pstorfs on a real image: clean after kill -9 (acknowledged writes still only in the roll-
# forward log), finds a wiped metadata region, rebuilds it from the segments with --repair, and
# every volume and snapshot then reads back byte-exact through a new mount.
. "$(dirname "$0")/lib.sh"
need_binaries
need sha256sum
FSCK=$PSTOR_BUILD_DIR/fs/fsck.pstorfs

IMG=$T/img
M=$T/m
pstor_mkfs "$IMG" 512M --segment-size 1M
pstor_mount "$IMG" "$M"

check "volumes, a snapshot, a long pattern, then fsync'd writes that only the log holds"
truncate -s 64M "$M/volumes/a"
rand_file "$T/r" $((20 << 20))
put_at "$T/r" "$M/volumes/a" 0
ctl "$M" "snapshot create a s1"
dd if=/dev/zero of="$M/volumes/a" bs=4k count=100 seek=10 conv=fsync,notrunc status=none
# Written whole and cut to a block (under pipefail, head closing its pipe early made printf's
# SIGPIPE fail the script now and then).
printf 'ABCDEFGHIJ%.0s' $(seq 1 410) >"$T/pat"
truncate -s 4096 "$T/pat"
dd if="$T/pat" of="$M/volumes/a" bs=4k seek=200 conv=fsync,notrunc status=none
truncate -s 8M "$M/volumes/b"
dd if=/dev/urandom of="$M/volumes/b" bs=4k count=50 conv=fsync,notrunc status=none
(cd "$M" && sha256sum volumes/a volumes/b snapshots/a/s1) >"$T/sums"
pstor_kill9 "$M"

check "fsck after kill -9: clean"
"$FSCK" "$IMG" >"$T/fsck1" || { cat "$T/fsck1"; fail "fsck found problems after kill -9"; }

check "wipe the metadata region: fsck finds it (exit 4), --repair rebuilds it (exit 1)"
read -r OFF LEN < <(sed -n 's/.*metadata region \([0-9]*\)+\([0-9]*\).*/\1 \2/p' "$T/fsck1")
[ -n "$OFF" ] || fail "no metadata region in the fsck output"
dd if=/dev/zero of="$IMG" bs=4096 seek=$((OFF / 4096)) count=$((LEN / 4096)) conv=notrunc status=none
rc=0; "$FSCK" "$IMG" >"$T/fsck2" || rc=$?
[ "$rc" = 4 ] || { cat "$T/fsck2"; fail "fsck on a wiped region exited $rc, not 4"; }
rc=0; "$FSCK" --repair "$IMG" >"$T/fsck3" || rc=$?
cat "$T/fsck3"
[ "$rc" = 1 ] || fail "fsck --repair exited $rc, not 1"
"$FSCK" "$IMG" >/dev/null || fail "not clean after the repair"

check "every volume and the snapshot read back byte-exact"
pstor_mount "$IMG" "$M"
(cd "$M" && sha256sum -c --quiet "$T/sums") || fail "data differs after the repair"
pstor_umount "$M"
pass
