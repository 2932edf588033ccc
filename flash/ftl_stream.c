/* flash/ftl_stream.c - write streams: packing chunks into packs and packs into segments.
 *
 * Each stream owns at most one open segment and one pack buffer, both under the stream lock
 * (ftl_int.h invariants 1 and 2). Sealing writes the whole pack with one device write. Does not
 * choose streams or victims: ftl_core.c and ftl_gc.c do.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ftl_zone_int.h"

int ftl_streams_init(struct ftl *ftl)
{
	for (int i = 0; i < FTL_STREAM_COUNT; i++) {
		struct ftl_stream *st = &ftl->streams[i];
		pthread_mutex_init(&st->lock, NULL);
		st->id = (enum ftl_stream_id)i;
		st->seg = FTL_SEG_NONE;
		size_t sz = (size_t)FTL_PACK_HDR_MAX * ftl->bs + ftl->pack_data_cap;
		st->buf = aligned_alloc(4096, sz);
		if (!st->buf)
			return -ENOMEM;
		memset(st->buf, 0, sz);
	}
	return 0;
}

void ftl_streams_destroy(struct ftl *ftl)
{
	for (int i = 0; i < FTL_STREAM_COUNT; i++) {
		free(ftl->streams[i].buf);
		ftl->streams[i].buf = NULL;
		pthread_mutex_destroy(&ftl->streams[i].lock);
	}
}

static uint32_t round_up(uint32_t v, uint32_t a)
{
	return (v + a - 1) / a * a;
}

static uint8_t *pack_data(struct ftl *ftl, struct ftl_stream *st)
{
	return st->buf + FTL_PACK_HDR_MAX * ftl->bs;
}

/* Summary entries are kept at their final place relative to the data: the header of H blocks
 * ends where the data starts, so it starts at pack_data - H blocks. Until the seal the entries
 * live in a side array at the start of the buffer. */
static struct ftl_pack_entry_disk *pack_entries(struct ftl_stream *st)
{
	return (struct ftl_pack_entry_disk *)(st->buf + sizeof(struct ftl_pack_disk));
}

/* Moves the chunks of the pack being sealed (summary entries E) from their provisional
 * locations (one header block) to the real ones (H blocks). Caller holds st->lock. */
static void pack_relocate_provisional(struct ftl *ftl, struct ftl_stream *st,
                                      const struct ftl_pack_entry_disk *e, uint32_t shift)
{
	uint32_t cur = st->pack_start + ftl->bs;
	for (uint32_t i = 0; i < st->nent; i++) {
		uint32_t len = e[i].len_flags & FTL_LEN_MASK;
		uint64_t old = ftl_loc_make(st->seg, cur, len);
		/* A failed CAS means the chunk was freed meanwhile: nothing to move. */
		(void)ftl_l2p_cas(&ftl->l2p, e[i].id, old, ftl_loc_make(st->seg, cur + shift, len));
		cur += ftl_chunk_footprint(len);
	}
}

/* Caller holds st->lock. */
int ftl_stream_seal(struct ftl *ftl, struct ftl_stream *st)
{
	if (st->seg == FTL_SEG_NONE || st->nent == 0)
		return 0;
	struct ftl_seg *seg = &ftl->segs[st->seg];
	uint32_t hb = ftl_pack_hdr_blocks(st->nent, ftl->bs);
	uint32_t total = hb * ftl->bs + round_up(st->data_len, ftl->bs);
	uint8_t *data = pack_data(ftl, st);
	uint8_t *hdr = data - (size_t)hb * ftl->bs;
	size_t elen = (size_t)st->nent * sizeof(struct ftl_pack_entry_disk);
	struct ftl_pack_disk ph = {0};
	int rc;

	/* The header may overlap the side array of entries: move the entries first. */
	memmove(hdr + sizeof(ph), pack_entries(st), elen);
	ph.magic = FTL_PACK_MAGIC;
	ph.seg_seq = seg->seq;
	ph.nentries = st->nent;
	ph.data_bytes = st->data_len;
	ph.total_bytes = total;
	ph.hdr_blocks = hb;
	ph.clock = atomic_load(&ftl->clock);
	memcpy(hdr, &ph, sizeof(ph));
	memset(hdr + sizeof(ph) + elen, 0, (size_t)hb * ftl->bs - sizeof(ph) - elen);
	memset(data + st->data_len, 0, round_up(st->data_len, ftl->bs) - st->data_len);
	ph.crc = ftl_crc32c(0, hdr, sizeof(ph) + elen);
	memcpy(hdr, &ph, sizeof(ph));

	rc = ftl_dev_write(ftl->dev, hdr, total, ftl_seg_dev_off(ftl, st->seg) + st->pack_start);
	if (rc == 0) {
		atomic_fetch_add(&ftl->dev_bytes, total);
		ftl_seg_add_pack(ftl, st->seg, st->pack_start);
		st->seals++;
	}
	/* The real locations into the L2P (the data is on the device now, or lost on failure).
	 * The pack is emptied below, so its entries stay in the header they were moved to. */
	if (hb > 1)
		pack_relocate_provisional(ftl, st, (const void *)(hdr + sizeof(ph)),
		                          (hb - 1) * ftl->bs);
	/* On failure the pack's chunks are gone: their locations now read back as checksum
	 * failures (-EIO, never wrong data). Move on so nothing is written over that range. */
	st->pack_start += total;
	seg->end = st->pack_start;
	st->nent = 0;
	st->data_len = 0;
	if (rc)
		ftl_stream_close_seg(ftl, st);
	return rc;
}

/* Seals the packs of streams [FIRST, LAST], each under its own lock; the first error wins. */
int ftl_streams_seal(struct ftl *ftl, enum ftl_stream_id first, enum ftl_stream_id last)
{
	int rc = 0;
	for (int i = first; i <= (int)last; i++) {
		struct ftl_stream *st = &ftl->streams[i];
		pthread_mutex_lock(&st->lock);
		int r = ftl_stream_seal(ftl, st);
		pthread_mutex_unlock(&st->lock);
		if (r && !rc)
			rc = r;
	}
	return rc;
}

/* Caller holds st->lock. */
int ftl_stream_close_seg(struct ftl *ftl, struct ftl_stream *st)
{
	int rc = 0;
	if (st->seg == FTL_SEG_NONE)
		return 0;
	if (st->nent)
		rc = ftl_stream_seal(ftl, st);
	if (st->seg == FTL_SEG_NONE) /* the seal failed and closed it */
		return rc;
	struct ftl_seg *seg = &ftl->segs[st->seg];
	seg->close_clock = atomic_load(&ftl->clock);
	atomic_store(&seg->state, FTL_SEG_CLOSED);
	ftl_zone_seg_closed(ftl, st->seg);
	st->seg = FTL_SEG_NONE;
	return rc;
}

static bool pack_has_room(struct ftl *ftl, struct ftl_stream *st, uint32_t fp)
{
	if (st->nent >= ftl->max_entries || st->data_len + fp > ftl->pack_data_cap)
		return false;
	uint64_t end = (uint64_t)st->pack_start +
	               (uint64_t)ftl_pack_hdr_blocks(st->nent + 1, ftl->bs) * ftl->bs +
	               round_up(st->data_len + fp, ftl->bs);
	return end <= ftl->seg_size;
}

/* Caller holds st->lock. */
static int stream_open_seg(struct ftl *ftl, struct ftl_stream *st, enum ftl_alloc who)
{
	uint32_t seg;
	/* Reserve writes take from the reserve only when GC cannot give a segment back. */
	int rc = ftl_seg_alloc(ftl, st->id, who == FTL_ALLOC_GC ? who : FTL_ALLOC_USER, &seg);
	if (rc == -ENOSPC && who != FTL_ALLOC_GC) {
		/* Foreground GC: the background thread fell behind. Lock order allows it: the GC
		 * takes gc_lock and GC streams only (invariant 5). */
		rc = ftl_gc_reclaim(ftl, ftl->reserve + 1);
		if (rc == 0 || (rc == -ENOSPC && who == FTL_ALLOC_RESERVE))
			rc = ftl_seg_alloc(ftl, st->id, who, &seg);
	}
	if (rc)
		return rc;
	atomic_fetch_add(&ftl->segs_opened, 1); /* the checkpoint policy counts these */
	st->seg = seg;
	st->pack_start = ftl->bs;
	st->nent = 0;
	st->data_len = 0;
	return 0;
}

/* Caller holds st->lock. */
int ftl_stream_append(struct ftl *ftl, struct ftl_stream *st, uint64_t id, uint64_t birth,
                      const uint8_t hash[FTL_HASH_LEN], uint32_t crc, uint8_t flags,
                      const void *payload, uint32_t len, uint64_t *loc_out, enum ftl_alloc who)
{
	uint32_t fp = ftl_chunk_footprint(len);
	int rc;

	for (;;) {
		if (st->seg == FTL_SEG_NONE) {
			rc = stream_open_seg(ftl, st, who);
			if (rc)
				return rc;
		}
		if (pack_has_room(ftl, st, fp))
			break;
		if (st->nent) {
			rc = ftl_stream_seal(ftl, st);
			if (rc)
				return rc;
			if (st->seg != FTL_SEG_NONE && pack_has_room(ftl, st, fp))
				break;
		}
		/* An empty pack that still does not fit: the segment is full. */
		if (st->seg != FTL_SEG_NONE && st->nent == 0 && !pack_has_room(ftl, st, fp)) {
			rc = ftl_stream_close_seg(ftl, st);
			if (rc)
				return rc;
		}
	}

	uint8_t *dst = pack_data(ftl, st) + st->data_len;
	struct ftl_chunk_disk hdr = {.crc = crc, .entry = (uint16_t)st->nent, .flags = flags};
	memcpy(dst, &hdr, sizeof(hdr));
	memcpy(dst + sizeof(hdr), payload, len);
	memset(dst + sizeof(hdr) + len, 0, fp - sizeof(hdr) - len);

	struct ftl_pack_entry_disk *e = &pack_entries(st)[st->nent];
	e->id = id;
	e->birth = birth;
	if (hash)
		memcpy(e->hash, hash, FTL_HASH_LEN);
	else
		memset(e->hash, 0, FTL_HASH_LEN);
	e->len_flags = ftl_len_flags(len, flags);
	e->crc = crc;

	uint32_t off = st->pack_start + ftl->bs + st->data_len;
	st->nent++;
	st->data_len += fp;
	atomic_fetch_add_explicit(&st->writes, 1, memory_order_relaxed);
	atomic_fetch_add(&ftl->segs[st->seg].live_bytes, fp);
	atomic_fetch_add_explicit(&ftl->segs[st->seg].birth_sum, birth, memory_order_relaxed);
	atomic_fetch_add_explicit(&ftl->segs[st->seg].birth_n, 1, memory_order_relaxed);
	*loc_out = ftl_loc_make(st->seg, off, len);
	return 0;
}

int ftl_stream_read_buffered(struct ftl *ftl, uint64_t loc, uint64_t id, void *out, uint32_t len,
                             struct ftl_chunk_disk *hdr, uint8_t *hash)
{
	uint32_t segi = ftl_loc_seg(loc), off = ftl_loc_off(loc);
	if (segi >= ftl->nsegs || atomic_load(&ftl->segs[segi].state) != FTL_SEG_OPEN)
		return 0;
	uint8_t sid = atomic_load(&ftl->segs[segi].stream);
	if (sid >= FTL_STREAM_COUNT)
		return 0;
	struct ftl_stream *st = &ftl->streams[sid];
	int found = 0;

	pthread_mutex_lock(&st->lock);
	uint32_t base = st->pack_start + ftl->bs; /* provisional data start */
	if (st->seg != segi || off < base || off + ftl_chunk_footprint(len) > base + st->data_len)
		goto out_unlock;
	const uint8_t *src = pack_data(ftl, st) + (off - base);
	struct ftl_chunk_disk h;
	memcpy(&h, src, sizeof(h));
	struct ftl_pack_entry_disk *e = &pack_entries(st)[h.entry];
	if (h.entry >= st->nent || e->id != id)
		goto out_unlock; /* not the chunk we look for: let the caller retry */
	if (hdr)
		*hdr = h;
	if (out)
		memcpy(out, src + sizeof(h), len);
	if (hash)
		memcpy(hash, e->hash, FTL_HASH_LEN);
	found = 1;
out_unlock:
	pthread_mutex_unlock(&st->lock);
	return found;
}
