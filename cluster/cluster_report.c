/* cluster/cluster_report.c - what the cluster shows: .pstorage/cluster/status in text and JSON,
 * the one-line `cluster` entry of .pstorage/status, and the Prometheus families. Reads state
 * under the locks that guard it, copies, then prints.
 */
#include <stdio.h>
#include <string.h>

#include "cluster_int.h"

struct pod_view {
	char name[CL_NAME_MAX + 1], peer[CL_NAME_MAX + 1], leader[CL_NAME_MAX + 1],
	    preferred[CL_NAME_MAX + 1];
	int state, nvols;
	char vols[512];
	bool async, leading, holds_key, preelect, racing;
	uint8_t noq;
	uint64_t med_rev;
	uint64_t epoch, resync_rate, resync_total, resync_done, out_of_sync, logical, wire;
	uint64_t lag_bytes, verify_regions, verify_differ, in_flight;
	double lag_s;
	char verify_msg[256];
};

static void pod_view(struct cluster *cl, struct cl_pod *pod, struct pod_view *v)
{
	size_t vl = 0;

	memset(v, 0, sizeof(*v));
	snprintf(v->name, sizeof(v->name), "%s", pod->name);
	snprintf(v->peer, sizeof(v->peer), "%s", pod->peer);
	snprintf(v->leader, sizeof(v->leader), "%s", pod->leader);
	snprintf(v->preferred, sizeof(v->preferred), "%s", pod->preferred);
	v->state = atomic_load(&pod->state);
	v->async = pod->async;
	v->leading = cl_is_leader(cl, pod);
	v->epoch = pod->epoch;
	v->resync_rate = pod->resync_rate;
	v->med_rev = pod->med_rev;
	v->holds_key = pod->holds_key;
	v->preelect = pod->preelect_armed || pod->preelect_promised; /* under cl->lock */
	v->racing = pod->racing;
	v->noq = pod->on_no_quorum;
	pthread_mutex_lock(&pod->lock);
	v->nvols = pod->nvols;
	for (int i = 0; i < pod->nvols; i++) {
		struct cl_member *m = &pod->vols[i];
		for (uint64_t b = 0; b < m->dirty_bits; b++)
			if ((m->dirty[b / 8] >> (b % 8)) & 1)
				v->out_of_sync += CL_REGION;
		if (vl < sizeof(v->vols) - CL_NAME_MAX - 2)
			vl += (size_t)snprintf(v->vols + vl, sizeof(v->vols) - vl, "%s%s",
			                       i ? "," : "", m->name);
	}
	v->resync_total = pod->resync_total;
	v->resync_done = pod->resync_done;
	v->logical = pod->logical_bytes;
	v->wire = pod->wire_bytes;
	v->in_flight = pod->next_seq - 1 - pod->acked_seq;
	v->verify_regions = pod->verify_regions;
	v->verify_differ = pod->verify_differ;
	snprintf(v->verify_msg, sizeof(v->verify_msg), "%s", pod->verify_msg);
	/* The lag (RPO): how long the oldest change not acknowledged has been out, and the bytes
	 * sent after the last acknowledged one. */
	if (v->in_flight && v->in_flight <= CL_WINDOW) {
		uint64_t first = pod->acked_seq + 1;
		v->lag_s = (double)(pfs_now_ns() - pod->sent_ns[first % CL_WINDOW]) / 1e9;
		v->lag_bytes = pod->sent_total - (pod->acked_seq && v->in_flight < CL_WINDOW
		                                      ? pod->sent_cum[pod->acked_seq % CL_WINDOW]
		                                      : 0);
	}
	pthread_mutex_unlock(&pod->lock);
	/* When in sync the map may still hold regions of writes in flight (the activity part):
	 * those are not out of sync. */
	if (v->state == CL_IN_SYNC)
		v->out_of_sync = 0;
}

static const char *role(const struct pod_view *v)
{
	if (!v->peer[0])
		return "local";
	return v->leading ? "leader" : "follower";
}

static double progress(const struct pod_view *v)
{
	if (v->state != CL_SYNCING || !v->resync_total)
		return v->state == CL_SYNCING ? 0.0 : 100.0;
	double p = 100.0 * (double)v->resync_done / (double)v->resync_total;
	return p > 100.0 ? 100.0 : p;
}

static void med_json(struct pfs_buf *b, const struct cl_med_report *m)
{
	pfs_buf_printf(b, ",\"mediator\":");
	if (!m->configured) {
		pfs_buf_printf(b, "null");
		return;
	}
	pfs_buf_printf(b, "{\"endpoint\":");
	pfs_buf_json_str(b, m->endpoint);
	pfs_buf_printf(b,
	               ",\"reachable\":%s,\"latency_us\":%lld,\"peer_reachable\":%s,"
	               "\"lease_ttl_s\":%d,\"lease_left_ms\":%lld,\"races_won\":%llu,"
	               "\"races_lost\":%llu,\"last_failover_ms\":%lld,\"keys\":",
	               m->reachable ? "true" : "false", (long long)m->latency_us,
	               m->peer_reachable ? "true" : "false", m->lease_ttl,
	               (long long)m->lease_left_ms, (unsigned long long)m->races_won,
	               (unsigned long long)m->races_lost, (long long)m->last_failover_ms);
	pfs_buf_json_str(b, m->key_base);
	pfs_buf_printf(b, ",\"error\":");
	pfs_buf_json_str(b, m->reachable ? "" : m->err);
	pfs_buf_printf(b, "}");
}

static void med_text(struct pfs_buf *b, const struct cl_med_report *m)
{
	if (!m->configured) {
		pfs_buf_printf(
		    b, "mediator: none (the leader survives a link loss; -o mediator=URL)\n");
		return;
	}
	pfs_buf_printf(b, "mediator: %s %s", m->endpoint,
	               m->reachable ? "reachable" : "unreachable");
	if (m->reachable)
		pfs_buf_printf(b, ", latency %lld us", (long long)m->latency_us);
	else if (m->err[0])
		pfs_buf_printf(b, " (%s)", m->err);
	pfs_buf_printf(b,
	               ", from the peer %s, lease %d s (%lld ms left), races won %llu, lost %llu, "
	               "last failover %lld ms, keys %s\n",
	               m->peer_reachable ? "reachable" : "unreachable", m->lease_ttl,
	               (long long)m->lease_left_ms, (unsigned long long)m->races_won,
	               (unsigned long long)m->races_lost, (long long)m->last_failover_ms,
	               m->key_base);
}

void cluster_report(struct cluster *cl, bool json, struct pfs_buf *b)
{
	struct pod_view v;
	struct clink_stats ls = {0};
	char peer[CL_NAME_MAX + 1], addr[128], err[256], cn[CL_NAME_MAX + 1] = "", fpr[128] = "",
	                                                                  cipher[64] = "";
	bool up;
	double rtt_us;
	uint64_t refused_certs, refused_epochs;
	struct cl_med_report mr;
	int n = 0;

	if (!cl) {
		if (json)
			pfs_buf_printf(b, "{\"name\":null,\"peers\":[],\"pods\":[]}\n");
		else
			pfs_buf_printf(
			    b, "cluster: not configured (mount with -o cluster_name=NAME,"
			       "cluster_listen=ADDR:PORT,cluster_cert=PATH,cluster_key=PATH,"
			       "cluster_ca=PATH)\n");
		return;
	}
	pthread_mutex_lock(&cl->lock);
	snprintf(peer, sizeof(peer), "%s", cl->peer_name);
	snprintf(addr, sizeof(addr), "%s", cl->peer_addr);
	snprintf(err, sizeof(err), "%s", cl->link_err);
	up = cl->link_up;
	rtt_us = (double)cl->rtt_ns / 1000.0;
	refused_certs = cl->refused_certs;
	refused_epochs = cl->refused_epochs;
	if (cl->link) {
		clink_get_stats(cl->link, &ls);
		snprintf(cn, sizeof(cn), "%s", clink_peer_name(cl->link));
		snprintf(fpr, sizeof(fpr), "%s", clink_peer_fingerprint(cl->link));
		snprintf(cipher, sizeof(cipher), "%s", clink_cipher(cl->link));
	}
	pthread_mutex_unlock(&cl->lock);
	cl_failover_stats(cl, &mr);

	if (json) {
		pfs_buf_printf(b, "{\"name\":");
		pfs_buf_json_str(b, cl->name);
		pfs_buf_printf(b, ",\"listen\":");
		pfs_buf_json_str(b, cl->listen_addr);
		pfs_buf_printf(b, ",\"refused_connections\":%llu,\"refused_stale_epochs\":%llu",
		               (unsigned long long)refused_certs,
		               (unsigned long long)refused_epochs);
		med_json(b, &mr);
		pfs_buf_printf(b, ",\"peers\":[");
		if (peer[0]) {
			pfs_buf_printf(b, "{\"name\":");
			pfs_buf_json_str(b, peer);
			pfs_buf_printf(b, ",\"address\":");
			pfs_buf_json_str(b, addr);
			pfs_buf_printf(b,
			               ",\"link\":\"%s\",\"rtt_us\":%.1f,\"bytes_sent\":%llu,"
			               "\"bytes_received\":%llu,\"tls\":{\"peer_cn\":",
			               up ? "up" : "down", up ? rtt_us : 0.0,
			               (unsigned long long)ls.bytes_sent,
			               (unsigned long long)ls.bytes_received);
			pfs_buf_json_str(b, cn);
			pfs_buf_printf(b, ",\"fingerprint\":");
			pfs_buf_json_str(b, fpr);
			pfs_buf_printf(b, ",\"cipher\":");
			pfs_buf_json_str(b, cipher);
			pfs_buf_printf(b, "},\"error\":");
			pfs_buf_json_str(b, up ? "" : err);
			pfs_buf_printf(b, "}");
		}
		pfs_buf_printf(b, "],\"pods\":[");
	} else {
		pfs_buf_printf(b, "box: %s\nlisten: %s\n", cl->name, cl->listen_addr);
		if (peer[0])
			pfs_buf_printf(b,
			               "peer: %s at %s, link %s%s%s, rtt %.0f us, sent %llu B, "
			               "received %llu B, tls %s %s\n",
			               peer, addr, up ? "up" : "down", !up && err[0] ? ": " : "",
			               !up ? err : "", up ? rtt_us : 0.0,
			               (unsigned long long)ls.bytes_sent,
			               (unsigned long long)ls.bytes_received, cn[0] ? cn : "-",
			               cipher[0] ? cipher : "");
		else
			pfs_buf_printf(b, "peer: none (cluster peer add NAME HOST:PORT)\n");
		pfs_buf_printf(b, "refused connections: %llu, refused stale-epoch changes: %llu\n",
		               (unsigned long long)refused_certs,
		               (unsigned long long)refused_epochs);
		med_text(b, &mr);
	}
	for (int i = 0; i < CL_PODS_MAX; i++) {
		pthread_mutex_lock(&cl->lock);
		struct cl_pod *pod = cl->pods[i];
		if (pod)
			pod_view(cl, pod, &v);
		pthread_mutex_unlock(&cl->lock);
		if (!pod)
			continue;
		if (json) {
			pfs_buf_printf(b, "%s{\"name\":", n++ ? "," : "");
			pfs_buf_json_str(b, v.name);
			pfs_buf_printf(b, ",\"state\":\"%s\",\"role\":\"%s\",\"peer\":",
			               v.peer[0] ? cl_state_name((enum cl_pod_state)v.state)
			                         : "local",
			               role(&v));
			pfs_buf_json_str(b, v.peer);
			pfs_buf_printf(b, ",\"leader\":");
			pfs_buf_json_str(b, v.leader);
			pfs_buf_printf(b, ",\"preferred\":");
			pfs_buf_json_str(b, v.preferred);
			pfs_buf_printf(
			    b,
			    ",\"epoch\":%llu,\"replication\":\"%s\",\"resync_rate\":%llu,"
			    "\"volumes\":[",
			    (unsigned long long)v.epoch, v.async ? "async" : "sync",
			    (unsigned long long)v.resync_rate);
			char *save, *tok, tmp[512];
			snprintf(tmp, sizeof(tmp), "%s", v.vols);
			int k = 0;
			for (tok = strtok_r(tmp, ",", &save); tok;
			     tok = strtok_r(NULL, ",", &save)) {
				pfs_buf_printf(b, "%s", k++ ? "," : "");
				pfs_buf_json_str(b, tok);
			}
			pfs_buf_printf(
			    b,
			    "],\"progress_percent\":%.1f,\"out_of_sync_bytes\":%llu,"
			    "\"in_flight_changes\":%llu,\"async_lag_seconds\":%.3f,"
			    "\"async_lag_bytes\":%llu,\"logical_bytes\":%llu,\"wire_bytes\":%llu,"
			    "\"verify\":{\"regions\":%llu,\"differ\":%llu,\"where\":",
			    progress(&v), (unsigned long long)v.out_of_sync,
			    (unsigned long long)v.in_flight, v.lag_s,
			    (unsigned long long)v.lag_bytes, (unsigned long long)v.logical,
			    (unsigned long long)v.wire, (unsigned long long)v.verify_regions,
			    (unsigned long long)v.verify_differ);
			pfs_buf_json_str(b, v.verify_msg);
			pfs_buf_printf(
			    b,
			    "},\"failover\":{\"mediator_revision\":%llu,\"holds_key\":%s,"
			    "\"pre_elected\":%s,\"racing\":%s,\"on_no_quorum\":\"%s\"}}",
			    (unsigned long long)v.med_rev, v.holds_key ? "true" : "false",
			    v.preelect ? "true" : "false", v.racing ? "true" : "false",
			    v.noq ? "suspend" : "io-error");
		} else {
			pfs_buf_printf(
			    b,
			    "pod %s: %s, %s%s%s, epoch %llu, volumes [%s], replication %s, "
			    "preferred %s",
			    v.name, v.peer[0] ? cl_state_name((enum cl_pod_state)v.state) : "local",
			    role(&v), v.peer[0] ? " with " : "", v.peer,
			    (unsigned long long)v.epoch, v.vols, v.async ? "async" : "sync",
			    v.preferred);
			if (v.state == CL_SYNCING)
				pfs_buf_printf(b, ", progress %.1f%%", progress(&v));
			if (v.out_of_sync)
				pfs_buf_printf(b, ", out of sync %llu B",
				               (unsigned long long)v.out_of_sync);
			if (v.logical)
				pfs_buf_printf(b, ", wire %llu B for %llu logical B (%.3f)",
				               (unsigned long long)v.wire,
				               (unsigned long long)v.logical,
				               (double)v.wire / (double)v.logical);
			if (v.verify_regions)
				pfs_buf_printf(b, ", verify: %llu regions, %llu differ",
				               (unsigned long long)v.verify_regions,
				               (unsigned long long)v.verify_differ);
			if (v.peer[0])
				pfs_buf_printf(b, ", on_no_quorum %s%s%s%s",
				               v.noq ? "suspend" : "io-error",
				               v.racing ? ", racing at the mediator" : "",
				               v.holds_key ? ", holds the mediator key" : "",
				               v.preelect ? ", pre-elected leader" : "");
			if (v.med_rev)
				pfs_buf_printf(b, ", mediator revision %llu",
				               (unsigned long long)v.med_rev);
			pfs_buf_printf(b, "\n");
		}
	}
	if (json)
		pfs_buf_printf(b, "]}\n");
}

void cluster_status_line(struct cluster *cl, bool json, struct pfs_buf *b)
{
	int count[CL_SPLIT + 1] = {0}, pods = 0;
	bool up = false;

	if (cl) {
		pthread_mutex_lock(&cl->lock);
		up = cl->link_up;
		for (int i = 0; i < CL_PODS_MAX; i++)
			if (cl->pods[i]) {
				pods++;
				count[atomic_load(&cl->pods[i]->state)]++;
			}
		pthread_mutex_unlock(&cl->lock);
	}
	if (json) {
		if (!cl) {
			pfs_buf_printf(b, "\"standalone\"");
			return;
		}
		pfs_buf_printf(b, "{\"name\":");
		pfs_buf_json_str(b, cl->name);
		pfs_buf_printf(b, ",\"peer\":");
		pfs_buf_json_str(b, cl->peer_name);
		pfs_buf_printf(b, ",\"link\":\"%s\",\"pods\":%d", up ? "up" : "down", pods);
		for (int s = CL_LOCAL; s <= CL_SPLIT; s++)
			pfs_buf_printf(b, ",\"%s\":%d", cl_state_name((enum cl_pod_state)s),
			               count[s]);
		pfs_buf_printf(b, "}");
		return;
	}
	if (!cl) {
		pfs_buf_printf(b, "standalone");
		return;
	}
	pfs_buf_printf(b, "box %s, peer %s %s, %d pods", cl->name,
	               cl->peer_name[0] ? cl->peer_name : "none", up ? "up" : "down", pods);
	for (int s = CL_IN_SYNC; s <= CL_SPLIT; s++)
		if (count[s])
			pfs_buf_printf(b, ", %d %s", count[s], cl_state_name((enum cl_pod_state)s));
}

void cluster_metrics(struct cluster *cl, struct pfs_buf *b)
{
	struct pod_view v;

	if (!cl)
		return;
	pthread_mutex_lock(&cl->lock);
	bool up = cl->link_up;
	double rtt = (double)cl->rtt_ns / 1e9;
	uint64_t rc = cl->refused_certs, re = cl->refused_epochs;
	pthread_mutex_unlock(&cl->lock);
	pfs_buf_printf(
	    b,
	    "# HELP pstorfs_cluster_link_up 1 when the link to the peer is up.\n"
	    "# TYPE pstorfs_cluster_link_up gauge\npstorfs_cluster_link_up %d\n"
	    "# HELP pstorfs_cluster_rtt_seconds Round trip to the peer (heartbeat).\n"
	    "# TYPE pstorfs_cluster_rtt_seconds gauge\npstorfs_cluster_rtt_seconds %.6f\n"
	    "# HELP pstorfs_cluster_refused_connections_total Connections refused "
	    "(certificate or name).\n"
	    "# TYPE pstorfs_cluster_refused_connections_total counter\n"
	    "pstorfs_cluster_refused_connections_total %llu\n"
	    "# HELP pstorfs_cluster_refused_stale_epoch_total Changes refused for a "
	    "stale epoch.\n"
	    "# TYPE pstorfs_cluster_refused_stale_epoch_total counter\n"
	    "pstorfs_cluster_refused_stale_epoch_total %llu\n",
	    up, up ? rtt : 0.0, (unsigned long long)rc, (unsigned long long)re);
	struct cl_med_report m;
	cl_failover_stats(cl, &m);
	if (m.configured)
		pfs_buf_printf(
		    b,
		    "# HELP pstorfs_cluster_mediator_reachable 1 when the mediator (etcd) "
		    "answered the last request.\n"
		    "# TYPE pstorfs_cluster_mediator_reachable gauge\n"
		    "pstorfs_cluster_mediator_reachable %d\n"
		    "# HELP pstorfs_cluster_mediator_latency_seconds Time of the last answered "
		    "mediator request.\n"
		    "# TYPE pstorfs_cluster_mediator_latency_seconds gauge\n"
		    "pstorfs_cluster_mediator_latency_seconds %.6f\n"
		    "# HELP pstorfs_cluster_races_total Races for a pod at the mediator, by "
		    "result.\n"
		    "# TYPE pstorfs_cluster_races_total counter\n"
		    "pstorfs_cluster_races_total{result=\"won\"} %llu\n"
		    "pstorfs_cluster_races_total{result=\"lost\"} %llu\n"
		    "# HELP pstorfs_cluster_last_failover_seconds From the link lost to serving "
		    "alone, at the last race won.\n"
		    "# TYPE pstorfs_cluster_last_failover_seconds gauge\n"
		    "pstorfs_cluster_last_failover_seconds %.3f\n",
		    m.reachable, (double)m.latency_us / 1e6, (unsigned long long)m.races_won,
		    (unsigned long long)m.races_lost, (double)m.last_failover_ms / 1e3);
	static const char *const fams[][3] = {
	    {"pstorfs_cluster_pod_state", "gauge", "1 for the pod's state on this box."},
	    {"pstorfs_cluster_pod_epoch", "gauge", "The pod's epoch."},
	    {"pstorfs_cluster_pod_out_of_sync_bytes", "gauge", "Bytes the peer may lack."},
	    {"pstorfs_cluster_pod_logical_bytes_total", "counter", "Logical bytes replicated."},
	    {"pstorfs_cluster_pod_wire_bytes_total", "counter", "Bytes on the wire for them."},
	};
	for (size_t f = 0; f < sizeof(fams) / sizeof(fams[0]); f++) {
		pfs_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", fams[f][0], fams[f][2],
		               fams[f][0], fams[f][1]);
		for (int i = 0; i < CL_PODS_MAX; i++) {
			pthread_mutex_lock(&cl->lock);
			struct cl_pod *pod = cl->pods[i];
			if (pod)
				pod_view(cl, pod, &v);
			pthread_mutex_unlock(&cl->lock);
			if (!pod)
				continue;
			switch (f) {
			case 0:
				for (int s = CL_LOCAL; s <= CL_SPLIT; s++)
					pfs_buf_printf(b, "%s{pod=\"%s\",state=\"%s\"} %d\n",
					               fams[f][0], v.name,
					               cl_state_name((enum cl_pod_state)s),
					               s == v.state);
				break;
			case 1:
				pfs_buf_printf(b, "%s{pod=\"%s\"} %llu\n", fams[f][0], v.name,
				               (unsigned long long)v.epoch);
				break;
			case 2:
				pfs_buf_printf(b, "%s{pod=\"%s\"} %llu\n", fams[f][0], v.name,
				               (unsigned long long)v.out_of_sync);
				break;
			case 3:
				pfs_buf_printf(b, "%s{pod=\"%s\"} %llu\n", fams[f][0], v.name,
				               (unsigned long long)v.logical);
				break;
			case 4:
				pfs_buf_printf(b, "%s{pod=\"%s\"} %llu\n", fams[f][0], v.name,
				               (unsigned long long)v.wire);
				break;
			}
		}
	}
}
