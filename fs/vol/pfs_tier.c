/* fs/vol/pfs_tier.c - tiering that acts: each volume's cold_compression setting and the
 * throttled background mover that re-encodes the chunks of its cold and frozen extents in place
 * of their addresses (engine_chunk_recompress), with a persisted cursor so it resumes after a
 * remount or kill -9. It must never change what a read returns, nor hold a store lock across
 * the device I/O of a move.
 *
 * Invariants:
 *  1. The mover changes no map, no reference and no count: a chunk keeps its address, and its
 *     old copy stays on flash until GC has made the new one durable (flash/ftl_rewrite.c).
 *  2. While a chunk is moved the mover holds an engine reference on it (pfs_vol_refs), so it is
 *     never freed and its id never reused under the move; a chunk the volume overwrote
 *     meanwhile is still the same content, moved harmlessly (and freed by the mover's put when
 *     it was the last). A chunk moved by GC in between is refused by the FTL (-ESTALE) and left.
 *  3. The cursor (volume id, offset) is saved only after ftl_sync has made every move before it
 *     durable, so an extent behind the cursor was moved for good; work after it may be redone
 *     after a crash, which costs a RAM lookup per chunk already moved.
 *  4. tier->lock (a leaf) guards the settings, the progress and stop; nothing else is taken
 *     under it. The thread takes store locks only through pfs_vol_refs and pfs_blob_put.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pfs_vol_int.h"

#define TIER_BLOB_VOL     "tier/vol/"
#define TIER_BLOB_CURSOR  "tier/cursor"
#define TIER_MAX_VOLS     4096
#define TIER_SAVE_NS      (2ll * 1000000000)  /* cursor saved at most this often */
#define TIER_PASS_PAUSE   (30ll * 1000000000) /* between passes over every volume */
#define TIER_IDLE_NS      (1ll * 1000000000)  /* paused or nothing to do: look again */
#define TIER_CURSOR_MAGIC 0x52454954u         /* "TIER" */

struct tier_setting {
	uint64_t vol_id;
	enum engine_codec codec;
	int level;
};

/* The cursor and the counters, as saved in the blob (little-endian hosts only, as the rest). */
struct tier_cursor_disk {
	uint32_t magic, version;
	uint64_t vol_id, offset, passes;
	int64_t last_pass_end;
	uint64_t extents_scanned, extents_cold, extents_moved;
	uint64_t chunks_moved, chunks_skipped, chunks_stale, errors;
	uint64_t bytes_before, bytes_after;
};
_Static_assert(sizeof(struct tier_cursor_disk) == 112, "cursor blob layout");

struct pfs_tier {
	pthread_mutex_t lock; /* invariant 4 */
	pthread_cond_t cond;
	pthread_t thread;
	bool started, stop, kicked;
	struct tier_setting *set;
	size_t nset;
	struct tier_cursor_disk cur; /* progress; cur.vol_id/offset: where the mover goes on */
	const char *state;
	char volume[PFS_NAME_MAX + 1];
	int64_t pass_start_ns, pass_busy_ns, next_pass_ns;
	uint64_t pass_read_bytes;
	int64_t saved_ns;
	bool dirty; /* cursor changed since it was saved */
};

/* ---- settings ------------------------------------------------------------------------------ */

static void codec_text(enum engine_codec c, int level, char *out, size_t len)
{
	if (c == ENGINE_CODEC_ZSTD)
		snprintf(out, len, "zstd:%d", level);
	else
		snprintf(out, len, "%s", engine_codec_name(c));
}

/* Caller holds tier->lock. */
static struct tier_setting *setting_find(struct pfs_tier *t, uint64_t vol_id)
{
	for (size_t i = 0; i < t->nset; i++)
		if (t->set[i].vol_id == vol_id)
			return &t->set[i];
	return NULL;
}

static int setting_put(struct pfs_tier *t, uint64_t vol_id, enum engine_codec c, int level)
{
	struct tier_setting *s = setting_find(t, vol_id);

	if (c == ENGINE_CODEC_NONE) {
		if (s)
			*s = t->set[--t->nset];
		return 0;
	}
	if (!s) {
		if (t->nset >= TIER_MAX_VOLS)
			return -ENOSPC;
		struct tier_setting *n = realloc(t->set, (t->nset + 1) * sizeof(*n));
		if (!n)
			return -ENOMEM;
		t->set = n;
		s = &t->set[t->nset++];
	}
	*s = (struct tier_setting){vol_id, c, level};
	return 0;
}

static int load_setting(void *arg, const char *key, const void *val, size_t len)
{
	struct pfs_tier *t = arg;
	char text[32];
	enum engine_codec c;
	int level;
	char *end;

	unsigned long long id = strtoull(key + strlen(TIER_BLOB_VOL), &end, 10);
	if (*end || len == 0 || len >= sizeof(text))
		return 0;
	memcpy(text, val, len);
	text[len] = '\0';
	if (engine_codec_parse(text, &c, &level)) {
		pfs_logl(LOG_WARNING, "pstorfs: tiering: ignoring stored %s=%s", key, text);
		return 0;
	}
	return setting_put(t, id, c, level) == -ENOMEM ? -ENOMEM : 0;
}

static int load_cursor(void *arg, const char *key, const void *val, size_t len)
{
	struct pfs_tier *t = arg;
	struct tier_cursor_disk c;

	(void)key;
	if (len != sizeof(c))
		return 0;
	memcpy(&c, val, sizeof(c));
	if (c.magic == TIER_CURSOR_MAGIC && c.version == 1)
		t->cur = c;
	return 0;
}

int pfs_tier_set(struct pfs *p, const char *volume, const char *value)
{
	struct pfs_tier *t = p->tier;
	enum engine_codec c;
	char key[64], canon[32];
	int level, rc;

	if (engine_codec_parse(value, &c, &level)) {
		pfs_set_msg(p,
		            "cold_compression must be none, lz4, zstd or zstd:LEVEL (1..19), not "
		            "'%s'",
		            value);
		return -EINVAL;
	}
	struct pfs_vol *v = pfs_vol_find(p, PFS_MAP_VOLUME, 0, volume);
	if (!v) {
		pfs_set_msg(p, "no volume %s", volume);
		return -ENOENT;
	}
	uint64_t id = v->id;
	pfs_vol_unref(v);
	if (p->opts.readonly || !t) {
		pfs_set_msg(p, "read-only mount: cold_compression cannot change");
		return -EROFS;
	}
	codec_text(c, level, canon, sizeof(canon));
	snprintf(key, sizeof(key), TIER_BLOB_VOL "%" PRIu64, id);
	rc = c == ENGINE_CODEC_NONE ? pfs_blob_delete(p, key)
	                            : pfs_blob_put(p, key, canon, strlen(canon));
	if (rc == -ENOENT)
		rc = 0; /* none, and none was stored */
	if (rc)
		return pfs_fail(p, PFS_ERR_META_WRITE, rc, "volume %s: cold_compression", volume);
	pthread_mutex_lock(&t->lock);
	rc = setting_put(t, id, c, level);
	t->kicked = true; /* a new setting starts a pass now rather than after the pause */
	t->next_pass_ns = 0;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
	if (rc) {
		pfs_set_msg(p, "volume %s: cold_compression stored but not applied: %s", volume,
		            strerror(-rc));
		return rc;
	}
	pfs_set_msg(p, "ok: volume %s cold_compression %s", volume, canon);
	return 0;
}

void pfs_tier_get(struct pfs *p, struct pfs_vol *v, char *out, size_t len)
{
	struct pfs_tier *t = p->tier;
	struct tier_setting *s;

	snprintf(out, len, "none");
	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	s = setting_find(t, v->id);
	if (s)
		codec_text(s->codec, s->level, out, len);
	pthread_mutex_unlock(&t->lock);
}

/* ---- the mover ----------------------------------------------------------------------------- */

/* Makes the moves so far durable, then saves the cursor (invariant 3). */
static int save_cursor(struct pfs *p, struct pfs_tier *t)
{
	struct tier_cursor_disk c;
	int rc = ftl_sync(p->ftl);

	if (rc)
		return rc;
	pthread_mutex_lock(&t->lock);
	c = t->cur;
	t->dirty = false;
	pthread_mutex_unlock(&t->lock);
	rc = pfs_blob_put(p, TIER_BLOB_CURSOR, &c, sizeof(c));
	t->saved_ns = pfs_now_ns();
	if (rc) {
		pthread_mutex_lock(&t->lock);
		t->dirty = true;
		pthread_mutex_unlock(&t->lock);
	}
	return rc;
}

/* The next volume to work on, at or after the cursor's: the lowest id >= FROM with a setting.
 * Settings of deleted volumes are dropped on the way. */
static struct pfs_vol *next_volume(struct pfs *p, struct pfs_tier *t, uint64_t from,
                                   struct tier_setting *out)
{
	for (;;) {
		struct tier_setting best = {.vol_id = UINT64_MAX};
		pthread_mutex_lock(&t->lock);
		for (size_t i = 0; i < t->nset; i++)
			if (t->set[i].vol_id >= from && t->set[i].vol_id < best.vol_id)
				best = t->set[i];
		pthread_mutex_unlock(&t->lock);
		if (best.vol_id == UINT64_MAX)
			return NULL;
		struct pfs_vol *v = pfs_vol_by_id(p, best.vol_id);
		if (v && v->kind == PFS_MAP_VOLUME && !atomic_load(&v->gone)) {
			*out = best;
			return v;
		}
		if (v)
			pfs_vol_unref(v);
		char key[64];
		snprintf(key, sizeof(key), TIER_BLOB_VOL "%" PRIu64, best.vol_id);
		(void)pfs_blob_delete(p, key);
		pthread_mutex_lock(&t->lock);
		(void)setting_put(t, best.vol_id, ENGINE_CODEC_NONE, 0);
		pthread_mutex_unlock(&t->lock);
	}
}

static void set_state(struct pfs_tier *t, const char *state, const char *vol)
{
	pthread_mutex_lock(&t->lock);
	t->state = state;
	snprintf(t->volume, sizeof(t->volume), "%s", vol ? vol : "");
	pthread_mutex_unlock(&t->lock);
}

/* Moves the chunks of the extent at OFF of V. Returns the stored bytes it read, or -ENOSPC
 * (the cursor stays: the extent is tried again later). */
static int64_t move_extent(struct pfs *p, struct pfs_tier *t, struct pfs_vol *v,
                           const struct tier_setting *s, uint64_t off, uint64_t size)
{
	uint32_t bs = p->bs,
	         n = (uint32_t)((size - off < PFS_TEMP_EXTENT_BYTES ? size - off
	                                                            : PFS_TEMP_EXTENT_BYTES) +
	                        bs - 1) /
	             bs;
	struct engine_ref *refs = calloc(n, sizeof(*refs));
	uint64_t moved = 0, skipped = 0, stale = 0, errors = 0, before = 0, after = 0, read = 0;
	int64_t rc = 0;

	if (!refs)
		return -ENOMEM;
	rc = pfs_vol_refs(p, v, off / bs, n, refs);
	if (rc) {
		free(refs);
		return rc;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct engine_recompress r;
		if (engine_ref_kind(refs[i]) != ENGINE_REF_CHUNK || rc == -ENOSPC)
			continue;
		int m = engine_chunk_recompress(p->eng, refs[i], s->codec, s->level, 0, &r);
		if (m > 0) {
			moved++;
			before += r.old_len;
			after += r.new_len;
		} else if (m == 0) {
			skipped++;
		} else if (m == -ESTALE || m == -ENOENT) {
			stale++;
		} else if (m == -ENOSPC) {
			rc = -ENOSPC;
		} else {
			errors++;
		}
		if (m >= 0 && !r.skipped)
			read += r.old_len;
	}
	for (uint32_t i = 0; i < n; i++)
		engine_ref_put(p->eng, refs[i]);
	free(refs);
	pthread_mutex_lock(&t->lock);
	t->cur.extents_moved += moved > 0;
	t->cur.chunks_moved += moved;
	t->cur.chunks_skipped += skipped;
	t->cur.chunks_stale += stale;
	t->cur.errors += errors;
	t->cur.bytes_before += before;
	t->cur.bytes_after += after;
	t->pass_read_bytes += read;
	pthread_mutex_unlock(&t->lock);
	return rc ? rc : (int64_t)read;
}

/* Sleeps NS or until stopped or kicked; returns true when stopping. */
static bool tier_sleep(struct pfs_tier *t, int64_t ns)
{
	struct timespec ts;
	bool stop;

	clock_gettime(CLOCK_REALTIME, &ts);
	ns += ts.tv_nsec;
	ts.tv_sec += ns / 1000000000;
	ts.tv_nsec = ns % 1000000000;
	pthread_mutex_lock(&t->lock);
	if (!t->stop && !t->kicked)
		pthread_cond_timedwait(&t->cond, &t->lock, &ts);
	t->kicked = false;
	stop = t->stop;
	pthread_mutex_unlock(&t->lock);
	return stop;
}

/* One step: one extent moved, or the reason there is nothing to do. Returns how long to wait
 * before the next step (0: go on). */
static int64_t tier_step(struct pfs *p, struct pfs_tier *t)
{
	struct tier_setting s;
	uint64_t rate;
	int64_t now = pfs_now_ns();

	pthread_mutex_lock(&p->cfg_lock);
	rate = p->cfg.tier_rate;
	pthread_mutex_unlock(&p->cfg_lock);
	if (rate == 0) {
		set_state(t, "paused", NULL);
		return TIER_IDLE_NS;
	}
	pthread_mutex_lock(&t->lock);
	int64_t next_pass = t->next_pass_ns;
	pthread_mutex_unlock(&t->lock);
	if (now < next_pass) {
		set_state(t, "idle", NULL);
		return next_pass - now < TIER_IDLE_NS ? next_pass - now : TIER_IDLE_NS;
	}
	struct pfs_vol *v = next_volume(p, t, t->cur.vol_id, &s);
	if (!v) {
		bool was_working;
		pthread_mutex_lock(&t->lock);
		was_working = t->cur.vol_id != 0 || t->cur.offset != 0 || t->pass_start_ns;
		if (was_working) {
			t->cur.passes++;
			t->cur.last_pass_end = now / 1000000000;
			t->cur.vol_id = 0;
			t->cur.offset = 0;
			t->pass_start_ns = 0;
			t->dirty = true;
		}
		t->next_pass_ns = now + TIER_PASS_PAUSE;
		t->state = "idle";
		t->volume[0] = '\0';
		pthread_mutex_unlock(&t->lock);
		if (was_working)
			(void)save_cursor(p, t);
		return TIER_IDLE_NS;
	}
	pthread_mutex_lock(&t->lock);
	if (!t->pass_start_ns) {
		t->pass_start_ns = now;
		t->pass_busy_ns = 0;
		t->pass_read_bytes = 0;
	}
	pthread_mutex_unlock(&t->lock);
	uint64_t off = v->id == t->cur.vol_id ? t->cur.offset : 0;
	uint64_t size = atomic_load(&v->size);
	int64_t wait = 0;
	struct pfs_vol_info info;
	pfs_vol_get_info(v, &info); /* the name, under the catalogue lock (renames) */
	set_state(t, "moving", info.name);
	if (off >= size) {
		pthread_mutex_lock(&t->lock);
		t->cur.vol_id = v->id + 1;
		t->cur.offset = 0;
		t->dirty = true;
		pthread_mutex_unlock(&t->lock);
	} else {
		enum pfs_temp_class cls = pfs_temp_class_at(p, v, off);
		int64_t got = 0;
		if (cls >= PFS_TEMP_COLD)
			got = move_extent(p, t, v, &s, off, size);
		if (got == -ENOSPC) {
			set_state(t, "waiting for space", info.name);
			pfs_vol_unref(v);
			return TIER_IDLE_NS;
		}
		int64_t took = pfs_now_ns() - now;
		pthread_mutex_lock(&t->lock);
		t->cur.extents_scanned++;
		t->cur.extents_cold += cls >= PFS_TEMP_COLD;
		if (got < 0)
			t->cur.errors++;
		t->cur.vol_id = v->id;
		t->cur.offset = off + PFS_TEMP_EXTENT_BYTES;
		t->dirty = true;
		t->pass_busy_ns += took;
		pthread_mutex_unlock(&t->lock);
		/* The throttle: the stored bytes read, and the extent's map (its references: what a
		 * pass over data already moved still reads), may take BYTES/RATE seconds, the work
		 * included. So a repeated pass over a large volume is paced too. */
		uint64_t cost = (got > 0 ? (uint64_t)got : 0) +
		                PFS_TEMP_EXTENT_BYTES / p->bs * sizeof(struct engine_ref);
		int64_t budget = (int64_t)((double)cost * 1e9 / (double)rate);
		wait = budget > took ? budget - took : 0;
	}
	pfs_vol_unref(v);
	if (pfs_now_ns() - t->saved_ns >= TIER_SAVE_NS)
		(void)save_cursor(p, t);
	return wait;
}

static void *tier_main(void *arg)
{
	struct pfs *p = arg;
	struct pfs_tier *t = p->tier;

	/* Background work: the CPU of a high zstd level goes to foreground I/O first (Linux's nice
	 * is per thread). Failing that, it runs at the daemon's priority, throttled all the same.
	 */
	(void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);
	for (;;) {
		pthread_mutex_lock(&t->lock);
		bool stop = t->stop;
		pthread_mutex_unlock(&t->lock);
		if (stop)
			break;
		int64_t wait = tier_step(p, t);
		if (wait > 0 && tier_sleep(t, wait))
			break;
	}
	return NULL;
}

int pfs_tier_start(struct pfs *p)
{
	struct pfs_tier *t = calloc(1, sizeof(*t));
	int rc;

	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);
	t->state = "idle";
	t->cur.magic = TIER_CURSOR_MAGIC;
	t->cur.version = 1;
	p->tier = t;
	rc = pfs_blob_each(p, TIER_BLOB_VOL, load_setting, t);
	if (!rc)
		rc = pfs_blob_each(p, TIER_BLOB_CURSOR, load_cursor, t);
	if (rc)
		goto err;
	t->saved_ns = pfs_now_ns();
	if (p->opts.readonly)
		return 0;
	rc = -pthread_create(&t->thread, NULL, tier_main, p);
	if (rc)
		goto err;
	t->started = true;
	return 0;
err:
	pfs_tier_stop(p);
	return rc;
}

void pfs_tier_stop(struct pfs *p)
{
	struct pfs_tier *t = p ? p->tier : NULL;

	if (!t)
		return;
	if (t->started) {
		pthread_mutex_lock(&t->lock);
		t->stop = true;
		pthread_cond_signal(&t->cond);
		pthread_mutex_unlock(&t->lock);
		pthread_join(t->thread, NULL);
		if (t->dirty)
			(void)save_cursor(p, t);
	}
	p->tier = NULL;
	free(t->set);
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

void pfs_tier_progress(struct pfs *p, struct pfs_tier_progress *out)
{
	struct pfs_tier *t = p->tier;
	struct pfs_vol *v;

	memset(out, 0, sizeof(*out));
	out->state = "off";
	if (!t)
		return;
	pthread_mutex_lock(&p->cfg_lock);
	out->rate = p->cfg.tier_rate;
	pthread_mutex_unlock(&p->cfg_lock);
	pthread_mutex_lock(&t->lock);
	out->running = t->started;
	out->state = t->started ? t->state : "off (read-only)";
	out->vol_id = t->cur.vol_id;
	out->offset = t->cur.offset;
	snprintf(out->volume, sizeof(out->volume), "%s", t->volume);
	out->passes = t->cur.passes;
	out->last_pass_end = t->cur.last_pass_end;
	out->extents_scanned = t->cur.extents_scanned;
	out->extents_cold = t->cur.extents_cold;
	out->extents_moved = t->cur.extents_moved;
	out->chunks_moved = t->cur.chunks_moved;
	out->chunks_skipped = t->cur.chunks_skipped;
	out->chunks_stale = t->cur.chunks_stale;
	out->errors = t->cur.errors;
	out->bytes_before = t->cur.bytes_before;
	out->bytes_after = t->cur.bytes_after;
	out->bytes_saved = t->cur.bytes_before - t->cur.bytes_after;
	out->measured_rate =
	    t->pass_busy_ns > 0 ? (double)t->pass_read_bytes * 1e9 / (double)t->pass_busy_ns : 0;
	out->volumes = (uint32_t)t->nset;
	pthread_mutex_unlock(&t->lock);
	if (!out->volume[0] && out->vol_id && (v = pfs_vol_by_id(p, out->vol_id))) {
		struct pfs_vol_info info;
		pfs_vol_get_info(v, &info);
		snprintf(out->volume, sizeof(out->volume), "%s", info.name);
		pfs_vol_unref(v);
	}
}
