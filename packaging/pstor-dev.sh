#!/bin/bash
# packaging/pstor-dev.sh - one entry point for developers and CI on Debian 12 (as root):
#   deps    install the Debian packages in packaging/debian-packages.txt
#   build   deps + configure and build (warnings are errors) in build/
#   test    build + the whole test suite, again under ASan+UBSan (build-asan/), and the
#           stress programs under ThreadSanitizer (build-tsan/)
#   bench   build + pstor-bench (engine and FTL figures)
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

run_tests_in() { # DIR
	(cd "$here/$1" && ctest --output-on-failure --timeout 900)
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
	run_tests_in build
	echo "pstor-dev: the same suite under AddressSanitizer + UndefinedBehaviorSanitizer"
	build_in build-asan -DPSTOR_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
	ASAN_OPTIONS=detect_leaks=1 run_tests_in build-asan
	echo "pstor-dev: the stress programs under ThreadSanitizer"
	build_in build-tsan -DPSTOR_SANITIZE_THREAD=ON -DCMAKE_BUILD_TYPE=Debug
	TSAN_OPTIONS=halt_on_error=1 run_tests_in build-tsan
	;;
bench)
	deps
	build_in build
	"$here/build/tests/pstor-bench"
	;;
*)
	echo "usage: $0 deps|build|test|bench" >&2
	exit 2
	;;
esac
