#!/bin/busybox sh
# tests/vm/guest-init.sh - /init of the QEMU guest that tests/vm/nvme_vm.sh boots: loads the NVMe
# and FUSE modules, then runs pstorfs on QEMU's NVMe controller (conventional namespace 1, zoned
# namespace 2) and prints "NVME_VM: PASS|FAIL|INFO ..." markers and BEGIN/END sections on the
# serial console for the host to check. It must power the guest off however it ends.

/bin/busybox --install -s /bin
export PATH=/usr/local/bin:/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /tmp /mnt /etc
mount -t tmpfs tmpfs /tmp
ln -sf /proc/self/mounts /etc/mtab # libfuse skips its mtab update then
. /etc/nvme_vm.conf

FAILED=0
CONV=/dev/nvme0n1
ZNS=/dev/nvme0n2
M=/mnt
CTL=$M/.pstorage/ctl

now() { cut -d' ' -f1 /proc/uptime; }
T_STEP=$(now)
since() { awk -v a="$T_STEP" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
mark() { echo "NVME_VM: $*"; }
pass() {
	mark "PASS $1 ($(since) s)${2:+: $2}"
	T_STEP=$(now)
}
fail() {
	mark "FAIL $1: $2"
	FAILED=1
	T_STEP=$(now)
}
info() { mark "INFO $*"; }
finish() {
	sync
	mark "DONE failed=$FAILED uptime=$(now)"
	poweroff -f
	sleep 60
}
# SECTION NAME CMD...: the command's output between markers the host prints
section() {
	local name=$1 rc=0
	shift
	echo "NVME_VM: BEGIN $name"
	"$@" >/tmp/section.out 2>&1 || rc=$?
	cat /tmp/section.out
	echo "NVME_VM: END $name (exit $rc)"
	return $rc
}
field() { # FILE LABEL: the value after "LABEL:" (first word)
	sed -n "s/^$2: *\([^ ]*\).*/\1/p" "$1" | head -n 1
}

# ---- boot: modules and devices ---------------------------------------------------------------
for m in $MODULES; do
	insmod "/lib/modules/$m.ko" || fail modules "insmod $m"
done
n=0
while [ ! -b $CONV ] || [ ! -b $ZNS ]; do
	n=$((n + 1))
	if [ $n -gt 300 ]; then
		fail boot "no $CONV and $ZNS after 30 s"
		dmesg | tail -n 40
		finish
	fi
	sleep 0.1
done
info "kernel $(uname -r); $ZNS queue/zoned: $(cat /sys/block/nvme0n2/queue/zoned)"
pass boot "$CONV and $ZNS are there"

# ---- conventional namespace: identity ----------------------------------------------------------
if section IDENTIFY_CONV pstor-nvme-info $CONV; then
	o=/tmp/section.out
	if [ "$(field $o backend)" = nvme ] && [ "$(field $o serial)" = "$SERIAL" ] &&
		grep -q '^model: QEMU NVMe Ctrl$' $o && [ "$(field $o 'lba size')" = 4096 ] &&
		[ "$(field $o deallocate)" = yes ] && grep -q '^source: nvme$' $o; then
		pass identify "nvme backend, serial $SERIAL, 4096-byte LBAs, deallocate supported"
	else
		fail identify "unexpected identity (see IDENTIFY_CONV)"
	fi
else
	fail identify "pstor-nvme-info $CONV failed"
fi

# ---- mkfs deallocates: fill the namespace with a pattern first, then look for it -------------
# 64 MiB from the start of the data area is enough to see it (and fast under TCG).
tr '\0' 'Z' </dev/zero | dd of=$CONV bs=1M count=64 iflag=fullblock oflag=direct 2>/dev/null
if section MKFS mkfs.pstorfs --segment-size 1M $CONV; then
	pass mkfs
else
	fail mkfs "mkfs.pstorfs $CONV failed"
	finish
fi
if section SEGMENTS_AFTER_MKFS pstor-nvme-info --segments $CONV; then
	nz=$(sed -n 's/^data blocks non-zero: \([0-9]*\) .*/\1/p' /tmp/section.out)
	if [ "$nz" = 0 ]; then
		pass dealloc-mkfs "every data block of the pattern written before mkfs reads zero"
	else
		fail dealloc-mkfs "$nz data blocks still hold data after mkfs deallocated them"
	fi
else
	fail dealloc-mkfs "pstor-nvme-info --segments failed"
fi

# ---- mount, SMART before, writes with verification, SMART after -------------------------------
took() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
mount_pstor() {
	local t=$(now) r0
	# The controller counts the reads a mount costs (the NVMe SMART log's host read commands).
	r0=$(pstor-nvme-info $CONV 2>/dev/null | sed -n 's/^host read commands: *//p')
	pstorfs $CONV $M -o compression=none,dedupe=off || return 1
	n=0
	while [ ! -e $CTL ]; do
		n=$((n + 1))
		[ $n -le 300 ] || return 1
		sleep 0.1
	done
	info "mounted in $(took $t) s, $(($(field $M/.pstorage/flash/smart 'host read commands') - r0))" \
		"NVMe read commands; $(grep '^mount ' $M/.pstorage/status)"
}
umount_pstor() {
	local t=$(now)
	umount $M || return 1
	# umount returns before the daemon's destroy has flushed: wait for it to exit.
	n=0
	while pidof pstorfs >/dev/null; do
		n=$((n + 1))
		[ $n -le 600 ] || return 1
		sleep 0.1
	done
	info "unmounted in $(took $t) s"
}
ctl() {
	echo "$*" >$CTL 2>/tmp/ctl.err || fail ctl "'$*': $(cat /tmp/ctl.err; cat $CTL)"
}

if mount_pstor; then
	pass mount
else
	fail mount "pstorfs $CONV $M"
	finish
fi
section IDENTITY_MOUNTED cat $M/.pstorage/flash/identity
section SMART_BEFORE cat $M/.pstorage/flash/smart
cp /tmp/section.out /tmp/smart.before
if [ "$(head -n 1 /tmp/smart.before)" = "source: nvme" ]; then
	pass smart-nvme ".pstorage/flash/smart reads the controller's log"
else
	fail smart-nvme "first line: $(head -n 1 /tmp/smart.before)"
fi
duw0=$(field /tmp/smart.before 'data units written')

T_IO=$(now)
ctl volume create keep 64M
ctl volume create fill "${FILL_MB}M"
if [ "$FIO" = 1 ]; then
	verify() { # the keep volume: write (first) or verify (later) with fio's crc32c
		fio --name=keep --filename=$M/volumes/keep --thread --ioengine=psync --rw=randwrite \
			--bs=64k --size=32M --randrepeat=1 --verify=crc32c --verify_state_save=0 "$@" \
			>/tmp/fio.out 2>&1
		rc=$?
		grep -E 'err=|WRITE:|READ:' /tmp/fio.out
		return $rc
	}
	verify --do_verify=1
else
	verify() {
		if [ "${1:-}" = --do_verify=1 ]; then
			dd if=/dev/urandom of=/tmp/keep.data bs=1M count=32 2>/dev/null
			sha256sum </tmp/keep.data | cut -d' ' -f1 >/tmp/keep.sum
			dd if=/tmp/keep.data of=$M/volumes/keep bs=1M conv=notrunc,fsync 2>/dev/null
			rm /tmp/keep.data
		fi
		[ "$(dd if=$M/volumes/keep bs=1M count=32 2>/dev/null | sha256sum | cut -d' ' -f1)" = \
			"$(cat /tmp/keep.sum)" ]
	}
	verify --do_verify=1
fi
rc=$?
[ $rc = 0 ] && pass write-verify "32 MiB written and verified in volumes/keep (fio=$FIO)" ||
	fail write-verify "keep volume (fio=$FIO): $(tail -n 5 /tmp/fio.out 2>/dev/null)"
# Random data, so that it fills segments as it is: 16 MiB of urandom, written once a position
# with a different first block, and dedupe is off anyway. (busybox head -c takes no M suffix.)
dd if=/dev/urandom of=/tmp/r16 bs=1M count=16 2>/dev/null
: >/tmp/fill.sums
i=0
while [ $i -lt $((FILL_MB / 16)) ]; do
	echo "copy $i" | dd of=/tmp/r16 conv=notrunc 2>/dev/null
	dd if=/tmp/r16 of=$M/volumes/fill bs=1M seek=$((i * 16)) conv=notrunc 2>/tmp/dd.err ||
		fail fill "dd to volumes/fill at $((i * 16)) MiB: $(cat /tmp/dd.err)"
	sha256sum </tmp/r16 >>/tmp/fill.sums
	i=$((i + 1))
done
ctl sync
io_s=$(awk -v a="$T_IO" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
i=0
bad=0
while [ $i -lt $((FILL_MB / 16)) ]; do
	s=$(dd if=$M/volumes/fill bs=1M skip=$((i * 16)) count=16 2>/dev/null | sha256sum)
	[ "$s" = "$(sed -n "$((i + 1))p" /tmp/fill.sums)" ] || bad=$((bad + 1))
	i=$((i + 1))
done
[ $bad = 0 ] && pass fill-verify "${FILL_MB} MiB of random data written (${io_s} s) and read back" ||
	fail fill-verify "$bad of $((FILL_MB / 16)) 16 MiB pieces differ"
section SMART_AFTER cat $M/.pstorage/flash/smart
cp /tmp/section.out /tmp/smart.after
section STATS_AFTER_WRITE cat $M/.pstorage/flash/stats
duw1=$(field /tmp/smart.after 'data units written')
want=$(((FILL_MB + 32) * 1048576 / 512000 * 9 / 10))
if [ -n "$duw0" ] && [ -n "$duw1" ] && [ $((duw1 - duw0)) -ge $want ]; then
	pass smart-counts "data units written $duw0 -> $duw1 (+$((duw1 - duw0)), at least $want)"
else
	fail smart-counts "data units written $duw0 -> $duw1, expected at least +$want"
fi
# The health grade reads the same controller log (percentage used, spare, media errors).
section HEALTH cat $M/.pstorage/analytics/health.json
if grep -q '"smart": {"percentage_used": [0-9]' /tmp/section.out &&
	grep -q '"status": "\(ok\|warning\|critical\)"' /tmp/section.out; then
	pass health-smart "analytics/health.json grades from the controller's SMART log: $(
		grep -o '"status": "[a-z]*"' /tmp/section.out | head -n 1)"
else
	fail health-smart "analytics/health.json has no SMART section or no status"
fi

# ---- remount, verify, delete + GC: the freed segments must be deallocated on the device -------
umount_pstor || fail umount "pstorfs did not exit after umount"
section SEGMENTS_BEFORE_DELETE pstor-nvme-info --segments $CONV
nz1=$(sed -n 's/^data blocks non-zero: \([0-9]*\) .*/\1/p' /tmp/section.out)
mount_pstor || fail mount "remount"
t=$(now)
if verify --do_verify=0 --verify_only; then
	info "verified in $(took $t) s"
	pass remount-verify "volumes/keep verified after unmount and mount"
else
	fail remount-verify "volumes/keep differs after remount"
fi
tr0=$(field $M/.pstorage/flash/stats 'segments trimmed')
ctl volume delete fill
ctl gc start
ctl sync
tr1=$(field $M/.pstorage/flash/stats 'segments trimmed')
section STATS_AFTER_GC cat $M/.pstorage/flash/stats
umount_pstor || fail umount "pstorfs did not exit after umount"
section SEGMENTS_AFTER_GC pstor-nvme-info --segments $CONV
nz2=$(sed -n 's/^data blocks non-zero: \([0-9]*\) .*/\1/p' /tmp/section.out)
freed=$(field /tmp/section.out 'freed segments (FREE header)')
dirty=$(field /tmp/section.out 'freed segments with data after the header')
trimmed=$((tr1 - tr0))
# Every segment GC freed carries a FREE header; its body, deallocated, must read zeros. Not
# every segment trimmed is still FREE at the unmount: GC reopens freed segments for the live
# data it moves, and the close writes a checkpoint (in the ASan run, 4 of 41 were reused).
if [ "$trimmed" -gt 0 ] && [ "$freed" -gt 0 ] && [ "$dirty" = 0 ]; then
	pass dealloc-gc "GC freed and trimmed $trimmed segments; all $freed FREE segments read zero after their header; non-zero data blocks $nz1 -> $nz2"
else
	fail dealloc-gc "segments trimmed $tr0 -> $tr1, FREE segments $freed ($dirty with data), non-zero data blocks $nz1 -> $nz2"
fi

mount_pstor || fail mount "second remount"
if verify --do_verify=0 --verify_only; then
	pass remount-verify-2 "volumes/keep verified after delete, GC and another remount"
else
	fail remount-verify-2 "volumes/keep differs"
fi
section SMART_END cat $M/.pstorage/flash/smart
umount_pstor || fail umount "pstorfs did not exit after umount"
if section FSCK fsck.pstorfs $CONV; then
	pass fsck "fsck.pstorfs finds the namespace clean"
else
	fail fsck "fsck.pstorfs reported problems"
fi

# ---- zoned namespace: identity, zone report, zone ops -----------------------------------------
if section IDENTIFY_ZNS pstor-nvme-info $ZNS; then
	o=/tmp/section.out
	if [ "$(field $o zoned)" = host-managed ] && [ "$(field $o 'zone size')" = $((64 << 20)) ] &&
		[ "$(field $o zones)" = "$ZNS_ZONES" ] &&
		[ "$(field $o 'max open zones')" = "$ZNS_MAX_OPEN" ] &&
		[ "$(field $o 'max active zones')" = "$ZNS_MAX_ACTIVE" ]; then
		pass zns-identify "$ZNS_ZONES zones of 64 MiB, max open $ZNS_MAX_OPEN, max active $ZNS_MAX_ACTIVE"
	else
		fail zns-identify "unexpected zoned identity (see IDENTIFY_ZNS)"
	fi
else
	fail zns-identify "pstor-nvme-info $ZNS failed"
fi
if section ZONE_TEST pstor-nvme-info --zone-test $ZNS; then
	pass zns-zone-ops "write at the write pointer, refused write elsewhere, finish, reset"
else
	fail zns-zone-ops "see ZONE_TEST"
fi
# ---- zoned namespace: pstorfs on zones ----------------------------------------------------------
# Segments are zones; the superblocks and the metadata region live in a random-write log in the
# first zones. Enough random data is written (three passes over one volume, more than the
# namespace holds) that GC must clean segments, which frees them by resetting their zones.
info "$ZNS scheduler: $(cat /sys/block/nvme0n2/queue/scheduler 2>/dev/null)"
zones_count() { # STATE: how many zones the last section's report gives in that state
	sed -n "s/^zones: .*, \([0-9]*\) $1.*/\1/p" /tmp/section.out | head -n 1 | grep . || echo 0
}
zstat() { field $M/.pstorage/flash/stats "$1"; }
zmount() {
	local t=$(now)
	pstorfs $ZNS $M -o compression=none,dedupe=off 2>/tmp/zmount.err || return 1
	n=0
	while [ ! -e $CTL ]; do
		n=$((n + 1))
		[ $n -le 300 ] || return 1
		sleep 0.1
	done
	info "zns: mounted in $(took $t) s; $(grep '^mount ' $M/.pstorage/status)"
}
zpass() { # PASS: write the zns volume's 16 MiB pieces, each with its own first bytes
	local p=$1 i=0
	while [ $i -lt $((ZNS_VOL_MB / 16)) ]; do
		echo "zns pass $p piece $i" | dd of=/tmp/r16 conv=notrunc 2>/dev/null
		dd if=/tmp/r16 of=$M/volumes/z bs=1M seek=$((i * 16)) conv=notrunc 2>/tmp/dd.err ||
			{ fail zns-write "pass $p piece $i: $(cat /tmp/dd.err)"; return 1; }
		sha256sum </tmp/r16 >>/tmp/zsums.$p
		i=$((i + 1))
	done
}
zverify() { # PASS: compare every piece with the sums of that pass
	local i=0 bad=0
	while [ $i -lt $((ZNS_VOL_MB / 16)) ]; do
		s=$(dd if=$M/volumes/z bs=1M skip=$((i * 16)) count=16 2>/dev/null | sha256sum)
		[ "$s" = "$(sed -n "$((i + 1))p" /tmp/zsums.$1)" ] || bad=$((bad + 1))
		i=$((i + 1))
	done
	return $bad
}
ZONES_LOG=""
[ -f /tmp/r16 ] || dd if=/dev/urandom of=/tmp/r16 bs=1M count=16 2>/dev/null
if section ZNS_MKFS mkfs.pstorfs $ZNS; then
	pass zns-mkfs "$(grep segments /tmp/section.out | tr -s ' ')"
	section ZONES_AFTER_MKFS pstor-nvme-info $ZNS
	ZONES_LOG="$ZONES_LOG mkfs: $(grep '^zones: .*,' /tmp/section.out);"
	e0=$(zones_count empty)
	if zmount; then
		pass zns-mount "$(zstat 'zone write streams') write streams in $(zstat 'zones active budget') active zones (device max $(zstat 'zones max active'))"
		ctl volume create z ${ZNS_VOL_MB}M
		t=$(now)
		if zpass 1 && zpass 2 && ctl sync; then
			pass zns-write "$((2 * ZNS_VOL_MB)) MiB written over a ${ZNS_VOL_MB} MiB volume in $(took $t) s"
		fi
		# The controller reports a Zone Append size limit: the FTL's zone writes go as
		# Zone Append, each placed where the FTL expected it (else the write fails).
		app=$(zstat 'zone appends (device)')
		if [ "${app:-0}" -gt 0 ]; then
			pass zns-append "$app writes sent as Zone Append, each placed at the expected LBA"
		else
			fail zns-append "no write went as Zone Append (zone appends: ${app:-none})"
		fi
		section ZNS_STATS_MID cat $M/.pstorage/flash/stats
		umount_pstor || fail zns-umount "pstorfs did not exit"
		section ZONES_MID pstor-nvme-info $ZNS
		ZONES_LOG="$ZONES_LOG after 2 passes: $(grep '^zones: .*,' /tmp/section.out);"
		e1=$(zones_count empty)
		zmount || fail zns-mount "remount: $(cat /tmp/zmount.err)"
		t=$(now)
		zpass 3 && ctl sync && ctl gc start
		ctl sync
		info "zns: pass 3 ($ZNS_VOL_MB MiB) and gc in $(took $t) s"
		section ZNS_STATS_GC cat $M/.pstorage/flash/stats
		cp /tmp/section.out /tmp/zns.stats.gc
		resets=$(zstat 'zone resets')
		cleaned=$(zstat 'gc segments cleaned')
		umount_pstor || fail zns-umount "pstorfs did not exit"
		section ZONES_AFTER_GC pstor-nvme-info $ZNS
		ZONES_LOG="$ZONES_LOG after GC: $(grep '^zones: .*,' /tmp/section.out);"
		e2=$(zones_count empty)
		info "zns: empty zones: after mkfs $e0, after 2 passes $e1, after pass 3 and GC $e2"
		# More was written than the data zones hold, so zones were written again after a
		# reset; every segment GC freed is an empty zone in the controller's report.
		free=$(field /tmp/zns.stats.gc 'segments free')
		if [ "${resets:-0}" -gt 0 ] && [ "${cleaned:-0}" -gt 0 ] &&
			[ "${resets:-0}" -ge "${cleaned:-0}" ] && [ "$e2" -ge "${free:-99}" ] &&
			[ "$e2" -gt 0 ]; then
			pass zns-gc-reset "GC cleaned $cleaned segments and reset $resets zones; empty data zones after GC $e2 (free segments $free)"
		else
			fail zns-gc-reset "gc cleaned ${cleaned:-?}, zone resets ${resets:-?}, empty zones $e1 -> $e2, free segments ${free:-?}"
		fi
		if zmount; then
			if zverify 3; then
				pass zns-remount-verify "volumes/z verified after GC, zone resets and a remount"
			else
				fail zns-remount-verify "pieces differ after remount"
			fi
			section ZNS_STATS_END cat $M/.pstorage/flash/stats
			umount_pstor || fail zns-umount "pstorfs did not exit"
		else
			fail zns-remount-verify "remount: $(cat /tmp/zmount.err)"
		fi
		if section ZNS_FSCK fsck.pstorfs $ZNS; then
			pass zns-fsck "fsck.pstorfs finds the zoned namespace clean"
		else
			fail zns-fsck "fsck.pstorfs reported problems on the zoned namespace"
		fi
	else
		fail zns-mount "pstorfs $ZNS: $(cat /tmp/zmount.err)"
	fi
else
	fail zns-mkfs "mkfs.pstorfs $ZNS: $(tail -n 1 /tmp/section.out)"
fi
info "zns zones:$ZONES_LOG"
section SMART_FINAL pstor-nvme-info $CONV
finish
