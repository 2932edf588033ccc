/* fs/pfs_log.c - the roll-forward log: every map change gets a log sequence number (lsn) and a
 * small record; fsync writes the records not yet durable as log chunks in the FTL, after the
 * data they point to, so one fsync costs two device flushes whatever it covers, and concurrent
 * fsyncs share them (group commit). A checkpoint (pfs_commit.c) makes records below its lsn
 * unnecessary; mount replays the records at or above the last checkpoint's lsn.
 *
 * Record (little-endian): word0 = map id | type << 56, word1 = block (or 0), word2 = reference
 * (or size); a SET_PATTERN record carries 24 more bytes: period, the 16 pattern bytes, padding.
 * A log chunk is a 16-byte header (magic, record count, first lsn) and its records; record i
 * has lsn first + i.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pfs_vol_int.h"

#define LOG_MAGIC     0x474f4c50u /* "PLOG" */
#define LOG_HDR       16u
#define REC_BASE      24u
#define REC_PATTERN   48u
#define REC_NOP       3u /* the lsn a checkpoint takes */
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

/* Caller holds log.lock. */
static void append_locked(struct pfs_log *l, unsigned type, uint64_t map, uint64_t blk,
                          uint64_t value, const uint8_t *pat, uint32_t period)
{
	uint8_t *r = reserve_locked(l, pat ? REC_PATTERN : REC_BASE);
	if (!r) {
		l->next_lsn++;
		break_locked(l);
	} else {
		pfs_put64(r, map | (uint64_t)type << TYPE_SHIFT);
		pfs_put64(r + 8, blk);
		pfs_put64(r + 16, value);
		if (pat) {
			memset(r + 24, 0, REC_PATTERN - REC_BASE);
			r[24] = (uint8_t)period;
			memcpy(r + 25, pat, period);
		}
	}
}

void pfs_log_set_run(struct pfs *p, uint64_t map, uint64_t blk, const struct engine_ref *refs,
                     uint32_t n)
{
	struct pfs_log *l = &p->log;
	uint8_t pat[PFS_PAGE_REFS][16];
	int period[PFS_PAGE_REFS];

	if (p->replaying || p->opts.readonly || n == 0 || n > PFS_PAGE_REFS)
		return;
	/* Table patterns are looked up before the log lock: the engine takes its own. */
	for (uint32_t i = 0; i < n; i++)
		period[i] = engine_ref_is_table_pattern(refs[i])
		                ? engine_ref_pattern(p->eng, refs[i], pat[i])
		                : 0;
	pthread_mutex_lock(&l->lock);
	for (uint32_t i = 0; i < n; i++) {
		if (!engine_ref_is_table_pattern(refs[i])) {
			append_locked(l, PFS_LOG_SET, map, blk + i, refs[i].v, NULL, 0);
		} else if (period[i] > 0) {
			append_locked(l, PFS_LOG_SET_PATTERN, map, blk + i, refs[i].v, pat[i],
			              (uint32_t)period[i]);
		} else {
			/* The change takes an lsn like any record, so a sync after it never
			 * finds itself covered by the flush before it; the broken log then makes
			 * it commit. */
			l->next_lsn++;
			break_locked(l);
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

uint64_t pfs_log_cut(struct pfs *p)
{
	struct pfs_log *l = &p->log;

	pthread_mutex_lock(&l->lock);
	uint64_t cut = l->next_lsn;
	uint8_t *r = reserve_locked(l, REC_BASE);
	if (r) {
		pfs_put64(r, (uint64_t)REC_NOP << TYPE_SHIFT);
		memset(r + 8, 0, 16);
	} else {
		l->next_lsn++;
		break_locked(l);
	}
	pthread_mutex_unlock(&l->lock);
	return cut;
}

static size_t rec_len(const uint8_t *r)
{
	return (pfs_get64(r) >> TYPE_SHIFT) == PFS_LOG_SET_PATTERN ? REC_PATTERN : REC_BASE;
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
		if (off + REC_BASE > len)
			return -EUCLEAN;
		const uint8_t *r = buf + off;
		unsigned type = (unsigned)(pfs_get64(r) >> TYPE_SHIFT);
		uint64_t map = pfs_get64(r) & ((1ull << TYPE_SHIFT) - 1);
		size_t rl = rec_len(r);
		if (type > REC_NOP || off + rl > len ||
		    (type == PFS_LOG_SET_PATTERN && (r[24] < 1 || r[24] > 16)))
			return -EUCLEAN;
		off += rl;
		if (lsn < from_lsn || type == REC_NOP)
			continue;
		rc = fn(arg, lsn, (enum pfs_log_rec)type, map, pfs_get64(r + 8), pfs_get64(r + 16),
		        type == PFS_LOG_SET_PATTERN ? r + 25 : NULL,
		        type == PFS_LOG_SET_PATTERN ? r[24] : 0);
	}
	if (!rc && off != len)
		return -EUCLEAN;
	return rc;
}
