#!/bin/bash
# The pstorfs .deb (packaging/CMakeLists.txt, CPack): built from this build tree into the test's
# temp dir, lintian finds no error and no warning that packaging/README.md does not list;
# installed with dpkg -i, the programs in /usr/sbin print this build's version, the installed
# mkfs formats an image that mounts through an /etc/fstab line (mount.fuse3) and through
# mount -t pstorfs (/sbin/mount.pstorfs) with the installed daemon, data written survives the
# remount and fsck; dpkg -r and --purge leave nothing behind that the package installed.
# One case per behaviour (lib.sh run_cases).
# The package is installed on this machine for the length of the install case only: the EXIT
# trap purges it whatever happens, and the case skips (77) rather than touch a pstorfs that is
# already installed (a package, or files from pstor-dev.sh install). /etc/fstab is never
# written: the case runs in a private mount namespace where a copy with the test's line is
# bind-mounted over it (and an empty tmpfs over /usr/local/sbin, so mount(8) finds only the
# package's programs).
if [ -z "${PSTOR_IT_IN_NS:-}" ]; then
	if ! unshare --mount --propagation private true 2>/dev/null; then
		echo "test_deb: SKIP: cannot make a private mount namespace (unshare -m)"
		exit 77
	fi
	PSTOR_IT_IN_NS=1 exec unshare --mount --propagation private bash "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"
need cpack dpkg dpkg-deb dpkg-query
CACHE=$PSTOR_BUILD_DIR/CMakeCache.txt
[ -f "$PSTOR_BUILD_DIR/CPackConfig.cmake" ] || skip "no CPackConfig.cmake in $PSTOR_BUILD_DIR"
if grep -qE '^PSTOR_(SANITIZE|SANITIZE_THREAD|COVERAGE|FUZZ):BOOL=ON' "$CACHE"; then
	skip "an instrumented build (sanitizers, coverage or fuzzing) is not what a package ships"
fi
[ -f "$PSTOR_BUILD_DIR/packaging/man/pstorfs.8.gz" ] ||
	skip "the build made no man pages (scdoc is not installed)"
VERSION=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$CACHE")
[ -n "$VERSION" ] || fail "no CMAKE_PROJECT_VERSION in $CACHE"

build_deb() { # sets DEB
	cpack --config "$PSTOR_BUILD_DIR/CPackConfig.cmake" -B "$T/pkg" >"$T/cpack.log" 2>&1 || {
		cat "$T/cpack.log" >&2
		fail "cpack failed"
	}
	DEB=$(ls "$T"/pkg/pstorfs_*.deb)
	[ "$(dpkg-deb -f "$DEB" Package)" = pstorfs ] || fail "$DEB is not the pstorfs package"
	[ "$(dpkg-deb -f "$DEB" Version)" = "$VERSION" ] ||
		fail "package version $(dpkg-deb -f "$DEB" Version), project version $VERSION"
	log "built $(basename "$DEB") ($(stat -c %s "$DEB") bytes)"
}

case_lintian() {
	need lintian
	build_deb
	check "lintian: no errors, and only the warnings packaging/README.md lists as kept"
	lintian --info "$DEB" >"$T/lintian" 2>&1 || true
	sed 's/^/  /' "$T/lintian"
	grep -q "^E: " "$T/lintian" && softfail "lintian reports errors"
	# README: a line per kept warning, "- `TAG` (W): why"
	# shellcheck disable=SC2016 # the backquotes are the README's
	sed -n 's/^- `\([a-z0-9-]*\)` (W).*/\1/p' "$PSTOR_SRC_DIR/packaging/README.md" >"$T/kept"
	local tag
	while read -r tag; do
		grep -qxF "$tag" "$T/kept" || softfail "lintian warning $tag is not listed in packaging/README.md"
	done < <(sed -n 's/^W: [^ ]*: \([a-z0-9-]*\).*/\1/p' "$T/lintian" | sort -u)
	check "the package holds the programs, the mount helper, docs and man pages"
	dpkg-deb -c "$DEB" | awk '{ print $6 }' | sed 's|^\./|/|; s|/$||' >"$T/contents"
	local p
	for p in /usr/sbin/pstorfs /usr/sbin/mkfs.pstorfs /usr/sbin/fsck.pstorfs /sbin/mount.pstorfs \
		/usr/share/doc/pstorfs/copyright /usr/share/doc/pstorfs/LICENSE \
		/usr/share/doc/pstorfs/changelog.gz /usr/share/man/man8/pstorfs.8.gz \
		/usr/share/man/man8/mkfs.pstorfs.8.gz /usr/share/man/man8/fsck.pstorfs.8.gz \
		/usr/share/man/man8/mount.pstorfs.8.gz /usr/share/man/man5/pstorfs-ctl.5.gz; do
		grep -qxF "$p" "$T/contents" || softfail "the package lacks $p"
	done
	grep -q '^fuse3\b\|, fuse3\b' <<<"$(dpkg-deb -f "$DEB" Depends)" ||
		softfail "Depends lacks fuse3: $(dpkg-deb -f "$DEB" Depends)"
	grep -q 'libfuse3' <<<"$(dpkg-deb -f "$DEB" Depends)" ||
		softfail "Depends lacks the libraries (shlibdeps): $(dpkg-deb -f "$DEB" Depends)"
}

# ---- install, use, remove ---------------------------------------------------------------------

# dpkg, waiting (up to 5 minutes) while another dpkg or apt holds its lock.
dpkg_wait() {
	local n=0 rc
	while :; do
		rc=0
		timeout 300 dpkg "$@" >"$T/dpkg.out" 2>&1 || rc=$?
		if [ $rc -ne 0 ] && grep -q 'lock' "$T/dpkg.out" && [ $n -lt 150 ]; then
			n=$((n + 1))
			sleep 2
			continue
		fi
		cat "$T/dpkg.out"
		return $rc
	done
}

pkg_status() { # the dpkg status of pstorfs, or "not-installed"
	dpkg-query -W -f '${db:Status-Status}' pstorfs 2>/dev/null || echo not-installed
}

INSTALLED=0
# Before lib.sh's teardown: unmount what the case mounted, then purge the package.
_deb_exit() {
	local rc=$? m
	trap - ERR
	set +e
	if [ $INSTALLED = 1 ]; then
		for m in "${M:-}" "${M2:-}"; do
			[ -n "$m" ] && is_mounted "$m" && { timeout 30 umount "$m" || umount -l "$m"; }
		done
		log "teardown: dpkg --purge pstorfs"
		dpkg_wait --purge pstorfs >/dev/null || log "teardown: dpkg --purge pstorfs failed"
	fi
	(exit $rc)
	_teardown
}

# every path (no trailing /) the .deb holds
deb_paths() {
	dpkg-deb -c "$DEB" | awk '{ print $6 }' | sed 's|^\./|/|; s|/$||' | grep -v '^\.\?$' || true
}

mount_ok() { # MNT WHAT: mounted as fuse.pstorfs of IMG by the installed daemon, adopted
	local m=$1 what=$2 p src
	is_mounted "$m" || fail "$what: $m is not mounted"
	pstor_adopt_mount "$m"
	src=$(awk -v m="$m" '$5 == m { for (i = 7; $i != "-"; i++); print $(i + 1), $(i + 2) }' \
		/proc/self/mountinfo)
	[ "$src" = "fuse.pstorfs $IMG" ] || fail "$what: mountinfo says '$src'"
	for p in $(pstor_daemon_pids "$m"); do
		[ "$(readlink -f "/proc/$p/exe")" = /usr/sbin/pstorfs ] ||
			fail "$what: the daemon is $(readlink -f "/proc/$p/exe"), not /usr/sbin/pstorfs"
	done
}

case_install_mount_remove() {
	local prog out p st
	[ "$(id -u)" = 0 ] || skip "dpkg -i needs root"
	need mount umount mount.fuse3 cmp
	st=$(pkg_status)
	[ "$st" = not-installed ] || skip "a pstorfs package is installed ($st): not replacing it"
	for p in /usr/sbin/pstorfs /usr/sbin/mkfs.pstorfs /usr/sbin/fsck.pstorfs /sbin/mount.pstorfs; do
		{ [ -e "$p" ] || [ -L "$p" ]; } && skip "$p exists (installed by hand?): not replacing it"
	done
	build_deb
	deb_paths >"$T/paths"
	: >"$T/preexisting"
	while read -r p; do
		{ [ -e "$p" ] || [ -L "$p" ]; } && echo "$p" >>"$T/preexisting"
	done <"$T/paths"
	cp /etc/fstab "$T/fstab.orig"

	check "dpkg -i $(basename "$DEB")"
	trap _deb_exit EXIT
	INSTALLED=1
	dpkg_wait -i "$DEB" | sed 's/^/  /'
	[ "$(pkg_status)" = installed ] || fail "pstorfs is not installed after dpkg -i: $(pkg_status)"
	dpkg -L pstorfs | grep -v '^/\.$' | sort >"$T/listed"
	sort "$T/paths" | cmp -s - "$T/listed" ||
		softfail "dpkg -L differs from the package contents: $(sort "$T/paths" | diff - "$T/listed")"

	check "the installed programs print 'NAME $VERSION' and have man pages"
	for prog in pstorfs mkfs.pstorfs fsck.pstorfs; do
		out=$("/usr/sbin/$prog" --version)
		[[ $out == "$prog $VERSION"* ]] || softfail "/usr/sbin/$prog --version: '$out'"
		[ "$(man -w "$prog")" = "/usr/share/man/man8/$prog.8.gz" ] ||
			softfail "man -w $prog: '$(man -w "$prog" 2>&1)'"
	done
	[ "$(/usr/sbin/pstorfs -V | cut -d' ' -f1-2)" = "pstorfs $VERSION" ] || softfail "pstorfs -V"
	MANWIDTH=80 man --warnings 5 pstorfs-ctl 2>&1 >/dev/null | grep . && softfail "man 5 pstorfs-ctl warns"
	man -w mount.pstorfs >/dev/null || softfail "no man page for mount.pstorfs"

	check "the installed mkfs.pstorfs formats an image"
	IMG=$T/img
	M=$T/m
	M2=$T/m2
	mkdir -p "$M" "$M2"
	/usr/sbin/mkfs.pstorfs --size 1G "$IMG" >"$T/mkfs.out" || fail "mkfs.pstorfs: $(cat "$T/mkfs.out")"

	# mount(8) in this namespace sees only the package's programs and the test's fstab
	mkdir -p /usr/local/sbin
	mount -t tmpfs -o mode=0755 pstor-it-empty /usr/local/sbin
	_CLEANUP+=("umount:/usr/local/sbin")
	cp "$T/fstab.orig" "$T/fstab"
	printf '%s %s fuse.pstorfs defaults,allow_other,_netdev 0 0\n' "$IMG" "$M" >>"$T/fstab"
	mount --bind "$T/fstab" /etc/fstab
	_CLEANUP+=("umount:/etc/fstab")

	check "mount MNT through an /etc/fstab line (fuse.pstorfs, defaults,allow_other,_netdev)"
	mount "$M"
	mount_ok "$M" "fstab"
	rand_file "$T/data" $((3 << 20))
	truncate -s 64M "$M/volumes/disk"
	put_at "$T/data" "$M/volumes/disk" $((5 << 20)) conv=notrunc,fsync
	get_at "$M/volumes/disk" $((5 << 20)) $((3 << 20)) | cmp -s - "$T/data" ||
		fail "fstab mount: read back differs"
	pstor_umount "$M" umount
	umount /etc/fstab
	_remove_cleanup "umount:/etc/fstab"
	cmp -s /etc/fstab "$T/fstab.orig" || fail "/etc/fstab changed"

	check "the installed fsck.pstorfs finds the image clean"
	/usr/sbin/fsck.pstorfs "$IMG" >"$T/fsck.out" 2>&1 || fail "fsck.pstorfs: $(cat "$T/fsck.out")"

	check "mount -t pstorfs (/sbin/mount.pstorfs): the data is there, new data round-trips"
	mount -t pstorfs "$IMG" "$M2" -o compression=zstd:3
	mount_ok "$M2" "mount -t pstorfs"
	get_at "$M2/volumes/disk" $((5 << 20)) $((3 << 20)) | cmp -s - "$T/data" ||
		fail "mount -t pstorfs: the data written through the fstab mount differs"
	[ "$(cat "$M2/.pstorage/config/compression")" = zstd:3 ] || fail "-o compression=zstd:3 not applied"
	text_file "$T/text" $((2 << 20))
	put_at "$T/text" "$M2/volumes/disk" $((20 << 20)) conv=notrunc,fsync
	get_at "$M2/volumes/disk" $((20 << 20)) $((2 << 20)) | cmp -s - "$T/text" ||
		fail "mount -t pstorfs: read back differs"
	pstor_umount "$M2" umount

	check "dpkg -r pstorfs leaves nothing it installed; --purge forgets it"
	dpkg_wait -r pstorfs | sed 's/^/  /'
	[ "$(pkg_status)" = not-installed ] || [ "$(pkg_status)" = config-files ] ||
		fail "status after dpkg -r: $(pkg_status)"
	left_behind
	dpkg_wait --purge pstorfs | sed 's/^/  /'
	INSTALLED=0
	[ "$(pkg_status)" = not-installed ] || fail "status after dpkg --purge: $(pkg_status)"
	left_behind
	[ ! -e /usr/share/doc/pstorfs ] || fail "/usr/share/doc/pstorfs is left"
}

left_behind() { # every path of the package that did not exist before dpkg -i is gone
	local p n=0
	while read -r p; do
		grep -qxF "$p" "$T/preexisting" && continue
		if [ -e "$p" ] || [ -L "$p" ]; then
			softfail "left behind: $p"
			n=$((n + 1))
		fi
	done <"$T/paths"
	log "$(wc -l <"$T/paths") paths of the package checked, $n left"
}

run_cases
