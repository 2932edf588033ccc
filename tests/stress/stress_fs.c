/* tests/stress/stress_fs.c - a plain program (criterion cannot run under TSan) that drives the
 * whole fs store at once from threads: writers (WRITE and PUNCH on their own volumes), a thread
 * taking, reading back and deleting snapshots, a thread making clones (SNAP_CLONE, CLONE_RANGE),
 * a thread committing and syncing, scrubs, and stats readers; the FTL's GC thread cleans
 * meanwhile. Then every block a writer acknowledged must read back, before and after a reopen,
 * and every snapshot and clone must hold, block by block, a generation that existed while it
 * was taken. Exit 0 = all exact.
 *
 * Usage: stress_fs [SECONDS] (or PSTOR_STRESS_SECONDS; default 3). Built by CMake as
 * `stress_fs`; meant for a -DPSTOR_SANITIZE_THREAD=ON build.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pfs_meta.h"
#include "pfs_vol_int.h"

#define DEV_SIZE  (48ull << 20) /* small, so the GC thread has work */
#define BS        4096u
#define NWRITERS  3
#define VOL_BLKS  512u /* 2 MiB volumes */
#define SNAPS_MAX 1    /* snapshots kept per volume: the next one deletes it */
#define CR_RUN    16u  /* blocks per CLONE_RANGE */

/* ---- block contents ---------------------------------------------------------------------- */
/* Generation G of block BLK of volume VOL: 0 and every 7th are punched (zeros), every 5th is
 * content shared by all volumes (dedupe), every 11th a short repeating pattern (table
 * pattern), else unique and half compressible. Deterministic, so any generation can be
 * checked again later. */
static bool gen_is_zero(uint32_t g)
{
	return g == 0 || g % 7 == 0;
}

static void fill(uint8_t *b, int vol, uint32_t blk, uint32_t g)
{
	if (gen_is_zero(g)) {
		memset(b, 0, BS);
		return;
	}
	if (g % 11 == 2) {
		for (uint32_t i = 0; i < BS; i++)
			b[i] = (uint8_t)("pstorfs"[i % 7] + g % 13);
		return;
	}
	uint64_t s = g % 5 == 1 ? 0x9e3779b97f4a7c15ull * (g % 16 + 1)
	                        : ((uint64_t)vol << 48) ^ ((uint64_t)blk << 24) ^ g ^ 0x5bd1e995u;
	for (uint32_t i = 0; i < BS; i += 8) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		uint64_t v = (i % 64) < 32 ? s : 0x2020202020202020ull;
		memcpy(b + i, &v, 8);
	}
}

/* True when BUF is generation G of (VOL, BLK) for some G in [LO, HI]. */
static bool matches_range(const uint8_t *buf, int vol, uint32_t blk, uint32_t lo, uint32_t hi)
{
	static _Thread_local uint8_t want[BS];

	for (uint32_t g = lo; g <= hi; g++) {
		fill(want, vol, blk, g);
		if (!memcmp(buf, want, BS))
			return true;
	}
	return false;
}

/* ---- shared state ------------------------------------------------------------------------ */
static struct ftl_dev *dev;
static struct pfs *store;
static _Atomic bool stop_all;
static _Atomic long errors;

#define FAIL(...)                                                                                  \
	do {                                                                                       \
		fprintf(stderr, "stress_fs: " __VA_ARGS__);                                        \
		fputc('\n', stderr);                                                               \
		atomic_fetch_add(&errors, 1);                                                      \
	} while (0)

/* What each writer did to its volume: STARTED[b] is the generation of the last change issued
 * to block b, ACKED[b] the last one applied. A reader that records ACKED before and STARTED
 * after an operation knows the range of generations the operation could have seen. */
struct writer {
	int idx;
	char name[16];
	_Atomic uint32_t started[VOL_BLKS], acked[VOL_BLKS];
	uint64_t ops, punches;
};
static struct writer writers[NWRITERS];

/* A map (snapshot, clone of a snapshot, CLONE_RANGE target) whose blocks each hold a generation
 * of block b of volume SRC[b] in [LO[b], HI[b]]. */
struct expect {
	char name[PFS_NAME_MAX + 1]; /* snapshot name, or volume name */
	int vol;                     /* snapshots: the writer volume */
	int src[VOL_BLKS];           /* the writer volume each block came from (-1: never set) */
	uint32_t lo[VOL_BLKS], hi[VOL_BLKS];
};

static void expect_before(struct expect *e, int vol, uint32_t from, uint32_t n)
{
	for (uint32_t b = from; b < from + n; b++) {
		e->src[b] = vol;
		e->lo[b] = atomic_load(&writers[vol].acked[b]);
	}
}

static void expect_after(struct expect *e, int vol, uint32_t from, uint32_t n)
{
	for (uint32_t b = from; b < from + n; b++)
		e->hi[b] = atomic_load(&writers[vol].started[b]);
}

/* Reads map V whole and checks it against E; WHAT names it in messages. */
static void check_map(struct pfs_vol *v, const struct expect *e, const char *what)
{
	uint8_t *buf = malloc((size_t)VOL_BLKS * BS);

	if (!buf) {
		FAIL("%s: no memory", what);
		return;
	}
	ssize_t n = pfs_vol_read(store, v, buf, (size_t)VOL_BLKS * BS, 0);
	if (n != (ssize_t)VOL_BLKS * BS) {
		FAIL("%s: read returned %zd", what, n);
		free(buf);
		return;
	}
	for (uint32_t b = 0; b < VOL_BLKS; b++) {
		const uint8_t *blk = buf + (size_t)b * BS;
		bool ok = e->src[b] < 0 ? matches_range(blk, 0, b, 0, 0)
		                        : matches_range(blk, e->src[b], b, e->lo[b], e->hi[b]);
		if (!ok) {
			FAIL("%s: block %u is none of generations %u..%u of volume %d", what, b,
			     e->lo[b], e->hi[b], e->src[b]);
			break;
		}
	}
	free(buf);
}

static int apply(struct pfs_change c)
{
	return pfs_change_apply(store, &c);
}

static uint64_t vol_id(const char *name)
{
	struct pfs_vol *v = pfs_vol_find(store, PFS_MAP_VOLUME, 0, name);
	uint64_t id = v ? v->id : 0;

	pfs_vol_unref(v);
	return id;
}

static uint32_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return (uint32_t)(*s >> 11);
}

/* ---- writers ------------------------------------------------------------------------------ */
static void *writer_main(void *arg)
{
	struct writer *w = arg;
	struct pfs_vol *v = pfs_vol_find(store, PFS_MAP_VOLUME, 0, w->name);
	uint64_t seed = 0x1234567ull * (uint64_t)(w->idx + 1);
	uint8_t buf[BS];

	if (!v) {
		FAIL("writer %d: no volume", w->idx);
		return NULL;
	}
	while (!atomic_load(&stop_all)) {
		uint32_t b = rnd(&seed) % VOL_BLKS;
		uint32_t g = atomic_load(&w->started[b]) + 1;
		int rc;

		atomic_store(&w->started[b], g);
		if (gen_is_zero(g)) {
			rc = apply((struct pfs_change){.kind = PFS_CHANGE_PUNCH,
			                               .vol = v,
			                               .off = (uint64_t)b * BS,
			                               .len = BS});
			w->punches++;
		} else {
			fill(buf, w->idx, b, g);
			struct pfs_change c = {.kind = PFS_CHANGE_WRITE,
			                       .vol = v,
			                       .buf = buf,
			                       .off = (uint64_t)b * BS,
			                       .len = BS};
			rc = pfs_change_apply(store, &c);
			if (!rc && c.done != BS)
				rc = -EIO;
		}
		if (rc) {
			FAIL("writer %d: block %u generation %u: %s", w->idx, b, g, strerror(-rc));
			break;
		}
		atomic_store(&w->acked[b], g);
		w->ops++;
	}
	pfs_vol_unref(v);
	return NULL;
}

/* ---- snapshots ---------------------------------------------------------------------------- */
/* The snapshots alive, per volume, oldest first; the clone thread picks from them. */
static pthread_mutex_t snaps_lock = PTHREAD_MUTEX_INITIALIZER;
static struct expect *snaps[NWRITERS][SNAPS_MAX];
static uint64_t snaps_made, snaps_deleted, snap_reads;

static struct pfs_vol *find_snap(int vol, const char *snap)
{
	uint64_t id = vol_id(writers[vol].name);

	return id ? pfs_vol_find(store, PFS_MAP_SNAPSHOT, id, snap) : NULL;
}

static void *snap_main(void *arg)
{
	(void)arg;
	for (unsigned n = 0; !atomic_load(&stop_all); n++) {
		int vol = (int)(n % NWRITERS);
		struct expect *e = calloc(1, sizeof(*e));
		if (!e) {
			FAIL("snapshot: no memory");
			break;
		}
		snprintf(e->name, sizeof(e->name), "s%u", n);
		e->vol = vol;
		expect_before(e, vol, 0, VOL_BLKS);
		int rc = apply((struct pfs_change){
		    .kind = PFS_CHANGE_SNAP_CREATE, .name = writers[vol].name, .snap = e->name});
		if (rc) {
			FAIL("snapshot create %s: %s", e->name, strerror(-rc));
			free(e);
			break;
		}
		expect_after(e, vol, 0, VOL_BLKS);
		snaps_made++;
		struct pfs_vol *sv = find_snap(vol, e->name);
		if (!sv) {
			FAIL("snapshot %s: not found after create", e->name);
		} else {
			check_map(sv, e, e->name);
			pfs_vol_unref(sv);
			snap_reads++;
		}

		struct expect *old = NULL;
		pthread_mutex_lock(&snaps_lock);
		if (snaps[vol][SNAPS_MAX - 1]) {
			old = snaps[vol][0];
			memmove(&snaps[vol][0], &snaps[vol][1],
			        (SNAPS_MAX - 1) * sizeof(snaps[0][0]));
			snaps[vol][SNAPS_MAX - 1] = NULL;
		}
		for (int k = 0; k < SNAPS_MAX; k++)
			if (!snaps[vol][k]) {
				snaps[vol][k] = e;
				break;
			}
		pthread_mutex_unlock(&snaps_lock);
		if (old) {
			rc = apply((struct pfs_change){.kind = PFS_CHANGE_SNAP_DELETE,
			                               .name = writers[vol].name,
			                               .snap = old->name});
			if (rc)
				FAIL("snapshot delete %s: %s", old->name, strerror(-rc));
			snaps_deleted++;
			free(old);
		}
	}
	return NULL;
}

/* ---- clones ------------------------------------------------------------------------------- */
static struct expect *cr_expect;  /* volume "cr", target of CLONE_RANGE */
static struct expect *clone_last; /* the last clone of a snapshot, kept */
static uint64_t clones_made, clone_ranges;

static void *clone_main(void *arg)
{
	(void)arg;
	struct pfs_vol *cr = pfs_vol_find(store, PFS_MAP_VOLUME, 0, "cr");
	uint64_t seed = 0xc10e;

	if (!cr) {
		FAIL("clone: no volume cr");
		return NULL;
	}
	for (unsigned n = 0; !atomic_load(&stop_all); n++) {
		/* CLONE_RANGE: a run of a writer's volume, at the same offset in cr. */
		int vol = (int)(rnd(&seed) % NWRITERS);
		uint32_t from = rnd(&seed) % (VOL_BLKS / CR_RUN) * CR_RUN;
		struct pfs_vol *src = pfs_vol_find(store, PFS_MAP_VOLUME, 0, writers[vol].name);
		struct expect save;
		memcpy(&save, cr_expect, sizeof(save));
		expect_before(cr_expect, vol, from, CR_RUN);
		struct pfs_change c = {.kind = PFS_CHANGE_CLONE_RANGE,
		                       .src = src,
		                       .src_off = (uint64_t)from * BS,
		                       .vol = cr,
		                       .off = (uint64_t)from * BS,
		                       .len = CR_RUN * BS};
		int rc = src ? pfs_change_apply(store, &c) : -ENOENT;
		pfs_vol_unref(src);
		if (rc || c.done != CR_RUN * BS) {
			FAIL("clone_range from %s: %s, %llu done", writers[vol].name, strerror(-rc),
			     (unsigned long long)c.done);
			memcpy(cr_expect, &save, sizeof(save));
			break;
		}
		expect_after(cr_expect, vol, from, CR_RUN);
		clone_ranges++;

		if (n % 4)
			continue;
		/* SNAP_CLONE of a live snapshot; it may be deleted meanwhile (ENOENT). */
		struct expect *e = calloc(1, sizeof(*e));
		if (!e) {
			FAIL("clone: no memory");
			break;
		}
		pthread_mutex_lock(&snaps_lock);
		struct expect *s = snaps[vol][0];
		if (s)
			memcpy(e, s, sizeof(*e));
		pthread_mutex_unlock(&snaps_lock);
		if (!s) {
			free(e);
			continue;
		}
		char snap[PFS_NAME_MAX + 1];
		snprintf(snap, sizeof(snap), "%s", e->name);
		snprintf(e->name, sizeof(e->name), "k%u", n);
		rc = apply((struct pfs_change){.kind = PFS_CHANGE_SNAP_CLONE,
		                               .name = writers[vol].name,
		                               .snap = snap,
		                               .new_name = e->name});
		if (rc == -ENOENT) {
			free(e);
			continue;
		}
		if (rc) {
			FAIL("snapshot clone %s -> %s: %s", snap, e->name, strerror(-rc));
			free(e);
			break;
		}
		clones_made++;
		struct pfs_vol *kv = pfs_vol_find(store, PFS_MAP_VOLUME, 0, e->name);
		if (!kv) {
			FAIL("clone %s: not found", e->name);
		} else {
			check_map(kv, e, e->name);
			/* A clone is a volume of its own: writing it leaves the snapshot alone. */
			uint8_t zero[BS] = {0};
			struct pfs_change w = {
			    .kind = PFS_CHANGE_WRITE, .vol = kv, .buf = zero, .off = 0, .len = BS};
			if (pfs_change_apply(store, &w))
				FAIL("write to clone %s failed", e->name);
			e->src[0] = -1;
			pfs_vol_unref(kv);
		}
		if (clone_last) {
			rc = apply((struct pfs_change){.kind = PFS_CHANGE_VOL_DELETE,
			                               .name = clone_last->name});
			if (rc)
				FAIL("delete clone %s: %s", clone_last->name, strerror(-rc));
			free(clone_last);
		}
		clone_last = e;
	}
	pfs_vol_unref(cr);
	return NULL;
}

/* ---- catalogue churn ---------------------------------------------------------------------- */
/* A volume of its own through its whole life, over and over: create, write, chmod, grow,
 * snapshot, overwrite, restore (the snapshot's data must be back), shrink, rename, delete;
 * while the other threads list, look up and walk the catalogue. */
#define CHURN_BLKS 64u
static uint64_t churns;

static int churn_write(struct pfs_vol *v, uint32_t blk, uint32_t g)
{
	uint8_t buf[BS];
	fill(buf, 7, blk, g);
	struct pfs_change c = {
	    .kind = PFS_CHANGE_WRITE, .vol = v, .buf = buf, .off = (uint64_t)blk * BS, .len = BS};
	return pfs_change_apply(store, &c);
}

static void *churn_main(void *arg)
{
	(void)arg;
	for (unsigned n = 0; !atomic_load(&stop_all); n++) {
		char name[32], renamed[32];
		snprintf(name, sizeof(name), "t%u", n);
		snprintf(renamed, sizeof(renamed), "u%u", n);
		struct pfs_vol *v = NULL;
		uint8_t buf[BS];
		int rc = apply((struct pfs_change){.kind = PFS_CHANGE_VOL_CREATE,
		                                   .name = name,
		                                   .size = (uint64_t)CHURN_BLKS * BS / 2});
		if (!rc)
			v = pfs_vol_find(store, PFS_MAP_VOLUME, 0, name);
		if (!v) {
			FAIL("churn: create %s: %s", name, strerror(-rc));
			break;
		}
		for (uint32_t b = 0; b < CHURN_BLKS / 2 && !rc; b++)
			rc = churn_write(v, b, b % 7 ? 1 : 0);
		if (!rc)
			rc = apply(
			    (struct pfs_change){.kind = PFS_CHANGE_SETATTR,
			                        .vol = v,
			                        .attr = {.mask = PFS_ATTR_MODE | PFS_ATTR_MTIME,
			                                 .mode = 0640,
			                                 .mtime_ns = (int64_t)n}});
		if (!rc)
			rc = apply((struct pfs_change){.kind = PFS_CHANGE_RESIZE,
			                               .vol = v,
			                               .size = (uint64_t)CHURN_BLKS * BS});
		if (!rc)
			rc = apply((struct pfs_change){
			    .kind = PFS_CHANGE_SNAP_CREATE, .name = name, .snap = "x"});
		for (uint32_t b = 0; b < CHURN_BLKS && !rc; b += 3)
			rc = churn_write(v, b, 2);
		if (!rc)
			rc = apply((struct pfs_change){
			    .kind = PFS_CHANGE_SNAP_RESTORE, .name = name, .snap = "x"});
		if (rc) {
			FAIL("churn %s: %s", name, strerror(-rc));
			pfs_vol_unref(v);
			break;
		}
		/* After the restore: the snapshot's data, through the handle held all along. */
		for (uint32_t b = 0; b < CHURN_BLKS; b++) {
			uint32_t g = b < CHURN_BLKS / 2 && b % 7 ? 1 : 0;
			if (pfs_vol_read(store, v, buf, BS, (uint64_t)b * BS) != BS ||
			    !matches_range(buf, 7, b, g, g)) {
				FAIL("churn %s: block %u not restored", name, b);
				break;
			}
		}
		pfs_vol_unref(v);
		rc = apply(
		    (struct pfs_change){.kind = PFS_CHANGE_SNAP_DELETE, .name = name, .snap = "x"});
		if (!rc)
			rc = apply((struct pfs_change){
			    .kind = PFS_CHANGE_VOL_RENAME, .name = name, .new_name = renamed});
		if (!rc)
			rc = apply(
			    (struct pfs_change){.kind = PFS_CHANGE_VOL_DELETE, .name = renamed});
		if (rc) {
			FAIL("churn %s: %s", name, strerror(-rc));
			break;
		}
		churns++;
	}
	return NULL;
}

/* ---- commits, scrubs, stats --------------------------------------------------------------- */
static uint64_t commits, syncs, gcs, scrubs, stats_reads;

static void nap_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static void *commit_main(void *arg)
{
	(void)arg;
	for (unsigned n = 0; !atomic_load(&stop_all); n++) {
		/* sync (fsync's log), commit (ctl sync), and a GC: `gc start` (which cleans only
		 * below the watermark) or a pass over two victims whatever the watermark, so
		 * relocations race with everything else even in a short run. */
		static const char *const names[] = {"pfs_sync", "pfs_commit", "pfs_sync",
		                                    "gc or config set"};
		int rc;
		switch (n % 4) {
		case 0:
		case 2:
			rc = pfs_sync(store);
			syncs++;
			break;
		case 1:
			rc = pfs_commit(store);
			commits++;
			break;
		default:
			rc = n % 8 == 3 ? ftl_gc(store->ftl, 2) : pfs_gc_now(store);
			gcs++;
			/* Settings change under the writers too (codec, dedupe). */
			if (!rc)
				rc = apply((struct pfs_change){.kind = PFS_CHANGE_CONFIG_SET,
				                               .name = n % 8 == 3 ? "compression"
				                                                  : "dedupe",
				                               .value = n % 16 == 3    ? "zstd:3"
				                                        : n % 16 == 11 ? "lz4"
				                                        : n % 16 == 7  ? "off"
				                                                       : "on"});
			break;
		}
		if (rc < 0) {
			FAIL("%s: %s", names[n % 4], strerror(-rc));
			break;
		}
		nap_ms(20);
	}
	return NULL;
}

/* Waits for the scrub to leave "running"; returns its state word from the JSON report. */
static void scrub_wait(char *state, size_t len)
{
	for (;;) {
		struct pfs_buf b = {0};
		pfs_scrub_report(store, true, &b);
		const char *s = b.data ? strstr(b.data, "\"state\": \"") : NULL;
		snprintf(state, len, "%s", s ? s + 10 : "?");
		char *q = strchr(state, '"');
		if (q)
			*q = 0;
		pfs_buf_free(&b);
		if (strcmp(state, "running"))
			return;
		nap_ms(10);
	}
}

static void *scrub_main_thread(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop_all)) {
		char state[32];
		int rc = pfs_scrub_start(store);
		if (rc) {
			FAIL("pfs_scrub_start: %s", strerror(-rc));
			break;
		}
		scrub_wait(state, sizeof(state));
		if (strcmp(state, "done"))
			FAIL("scrub ended %s", state);
		else
			scrubs++;
		struct pfs_buf b = {0};
		pfs_scrub_status(store, true, &b);
		pfs_buf_free(&b);
		nap_ms(50);
	}
	return NULL;
}

/* What `ls -l volumes/` and `lseek(SEEK_DATA)` do: list (under the catalogue lock), then
 * look each map up by id and walk its map for the usage, outside the lock. */
struct ids {
	uint64_t v[64];
	size_t n;
};

static int collect_id(void *arg, struct pfs_vol *v, const struct pfs_vol_info *info)
{
	struct ids *ids = arg;
	(void)v;
	if (!info->name[0] || info->size % BS)
		FAIL("catalogue: map %llu named \"%s\" of size %llu", (unsigned long long)info->id,
		     info->name, (unsigned long long)info->size);
	if (ids->n < 64)
		ids->v[ids->n++] = info->id;
	return 0;
}

static void walk_catalogue(void)
{
	struct ids ids = {.n = 0};

	pfs_vol_each(store, PFS_MAP_VOLUME, 0, collect_id, &ids);
	for (size_t i = 0; i < ids.n; i++) {
		struct pfs_vol *v = pfs_vol_by_id(store, ids.v[i]);
		struct pfs_vol_info info;
		uint64_t unique, shared;
		if (!v)
			continue; /* deleted since */
		pfs_vol_get_info(v, &info);
		int rc = pfs_vol_usage(store, v, i % 4 == 0, &unique, &shared);
		int64_t d = pfs_vol_seek(store, v, 0, SEEK_DATA);
		if (rc && !info.gone)
			FAIL("usage of %s: %s", info.name, strerror(-rc));
		/* Data temperature: the report walk and the mover's query, racing the writers'
		 * touches, the ticks' folds and the churn's deletes. */
		struct pfs_temp_usage tu;
		rc = pfs_temp_vol_usage(store, v, &tu);
		if (rc && !info.gone)
			FAIL("temperature of %s: %s", info.name, strerror(-rc));
		if ((unsigned)pfs_temp_class_at(store, v, 0) >= PFS_TEMP_CLASSES)
			FAIL("temperature class of %s", info.name);
		if (d < 0 && d != -ENXIO)
			FAIL("SEEK_DATA in %s: %s", info.name, strerror((int)-d));
		pfs_vol_unref(v);
	}
}

static void *stats_main(void *arg)
{
	uint64_t seed = 0x57a7;
	uint8_t buf[BS];

	(void)arg;
	while (!atomic_load(&stop_all)) {
		struct pfs_stats st;
		struct pfs_buf b = {0};
		pfs_get_stats(store, &st);
		if (st.volumes < NWRITERS + 1)
			FAIL("stats: %llu volumes", (unsigned long long)st.volumes);
		pfs_stats_to_json(&st, &b);
		pfs_buf_free(&b);
		stats_reads++;
		if (stats_reads % 4 == 0) {
			int trc = pfs_temp_tick(store);
			if (trc)
				FAIL("temperature tick: %s", strerror(-trc));
		}
		walk_catalogue();
		/* A block a writer is changing reads as a generation between the last one it
		 * acknowledged before the read and the last one it started after. */
		int vol = (int)(rnd(&seed) % NWRITERS);
		uint32_t blk = rnd(&seed) % VOL_BLKS;
		struct pfs_vol *v = pfs_vol_find(store, PFS_MAP_VOLUME, 0, writers[vol].name);
		uint32_t lo = atomic_load(&writers[vol].acked[blk]);
		ssize_t n = v ? pfs_vol_read(store, v, buf, BS, (uint64_t)blk * BS) : -ENOENT;
		uint32_t hi = atomic_load(&writers[vol].started[blk]);
		pfs_vol_unref(v);
		if (n != BS)
			FAIL("read of %s block %u: %zd", writers[vol].name, blk, n);
		else if (!matches_range(buf, vol, blk, lo, hi))
			FAIL("read of %s block %u: none of generations %u..%u", writers[vol].name,
			     blk, lo, hi);
		nap_ms(5);
	}
	return NULL;
}

/* ---- setup and the final checks ----------------------------------------------------------- */
static int open_store(void)
{
	char msg[256];
	struct pfs_opts o = {
	    .device = "mem", .dedupe = -1, .commit_interval_ms = -1, .gc_thread = true};
	int rc = pfs_open_dev(&o, dev, &store, msg, sizeof(msg));

	if (rc)
		fprintf(stderr, "stress_fs: pfs_open: %s\n", msg);
	return rc;
}

static int format_store(void)
{
	struct ftl_superblock_info sb;
	struct ftl_format_params fp = {.segment_size = 1u << 20,
	                               .user_block_size = BS,
	                               .meta_blocks = (uint32_t)(DEV_SIZE / 64 / 4096)};
	int rc = ftl_dev_open_mem(DEV_SIZE, 4096, &dev);

	if (!rc)
		rc = ftl_format(dev, &fp);
	if (!rc)
		rc = ftl_read_superblock(dev, &sb);
	if (!rc)
		rc = pfs_vfs_format(dev, sb.meta_offset, sb.meta_size);
	if (!rc)
		rc = ftl_dev_flush(dev);
	if (!rc)
		rc = open_store();
	for (int i = 0; i < NWRITERS && !rc; i++)
		rc = apply((struct pfs_change){.kind = PFS_CHANGE_VOL_CREATE,
		                               .name = writers[i].name,
		                               .size = (uint64_t)VOL_BLKS * BS});
	if (!rc)
		rc = apply((struct pfs_change){
		    .kind = PFS_CHANGE_VOL_CREATE, .name = "cr", .size = (uint64_t)VOL_BLKS * BS});
	return rc;
}

/* Every block each writer acknowledged, exactly; every snapshot and clone kept, in range. */
static void check_all(const char *when)
{
	char what[128];

	for (int i = 0; i < NWRITERS; i++) {
		struct expect *e = calloc(1, sizeof(*e));
		struct pfs_vol *v = pfs_vol_find(store, PFS_MAP_VOLUME, 0, writers[i].name);
		if (!e || !v) {
			FAIL("%s: volume %s missing", when, writers[i].name);
			free(e);
			pfs_vol_unref(v);
			continue;
		}
		for (uint32_t b = 0; b < VOL_BLKS; b++) {
			e->src[b] = i;
			e->lo[b] = e->hi[b] = atomic_load(&writers[i].acked[b]);
		}
		snprintf(what, sizeof(what), "%s: volume %s", when, writers[i].name);
		check_map(v, e, what);
		pfs_vol_unref(v);
		free(e);
		for (int k = 0; k < SNAPS_MAX; k++) {
			struct expect *s = snaps[i][k];
			if (!s)
				continue;
			struct pfs_vol *sv = find_snap(i, s->name);
			snprintf(what, sizeof(what), "%s: snapshot %s", when, s->name);
			if (!sv) {
				FAIL("%s missing", what);
				continue;
			}
			check_map(sv, s, what);
			pfs_vol_unref(sv);
		}
	}
	struct expect *others[] = {cr_expect, clone_last};
	for (size_t k = 0; k < 2; k++) {
		if (!others[k])
			continue;
		struct pfs_vol *v = pfs_vol_find(store, PFS_MAP_VOLUME, 0, others[k]->name);
		snprintf(what, sizeof(what), "%s: volume %s", when, others[k]->name);
		if (!v) {
			FAIL("%s missing", what);
			continue;
		}
		check_map(v, others[k], what);
		pfs_vol_unref(v);
	}
}

int main(int argc, char **argv)
{
	const char *env = getenv("PSTOR_STRESS_SECONDS");
	double seconds = argc > 1 ? atof(argv[1]) : env ? atof(env) : 3.0;
	pthread_t tw[NWRITERS], ts[6];
	void *(*const others[6])(void *) = {snap_main,         clone_main, commit_main,
	                                    scrub_main_thread, stats_main, churn_main};
	int rc;

	if (seconds <= 0)
		seconds = 3.0;
	for (int i = 0; i < NWRITERS; i++) {
		writers[i].idx = i;
		snprintf(writers[i].name, sizeof(writers[i].name), "w%d", i);
	}
	cr_expect = calloc(1, sizeof(*cr_expect));
	if (!cr_expect)
		return 1;
	snprintf(cr_expect->name, sizeof(cr_expect->name), "cr");
	for (uint32_t b = 0; b < VOL_BLKS; b++)
		cr_expect->src[b] = -1;
	rc = format_store();
	if (rc) {
		fprintf(stderr, "stress_fs: setup failed: %s\n", strerror(-rc));
		return 1;
	}

	for (int i = 0; i < NWRITERS; i++)
		pthread_create(&tw[i], NULL, writer_main, &writers[i]);
	for (int i = 0; i < 6; i++)
		pthread_create(&ts[i], NULL, others[i], NULL);
	int64_t end = pfs_now_ns() + (int64_t)(seconds * 1e9);
	while (pfs_now_ns() < end && !atomic_load(&errors))
		nap_ms(20);
	atomic_store(&stop_all, true);
	for (int i = 0; i < NWRITERS; i++)
		pthread_join(tw[i], NULL);
	for (int i = 0; i < 6; i++)
		pthread_join(ts[i], NULL);

	uint64_t ops = 0, punches = 0;
	for (int i = 0; i < NWRITERS; i++) {
		ops += writers[i].ops;
		punches += writers[i].punches;
	}
	struct pfs_stats st;
	pfs_get_stats(store, &st);
	printf(
	    "stress_fs: %.1f s: %llu block changes (%llu punches), %llu snapshots (%llu deleted, "
	    "%llu read back), %llu clones, %llu clone ranges, %llu commits, %llu syncs, "
	    "%llu gc starts, %llu scrubs, %llu stats reads, %llu volume lives, gc runs %llu\n",
	    seconds, (unsigned long long)ops, (unsigned long long)punches,
	    (unsigned long long)snaps_made, (unsigned long long)snaps_deleted,
	    (unsigned long long)snap_reads, (unsigned long long)clones_made,
	    (unsigned long long)clone_ranges, (unsigned long long)commits,
	    (unsigned long long)syncs, (unsigned long long)gcs, (unsigned long long)scrubs,
	    (unsigned long long)stats_reads, (unsigned long long)churns,
	    (unsigned long long)st.ftl.gc_runs);

	check_all("before reopen");
	pfs_close(store);
	store = NULL;
	if (open_store() == 0) {
		check_all("after reopen");
		pfs_close(store);
	} else {
		FAIL("reopen failed");
	}
	ftl_dev_close(dev);
	for (int i = 0; i < NWRITERS; i++)
		for (int k = 0; k < SNAPS_MAX; k++)
			free(snaps[i][k]);
	free(cr_expect);
	free(clone_last);
	long n = atomic_load(&errors);
	printf("%d passed, %d failed\n", n ? 0 : 1, n ? 1 : 0);
	return n ? 1 : 0;
}
