#!/bin/bash
# The management REST API (fs/api) on a real mount, with curl: the original system's commands
# (verbatim apart from host, TLS and token) give what the control files give, every mutation is
# the ctl command's (same result, same reason text), bad input (tokens, bodies, names, sizes,
# slow and too many clients) changes nothing, HTTPS with a test CA, bad options refuse the mount,
# pod operations on two real boxes (network namespaces), and the served OpenAPI document is the
# checked-in one with each of its operations routed.
. "$(dirname "$0")/lib.sh"
need_binaries
need curl openssl

IMG=$T/img
M=$T/m
RW=rw-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
RO=ro-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
TOK=$T/tokens
printf '# test tokens\nrw %s\nro %s\n' "$RW" "$RO" >"$TOK"
chmod 600 "$TOK"

free_port() {
	"$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

PORT=$(free_port)
URL=http://127.0.0.1:$PORT
CURL=(curl -sS --max-time 10)

mount_api() { # [extra options]
	pstor_mkfs "$IMG" 256M
	pstor_mount "$IMG" "$M" "api_listen=127.0.0.1:$PORT,api_token_file=$TOK${1:+,$1}"
}

# api TOKEN METHOD PATH [BODY]: the status in $STATUS, the body in $T/body
api() {
	local tok=$1 method=$2 path=$3
	shift 3
	local args=(-X "$method" -o "$T/body" -w '%{http_code}')
	[ -z "$tok" ] || args+=(-H "Authorization: Bearer $tok")
	[ $# -eq 0 ] || args+=(-H 'Content-Type: application/json' -d "$1")
	STATUS=$("${CURL[@]}" "${args[@]}" "$URL$path")
}

expect_status() { # WANT DESCRIPTION
	[ "$STATUS" = "$1" ] || fail "$2: status $STATUS, want $1: $(cat "$T/body")"
}

# json_eq FILE_A FILE_B: the same JSON value
json_eq() {
	"$PY" -c 'import json, sys; sys.exit(json.load(open(sys.argv[1])) != json.load(open(sys.argv[2])))' "$1" "$2"
}

# same_as_file FILE PATH: GET PATH gives the bytes a read of FILE gives (read before and after,
# so a background commit between the two reads does not fail it)
same_as_file() {
	local f=$1 path=$2 i
	for i in 1 2 3 4 5; do
		cat "$f" >"$T/before"
		api "$RO" GET "$path"
		cat "$f" >"$T/after"
		[ "$STATUS" = 200 ] || fail "GET $path: $STATUS $(cat "$T/body")"
		if cmp -s "$T/body" "$T/before" || cmp -s "$T/body" "$T/after"; then
			return 0
		fi
	done
	diff "$T/before" "$T/body" >&2 || true
	fail "GET $path differs from $f"
}

# the error text of the last reply
err_text() {
	"$PY" -c 'import json, sys; d = json.load(open(sys.argv[1])); print(d["error"]); print(d["errno"])' "$T/body"
}

case_original_commands_match_the_files() {
	mount_api
	check "the original system's curl commands, verbatim apart from host and token"
	# POST /api/v1/volumes {"name": "my-volume", "size_gb": 10}
	curl -sS -X POST "$URL/api/v1/volumes" -H "Authorization: Bearer $RW" \
		-H "Content-Type: application/json" -d '{"name": "my-volume", "size_gb": 10}' \
		-o "$T/created" -w '%{http_code}' >"$T/code"
	[ "$(cat "$T/code")" = 201 ] || fail "create: $(cat "$T/code") $(cat "$T/created")"
	[ "$(stat -c %s "$M/volumes/my-volume")" = $((10 << 30)) ] || fail "my-volume is not 10 GiB"
	json_eq "$T/created" "$M/.pstorage/volumes/my-volume/summary.json" ||
		fail "the created volume's reply is not its summary.json: $(cat "$T/created")"
	text_file "$T/text" $((4 << 20))
	put_at "$T/text" "$M/volumes/my-volume" 0
	put_at "$T/text" "$M/volumes/my-volume" $((4 << 20))
	ctl "$M" sync
	curl -sS "$URL/api/v1/metrics/reduction" -H "Authorization: Bearer $RO" >"$T/red"
	"$PY" -c 'import json, sys; d = json.load(open(sys.argv[1])); sys.exit(not d["total_ratio"] > 1.5)' "$T/red" ||
		fail "reduction after writing the same text twice: $(cat "$T/red")"
	curl -sS "$URL/api/v1/analytics/capacity/forecast" -H "Authorization: Bearer $RO" >/dev/null
	curl -sS "$URL/api/v1/analytics/health" -H "Authorization: Bearer $RO" >/dev/null
	curl -sS "$URL/api/v1/analytics/tiering/recommendations" -H "Authorization: Bearer $RO" >/dev/null

	check "each report is its control file's text"
	same_as_file "$M/.pstorage/reduction.json" /api/v1/metrics/reduction
	same_as_file "$M/.pstorage/analytics/capacity.json" /api/v1/analytics/capacity/forecast
	same_as_file "$M/.pstorage/analytics/health.json" /api/v1/analytics/health
	same_as_file "$M/.pstorage/analytics/tiering.json" /api/v1/analytics/tiering/recommendations
	same_as_file "$M/.pstorage/analytics/temperature.json" /api/v1/analytics/temperature
	same_as_file "$M/.pstorage/cluster/status.json" /api/v1/cluster/status
	same_as_file "$M/.pstorage/status.json" /api/v1/status
	same_as_file "$M/.pstorage/metrics" /metrics
	same_as_file "$M/.pstorage/volumes/my-volume/summary.json" /api/v1/volumes/my-volume

	check "volumes and snapshots through the API are what the files and ctl show"
	api "$RO" GET /api/v1/volumes
	"$PY" - "$T/body" "$M/.pstorage/volumes" <<'PYEOF' || fail "volume list: $(cat "$T/body")"
import json, os, sys
vols = json.load(open(sys.argv[1]))["volumes"]
names = sorted(v["name"] for v in vols)
assert names == sorted(os.listdir(sys.argv[2])), names
for v in vols:
    assert v == json.load(open(os.path.join(sys.argv[2], v["name"], "summary.json"))), v
PYEOF
	api "$RW" POST /api/v1/volumes/my-volume/snapshots '{"name": "s1"}'
	expect_status 201 "snapshot create"
	[ -e "$M/snapshots/my-volume/s1" ] || fail "snapshots/my-volume/s1 missing"
	api "$RO" GET /api/v1/volumes/my-volume/snapshots
	[ "$(cat "$T/body")" = '{"volume": "my-volume", "snapshots": ["s1"]}' ] ||
		fail "snapshot list: $(cat "$T/body")"
	api "$RW" POST /api/v1/volumes/my-volume/resize '{"size_gb": 12}'
	expect_status 200 "resize"
	[ "$(stat -c %s "$M/volumes/my-volume")" = $((12 << 30)) ] || fail "resize to 12 GiB"
	rand_file "$T/r" 65536
	put_at "$T/r" "$M/volumes/my-volume" 0
	api "$RW" POST /api/v1/volumes/my-volume/snapshots/s1/restore
	expect_status 200 "restore"
	get_at "$M/volumes/my-volume" 0 65536 | cmp -s - <(head -c 65536 "$T/text") ||
		fail "restore did not bring back the snapshot's data"
	[ "$(stat -c %s "$M/volumes/my-volume")" = $((10 << 30)) ] || fail "restore: size"
	api "$RW" POST /api/v1/volumes/my-volume/snapshots/s1/clone '{"name": "c1"}'
	expect_status 201 "clone"
	# Only the written part: the rest is a hole in both, and 10 GiB through FUSE take long.
	cmp -s -n $((8 << 20)) "$M/volumes/c1" "$M/snapshots/my-volume/s1" ||
		fail "clone c1 differs from s1"
	[ "$(stat -c %s "$M/volumes/c1")" = $((10 << 30)) ] || fail "clone c1: size"

	check "a failed command: the status of its errno and the reason ctl gives"
	api "$RW" DELETE /api/v1/volumes/my-volume
	expect_status 409 "delete a volume with snapshots"
	mapfile -t e < <(err_text)
	[ "${e[0]}" = "$(cat "$M/.pstorage/ctl")" ] || fail "reason '${e[0]}' is not ctl's"
	[ "${e[1]}" = EBUSY ] || fail "errno ${e[1]}"
	expect_ctl "$M" EBUSY "volume delete my-volume"
	[ "$(cat "$M/.pstorage/ctl")" = "${e[0]}" ] || fail "ctl says $(cat "$M/.pstorage/ctl")"
	api "$RW" POST /api/v1/volumes '{"name": "my-volume", "size_gb": 1}'
	expect_status 409 "create an existing volume"
	api "$RW" POST /api/v1/volumes '{"name": "huge", "size_gb": 1000000000}'
	expect_status 507 "a volume beyond the namespace"
	api "$RO" GET /api/v1/volumes/nope
	expect_status 404 "a missing volume"
	api "$RW" DELETE /api/v1/volumes/my-volume/snapshots/nope
	expect_status 404 "a missing snapshot"
	api "$RW" POST /api/v1/cluster/pods '{"name": "p1"}'
	expect_status 503 "a pod on a box in no cluster"
	api "$RW" DELETE /api/v1/volumes/my-volume/snapshots/s1
	expect_status 200 "snapshot delete"
	api "$RW" DELETE /api/v1/volumes/my-volume
	expect_status 200 "delete"
	[ ! -e "$M/volumes/my-volume" ] || fail "my-volume still there"

	check "config get and set are the config files"
	api "$RW" PUT /api/v1/config/compression '{"value": "zstd:3"}'
	expect_status 200 "config set"
	[ "$(cat "$M/.pstorage/config/compression")" = zstd:3 ] || fail "compression not zstd:3"
	api "$RW" PUT /api/v1/config/commit_interval_ms '{"value": 2000}'
	expect_status 200 "config set (integer)"
	[ "$(cat "$M/.pstorage/config/commit_interval_ms")" = 2000 ] || fail "commit_interval_ms"
	api "$RO" GET /api/v1/config
	"$PY" - "$T/body" "$M/.pstorage/config" <<'PYEOF' || fail "config: $(cat "$T/body")"
import json, os, sys
d = json.load(open(sys.argv[1]))
assert sorted(d) == sorted(os.listdir(sys.argv[2])), d
for k, v in d.items():
    assert v == open(os.path.join(sys.argv[2], k)).read().strip(), (k, v)
PYEOF
	api "$RW" PUT /api/v1/config/nosuch '{"value": "1"}'
	expect_status 400 "an unknown setting"
	api "$RW" PUT /api/v1/config/dedupe '{"value": "maybe"}'
	expect_status 400 "a bad value"
	[ "$(cat "$M/.pstorage/config/dedupe")" = on ] || fail "dedupe changed"
	pstor_umount "$M"
}

case_bad_input_changes_nothing() {
	mount_api "api_timeout=1,api_max_conns=3"
	ctl "$M" "volume create keep 8M"
	cat "$M/.pstorage/stats.json" >/dev/null
	local before
	before=$(ls "$M/volumes" "$M/snapshots/keep"; cat "$M/.pstorage/config/"*)
	check "tokens: none or wrong 401, read-only 403 on a change"
	api "" GET /api/v1/volumes
	expect_status 401 "no token"
	grep -q '"errno": "EACCES"' "$T/body" || fail "401 body: $(cat "$T/body")"
	api "wrong-token-$RW" GET /api/v1/volumes
	expect_status 401 "a wrong token"
	api "${RW%?}" DELETE /api/v1/volumes/keep
	expect_status 401 "a token one character short"
	api "$RO" DELETE /api/v1/volumes/keep
	expect_status 403 "a change with the read-only token"
	api "$RO" POST /api/v1/volumes '{"name": "x", "size_gb": 1}'
	expect_status 403 "a create with the read-only token"
	api "$RO" GET /api/v1/volumes/keep
	expect_status 200 "a read with the read-only token"

	check "bodies: malformed, not an object, unknown fields, wrong types, bad names, sizes"
	local body
	for body in '{"name": "x", "size_gb": 1' '{"name": "x", "size_gb": 1}}' '["x", 1]' '' \
		'{"name": "x"}' '{"name": "x", "size_gb": 1, "pool": "a"}' '{"name": "x", "size_gb": "1"}' \
		'{"name": "x", "size_gb": 1.5}' '{"name": "x", "size_gb": true}' '{"name": "x", "size_gb": 0}' \
		'{"name": "x", "size_gb": -3}' '{"name": "x", "size_gb": 9223372036854775808}' \
		'{"name": ["x"], "size_gb": 1}' '{"name": "a b", "size_gb": 1}' '{"name": "../x", "size_gb": 1}' \
		'{"name": ".x", "size_gb": 1}' '{"name": "x\nvolume delete keep", "size_gb": 1}' \
		"{\"name\": \"$(printf 'a%.0s' {1..65})\", \"size_gb\": 1}"; do
		api "$RW" POST /api/v1/volumes "$body"
		expect_status 400 "body $body"
	done
	api "$RW" POST /api/v1/volumes/keep/snapshots '{"name": "s", "volume": "keep"}'
	expect_status 400 "an unknown field in a snapshot create"
	api "$RW" DELETE "/api/v1/volumes/a%20b"
	expect_status 400 "a path name with a blank"
	api "$RW" DELETE "/api/v1/volumes/.keep"
	expect_status 400 "a path name with a leading dot"
	api "$RW" POST /api/v1/volumes/keep/resize '{"size_gb": 1, "x": 1}'
	expect_status 400 "resize with an unknown field"
	api "$RW" PATCH /api/v1/volumes/keep
	expect_status 405 "a method the path does not have"
	api "$RW" GET /api/v1/nothing
	expect_status 404 "no such endpoint"

	check "a body over 64 KiB is 413, declared or chunked"
	head -c 100000 /dev/zero | tr '\0' ' ' >"$T/big"
	STATUS=$("${CURL[@]}" -o "$T/body" -w '%{http_code}' -X POST -H "Authorization: Bearer $RW" \
		--data-binary @"$T/big" "$URL/api/v1/volumes")
	expect_status 413 "a 100 kB body"
	STATUS=$("${CURL[@]}" -o "$T/body" -w '%{http_code}' -X POST -H "Authorization: Bearer $RW" \
		-H 'Transfer-Encoding: chunked' --data-binary @"$T/big" "$URL/api/v1/volumes")
	expect_status 413 "a chunked 100 kB body"

	check "a slow client is cut off after api_timeout, connections past api_max_conns refused"
	"$PY" - "$PORT" <<'PYEOF' || fail "slow client"
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /api/v1/volumes HTTP/1.1\r\nHost: x\r\n")  # and never the end of the headers
s.settimeout(8)
t = time.monotonic()
try:
    data = s.recv(4096)
except ConnectionResetError:
    data = b""
except socket.timeout:
    data = None
took = time.monotonic() - t
assert data is not None and took < 5, ("still open after", took)
PYEOF
	"$PY" - "$PORT" "$RW" <<'PYEOF' || fail "connection limit"
import socket, sys, time, urllib.request
port, tok = int(sys.argv[1]), sys.argv[2]
def get():
    r = urllib.request.Request("http://127.0.0.1:%d/api/v1/volumes" % port,
                               headers={"Authorization": "Bearer " + tok})
    return urllib.request.urlopen(r, timeout=3).status
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
time.sleep(0.2)
try:
    st = get()
except Exception as e:
    st = repr(e)
assert st != 200, "a fourth connection was served"
for s in held:
    s.close()
time.sleep(0.3)
assert get() == 200
PYEOF
	check "nothing changed"
	[ "$(ls "$M/volumes" "$M/snapshots/keep"; cat "$M/.pstorage/config/"*)" = "$before" ] ||
		fail "volumes, snapshots or settings changed"
	pstor_umount "$M"
}

case_https_and_bad_options() {
	pstor_mkfs "$IMG" 256M
	sh "$PSTOR_SRC_DIR/tests/cluster/mkcerts.sh" "$T/pki" localhost
	check "bad options refuse the mount with a reason"
	local opts rc
	for opts in "api_listen=0.0.0.0:$PORT,api_token_file=$TOK" \
		"api_token_file=$TOK" "api_listen=127.0.0.1:$PORT" \
		"api_listen=127.0.0.1:99999,api_token_file=$TOK" "api_listen=localhost:$PORT,api_token_file=$TOK" \
		"api_listen=0.0.0.0:$PORT,api_token_file=$TOK,api_cert=$T/pki/localhost.crt" \
		"api_listen=127.0.0.1:$PORT,api_token_file=$TOK,api_timeout=0" \
		"api_listen=127.0.0.1:$PORT,api_token_file=$T/none" \
		"api_listen=127.0.0.1:$PORT,api_token_file=$T/open"; do
		printf 'rw %s\n' "$RW" >"$T/open"
		chmod 644 "$T/open"
		rc=0
		"$PSTORFS" "$IMG" "$M" -f -o "$opts" >"$T/err" 2>&1 || rc=$?
		[ $rc = 1 ] || fail "-o $opts: status $rc"
		grep -q '^pstorfs: .*api' "$T/err" || fail "-o $opts: $(cat "$T/err")"
		! is_mounted "$M" || fail "-o $opts mounted"
	done
	check "HTTPS on a non-loopback address, with the test CA"
	pstor_mount "$IMG" "$M" "api_listen=0.0.0.0:$PORT,api_token_file=$TOK,api_cert=$T/pki/localhost.crt,api_key=$T/pki/localhost.key"
	local https=(curl -sS --max-time 10 --cacert "$T/pki/ca.crt" --resolve "localhost:$PORT:127.0.0.1")
	"${https[@]}" -X POST "https://localhost:$PORT/api/v1/volumes" -H "Authorization: Bearer $RW" \
		-H "Content-Type: application/json" -d '{"name": "my-volume", "size_gb": 10}' >"$T/created"
	json_eq "$T/created" "$M/.pstorage/volumes/my-volume/summary.json" || fail "https create"
	"${https[@]}" "https://localhost:$PORT/api/v1/metrics/reduction" \
		-H "Authorization: Bearer $RO" >"$T/red"
	"$PY" -c 'import json, sys; json.load(open(sys.argv[1]))["total_ratio"]' "$T/red" ||
		fail "https reduction: $(cat "$T/red")"
	! curl -sS --max-time 5 "http://127.0.0.1:$PORT/api/v1/volumes" -H "Authorization: Bearer $RO" \
		>/dev/null 2>&1 || fail "plain HTTP served on the HTTPS port"
	! curl -sS --max-time 5 "https://localhost:$PORT/api/v1/volumes" --resolve "localhost:$PORT:127.0.0.1" \
		-H "Authorization: Bearer $RO" >/dev/null 2>&1 || fail "a client without the CA trusted the server"
	pstor_umount "$M"
}

case_cluster_pods_on_one_box() {
	pstor_mkfs "$IMG" 256M
	sh "$PSTOR_SRC_DIR/tests/cluster/mkcerts.sh" "$T/pki" boxa
	local cport
	cport=$(free_port)
	pstor_mount "$IMG" "$M" "cluster_name=boxa,cluster_listen=127.0.0.1:$cport,cluster_cert=$T/pki/boxa.crt,cluster_key=$T/pki/boxa.key,cluster_ca=$T/pki/ca.crt,api_listen=127.0.0.1:$PORT,api_token_file=$TOK"
	ctl "$M" "volume create v1 8M"
	check "pod and peer operations are the cluster's ctl commands; the status is its file"
	api "$RW" POST /api/v1/cluster/pods '{"name": "p1"}'
	expect_status 201 "pod create"
	api "$RW" POST /api/v1/cluster/pods/p1/volumes '{"volume": "v1"}'
	expect_status 200 "pod add"
	grep -q '"ok: pod p1: added v1"' "$T/body" || fail "pod add: $(cat "$T/body")"
	api "$RW" PUT /api/v1/cluster/pods/p1/settings/resync_rate '{"value": "10M"}'
	expect_status 200 "pod set"
	api "$RW" POST /api/v1/cluster/peers '{"name": "boxb", "address": "127.0.0.1:9"}'
	expect_status 201 "peer add"
	same_as_file "$M/.pstorage/cluster/status.json" /api/v1/cluster/status
	"$PY" - "$T/body" <<'PYEOF' || fail "cluster status: $(cat "$T/body")"
import json, sys
d = json.load(open(sys.argv[1]))
assert [p["name"] for p in d["peers"]] == ["boxb"], d["peers"]
p, = d["pods"]
assert p["name"] == "p1" and p["volumes"] == ["v1"] and p["resync_rate"] == 10 << 20, p
PYEOF
	api "$RW" POST /api/v1/cluster/pods/p1/verify
	expect_status 400 "verify on a pod that is not stretched"
	mapfile -t e < <(err_text)
	[ "${e[0]}" = "$(cat "$M/.pstorage/ctl")" ] || fail "reason '${e[0]}' is not ctl's"
	api "$RW" POST /api/v1/cluster/pods '{"name": "p1"}'
	expect_status 409 "a pod that exists"
	api "$RW" DELETE /api/v1/cluster/pods/p1/volumes/v1
	expect_status 200 "pod remove"
	api "$RW" DELETE /api/v1/cluster/pods/p1
	expect_status 200 "pod delete"
	api "$RW" DELETE /api/v1/cluster/peers/boxb
	expect_status 200 "peer remove"
	"$PY" -c 'import json, sys; d = json.load(open(sys.argv[1])); sys.exit(1 if d["pods"] or d["peers"] else 0)' \
		"$M/.pstorage/cluster/status.json" || fail "pods or peers left: $(cat "$M/.pstorage/cluster/status.json")"
	pstor_umount "$M"
}

# Pod operations through the API of two real boxes (each in its own network namespace, the API
# on its loopback there: curl through nsenter --net): peers, pod create/add, a stretch to an
# unknown peer (404 and the ctl's reason), stretch, in_sync seen through GET
# /api/v1/cluster/status on both boxes, verify, resolve and verify refused with ctl's reasons,
# unstretch, pod delete.
case_pods_on_two_boxes() {
	source "$(dirname "$0")/lib_cluster.sh"
	cl_net_up
	pstor_mkfs "$T/a.img" 512M
	pstor_mkfs "$T/b.img" 512M
	cl_mount a "$T/a.img" "api_listen=127.0.0.1:$PORT,api_token_file=$TOK"
	cl_mount b "$T/b.img" "api_listen=127.0.0.1:$PORT,api_token_file=$TOK"
	# api_on BOX TOKEN METHOD PATH [BODY]: api() against that box's API, inside its namespace
	api_on() {
		local box=$1
		shift
		local CURL=(nsenter --net="/run/netns/${CL_NS}$box" curl -sS --max-time 30)
		api "$@"
	}
	# pod_state BOX: pod p1's state in the box's cluster status, as the API gives it
	pod_state() {
		api_on "$1" "$RO" GET /api/v1/cluster/status
		[ "$STATUS" = 200 ] || fail "box $1: cluster status: $STATUS $(cat "$T/body")"
		"$PY" -c 'import json, sys; d = json.load(open(sys.argv[1])); print(next((p["state"] for p in d["pods"] if p["name"] == "p1"), "none"))' "$T/body"
	}
	wait_pod_state() { # BOX STATE SECONDS
		local n=$(($3 * 10)) s
		until s=$(pod_state "$1") && [ "$s" = "$2" ]; do
			n=$((n - 1))
			[ $n -gt 0 ] || fail "box $1: pod p1 is '$s' through the API, not '$2' after $3 s"
			sleep 0.1
		done
	}
	# failed_like_ctl BOX STATUS ERRNO DESCRIPTION: the last reply is that error with the
	# reason `cat .pstorage/ctl` gives
	failed_like_ctl() {
		expect_status "$2" "$4"
		mapfile -t e < <(err_text)
		[ "${e[0]}" = "$(cat "$T/$1/.pstorage/ctl")" ] || fail "$4: reason '${e[0]}' is not ctl's"
		[ "${e[1]}" = "$3" ] || fail "$4: errno ${e[1]}, want $3"
		check "$4: $2 ${e[0]}"
	}

	check "peers and a pod through the API of each box"
	api_on a "$RW" POST /api/v1/cluster/peers "{\"name\": \"boxb\", \"address\": \"10.77.0.2:$CL_PORT\"}"
	expect_status 201 "box a: peer add"
	api_on b "$RW" POST /api/v1/cluster/peers "{\"name\": \"boxa\", \"address\": \"10.77.0.1:$CL_PORT\"}"
	expect_status 201 "box b: peer add"
	cl_link_up a
	cl_link_up b
	api_on a "$RW" POST /api/v1/volumes '{"name": "v1", "size_gb": 1}'
	expect_status 201 "volume create"
	rand_file "$T/data" $((4 << 20))
	put_at "$T/data" "$T/a/volumes/v1" $((64 << 20))
	api_on a "$RW" POST /api/v1/cluster/pods '{"name": "p1"}'
	expect_status 201 "pod create"
	api_on a "$RW" POST /api/v1/cluster/pods/p1/volumes '{"volume": "v1"}'
	expect_status 200 "pod add"

	api_on a "$RW" POST /api/v1/cluster/pods/p1/stretch '{"peer": "boxz"}'
	failed_like_ctl a 404 ENOENT "a stretch to an unknown peer"
	[ "$(pod_state a)" = local ] || fail "p1 is $(pod_state a) after a failed stretch"
	[ "$(pod_state b)" = none ] || fail "box b has p1 after a failed stretch"

	check "stretch, in sync on both boxes through the API, the replica the same"
	api_on a "$RW" POST /api/v1/cluster/pods/p1/stretch '{"peer": "boxb"}'
	expect_status 200 "stretch"
	wait_pod_state a in_sync 10
	wait_pod_state b in_sync 10
	api_on a "$RO" GET /api/v1/cluster/status
	cat "$T/a/.pstorage/cluster/status.json" >"$T/file"
	"$PY" - "$T/body" "$T/file" <<'PYEOF' || fail "box a: the API's cluster status is not the file's"
import json, sys
a, f = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
pa = [p for p in a["pods"] if p["name"] == "p1"][0]
pf = [p for p in f["pods"] if p["name"] == "p1"][0]
assert pa["state"] == pf["state"] == "in_sync" and pa["volumes"] == pf["volumes"] == ["v1"], (pa, pf)
assert [p["name"] for p in a["peers"]] == [p["name"] for p in f["peers"]] == ["boxb"], a["peers"]
PYEOF
	# The written range (a whole 1 GiB volume read twice through FUSE takes seconds; verify
	# below compares all of it on both boxes).
	get_at "$T/b/volumes/v1" $((64 << 20)) $((4 << 20)) | cmp -s - "$T/data" ||
		fail "v1 differs on box b"

	check "verify on the leader; verify elsewhere and resolve refused with ctl's reasons"
	api_on a "$RW" POST /api/v1/cluster/pods/p1/verify
	expect_status 200 "verify"
	grep -q '"ok: pod p1: verified [0-9]* regions of 4 MiB with boxb: 0 differ' "$T/body" ||
		fail "verify: $(cat "$T/body")"
	api_on b "$RW" POST /api/v1/cluster/pods/p1/verify
	failed_like_ctl b 400 EINVAL "verify on the box that does not lead"
	api_on a "$RW" POST /api/v1/cluster/pods/p1/resolve '{"keep": "boxa"}'
	failed_like_ctl a 400 EINVAL "resolve of a pod that is not split"
	api_on a "$RW" DELETE /api/v1/cluster/pods/p1
	failed_like_ctl a 409 EBUSY "delete of a stretched pod"
	api_on a "$RO" POST /api/v1/cluster/pods/p1/unstretch '{"peer": "boxb"}'
	expect_status 403 "unstretch with the read-only token"
	[ "$(pod_state a)" = in_sync ] || fail "p1 is $(pod_state a) after refused requests"

	check "unstretch: local on box a, gone from box b, the volume kept on both"
	api_on a "$RW" POST /api/v1/cluster/pods/p1/unstretch '{"peer": "boxb"}'
	expect_status 200 "unstretch"
	grep -q '"ok: pod p1: unstretched from boxb' "$T/body" || fail "unstretch: $(cat "$T/body")"
	[ "$(pod_state a)" = local ] || fail "box a: p1 is $(pod_state a) after unstretch"
	wait_pod_state b none 5
	[ -e "$T/b/volumes/v1" ] || fail "box b lost v1"
	api_on a "$RW" DELETE /api/v1/cluster/pods/p1
	expect_status 200 "pod delete"
	[ "$(pod_state a)" = none ] || fail "box a still has p1"
}

case_openapi_document_is_served_and_routed() {
	mount_api
	check "the served document is the checked-in one"
	api "$RO" GET /api/v1/openapi.json
	expect_status 200 "openapi.json"
	cmp -s "$T/body" "$PSTOR_SRC_DIR/fs/api/papi_openapi.json" || fail "openapi.json differs"
	check "each of its operations is a route of the server (read-only token: nothing changes)"
	"$PY" - "$T/body" "$URL" "$RO" <<'PYEOF' || fail "a documented operation is not routed"
import json, re, sys, urllib.request, urllib.error
doc, url, tok = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
assert doc["openapi"].startswith("3."), doc["openapi"]
n = 0
for path, item in doc["paths"].items():
    for method in item:
        p = re.sub(r"\{[a-z]+\}", "zz", path)
        r = urllib.request.Request(url + p, method=method.upper(),
                                   headers={"Authorization": "Bearer " + tok})
        try:
            st = urllib.request.urlopen(r, timeout=5).status
            body = b""
        except urllib.error.HTTPError as e:
            st, body = e.code, e.read()
        assert st != 405 and b"no such endpoint" not in body, (method, path, st, body)
        if method != "get":
            assert st == 403, (method, path, st, body)
        n += 1
assert n >= 30, n
PYEOF
	pstor_umount "$M"
}

run_cases
