/* tests/engine/engine_test.h - fixtures shared by the engine suites (engine_test_util.c):
 * an engine over an FTL on an in-memory device, and deterministic data generators.
 */
#ifndef PSTOR_ENGINE_TEST_H
#define PSTOR_ENGINE_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"

struct engine_test_env {
	struct ftl_dev *dev;
	struct ftl *ftl;
	struct engine *e;
};

int engine_test_open(struct engine_test_env *t, uint64_t dev_size, uint32_t bs,
                     enum engine_codec codec, int level, bool dedupe);
void engine_test_close(struct engine_test_env *t);
void engine_test_fill_random(void *buf, size_t len, uint64_t seed);
void engine_test_fill_text(void *buf, size_t len, uint64_t seed);
void engine_test_fill_unique_small(void *buf, size_t len, uint64_t id);

#endif
