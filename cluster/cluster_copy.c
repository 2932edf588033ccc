/* cluster/cluster_copy.c - bringing the peer up to date and checking it is: what two boxes decide
 * when they meet (HELLO), the stretch and resync copy (fingerprints first, in the pod's order, at
 * a set rate), the dirty-map cleaner, the leader's decision to serve alone after a restart, and
 * online verify by fingerprints.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster_int.h"

static bool resync_kicked;

void cl_resync_kick(struct cluster *cl)
{
	pthread_mutex_lock(&cl->lock);
	resync_kicked = true;
	pthread_cond_broadcast(&cl->cond);
	pthread_mutex_unlock(&cl->lock);
}

/* ---- meeting the peer ----------------------------------------------------------------------- */

/* ORs the peer's dirty maps (from its HELLO, at the count) into ours: the regions it changed
 * that we may lack are resynced from here, which overwrites them there. Order lock held. */
static void merge_dirty(struct cluster *cl, struct cl_pod *pod, struct cl_rbuf *r)
{
	uint32_t n = cl_get32(r);
	bool any = false;

	for (uint32_t k = 0; k < n && !r->bad; k++) {
		char vn[CL_NAME_MAX + 1];
		cl_get_str(r, vn, sizeof(vn));
		uint64_t bits = cl_get64(r);
		const uint8_t *b = cl_get_bytes(r, (bits + 7) / 8);
		struct cl_member *m = r->bad ? NULL : cl_pod_member(pod, vn);
		if (!m)
			continue;
		pthread_mutex_lock(&pod->lock);
		if (bits > m->dirty_bits)
			cl_member_grow(m, bits * CL_REGION);
		uint64_t nb = bits < m->dirty_bits ? bits : m->dirty_bits;
		for (uint64_t i = 0; i < nb; i++)
			if ((b[i / 8] >> (i % 8)) & 1) {
				any |= !((m->dirty[i / 8] >> (i % 8)) & 1);
				m->dirty[i / 8] |= (uint8_t)(1u << (i % 8));
			}
		pthread_mutex_unlock(&pod->lock);
	}
	if (any) {
		pfs_logl(LOG_NOTICE,
		         "pstorfs: cluster: pod %s: %s changed regions this box may lack: resynced "
		         "from here",
		         pod->name, cl->peer_name);
		cl_pod_save_dirty(cl, pod);
	}
}

void cl_apply_hello(struct cluster *cl, struct cl_rbuf *r)
{
	char peer[CL_NAME_MAX + 1], pname[CL_NAME_MAX + 1], leader[CL_NAME_MAX + 1];

	cl_get_str(r, peer, sizeof(peer));
	uint32_t n = cl_get32(r);
	if (r->bad || strcmp(peer, cl->peer_name))
		return;
	/* A race at the mediator decides epochs and leaders: let it end first. */
	cl_failover_wait_race(cl);
	for (uint32_t i = 0; i < n && !r->bad; i++) {
		cl_get_str(r, pname, sizeof(pname));
		uint64_t epoch = cl_get64(r);
		cl_get_str(r, leader, sizeof(leader));
		cl_get8(r); /* their state: informative */
		bool their_alone = cl_get8(r);
		struct cl_rbuf maps = *r; /* their dirty maps: merged below once roles are known */
		uint32_t nm = cl_get32(r);
		for (uint32_t k = 0; k < nm && !r->bad; k++) {
			char vn[CL_NAME_MAX + 1];
			cl_get_str(r, vn, sizeof(vn));
			uint64_t bits = cl_get64(r);
			if (bits > (1ull << 32)) {
				r->bad = true;
				break;
			}
			cl_get_bytes(r, (bits + 7) / 8);
		}
		if (r->bad)
			break;
		pthread_mutex_lock(&cl->lock);
		struct cl_pod *pod = cl_pod_find(cl, pname);
		pthread_mutex_unlock(&cl->lock);
		if (!pod || strcmp(pod->peer, peer)) {
			pfs_logl(LOG_WARNING,
			         "pstorfs: cluster: %s has pod %s stretched here, this "
			         "box does not: ignored",
			         peer, pname);
			continue;
		}
		pthread_rwlock_wrlock(&pod->order_lock);
		if (atomic_load(&pod->state) == CL_SPLIT ||
		    (epoch == pod->epoch && pod->wrote_alone && their_alone)) {
			/* Both changed the pod alone in the same epoch: neither copy is the pod.
			 * Refuse to merge until an admin says which to keep. */
			pthread_rwlock_unlock(&pod->order_lock);
			pfs_logl(
			    LOG_ERR,
			    "pstorfs: cluster: pod %s: split: both %s and %s changed it alone in "
			    "epoch %llu; `pod resolve %s BOX` keeps one",
			    pod->name, cl->name, peer, (unsigned long long)epoch, pod->name);
			cl_set_state(cl, pod, CL_SPLIT);
			continue;
		}
		if (epoch > pod->epoch ||
		    (epoch == pod->epoch && their_alone && !pod->wrote_alone)) {
			/* The peer served alone (or is the leader of a newer epoch): follow it. */
			pod->epoch = epoch;
			snprintf(pod->leader, sizeof(pod->leader), "%s", leader);
			pod->wrote_alone = false;
			cl_pod_save(cl, pod);
		}
		pthread_mutex_lock(&pod->lock);
		cl_seq_reset(pod, 1);
		pod->applied_seq = 0;
		pod->peer_err = 0;
		pthread_mutex_unlock(&pod->lock);
		if (!strcmp(pod->leader, peer) && strcmp(leader, peer)) {
			/* Each names the other as leader of the same epoch (a handover
			 * interrupted): the name that sorts first leads. */
			if (strcmp(cl->name, peer) < 0)
				snprintf(pod->leader, sizeof(pod->leader), "%s", cl->name);
		}
		cl_failover_link_up(cl, pod);
		if (cl_is_leader(cl, pod))
			merge_dirty(cl, pod, &maps);
		cl_set_state(cl, pod, CL_SYNCING);
		pthread_rwlock_unlock(&pod->order_lock);
	}
	pthread_mutex_lock(&cl->lock);
	cl->link_up = true;
	cl->link_up_since_ns = pfs_now_ns();
	pthread_mutex_unlock(&cl->lock);
	pfs_logl(LOG_NOTICE, "pstorfs: cluster: link to %s up", peer);
	cl_resync_kick(cl);
}

void cl_apply_in_sync(struct cluster *cl, struct cl_pod *pod, uint64_t epoch)
{
	pod->epoch = epoch;
	pod->wrote_alone = false;
	cl_pod_save(cl, pod);
	cl_set_state(cl, pod, CL_IN_SYNC);
}

/* ---- copying -------------------------------------------------------------------------------- */

/* Sends the blocks of region REG of map H (a volume or a snapshot of member VOL) as a WRITE to
 * VOL on the peer, fingerprints only. Caller holds the order lock. */
static int send_region(struct cluster *cl, struct cl_pod *pod, struct pfs_vol *h, const char *vol,
                       uint64_t reg, uint64_t *seq, uint64_t *bytes)
{
	struct pfs_vol_info info;
	struct cl_change cc;
	struct cl_wbuf blocks = {0}, body = {0};
	uint64_t wire = 0;
	int rc;

	pfs_vol_get_info(h, &info);
	uint64_t off = reg * (uint64_t)CL_REGION;
	if (off >= info.size)
		return 0;
	uint64_t len = info.size - off < CL_REGION ? info.size - off : CL_REGION;
	memset(&cc, 0, sizeof(cc));
	cc.c.kind = PFS_CHANGE_WRITE;
	snprintf(cc.name, sizeof(cc.name), "%s", vol);
	cc.c.off = off;
	cc.c.len = len;
	cc.first = off / cl->bs;
	cc.nblk = (len + cl->bs - 1) / cl->bs;
	cc.size_after = info.size;
	rc = cl_encode_blocks(cl, h, cc.first, cc.nblk, &blocks, &wire);
	if (rc)
		goto out;
	cc.blocks = blocks.b;
	cc.blocks_len = blocks.len;
	cl_change_put(&body, &cc);
	rc = cl_send_ordered(cl, pod, CL_MSG_CHANGE, &body, seq, NULL);
	if (!rc) {
		pthread_mutex_lock(&pod->lock);
		pod->wire_bytes += body.len;
		pod->logical_bytes += len;
		pthread_mutex_unlock(&pod->lock);
		*bytes += len;
	}
out:
	cl_wbuf_free(&blocks);
	cl_wbuf_free(&body);
	return rc;
}

/* Sends a change that names maps only (resize, snapshot create), in order. Caller holds the
 * order lock. */
static int send_op(struct cluster *cl, struct cl_pod *pod, const struct pfs_change *c,
                   const char *vol, uint64_t *seq)
{
	struct cl_change cc;
	struct cl_wbuf body = {0};
	int rc;

	memset(&cc, 0, sizeof(cc));
	cc.c = *c;
	cc.c.vol = NULL;
	snprintf(cc.name, sizeof(cc.name), "%s", vol);
	snprintf(cc.snap, sizeof(cc.snap), "%s", c->snap ? c->snap : "");
	cl_change_put(&body, &cc);
	rc = cl_send_ordered(cl, pod, CL_MSG_CHANGE, &body, seq, NULL);
	cl_wbuf_free(&body);
	return rc;
}

/* Paces the copy at the pod's resync_rate. */
static void pace(struct cl_pod *pod, int64_t start_ns, uint64_t bytes)
{
	uint64_t rate = pod->resync_rate;

	if (!rate)
		return;
	int64_t due = start_ns + (int64_t)((double)bytes / (double)rate * 1e9);
	int64_t now = pfs_now_ns();
	if (due > now) {
		struct timespec ts = {(due - now) / 1000000000, (due - now) % 1000000000};
		nanosleep(&ts, NULL);
	}
}

struct snap_list {
	struct {
		char name[CL_NAME_MAX + 1];
		int64_t ctime;
		uint64_t id;
	} s[256];
	int n;
};

static int list_snap(void *arg, struct pfs_vol *v, const struct pfs_vol_info *info)
{
	struct snap_list *l = arg;

	if (l->n < 256) {
		snprintf(l->s[l->n].name, sizeof(l->s[0].name), "%s", info->name);
		l->s[l->n].ctime = info->ctime_ns;
		l->s[l->n].id = info->id;
		l->n++;
	}
	return 0;
}

/* A stretch: each member's snapshots, oldest first, are copied into the peer's volume and taken
 * there, each under one hold of the order lock so no live write lands in them. */
static int copy_snapshots(struct cluster *cl, struct cl_pod *pod, const char *vol, uint64_t gen,
                          uint64_t *seq, uint64_t *bytes, int64_t start_ns)
{
	struct pfs_vol *v = pfs_vol_find(cl->p, PFS_MAP_VOLUME, 0, vol);
	struct snap_list *l = calloc(1, sizeof(*l));
	struct pfs_vol_info info;
	int rc = 0;

	if (!v || !l) {
		rc = v ? -ENOMEM : 0;
		goto out;
	}
	pfs_vol_get_info(v, &info);
	pfs_vol_each(cl->p, PFS_MAP_SNAPSHOT, info.id, list_snap, l);
	/* oldest first, so each snapshot on the peer shares what the next one shares here */
	for (int i = 1; i < l->n; i++)
		for (int j = i; j > 0 && l->s[j].ctime < l->s[j - 1].ctime; j--) {
			__typeof__(l->s[0]) t = l->s[j];
			l->s[j] = l->s[j - 1];
			l->s[j - 1] = t;
		}
	for (int i = 0; i < l->n && !rc; i++) {
		struct pfs_vol *s = pfs_vol_find(cl->p, PFS_MAP_SNAPSHOT, info.id, l->s[i].name);
		struct pfs_vol_info si;
		if (!s)
			continue;
		pfs_vol_get_info(s, &si);
		pthread_rwlock_wrlock(&pod->order_lock);
		for (uint64_t reg = 0; reg * (uint64_t)CL_REGION < si.size && !rc; reg++) {
			if (cl->link_gen != gen)
				rc = -ENOTCONN;
			else
				rc = send_region(cl, pod, s, vol, reg, seq, bytes);
		}
		if (!rc)
			rc = send_op(cl, pod,
			             &(struct pfs_change){.kind = PFS_CHANGE_SNAP_CREATE,
			                                  .snap = l->s[i].name},
			             vol, seq);
		pthread_rwlock_unlock(&pod->order_lock);
		pfs_vol_unref(s);
		pace(pod, start_ns, *bytes);
	}
out:
	if (v)
		pfs_vol_unref(v);
	free(l);
	return rc;
}

/* The snapshot changes made while the peer was away, in order: a delete is sent as is; a
 * snapshot still here is rebuilt on the peer from the member's dirty regions read from the
 * snapshot (the rest of the volume has not changed since the peer left), then taken there. */
static int replay_snapshots(struct cluster *cl, struct cl_pod *pod, uint64_t gen, uint64_t *seq,
                            uint64_t *bytes)
{
	struct cl_rbuf r = {pod->snaps.b, pod->snaps.len, 0, false};
	char vol[CL_NAME_MAX + 1], snap[CL_NAME_MAX + 1];
	int rc = 0;

	while (!rc && r.off < r.len) {
		uint8_t kind = cl_get8(&r);
		cl_get_str(&r, vol, sizeof(vol));
		cl_get_str(&r, snap, sizeof(snap));
		uint64_t id = cl_get64(&r);
		struct cl_member *m = cl_pod_member(pod, vol);
		if (r.bad)
			return -EUCLEAN;
		if (!m)
			continue;
		pthread_rwlock_wrlock(&pod->order_lock);
		if (kind == PFS_CHANGE_SNAP_DELETE) {
			rc = send_op(
			    cl, pod,
			    &(struct pfs_change){.kind = PFS_CHANGE_SNAP_DELETE, .snap = snap}, vol,
			    seq);
		} else {
			struct pfs_vol *s = id ? pfs_vol_by_id(cl->p, id) : NULL;
			for (uint64_t reg = 0; s && !rc && reg < m->dirty_bits; reg++) {
				if (!((m->dirty[reg / 8] >> (reg % 8)) & 1))
					continue;
				rc = cl->link_gen != gen
				         ? -ENOTCONN
				         : send_region(cl, pod, s, vol, reg, seq, bytes);
			}
			if (s && !rc)
				rc = send_op(cl, pod,
				             &(struct pfs_change){.kind = PFS_CHANGE_SNAP_CREATE,
				                                  .snap = snap},
				             vol, seq);
			if (s)
				pfs_vol_unref(s);
		}
		pthread_rwlock_unlock(&pod->order_lock);
	}
	return rc;
}

static uint64_t count_dirty(struct cl_pod *pod)
{
	uint64_t n = 0;

	pthread_mutex_lock(&pod->lock);
	for (int i = 0; i < pod->nvols; i++)
		for (uint64_t b = 0; b < pod->vols[i].dirty_bits; b++)
			n += (pod->vols[i].dirty[b / 8] >> (b % 8)) & 1;
	pthread_mutex_unlock(&pod->lock);
	return n;
}

/* Waits until every change sent is acknowledged (or the link changed): true when it was. */
static bool drained(struct cluster *cl, struct cl_pod *pod, uint64_t gen, int timeout_ms)
{
	struct timespec ts;
	bool ok;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (timeout_ms % 1000) * 1000000l;
	if (ts.tv_nsec >= 1000000000l) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000l;
	}
	pthread_mutex_lock(&pod->lock);
	pod->cond_waiters++;
	while (pod->acked_seq + 1 < pod->next_seq && cl->link_gen == gen && !cl->stop)
		if (pthread_cond_timedwait(&pod->cond, &pod->lock, &ts))
			break;
	pod->cond_waiters--;
	ok = pod->acked_seq + 1 >= pod->next_seq && cl->link_gen == gen;
	pthread_mutex_unlock(&pod->lock);
	return ok;
}

/* Clears the dirty map (ALL) or only its regions not written since the last call. */
static void clear_dirty_locked(struct cl_pod *pod, bool all)
{
	pthread_mutex_lock(&pod->lock);
	for (int i = 0; i < pod->nvols; i++) {
		struct cl_member *m = &pod->vols[i];
		for (uint64_t b = 0; m->dirty && b < cl_member_bytes(m); b++) {
			m->dirty[b] &= all || !m->touched ? 0 : m->touched[b];
			if (m->touched)
				m->touched[b] = 0;
		}
	}
	pod->dirty_unsaved = true;
	pthread_mutex_unlock(&pod->lock);
}

static int resync_pod(struct cluster *cl, struct cl_pod *pod)
{
	uint64_t gen, seq = 0, bytes = 0;
	int64_t start = pfs_now_ns();
	int rc = 0;

	pthread_mutex_lock(&cl->lock);
	gen = cl->link_gen;
	pthread_mutex_unlock(&cl->lock);
	pod->resync_running = true;
	uint64_t total = count_dirty(pod) * (uint64_t)CL_REGION;
	pthread_mutex_lock(&pod->lock);
	pod->peer_err = 0;
	pod->resync_done = 0;
	pod->resync_total = total;
	pthread_mutex_unlock(&pod->lock);
	/* Snapshots taken or deleted while the peer was away first, each at its content; then
	 * the sizes (a volume may have grown or shrunk meanwhile). */
	if (!pod->full_copy)
		rc = replay_snapshots(cl, pod, gen, &seq, &bytes);
	for (int i = 0; i < pod->nvols && !rc; i++) {
		pthread_rwlock_wrlock(&pod->order_lock);
		struct pfs_vol *v = pfs_vol_find(cl->p, PFS_MAP_VOLUME, 0, pod->vols[i].name);
		if (v) {
			struct pfs_vol_info info;
			pfs_vol_get_info(v, &info);
			pfs_vol_unref(v);
			if (!pod->full_copy)
				rc = send_op(cl, pod,
				             &(struct pfs_change){.kind = PFS_CHANGE_RESIZE,
				                                  .size = info.size},
				             pod->vols[i].name, &seq);
		}
		pthread_rwlock_unlock(&pod->order_lock);
	}
	for (int i = 0; i < pod->nvols && !rc && pod->full_copy; i++)
		rc = copy_snapshots(cl, pod, pod->vols[i].name, gen, &seq, &bytes, start);

	/* Then every dirty region, each read under the order lock at its place in the stream. */
	for (int i = 0; i < pod->nvols && !rc; i++) {
		struct cl_member *m = &pod->vols[i];
		for (uint64_t reg = 0; reg < m->dirty_bits && !rc; reg++) {
			if (!((m->dirty[reg / 8] >> (reg % 8)) & 1))
				continue;
			if (cl->link_gen != gen || cl->stop) {
				rc = -ENOTCONN;
				break;
			}
			pthread_rwlock_wrlock(&pod->order_lock);
			struct pfs_vol *v = pfs_vol_find(cl->p, PFS_MAP_VOLUME, 0, m->name);
			if (v) {
				rc = send_region(cl, pod, v, m->name, reg, &seq, &bytes);
				pfs_vol_unref(v);
			}
			pthread_rwlock_unlock(&pod->order_lock);
			pthread_mutex_lock(&pod->lock);
			pod->resync_done += CL_REGION;
			pthread_mutex_unlock(&pod->lock);
			pace(pod, start, bytes);
		}
	}
	/* Done when the peer acknowledged all of it: then the map is clean and the peer serves. */
	pthread_rwlock_wrlock(&pod->order_lock);
	if (!rc && drained(cl, pod, gen, 30000) && !pod->peer_err) {
		clear_dirty_locked(pod, true);
		rc = cl_pod_save_dirty(cl, pod);
		if (!rc)
			rc = cl_send_ordered(cl, pod, CL_MSG_IN_SYNC, &(struct cl_wbuf){0}, &seq,
			                     NULL);
		if (!rc) {
			pod->wrote_alone = false;
			pod->full_copy = false;
			cl_snap_journal_clear(cl, pod);
			cl_pod_save(cl, pod);
			cl_set_state(cl, pod, CL_IN_SYNC);
			cl_failover_in_sync(cl, pod);
			pfs_logl(
			    LOG_NOTICE,
			    "pstorfs: cluster: pod %s in sync with %s (%llu bytes compared, %.1f "
			    "s)",
			    pod->name, pod->peer, (unsigned long long)bytes,
			    (double)(pfs_now_ns() - start) / 1e9);
		}
	} else if (!rc) {
		rc = -EAGAIN; /* the peer failed a change or is slow: go again */
	}
	pthread_rwlock_unlock(&pod->order_lock);
	pod->resync_running = false;
	return rc;
}

void *cl_resync_main(void *arg)
{
	struct cluster *cl = arg;

	for (;;) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_mutex_lock(&cl->lock);
		while (!resync_kicked && !cl->stop)
			if (pthread_cond_timedwait(&cl->cond, &cl->lock, &ts))
				break;
		resync_kicked = false;
		bool stop = cl->stop, up = cl->link_up;
		pthread_mutex_unlock(&cl->lock);
		if (stop)
			break;
		if (!up)
			continue;
		for (int i = 0; i < CL_PODS_MAX; i++) {
			pthread_mutex_lock(&cl->lock);
			struct cl_pod *pod = cl->pods[i];
			pthread_mutex_unlock(&cl->lock);
			if (pod && cl_is_leader(cl, pod) && atomic_load(&pod->state) == CL_SYNCING)
				resync_pod(cl, pod);
		}
	}
	return NULL;
}

/* Manager tick: a restarted leader that hears nothing from its peer serves alone; an in-sync
 * leader with nothing in flight clears its dirty map; a failed peer change starts a resync. */
void cl_resync_tick(struct cluster *cl)
{
	static int64_t last_clean;
	int64_t now = pfs_now_ns();

	for (int i = 0; i < CL_PODS_MAX; i++) {
		pthread_mutex_lock(&cl->lock);
		struct cl_pod *pod = cl->pods[i];
		bool up = cl->link_up;
		uint64_t gen = cl->link_gen;
		pthread_mutex_unlock(&cl->lock);
		if (!pod || !pod->peer[0] || !cl_is_leader(cl, pod))
			continue;
		int st = atomic_load(&pod->state);
		if (st == CL_OFFLINE && !up && (now - cl->boot_ns) / 1000000 > CL_BOOT_WAIT_MS) {
			if (cl_failover_boot(cl, pod))
				continue; /* the mediator decides */
			pthread_rwlock_wrlock(&pod->order_lock);
			pod->epoch++;
			cl_pod_save(cl, pod);
			cl_set_state(cl, pod, CL_DEGRADED);
			pthread_rwlock_unlock(&pod->order_lock);
			continue;
		}
		if (st == CL_IN_SYNC && pod->peer_err) {
			cl_set_state(cl, pod, CL_SYNCING);
			cl_resync_kick(cl);
			continue;
		}
		if (st == CL_IN_SYNC && up && (now - last_clean) / 1000000 > 2000 &&
		    count_dirty(pod)) {
			/* Nothing sent may be unacknowledged while bits go (invariant 3): writers
			 * wait for the exclusive hold, for at most one round trip or so. */
			pthread_rwlock_wrlock(&pod->order_lock);
			bool clean = drained(cl, pod, gen, 100) && !pod->peer_err &&
			             atomic_load(&pod->state) == CL_IN_SYNC;
			if (clean)
				clear_dirty_locked(pod, false);
			pthread_rwlock_unlock(&pod->order_lock);
			if (clean)
				cl_pod_save_dirty(cl,
				                  pod); /* after: a writer's own save comes later */
		}
	}
	if ((now - last_clean) / 1000000 > 2000)
		last_clean = now;
}

/* ---- verify --------------------------------------------------------------------------------- */

static int region_digest(struct cluster *cl, struct pfs_vol *v, uint64_t reg, uint8_t d[32])
{
	struct pfs_vol_info info;
	struct cl_wbuf w = {0};
	int rc;

	pfs_vol_get_info(v, &info);
	uint64_t off = reg * (uint64_t)CL_REGION;
	uint64_t end = off + CL_REGION < info.size ? off + CL_REGION : info.size;
	cl_put64(&w, info.size);
	if (end > off)
		rc = cl_encode_blocks(cl, v, off / cl->bs, (end - off + cl->bs - 1) / cl->bs, &w,
		                      NULL);
	else
		rc = w.err;
	if (!rc)
		rc = engine_sha256(w.b, w.len, d);
	cl_wbuf_free(&w);
	return rc;
}

/* The peer's side: 1 when this box's region differs from the digest sent, 0 when equal. */
int cl_verify_region(struct cluster *cl, struct cl_rbuf *r)
{
	char vol[CL_NAME_MAX + 1];
	uint8_t mine[32];
	struct pfs_vol *v;
	int rc;

	cl_get_str(r, vol, sizeof(vol));
	uint64_t reg = cl_get64(r);
	const uint8_t *theirs = cl_get_bytes(r, 32);
	if (!theirs)
		return -EPROTO;
	v = pfs_vol_find(cl->p, PFS_MAP_VOLUME, 0, vol);
	if (!v)
		return 1;
	rc = region_digest(cl, v, reg, mine);
	pfs_vol_unref(v);
	if (rc)
		return rc;
	if (memcmp(mine, theirs, 32)) {
		pfs_logl(LOG_WARNING, "pstorfs: cluster: verify: %s region %llu differs from %s",
		         vol, (unsigned long long)reg, cl->peer_name);
		return 1;
	}
	return 0;
}

int cl_verify(struct cluster *cl, struct cl_pod *pod)
{
	struct cl_wbuf body = {0};
	uint64_t gen, seq, regions = 0, differ = 0;
	char list[200] = "";
	size_t ll = 0;
	int rc = 0;

	pthread_mutex_lock(&cl->lock);
	gen = cl->link_gen;
	pthread_mutex_unlock(&cl->lock);
	for (int i = 0; i < pod->nvols && !rc; i++) {
		const char *vol = pod->vols[i].name;
		for (uint64_t reg = 0;; reg++) {
			uint8_t d[32];
			pthread_rwlock_wrlock(&pod->order_lock);
			struct pfs_vol *v = pfs_vol_find(cl->p, PFS_MAP_VOLUME, 0, vol);
			struct pfs_vol_info info = {0};
			if (v)
				pfs_vol_get_info(v, &info);
			bool past = !v || (reg && reg * (uint64_t)CL_REGION >= info.size);
			rc = past ? 0 : region_digest(cl, v, reg, d);
			if (v)
				pfs_vol_unref(v);
			if (!past && !rc) {
				cl_put_str(&body, vol);
				cl_put64(&body, reg);
				cl_put_bytes(&body, d, 32);
				pthread_mutex_lock(&pod->lock);
				uint64_t before = pod->verify_differ;
				pthread_mutex_unlock(&pod->lock);
				rc = cl_send_ordered(cl, pod, CL_MSG_VERIFY, &body, &seq, NULL);
				body.len = 0;
				pthread_rwlock_unlock(&pod->order_lock);
				if (!rc && !drained(cl, pod, gen, 10000))
					rc = -EIO;
				pthread_mutex_lock(&pod->lock);
				bool diff = pod->verify_differ != before;
				pthread_mutex_unlock(&pod->lock);
				regions++;
				if (diff) {
					differ++;
					if (ll < sizeof(list) - 40)
						ll += (size_t)snprintf(
						    list + ll, sizeof(list) - ll, "%s%s@%lluM",
						    ll ? " " : "", vol,
						    (unsigned long long)(reg * 4));
				}
				continue;
			}
			pthread_rwlock_unlock(&pod->order_lock);
			break;
		}
	}
	cl_wbuf_free(&body);
	pthread_mutex_lock(&pod->lock);
	pod->verify_regions = regions;
	pod->verify_differ = differ;
	snprintf(pod->verify_msg, sizeof(pod->verify_msg), "%s", list);
	pthread_mutex_unlock(&pod->lock);
	if (rc)
		return rc;
	pfs_set_msg(cl->p, "pod %s: verified %llu regions of 4 MiB with %s: %llu differ%s%s",
	            pod->name, (unsigned long long)regions, pod->peer, (unsigned long long)differ,
	            differ ? ": " : "", list);
	return 0;
}
