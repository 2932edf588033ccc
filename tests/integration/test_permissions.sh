#!/bin/bash
# Volumes are private by default on an allow_other mount (the fstab line the README gives):
# volumes and snapshots start 0600 root:root, an unprivileged user cannot read them, and chmod,
# chown and the times work, are enforced by the kernel (default_permissions) and survive a
# remount. Snapshots keep their volume's owner and mode and refuse to change them. One case per
# behaviour (lib.sh run_cases), each on its own 1 GiB (sparse) image.
. "$(dirname "$0")/lib.sh"
need_binaries
need runuser stat sha256sum
id nobody >/dev/null 2>&1 || skip "no user nobody"
NOGROUP=$(id -gn nobody)

IMG=$T/img
M=$T/m
V=$M/volumes/vol
S=$M/snapshots/vol/s1
as_nobody() { runuser -u nobody -- "$@"; }

# Mounted allow_other; volume vol (by ctl, 1 MiB of data at 0) and volume bycreat (by truncate).
setup() {
	chmod 755 "$T" # nobody must reach the mountpoint to be told no by the volume itself
	pstor_mkfs "$IMG" 1G
	pstor_mount "$IMG" "$M" allow_other
	ctl "$M" "volume create vol 16M"
	truncate -s 8M "$M/volumes/bycreat"
	rand_file "$T/data" $((1 << 20))
	put_at "$T/data" "$V" 0
}

chmod644() {
	chmod 644 "$V"
	[ "$(stat -c %a "$V")" = 644 ] || fail "chmod 644 left mode $(stat -c %a "$V")"
}

chown_nobody() {
	chown "nobody:$NOGROUP" "$V"
	[ "$(stat -c %U "$V")" = nobody ] || fail "chown left owner $(stat -c %U "$V")"
}

touch_times() {
	touch -m -d '2001-02-03 04:05:06 UTC' "$V"
	touch -a -d '2002-03-04 05:06:07 UTC' "$V"
}

snapshot644() { # vol 0644 nobody, then snapshot s1 of it
	chmod644
	chown_nobody
	ctl "$M" "snapshot create vol s1"
}

case_new_private() {
	setup
	check "a new volume is 0600 root:root, whether made by ctl or by truncate"
	for f in "$V" "$M/volumes/bycreat"; do
		[ "$(stat -c %a:%u:%g "$f")" = 600:0:0 ] ||
			fail "$f is $(stat -c %a:%u:%g "$f"), expected 600:0:0"
	done
	check "nobody cannot read or write it"
	if as_nobody cat "$V" >/dev/null 2>&1; then fail "nobody read a 0600 root volume"; fi
	if as_nobody dd if=/dev/zero of="$V" bs=4k count=1 conv=notrunc status=none 2>/dev/null; then
		fail "nobody wrote a 0600 root volume"
	fi
	pstor_umount "$M"
}

case_chmod() {
	setup
	check "chmod 644 lets nobody read, not write"
	chmod644
	cmp <(as_nobody head -c $((1 << 20)) "$V") "$T/data" || fail "nobody cannot read after chmod 644"
	if as_nobody dd if=/dev/zero of="$V" bs=4k count=1 conv=notrunc status=none 2>/dev/null; then
		fail "nobody wrote a 0644 root volume"
	fi
	pstor_umount "$M"
}

case_chown() {
	setup
	check "chown nobody lets nobody write"
	chown_nobody
	as_nobody dd if="$T/data" of="$V" bs=64k seek=16 count=1 conv=notrunc status=none ||
		fail "the owner cannot write"
	pstor_umount "$M"
}

case_times() {
	setup
	check "times: touch -d sets mtime and atime"
	touch_times
	[ "$(stat -c %Y "$V")" = 981173106 ] || fail "mtime $(stat -c %Y "$V"), expected 981173106"
	[ "$(stat -c %X "$V")" = 1015218367 ] || fail "atime $(stat -c %X "$V"), expected 1015218367"
	pstor_umount "$M"
}

case_snapshot_keeps_owner() {
	setup
	check "a snapshot keeps the volume's owner and mode and refuses chmod and chown"
	snapshot644
	[ "$(stat -c %a:%U "$S")" = 644:nobody ] || fail "snapshot is $(stat -c %a:%U "$S")"
	if chmod 600 "$S" 2>/dev/null; then fail "chmod of a snapshot succeeded"; fi
	if chown root "$S" 2>/dev/null; then fail "chown of a snapshot succeeded"; fi
	[ "$(stat -c %a:%U "$S")" = 644:nobody ] || fail "snapshot changed to $(stat -c %a:%U "$S")"
	chmod 600 "$V"
	[ "$(stat -c %a:%U "$S")" = 644:nobody ] ||
		fail "chmod 600 of the volume changed its snapshot to $(stat -c %a:%U "$S")"
	cmp <(head -c $((1 << 20)) "$S") "$T/data" || fail "snapshot data changed"
	pstor_umount "$M"
}

case_remount() {
	setup
	snapshot644
	touch_times
	chmod 600 "$V"
	check "modes, owners and times survive unmount and mount"
	pstor_umount "$M"
	pstor_mount "$IMG" "$M" allow_other
	[ "$(stat -c %a:%U:%G "$V")" = "600:nobody:$NOGROUP" ] ||
		fail "after remount the volume is $(stat -c %a:%U:%G "$V"), expected 600:nobody:$NOGROUP"
	[ "$(stat -c %Y "$V")" = 981173106 ] || fail "mtime after remount $(stat -c %Y "$V")"
	[ "$(stat -c %X "$V")" = 1015218367 ] || fail "atime after remount $(stat -c %X "$V")"
	[ "$(stat -c %a "$M/volumes/bycreat")" = 600 ] || fail "bycreat changed"
	[ "$(stat -c %a:%U "$S")" = 644:nobody ] || fail "snapshot after remount $(stat -c %a:%U "$S")"
	if as_nobody cat "$M/volumes/bycreat" >/dev/null 2>&1; then fail "nobody read bycreat"; fi
	pstor_umount "$M"
}

case_clone() {
	setup
	snapshot644
	chmod 600 "$V"
	check "a clone of the snapshot starts with the snapshot's owner and mode"
	ctl "$M" "snapshot clone vol s1 cl"
	[ "$(stat -c %a:%U "$M/volumes/cl")" = 644:nobody ] || fail "clone is $(stat -c %a:%U "$M/volumes/cl")"
	pstor_umount "$M"
}

run_cases
