/* tests/fs/test_fs_core.c - the fs module in process (no FUSE): parsing, volume I/O at odd
 * offsets, snapshots and clones, ctl errors that change nothing, and persistence across a
 * close/open of the namespace (maps, long patterns, settings).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pfs_front_int.h"
#include "pfs_vol_int.h"

static char img[64];
static struct pfs *p;

static void open_ns(void)
{
	char msg[256];
	struct pfs_opts o = {.device = img, .dedupe = -1, .commit_interval_ms = -1};
	int rc = pfs_open(&o, &p, msg, sizeof(msg));
	cr_assert_eq(rc, 0, "pfs_open: %s", msg);
}

static void setup(void)
{
	char msg[256];
	struct pfs_mkfs_params prm = {.size = 256ull << 20, .segment_size = 1u << 20};

	snprintf(img, sizeof(img), "/tmp/pstor-fs-XXXXXX");
	int fd = mkstemp(img);
	cr_assert_geq(fd, 0);
	close(fd);
	unlink(img);
	cr_assert_eq(pfs_mkfs(img, &prm, msg, sizeof(msg)), 0, "mkfs: %s", msg);
	open_ns();
}

static void teardown(void)
{
	pfs_close(p);
	p = NULL;
	unlink(img);
}

static void reopen(void)
{
	pfs_close(p);
	p = NULL;
	open_ns();
}

static struct pfs_vol *vol(const char *name)
{
	struct pfs_vol *v = pfs_vol_find(p, PFS_MAP_VOLUME, 0, name);
	cr_assert_not_null(v, "volume %s", name);
	return v;
}

static void fill_random(uint8_t *b, size_t n, unsigned seed)
{
	srand(seed);
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(rand() >> 7);
}

TestSuite(fs_core, .init = setup, .fini = teardown, .timeout = 60);

Test(fs_parse, sizes_and_names)
{
	uint64_t v;

	cr_expect_eq(pfs_parse_size("4096", &v), 0);
	cr_expect_eq(v, 4096);
	cr_expect_eq(pfs_parse_size("10G", &v), 0);
	cr_expect_eq(v, 10ull << 30);
	cr_expect_eq(pfs_parse_size("3MiB", &v), 0);
	cr_expect_eq(v, 3ull << 20);
	cr_expect_eq(pfs_parse_size("abc", &v), -EINVAL);
	cr_expect_eq(pfs_parse_size("-1", &v), -EINVAL);
	cr_expect_eq(pfs_parse_size("1X", &v), -EINVAL);
	cr_expect_eq(pfs_parse_size("", &v), -EINVAL);
	cr_expect_eq(pfs_parse_size("99999999999P", &v), -ERANGE);
	cr_expect(pfs_name_valid("db-01.img_x"));
	cr_expect(!pfs_name_valid(""));
	cr_expect(!pfs_name_valid(".hidden"));
	cr_expect(!pfs_name_valid("a/b"));
	cr_expect(!pfs_name_valid("a b"));
}

Test(fs_core, odd_offsets_round_trip_and_holes_read_zero)
{
	enum { N = 3 * 4096 + 777 };
	static uint8_t w[N], r[N];
	uint8_t b10[10], z[4096];
	struct pfs_vol *v;

	cr_assert_eq(pfs_ctl_exec(p, "volume create v 64M"), 0);
	v = vol("v");
	fill_random(w, N, 1);
	cr_assert_eq(pfs_vol_write(p, v, w, N, 12345), N);
	cr_assert_eq(pfs_vol_write(p, v, w, 10, 4090), 10); /* across a block edge */
	cr_assert_eq(pfs_vol_read(p, v, r, N, 12345), N);
	cr_assert_eq(memcmp(r, w, N), 0);
	cr_assert_eq(pfs_vol_read(p, v, b10, 10, 4090), 10);
	cr_assert_eq(memcmp(b10, w, 10), 0);
	cr_assert_eq(pfs_vol_read(p, v, z, sizeof(z), 8192), (ssize_t)sizeof(z));
	for (size_t i = 0; i < sizeof(z); i++)
		cr_assert_eq(z[i], 0, "hole byte %zu", i);
	/* Reads stop at the end of the volume. */
	cr_assert_eq(pfs_vol_read(p, v, z, sizeof(z), (64u << 20) - 100), 100);
	pfs_vol_unref(v);
}

Test(fs_core, survives_close_and_open)
{
	static uint8_t w[1 << 20], r[1 << 20];
	struct pfs_vol *v;

	cr_assert_eq(pfs_ctl_exec(p, "volume create v 16M"), 0);
	v = vol("v");
	fill_random(w, sizeof(w), 2);
	/* a long repeating pattern (period 12) goes to the engine's table: must persist too */
	for (size_t i = 0; i < 4096; i++)
		w[4096 + i] = "0123456789ab"[i % 12];
	memset(w + 8192, 0, 4096);
	cr_assert_eq(pfs_vol_write(p, v, w, sizeof(w), 3 << 20), (ssize_t)sizeof(w));
	pfs_vol_unref(v);
	cr_assert_eq(pfs_ctl_exec(p, "config set compression zstd:5"), 0);
	cr_assert_eq(pfs_ctl_exec(p, "snapshot create v s1"), 0);
	reopen();
	v = vol("v");
	cr_assert_eq(pfs_vol_read(p, v, r, sizeof(r), 3 << 20), (ssize_t)sizeof(r));
	cr_assert_eq(memcmp(r, w, sizeof(r)), 0);
	cr_assert_eq(atomic_load(&v->size), 16u << 20);
	pfs_vol_unref(v);
	char val[64];
	pfs_config_get(p, "compression", val, sizeof(val));
	cr_assert_str_eq(val, "zstd:5");
	struct pfs_vol *s = pfs_vol_find(p, PFS_MAP_SNAPSHOT, 1, "s1");
	cr_assert_not_null(s);
	pfs_vol_unref(s);
}

Test(fs_core, snapshot_keeps_old_data_and_clone_shares_it)
{
	static uint8_t a[65536], b[65536], r[65536];
	struct pfs_vol *v, *c;

	cr_assert_eq(pfs_ctl_exec(p, "volume create v 1M"), 0);
	v = vol("v");
	fill_random(a, sizeof(a), 3);
	fill_random(b, sizeof(b), 4);
	cr_assert_eq(pfs_vol_write(p, v, a, sizeof(a), 0), (ssize_t)sizeof(a));
	cr_assert_eq(pfs_ctl_exec(p, "snapshot create v s"), 0);
	cr_assert_eq(pfs_vol_write(p, v, b, sizeof(b), 0), (ssize_t)sizeof(b));
	struct pfs_vol *s = pfs_vol_find(p, PFS_MAP_SNAPSHOT, v->id, "s");
	cr_assert_not_null(s);
	cr_assert_eq(pfs_vol_read(p, s, r, sizeof(r), 0), (ssize_t)sizeof(r));
	cr_assert_eq(memcmp(r, a, sizeof(r)), 0);
	cr_assert_eq(pfs_vol_write(p, s, b, 10, 0), -EROFS);
	cr_assert_eq(pfs_ctl_exec(p, "snapshot clone v s c"), 0);
	c = vol("c");
	cr_assert_eq(pfs_vol_read(p, c, r, sizeof(r), 0), (ssize_t)sizeof(r));
	cr_assert_eq(memcmp(r, a, sizeof(r)), 0);
	uint64_t uniq, shared;
	cr_assert_eq(pfs_vol_usage(p, c, true, &uniq, &shared), 0);
	cr_expect_eq(uniq, 0, "a clone holds nothing of its own");
	cr_assert_eq(pfs_ctl_exec(p, "snapshot restore v s"), 0);
	cr_assert_eq(pfs_vol_read(p, v, r, sizeof(r), 0), (ssize_t)sizeof(r));
	cr_assert_eq(memcmp(r, a, sizeof(r)), 0);
	cr_assert_eq(pfs_ctl_exec(p, "volume delete v"), -EBUSY);
	cr_assert_eq(pfs_ctl_exec(p, "snapshot delete v s"), 0);
	cr_assert_eq(pfs_vol_read(p, c, r, sizeof(r), 0), (ssize_t)sizeof(r));
	cr_assert_eq(memcmp(r, a, sizeof(r)), 0);
	pfs_vol_unref(s);
	pfs_vol_unref(c);
	pfs_vol_unref(v);
}

Test(fs_core, clone_range_shares_blocks)
{
	static uint8_t a[8 * 4096], r[8 * 4096];
	struct pfs_vol *v, *c;

	cr_assert_eq(pfs_ctl_exec(p, "volume create v 1M"), 0);
	cr_assert_eq(pfs_ctl_exec(p, "volume create c 1M"), 0);
	v = vol("v");
	c = vol("c");
	fill_random(a, sizeof(a), 5);
	cr_assert_eq(pfs_vol_write(p, v, a, sizeof(a), 4096), (ssize_t)sizeof(a));
	cr_assert_eq(pfs_vol_clone_range(p, v, 4096, c, 8192, sizeof(a)), (ssize_t)sizeof(a));
	cr_assert_eq(pfs_vol_read(p, c, r, sizeof(r), 8192), (ssize_t)sizeof(r));
	cr_assert_eq(memcmp(r, a, sizeof(r)), 0);
	/* Overwriting the source leaves the clone alone, even after commits release blocks. */
	memset(a, 0x5a, 4096);
	a[7] = 1;
	cr_assert_eq(pfs_vol_write(p, v, a, 4096, 4096), 4096);
	cr_assert_eq(pfs_commit(p), 0);
	cr_assert_eq(pfs_vol_read(p, c, r, 4096, 8192), 4096);
	cr_assert_neq(memcmp(r, a, 4096), 0);
	pfs_vol_unref(v);
	pfs_vol_unref(c);
}

Test(fs_core, seek_data_and_hole)
{
	static uint8_t a[4096];
	struct pfs_vol *v;

	memset(a, 7, sizeof(a));
	a[1] = 9;
	cr_assert_eq(pfs_ctl_exec(p, "volume create v 8M"), 0);
	v = vol("v");
	cr_assert_eq(pfs_vol_write(p, v, a, 4096, 5 << 20), 4096);
	cr_assert_eq(pfs_vol_seek(p, v, 0, SEEK_DATA), 5 << 20);
	cr_assert_eq(pfs_vol_seek(p, v, 5 << 20, SEEK_HOLE), (5 << 20) + 4096);
	cr_assert_eq(pfs_vol_seek(p, v, (5 << 20) + 4096, SEEK_DATA), -ENXIO);
	cr_assert_eq(pfs_vol_seek(p, v, 0, SEEK_HOLE), 0);
	pfs_vol_unref(v);
}

Test(fs_core, punch_releases_space_after_commit)
{
	static uint8_t a[1 << 20];
	struct pfs_vol *v;
	struct engine_stats es;

	cr_assert_eq(pfs_ctl_exec(p, "volume create v 4M"), 0);
	v = vol("v");
	fill_random(a, sizeof(a), 6);
	cr_assert_eq(pfs_vol_write(p, v, a, sizeof(a), 0), (ssize_t)sizeof(a));
	cr_assert_eq(pfs_commit(p), 0);
	engine_get_stats(p->eng, &es);
	uint64_t before = es.unique_chunks;
	cr_assert_eq(pfs_vol_punch(p, v, 4096, sizeof(a) - 8192), 0);
	/* Invariant 4: nothing is released before a commit makes the punch durable. */
	engine_get_stats(p->eng, &es);
	cr_assert_eq(es.unique_chunks, before);
	cr_assert_eq(pfs_commit(p), 0);
	engine_get_stats(p->eng, &es);
	cr_assert_eq(es.unique_chunks, 2);
	pfs_vol_unref(v);
}

/* Every bad command fails with its errno and leaves the catalogue as it was. */
Test(fs_core, bad_ctl_commands_change_nothing)
{
	static const struct {
		const char *cmd;
		int err;
	} bad[] = {
	    {"volume create", -EINVAL},
	    {"volume create x", -EINVAL},
	    {"volume create x 1G extra", -EINVAL},
	    {"volume create x abc", -EINVAL},
	    {"volume create x 0", -EINVAL},
	    {"volume create x 1000T", -ENOSPC},
	    {"volume create a/b 1G", -EINVAL},
	    {"volume create .x 1G", -EINVAL},
	    {"volume create v 1M", -EEXIST},
	    {"volume delete nosuch", -ENOENT},
	    {"volume resize nosuch 1G", -ENOENT},
	    {"volume resize v 0", -EINVAL},
	    {"volume resize v 1000T", -ENOSPC},
	    {"volume rename nosuch y", -ENOENT},
	    {"volume rename v w", -EEXIST},
	    {"snapshot create nosuch s", -ENOENT},
	    {"snapshot create v s", -EEXIST},
	    {"snapshot delete v nosuch", -ENOENT},
	    {"snapshot restore v nosuch", -ENOENT},
	    {"snapshot clone v s w", -EEXIST},
	    {"snapshot clone v s", -EINVAL},
	    {"config set nosuch 1", -EINVAL},
	    {"config set compression lz5", -EINVAL},
	    {"config set dedupe maybe", -EINVAL},
	    {"config set commit_interval_ms -5", -EINVAL},
	    {"gc stop", -EINVAL},
	    {"frobnicate", -EINVAL},
	    {"volume delete v", -EBUSY},
	};
	char before[PFS_MSG_MAX];

	cr_assert_eq(pfs_ctl_exec(p, "volume create v 100M"), 0);
	cr_assert_eq(pfs_ctl_exec(p, "volume create w 100M"), 0);
	cr_assert_eq(pfs_ctl_exec(p, "snapshot create v s"), 0);
	pfs_config_get(p, "compression", before, sizeof(before));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = pfs_ctl_exec(p, bad[i].cmd);
		cr_expect_eq(rc, bad[i].err, "%s: got %d, want %d", bad[i].cmd, rc, bad[i].err);
		cr_expect(!strncmp(p->msg, "error:", 6), "%s: message '%s'", bad[i].cmd, p->msg);
	}
	int n = 0;
	pthread_mutex_lock(&p->cat_lock);
	for (struct pfs_vol *v = p->vols; v; v = v->next)
		n++;
	pthread_mutex_unlock(&p->cat_lock);
	cr_expect_eq(n, 3, "v, w and v@s, nothing else");
	char after[PFS_MSG_MAX];
	pfs_config_get(p, "compression", after, sizeof(after));
	cr_expect_str_eq(after, before);
	struct pfs_vol *v = vol("v");
	cr_expect_eq(atomic_load(&v->size), 100ull << 20);
	pfs_vol_unref(v);
}

/* Blocks that compress about 4:1 (a random quarter, zeros after) and differ from each other. */
static void fill_compressible(uint8_t *b, size_t nblocks, unsigned seed)
{
	memset(b, 0, nblocks * 4096);
	for (size_t i = 0; i < nblocks; i++)
		fill_random(b + i * 4096, 1024, seed + (unsigned)i);
}

static uint64_t stored_bytes(void)
{
	struct pfs_stats st;

	pfs_get_stats(p, &st);
	return st.engine.stored_bytes;
}

/* The demo's case: a volume holding its data twice, then a snapshot of it. Each chunk counts
 * once per map: before the snapshot all of it is the volume's own, after it all is shared, and
 * unique + shared is what the pool really stores (so written / (unique + shared) is the
 * volume's real reduction, not half of it). */
Test(fs_core, usage_counts_each_chunk_once_per_map)
{
	enum { N = 16 };
	static uint8_t a[N * 4096];
	uint64_t uniq, shared, base = stored_bytes();

	cr_assert_eq(pfs_ctl_exec(p, "volume create v 1M"), 0);
	struct pfs_vol *v = vol("v");
	fill_compressible(a, N, 11);
	cr_assert_eq(pfs_vol_write(p, v, a, sizeof(a), 0), (ssize_t)sizeof(a));
	cr_assert_eq(pfs_vol_write(p, v, a, sizeof(a), sizeof(a)), (ssize_t)sizeof(a));
	uint64_t stored = stored_bytes() - base;
	cr_assert_gt(stored, 0);
	cr_assert_lt(stored, sizeof(a) / 2, "the blocks compress: %llu",
	             (unsigned long long)stored);

	cr_assert_eq(pfs_vol_usage(p, v, true, &uniq, &shared), 0);
	cr_expect_eq(uniq, stored, "held twice by one volume is still its own: %llu of %llu",
	             (unsigned long long)uniq, (unsigned long long)stored);
	cr_expect_eq(shared, 0);

	cr_assert_eq(pfs_ctl_exec(p, "snapshot create v s"), 0);
	cr_assert_eq(pfs_vol_usage(p, v, true, &uniq, &shared), 0);
	cr_expect_eq(uniq, 0);
	cr_expect_eq(shared, stored, "shared once, not once per reference: %llu of %llu",
	             (unsigned long long)shared, (unsigned long long)stored);
	struct pfs_vol *s = pfs_vol_find(p, PFS_MAP_SNAPSHOT, v->id, "s");
	cr_assert_not_null(s);
	cr_assert_eq(pfs_vol_usage(p, s, true, &uniq, &shared), 0);
	cr_expect_eq(uniq, 0);
	cr_expect_eq(shared, stored);

	/* The report's reduction: written / (unique + shared), 2 x the compression ratio. */
	struct pfs_buf b = {0};
	cr_assert_eq(pfs_report_volume_value(p, v, "reduction", &b), 0);
	double red = strtod(b.data, NULL);
	double want = (double)(2 * sizeof(a)) / (double)stored;
	cr_expect(red > want - 0.02 && red < want + 0.02, "reduction %s, want %.2f", b.data, want);
	pfs_buf_free(&b);

	/* Half of the volume rewritten with new data: those chunks are its own again. */
	static uint8_t c[N / 2 * 4096];
	fill_compressible(c, N / 2, 99);
	uint64_t before = stored_bytes();
	cr_assert_eq(pfs_vol_write(p, v, c, sizeof(c), 0), (ssize_t)sizeof(c));
	uint64_t fresh = stored_bytes() - before;
	cr_assert_eq(pfs_vol_usage(p, v, true, &uniq, &shared), 0);
	cr_expect_eq(uniq, fresh);
	cr_expect_eq(shared, stored);
	pfs_vol_unref(s);
	pfs_vol_unref(v);
}

/* With a table too small for the map's multiply-referenced chunks, the walk splits them into
 * partitions walked one at a time, and the figures stay the same. */
Test(fs_core, usage_bounded_table_splits_into_partitions)
{
	enum { N = 1200 };
	uint8_t *a = malloc((size_t)N * 4096);
	uint64_t u1, s1, u2, s2;

	cr_assert_not_null(a);
	cr_assert_eq(pfs_ctl_exec(p, "volume create v 16M"), 0);
	struct pfs_vol *v = vol("v");
	fill_compressible(a, N, 5);
	cr_assert_eq(pfs_vol_write(p, v, a, (size_t)N * 4096, 0), (ssize_t)N * 4096);
	cr_assert_eq(pfs_vol_write(p, v, a, (size_t)N / 2 * 4096, (uint64_t)N * 4096),
	             (ssize_t)N / 2 * 4096);
	cr_assert_eq(pfs_vol_usage(p, v, true, &u1, &s1), 0);
	cr_assert_eq(pfs_ctl_exec(p, "snapshot create v s"), 0);
	cr_assert_eq(pfs_vol_usage(p, v, true, &u1, &s1), 0);
	cr_expect_eq(u1, 0);

	uint32_t saved = pfs_usage_max_slots;
	uint64_t passes = atomic_load(&pfs_usage_passes);
	pfs_usage_max_slots = 1024; /* 716 chunks a pass: N needs at least 2 */
	cr_assert_eq(pfs_vol_usage(p, v, true, &u2, &s2), 0);
	pfs_usage_max_slots = saved;
	cr_expect_geq(atomic_load(&pfs_usage_passes) - passes, 2, "walked in partitions");
	cr_expect_eq(u2, u1);
	cr_expect_eq(s2, s1);
	pfs_vol_unref(v);
	free(a);
}

/* The figures a report shows (pfs_vol_usage_recent): the last walk's while nothing changed in
 * the store, or while it is younger than the bound and no commit came since; a walk after a
 * commit, after a change in another volume (a dedupe hit sharing this one's chunks) as after
 * one in this volume. */
Test(fs_core, usage_recent_walks_again_only_when_the_store_changed)
{
	enum { N = 64 };
	static uint8_t a[N * 4096], b[N * 4096];
	const uint32_t hour = 3600u * 1000;
	uint64_t u, s, u2, s2, w;
	char msg[256];

	/* No timed commit during the test: each commit here is the test's own. */
	pfs_close(p);
	struct pfs_opts o = {.device = img, .dedupe = -1, .commit_interval_ms = 600000};
	cr_assert_eq(pfs_open(&o, &p, msg, sizeof(msg)), 0, "pfs_open: %s", msg);
	cr_assert_eq(pfs_ctl_exec(p, "volume create v 1M"), 0);
	cr_assert_eq(pfs_ctl_exec(p, "volume create w 1M"), 0);
	struct pfs_vol *v = vol("v"), *vw = vol("w");
	fill_random(a, sizeof(a), 21);
	fill_random(b, sizeof(b), 22);
	cr_assert_eq(pfs_vol_write(p, v, a, sizeof(a), 0), (ssize_t)sizeof(a));
	cr_assert_eq(pfs_commit(p), 0);

	w = atomic_load(&pfs_usage_walks);
	cr_assert_eq(pfs_vol_usage_recent(p, v, hour, &u, &s), 0);
	cr_expect_eq(atomic_load(&pfs_usage_walks), w + 1, "the first report walks");
	cr_expect_gt(u, 0);
	cr_expect_eq(s, 0);
	cr_assert_eq(pfs_vol_usage_recent(p, v, 0, &u2, &s2), 0);
	cr_expect_eq(atomic_load(&pfs_usage_walks), w + 1, "nothing changed: no walk, any age");
	cr_expect_eq(u2, u);

	/* A change, no commit: within the bound the last figures stand. */
	cr_assert_eq(pfs_vol_write(p, v, b, sizeof(b), sizeof(a)), (ssize_t)sizeof(b));
	cr_assert_eq(pfs_vol_usage_recent(p, v, hour, &u2, &s2), 0);
	cr_expect_eq(atomic_load(&pfs_usage_walks), w + 1, "younger than the bound");
	cr_expect_eq(u2, u, "the last walk's figures");
	/* Past the bound (0 ms), or after a commit, the next report walks and is exact. */
	cr_assert_eq(pfs_vol_usage_recent(p, v, 0, &u2, &s2), 0);
	cr_expect_eq(atomic_load(&pfs_usage_walks), w + 2);
	cr_expect_gt(u2, u + sizeof(b) / 2, "the new blocks are the volume's own: %llu -> %llu",
	             (unsigned long long)u, (unsigned long long)u2);
	cr_assert_eq(pfs_ctl_exec(p, "volume resize v 2M"), 0);
	cr_assert_eq(pfs_commit(p), 0);
	cr_assert_eq(pfs_vol_usage_recent(p, v, hour, &u, &s), 0);
	cr_expect_eq(atomic_load(&pfs_usage_walks), w + 3, "a commit since the last walk");
	cr_expect_eq(u, u2);

	/* Another volume dedupes against this one: its chunks turn shared. */
	cr_assert_eq(pfs_vol_write(p, vw, a, sizeof(a), 0), (ssize_t)sizeof(a));
	cr_assert_eq(pfs_commit(p), 0);
	cr_assert_eq(pfs_vol_usage_recent(p, v, hour, &u2, &s2), 0);
	cr_expect_eq(atomic_load(&pfs_usage_walks), w + 4);
	cr_expect_gt(s2, sizeof(a) / 2, "shared with w: %llu", (unsigned long long)s2);
	cr_expect_eq(u2 + s2, u, "the same chunks, now shared: %llu + %llu != %llu",
	             (unsigned long long)u2, (unsigned long long)s2, (unsigned long long)u);

	/* The report reads the same figures; pfs_vol_usage(fresh) walks whatever. */
	struct pfs_buf txt = {0};
	cr_assert_eq(pfs_report_volume_value(p, v, "shared", &txt), 0);
	cr_expect_eq(strtoull(txt.data, NULL, 10), s2);
	pfs_buf_free(&txt);
	cr_expect_eq(atomic_load(&pfs_usage_walks), w + 4);
	cr_assert_eq(pfs_vol_usage(p, v, true, &u, &s), 0);
	cr_expect_eq(atomic_load(&pfs_usage_walks), w + 5);
	cr_expect(u == u2 && s == s2);
	pfs_vol_unref(vw);
	pfs_vol_unref(v);
}

/* A map walked from its rows alone (after a remount), from loaded pages some of which are dirty
 * (newer than their rows), and from a mix, gives the same figures. */
Test(fs_core, usage_walk_rows_and_loaded_pages_agree)
{
	enum { PAGE = PFS_PAGE_REFS * 4096 };
	static uint8_t a[4 * PAGE], z[PAGE / 2];
	uint64_t u0, s0, u1, s1, u2, s2;
	struct pfs_vol *v;

	cr_assert_eq(pfs_ctl_exec(p, "volume create v 4M"), 0);
	v = vol("v");
	fill_random(a, sizeof(a), 31);
	cr_assert_eq(pfs_vol_write(p, v, a, sizeof(a), 0), (ssize_t)sizeof(a));
	cr_assert_eq(pfs_ctl_exec(p, "snapshot create v s"), 0);
	/* Half of page 1 zeroed and page 2 rewritten: dirty pages, their rows older. */
	cr_assert_eq(pfs_vol_write(p, v, z, sizeof(z), PAGE), (ssize_t)sizeof(z));
	fill_random(a, PAGE, 32);
	cr_assert_eq(pfs_vol_write(p, v, a, PAGE, 2 * PAGE), (ssize_t)PAGE);
	cr_assert_eq(pfs_vol_usage(p, v, true, &u0, &s0), 0);
	cr_expect_gt(u0, PAGE / 2, "page 2's new data is the volume's own");
	cr_expect_gt(s0, PAGE, "pages 0, 3 and half of 1 are shared with the snapshot");
	cr_assert_eq(pfs_commit(p), 0);
	pfs_vol_unref(v);

	reopen(); /* nothing loaded: every page from its row */
	v = vol("v");
	cr_assert_eq(pfs_vol_usage(p, v, true, &u1, &s1), 0);
	cr_expect(u1 == u0 && s1 == s0, "rows: %llu/%llu, pages: %llu/%llu", (unsigned long long)u1,
	          (unsigned long long)s1, (unsigned long long)u0, (unsigned long long)s0);
	uint8_t blk[4096];
	cr_assert_eq(pfs_vol_read(p, v, blk, sizeof(blk), 3 * PAGE), (ssize_t)sizeof(blk));
	cr_assert_eq(pfs_vol_usage(p, v, true, &u2, &s2), 0); /* page 3 loaded, the rest rows */
	cr_expect(u2 == u0 && s2 == s0);
	pfs_vol_unref(v);
}
