/* cluster/cluster_int.h - private structures of the cluster module: the peer, the pods and the
 * messages between two boxes. Never included from another folder: cluster.h is the module's
 * public face.
 *
 * Invariants (cited from the code by number):
 *  1. One box sequences each stretched pod (its leader). Every change to the pod is applied on
 *     the leader under the pod's order_lock and sent to the peer under the same hold, so the
 *     peer applies the pod's changes in the leader's order. Writes hold it shared with their
 *     block range locked: two writes that overlap are applied and sent one after the other;
 *     two that do not commute, so their order on the peer does not matter. A change entering the
 * other box is forwarded to the leader (FWD) and comes back in that order.
 *  2. A write is acknowledged once the peer acknowledged its sequence number (ACKs are in
 *     order), or once the peer is declared gone and the write's regions are dirty.
 *  3. Before the leader applies a write, the write's regions are set in the pod's dirty map and
 *     that map is durable (blob). Bits are cleared only when nothing sent is unacknowledged and
 *     the peer is in sync. So after a crash or an outage the dirty map covers every region the
 *     peer may lack (DRBD keeps an activity log and a bitmap; here they are one map).
 *  4. Every CHANGE carries the pod's epoch; a box refuses one older than the newest it has
 *     seen for the pod (a stale leader cannot write through).
 *  5. Locks, in the order a thread may take them: pod->order_lock -> pod->send_lock -> the
 *     link's; pod->order_lock -> cl->lock (pods table, peer, link state) -> pod->lock (acks,
 *     ranges, dirty bits: a leaf; pod->save_lock is taken without it). order_lock and cl->lock
 *     may be held into the store (its locks come after them). The store
 *     calls in only through its hooks, holding none of its locks, and the capture callback
 *     (under the store's log lock) takes no cluster lock.
 */
#ifndef PSTOR_CLUSTER_INT_H
#define PSTOR_CLUSTER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "clink.h"
#include "cluster.h"
#include "engine.h"
#include "pfs_store.h"

#define CL_NAME_MAX 64
#define CL_PODS_MAX 64
#define CL_POD_VOLS 256
#define CL_REGION   (4u << 20) /* dirty-map and resync granule */
/* The peer is gone when no ping of ours was answered for cl->timeout_ms (cluster_timeout_ms,
 * 1500 by default); pings go out six times per timeout. */
#define CL_BOOT_WAIT_MS 3000 /* after a restart, how long the leader waits for its peer */

/* ---- messages (cluster_msg.c) ---------------------------------------------------------------- */
enum cl_msg_type {
	CL_MSG_HELLO = 1,         /* name, then each stretched pod's view */
	CL_MSG_PING = 2,          /* t0 */
	CL_MSG_PONG = 3,          /* t0 */
	CL_MSG_POD_DEF = 4,       /* ordered: a pod and its volumes (stretch, set, membership) */
	CL_MSG_CHANGE = 5,        /* ordered: pod, epoch, seq, change */
	CL_MSG_ACK = 6,           /* count, then count x (pod, seq, rc) */
	CL_MSG_FWD = 7,           /* req, pod, change: the other box's change for the leader */
	CL_MSG_FWD_DONE = 8,      /* req, rc, done */
	CL_MSG_NEED = 9,          /* req, fingerprints the applier lacks */
	CL_MSG_CHUNKS = 10,       /* req, chunks as stored */
	CL_MSG_SYNC = 11,         /* req */
	CL_MSG_SYNC_DONE = 12,    /* req, rc */
	CL_MSG_IN_SYNC = 13,      /* ordered: pod, epoch: the resync ended, the peer serves again */
	CL_MSG_POD_DROP = 14,     /* ordered: pod: unstretched */
	CL_MSG_REFUSED = 15,      /* pod, epoch, reason: a change refused (stale epoch) */
	CL_MSG_VERIFY = 16,       /* ordered: pod, req, volume, region, digest */
	CL_MSG_VERIFY_DONE = 17,  /* req, regions that differ */
	CL_MSG_PREELECT = 18,     /* pod, on: the leader asks the other box not to race */
	CL_MSG_PREELECT_ACK = 19, /* pod, on: promised (saved) */
	CL_MSG_AGREE = 20,        /* ordered: pod, epoch, mediator revision both race with */
};

/* A growable little-endian encoder and a bounds-checked decoder. */
struct cl_wbuf {
	uint8_t *b;
	size_t len, cap;
	int err;
};
void cl_put8(struct cl_wbuf *w, uint8_t v);
void cl_put32(struct cl_wbuf *w, uint32_t v);
void cl_put64(struct cl_wbuf *w, uint64_t v);
void cl_put_bytes(struct cl_wbuf *w, const void *p, size_t n);
/* N bytes appended for the caller to fill (valid until the next put), NULL after a failure. */
uint8_t *cl_put_room(struct cl_wbuf *w, size_t n);
/* Room for CAP bytes in all, so a message of known size is not copied as it grows. */
void cl_wbuf_reserve(struct cl_wbuf *w, size_t cap);
void cl_put_str(struct cl_wbuf *w, const char *s);
void cl_wbuf_free(struct cl_wbuf *w);
struct cl_rbuf {
	const uint8_t *b;
	size_t len, off;
	bool bad;
};
uint8_t cl_get8(struct cl_rbuf *r);
uint32_t cl_get32(struct cl_rbuf *r);
uint64_t cl_get64(struct cl_rbuf *r);
const uint8_t *cl_get_bytes(struct cl_rbuf *r, size_t n);
/* Copies a string of at most CAP-1 bytes into OUT (bad when longer). */
void cl_get_str(struct cl_rbuf *r, char *out, size_t cap);

/* Block descriptors: how a block travels. */
enum cl_blk_tag {
	CL_BLK_ZERO = 0,
	CL_BLK_PATTERN = 1, /* period (u8), 16 bytes */
	CL_BLK_FP = 2,      /* fingerprint: the receiver holds it or asks (NEED) */
	CL_BLK_DATA = 3,    /* codec (u8), length (u32), the chunk as stored */
};

/* A change as it travels: the struct pfs_change fields by value and maps by name; WRITE
 * carries whole blocks [first, first+nblk) as descriptors and the size after it. */
struct cl_change {
	struct pfs_change c;
	char name[CL_NAME_MAX + 1], snap[CL_NAME_MAX + 1], new_name[CL_NAME_MAX + 1];
	char src_name[CL_NAME_MAX + 1], src_snap[CL_NAME_MAX + 1]; /* CLONE_RANGE */
	char value[256];
	uint64_t first, nblk, size_after;
	const uint8_t *blocks; /* descriptors (decoded: points into the message) */
	size_t blocks_len;
};
void cl_change_put(struct cl_wbuf *w, const struct cl_change *cc);
/* The same without the write's descriptor bytes (cc->blocks): the caller sends them after it
 * (cl_send_ordered_tail), so a large write's chunks are not copied into the message. */
void cl_change_put_head(struct cl_wbuf *w, const struct cl_change *cc);
int cl_change_get(struct cl_rbuf *r, struct cl_change *cc); /* -EPROTO */

/* ---- pods (cluster_pod.c) -------------------------------------------------------------------- */
enum cl_pod_state {
	CL_LOCAL = 0, /* not stretched */
	CL_IN_SYNC,
	CL_SYNCING,
	CL_DEGRADED,
	CL_OFFLINE,
	CL_SPLIT,
};
const char *cl_state_name(enum cl_pod_state s);

struct cl_member {
	char name[CL_NAME_MAX + 1];
	uint8_t *dirty; /* one bit per CL_REGION; under pod->lock */
	/* Regions written since the cleaner last ran: it clears only the others, so the regions
	 * in use stay set and are not made durable again at every write (the activity part). */
	uint8_t *touched;
	uint64_t dirty_bits;
	/* The map as last committed (loaded, or cl_pod_save_dirty_upto's copy once its commit
	 * returned): a region set here is durable, so a write into it need not wait for a save. */
	uint8_t *durable;
	size_t durable_len;
};

struct cl_pod {
	char name[CL_NAME_MAX + 1];
	uint32_t slot; /* volume tag = slot + 1 */
	struct cl_member *vols;
	int nvols;
	/* stretched: peer name, leader (the box that sequences), preferred ("auto" or a box) */
	char peer[CL_NAME_MAX + 1], leader[CL_NAME_MAX + 1], preferred[CL_NAME_MAX + 1];
	bool async;
	uint64_t resync_rate; /* bytes/s, 0 = unlimited */
	uint64_t epoch;
	bool wrote_alone; /* this box changed the pod without its peer in this epoch */
	_Atomic int state;

	/* Invariant 1. Held shared by writes and punches, which also hold their block range
	 * (ranges below), so overlapping ones are applied and sent in one order and disjoint ones
	 * run in parallel; held exclusive by every other change, copy and verify step. */
	pthread_rwlock_t order_lock;
	pthread_mutex_t send_lock; /* a sequence number and its place in the link's queue */
	pthread_mutex_t save_lock; /* one dirty-map save at a time (cl_pod_save_dirty) */
#define CL_RANGES 64
	struct cl_range {
		uint64_t map, first, last;
		bool used;
	} ranges[CL_RANGES];  /* under lock */
	pthread_mutex_t lock; /* below */
	pthread_cond_t cond;  /* ranges, drains, the window; state changed */
	/* A write waiting for its acknowledgement sleeps on ack_cond[seq % CL_ACK_CONDS]: an ack
	 * wakes the writers of the seqs it covers, not every writer of the pod. */
#define CL_ACK_CONDS 64
	pthread_cond_t ack_cond[CL_ACK_CONDS];
	int cond_waiters;  /* threads waiting on cond for acknowledgements */
	uint64_t next_seq; /* leader: next sequence number to send */
	/* Leader: which stream the seqs belong to, counted by cl_seq_reset (a new link's stream
	 * starts again at 1): a seq sent on a stream since abandoned is never acknowledged. */
	uint64_t seq_gen;
	/* Leader: seq_gen + 1 when the pod last stopped being served here (offline, split); 0:
	 * never. A write of an abandoned stream that began no later than that may have been
	 * replaced by the peer's copy in the resync that followed: it is not confirmed. */
	uint64_t lost_gen;
	uint64_t acked_seq;   /* leader: every seq <= this is acknowledged */
	uint64_t applied_seq; /* follower: last applied */
	int peer_err;         /* the peer failed to apply a change: resync needed */
	bool dirty_unsaved;
	/* Writers' marks that newly set dirty bits, counted, and how many of them the last
	 * finished dirty-map save covers (both under pod->lock): a writer whose mark a save copied
	 * and committed needs no save of its own (group commit). */
	uint64_t dirty_gen, dirty_saved_gen;
	/* progress and counters */
	uint64_t resync_total, resync_done; /* bytes of the running stretch or resync */
	uint64_t resync_regions_left;
	uint64_t logical_bytes, wire_bytes; /* replicated data: logical and on the wire */
	uint64_t verify_regions, verify_differ;
	char verify_msg[256];
	/* What is in flight (sent, not acknowledged): the async lag. A window of CL_WINDOW sends,
	 * by seq: when each went out and the bytes sent up to it. */
#define CL_WINDOW 1024
	int64_t sent_ns[CL_WINDOW];
	uint64_t sent_cum[CL_WINDOW];
	uint64_t sent_total;
	/* Acknowledgements may arrive out of order (the other box applies disjoint writes in
	 * parallel): those beyond acked_seq wait here until the gap closes. */
	uint8_t acked_bits[CL_WINDOW / 8];
	/* Leader: writes whose user gets the answer later (PFS_CHANGE_PENDING) instead of a
	 * thread sleeping in cl_wait_ack, by seq % CL_WINDOW (no more than the window is in
	 * flight; a slot found taken, after a sequence reset, falls back to waiting). The ACK
	 * that covers one, or the state that decides it, finishes it exactly as cl_wait_ack
	 * would have answered at that moment (cl_pending_settle). */
	struct cl_pending {
		uint64_t seq, gen, done;
		pfs_change_done_fn fn; /* NULL: the slot is free */
		void *arg;
	} pending[CL_WINDOW];
	int npending;
	bool resync_running;
	/* Snapshot creates and deletes made while serving alone, in order (kind, volume,
	 * snapshot, the snapshot's map id): the resync replays them, with the regions each
	 * snapshot needs, so the peer gets the same snapshots. Blob cl/snaps/POD. */
	struct cl_wbuf snaps;
	bool full_copy; /* the running copy is a stretch: snapshots too */
	/* Failover (cluster_failover.c). Saved: med_rev, race_nonce, holds_key,
	 * preelect_promised, on_no_quorum. The others under cl->lock. */
	uint64_t med_rev;       /* the key's revision both boxes race with (0: none agreed) */
	uint64_t race_nonce;    /* in the value of our put in flight: recognises a lost answer */
	bool holds_key;         /* won: serving alone under this box's lease */
	bool preelect_promised; /* other box: promised not to race (pre-election) */
	uint8_t on_no_quorum;   /* CL_NOQ_*: I/O while not served */
	bool preelect_armed;    /* leader: the other box promised */
	_Atomic bool racing;    /* a race is open (read by writers under pod->lock) */
	bool race_retry;        /* the mediator did not answer: try again */
	bool boot_raced, retake, agree_pending, agree_warned;
	int64_t race_at_ns, link_lost_ns; /* cl_clock_ns() */
	/* Part 1's leader after a link loss: serves alone from this moment (cl_clock_ns(), 0:
	 * not waiting), once the peer has stopped serving reads (cl_failover_link_lost). */
	int64_t alone_at_ns;
	struct cl_pod *next_dead; /* deleted, freed at close (tags may still point here) */
};

struct cmed; /* cluster/mediator/cmed.h */

/* ---- the cluster ----------------------------------------------------------------------------- */
struct cl_waiter {
	uint64_t req;
	uint64_t gen; /* the link generation it was made in */
	int rc;
	uint64_t done;
	bool finished;
	void *data; /* CHUNKS: the message */
	size_t data_len;
	/* Answered, not waited for (cl_waiter_new_cb): FN(ARG, rc, done) once, from the thread
	 * that finished it or from the link's loss. */
	pfs_change_done_fn fn;
	void *arg;
	struct cl_waiter *next;
};

struct cl_work {
	uint16_t type;
	void *buf;
	size_t len;
	int slot; /* the applier's in-flight slot of a write */
	struct cl_work *next;
};

struct cl_queue {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct cl_work *head, *tail;
	bool stop;
	/* applyq: an item is being dispatched (by the applier, or by the reader directly), so
	 * the next waits: the pod's order is the order items leave this queue. */
	bool busy;
	/* A pool of short items (applyw, cl_queue_take): items queued, and workers holding one.
	 * A push wakes a sleeper only while more are queued than running workers will come back
	 * for, so a worker that keeps up takes them one after another without a wake-up each. */
	unsigned queued, running;
};

struct cluster {
	struct pfs *p;
	struct engine *eng;
	uint32_t bs;
	char name[CL_NAME_MAX + 1];
	char listen_addr[128];
	struct clink_tls *tls;
	struct clink_listener *lis;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct cl_pod *pods[CL_PODS_MAX];
	char peer_name[CL_NAME_MAX + 1], peer_addr[128]; /* "" = no peer */
	struct clink *link;                              /* NULL while down */
	uint64_t link_gen;                               /* bumps at each connect */
	bool link_up;                                    /* HELLO exchanged */
	int64_t last_rx_ns, rtt_ns, link_up_since_ns;
	/* Messages of the current link the reader has dispatched: a CHANGE the link's I/O thread
	 * sees with as many queued before it has nothing ahead of it in the reader's hands. */
	_Atomic uint64_t rx_done;
	char link_err[256];
	uint64_t refused_certs, refused_epochs;
	int64_t boot_ns;
	uint64_t next_req;
	struct cl_waiter *waiters;

	/* Acknowledgements not yet handed to the link (cl_send_ack): whichever thread finds
	 * none being sent sends them all as one ACK, and again while more came meanwhile. */
	pthread_mutex_t ack_lock;
	struct cl_wbuf acks; /* count (patched), then the entries */
	uint32_t nacks;
	bool ack_sending;

	struct cl_queue applyq; /* ordered messages from the peer */
	struct cl_queue applyw; /* writes the applier hands to its workers */
	/* Writes being applied by the workers: a later one that overlaps waits (so overlapping
	 * writes are applied in the leader's order), anything but a write waits for all. */
#define CL_APPLIERS 16
	pthread_mutex_t inflight_lock;
	pthread_cond_t inflight_cond;
	struct cl_inflight {
		char vol[CL_NAME_MAX + 1];
		uint64_t first, last;
		bool used;
	} inflight[CL_APPLIERS];
	pthread_t t_appliers[CL_APPLIERS];
	struct cl_queue workq; /* FWD, NEED, SYNC from the peer */
	pthread_t t_manager, t_reader, t_applier, t_resync;
	pthread_t t_workers[4];
	bool reader_running;
	bool stop;
	struct cl_pod *dead;

	/* Failover (cluster_failover.c); under lock unless said. */
	int timeout_ms, head_start_ms, med_ttl;  /* settings, fixed at open */
	struct cmed *med;                        /* NULL: no mediator (part 1's rule) */
	char med_prefix[160], med_key_base[320]; /* PREFIX, PREFIX/BOXA+BOXB/pod/ */
	pthread_t t_mediator;
	bool med_thread, med_kick, med_ok, peer_med_ok;
	pthread_cond_t med_cond;          /* with lock: wakes the mediator thread */
	int64_t lease_id, lease_until_ns; /* serve alone only before lease_until_ns */
	int lease_ttl;
	int64_t last_pong_t0_ns; /* when the newest ping the peer answered left (cl_clock_ns) */
	int64_t last_ping_rx_ns; /* when this box last answered the peer's ping */
	uint64_t races_won, races_lost;
	int64_t last_failover_ms;
};

enum { CL_NOQ_IO_ERROR = 0, CL_NOQ_SUSPEND = 1 };

/* cluster_failover.c */
int64_t cl_clock_ns(void); /* CLOCK_BOOTTIME: counts a frozen VM's pause */
int cl_failover_open(struct cluster *cl, const struct cluster_opts *o, char *msg, size_t msglen);
void cl_failover_set_peer(struct cluster *cl); /* under lock, after peer_name changes */
int cl_failover_start(struct cluster *cl);
void cl_failover_stop(struct cluster *cl);
/* At link loss, under cl->lock: the part-1 rule, the pre-election, or a race. */
void cl_failover_link_lost(struct cluster *cl, struct cl_pod *pod);
/* A restarted leader without its peer: races when a mediator is set (true), else false. */
bool cl_failover_boot(struct cluster *cl, struct cl_pod *pod);
/* A race is open, or part 1's leader waits to serve alone: no new link meanwhile. */
bool cl_failover_busy(struct cluster *cl);
void cl_failover_tick(struct cluster *cl); /* manager thread: part 1's leader goes alone */
/* Waits until no race is open and drops the retries: the peer is back (HELLO). */
void cl_failover_wait_race(struct cluster *cl);
/* Before serving I/O of a stretched pod: waits out a race, drops a link gone silent, checks
 * the lease of a box serving alone. 0 or -EIO (held instead while on_no_quorum=suspend). */
int cl_failover_gate(struct cluster *cl, struct cl_pod *pod);
void cl_failover_link_up(struct cluster *cl, struct cl_pod *pod); /* HELLO, order lock held */
void cl_failover_in_sync(struct cluster *cl, struct cl_pod *pod); /* leader: resync ended */
void cl_handle_preelect(struct cluster *cl, struct cl_rbuf *r, bool ack);
void cl_apply_agree(struct cluster *cl, struct cl_pod *pod, struct cl_rbuf *r);
struct cl_med_report {
	bool configured, reachable, peer_reachable;
	int64_t latency_us, lease_left_ms, last_failover_ms;
	int lease_ttl;
	uint64_t races_won, races_lost;
	char endpoint[256], err[256], key_base[320];
};
void cl_failover_stats(struct cluster *cl, struct cl_med_report *r);

/* cluster_core.c */
struct cl_pod *cl_pod_new(struct cluster *cl, const char *name); /* under cl->lock */
void cl_pod_delete(struct cluster *cl, struct cl_pod *pod);      /* under cl->lock */
int cl_pod_add_member(struct cl_pod *pod, const char *vol);
void cl_pod_drop_member(struct cl_pod *pod, const char *vol);
int cl_peer_save(struct cluster *cl);
/* Appends a snapshot change made while degraded to the pod's journal and saves it. */
int cl_snap_journal_add(struct cluster *cl, struct cl_pod *pod, enum pfs_change_kind kind,
                        const char *vol, const char *snap);
int cl_snap_journal_clear(struct cluster *cl, struct cl_pod *pod);
void cl_manager_stop(struct cluster *cl);
struct cl_pod *cl_pod_find(struct cluster *cl, const char *name);    /* under cl->lock */
struct cl_pod *cl_pod_of_vol(struct cluster *cl, struct pfs_vol *v); /* by tag, no lock */
int cl_pod_save(struct cluster *cl, struct cl_pod *pod);
int cl_pod_save_dirty(struct cluster *cl, struct cl_pod *pod); /* caller holds pod->order_lock */
/* Returns once a save that copied the maps after writers' mark GEN (pod->dirty_gen) committed:
 * this call's own, or one that finished meanwhile. */
int cl_pod_save_dirty_upto(struct cluster *cl, struct cl_pod *pod, uint64_t gen);
void cl_pod_tag_all(struct cluster *cl);
struct cl_member *cl_pod_member(struct cl_pod *pod, const char *vol);
bool cl_is_leader(struct cluster *cl, struct cl_pod *pod);
void cl_set_state(struct cluster *cl, struct cl_pod *pod, enum cl_pod_state s);
/* Marks [off, off+len) of member M dirty; returns true when a bit was newly set. Under pod->lock.
 */
bool cl_mark_dirty(struct cl_member *m, uint64_t off, uint64_t len);
bool cl_dirty_durable(const struct cl_member *m, uint64_t off, uint64_t len); /* pod->lock */
/* The size of volume NAME here (0 when there is none). */
uint64_t cl_vol_size(struct cluster *cl, const char *name);
/* Marks every region of every member dirty (a stretch, a resolve: the peer gets it all). */
void cl_pod_mark_all_dirty(struct cluster *cl, struct cl_pod *pod);
static inline uint64_t cl_member_bytes(const struct cl_member *m)
{
	return (m->dirty_bits + 7) / 8;
}
int cl_member_grow(struct cl_member *m, uint64_t size);
/* Starts a new sequence (a new link, a stretch, a handover): NEXT is the next seq to send.
 * Under pod->lock. */
void cl_seq_reset(struct cl_pod *pod, uint64_t next);

/* cluster_link_mgr.c: sending and waiting */
int cl_send(struct cluster *cl, uint16_t type, const struct cl_wbuf *w);
/* The same from IOV's N pieces, in order (the link copies them once, into its frame). */
int cl_sendv(struct cluster *cl, uint16_t type, const struct iovec *iov, int n);
/* Acknowledges the ordered message SEQ of POD with the result of applying it here. The ACK is
 * queued on the link before this returns, or joins the one another thread is about to queue
 * (the acknowledgements of concurrent appliers travel together, in the order they came). */
void cl_send_ack(struct cluster *cl, const char *pod, uint64_t seq, int rc);
/* The same from a thread that must not wait: for room on the link (its receive hook's), or
 * for the link's swap (a holder of cl->lock). -EAGAIN when it would have to. */
int cl_send_nowait(struct cluster *cl, uint16_t type, const struct cl_wbuf *w);
struct cl_waiter *cl_waiter_new(struct cluster *cl);
/* A waiter whose answer goes to FN(ARG, rc, done) (through pfs_change_finish), once: from
 * cl_waiter_finish, or with -EIO when the link of its generation goes down or the cluster
 * stops. Nobody waits on it. */
struct cl_waiter *cl_waiter_new_cb(struct cluster *cl, pfs_change_done_fn fn, void *arg);
/* Waits until the waiter finished or the link generation changed: -EIO then. Frees it. */
int cl_waiter_wait(struct cluster *cl, struct cl_waiter *w, uint64_t gen, uint64_t *done,
                   void **data, size_t *len);
/* Drops a waiter not needed any more. False when it was no longer there: a waiter with a
 * callback already answered (the link went down meanwhile). */
bool cl_waiter_cancel(struct cluster *cl, struct cl_waiter *w);
/* Answers -EIO to the callback waiters of link generations before the current one (all of them
 * when the cluster stops). Called without cl->lock. */
void cl_waiters_fail_stale(struct cluster *cl);
void cl_waiter_finish(struct cluster *cl, uint64_t req, int rc, uint64_t done, void *data,
                      size_t len);
void cl_link_down(struct cluster *cl, const char *why);
int cl_manager_start(struct cluster *cl);
int cl_queue_push(struct cl_queue *q, uint16_t type, void *buf,
                  size_t len); /* frees BUF on error */
void cl_queue_push_or_cut(struct cluster *cl, struct cl_queue *q, uint16_t type, void *buf,
                          size_t len);
void cl_queue_push_work(struct cl_queue *q, struct cl_work *w);
struct cl_work *cl_queue_pop(struct cl_queue *q); /* NULL when stopped */
void cl_queue_push_short(struct cl_queue *q, struct cl_work *w);
struct cl_work *cl_queue_take(struct cl_queue *q, bool done_one); /* NULL when stopped */
void cl_queue_stop(struct cl_queue *q);

/* cluster_repl.c: the change hook, sending changes, applying the peer's */
int cl_hook_change(void *arg, struct pfs_change *c);
int cl_hook_read_gate(void *arg, struct pfs_vol *v);
int cl_hook_sync(void *arg);
/* Leader: applies CC here (with local handle data in C) and sends it, under the order lock;
 * *SEQ gets its sequence number (0 when the pod is not replicating now) and *GEN its stream
 * (cl_send_ordered). */
int cl_leader_apply(struct cluster *cl, struct cl_pod *pod, struct pfs_change *c, uint64_t *seq,
                    uint64_t *gen);
/* The same with the order lock held exclusive by the caller (a pod snapshot's volumes). */
int cl_leader_apply_locked(struct cluster *cl, struct cl_pod *pod, struct pfs_change *c,
                           uint64_t *seq, uint64_t *gen);
/* Waits for the peer to acknowledge SEQ (invariant 2), of the stream now. */
int cl_wait_ack(struct cluster *cl, struct cl_pod *pod, uint64_t seq);
/* The same for SEQ of stream GEN (from cl_leader_apply). */
int cl_wait_ack_gen(struct cluster *cl, struct cl_pod *pod, uint64_t seq, uint64_t gen);
/* Finishes POD's pending writes that are decided now: those from seq FROM up to acked_seq
 * (an ACK advanced it), or every one when FROM is 0 (the state changed, or the cluster stops).
 * Called without pod->lock; the answers are sent after it is dropped. */
void cl_pending_settle(struct cluster *cl, struct cl_pod *pod, uint64_t from);
void cl_apply_msg(struct cluster *cl, struct cl_work *w); /* the applier thread */
void cl_work_msg(struct cluster *cl, struct cl_work *w);  /* the worker thread */
/* Sends an ordered message of POD (already encoded after the pod/epoch/seq header). *SEQ gets
 * its sequence number and, when GEN is not NULL, *GEN its stream (pod->seq_gen), both taken
 * together: a stream reset between them would name the seq's stream wrongly. */
int cl_send_ordered(struct cluster *cl, struct cl_pod *pod, uint16_t type, struct cl_wbuf *body,
                    uint64_t *seq, uint64_t *gen);
/* The same with TAIL_LEN bytes at TAIL after BODY in the message, sent from where they are. */
int cl_send_ordered_tail(struct cluster *cl, struct cl_pod *pod, uint16_t type,
                         struct cl_wbuf *body, const void *tail, size_t tail_len, uint64_t *seq,
                         uint64_t *gen);
/* Builds the descriptors of blocks [first, first+n) of V as they are now (fingerprints only
 * when FP_ONLY, the stored chunk for fresh ones otherwise). Caller holds the pod order lock. */
int cl_encode_blocks(struct cluster *cl, struct pfs_vol *v, uint64_t first, uint64_t n,
                     struct cl_wbuf *w, uint64_t *wire);

/* cluster_copy.c: stretch, resync, verify */
int cl_resync_start(struct cluster *cl);
void cl_resync_kick(struct cluster *cl);
int cl_verify(struct cluster *cl, struct cl_pod *pod);

/* cluster_ctl.c / cluster_report.c use the above. */
#endif
