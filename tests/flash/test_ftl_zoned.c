/* tests/flash/test_ftl_zoned.c - the FTL on zoned namespaces, on the memory device's zone
 * emulation: the emulation's own rules (write pointer, limits, power cuts), the random-write log
 * (reopen, compaction, torn records), and the FTL on zones (format, GC with zone resets, reopen,
 * power cuts, the active-zone limit and stream folding).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ftl.h"
#include "ftl_dev_fault.h"

#define ZS (256u << 10) /* zone size of the test devices */

static uint64_t xs(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void pattern(uint8_t *buf, size_t len, uint64_t seed)
{
	uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)xs(&s);
}

static struct ftl_zone zone_at(struct ftl_dev *dev, uint64_t off)
{
	struct ftl_zone z;
	cr_assert_eq(ftl_dev_report_zones(dev, off, &z, 1), 1);
	return z;
}

static void *blk_alloc(size_t n)
{
	void *p = aligned_alloc(4096, (n + 4095) / 4096 * 4096);
	cr_assert(p);
	return p;
}

/* ---- the emulation ------------------------------------------------------------------------ */

Test(mem_zoned, writes_only_at_the_write_pointer)
{
	struct ftl_dev *dev;
	uint8_t *b = blk_alloc(8192);
	cr_assert_eq(ftl_dev_open_mem_zoned(4 * ZS, 4096, ZS, 0, 0, &dev), 0);
	pattern(b, 8192, 1);
	cr_assert_eq(ftl_dev_write(dev, b, 4096, 0), 0);
	cr_assert_eq(ftl_dev_write(dev, b, 4096, 8192), -EIO, "a write past the write pointer");
	cr_assert_eq(ftl_dev_write(dev, b, 4096, 0), -EIO, "a rewrite");
	cr_assert_eq(ftl_dev_write(dev, b, 8192, ZS - 4096), -EIO, "across the zone's end");
	cr_assert_eq(ftl_dev_write(dev, b, 4096, 4096), 0);
	struct ftl_zone z = zone_at(dev, 0);
	cr_assert_eq(z.write_pointer, 8192);
	cr_assert_eq(z.state, FTL_ZONE_IMPL_OPEN);
	/* Past the write pointer: zeros. */
	cr_assert_eq(ftl_dev_read(dev, b, 4096, 8192), 0);
	for (int i = 0; i < 4096; i++)
		cr_assert_eq(b[i], 0);
	cr_assert_eq(ftl_dev_trim(dev, 0, 4096), -EOPNOTSUPP);
	cr_assert_eq(ftl_dev_zone_action(dev, FTL_ZONE_FINISH, 0, ZS), 0);
	cr_assert_eq(zone_at(dev, 0).state, FTL_ZONE_FULL);
	cr_assert_eq(ftl_dev_write(dev, b, 4096, 8192), -EIO, "a full zone");
	cr_assert_eq(ftl_dev_zone_action(dev, FTL_ZONE_RESET, 0, ZS), 0);
	z = zone_at(dev, 0);
	cr_assert_eq(z.state, FTL_ZONE_EMPTY);
	cr_assert_eq(z.write_pointer, 0);
	cr_assert_eq(ftl_dev_read(dev, b, 4096, 0), 0);
	for (int i = 0; i < 4096; i++)
		cr_assert_eq(b[i], 0, "a reset zone reads zeros");
	struct ftl_dev_zoned_stats zs;
	cr_assert_eq(ftl_dev_zoned_get_stats(dev, &zs), 0);
	cr_assert(zs.zoned);
	cr_assert_eq(zs.zone_resets, 1);
	cr_assert_eq(zs.zone_finishes, 1);
	ftl_dev_close(dev);
	free(b);
}

Test(mem_zoned, open_and_active_limits)
{
	struct ftl_dev *dev;
	uint8_t *b = blk_alloc(4096);
	memset(b, 7, 4096);
	cr_assert_eq(ftl_dev_open_mem_zoned(6 * ZS, 4096, ZS, 1, 2, &dev), 0);
	cr_assert_eq(ftl_dev_write(dev, b, 4096, 0), 0);
	/* The open limit: the implicitly open zone 0 is closed to open zone 1. */
	cr_assert_eq(ftl_dev_write(dev, b, 4096, ZS), 0);
	cr_assert_eq(zone_at(dev, 0).state, FTL_ZONE_CLOSED);
	cr_assert_eq(zone_at(dev, ZS).state, FTL_ZONE_IMPL_OPEN);
	/* The active limit: a third zone is refused until one is finished. */
	cr_assert_eq(ftl_dev_write(dev, b, 4096, 2 * ZS), -EOVERFLOW);
	cr_assert_eq(ftl_dev_zone_action(dev, FTL_ZONE_FINISH, 0, ZS), 0);
	cr_assert_eq(ftl_dev_write(dev, b, 4096, 2 * ZS), 0);
	/* An explicitly open zone is never closed for another. */
	cr_assert_eq(ftl_dev_zone_action(dev, FTL_ZONE_OPEN, 2 * ZS, ZS), 0);
	cr_assert_eq(ftl_dev_write(dev, b, 4096, ZS + 4096), -ETOOMANYREFS);
	cr_assert_eq(ftl_dev_zone_action(dev, FTL_ZONE_CLOSE, 2 * ZS, ZS), 0);
	cr_assert_eq(ftl_dev_write(dev, b, 4096, ZS + 4096), 0);
	struct ftl_dev_identity id;
	ftl_dev_identify(dev, &id);
	cr_assert(id.zoned);
	cr_assert_eq(id.max_open_zones, 1);
	cr_assert_eq(id.max_active_zones, 2);
	ftl_dev_close(dev);
	free(b);
}

Test(mem_zoned, power_cut_keeps_what_was_flushed)
{
	struct ftl_dev *dev;
	uint8_t *b = blk_alloc(16384);
	pattern(b, 16384, 3);
	cr_assert_eq(ftl_dev_open_mem_zoned(4 * ZS, 4096, ZS, 0, 0, &dev), 0);
	cr_assert_eq(ftl_dev_write(dev, b, 8192, 0), 0);
	cr_assert_eq(ftl_dev_flush(dev), 0);
	cr_assert_eq(ftl_dev_write(dev, b, 4096, 8192), 0);
	cr_assert_eq(ftl_dev_write(dev, b, 4096, ZS), 0);
	cr_assert_eq(ftl_dev_mem_power_cut(dev, false), 0);
	cr_assert_eq(zone_at(dev, 0).write_pointer, 8192, "back to the flushed end");
	cr_assert_eq(zone_at(dev, 0).state, FTL_ZONE_CLOSED);
	cr_assert_eq(zone_at(dev, ZS).state, FTL_ZONE_EMPTY);
	/* A torn write at the durable write pointer keeps its first half. */
	cr_assert_eq(ftl_dev_write(dev, b, 16384, 8192), 0);
	cr_assert_eq(ftl_dev_mem_power_cut(dev, true), 0);
	cr_assert_eq(zone_at(dev, 0).write_pointer, 8192 + 8192);
	cr_assert_eq(ftl_dev_write(dev, b, 4096, 16384), 0, "appends go on at the write pointer");
	ftl_dev_close(dev);
	free(b);
}

/* ---- the random-write log ----------------------------------------------------------------- */

/* A zoned memory device formatted by the FTL; *LIMIT gets the bytes of random-write space. */
static struct ftl_dev *zoned_formatted(uint64_t size, uint32_t max_active, uint64_t *limit)
{
	struct ftl_dev *dev;
	/* 512-byte blocks, as QEMU's zoned namespace has: the log takes sub-block writes. */
	cr_assert_eq(ftl_dev_open_mem_zoned(size, 512, ZS, 0, max_active, &dev), 0);
	struct ftl_format_params p = {.meta_blocks = 64};
	cr_assert_eq(ftl_format(dev, &p), 0);
	struct ftl_superblock_info sb;
	cr_assert_eq(ftl_read_superblock(dev, &sb), 0);
	cr_assert(sb.zoned);
	cr_assert_eq(sb.segment_size, ZS);
	cr_assert_eq(sb.data_offset % ZS, 0);
	if (limit)
		*limit = sb.meta_offset + sb.meta_size;
	return dev;
}

Test(zlog, random_writes_compact_and_survive_power_cuts, .timeout = 120)
{
	uint64_t limit;
	struct ftl_dev *dev = zoned_formatted(16u << 20, 0, &limit);
	struct ftl_superblock_info sb;
	cr_assert_eq(ftl_read_superblock(dev, &sb), 0);
	uint64_t base = sb.meta_offset, span = sb.meta_size;
	uint8_t *model = calloc(1, span), *acked = calloc(1, span);
	uint8_t *buf = blk_alloc(65536);
	cr_assert(model && acked);
	uint64_t rng = 99;
	/* Many times the log's size in writes of 512 B .. 64 KiB at 512-byte offsets. */
	for (int round = 0; round < 6; round++) {
		for (int i = 0; i < 300; i++) {
			uint64_t len = 512 * (1 + xs(&rng) % 128);
			uint64_t off = 512 * (xs(&rng) % ((span - len) / 512));
			pattern(buf, len, xs(&rng));
			cr_assert_eq(ftl_dev_write(dev, buf, len, base + off), 0);
			memcpy(model + off, buf, len);
			if (i % 50 == 0) { /* a TRIM of whole blocks now and then */
				uint64_t t = (off + 4095) / 4096 * 4096;
				if (t + 4096 <= span && ftl_dev_trim(dev, base + t, 4096) == 0)
					memset(model + t, 0, 4096);
			}
		}
		cr_assert_eq(ftl_dev_flush(dev), 0);
		memcpy(acked, model, span);
		/* Some unflushed writes to the first 8 blocks, then the power goes: the flushed
		 * state comes back, but for those blocks, which may also hold one of the unflushed
		 * versions (a compaction flushes what came before it). */
		uint64_t seeds[8][20];
		int nseeds[8] = {0};
		for (int i = 0; i < 20; i++) {
			uint64_t b = xs(&rng) % 8, sd = xs(&rng);
			pattern(buf, 4096, sd);
			cr_assert_eq(ftl_dev_write(dev, buf, 4096, base + 4096 * b), 0);
			seeds[b][nseeds[b]++] = sd;
		}
		cr_assert_eq(ftl_dev_mem_power_cut(dev, round % 2), 0);
		for (uint64_t b = 0; b < 8; b++) {
			uint8_t want[4096];
			cr_assert_eq(ftl_dev_read(dev, buf, 4096, base + 4096 * b), 0);
			bool ok = !memcmp(buf, acked + 4096 * b, 4096);
			for (int i = 0; i < nseeds[b] && !ok; i++) {
				pattern(want, 4096, seeds[b][i]);
				ok = !memcmp(buf, want, 4096);
			}
			cr_assert(ok, "round %d: block %llu is neither flushed nor written", round,
			          (unsigned long long)b);
			memcpy(acked + 4096 * b, buf, 4096);
		}
		memcpy(model, acked, span);
		for (uint64_t o = 0; o < span; o += 65536) {
			uint64_t n = span - o < 65536 ? span - o : 65536;
			cr_assert_eq(ftl_dev_read(dev, buf, n, base + o), 0);
			cr_assert(!memcmp(buf, acked + o, n), "round %d: bytes at %llu differ",
			          round, (unsigned long long)o);
		}
	}
	struct ftl_dev_zoned_stats zs;
	cr_assert_eq(ftl_dev_zoned_get_stats(dev, &zs), 0);
	cr_assert_gt(zs.log_compactions, 2, "the log must have been compacted");
	cr_assert_gt(zs.log_blocks_written, (uint64_t)4 * zs.log_zones * (ZS / 4096));
	cr_assert_eq(ftl_read_superblock(dev, &sb), 0, "the superblock outlived the compactions");
	/* Never more than one zone of the log active (invariant 3 of ftl_dev_zoned.c). */
	uint32_t active = 0;
	for (uint32_t z = 0; z < zs.log_zones; z++) {
		uint8_t st = zone_at(dev, (uint64_t)z * ZS).state;
		active +=
		    st == FTL_ZONE_IMPL_OPEN || st == FTL_ZONE_EXPL_OPEN || st == FTL_ZONE_CLOSED;
	}
	cr_assert_leq(active, 1);
	cr_assert_eq(ftl_dev_write(dev, buf, 4096, limit), -ENOSPC, "past the log's size");
	ftl_dev_close(dev);
	free(buf);
	free(model);
	free(acked);
}

Test(zlog, torn_record_is_ignored)
{
	struct ftl_dev *dev = zoned_formatted(16u << 20, 0, NULL);
	struct ftl_superblock_info sb;
	cr_assert_eq(ftl_read_superblock(dev, &sb), 0);
	uint8_t *a = blk_alloc(32768), *b = blk_alloc(32768), *r = blk_alloc(32768);
	pattern(a, 32768, 5);
	pattern(b, 32768, 6);
	uint64_t at = sb.meta_offset + 8192;
	cr_assert_eq(ftl_dev_write(dev, a, 32768, at), 0);
	cr_assert_eq(ftl_dev_flush(dev), 0);
	/* The new version is torn: its header and the first data blocks land, not the rest. */
	cr_assert_eq(ftl_dev_write(dev, b, 32768, at), 0);
	cr_assert_eq(ftl_dev_mem_power_cut(dev, true), 0);
	cr_assert_eq(ftl_dev_read(dev, r, 32768, at), 0);
	cr_assert(!memcmp(r, a, 32768), "the torn version must not show, not even in part");
	struct ftl_dev_zoned_stats zs;
	cr_assert_eq(ftl_dev_zoned_get_stats(dev, &zs), 0);
	cr_assert_eq(zs.log_torn_records, 1);
	/* Appends go on after the torn record, and survive the next cut once flushed. */
	cr_assert_eq(ftl_dev_write(dev, b, 32768, at), 0);
	cr_assert_eq(ftl_dev_flush(dev), 0);
	cr_assert_eq(ftl_dev_mem_power_cut(dev, false), 0);
	cr_assert_eq(ftl_dev_read(dev, r, 32768, at), 0);
	cr_assert(!memcmp(r, b, 32768));
	ftl_dev_close(dev);
	free(a);
	free(b);
	free(r);
}

/* ---- the FTL on zones ---------------------------------------------------------------------- */

#define KEYS  600
#define CLEN  3000
#define OPS   6000
#define EVERY 37

static void fill(uint8_t *buf, uint32_t key, uint32_t ver)
{
	pattern(buf, CLEN, (uint64_t)key << 32 | ver);
}

struct state {
	struct ftl_addr cur[KEYS], ack[KEYS];
	uint32_t cur_ver[KEYS], ack_ver[KEYS];
	struct ftl_addr pending[EVERY + KEYS];
	int npending;
	bool acked;
};

/* Skewed overwrites with syncs; a replaced version is freed only after the sync that made its
 * successor durable (the protocol the engine follows). Stops at the first error. */
static int workload(struct ftl *ftl, struct state *s, uint64_t *rng, int ops)
{
	uint8_t buf[CLEN], h[FTL_HASH_LEN] = {0};
	int rc;
	for (uint32_t k = 0; k < KEYS; k++) {
		fill(buf, k, 0);
		if ((rc = ftl_write(ftl, buf, CLEN, h, NULL, &s->cur[k])))
			return rc;
	}
	if ((rc = ftl_sync(ftl)))
		return rc;
	memcpy(s->ack, s->cur, sizeof(s->ack));
	s->acked = true;
	for (int op = 0; op < ops; op++) {
		uint64_t x = xs(rng);
		uint32_t k = (uint32_t)(x % 3 ? (x >> 8) % (KEYS / 3) : (x >> 8) % KEYS);
		fill(buf, k, s->cur_ver[k] + 1);
		struct ftl_write_opts o = {.prev = s->cur[k]};
		struct ftl_addr na;
		if ((rc = ftl_write(ftl, buf, CLEN, h, &o, &na)))
			return rc;
		s->pending[s->npending++] = s->cur[k];
		s->cur[k] = na;
		s->cur_ver[k]++;
		if (op % EVERY == EVERY - 1 || s->npending >= EVERY + KEYS - 1) {
			if ((rc = ftl_sync(ftl)))
				return rc;
			memcpy(s->ack, s->cur, sizeof(s->ack));
			memcpy(s->ack_ver, s->cur_ver, sizeof(s->ack_ver));
			for (int i = 0; i < s->npending; i++)
				if ((rc = ftl_free(ftl, s->pending[i])))
					return rc;
			s->npending = 0;
		}
	}
	return 0;
}

/* Frees the acknowledged versions (which a verify just read) and starts the state afresh, so
 * the workload can run again on the same FTL. */
static void restart(struct ftl *ftl, struct state *s)
{
	for (uint32_t k = 0; k < KEYS && s->acked; k++)
		cr_assert_eq(ftl_free(ftl, s->ack[k]), 0);
	memset(s, 0, sizeof(*s));
}

static int verify_acked(struct ftl *ftl, const struct state *s)
{
	uint8_t want[CLEN], got[CLEN];
	int lost = 0;
	for (uint32_t k = 0; k < KEYS && s->acked; k++) {
		fill(want, k, s->ack_ver[k]);
		int rc = ftl_read(ftl, s->ack[k], got, CLEN, NULL);
		if (rc != CLEN || memcmp(want, got, CLEN))
			lost++;
	}
	return lost;
}

/* Every free segment is an empty zone, and no more zones are active than the budget. */
static void check_zones(struct ftl_dev *dev, struct ftl *ftl)
{
	struct ftl_superblock_info sb;
	cr_assert_eq(ftl_read_superblock(dev, &sb), 0);
	struct ftl_stats st;
	ftl_get_stats(ftl, &st);
	uint32_t n = (uint32_t)(ftl_dev_size(dev) / ZS), active = 0, empty = 0;
	struct ftl_zone *z = calloc(n, sizeof(*z));
	cr_assert_eq(ftl_dev_report_zones(dev, 0, z, n), (int)n);
	for (uint32_t i = 0; i < n; i++) {
		active += z[i].state == FTL_ZONE_IMPL_OPEN || z[i].state == FTL_ZONE_EXPL_OPEN ||
		          z[i].state == FTL_ZONE_CLOSED;
		empty += z[i].start >= sb.data_offset && z[i].state == FTL_ZONE_EMPTY;
	}
	cr_assert_leq(active, st.zone_active_budget);
	cr_assert_eq(empty, st.segments_free, "free segments %u, empty zones %u", st.segments_free,
	             empty);
	free(z);
}

Test(ftl_zoned, write_gc_reset_and_reopen, .timeout = 120)
{
	struct ftl_dev *dev = zoned_formatted(12u << 20, 0, NULL);
	struct ftl *ftl;
	struct state *s = calloc(1, sizeof(*s));
	cr_assert_eq(ftl_open(&(struct ftl_config){.dev = dev}, &ftl), 0);
	uint64_t rng = 777;
	cr_assert_eq(workload(ftl, s, &rng, OPS), 0);
	struct ftl_stats st;
	ftl_get_stats(ftl, &st);
	cr_assert(st.zoned);
	cr_assert_gt(st.gc_runs, 10, "the workload must make GC work");
	cr_assert_geq(st.zone_resets, st.gc_runs, "every cleaned segment is a reset zone");
	cr_assert_eq(st.trims, 0);
	cr_assert_gt(st.zone_finishes, 0, "syncs close segments before they are full");
	cr_assert_eq(st.zone_streams, 5);
	check_zones(dev, ftl);
	uint32_t before[64], after[64];
	int nseg = ftl_erase_counts(ftl, before, 64);
	ftl_close(ftl);

	cr_assert_eq(ftl_open(&(struct ftl_config){.dev = dev}, &ftl), 0);
	cr_assert_eq(verify_acked(ftl, s), 0);
	cr_assert_eq(ftl_erase_counts(ftl, after, 64), nseg);
	for (int i = 0; i < nseg; i++)
		cr_assert_geq(after[i], before[i], "segment %d: erase count %u -> %u", i, before[i],
		              after[i]);
	check_zones(dev, ftl);
	/* Writing goes on after the reopen (the streams start in new, empty zones). */
	restart(ftl, s);
	cr_assert_eq(workload(ftl, s, &rng, 1000), 0);
	cr_assert_eq(verify_acked(ftl, s), 0);
	ftl_close(ftl);
	ftl_dev_close(dev);
	free(s);
}

Test(ftl_zoned, power_cuts_lose_nothing_acknowledged, .timeout = 300)
{
	int lost = 0, acked = 0, rounds = 16;
	uint64_t pick = 0xabcdef, total;
	{ /* the device writes of an uninterrupted run, to spread the cuts over */
		struct ftl_dev *dev = zoned_formatted(12u << 20, 0, NULL);
		struct ftl *ftl;
		struct state *s = calloc(1, sizeof(*s));
		struct ftl_dev_stats ds;
		cr_assert_eq(ftl_open(&(struct ftl_config){.dev = dev}, &ftl), 0);
		ftl_dev_get_stats(dev, &ds);
		total = ds.writes;
		uint64_t rng = 4242;
		cr_assert_eq(workload(ftl, s, &rng, OPS), 0);
		ftl_dev_get_stats(dev, &ds);
		total = ds.writes - total;
		ftl_close(ftl);
		ftl_dev_close(dev);
		free(s);
	}
	for (int i = 0; i < rounds; i++) {
		struct ftl_dev *dev = zoned_formatted(12u << 20, 0, NULL);
		struct ftl *ftl;
		struct state *s = calloc(1, sizeof(*s));
		cr_assert_eq(ftl_open(&(struct ftl_config){.dev = dev}, &ftl), 0);
		cr_assert_eq(ftl_dev_mem_power_cut_after(dev, xs(&pick) % total, i % 2), 0);
		uint64_t rng = 4242 + (uint64_t)i;
		int wrc = workload(ftl, s, &rng, OPS);
		cr_assert(ftl_dev_mem_is_dead(dev), "round %d: the cut never came (%d)", i, wrc);
		ftl_close(ftl);
		cr_assert_eq(ftl_dev_mem_revive(dev), 0); /* reads the random-write log back */
		int rc = ftl_open(&(struct ftl_config){.dev = dev}, &ftl);
		cr_assert_eq(rc, 0, "round %d: remount: %d", i, rc);
		acked += s->acked;
		lost += verify_acked(ftl, s);
		check_zones(dev, ftl);
		/* And it writes on: no zone was left where a write would fail. */
		restart(ftl, s);
		cr_assert_eq(workload(ftl, s, &rng, 300), 0, "round %d: writes after the cut", i);
		lost += verify_acked(ftl, s);
		ftl_close(ftl);
		ftl_dev_close(dev);
		free(s);
	}
	cr_assert_gt(acked, rounds / 2);
	cr_assert_eq(lost, 0, "%d acknowledged chunks lost over %d cuts", lost, rounds);
}

Test(ftl_zoned, folds_streams_to_the_active_zone_limit, .timeout = 120)
{
	/* 5 active zones: three streams (user, GC, reserve), a checkpoint part and the log's zone.
	 * The device refuses (-EOVERFLOW) any write that would make a sixth zone active, so a
	 * clean run with GC and checkpoints shows the FTL kept to it. */
	struct ftl_dev *dev = zoned_formatted(20u << 20, 5, NULL);
	struct ftl *ftl;
	struct state *s = calloc(1, sizeof(*s));
	cr_assert_eq(ftl_open(&(struct ftl_config){.dev = dev}, &ftl), 0);
	struct ftl_stats st;
	ftl_get_stats(ftl, &st);
	cr_assert_eq(st.zone_max_active, 5);
	cr_assert_eq(st.zone_active_budget, 5);
	cr_assert_eq(st.zone_streams, 3);
	uint64_t rng = 31337;
	for (int i = 0; i < 4; i++) {
		if (i)
			restart(ftl, s);
		cr_assert_eq(workload(ftl, s, &rng, 1500), 0);
		cr_assert_eq(ftl_checkpoint(ftl), 0);
		check_zones(dev, ftl);
	}
	ftl_get_stats(ftl, &st);
	cr_assert_gt(st.gc_runs, 5);
	cr_assert_gt(st.ckpt_writes, 0);
	cr_assert_eq(verify_acked(ftl, s), 0);
	ftl_close(ftl);
	cr_assert_eq(ftl_open(&(struct ftl_config){.dev = dev}, &ftl), 0);
	ftl_get_stats(ftl, &st);
	cr_assert(st.open_from_ckpt);
	cr_assert_eq(verify_acked(ftl, s), 0);
	ftl_close(ftl);
	ftl_dev_close(dev);
	free(s);

	/* Even the tightest fold needs 4: a device allowing 3 is refused at format. */
	cr_assert_eq(ftl_dev_open_mem_zoned(12u << 20, 4096, ZS, 0, 3, &dev), 0);
	cr_assert_eq(ftl_format(dev, NULL), -EOPNOTSUPP);
	ftl_dev_close(dev);
}

Test(ftl_zoned, format_takes_the_zone_size)
{
	struct ftl_dev *dev;
	cr_assert_eq(ftl_dev_open_mem_zoned(12u << 20, 4096, ZS, 0, 0, &dev), 0);
	struct ftl_format_params p = {.segment_size = 2 * ZS};
	cr_assert_eq(ftl_format(dev, &p), -EINVAL, "a segment is a zone");
	p.segment_size = ZS;
	cr_assert_eq(ftl_format(dev, &p), 0);
	ftl_dev_close(dev);
	/* Unformatted, a zoned device reads as not ours, not as damaged. */
	cr_assert_eq(ftl_dev_open_mem_zoned(12u << 20, 4096, ZS, 0, 0, &dev), 0);
	struct ftl_superblock_info sb;
	cr_assert_eq(ftl_read_superblock(dev, &sb), -EINVAL);
	ftl_dev_close(dev);
}
