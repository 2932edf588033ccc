/* tests/fs/test_fs_history.c - the analytics history in the store: downsampling into raw,
 * hourly and daily tiers, all-or-nothing replace, persistence across a close/open, the
 * daemon's sampler thread, `analytics import` through the ctl language, and the reports kept
 * for the history's generation (moved by every write, same text when nothing changed).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pfs_analytics.h"
#include "pfs_front_int.h"
#include "pfs_vol_int.h"

static char img[64];
static struct pfs *p;

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

	snprintf(img, sizeof(img), "/tmp/pstor-hist-XXXXXX");
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

TestSuite(fs_history, .init = setup, .fini = teardown, .timeout = 120);

struct row {
	int tier;
	int64_t time;
	double v0;
	uint32_t n;
};
struct rows {
	struct row *r;
	size_t n, cap;
};

static int collect(void *arg, int tier, int64_t time, const double *v, uint32_t n)
{
	struct rows *rs = arg;

	if (rs->n == rs->cap) {
		rs->cap = rs->cap ? rs->cap * 2 : 256;
		rs->r = realloc(rs->r, rs->cap * sizeof(*rs->r));
		cr_assert_not_null(rs->r);
	}
	rs->r[rs->n++] = (struct row){tier, time, n ? v[0] : NAN, n};
	return 0;
}

static struct rows all_rows(void)
{
	struct rows rs = {0};
	cr_assert_eq(pfs_history_each(p, collect, &rs), 0);
	return rs;
}

static int64_t floor_to(int64_t t, int64_t b)
{
	return t / b * b;
}

/* What the tiers must hold for samples at TIMES (increasing): raw rows from the hour 2 days
 * before the newest, the last sample of each hour for 90 days before that (from a day
 * boundary), the last sample of each day before. Each row's first value is its own time, so
 * a row that carries another sample's values shows. */
static void expect_tiers(const int64_t *times, size_t n)
{
	int64_t now = times[n - 1];
	int64_t cut1 = floor_to(now - 2 * 86400, 3600), cut2 = floor_to(now - 90 * 86400, 86400);
	struct rows rs = all_rows();
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		int tier;
		if (times[i] >= cut1)
			tier = 0;
		else if (times[i] >= cut2)
			tier = 1;
		else
			tier = 2;
		int64_t b = tier == 1 ? 3600 : 86400;
		/* Not the last of its bucket in a rolled tier: must be gone. */
		if (tier && i + 1 < n && times[i + 1] / b == times[i] / b &&
		    (tier == 1 ? times[i + 1] < cut1 : times[i + 1] < cut2))
			continue;
		cr_assert_lt(k, rs.n, "row for %lld missing", (long long)times[i]);
		cr_expect_eq(rs.r[k].time, times[i], "row %zu: time %lld, want %lld", k,
		             (long long)rs.r[k].time, (long long)times[i]);
		cr_expect_eq(rs.r[k].tier, tier, "row at %lld: tier %d, want %d",
		             (long long)times[i], rs.r[k].tier, tier);
		cr_expect_eq(rs.r[k].v0, (double)times[i], "row at %lld carries %g",
		             (long long)times[i], rs.r[k].v0);
		k++;
	}
	cr_expect_eq(k, rs.n, "%zu rows, want %zu", rs.n, k);
	free(rs.r);
}

Test(fs_history, downsamples_raw_2_days_hourly_90_days_daily_after)
{
	enum { STEP = 600, DAYS = 120 };
	size_t n = DAYS * 86400 / STEP, cap = n + 400;
	int64_t *t = malloc(cap * sizeof(*t));
	double *v = malloc(cap * 2 * sizeof(*v));
	cr_assert(t && v);
	for (size_t i = 0; i < n; i++) {
		t[i] = 1700000000 + (int64_t)i * STEP + (int64_t)(i % 7); /* not on bucket edges */
		v[2 * i] = (double)t[i];
		v[2 * i + 1] = 1;
	}
	cr_assert_eq(pfs_history_replace(p, n, t, v, 2), 0);
	expect_tiers(t, n);
	uint64_t raw, hourly, daily;
	cr_assert_eq(pfs_history_count(p, 0, &raw), 0);
	cr_assert_eq(pfs_history_count(p, 1, &hourly), 0);
	cr_assert_eq(pfs_history_count(p, 2, &daily), 0);
	cr_expect(raw >= 2 * 86400 / STEP && raw <= 2 * 86400 / STEP + 3600 / STEP, "raw %llu",
	          (unsigned long long)raw);
	cr_expect(hourly >= 88 * 24 && hourly <= 90 * 24, "hourly %llu",
	          (unsigned long long)hourly);
	cr_expect(daily >= DAYS - 91 && daily <= DAYS - 89, "daily %llu",
	          (unsigned long long)daily);

	/* Appends over 2.5 more days: rows age out of each tier as time moves on. */
	for (size_t i = n; i < cap; i++) {
		t[i] = t[i - 1] + STEP;
		double row[2] = {(double)t[i], 1};
		cr_assert_eq(pfs_history_append(p, t[i], row, 2), 0);
	}
	expect_tiers(t, cap);
	free(t);
	free(v);
}

Test(fs_history, replace_is_all_or_nothing_and_append_needs_a_later_time)
{
	int64_t t[3] = {1700000000, 1700000060, 1700000120};
	double v[3] = {1, 2, 3};
	int64_t bad[3] = {1700000000, 1700000120, 1700000060};

	cr_assert_eq(pfs_history_replace(p, 3, t, v, 1), 0);
	cr_expect_eq(pfs_history_replace(p, 3, bad, v, 1), -EINVAL);
	struct rows rs = all_rows();
	cr_assert_eq(rs.n, 3);
	cr_expect_eq(rs.r[2].time, 1700000120);
	free(rs.r);
	cr_expect_eq(pfs_history_append(p, 1700000120, v, 1), -EEXIST);
	cr_expect_eq(pfs_history_append(p, 1700000100, v, 1), -EEXIST);
	cr_expect_eq(pfs_history_append(p, 1700000180, v, 1), 0);
	rs = all_rows();
	cr_expect_eq(rs.n, 4);
	free(rs.r);
}

Test(fs_history, survives_close_and_open)
{
	double v[3] = {42, 43, 44};

	cr_assert_eq(pfs_history_append(p, 1700000000, v, 3), 0);
	cr_assert_eq(pfs_history_append(p, 1700000060, v, 2), 0);
	pfs_close(p);
	p = NULL;
	open_ns();
	struct rows rs = all_rows();
	cr_assert_eq(rs.n, 2);
	cr_expect_eq(rs.r[0].n, 3);
	cr_expect_eq(rs.r[0].v0, 42);
	cr_expect_eq(rs.r[1].n, 2, "a shorter row stays shorter");
	free(rs.r);
}

Test(fs_history, sampler_appends_a_row_every_interval)
{
	struct pfs_sampler *s;
	struct analytics_history h = {0};
	static uint8_t buf[64 * 1024];

	cr_assert_eq(pfs_ctl_exec(p, "config set analytics_interval 1"), 0);
	cr_assert_eq(pfs_ctl_exec(p, "volume create v 1M"), 0);
	struct pfs_vol *v = pfs_vol_find(p, PFS_MAP_VOLUME, 0, "v");
	cr_assert_not_null(v);
	memset(buf, 0x5a, sizeof(buf));
	for (size_t i = 0; i < sizeof(buf); i += 4096)
		buf[i] = (uint8_t)i; /* not a pattern */
	cr_assert_eq(pfs_vol_write(p, v, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	pfs_vol_unref(v);
	cr_assert_eq(pfs_sampler_start(p, &s), 0);
	cr_assert_not_null(s);
	sleep(3);
	pfs_sampler_stop(s);
	cr_assert_eq(pfs_analytics_history(p, &h), 0);
	cr_expect(h.n >= 2 && h.n <= 4, "%zu samples in 3 s at 1 s", h.n);
	struct analytics_sample *last = &h.s[h.n - 1];
	struct pfs_stats st;
	pfs_get_stats(p, &st);
	cr_expect_eq(last->v[ANALYTICS_COL_CAPACITY], (double)st.ftl.capacity_bytes);
	cr_expect_eq(last->v[ANALYTICS_COL_PHYSICAL_USED],
	             (double)(st.ftl.capacity_bytes - st.ftl.free_bytes));
	cr_expect_eq(last->v[ANALYTICS_COL_LOGICAL], (double)sizeof(buf));
	cr_expect_eq(last->v[ANALYTICS_COL_VOLUMES], 1);
	cr_expect_eq(last->v[ANALYTICS_COL_WRITE_BYTES], (double)sizeof(buf));
	cr_expect(isnan(last->v[ANALYTICS_COL_WRITE_P50]), "no writes in the last interval");
	cr_expect(last->time > 1700000000);
	analytics_history_free(&h);
}

Test(fs_history, sample_latency_covers_the_interval_only)
{
	struct pfs_sample_prev prev = {0};
	struct analytics_sample s;
	static uint8_t buf[4096];

	cr_assert_eq(pfs_ctl_exec(p, "volume create v 1M"), 0);
	struct pfs_vol *v = pfs_vol_find(p, PFS_MAP_VOLUME, 0, "v");
	memset(buf, 7, sizeof(buf));
	buf[0] = 1;
	cr_assert_eq(pfs_vol_write(p, v, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	pfs_analytics_sample(p, &prev, &s);
	cr_expect(!isnan(s.v[ANALYTICS_COL_WRITE_P50]), "the first sample covers since mount");
	cr_expect(isnan(s.v[ANALYTICS_COL_READ_P50]), "no reads yet");
	pfs_analytics_sample(p, &prev, &s);
	cr_expect(isnan(s.v[ANALYTICS_COL_WRITE_P50]), "nothing written since the last sample");
	cr_assert_eq(pfs_vol_read(p, v, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	pfs_analytics_sample(p, &prev, &s);
	cr_expect(s.v[ANALYTICS_COL_READ_P50] > 0);
	pfs_vol_unref(v);
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

Test(fs_history, import_replaces_the_history_and_a_bad_file_changes_nothing)
{
	char good[96], bad[96], msg[PFS_MSG_MAX], line[200];
	struct analytics_history h = {0};
	double v[1] = {5};

	snprintf(good, sizeof(good), "%s.good.csv", img);
	snprintf(bad, sizeof(bad), "%s.bad.csv", img);
	write_text(good, "time,physical_used_bytes,volumes\n1700000000,100,1\n1700003600,200,2\n");
	write_text(bad, "time,physical_used_bytes\n1700000000,100\n1700000000,200\n");
	cr_assert_eq(pfs_history_append(p, 1600000000, v, 1), 0);

	snprintf(line, sizeof(line), "analytics import %s", bad);
	cr_expect_eq(pfs_ctl_exec(p, line), -EINVAL);
	pfs_msg_get(p, msg, sizeof(msg));
	cr_expect_not_null(strstr(msg, "line 3: time 1700000000 is not after"), "%s", msg);
	cr_assert_eq(pfs_analytics_history(p, &h), 0);
	cr_expect_eq(h.n, 1, "unchanged");
	analytics_history_free(&h);

	cr_expect_eq(pfs_ctl_exec(p, "analytics import relative.csv"), -EINVAL);
	pfs_msg_get(p, msg, sizeof(msg));
	cr_expect_not_null(strstr(msg, "must be absolute"), "%s", msg);
	cr_expect_eq(pfs_ctl_exec(p, "analytics import /nonexistent/x.csv"), -ENOENT);
	cr_expect_eq(pfs_ctl_exec(p, "analytics import /tmp"), -EINVAL);

	snprintf(line, sizeof(line), "analytics import %s", good);
	cr_assert_eq(pfs_ctl_exec(p, line), 0);
	cr_assert_eq(pfs_analytics_history(p, &h), 0);
	cr_assert_eq(h.n, 2);
	cr_expect_eq(h.s[0].time, 1700000000);
	cr_expect_eq(h.s[1].v[ANALYTICS_COL_PHYSICAL_USED], 200);
	cr_expect_eq(h.s[1].v[ANALYTICS_COL_VOLUMES], 2);
	cr_expect(isnan(h.s[1].v[ANALYTICS_COL_CAPACITY]));
	analytics_history_free(&h);
	unlink(good);
	unlink(bad);
}

Test(fs_history, analytics_interval_is_a_checked_setting)
{
	char val[32];

	cr_assert_eq(pfs_config_get(p, "analytics_interval", val, sizeof(val)), 0);
	cr_expect_str_eq(val, "60");
	cr_expect_eq(pfs_ctl_exec(p, "config set analytics_interval 0"), -EINVAL);
	cr_expect_eq(pfs_ctl_exec(p, "config set analytics_interval 86401"), -EINVAL);
	cr_expect_eq(pfs_ctl_exec(p, "config set analytics_interval 5s"), -EINVAL);
	cr_assert_eq(pfs_ctl_exec(p, "config set analytics_interval 5"), 0);
	pfs_close(p);
	p = NULL;
	open_ns();
	cr_assert_eq(pfs_config_get(p, "analytics_interval", val, sizeof(val)), 0);
	cr_expect_str_eq(val, "5", "persists");
}

struct vrow {
	int tier;
	int64_t time;
	char name[PFS_NAME_MAX + 1];
	double v[ANALYTICS_VOL_NCOLS];
};
struct vrows {
	struct vrow r[2048];
	size_t n;
};

static int collect_vol(void *arg, int tier, int64_t time, const char *name, const double *v,
                       uint32_t n)
{
	struct vrows *rs = arg;
	struct vrow *r;

	cr_assert_lt(rs->n, 2048);
	r = &rs->r[rs->n++];
	r->tier = tier;
	r->time = time;
	snprintf(r->name, sizeof(r->name), "%s", name);
	for (int c = 0; c < ANALYTICS_VOL_NCOLS; c++)
		r->v[c] = (uint32_t)c < n ? v[c] : NAN;
	return 0;
}

Test(fs_history, volume_rows_count_each_chunk_once)
{
	static uint8_t buf[16 * 4096];
	static struct vrows rs;
	struct pfs_stats st;

	cr_assert_eq(pfs_ctl_exec(p, "volume create a 1M"), 0);
	cr_assert_eq(pfs_ctl_exec(p, "volume create b 2M"), 0);
	pfs_get_stats(p, &st);
	uint64_t stored0 = st.engine.stored_bytes;
	struct pfs_vol *a = pfs_vol_find(p, PFS_MAP_VOLUME, 0, "a");
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 2654435761u >> 13);
	cr_assert_eq(pfs_vol_write(p, a, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	cr_assert_eq(pfs_vol_write(p, a, buf, sizeof(buf), sizeof(buf)), (ssize_t)sizeof(buf));
	pfs_vol_unref(a);
	cr_assert_eq(pfs_ctl_exec(p, "snapshot create a s"), 0);
	pfs_get_stats(p, &st);
	cr_assert_eq(pfs_analytics_sample_volumes(p, 1700000000), 0);
	cr_expect_eq(pfs_analytics_sample_volumes(p, 1700000000), -EEXIST);
	rs.n = 0;
	cr_assert_eq(pfs_history_volumes_each(p, collect_vol, &rs), 0);
	cr_assert_eq(rs.n, 2);
	cr_expect_str_eq(rs.r[0].name, "a");
	cr_expect_eq(rs.r[0].v[ANALYTICS_VOL_SIZE], 1 << 20);
	cr_expect_eq(rs.r[0].v[ANALYTICS_VOL_WRITTEN], 2 * sizeof(buf));
	cr_expect_eq(rs.r[0].v[ANALYTICS_VOL_UNIQUE], 0, "the snapshot shares everything");
	double stored = (double)(st.engine.stored_bytes - stored0);
	cr_expect_eq(rs.r[0].v[ANALYTICS_VOL_SHARED], stored,
	             "once, not once per reference: %g of %g", rs.r[0].v[ANALYTICS_VOL_SHARED],
	             stored);
	cr_expect_str_eq(rs.r[1].name, "b");
	cr_expect_eq(rs.r[1].v[ANALYTICS_VOL_WRITTEN], 0);

	struct pfs_buf b = {0};
	cr_assert_eq(pfs_analytics_file(p, 1, &b), 0);
	const char *want = "time,volume,size_bytes,written_bytes,unique_bytes,shared_bytes\n"
	                   "1700000000,a,1048576,131072,0,";
	cr_expect_eq(strncmp(b.data, want, strlen(want)), 0, "%s", b.data);
	cr_expect_not_null(strstr(b.data, "\n1700000000,b,2097152,0,0,0\n"), "%s", b.data);
	pfs_buf_free(&b);
}

Test(fs_history, volume_rows_roll_per_volume)
{
	static struct vrows rs;
	const char *names[2] = {"x", "y"};
	int64_t t0 = 1700000000, step = 1800, n = 3 * 86400 / 1800;

	for (int64_t i = 0; i < n; i++) {
		double v[2 * ANALYTICS_VOL_NCOLS] = {0};
		v[0] = (double)(t0 + i * step);
		v[ANALYTICS_VOL_NCOLS] = -v[0];
		cr_assert_eq(
		    pfs_history_append_volumes(p, t0 + i * step, 2, names, v, ANALYTICS_VOL_NCOLS),
		    0);
	}
	int64_t now = t0 + (n - 1) * step, cut = (now - 2 * 86400) / 3600 * 3600;
	rs.n = 0;
	cr_assert_eq(pfs_history_volumes_each(p, collect_vol, &rs), 0);
	size_t raw = 0, hourly = 0;
	for (size_t i = 0; i < rs.n; i++) {
		struct vrow *r = &rs.r[i];
		cr_expect_eq(fabs(r->v[0]), (double)r->time, "a row keeps its own values");
		cr_expect_eq(r->v[0] < 0, r->name[0] == 'y');
		if (r->tier == 0) {
			cr_expect_geq(r->time, cut);
			raw++;
		} else {
			cr_expect_eq(r->tier, 1);
			cr_expect_lt(r->time, cut);
			cr_expect_eq(r->time % 3600, 2600,
			             "the last sample of its hour (t0 is :13:20)");
			hourly++;
		}
	}
	/* Two samples an hour: the hourly tier keeps one of each pair, for each volume. */
	int64_t old = (cut - t0 + step - 1) / step;
	cr_expect_eq(hourly, 2 * (size_t)((old + 1) / 2), "%zu hourly rows", hourly);
	cr_expect_eq(raw + hourly, rs.n);
	cr_expect_eq(raw, 2 * (size_t)(n - old));
}

Test(fs_history, capacity_forecasts_each_volume_written)
{
	const char *names[2] = {"x", "y"};
	int64_t t0 = 1700000000;

	/* x: 48 h of hourly rows, 1 MiB more each hour, 1 GiB in size; y: one hour only. */
	for (int i = 0; i <= 48; i++) {
		double v[2 * ANALYTICS_VOL_NCOLS] = {0};
		v[ANALYTICS_VOL_SIZE] = 1 << 30;
		v[ANALYTICS_VOL_WRITTEN] = (double)(100 << 20) + (double)i * (1 << 20);
		v[ANALYTICS_VOL_NCOLS + ANALYTICS_VOL_SIZE] = 1 << 20;
		cr_assert_eq(pfs_history_append_volumes(p, t0 + i * 3600, i < 47 ? 1 : 2, names, v,
		                                        ANALYTICS_VOL_NCOLS),
		             0);
	}
	struct pfs_buf b = {0};
	cr_assert_eq(pfs_analytics_file(p, 3, &b), 0); /* capacity.json */
	cr_expect_not_null(strstr(b.data, "\"status\": \"insufficient_history\""), "%s", b.data);
	cr_expect_not_null(strstr(b.data,
	                          "{\"name\": \"x\", \"status\": \"ok\", \"model\": \"linear\", "
	                          "\"written_bytes\": 155189248, \"size_bytes\": 1073741824, "
	                          "\"growth_bytes_per_day\": 25165824"),
	                   "%s", b.data);
	/* +7 days: 7 * 24 MiB more. */
	cr_expect_not_null(strstr(b.data, "{\"horizon_days\": 7, \"written_bytes\": 331350016,"),
	                   "%s", b.data);
	/* Full: (1024 - 148) MiB at 24 MiB a day = 36.5 days. */
	cr_expect_not_null(strstr(b.data, "\"within_year\": true, \"days\": 37,"), "%s", b.data);
	cr_expect_not_null(strstr(b.data, "{\"name\": \"y\", \"status\": \"insufficient_history\", "
	                                  "\"message\": \"need 24 h of samples (have 1.0 h)\""),
	                   "%s", b.data);
	pfs_buf_free(&b);
	cr_assert_eq(pfs_analytics_file(p, 2, &b), 0); /* capacity */
	cr_expect_not_null(strstr(b.data, "\n  x                           0.14      0.85 (0.85 .. "
	                                  "0.85)   in 37 days         "
	                                  "none scored yet\n"),
	                   "%s", b.data);
	pfs_buf_free(&b);
}

Test(fs_history, raw_tier_is_capped_in_whole_hours)
{
	enum { N = 4 * 3600 }; /* 4 hours at 1 s: 14,400 raw rows, over the cap of 5,760 */
	int64_t *t = malloc(N * sizeof(*t));
	double *v = malloc(N * sizeof(*v));
	uint64_t raw, hourly;

	cr_assert(t && v);
	for (int i = 0; i < N; i++) {
		t[i] = 1700002800 + i; /* starts on an hour boundary */
		v[i] = (double)t[i];
	}
	cr_assert_eq(pfs_history_replace(p, N, t, v, 1), 0);
	cr_assert_eq(pfs_history_count(p, 0, &raw), 0);
	cr_assert_eq(pfs_history_count(p, 1, &hourly), 0);
	/* The newest 5,760 rows reach back into the third hour: that hour and the fourth stay
	 * raw (7,200 rows), the first two become one row each. */
	cr_expect_eq(raw, 7200, "raw %llu", (unsigned long long)raw);
	cr_expect_eq(hourly, 2, "hourly %llu", (unsigned long long)hourly);
	struct rows rs = all_rows();
	cr_assert_eq(rs.n, 7202);
	cr_expect_eq(rs.r[0].time, 1700002800 + 3599, "the last second of the first hour");
	cr_expect_eq(rs.r[0].v0, (double)(1700002800 + 3599));
	free(rs.r);
	free(t);
	free(v);
}

struct fc_rows {
	char kind[16][16];
	int64_t made_at[16];
	double v0[16];
	size_t n;
};

static int collect_fc(void *arg, const char *kind, int64_t made_at, const double *v, uint32_t n)
{
	struct fc_rows *r = arg;

	if (r->n == 16)
		return -E2BIG;
	snprintf(r->kind[r->n], sizeof(r->kind[0]), "%s", kind);
	r->made_at[r->n] = made_at;
	r->v0[r->n++] = n ? v[0] : NAN;
	return 0;
}

static struct fc_rows all_fc(void)
{
	struct fc_rows r = {0};
	cr_assert_eq(pfs_forecasts_each(p, collect_fc, &r), 0);
	return r;
}

Test(fs_history, forecasts_are_kept_one_a_day_and_bounded)
{
	const int64_t t0 = 1700000000, day = 86400;
	double v[2] = {1, 2};
	int64_t last;

	cr_assert_eq(pfs_forecast_last(p, "capacity", &last), 0);
	cr_expect_eq(last, -1);
	cr_assert_eq(pfs_forecast_record(p, "capacity", t0, v, 2), 0);
	/* Less than a day of history time later, or earlier: refused, nothing changes. */
	cr_expect_eq(pfs_forecast_record(p, "capacity", t0 + day - 1, v, 2), -EEXIST);
	cr_expect_eq(pfs_forecast_record(p, "capacity", t0 - 5 * day, v, 2), -EEXIST);
	/* Kinds are paced apart. */
	cr_expect_eq(pfs_forecast_record(p, "wearout", t0 + 60, v, 2), 0);
	v[0] = 7;
	cr_expect_eq(pfs_forecast_record(p, "capacity", t0 + day, v, 2), 0);
	cr_assert_eq(pfs_forecast_last(p, "capacity", &last), 0);
	cr_expect_eq(last, t0 + day);
	struct fc_rows r = all_fc();
	cr_assert_eq(r.n, 3);
	cr_expect_str_eq(r.kind[0], "capacity");
	cr_expect_eq(r.made_at[1], t0 + day);
	cr_expect_eq(r.v0[1], 7);
	cr_expect_str_eq(r.kind[2], "wearout");
	/* Kept PFS_FORECAST_KEEP_SECONDS of history time: a record that far on drops the old, of
	 * every kind (a deleted volume's kind records nothing more that would trim its own). */
	cr_expect_eq(pfs_forecast_record(p, "capacity", t0 + day + PFS_FORECAST_KEEP_SECONDS, v, 2),
	             0);
	r = all_fc();
	cr_assert_eq(r.n, 2);
	cr_expect_eq(r.made_at[0], t0 + day);
	cr_expect_eq(r.made_at[1], t0 + day + PFS_FORECAST_KEEP_SECONDS);
	/* They survive a close and open. */
	pfs_close(p);
	p = NULL;
	open_ns();
	r = all_fc();
	cr_expect_eq(r.n, 2);
}

Test(fs_history, replace_keeps_the_forecasts_named_and_drops_the_rest)
{
	int64_t t[3] = {1700000000, 1700086400, 1700172800};
	double v[3] = {1, 2, 3};
	const char *kinds[] = {"wearout", "capacity"};
	int64_t keep_at[] = {t[0], t[1]};

	cr_assert_eq(pfs_forecast_record(p, "capacity", t[0], v, 1), 0);
	cr_assert_eq(pfs_forecast_record(p, "capacity", t[1], v, 1), 0);
	cr_assert_eq(pfs_forecast_record(p, "wearout", t[0], v, 1), 0);
	cr_assert_eq(pfs_forecast_record(p, "wearout", t[2], v, 1), 0);
	/* A refused replace changes nothing. */
	int64_t bad[3] = {t[0], t[2], t[1]};
	cr_expect_eq(pfs_history_replace_keep(p, 3, bad, v, 1, 0, NULL, NULL), -EINVAL);
	cr_expect_eq(all_fc().n, 4);
	cr_assert_eq(pfs_history_replace_keep(p, 3, t, v, 1, 2, kinds, keep_at), 0);
	struct fc_rows r = all_fc();
	cr_assert_eq(r.n, 2);
	cr_expect(!strcmp(r.kind[0], "capacity") && r.made_at[0] == t[1]);
	cr_expect(!strcmp(r.kind[1], "wearout") && r.made_at[1] == t[0]);
	/* The plain replace keeps none. */
	cr_assert_eq(pfs_history_replace(p, 3, t, v, 1), 0);
	cr_expect_eq(all_fc().n, 0);
}

/* ---- the report cache ------------------------------------------------------------------------ */
/* Report I of .pstorage/analytics/ (2 capacity, 3 capacity.json, 4 health), or the metrics
 * (I = ~0u); malloc'd. */
static char *report(unsigned i)
{
	struct pfs_buf b = {0};

	if (i == ~0u)
		pfs_analytics_metrics(p, &b);
	else
		cr_assert_eq(pfs_analytics_file(p, i, &b), 0, "report %u", i);
	cr_assert_eq(b.err, 0);
	cr_assert_not_null(b.data, "report %u is empty", i);
	return b.data;
}

static const unsigned reports[] = {~0u, 2, 3, 4, 5};
#define NREPORTS (sizeof(reports) / sizeof(reports[0]))

struct report_set {
	char *r[NREPORTS];
};

static struct report_set read_reports(void)
{
	struct report_set s;

	for (size_t i = 0; i < NREPORTS; i++)
		s.r[i] = report(reports[i]);
	return s;
}

static void report_set_free(struct report_set *s)
{
	for (size_t i = 0; i < NREPORTS; i++)
		free(s->r[i]);
}

/* One pool row: used bytes and life used grow with I. */
static void append_pool(int64_t t, int i, double extra)
{
	struct analytics_sample s;

	analytics_sample_clear(&s);
	s.v[ANALYTICS_COL_CAPACITY] = 1 << 30;
	s.v[ANALYTICS_COL_PHYSICAL_USED] = (double)(100 << 20) + (double)i * (1 << 20) + extra;
	s.v[ANALYTICS_COL_LIFE_USED] = 1 + i * 0.01 + extra / (1 << 30);
	cr_assert_eq(pfs_history_append(p, t, s.v, ANALYTICS_NCOLS), 0);
}

/* Which of the reports differ between A and B. */
static void expect_changed(const struct report_set *a, const struct report_set *b, const char *why,
                           const bool *which)
{
	for (size_t i = 0; i < NREPORTS; i++)
		if (which[i])
			cr_expect_str_neq(a->r[i], b->r[i], "report %u unchanged after %s: %s",
			                  reports[i], why, b->r[i]);
}

Test(fs_history, reports_follow_every_history_write_and_repeat_when_nothing_does)
{
	int64_t t0 = 1700000000, t;
	uint64_t hits0, fills0, hits1, fills1;
	struct report_set a, b, c, d, e, f;
	static const bool all[NREPORTS] = {true, true, true, true, true};
	/* metrics (health grade, samples), capacity (text, JSON): not the health of a record. */
	static const bool capacity_only[NREPORTS] = {false, true, true, false, false};

	for (int i = 0; i <= 48; i++)
		append_pool(t0 + i * 3600, i, 0);
	a = read_reports();
	cr_expect_not_null(strstr(a.r[0], "pstorfs_analytics_history_samples 49\n"), "%s", a.r[0]);
	cr_expect_not_null(strstr(a.r[0], "pstorfs_capacity_forecast_used_bytes"), "%s", a.r[0]);

	/* Nothing written: the same text, and every part found kept (no fill). */
	pfs_analytics_cache_counts(&hits0, &fills0);
	b = read_reports();
	pfs_analytics_cache_counts(&hits1, &fills1);
	for (size_t i = 0; i < NREPORTS; i++)
		cr_expect_str_eq(a.r[i], b.r[i], "report %u differs read twice", reports[i]);
	cr_expect_eq(fills1, fills0, "%llu parts computed again with nothing written",
	             (unsigned long long)(fills1 - fills0));
	cr_expect_gt(hits1, hits0);
	report_set_free(&b);

	/* An append: every report moves (a jump in used and life used, one more sample). */
	t = t0 + 49 * 3600;
	append_pool(t, 49, 64 << 20);
	b = read_reports();
	expect_changed(&a, &b, "an append", all);
	cr_expect_not_null(strstr(b.r[0], "pstorfs_analytics_history_samples 50\n"), "%s", b.r[0]);

	/* A forecast recorded: the capacity files count it. */
	cr_assert_eq(pfs_analytics_record_forecasts(p, t), 0);
	c = read_reports();
	expect_changed(&b, &c, "a forecast record", capacity_only);
	cr_expect_not_null(strstr(c.r[2], "{\"recorded\": 1,"), "%s", c.r[2]);

	/* A per-volume row: the capacity files list the volume. */
	const char *name = "vx";
	double vv[ANALYTICS_VOL_NCOLS] = {0};
	vv[ANALYTICS_VOL_SIZE] = 1 << 30;
	vv[ANALYTICS_VOL_WRITTEN] = 1 << 20;
	cr_assert_eq(pfs_history_append_volumes(p, t, 1, &name, vv, ANALYTICS_VOL_NCOLS), 0);
	d = read_reports();
	expect_changed(&c, &d, "a per-volume row", capacity_only);
	cr_expect_not_null(strstr(d.r[2], "{\"name\": \"vx\""), "%s", d.r[2]);

	/* A replace (what an import does): 30 hours of a flat history. */
	int64_t times[30];
	double vals[30 * ANALYTICS_NCOLS];
	for (int i = 0; i < 30; i++) {
		struct analytics_sample s;
		analytics_sample_clear(&s);
		s.v[ANALYTICS_COL_CAPACITY] = 1 << 30;
		s.v[ANALYTICS_COL_PHYSICAL_USED] = 500 << 20;
		s.v[ANALYTICS_COL_LIFE_USED] = 7;
		times[i] = t0 + i * 3600;
		memcpy(vals + i * ANALYTICS_NCOLS, s.v, sizeof(s.v));
	}
	cr_assert_eq(pfs_history_replace(p, 30, times, vals, ANALYTICS_NCOLS), 0);
	e = read_reports();
	expect_changed(&d, &e, "a replace", all);
	cr_expect_not_null(strstr(e.r[0], "pstorfs_analytics_history_samples 30\n"), "%s", e.r[0]);
	cr_expect_not_null(strstr(e.r[2], "{\"recorded\": 0,"), "%s", e.r[2]);

	/* A failed write (time not after the newest) changes nothing: the same text. */
	struct analytics_sample s;
	analytics_sample_clear(&s);
	cr_expect_eq(pfs_history_append(p, t0, s.v, ANALYTICS_NCOLS), -EEXIST);
	f = read_reports();
	for (size_t i = 0; i < NREPORTS; i++)
		cr_expect_str_eq(e.r[i], f.r[i], "report %u differs after a refused append",
		                 reports[i]);
	report_set_free(&f);

	/* What a fresh computation gives: a new store object (a new generation, even at the
	 * freed one's address) computes everything again, and finds the same text. */
	pfs_close(p);
	p = NULL;
	open_ns();
	pfs_analytics_cache_counts(&hits0, &fills0);
	f = read_reports();
	pfs_analytics_cache_counts(&hits1, &fills1);
	cr_expect_gt(fills1, fills0, "the reopened store's reports came from the old entry");
	for (size_t i = 0; i < NREPORTS; i++)
		cr_expect_str_eq(e.r[i], f.r[i], "report %u differs from a fresh computation",
		                 reports[i]);
	report_set_free(&a);
	report_set_free(&b);
	report_set_free(&c);
	report_set_free(&d);
	report_set_free(&e);
	report_set_free(&f);
}

/* The recorded rows of one kind: their times, oldest first. */
struct kind_rows {
	const char *kind;
	int64_t made_at[64];
	size_t n, all;
};

static int collect_kind(void *arg, const char *kind, int64_t made_at, const double *v, uint32_t n)
{
	struct kind_rows *r = arg;

	(void)v;
	(void)n;
	r->all++;
	if (strcmp(kind, r->kind))
		return 0;
	if (r->n == 64)
		return -E2BIG;
	r->made_at[r->n++] = made_at;
	return 0;
}

static struct kind_rows rows_of(const char *kind)
{
	struct kind_rows r = {.kind = kind};
	cr_assert_eq(pfs_forecasts_each(p, collect_kind, &r), 0);
	return r;
}

/* The text from the volume NAME's object to the end of capacity.json. */
static const char *volume_json(const char *json, const char *name)
{
	char key[96];

	snprintf(key, sizeof(key), "{\"name\": \"%s\", \"status\": \"ok\"", name);
	const char *at = strstr(json, key);
	cr_assert_not_null(at, "no volume %s with a forecast: %s", name, json);
	return at;
}

Test(fs_history, each_volume_records_a_forecast_a_week_and_grades_it)
{
	const char *names[2] = {"va", "vb"};
	const int64_t t0 = 1700000000, day = 86400;
	const int hours = 50 * 24;
	char path[96], line[160], msg[PFS_MSG_MAX];

	/* 50 days, an hour a row, recorded as the sampler records: va grows 4 MiB an hour with a
	 * wobble the forecast's interval has to hold; vb stops being sampled after day 20 (it
	 * was deleted). The pool grows too, so its daily record runs. */
	for (int i = 0; i <= hours; i++) {
		int64_t t = t0 + (int64_t)i * 3600;
		double v[2 * ANALYTICS_VOL_NCOLS] = {0};
		v[ANALYTICS_VOL_SIZE] = (double)(16ull << 30);
		v[ANALYTICS_VOL_WRITTEN] = (double)(64 << 20) + (double)i * (4 << 20) +
		                           (double)((i * 7919) % 13) * (1 << 20);
		v[ANALYTICS_VOL_NCOLS + ANALYTICS_VOL_SIZE] = 1 << 30;
		v[ANALYTICS_VOL_NCOLS + ANALYTICS_VOL_WRITTEN] = (double)(i % 5) * (1 << 20);
		append_pool(t, i / 24, 0);
		cr_assert_eq(pfs_history_append_volumes(p, t, i <= 20 * 24 ? 2 : 1, names, v,
		                                        ANALYTICS_VOL_NCOLS),
		             0);
		cr_assert_eq(pfs_analytics_record_forecasts(p, t), 0, "hour %d", i);
	}

	/* va: the first with 24 h of its history, then one a week. */
	struct kind_rows a = rows_of(PFS_GRADE_VOLUME "va");
	cr_assert_eq(a.n, 8, "va recorded %zu forecasts", a.n);
	cr_expect_eq(a.made_at[0], t0 + day);
	for (size_t i = 1; i < a.n; i++)
		cr_expect_eq(a.made_at[i] - a.made_at[i - 1], 7 * day, "va's forecast %zu", i);
	/* vb: weekly while it was sampled, nothing after its last row (day 20). */
	struct kind_rows bv = rows_of(PFS_GRADE_VOLUME "vb");
	cr_assert_eq(bv.n, 3, "vb recorded %zu forecasts", bv.n);
	cr_expect_eq(bv.made_at[2], t0 + 15 * day);
	/* The pool's own kind stays daily. */
	cr_expect_eq(rows_of(PFS_GRADE_CAPACITY).n, 50);

	/* Scored against each volume's own series: va's +7 days of the first seven are past, its
	 * +30 days of the first three (days 1, 8, 15: 31, 38, 45 <= 50). */
	struct pfs_buf b = {0};
	cr_assert_eq(pfs_analytics_file(p, 3, &b), 0); /* capacity.json */
	const char *va = volume_json(b.data, "va");
	cr_expect_not_null(strstr(va, "\"grading\": {\"recorded\": 8, \"scored\": 7, "
	                              "\"message\": null, \"horizons\": [{\"horizon_days\": 7, "
	                              "\"scored\": 7,"),
	                   "%s", va);
	cr_expect_not_null(strstr(va, "{\"horizon_days\": 30, \"scored\": 3,"), "%s", va);
	/* Its forecast of +7 days carries the band observed beside it. */
	cr_expect_not_null(strstr(va, "\"observed\": {\"scored\": 7, \"abs_error_p90_bytes\": "),
	                   "%s", va);
	/* vb's three (days 1, 8, 15): +7 days is within its rows (to day 20) for two of them. */
	const char *vb = strstr(b.data, "{\"name\": \"vb\"");
	cr_assert_not_null(vb, "%s", b.data);
	cr_expect_not_null(strstr(vb, "\"grading\": {\"recorded\": 3, \"scored\": 2,"), "%s", vb);
	pfs_buf_free(&b);
	cr_assert_eq(pfs_analytics_file(p, 2, &b), 0); /* capacity */
	cr_expect_not_null(strstr(b.data, "observed: +30 days 95% held"), "%s", b.data);
	cr_expect(strstr(b.data, " 3/3\n") || strstr(b.data, " 2/3\n"), "%s", b.data);
	pfs_buf_free(&b);

	/* They survive a close and open. */
	pfs_close(p);
	p = NULL;
	open_ns();
	cr_expect_eq(rows_of(PFS_GRADE_VOLUME "va").n, 8);

	/* An import clears the per-volume history, so it drops the volumes' forecasts; the pool's
	 * that its history still holds stay. */
	cr_assert_eq(pfs_analytics_file(p, 0, &b), 0); /* history.csv */
	snprintf(path, sizeof(path), "%s.export.csv", img);
	write_text(path, b.data);
	pfs_buf_free(&b);
	snprintf(line, sizeof(line), "analytics import %s", path);
	cr_assert_eq(pfs_ctl_exec(p, line), 0);
	pfs_msg_get(p, msg, sizeof(msg));
	cr_expect_not_null(strstr(msg, "kept 100 of 111 recorded forecasts"), "%s", msg);
	cr_expect_eq(rows_of(PFS_GRADE_VOLUME "va").n, 0);
	cr_expect_eq(rows_of(PFS_GRADE_VOLUME "vb").n, 0);
	unlink(path);
}

Test(fs_history, the_volumes_part_is_kept_while_only_pool_rows_arrive)
{
	const char *name = "vk";
	int64_t t0 = 1700000000, t = t0;
	uint64_t h0, f0, h1, f1, h2, f2;
	double vv[ANALYTICS_VOL_NCOLS] = {0};

	vv[ANALYTICS_VOL_SIZE] = 1 << 30;
	for (int i = 0; i <= 48; i++, t += 3600) {
		append_pool(t, i, 0);
		vv[ANALYTICS_VOL_WRITTEN] = (double)(i + 1) * (1 << 20);
		cr_assert_eq(pfs_history_append_volumes(p, t, 1, &name, vv, ANALYTICS_VOL_NCOLS),
		             0);
	}
	free(report(2));
	/* A pool row: the pool's part is computed again, the volumes' is not. */
	append_pool(t, 49, 0);
	pfs_analytics_cache_counts(&h0, &f0);
	char *a = report(2);
	pfs_analytics_cache_counts(&h1, &f1);
	/* A volume row too: both are. */
	t += 3600;
	append_pool(t, 50, 0);
	vv[ANALYTICS_VOL_WRITTEN] = 64 << 20;
	cr_assert_eq(pfs_history_append_volumes(p, t, 1, &name, vv, ANALYTICS_VOL_NCOLS), 0);
	char *b = report(2);
	pfs_analytics_cache_counts(&h2, &f2);
	cr_expect_eq(f2 - f1, f1 - f0 + 1, "parts computed: %llu after a pool row, %llu after both",
	             (unsigned long long)(f1 - f0), (unsigned long long)(f2 - f1));
	cr_expect_eq(h1 - h0, 1, "the volumes' part found kept once");
	/* What was kept is what a fresh computation gives, and the volume row moved it. */
	cr_expect_str_neq(a, b);
	pfs_close(p);
	p = NULL;
	open_ns();
	char *c = report(2);
	cr_expect_str_eq(b, c, "kept differs from a fresh computation");
	free(a);
	free(b);
	free(c);
}

/* Readers on other threads (FUSE and API threads) while the sampler appends: no reader sees the
 * sample count go back, and what is kept at the end is what a fresh computation gives. */
struct reader {
	pthread_t thread;
	atomic_bool *stop;
	unsigned reads, errors, went_back;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	unsigned long long last = 0;

	while (!atomic_load(r->stop)) {
		struct pfs_buf b = {0};
		unsigned i = reports[r->reads % NREPORTS];
		if (i == ~0u) {
			pfs_analytics_metrics(p, &b);
			const char *s = b.data ? strstr(b.data, "history_samples ") : NULL;
			unsigned long long n = s ? strtoull(s + 16, NULL, 10) : 0;
			if (!s)
				r->errors++;
			else if (n < last)
				r->went_back++;
			last = n;
		} else if (pfs_analytics_file(p, i, &b) || b.err) {
			r->errors++;
		}
		pfs_buf_free(&b);
		r->reads++;
	}
	return NULL;
}

Test(fs_history, reports_read_on_many_threads_while_the_history_grows)
{
	int64_t t0 = 1700000000;
	struct reader rd[3] = {0};
	atomic_bool stop = false;

	for (int i = 0; i <= 48; i++)
		append_pool(t0 + i * 3600, i, 0);
	for (int k = 0; k < 3; k++) {
		rd[k].stop = &stop;
		rd[k].reads = (unsigned)k;
		cr_assert_eq(pthread_create(&rd[k].thread, NULL, reader_main, &rd[k]), 0);
	}
	for (int i = 49; i < 49 + 24; i++) {
		append_pool(t0 + i * 3600, i, (i % 3) * (8 << 20));
		cr_assert_eq(pfs_analytics_record_forecasts(p, t0 + i * 3600), 0);
		usleep(2000);
	}
	atomic_store(&stop, true);
	for (int k = 0; k < 3; k++) {
		pthread_join(rd[k].thread, NULL);
		cr_expect_eq(rd[k].errors, 0, "reader %d: %u failed reads", k, rd[k].errors);
		cr_expect_eq(rd[k].went_back, 0, "reader %d saw the sample count go back", k);
		cr_expect_gt(rd[k].reads, (unsigned)k, "reader %d never read", k);
	}
	struct report_set kept = read_reports();
	cr_expect_not_null(strstr(kept.r[0], "pstorfs_analytics_history_samples 73\n"), "%s",
	                   kept.r[0]);
	pfs_close(p);
	p = NULL;
	open_ns();
	struct report_set fresh = read_reports();
	for (size_t i = 0; i < NREPORTS; i++)
		cr_expect_str_eq(kept.r[i], fresh.r[i], "report %u kept differs from a fresh one",
		                 reports[i]);
	report_set_free(&kept);
	report_set_free(&fresh);
}
