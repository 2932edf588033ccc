/* cluster/cluster_failover.c - who serves a stretched pod when the two boxes lose each other. With
 * a mediator (etcd), both race for the pod's key: a compare-and-put on the revision both last
 * agreed on, so one wins; its revision is the new epoch (the fencing token every later change
 * carries). The winner serves under its lease; the agreement after a resync re-arms the race; and
 * while the mediator is unreachable the boxes pre-elect the leader. Without a mediator the part-1
 * rule holds: the leader serves alone, the other box stops.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "cluster_int.h"
#include "cmed.h"

int64_t cl_clock_ns(void)
{
	struct timespec ts;
	/* BOOTTIME keeps counting while the host sleeps or the VM is frozen: a lease measured
	 * with it cannot look younger than it is. */
	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/* Waits on COND (with LOCK held) for at most MS milliseconds. */
static void cond_wait_ms(pthread_cond_t *cond, pthread_mutex_t *lock, int64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t ns = ts.tv_nsec + ms * 1000000;
	ts.tv_sec += ns / 1000000000;
	ts.tv_nsec = ns % 1000000000;
	pthread_cond_timedwait(cond, lock, &ts);
}

static void kick(struct cluster *cl) /* under cl->lock */
{
	cl->med_kick = true;
	pthread_cond_broadcast(&cl->med_cond);
}

static bool preferred_here(struct cluster *cl, const struct cl_pod *pod)
{
	if (strcmp(pod->preferred, "auto"))
		return !strcmp(pod->preferred, cl->name);
	return !strcmp(pod->leader, cl->name);
}

static void pod_key(struct cluster *cl, const struct cl_pod *pod, char *key, size_t len)
{
	snprintf(key, len, "%s%s", cl->med_key_base, pod->name);
}

static bool value_has_nonce(const char *v, uint64_t nonce)
{
	char tag[40];
	snprintf(tag, sizeof(tag), "nonce=%016" PRIx64, nonce);
	return nonce && strstr(v, tag) != NULL;
}

/* ---- at link loss, at boot ------------------------------------------------------------------ */

/* Part 1's leader serves alone in a new epoch (saved before its next write, so a change of the
 * old one replayed later is refused, invariant 4). Under cl->lock. */
static void go_alone(struct cluster *cl, struct cl_pod *pod)
{
	int st = atomic_load(&pod->state);

	pod->alone_at_ns = 0;
	if (cl_is_leader(cl, pod) && (st == CL_IN_SYNC || st == CL_SYNCING)) {
		pod->epoch++;
		cl_pod_save(cl, pod);
		cl_set_state(cl, pod, CL_DEGRADED); /* wakes the writes held meanwhile */
	}
	pthread_cond_broadcast(&cl->cond);
}

void cl_failover_tick(struct cluster *cl)
{
	int64_t now = cl_clock_ns();

	pthread_mutex_lock(&cl->lock);
	for (int i = 0; i < CL_PODS_MAX; i++) {
		struct cl_pod *pod = cl->pods[i];
		if (pod && pod->alone_at_ns && now >= pod->alone_at_ns)
			go_alone(cl, pod);
	}
	pthread_mutex_unlock(&cl->lock);
}

void cl_failover_link_lost(struct cluster *cl, struct cl_pod *pod)
{
	int st = atomic_load(&pod->state);
	bool leader = cl_is_leader(cl, pod);
	int64_t now = cl_clock_ns();

	if (st == CL_SPLIT || st == CL_LOCAL)
		return;
	if (!cl->med || !pod->med_rev || (leader && pod->preelect_armed)) {
		/* No race: the leader goes on alone and the other box stops. Without an agreed key
		 * or with the pre-election the other box never races, so this cannot meet a
		 * winner. But the other box serves reads until its last ping answered here times
		 * out (it may not have seen the link go: a cut drops packets silently), so the
		 * leader holds its writes and their answers until then (cl_failover_tick): no read
		 * there misses a write answered here alone. */
		if (leader) {
			if ((st == CL_IN_SYNC || st == CL_SYNCING) && !pod->alone_at_ns) {
				pod->alone_at_ns =
				    cl->last_ping_rx_ns + cl->timeout_ms * 1000000ll + 50000000ll;
				if (now >= pod->alone_at_ns)
					go_alone(cl, pod);
			}
		} else {
			cl_set_state(cl, pod, CL_OFFLINE);
		}
		return;
	}
	bool eligible = leader ? (st == CL_IN_SYNC || st == CL_SYNCING)
	                       : (st == CL_IN_SYNC && !pod->async && !pod->preelect_promised);
	if (eligible) {
		pod->racing = true;
		pod->race_retry = false;
		pod->link_lost_ns = now;
		pod->race_at_ns =
		    now + (preferred_here(cl, pod) ? 0 : cl->head_start_ms * 1000000ll);
		cl_set_state(cl, pod, CL_OFFLINE);
		kick(cl);
	} else if (st != CL_DEGRADED) {
		cl_set_state(cl, pod, CL_OFFLINE);
	}
}

bool cl_failover_boot(struct cluster *cl, struct cl_pod *pod)
{
	if (!cl->med || !pod->med_rev)
		return false; /* part 1: the restarted leader serves alone after the boot wait */
	pthread_mutex_lock(&cl->lock);
	if (!pod->racing && !pod->race_retry && !pod->boot_raced) {
		/* Only the leader races after a restart: the other box's state before its crash is
		 * not known to have been in sync. */
		pod->boot_raced = true;
		pod->racing = true;
		pod->link_lost_ns = cl_clock_ns();
		pod->race_at_ns = pod->link_lost_ns;
		kick(cl);
	}
	pthread_mutex_unlock(&cl->lock);
	return true;
}

bool cl_failover_busy(struct cluster *cl)
{
	bool busy = false;

	pthread_mutex_lock(&cl->lock);
	for (int i = 0; i < CL_PODS_MAX; i++)
		busy |= cl->pods[i] && (cl->pods[i]->racing || cl->pods[i]->alone_at_ns);
	pthread_mutex_unlock(&cl->lock);
	return busy;
}

void cl_failover_wait_race(struct cluster *cl)
{
	pthread_mutex_lock(&cl->lock);
	for (;;) {
		bool busy = false;
		for (int i = 0; i < CL_PODS_MAX; i++)
			if (cl->pods[i]) {
				busy |= cl->pods[i]->racing;
				cl->pods[i]->race_retry = false;
			}
		if (!busy || cl->stop)
			break;
		cond_wait_ms(&cl->cond, &cl->lock, 20);
	}
	pthread_mutex_unlock(&cl->lock);
}

/* ---- the I/O gate --------------------------------------------------------------------------- */

/* Whether this box may serve POD now (under cl->lock): not while a race is open, not in sync
 * with a link whose last answered ping is older than the timeout (a box resumed after a pause
 * must not serve reads its peer may have overtaken), not alone past its lease. */
static int gate_locked(struct cluster *cl, struct cl_pod *pod, bool *link_stale)
{
	int st = atomic_load(&pod->state);
	int64_t now = cl_clock_ns();

	*link_stale = false;
	if (pod->racing || pod->alone_at_ns)
		return -EAGAIN;
	if ((st == CL_IN_SYNC || st == CL_SYNCING) && cl->link_up &&
	    now - cl->last_pong_t0_ns > cl->timeout_ms * 1000000ll) {
		*link_stale = true;
		return -EAGAIN;
	}
	if (st == CL_DEGRADED && pod->holds_key && now >= cl->lease_until_ns) {
		kick(cl);
		return -EAGAIN;
	}
	bool served = st == CL_LOCAL || st == CL_IN_SYNC || st == CL_DEGRADED ||
	              (st == CL_SYNCING && cl_is_leader(cl, pod));
	if (!served && pod->on_no_quorum == CL_NOQ_SUSPEND)
		return -EAGAIN; /* held until the pod is served here again */
	return 0;
}

int cl_failover_gate(struct cluster *cl, struct cl_pod *pod)
{
	int64_t start = cl_clock_ns();
	int rc;

	pthread_mutex_lock(&cl->lock);
	for (;;) {
		bool stale;
		rc = gate_locked(cl, pod, &stale);
		if (!rc || cl->stop)
			break;
		if (stale) {
			pthread_mutex_unlock(&cl->lock);
			cl_link_down(cl, "no answer from the peer within the timeout");
			pthread_mutex_lock(&cl->lock);
			continue;
		}
		/* A race lasts the head start and a round trip or two to etcd; a lease renewal
		 * one round trip. Past that the pod is not served (io-error) or the request waits
		 * for it (suspend, until the pod is served again or the daemon stops). */
		bool suspend = pod->on_no_quorum == CL_NOQ_SUSPEND;
		if (!suspend &&
		    cl_clock_ns() - start > (cl->head_start_ms + 2 * cl->timeout_ms) * 1000000ll)
			break;
		cond_wait_ms(&cl->cond, &cl->lock, 50);
	}
	pthread_mutex_unlock(&cl->lock);
	return rc ? -EIO : 0;
}

/* ---- the mediator thread -------------------------------------------------------------------- */

static void keep_lease(struct cluster *cl)
{
	int64_t t0 = cl_clock_ns(), id;
	int ttl = 0, rc;

	pthread_mutex_lock(&cl->lock);
	id = cl->lease_id;
	pthread_mutex_unlock(&cl->lock);
	rc = id ? cmed_lease_keepalive(cl->med, id, &ttl) : -ENOENT;
	if (rc == -ENOENT) {
		rc = cmed_lease_grant(cl->med, cl->med_ttl, &id, &ttl);
		if (!rc)
			pfs_logl(LOG_INFO, "pstorfs: cluster: mediator lease %" PRIx64 " (%d s)",
			         (uint64_t)id, ttl);
	}
	pthread_mutex_lock(&cl->lock);
	cl->med_ok = rc == 0;
	if (!rc) {
		/* Stop before etcd can expire it: the lease is counted from before the request
		 * left, less a margin for clock rates and the time to notice. */
		int64_t margin = (int64_t)ttl * 1000000000ll / 4;
		if (margin < 500000000ll)
			margin = 500000000ll;
		bool renewed = cl->lease_id != id;
		cl->lease_id = id;
		cl->lease_ttl = ttl;
		cl->lease_until_ns = t0 + (int64_t)ttl * 1000000000ll - margin;
		if (renewed) {
			/* A new lease: keys held on the old one are gone; re-take them. */
			for (int i = 0; i < CL_PODS_MAX; i++)
				if (cl->pods[i] && cl->pods[i]->holds_key)
					cl->pods[i]->retake = true;
		}
		pthread_cond_broadcast(&cl->cond);
	}
	pthread_mutex_unlock(&cl->lock);
}

/* Puts the pod's key if its revision is still MOD_REV, with a nonce saved first, so an answer
 * lost on the way is recognised on the next try. The nonce stays until a put is known to have
 * succeeded (then 0): a later race, agreement or re-take that finds it in the key owns the key. 0
 * and *REV, -EBUSY (held by another: *REV and CUR), or a transport error. */
static int put_pod_key(struct cluster *cl, struct cl_pod *pod, uint64_t mod_rev, bool lease,
                       const char *what, int64_t *rev, char *cur, size_t curlen)
{
	char key[512], val[256];
	int64_t lid = 0;
	int rc;

	pthread_rwlock_wrlock(&pod->order_lock);
	if (!pod->race_nonce) {
		uint64_t n = 0;
		while (!n)
			if (getrandom(&n, sizeof(n), 0) != sizeof(n))
				n = (uint64_t)cl_clock_ns() ^ (uint64_t)(uintptr_t)pod;
		pod->race_nonce = n;
		rc = cl_pod_save(cl, pod);
		if (rc) {
			pod->race_nonce = 0;
			pthread_rwlock_unlock(&pod->order_lock);
			return rc;
		}
	}
	uint64_t nonce = pod->race_nonce;
	snprintf(val, sizeof(val), "box=%s nonce=%016" PRIx64 " epoch=%" PRIu64 " %s", cl->name,
	         nonce, pod->epoch, what);
	pthread_rwlock_unlock(&pod->order_lock);
	if (lease) {
		pthread_mutex_lock(&cl->lock);
		lid = cl->lease_until_ns > cl_clock_ns() ? cl->lease_id : 0;
		pthread_mutex_unlock(&cl->lock);
		if (!lid)
			return -EHOSTUNREACH; /* no live lease: the mediator is not answering */
	}
	pod_key(cl, pod, key, sizeof(key));
	rc = cmed_put_if(cl->med, key, val, lid, (int64_t)mod_rev, rev, cur, curlen);
	if (rc == -EBUSY && value_has_nonce(cur, nonce))
		rc = 0; /* ours: an earlier try got through and its answer was lost */
	return rc;
}

static void race(struct cluster *cl, struct cl_pod *pod)
{
	char cur[256] = "";
	int64_t rev = 0;
	int rc;

	pthread_mutex_lock(&cl->lock);
	bool up = cl->link_up;
	if (up) {
		/* The peer is back before the race began: the boxes decide together (HELLO). */
		pod->racing = false;
		pod->race_retry = false;
		pthread_cond_broadcast(&cl->cond);
	} else {
		/* A retry too is a race: no link may come up until its outcome is set, and a
		 * HELLO waits for it (cl_failover_wait_race). Without this, a retry that failed
		 * after the link came back and the pod resynced set the in-sync pod offline. */
		pod->racing = true;
	}
	pthread_mutex_unlock(&cl->lock);
	if (up)
		return;
	rc = put_pod_key(cl, pod, pod->med_rev, true, "alone", &rev, cur, sizeof(cur));
	if (rc == -EBUSY) {
		pthread_mutex_lock(&cl->lock);
		pod->racing = false;
		pod->race_retry = false;
		cl->races_lost++;
		pthread_cond_broadcast(&cl->cond);
		pthread_mutex_unlock(&cl->lock);
		cl_set_state(cl, pod, CL_OFFLINE);
		pfs_logl(LOG_WARNING,
		         "pstorfs: cluster: pod %s: lost the race at the mediator (key at revision "
		         "%" PRId64 ": %s): offline until the peer is back",
		         pod->name, rev, cur[0] ? cur : "deleted");
		return;
	}
	if (rc) {
		pthread_mutex_lock(&cl->lock);
		if (!pod->race_retry)
			pfs_logl(LOG_WARNING,
			         "pstorfs: cluster: pod %s: neither the peer nor the mediator "
			         "answers (%s): offline, still trying",
			         pod->name, strerror(-rc));
		pod->racing = false;
		pod->race_retry = true;
		pthread_cond_broadcast(&cl->cond);
		pthread_mutex_unlock(&cl->lock);
		cl_set_state(cl, pod, CL_OFFLINE); /* wakes the writers waiting for the outcome */
		return;
	}
	/* Won. The peer may still serve reads until its last answered ping times out: wait that
	 * out (it cannot have received a ping from us after we last answered one of its). */
	pthread_mutex_lock(&cl->lock);
	int64_t until = cl->last_ping_rx_ns + cl->timeout_ms * 1000000ll + 50000000ll;
	pthread_mutex_unlock(&cl->lock);
	for (int64_t now = cl_clock_ns(); now < until; now = cl_clock_ns()) {
		struct timespec ts = {.tv_sec = 0, .tv_nsec = until - now};
		if (ts.tv_nsec > 999999999)
			ts = (struct timespec){.tv_sec = 1};
		nanosleep(&ts, NULL);
	}
	pthread_rwlock_wrlock(&pod->order_lock);
	pod->med_rev = (uint64_t)rev;
	/* The revision is the fencing token; an etcd younger than the pod (a new cluster) would
	 * give a smaller one, and epochs only grow. */
	pod->epoch = (uint64_t)rev > pod->epoch ? (uint64_t)rev : pod->epoch + 1;
	snprintf(pod->leader, sizeof(pod->leader), "%s", cl->name);
	pod->holds_key = true;
	pod->wrote_alone = false;
	pod->race_nonce = 0;
	cl_pod_save(cl, pod);
	pthread_mutex_lock(&cl->lock);
	pod->racing = false;
	pod->race_retry = false;
	cl->races_won++;
	cl->last_failover_ms = (cl_clock_ns() - pod->link_lost_ns) / 1000000;
	pthread_cond_broadcast(&cl->cond);
	pthread_mutex_unlock(&cl->lock);
	cl_set_state(cl, pod, CL_DEGRADED);
	pthread_rwlock_unlock(&pod->order_lock);
	pfs_logl(LOG_WARNING,
	         "pstorfs: cluster: pod %s: won the race at the mediator: serving alone in epoch "
	         "%" PRIu64 " (%" PRId64 " ms after the link was lost)",
	         pod->name, pod->epoch, cl->last_failover_ms);
}

/* The key was lost with the old lease (a pause, a mediator outage): take it again. Only this box
 * can: the peer races only with the revision both agreed on, which the key no longer has. */
static void retake(struct cluster *cl, struct cl_pod *pod)
{
	char cur[256] = "";
	int64_t rev = 0;
	int rc;

	rc = put_pod_key(cl, pod, pod->med_rev, true, "alone", &rev, cur, sizeof(cur));
	if (rc == -EBUSY && rev == 0) /* deleted with the lease */
		rc = put_pod_key(cl, pod, 0, true, "alone", &rev, cur, sizeof(cur));
	if (rc == -EBUSY) {
		pfs_logl(
		    LOG_ERR,
		    "pstorfs: cluster: pod %s: the mediator key is not ours any more (revision "
		    "%" PRId64 ": %s): offline",
		    pod->name, rev, cur);
		pthread_mutex_lock(&cl->lock);
		pod->retake = false;
		pod->holds_key = false;
		pthread_mutex_unlock(&cl->lock);
		cl_set_state(cl, pod, CL_OFFLINE);
		return;
	}
	if (rc)
		return; /* next tick */
	pthread_rwlock_wrlock(&pod->order_lock);
	pod->med_rev = (uint64_t)rev;
	pod->epoch = (uint64_t)rev > pod->epoch ? (uint64_t)rev : pod->epoch + 1;
	pod->race_nonce = 0;
	cl_pod_save(cl, pod);
	pthread_rwlock_unlock(&pod->order_lock);
	pthread_mutex_lock(&cl->lock);
	pod->retake = false;
	pthread_cond_broadcast(&cl->cond);
	pthread_mutex_unlock(&cl->lock);
	pfs_logl(LOG_NOTICE,
	         "pstorfs: cluster: pod %s: mediator key taken again (epoch %" PRIu64 ")",
	         pod->name, pod->epoch);
}

/* Leader, pod in sync, link up: the revision both boxes race with from now on. The key loses the
 * winner's lease (agreed keys outlive both boxes' leases) and the peer learns the revision in
 * the pod's order (AGREE), with the epoch raised to it. */
static void agree(struct cluster *cl, struct cl_pod *pod)
{
	char cur[256] = "";
	int64_t rev = 0;
	uint64_t seq;
	int rc;

	rc = put_pod_key(cl, pod, pod->med_rev, false, "agreed", &rev, cur, sizeof(cur));
	char peer_tag[CL_NAME_MAX + 8];
	snprintf(peer_tag, sizeof(peer_tag), "box=%s ", pod->peer);
	if (rc == -EBUSY && rev && !strncmp(cur, peer_tag, strlen(peer_tag))) {
		/* Last put by the peer (a race it won, whose outcome this box learned through
		 * HELLO): the peer is in sync and follows now, so the key is ours to agree on. If
		 * the peer is racing again right now, one of the two puts fails: still one owner.
		 */
		rc = put_pod_key(cl, pod, (uint64_t)rev, false, "agreed", &rev, cur, sizeof(cur));
	}
	if (rc == -EBUSY && !pod->agree_warned) {
		pod->agree_warned = true;
		pfs_logl(
		    LOG_ERR,
		    "pstorfs: cluster: pod %s: the mediator key %s%s changed behind this box's "
		    "back (revision %" PRId64 ": %s): no failover race until it is deleted",
		    pod->name, cl->med_key_base, pod->name, rev, cur);
	}
	if (rc)
		return;
	pthread_rwlock_wrlock(&pod->order_lock);
	/* The key is at REV now, by our put: this box races with it from now on, whether or not
	 * the peer learns it (if not, the peer cannot win a race: safe, and agreed again later). */
	pod->med_rev = (uint64_t)rev;
	pod->race_nonce = 0;
	bool tell = atomic_load(&pod->state) == CL_IN_SYNC && cl_is_leader(cl, pod);
	if (tell) {
		pod->epoch = (uint64_t)rev > pod->epoch ? (uint64_t)rev : pod->epoch + 1;
		pod->holds_key = false;
		pod->agree_pending = false;
		pod->agree_warned = false;
	}
	cl_pod_save(cl, pod); /* before the epoch travels */
	if (tell) {
		struct cl_wbuf body = {0};
		cl_put64(&body, pod->med_rev);
		if (cl_send_ordered(cl, pod, CL_MSG_AGREE, &body, &seq, NULL))
			pod->agree_pending = true; /* the peer may not know it: again when up */
		cl_wbuf_free(&body);
	}
	pthread_rwlock_unlock(&pod->order_lock);
}

void cl_apply_agree(struct cluster *cl, struct cl_pod *pod, struct cl_rbuf *r)
{
	uint64_t rev = cl_get64(r);

	if (r->bad)
		return;
	pthread_rwlock_wrlock(&pod->order_lock);
	pod->med_rev = rev;
	pod->holds_key = false;
	cl_pod_save(cl, pod);
	pthread_rwlock_unlock(&pod->order_lock);
}

/* Pre-election (leader, link up, in sync): while either box cannot reach the mediator, the other
 * promises not to race, so the leader may serve alone if the link fails too. The leader relies
 * on it only once promised, and stops relying before it releases the promise. */
static void preelect(struct cluster *cl, struct cl_pod *pod, bool want)
{
	struct cl_wbuf w = {0};

	pthread_mutex_lock(&cl->lock);
	bool armed = pod->preelect_armed;
	if (!want && armed)
		pod->preelect_armed = false;
	pthread_mutex_unlock(&cl->lock);
	if (want == armed)
		return;
	cl_put_str(&w, pod->name);
	cl_put8(&w, want);
	cl_send(cl, CL_MSG_PREELECT, &w);
	cl_wbuf_free(&w);
}

void cl_handle_preelect(struct cluster *cl, struct cl_rbuf *r, bool ack)
{
	char pname[CL_NAME_MAX + 1];
	struct cl_pod *pod;

	cl_get_str(r, pname, sizeof(pname));
	bool on = cl_get8(r);
	if (r->bad)
		return;
	pthread_mutex_lock(&cl->lock);
	pod = cl_pod_find(cl, pname);
	if (pod && ack && cl_is_leader(cl, pod))
		pod->preelect_armed = on;
	pthread_mutex_unlock(&cl->lock);
	if (!pod || ack || cl_is_leader(cl, pod))
		return;
	/* The follower's promise is saved before it is acknowledged: it must hold across a
	 * restart of this box. */
	pthread_rwlock_wrlock(&pod->order_lock);
	pod->preelect_promised = on;
	int rc = cl_pod_save(cl, pod);
	pthread_rwlock_unlock(&pod->order_lock);
	if (rc)
		return;
	pfs_logl(LOG_NOTICE, "pstorfs: cluster: pod %s: %s", pod->name,
	         on ? "the mediator is unreachable: pre-elected the leader to survive a link loss"
	            : "mediator reachable again: pre-election released");
	struct cl_wbuf w = {0};
	cl_put_str(&w, pname);
	cl_put8(&w, on);
	cl_send(cl, CL_MSG_PREELECT_ACK, &w);
	cl_wbuf_free(&w);
}

void cl_failover_link_up(struct cluster *cl, struct cl_pod *pod) /* under pod order lock */
{
	/* A new link starts without pre-election; the leader arms it again if it must. */
	pod->preelect_armed = false;
	if (pod->preelect_promised) {
		pod->preelect_promised = false;
		cl_pod_save(cl, pod);
	}
}

void cl_failover_in_sync(struct cluster *cl, struct cl_pod *pod)
{
	pthread_mutex_lock(&cl->lock);
	pod->agree_pending = true;
	kick(cl);
	pthread_mutex_unlock(&cl->lock);
}

static void *mediator_main(void *arg)
{
	struct cluster *cl = arg;
	int64_t last_lease = 0;

	pthread_mutex_lock(&cl->lock);
	while (!cl->stop) {
		int64_t now = cl_clock_ns();
		int64_t period = (int64_t)cl->med_ttl * 1000000000ll / 4;
		if (period > 500000000ll)
			period = 500000000ll;
		pthread_mutex_unlock(&cl->lock);
		if (now - last_lease >= period || cl->med_kick) {
			keep_lease(cl);
			last_lease = now;
		}
		pthread_mutex_lock(&cl->lock);
		cl->med_kick = false;
		bool up = cl->link_up, ok = cl->med_ok, peer_ok = cl->peer_med_ok;
		int64_t next = now + period;
		for (int i = 0; i < CL_PODS_MAX; i++) {
			struct cl_pod *pod = cl->pods[i];
			if (!pod || !pod->peer[0])
				continue;
			int st = atomic_load(&pod->state);
			bool leader = cl_is_leader(cl, pod);
			if (pod->racing || (pod->race_retry && !up)) {
				if (cl_clock_ns() < pod->race_at_ns) {
					if (pod->race_at_ns < next)
						next = pod->race_at_ns;
					continue;
				}
				pthread_mutex_unlock(&cl->lock);
				race(cl, pod);
				pthread_mutex_lock(&cl->lock);
			} else if (pod->retake && st == CL_DEGRADED && ok) {
				pthread_mutex_unlock(&cl->lock);
				retake(cl, pod);
				pthread_mutex_lock(&cl->lock);
			} else if (up && leader && st == CL_IN_SYNC) {
				bool need =
				    ok && (pod->agree_pending || !pod->med_rev || pod->holds_key);
				bool want = !ok || !peer_ok;
				pthread_mutex_unlock(&cl->lock);
				if (need)
					agree(cl, pod);
				preelect(cl, pod, want && pod->med_rev);
				pthread_mutex_lock(&cl->lock);
			}
		}
		if (cl->stop || cl->med_kick)
			continue;
		now = cl_clock_ns();
		if (next > now) {
			cond_wait_ms(&cl->med_cond, &cl->lock, (next - now + 999999) / 1000000);
		}
	}
	pthread_mutex_unlock(&cl->lock);
	return NULL;
}

/* ---- open, close ---------------------------------------------------------------------------- */

static int parse_ms(const char *s, int lo, int hi, int *out)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (!*s || *end || v < lo || v > hi)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

int cl_failover_open(struct cluster *cl, const struct cluster_opts *o, char *msg, size_t msglen)
{
	cl->timeout_ms = 1500;
	cl->head_start_ms = 300;
	cl->med_ttl = 5;
	pthread_cond_init(&cl->med_cond, NULL);
	cl->last_pong_t0_ns = cl_clock_ns();
	if (o->timeout_ms && parse_ms(o->timeout_ms, 300, 60000, &cl->timeout_ms)) {
		snprintf(msg, msglen, "cluster_timeout_ms=%s: milliseconds, 300..60000",
		         o->timeout_ms);
		return -EINVAL;
	}
	if (o->head_start_ms && parse_ms(o->head_start_ms, 0, 10000, &cl->head_start_ms)) {
		snprintf(msg, msglen, "mediator_head_start_ms=%s: milliseconds, 0..10000",
		         o->head_start_ms);
		return -EINVAL;
	}
	if (o->med_ttl && parse_ms(o->med_ttl, 2, 300, &cl->med_ttl)) {
		snprintf(msg, msglen, "mediator_ttl=%s: seconds, 2..300", o->med_ttl);
		return -EINVAL;
	}
	if (!o->mediator) {
		if (o->med_prefix || o->med_ttl || o->head_start_ms) {
			snprintf(msg, msglen,
			         "mediator_prefix, mediator_ttl and "
			         "mediator_head_start_ms need mediator=URL");
			return -EINVAL;
		}
		return 0;
	}
	const char *prefix = o->med_prefix ? o->med_prefix : "/pstorfs/";
	if (prefix[0] != '/' || strlen(prefix) > 128 || strpbrk(prefix, " \t\n")) {
		snprintf(msg, msglen, "mediator_prefix=%s: a key prefix starting with /", prefix);
		return -EINVAL;
	}
	char err[256] = "";
	int rc = cmed_open(&(struct cmed_opts){.urls = o->mediator,
	                                       .ca = o->ca,
	                                       .cert = o->cert,
	                                       .key = o->key,
	                                       .timeout_ms = cl->timeout_ms / 3},
	                   &cl->med, err, sizeof(err));
	if (rc) {
		snprintf(msg, msglen, "mediator=%s: %s", o->mediator, err);
		return rc;
	}
	snprintf(cl->med_prefix, sizeof(cl->med_prefix), "%s", prefix);
	return 0;
}

/* The key base names both boxes (sorted), so pairs sharing one etcd do not meet: it is set
 * when the peer is known. */
void cl_failover_set_peer(struct cluster *cl) /* under cl->lock */
{
	const char *a = cl->name, *b = cl->peer_name;
	if (!cl->med_prefix[0])
		return; /* no mediator */
	if (strcmp(a, b) > 0) {
		const char *t = a;
		a = b;
		b = t;
	}
	snprintf(cl->med_key_base, sizeof(cl->med_key_base), "%s%s%s+%s/pod/", cl->med_prefix,
	         cl->med_prefix[strlen(cl->med_prefix) - 1] == '/' ? "" : "/", a, b);
}

int cl_failover_start(struct cluster *cl)
{
	if (!cl->med)
		return 0;
	int rc = pthread_create(&cl->t_mediator, NULL, mediator_main, cl);
	if (rc)
		return -rc;
	cl->med_thread = true;
	return 0;
}

void cl_failover_stop(struct cluster *cl)
{
	if (cl->med_thread) {
		pthread_mutex_lock(&cl->lock);
		kick(cl);
		pthread_mutex_unlock(&cl->lock);
		pthread_join(cl->t_mediator, NULL);
		cl->med_thread = false;
	}
	cmed_close(cl->med);
	cl->med = NULL;
	pthread_cond_destroy(&cl->med_cond);
}

void cl_failover_stats(struct cluster *cl, struct cl_med_report *r)
{
	struct cmed_stats st;

	memset(r, 0, sizeof(*r));
	if (!cl->med)
		return;
	cmed_get_stats(cl->med, &st);
	r->configured = true;
	r->reachable = st.reachable;
	r->latency_us = st.latency_us;
	snprintf(r->endpoint, sizeof(r->endpoint), "%s", st.endpoint);
	snprintf(r->err, sizeof(r->err), "%s", st.err);
	pthread_mutex_lock(&cl->lock);
	r->peer_reachable = cl->peer_med_ok;
	r->lease_ttl = cl->lease_ttl;
	int64_t left = cl->lease_until_ns - cl_clock_ns();
	r->lease_left_ms = cl->lease_id && left > 0 ? left / 1000000 : 0;
	r->races_won = cl->races_won;
	r->races_lost = cl->races_lost;
	r->last_failover_ms = cl->last_failover_ms;
	snprintf(r->key_base, sizeof(r->key_base), "%s", cl->med_key_base);
	pthread_mutex_unlock(&cl->lock);
}
