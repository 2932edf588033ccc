/* fs/pfs_log.c - the roll-forward log: every map change gets a log sequence number (lsn) and a
 * small record; fsync writes the records not yet durable as log chunks in the FTL, after the
 * data they point to, so one fsync costs two device flushes whatever it covers, and concurrent
 * fsyncs share them (group commit). A checkpoint (pfs_commit.c) makes records below its lsn
 * unnecessary; mount replays the records at or above the last checkpoint's lsn.
 *
 * The log is also the store's change stream, in the order changes take effect: every record
 * says what changed in terms another box can apply (a block's SHA-256 fingerprint besides the
 * local reference, catalogue changes by name). Record layouts: pfs_format.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pfs_vol_int.h"

#define LOG_MAGIC     0x474f4c50u /* "PLOG" */
#define LOG_HDR       16u
#define TYPE_SHIFT    56
#define LOG_CHUNK_MAX (FTL_CHUNK_MAX - 64u)

int pfs_log_init(struct pfs *p)
{
	pthread_mutex_init(&p->log.lock, NULL);
	pthread_mutex_init(&p->log.flush_lock, NULL);
	return 0;
}

void pfs_log_destroy(struct pfs *p)
{
	free(p->log.buf);
	free(p->log.chunks);
	p->log.buf = NULL;
	p->log.chunks = NULL;
	pthread_mutex_destroy(&p->log.lock);
	pthread_mutex_destroy(&p->log.flush_lock);
}

/* A record that cannot be kept (out of memory) breaks the log: the buffer is dropped so lsns
 * stay consecutive in it, and until a checkpoint covers the gap, sync falls back to a full
 * checkpoint, which needs no records. Caller holds log.lock. */
static void break_locked(struct pfs_log *l)
{
	l->len = 0;
	l->buf_lsn = l->next_lsn;
	l->broken = true;
	l->broken_lsn = l->next_lsn;
}

/* A change whose record cannot be kept takes its lsn all the same; the stream has a hole there,
 * which a tap must know of (the other box then needs a resync, not the next record). Caller
 * holds log.lock. */
static void lose_locked(struct pfs_log *l)
{
	l->next_lsn++;
	if (l->tap)
		l->tap(l->tap_arg, l->next_lsn - 1, NULL, 0);
	break_locked(l);
}

/* The change this thread applies through pfs_change_apply_local with a capture: its block
 * records go to FN as they are appended. Thread-local, so concurrent changes each see only
 * their own. */
static __thread struct {
	struct pfs_log *log;
	pfs_capture_fn fn;
	void *arg;
} capture;

void pfs_log_capture_begin(struct pfs *p, pfs_capture_fn fn, void *arg)
{
	capture.log = fn ? &p->log : NULL;
	capture.fn = fn;
	capture.arg = arg;
}

void pfs_log_capture_end(void)
{
	capture.log = NULL;
	capture.fn = NULL;
}

static void capture_rec(const uint8_t *r, size_t len, uint64_t lsn)
{
	struct pfs_log_rec rec;
	struct pfs_block_change b;

	if (pfs_log_rec_decode(r, len, lsn, &rec))
		return;
	if (rec.type != PFS_LOG_SET && rec.type != PFS_LOG_SET_PATTERN &&
	    rec.type != PFS_LOG_SET_FP)
		return;
	b = (struct pfs_block_change){.map = rec.map,
	                              .blk = rec.blk,
	                              .ref = {rec.value},
	                              .fp = rec.type == PFS_LOG_SET_FP ? rec.fp : NULL,
	                              .pat = rec.type == PFS_LOG_SET_PATTERN ? rec.pat : NULL,
	                              .period = rec.period,
	                              .derived = rec.derived};
	capture.fn(capture.arg, &b);
}

/* Caller holds log.lock. Returns room for one record (its lsn is taken) or NULL. */
static uint8_t *reserve_locked(struct pfs_log *l, size_t n)
{
	if (l->len + n > l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64 * 1024;
		while (cap < l->len + n)
			cap *= 2;
		uint8_t *nb = realloc(l->buf, cap);
		if (!nb)
			return NULL;
		l->buf = nb;
		l->cap = cap;
	}
	uint8_t *r = l->buf + l->len;
	l->len += n;
	l->next_lsn++;
	return r;
}

/* Caller holds log.lock. TYPE may carry PFS_LOG_DERIVED; TAIL (TAIL_LEN bytes) follows the
 * three words, zero-padded to a multiple of 8. */
static void append_locked(struct pfs_log *l, unsigned type, uint64_t map, uint64_t w1, uint64_t w2,
                          const void *tail, size_t tail_len)
{
	size_t tail_room = (tail_len + 7) & ~(size_t)7;
	uint8_t *r = reserve_locked(l, PFS_LOG_REC_BASE + tail_room);
	if (!r) {
		lose_locked(l);
		return;
	}
	pfs_put64(r, map | (uint64_t)type << TYPE_SHIFT);
	pfs_put64(r + 8, w1);
	pfs_put64(r + 16, w2);
	if (tail_room) {
		memset(r + PFS_LOG_REC_BASE, 0, tail_room);
		memcpy(r + PFS_LOG_REC_BASE, tail, tail_len);
	}
	if (l->tap)
		l->tap(l->tap_arg, l->next_lsn - 1, r, PFS_LOG_REC_BASE + tail_room);
	if (capture.log == l)
		capture_rec(r, PFS_LOG_REC_BASE + tail_room, l->next_lsn - 1);
}

void pfs_log_set_run(struct pfs *p, uint64_t map, uint64_t blk, const struct engine_ref *refs,
                     uint32_t n, const uint8_t (*fp)[ENGINE_FP_LEN], unsigned flags)
{
	struct pfs_log *l = &p->log;
	uint8_t pat[PFS_PAGE_REFS][PFS_LOG_REC_PATTERN - PFS_LOG_REC_BASE];
	int period[PFS_PAGE_REFS];

	if (p->replaying || p->opts.readonly || n == 0 || n > PFS_PAGE_REFS)
		return;
	/* Table patterns are looked up before the log lock: the engine takes its own. */
	for (uint32_t i = 0; i < n; i++) {
		period[i] = engine_ref_is_table_pattern(refs[i])
		                ? engine_ref_pattern(p->eng, refs[i], pat[i] + 1)
		                : 0;
		if (period[i] > 0) {
			memset(pat[i] + 1 + period[i], 0, sizeof(pat[i]) - 1 - (size_t)period[i]);
			pat[i][0] = (uint8_t)period[i];
		}
	}
	pthread_mutex_lock(&l->lock);
	for (uint32_t i = 0; i < n; i++) {
		if (engine_ref_is_table_pattern(refs[i]) && period[i] > 0) {
			append_locked(l, PFS_LOG_SET_PATTERN | flags, map, blk + i, refs[i].v,
			              pat[i], sizeof(pat[i]));
		} else if (!engine_ref_is_table_pattern(refs[i])) {
			/* A fresh chunk names its content by fingerprint, so another box can
			 * find or ask for it; zeros, inline patterns and copies of references
			 * (derived records) need none. */
			bool with_fp = fp && engine_ref_kind(refs[i]) == ENGINE_REF_CHUNK;
			append_locked(l, (with_fp ? PFS_LOG_SET_FP : PFS_LOG_SET) | flags, map,
			              blk + i, refs[i].v, with_fp ? fp[i] : NULL,
			              with_fp ? ENGINE_FP_LEN : 0);
		} else {
			/* The change takes an lsn like any record, so a sync after it never
			 * finds itself covered by the flush before it; the broken log then makes
			 * it commit. */
			lose_locked(l);
		}
	}
	pthread_mutex_unlock(&l->lock);
}

void pfs_log_size(struct pfs *p, uint64_t map, uint64_t size)
{
	struct pfs_log *l = &p->log;

	if (p->replaying || p->opts.readonly)
		return;
	pthread_mutex_lock(&l->lock);
	append_locked(l, PFS_LOG_SIZE, map, 0, size, NULL, 0);
	pthread_mutex_unlock(&l->lock);
}

void pfs_log_change(struct pfs *p, const struct pfs_change *c, uint64_t map, uint64_t src_map)
{
	struct pfs_log *l = &p->log;
	uint8_t rec[PFS_CHANGE_REC_MAX];
	int n;

	if (p->replaying || p->opts.readonly)
		return;
	n = pfs_change_encode(c, src_map, rec, sizeof(rec));
	pthread_mutex_lock(&l->lock);
	if (n < 0) {
		/* Cannot happen for a change that was applied (names are bounded): if it does,
		 * the stream has a hole, which the broken log reports like a lost record. */
		lose_locked(l);
	} else {
		append_locked(l, PFS_LOG_CHANGE, map, (uint64_t)n, (uint64_t)c->kind, rec,
		              (size_t)n);
	}
	pthread_mutex_unlock(&l->lock);
}

uint64_t pfs_log_cut(struct pfs *p)
{
	struct pfs_log *l = &p->log;

	pthread_mutex_lock(&l->lock);
	uint64_t cut = l->next_lsn;
	uint8_t *r = reserve_locked(l, PFS_LOG_REC_BASE);
	if (r) {
		pfs_put64(r, (uint64_t)PFS_LOG_NOP << TYPE_SHIFT);
		memset(r + 8, 0, 16);
		if (l->tap)
			l->tap(l->tap_arg, cut, r, PFS_LOG_REC_BASE);
	} else {
		lose_locked(l);
	}
	pthread_mutex_unlock(&l->lock);
	return cut;
}

/* Length of the record at R (whose header is readable), or 0 when its type is unknown. */
static size_t rec_len(const uint8_t *r)
{
	switch ((pfs_get64(r) >> TYPE_SHIFT) & ~(uint64_t)PFS_LOG_DERIVED) {
	case PFS_LOG_SET:
	case PFS_LOG_SIZE:
	case PFS_LOG_NOP:
		return PFS_LOG_REC_BASE;
	case PFS_LOG_SET_PATTERN:
		return PFS_LOG_REC_PATTERN;
	case PFS_LOG_SET_FP:
		return PFS_LOG_REC_FP;
	case PFS_LOG_CHANGE:
		if (pfs_get64(r + 8) > PFS_CHANGE_REC_MAX)
			return 0;
		return PFS_LOG_REC_BASE + ((pfs_get64(r + 8) + 7) & ~(uint64_t)7);
	}
	return 0;
}

void pfs_log_checkpointed(struct pfs *p, uint64_t cut)
{
	struct pfs_log *l = &p->log;
	size_t nfree = 0, keep = 0;
	uint64_t *frees = NULL;

	pthread_mutex_lock(&l->lock);
	/* Records below the cut are in SQLite now: drop them from the buffer. */
	size_t off = 0;
	uint64_t lsn = l->buf_lsn;
	while (lsn < cut && off < l->len) {
		off += rec_len(l->buf + off);
		lsn++;
	}
	if ((lsn >= cut || off >= l->len) && off > 0) {
		/* buf is NULL until the first record; memmove must not see it. */
		memmove(l->buf, l->buf + off, l->len - off);
		l->len -= off;
		l->buf_lsn = lsn;
	}
	if (l->broken && cut >= l->broken_lsn)
		l->broken = false;
	if (cut > l->durable_lsn && !l->broken)
		l->durable_lsn = cut;
	frees = malloc((l->nchunks ? l->nchunks : 1) * sizeof(*frees));
	for (size_t i = 0; i < l->nchunks; i++) {
		if (frees && l->chunks[i].end_lsn <= cut)
			frees[nfree++] = l->chunks[i].addr;
		else
			l->chunks[keep++] = l->chunks[i];
	}
	l->nchunks = keep;
	pthread_mutex_unlock(&l->lock);
	for (size_t i = 0; i < nfree; i++)
		ftl_free(p->ftl, (struct ftl_addr){frees[i]});
	free(frees);
}

static int remember_chunk(struct pfs *p, uint64_t addr, uint64_t end_lsn)
{
	struct pfs_log *l = &p->log;
	int rc = 0;

	pthread_mutex_lock(&l->lock);
	if (l->nchunks == l->cap_chunks) {
		size_t cap = l->cap_chunks ? l->cap_chunks * 2 : 64;
		struct pfs_log_chunk *n = realloc(l->chunks, cap * sizeof(*n));
		if (!n) {
			rc = -ENOMEM;
			goto out;
		}
		l->chunks = n;
		l->cap_chunks = cap;
	}
	l->chunks[l->nchunks++] = (struct pfs_log_chunk){addr, end_lsn};
out:
	pthread_mutex_unlock(&l->lock);
	return rc;
}

int pfs_log_adopt(struct pfs *p, uint64_t addr, uint64_t end_lsn)
{
	return remember_chunk(p, addr, end_lsn);
}

/* Writes BUF (whole records from lsn FIRST) as log chunks. */
static int write_chunks(struct pfs *p, const uint8_t *buf, size_t len, uint64_t first)
{
	uint8_t *chunk = malloc(FTL_CHUNK_MAX);
	size_t off = 0;
	int rc = 0;

	if (!chunk)
		return -ENOMEM;
	while (off < len && !rc) {
		size_t n = 0, clen = LOG_HDR;
		uint32_t count = 0;
		while (off + n < len && clen + rec_len(buf + off + n) <= LOG_CHUNK_MAX) {
			size_t r = rec_len(buf + off + n);
			n += r;
			clen += r;
			count++;
		}
		pfs_put64(chunk, LOG_MAGIC | (uint64_t)count << 32);
		pfs_put64(chunk + 8, first);
		memcpy(chunk + LOG_HDR, buf + off, n);
		struct pfs_mtag t = {PFS_MCHUNK_LOG, first, count, first + count};
		uint64_t a;
		rc = pfs_mchunk_write(p->ftl, chunk, (uint32_t)clen, &t, &a);
		if (!rc) {
			rc = remember_chunk(p, a, first + count);
			atomic_fetch_add(&p->log.chunks_written, 1);
			atomic_fetch_add(&p->log.bytes_written, clen);
		}
		off += n;
		first += count;
	}
	free(chunk);
	return rc;
}

int pfs_log_sync(struct pfs *p)
{
	struct pfs_log *l = &p->log;
	uint64_t target, first, end;
	uint8_t *buf;
	size_t len;
	bool broken;
	int rc;

	if (p->opts.readonly)
		return 0;
	int64_t t0 = pfs_now_ns();
	pthread_mutex_lock(&l->lock);
	target = l->next_lsn;
	pthread_mutex_unlock(&l->lock);

	pthread_mutex_lock(&l->flush_lock);
	pthread_mutex_lock(&l->lock);
	if (l->durable_lsn >= target) {
		/* Another caller's flush covered us while we waited: group commit. */
		pthread_mutex_unlock(&l->lock);
		pthread_mutex_unlock(&l->flush_lock);
		atomic_fetch_add(&l->group_waits, 1);
		return 0;
	}
	broken = l->broken;
	buf = l->buf;
	len = l->len;
	first = l->buf_lsn;
	end = l->next_lsn;
	l->buf = NULL;
	l->len = l->cap = 0;
	l->buf_lsn = end;
	pthread_mutex_unlock(&l->lock);

	if (broken) {
		/* A record could not be kept: only a checkpoint can make the maps durable. */
		pthread_mutex_unlock(&l->flush_lock);
		free(buf);
		return pfs_commit(p);
	}
	/* Data first: the chunks the records point to are durable before the records. */
	rc = ftl_sync(p->ftl);
	if (!rc && len)
		rc = write_chunks(p, buf, len, first);
	if (!rc && len)
		rc = ftl_sync(p->ftl);
	pthread_mutex_lock(&l->lock);
	if (!rc) {
		if (end > l->durable_lsn)
			l->durable_lsn = end;
	} else {
		/* Put the records back in front of what came since, for the next try. */
		uint8_t *nb = malloc(len + l->len);
		if (nb) {
			memcpy(nb, buf, len);
			if (l->len)
				memcpy(nb + len, l->buf, l->len);
			free(l->buf);
			l->buf = nb;
			l->len += len;
			l->cap = l->len;
			l->buf_lsn = first;
		} else {
			break_locked(l);
		}
	}
	pthread_mutex_unlock(&l->lock);
	pthread_mutex_unlock(&l->flush_lock);
	free(buf);
	atomic_fetch_add(&l->syncs, 1);
	atomic_fetch_add(&l->flush_ns_total, (uint64_t)(pfs_now_ns() - t0));
	return rc;
}

void pfs_log_set_tap(struct pfs *p, pfs_log_tap_fn fn, void *arg)
{
	pthread_mutex_lock(&p->log.lock);
	p->log.tap = fn;
	p->log.tap_arg = arg;
	pthread_mutex_unlock(&p->log.lock);
}

int pfs_log_rec_decode(const uint8_t *r, size_t len, uint64_t lsn, struct pfs_log_rec *rec)
{
	if (len < PFS_LOG_REC_BASE)
		return -EUCLEAN;
	unsigned tbyte = (unsigned)(pfs_get64(r) >> TYPE_SHIFT);
	size_t rl = rec_len(r);
	*rec = (struct pfs_log_rec){
	    .lsn = lsn,
	    .type = (enum pfs_log_type)(tbyte & ~(unsigned)PFS_LOG_DERIVED),
	    .derived = (tbyte & PFS_LOG_DERIVED) != 0,
	    .map = pfs_get64(r) & ((1ull << TYPE_SHIFT) - 1),
	    .blk = pfs_get64(r + 8),
	    .value = pfs_get64(r + 16),
	    .len = rl,
	};
	if (!rl || rl > len)
		return -EUCLEAN;
	switch (rec->type) {
	case PFS_LOG_SET_PATTERN:
		rec->period = r[PFS_LOG_REC_BASE];
		rec->pat = r + PFS_LOG_REC_BASE + 1;
		if (rec->period < 1 || rec->period > 16)
			return -EUCLEAN;
		break;
	case PFS_LOG_SET_FP:
		rec->fp = r + PFS_LOG_REC_BASE;
		if (engine_ref_kind((struct engine_ref){rec->value}) != ENGINE_REF_CHUNK)
			return -EUCLEAN;
		break;
	case PFS_LOG_CHANGE:
		rec->change = r + PFS_LOG_REC_BASE;
		rec->change_len = (uint32_t)rec->blk;
		/* The payload must decode: a record another box could not apply is damage, found
		 * here rather than there. */
		if (pfs_change_decode(rec->change, rec->change_len, &rec->decoded, &rec->src_map) ||
		    (uint64_t)rec->decoded.kind != rec->value)
			return -EUCLEAN;
		break;
	default:
		break;
	}
	if (rec->derived && rec->type != PFS_LOG_SET && rec->type != PFS_LOG_SET_PATTERN)
		return -EUCLEAN;
	return 0;
}

int pfs_log_decode(const uint8_t *buf, size_t len, uint64_t first_lsn, uint64_t from_lsn,
                   pfs_log_rec_fn fn, void *arg)
{
	if (len < LOG_HDR || (uint32_t)pfs_get64(buf) != LOG_MAGIC ||
	    pfs_get64(buf + 8) != first_lsn)
		return -EUCLEAN;
	uint32_t count = (uint32_t)(pfs_get64(buf) >> 32);
	size_t off = LOG_HDR;
	uint64_t lsn = first_lsn;
	int rc = 0;

	for (uint32_t i = 0; i < count && !rc; i++, lsn++) {
		struct pfs_log_rec rec;
		if (pfs_log_rec_decode(buf + off, len - off, lsn, &rec))
			return -EUCLEAN;
		off += rec.len;
		if (lsn < from_lsn || rec.type == PFS_LOG_NOP)
			continue;
		rc = fn(arg, &rec);
	}
	if (!rc && off != len)
		return -EUCLEAN;
	return rc;
}
