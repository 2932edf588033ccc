/* cluster/link/clink.c - connections of the link: the listener, connect/accept, the per-connection
 * I/O thread, framing, and the bounded outgoing and incoming queues. TLS is clink_tls.c's;
 * nothing here interprets a message's type or payload.
 *
 * Invariants:
 *  1. Only the I/O thread touches the TLS session (an SSL object is not thread-safe) and the
 *     staging buffers wbuf/rx; callers meet it only in the queues, under c->lock.
 *  2. c->lock guards the queues, their byte counts, down/down_err/down_reason, closing, rx_paused
 *     and the waiter counts. The byte and message counters are atomics (read without the lock).
 *  3. Once down is set it is never cleared; down_reason is written once, before down is set.
 *  4. The I/O thread is woken through the eventfd: by clink_send when the outgoing queue goes from
 *     empty to not empty and the sender did not write it out itself (invariant 5), by clink_recv
 *     when it unpauses reading, and by shutdown/close.
 *  5. io_lock guards the TLS session and the write staging (wbuf, woff, wlen, direct_err): the
 *     I/O thread takes it around each read and each write pass, and clink_send try-locks it to
 *     write its message itself, sparing the I/O thread's wake-up on the replication path (a
 *     loaded core made that wake-up the larger part of a replicated write's round trip). A
 *     sender never waits for io_lock: if it is taken, its holder or the I/O thread (woken as
 *     before) writes the message. A sender that leaves bytes unwritten (the socket full, TLS
 *     wanting to read) or meets an error wakes the I/O thread, which reports the error.
 *     Received-side state (rbuf, hdr, rx) stays the I/O thread's alone, so the receive hook
 *     runs without io_lock.
 *  6. While the I/O thread busy-polls (io_polling), a sender leaves its message to it: it sets
 *     out_hint and returns if io_polling still holds. Both are sequentially consistent atomics,
 *     and the I/O thread clears io_polling before its last look at out_hint, so either it sees
 *     the hint or the sender sees it gone and writes or wakes as in invariant 4/5.
 */
#include <errno.h>
#include <pthread.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clink_int.h"

#define HDR_LEN            8
#define STAGE_LEN          (64u << 10)
#define CLOSE_FLUSH_MS     2000
#define CLINK_BUSY_POLL_US 100
#define CLINK_DIRECT_MAX   (16u << 10) /* a sender writes messages up to this itself */

struct clink_listener {
	struct clink_tls *tls;
	int fd;
};

/* An outgoing message: the frame header and payload in one block. */
struct out_msg {
	struct out_msg *next;
	size_t len, off; /* frame bytes; bytes already moved to the staging buffer */
	uint8_t frame[];
};

struct in_msg {
	struct in_msg *next;
	uint16_t type;
	size_t len;
	void *data;
};

struct clink {
	int fd, efd;
	struct clink_sess *sess;
	struct clink_peer peer;
	pthread_t thread;

	pthread_mutex_t lock;
	pthread_cond_t cond_in;  /* a message arrived, or down */
	pthread_cond_t cond_out; /* the outgoing queue shrank below the limit, or down */
	struct out_msg *out_head, *out_tail;
	size_t out_bytes;
	struct in_msg *in_head, *in_tail;
	size_t in_bytes;
	size_t limit;
	unsigned recv_waiters, send_waiters;
	bool rx_paused;
	bool closing;
	int64_t close_deadline;
	bool down;
	int down_err;
	char down_reason[256];

	clink_rx_hook hook; /* under lock; read once per batch by the I/O thread */
	void *hook_arg;

	pthread_mutex_t io_lock; /* invariant 5 */
	int direct_err;          /* a sender's write failed: the I/O thread ends the link */
	char direct_reason[256];

	_Atomic uint64_t bytes_sent, bytes_received, msgs_sent, msgs_received;
	_Atomic bool io_polling; /* invariant 6 */
	_Atomic bool out_hint;
	uint64_t queued_total; /* I/O thread only: messages ever queued for clink_recv */

	/* Under io_lock (invariant 5). */
	uint8_t wbuf[STAGE_LEN];
	size_t woff, wlen;
	/* I/O thread only (invariant 1). */
	uint8_t rbuf[STAGE_LEN];
	uint8_t hdr[HDR_LEN];
	size_t hdr_have;
	struct in_msg *rx; /* the message being received, hdr_have == HDR_LEN */
	size_t rx_have;
};

static void wake(struct clink *c)
{
	uint64_t one = 1;

	/* Can fail only with EAGAIN, when the counter is full: a wake-up is pending anyway. */
	if (write(c->efd, &one, sizeof(one)) < 0)
		return;
}

/* Called with c->lock held. */
static void set_down_locked(struct clink *c, int err, const char *reason)
{
	if (c->down)
		return;
	snprintf(c->down_reason, sizeof(c->down_reason), "%s", reason);
	c->down_err = err;
	c->down = true;
	pthread_cond_broadcast(&c->cond_in);
	pthread_cond_broadcast(&c->cond_out);
}

static void set_down(struct clink *c, int err, const char *reason)
{
	pthread_mutex_lock(&c->lock);
	set_down_locked(c, err, reason);
	pthread_mutex_unlock(&c->lock);
}

/* Parses N received bytes into whole messages, queued all at once. */
static int rx_parse(struct clink *c, const uint8_t *p, size_t n)
{
	struct in_msg *head = NULL, *last = NULL;
	size_t bytes = 0, count = 0, hooked = 0;
	clink_rx_hook hook;
	void *hook_arg;
	int r = 0;

	pthread_mutex_lock(&c->lock);
	hook = c->hook;
	hook_arg = c->hook_arg;
	pthread_mutex_unlock(&c->lock);

	while (n || (c->rx && c->rx_have == c->rx->len)) {
		if (!c->rx) {
			size_t k = HDR_LEN - c->hdr_have;
			uint32_t len;

			k = k < n ? k : n;
			memcpy(c->hdr + c->hdr_have, p, k);
			c->hdr_have += k;
			p += k;
			n -= k;
			if (c->hdr_have < HDR_LEN)
				break;
			c->hdr_have = 0;
			len = (uint32_t)c->hdr[0] | (uint32_t)c->hdr[1] << 8 |
			      (uint32_t)c->hdr[2] << 16 | (uint32_t)c->hdr[3] << 24;
			if (len > CLINK_MSG_MAX || c->hdr[6] || c->hdr[7]) {
				r = -EBADMSG;
				break;
			}
			c->rx = malloc(sizeof(*c->rx));
			if (c->rx)
				c->rx->data = malloc(len ? len : 1);
			if (!c->rx || !c->rx->data) {
				free(c->rx);
				c->rx = NULL;
				r = -ENOMEM;
				break;
			}
			c->rx->next = NULL;
			c->rx->type = (uint16_t)(c->hdr[4] | c->hdr[5] << 8);
			c->rx->len = len;
			c->rx_have = 0;
		}
		if (c->rx_have < c->rx->len) {
			size_t k = c->rx->len - c->rx_have;

			k = k < n ? k : n;
			memcpy((uint8_t *)c->rx->data + c->rx_have, p, k);
			c->rx_have += k;
			p += k;
			n -= k;
		}
		if (c->rx_have == c->rx->len && hook &&
		    hook(hook_arg, c->rx->type, &c->rx->data, c->rx->len, c->queued_total)) {
			hooked++;
			free(c->rx->data);
			free(c->rx);
			c->rx = NULL;
		} else if (c->rx_have == c->rx->len) {
			bytes += c->rx->len;
			count++;
			c->queued_total++;
			if (last)
				last->next = c->rx;
			else
				head = c->rx;
			last = c->rx;
			c->rx = NULL;
		}
	}
	if (hooked)
		atomic_fetch_add(&c->msgs_received, hooked);
	if (head) {
		atomic_fetch_add(&c->msgs_received, count);
		pthread_mutex_lock(&c->lock);
		if (c->in_tail)
			c->in_tail->next = head;
		else
			c->in_head = head;
		c->in_tail = last;
		c->in_bytes += bytes;
		if (c->recv_waiters)
			pthread_cond_broadcast(&c->cond_in);
		pthread_mutex_unlock(&c->lock);
	}
	return r;
}

/* Reads until TLS has nothing more or the incoming queue is over its limit. -EBADMSG: a malformed
 * frame. */
static int io_read(struct clink *c, short *want, char *reason, size_t rlen)
{
	for (;;) {
		bool paused;
		ssize_t n;
		int r;

		pthread_mutex_lock(&c->lock);
		paused = c->rx_paused = c->in_bytes > c->limit;
		pthread_mutex_unlock(&c->lock);
		if (paused)
			return 0;
		pthread_mutex_lock(&c->io_lock);
		n = clink_sess_read(c->sess, c->rbuf, sizeof(c->rbuf), want, reason, rlen);
		pthread_mutex_unlock(&c->io_lock);
		if (n == -EAGAIN)
			return 0;
		if (n < 0)
			return (int)n;
		atomic_fetch_add(&c->bytes_received, (uint64_t)n);
		r = rx_parse(c, c->rbuf, (size_t)n);
		if (r == -EBADMSG)
			snprintf(reason, rlen, "malformed frame from the peer");
		else if (r < 0)
			snprintf(reason, rlen, "out of memory for an incoming message");
		if (r < 0)
			return r;
	}
}

/* Moves queued frames into the staging buffer (so that small messages share TLS records) and
 * writes it until TLS would block or nothing is left. Called with io_lock held. */
static int io_write(struct clink *c, short *want, char *reason, size_t rlen)
{
	for (;;) {
		ssize_t n;

		if (c->woff == c->wlen) {
			struct out_msg *done = NULL;
			size_t moved = 0, msgs = 0;

			c->woff = c->wlen = 0;
			pthread_mutex_lock(&c->lock);
			while (c->out_head && c->wlen < STAGE_LEN) {
				struct out_msg *m = c->out_head;
				size_t k = m->len - m->off;

				k = k < STAGE_LEN - c->wlen ? k : STAGE_LEN - c->wlen;
				memcpy(c->wbuf + c->wlen, m->frame + m->off, k);
				c->wlen += k;
				m->off += k;
				moved += k;
				if (m->off == m->len) {
					c->out_head = m->next;
					if (!c->out_head)
						c->out_tail = NULL;
					m->next = done;
					done = m;
					msgs++;
				}
			}
			c->out_bytes -= moved;
			if (c->send_waiters && c->out_bytes <= c->limit)
				pthread_cond_broadcast(&c->cond_out);
			pthread_mutex_unlock(&c->lock);
			atomic_fetch_add(&c->msgs_sent, msgs);
			while (done) {
				struct out_msg *m = done;

				done = m->next;
				free(m);
			}
			if (!c->wlen)
				return 0;
		}
		n = clink_sess_write(c->sess, c->wbuf + c->woff, c->wlen - c->woff, want, reason,
		                     rlen);
		if (n == -EAGAIN)
			return 0;
		if (n < 0)
			return (int)n;
		c->woff += (size_t)n;
		atomic_fetch_add(&c->bytes_sent, (uint64_t)n);
	}
}

/* Before the thread sleeps in poll(): polls without sleeping for up to CLINK_BUSY_POLL_US while
 * the CPU has nothing else to run (sched_yield hands it to any thread that has). A replicated
 * write's round trip is a chain of wake-ups across the two boxes, and waking a thread whose CPU
 * went idle costs far more than the work: 50 us a wake-up on this project's 2-CPU virtual machine
 * (a halted virtual CPU), which made a qd1 replicated 4k write 120 us where the boxes' work is
 * 40 us. Traffic that follows within the window finds the thread awake; a quiet link costs one
 * window after its last message. Senders meanwhile leave their messages to this thread
 * (invariant 6), so the messages queued between two of its turns share one TLS record and one
 * socket write: at qd32 a replicated 4k write cost a system call, a TCP segment and the veth
 * receive that comes with it, each. True when a sender left a message. */
static bool busy_poll(struct clink *c, struct pollfd p[2])
{
	int64_t until = clink_now_us() + CLINK_BUSY_POLL_US;

	atomic_store(&c->io_polling, true);
	do {
		if (atomic_load(&c->out_hint))
			break;
		if (poll(p, 2, 0) != 0) /* ready, or an error the blocking poll reports */
			break;
		sched_yield();
	} while (clink_now_us() < until);
	atomic_store(&c->io_polling, false);
	return atomic_exchange(&c->out_hint, false); /* only this thread clears it */
}

static void *io_main(void *arg)
{
	struct clink *c = arg;
	char reason[256] = "";
	bool graceful = false;
	sigset_t pipe;
	int r = 0;

	pthread_setname_np(pthread_self(), "clink-io");
	/* TLS writes to a socket the peer reset must fail with EPIPE, not kill the daemon. */
	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe, NULL);

	for (;;) {
		struct pollfd p[2] = {{.fd = c->fd}, {.fd = c->efd, .events = POLLIN}};
		short rwant = 0, wwant = 0;
		bool down, closing, paused, staged;
		int timeout = -1;

		r = io_read(c, &rwant, reason, sizeof(reason));
		if (r < 0)
			break;
		pthread_mutex_lock(&c->io_lock);
		r = c->direct_err;
		if (r < 0)
			snprintf(reason, sizeof(reason), "%s", c->direct_reason);
		else
			r = io_write(c, &wwant, reason, sizeof(reason));
		staged = c->woff != c->wlen; /* read here: a sender may be staging later */
		pthread_mutex_unlock(&c->io_lock);
		if (r < 0)
			break;

		pthread_mutex_lock(&c->lock);
		down = c->down;
		closing = c->closing;
		paused = c->rx_paused;
		if (closing && !c->out_head && !staged)
			graceful = true;
		else if (closing)
			timeout = clink_remaining(c->close_deadline);
		pthread_mutex_unlock(&c->lock);
		if (down || graceful)
			break;
		if (closing && timeout == 0) {
			snprintf(reason, sizeof(reason),
			         "closed with unsent messages (peer not reading)");
			break;
		}

		p[0].events = rwant | wwant;
		/* Paused with nothing to write: leave the socket alone, or a hang-up would make
		 * poll() return at once forever; clink_recv wakes us when there is room. */
		if (paused && !p[0].events)
			p[0].fd = -1;
		if (busy_poll(c, p))
			continue;
		if (poll(p, 2, timeout) < 0 && errno != EINTR) {
			r = -errno;
			snprintf(reason, sizeof(reason), "poll: %s", strerror(errno));
			break;
		}
		if (p[1].revents) {
			uint64_t v;

			if (read(c->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				abort();
		}
	}
	if (r == 0) {
		pthread_mutex_lock(&c->io_lock);
		clink_sess_close_notify(c->sess);
		pthread_mutex_unlock(&c->io_lock);
	}
	/* The peer sees the end now, even if our caller closes later. */
	shutdown(c->fd, SHUT_RDWR);
	pthread_mutex_lock(&c->lock);
	if (r == -EBADMSG)
		set_down_locked(c, -EPROTO, reason);
	else
		set_down_locked(c, -EPIPE, reason[0] ? reason : "closed locally");
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

static void free_queues(struct clink *c)
{
	while (c->out_head) {
		struct out_msg *m = c->out_head;

		c->out_head = m->next;
		free(m);
	}
	while (c->in_head) {
		struct in_msg *m = c->in_head;

		c->in_head = m->next;
		free(m->data);
		free(m);
	}
	if (c->rx)
		free(c->rx->data);
	free(c->rx);
}

/* Wraps a handshaken session in a connection and starts its I/O thread. Takes FD and SESS. */
static int clink_start(int fd, struct clink_sess *sess, const struct clink_peer *peer,
                       struct clink **out, char *err, size_t errlen)
{
	pthread_condattr_t ca;
	struct clink *c;
	int r;

	c = calloc(1, sizeof(*c));
	if (!c) {
		r = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto err_sess;
	}
	c->fd = fd;
	c->sess = sess;
	c->peer = *peer;
	c->limit = CLINK_QUEUE_LIMIT_DEFAULT;
	c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (c->efd < 0) {
		r = -errno;
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		goto err_free;
	}
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->io_lock, NULL);
	/* clink_recv's timeouts must not jump with the wall clock. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cond_in, &ca);
	pthread_cond_init(&c->cond_out, &ca);
	pthread_condattr_destroy(&ca);
	r = -pthread_create(&c->thread, NULL, io_main, c);
	if (r < 0) {
		snprintf(err, errlen, "pthread_create: %s", strerror(-r));
		goto err_sync;
	}
	*out = c;
	return 0;
err_sync:
	pthread_cond_destroy(&c->cond_in);
	pthread_cond_destroy(&c->cond_out);
	pthread_mutex_destroy(&c->io_lock);
	pthread_mutex_destroy(&c->lock);
	close(c->efd);
err_free:
	free(c);
err_sess:
	clink_sess_free(sess);
	close(fd);
	return r;
}

/* A write to a peer that reset the connection during the handshake (in the caller's thread)
 * raises SIGPIPE: block it for the handshake and swallow one it raised. The I/O thread inherits
 * the blocked mask from here too. */
struct pipe_guard {
	sigset_t old;
	bool was_pending;
};

static void pipe_block(struct pipe_guard *g)
{
	sigset_t set, pend;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigpending(&pend);
	g->was_pending = sigismember(&pend, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, &g->old);
}

static void pipe_restore(struct pipe_guard *g)
{
	sigset_t set, pend;
	struct timespec zero = {0, 0};

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigpending(&pend);
	if (!g->was_pending && sigismember(&pend, SIGPIPE))
		sigtimedwait(&set, NULL, &zero);
	pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

static int handshake_and_start(struct clink_tls *t, int fd, const char *expect_name,
                               int64_t deadline, struct clink **out, char *err, size_t errlen)
{
	struct clink_sess *sess;
	struct clink_peer peer;
	struct pipe_guard g;
	int r;

	pipe_block(&g);
	r = clink_sess_handshake(t, fd, expect_name, deadline, &sess, &peer, err, errlen);
	if (r < 0)
		close(fd);
	else
		r = clink_start(fd, sess, &peer, out, err, errlen);
	pipe_restore(&g);
	return r;
}

int clink_listen(struct clink_tls *t, const char *addr_port, struct clink_listener **out, char *err,
                 size_t errlen)
{
	struct clink_listener *l;
	int r;

	l = calloc(1, sizeof(*l));
	if (!l) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	r = clink_sock_listen(addr_port, &l->fd, err, errlen);
	if (r < 0) {
		free(l);
		return r;
	}
	l->tls = t;
	*out = l;
	return 0;
}

int clink_listener_fd(const struct clink_listener *l)
{
	return l->fd;
}

int clink_listener_port(const struct clink_listener *l)
{
	return clink_sock_port(l->fd);
}

int clink_accept(struct clink_listener *l, int timeout_ms, struct clink **out, char *err,
                 size_t errlen)
{
	int64_t deadline = clink_deadline(timeout_ms);
	int fd, r;

	r = clink_sock_accept(l->fd, deadline, &fd, err, errlen);
	if (r < 0)
		return r;
	return handshake_and_start(l->tls, fd, NULL, deadline, out, err, errlen);
}

void clink_listener_close(struct clink_listener *l)
{
	if (!l)
		return;
	close(l->fd);
	free(l);
}

int clink_connect(struct clink_tls *t, const char *host_port, const char *expect_name,
                  int timeout_ms, struct clink **out, char *err, size_t errlen)
{
	int64_t deadline = clink_deadline(timeout_ms);
	int fd, r;

	if (!expect_name || !*expect_name) {
		snprintf(err, errlen, "no expected peer name");
		return -EINVAL;
	}
	r = clink_sock_connect(host_port, deadline, &fd, err, errlen);
	if (r < 0)
		return r;
	return handshake_and_start(t, fd, expect_name, deadline, out, err, errlen);
}

const char *clink_peer_name(const struct clink *c)
{
	return c->peer.name;
}

const char *clink_peer_fingerprint(const struct clink *c)
{
	return c->peer.fingerprint;
}

const char *clink_cipher(const struct clink *c)
{
	return c->peer.cipher;
}

void clink_set_queue_limit(struct clink *c, size_t bytes)
{
	pthread_mutex_lock(&c->lock);
	c->limit = bytes;
	/* A higher limit may unblock senders and the reader at once. */
	pthread_cond_broadcast(&c->cond_out);
	pthread_mutex_unlock(&c->lock);
	wake(c);
}

void clink_set_rx_hook(struct clink *c, clink_rx_hook fn, void *arg)
{
	pthread_mutex_lock(&c->lock);
	c->hook = fn;
	c->hook_arg = arg;
	pthread_mutex_unlock(&c->lock);
}

/* The sender's own write pass (invariant 5): true when it ran; it then woke the I/O thread itself
 * if anything is left for it. False when another thread holds the session. */
static bool write_now(struct clink *c)
{
	char reason[256] = "";
	short want = 0;
	bool left;
	int r;

	if (pthread_mutex_trylock(&c->io_lock))
		return false;
	r = c->direct_err;
	if (!r) {
		r = io_write(c, &want, reason, sizeof(reason));
		if (r < 0) {
			c->direct_err = r;
			snprintf(c->direct_reason, sizeof(c->direct_reason), "%s", reason);
		}
	}
	/* io_write returns 0 only with the staging and the queue empty or TLS wanting the socket
	 * (WANT): a message queued after its last look found the queue empty, so its sender woke
	 * the I/O thread or wrote it itself; nothing else is left to check. */
	left = r < 0 || want;
	pthread_mutex_unlock(&c->io_lock);
	if (left)
		wake(c);
	return true;
}

/* clink_send and clink_send_nowait: WAIT says whether to wait for room or fail with -EAGAIN. */
static int send_msg(struct clink *c, uint16_t type, const struct iovec *iov, int iovcnt, bool wait)
{
	struct out_msg *m;
	size_t total = 0, off = HDR_LEN, len;
	bool was_empty;

	if (iovcnt < 0 || (iovcnt > 0 && !iov))
		return -EINVAL;
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > CLINK_MSG_MAX - total)
			return -EMSGSIZE;
		total += iov[i].iov_len;
	}
	/* The copy is made before waiting for room, so the caller's buffers are free on return
	 * and the lock is never held across it. */
	m = malloc(sizeof(*m) + HDR_LEN + total);
	if (!m)
		return -ENOMEM;
	m->next = NULL;
	m->len = HDR_LEN + total;
	m->off = 0;
	m->frame[0] = (uint8_t)total;
	m->frame[1] = (uint8_t)(total >> 8);
	m->frame[2] = (uint8_t)(total >> 16);
	m->frame[3] = (uint8_t)(total >> 24);
	m->frame[4] = (uint8_t)type;
	m->frame[5] = (uint8_t)(type >> 8);
	m->frame[6] = m->frame[7] = 0;
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len)
			memcpy(m->frame + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}

	pthread_mutex_lock(&c->lock);
	if (!wait && !c->down && c->out_bytes > c->limit) {
		pthread_mutex_unlock(&c->lock);
		free(m);
		return -EAGAIN;
	}
	while (!c->down && c->out_bytes > c->limit) {
		c->send_waiters++;
		pthread_cond_wait(&c->cond_out, &c->lock);
		c->send_waiters--;
	}
	if (c->down) {
		pthread_mutex_unlock(&c->lock);
		free(m);
		return -EPIPE;
	}
	was_empty = !c->out_head;
	if (c->out_tail)
		c->out_tail->next = m;
	else
		c->out_head = m;
	c->out_tail = m;
	c->out_bytes += m->len;
	len = m->len; /* M is the I/O thread's once the lock is dropped */
	pthread_mutex_unlock(&c->lock);
	if (atomic_load(&c->io_polling)) {
		atomic_store(&c->out_hint, true);
		if (atomic_load(&c->io_polling))
			return 0;
	}
	/* A large message is left to the I/O thread: its encryption and copy then overlap the
	 * sender's next work instead of holding it (a 1 MiB write, or a resync's chunks). */
	if (!(len <= CLINK_DIRECT_MAX && write_now(c)) && was_empty)
		wake(c);
	return 0;
}

int clink_send(struct clink *c, uint16_t type, const struct iovec *iov, int iovcnt)
{
	return send_msg(c, type, iov, iovcnt, true);
}

int clink_send_nowait(struct clink *c, uint16_t type, const struct iovec *iov, int iovcnt)
{
	return send_msg(c, type, iov, iovcnt, false);
}

int clink_recv(struct clink *c, uint16_t *type, void **buf, size_t *len, int timeout_ms)
{
	struct timespec ts;
	struct in_msg *m;
	bool unpause;
	int r = 0;

	if (timeout_ms > 0) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += timeout_ms / 1000;
		ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
	}
	pthread_mutex_lock(&c->lock);
	while (!c->in_head) {
		if (c->down) {
			r = c->down_err;
			goto out_unlock;
		}
		if (timeout_ms == 0 || r == ETIMEDOUT) {
			r = -ETIMEDOUT;
			goto out_unlock;
		}
		c->recv_waiters++;
		if (timeout_ms < 0)
			r = pthread_cond_wait(&c->cond_in, &c->lock);
		else
			r = pthread_cond_timedwait(&c->cond_in, &c->lock, &ts);
		c->recv_waiters--;
	}
	m = c->in_head;
	c->in_head = m->next;
	if (!c->in_head)
		c->in_tail = NULL;
	c->in_bytes -= m->len;
	unpause = c->rx_paused && c->in_bytes <= c->limit;
	if (unpause)
		c->rx_paused = false;
	pthread_mutex_unlock(&c->lock);
	if (unpause)
		wake(c);
	*type = m->type;
	*buf = m->data;
	*len = m->len;
	free(m);
	return 0;
out_unlock:
	pthread_mutex_unlock(&c->lock);
	return r;
}

void clink_shutdown(struct clink *c)
{
	set_down(c, -EPIPE, "shut down locally");
	wake(c);
}

bool clink_is_up(const struct clink *c)
{
	struct clink *m = (struct clink *)c; /* the lock is not part of the value */
	bool up;

	pthread_mutex_lock(&m->lock);
	up = !m->down;
	pthread_mutex_unlock(&m->lock);
	return up;
}

const char *clink_down_reason(const struct clink *c)
{
	/* Written once before down is set (invariant 3): stable once the caller saw it down. */
	return clink_is_up(c) ? "" : c->down_reason;
}

void clink_close(struct clink *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	c->closing = true;
	c->close_deadline = clink_now_ms() + CLOSE_FLUSH_MS;
	pthread_mutex_unlock(&c->lock);
	wake(c);
	pthread_join(c->thread, NULL);
	free_queues(c);
	clink_sess_free(c->sess);
	close(c->fd);
	close(c->efd);
	pthread_cond_destroy(&c->cond_in);
	pthread_cond_destroy(&c->cond_out);
	pthread_mutex_destroy(&c->io_lock);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

void clink_get_stats(const struct clink *c, struct clink_stats *st)
{
	struct clink *m = (struct clink *)c;

	st->bytes_sent = atomic_load(&m->bytes_sent);
	st->bytes_received = atomic_load(&m->bytes_received);
	st->msgs_sent = atomic_load(&m->msgs_sent);
	st->msgs_received = atomic_load(&m->msgs_received);
	pthread_mutex_lock(&m->lock);
	st->queued_bytes = m->out_bytes;
	pthread_mutex_unlock(&m->lock);
}
