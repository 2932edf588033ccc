/* tests/stress/stress_engine_ftl.c - a plain program (criterion cannot run under TSan) that
 * hammers the engine and the FTL from several threads while the FTL's GC thread cleans, one
 * thread syncs, one takes checkpoints and the codec changes, then checks every block. Exit 0 = all
 * blocks exact.
 *
 * Built by CMake as `stress_engine_ftl`; meant for a -DPSTOR_SANITIZE_THREAD=ON build.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "ftl.h"

#define BS      4096u
#define THREADS 4
#define SLOTS   512 /* logical blocks per thread */
#define ROUNDS  40

struct worker {
	struct engine *e;
	struct ftl *ftl;
	int tid;
	struct engine_ref refs[SLOTS];
	uint32_t ver[SLOTS];
	long errors;
};

/* The first half of the slots share content across threads (duplicates); the second half is
 * unique per thread and version, so GC has garbage to clean. */
static void fill(uint8_t *b, int tid, int slot, uint32_t ver)
{
	uint64_t s = slot < SLOTS / 2 ? (uint64_t)(slot % 64) * 1000003u + ver % 3 + 1
	                              : ((uint64_t)tid << 40) + ((uint64_t)slot << 20) + ver;
	for (uint32_t i = 0; i < BS; i += 8) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		uint64_t v = (i % 64) < 32 ? s : 0x2020202020202020ull; /* compressible */
		memcpy(b + i, &v, 8);
	}
}

static void *worker_main(void *p)
{
	struct worker *w = p;
	uint8_t buf[BS], got[BS];
	for (int round = 0; round < ROUNDS; round++) {
		for (int i = 0; i < SLOTS; i++) {
			struct engine_ref nr;
			w->ver[i]++;
			fill(buf, w->tid, i, w->ver[i]);
			if (engine_write(w->e, buf, w->refs[i], &nr)) {
				w->errors++;
				continue;
			}
			if (engine_ref_put(w->e, w->refs[i]))
				w->errors++;
			w->refs[i] = nr;
		}
		if (w->tid == 0 && ftl_sync(w->ftl))
			w->errors++;
		/* A checkpoint drains every stream while the others append and write packs. */
		if (w->tid == 2 && round % 4 == 3 && ftl_checkpoint(w->ftl))
			w->errors++;
		if (w->tid == 1)
			engine_set_codec(w->e, round % 2 ? ENGINE_CODEC_ZSTD : ENGINE_CODEC_LZ4, 3);
		for (int i = 0; i < SLOTS; i++) {
			fill(buf, w->tid, i, w->ver[i]);
			if (engine_read(w->e, w->refs[i], got) || memcmp(buf, got, BS))
				w->errors++;
		}
	}
	return NULL;
}

int main(void)
{
	struct ftl_dev *dev = NULL;
	struct ftl *ftl = NULL;
	struct engine *e = NULL;
	struct worker *w = calloc(THREADS, sizeof(*w));
	int rc;

	if (!w)
		return 1;
	rc = ftl_dev_open_mem(24u << 20, 4096, &dev);
	if (!rc)
		rc = ftl_format(dev, &(struct ftl_format_params){.segment_size = 256u << 10});
	if (!rc)
		rc = ftl_open(
		    &(struct ftl_config){
		        .dev = dev, .gc_thread = true, .gc_low_pct = 40, .gc_high_pct = 50},
		    &ftl);
	if (!rc)
		rc = engine_open(
		    &(struct engine_config){
		        .ftl = ftl, .block_size = BS, .codec = ENGINE_CODEC_LZ4, .dedupe = true},
		    &e);
	if (rc) {
		fprintf(stderr, "stress: setup failed: %s\n", strerror(-rc));
		return 1;
	}
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++) {
		w[i].e = e;
		w[i].ftl = ftl;
		w[i].tid = i;
		pthread_create(&t[i], NULL, worker_main, &w[i]);
	}
	long errors = 0;
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		errors += w[i].errors;
	}
	struct engine_stats es;
	struct ftl_stats fs;
	engine_get_stats(e, &es);
	ftl_get_stats(ftl, &fs);
	for (int i = 0; i < THREADS; i++)
		for (int k = 0; k < SLOTS; k++)
			errors += engine_ref_put(e, w[i].refs[k]) != 0;
	engine_get_stats(e, &es);
	printf("stress: %ld errors, gc runs %llu, dedupe blocks %llu, unique chunks left %llu\n",
	       errors, (unsigned long long)fs.gc_runs, (unsigned long long)es.dedupe_blocks,
	       (unsigned long long)es.unique_chunks);
	if (es.unique_chunks != 0)
		errors++;
	engine_close(e);
	ftl_close(ftl);
	ftl_dev_close(dev);
	free(w);
	printf("%d passed, %d failed\n", errors ? 0 : 1, errors ? 1 : 0);
	return errors ? 1 : 0;
}
