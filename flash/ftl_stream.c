/* flash/ftl_stream.c - write streams: packing chunks into packs and packs into segments.
 *
 * Each stream owns at most one open segment and one pack buffer, both under the stream lock
 * (ftl_int.h invariants 1 and 2). Sealing writes the whole pack with one device write. Does not
 * choose streams or victims: ftl_core.c and ftl_gc.c do.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ftl_int.h"

int ftl_streams_init(struct ftl *ftl)
{
	for (int i = 0; i < FTL_STREAM_COUNT; i++) {
		struct ftl_stream *st = &ftl->streams[i];
		pthread_mutex_init(&st->lock, NULL);
		st->id = (enum ftl_stream_id)i;
		st->seg = FTL_SEG_NONE;
		st->buf = aligned_alloc(4096, ftl->bs + ftl->pack_data_cap);
		if (!st->buf)
			return -ENOMEM;
		memset(st->buf, 0, ftl->bs + ftl->pack_data_cap);
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

static struct ftl_pack_entry_disk *pack_entries(struct ftl_stream *st)
{
	return (struct ftl_pack_entry_disk *)(st->buf + sizeof(struct ftl_pack_disk));
}

/* Caller holds st->lock. */
int ftl_stream_seal(struct ftl *ftl, struct ftl_stream *st)
{
	if (st->seg == FTL_SEG_NONE || st->nent == 0)
		return 0;
	struct ftl_seg *seg = &ftl->segs[st->seg];
	uint32_t total = ftl->bs + round_up(st->data_len, ftl->bs);
	struct ftl_pack_disk *ph = (struct ftl_pack_disk *)st->buf;
	int rc;

	memset(ph, 0, sizeof(*ph));
	ph->magic = FTL_PACK_MAGIC;
	ph->seg_seq = seg->seq;
	ph->nentries = st->nent;
	ph->data_bytes = st->data_len;
	ph->total_bytes = total;
	ph->clock = atomic_load(&ftl->clock);
	size_t hlen = sizeof(*ph) + st->nent * sizeof(struct ftl_pack_entry_disk);
	memset(st->buf + hlen, 0, ftl->bs - hlen);
	memset(st->buf + ftl->bs + st->data_len, 0, total - ftl->bs - st->data_len);
	ph->crc = ftl_crc32c(0, st->buf, hlen);

	rc = ftl_dev_write(ftl->dev, st->buf, total, ftl_seg_dev_off(ftl, st->seg) + st->pack_start);
	if (rc == 0) {
		atomic_fetch_add(&ftl->dev_bytes, total);
		ftl_seg_add_pack(ftl, st->seg, st->pack_start);
	}
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
	st->seg = FTL_SEG_NONE;
	return rc;
}

static bool pack_has_room(struct ftl *ftl, struct ftl_stream *st, uint32_t fp)
{
	if (st->nent >= ftl->max_entries || st->data_len + fp > ftl->pack_data_cap)
		return false;
	uint64_t end = (uint64_t)st->pack_start + ftl->bs + round_up(st->data_len + fp, ftl->bs);
	return end <= ftl->seg_size;
}

/* Caller holds st->lock. */
static int stream_open_seg(struct ftl *ftl, struct ftl_stream *st, bool for_gc)
{
	uint32_t seg;
	int rc = ftl_seg_alloc(ftl, st->id, for_gc, &seg);
	if (rc == -ENOSPC && !for_gc) {
		/* Foreground GC: the background thread fell behind. Lock order allows it: the GC
		 * takes gc_lock and GC streams only (invariant 5). */
		rc = ftl_gc_reclaim(ftl, ftl->reserve + 1);
		if (rc == 0)
			rc = ftl_seg_alloc(ftl, st->id, for_gc, &seg);
	}
	if (rc)
		return rc;
	st->seg = seg;
	st->pack_start = ftl->bs;
	st->nent = 0;
	st->data_len = 0;
	return 0;
}

/* Caller holds st->lock. */
int ftl_stream_append(struct ftl *ftl, struct ftl_stream *st, uint64_t id, uint64_t birth,
		      const uint8_t hash[FTL_HASH_LEN], const struct ftl_chunk_disk *hdr,
		      const void *payload, uint32_t len, uint64_t *loc_out, bool for_gc)
{
	uint32_t fp = ftl_chunk_footprint(len);
	int rc;

	for (;;) {
		if (st->seg == FTL_SEG_NONE) {
			rc = stream_open_seg(ftl, st, for_gc);
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

	uint8_t *dst = st->buf + ftl->bs + st->data_len;
	memcpy(dst, hdr, sizeof(*hdr));
	memcpy(dst + sizeof(*hdr), payload, len);
	memset(dst + sizeof(*hdr) + len, 0, fp - sizeof(*hdr) - len);

	struct ftl_pack_entry_disk *e = &pack_entries(st)[st->nent];
	e->id = id;
	e->birth = birth;
	if (hash)
		memcpy(e->hash, hash, FTL_HASH_LEN);
	else
		memset(e->hash, 0, FTL_HASH_LEN);
	e->len_flags = hdr->len_flags;
	e->crc = hdr->crc;

	uint32_t off = st->pack_start + ftl->bs + st->data_len;
	st->nent++;
	st->data_len += fp;
	st->writes++;
	atomic_fetch_add(&ftl->segs[st->seg].live_bytes, fp);
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
	if (st->seg != segi || off < st->pack_start + ftl->bs ||
	    off + ftl_chunk_footprint(len) > st->pack_start + ftl->bs + st->data_len)
		goto out_unlock;
	const uint8_t *src = st->buf + (off - st->pack_start);
	if (hdr)
		memcpy(hdr, src, sizeof(*hdr));
	if (out)
		memcpy(out, src + sizeof(*hdr), len);
	if (hash) {
		uint32_t cur = st->pack_start + ftl->bs;
		struct ftl_pack_entry_disk *e = pack_entries(st);
		for (uint32_t i = 0; i < st->nent; i++) {
			if (cur == off && e[i].id == id) {
				memcpy(hash, e[i].hash, FTL_HASH_LEN);
				found = 1;
				break;
			}
			cur += ftl_chunk_footprint(e[i].len_flags & 0x1ffff);
		}
		goto out_unlock;
	}
	found = 1;
out_unlock:
	pthread_mutex_unlock(&st->lock);
	return found;
}
