/* fs/meta/pfs_meta_history.c - the analytics history in SQLite: rows of counters by time in
 * three tiers (raw, hourly, daily) and the roll that keeps it bounded, for the pool (table
 * history) and per volume (history_vol, rows keyed by volume name too); and the forecasts the
 * box made (table forecasts), kept to be graded. Knows nothing of what the values mean
 * (analytics/ does); never called on the I/O path.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pfs_meta_int.h"

static int int64_query(struct pfs_meta *m, const char *sql, int tier, int64_t *out);

/* Values travel as little-endian IEEE doubles, whatever the host. */
static void encode(const double *v, uint32_t n, uint8_t *out)
{
	for (uint32_t i = 0; i < n; i++) {
		uint64_t u;
		memcpy(&u, &v[i], 8);
		for (int b = 0; b < 8; b++)
			out[i * 8 + (uint32_t)b] = (uint8_t)(u >> (8 * b));
	}
}

static uint32_t decode(const uint8_t *in, size_t len, double *v, uint32_t max)
{
	uint32_t n = (uint32_t)(len / 8);

	if (n > max)
		n = max;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t u = 0;
		for (int b = 0; b < 8; b++)
			u |= (uint64_t)in[i * 8 + (uint32_t)b] << (8 * b);
		memcpy(&v[i], &u, 8);
	}
	return n;
}

/* Bytes of the database in use: its pages less the free list (the file never shrinks, so its
 * size says little once rows have come and gone). */
static int used_bytes_locked(struct pfs_meta *m, int64_t *out)
{
	int64_t pages = 0, free_pages = 0, page_size = 0;
	int rc = int64_query(m, "PRAGMA page_count", -1, &pages);

	if (!rc)
		rc = int64_query(m, "PRAGMA freelist_count", -1, &free_pages);
	if (!rc)
		rc = int64_query(m, "PRAGMA page_size", -1, &page_size);
	*out = (pages - free_pages) * page_size;
	return rc;
}

int pfs_meta_history_room(struct pfs_meta *m)
{
	struct pfs_vfs_stats vs;
	int64_t used = 0;
	int rc;

	pfs_vfs_get_stats(m->vfs, &vs);
	pthread_mutex_lock(&m->db_lock);
	rc = used_bytes_locked(m, &used);
	pthread_mutex_unlock(&m->db_lock);
	if (rc)
		return rc;
	return (uint64_t)used > vs.db_capacity / 4 * 3 ? -ENOSPC : 0;
}

int pfs_meta_history_put(struct pfs_meta *m, int tier, int64_t time, const double *v, uint32_t n)
{
	uint8_t *blob;
	sqlite3_stmt *st;
	int rc;

	if (tier < 0 || tier >= PFS_HISTORY_TIERS || n > PFS_HISTORY_MAX_VALUES)
		return -EINVAL;
	blob = malloc(n ? (size_t)n * 8 : 1);
	if (!blob)
		return -ENOMEM;
	encode(v, n, blob);
	pthread_mutex_lock(&m->db_lock);
	rc = pfs_meta_prep(m, "INSERT OR REPLACE INTO history(tier, time, vals) VALUES(?, ?, ?)",
	                   &st);
	if (!rc) {
		sqlite3_bind_int(st, 1, tier);
		sqlite3_bind_int64(st, 2, time);
		sqlite3_bind_blob(st, 3, blob, (int)(n * 8), SQLITE_STATIC);
		rc = pfs_meta_step_done(m, st);
	}
	pthread_mutex_unlock(&m->db_lock);
	free(blob);
	return rc;
}

int pfs_meta_history_vol_put(struct pfs_meta *m, int tier, int64_t time, const char *name,
                             const double *v, uint32_t n)
{
	uint8_t *blob;
	sqlite3_stmt *st;
	int rc;

	if (tier < 0 || tier >= PFS_HISTORY_TIERS || n > PFS_HISTORY_MAX_VALUES)
		return -EINVAL;
	blob = malloc(n ? (size_t)n * 8 : 1);
	if (!blob)
		return -ENOMEM;
	encode(v, n, blob);
	pthread_mutex_lock(&m->db_lock);
	rc = pfs_meta_prep(
	    m, "INSERT OR REPLACE INTO history_vol(tier, time, name, vals) VALUES(?, ?, ?, ?)",
	    &st);
	if (!rc) {
		sqlite3_bind_int(st, 1, tier);
		sqlite3_bind_int64(st, 2, time);
		sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
		sqlite3_bind_blob(st, 4, blob, (int)(n * 8), SQLITE_STATIC);
		rc = pfs_meta_step_done(m, st);
	}
	pthread_mutex_unlock(&m->db_lock);
	free(blob);
	return rc;
}

int pfs_meta_history_clear(struct pfs_meta *m)
{
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&m->db_lock);
	rc = pfs_meta_prep(m, "DELETE FROM history", &st);
	if (!rc)
		rc = pfs_meta_step_done(m, st);
	if (!rc)
		rc = pfs_meta_prep(m, "DELETE FROM history_vol", &st);
	if (!rc)
		rc = pfs_meta_step_done(m, st);
	pthread_mutex_unlock(&m->db_lock);
	return rc;
}

static int int64_query(struct pfs_meta *m, const char *sql, int tier, int64_t *out)
{
	sqlite3_stmt *st;
	int rc = pfs_meta_prep(m, sql, &st);

	if (rc)
		return rc;
	if (tier >= 0)
		sqlite3_bind_int(st, 1, tier);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_type(st, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 0);
		rc = 0;
	} else {
		rc = pfs_meta_sql_errno(rc == SQLITE_DONE ? SQLITE_IOERR : rc);
	}
	sqlite3_finalize(st);
	return rc;
}

int pfs_meta_history_last(struct pfs_meta *m, int64_t *time)
{
	pthread_mutex_lock(&m->db_lock);
	int rc = int64_query(m, "SELECT MAX(time) FROM history", -1, time);
	pthread_mutex_unlock(&m->db_lock);
	return rc;
}

int pfs_meta_history_vol_last(struct pfs_meta *m, int64_t *time)
{
	pthread_mutex_lock(&m->db_lock);
	int rc = int64_query(m, "SELECT MAX(time) FROM history_vol", -1, time);
	pthread_mutex_unlock(&m->db_lock);
	return rc;
}

int pfs_meta_history_count(struct pfs_meta *m, int tier, uint64_t *n)
{
	int64_t c = 0;

	pthread_mutex_lock(&m->db_lock);
	int rc = int64_query(m, "SELECT COUNT(*) FROM history WHERE tier = ?", tier, &c);
	pthread_mutex_unlock(&m->db_lock);
	*n = c < 0 ? 0 : (uint64_t)c;
	return rc;
}

/* Rows of FROM older than CUT (a multiple of BUCKET) become one row of FROM + 1 per bucket:
 * the bucket's last sample, so counters stay exact and every row is a real sample. SQLite
 * gives a bare column the values of the row that MAX() picked. */
static int roll_tier(struct pfs_meta *m, bool vol, int from, int64_t cut, int64_t bucket)
{
	sqlite3_stmt *st;
	int rc = pfs_meta_prep(m,
	                       vol ? "INSERT OR REPLACE INTO history_vol(tier, time, name, vals)"
	                             " SELECT ?1 + 1, MAX(time), name, vals FROM history_vol"
	                             " WHERE tier = ?1 AND time < ?2 GROUP BY name, time / ?3"
	                           : "INSERT OR REPLACE INTO history(tier, time, vals)"
	                             " SELECT ?1 + 1, MAX(time), vals FROM history"
	                             " WHERE tier = ?1 AND time < ?2 GROUP BY time / ?3",
	                       &st);

	if (rc)
		return rc;
	sqlite3_bind_int(st, 1, from);
	sqlite3_bind_int64(st, 2, cut);
	sqlite3_bind_int64(st, 3, bucket);
	rc = pfs_meta_step_done(m, st);
	if (rc)
		return rc;
	rc = pfs_meta_prep(m,
	                   vol ? "DELETE FROM history_vol WHERE tier = ?1 AND time < ?2"
	                       : "DELETE FROM history WHERE tier = ?1 AND time < ?2",
	                   &st);
	if (rc)
		return rc;
	sqlite3_bind_int(st, 1, from);
	sqlite3_bind_int64(st, 2, cut);
	return pfs_meta_step_done(m, st);
}

static int64_t floor_to(int64_t t, int64_t b)
{
	return (t >= 0 ? t / b : (t - b + 1) / b) * b;
}

int pfs_meta_history_roll(struct pfs_meta *m)
{
	int64_t now = -1; /* set by int64_query on success (-Wmaybe-uninitialized at -O2) */
	int rc;

	pthread_mutex_lock(&m->db_lock);
	/* "Now" is the newest row of either table: the pool's and the volumes' tiers age
	 * together. */
	rc = int64_query(m,
	                 "SELECT MAX(t) FROM (SELECT MAX(time) AS t FROM history"
	                 " UNION ALL SELECT MAX(time) FROM history_vol)",
	                 -1, &now);
	if (rc || now < 0)
		goto out_unlock;
	/* Cuts on bucket boundaries: a bucket is rolled whole, once. Raw first, so raw samples
	 * older than the hourly tier's horizon pass through it to the daily one. */
	/* The raw tier also keeps at most PFS_HISTORY_RAW_MAX_ROWS rows (whole hours): at a
	 * 1-second interval two days would be 172,800 rows, more than a small pool's metadata
	 * region holds next to its maps. */
	int64_t cut_raw = floor_to(now - PFS_HISTORY_RAW_SECONDS, 3600), nth = -1;
	sqlite3_stmt *st;
	rc = pfs_meta_prep(
	    m, "SELECT time FROM history WHERE tier = 0 ORDER BY time DESC LIMIT 1 OFFSET ?", &st);
	if (rc)
		goto out_unlock;
	sqlite3_bind_int64(st, 1, PFS_HISTORY_RAW_MAX_ROWS);
	if (sqlite3_step(st) == SQLITE_ROW)
		nth = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (nth >= 0 && floor_to(nth, 3600) > cut_raw)
		cut_raw = floor_to(nth, 3600);
	for (int vol = 0; vol < 2 && !rc; vol++) {
		rc = roll_tier(m, vol, 0,
		               vol ? floor_to(now - PFS_HISTORY_RAW_SECONDS, 3600) : cut_raw, 3600);
		if (!rc)
			rc = roll_tier(m, vol, 1, floor_to(now - PFS_HISTORY_HOURLY_SECONDS, 86400),
			               86400);
	}
out_unlock:
	pthread_mutex_unlock(&m->db_lock);
	return rc;
}

int pfs_meta_history_each(struct pfs_meta *m, pfs_meta_history_fn fn, void *arg)
{
	double v[PFS_HISTORY_MAX_VALUES];
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&m->db_lock);
	rc = pfs_meta_prep(m, "SELECT tier, time, vals FROM history ORDER BY time", &st);
	if (rc)
		goto out_unlock;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const void *blob = sqlite3_column_blob(st, 2);
		size_t len = (size_t)sqlite3_column_bytes(st, 2);
		uint32_t n = blob ? decode(blob, len, v, PFS_HISTORY_MAX_VALUES) : 0;
		int frc = fn(arg, sqlite3_column_int(st, 0), sqlite3_column_int64(st, 1), v, n);
		if (frc) {
			sqlite3_finalize(st);
			rc = frc;
			goto out_unlock;
		}
	}
	rc = pfs_meta_sql_errno(rc);
	sqlite3_finalize(st);
out_unlock:
	pthread_mutex_unlock(&m->db_lock);
	return rc;
}

int pfs_meta_history_vol_each(struct pfs_meta *m, pfs_meta_history_vol_fn fn, void *arg)
{
	double v[PFS_HISTORY_MAX_VALUES];
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&m->db_lock);
	rc = pfs_meta_prep(m, "SELECT tier, time, name, vals FROM history_vol ORDER BY name, time",
	                   &st);
	if (rc)
		goto out_unlock;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const void *blob = sqlite3_column_blob(st, 3);
		size_t len = (size_t)sqlite3_column_bytes(st, 3);
		const char *name = (const char *)sqlite3_column_text(st, 2);
		uint32_t n = blob ? decode(blob, len, v, PFS_HISTORY_MAX_VALUES) : 0;
		int frc = fn(arg, sqlite3_column_int(st, 0), sqlite3_column_int64(st, 1),
		             name ? name : "", v, n);
		if (frc) {
			sqlite3_finalize(st);
			rc = frc;
			goto out_unlock;
		}
	}
	rc = pfs_meta_sql_errno(rc);
	sqlite3_finalize(st);
out_unlock:
	pthread_mutex_unlock(&m->db_lock);
	return rc;
}

/* ---- recorded forecasts ------------------------------------------------------------------- */
int pfs_meta_forecast_put(struct pfs_meta *m, const char *kind, int64_t made_at, const double *v,
                          uint32_t n)
{
	uint8_t *blob;
	sqlite3_stmt *st;
	int rc;

	if (n > PFS_HISTORY_MAX_VALUES)
		return -EINVAL;
	blob = malloc(n ? (size_t)n * 8 : 1);
	if (!blob)
		return -ENOMEM;
	encode(v, n, blob);
	pthread_mutex_lock(&m->db_lock);
	rc = pfs_meta_prep(
	    m, "INSERT OR REPLACE INTO forecasts(kind, made_at, vals) VALUES(?, ?, ?)", &st);
	if (!rc) {
		sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, made_at);
		sqlite3_bind_blob(st, 3, blob, (int)(n * 8), SQLITE_STATIC);
		rc = pfs_meta_step_done(m, st);
	}
	pthread_mutex_unlock(&m->db_lock);
	free(blob);
	return rc;
}

int pfs_meta_forecast_last(struct pfs_meta *m, const char *kind, int64_t *made_at)
{
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&m->db_lock);
	rc = pfs_meta_prep(m, "SELECT MAX(made_at) FROM forecasts WHERE kind = ?", &st);
	if (rc)
		goto out_unlock;
	sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*made_at =
		    sqlite3_column_type(st, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 0);
		rc = 0;
	} else {
		rc = pfs_meta_sql_errno(rc == SQLITE_DONE ? SQLITE_IOERR : rc);
	}
	sqlite3_finalize(st);
out_unlock:
	pthread_mutex_unlock(&m->db_lock);
	return rc;
}

int pfs_meta_forecast_trim(struct pfs_meta *m, int64_t before)
{
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&m->db_lock);
	rc = pfs_meta_prep(m, "DELETE FROM forecasts WHERE made_at < ?", &st);
	if (!rc) {
		sqlite3_bind_int64(st, 1, before);
		rc = pfs_meta_step_done(m, st);
	}
	pthread_mutex_unlock(&m->db_lock);
	return rc;
}

int pfs_meta_forecast_keep_only(struct pfs_meta *m, size_t nkeep, const char *const *kinds,
                                const int64_t *made_at)
{
	sqlite3_stmt *st, *del = NULL;
	int rc;

	pthread_mutex_lock(&m->db_lock);
	/* A statement's rows are read to the end before any is deleted: SQLite does not promise
	 * what a SELECT sees of rows deleted under it. The table is small (a row a day). */
	rc = pfs_meta_prep(m, "SELECT kind, made_at FROM forecasts", &st);
	if (rc)
		goto out_unlock;
	struct {
		char *kind;
		int64_t made_at;
	} *drop = NULL;
	size_t ndrop = 0, cap = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *k = (const char *)sqlite3_column_text(st, 0);
		int64_t t = sqlite3_column_int64(st, 1);
		bool keep = false;
		for (size_t i = 0; i < nkeep && !keep; i++)
			keep = made_at[i] == t && k && !strcmp(kinds[i], k);
		if (keep)
			continue;
		if (ndrop == cap) {
			cap = cap ? cap * 2 : 16;
			void *nd = realloc(drop, cap * sizeof(*drop));
			if (!nd) {
				rc = SQLITE_NOMEM;
				break;
			}
			drop = nd;
		}
		drop[ndrop].kind = strdup(k ? k : "");
		drop[ndrop].made_at = t;
		if (!drop[ndrop].kind) {
			rc = SQLITE_NOMEM;
			break;
		}
		ndrop++;
	}
	rc = pfs_meta_sql_errno(rc);
	sqlite3_finalize(st);
	for (size_t i = 0; i < ndrop && !rc; i++) {
		rc = pfs_meta_prep(m, "DELETE FROM forecasts WHERE kind = ? AND made_at = ?", &del);
		if (rc)
			break;
		sqlite3_bind_text(del, 1, drop[i].kind, -1, SQLITE_STATIC);
		sqlite3_bind_int64(del, 2, drop[i].made_at);
		rc = pfs_meta_step_done(m, del);
	}
	for (size_t i = 0; i < ndrop; i++)
		free(drop[i].kind);
	free(drop);
out_unlock:
	pthread_mutex_unlock(&m->db_lock);
	return rc;
}

int pfs_meta_forecast_each(struct pfs_meta *m, pfs_meta_forecast_fn fn, void *arg)
{
	double v[PFS_HISTORY_MAX_VALUES];
	sqlite3_stmt *st;
	int rc;

	pthread_mutex_lock(&m->db_lock);
	rc = pfs_meta_prep(m, "SELECT kind, made_at, vals FROM forecasts ORDER BY kind, made_at",
	                   &st);
	if (rc)
		goto out_unlock;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const void *blob = sqlite3_column_blob(st, 2);
		size_t len = (size_t)sqlite3_column_bytes(st, 2);
		const char *kind = (const char *)sqlite3_column_text(st, 0);
		uint32_t n = blob ? decode(blob, len, v, PFS_HISTORY_MAX_VALUES) : 0;
		int frc = fn(arg, kind ? kind : "", sqlite3_column_int64(st, 1), v, n);
		if (frc) {
			sqlite3_finalize(st);
			rc = frc;
			goto out_unlock;
		}
	}
	rc = pfs_meta_sql_errno(rc);
	sqlite3_finalize(st);
out_unlock:
	pthread_mutex_unlock(&m->db_lock);
	return rc;
}
