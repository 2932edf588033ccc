#!/bin/bash
# A volume as a block device: losetup, mkfs.ext4, copy a real tree in, compare, e2fsck clean
# (after a remount of pstorfs, so the data comes from the device), then delete the files,
# fstrim, and check that pstorfs released the space.
. "$(dirname "$0")/lib.sh"
need_binaries
need losetup mkfs.ext4 e2fsck fstrim diff

IMG=$T/img
M=$T/m
E=$T/ext4
pstor_mkfs "$IMG" 4G
pstor_mount "$IMG" "$M"
V=$M/volumes/ext

# A real tree of tens of MiB: many small files and a few big ones.
SRC=()
for d in /usr/share/perl /usr/share/i18n /usr/include/linux; do
	[ -d "$d" ] && SRC+=("$d")
done
[ ${#SRC[@]} -gt 0 ] || skip "no source tree to copy"
srcmb=$(du -smc "${SRC[@]}" | tail -n 1 | cut -f1)
[ "$srcmb" -ge 10 ] || skip "source trees are only $srcmb MiB"

check "a 1 GiB volume as a loop device, mkfs.ext4"
truncate -s 1G "$V"
pstor_losetup "$V" LOOP --direct-io=off
mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$LOOP"
mount_dev "$LOOP" "$E"

check "copy $srcmb MiB (${SRC[*]}) into ext4, sync, diff -r"
mkdir "$E/tree"
cp -a "${SRC[@]}" "$E/tree/"
sync -f "$E"
for d in "${SRC[@]}"; do
	diff -r "$d" "$E/tree/$(basename "$d")" >/dev/null || fail "diff -r $d differs"
done
umount_dev "$E"
pstor_lodetach "$LOOP"

check "remount pstorfs; e2fsck -fn of the volume is clean"
pstor_umount "$M"
pstor_mount "$IMG" "$M"
e2fsck -fn "$V" >"$T/fsck.out" 2>&1 || {
	cat "$T/fsck.out" >&2
	fail "e2fsck -fn found errors"
}

check "mount again (from the device): diff -r"
pstor_losetup "$V" LOOP --direct-io=off
mount_dev "$LOOP" "$E"
for d in "${SRC[@]}"; do
	diff -r "$d" "$E/tree/$(basename "$d")" >/dev/null || fail "diff -r $d differs after remount"
done

check "delete the files, fstrim, pstorfs releases the space"
ctl "$M" sync
w0=$(vol_attr "$M" ext written)
u0=$(vol_attr "$M" ext unique)
d0=$(df_used "$M")
rm -rf "$E/tree"
sync -f "$E"
fstrim -v "$E" | sed 's/^/  /'
umount_dev "$E"
pstor_lodetach "$LOOP"
ctl "$M" sync
w1=$(vol_attr "$M" ext written)
u1=$(vol_attr "$M" ext unique)
d1=$(df_used "$M")
log "written $w0 -> $w1, unique $u0 -> $u1, df used $d0 -> $d1"
freed=$(((srcmb << 20) / 2))
[ $((w0 - w1)) -ge $freed ] || fail "written went down by $((w0 - w1)) only (from $w0 to $w1)"
[ $((u0 - u1)) -ge $((freed / 4)) ] || fail "unique went down by $((u0 - u1)) only (from $u0 to $u1)"
if [ "$d1" -ge "$d0" ]; then
	# Dead chunks may count as used until GC reclaims their segments.
	ctl "$M" "gc start"
	for _ in $(seq 60); do
		ctl "$M" sync
		d1=$(df_used "$M")
		[ "$d1" -lt "$d0" ] && break
		sleep 0.5
	done
	log "df used after gc start: $d1"
fi
[ "$d1" -lt "$d0" ] || fail "df used did not go down after trim and gc: $d0 -> $d1"

check "ext4 still clean after the trim"
e2fsck -fn "$V" >"$T/fsck.out" 2>&1 || {
	cat "$T/fsck.out" >&2
	fail "e2fsck -fn found errors after fstrim"
}
pstor_umount "$M"
pass
