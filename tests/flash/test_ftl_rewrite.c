/* tests/flash/test_ftl_rewrite.c - ftl_chunk_rewrite: a chunk replaced in place of its address
 * reads back the new bytes and flags, after a reopen too; a stale version changes nothing; and a
 * power cut before or after the new copy is durable leaves one sound copy (old or new).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ftl.h"
#include "ftl_dev_fault.h"

#define NCH  400
#define CLEN 3000
#define NLEN 1000

static void fill(uint8_t *buf, uint32_t len, uint32_t key, uint32_t ver)
{
	uint64_t s = ((uint64_t)key << 32 | ver) * 0x9e3779b97f4a7c15ull + 1;
	for (uint32_t i = 0; i < len; i++) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		buf[i] = (uint8_t)s;
	}
}

static void hash_of(uint8_t h[FTL_HASH_LEN], uint32_t key)
{
	memset(h, 0, FTL_HASH_LEN);
	memcpy(h, &key, sizeof(key));
	h[31] = 0x5a;
}

struct rw_fx {
	struct ftl_dev *dev;
	struct ftl *ftl;
	struct ftl_addr a[NCH];
	bool zoned; /* a host-managed zoned namespace of 1 MiB zones */
};

static void rw_open(struct rw_fx *fx, bool format)
{
	if (!fx->dev && fx->zoned)
		cr_assert_eq(ftl_dev_open_mem_zoned(64ull << 20, 4096, 1u << 20, 0, 0, &fx->dev),
		             0);
	else if (!fx->dev)
		cr_assert_eq(ftl_dev_open_mem(64ull << 20, 4096, &fx->dev), 0);
	if (format) {
		struct ftl_format_params p = {.segment_size = 1 << 20, .meta_blocks = 256};
		cr_assert_eq(ftl_format(fx->dev, &p), 0);
	}
	struct ftl_config cfg = {.dev = fx->dev};
	cr_assert_eq(ftl_open(&cfg, &fx->ftl), 0);
}

static void rw_write_all(struct rw_fx *fx)
{
	uint8_t buf[CLEN], h[FTL_HASH_LEN];
	for (uint32_t k = 0; k < NCH; k++) {
		fill(buf, CLEN, k, 0);
		hash_of(h, k);
		struct ftl_write_opts o = {.prev = FTL_ADDR_NONE, .flags = 1};
		cr_assert_eq(ftl_write(fx->ftl, buf, CLEN, h, &o, &fx->a[k]), 0);
	}
	cr_assert_eq(ftl_sync(fx->ftl), 0);
}

/* Rewrites every other chunk with NLEN bytes of version 1 and flags 6. */
static void rw_rewrite_half(struct rw_fx *fx)
{
	uint8_t buf[FTL_CHUNK_MAX], nbuf[NLEN], flags;
	for (uint32_t k = 0; k < NCH; k += 2) {
		struct ftl_chunk_ver ver;
		int n = ftl_read_ver(fx->ftl, fx->a[k], buf, sizeof(buf), &flags, &ver);
		cr_assert_eq(n, CLEN);
		cr_assert_eq(flags, 1);
		fill(nbuf, NLEN, k, 1);
		cr_assert_eq(ftl_chunk_rewrite(fx->ftl, fx->a[k], &ver, nbuf, NLEN, 6), 0);
		/* The same version again: the copy it names is gone. */
		cr_assert_eq(ftl_chunk_rewrite(fx->ftl, fx->a[k], &ver, nbuf, NLEN, 6), -ESTALE);
	}
}

/* Each chunk reads as its old or its new version, as NEW says (-1: either, but sound). */
static void rw_check(struct rw_fx *fx, int want_new)
{
	uint8_t buf[FTL_CHUNK_MAX], exp[CLEN], h[FTL_HASH_LEN], hh[FTL_HASH_LEN], flags;
	for (uint32_t k = 0; k < NCH; k++) {
		int n = ftl_read(fx->ftl, fx->a[k], buf, sizeof(buf), &flags);
		bool rewritten = k % 2 == 0 && (want_new == 1 || (want_new == -1 && n == NLEN));
		cr_assert_eq(n, rewritten ? NLEN : CLEN, "chunk %u: %d", k, n);
		fill(exp, (uint32_t)n, k, rewritten ? 1 : 0);
		cr_assert_eq(memcmp(buf, exp, (size_t)n), 0, "chunk %u differs", k);
		cr_assert_eq(flags, rewritten ? 6 : 1);
		cr_assert_eq(ftl_chunk_flags(fx->ftl, fx->a[k]), rewritten ? 6 : 1);
		hash_of(h, k);
		cr_assert_eq(ftl_read_hash(fx->ftl, fx->a[k], hh), 0);
		cr_assert_eq(memcmp(h, hh, FTL_HASH_LEN), 0, "chunk %u keeps its hash", k);
	}
}

Test(ftl_rewrite, reads_new_bytes_at_the_same_address_and_after_reopen)
{
	struct rw_fx fx = {0};
	struct ftl_stats st0, st1;

	rw_open(&fx, true);
	rw_write_all(&fx);
	ftl_get_stats(fx.ftl, &st0);
	rw_rewrite_half(&fx);
	ftl_get_stats(fx.ftl, &st1);
	cr_assert_eq(st1.chunks_live, st0.chunks_live, "no chunk added or lost");
	cr_assert_eq(st0.bytes_live - st1.bytes_live, (uint64_t)(NCH / 2) * (CLEN - NLEN));
	rw_check(&fx, 1);
	/* GC cleans the old copies' segments and keeps the new ones. */
	cr_assert_geq(ftl_gc(fx.ftl, 4), 0);
	rw_check(&fx, 1);
	ftl_close(fx.ftl);
	rw_open(&fx, false); /* from the checkpoint */
	rw_check(&fx, 1);
	ftl_close(fx.ftl);
	ftl_dev_close(fx.dev);
}

/* On zones the new copies go to the cold GC stream's zone, written sequentially like GC's; GC
 * frees the old copies' zones by a reset. */
Test(ftl_rewrite, works_on_a_zoned_namespace)
{
	struct rw_fx fx = {.zoned = true};

	rw_open(&fx, true);
	rw_write_all(&fx);
	rw_rewrite_half(&fx);
	rw_check(&fx, 1);
	cr_assert_eq(ftl_sync(fx.ftl), 0);
	cr_assert_geq(ftl_gc(fx.ftl, 4), 0);
	rw_check(&fx, 1);
	ftl_close(fx.ftl);
	rw_open(&fx, false);
	rw_check(&fx, 1);
	ftl_close(fx.ftl);
	ftl_dev_close(fx.dev);
}

Test(ftl_rewrite, full_scan_prefers_the_new_copy)
{
	struct rw_fx fx = {0};

	rw_open(&fx, true);
	rw_write_all(&fx);
	rw_rewrite_half(&fx);
	cr_assert_eq(ftl_sync(fx.ftl), 0);
	/* A power cut with both copies on the device and no checkpoint since: the scan walks
	 * both and must keep the newer. */
	cr_assert_eq(ftl_dev_mem_power_cut(fx.dev, false), 0);
	ftl_close(fx.ftl);
	struct ftl_config cfg = {.dev = fx.dev, .full_scan = true};
	cr_assert_eq(ftl_open(&cfg, &fx.ftl), 0);
	rw_check(&fx, 1);
	ftl_close(fx.ftl);
	ftl_dev_close(fx.dev);
}

Test(ftl_rewrite, power_cut_before_sync_keeps_the_old_copy)
{
	struct rw_fx fx = {0};

	rw_open(&fx, true);
	rw_write_all(&fx);
	rw_rewrite_half(&fx);
	/* The new copies may sit in a pack buffer or an unflushed write: cut the power. */
	cr_assert_eq(ftl_dev_mem_power_cut_after(fx.dev, 0, false), 0);
	ftl_close(fx.ftl); /* its writes fail: the machine is off */
	cr_assert_eq(ftl_dev_mem_revive(fx.dev), 0);
	rw_open(&fx, false);
	rw_check(&fx, 0);
	ftl_close(fx.ftl);
	ftl_dev_close(fx.dev);
}

/* Power cuts at every device write of a rewrite pass with GC running: each chunk reads as one
 * of its versions, checksummed, never garbage or missing. */
Test(ftl_rewrite, power_cut_at_each_write_leaves_one_sound_copy, .timeout = 120)
{
	for (uint64_t cut = 0; cut < 12; cut++) {
		struct rw_fx fx = {0};
		rw_open(&fx, true);
		rw_write_all(&fx);
		cr_assert_eq(ftl_dev_mem_power_cut_after(fx.dev, cut, cut % 2), 0);
		uint8_t buf[FTL_CHUNK_MAX], nbuf[NLEN], flags;
		for (uint32_t k = 0; k < NCH; k += 2) {
			struct ftl_chunk_ver ver;
			if (ftl_read_ver(fx.ftl, fx.a[k], buf, sizeof(buf), &flags, &ver) != CLEN)
				break;
			fill(nbuf, NLEN, k, 1);
			if (ftl_chunk_rewrite(fx.ftl, fx.a[k], &ver, nbuf, NLEN, 6))
				break;
			if (k % 40 == 0 && (ftl_sync(fx.ftl) || ftl_gc(fx.ftl, 4) < 0))
				break;
		}
		(void)ftl_sync(fx.ftl);
		ftl_close(fx.ftl);
		cr_assert_eq(ftl_dev_mem_revive(fx.dev), 0);
		rw_open(&fx, false);
		rw_check(&fx, -1);
		ftl_close(fx.ftl);
		ftl_dev_close(fx.dev);
	}
}

Test(ftl_rewrite, stale_versions_and_bad_arguments_change_nothing)
{
	struct rw_fx fx = {0};
	uint8_t buf[FTL_CHUNK_MAX], nbuf[NLEN], flags;
	struct ftl_chunk_ver ver;

	rw_open(&fx, true);
	rw_write_all(&fx);
	fill(nbuf, NLEN, 0, 1);
	cr_assert_eq(ftl_read_ver(fx.ftl, fx.a[0], buf, sizeof(buf), &flags, &ver), CLEN);
	cr_assert_eq(ftl_chunk_rewrite(fx.ftl, fx.a[0], &ver, nbuf, 0, 6), -EINVAL);
	cr_assert_eq(ftl_chunk_rewrite(fx.ftl, fx.a[0], &ver, nbuf, NLEN, 0xff), -EINVAL);
	/* Freed since the read: refused, and the id stays free. */
	cr_assert_eq(ftl_free(fx.ftl, fx.a[0]), 0);
	cr_assert_eq(ftl_chunk_rewrite(fx.ftl, fx.a[0], &ver, nbuf, NLEN, 6), -ENOENT);
	cr_assert_eq(ftl_chunk_flags(fx.ftl, fx.a[0]), -ENOENT);
	/* Moved by GC since the read (every chunk of its segment dies but this one). */
	cr_assert_eq(ftl_read_ver(fx.ftl, fx.a[1], buf, sizeof(buf), &flags, &ver), CLEN);
	for (uint32_t k = 2; k < NCH; k++)
		cr_assert_eq(ftl_free(fx.ftl, fx.a[k]), 0);
	cr_assert_eq(ftl_sync(fx.ftl), 0);
	cr_assert_geq(ftl_gc(fx.ftl, 4), 0);
	int rc = ftl_chunk_rewrite(fx.ftl, fx.a[1], &ver, nbuf, NLEN, 6);
	struct ftl_chunk_ver now;
	cr_assert_eq(ftl_read_ver(fx.ftl, fx.a[1], buf, sizeof(buf), &flags, &now), CLEN);
	if (now.loc != ver.loc || now.gen != ver.gen)
		cr_assert_eq(rc, -ESTALE, "a moved chunk is not rewritten from an old version");
	uint8_t exp[CLEN];
	fill(exp, CLEN, 1, 0);
	cr_assert_eq(memcmp(buf, exp, CLEN), 0);
	ftl_close(fx.ftl);
	ftl_dev_close(fx.dev);
}
