/* cluster/cluster_repl.c - synchronous mirroring of a stretched pod's changes. The store's hook
 * sends every change of a pod to its leader; the leader applies it, sends it in order with its
 * blocks as fingerprints or as stored chunks, and acknowledges once the peer has applied it.
 * The peer's applier turns descriptors back into blocks (asking for the chunks it lacks) and
 * applies them through the same change path.
 */
#include <errno.h>
#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_int.h"

/* ---- which pod a change belongs to ------------------------------------------------------- */

static struct cl_pod *pod_by_name(struct cluster *cl, const char *vol)
{
	struct pfs_vol *v;
	struct cl_pod *pod = NULL;

	if (!vol)
		return NULL;
	v = pfs_vol_find(cl->p, PFS_MAP_VOLUME, 0, vol);
	if (v) {
		pod = cl_pod_of_vol(cl, v);
		pfs_vol_unref(v);
	}
	return pod;
}

static struct cl_pod *pod_of_change(struct cluster *cl, const struct pfs_change *c)
{
	switch (c->kind) {
	case PFS_CHANGE_WRITE:
	case PFS_CHANGE_PUNCH:
	case PFS_CHANGE_RESIZE:
	case PFS_CHANGE_CLONE_RANGE:
	case PFS_CHANGE_SETATTR:
		return c->vol ? cl_pod_of_vol(cl, c->vol) : NULL;
	case PFS_CHANGE_VOL_DELETE:
	case PFS_CHANGE_VOL_RENAME:
	case PFS_CHANGE_SNAP_CREATE:
	case PFS_CHANGE_SNAP_DELETE:
	case PFS_CHANGE_SNAP_RESTORE:
		return pod_by_name(cl, c->name);
	default:
		return NULL; /* create, snapshot clone (a new volume outside the pod), settings */
	}
}

static bool serving(struct cluster *cl, struct cl_pod *pod)
{
	int st = atomic_load(&pod->state);

	if (st == CL_LOCAL || st == CL_IN_SYNC || st == CL_DEGRADED)
		return true;
	/* While a resync runs the leader serves; the box being resynced does not yet. */
	return st == CL_SYNCING && cl_is_leader(cl, pod);
}

int cl_hook_read_gate(void *arg, struct pfs_vol *v)
{
	struct cluster *cl = arg;
	struct cl_pod *pod = cl_pod_of_vol(cl, v);

	if (!pod || atomic_load(&pod->state) == CL_LOCAL)
		return 0;
	if (!cl_failover_gate(cl, pod) && serving(cl, pod))
		return 0;
	return -EIO;
}

/* ---- the leader: apply, encode, send -------------------------------------------------------- */

/* The block records of the write being applied (capture callback; under the store's log lock). */
struct capture {
	struct cluster *cl;
	uint64_t map, first, n;
	struct cap_blk {
		bool set, fresh, has_fp;
		struct engine_ref ref;
		uint8_t fp[ENGINE_FP_LEN];
	} * b;
};

static void capture_fn(void *arg, const struct pfs_block_change *bc)
{
	struct capture *cap = arg;

	if (bc->map != cap->map || bc->blk < cap->first || bc->blk - cap->first >= cap->n ||
	    bc->derived)
		return;
	struct cap_blk *b = &cap->b[bc->blk - cap->first];
	if (b->set)
		engine_ref_put(cap->cl->eng, b->ref);
	b->set = engine_ref_get(cap->cl->eng, bc->ref) == 0;
	if (!b->set)
		return;
	b->ref = bc->ref;
	/* A chunk with one reference was stored by this write: the peer cannot hold it. */
	b->fresh = engine_ref_kind(bc->ref) == ENGINE_REF_CHUNK &&
	           engine_ref_count(cap->cl->eng, bc->ref) <= 2;
	b->has_fp = bc->fp != NULL;
	if (bc->fp)
		memcpy(b->fp, bc->fp, ENGINE_FP_LEN);
}

/* The calling thread is about to export N blocks' chunks: chunks written together are read from
 * the device in runs, not a read each (a large write's new chunks are mostly in sealed packs by
 * the time it is encoded). True when it was turned on (one block gains nothing): the caller
 * turns it off after (engine_read_ahead(eng, 0)). */
static bool blocks_ahead(struct cluster *cl, uint64_t n)
{
	if (n < 2)
		return false;
	engine_read_ahead(cl->eng, n < UINT32_MAX / cl->bs ? (uint32_t)(n * cl->bs) : UINT32_MAX);
	return true;
}

/* One block's descriptor. REF is held by the caller. */
static int put_block(struct cluster *cl, struct cl_wbuf *w, struct engine_ref ref,
                     const uint8_t *fp, bool send_data, uint8_t *scratch)
{
	uint8_t pat[16], hash[ENGINE_FP_LEN];
	enum engine_codec codec;
	int n, rc;

	switch (engine_ref_kind(ref)) {
	case ENGINE_REF_ZERO:
		cl_put8(w, CL_BLK_ZERO);
		return 0;
	case ENGINE_REF_PATTERN:
		rc = engine_read(cl->eng, ref, scratch);
		if (rc)
			return rc;
		n = engine_pattern_detect(scratch, cl->bs, pat);
		if (n <= 0)
			return -EIO;
		cl_put8(w, CL_BLK_PATTERN);
		cl_put8(w, (uint8_t)n);
		cl_put_bytes(w, pat, 16);
		return 0;
	case ENGINE_REF_CHUNK:
		if (!fp) {
			rc = engine_ref_fp(cl->eng, ref, hash);
			if (rc)
				return rc;
			fp = hash;
		}
		if (!send_data) {
			cl_put8(w, CL_BLK_FP);
			cl_put_bytes(w, fp, ENGINE_FP_LEN);
			return 0;
		}
		n = engine_chunk_export(cl->eng, ref, scratch, cl->bs, &codec);
		if (n < 0)
			return n;
		/* No fingerprint with the data: the receiver stores the block through its own
		 * write path, which hashes it (32 bytes a block less on the wire). */
		cl_put8(w, CL_BLK_DATA);
		cl_put8(w, (uint8_t)codec);
		cl_put32(w, (uint32_t)n);
		cl_put_bytes(w, scratch, (size_t)n);
		return 0;
	}
	return -EINVAL;
}

int cl_encode_blocks(struct cluster *cl, struct pfs_vol *v, uint64_t first, uint64_t n,
                     struct cl_wbuf *w, uint64_t *wire)
{
	struct engine_ref *refs = malloc(sizeof(*refs) * n);
	uint8_t *scratch = malloc(cl->bs);
	size_t start = w->len;
	int rc = -ENOMEM;

	if (!refs || !scratch)
		goto out;
	rc = pfs_vol_refs(cl->p, v, first, (uint32_t)n, refs);
	if (rc)
		goto out;
	for (uint64_t i = 0; i < n; i++) {
		if (!rc)
			rc = put_block(cl, w, refs[i], NULL, false, scratch);
		engine_ref_put(cl->eng, refs[i]);
	}
	if (wire)
		*wire += w->len - start;
out:
	free(refs);
	free(scratch);
	return rc ? rc : w->err;
}

/* The whole-block range a byte range covers. */
static void block_range(struct cluster *cl, uint64_t off, uint64_t len, uint64_t *first,
                        uint64_t *n)
{
	*first = off / cl->bs;
	*n = len ? (off + len - 1) / cl->bs - *first + 1 : 0;
}

/* snprintf(DST, SIZE, "%s", SRC) without the format engine: this runs for every replicated
 * write, and five formatted copies were a visible share of the leader's FUSE threads. */
static void name_copy(char *dst, size_t size, const char *src)
{
	size_t n = src ? strnlen(src, size - 1) : 0;

	memcpy(dst, src ? src : "", n);
	dst[n] = '\0';
}

/* Fills the names of C's handles into CC (maps travel by name; a snapshot by its volume's name
 * and its own). */
static void name_change(struct cluster *cl, struct cl_change *cc, const struct pfs_change *c)
{
	struct pfs_vol_info info;

	memset(cc, 0, sizeof(*cc));
	cc->c = *c;
	cc->c.vol = cc->c.src = NULL;
	cc->c.buf = NULL;
	cc->c.held = NULL;
	cc->c.block_fp = NULL;
	cc->c.created = NULL;
	name_copy(cc->name, sizeof(cc->name), c->name);
	name_copy(cc->snap, sizeof(cc->snap), c->snap);
	name_copy(cc->new_name, sizeof(cc->new_name), c->new_name);
	name_copy(cc->value, sizeof(cc->value), c->value);
	if (c->vol) {
		pfs_vol_get_info(c->vol, &info);
		name_copy(cc->name, sizeof(cc->name), info.name);
	}
	if (c->src) {
		pfs_vol_get_info(c->src, &info);
		if (info.kind == PFS_MAP_SNAPSHOT) {
			name_copy(cc->src_snap, sizeof(cc->src_snap), info.name);
			struct pfs_vol *par = pfs_vol_by_id(cl->p, info.parent);
			if (par) {
				pfs_vol_get_info(par, &info);
				pfs_vol_unref(par);
			}
		}
		name_copy(cc->src_name, sizeof(cc->src_name), info.name);
	}
}

/* The handles CC names on this box (references for the caller to drop). */
static int resolve(struct cluster *cl, struct cl_change *cc)
{
	struct pfs_change *c = &cc->c;

	if (c->kind <= PFS_CHANGE_SETATTR) {
		c->vol = pfs_vol_find(cl->p, PFS_MAP_VOLUME, 0, cc->name);
		c->name = NULL;
		if (!c->vol)
			return -ENOENT;
	}
	if (c->kind == PFS_CHANGE_CLONE_RANGE) {
		struct pfs_vol *sv = pfs_vol_find(cl->p, PFS_MAP_VOLUME, 0, cc->src_name);
		if (sv && cc->src_snap[0]) {
			struct pfs_vol_info si;
			pfs_vol_get_info(sv, &si);
			c->src = pfs_vol_find(cl->p, PFS_MAP_SNAPSHOT, si.id, cc->src_snap);
			pfs_vol_unref(sv);
		} else {
			c->src = sv;
		}
		if (!c->src)
			return -ENOENT;
	}
	return 0;
}

static void unresolve(struct cl_change *cc)
{
	if (cc->c.vol)
		pfs_vol_unref(cc->c.vol);
	if (cc->c.src)
		pfs_vol_unref(cc->c.src);
	cc->c.vol = cc->c.src = NULL;
}

int cl_send_ordered(struct cluster *cl, struct cl_pod *pod, uint16_t type, struct cl_wbuf *body,
                    uint64_t *seq, uint64_t *gen)
{
	return cl_send_ordered_tail(cl, pod, type, body, NULL, 0, seq, gen);
}

int cl_send_ordered_tail(struct cluster *cl, struct cl_pod *pod, uint16_t type,
                         struct cl_wbuf *body, const void *tail, size_t tail_len, uint64_t *seq,
                         uint64_t *gen)
{
	struct cl_wbuf w = {0};
	int rc;

	if (body->err)
		return body->err;

	/* The header every ordered message starts with: pod, epoch, seq (invariants 1 and 4). The
	 * link's queue must hold them in seq order: ACKs are cumulative. */
	pthread_mutex_lock(&pod->send_lock);
	pthread_mutex_lock(&pod->lock);
	/* At most CL_WINDOW in flight: an async pod's writers wait here when the peer lags. */
	while (pod->next_seq - pod->acked_seq > CL_WINDOW && !cl->stop &&
	       (atomic_load(&pod->state) == CL_IN_SYNC || atomic_load(&pod->state) == CL_SYNCING)) {
		pod->cond_waiters++;
		pthread_cond_wait(&pod->cond, &pod->lock);
		pod->cond_waiters--;
	}
	uint64_t s = pod->next_seq++, g = pod->seq_gen;
	uint64_t epoch = pod->epoch;
	pod->sent_total += body->len + tail_len;
	pod->sent_ns[s % CL_WINDOW] = pfs_now_ns();
	pod->sent_cum[s % CL_WINDOW] = pod->sent_total;
	pthread_mutex_unlock(&pod->lock);
	cl_put_str(&w, pod->name);
	cl_put64(&w, epoch);
	cl_put64(&w, s);
	/* The body and the tail go from where they are: the link copies them once, into its
	 * frame (this runs under send_lock, which every sender of the pod takes). */
	struct iovec iov[3] = {{w.b, w.len}, {body->b, body->len}, {(void *)tail, tail_len}};
	rc = w.err ? w.err : cl_sendv(cl, type, iov, 3);
	pthread_mutex_unlock(&pod->send_lock);
	cl_wbuf_free(&w);
	if (rc)
		return rc;
	*seq = s;
	if (gen)
		*gen = g;
	return 0;
}

/* Marks the regions a change may touch dirty and makes the map durable before the change is
 * applied here (invariant 3). Caller holds the order lock. */
static int dirty_before(struct cluster *cl, struct cl_pod *pod, const struct pfs_change *c,
                        const char *vol)
{
	struct cl_member *m = cl_pod_member(pod, vol);
	uint64_t off = c->off, len = c->len;
	uint64_t gen;
	bool fresh;

	if (!m)
		return 0;
	if (c->kind == PFS_CHANGE_RESIZE || c->kind == PFS_CHANGE_SNAP_RESTORE) {
		struct pfs_vol *v = pfs_vol_find(cl->p, PFS_MAP_VOLUME, 0, vol);
		struct pfs_vol_info info = {0};
		if (v) {
			pfs_vol_get_info(v, &info);
			pfs_vol_unref(v);
		}
		off = 0;
		len = info.size > c->size ? info.size : c->size;
		if (c->kind == PFS_CHANGE_SNAP_RESTORE)
			len = UINT64_C(1)
			      << 50; /* every region: the restored size is unknown here */
	} else if (c->kind != PFS_CHANGE_WRITE && c->kind != PFS_CHANGE_PUNCH &&
	           c->kind != PFS_CHANGE_CLONE_RANGE) {
		return 0;
	}
	pthread_mutex_lock(&pod->lock);
	if (c->kind == PFS_CHANGE_SNAP_RESTORE)
		len = m->dirty_bits ? m->dirty_bits * (uint64_t)CL_REGION : CL_REGION;
	fresh = cl_mark_dirty(m, off, len);
	if (fresh)
		pod->dirty_unsaved = true;
	/* A bit set by another writer whose save has not committed yet is not durable either
	 * (invariant 3): wait for that save too (the latest mark covers it), unless the map last
	 * committed has the bit (a region marked ahead: waiting for the newest save, of regions
	 * further on, held a sequential stream at every region). Not for a fresh bit: the
	 * cleaner cleared it, and a save whose copy was taken since may commit it cleared. */
	gen = fresh ? ++pod->dirty_gen : pod->dirty_gen;
	bool saved = pod->dirty_saved_gen >= gen || (!fresh && cl_dirty_durable(m, off, len));
	pthread_mutex_unlock(&pod->lock);
	return saved ? 0 : cl_pod_save_dirty_upto(cl, pod, gen);
}

/* A large write that ends in the second half of its region, when the next region is not marked
 * yet, marks the next CL_AHEAD regions of the volume dirty and makes the map durable now, after
 * its own change went out (its answer waits for the peer, not for this). A sequential stream then
 * finds each region's bit saved when it gets there (cl_dirty_durable), instead of every write
 * into a fresh region waiting for a commit of the map (a 1M sequential job spent most of its time
 * there). The commit holds the store's SQLite lock, which every map page load takes: one save per
 * region still held the stream (0.74 s of every second of the leader's FUSE threads waited for a
 * save, then 1.26 s for a page load behind one, off-CPU profile), so a save covers 32 MiB ahead.
 * Invariant 3 holds either way: a region marked early is at worst resynced for nothing (DRBD's
 * activity log keeps far more extents hot), and the manager clears it when idle; a failed save
 * here is made again by the first write into that region (its bit is set, not saved). Caller
 * holds the order lock. */
#define CL_AHEAD_MIN (128u << 10)
#define CL_AHEAD     8u
static void dirty_ahead(struct cluster *cl, struct cl_pod *pod, const struct pfs_change *c,
                        const char *vol)
{
	struct cl_member *m = cl_pod_member(pod, vol);
	uint64_t end = c->off + c->done, next = end / CL_REGION + 1, gen = 0;
	struct pfs_vol_info info;

	if (!m || c->done < CL_AHEAD_MIN || end % CL_REGION < CL_REGION / 2)
		return;
	pfs_vol_get_info(c->vol, &info);
	pthread_mutex_lock(&pod->lock);
	uint64_t from = next * (uint64_t)CL_REGION;
	bool fresh = from < info.size && cl_mark_dirty(m, from, 1);
	if (fresh) {
		uint64_t span = (uint64_t)CL_AHEAD * CL_REGION;
		cl_mark_dirty(m, from, span < info.size - from ? span : info.size - from);
		pod->dirty_unsaved = true;
		gen = ++pod->dirty_gen;
	}
	pthread_mutex_unlock(&pod->lock);
	if (gen)
		(void)cl_pod_save_dirty_upto(cl, pod, gen);
}

static int encode_write(struct cluster *cl, struct pfs_change *c, struct capture *cap,
                        struct cl_change *cc, struct cl_wbuf *blocks, uint64_t *wire)
{
	uint8_t *scratch = malloc(cl->bs);
	struct pfs_vol_info info;
	int rc = 0;

	if (!scratch)
		return -ENOMEM;
	pfs_vol_get_info(c->vol, &info);
	cc->first = cap->first;
	cc->nblk = cap->n;
	cc->size_after = info.size;
	bool ahead = blocks_ahead(cl, cap->n);
	for (uint64_t i = 0; i < cap->n && !rc; i++) {
		struct cap_blk *b = &cap->b[i];
		struct engine_ref ref;
		if (b->set) {
			ref = b->ref;
		} else {
			/* Not rewritten (the same content): as it is now, under the order lock. */
			rc = pfs_vol_refs(cl->p, c->vol, cap->first + i, 1, &ref);
			if (rc)
				break;
		}
		rc = put_block(cl, blocks, ref, b->set && b->has_fp ? b->fp : NULL,
		               b->set && b->fresh, scratch);
		if (!b->set)
			engine_ref_put(cl->eng, ref);
	}
	if (ahead)
		engine_read_ahead(cl->eng, 0);
	free(scratch);
	if (!rc)
		rc = blocks->err;
	cc->blocks = blocks->b;
	cc->blocks_len = blocks->len;
	*wire += blocks->len;
	return rc;
}

static void capture_release(struct cluster *cl, struct capture *cap)
{
	for (uint64_t i = 0; cap->b && i < cap->n; i++)
		if (cap->b[i].set)
			engine_ref_put(cl->eng, cap->b[i].ref);
	free(cap->b);
}

/* Waits until no other write holds an overlapping range of MAP, then holds [FIRST, LAST]. */
static int range_acquire(struct cl_pod *pod, uint64_t map, uint64_t first, uint64_t last)
{
	int slot;

	pthread_mutex_lock(&pod->lock);
	for (;;) {
		bool clash = false;
		slot = -1;
		for (int i = 0; i < CL_RANGES; i++) {
			struct cl_range *r = &pod->ranges[i];
			if (!r->used) {
				if (slot < 0)
					slot = i;
			} else if (r->map == map && r->first <= last && first <= r->last) {
				clash = true;
			}
		}
		if (!clash && slot >= 0)
			break;
		pthread_cond_wait(&pod->cond, &pod->lock);
	}
	pod->ranges[slot] = (struct cl_range){map, first, last, true};
	pthread_mutex_unlock(&pod->lock);
	return slot;
}

static void range_release(struct cl_pod *pod, int slot)
{
	pthread_mutex_lock(&pod->lock);
	pod->ranges[slot].used = false;
	pthread_cond_broadcast(&pod->cond);
	pthread_mutex_unlock(&pod->lock);
}

int cl_leader_apply(struct cluster *cl, struct cl_pod *pod, struct pfs_change *c, uint64_t *seq,
                    uint64_t *gen)
{
	int rc, slot = -1;

	if ((c->kind == PFS_CHANGE_WRITE || c->kind == PFS_CHANGE_PUNCH) && c->vol) {
		struct pfs_vol_info info;
		uint64_t first, n;
		pfs_vol_get_info(c->vol, &info);
		block_range(cl, c->off, c->len ? c->len : 1, &first, &n);
		pthread_rwlock_rdlock(&pod->order_lock);
		slot = range_acquire(pod, info.id, first, first + n - 1);
	} else {
		pthread_rwlock_wrlock(&pod->order_lock);
	}
	rc = cl_leader_apply_locked(cl, pod, c, seq, gen);
	if (slot >= 0)
		range_release(pod, slot);
	pthread_rwlock_unlock(&pod->order_lock);
	return rc;
}

int cl_leader_apply_locked(struct cluster *cl, struct cl_pod *pod, struct pfs_change *c,
                           uint64_t *seq, uint64_t *gen)
{
	struct capture cap = {.cl = cl};
	struct cl_change cc;
	struct cl_wbuf blocks = {0}, body = {0};
	uint64_t wire = 0;
	int rc, st;

	*seq = 0;
	name_change(cl, &cc, c);
	st = atomic_load(&pod->state);
	if (st != CL_IN_SYNC && st != CL_SYNCING && st != CL_DEGRADED) {
		rc = -EIO;
		pfs_set_msg(cl->p, "pod %s: not served on this box (%s)", pod->name,
		            cl_state_name((enum cl_pod_state)st));
		goto out_unlock;
	}
	rc = dirty_before(cl, pod, c, cc.name);
	if (rc)
		goto out_unlock;
	if (st == CL_DEGRADED && !pod->wrote_alone) {
		/* The first change without the peer in this epoch: recorded, so a box that finds
		 * its peer also wrote alone in the same epoch knows it is a split. (Concurrent
		 * writers may both save it: the same record.) */
		pod->wrote_alone = true;
		rc = cl_pod_save(cl, pod);
		if (rc)
			goto out_unlock;
	}
	if (c->kind == PFS_CHANGE_WRITE && st != CL_DEGRADED) {
		struct pfs_vol_info info;
		pfs_vol_get_info(c->vol, &info);
		cap.map = info.id;
		block_range(cl, c->off, c->len, &cap.first, &cap.n);
		cap.b = calloc(cap.n ? cap.n : 1, sizeof(*cap.b));
		if (!cap.b) {
			rc = -ENOMEM;
			goto out_unlock;
		}
	}
	rc = pfs_change_apply_local(cl->p, c, cap.b ? capture_fn : NULL, &cap);
	if (!rc && st == CL_DEGRADED &&
	    (c->kind == PFS_CHANGE_SNAP_CREATE || c->kind == PFS_CHANGE_SNAP_DELETE)) {
		/* Applied: a failure to journal it is logged, and the peer lacks the change
		 * until the pod is stretched again. */
		int jr = cl_snap_journal_add(cl, pod, c->kind, cc.name, cc.snap);
		if (jr)
			pfs_logl(LOG_ERR,
			         "pstorfs: cluster: pod %s: cannot journal snapshot %s of %s: %s",
			         pod->name, cc.snap, cc.name, strerror(-jr));
	}
	if (rc || st == CL_DEGRADED)
		goto out_unlock;
	if (c->kind == PFS_CHANGE_WRITE) {
		/* The bytes written, which may be fewer than asked (a short write). */
		block_range(cl, c->off, c->done, &cap.first, &cap.n);
		if (!cap.n)
			goto out_unlock;
		cc.c.len = c->done;
		rc = encode_write(cl, c, &cap, &cc, &blocks, &wire);
	}
	if (!rc) {
		/* A write's descriptors follow as they are (name_change zeroed them for the rest).
		 */
		cl_change_put_head(&body, &cc);
		rc = cl_send_ordered_tail(cl, pod, CL_MSG_CHANGE, &body, cc.blocks, cc.blocks_len,
		                          seq, gen);
	}
	if (rc) {
		/* Applied here, not sent: the regions stay dirty and a resync brings the peer up.
		 */
		pfs_logl(LOG_WARNING, "pstorfs: cluster: pod %s: a change could not be sent: %s",
		         pod->name, strerror(-rc));
		*seq = 0;
		rc = 0;
	} else {
		pthread_mutex_lock(&pod->lock);
		pod->logical_bytes += c->kind == PFS_CHANGE_WRITE ? c->done : 0;
		pod->wire_bytes += body.len + cc.blocks_len;
		pthread_mutex_unlock(&pod->lock);
		if (c->kind == PFS_CHANGE_WRITE)
			dirty_ahead(cl, pod, c, cc.name);
	}
out_unlock:
	capture_release(cl, &cap);
	cl_wbuf_free(&blocks);
	cl_wbuf_free(&body);
	return rc;
}

/* Under pod->lock: whether the wait for SEQ of stream GEN is over, and then its answer in *RC.
 * Once the peer is declared gone the write stands on this box alone if it serves the pod alone
 * (its regions are dirty, invariant 2): part 1's leader, or the winner of the race at the
 * mediator. A box that lost the race fails it: the pod is the winner's copy. A seq of a stream
 * since abandoned (the link went down and a new one began: its writer was slower than the
 * HELLO that took the order lock after it) is never acknowledged; the write was applied here
 * before that HELLO, so the resync that follows covers its regions: in sync again, both hold
 * it, unless this box stopped serving the pod since that stream began (lost_gen): then the
 * resync may have brought the peer's copy over it, and the write fails. */
static bool ack_decided(struct cluster *cl, struct cl_pod *pod, uint64_t seq, uint64_t gen, int *rc)
{
	int st = atomic_load(&pod->state);
	bool stale = gen != pod->seq_gen;

	*rc = 0;
	if (!stale && pod->acked_seq >= seq)
		return true;
	if (stale && pod->lost_gen > gen) {
		*rc = -EIO;
		return true;
	}
	if (stale && st == CL_IN_SYNC)
		return true;
	if (!cl->stop && (st == CL_IN_SYNC || st == CL_SYNCING || pod->racing))
		return false;
	*rc = st == CL_DEGRADED ? 0 : -EIO;
	return true;
}

static void ack_failed_msg(struct cluster *cl, struct cl_pod *pod)
{
	pfs_set_msg(cl->p, "pod %s: the peer went away and this box does not serve the pod",
	            pod->name);
}

int cl_wait_ack(struct cluster *cl, struct cl_pod *pod, uint64_t seq)
{
	pthread_mutex_lock(&pod->lock);
	uint64_t gen = pod->seq_gen;
	pthread_mutex_unlock(&pod->lock);
	return cl_wait_ack_gen(cl, pod, seq, gen);
}

int cl_wait_ack_gen(struct cluster *cl, struct cl_pod *pod, uint64_t seq, uint64_t gen)
{
	int rc;

	pthread_mutex_lock(&pod->lock);
	while (!ack_decided(cl, pod, seq, gen, &rc))
		pthread_cond_wait(&pod->ack_cond[seq % CL_ACK_CONDS], &pod->lock);
	pthread_mutex_unlock(&pod->lock);
	if (rc)
		ack_failed_msg(cl, pod);
	return rc;
}

/* cl_wait_ack without the wait: C's answer is sent later by cl_pending_settle (C was applied
 * here and sent: nothing of it is needed any more), or now if it is decided already. */
static int ack_later(struct cluster *cl, struct cl_pod *pod, uint64_t seq, uint64_t gen,
                     struct pfs_change *c)
{
	struct cl_pending *pe = &pod->pending[seq % CL_WINDOW];
	int rc;

	pthread_mutex_lock(&pod->lock);
	if (ack_decided(cl, pod, seq, gen, &rc)) {
		pthread_mutex_unlock(&pod->lock);
		if (rc)
			ack_failed_msg(cl, pod);
		return rc;
	}
	if (pe->fn) { /* taken (a sequence reset since): this one waits as before */
		pthread_mutex_unlock(&pod->lock);
		return cl_wait_ack_gen(cl, pod, seq, gen);
	}
	*pe = (struct cl_pending){
	    .seq = seq, .gen = gen, .done = c->done, .fn = c->on_done, .arg = c->on_done_arg};
	pod->npending++;
	pthread_mutex_unlock(&pod->lock);
	return PFS_CHANGE_PENDING;
}

void cl_pending_settle(struct cluster *cl, struct cl_pod *pod, uint64_t from)
{
	/* In batches, so no user's answer is sent under the lock. */
	enum { BATCH = 32 };
	struct cl_pending got[BATCH];
	int rcs[BATCH], n;
	uint32_t k = 0;
	bool failed = false;

	do {
		n = 0;
		pthread_mutex_lock(&pod->lock);
		for (; k < CL_WINDOW && pod->npending && n < BATCH; k++) {
			uint64_t seq = from + k;
			if (from && seq > pod->acked_seq)
				break;
			struct cl_pending *pe = &pod->pending[from ? seq % CL_WINDOW : k];
			if (!pe->fn || (from && pe->seq != seq) ||
			    !ack_decided(cl, pod, pe->seq, pe->gen, &rcs[n]))
				continue;
			got[n++] = *pe;
			pe->fn = NULL;
			pod->npending--;
		}
		pthread_mutex_unlock(&pod->lock);
		for (int i = 0; i < n; i++) {
			if (rcs[i] && !failed) {
				ack_failed_msg(cl, pod);
				failed = true;
			}
			pfs_change_finish(cl->p, got[i].fn, got[i].arg, rcs[i],
			                  rcs[i] ? 0 : got[i].done);
		}
	} while (n == BATCH);
}

/* ---- the other box: forward to the leader ------------------------------------------------- */

static int forward(struct cluster *cl, struct cl_pod *pod, struct pfs_change *c)
{
	struct cl_change cc;
	struct cl_wbuf w = {0};
	struct cl_waiter *wt;
	uint64_t gen, done = 0;
	char *z = NULL;
	int rc;

	name_change(cl, &cc, c);
	if (c->kind == PFS_CHANGE_WRITE && c->len > CLINK_MSG_MAX / 2)
		return -EINVAL;
	/* A write whose caller takes the answer later is answered from FWD_DONE's thread: the
	 * caller's thread goes on, and the leader's answers of many writes are awaited at once
	 * (waiting here held a FUSE thread per forwarded write). */
	bool later = c->on_done && c->kind == PFS_CHANGE_WRITE;
	wt = later ? cl_waiter_new_cb(cl, c->on_done, c->on_done_arg) : cl_waiter_new(cl);
	if (!wt)
		return -ENOMEM;
	gen = wt->gen;
	cl_put64(&w, wt->req);
	cl_put_str(&w, pod->name);
	cc.c.kind = c->kind;
	cl_change_put(&w, &cc);
	if (c->kind == PFS_CHANGE_WRITE) {
		/* The data as LZ4 (the leader reduces it as it stores it). */
		int cap = LZ4_compressBound((int)c->len);
		z = malloc((size_t)cap);
		int zn = z ? LZ4_compress_default(c->buf, z, (int)c->len, cap) : 0;
		if (!z) {
			cl_wbuf_free(&w);
			return cl_waiter_cancel(cl, wt) ? -ENOMEM : PFS_CHANGE_PENDING;
		}
		/* Raw when LZ4 does not shrink it (random data): never more than the bytes. */
		bool raw = zn <= 0 || (uint64_t)zn >= c->len;
		cl_put8(&w, raw ? 0 : 1);
		cl_put32(&w, raw ? (uint32_t)c->len : (uint32_t)zn);
		cl_put_bytes(&w, raw ? c->buf : z, raw ? c->len : (size_t)zn);
		free(z);
		pthread_mutex_lock(&pod->lock);
		pod->logical_bytes += c->len;
		pod->wire_bytes += w.len;
		pthread_mutex_unlock(&pod->lock);
	}
	rc = cl_send(cl, CL_MSG_FWD, &w);
	cl_wbuf_free(&w);
	if (rc) {
		if (!cl_waiter_cancel(cl, wt))
			return PFS_CHANGE_PENDING; /* the link's loss answered it meanwhile */
		pfs_set_msg(cl->p, "pod %s: leader %s unreachable", pod->name, pod->leader);
		return -EIO;
	}
	if (later)
		return PFS_CHANGE_PENDING; /* nothing of C is used from here on */
	rc = cl_waiter_wait(cl, wt, gen, &done, NULL, NULL);
	if (rc == -EIO)
		pfs_set_msg(cl->p, "pod %s: the leader %s did not confirm the change", pod->name,
		            pod->leader);
	c->done = done;
	return rc;
}

int cl_hook_change(void *arg, struct pfs_change *c)
{
	struct cluster *cl = arg;
	struct cl_pod *pod = pod_of_change(cl, c);
	uint64_t seq, gen;
	int rc, st;

	if (!pod)
		return 1;
	if (c->kind == PFS_CHANGE_VOL_DELETE || c->kind == PFS_CHANGE_VOL_RENAME) {
		pfs_set_msg(cl->p, "volume %s is in pod %s: pod remove it first", c->name,
		            pod->name);
		return -EBUSY;
	}
	if (c->kind == PFS_CHANGE_CLONE_RANGE && c->src) {
		struct pfs_vol_info si;
		pfs_vol_get_info(c->src, &si);
		/* Both ends must be in the pod (a snapshot's volume counts as its pod's), else
		 * the peer lacks the source: EXDEV makes cp fall back to copying. */
		struct pfs_vol *sv =
		    si.kind == PFS_MAP_SNAPSHOT ? pfs_vol_by_id(cl->p, si.parent) : NULL;
		struct cl_pod *spod = cl_pod_of_vol(cl, sv ? sv : c->src);
		if (sv)
			pfs_vol_unref(sv);
		if (spod != pod) {
			pfs_set_msg(cl->p, "clone into pod %s from outside it", pod->name);
			return -EXDEV;
		}
	}
	st = atomic_load(&pod->state);
	if (st == CL_LOCAL) {
		/* Not mirrored, but a pod snapshot (exclusive) must not cut through a write. */
		pthread_rwlock_rdlock(&pod->order_lock);
		rc = pfs_change_apply_local(cl->p, c, NULL, NULL);
		pthread_rwlock_unlock(&pod->order_lock);
		return rc;
	}
	if (cl_failover_gate(cl, pod) || !serving(cl, pod)) {
		st = atomic_load(&pod->state);
		pfs_set_msg(cl->p, "pod %s is %s on this box", pod->name,
		            cl_state_name((enum cl_pod_state)st));
		return -EIO;
	}
	if (!cl_is_leader(cl, pod)) {
		if (pod->async) {
			pfs_set_msg(cl->p, "pod %s is replicated async from %s: write it there",
			            pod->name, pod->leader);
			return -EROFS;
		}
		return forward(cl, pod, c);
	}
	rc = cl_leader_apply(cl, pod, c, &seq, &gen);
	if (rc || pod->async)
		return rc;
	if (!seq) {
		/* Applied alone. Degraded, the gate above passed it: nothing to wait for. Else the
		 * link went down before it was sent: answered once this box serves alone, as any
		 * write alone is (cl_failover_link_lost). */
		if (atomic_load(&pod->state) == CL_DEGRADED)
			return 0;
		if (cl_failover_gate(cl, pod)) {
			ack_failed_msg(cl, pod);
			return -EIO;
		}
		return 0;
	}
	/* A caller that takes the answer later gets it from the acknowledgement's thread: its
	 * own thread (a FUSE worker) goes on to the next request instead of sleeping here. */
	if (c->on_done && c->kind == PFS_CHANGE_WRITE)
		return ack_later(cl, pod, seq, gen, c);
	return cl_wait_ack_gen(cl, pod, seq, gen);
}

/* The wait for the answer to a request whose send returned SENT (WT registered before it, in
 * the link generation it records). A send that failed never reached the peer: -EIO at once. (It
 * waited for the generation after the caller's to end, which is the next link's loss when the
 * link went down before the send: an fsync then hung until the peer came back and went again.) */
static int send_then_wait(struct cluster *cl, struct cl_waiter *wt, int sent, void **data,
                          size_t *len)
{
	if (sent) {
		cl_waiter_cancel(cl, wt);
		return -EIO;
	}
	return cl_waiter_wait(cl, wt, wt->gen, NULL, data, len);
}

int cl_hook_sync(void *arg)
{
	struct cluster *cl = arg;
	struct cl_waiter *wt;
	struct cl_wbuf w = {0};
	bool any = false;
	int rc;

	bool follows = false;

	pthread_mutex_lock(&cl->lock);
	for (int i = 0; i < CL_PODS_MAX; i++) {
		struct cl_pod *pod = cl->pods[i];
		int st = pod ? atomic_load(&pod->state) : CL_LOCAL;
		if (pod && (st == CL_IN_SYNC || st == CL_SYNCING)) {
			any = true;
			follows |= !cl_is_leader(cl, pod);
		}
	}
	pthread_mutex_unlock(&cl->lock);
	if (!any)
		return 0;
	/* Async pods: what was acknowledged here must reach the peer first. Sync pods with
	 * writes answered later (pending): those before this sync are covered by it, so they
	 * are confirmed first, as their writers' own waits would have made them. */
	for (int i = 0; i < CL_PODS_MAX; i++) {
		struct cl_pod *pod = cl->pods[i];
		if (pod && cl_is_leader(cl, pod)) {
			pthread_mutex_lock(&pod->lock);
			uint64_t last = pod->next_seq - 1;
			bool wait = pod->async || pod->npending;
			pthread_mutex_unlock(&pod->lock);
			if (wait)
				cl_wait_ack(cl, pod, last);
		}
	}
	wt = cl_waiter_new(cl);
	if (!wt)
		return -ENOMEM;
	cl_put64(&w, wt->req);
	rc = cl_send(cl, CL_MSG_SYNC, &w);
	cl_wbuf_free(&w);
	/* A peer that goes away meanwhile leaves a leader serving alone: its own sync stands. A
	 * follower stops serving then, and its copy is not the pod's (the leader's resync will
	 * overwrite it), so what it was asked to make durable is not: EIO. */
	rc = send_then_wait(cl, wt, rc, NULL, NULL);
	if (rc == -EIO && !follows) {
		/* ... if it still leads after the race, if there was one. */
		rc = 0;
		for (int i = 0; i < CL_PODS_MAX && !rc; i++) {
			struct cl_pod *pod = cl->pods[i];
			if (!pod || !pod->peer[0] || !cl_is_leader(cl, pod))
				continue;
			rc = cl_failover_gate(cl, pod);
			if (!rc && atomic_load(&pod->state) == CL_OFFLINE)
				rc = -EIO;
		}
	}
	return rc;
}

/* ---- the peer's side: the applier (ordered) and the workers (requests) -------------------- */

/* Asks the sender for the chunks named in FPS (N of them) and decodes each into its block; with
 * BLOCK_FP, each block's fingerprint, checked by the decode, goes there too (the write then does
 * not hash it again). */
static int fetch_missing(struct cluster *cl, const char *pod, const uint8_t (*fps)[ENGINE_FP_LEN],
                         const uint32_t *slot, uint32_t n, uint8_t *blocks,
                         uint8_t (*block_fp)[ENGINE_FP_LEN])
{
	struct cl_waiter *wt = cl_waiter_new(cl);
	struct cl_wbuf w = {0};
	void *data = NULL;
	size_t len = 0;
	int rc;

	if (!wt)
		return -ENOMEM;
	cl_put64(&w, wt->req);
	cl_put_str(&w, pod);
	cl_put32(&w, n);
	for (uint32_t i = 0; i < n; i++)
		cl_put_bytes(&w, fps[i], ENGINE_FP_LEN);
	rc = cl_send(cl, CL_MSG_NEED, &w);
	cl_wbuf_free(&w);
	rc = send_then_wait(cl, wt, rc, &data, &len);
	if (rc)
		return rc;
	struct cl_rbuf r = {data, len, 0, false};
	cl_get64(&r);
	uint32_t got = cl_get32(&r);
	if (got != n)
		rc = -EPROTO;
	for (uint32_t i = 0; i < n && !rc; i++) {
		uint8_t codec = cl_get8(&r);
		uint32_t clen = cl_get32(&r);
		const uint8_t *src = cl_get_bytes(&r, clen);
		if (r.bad || codec == 0xff) {
			rc = r.bad ? -EPROTO : -ENOENT; /* the sender no longer holds it */
			break;
		}
		rc = engine_chunk_decode(cl->eng, (enum engine_codec)codec, src, clen, fps[i],
		                         blocks + (size_t)slot[i] * cl->bs);
		if (!rc && block_fp)
			memcpy(block_fp[slot[i]], fps[i], ENGINE_FP_LEN);
	}
	free(data);
	return rc;
}

/* Turns the descriptors of CC into whole blocks. With HELD and BLOCK_FP (one entry per block,
 * zeroed), a block this box holds is not read: its reference (taken here, the caller's to drop)
 * and its fingerprint go there, for the write to take by reference; a block fetched from the
 * sender leaves its checked fingerprint in BLOCK_FP. */
static int decode_blocks(struct cluster *cl, const char *pod, const struct cl_change *cc,
                         uint8_t *blocks, struct engine_ref *held,
                         uint8_t (*block_fp)[ENGINE_FP_LEN])
{
	struct cl_rbuf r = {cc->blocks, cc->blocks_len, 0, false};
	uint8_t(*need)[ENGINE_FP_LEN] = NULL;
	uint32_t *slot = NULL, nneed = 0;
	int rc = 0;

	need = malloc(sizeof(*need) * cc->nblk);
	slot = malloc(sizeof(*slot) * cc->nblk);
	if (!need || !slot) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint64_t i = 0; i < cc->nblk && !rc; i++) {
		uint8_t *blk = blocks + i * cl->bs;
		uint8_t tag = cl_get8(&r);
		const uint8_t *fp;
		struct engine_ref ref;
		switch (tag) {
		case CL_BLK_ZERO:
			memset(blk, 0, cl->bs);
			break;
		case CL_BLK_PATTERN: {
			uint8_t period = cl_get8(&r);
			const uint8_t *pat = cl_get_bytes(&r, 16);
			if (!pat || period == 0 || period > 16) {
				rc = -EPROTO;
				break;
			}
			for (uint32_t k = 0; k < cl->bs; k++)
				blk[k] = pat[k % period];
			break;
		}
		case CL_BLK_FP:
			fp = cl_get_bytes(&r, ENGINE_FP_LEN);
			if (!fp) {
				rc = -EPROTO;
				break;
			}
			/* Fingerprint first: a block this box holds is not sent; nor is it read
			 * back and reduced again where the write can take it by reference. */
			if (engine_find_fp(cl->eng, fp, &ref) == 0) {
				if (held) {
					held[i] = ref;
					memcpy(block_fp[i], fp, ENGINE_FP_LEN);
					break;
				}
				rc = engine_read(cl->eng, ref, blk);
				engine_ref_put(cl->eng, ref);
				if (rc == 0)
					break;
			}
			memcpy(need[nneed], fp, ENGINE_FP_LEN);
			slot[nneed++] = (uint32_t)i;
			rc = 0;
			break;
		case CL_BLK_DATA: {
			uint8_t codec = cl_get8(&r);
			uint32_t len = cl_get32(&r);
			const uint8_t *src = cl_get_bytes(&r, len);
			if (!src) {
				rc = -EPROTO;
				break;
			}
			rc = engine_chunk_decode(cl->eng, (enum engine_codec)codec, src, len, NULL,
			                         blk);
			break;
		}
		default:
			rc = -EPROTO;
		}
	}
	if (!rc && r.off != r.len)
		rc = -EPROTO;
	if (!rc && nneed)
		rc = fetch_missing(cl, pod, (const uint8_t(*)[ENGINE_FP_LEN])need, slot, nneed,
		                   blocks, block_fp);
out:
	free(need);
	free(slot);
	return rc;
}

/* Resolves CC's names to handles and applies it here. */
static int apply_change(struct cluster *cl, const char *pod, struct cl_change *cc)
{
	struct pfs_change *c = &cc->c;
	struct engine_ref *held = NULL;
	uint8_t(*block_fp)[ENGINE_FP_LEN] = NULL;
	uint8_t *blocks = NULL;
	struct pfs_vol *v;
	int rc;

	rc = resolve(cl, cc);
	if (rc)
		goto out;
	v = c->vol;
	if (c->kind == PFS_CHANGE_WRITE) {
		struct pfs_vol_info info;
		if (!cc->nblk) {
			rc = -EPROTO;
			goto out;
		}
		/* Whole blocks, so a block the two boxes disagreed on (a region a resync has not
		 * reached yet) comes out as the leader has it; but never past the leader's size. */
		pfs_vol_get_info(v, &info);
		uint64_t start = cc->first * cl->bs, end = start + cc->nblk * cl->bs;
		uint64_t lim = cc->size_after > info.size ? cc->size_after : info.size;
		if (end > lim)
			end = lim;
		if (end <= start)
			goto out;
		blocks = malloc(cc->nblk * cl->bs);
		/* Blocks this box holds go by reference when the write ends on a block boundary
		 * (a resync region is mostly blocks the peer kept: each was read back from the
		 * device, hashed and looked up again). */
		bool by_ref = end % cl->bs == 0;
		if (by_ref) {
			held = calloc(cc->nblk, sizeof(*held));
			block_fp = calloc(cc->nblk, sizeof(*block_fp));
		}
		if (!blocks || (by_ref && (!held || !block_fp))) {
			rc = -ENOMEM;
			goto out;
		}
		rc = decode_blocks(cl, pod, cc, blocks, held, block_fp);
		if (rc)
			goto out;
		c->buf = blocks;
		c->held = held;
		c->block_fp = (const uint8_t(*)[ENGINE_FP_LEN])block_fp;
		c->off = start;
		c->len = end - start;
	}
	rc = pfs_change_apply_local(cl->p, c, NULL, NULL);
	if (rc == -ENOENT && c->kind == PFS_CHANGE_SNAP_DELETE)
		rc = 0; /* a resync replays deletes of snapshots this box may never have had */
	if (!rc && c->kind == PFS_CHANGE_WRITE && cc->size_after) {
		struct pfs_vol_info info;
		pfs_vol_get_info(v, &info);
		if (info.size != cc->size_after)
			rc = pfs_change_apply_local(cl->p,
			                            &(struct pfs_change){.kind = PFS_CHANGE_RESIZE,
			                                                 .vol = v,
			                                                 .size = cc->size_after},
			                            NULL, NULL);
	}
out:
	for (uint64_t i = 0; held && i < cc->nblk; i++)
		if (held[i].v)
			engine_ref_put(cl->eng, held[i]);
	free(held);
	free(block_fp);
	free(blocks);
	unresolve(cc);
	return rc;
}

/* Reads the ordered header; refuses a stale epoch (invariant 4). Returns the pod or NULL. */
static struct cl_pod *ordered_header(struct cluster *cl, struct cl_rbuf *r, uint64_t *epoch,
                                     uint64_t *seq, char *pname)
{
	struct cl_pod *pod;
	struct cl_wbuf w = {0};

	cl_get_str(r, pname, CL_NAME_MAX + 1);
	*epoch = cl_get64(r);
	*seq = cl_get64(r);
	if (r->bad)
		return NULL;
	pthread_mutex_lock(&cl->lock);
	pod = cl_pod_find(cl, pname);
	pthread_mutex_unlock(&cl->lock);
	if (pod && *epoch < pod->epoch) {
		pthread_mutex_lock(&cl->lock);
		cl->refused_epochs++;
		pthread_mutex_unlock(&cl->lock);
		pfs_logl(LOG_WARNING,
		         "pstorfs: cluster: pod %s: refused a change of epoch %llu from %s (this "
		         "box has seen epoch %llu)",
		         pname, (unsigned long long)*epoch, cl->peer_name,
		         (unsigned long long)pod->epoch);
		cl_put_str(&w, pname);
		cl_put64(&w, pod->epoch);
		cl_put_str(&w, "stale epoch");
		cl_send(cl, CL_MSG_REFUSED, &w);
		cl_wbuf_free(&w);
		return NULL;
	}
	return pod;
}

void cl_apply_pod_def(struct cluster *cl, struct cl_rbuf *r, uint64_t epoch, uint64_t seq,
                      const char *pname);                                      /* cluster_ctl.c */
void cl_apply_in_sync(struct cluster *cl, struct cl_pod *pod, uint64_t epoch); /* copy.c */
void cl_apply_pod_drop(struct cluster *cl, struct cl_pod *pod);                /* cluster_ctl.c */
void cl_apply_hello(struct cluster *cl, struct cl_rbuf *r);                    /* copy.c */
int cl_verify_region(struct cluster *cl, struct cl_rbuf *r);                   /* copy.c */

void cl_apply_msg(struct cluster *cl, struct cl_work *wk)
{
	struct cl_rbuf r = {wk->buf, wk->len, 0, false};
	char pname[CL_NAME_MAX + 1];
	struct cl_change cc;
	struct cl_pod *pod;
	uint64_t epoch, seq;
	int rc;

	if (wk->type == CL_MSG_HELLO) {
		cl_apply_hello(cl, &r);
		return;
	}
	pod = ordered_header(cl, &r, &epoch, &seq, pname);
	if (wk->type == CL_MSG_POD_DEF) {
		if (!r.bad && (pod || epoch >= 1))
			cl_apply_pod_def(cl, &r, epoch, seq, pname);
		return;
	}
	if (!pod)
		return;
	pthread_mutex_lock(&pod->lock);
	bool newer = epoch > pod->epoch;
	if (newer)
		pod->epoch = epoch; /* the leader's newer epoch (after it served alone) */
	pthread_mutex_unlock(&pod->lock);
	if (newer)
		cl_pod_save(cl, pod);
	switch (wk->type) {
	case CL_MSG_CHANGE:
		rc = cl_change_get(&r, &cc);
		if (!rc)
			rc = apply_change(cl, pod->name, &cc);
		if (rc)
			pfs_logl(LOG_ERR,
			         "pstorfs: cluster: pod %s: change %llu (%s) failed here: %s",
			         pod->name, (unsigned long long)seq,
			         pfs_change_kind_name(cc.c.kind), strerror(-rc));
		cl_send_ack(cl, pod->name, seq, rc);
		break;
	case CL_MSG_IN_SYNC:
		cl_apply_in_sync(cl, pod, epoch);
		cl_send_ack(cl, pod->name, seq, 0);
		break;
	case CL_MSG_POD_DROP:
		cl_send_ack(cl, pod->name, seq, 0);
		cl_apply_pod_drop(cl, pod);
		break;
	case CL_MSG_VERIFY:
		cl_send_ack(cl, pod->name, seq, cl_verify_region(cl, &r));
		break;
	case CL_MSG_AGREE:
		cl_apply_agree(cl, pod, &r);
		cl_send_ack(cl, pod->name, seq, 0);
		break;
	default:
		break;
	}
}

/* The answer to a FWD, once the peer confirmed the change (or it failed). */
struct fwd_answer {
	struct cluster *cl;
	uint64_t req;
};

static void fwd_answer_put(struct cl_wbuf *w, uint64_t req, int rc, uint64_t done)
{
	cl_put64(w, req);
	cl_put32(w, (uint32_t)rc);
	cl_put64(w, rc ? 0 : done);
}

/* The pending change's answer (cl_pending_settle), on the thread that decided it: often the
 * link's receive hook, which must not wait for room on the link; a full link leaves the send
 * to a worker (cl_work_msg). */
static void fwd_answered(void *arg, int rc, uint64_t done)
{
	struct fwd_answer *fa = arg;
	struct cluster *cl = fa->cl;
	struct cl_wbuf w = {0};

	fwd_answer_put(&w, fa->req, rc, done);
	free(fa);
	rc = w.err ? -ENOMEM : cl_send_nowait(cl, CL_MSG_FWD_DONE, &w);
	if (rc == -EAGAIN) {
		rc = cl_queue_push(&cl->workq, CL_MSG_FWD_DONE, w.b, w.len); /* takes w.b */
		w = (struct cl_wbuf){0};
	}
	/* Not cl_link_down: this may run under cl->lock (a settle from a state change). The
	 * peer's write waits until the link next goes down, and fails then. */
	if (rc == -ENOMEM)
		pfs_logl(LOG_ERR,
		         "pstorfs: cluster: out of memory: the answer to a write %s forwarded was "
		         "lost; it fails there when the link next goes down",
		         cl->peer_name);
	cl_wbuf_free(&w);
}

/* FWD on the leader: the other box's change, applied in the leader's order, answered once the
 * other box confirms it without holding this worker meanwhile (four workers serve every
 * FWD, NEED and SYNC: a wait here capped the other box at four writes in flight). */
static void work_fwd(struct cluster *cl, struct cl_rbuf *r)
{
	char pname[CL_NAME_MAX + 1];
	struct cl_change cc;
	struct cl_wbuf w = {0};
	struct cl_pod *pod;
	uint64_t req, seq = 0, gen = 0;
	void *data = NULL;
	int rc;

	req = cl_get64(r);
	cl_get_str(r, pname, sizeof(pname));
	rc = cl_change_get(r, &cc);
	pthread_mutex_lock(&cl->lock);
	pod = cl_pod_find(cl, pname);
	pthread_mutex_unlock(&cl->lock);
	if (!rc && (!pod || !cl_is_leader(cl, pod)))
		rc = -EIO;
	if (!rc && cc.c.kind == PFS_CHANGE_WRITE) {
		uint8_t lz4 = cl_get8(r);
		uint32_t zn = cl_get32(r);
		const uint8_t *z = cl_get_bytes(r, zn);
		data = cc.c.len <= CLINK_MSG_MAX ? malloc(cc.c.len ? cc.c.len : 1) : NULL;
		if (!data)
			rc = cc.c.len > CLINK_MSG_MAX ? -EPROTO : -ENOMEM;
		else if (!z || lz4 > 1 || (!lz4 && zn != cc.c.len))
			rc = -EPROTO;
		else if (!lz4)
			memcpy(data, z, zn);
		else if (LZ4_decompress_safe((const char *)z, data, (int)zn, (int)cc.c.len) !=
		         (int)cc.c.len)
			rc = -EPROTO;
		cc.c.buf = data;
	}
	if (!rc)
		rc = resolve(cl, &cc);
	if (!rc && cc.c.vol && cl_pod_of_vol(cl, cc.c.vol) != pod)
		rc = -EIO;
	if (!rc)
		rc = cl_leader_apply(cl, pod, &cc.c, &seq, &gen);
	if (!rc && seq && !pod->async) {
		struct fwd_answer *fa = malloc(sizeof(*fa));
		if (fa) {
			*fa = (struct fwd_answer){cl, req};
			cc.c.on_done = fwd_answered;
			cc.c.on_done_arg = fa;
			rc = ack_later(cl, pod, seq, gen, &cc.c);
			if (rc == PFS_CHANGE_PENDING) {
				unresolve(&cc);
				free(data);
				return;
			}
			free(fa);
		} else {
			rc = cl_wait_ack_gen(cl, pod, seq, gen);
		}
	}
	unresolve(&cc);
	fwd_answer_put(&w, req, rc, cc.c.done);
	cl_send(cl, CL_MSG_FWD_DONE, &w);
	cl_wbuf_free(&w);
	free(data);
}

/* NEED: the peer lacks these chunks of a change this box sent: send them as stored. */
static void work_need(struct cluster *cl, struct cl_rbuf *r)
{
	struct cl_wbuf w = {0};
	char pname[CL_NAME_MAX + 1];
	uint64_t req = cl_get64(r);
	cl_get_str(r, pname, sizeof(pname));
	uint32_t n = cl_get32(r);

	if (r->bad || n > (r->len - r->off) / ENGINE_FP_LEN)
		return; /* malformed: the asker's wait ends with the link */
	/* Sized once, each chunk exported in place: a resync's answers are megabytes, and the
	 * copies of a growing buffer were the largest cost of the box that sends them. */
	cl_wbuf_reserve(&w, 12 + (size_t)n * (5 + cl->bs));
	cl_put64(&w, req);
	cl_put32(&w, n);
	bool ahead = blocks_ahead(cl, n); /* asked in block order */
	for (uint32_t i = 0; i < n && !r->bad && !w.err; i++) {
		const uint8_t *fp = cl_get_bytes(r, ENGINE_FP_LEN);
		uint8_t *slot = cl_put_room(&w, 5 + cl->bs);
		struct engine_ref ref;
		enum engine_codec codec = ENGINE_CODEC_NONE;
		int len = -ENOENT;
		if (fp && slot && engine_find_fp(cl->eng, fp, &ref) == 0) {
			len = engine_chunk_export(cl->eng, ref, slot + 5, cl->bs, &codec);
			engine_ref_put(cl->eng, ref);
		}
		if (!slot)
			break;
		/* 0xff: gone; the applier fails the change and a resync follows. */
		slot[0] = len < 0 ? 0xff : (uint8_t)codec;
		pfs_put32(slot + 1, len < 0 ? 0 : (uint32_t)len);
		w.len -= cl->bs - (len < 0 ? 0 : (size_t)len);
	}
	if (ahead)
		engine_read_ahead(cl->eng, 0);
	if (!r->bad && cl_send(cl, CL_MSG_CHUNKS, &w) == 0) {
		pthread_mutex_lock(&cl->lock);
		struct cl_pod *pod = cl_pod_find(cl, pname);
		pthread_mutex_unlock(&cl->lock);
		if (pod) {
			pthread_mutex_lock(&pod->lock);
			pod->wire_bytes += w.len;
			pthread_mutex_unlock(&pod->lock);
		}
	}
	cl_wbuf_free(&w);
}

void cl_work_msg(struct cluster *cl, struct cl_work *wk)
{
	struct cl_rbuf r = {wk->buf, wk->len, 0, false};
	struct cl_wbuf w = {0};

	switch (wk->type) {
	case CL_MSG_FWD:
		work_fwd(cl, &r);
		break;
	case CL_MSG_NEED:
		work_need(cl, &r);
		break;
	case CL_MSG_FWD_DONE: /* an answer fwd_answered could not send without waiting */
		w = (struct cl_wbuf){wk->buf, wk->len, wk->len, 0};
		cl_send(cl, CL_MSG_FWD_DONE, &w);
		break;
	case CL_MSG_SYNC: {
		uint64_t req = cl_get64(&r);
		int rc = pfs_sync_local(cl->p);
		cl_put64(&w, req);
		cl_put32(&w, (uint32_t)rc);
		cl_put64(&w, 0);
		cl_send(cl, CL_MSG_SYNC_DONE, &w);
		cl_wbuf_free(&w);
		break;
	}
	default:
		break;
	}
}
