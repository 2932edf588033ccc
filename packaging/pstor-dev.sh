#!/bin/bash
# packaging/pstor-dev.sh - one entry point for developers and CI on Debian 12 (as root):
#   deps    install the Debian packages in packaging/debian-packages.txt
#   build   deps + configure and build (warnings are errors) in build/
#   test    build + the whole test suite (the QEMU NVMe guest only in the ASan pass), again
#           under ASan+UBSan (build-asan/), the stress programs under ThreadSanitizer
#           (build-tsan/), and the libFuzzer targets (build-fuzz/)
#   fuzz    deps + only the libFuzzer step of `test` (build-fuzz/)
#   bench   build + pstor-bench (engine and FTL figures)
#   install build + install pstorfs, mkfs.pstorfs to /usr/local/sbin and mount.pstorfs to /sbin
#   demo    install + format a sparse image, mount it, create a demo volume, print the status
#   deb     build + the pstorfs .deb (CPack, packaging/CMakeLists.txt) in build/; prints its path
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
jobs=$(nproc 2>/dev/null || echo 2)

deps() {
	local pkgs
	pkgs=$(grep -v '^#' "$here/packaging/debian-packages.txt" | tr '\n' ' ')
	local missing=""
	for p in $pkgs; do
		dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
	done
	if [ -n "$missing" ]; then
		echo "pstor-dev: installing:$missing"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -q
		# shellcheck disable=SC2086
		apt-get install -y -q --no-install-recommends $missing
	fi
}

build_in() { # DIR [cmake options...]
	local dir=$1
	shift
	cmake -S "$here" -B "$here/$dir" -DPSTOR_WERROR=ON "$@" >/dev/null
	cmake --build "$here/$dir" -j "$jobs"
}

run_tests_in() { # DIR [ctest options...]
	local dir=$1
	shift
	(cd "$here/$dir" && ctest --output-on-failure --timeout 900 "$@")
}

install_bins() {
	install -m 0755 "$here/build/fs/pstorfs" "$here/build/fs/mkfs.pstorfs" /usr/local/sbin/
	install -m 0755 "$here/packaging/mount.pstorfs" /usr/local/sbin/mount.pstorfs
	ln -sf /usr/local/sbin/mount.pstorfs /sbin/mount.pstorfs
}

# libFuzzer targets (tests/fuzz, clang): each runs a fixed number of inputs over a scratch copy
# of its checked-in corpus (git's copy never changes), or for PSTOR_FUZZ_SECONDS (default 25)
# if that comes first, so the time is bounded on a slow machine too. Any crash, leak,
# sanitizer report, timeout or out-of-memory fails; the input that did it is kept in
# build-fuzz/fuzz-artifacts/ (replay: build-fuzz/tests/fuzz/TARGET FILE).
# PSTOR_FUZZ_RUNS scales every target's runs (percent, default 100).
run_fuzzers() {
	local pct=${PSTOR_FUZZ_RUNS:-100} secs=${PSTOR_FUZZ_SECONDS:-25} work art t runs maxlen
	CC=clang cmake -S "$here" -B "$here/build-fuzz" -DPSTOR_WERROR=ON -DPSTOR_FUZZ=ON >/dev/null
	cmake --build "$here/build-fuzz" -j "$jobs" --target fuzz
	work=$(mktemp -d "${TMPDIR:-/tmp}/pstor-fuzz.XXXXXX")
	art="$here/build-fuzz/fuzz-artifacts"
	mkdir -p "$art"
	# target  runs  max input length
	while read -r t runs maxlen; do
		local dict=()
		[ -f "$here/tests/fuzz/$t.dict" ] && dict=(-dict="$here/tests/fuzz/$t.dict")
		cp -r "$here/tests/fuzz/corpus/$t" "$work/$t"
		runs=$((runs * pct / 100))
		echo "pstor-dev: fuzz $t: $runs runs or $secs s"
		if ! UBSAN_OPTIONS=print_stacktrace=1 "$here/build-fuzz/tests/fuzz/$t" \
			-runs="$runs" -max_total_time="$secs" -max_len="$maxlen" -rss_limit_mb=2048 -timeout=60 \
			-print_final_stats=1 -artifact_prefix="$art/$t-" "${dict[@]}" "$work/$t" \
			</dev/null >"$work/$t.log" 2>&1; then
			tail -n 60 "$work/$t.log"
			echo "pstor-dev: fuzz $t failed (log: $work/$t.log; a failing input, if any," \
				"is in $art)" >&2
			return 1
		fi
		grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$work/$t.log" || true
	done <<-EOF
		fuzz_superblock 100000 1025
		fuzz_segment 20000 16384
		fuzz_metaregion 20000 16384
		fuzz_ctl 50000 512
		fuzz_nvme 200000 5200
		fuzz_log 2000000 4096
		fuzz_catalog 3500000 4096
		fuzz_pfs_format 3000000 2100
		fuzz_history_csv 300000 8192
		fuzz_recorded 1000000 4096
		fuzz_api_body 300000 4096
	EOF
	rm -rf "$work"
}

# The ASan+UBSan build and its unit suites (no mounts, no timing): they run beside the normal
# pass; the sanitizer pass proper then has only the integration tests and the QEMU guest.
asan_build_and_units() {
	local fetch rc=0
	# -O1, as AddressSanitizer's documentation advises: the flash unit suite runs in 47 s
	# instead of 66 (the integration tests, mostly kernel time, the same either way).
	build_in build-asan -DPSTOR_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-g -O1"
	# The QEMU guest's kernel package, fetched while the unit suites run: the guest test of
	# the sanitizer pass would otherwise hold one of its two slots for the download. A
	# failure here is only reported: the test fetches again and fails on its own.
	PSTOR_BUILD_DIR="$here/build-asan" bash "$here/tests/vm/nvme_vm.sh" --fetch-kernel \
		>"$here/build-logs/fetch-kernel.log" 2>&1 &
	fetch=$!
	echo "pstor-dev: the unit suites and stress programs under AddressSanitizer + UBSan"
	ASAN_OPTIONS=detect_leaks=1 run_tests_in build-asan -LE 'integration|vm' || rc=$?
	wait $fetch || echo "pstor-dev: fetching the guest's kernel failed or was skipped" \
		"(build-logs/fetch-kernel.log): nvme_vm fetches it itself"
	return $rc
}

tsan_and_fuzz() {
	echo "pstor-dev: the stress programs under ThreadSanitizer"
	build_in build-tsan -DPSTOR_SANITIZE_THREAD=ON -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-g -O1"
	TSAN_OPTIONS=halt_on_error=1 run_tests_in build-tsan
	echo "pstor-dev: the libFuzzer targets (parsers of on-disk structures and of ctl)"
	run_fuzzers
}

# Background steps of `test`: STEP's output goes to build-logs/STEP.log and is printed when it
# is waited for, so it does not interleave with the tests'.
declare -A bg_pids=()
bg_start() { # STEP FUNCTION [ARGS...]
	local step=$1
	shift
	mkdir -p "$here/build-logs"
	# The step's own finish time goes into its log: bg_wait reports only when it was waited
	# for, which says nothing about how much of the pass it overlapped.
	nice -n 19 bash -c "$(declare -f build_in run_tests_in run_fuzzers tsan_and_fuzz asan_build_and_units)
		here='$here' jobs='$jobs'; set -euo pipefail; \"\$@\"
		echo \"pstor-dev: $step finished at \$((\$(date +%s) - $t_start)) s\"" _ "$@" \
		>"$here/build-logs/$step.log" 2>&1 &
	bg_pids[$step]=$!
}

bg_wait() { # STEP: fails the run when the step failed
	local rc=0
	wait "${bg_pids[$1]}" || rc=$?
	cat "$here/build-logs/$1.log"
	[ $rc = 0 ] || {
		echo "pstor-dev: $1 failed (exit $rc; log: build-logs/$1.log)" >&2
		exit 1
	}
	phase "$1 done"
}

t_start=$(date +%s)
phase() { echo "pstor-dev: $1 at $(($(date +%s) - t_start)) s"; }

# The .deb of build/ (cpack there); its path on stdout, cpack's own output only on failure.
deb() {
	local out pkg
	out=$(cd "$here/build" && cpack 2>&1) || {
		printf '%s\n' "$out" >&2
		echo "pstor-dev: cpack failed" >&2
		return 1
	}
	pkg=$(printf '%s\n' "$out" | sed -n 's/^CPack: - package: \(.*\.deb\) generated\.$/\1/p')
	[ -n "$pkg" ] || {
		printf '%s\n' "$out" >&2
		echo "pstor-dev: cpack made no .deb" >&2
		return 1
	}
	echo "$pkg"
}

# The embedded default: a sparse 64 GiB image, mounted on /mnt/pstorfs, with one volume.
demo() {
	local img=${PSTOR_DEMO_IMAGE:-/var/lib/pstorfs/demo.img}
	local mnt=${PSTOR_DEMO_MOUNT:-/mnt/pstorfs}
	mkdir -p "$(dirname "$img")" "$mnt"
	if ! mountpoint -q "$mnt"; then
		if [ ! -s "$img" ]; then
			mkfs.pstorfs --size 64G "$img"
		fi
		pstorfs "$img" "$mnt"
	fi
	if [ ! -e "$mnt/volumes/demo" ]; then
		echo "volume create demo 10G" >"$mnt/.pstorage/ctl"
		# Some real data, twice, so dedupe and compression have something to show.
		local data
		data=$(mktemp /var/tmp/pstor-demo.XXXXXX)
		tar -cf "$data" -C /usr share/doc include 2>/dev/null || true
		truncate -s '<128M' "$data"
		dd if="$data" of="$mnt/volumes/demo" bs=1M conv=notrunc,fsync status=none
		dd if="$data" of="$mnt/volumes/demo" bs=1M seek=512 conv=notrunc,fsync status=none
		rm -f "$data"
	fi
	echo "pstor-dev: pstorfs is mounted on $mnt (image $img); unmount with: fusermount3 -u $mnt"
	ls -l "$mnt/volumes"
	cat "$mnt/.pstorage/status"
}

case "${1:-test}" in
deps)
	deps
	;;
build)
	deps
	build_in build
	;;
test)
	deps
	build_in build
	# Two tests at a time (ctest -j2). Those that time failovers, cut links or kill daemons
	# run one at a time at the normal priority, every other test at nice 10 (tests/
	# CMakeLists.txt: PSTOR_TEST_NICE), so it takes only the CPU they leave. Beside the
	# normal pass, at the lowest priority: the ASan+UBSan build and its unit suites, the
	# stress programs under ThreadSanitizer and the libFuzzer targets. The CI budget is 20
	# minutes on a slow 2-core machine, and the whole run is CPU-bound there (measured: both
	# CPUs 98% busy through the sanitizer pass). So the rounds are fewer than the scripts'
	# defaults: the partition suite 20 randomized rounds (30 by default; about 5 s and 4 s of
	# CPU a round), the kill -9 crash test 12 (20; about 6 s and 5 s of CPU a round with
	# O_DIRECT images, 6 more in the sanitizer pass) and the cluster's part-1 fault series 6.
	bg_start asan asan_build_and_units
	bg_start tsan-fuzz tsan_and_fuzz
	PSTOR_CRASH_ROUNDS=12 PSTOR_CLUSTER_FAULTS=6 PSTOR_PARTITION_ROUNDS=20 \
		run_tests_in build -j2 -E '^nvme_vm$'
	phase "normal pass done"
	bg_wait asan
	echo "pstor-dev: the integration tests under AddressSanitizer + UndefinedBehaviorSanitizer"
	# The QEMU NVMe guest (2 to 5 minutes) runs once, here, where it also checks the NVMe
	# and zoned backends for memory errors. Fewer rounds than in the pass above: the
	# cluster's part-1 fault series 3, the partition suite 2 randomized rounds after its
	# basics (20 above), the kill -9 crash test 6 rounds.
	ASAN_OPTIONS=detect_leaks=1 PSTOR_CLUSTER_FAULTS=3 PSTOR_PARTITION_ROUNDS=2 PSTOR_CRASH_ROUNDS=6 \
		run_tests_in build-asan -j2 -L 'integration|vm'
	phase "sanitizer pass done"
	# TSan and the fuzz targets (time-capped) go on beside the sanitizer pass at nice 19
	# rather than hold its start.
	bg_wait tsan-fuzz
	phase "all passed"
	;;
fuzz)
	deps
	run_fuzzers
	;;
bench)
	deps
	build_in build
	"$here/build/tests/pstor-bench"
	;;
install)
	deps
	build_in build
	install_bins
	;;
deb)
	deps
	build_in build
	deb
	;;
demo)
	deps
	build_in build
	install_bins
	demo
	;;
*)
	echo "usage: $0 deps|build|test|fuzz|bench|install|demo|deb" >&2
	exit 2
	;;
esac
