# tests/integration/lib_cluster.sh - two boxes on one machine (sourced after lib.sh): each daemon
# in its own network namespace, joined by a veth pair, with certificates from a test CA; the
# mounts stay in the host's mount namespace (nsenter --net only), so tools reach both.
# Nothing here runs under `ip netns exec`: it unshares a mount namespace, a copy of every mount
# the host has, the FUSE mounts of tests running alongside included. On a host whose / is not
# a shared mount (this CI's), an unmount on the host does not reach the copy, the kernel ends a
# FUSE session only with its last mount, and so the other test's daemon ran on for as long as
# our process did (etcd: the whole partition suite; up to 60 s in _reap, then kill -9).
# Box A: namespace ${CL_NS}a, 10.77.0.1; box B: ${CL_NS}b, 10.77.0.2; port 7001.

need ip nsenter openssl
CL_NS=pst$$
CL_PORT=7001
CL_CERTS=$T/certs
CL_MNT_A=$T/a
CL_MNT_B=$T/b

cl_net_up() { # makes both namespaces and the link between them
	ip netns add "${CL_NS}a" || skip "ip netns add failed"
	_CLEANUP+=("netns:${CL_NS}a")
	ip netns add "${CL_NS}b"
	_CLEANUP+=("netns:${CL_NS}b")
	ip link add "${CL_NS}va" type veth peer name "${CL_NS}vb"
	ip link set "${CL_NS}va" netns "${CL_NS}a"
	ip link set "${CL_NS}vb" netns "${CL_NS}b"
	ip -n "${CL_NS}a" addr add 10.77.0.1/24 dev "${CL_NS}va"
	ip -n "${CL_NS}b" addr add 10.77.0.2/24 dev "${CL_NS}vb"
	ip -n "${CL_NS}a" link set lo up
	ip -n "${CL_NS}b" link set lo up
	ip -n "${CL_NS}a" link set "${CL_NS}va" up
	ip -n "${CL_NS}b" link set "${CL_NS}vb" up
	sh "$PSTOR_SRC_DIR/tests/cluster/mkcerts.sh" "$CL_CERTS" boxa boxb >/dev/null
}

cl_in_ns() { # NS CMD...: runs CMD in network namespace NS, in the host's mount namespace
	local ns=$1
	shift
	nsenter --net="/run/netns/$ns" "$@"
}

cl_addr() { # BOX (a or b)
	[ "$1" = a ] && echo 10.77.0.1 || echo 10.77.0.2
}

cl_opts() { # BOX [CERTDIR]: the cluster mount options of box a or b
	local b=$1 d=${2:-$CL_CERTS}
	echo "cluster_name=box$b,cluster_listen=$(cl_addr "$b"):$CL_PORT,cluster_cert=$d/box$b.crt,cluster_key=$d/box$b.key,cluster_ca=$d/ca.crt"
}

cl_mount() { # BOX IMG [extra options]: mounts box a or b on $T/a or $T/b inside its namespace
	local b=$1 img=$2 extra=${3:-} real=$PSTORFS wrap="$T/pstorfs-ns$1"
	printf '#!/bin/sh\nexec nsenter --net=/run/netns/%s %s "$@"\n' "${CL_NS}$b" "$real" >"$wrap"
	chmod +x "$wrap"
	PSTORFS=$wrap pstor_mount "$img" "$T/$b" "$(cl_opts "$b")${extra:+,$extra}"
}

cl_ctl() { # BOX COMMAND...: runs a ctl command on box a or b; fails the test on error
	local b=$1
	shift
	echo "$*" >"$T/$b/.pstorage/ctl" || fail "box $b: $*: $(cat "$T/$b/.pstorage/ctl")"
}

cl_state() { # BOX POD: the pod's state on that box
	"$PY" - "$T/$1/.pstorage/cluster/status.json" "$2" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
print(next((p["state"] for p in d["pods"] if p["name"] == sys.argv[2]), "none"))
PYEOF
}

cl_wait_state() { # BOX POD STATE [SECONDS]
	local n=$((${4:-60} * 10)) s=""
	while :; do
		s=$(cl_state "$1" "$2" 2>/dev/null || true)
		[ "$s" = "$3" ] && return 0
		n=$((n - 1))
		[ $n -gt 0 ] || fail "box $1: pod $2 is '$s', not '$3' after ${4:-60} s$(
			! declare -F box_logs >/dev/null || box_logs)"
		sleep 0.1
	done
}

cl_link_up() { # BOX: waits until the box sees its peer's link up
	local n=300
	until grep -q '"link":"up"' "$T/$1/.pstorage/cluster/status.json" 2>/dev/null; do
		n=$((n - 1))
		[ $n -gt 0 ] || fail "box $1: no link to its peer within 30 s: $(cat "$T/$1/.pstorage/cluster/status")"
		sleep 0.1
	done
}

cl_cut() { # cuts the link with nftables (box a's namespace drops everything on its veth)
	cl_in_ns "${CL_NS}a" nft -f - <<NFT
table inet pstorcut {
	chain in { type filter hook input priority 0; policy accept; iifname "${CL_NS}va" drop; }
	chain out { type filter hook output priority 0; policy accept; oifname "${CL_NS}va" drop; }
}
NFT
}

cl_cut_reset() { # as cl_cut, but box a's own TCP segments are refused with a reset: box a sees
	# its link fail at once while box b, hearing nothing, learns of it only at its timeout
	cl_in_ns "${CL_NS}a" nft -f - <<NFT
table inet pstorcut {
	chain in { type filter hook input priority 0; policy accept; iifname "${CL_NS}va" drop; }
	chain out { type filter hook output priority 0; policy accept; oifname "${CL_NS}va" meta l4proto tcp reject with tcp reset; oifname "${CL_NS}va" drop; }
}
NFT
}

cl_heal() { # ends the cut once both boxes have seen their link go (the drop is silent: a box
	# notices only when no ping is answered in time; a heal before that is no outage for it)
	local b n
	for b in a b; do
		n=300
		while grep -q '"link":"up"' "$T/$b/.pstorage/cluster/status.json" 2>/dev/null; do
			n=$((n - 1))
			[ $n -gt 0 ] || fail "box $b still sees its link up 30 s after the cut"
			sleep 0.1
		done
	done
	cl_in_ns "${CL_NS}a" nft delete table inet pstorcut
}

cl_sha() { # FILE: sha256 of a volume
	sha256sum "$1" | cut -d' ' -f1
}

# ---- three namespaces: two boxes and the mediator (test_cluster_partition.sh) ------------------
# A bridge in ${CL_NS}e joins box a (10.77.0.1), box b (10.77.0.2) and etcd (10.77.0.3:2379), so
# each path can be cut on its own with nftables in a box's namespace.
CL_ETCD=http://10.77.0.3:2379

cl_net3_up() {
	local b
	ip netns add "${CL_NS}e" || skip "ip netns add failed"
	_CLEANUP+=("netns:${CL_NS}e")
	ip -n "${CL_NS}e" link set lo up
	ip -n "${CL_NS}e" link add br0 type bridge
	ip -n "${CL_NS}e" link set br0 up
	ip -n "${CL_NS}e" addr add 10.77.0.3/24 dev br0
	for b in a b; do
		ip netns add "${CL_NS}$b"
		_CLEANUP+=("netns:${CL_NS}$b")
		ip -n "${CL_NS}$b" link set lo up
		ip link add "${CL_NS}v$b" type veth peer name "${CL_NS}e$b"
		ip link set "${CL_NS}v$b" netns "${CL_NS}$b"
		ip link set "${CL_NS}e$b" netns "${CL_NS}e"
		ip -n "${CL_NS}e" link set "${CL_NS}e$b" master br0 up
		ip -n "${CL_NS}$b" addr add "$(cl_addr "$b")/24" dev "${CL_NS}v$b"
		ip -n "${CL_NS}$b" link set "${CL_NS}v$b" up
	done
	sh "$PSTOR_SRC_DIR/tests/cluster/mkcerts.sh" "$CL_CERTS" boxa boxb >/dev/null
}

cl_etcd_start() { # etcd in its namespace, data in $T/etcd (kept across restarts)
	# nsenter execs etcd: $! is etcd itself, which teardown kills.
	nsenter --net="/run/netns/${CL_NS}e" etcd --name e --data-dir "$T/etcd" \
		--listen-client-urls "$CL_ETCD" --advertise-client-urls "$CL_ETCD" \
		--listen-peer-urls http://127.0.0.1:2380 \
		--initial-advertise-peer-urls http://127.0.0.1:2380 \
		--initial-cluster e=http://127.0.0.1:2380 >>"$T/etcd.log" 2>&1 &
	CL_ETCD_PID=$!
	disown "$CL_ETCD_PID" # its kill -9 is expected: no job notice
	_CLEANUP+=("kill:$CL_ETCD_PID")
	local n=100
	until cl_in_ns "${CL_NS}e" curl -sf -m 1 -X POST "$CL_ETCD/v3/kv/range" \
		-d '{"key":"AA=="}' >/dev/null 2>&1; do
		n=$((n - 1))
		[ $n -gt 0 ] || fail "etcd did not start: $(tail -5 "$T/etcd.log")"
		sleep 0.1
	done
}

cl_etcd_kill() {
	kill -9 "$CL_ETCD_PID"
	_wait_gone "$CL_ETCD_PID" 10
	_remove_cleanup "kill:$CL_ETCD_PID"
}

cl_nft() { # BOX RULES...: adds rules to table pstorcut in the box's namespace (made if needed)
	local b=$1
	shift
	cl_in_ns "${CL_NS}$b" nft -f - <<NFT
table inet pstorcut {
	chain in { type filter hook input priority 0; policy accept; }
	chain out { type filter hook output priority 0; policy accept; }
}
NFT
	local r
	for r in "$@"; do
		cl_in_ns "${CL_NS}$b" nft add rule inet pstorcut $r
	done
}

cl_cut_from() { # BOX ADDR: BOX drops everything to and from ADDR
	cl_nft "$1" "in ip saddr $2 drop" "out ip daddr $2 drop"
}

cl_heal_all() {
	cl_in_ns "${CL_NS}a" nft delete table inet pstorcut 2>/dev/null || true
	cl_in_ns "${CL_NS}b" nft delete table inet pstorcut 2>/dev/null || true
}
