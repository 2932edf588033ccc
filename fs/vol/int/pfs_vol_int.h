/* fs/vol/int/pfs_vol_int.h - private structures of the volume store: block maps, volumes, the
 * catalogue and the commit protocol. Never included from another folder.
 *
 * Invariants (referred to by number in the code):
 *  1. A block map is an array of engine references, one per block of the volume, kept in pages
 *     of PFS_PAGE_REFS references. In memory a page is loaded on first use; in SQLite a page is a
 *     blob row keyed by (map id << 40 | page index). A page of only zero references has no row.
 *  2. Each reference in a map owns one engine reference count. Counts are not persisted: mount
 *     recounts them from the committed maps.
 *  3. Data before metadata: a commit flushes the FTL (ftl_sync) before the SQLite transaction
 *     that makes new references durable.
 *  4. Deferred release: a reference dropped from a map (overwrite, punch, delete) is released
 *     (engine_ref_put) only after a commit in which the map no longer holds it is durable, so a
 *     chunk that the committed maps still point to is never freed or its id reused. The put is
 *     queued after the map change, and a commit takes the queue before copying dirty pages.
 *  5. Locks, in the order a thread may take them (the whole order, across modules, is in the
 *     top-level README.md, "Locks"): commit_lock -> cat_lock (briefly, nothing under it but
 *     leaves) ; commit_lock or usage_lock -> vol->rw -> stripe lock -> vol->lock -> [engine,
 *     flash] ; log.flush_lock -> [flash] ; leaves: log.lock, puts_lock, cfg_lock, msg_lock,
 *     bg_lock, the metadata room's db_lock (-> its VFS lock -> flash/dev). cat_lock is never
 *     taken under vol->rw. What each lock guards is said where it is declared.
 *  6. The change stream: every change appends its records to the log at the point it takes
 *     effect, under the locks that order it against the writes it must precede or follow
 *     (a write's records under its stripe lock, a snapshot's under its volume's rw lock), so
 *     the log's lsn order is an order another box can apply (pfs_log.c, pfs_log_set_tap).
 */
#ifndef PSTOR_PFS_INT_H
#define PSTOR_PFS_INT_H

#include <endian.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "engine.h"
#include "ftl.h"
#include "pfs_base.h"
#include "pfs_meta.h"
#include "pfs_store.h"

#define PFS_STRIPES      64u /* page lock stripes per volume */
#define PFS_MSG_MAX      256
#define PFS_CFG_TEXT_MAX 1024

struct pfs_temp;     /* pfs_temp.c */
struct pfs_temp_vol; /* pfs_temp.c */

struct pfs_mpage {
	uint64_t idx;
	struct pfs_mpage *next; /* hash chain */
	bool dirty;
	struct engine_ref ref[PFS_PAGE_REFS];
};

/* A volume or a snapshot: a named block map. */
struct pfs_vol {
	uint64_t id; /* map id: SQLite rowid, never reused */
	enum pfs_map_kind kind;
	uint64_t parent; /* snapshot: the volume's id; volume: 0 */
	char name[PFS_NAME_MAX + 1];
	_Atomic uint64_t size; /* bytes */
	int64_t ctime_ns;
	uint64_t snap_gen; /* snapshot: lsn of the checkpoint it was taken at (its page copies) */
	_Atomic int64_t mtime_ns;
	/* Owner, mode and access time: changed by SETATTR under the catalogue lock, persisted
	 * in SQLite's attrs table and the catalogue record. */
	uint32_t mode, uid, gid;
	int64_t atime_ns;
	struct pfs *store;            /* the store this map belongs to */
	_Atomic int64_t nz_blocks;    /* non-zero references (persisted at commit) */
	_Atomic int64_t chunk_blocks; /* chunk references (persisted at commit) */
	bool size_dirty;              /* size or counters changed since the last commit */

	/* Read: I/O of this map. Write: what must see no I/O in flight (resize-shrink, restore,
	 * delete, snapshot create, the commit's page copy). */
	pthread_rwlock_t rw;
	/* Page I/O stripes: read to read a page's references and their chunks, write to change
	 * them (and log the change). */
	pthread_rwlock_t stripe[PFS_STRIPES];

	pthread_mutex_t lock; /* the page table below, dirty counts and size_dirty */
	struct pfs_mpage **buckets;
	uint32_t nbuckets;
	uint64_t npages;
	uint64_t ndirty;

	_Atomic bool gone;    /* deleted: handles still open keep the struct */
	_Atomic uint32_t tag; /* the layer above's number for this map (pfs_vol_set_tag) */
	_Atomic int refs;     /* struct lifetime: catalogue + handles */
	/* The last usage walk's figures (pfs_io.c, pfs_vol_usage_recent): when it began, and
	 * the store's change count and commit count then; usage_lock (taken before rw: the walk
	 * takes rw page by page) guards them and lets one walk run at a time. */
	pthread_mutex_t usage_lock;
	int64_t usage_at_ns; /* 0: never walked */
	uint64_t usage_gen, usage_commits;
	uint64_t usage_unique, usage_shared;
	/* Data temperature (pfs_temp.c): made on the first access, freed with the struct. */
	_Atomic(struct pfs_temp_vol *) temp;

	struct pfs_vol *next; /* catalogue list */
};

struct pfs_config {
	enum engine_codec codec;
	int level;
	bool dedupe;
	uint32_t commit_interval_ms;
	uint32_t analytics_interval; /* seconds between history samples (the front's sampler) */
	/* Temperature thresholds (pfs_temp.c, struct pfs_temp_thresholds). */
	uint32_t temp_cold_after, temp_frozen_after, temp_hot_heat, temp_half_life;
	uint64_t tier_rate; /* bytes/s the tiering mover may read; 0 = paused */
};

/* The roll-forward log (pfs_log.c): every map change since the last checkpoint, kept in
 * memory and written to the FTL as log chunks by fsync (group commit). */
struct pfs_log {
	pthread_mutex_t lock; /* buffer and lsn counters */
	uint8_t *buf;         /* encoded records not yet in a log chunk */
	size_t len, cap;
	uint64_t buf_lsn;           /* lsn of the first record in buf */
	uint64_t next_lsn;          /* lsn the next record gets */
	uint64_t durable_lsn;       /* every record below it is durable (log chunk or checkpoint) */
	pthread_mutex_t flush_lock; /* one log writer at a time; waiters find their lsn done */
	/* Log chunks on flash, freed once a checkpoint covers them. */
	struct pfs_log_chunk {
		uint64_t addr, end_lsn;
	} * chunks;
	size_t nchunks, cap_chunks;
	bool broken; /* a record was lost (no memory): sync must checkpoint */
	void (*tap)(void *arg, uint64_t lsn, const uint8_t *rec, size_t len); /* pfs_log_set_tap */
	void *tap_arg;
	uint64_t broken_lsn; /* ... until a checkpoint at or above this lsn */
	_Atomic uint64_t syncs, group_waits, chunks_written, bytes_written, flush_ns_total;
};

struct pfs {
	struct pfs_opts opts;
	struct ftl_dev *dev_owned; /* NULL when the caller passed the device in (tests) */
	struct ftl_dev *dev;
	struct ftl *ftl;
	struct engine *eng;
	struct pfs_meta *meta; /* SQLite on the metadata region (fs/meta) */
	struct ftl_superblock_info sb;
	uint32_t bs;
	uint64_t max_volume_bytes;

	/* Serialises commits and catalogue, attribute and setting changes (one at a time, each
	 * with its SQLite transaction); taken before every other lock of the store. */
	pthread_mutex_t commit_lock;
	/* pfs_history_generation and pfs_history_volume_generation (pfs_history.c): 0 until
	 * first asked for or first changed. */
	_Atomic uint64_t history_gen, vol_history_gen;
	_Atomic bool ftl_ckpt_busy; /* a flash checkpoint is being taken (pfs_commit.c) */
	/* The catalogue list, each map's name and attributes (written under commit_lock too, so
	 * a holder of commit_lock may read them without it). */
	pthread_mutex_t cat_lock;
	struct pfs_vol *vols; /* volumes and snapshots */

	pthread_mutex_t cfg_lock; /* cfg (a leaf) */
	struct pfs_config cfg;

	/* Deferred releases (invariant 4); puts_lock (a leaf) guards the queue. */
	pthread_mutex_t puts_lock;
	struct engine_ref *puts;
	size_t nputs, cap_puts;

	/* Background commit. */
	pthread_t commit_thread;
	bool commit_thread_started;
	pthread_mutex_t bg_lock; /* bg_stop and the commit thread's sleep (a leaf) */
	pthread_cond_t bg_cond;
	bool bg_stop;

	/* Result of the last change or ctl command, for reading ctl back (msg_lock: a leaf). */
	pthread_mutex_t msg_lock;
	char msg[PFS_MSG_MAX];

	struct pfs_log log;
	uint64_t ckpt_lsn; /* lsn of the last durable checkpoint (records below it are in SQLite) */
	uint64_t cat_chunk;     /* FTL address of the current catalogue record, or UINT64_MAX */
	_Atomic bool cat_dirty; /* the catalogue changed since the last catalogue record */
	bool replaying;         /* mount is replaying the log: map changes are not logged again */
	bool recovered;         /* mount finished: close may commit */
	/* Fault-injection seam for tests (NULL otherwise): called by pfs_map_set right after a
	 * change took its lsn, with the page's stripe lock held. */
	void (*test_after_log)(struct pfs *p);
	struct pfs_hooks hooks; /* the replication seam (pfs_set_hooks) */
	/* Page copies and catalogue records to free after the next durable checkpoint. */
	uint64_t *mfrees;
	size_t nmfrees, cap_mfrees;
	bool releases_taken; /* under puts_lock: a commit under way holds puts or mfrees */

	/* Counters. */
	_Atomic uint64_t changes[PFS_CHANGE_COUNT]; /* applied through pfs_change_apply */
	_Atomic uint64_t change_errors;
	_Atomic uint64_t commits, commit_errors, commit_ns_total;
	_Atomic uint64_t enospc_retries; /* writes retried after an early checkpoint freed space */
	_Atomic uint64_t room_commits;   /* commits asked early: releases waiting, room short */
	_Atomic int64_t room_check_ns;   /* last look at the room (commit_if_short_of_room) */
	uint64_t replayed_records, replayed_chunks; /* roll-forward at mount */
	double replay_seconds;
	_Atomic uint64_t io_errors, missing_chunks, damaged_refs;
	/* Volume I/O (pfs_io.c): an operation costs one atomic add per field it touches. */
	struct pfs_io_counters {
		_Atomic uint64_t ops, bytes, lat_sum_ns;
		_Atomic uint64_t lat_buckets[PFS_LAT_BUCKETS + 1];
	} io_read, io_write;
	int64_t mount_time_ns;
	double mount_seconds;
	uint64_t mount_chunks_scanned, mount_chunks_freed;
	uint64_t mount_lost_freed; /* damaged chunks nothing referenced, freed at mount */
	struct pfs_scrub *scrub;   /* pfs_scrub.c; made by the first `scrub start` */
	struct pfs_temp *temp;     /* pfs_temp.c; NULL until pfs_temp_open */
	struct pfs_tier *tier;     /* pfs_tier.c: the mover and the per-volume settings */
};

/* ---- pfs_mount.c ------------------------------------------------------------------------ */
/* Opens the SQLite metadata on the superblock's metadata region (P->dev, P->sb, P->opts); a
 * damaged page row is healed from its flash copy when P->ftl is open. */
int pfs_store_meta_open(struct pfs *p);
void pfs_store_meta_close(struct pfs *p); /* p->meta may be NULL */
/* pfs_open over a device the caller opened (tests: the fault-injecting memory device). */
int pfs_open_dev(const struct pfs_opts *opts, struct ftl_dev *dev, struct pfs **out, char *msg,
                 size_t msglen);

/* ---- pfs_fsck.c ------------------------------------------------------------------------ */
/* Checks DEV (and with REPAIR fixes it; FORCE_REBUILD rebuilds the metadata from flash even if
 * it looks fine), printing to OUT. Returns an fsck(8) exit code: 0, 1, 4 or 8. */
int pfs_fsck_dev(struct ftl_dev *dev, bool repair, bool force_rebuild, FILE *out);

/* ---- pfs_map.c: block maps in memory --------------------------------------------------- */
int pfs_map_init(struct pfs_vol *v);
void pfs_map_destroy(struct pfs_vol *v);
/* Returns the page (loading it), or NULL in *out when it has no row and CREATE is false.
 * Caller holds the page's stripe lock (read or write). */
int pfs_map_page(struct pfs *p, struct pfs_vol *v, uint64_t idx, bool create,
                 struct pfs_mpage **out);
/* The loaded page IDX or NULL; caller holds v->lock (and the page's stripe lock to use it). */
struct pfs_mpage *pfs_map_find_locked(struct pfs_vol *v, uint64_t idx);
/* Frees page IDX from memory if it is loaded and clean; caller holds the page's stripe lock
 * for writing and v->lock. */
bool pfs_map_drop_clean_locked(struct pfs_vol *v, uint64_t idx);
/* Sets REFS[i] at slots SLOT+i of one page, i < N (caller holds the stripe write lock) and
 * puts the old references in OLD, which the caller must release through pfs_defer_put. Keeps
 * nz/chunk counters and appends the changes to the roll-forward log (durable at the next
 * fsync): one dirty mark and one log lock for the run. */
void pfs_map_set_run(struct pfs *p, struct pfs_vol *v, struct pfs_mpage *pg, uint32_t slot,
                     uint32_t n, const struct engine_ref *refs, struct engine_ref *old,
                     const uint8_t (*fp)[ENGINE_FP_LEN], unsigned log_flags);
/* pfs_map_set_run of one reference; returns the old one. */
struct engine_ref pfs_map_set(struct pfs *p, struct pfs_vol *v, struct pfs_mpage *pg, uint32_t slot,
                              struct engine_ref ref);
/* Visits every page of the map, loaded or not, in index order of the loaded ones followed by
 * the stored ones not loaded. */
typedef int (*pfs_map_page_fn)(void *arg, uint64_t idx, const struct engine_ref *refs);
int pfs_map_each_page(struct pfs *p, struct pfs_vol *v, pfs_map_page_fn fn, void *arg);
/* Drops every page from memory (after they were committed or discarded). */
void pfs_map_forget(struct pfs_vol *v);
static inline pthread_rwlock_t *pfs_stripe(struct pfs_vol *v, uint64_t page_idx)
{
	return &v->stripe[page_idx % PFS_STRIPES];
}

/* ---- pfs_mchunk.c: metadata records on flash (their format: pfs_format.h) ----------- */
/* Records found by a segment scan (mount, fsck), sortable by (kind, a, b, gen). */
struct pfs_mrec {
	uint64_t addr;
	struct pfs_mtag tag;
};
struct pfs_mrecs {
	struct pfs_mrec *v;
	size_t n, cap;
	uint64_t max_gen;
	uint64_t *unread; /* records the FTL restored from its checkpoint: tag not known yet */
	size_t nunread, capunread;
};
/* Adds the chunk at ADDR if HASH is one of our tags (0 when it is not: left alone). With
 * HASH_LEN short of FTL_HASH_LEN (the FTL's checkpoint keeps a prefix only) the tag is read
 * later by pfs_mrecs_resolve(). */
int pfs_mrecs_add(struct pfs_mrecs *l, uint64_t addr, const uint8_t hash[FTL_HASH_LEN],
                  uint32_t hash_len);
/* After ftl_open: reads the tags of the records added without one. A record whose tag cannot
 * be read is left out (as a scan leaves out a chunk that fails its checksum). */
int pfs_mrecs_resolve(struct pfs_mrecs *l, struct ftl *ftl);
void pfs_mrecs_free(struct pfs_mrecs *l);
int pfs_mrec_cmp(const void *a, const void *b);
/* Writes one record chunk (flag PFS_CHUNK_META, may use the GC reserve). */
int pfs_mchunk_write(struct ftl *ftl, const void *buf, uint32_t len, const struct pfs_mtag *t,
                     uint64_t *addr);
/* Writes a page copy; patterns referenced by REFS are taken from the engine. */
int pfs_mchunk_write_page(struct pfs *p, uint64_t map, uint64_t idx, const struct engine_ref *refs,
                          uint64_t gen, uint64_t *addr);
/* Reads a page copy back: refs, and the patterns it carries restored into the engine when
 * RESTORE_PATTERNS (rebuild) or stored into PATS_FN. -EUCLEAN when it is not that page. */
typedef int (*pfs_pattern_fn)(void *arg, uint64_t ref, const uint8_t *pat, uint32_t period);
int pfs_mchunk_read_page(struct ftl *ftl, uint64_t addr, uint64_t idx, struct engine_ref *refs,
                         pfs_pattern_fn pats_fn, void *arg);
/* Writes the catalogue record of the current catalogue and settings. */
int pfs_mchunk_write_catalog(struct pfs *p, uint64_t gen, uint64_t *addr);
struct pfs_cat_entry {
	uint64_t id, parent, size, snap_gen;
	int64_t ctime_ns, atime_ns, mtime_ns;
	uint32_t mode, uid, gid;
	int kind;
	char name[PFS_NAME_MAX + 1];
};
struct pfs_catalog {
	uint64_t gen, next_id;
	struct pfs_cat_entry *maps;
	size_t nmaps;
	char config[PFS_CFG_TEXT_MAX]; /* "key=value\n" lines */
};
int pfs_mchunk_read_catalog(struct ftl *ftl, uint64_t addr, struct pfs_catalog *cat);
/* Decodes a catalogue record (what pfs_mchunk_read_catalog reads) from BUF: a pure function
 * over the buffer, for the fuzz target. 0 (release CAT after), -EUCLEAN when malformed,
 * -ENOMEM. */
int pfs_catalog_decode(const uint8_t *buf, size_t len, struct pfs_catalog *cat);
void pfs_catalog_release(struct pfs_catalog *cat);

/* ---- pfs_log.c: roll-forward log and group commit ----------------------------------------- */
int pfs_log_init(struct pfs *p);
void pfs_log_destroy(struct pfs *p);
/* Appends "block BLK+i of MAP now holds REFS[i]" for i < N (N <= PFS_PAGE_REFS; table patterns
 * with their bytes; fresh chunks with their fingerprint FP[i] when FP is given) under one log
 * lock. FLAGS: PFS_LOG_DERIVED for blocks that follow from a logged CHANGE. Caller holds the
 * blocks' stripe write lock, so records of one block are in the order of the changes. */
void pfs_log_set_run(struct pfs *p, uint64_t map, uint64_t blk, const struct engine_ref *refs,
                     uint32_t n, const uint8_t (*fp)[ENGINE_FP_LEN], unsigned flags);
void pfs_log_size(struct pfs *p, uint64_t map, uint64_t size);
/* Appends change C (applied to map MAP, from SRC_MAP for clones; 0 when none) to the stream.
 * Called by each mutator at the point its change takes effect, under the locks that order it
 * against the writes it must come before or after. */
void pfs_log_change(struct pfs *p, const struct pfs_change *c, uint64_t map, uint64_t src_map);
/* Makes every map change appended so far durable: data chunks flushed, then the records as
 * log chunks, flushed. Concurrent callers share one flush (group commit). */
int pfs_log_sync(struct pfs *p);
/* Checkpoint support: the lsn a checkpoint takes (records below it are in the pages it copies
 * after this call), and what to do once that checkpoint is durable. */
uint64_t pfs_log_cut(struct pfs *p);
void pfs_log_checkpointed(struct pfs *p, uint64_t cut);
/* A decoded record; pointers point into the decoded buffer. */
struct pfs_log_rec {
	uint64_t lsn;
	enum pfs_log_type type;
	bool derived;
	uint64_t map, blk,
	    value;          /* value: the reference (SET*), the size (SIZE), the kind (CHANGE) */
	const uint8_t *pat; /* SET_PATTERN */
	uint32_t period;
	const uint8_t *fp;     /* SET_FP */
	const uint8_t *change; /* CHANGE: the payload, and what it decodes to */
	uint32_t change_len;
	struct pfs_change decoded;
	uint64_t src_map;
	size_t len; /* bytes the record takes */
};
/* Sends the block records this thread appends to FN until the end call (pfs_replica.c). */
void pfs_log_capture_begin(struct pfs *p, pfs_capture_fn fn, void *arg);
void pfs_log_capture_end(void);
/* Decodes the one record at R (LEN bytes available); -EUCLEAN when it is not a valid one. */
int pfs_log_rec_decode(const uint8_t *r, size_t len, uint64_t lsn, struct pfs_log_rec *rec);
/* The stream tap: FN sees every record as it takes its lsn, in lsn order with no lsn skipped,
 * under the log's lock (it must not block or call into the store): REC NULL means the record of
 * that lsn was lost (no memory), a hole in the stream. The seam the replication link sends
 * from; NULL removes it. */
typedef void (*pfs_log_tap_fn)(void *arg, uint64_t lsn, const uint8_t *rec, size_t len);
void pfs_log_set_tap(struct pfs *p, pfs_log_tap_fn fn, void *arg);
/* Decodes a log chunk payload and calls FN for each record with lsn >= FROM_LSN. Every record
 * is checked, CHANGE payloads decoded, whatever FROM_LSN is. */
typedef int (*pfs_log_rec_fn)(void *arg, const struct pfs_log_rec *r);
int pfs_log_decode(const uint8_t *buf, size_t len, uint64_t first_lsn, uint64_t from_lsn,
                   pfs_log_rec_fn fn, void *arg); /* -EUCLEAN on a malformed chunk */
/* Remembers a log chunk found at mount (freed after the next checkpoint). */
int pfs_log_adopt(struct pfs *p, uint64_t addr, uint64_t end_lsn);

/* ---- pfs_commit.c ---------------------------------------------------------------------- */
void pfs_defer_put(struct pfs *p, struct engine_ref ref);
/* True when releases wait for the next checkpoint (pfs_defer_put, pfs_defer_mfree). */
bool pfs_releases_pending(struct pfs *p);
/* Bytes the queued puts and metadata frees may give back (a block each: an upper bound). */
uint64_t pfs_releases_bytes(struct pfs *p);
/* Frees a page copy or catalogue record after the next durable checkpoint. */
void pfs_defer_mfree(struct pfs *p, uint64_t addr);
/* Frees the flash copy OLD of page IDX of volume V unless one of V's snapshots shares it. */
void pfs_release_page_copy(struct pfs *p, uint64_t vol, uint64_t idx, uint64_t old);
/* Makes everything acknowledged so far durable (invariant 3), then releases deferred puts; the
 * states it goes through are described at the top of pfs_commit.c. */
int pfs_commit_locked(struct pfs *p); /* caller holds commit_lock */
int pfs_commit_start(struct pfs *p);
void pfs_commit_stop(struct pfs *p);
void pfs_commit_kick(struct pfs *p);

/* ---- pfs_vol.c: the catalogue and volume I/O -------------------------------------------- */
struct pfs_vol *pfs_vol_find(struct pfs *p, enum pfs_map_kind kind, uint64_t parent,
                             const char *name);            /* takes a struct reference */
struct pfs_vol *pfs_vol_by_id(struct pfs *p, uint64_t id); /* takes a struct reference */
void pfs_vol_unref(struct pfs_vol *v);
int pfs_vol_create(struct pfs *p, const char *name, uint64_t size, uint64_t *id);
/* open(O_CREAT) in volumes/: a volume of size 0 that writes and truncate grow. */
int pfs_vol_create_file(struct pfs *p, const char *name, struct pfs_vol **out);
int pfs_vol_defer_all(struct pfs *p, struct pfs_vol *v);
int pfs_vol_delete(struct pfs *p, const char *name);
int pfs_vol_resize(struct pfs *p, struct pfs_vol *v, uint64_t size);
int pfs_vol_rename(struct pfs *p, const char *from, const char *to);
/* chmod, chown, utimens of a volume (snapshots: -EROFS); persisted in SQLite and the next
 * catalogue record. */
int pfs_vol_setattr(struct pfs *p, struct pfs_vol *v, const struct pfs_attr *a);
/* Mode a new volume or snapshot starts with, as disk images and block devices are kept. */
#define PFS_VOL_MODE 0600u
ssize_t pfs_vol_read(struct pfs *p, struct pfs_vol *v, void *buf, size_t len, uint64_t off);
ssize_t pfs_vol_write(struct pfs *p, struct pfs_vol *v, const void *buf, size_t len, uint64_t off);
/* pfs_vol_write taking the blocks HELD names by reference (struct pfs_change, held): OFF and LEN
 * whole blocks when HELD is not NULL. */
ssize_t pfs_vol_write_held(struct pfs *p, struct pfs_vol *v, const void *buf,
                           const struct engine_ref *held, const uint8_t (*block_fp)[ENGINE_FP_LEN],
                           size_t len, uint64_t off);
int pfs_vol_punch(struct pfs *p, struct pfs_vol *v, uint64_t off, uint64_t len);
/* Shares the blocks of SRC[soff, soff+len) into DST at doff (both block aligned except the
 * tail at SRC's end). Returns bytes done. */
ssize_t pfs_vol_clone_range(struct pfs *p, struct pfs_vol *src, uint64_t soff, struct pfs_vol *dst,
                            uint64_t doff, uint64_t len);
/* SEEK_DATA / SEEK_HOLE at block granularity. -ENXIO past the end / no more data. */
int64_t pfs_vol_seek(struct pfs *p, struct pfs_vol *v, int64_t off, int whence);
int pfs_vol_usage(struct pfs *p, struct pfs_vol *v, bool fresh, uint64_t *unique, uint64_t *shared);
/* The largest table (slots) a usage walk may use before it splits the chunks into partitions
 * walked one at a time (pfs_io.c); tests lower it. */
extern uint32_t pfs_usage_max_slots;
extern _Atomic uint64_t pfs_usage_passes;
extern _Atomic uint64_t pfs_usage_walks; /* walks done (not cached figures), for tests */
int pfs_snap_create(struct pfs *p, const char *vol, const char *snap);
int pfs_snap_delete(struct pfs *p, const char *vol, const char *snap);
int pfs_snap_restore(struct pfs *p, const char *vol, const char *snap);
int pfs_snap_clone(struct pfs *p, const char *vol, const char *snap, const char *newvol);
int pfs_catalog_load(struct pfs *p);
void pfs_catalog_free(struct pfs *p);

/* ---- pfs_change.c ---------------------------------------------------------------------- */
/* A change as the log and the replication link carry it: every field by value and names by
 * name, so another box can apply it. Encode returns the length (-ENAMETOOLONG); decode points
 * C's strings into BUF (-EUCLEAN when BUF is not a valid record). */
#define PFS_CHANGE_REC_MAX 1024u
int pfs_change_encode(const struct pfs_change *c, uint64_t src_map, uint8_t *buf, size_t cap);
int pfs_change_decode(const uint8_t *buf, size_t len, struct pfs_change *c, uint64_t *src_map);
/* The change path without the hook (pfs_change_apply_local without a capture). */
int pfs_change_apply_here(struct pfs *p, struct pfs_change *c);

/* ---- pfs_config.c ---------------------------------------------------------------------- */
int pfs_config_set(struct pfs *p, const char *key, const char *value, bool persist);
int pfs_config_load(struct pfs *p);

/* ---- pfs_temp.c: data temperature ------------------------------------------------------ */
/* Loads the persisted temperatures after recovery (a store it cannot read starts afresh and
 * never fails the mount); close saves them, free releases the pool's part (after the catalogue:
 * each volume's tracker goes with its struct, pfs_temp_vol_free). */
int pfs_temp_open(struct pfs *p);
void pfs_temp_close(struct pfs *p);
void pfs_temp_free(struct pfs *p);
void pfs_temp_vol_free(struct pfs_vol *v);
/* The I/O path: one access to [OFF, OFF+LEN) of V (relaxed atomics on each extent's slot). */
void pfs_temp_touch(struct pfs *p, struct pfs_vol *v, uint64_t off, uint64_t len);
/* Deletes volume VOL's persisted temperatures in transactions of their own (one for all could
 * outgrow the metadata journal); caller holds commit_lock, no transaction open. Leftovers of a
 * failure or a crash are dropped at the next mount (ids are never reused). */
int pfs_temp_drop_locked(struct pfs *p, uint64_t vol);
/* Checks one persisted leaf (0 or -EUCLEAN), for tests. */
int pfs_temp_leaf_check(const uint8_t *b, size_t len);
/* The clock (Unix seconds): a seam tests replace. */
extern int64_t (*pfs_temp_now)(void);

/* ---- pfs_tier.c -------------------------------------------------------------------------- */
/* Loads the settings and the cursor and starts the mover (not on a read-only store). */
int pfs_tier_start(struct pfs *p);
/* Stops the mover, makes its work durable and saves its cursor. P may be NULL. */
void pfs_tier_stop(struct pfs *p);

/* ---- pfs_scrub.c ------------------------------------------------------------------------- */
/* First thing pfs_close does: stops the thread and frees p->scrub. P may be NULL. */
void pfs_scrub_stop(struct pfs *p);

#endif
