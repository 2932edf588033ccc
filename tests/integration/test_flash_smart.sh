#!/bin/bash
# .pstorage/flash/smart on an image file: the SMART / health fields are emulated from the FTL's
# counters, say so on their first line, and move with the writes (data units written), in text
# and JSON; identity names the backend. The NVMe form is checked in a QEMU guest (tests/vm).
# Two cases (lib.sh run_cases): the emulated fields, and data units written.
. "$(dirname "$0")/lib.sh"
need_binaries

IMG=$T/img
M=$T/m
F=$M/.pstorage/flash
setup() {
	pstor_mkfs "$IMG" 1G
	pstor_mount "$IMG" "$M" compression=none,dedupe=off
}

case_emulated_fields() {
	setup
	check "smart and smart.json are listed and say the values are emulated"
	# shellcheck disable=SC2010 # what ls lists is the point
	ls "$F" | grep -qx smart || fail "no .pstorage/flash/smart"
	# shellcheck disable=SC2010
	ls "$F" | grep -qx smart.json || fail "no .pstorage/flash/smart.json"
	[ "$(head -n 1 "$F/smart")" = "source: emulated (not an NVMe device)" ] ||
		fail "first line of smart: $(head -n 1 "$F/smart")"
	grep -q '"source":"emulated"' "$F/smart.json" || fail "smart.json: $(cat "$F/smart.json")"
	grep -q '^unsafe shutdowns: *n/a$' "$F/smart" || fail "unsafe shutdowns not n/a"
	grep -q '^backend *file$' "$F/identity" || fail "identity: $(cat "$F/identity")"
	"$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["emulated"] is True' \
		"$F/smart.json" || fail "smart.json is not valid JSON"
	pstor_umount "$M"
}

duw() { sed -n 's/^data units written: *\([0-9]*\).*/\1/p' "$F/smart"; }

case_data_units_written() {
	setup
	before=$(duw)
	check "data units written grow with 64 MiB of incompressible writes (before: $before)"
	ctl "$M" "volume create v 128M"
	rand_file "$T/r" $((64 << 20))
	put_at "$T/r" "$M/volumes/v" 0 conv=fsync
	ctl "$M" sync
	after=$(duw)
	# 64 MiB is 131 units of 512,000 bytes; headers and metadata only add to it.
	[ $((after - before)) -ge 131 ] || fail "data units written went from $before to $after"
	log "data units written: $before -> $after"
	grep -q '^media errors: *0$' "$F/smart" || fail "media errors: $(grep media "$F/smart")"
	grep -q '^critical warning: *0x00 (none)$' "$F/smart" || fail "$(cat "$F/smart")"
	pstor_umount "$M"
}

run_cases
