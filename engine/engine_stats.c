/* engine/engine_stats.c - the engine's counters and reduction ratios, and their text and JSON
 * printers. Reads counters only; must not take the shard locks for long or touch the FTL.
 *
 * Ratios chain through the stages, each being bytes into the stage / bytes out of it:
 *   pattern     = logical / (logical - pattern_bytes)
 *   dedupe      = (logical - pattern_bytes) / new-chunk bytes ((compressed + raw) * block size)
 *   compression = new-chunk bytes / stored_bytes
 *   total       = logical / stored_bytes = pattern * dedupe * compression
 * 0/0 is 1.0 (nothing went in); x/0 is +inf (everything was removed), printed "inf" / null.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "engine_int.h"

static double ratio(uint64_t in, uint64_t out)
{
	if (!out)
		return in ? INFINITY : 1.0;
	return (double)in / (double)out;
}

static uint64_t ld(_Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

void engine_get_stats(struct engine *e, struct engine_stats *st)
{
	uint64_t bs = e->block_size, new_bytes;

	st->blocks_written = ld(&e->cnt.blocks_written);
	st->logical_bytes = st->blocks_written * bs;
	st->pattern_blocks = ld(&e->cnt.pattern_blocks);
	st->pattern_bytes = st->pattern_blocks * bs;
	st->dedupe_blocks = ld(&e->cnt.dedupe_blocks);
	st->dedupe_bytes = st->dedupe_blocks * bs;
	st->compressed_blocks = ld(&e->cnt.compressed_blocks);
	st->raw_blocks = ld(&e->cnt.raw_blocks);
	st->raw_probed_blocks = ld(&e->cnt.raw_probed_blocks);
	st->stored_bytes = ld(&e->cnt.stored_bytes);
	new_bytes = (st->compressed_blocks + st->raw_blocks) * bs;
	st->compression_saved_bytes = new_bytes - st->stored_bytes;
	st->unique_chunks = ld(&e->cnt.unique_chunks);
	st->index_entries = ld(&e->index.entries);
	st->hash_verify_misses = ld(&e->cnt.hash_verify_misses);
	st->read_errors = ld(&e->cnt.read_errors);
	st->mem_index_bytes = ld(&e->index.mem_bytes);
	st->mem_chunk_table_bytes = engine_chunks_mem_bytes(&e->chunks);
	st->pattern_ratio = ratio(st->logical_bytes, st->logical_bytes - st->pattern_bytes);
	st->dedupe_ratio = ratio(st->logical_bytes - st->pattern_bytes, new_bytes);
	st->compression_ratio = ratio(new_bytes, st->stored_bytes);
	st->total_ratio = ratio(st->logical_bytes, st->stored_bytes);
}

#define STATS_U64(X)                                                                               \
	X(blocks_written)                                                                          \
	X(logical_bytes)                                                                           \
	X(pattern_blocks)                                                                          \
	X(pattern_bytes)                                                                           \
	X(dedupe_blocks)                                                                           \
	X(dedupe_bytes)                                                                            \
	X(compressed_blocks)                                                                       \
	X(raw_blocks)                                                                              \
	X(raw_probed_blocks)                                                                       \
	X(stored_bytes)                                                                            \
	X(compression_saved_bytes)                                                                 \
	X(unique_chunks)                                                                           \
	X(index_entries)                                                                           \
	X(hash_verify_misses)                                                                      \
	X(read_errors)                                                                             \
	X(mem_index_bytes)                                                                         \
	X(mem_chunk_table_bytes)

#define STATS_RATIO(X)                                                                             \
	X(pattern_ratio)                                                                           \
	X(dedupe_ratio)                                                                            \
	X(compression_ratio)                                                                       \
	X(total_ratio)

/* Appends like snprintf; *POS counts what would have been written, so the total is returned
 * even when BUF is too small. */
static void put(char *buf, size_t len, size_t *pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void put(char *buf, size_t len, size_t *pos, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(*pos < len ? buf + *pos : NULL, *pos < len ? len - *pos : 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		*pos += (size_t)n;
}

int engine_stats_to_text(const struct engine_stats *st, char *buf, size_t len)
{
	size_t pos = 0;

	if (len)
		buf[0] = '\0';
#define TEXT_U64(f) put(buf, len, &pos, "%s: %llu\n", #f, (unsigned long long)st->f);
	STATS_U64(TEXT_U64)
#undef TEXT_U64
#define TEXT_RATIO(f) put(buf, len, &pos, "%s: %.2f\n", #f, st->f);
	STATS_RATIO(TEXT_RATIO)
#undef TEXT_RATIO
	put(buf, len, &pos,
	    "# ratio = bytes into a stage / bytes out of it; "
	    "total = pattern * dedupe * compression = logical / stored\n");
	return (int)pos;
}

int engine_stats_to_json(const struct engine_stats *st, char *buf, size_t len)
{
	size_t pos = 0;
	const char *sep = "";

	if (len)
		buf[0] = '\0';
	put(buf, len, &pos, "{");
#define JSON_U64(f)                                                                                \
	put(buf, len, &pos, "%s\"%s\": %llu", sep, #f, (unsigned long long)st->f);                 \
	sep = ", ";
	STATS_U64(JSON_U64)
#undef JSON_U64
#define JSON_RATIO(f)                                                                              \
	if (isfinite(st->f))                                                                       \
		put(buf, len, &pos, ", \"%s\": %.4f", #f, st->f);                                  \
	else                                                                                       \
		put(buf, len, &pos, ", \"%s\": null", #f);
	STATS_RATIO(JSON_RATIO)
#undef JSON_RATIO
	put(buf, len, &pos, "}\n");
	return (int)pos;
}
