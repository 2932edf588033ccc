/* tests/fs/test_fs_stats.c - the volume I/O counters of the store (operations, bytes, latency
 * histogram) as pfs_get_stats copies them and the printers show them, and the quantile helper
 * the text and JSON reports compute p50/p99 with.
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

static void setup(void)
{
	char msg[256];
	struct pfs_mkfs_params prm = {.size = 256ull << 20, .segment_size = 1u << 20};
	struct pfs_opts o = {.device = img, .dedupe = -1, .commit_interval_ms = -1};

	snprintf(img, sizeof(img), "/tmp/pstor-fs-XXXXXX");
	int fd = mkstemp(img);
	cr_assert_geq(fd, 0);
	close(fd);
	unlink(img);
	cr_assert_eq(pfs_mkfs(img, &prm, msg, sizeof(msg)), 0, "mkfs: %s", msg);
	cr_assert_eq(pfs_open(&o, &p, msg, sizeof(msg)), 0, "pfs_open: %s", msg);
}

static void teardown(void)
{
	pfs_close(p);
	p = NULL;
	unlink(img);
}

TestSuite(fs_iostats, .init = setup, .fini = teardown, .timeout = 60);

static void expect_has(const char *hay, const char *needle)
{
	cr_expect_not_null(strstr(hay, needle), "missing \"%s\" in:\n%s", needle, hay);
}

Test(fs_lat, buckets_are_log2_from_8us_with_inclusive_upper_bounds)
{
	cr_expect_eq(pfs_lat_bucket(0), 0);
	cr_expect_eq(pfs_lat_bucket(8000), 0);
	cr_expect_eq(pfs_lat_bucket(8001), 1);
	cr_expect_eq(pfs_lat_bucket(16000), 1);
	cr_expect_eq(pfs_lat_bucket(16001), 2);
	cr_expect_eq(pfs_lat_bucket(1000000), 7); /* 1 ms: (512 us, 1.024 ms] */
	cr_expect_eq(pfs_lat_bound_ns(PFS_LAT_BUCKETS - 1), 262144000ull);
	cr_expect_eq(pfs_lat_bucket(262144000ull), PFS_LAT_BUCKETS - 1);
	cr_expect_eq(pfs_lat_bucket(262144001ull), PFS_LAT_BUCKETS); /* +Inf */
	cr_expect_eq(pfs_lat_bucket(UINT64_MAX), PFS_LAT_BUCKETS);
}

Test(fs_lat, quantile_of_nothing_is_zero)
{
	struct pfs_io_stats io = {0};

	cr_expect_eq(pfs_lat_quantile_us(&io, 0.5), 0);
	cr_expect_eq(pfs_lat_quantile_us(&io, 0.99), 0);
}

Test(fs_lat, quantile_interpolates_inside_its_bucket)
{
	struct pfs_io_stats io = {0};

	io.lat_buckets[2] = 100; /* (16 us, 32 us] */
	cr_expect_float_eq(pfs_lat_quantile_us(&io, 0.5), 24.0, 1e-9);
	cr_expect_float_eq(pfs_lat_quantile_us(&io, 0.99), 31.84, 1e-9);
	cr_expect_float_eq(pfs_lat_quantile_us(&io, 1.0), 32.0, 1e-9);
}

Test(fs_lat, quantile_skips_empty_buckets_and_starts_the_first_at_zero)
{
	struct pfs_io_stats io = {0};

	io.lat_buckets[0] = 50; /* [0, 8 us] */
	io.lat_buckets[3] = 50; /* (32 us, 64 us] */
	cr_expect_float_eq(pfs_lat_quantile_us(&io, 0.1), 1.6, 1e-9);
	cr_expect_float_eq(pfs_lat_quantile_us(&io, 0.5), 8.0, 1e-9);
	cr_expect_float_eq(pfs_lat_quantile_us(&io, 0.99), 32 + 32 * 0.98, 1e-9);
	/* The same figures histogram_quantile() gives, bounds in seconds: checked by hand against
	 * the Prometheus algorithm (rank = q * count, linear inside the bucket). */
	cr_expect_float_eq(pfs_lat_quantile_us(&io, 0.0), 0.0, 1e-9);
}

Test(fs_lat, quantile_in_the_inf_bucket_is_the_highest_finite_bound)
{
	struct pfs_io_stats io = {0};

	io.lat_buckets[0] = 1;
	io.lat_buckets[PFS_LAT_BUCKETS] = 99;
	cr_expect_float_eq(pfs_lat_quantile_us(&io, 0.5), 262144.0, 1e-9);
	cr_expect_float_eq(pfs_lat_quantile_us(&io, 0.005), 4.0, 1e-9);
}

static uint64_t bucket_sum(const struct pfs_io_stats *io)
{
	uint64_t n = 0;

	for (int i = 0; i <= PFS_LAT_BUCKETS; i++)
		n += io->lat_buckets[i];
	return n;
}

Test(fs_iostats, reads_and_writes_count_ops_bytes_and_latency)
{
	static uint8_t buf[8192];
	struct pfs_stats st;
	struct pfs_vol *v;

	memset(buf, 'x', sizeof(buf));
	cr_assert_eq(pfs_ctl_exec(p, "volume create v 1M"), 0);
	v = pfs_vol_find(p, PFS_MAP_VOLUME, 0, "v");
	cr_assert_not_null(v);
	cr_assert_eq(pfs_vol_write(p, v, buf, 4096, 0), 4096);
	cr_assert_eq(pfs_vol_write(p, v, buf, 8192, 8192), 8192);
	cr_assert_eq(pfs_vol_write(p, v, buf, 100, 50), 100); /* partial block */
	cr_assert_eq(pfs_vol_read(p, v, buf, 8192, 0), 8192);
	cr_assert_eq(pfs_vol_read(p, v, buf, 8192, (1 << 20) - 4096), 4096); /* up to the end */
	cr_assert_eq(pfs_vol_read(p, v, buf, 4096, 1 << 20), 0); /* at the end: not counted */
	pfs_get_stats(p, &st);
	cr_expect_eq(st.write.ops, 3);
	cr_expect_eq(st.write.bytes, 4096 + 8192 + 100);
	cr_expect_eq(st.read.ops, 2);
	cr_expect_eq(st.read.bytes, 8192 + 4096);
	cr_expect_eq(bucket_sum(&st.write), 3);
	cr_expect_eq(bucket_sum(&st.read), 2);
	cr_expect_gt(st.write.lat_sum_ns, 0);
	cr_expect_gt(st.read.lat_sum_ns, 0);
	/* A snapshot is read-only: the refused write is not an I/O. */
	cr_assert_eq(pfs_ctl_exec(p, "snapshot create v s"), 0);
	struct pfs_vol *s = pfs_vol_find(p, PFS_MAP_SNAPSHOT, v->id, "s");
	cr_assert_not_null(s);
	cr_expect_eq(pfs_vol_write(p, s, buf, 4096, 0), -EROFS);
	pfs_get_stats(p, &st);
	cr_expect_eq(st.write.ops, 3);
	pfs_vol_unref(s);
	pfs_vol_unref(v);
}

Test(fs_iostats, printers_show_counters_histograms_and_quantiles)
{
	static uint8_t buf[4096];
	struct pfs_stats st;
	struct pfs_buf t = {0}, j = {0}, m = {0};
	struct pfs_vol *v;

	cr_assert_eq(pfs_ctl_exec(p, "volume create v 1M"), 0);
	v = pfs_vol_find(p, PFS_MAP_VOLUME, 0, "v");
	cr_assert_not_null(v);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(pfs_vol_write(p, v, buf, sizeof(buf), (uint64_t)i * 4096), 4096);
	cr_assert_eq(pfs_vol_read(p, v, buf, sizeof(buf), 0), 4096);
	pfs_vol_unref(v);
	pfs_get_stats(p, &st);
	pfs_stats_to_text(&st, &t);
	pfs_stats_to_json(&st, &j);
	pfs_stats_to_prom(&st, &m);
	cr_assert_eq(t.err + j.err + m.err, 0);

	expect_has(t.data, "write_ops                5\n");
	expect_has(t.data, "write_bytes              20480\n");
	expect_has(t.data, "read_latency_p50_us ");
	expect_has(j.data, "\"read_ops\": 1,\n");
	expect_has(j.data, "\"write_latency_p99_us\": ");

	char want[160];
	snprintf(want, sizeof(want), "\"write_latency_p99_us\": %.1f,",
	         pfs_lat_quantile_us(&st.write, 0.99));
	expect_has(j.data, want);

	expect_has(m.data, "# TYPE pstorfs_write_ops_total counter\npstorfs_write_ops_total 5\n");
	expect_has(m.data,
	           "# TYPE pstorfs_read_bytes_total counter\npstorfs_read_bytes_total 4096\n");
	expect_has(m.data, "# TYPE pstorfs_read_latency_seconds histogram\n"
	                   "pstorfs_read_latency_seconds_bucket{le=\"8e-06\"} ");
	expect_has(m.data, "pstorfs_write_latency_seconds_bucket{le=\"0.262144\"} ");
	expect_has(m.data, "pstorfs_write_latency_seconds_bucket{le=\"+Inf\"} 5\n");
	expect_has(m.data, "pstorfs_write_latency_seconds_count 5\n");
	expect_has(m.data, "pstorfs_read_latency_seconds_count 1\n");

	/* Buckets are cumulative: non-decreasing, 16 finite bounds then +Inf. */
	const char *at = strstr(m.data, "pstorfs_write_latency_seconds_bucket");
	unsigned long long prev = 0, n;
	int lines = 0;
	while (at && !strncmp(at, "pstorfs_write_latency_seconds_bucket", 36)) {
		const char *sp = strchr(at, ' ');
		cr_assert_not_null(sp);
		n = strtoull(sp + 1, NULL, 10);
		cr_expect_geq(n, prev);
		prev = n;
		lines++;
		at = strchr(at, '\n');
		at = at ? at + 1 : NULL;
	}
	cr_expect_eq(lines, PFS_LAT_BUCKETS + 1);
	cr_expect_eq(prev, 5);

	double sum = -1;
	at = strstr(m.data, "pstorfs_write_latency_seconds_sum ");
	cr_assert_not_null(at);
	cr_assert_eq(sscanf(at, "pstorfs_write_latency_seconds_sum %lf", &sum), 1);
	cr_expect_float_eq(sum, st.write.lat_sum_ns / 1e9, 1e-9);
	pfs_buf_free(&t);
	pfs_buf_free(&j);
	pfs_buf_free(&m);
}
