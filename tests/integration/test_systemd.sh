#!/bin/bash
# systemd integration without systemd as PID 1: every unit of packaging/systemd passes
# `systemd-analyze verify`; the daemon's Type=notify protocol, driven by a listener on a
# NOTIFY_SOCKET of our own (READY=1 only once the mount is live, STOPPING=1 at unmount, and a
# SIGTERM stop that unmounts and keeps what was written); fstab's x-systemd.* options are
# accepted; the scrub timer's script starts a scrub on every mounted pstorfs; the hardening of
# pstorfs@.service, reproduced with setpriv; and, only where systemd is PID 1, an fstab line
# with x-systemd.requires= becoming a mount unit.
. "$(dirname "$0")/lib.sh"

UNITS=$PSTOR_SRC_DIR/packaging/systemd

# The units with their @...@ paths pointing at this build and source tree (as CMake's
# configure_file does with the install paths), in DIR.
units_for_tree() { # DIR
	local d=$1 f
	mkdir -p "$d"
	for f in "$UNITS"/*.service.in "$UNITS"/*.timer; do
		sed -e "s|@PSTOR_SBINDIR@|$PSTOR_BUILD_DIR/fs|g" -e "s|@PSTOR_LIBEXECDIR@|$UNITS|g" \
			"$f" >"$d/$(basename "${f%.in}")"
	done
}

case_verify_units() {
	need systemd-analyze
	local d=$T/units f out n=0
	units_for_tree "$d"
	# A template is verified as an instance; --man=no: the man pages are the package's.
	cp "$d/pstorfs@.service" "$d/pstorfs@pool.service"
	for f in "$d/pstorfs@.service" "$d/pstorfs@pool.service" "$d/pstorfs-scrub.service" \
		"$d/pstorfs-scrub.timer"; do
		out=$(cd "$d" && systemd-analyze verify --man=no "$f" 2>&1) ||
			fail "systemd-analyze verify $(basename "$f"): $out"
		# Unknown keys and bad values are only warnings: none may be printed.
		[ -z "$out" ] || fail "systemd-analyze verify $(basename "$f") warns: $out"
		check "systemd-analyze verify $(basename "$f"): clean"
		n=$((n + 1))
	done
	[ $n = 4 ] || fail "verified $n units"
	# A service that mounts for the host must not get a mount namespace of its own.
	for f in ProtectSystem ProtectHome PrivateTmp PrivateDevices PrivateMounts \
		ProtectKernelTunables ProtectKernelModules ProtectKernelLogs ProtectControlGroups \
		ProtectClock ReadOnlyPaths InaccessiblePaths ReadWritePaths TemporaryFileSystem \
		MountFlags DevicePolicy DeviceAllow; do
		! grep -q "^$f=" "$d/pstorfs@.service" ||
			fail "pstorfs@.service sets $f=, which hides the FUSE mount from the host"
	done
	grep -q '^Type=notify$' "$d/pstorfs@.service" || fail "pstorfs@.service is not Type=notify"
	grep -q '^OnCalendar=monthly$' "$d/pstorfs-scrub.timer" || fail "the scrub timer is not monthly"
	sh -n "$UNITS/pstorfs-scrub-all" || fail "pstorfs-scrub-all: syntax"
}

# A NOTIFY_SOCKET listener: logs each datagram as one line to LOG, with " mounted=0|1" after
# READY=1 (MNT in /proc/self/mountinfo at that moment); exits after STOPPING=1 or 120 s.
notify_listener() { # SOCKET MNT LOG
	"$PY" - "$@" <<'EOF' &
import os, socket, sys, time
path, mnt, logf = sys.argv[1:4]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.settimeout(1)
open(logf + '.up', 'w').close()
end = time.time() + 120
with open(logf, 'a', buffering=1) as out:
    while time.time() < end:
        try:
            msg = s.recv(4096).decode(errors='replace')
        except socket.timeout:
            continue
        for line in msg.split('\n'):
            extra = ''
            if line == 'READY=1':
                with open('/proc/self/mountinfo') as f:
                    extra = ' mounted=%d' % any(l.split()[4] == mnt for l in f)
            out.write(line + extra + '\n')
        if 'STOPPING=1' in msg.split('\n'):
            break
EOF
	LISTENER=$!
	local n=50
	until [ -e "$3.up" ]; do
		n=$((n - 1))
		[ $n -gt 0 ] || fail "the notify listener did not start"
		sleep 0.1
	done
}

# Starts the daemon with -f under NOTIFY_SOCKET; waits for READY=1 (60 s).
notify_mount() { # IMG MNT
	local img=$1 mnt=$2 n=600
	mkdir -p "$mnt"
	notify_listener "$T/notify.sock" "$mnt" "$T/notify.log"
	NOTIFY_SOCKET=$T/notify.sock "$PSTORFS" "$img" "$mnt" -f >"$T/daemon.log" 2>&1 &
	DAEMON=$!
	_DPID[$mnt]=$DAEMON
	_DLOG[$mnt]=$T/daemon.log
	_CLEANUP+=("fuse:$mnt")
	until grep -q '^READY=1' "$T/notify.log" 2>/dev/null; do
		_wait_gone "$DAEMON" 0 && { cat "$T/daemon.log" >&2; fail "the daemon exited before READY=1"; }
		n=$((n - 1))
		[ $n -gt 0 ] || fail "no READY=1 within 60 s"
		sleep 0.1
	done
}

case_notify_ready_and_stopping() {
	need_binaries
	pstor_mkfs "$T/img" 1G
	notify_mount "$T/img" "$T/m"
	grep -q '^READY=1 mounted=1$' "$T/notify.log" ||
		fail "READY=1 came before the mount was live: $(cat "$T/notify.log")"
	check "READY=1 once $T/m is mounted"
	grep -q "^STATUS=serving $T/img on $T/m" "$T/notify.log" || fail "no serving STATUS="
	grep -q "^MAINPID=$DAEMON$" "$T/notify.log" || fail "MAINPID is not the daemon's pid"
	grep -q '^STATUS=opening' "$T/notify.log" || fail "no STATUS= while opening"
	! grep -q '^STOPPING=1' "$T/notify.log" || fail "STOPPING=1 before the unmount"
	[ "$(grep -c '^READY=1' "$T/notify.log")" = 1 ] || fail "READY=1 sent more than once"
	stat "$T/m/.pstorage/ctl" >/dev/null
	pstor_umount "$T/m"
	wait "$LISTENER" || fail "the notify listener failed"
	grep -q '^STOPPING=1$' "$T/notify.log" || fail "no STOPPING=1 at unmount: $(cat "$T/notify.log")"
	check "STOPPING=1 at unmount; the daemon exited 0"
	log "notify messages: $(tr '\n' '|' <"$T/notify.log")"
}

# systemctl stop: SIGTERM to the main process. It must unmount, commit and exit 0, and what
# was written must be there at the next mount.
case_sigterm_stops_cleanly() {
	need_binaries
	pstor_mkfs "$T/img" 1G
	notify_mount "$T/img" "$T/m"
	truncate -s 8M "$T/m/volumes/v"
	rand_file "$T/data" 1048576
	dd if="$T/data" of="$T/m/volumes/v" bs=1M conv=notrunc status=none
	# A file and a directory still open at the signal (their RELEASE never comes): the daemon
	# frees their handles itself (the sanitizer pass fails the exit status on a leak).
	exec 3<"$T/m/volumes/v" 4<"$T/m/volumes"
	kill -TERM "$DAEMON"
	_wait_gone "$DAEMON" 60 || fail "the daemon did not exit within 60 s of SIGTERM"
	exec 3<&- 4<&-
	local rc=0
	wait "$DAEMON" || rc=$?
	unset "_DPID[$T/m]"
	_remove_cleanup "fuse:$T/m"
	[ $rc = 0 ] || { cat "$T/daemon.log" >&2; fail "the daemon exited with $rc after SIGTERM"; }
	! is_mounted "$T/m" || fail "$T/m still mounted after SIGTERM"
	wait "$LISTENER" || true
	grep -q '^STOPPING=1$' "$T/notify.log" || fail "no STOPPING=1 after SIGTERM"
	check "SIGTERM: STOPPING=1, unmounted, exit status 0"
	pstor_mount "$T/img" "$T/m"
	cmp <(head -c 1048576 "$T/m/volumes/v") "$T/data" || fail "data written before SIGTERM lost"
	check "what was written before SIGTERM is there after a remount"
	pstor_umount "$T/m"
}

# fstab passes x-systemd.* (and other x-*) options through mount(8) and mount.fuse3.
case_x_systemd_options_ignored() {
	need_binaries
	pstor_mkfs "$T/img" 1G
	pstor_mount "$T/img" "$T/m" \
		"x-systemd.requires=/dev/null,x-systemd.automount,x-systemd.mount-timeout=30,x-mount.mkdir,_netdev,nofail"
	check "x-systemd.requires=, x-systemd.automount, x-mount.mkdir accepted and ignored"
	pstor_umount "$T/m"
	# Anything else unknown is still refused.
	local rc=0
	"$PSTORFS" "$T/img" "$T/m" -f -o "y-systemd.requires=/dev/null" >"$T/bad.log" 2>&1 || rc=$?
	[ $rc = 1 ] || fail "an unknown option y-systemd.requires= was not refused (status $rc)"
	grep -q '^pstorfs: bad mount option' "$T/bad.log" || fail "refusal: $(cat "$T/bad.log")"
}

# The script of pstorfs-scrub.service on every mounted pstorfs (two here); a mount point with a
# space, which /proc/self/mounts writes as \040, through a mount table of our own.
case_scrub_all() {
	need_binaries
	pstor_mkfs "$T/img1" 1G
	pstor_mkfs "$T/img2" 1G
	pstor_mount "$T/img1" "$T/m1"
	pstor_mount "$T/img2" "$T/m2"
	truncate -s 4M "$T/m2/volumes/v"
	# The kernel's table, cut to this test's mounts: other pstorfs mounts on the machine (a
	# user's, another test's) are not this test's to scrub or to fail on.
	grep -F " $T/" /proc/self/mounts >"$T/own.mounts"
	PSTORFS_MOUNTS=$T/own.mounts "$UNITS/pstorfs-scrub-all" >"$T/scrub.out" 2>&1 ||
		fail "pstorfs-scrub-all: $(cat "$T/scrub.out")"
	cat "$T/scrub.out"
	local m n
	for m in "$T/m1" "$T/m2"; do
		grep -qF "$m: scrub started" "$T/scrub.out" || fail "no scrub started on $m"
		n=100
		until grep -qE '^state +(done|running)' "$m/.pstorage/scrub"; do
			n=$((n - 1))
			[ $n -gt 0 ] || fail "$m: scrub state: $(head -n 1 "$m/.pstorage/scrub")"
			sleep 0.1
		done
	done
	check "pstorfs-scrub-all started a scrub on both mounts"
	# An escaped mount point; a mount that is not pstorfs is left alone.
	ln -s "$T/m1" "$T/m 1"
	printf 'proc /proc proc rw 0 0\n%s %s fuse.pstorfs rw 0 0\n' "$T/img1" \
		"$(printf '%s' "$T/m 1" | sed 's/ /\\040/g')" >"$T/mounts"
	n=100
	until grep -qE '^state +done' "$T/m1/.pstorage/scrub"; do
		n=$((n - 1))
		[ $n -gt 0 ] || fail "the first scrub of $T/m1 did not finish"
		sleep 0.1
	done
	PSTORFS_MOUNTS=$T/mounts "$UNITS/pstorfs-scrub-all" >"$T/esc.out" 2>&1 ||
		fail "pstorfs-scrub-all on '$T/m 1': $(cat "$T/esc.out")"
	grep -qF "$T/m 1: scrub started" "$T/esc.out" || fail "$(cat "$T/esc.out")"
	[ "$(wc -l <"$T/esc.out")" = 1 ] || fail "not one line: $(cat "$T/esc.out")"
	check "a mount point written with \\040 is decoded; proc is left alone"
	# None mounted is not an error.
	printf 'proc /proc proc rw 0 0\n' >"$T/mounts"
	PSTORFS_MOUNTS=$T/mounts "$UNITS/pstorfs-scrub-all" >"$T/none.out" ||
		fail "pstorfs-scrub-all with no pstorfs: $(cat "$T/none.out")"
	grep -q 'no pstorfs is mounted' "$T/none.out" || fail "$(cat "$T/none.out")"
	pstor_umount "$T/m1"
	pstor_umount "$T/m2"
}

# The hardening of pstorfs@.service that can be reproduced without systemd: NoNewPrivileges=
# and CapabilityBoundingSet= (setpriv sets both the same way), with the unit's own list.
case_hardening_caps() {
	need_binaries
	need setpriv
	[ "$(id -u)" = 0 ] || skip "needs root (the unit runs as root)"
	local caps
	caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$UNITS/pstorfs@.service.in")
	[ -n "$caps" ] || fail "pstorfs@.service.in has no CapabilityBoundingSet="
	caps=$(echo "$caps" | tr '[:upper:]' '[:lower:]' | sed 's/cap_/+/g; s/ /,/g')
	pstor_mkfs "$T/img" 1G
	mkdir -p "$T/m"
	setpriv --no-new-privs --bounding-set "-all,$caps" --inh-caps -all \
		"$PSTORFS" "$T/img" "$T/m" -f -o allow_other >"$T/daemon.log" 2>&1 &
	local pid=$! n=300
	_DPID[$T/m]=$pid
	_DLOG[$T/m]=$T/daemon.log
	_CLEANUP+=("fuse:$T/m")
	until is_mounted "$T/m"; do
		_wait_gone "$pid" 0 && { cat "$T/daemon.log" >&2; fail "no mount under NoNewPrivileges + $caps"; }
		n=$((n - 1))
		[ $n -gt 0 ] || fail "no mount within 30 s"
		sleep 0.1
	done
	grep -q '^NoNewPrivs:[[:space:]]*1' "/proc/$pid/status" || fail "no_new_privs is not set"
	ctl "$T/m" "volume create v 4M"
	echo hardened | dd of="$T/m/volumes/v" conv=notrunc,fsync status=none
	check "mounted and served with no_new_privs and the bounding set $caps"
	pstor_umount "$T/m"
}

# Only where systemd runs the machine: an fstab line becomes a mount unit that requires the
# namespace's device unit (x-systemd.requires=) and waits for the network (_netdev).
case_fstab_mount_unit() {
	[ "$(cat /proc/1/comm 2>/dev/null)" = systemd ] || skip "systemd is not PID 1 here"
	need_binaries
	need systemctl systemd-escape
	[ -x /sbin/mount.fuse3 ] || skip "mount.fuse3 missing"
	command -v pstorfs >/dev/null || skip "pstorfs is not installed (mount(8) runs the installed one)"
	pstor_mkfs "$T/img" 1G
	pstor_losetup "$T/img" LOOP
	mkdir -p "$T/m"
	local unit fstab=/etc/fstab
	unit=$(systemd-escape -p --suffix=mount "$T/m")
	cp "$fstab" "$T/fstab.orig"
	printf '%s %s fuse.pstorfs defaults,_netdev,x-systemd.requires=%s 0 0\n' \
		"$LOOP" "$T/m" "$LOOP" >>"$fstab"
	trap 'cp "$T/fstab.orig" /etc/fstab; systemctl daemon-reload; _teardown' EXIT
	systemctl daemon-reload
	systemctl show -p Requires,After "$unit" >"$T/deps"
	grep -q "$(systemd-escape -p --suffix=device "$LOOP")" "$T/deps" ||
		fail "$unit does not require the device: $(cat "$T/deps")"
	grep -q 'network-online.target' "$T/deps" || fail "_netdev: $unit is not after the network"
	systemctl start "$unit"
	pstor_adopt_mount "$T/m"
	is_mounted "$T/m" || fail "$unit did not mount"
	systemctl stop "$unit"
	! is_mounted "$T/m" || fail "$unit did not unmount"
	check "fstab line -> $unit: requires the device, after the network, mounts and unmounts"
}

run_cases
