/* tests/flash/test_ftl_scrub.c - criterion suite for ftl_scrub: bit rot in a chunk payload, a
 * chunk header, a pack summary or a segment header, unreadable blocks, cancellation, and scrubs
 * racing writers and GC. Each test finds its targets on the in-memory device by their bytes.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "ftl.h"
#include "ftl_dev_fault.h"
#include "ftl_format.h"

#define SCRUB_PACKS     3 /* packs written by fill_packs, one ftl_sync each */
#define SCRUB_PER_PACK  8
#define SCRUB_CHUNK_LEN 3000

struct sfx {
	struct ftl_dev *dev;
	struct ftl *ftl;
	struct ftl_addr a[SCRUB_PACKS][SCRUB_PER_PACK];
};

/* Content and tag are functions of the key, so every chunk can be found and checked. */
static void sfill(uint8_t *buf, uint32_t len, uint64_t key)
{
	uint64_t s = key * 0x9e3779b97f4a7c15ull + 77;
	for (uint32_t i = 0; i < len; i++) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		buf[i] = (uint8_t)s;
	}
}

static void stag(uint8_t h[FTL_HASH_LEN], uint64_t key)
{
	sfill(h, FTL_HASH_LEN, key ^ 0x5555aaaa5555aaaaull);
}

static uint64_t key_of(int pack, int i)
{
	return (uint64_t)pack * 1000 + (uint64_t)i + 1;
}

static void sfx_open(struct sfx *fx, bool gc_thread)
{
	struct ftl_format_params p = {.segment_size = 256 << 10, .meta_blocks = 256};
	struct ftl_config cfg = {.gc_thread = gc_thread};

	if (!fx->dev) {
		cr_assert_eq(ftl_dev_open_mem(16 << 20, 4096, &fx->dev), 0);
		cr_assert_eq(ftl_format(fx->dev, &p), 0);
	}
	cfg.dev = fx->dev;
	cr_assert_eq(ftl_open(&cfg, &fx->ftl), 0);
}

static void sfx_close(struct sfx *fx)
{
	ftl_close(fx->ftl);
	ftl_dev_close(fx->dev);
	memset(fx, 0, sizeof(*fx));
}

/* SCRUB_PACKS packs of SCRUB_PER_PACK chunks each, all on the device. */
static void fill_packs(struct sfx *fx)
{
	uint8_t buf[SCRUB_CHUNK_LEN], h[FTL_HASH_LEN];

	for (int p = 0; p < SCRUB_PACKS; p++) {
		for (int i = 0; i < SCRUB_PER_PACK; i++) {
			sfill(buf, sizeof(buf), key_of(p, i));
			stag(h, key_of(p, i));
			cr_assert_eq(ftl_write(fx->ftl, buf, sizeof(buf), h, NULL, &fx->a[p][i]),
			             0);
		}
		cr_assert_eq(ftl_sync(fx->ftl), 0);
	}
}

/* Device offset of LEN bytes (8-byte aligned on the device), or UINT64_MAX. */
static uint64_t sfind(struct ftl_dev *dev, const uint8_t *pat, size_t len)
{
	const size_t step = 1 << 20;
	uint8_t *blk = malloc(step);
	uint64_t found = UINT64_MAX;

	for (uint64_t off = 0; off < ftl_dev_size(dev) && found == UINT64_MAX; off += step) {
		cr_assert_eq(ftl_dev_read(dev, blk, step, off), 0);
		for (size_t i = 0; i + len <= step; i += 8)
			if (!memcmp(blk + i, pat, len)) {
				found = off + i;
				break;
			}
	}
	free(blk);
	return found;
}

static uint64_t payload_off(struct sfx *fx, int pack, int i)
{
	uint8_t buf[64];
	sfill(buf, sizeof(buf), key_of(pack, i));
	uint64_t off = sfind(fx->dev, buf, sizeof(buf));
	cr_assert_neq(off, UINT64_MAX, "payload of %d/%d not on the device", pack, i);
	return off;
}

/* Offset of the summary entry of chunk (PACK, I): its hash sits 16 bytes in. */
static uint64_t entry_off(struct sfx *fx, int pack, int i)
{
	uint8_t h[FTL_HASH_LEN];
	stag(h, key_of(pack, i));
	uint64_t off = sfind(fx->dev, h, sizeof(h));
	cr_assert_neq(off, UINT64_MAX, "summary entry of %d/%d not on the device", pack, i);
	return off - 16;
}

static bool reads_back(struct sfx *fx, int pack, int i)
{
	uint8_t want[SCRUB_CHUNK_LEN], got[FTL_CHUNK_MAX];
	sfill(want, sizeof(want), key_of(pack, i));
	/* From the device, which these tests damage: the packs just written are also kept in
	 * memory, and those bytes would read fine. */
	ftl_read_device_only(true);
	int n = ftl_read(fx->ftl, fx->a[pack][i], got, sizeof(got), NULL);
	ftl_read_device_only(false);
	if (n == -EIO)
		return false;
	cr_assert_eq(n, SCRUB_CHUNK_LEN, "read of %d/%d: %d", pack, i, n);
	cr_assert_eq(memcmp(want, got, sizeof(want)), 0, "wrong bytes from %d/%d", pack, i);
	return true;
}

static bool listed(const struct ftl_scrub_result *r, struct ftl_addr a, enum ftl_scrub_kind k)
{
	for (uint32_t i = 0; i < r->nlisted; i++)
		if (r->damaged[i].addr.v == a.v && r->damaged[i].kind == k)
			return true;
	return false;
}

static void scrub_ok(struct sfx *fx, struct ftl_scrub_result *r)
{
	int rc = ftl_scrub(fx->ftl, NULL, NULL, r);
	cr_assert_eq(rc, 0, "scrub: %d", rc);
	cr_assert_eq(r->segments_done, r->segments_total);
}

Test(ftl_scrub, clean_device_reports_nothing_and_checks_every_live_chunk)
{
	struct sfx fx = {0};
	struct ftl_scrub_result *r = calloc(1, sizeof(*r));

	sfx_open(&fx, false);
	fill_packs(&fx);
	cr_assert_eq(ftl_free(fx.ftl, fx.a[1][2]), 0); /* dead chunks are not checked */
	scrub_ok(&fx, r);
	cr_assert_eq(r->chunks_checked, SCRUB_PACKS * SCRUB_PER_PACK - 1);
	cr_assert_eq(r->damaged_chunks + r->lost_chunks + r->summary_chunks + r->summary_errors +
	                 r->unreadable_ranges,
	             0);
	cr_assert_eq(r->nlisted, 0);
	cr_assert_geq(r->bytes_checked, SCRUB_PACKS * SCRUB_PER_PACK * SCRUB_CHUNK_LEN);
	free(r);
	sfx_close(&fx);
}

Test(ftl_scrub, flipped_payload_bit_is_found_and_reads_give_eio)
{
	struct sfx fx = {0};
	struct ftl_scrub_result *r = calloc(1, sizeof(*r));
	struct ftl_stats st;

	sfx_open(&fx, false);
	fill_packs(&fx);
	cr_assert_eq(ftl_dev_mem_flip_bit(fx.dev, payload_off(&fx, 1, 3) + 1234, 5), 0);
	cr_assert_eq(ftl_dev_mem_flip_bit(fx.dev, payload_off(&fx, 2, 7) + 2999, 0), 0);
	scrub_ok(&fx, r);
	cr_assert_eq(r->damaged_chunks, 2);
	cr_assert_eq(r->nlisted, 2);
	cr_assert(listed(r, fx.a[1][3], FTL_SCRUB_DATA));
	cr_assert(listed(r, fx.a[2][7], FTL_SCRUB_DATA));
	cr_assert_eq(r->summary_errors + r->summary_chunks + r->lost_chunks, 0);
	cr_assert_eq(r->chunks_checked, SCRUB_PACKS * SCRUB_PER_PACK);
	/* The scrub counted them as an ordinary read would: once each. */
	ftl_get_stats(fx.ftl, &st);
	cr_assert_eq(st.checksum_errors, 2);
	cr_assert_eq(st.read_errors, 2);
	for (int p = 0; p < SCRUB_PACKS; p++)
		for (int i = 0; i < SCRUB_PER_PACK; i++)
			cr_assert_eq(reads_back(&fx, p, i),
			             !((p == 1 && i == 3) || (p == 2 && i == 7)), "chunk %d/%d", p,
			             i);
	ftl_get_stats(fx.ftl, &st);
	cr_assert_eq(st.checksum_errors, 4);
	free(r);
	sfx_close(&fx);
}

Test(ftl_scrub, flipped_chunk_header_bits_are_found)
{
	struct sfx fx = {0};
	struct ftl_scrub_result *r = calloc(1, sizeof(*r));

	sfx_open(&fx, false);
	fill_packs(&fx);
	/* Chunk header: crc (bytes 0-3), entry (4-5), flags (6), reserved (7). */
	cr_assert_eq(ftl_dev_mem_flip_bit(fx.dev, payload_off(&fx, 0, 0) - 8 + 2, 1), 0);
	cr_assert_eq(ftl_dev_mem_flip_bit(fx.dev, payload_off(&fx, 2, 4) - 8 + 6, 7), 0);
	scrub_ok(&fx, r);
	cr_assert_eq(r->damaged_chunks, 2);
	cr_assert(listed(r, fx.a[0][0], FTL_SCRUB_DATA));
	cr_assert(listed(r, fx.a[2][4], FTL_SCRUB_DATA));
	cr_assert_not(reads_back(&fx, 0, 0));
	cr_assert_not(reads_back(&fx, 2, 4));
	cr_assert(reads_back(&fx, 0, 1));
	cr_assert(reads_back(&fx, 2, 5));

	/* The entry index is outside the crc: the data still reads, and so does the hash (the
	 * pack header cache finds the entry by the chunk's offset, not by that index). */
	cr_assert_eq(ftl_dev_mem_flip_bit(fx.dev, payload_off(&fx, 1, 6) - 8 + 4, 4), 0);
	scrub_ok(&fx, r);
	cr_assert_eq(r->damaged_chunks, 2);
	cr_assert_eq(r->summary_chunks, 1);
	cr_assert(listed(r, fx.a[1][6], FTL_SCRUB_SUMMARY));
	cr_assert(reads_back(&fx, 1, 6));
	uint8_t h[FTL_HASH_LEN], want[FTL_HASH_LEN];
	/* A reopen forgets the summaries of the packs just written, which ftl_read_hash would
	 * take from RAM: the hash then comes from the device, found by the chunk's offset in the
	 * pack although its header's entry index is damaged. */
	ftl_close(fx.ftl);
	sfx_open(&fx, false);
	cr_assert_eq(ftl_read_hash(fx.ftl, fx.a[1][6], h), 0);
	stag(want, key_of(1, 6));
	cr_assert_eq(memcmp(h, want, sizeof(h)), 0);
	free(r);
	sfx_close(&fx);
}

Test(ftl_scrub, flipped_summary_bit_marks_exactly_that_packs_chunks)
{
	struct sfx fx = {0};
	struct ftl_scrub_result *r = calloc(1, sizeof(*r));
	uint8_t h[FTL_HASH_LEN], want[FTL_HASH_LEN];

	sfx_open(&fx, false);
	fill_packs(&fx);
	cr_assert_eq(ftl_free(fx.ftl, fx.a[1][0]), 0);
	/* The id of entry 5 of pack 1: the pack's crc fails, and that entry no longer names its
	 * chunk. Its data is intact. */
	cr_assert_eq(ftl_dev_mem_flip_bit(fx.dev, entry_off(&fx, 1, 5), 2), 0);
	scrub_ok(&fx, r);
	cr_assert_eq(r->summary_errors, 1);
	cr_assert_eq(r->damaged_chunks, 0);
	cr_assert_eq(r->summary_chunks, SCRUB_PER_PACK - 1); /* the live ones of pack 1 */
	for (int i = 1; i < SCRUB_PER_PACK; i++)
		cr_assert(listed(r, fx.a[1][i], FTL_SCRUB_SUMMARY), "chunk 1/%d", i);
	cr_assert_eq(r->nlisted, SCRUB_PER_PACK - 1);
	/* Reads never needed the summary: every live chunk reads back exactly. */
	for (int p = 0; p < SCRUB_PACKS; p++)
		for (int i = 0; i < SCRUB_PER_PACK; i++)
			if (p != 1 || i != 0)
				cr_assert(reads_back(&fx, p, i), "chunk %d/%d", p, i);
	struct ftl_stats st;
	ftl_get_stats(fx.ftl, &st);
	cr_assert_eq(st.checksum_errors, 1);
	/* The hash is read from the entry, which no longer names the chunk, once a reopen has
	 * forgotten the summaries of the packs just written (ftl_read_hash would take it from
	 * RAM). */
	ftl_close(fx.ftl);
	sfx_open(&fx, false);
	cr_assert_eq(ftl_read_hash(fx.ftl, fx.a[1][5], h), -EIO);
	cr_assert_eq(ftl_read_hash(fx.ftl, fx.a[1][4], h), 0);
	stag(want, key_of(1, 4));
	cr_assert_eq(memcmp(h, want, sizeof(h)), 0);
	free(r);
	sfx_close(&fx);
}

Test(ftl_scrub, flipped_segment_header_bit_puts_the_segments_chunks_at_risk)
{
	struct sfx fx = {0};
	struct ftl_scrub_result *r = calloc(1, sizeof(*r));

	sfx_open(&fx, false);
	fill_packs(&fx);
	/* All three packs went to one segment: its header is the block before pack 0. */
	uint64_t seg0 = (entry_off(&fx, 0, 0) - 64) / 4096 * 4096 - 4096;
	cr_assert_eq(ftl_dev_mem_flip_bit(fx.dev, seg0 + 20, 3), 0); /* in the uuid */
	cr_assert_eq(ftl_dev_mem_flip_bit(fx.dev, payload_off(&fx, 2, 2) + 9, 3), 0);
	scrub_ok(&fx, r);
	cr_assert_eq(r->summary_errors, 1);
	cr_assert_eq(r->damaged_chunks, 1);
	cr_assert(listed(r, fx.a[2][2], FTL_SCRUB_DATA));
	cr_assert_eq(r->summary_chunks, SCRUB_PACKS * SCRUB_PER_PACK - 1);
	cr_assert_eq(r->chunks_checked, SCRUB_PACKS * SCRUB_PER_PACK);
	free(r);
	sfx_close(&fx);
}

Test(ftl_scrub, unreadable_blocks_are_located)
{
	struct sfx fx = {0};
	struct ftl_scrub_result *r = calloc(1, sizeof(*r));

	sfx_open(&fx, false);
	fill_packs(&fx);
	uint64_t off = payload_off(&fx, 0, 4);
	cr_assert_eq(ftl_dev_mem_inject(fx.dev, FTL_FAULT_READ_EIO, off & ~4095ull, 4096, 1000), 0);
	scrub_ok(&fx, r);
	cr_assert_eq(r->unreadable_ranges, 1);
	cr_assert_eq(r->unreadable_bytes, 4096);
	cr_assert_geq(r->damaged_chunks, 1);
	cr_assert(listed(r, fx.a[0][4], FTL_SCRUB_UNREADABLE));
	for (uint32_t i = 0; i < r->nlisted; i++)
		cr_assert_eq(r->damaged[i].kind, FTL_SCRUB_UNREADABLE);
	cr_assert_not(reads_back(&fx, 0, 4));
	cr_assert(reads_back(&fx, 1, 4));
	free(r);
	sfx_close(&fx);
}

/* A chunk damaged while the FTL was closed: the scan at open either drops it (its id then has
 * no live chunk: reads give -ENOENT and the scrub reports the damaged copy as lost) or keeps it
 * so its id stays taken (reads give -EIO, the scrub reports it as damaged data). Never data. */
Test(ftl_scrub, chunk_damaged_while_closed_is_found_after_open)
{
	struct sfx fx = {0};
	struct ftl_scrub_result *r = calloc(1, sizeof(*r));
	uint8_t got[FTL_CHUNK_MAX];

	sfx_open(&fx, false);
	fill_packs(&fx);
	cr_assert_eq(ftl_dev_mem_flip_bit(fx.dev, payload_off(&fx, 1, 1) + 100, 6), 0);
	ftl_close(fx.ftl);
	fx.ftl = NULL;
	sfx_open(&fx, false);
	int n = ftl_read(fx.ftl, fx.a[1][1], got, sizeof(got), NULL);
	cr_assert(n == -ENOENT || n == -EIO, "read: %d", n);
	scrub_ok(&fx, r);
	if (n == -ENOENT) {
		cr_assert_eq(r->lost_chunks, 1);
		cr_assert_eq(r->damaged_chunks, 0);
		cr_assert(listed(r, fx.a[1][1], FTL_SCRUB_LOST));
		cr_assert_eq(r->chunks_checked, SCRUB_PACKS * SCRUB_PER_PACK - 1);
	} else {
		cr_assert_eq(r->lost_chunks, 0);
		cr_assert_eq(r->damaged_chunks, 1);
		cr_assert(listed(r, fx.a[1][1], FTL_SCRUB_DATA));
		cr_assert_eq(r->chunks_checked, SCRUB_PACKS * SCRUB_PER_PACK);
	}
	cr_assert_eq(r->nlisted, 1);
	for (int p = 0; p < SCRUB_PACKS; p++)
		for (int i = 0; i < SCRUB_PER_PACK; i++)
			if (p != 1 || i != 1)
				cr_assert(reads_back(&fx, p, i), "chunk %d/%d", p, i);
	free(r);
	sfx_close(&fx);
}

struct stop_after {
	uint32_t segments, calls;
	uint32_t last_done;
	bool monotonic;
};

static int stop_cb(void *arg, const struct ftl_scrub_result *so_far)
{
	struct stop_after *s = arg;
	if (so_far->segments_done < s->last_done)
		s->monotonic = false;
	s->last_done = so_far->segments_done;
	s->calls++;
	return so_far->segments_done >= s->segments;
}

Test(ftl_scrub, progress_is_reported_and_a_stop_is_honoured)
{
	struct sfx fx = {0};
	struct ftl_scrub_result *r = calloc(1, sizeof(*r));
	struct stop_after s = {.segments = UINT32_MAX, .monotonic = true};

	sfx_open(&fx, false);
	fill_packs(&fx);
	cr_assert_eq(ftl_scrub(fx.ftl, stop_cb, &s, r), 0);
	cr_assert(s.monotonic);
	cr_assert_eq(s.calls, r->segments_total + 1);
	cr_assert_eq(s.last_done, r->segments_total);

	s = (struct stop_after){.segments = 5, .monotonic = true};
	cr_assert_eq(ftl_scrub(fx.ftl, stop_cb, &s, r), -ECANCELED);
	cr_assert_eq(r->segments_done, 5);
	free(r);
	sfx_close(&fx);
}

/* Writers overwrite and free while the GC thread cleans; scrubs run all along. A race must
 * never be reported as damage, and nothing a scrub does may disturb a reader. */
struct race {
	struct ftl *ftl;
	_Atomic bool stop;
	int seed;
};

#define RACE_KEYS 600

static void *race_writer(void *arg)
{
	struct race *rc = arg;
	struct ftl_addr addr[RACE_KEYS / 2];
	uint32_t ver[RACE_KEYS / 2] = {0};
	uint8_t buf[4096], got[FTL_CHUNK_MAX], h[FTL_HASH_LEN] = {0};
	uint64_t s = (uint64_t)rc->seed * 7919 + 1;
	int n = RACE_KEYS / 2;

	for (int k = 0; k < n; k++) {
		sfill(buf, sizeof(buf), (uint64_t)rc->seed << 32 | (uint64_t)k << 8);
		cr_assert_eq(ftl_write(rc->ftl, buf, sizeof(buf), h, NULL, &addr[k]), 0);
	}
	while (!atomic_load(&rc->stop)) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		int k = (int)(s % (uint64_t)n);
		struct ftl_write_opts o = {.prev = addr[k]};
		struct ftl_addr na;
		ver[k]++;
		sfill(buf, sizeof(buf),
		      (uint64_t)rc->seed << 32 | (uint64_t)k << 8 | (ver[k] & 255));
		int w = ftl_write(rc->ftl, buf, sizeof(buf), h, &o, &na);
		cr_assert_eq(w, 0, "write: %d", w);
		cr_assert_eq(ftl_free(rc->ftl, addr[k]), 0);
		addr[k] = na;
		int j = (int)((s >> 20) % (uint64_t)n);
		sfill(buf, sizeof(buf),
		      (uint64_t)rc->seed << 32 | (uint64_t)j << 8 | (ver[j] & 255));
		cr_assert_eq(ftl_read(rc->ftl, addr[j], got, sizeof(got), NULL), 4096);
		cr_assert_eq(memcmp(buf, got, sizeof(buf)), 0);
		if ((s & 63) == 0)
			cr_assert_eq(ftl_sync(rc->ftl), 0);
	}
	return NULL;
}

Test(ftl_scrub, scrubs_racing_writers_and_gc_report_no_damage, .timeout = 120)
{
	struct sfx fx = {0};
	struct ftl_scrub_result *r = calloc(1, sizeof(*r));
	struct race rc[2];
	pthread_t t[2];
	struct ftl_stats st;

	sfx_open(&fx, true);
	for (int i = 0; i < 2; i++) {
		rc[i] = (struct race){.ftl = fx.ftl, .seed = i + 1};
		cr_assert_eq(pthread_create(&t[i], NULL, race_writer, &rc[i]), 0);
	}
	/* Until GC has freed segments under the scrubs a good number of times (about 1000 GC
	 * runs in 500 passes here). */
	uint64_t checked = 0;
	for (int pass = 0; pass < 5000; pass++) {
		scrub_ok(&fx, r);
		cr_assert_eq(r->damaged_chunks + r->lost_chunks + r->summary_chunks +
		                 r->summary_errors + r->unreadable_ranges,
		             0, "pass %d: %u listed", pass, r->nlisted);
		checked += r->chunks_checked;
		ftl_get_stats(fx.ftl, &st);
		if (pass >= 500 && st.gc_runs >= 1000)
			break;
	}
	for (int i = 0; i < 2; i++) {
		atomic_store(&rc[i].stop, true);
		pthread_join(t[i], NULL);
	}
	ftl_get_stats(fx.ftl, &st);
	cr_assert_gt(st.gc_runs, 0, "GC never ran: the race was not exercised");
	cr_assert_gt(checked, 0);
	cr_assert_eq(st.checksum_errors, 0);
	free(r);
	sfx_close(&fx);
}

/* Device offset of the first block of checkpoint segment part 0 (its header), found by reading
 * every segment header; UINT64_MAX when there is none. */
static uint64_t ckpt_seg_off(struct sfx *fx)
{
	struct ftl_superblock_info sb;
	uint8_t blk[4096];

	cr_assert_eq(ftl_read_superblock(fx->dev, &sb), 0);
	for (uint32_t i = 0; i < sb.segment_count; i++) {
		uint64_t off = sb.data_offset + (uint64_t)i * sb.segment_size;
		cr_assert_eq(ftl_dev_read(fx->dev, blk, sizeof(blk), off), 0);
		struct ftl_seg_disk h;
		memcpy(&h, blk, sizeof(h));
		if (h.magic == FTL_SEG_MAGIC && h.state == FTL_SEG_DISK_OPEN &&
		    h.stream == FTL_SEG_STREAM_CKPT && h.ckpt_part == 0)
			return off;
	}
	return UINT64_MAX;
}

Test(ftl_scrub, checkpoint_segments_are_checked_and_damage_counted)
{
	struct sfx fx = {0};
	struct ftl_scrub_result *r = calloc(1, sizeof(*r));
	struct ftl_stats st;

	sfx_open(&fx, false);
	fill_packs(&fx);
	cr_assert_eq(ftl_checkpoint(fx.ftl), 0);
	ftl_get_stats(fx.ftl, &st);
	cr_assert_geq(st.segments_ckpt, 1);
	uint64_t errs = st.checksum_errors;
	scrub_ok(&fx, r);
	cr_assert_eq(r->ckpt_segments, st.segments_ckpt);
	cr_assert_eq(r->ckpt_errors, 0);
	ftl_get_stats(fx.ftl, &st);
	cr_assert_eq(st.checksum_errors, errs);

	/* Bit rot in the checkpoint's contents (its L2P, well past the 144-byte header). */
	uint64_t off = ckpt_seg_off(&fx);
	cr_assert_neq(off, UINT64_MAX, "no checkpoint segment on the device");
	cr_assert_eq(ftl_dev_mem_flip_bit(fx.dev, off + 4096 + 300, 5), 0);
	scrub_ok(&fx, r);
	ftl_get_stats(fx.ftl, &st);
	cr_assert_eq(st.checksum_errors, errs + 1, "checkpoint damage not counted");
	cr_assert_eq(r->ckpt_errors, 1);
	cr_assert_eq(r->damaged_chunks, 0);
	/* The chunks are sound; only the checkpoint is not: the next open passes over it. */
	for (int p = 0; p < SCRUB_PACKS; p++)
		for (int i = 0; i < SCRUB_PER_PACK; i++)
			cr_assert(reads_back(&fx, p, i));

	/* And a damaged header of a checkpoint segment. */
	cr_assert_eq(ftl_dev_mem_flip_bit(fx.dev, off + 20, 1), 0); /* in the uuid */
	scrub_ok(&fx, r);
	cr_assert_eq(r->ckpt_errors, 2);
	free(r);
	sfx_close(&fx);
}
