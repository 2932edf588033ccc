#!/bin/bash
# Byte-exact reads and writes of a volume file at odd offsets and sizes, holes, punch-hole,
# fsync (and that what fsync acknowledged survives kill -9), SEEK_DATA/SEEK_HOLE.
# Every write goes to the volume and to a reference file; both must read back identical,
# also after a remount (so the page cache cannot hide a daemon bug). One case per behaviour
# (lib.sh run_cases), each on its own mount.
. "$(dirname "$0")/lib.sh"
need_binaries
need dd cmp fallocate

IMG=$T/img
M=$T/m
V=$M/volumes/v
REF=$T/ref
SIZE=$((64 << 20))

setup() { # a fresh namespace and volume v (and its reference) of SIZE
	pstor_mkfs "$IMG" 2G
	pstor_mount "$IMG" "$M"
	truncate -s $SIZE "$V"
	truncate -s $SIZE "$REF"
}

n=0
wr() { # OFFSET LEN [dd flags]: random bytes to the volume and to the reference
	local off=$1 len=$2 f
	shift 2
	n=$((n + 1))
	f=$T/chunk.$n
	rand_file "$f" "$len"
	put_at "$f" "$V" "$off" "$@"
	put_at "$f" "$REF" "$off"
	cmp "$f" <(get_at "$V" "$off" "$len") || fail "$len bytes at $off read back differently"
}

verify_all() { # WHEN
	check "whole volume equals the reference ($1)"
	cmp "$REF" "$V" || fail "volume differs from the reference ($1)"
	check "300 reads at random odd offsets and lengths equal the reference ($1)"
	"$PY" - "$V" "$REF" <<'EOF' || fail "random reads differ ($1)"
import os, random, sys
v = os.open(sys.argv[1], os.O_RDONLY)
r = os.open(sys.argv[2], os.O_RDONLY)
size = os.fstat(r).st_size
rnd = random.Random(7)
for i in range(300):
    ln = rnd.choice([1, 511, 4095, 4097, 65537, 300001])
    off = rnd.randrange(0, size - ln)
    a, b = os.pread(v, ln, off), os.pread(r, ln, off)
    if a != b:
        sys.exit('pread(%d, %d) differs' % (ln, off))
EOF
}

# Writes at odd offsets and sizes, each read back at once.
unaligned_writes() {
	check "777 bytes at seek=1 bs=777 (offset 777)"
	rand_file "$T/a" 777
	dd if="$T/a" of="$V" bs=777 seek=1 conv=notrunc status=none
	dd if="$T/a" of="$REF" bs=777 seek=1 conv=notrunc status=none
	cmp "$T/a" <(dd if="$V" bs=777 skip=1 count=1 status=none) || fail "777 bytes at 777"
	cmp <(head -c 777 /dev/zero) <(get_at "$V" 0 777) || fail "bytes before offset 777 not zero"
	cmp <(head -c $((8192 - 1554)) /dev/zero) <(get_at "$V" 1554 $((8192 - 1554))) ||
		fail "bytes after the 777-byte write not zero"

	check "4095-byte writes across block boundaries"
	for k in $(seq 0 11); do
		wr $((65536 - 7 + k * 4095)) 4095
	done

	check "a 5 MiB random write at offset 12345 (overlaps the writes above)"
	wr 12345 $((5 << 20))

	check "overwrites inside the 5 MiB region: 1 byte, 4096 unaligned, 100000 bytes"
	wr 1000001 1
	wr 2000003 4096
	wr 3000000 100000

	check "the last 1000 bytes of the volume and the last 4 KiB block"
	wr $((SIZE - 1000)) 1000
	wr $((SIZE - 4096 - 4096)) 4096
}

sync_writes() {
	check "dd conv=fsync and oflag=sync writes"
	wr $((20 << 20)) $((1 << 20)) conv=fsync,notrunc
	wr $((22 << 20)) 300000 oflag=sync,seek_bytes
}

punch_zero_shrink() {
	check "unaligned punch-hole and zero-range; shrink then grow zeroes the tail"
	fallocate --punch-hole -o 1000 -l 10000 "$V"
	fallocate --punch-hole -o 1000 -l 10000 "$REF"
	fallocate -z -o 100000 -l 5000 "$V"
	fallocate -z -o 100000 -l 5000 "$REF"
	wr $((60 << 20)) $((2 << 20))
	truncate -s $(((60 << 20) + 5555)) "$V"
	truncate -s $(((60 << 20) + 5555)) "$REF"
	truncate -s $SIZE "$V"
	truncate -s $SIZE "$REF"
	cmp "$REF" "$V" || fail "volume differs after punch/zero-range/shrink+grow"
}

copy_file_range() {
	check "copy_file_range between volumes, aligned and unaligned"
	truncate -s 16M "$M/volumes/w"
	truncate -s 16M "$T/refw"
	"$PY" - "$V" "$M/volumes/w" "$REF" "$T/refw" <<'EOF' || fail "copy_file_range"
import os, sys
v, w = os.open(sys.argv[1], os.O_RDONLY), os.open(sys.argv[2], os.O_RDWR)
r, rw = os.open(sys.argv[3], os.O_RDONLY), os.open(sys.argv[4], os.O_RDWR)
for so, do, ln in [(0, 0, 1 << 20), (123, 4567, 3000000), (8192, 12288, 2 << 20),
                   (12345, 4096, 5000), (4096, 8 << 20, 4096)]:
    n = 0
    while n < ln:
        k = os.copy_file_range(v, w, ln - n, so + n, do + n)
        if k <= 0:
            sys.exit('copy_file_range(%d, %d, %d) stopped at %d' % (so, do, ln, n))
        n += k
    os.pwrite(rw, os.pread(r, ln, so), do)
EOF
	cmp "$T/refw" "$M/volumes/w" || fail "copy_file_range result differs from the reference"
}

sparse_volume() { # volumes/sparse: 4 KiB at 1 MiB and 64 KiB at 8 MiB of 16 MiB
	truncate -s 16M "$M/volumes/sparse"
	rand_file "$T/s1" 4096
	rand_file "$T/s2" 65536
	put_at "$T/s1" "$M/volumes/sparse" $((1 << 20))
	put_at "$T/s2" "$M/volumes/sparse" $((8 << 20))
}

case_create_reads_zeros() {
	pstor_mkfs "$IMG" 2G
	pstor_mount "$IMG" "$M"
	check "truncate -s creates a volume of that size"
	truncate -s $SIZE "$V"
	[ "$(stat -c %s "$V")" = $SIZE ] || fail "stat -c %s: $(stat -c %s "$V"), expected $SIZE"
	check "a fresh volume reads as zeros"
	cmp <(head -c $SIZE /dev/zero) "$V" || fail "fresh volume is not all zeros"
	pstor_umount "$M"
}

case_unaligned_writes() {
	setup
	unaligned_writes
	check "holes between the writes read as zeros"
	cmp <(head -c $((8 << 20)) /dev/zero) <(get_at "$V" $((40 << 20)) $((8 << 20))) ||
		fail "hole at 40 MiB is not zeros"
	[ "$(stat -c %s "$V")" = $SIZE ] || fail "size changed to $(stat -c %s "$V")"
	verify_all "after the writes"
	pstor_umount "$M"
}

case_sync_writes() {
	setup
	sync_writes
	verify_all "after the writes"
	pstor_umount "$M"
}

case_punch_zero_shrink() {
	setup
	unaligned_writes
	punch_zero_shrink
	verify_all "after punch, zero-range, shrink and grow"
	pstor_umount "$M"
}

case_copy_file_range() {
	setup
	unaligned_writes
	copy_file_range
	pstor_umount "$M"
}

case_punch_frees_space() {
	setup
	check "fallocate --punch-hole of 8 MiB frees written/unique space"
	wr $((48 << 20)) $((8 << 20))
	ctl "$M" sync
	w0=$(vol_attr "$M" v written)
	u0=$(vol_attr "$M" v unique)
	d0=$(df_used "$M")
	fallocate --punch-hole -o $((48 << 20)) -l $((8 << 20)) "$V"
	fallocate --punch-hole -o $((48 << 20)) -l $((8 << 20)) "$REF"
	ctl "$M" sync
	w1=$(vol_attr "$M" v written)
	u1=$(vol_attr "$M" v unique)
	d1=$(df_used "$M")
	log "written $w0 -> $w1, unique $u0 -> $u1, df used $d0 -> $d1"
	[ $((w0 - w1)) -ge $((8 << 20)) ] || fail "written went from $w0 to $w1 after punching 8 MiB"
	[ $((u0 - u1)) -ge $((7 << 20)) ] || fail "unique went from $u0 to $u1 after punching 8 MiB"
	cmp <(head -c $((8 << 20)) /dev/zero) <(get_at "$V" $((48 << 20)) $((8 << 20))) ||
		fail "punched range does not read as zeros"
	[ "$(stat -c %s "$V")" = $SIZE ] || fail "punch-hole changed the size"
	pstor_umount "$M"
}

case_seek_data_hole() {
	setup
	check "SEEK_DATA/SEEK_HOLE on a sparse volume"
	sparse_volume
	"$PY" - "$M/volumes/sparse" <<'EOF' || fail "SEEK_DATA/SEEK_HOLE"
import errno, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
os.fsync(fd)
M = 1 << 20
want = [(os.SEEK_DATA, 0, M), (os.SEEK_HOLE, M, M + 4096), (os.SEEK_DATA, M + 4096, 8 * M),
        (os.SEEK_HOLE, 8 * M, 8 * M + 65536), (os.SEEK_HOLE, 10 * M, 10 * M)]
for how, off, exp in want:
    got = os.lseek(fd, off, how)
    name = 'SEEK_DATA' if how == os.SEEK_DATA else 'SEEK_HOLE'
    if got != exp:
        sys.exit('lseek(%d, %s) = %d, expected %d' % (off, name, got, exp))
try:
    got = os.lseek(fd, 8 * M + 65536, os.SEEK_DATA)
    sys.exit('lseek(SEEK_DATA) after the last data = %d, expected ENXIO' % got)
except OSError as e:
    if e.errno != errno.ENXIO:
        raise
EOF
	check "cp --sparse=always of the sparse volume: same bytes, few blocks"
	cp --sparse=always "$M/volumes/sparse" "$T/sparse.copy"
	cmp "$M/volumes/sparse" "$T/sparse.copy" || fail "sparse copy differs"
	[ "$(du -k "$T/sparse.copy" | cut -f1)" -le 512 ] || fail "sparse copy is not sparse"
	pstor_umount "$M"
}

case_fsync_survives_kill9() {
	setup
	unaligned_writes
	sync_writes
	punch_zero_shrink
	check "data acknowledged by fsync survives kill -9 of the daemon"
	ctl "$M" sync # everything before is durable; the next write only by its own fsync
	rand_file "$T/durable" $((2 << 20))
	put_at "$T/durable" "$V" $((30 << 20)) conv=fsync,notrunc
	put_at "$T/durable" "$REF" $((30 << 20))
	pstor_kill9 "$M"
	pstor_mount "$IMG" "$M"
	cmp "$T/durable" <(get_at "$V" $((30 << 20)) $((2 << 20))) ||
		fail "fsync'd data lost or changed after kill -9"
	verify_all "after kill -9 and remount"
	pstor_umount "$M"
}

case_remount() {
	setup
	unaligned_writes
	sync_writes
	punch_zero_shrink
	copy_file_range
	sparse_volume
	cp --sparse=always "$M/volumes/sparse" "$T/sparse.copy"
	check "clean unmount and remount keep every byte"
	pstor_umount "$M"
	pstor_mount "$IMG" "$M"
	verify_all "after remount"
	cmp "$T/sparse.copy" "$M/volumes/sparse" || fail "sparse volume differs after remount"
	cmp "$T/refw" "$M/volumes/w" || fail "the copy_file_range volume differs after remount"
	pstor_umount "$M"
}

run_cases
