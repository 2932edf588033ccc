/* engine/engine_pattern.c - detects blocks made of one repeating pattern of 1..16 bytes, and
 * fills blocks back from a pattern. Pure functions: no state, no locks, no allocation.
 */
#include <string.h>

#include "engine_int.h"

static inline uint64_t load64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* A block has period P when b[i] == b[i + P] for every i, i.e. it equals itself shifted by P.
 * Testing periods in increasing order makes the first hit the shortest pattern. Two 8-byte
 * compares (head and tail) reject almost every non-pattern block before memcmp runs. */
int engine_pattern_detect(const void *block, uint32_t len, uint8_t pat[16])
{
	const uint8_t *b = block;
	uint32_t maxp = len - 1 < ENGINE_PAT_MAX ? len - 1 : ENGINE_PAT_MAX;

	if (len < 2)
		return 0;
	for (uint32_t p = 1; p <= maxp; p++) {
		if (len >= p + 8) {
			if (load64(b) != load64(b + p))
				continue;
			if (load64(b + len - 8 - p) != load64(b + len - 8))
				continue;
		}
		if (memcmp(b, b + p, len - p) != 0)
			continue;
		memcpy(pat, b, p);
		return (int)p;
	}
	return 0;
}

void engine_pattern_fill(void *block, uint32_t len, const uint8_t *pat, uint32_t period)
{
	uint8_t *b = block;
	uint32_t have;

	if (period == 1) {
		memset(b, pat[0], len);
		return;
	}
	have = period < len ? period : len;
	memcpy(b, pat, have);
	/* Doubling copies keep the phase: the first HAVE bytes are whole copies of the pattern. */
	while (have < len) {
		uint32_t n = have <= len - have ? have : len - have;

		memcpy(b + have, b, n);
		have += n;
	}
}
