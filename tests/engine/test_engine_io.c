/* tests/engine/test_engine_io.c - the engine over a real FTL on a memory device: references,
 * dedupe reference counts, codecs and raw fallback, corruption, dedupe=off, memory per block.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "engine_test.h"
#include "ftl_dev_fault.h"

#define MiB (1024ull * 1024)
#define BS  4096u

static struct engine_test_env env;
static uint8_t wbuf[65536], rbuf[65536];

static void open_env(enum engine_codec codec, int level, bool dedupe)
{
	int rc = engine_test_open(&env, 64 * MiB, BS, codec, level, dedupe);

	cr_assert_eq(rc, 0, "engine_test_open: %d", rc);
}

static void close_env(void)
{
	engine_test_close(&env);
}

static void open_lz4(void)
{
	open_env(ENGINE_CODEC_LZ4, 0, true);
}

static struct engine_ref write_ok(const void *b)
{
	struct engine_ref r;
	int rc = engine_write(env.e, b, ENGINE_REF_ZERO_VALUE, &r);

	cr_assert_eq(rc, 0, "engine_write: %d", rc);
	return r;
}

static void assert_reads_back(struct engine_ref r, const void *expect, uint32_t bs)
{
	memset(rbuf, 0xa5, bs);
	cr_assert_eq(engine_read(env.e, r, rbuf), 0);
	cr_assert_arr_eq(rbuf, expect, bs);
}

static struct engine_stats stats(void)
{
	struct engine_stats st;

	engine_get_stats(env.e, &st);
	return st;
}

/* ---- configuration -------------------------------------------------------------------- */

Test(engine_open, rejects_bad_block_sizes_and_levels, .init = open_lz4, .fini = close_env)
{
	struct engine_config cfg = {.ftl = env.ftl, .block_size = 4096, .codec = ENGINE_CODEC_LZ4};
	struct engine *e = NULL;

	cfg.block_size = 2048;
	cr_assert_eq(engine_open(&cfg, &e), -EINVAL);
	cfg.block_size = 6144;
	cr_assert_eq(engine_open(&cfg, &e), -EINVAL);
	cfg.block_size = 131072;
	cr_assert_eq(engine_open(&cfg, &e), -EINVAL);
	cfg.block_size = 65536;
	cfg.codec = ENGINE_CODEC_ZSTD;
	cfg.level = 20;
	cr_assert_eq(engine_open(&cfg, &e), -EINVAL);
	cr_assert_eq(engine_set_codec(env.e, ENGINE_CODEC_COUNT, 0), -EINVAL);
	cr_assert_eq(engine_set_codec(env.e, ENGINE_CODEC_ZSTD, -1), -EINVAL);
	engine_close(NULL);
}

/* ---- patterns ------------------------------------------------------------------------- */

Test(engine_write, zero_block_is_zero_ref_without_chunk, .init = open_lz4, .fini = close_env)
{
	struct engine_ref r;

	memset(wbuf, 0, BS);
	r = write_ok(wbuf);
	cr_assert_eq(r.v, 0);
	assert_reads_back(r, wbuf, BS);
	cr_assert_eq(stats().pattern_blocks, 1);
	cr_assert_eq(stats().unique_chunks, 0);
	cr_assert_eq(stats().stored_bytes, 0);
}

Test(engine_write, short_pattern_is_inline, .init = open_lz4, .fini = close_env)
{
	struct engine_ref r;

	for (uint32_t i = 0; i < BS; i++)
		wbuf[i] = "xyz"[i % 3];
	r = write_ok(wbuf);
	cr_assert_eq(engine_ref_kind(r), ENGINE_REF_PATTERN);
	cr_assert_eq(r.v >> 61 & 1, 0, "periods 1..7 are inline");
	cr_assert_eq(r.v >> 56 & 7, 3);
	cr_assert_eq(engine_ref_count(env.e, r), 0);
	assert_reads_back(r, wbuf, BS);
	cr_assert_eq(stats().unique_chunks, 0);
}

Test(engine_write, long_pattern_goes_to_table_with_refcount, .init = open_lz4, .fini = close_env)
{
	struct engine_ref r1, r2;

	for (uint32_t i = 0; i < BS; i++)
		wbuf[i] = "0123456789ab"[i % 12];
	r1 = write_ok(wbuf);
	cr_assert_eq(engine_ref_kind(r1), ENGINE_REF_PATTERN);
	cr_assert_eq(r1.v >> 61 & 1, 1, "periods 8..16 are in the table");
	r2 = write_ok(wbuf);
	cr_assert_eq(r1.v, r2.v);
	cr_assert_eq(engine_ref_count(env.e, r1), 2);
	assert_reads_back(r1, wbuf, BS);
	cr_assert_eq(engine_ref_put(env.e, r1), 0);
	cr_assert_eq(engine_ref_put(env.e, r2), 0);
	cr_assert_eq(engine_ref_count(env.e, r1), 0);
	cr_assert_eq(engine_read(env.e, r1, rbuf), -ENOENT);
	cr_assert_eq(engine_ref_put(env.e, r1), -ENOENT);
	cr_assert_eq(stats().unique_chunks, 0);
}

/* ---- dedupe and reference counts ------------------------------------------------------ */

Test(engine_dedupe, same_block_twice_shares_one_chunk, .init = open_lz4, .fini = close_env)
{
	struct engine_ref r1, r2;

	engine_test_fill_random(wbuf, BS, 1);
	r1 = write_ok(wbuf);
	r2 = write_ok(wbuf);
	cr_assert_eq(engine_ref_kind(r1), ENGINE_REF_CHUNK);
	cr_assert_eq(r1.v, r2.v);
	cr_assert_eq(engine_ref_count(env.e, r1), 2);
	cr_assert_eq(stats().unique_chunks, 1);
	cr_assert_eq(stats().dedupe_blocks, 1);
	cr_assert_eq(stats().index_entries, 1);
	assert_reads_back(r1, wbuf, BS);
}

Test(engine_dedupe, last_put_frees_chunk_in_ftl, .init = open_lz4, .fini = close_env)
{
	struct ftl_addr a;
	struct engine_ref r;

	engine_test_fill_random(wbuf, BS, 2);
	r = write_ok(wbuf);
	cr_assert_eq(write_ok(wbuf).v, r.v);
	a.v = r.v & ((UINT64_C(1) << 62) - 1);
	cr_assert_eq(engine_ref_put(env.e, r), 0);
	cr_assert_eq(engine_ref_count(env.e, r), 1);
	cr_assert_geq(ftl_read(env.ftl, a, rbuf, BS, NULL), 0, "one reference left: still stored");
	cr_assert_eq(engine_ref_put(env.e, r), 0);
	cr_assert_eq(engine_ref_count(env.e, r), 0);
	cr_assert_eq(ftl_read(env.ftl, a, rbuf, BS, NULL), -ENOENT);
	cr_assert_eq(engine_read(env.e, r, rbuf), -ENOENT);
	cr_assert_eq(engine_ref_put(env.e, r), -ENOENT);
	cr_assert_eq(engine_ref_get(env.e, r), -ENOENT);
	cr_assert_eq(stats().unique_chunks, 0);
	cr_assert_eq(stats().index_entries, 0);
}

Test(engine_dedupe, overwrite_then_rewrite_stores_again, .init = open_lz4, .fini = close_env)
{
	struct engine_ref x1, x2, y, x3;
	static uint8_t y_data[BS];

	engine_test_fill_random(wbuf, BS, 3);
	engine_test_fill_random(y_data, BS, 4);
	x1 = write_ok(wbuf);
	x2 = write_ok(wbuf); /* a second offset holding the same data */
	cr_assert_eq(engine_ref_count(env.e, x1), 2);
	/* The second offset is overwritten with Y: the caller passes the old ref as PREV... */
	cr_assert_eq(engine_write(env.e, y_data, x2, &y), 0);
	cr_assert_neq(y.v, x1.v);
	cr_assert_eq(engine_ref_count(env.e, x1), 2, "PREV is only a hint, not released");
	/* ...and then releases it. */
	cr_assert_eq(engine_ref_put(env.e, x2), 0);
	cr_assert_eq(engine_ref_count(env.e, x1), 1);
	assert_reads_back(x1, wbuf, BS);
	assert_reads_back(y, y_data, BS);
	/* A clone takes a reference; both owners must drop it before it goes. */
	cr_assert_eq(engine_ref_get(env.e, x1), 0);
	cr_assert_eq(engine_ref_count(env.e, x1), 2);
	cr_assert_eq(engine_ref_put(env.e, x1), 0);
	cr_assert_eq(engine_ref_put(env.e, x1), 0);
	cr_assert_eq(engine_ref_count(env.e, x1), 0);
	cr_assert_eq(stats().unique_chunks, 1);
	/* Written again after the last put: a new chunk, indexed again. */
	x3 = write_ok(wbuf);
	cr_assert_eq(engine_ref_count(env.e, x3), 1);
	assert_reads_back(x3, wbuf, BS);
	cr_assert_eq(write_ok(wbuf).v, x3.v);
	cr_assert_eq(stats().unique_chunks, 2);
}

Test(engine_dedupe, off_stores_duplicates_separately)
{
	struct engine_ref r1, r2, r3;

	open_env(ENGINE_CODEC_LZ4, 0, false);
	engine_test_fill_text(wbuf, BS, 5);
	r1 = write_ok(wbuf);
	r2 = write_ok(wbuf);
	cr_assert_neq(r1.v, r2.v);
	cr_assert_eq(engine_ref_count(env.e, r1), 1);
	cr_assert_eq(engine_ref_count(env.e, r2), 1);
	cr_assert_eq(stats().unique_chunks, 2);
	cr_assert_eq(stats().index_entries, 0);
	cr_assert_eq(stats().compressed_blocks, 2, "still compressed");
	/* Still reference counted, so clones can share them. */
	cr_assert_eq(engine_ref_get(env.e, r1), 0);
	cr_assert_eq(engine_ref_count(env.e, r1), 2);
	/* Turned on live: the next write is indexed (the old copies are not). */
	engine_set_dedupe(env.e, true);
	r3 = write_ok(wbuf);
	cr_assert_neq(r3.v, r1.v);
	cr_assert_eq(write_ok(wbuf).v, r3.v);
	cr_assert_eq(engine_ref_put(env.e, r2), 0);
	cr_assert_eq(stats().unique_chunks, 2);
	assert_reads_back(r1, wbuf, BS);
	engine_test_close(&env);
}

Test(engine_dedupe, index_add_registers_existing_chunk, .init = open_lz4, .fini = close_env)
{
	uint8_t hash[32];
	struct ftl_addr a;
	struct engine_ref r;

	engine_test_fill_random(wbuf, BS, 6);
	cr_assert_eq(engine_sha256(wbuf, BS, hash), 0);
	cr_assert_eq(
	    ftl_write(env.ftl, wbuf, BS, hash, &(struct ftl_write_opts){.prev = FTL_ADDR_NONE}, &a),
	    0);
	cr_assert_eq(engine_index_add(env.e, a, hash, 2), 0);
	cr_assert_eq(engine_index_add(env.e, a, hash, 1), -EEXIST);
	r = write_ok(wbuf);
	cr_assert_eq(r.v & ((UINT64_C(1) << 62) - 1), a.v);
	cr_assert_eq(engine_ref_count(env.e, r), 3);
	assert_reads_back(r, wbuf, BS);
}

/* Mount registers every chunk found: copies of one content (stored with dedupe off), some known
 * only by the hash prefix a checkpoint keeps. That must read nothing from flash (it used to cost
 * a verification per earlier copy: N^2/2 reads), and a later write of that content still
 * dedupes to a copy, verified by its full hash on flash. */
Test(engine_dedupe, index_add_of_many_copies_reads_nothing, .init = open_lz4, .fini = close_env)
{
	enum { COPIES = 40 };
	uint8_t hash[32], prefix[32] = {0};
	struct ftl_addr a[COPIES];
	struct ftl_dev_stats before, after;

	engine_test_fill_random(wbuf, BS, 80);
	cr_assert_eq(engine_sha256(wbuf, BS, hash), 0);
	memcpy(prefix, hash, FTL_SCAN_HASH_PREFIX);
	for (int i = 0; i < COPIES; i++)
		cr_assert_eq(ftl_write(env.ftl, wbuf, BS, hash,
		                       &(struct ftl_write_opts){.prev = FTL_ADDR_NONE}, &a[i]),
		             0);
	cr_assert_eq(ftl_sync(env.ftl), 0);
	ftl_dev_get_stats(env.dev, &before);
	for (int i = 0; i < COPIES; i++)
		cr_assert_eq(engine_index_add(env.e, a[i], i % 2 ? prefix : hash, 1), 0);
	ftl_dev_get_stats(env.dev, &after);
	cr_assert_eq(after.reads, before.reads, "index_add read the device %llu times",
	             (unsigned long long)(after.reads - before.reads));
	struct engine_ref r = write_ok(wbuf);
	uint64_t id = r.v & ((UINT64_C(1) << 62) - 1);
	bool found = false;
	for (int i = 0; i < COPIES; i++)
		found |= a[i].v == id;
	cr_assert(found, "the write did not dedupe to one of the copies");
	cr_assert_eq(engine_ref_count(env.e, r), 2);
	assert_reads_back(r, wbuf, BS);
	/* Freeing every copy leaves nothing indexed that a new write could match. */
	cr_assert_eq(engine_ref_put(env.e, r), 0);
	for (int i = 0; i < COPIES; i++)
		cr_assert_eq(
		    engine_ref_put(env.e,
		                   (struct engine_ref){(uint64_t)ENGINE_REF_CHUNK << 62 | a[i].v}),
		    0);
	struct engine_ref r2 = write_ok(wbuf);
	assert_reads_back(r2, wbuf, BS);
}

/* ---- codecs --------------------------------------------------------------------------- */

static void roundtrip_kinds(enum engine_codec codec, int level, uint32_t bs)
{
	static uint8_t data[3][65536];
	struct engine_ref r[3];
	struct engine_stats st;

	cr_assert_eq(engine_test_open(&env, 64 * MiB, bs, codec, level, true), 0);
	engine_test_fill_random(data[0], bs, 10);
	engine_test_fill_text(data[1], bs, 11);
	for (uint32_t i = 0; i < bs; i++)
		data[2][i] = (uint8_t) "pattern!"[i % 8];
	for (int k = 0; k < 3; k++)
		r[k] = write_ok(data[k]);
	for (int k = 0; k < 3; k++)
		assert_reads_back(r[k], data[k], bs);
	st = stats();
	cr_assert_eq(st.raw_blocks, 1, "random data stays raw");
	cr_assert_eq(st.pattern_blocks, 1);
	if (codec == ENGINE_CODEC_NONE) {
		cr_assert_eq(st.compressed_blocks, 0);
		cr_assert_eq(st.raw_blocks, 1);
		cr_assert_eq(st.raw_probed_blocks, 0, "no codec: nothing to probe for");
	} else {
		cr_assert_eq(st.raw_probed_blocks, 1, "the random block skipped the codec");
		cr_assert_eq(st.compressed_blocks, 1, "text compresses");
		cr_assert_lt(st.stored_bytes, 2 * bs - bs / 4);
		cr_assert_gt(st.compression_ratio, 1.0);
	}
	engine_test_close(&env);
}

Test(engine_codec, lz4_round_trips_random_text_and_pattern)
{
	roundtrip_kinds(ENGINE_CODEC_LZ4, 0, 4096);
}

Test(engine_codec, zstd_round_trips_random_text_and_pattern)
{
	roundtrip_kinds(ENGINE_CODEC_ZSTD, 3, 4096);
}

Test(engine_codec, zstd19_round_trips_64k_blocks)
{
	roundtrip_kinds(ENGINE_CODEC_ZSTD, 19, 65536);
}

Test(engine_codec, lz4_round_trips_16k_blocks)
{
	roundtrip_kinds(ENGINE_CODEC_LZ4, 0, 16384);
}

static void raw_fallback(enum engine_codec codec)
{
	struct engine_ref r;
	struct engine_stats st;

	open_env(codec, 0, true);
	/* 15/16 random + 1/16 zeros: compression saves about 1/16 < 1/8: stored raw. */
	engine_test_fill_random(wbuf, BS, 20);
	memset(wbuf + BS - BS / 16, 0, BS / 16);
	r = write_ok(wbuf);
	st = stats();
	cr_assert_eq(st.raw_blocks, 1);
	cr_assert_eq(st.compressed_blocks, 0);
	cr_assert_eq(st.stored_bytes, BS);
	cr_assert_eq(ftl_chunk_len(env.ftl, (struct ftl_addr){r.v & ((UINT64_C(1) << 62) - 1)}),
	             (int)BS);
	assert_reads_back(r, wbuf, BS);
	/* 3/4 random + 1/4 zeros saves about 1/4: stored compressed. */
	engine_test_fill_random(wbuf, BS, 21);
	memset(wbuf + BS - BS / 4, 0, BS / 4);
	r = write_ok(wbuf);
	st = stats();
	cr_assert_eq(st.compressed_blocks, 1);
	cr_assert_leq(st.stored_bytes - BS, BS - BS / 8);
	assert_reads_back(r, wbuf, BS);
	engine_test_close(&env);
}

/* The incompressibility probe (engine_codec.c) samples with an odd step: fio's random buffers
 * take few values in the first byte of each 8 (a 64-bit generator), which a step of 32 read as
 * text. Blocks a codec shrinks must never be judged random. */
Test(engine_codec, probe_skips_random_data_only, .init = open_lz4, .fini = close_env)
{
	struct engine_stats st;
	struct engine_ref r[4];
	static uint8_t blk[4][BS];

	/* Random, but every 8th byte one of 4 values: incompressible, must be probed. */
	engine_test_fill_random(blk[0], BS, 40);
	for (uint32_t i = 0; i < BS; i += 8)
		blk[0][i] &= 3;
	/* Half random, half zeros (fio's buffer_compress_percentage=50). */
	engine_test_fill_random(blk[1], BS, 41);
	memset(blk[1] + BS / 2, 0, BS / 2);
	/* Text, and 16-byte records of a random 4-byte key and a fixed 12-byte tail. */
	engine_test_fill_text(blk[2], BS, 42);
	engine_test_fill_random(blk[3], BS, 43);
	for (uint32_t i = 0; i < BS; i += 16)
		memcpy(blk[3] + i + 4, "fixed record", 12);
	for (int k = 0; k < 4; k++)
		r[k] = write_ok(blk[k]);
	st = stats();
	cr_assert_eq(st.raw_blocks, 1);
	cr_assert_eq(st.raw_probed_blocks, 1);
	cr_assert_eq(st.compressed_blocks, 3, "half-random, text and records still compress");
	for (int k = 0; k < 4; k++)
		assert_reads_back(r[k], blk[k], BS);
	/* Of 64 random blocks whose last quarter is zeros (LZ4 saves about 1/4), at most 2 may be
	 * judged random: 96 random samples show 81 +- 4 distinct values, the cut is 90. */
	for (uint64_t seed = 0; seed < 64; seed++) {
		engine_test_fill_random(blk[0], BS, 100 + seed);
		memset(blk[0] + BS - BS / 4, 0, BS / 4);
		write_ok(blk[0]);
	}
	cr_assert_leq(stats().raw_probed_blocks - st.raw_probed_blocks, 2);
}

Test(engine_codec, lz4_keeps_raw_when_saving_under_one_eighth)
{
	raw_fallback(ENGINE_CODEC_LZ4);
}

Test(engine_codec, zstd_keeps_raw_when_saving_under_one_eighth)
{
	raw_fallback(ENGINE_CODEC_ZSTD);
}

Test(engine_codec, set_codec_applies_to_next_block, .init = open_lz4, .fini = close_env)
{
	static uint8_t t2[BS];
	struct engine_ref r1, r2, r3;

	engine_test_fill_text(wbuf, BS, 30);
	engine_test_fill_text(t2, BS, 31);
	r1 = write_ok(wbuf);
	cr_assert_eq(engine_set_codec(env.e, ENGINE_CODEC_ZSTD, 19), 0);
	r2 = write_ok(t2);
	cr_assert_eq(engine_set_codec(env.e, ENGINE_CODEC_NONE, 0), 0);
	engine_test_fill_text(wbuf + BS / 2, BS / 2, 32);
	r3 = write_ok(wbuf);
	cr_assert_eq(stats().compressed_blocks, 2);
	cr_assert_eq(stats().raw_blocks, 1);
	assert_reads_back(r2, t2, BS);
	assert_reads_back(r3, wbuf, BS);
	engine_test_fill_text(wbuf, BS, 30);
	assert_reads_back(r1, wbuf, BS);
}

/* ---- corruption ----------------------------------------------------------------------- */

/* Finds NEEDLE on the memory device (chunks are stored contiguously after an 8-byte header). */
static int64_t find_on_device(const void *needle, size_t len)
{
	const size_t win = 1 * MiB;
	uint8_t *buf = malloc(win + len);
	uint64_t size = ftl_dev_size(env.dev);
	int64_t found = -1;

	cr_assert_not_null(buf);
	for (uint64_t off = 0; off < size && found < 0; off += win) {
		size_t n = off + win + len <= size ? win + len : size - off;
		void *p;

		n -= n % 4096;
		cr_assert_eq(ftl_dev_read(env.dev, buf, n, off), 0);
		p = memmem(buf, n, needle, len);
		if (p)
			found = (int64_t)(off + (uint64_t)((uint8_t *)p - buf));
	}
	free(buf);
	return found;
}

static void corrupt_and_read(enum engine_codec codec, bool compressible)
{
	struct engine_ref r;
	int64_t off;

	open_env(codec, 0, true);
	if (compressible)
		engine_test_fill_text(wbuf, BS, 40);
	else
		engine_test_fill_random(wbuf, BS, 40);
	r = write_ok(wbuf);
	cr_assert_eq(ftl_sync(env.ftl), 0);
	if (compressible) {
		/* Find the compressed payload through the chunk itself. */
		int n = ftl_read(env.ftl, (struct ftl_addr){r.v & ((UINT64_C(1) << 62) - 1)}, rbuf,
		                 BS, NULL);

		cr_assert_gt(n, 32);
		off = find_on_device(rbuf, (size_t)n);
		cr_assert_geq(off, 0, "compressed chunk not found on the device");
		off += n / 2;
	} else {
		off = find_on_device(wbuf, 256);
		cr_assert_geq(off, 0, "raw chunk not found on the device");
		off += 1000;
	}
	cr_assert_eq(ftl_dev_mem_flip_bit(env.dev, (uint64_t)off, 3), 0);
	ftl_read_device_only(true); /* not the bytes of the pack just written, kept in memory */
	cr_assert_eq(engine_read(env.e, r, rbuf), -EIO);
	cr_assert_eq(stats().read_errors, 1);
	engine_test_close(&env);
}

Test(engine_read, corrupt_raw_chunk_returns_eio)
{
	corrupt_and_read(ENGINE_CODEC_LZ4, false);
}

Test(engine_read, corrupt_lz4_chunk_returns_eio)
{
	corrupt_and_read(ENGINE_CODEC_LZ4, true);
}

Test(engine_read, corrupt_zstd_chunk_returns_eio)
{
	corrupt_and_read(ENGINE_CODEC_ZSTD, true);
}

Test(engine_read, chunk_that_does_not_decompress_to_a_block_returns_eio, .init = open_lz4,
     .fini = close_env)
{
	uint8_t hash[32] = {0};
	struct ftl_addr a;
	struct engine_ref r;

	/* A valid (checksummed) chunk flagged LZ4 whose payload is not an LZ4 block of BS bytes. */
	engine_test_fill_text(wbuf, 1000, 50);
	cr_assert_eq(
	    ftl_write(env.ftl, wbuf, 1000, hash,
	              &(struct ftl_write_opts){.prev = FTL_ADDR_NONE, .flags = ENGINE_CODEC_LZ4},
	              &a),
	    0);
	r.v = (uint64_t)ENGINE_REF_CHUNK << 62 | a.v;
	cr_assert_eq(engine_read(env.e, r, rbuf), -EIO);
	/* Flagged raw but shorter than a block. */
	cr_assert_eq(ftl_write(env.ftl, wbuf, 1000, hash,
	                       &(struct ftl_write_opts){.prev = FTL_ADDR_NONE}, &a),
	             0);
	r.v = (uint64_t)ENGINE_REF_CHUNK << 62 | a.v;
	cr_assert_eq(engine_read(env.e, r, rbuf), -EIO);
	cr_assert_eq(stats().read_errors, 2);
}

Test(engine_read, rejects_malformed_refs, .init = open_lz4, .fini = close_env)
{
	cr_assert_eq(engine_read(env.e, (struct engine_ref){3ull << 62}, rbuf), -EINVAL);
	cr_assert_eq(engine_read(env.e, (struct engine_ref){5}, rbuf), -EINVAL);
	cr_assert_eq(engine_read(env.e, (struct engine_ref){1ull << 62}, rbuf), -EINVAL);
	cr_assert_eq(engine_read(env.e, (struct engine_ref){2ull << 62 | 12345}, rbuf), -ENOENT);
}

/* ---- stats and memory ----------------------------------------------------------------- */

Test(engine_stats, ratios_chain_to_total, .init = open_lz4, .fini = close_env)
{
	struct engine_stats st;

	memset(wbuf, 0, BS);
	write_ok(wbuf);
	engine_test_fill_text(wbuf, BS, 60);
	write_ok(wbuf);
	write_ok(wbuf);
	engine_test_fill_random(wbuf, BS, 61);
	write_ok(wbuf);
	st = stats();
	cr_assert_eq(st.blocks_written, 4);
	cr_assert_eq(st.logical_bytes, 4 * BS);
	cr_assert_eq(st.pattern_bytes, BS);
	cr_assert_eq(st.dedupe_bytes, BS);
	cr_assert_float_eq(st.pattern_ratio, 4.0 / 3.0, 1e-9);
	cr_assert_float_eq(st.dedupe_ratio, 1.5, 1e-9);
	cr_assert_float_eq(st.compression_ratio, 2.0 * BS / (double)st.stored_bytes, 1e-9);
	cr_assert_float_eq(st.total_ratio,
	                   st.pattern_ratio * st.dedupe_ratio * st.compression_ratio, 1e-9);
	cr_assert_eq(st.compression_saved_bytes, 2 * BS - st.stored_bytes);
}

Test(engine_memory, index_and_chunk_table_cost_at_most_24_bytes_per_unique_block)
{
	const uint64_t n = 100000;
	struct engine_stats st;
	struct engine_ref r;
	double per_block;

	cr_assert_eq(engine_test_open(&env, 128 * MiB, BS, ENGINE_CODEC_LZ4, 0, true), 0);
	for (uint64_t i = 0; i < n; i++) {
		engine_test_fill_unique_small(wbuf, BS, i);
		cr_assert_eq(engine_write(env.e, wbuf, ENGINE_REF_ZERO_VALUE, &r), 0, "block %lu",
		             (unsigned long)i);
	}
	st = stats();
	cr_assert_eq(st.unique_chunks, n);
	cr_assert_eq(st.index_entries, n);
	per_block = (double)(st.mem_index_bytes + st.mem_chunk_table_bytes) / (double)n;
	cr_log_info("index %lu + chunk table %lu bytes = %.2f bytes per unique block",
	            (unsigned long)st.mem_index_bytes, (unsigned long)st.mem_chunk_table_bytes,
	            per_block);
	cr_assert_leq(per_block, 24.0, "%.2f bytes per unique block", per_block);
	/* Every block is still found. */
	for (uint64_t i = 0; i < n; i += 997) {
		engine_test_fill_unique_small(wbuf, BS, i);
		cr_assert_eq(engine_write(env.e, wbuf, ENGINE_REF_ZERO_VALUE, &r), 0);
		cr_assert_eq(engine_ref_count(env.e, r), 2);
	}
	cr_assert_eq(stats().unique_chunks, n);
	engine_test_close(&env);
}

Test(engine_dedupe, tag_match_is_verified_against_hash_on_flash, .init = open_lz4,
     .fini = close_env)
{
	static uint8_t other[BS];
	uint8_t hash_a[32], hash_b[32];
	struct ftl_addr a;
	struct engine_ref r;

	/* Chunk A on flash carries A's hash, but is indexed under B's hash (as if only the RAM tag
	 * matched): writing B must not return A. */
	engine_test_fill_random(wbuf, BS, 70);
	engine_test_fill_random(other, BS, 71);
	cr_assert_eq(engine_sha256(wbuf, BS, hash_a), 0);
	cr_assert_eq(engine_sha256(other, BS, hash_b), 0);
	cr_assert_eq(ftl_write(env.ftl, wbuf, BS, hash_a,
	                       &(struct ftl_write_opts){.prev = FTL_ADDR_NONE}, &a),
	             0);
	cr_assert_eq(engine_index_add(env.e, a, hash_b, 1), 0);
	r = write_ok(other);
	cr_assert_neq(r.v & ((UINT64_C(1) << 62) - 1), a.v);
	/* Counted on the lookup and again on the re-check before insert. */
	cr_assert_geq(stats().hash_verify_misses, 1);
	assert_reads_back(r, other, BS);
}

/* ---- a run of blocks at once (engine_write_run) --------------------------------------- */

static uint64_t ftl_live_chunks(void)
{
	struct ftl_stats fs;

	ftl_get_stats(env.ftl, &fs);
	return fs.chunks_live;
}

/* 150 blocks (19 batches of ENGINE_RUN_BYTES): zeros, a one-byte pattern, a copy of a block
 * stored before the run, copies of blocks earlier in the run (7 blocks before: the same batch or
 * the one before; 100 blocks before), and unique text and random blocks. Each reference reads
 * back its block, the copies share chunks, and the counts are those of one block at a time. */
Test(engine_write_run, gives_the_references_of_one_block_at_a_time, .init = open_lz4,
     .fini = close_env)
{
	enum { N = 150 };
	static uint8_t run[N][BS], fp[N][ENGINE_FP_LEN];
	struct engine_ref prev[N], out[N], before;
	uint64_t distinct = 1; /* the block stored before the run */

	engine_test_fill_random(wbuf, BS, 999);
	before = write_ok(wbuf);
	for (int i = 0; i < N; i++) {
		prev[i] = ENGINE_REF_ZERO_VALUE;
		if (i % 10 == 0) {
			memset(run[i], 0, BS);
		} else if (i % 10 == 1) {
			memset(run[i], 0xab, BS);
		} else if (i % 10 == 2) {
			memcpy(run[i], wbuf, BS); /* stored before the run */
		} else if (i % 10 == 3 && i > 10) {
			memcpy(run[i], run[i - 7], BS); /* a unique block */
		} else if (i % 10 == 4 && i > 100) {
			memcpy(run[i], run[i - 100], BS); /* a unique block long before */
		} else {
			if (i % 2)
				engine_test_fill_random(run[i], BS, 1000 + (uint64_t)i);
			else
				engine_test_fill_text(run[i], BS, 1000 + (uint64_t)i);
			distinct++;
		}
	}
	cr_assert_eq(engine_write_run(env.e, run, N, prev, out, fp), 0);
	for (int i = 0; i < N; i++)
		assert_reads_back(out[i], run[i], BS);
	for (int i = 0; i < N; i++) {
		if (i % 10 == 0)
			cr_expect_eq(out[i].v, ENGINE_REF_ZERO_VALUE.v, "block %d: zeros", i);
		else if (i % 10 == 1)
			cr_expect_eq(engine_ref_kind(out[i]), ENGINE_REF_PATTERN, "block %d", i);
		else if (i % 10 == 2)
			cr_expect_eq(out[i].v, before.v, "block %d: the chunk stored before", i);
		else if (i % 10 == 3 && i > 10)
			cr_expect_eq(out[i].v, out[i - 7].v, "block %d: a recent block's chunk", i);
		else if (i % 10 == 4 && i > 100)
			cr_expect_eq(out[i].v, out[i - 100].v, "block %d: an earlier batch's chunk",
			             i);
		if (engine_ref_kind(out[i]) == ENGINE_REF_CHUNK && i >= 7 &&
		    out[i].v == out[i - 7].v)
			cr_expect_arr_eq(fp[i], fp[i - 7], ENGINE_FP_LEN,
			                 "block %d: its fingerprint", i);
	}
	cr_expect_eq(stats().unique_chunks, distinct);
	cr_expect_eq(stats().index_entries, distinct);
	cr_expect_eq(ftl_live_chunks(), distinct, "the copies' own chunks were freed");
	cr_expect_eq(engine_ref_count(env.e, before), 1 + N / 10);
	cr_expect_eq(stats().blocks_written, 1 + N);
}

/* A device write fails in the middle of the run (the first pack fills at about its 250th block):
 * the run fails, and nothing of it stays stored or referenced, its earlier batches included. */
Test(engine_write_run, leaves_nothing_when_a_write_fails, .init = open_lz4, .fini = close_env)
{
	enum { N = 300 };
	static uint8_t run[N][BS];
	struct engine_ref prev[N], out[N];

	for (int i = 0; i < N; i++) {
		prev[i] = ENGINE_REF_ZERO_VALUE;
		engine_test_fill_random(run[i], BS, 5000 + (uint64_t)i);
	}
	/* The segment's header is written when the first chunk comes; the pack write fails. */
	cr_assert_eq(ftl_dev_mem_power_cut_after(env.dev, 1, false), 0);
	int rc = engine_write_run(env.e, run, N, prev, out, NULL);
	cr_expect_eq(rc, -EIO, "%d", rc);
	cr_expect(stats().blocks_written > 200, "it failed when the first pack filled: %llu blocks",
	          (unsigned long long)stats().blocks_written);
	cr_expect_eq(stats().unique_chunks, 0);
	cr_expect_eq(stats().index_entries, 0);
	cr_expect_eq(ftl_live_chunks(), 0);
	cr_assert_eq(ftl_dev_mem_revive(env.dev), 0);
}
