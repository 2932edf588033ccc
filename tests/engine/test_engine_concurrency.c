/* tests/engine/test_engine_concurrency.c - several threads writing, reading and releasing
 * overlapping duplicate sets at once; afterwards every reference reads back and counts add up.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "engine_test.h"

#define BS       4096u
#define THREADS  4
#define CONTENTS 300  /* distinct blocks */
#define WRITES   1500 /* per thread */

static struct engine_test_env env;

struct worker {
	pthread_t tid;
	int id;
	int err;
	uint32_t content[WRITES];
	struct engine_ref ref[WRITES];
};

static void make_content(uint8_t *b, uint32_t c)
{
	/* A mix of what the engine sees: incompressible, compressible, patterns. */
	switch (c % 5) {
	case 0:
	case 1:
		engine_test_fill_random(b, BS, 1000 + c);
		break;
	case 2:
	case 3:
		engine_test_fill_text(b, BS, 2000 + c);
		break;
	default:
		for (uint32_t i = 0; i < BS; i++)
			b[i] = (uint8_t)(c + i % (1 + c % 16));
	}
}

static void *writer(void *arg)
{
	struct worker *w = arg;
	uint8_t b[BS];

	for (int i = 0; i < WRITES; i++) {
		/* Overlapping sets: each thread walks the contents in its own order. */
		uint32_t c = (uint32_t)(i * (2 * w->id + 7) + w->id * 31) % CONTENTS;
		int rc;

		make_content(b, c);
		w->content[i] = c;
		rc = engine_write(env.e, b, i ? w->ref[i - 1] : ENGINE_REF_ZERO_VALUE, &w->ref[i]);
		if (rc) {
			w->err = rc;
			return NULL;
		}
		if (i % 3 == 0) {
			uint8_t r[BS];

			rc = engine_read(env.e, w->ref[i], r);
			if (rc || memcmp(r, b, BS)) {
				w->err = rc ? rc : -EBADMSG;
				return NULL;
			}
		}
	}
	return NULL;
}

static void *releaser(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < WRITES; i++) {
		int rc = engine_ref_put(env.e, w->ref[i]);

		if (rc) {
			w->err = rc;
			return NULL;
		}
	}
	return NULL;
}

static void run_all(struct worker *w, void *(*fn)(void *))
{
	for (int t = 0; t < THREADS; t++)
		cr_assert_eq(pthread_create(&w[t].tid, NULL, fn, &w[t]), 0);
	for (int t = 0; t < THREADS; t++) {
		pthread_join(w[t].tid, NULL);
		cr_assert_eq(w[t].err, 0, "thread %d: %d", t, w[t].err);
	}
}

static void concurrent_round(bool dedupe)
{
	static struct worker w[THREADS];
	static struct engine_ref by_content[CONTENTS];
	static int64_t expect[CONTENTS];
	struct engine_stats st;
	uint8_t b[BS], r[BS];

	cr_assert_eq(engine_test_open(&env, 256ull << 20, BS, ENGINE_CODEC_LZ4, 0, dedupe), 0);
	memset(w, 0, sizeof(w));
	memset(by_content, 0xff, sizeof(by_content));
	memset(expect, 0, sizeof(expect));
	for (int t = 0; t < THREADS; t++)
		w[t].id = t;
	run_all(w, writer);

	for (int t = 0; t < THREADS; t++) {
		for (int i = 0; i < WRITES; i++) {
			uint32_t c = w[t].content[i];
			struct engine_ref ref = w[t].ref[i];

			make_content(b, c);
			cr_assert_eq(engine_read(env.e, ref, r), 0);
			cr_assert_arr_eq(r, b, BS, "thread %d write %d content %u", t, i, c);
			if (engine_ref_kind(ref) != ENGINE_REF_CHUNK)
				continue;
			if (dedupe) {
				/* One content, one chunk, whichever thread stored it first. */
				if (by_content[c].v == UINT64_MAX)
					by_content[c] = ref;
				cr_assert_eq(by_content[c].v, ref.v, "content %u stored twice", c);
			}
		}
	}
	if (dedupe) {
		uint64_t chunks = 0;

		for (int t = 0; t < THREADS; t++)
			for (int i = 0; i < WRITES; i++)
				if (engine_ref_kind(w[t].ref[i]) == ENGINE_REF_CHUNK)
					expect[w[t].content[i]]++;
		for (int c = 0; c < CONTENTS; c++) {
			if (!expect[c])
				continue;
			chunks++;
			cr_assert_eq(engine_ref_count(env.e, by_content[c]), expect[c],
			             "content %d", c);
		}
		engine_get_stats(env.e, &st);
		cr_assert_eq(st.unique_chunks, chunks);
		cr_assert_eq(st.index_entries, chunks);
	}

	run_all(w, releaser);
	engine_get_stats(env.e, &st);
	cr_assert_eq(st.unique_chunks, 0);
	cr_assert_eq(st.index_entries, 0);
	cr_assert_eq(st.blocks_written, (uint64_t)THREADS * WRITES);
	engine_test_close(&env);
}

Test(engine_concurrency, overlapping_duplicates_share_chunks_and_counts_add_up, .timeout = 120)
{
	concurrent_round(true);
}

Test(engine_concurrency, dedupe_off_writers_release_everything, .timeout = 120)
{
	concurrent_round(false);
}
