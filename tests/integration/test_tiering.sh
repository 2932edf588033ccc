#!/bin/bash
# Tiering on a real mount: a volume's cold_compression (zstd:19) makes the background mover
# re-encode lz4-compressed text, saving stored bytes while every read stays byte-exact (O_DIRECT,
# after a remount too); a kill -9 in the middle of a pass loses nothing, and the mover resumes
# from its cursor and finishes; bad settings are refused and change nothing; the tiering report
# recommends, with a measured effect, what the mover would do.
. "$(dirname "$0")/lib.sh"
need_binaries

IMG=$T/img
M=$T/m
TJ=$M/.pstorage/analytics/tiering.json

# Temperature: data turns cold and frozen a second after its last access, and the cases wait 2 s
# before they sample or switch the mover on (a hot extent is passed over until the next pass).
TIER_SETTLE=2

temp_setup() {
	ctl "$M" "config set temp_cold_after 1"
	ctl "$M" "config set temp_frozen_after 1"
}

tj() { # KEY: a number of the mover's progress in tiering.json
	"$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["mover"][sys.argv[2]])' \
		"$TJ" "$1"
}

wait_tj() { # KEY MIN SECONDS: until the mover's KEY reaches MIN
	local n=$(($3 * 10))
	until [ "$(tj "$1")" -ge "$2" ]; do
		n=$((n - 1))
		[ $n -gt 0 ] || fail "tiering: $1 is $(tj "$1") after $3 s, waited for $2: $(cat "$TJ")"
		sleep 0.1
	done
}

sum_direct() { # VOLUME BYTES: sha256 of its first BYTES read with O_DIRECT (no page cache)
	dd if="$M/volumes/$1" iflag=direct,count_bytes bs=1M count="$2" status=none |
		sha256sum | cut -d' ' -f1
}

scrub_clean() { # a scrub over everything finds no damaged chunk
	local n=600
	ctl "$M" "scrub start"
	while "$PY" -c 'import json, sys; sys.exit(json.load(open(sys.argv[1]))["state"] != "running")' \
		"$M/.pstorage/scrub.json"; do
		n=$((n - 1))
		[ $n -gt 0 ] || fail "scrub still running after 60 s"
		sleep 0.1
	done
	"$PY" - "$M/.pstorage/scrub.json" <<'EOF' || fail "scrub: $(cat "$M/.pstorage/scrub.json")"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["state"] == "done" and j["chunks_checked"] > 0, j
assert j["damaged_chunks"] == 0 and j["lost_chunks"] == 0 and j["affected_blocks"] == 0, j
EOF
}

stored() { # bytes after compression, pool-wide
	"$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["after_compression_bytes"])' \
		"$M/.pstorage/reduction.json"
}

case_mover_recompresses_cold_text_byte_exact() {
	pstor_mkfs "$IMG" 256M
	pstor_mount "$IMG" "$M" compression=lz4
	temp_setup
	text_file "$T/text" $((4 << 20))
	truncate -s 4M "$M/volumes/v"
	put_at "$T/text" "$M/volumes/v" 0
	ctl "$M" sync
	local want before after saved
	want=$(sha256sum <"$T/text" | cut -d' ' -f1)
	[ "$(sum_direct v $((4 << 20)))" = "$want" ] || fail "volume differs before tiering"
	before=$(stored)
	sleep "$TIER_SETTLE"
	check "the report recommends zstd:19 for the cold text, with a measured effect"
	"$PY" - "$M/.pstorage/analytics/tiering.json" <<'EOF' || fail "tiering.json: $(cat "$TJ")"
import json, sys
r = json.load(open(sys.argv[1]))["recommendations"]
c = [x for x in r if x["kind"] == "recompress_cold"]
assert c and c[0]["command"] == "volume set v cold_compression zstd:19", r
assert c[0]["effect_bytes"] > 0, c
EOF
	ctl "$M" "config set tier_rate 1G"
	ctl "$M" "volume set v cold_compression zstd:19"
	[ "$(cat "$M/.pstorage/volumes/v/cold_compression")" = zstd:19 ] || fail "setting not shown"
	check "one pass moves the chunks and saves bytes"
	wait_tj passes 1 60
	saved=$(tj bytes_saved)
	after=$(stored)
	log "stored $before -> $after bytes, mover says saved $saved; $(tj chunks_moved) chunks moved"
	[ "$saved" -gt 0 ] || fail "bytes_saved is 0"
	[ "$after" -lt "$before" ] || fail "stored bytes did not shrink: $before -> $after"
	[ "$(tj errors)" = 0 ] || fail "mover errors: $(cat "$TJ")"
	grep -qE '^pstorfs_tier_bytes_saved_total [1-9]' "$M/.pstorage/metrics" ||
		fail "metrics: $(grep tier_ "$M/.pstorage/metrics")"
	[ "$(sum_direct v $((4 << 20)))" = "$want" ] || fail "volume differs after tiering"
	check "a scrub finds every moved chunk sound"
	scrub_clean
	check "after a remount: the setting, the counters and the bytes stay; fsck is clean"
	pstor_umount "$M"
	"$PSTOR_BUILD_DIR/fs/fsck.pstorfs" -q "$IMG" >"$T/fsck" 2>&1 || fail "fsck: $(cat "$T/fsck")"
	pstor_mount "$IMG" "$M"
	[ "$(cat "$M/.pstorage/volumes/v/cold_compression")" = zstd:19 ] || fail "setting lost"
	[ "$(tj bytes_saved)" = "$saved" ] || fail "bytes_saved $(tj bytes_saved), was $saved"
	[ "$(sum_direct v $((4 << 20)))" = "$want" ] || fail "volume differs after remount"
	pstor_umount "$M"
}

case_kill9_mid_pass_resumes_byte_exact() {
	pstor_mkfs "$IMG" 256M
	pstor_mount "$IMG" "$M" compression=lz4
	temp_setup
	text_file "$T/text" $((8 << 20))
	truncate -s 8M "$M/volumes/v"
	put_at "$T/text" "$M/volumes/v" 0
	ctl "$M" sync
	local want off
	want=$(sha256sum <"$T/text" | cut -d' ' -f1)
	sleep "$TIER_SETTLE"
	# Slow enough that the pass is far from done when the daemon dies, and long enough in
	# that the cursor was saved (every 2 s).
	ctl "$M" "config set tier_rate 256K"
	ctl "$M" "volume set v cold_compression zstd:19"
	wait_tj chunks_moved 1 30
	check "writes while the mover works: behind and ahead of it; GC and a scrub run"
	text_file "$T/new" $((16 << 20))
	tail -c $((1 << 20)) "$T/new" >"$T/new1"
	put_at "$T/new1" "$M/volumes/v" 0
	put_at "$T/new1" "$M/volumes/v" $((6 << 20))
	put_at "$T/new1" "$T/text" 0
	put_at "$T/new1" "$T/text" $((6 << 20))
	want=$(sha256sum <"$T/text" | cut -d' ' -f1)
	ctl "$M" "gc start"
	scrub_clean
	sleep 2.5
	[ "$(tj passes)" = 0 ] || fail "the pass ended before the kill: make it slower"
	check "kill -9 in the middle of the pass (moved $(tj chunks_moved) chunks)"
	pstor_kill9 "$M"
	pstor_mount "$IMG" "$M"
	off=$(tj offset)
	[ "$(sum_direct v $((8 << 20)))" = "$want" ] || fail "volume differs after kill -9"
	[ "$off" -gt 0 ] || fail "the mover starts over: cursor offset $off after remount"
	check "the mover resumes at offset $off and finishes; the data is exact"
	ctl "$M" "config set tier_rate 1G"
	wait_tj passes 1 60
	[ "$(tj bytes_saved)" -gt 0 ] || fail "bytes_saved is 0"
	[ "$(tj errors)" = 0 ] || fail "mover errors: $(cat "$TJ")"
	[ "$(sum_direct v $((8 << 20)))" = "$want" ] || fail "volume differs after the pass"
	pstor_umount "$M"
	pstor_mount "$IMG" "$M"
	[ "$(sum_direct v $((8 << 20)))" = "$want" ] || fail "volume differs after remount"
	pstor_umount "$M"
}

case_bad_settings_are_refused_and_change_nothing() {
	pstor_mkfs "$IMG" 64M
	pstor_mount "$IMG" "$M"
	truncate -s 4M "$M/volumes/v"
	local F=$M/.pstorage/volumes/v/cold_compression
	[ "$(cat "$F")" = none ] || fail "default $(cat "$F")"
	expect_ctl "$M" EINVAL "volume set v cold_compression zstd:20"
	grep -q "cold_compression must be" "$M/.pstorage/ctl" || fail "ctl: $(cat "$M/.pstorage/ctl")"
	expect_ctl "$M" EINVAL "volume set v cold_compression gzip"
	expect_ctl "$M" EINVAL "volume set v colder zstd"
	expect_ctl "$M" EINVAL "volume set v cold_compression"
	expect_ctl "$M" ENOENT "volume set nosuch cold_compression zstd"
	[ "$(write_errno "$F" "zstd:0")" = EINVAL ] || fail "file write of zstd:0 accepted"
	grep -q "cold_compression must be" "$M/.pstorage/ctl" || fail "ctl: $(cat "$M/.pstorage/ctl")"
	[ "$(cat "$F")" = none ] || fail "a refused value changed it: $(cat "$F")"
	expect_ctl "$M" EINVAL "config set tier_rate -1"
	expect_ctl "$M" EINVAL "config set tier_rate fast"
	[ "$(cat "$M/.pstorage/config/tier_rate")" = $((1 << 20)) ] || fail "tier_rate changed"
	check "good values through the file, kept across a remount; none switches it off"
	[ "$(write_errno "$F" "lz4")" = OK ] || fail "file write of lz4 refused"
	pstor_umount "$M"
	pstor_mount "$IMG" "$M"
	[ "$(cat "$F")" = lz4 ] || fail "setting lost: $(cat "$F")"
	ctl "$M" "volume set v cold_compression none"
	[ "$(cat "$F")" = none ] || fail "none: $(cat "$F")"
	pstor_umount "$M"
}

run_cases
