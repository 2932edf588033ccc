/* tests/engine/test_engine_recompress.c - engine_chunk_recompress: text stored with lz4 and
 * re-encoded with zstd:19 reads back byte-exact under the same reference (after an FTL reopen
 * too), saves bytes, is skipped when repeated or when the data does not shrink, and a dry run
 * changes nothing.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "engine_test.h"

#define BS 4096
#define NB 64

static struct engine_test_env env;

static void open_lz4(void)
{
	cr_assert_eq(engine_test_open(&env, 64ull << 20, BS, ENGINE_CODEC_LZ4, 0, true), 0);
}

static void close_env(void)
{
	engine_test_close(&env);
}

static void write_text(struct engine_ref *refs, uint8_t (*data)[BS])
{
	for (int i = 0; i < NB; i++) {
		engine_test_fill_text(data[i], BS, (uint64_t)i + 1);
		cr_assert_eq(engine_write(env.e, data[i], ENGINE_REF_ZERO_VALUE, &refs[i]), 0);
		cr_assert_eq(engine_ref_kind(refs[i]), ENGINE_REF_CHUNK);
	}
	cr_assert_eq(ftl_sync(env.ftl), 0);
}

static void check_all(const struct engine_ref *refs, uint8_t (*data)[BS])
{
	uint8_t got[BS];
	for (int i = 0; i < NB; i++) {
		cr_assert_eq(engine_read(env.e, refs[i], got), 0);
		cr_assert_eq(memcmp(got, data[i], BS), 0, "block %d differs", i);
	}
}

Test(engine_recompress, text_to_zstd19_saves_bytes_and_reads_back_exact, .init = open_lz4,
     .fini = close_env)
{
	static uint8_t data[NB][BS];
	struct engine_ref refs[NB];
	struct engine_recompress r;
	enum engine_codec c;
	int level;
	int64_t saved = 0;

	write_text(refs, data);
	for (int i = 0; i < NB; i++) {
		cr_assert_eq(engine_chunk_codec(env.e, refs[i], &c, &level), 0);
		cr_assert_eq(c, ENGINE_CODEC_LZ4);
		int rc = engine_chunk_recompress(env.e, refs[i], ENGINE_CODEC_ZSTD, 19, 0, &r);
		cr_assert_geq(rc, 0, "block %d: %d", i, rc);
		cr_assert_eq((uint32_t)rc, r.skipped ? 0 : r.old_len - r.new_len);
		saved += rc;
		if (!r.skipped) {
			cr_assert_eq(engine_chunk_codec(env.e, refs[i], &c, &level), 0);
			cr_assert_eq(c, ENGINE_CODEC_ZSTD);
			cr_assert_eq(level, 19);
		}
	}
	cr_assert_gt(saved, 0, "zstd:19 must beat lz4 on text");
	check_all(refs, data);
	/* A second pass finds every chunk in the target encoding from RAM. */
	for (int i = 0; i < NB; i++) {
		int rc = engine_chunk_recompress(env.e, refs[i], ENGINE_CODEC_ZSTD, 19, 0, &r);
		cr_assert_eq(rc, 0);
		cr_assert(r.skipped);
	}
	/* Durable and found by the scan at open. */
	cr_assert_eq(ftl_sync(env.ftl), 0);
	engine_close(env.e);
	ftl_close(env.ftl);
	cr_assert_eq(ftl_open(&(struct ftl_config){.dev = env.dev, .full_scan = true}, &env.ftl),
	             0);
	cr_assert_eq(engine_open(&(struct engine_config){.ftl = env.ftl,
	                                                 .block_size = BS,
	                                                 .codec = ENGINE_CODEC_LZ4},
	                         &env.e),
	             0);
	check_all(refs, data);
}

Test(engine_recompress, a_shared_chunk_is_recompressed_once_for_all_its_users, .init = open_lz4,
     .fini = close_env)
{
	uint8_t block[BS], got[BS];
	struct engine_ref a, b;
	struct engine_recompress r;

	engine_test_fill_text(block, BS, 7);
	cr_assert_eq(engine_write(env.e, block, ENGINE_REF_ZERO_VALUE, &a), 0);
	cr_assert_eq(engine_write(env.e, block, ENGINE_REF_ZERO_VALUE, &b), 0);
	cr_assert_eq(a.v, b.v, "dedupe shares the chunk");
	cr_assert_eq(engine_ref_count(env.e, a), 2);
	cr_assert_gt(engine_chunk_recompress(env.e, a, ENGINE_CODEC_ZSTD, 19, 0, &r), 0);
	cr_assert_eq(engine_chunk_recompress(env.e, b, ENGINE_CODEC_ZSTD, 19, 0, &r), 0);
	cr_assert(r.skipped);
	cr_assert_eq(engine_ref_count(env.e, a), 2, "no count changes");
	cr_assert_eq(engine_read(env.e, b, got), 0);
	cr_assert_eq(memcmp(got, block, BS), 0);
	/* Dedupe still finds it (its hash is kept). */
	struct engine_ref c;
	cr_assert_eq(engine_write(env.e, block, ENGINE_REF_ZERO_VALUE, &c), 0);
	cr_assert_eq(c.v, a.v);
}

Test(engine_recompress, incompressible_data_and_dry_runs_change_nothing, .init = open_lz4,
     .fini = close_env)
{
	uint8_t rnd[BS], txt[BS], got[BS];
	struct engine_ref r1, r2;
	struct engine_recompress r;
	enum engine_codec c;
	int level;

	engine_test_fill_random(rnd, BS, 3);
	engine_test_fill_text(txt, BS, 4);
	cr_assert_eq(engine_write(env.e, rnd, ENGINE_REF_ZERO_VALUE, &r1), 0);
	cr_assert_eq(engine_write(env.e, txt, ENGINE_REF_ZERO_VALUE, &r2), 0);
	/* Random bytes are stored raw; zstd cannot make them smaller. */
	cr_assert_eq(engine_chunk_recompress(env.e, r1, ENGINE_CODEC_ZSTD, 19, 0, &r), 0);
	cr_assert(r.skipped);
	cr_assert_eq(engine_chunk_codec(env.e, r1, &c, &level), 0);
	cr_assert_eq(c, ENGINE_CODEC_NONE);
	/* A dry run measures and leaves the chunk as it was. */
	int saved = engine_chunk_recompress(env.e, r2, ENGINE_CODEC_ZSTD, 19,
	                                    ENGINE_RECOMPRESS_DRY_RUN, &r);
	cr_assert_gt(saved, 0);
	cr_assert_eq((uint32_t)saved, r.old_len - r.new_len);
	cr_assert_eq(engine_chunk_codec(env.e, r2, &c, &level), 0);
	cr_assert_eq(c, ENGINE_CODEC_LZ4);
	cr_assert_eq(ftl_chunk_len(env.ftl, (struct ftl_addr){r2.v & ((1ull << 62) - 1)}),
	             (int)r.old_len);
	cr_assert_eq(engine_read(env.e, r2, got), 0);
	cr_assert_eq(memcmp(got, txt, BS), 0);
	/* Bad arguments. */
	cr_assert_eq(
	    engine_chunk_recompress(env.e, ENGINE_REF_ZERO_VALUE, ENGINE_CODEC_ZSTD, 19, 0, &r),
	    -EINVAL);
	cr_assert_eq(engine_chunk_recompress(env.e, r2, ENGINE_CODEC_ZSTD, 20, 0, &r), -EINVAL);
	cr_assert_eq(engine_chunk_recompress(env.e, r2, ENGINE_CODEC_COUNT, 0, 0, &r), -EINVAL);
	/* A freed chunk. */
	cr_assert_eq(engine_ref_put(env.e, r1), 0);
	cr_assert_eq(engine_chunk_recompress(env.e, r1, ENGINE_CODEC_ZSTD, 19, 0, &r), -ENOENT);
}
