/* flash/ftl_gc.c - garbage collection and static wear leveling.
 *
 * Picks victims by cost-benefit (free space gained x age / cost of moving the live part),
 * relocates live chunks to the GC streams keeping their addresses (only the L2P changes), and
 * frees a victim only once the copies are flushed (ftl_int.h invariant 3). Holds gc_lock while
 * it works; never takes a user stream's lock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ftl_int.h"

static uint32_t seg_usable(const struct ftl *ftl)
{
	return ftl->seg_size - ftl->bs;
}

/* Returns the victim or FTL_SEG_NONE when no closed segment would give space back. GREEDY
 * takes the one with the most dead space: what a writer waiting for space needs. */
static uint32_t gc_pick_victim(struct ftl *ftl, bool greedy)
{
	uint64_t now = atomic_load(&ftl->clock);
	uint32_t best = FTL_SEG_NONE;
	double best_score = 0;
	for (uint32_t i = 0; i < ftl->nsegs; i++) {
		struct ftl_seg *s = &ftl->segs[i];
		if (atomic_load(&s->state) != FTL_SEG_CLOSED || atomic_load(&s->pinned) ||
		    atomic_load(&s->gc_pending))
			continue;
		uint32_t live = atomic_load(&s->live_bytes);
		/* Moving a segment to gain a few blocks costs a whole segment of writes and, on a
		 * full device, never ends: demand 1/16 of a segment back. */
		if (live + seg_usable(ftl) / 16 > seg_usable(ftl))
			continue;
		double u = (double)live / seg_usable(ftl);
		double age = (double)(now - s->close_clock) + (double)ftl->seg_size;

		/* Rosenblum and Ousterhout: benefit/cost = (1-u) * age / (1+u). */
		double score = greedy ? 1.0 - u : (1.0 - u) * age / (1.0 + u);
		if (best == FTL_SEG_NONE || score > best_score) {
			best = i;
			best_score = score;
		}
	}
	return best;
}

/* Copies one chunk (summary entry E, chunk bytes at C) to GC stream T and points the L2P at the
 * copy if it still points at OLD; *SWITCHED says whether it did. Copied as it is, checksum
 * included: a damaged chunk stays detectably damaged rather than becoming valid garbage. The
 * L2P switch happens under the stream lock, before a seal can move the provisional location
 * (invariant 2). */
static int gc_append(struct ftl *ftl, enum ftl_stream_id t, const struct ftl_pack_entry_disk *e,
                     const uint8_t *c, uint32_t len, uint64_t old, bool *switched)
{
	struct ftl_stream *st =
	    &ftl->streams[ftl->stream_map[t]]; /* folded on some zoned devices */
	uint64_t nloc;

	*switched = false;
	pthread_mutex_lock(&st->lock);
	int rc = ftl_stream_append(ftl, st, e->id, e->birth, e->hash, e->crc,
	                           (uint8_t)(e->len_flags >> 24), c + sizeof(struct ftl_chunk_disk),
	                           len, &nloc, FTL_ALLOC_GC, NULL);
	if (rc == 0 && ftl_l2p_cas(&ftl->l2p, e->id, old, nloc))
		*switched = true;
	else if (rc == 0) /* freed while we copied: the copy is dead on arrival */
		atomic_fetch_sub(&ftl->segs[ftl_loc_seg(nloc)].live_bytes,
		                 ftl_chunk_footprint(len));
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/* Relocates every live chunk of a pack held in BUF (the pack's bytes, header first). */
static int gc_move_pack(struct ftl *ftl, uint32_t victim, uint32_t pack_off, const uint8_t *pk,
                        bool force, uint64_t *moved)
{
	const struct ftl_pack_disk *ph = (const struct ftl_pack_disk *)pk;
	const struct ftl_pack_entry_disk *e =
	    (const struct ftl_pack_entry_disk *)(pk + sizeof(*ph));
	uint32_t cur = pack_off + ph->hdr_blocks * ftl->bs;
	uint64_t now = atomic_load(&ftl->next_birth);
	uint64_t live = atomic_load(&ftl->l2p.live);
	bool from_hot = ftl_stream_is_hot(atomic_load(&ftl->segs[victim].stream));

	for (uint32_t i = 0; i < ph->nentries; i++) {
		uint32_t len = e[i].len_flags & FTL_LEN_MASK;
		uint32_t fp = ftl_chunk_footprint(len);
		if (len == 0 || len > FTL_CHUNK_MAX || cur + fp > ftl->seg_size)
			return -EUCLEAN;
		uint64_t old = ftl_loc_make(victim, cur, len);
		if (ftl_l2p_get(&ftl->l2p, e[i].id) == old) {
			const uint8_t *c = pk + (cur - pack_off);
			bool switched;
			/* A survivor of a hot segment says by its own age (births since it was
			 * written; GC keeps births) where it belongs: younger than one turnover of
			 * the live set it is still warm, older it is cold. A survivor of a cold
			 * segment stays cold: it was placed cold and outlived a cold segment's
			 * cleaning, and the few hot chunks there die soon wherever they go, where a
			 * cold one sent to gc-hot would be copied again by every hot cleaning.
			 * Forced moves (wear leveling) take cold data by definition. */
			enum ftl_stream_id t = !force && from_hot && now - e[i].birth < live &&
			                               atomic_load(&ftl->heat_separate)
			                           ? FTL_STREAM_GC_HOT
			                           : FTL_STREAM_GC_COLD;
			int rc = gc_append(ftl, t, &e[i], c, len, old, &switched);
			/* Down to the last free segment (reserve writes may leave GC only one):
			 * the other GC stream's open segment is better than no cleaning. */
			if (rc == -ENOSPC)
				rc = gc_append(ftl,
				               t == FTL_STREAM_GC_HOT ? FTL_STREAM_GC_COLD
				                                      : FTL_STREAM_GC_HOT,
				               &e[i], c, len, old, &switched);
			if (rc)
				return rc;
			if (switched) {
				atomic_fetch_sub(&ftl->segs[victim].live_bytes, fp);
				*moved += len;
			}
		}
		cur += fp;
	}
	return 0;
}

/* The GC streams as they are written (folded on some zoned devices). */
static struct ftl_stream *gc_stream(struct ftl *ftl, int j)
{
	return &ftl->streams[ftl->stream_map[j ? FTL_STREAM_GC_COLD : FTL_STREAM_GC_HOT]];
}

/* Frees the pending victims whose copies are written (all of them after a seal when SEAL), the
 * copies flushed first (invariant 3). A failed pack write of a GC stream since the last seal
 * keeps them pending and is returned, as a seal would report it. Caller holds gc_lock. */
static int gc_release_ready(struct ftl *ftl, bool seal)
{
	uint64_t done[2];
	int rc = 0;

	if (!ftl->gc_npend)
		return 0;
	if (seal) {
		rc = ftl_streams_seal(ftl, FTL_STREAM_GC_HOT, FTL_STREAM_GC_COLD);
		if (rc)
			return rc;
	}
	for (int j = 0; j < 2; j++) {
		struct ftl_stream *st = gc_stream(ftl, j);
		pthread_mutex_lock(&st->lock);
		done[j] = st->done_ticket;
		bool failed = st->seal_err != 0;
		pthread_mutex_unlock(&st->lock);
		if (failed)
			return ftl_streams_seal(ftl, FTL_STREAM_GC_HOT, FTL_STREAM_GC_COLD);
	}
	/* Needs grow with the order of cleaning: the ready ones are a prefix. */
	uint32_t n = 0;
	bool copies = false;
	while (n < ftl->gc_npend && ftl->gc_pend[n].need[0] <= done[0] &&
	       ftl->gc_pend[n].need[1] <= done[1]) {
		copies |= ftl->gc_pend[n].need[0] || ftl->gc_pend[n].need[1];
		n++;
	}
	if (!n)
		return 0;
	/* Victims that moved nothing wait for no pack and need no flush. */
	rc = copies ? ftl_flush(ftl) : 0;
	if (rc)
		return rc;
	uint32_t i = 0;
	for (; i < n; i++) {
		uint32_t v = ftl->gc_pend[i].seg;
		atomic_store(&ftl->segs[v].gc_pending, 0);
		atomic_fetch_add(&ftl->gc_runs, 1);
		rc = ftl_seg_release(ftl, v);
		if (rc) {
			i++;
			break;
		}
	}
	memmove(ftl->gc_pend, ftl->gc_pend + i, (ftl->gc_npend - i) * sizeof(ftl->gc_pend[0]));
	ftl->gc_npend -= i;
	return rc;
}

int ftl_gc_release_pending(struct ftl *ftl)
{
	pthread_mutex_lock(&ftl->gc_lock);
	int rc = gc_release_ready(ftl, true);
	pthread_mutex_unlock(&ftl->gc_lock);
	return rc;
}

/* Cleaned victim V waits for the packs that may hold its copies: the one being filled in each
 * GC stream, or the last one sealed; none when it MOVED nothing. Caller holds gc_lock; there
 * is room in gc_pend. */
static void gc_pend_add(struct ftl *ftl, uint32_t v, uint64_t moved)
{
	struct ftl_gc_pending *p = &ftl->gc_pend[ftl->gc_npend++];
	p->seg = v;
	p->need[0] = p->need[1] = 0;
	for (int j = 0; j < 2 && moved; j++) {
		struct ftl_stream *st = gc_stream(ftl, j);
		pthread_mutex_lock(&st->lock);
		p->need[j] = st->next_ticket + (st->cur && st->cur->nent ? 1 : 0);
		pthread_mutex_unlock(&st->lock);
	}
	atomic_store(&ftl->segs[v].gc_pending, 1);
}

/* Cleans one closed segment; FORCE (wear leveling) cleans it whatever it holds and sends its
 * data to the cold stream. Without FORCE or SEAL the victim is freed when the pack its last
 * copies went to is written (gc_release_ready), which a later victim's copies usually do: a
 * part-filled pack sealed per victim cost 1.5% more device bytes and 0.8% of the GC segments'
 * room on 1 MiB segments (flash/README.md). Caller holds gc_lock. */
static int gc_clean(struct ftl *ftl, uint32_t victim, bool force, bool seal)
{
	struct ftl_seg *s = &ftl->segs[victim];
	uint32_t end = s->end;
	uint64_t moved = 0;
	int rc = 0;

	if (end > ftl->bs && atomic_load(&s->live_bytes) > 0) {
		rc = ftl_dev_read(ftl->dev, ftl->gc_buf, end, ftl_seg_dev_off(ftl, victim));
		if (rc)
			goto out_pin;
		/* Walk the pack chain in the copy we just read; it is the truth, pack_offs only a
		 * cache. A pack that fails its checks ends the walk, and the live-bytes check below
		 * keeps the segment if that leaves a live chunk behind. */
		uint32_t off = ftl->bs;
		while (off + ftl->bs <= end) {
			uint8_t *pk = ftl->gc_buf + off;
			struct ftl_pack_disk *ph = (struct ftl_pack_disk *)pk;
			if (!ftl_pack_header_ok(ftl, ph, s->seq, off) ||
			    off + ph->total_bytes > end)
				break;
			rc = gc_move_pack(ftl, victim, off, pk, force, &moved);
			if (rc)
				goto out;
			off += ph->total_bytes;
		}
	}
	/* Waiting keeps about one cleaned segment idle, 1/nsegs of the room; a seal per victim
	 * costs a part-filled pack, one to two blocks (measured on 1 MiB segments: 1.6), per
	 * victim's MOVED bytes. Wait only where the seal clearly costs more: 1 MiB segments of a
	 * 4 GiB namespace (0.7 MiB moved a victim against 16 MiB), not 4 MiB ones of 1 GiB (1.4
	 * to 2.7 MiB against 1 MiB: waiting there made uniform writes 1.2% and 80/20 0.6% worse).
	 */
	bool wait = moved < (uint64_t)ftl->bs * ftl->nsegs;
	if (!force && !seal && wait && atomic_load(&s->live_bytes) == 0 &&
	    ftl->gc_npend < FTL_GC_PEND_MAX) {
		atomic_fetch_add(&ftl->gc_bytes, moved);
		gc_pend_add(ftl, victim, moved);
		return gc_release_ready(ftl, false);
	}
	/* A victim that moved nothing, with no other waiting, has no copies to make durable
	 * first: a flush costs a device's write queue far more than the release (ftl_flush). */
	if (moved || ftl->gc_npend) {
		rc = ftl_streams_seal(ftl, FTL_STREAM_GC_HOT, FTL_STREAM_GC_COLD);
		if (rc)
			goto out;
		rc = ftl_flush(ftl);
		if (rc)
			goto out;
		/* The seal wrote every pending victim's copies too. */
		rc = gc_release_ready(ftl, false);
		if (rc)
			goto out;
	}
	if (atomic_load(&s->live_bytes) != 0)
		goto out_pin;
	atomic_fetch_add(&ftl->gc_bytes, moved);
	atomic_fetch_add(&ftl->gc_runs, 1);
	if (force)
		atomic_fetch_add(&ftl->wear_moves, 1);
	return ftl_seg_release(ftl, victim);

out_pin:
	/* Live data we cannot account for stays where it is: better a segment lost to GC than a
	 * chunk lost to the user. Reads of it fail with -EIO if it is really damaged. */
	atomic_store(&s->pinned, 1);
	if (!rc)
		rc = -EUCLEAN;
out:
	return rc;
}

/* Static wear leveling: when the least-worn segment holds (cold) data and lags the most worn
 * by more than the allowed spread, move its data so it rejoins the free pool. */
static int gc_wear_level(struct ftl *ftl)
{
	uint32_t min_closed = FTL_SEG_NONE, min_free = UINT32_MAX, max_e = 0;
	uint64_t sum = 0;
	for (uint32_t i = 0; i < ftl->nsegs; i++) {
		struct ftl_seg *s = &ftl->segs[i];
		uint8_t state = atomic_load(&s->state);
		sum += s->erase_count;
		if (s->erase_count > max_e)
			max_e = s->erase_count;
		if (state == FTL_SEG_FREE && s->erase_count < min_free)
			min_free = s->erase_count;
		if (state == FTL_SEG_CLOSED && !atomic_load(&s->pinned) &&
		    !atomic_load(&s->gc_pending) &&
		    (min_closed == FTL_SEG_NONE ||
		     s->erase_count < ftl->segs[min_closed].erase_count))
			min_closed = i;
	}
	if (min_closed == FTL_SEG_NONE)
		return 0;
	uint32_t lo = ftl->segs[min_closed].erase_count;
	double mean = (double)sum / ftl->nsegs;
	/* The allowed spread grows with wear so the bound is relative (max/mean), with a floor
	 * so young devices do not shuffle data for nothing. */
	double spread = ftl->cfg.wear_spread;
	if (spread < mean * 0.08)
		spread = mean * 0.08;
	if ((double)(max_e - lo) <= spread || lo >= min_free)
		return 0;
	return gc_clean(ftl, min_closed, true, true) == 0 ? 1 : 0;
}

/* Cleanings without a new free segment after which cost-benefit gives way to greedy (and four
 * times as many after which GC gives up: the device is full of live data). */
#define GC_STALL_CLEANINGS (2 * FTL_STREAM_COUNT + 16)

static uint32_t nfree_now(struct ftl *ftl)
{
	return atomic_load(&ftl->nfree);
}

/* Cleans until WANT_FREE segments are free, or MAX_SEGMENTS victims are cleaned. SEAL: the
 * victims cleaned are freed before it returns (ftl_gc's callers count on it); else a victim may
 * stay pending until a later pass fills its copies' pack (gc_clean). */
static int gc_run_locked(struct ftl *ftl, uint32_t max_segments, uint32_t want_free, bool seal)
{
	int cleaned = 0, rc = 0, since_gain = 0;
	uint32_t best_free = nfree_now(ftl);
	for (;;) {
		if (max_segments && (uint32_t)cleaned >= max_segments)
			break;
		uint32_t nfree = nfree_now(ftl);
		if (!max_segments && nfree >= want_free)
			break;
		/* A victim may need a new segment in each GC stream (its live data is less than a
		 * segment): below two free ones, free the pending victims before the next. */
		if (ftl->gc_npend && nfree < 2) {
			rc = gc_release_ready(ftl, true);
			if (rc)
				return rc;
			continue;
		}
		/* Victims must pay for themselves within a few cleanings. When cost-benefit picks
		 * do not, take the emptiest segments; when even those do not, the device is full
		 * of live data and more moving would only wear it. */
		if (nfree > best_free) {
			best_free = nfree;
			since_gain = 0;
		} else if (++since_gain > 4 * GC_STALL_CLEANINGS) {
			break;
		}
		bool urgent = nfree < ftl->reserve || since_gain > GC_STALL_CLEANINGS ||
		              !atomic_load(&ftl->heat_separate);
		uint32_t v = gc_pick_victim(ftl, urgent);
		if (v == FTL_SEG_NONE && ftl->gc_npend) {
			/* Nothing left to clean: what is pending is all there is to gain. */
			rc = gc_release_ready(ftl, true);
			if (rc)
				return rc;
			continue;
		}
		if (v == FTL_SEG_NONE)
			break;
		rc = gc_clean(ftl, v, false, false);
		if (rc && rc != -EUCLEAN)
			return rc;
		if (rc == 0) {
			cleaned++;
			if (urgent)
				atomic_fetch_add(&ftl->gc_greedy, 1);
		}
	}
	cleaned += gc_wear_level(ftl);
	if (seal) {
		rc = gc_release_ready(ftl, true);
		if (rc)
			return rc;
	}
	return cleaned;
}

static uint32_t pct_segs(struct ftl *ftl, uint32_t pct)
{
	uint32_t n = (uint32_t)((uint64_t)ftl->nsegs * pct / 100);
	return n > ftl->reserve + 1 ? n : ftl->reserve + 1;
}

int ftl_gc(struct ftl *ftl, uint32_t max_segments)
{
	if (ftl->rdonly)
		return -EROFS;
	pthread_mutex_lock(&ftl->gc_lock);
	int rc = gc_run_locked(ftl, max_segments, pct_segs(ftl, ftl->cfg.gc_high_pct), true);
	/* Asked for space now: what it freed is trimmed before it returns. */
	if (rc >= 0 && ftl_seg_trims_due(ftl)) {
		int r = ftl_flush(ftl);
		rc = r ? r : rc;
	}
	pthread_mutex_unlock(&ftl->gc_lock);
	return rc;
}

int ftl_gc_reclaim(struct ftl *ftl, uint32_t want_free)
{
	pthread_mutex_lock(&ftl->gc_lock);
	int rc = gc_run_locked(ftl, 0, want_free, false);
	/* Judged under gc_lock: once it is dropped the background GC may open a segment for its
	 * own streams, which is no reason to fail a writer (stream_open_seg cleans again). */
	if (rc >= 0)
		rc = nfree_now(ftl) >= want_free ? 0 : -ENOSPC;
	pthread_mutex_unlock(&ftl->gc_lock);
	return rc;
}

static void *gc_thread_main(void *arg)
{
	struct ftl *ftl = arg;
	pthread_mutex_lock(&ftl->gc_wait_lock);
	while (!ftl->gc_stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&ftl->gc_cond, &ftl->gc_wait_lock, &ts);
		if (ftl->gc_stop)
			break;
		if (nfree_now(ftl) >= ftl->gc_bg_low)
			continue;
		pthread_mutex_unlock(&ftl->gc_wait_lock);
		/* Small steps so foreground GC and sync never wait behind a long pass; the
		 * victims of one step are freed by the next (gc_clean), the last ones at the end.
		 */
		for (int i = 0; i < 64 && !ftl->gc_stop && nfree_now(ftl) < ftl->gc_bg_high; i++) {
			pthread_mutex_lock(&ftl->gc_lock);
			int n = gc_run_locked(ftl, 1, 0, false);
			pthread_mutex_unlock(&ftl->gc_lock);
			if (n <= 0)
				break;
		}
		(void)ftl_gc_release_pending(ftl);
		pthread_mutex_lock(&ftl->gc_wait_lock);
	}
	pthread_mutex_unlock(&ftl->gc_wait_lock);
	return NULL;
}

int ftl_gc_start(struct ftl *ftl)
{
	pthread_mutex_init(&ftl->gc_wait_lock, NULL);
	pthread_cond_init(&ftl->gc_cond, NULL);
	ftl->gc_stop = false;
	if (!ftl->cfg.gc_thread || ftl->rdonly)
		return 0;
	int rc = pthread_create(&ftl->gc_thread, NULL, gc_thread_main, ftl);
	if (rc)
		return -rc;
	ftl->gc_thread_running = true;
	return 0;
}

void ftl_gc_stop(struct ftl *ftl)
{
	if (ftl->gc_thread_running) {
		pthread_mutex_lock(&ftl->gc_wait_lock);
		ftl->gc_stop = true;
		pthread_cond_signal(&ftl->gc_cond);
		pthread_mutex_unlock(&ftl->gc_wait_lock);
		pthread_join(ftl->gc_thread, NULL);
		ftl->gc_thread_running = false;
	}
	pthread_cond_destroy(&ftl->gc_cond);
	pthread_mutex_destroy(&ftl->gc_wait_lock);
}

void ftl_gc_kick(struct ftl *ftl)
{
	if (!ftl->gc_thread_running)
		return;
	pthread_mutex_lock(&ftl->gc_wait_lock);
	pthread_cond_signal(&ftl->gc_cond);
	pthread_mutex_unlock(&ftl->gc_wait_lock);
}
