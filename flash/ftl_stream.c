/* flash/ftl_stream.c - write streams: packing chunks into packs and packs into segments.
 *
 * Each stream owns at most one open segment and FTL_STREAM_BUFS pack buffers (ftl_int.h
 * invariants 1 and 2): one is filled under the stream lock while sealed ones are written, each
 * with one device write, outside it and in seal order. Does not choose streams or victims:
 * ftl_core.c and ftl_gc.c do.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "ftl_zone_int.h"

/* Buffers that hold whole packs: those of every stream, and the kept bytes of the user
 * streams' last packs (FTL_STREAM_RECENT_BYTES each). */
static int pack_buffer_count(void)
{
	return FTL_STREAM_COUNT * FTL_STREAM_BUFS + 2 * FTL_STREAM_RECENT_BYTES;
}

/* The pack buffers come from one region of huge pages where the kernel gives them
 * (madvise, advisory: 4 KiB pages otherwise). A pack's O_DIRECT write pins its pages, and
 * the kernel pinned 257 small pages a pack: 4% of the daemon's CPU on a unique-data
 * sequential write (perf, issue 13), where one huge page takes a single reference. */
static int pack_arena_alloc(struct ftl *ftl, size_t sz)
{
	const size_t huge = 2u << 20;
	size_t len = ((size_t)pack_buffer_count() * sz + huge - 1) / huge * huge;

	ftl->pack_arena = aligned_alloc(huge, len);
	if (!ftl->pack_arena)
		return -ENOMEM;
	(void)madvise(ftl->pack_arena, len, MADV_HUGEPAGE);
	memset(ftl->pack_arena, 0, len);
	return 0;
}

int ftl_streams_init(struct ftl *ftl)
{
	size_t sz = (size_t)FTL_PACK_HDR_MAX * ftl->bs + ftl->pack_data_cap;
	size_t esz = (size_t)ftl->max_entries * sizeof(struct ftl_pack_entry_disk);
	uint8_t *next;

	sz = (sz + 4095) / 4096 * 4096;
	if (pack_arena_alloc(ftl, sz))
		return -ENOMEM;
	next = ftl->pack_arena;
	for (int i = 0; i < FTL_STREAM_COUNT; i++) {
		struct ftl_stream *st = &ftl->streams[i];
		pthread_mutex_init(&st->lock, NULL);
		pthread_cond_init(&st->cond, NULL);
		st->id = (enum ftl_stream_id)i;
		st->seg = FTL_SEG_NONE;
		st->failed_seg = FTL_SEG_NONE;
		for (int b = 0; b < FTL_STREAM_BUFS; b++) {
			struct ftl_pack_buf *pb = &st->pbs[b];
			pb->buf = next;
			next += sz;
			pb->ents = calloc(1, esz);
			if (!pb->ents)
				return -ENOMEM;
		}
		st->cur = &st->pbs[0];
		pthread_mutex_init(&st->recent_lock, NULL);
		for (int r = 0; r < FTL_STREAM_RECENT; r++) {
			st->recent[r].seg = FTL_SEG_NONE;
			st->recent[r].ents = calloc(1, esz);
			if (!st->recent[r].ents)
				return -ENOMEM;
		}
		/* The user streams' packs are the ones read back at once (a replicated write's
		 * chunks); GC and reserve writes are not. */
		bool keep = i == FTL_STREAM_USER_HOT || i == FTL_STREAM_USER_COLD;
		for (int r = 0; r < FTL_STREAM_RECENT_BYTES; r++) {
			st->bytes[r].seg = FTL_SEG_NONE;
			if (!keep)
				continue;
			st->bytes[r].buf = next;
			next += sz;
		}
	}
	return 0;
}

void ftl_streams_destroy(struct ftl *ftl)
{
	for (int i = 0; i < FTL_STREAM_COUNT; i++) {
		struct ftl_stream *st = &ftl->streams[i];
		/* The buffers change places between pbs and bytes (pack_remember): all are in
		 * the arena, freed once below. */
		for (int b = 0; b < FTL_STREAM_BUFS; b++) {
			free(st->pbs[b].ents);
			st->pbs[b].buf = NULL;
			st->pbs[b].ents = NULL;
		}
		st->cur = NULL;
		for (int r = 0; r < FTL_STREAM_RECENT; r++) {
			free(st->recent[r].ents);
			st->recent[r].ents = NULL;
		}
		for (int r = 0; r < FTL_STREAM_RECENT_BYTES; r++)
			st->bytes[r].buf = NULL;
		pthread_mutex_destroy(&st->recent_lock);
		pthread_cond_destroy(&st->cond);
		pthread_mutex_destroy(&st->lock);
	}
	free(ftl->pack_arena);
	ftl->pack_arena = NULL;
}

static uint32_t round_up(uint32_t v, uint32_t a)
{
	return (v + a - 1) / a * a;
}

/* Where a pack's data starts in a buffer laid out as ftl_pack_buf.buf (kept bytes too). */
static uint8_t *buf_data(struct ftl *ftl, uint8_t *buf)
{
	return buf + FTL_PACK_HDR_MAX * ftl->bs;
}

static uint8_t *pack_data(struct ftl *ftl, struct ftl_pack_buf *pb)
{
	return buf_data(ftl, pb->buf);
}

/* Sealed packs not yet written (their tickets were handed out, their writes not completed). */
static bool stream_has_sealed(const struct ftl_stream *st)
{
	return st->done_ticket != st->next_ticket;
}

/* Freezes the buffer being filled as a sealed pack: its place in the segment and its size are
 * fixed here, so the next pack can be filled behind it at once. Caller holds st->lock; the
 * pack is non-empty. The next buffer to fill is a free one, or none until a write completes. */
static struct ftl_pack_buf *pack_seal(struct ftl *ftl, struct ftl_stream *st)
{
	struct ftl_pack_buf *pb = st->cur;
	pb->hdr_blocks = ftl_pack_hdr_blocks(pb->nent, ftl->bs);
	pb->total = pb->hdr_blocks * ftl->bs + round_up(pb->data_len, ftl->bs);
	pb->seg = st->seg;
	pb->start = st->fill_start;
	pb->ticket = ++st->next_ticket;
	pb->clock = atomic_load(&ftl->clock);
	pb->sealed = true;
	st->fill_start += pb->total;
	st->cur = NULL;
	for (int b = 0; b < FTL_STREAM_BUFS; b++)
		if (!st->pbs[b].sealed) {
			st->cur = &st->pbs[b];
			break;
		}
	return pb;
}

/* Writes the header of a sealed pack in front of its data. Touches only the pack's header
 * blocks and the padding after its data, which no reader looks at: needs no lock. */
static void pack_build_header(struct ftl *ftl, struct ftl_pack_buf *pb)
{
	struct ftl_seg *seg = &ftl->segs[pb->seg];
	uint8_t *data = pack_data(ftl, pb);
	uint8_t *hdr = data - (size_t)pb->hdr_blocks * ftl->bs;
	size_t elen = (size_t)pb->nent * sizeof(struct ftl_pack_entry_disk);
	struct ftl_pack_disk ph = {0};

	ph.magic = FTL_PACK_MAGIC;
	ph.seg_seq = seg->seq;
	ph.nentries = pb->nent;
	ph.data_bytes = pb->data_len;
	ph.total_bytes = pb->total;
	ph.hdr_blocks = pb->hdr_blocks;
	ph.clock = pb->clock;
	memcpy(hdr, &ph, sizeof(ph));
	memcpy(hdr + sizeof(ph), pb->ents, elen);
	memset(hdr + sizeof(ph) + elen, 0, (size_t)pb->hdr_blocks * ftl->bs - sizeof(ph) - elen);
	memset(data + pb->data_len, 0, round_up(pb->data_len, ftl->bs) - pb->data_len);
	ph.crc = ftl_crc32c(0, hdr, sizeof(ph) + elen);
	memcpy(hdr, &ph, sizeof(ph));
}

/* Moves the chunks of a written pack from their provisional locations (one header block) to
 * the real ones (H blocks). Caller holds st->lock, so a reader sees either the provisional
 * location with the chunk still in the buffer, or the real one with the pack on the device. */
static void pack_relocate_provisional(struct ftl *ftl, struct ftl_pack_buf *pb)
{
	uint32_t shift = (pb->hdr_blocks - 1) * ftl->bs;
	uint32_t cur = pb->start + ftl->bs;
	for (uint32_t i = 0; i < pb->nent; i++) {
		uint32_t len = pb->ents[i].len_flags & FTL_LEN_MASK;
		uint64_t old = ftl_loc_make(pb->seg, cur, len);
		/* A failed CAS means the chunk was freed meanwhile: nothing to move. */
		(void)ftl_l2p_cas(&ftl->l2p, pb->ents[i].id, old,
		                  ftl_loc_make(pb->seg, cur + shift, len));
		cur += ftl_chunk_footprint(len);
	}
}

/* Remembers the summary of written pack PB (its entries change places with the oldest
 * remembered ones, nothing is copied). Caller holds st->lock: the segment is this stream's, so
 * its gen cannot change under us. */
static void pack_remember(struct ftl *ftl, struct ftl_stream *st, struct ftl_pack_buf *pb)
{
	pthread_mutex_lock(&st->recent_lock);
	struct ftl_pack_recent *r = &st->recent[st->recent_next];
	st->recent_next = (st->recent_next + 1) % FTL_STREAM_RECENT;
	struct ftl_pack_entry_disk *old = r->ents;
	r->ents = pb->ents;
	pb->ents = old;
	r->seg = pb->seg;
	r->gen = atomic_load(&ftl->segs[pb->seg].gen);
	r->start = pb->start;
	r->hdr_blocks = pb->hdr_blocks;
	r->total = pb->total;
	r->nent = pb->nent;
	struct ftl_pack_bytes *k = &st->bytes[st->bytes_next];
	if (k->buf) {
		st->bytes_next = (st->bytes_next + 1) % FTL_STREAM_RECENT_BYTES;
		uint8_t *old_buf = k->buf;
		k->buf = pb->buf;
		pb->buf = old_buf;
		k->seg = pb->seg;
		k->gen = r->gen;
		k->start = pb->start;
		k->hdr_blocks = pb->hdr_blocks;
		k->total = pb->total;
	}
	pthread_mutex_unlock(&st->recent_lock);
}

/* The chunk at real location LOC (LEN payload bytes) from the bytes of the packs stream ST
 * keeps: 1 when found (HDR and OUT filled), else 0. As in recent_hash, the gen proves the
 * incarnation; the caller checks the chunk's CRC, which covers its id, as for a device read. */
static int recent_bytes(struct ftl *ftl, struct ftl_stream *st, uint64_t loc, void *out,
                        uint32_t len, struct ftl_chunk_disk *hdr)
{
	uint32_t segi = ftl_loc_seg(loc), off = ftl_loc_off(loc);
	uint32_t gen = atomic_load(&ftl->segs[segi].gen);
	int found = 0, i;

	for (i = 0; i < FTL_STREAM_RECENT_BYTES; i++)
		if (atomic_load_explicit(&st->bytes[i].seg, memory_order_relaxed) == segi)
			break;
	if (i == FTL_STREAM_RECENT_BYTES)
		return 0;
	pthread_mutex_lock(&st->recent_lock);
	for (i = 0; i < FTL_STREAM_RECENT_BYTES && !found; i++) {
		struct ftl_pack_bytes *k = &st->bytes[i];
		uint32_t data = k->start + k->hdr_blocks * ftl->bs;
		if (!k->buf || k->seg != segi || k->gen != gen || off < data ||
		    (uint64_t)off + ftl_chunk_footprint(len) > (uint64_t)k->start + k->total)
			continue;
		const uint8_t *src = buf_data(ftl, k->buf) + (off - data);
		memcpy(hdr, src, sizeof(*hdr));
		memcpy(out, src + sizeof(*hdr), len);
		found = 1;
	}
	pthread_mutex_unlock(&st->recent_lock);
	return found;
}

/* The hash of chunk ID at its real location LOC from the summaries stream ST remembers:
 * 1 if found, else 0. The segment's gen proves the summary is of its current incarnation;
 * the location proves it is of this chunk's current copy (the caller read it from the L2P,
 * and a segment's contents do not change before its release). */
static int recent_hash(struct ftl *ftl, struct ftl_stream *st, uint64_t loc, uint64_t id,
                       uint8_t *hash)
{
	uint32_t segi = ftl_loc_seg(loc), off = ftl_loc_off(loc);
	uint32_t gen = atomic_load(&ftl->segs[segi].gen);
	int found = 0;

	pthread_mutex_lock(&st->recent_lock);
	for (int i = 0; i < FTL_STREAM_RECENT && !found; i++) {
		struct ftl_pack_recent *r = &st->recent[i];
		uint32_t cur = r->start + r->hdr_blocks * ftl->bs;
		if (r->seg != segi || r->gen != gen || off < cur || off >= r->start + r->total)
			continue;
		for (uint32_t e = 0; e < r->nent && cur <= off; e++) {
			if (cur == off) {
				if (r->ents[e].id == id &&
				    (r->ents[e].len_flags & FTL_LEN_MASK) == ftl_loc_len(loc)) {
					memcpy(hash, r->ents[e].hash, FTL_HASH_LEN);
					found = 1;
				}
				break;
			}
			cur += ftl_chunk_footprint(r->ents[e].len_flags & FTL_LEN_MASK);
		}
	}
	pthread_mutex_unlock(&st->recent_lock);
	return found;
}

/* OPEN -> CLOSED for segment SEGI of stream ST, every pack sealed into it written. Caller
 * holds st->lock. */
static void seg_close(struct ftl *ftl, struct ftl_stream *st, uint32_t segi)
{
	struct ftl_seg *seg = &ftl->segs[segi];
	seg->close_clock = atomic_load(&ftl->clock);
	atomic_store(&seg->state, FTL_SEG_CLOSED);
	ftl_zone_seg_closed(ftl, segi);
	/* No pack of it is left to fail, and once released it may come back to this stream. */
	if (st->failed_seg == segi)
		st->failed_seg = FTL_SEG_NONE;
}

/* The end of a pack's device write, RC its result. Caller holds st->lock. */
static void pack_complete(struct ftl *ftl, struct ftl_stream *st, struct ftl_pack_buf *pb, int rc)
{
	if (rc == 0) {
		atomic_fetch_add(&ftl->dev_bytes, pb->total);
		ftl_seg_add_pack(ftl, pb->seg,
		                 pb->start); /* in ticket order: pack_offs stays sorted */
		st->seals++;
	} else {
		/* The pack's chunks are gone: their locations read back as checksum failures
		 * (-EIO, never wrong data). Later packs of the segment must not land behind the
		 * hole (a scan stops at it, a zone refuses them): they fail too, and so do the
		 * chunks already in the buffer being filled for it; the next append closes it. */
		st->failed_seg = pb->seg;
		if (!st->seal_err)
			st->seal_err = rc;
		if (st->seg == pb->seg && st->cur) {
			st->cur->nent = 0;
			st->cur->data_len = 0;
		}
	}
	if (pb->hdr_blocks > 1)
		pack_relocate_provisional(ftl, pb);
	if (rc == 0)
		pack_remember(ftl, st, pb);
	ftl->segs[pb->seg].end = pb->start + pb->total;
	if (st->seg == pb->seg)
		st->pack_start = pb->start + pb->total;
	if (pb->close_seg) {
		pb->close_seg = false;
		seg_close(ftl, st, pb->seg);
	}
	pb->sealed = false;
	pb->nent = 0;
	pb->data_len = 0;
	st->done_ticket = pb->ticket;
	if (!st->cur)
		st->cur = pb;
	pthread_cond_broadcast(&st->cond);
}

static int write_queued(struct ftl *ftl, struct ftl_stream *st);

/* Writes sealed pack PB when its turn comes. LOCKED: the caller holds st->lock and keeps it
 * across the write (GC streams and drains); otherwise the lock is taken only around the turn
 * and the completion. */
static int pack_write(struct ftl *ftl, struct ftl_stream *st, struct ftl_pack_buf *pb, bool locked)
{
	pack_build_header(ftl, pb);
	if (!locked)
		pthread_mutex_lock(&st->lock);
	while (st->done_ticket + 1 != pb->ticket)
		pthread_cond_wait(&st->cond, &st->lock);
	bool skip = pb->seg == st->failed_seg;
	if (!locked)
		pthread_mutex_unlock(&st->lock);
	int rc = -EIO;
	if (!skip) {
		uint8_t *hdr = pack_data(ftl, pb) - (size_t)pb->hdr_blocks * ftl->bs;
		rc = ftl_dev_write(ftl->dev, hdr, pb->total,
		                   ftl_seg_dev_off(ftl, pb->seg) + pb->start);
	}
	if (!locked)
		pthread_mutex_lock(&st->lock);
	pack_complete(ftl, st, pb, rc);
	/* Packs queued behind this one while it waited for its turn. */
	(void)write_queued(ftl, st); /* their errors are in seal_err */
	if (!locked)
		pthread_mutex_unlock(&st->lock);
	return rc;
}

/* Writes queued packs, each when its turn comes, while the next one is queued and no other
 * thread is at it. Caller holds st->lock, which is dropped across each device write. Returns the
 * first write error. */
static int write_queued(struct ftl *ftl, struct ftl_stream *st)
{
	int rc = 0;

	while (!st->writing) {
		struct ftl_pack_buf *pb = NULL;
		for (int b = 0; b < FTL_STREAM_BUFS; b++)
			if (st->pbs[b].sealed && st->pbs[b].queued &&
			    st->pbs[b].ticket == st->done_ticket + 1)
				pb = &st->pbs[b];
		if (!pb)
			break;
		pb->queued = false;
		st->writing = true;
		bool skip = pb->seg == st->failed_seg;
		pthread_mutex_unlock(&st->lock);
		int r = -EIO;
		pack_build_header(ftl, pb);
		if (!skip) {
			uint8_t *hdr = pack_data(ftl, pb) - (size_t)pb->hdr_blocks * ftl->bs;
			r = ftl_dev_write(ftl->dev, hdr, pb->total,
			                  ftl_seg_dev_off(ftl, pb->seg) + pb->start);
		}
		pthread_mutex_lock(&st->lock);
		st->writing = false;
		pack_complete(ftl, st, pb, r);
		rc = rc ? rc : r;
	}
	return rc;
}

/* The sealer does not wait for its pack's turn: it queues the pack, and the thread writing the
 * pack before it (if any) writes it next. A thread waiting for its turn was a context switch
 * per pack, and a preempted sealer held up every pack behind it. */
int ftl_stream_write_sealed(struct ftl *ftl, struct ftl_stream *st, struct ftl_pack_buf *pb)
{
	pthread_mutex_lock(&st->lock);
	pb->queued = true;
	int rc = write_queued(ftl, st);
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/* Caller holds st->lock. */
int ftl_stream_seal(struct ftl *ftl, struct ftl_stream *st)
{
	int rc = 0;
	st->draining++;
	if (st->seg != FTL_SEG_NONE && st->cur && st->cur->nent)
		rc = pack_write(ftl, st, pack_seal(ftl, st), true);
	while (stream_has_sealed(st))
		pthread_cond_wait(&st->cond, &st->lock);
	if (--st->draining == 0)
		pthread_cond_broadcast(&st->cond);
	return rc;
}

int ftl_streams_seal(struct ftl *ftl, enum ftl_stream_id first, enum ftl_stream_id last)
{
	int rc = 0;
	for (int i = first; i <= (int)last; i++) {
		struct ftl_stream *st = &ftl->streams[i];
		struct ftl_pack_buf *pb = NULL;
		pthread_mutex_lock(&st->lock);
		if (st->seg != FTL_SEG_NONE && st->seg != st->failed_seg && st->cur &&
		    st->cur->nent)
			pb = pack_seal(ftl, st);
		uint64_t target = st->next_ticket;
		pthread_mutex_unlock(&st->lock);
		if (pb)
			(void)pack_write(ftl, st, pb, false); /* its error is in seal_err */
		pthread_mutex_lock(&st->lock);
		while (st->done_ticket < target)
			pthread_cond_wait(&st->cond, &st->lock);
		if (st->seal_err && !rc)
			rc = st->seal_err;
		st->seal_err = 0;
		pthread_mutex_unlock(&st->lock);
	}
	return rc;
}

/* Caller holds st->lock. Seals what the buffer holds for the segment and closes it once
 * every pack sealed into it is written (GC may take a CLOSED segment at once; a zone is
 * finished when it closes). On a zoned namespace it waits for those writes, since the next
 * segment's zone must not be opened while this one is still active; elsewhere the last
 * pack's completion closes it (pack_complete) and appenders go on in a new segment. */
int ftl_stream_close_seg(struct ftl *ftl, struct ftl_stream *st)
{
	int rc = 0, r;
	uint32_t segi = st->seg;
	if (segi == FTL_SEG_NONE)
		return 0;
	for (;;) {
		if (st->seg != segi) /* another appender closed it while we waited */
			return rc;
		/* Appenders may fill the buffer while a write below waits for its turn: a
		 * smaller chunk can still fit in a segment too full for ours. */
		if (segi != st->failed_seg && st->cur && st->cur->nent) {
			r = pack_write(ftl, st, pack_seal(ftl, st), true);
			rc = rc ? rc : r;
			continue;
		}
		if (!stream_has_sealed(st))
			break;
		if (!ftl->zn) {
			/* The stream's last sealed pack is this segment's last. */
			struct ftl_pack_buf *last = NULL;
			for (int b = 0; b < FTL_STREAM_BUFS; b++)
				if (st->pbs[b].sealed &&
				    (!last || st->pbs[b].ticket > last->ticket))
					last = &st->pbs[b];
			last->close_seg = true;
			st->seg = FTL_SEG_NONE;
			return rc;
		}
		pthread_cond_wait(&st->cond, &st->lock);
	}
	seg_close(ftl, st, segi);
	st->seg = FTL_SEG_NONE;
	return rc;
}

static bool pack_has_room(struct ftl *ftl, struct ftl_stream *st, uint32_t fp)
{
	struct ftl_pack_buf *pb = st->cur;
	if (pb->nent >= ftl->max_entries || pb->data_len + fp > ftl->pack_data_cap)
		return false;
	uint64_t end = (uint64_t)st->fill_start +
	               (uint64_t)ftl_pack_hdr_blocks(pb->nent + 1, ftl->bs) * ftl->bs +
	               round_up(pb->data_len + fp, ftl->bs);
	return end <= ftl->seg_size;
}

/* Caller holds st->lock; the stream has no segment (packs of its last one may still be on
 * their way to the device). */
static int stream_open_seg(struct ftl *ftl, struct ftl_stream *st, enum ftl_alloc who)
{
	uint32_t seg;
	/* Reserve writes take from the reserve only when GC cannot give a segment back. */
	int rc = ftl_seg_alloc(ftl, st->id, who == FTL_ALLOC_GC ? who : FTL_ALLOC_USER, &seg);
	/* Foreground GC: the background thread fell behind. Lock order allows it: the GC takes
	 * gc_lock and GC streams only (invariant 5). Another writer, or the background GC for
	 * its own streams (it works just above the reserve), may take the segment this one
	 * freed before we get it: clean again then, a few times. */
	for (int tries = 0; rc == -ENOSPC && who != FTL_ALLOC_GC && tries < 8; tries++) {
		int r = ftl_gc_reclaim(ftl, ftl->reserve + 1);
		if (r == 0 || (r == -ENOSPC && who == FTL_ALLOC_RESERVE))
			rc = ftl_seg_alloc(ftl, st->id, who, &seg);
		else
			rc = r;
		if (r != 0) /* GC could not free enough: that is the answer */
			break;
	}
	if (rc)
		return rc;
	atomic_fetch_add(&ftl->segs_opened, 1); /* the checkpoint policy counts these */
	st->seg = seg;
	st->fill_start = ftl->bs;
	st->pack_start = ftl->bs;
	return 0;
}

/* Caller holds st->lock. */
int ftl_stream_append(struct ftl *ftl, struct ftl_stream *st, uint64_t id, uint64_t birth,
                      const uint8_t hash[FTL_HASH_LEN], uint32_t crc, uint8_t flags,
                      const void *payload, uint32_t len, uint64_t *loc_out, enum ftl_alloc who,
                      struct ftl_pack_buf **sealp)
{
	uint32_t fp = ftl_chunk_footprint(len);
	int rc;

	for (;;) {
		if (st->draining || !st->cur) {
			pthread_cond_wait(&st->cond, &st->lock);
			continue;
		}
		if (st->seg != FTL_SEG_NONE && st->seg == st->failed_seg) {
			rc = ftl_stream_close_seg(ftl, st);
			if (rc)
				return rc;
			continue;
		}
		if (st->seg == FTL_SEG_NONE) {
			rc = stream_open_seg(ftl, st, who);
			if (rc)
				return rc;
		}
		if (pack_has_room(ftl, st, fp))
			break;
		if (st->cur->nent) {
			struct ftl_pack_buf *pb = pack_seal(ftl, st);
			if (sealp) {
				*sealp = pb;
				return 1;
			}
			rc = pack_write(ftl, st, pb, true);
			if (rc)
				return rc;
			continue;
		}
		/* An empty pack that still does not fit: the segment is full. */
		rc = ftl_stream_close_seg(ftl, st);
		if (rc)
			return rc;
	}

	struct ftl_pack_buf *pb = st->cur;
	uint8_t *dst = pack_data(ftl, pb) + pb->data_len;
	struct ftl_chunk_disk hdr = {.crc = crc, .entry = (uint16_t)pb->nent, .flags = flags};
	memcpy(dst, &hdr, sizeof(hdr));
	memcpy(dst + sizeof(hdr), payload, len);
	memset(dst + sizeof(hdr) + len, 0, fp - sizeof(hdr) - len);

	struct ftl_pack_entry_disk *e = &pb->ents[pb->nent];
	e->id = id;
	e->birth = birth;
	if (hash)
		memcpy(e->hash, hash, FTL_HASH_LEN);
	else
		memset(e->hash, 0, FTL_HASH_LEN);
	e->len_flags = ftl_len_flags(len, flags);
	e->crc = crc;

	uint32_t off = st->fill_start + ftl->bs + pb->data_len;
	pb->nent++;
	pb->data_len += fp;
	atomic_fetch_add_explicit(&st->writes, 1, memory_order_relaxed);
	atomic_fetch_add(&ftl->segs[st->seg].live_bytes, fp);
	atomic_fetch_add_explicit(&ftl->segs[st->seg].birth_sum, birth, memory_order_relaxed);
	atomic_fetch_add_explicit(&ftl->segs[st->seg].birth_n, 1, memory_order_relaxed);
	*loc_out = ftl_loc_make(st->seg, off, len);
	return 0;
}

/* The chunk at LOC (id ID) in pack buffer PB, which holds NENT chunks from provisional data
 * offset BASE of segment SEGI; NULL if it is not there. */
static const uint8_t *buffered_chunk(struct ftl *ftl, struct ftl_pack_buf *pb, uint32_t pseg,
                                     uint32_t base, uint32_t segi, uint32_t off, uint32_t len,
                                     uint64_t id, struct ftl_chunk_disk *h)
{
	if (pseg != segi || off < base || off + ftl_chunk_footprint(len) > base + pb->data_len)
		return NULL;
	const uint8_t *src = pack_data(ftl, pb) + (off - base);
	memcpy(h, src, sizeof(*h));
	if (h->entry >= pb->nent || pb->ents[h->entry].id != id)
		return NULL; /* not the chunk we look for: let the caller retry */
	return src;
}

/* A chunk that is in no pack buffer: from what stream ST keeps of the packs it wrote last, the
 * hash alone (a dedupe check: their summaries) or the chunk itself when KEPT (their bytes). */
static int read_written(struct ftl *ftl, struct ftl_stream *st, uint64_t loc, uint64_t id,
                        void *out, uint32_t len, struct ftl_chunk_disk *hdr, uint8_t *hash,
                        bool kept)
{
	if (hash && !out && !hdr)
		return recent_hash(ftl, st, loc, id, hash);
	return kept && out && hdr && !hash ? recent_bytes(ftl, st, loc, out, len, hdr) : 0;
}

int ftl_stream_read_buffered(struct ftl *ftl, uint64_t loc, uint64_t id, void *out, uint32_t len,
                             struct ftl_chunk_disk *hdr, uint8_t *hash, bool kept)
{
	uint32_t segi = ftl_loc_seg(loc), off = ftl_loc_off(loc);
	if (segi >= ftl->nsegs)
		return 0;
	uint8_t sid = atomic_load(&ftl->segs[segi].stream);
	if (sid >= FTL_STREAM_COUNT)
		return 0;
	struct ftl_stream *st = &ftl->streams[sid];
	if (atomic_load(&ftl->segs[segi].state) != FTL_SEG_OPEN)
		return read_written(ftl, st, loc, id, out, len, hdr, hash, kept);
	struct ftl_chunk_disk h;
	struct ftl_pack_buf *pb = NULL;
	const uint8_t *src = NULL;

	pthread_mutex_lock(&st->lock);
	/* The buffer being filled, then the sealed ones still on their way to the device: each
	 * covers its own range of the segment, so at most one can hold LOC. */
	if (st->cur)
		src = buffered_chunk(ftl, st->cur, st->seg, st->fill_start + ftl->bs, segi, off,
		                     len, id, &h);
	if (src)
		pb = st->cur;
	for (int b = 0; !src && b < FTL_STREAM_BUFS; b++) {
		pb = &st->pbs[b];
		if (pb->sealed)
			src = buffered_chunk(ftl, pb, pb->seg, pb->start + ftl->bs, segi, off, len,
			                     id, &h);
	}
	if (!src) {
		pthread_mutex_unlock(&st->lock);
		return read_written(ftl, st, loc, id, out, len, hdr, hash, kept);
	}
	if (hdr)
		*hdr = h;
	if (out)
		memcpy(out, src + sizeof(h), len);
	if (hash)
		memcpy(hash, pb->ents[h.entry].hash, FTL_HASH_LEN);
	pthread_mutex_unlock(&st->lock);
	return 1;
}
