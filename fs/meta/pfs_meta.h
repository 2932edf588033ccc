/* fs/meta/pfs_meta.h - the metadata room of fs/: the catalogue, block-map page rows, long
 * patterns and settings in SQLite, kept on the namespace's metadata region through a VFS of our
 * own. The only room that includes <sqlite3.h> (pfs_meta.c, pfs_meta_history.c, pfs_vfs.c); it
 * knows nothing of volumes in memory, the log or FUSE. All functions return 0 or -errno.
 */
#ifndef PSTOR_PFS_META_H
#define PSTOR_PFS_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "pfs_base.h"
#include "pfs_format.h"

struct ftl_dev;
struct pfs_vfs;

/* Region layout (S = max(4096, device block size)): [header A: S][header B: S][db area]
 * [journal area]. Journal area = max(1 MiB, 1/4 of what follows the headers), but at most half
 * of it, rounded down to S; the db area is the rest. Both areas must be at least
 * PFS_VFS_MIN_AREA bytes. */
#define PFS_VFS_MIN_AREA (64u * 1024)

/* Lays out an empty region (both headers, no files). Destroys what was there. OFF and SIZE must
 * be multiples of the device block size.
 * Errors: -EINVAL (misaligned, out of the device, too small for two areas), -ENOMEM, -EIO. */
int pfs_vfs_format(struct ftl_dev *dev, uint64_t off, uint64_t size);

/* Registers a SQLite VFS called NAME (not the default VFS) over [off, off+size) of DEV, which
 * must stay open until pfs_vfs_close(). Open databases with sqlite3_open_v2(..., NAME).
 * Errors: -EINVAL (bad arguments; region not formatted, i.e. neither header copy is ours; or
 * formatted for a different region size), -EUCLEAN (a header copy is ours but both fail their
 * checksum), -EPROTONOSUPPORT (written by a newer version), -EEXIST (a VFS called NAME is
 * already registered), -ENOMEM, -EIO (device read error). */
int pfs_vfs_open(struct ftl_dev *dev, uint64_t off, uint64_t size, const char *name,
                 struct pfs_vfs **out);

/* Makes the header durable if needed and unregisters the VFS. Every sqlite3 handle opened
 * through it must be closed first (if one is not, the VFS is left registered and leaked rather
 * than freed under it). NULL is a no-op. */
void pfs_vfs_close(struct pfs_vfs *v);

/* Sets the write-back buffer (invariant 9 of pfs_vfs.c: blocks written since the last sync
 * wait in memory; default 16 MiB) to BYTES, 0 to write through; what it held is written out
 * first. For tests that cut power at every device write. -ENOMEM, -EIO. */
int pfs_vfs_set_writeback(struct pfs_vfs *v, size_t bytes);

struct pfs_vfs_stats {
	uint64_t reads;                         /* xRead calls that reached the device */
	uint64_t writes;                        /* xWrite calls */
	uint64_t device_writes;                 /* data writes issued (coalesced when buffered) */
	uint64_t bytes_read, bytes_written;     /* bytes SQLite asked for (not RMW blocks) */
	uint64_t syncs;                         /* xSync calls */
	uint64_t flushes;                       /* ftl_dev_flush calls */
	uint64_t header_writes;                 /* header copies written (both slots) */
	uint64_t db_bytes, journal_bytes;       /* current sizes (0 when the file does not exist) */
	uint64_t db_capacity, journal_capacity; /* area sizes: SQLITE_FULL beyond them */
};
void pfs_vfs_get_stats(struct pfs_vfs *v, struct pfs_vfs_stats *st);

/* One "name: value" line per counter; returns the length it needed (as snprintf). */
int pfs_vfs_stats_to_text(const struct pfs_vfs_stats *st, char *buf, size_t len);

/* ---- pfs_meta.c: SQLite ------------------------------------------------------------------ */
struct pfs_meta;
struct pfs_meta_params {
	struct ftl_dev *dev;
	uint64_t offset, size; /* the metadata region (superblock's meta_offset, meta_size) */
	bool readonly;
	/* Reads the flash copy at CHUNK of page IDX into REFS (a row that fails its checksum is
	 * healed from it); NULL when there is no FTL (fsck's rebuild). */
	int (*read_copy)(void *arg, uint64_t chunk, uint64_t idx, struct engine_ref *refs);
	void *arg;
};
/* -ENOENT read-only on a region that holds no database yet (formatted, never mounted). */
int pfs_meta_open(const struct pfs_meta_params *prm, struct pfs_meta **out);
void pfs_meta_close(struct pfs_meta *m); /* NULL is a no-op */
int pfs_meta_begin(struct pfs_meta *m);
int pfs_meta_commit(struct pfs_meta *m);
void pfs_meta_rollback(struct pfs_meta *m);
/* Catalogue rows. */
typedef int (*pfs_meta_map_fn)(void *arg, uint64_t id, int kind, uint64_t parent, const char *name,
                               uint64_t size, int64_t ctime_ns, int64_t nz, int64_t chunks);
int pfs_meta_maps_each(struct pfs_meta *m, pfs_meta_map_fn fn, void *arg);
int pfs_meta_map_insert(struct pfs_meta *m, int kind, uint64_t parent, const char *name,
                        uint64_t size, int64_t ctime_ns, uint64_t *id);
int pfs_meta_map_update(struct pfs_meta *m, uint64_t id, const char *name, uint64_t size,
                        int64_t nz, int64_t chunks);
int pfs_meta_map_delete(struct pfs_meta *m, uint64_t id); /* and its pages */
/* Pages. A row holds the references (with a CRC-32C over map, index and references) and the
 * FTL address of the page's flash copy (PFS_NO_CHUNK when the next checkpoint must write one).
 * A row whose checksum fails is read from its flash copy (counted in meta_damaged/healed). */
#define PFS_NO_CHUNK UINT64_MAX
int pfs_meta_page_load(struct pfs_meta *m, uint64_t map, uint64_t idx, struct engine_ref *refs);
/* Stores a page and its flash copy; *OLD_CHUNK gets the copy the row held before (or
 * PFS_NO_CHUNK), for the caller to free once the transaction is durable. */
int pfs_meta_page_store(struct pfs_meta *m, uint64_t map, uint64_t idx,
                        const struct engine_ref *refs, uint64_t chunk, uint64_t *old_chunk);
/* Copies the rows of FROM to TO; SHARE keeps their flash copies (a snapshot shares them with
 * its volume), otherwise the copies are marked for rewriting (restore, clone). */
int pfs_meta_pages_copy(struct pfs_meta *m, uint64_t from, uint64_t to, bool share);
/* Rows of MAP with index >= FIRST_IDX: zero references, flash copy to rewrite (tombstones, so a
 * rebuild from flash cannot resurrect what was there). */
int pfs_meta_pages_zero_from(struct pfs_meta *m, uint64_t map, uint64_t first_idx);
int pfs_meta_pages_delete_from(struct pfs_meta *m, uint64_t map, uint64_t first_idx);
/* The flash copy address of a row, PFS_NO_CHUNK when none, -ENOENT when no row. */
int pfs_meta_page_chunk(struct pfs_meta *m, uint64_t map, uint64_t idx, uint64_t *chunk);
typedef int (*pfs_meta_page_fn)(void *arg, uint64_t map, uint64_t idx,
                                const struct engine_ref *refs);
int pfs_meta_pages_each(struct pfs_meta *m, int64_t map /* -1 = all */, pfs_meta_page_fn fn,
                        void *arg);
/* Like pages_each, also passing the flash copy address. */
typedef int (*pfs_meta_page_chunk_fn)(void *arg, uint64_t map, uint64_t idx,
                                      const struct engine_ref *refs, uint64_t chunk);
int pfs_meta_pages_each_chunk(struct pfs_meta *m, int64_t map, bool only_unwritten,
                              pfs_meta_page_chunk_fn fn, void *arg);
/* Map rows with a chosen id (rebuild from flash) and the key/value table of the checkpoint. */
int pfs_meta_map_insert_id(struct pfs_meta *m, uint64_t id, int kind, uint64_t parent,
                           const char *name, uint64_t size, int64_t ctime_ns);
int pfs_meta_map_id_floor(struct pfs_meta *m, uint64_t next_id);
int pfs_meta_kv_set(struct pfs_meta *m, const char *key, uint64_t value);
int pfs_meta_kv_get(struct pfs_meta *m, const char *key, uint64_t *value); /* -ENOENT */
/* Attributes of a map (owner, mode, times); a map without a row has the defaults. */
struct pfs_meta_attr {
	uint32_t mode, uid, gid;
	int64_t atime_ns, mtime_ns;
};
int pfs_meta_attr_set(struct pfs_meta *m, uint64_t id, const struct pfs_meta_attr *a);
typedef int (*pfs_meta_attr_fn)(void *arg, uint64_t id, const struct pfs_meta_attr *a);
int pfs_meta_attrs_each(struct pfs_meta *m, pfs_meta_attr_fn fn, void *arg);
/* Long patterns (engine table) and settings. */
int pfs_meta_pattern_store(struct pfs_meta *m, uint64_t ref, const uint8_t *pat, uint32_t period);
typedef int (*pfs_meta_pattern_fn)(void *arg, uint64_t ref, const uint8_t *pat, uint32_t period);
int pfs_meta_patterns_each(struct pfs_meta *m, pfs_meta_pattern_fn fn, void *arg);
int pfs_meta_config_set(struct pfs_meta *m, const char *key, const char *value);
int pfs_meta_config_get(struct pfs_meta *m, const char *key, char *value, size_t len);
/* Named blobs (the blobs table) for the layers above the store. FN is called under db_lock: it
 * must copy what it needs and not call back into the metadata room. */
int pfs_meta_blob_set(struct pfs_meta *m, const char *key, const void *val, size_t len);
int pfs_meta_blob_delete(struct pfs_meta *m, const char *key);
typedef int (*pfs_meta_blob_fn)(void *arg, const char *key, const void *val, size_t len);
int pfs_meta_blobs_each(struct pfs_meta *m, const char *prefix, pfs_meta_blob_fn fn, void *arg);
struct pfs_meta_stats {
	uint64_t db_bytes, db_capacity, journal_capacity;
	uint64_t rows_damaged; /* page rows that failed their checksum since open */
	uint64_t rows_healed;  /* ... and were read from their flash copy instead */
};
void pfs_meta_get_stats(struct pfs_meta *m, struct pfs_meta_stats *st);

/* ---- pfs_meta_history.c: the analytics history --------------------------------------------- */
/* Rows of up to PFS_HISTORY_MAX_VALUES doubles by Unix time (seconds), in tiers: 0 raw samples,
 * 1 hourly, 2 daily. pfs_meta_history_roll() keeps raw rows for PFS_HISTORY_RAW_SECONDS and
 * hourly rows for PFS_HISTORY_HOURLY_SECONDS before the newest row, then keeps the last row of
 * each older hour (day) in the next tier. The caller brackets writes with begin/commit. */
#define PFS_HISTORY_TIERS          3
#define PFS_HISTORY_MAX_VALUES     64
#define PFS_HISTORY_RAW_SECONDS    (2 * 86400ll)
#define PFS_HISTORY_HOURLY_SECONDS (90 * 86400ll)
/* Raw rows kept at most (whole hours are rolled): 2 days at a 30 s interval. */
#define PFS_HISTORY_RAW_MAX_ROWS 5760
int pfs_meta_history_put(struct pfs_meta *m, int tier, int64_t time, const double *v, uint32_t n);
int pfs_meta_history_clear(struct pfs_meta *m);
/* -ENOSPC when the database's pages in use pass 3/4 of the db area: the history stops growing
 * there, so it never takes the room the block maps need. */
int pfs_meta_history_room(struct pfs_meta *m);
int pfs_meta_history_roll(struct pfs_meta *m);
/* The newest row's time, -1 when there is none. */
int pfs_meta_history_last(struct pfs_meta *m, int64_t *time);
int pfs_meta_history_count(struct pfs_meta *m, int tier, uint64_t *n);
/* Every row in time order (tiers never overlap in time). FN runs under db_lock: it must not
 * call back into meta. A row shorter than N values was written with fewer columns. */
typedef int (*pfs_meta_history_fn)(void *arg, int tier, int64_t time, const double *v, uint32_t n);
int pfs_meta_history_each(struct pfs_meta *m, pfs_meta_history_fn fn, void *arg);
/* Per-volume rows (table history_vol, keyed by volume name too), rolled by the same
 * pfs_meta_history_roll() per volume and cleared by pfs_meta_history_clear(). */
int pfs_meta_history_vol_put(struct pfs_meta *m, int tier, int64_t time, const char *name,
                             const double *v, uint32_t n);
int pfs_meta_history_vol_last(struct pfs_meta *m, int64_t *time); /* -1 when none */
typedef int (*pfs_meta_history_vol_fn)(void *arg, int tier, int64_t time, const char *name,
                                       const double *v, uint32_t n);
/* By name, then time. FN runs under db_lock. */
int pfs_meta_history_vol_each(struct pfs_meta *m, pfs_meta_history_vol_fn fn, void *arg);
/* Recorded forecasts (table forecasts): rows of doubles by KIND and the history time they were
 * made at. Put replaces a row of the same key; trim deletes every kind's rows made before
 * BEFORE; keep_only deletes every row not named in KINDS/MADE_AT (NKEEP pairs). The caller
 * brackets writes with begin/commit. LAST is -1 when KIND has none. */
int pfs_meta_forecast_put(struct pfs_meta *m, const char *kind, int64_t made_at, const double *v,
                          uint32_t n);
int pfs_meta_forecast_last(struct pfs_meta *m, const char *kind, int64_t *made_at);
int pfs_meta_forecast_trim(struct pfs_meta *m, int64_t before);
int pfs_meta_forecast_keep_only(struct pfs_meta *m, size_t nkeep, const char *const *kinds,
                                const int64_t *made_at);
/* By kind, then made_at. FN runs under db_lock. */
typedef int (*pfs_meta_forecast_fn)(void *arg, const char *kind, int64_t made_at, const double *v,
                                    uint32_t n);
int pfs_meta_forecast_each(struct pfs_meta *m, pfs_meta_forecast_fn fn, void *arg);

/* PRAGMA quick_check on the metadata as it is on the device (SQLite's page cache is dropped
 * first). PROBLEMS gets the number of problems, FIRST the first one. A database too damaged
 * for the check to run is one problem, not an error. Holds db_lock throughout. Defined at the
 * end of pfs_meta.c, the only file that speaks SQL. */
int pfs_meta_quick_check(struct pfs_meta *m, uint64_t *problems, char *first, size_t len);

#endif
