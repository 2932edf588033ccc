#!/bin/bash
# tests/vm/nvme_vm.sh - pstorfs on a real NVMe driver stack: boots Debian's kernel in QEMU (TCG)
# with one conventional and one zoned NVMe namespace and an initramfs made of this build's
# binaries (plus the shared libraries they need, busybox and the NVMe/FUSE modules); the guest
# (tests/vm/guest-init.sh) prints NVME_VM markers on the serial console, which this checks.
#
# Exit: 0 pass, 1 fail, 77 skip (only when QEMU cannot run here at all). The kernel package is
# fetched once with `apt-get download` (Debian's registry, nothing else) and kept in
# $PSTOR_VM_CACHE (default: BUILD/nvme-vm-cache). Everything else lives in a temp dir.
#
# Environment: PSTOR_BUILD_DIR (the build tree), PSTOR_VM_TIMEOUT (seconds, default 900),
# PSTOR_VM_FIO (1: fio in the guest when it resolves, default; 0: dd + sha256sum),
# PSTOR_VM_KEEP (1: keep the temp dir with images, console log and initramfs).
# Argument --fetch-kernel: only fill the kernel cache.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${PSTOR_BUILD_DIR:-$SRC/build}
CACHE=${PSTOR_VM_CACHE:-$BUILD/nvme-vm-cache}
TIMEOUT=${PSTOR_VM_TIMEOUT:-900}
WANT_FIO=${PSTOR_VM_FIO:-1}
SERIAL=pstor-nvme-vm
CONV_MB=256
FILL_MB=192
ZNS_MB=640
ZNS_VOL_MB=128 # three passes over it (384 MiB) overflow the 8 data zones: GC resets zones
ZNS_MAX_OPEN=4
ZNS_MAX_ACTIVE=6
# Dependencies come first; t10-pi needs crc-t10dif and crc64-rocksoft, nvme-core needs t10-pi.
MODULES="crc64 crc64-rocksoft crct10dif_common crc-t10dif t10-pi nvme-core nvme fuse"

say() { printf 'nvme_vm: %s\n' "$*"; }
skip() {
	say "SKIP: $*"
	exit 77
}
fail() {
	say "FAIL: $*" >&2
	exit 1
}

# ---- can QEMU run here at all? ----------------------------------------------------------------
QEMU=$(command -v qemu-system-x86_64 || true)
[ -n "$QEMU" ] || skip "qemu-system-x86_64 is not installed (Debian package qemu-system-x86;" \
	"packaging/pstor-dev.sh deps installs it)"
"$QEMU" -accel help 2>/dev/null | grep -qx tcg || skip "$QEMU has no TCG accelerator"
"$QEMU" -device help 2>/dev/null | grep -q '"nvme-ns"' || skip "$QEMU has no nvme-ns device"

for c in cpio dpkg-deb apt-get ldd; do
	command -v $c >/dev/null || fail "$c is missing (packaging/pstor-dev.sh deps installs it)"
done
BUSYBOX=/bin/busybox
file_static() { ! ldd "$1" >/dev/null 2>&1; } # ldd fails on a static binary
[ -x $BUSYBOX ] && file_static $BUSYBOX ||
	fail "a static /bin/busybox is needed (Debian package busybox-static)"
BINS=("$BUILD/fs/pstorfs" "$BUILD/fs/mkfs.pstorfs" "$BUILD/fs/fsck.pstorfs"
	"$BUILD/tests/tools/pstor-nvme-info")
for b in "${BINS[@]}"; do
	[ -x "$b" ] || fail "$b is not built"
done

T0=$(date +%s.%N)
elapsed() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# ---- the kernel: Debian's linux-image-6.1.0-N-amd64, downloaded once -------------------------
kernel_pkg() { # the newest linux-image-6.1.0-N-amd64 apt knows
	apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' 2>/dev/null |
		awk '{ print $1 }' | sort -V | tail -n 1
}

# MODULES and what they depend on, dependencies first: one .ko path a line. The package has no
# modules.dep (depmod makes it at install), so the "depends=" of each module's .modinfo is read
# directly. Module names may use - or _ in either place.
declare -A KO_PATH=() KO_DONE=()
module_closure() { # MODDIR
	local f n
	while read -r f; do
		n=$(basename "$f")
		n=${n%%.ko*}
		KO_PATH[${n//-/_}]=$f
	done < <(find "$1" -name '*.ko*')
	for n in $MODULES; do
		module_add "${n//-/_}"
	done
}
module_add() { # NAME
	local n=$1 f d
	[ -z "${KO_DONE[$n]:-}" ] || return 0
	f=${KO_PATH[$n]:-}
	[ -n "$f" ] || fail "the kernel package has no module $n"
	KO_DONE[$n]=1
	for d in $(ko_cat "$f" | tr '\0' '\n' | sed -n 's/^depends=//p' | tr ',' ' '); do
		module_add "${d//-/_}"
	done
	echo "$f"
}
ko_cat() { # FILE: the module, decompressed
	case $1 in
	*.xz) xz -dc "$1" ;;
	*.zst) zstd -qdc "$1" ;;
	*) cat "$1" ;;
	esac
}

fetch_kernel() {
	local pkg deb tmp ver p name
	mkdir -p "$CACHE"
	if [ -f "$CACHE/ready" ]; then
		KDIR=$CACHE/$(cat "$CACHE/ready")
		[ -f "$KDIR/vmlinuz" ] && return 0
	fi
	pkg=$(kernel_pkg)
	if [ -z "$pkg" ]; then
		# An empty package list (a fresh machine): update it once, as pstor-dev.sh deps does.
		[ "$(id -u)" = 0 ] && apt-get update -q >/dev/null 2>&1 || true
		pkg=$(kernel_pkg)
	fi
	[ -n "$pkg" ] || fail "apt knows no linux-image-6.1.0-*-amd64 package (apt-get update?)"
	deb=$(ls "$CACHE"/"$pkg"_*.deb 2>/dev/null | head -n 1 || true)
	if [ -z "$deb" ]; then
		say "downloading $pkg with apt-get download (once; cached in $CACHE)"
		rm -f "$CACHE"/*.deb
		(cd "$CACHE" && apt-get -q -o APT::Sandbox::User=root download "$pkg" >/dev/null) ||
			fail "apt-get download $pkg failed"
		deb=$(ls "$CACHE"/"$pkg"_*.deb | head -n 1)
	fi
	tmp=$CACHE/extract
	rm -rf "$tmp"
	mkdir -p "$tmp"
	dpkg-deb -x "$deb" "$tmp"
	ver=$(ls "$tmp/lib/modules" | head -n 1)
	KDIR=$CACHE/$ver
	rm -rf "$KDIR"
	mkdir -p "$KDIR/modules"
	cp "$tmp/boot/vmlinuz-$ver" "$KDIR/vmlinuz"
	: >"$KDIR/modules.order"
	module_closure "$tmp/lib/modules/$ver/kernel" >"$tmp/closure" ||
		fail "cannot resolve the modules $MODULES in $pkg"
	while read -r p; do
		name=$(basename "$p")
		name=${name%%.ko*}
		ko_cat "$p" >"$KDIR/modules/$name.ko"
		echo "$name" >>"$KDIR/modules.order"
	done <"$tmp/closure"
	rm -rf "$tmp"
	echo "$ver" >"$CACHE/ready"
}

# --fetch-kernel: only fetch and unpack the kernel into the cache, then exit (pstor-dev.sh runs
# it beside the unit suites, so the test itself does not wait on the network).
if [ "${1:-}" = --fetch-kernel ]; then
	fetch_kernel
	say "kernel $(cat "$CACHE/ready") is in $CACHE ($(elapsed) s)"
	exit 0
fi

# ---- the initramfs ----------------------------------------------------------------------------
copy_with_libs() { # STAGE BINARY DEST: the binary and every shared library it loads
	local stage=$1 bin=$2 dest=$3 lib
	install -D -m 0755 "$bin" "$stage$dest"
	while read -r lib; do
		if [ -n "$lib" ] && [ ! -e "$stage$lib" ]; then
			install -D -m 0755 "$lib" "$stage$lib"
		fi
	done < <(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
}

build_initramfs() { # STAGE OUT
	local stage=$1 out=$2 b fio=0
	mkdir -p "$stage"/{bin,sbin,etc,proc,sys,dev,tmp,mnt,lib/modules,usr/local/bin}
	install -m 0755 $BUSYBOX "$stage/bin/busybox"
	install -m 0755 "$SRC/tests/vm/guest-init.sh" "$stage/init"
	for b in "${BINS[@]}"; do
		copy_with_libs "$stage" "$b" "/usr/local/bin/$(basename "$b")"
	done
	if [ "$WANT_FIO" = 1 ] && command -v fio >/dev/null &&
		! ldd "$(command -v fio)" | grep -q 'not found'; then
		copy_with_libs "$stage" "$(command -v fio)" /usr/local/bin/fio
		fio=1
	fi
	cp "$KDIR"/modules/*.ko "$stage/lib/modules/"
	cat >"$stage/etc/nvme_vm.conf" <<-EOF
		SERIAL=$SERIAL
		CONV_MB=$CONV_MB
		FILL_MB=$FILL_MB
		ZNS_ZONES=$((ZNS_MB / 64))
		ZNS_VOL_MB=$ZNS_VOL_MB
		ZNS_MAX_OPEN=$ZNS_MAX_OPEN
		ZNS_MAX_ACTIVE=$ZNS_MAX_ACTIVE
		FIO=$fio
		MODULES="$(tr '\n' ' ' <"$KDIR/modules.order")"
	EOF
	# ASan builds: the guest has no symbolizer and no time for leak reports at exit.
	echo 'export ASAN_OPTIONS=detect_leaks=0' >>"$stage/etc/nvme_vm.conf"
	(cd "$stage" && find . | cpio -o -H newc --quiet) >"$out"
	say "initramfs: $(($(stat -c %s "$out") >> 20)) MiB (fio in the guest: $fio)"
}

# ---- run --------------------------------------------------------------------------------------
RUN=$(mktemp -d "${TMPDIR:-/var/tmp}/pstor-nvme-vm.XXXXXX")
QPID=""
cleanup() {
	[ -n "$QPID" ] && kill "$QPID" 2>/dev/null || true
	if [ "${PSTOR_VM_KEEP:-0}" = 1 ]; then
		say "kept $RUN"
	else
		rm -rf "$RUN"
	fi
}
trap cleanup EXIT

fetch_kernel
say "kernel $(basename "$KDIR") ($(elapsed) s)"
build_initramfs "$RUN/stage" "$RUN/initrd.cpio"
rm -rf "$RUN/stage"
truncate -s ${CONV_MB}M "$RUN/conv.img"
truncate -s ${ZNS_MB}M "$RUN/zns.img"

say "booting QEMU (TCG, 2 CPUs): namespace 1 conventional ${CONV_MB} MiB (4 KiB LBAs)," \
	"namespace 2 zoned ${ZNS_MB} MiB (64 MiB zones, 512-byte LBAs)"
TQ=$(date +%s.%N)
# discard=unmap passes Dataset Management deallocate on to the image (as holes); QEMU's NVMe
# namespaces then read deallocated blocks as zeros.
"$QEMU" -accel tcg -machine q35 -cpu max -smp 2 -m 2048 -nodefaults -display none \
	-no-reboot -serial stdio -monitor none \
	-kernel "$KDIR/vmlinuz" -initrd "$RUN/initrd.cpio" \
	-append "console=ttyS0 loglevel=4 panic=-1 rdinit=/init" \
	-drive "file=$RUN/conv.img,if=none,id=conv,format=raw,cache=unsafe,discard=unmap" \
	-drive "file=$RUN/zns.img,if=none,id=zns,format=raw,cache=unsafe,discard=unmap" \
	-device nvme,serial=$SERIAL,id=nvme0 \
	-device nvme-ns,drive=conv,bus=nvme0,nsid=1,logical_block_size=4096,physical_block_size=4096 \
	-device "nvme-ns,drive=zns,bus=nvme0,nsid=2,zoned=true,zoned.zone_size=64M,zoned.max_open=$ZNS_MAX_OPEN,zoned.max_active=$ZNS_MAX_ACTIVE" \
	</dev/null >"$RUN/console.log" 2>&1 &
QPID=$!
# Stream the console while it runs, so a hang shows where it is.
tail -n +1 -f "$RUN/console.log" --pid=$QPID &
TPID=$!
rc=0
n=0
while kill -0 $QPID 2>/dev/null; do
	sleep 1
	n=$((n + 1))
	if [ $n -ge "$TIMEOUT" ]; then
		kill $QPID 2>/dev/null || true
		rc=124
		break
	fi
done
wait $QPID 2>/dev/null || [ $rc = 124 ] || rc=$?
QPID=""
wait $TPID 2>/dev/null || true
vm_s=$(awk -v a="$TQ" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
[ $rc = 124 ] && fail "the guest did not finish within $TIMEOUT s (PSTOR_VM_TIMEOUT)"
[ $rc = 0 ] || fail "QEMU exited with status $rc"

# ---- what the guest said ----------------------------------------------------------------------
LOG=$RUN/console.log
tr -d '\r' <"$LOG" >"$LOG.clean"
say "---- summary ----"
for s in IDENTIFY_CONV SMART_BEFORE SMART_AFTER SEGMENTS_AFTER_MKFS SEGMENTS_BEFORE_DELETE \
	SEGMENTS_AFTER_GC IDENTIFY_ZNS ZONE_TEST ZNS_MKFS ZONES_AFTER_MKFS ZONES_MID ZNS_STATS_GC \
	ZONES_AFTER_GC ZNS_FSCK; do
	sed -n "/^NVME_VM: BEGIN $s\$/,/^NVME_VM: END $s /p" "$LOG.clean"
done
grep '^NVME_VM: \(PASS\|FAIL\|INFO\|DONE\)' "$LOG.clean" || true
say "backing images on the host: conventional $(($(stat -c %b "$RUN/conv.img") * 512 >> 20))" \
	"MiB allocated of $CONV_MB MiB, zoned $(($(stat -c %b "$RUN/zns.img") * 512 >> 20))" \
	"MiB allocated of $ZNS_MB MiB"
say "timings: total $(elapsed) s, guest $vm_s s (boot to power-off under TCG)"

grep -q '^NVME_VM: DONE' "$LOG.clean" || fail "the guest never finished (no DONE marker)"
if grep -q '^NVME_VM: FAIL' "$LOG.clean"; then
	fail "the guest reported failures: $(grep '^NVME_VM: FAIL' "$LOG.clean" | tr '\n' ';')"
fi
missing=""
for step in boot identify mkfs dealloc-mkfs mount smart-nvme write-verify fill-verify \
	smart-counts health-smart remount-verify dealloc-gc remount-verify-2 fsck zns-identify zns-zone-ops \
	zns-mkfs zns-mount zns-write zns-gc-reset zns-remount-verify zns-fsck; do
	grep -q "^NVME_VM: PASS $step (" "$LOG.clean" || missing="$missing $step"
done
[ -z "$missing" ] || fail "steps that did not pass:$missing"
say "PASS"
