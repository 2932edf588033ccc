#!/bin/bash
# The Prometheus exposition (.pstorage/metrics) as real tools see it: promtool (Debian's
# prometheus package) accepts it, Debian's prometheus-node-exporter serves it through its
# textfile collector (a symlink pstorfs.prom to the metrics file) with the values pstorfs shows
# and the test wrote, and every metric the Grafana dashboard (packaging/grafana/pstorfs.json)
# queries exists. One case per behaviour (lib.sh run_cases). The exporter listens on 127.0.0.1
# only, on a port the kernel picked free, and is stopped in teardown.
. "$(dirname "$0")/lib.sh"
need_binaries

IMG=$T/img
M=$T/m
V=$M/volumes/v
DASHBOARD=$PSTOR_SRC_DIR/packaging/grafana/pstorfs.json
WRITE_MB=8
READ_MB=4

# A store with one 64 MiB volume, WRITE_MB MiB written at 0 and READ_MB MiB read back with
# O_DIRECT (so the reads reach pstorfs, not the page cache): the counters have known values.
setup() {
	pstor_mkfs "$IMG" 1G
	pstor_mount "$IMG" "$M"
	truncate -s 64M "$V"
	rand_file "$T/data" $((WRITE_MB << 20))
	dd if="$T/data" of="$V" bs=1M conv=notrunc,fsync status=none
	dd if="$V" of=/dev/null bs=1M count=$READ_MB iflag=direct status=none
}

# The value of the sample SERIES (name with its labels, as printed) in a text exposition.
sample() { # FILE SERIES
	awk -v s="$2" '$1 == s { print $2; f = 1 } END { exit !f }' "$1" ||
		fail "no sample $2 in $1"
}

case_promtool_check() {
	need promtool
	setup
	cp "$M/.pstorage/metrics" "$T/metrics"
	check "promtool check metrics accepts .pstorage/metrics ($(grep -vc '^#' "$T/metrics") samples)"
	if ! promtool check metrics <"$T/metrics" >"$T/promtool.out" 2>&1; then
		sed 's/^/  /' "$T/promtool.out" >&2
		fail "promtool check metrics found problems"
	fi
	sed 's/^/  promtool: /' "$T/promtool.out"
	check "the I/O counters show what was written and read"
	[ "$(sample "$T/metrics" pstorfs_write_bytes_total)" = $((WRITE_MB << 20)) ] ||
		fail "pstorfs_write_bytes_total is $(sample "$T/metrics" pstorfs_write_bytes_total), wrote $((WRITE_MB << 20))"
	[ "$(sample "$T/metrics" pstorfs_read_bytes_total)" = $((READ_MB << 20)) ] ||
		fail "pstorfs_read_bytes_total is $(sample "$T/metrics" pstorfs_read_bytes_total), read $((READ_MB << 20))"
	ops=$(sample "$T/metrics" pstorfs_write_ops_total)
	[ "$(sample "$T/metrics" 'pstorfs_write_latency_seconds_bucket{le="+Inf"}')" = "$ops" ] ||
		fail "the write histogram's +Inf bucket is not pstorfs_write_ops_total ($ops)"
	[ "$(sample "$T/metrics" pstorfs_write_latency_seconds_count)" = "$ops" ] ||
		fail "pstorfs_write_latency_seconds_count is not pstorfs_write_ops_total ($ops)"
	log "writes: $ops ops, $(sample "$T/metrics" pstorfs_write_latency_seconds_sum) s;" \
		"reads: $(sample "$T/metrics" pstorfs_read_ops_total) ops;" \
		"stats: $(grep -E '^(read|write)_latency_p(50|99)_us' "$M/.pstorage/stats" | tr -s ' ' | tr '\n' ' ')"
	pstor_umount "$M"
}

# ---- node_exporter ------------------------------------------------------------------------
EXPORTER_PID=""
stop_exporter() {
	[ -n "$EXPORTER_PID" ] || return 0
	kill "$EXPORTER_PID" 2>/dev/null || true
	_wait_gone "$EXPORTER_PID" 10 || kill -9 "$EXPORTER_PID" 2>/dev/null || true
	wait "$EXPORTER_PID" 2>/dev/null || true
	EXPORTER_PID=""
}
# Stop the exporter before lib.sh's teardown unmounts (it keeps the metrics file open at most
# for one scrape). _teardown reads the exit status from $?: hand it on, with errexit and the
# ERR trap off (as _teardown runs), or a failing status would end the trap before it.
_status() { return "$1"; }
_teardown_exporter() {
	local rc=$?
	trap - ERR
	set +e
	stop_exporter
	_status $rc
	_teardown
}
trap _teardown_exporter EXIT

free_port() { # a TCP port on 127.0.0.1 nobody listens on now
	"$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The textfile collector reads DIR/*.prom: a symlink to the mount's metrics file means every
# scrape reads the counters of that moment (no copy job, nothing stale).
start_exporter() { # DIR
	local dir=$1 n=0
	PORT=$(free_port)
	prometheus-node-exporter --collector.disable-defaults --collector.textfile \
		--collector.textfile.directory="$dir" --web.disable-exporter-metrics \
		--web.listen-address="127.0.0.1:$PORT" >"$T/exporter.log" 2>&1 &
	EXPORTER_PID=$!
	until curl -fsS "http://127.0.0.1:$PORT/metrics" -o /dev/null 2>/dev/null; do
		_wait_gone "$EXPORTER_PID" 0 && {
			cat "$T/exporter.log" >&2
			fail "prometheus-node-exporter exited"
		}
		n=$((n + 1))
		[ $n -lt 100 ] || fail "prometheus-node-exporter does not answer on 127.0.0.1:$PORT"
		sleep 0.1
	done
}

case_node_exporter() {
	need prometheus-node-exporter curl
	setup
	mkdir "$T/textfile"
	ln -s "$M/.pstorage/metrics" "$T/textfile/pstorfs.prom"
	start_exporter "$T/textfile"
	log "node_exporter on 127.0.0.1:$PORT, textfile dir $T/textfile"
	curl -fsS "http://127.0.0.1:$PORT/metrics" -o "$T/scraped"
	cp "$M/.pstorage/metrics" "$T/metrics"
	check "the scrape has no textfile error, every pstorfs_ series, and the same I/O values"
	[ "$(sample "$T/scraped" node_textfile_scrape_error)" = 0 ] || {
		cat "$T/exporter.log" >&2
		fail "node_textfile_scrape_error is not 0"
	}
	"$PY" - "$T/metrics" "$T/scraped" <<'EOF' || fail "the scrape lacks series or has other values"
import re, sys
def series(path):
    out = {}
    for l in open(path):
        if l.startswith('pstorfs_'):
            k, v = l.rsplit(' ', 1)
            out[k] = float(v)
    return out
ours, scraped = series(sys.argv[1]), series(sys.argv[2])
# node_exporter prints labels sorted and may reformat numbers; compare names+labels as sets.
def norm(k):
    if '{' not in k:
        return k
    n, l = k[:-1].split('{', 1)
    return n + '{' + ','.join(sorted(l.split(','))) + '}'
ours = {norm(k): v for k, v in ours.items()}
scraped = {norm(k): v for k, v in scraped.items()}
missing = sorted(set(ours) - set(scraped))
print('%d pstorfs_ series in .pstorage/metrics, %d in the scrape' % (len(ours), len(scraped)))
if missing:
    print('missing:', missing[:20])
    sys.exit(1)
# Series that nothing changes without I/O (commits and the log run in the background): equal.
still = re.compile(r'pstorfs_((read|write)_|volume|capacity_bytes|provisioned_bytes|logical_bytes)')
differ = [(k, ours[k], scraped[k]) for k in sorted(ours) if still.match(k) and ours[k] != scraped[k]]
print('%d of them compared by value, all equal' % sum(1 for k in ours if still.match(k))
      if not differ else 'differ: %s' % differ)
sys.exit(1 if differ else 0)
EOF
	check "values the test knows come through node_exporter unchanged"
	want_w=$((WRITE_MB << 20)) want_r=$((READ_MB << 20))
	for s in "pstorfs_write_bytes_total $want_w" "pstorfs_read_bytes_total $want_r" \
		"pstorfs_volumes 1" "pstorfs_provisioned_bytes $((64 << 20))" \
		"pstorfs_volume_size_bytes{volume=\"v\"} $((64 << 20))" \
		"pstorfs_logical_bytes $want_w"; do
		name=${s% *} want=${s##* }
		got=$(sample "$T/scraped" "$name")
		[ "$("$PY" -c 'import sys; print(float(sys.argv[1]) == float(sys.argv[2]))' "$got" "$want")" = True ] ||
			fail "$name is $got in the scrape, expected $want"
		log "  $name = $got"
	done
	check "a second scrape sees new I/O (the symlink is read at each scrape)"
	dd if="$V" of=/dev/null bs=1M count=1 skip=4 iflag=direct status=none
	curl -fsS "http://127.0.0.1:$PORT/metrics" -o "$T/scraped2"
	got=$(sample "$T/scraped2" pstorfs_read_bytes_total)
	[ "$("$PY" -c 'import sys; print(float(sys.argv[1]))' "$got")" = "$((want_r + (1 << 20))).0" ] ||
		fail "pstorfs_read_bytes_total is $got after one more MiB read, expected $((want_r + (1 << 20)))"
	stop_exporter
	pstor_umount "$M"
}

case_grafana_dashboard() {
	[ -f "$DASHBOARD" ] || fail "$DASHBOARD is missing"
	setup
	cp "$M/.pstorage/metrics" "$T/metrics"
	check "every metric packaging/grafana/pstorfs.json queries is in .pstorage/metrics"
	"$PY" - "$DASHBOARD" "$T/metrics" "$T/rules.yml" <<'EOF' || fail "dashboard check failed"
import json, re, sys
dash = json.load(open(sys.argv[1]))
exposed = set()
for l in open(sys.argv[2]):
    if l.startswith('pstorfs_'):
        exposed.add(re.match(r'[a-zA-Z_:][a-zA-Z0-9_:]*', l).group(0))
exprs = []
def walk(o):
    if isinstance(o, dict):
        for k, v in o.items():
            if k in ('expr', 'query', 'definition') and isinstance(v, str):
                exprs.append(v)
            else:
                walk(v)
    elif isinstance(o, list):
        for v in o:
            walk(v)
walk(dash)
names = set()
for e in exprs:
    names.update(re.findall(r'\bpstorfs_[a-zA-Z0-9_:]*', e))
panels = sum(1 for p in dash.get('panels', []) if p.get('type') != 'row')
print('%d panels, %d queries, %d metrics queried, %d exposed' % (panels, len(exprs), len(names),
                                                                 len(exposed)))
missing = sorted(names - exposed)
if not exprs or not names:
    print('no queries found')
    sys.exit(1)
if missing:
    print('missing:', ' '.join(missing))
    sys.exit(1)
for section in ('capacity', 'reduction', 'iops', 'latency', 'write amplification', 'wear',
                'health'):
    if not any(section in (p.get('title') or '').lower() for p in dash['panels']):
        print('no panel titled for', section)
        sys.exit(1)
# The panel queries as recording rules, Grafana's variables replaced, for promtool's parser.
with open(sys.argv[3], 'w') as f:
    f.write('groups:\n- name: pstorfs_dashboard\n  rules:\n')
    for i, e in enumerate(exprs):
        if e.startswith('label_values('):
            continue
        e = e.replace('$__rate_interval', '5m').replace('$instance', '.*')
        f.write('  - record: dashboard:query%d\n    expr: %s\n' % (i, json.dumps(e)))
EOF
	if command -v promtool >/dev/null; then
		check "promtool parses every panel query (as recording rules)"
		promtool check rules "$T/rules.yml" >"$T/rules.out" 2>&1 || {
			cat "$T/rules.out" >&2
			fail "promtool check rules: a dashboard query does not parse"
		}
		sed 's/^/  promtool: /' "$T/rules.out"
	else
		log "promtool is not installed: the queries' syntax is not checked"
	fi
	pstor_umount "$M"
}

run_cases
