#!/bin/bash
# Everything survives a clean unmount and remount: volumes (random, compressible, duplicate,
# sparse data), a snapshot, a rename, a delete, resized sizes, and the compression setting.
# Two cases (lib.sh run_cases): remounted by a foreground daemon, and by a daemonized one that
# umount(8) unmounts.
. "$(dirname "$0")/lib.sh"
need_binaries
need sha256sum

IMG=$T/img
M=$T/m
VD=$M/volumes

state() { # MNT: everything a user can see that must persist
	(
		cd "$1"
		find volumes snapshots -printf '%p %y %s %m\n' | sort
		find volumes snapshots -type f | sort | xargs -r sha256sum
		for k in .pstorage/config/*; do echo "$k=$(cat "$k")"; done
	)
}

# The state to keep, mounted by a foreground daemon; its view in $before.
setup() {
	pstor_mkfs "$IMG" 2G
	pstor_mount "$IMG" "$M"
	check "volumes with random, compressible, duplicate and sparse data"
	truncate -s 32M "$VD/rnd"
	rand_file "$T/r" $((6 << 20))
	put_at "$T/r" "$VD/rnd" 0
	put_at "$T/r" "$VD/rnd" $(((20 << 20) + 777))
	truncate -s 24M "$VD/text"
	text_file "$T/text" $((8 << 20))
	put_at "$T/text" "$VD/text" 4096
	truncate -s 16M "$VD/dup"
	put_at "$T/r" "$VD/dup" 0
	ctl "$M" "volume create tiny 1M"
	ctl "$M" "volume create gone 4M"
	put_at "$T/r" "$VD/gone" 0 count=$((4 << 20)) iflag=count_bytes

	check "a snapshot, then more writes; a rename, a delete, a resize"
	ctl "$M" "snapshot create rnd before"
	rand_file "$T/r2" $((3 << 20))
	put_at "$T/r2" "$VD/rnd" $((1 << 20))
	ctl "$M" "volume rename dup dup2"
	ctl "$M" "volume delete gone"
	truncate -s 40M "$VD/text"
	ctl "$M" "volume resize tiny 2M"
	check "mv renames a volume, rm deletes one, truncate -s resizes one"
	truncate -s 4M "$VD/gone2"
	put_at "$T/r" "$VD/gone2" 0 count=$((1 << 20)) iflag=count_bytes
	rm "$VD/gone2"
	[ ! -e "$VD/gone2" ] || fail "rm did not delete volumes/gone2"
	mv "$VD/tiny" "$VD/tiny2"
	if [ ! -f "$VD/tiny2" ] || [ -e "$VD/tiny" ]; then fail "mv did not rename volumes/tiny"; fi
	[ "$(stat -c %s "$VD/tiny2")" = $((2 << 20)) ] || fail "tiny2 has size $(stat -c %s "$VD/tiny2")"

	check "echo zstd:5 > .pstorage/config/compression, then writes compressed with it"
	echo zstd:5 >"$M/.pstorage/config/compression"
	[ "$(cat "$M/.pstorage/config/compression")" = zstd:5 ] ||
		fail "config/compression reads '$(cat "$M/.pstorage/config/compression")'"
	put_at "$T/text" "$VD/text" $((30 << 20))
	echo off >"$M/.pstorage/config/dedupe"
	before=$(state "$M")
	printf '%s\n' "$before" | sed 's/^/  /'
}

case_remount() {
	setup
	check "unmount, remount: byte-identical, settings kept"
	pstor_umount "$M"
	pstor_mount "$IMG" "$M"
	after=$(state "$M")
	if [ "$before" != "$after" ]; then
		diff <(printf '%s\n' "$before") <(printf '%s\n' "$after") >&2 || true
		fail "state changed across a remount"
	fi
	for v in gone gone2 dup tiny; do
		[ ! -e "$VD/$v" ] || fail "deleted or renamed volume $v is back"
	done
	pstor_umount "$M"
}

case_daemonized() {
	setup
	pstor_umount "$M"
	check "unmount, remount with a daemonized pstorfs (no -f): the same; umount(8) unmounts it"
	"$PSTORFS" "$IMG" "$M" 2>"$T/daemon.err" || fail "pstorfs $IMG $M: $(cat "$T/daemon.err")"
	is_mounted "$M" || fail "pstorfs returned 0 but $M is not mounted"
	pstor_adopt_mount "$M"
	after=$(state "$M")
	[ "$before" = "$after" ] || fail "state changed across a remount by a daemonized pstorfs"
	for v in gone gone2 dup tiny; do
		[ ! -e "$VD/$v" ] || fail "deleted or renamed volume $v is back"
	done
	pstor_umount "$M" umount
}

run_cases
