/* tests/fs/test_fs_tier.c - the tiering mover on a store over the memory device: with
 * cold_compression zstd:19 it re-encodes lz4 chunks while a writer overwrites and punches blocks
 * of the same volume, and every block of the volume and of its snapshot then reads as the model
 * says, before and after a reopen; a bad setting changes nothing.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ftl_dev_fault.h"
#include "pfs_meta.h"
#include "pfs_tiering.h"
#include "pfs_vol_int.h"

#define DEV_SIZE (256ull << 20)
#define BS       4096u
#define NBLK     1024u /* 4 MiB: four extents */

static struct ftl_dev *dev;
static struct pfs *p;
static uint8_t (*model)[BS];
static uint8_t (*snap_model)[BS];

/* The temperature's clock (pfs_temp_now), moved on by age_all() so that data the test wrote
 * is frozen by then (the default temp_frozen_after is 30 days). */
static int64_t clock_skew;
static int64_t skewed_clock(void)
{
	return (int64_t)time(NULL) + clock_skew;
}
static void age_all(void)
{
	clock_skew += 40ll * 86400;
}

static void store_open(void)
{
	struct pfs_opts o = {.device = "mem",
	                     .compression = "lz4",
	                     .dedupe = -1,
	                     .commit_interval_ms = -1,
	                     .gc_thread = true};
	char msg[256];
	cr_assert_eq(pfs_open_dev(&o, dev, &p, msg, sizeof(msg)), 0, "pfs_open: %s", msg);
}

static void setup(void)
{
	struct ftl_superblock_info sb;
	struct ftl_format_params fp = {
	    .segment_size = 1u << 20,
	    .user_block_size = BS,
	    .meta_blocks = (uint32_t)(DEV_SIZE / 64 / 4096),
	};

	cr_assert_eq(ftl_dev_open_mem(DEV_SIZE, 4096, &dev), 0);
	cr_assert_eq(ftl_format(dev, &fp), 0);
	cr_assert_eq(ftl_read_superblock(dev, &sb), 0);
	cr_assert_eq(pfs_vfs_format(dev, sb.meta_offset, sb.meta_size), 0);
	cr_assert_eq(ftl_dev_flush(dev), 0);
	pfs_temp_now = skewed_clock;
	store_open();
	model = calloc(NBLK, BS);
	snap_model = calloc(NBLK, BS);
	cr_assert(model && snap_model);
}

static void teardown(void)
{
	pfs_close(p);
	p = NULL;
	ftl_dev_close(dev);
	dev = NULL;
	free(model);
	free(snap_model);
}

TestSuite(fs_tier, .init = setup, .fini = teardown, .timeout = 120);

/* Text-like bytes (words from a small vocabulary): lz4 leaves room for zstd:19 to gain. */
static void text(uint8_t *b, unsigned seed)
{
	static const char *const w[] = {"volume ", "chunk ", "flash ",   "segment ", "cold ",
	                                "frozen ", "hot ",   "extent ",  "mover ",   "zstd ",
	                                "lz4 ",    "write ", "read ",    "the ",     "of ",
	                                "and ",    "\n",     "storage ", "engine ",  "map "};
	size_t n = 0;
	while (n < BS) {
		seed = seed * 1103515245u + 12345u;
		const char *s = w[(seed >> 16) % 20];
		size_t l = strlen(s) < BS - n ? strlen(s) : BS - n;
		memcpy(b + n, s, l);
		n += l;
	}
}

static int ctl(const char *line)
{
	return pfs_change_apply(p, &(struct pfs_change){.kind = PFS_CHANGE_CONFIG_SET,
	                                                .name = "tier_rate",
	                                                .value = line});
}

static void write_block(struct pfs_vol *v, uint32_t i, const uint8_t *b)
{
	struct pfs_change c = {
	    .kind = PFS_CHANGE_WRITE, .vol = v, .buf = b, .len = BS, .off = (uint64_t)i * BS};
	cr_assert_eq(pfs_change_apply(p, &c), 0);
}

struct writer {
	struct pfs_vol *v;
	volatile bool stop;
	unsigned seed;
	int writes, punches;
};

/* Overwrites and punches random blocks until stopped, keeping the model. */
static void *writer_main(void *arg)
{
	struct writer *w = arg;
	uint8_t b[BS];
	while (!w->stop) {
		w->seed = w->seed * 1103515245u + 12345u;
		/* The last extent is left alone: the writer warms every extent it touches, and on a
		 * loaded machine it reached all four before the mover's first look (CI: nothing
		 * moved), so the mover always has a cold extent to move beside the raced ones. */
		uint32_t i = (w->seed >> 8) % (NBLK - NBLK / 4);
		if (w->seed % 5 == 0) {
			struct pfs_change c = {.kind = PFS_CHANGE_PUNCH,
			                       .vol = w->v,
			                       .off = (uint64_t)i * BS,
			                       .len = BS};
			if (pfs_change_apply(p, &c) == 0) {
				memset(model[i], 0, BS);
				w->punches++;
			}
		} else {
			text(b, w->seed);
			struct pfs_change c = {.kind = PFS_CHANGE_WRITE,
			                       .vol = w->v,
			                       .buf = b,
			                       .len = BS,
			                       .off = (uint64_t)i * BS};
			if (pfs_change_apply(p, &c) == 0) {
				memcpy(model[i], b, BS);
				w->writes++;
			}
		}
		usleep(200);
	}
	return NULL;
}

static void check_map(const char *what, struct pfs_vol *v, uint8_t (*want)[BS])
{
	uint8_t *got = malloc((size_t)NBLK * BS);
	cr_assert_not_null(got);
	cr_assert_eq(pfs_vol_read(p, v, got, (size_t)NBLK * BS, 0), (ssize_t)NBLK * BS);
	for (uint32_t i = 0; i < NBLK; i++)
		cr_assert_eq(memcmp(got + (size_t)i * BS, want[i], BS), 0, "%s: block %u differs",
		             what, i);
	free(got);
}

static void wait_pass(uint64_t passes)
{
	struct pfs_tier_progress t;
	for (int n = 0; n < 600; n++) {
		pfs_tier_progress(p, &t);
		if (t.passes >= passes)
			return;
		usleep(100 * 1000);
	}
	cr_assert_fail("the mover did not finish a pass: state %s, %llu chunks moved", t.state,
	               (unsigned long long)t.chunks_moved);
}

Test(fs_tier, mover_races_overwrites_and_punches_and_every_block_reads_right)
{
	struct pfs_vol *v, *s;
	struct pfs_tier_progress t;

	cr_assert_eq(pfs_change_apply(p, &(struct pfs_change){.kind = PFS_CHANGE_VOL_CREATE,
	                                                      .name = "v",
	                                                      .size = (uint64_t)NBLK * BS}),
	             0);
	v = pfs_vol_find(p, PFS_MAP_VOLUME, 0, "v");
	cr_assert_not_null(v);
	for (uint32_t i = 0; i < NBLK; i++) {
		text(model[i], i + 1);
		write_block(v, i, model[i]);
	}
	cr_assert_eq(
	    pfs_change_apply(
	        p, &(struct pfs_change){.kind = PFS_CHANGE_SNAP_CREATE, .name = "v", .snap = "s"}),
	    0);
	memcpy(snap_model, model, (size_t)NBLK * BS);
	cr_assert_eq(pfs_commit(p), 0);
	age_all(); /* the writer below warms what it touches again: the mover passes that over */

	cr_assert_eq(ctl("1G"), 0);
	cr_assert_eq(pfs_tier_set(p, "v", "zstd:19"), 0);
	struct writer w = {.v = v, .seed = 77};
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, writer_main, &w), 0);
	wait_pass(1);
	w.stop = true;
	pthread_join(th, NULL);
	pfs_tier_progress(p, &t);
	cr_log_info("moved %llu chunks, saved %llu bytes, %llu changed meanwhile; writer: %d "
	            "writes, %d punches",
	            (unsigned long long)t.chunks_moved, (unsigned long long)t.bytes_saved,
	            (unsigned long long)t.chunks_stale, w.writes, w.punches);
	cr_assert_gt(t.chunks_moved, 0);
	cr_assert_gt(t.bytes_saved, 0);
	cr_assert_eq(t.errors, 0);
	cr_assert_gt(w.writes, 0);
	check_map("volume", v, model);
	s = pfs_vol_find(p, PFS_MAP_SNAPSHOT, v->id, "s");
	cr_assert_not_null(s);
	check_map("snapshot", s, snap_model);
	pfs_vol_unref(s);
	pfs_vol_unref(v);

	/* A reopen (the FTL scan, the maps, the cursor and the setting from the namespace). */
	pfs_close(p);
	store_open();
	v = pfs_vol_find(p, PFS_MAP_VOLUME, 0, "v");
	cr_assert_not_null(v);
	char val[32];
	pfs_tier_get(p, v, val, sizeof(val));
	cr_assert_str_eq(val, "zstd:19");
	check_map("volume after reopen", v, model);
	s = pfs_vol_find(p, PFS_MAP_SNAPSHOT, v->id, "s");
	cr_assert_not_null(s);
	check_map("snapshot after reopen", s, snap_model);
	pfs_vol_unref(s);
	pfs_vol_unref(v);
}

Test(fs_tier, bad_settings_change_nothing)
{
	struct pfs_vol *v;
	char val[32], msg[256];

	cr_assert_eq(pfs_change_apply(p, &(struct pfs_change){.kind = PFS_CHANGE_VOL_CREATE,
	                                                      .name = "v",
	                                                      .size = 1 << 20}),
	             0);
	v = pfs_vol_find(p, PFS_MAP_VOLUME, 0, "v");
	cr_assert_eq(pfs_tier_set(p, "v", "zstd:0"), -EINVAL);
	pfs_msg_get(p, msg, sizeof(msg));
	cr_assert(strstr(msg, "cold_compression must be"), "%s", msg);
	cr_assert_eq(pfs_tier_set(p, "v", "zstd:3x"), -EINVAL);
	cr_assert_eq(pfs_tier_set(p, "v", ""), -EINVAL);
	cr_assert_eq(pfs_tier_set(p, "nope", "lz4"), -ENOENT);
	pfs_tier_get(p, v, val, sizeof(val));
	cr_assert_str_eq(val, "none");
	cr_assert_eq(ctl("10T"), -EINVAL);
	cr_assert_eq(ctl("-5"), -EINVAL);
	cr_assert_eq(pfs_config_get(p, "tier_rate", val, sizeof(val)), 0);
	cr_assert_str_eq(val, "1048576");
	cr_assert_eq(pfs_tier_set(p, "v", "zstd"), 0);
	pfs_tier_get(p, v, val, sizeof(val));
	cr_assert_str_eq(val, "zstd:3");
	pfs_vol_unref(v);
}

/* The report: cold text gets a zstd:19 recommendation whose effect was measured (and which the
 * mover then roughly achieves), and a snapshot older than 90 days one with its unique bytes. */
Test(fs_tier, report_recommends_with_measured_effects)
{
	struct pfs_buf b = {0};
	struct pfs_vol *v, *s;
	uint8_t blk[BS];

	cr_assert_eq(pfs_change_apply(p, &(struct pfs_change){.kind = PFS_CHANGE_VOL_CREATE,
	                                                      .name = "v",
	                                                      .size = (uint64_t)NBLK * BS}),
	             0);
	v = pfs_vol_find(p, PFS_MAP_VOLUME, 0, "v");
	for (uint32_t i = 0; i < NBLK; i++) {
		text(blk, i + 1);
		write_block(v, i, blk);
	}
	cr_assert_eq(pfs_change_apply(p, &(struct pfs_change){.kind = PFS_CHANGE_SNAP_CREATE,
	                                                      .name = "v",
	                                                      .snap = "old"}),
	             0);
	/* The snapshot alone keeps the first 64 blocks' old contents. */
	for (uint32_t i = 0; i < 64; i++) {
		text(blk, 100000 + i);
		write_block(v, i, blk);
	}
	cr_assert_eq(pfs_commit(p), 0);
	s = pfs_vol_find(p, PFS_MAP_SNAPSHOT, v->id, "old");
	cr_assert_not_null(s);
	pthread_mutex_lock(&p->cat_lock);
	s->ctime_ns -= 100ll * 86400 * 1000000000; /* taken 100 days ago */
	pthread_mutex_unlock(&p->cat_lock);
	age_all();
	uint64_t unique = 0, shared = 0;
	cr_assert_eq(pfs_vol_usage(p, s, true, &unique, &shared), 0);
	cr_assert_gt(unique, 0);

	cr_assert_eq(pfs_tiering_report(p, true, &b), 0);
	cr_assert_eq(b.err, 0);
	cr_log_info("%.*s", (int)b.len, b.data);
	char want[128];
	snprintf(want, sizeof(want), "\"command\": \"volume set v cold_compression zstd:19\"");
	cr_assert(strstr(b.data, want), "no zstd:19 recommendation: %s", b.data);
	snprintf(want, sizeof(want),
	         "\"effect_bytes\": %llu, \"command\": \"snapshot delete v old\"",
	         (unsigned long long)unique);
	cr_assert(strstr(b.data, want), "no snapshot recommendation with %llu bytes: %s",
	          (unsigned long long)unique, b.data);
	pfs_buf_free(&b);
	/* The text form says the same, with the command to run. */
	cr_assert_eq(pfs_tiering_report(p, false, &b), 0);
	cr_assert(strstr(b.data, "echo 'snapshot delete v old' > .pstorage/ctl"), "%s", b.data);
	pfs_buf_free(&b);

	/* Acting on it: the recommendation goes, the mover saves bytes. */
	cr_assert_eq(ctl("1G"), 0);
	cr_assert_eq(pfs_tier_set(p, "v", "zstd:19"), 0);
	wait_pass(1);
	cr_assert_eq(pfs_tiering_report(p, true, &b), 0);
	cr_assert_null(strstr(b.data, "recompress_cold"), "%s", b.data);
	pfs_buf_free(&b);
	pfs_vol_unref(s);
	pfs_vol_unref(v);
}

/* Hot data that does not compress: the report says storing it raw would save the codec's
 * work, with the measured ratio and read cost. */
Test(fs_tier, report_recommends_raw_for_hot_incompressible_data)
{
	struct pfs_buf b = {0};
	struct pfs_vol *v;
	uint8_t blk[BS];
	uint64_t x = 0x243f6a8885a308d3ull;

	cr_assert_eq(pfs_config_set(p, "temp_hot_heat", "1", false), 0);
	cr_assert_eq(pfs_change_apply(p, &(struct pfs_change){.kind = PFS_CHANGE_VOL_CREATE,
	                                                      .name = "r",
	                                                      .size = (uint64_t)NBLK * BS}),
	             0);
	v = pfs_vol_find(p, PFS_MAP_VOLUME, 0, "r");
	cr_assert_not_null(v);
	for (uint32_t i = 0; i < NBLK; i++) {
		for (uint32_t j = 0; j < BS; j++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			blk[j] = (uint8_t)x;
		}
		write_block(v, i, blk);
	}
	cr_assert_eq(pfs_commit(p), 0);
	cr_assert_eq(pfs_tiering_report(p, true, &b), 0);
	cr_assert_eq(b.err, 0);
	cr_log_info("%.*s", (int)b.len, b.data);
	cr_assert(strstr(b.data, "\"kind\": \"store_raw\""), "no store_raw: %s", b.data);
	cr_assert(strstr(b.data, "\"command\": \"config set compression none\""), "%s", b.data);
	cr_assert_null(strstr(b.data, "\"kind\": \"recompress_cold\""), "%s", b.data);
	free(b.data);
	pfs_vol_unref(v);
}
