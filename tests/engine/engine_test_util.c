/* tests/engine/engine_test_util.c - shared fixtures for the engine suites: an engine over an FTL
 * on an in-memory device, and deterministic data generators. No assertions about the engine.
 */
#include <errno.h>
#include <string.h>

#include "engine.h"
#include "engine_test.h"

int engine_test_open(struct engine_test_env *t, uint64_t dev_size, uint32_t bs,
                     enum engine_codec codec, int level, bool dedupe)
{
	struct engine_config cfg = {
	    .block_size = bs, .codec = codec, .level = level, .dedupe = dedupe};
	int rc;

	memset(t, 0, sizeof(*t));
	rc = ftl_dev_open_mem(dev_size, 4096, &t->dev);
	if (rc)
		return rc;
	rc = ftl_format(t->dev, &(struct ftl_format_params){.user_block_size = bs});
	if (rc)
		goto err_close_dev;
	rc = ftl_open(&(struct ftl_config){.dev = t->dev}, &t->ftl);
	if (rc)
		goto err_close_dev;
	cfg.ftl = t->ftl;
	rc = engine_open(&cfg, &t->e);
	if (rc)
		goto err_close_ftl;
	return 0;

err_close_ftl:
	ftl_close(t->ftl);
err_close_dev:
	ftl_dev_close(t->dev);
	memset(t, 0, sizeof(*t));
	return rc;
}

void engine_test_close(struct engine_test_env *t)
{
	engine_close(t->e);
	ftl_close(t->ftl);
	ftl_dev_close(t->dev);
	memset(t, 0, sizeof(*t));
}

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void engine_test_fill_random(void *buf, size_t len, uint64_t seed)
{
	uint8_t *b = buf;

	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = splitmix(&seed);

		memcpy(b + i, &v, len - i < 8 ? len - i : 8);
	}
}

/* English-like text: words from a small vocabulary, so LZ4 and zstd both compress it well. */
void engine_test_fill_text(void *buf, size_t len, uint64_t seed)
{
	static const char *const words[] = {
	    "the ",   "storage ", "block ", "engine ", "writes ",   "and ", "reads ", "data ",
	    "flash ", "chunk ",   "of ",    "volume ", "snapshot ", "is ",  "a ",     "pattern ",
	};
	uint8_t *b = buf;
	size_t i = 0;

	while (i < len) {
		const char *w = words[splitmix(&seed) % 16];
		size_t n = strlen(w);

		if (n > len - i)
			n = len - i;
		memcpy(b + i, w, n);
		i += n;
	}
}

/* A unique block that compresses to a few bytes: a 64-bit id then zeros (never a pattern, since
 * the id is not zero and the rest is). */
void engine_test_fill_unique_small(void *buf, size_t len, uint64_t id)
{
	uint64_t v = id + 1;

	memset(buf, 0, len);
	memcpy(buf, &v, sizeof(v));
}
