#!/bin/bash
# Bad control input: every ctl command with bad arguments fails its write(2) with the documented
# errno, changes nothing (volumes, snapshots and config identical before and after), and reading
# ctl back shows an "error:" line. Bad values written to config files fail with EINVAL.
. "$(dirname "$0")/lib.sh"
need_binaries

IMG=$T/img
M=$T/m
CTL=$M/.pstorage/ctl
S0=


state() {
	(
		cd "$M"
		find volumes snapshots -printf '%p %y %s %m\n' | sort
		sha256sum volumes/vol snapshots/vol/s1
		for k in .pstorage/config/*; do echo "$k=$(cat "$k")"; done
	)
}

# volumes vol (with data) and other, snapshot vol/s1; S0 = the state every failure must keep
setup() {
	pstor_mkfs "$IMG" 2G
	pstor_mount "$IMG" "$M"
	check "valid commands succeed and ctl reads back ok"
	ctl "$M" "volume create vol 4M" # small: state() hashes it after every command
	ctl "$M" "volume create other 8M"
	ctl "$M" "snapshot create vol s1"
	grep -q '^ok' "$CTL" || fail "ctl reads '$(cat "$CTL")' after a good command, expected ok"
	rand_file "$T/d" 65536
	put_at "$T/d" "$M/volumes/vol" 4096
	S0=$(state)
}

bad() { # ERRNO COMMAND [OTHER ACCEPTED ERRNO...]
	local want=$1 cmd=$2 now
	shift 2
	expect_ctl "$M" "$want" "$cmd" "$@"
	grep -q '^error:' "$CTL" ||
		fail "ctl reads '$(cat "$CTL")' after the failed '$cmd', expected an error: line"
	now=$(state)
	if [ "$now" != "$S0" ]; then
		diff <(printf '%s\n' "$S0") <(printf '%s\n' "$now") >&2 || true
		fail "the failed '$cmd' changed something"
	fi
	printf '  %-46s -> %s: %s\n' "'$cmd'" "$want" "$(head -n 1 "$CTL")"
}


case_unknown_commands() {
	setup
	check "unknown or incomplete commands: EINVAL"
	bad EINVAL "frobnicate"
	bad EINVAL "volume"
	bad EINVAL "volume frobnicate x"
	bad EINVAL "snapshot"
	bad EINVAL "config"
	bad EINVAL "gc"
	bad EINVAL "gc stop"
	bad EINVAL "gc start now"
	bad EINVAL "sync now"
	bad EINVAL "VOLUME create x 1M"
	pstor_umount "$M"
}

case_volume_create() {
	setup
	check "volume create"
	bad EINVAL "volume create"
	bad EINVAL "volume create x"
	bad EINVAL "volume create x 1G extra"
	bad EINVAL "volume create x abc"
	bad EINVAL "volume create x 0"
	bad EINVAL "volume create x -5M"
	bad EINVAL "volume create x 10Q"
	bad EINVAL "volume create x 1MM"
	bad EINVAL "volume create x 18446744073709551616" ENOSPC
	bad EINVAL "volume create x 16777216T" ENOSPC
	bad ENOSPC "volume create x 1000T"
	bad EEXIST "volume create vol 1G"
	bad EINVAL "volume create a/b 1G"
	bad EINVAL "volume create .hidden 1G"
	bad EINVAL "volume create .. 1G"
	bad EINVAL "volume create $(printf 'n%.0s' $(seq 65)) 1G"
	bad EINVAL "volume create caf$(printf '\xc3\xa9') 1G"
	bad EINVAL "volume create a*b 1G"
	bad EINVAL "volume create  1G"
	bad EINVAL "volume create '' 1G"
	pstor_umount "$M"
}

case_volume_delete_resize_rename() {
	setup
	check "volume delete / resize / rename"
	bad EINVAL "volume delete"
	bad ENOENT "volume delete nosuch"
	bad EINVAL "volume delete vol extra"
	bad EINVAL "volume resize vol"
	bad EINVAL "volume resize vol abc"
	bad ENOENT "volume resize nosuch 1G"
	bad EINVAL "volume resize vol 0"
	bad ENOSPC "volume resize vol 1000T"
	bad EINVAL "volume resize vol 1G extra"
	bad EINVAL "volume rename vol"
	bad ENOENT "volume rename nosuch x"
	bad EEXIST "volume rename vol other"
	bad EINVAL "volume rename vol bad/name"
	bad EINVAL "volume rename vol x extra"
	pstor_umount "$M"
}

case_snapshot_commands() {
	setup
	check "snapshot create / delete / restore / clone"
	bad EINVAL "snapshot create vol"
	bad ENOENT "snapshot create nosuch s"
	bad EEXIST "snapshot create vol s1"
	bad EINVAL "snapshot create vol bad/x"
	bad EINVAL "snapshot create vol s2 extra"
	bad EINVAL "snapshot delete vol"
	bad ENOENT "snapshot delete vol nosuch"
	bad ENOENT "snapshot delete nosuch s1"
	bad EINVAL "snapshot restore vol"
	bad ENOENT "snapshot restore vol nosuch"
	bad ENOENT "snapshot restore nosuch s1"
	bad EINVAL "snapshot clone vol s1"
	bad EEXIST "snapshot clone vol s1 other"
	bad ENOENT "snapshot clone vol nosuch new"
	bad EINVAL "snapshot clone vol s1 bad/x"
	bad EINVAL "snapshot clone vol s1 new extra"
	pstor_umount "$M"
}

case_config_set() {
	setup
	check "config set"
	bad EINVAL "config set"
	bad EINVAL "config set compression"
	bad EINVAL "config set nosuchkey 1"
	bad EINVAL "config set compression bogus"
	bad EINVAL "config set compression zstd:99"
	bad EINVAL "config set compression zstd:abc"
	bad EINVAL "config set dedupe maybe"
	bad EINVAL "config set commit_interval_ms abc"
	bad EINVAL "config set commit_interval_ms -1"
	bad EINVAL "config set compression lz4 extra"
	pstor_umount "$M"
}

case_junk_lines() {
	setup
	check "junk: a 200 KiB line, NUL bytes, control characters fail and change nothing"
	for junk in "$(head -c 200000 /dev/zero | tr '\0' v)" "volume create x$(printf '\001\002') 1M" \
		"volume create x 1M$(printf '\t\t')junk" "$(printf '\377\376 volume')"; do
		r=$(write_errno "$CTL" "$junk"$'\n')
		case $r in OK | open:* | close:*) fail "junk ctl write (${#junk} bytes): got $r" ;; esac
		[ "$(state)" = "$S0" ] || fail "a junk ctl write changed something"
	done
	r=$("$PY" - "$CTL" <<'EOF'
import os, sys, errno
fd = os.open(sys.argv[1], os.O_WRONLY)
try:
    os.write(fd, b"volume create x\0y 1M\n")
    print("OK")
except OSError as e:
    print(errno.errorcode[e.errno])
EOF
	)
	[ "$r" != OK ] || fail "a ctl line with a NUL byte was accepted"
	[ "$(state)" = "$S0" ] || fail "a ctl line with a NUL byte changed something"
	pstor_umount "$M"
}

case_shell_sees_errno() {
	setup
	check "the shell sees the error: printf 'volume create\\n' > ctl fails with Invalid argument"
	expect_errno "printf '%s\n' 'volume create' > '$CTL'" EINVAL
	expect_errno "printf '%s\n' 'volume delete nosuch' > '$CTL'" ENOENT
	expect_errno "printf '%s\n' 'volume create vol 1M' > '$CTL'" EEXIST
	[ "$(state)" = "$S0" ] || fail "a failed shell write changed something"
	pstor_umount "$M"
}

case_config_files() {
	setup
	check "bad values written to .pstorage/config files: EINVAL, value unchanged"
	for kv in "compression bogus" "compression zstd:" "compression zstd:99" "compression ''" \
		"dedupe 2" "dedupe ''" "commit_interval_ms abc" "commit_interval_ms -5"; do
		k=${kv%% *}
		v=${kv#* }
		[ "$v" = "''" ] && v=""
		f=$M/.pstorage/config/$k
		[ -f "$f" ] || fail "$f does not exist"
		old=$(cat "$f")
		r=$(write_errno "$f" "$v"$'\n')
		[ "$r" = EINVAL ] || fail "echo '$v' > config/$k: got $r, expected EINVAL"
		[ "$(cat "$f")" = "$old" ] || fail "config/$k changed to '$(cat "$f")' after a bad write"
		printf '  %-46s -> EINVAL\n' "echo '$v' > config/$k"
	done
	r=$(write_errno "$M/.pstorage/config/nosuchkey" "1")
	[ "$r" != OK ] || fail "writing config/nosuchkey succeeded"
	[ ! -e "$M/.pstorage/config/nosuchkey" ] || fail "config/nosuchkey was created"
	[ "$(state)" = "$S0" ] || fail "a bad config write changed something"
	pstor_umount "$M"
}

case_works_after_bad_input() {
	setup
	check "after bad commands and junk lines, the daemon still works: good commands succeed"
	for cmd in frobnicate "volume create x abc" "volume delete nosuch" "volume rename vol other" \
		"snapshot create vol s1" "snapshot restore vol nosuch" "config set compression bogus" \
		"$(head -c 200000 /dev/zero | tr '\0' v)" "volume create x$(printf '\001\002') 1M" \
		"$(printf '\377\376 volume')"; do
		r=$(write_errno "$CTL" "$cmd"$'\n')
		[ "$r" != OK ] || fail "bad ctl write '${cmd:0:60}' succeeded"
	done
	r=$(write_errno "$M/.pstorage/config/dedupe" $'2\n')
	[ "$r" != OK ] || fail "echo 2 > config/dedupe succeeded"
	[ "$(state)" = "$S0" ] || fail "the bad writes changed something"
	ctl "$M" "volume create x 1M"
	grep -q '^ok' "$CTL" || fail "ctl reads '$(cat "$CTL")' after a good command"
	ctl "$M" "volume delete x"
	c0=$(cat "$M/.pstorage/config/compression")
	ctl "$M" "config set compression zstd:3"
	[ "$(cat "$M/.pstorage/config/compression")" = zstd:3 ] || fail "config set compression zstd:3 ignored"
	ctl "$M" "config set compression $c0"
	[ "$(state)" = "$S0" ] || fail "state differs after good commands that cancel out"
	pstor_umount "$M"
}

run_cases
