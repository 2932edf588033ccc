/* flash/ftl_stats.c - counters of the FTL and their text/JSON printers.
 *
 * What an operator sees in .pstorage/flash is printed from here, so it is exactly what the FTL
 * knows. Read-only: never changes FTL state.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ftl_zone_int.h"

void ftl_get_stats(struct ftl *ftl, struct ftl_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->host_bytes_written = atomic_load(&ftl->host_bytes);
	st->device_bytes_written = atomic_load(&ftl->dev_bytes);
	st->gc_runs = atomic_load(&ftl->gc_runs);
	st->gc_bytes_moved = atomic_load(&ftl->gc_bytes);
	st->wear_moves = atomic_load(&ftl->wear_moves);
	st->gc_greedy_picks = atomic_load(&ftl->gc_greedy);
	st->trims = atomic_load(&ftl->trims);
	st->read_errors = atomic_load(&ftl->read_errors);
	st->checksum_errors = atomic_load(&ftl->checksum_errors);
	st->chunks_live = atomic_load(&ftl->l2p.live);
	st->bytes_live = atomic_load(&ftl->bytes_live);
	st->segments_total = ftl->nsegs;
	st->rated_pe_cycles = ftl->sb.rated_pe_cycles;
	st->capacity_bytes = (uint64_t)ftl->nsegs * ftl->seg_size;

	uint64_t sum = 0, dead = 0;
	st->erase_min = UINT32_MAX;
	for (uint32_t i = 0; i < ftl->nsegs; i++) {
		struct ftl_seg *s = &ftl->segs[i];
		uint32_t e = s->erase_count;
		sum += e;
		if (e < st->erase_min)
			st->erase_min = e;
		if (e > st->erase_max)
			st->erase_max = e;
		switch (atomic_load(&s->state)) {
		case FTL_SEG_FREE:
			st->segments_free++;
			break;
		case FTL_SEG_CKPT:
			st->segments_ckpt++;
			break;
		default: {
			/* Free space is everything not held by a live chunk: dead bytes of closed
			 * segments, and of open ones their unwritten tail and what was freed in
			 * them too. Counting an open segment as full made df lag a delete until
			 * the segment filled (it_full_device's once-in-three failure). */
			if (atomic_load(&s->state) == FTL_SEG_OPEN)
				st->segments_open++;
			else
				st->segments_closed++;
			if (atomic_load(&s->gc_pending))
				st->segments_gc_pending++;
			uint32_t live = atomic_load(&s->live_bytes);
			uint32_t usable = ftl->seg_size - ftl->bs;
			dead += live < usable ? usable - live : 0;
			break;
		}
		}
	}
	st->erase_mean = ftl->nsegs ? (double)sum / ftl->nsegs : 0;
	st->life_used_pct = st->rated_pe_cycles ? 100.0 * st->erase_mean / st->rated_pe_cycles : 0;
	st->write_amplification =
	    st->host_bytes_written ? (double)st->device_bytes_written / st->host_bytes_written : 0;
	st->free_bytes = (uint64_t)st->segments_free * ftl->seg_size + dead;
	_Static_assert(FTL_STREAM_COUNT == sizeof(st->stream_chunks) / sizeof(st->stream_chunks[0]),
	               "one counter per stream");
	for (int i = 0; i < FTL_STREAM_COUNT; i++) {
		st->stream_chunks[i] =
		    atomic_load_explicit(&ftl->streams[i].writes, memory_order_relaxed);
		st->packs_written +=
		    atomic_load_explicit(&ftl->streams[i].seals, memory_order_relaxed);
	}
	st->hot_cold_separation =
	    ftl_heat_separation_pays(ftl, &st->young_predicted_hot, &st->young_predicted_cold);
	st->mem_l2p_bytes = ftl_l2p_mem_bytes(&ftl->l2p);
	st->ckpt_writes = atomic_load(&ftl->ckpt_writes);
	st->ckpt_bytes = atomic_load(&ftl->ckpt_bytes);
	st->ckpt_skipped = atomic_load(&ftl->ckpt_skipped);
	pthread_mutex_lock(&ftl->ckpt_lock);
	st->ckpt_gen = ftl->ckpt_gen;
	st->segs_since_ckpt = atomic_load(&ftl->segs_opened) - ftl->ckpt_segs_opened;
	pthread_mutex_unlock(&ftl->ckpt_lock);
	st->open_from_ckpt = ftl->open_from_ckpt;
	st->open_ckpt_gen = ftl->open_ckpt_gen;
	st->open_segs_walked = ftl->open_segs_walked;
	st->open_seconds = (double)ftl->open_ns / 1e9;
	st->mem_segment_bytes = (uint64_t)ftl->nsegs * sizeof(*ftl->segs);
	for (uint32_t i = 0; i < ftl->nsegs; i++) {
		pthread_mutex_lock(&ftl->seg_stripes[i % FTL_SEG_STRIPES]);
		st->mem_segment_bytes += ftl->segs[i].cap_packs * sizeof(uint32_t);
		pthread_mutex_unlock(&ftl->seg_stripes[i % FTL_SEG_STRIPES]);
	}
	ftl_zone_get_stats(ftl, st);
}

/* One list of fields feeds both printers, so the text and JSON forms cannot drift apart.
 * X(json key, text label, printf format, value) */
#define FTL_STATS_FIELDS(X, st)                                                                    \
	X("capacity_bytes", "capacity (bytes)", "%llu", (unsigned long long)(st)->capacity_bytes)  \
	X("free_bytes", "free (bytes)", "%llu", (unsigned long long)(st)->free_bytes)              \
	X("chunks_live", "live chunks", "%llu", (unsigned long long)(st)->chunks_live)             \
	X("bytes_live", "live bytes", "%llu", (unsigned long long)(st)->bytes_live)                \
	X("segments_total", "segments", "%u", (st)->segments_total)                                \
	X("segments_free", "segments free", "%u", (st)->segments_free)                             \
	X("segments_open", "segments open", "%u", (st)->segments_open)                             \
	X("segments_closed", "segments closed", "%u", (st)->segments_closed)                       \
	X("segments_gc_pending", "segments cleaned, not yet freed", "%u",                          \
	  (st)->segments_gc_pending)                                                               \
	X("host_bytes_written", "host bytes written", "%llu",                                      \
	  (unsigned long long)(st)->host_bytes_written)                                            \
	X("device_bytes_written", "device bytes written", "%llu",                                  \
	  (unsigned long long)(st)->device_bytes_written)                                          \
	X("write_amplification", "write amplification", "%.4f", (st)->write_amplification)         \
	X("gc_runs", "gc segments cleaned", "%llu", (unsigned long long)(st)->gc_runs)             \
	X("gc_bytes_moved", "gc bytes moved", "%llu", (unsigned long long)(st)->gc_bytes_moved)    \
	X("wear_moves", "wear leveling moves", "%llu", (unsigned long long)(st)->wear_moves)       \
	X("gc_greedy_picks", "gc victims by dead space", "%llu",                                   \
	  (unsigned long long)(st)->gc_greedy_picks)                                               \
	X("packs_written", "packs written", "%llu", (unsigned long long)(st)->packs_written)       \
	X("hot_cold_separation", "hot/cold separation", "%u", (unsigned)(st)->hot_cold_separation) \
	X("young_predicted_hot", "died young, predicted hot", "%.3f", (st)->young_predicted_hot)   \
	X("young_predicted_cold", "died young, predicted cold", "%.3f",                            \
	  (st)->young_predicted_cold)                                                              \
	X("erase_min", "erase count min", "%u", (st)->erase_min)                                   \
	X("erase_mean", "erase count mean", "%.3f", (st)->erase_mean)                              \
	X("erase_max", "erase count max", "%u", (st)->erase_max)                                   \
	X("rated_pe_cycles", "rated P/E cycles", "%u", (st)->rated_pe_cycles)                      \
	X("life_used_pct", "life used (%)", "%.3f", (st)->life_used_pct)                           \
	X("trims", "segments trimmed", "%llu", (unsigned long long)(st)->trims)                    \
	X("read_errors", "read errors", "%llu", (unsigned long long)(st)->read_errors)             \
	X("checksum_errors", "checksum errors", "%llu", (unsigned long long)(st)->checksum_errors) \
	X("segments_ckpt", "segments checkpoint", "%u", (st)->segments_ckpt)                       \
	X("ckpt_gen", "checkpoint", "%llu", (unsigned long long)(st)->ckpt_gen)                    \
	X("ckpt_writes", "checkpoints written", "%llu", (unsigned long long)(st)->ckpt_writes)     \
	X("ckpt_bytes", "checkpoint bytes", "%llu", (unsigned long long)(st)->ckpt_bytes)          \
	X("ckpt_skipped", "checkpoints skipped", "%llu", (unsigned long long)(st)->ckpt_skipped)   \
	X("segs_since_ckpt", "segments since ckpt", "%llu",                                        \
	  (unsigned long long)(st)->segs_since_ckpt)                                               \
	X("open_from_ckpt", "open from checkpoint", "%u", (unsigned)(st)->open_from_ckpt)          \
	X("open_segs_walked", "open: segments walked", "%llu",                                     \
	  (unsigned long long)(st)->open_segs_walked)                                              \
	X("open_seconds", "open: seconds", "%.3f", (st)->open_seconds)

/* Zoned namespaces only (printed when st->zoned). */
#define FTL_STATS_ZONE_FIELDS(X, st)                                                               \
	X("zone_size", "zone size (bytes)", "%llu", (unsigned long long)(st)->zdev.zone_size)      \
	X("zone_max_open", "zones max open", "%u", (st)->zdev.max_open)                            \
	X("zone_max_active", "zones max active", "%u", (st)->zone_max_active)                      \
	X("zone_active_budget", "zones active budget", "%u", (st)->zone_active_budget)             \
	X("zone_streams", "zone write streams", "%u", (st)->zone_streams)                          \
	X("zone_resets", "zone resets", "%llu", (unsigned long long)(st)->zone_resets)             \
	X("zone_finishes", "zone finishes", "%llu", (unsigned long long)(st)->zone_finishes)       \
	X("zone_resets_dev", "zone resets (device)", "%llu",                                       \
	  (unsigned long long)(st)->zdev.zone_resets)                                              \
	X("zone_finishes_dev", "zone finishes (device)", "%llu",                                   \
	  (unsigned long long)(st)->zdev.zone_finishes)                                            \
	X("zone_appends_dev", "zone appends (device)", "%llu",                                     \
	  (unsigned long long)(st)->zdev.zone_appends)                                             \
	X("zlog_zones", "metadata log zones", "%u", (st)->zdev.log_zones)                          \
	X("zlog_blocks_written", "metadata log blocks", "%llu",                                    \
	  (unsigned long long)(st)->zdev.log_blocks_written)                                       \
	X("zlog_records", "metadata log records", "%llu",                                          \
	  (unsigned long long)(st)->zdev.log_records)                                              \
	X("zlog_compactions", "metadata log compactions", "%llu",                                  \
	  (unsigned long long)(st)->zdev.log_compactions)                                          \
	X("zlog_blocks_copied", "metadata log copied", "%llu",                                     \
	  (unsigned long long)(st)->zdev.log_blocks_copied)                                        \
	X("zlog_live_blocks", "metadata log live", "%llu",                                         \
	  (unsigned long long)(st)->zdev.log_live_blocks)                                          \
	X("zlog_torn_records", "metadata log torn", "%llu",                                        \
	  (unsigned long long)(st)->zdev.log_torn_records)

/* snprintf into BUF at *POS, keeping the total length like snprintf does. */
static void out(char *buf, size_t len, size_t *pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void out(char *buf, size_t len, size_t *pos, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(*pos < len ? buf + *pos : NULL, *pos < len ? len - *pos : 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		*pos += (size_t)n;
}

int ftl_stats_to_text(const struct ftl_stats *st, char *buf, size_t len)
{
	size_t pos = 0;
#define FTL_STATS_TEXT(key, label, fmt, val) out(buf, len, &pos, "%-22s " fmt "\n", label ":", val);
	FTL_STATS_FIELDS(FTL_STATS_TEXT, st)
	if (st->zoned) {
		FTL_STATS_ZONE_FIELDS(FTL_STATS_TEXT, st)
	}
#undef FTL_STATS_TEXT
	return (int)pos;
}

int ftl_stats_to_json(const struct ftl_stats *st, char *buf, size_t len)
{
	size_t pos = 0;
	const char *sep = "{";
#define FTL_STATS_JSON(key, label, fmt, val)                                                       \
	out(buf, len, &pos, "%s\"" key "\":" fmt, sep, val);                                       \
	sep = ",";
	FTL_STATS_FIELDS(FTL_STATS_JSON, st)
	if (st->zoned) {
		FTL_STATS_ZONE_FIELDS(FTL_STATS_JSON, st)
	}
#undef FTL_STATS_JSON
	out(buf, len, &pos, "}\n");
	return (int)pos;
}

int ftl_erase_counts(struct ftl *ftl, uint32_t *counts, uint32_t n)
{
	uint32_t k = n < ftl->nsegs ? n : ftl->nsegs;
	for (uint32_t i = 0; i < k; i++)
		counts[i] = ftl->segs[i].erase_count;
	return (int)k;
}
