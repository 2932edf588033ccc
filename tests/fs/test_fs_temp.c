/* tests/fs/test_fs_temp.c - data temperature (fs/vol/pfs_temp.c): the decay and class math on
 * known inputs, and the store's tracker on a fake clock: which accesses count, bytes by class,
 * persistence over a close/open, volume delete and rename, bad settings, malformed records, RAM.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pfs_front_int.h"
#include "pfs_vol_int.h"

#define MIB (1ull << 20)

static char img[64];
static struct pfs *p;
static int64_t fake_now;

static int64_t fake_clock(void)
{
	return fake_now;
}

static void open_ns(void)
{
	char msg[256];
	struct pfs_opts o = {.device = img, .dedupe = -1, .commit_interval_ms = -1};

	cr_assert_eq(pfs_open(&o, &p, msg, sizeof(msg)), 0, "pfs_open: %s", msg);
}

static void setup(void)
{
	char msg[256];
	struct pfs_mkfs_params prm = {.size = 256ull << 20, .segment_size = 1u << 20};

	/* Well after the volumes' real creation times: tracking starts at the first open. */
	fake_now = 2000000000;
	pfs_temp_now = fake_clock;
	snprintf(img, sizeof(img), "/tmp/pstor-temp-XXXXXX");
	int fd = mkstemp(img);
	cr_assert_geq(fd, 0);
	close(fd);
	unlink(img);
	cr_assert_eq(pfs_mkfs(img, &prm, msg, sizeof(msg)), 0, "mkfs: %s", msg);
	open_ns();
	cr_assert_eq(pfs_config_set(p, "temp_hot_heat", "4", true), 0);
	cr_assert_eq(pfs_config_set(p, "temp_cold_after", "100", true), 0);
	cr_assert_eq(pfs_config_set(p, "temp_frozen_after", "1000", true), 0);
	cr_assert_eq(pfs_config_set(p, "temp_half_life", "60", true), 0);
	cr_assert_eq(pfs_vol_create(p, "v", 16 * MIB, NULL), 0);
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

static void write_at(const char *name, uint64_t off, size_t len)
{
	uint8_t *b = malloc(len);
	struct pfs_vol *v = vol(name);

	cr_assert_not_null(b);
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)(i * 7 + off / 4096 + 1);
	struct pfs_change c = {
	    .kind = PFS_CHANGE_WRITE, .vol = v, .buf = b, .len = len, .off = off};
	cr_assert_eq(pfs_change_apply(p, &c), 0);
	cr_assert_eq(c.done, len);
	pfs_vol_unref(v);
	free(b);
}

static void read_at(const char *name, uint64_t off, size_t len)
{
	uint8_t *b = malloc(len);
	struct pfs_vol *v = vol(name);

	cr_assert_not_null(b);
	cr_assert_eq(pfs_vol_read(p, v, b, len, off), (ssize_t)len);
	pfs_vol_unref(v);
	free(b);
}

static enum pfs_temp_class class_at(const char *name, uint64_t off)
{
	struct pfs_vol *v = vol(name);
	enum pfs_temp_class c = pfs_temp_class_at(p, v, off);

	pfs_vol_unref(v);
	return c;
}

static void usage(const char *name, struct pfs_temp_usage *u)
{
	struct pfs_vol *v = vol(name);

	cr_assert_eq(pfs_temp_vol_usage(p, v, u), 0);
	pfs_vol_unref(v);
}

/* ---- the math ---------------------------------------------------------------------------- */
Test(temp_math, decay_halves_every_half_life)
{
	cr_expect_float_eq(pfs_temp_decay(8, 3600, 3600), 4.0, 1e-12);
	cr_expect_float_eq(pfs_temp_decay(8, 7200, 3600), 2.0, 1e-12);
	cr_expect_float_eq(pfs_temp_decay(8, 1800, 3600), 8 / 1.4142135623730951, 1e-12);
	cr_expect_float_eq(pfs_temp_decay(8, 0, 3600), 8.0, 0);
	cr_expect_float_eq(pfs_temp_decay(8, -5, 3600), 8.0, 0); /* a clock that went back */
	cr_expect_float_eq(pfs_temp_decay(8, 1, 0), 0.0, 0);
	cr_expect_float_eq(pfs_temp_decay(0, 100, 60), 0.0, 0);
	cr_expect_float_eq(pfs_temp_decay(-3, 100, 60), 0.0, 0);
}

Test(temp_math, classes_by_age_then_heat)
{
	struct pfs_temp_thresholds t = {
	    .cold_after = 86400, .frozen_after = 30 * 86400, .hot_heat = 64, .half_life = 3600};

	cr_expect_eq(pfs_temp_classify(&t, 0, 64), PFS_TEMP_HOT);
	cr_expect_eq(pfs_temp_classify(&t, 0, 63.999), PFS_TEMP_WARM);
	cr_expect_eq(pfs_temp_classify(&t, 86399, 1000), PFS_TEMP_HOT);
	cr_expect_eq(pfs_temp_classify(&t, 86399, 0), PFS_TEMP_WARM);
	cr_expect_eq(pfs_temp_classify(&t, 86400, 1000), PFS_TEMP_COLD);
	cr_expect_eq(pfs_temp_classify(&t, 30 * 86400 - 1, 0), PFS_TEMP_COLD);
	cr_expect_eq(pfs_temp_classify(&t, 30 * 86400, 0), PFS_TEMP_FROZEN);
	cr_expect_eq(pfs_temp_classify(&t, 400 * 86400ll, 5), PFS_TEMP_FROZEN);
	/* frozen_after <= cold_after: nothing is cold, warm goes straight to frozen. */
	struct pfs_temp_thresholds u = {.cold_after = 10, .frozen_after = 5, .hot_heat = 1};
	cr_expect_eq(pfs_temp_classify(&u, 4, 0), PFS_TEMP_WARM);
	cr_expect_eq(pfs_temp_classify(&u, 5, 0), PFS_TEMP_FROZEN);
	cr_expect_eq(pfs_temp_classify(&u, 10, 0), PFS_TEMP_FROZEN);
	cr_expect_str_eq(pfs_temp_class_name(PFS_TEMP_FROZEN), "frozen");
	cr_expect_str_eq(pfs_temp_class_name(PFS_TEMP_HOT), "hot");
}

/* ---- the tracker ------------------------------------------------------------------------- */
TestSuite(temp, .init = setup, .fini = teardown, .timeout = 60);

Test(temp, writes_and_reads_warm_their_extents_and_age_into_cold_and_frozen)
{
	write_at("v", 0, 6 * MIB); /* every extent: one access at t0 */
	fake_now += 10;
	for (int i = 0; i < 4; i++)
		write_at("v", 4096 * i, 4096); /* extent 0: 5 accesses */
	read_at("v", 2 * MIB + 8192, 4096);    /* extent 2: 2 accesses */
	cr_expect_eq(class_at("v", 0), PFS_TEMP_HOT);
	cr_expect_eq(class_at("v", MIB - 1), PFS_TEMP_HOT);
	cr_expect_eq(class_at("v", MIB), PFS_TEMP_WARM);
	cr_expect_eq(class_at("v", 2 * MIB), PFS_TEMP_WARM);
	/* Extent 1 was written at t0, 10 s before the others. */
	fake_now += 90;
	cr_expect_eq(class_at("v", MIB), PFS_TEMP_COLD);
	cr_expect_eq(class_at("v", 0), PFS_TEMP_HOT);
	fake_now += 10;
	cr_expect_eq(class_at("v", 0), PFS_TEMP_COLD);
	cr_expect_eq(class_at("v", 2 * MIB), PFS_TEMP_COLD);
	fake_now += 890;
	cr_expect_eq(class_at("v", MIB), PFS_TEMP_FROZEN);
	cr_expect_eq(class_at("v", 0), PFS_TEMP_COLD);
	fake_now += 10;
	cr_expect_eq(class_at("v", 0), PFS_TEMP_FROZEN);
}

Test(temp, bytes_by_class_sum_to_what_is_written)
{
	struct pfs_temp_usage u;

	write_at("v", 0, 3 * MIB);
	write_at("v", 8 * MIB, 64 * 1024); /* a partly written extent counts its written bytes */
	cr_assert_eq(pfs_temp_tick(p), 0); /* folded: heat 1 at t0 each */
	fake_now += 200;                   /* all cold */
	for (int i = 0; i < 4; i++)
		write_at("v", 0, 4096); /* extent 0 hot */
	read_at("v", MIB, 4096);        /* extent 1 warm */
	usage("v", &u);
	cr_expect_eq(u.bytes[PFS_TEMP_HOT], MIB);
	cr_expect_eq(u.bytes[PFS_TEMP_WARM], MIB);
	cr_expect_eq(u.bytes[PFS_TEMP_COLD], MIB + 64 * 1024);
	cr_expect_eq(u.bytes[PFS_TEMP_FROZEN], 0);
	cr_expect_eq(u.extents[PFS_TEMP_COLD], 2);
	cr_expect_eq(u.nhottest, 4);
	cr_expect_eq(u.hottest[0].offset, 0);
	cr_expect_float_eq(u.hottest[0].heat, 4 + pfs_temp_decay(1, 200, 60), 1e-6, "heat %f",
	                   u.hottest[0].heat);
	cr_expect_eq(u.hottest[0].last_access, fake_now);
	cr_expect_eq(u.hottest[1].offset, MIB);
}

Test(temp, heat_folds_at_a_tick_and_halves_each_half_life)
{
	struct pfs_temp_usage u;

	for (int i = 0; i < 8; i++)
		write_at("v", 0, 4096);
	cr_assert_eq(pfs_temp_tick(p), 0);
	fake_now += 60;
	usage("v", &u);
	cr_expect_float_eq(u.hottest[0].heat, 4.0, 1e-6);
	cr_assert_eq(pfs_temp_tick(p), 0);
	fake_now += 120;
	usage("v", &u);
	cr_expect_float_eq(u.hottest[0].heat, 1.0, 1e-6);
	cr_expect_eq(u.hottest[0].last_access, fake_now - 180);
}

Test(temp, untouched_data_counts_from_the_tracking_start)
{
	struct pfs_temp_usage u;
	struct pfs_vol *v = vol("v");

	/* Data the cluster applies from the peer is not this box's access (nor is a clone). */
	uint8_t b[4096] = {1};
	struct pfs_change c = {.kind = PFS_CHANGE_WRITE, .vol = v, .buf = b, .len = 4096};
	cr_assert_eq(pfs_change_apply_local(p, &c, NULL, NULL), 0);
	pfs_vol_unref(v);
	usage("v", &u);
	cr_expect_eq(u.nhottest, 0);
	cr_expect_eq(u.baseline, 2000000000);
	cr_expect_eq(u.bytes[PFS_TEMP_WARM], 4096);
	fake_now += 100;
	cr_expect_eq(class_at("v", 0), PFS_TEMP_COLD);
	cr_expect_eq(class_at("v", 15 * MIB), PFS_TEMP_COLD); /* a hole: the same rule */
	fake_now += 900;
	cr_expect_eq(class_at("v", 0), PFS_TEMP_FROZEN);
}

Test(temp, snapshot_reads_quiet_reads_and_failed_writes_do_not_count)
{
	struct pfs_temp_stats st;
	uint8_t b[4096];

	write_at("v", 0, 4096);
	cr_assert_eq(pfs_snap_create(p, "v", "s"), 0);
	pfs_temp_get_stats(p, &st);
	uint64_t before = st.touches;
	struct pfs_vol *v = vol("v");
	struct pfs_vol *s = pfs_vol_find(p, PFS_MAP_SNAPSHOT, v->id, "s");
	cr_assert_not_null(s);
	cr_assert_eq(pfs_vol_read(p, s, b, sizeof(b), 0), (ssize_t)sizeof(b));
	cr_assert_eq(pfs_vol_read_quiet(p, v, b, sizeof(b), 0), (ssize_t)sizeof(b));
	struct pfs_change c = {.kind = PFS_CHANGE_WRITE, .vol = s, .buf = b, .len = 4096};
	cr_assert_neq(pfs_change_apply(p, &c), 0); /* a snapshot is read-only */
	pfs_vol_unref(s);
	pfs_vol_unref(v);
	pfs_temp_get_stats(p, &st);
	cr_expect_eq(st.touches, before);
}

Test(temp, survives_close_and_open)
{
	struct pfs_temp_usage a, b;

	write_at("v", 0, 2 * MIB);
	for (int i = 0; i < 6; i++)
		read_at("v", 4096, 4096);
	fake_now += 5;
	usage("v", &a);
	reopen();
	usage("v", &b);
	cr_expect_eq(b.nhottest, a.nhottest);
	for (unsigned i = 0; i < a.nhottest; i++) {
		cr_expect_eq(b.hottest[i].offset, a.hottest[i].offset);
		cr_expect_eq(b.hottest[i].last_access, a.hottest[i].last_access);
		cr_expect_float_eq(b.hottest[i].heat, a.hottest[i].heat, 1e-4);
	}
	cr_expect_eq(class_at("v", 0), PFS_TEMP_HOT);
	cr_expect_eq(b.baseline, 2000000000); /* the tracking start is kept too */
	char val[32];
	cr_assert_eq(pfs_config_get(p, "temp_hot_heat", val, sizeof(val)), 0);
	cr_expect_str_eq(val, "4");
}

static int count_blob(void *arg, const char *key, const void *val, size_t len)
{
	(void)key;
	(void)val;
	(void)len;
	(*(int *)arg)++;
	return 0;
}

static int blobs_of(uint64_t id)
{
	char prefix[64];
	int n = 0;

	snprintf(prefix, sizeof(prefix), "temp/%016llx/", (unsigned long long)id);
	cr_assert_eq(pfs_blob_each(p, prefix, count_blob, &n), 0);
	return n;
}

Test(temp, rename_keeps_it_and_delete_drops_it)
{
	struct pfs_temp_usage u;

	write_at("v", 0, 4096);
	cr_assert_eq(pfs_temp_tick(p), 0);
	struct pfs_vol *v = vol("v");
	uint64_t id = v->id;
	pfs_vol_unref(v);
	cr_expect_eq(blobs_of(id), 1);
	cr_assert_eq(pfs_vol_rename(p, "v", "w"), 0);
	usage("w", &u);
	cr_expect_eq(u.nhottest, 1);
	cr_assert_eq(pfs_vol_delete(p, "w"), 0);
	cr_expect_eq(blobs_of(id), 0);
	cr_assert_eq(pfs_vol_create(p, "w", MIB, NULL), 0);
	write_at("w", 0, 4096);
	fake_now += 1;
	reopen();
	usage("w", &u);
	cr_expect_eq(u.nhottest, 1);
	/* Folded by the close at the time it ran (accesses not yet folded count as now). */
	cr_expect_float_eq(u.hottest[0].heat, 1.0, 1e-6);
}

Test(temp, bad_settings_are_refused_and_change_nothing)
{
	const char *bad[] = {"0", "-1", "abc", "", "12x", "315360001", "99999999999999999999"};
	const char *keys[] = {"temp_cold_after", "temp_frozen_after", "temp_hot_heat",
	                      "temp_half_life"};
	char before[32], after[32];

	for (size_t k = 0; k < 4; k++) {
		cr_assert_eq(pfs_config_get(p, keys[k], before, sizeof(before)), 0);
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
			cr_expect_eq(pfs_config_set(p, keys[k], bad[i], true), -EINVAL, "%s=%s",
			             keys[k], bad[i]);
		cr_assert_eq(pfs_config_get(p, keys[k], after, sizeof(after)), 0);
		cr_expect_str_eq(after, before);
	}
	cr_expect_eq(pfs_config_set(p, "temp_cold_after", "315360000", true), 0);
}

Test(temp, malformed_records_are_dropped_and_the_mount_goes_on)
{
	struct pfs_vol *v = vol("v");
	char key[64];
	uint8_t junk[776];

	memset(junk, 0xff, sizeof(junk));
	snprintf(key, sizeof(key), "temp/%016llx/%010llx", (unsigned long long)v->id, 0ull);
	cr_assert_eq(pfs_blob_put(p, key, junk, sizeof(junk)), 0);
	cr_assert_eq(pfs_blob_put(p, "temp/nonsense", junk, 3), 0);
	/* A record of a volume that no longer exists. */
	snprintf(key, sizeof(key), "temp/%016llx/%010llx", (unsigned long long)v->id + 99, 0ull);
	uint8_t ok[776] = {0};
	pfs_put32(ok, 0x504d4554u);
	pfs_put32(ok + 4, 1u << 16 | 64);
	cr_expect_eq(pfs_temp_leaf_check(ok, sizeof(ok)), 0);
	cr_expect_eq(pfs_temp_leaf_check(ok, sizeof(ok) - 1), -EUCLEAN);
	cr_expect_eq(pfs_temp_leaf_check(junk, sizeof(junk)), -EUCLEAN);
	cr_assert_eq(pfs_blob_put(p, key, ok, sizeof(ok)), 0);
	pfs_vol_unref(v);
	reopen();
	int n = 0;
	cr_assert_eq(pfs_blob_each(p, "temp/", count_blob, &n), 0);
	cr_expect_eq(n, 1, "only temp/since is left, found %d", n);
	write_at("v", 0, 4096);
	cr_expect_eq(class_at("v", 0), PFS_TEMP_WARM);
}

Test(temp, ram_grows_with_the_extents_touched)
{
	struct pfs_temp_stats st;
	struct pfs_vol *v;

	cr_assert_eq(pfs_vol_create(p, "big", 4ull << 30, NULL), 0);
	v = vol("big");
	pfs_temp_get_stats(p, &st);
	uint64_t before = st.ram_bytes;
	pfs_temp_touch(p, v, 0, 1ull << 30); /* 1 GiB: 1024 extents, 16 leaves */
	pfs_temp_get_stats(p, &st);
	cr_expect_eq(st.leaves, 16);
	uint64_t per_gib = st.ram_bytes - before;
	cr_expect_leq(per_gib, 20 * 1024, "%llu bytes for 1 GiB", (unsigned long long)per_gib);
	cr_log_info("temperature tracker: %llu bytes of RAM per GiB touched (contiguous)",
	            (unsigned long long)per_gib);
	/* Scattered: one extent every 64 MiB, the worst case (a leaf each). */
	before = st.ram_bytes;
	for (uint64_t off = 2ull << 30; off < (3ull << 30); off += 64 * MIB)
		pfs_temp_touch(p, v, off, 4096);
	pfs_temp_get_stats(p, &st);
	cr_expect_eq(st.leaves, 32);
	cr_log_info("temperature tracker: %llu bytes for 16 scattered extents",
	            (unsigned long long)(st.ram_bytes - before));
	pfs_vol_unref(v);
}

Test(temp, many_leaves_are_saved_loaded_and_dropped_in_batches)
{
	struct pfs_temp_stats st;
	struct pfs_vol *v;

	/* 300 leaves (one extent in each 64 MiB), more than one transaction takes. */
	cr_assert_eq(pfs_vol_create(p, "big", 300 * 64 * MIB, NULL), 0);
	v = vol("big");
	uint64_t id = v->id;
	for (uint64_t i = 0; i < 300; i++)
		pfs_temp_touch(p, v, i * 64 * MIB + MIB, 4096);
	pfs_vol_unref(v);
	cr_assert_eq(pfs_temp_tick(p), 0);
	cr_expect_eq(blobs_of(id), 300);
	pfs_temp_get_stats(p, &st);
	cr_expect_eq(st.leaves_saved, 300);
	fake_now += 7;
	reopen();
	pfs_temp_get_stats(p, &st);
	cr_expect_eq(st.leaves, 300);
	v = vol("big");
	cr_expect_eq(pfs_temp_class_at(p, v, 299 * 64 * MIB + MIB), PFS_TEMP_WARM);
	pfs_vol_unref(v);
	fake_now += 100;
	v = vol("big");
	cr_expect_eq(pfs_temp_class_at(p, v, 299 * 64 * MIB + MIB), PFS_TEMP_COLD);
	pfs_vol_unref(v);
	cr_assert_eq(pfs_vol_delete(p, "big"), 0);
	cr_expect_eq(blobs_of(id), 0);
}
