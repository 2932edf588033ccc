/* tests/flash/test_ftl.c - criterion suite for the FTL: append/read/free, GC, wear, TRIM,
 * faults, reopen by scan, superblock validation.
 *
 * Every test runs on an in-memory device so faults and power cuts can be injected.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ftl.h"
#include "ftl_dev_fault.h"
#include "ftl_int.h" /* FTL_STREAM_RECENT_BYTES */

uint32_t ftl_crc32c(uint32_t crc, const void *data, size_t len);
uint32_t ftl_crc32c_sw(uint32_t crc, const void *data, size_t len);

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

/* Content is a function of (key, version) so any chunk can be checked without keeping it. */
static void fill(uint8_t *buf, uint32_t len, uint64_t key, uint64_t version)
{
	uint64_t s = key * 0x100000001b3ull + version * 0x9e3779b97f4a7c15ull + 1;
	for (uint32_t i = 0; i < len; i++) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		buf[i] = (uint8_t)s;
	}
}

static void hash_of(uint8_t h[FTL_HASH_LEN], uint64_t key, uint64_t version)
{
	memset(h, 0, FTL_HASH_LEN);
	memcpy(h, &key, 8);
	memcpy(h + 8, &version, 8);
}

struct fixture {
	struct ftl_dev *dev;
	struct ftl *ftl;
};

static void fx_open(struct fixture *fx, uint64_t dev_size, uint64_t seg_size, bool format)
{
	int rc;
	if (!fx->dev) {
		rc = ftl_dev_open_mem(dev_size, 4096, &fx->dev);
		cr_assert_eq(rc, 0, "mem dev: %d", rc);
	}
	if (format) {
		struct ftl_format_params p = {.segment_size = seg_size, .meta_blocks = 256};
		rc = ftl_format(fx->dev, &p);
		cr_assert_eq(rc, 0, "format: %d", rc);
	}
	struct ftl_config cfg = {.dev = fx->dev};
	rc = ftl_open(&cfg, &fx->ftl);
	cr_assert_eq(rc, 0, "open: %d", rc);
}

static void fx_close(struct fixture *fx)
{
	ftl_close(fx->ftl);
	fx->ftl = NULL;
	ftl_dev_close(fx->dev);
	fx->dev = NULL;
}

/* Dedupe verification reads hashes of many chunks of one pack: the pack header cache reads
 * that header once, not two device reads per lookup. */
Test(ftl_basic, read_hash_of_one_pack_reads_its_header_once)
{
	struct fixture fx = {0};
	fx_open(&fx, 64 << 20, 1 << 20, true);
	enum { N = 64 };
	struct ftl_addr a[N];
	uint8_t buf[4096], h[FTL_HASH_LEN], hg[FTL_HASH_LEN];
	for (int i = 0; i < N; i++) {
		fill(buf, sizeof(buf), i, 0);
		hash_of(h, i, 0);
		cr_assert_eq(ftl_write(fx.ftl, buf, sizeof(buf), h, NULL, &a[i]), 0);
	}
	cr_assert_eq(ftl_sync(fx.ftl), 0); /* sealed: hashes come from the device */
	struct ftl_dev_stats before, after;
	ftl_dev_get_stats(fx.dev, &before);
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < N; i++) {
			hash_of(h, i, 0);
			cr_assert_eq(ftl_read_hash(fx.ftl, a[i], hg), 0, "chunk %d", i);
			cr_assert_eq(memcmp(h, hg, FTL_HASH_LEN), 0, "chunk %d", i);
		}
	}
	ftl_dev_get_stats(fx.dev, &after);
	/* One pack: its first header block, then the rest of its header. */
	cr_assert_leq(after.reads - before.reads, 2, "%llu device reads for %d lookups",
	              (unsigned long long)(after.reads - before.reads), 2 * N);
	fx_close(&fx);
}

/* A sequential read of chunks written together: with read-ahead one device read serves many
 * chunks, each still checked (a flipped bit in one fails that one alone). */
Test(ftl_basic, read_ahead_serves_a_run_in_few_device_reads_and_still_checks_each)
{
	struct fixture fx = {0};
	fx_open(&fx, 64 << 20, 1 << 20, true);
	enum { N = 48 };
	struct ftl_addr a[N];
	uint8_t buf[4096], got[4096], h[FTL_HASH_LEN];
	for (int i = 0; i < N; i++) {
		fill(buf, sizeof(buf), i, 1);
		hash_of(h, i, 1);
		cr_assert_eq(ftl_write(fx.ftl, buf, sizeof(buf), h, NULL, &a[i]), 0);
	}
	cr_assert_eq(ftl_sync(fx.ftl), 0);
	struct ftl_dev_stats before, after;
	ftl_dev_get_stats(fx.dev, &before);
	ftl_read_ahead(fx.ftl, 64 * 1024);
	for (int i = 0; i < N; i++) {
		fill(buf, sizeof(buf), i, 1);
		cr_assert_eq(ftl_read(fx.ftl, a[i], got, sizeof(got), NULL), 4096, "chunk %d", i);
		cr_assert_eq(memcmp(buf, got, sizeof(got)), 0, "chunk %d", i);
	}
	ftl_dev_get_stats(fx.dev, &after);
	/* 64 KiB windows of 15 chunks: 4 reads, not 48. */
	cr_assert_leq(after.reads - before.reads, 5, "%llu device reads for %d chunks",
	              (unsigned long long)(after.reads - before.reads), N);

	/* A flipped payload bit in chunk 20 (found on the device by its bytes), read through a
	 * window: that chunk fails, its neighbours in the same window read. */
	enum { SCAN = 16 << 20 };
	uint8_t *raw = malloc(SCAN);
	cr_assert_not_null(raw);
	cr_assert_eq(ftl_dev_read(fx.dev, raw, SCAN, 0), 0);
	fill(buf, sizeof(buf), 20, 1);
	uint8_t *hit = memmem(raw, SCAN, buf, 256);
	cr_assert_not_null(hit, "chunk 20 not found on the device");
	cr_assert_eq(ftl_dev_mem_flip_bit(fx.dev, (uint64_t)(hit - raw) + 100, 3), 0);
	free(raw);
	ftl_read_device_only(true); /* not the bytes of the packs just written, kept in memory */
	ftl_read_ahead(fx.ftl, 64 * 1024);
	for (int i = 16; i < 24; i++) {
		int rc = ftl_read(fx.ftl, a[i], got, sizeof(got), NULL);
		fill(buf, sizeof(buf), i, 1);
		if (i == 20) {
			cr_assert_eq(rc, -EIO);
			continue;
		}
		cr_assert_eq(rc, 4096, "chunk %d", i);
		cr_assert_eq(memcmp(buf, got, sizeof(got)), 0, "chunk %d", i);
	}
	ftl_read_ahead(fx.ftl, 0);
	struct ftl_stats st;
	ftl_get_stats(fx.ftl, &st);
	cr_assert_eq(st.checksum_errors, 1);
	fx_close(&fx);
}

/* The hash prefix a last-reference free needs comes from RAM and matches the stored hash,
 * also after a reopen from the checkpoint (which keeps only the prefix). */
Test(ftl_basic, hash_prefix_matches_the_stored_hash_without_device_reads)
{
	struct fixture fx = {0};
	fx_open(&fx, 64 << 20, 1 << 20, true);
	enum { N = 16 };
	struct ftl_addr a[N];
	uint8_t buf[512], h[FTL_HASH_LEN], p[FTL_SCAN_HASH_PREFIX];
	for (int i = 0; i < N; i++) {
		fill(buf, sizeof(buf), i, 2);
		hash_of(h, 0x0102030405ull * (i + 1), 2);
		cr_assert_eq(ftl_write(fx.ftl, buf, sizeof(buf), h, NULL, &a[i]), 0);
	}
	cr_assert_eq(ftl_free(fx.ftl, a[3]), 0);
	for (int pass = 0; pass < 2; pass++) {
		struct ftl_dev_stats before, after;
		ftl_dev_get_stats(fx.dev, &before);
		for (int i = 0; i < N; i++) {
			if (i == 3) {
				cr_assert_eq(ftl_hash_prefix(fx.ftl, a[i], p), -ENOENT);
				continue;
			}
			hash_of(h, 0x0102030405ull * (i + 1), 2);
			cr_assert_eq(ftl_hash_prefix(fx.ftl, a[i], p), 0);
			cr_assert_eq(memcmp(p, h, sizeof(p)), 0, "chunk %d pass %d", i, pass);
		}
		ftl_dev_get_stats(fx.dev, &after);
		cr_assert_eq(after.reads, before.reads);
		/* Second pass: after close (which writes a checkpoint) and open. */
		ftl_close(fx.ftl);
		fx.ftl = NULL;
		fx_open(&fx, 0, 0, false);
	}
	fx_close(&fx);
}

Test(ftl_crc, hardware_and_table_agree)
{
	/* Past three long streams (3 x 1024) and at every offset mod 8: the joined streams and
	 * the tail the hardware path runs alone, from a register that is not 0. */
	uint8_t buf[7 * 1024 + 64];
	fill(buf, sizeof(buf), 7, 7);
	for (size_t off = 0; off < 8; off++)
		for (size_t n = 0; n + off <= sizeof(buf); n += off ? 61 : 1)
			cr_assert_eq(ftl_crc32c(0x1234567u, buf + off, n),
			             ftl_crc32c_sw(0x1234567u, buf + off, n), "off %zu len %zu",
			             off, n);
	/* The standard check value of CRC-32C. */
	cr_assert_eq(ftl_crc32c(0, "123456789", 9), 0xe3069283u);
}

Test(ftl_basic, append_read_free_round_trip)
{
	struct fixture fx = {0};
	fx_open(&fx, 64 << 20, 1 << 20, true);
	static const uint32_t lens[] = {1, 7, 8, 9, 100, 4095, 4096, 4097, 30000, 65536};
	struct ftl_addr a[10];
	uint8_t *buf = malloc(FTL_CHUNK_MAX), *got = malloc(FTL_CHUNK_MAX);
	uint8_t h[FTL_HASH_LEN], hg[FTL_HASH_LEN];
	for (int i = 0; i < 10; i++) {
		fill(buf, lens[i], i, 0);
		hash_of(h, i, 0);
		struct ftl_write_opts o = {.prev = FTL_ADDR_NONE, .flags = (uint8_t)(i + 1)};
		cr_assert_eq(ftl_write(fx.ftl, buf, lens[i], h, &o, &a[i]), 0);
	}
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < 10; i++) {
			uint8_t fl = 0;
			fill(buf, lens[i], i, 0);
			memset(got, 0xaa, FTL_CHUNK_MAX);
			cr_assert_eq(ftl_read(fx.ftl, a[i], got, FTL_CHUNK_MAX, &fl), (int)lens[i]);
			cr_assert_eq(memcmp(buf, got, lens[i]), 0, "chunk %d pass %d", i, pass);
			cr_assert_eq(fl, i + 1);
			cr_assert_eq(ftl_chunk_len(fx.ftl, a[i]), (int)lens[i]);
			hash_of(h, i, 0);
			cr_assert_eq(ftl_read_hash(fx.ftl, a[i], hg), 0);
			cr_assert_eq(memcmp(h, hg, FTL_HASH_LEN), 0);
		}
		cr_assert_eq(ftl_sync(fx.ftl), 0); /* second pass reads from the device */
	}
	cr_assert_eq(ftl_read(fx.ftl, a[9], got, 100, NULL), -ENOBUFS);
	cr_assert_eq(ftl_free(fx.ftl, a[3]), 0);
	cr_assert_eq(ftl_free(fx.ftl, a[3]), -ENOENT);
	cr_assert_eq(ftl_read(fx.ftl, a[3], got, FTL_CHUNK_MAX, NULL), -ENOENT);
	cr_assert_eq(ftl_write(fx.ftl, buf, 0, h, NULL, &a[0]), -EINVAL);
	cr_assert_eq(ftl_write(fx.ftl, buf, FTL_CHUNK_MAX + 1, h, NULL, &a[0]), -EINVAL);
	struct ftl_stats st;
	ftl_get_stats(fx.ftl, &st);
	cr_assert_eq(st.chunks_live, 9);
	free(buf);
	free(got);
	fx_close(&fx);
}

/* ftl_write_many: items land in order, one pack after the other, each read back with its flags
 * and hash; a bad item refuses the whole batch before anything is written; on a full device the
 * batch that fails leaves none of its items written, and those of earlier batches stay. */
Test(ftl_basic, write_many_writes_each_item_or_none)
{
	struct fixture fx = {0};
	fx_open(&fx, 8 << 20, 256 << 10, true);
	struct ftl_write_item it[FTL_WRITE_MANY_MAX];
	static uint8_t data[FTL_WRITE_MANY_MAX][4096];
	uint8_t h[FTL_WRITE_MANY_MAX][FTL_HASH_LEN], got[4096], hg[FTL_HASH_LEN];
	struct ftl_stats st;

	for (int i = 0; i < FTL_WRITE_MANY_MAX; i++) {
		uint32_t len = 100 + 61 * (uint32_t)i; /* a mix of sizes: several chunks a block */
		fill(data[i], len, i, 7);
		hash_of(h[i], i, 7);
		it[i] =
		    (struct ftl_write_item){.data = data[i],
		                            .len = len,
		                            .hash = h[i],
		                            .opts = {.prev = FTL_ADDR_NONE, .flags = (uint8_t)i}};
	}
	cr_assert_eq(ftl_write_many(fx.ftl, it, FTL_WRITE_MANY_MAX + 1), -EINVAL);
	it[5].len = 0;
	cr_assert_eq(ftl_write_many(fx.ftl, it, FTL_WRITE_MANY_MAX), -EINVAL);
	ftl_get_stats(fx.ftl, &st);
	cr_assert_eq(st.chunks_live, 0, "a bad item: nothing written");
	it[5].len = 100 + 61 * 5;
	cr_assert_eq(ftl_write_many(fx.ftl, it, FTL_WRITE_MANY_MAX), 0);
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < FTL_WRITE_MANY_MAX; i++) {
			uint8_t fl = 0xff;
			cr_assert_eq(ftl_read(fx.ftl, it[i].out, got, sizeof(got), &fl),
			             (int)it[i].len);
			cr_assert_eq(memcmp(got, data[i], it[i].len), 0, "item %d pass %d", i,
			             pass);
			cr_assert_eq(fl, i);
			cr_assert_eq(ftl_read_hash(fx.ftl, it[i].out, hg), 0);
			cr_assert_eq(memcmp(hg, h[i], FTL_HASH_LEN), 0);
			if (i)
				cr_assert_gt(it[i].out.v, 0);
		}
		cr_assert_eq(ftl_sync(fx.ftl), 0); /* the second pass reads from the device */
	}
	/* Whole 4 KiB chunks until the device is full. */
	uint64_t before, batches = 0;
	int rc = 0;
	ftl_get_stats(fx.ftl, &st);
	before = st.chunks_live;
	for (int i = 0; i < FTL_WRITE_MANY_MAX; i++) {
		fill(data[i], 4096, 1000 + i, 0);
		it[i] = (struct ftl_write_item){
		    .data = data[i], .len = 4096, .hash = h[i], .opts = {.prev = FTL_ADDR_NONE}};
	}
	while (rc == 0 && batches < 10000) {
		rc = ftl_write_many(fx.ftl, it, FTL_WRITE_MANY_MAX);
		batches += rc == 0;
	}
	cr_assert_eq(rc, -ENOSPC, "rc %d after %llu batches", rc, (unsigned long long)batches);
	cr_assert_gt(batches, 10);
	ftl_get_stats(fx.ftl, &st);
	cr_assert_eq(st.chunks_live, before + batches * FTL_WRITE_MANY_MAX,
	             "only whole batches are written");
	fx_close(&fx);
}

Test(ftl_stats, text_and_json_print_the_same_counters)
{
	struct fixture fx = {0};
	fx_open(&fx, 16 << 20, 256 << 10, true);
	uint8_t buf[4096] = {1}, h[FTL_HASH_LEN] = {0};
	struct ftl_addr a;
	cr_assert_eq(ftl_write(fx.ftl, buf, sizeof(buf), h, NULL, &a), 0);
	struct ftl_stats st;
	ftl_get_stats(fx.ftl, &st);
	char text[4096], json[4096], tiny[8];
	int n = ftl_stats_to_text(&st, text, sizeof(text));
	cr_assert_gt(n, 100);
	cr_assert_lt(n, (int)sizeof(text));
	cr_assert_neq(strstr(text, "live chunks:"), NULL, "%s", text);
	cr_assert_neq(strstr(text, " 1\n"), NULL);
	int j = ftl_stats_to_json(&st, json, sizeof(json));
	cr_assert_eq(json[0], '{');
	cr_assert_eq(strcmp(json + j - 2, "}\n"), 0, "%s", json);
	cr_assert_neq(strstr(json, "\"chunks_live\":1,"), NULL, "%s", json);
	/* Like snprintf: a short buffer gets a terminated prefix and the full length back. */
	cr_assert_eq(ftl_stats_to_json(&st, tiny, sizeof(tiny)), j);
	cr_assert_eq(strlen(tiny), sizeof(tiny) - 1);
	fx_close(&fx);
}

struct scan_seen {
	uint64_t count;
	uint64_t bad_hash;
};

static int count_cb(void *arg, struct ftl_addr addr, const uint8_t *hash, uint32_t hash_len,
                    uint32_t len, uint8_t flags)
{
	(void)hash_len;
	struct scan_seen *s = arg;
	uint64_t key;
	memcpy(&key, hash, 8);
	if (key != addr.v + 1000 || len != 512 + (addr.v % 7) || flags != 3)
		s->bad_hash++;
	s->count++;
	return 0;
}

Test(ftl_basic, reopen_rebuilds_map_by_scan)
{
	struct fixture fx = {0};
	fx_open(&fx, 64 << 20, 1 << 20, true);
	uint8_t buf[600], got[600], h[FTL_HASH_LEN];
	enum { N = 3000 };
	struct ftl_addr *a = calloc(N, sizeof(*a));
	for (int i = 0; i < N; i++) {
		struct ftl_write_opts o = {.prev = FTL_ADDR_NONE, .flags = 3};
		uint32_t len = 512 + (i % 7);
		fill(buf, len, i, 1);
		cr_assert_eq(ftl_write(fx.ftl, buf, len, h, &o, &a[i]), 0);
	}
	/* Rewrite the hashes the scan must report: hash key = address + 1000. */
	for (int i = 0; i < N; i++)
		cr_assert_eq(ftl_free(fx.ftl, a[i]), 0);
	for (int i = 0; i < N; i++) {
		struct ftl_write_opts o = {.prev = FTL_ADDR_NONE, .flags = 3};
		fill(buf, 512 + (i % 7), i, 2);
		struct ftl_addr x;
		/* ids are reused lowest first, so the key can be predicted after the write */
		cr_assert_eq(ftl_write(fx.ftl, buf, 512 + (i % 7), h, &o, &x), 0);
		a[i] = x;
	}
	ftl_close(fx.ftl);
	fx.ftl = NULL;

	/* Reopen: all chunks written after the frees must be found, byte-exact. */
	struct scan_seen seen = {0};
	struct ftl_config cfg = {.dev = fx.dev, .scan_cb = count_cb, .scan_arg = &seen};
	cr_assert_eq(ftl_open(&cfg, &fx.ftl), 0);
	for (int i = 0; i < N; i++) {
		uint32_t len = 512 + (i % 7);
		fill(buf, len, i, 2);
		cr_assert_eq(ftl_read(fx.ftl, a[i], got, sizeof(got), NULL), (int)len);
		cr_assert_eq(memcmp(buf, got, len), 0, "chunk %d", i);
	}
	/* Freed chunks of generation 1 lost to newer births of the same ids: only N remain. */
	struct ftl_stats st;
	ftl_get_stats(fx.ftl, &st);
	cr_assert_eq(st.chunks_live, N);
	cr_assert_eq(seen.count, N);
	free(a);
	fx_close(&fx);
}

/* The core GC test: a nearly full device under random overwrites keeps every chunk exact. */
Test(ftl_gc, random_overwrites_of_nearly_full_device_keep_every_chunk, .timeout = 120)
{
	struct fixture fx = {0};
	fx_open(&fx, 48 << 20, 256 << 10, true);
	struct ftl_stats st;
	ftl_get_stats(fx.ftl, &st);
	uint32_t len = 4096;
	uint64_t nkeys = st.capacity_bytes * 80 / 100 / (len + 64);
	struct ftl_addr *a = calloc(nkeys, sizeof(*a));
	uint32_t *ver = calloc(nkeys, sizeof(*ver));
	uint8_t *buf = malloc(len), *got = malloc(len), h[FTL_HASH_LEN];
	for (uint64_t k = 0; k < nkeys; k++) {
		fill(buf, len, k, 0);
		hash_of(h, k, 0);
		cr_assert_eq(ftl_write(fx.ftl, buf, len, h, NULL, &a[k]), 0);
	}
	for (uint64_t i = 0; i < nkeys * 4; i++) {
		uint64_t k = rnd() % nkeys;
		ver[k]++;
		fill(buf, len, k, ver[k]);
		hash_of(h, k, ver[k]);
		struct ftl_write_opts o = {.prev = a[k]};
		struct ftl_addr na;
		int rc = ftl_write(fx.ftl, buf, len, h, &o, &na);
		cr_assert_eq(rc, 0, "overwrite %llu: %d", (unsigned long long)i, rc);
		cr_assert_eq(ftl_free(fx.ftl, a[k]), 0);
		a[k] = na;
	}
	ftl_get_stats(fx.ftl, &st);
	cr_assert_gt(st.gc_runs, 0);
	cr_assert_gt(st.gc_bytes_moved, 0);
	cr_assert_eq(st.read_errors, 0);
	for (int pass = 0; pass < 2; pass++) {
		for (uint64_t k = 0; k < nkeys; k++) {
			fill(buf, len, k, ver[k]);
			cr_assert_eq(ftl_read(fx.ftl, a[k], got, len, NULL), (int)len);
			cr_assert_eq(memcmp(buf, got, len), 0, "key %llu pass %d",
			             (unsigned long long)k, pass);
			uint8_t hg[FTL_HASH_LEN];
			hash_of(h, k, ver[k]);
			cr_assert_eq(ftl_read_hash(fx.ftl, a[k], hg), 0);
			cr_assert_eq(memcmp(h, hg, FTL_HASH_LEN), 0);
		}
		/* Second pass after a remount: GC'd copies and stale ones must not confuse the
		 * scan. */
		ftl_close(fx.ftl);
		struct ftl_config cfg = {.dev = fx.dev};
		cr_assert_eq(ftl_open(&cfg, &fx.ftl), 0);
	}
	/* Chunks freed since their segment was last cleaned can come back from a scan (the FTL
	 * keeps no free log: its owner's metadata decides what is referenced); never fewer. */
	ftl_get_stats(fx.ftl, &st);
	cr_assert_geq(st.chunks_live, nkeys);
	free(a);
	free(ver);
	free(buf);
	free(got);
	fx_close(&fx);
}

Test(ftl_gc, wear_spread_stays_bounded_and_trim_reaches_device, .timeout = 120)
{
	struct fixture fx = {0};
	fx_open(&fx, 32 << 20, 256 << 10, true);
	struct ftl_stats st;
	ftl_get_stats(fx.ftl, &st);
	uint32_t len = 4096;
	/* Half the data never changes (cold), the rest is rewritten all the time: without static
	 * wear leveling the cold segments would never be erased. */
	uint64_t nkeys = st.capacity_bytes * 70 / 100 / (len + 64);
	struct ftl_addr *a = calloc(nkeys, sizeof(*a));
	uint8_t *buf = malloc(len), h[FTL_HASH_LEN] = {0};
	for (uint64_t k = 0; k < nkeys; k++) {
		fill(buf, len, k, 0);
		cr_assert_eq(ftl_write(fx.ftl, buf, len, h, NULL, &a[k]), 0);
	}
	uint64_t hot = nkeys / 2;
	for (uint64_t i = 0; i < nkeys * 12; i++) {
		uint64_t k = rnd() % hot;
		struct ftl_write_opts o = {.prev = a[k]};
		struct ftl_addr na;
		cr_assert_eq(ftl_write(fx.ftl, buf, len, h, &o, &na), 0);
		cr_assert_eq(ftl_free(fx.ftl, a[k]), 0);
		a[k] = na;
	}
	ftl_get_stats(fx.ftl, &st);
	cr_assert_gt(st.wear_moves, 0, "static wear leveling never ran");
	cr_assert_gt(st.erase_mean, 10);
	cr_assert_leq(st.erase_max - st.erase_min, (uint32_t)(st.erase_mean * 0.3) + 10,
	              "spread %u..%u mean %.1f", st.erase_min, st.erase_max, st.erase_mean);
	cr_assert_gt(st.trims, 0);
	cr_assert_gt(ftl_dev_mem_trimmed_bytes(fx.dev), 0);
	/* Cold data untouched by the user is still exact after being moved around. */
	uint8_t *got = malloc(len);
	for (uint64_t k = hot; k < nkeys; k++) {
		fill(buf, len, k, 0);
		cr_assert_eq(ftl_read(fx.ftl, a[k], got, len, NULL), (int)len);
		cr_assert_eq(memcmp(buf, got, len), 0);
	}
	free(got);
	free(a);
	free(buf);
	fx_close(&fx);
}

/* Chunk I of a run of 4 KiB chunks that differ only in their number. */
static void numbered_chunk(uint8_t buf[4096], int i)
{
	memcpy(buf, &i, sizeof(i));
	memset(buf + sizeof(i), 0x5a, 4096 - sizeof(i));
}

/* Chunks FROM..TO-1 at A read back as numbered_chunk wrote them. */
static void expect_numbered_chunks(struct ftl *ftl, const struct ftl_addr *a, int from, int to,
                                   const char *when)
{
	uint8_t want[4096], got[4096];
	for (int i = from; i < to; i++) {
		numbered_chunk(want, i);
		cr_assert_eq(ftl_read(ftl, a[i], got, sizeof(got), NULL), (int)sizeof(got),
		             "read %d %s", i, when);
		cr_assert_eq(memcmp(want, got, sizeof(got)), 0, "chunk %d %s", i, when);
	}
}

/* A freed segment's TRIM waits for the next flush (its FREE header durable first), and a
 * segment reused before that flush is not trimmed under its new packs. */
Test(ftl_gc, trim_waits_for_a_flush_and_spares_reused_segments)
{
	enum { OLD = 1500, NEW = 2600 };
	struct fixture fx = {0};
	fx_open(&fx, 16 << 20, 256 << 10, true);
	uint8_t buf[4096], h[FTL_HASH_LEN] = {0};
	struct ftl_addr *a = calloc(OLD + NEW, sizeof(*a));
	struct ftl_stats st;

	for (int i = 0; i < OLD; i++) {
		memset(buf, i & 0xff, sizeof(buf));
		cr_assert_eq(ftl_write(fx.ftl, buf, sizeof(buf), h, NULL, &a[i]), 0);
	}
	cr_assert_eq(ftl_sync(fx.ftl), 0);
	for (int i = 0; i < OLD; i++)
		cr_assert_eq(ftl_free(fx.ftl, a[i]), 0);
	cr_assert_eq(ftl_sync(fx.ftl), 0);
	ftl_get_stats(fx.ftl, &st);
	uint64_t trims0 = st.trims, runs0 = st.gc_runs;
	/* More than the device holds beside the dead data: GC frees the dead segments and the
	 * writes reuse them, with no flush in between (nothing was moved). */
	for (int i = OLD; i < OLD + NEW; i++) {
		numbered_chunk(buf, i);
		cr_assert_eq(ftl_write(fx.ftl, buf, sizeof(buf), h, NULL, &a[i]), 0, "write %d", i);
	}
	ftl_get_stats(fx.ftl, &st);
	cr_assert_gt(st.gc_runs, runs0, "GC never ran");
	cr_assert_eq(st.trims, trims0, "trimmed before a flush made the FREE headers durable");
	cr_assert_eq(ftl_sync(fx.ftl), 0);
	ftl_get_stats(fx.ftl, &st);
	cr_assert_gt(st.trims, trims0, "the flush did not trim the freed segments");
	/* Every new chunk, several in reused segments, reads back exact after the TRIMs, and
	 * after a reopen, which finds them from the device. */
	expect_numbered_chunks(fx.ftl, a, OLD, OLD + NEW, "after the TRIMs");
	ftl_close(fx.ftl);
	fx_open(&fx, 0, 0, false);
	expect_numbered_chunks(fx.ftl, a, OLD, OLD + NEW, "after a reopen");
	free(a);
	fx_close(&fx);
}

Test(ftl_gc, trim_of_freed_segments_reaches_backend)
{
	struct fixture fx = {0};
	fx_open(&fx, 16 << 20, 256 << 10, true);
	uint64_t before = ftl_dev_mem_trimmed_bytes(fx.dev);
	uint8_t buf[4096] = {1}, h[FTL_HASH_LEN] = {0};
	struct ftl_addr a[600];
	for (int i = 0; i < 600; i++)
		cr_assert_eq(ftl_write(fx.ftl, buf, sizeof(buf), h, NULL, &a[i]), 0);
	cr_assert_eq(ftl_sync(fx.ftl), 0);
	uint64_t written = ftl_dev_mem_trimmed_bytes(fx.dev);
	cr_assert_lt(written, before);
	for (int i = 0; i < 600; i++)
		cr_assert_eq(ftl_free(fx.ftl, a[i]), 0);
	cr_assert_eq(ftl_sync(fx.ftl), 0);
	cr_assert_gt(ftl_gc(fx.ftl, 1000), 0);
	cr_assert_gt(ftl_dev_mem_trimmed_bytes(fx.dev), written);
	struct ftl_stats st;
	ftl_get_stats(fx.ftl, &st);
	cr_assert_gt(st.trims, 0);
	fx_close(&fx);
}

Test(ftl_space, full_device_gives_enospc_and_keeps_data)
{
	struct fixture fx = {0};
	fx_open(&fx, 8 << 20, 256 << 10, true);
	uint8_t buf[4096], got[4096], h[FTL_HASH_LEN] = {0};
	struct ftl_addr *a = calloc(4096, sizeof(*a));
	int n = 0, rc = 0;
	for (; n < 4096; n++) {
		fill(buf, sizeof(buf), n, 0);
		rc = ftl_write(fx.ftl, buf, sizeof(buf), h, NULL, &a[n]);
		if (rc)
			break;
	}
	cr_assert_eq(rc, -ENOSPC, "rc %d after %d chunks", rc, n);
	cr_assert_gt(n, 1000);
	for (int i = 0; i < n; i++) {
		fill(buf, sizeof(buf), i, 0);
		cr_assert_eq(ftl_read(fx.ftl, a[i], got, sizeof(got), NULL), 4096);
		cr_assert_eq(memcmp(buf, got, sizeof(buf)), 0);
	}
	/* Freeing gives the space back (GC runs when allocation needs it). */
	for (int i = 0; i < n / 2; i++)
		cr_assert_eq(ftl_free(fx.ftl, a[i]), 0);
	for (int i = 0; i < n / 4; i++) {
		fill(buf, sizeof(buf), i, 1);
		cr_assert_eq(ftl_write(fx.ftl, buf, sizeof(buf), h, NULL, &a[i]), 0, "rewrite %d",
		             i);
	}
	for (int i = n / 2; i < n; i++) {
		fill(buf, sizeof(buf), i, 0);
		cr_assert_eq(ftl_read(fx.ftl, a[i], got, sizeof(got), NULL), 4096);
		cr_assert_eq(memcmp(buf, got, sizeof(buf)), 0);
	}
	free(a);
	fx_close(&fx);
}

/* Finds the device offset of a payload by its bytes (the mem device is readable directly). */
static uint64_t find_on_dev(struct ftl_dev *dev, const uint8_t *pat, size_t len)
{
	uint8_t *blk = malloc(1 << 20);
	uint64_t size = ftl_dev_size(dev), found = UINT64_MAX;
	for (uint64_t off = 0; off < size && found == UINT64_MAX; off += 1 << 20) {
		cr_assert_eq(ftl_dev_read(dev, blk, 1 << 20, off), 0);
		for (size_t i = 0; i + len <= (1 << 20); i += 8)
			if (!memcmp(blk + i, pat, len)) {
				found = off + i;
				break;
			}
	}
	free(blk);
	return found;
}

Test(ftl_faults, flipped_bit_gives_eio_never_wrong_data)
{
	struct fixture fx = {0};
	fx_open(&fx, 16 << 20, 256 << 10, true);
	uint8_t buf[4096], got[4096], h[FTL_HASH_LEN] = {0};
	struct ftl_addr a;
	fill(buf, sizeof(buf), 42, 42);
	cr_assert_eq(ftl_write(fx.ftl, buf, sizeof(buf), h, NULL, &a), 0);
	cr_assert_eq(ftl_sync(fx.ftl), 0);
	uint64_t off = find_on_dev(fx.dev, buf, 64);
	cr_assert_neq(off, UINT64_MAX);
	cr_assert_eq(ftl_dev_mem_flip_bit(fx.dev, off + 1000, 3), 0);
	memset(got, 0x5a, sizeof(got));
	ftl_read_device_only(true); /* not the bytes of the pack just written, kept in memory */
	cr_assert_eq(ftl_read(fx.ftl, a, got, sizeof(got), NULL), -EIO);
	cr_assert_neq(memcmp(buf, got, sizeof(got)), 0);
	struct ftl_stats st;
	ftl_get_stats(fx.ftl, &st);
	cr_assert_eq(st.checksum_errors, 1);
	/* Flip it back: the chunk reads again (the error was the damage, not a stuck state). */
	cr_assert_eq(ftl_dev_mem_flip_bit(fx.dev, off + 1000, 3), 0);
	cr_assert_eq(ftl_read(fx.ftl, a, got, sizeof(got), NULL), 4096);
	cr_assert_eq(memcmp(buf, got, sizeof(got)), 0);
	fx_close(&fx);
}

Test(ftl_faults, injected_read_error_gives_eio)
{
	struct fixture fx = {0};
	fx_open(&fx, 16 << 20, 256 << 10, true);
	uint8_t buf[4096], got[4096], h[FTL_HASH_LEN] = {0};
	struct ftl_addr a;
	fill(buf, sizeof(buf), 1, 1);
	cr_assert_eq(ftl_write(fx.ftl, buf, sizeof(buf), h, NULL, &a), 0);
	cr_assert_eq(ftl_sync(fx.ftl), 0);
	uint64_t off = find_on_dev(fx.dev, buf, 64);
	cr_assert_eq(ftl_dev_mem_inject(fx.dev, FTL_FAULT_READ_EIO, off & ~4095ull, 4096, 1), 0);
	ftl_read_device_only(true); /* not the bytes of the pack just written, kept in memory */
	cr_assert_eq(ftl_read(fx.ftl, a, got, sizeof(got), NULL), -EIO);
	cr_assert_eq(ftl_read(fx.ftl, a, got, sizeof(got), NULL), 4096);
	cr_assert_eq(memcmp(buf, got, sizeof(got)), 0);
	fx_close(&fx);
}

/* The packs a user stream wrote last are kept in memory as they went to the device: a chunk read
 * right after its pack's write (a replicated write's new chunks, exported to the peer) costs no
 * device read. Once FTL_STREAM_RECENT_BYTES later packs were written, it comes from the device
 * again, and so it does for a thread that asks for the device (the scrub). */
Test(ftl_faults, packs_just_written_read_from_memory_then_from_the_device)
{
	struct fixture fx = {0};
	fx_open(&fx, 16 << 20, 256 << 10, true);
	uint8_t buf[4096], got[4096], h[FTL_HASH_LEN] = {0};
	struct ftl_addr a, b;
	fill(buf, sizeof(buf), 7, 7);
	cr_assert_eq(ftl_write(fx.ftl, buf, sizeof(buf), h, NULL, &a), 0);
	cr_assert_eq(ftl_sync(fx.ftl), 0);
	uint64_t off = find_on_dev(fx.dev, buf, 64);
	cr_assert_neq(off, UINT64_MAX);
	cr_assert_eq(ftl_dev_mem_inject(fx.dev, FTL_FAULT_READ_EIO, off & ~4095ull, 4096, 1000), 0);
	struct ftl_dev_stats before, after;
	ftl_dev_get_stats(fx.dev, &before);
	memset(got, 0, sizeof(got));
	cr_assert_eq(ftl_read(fx.ftl, a, got, sizeof(got), NULL), 4096);
	cr_assert_eq(memcmp(buf, got, sizeof(got)), 0);
	ftl_dev_get_stats(fx.dev, &after);
	cr_assert_eq(after.reads, before.reads, "a device read for a chunk kept in memory");
	ftl_read_device_only(true);
	cr_assert_eq(ftl_read(fx.ftl, a, got, sizeof(got), NULL), -EIO);
	ftl_read_device_only(false);
	/* Later packs of the same stream take the kept places one by one. */
	for (int k = 0; k < FTL_STREAM_RECENT_BYTES; k++) {
		fill(buf, sizeof(buf), 100 + k, 7);
		cr_assert_eq(ftl_write(fx.ftl, buf, sizeof(buf), h, NULL, &b), 0);
		cr_assert_eq(ftl_sync(fx.ftl), 0);
		cr_assert_eq(ftl_read(fx.ftl, b, got, sizeof(got), NULL), 4096);
		cr_assert_eq(memcmp(buf, got, sizeof(got)), 0);
	}
	cr_assert_eq(ftl_read(fx.ftl, a, got, sizeof(got), NULL), -EIO);
	fx_close(&fx);
}

Test(ftl_faults, failed_pack_write_reports_error_and_reads_fail_cleanly)
{
	struct fixture fx = {0};
	fx_open(&fx, 16 << 20, 256 << 10, true);
	uint8_t buf[4096], got[4096], h[FTL_HASH_LEN] = {0};
	struct ftl_addr a, b;
	fill(buf, sizeof(buf), 1, 1);
	cr_assert_eq(ftl_write(fx.ftl, buf, sizeof(buf), h, NULL, &a), 0);
	cr_assert_eq(ftl_sync(fx.ftl), 0);
	/* Every write to the data area fails once: the next seal loses its pack. */
	struct ftl_superblock_info sb;
	cr_assert_eq(ftl_read_superblock(fx.dev, &sb), 0);
	cr_assert_eq(ftl_dev_mem_inject(fx.dev, FTL_FAULT_WRITE_EIO, sb.data_offset,
	                                ftl_dev_size(fx.dev) - sb.data_offset, 1),
	             0);
	fill(buf, sizeof(buf), 2, 2);
	cr_assert_eq(ftl_write(fx.ftl, buf, sizeof(buf), h, NULL, &b), 0);
	cr_assert_eq(ftl_sync(fx.ftl), -EIO);
	memset(got, 0, sizeof(got));
	int rc = ftl_read(fx.ftl, b, got, sizeof(got), NULL);
	cr_assert(rc == -EIO, "unsynced chunk of a failed pack: %d", rc);
	/* The earlier, synced chunk is untouched, and later writes work. */
	fill(buf, sizeof(buf), 1, 1);
	cr_assert_eq(ftl_read(fx.ftl, a, got, sizeof(got), NULL), 4096);
	cr_assert_eq(memcmp(buf, got, sizeof(got)), 0);
	cr_assert_eq(ftl_write(fx.ftl, buf, sizeof(buf), h, NULL, &b), 0);
	cr_assert_eq(ftl_sync(fx.ftl), 0);
	fx_close(&fx);
}

static void power_cut_round(bool tear)
{
	struct fixture fx = {0};
	fx_open(&fx, 32 << 20, 256 << 10, true);
	enum { N = 2000 };
	uint8_t buf[3000], got[3000], h[FTL_HASH_LEN] = {0};
	struct ftl_addr a[N];
	int synced = 0;
	for (int i = 0; i < N; i++) {
		fill(buf, sizeof(buf), i, 0);
		cr_assert_eq(ftl_write(fx.ftl, buf, sizeof(buf), h, NULL, &a[i]), 0);
		if (i % 97 == 0) {
			cr_assert_eq(ftl_sync(fx.ftl), 0);
			synced = i + 1;
		}
	}
	/* Push some unsynced packs to the device without a flush, then cut power. */
	for (int i = 0; i < 300; i++) {
		struct ftl_addr x;
		fill(buf, sizeof(buf), N + i, 0);
		cr_assert_eq(ftl_write(fx.ftl, buf, sizeof(buf), h, NULL, &x), 0);
	}
	cr_assert_eq(ftl_dev_mem_power_cut(fx.dev, tear), 0);
	/* The machine is dead: nothing the old instance does from here on reaches the device. */
	cr_assert_eq(
	    ftl_dev_mem_inject(fx.dev, FTL_FAULT_WRITE_EIO, 0, ftl_dev_size(fx.dev), 1000000), 0);
	ftl_close(fx.ftl);
	struct ftl_config cfg = {.dev = fx.dev};
	cr_assert_eq(ftl_open(&cfg, &fx.ftl), 0);
	for (int i = 0; i < N; i++) {
		int rc = ftl_read(fx.ftl, a[i], got, sizeof(got), NULL);
		fill(buf, sizeof(buf), i, 0);
		if (i < synced) {
			cr_assert_eq(rc, (int)sizeof(got), "synced chunk %d lost: %d", i, rc);
			cr_assert_eq(memcmp(buf, got, sizeof(got)), 0, "synced chunk %d", i);
		} else if (rc > 0) {
			cr_assert_eq(memcmp(buf, got, sizeof(got)), 0, "unsynced chunk %d garbage",
			             i);
		}
	}
	fx_close(&fx);
}

Test(ftl_faults, power_cut_keeps_synced_chunks)
{
	power_cut_round(false);
}

Test(ftl_faults, torn_last_write_keeps_synced_chunks)
{
	power_cut_round(true);
}

Test(ftl_super, damaged_copy_a_falls_back_to_copy_b)
{
	struct fixture fx = {0};
	fx_open(&fx, 16 << 20, 256 << 10, true);
	ftl_close(fx.ftl);
	fx.ftl = NULL;
	cr_assert_eq(ftl_dev_mem_flip_bit(fx.dev, 40, 1), 0);
	struct ftl_superblock_info sb;
	cr_assert_eq(ftl_read_superblock(fx.dev, &sb), 0);
	cr_assert_eq(sb.segment_size, 256 << 10);
	/* Both damaged: a clear error, not a guess. */
	cr_assert_eq(ftl_dev_mem_flip_bit(fx.dev, 64 * 1024 + 40, 1), 0);
	cr_assert_eq(ftl_read_superblock(fx.dev, &sb), -EUCLEAN);
	struct ftl *f = NULL;
	struct ftl_config cfg = {.dev = fx.dev};
	cr_assert_eq(ftl_open(&cfg, &f), -EUCLEAN);
	fx_close(&fx);
}

Test(ftl_super, zeroed_device_is_not_formatted)
{
	struct ftl_dev *dev;
	cr_assert_eq(ftl_dev_open_mem(16 << 20, 4096, &dev), 0);
	struct ftl_superblock_info sb;
	cr_assert_eq(ftl_read_superblock(dev, &sb), -EINVAL);
	ftl_dev_close(dev);
}

Test(ftl_super, bad_format_parameters_are_refused)
{
	struct ftl_dev *dev;
	cr_assert_eq(ftl_dev_open_mem(16 << 20, 4096, &dev), 0);
	struct ftl_format_params p = {.segment_size = 1000};
	cr_assert_eq(ftl_format(dev, &p), -EINVAL);
	p = (struct ftl_format_params){.block_size = 3000};
	cr_assert_eq(ftl_format(dev, &p), -EINVAL);
	p = (struct ftl_format_params){.segment_size = 8 << 20};
	cr_assert_eq(ftl_format(dev, &p), -ENOSPC); /* 16 MiB holds no 4 segments of 8 MiB */
	p = (struct ftl_format_params){.user_block_size = 128 << 10};
	cr_assert_eq(ftl_format(dev, &p), -EINVAL);
	struct ftl_superblock_info sb;
	cr_assert_eq(ftl_read_superblock(dev, &sb), -EINVAL, "nothing was written");
	ftl_dev_close(dev);
}

Test(ftl_streams, data_rewritten_soon_goes_to_the_hot_stream, .timeout = 60)
{
	struct fixture fx = {0};
	fx_open(&fx, 32 << 20, 256 << 10, true);
	uint8_t buf[4096] = {7}, h[FTL_HASH_LEN] = {0};
	enum { N = 2000, HOT = 100 };
	struct ftl_addr *a = calloc(N, sizeof(*a));
	for (int k = 0; k < N; k++)
		cr_assert_eq(ftl_write(fx.ftl, buf, sizeof(buf), h, NULL, &a[k]), 0);
	struct ftl_stats before, after;
	ftl_get_stats(fx.ftl, &before);
	cr_assert_eq(before.stream_chunks[0], 0, "first writes are not hot");
	/* Rewrite a small set over and over: each previous version lived far less than one
	 * turnover of the live set. */
	for (int round = 0; round < 20; round++)
		for (int k = 0; k < HOT; k++) {
			struct ftl_write_opts o = {.prev = a[k]};
			struct ftl_addr na;
			cr_assert_eq(ftl_write(fx.ftl, buf, sizeof(buf), h, &o, &na), 0);
			cr_assert_eq(ftl_free(fx.ftl, a[k]), 0);
			a[k] = na;
		}
	ftl_get_stats(fx.ftl, &after);
	uint64_t hot = after.stream_chunks[0] - before.stream_chunks[0];
	uint64_t cold = after.stream_chunks[1] - before.stream_chunks[1];
	cr_assert_geq(hot, 19 * HOT, "hot %llu cold %llu", (unsigned long long)hot,
	              (unsigned long long)cold);
	/* The first rewrite of data written long ago (relative to the live set) is cold. */
	struct ftl_write_opts o = {.prev = a[N - 1]};
	struct ftl_addr na;
	for (int k = 0; k < 3000; k++) { /* age the oldest data past one turnover */
		struct ftl_write_opts oh = {.prev = a[k % HOT]};
		cr_assert_eq(ftl_write(fx.ftl, buf, sizeof(buf), h, &oh, &na), 0);
		cr_assert_eq(ftl_free(fx.ftl, a[k % HOT]), 0);
		a[k % HOT] = na;
	}
	ftl_get_stats(fx.ftl, &before);
	cr_assert_eq(ftl_write(fx.ftl, buf, sizeof(buf), h, &o, &na), 0);
	ftl_get_stats(fx.ftl, &after);
	cr_assert_eq(after.stream_chunks[1] - before.stream_chunks[1], 1);
	free(a);
	fx_close(&fx);
}

struct mt_arg {
	struct ftl *ftl;
	int tid;
	int errors;
};

static void *mt_worker(void *p)
{
	struct mt_arg *m = p;
	enum { N = 400 };
	struct ftl_addr a[N];
	uint8_t buf[2048], got[2048], h[FTL_HASH_LEN] = {0};
	for (int round = 0; round < 8; round++) {
		for (int i = 0; i < N; i++) {
			fill(buf, sizeof(buf), m->tid * 100000 + i, round);
			struct ftl_write_opts o = {.prev = round ? a[i] : FTL_ADDR_NONE};
			struct ftl_addr na;
			if (ftl_write(m->ftl, buf, sizeof(buf), h, &o, &na))
				m->errors++;
			if (round && ftl_free(m->ftl, a[i]))
				m->errors++;
			a[i] = na;
		}
		/* One thread syncs while the others write and GC relocates: seals race with
		 * relocations and with reads of chunks in pack buffers. */
		if (m->tid == 0 && ftl_sync(m->ftl))
			m->errors++;
		for (int i = 0; i < N; i++) {
			fill(buf, sizeof(buf), m->tid * 100000 + i, round);
			uint8_t hg[FTL_HASH_LEN];
			if (ftl_read(m->ftl, a[i], got, sizeof(got), NULL) != sizeof(got) ||
			    memcmp(buf, got, sizeof(got)) || ftl_read_hash(m->ftl, a[i], hg))
				m->errors++;
		}
	}
	return NULL;
}

Test(ftl_concurrency, writers_readers_and_gc_thread_agree, .timeout = 120)
{
	struct ftl_dev *dev;
	struct ftl *ftl;
	cr_assert_eq(ftl_dev_open_mem(16 << 20, 4096, &dev), 0);
	struct ftl_format_params p = {.segment_size = 256 << 10};
	cr_assert_eq(ftl_format(dev, &p), 0);
	struct ftl_config cfg = {
	    .dev = dev, .gc_thread = true, .gc_low_pct = 30, .gc_high_pct = 40};
	cr_assert_eq(ftl_open(&cfg, &ftl), 0);
	pthread_t t[4];
	struct mt_arg m[4];
	for (int i = 0; i < 4; i++) {
		m[i] = (struct mt_arg){.ftl = ftl, .tid = i};
		pthread_create(&t[i], NULL, mt_worker, &m[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(m[i].errors, 0, "thread %d: %d errors", i, m[i].errors);
	}
	struct ftl_stats st;
	ftl_get_stats(ftl, &st);
	cr_assert_eq(st.chunks_live, 4 * 400);
	cr_assert_gt(st.gc_runs, 0);
	ftl_close(ftl);
	ftl_dev_close(dev);
}

/* Sealed packs are queued for whichever thread writes the stream's packs (ftl_stream.c
 * write_queued): a failed write of a pack another thread sealed must still fail only that
 * pack's segment, reach the next sync, and leave every chunk exact or -EIO, also after a
 * reopen. */
struct fail_arg {
	struct ftl *ftl;
	int tid;
	struct ftl_addr a[300];
	bool ok[300];
};

static void *fail_worker(void *p)
{
	struct fail_arg *m = p;
	uint8_t buf[2048], h[FTL_HASH_LEN] = {0};
	for (int i = 0; i < 300; i++) {
		fill(buf, sizeof(buf), m->tid * 100000 + i, 7);
		m->ok[i] = ftl_write(m->ftl, buf, sizeof(buf), h, NULL, &m->a[i]) == 0;
	}
	return NULL;
}

static int check_fail_args(struct ftl *ftl, struct fail_arg *m, int n, int *lost)
{
	uint8_t buf[2048], got[2048];
	int bad = 0;
	*lost = 0;
	for (int t = 0; t < n; t++)
		for (int i = 0; i < 300; i++) {
			if (!m[t].ok[i])
				continue;
			fill(buf, sizeof(buf), t * 100000 + i, 7);
			int rc = ftl_read(ftl, m[t].a[i], got, sizeof(got), NULL);
			if (rc == -EIO)
				(*lost)++;
			else if (rc != (int)sizeof(got) || memcmp(buf, got, sizeof(got)))
				bad++;
		}
	return bad;
}

Test(ftl_concurrency, failed_queued_pack_reaches_sync_and_reads_fail_cleanly, .timeout = 60)
{
	struct fixture fx = {0};
	fx_open(&fx, 32 << 20, 256 << 10, true);
	struct ftl_superblock_info sb;
	uint8_t one[4096], h[FTL_HASH_LEN] = {0};
	struct ftl_addr x;
	fill(one, sizeof(one), 999999, 1);
	cr_assert_eq(ftl_write(fx.ftl, one, sizeof(one), h, NULL, &x), 0);
	cr_assert_eq(ftl_sync(fx.ftl), 0);
	cr_assert_eq(ftl_read_superblock(fx.dev, &sb), 0);
	/* The next write into the data area, the open segment's next pack, fails once. */
	cr_assert_eq(ftl_dev_mem_inject(fx.dev, FTL_FAULT_WRITE_EIO, sb.data_offset,
	                                ftl_dev_size(fx.dev) - sb.data_offset, 1),
	             0);
	static struct fail_arg m[4];
	pthread_t t[4];
	for (int i = 0; i < 4; i++) {
		m[i] = (struct fail_arg){.ftl = fx.ftl, .tid = i};
		pthread_create(&t[i], NULL, fail_worker, &m[i]);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	cr_assert_eq(ftl_sync(fx.ftl), -EIO, "the failed pack reaches the sync");
	cr_assert_eq(ftl_sync(fx.ftl), 0, "and only that sync");
	int lost, bad = check_fail_args(fx.ftl, m, 4, &lost);
	cr_assert_eq(bad, 0, "%d chunks read back wrong", bad);
	cr_assert_gt(lost, 0, "the failed pack's chunks read -EIO");
	cr_assert_lt(lost, 4 * 300, "only the failed segment's packs are lost");
	ftl_close(fx.ftl);
	fx_open(&fx, 32 << 20, 256 << 10, false);
	int lost2;
	bad = check_fail_args(fx.ftl, m, 4, &lost2);
	cr_assert_eq(bad, 0, "after reopen: %d chunks read back wrong", bad);
	cr_assert_eq(lost2, lost, "the reopen finds the same chunks");
	fx_close(&fx);
}

struct word_seen {
	uint8_t hash[4][FTL_HASH_LEN];
	uint32_t hash_len[4];
	uint8_t flags[4];
	int count;
};

static int word_cb(void *arg, struct ftl_addr addr, const uint8_t hash[FTL_HASH_LEN],
                   uint32_t hash_len, uint32_t len, uint8_t flags)
{
	struct word_seen *s = arg;
	(void)len;
	if (addr.v < 4) {
		memcpy(s->hash[addr.v], hash, FTL_HASH_LEN);
		s->hash_len[addr.v] = hash_len;
		s->flags[addr.v] = flags;
	}
	s->count++;
	return 0;
}

/* The L2P keeps 6 bytes of owner word (5 hash bytes + flags): a checkpoint must give back
 * exactly those, for any hash and flags, and only flags 0xff (the damaged mark) is refused. */
Test(ftl_basic, owner_word_survives_checkpoint_for_any_hash_and_flags)
{
	struct fixture fx = {0};
	fx_open(&fx, 64 << 20, 1 << 20, true);
	static const uint8_t flags[4] = {0x00, 0x80, 0xfe, 0x83};
	uint8_t buf[100], h[4][FTL_HASH_LEN];
	struct ftl_addr a;
	for (int i = 0; i < 4; i++) {
		memset(h[i], i == 2 ? 0xff : 0x11 * (i + 1), FTL_HASH_LEN);
		h[i][4] = (uint8_t)(0xf0 + i);
		struct ftl_write_opts o = {.prev = FTL_ADDR_NONE, .flags = flags[i]};
		fill(buf, sizeof(buf), i, 0);
		cr_assert_eq(ftl_write(fx.ftl, buf, sizeof(buf), h[i], &o, &a), 0);
		cr_assert_eq(a.v, (uint64_t)i);
	}
	struct ftl_write_opts bad = {.prev = FTL_ADDR_NONE, .flags = FTL_FLAGS_RESERVED};
	cr_assert_eq(ftl_write(fx.ftl, buf, sizeof(buf), h[0], &bad, &a), -EINVAL);
	ftl_close(fx.ftl); /* writes a checkpoint: the reopen takes the words from it */
	fx.ftl = NULL;

	struct word_seen seen = {0};
	struct ftl_config cfg = {.dev = fx.dev, .scan_cb = word_cb, .scan_arg = &seen};
	cr_assert_eq(ftl_open(&cfg, &fx.ftl), 0);
	cr_assert_eq(seen.count, 4);
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(seen.hash_len[i], FTL_SCAN_HASH_PREFIX,
		             "chunk %d: from the checkpoint", i);
		cr_assert_eq(memcmp(seen.hash[i], h[i], FTL_SCAN_HASH_PREFIX), 0, "chunk %d", i);
		cr_assert_eq(seen.flags[i], flags[i], "chunk %d", i);
		uint8_t got[100], fl = 0;
		fill(buf, sizeof(buf), i, 0);
		cr_assert_eq(
		    ftl_read(fx.ftl, (struct ftl_addr){(uint64_t)i}, got, sizeof(got), &fl),
		    (int)sizeof(buf));
		cr_assert_eq(memcmp(buf, got, sizeof(buf)), 0);
		cr_assert_eq(fl, flags[i]);
	}
	fx_close(&fx);
}

/* The background GC at its default marks works just above the GC reserve, where writers clean
 * for themselves too: a segment one frees may be taken by the other before the writer gets it.
 * At 80% live data that must cost a writer another cleaning, never -ENOSPC. */
struct near_full_arg {
	struct ftl *ftl;
	struct ftl_addr *a;
	uint32_t n;
	uint64_t rng;
	int rc;
};

static void *near_full_worker(void *p)
{
	struct near_full_arg *m = p;
	uint8_t buf[4096], h[FTL_HASH_LEN] = {0};
	memset(buf, 0x5a, sizeof(buf));
	for (int i = 0; i < 6000 && !m->rc; i++) {
		m->rng ^= m->rng << 13;
		m->rng ^= m->rng >> 7;
		m->rng ^= m->rng << 17;
		uint32_t k = (uint32_t)(m->rng % m->n);
		struct ftl_write_opts o = {.prev = m->a[k]};
		struct ftl_addr na;
		m->rc = ftl_write(m->ftl, buf, sizeof(buf), h, &o, &na);
		if (!m->rc)
			m->rc = ftl_free(m->ftl, m->a[k]);
		if (!m->rc)
			m->a[k] = na;
	}
	return NULL;
}

Test(ftl_concurrency, writers_at_80_percent_with_the_gc_thread_never_see_enospc, .timeout = 120)
{
	struct ftl_dev *dev;
	struct ftl *ftl;
	cr_assert_eq(ftl_dev_open_mem(24 << 20, 4096, &dev), 0);
	struct ftl_format_params p = {.segment_size = 256 << 10};
	cr_assert_eq(ftl_format(dev, &p), 0);
	cr_assert_eq(ftl_open(&(struct ftl_config){.dev = dev, .gc_thread = true}, &ftl), 0);
	struct ftl_stats st;
	ftl_get_stats(ftl, &st);
	uint32_t n = (uint32_t)(st.capacity_bytes * 8 / 10 / 4096 / 2);
	struct near_full_arg m[2];
	uint8_t buf[4096], h[FTL_HASH_LEN] = {0};
	memset(buf, 0x5a, sizeof(buf));
	for (int t = 0; t < 2; t++) {
		m[t] = (struct near_full_arg){.ftl = ftl, .n = n, .rng = 99 + (uint64_t)t};
		m[t].a = calloc(n, sizeof(*m[t].a));
		for (uint32_t k = 0; k < n; k++)
			cr_assert_eq(ftl_write(ftl, buf, sizeof(buf), h, NULL, &m[t].a[k]), 0);
	}
	pthread_t th[2];
	for (int t = 0; t < 2; t++)
		pthread_create(&th[t], NULL, near_full_worker, &m[t]);
	for (int t = 0; t < 2; t++)
		pthread_join(th[t], NULL);
	ftl_get_stats(ftl, &st);
	for (int t = 0; t < 2; t++) {
		cr_assert_eq(m[t].rc, 0, "writer %d: %d (%u segments free)", t, m[t].rc,
		             st.segments_free);
		free(m[t].a);
	}
	cr_assert_gt(st.gc_runs, 50, "GC must have worked near the reserve");
	ftl_close(ftl);
	ftl_dev_close(dev);
}
