/* cluster/cluster_ctl.c - the `cluster` and `pod` ctl commands, and the pod definitions they send
 * the peer (POD_DEF, POD_DROP) with what the peer does on receiving them. Every command checks
 * everything before it changes anything, and says why it refused.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_int.h"

static int fail(struct cluster *cl, struct pfs *p, int rc, const char *fmt, const char *a,
                const char *b)
{
	char line[300];

	(void)cl;
	snprintf(line, sizeof(line), fmt, a ? a : "", b ? b : "");
	pfs_set_msg(p, "%s", line);
	return rc;
}

static bool addr_valid(const char *a)
{
	const char *c = strrchr(a, ':');
	char *end;

	if (!c || c == a || strlen(a) > 100)
		return false;
	long port = strtol(c + 1, &end, 10);
	return *end == 0 && port > 0 && port < 65536;
}

/* ---- pod definitions to and from the peer ---------------------------------------------------- */

/* POD_DEF body: leader, preferred, async, resync_rate, on_no_quorum, count, then each volume's name
 * and size. */
static void put_pod_def(struct cluster *cl, struct cl_pod *pod, struct cl_wbuf *w)
{
	cl_put_str(w, pod->leader);
	cl_put_str(w, pod->preferred);
	cl_put8(w, pod->async);
	cl_put64(w, pod->resync_rate);
	cl_put8(w, pod->on_no_quorum);
	cl_put32(w, (uint32_t)pod->nvols);
	for (int i = 0; i < pod->nvols; i++) {
		cl_put_str(w, pod->vols[i].name);
		cl_put64(w, cl_vol_size(cl, pod->vols[i].name));
	}
}

/* Sends the pod's definition in order and waits for the peer's verdict. Caller holds the order
 * lock. */
static int send_pod_def(struct cluster *cl, struct cl_pod *pod)
{
	struct cl_wbuf body = {0};
	uint64_t seq;
	int rc;

	put_pod_def(cl, pod, &body);
	pthread_mutex_lock(&pod->lock);
	pod->peer_err = 0;
	pthread_mutex_unlock(&pod->lock);
	rc = cl_send_ordered(cl, pod, CL_MSG_POD_DEF, &body, &seq, NULL);
	cl_wbuf_free(&body);
	if (rc)
		return rc;
	cl_wait_ack(cl, pod, seq);
	pthread_mutex_lock(&pod->lock);
	rc = pod->acked_seq >= seq ? pod->peer_err : -EIO;
	pod->peer_err = 0;
	pthread_mutex_unlock(&pod->lock);
	return rc;
}

/* The peer's side of POD_DEF: a stretch (the pod is new here: its volumes must not exist), or a
 * changed membership or setting of a pod stretched here. Checks everything, then changes. */
void cl_apply_pod_def(struct cluster *cl, struct cl_rbuf *r, uint64_t epoch, uint64_t seq,
                      const char *pname)
{
	char leader[CL_NAME_MAX + 1], pref[CL_NAME_MAX + 1];
	struct {
		char name[CL_NAME_MAX + 1];
		uint64_t size;
	} *vols = NULL;
	struct cl_pod *pod;
	int rc = 0;

	cl_get_str(r, leader, sizeof(leader));
	cl_get_str(r, pref, sizeof(pref));
	bool async = cl_get8(r);
	uint64_t rate = cl_get64(r);
	uint8_t noq = cl_get8(r);
	uint32_t n = cl_get32(r);
	if (r->bad || n > CL_POD_VOLS) {
		rc = -EPROTO;
		goto out;
	}
	vols = calloc(n ? n : 1, sizeof(*vols));
	if (!vols) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < n; i++) {
		cl_get_str(r, vols[i].name, sizeof(vols[i].name));
		vols[i].size = cl_get64(r);
	}
	if (r->bad) {
		rc = -EPROTO;
		goto out;
	}
	pthread_mutex_lock(&cl->lock);
	pod = cl_pod_find(cl, pname);
	if (pod && strcmp(pod->peer, cl->peer_name)) {
		rc = -EEXIST; /* a pod of that name here, not stretched from this peer */
		pfs_logl(LOG_WARNING,
		         "pstorfs: cluster: %s stretched pod %s here: a local pod has "
		         "that name",
		         cl->peer_name, pname);
	}
	/* A volume that would join must not exist here, unless it is already this pod's. */
	for (uint32_t i = 0; i < n && !rc; i++) {
		if (pod && cl_pod_member(pod, vols[i].name))
			continue;
		struct pfs_vol *v = pfs_vol_find(cl->p, PFS_MAP_VOLUME, 0, vols[i].name);
		if (v) {
			pfs_vol_unref(v);
			rc = -EEXIST;
			pfs_logl(LOG_WARNING,
			         "pstorfs: cluster: cannot stretch pod %s here: volume %s exists",
			         pname, vols[i].name);
		}
	}
	if (!rc && !pod) {
		pod = cl_pod_new(cl, pname);
		if (!pod)
			rc = -ENOSPC;
		else {
			snprintf(pod->peer, sizeof(pod->peer), "%s", cl->peer_name);
			atomic_store(&pod->state, CL_SYNCING);
		}
	}
	pthread_mutex_unlock(&cl->lock);
	for (uint32_t i = 0; i < n && !rc; i++) {
		if (cl_pod_member(pod, vols[i].name))
			continue;
		rc = pfs_change_apply_local(cl->p,
		                            &(struct pfs_change){.kind = PFS_CHANGE_VOL_CREATE,
		                                                 .name = vols[i].name,
		                                                 .size = vols[i].size},
		                            NULL, NULL);
		if (!rc)
			rc = cl_pod_add_member(pod, vols[i].name);
	}
	if (!rc) {
		/* Members the leader no longer lists leave the pod; their volumes stay here. */
		for (int i = pod->nvols - 1; i >= 0; i--) {
			bool keep = false;
			for (uint32_t k = 0; k < n && !keep; k++)
				keep = !strcmp(vols[k].name, pod->vols[i].name);
			if (!keep)
				cl_pod_drop_member(pod, pod->vols[i].name);
		}
		if (atomic_load(&pod->state) == CL_SPLIT && strcmp(leader, cl->name)) {
			/* `pod resolve` on the peer kept its copy: this one is overwritten. */
			pod->wrote_alone = false;
			cl_set_state(cl, pod, CL_SYNCING);
		}
		snprintf(pod->leader, sizeof(pod->leader), "%s", leader);
		snprintf(pod->preferred, sizeof(pod->preferred), "%s", pref);
		pod->async = async;
		pod->resync_rate = rate;
		pod->on_no_quorum = noq ? CL_NOQ_SUSPEND : CL_NOQ_IO_ERROR;
		if (epoch > pod->epoch)
			pod->epoch = epoch;
		rc = cl_pod_save(cl, pod);
		cl_pod_tag_all(cl);
		if (cl_is_leader(cl, pod)) {
			/* A handover: this box sequences from now on, with the stream as it is. */
			pthread_mutex_lock(&pod->lock);
			cl_seq_reset(pod, seq + 1);
			pthread_mutex_unlock(&pod->lock);
		}
	}
out:
	free(vols);
	cl_send_ack(cl, pname, seq, rc);
}

void cl_apply_pod_drop(struct cluster *cl, struct cl_pod *pod)
{
	pthread_mutex_lock(&cl->lock);
	cl_pod_delete(cl, pod);
	pthread_mutex_unlock(&cl->lock);
	cl_pod_tag_all(cl);
	pfs_logl(LOG_NOTICE, "pstorfs: cluster: pod %s unstretched by %s: its volumes stay here",
	         pod->name, cl->peer_name);
}

/* ---- commands ------------------------------------------------------------------------------- */

static int cmd_peer(struct cluster *cl, struct pfs *p, int argc, char **argv)
{
	int rc;

	if (argc == 5 && !strcmp(argv[2], "add")) {
		if (!pfs_name_valid(argv[3]) || !strcmp(argv[3], cl->name))
			return fail(cl, p, -EINVAL, "cluster peer add %s: %s", argv[3],
			            "bad name (or this box's own)");
		if (!addr_valid(argv[4]))
			return fail(cl, p, -EINVAL,
			            "cluster peer add: bad address %s%s (HOST:PORT)", argv[4],
			            NULL);
		pthread_mutex_lock(&cl->lock);
		if (cl->peer_name[0] && strcmp(cl->peer_name, argv[3])) {
			pthread_mutex_unlock(&cl->lock);
			return fail(cl, p, -EBUSY,
			            "cluster peer add %s: this box's peer is %s: remove it first",
			            argv[3], cl->peer_name);
		}
		snprintf(cl->peer_name, sizeof(cl->peer_name), "%s", argv[3]);
		snprintf(cl->peer_addr, sizeof(cl->peer_addr), "%s", argv[4]);
		cl_failover_set_peer(cl);
		rc = cl_peer_save(cl);
		pthread_mutex_unlock(&cl->lock);
		if (!rc)
			pfs_set_msg(p, "peer %s at %s", argv[3], argv[4]);
		return rc;
	}
	if (argc == 4 && !strcmp(argv[2], "remove")) {
		pthread_mutex_lock(&cl->lock);
		rc = strcmp(cl->peer_name, argv[3]) ? -ENOENT : 0;
		for (int i = 0; i < CL_PODS_MAX && !rc; i++)
			if (cl->pods[i] && !strcmp(cl->pods[i]->peer, argv[3]))
				rc = -EBUSY;
		if (!rc) {
			cl->peer_name[0] = cl->peer_addr[0] = 0;
			rc = cl_peer_save(cl);
		}
		pthread_mutex_unlock(&cl->lock);
		if (rc == -ENOENT)
			return fail(cl, p, rc, "cluster peer remove %s: no such peer%s", argv[3],
			            NULL);
		if (rc == -EBUSY)
			return fail(cl, p, rc, "cluster peer remove %s: pods are stretched to it%s",
			            argv[3], NULL);
		return rc;
	}
	return fail(cl, p, -EINVAL,
	            "usage: cluster peer add NAME HOST:PORT | cluster peer remove "
	            "NAME%s%s",
	            NULL, NULL);
}

/* Finds POD for a command; for a stretched pod that the command changes, this box must lead. */
static struct cl_pod *pod_for(struct cluster *cl, struct pfs *p, const char *name, bool lead,
                              int *rc)
{
	pthread_mutex_lock(&cl->lock);
	struct cl_pod *pod = cl_pod_find(cl, name);
	pthread_mutex_unlock(&cl->lock);
	*rc = 0;
	if (!pod) {
		*rc = fail(cl, p, -ENOENT, "pod %s: no such pod%s", name, NULL);
		return NULL;
	}
	if (lead && pod->peer[0] && !cl_is_leader(cl, pod)) {
		*rc = fail(cl, p, -EINVAL, "pod %s is sequenced by %s: run the command there", name,
		           pod->leader);
		return NULL;
	}
	return pod;
}

static bool link_up_to(struct cluster *cl, const char *peer)
{
	pthread_mutex_lock(&cl->lock);
	bool up = cl->link_up && !strcmp(cl->peer_name, peer);
	pthread_mutex_unlock(&cl->lock);
	return up;
}

static int cmd_stretch(struct cluster *cl, struct pfs *p, struct cl_pod *pod, const char *peer)
{
	int rc;

	if (pod->peer[0])
		return fail(cl, p, -EBUSY, "pod %s is already stretched to %s", pod->name,
		            pod->peer);
	if (strcmp(peer, cl->peer_name))
		return fail(cl, p, -ENOENT, "pod stretch: %s is not a peer (cluster peer add)%s",
		            peer, NULL);
	if (!link_up_to(cl, peer))
		return fail(cl, p, -ENOTCONN, "pod stretch: no link to %s%s", peer, NULL);
	pthread_rwlock_wrlock(&pod->order_lock);
	snprintf(pod->peer, sizeof(pod->peer), "%s", peer);
	snprintf(pod->leader, sizeof(pod->leader), "%s", cl->name);
	pod->epoch = 1;
	pod->full_copy = true;
	pthread_mutex_lock(&pod->lock);
	cl_seq_reset(pod, 1);
	pthread_mutex_unlock(&pod->lock);
	atomic_store(&pod->state, CL_SYNCING);
	rc = send_pod_def(cl, pod);
	if (rc) {
		pod->peer[0] = pod->leader[0] = 0;
		pod->epoch = 0;
		atomic_store(&pod->state, CL_LOCAL);
		pthread_rwlock_unlock(&pod->order_lock);
		if (rc == -EEXIST)
			return fail(
			    cl, p, rc,
			    "pod stretch %s: %s already has a volume (or pod) of one of its "
			    "names",
			    pod->name, peer);
		return fail(cl, p, rc, "pod stretch %s: %s did not take the pod", pod->name, peer);
	}
	/* Everything is dirty: the copy is the resync of the whole pod. */
	cl_pod_mark_all_dirty(cl, pod);
	rc = cl_pod_save_dirty(cl, pod);
	if (!rc)
		rc = cl_pod_save(cl, pod);
	pthread_rwlock_unlock(&pod->order_lock);
	cl_resync_kick(cl);
	pfs_set_msg(p, "pod %s: stretching to %s (see .pstorage/cluster/status)", pod->name, peer);
	return rc;
}

static int cmd_unstretch(struct cluster *cl, struct pfs *p, struct cl_pod *pod, const char *peer)
{
	struct cl_wbuf body = {0};
	uint64_t seq;

	if (!pod->peer[0] || strcmp(pod->peer, peer))
		return fail(cl, p, -ENOENT, "pod %s is not stretched to %s", pod->name, peer);
	pthread_rwlock_wrlock(&pod->order_lock);
	if (link_up_to(cl, peer) &&
	    cl_send_ordered(cl, pod, CL_MSG_POD_DROP, &body, &seq, NULL) == 0)
		cl_wait_ack(cl, pod, seq);
	pod->peer[0] = pod->leader[0] = 0;
	pod->full_copy = false;
	atomic_store(&pod->state, CL_LOCAL);
	pthread_mutex_lock(&pod->lock);
	for (int i = 0; i < pod->nvols; i++)
		if (pod->vols[i].dirty)
			memset(pod->vols[i].dirty, 0, (pod->vols[i].dirty_bits + 7) / 8);
	pthread_mutex_unlock(&pod->lock);
	cl_pod_save_dirty(cl, pod);
	int rc = cl_pod_save(cl, pod);
	pthread_rwlock_unlock(&pod->order_lock);
	cl_set_state(cl, pod, CL_LOCAL);
	pfs_set_msg(p, "pod %s: unstretched from %s (its volumes stay on both boxes)", pod->name,
	            peer);
	return rc;
}

static int cmd_add_remove(struct cluster *cl, struct pfs *p, struct cl_pod *pod, const char *vol,
                          bool add)
{
	int rc = 0;

	if (add) {
		struct pfs_vol *v = pfs_vol_find(p, PFS_MAP_VOLUME, 0, vol);
		if (!v)
			return fail(cl, p, -ENOENT, "pod add: no such volume %s%s", vol, NULL);
		struct cl_pod *other = cl_pod_of_vol(cl, v);
		pfs_vol_unref(v);
		if (other)
			return fail(cl, p, other == pod ? -EEXIST : -EBUSY,
			            "pod add: volume %s is in pod %s already", vol, other->name);
	} else if (!cl_pod_member(pod, vol)) {
		return fail(cl, p, -ENOENT, "pod remove: volume %s is not in pod %s", vol,
		            pod->name);
	}
	pthread_rwlock_wrlock(&pod->order_lock);
	pthread_mutex_lock(&pod->lock);
	if (add)
		rc = cl_pod_add_member(pod, vol);
	else
		cl_pod_drop_member(pod, vol);
	pthread_mutex_unlock(&pod->lock);
	if (!rc && pod->peer[0]) {
		rc = send_pod_def(cl, pod);
		if (rc && add) {
			pthread_mutex_lock(&pod->lock);
			cl_pod_drop_member(pod, vol);
			pthread_mutex_unlock(&pod->lock);
		} else if (rc) {
			/* Removed here whether the peer heard or not: it drops the member when
			 * it next hears the pod's definition. */
			rc = 0;
		}
		if (!rc && add) {
			uint64_t size = cl_vol_size(cl, vol);
			pthread_mutex_lock(&pod->lock);
			cl_mark_dirty(cl_pod_member(pod, vol), 0, size ? size : 1);
			pthread_mutex_unlock(&pod->lock);
			cl_pod_save_dirty(cl, pod);
			cl_set_state(cl, pod, CL_SYNCING);
		}
	}
	if (!rc)
		rc = cl_pod_save(cl, pod);
	pthread_rwlock_unlock(&pod->order_lock);
	cl_pod_tag_all(cl);
	if (rc == -EEXIST)
		return fail(cl, p, rc, "pod add: %s has a volume %s already", pod->peer, vol);
	if (!rc && pod->peer[0] && add)
		cl_resync_kick(cl);
	if (!rc)
		pfs_set_msg(p, "pod %s: %s %s", pod->name, add ? "added" : "removed", vol);
	return rc;
}

static int cmd_set(struct cluster *cl, struct pfs *p, struct cl_pod *pod, const char *key,
                   const char *val)
{
	uint64_t rate = 0;
	int rc = 0;

	if (!strcmp(key, "preferred")) {
		if (strcmp(val, "auto") && strcmp(val, cl->name) && strcmp(val, cl->peer_name))
			return fail(cl, p, -EINVAL,
			            "pod set preferred %s: auto, this box or its peer%s", val,
			            NULL);
	} else if (!strcmp(key, "replication")) {
		if (strcmp(val, "sync") && strcmp(val, "async"))
			return fail(cl, p, -EINVAL, "pod set replication %s: sync or async%s", val,
			            NULL);
	} else if (!strcmp(key, "on_no_quorum")) {
		if (strcmp(val, "io-error") && strcmp(val, "suspend"))
			return fail(cl, p, -EINVAL,
			            "pod set on_no_quorum %s: io-error or suspend%s", val, NULL);
	} else if (!strcmp(key, "resync_rate")) {
		if (pfs_parse_size(val, &rate))
			return fail(
			    cl, p, -EINVAL,
			    "pod set resync_rate %s: bytes per second (K, M, G), 0 = no limit%s",
			    val, NULL);
	} else {
		return fail(cl, p, -EINVAL,
		            "pod set %s: keys are preferred, replication, "
		            "resync_rate, on_no_quorum%s",
		            key, NULL);
	}
	pthread_rwlock_wrlock(&pod->order_lock);
	if (!strcmp(key, "preferred"))
		snprintf(pod->preferred, sizeof(pod->preferred), "%s", val);
	else if (!strcmp(key, "replication"))
		pod->async = !strcmp(val, "async");
	else if (!strcmp(key, "on_no_quorum"))
		pod->on_no_quorum = strcmp(val, "suspend") ? CL_NOQ_IO_ERROR : CL_NOQ_SUSPEND;
	else
		pod->resync_rate = rate;
	bool handover = pod->peer[0] && !strcmp(key, "preferred") && !strcmp(val, pod->peer);
	if (pod->peer[0]) {
		/* The preferred box leads (part 1: it is the one that serves without the peer).
		 * Handing over: everything sent must be acknowledged first. */
		if (handover) {
			pthread_mutex_lock(&cl->lock);
			uint64_t gen = cl->link_gen;
			pthread_mutex_unlock(&cl->lock);
			(void)gen;
			pthread_mutex_lock(&pod->lock);
			uint64_t last = pod->next_seq - 1;
			pthread_mutex_unlock(&pod->lock);
			cl_wait_ack(cl, pod, last);
			snprintf(pod->leader, sizeof(pod->leader), "%s", pod->peer);
		}
		if (link_up_to(cl, pod->peer))
			rc = send_pod_def(cl, pod);
		else if (handover)
			rc = -ENOTCONN;
		if (rc && handover)
			snprintf(pod->leader, sizeof(pod->leader), "%s", cl->name);
	}
	if (!rc)
		rc = cl_pod_save(cl, pod);
	pthread_rwlock_unlock(&pod->order_lock);
	if (rc)
		return fail(cl, p, rc, "pod set %s: the peer did not take it%s", key, NULL);
	pfs_set_msg(p, "pod %s: %s = %s", pod->name, key, val);
	return 0;
}

static int cmd_resolve(struct cluster *cl, struct pfs *p, struct cl_pod *pod, const char *keep)
{
	int rc;

	if (atomic_load(&pod->state) != CL_SPLIT)
		return fail(cl, p, -EINVAL, "pod resolve %s: the pod is not split%s", pod->name,
		            NULL);
	if (strcmp(keep, cl->name))
		return fail(cl, p, -EINVAL,
		            "pod resolve %s: run it on %s, the box whose copy is kept", pod->name,
		            keep);
	if (!link_up_to(cl, pod->peer))
		return fail(cl, p, -ENOTCONN, "pod resolve %s: no link to %s", pod->name,
		            pod->peer);
	/* This copy wins: a newer epoch, this box leads, and every region goes over again. */
	pthread_rwlock_wrlock(&pod->order_lock);
	pod->epoch++;
	snprintf(pod->leader, sizeof(pod->leader), "%s", cl->name);
	pod->wrote_alone = false;
	cl_pod_mark_all_dirty(cl, pod);
	atomic_store(&pod->state, CL_SYNCING);
	rc = send_pod_def(cl, pod);
	if (!rc)
		rc = cl_pod_save_dirty(cl, pod);
	if (!rc)
		rc = cl_pod_save(cl, pod);
	pthread_rwlock_unlock(&pod->order_lock);
	cl_resync_kick(cl);
	if (!rc)
		pfs_set_msg(p, "pod %s: keeping %s's copy; resyncing %s", pod->name, cl->name,
		            pod->peer);
	return rc;
}

/* A snapshot of every volume of the pod at one point of its order: the order lock held
 * exclusive keeps every write of the pod before or after all of them, on both boxes. */
static int cmd_snapshot(struct cluster *cl, struct pfs *p, struct cl_pod *pod, const char *snap)
{
	int rc = 0, made = 0, st;
	uint64_t seq = 0, gen = 0;

	if (!pfs_name_valid(snap))
		return fail(cl, p, -EINVAL, "pod snapshot %s %s: bad snapshot name", pod->name,
		            snap);
	pthread_rwlock_wrlock(&pod->order_lock);
	st = atomic_load(&pod->state);
	for (int i = 0; i < pod->nvols && !rc; i++) {
		struct pfs_vol *v = pfs_vol_find(p, PFS_MAP_VOLUME, 0, pod->vols[i].name);
		struct pfs_vol_info info;
		if (!v) {
			rc = fail(cl, p, -ENOENT, "pod snapshot: volume %s is gone%s",
			          pod->vols[i].name, NULL);
			break;
		}
		pfs_vol_get_info(v, &info);
		pfs_vol_unref(v);
		struct pfs_vol *s = pfs_vol_find(p, PFS_MAP_SNAPSHOT, info.id, snap);
		if (s) {
			pfs_vol_unref(s);
			rc = fail(cl, p, -EEXIST, "pod snapshot: %s has a snapshot %s already",
			          pod->vols[i].name, snap);
		}
	}
	for (int i = 0; i < pod->nvols && !rc; i++) {
		struct pfs_change c = {
		    .kind = PFS_CHANGE_SNAP_CREATE, .name = pod->vols[i].name, .snap = snap};
		rc = st == CL_LOCAL ? pfs_change_apply_local(p, &c, NULL, NULL)
		                    : cl_leader_apply_locked(cl, pod, &c, &seq, &gen);
		if (!rc)
			made++;
	}
	/* All or none: a failure part way (no space) takes back the snapshots made. */
	for (int i = 0; rc && i < made; i++) {
		struct pfs_change c = {
		    .kind = PFS_CHANGE_SNAP_DELETE, .name = pod->vols[i].name, .snap = snap};
		uint64_t s2;
		if (st == CL_LOCAL)
			pfs_change_apply_local(p, &c, NULL, NULL);
		else
			cl_leader_apply_locked(cl, pod, &c, &s2, NULL);
	}
	pthread_rwlock_unlock(&pod->order_lock);
	if (!rc && seq && !pod->async)
		cl_wait_ack_gen(cl, pod, seq, gen);
	if (!rc)
		pfs_set_msg(p, "pod %s: snapshot %s of %d volumes", pod->name, snap, made);
	return rc;
}

/* Fault injection for the tests: sends the peer a write stamped with an epoch older than the
 * pod's; the peer must refuse it and change nothing. */
static int cmd_replay_stale(struct cluster *cl, struct pfs *p, struct cl_pod *pod)
{
	struct cl_wbuf w = {0};
	struct cl_change cc;
	uint8_t zero = CL_BLK_PATTERN, pat[17] = {1, 0xde, 0xad};
	int rc;

	if (!pod->peer[0] || pod->epoch < 2 || !pod->nvols)
		return fail(cl, p, -EINVAL,
		            "pod %s: needs a stretched pod with a volume in epoch "
		            ">= 2%s",
		            pod->name, NULL);
	memset(&cc, 0, sizeof(cc));
	cc.c.kind = PFS_CHANGE_WRITE;
	snprintf(cc.name, sizeof(cc.name), "%s", pod->vols[0].name);
	cc.c.len = cl->bs;
	cc.first = 0;
	cc.nblk = 1;
	uint8_t blk[18];
	blk[0] = zero;
	memcpy(blk + 1, pat, 17);
	cc.blocks = blk;
	cc.blocks_len = sizeof(blk);
	cl_put_str(&w, pod->name);
	cl_put64(&w, pod->epoch - 1);
	cl_put64(&w, UINT64_MAX / 2);
	cl_change_put(&w, &cc);
	rc = cl_send(cl, CL_MSG_CHANGE, &w);
	cl_wbuf_free(&w);
	if (!rc)
		pfs_set_msg(p, "pod %s: sent %s a write of epoch %llu", pod->name, pod->peer,
		            (unsigned long long)(pod->epoch - 1));
	return rc;
}

/* Fault injection for the tests: what a broken arbiter would do, the box that is not the
 * leader takes the pod over while the link is down, in the leader's new epoch. When the boxes
 * meet again both have written alone in one epoch: a split, which they must refuse to merge. */
static int cmd_take_over(struct cluster *cl, struct pfs *p, struct cl_pod *pod)
{
	if (!pod->peer[0] || cl_is_leader(cl, pod) || atomic_load(&pod->state) != CL_OFFLINE)
		return fail(cl, p, -EINVAL, "pod %s: needs an offline pod this box does not lead%s",
		            pod->name, NULL);
	pthread_rwlock_wrlock(&pod->order_lock);
	pod->epoch++;
	snprintf(pod->leader, sizeof(pod->leader), "%s", cl->name);
	int rc = cl_pod_save(cl, pod);
	pthread_rwlock_unlock(&pod->order_lock);
	if (!rc)
		cl_set_state(cl, pod, CL_DEGRADED);
	return rc;
}

static int cmd_pod(struct cluster *cl, struct pfs *p, int argc, char **argv)
{
	struct cl_pod *pod;
	int rc;

	if (argc == 3 && !strcmp(argv[1], "create")) {
		if (!pfs_name_valid(argv[2]))
			return fail(cl, p, -EINVAL, "pod create %s: bad name%s", argv[2], NULL);
		pthread_mutex_lock(&cl->lock);
		if (cl_pod_find(cl, argv[2])) {
			pthread_mutex_unlock(&cl->lock);
			return fail(cl, p, -EEXIST, "pod create %s: a pod of that name exists%s",
			            argv[2], NULL);
		}
		pod = cl_pod_new(cl, argv[2]);
		pthread_mutex_unlock(&cl->lock);
		if (!pod)
			return fail(cl, p, -ENOSPC, "pod create %s: at most 64 pods%s", argv[2],
			            NULL);
		rc = cl_pod_save(cl, pod);
		if (rc) {
			pthread_mutex_lock(&cl->lock);
			cl_pod_delete(cl, pod);
			pthread_mutex_unlock(&cl->lock);
		}
		return rc;
	}
	if (argc == 3 && !strcmp(argv[1], "delete")) {
		pod = pod_for(cl, p, argv[2], true, &rc);
		if (!pod)
			return rc;
		if (pod->peer[0])
			return fail(cl, p, -EBUSY, "pod delete %s: unstretch it first%s", argv[2],
			            NULL);
		pthread_mutex_lock(&cl->lock);
		cl_pod_delete(cl, pod);
		pthread_mutex_unlock(&cl->lock);
		cl_pod_tag_all(cl);
		return 0;
	}
	if (argc < 3)
		goto usage;
	bool lead = strcmp(argv[1], "resolve") && strcmp(argv[1], "verify") &&
	            strcmp(argv[1], "test-take-over");
	pod = pod_for(cl, p, argv[2], lead, &rc);
	if (!pod)
		return rc;
	if (argc == 4 && !strcmp(argv[1], "add"))
		return cmd_add_remove(cl, p, pod, argv[3], true);
	if (argc == 4 && !strcmp(argv[1], "remove"))
		return cmd_add_remove(cl, p, pod, argv[3], false);
	if (argc == 4 && !strcmp(argv[1], "stretch"))
		return cmd_stretch(cl, p, pod, argv[3]);
	if (argc == 4 && !strcmp(argv[1], "unstretch"))
		return cmd_unstretch(cl, p, pod, argv[3]);
	if (argc == 5 && !strcmp(argv[1], "set"))
		return cmd_set(cl, p, pod, argv[3], argv[4]);
	if (argc == 4 && !strcmp(argv[1], "resolve"))
		return cmd_resolve(cl, p, pod, argv[3]);
	if (argc == 3 && !strcmp(argv[1], "verify")) {
		if (!pod->peer[0] || !cl_is_leader(cl, pod) ||
		    atomic_load(&pod->state) != CL_IN_SYNC)
			return fail(cl, p, -EINVAL,
			            "pod verify %s: run it on the leader of an in-sync pod (%s)",
			            pod->name, pod->leader[0] ? pod->leader : "not stretched");
		return cl_verify(cl, pod);
	}
	if (argc == 4 && !strcmp(argv[1], "snapshot"))
		return cmd_snapshot(cl, p, pod, argv[3]);
	if (argc == 3 && !strcmp(argv[1], "test-take-over"))
		return cmd_take_over(cl, p, pod);
	if (argc == 3 && !strcmp(argv[1], "test-replay-stale"))
		return cmd_replay_stale(cl, p, pod);
usage:
	return fail(
	    cl, p, -EINVAL,
	    "usage: pod create|delete POD, pod add|remove POD VOLUME, pod stretch|unstretch "
	    "POD PEER, pod set POD preferred|replication|resync_rate|on_no_quorum VALUE, pod "
	    "verify POD, "
	    "pod resolve POD KEEP_BOX%s%s",
	    NULL, NULL);
}

int cluster_ctl(struct cluster *cl, struct pfs *p, int argc, char **argv)
{
	if (!cl)
		return fail(cl, p, -ENOTCONN,
		            "this box is not in a cluster (mount with -o cluster_name=NAME,"
		            "cluster_listen=ADDR:PORT,cluster_cert=,cluster_key=,cluster_ca=)%s%s",
		            NULL, NULL);
	if (!strcmp(argv[0], "cluster") && argc >= 2 && !strcmp(argv[1], "peer"))
		return cmd_peer(cl, p, argc, argv);
	if (!strcmp(argv[0], "pod"))
		return argc >= 2 ? cmd_pod(cl, p, argc, argv)
		                 : fail(cl, p, -EINVAL, "usage: pod COMMAND ...%s%s", NULL, NULL);
	return fail(cl, p, -EINVAL,
	            "usage: cluster peer add NAME HOST:PORT | cluster peer remove "
	            "NAME%s%s",
	            NULL, NULL);
}
