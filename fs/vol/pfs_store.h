/* fs/vol/pfs_store.h - the volume store, as the front of fs/ (FUSE, ctl, reports, the daemon)
 * and later the replica see it: open a namespace, look volumes up, read them, and change
 * anything through one function, pfs_change_apply(). The store's structures stay behind this
 * header (fs/vol/int/pfs_vol_int.h is private to fs/vol). All functions return 0 or -errno.
 */
#ifndef PSTOR_PFS_STORE_H
#define PSTOR_PFS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "engine.h"
#include "ftl.h"
#include "pfs_base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- formatting, opening, closing ---------------------------------------------------------- */
struct pfs_mkfs_params {
	uint64_t size;         /* create a sparse image of this size when the path is missing */
	uint32_t block_size;   /* volume block (engine) size, 4K..64K; 0 = 4 KiB */
	uint64_t segment_size; /* 0 = 8 MiB */
	bool force;            /* overwrite an existing pstorfs or other signature */
};

/* Formats DEVICE (flash layout, empty metadata region). Prints nothing: MSG receives a
 * one-line reason on failure. -EEXIST (a signature without FORCE), -EINVAL, -EIO... */
int pfs_mkfs(const char *path, const struct pfs_mkfs_params *prm, char *msg, size_t msglen);

struct pfs_opts {
	const char *device;
	bool readonly;
	bool buffered;           /* image files through the host's page cache (FTL_DEV_BUFFERED) */
	const char *compression; /* NULL = keep the stored setting */
	int dedupe;              /* -1 keep, 0 off, 1 on */
	int commit_interval_ms;  /* -1 keep */
	bool gc_thread;          /* run GC in the background (default on) */
	bool full_scan;          /* ignore the flash checkpoint: read every segment summary */
	int analytics_interval;  /* seconds between history samples; 0 keep */
};

struct pfs;

/* Opens a formatted namespace, rebuilds the in-memory state and starts the background threads.
 * MSG receives a one-line reason on failure. */
int pfs_open(const struct pfs_opts *opts, struct pfs **out, char *msg, size_t msglen);
/* Commits everything, stops the threads, closes. NULL is a no-op. */
void pfs_close(struct pfs *p);
/* Makes every change acknowledged so far durable through the roll-forward log (fsync). */
int pfs_sync(struct pfs *p);
struct pfs_vol;
/* pfs_sync() for a volume's fsync: fails (-EIO) when the volume is in a pod this box does not
 * serve now (its copy is not the pod's until a resync: the replication hook's read gate). V NULL:
 * pfs_sync(). */
int pfs_sync_vol(struct pfs *p, struct pfs_vol *v);
/* Makes everything durable in SQLite (a checkpoint) and releases what the maps dropped (ctl
 * `sync`, unmount). */
int pfs_commit(struct pfs *p);

/* Checks that PATH holds a pstorfs namespace this build can mount, without opening it for
 * writing. */
int pfs_probe(const char *path, char *msg, size_t msglen);

int pfs_mkfs_main(int argc, char **argv);
int pfs_fsck_main(int argc, char **argv); /* fsck.pstorfs */

uint32_t pfs_block_size(const struct pfs *p);
bool pfs_readonly(const struct pfs *p);
int64_t pfs_mount_time_ns(const struct pfs *p);

/* The reason of the last failed (or the result of the last) change or ctl command. */
void pfs_set_msg(struct pfs *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pfs_msg_get(struct pfs *p, char *out, size_t len);
/* Sets the message "SUBJECT: cause[: strerror(RC)]" (SUBJECT is printf-formatted) and returns
 * the errno to give the caller: RC when it is an error, else the cause's (pfs_base.h). */
int pfs_fail(struct pfs *p, enum pfs_err cause, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- volumes and snapshots ----------------------------------------------------------------- */
enum pfs_map_kind {
	PFS_MAP_VOLUME = 0,
	PFS_MAP_SNAPSHOT = 1,
};

/* A volume or a snapshot (a named block map), behind a counted reference. */
struct pfs_vol;

/* What the front may know of a map, copied out under the catalogue lock. */
struct pfs_vol_info {
	uint64_t id, parent; /* parent: a snapshot's volume id; 0 for a volume */
	enum pfs_map_kind kind;
	char name[PFS_NAME_MAX + 1];
	uint64_t size;
	int64_t ctime_ns, mtime_ns, atime_ns;
	uint32_t mode; /* permission bits (07777) */
	uint32_t uid, gid;
	int64_t nz_blocks, chunk_blocks;
	bool gone; /* deleted while this handle was held */
};
void pfs_vol_get_info(struct pfs_vol *v, struct pfs_vol_info *info);

struct pfs_vol *pfs_vol_find(struct pfs *p, enum pfs_map_kind kind, uint64_t parent,
                             const char *name);            /* takes a struct reference */
struct pfs_vol *pfs_vol_by_id(struct pfs *p, uint64_t id); /* takes a struct reference */
void pfs_vol_unref(struct pfs_vol *v);
/* Calls FN for each map of KIND (and PARENT for snapshots) under the catalogue lock: FN must not
 * call back into the store's catalogue. */
typedef int (*pfs_vol_fn)(void *arg, struct pfs_vol *v, const struct pfs_vol_info *info);
int pfs_vol_each(struct pfs *p, int kind, uint64_t parent, pfs_vol_fn fn, void *arg);

ssize_t pfs_vol_read(struct pfs *p, struct pfs_vol *v, void *buf, size_t len, uint64_t off);
/* pfs_vol_read for the box's own purposes (analytics samples, tiering estimates): not an access,
 * so neither the volume I/O counters nor the data temperature count it. */
ssize_t pfs_vol_read_quiet(struct pfs *p, struct pfs_vol *v, void *buf, size_t len, uint64_t off);
/* SEEK_DATA / SEEK_HOLE at block granularity. -ENXIO past the end / no more data. */
int64_t pfs_vol_seek(struct pfs *p, struct pfs_vol *v, int64_t off, int whence);
/* Physical bytes only this map holds (UNIQUE) and bytes it shares (SHARED), each chunk counted
 * once however many of the map's blocks reference it: a chunk is UNIQUE when every reference to
 * it comes from this map. A walk of the whole map (bounded memory, pfs_io.c); -ENOMEM.
 * pfs_vol_usage_recent gives the last walk's figures instead when they stand:
 *  - nothing changed in the store since that walk began (no change applied or failed, no
 *    commit): they are exact;
 *  - or the walk began less than MAX_AGE_MS ago and no commit (the `sync` command, the timed
 *    one) finished since: they are at most MAX_AGE_MS old, and never older than a sync.
 * The tiering mover's recompressions show from the next commit. pfs_vol_usage: FRESH walks
 * now, else as pfs_vol_usage_recent with PFS_USAGE_STAT_MS. */
int pfs_vol_usage(struct pfs *p, struct pfs_vol *v, bool fresh, uint64_t *unique, uint64_t *shared);
int pfs_vol_usage_recent(struct pfs *p, struct pfs_vol *v, uint32_t max_age_ms, uint64_t *unique,
                         uint64_t *shared);
#define PFS_USAGE_STAT_MS   2000u /* stat (st_blocks) and the analytics samples */
#define PFS_USAGE_REPORT_MS 1000u /* the volume reports (.pstorage/volumes/, the API) */

/* ---- the one change path ------------------------------------------------------------------- */
/* Every change to the store (data, catalogue, attributes, settings) is a struct pfs_change
 * applied by pfs_change_apply(): FUSE, ctl and (later) the replica call nothing else to change
 * anything, so the order in which changes are applied is one stream that can be logged and
 * sent. Fields a kind does not use are ignored. */
#define PFS_CHANGE_KINDS(X)                                                                        \
	X(WRITE, "write")                   /* vol, buf, len, off -> done */                       \
	X(PUNCH, "punch")                   /* vol, off, len */                                    \
	X(RESIZE, "resize")                 /* vol, size */                                        \
	X(CLONE_RANGE, "clone_range")       /* src, src_off, vol, off, len -> done */              \
	X(SETATTR, "setattr")               /* vol, attr (mask says which fields) */               \
	X(VOL_CREATE, "volume_create")      /* name, size [, open: handle in *created] */          \
	X(VOL_DELETE, "volume_delete")      /* name */                                             \
	X(VOL_RENAME, "volume_rename")      /* name -> new_name */                                 \
	X(SNAP_CREATE, "snapshot_create")   /* name (volume), snap */                              \
	X(SNAP_DELETE, "snapshot_delete")   /* name (volume), snap */                              \
	X(SNAP_RESTORE, "snapshot_restore") /* name (volume), snap */                              \
	X(SNAP_CLONE, "snapshot_clone")     /* name (volume), snap, new_name */                    \
	X(CONFIG_SET, "config_set")         /* name (key), value */
enum pfs_change_kind {
#define PFS_CHANGE_ENUM(n, s) PFS_CHANGE_##n,
	PFS_CHANGE_KINDS(PFS_CHANGE_ENUM)
#undef PFS_CHANGE_ENUM
	    PFS_CHANGE_COUNT
};
const char *pfs_change_kind_name(enum pfs_change_kind k);

/* Attributes a SETATTR changes. */
enum {
	PFS_ATTR_MODE = 1u << 0,
	PFS_ATTR_UID = 1u << 1,
	PFS_ATTR_GID = 1u << 2,
	PFS_ATTR_ATIME = 1u << 3,
	PFS_ATTR_MTIME = 1u << 4,
};
struct pfs_attr {
	unsigned mask;
	uint32_t mode, uid, gid;
	int64_t atime_ns, mtime_ns;
};

/* How a change answered later (see on_done below) reports: RC 0 or -errno, DONE as c->done. */
typedef void (*pfs_change_done_fn)(void *arg, int rc, uint64_t done);

struct pfs_change {
	enum pfs_change_kind kind;
	struct pfs_vol *vol; /* the volume written, punched, resized, cloned into, changed */
	struct pfs_vol *src; /* CLONE_RANGE: the volume or snapshot cloned from */
	const char *name;    /* volume name; CONFIG_SET: the key */
	const char *snap;    /* snapshot name */
	const char *new_name;
	const char *value; /* CONFIG_SET */
	const void *buf;   /* WRITE */
	/* WRITE (the cluster's): what the caller already knows of the blocks, so they are not read
	 * back, reduced or hashed again. NULL, or one entry per block of a write whose OFF and LEN
	 * are whole blocks. HELD[i]: a CHUNK reference the caller holds on block i's content (the
	 * write takes one of its own, engine_write_held; BUF's bytes of it are not read), or
	 * ENGINE_REF_ZERO_VALUE to write BUF's block. BLOCK_FP[i]: the held chunk's fingerprint;
	 * for BUF's block, its SHA-256 as the caller checked it (engine_write_hashed), or all zeros
	 * to have it hashed here. */
	const struct engine_ref *held;
	const uint8_t (*block_fp)[ENGINE_FP_LEN];
	uint64_t off, len, src_off, size;
	struct pfs_attr attr;
	/* VOL_CREATE as open(O_CREAT) does: a volume of size 0 that writes and truncate grow,
	 * returned referenced in *created (the caller unrefs it). */
	struct pfs_vol **created;
	uint64_t done; /* WRITE, CLONE_RANGE: bytes done */
	/* WRITE: a caller that can take the answer later sets ON_DONE. pfs_change_apply() may
	 * then return PFS_CHANGE_PENDING: the change was applied here (a stretched pod's
	 * leader) or handed to the box that orders it (the other box), C's buffer is no longer
	 * needed, but it is not complete (the other box has not confirmed it yet), and
	 * ON_DONE(ON_DONE_ARG, rc, done) is called exactly once, from any thread, with the
	 * answer pfs_change_apply() would have returned (and c->done). */
	pfs_change_done_fn on_done;
	void *on_done_arg;
};
#define PFS_CHANGE_PENDING 2

/* Applies C. On failure nothing changed, and the reason is in the store's message
 * (pfs_msg_get). Errors: -EINVAL, -ENOENT, -EEXIST, -EBUSY, -ENOSPC, -EROFS, -EFBIG, -EIO.
 * PFS_CHANGE_PENDING only when C->on_done is set (above). */
int pfs_change_apply(struct pfs *p, struct pfs_change *c);

/* ---- replication seams (cluster/) ----------------------------------------------------------- */
/* What the layer that mirrors volumes to another box needs of the store, and nothing else may
 * use: a hook in front of the one change path, the block records a change logs, references
 * read with a count taken, a tag per map and named blobs on the namespace. */
struct engine *pfs_engine(struct pfs *p);

/* A block a change set, as the change stream records it (pfs_format.h, log records). */
struct pfs_block_change {
	uint64_t map, blk;
	struct engine_ref ref;
	const uint8_t *fp;  /* the block's SHA-256 when the change wrote it as a chunk, else NULL */
	const uint8_t *pat; /* a table pattern's bytes (PERIOD of them), else NULL */
	uint32_t period;
	bool derived; /* follows from a clone_range (another box applies the clone instead) */
};
/* Called in the applying thread under the log's lock: copy, take engine references, nothing
 * that blocks or calls back into the store. */
typedef void (*pfs_capture_fn)(void *arg, const struct pfs_block_change *b);

struct pfs_hooks {
	void *arg;
	/* Sees every change pfs_change_apply() gets (those of pfs_change_apply_local() bypass
	 * it): returns 1 to let the store apply it as usual, 0 when it applied it (through
	 * pfs_change_apply_local), -errno when it refused (reason set with pfs_fail), and, for a
	 * change with on_done set, PFS_CHANGE_PENDING when it applied it here or sent it to the
	 * box that orders it, and will finish it later through pfs_change_finish (nothing of C
	 * may be used after it returned). */
	int (*change)(void *arg, struct pfs_change *c);
	/* Before a volume read: 0 to go on, -errno to fail the read with. */
	int (*read_gate)(void *arg, struct pfs_vol *v);
	/* After pfs_sync() made this box durable: makes the same true elsewhere. */
	int (*sync)(void *arg);
};
/* The late answer of a change the hook made pending: counts it as pfs_change_apply() would
 * have and calls FN(ARG, RC, DONE) (the change's on_done and on_done_arg, saved by the hook). */
void pfs_change_finish(struct pfs *p, pfs_change_done_fn fn, void *arg, int rc, uint64_t done);
/* Installs H (copied; NULL removes): before the store serves I/O, or with none in flight. */
void pfs_set_hooks(struct pfs *p, const struct pfs_hooks *h);
/* pfs_sync() on this box only (the other box's part is the hook's). */
int pfs_sync_local(struct pfs *p);
/* Applies C here whatever the hook would say. FN, when given, sees each block record the change
 * logs (not those of other threads' changes). */
int pfs_change_apply_local(struct pfs *p, struct pfs_change *c, pfs_capture_fn fn, void *arg);
/* Copies N references of V from block BLK (zero past the end), each with an engine reference
 * taken for the caller to drop (engine_ref_put), so the chunks outlive later overwrites. */
int pfs_vol_refs(struct pfs *p, struct pfs_vol *v, uint64_t blk, uint32_t n,
                 struct engine_ref *refs);
/* A number the layer above keeps per map (the cluster: its pod's slot). 0 = none. */
void pfs_vol_set_tag(struct pfs_vol *v, uint32_t tag);
uint32_t pfs_vol_tag(struct pfs_vol *v);
/* Named blobs on the namespace's metadata, durable when the call returns. KEY: text. */
int pfs_blob_put(struct pfs *p, const char *key, const void *val, size_t len);
int pfs_blob_delete(struct pfs *p, const char *key);
/* FN sees each blob whose key starts with PREFIX, in key order (under the metadata lock: copy,
 * do not call into the store); a non-zero return stops the walk and is returned. */
typedef int (*pfs_blob_fn)(void *arg, const char *key, const void *val, size_t len);
int pfs_blob_each(struct pfs *p, const char *prefix, pfs_blob_fn fn, void *arg);

/* ---- settings ------------------------------------------------------------------------------ */
#define PFS_CONFIG_KEYS(X)                                                                         \
	X(COMPRESSION, "compression")                                                              \
	X(DEDUPE, "dedupe")                                                                        \
	X(COMMIT_INTERVAL_MS, "commit_interval_ms")                                                \
	X(ANALYTICS_INTERVAL, "analytics_interval")                                                \
	X(TEMP_COLD_AFTER, "temp_cold_after")                                                      \
	X(TEMP_FROZEN_AFTER, "temp_frozen_after")                                                  \
	X(TEMP_HOT_HEAT, "temp_hot_heat")                                                          \
	X(TEMP_HALF_LIFE, "temp_half_life")                                                        \
	X(TIER_RATE, "tier_rate")
enum pfs_config_key {
#define PFS_CONFIG_ENUM(n, s) PFS_CFG_##n,
	PFS_CONFIG_KEYS(PFS_CONFIG_ENUM)
#undef PFS_CONFIG_ENUM
	    PFS_CFG_COUNT
};
extern const char *const pfs_config_names[PFS_CFG_COUNT];
int pfs_config_key(const char *name);
int pfs_config_get(struct pfs *p, const char *key, char *out, size_t len);

/* ---- data temperature (pfs_temp.c) -------------------------------------------------------- */
/* Per extent of each volume, an access heat decayed with half-life temp_half_life and the last
 * access time. Reads (pfs_vol_read) and writes through pfs_change_apply() count, one access per
 * extent an operation touches; changes the cluster applies from the peer, clones, scrubs, GC,
 * and reads through pfs_vol_refs() do not. Classes, by the seconds since the last access (age):
 * frozen when age >= temp_frozen_after, else cold when age >= temp_cold_after, else hot when
 * the heat is at least temp_hot_heat, else warm. */
#define PFS_TEMP_EXTENT_BYTES (1024u * 1024u)
enum pfs_temp_class { PFS_TEMP_HOT = 0, PFS_TEMP_WARM, PFS_TEMP_COLD, PFS_TEMP_FROZEN };
#define PFS_TEMP_CLASSES 4
/* The class, now, of the extent of volume V that holds byte OFF. An extent with data that was
 * never accessed since tracking began counts by the volume's creation/mount time as documented. */
enum pfs_temp_class pfs_temp_class_at(struct pfs *p, struct pfs_vol *v, uint64_t off);
const char *pfs_temp_class_name(enum pfs_temp_class c); /* "hot", "warm", "cold", "frozen" */

struct pfs_temp_thresholds {
	uint32_t cold_after, frozen_after; /* seconds since the last access */
	uint32_t hot_heat;                 /* decayed accesses */
	uint32_t half_life;                /* seconds */
};
/* The math, pure: HEAT after DT seconds of decay (half-life HALF_LIFE; 0 decays to nothing at
 * once), and the class of an extent last accessed AGE seconds ago with heat HEAT. */
double pfs_temp_decay(double heat, int64_t dt, uint32_t half_life);
enum pfs_temp_class pfs_temp_classify(const struct pfs_temp_thresholds *t, int64_t age,
                                      double heat);

/* A volume's written bytes by class (a walk of its map: report time only). */
#define PFS_TEMP_TOP 8
struct pfs_temp_extent {
	uint64_t offset;
	double heat;
	int64_t last_access; /* Unix seconds */
};
struct pfs_temp_usage {
	int64_t now;      /* Unix seconds the figures are for */
	int64_t baseline; /* last access of data no access was recorded for */
	struct pfs_temp_thresholds th;
	uint64_t bytes[PFS_TEMP_CLASSES];             /* written bytes in extents of each class */
	uint64_t extents[PFS_TEMP_CLASSES];           /* extents holding data, by class */
	uint64_t ram_bytes, leaves;                   /* this volume's tracker */
	struct pfs_temp_extent hottest[PFS_TEMP_TOP]; /* extents with data, hottest first */
	unsigned nhottest;
};
/* -ENODATA when the store tracks nothing (not mounted through pfs_open), -ENOMEM, -EIO. */
int pfs_temp_vol_usage(struct pfs *p, struct pfs_vol *v, struct pfs_temp_usage *u);
struct pfs_temp_stats {
	struct pfs_temp_thresholds th;
	int64_t since;     /* the pool's tracking start (Unix seconds) */
	int64_t last_save; /* 0: none since mount */
	uint32_t extent_bytes;
	uint64_t ram_bytes, leaves, nodes; /* the trackers of every volume */
	uint64_t touches;                  /* I/O operations counted since mount */
	uint64_t dropped;                  /* extent accesses lost for want of memory */
	uint64_t saves, save_errors, leaves_saved;
	bool incomplete; /* out of memory while summing: figures too low */
};
void pfs_temp_get_stats(struct pfs *p, struct pfs_temp_stats *st);
/* Folds the accesses counted since the last call into the heats and persists the extents that
 * changed, in one SQLite transaction (the analytics sampler calls it every tick; unmount does
 * too). Nothing on a read-only store. -ENOSPC (metadata area 3/4 full), -ENOMEM, -EIO. */
int pfs_temp_tick(struct pfs *p);

/* ---- background work ----------------------------------------------------------------------- */
/* `gc start`: commits (so what the maps dropped is released) and cleans every segment worth it;
 * returns the number of segments cleaned. */
int pfs_gc_now(struct pfs *p);
/* `scrub start`: a thread runs ftl_scrub over the data, PRAGMA quick_check over the SQLite
 * metadata, then maps the damaged chunks back to the volumes and snapshots that reference them.
 * -EBUSY (reason in the message) when one is running, -ENOMEM. */
int pfs_scrub_start(struct pfs *p);
/* `scrub stop`: stops the running scrub and returns once it has (state "cancelled").
 * -ENOENT (reason in the message) when none runs. */
int pfs_scrub_cancel(struct pfs *p);
/* .pstorage/scrub[.json]; and the `scrub` line/object of status */
void pfs_scrub_report(struct pfs *p, bool json, struct pfs_buf *b);
void pfs_scrub_status(struct pfs *p, bool json, struct pfs_buf *b);
/* Prometheus samples of the last scrub (whole families, with HELP and TYPE). */
void pfs_scrub_metrics(struct pfs *p, struct pfs_buf *b);
/* True when the last finished scrub found damage (for the health verdict). */
bool pfs_scrub_found_damage(struct pfs *p);
/* What the last finished scrub found, counted (all zero when none finished since the mount):
 * live chunks reads cannot return, volume blocks whose reads fail, chunks at risk (readable
 * through a damaged summary), damaged metadata copies or structures. */
struct pfs_scrub_counts {
	uint64_t damaged_chunks, blocks_failing, at_risk, metadata;
};
bool pfs_scrub_counts(struct pfs *p, struct pfs_scrub_counts *c);

/* ---- tiering (pfs_tier.c) ------------------------------------------------------------------ */
/* A volume's cold_compression: the encoding a throttled background mover gives the chunks of its
 * cold and frozen extents (ENGINE codec names: none = the mover leaves the volume alone, lz4,
 * zstd, zstd:LEVEL). Kept per box in the store's blobs (not sent to a cluster peer). The mover
 * re-encodes a chunk in place of its address (engine_chunk_recompress), so maps, snapshots,
 * clones and dedupe keep sharing it: a chunk shared by several volumes takes the encoding of
 * the first volume that moves it. `tier_rate` (config) bounds the stored bytes it reads a
 * second; 0 pauses it. */
/* Sets VOLUME's cold_compression to VALUE, durably. -ENOENT (no such volume), -EINVAL (bad
 * value; nothing changes), -EROFS, -EIO. The reason is in the store's message. */
int pfs_tier_set(struct pfs *p, const char *volume, const char *value);
/* VOLUME's setting as text ("none" when unset). */
void pfs_tier_get(struct pfs *p, struct pfs_vol *v, char *out, size_t len);
struct pfs_tier_progress {
	bool running;         /* the mover's thread exists (not on a read-only store) */
	const char *state;    /* "paused", "idle", "moving", "waiting for space" */
	uint64_t rate;        /* tier_rate, bytes/s (0 = paused) */
	double measured_rate; /* stored bytes read per second while moving, this pass */
	uint64_t vol_id;      /* the cursor: volume id and offset where it goes on */
	uint64_t offset;
	char volume[PFS_NAME_MAX + 1]; /* that volume's name ("" when between passes) */
	uint64_t passes;               /* passes over every volume finished */
	int64_t last_pass_end;         /* Unix seconds, 0 = never */
	uint64_t extents_scanned, extents_cold, extents_moved;
	uint64_t chunks_moved, chunks_skipped, chunks_stale, errors;
	uint64_t bytes_before, bytes_after; /* stored bytes of the chunks moved, before and after */
	uint64_t bytes_saved;               /* bytes_before - bytes_after */
	uint32_t volumes;                   /* volumes whose cold_compression is not none */
};
void pfs_tier_progress(struct pfs *p, struct pfs_tier_progress *out);

/* ---- counters ------------------------------------------------------------------------------ */
/* Volume I/O latency: PFS_LAT_BUCKETS log2 buckets, bucket i counting operations that took at
 * most PFS_LAT_MIN_NS << i (8 us, 16 us ... 262 ms), then one for the rest (+Inf). Counts are
 * per bucket, not cumulative; the Prometheus printer accumulates them. */
#define PFS_LAT_BUCKETS 16
#define PFS_LAT_MIN_NS  8000ull
static inline uint64_t pfs_lat_bound_ns(int i)
{
	return PFS_LAT_MIN_NS << i;
}
/* The bucket of an operation that took NS: (MIN << (i-1), MIN << i] is bucket i, so i is the
 * bit length of (NS - 1) / MIN; PFS_LAT_BUCKETS (+Inf) past the last bound. */
static inline int pfs_lat_bucket(uint64_t ns)
{
	int b = ns <= PFS_LAT_MIN_NS ? 0 : 64 - __builtin_clzll((ns - 1) / PFS_LAT_MIN_NS);

	return b < PFS_LAT_BUCKETS ? b : PFS_LAT_BUCKETS;
}
/* Volume reads (pfs_vol_read) or writes (pfs_vol_write, the WRITE change) since mount. */
struct pfs_io_stats {
	uint64_t ops, bytes; /* calls that reached the map (not past the end), bytes they moved */
	uint64_t lat_sum_ns; /* time spent in them */
	uint64_t lat_buckets[PFS_LAT_BUCKETS + 1];
};
/* The Q-quantile (0..1) of IO's latency in microseconds, interpolated linearly inside the bucket
 * it falls in, as Prometheus's histogram_quantile() does (so the dashboard and the text
 * reports agree); the highest finite bound when it falls in +Inf; 0 when there were none. */
double pfs_lat_quantile_us(const struct pfs_io_stats *io, double q);

/* One snapshot of every counter of the store and the modules under it, taken at once, for the
 * reports, the Prometheus exposition and (later) the analytics sampler. */
struct pfs_stats {
	int64_t time_ns; /* when the snapshot was taken */
	/* identity */
	const char *device;
	enum ftl_dev_kind dev_kind;
	uint32_t format_version, block_size, device_block_size;
	uint64_t segment_size, segment_count;
	bool readonly;
	/* the store */
	uint64_t volumes, snapshots;
	uint64_t provisioned_bytes;      /* sum of volume sizes */
	uint64_t logical_bytes;          /* non-zero blocks of volumes, in bytes */
	uint64_t after_pattern_bytes;    /* ... of them not patterns (chunk references) */
	uint64_t snapshot_logical_bytes; /* non-zero blocks of snapshots, in bytes */
	uint64_t commits, commit_errors, commit_ns_total;
	uint64_t enospc_retries, room_commits, io_errors, missing_chunks, damaged_refs;
	uint64_t log_syncs, log_group_waits, log_chunks_written, log_bytes_written, log_flush_ns;
	uint64_t changes[PFS_CHANGE_COUNT]; /* applied, by kind */
	uint64_t change_errors;
	struct pfs_io_stats read, write; /* volume I/O */
	/* the mount */
	int64_t mount_time_ns;
	double mount_seconds, replay_seconds;
	uint64_t mount_chunks_scanned, mount_chunks_freed, replayed_records, replayed_chunks;
	uint64_t mount_lost_freed; /* damaged chunks nothing referenced (torn packs), freed */
	/* the metadata region */
	uint64_t meta_db_bytes, meta_db_capacity, meta_journal_capacity;
	uint64_t meta_rows_damaged, meta_rows_healed;
	/* the modules under the store */
	struct ftl_stats ftl;
	struct engine_stats engine;
};
void pfs_get_stats(struct pfs *p, struct pfs_stats *st);
/* The flash's capacity and free bytes only (statfs; cheaper than pfs_get_stats). */
void pfs_flash_space(struct pfs *p, struct ftl_stats *fs);
/* Printers: "name: value" lines, one JSON object, Prometheus text (families with HELP/TYPE;
 * the volume I/O as pstorfs_{read,write}_ops_total, _bytes_total, _latency_seconds). */
void pfs_stats_to_text(const struct pfs_stats *st, struct pfs_buf *b);
void pfs_stats_to_json(const struct pfs_stats *st, struct pfs_buf *b);
void pfs_stats_to_prom(const struct pfs_stats *st, struct pfs_buf *b);

/* Device identity and health, for .pstorage/flash/identity and smart. */
int pfs_flash_identity(struct pfs *p, struct ftl_dev_identity *id);
int pfs_flash_smart(struct pfs *p, struct ftl_dev_smart *s);

/* ---- the analytics history (pfs_history.c) ------------------------------------------------ */
/* Rows of counters by Unix time, kept in SQLite on the namespace (so they move with it and
 * survive remounts and kill -9), downsampled as fs/meta/pfs_meta.h says: raw 2 days, hourly 90
 * days, daily after. The store does not know what the N values mean: analytics/ names them.
 * Never on the I/O path: each call takes commit_lock and one SQLite transaction. */
/* Appends one row and rolls the tiers, durably. -EEXIST when TIME is not after the newest row
 * (a clock that went back), -EROFS, -EINVAL (N > 64), -ENOSPC (also when the metadata in use
 * passes 3/4 of its area: the history never takes the maps' room), -EIO. */
int pfs_history_append(struct pfs *p, int64_t time, const double *v, uint32_t n);
/* Replaces the whole history with NROWS rows (TIMES strictly increasing; VALS NROWS x N) and
 * rolls the tiers, and drops the recorded forecasts: all or nothing. -EINVAL (times out of
 * order, N > 64), -EROFS, -ENOSPC. */
int pfs_history_replace(struct pfs *p, size_t nrows, const int64_t *times, const double *vals,
                        uint32_t n);
/* Every row in time order, with its tier (0 raw, 1 hourly, 2 daily). FN must not call into the
 * store (it runs under the metadata lock). */
typedef int (*pfs_history_fn)(void *arg, int tier, int64_t time, const double *v, uint32_t n);
int pfs_history_each(struct pfs *p, pfs_history_fn fn, void *arg);
/* Rows in TIER. */
int pfs_history_count(struct pfs *p, int tier, uint64_t *n);
/* A number that changes with every write of P's history, per-volume history or recorded
 * forecasts (append, append_volumes, replace, forecast record, and the rolls and trims they
 * do), taken after the transaction: a reader that takes it before reading and finds it the
 * same later knows nothing it read has changed since. Unique in the process (one counter for
 * every store), so (store, generation) is never reused even when a closed store's address
 * is. Never 0. */
uint64_t pfs_history_generation(struct pfs *p);
/* The same for what the per-volume reports read: the per-volume history and the recorded
 * forecasts (append_volumes, replace, forecast record); a pool row alone leaves it. */
uint64_t pfs_history_volume_generation(struct pfs *p);
/* Per-volume rows: NVOL volumes named NAMES, N values each in VALS (NVOL x N), at TIME, in one
 * transaction, then the roll. Rolled like the pool's rows, per volume; an import clears them.
 * -EEXIST when TIME is not after the newest per-volume row; -EROFS, -EINVAL, -ENOSPC, -EIO. */
int pfs_history_append_volumes(struct pfs *p, int64_t time, size_t nvol, const char *const *names,
                               const double *vals, uint32_t n);
/* By volume name, then time. FN must not call into the store. */
typedef int (*pfs_history_vol_fn)(void *arg, int tier, int64_t time, const char *name,
                                  const double *v, uint32_t n);
int pfs_history_volumes_each(struct pfs *p, pfs_history_vol_fn fn, void *arg);

/* ---- recorded forecasts (pfs_history.c) ---------------------------------------------------- */
/* Forecasts the box made, kept (next to the history, in the same database) so they can be
 * graded when their horizons pass. KIND names what was forecast ("capacity", "wearout",
 * "vol:NAME"); MADE_AT is the history time it was made at (the newest sample then); the N
 * values are analytics/'s (analytics_recorded_pack). At most one a PFS_FORECAST_INTERVAL per
 * kind, kept PFS_FORECAST_KEEP_SECONDS of history time: bounded (about 400 rows per kind). */
#define PFS_FORECAST_INTERVAL     86400ll
#define PFS_FORECAST_KEEP_SECONDS (400 * 86400ll)
/* Records a forecast and drops every forecast (of any kind) made more than
 * PFS_FORECAST_KEEP_SECONDS before it, in one transaction. -EEXIST when KIND has one made less
 * than PFS_FORECAST_INTERVAL before MADE_AT (or after it); -EROFS, -EINVAL (N > 64), -ENOSPC
 * (also past 3/4 of the metadata area, as the history), -EIO. */
int pfs_forecast_record(struct pfs *p, const char *kind, int64_t made_at, const double *v,
                        uint32_t n);
/* The newest recorded forecast of KIND (-1: none). */
int pfs_forecast_last(struct pfs *p, const char *kind, int64_t *made_at);
/* Every recorded forecast, by kind then made_at. FN must not call into the store. */
typedef int (*pfs_forecast_fn)(void *arg, const char *kind, int64_t made_at, const double *v,
                               uint32_t n);
int pfs_forecasts_each(struct pfs *p, pfs_forecast_fn fn, void *arg);
/* pfs_history_replace that keeps the NKEEP recorded forecasts named by KINDS and MADE_AT and
 * drops every other one, in the same transaction (pfs_history_replace keeps none: a new
 * history makes the old forecasts' outcomes unknowable, unless the caller knows better). */
int pfs_history_replace_keep(struct pfs *p, size_t nrows, const int64_t *times, const double *vals,
                             uint32_t n, size_t nkeep, const char *const *kinds,
                             const int64_t *made_at);

#ifdef __cplusplus
}
#endif
#endif
