/* fs/vol/pfs_stats.c - one snapshot of every counter of the store and of the modules under it
 * (pfs_get_stats), and its printers: text, JSON and the Prometheus exposition. The reports and
 * (later) the analytics sampler read counters here and nowhere else.
 */
#include <stdatomic.h>
#include <string.h>

#include "pfs_vol_int.h"

static void io_snapshot(struct pfs_io_counters *c, struct pfs_io_stats *s)
{
	s->ops = atomic_load_explicit(&c->ops, memory_order_relaxed);
	s->bytes = atomic_load_explicit(&c->bytes, memory_order_relaxed);
	s->lat_sum_ns = atomic_load_explicit(&c->lat_sum_ns, memory_order_relaxed);
	for (int i = 0; i <= PFS_LAT_BUCKETS; i++)
		s->lat_buckets[i] = atomic_load_explicit(&c->lat_buckets[i], memory_order_relaxed);
}

double pfs_lat_quantile_us(const struct pfs_io_stats *io, double q)
{
	uint64_t total = 0, cum = 0;

	for (int i = 0; i <= PFS_LAT_BUCKETS; i++)
		total += io->lat_buckets[i];
	if (total == 0)
		return 0;
	if (q < 0)
		q = 0;
	if (q > 1)
		q = 1;
	double rank = q * (double)total;
	for (int i = 0; i <= PFS_LAT_BUCKETS; i++) {
		uint64_t n = io->lat_buckets[i];
		if (n == 0)
			continue;
		if ((double)(cum + n) >= rank) {
			if (i ==
			    PFS_LAT_BUCKETS) /* +Inf: the highest finite bound, as Prometheus */
				return pfs_lat_bound_ns(PFS_LAT_BUCKETS - 1) / 1e3;
			double lo = i ? pfs_lat_bound_ns(i - 1) / 1e3 : 0,
			       hi = pfs_lat_bound_ns(i) / 1e3;
			return lo + (hi - lo) * ((rank - (double)cum) / (double)n);
		}
		cum += n;
	}
	return pfs_lat_bound_ns(PFS_LAT_BUCKETS - 1) / 1e3; /* not reached: rank <= total */
}

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
	st->room_commits = atomic_load(&p->room_commits);
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
	io_snapshot(&p->io_read, &st->read);
	io_snapshot(&p->io_write, &st->write);

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

/* One table drives the three printers, so a counter cannot be in one and not the others.
 * Types: gauge, counter, counter_ns (a counter of nanoseconds). */
#define PFS_STATS_FIELDS(X)                                                                        \
	X(volumes, gauge, "Number of volumes.")                                                    \
	X(snapshots, gauge, "Number of snapshots.")                                                \
	X(provisioned_bytes, gauge, "Sum of volume sizes.")                                        \
	X(logical_bytes, gauge, "Bytes of volume data written (not holes or zeros).")              \
	X(after_pattern_bytes, gauge, "Logical bytes left after pattern removal.")                 \
	X(snapshot_logical_bytes, gauge, "Bytes of data snapshots hold (shared or not).")          \
	X(commits, counter, "Metadata commits.")                                                   \
	X(commit_errors, counter, "Failed metadata commits.")                                      \
	X(commit_ns_total, counter_ns, "Time spent in commits.")                                   \
	X(enospc_retries, counter, "Writes retried after a checkpoint gave released space back.")  \
	X(room_commits, counter, "Commits asked early: releases waiting, flash room short.")       \
	X(io_errors, counter, "Volume reads that failed (device or checksum).")                    \
	X(missing_chunks, gauge, "Chunks referenced by the maps but missing at mount.")            \
	X(damaged_refs, gauge, "Block references to chunks missing at mount.")                     \
	X(log_syncs, counter, "fsync calls served by the roll-forward log.")                       \
	X(log_group_waits, counter, "fsync calls that shared another's log flush.")                \
	X(log_chunks_written, counter, "Log chunks written.")                                      \
	X(log_bytes_written, counter, "Log bytes written.")                                        \
	X(log_flush_ns, counter_ns, "Time spent flushing the log.")                                \
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

/* The volume I/O figures of the text and JSON printers: name, value (Prometheus has them as
 * pstorfs_{read,write}_ops_total, _bytes_total and the _latency_seconds histograms). */
#define PFS_IO_FIELDS(X)                                                                           \
	X("read_ops", "%llu", (unsigned long long)st->read.ops)                                    \
	X("read_bytes", "%llu", (unsigned long long)st->read.bytes)                                \
	X("read_latency_p50_us", "%.1f", pfs_lat_quantile_us(&st->read, 0.5))                      \
	X("read_latency_p99_us", "%.1f", pfs_lat_quantile_us(&st->read, 0.99))                     \
	X("write_ops", "%llu", (unsigned long long)st->write.ops)                                  \
	X("write_bytes", "%llu", (unsigned long long)st->write.bytes)                              \
	X("write_latency_p50_us", "%.1f", pfs_lat_quantile_us(&st->write, 0.5))                    \
	X("write_latency_p99_us", "%.1f", pfs_lat_quantile_us(&st->write, 0.99))

void pfs_stats_to_text(const struct pfs_stats *st, struct pfs_buf *b)
{
#define PFS_STATS_TEXT(f, type, help)                                                              \
	pfs_buf_printf(b, "%-24s %llu\n", #f, (unsigned long long)st->f);
	PFS_STATS_FIELDS(PFS_STATS_TEXT)
#undef PFS_STATS_TEXT
	pfs_buf_printf(b, "%-24s %.3f\n%-24s %.3f\n", "mount_seconds", st->mount_seconds,
	               "replay_seconds", st->replay_seconds);
#define PFS_IO_TEXT(name, fmt, val) pfs_buf_printf(b, "%-24s " fmt "\n", name, val);
	PFS_IO_FIELDS(PFS_IO_TEXT)
#undef PFS_IO_TEXT
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
#define PFS_IO_JSON(name, fmt, val) pfs_buf_printf(b, "  \"%s\": " fmt ",\n", name, val);
	PFS_IO_FIELDS(PFS_IO_JSON)
#undef PFS_IO_JSON
	pfs_buf_printf(b, "  \"changes\": {");
	for (int k = 0; k < PFS_CHANGE_COUNT; k++)
		pfs_buf_printf(b, "%s\"%s\": %llu", k ? ", " : "", pfs_change_kind_name(k),
		               (unsigned long long)st->changes[k]);
	pfs_buf_printf(b, "}\n}\n");
}

/* One direction of volume I/O as two counters and a histogram (families with HELP and TYPE). */
static void io_to_prom(const struct pfs_io_stats *io, const char *dir, struct pfs_buf *b)
{
	uint64_t cum = 0;

	pfs_buf_printf(b,
	               "# HELP pstorfs_%s_ops_total Volume %ss since mount.\n"
	               "# TYPE pstorfs_%s_ops_total counter\npstorfs_%s_ops_total %llu\n"
	               "# HELP pstorfs_%s_bytes_total Bytes of volume %ss since mount.\n"
	               "# TYPE pstorfs_%s_bytes_total counter\npstorfs_%s_bytes_total %llu\n"
	               "# HELP pstorfs_%s_latency_seconds Time volume %ss take in the store.\n"
	               "# TYPE pstorfs_%s_latency_seconds histogram\n",
	               dir, dir, dir, dir, (unsigned long long)io->ops, dir, dir, dir, dir,
	               (unsigned long long)io->bytes, dir, dir, dir);
	for (int i = 0; i < PFS_LAT_BUCKETS; i++) {
		cum += io->lat_buckets[i];
		pfs_buf_printf(b, "pstorfs_%s_latency_seconds_bucket{le=\"%g\"} %llu\n", dir,
		               pfs_lat_bound_ns(i) / 1e9, (unsigned long long)cum);
	}
	/* _count is the +Inf bucket by definition: taken from the buckets, not from ops, which a
	 * racing snapshot may have read one operation apart. */
	cum += io->lat_buckets[PFS_LAT_BUCKETS];
	pfs_buf_printf(b,
	               "pstorfs_%s_latency_seconds_bucket{le=\"+Inf\"} %llu\n"
	               "pstorfs_%s_latency_seconds_sum %.9f\n"
	               "pstorfs_%s_latency_seconds_count %llu\n",
	               dir, (unsigned long long)cum, dir, io->lat_sum_ns / 1e9, dir,
	               (unsigned long long)cum);
}

/* One family of the table as Prometheus names it: pstorfs_store_FIELD, counters ending in
 * _total and nanoseconds shown as seconds (the base unit; promtool refuses abbreviations), so
 * commit_ns_total is pstorfs_store_commit_seconds_total. The text and JSON keep field names. */
static void stats_family(struct pfs_buf *b, const char *field, const char *type, const char *help,
                         uint64_t v)
{
	bool ns = !strcmp(type, "counter_ns"), counter = ns || !strcmp(type, "counter");
	size_t n = strlen(field);

	if (counter && n > 6 && !strcmp(field + n - 6, "_total"))
		n -= 6;
	if (ns && n > 3 && !memcmp(field + n - 3, "_ns", 3))
		n -= 3;
	const char *sfx = ns ? "_seconds_total" : counter ? "_total" : "";
	const char *t = counter ? "counter" : "gauge";
	pfs_buf_printf(b, "# HELP pstorfs_store_%.*s%s %s\n# TYPE pstorfs_store_%.*s%s %s\n",
	               (int)n, field, sfx, help, (int)n, field, sfx, t);
	if (ns)
		pfs_buf_printf(b, "pstorfs_store_%.*s%s %.9f\n", (int)n, field, sfx, v / 1e9);
	else
		pfs_buf_printf(b, "pstorfs_store_%.*s%s %llu\n", (int)n, field, sfx,
		               (unsigned long long)v);
}

void pfs_stats_to_prom(const struct pfs_stats *st, struct pfs_buf *b)
{
#define PFS_STATS_PROM(f, type, help) stats_family(b, #f, #type, help, st->f);
	PFS_STATS_FIELDS(PFS_STATS_PROM)
#undef PFS_STATS_PROM
	pfs_buf_printf(b, "# HELP pstorfs_store_changes_total Changes applied, by kind.\n"
	                  "# TYPE pstorfs_store_changes_total counter\n");
	for (int k = 0; k < PFS_CHANGE_COUNT; k++)
		pfs_buf_printf(b, "pstorfs_store_changes_total{kind=\"%s\"} %llu\n",
		               pfs_change_kind_name(k), (unsigned long long)st->changes[k]);
	io_to_prom(&st->read, "read", b);
	io_to_prom(&st->write, "write", b);
}
