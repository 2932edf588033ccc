/* tests/engine/test_engine_pattern.c - the engine's pure helpers: pattern detection and fill,
 * SHA-256, codec names, stats printers. No FTL needed.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

static uint8_t blk[65536];

static void fill_period(uint8_t *b, uint32_t len, uint32_t period, uint8_t seed)
{
	for (uint32_t i = 0; i < len; i++)
		b[i] = (uint8_t)(seed + 37 * (i % period) + 1);
}

Test(engine_pattern, detects_all_zero_as_period_1)
{
	uint8_t pat[16] = {0xff};

	memset(blk, 0, 4096);
	cr_assert_eq(engine_pattern_detect(blk, 4096, pat), 1);
	cr_assert_eq(pat[0], 0);
}

Test(engine_pattern, detects_every_period_1_to_16_with_cut_tail)
{
	uint8_t pat[16];

	for (uint32_t p = 1; p <= 16; p++) {
		/* 4093 is a multiple of no period > 1 here: the last copy is cut short */
		fill_period(blk, 4093, p, (uint8_t)p);
		cr_assert_eq(engine_pattern_detect(blk, 4093, pat), (int)p, "period %u", p);
		cr_assert_arr_eq(pat, blk, p);
		fill_period(blk, 4096, p, (uint8_t)p);
		cr_assert_eq(engine_pattern_detect(blk, 4096, pat), (int)p, "period %u", p);
	}
}

Test(engine_pattern, detects_period_16_with_cut_tail)
{
	uint8_t pat[16];

	fill_period(blk, 4096 - 5, 16, 9);
	cr_assert_eq(engine_pattern_detect(blk, 4096 - 5, pat), 16);
	cr_assert_arr_eq(pat, blk, 16);
}

Test(engine_pattern, reports_shortest_period)
{
	uint8_t pat[16];

	/* "abab..." also has period 4, 6, ...: the answer must be 2. */
	fill_period(blk, 4096, 2, 1);
	cr_assert_eq(engine_pattern_detect(blk, 4096, pat), 2);
}

Test(engine_pattern, rejects_period_17)
{
	uint8_t pat[16];

	fill_period(blk, 4096, 17, 3);
	cr_assert_eq(engine_pattern_detect(blk, 4096, pat), 0);
}

Test(engine_pattern, rejects_single_differing_last_byte)
{
	uint8_t pat[16];

	for (uint32_t p = 1; p <= 16; p++) {
		fill_period(blk, 4096, p, 5);
		blk[4095] ^= 0x40;
		cr_assert_eq(engine_pattern_detect(blk, 4096, pat), 0, "period %u", p);
	}
}

Test(engine_pattern, rejects_single_differing_first_byte)
{
	uint8_t pat[16];

	for (uint32_t p = 1; p <= 16; p++) {
		fill_period(blk, 4096, p, 5);
		blk[0] ^= 0x40;
		cr_assert_eq(engine_pattern_detect(blk, 4096, pat), 0, "period %u", p);
	}
}

Test(engine_pattern, rejects_single_differing_middle_byte)
{
	uint8_t pat[16];

	memset(blk, 0, 4096);
	blk[2048] = 1;
	cr_assert_eq(engine_pattern_detect(blk, 4096, pat), 0);
}

Test(engine_pattern, handles_64k_blocks)
{
	uint8_t pat[16];

	fill_period(blk, 65536, 13, 7);
	cr_assert_eq(engine_pattern_detect(blk, 65536, pat), 13);
	blk[65535 - 20000] ^= 1;
	cr_assert_eq(engine_pattern_detect(blk, 65536, pat), 0);
	memset(blk, 0, 65536);
	cr_assert_eq(engine_pattern_detect(blk, 65536, pat), 1);
}

Test(engine_pattern, rejects_random_data)
{
	uint8_t pat[16];

	srand(1);
	for (uint32_t i = 0; i < 4096; i++)
		blk[i] = (uint8_t)rand();
	cr_assert_eq(engine_pattern_detect(blk, 4096, pat), 0);
}

Test(engine_sha256, matches_known_vectors)
{
	static const uint8_t abc[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea,
	                                0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
	                                0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c,
	                                0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
	static const uint8_t empty[32] = {0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14,
	                                  0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
	                                  0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c,
	                                  0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55};
	uint8_t h[32];

	cr_assert_eq(engine_sha256("abc", 3, h), 0);
	cr_assert_arr_eq(h, abc, 32);
	cr_assert_eq(engine_sha256("", 0, h), 0);
	cr_assert_arr_eq(h, empty, 32);
}

Test(engine_codec, parses_names_and_levels)
{
	enum engine_codec c;
	int level;

	cr_assert_eq(engine_codec_parse("lz4", &c, &level), 0);
	cr_assert_eq(c, ENGINE_CODEC_LZ4);
	cr_assert_eq(engine_codec_parse("none", &c, &level), 0);
	cr_assert_eq(c, ENGINE_CODEC_NONE);
	cr_assert_eq(engine_codec_parse("zstd", &c, &level), 0);
	cr_assert_eq(c, ENGINE_CODEC_ZSTD);
	cr_assert_eq(level, 3);
	cr_assert_eq(engine_codec_parse("zstd:19", &c, &level), 0);
	cr_assert_eq(level, 19);
	cr_assert_str_eq(engine_codec_name(ENGINE_CODEC_ZSTD), "zstd");
}

Test(engine_codec, rejects_bad_names_and_levels)
{
	enum engine_codec c;
	int level;

	cr_assert_eq(engine_codec_parse("zstd:0", &c, &level), -EINVAL);
	cr_assert_eq(engine_codec_parse("zstd:20", &c, &level), -EINVAL);
	cr_assert_eq(engine_codec_parse("zstd:", &c, &level), -EINVAL);
	cr_assert_eq(engine_codec_parse("zstd:3x", &c, &level), -EINVAL);
	cr_assert_eq(engine_codec_parse("zstd:-1", &c, &level), -EINVAL);
	cr_assert_eq(engine_codec_parse("lz4:1", &c, &level), -EINVAL);
	cr_assert_eq(engine_codec_parse("lz", &c, &level), -EINVAL);
	cr_assert_eq(engine_codec_parse("", &c, &level), -EINVAL);
}

Test(engine_stats, prints_every_counter_and_ratio)
{
	struct engine_stats st = {
	    .blocks_written = 3, .pattern_ratio = 1.5, .total_ratio = INFINITY};
	char text[4096], json[4096], small[8];
	int n;

	n = engine_stats_to_text(&st, text, sizeof(text));
	cr_assert_gt(n, 0);
	cr_assert_lt(n, (int)sizeof(text));
	cr_assert_not_null(strstr(text, "blocks_written: 3\n"));
	cr_assert_not_null(strstr(text, "mem_chunk_table_bytes: 0\n"));
	cr_assert_not_null(strstr(text, "pattern_ratio: 1.50\n"));
	cr_assert_not_null(strstr(text, "total_ratio: inf\n"));
	n = engine_stats_to_json(&st, json, sizeof(json));
	cr_assert_gt(n, 0);
	cr_assert_not_null(strstr(json, "\"blocks_written\": 3"));
	cr_assert_not_null(strstr(json, "\"total_ratio\": null"));
	/* Too small: truncated, NUL-terminated, and the full length returned (like snprintf). */
	cr_assert_eq(engine_stats_to_text(&st, small, sizeof(small)), (int)strlen(text));
	cr_assert_eq(strlen(small), sizeof(small) - 1);
}
