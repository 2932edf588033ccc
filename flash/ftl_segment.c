/* flash/ftl_segment.c - segment life cycle: the states below and every change between them.
 *
 * Allocation picks by wear (least worn for hot data, most worn for cold); release counts an
 * erase, records it in a FREE header and TRIMs the rest (on a zoned namespace: resets the zone
 * and records the count in the erase-count table). Never decides what to clean: ftl_gc.c.
 *
 * SEGMENT STATES (enum ftl_seg_state, ftl_int.h invariant 1). Leaving FREE and entering it
 * happen under seg_lock (with nfree); OPEN -> CLOSED under the stream's lock, by the one writer
 * of the segment; the scan at open sets states before any other thread runs. The header on the
 * device says less: FTL_SEG_DISK_FREE, or FTL_SEG_DISK_OPEN for OPEN, CLOSED and CKPT alike (a
 * CKPT part has stream FTL_SEG_STREAM_CKPT and its gen/part).
 *
 *   FREE    Counted in nfree; in no stream, not in ckpt_segs; no L2P entry points into it;
 *           pack_offs is NULL (live_bytes and the birth sums are reset when it is taken).
 *           On the device: a FREE header (erase count, the seq release gave it) and TRIMmed
 *           blocks; on a zoned namespace an empty zone. After open also whatever the scan
 *           did not take: a torn or foreign header, an older or incomplete checkpoint's part
 *           (zoned: reset by ftl_zone_after_scan).
 *   OPEN    Exactly one stream's (seg->stream; streams[].seg is this segment, unless its
 *           last packs are still being written after the stream moved on); only that
 *           stream appends, under its lock. Its header (seq = next_seq at allocation) is on
 *           the device; [bs, end) holds written packs, the stream's sealed packs still
 *           being written follow, then the pack being filled at the stream's fill_start
 *           (invariant 2). Never a GC victim. Zoned: the zone is open or closed-active,
 *           written only at its write pointer, in seal order.
 *   CLOSED  In no stream; never written again until freed. A GC victim unless pinned (GC
 *           could not account for its live chunks: kept for ever). live_bytes only falls.
 *           Zoned: the zone is full or finished.
 *   CKPT    Part ckpt_part of ckpt_nparts of checkpoint ckpt_gen; header and contents
 *           written once, by ftl_checkpoint under ckpt_lock. No L2P entry points into it;
 *           never a GC victim; counted in segments_ckpt. In ftl->ckpt_segs once its
 *           checkpoint is durable, and freed only when the next one is durable (or at once
 *           when writing its own failed), so a sound checkpoint is on the device at all times.
 *
 * TRANSITIONS (and the only functions that make them):
 *   FREE   -> OPEN    ftl_seg_alloc (stream_open_seg in ftl_stream.c): writes the OPEN header
 *   FREE   -> CKPT    ftl_seg_alloc_ckpt (write_parts in ftl_ckpt.c): the part's header
 *   FREE   -> CLOSED  seg_alloc, when the header write fails: left empty for GC to recycle
 *   OPEN   -> CLOSED  ftl_stream_close_seg (ftl_stream.c): the segment is full, or a pack
 *                     write into it failed; once every pack sealed into it is written
 *                     (zoned: it waits for them; else the completion of the last one
 *                     closes it, pack_complete); ftl_zone_seg_closed finishes its zone
 *                     if not full
 *   CLOSED -> FREE    ftl_seg_release from GC (ftl_gc.c), after the relocated copies are
 *                     flushed (invariant 3)
 *   CKPT   -> FREE    ftl_seg_release from ftl_checkpoint: the previous checkpoint's parts
 *                     once the new one is flushed, or the new parts when writing it failed
 *   At open (ftl_scan.c classify; every segment starts FREE in ftl_segs_init): FREE -> CLOSED
 *   for segments with packs (seg_from_header, seg_from_ckpt), FREE -> CKPT for the parts of
 *   the checkpoint the open starts from. No segment is OPEN after open: streams start empty.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ftl_zone_int.h"

int ftl_segs_init(struct ftl *ftl)
{
	ftl->segs = calloc(ftl->nsegs, sizeof(*ftl->segs));
	if (!ftl->segs)
		return -ENOMEM;
	for (uint32_t i = 0; i < ftl->nsegs; i++) {
		atomic_init(&ftl->segs[i].state, FTL_SEG_FREE);
		atomic_init(&ftl->segs[i].live_bytes, 0);
	}
	pthread_mutex_init(&ftl->seg_lock, NULL);
	pthread_cond_init(&ftl->trim_cond, NULL);
	for (int i = 0; i < FTL_SEG_STRIPES; i++)
		pthread_mutex_init(&ftl->seg_stripes[i], NULL);
	ftl->nfree = ftl->nsegs;
	return 0;
}

void ftl_segs_destroy(struct ftl *ftl)
{
	if (!ftl->segs)
		return;
	for (uint32_t i = 0; i < ftl->nsegs; i++)
		free(ftl->segs[i].pack_offs);
	free(ftl->segs);
	ftl->segs = NULL;
	pthread_mutex_destroy(&ftl->seg_lock);
	pthread_cond_destroy(&ftl->trim_cond);
	for (int i = 0; i < FTL_SEG_STRIPES; i++)
		pthread_mutex_destroy(&ftl->seg_stripes[i]);
}

int ftl_seg_write_header(struct ftl *ftl, uint32_t segi, uint8_t disk_state)
{
	struct ftl_seg *seg = &ftl->segs[segi];
	uint8_t *blk = aligned_alloc(4096, ftl->bs);
	int rc;
	if (!blk)
		return -ENOMEM;
	memset(blk, 0, ftl->bs);
	struct ftl_seg_disk *h = (struct ftl_seg_disk *)blk;
	h->magic = FTL_SEG_MAGIC;
	memcpy(h->uuid, ftl->sb.uuid, sizeof(h->uuid));
	h->seq = seg->seq;
	h->seg_index = segi;
	h->erase_count = seg->erase_count;
	h->state = disk_state;
	h->stream = seg->stream;
	h->open_clock = seg->open_clock;
	if (seg->stream == FTL_SEG_STREAM_CKPT) {
		h->ckpt_gen = seg->ckpt_gen;
		h->ckpt_part = seg->ckpt_part;
		h->ckpt_nparts = seg->ckpt_nparts;
	}
	h->crc = ftl_crc32c(0, h, sizeof(*h));
	rc = ftl_dev_write(ftl->dev, blk, ftl->bs, ftl_seg_dev_off(ftl, segi));
	if (!rc)
		atomic_fetch_add(&ftl->dev_bytes, ftl->bs);
	free(blk);
	return rc;
}

struct ftl_ckpt_part {
	uint64_t gen;
	uint32_t part, nparts;
};

/* CK: the segment is for a checkpoint part, not a stream. */
static int seg_alloc(struct ftl *ftl, enum ftl_stream_id stream, enum ftl_alloc who,
                     const struct ftl_ckpt_part *ck, uint32_t *out)
{
	uint32_t best = FTL_SEG_NONE;
	uint32_t keep = who == FTL_ALLOC_GC        ? 0
	                : who == FTL_ALLOC_RESERVE ? ftl_reserve_keep(ftl)
	                                           : ftl->reserve;
	int rc;

	pthread_mutex_lock(&ftl->seg_lock);
	/* Invariant 7; and a segment opened with a seq at or beyond FTL_SEQ_LIMIT would be
	 * taken as free at the next open, with its data (ftl_int.h: only a forged header or
	 * checkpoint can bring next_seq near it). */
	if (ftl->nfree <= keep || ftl->next_seq >= FTL_SEQ_ALLOC_LIMIT) {
		pthread_mutex_unlock(&ftl->seg_lock);
		return -ENOSPC;
	}
	/* Dynamic wear leveling: data that will be rewritten soon goes to the least-worn free
	 * segment; cold data goes to the most worn one, which it will then keep at rest. */
	bool rest = stream == FTL_STREAM_GC_COLD;
	for (;;) {
		bool busy = false;
		for (uint32_t i = 0; i < ftl->nsegs; i++) {
			if (atomic_load(&ftl->segs[i].state) != FTL_SEG_FREE)
				continue;
			/* Its TRIM is under way (ftl_flush): new headers and packs must not go
			 * where the TRIM may still punch them. */
			if (ftl->segs[i].trimming) {
				busy = true;
				continue;
			}
			uint32_t e = ftl->segs[i].erase_count;
			if (best == FTL_SEG_NONE || (rest ? e > ftl->segs[best].erase_count
			                                  : e < ftl->segs[best].erase_count))
				best = i;
		}
		if (best != FTL_SEG_NONE || !busy)
			break;
		pthread_cond_wait(&ftl->trim_cond, &ftl->seg_lock);
	}
	struct ftl_seg *seg = &ftl->segs[best];
	/* A TRIM still due is not: the segment's new contents come first. */
	if (seg->trim_after) {
		seg->trim_after = 0;
		ftl->trims_due--;
	}
	bool reserved = seg->reserved;
	atomic_store(&seg->state, ck ? FTL_SEG_CKPT : FTL_SEG_OPEN);
	ftl->nfree--;
	seg->stream = ck ? FTL_SEG_STREAM_CKPT : (uint8_t)stream;
	if (ck) {
		seg->ckpt_gen = ck->gen;
		seg->ckpt_part = ck->part;
		seg->ckpt_nparts = ck->nparts;
	}
	seg->seq = ftl->next_seq++;
	seg->open_clock = atomic_load(&ftl->clock);
	seg->close_clock = 0;
	seg->end = ftl->bs;
	atomic_store(&seg->live_bytes, 0);
	atomic_store(&seg->birth_sum, 0);
	atomic_store(&seg->birth_n, 0);
	pthread_mutex_unlock(&ftl->seg_lock);

	pthread_mutex_lock(&ftl->seg_stripes[best % FTL_SEG_STRIPES]);
	seg->npacks = 0;
	pthread_mutex_unlock(&ftl->seg_stripes[best % FTL_SEG_STRIPES]);

	rc = ftl_seg_write_header(ftl, best, FTL_SEG_DISK_OPEN);
	if (rc) {
		/* The segment may be bad; leave it closed and empty so GC recycles it. */
		atomic_store(&seg->stream, FTL_STREAM_USER_COLD);
		atomic_store(&seg->state, FTL_SEG_CLOSED);
		seg->close_clock = atomic_load(&ftl->clock);
		ftl_zone_seg_closed(ftl, best);
		return rc;
	}
	/* Its blocks allocated in an image file before its packs come (ftl_dev_reserve): a hint,
	 * whose failure the writes themselves report if it matters. Once per segment between
	 * TRIMs: on ext4 the fallocate takes the file's lock and drains every direct write in
	 * flight, pack writes and SQLite's alike, even where the blocks are already there. */
	if (!ck && !reserved &&
	    ftl_dev_reserve(ftl->dev, ftl_seg_dev_off(ftl, best) + ftl->bs,
	                    ftl->seg_size - ftl->bs) == 0) {
		pthread_mutex_lock(&ftl->seg_lock);
		seg->reserved = true; /* OPEN: no TRIM can come before its release */
		pthread_mutex_unlock(&ftl->seg_lock);
	}
	*out = best;
	return 0;
}

int ftl_seg_alloc(struct ftl *ftl, enum ftl_stream_id stream, enum ftl_alloc who, uint32_t *out)
{
	return seg_alloc(ftl, stream, who, NULL, out);
}

int ftl_seg_alloc_ckpt(struct ftl *ftl, uint64_t gen, uint32_t part, uint32_t nparts, uint32_t *out)
{
	struct ftl_ckpt_part ck = {.gen = gen, .part = part, .nparts = nparts};
	/* Placed as cold user data was: the least-worn free segment, outside the GC reserve. */
	return seg_alloc(ftl, FTL_STREAM_USER_COLD, FTL_ALLOC_USER, &ck, out);
}

void ftl_seg_add_pack(struct ftl *ftl, uint32_t segi, uint32_t off)
{
	struct ftl_seg *seg = &ftl->segs[segi];
	pthread_mutex_t *l = &ftl->seg_stripes[segi % FTL_SEG_STRIPES];
	pthread_mutex_lock(l);
	if (seg->npacks == seg->cap_packs) {
		uint32_t ncap = seg->cap_packs ? seg->cap_packs * 2 : 16;
		uint32_t *n = realloc(seg->pack_offs, ncap * sizeof(*n));
		if (!n) {
			/* Only ftl_read_hash needs this; it falls back to a header walk. */
			pthread_mutex_unlock(l);
			return;
		}
		seg->pack_offs = n;
		seg->cap_packs = ncap;
	}
	seg->pack_offs[seg->npacks++] = off;
	pthread_mutex_unlock(l);
}

int ftl_seg_release(struct ftl *ftl, uint32_t segi)
{
	struct ftl_seg *seg = &ftl->segs[segi];
	uint64_t after = 0;
	int rc;

	pthread_mutex_lock(&ftl->seg_stripes[segi % FTL_SEG_STRIPES]);
	free(seg->pack_offs);
	seg->pack_offs = NULL;
	seg->npacks = seg->cap_packs = 0;
	pthread_mutex_unlock(&ftl->seg_stripes[segi % FTL_SEG_STRIPES]);

	pthread_mutex_lock(&ftl->seg_lock);
	/* Summaries of its packs that streams remember (ftl_stream.c) stop describing it. */
	atomic_fetch_add(&seg->gen, 1);
	seg->erase_count++;
	seg->seq = ftl->next_seq++;
	seg->end = 0;
	pthread_mutex_unlock(&ftl->seg_lock);

	if (ftl->zn) {
		/* A zone's erase: the header goes with the rest (the zone reads empty, which the
		 * scan takes as free), the erase count goes to the table. */
		rc = ftl_zone_seg_reset(ftl, segi);
		goto out_free;
	}
	/* The FREE header supersedes the old one, so a scan ignores stale packs even where TRIM
	 * is not supported; the erase count survives remounts. */
	rc = ftl_seg_write_header(ftl, segi, FTL_SEG_DISK_FREE);
	/* The FREE header must be durable before the TRIM, which may take effect at once: else a
	 * power cut could leave the old header over trimmed packs, and a checkpoint that trusts
	 * the header (ftl_scan.c) would point into nothing. So the TRIM waits for the next flush
	 * that starts from here (ftl_flush), and is dropped if the segment is reused first. It
	 * was a flush of its own per cleaned segment: on this VM's virtio disk every flush held
	 * the next pack write until it ended (0.1..0.9 s), and sequential writes into a full
	 * image, where GC frees a segment for each one it fills, ran at 300-600 MB/s instead of
	 * 800-1,000 (issue 13). */
	after = atomic_load(&ftl->flushes_started) + 1;

out_free:
	pthread_mutex_lock(&ftl->seg_lock);
	atomic_store(&seg->state, FTL_SEG_FREE);
	if (!rc && after) {
		seg->trim_after = after;
		ftl->trims_due++;
	}
	ftl->nfree++;
	pthread_mutex_unlock(&ftl->seg_lock);
	return rc;
}

/* TRIMs the released segments whose FREE headers flush number N made durable, one at a time
 * (a segment being trimmed cannot be allocated, and only this one is held out). */
static void seg_trim_released(struct ftl *ftl, uint64_t n)
{
	for (uint32_t i = 0; i < ftl->nsegs; i++) {
		struct ftl_seg *seg = &ftl->segs[i];
		pthread_mutex_lock(&ftl->seg_lock);
		/* trim_after is set only on FREE segments (ftl_seg_release, seg_alloc). */
		bool due = seg->trim_after && seg->trim_after <= n;
		if (due) {
			seg->trim_after = 0;
			seg->trimming = true;
			seg->reserved = false;
			ftl->trims_due--;
		}
		pthread_mutex_unlock(&ftl->seg_lock);
		if (!due)
			continue;
		if (ftl_dev_trim(ftl->dev, ftl_seg_dev_off(ftl, i) + ftl->bs,
		                 ftl->seg_size - ftl->bs) == 0)
			atomic_fetch_add(&ftl->trims, 1);
		pthread_mutex_lock(&ftl->seg_lock);
		seg->trimming = false;
		pthread_cond_broadcast(&ftl->trim_cond);
		pthread_mutex_unlock(&ftl->seg_lock);
	}
}

int ftl_flush(struct ftl *ftl)
{
	uint64_t n = atomic_fetch_add(&ftl->flushes_started, 1) + 1;
	int rc = ftl_dev_flush(ftl->dev);
	if (!rc && ftl_seg_trims_due(ftl))
		seg_trim_released(ftl, n);
	return rc;
}

bool ftl_seg_trims_due(struct ftl *ftl)
{
	return atomic_load(&ftl->trims_due) != 0;
}
