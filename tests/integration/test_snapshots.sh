#!/bin/bash
# Snapshots and clones: a snapshot keeps the data of its creation time while the volume changes,
# is read-only, shows in ls with its creation time; cp of a snapshot clones without copying data;
# snapshot restore, snapshot clone and snapshot delete do what they say and nothing more. One
# case per behaviour (lib.sh run_cases), each on its own mount.
. "$(dirname "$0")/lib.sh"
need_binaries
need sha256sum

IMG=$T/img
M=$T/m
V=$M/volumes/vol
S=$M/snapshots/vol/s1
SIZE=$((48 << 20))
sum() { sha256sum <"$1" | cut -d' ' -f1; }

# The volume with pattern A (32 MiB of incompressible data plus a small write at an odd offset),
# snapshot s1 of it (created between t0 and t1), then pattern B over part of the volume.
setup() {
	pstor_mkfs "$IMG" 2G
	pstor_mount "$IMG" "$M"
	truncate -s $SIZE "$V"
	rand_file "$T/A" $((32 << 20))
	rand_file "$T/a" 5000
	put_at "$T/A" "$V" 0
	put_at "$T/a" "$V" $(((40 << 20) + 123))
	A=$(sum "$V")
	ctl "$M" sync
	t0=$(date +%s)
	ctl "$M" "snapshot create vol s1"
	t1=$(date +%s)
	rand_file "$T/B" $((16 << 20))
	put_at "$T/B" "$V" $((8 << 20))
	fallocate --punch-hole -o $((40 << 20)) -l 4096 "$V"
	B=$(sum "$V")
}

# df used must grow by less than 5% (the clone shares the blocks)
shares() { # U0 U1 WHAT
	log "df used $1 -> $2 (+$(($2 - $1)))"
	[ $(($2 - $1)) -lt $(($1 / 20)) ] || softfail "$3 grew df used from $1 to $2"
}

case_keeps_data() {
	setup
	check "snapshot create vol s1: the snapshot exists with the volume's size"
	[ -f "$S" ] || fail "$S does not exist"
	[ "$(stat -c %s "$S")" = $SIZE ] || fail "snapshot size $(stat -c %s "$S"), expected $SIZE"
	check "overwrite the volume with pattern B; the snapshot still reads A"
	[ "$A" != "$B" ] || fail "the overwrite did not change the volume"
	[ "$(sum "$S")" = "$A" ] || fail "snapshot changed with its volume"
	cmp "$T/B" <(get_at "$V" $((8 << 20)) $((16 << 20))) || fail "volume does not read B"
	pstor_umount "$M"
}

case_read_only() {
	setup
	check "the snapshot is read-only"
	r=$(write_errno "$S" "x")
	case $r in
	open:EACCES | open:EPERM | open:EROFS) ;;
	*) fail "writing $S: got $r, expected open to fail with EACCES, EPERM or EROFS" ;;
	esac
	if truncate -s 1M "$S" 2>/dev/null; then fail "truncate of a snapshot succeeded"; fi
	if dd if=/dev/zero of="$S" bs=4k count=1 conv=notrunc status=none 2>/dev/null; then
		fail "dd into a snapshot succeeded"
	fi
	[ "$(sum "$S")" = "$A" ] || fail "snapshot changed after the refused writes"
	[ "$(stat -c %a "$S")" = 600 ] || fail "snapshot mode is $(stat -c %a "$S"), expected 600 (its volume's)"
	pstor_umount "$M"
}

case_ls_creation_time() {
	setup
	check "ls -l --time-style=full-iso lists it with its creation time"
	# shellcheck disable=SC2012 # what ls shows is the point
	ls -l --time-style=full-iso "$M/snapshots/vol/" | tee "$T/ls" | sed 's/^/  /'
	grep -q ' s1$' "$T/ls" || fail "ls does not list s1"
	mt=$(stat -c %Y "$S")
	if [ "$mt" -lt $((t0 - 1)) ] || [ "$mt" -gt $((t1 + 1)) ]; then
		fail "snapshot mtime $mt is not its creation time ($t0..$t1)"
	fi
	pstor_umount "$M"
}

# With dedupe on, even a byte-by-byte copy would cost nothing: only sharing can pass these.
case_copy_file_range_shares() {
	setup
	echo off >"$M/.pstorage/config/dedupe"
	check "copy_file_range(2) of the snapshot into a new volume shares blocks (dedupe off)"
	ctl "$M" sync
	u0=$(df_used "$M")
	"$PY" - "$S" "$M/volumes/cfr" <<'PYEOF'
import os, sys
a = os.open(sys.argv[1], os.O_RDONLY)
b = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT, 0o644)
while os.copy_file_range(a, b, 1 << 30):
    pass
PYEOF
	ctl "$M" sync
	u1=$(df_used "$M")
	shares "$u0" "$u1" copy_file_range
	[ "$(sum "$M/volumes/cfr")" = "$A" ] || fail "the copy_file_range clone does not read A"
	cu=$(vol_attr "$M" cfr unique)
	[ "$cu" -lt $(((32 << 20) / 20)) ] || softfail "the clone alone holds $cu bytes (unique), expected ~0"
	pstor_umount "$M"
}

case_cp_sparse_never_shares() {
	setup
	echo off >"$M/.pstorage/config/dedupe"
	check "cp --sparse=never snapshots/vol/s1 volumes/cpnever shares blocks (copy_file_range, dedupe off)"
	# coreutils 9.1 cp uses copy_file_range only for files that do not look sparse
	# (st_blocks*512 >= st_size); a snapshot's st_blocks is the physical bytes only it holds, so
	# plain cp takes the read/write path, which dedupe (on by default) turns into sharing.
	ctl "$M" sync
	u0=$(df_used "$M")
	cp --sparse=never "$S" "$M/volumes/cpnever"
	ctl "$M" sync
	u1=$(df_used "$M")
	shares "$u0" "$u1" "cp --sparse=never"
	[ "$(sum "$M/volumes/cpnever")" = "$A" ] || fail "cpnever does not read A"
	pstor_umount "$M"
}

case_cp_shares() {
	setup
	check "cp snapshots/vol/s1 volumes/clone shares blocks too (defaults): df used grows < 5%"
	ctl "$M" sync
	u0=$(df_used "$M")
	cp "$S" "$M/volumes/clone"
	ctl "$M" sync
	u1=$(df_used "$M")
	shares "$u0" "$u1" "cp of a snapshot"
	[ "$(sum "$M/volumes/clone")" = "$A" ] || fail "the clone does not read A"
	[ "$(stat -c %s "$M/volumes/clone")" = $SIZE ] || fail "clone size $(stat -c %s "$M/volumes/clone")"
	pstor_umount "$M"
}

case_clone_writes_isolated() {
	setup
	cp "$S" "$M/volumes/clone"
	check "writes to the clone change neither the snapshot nor the volume"
	put_at "$T/a" "$M/volumes/clone" 0
	[ "$(sum "$S")" = "$A" ] || fail "a write to the clone changed the snapshot"
	[ "$(sum "$V")" = "$B" ] || fail "a write to the clone changed the volume"
	pstor_umount "$M"
}

case_restore() {
	setup
	check "snapshot restore vol s1: the volume reads A again"
	ctl "$M" "snapshot restore vol s1"
	[ "$(sum "$V")" = "$A" ] || fail "volume does not read A after restore"
	[ "$(sum "$S")" = "$A" ] || fail "snapshot changed by the restore"
	check "writes after a restore do not change the snapshot"
	put_at "$T/B" "$V" 0
	[ "$(sum "$S")" = "$A" ] || fail "a write after restore changed the snapshot"
	pstor_umount "$M"
}

case_snapshot_clone() {
	setup
	check "snapshot clone vol s1 clone2: a new writable volume that reads A"
	ctl "$M" "snapshot clone vol s1 clone2"
	[ "$(sum "$M/volumes/clone2")" = "$A" ] || fail "clone2 does not read A"
	put_at "$T/a" "$M/volumes/clone2" 4096
	cmp "$T/a" <(get_at "$M/volumes/clone2" 4096 5000) || fail "clone2 is not writable"
	[ "$(sum "$S")" = "$A" ] || fail "a write to clone2 changed the snapshot"
	[ "$(sum "$V")" = "$B" ] || fail "a write to clone2 changed the volume"
	pstor_umount "$M"
}

case_delete() {
	setup
	check "a second snapshot, then snapshot delete vol s1"
	ctl "$M" "snapshot create vol s2"
	ctl "$M" "snapshot delete vol s1"
	[ ! -e "$S" ] || fail "$S still exists after snapshot delete"
	# shellcheck disable=SC2010 # what ls shows is the point
	if ls "$M/snapshots/vol" | grep -qx s1; then fail "ls still lists s1"; fi
	[ "$(sum "$M/snapshots/vol/s2")" = "$B" ] || fail "s2 changed when s1 was deleted"
	[ "$(sum "$V")" = "$B" ] || fail "the volume changed when s1 was deleted"
	expect_ctl "$M" ENOENT "snapshot restore vol s1"
	pstor_umount "$M"
}

case_remount() {
	setup
	# the state the cases above leave: clones by cp and by snapshot clone (both written), a
	# restore and a write after it, a second snapshot, s1 deleted
	cp "$S" "$M/volumes/clone"
	put_at "$T/a" "$M/volumes/clone" 0
	ctl "$M" "snapshot restore vol s1"
	put_at "$T/B" "$V" 0
	ctl "$M" "snapshot clone vol s1 clone2"
	put_at "$T/a" "$M/volumes/clone2" 4096
	ctl "$M" "snapshot create vol s2"
	V2=$(sum "$V")
	ctl "$M" "snapshot delete vol s1"
	clone2=$(sum "$M/volumes/clone2")
	check "everything survives a remount"
	c1=$(sum "$M/volumes/clone")
	pstor_umount "$M"
	pstor_mount "$IMG" "$M"
	[ "$(sum "$V")" = "$V2" ] || fail "volume after remount"
	[ "$(sum "$M/snapshots/vol/s2")" = "$V2" ] || fail "s2 after remount"
	[ "$(sum "$M/volumes/clone")" = "$c1" ] || fail "clone after remount"
	[ "$(sum "$M/volumes/clone2")" = "$clone2" ] || fail "clone2 after remount"
	[ ! -e "$S" ] || fail "deleted snapshot s1 is back after remount"
	pstor_umount "$M"
}

run_cases
