/* tests/flash/test_ftl_ckpt.c - the FTL's checkpoint: an open that starts from it walks only
 * what was written since, finds everything a full scan finds that is live, and survives power
 * cuts anywhere, inside the checkpoint's own writes too; a damaged one is passed over.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ftl.h"
#include "ftl_dev_fault.h"
#include "ftl_format.h"

#define SEG   (256u << 10)
#define CLEN  3000
#define KEYS  900
#define OPS   6000
#define EVERY 37

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

/* The hash we give each chunk: derived from key and version, so a report can be checked. */
static void hash_of(uint8_t *h, uint32_t key, uint32_t ver)
{
	memset(h, 0, FTL_HASH_LEN);
	fill(h, FTL_HASH_LEN, key ^ 0x5a5a5a5a, ver);
}

static void fresh(uint64_t size, struct ftl_dev **dev, struct ftl **ftl)
{
	cr_assert_eq(ftl_dev_open_mem(size, 4096, dev), 0);
	struct ftl_format_params p = {.segment_size = SEG, .meta_blocks = 256};
	cr_assert_eq(ftl_format(*dev, &p), 0);
	cr_assert_eq(ftl_open(&(struct ftl_config){.dev = *dev}, ftl), 0);
}

/* What an open reported, by chunk id. */
struct seen {
	uint32_t n, prefix_only, bad;
	uint8_t *hit;
	uint8_t (*hash)[FTL_HASH_LEN];
	uint32_t *len;
	uint8_t *flags;
	uint64_t cap;
};

static int seen_cb(void *arg, struct ftl_addr a, const uint8_t *hash, uint32_t hash_len,
                   uint32_t len, uint8_t flags)
{
	struct seen *s = arg;
	if (a.v >= s->cap || s->hit[a.v]) {
		s->bad++;
		return 0;
	}
	s->hit[a.v] = 1;
	memcpy(s->hash[a.v], hash, FTL_HASH_LEN);
	s->len[a.v] = len;
	s->flags[a.v] = flags;
	s->prefix_only += hash_len < FTL_HASH_LEN;
	if (hash_len < FTL_HASH_LEN)
		for (uint32_t i = hash_len; i < FTL_HASH_LEN; i++)
			s->bad += hash[i] != 0;
	s->n++;
	return 0;
}

static void seen_init(struct seen *s, uint64_t cap)
{
	memset(s, 0, sizeof(*s));
	s->cap = cap;
	s->hit = calloc(cap, 1);
	s->hash = calloc(cap, FTL_HASH_LEN);
	s->len = calloc(cap, sizeof(uint32_t));
	s->flags = calloc(cap, 1);
}

static void seen_free(struct seen *s)
{
	free(s->hit);
	free(s->hash);
	free(s->len);
	free(s->flags);
}

static int open_seen(struct ftl_dev *dev, bool full, struct seen *s, struct ftl **ftl)
{
	struct ftl_config c = {.dev = dev, .scan_cb = seen_cb, .scan_arg = s, .full_scan = full};
	return ftl_open(&c, ftl);
}

/* A second memory device with the same durable bytes. */
static struct ftl_dev *clone_dev(struct ftl_dev *dev)
{
	uint64_t size = ftl_dev_size(dev);
	struct ftl_dev *c;
	cr_assert_eq(ftl_dev_open_mem(size, 4096, &c), 0);
	uint8_t *buf = aligned_alloc(4096, 1 << 20);
	for (uint64_t off = 0; off < size; off += 1 << 20) {
		uint64_t n = size - off < (1 << 20) ? size - off : (1 << 20);
		cr_assert_eq(ftl_dev_read(dev, buf, n, off), 0);
		cr_assert_eq(ftl_dev_write(c, buf, n, off), 0);
	}
	cr_assert_eq(ftl_dev_flush(c), 0);
	free(buf);
	return c;
}

Test(ftl_ckpt, close_writes_one_and_open_walks_nothing)
{
	struct ftl_dev *dev;
	struct ftl *ftl;
	fresh(64 << 20, &dev, &ftl);
	uint8_t buf[CLEN], h[FTL_HASH_LEN];
	struct ftl_addr a[KEYS];
	for (uint32_t k = 0; k < KEYS; k++) {
		fill(buf, CLEN, k, 0);
		hash_of(h, k, 0);
		struct ftl_write_opts o = {.prev = FTL_ADDR_NONE, .flags = (uint8_t)(k % 5)};
		cr_assert_eq(ftl_write(ftl, buf, CLEN, h, &o, &a[k]), 0);
	}
	for (uint32_t k = 0; k < KEYS; k += 3)
		cr_assert_eq(ftl_free(ftl, a[k]), 0);
	ftl_close(ftl);

	struct seen s;
	seen_init(&s, 1 << 16);
	cr_assert_eq(open_seen(dev, false, &s, &ftl), 0);
	struct ftl_stats st;
	ftl_get_stats(ftl, &st);
	cr_assert(st.open_from_ckpt, "the close wrote a checkpoint and the open used it");
	cr_assert_eq(st.segments_ckpt, 1);
	cr_assert_eq(s.bad, 0);
	cr_assert_eq(s.n, KEYS - KEYS / 3, "live chunks reported: %u", s.n);
	cr_assert_eq(s.prefix_only, s.n, "nothing was walked, so every hash is a prefix");
	for (uint32_t k = 0; k < KEYS; k++) {
		bool live = k % 3 != 0;
		cr_assert_eq(s.hit[a[k].v], live, "key %u", k);
		if (!live)
			continue;
		hash_of(h, k, 0);
		cr_assert_eq(memcmp(s.hash[a[k].v], h, FTL_SCAN_HASH_PREFIX), 0);
		cr_assert_eq(s.len[a[k].v], CLEN);
		cr_assert_eq(s.flags[a[k].v], k % 5);
		uint8_t got[CLEN];
		fill(buf, CLEN, k, 0);
		cr_assert_eq(ftl_read(ftl, a[k], got, CLEN, NULL), CLEN);
		cr_assert_eq(memcmp(got, buf, CLEN), 0);
		uint8_t full[FTL_HASH_LEN];
		cr_assert_eq(ftl_read_hash(ftl, a[k], full), 0, "pack offsets came back too");
		cr_assert_eq(memcmp(full, h, FTL_HASH_LEN), 0);
	}
	cr_assert_eq(st.chunks_live, KEYS - KEYS / 3);
	ftl_close(ftl);
	seen_free(&s);
	ftl_dev_close(dev);
}

Test(ftl_ckpt, open_walks_only_segments_written_since)
{
	struct ftl_dev *dev;
	struct ftl *ftl;
	fresh(64 << 20, &dev, &ftl);
	uint8_t buf[CLEN], h[FTL_HASH_LEN] = {0};
	static struct ftl_addr a[8000];
	for (uint32_t k = 0; k < 8000; k++) {
		fill(buf, CLEN, k, 1);
		hash_of(h, k, 1);
		cr_assert_eq(ftl_write(ftl, buf, CLEN, h, NULL, &a[k]), 0);
	}
	cr_assert_eq(ftl_checkpoint(ftl), 0);
	struct ftl_stats st;
	ftl_get_stats(ftl, &st);
	uint32_t used = st.segments_open + st.segments_closed;
	cr_assert_gt(used, 80, "the data spans many segments (%u)", used);
	/* A little more after the checkpoint, synced, then the power goes. */
	static struct ftl_addr old[200];
	for (uint32_t k = 0; k < 200; k++) {
		fill(buf, CLEN, k, 2);
		hash_of(h, k, 2);
		struct ftl_write_opts o = {.prev = a[k]};
		old[k] = a[k];
		cr_assert_eq(ftl_write(ftl, buf, CLEN, h, &o, &a[k]), 0);
	}
	for (uint32_t k = 0; k < 200; k++) /* these come back after the cut */
		cr_assert_eq(ftl_free(ftl, old[k]), 0);
	cr_assert_eq(ftl_sync(ftl), 0);
	cr_assert_eq(ftl_dev_mem_power_cut_after(dev, 0, false), 0);
	ftl_close(ftl);
	cr_assert_eq(ftl_dev_mem_revive(dev), 0);

	struct seen s;
	seen_init(&s, 1 << 16);
	cr_assert_eq(open_seen(dev, false, &s, &ftl), 0);
	ftl_get_stats(ftl, &st);
	cr_assert(st.open_from_ckpt);
	cr_assert_leq(st.open_segs_walked, 10, "walked %llu of %u segments",
	              (unsigned long long)st.open_segs_walked, used);
	cr_assert_eq(s.bad, 0);
	for (uint32_t k = 0; k < 8000; k++) {
		uint32_t ver = k < 200 ? 2 : 1;
		uint8_t got[CLEN];
		fill(buf, CLEN, k, ver);
		cr_assert_eq(ftl_read(ftl, a[k], got, CLEN, NULL), CLEN, "key %u", k);
		cr_assert_eq(memcmp(got, buf, CLEN), 0, "key %u", k);
		cr_assert(s.hit[a[k].v]);
		hash_of(h, k, ver);
		/* Written since the checkpoint: read from the summaries, whole hash. */
		cr_assert_eq(
		    memcmp(s.hash[a[k].v], h, k < 200 ? FTL_HASH_LEN : FTL_SCAN_HASH_PREFIX), 0,
		    "key %u", k);
	}
	/* The 200 freed after the checkpoint come back (their owner frees them again). */
	cr_assert_eq(s.n, 8000 + 200);
	ftl_close(ftl);
	seen_free(&s);
	ftl_dev_close(dev);
}

/* Flips a byte in the content of every checkpoint segment on the device. */
static int damage_checkpoints(struct ftl_dev *dev)
{
	struct ftl_superblock_info sb;
	cr_assert_eq(ftl_read_superblock(dev, &sb), 0);
	uint8_t *blk = aligned_alloc(4096, 4096);
	int n = 0;
	for (uint32_t i = 0; i < sb.segment_count; i++) {
		uint64_t off = sb.data_offset + (uint64_t)i * sb.segment_size;
		cr_assert_eq(ftl_dev_read(dev, blk, 4096, off), 0);
		const struct ftl_seg_disk *h = (const void *)blk;
		if (h->magic != FTL_SEG_MAGIC || h->stream != FTL_SEG_STREAM_CKPT)
			continue;
		cr_assert_eq(ftl_dev_mem_flip_bit(dev, off + 4096 + 300, 3), 0);
		n++;
	}
	free(blk);
	return n;
}

Test(ftl_ckpt, damaged_checkpoint_is_passed_over)
{
	struct ftl_dev *dev;
	struct ftl *ftl;
	fresh(32 << 20, &dev, &ftl);
	uint8_t buf[CLEN], h[FTL_HASH_LEN] = {0};
	struct ftl_addr a[KEYS];
	for (uint32_t k = 0; k < KEYS; k++) {
		fill(buf, CLEN, k, 0);
		cr_assert_eq(ftl_write(ftl, buf, CLEN, h, NULL, &a[k]), 0);
	}
	ftl_close(ftl);
	cr_assert_eq(damage_checkpoints(dev), 1);
	cr_assert_eq(ftl_open(&(struct ftl_config){.dev = dev}, &ftl), 0);
	struct ftl_stats st;
	ftl_get_stats(ftl, &st);
	cr_assert_not(st.open_from_ckpt, "the damaged checkpoint must not be used");
	cr_assert_eq(st.chunks_live, KEYS);
	for (uint32_t k = 0; k < KEYS; k++) {
		uint8_t got[CLEN];
		fill(buf, CLEN, k, 0);
		cr_assert_eq(ftl_read(ftl, a[k], got, CLEN, NULL), CLEN);
		cr_assert_eq(memcmp(got, buf, CLEN), 0);
	}
	ftl_close(ftl); /* writes a sound one, numbered above the damaged one */
	cr_assert_eq(ftl_open(&(struct ftl_config){.dev = dev}, &ftl), 0);
	ftl_get_stats(ftl, &st);
	cr_assert(st.open_from_ckpt);
	cr_assert_eq(st.segments_ckpt, 1, "the damaged one went back to the free pool");
	cr_assert_eq(st.chunks_live, KEYS);
	ftl_close(ftl);
	ftl_dev_close(dev);
}

/* ---- power cuts with checkpoints among the writes ------------------------------------------ */

struct state {
	struct ftl_addr cur[KEYS], ack[KEYS];
	uint32_t cur_ver[KEYS], ack_ver[KEYS];
	struct ftl_addr pending[EVERY + KEYS];
	int npending;
	bool acked;
};

/* The crash test's protocol (a replaced chunk is freed after the sync that made its successor
 * durable), with a checkpoint every few hundred writes. Runs until the device dies. */
static void workload(struct ftl *ftl, struct state *s, uint64_t *rng)
{
	uint8_t buf[CLEN], h[FTL_HASH_LEN];
	for (uint32_t k = 0; k < KEYS; k++) {
		fill(buf, CLEN, k, 0);
		hash_of(h, k, 0);
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
		uint32_t k = (uint32_t)(*rng % 3 ? (*rng >> 8) % (KEYS / 3) : (*rng >> 8) % KEYS);
		fill(buf, CLEN, k, s->cur_ver[k] + 1);
		hash_of(h, k, s->cur_ver[k] + 1);
		struct ftl_write_opts o = {.prev = s->cur[k]};
		struct ftl_addr na;
		if (ftl_write(ftl, buf, CLEN, h, &o, &na))
			return;
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
		if (op % 700 == 350) {
			int rc = ftl_checkpoint(ftl);
			if (rc && rc != -ENOSPC)
				return;
		}
	}
}

static uint64_t device_writes(struct ftl_dev *dev)
{
	struct ftl_dev_stats st;
	ftl_dev_get_stats(dev, &st);
	return st.writes;
}

struct tally {
	int rounds, acked, lost, from_ckpt, missing, mismatched;
	uint64_t walked, resurrected_by_full;
};

/* Checks one open of the crashed image: every acknowledged chunk exact. */
static void check_acked(struct ftl *ftl, const struct state *s, struct tally *t)
{
	uint8_t want[CLEN], got[CLEN];
	for (uint32_t k = 0; k < KEYS && s->acked; k++) {
		fill(want, CLEN, k, s->ack_ver[k]);
		int rc = ftl_read(ftl, s->ack[k], got, CLEN, NULL);
		if (rc != CLEN || memcmp(want, got, CLEN))
			t->lost++;
	}
}

static void cut_round(uint64_t cut, bool tear, uint64_t seed, struct tally *t)
{
	struct ftl_dev *dev;
	struct ftl *ftl;
	struct state *s = calloc(1, sizeof(*s));
	fresh(12 << 20, &dev, &ftl);
	cr_assert_eq(ftl_dev_mem_power_cut_after(dev, cut, tear), 0);
	uint64_t rng = seed;
	workload(ftl, s, &rng);
	cr_assert(ftl_dev_mem_is_dead(dev), "the cut at write %llu never came",
	          (unsigned long long)cut);
	ftl_close(ftl);
	cr_assert_eq(ftl_dev_mem_revive(dev), 0);
	struct ftl_dev *copy = clone_dev(dev);

	/* The same image opened twice: from its checkpoint, and by the full scan. */
	struct seen sc, sf;
	seen_init(&sc, 1 << 16);
	seen_init(&sf, 1 << 16);
	struct ftl *fc, *ff;
	cr_assert_eq(open_seen(dev, false, &sc, &fc), 0, "open after cut %llu",
	             (unsigned long long)cut);
	cr_assert_eq(open_seen(copy, true, &sf, &ff), 0);
	struct ftl_stats st;
	ftl_get_stats(fc, &st);
	t->rounds++;
	t->acked += s->acked;
	t->from_ckpt += st.open_from_ckpt;
	t->walked += st.open_segs_walked;
	check_acked(fc, s, t);
	check_acked(ff, s, t);
	cr_assert_eq(sc.bad + sf.bad, 0);
	/* What the checkpoint open has live, the full scan has too, same bytes and hash. A full
	 * scan may bring back more: chunks freed before the checkpoint whose copies remain. */
	uint8_t *b1 = malloc(FTL_CHUNK_MAX), *b2 = malloc(FTL_CHUNK_MAX);
	for (uint64_t id = 0; id < sc.cap; id++) {
		if (!sc.hit[id]) {
			t->resurrected_by_full += sf.hit[id];
			continue;
		}
		if (!sf.hit[id]) {
			t->missing++;
			if (getenv("PSTOR_TEST_VERBOSE")) {
				int r =
				    ftl_read(fc, (struct ftl_addr){id}, b1, FTL_CHUNK_MAX, NULL);
				int r2 =
				    ftl_read(ff, (struct ftl_addr){id}, b2, FTL_CHUNK_MAX, NULL);
				cr_log_info(
				    "cut %llu: id %llu only from the checkpoint: read %d / full %d",
				    (unsigned long long)cut, (unsigned long long)id, r, r2);
			}
			continue;
		}
		int r1 = ftl_read(fc, (struct ftl_addr){id}, b1, FTL_CHUNK_MAX, NULL);
		int r2 = ftl_read(ff, (struct ftl_addr){id}, b2, FTL_CHUNK_MAX, NULL);
		if (r1 != r2 || r1 < 0 || memcmp(b1, b2, (size_t)r1) ||
		    memcmp(sc.hash[id], sf.hash[id], FTL_SCAN_HASH_PREFIX) ||
		    sc.flags[id] != sf.flags[id] || sc.len[id] != sf.len[id])
			t->mismatched++;
	}
	free(b1);
	free(b2);
	ftl_close(fc);
	ftl_close(ff);
	seen_free(&sc);
	seen_free(&sf);
	ftl_dev_close(copy);
	ftl_dev_close(dev);
	free(s);
}

Test(ftl_ckpt, power_cuts_with_checkpoints_lose_nothing, .timeout = 600)
{
	struct ftl_dev *dev;
	struct ftl *ftl;
	struct state *s = calloc(1, sizeof(*s));
	fresh(12 << 20, &dev, &ftl);
	uint64_t rng = 777, w0 = device_writes(dev);
	workload(ftl, s, &rng);
	struct ftl_stats st;
	ftl_get_stats(ftl, &st);
	uint64_t total = device_writes(dev) - w0;
	cr_assert_gt(st.gc_runs, 10, "the workload must make GC work");
	cr_assert_gt(st.ckpt_writes, 4, "and write checkpoints (%llu, %llu skipped)",
	             (unsigned long long)st.ckpt_writes, (unsigned long long)st.ckpt_skipped);
	ftl_close(ftl);
	ftl_dev_close(dev);
	free(s);

	struct tally t = {0};
	uint64_t pick = 0xc4ec;
	/* PSTOR_CKPT_CUTS=N for a longer soak (and PSTOR_CKPT_SEED to move the cuts). */
	int cuts = getenv("PSTOR_CKPT_CUTS") ? atoi(getenv("PSTOR_CKPT_CUTS")) : 30;
	if (getenv("PSTOR_CKPT_SEED"))
		pick = strtoull(getenv("PSTOR_CKPT_SEED"), NULL, 0) | 1;
	for (int i = 0; i < cuts; i++) {
		pick ^= pick << 13;
		pick ^= pick >> 7;
		pick ^= pick << 17;
		cut_round(pick % total, i % 2, 777, &t);
	}
	if (getenv("PSTOR_TEST_VERBOSE"))
		cr_log_info("%d cuts: %d from a checkpoint, %llu segments walked, %llu chunks only "
		            "the full scan brought back",
		            t.rounds, t.from_ckpt, (unsigned long long)t.walked,
		            (unsigned long long)t.resurrected_by_full);
	cr_assert_gt(t.from_ckpt, t.rounds / 2, "most opens must start from a checkpoint");
	cr_assert_eq(t.lost, 0, "acknowledged chunks lost: %d", t.lost);
	cr_assert_eq(t.missing, 0, "chunks the checkpoint open has and the full scan does not");
	cr_assert_eq(t.mismatched, 0, "chunks that differ between the two opens");
}
