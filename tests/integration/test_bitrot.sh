#!/bin/bash
# Bit rot on the unmounted image is detected and never returned: bits flipped in data chunks
# (raw and compressed) make reads of exactly those blocks fail with EIO, every other block reads
# back byte-exact (also after new writes), .pstorage/status counts the damage, and `scrub start`
# finds the chunks and the volume offsets that reference them, with progress. Then bits flipped
# in the SQLite metadata region: a map row (healed from its flash copy) and a b-tree page.
# One case per behaviour (lib.sh run_cases); each makes, damages and mounts its own 256 MiB image.
. "$(dirname "$0")/lib.sh"
need_binaries
need dd cmp
IMGMAP=$PSTOR_BUILD_DIR/tests/tools/pstor-imgmap
[ -x "$IMGMAP" ] || skip "$IMGMAP is not built"

IMG=$T/img
M=$T/m
VD=$M/volumes

# verify FILE ORIG [EXPECT]: reads FILE (a volume or snapshot) one 4 KiB block at a time and
# compares every block that reads with ORIG. Prints "exact N eio N blocks B,B,...". Fails at
# the first block whose bytes differ from what was written (the one thing that must never
# happen). EXPECT: "none" (no EIO allowed), or a comma list of the blocks that must fail.
verify() {
	"$PY" - "$@" <<'EOF'
import errno, os, sys
path, orig = sys.argv[1], sys.argv[2]
expect = sys.argv[3] if len(sys.argv) > 3 else ''
want = open(orig, 'rb').read()
fd = os.open(path, os.O_RDONLY)
eio, exact = [], 0
for b in range(len(want) // 4096):
    try:
        got = os.pread(fd, 4096, b * 4096)
    except OSError as e:
        if e.errno != errno.EIO:
            sys.exit('%s block %d: %s (expected EIO or the data)' % (path, b, e))
        eio.append(b)
        continue
    if got != want[b * 4096:(b + 1) * 4096]:
        sys.exit('%s block %d: WRONG BYTES returned (not what was written)' % (path, b))
    exact += 1
os.close(fd)
print('exact %d eio %d blocks %s' % (exact, len(eio), ','.join(map(str, eio)) or '-'))
if expect == 'none' and eio:
    sys.exit('%s: blocks %s fail, none should' % (path, eio))
if expect not in ('', 'none') and sorted(map(int, expect.split(','))) != eio:
    sys.exit('%s: blocks %s fail, expected exactly %s' % (path, eio, expect))
EOF
}

# vcheck LABEL FILE ORIG [EXPECT]: verify, logged; a failure is reported and the test goes on
vcheck() {
	local r
	if r=$(verify "${@:2}"); then
		log "  $(printf '%-9s' "$1:") $r"
	else
		softfail "$1: see the line above"
	fi
}

# json MNT FILE EXPR: a value of .pstorage/FILE (JSON), EXPR in Python over `j`
json() {
	"$PY" -c 'import json, sys; j = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
		"$1/.pstorage/$2" "$3"
}

# scrub_run MNT: starts a scrub, prints its progress until it is done, shows the report
scrub_run() {
	local n=0 st
	ctl "$1" "scrub start"
	while :; do
		st=$(json "$1" scrub.json 'j["state"]')
		log "  scrub: $(json "$1" scrub.json \
			'"%s %s %.1f%% segments %d/%d %d bytes, %d chunks" % (j["state"], j["phase"],
			j["percent"], j["segments_done"], j["segments_total"], j["bytes_checked"],
			j["chunks_checked"])')"
		[ "$st" = running ] || break
		n=$((n + 1))
		[ $n -lt 600 ] || fail "scrub still running after 60 s"
		sleep 0.1
	done
	[ "$st" = "done" ] || fail "scrub ended '$st': $(cat "$1/.pstorage/scrub")"
	sed 's/^/    /' "$1/.pstorage/scrub"
}

# The image with its damage, mounted: mkfs, three volumes (random, compressible text, random),
# a snapshot of rand, sync, unmount; one bit flipped in two raw chunks of rand (blocks B1 and
# B2) and one compressed chunk of text; mounted again.
setup() {
	check "mkfs, three volumes (random, compressible text, random), a snapshot, sync, unmount"
	pstor_mkfs "$IMG" 256M
	pstor_mount "$IMG" "$M"
	rand_file "$T/rand" $((4 << 20))
	text_file "$T/text" $((4 << 20))
	rand_file "$T/keep" $((2 << 20))
	for v in rand text keep; do
		truncate -s "$(stat -c %s "$T/$v")" "$VD/$v"
		put_at "$T/$v" "$VD/$v" 0 conv=notrunc,fsync
	done
	ctl "$M" "snapshot create rand s1"
	ctl "$M" "sync"
	pstor_umount "$M"

	check "flip one bit in two raw chunks of rand and one compressed chunk of text"
	"$IMGMAP" "$IMG" >"$T/map"
	"$PY" - "$T/map" "$IMG" "$T/rand" >"$T/flipped" <<'EOF'
import sys
lines = [l.split() for l in open(sys.argv[1])]
lay = {l[0]: int(l[1]) for l in lines if len(l) == 2}
chunks = [(int(l[1]), int(l[2]), int(l[3]), int(l[4])) for l in lines
          if l[0] == 'chunk' and l[6] == 'ok']
rand = open(sys.argv[3], 'rb').read()
first = {rand[i:i + 64]: i // 4096 for i in range(0, len(rand), 4096)}
img = open(sys.argv[2], 'r+b')
raw, packed = [], []
for cid, off, ln, fl in chunks:
    if fl & 0x80:
        continue  # the fs's own records (page copies, catalogue, log)
    img.seek(off)
    head = img.read(64)
    if fl & 0x03 == 0 and ln == 4096 and head in first:
        raw.append((first[head], cid, off, ln))
    elif fl & 0x03:
        packed.append((None, cid, off, ln))
raw.sort()
if len(raw) < 1000 or not packed:
    sys.exit('found %d raw chunks of rand and %d compressed ones' % (len(raw), len(packed)))
for name, (blk, cid, off, ln) in (('rand', raw[7]), ('rand', raw[700]),
                                  ('text', packed[len(packed) // 2])):
    pos = off + ln // 2
    img.seek(pos)
    b = img.read(1)[0]
    img.seek(pos)
    img.write(bytes([b ^ 0x08]))
    print(name, blk if blk is not None else '-', cid, pos)
print('layout', lay['data_offset'], lay['meta_offset'], lay['segment_size'])
EOF
	while read -r l; do log "  $l"; done <"$T/flipped"
	B1=$(awk '$1 == "rand" { print $2 }' "$T/flipped" | head -n 1)
	B2=$(awk '$1 == "rand" { print $2 }' "$T/flipped" | tail -n 1)
	pstor_mount "$IMG" "$M"
}

case_damage_counted() {
	setup
	check "remount; the damage is counted in .pstorage/status at once"
	grep -E '^(health|scrub) ' "$M/.pstorage/status" | while read -r l; do log "  $l"; done
	[ "$(json "$M" status.json 'j["health"]')" = degraded ] || fail "status health is not degraded"
	[ "$(json "$M" status.json 'j["damaged_references"] + j["checksum_errors"] > 0')" = True ] ||
		fail "status.json counts no damage: $(cat "$M/.pstorage/status.json")"
	pstor_umount "$M"
}

case_eio_reads() {
	setup
	check "reads of the damaged blocks fail with EIO; every other block is exactly what was written"
	expect_errno "dd if='$VD/rand' of=/dev/null bs=4096 skip=$B1 count=1 status=none" EIO
	vcheck rand "$VD/rand" "$T/rand" "$B1,$B2"
	vcheck rand@s1 "$M/snapshots/rand/s1" "$T/rand" "$B1,$B2"
	r=$(verify "$VD/text" "$T/text") || fail "text: see the line above"
	log "  text:     $r"
	[[ $r =~ eio\ [1-9] ]] || fail "no block of text fails, but one of its chunks is damaged"
	vcheck keep "$VD/keep" "$T/keep" none
	errs=$(json "$M" status.json 'j["read_errors"]')
	[ "$errs" -gt 0 ] || fail "status.json read_errors is $errs after failed reads"
	log "  status: read_errors $errs, checksum_errors $(json "$M" status.json 'j["checksum_errors"]')"
	pstor_umount "$M"
}

case_scrub_commands() {
	setup
	check "scrub start twice in one write: the second is EBUSY; scrub stop with none running: ENOENT"
	expect_ctl "$M" EBUSY $'scrub start\nscrub start'
	grep -q "already running" "$M/.pstorage/ctl" || fail "ctl reads '$(cat "$M/.pstorage/ctl")'"
	expect_ctl "$M" OK "scrub stop" ENOENT
	expect_ctl "$M" ENOENT "scrub stop"
	[[ $(json "$M" scrub.json 'j["state"]') =~ ^(done|cancelled)$ ]] || fail "scrub state after stop"
	pstor_umount "$M"
}

case_scrub_finds() {
	setup
	check "scrub start: progress until done; it names the damaged chunks and the affected volumes"
	t0=$(date +%s%N)
	scrub_run "$M"
	log "  scrub start to done: $((($(date +%s%N) - t0) / 1000000)) ms"
	[ "$(json "$M" scrub.json 'j["damaged_chunks"] + j["lost_chunks"]')" -ge 3 ] ||
		softfail "the scrub found fewer than the 3 damaged chunks"
	[ "$(json "$M" scrub.json 'j["affected_blocks"]')" -ge 5 ] ||
		softfail "the scrub maps fewer than 5 blocks (2 of rand, 2 of its snapshot, 1+ of text)"
	for m in volumes/rand snapshots/rand/s1 volumes/text; do
		[ "$(json "$M" scrub.json "[a['map'] for a in j['affected']].count('$m')")" = 1 ] ||
			softfail "scrub does not list $m as affected"
	done
	[ "$(json "$M" scrub.json "sorted(o['offset'] // 4096 for a in j['affected'] \
		if a['map'] == 'volumes/rand' for o in a['offsets'])")" = "[$B1, $B2]" ] ||
		softfail "scrub lists other offsets of rand than blocks $B1 and $B2"
	[ "$(json "$M" scrub.json "[a['map'] for a in j['affected']].count('volumes/keep')")" = 0 ] ||
		softfail "scrub lists keep, which is intact"
	grep '^scrub ' "$M/.pstorage/status" | while read -r l; do log "  status: $l"; done
	grep -E '^pstorfs_(scrub_(damaged|lost|affected)|checksum_errors)' "$M/.pstorage/metrics" |
		while read -r l; do log "  metrics: $l"; done
	[ "$(json "$M" status.json 'j["scrub"]["state"]')" = "done" ] || fail "status.json scrub state"
	# The health grade names what the scrub found, counted: volume blocks whose reads fail
	# are lost data until restored (critical).
	json "$M" analytics/health.json '"\n".join(r["level"] + ": " + r["text"] for r in j["reasons"])' |
		while read -r l; do log "  health: $l"; done
	[ "$(json "$M" analytics/health.json 'j["status"]')" = critical ] ||
		fail "analytics/health.json is not critical after the scrub found failing blocks"
	json "$M" analytics/health.json '[r["text"] for r in j["reasons"]]' |
		grep -q "the last scrub found [0-9]* volume blocks whose reads fail" ||
		fail "analytics/health.json does not count the scrub's failing blocks"
	pstor_umount "$M"
}

fresh() { # a new volume written after the remount
	rand_file "$T/fresh" $((2 << 20))
	truncate -s $((2 << 20)) "$VD/fresh"
	put_at "$T/fresh" "$VD/fresh" 0 conv=notrunc,fsync
	ctl "$M" "sync"
}

case_writes_after() {
	setup
	check "new writes after the remount never make a damaged block read as other data"
	fresh
	vcheck rand "$VD/rand" "$T/rand" "$B1,$B2"
	vcheck rand@s1 "$M/snapshots/rand/s1" "$T/rand" "$B1,$B2"
	vcheck text "$VD/text" "$T/text"
	vcheck fresh "$VD/fresh" "$T/fresh" none
	pstor_umount "$M"
}

# The image of setup, a volume written after the remount, then unmounted and bits flipped in its
# metadata region.
case_metadata() {
	setup
	fresh
	pstor_umount "$M"
	check "metadata: flip a bit inside a map row of the SQLite database, and one in a b-tree page"
	read -r _ DATA_OFF META_OFF _ < <(grep '^layout' "$T/flipped")
	"$PY" - "$IMG" "$META_OFF" "$DATA_OFF" "$T/db" >"$T/metaflip" <<'EOF'
import sqlite3, struct, sys
img, meta, data_off, dbcopy = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
f = open(img, 'r+b')
# pfs_vfs (fs/pfs_vfs.c): [header A][header B][database area][journal area]. A header: magic
# (8 bytes), version, size, seq (u64 at 16), region size, slot size, pad, db offset and
# capacity (u64s at 40, 48), journal offset and capacity, then the files: database size at 72.
# The copy with the higher seq is the current one.
best = None
for slot in (0, 4096):
    f.seek(meta + slot)
    h = f.read(128)
    seq = struct.unpack_from('<Q', h, 16)[0]
    if h[:7] == b'PSTRVFS' and (best is None or seq > struct.unpack_from('<Q', best, 16)[0]):
        best = h
if best is None:
    sys.exit('no pfs_vfs header at the metadata offset')
db_off = struct.unpack_from('<Q', best, 40)[0]
db_size = struct.unpack_from('<Q', best, 72)[0]
f.seek(meta + db_off)
db = f.read(db_size)
open(dbcopy, 'wb').write(db)
page = struct.unpack('>H', db[16:18])[0] or 65536
c = sqlite3.connect(dbcopy)
blob = c.execute('SELECT data FROM pages ORDER BY key LIMIT 1').fetchone()[0]
root = c.execute("SELECT rootpage FROM sqlite_master WHERE name='sqlite_autoindex_maps_1'"
                 ).fetchone()[0]
c.close()
row = db.find(blob)
if row < 0:
    sys.exit('the first map row is not stored contiguously')
def flip(pos, bit):
    f.seek(meta + db_off + pos)
    b = f.read(1)[0]
    f.seek(meta + db_off + pos)
    f.write(bytes([b ^ (1 << bit)]))
flip(row + 40, 2)  # a reference in the first page of a map
hdr_at = (root - 1) * page + (100 if root == 1 else 0)
flip(hdr_at, 0)    # b-tree page type of the maps index: 0x0a (leaf index) -> 0x0b (invalid)
print('row %d page %d (maps index root, page size %d)' % (row, root, page))
EOF
	log "  flipped: $(cat "$T/metaflip")"
	mkdir -p "$M"
	"$PSTORFS" "$IMG" "$M" -f >"$T/meta-mount.log" 2>&1 &
	pid=$!
	n=0
	while ! is_mounted "$M" && kill -0 "$pid" 2>/dev/null && [ $n -lt 300 ]; do
		sleep 0.1
		n=$((n + 1))
	done
	if ! is_mounted "$M"; then
		rc=0
		wait "$pid" || rc=$?
		log "  mount refused the damaged metadata (status $rc):"
		sed 's/^/    /' "$T/meta-mount.log"
		[ "$(grep -c . "$T/meta-mount.log")" -eq 1 ] ||
			fail "mount failed without exactly one clear error line"
	else
		_DPID[$M]=$pid
		_DLOG[$M]=$T/meta-mount.log
		_CLEANUP+=("fuse:$M")
		until stat "$M/.pstorage/ctl" >/dev/null 2>&1; do sleep 0.1; done
		log "  mounted; status: $(grep '^health' "$M/.pstorage/status")"
		vcheck rand "$VD/rand" "$T/rand" "$B1,$B2"
		vcheck text "$VD/text" "$T/text"
		vcheck keep "$VD/keep" "$T/keep" none
		vcheck fresh "$VD/fresh" "$T/fresh" none
		scrub_run "$M"
		[ "$(json "$M" scrub.json 'j["damaged_metadata"]')" -ge 1 ] ||
			fail "the scrub did not find the damaged b-tree page"
		log "  quick_check: $(json "$M" scrub.json 'j["quick_check_first"]')"
		log "  map rows failing their checksum since mount: $(json "$M" scrub.json \
			'j["map_rows_damaged"]'), healed from their flash copy: $(json "$M" scrub.json \
			'j["map_rows_healed"]')"
		pstor_umount "$M"
	fi
}

run_cases
