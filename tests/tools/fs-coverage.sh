#!/usr/bin/env bash
# tests/tools/fs-coverage.sh - line coverage of fs/ (fs/**/*.c only, no headers) by the criterion
# suite `fs`, optionally plus the FUSE integration tests. Builds BUILD_DIR (default build-cov in
# the source tree) with -DPSTOR_COVERAGE=ON, zeroes the counters, runs, prints gcovr's table.
#
#   tests/tools/fs-coverage.sh [--integration] [--html DIR] [BUILD_DIR]
#
# --integration  also runs `ctest -L integration` (the it_* scripts, which mount the build's
#                pstorfs: serial, several minutes, root and /dev/fuse) before measuring.
# The default measurement is the unit suite alone (test_fs, which itself mounts FUSE file
# systems in test_fs_fuse.c); the two figures are not comparable, so say which one you quote.
set -euo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
integration=0
html=
build=
while [ $# -gt 0 ]; do
	case $1 in
	--integration) integration=1 ;;
	--html) html=$2; shift ;;
	-h | --help) sed -n '2,12p' "$0"; exit 0 ;;
	*) build=$1 ;;
	esac
	shift
done
build=${build:-$src/build-cov}
jobs=${PSTOR_JOBS:-2}

command -v gcovr >/dev/null || { echo "fs-coverage: gcovr is not installed" >&2; exit 77; }

cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DPSTOR_COVERAGE=ON >/dev/null
targets=(test_fs)
if [ $integration = 1 ]; then
	targets+=(pstorfs mkfs.pstorfs fsck.pstorfs pstor-crash-writer pstor-sbtool pstor-imgmap)
fi
cmake --build "$build" -j "$jobs" --target "${targets[@]}" >/dev/null

# Counters from earlier runs would add up: start from zero.
find "$build" -name '*.gcda' -delete

(cd "$build" && ctest -R '^fs$' --output-on-failure)
if [ $integration = 1 ]; then
	# Failures are reported but do not stop the measurement.
	(cd "$build" && ctest -L integration --output-on-failure) || echo "fs-coverage: some integration tests failed" >&2
fi

# fs/ sources only, .c files only; object files live in $build.
cd "$src"
args=(--root "$src" --filter 'fs/.*\.c$' --object-directory "$build" --print-summary)
[ -n "$html" ] && args+=(--html-details "$html/index.html") && mkdir -p "$html"
gcovr "${args[@]}" "$build"
