/* flash/ftl_ckpt.c - checkpoints of the FTL's tables, so open need not scan every segment.
 *
 * A checkpoint is a consistent copy of the segment table, the pack offsets and the L2P (with
 * each chunk's owner word), taken with every stream sealed and writers held off, then written
 * to free segments of its own. Open reads the newest sound one and walks only the segments
 * whose header changed since, plus the tails of the segments that were open (ftl_scan.c).
 * Correctness never depends on a checkpoint being recent: any sound one is a valid base.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ftl_zone_int.h"

/* Below this many segments a checkpoint (a whole segment at least) costs more than the walk. */
#define FTL_CKPT_MIN_SEGS 32
/* Segments opened between checkpoints: at least this, and eight times the checkpoint's own
 * size so its writes stay near a tenth of all writes or less. */
#define FTL_CKPT_MIN_INTERVAL 8

struct ftl_ckpt_image {
	uint8_t *buf;
	const struct ftl_ckpt_disk *h;
	const struct ftl_ckpt_seg_disk *segs;
	const uint32_t *packs;
	uint64_t *pack_first; /* per segment: index of its first offset in packs */
	size_t *page_at;      /* per stored page: its offset in buf */
};

static size_t align8(size_t v)
{
	return (v + 7) & ~(size_t)7;
}

/* A stored L2P page: page number, entry count, then COUNT locations and COUNT owner words.
 * Only the last page is short: it ends at next_id, so small namespaces have small ones. */
struct page_head {
	uint64_t page;
	uint32_t count;
	uint32_t pad;
};

static size_t page_bytes(uint32_t count)
{
	return sizeof(struct page_head) + 2 * (size_t)count * sizeof(uint64_t);
}

static uint32_t page_count(uint64_t p, uint64_t next_id)
{
	uint64_t left = next_id - (p << FTL_L2P_PAGE_SHIFT);
	return left < FTL_L2P_PAGE_SIZE ? (uint32_t)left : FTL_L2P_PAGE_SIZE;
}

static size_t ckpt_fixed_bytes(uint32_t nsegs, uint64_t npack_offs)
{
	return sizeof(struct ftl_ckpt_disk) + (size_t)nsegs * sizeof(struct ftl_ckpt_seg_disk) +
	       align8(npack_offs * sizeof(uint32_t));
}

static uint32_t part_cap(const struct ftl *ftl)
{
	return ftl_ckpt_part_cap(ftl);
}

/* ---- taking one ---------------------------------------------------------------------------- */

/* The streams in lock order (invariant 5): user and reserve streams, gc_lock, GC streams. */
static const enum ftl_stream_id before_gc[] = {FTL_STREAM_USER_HOT, FTL_STREAM_USER_COLD,
                                               FTL_STREAM_RESERVE};
static const enum ftl_stream_id after_gc[] = {FTL_STREAM_GC_HOT, FTL_STREAM_GC_COLD};
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Takes every stream lock and gc_lock, and seals each stream as soon as its lock is taken:
 * the drain waits for the stream's pack writes with only its own lock released, so it never
 * takes that lock again while holding one that comes after it (invariant 5). Returns the
 * first seal's error; the locks are taken whatever it is. */
static int world_stop(struct ftl *ftl)
{
	int rc = 0, r;
	for (size_t i = 0; i < NELEM(before_gc); i++) {
		pthread_mutex_lock(&ftl->streams[before_gc[i]].lock);
		r = ftl_stream_seal(ftl, &ftl->streams[before_gc[i]]);
		rc = rc ? rc : r;
	}
	pthread_mutex_lock(&ftl->gc_lock);
	for (size_t i = 0; i < NELEM(after_gc); i++) {
		pthread_mutex_lock(&ftl->streams[after_gc[i]].lock);
		r = ftl_stream_seal(ftl, &ftl->streams[after_gc[i]]);
		rc = rc ? rc : r;
	}
	return rc;
}

static void world_start(struct ftl *ftl)
{
	for (size_t i = NELEM(after_gc); i-- > 0;)
		pthread_mutex_unlock(&ftl->streams[after_gc[i]].lock);
	pthread_mutex_unlock(&ftl->gc_lock);
	for (size_t i = NELEM(before_gc); i-- > 0;)
		pthread_mutex_unlock(&ftl->streams[before_gc[i]].lock);
}

static bool seg_is_stream_current(const struct ftl *ftl, uint32_t segi)
{
	for (int i = 0; i < FTL_STREAM_COUNT; i++)
		if (ftl->streams[i].seg == segi)
			return true;
	return false;
}

/* With the world stopped and every pack sealed: the tables into a new buffer. */
static int capture(struct ftl *ftl, uint64_t gen, uint8_t **out, size_t *out_bytes)
{
	uint64_t npack_offs = 0, npages = 0, next_id;
	size_t page_total = 0;

	/* Ids at or above next_id are handed out after this point; their writers wait on the
	 * stream locks we hold, so their entries are still empty. Pages below stay put. */
	pthread_mutex_lock(&ftl->l2p.id_lock);
	next_id = ftl->l2p.next_id;
	uint64_t top = (next_id + FTL_L2P_PAGE_SIZE - 1) >> FTL_L2P_PAGE_SHIFT;
	if (top > ftl->l2p.npages_max)
		top = ftl->l2p.npages_max;
	for (uint64_t p = 0; p < top; p++) {
		if (!ftl->l2p.pages[p])
			continue;
		npages++;
		page_total += page_bytes(page_count(p, next_id));
	}
	pthread_mutex_unlock(&ftl->l2p.id_lock);
	for (uint32_t i = 0; i < ftl->nsegs; i++) {
		uint8_t st = atomic_load(&ftl->segs[i].state);
		if (st != FTL_SEG_OPEN && st != FTL_SEG_CLOSED)
			continue;
		pthread_mutex_lock(&ftl->seg_stripes[i % FTL_SEG_STRIPES]);
		npack_offs += ftl->segs[i].npacks;
		pthread_mutex_unlock(&ftl->seg_stripes[i % FTL_SEG_STRIPES]);
	}
	size_t bytes = ckpt_fixed_bytes(ftl->nsegs, npack_offs) + page_total;
	size_t alloc = (bytes + ftl->bs - 1) / ftl->bs * ftl->bs;
	uint8_t *buf = aligned_alloc(4096, (alloc + 4095) / 4096 * 4096);
	if (!buf)
		return -ENOMEM;
	memset(buf, 0, alloc);

	struct ftl_ckpt_disk *h = (struct ftl_ckpt_disk *)buf;
	h->magic = FTL_CKPT_MAGIC;
	h->version = FTL_CKPT_VERSION;
	h->nsegs = ftl->nsegs;
	memcpy(h->uuid, ftl->sb.uuid, sizeof(h->uuid));
	h->gen = gen;
	h->bytes = bytes;
	pthread_mutex_lock(&ftl->seg_lock);
	h->next_seq = ftl->next_seq;
	pthread_mutex_unlock(&ftl->seg_lock);
	h->clock = atomic_load(&ftl->clock);
	h->next_birth = atomic_load(&ftl->next_birth);
	h->next_id = next_id;
	h->npack_offs = npack_offs;
	h->npages = (uint32_t)npages;
	h->block_size = ftl->bs;
	h->segment_size = ftl->seg_size;

	struct ftl_ckpt_seg_disk *cs = (void *)(buf + sizeof(*h));
	uint32_t *packs = (void *)(cs + ftl->nsegs);
	uint64_t k = 0;
	for (uint32_t i = 0; i < ftl->nsegs; i++) {
		struct ftl_seg *s = &ftl->segs[i];
		uint8_t st = atomic_load(&s->state);
		cs[i].seq = s->seq;
		cs[i].erase_count = atomic_load(&s->erase_count);
		if (st != FTL_SEG_OPEN && st != FTL_SEG_CLOSED) {
			cs[i].state = FTL_CKPT_SEG_FREE; /* free, or an older checkpoint's */
			continue;
		}
		cs[i].state = st == FTL_SEG_OPEN && seg_is_stream_current(ftl, i)
		                  ? FTL_CKPT_SEG_OPEN
		                  : FTL_CKPT_SEG_CLOSED;
		cs[i].stream = atomic_load(&s->stream);
		cs[i].open_clock = s->open_clock;
		cs[i].close_clock = s->close_clock;
		cs[i].birth_sum = atomic_load(&s->birth_sum);
		cs[i].birth_n = atomic_load(&s->birth_n);
		cs[i].end = s->end;
		pthread_mutex_lock(&ftl->seg_stripes[i % FTL_SEG_STRIPES]);
		cs[i].npacks = s->npacks;
		if (s->npacks) /* memcpy from a NULL pack_offs is undefined even for 0 bytes */
			memcpy(packs + k, s->pack_offs, (size_t)s->npacks * sizeof(uint32_t));
		pthread_mutex_unlock(&ftl->seg_stripes[i % FTL_SEG_STRIPES]);
		k += cs[i].npacks;
	}
	uint8_t *pg = (uint8_t *)packs + align8(npack_offs * sizeof(uint32_t));
	for (uint64_t p = 0; p < top; p++) {
		if (!atomic_load_explicit((_Atomic(_Atomic(uint64_t) *) *)&ftl->l2p.pages[p],
		                          memory_order_acquire))
			continue;
		struct page_head ph = {.page = p, .count = page_count(p, next_id)};
		memcpy(pg, &ph, sizeof(ph));
		uint64_t *locs = (uint64_t *)(pg + sizeof(ph));
		uint64_t *words = locs + ph.count;
		for (uint32_t j = 0; j < ph.count; j++) {
			uint64_t id = (p << FTL_L2P_PAGE_SHIFT) | j;
			uint64_t loc = ftl_l2p_get(&ftl->l2p, id);
			locs[j] = loc;
			words[j] = loc ? ftl_l2p_get_word(&ftl->l2p, id) : 0;
		}
		pg += page_bytes(ph.count);
	}
	*out = buf;
	*out_bytes = bytes;
	return 0;
}

/* Writes the buffer into checkpoint segments; on success SEGS holds them (NPARTS of them). */
static int write_parts(struct ftl *ftl, uint64_t gen, const uint8_t *buf, size_t bytes,
                       uint32_t *segs, uint32_t nparts)
{
	uint32_t cap = part_cap(ftl), got = 0;
	int rc = 0;

	for (uint32_t k = 0; k < nparts && !rc; k++) {
		uint32_t segi;
		/* Header written once, as a checkpoint part's (zones take no second write). */
		rc = ftl_seg_alloc_ckpt(ftl, gen, k, nparts, &segi);
		if (rc)
			break;
		segs[got++] = segi;
		struct ftl_seg *s = &ftl->segs[segi];
		size_t off = (size_t)k * cap;
		size_t n = bytes - off < cap ? bytes - off : cap;
		n = (n + ftl->bs - 1) / ftl->bs * ftl->bs;
		rc = ftl_dev_write(ftl->dev, buf + off, n, ftl_seg_dev_off(ftl, segi) + ftl->bs);
		if (!rc) {
			atomic_fetch_add(&ftl->dev_bytes, n);
			s->end = ftl->bs + (uint32_t)n;
		}
		ftl_zone_seg_closed(ftl, segi); /* not active while the next part is written */
	}
	if (!rc)
		rc = ftl_flush(ftl);
	if (rc)
		for (uint32_t k = 0; k < got; k++)
			(void)ftl_seg_release(ftl, segs[k]);
	return rc;
}

int ftl_checkpoint(struct ftl *ftl)
{
	uint8_t *buf = NULL;
	size_t bytes = 0;
	uint32_t *segs = NULL;
	int rc;

	if (ftl->rdonly)
		return -EROFS;
	pthread_mutex_lock(&ftl->ckpt_lock);
	uint64_t gen = ftl->ckpt_gen + 1;
	/* Every appended chunk into a written pack: the L2P copied below then points only at
	 * packs on the device (flushed with the checkpoint), never into a pack buffer. */
	rc = world_stop(ftl);
	uint64_t opened = atomic_load(&ftl->segs_opened);
	if (!rc)
		rc = capture(ftl, gen, &buf, &bytes);
	if (!rc)
		atomic_store(&ftl->ckpt_dirty, false);
	world_start(ftl);
	if (rc)
		goto out;

	struct ftl_ckpt_disk *h = (struct ftl_ckpt_disk *)buf;
	h->crc = 0;
	h->crc = ftl_crc32c(0, buf, bytes);
	uint32_t nparts = (uint32_t)((bytes + part_cap(ftl) - 1) / part_cap(ftl));
	/* Room for it beyond the GC reserve and a little for writers: cleaned for if need be
	 * (lock order: nothing GC takes is held here), or no checkpoint this time. */
	uint32_t need = ftl->reserve + nparts + 2;
	if (atomic_load(&ftl->nfree) < need)
		(void)ftl_gc_reclaim(ftl, need);
	if (atomic_load(&ftl->nfree) < need) {
		rc = -ENOSPC;
		goto out_skip;
	}
	segs = calloc(nparts, sizeof(*segs));
	if (!segs) {
		rc = -ENOMEM;
		goto out_skip;
	}
	rc = write_parts(ftl, gen, buf, bytes, segs, nparts);
	if (rc)
		goto out_skip;
	/* The new one is durable: the old one's segments go back to the free pool. */
	uint32_t *old = ftl->ckpt_segs, nold = ftl->ckpt_nsegs;
	ftl->ckpt_segs = segs;
	ftl->ckpt_nsegs = nparts;
	ftl->ckpt_gen = gen;
	ftl->ckpt_segs_opened = opened;
	segs = NULL;
	atomic_fetch_add(&ftl->ckpt_writes, 1);
	atomic_fetch_add(&ftl->ckpt_bytes, bytes);
	for (uint32_t k = 0; k < nold; k++)
		(void)ftl_seg_release(ftl, old[k]);
	free(old);
	goto out;
out_skip:
	atomic_store(&ftl->ckpt_dirty, true);
	atomic_fetch_add(&ftl->ckpt_skipped, 1);
out:
	pthread_mutex_unlock(&ftl->ckpt_lock);
	free(segs);
	free(buf);
	return rc;
}

int ftl_checkpoint_maybe(struct ftl *ftl)
{
	if (ftl->rdonly || ftl->nsegs < FTL_CKPT_MIN_SEGS)
		return 0;
	pthread_mutex_lock(&ftl->ckpt_lock);
	uint64_t since = atomic_load(&ftl->segs_opened) - ftl->ckpt_segs_opened;
	uint64_t bound = ftl->nsegs / 32;
	if (bound < FTL_CKPT_MIN_INTERVAL)
		bound = FTL_CKPT_MIN_INTERVAL;
	if (bound < 8ull * ftl->ckpt_nsegs)
		bound = 8ull * ftl->ckpt_nsegs;
	pthread_mutex_unlock(&ftl->ckpt_lock);
	if (since < bound)
		return 0;
	int rc = ftl_checkpoint(ftl);
	return rc ? rc : 1;
}

/* At close: a checkpoint when anything changed, so the next open walks nothing. */
void ftl_checkpoint_at_close(struct ftl *ftl)
{
	if (ftl->rdonly || ftl->nsegs < FTL_CKPT_MIN_SEGS || !atomic_load(&ftl->ckpt_dirty))
		return;
	(void)ftl_checkpoint(ftl);
}

/* ---- reading one back ---------------------------------------------------------------------- */

void ftl_ckpt_image_free(struct ftl_ckpt_image *ck)
{
	if (!ck)
		return;
	free(ck->buf);
	free(ck->pack_first);
	free(ck->page_at);
	free(ck);
}

const struct ftl_ckpt_disk *ftl_ckpt_header(const struct ftl_ckpt_image *ck)
{
	return ck->h;
}

const struct ftl_ckpt_seg_disk *ftl_ckpt_seg(const struct ftl_ckpt_image *ck, uint32_t segi)
{
	return &ck->segs[segi];
}

const uint32_t *ftl_ckpt_pack_offs(const struct ftl_ckpt_image *ck, uint32_t segi)
{
	return ck->packs + ck->pack_first[segi];
}

uint32_t ftl_ckpt_npages(const struct ftl_ckpt_image *ck)
{
	return ck->h->npages;
}

uint64_t ftl_ckpt_page(const struct ftl_ckpt_image *ck, uint32_t i, uint32_t *count,
                       const uint64_t **locs, const uint64_t **words)
{
	const uint8_t *pg = ck->buf + ck->page_at[i];
	struct page_head ph;
	memcpy(&ph, pg, sizeof(ph));
	*count = ph.count;
	*locs = (const uint64_t *)(pg + sizeof(ph));
	*words = *locs + ph.count;
	return ph.page;
}

/* Everything in a checkpoint is checked before it is used, as if a stranger wrote it. */
static bool image_valid(struct ftl *ftl, struct ftl_ckpt_image *ck, size_t bytes)
{
	const struct ftl_ckpt_disk *h = ck->h;
	if (h->nsegs != ftl->nsegs || h->bytes != bytes || h->npages > ftl->l2p.npages_max ||
	    h->npack_offs > (uint64_t)ftl->nsegs * (ftl->seg_size / ftl->bs) ||
	    ckpt_fixed_bytes(h->nsegs, h->npack_offs) > bytes || h->next_id > FTL_L2P_ID_MAX + 1 ||
	    h->next_birth > FTL_BIRTH_LIMIT || h->next_seq >= FTL_SEQ_LIMIT)
		return false;
	ck->segs = (const void *)(ck->buf + sizeof(*h));
	ck->packs = (const void *)(ck->segs + h->nsegs);
	ck->pack_first = calloc(h->nsegs ? h->nsegs : 1, sizeof(*ck->pack_first));
	ck->page_at = calloc(h->npages ? h->npages : 1, sizeof(*ck->page_at));
	if (!ck->pack_first || !ck->page_at)
		return false;
	/* The pages: each inside the buffer, counts that end no later than next_id. */
	size_t at = ckpt_fixed_bytes(h->nsegs, h->npack_offs);
	for (uint32_t i = 0; i < h->npages; i++) {
		struct page_head ph;
		if (bytes - at < sizeof(ph))
			return false;
		memcpy(&ph, ck->buf + at, sizeof(ph));
		if (ph.page >= ftl->l2p.npages_max || ph.count == 0 ||
		    ph.count > FTL_L2P_PAGE_SIZE ||
		    (ph.page << FTL_L2P_PAGE_SHIFT) + ph.count > h->next_id ||
		    bytes - at < page_bytes(ph.count))
			return false;
		ck->page_at[i] = at;
		at += page_bytes(ph.count);
	}
	if (at != bytes)
		return false;
	uint64_t k = 0;
	for (uint32_t i = 0; i < h->nsegs; i++) {
		const struct ftl_ckpt_seg_disk *s = &ck->segs[i];
		ck->pack_first[i] = k;
		if (s->state > FTL_CKPT_SEG_OPEN || s->seq >= FTL_SEQ_LIMIT ||
		    (s->state != FTL_CKPT_SEG_FREE && s->seq >= FTL_SEQ_ALLOC_LIMIT))
			return false;
		if (s->state == FTL_CKPT_SEG_FREE)
			continue;
		if (s->end < ftl->bs || s->end > ftl->seg_size || s->npacks > h->npack_offs - k)
			return false;
		uint32_t prev = 0;
		for (uint32_t j = 0; j < s->npacks; j++) {
			uint32_t off = ck->packs[k + j];
			if (off < ftl->bs || off <= prev || off >= s->end || off % ftl->bs)
				return false;
			prev = off;
		}
		k += s->npacks;
	}
	if (k != h->npack_offs)
		return false;
	uint64_t prevp = 0;
	for (uint32_t i = 0; i < h->npages; i++) {
		const uint64_t *locs, *words;
		uint32_t count;
		uint64_t p = ftl_ckpt_page(ck, i, &count, &locs, &words);
		if (i && p <= prevp)
			return false;
		prevp = p;
		for (uint32_t j = 0; j < count; j++) {
			uint64_t loc = locs[j];
			if (!loc)
				continue;
			uint32_t seg = ftl_loc_seg(loc);
			if (!ftl_loc_is_chunk(loc) || seg >= h->nsegs ||
			    ck->segs[seg].state == FTL_CKPT_SEG_FREE ||
			    ftl_loc_off(loc) < ftl->bs ||
			    (uint64_t)ftl_loc_off(loc) + ftl_chunk_footprint(ftl_loc_len(loc)) >
			        ck->segs[seg].end)
				return false;
		}
	}
	return true;
}

/* Reads checkpoint GEN from its parts (PARTS[k] = segment of part k) and checks it. */
static int read_image(struct ftl *ftl, const uint32_t *parts, uint32_t nparts,
                      struct ftl_ckpt_image **out)
{
	uint32_t cap = part_cap(ftl);
	struct ftl_ckpt_disk h;
	uint8_t *blk = aligned_alloc(4096, (ftl->bs + 4095) / 4096 * 4096);
	struct ftl_ckpt_image *ck = NULL;
	int rc;

	*out = NULL;
	if (!blk)
		return -ENOMEM;
	rc = ftl_dev_read(ftl->dev, blk, ftl->bs, ftl_seg_dev_off(ftl, parts[0]) + ftl->bs);
	if (rc)
		goto out;
	memcpy(&h, blk, sizeof(h));
	if (h.magic != FTL_CKPT_MAGIC || h.version != FTL_CKPT_VERSION ||
	    memcmp(h.uuid, ftl->sb.uuid, sizeof(h.uuid)) || h.block_size != ftl->bs ||
	    h.segment_size != ftl->seg_size || h.bytes < sizeof(h) ||
	    h.bytes > (uint64_t)nparts * cap || h.bytes <= (uint64_t)(nparts - 1) * cap)
		goto out; /* not a checkpoint we can use: rc 0, no image */
	ck = calloc(1, sizeof(*ck));
	size_t alloc = (h.bytes + ftl->bs - 1) / ftl->bs * ftl->bs;
	if (!ck || !(ck->buf = aligned_alloc(4096, (alloc + 4095) / 4096 * 4096))) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint32_t k = 0; k < nparts; k++) {
		size_t off = (size_t)k * cap;
		size_t n = alloc - off < cap ? alloc - off : cap;
		rc = ftl_dev_read(ftl->dev, ck->buf + off, n,
		                  ftl_seg_dev_off(ftl, parts[k]) + ftl->bs);
		if (rc)
			goto out;
	}
	ck->h = (const struct ftl_ckpt_disk *)ck->buf;
	struct ftl_ckpt_disk *hw = (struct ftl_ckpt_disk *)ck->buf;
	uint32_t crc = hw->crc;
	hw->crc = 0;
	bool ok = ftl_crc32c(0, ck->buf, h.bytes) == crc;
	hw->crc = crc;
	if (ok && image_valid(ftl, ck, h.bytes)) {
		*out = ck;
		ck = NULL;
	}
out:
	ftl_ckpt_image_free(ck);
	free(blk);
	return rc == -ENOMEM ? rc : 0; /* an unreadable checkpoint is just not used */
}

struct cand {
	uint64_t gen;
	uint32_t part, nparts, seg;
};

static int cand_cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	if (x->gen != y->gen)
		return x->gen > y->gen ? -1 : 1; /* newest first */
	return x->part < y->part ? -1 : x->part > y->part;
}

int ftl_ckpt_load(struct ftl *ftl, const struct ftl_seg_disk *hdrs, const bool *hdr_ok,
                  struct ftl_ckpt_image **out, uint32_t **parts_out, uint32_t *nparts_out)
{
	struct cand *c = NULL;
	uint32_t n = 0;
	int rc = 0;

	*out = NULL;
	*parts_out = NULL;
	*nparts_out = 0;
	for (uint32_t i = 0; i < ftl->nsegs; i++)
		n += hdr_ok[i] && hdrs[i].stream == FTL_SEG_STREAM_CKPT;
	if (!n)
		return 0;
	c = calloc(n, sizeof(*c));
	if (!c)
		return -ENOMEM;
	n = 0;
	for (uint32_t i = 0; i < ftl->nsegs; i++)
		if (hdr_ok[i] && hdrs[i].stream == FTL_SEG_STREAM_CKPT)
			c[n++] = (struct cand){hdrs[i].ckpt_gen, hdrs[i].ckpt_part,
			                       hdrs[i].ckpt_nparts, i};
	qsort(c, n, sizeof(*c), cand_cmp);
	for (uint32_t a = 0; a < n && !*out && !rc;) {
		uint32_t b = a;
		while (b < n && c[b].gen == c[a].gen)
			b++;
		/* Parts 0..nparts-1, each once, all agreeing on nparts. */
		uint32_t np = c[a].nparts;
		bool whole = np == b - a && np > 0;
		for (uint32_t k = 0; whole && k < np; k++)
			whole = c[a + k].part == k && c[a + k].nparts == np;
		if (whole) {
			uint32_t *parts = calloc(np, sizeof(*parts));
			if (!parts) {
				rc = -ENOMEM;
				break;
			}
			for (uint32_t k = 0; k < np; k++)
				parts[k] = c[a + k].seg;
			rc = read_image(ftl, parts, np, out);
			if (*out && ftl_ckpt_header(*out)->gen == c[a].gen) {
				*parts_out = parts;
				*nparts_out = np;
			} else {
				ftl_ckpt_image_free(*out);
				*out = NULL;
				free(parts);
			}
		}
		a = b;
	}
	free(c);
	return rc;
}
