#!/bin/bash
# The man pages (packaging/man/*.scd, roff made by the build in packaging/man/): each renders
# with `MANWIDTH=80 man --warnings -l` without a warning and carries this build's version, and
# they document what the code has: every file of a live .pstorage tree, every ctl command and
# setting in pstorfs-ctl(5), every pstorfs -o option, mkfs and fsck option and fsck exit code in
# the pages of the programs. One case per check (lib.sh run_cases).
. "$(dirname "$0")/lib.sh"
need man
MANDIR=$PSTOR_BUILD_DIR/packaging/man
PAGES="pstorfs.8 mkfs.pstorfs.8 fsck.pstorfs.8 pstorfs-ctl.5"
[ -f "$MANDIR/pstorfs.8" ] ||
	skip "no man pages in $MANDIR (the build needs scdoc: apt-get install scdoc)"

# The page as text on one line per paragraph (no line breaks, so no hyphenation), for grep -F.
text_of() { # PAGE
	MANWIDTH=1000 man -l "$MANDIR/$1" 2>/dev/null
}

documented() { # PAGE WHAT...: each WHAT appears in PAGE
	local page=$1 w
	shift
	[ -s "$T/$page.txt" ] || text_of "$page" >"$T/$page.txt"
	for w in "$@"; do
		grep -qF -- "$w" "$T/$page.txt" || softfail "$page does not mention '$w'"
	done
}

case_render() {
	local page version
	version=$("$PSTORFS" --version | awk '{ print $2 }')
	for page in $PAGES; do
		check "$page renders at 80 columns without warnings, version $version"
		MANWIDTH=80 man --warnings -l "$MANDIR/$page" >"$T/out" 2>"$T/err" ||
			fail "man -l $page failed: $(cat "$T/err")"
		[ ! -s "$T/err" ] || softfail "$page: man --warnings said: $(cat "$T/err")"
		grep -q '^NAME' "$T/out" || softfail "$page: no NAME section"
		tail -n 1 "$T/out" | grep -qF "pstorfs $version" ||
			softfail "$page: the footer '$(tail -n 1 "$T/out")' lacks 'pstorfs $version'"
		awk -v w=80 'length($0) > w { n++ } END { exit n > 0 }' "$T/out" ||
			softfail "$page: lines wider than 80 columns"
	done
}

case_ctl_page() {
	local f cmds
	need_binaries
	check "pstorfs-ctl(5) names every file of a mounted .pstorage tree"
	pstor_mkfs "$T/img" 1G
	pstor_mount "$T/img" "$T/m"
	ctl "$T/m" "volume create vol1 1M"
	# volumes/vol1/size -> volumes/NAME/size; each path's last part must be in the page
	(cd "$T/m/.pstorage" && find . -mindepth 1 -printf '%P\n') | sed 's|^volumes/vol1|volumes/NAME|' |
		sort >"$T/tree"
	[ -s "$T/tree" ] || fail ".pstorage is empty"
	local names=()
	while read -r f; do
		names+=("${f##*/}")
	done <"$T/tree"
	log "${#names[@]} files: $(tr '\n' ' ' <"$T/tree")"
	documented pstorfs-ctl.5 "${names[@]}"
	pstor_umount "$T/m"

	check "pstorfs-ctl(5) has every ctl command of fs/pfs_ctl.c with its arguments"
	cmds=$(sed -n 's/^ *{"[a-z]*", \(NULL\|"[a-z]*"\), [0-9], "\([^"]*\)", run_.*/\2/p' \
		"$PSTOR_SRC_DIR/fs/pfs_ctl.c")
	[ "$(echo "$cmds" | wc -l)" -ge 13 ] || fail "cannot read the ctl commands of pfs_ctl.c"
	local c
	log "$(echo "$cmds" | wc -l) commands"
	while read -r c; do
		documented pstorfs-ctl.5 "$c"
	done <<<"$cmds"
	documented pstorfs-ctl.5 EINVAL ENOENT EEXIST ENOSPC EBUSY EROFS
}

case_program_pages() {
	local o
	check "pstorfs(8) has every -o option of fs/pfs_daemon.c"
	while read -r o; do
		documented pstorfs.8 "$o="
	done < <(sed -n 's/^ *{"\([a-z_]*\)=%s", offsetof.*/\1/p' "$PSTOR_SRC_DIR/fs/pfs_daemon.c")
	documented pstorfs.8 --version DURABILITY fsync

	check "mkfs.pstorfs(8) and fsck.pstorfs(8) have every long option"
	local prog
	for prog in mkfs fsck; do
		while read -r o; do
			documented "$prog.pstorfs.8" "--$o"
		done < <(sed -n 's/^ *{"\([a-z-]*\)", [a-z_]*_argument,.*/\1/p' \
			"$PSTOR_SRC_DIR/fs/vol/pfs_$prog.c")
	done

	check "fsck.pstorfs(8) lists every exit code of fs/vol/pfs_fsck.c"
	local codes
	codes=$(sed -n 's/^#define FSCK_[A-Z]* *\([0-9]*\)$/\1/p' "$PSTOR_SRC_DIR/fs/vol/pfs_fsck.c")
	[ -n "$codes" ] || fail "cannot read the FSCK_ codes of pfs_fsck.c"
	text_of fsck.pstorfs.8 | sed -n '/^EXIT STATUS/,/^[A-Z]/p' >"$T/exit"
	for o in $codes 16; do
		grep -qE "^ +$o\$" "$T/exit" || softfail "fsck.pstorfs(8): no exit status $o"
	done
}

run_cases
