/* fs/vol/pfs_stats.c - one snapshot of every counter of the store and of the modules under it
 * (pfs_get_stats), and its printers: text, JSON and the Prometheus exposition. The reports and
 * (later) the analytics sampler read counters here and nowhere else.
 */
#include <stdatomic.h>
#include <string.h>

#include "pfs_vol_int.h"

void pfs_get_stats(struct pfs *p, struct pfs_stats *st)
{
	struct pfs_meta_stats ms;

	memset(st, 0, sizeof(*st));
	st->time_ns = pfs_now_ns();
	st->device = p->opts.device;
	st->dev_kind = ftl_dev_kind(p->dev);
	st->format_version = p->sb.version;
	st->block_size = p->bs;
	st->device_block_size = p->sb.block_size;
	st->segment_size = p->sb.segment_size;
	st->segment_count = p->sb.segment_count;
	st->readonly = p->opts.readonly;

	pthread_mutex_lock(&p->cat_lock);
	for (struct pfs_vol *v = p->vols; v; v = v->next) {
		if (v->kind == PFS_MAP_VOLUME) {
			st->volumes++;
			st->provisioned_bytes += atomic_load(&v->size);
			st->logical_bytes += (uint64_t)atomic_load(&v->nz_blocks) * p->bs;
			st->after_pattern_bytes += (uint64_t)atomic_load(&v->chunk_blocks) * p->bs;
		} else {
			st->snapshots++;
			st->snapshot_logical_bytes += (uint64_t)atomic_load(&v->nz_blocks) * p->bs;
		}
	}
	pthread_mutex_unlock(&p->cat_lock);

	st->commits = atomic_load(&p->commits);
	st->commit_errors = atomic_load(&p->commit_errors);
	st->commit_ns_total = atomic_load(&p->commit_ns_total);
	st->enospc_retries = atomic_load(&p->enospc_retries);
	st->io_errors = atomic_load(&p->io_errors);
	st->missing_chunks = atomic_load(&p->missing_chunks);
	st->damaged_refs = atomic_load(&p->damaged_refs);
	st->log_syncs = atomic_load(&p->log.syncs);
	st->log_group_waits = atomic_load(&p->log.group_waits);
	st->log_chunks_written = atomic_load(&p->log.chunks_written);
	st->log_bytes_written = atomic_load(&p->log.bytes_written);
	st->log_flush_ns = atomic_load(&p->log.flush_ns_total);
	for (int k = 0; k < PFS_CHANGE_COUNT; k++)
		st->changes[k] = atomic_load(&p->changes[k]);
	st->change_errors = atomic_load(&p->change_errors);

	st->mount_time_ns = p->mount_time_ns;
	st->mount_seconds = p->mount_seconds;
	st->replay_seconds = p->replay_seconds;
	st->mount_chunks_scanned = p->mount_chunks_scanned;
	st->mount_chunks_freed = p->mount_chunks_freed;
	st->mount_lost_freed = p->mount_lost_freed;
	st->replayed_records = p->replayed_records;
	st->replayed_chunks = p->replayed_chunks;

	pfs_meta_get_stats(p->meta, &ms);
	st->meta_db_bytes = ms.db_bytes;
	st->meta_db_capacity = ms.db_capacity;
	st->meta_journal_capacity = ms.journal_capacity;
	st->meta_rows_damaged = ms.rows_damaged;
	st->meta_rows_healed = ms.rows_healed;

	ftl_get_stats(p->ftl, &st->ftl);
	engine_get_stats(p->eng, &st->engine);
}

/* One table drives the three printers, so a counter cannot be in one and not the others. */
#define PFS_STATS_FIELDS(X)                                                                        \
	X(volumes, gauge, "Number of volumes.")                                                    \
	X(snapshots, gauge, "Number of snapshots.")                                                \
	X(provisioned_bytes, gauge, "Sum of volume sizes.")                                        \
	X(logical_bytes, gauge, "Bytes of volume data written (not holes or zeros).")              \
	X(after_pattern_bytes, gauge, "Logical bytes left after pattern removal.")                 \
	X(snapshot_logical_bytes, gauge, "Bytes of data snapshots hold (shared or not).")          \
	X(commits, counter, "Metadata commits.")                                                   \
	X(commit_errors, counter, "Failed metadata commits.")                                      \
	X(commit_ns_total, counter, "Nanoseconds spent in commits.")                               \
	X(enospc_retries, counter, "Writes retried after a checkpoint gave released space back.")  \
	X(io_errors, counter, "Volume reads that failed (device or checksum).")                    \
	X(missing_chunks, gauge, "Chunks referenced by the maps but missing at mount.")            \
	X(damaged_refs, gauge, "Block references to chunks missing at mount.")                     \
	X(log_syncs, counter, "fsync calls served by the roll-forward log.")                       \
	X(log_group_waits, counter, "fsync calls that shared another's log flush.")                \
	X(log_chunks_written, counter, "Log chunks written.")                                      \
	X(log_bytes_written, counter, "Log bytes written.")                                        \
	X(log_flush_ns, counter, "Nanoseconds spent flushing the log.")                            \
	X(change_errors, counter, "Changes refused or failed.")                                    \
	X(mount_chunks_scanned, gauge, "Chunks found by the mount's scan.")                        \
	X(mount_chunks_freed, gauge, "Unreferenced chunks the mount freed.")                       \
	X(mount_lost_freed, gauge, "Damaged chunks nothing referenced that the mount freed.")      \
	X(replayed_records, gauge, "Log records replayed at mount.")                               \
	X(replayed_chunks, gauge, "Log chunks replayed at mount.")                                 \
	X(meta_db_bytes, gauge, "Bytes of the SQLite metadata.")                                   \
	X(meta_db_capacity, gauge, "Capacity of the metadata region's database area.")             \
	X(meta_rows_damaged, counter, "Map page rows that failed their checksum.")                 \
	X(meta_rows_healed, counter, "Damaged map page rows read from their flash copy.")

void pfs_stats_to_text(const struct pfs_stats *st, struct pfs_buf *b)
{
#define PFS_STATS_TEXT(f, type, help)                                                              \
	pfs_buf_printf(b, "%-24s %llu\n", #f, (unsigned long long)st->f);
	PFS_STATS_FIELDS(PFS_STATS_TEXT)
#undef PFS_STATS_TEXT
	pfs_buf_printf(b, "%-24s %.3f\n%-24s %.3f\n", "mount_seconds", st->mount_seconds,
	               "replay_seconds", st->replay_seconds);
	for (int k = 0; k < PFS_CHANGE_COUNT; k++)
		pfs_buf_printf(b, "changes.%-16s %llu\n", pfs_change_kind_name(k),
		               (unsigned long long)st->changes[k]);
}

void pfs_stats_to_json(const struct pfs_stats *st, struct pfs_buf *b)
{
	pfs_buf_printf(b, "{\n");
#define PFS_STATS_JSON(f, type, help)                                                              \
	pfs_buf_printf(b, "  \"%s\": %llu,\n", #f, (unsigned long long)st->f);
	PFS_STATS_FIELDS(PFS_STATS_JSON)
#undef PFS_STATS_JSON
	pfs_buf_printf(b, "  \"mount_seconds\": %.3f,\n  \"replay_seconds\": %.3f,\n",
	               st->mount_seconds, st->replay_seconds);
	pfs_buf_printf(b, "  \"changes\": {");
	for (int k = 0; k < PFS_CHANGE_COUNT; k++)
		pfs_buf_printf(b, "%s\"%s\": %llu", k ? ", " : "", pfs_change_kind_name(k),
		               (unsigned long long)st->changes[k]);
	pfs_buf_printf(b, "}\n}\n");
}

void pfs_stats_to_prom(const struct pfs_stats *st, struct pfs_buf *b)
{
#define PFS_STATS_PROM(f, type, help)                                                              \
	pfs_buf_printf(b,                                                                          \
	               "# HELP pstorfs_store_" #f " " help "\n# TYPE pstorfs_store_" #f " " #type  \
	               "\npstorfs_store_" #f " %llu\n",                                            \
	               (unsigned long long)st->f);
	PFS_STATS_FIELDS(PFS_STATS_PROM)
#undef PFS_STATS_PROM
	pfs_buf_printf(b, "# HELP pstorfs_store_changes_total Changes applied, by kind.\n"
	                  "# TYPE pstorfs_store_changes_total counter\n");
	for (int k = 0; k < PFS_CHANGE_COUNT; k++)
		pfs_buf_printf(b, "pstorfs_store_changes_total{kind=\"%s\"} %llu\n",
		               pfs_change_kind_name(k), (unsigned long long)st->changes[k]);
}
