/* flash/ftl_scrub.c - the scrub: reads every used segment and checks its header, its pack
 * summaries and the checksum of every live chunk, and the current checkpoint's segments, so bit
 * rot is found before a read (or the next open) needs it.
 *
 * Never writes, never repairs, and never holds a lock across device I/O: a segment is read
 * optimistically and its copy is used only if the segment's sequence number did not change
 * while it was read (ftl_seg_release changes it before it writes or TRIMs anything).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "ftl_int.h"

static const char *const scrub_kind_names[FTL_SCRUB_KIND_COUNT] = {
#define FTL_SCRUB_KIND_NAME(n, s) [FTL_SCRUB_##n] = s,
    FTL_SCRUB_KIND_LIST(FTL_SCRUB_KIND_NAME)
#undef FTL_SCRUB_KIND_NAME
};

const char *ftl_scrub_kind_name(enum ftl_scrub_kind kind)
{
	return (unsigned)kind < FTL_SCRUB_KIND_COUNT ? scrub_kind_names[kind] : "unknown";
}

/* A byte range of a segment that no good pack summary describes (a damaged or unreadable
 * summary, a bad segment header, the gap a failed pack write left): its live chunks are found
 * through the L2P instead. */
struct scrub_region {
	uint32_t a, b;
	bool summary_bad; /* readable chunks in it are at risk (FTL_SCRUB_SUMMARY) */
};

struct scrub_ctx {
	struct ftl *ftl;
	struct ftl_scrub_result *res;
	uint8_t *buf;   /* one segment */
	uint8_t *bad;   /* per FTL block of the segment: the device could not read it */
	uint8_t *chunk; /* FTL_CHUNK_MAX: confirming reads */
	uint32_t *offs; /* pack starts of the segment (the in-memory cache) */
	uint32_t noffs, cap_offs;
	struct scrub_region *regs;
	uint32_t nregs, cap_regs;
};

/* What the segment was when we looked: a copy read in between is used only if it still is. */
struct seg_view {
	uint8_t state;
	uint64_t seq;
	uint32_t end; /* bytes on the device: the sealed part of an open segment */
};

static void seg_snapshot(struct ftl *ftl, uint32_t segi, struct seg_view *v)
{
	struct ftl_seg *s = &ftl->segs[segi];

	pthread_mutex_lock(&ftl->seg_lock);
	v->state = atomic_load(&s->state);
	v->seq = s->seq;
	/* A closed segment's end no longer moves; an open one's belongs to its stream. */
	v->end = v->state == FTL_SEG_CLOSED ? s->end : 0;
	pthread_mutex_unlock(&ftl->seg_lock);
}

/* Fills V for segment SEGI; false when it holds nothing to check (free, or it changed under us
 * twice in a row: the next scrub will see it). */
static bool seg_view_get(struct ftl *ftl, uint32_t segi, struct seg_view *v)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		seg_snapshot(ftl, segi, v);
		if (v->state == FTL_SEG_FREE)
			return false;
		if (v->state == FTL_SEG_CLOSED)
			return v->end > ftl->bs;
		/* Open: what its stream has sealed is on the device and stays as it is. Taking
		 * a stream lock with nothing else held keeps invariant 5. */
		uint8_t sid = atomic_load(&ftl->segs[segi].stream);
		if (sid >= FTL_STREAM_COUNT)
			return false;
		struct ftl_stream *st = &ftl->streams[sid];
		bool owned = false;
		pthread_mutex_lock(&st->lock);
		if (st->seg == segi) {
			v->end = st->pack_start;
			owned = true;
		}
		pthread_mutex_unlock(&st->lock);
		if (owned)
			return v->end > ftl->bs;
		/* Closed (or freed) between the two looks: look again. */
	}
	return false;
}

static bool seg_view_same(struct ftl *ftl, uint32_t segi, const struct seg_view *v)
{
	struct seg_view now;

	seg_snapshot(ftl, segi, &now);
	return now.state != FTL_SEG_FREE && now.seq == v->seq;
}

/* Copies the cached pack starts below END. False if the cache is unusable (it is only a
 * cache: ftl_seg_add_pack skips an entry when it cannot grow it); the walk then follows the
 * headers. */
static int offs_get(struct scrub_ctx *c, uint32_t segi, uint32_t end, bool *usable)
{
	struct ftl *ftl = c->ftl;
	struct ftl_seg *s = &ftl->segs[segi];
	pthread_mutex_t *l = &ftl->seg_stripes[segi % FTL_SEG_STRIPES];
	int rc = 0;

	c->noffs = 0;
	pthread_mutex_lock(l);
	if (s->npacks > c->cap_offs) {
		uint32_t *n = realloc(c->offs, s->npacks * sizeof(*n));
		if (!n) {
			rc = -ENOMEM;
			goto out_unlock;
		}
		c->offs = n;
		c->cap_offs = s->npacks;
	}
	for (uint32_t i = 0; i < s->npacks; i++)
		if (s->pack_offs[i] < end)
			c->offs[c->noffs++] = s->pack_offs[i];
out_unlock:
	pthread_mutex_unlock(l);
	if (rc)
		return rc;
	*usable = c->noffs > 0 && c->offs[0] >= ftl->bs;
	for (uint32_t i = 1; i < c->noffs && *usable; i++)
		if (c->offs[i] <= c->offs[i - 1])
			*usable = false;
	return 0;
}

/* Reads [0, END) of the segment into c->buf: one read, or, when the device fails it, smaller
 * ones down to single blocks so the damage is located. Marks unreadable blocks in c->bad. */
static void seg_read(struct scrub_ctx *c, uint32_t segi, uint32_t end)
{
	struct ftl *ftl = c->ftl;
	struct ftl_scrub_result *res = c->res;
	uint64_t base = ftl_seg_dev_off(ftl, segi);
	const uint32_t piece = 1u << 20;
	bool in_run = false;

	memset(c->bad, 0, ftl->seg_size / ftl->bs);
	res->bytes_checked += end;
	if (ftl_dev_read(ftl->dev, c->buf, end, base) == 0)
		return;
	for (uint32_t p = 0; p < end; p += piece) {
		uint32_t n = end - p < piece ? end - p : piece;
		if (ftl_dev_read(ftl->dev, c->buf + p, n, base + p) == 0) {
			in_run = false;
			continue;
		}
		for (uint32_t o = p; o < p + n; o += ftl->bs) {
			if (ftl_dev_read(ftl->dev, c->buf + o, ftl->bs, base + o) == 0) {
				in_run = false;
				continue;
			}
			memset(c->buf + o, 0, ftl->bs);
			c->bad[o / ftl->bs] = 1;
			res->unreadable_bytes += ftl->bs;
			if (!in_run)
				res->unreadable_ranges++;
			in_run = true;
		}
	}
}

static bool range_bad(const struct scrub_ctx *c, uint32_t off, uint32_t len)
{
	for (uint32_t b = off / c->ftl->bs; b <= (off + len - 1) / c->ftl->bs; b++)
		if (c->bad[b])
			return true;
	return false;
}

static void list_add(struct scrub_ctx *c, uint64_t id, uint32_t segi, uint32_t off, uint32_t len,
                     enum ftl_scrub_kind kind)
{
	struct ftl_scrub_result *res = c->res;

	if (res->nlisted >= FTL_SCRUB_LIST_MAX)
		return;
	res->damaged[res->nlisted++] = (struct ftl_scrub_damage){
	    .addr = {id}, .seg = segi, .off = off, .len = len, .kind = (uint8_t)kind};
}

/* A chunk our copy says is damaged is read again the ordinary way: a race with GC or a writer
 * (invariant 4) then reads fine or is gone, and real damage is counted by ftl_read exactly as
 * for any reader. From the device: the bytes of a pack written moments ago kept in memory
 * would read fine while its copy on the device is damaged. */
static void confirm(struct scrub_ctx *c, uint64_t id, uint32_t segi, uint32_t off, uint32_t len,
                    enum ftl_scrub_kind kind)
{
	ftl_read_device_only(true);
	int n = ftl_read(c->ftl, (struct ftl_addr){id}, c->chunk, FTL_CHUNK_MAX, NULL);
	ftl_read_device_only(false);

	if (n != -EIO)
		return;
	c->res->damaged_chunks++;
	list_add(c, id, segi, off, len, kind);
}

/* Checks the live chunk ID at OFF. E is its summary entry (index IDX) when the pack's summary
 * checked out, NULL when the chunk was found through the L2P. */
static void check_chunk(struct scrub_ctx *c, uint32_t segi, uint32_t off, uint64_t id, uint32_t len,
                        const struct ftl_pack_entry_disk *e, uint32_t idx, bool summary_bad)
{
	struct ftl_chunk_disk hdr;
	const uint8_t *p = c->buf + off;

	c->res->chunks_checked++;
	if (range_bad(c, off, sizeof(hdr) + len)) {
		confirm(c, id, segi, off, len, FTL_SCRUB_UNREADABLE);
		return;
	}
	memcpy(&hdr, p, sizeof(hdr));
	bool ok = ftl_chunk_crc(id, ftl_len_flags(len, hdr.flags), p + sizeof(hdr), len) == hdr.crc;
	if (ok && e)
		ok = hdr.crc == e->crc && hdr.flags == (uint8_t)(e->len_flags >> 24);
	if (!ok) {
		confirm(c, id, segi, off, len, FTL_SCRUB_DATA);
		return;
	}
	/* Readable, but what the scan at open (or ftl_read_hash) needs to find it is not. */
	if (summary_bad || (e && hdr.entry != idx)) {
		c->res->summary_chunks++;
		list_add(c, id, segi, off, len, FTL_SCRUB_SUMMARY);
	}
}

/* A summary entry whose id has no live chunk: a freed chunk not yet collected, or one the scan
 * at open dropped because it failed its checksum. Only the second kind is damaged. */
static void check_lost(struct scrub_ctx *c, uint32_t segi, uint32_t off, uint32_t len,
                       const struct ftl_pack_entry_disk *e)
{
	struct ftl_chunk_disk hdr;
	const uint8_t *p = c->buf + off;

	if (e->id > FTL_L2P_ID_MAX || range_bad(c, off, sizeof(hdr) + len))
		return;
	memcpy(&hdr, p, sizeof(hdr));
	if (hdr.crc == e->crc &&
	    ftl_chunk_crc(e->id, e->len_flags, p + sizeof(hdr), len) == hdr.crc)
		return;
	c->res->lost_chunks++;
	atomic_fetch_add(&c->ftl->checksum_errors, 1);
	list_add(c, e->id, segi, off, len, FTL_SCRUB_LOST);
}

static int region_add(struct scrub_ctx *c, uint32_t a, uint32_t b, bool summary_bad)
{
	if (a >= b)
		return 0;
	if (c->nregs == c->cap_regs) {
		uint32_t ncap = c->cap_regs ? 2 * c->cap_regs : 16;
		struct scrub_region *n = realloc(c->regs, ncap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		c->regs = n;
		c->cap_regs = ncap;
	}
	c->regs[c->nregs++] = (struct scrub_region){a, b, summary_bad};
	return 0;
}

/* Walks a pack whose summary checked out: each entry names a chunk, in order. */
static int check_pack(struct scrub_ctx *c, uint32_t segi, uint32_t a)
{
	const struct ftl_pack_disk *ph = (const void *)(c->buf + a);
	const struct ftl_pack_entry_disk *e = (const void *)(c->buf + a + sizeof(*ph));
	uint32_t cur = a + ph->hdr_blocks * c->ftl->bs, end = a + ph->total_bytes;

	for (uint32_t i = 0; i < ph->nentries; i++) {
		uint32_t len = e[i].len_flags & FTL_LEN_MASK;
		uint32_t fp = ftl_chunk_footprint(len);
		if (len == 0 || len > FTL_CHUNK_MAX || cur + fp > end)
			return region_add(c, cur, end, true); /* a sound crc over unsound entries */
		uint64_t loc = ftl_loc_make(segi, cur, len);
		uint64_t now = ftl_l2p_get(&c->ftl->l2p, e[i].id);
		if (now == loc)
			check_chunk(c, segi, cur, e[i].id, len, &e[i], i, false);
		else if (now == 0)
			check_lost(c, segi, cur, len, &e[i]);
		/* else: an older copy (GC moved it, or the id was reused): not ours to judge */
		cur += fp;
	}
	return 0;
}

/* True when the pack header at A is readable, checks out and ends by LIMIT. */
static bool pack_ok(struct scrub_ctx *c, uint64_t seq, uint32_t a, uint32_t limit)
{
	struct ftl *ftl = c->ftl;
	struct ftl_pack_disk *ph = (void *)(c->buf + a);

	/* Bound what ftl_pack_header_ok reads by what we read before trusting the header. */
	if (a + ftl->bs > limit || range_bad(c, a, ftl->bs) || ph->nentries == 0 ||
	    ph->nentries > ftl->max_entries)
		return false;
	uint32_t hb = ftl_pack_hdr_blocks(ph->nentries, ftl->bs);
	if (a + hb * ftl->bs > limit || range_bad(c, a, hb * ftl->bs))
		return false;
	return ftl_pack_header_ok(ftl, ph, seq, a) && a + ph->total_bytes <= limit;
}

/* The header of segment SEGI, read into c->buf, into H: true when it is sound and ours. */
static bool seg_header_read(struct scrub_ctx *c, uint32_t segi, uint64_t seq,
                            struct ftl_seg_disk *h)
{
	if (range_bad(c, 0, c->ftl->bs))
		return false;
	memcpy(h, c->buf, sizeof(*h));
	uint32_t crc = h->crc;
	h->crc = 0;
	return h->magic == FTL_SEG_MAGIC && ftl_crc32c(0, h, sizeof(*h)) == crc &&
	       !memcmp(h->uuid, c->ftl->sb.uuid, sizeof(h->uuid)) && h->seg_index == segi &&
	       h->seq == seq && h->state == FTL_SEG_DISK_OPEN;
}

static bool seg_header_ok(struct scrub_ctx *c, uint32_t segi, uint64_t seq)
{
	struct ftl_seg_disk h;

	return seg_header_read(c, segi, seq, &h);
}

/* Splits [bs, END) into packs with good summaries (checked entry by entry) and regions left to
 * the L2P pass. */
static int walk_packs(struct scrub_ctx *c, uint32_t segi, uint64_t seq, uint32_t end, bool use_offs)
{
	struct ftl *ftl = c->ftl;
	int rc;

	c->nregs = 0;
	if (!seg_header_ok(c, segi, seq)) {
		/* The scan at open would take this segment for a free one. */
		c->res->summary_errors++;
		atomic_fetch_add(&ftl->checksum_errors, 1);
		return region_add(c, ftl->bs, end, true);
	}
	uint32_t pos = ftl->bs, k = 0;
	while (pos < end) {
		uint32_t a = use_offs ? (k < c->noffs ? c->offs[k] : end) : pos;
		if (a > pos) { /* not described by any pack: a failed pack write */
			rc = region_add(c, pos, a, false);
			if (rc)
				return rc;
			pos = a;
			continue;
		}
		if (a >= end)
			break;
		uint32_t limit = use_offs && k + 1 < c->noffs ? c->offs[k + 1] : end;
		k++;
		if (pack_ok(c, seq, a, limit)) {
			rc = check_pack(c, segi, a);
			pos = a + ((struct ftl_pack_disk *)(c->buf + a))->total_bytes;
		} else {
			c->res->summary_errors++;
			atomic_fetch_add(&ftl->checksum_errors, 1);
			rc = region_add(c, a, use_offs ? limit : end, true);
			pos = use_offs ? limit : end;
		}
		if (rc)
			return rc;
	}
	return 0;
}

/* One pass over the L2P for the live chunks in the segment's regions. Costs a look at every
 * chunk id, but only for segments whose summaries failed, which should be rare. */
static void check_regions(struct scrub_ctx *c, uint32_t segi, uint32_t end)
{
	struct ftl *ftl = c->ftl;
	uint64_t next;

	if (!c->nregs)
		return;
	pthread_mutex_lock(&ftl->l2p.id_lock);
	next = ftl->l2p.next_id;
	pthread_mutex_unlock(&ftl->l2p.id_lock);
	for (uint64_t id = 0; id < next; id++) {
		uint64_t loc = ftl_l2p_get(&ftl->l2p, id);
		if (!loc || ftl_loc_seg(loc) != segi)
			continue;
		uint32_t off = ftl_loc_off(loc), len = ftl_loc_len(loc);
		if (off + sizeof(struct ftl_chunk_disk) + len > end)
			continue; /* still in its stream's pack buffer */
		for (uint32_t r = 0; r < c->nregs; r++) {
			if (off >= c->regs[r].a && off < c->regs[r].b) {
				check_chunk(c, segi, off, id, len, NULL, 0, c->regs[r].summary_bad);
				break;
			}
		}
	}
}

/* Checks checkpoint part K of NPARTS of checkpoint GEN in segment SEGI, read into c->buf. */
static bool ckpt_header_ok(struct scrub_ctx *c, uint32_t segi, uint64_t seq, uint64_t gen,
                           uint32_t k, uint32_t nparts)
{
	struct ftl_seg_disk h;

	return seg_header_read(c, segi, seq, &h) && h.stream == FTL_SEG_STREAM_CKPT &&
	       h.ckpt_gen == gen && h.ckpt_part == k && h.ckpt_nparts == nparts;
}

/* The current checkpoint: each part's segment header, and the checksum of the whole (it runs
 * over the parts in order, ftl_ckpt.c). Its segments cannot be freed while ckpt_lock is held,
 * but that lock is not held across the reads: the checkpoint's number is looked at again after
 * them, and a checkpoint replaced meanwhile is not judged (the next scrub sees the new one). */
static int scrub_ckpt(struct scrub_ctx *c)
{
	struct ftl *ftl = c->ftl;
	uint32_t cap = ftl_ckpt_part_cap(ftl), n, errors = 0;
	uint32_t *order;
	uint64_t gen, *seqs;

	pthread_mutex_lock(&ftl->ckpt_lock);
	gen = ftl->ckpt_gen;
	n = ftl->ckpt_nsegs;
	order = calloc(n ? n : 1, sizeof(*order));
	seqs = calloc(n ? n : 1, sizeof(*seqs));
	if (!order || !seqs) {
		pthread_mutex_unlock(&ftl->ckpt_lock);
		free(order);
		free(seqs);
		return -ENOMEM;
	}
	/* Part k's segment, by the part number the allocation or the scan recorded. */
	bool parts_ok = true;
	for (uint32_t i = 0; i < n; i++) {
		struct ftl_seg *s = &ftl->segs[ftl->ckpt_segs[i]];
		if (s->ckpt_part >= n || s->ckpt_nparts != n) {
			parts_ok = false;
			continue;
		}
		order[s->ckpt_part] = ftl->ckpt_segs[i];
		seqs[s->ckpt_part] = s->seq;
	}
	pthread_mutex_unlock(&ftl->ckpt_lock);
	if (!n || !parts_ok)
		goto out_free; /* none, or the in-memory table disagrees: ckpt_load checked it */

	uint64_t bytes = 0;
	uint32_t want = 0, crc = 0;
	bool content_bad = false;
	for (uint32_t k = 0; k < n; k++) {
		/* Part k holds content bytes [k * cap, ...), header block first. */
		uint64_t left =
		    k == 0 ? cap : (bytes > (uint64_t)k * cap ? bytes - (uint64_t)k * cap : 0);
		uint32_t len = left < cap ? (uint32_t)left : cap;
		uint32_t end = ftl->bs + (len + ftl->bs - 1) / ftl->bs * ftl->bs;
		seg_read(c, order[k], end);
		if (!ckpt_header_ok(c, order[k], seqs[k], gen, k, n))
			errors++;
		if (content_bad)
			continue;
		uint8_t *p = c->buf + ftl->bs;
		if (k == 0) {
			struct ftl_ckpt_disk h;
			memcpy(&h, p, sizeof(h));
			if (h.magic != FTL_CKPT_MAGIC || h.gen != gen || h.bytes < sizeof(h) ||
			    h.bytes > (uint64_t)n * cap || h.bytes <= (uint64_t)(n - 1) * cap) {
				content_bad = true;
				continue;
			}
			bytes = h.bytes;
			want = h.crc;
			len = bytes < cap ? (uint32_t)bytes : cap;
			memset(p + offsetof(struct ftl_ckpt_disk, crc), 0, sizeof(h.crc));
		}
		if (range_bad(c, ftl->bs, len))
			content_bad = true;
		else
			crc = ftl_crc32c(crc, p, len);
	}
	if (content_bad || crc != want)
		errors++;

	pthread_mutex_lock(&ftl->ckpt_lock);
	bool same = ftl->ckpt_gen == gen;
	pthread_mutex_unlock(&ftl->ckpt_lock);
	if (same) {
		c->res->ckpt_segments += n;
		c->res->ckpt_errors += errors;
		if (errors) {
			atomic_fetch_add(&ftl->checksum_errors, errors);
			/* Not a repair: the next checkpoint (at close at the latest) replaces it.
			 */
			atomic_store(&ftl->ckpt_dirty, true);
		}
	}
out_free:
	free(order);
	free(seqs);
	return 0;
}

static int scrub_segment(struct scrub_ctx *c, uint32_t segi)
{
	struct seg_view v;
	bool use_offs;
	int rc;

	if (!seg_view_get(c->ftl, segi, &v))
		return 0;
	/* The pack starts before the read, so the check below covers them too. */
	rc = offs_get(c, segi, v.end, &use_offs);
	if (rc)
		return rc;
	seg_read(c, segi, v.end);
	/* Freed (and maybe reused) while we read: the copy may mix two lives. Skip it. */
	if (!seg_view_same(c->ftl, segi, &v))
		return 0;
	rc = walk_packs(c, segi, v.seq, v.end, use_offs);
	if (rc)
		return rc;
	check_regions(c, segi, v.end);
	return 0;
}

int ftl_scrub(struct ftl *ftl, ftl_scrub_progress_fn fn, void *arg, struct ftl_scrub_result *res)
{
	struct scrub_ctx c = {.ftl = ftl, .res = res};
	int rc = 0;

	if (!ftl || !res)
		return -EINVAL;
	memset(res, 0, sizeof(*res));
	res->segments_total = ftl->nsegs;
	c.buf = aligned_alloc(4096, ftl->seg_size);
	c.bad = malloc(ftl->seg_size / ftl->bs);
	c.chunk = malloc(FTL_CHUNK_MAX);
	if (!c.buf || !c.bad || !c.chunk) {
		rc = -ENOMEM;
		goto out_free;
	}
	if (fn && fn(arg, res)) {
		rc = -ECANCELED;
		goto out_free;
	}
	/* Checkpoint segments are neither streams' nor GC's: scrub_segment passes over them. */
	rc = scrub_ckpt(&c);
	if (rc)
		goto out_free;
	for (uint32_t i = 0; i < ftl->nsegs; i++) {
		rc = scrub_segment(&c, i);
		if (rc)
			goto out_free;
		res->segments_done++;
		if (fn && fn(arg, res)) {
			rc = -ECANCELED;
			goto out_free;
		}
	}
out_free:
	free(c.buf);
	free(c.bad);
	free(c.chunk);
	free(c.offs);
	free(c.regs);
	return rc;
}
