/* tests/flash/test_ftl_reserve.c - a full device: ordinary writes get -ENOSPC, reserve writes
 * (ftl_write_opts.reserve) still get a segment while GC keeps at least one, and freeing plus
 * GC gives the space back so ordinary writes succeed again (ftl_int.h invariant 7).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ftl.h"

#define CLEN 4096
#define MAXN 8192

/* Content is a function of (key, version) so any chunk can be checked without keeping it. */
static void fill(uint8_t *buf, uint64_t key, uint64_t version)
{
	uint64_t s = key * 0x100000001b3ull + version * 0x9e3779b97f4a7c15ull + 1;
	for (uint32_t i = 0; i < CLEN; i++) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		buf[i] = (uint8_t)s;
	}
}

struct full {
	struct ftl_dev *dev;
	struct ftl *ftl;
	struct ftl_addr a[MAXN];
	uint8_t ver[MAXN]; /* 0 = freed, else the version written at a[i] */
	int n;             /* ordinary chunks written before -ENOSPC */
};

static uint32_t nfree(struct ftl *ftl)
{
	struct ftl_stats st;
	ftl_get_stats(ftl, &st);
	return st.segments_free;
}

static int put(struct full *f, int i, uint8_t ver, bool reserve)
{
	uint8_t buf[CLEN], h[FTL_HASH_LEN] = {0};
	struct ftl_write_opts o = {.prev = FTL_ADDR_NONE, .reserve = reserve};
	fill(buf, (uint64_t)i, ver);
	int rc = ftl_write(f->ftl, buf, CLEN, h, &o, &f->a[i]);
	if (rc == 0)
		f->ver[i] = ver;
	return rc;
}

static void check_all(struct full *f, int upto)
{
	uint8_t buf[CLEN], got[CLEN];
	for (int i = 0; i < upto; i++) {
		if (!f->ver[i])
			continue;
		fill(buf, (uint64_t)i, f->ver[i]);
		cr_assert_eq(ftl_read(f->ftl, f->a[i], got, CLEN, NULL), CLEN, "chunk %d", i);
		cr_assert_eq(memcmp(buf, got, CLEN), 0, "chunk %d differs", i);
	}
}

/* 8 MiB device, 256 KiB segments: 27 segments, a GC reserve of 2, reserve writes keep 1. */
static void fill_device(struct full *f)
{
	cr_assert_eq(ftl_dev_open_mem(8 << 20, 4096, &f->dev), 0);
	struct ftl_format_params p = {.segment_size = 256 << 10, .meta_blocks = 256};
	cr_assert_eq(ftl_format(f->dev, &p), 0);
	struct ftl_config cfg = {.dev = f->dev};
	cr_assert_eq(ftl_open(&cfg, &f->ftl), 0);
	int rc = 0;
	for (f->n = 0; f->n < MAXN / 2; f->n++) {
		rc = put(f, f->n, 1, false);
		if (rc)
			break;
	}
	cr_assert_eq(rc, -ENOSPC, "rc %d after %d chunks", rc, f->n);
	cr_assert_gt(f->n, 1000);
	cr_assert_eq(nfree(f->ftl), 2, "ordinary writes stop at the GC reserve");
}

/* Reserve writes fill the segments they may take, then get -ENOSPC with one segment left. */
static int fill_reserve(struct full *f)
{
	int k = 0, rc;
	while ((rc = put(f, MAXN / 2 + k, 1, true)) == 0)
		k++;
	cr_assert_eq(rc, -ENOSPC, "reserve write %d: %d", k, rc);
	cr_assert_gt(k, 0, "a reserve write must succeed on a full device");
	cr_assert_eq(nfree(f->ftl), 1, "reserve writes leave GC one segment");
	struct ftl_stats st;
	ftl_get_stats(f->ftl, &st);
	cr_assert_eq(st.stream_chunks[4], (uint64_t)k, "reserve writes have their own stream");
	/* Ordinary writes still fail: the reserve is not theirs. */
	cr_assert_eq(put(f, f->n, 1, false), -ENOSPC);
	return k;
}

static void close_all(struct full *f)
{
	ftl_close(f->ftl);
	ftl_dev_close(f->dev);
}

Test(ftl_reserve, full_device_takes_reserve_writes_until_gc_keeps_one_segment)
{
	struct full *f = calloc(1, sizeof(*f));
	fill_device(f);
	int k = fill_reserve(f);
	check_all(f, MAXN);

	/* Reopen: the reserve stream's segment is found by the scan like any other. */
	ftl_close(f->ftl);
	struct ftl_config cfg = {.dev = f->dev};
	cr_assert_eq(ftl_open(&cfg, &f->ftl), 0);
	check_all(f, MAXN);
	cr_assert_eq(put(f, f->n, 1, false), -ENOSPC);
	cr_assert_eq(put(f, MAXN / 2 + k, 1, true), -ENOSPC);
	close_all(f);
	free(f);
}

Test(ftl_reserve, freeing_whole_segments_gives_space_back_to_ordinary_writes)
{
	struct full *f = calloc(1, sizeof(*f));
	fill_device(f);
	fill_reserve(f);
	/* What the reserve writes were for: the caller frees data. */
	for (int i = 0; i < f->n / 2; i++) {
		cr_assert_eq(ftl_free(f->ftl, f->a[i]), 0);
		f->ver[i] = 0;
	}
	cr_assert_gt(ftl_gc(f->ftl, 0), 0, "GC cleans the dead segments");
	cr_assert_gt(nfree(f->ftl), 3);
	for (int i = 0; i < f->n / 4; i++)
		cr_assert_eq(put(f, i, 2, false), 0, "ordinary write %d after the frees", i);
	cr_assert_eq(put(f, MAXN - 1, 2, true), 0);
	check_all(f, MAXN);
	close_all(f);
	free(f);
}

/* Every other chunk freed: each segment is half dead, so GC must move data while a single
 * free segment is left (both GC streams then share it). */
Test(ftl_reserve, gc_moves_half_dead_segments_with_one_free_segment, .timeout = 60)
{
	struct full *f = calloc(1, sizeof(*f));
	fill_device(f);
	fill_reserve(f);
	for (int i = 0; i < f->n; i += 2) {
		cr_assert_eq(ftl_free(f->ftl, f->a[i]), 0);
		f->ver[i] = 0;
	}
	/* No explicit GC: the writer that finds only the reserve left runs it itself. */
	for (int i = 0; i < f->n / 4; i += 2)
		cr_assert_eq(put(f, i, 3, false), 0, "ordinary write %d after the frees", i);
	cr_assert_geq(nfree(f->ftl), 2);
	check_all(f, MAXN);
	close_all(f);
	free(f);
}

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

/* Rounds of: free a random third, refill with ordinary writes until -ENOSPC, then with reserve
 * writes until -ENOSPC. GC keeps working on its last free segment, and the space freed comes
 * back every round. */
Test(ftl_reserve, random_frees_and_refills_keep_every_chunk, .timeout = 120)
{
	struct full *f = calloc(1, sizeof(*f));
	fill_device(f);
	fill_reserve(f);
	for (int round = 0; round < 30; round++) {
		int freed = 0, written = 0, rc = 0;
		for (int i = 0; i < MAXN; i++) {
			if (f->ver[i] && rnd(3) == 0) {
				cr_assert_eq(ftl_free(f->ftl, f->a[i]), 0);
				f->ver[i] = 0;
				freed++;
			}
		}
		for (int i = 0; i < MAXN && rc == 0; i++) {
			if (f->ver[i])
				continue;
			rc = put(f, i, (uint8_t)(round % 250 + 2), rnd(8) == 0);
			written += rc == 0;
		}
		cr_assert_eq(rc, -ENOSPC, "round %d: %d", round, rc);
		cr_assert_geq(written, freed / 2, "round %d: freed %d chunks, wrote %d", round,
		              freed, written);
		int i = 0;
		while (i < MAXN && f->ver[i])
			i++;
		cr_assert_lt(i, MAXN);
		while ((rc = put(f, i, 1, true)) == 0)
			while (i < MAXN && f->ver[i])
				i++;
		cr_assert_eq(rc, -ENOSPC);
		cr_assert_geq(nfree(f->ftl), 1, "round %d: GC's last segment was taken", round);
		check_all(f, MAXN);
	}
	close_all(f);
	free(f);
}
