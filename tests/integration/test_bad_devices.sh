#!/bin/bash
# Devices pstorfs must refuse: zeroes, another file system, a truncated namespace, a newer format,
# damaged superblocks, a missing path, a directory, a device already mounted, a bad mount point.
# Each refusal is one `pstorfs: ...` line on stderr and a non-zero exit, in the foreground (-f)
# and daemonizing modes alike, leaves no mount and no process behind, and writes nothing (same
# sha256 and mtime).
# mkfs.pstorfs refuses to overwrite another file system or a pstorfs of any state without --force.
# One case per kind of refusal (lib.sh run_cases), each making only the images it needs.
. "$(dirname "$0")/lib.sh"
need_binaries
need b2sum mkfs.ext4
SBTOOL=$PSTOR_BUILD_DIR/tests/tools/pstor-sbtool
[ -x "$SBTOOL" ] || skip "$SBTOOL is not built"

M=$T/m
mkdir -p "$M"

mtime() { # FILE: size and mtime (ns), or "-" for what is not a regular file
	if [ -f "$1" ]; then stat -c '%s %y' "$1"; else echo -; fi
}
# BLAKE2b, not SHA-256: as strong, and 4-5 times faster here (most of this test's time was
# hashing the images before and after each refusal).
fingerprint() { # FILE: content hash, size and mtime
	if [ -f "$1" ]; then echo "$(b2sum <"$1" | cut -d' ' -f1) $(mtime "$1")"; else echo -; fi
}

# Mounts on MNT (a second mount on a mountpoint in use must not stack a new one).
nmounts() { # MNT
	awk -v m="$1" '$5 == m { n++ } END { print n + 0 }' /proc/self/mountinfo
}

# expect_refused WHAT DEVICE REGEX [MOUNTPOINT]: both modes fail with one matching line. The
# device must not change unless it is mounted by another daemon of ours (LIVE=1).
LIVE=0
expect_refused() {
	local what=$1 dev=$2 re=$3 mnt=${4:-$M} mode rc before after t0 lines pids0 n0
	before=$(fingerprint "$dev")
	pids0=$(pstor_daemon_pids "$mnt")
	n0=$(nmounts "$mnt")
	for mode in -f daemon; do
		rc=0
		t0=$(mtime "$dev")
		if [ "$mode" = -f ]; then
			timeout 60 "$PSTORFS" "$dev" "$mnt" -f >"$T/out" 2>"$T/err" || rc=$?
		else
			timeout 60 "$PSTORFS" "$dev" "$mnt" >"$T/out" 2>"$T/err" || rc=$?
		fi
		if [ "$(nmounts "$mnt")" != "$n0" ]; then
			pstor_adopt_mount "$mnt"
			fail "$what ($mode): pstorfs mounted it (exit $rc)"
		fi
		[ "$rc" -ne 0 ] || fail "$what ($mode): exit status 0"
		[ "$rc" -ne 124 ] || fail "$what ($mode): still running after 60 s"
		[ ! -s "$T/out" ] || fail "$what ($mode): wrote to stdout: $(cat "$T/out")"
		lines=$(wc -l <"$T/err")
		[ "$lines" -eq 1 ] || {
			cat "$T/err" >&2
			fail "$what ($mode): $lines lines on stderr, expected one"
		}
		grep -qE "^pstorfs: .*($re)" "$T/err" ||
			fail "$what ($mode): '$(cat "$T/err")' does not match '$re'"
		[ "$(pstor_daemon_pids "$mnt")" = "$pids0" ] ||
			fail "$what ($mode): a pstorfs process is left"
		[ "$LIVE" = 1 ] || [ "$(mtime "$dev")" = "$t0" ] ||
			fail "$what ($mode): the device was written ($t0 -> $(mtime "$dev"))"
		printf '  %-28s %-7s exit %d: %s\n' "$what" "$mode" "$rc" "$(cat "$T/err")"
	done
	after=$(fingerprint "$dev")
	[ "$LIVE" = 1 ] || [ "$before" = "$after" ] ||
		fail "$what: the device changed ($before -> $after)"
}

# expect_mkfs_refused WHAT DEVICE REGEX: mkfs.pstorfs without --force refuses, changes nothing.
expect_mkfs_refused() {
	local what=$1 dev=$2 re=$3 rc=0 before
	before=$(fingerprint "$dev")
	"$MKFS" "$dev" >"$T/out" 2>"$T/err" || rc=$?
	[ "$rc" -ne 0 ] || fail "mkfs.pstorfs on $what succeeded without --force"
	if [ "$(wc -l <"$T/err")" -ne 1 ] || ! grep -qE "^mkfs.pstorfs: .*($re)" "$T/err"; then
		fail "mkfs.pstorfs on $what: '$(cat "$T/err")', expected one line matching '$re'"
	fi
	[ "$LIVE" = 1 ] || [ "$(fingerprint "$dev")" = "$before" ] ||
		fail "mkfs.pstorfs on $what changed it"
	printf '  mkfs.pstorfs %-15s exit %d: %s\n' "$what" "$rc" "$(cat "$T/err")"
}

# The images, each made once per case by the first case step that needs it.
ext4_img() {
	[ -e "$T/ext4.img" ] && return
	truncate -s 128M "$T/ext4.img"
	mkfs.ext4 -q -F "$T/ext4.img"
}
good_img() { # a fresh 128 MiB pstorfs namespace
	[ -e "$T/good.img" ] || pstor_mkfs "$T/good.img" 128M
}
cut_img() { # NAME SIZE: good.img cut short
	good_img
	[ -e "$T/$1.img" ] && return
	cp --sparse=always "$T/good.img" "$T/$1.img"
	truncate -s "$2" "$T/$1.img"
}
v2_img() {
	good_img
	[ -e "$T/v2.img" ] && return
	cp --sparse=always "$T/good.img" "$T/v2.img"
	"$SBTOOL" "$T/v2.img" set version 2
	"$SBTOOL" "$T/v2.img" | grep -q 'version 2 crc ok' || fail "pstor-sbtool did not set version 2"
}
damaged_img() { # both superblocks damaged
	good_img
	[ -e "$T/damaged.img" ] && return
	cp --sparse=always "$T/good.img" "$T/damaged.img"
	printf 'XXXX' | dd of="$T/damaged.img" bs=1 seek=40 conv=notrunc status=none
	printf 'XXXX' | dd of="$T/damaged.img" bs=1 seek=$((65536 + 40)) conv=notrunc status=none
}

case_not_pstorfs() {
	check "images that do not hold a pstorfs namespace"
	head -c $((256 << 20)) /dev/zero >"$T/zero.img" # written, not sparse
	expect_refused "256 MiB of zeros" "$T/zero.img" "not a pstorfs namespace"
	ext4_img
	expect_refused "an ext4 image" "$T/ext4.img" "not a pstorfs namespace"
	: >"$T/empty.img"
	expect_refused "an empty file" "$T/empty.img" "not a pstorfs namespace"
	expect_refused "a missing path" "$T/nosuch.img" "No such file or directory"
	mkdir "$T/dir"
	expect_refused "a directory" "$T/dir" "is a directory"
	expect_refused "/dev/null" /dev/null "not a block device or image file"
}

case_bad_mountpoint() {
	check "a mount point that is a file or missing"
	good_img
	echo file >"$T/file"
	expect_refused "mount point is a file" "$T/good.img" "mount point .*: not a directory" \
		"$T/file"
	expect_refused "mount point is missing" "$T/good.img" \
		"mount point .*: No such file or directory" "$T/nodir"
}

case_truncated() {
	check "a pstorfs image cut short: refused before anything writes"
	cut_img half 64M
	expect_refused "truncated to half" "$T/half.img" "truncated: 67108864 bytes.*needs 1342[0-9]{5}"
	cut_img 8k 8K # superblock A still there, B gone
	expect_refused "truncated to 8 KiB" "$T/8k.img" "truncated: 8192 bytes.*needs"
	cut_img 100k 100K # both superblocks, no metadata, no segments
	expect_refused "truncated to 100 KiB" "$T/100k.img" "truncated"
}

case_newer_format() {
	check "a newer format version or unknown incompatible features"
	v2_img
	expect_refused "format version 2" "$T/v2.img" "newer pstorfs"
	good_img
	cp --sparse=always "$T/good.img" "$T/incompat.img"
	"$SBTOOL" "$T/incompat.img" set incompat_features 0x80
	expect_refused "unknown incompat feature" "$T/incompat.img" "newer pstorfs"
}

case_damaged() {
	check "damaged superblocks or metadata"
	damaged_img
	expect_refused "both superblocks damaged" "$T/damaged.img" "damaged"
	# Sound superblocks, zeroed metadata region: found by pfs_open, after the fork when
	# daemonizing, so this one tests the child's report through the parent.
	good_img
	cp --sparse=always "$T/good.img" "$T/nometa.img"
	dd if=/dev/zero of="$T/nometa.img" bs=64K seek=2 count=16 conv=notrunc status=none
	expect_refused "metadata region zeroed" "$T/nometa.img" "cannot open the metadata"
}

case_mkfs_refuses() {
	check "mkfs.pstorfs refuses what holds data unless --force"
	ext4_img
	good_img
	cut_img half 64M
	v2_img
	damaged_img
	mkdir "$T/dir"
	expect_mkfs_refused "an ext4 image" "$T/ext4.img" "ext4"
	expect_mkfs_refused "a pstorfs image" "$T/good.img" "already holds a pstorfs"
	expect_mkfs_refused "a truncated one" "$T/half.img" "truncated pstorfs"
	expect_mkfs_refused "a newer one" "$T/v2.img" "newer pstorfs"
	expect_mkfs_refused "a damaged one" "$T/damaged.img" "damaged pstorfs"
	expect_mkfs_refused "a directory" "$T/dir" "is a directory"
	"$MKFS" --force "$T/ext4.img" >"$T/mkfs.log" 2>&1 ||
		fail "mkfs.pstorfs --force: $(cat "$T/mkfs.log")"
	pstor_mount "$T/ext4.img" "$T/m-ext4"
	pstor_umount "$T/m-ext4"
}

case_already_mounted() {
	check "a device already mounted: a second pstorfs fails, the first keeps working"
	good_img
	M1=$T/m1
	pstor_mount "$T/good.img" "$M1"
	truncate -s 64M "$M1/volumes/v"
	rand_file "$T/d1" $((4 << 20))
	put_at "$T/d1" "$M1/volumes/v" 0 conv=fsync
	ln -s "$T/good.img" "$T/link.img"
	LIVE=1
	expect_refused "mounted (same path)" "$T/good.img" "already mounted"
	expect_refused "mounted (via a symlink)" "$T/link.img" "already mounted"
	expect_refused "mounted (same mountpoint)" "$T/good.img" "already mounted" "$M1"
	is_mounted "$M1" || fail "the first mount is gone"
	rand_file "$T/d2" $((4 << 20))
	put_at "$T/d2" "$M1/volumes/v" $((8 << 20)) conv=fsync
	cmp <(get_at "$M1/volumes/v" 0 $((4 << 20))) "$T/d1" || fail "the first mount lost data"
	cmp <(get_at "$M1/volumes/v" $((8 << 20)) $((4 << 20))) "$T/d2" ||
		fail "the first mount reads back wrong data after the refused mounts"
	cat "$M1/.pstorage/status" >/dev/null
	expect_mkfs_refused "the mounted image" "$T/good.img" "in use"
	LIVE=0
	pstor_umount "$M1"
	pstor_mount "$T/good.img" "$M1"
	cmp <(get_at "$M1/volumes/v" $((8 << 20)) $((4 << 20))) "$T/d2" || fail "data lost after remount"
	pstor_umount "$M1"
}

run_cases
