/* cluster/cluster_core.c - the cluster's state on this box: opening and closing, the pods and
 * the peer as blobs on the namespace (so a restart or a move of the namespace keeps them), the
 * volume tags that make "which pod is this volume in" one load, and the dirty maps.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_int.h"

static const char *const state_names[] = {
    [CL_LOCAL] = "local",       [CL_IN_SYNC] = "in_sync", [CL_SYNCING] = "syncing",
    [CL_DEGRADED] = "degraded", [CL_OFFLINE] = "offline", [CL_SPLIT] = "split",
};

const char *cl_state_name(enum cl_pod_state s)
{
	return (unsigned)s < sizeof(state_names) / sizeof(state_names[0]) ? state_names[s] : "?";
}

struct cl_pod *cl_pod_find(struct cluster *cl, const char *name)
{
	for (int i = 0; i < CL_PODS_MAX; i++)
		if (cl->pods[i] && !strcmp(cl->pods[i]->name, name))
			return cl->pods[i];
	return NULL;
}

struct cl_pod *cl_pod_of_vol(struct cluster *cl, struct pfs_vol *v)
{
	uint32_t tag = pfs_vol_tag(v);

	return tag && tag <= CL_PODS_MAX ? cl->pods[tag - 1] : NULL;
}

struct cl_member *cl_pod_member(struct cl_pod *pod, const char *vol)
{
	for (int i = 0; i < pod->nvols; i++)
		if (!strcmp(pod->vols[i].name, vol))
			return &pod->vols[i];
	return NULL;
}

bool cl_is_leader(struct cluster *cl, struct cl_pod *pod)
{
	return !strcmp(pod->leader, cl->name);
}

void cl_set_state(struct cluster *cl, struct cl_pod *pod, enum cl_pod_state s)
{
	int old = atomic_exchange(&pod->state, (int)s);

	if (old != (int)s)
		pfs_logl(s == CL_DEGRADED || s == CL_OFFLINE || s == CL_SPLIT ? LOG_WARNING
		                                                              : LOG_NOTICE,
		         "pstorfs: cluster: pod %s: %s -> %s (epoch %llu)", pod->name,
		         cl_state_name((enum cl_pod_state)old), cl_state_name(s),
		         (unsigned long long)pod->epoch);
	pthread_mutex_lock(&pod->lock);
	if (s == CL_OFFLINE || s == CL_SPLIT)
		pod->lost_gen = pod->seq_gen + 1;
	pthread_cond_broadcast(&pod->cond);
	for (int i = 0; i < CL_ACK_CONDS; i++)
		pthread_cond_broadcast(&pod->ack_cond[i]);
	bool pending = pod->npending;
	pthread_mutex_unlock(&pod->lock);
	if (pending) /* the writes answered later, woken as the waiters above are */
		cl_pending_settle(cl, pod, 0);
}

/* ---- dirty maps -------------------------------------------------------------------------- */

int cl_member_grow(struct cl_member *m, uint64_t size)
{
	uint64_t bits = (size + CL_REGION - 1) / CL_REGION;

	if (bits <= m->dirty_bits)
		return 0;
	size_t old = (m->dirty_bits + 7) / 8, n = (bits + 7) / 8;
	if (n > old) {
		uint8_t *nb = realloc(m->dirty, n);
		if (!nb)
			return -ENOMEM;
		memset(nb + old, 0, n - old);
		m->dirty = nb;
		nb = realloc(m->touched, n);
		if (!nb)
			return -ENOMEM;
		memset(nb + old, 0, n - old);
		m->touched = nb;
	}
	m->dirty_bits = bits;
	return 0;
}

bool cl_mark_dirty(struct cl_member *m, uint64_t off, uint64_t len)
{
	bool fresh = false;

	if (!len)
		len = 1;
	uint64_t a = off / CL_REGION, b = (off + len - 1) / CL_REGION;
	if (cl_member_grow(m, (b + 1) * (uint64_t)CL_REGION))
		b = m->dirty_bits ? m->dirty_bits - 1 : 0; /* cannot grow: the whole map then */
	if (m->dirty_bits && !m->touched)
		m->touched = calloc(1, (size_t)(cl_member_bytes(m)));
	for (uint64_t i = a; i <= b && i < m->dirty_bits; i++) {
		if (m->touched)
			m->touched[i / 8] |= (uint8_t)(1u << (i % 8));
		if (!(m->dirty[i / 8] & (1u << (i % 8)))) {
			m->dirty[i / 8] |= (uint8_t)(1u << (i % 8));
			fresh = true;
		}
	}
	return fresh;
}

bool cl_dirty_durable(const struct cl_member *m, uint64_t off, uint64_t len)
{
	uint64_t a = off / CL_REGION, b = (off + (len ? len : 1) - 1) / CL_REGION;

	if (!m->durable || b / 8 >= m->durable_len)
		return false;
	for (uint64_t i = a; i <= b; i++)
		if (!(m->durable[i / 8] & (1u << (i % 8))))
			return false;
	return true;
}

void cl_seq_reset(struct cl_pod *pod, uint64_t next)
{
	pod->next_seq = next;
	pod->acked_seq = next - 1;
	pod->seq_gen++;
	memset(pod->acked_bits, 0, sizeof(pod->acked_bits));
}

uint64_t cl_vol_size(struct cluster *cl, const char *name)
{
	struct pfs_vol *v = pfs_vol_find(cl->p, PFS_MAP_VOLUME, 0, name);
	struct pfs_vol_info info = {0};

	if (v) {
		pfs_vol_get_info(v, &info);
		pfs_vol_unref(v);
	}
	return info.size;
}

void cl_pod_mark_all_dirty(struct cluster *cl, struct cl_pod *pod)
{
	for (int i = 0; i < pod->nvols; i++) {
		uint64_t size = cl_vol_size(cl, pod->vols[i].name);
		pthread_mutex_lock(&pod->lock);
		cl_mark_dirty(&pod->vols[i], 0, size ? size : 1);
		pthread_mutex_unlock(&pod->lock);
	}
}

/* ---- persistence ---------------------------------------------------------------------------- */
/* Blob keys: "cl/peer", "cl/pod/POD", "cl/dirty/POD/VOLUME". */
/* Version 2 adds the failover fields after the volumes (a version-1 record loads with none). */
#define POD_BLOB_VERSION 2u

int cl_pod_save(struct cluster *cl, struct cl_pod *pod)
{
	struct cl_wbuf w = {0};
	char key[96];
	int rc;

	cl_put32(&w, POD_BLOB_VERSION);
	cl_put_str(&w, pod->peer);
	cl_put_str(&w, pod->leader);
	cl_put_str(&w, pod->preferred);
	cl_put8(&w, pod->async);
	cl_put64(&w, pod->resync_rate);
	cl_put64(&w, pod->epoch);
	cl_put8(&w, pod->wrote_alone);
	cl_put32(&w, (uint32_t)pod->nvols);
	for (int i = 0; i < pod->nvols; i++)
		cl_put_str(&w, pod->vols[i].name);
	cl_put64(&w, pod->med_rev);
	cl_put64(&w, pod->race_nonce);
	cl_put8(&w, pod->holds_key);
	cl_put8(&w, pod->preelect_promised);
	cl_put8(&w, pod->on_no_quorum);
	snprintf(key, sizeof(key), "cl/pod/%s", pod->name);
	rc = w.err ? w.err : pfs_blob_put(cl->p, key, w.b, w.len);
	cl_wbuf_free(&w);
	if (rc)
		pfs_logl(LOG_ERR, "pstorfs: cluster: cannot save pod %s: %s", pod->name,
		         strerror(-rc));
	return rc;
}

int cl_pod_save_dirty(struct cluster *cl, struct cl_pod *pod)
{
	return cl_pod_save_dirty_upto(cl, pod, UINT64_MAX);
}

int cl_pod_save_dirty_upto(struct cluster *cl, struct cl_pod *pod, uint64_t gen)
{
	uint64_t copied = 0;
	char key[160];
	int rc = 0;

	/* Saves are serialized and each copies the maps inside that order, so the last one
	 * written holds every bit set before it started; pod->lock is held only for the copy
	 * (acknowledgements take it), not for the SQLite commit. Writers that marked regions
	 * while a save ran wait for the next one, and the first of them saves for all: a run of
	 * fresh regions (a job starting on clean regions) costs a few commits, not one each. */
	pthread_mutex_lock(&pod->save_lock);
	pthread_mutex_lock(&pod->lock);
	bool covered = pod->dirty_saved_gen >= gen;
	pthread_mutex_unlock(&pod->lock);
	if (covered) {
		pthread_mutex_unlock(&pod->save_lock);
		return 0;
	}
	for (int i = 0; !rc; i++) {
		pthread_mutex_lock(&pod->lock);
		if (i == 0)
			copied = pod->dirty_gen; /* every mark counted so far is in the copies */
		if (i >= pod->nvols) {
			pod->dirty_unsaved = false;
			pthread_mutex_unlock(&pod->lock);
			break;
		}
		struct cl_member *m = &pod->vols[i];
		size_t n = (m->dirty_bits + 7) / 8;
		uint8_t *copy = malloc(n ? n : 1);
		char vol[CL_NAME_MAX + 1];
		if (copy && n)
			memcpy(copy, m->dirty, n);
		snprintf(vol, sizeof(vol), "%s", m->name);
		snprintf(key, sizeof(key), "cl/dirty/%s/%s", pod->name, m->name);
		pthread_mutex_unlock(&pod->lock);
		rc = copy ? pfs_blob_put(cl->p, key, copy, n) : -ENOMEM;
		if (!rc) {
			/* Committed: this copy is what a crash leaves (the member may have been
			 * removed meanwhile; saves are serialized, so no older copy lands later).
			 */
			pthread_mutex_lock(&pod->lock);
			m = cl_pod_member(pod, vol);
			if (m) {
				free(m->durable);
				m->durable = copy;
				m->durable_len = n;
				copy = NULL;
			}
			pthread_mutex_unlock(&pod->lock);
		}
		free(copy);
	}
	if (!rc) {
		pthread_mutex_lock(&pod->lock);
		if (copied > pod->dirty_saved_gen)
			pod->dirty_saved_gen = copied;
		pthread_mutex_unlock(&pod->lock);
	}
	pthread_mutex_unlock(&pod->save_lock);
	if (rc)
		pfs_logl(LOG_ERR, "pstorfs: cluster: cannot save the dirty map of pod %s: %s",
		         pod->name, strerror(-rc));
	return rc;
}

int cl_snap_journal_add(struct cluster *cl, struct cl_pod *pod, enum pfs_change_kind kind,
                        const char *vol, const char *snap)
{
	uint64_t id = 0;
	char key[96];

	if (kind == PFS_CHANGE_SNAP_CREATE) {
		struct pfs_vol *v = pfs_vol_find(cl->p, PFS_MAP_VOLUME, 0, vol), *s = NULL;
		struct pfs_vol_info info;
		if (v) {
			pfs_vol_get_info(v, &info);
			s = pfs_vol_find(cl->p, PFS_MAP_SNAPSHOT, info.id, snap);
			pfs_vol_unref(v);
		}
		if (s) {
			pfs_vol_get_info(s, &info);
			id = info.id;
			pfs_vol_unref(s);
		}
	}
	cl_put8(&pod->snaps, (uint8_t)kind);
	cl_put_str(&pod->snaps, vol);
	cl_put_str(&pod->snaps, snap);
	cl_put64(&pod->snaps, id);
	if (pod->snaps.err)
		return pod->snaps.err;
	snprintf(key, sizeof(key), "cl/snaps/%s", pod->name);
	return pfs_blob_put(cl->p, key, pod->snaps.b, pod->snaps.len);
}

int cl_snap_journal_clear(struct cluster *cl, struct cl_pod *pod)
{
	char key[96];

	if (!pod->snaps.len)
		return 0;
	cl_wbuf_free(&pod->snaps);
	snprintf(key, sizeof(key), "cl/snaps/%s", pod->name);
	return pfs_blob_delete(cl->p, key);
}

static int load_snaps(void *arg, const char *key, const void *val, size_t len)
{
	struct cluster *cl = arg;
	struct cl_pod *pod = cl_pod_find(cl, key + 9);

	if (pod)
		cl_put_bytes(&pod->snaps, val, len);
	return pod ? pod->snaps.err : 0;
}

static struct cl_pod *pod_alloc(const char *name)
{
	struct cl_pod *pod = calloc(1, sizeof(*pod));

	if (!pod)
		return NULL;
	snprintf(pod->name, sizeof(pod->name), "%s", name);
	snprintf(pod->preferred, sizeof(pod->preferred), "auto");
	pthread_rwlockattr_t ra;
	pthread_rwlockattr_init(&ra);
	/* A snapshot or a copy step (exclusive) must not starve behind a stream of writes. */
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&pod->order_lock, &ra);
	pthread_rwlockattr_destroy(&ra);
	pthread_mutex_init(&pod->send_lock, NULL);
	pthread_mutex_init(&pod->save_lock, NULL);
	pthread_mutex_init(&pod->lock, NULL);
	pthread_cond_init(&pod->cond, NULL);
	for (int i = 0; i < CL_ACK_CONDS; i++)
		pthread_cond_init(&pod->ack_cond[i], NULL);
	pod->next_seq = 1;
	return pod;
}

static void pod_free(struct cl_pod *pod)
{
	if (!pod)
		return;
	for (int i = 0; i < pod->nvols; i++) {
		free(pod->vols[i].dirty);
		free(pod->vols[i].touched);
		free(pod->vols[i].durable);
	}
	free(pod->vols);
	cl_wbuf_free(&pod->snaps);
	pthread_rwlock_destroy(&pod->order_lock);
	pthread_mutex_destroy(&pod->send_lock);
	pthread_mutex_destroy(&pod->save_lock);
	pthread_mutex_destroy(&pod->lock);
	pthread_cond_destroy(&pod->cond);
	for (int i = 0; i < CL_ACK_CONDS; i++)
		pthread_cond_destroy(&pod->ack_cond[i]);
	free(pod);
}

int cl_pod_add_member(struct cl_pod *pod, const char *vol)
{
	if (cl_pod_member(pod, vol))
		return -EEXIST;
	if (pod->nvols >= CL_POD_VOLS)
		return -ENOSPC;
	struct cl_member *nv = realloc(pod->vols, sizeof(*nv) * (size_t)(pod->nvols + 1));
	if (!nv)
		return -ENOMEM;
	pod->vols = nv;
	memset(&nv[pod->nvols], 0, sizeof(nv[0]));
	snprintf(nv[pod->nvols].name, sizeof(nv[0].name), "%s", vol);
	pod->nvols++;
	return 0;
}

void cl_pod_drop_member(struct cl_pod *pod, const char *vol)
{
	struct cl_member *m = cl_pod_member(pod, vol);

	if (!m)
		return;
	free(m->dirty);
	free(m->touched);
	free(m->durable);
	int i = (int)(m - pod->vols);
	memmove(&pod->vols[i], &pod->vols[i + 1], sizeof(*m) * (size_t)(pod->nvols - i - 1));
	pod->nvols--;
}

struct cl_pod *cl_pod_new(struct cluster *cl, const char *name)
{
	int slot = -1;

	for (int i = 0; i < CL_PODS_MAX; i++)
		if (!cl->pods[i]) {
			slot = i;
			break;
		}
	if (slot < 0)
		return NULL;
	struct cl_pod *pod = pod_alloc(name);
	if (!pod)
		return NULL;
	pod->slot = (uint32_t)slot;
	cl->pods[slot] = pod;
	return pod;
}

void cl_pod_delete(struct cluster *cl, struct cl_pod *pod)
{
	char key[160];

	for (int i = 0; i < pod->nvols; i++) {
		snprintf(key, sizeof(key), "cl/dirty/%s/%s", pod->name, pod->vols[i].name);
		pfs_blob_delete(cl->p, key);
	}
	snprintf(key, sizeof(key), "cl/pod/%s", pod->name);
	pfs_blob_delete(cl->p, key);
	/* The struct stays until close (threads may still look at it through a tag they read);
	 * only its slot is emptied, so its name is free again. */
	cl->pods[pod->slot] = NULL;
	pod->next_dead = cl->dead;
	cl->dead = pod;
}

static int load_pod(void *arg, const char *key, const void *val, size_t len)
{
	struct cluster *cl = arg;
	struct cl_rbuf r = {val, len, 0, false};
	char vol[CL_NAME_MAX + 1];
	struct cl_pod *pod;

	if (strlen(key) <= 7)
		return 0;
	pod = cl_pod_new(cl, key + 7);
	if (!pod)
		return -ENOMEM;
	uint32_t version = cl_get32(&r);
	if (version != 1 && version != POD_BLOB_VERSION)
		goto bad;
	cl_get_str(&r, pod->peer, sizeof(pod->peer));
	cl_get_str(&r, pod->leader, sizeof(pod->leader));
	cl_get_str(&r, pod->preferred, sizeof(pod->preferred));
	pod->async = cl_get8(&r);
	pod->resync_rate = cl_get64(&r);
	pod->epoch = cl_get64(&r);
	pod->wrote_alone = cl_get8(&r);
	uint32_t n = cl_get32(&r);
	for (uint32_t i = 0; i < n && !r.bad; i++) {
		cl_get_str(&r, vol, sizeof(vol));
		if (!r.bad && cl_pod_add_member(pod, vol))
			goto bad;
	}
	if (version >= 2) {
		pod->med_rev = cl_get64(&r);
		pod->race_nonce = cl_get64(&r);
		pod->holds_key = cl_get8(&r);
		pod->preelect_promised = cl_get8(&r);
		pod->on_no_quorum = cl_get8(&r) ? CL_NOQ_SUSPEND : CL_NOQ_IO_ERROR;
	}
	if (r.bad)
		goto bad;
	/* A stretched pod starts offline here: the manager decides once it has heard from the
	 * peer, or (the leader) once the peer stays silent for CL_BOOT_WAIT_MS. */
	atomic_store(&pod->state, pod->peer[0] ? CL_OFFLINE : CL_LOCAL);
	return 0;
bad:
	pfs_logl(LOG_ERR, "pstorfs: cluster: pod record %s is damaged: ignored", key);
	cl->pods[pod->slot] = NULL;
	pod_free(pod);
	return 0;
}

static int load_dirty(void *arg, const char *key, const void *val, size_t len)
{
	struct cluster *cl = arg;
	char pname[CL_NAME_MAX + 1];
	const char *rest = key + 9, *slash = strchr(rest, '/');
	struct cl_pod *pod;
	struct cl_member *m;

	if (!slash || (size_t)(slash - rest) > CL_NAME_MAX)
		return 0;
	memcpy(pname, rest, (size_t)(slash - rest));
	pname[slash - rest] = 0;
	pod = cl_pod_find(cl, pname);
	m = pod ? cl_pod_member(pod, slash + 1) : NULL;
	if (!m || !len)
		return 0;
	if (cl_member_grow(m, (uint64_t)len * 8 * CL_REGION))
		return -ENOMEM;
	memcpy(m->dirty, val, len);
	free(m->durable);
	m->durable = malloc(len);
	m->durable_len = m->durable ? len : 0;
	if (m->durable)
		memcpy(m->durable, val, len); /* as read back: committed */
	return 0;
}

static int load_peer(void *arg, const char *key, const void *val, size_t len)
{
	struct cluster *cl = arg;
	struct cl_rbuf r = {val, len, 0, false};

	cl_get_str(&r, cl->peer_name, sizeof(cl->peer_name));
	cl_get_str(&r, cl->peer_addr, sizeof(cl->peer_addr));
	if (r.bad)
		cl->peer_name[0] = cl->peer_addr[0] = 0;
	else
		cl_failover_set_peer(cl);
	return 0;
}

int cl_peer_save(struct cluster *cl)
{
	struct cl_wbuf w = {0};
	int rc;

	if (!cl->peer_name[0])
		return pfs_blob_delete(cl->p, "cl/peer");
	cl_put_str(&w, cl->peer_name);
	cl_put_str(&w, cl->peer_addr);
	rc = w.err ? w.err : pfs_blob_put(cl->p, "cl/peer", w.b, w.len);
	cl_wbuf_free(&w);
	return rc;
}

/* Tags every volume with its pod's slot (0 = none): called after membership changes. */
static int tag_vol(void *arg, struct pfs_vol *v, const struct pfs_vol_info *info)
{
	struct cluster *cl = arg;
	uint32_t tag = 0;

	for (int i = 0; i < CL_PODS_MAX && !tag; i++)
		if (cl->pods[i] && cl_pod_member(cl->pods[i], info->name))
			tag = cl->pods[i]->slot + 1;
	pfs_vol_set_tag(v, tag);
	return 0;
}

void cl_pod_tag_all(struct cluster *cl)
{
	pfs_vol_each(cl->p, PFS_MAP_VOLUME, 0, tag_vol, cl);
}

/* ---- open / close ------------------------------------------------------------------------ */

static void queue_init(struct cl_queue *q)
{
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cond, NULL);
}

int cluster_open(struct pfs *p, const struct cluster_opts *o, struct cluster **out, char *msg,
                 size_t msglen)
{
	struct cluster *cl;
	char err[256] = "";
	int rc;

	if (!o->name || !pfs_name_valid(o->name) || !o->listen || !o->cert || !o->key || !o->ca) {
		snprintf(msg, msglen,
		         "cluster: cluster_name (a valid name), cluster_listen, cluster_cert, "
		         "cluster_key and cluster_ca are all needed");
		return -EINVAL;
	}
	cl = calloc(1, sizeof(*cl));
	if (!cl)
		return -ENOMEM;
	cl->p = p;
	cl->eng = pfs_engine(p);
	cl->bs = pfs_block_size(p);
	snprintf(cl->name, sizeof(cl->name), "%s", o->name);
	snprintf(cl->listen_addr, sizeof(cl->listen_addr), "%s", o->listen);
	pthread_mutex_init(&cl->lock, NULL);
	pthread_cond_init(&cl->cond, NULL);
	queue_init(&cl->applyq);
	queue_init(&cl->applyw);
	pthread_mutex_init(&cl->ack_lock, NULL);
	pthread_mutex_init(&cl->inflight_lock, NULL);
	pthread_cond_init(&cl->inflight_cond, NULL);
	queue_init(&cl->workq);
	cl->boot_ns = pfs_now_ns();
	cl->next_req = 1;
	rc = cl_failover_open(cl, o, msg, msglen);
	if (rc)
		goto err_free;

	/* Pins are separated by '+' in the mount option (a comma would end it). */
	char pins[1024] = "";
	if (o->pins) {
		snprintf(pins, sizeof(pins), "%s", o->pins);
		for (char *c = pins; *c; c++)
			if (*c == '+')
				*c = ',';
	}
	rc = clink_tls_new(o->cert, o->key, o->ca, o->pins ? pins : NULL, &cl->tls, err,
	                   sizeof(err));
	if (rc) {
		snprintf(msg, msglen, "cluster: %s", err);
		goto err_free;
	}
	if (strcmp(clink_tls_own_name(cl->tls), o->name)) {
		snprintf(
		    msg, msglen,
		    "cluster: cluster_name=%s but the certificate %s is for %s: they must match",
		    o->name, o->cert, clink_tls_own_name(cl->tls));
		rc = -EACCES;
		goto err_tls;
	}
	rc = clink_listen(cl->tls, o->listen, &cl->lis, err, sizeof(err));
	if (rc) {
		snprintf(msg, msglen, "cluster: cluster_listen=%s: %s", o->listen, err);
		goto err_tls;
	}
	rc = pfs_blob_each(p, "cl/peer", load_peer, cl);
	if (!rc)
		rc = pfs_blob_each(p, "cl/pod/", load_pod, cl);
	if (!rc)
		rc = pfs_blob_each(p, "cl/dirty/", load_dirty, cl);
	if (!rc)
		rc = pfs_blob_each(p, "cl/snaps/", load_snaps, cl);
	if (rc) {
		snprintf(msg, msglen, "cluster: cannot load the pods: %s", strerror(-rc));
		goto err_lis;
	}
	cl_pod_tag_all(cl);
	pfs_set_hooks(p, &(struct pfs_hooks){.arg = cl,
	                                     .change = cl_hook_change,
	                                     .read_gate = cl_hook_read_gate,
	                                     .sync = cl_hook_sync});
	rc = cl_manager_start(cl);
	if (!rc) {
		rc = cl_failover_start(cl);
		if (rc)
			cl_manager_stop(cl);
	}
	if (rc) {
		snprintf(msg, msglen, "cluster: cannot start its threads: %s", strerror(-rc));
		pfs_set_hooks(p, NULL);
		goto err_lis;
	}
	pfs_logl(LOG_NOTICE, "pstorfs: cluster: box %s listening on %s", cl->name, cl->listen_addr);
	*out = cl;
	return 0;

err_lis:
	clink_listener_close(cl->lis);
err_tls:
	clink_tls_free(cl->tls);
err_free:
	for (int i = 0; i < CL_PODS_MAX; i++)
		pod_free(cl->pods[i]);
	cl_failover_stop(cl);
	free(cl);
	return rc;
}

void cluster_close(struct cluster *cl)
{
	if (!cl)
		return;
	pfs_set_hooks(cl->p, NULL);
	cl_manager_stop(cl);
	cl_failover_stop(cl);
	for (int i = 0; i < CL_PODS_MAX; i++) {
		if (cl->pods[i] && cl->pods[i]->dirty_unsaved)
			cl_pod_save_dirty(cl, cl->pods[i]);
		pod_free(cl->pods[i]);
	}
	while (cl->dead) {
		struct cl_pod *next = cl->dead->next_dead;
		pod_free(cl->dead);
		cl->dead = next;
	}
	clink_listener_close(cl->lis);
	clink_tls_free(cl->tls);
	pthread_mutex_destroy(&cl->lock);
	pthread_cond_destroy(&cl->cond);
	pthread_mutex_destroy(&cl->ack_lock);
	cl_wbuf_free(&cl->acks);
	free(cl);
}
