/* tests/flash/test_ftl_crash.c - power cuts at chosen device writes, inside GC, seals and
 * segment changes: after each, everything acknowledged by ftl_sync() reads back exact and
 * nothing reads back wrong.
 *
 * The workload follows the protocol the engine and fs rely on: a chunk replaced by a new
 * version is freed only after the sync that made the new version durable.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ftl.h"
#include "ftl_dev_fault.h"

#define KEYS  900
#define CLEN  3000
#define OPS   9000
#define EVERY 37 /* sync every EVERY overwrites */

static void fill(uint8_t *buf, uint32_t key, uint32_t ver)
{
	uint64_t s = ((uint64_t)key << 32 | ver) * 0x9e3779b97f4a7c15ull + 1;
	for (uint32_t i = 0; i < CLEN; i++) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		buf[i] = (uint8_t)s;
	}
}

struct state {
	struct ftl_addr cur[KEYS], ack[KEYS];
	uint32_t cur_ver[KEYS], ack_ver[KEYS];
	struct ftl_addr pending[EVERY + KEYS];
	int npending;
	bool acked; /* a sync has succeeded: ack[] and ack_ver[] mean something */
};

/* Runs the workload until the device dies (or OPS are done). Returns device writes done. */
static void workload(struct ftl *ftl, struct state *s, uint64_t *rng)
{
	uint8_t buf[CLEN], h[FTL_HASH_LEN] = {0};
	for (uint32_t k = 0; k < KEYS; k++) {
		fill(buf, k, 0);
		if (ftl_write(ftl, buf, CLEN, h, NULL, &s->cur[k]))
			return;
	}
	if (ftl_sync(ftl))
		return;
	memcpy(s->ack, s->cur, sizeof(s->ack));
	s->acked = true;
	for (int op = 0; op < OPS; op++) {
		*rng ^= *rng << 13;
		*rng ^= *rng >> 7;
		*rng ^= *rng << 17;
		/* Skewed: a third of the keys take most writes, so GC sees hot and cold data. */
		uint32_t k = (uint32_t)(*rng % 3 ? (*rng >> 8) % (KEYS / 3) : (*rng >> 8) % KEYS);
		fill(buf, k, s->cur_ver[k] + 1);
		struct ftl_write_opts o = {.prev = s->cur[k]};
		struct ftl_addr na;
		if (ftl_write(ftl, buf, CLEN, h, &o, &na))
			return;
		/* The replaced version is freed only once the new one is durable. */
		s->pending[s->npending++] = s->cur[k];
		s->cur[k] = na;
		s->cur_ver[k]++;
		if (op % EVERY == EVERY - 1 || s->npending >= EVERY + KEYS - 1) {
			if (ftl_sync(ftl))
				return;
			memcpy(s->ack, s->cur, sizeof(s->ack));
			memcpy(s->ack_ver, s->cur_ver, sizeof(s->ack_ver));
			for (int i = 0; i < s->npending; i++)
				if (ftl_free(ftl, s->pending[i]))
					return;
			s->npending = 0;
		}
	}
}

/* A freshly formatted FTL on a 12 MiB memory device with small segments, so GC works hard. */
static void fresh_ftl(struct ftl_dev **dev, struct ftl **ftl)
{
	cr_assert_eq(ftl_dev_open_mem(12 << 20, 4096, dev), 0);
	struct ftl_format_params p = {.segment_size = 256 << 10, .meta_blocks = 256};
	cr_assert_eq(ftl_format(*dev, &p), 0);
	cr_assert_eq(ftl_open(&(struct ftl_config){.dev = *dev}, ftl), 0);
}

static uint64_t device_writes(struct ftl_dev *dev)
{
	struct ftl_dev_stats st;
	ftl_dev_get_stats(dev, &st);
	return st.writes;
}

static void crash_round(uint64_t cut, bool tear, uint64_t seed, int *lost, int *acked)
{
	struct ftl_dev *dev;
	struct ftl *ftl;
	struct state *s = calloc(1, sizeof(*s));
	fresh_ftl(&dev, &ftl);
	cr_assert_eq(ftl_dev_mem_power_cut_after(dev, cut, tear), 0);
	uint64_t rng = seed;
	workload(ftl, s, &rng);
	cr_assert(ftl_dev_mem_is_dead(dev), "the cut at write %llu never came",
	          (unsigned long long)cut);
	ftl_close(ftl); /* after the cut nothing it writes lands */
	cr_assert_eq(ftl_dev_mem_revive(dev), 0);

	cr_assert_eq(ftl_open(&(struct ftl_config){.dev = dev}, &ftl), 0, "remount after cut %llu",
	             (unsigned long long)cut);
	uint8_t want[CLEN], got[CLEN];
	*acked += s->acked;
	for (uint32_t k = 0; k < KEYS && s->acked; k++) {
		fill(want, k, s->ack_ver[k]);
		int rc = ftl_read(ftl, s->ack[k], got, CLEN, NULL);
		if (rc != CLEN || memcmp(want, got, CLEN))
			(*lost)++;
		/* The newest version, acknowledged or not, is exact if it reads at all (its id
		 * may have been reused for another key's chunk after a free: then it is that
		 * chunk, exact too, which the other key's check covers). One never acknowledged
		 * may also read -EIO: a chunk of a pack the cut tore, with no sound older copy of
		 * its id, is damaged by design (ftl_scan.c, SCAN_DAMAGED), never other bytes. */
		bool unacked = s->cur[k].v != s->ack[k].v || s->cur_ver[k] != s->ack_ver[k];
		fill(want, k, s->cur_ver[k]);
		rc = ftl_read(ftl, s->cur[k], got, CLEN, NULL);
		cr_assert(rc == -ENOENT || rc == CLEN || (rc == -EIO && unacked), "key %u: %d", k,
		          rc);
	}
	ftl_close(ftl);
	ftl_dev_close(dev);
	free(s);
}

Test(ftl_crash, power_cut_at_random_device_writes_loses_nothing_acknowledged, .timeout = 300)
{
	/* Count the device writes of an uninterrupted run to spread the cuts over it. */
	struct ftl_dev *dev;
	struct ftl *ftl;
	struct state *s = calloc(1, sizeof(*s));
	fresh_ftl(&dev, &ftl);
	uint64_t rng = 12345, w0 = device_writes(dev);
	workload(ftl, s, &rng);
	struct ftl_stats st;
	ftl_get_stats(ftl, &st);
	uint64_t total = device_writes(dev) - w0;
	cr_assert_gt(st.gc_runs, 10, "the workload must make GC work");
	ftl_close(ftl);
	ftl_dev_close(dev);
	free(s);

	int lost = 0, rounds = 0, acked = 0;
	uint64_t pick = 0x5eed;
	for (int i = 0; i < 40; i++, rounds++) {
		pick ^= pick << 13;
		pick ^= pick >> 7;
		pick ^= pick << 17;
		crash_round(pick % total, i % 2, 12345, &lost, &acked);
	}
	cr_assert_gt(acked, rounds / 2, "most cuts must come after data was acknowledged");
	cr_assert_eq(lost, 0, "%d acknowledged chunks lost over %d cuts in %llu device writes",
	             lost, rounds, (unsigned long long)total);
}

/* Overwrites at random, syncing and freeing every EVERY writes, until a cleaned GC victim is
 * waiting for its copies' pack (ftl_gc.c: not sealed per victim). Returns whether one was. */
static bool run_until_gc_pending(struct ftl *ftl, struct state *s, uint64_t *rng)
{
	uint8_t buf[CLEN], h[FTL_HASH_LEN] = {0};
	for (uint32_t k = 0; k < KEYS && !s->acked; k++) {
		fill(buf, k, 0);
		cr_assert_eq(ftl_write(ftl, buf, CLEN, h, NULL, &s->cur[k]), 0);
	}
	cr_assert_eq(ftl_sync(ftl), 0);
	memcpy(s->ack, s->cur, sizeof(s->ack));
	memcpy(s->ack_ver, s->cur_ver, sizeof(s->ack_ver));
	for (int i = 0; i < s->npending; i++)
		cr_assert_eq(ftl_free(ftl, s->pending[i]), 0);
	s->npending = 0;
	s->acked = true;
	for (int op = 0; op < OPS; op++) {
		*rng ^= *rng << 13;
		*rng ^= *rng >> 7;
		*rng ^= *rng << 17;
		uint32_t k = (uint32_t)((*rng >> 8) % KEYS);
		fill(buf, k, s->cur_ver[k] + 1);
		struct ftl_write_opts o = {.prev = s->cur[k]};
		cr_assert_eq(ftl_write(ftl, buf, CLEN, h, &o, &s->pending[s->npending]), 0);
		struct ftl_addr old = s->cur[k];
		s->cur[k] = s->pending[s->npending];
		s->pending[s->npending++] = old;
		s->cur_ver[k]++;
		if (op % EVERY == EVERY - 1) {
			cr_assert_eq(ftl_sync(ftl), 0);
			memcpy(s->ack, s->cur, sizeof(s->ack));
			memcpy(s->ack_ver, s->cur_ver, sizeof(s->ack_ver));
			for (int i = 0; i < s->npending; i++)
				cr_assert_eq(ftl_free(ftl, s->pending[i]), 0);
			s->npending = 0;
		}
		struct ftl_stats st;
		ftl_get_stats(ftl, &st);
		if (st.segments_gc_pending > 0 && op % EVERY != EVERY - 1)
			return true;
	}
	return false;
}

static void check_reads(struct ftl *ftl, const struct ftl_addr *a, const uint32_t *ver)
{
	uint8_t want[CLEN], got[CLEN];
	for (uint32_t k = 0; k < KEYS; k++) {
		fill(want, k, ver[k]);
		cr_assert_eq(ftl_read(ftl, a[k], got, CLEN, NULL), CLEN, "key %u", k);
		cr_assert_eq(memcmp(want, got, CLEN), 0, "key %u", k);
	}
}

/* A victim whose copies are still in a GC pack buffer is neither freed nor a victim again;
 * a power cut then leaves its old copies, so everything acknowledged reads back. */
Test(ftl_crash, cut_while_a_cleaned_victim_waits_for_its_copies, .timeout = 60)
{
	struct ftl_dev *dev;
	struct ftl *ftl;
	struct state *s = calloc(1, sizeof(*s));
	uint64_t rng = 777;
	fresh_ftl(&dev, &ftl);
	cr_assert(run_until_gc_pending(ftl, s, &rng), "GC never left a victim waiting");
	/* Readable meanwhile: the copies from the GC stream's buffer. */
	check_reads(ftl, s->cur, s->cur_ver);
	cr_assert_eq(ftl_dev_mem_power_cut_after(dev, 0, false), 0);
	ftl_close(ftl); /* nothing it writes lands */
	cr_assert_eq(ftl_dev_mem_revive(dev), 0);
	cr_assert_eq(ftl_open(&(struct ftl_config){.dev = dev}, &ftl), 0);
	check_reads(ftl, s->ack, s->ack_ver);
	ftl_close(ftl);
	ftl_dev_close(dev);
	free(s);
}

/* ftl_gc and a clean close free the waiting victims: callers of ftl_gc count on the space. */
Test(ftl_crash, gc_and_close_free_waiting_victims, .timeout = 60)
{
	struct ftl_dev *dev;
	struct ftl *ftl;
	struct state *s = calloc(1, sizeof(*s));
	uint64_t rng = 4242;
	struct ftl_stats st;
	fresh_ftl(&dev, &ftl);
	cr_assert(run_until_gc_pending(ftl, s, &rng), "GC never left a victim waiting");
	cr_assert_geq(ftl_gc(ftl, 1), 0);
	ftl_get_stats(ftl, &st);
	cr_assert_eq(st.segments_gc_pending, 0);
	check_reads(ftl, s->cur, s->cur_ver);
	cr_assert(run_until_gc_pending(ftl, s, &rng), "GC never left a victim waiting again");
	cr_assert_eq(ftl_sync(ftl), 0);
	struct ftl_stats before;
	ftl_get_stats(ftl, &before);
	cr_assert_gt(before.segments_gc_pending, 0);
	ftl_close(ftl);
	cr_assert_eq(ftl_open(&(struct ftl_config){.dev = dev}, &ftl), 0);
	ftl_get_stats(ftl, &st);
	/* Freed at close, not left closed for a GC to find empty after the open: the open
	 * segments (synced, so holding packs) are closed now, the waiting victims free. */
	cr_assert_leq(st.segments_closed,
	              before.segments_closed + before.segments_open - before.segments_gc_pending);
	check_reads(ftl, s->cur, s->cur_ver);
	ftl_close(ftl);
	ftl_dev_close(dev);
	free(s);
}
