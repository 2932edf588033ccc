/* fs/pfs_io.c - volume I/O: byte ranges of any size and alignment onto block references.
 * Whole blocks are reduced by the engine outside every lock and swapped in under the page's
 * stripe lock; partial blocks are read-modify-written under it. Reads take counted references
 * under the stripe lock and read the chunks after dropping it. Also punch, clone of ranges
 * (copy_file_range), SEEK_DATA/SEEK_HOLE and per-volume usage.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pfs_vol_int.h"

/* One block-sized scratch buffer per thread (FUSE worker threads come and go: the key's
 * destructor frees it when a thread exits). */
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_key_make(void)
{
	pthread_key_create(&scratch_key, free);
}

static uint8_t *scratch(void)
{
	uint8_t *b;

	pthread_once(&scratch_once, scratch_key_make);
	b = pthread_getspecific(scratch_key);
	if (b)
		return b;
	/* Sized for the largest block any namespace may use, so one buffer serves all. */
	if (posix_memalign((void **)&b, 4096, 65536))
		return NULL;
	pthread_setspecific(scratch_key, b);
	return b;
}

/* Latency clock: monotonic, the wall clock (pfs_now_ns) may jump. */
static int64_t io_clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Counts one operation of BYTES that started at T0 (io_clock_ns): relaxed atomic adds only, so
 * the I/O path pays a few uncontended adds and a vDSO clock read; a stats snapshot may see an
 * operation in one field and not yet in another. */
static void io_count(struct pfs_io_counters *c, uint64_t bytes, int64_t t0)
{
	int64_t dt = io_clock_ns() - t0;
	uint64_t ns = dt > 0 ? (uint64_t)dt : 0;

	atomic_fetch_add_explicit(&c->ops, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->bytes, bytes, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->lat_sum_ns, ns, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->lat_buckets[pfs_lat_bucket(ns)], 1, memory_order_relaxed);
}

static int read_ref(struct pfs *p, struct engine_ref ref, void *block)
{
	int rc;

	if (ref.v == 0) {
		memset(block, 0, p->bs);
		return 0;
	}
	rc = engine_read(p->eng, ref, block);
	if (rc) {
		atomic_fetch_add(&p->io_errors, 1);
		pfs_logl(LOG_ERR, "pstorfs: read of reference %#llx failed: %d",
		         (unsigned long long)ref.v, rc);
		return rc == -ENOENT ? -EIO : rc;
	}
	return 0;
}

/* One block of a read: its reference, held (engine_ref_get) so that no release can free the
 * chunk while it is read without locks, or read already (under the lock) when it could not be. */
struct read_blk {
	struct engine_ref ref;
	bool held; /* a count taken: read it, then put it */
	int rc;    /* read under the lock: its result */
};

/* Takes the references of blocks [pos, pos + n) of page PIDX under the volume and stripe read
 * locks (a writer changes a reference under the stripe's write lock, and its release waits for
 * a commit, so a reference seen here is live and the count taken on it keeps it so). Blocks
 * that need no device read (holes, zeros, patterns) and the rare one whose count cannot be taken
 * are read here, under the lock, as before. Fills B[0..]: returns the number of blocks or -errno.
 */
static int read_take_refs(struct pfs *p, struct pfs_vol *v, uint64_t pidx, uint64_t pos, size_t *np,
                          uint8_t *out, uint8_t *tmp, struct read_blk *b)
{
	const uint32_t bs = p->bs;
	pthread_rwlock_t *l = pfs_stripe(v, pidx);
	struct pfs_mpage *pg = NULL;
	size_t done = 0, n = *np;
	int k = 0, rc;

	pthread_rwlock_rdlock(&v->rw);
	/* The size again, under the lock a truncate takes: never a block past the end. */
	uint64_t size = atomic_load(&v->size);
	if (pos >= size)
		n = 0;
	else if (n > size - pos)
		n = (size_t)(size - pos);
	*np = n;
	pthread_rwlock_rdlock(l);
	rc = pfs_map_page(p, v, pidx, false, &pg);
	while (!rc && done < n) {
		uint64_t blk = (pos + done) / bs;
		uint32_t in = (uint32_t)((pos + done) % bs);
		size_t m = bs - in < n - done ? bs - in : n - done;
		struct read_blk *r = &b[k++];

		r->ref = pg ? pg->ref[blk % PFS_PAGE_REFS] : ENGINE_REF_ZERO_VALUE;
		r->held = false;
		r->rc = 0;
		if (engine_ref_kind(r->ref) == ENGINE_REF_CHUNK)
			r->held = engine_ref_get(p->eng, r->ref) == 0;
		if (!r->held) {
			/* Memory only, or a chunk whose count is at its limit or gone (read_ref
			 * reports the error): no device read outside the lock for these. */
			if (r->ref.v == 0) {
				memset(out + done, 0, m);
			} else if (in == 0 && m == bs) {
				r->rc = read_ref(p, r->ref, out + done);
			} else {
				r->rc = read_ref(p, r->ref, tmp);
				if (!r->rc)
					memcpy(out + done, tmp + in, m);
			}
		}
		done += m;
	}
	pthread_rwlock_unlock(l);
	pthread_rwlock_unlock(&v->rw);
	if (rc) {
		while (k > 0)
			if (b[--k].held)
				engine_ref_put(p->eng, b[k].ref);
		return rc;
	}
	return k;
}

/* COUNT: a user's read, which the I/O counters and the data temperature see. */
static ssize_t vol_read(struct pfs *p, struct pfs_vol *v, void *buf, size_t len, uint64_t off,
                        bool count)
{
	const uint32_t bs = p->bs;
	uint8_t *out = buf, *tmp = scratch();
	const int64_t t0 = io_clock_ns();
	struct read_blk blks[PFS_PAGE_REFS];
	size_t done = 0;
	int rc = 0;

	if (!tmp)
		return -ENOMEM;
	if (p->hooks.read_gate) {
		rc = p->hooks.read_gate(p->hooks.arg, v); /* a pod this box does not serve now */
		if (rc)
			return rc;
	}
	uint64_t size = atomic_load(&v->size);
	/* Not counted: reads at or past the end (FUSE's read probes there after a short read). */
	if (off >= size || len == 0)
		return 0;
	if (len > size - off)
		len = (size_t)(size - off);
	/* A run of blocks written together is read in one device read, not one per block. */
	if (len > bs)
		engine_read_ahead(p->eng, len > UINT32_MAX ? UINT32_MAX : (uint32_t)len);
	/* Page by page: references taken under the page's locks, the chunks read, checked and
	 * decompressed after they are dropped, so writers of the page and volume changes never
	 * wait for the device. */
	while (done < len && !rc) {
		uint64_t pos = off + done, pidx = pos / bs / PFS_PAGE_REFS;
		uint64_t page_end = (pidx + 1) * PFS_PAGE_REFS * (uint64_t)bs;
		size_t n = page_end - pos < len - done ? (size_t)(page_end - pos) : len - done;
		int k = read_take_refs(p, v, pidx, pos, &n, out + done, tmp, blks);

		if (k <= 0) {
			rc = k; /* 0: the volume shrank under the read */
			break;
		}
		for (int i = 0; i < k; i++) {
			struct read_blk *r = &blks[i];
			uint32_t in = (uint32_t)((off + done) % bs);
			size_t m = bs - in < n ? bs - in : n;

			if (r->held && !rc) {
				if (in == 0 && m == bs) {
					r->rc = read_ref(p, r->ref, out + done);
				} else {
					r->rc = read_ref(p, r->ref, tmp);
					if (!r->rc)
						memcpy(out + done, tmp + in, m);
				}
			}
			if (r->held)
				engine_ref_put(p->eng, r->ref);
			if (!rc && r->rc)
				rc = r->rc;
			if (!rc) {
				done += m;
				n -= m;
			}
		}
	}
	if (len > bs)
		engine_read_ahead(p->eng, 0);
	if (count) {
		io_count(&p->io_read, done, t0);
		pfs_temp_touch(p, v, off, done);
	}
	return done ? (ssize_t)done : rc;
}

ssize_t pfs_vol_read(struct pfs *p, struct pfs_vol *v, void *buf, size_t len, uint64_t off)
{
	return vol_read(p, v, buf, len, off, true);
}

ssize_t pfs_vol_read_quiet(struct pfs *p, struct pfs_vol *v, void *buf, size_t len, uint64_t off)
{
	return vol_read(p, v, buf, len, off, false);
}

/* Grows the size to END if needed. Caller holds v->rw (read). */
static int extend_to(struct pfs *p, struct pfs_vol *v, uint64_t end)
{
	uint64_t cur = atomic_load(&v->size);

	if (end <= cur)
		return 0;
	if (end > p->max_volume_bytes)
		return -EFBIG;
	while (cur < end && !atomic_compare_exchange_weak(&v->size, &cur, end))
		;
	/* Dirty before the record takes its lsn: a checkpoint whose cut is above that lsn then
	 * sees the volume dirty and stores the size (see pfs_map_set). */
	pthread_mutex_lock(&v->lock);
	v->size_dirty = true;
	pthread_mutex_unlock(&v->lock);
	pfs_log_size(p, v->id, end);
	return 0;
}

/* The blocks a write takes by reference (pfs_change.held), advanced with the write. */
struct held_blocks {
	const struct engine_ref *ref;
	const uint8_t (*fp)[ENGINE_FP_LEN];
};

static bool fp_unknown(const uint8_t fp[ENGINE_FP_LEN])
{
	static const uint8_t zero[ENGINE_FP_LEN];

	return !memcmp(fp, zero, ENGINE_FP_LEN);
}

static struct held_blocks held_skip(struct held_blocks h, uint64_t blocks)
{
	if (h.ref) {
		h.ref += blocks;
		h.fp += blocks;
	}
	return h;
}

/* Writes the blocks [first, first+n) of page PIDX: whole blocks from SRC (block aligned, n
 * blocks), or by reference where HELD has one. Engine work happens before the page lock. */
static int write_whole_blocks(struct pfs *p, struct pfs_vol *v, uint64_t first, uint32_t n,
                              const uint8_t *src, struct held_blocks held)
{
	const uint32_t bs = p->bs;
	uint64_t pidx = first / PFS_PAGE_REFS;
	uint32_t slot0 = (uint32_t)(first % PFS_PAGE_REFS);
	struct engine_ref prev[PFS_PAGE_REFS], neu[PFS_PAGE_REFS];
	uint8_t fp[PFS_PAGE_REFS][ENGINE_FP_LEN];
	pthread_rwlock_t *l = pfs_stripe(v, pidx);
	struct pfs_mpage *pg = NULL;
	uint32_t made = 0;
	int rc;

	/* The current references are hints for the FTL's hot/cold placement. */
	pthread_rwlock_rdlock(l);
	rc = pfs_map_page(p, v, pidx, false, &pg);
	for (uint32_t i = 0; i < n; i++)
		prev[i] = pg ? pg->ref[slot0 + i] : ENGINE_REF_ZERO_VALUE;
	pthread_rwlock_unlock(l);
	if (rc)
		return rc;
	if (!held.ref) {
		/* Plain data: reduced a batch at a time, which the engine undoes whole on error. */
		rc = engine_write_run(p->eng, src, n, prev, neu, fp);
		if (rc)
			return rc;
		made = n;
	}
	/* A replica's blocks: by reference where this box holds them, else by content. */
	for (; made < n; made++) {
		if (held.ref[made].v) {
			rc = engine_write_held(p->eng, held.ref[made], &neu[made]);
			memcpy(fp[made], held.fp[made], ENGINE_FP_LEN);
		} else if (!fp_unknown(held.fp[made])) {
			rc = engine_write_hashed(p->eng, src + (size_t)made * bs, held.fp[made],
			                         prev[made], &neu[made]);
			memcpy(fp[made], held.fp[made], ENGINE_FP_LEN);
		} else {
			rc = engine_write_fp(p->eng, src + (size_t)made * bs, prev[made],
			                     &neu[made], fp[made]);
		}
		if (rc)
			goto err_put;
	}
	pthread_rwlock_wrlock(l);
	rc = pfs_map_page(p, v, pidx, true, &pg);
	if (rc) {
		pthread_rwlock_unlock(l);
		goto err_put;
	}
	pfs_map_set_run(p, v, pg, slot0, n, neu, prev, fp, 0);
	pthread_rwlock_unlock(l);
	for (uint32_t i = 0; i < n; i++)
		pfs_defer_put(p, prev[i]);
	return 0;
err_put:
	/* Never reached a map: release at once. */
	for (uint32_t i = 0; i < made; i++)
		engine_ref_put(p->eng, neu[i]);
	return rc;
}

/* Read-modify-write of part of one block: bytes [in, in+n) of block BLK from SRC, or zeros
 * when SRC is NULL. */
static int write_partial_block(struct pfs *p, struct pfs_vol *v, uint64_t blk, uint32_t in,
                               uint32_t n, const uint8_t *src)
{
	uint64_t pidx = blk / PFS_PAGE_REFS;
	uint32_t slot = (uint32_t)(blk % PFS_PAGE_REFS);
	pthread_rwlock_t *l = pfs_stripe(v, pidx);
	uint8_t *tmp = scratch();
	struct pfs_mpage *pg = NULL;
	struct engine_ref old = ENGINE_REF_ZERO_VALUE, neu;
	uint8_t fp[1][ENGINE_FP_LEN];
	int rc;

	if (!tmp)
		return -ENOMEM;
	pthread_rwlock_wrlock(l);
	rc = pfs_map_page(p, v, pidx, src != NULL, &pg);
	if (rc || (!pg && !src))
		goto out_unlock; /* zeroing a hole: nothing to do */
	old = pg->ref[slot];
	if (!src && old.v == 0)
		goto out_unlock;
	rc = read_ref(p, old, tmp);
	if (rc)
		goto out_unlock;
	if (src)
		memcpy(tmp + in, src, n);
	else
		memset(tmp + in, 0, n);
	rc = engine_write_fp(p->eng, tmp, old, &neu, fp[0]);
	if (rc)
		goto out_unlock;
	pfs_map_set_run(p, v, pg, slot, 1, &neu, &old, fp, 0);
	pthread_rwlock_unlock(l);
	pfs_defer_put(p, old);
	return 0;
out_unlock:
	pthread_rwlock_unlock(l);
	return rc;
}

static ssize_t vol_write_once(struct pfs *p, struct pfs_vol *v, const void *buf,
                              struct held_blocks held, size_t len, uint64_t off)
{
	const uint32_t bs = p->bs;
	const uint8_t *src = buf;
	size_t done = 0;
	int rc;

	if (v->kind != PFS_MAP_VOLUME)
		return -EROFS;
	if (len == 0)
		return 0;
	if (off + len < off)
		return -EFBIG;
	pthread_rwlock_rdlock(&v->rw);
	rc = extend_to(p, v, off + len);
	while (!rc && done < len) {
		uint64_t pos = off + done, blk = pos / bs;
		uint32_t in = (uint32_t)(pos % bs);
		if (in || len - done < bs) {
			uint32_t n = bs - in;
			if (n > len - done)
				n = (uint32_t)(len - done);
			rc = write_partial_block(p, v, blk, in, n, src + done);
			if (!rc)
				done += n;
			continue;
		}
		/* A run of whole blocks within one page. */
		uint64_t nblk = (len - done) / bs;
		uint64_t room = PFS_PAGE_REFS - blk % PFS_PAGE_REFS;
		uint32_t k = (uint32_t)(nblk < room ? nblk : room);
		rc = write_whole_blocks(p, v, blk, k, src + done, held_skip(held, done / bs));
		if (!rc)
			done += (size_t)k * bs;
	}
	if (done)
		atomic_store(&v->mtime_ns, pfs_now_ns());
	pthread_rwlock_unlock(&v->rw);
	return done ? (ssize_t)done : rc;
}

/* Space released by overwrites and punches comes back when the checkpoint that stops the maps
 * pointing at it is committed. A write that finds the device full while releases wait gets
 * that checkpoint now, and one more try, instead of ENOSPC for space that is free. */
static ssize_t vol_write(struct pfs *p, struct pfs_vol *v, const void *buf, struct held_blocks held,
                         size_t len, uint64_t off)
{
	ssize_t n = vol_write_once(p, v, buf, held, len, off);
	size_t done = n > 0 ? (size_t)n : 0;

	if ((n == -ENOSPC || (n >= 0 && done < len)) && pfs_releases_pending(p) &&
	    pfs_commit(p) == 0) {
		atomic_fetch_add(&p->enospc_retries, 1);
		ssize_t m = vol_write_once(p, v, (const uint8_t *)buf + done,
		                           held_skip(held, done / p->bs), len - done, off + done);
		if (m > 0)
			done += (size_t)m;
		else if (!done)
			return m;
	}
	return done ? (ssize_t)done : n;
}

/* Overwritten and punched data is released by the next commit, so until then it holds flash
 * room. At 0.95 GB/s of unique data the 5 s interval and the commit's own 1.5-2.3 s kept 6-7
 * GB waiting, and an 8 GiB volume being rewritten on a 16 GiB pool met ENOSPC (issue 13). So
 * the background commit is asked for early when what waits for release is half the room
 * left or more: looked at every 50 ms at most (a lock), asked at most that often. */
static void commit_if_short_of_room(struct pfs *p)
{
	int64_t now = io_clock_ns(),
	        last = atomic_load_explicit(&p->room_check_ns, memory_order_relaxed);
	if (now - last < 50 * 1000 * 1000 ||
	    !atomic_compare_exchange_strong(&p->room_check_ns, &last, now))
		return;
	/* Nothing waiting: a commit would give nothing back (a pool full of live data must not
	 * get a commit, and its flush, every 50 ms). */
	uint64_t room = ftl_room_bytes(p->ftl), waiting = pfs_releases_bytes(p);
	if (!waiting || waiting * 2 < room)
		return;
	atomic_fetch_add(&p->room_commits, 1);
	pfs_commit_kick(p);
}

/* Counted once, retry included: the caller sees one write. */
ssize_t pfs_vol_write_held(struct pfs *p, struct pfs_vol *v, const void *buf,
                           const struct engine_ref *held, const uint8_t (*block_fp)[ENGINE_FP_LEN],
                           size_t len, uint64_t off)
{
	const int64_t t0 = io_clock_ns();
	ssize_t n = vol_write(p, v, buf, (struct held_blocks){held, block_fp}, len, off);

	if (len && n != -EROFS)
		io_count(&p->io_write, n > 0 ? (uint64_t)n : 0, t0);
	if (n > 0 && !p->opts.readonly)
		commit_if_short_of_room(p);
	return n;
}

ssize_t pfs_vol_write(struct pfs *p, struct pfs_vol *v, const void *buf, size_t len, uint64_t off)
{
	return pfs_vol_write_held(p, v, buf, NULL, NULL, len, off);
}

int pfs_vol_punch(struct pfs *p, struct pfs_vol *v, uint64_t off, uint64_t len)
{
	const uint32_t bs = p->bs;
	uint64_t end;
	int rc = 0;

	if (v->kind != PFS_MAP_VOLUME)
		return -EROFS;
	pthread_rwlock_rdlock(&v->rw);
	end = atomic_load(&v->size);
	if (off >= end || len == 0)
		goto out_unlock;
	if (len > end - off)
		len = end - off;
	end = off + len;
	while (off < end && !rc) {
		uint64_t blk = off / bs;
		uint32_t in = (uint32_t)(off % bs);
		if (in || end - off < bs) {
			uint32_t n = bs - in;
			if (n > end - off)
				n = (uint32_t)(end - off);
			rc = write_partial_block(p, v, blk, in, n, NULL);
			off += n;
			continue;
		}
		uint64_t pidx = blk / PFS_PAGE_REFS;
		uint32_t slot = (uint32_t)(blk % PFS_PAGE_REFS);
		uint64_t nblk = (end - off) / bs;
		uint32_t k = (uint32_t)(nblk < PFS_PAGE_REFS - slot ? nblk : PFS_PAGE_REFS - slot);
		pthread_rwlock_t *l = pfs_stripe(v, pidx);
		struct pfs_mpage *pg = NULL;
		struct engine_ref old[PFS_PAGE_REFS];
		uint32_t nold = 0;

		pthread_rwlock_wrlock(l);
		rc = pfs_map_page(p, v, pidx, false, &pg);
		for (uint32_t i = 0; !rc && pg && i < k; i++)
			if (pg->ref[slot + i].v)
				old[nold++] =
				    pfs_map_set(p, v, pg, slot + i, ENGINE_REF_ZERO_VALUE);
		pthread_rwlock_unlock(l);
		for (uint32_t i = 0; i < nold; i++)
			pfs_defer_put(p, old[i]);
		off += (uint64_t)k * bs;
	}
	atomic_store(&v->mtime_ns, pfs_now_ns());
out_unlock:
	pthread_rwlock_unlock(&v->rw);
	return rc;
}

ssize_t pfs_vol_clone_range(struct pfs *p, struct pfs_vol *src, uint64_t soff, struct pfs_vol *dst,
                            uint64_t doff, uint64_t len)
{
	const uint32_t bs = p->bs;
	uint64_t done = 0, ssize;
	int rc = 0;

	if (dst->kind != PFS_MAP_VOLUME)
		return -EROFS;
	if (soff % bs || doff % bs)
		return -EINVAL;
	ssize = atomic_load(&src->size);
	if (soff >= ssize)
		return 0;
	if (len > ssize - soff)
		len = ssize - soff;
	/* Whole blocks only, except a source tail that ends at the source's size (the rest of
	 * that block reads as zeros in both). */
	if (len % bs && soff + len != ssize)
		len -= len % bs;
	if (len == 0)
		return 0;
	pthread_rwlock_rdlock(&dst->rw);
	rc = extend_to(p, dst, doff + len);
	while (!rc && done < len) {
		uint64_t sblk = (soff + done) / bs, dblk = (doff + done) / bs;
		uint64_t left = (len - done + bs - 1) / bs;
		uint32_t sroom = PFS_PAGE_REFS - (uint32_t)(sblk % PFS_PAGE_REFS);
		uint32_t droom = PFS_PAGE_REFS - (uint32_t)(dblk % PFS_PAGE_REFS);
		uint32_t k = sroom < droom ? sroom : droom;
		struct engine_ref refs[PFS_PAGE_REFS];
		struct pfs_mpage *pg = NULL;

		if (k > left)
			k = (uint32_t)left;
		/* Take references on the source blocks (never two stripe locks at once). */
		pthread_rwlock_t *l = pfs_stripe(src, sblk / PFS_PAGE_REFS);
		if (src != dst)
			pthread_rwlock_rdlock(&src->rw);
		pthread_rwlock_rdlock(l);
		rc = pfs_map_page(p, src, sblk / PFS_PAGE_REFS, false, &pg);
		for (uint32_t i = 0; i < k; i++) {
			refs[i] = pg ? pg->ref[sblk % PFS_PAGE_REFS + i] : ENGINE_REF_ZERO_VALUE;
			if (!rc)
				engine_ref_get(p->eng, refs[i]);
		}
		/* The stream says "clone these blocks" while the source blocks cannot change, so
		 * a box applying it in order copies what was copied here; the map changes that
		 * follow are marked derived from it. */
		if (!rc) {
			uint64_t n = (uint64_t)k * bs;
			struct pfs_change c = {.kind = PFS_CHANGE_CLONE_RANGE,
			                       .src_off = soff + done,
			                       .off = doff + done,
			                       .len = n < len - done ? n : len - done};
			pfs_log_change(p, &c, dst->id, src->id);
		}
		pthread_rwlock_unlock(l);
		if (src != dst)
			pthread_rwlock_unlock(&src->rw);
		if (rc)
			break;
		l = pfs_stripe(dst, dblk / PFS_PAGE_REFS);
		pthread_rwlock_wrlock(l);
		rc = pfs_map_page(p, dst, dblk / PFS_PAGE_REFS, true, &pg);
		if (!rc) {
			struct engine_ref old[PFS_PAGE_REFS];
			pfs_map_set_run(p, dst, pg, (uint32_t)(dblk % PFS_PAGE_REFS), k, refs, old,
			                NULL, PFS_LOG_DERIVED);
			memcpy(refs, old, k * sizeof(*refs));
		}
		pthread_rwlock_unlock(l);
		/* On success REFS now holds the replaced ones; on failure the ones we took. */
		for (uint32_t i = 0; i < k; i++) {
			if (rc)
				engine_ref_put(p->eng, refs[i]);
			else
				pfs_defer_put(p, refs[i]);
		}
		if (!rc)
			done += (uint64_t)k * bs;
	}
	if (done > len)
		done = len;
	atomic_store(&dst->mtime_ns, pfs_now_ns());
	pthread_rwlock_unlock(&dst->rw);
	return done ? (ssize_t)done : rc;
}

struct page_list {
	uint64_t *idx;
	size_t n, cap;
};

static int list_page(void *arg, uint64_t idx, const struct engine_ref *refs)
{
	struct page_list *l = arg;

	(void)refs;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		uint64_t *n = realloc(l->idx, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		l->idx = n;
		l->cap = cap;
	}
	l->idx[l->n++] = idx;
	return 0;
}

int64_t pfs_vol_seek(struct pfs *p, struct pfs_vol *v, int64_t off, int whence)
{
	const uint32_t bs = p->bs;
	struct page_list pl = {0};
	uint64_t size = atomic_load(&v->size);
	int64_t res = -ENXIO;
	int rc;

	if (off < 0)
		return -ENXIO;
	if ((uint64_t)off >= size)
		return -ENXIO;
	pthread_rwlock_rdlock(&v->rw);
	rc = pfs_map_each_page(p, v, list_page, &pl);
	if (rc) {
		res = rc;
		goto out;
	}
	if (pl.n > 1) /* a map without pages has pl.idx NULL: qsort must not see it */
		qsort(pl.idx, pl.n, sizeof(*pl.idx), pfs_cmp_u64);
	uint64_t blk = (uint64_t)off / bs, nblk = (size + bs - 1) / bs;
	size_t i = 0;
	while (i < pl.n && pl.idx[i] < blk / PFS_PAGE_REFS)
		i++;
	while (blk < nblk) {
		uint64_t pidx = blk / PFS_PAGE_REFS;
		if (i >= pl.n || pl.idx[i] != pidx) {
			/* A page with no row: a hole of a whole page. */
			if (whence == SEEK_HOLE) {
				res = (int64_t)blk * bs;
				break;
			}
			blk = i < pl.n ? pl.idx[i] * PFS_PAGE_REFS : nblk;
			continue;
		}
		pthread_rwlock_t *l = pfs_stripe(v, pidx);
		struct pfs_mpage *pg = NULL;
		bool found = false;
		pthread_rwlock_rdlock(l);
		rc = pfs_map_page(p, v, pidx, false, &pg);
		for (; !rc && blk < nblk && blk / PFS_PAGE_REFS == pidx; blk++) {
			bool data = pg && pg->ref[blk % PFS_PAGE_REFS].v != 0;
			if (data == (whence == SEEK_DATA)) {
				found = true;
				break;
			}
		}
		pthread_rwlock_unlock(l);
		if (rc) {
			res = rc;
			goto out;
		}
		if (found) {
			res = (int64_t)blk * bs;
			break;
		}
		i++;
	}
	if (whence == SEEK_HOLE && res == -ENXIO)
		res = (int64_t)size; /* the end of a file is a hole */
	if (res >= 0 && res < off)
		res = off;
	if (res >= 0 && (uint64_t)res > size)
		res = (int64_t)size;
out:
	pthread_rwlock_unlock(&v->rw);
	free(pl.idx);
	return res;
}

/* Per-map usage counts each chunk once per map, however many of the map's blocks point at it (a
 * volume holding its data twice, a snapshot's blocks all shared with its volume): a chunk is the
 * map's own (unique) when every reference the engine counts for it comes from this map, shared
 * otherwise. Counting references per chunk takes a table keyed by chunk address; to keep its
 * memory bounded whatever the map's size, only chunks with more than one reference go in it (a
 * chunk referenced once is unique on sight), the table never grows past USAGE_MAX_SLOTS, and
 * when a map holds more such chunks than one table takes, the walk is repeated over disjoint
 * partitions of the address hash (USAGE_MAX_SLOTS * 12 bytes at most: 24 MiB; a pass covers
 * about 1.4 million multiply-referenced chunks, 5.6 GiB of 4 KiB blocks). */
#define USAGE_MIN_SLOTS 1024u
#define USAGE_MAX_SLOTS (1u << 21)
uint32_t pfs_usage_max_slots = USAGE_MAX_SLOTS; /* a seam: tests lower it to force partitions */
_Atomic uint64_t pfs_usage_passes;              /* partition walks done, for the same tests */
_Atomic uint64_t pfs_usage_walks;               /* whole walks done (usage_get) */
#define USAGE_LOAD_NUM 7                        /* grow (or give up the pass) at 70% full */
#define USAGE_LOAD_DEN 10
#define USAGE_EMPTY    UINT64_MAX

struct usage_arg {
	struct pfs *p;
	uint64_t unique, shared;
	uint32_t part, nparts; /* this pass counts chunks whose hash falls in partition PART */
	uint64_t *key;         /* chunk addresses (USAGE_EMPTY: free slot) */
	uint32_t *count;       /* references from this map */
	uint32_t slots, used;
	bool overflow; /* the table could not grow: redo with more partitions */
};

static uint64_t usage_mix(uint64_t x)
{
	/* splitmix64's finaliser: chunk addresses are sequential, the partitions and slots must
	 * not be. */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static int usage_table_alloc(struct usage_arg *a, uint32_t slots)
{
	uint64_t *key = malloc((size_t)slots * sizeof(*key));
	uint32_t *count = calloc(slots, sizeof(*count));

	if (!key || !count) {
		free(key);
		free(count);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < slots; i++)
		key[i] = USAGE_EMPTY;
	a->key = key;
	a->count = count;
	a->slots = slots;
	a->used = 0;
	return 0;
}

static void usage_table_free(struct usage_arg *a)
{
	free(a->key);
	free(a->count);
	a->key = NULL;
	a->count = NULL;
	a->slots = a->used = 0;
}

static uint32_t *usage_slot(struct usage_arg *a, uint64_t addr, uint64_t h)
{
	uint32_t mask = a->slots - 1;

	for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
		if (a->key[i] == addr)
			return &a->count[i];
		if (a->key[i] == USAGE_EMPTY) {
			a->key[i] = addr;
			a->used++;
			return &a->count[i];
		}
	}
}

/* Doubles the table (rehashing what it holds); -ENOSPC at USAGE_MAX_SLOTS. */
static int usage_table_grow(struct usage_arg *a)
{
	struct usage_arg old = *a;
	int rc;

	if (a->slots >= pfs_usage_max_slots)
		return -ENOSPC;
	rc = usage_table_alloc(a, a->slots * 2);
	if (rc) {
		*a = old;
		return rc;
	}
	for (uint32_t i = 0; i < old.slots; i++)
		if (old.key[i] != USAGE_EMPTY)
			*usage_slot(a, old.key[i], usage_mix(old.key[i])) = old.count[i];
	usage_table_free(&old);
	return 0;
}

static int usage_page(void *arg, uint64_t idx, const struct engine_ref *refs)
{
	struct usage_arg *a = arg;
	int rc;

	(void)idx;
	for (uint32_t i = 0; i < PFS_PAGE_REFS; i++) {
		/* REFS is the walk's own copy (usage_pass_run): a page copied under its stripe
		 * lock, or a row. */
		struct engine_ref r = refs[i];
		if (engine_ref_kind(r) != ENGINE_REF_CHUNK)
			continue;
		uint64_t addr = r.v & ((1ull << 62) - 1);
		uint64_t h = usage_mix(addr);
		if ((uint32_t)((h >> 32) % a->nparts) != a->part)
			continue;
		if (engine_ref_count(a->p->eng, r) <= 1) {
			int len = ftl_chunk_len(a->p->ftl, (struct ftl_addr){addr});
			if (len > 0)
				a->unique += (uint64_t)len;
			continue;
		}
		if ((uint64_t)(a->used + 1) * USAGE_LOAD_DEN >
		    (uint64_t)a->slots * USAGE_LOAD_NUM) {
			rc = usage_table_grow(a);
			if (rc == -ENOSPC) {
				a->overflow = true;
				return -ENOSPC; /* stops the walk: the caller splits further */
			}
			if (rc)
				return rc;
		}
		(*usage_slot(a, addr, h))++;
	}
	return 0;
}

/* Adds the chunks counted in the table to UNIQUE or SHARED, once each. */
static void usage_settle(struct usage_arg *a, uint64_t *unique, uint64_t *shared)
{
	for (uint32_t i = 0; i < a->slots; i++) {
		if (a->key[i] == USAGE_EMPTY)
			continue;
		struct ftl_addr addr = {a->key[i]};
		struct engine_ref r = {((uint64_t)ENGINE_REF_CHUNK << 62) | a->key[i]};
		int len = ftl_chunk_len(a->p->ftl, addr);
		if (len <= 0)
			continue;
		/* >=: a reference dropped by a writer since the walk saw it. */
		if ((int64_t)a->count[i] >= engine_ref_count(a->p->eng, r))
			*unique += (uint64_t)len;
		else
			*shared += (uint64_t)len;
	}
}

/* One pass over a map's pages, holding no lock of the volume for longer than one page's copy, so
 * the writers of the map wait for the walk at most that long (it used to hold v->lock, which
 * every page lookup of the I/O path takes, across all the loaded pages). Loaded pages are
 * newer than their rows, so:
 *  1. the indices of the loaded pages are listed (v->lock, briefly);
 *  2. each is copied under v->rw (read) and its stripe lock (read), which keep it from being
 *     evicted or dropped and its references from changing, and counted from the copy; one
 *     evicted meanwhile was clean, so its row is current and step 3 counts that;
 *  3. the rows are read (pfs_meta_pages_each: in batches, db_lock not held across the
 *     callback): a row whose page was copied in step 2 is skipped; one whose page was loaded
 *     since step 1 is noted, and counted from memory after the rows (taking the stripe lock
 *     inside the row callback would nest a volume lock in SQLite's batch);
 *  4. the noted pages are copied as in step 2 (or their row read again if evicted since).
 * A change made while the pass runs may or may not be seen; the change count (usage_gen)
 * moves after it, so the cache below never takes such a pass for the state after it. */
struct usage_pass {
	struct pfs *p;
	struct pfs_vol *v;
	struct usage_arg *a;
	uint64_t *idx; /* step 1's loaded pages, sorted */
	bool *copied;  /* idx[i] was counted from memory in step 2 */
	size_t n;
	uint64_t *late; /* pages loaded after step 1 (step 4) */
	size_t nlate, cap_late;
	struct engine_ref refs[PFS_PAGE_REFS];
};

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
	return (a > b) - (a < b);
}

/* Copies loaded page IDX into U->refs. 1: copied; 0: not loaded (any more). */
static int usage_copy_page(struct usage_pass *u, uint64_t idx)
{
	struct pfs_vol *v = u->v;
	pthread_rwlock_t *l = pfs_stripe(v, idx);
	struct pfs_mpage *pg;

	pthread_rwlock_rdlock(&v->rw);
	pthread_rwlock_rdlock(l);
	pthread_mutex_lock(&v->lock);
	pg = pfs_map_find_locked(v, idx);
	pthread_mutex_unlock(&v->lock);
	if (pg)
		memcpy(u->refs, pg->ref, sizeof(u->refs));
	pthread_rwlock_unlock(l);
	pthread_rwlock_unlock(&v->rw);
	return pg != NULL;
}

static int usage_list_loaded(struct usage_pass *u)
{
	struct pfs_vol *v = u->v;
	size_t n = 0;

	pthread_mutex_lock(&v->lock);
	u->idx = malloc((v->npages ? v->npages : 1) * sizeof(*u->idx));
	u->copied = calloc(v->npages ? v->npages : 1, sizeof(*u->copied));
	if (u->idx && u->copied)
		for (uint32_t b = 0; b < v->nbuckets; b++)
			for (struct pfs_mpage *pg = v->buckets[b]; pg; pg = pg->next)
				u->idx[n++] = pg->idx;
	pthread_mutex_unlock(&v->lock);
	if (!u->idx || !u->copied)
		return -ENOMEM;
	u->n = n;
	qsort(u->idx, n, sizeof(*u->idx), cmp_u64);
	return 0;
}

static int usage_row(void *arg, uint64_t map, uint64_t idx, const struct engine_ref *refs)
{
	struct usage_pass *u = arg;
	const uint64_t *hit = bsearch(&idx, u->idx, u->n, sizeof(*u->idx), cmp_u64);
	bool loaded;

	(void)map;
	if (hit && u->copied[hit - u->idx])
		return 0; /* counted from memory */
	if (!hit) {
		pthread_mutex_lock(&u->v->lock);
		loaded = pfs_map_find_locked(u->v, idx) != NULL;
		pthread_mutex_unlock(&u->v->lock);
		if (loaded) {
			if (u->nlate == u->cap_late) {
				size_t cap = u->cap_late ? u->cap_late * 2 : 64;
				uint64_t *l = realloc(u->late, cap * sizeof(*l));
				if (!l)
					return -ENOMEM;
				u->late = l;
				u->cap_late = cap;
			}
			u->late[u->nlate++] = idx;
			return 0;
		}
	}
	return usage_page(u->a, idx, refs);
}

static int usage_pass_run(struct pfs *p, struct pfs_vol *v, struct usage_arg *a)
{
	struct usage_pass *u = calloc(1, sizeof(*u));
	int rc;

	if (!u)
		return -ENOMEM;
	u->p = p;
	u->v = v;
	u->a = a;
	rc = usage_list_loaded(u);
	for (size_t i = 0; i < u->n && !rc; i++) {
		u->copied[i] = usage_copy_page(u, u->idx[i]);
		if (u->copied[i])
			rc = usage_page(a, u->idx[i], u->refs);
	}
	if (!rc)
		rc = pfs_meta_pages_each(p->meta, (int64_t)v->id, usage_row, u);
	for (size_t i = 0; i < u->nlate && !rc; i++) {
		if (!usage_copy_page(u, u->late[i])) {
			rc = pfs_meta_page_load(p->meta, v->id, u->late[i], u->refs);
			if (rc == -ENOENT) {
				rc = 0;
				continue;
			}
		}
		if (!rc)
			rc = usage_page(a, u->late[i], u->refs);
	}
	free(u->idx);
	free(u->copied);
	free(u->late);
	free(u);
	return rc;
}

/* One walk per partition of the chunk hash; more partitions when one overflows the table. */
static int usage_walk(struct pfs *p, struct pfs_vol *v, uint64_t *unique, uint64_t *shared)
{
	/* Start with as many partitions as the map's chunk references need at the most. */
	uint64_t chunks = (uint64_t)atomic_load(&v->chunk_blocks);
	uint64_t per = (uint64_t)pfs_usage_max_slots * USAGE_LOAD_NUM / USAGE_LOAD_DEN;
	uint32_t nparts = (uint32_t)(chunks / per + 1);
	int rc;

	for (;;) {
		uint64_t u = 0, s = 0;
		bool again = false;
		for (uint32_t part = 0; part < nparts; part++) {
			struct usage_arg a = {.p = p, .part = part, .nparts = nparts};
			rc = usage_table_alloc(&a, USAGE_MIN_SLOTS < pfs_usage_max_slots
			                               ? USAGE_MIN_SLOTS
			                               : pfs_usage_max_slots);
			if (rc)
				return rc;
			rc = usage_pass_run(p, v, &a);
			if (!rc)
				usage_settle(&a, &u, &s);
			usage_table_free(&a);
			if (rc && a.overflow) {
				again = true;
				break;
			}
			if (!rc)
				atomic_fetch_add_explicit(&pfs_usage_passes, 1,
				                          memory_order_relaxed);
			if (rc)
				return rc;
			u += a.unique;
		}
		if (!again) {
			*unique = u;
			*shared = s;
			return 0;
		}
		if (nparts > UINT32_MAX / 2)
			return -ENOMEM;
		nparts *= 2;
	}
}

/* The store's change count: what can move any map's figures, each counter bumped after its
 * effect. Every change, applied or failed (a failed write may have done part of its blocks;
 * and changes elsewhere move this map's figures too: a dedupe hit in another volume makes a
 * chunk of this one shared, a deleted snapshot leaves its chunks to the volume); writes given
 * to pfs_vol_write outside the change path; each commit (it releases the references the maps
 * dropped, invariant 4, and the tiering mover's recompressed chunk lengths show from there:
 * the mover changes no map and counts nothing here). */
static uint64_t usage_gen(struct pfs *p)
{
	uint64_t g = atomic_load(&p->change_errors) + atomic_load(&p->commits) +
	             atomic_load(&p->io_write.ops);

	for (int k = 0; k < PFS_CHANGE_COUNT; k++)
		g += atomic_load(&p->changes[k]);
	return g;
}

/* The cached figures when they may stand (see pfs_vol_usage_recent), else a walk. MAX_AGE_NS
 * < 0: walk whatever. */
static int usage_get(struct pfs *p, struct pfs_vol *v, int64_t max_age_ns, uint64_t *unique,
                     uint64_t *shared)
{
	uint64_t gen, commits;
	int64_t now;
	int rc = 0;

	pthread_mutex_lock(&v->usage_lock);
	/* Read before the walk: a change it misses moves them after. */
	commits = atomic_load(&p->commits);
	gen = usage_gen(p);
	now = pfs_now_ns();
	bool keep = max_age_ns >= 0 && v->usage_at_ns &&
	            (gen == v->usage_gen ||
	             (now - v->usage_at_ns < max_age_ns && commits == v->usage_commits));
	if (!keep) {
		uint64_t u = 0, s = 0;
		rc = usage_walk(p, v, &u, &s);
		if (!rc) {
			v->usage_unique = u;
			v->usage_shared = s;
			v->usage_at_ns = now;
			v->usage_gen = gen;
			v->usage_commits = commits;
			atomic_fetch_add_explicit(&pfs_usage_walks, 1, memory_order_relaxed);
		}
	}
	*unique = v->usage_unique;
	*shared = v->usage_shared;
	pthread_mutex_unlock(&v->usage_lock);
	return rc;
}

int pfs_vol_usage(struct pfs *p, struct pfs_vol *v, bool fresh, uint64_t *unique, uint64_t *shared)
{
	return usage_get(p, v, fresh ? -1 : (int64_t)PFS_USAGE_STAT_MS * 1000000, unique, shared);
}

int pfs_vol_usage_recent(struct pfs *p, struct pfs_vol *v, uint32_t max_age_ms, uint64_t *unique,
                         uint64_t *shared)
{
	return usage_get(p, v, (int64_t)max_age_ms * 1000000, unique, shared);
}
