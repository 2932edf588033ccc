/* flash/ftl_stats.c - counters of the FTL and their text/JSON printers.
 *
 * What an operator sees in .pstorage/flash is printed from here, so it is exactly what the FTL
 * knows. Read-only: never changes FTL state.
 */
#include <stdio.h>
#include <string.h>

#include "ftl_int.h"

void ftl_get_stats(struct ftl *ftl, struct ftl_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->host_bytes_written = atomic_load(&ftl->host_bytes);
	st->device_bytes_written = atomic_load(&ftl->dev_bytes);
	st->gc_runs = atomic_load(&ftl->gc_runs);
	st->gc_bytes_moved = atomic_load(&ftl->gc_bytes);
	st->wear_moves = atomic_load(&ftl->wear_moves);
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
		case FTL_SEG_OPEN:
			st->segments_open++;
			break;
		default:
			st->segments_closed++;
			uint32_t live = atomic_load(&s->live_bytes);
			uint32_t usable = ftl->seg_size - ftl->bs;
			dead += live < usable ? usable - live : 0;
			break;
		}
	}
	st->erase_mean = ftl->nsegs ? (double)sum / ftl->nsegs : 0;
	st->life_used_pct = st->rated_pe_cycles ? 100.0 * st->erase_mean / st->rated_pe_cycles : 0;
	st->write_amplification = st->host_bytes_written
					  ? (double)st->device_bytes_written / st->host_bytes_written
					  : 0;
	st->free_bytes = (uint64_t)st->segments_free * ftl->seg_size + dead;
}

int ftl_stats_to_text(const struct ftl_stats *st, char *buf, size_t len)
{
	return snprintf(buf, len,
			"capacity:              %llu bytes\n"
			"free:                  %llu bytes\n"
			"live chunks:           %llu (%llu bytes)\n"
			"segments:              %u total, %u free, %u open, %u closed\n"
			"host bytes written:    %llu\n"
			"device bytes written:  %llu\n"
			"write amplification:   %.3f\n"
			"gc:                    %llu segments cleaned, %llu bytes moved\n"
			"wear leveling moves:   %llu\n"
			"erase count:           min %u, mean %.2f, max %u\n"
			"life used:             %.2f%% of %u P/E cycles\n"
			"trims:                 %llu\n"
			"read errors:           %llu (%llu checksum)\n",
			(unsigned long long)st->capacity_bytes, (unsigned long long)st->free_bytes,
			(unsigned long long)st->chunks_live, (unsigned long long)st->bytes_live,
			st->segments_total, st->segments_free, st->segments_open,
			st->segments_closed, (unsigned long long)st->host_bytes_written,
			(unsigned long long)st->device_bytes_written, st->write_amplification,
			(unsigned long long)st->gc_runs, (unsigned long long)st->gc_bytes_moved,
			(unsigned long long)st->wear_moves, st->erase_min, st->erase_mean,
			st->erase_max, st->life_used_pct, st->rated_pe_cycles,
			(unsigned long long)st->trims, (unsigned long long)st->read_errors,
			(unsigned long long)st->checksum_errors);
}

int ftl_stats_to_json(const struct ftl_stats *st, char *buf, size_t len)
{
	return snprintf(buf, len,
			"{\"capacity_bytes\":%llu,\"free_bytes\":%llu,\"chunks_live\":%llu,"
			"\"bytes_live\":%llu,\"segments\":{\"total\":%u,\"free\":%u,\"open\":%u,"
			"\"closed\":%u},\"host_bytes_written\":%llu,\"device_bytes_written\":%llu,"
			"\"write_amplification\":%.4f,\"gc_runs\":%llu,\"gc_bytes_moved\":%llu,"
			"\"wear_moves\":%llu,\"erase\":{\"min\":%u,\"mean\":%.3f,\"max\":%u},"
			"\"rated_pe_cycles\":%u,\"life_used_pct\":%.3f,\"trims\":%llu,"
			"\"read_errors\":%llu,\"checksum_errors\":%llu}\n",
			(unsigned long long)st->capacity_bytes, (unsigned long long)st->free_bytes,
			(unsigned long long)st->chunks_live, (unsigned long long)st->bytes_live,
			st->segments_total, st->segments_free, st->segments_open,
			st->segments_closed, (unsigned long long)st->host_bytes_written,
			(unsigned long long)st->device_bytes_written, st->write_amplification,
			(unsigned long long)st->gc_runs, (unsigned long long)st->gc_bytes_moved,
			(unsigned long long)st->wear_moves, st->erase_min, st->erase_mean,
			st->erase_max, st->rated_pe_cycles, st->life_used_pct,
			(unsigned long long)st->trims, (unsigned long long)st->read_errors,
			(unsigned long long)st->checksum_errors);
}

int ftl_erase_counts(struct ftl *ftl, uint32_t *counts, uint32_t n)
{
	uint32_t k = n < ftl->nsegs ? n : ftl->nsegs;
	for (uint32_t i = 0; i < k; i++)
		counts[i] = ftl->segs[i].erase_count;
	return (int)k;
}
