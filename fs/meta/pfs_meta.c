/* fs/meta/pfs_meta.c - the catalogue, block-map pages, long patterns and settings in SQLite,
 * stored on the namespace's metadata region through pfs_vfs. With pfs_meta_history.c the only
 * files of fs/ that speak SQL; every call holds m->db_lock, and SQLite errors become -errno
 * here, once (pfs_meta_sql_errno).
 */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pfs_meta.h"
#include "pfs_meta_int.h"

#define DB(m)           ((m)->db)
#define PFS_VFS_NAME    "pstorfs-meta"
#define PFS_DB_NAME     "pstorfs.db"
#define PFS_META_FORMAT 2u /* pages carry a checksum and their flash copy address */

static const char *const schema_sql =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value);"
    "CREATE TABLE IF NOT EXISTS maps(id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " kind INTEGER NOT NULL, parent INTEGER NOT NULL, name TEXT NOT NULL,"
    " size INTEGER NOT NULL, ctime INTEGER NOT NULL, nz INTEGER NOT NULL DEFAULT 0,"
    " chunks INTEGER NOT NULL DEFAULT 0, UNIQUE(kind, parent, name));"
    "CREATE TABLE IF NOT EXISTS pages(key INTEGER PRIMARY KEY, data BLOB NOT NULL, chunk INTEGER);"
    "CREATE TABLE IF NOT EXISTS patterns(ref INTEGER PRIMARY KEY, pat BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS config(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    /* Added after format 2 shipped: a database without it gets it here, and maps without a
     * row keep the defaults (0600 root:root). */
    "CREATE TABLE IF NOT EXISTS attrs(id INTEGER PRIMARY KEY, mode INTEGER NOT NULL,"
    " uid INTEGER NOT NULL, gid INTEGER NOT NULL, atime INTEGER NOT NULL,"
    " mtime INTEGER NOT NULL);"
    /* Named blobs of the layers above the store (the cluster's pods, dirty maps, activity
     * logs): added with the cluster, created here in older databases. */
    "CREATE TABLE IF NOT EXISTS blobs(key TEXT PRIMARY KEY, value BLOB NOT NULL);"
    /* The analytics history (pfs_meta_history.c): TIER 0 raw, 1 hourly, 2 daily; VALS the
     * columns as little-endian doubles. Added after format 2 shipped, as attrs. */
    "CREATE TABLE IF NOT EXISTS history(tier INTEGER NOT NULL, time INTEGER NOT NULL,"
    " vals BLOB NOT NULL, PRIMARY KEY(tier, time)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS history_vol(tier INTEGER NOT NULL, time INTEGER NOT NULL,"
    " name TEXT NOT NULL, vals BLOB NOT NULL, PRIMARY KEY(tier, name, time)) WITHOUT ROWID;"
    /* Forecasts the box made, kept to be graded when their horizons pass
     * (pfs_meta_history.c): KIND names what was forecast, MADE_AT the history time it was made
     * at, VALS its figures as little-endian doubles (analytics/ says what they mean). */
    "CREATE TABLE IF NOT EXISTS forecasts(kind TEXT NOT NULL, made_at INTEGER NOT NULL,"
    " vals BLOB NOT NULL, PRIMARY KEY(kind, made_at)) WITHOUT ROWID;";

static int sql_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -EUCLEAN;
	case SQLITE_READONLY:
		return -EROFS;
	default:
		return -EIO;
	}
}

int pfs_meta_sql_errno(int rc)
{
	return sql_errno(rc);
}

static int exec_locked(struct pfs_meta *m, const char *sql)
{
	char *err = NULL;
	int rc = sqlite3_exec(DB(m), sql, NULL, NULL, &err);

	if (rc != SQLITE_OK) {
		pfs_logl(LOG_ERR, "pstorfs: metadata: %s: %s", sql, err ? err : sqlite3_errstr(rc));
		sqlite3_free(err);
	}
	return sql_errno(rc);
}

int pfs_meta_prep(struct pfs_meta *m, const char *sql, sqlite3_stmt **st)
{
	int rc = sqlite3_prepare_v2(DB(m), sql, -1, st, NULL);

	if (rc != SQLITE_OK)
		pfs_logl(LOG_ERR, "pstorfs: metadata: prepare %s: %s", sql, sqlite3_errmsg(DB(m)));
	return sql_errno(rc);
}

int pfs_meta_step_done(struct pfs_meta *m, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	if (rc != SQLITE_DONE)
		pfs_logl(LOG_ERR, "pstorfs: metadata: %s: %s", sqlite3_sql(st),
		         sqlite3_errmsg(DB(m)));
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : sql_errno(rc);
}

int pfs_meta_open(const struct pfs_meta_params *prm, struct pfs_meta **out)
{
	struct pfs_meta *m;
	sqlite3 *db = NULL;
	int rc;

	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->prm = *prm;
	pthread_mutex_init(&m->db_lock, NULL);
	rc = pfs_vfs_open(prm->dev, prm->offset, prm->size, PFS_VFS_NAME, &m->vfs);
	if (rc)
		goto err_free;
	if (prm->readonly) {
		/* Read-only, SQLite cannot create the database: a region mkfs laid out and no mount
		 * ever wrote has none, which is a state of its own, not damage. */
		struct pfs_vfs_stats vs;
		pfs_vfs_get_stats(m->vfs, &vs);
		if (!vs.db_bytes) {
			rc = -ENOENT;
			goto err_vfs;
		}
	}
	rc = sqlite3_open_v2(
	    PFS_DB_NAME, &db,
	    (prm->readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
	        SQLITE_OPEN_FULLMUTEX,
	    PFS_VFS_NAME);
	if (rc != SQLITE_OK) {
		rc = sql_errno(rc);
		sqlite3_close(db);
		goto err_vfs;
	}
	m->db = db;
	pthread_mutex_lock(&m->db_lock);
	/* One process owns the device (flock), so an exclusive lock held for the life of the
	 * connection costs nothing and spares re-reading the schema at every transaction. The
	 * page cache (64 MiB at most, filled as pages are read) holds the map pages of 16 GiB of
	 * volume: a commit's page stores read the rows they replace, each a device read on a
	 * miss (16 MiB cost a sequential overwrite of an 8 GiB volume 0.4-1.2 s a commit). */
	rc = exec_locked(
	    m, "PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=DELETE;"
	       "PRAGMA synchronous=FULL; PRAGMA temp_store=MEMORY; PRAGMA secure_delete=OFF;"
	       "PRAGMA cache_size=-65536;");
	if (!rc && !prm->readonly)
		rc = exec_locked(m, schema_sql);
	pthread_mutex_unlock(&m->db_lock);
	/* Metadata layout version: rows written by another layout are not read as ours. */
	uint64_t fmt = 0;
	if (!rc && pfs_meta_kv_get(m, "format", &fmt) == -ENOENT && !prm->readonly)
		rc = pfs_meta_kv_set(m, "format", PFS_META_FORMAT), fmt = PFS_META_FORMAT;
	if (!rc && fmt != PFS_META_FORMAT)
		rc = fmt > PFS_META_FORMAT ? -EPROTONOSUPPORT : -EUCLEAN;
	if (rc)
		goto err_db;
	*out = m;
	return 0;
err_db:
	sqlite3_close(db);
err_vfs:
	pfs_vfs_close(m->vfs);
err_free:
	pthread_mutex_destroy(&m->db_lock);
	free(m);
	return rc;
}

void pfs_meta_close(struct pfs_meta *m)
{
	if (!m)
		return;
	if (m->db)
		sqlite3_close(m->db);
	pfs_vfs_close(m->vfs);
	pthread_mutex_destroy(&m->db_lock);
	free(m);
}

/* Transactions: the caller holds commit_lock, so there is never more than one; db_lock is
 * taken per statement so page loads of readers interleave with a long commit. */
int pfs_meta_begin(struct pfs_meta *m)
{
	pthread_mutex_lock(&m->db_lock);
	int rc = exec_locked(m, "BEGIN IMMEDIATE");
	pthread_mutex_unlock(&m->db_lock);
	return rc;
}

int pfs_meta_commit(struct pfs_meta *m)
{
	pthread_mutex_lock(&m->db_lock);
	int rc = exec_locked(m, "COMMIT");
	if (rc)
		exec_locked(m, "ROLLBACK");
	pthread_mutex_unlock(&m->db_lock);
	return rc;
}

void pfs_meta_rollback(struct pfs_meta *m)
{
	pthread_mutex_lock(&m->db_lock);
	if (!sqlite3_get_autocommit(DB(m)))
		exec_locked(m, "ROLLBACK");
	pthread_mutex_unlock(&m->db_lock);
}

int pfs_meta_maps_each(struct pfs_meta *m, pfs_meta_map_fn fn, void *arg)
{
	sqlite3_stmt *st = NULL;
	int rc;

	pthread_mutex_lock(&m->db_lock);
	rc = pfs_meta_prep(
	    m, "SELECT id, kind, parent, name, size, ctime, nz, chunks FROM maps ORDER BY id", &st);
	if (rc)
		goto out_unlock;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 3);
		rc = fn(arg, (uint64_t)sqlite3_column_int64(st, 0), sqlite3_column_int(st, 1),
		        (uint64_t)sqlite3_column_int64(st, 2), name ? name : "",
		        (uint64_t)sqlite3_column_int64(st, 4), sqlite3_column_int64(st, 5),
		        sqlite3_column_int64(st, 6), sqlite3_column_int64(st, 7));
		if (rc)
			goto out_final;
	}
	rc = sql_errno(rc);
out_final:
	sqlite3_finalize(st);
out_unlock:
	pthread_mutex_unlock(&m->db_lock);
	return rc;
}

int pfs_meta_map_insert(struct pfs_meta *m, int kind, uint64_t parent, const char *name,
                        uint64_t size, int64_t ctime_ns, uint64_t *id)
{
	sqlite3_stmt *st = NULL;
	int rc;

	pthread_mutex_lock(&m->db_lock);
	rc = pfs_meta_prep(m, "INSERT INTO maps(kind, parent, name, size, ctime) VALUES(?,?,?,?,?)",
	                   &st);
	if (rc)
		goto out_unlock;
	sqlite3_bind_int(st, 1, kind);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)parent);
	sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)size);
	sqlite3_bind_int64(st, 5, ctime_ns);
	rc = pfs_meta_step_done(m, st);
	if (!rc)
		*id = (uint64_t)sqlite3_last_insert_rowid(DB(m));
out_unlock:
	pthread_mutex_unlock(&m->db_lock);
	return rc;
}

int pfs_meta_map_insert_id(struct pfs_meta *m, uint64_t id, int kind, uint64_t parent,
                           const char *name, uint64_t size, int64_t ctime_ns)
{
	sqlite3_stmt *st = NULL;
	int rc;

	pthread_mutex_lock(&m->db_lock);
	rc = pfs_meta_prep(
	    m, "INSERT INTO maps(id, kind, parent, name, size, ctime) VALUES(?,?,?,?,?,?)", &st);
	if (!rc) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
		sqlite3_bind_int(st, 2, kind);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)parent);
		sqlite3_bind_text(st, 4, name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, (sqlite3_int64)size);
		sqlite3_bind_int64(st, 6, ctime_ns);
		rc = pfs_meta_step_done(m, st);
	}
	pthread_mutex_unlock(&m->db_lock);
	return rc;
}

/* Map ids are never reused, also after a rebuild: AUTOINCREMENT continues above NEXT_ID - 1. */
int pfs_meta_map_id_floor(struct pfs_meta *m, uint64_t next_id)
{
	sqlite3_stmt *st = NULL;
	int rc;

	pthread_mutex_lock(&m->db_lock);
	rc = pfs_meta_prep(m, "UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = 'maps'",
	                   &st);
	if (!rc) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)(next_id ? next_id - 1 : 0));
		rc = pfs_meta_step_done(m, st);
	}
	pthread_mutex_unlock(&m->db_lock);
	return rc;
}

int pfs_meta_kv_set(struct pfs_meta *m, const char *key, uint64_t value)
{
	sqlite3_stmt *st = NULL;
	int rc;

	pthread_mutex_lock(&m->db_lock);
	rc = pfs_meta_prep(m, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", &st);
	if (!rc) {
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)value);
		rc = pfs_meta_step_done(m, st);
	}
	pthread_mutex_unlock(&m->db_lock);
	return rc;
}

int pfs_meta_kv_get(struct pfs_meta *m, const char *key, uint64_t *value)
{
	sqlite3_stmt *st = NULL;
	int rc;

	pthread_mutex_lock(&m->db_lock);
	rc = pfs_meta_prep(m, "SELECT value FROM meta WHERE key=?", &st);
	if (!rc) {
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			*value = (uint64_t)sqlite3_column_int64(st, 0);
			rc = 0;
		} else {
			rc = rc == SQLITE_DONE ? -ENOENT : sql_errno(rc);
		}
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&m->db_lock);
	return rc;
}

int pfs_meta_map_update(struct pfs_meta *m, uint64_t id, const char *name, uint64_t size,
                        int64_t nz, int64_t chunks)
{
	sqlite3_stmt *st = NULL;
	int rc;

	pthread_mutex_lock(&m->db_lock);
	rc = pfs_meta_prep(m, "UPDATE maps SET name=?, size=?, nz=?, chunks=? WHERE id=?", &st);
	if (rc)
		goto out_unlock;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)size);
	sqlite3_bind_int64(st, 3, nz);
	sqlite3_bind_int64(st, 4, chunks);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)id);
	rc = pfs_meta_step_done(m, st);
out_unlock:
	pthread_mutex_unlock(&m->db_lock);
	return rc;
}

int pfs_meta_map_delete(struct pfs_meta *m, uint64_t id)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = pfs_meta_pages_delete_from(m, id, 0);
	if (rc)
		return rc;
	pthread_mutex_lock(&m->db_lock);
	rc = pfs_meta_prep(m, "DELETE FROM maps WHERE id=?", &st);
	if (!rc) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
		rc = pfs_meta_step_done(m, st);
	}
	if (!rc)
		rc = pfs_meta_prep(m, "DELETE FROM attrs WHERE id=?", &st);
	if (!rc) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
		rc = pfs_meta_step_done(m, st);
	}
	pthread_mutex_unlock(&m->db_lock);
	return rc;
}

static sqlite3_int64 page_key(uint64_t map, uint64_t idx)
{
	return (sqlite3_int64)(map << PFS_PAGE_SHIFT | idx);
}

static uint64_t column_chunk(sqlite3_stmt *st, int col)
{
	return sqlite3_column_type(st, col) == SQLITE_NULL
	           ? PFS_NO_CHUNK
	           : (uint64_t)sqlite3_column_int64(st, col);
}

/* A row that fails its checksum is bit rot in the metadata region: the page's flash copy (the
 * FTL checksums it) has the same references when the row's copy address is still readable. */
static int page_heal(struct pfs_meta *m, uint64_t map, uint64_t idx, uint64_t chunk,
                     struct engine_ref *refs)
{
	int rc = -EUCLEAN;

	atomic_fetch_add(&m->damaged, 1);
	if (chunk != PFS_NO_CHUNK && m->prm.read_copy)
		rc = m->prm.read_copy(m->prm.arg, chunk, idx, refs);
	if (rc) {
		pfs_logl(LOG_ERR,
		         "pstorfs: metadata: map %llu page %llu is damaged and has no flash copy",
		         (unsigned long long)map, (unsigned long long)idx);
		return -EIO;
	}
	atomic_fetch_add(&m->healed, 1);
	pfs_logl(LOG_WARNING,
	         "pstorfs: metadata: map %llu page %llu was damaged; read its flash copy",
	         (unsigned long long)map, (unsigned long long)idx);
	return 0;
}

int pfs_meta_page_load(struct pfs_meta *m, uint64_t map, uint64_t idx, struct engine_ref *refs)
{
	sqlite3_stmt *st = NULL;
	uint64_t chunk = PFS_NO_CHUNK;
	int rc;

	pthread_mutex_lock(&m->db_lock);
	rc = pfs_meta_prep(m, "SELECT data, chunk FROM pages WHERE key=?", &st);
	if (rc)
		goto out_unlock;
	sqlite3_bind_int64(st, 1, page_key(map, idx));
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		chunk = column_chunk(st, 1);
		rc = pfs_page_decode(map, idx, sqlite3_column_blob(st, 0),
		                     (size_t)sqlite3_column_bytes(st, 0), refs);
	} else {
		rc = rc == SQLITE_DONE ? -ENOENT : sql_errno(rc);
	}
	sqlite3_finalize(st);
out_unlock:
	pthread_mutex_unlock(&m->db_lock);
	if (rc == -EUCLEAN)
		rc = page_heal(m, map, idx, chunk, refs);
	return rc;
}

int pfs_meta_page_chunk(struct pfs_meta *m, uint64_t map, uint64_t idx, uint64_t *chunk)
{
	sqlite3_stmt *st = NULL;
	int rc;

	pthread_mutex_lock(&m->db_lock);
	rc = pfs_meta_prep(m, "SELECT chunk FROM pages WHERE key=?", &st);
	if (!rc) {
		sqlite3_bind_int64(st, 1, page_key(map, idx));
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			*chunk = column_chunk(st, 0);
			rc = 0;
		} else {
			rc = rc == SQLITE_DONE ? -ENOENT : sql_errno(rc);
		}
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&m->db_lock);
	return rc;
}

int pfs_meta_page_store(struct pfs_meta *m, uint64_t map, uint64_t idx,
                        const struct engine_ref *refs, uint64_t chunk, uint64_t *old_chunk)
{
	uint8_t blob[PFS_PAGE_BLOB];
	sqlite3_stmt *st = NULL;
	int rc;

	*old_chunk = PFS_NO_CHUNK;
	rc = pfs_meta_page_chunk(m, map, idx, old_chunk);
	if (rc && rc != -ENOENT)
		return rc;
	pfs_page_encode(map, idx, refs, blob);
	pthread_mutex_lock(&m->db_lock);
	/* All-zero pages keep their row: their flash copy is the tombstone that stops a rebuild
	 * from bringing back an older copy of the page. */
	rc =
	    pfs_meta_prep(m, "INSERT OR REPLACE INTO pages(key, data, chunk) VALUES(?, ?, ?)", &st);
	if (rc)
		goto out_unlock;
	sqlite3_bind_int64(st, 1, page_key(map, idx));
	sqlite3_bind_blob(st, 2, blob, sizeof(blob), SQLITE_STATIC);
	if (chunk == PFS_NO_CHUNK)
		sqlite3_bind_null(st, 3);
	else
		sqlite3_bind_int64(st, 3, (sqlite3_int64)chunk);
	rc = pfs_meta_step_done(m, st);
out_unlock:
	pthread_mutex_unlock(&m->db_lock);
	return rc;
}

/* Rows are re-keyed and re-checksummed for their new map (the CRC covers the map id), so the
 * copy goes through C rather than one INSERT ... SELECT. */
struct copy_arg {
	struct pfs_meta *m;
	uint64_t to;
	bool share;
};

static int copy_row(void *arg, uint64_t map, uint64_t idx, const struct engine_ref *refs,
                    uint64_t chunk)
{
	struct copy_arg *a = arg;
	uint64_t old;

	(void)map;
	return pfs_meta_page_store(a->m, a->to, idx, refs, a->share ? chunk : PFS_NO_CHUNK, &old);
}

int pfs_meta_pages_copy(struct pfs_meta *m, uint64_t from, uint64_t to, bool share)
{
	struct copy_arg a = {m, to, share};
	return pfs_meta_pages_each_chunk(m, (int64_t)from, false, copy_row, &a);
}

struct zero_arg {
	struct pfs_meta *m;
	uint64_t first;
};

static int zero_row(void *arg, uint64_t map, uint64_t idx, const struct engine_ref *refs,
                    uint64_t chunk)
{
	static const struct engine_ref zero[PFS_PAGE_REFS];
	struct zero_arg *a = arg;
	uint64_t old;
	int rc;

	(void)refs;
	if (idx < a->first)
		return 0;
	rc = pfs_meta_page_store(a->m, map, idx, zero, PFS_NO_CHUNK, &old);
	/* The old flash copy is superseded by the tombstone the next checkpoint writes; it is
	 * freed at the next mount (unreferenced page copies are), never before that checkpoint. */
	(void)chunk;
	return rc;
}

int pfs_meta_pages_zero_from(struct pfs_meta *m, uint64_t map, uint64_t first_idx)
{
	struct zero_arg a = {m, first_idx};
	return pfs_meta_pages_each_chunk(m, (int64_t)map, false, zero_row, &a);
}

int pfs_meta_pages_delete_from(struct pfs_meta *m, uint64_t map, uint64_t first_idx)
{
	sqlite3_stmt *st = NULL;
	int rc;

	pthread_mutex_lock(&m->db_lock);
	rc = pfs_meta_prep(m, "DELETE FROM pages WHERE key >= ? AND key < ?", &st);
	if (!rc) {
		sqlite3_bind_int64(st, 1, page_key(map, first_idx));
		sqlite3_bind_int64(st, 2, page_key(map + 1, 0));
		rc = pfs_meta_step_done(m, st);
	}
	pthread_mutex_unlock(&m->db_lock);
	return rc;
}

/* Pages are read in batches so db_lock is not held across the callback (which may take
 * volume locks, and must not nest inside db_lock: invariant 5). A row that fails its checksum
 * is healed from its flash copy or, failing that, reported as an error. */
int pfs_meta_pages_each_chunk(struct pfs_meta *m, int64_t map, bool only_unwritten,
                              pfs_meta_page_chunk_fn fn, void *arg)
{
	enum { BATCH = 64 };
	struct engine_ref *refs = malloc(BATCH * PFS_PAGE_REFS * sizeof(*refs));
	sqlite3_int64 keys[BATCH];
	uint64_t chunks[BATCH];
	int bad[BATCH];
	sqlite3_int64 lo = map < 0 ? 0 : page_key((uint64_t)map, 0);
	sqlite3_int64 hi = map < 0 ? INT64_MAX : page_key((uint64_t)map + 1, 0);
	int rc = 0;

	if (!refs)
		return -ENOMEM;
	for (;;) {
		sqlite3_stmt *st = NULL;
		int n = 0;

		pthread_mutex_lock(&m->db_lock);
		rc = pfs_meta_prep(
		    m,
		    only_unwritten ? "SELECT key, data, chunk FROM pages WHERE key >= ? AND key < ?"
		                     " AND chunk IS NULL ORDER BY key LIMIT ?"
		                   : "SELECT key, data, chunk FROM pages WHERE key >= ? AND key < ?"
		                     " ORDER BY key LIMIT ?",
		    &st);
		if (rc) {
			pthread_mutex_unlock(&m->db_lock);
			break;
		}
		sqlite3_bind_int64(st, 1, lo);
		sqlite3_bind_int64(st, 2, hi);
		sqlite3_bind_int(st, 3, BATCH);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			keys[n] = sqlite3_column_int64(st, 0);
			chunks[n] = column_chunk(st, 2);
			bad[n] = pfs_page_decode((uint64_t)keys[n] >> PFS_PAGE_SHIFT,
			                         (uint64_t)keys[n] & ((1ull << PFS_PAGE_SHIFT) - 1),
			                         sqlite3_column_blob(st, 1),
			                         (size_t)sqlite3_column_bytes(st, 1),
			                         refs + (size_t)n * PFS_PAGE_REFS);
			n++;
		}
		rc = sql_errno(rc);
		sqlite3_finalize(st);
		pthread_mutex_unlock(&m->db_lock);
		if (rc)
			break;
		for (int i = 0; i < n && !rc; i++) {
			uint64_t id = (uint64_t)keys[i] >> PFS_PAGE_SHIFT;
			uint64_t idx = (uint64_t)keys[i] & ((1ull << PFS_PAGE_SHIFT) - 1);
			struct engine_ref *r = refs + (size_t)i * PFS_PAGE_REFS;
			if (bad[i])
				rc = page_heal(m, id, idx, chunks[i], r);
			if (!rc)
				rc = fn(arg, id, idx, r, chunks[i]);
		}
		if (rc || n < BATCH)
			break;
		lo = keys[n - 1] + 1;
	}
	free(refs);
	return rc;
}

struct each_plain {
	pfs_meta_page_fn fn;
	void *arg;
};

static int each_plain_cb(void *arg, uint64_t map, uint64_t idx, const struct engine_ref *refs,
                         uint64_t chunk)
{
	struct each_plain *a = arg;

	(void)chunk;
	return a->fn(a->arg, map, idx, refs);
}

int pfs_meta_pages_each(struct pfs_meta *m, int64_t map, pfs_meta_page_fn fn, void *arg)
{
	struct each_plain a = {fn, arg};
	return pfs_meta_pages_each_chunk(m, map, false, each_plain_cb, &a);
}

int pfs_meta_pattern_store(struct pfs_meta *m, uint64_t ref, const uint8_t *pat, uint32_t period)
{
	sqlite3_stmt *st = NULL;
	int rc;

	pthread_mutex_lock(&m->db_lock);
	rc = pfs_meta_prep(m, "INSERT OR REPLACE INTO patterns(ref, pat) VALUES(?, ?)", &st);
	if (!rc) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)ref);
		sqlite3_bind_blob(st, 2, pat, (int)period, SQLITE_STATIC);
		rc = pfs_meta_step_done(m, st);
	}
	pthread_mutex_unlock(&m->db_lock);
	return rc;
}

int pfs_meta_patterns_each(struct pfs_meta *m, pfs_meta_pattern_fn fn, void *arg)
{
	sqlite3_stmt *st = NULL;
	int rc;

	pthread_mutex_lock(&m->db_lock);
	rc = pfs_meta_prep(m, "SELECT ref, pat FROM patterns", &st);
	if (rc)
		goto out_unlock;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int n = sqlite3_column_bytes(st, 1);
		if (n < 1 || n > 16)
			continue;
		rc = fn(arg, (uint64_t)sqlite3_column_int64(st, 0), sqlite3_column_blob(st, 1),
		        (uint32_t)n);
		if (rc)
			goto out_final;
	}
	rc = sql_errno(rc);
out_final:
	sqlite3_finalize(st);
out_unlock:
	pthread_mutex_unlock(&m->db_lock);
	return rc;
}

int pfs_meta_config_set(struct pfs_meta *m, const char *key, const char *value)
{
	sqlite3_stmt *st = NULL;
	int rc;

	pthread_mutex_lock(&m->db_lock);
	rc = pfs_meta_prep(m, "INSERT OR REPLACE INTO config(key, value) VALUES(?, ?)", &st);
	if (!rc) {
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
		rc = pfs_meta_step_done(m, st);
	}
	pthread_mutex_unlock(&m->db_lock);
	return rc;
}

int pfs_meta_config_get(struct pfs_meta *m, const char *key, char *value, size_t len)
{
	sqlite3_stmt *st = NULL;
	int rc;

	pthread_mutex_lock(&m->db_lock);
	rc = pfs_meta_prep(m, "SELECT value FROM config WHERE key=?", &st);
	if (rc)
		goto out_unlock;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(st, 0);
		snprintf(value, len, "%s", v ? v : "");
		rc = 0;
	} else {
		rc = rc == SQLITE_DONE ? -ENOENT : sql_errno(rc);
	}
	sqlite3_finalize(st);
out_unlock:
	pthread_mutex_unlock(&m->db_lock);
	return rc;
}

int pfs_meta_blob_set(struct pfs_meta *m, const char *key, const void *val, size_t len)
{
	sqlite3_stmt *st = NULL;
	int rc;

	pthread_mutex_lock(&m->db_lock);
	rc = pfs_meta_prep(m, "INSERT OR REPLACE INTO blobs(key, value) VALUES(?, ?)", &st);
	if (!rc) {
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		sqlite3_bind_blob64(st, 2, len ? val : "", (sqlite3_uint64)len, SQLITE_STATIC);
		rc = pfs_meta_step_done(m, st);
	}
	pthread_mutex_unlock(&m->db_lock);
	return rc;
}

int pfs_meta_blob_delete(struct pfs_meta *m, const char *key)
{
	sqlite3_stmt *st = NULL;
	int rc;

	pthread_mutex_lock(&m->db_lock);
	rc = pfs_meta_prep(m, "DELETE FROM blobs WHERE key=?", &st);
	if (!rc) {
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		rc = pfs_meta_step_done(m, st);
	}
	pthread_mutex_unlock(&m->db_lock);
	return rc;
}

int pfs_meta_blobs_each(struct pfs_meta *m, const char *prefix, pfs_meta_blob_fn fn, void *arg)
{
	sqlite3_stmt *st = NULL;
	int rc;

	pthread_mutex_lock(&m->db_lock);
	/* substr, not LIKE: keys may hold '%' and '_'. */
	rc = pfs_meta_prep(
	    m, "SELECT key, value FROM blobs WHERE substr(key, 1, length(?1)) = ?1 ORDER BY key",
	    &st);
	if (rc)
		goto out_unlock;
	sqlite3_bind_text(st, 1, prefix, -1, SQLITE_STATIC);
	int cb_rc = 0;
	while (!cb_rc && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *k = (const char *)sqlite3_column_text(st, 0);
		const void *v = sqlite3_column_blob(st, 1);
		int n = sqlite3_column_bytes(st, 1);
		cb_rc = fn(arg, k ? k : "", v, (size_t)n);
	}
	rc = cb_rc ? cb_rc : sql_errno(rc);
	sqlite3_finalize(st);
out_unlock:
	pthread_mutex_unlock(&m->db_lock);
	return rc;
}

void pfs_meta_get_stats(struct pfs_meta *m, struct pfs_meta_stats *st)
{
	struct pfs_vfs_stats vs;

	memset(st, 0, sizeof(*st));
	if (!m || !m->vfs)
		return;
	st->rows_damaged = atomic_load(&m->damaged);
	st->rows_healed = atomic_load(&m->healed);
	pfs_vfs_get_stats(m->vfs, &vs);
	st->db_bytes = vs.db_bytes;
	st->db_capacity = vs.db_capacity;
	st->journal_capacity = vs.journal_capacity;
}

int pfs_meta_attr_set(struct pfs_meta *m, uint64_t id, const struct pfs_meta_attr *a)
{
	sqlite3_stmt *st = NULL;
	int rc;

	pthread_mutex_lock(&m->db_lock);
	rc = pfs_meta_prep(m,
	                   "INSERT OR REPLACE INTO attrs(id, mode, uid, gid, atime, mtime)"
	                   " VALUES(?, ?, ?, ?, ?, ?)",
	                   &st);
	if (!rc) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
		sqlite3_bind_int64(st, 2, a->mode);
		sqlite3_bind_int64(st, 3, a->uid);
		sqlite3_bind_int64(st, 4, a->gid);
		sqlite3_bind_int64(st, 5, a->atime_ns);
		sqlite3_bind_int64(st, 6, a->mtime_ns);
		rc = pfs_meta_step_done(m, st);
	}
	pthread_mutex_unlock(&m->db_lock);
	return rc;
}

int pfs_meta_attrs_each(struct pfs_meta *m, pfs_meta_attr_fn fn, void *arg)
{
	sqlite3_stmt *st = NULL;
	int rc;

	pthread_mutex_lock(&m->db_lock);
	rc =
	    pfs_meta_prep(m, "SELECT id, mode, uid, gid, atime, mtime FROM attrs ORDER BY id", &st);
	if (rc && m->prm.readonly) {
		/* A database older than the attrs table, opened read-only: every map has the
		 * defaults. */
		pthread_mutex_unlock(&m->db_lock);
		return 0;
	}
	while (!rc && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct pfs_meta_attr a = {
		    .mode = (uint32_t)sqlite3_column_int64(st, 1) & 07777,
		    .uid = (uint32_t)sqlite3_column_int64(st, 2),
		    .gid = (uint32_t)sqlite3_column_int64(st, 3),
		    .atime_ns = sqlite3_column_int64(st, 4),
		    .mtime_ns = sqlite3_column_int64(st, 5),
		};
		rc = fn(arg, (uint64_t)sqlite3_column_int64(st, 0), &a);
	}
	if (rc == SQLITE_DONE)
		rc = 0;
	else if (rc > 0)
		rc = sql_errno(rc);
	sqlite3_finalize(st);
	pthread_mutex_unlock(&m->db_lock);
	return rc;
}

/* The scrub's metadata check (pfs_scrub.c). Pages SQLite still has in its cache were read
 * before the damage may have happened: drop them, so the check reads the device. */
int pfs_meta_quick_check(struct pfs_meta *m, uint64_t *problems, char *first, size_t len)
{
	sqlite3_stmt *st = NULL;
	uint64_t n = 0;
	int rc;

	if (len)
		first[0] = '\0';
	pthread_mutex_lock(&m->db_lock);
	sqlite3_db_release_memory(DB(m));
	rc = pfs_meta_prep(m, "PRAGMA quick_check(100)", &st);
	if (rc == -EUCLEAN || rc == -EIO) {
		/* Not even the schema could be read: that is the finding. */
		if (len)
			snprintf(first, len, "%s", sqlite3_errmsg(DB(m)));
		n = 1;
		rc = 0;
	}
	if (!st)
		goto out_unlock;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(st, 0);
		const char *hdr = "*** in database main ***\n";
		if (t && !strcmp(t, "ok"))
			continue;
		if (!n && len) {
			/* One line for the reports: no header, newlines become ";". */
			if (t && !strncmp(t, hdr, strlen(hdr)))
				t += strlen(hdr);
			snprintf(first, len, "%s", t ? t : "(no message)");
			for (char *c = first; *c; c++)
				if (*c == '\n')
					*c = ';';
		}
		n++;
	}
	rc = sql_errno(rc);
	if (rc == -EUCLEAN || rc == -EIO) {
		/* The check stopped at damage it could not walk past. */
		if (!n && len)
			snprintf(first, len, "%s", sqlite3_errmsg(DB(m)));
		n++;
		rc = 0;
	}
	sqlite3_finalize(st);
out_unlock:
	pthread_mutex_unlock(&m->db_lock);
	*problems = n;
	return rc;
}
