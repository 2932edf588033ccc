# tests/integration/lib.sh - helpers shared by the integration scripts (sourced, not run).
# Each script gets its own temp dir under /var/tmp and a teardown (EXIT trap) that always
# unmounts what it mounted, detaches its loop devices and removes what it created; it must never
# touch a mount, loop device or process that the script did not make itself. The one exception
# is the sweep at start: the temp dir of an earlier script that is gone (killed by ctest's timeout
# before its teardown ran), older than a minute, loses its mounts and network namespaces. With
# PSTOR_DEADLINE set (ctest sets it under each TIMEOUT), a watchdog fails a hung case in time for
# its own teardown to run.
# Exit codes: 0 pass, 1 fail, 77 skip (ctest SKIP_RETURN_CODE).
# A script that checks several behaviours holds each in a function case_NAME, ends with
# run_cases, and is registered as one ctest test per case (it_SCRIPT.NAME, see CMakeLists.txt):
# `test_SCRIPT.sh NAME` runs that case alone; with no argument every case runs, each in its own
# process, so each has its own temp dir, mounts and teardown.

set -eEuo pipefail
shopt -s inherit_errexit

PSTOR_BUILD_DIR=${PSTOR_BUILD_DIR:-/work/main/build}
PSTOR_SRC_DIR=${PSTOR_SRC_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
PSTORFS=$PSTOR_BUILD_DIR/fs/pstorfs
MKFS=$PSTOR_BUILD_DIR/fs/mkfs.pstorfs
IT_CASE=${1:-}
TEST_NAME=$(basename "$0" .sh)${IT_CASE:+.$IT_CASE}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
# Daemons built with ASan: report to the daemon's log, and leaks of libraries are not ours.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PSTOR_SRC_DIR/tests/lsan.supp}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

_MAIN_PID=$BASHPID
_CLEANUP=()           # stack of "kind:arg" undone in reverse order by teardown
declare -A _DPID=()   # mountpoint -> pid of the foreground daemon we started
declare -A _DLOG=()   # mountpoint -> its log
declare -A _DEXPECT=() # pid -> expected exit status (kill -9 tests)
_NMOUNT=0
T=""

log() { printf '%s: %s\n' "$TEST_NAME" "$*"; }
check() { printf '%s: CHECK %s\n' "$TEST_NAME" "$*"; }
skip() {
	printf '%s: SKIP: %s\n' "$TEST_NAME" "$*"
	exit 77
}
# The last lines of every daemon's log (pstor_mount names them so): a failure in CI is all the
# output there is of a run, so it shows what the daemons said before it.
_show_daemon_logs() {
	local f
	[ -n "$T" ] || return 0
	for f in "$T"/pstorfs*.log; do
		[ -f "$f" ] || continue
		printf '%s: --- the last lines of %s:\n' "$TEST_NAME" "$f" >&2
		tail -n 30 "$f" >&2 2>/dev/null
	done
}
fail() {
	printf '%s: FAIL: %s\n' "$TEST_NAME" "$*" >&2
	# Once, though a failure in a $(...) fails its caller too.
	if [ -n "$T" ] && [ ! -e "$T/.failed" ]; then
		: >"$T/.failed" 2>/dev/null
		_show_daemon_logs
	fi
	exit 1
}
# A failure that does not stop the script (so one bug does not hide the next); exit status 1.
_SOFTFAIL=0
softfail() {
	printf '%s: FAIL: %s\n' "$TEST_NAME" "$*" >&2
	_SOFTFAIL=1
}
_on_err() {
	fail "line $1: command failed (status $2): $3"
}
trap '_on_err $LINENO $? "$BASH_COMMAND"' ERR

need() { # CMD... : skip unless every command exists
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || skip "$c is not installed"
	done
}

# A script that runs in a private mount namespace of its own (test_deb, test_fstab_mount:
# unshare --mount, PSTOR_IT_IN_NS) starts with a copy of every mount of the host, the FUSE mounts
# of the tests running alongside included. The kernel ends a FUSE session only with its last
# mount, and an unmount on the host does not reach a private copy: the other test's daemon would
# run on after its unmount for as long as this script lives (its _reap gives up after 60 s).
# So the copies go first, lazily (a copy of a hung mount must not hang us), once per namespace
# (run_cases' children share it, and their own mounts are not copies).
_drop_copied_fuse_mounts() {
	local ns mp
	ns=$(readlink /proc/self/ns/mnt)
	[ "${PSTOR_IT_NS_CLEANED:-}" != "$ns" ] || return 0
	export PSTOR_IT_NS_CLEANED=$ns
	# mountinfo: field 5 the mount point (octal escapes), the fs type after the "-" field.
	awk '{ for (i = 7; $i != "-"; i++); if ($(i + 1) ~ /^fuse(blk)?(\.|$)/) print $5 }' \
		/proc/self/mountinfo | while read -r mp; do
		umount -l "$(printf '%b' "$mp")" 2>/dev/null || true
	done
}
[ -z "${PSTOR_IT_IN_NS:-}" ] || _drop_copied_fuse_mounts

# ---- teardown ---------------------------------------------------------------------------------

is_mounted() { # MNT
	awk -v m="$1" '$5 == m { f = 1 } END { exit !f }' /proc/self/mountinfo
}

_wait_gone() { # PID SECONDS: 0 once PID is gone or a zombie
	local pid=$1 n=$(($2 * 10)) st
	while :; do
		st=$(sed -n 's/^[0-9]* (.*) \([A-Z]\).*/\1/p' "/proc/$pid/stat" 2>/dev/null || true)
		[ -z "$st" ] || [ "$st" = Z ] && return 0
		[ "$n" -gt 0 ] || return 1
		sleep 0.1
		n=$((n - 1))
	done
}

_remove_cleanup() { # ENTRY: drop it from the stack (it was undone explicitly)
	local i
	for i in "${!_CLEANUP[@]}"; do
		[ "${_CLEANUP[$i]}" = "$1" ] && unset "_CLEANUP[$i]"
	done
	_CLEANUP=("${_CLEANUP[@]}")
}

_show_log() { # LOG: from the first sanitizer report if there is one, else the tail
	local l
	l=$(grep -nE -m1 '(ERROR: [A-Za-z]+Sanitizer|runtime error:)' "$1" | cut -d: -f1)
	if [ -n "$l" ]; then
		sed -n "$l,$((l + 80))p" "$1" | grep -v '^  0x\|^Shadow\|^  [A-Z][a-z ]*:' >&2
	else
		tail -n 40 "$1" >&2
	fi
}

_reap() { # MNT: wait for the foreground daemon of MNT; 0 if it exited as expected
	local m=$1 pid rc=0 want
	pid=${_DPID[$m]:-}
	[ -n "$pid" ] || return 0
	unset "_DPID[$m]"
	if ! _wait_gone "$pid" 60; then
		log "daemon $pid of $m still running 60 s after unmount: kill -9"
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		return 1
	fi
	wait "$pid" || rc=$?
	want=${_DEXPECT[$pid]:-0}
	if [ "$rc" != "$want" ]; then
		log "daemon of $m exited with status $rc (expected $want); its log:"
		_show_log "${_DLOG[$m]}"
		return 1
	fi
	if grep -qE 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:' "${_DLOG[$m]}"; then
		log "daemon of $m reported a sanitizer error:"
		_show_log "${_DLOG[$m]}"
		return 1
	fi
	return 0
}

_teardown() {
	local rc=$? i e kind arg n
	[ "$BASHPID" = "$_MAIN_PID" ] || return 0
	[ $rc -ne 0 ] || [ $_SOFTFAIL = 0 ] || rc=1
	trap - ERR
	set +e
	cd /
	if [ -n "$_WATCHDOG" ]; then
		# The watchdog first: its sleep killed first would wake it to fail a passing case.
		n=$(pgrep -P "$_WATCHDOG" 2>/dev/null)
		kill -KILL "$_WATCHDOG" 2>/dev/null
		[ -z "$n" ] || kill -KILL $n 2>/dev/null
	fi
	for ((i = ${#_CLEANUP[@]} - 1; i >= 0; i--)); do
		e=${_CLEANUP[$i]}
		kind=${e%%:*}
		arg=${e#*:}
		case $kind in
		umount) # a kernel file system (ext4 on a loop device)
			is_mounted "$arg" && { umount "$arg" || umount -l "$arg"; }
			;;
		loop)
			losetup -d "$arg" 2>/dev/null
			;;
		fuse)
			n=0
			while is_mounted "$arg" && [ $n -lt 20 ]; do
				timeout 20 fusermount3 -u "$arg" 2>/dev/null && break
				sleep 0.5
				n=$((n + 1))
			done
			is_mounted "$arg" && { log "teardown: lazy unmount of $arg"; umount -l "$arg"; }
			_reap "$arg" || [ $rc -ne 0 ] || rc=1
			;;
		pids) # daemons found in /proc (daemonized mounts): wait, then kill
			for n in $arg; do
				_wait_gone "$n" 30 || kill -9 "$n" 2>/dev/null
			done
			;;
		rm)
			rm -f "$arg"
			;;
		kill) # a helper process the script started (etcd in lib_cluster.sh)
			kill -9 "$arg" 2>/dev/null
			_wait_gone "$arg" 10
			;;
		netns) # a network namespace the script made (lib_cluster.sh); its rules go with it
			ip netns del "$arg" 2>/dev/null
			;;
		esac
	done
	if [ -n "$T" ] && [ -d "$T" ]; then
		if grep -q " $T/" /proc/self/mountinfo; then
			log "teardown: something is still mounted under $T; leaving it"
		else
			rm -rf --one-file-system "$T"
		fi
	fi
	exit $rc
}
trap _teardown EXIT
trap 'exit 130' INT TERM

# A run that died without its teardown (ctest's TIMEOUT kills the script, not its mounts) left
# disconnected mounts and network namespaces behind; the next script sweeps them, so one hang
# does not fail every later test that looks at the mount table.
_sweep_stale() {
	local d owner m
	for d in /var/tmp/pstor-it-*; do
		# A directory younger than a minute is never swept, whatever its owner looks like.
		[ -f "$d/.owner" ] && [ -n "$(find "$d/.owner" -mmin +1 2>/dev/null)" ] || continue
		owner=$(cat "$d/.owner" 2>/dev/null) || continue
		[ -n "$owner" ] && ! kill -0 "$owner" 2>/dev/null || continue
		# Best effort, each step (errexit and the ERR trap are on here).
		for m in $(awk -v d="$d/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
			umount -l "$m" 2>/dev/null || true
		done
		for m in a b e; do # lib_cluster.sh's namespaces: pst<script pid><box>
			[ ! -e "/run/netns/pst$owner$m" ] || ip netns del "pst$owner$m" 2>/dev/null || true
		done
		printf '%s: swept %s (its script %s is gone)\n' "$TEST_NAME" "$d" "$owner"
		rm -rf --one-file-system "$d" 2>/dev/null || true
	done
	return 0
}
_sweep_stale

T=$(mktemp -d "/var/tmp/pstor-it-$TEST_NAME.XXXXXX")
echo "$_MAIN_PID" >"$T/.owner"

# PSTOR_DEADLINE (seconds; ctest sets it below the test's TIMEOUT): a case still running then is
# a hang. Fail it with its daemons' logs and run the teardown, rather than be killed by ctest with
# its mounts left behind. Bash runs the TERM trap only once the foreground command returns, so
# what the script waits on is killed too (not the daemons: the teardown unmounts them).
_descendants() { # PID: its children, grandchildren, ... (deepest last)
	local c
	for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do
		echo "$c"
		_descendants "$c"
	done
}
_watchdog() {
	trap - EXIT ERR INT TERM
	set +eu # best effort from here: processes come and go while it looks
	sleep "$PSTOR_DEADLINE" </dev/null >/dev/null 2>&1
	kill -0 "$_MAIN_PID" 2>/dev/null || exit 0
	printf '%s: FAIL: still running after %s s (a hang): stopping it for the teardown\n' \
		"$TEST_NAME" "$PSTOR_DEADLINE" >&2
	local p
	_show_daemon_logs
	kill -TERM "$_MAIN_PID" 2>/dev/null
	for p in $(_descendants "$_MAIN_PID"); do
		[ "$p" = "$BASHPID" ] && continue
		case $(cat "/proc/$p/comm" 2>/dev/null) in
		pstorfs) kill -CONT "$p" 2>/dev/null ;; # a stopped daemon would stall the unmount
		etcd | qemu-system-*) ;;
		*) kill -KILL "$p" 2>/dev/null ;;
		esac
	done
	exit 0
}
_WATCHDOG=
# One case, or a script without cases (run_cases gives each case its own process and watchdog).
if [ -n "${PSTOR_DEADLINE:-}" ] && { [ -n "$IT_CASE" ] || ! grep -q '^case_[a-z0-9_]*() {' "$0"; }; then
	_watchdog &
	_WATCHDOG=$!
	disown "$_WATCHDOG" # killed at teardown: no job report of it in the test's output
fi

need_binaries() {
	[ -x "$PSTORFS" ] || skip "$PSTORFS is not built"
	[ -x "$MKFS" ] || skip "$MKFS is not built"
	[ -e /dev/fuse ] || skip "/dev/fuse is missing"
	need fusermount3
}

# ---- pstorfs ----------------------------------------------------------------------------------

pstor_mkfs() { # IMG SIZE [mkfs options]
	local img=$1 size=$2
	shift 2
	truncate -s "$size" "$img"
	"$MKFS" "$@" "$img" >"$T/mkfs.log" 2>&1 || {
		cat "$T/mkfs.log" >&2
		fail "mkfs.pstorfs $* $img failed"
	}
}

# Where a stuck daemon PID waits: each thread's kernel stack, and its user stacks when gdb is
# there. For a hang that shows only in CI, where nothing can be attached afterwards.
_dump_stacks() { # PID
	local t
	printf '%s: --- the threads of daemon %s:\n' "$TEST_NAME" "$1" >&2
	for t in /proc/"$1"/task/*; do
		printf '%s %s wchan %s\n' "${t##*/}" "$(cat "$t/comm" 2>/dev/null)" \
			"$(cat "$t/wchan" 2>/dev/null)" >&2
		cat "$t/stack" >&2 2>/dev/null || true
	done
	if command -v gdb >/dev/null; then
		timeout 60 gdb -p "$1" -batch -ex "thread apply all bt" 2>/dev/null | grep -E '^(#|Thread)' >&2 || true
	fi
}

# Start the daemon in the foreground (-f) in the background, so its exit status and sanitizer
# reports are checked at unmount; wait until the mount shows in /proc/self/mountinfo.
pstor_mount() { # IMG MNT [OPTIONS]
	local img=$1 mnt=$2 opts=${3:-} pid n=600 rc=0
	mkdir -p "$mnt"
	_NMOUNT=$((_NMOUNT + 1))
	local lg="$T/pstorfs.$_NMOUNT.log"
	if [ -n "$opts" ]; then
		"$PSTORFS" "$img" "$mnt" -f -o "$opts" >"$lg" 2>&1 &
	else
		"$PSTORFS" "$img" "$mnt" -f >"$lg" 2>&1 &
	fi
	pid=$!
	_DPID[$mnt]=$pid
	_DLOG[$mnt]=$lg
	_CLEANUP+=("fuse:$mnt")
	while ! is_mounted "$mnt"; do
		if _wait_gone "$pid" 0; then
			wait "$pid" || rc=$?
			unset "_DPID[$mnt]"
			_remove_cleanup "fuse:$mnt"
			cat "$lg" >&2
			fail "pstorfs $img $mnt ${opts:+-o $opts} exited with status $rc before mounting"
		fi
		n=$((n - 1))
		if [ $n -le 0 ]; then
			_dump_stacks "$pid"
			fail "pstorfs did not mount $mnt within 60 s"
		fi
		sleep 0.1
	done
	# The mount shows before the first request is served: wait until it answers.
	n=300
	until stat "$mnt/.pstorage/ctl" >/dev/null 2>&1; do
		n=$((n - 1))
		[ $n -gt 0 ] || fail "$mnt/.pstorage/ctl does not answer"
		sleep 0.1
	done
}

# pids of the pstorfs processes serving MNT (for daemonized mounts)
pstor_daemon_pids() { # MNT
	"$PY" - "$1" <<'EOF'
import os, sys
m = os.path.normpath(sys.argv[1])
for p in os.listdir('/proc'):
    if not p.isdigit() or int(p) == os.getpid():
        continue
    try:
        a = open('/proc/%s/cmdline' % p, 'rb').read().split(b'\0')
    except OSError:
        continue
    a = [x.decode(errors='replace') for x in a if x]
    if a and os.path.basename(a[0]) == 'pstorfs' and any(
            os.path.normpath(x) == m for x in a[1:]):
        print(p)
EOF
}

# Register a mount made by another program (mount(8), mount.fuse3, a daemonized pstorfs) so that
# teardown unmounts it and waits for its daemon.
pstor_adopt_mount() { # MNT
	local pids
	pids=$(pstor_daemon_pids "$1" | tr '\n' ' ')
	_CLEANUP+=("pids:$pids" "fuse:$1")
}

# Unmount and wait until the daemon has exited (it holds an exclusive lock on the image).
pstor_umount() { # MNT [umount command, default fusermount3 -u]
	local mnt=$1 n=0 pids p
	shift
	[ $# -gt 0 ] || set -- fusermount3 -u
	is_mounted "$mnt" || fail "pstor_umount: $mnt is not mounted"
	pids=$(pstor_daemon_pids "$mnt")
	until "$@" "$mnt" 2>"$T/umount.err"; do
		n=$((n + 1))
		[ $n -lt 40 ] || fail "$* $mnt: $(cat "$T/umount.err")"
		sleep 0.25
	done
	is_mounted "$mnt" && fail "$mnt still mounted after $*"
	_remove_cleanup "fuse:$mnt"
	for p in $pids; do
		[ "$p" = "${_DPID[$mnt]:-}" ] && continue
		_wait_gone "$p" 60 || fail "daemon $p of $mnt did not exit within 60 s of unmount"
	done
	_reap "$mnt" || fail "the daemon of $mnt did not exit cleanly"
}

# kill -9 the foreground daemon of MNT (a crash), then clear the dead mount.
pstor_kill9() { # MNT
	local mnt=$1 pid=${_DPID[$1]:-}
	[ -n "$pid" ] || fail "pstor_kill9: no foreground daemon for $mnt"
	_DEXPECT[$pid]=137
	kill -9 "$pid"
	_wait_gone "$pid" 30 || fail "daemon $pid survived kill -9"
	fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt"
	_remove_cleanup "fuse:$mnt"
	_reap "$mnt" || fail "kill -9 of the daemon of $mnt"
}

pstor_losetup() { # FILE VARNAME [losetup options]: attach, store the device in VARNAME
	local f=$1 var=$2 dev
	shift 2
	dev=$(losetup -f --show "$@" "$f" 2>"$T/losetup.err") ||
		skip "losetup failed: $(cat "$T/losetup.err")"
	_CLEANUP+=("loop:$dev")
	printf -v "$var" '%s' "$dev"
}

pstor_lodetach() { # DEV
	losetup -d "$1"
	_remove_cleanup "loop:$1"
}

mount_dev() { # DEV MNT [mount options...]: a kernel file system
	local dev=$1 mnt=$2
	shift 2
	mkdir -p "$mnt"
	mount "$@" "$dev" "$mnt"
	_CLEANUP+=("umount:$mnt")
}

umount_dev() { # MNT
	umount "$1"
	_remove_cleanup "umount:$1"
}

cleanup_file() { # PATH: removed by teardown
	_CLEANUP+=("rm:$1")
}

# ---- control files ----------------------------------------------------------------------------

# One write(2) of DATA to PATH (opened O_WRONLY|O_TRUNC, like `echo > PATH`); prints OK or the
# errno name (EINVAL...); "open:E..." or "close:E..." when open(2) or close(2) failed instead.
write_errno() { # PATH DATA
	printf '%s' "$2" >"$T/write_errno.data"
	"$PY" - "$1" "$T/write_errno.data" <<'EOF'
import errno, os, sys
p, d = sys.argv[1], open(sys.argv[2], 'rb').read()
try:
    fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
except OSError as e:
    print('open:' + errno.errorcode.get(e.errno, str(e.errno)))
    sys.exit(0)
r = 'OK'
try:
    n = os.write(fd, d)
    if n != len(d):
        r = 'SHORT%d' % n
except OSError as e:
    r = errno.errorcode.get(e.errno, str(e.errno))
try:
    os.close(fd)
except OSError as e:
    if r == 'OK':
        r = 'close:' + errno.errorcode.get(e.errno, str(e.errno))
print(r)
EOF
}

ctl() { # MNT COMMAND: must succeed
	local r
	r=$(write_errno "$1/.pstorage/ctl" "$2"$'\n')
	[ "$r" = OK ] || fail "ctl '$2' failed: $r ($(cat "$1/.pstorage/ctl" 2>&1))"
}

# expect_ctl MNT ERRNO|OK COMMAND [ERRNO...]: the write of COMMAND fails with one of the errnos
expect_ctl() {
	local mnt=$1 want=$2 cmd=$3 r w
	shift 3
	r=$(write_errno "$mnt/.pstorage/ctl" "$cmd"$'\n')
	for w in "$want" "$@"; do
		[ "$r" = "$w" ] && return 0
	done
	fail "ctl '$cmd': got $r, expected $want${*:+ or $*}"
}

# expect_errno 'SHELL COMMAND' ERRNO_NAME: the command fails and its error message is strerror(ERRNO)
expect_errno() {
	local cmd=$1 name=$2 msg rc=0
	msg=$("$PY" -c 'import errno, os, sys; print(os.strerror(getattr(errno, sys.argv[1])))' "$name")
	bash -c "$cmd" 2>"$T/expect_errno.err" || rc=$?
	[ $rc -ne 0 ] || fail "'$cmd' succeeded, expected $name"
	grep -qF "$msg" "$T/expect_errno.err" ||
		fail "'$cmd' failed with '$(cat "$T/expect_errno.err")', expected '$msg' ($name)"
}

# an integer attribute of a volume, in bytes (.pstorage/volumes/NAME/KEY)
vol_attr() { # MNT NAME KEY
	local v
	v=$(cat "$1/.pstorage/volumes/$2/$3")
	v=${v%%[[:space:]]*}
	[[ $v =~ ^[0-9]+$ ]] || fail "$1/.pstorage/volumes/$2/$3 is not an integer: '$v'"
	echo "$v"
}

df_used() { # MNT: bytes used as df reports them
	df -B1 --output=used "$1" | tail -n 1 | tr -d ' '
}

# random data in a file: FILE BYTES
rand_file() {
	head -c "$2" /dev/urandom >"$1"
}

# write FILE into TARGET at byte OFFSET without truncating TARGET
put_at() { # FILE TARGET OFFSET [extra dd flags]
	local src=$1 dst=$2 off=$3
	shift 3
	dd if="$src" of="$dst" bs=1M seek="$off" oflag=seek_bytes conv=notrunc status=none "$@"
}

# LEN bytes of FILE at OFFSET, to stdout
get_at() { # FILE OFFSET LEN
	dd if="$1" bs=1M skip="$2" count="$3" iflag=skip_bytes,count_bytes status=none
}

pass() { # the last line of a script
	if [ $_SOFTFAIL = 0 ]; then log "PASS"; else log "FAILED (see the FAIL lines above)"; fi
}

it_cases() { # the case_* functions of this script, in file order
	sed -n 's/^case_\([a-z0-9_]*\)() {.*/\1/p' "$0"
}

# The last line of a script with cases: runs case_$IT_CASE, or with no case given every case
# in its own process (exit 1 if one failed, 77 if all were skipped).
run_cases() {
	local c rc failed=() ran=0
	if [ -n "$IT_CASE" ]; then
		declare -F "case_$IT_CASE" >/dev/null ||
			fail "no case '$IT_CASE' in $0 (cases: $(it_cases | tr '\n' ' '))"
		"case_$IT_CASE"
		pass
		return
	fi
	for c in $(it_cases); do
		rc=0
		bash "$0" "$c" || rc=$?
		case $rc in
		0) ran=1 ;;
		77) ;;
		*) failed+=("$c") ;;
		esac
	done
	[ ${#failed[@]} -eq 0 ] || fail "cases failed: ${failed[*]}"
	[ $ran = 1 ] || skip "every case skipped"
	pass
}

# compressible text (real documentation files) in a file: FILE BYTES
text_file() {
	"$PY" - "$1" "$2" <<'PYEOF'
import os, sys
out, want = open(sys.argv[1], 'wb'), int(sys.argv[2])
n = 0
for root in ('/usr/share/doc', '/usr/share/common-licenses', '/usr/include'):
    for d, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for f in sorted(files):
            if f.endswith('.gz'):
                continue
            try:
                b = open(os.path.join(d, f), 'rb').read(want - n)
            except OSError:
                continue
            out.write(b)
            n += len(b)
            if n >= want:
                sys.exit(0)
while n < want:  # a machine without docs: generated text
    b = ('line %d of generated text, compressible\n' % n).encode()[:want - n]
    out.write(b)
    n += len(b)
PYEOF
}
