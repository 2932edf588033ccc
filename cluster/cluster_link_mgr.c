/* cluster/cluster_link_mgr.c - keeping the link to the peer: dialling (the box whose name sorts
 * first dials, so two boxes never hold two links), accepting and checking who called, heartbeats,
 * declaring the peer gone, and the threads that take its messages: a reader that dispatches, an
 * applier for the ordered stream, and workers for requests.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include "cluster_int.h"

/* The link pointer is swapped only by the manager, under link_rw written; senders hold it read
 * while they use the link (clink_shutdown first wakes any that block on backpressure). */
static pthread_rwlock_t link_rw = PTHREAD_RWLOCK_INITIALIZER;

/* cl_sendv and cl_send_nowait: WAIT says whether to wait for room on the link and for its
 * swap. Without: the caller may hold cl->lock (a pod's writes settled by a state change), which
 * the manager takes after link_rw. */
static int send_on_link(struct cluster *cl, uint16_t type, const struct iovec *iov, int n,
                        bool wait)
{
	int rc;

	if (wait)
		pthread_rwlock_rdlock(&link_rw);
	else if (pthread_rwlock_tryrdlock(&link_rw))
		return -EAGAIN;
	if (!cl->link)
		rc = -ENOTCONN;
	else
		rc = wait ? clink_send(cl->link, type, iov, n)
		          : clink_send_nowait(cl->link, type, iov, n);
	pthread_rwlock_unlock(&link_rw);
	return rc;
}

int cl_sendv(struct cluster *cl, uint16_t type, const struct iovec *iov, int n)
{
	return send_on_link(cl, type, iov, n, true);
}

int cl_send(struct cluster *cl, uint16_t type, const struct cl_wbuf *w)
{
	struct iovec iov = {w->b, w->len};

	return w->err ? w->err : send_on_link(cl, type, &iov, 1, true);
}

int cl_send_nowait(struct cluster *cl, uint16_t type, const struct cl_wbuf *w)
{
	struct iovec iov = {w->b, w->len};

	return w->err ? w->err : send_on_link(cl, type, &iov, 1, false);
}

void cl_send_ack(struct cluster *cl, const char *pod, uint64_t seq, int rc)
{
	pthread_mutex_lock(&cl->ack_lock);
	if (!cl->nacks)
		cl_put32(&cl->acks, 0); /* the count, patched when sent */
	cl_put_str(&cl->acks, pod);
	cl_put64(&cl->acks, seq);
	cl_put32(&cl->acks, (uint32_t)rc);
	cl->nacks++;
	/* A thread sending acknowledgements now takes this one with its next round: one ACK
	 * message (one queueing on the link) for all that the appliers finished meanwhile. */
	if (cl->ack_sending) {
		pthread_mutex_unlock(&cl->ack_lock);
		return;
	}
	cl->ack_sending = true;
	while (cl->nacks) {
		struct cl_wbuf w = cl->acks;
		if (!w.err)
			pfs_put32(w.b, cl->nacks);
		cl->acks = (struct cl_wbuf){0};
		cl->nacks = 0;
		pthread_mutex_unlock(&cl->ack_lock);
		cl_send(cl, CL_MSG_ACK, &w);
		cl_wbuf_free(&w);
		pthread_mutex_lock(&cl->ack_lock);
	}
	cl->ack_sending = false;
	pthread_mutex_unlock(&cl->ack_lock);
}

/* ---- queues and waiters ------------------------------------------------------------------ */

int cl_queue_push(struct cl_queue *q, uint16_t type, void *buf, size_t len)
{
	struct cl_work *w = malloc(sizeof(*w));

	if (!w) {
		free(buf);
		return -ENOMEM;
	}
	*w = (struct cl_work){type, buf, len, -1, NULL};
	cl_queue_push_work(q, w);
	return 0;
}

/* A message of the peer's that cannot be queued is lost, and the peer may wait for its answer:
 * the link goes down, so its waiters fail and the pods resync as after any cut. */
void cl_queue_push_or_cut(struct cluster *cl, struct cl_queue *q, uint16_t type, void *buf,
                          size_t len)
{
	if (cl_queue_push(q, type, buf, len))
		cl_link_down(cl, "out of memory: a message could not be queued");
}

/* Under q->lock: W at the tail; the head taken off (NULL when empty). */
static void queue_append(struct cl_queue *q, struct cl_work *w)
{
	w->next = NULL;
	if (q->tail)
		q->tail->next = w;
	else
		q->head = w;
	q->tail = w;
}

static struct cl_work *queue_take_head(struct cl_queue *q)
{
	struct cl_work *w = q->head;

	if (w) {
		q->head = w->next;
		if (!q->head)
			q->tail = NULL;
	}
	return w;
}

void cl_queue_push_work(struct cl_queue *q, struct cl_work *w)
{
	pthread_mutex_lock(&q->lock);
	queue_append(q, w);
	pthread_mutex_unlock(&q->lock);
	/* After the unlock, so the woken worker does not go back to sleep on the lock still held
	 * here (half the apply workers' sleeps were that second one). */
	pthread_cond_signal(&q->cond);
}

struct cl_work *cl_queue_pop(struct cl_queue *q)
{
	struct cl_work *w = NULL;

	pthread_mutex_lock(&q->lock);
	while (!q->head && !q->stop)
		pthread_cond_wait(&q->cond, &q->lock);
	w = queue_take_head(q);
	pthread_mutex_unlock(&q->lock);
	return w;
}

/* The pool's push (see struct cl_queue): only for items that never wait on a later one, since
 * a later one may wait for the worker that holds it. */
void cl_queue_push_short(struct cl_queue *q, struct cl_work *w)
{
	bool wake;

	pthread_mutex_lock(&q->lock);
	queue_append(q, w);
	wake = ++q->queued > q->running;
	pthread_mutex_unlock(&q->lock);
	if (wake) /* after the unlock, as in cl_queue_push_work */
		pthread_cond_signal(&q->cond);
}

/* The pool worker's pop: DONE_ONE when it comes back from an item it took here. */
struct cl_work *cl_queue_take(struct cl_queue *q, bool done_one)
{
	struct cl_work *w = NULL;
	bool wake = false;

	pthread_mutex_lock(&q->lock);
	if (done_one)
		q->running--;
	while (!q->head && !q->stop)
		pthread_cond_wait(&q->cond, &q->lock);
	w = queue_take_head(q);
	if (w) {
		q->queued--;
		q->running++;
		/* A wake-up this worker took while a running one would have come back for the
		 * item: pass it on if the backlog still needs another worker. */
		wake = q->queued > q->running;
	}
	pthread_mutex_unlock(&q->lock);
	if (wake)
		pthread_cond_signal(&q->cond);
	return w;
}

void cl_queue_stop(struct cl_queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->stop = true;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

static void queue_drain(struct cl_queue *q)
{
	struct cl_work *w;

	pthread_mutex_lock(&q->lock);
	while ((w = queue_take_head(q))) {
		free(w->buf);
		free(w);
	}
	q->queued = 0;
	pthread_mutex_unlock(&q->lock);
}

struct cl_waiter *cl_waiter_new_cb(struct cluster *cl, pfs_change_done_fn fn, void *arg)
{
	struct cl_waiter *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->fn = fn;
	w->arg = arg;
	pthread_mutex_lock(&cl->lock);
	w->req = cl->next_req++;
	w->gen = cl->link_gen;
	w->next = cl->waiters;
	cl->waiters = w;
	pthread_mutex_unlock(&cl->lock);
	return w;
}

struct cl_waiter *cl_waiter_new(struct cluster *cl)
{
	return cl_waiter_new_cb(cl, NULL, NULL);
}

/* Unlinks W from the waiters (under cl->lock): false when it was not there. */
static bool waiter_unlink(struct cluster *cl, struct cl_waiter *w)
{
	for (struct cl_waiter **pp = &cl->waiters; *pp; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			return true;
		}
	return false;
}

/* Answers and frees callback waiters unlinked into the list W (without cl->lock). */
static void waiters_answer(struct cluster *cl, struct cl_waiter *w)
{
	while (w) {
		struct cl_waiter *next = w->next;
		pfs_change_finish(cl->p, w->fn, w->arg, w->rc, w->rc ? 0 : w->done);
		free(w->data);
		free(w);
		w = next;
	}
}

void cl_waiters_fail_stale(struct cluster *cl)
{
	struct cl_waiter *failed = NULL;
	char peer[CL_NAME_MAX + 1];

	pthread_mutex_lock(&cl->lock);
	snprintf(peer, sizeof(peer), "%s", cl->peer_name);
	for (struct cl_waiter **pp = &cl->waiters; *pp;) {
		struct cl_waiter *w = *pp;
		if (w->fn && (w->gen != cl->link_gen || cl->stop)) {
			*pp = w->next;
			w->rc = -EIO;
			w->next = failed;
			failed = w;
		} else {
			pp = &w->next;
		}
	}
	pthread_mutex_unlock(&cl->lock);
	if (failed)
		pfs_set_msg(cl->p, "the link to %s went down before the leader confirmed a write",
		            peer);
	waiters_answer(cl, failed);
}

int cl_waiter_wait(struct cluster *cl, struct cl_waiter *w, uint64_t gen, uint64_t *done,
                   void **data, size_t *len)
{
	int rc;

	pthread_mutex_lock(&cl->lock);
	while (!w->finished && cl->link_gen == gen && !cl->stop)
		pthread_cond_wait(&cl->cond, &cl->lock);
	rc = w->finished ? w->rc : -EIO;
	waiter_unlink(cl, w);
	pthread_mutex_unlock(&cl->lock);
	if (done)
		*done = w->done;
	if (data && w->finished) {
		*data = w->data;
		*len = w->data_len;
		w->data = NULL;
	}
	free(w->data);
	free(w);
	return rc;
}

bool cl_waiter_cancel(struct cluster *cl, struct cl_waiter *w)
{
	pthread_mutex_lock(&cl->lock);
	bool there = waiter_unlink(cl, w);
	pthread_mutex_unlock(&cl->lock);
	if (!there)
		return false; /* a callback waiter, answered and freed by whoever unlinked it */
	free(w->data);
	free(w);
	return true;
}

void cl_waiter_finish(struct cluster *cl, uint64_t req, int rc, uint64_t done, void *data,
                      size_t len)
{
	struct cl_waiter *answer = NULL;

	pthread_mutex_lock(&cl->lock);
	for (struct cl_waiter *w = cl->waiters; w; w = w->next) {
		if (w->req == req && !w->finished) {
			w->finished = true;
			w->rc = rc;
			w->done = done;
			w->data = data;
			w->data_len = len;
			data = NULL;
			if (w->fn) {
				waiter_unlink(cl, w);
				w->next = NULL;
				answer = w;
			}
			break;
		}
	}
	if (!answer)
		pthread_cond_broadcast(&cl->cond);
	pthread_mutex_unlock(&cl->lock);
	free(data); /* nobody waits for it (the waiter gave up) */
	waiters_answer(cl, answer);
}

/* ---- link up and down -------------------------------------------------------------------- */

static void send_hello(struct cluster *cl)
{
	struct cl_wbuf w = {0};
	uint32_t n = 0;

	pthread_mutex_lock(&cl->lock);
	cl_put_str(&w, cl->name);
	for (int i = 0; i < CL_PODS_MAX; i++)
		if (cl->pods[i] && !strcmp(cl->pods[i]->peer, cl->peer_name))
			n++;
	cl_put32(&w, n);
	for (int i = 0; i < CL_PODS_MAX; i++) {
		struct cl_pod *pod = cl->pods[i];
		if (!pod || strcmp(pod->peer, cl->peer_name))
			continue;
		cl_put_str(&w, pod->name);
		cl_put64(&w, pod->epoch);
		cl_put_str(&w, pod->leader);
		cl_put8(&w, (uint8_t)atomic_load(&pod->state));
		cl_put8(&w, pod->wrote_alone);
		/* The dirty maps: a box that lost a race may hold writes its peer never got
		 * (applied here, not acknowledged); the new leader resyncs those regions too. */
		pthread_mutex_lock(&pod->lock);
		cl_put32(&w, (uint32_t)pod->nvols);
		for (int k = 0; k < pod->nvols; k++) {
			cl_put_str(&w, pod->vols[k].name);
			cl_put64(&w, pod->vols[k].dirty_bits);
			cl_put_bytes(&w, pod->vols[k].dirty, cl_member_bytes(&pod->vols[k]));
		}
		pthread_mutex_unlock(&pod->lock);
	}
	pthread_mutex_unlock(&cl->lock);
	cl_send(cl, CL_MSG_HELLO, &w);
	cl_wbuf_free(&w);
}

void cl_link_down(struct cluster *cl, const char *why)
{
	pthread_mutex_lock(&cl->lock);
	if (!cl->link) {
		pthread_mutex_unlock(&cl->lock);
		return;
	}
	if (clink_is_up(cl->link) || cl->link_up)
		pfs_logl(LOG_WARNING, "pstorfs: cluster: link to %s down: %s", cl->peer_name, why);
	snprintf(cl->link_err, sizeof(cl->link_err), "%s", why);
	clink_shutdown(cl->link);
	cl->link_up = false;
	cl->link_gen++;
	for (int i = 0; i < CL_PODS_MAX; i++)
		if (cl->pods[i] && cl->pods[i]->peer[0])
			cl_failover_link_lost(cl, cl->pods[i]);
	pthread_cond_broadcast(&cl->cond);
	pthread_mutex_unlock(&cl->lock);
	cl_waiters_fail_stale(cl); /* forwarded writes answered later: as their waits would end */
}

/* One acknowledgement of an ACK message. */
static void handle_ack_one(struct cluster *cl, const char *pname, uint64_t seq, int32_t rc)
{
	struct cl_pod *pod;

	pthread_mutex_lock(&cl->lock);
	pod = cl_pod_find(cl, pname);
	pthread_mutex_unlock(&cl->lock);
	if (!pod)
		return;
	pthread_mutex_lock(&pod->lock);
	uint64_t before = pod->acked_seq;
	if (seq > pod->acked_seq && seq - pod->acked_seq <= CL_WINDOW) {
		pod->acked_bits[(seq % CL_WINDOW) / 8] |= (uint8_t)(1u << (seq % 8));
		for (uint64_t n = pod->acked_seq + 1;
		     pod->acked_bits[(n % CL_WINDOW) / 8] & (1u << (n % 8)); n++) {
			pod->acked_bits[(n % CL_WINDOW) / 8] &= (uint8_t) ~(1u << (n % 8));
			pod->acked_seq = n;
		}
	}
	if (rc < 0) {
		pod->peer_err = rc;
		pfs_logl(LOG_ERR, "pstorfs: cluster: pod %s: %s failed to apply change %llu: %s",
		         pod->name, pod->peer, (unsigned long long)seq, strerror(-rc));
	} else if (rc > 0) {
		pod->verify_differ++;
	}
	/* Wake the writers of the seqs now covered (each bucket once), and the drains. */
	for (uint64_t n = before + 1; n <= pod->acked_seq && n <= before + CL_ACK_CONDS; n++)
		pthread_cond_broadcast(&pod->ack_cond[n % CL_ACK_CONDS]);
	if (pod->cond_waiters)
		pthread_cond_broadcast(&pod->cond);
	bool settle = pod->npending && pod->acked_seq > before;
	pthread_mutex_unlock(&pod->lock);
	if (settle) /* answer the writes now covered (from this, the link's I/O thread) */
		cl_pending_settle(cl, pod, before + 1);
}

static void handle_ack(struct cluster *cl, struct cl_rbuf *r)
{
	char pname[CL_NAME_MAX + 1];
	uint32_t n = cl_get32(r);

	for (uint32_t i = 0; i < n && !r->bad; i++) {
		cl_get_str(r, pname, sizeof(pname));
		uint64_t seq = cl_get64(r);
		int32_t rc = (int32_t)cl_get32(r);
		if (!r->bad)
			handle_ack_one(cl, pname, seq, rc);
	}
}

static void handle_refused(struct cluster *cl, struct cl_rbuf *r)
{
	char pname[CL_NAME_MAX + 1], why[200];
	struct cl_pod *pod;

	cl_get_str(r, pname, sizeof(pname));
	uint64_t epoch = cl_get64(r);
	cl_get_str(r, why, sizeof(why));
	if (r->bad)
		return;
	pfs_logl(LOG_ERR, "pstorfs: cluster: pod %s: %s refused our change: %s", pname,
	         cl->peer_name, why);
	pthread_mutex_lock(&cl->lock);
	pod = cl_pod_find(cl, pname);
	/* The peer has seen a newer epoch: this box is a stale leader and must stop serving. */
	if (pod && epoch > pod->epoch)
		cl_set_state(cl, pod, CL_OFFLINE);
	pthread_mutex_unlock(&cl->lock);
}

static bool applier_direct(struct cluster *cl, uint16_t type, void *buf, size_t len);
static bool rx_unordered(struct cluster *cl, uint16_t type, const void *buf, size_t len);

static void dispatch(struct cluster *cl, uint16_t type, void *buf, size_t len)
{
	struct cl_rbuf r = {buf, len, 0, false};
	struct cl_wbuf w = {0};

	/* What the link's I/O thread hands over itself, should one come this way (it arrived
	 * before the hook was set). */
	if (rx_unordered(cl, type, buf, len)) {
		free(buf);
		return;
	}
	switch (type) {
	case CL_MSG_PING: {
		uint64_t t0 = cl_get64(&r);
		uint8_t med_ok = cl_get8(&r);
		if (r.bad)
			break;
		/* Answered now: the peer may serve until t0 + timeout, so a race this box wins
		 * waits until this moment + timeout (cluster_failover.c). */
		pthread_mutex_lock(&cl->lock);
		cl->last_ping_rx_ns = cl_clock_ns();
		cl->peer_med_ok = med_ok;
		pthread_mutex_unlock(&cl->lock);
		cl_put64(&w, t0);
		cl_send(cl, CL_MSG_PONG, &w);
		cl_wbuf_free(&w);
		break;
	}
	case CL_MSG_PONG: {
		int64_t t0 = (int64_t)cl_get64(&r), now = cl_clock_ns();
		pthread_mutex_lock(&cl->lock);
		if (!r.bad && t0 <= now && t0 > cl->last_pong_t0_ns) {
			cl->rtt_ns = now - t0;
			cl->last_pong_t0_ns = t0;
		}
		pthread_mutex_unlock(&cl->lock);
		break;
	}
	case CL_MSG_PREELECT:
	case CL_MSG_PREELECT_ACK:
		cl_handle_preelect(cl, &r, type == CL_MSG_PREELECT_ACK);
		break;
	case CL_MSG_REFUSED:
		handle_refused(cl, &r);
		break;
	case CL_MSG_CHUNKS:
	case CL_MSG_VERIFY_DONE: {
		uint64_t req = cl_get64(&r);
		if (!r.bad) {
			cl_waiter_finish(cl, req, 0, 0, buf, len);
			return; /* the waiter owns BUF now */
		}
		break;
	}
	case CL_MSG_CHANGE:
		if (applier_direct(cl, type, buf, len))
			return;
		cl_queue_push_or_cut(cl, &cl->applyq, type, buf, len);
		return;
	case CL_MSG_HELLO:
	case CL_MSG_POD_DEF:
	case CL_MSG_IN_SYNC:
	case CL_MSG_POD_DROP:
	case CL_MSG_VERIFY:
	case CL_MSG_AGREE:
		cl_queue_push_or_cut(cl, &cl->applyq, type, buf, len);
		return;
	case CL_MSG_FWD:
	case CL_MSG_NEED:
	case CL_MSG_SYNC:
		cl_queue_push_or_cut(cl, &cl->workq, type, buf, len);
		return;
	default:
		pfs_logl(LOG_WARNING, "pstorfs: cluster: unknown message %u from %s", type,
		         cl->peer_name);
		break;
	}
	free(buf);
}

/* What the link's I/O thread handles itself, whatever came before: an acknowledgement or a
 * request's answer wakes its waiters from there, not through the reader's wake-up first. Each
 * takes only cl->lock and pod->lock, never held across a send (invariant 5), so the I/O thread
 * cannot wait here on a sender that waits for it. */
static bool rx_unordered(struct cluster *cl, uint16_t type, const void *buf, size_t len)
{
	struct cl_rbuf r = {buf, len, 0, false};

	switch (type) {
	case CL_MSG_ACK:
		handle_ack(cl, &r);
		return true;
	case CL_MSG_FWD_DONE:
	case CL_MSG_SYNC_DONE: {
		uint64_t req = cl_get64(&r);
		int32_t rc = (int32_t)cl_get32(&r);
		uint64_t done = cl_get64(&r);
		if (!r.bad)
			cl_waiter_finish(cl, req, rc, done, NULL, 0);
		return true;
	}
	default:
		return false;
	}
}

/* The link's receive hook (clink_set_rx_hook). A CHANGE goes straight to the appliers too (one
 * thread hand-off less per replicated write on this box) when nothing the link queued before it
 * is still with the reader, so it cannot overtake an earlier ordered message; applier_direct
 * then keeps its place behind anything in the applier's queue. */
static bool fast_rx(void *arg, uint16_t type, void **buf, size_t len, uint64_t queued)
{
	struct cluster *cl = arg;

	if (rx_unordered(cl, type, *buf, len))
		return true;
	/* The other box's changes to apply in this box's order: the workers take them in any
	 * order anyway (their writes overlap nothing acknowledged), so not through the reader. */
	if (type == CL_MSG_FWD) {
		cl_queue_push_or_cut(cl, &cl->workq, type, *buf, len);
		*buf = NULL;
		return true;
	}
	if (type == CL_MSG_CHANGE &&
	    queued == atomic_load_explicit(&cl->rx_done, memory_order_acquire) &&
	    applier_direct(cl, type, *buf, len)) {
		*buf = NULL;
		return true;
	}
	return false;
}

static void *reader_main(void *arg)
{
	struct cluster *cl = arg;
	struct clink *link = cl->link; /* stable: the manager joins us before swapping it */

	pthread_setname_np(pthread_self(), "cl-reader"); /* perf and top tell them apart */

	for (;;) {
		uint16_t type;
		void *buf;
		size_t len;
		int rc = clink_recv(link, &type, &buf, &len, 200);
		if (rc == -ETIMEDOUT) {
			if (cl->stop)
				break;
			continue;
		}
		if (rc) {
			cl_link_down(cl, rc == -EPROTO ? "malformed message" : "connection closed");
			break;
		}
		pthread_mutex_lock(&cl->lock);
		cl->last_rx_ns = pfs_now_ns();
		pthread_mutex_unlock(&cl->lock);
		dispatch(cl, type, buf, len);
		atomic_fetch_add_explicit(&cl->rx_done, 1, memory_order_release);
	}
	return NULL;
}

/* Retires a link that went down: joins its reader, closes it. Manager thread only. */
static void link_reap(struct cluster *cl)
{
	struct clink *old;

	if (!cl->link)
		return;
	cl_link_down(cl, "closed");
	if (cl->reader_running) {
		pthread_join(cl->t_reader, NULL);
		cl->reader_running = false;
	}
	pthread_rwlock_wrlock(&link_rw);
	old = cl->link;
	cl->link = NULL;
	pthread_rwlock_unlock(&link_rw);
	clink_close(old);
}

static void link_install(struct cluster *cl, struct clink *c)
{
	pthread_rwlock_wrlock(&link_rw);
	pthread_mutex_lock(&cl->lock);
	cl->link = c;
	cl->last_rx_ns = pfs_now_ns();
	cl->last_pong_t0_ns = cl_clock_ns(); /* a fresh link counts as answered */
	cl->link_err[0] = 0;
	pthread_mutex_unlock(&cl->lock);
	pthread_rwlock_unlock(&link_rw);
	atomic_store(&cl->rx_done, 0); /* the old link's reader is joined (link_reap) */
	clink_set_rx_hook(c, fast_rx, cl);
	if (pthread_create(&cl->t_reader, NULL, reader_main, cl) == 0)
		cl->reader_running = true;
	send_hello(cl);
}

static void try_accept(struct cluster *cl)
{
	struct pollfd pfd = {clink_listener_fd(cl->lis), POLLIN, 0};
	char err[256] = "", peer[CL_NAME_MAX + 1];
	struct clink *c;
	int rc;

	if (poll(&pfd, 1, 100) <= 0)
		return;
	rc = clink_accept(cl->lis, 2000, &c, err, sizeof(err));
	if (rc) {
		if (rc == -EACCES) {
			pthread_mutex_lock(&cl->lock);
			cl->refused_certs++;
			pthread_mutex_unlock(&cl->lock);
			pfs_logl(LOG_WARNING, "pstorfs: cluster: refused a connection: %s", err);
		}
		return;
	}
	pthread_mutex_lock(&cl->lock);
	snprintf(peer, sizeof(peer), "%s", cl->peer_name);
	pthread_mutex_unlock(&cl->lock);
	if (!peer[0] || strcmp(clink_peer_name(c), peer)) {
		pthread_mutex_lock(&cl->lock);
		cl->refused_certs++;
		pthread_mutex_unlock(&cl->lock);
		pfs_logl(LOG_WARNING,
		         "pstorfs: cluster: refused a connection from %s: not a peer of this box "
		         "(cluster peer add)",
		         clink_peer_name(c));
		clink_close(c);
		return;
	}
	/* The peer restarted and called again: the old link is dead even if we have not noticed. */
	link_reap(cl);
	link_install(cl, c);
}

static void try_dial(struct cluster *cl, int64_t *last_dial)
{
	char name[CL_NAME_MAX + 1], addr[128], err[256] = "";
	struct clink *c;
	int64_t now = pfs_now_ns();
	int rc;

	pthread_mutex_lock(&cl->lock);
	snprintf(name, sizeof(name), "%s", cl->peer_name);
	snprintf(addr, sizeof(addr), "%s", cl->peer_addr);
	pthread_mutex_unlock(&cl->lock);
	/* One link per pair: the box whose name sorts first dials, the other accepts. */
	if (!name[0] || strcmp(cl->name, name) > 0 || now - *last_dial < 300 * 1000000ll)
		return;
	*last_dial = now;
	rc = clink_connect(cl->tls, addr, name, 1000, &c, err, sizeof(err));
	if (rc) {
		pthread_mutex_lock(&cl->lock);
		snprintf(cl->link_err, sizeof(cl->link_err), "%.100s: %.150s", addr, err);
		if (rc == -EACCES)
			cl->refused_certs++;
		pthread_mutex_unlock(&cl->lock);
		return;
	}
	link_install(cl, c);
}

void cl_resync_tick(struct cluster *cl); /* cluster_copy.c: boot decisions, dirty cleaning */

static void *manager_main(void *arg)
{
	struct cluster *cl = arg;
	int64_t last_dial = 0, last_ping = 0;

	pthread_setname_np(pthread_self(), "cl-manager"); /* perf and top tell them apart */

	while (!cl->stop) {
		int64_t now = pfs_now_ns();
		bool up, dead;

		pthread_mutex_lock(&cl->lock);
		up = cl->link_up;
		/* Gone when no ping of ours was answered within the timeout (a one-way cut
		 * leaves messages arriving but none answered). */
		dead = cl->link && (!clink_is_up(cl->link) || cl_clock_ns() - cl->last_pong_t0_ns >
		                                                  cl->timeout_ms * 1000000ll);
		bool med_ok = cl->med_ok;
		int ping_ms = cl->timeout_ms / 6;
		bool have_peer = cl->peer_name[0] != 0;
		pthread_mutex_unlock(&cl->lock);
		if (dead || (cl->link && !have_peer))
			link_reap(cl);
		/* No new link while a race is open: its outcome decides who leads. */
		bool racing = cl_failover_busy(cl);
		if (!cl->link && !racing)
			try_dial(cl, &last_dial);
		if (!racing)
			try_accept(cl);
		else
			poll(NULL, 0, 20);
		if (cl->link && (now - last_ping) / 1000000 >= ping_ms) {
			struct cl_wbuf w = {0};
			now = pfs_now_ns(); /* the accept poll above may have waited */
			cl_put64(&w, (uint64_t)cl_clock_ns());
			cl_put8(&w, med_ok);
			cl_send(cl, CL_MSG_PING, &w);
			cl_wbuf_free(&w);
			last_ping = now;
		}
		(void)up;
		cl_failover_tick(cl);
		cl_resync_tick(cl);
	}
	link_reap(cl);
	return NULL;
}

/* The block range a queued CHANGE writes (WRITE, PUNCH), or false for anything else. */
static bool write_range(struct cl_work *w, char *vol, uint64_t *first, uint64_t *last, uint32_t bs)
{
	struct cl_rbuf r = {w->buf, w->len, 0, false};
	struct cl_change cc;
	char pname[CL_NAME_MAX + 1];

	if (w->type != CL_MSG_CHANGE)
		return false;
	cl_get_str(&r, pname, sizeof(pname));
	cl_get64(&r);
	cl_get64(&r);
	if (r.bad || cl_change_get(&r, &cc))
		return false;
	if (cc.c.kind == PFS_CHANGE_WRITE && cc.nblk) {
		*first = cc.first;
		*last = cc.first + cc.nblk - 1;
	} else if (cc.c.kind == PFS_CHANGE_PUNCH && cc.c.len) {
		*first = cc.c.off / bs;
		*last = (cc.c.off + cc.c.len - 1) / bs;
	} else {
		return false;
	}
	snprintf(vol, CL_NAME_MAX + 1, "%s", cc.name);
	return true;
}

/* A free in-flight slot for a write to VOL's blocks FIRST..LAST (IS_WRITE), or for anything
 * else once nothing is in flight: its index, or -1 while a slot in use stands in the way or none
 * is free (under inflight_lock). */
static int inflight_slot(struct cluster *cl, bool is_write, const char *vol, uint64_t first,
                         uint64_t last)
{
	int slot = -1;

	for (int i = 0; i < CL_APPLIERS; i++) {
		struct cl_inflight *f = &cl->inflight[i];
		if (!f->used) {
			if (slot < 0)
				slot = i;
		} else if (!is_write ||
		           (!strcmp(f->vol, vol) && f->first <= last && first <= f->last)) {
			return -1;
		}
	}
	return slot;
}

/* Marks in-flight slot SLOT as W's write to VOL's blocks FIRST..LAST (under inflight_lock). */
static void inflight_claim(struct cluster *cl, int slot, struct cl_work *w, const char *vol,
                           uint64_t first, uint64_t last)
{
	struct cl_inflight *f = &cl->inflight[slot];

	snprintf(f->vol, sizeof(f->vol), "%s", vol);
	f->first = first;
	f->last = last;
	f->used = true;
	w->slot = slot;
}

/* Hands W to a worker once nothing in flight overlaps it; anything that is not a write waits
 * until nothing is in flight and is applied here, in order. */
static void applier_dispatch(struct cluster *cl, struct cl_work *w)
{
	char vol[CL_NAME_MAX + 1];
	uint64_t first, last;
	bool is_write = write_range(w, vol, &first, &last, cl->bs);
	int slot;

	pthread_mutex_lock(&cl->inflight_lock);
	while ((slot = inflight_slot(cl, is_write, vol, first, last)) < 0)
		pthread_cond_wait(&cl->inflight_cond, &cl->inflight_lock);
	if (is_write)
		inflight_claim(cl, slot, w, vol, first, last);
	pthread_mutex_unlock(&cl->inflight_lock);
	if (is_write) {
		cl_queue_push_short(&cl->applyw, w);
		return;
	}
	cl_apply_msg(cl, w);
	free(w->buf);
	free(w);
}

/* The applier's pop: the next item once no other is being dispatched (busy, under the queue's
 * lock), then busy until applier_done. NULL when stopped. */
static struct cl_work *applier_pop(struct cl_queue *q)
{
	struct cl_work *w = NULL;

	pthread_mutex_lock(&q->lock);
	while ((!q->head || q->busy) && !q->stop)
		pthread_cond_wait(&q->cond, &q->lock);
	if (!q->busy && (w = queue_take_head(q)))
		q->busy = true;
	pthread_mutex_unlock(&q->lock);
	return w;
}

static void applier_done(struct cl_queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->busy = false;
	if (q->head)
		pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

/* The reader's short cut for a CHANGE (one thread hand-off less per replicated write): when
 * nothing is queued or being dispatched before it, and it is a write that overlaps nothing in
 * flight with a worker free, the reader hands it to a worker itself. Anything else goes through
 * the applier's queue, behind which it keeps its place (busy is held until it is queued). */
static bool applier_direct(struct cluster *cl, uint16_t type, void *buf, size_t len)
{
	struct cl_queue *q = &cl->applyq;
	char vol[CL_NAME_MAX + 1];
	uint64_t first, last;
	struct cl_work *w;
	int slot = -1;

	pthread_mutex_lock(&q->lock);
	if (q->head || q->busy || q->stop) {
		pthread_mutex_unlock(&q->lock);
		return false;
	}
	q->busy = true;
	pthread_mutex_unlock(&q->lock);
	w = malloc(sizeof(*w));
	if (!w) {
		applier_done(q);
		return false;
	}
	*w = (struct cl_work){type, buf, len, -1, NULL};
	if (write_range(w, vol, &first, &last, cl->bs)) {
		pthread_mutex_lock(&cl->inflight_lock);
		slot = inflight_slot(cl, true, vol, first, last); /* else the applier waits */
		if (slot >= 0)
			inflight_claim(cl, slot, w, vol, first, last);
		pthread_mutex_unlock(&cl->inflight_lock);
	}
	if (slot >= 0)
		cl_queue_push_short(&cl->applyw, w);
	else
		cl_queue_push_work(q, w); /* still busy: nothing overtakes it */
	applier_done(q);
	return true;
}

static void *applier_main(void *arg)
{
	struct cluster *cl = arg;
	struct cl_work *w;

	pthread_setname_np(pthread_self(), "cl-applier"); /* perf and top tell them apart */

	while ((w = applier_pop(&cl->applyq))) {
		applier_dispatch(cl, w);
		applier_done(&cl->applyq);
	}
	return NULL;
}

static void *apply_worker_main(void *arg)
{
	struct cluster *cl = arg;
	struct cl_work *w;

	pthread_setname_np(pthread_self(), "cl-apply"); /* perf and top tell them apart */

	for (bool done_one = false; (w = cl_queue_take(&cl->applyw, done_one)); done_one = true) {
		cl_apply_msg(cl, w);
		pthread_mutex_lock(&cl->inflight_lock);
		cl->inflight[w->slot].used = false;
		pthread_cond_broadcast(&cl->inflight_cond);
		pthread_mutex_unlock(&cl->inflight_lock);
		free(w->buf);
		free(w);
	}
	return NULL;
}

static void *worker_main(void *arg)
{
	struct cluster *cl = arg;
	struct cl_work *w;

	pthread_setname_np(pthread_self(), "cl-worker"); /* perf and top tell them apart */

	while ((w = cl_queue_pop(&cl->workq))) {
		cl_work_msg(cl, w);
		free(w->buf);
		free(w);
	}
	return NULL;
}

void *cl_resync_main(void *arg); /* cluster_copy.c */

int cl_manager_start(struct cluster *cl)
{
	int rc = pthread_create(&cl->t_applier, NULL, applier_main, cl);

	if (rc)
		return -rc;
	for (int i = 0; i < CL_APPLIERS; i++)
		if (pthread_create(&cl->t_appliers[i], NULL, apply_worker_main, cl))
			abort();
	for (int i = 0; i < 4; i++)
		if (pthread_create(&cl->t_workers[i], NULL, worker_main, cl))
			abort(); /* nothing to unwind into sanely at this point of open */
	if (pthread_create(&cl->t_resync, NULL, cl_resync_main, cl) ||
	    pthread_create(&cl->t_manager, NULL, manager_main, cl))
		abort();
	return 0;
}

void cl_manager_stop(struct cluster *cl)
{
	pthread_mutex_lock(&cl->lock);
	cl->stop = true;
	pthread_cond_broadcast(&cl->cond);
	pthread_mutex_unlock(&cl->lock);
	/* Writes still answered later get what a waiting writer gets when the cluster stops
	 * (the front drains them before closing, so normally there are none). */
	for (int i = 0; i < CL_PODS_MAX; i++)
		if (cl->pods[i])
			cl_pending_settle(cl, cl->pods[i], 0);
	cl_resync_kick(cl);
	pthread_join(cl->t_manager, NULL);
	pthread_join(cl->t_resync, NULL);
	cl_waiters_fail_stale(cl); /* cl->stop: every callback waiter */
	cl_queue_stop(&cl->applyq);
	cl_queue_stop(&cl->workq);
	pthread_join(cl->t_applier, NULL);
	cl_queue_stop(&cl->applyw);
	for (int i = 0; i < CL_APPLIERS; i++)
		pthread_join(cl->t_appliers[i], NULL);
	queue_drain(&cl->applyw);
	for (int i = 0; i < 4; i++)
		pthread_join(cl->t_workers[i], NULL);
	queue_drain(&cl->applyq);
	queue_drain(&cl->workq);
}
