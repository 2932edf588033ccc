#!/bin/bash
# Mounting the way users do: mount.fuse3, mount -t fuse.pstorfs, an fstab line (mount -T, and
# mount -a twice mounts once), mount -t pstorfs through packaging/mount.pstorfs; fstab-only
# options are accepted. Refusals: a bad option, the same image twice, an unformatted image each
# exit non-zero with one error line and mount nothing.
# One case per way of mounting and per kind of refusal (lib.sh run_cases).
# mount(8) resets PATH and finds helpers only in /sbin: so that it runs THIS build's pstorfs and
# packaging/mount.pstorfs (not an installed copy), the script runs in a private mount namespace
# where a tmpfs over /usr/local/sbin holds links to them. Nothing outside the namespace changes
# (except /sbin/mount.pstorfs, created for the test only when it is absent).
if [ -z "${PSTOR_IT_IN_NS:-}" ]; then
	if ! unshare --mount --propagation private true 2>/dev/null; then
		echo "test_fstab_mount: SKIP: cannot make a private mount namespace (unshare -m)"
		exit 77
	fi
	PSTOR_IT_IN_NS=1 exec unshare --mount --propagation private bash "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"
need_binaries
need mount umount mount.fuse3
[ -x "$PSTOR_SRC_DIR/packaging/mount.pstorfs" ] || fail "packaging/mount.pstorfs is missing"

IMG=$T/img
M=$T/m
M2=$T/m2
mkdir -p "$M" "$M2"
pstor_mkfs "$IMG" 2G
export PATH=$PSTOR_BUILD_DIR/fs:$PATH

fstype_of() { # MNT: "fstype source" from mountinfo
	awk -v m="$1" '$5 == m { for (i = 7; $i != "-"; i++); print $(i + 1), $(i + 2) }' \
		/proc/self/mountinfo
}

mounted_ok() { # MNT WHAT [COMPRESSION]: mounted once, as fuse.pstorfs of IMG, and usable
	local m=$1 what=$2 c=${3:-} n
	is_mounted "$m" || fail "$what: $m is not mounted"
	pstor_adopt_mount "$m"
	n=$(awk -v m="$m" '$5 == m' /proc/self/mountinfo | wc -l)
	[ "$n" = 1 ] || fail "$what: $m is mounted $n times"
	for p in $(pstor_daemon_pids "$m"); do
		[ "$(readlink -f "/proc/$p/exe")" = "$(readlink -f "$PSTORFS")" ] ||
			fail "$what: the daemon is $(readlink -f "/proc/$p/exe"), not $PSTORFS"
	done
	[ "$(fstype_of "$m")" = "fuse.pstorfs $IMG" ] ||
		fail "$what: mountinfo says '$(fstype_of "$m")', expected 'fuse.pstorfs $IMG'"
	if [ -n "$c" ]; then
		[ "$(cat "$m/.pstorage/config/compression")" = "$c" ] ||
			fail "$what: compression is '$(cat "$m/.pstorage/config/compression")', expected $c"
	fi
	truncate -s 1M "$m/volumes/probe"
	echo "$what" | dd of="$m/volumes/probe" conv=notrunc,fsync status=none
	[ "$(head -c ${#what} "$m/volumes/probe")" = "$what" ] || fail "$what: volume I/O"
	rm "$m/volumes/probe"
}

refused() { # WHAT MNT CMD...: exits non-zero, one error line on stderr, MNT not mounted
	local what=$1 m=$2 rc=0 lines
	shift 2
	timeout 60 "$@" >"$T/refused.out" 2>"$T/refused.err" || rc=$?
	if [ -n "$m" ] && is_mounted "$m"; then
		pstor_adopt_mount "$m"
		fail "$what: '$*' mounted $m (exit status $rc)"
	fi
	[ $rc -ne 0 ] || fail "$what: '$*' exited 0"
	lines=$(cat "$T/refused.out" "$T/refused.err" | grep -c . || true)
	printf '  %s: status %d: %s\n' "$what" $rc "$(cat "$T/refused.err" "$T/refused.out")"
	if [ "$lines" != 1 ]; then
		softfail "$what: '$*' printed $lines lines, expected one error line"
	elif [ "$1" = "$PSTORFS" ] && ! grep -q '^pstorfs: ' "$T/refused.err"; then
		softfail "$what: the error line does not start with 'pstorfs: '"
	fi
}

# mount(8) finds this build's pstorfs and packaging/mount.pstorfs (see the top)
sbin() {
	SBIN=/usr/local/sbin # first in the PATH mount(8) gives its helpers
	mkdir -p "$SBIN"
	mount -t tmpfs -o mode=0755 pstor-it-sbin "$SBIN"
	_CLEANUP+=("umount:$SBIN")
	ln -s "$PSTORFS" "$SBIN/pstorfs"
	cp "$PSTOR_SRC_DIR/packaging/mount.pstorfs" "$SBIN/mount.pstorfs"
	if [ ! -e /sbin/mount.pstorfs ] && [ ! -L /sbin/mount.pstorfs ]; then
		ln -s "$SBIN/mount.pstorfs" /sbin/mount.pstorfs
		cleanup_file /sbin/mount.pstorfs
	elif [ "$(readlink -f /sbin/mount.pstorfs)" != "$SBIN/mount.pstorfs" ]; then
		mount --bind "$SBIN/mount.pstorfs" "$(readlink -f /sbin/mount.pstorfs)"
	fi
	[ "$(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin command -v pstorfs)" = \
		"$SBIN/pstorfs" ] || fail "cannot put this build's pstorfs first on mount(8)'s PATH"
}

case_mount_fuse3() {
	check "mount.fuse3 IMG MNT -t pstorfs -o defaults,_netdev,compression=lz4"
	mount.fuse3 "$IMG" "$M" -t pstorfs -o defaults,_netdev,compression=lz4
	mounted_ok "$M" mount.fuse3 lz4
	pstor_umount "$M" umount
}

case_mount_t_fuse_pstorfs() {
	sbin
	check "mount -t fuse.pstorfs IMG MNT -o defaults,_netdev,compression=zstd:2"
	mount -t fuse.pstorfs "$IMG" "$M" -o defaults,_netdev,compression=zstd:2
	mounted_ok "$M" "mount -t fuse.pstorfs" zstd:2
	pstor_umount "$M" umount
}

case_fstab() {
	sbin
	check "an fstab line: mount -T FSTAB MNT, and mount -a twice mounts once"
	printf '%s %s fuse.pstorfs defaults,allow_other,_netdev,nofail,noatime 0 0\n' "$IMG" "$M" \
		>"$T/fstab"
	mount -T "$T/fstab" "$M"
	mounted_ok "$M" "fstab mount"
	mount -a -T "$T/fstab"
	mounted_ok "$M" "mount -a on a mounted fstab line"
	pstor_umount "$M" umount
	mount -a -T "$T/fstab"
	mount -a -T "$T/fstab"
	mounted_ok "$M" "mount -a twice"
	pstor_umount "$M" umount
}

case_mount_t_pstorfs() {
	sbin
	check "mount -t pstorfs through packaging/mount.pstorfs"
	mount -t pstorfs "$IMG" "$M" -o _netdev,compression=none
	mounted_ok "$M" "mount -t pstorfs" none
	pstor_umount "$M" umount
}

case_bad_options() {
	sbin
	check "bad options: non-zero exit, one error line, nothing mounted"
	refused "compression=bogus" "$M" "$PSTORFS" "$IMG" "$M" -o compression=bogus
	refused "compression=zstd:99" "$M" "$PSTORFS" "$IMG" "$M" -o compression=zstd:99
	refused "dedupe=maybe" "$M" "$PSTORFS" "$IMG" "$M" -o dedupe=maybe
	refused "commit_interval_ms=abc" "$M" "$PSTORFS" "$IMG" "$M" -o commit_interval_ms=abc
	refused "unknown option" "$M" "$PSTORFS" "$IMG" "$M" -o nosuchoption=1
	if timeout 60 "$PSTORFS" "$IMG" >/dev/null 2>&1; then fail "pstorfs without a mountpoint exited 0"; fi
	refused "missing mountpoint dir" "" "$PSTORFS" "$IMG" "$T/nonexistent"
	rc=0
	mount -t fuse.pstorfs "$IMG" "$M" -o compression=bogus 2>/dev/null || rc=$?
	is_mounted "$M" && { pstor_adopt_mount "$M"; fail "mount -o compression=bogus mounted"; }
	[ $rc -ne 0 ] || fail "mount -t fuse.pstorfs -o compression=bogus exited 0"
}

case_unformatted() {
	check "an unformatted image and a missing image are refused"
	truncate -s 1G "$T/raw"
	refused "unformatted image" "$M2" "$PSTORFS" "$T/raw" "$M2"
	head -c 1M /dev/urandom >"$T/junk"
	truncate -s 1G "$T/junk"
	refused "random bytes image" "$M2" "$PSTORFS" "$T/junk" "$M2"
	refused "missing image" "$M2" "$PSTORFS" "$T/nosuch.img" "$M2"
}

# The lock: refused while a mount holds it, released at once by the unmount.
case_same_image_twice() {
	sbin
	check "the same image twice: the second mount is refused, the first keeps working"
	pstor_mount "$IMG" "$M"
	refused "second mount of the image" "$M2" "$PSTORFS" "$IMG" "$M2"
	refused "second mount, foreground" "$M2" "$PSTORFS" "$IMG" "$M2" -f
	rc=0
	mount -t fuse.pstorfs "$IMG" "$M2" 2>/dev/null || rc=$?
	is_mounted "$M2" && { pstor_adopt_mount "$M2"; fail "mount(8) mounted the image twice"; }
	[ $rc -ne 0 ] || fail "second mount(8) of the image exited 0"
	truncate -s 1M "$M/volumes/still"
	[ "$(stat -c %s "$M/volumes/still")" = 1048576 ] || fail "first mount broken by the refused one"
	pstor_umount "$M"

	check "after the unmount, the image mounts again at once (the lock is released)"
	pstor_mount "$IMG" "$M2"
	[ -e "$M2/volumes/still" ] || fail "volume created before the remount is missing"
	pstor_umount "$M2"
}

run_cases
