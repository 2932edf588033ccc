/* flash/ftl_core.c - the FTL's front door: open/close, write, read, free, sync.
 *
 * Chooses the write stream (hot/cold by how soon data is rewritten), keeps the L2P current and
 * verifies every chunk read (ftl_int.h invariants 2 and 4). Segment, pack and GC mechanics live
 * in ftl_segment.c, ftl_stream.c and ftl_gc.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ftl_hdrcache.h"
#include "ftl_zone_int.h"

static int64_t ftl_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Per-thread read state: the bounce buffer of one chunk read, and the read-ahead window that
 * ftl_read_ahead turns on (device bytes [win_off, win_off + win_len) in WIN). Thread-local, so
 * no lock: every chunk served from it is checked like any other. */
#define READ_BUF_SIZE  (FTL_CHUNK_MAX + 3 * 65536u) /* a multiple of 4096 (aligned_alloc) */
#define READ_AHEAD_MAX (256u * 1024)
#define READ_WIN_SIZE  (READ_AHEAD_MAX + READ_BUF_SIZE)

struct read_tls {
	uint8_t *buf;          /* READ_BUF_SIZE: one chunk with alignment slack on both sides */
	uint8_t *win;          /* READ_WIN_SIZE, allocated at the first read-ahead */
	const struct ftl *ftl; /* whose device the window holds */
	uint64_t win_off, last_end;
	uint32_t win_len, ahead;
	uint32_t win_seg; /* the one segment the window lies in, and its seq at the fill */
	uint64_t win_seq;
	bool device_only; /* ftl_read_device_only */
};

/* A segment's incarnation (seq is guarded by seg_lock): a segment whose seq has not changed
 * since the window was filled was not erased since, so the window still holds its bytes. */
static uint64_t seg_seq(struct ftl *ftl, uint32_t segi)
{
	pthread_mutex_lock(&ftl->seg_lock);
	uint64_t seq = ftl->segs[segi].seq;
	pthread_mutex_unlock(&ftl->seg_lock);
	return seq;
}

static pthread_key_t read_tls_key;
static pthread_once_t read_tls_once = PTHREAD_ONCE_INIT;

static void read_tls_free(void *arg)
{
	struct read_tls *t = arg;

	free(t->buf);
	free(t->win);
	free(t);
}

static void read_tls_key_init(void)
{
	pthread_key_create(&read_tls_key, read_tls_free);
}

static struct read_tls *read_tls(void)
{
	pthread_once(&read_tls_once, read_tls_key_init);
	struct read_tls *t = pthread_getspecific(read_tls_key);
	if (t)
		return t;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->buf = aligned_alloc(4096, READ_BUF_SIZE);
	if (!t->buf || pthread_setspecific(read_tls_key, t)) {
		read_tls_free(t);
		return NULL;
	}
	return t;
}

static void ftl_free_all(struct ftl *ftl)
{
	ftl_hdrcache_destroy(ftl->hdrcache);
	ftl_zone_free(ftl);
	ftl_streams_destroy(ftl);
	ftl_segs_destroy(ftl);
	ftl_l2p_destroy(&ftl->l2p);
	free(ftl->gc_buf);
	free(ftl->ckpt_segs);
	pthread_mutex_destroy(&ftl->gc_lock);
	pthread_mutex_destroy(&ftl->ckpt_lock);
	free(ftl);
}

int ftl_open(const struct ftl_config *cfg, struct ftl **out)
{
	struct ftl *ftl;
	int rc;

	if (!cfg || !cfg->dev || !out)
		return -EINVAL;
	ftl = calloc(1, sizeof(*ftl));
	if (!ftl)
		return -ENOMEM;
	ftl->dev = cfg->dev;
	ftl->cfg = *cfg;
	atomic_store(&ftl->heat_separate, true); /* until the predictions are graded */
	/* Without watermarks the background GC keeps just ahead of the writers (below). */
	bool gc_marks_default = !ftl->cfg.gc_low_pct && !ftl->cfg.gc_high_pct;
	if (!ftl->cfg.gc_low_pct)
		ftl->cfg.gc_low_pct = 10;
	if (!ftl->cfg.gc_high_pct)
		ftl->cfg.gc_high_pct = 15;
	if (ftl->cfg.gc_high_pct < ftl->cfg.gc_low_pct)
		ftl->cfg.gc_high_pct = ftl->cfg.gc_low_pct;
	if (!ftl->cfg.wear_spread)
		ftl->cfg.wear_spread = 4;
	pthread_mutex_init(&ftl->gc_lock, NULL);
	pthread_mutex_init(&ftl->ckpt_lock, NULL);
	int64_t t0 = ftl_now_ns();

	rc = ftl_hdrcache_create(&ftl->hdrcache);
	if (rc)
		goto err_free;

	rc = ftl_read_superblock(cfg->dev, &ftl->sb);
	if (rc)
		goto err_free;
	ftl->bs = ftl->sb.block_size;
	ftl->seg_size = (uint32_t)ftl->sb.segment_size;
	ftl->nsegs = ftl->sb.segment_count;
	ftl->max_entries = (FTL_PACK_HDR_MAX * ftl->bs - sizeof(struct ftl_pack_disk)) /
	                   sizeof(struct ftl_pack_entry_disk);
	if (ftl->max_entries > UINT16_MAX)
		ftl->max_entries = UINT16_MAX;
	ftl->pack_data_cap = 1u << 20;
	if (ftl->pack_data_cap > ftl->seg_size - 2 * ftl->bs)
		ftl->pack_data_cap = (ftl->seg_size - 2 * ftl->bs) / ftl->bs * ftl->bs;
	/* GC must always be able to clean one segment: its survivors may open one new segment
	 * in each GC stream before the victim is freed. Large devices keep a little more so
	 * background GC has room to run ahead. */
	ftl->reserve = 2 + ftl->nsegs / 256;
	/* The background GC cleans while fewer than gc_bg_low segments are free, up to
	 * gc_bg_high. Each segment it keeps free beyond what writers need is log space GC cannot
	 * use: at 80% live data, WAF grows about 5% per 1% of the segments kept idle (10-15% free
	 * made uniform writes 1.16x the peer on 254 segments, flash/README.md). By default it keeps
	 * one segment ahead of the writers' limit (the reserve), so a writer rarely cleans itself.
	 */
	ftl->gc_bg_low = gc_marks_default
	                     ? ftl->reserve + 2
	                     : (uint32_t)((uint64_t)ftl->nsegs * ftl->cfg.gc_low_pct / 100);
	ftl->gc_bg_high = gc_marks_default
	                      ? ftl->reserve + 2
	                      : (uint32_t)((uint64_t)ftl->nsegs * ftl->cfg.gc_high_pct / 100);
	if (ftl->gc_bg_low < ftl->reserve + 1)
		ftl->gc_bg_low = ftl->reserve + 1;
	if (ftl->gc_bg_high < ftl->gc_bg_low)
		ftl->gc_bg_high = ftl->gc_bg_low;
	ftl->rdonly = ftl_dev_is_rdonly(ftl->dev); /* writes would fail anyway: say -EROFS */

	/* A chunk takes at least a 56-byte summary entry and an 8-byte-aligned body. */
	rc = ftl_l2p_init(&ftl->l2p, (uint64_t)ftl->nsegs * ftl->seg_size / 64);
	if (rc)
		goto err_free;
	rc = ftl_segs_init(ftl);
	if (rc)
		goto err_free;
	rc = ftl_streams_init(ftl);
	if (rc)
		goto err_free;
	ftl->gc_buf = aligned_alloc(4096, ftl->seg_size);
	if (!ftl->gc_buf) {
		rc = -ENOMEM;
		goto err_free;
	}
	/* Zoned: the zone report (what is written where) before the scan reads anything. */
	rc = ftl_zone_open(ftl);
	if (rc)
		goto err_free;
	rc = ftl_scan(ftl);
	if (rc)
		goto err_free;
	rc = ftl_zone_after_scan(ftl);
	if (rc)
		goto err_free;
	ftl->open_ns = (uint64_t)(ftl_now_ns() - t0);
	rc = ftl_gc_start(ftl);
	if (rc)
		goto err_free;
	*out = ftl;
	return 0;

err_free:
	ftl_free_all(ftl);
	return rc;
}

uint64_t ftl_room_bytes(struct ftl *ftl)
{
	uint64_t segs = ftl->nsegs > ftl->reserve ? ftl->nsegs - ftl->reserve : 0;
	uint64_t usable = segs * (ftl->seg_size - ftl->bs);
	uint64_t live = atomic_load(&ftl->bytes_live);
	return usable > live ? usable - live : 0;
}

int ftl_sync(struct ftl *ftl)
{
	int rc = ftl_streams_seal(ftl, 0, FTL_STREAM_COUNT - 1);
	int r = ftl_flush(ftl);
	return rc ? rc : r;
}

void ftl_close(struct ftl *ftl)
{
	if (!ftl)
		return;
	ftl_gc_stop(ftl);
	(void)ftl_sync(ftl);
	/* Cleaned victims still waiting for their copies' pack: the sync wrote it. */
	if (!ftl->rdonly)
		(void)ftl_gc_release_pending(ftl);
	ftl_checkpoint_at_close(ftl);
	/* TRIMs still due (segments released after the last flush, such as the checkpoint
	 * this close replaced): an image file is left as sparse as its contents allow. */
	if (!ftl->rdonly && ftl_seg_trims_due(ftl))
		(void)ftl_flush(ftl);
	ftl_free_all(ftl);
}

/* The classifier's grade. Once enough chunks of both predictions have died, separation stays
 * on only while chunks predicted hot die young clearly more often than those predicted cold.
 * Under uniform writes both die young alike (the classifier sees noise), and one user stream
 * moves about 3% less data in GC; under 80/20 the hot prediction is right most of the time
 * and two streams move about a quarter less (tests/bench, ftl.*.waf). */
#define HEAT_GRADE_MIN    2048u  /* deaths of each prediction before it is graded */
#define HEAT_GRADE_WINDOW 65536u /* counts halve beyond this: the grade follows the workload */
#define HEAT_GRADE_ON     0.15   /* P(young | hot) - P(young | cold) worth a second stream... */
#define HEAT_GRADE_OFF    0.08   /* ...and below which it is not (apart: no flapping between) */

/* Separation turned off: the hot streams' open segments would sit part-filled for as long as
 * it stays off, their free space lost to everything else. Closing them makes that space dead
 * space GC gains back. */
static void heat_close_hot_segments(struct ftl *ftl)
{
	static const enum ftl_stream_id hot[] = {FTL_STREAM_USER_HOT, FTL_STREAM_GC_HOT};
	for (size_t i = 0; i < sizeof(hot) / sizeof(hot[0]); i++) {
		struct ftl_stream *st = &ftl->streams[ftl->stream_map[hot[i]]];
		if (ftl->stream_map[hot[i]] != hot[i])
			continue; /* folded into another stream (zoned): that one stays in use */
		pthread_mutex_lock(&st->lock);
		(void)ftl_stream_close_seg(ftl, st); /* a failed pack write is in seal_err */
		pthread_mutex_unlock(&st->lock);
	}
}

/* The current birth epoch (FTL_HEAT_EPOCH_SHIFT), ticking every half turnover of the live set. */
static uint32_t heat_epoch_now(struct ftl *ftl, uint64_t now, uint64_t live)
{
	uint64_t start = atomic_load_explicit(&ftl->heat_epoch_birth, memory_order_relaxed);
	uint64_t half = live / 2 > 1024 ? live / 2 : 1024;
	if (now - start >= half &&
	    atomic_compare_exchange_strong(&ftl->heat_epoch_birth, &start, now))
		atomic_fetch_add_explicit(&ftl->heat_epoch, 1, memory_order_relaxed);
	return atomic_load_explicit(&ftl->heat_epoch, memory_order_relaxed);
}

/* Grades the prediction made for a chunk written with heat BEFORE, which dies now (in birth
 * epoch EPOCH): young when it lived less than about one turnover of the live set. */
static void heat_grade(struct ftl *ftl, uint8_t before, uint32_t epoch)
{
	if (!(before & FTL_HEAT_PREDICTED))
		return; /* written before this open: no prediction to grade */
	int hot = (before & FTL_HEAT_PREDICTED_HOT) != 0;
	bool young = ((epoch - (before >> FTL_HEAT_EPOCH_SHIFT)) & 7u) <= 1;
	uint32_t d = atomic_fetch_add_explicit(&ftl->heat_deaths[hot], 1, memory_order_relaxed) + 1;
	if (young)
		atomic_fetch_add_explicit(&ftl->heat_short[hot], 1, memory_order_relaxed);
	if (d & 1023)
		return;
	bool was = atomic_load_explicit(&ftl->heat_separate, memory_order_relaxed);
	bool pays = ftl_heat_separation_pays(ftl, NULL, NULL);
	if (was != pays && atomic_compare_exchange_strong(&ftl->heat_separate, &was, pays) && !pays)
		heat_close_hot_segments(ftl);
	if (d < HEAT_GRADE_WINDOW)
		return;
	/* Racing updates may skew one halving by a few counts: a grade, not a ledger. */
	for (int i = 0; i < 2; i++) {
		atomic_store_explicit(
		    &ftl->heat_deaths[i],
		    atomic_load_explicit(&ftl->heat_deaths[i], memory_order_relaxed) / 2,
		    memory_order_relaxed);
		atomic_store_explicit(
		    &ftl->heat_short[i],
		    atomic_load_explicit(&ftl->heat_short[i], memory_order_relaxed) / 2,
		    memory_order_relaxed);
	}
}

bool ftl_heat_separation_pays(struct ftl *ftl, double *p_young_hot, double *p_young_cold)
{
	uint32_t dc = atomic_load_explicit(&ftl->heat_deaths[0], memory_order_relaxed);
	uint32_t dh = atomic_load_explicit(&ftl->heat_deaths[1], memory_order_relaxed);
	double pc =
	    dc ? (double)atomic_load_explicit(&ftl->heat_short[0], memory_order_relaxed) / dc : 0;
	double ph =
	    dh ? (double)atomic_load_explicit(&ftl->heat_short[1], memory_order_relaxed) / dh : 0;
	if (p_young_hot)
		*p_young_hot = ph;
	if (p_young_cold)
		*p_young_cold = pc;
	bool now = atomic_load_explicit(&ftl->heat_separate, memory_order_relaxed);
	if (dc < HEAT_GRADE_MIN || dh < HEAT_GRADE_MIN)
		return now; /* not graded yet */
	return ph - pc >= (now ? HEAT_GRADE_OFF : HEAT_GRADE_ON);
}

/* Hot/cold placement. The data PREV held lived from its birth until now; lifetimes of the
 * same logical data repeat, so one that ended before the live set could turn over is short.
 * Ages are counted in chunk writes (births), which GC does not change.
 *
 * One lifetime is a noisy sample: under 80/20 a fifth of the rarely written data has one short
 * lifetime by chance, and in the hot stream it is copied by every cleaning of hot segments
 * until it is old enough to leave (the benchmark's hot segments held a third more live data
 * than the hot data set). So data goes hot after two short lifetimes in a row, or one when
 * nothing is known of the earlier ones. *HEAT gets the new chunk's heat (FTL_HEAT_*), with the
 * prediction, which goes to the hot stream only while the predictions prove right. */
static enum ftl_stream_id pick_user_stream(struct ftl *ftl, struct ftl_addr prev, uint8_t *heat)
{
	uint64_t now = atomic_load_explicit(&ftl->next_birth, memory_order_relaxed);
	uint64_t live = atomic_load_explicit(&ftl->l2p.live, memory_order_relaxed);
	uint32_t epoch = heat_epoch_now(ftl, now, live);
	uint8_t predicted = (uint8_t)(FTL_HEAT_PREDICTED | (epoch & 7u) << FTL_HEAT_EPOCH_SHIFT);

	*heat = predicted;
	if (ftl_addr_is_none(prev))
		return FTL_STREAM_USER_COLD;
	uint64_t loc = ftl_l2p_get(&ftl->l2p, prev.v);
	if (!loc)
		return FTL_STREAM_USER_COLD;
	uint8_t before = ftl_l2p_get_heat(&ftl->l2p, prev.v);
	heat_grade(ftl, before, epoch);
	struct ftl_seg *s = &ftl->segs[ftl_loc_seg(loc)];
	uint32_t n = atomic_load_explicit(&s->birth_n, memory_order_relaxed);
	if (!n)
		return FTL_STREAM_USER_COLD;
	uint64_t born = atomic_load_explicit(&s->birth_sum, memory_order_relaxed) / n;
	uint64_t age = now > born ? now - born : 0;
	unsigned runs = (before >> FTL_HEAT_RUNS_SHIFT) & 3u;

	if (age < live) {
		unsigned now_runs = runs < FTL_HEAT_RUNS_MAX ? runs + 1 : FTL_HEAT_RUNS_MAX;
		bool hot = !(before & FTL_HEAT_KNOWN) || now_runs >= 2;
		*heat = (uint8_t)(predicted | FTL_HEAT_KNOWN | now_runs << FTL_HEAT_RUNS_SHIFT |
		                  (hot ? FTL_HEAT_PREDICTED_HOT : 0));
		return hot && atomic_load_explicit(&ftl->heat_separate, memory_order_relaxed)
		           ? FTL_STREAM_USER_HOT
		           : FTL_STREAM_USER_COLD;
	}
	*heat = (uint8_t)(predicted | FTL_HEAT_KNOWN);
	return FTL_STREAM_USER_COLD;
}

/* What ftl_write_many makes for an item before it takes a stream lock. */
struct write_prep {
	uint64_t id, birth;
	uint32_t crc;
	uint8_t heat;
	enum ftl_stream_id sid;
};

static int write_prepare(struct ftl *ftl, const struct ftl_write_item *it, struct write_prep *p)
{
	int rc = ftl_l2p_alloc(&ftl->l2p, &p->id);

	if (rc)
		return rc;
	p->crc = ftl_chunk_crc(p->id, ftl_len_flags(it->len, it->opts.flags), it->data, it->len);
	/* Never a birth the next scan would ignore (ftl_int.h FTL_BIRTH_LIMIT): only a forged
	 * summary the scan accepted can bring next_birth there. */
	uint64_t birth = atomic_load(&ftl->next_birth);
	do {
		if (birth >= FTL_BIRTH_LIMIT) {
			ftl_l2p_release(&ftl->l2p, p->id);
			return -ENOSPC;
		}
	} while (!atomic_compare_exchange_weak(&ftl->next_birth, &birth, birth + 1));
	p->birth = birth;
	p->heat = 0;
	p->sid =
	    it->opts.reserve ? FTL_STREAM_RESERVE : pick_user_stream(ftl, it->opts.prev, &p->heat);
	return 0;
}

/* Under ST's lock: appends IT and maps its id. A sealed pack is written with the lock dropped
 * meanwhile, so other writers fill the next one. */
static int write_append_locked(struct ftl *ftl, struct ftl_stream *st,
                               const struct ftl_write_item *it, const struct write_prep *p)
{
	uint64_t loc;
	int rc;

	for (;;) {
		struct ftl_pack_buf *sealed = NULL;
		rc = ftl_stream_append(
		    ftl, st, p->id, p->birth, it->hash, p->crc, it->opts.flags, it->data, it->len,
		    &loc, it->opts.reserve ? FTL_ALLOC_RESERVE : FTL_ALLOC_USER, &sealed);
		if (rc != 1)
			break;
		pthread_mutex_unlock(&st->lock);
		rc = ftl_stream_write_sealed(ftl, st, sealed);
		pthread_mutex_lock(&st->lock);
		if (rc)
			return rc;
	}
	if (rc)
		return rc;
	static const uint8_t nohash[FTL_HASH_LEN];
	ftl_l2p_set_word(&ftl->l2p, p->id,
	                 ftl_word_make(it->hash ? it->hash : nohash, it->opts.flags));
	ftl_l2p_set_heat(&ftl->l2p, p->id, p->heat);
	ftl_l2p_set(&ftl->l2p, p->id, loc);
	return 0;
}

int ftl_write_many(struct ftl *ftl, struct ftl_write_item *items, size_t n)
{
	struct write_prep prep[FTL_WRITE_MANY_MAX];
	size_t made = 0, done = 0;
	uint64_t bytes = 0;
	int rc = 0;

	if (n > FTL_WRITE_MANY_MAX || (n && !items))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!items[i].data || items[i].len == 0 || items[i].len > FTL_CHUNK_MAX ||
		    items[i].opts.flags == FTL_FLAGS_RESERVED)
			return -EINVAL;
	if (ftl->rdonly)
		return -EROFS;
	for (; made < n; made++) {
		rc = write_prepare(ftl, &items[made], &prep[made]);
		if (rc)
			goto err_undo;
	}
	while (done < n) {
		struct ftl_stream *st = &ftl->streams[ftl->stream_map[prep[done].sid]];
		pthread_mutex_lock(&st->lock);
		do {
			rc = write_append_locked(ftl, st, &items[done], &prep[done]);
			if (rc)
				break;
			bytes += items[done].len;
			items[done].out.v = prep[done].id;
			done++;
		} while (done < n && &ftl->streams[ftl->stream_map[prep[done].sid]] == st);
		pthread_mutex_unlock(&st->lock);
		if (rc)
			break;
	}
	atomic_fetch_add(&ftl->clock, bytes);
	atomic_fetch_add(&ftl->host_bytes, bytes);
	atomic_fetch_add(&ftl->bytes_live, bytes);
	if (rc)
		goto err_undo;
	if (ftl->gc_thread_running &&
	    atomic_load_explicit(&ftl->nfree, memory_order_relaxed) < ftl->gc_bg_low)
		ftl_gc_kick(ftl);
	return 0;

err_undo:
	/* Written ones are freed (their bytes stay counted as written), the others' ids go back
	 * unused. */
	for (size_t i = 0; i < done; i++)
		ftl_free(ftl, items[i].out);
	for (size_t i = done; i < made; i++)
		ftl_l2p_release(&ftl->l2p, prep[i].id);
	return rc;
}

int ftl_write(struct ftl *ftl, const void *data, uint32_t len, const uint8_t hash[FTL_HASH_LEN],
              const struct ftl_write_opts *opts, struct ftl_addr *out)
{
	struct ftl_write_item it = {.data = data, .len = len, .hash = hash};
	int rc;

	if (!out)
		return -EINVAL;
	it.opts = opts ? *opts : (struct ftl_write_opts){.prev = FTL_ADDR_NONE};
	rc = ftl_write_many(ftl, &it, 1);
	if (rc == 0)
		*out = it.out;
	return rc;
}

/* Reads the chunk at LOC from the device into the thread's read buffer B (read_tls): the
 * header into HDR, and *PAYLOAD pointed at the payload in B. One read of the device's read grain
 * around header + payload (ftl_dev_read_span): nine 512-byte sectors for a 4 KiB chunk on an
 * O_DIRECT image, not the two blocks it straddles. */
static int read_chunk_dev(struct ftl *ftl, uint64_t loc, uint8_t *b, struct ftl_chunk_disk *hdr,
                          const uint8_t **payload)
{
	uint32_t len = ftl_loc_len(loc);
	uint64_t pos = ftl_seg_dev_off(ftl, ftl_loc_seg(loc)) + ftl_loc_off(loc);
	int at = ftl_dev_read_span(ftl->dev, b, READ_BUF_SIZE, sizeof(*hdr) + len, pos);
	if (at < 0)
		return at;
	memcpy(hdr, b + at, sizeof(*hdr));
	*payload = b + at + sizeof(*hdr);
	return 0;
}

void ftl_read_device_only(bool on)
{
	struct read_tls *t = read_tls();

	if (t)
		t->device_only = on;
}

void ftl_read_ahead(struct ftl *ftl, uint32_t bytes)
{
	struct read_tls *t = read_tls();

	if (!t)
		return; /* reads go on without read-ahead, and report -ENOMEM themselves */
	t->ftl = ftl;
	t->ahead = bytes < READ_AHEAD_MAX ? bytes : READ_AHEAD_MAX;
	t->win_len = 0;
	t->last_end = UINT64_MAX;
}

/* The chunk at LOC from the thread's read-ahead window: 1 when the window holds it (HDR and
 * *PAYLOAD set), 0 when not. The window is filled from LOC when the chunk starts where the
 * previous one read from the device ended (a run written together, as a sequential write
 * leaves it), or is the first since ftl_read_ahead: up to `ahead` bytes in one device read, never
 * past the segment's end or, on a zoned namespace, its write pointer. Any other chunk is read
 * alone, so random reads cost no extra bytes. A failed fill is no error: the caller reads the chunk
 * alone. */
static int read_chunk_window(struct ftl *ftl, struct read_tls *t, uint64_t loc,
                             struct ftl_chunk_disk *hdr, const uint8_t **payload)
{
	uint32_t segi = ftl_loc_seg(loc), off = ftl_loc_off(loc), len = ftl_loc_len(loc);
	uint64_t pos = ftl_seg_dev_off(ftl, segi) + off, need = sizeof(*hdr) + len;
	/* The first chunk after ftl_read_ahead starts a window too: the caller said a run comes. */
	bool follows = pos == t->last_end || t->last_end == UINT64_MAX;

	t->last_end = pos + ftl_chunk_footprint(len);
	if (!t->ahead || t->ftl != ftl)
		return 0;
	uint64_t seq = seg_seq(ftl, segi);
	if (!(t->win_len && t->win_seg == segi && t->win_seq == seq && pos >= t->win_off &&
	      pos + need <= t->win_off + t->win_len)) {
		uint32_t lim = ftl->zn ? ftl_zone_seg_limit(ftl, segi) : ftl->seg_size;
		uint64_t span = need > t->ahead ? need : t->ahead;
		if (!follows || off >= lim || need > lim - off)
			return 0;
		if (span > lim - off)
			span = lim - off;
		if (!t->win) {
			t->win = aligned_alloc(4096, READ_WIN_SIZE);
			if (!t->win)
				return 0;
		}
		t->win_len = 0;
		int at = ftl_dev_read_span(ftl->dev, t->win, READ_WIN_SIZE, span, pos);
		if (at < 0)
			return 0;
		t->win_off = pos - (uint64_t)at;
		t->win_len = (uint32_t)(at + span);
		t->win_seg = segi;
		t->win_seq = seq; /* read before the fill: a reuse during it changes it */
	}
	const uint8_t *c = t->win + (pos - t->win_off);
	memcpy(hdr, c, sizeof(*hdr));
	*payload = c + sizeof(*hdr);
	return 1;
}

int ftl_read_view(struct ftl *ftl, struct ftl_addr addr, const void **data, uint8_t *flags)
{
	struct read_tls *t = read_tls();
	if (!t)
		return -ENOMEM;
	uint8_t *b = t->buf;
	for (int attempt = 0; attempt < 16; attempt++) {
		uint64_t loc = ftl_l2p_get(&ftl->l2p, addr.v);
		if (!loc)
			return -ENOENT;
		uint32_t len = ftl_loc_len(loc);
		struct ftl_chunk_disk hdr;
		const uint8_t *payload = b;
		/* A chunk still in an open pack is copied from its buffer under the stream lock;
		 * any other is read from the device with no FTL lock held (invariant 4 below). */
		int rc =
		    ftl_stream_read_buffered(ftl, loc, addr.v, b, len, &hdr, NULL, !t->device_only);
		if (rc == 0 && read_chunk_window(ftl, t, loc, &hdr, &payload) == 1) {
			if (ftl_chunk_crc(addr.v, ftl_len_flags(len, hdr.flags), payload, len) ==
			    hdr.crc) {
				if (flags)
					*flags = hdr.flags;
				*data = payload;
				return (int)len;
			}
			/* The window may be older than the chunk (moved there since): no verdict
			 * until the chunk is read alone. */
			t->win_len = 0;
			payload = b;
		}
		if (rc == 0)
			rc = read_chunk_dev(ftl, loc, b, &hdr, &payload);
		else if (rc == 1)
			rc = 0;
		if (rc == -ENOMEM)
			return rc;
		if (rc == 0 &&
		    ftl_chunk_crc(addr.v, ftl_len_flags(len, hdr.flags), payload, len) == hdr.crc) {
			if (flags)
				*flags = hdr.flags;
			*data = payload;
			return (int)len;
		}
		/* Invariant 4: a moved chunk is retried, a damaged one is an error. */
		if (ftl_l2p_get(&ftl->l2p, addr.v) != loc)
			continue;
		atomic_fetch_add(&ftl->read_errors, 1);
		if (rc == 0) {
			atomic_fetch_add(&ftl->checksum_errors, 1);
			memset(b, 0, READ_BUF_SIZE); /* never leave unverified bytes behind */
		}
		return -EIO;
	}
	return -EIO;
}

int ftl_read(struct ftl *ftl, struct ftl_addr addr, void *buf, uint32_t buflen, uint8_t *flags)
{
	const void *data;
	int len = ftl_read_view(ftl, addr, &data, flags);
	if (len < 0)
		return len;
	if (buflen < (uint32_t)len)
		return -ENOBUFS;
	memcpy(buf, data, (size_t)len);
	return len;
}

int ftl_chunk_len(struct ftl *ftl, struct ftl_addr addr)
{
	uint64_t loc = ftl_l2p_get(&ftl->l2p, addr.v);
	return loc ? (int)ftl_loc_len(loc) : -ENOENT;
}

/* Finds the pack holding OFF in a closed segment from the cached pack start offsets. */
static int find_pack(struct ftl *ftl, uint32_t segi, uint32_t off, uint32_t *pack_off)
{
	struct ftl_seg *s = &ftl->segs[segi];
	int rc = -ENOENT;
	pthread_mutex_lock(&ftl->seg_stripes[segi % FTL_SEG_STRIPES]);
	uint32_t lo = 0, hi = s->npacks;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		if (s->pack_offs[mid] <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo > 0) {
		*pack_off = s->pack_offs[lo - 1];
		rc = 0;
	}
	pthread_mutex_unlock(&ftl->seg_stripes[segi % FTL_SEG_STRIPES]);
	return rc;
}

/* The chunk header names its summary entry; the entry holds the hash. Two small reads: the way
 * to a hash when the pack's header as a whole does not check out (a flipped bit in another
 * entry must not cost this chunk its hash). */
static int hash_from_entry(struct ftl *ftl, uint32_t segi, uint32_t off, uint32_t pack_off,
                           uint64_t id, uint8_t *hash)
{
	uint64_t base = ftl_seg_dev_off(ftl, segi);
	struct ftl_chunk_disk hdr;
	struct ftl_pack_entry_disk e;
	int rc;

	rc = ftl_dev_read_small(ftl->dev, &hdr, sizeof(hdr), base + off);
	if (rc)
		return rc;
	if (hdr.entry >= ftl->max_entries)
		return -EIO;
	rc = ftl_dev_read_small(ftl->dev, &e, sizeof(e),
	                        base + pack_off + sizeof(struct ftl_pack_disk) +
	                            (uint64_t)hdr.entry * sizeof(e));
	if (rc)
		return rc;
	/* The entry must be this chunk's: same id, same checksum. The pack crc is not checked
	 * here (that needs the whole header); a damaged hash can only cost a dedupe hit. */
	if (e.id != id || e.crc != hdr.crc)
		return -EIO;
	memcpy(hash, e.hash, FTL_HASH_LEN);
	return 0;
}

/* The hash is in the chunk's summary entry, in its pack's header: from the pack header cache,
 * which reads and checks the whole header on a miss (one device access, then none for the other
 * chunks of the pack: dedupe verification on an O_DIRECT device would otherwise read two blocks
 * every time). */
static int hash_from_pack(struct ftl *ftl, uint64_t loc, uint64_t id, uint8_t *hash)
{
	uint32_t segi = ftl_loc_seg(loc), off = ftl_loc_off(loc), pack_off;
	uint64_t seq;
	int rc;

	rc = find_pack(ftl, segi, off, &pack_off);
	if (rc)
		return rc;
	seq = seg_seq(ftl, segi); /* the incarnation the cache must match */
	rc = ftl_hdrcache_hash(ftl, segi, seq, pack_off, off, id, hash);
	if (rc == -EIO) /* unreadable or damaged as a whole: this chunk's entry may be sound */
		rc = hash_from_entry(ftl, segi, off, pack_off, id, hash);
	return rc;
}

int ftl_read_hash(struct ftl *ftl, struct ftl_addr addr, uint8_t hash[FTL_HASH_LEN])
{
	for (int attempt = 0; attempt < 16; attempt++) {
		uint64_t loc = ftl_l2p_get(&ftl->l2p, addr.v);
		if (!loc)
			return -ENOENT;
		int rc = ftl_stream_read_buffered(ftl, loc, addr.v, NULL, ftl_loc_len(loc), NULL,
		                                  hash, false);
		if (rc == 1)
			return 0;
		rc = hash_from_pack(ftl, loc, addr.v, hash);
		if (rc == 0 || rc == -ENOMEM)
			return rc;
		if (ftl_l2p_get(&ftl->l2p, addr.v) != loc)
			continue;
		atomic_fetch_add(&ftl->read_errors, 1);
		return -EIO;
	}
	return -EIO;
}

int ftl_hash_prefix(struct ftl *ftl, struct ftl_addr addr, uint8_t prefix[FTL_SCAN_HASH_PREFIX])
{
	if (!ftl_l2p_get(&ftl->l2p, addr.v))
		return -ENOENT;
	/* The owner word (ftl_word_make) holds the prefix in its low bytes. */
	uint64_t w = ftl_l2p_get_word(&ftl->l2p, addr.v);
	for (int i = 0; i < FTL_SCAN_HASH_PREFIX; i++)
		prefix[i] = (uint8_t)(w >> (8 * i));
	return 0;
}

int ftl_free(struct ftl *ftl, struct ftl_addr addr)
{
	if (ftl->rdonly)
		return -EROFS;
	for (;;) {
		uint64_t loc = ftl_l2p_get(&ftl->l2p, addr.v);
		if (!loc)
			return -ENOENT;
		if (!ftl_l2p_cas(&ftl->l2p, addr.v, loc, 0))
			continue; /* GC moved it meanwhile */
		uint32_t len = ftl_loc_len(loc);
		atomic_fetch_sub(&ftl->segs[ftl_loc_seg(loc)].live_bytes, ftl_chunk_footprint(len));
		atomic_fetch_sub(&ftl->bytes_live, len);
		ftl_l2p_release(&ftl->l2p, addr.v);
		/* A free changes nothing on the device: without a checkpoint at close the next
		 * open would find the chunk again (loaded first: no cache line ping-pong). */
		if (!atomic_load_explicit(&ftl->ckpt_dirty, memory_order_relaxed))
			atomic_store(&ftl->ckpt_dirty, true);
		return 0;
	}
}
