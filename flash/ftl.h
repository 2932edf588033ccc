/* flash/ftl.h - public interface of the flash translation layer.
 *
 * The FTL stores variable-length chunks on a namespace and hands back stable chunk addresses.
 * It knows nothing of volumes, hashes (beyond storing the 32 opaque bytes a caller gives each
 * chunk) or reference counts. All functions return 0 (or a non-negative count) or -errno.
 */
#ifndef PSTOR_FTL_H
#define PSTOR_FTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The device layer (flash/dev): namespaces, their backends, identity, SMART, zones, CRC-32C. */
#include "ftl_dev.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------ */
/* The FTL                                                                                      */
/* ------------------------------------------------------------------------------------------ */

/* A stable chunk address. GC moves chunks without changing their address. */
struct ftl_addr {
	uint64_t v;
};
#define FTL_ADDR_NONE ((struct ftl_addr){UINT64_MAX})
static inline bool ftl_addr_is_none(struct ftl_addr a)
{
	return a.v == UINT64_MAX;
}

#define FTL_HASH_LEN   32     /* opaque per-chunk tag the caller gives (the engine: SHA-256) */
#define FTL_CHUNK_MAX  65536u /* largest chunk payload */
#define FTL_FLAGS_MASK 0xffu  /* caller-owned flag bits stored with each chunk */
/* The one flags value a caller may not use (-EINVAL): the checkpoint's owner word marks chunks
 * that failed their checksum with it. */
#define FTL_FLAGS_RESERVED 0xffu

struct ftl_format_params {
	uint32_t block_size;      /* FTL block; 0 = device block size (min 4096) */
	uint64_t segment_size;    /* erase unit in bytes; 0 = 8 MiB */
	uint32_t rated_pe_cycles; /* endurance for "percent of life used"; 0 = 3000 */
	uint32_t meta_blocks;     /* blocks reserved after the superblocks for metadata (issue 4);
	                             0 = 1/256 of the device, at least 1 MiB */
	uint32_t user_block_size; /* engine block size recorded in the superblock (4K..64K) */
};

/* Writes the two superblocks and marks every segment free (TRIMming them). Destroys data. */
int ftl_format(struct ftl_dev *dev, const struct ftl_format_params *p);

struct ftl_superblock_info {
	uint8_t uuid[16];
	uint32_t version;
	uint32_t block_size;
	uint32_t user_block_size;
	uint64_t segment_size;
	uint32_t segment_count;
	uint32_t rated_pe_cycles;
	uint64_t meta_offset, meta_size; /* the reserved metadata region */
	uint64_t data_offset;            /* where segment 0 starts */
	uint64_t device_size;            /* bytes of device the namespace needs (its end) */
	/* Formatted on a zoned device: a segment is a zone, [0, data_offset) is the random-write
	 * log of ftl_dev_zoned_stats, and the erase count of every segment is kept in a table
	 * at wear_offset (4 bytes each) since a reset zone keeps no header. */
	bool zoned;
	uint64_t wear_offset;
};

/* Reads and validates the superblocks (either copy may be damaged). -EINVAL not formatted,
 * -EPROTONOSUPPORT newer version, -EUCLEAN both copies damaged, -EFBIG the namespace is larger
 * than the device (a truncated image or a shrunk device; SB is filled in, so the caller can
 * compare sb->device_size with ftl_dev_size()). */
int ftl_read_superblock(struct ftl_dev *dev, struct ftl_superblock_info *sb);

/* Called for every live chunk at open. A chunk found more than once (old copies left by GC) is
 * reported once, for the copy that wins. HASH_LEN says how much of HASH is known: all of it
 * (FTL_HASH_LEN) for chunks read from segment summaries, only the first FTL_SCAN_HASH_PREFIX
 * bytes (the rest zero) for chunks restored from a checkpoint; ftl_read_hash() has the rest. */
#define FTL_SCAN_HASH_PREFIX 5
typedef int (*ftl_scan_fn)(void *arg, struct ftl_addr addr, const uint8_t hash[FTL_HASH_LEN],
                           uint32_t hash_len, uint32_t len, uint8_t flags);

/* Called at open for every chunk id the FTL keeps only as a damaged copy: its summary entry
 * checks out but its data does not, so ftl_read gives -EIO. The usual cause is a pack torn by a
 * power cut (its first blocks landed, the rest did not); bit rot looks the same. The id stays
 * taken, so that a reference to it reads -EIO and never the data of a chunk that reuses the id,
 * until the owner frees it with ftl_free: an owner that holds no reference to it (chunks of a
 * torn pack never reached an ftl_sync) must free it, or the id and its space leak. Told again at
 * every open until freed. Gets scan_arg. */
typedef int (*ftl_lost_fn)(void *arg, struct ftl_addr addr, uint32_t len);

struct ftl_config {
	struct ftl_dev *dev; /* not owned */
	bool gc_thread;      /* run GC and wear leveling in a background thread */
	/* Background GC starts below this % of free segments and stops above gc_high_pct. Both 0
	 * (the default): it keeps one segment more free than writers may take (the GC reserve + 2),
	 * since every free segment beyond need is log space lost to write amplification. ftl_gc()
	 * cleans up to gc_high_pct (0 = 15). */
	uint32_t gc_low_pct;
	uint32_t gc_high_pct;
	uint32_t wear_spread; /* static wear leveling when max-min erase count exceeds; 0 = 4 */
	ftl_scan_fn scan_cb;  /* optional: told of every chunk found at open */
	ftl_lost_fn lost_cb;  /* optional: told of every chunk kept only damaged (see above) */
	void *scan_arg;
	bool full_scan; /* ignore the checkpoint: read every segment (fsck) */
	/* Optional: how far the scan at open is, in segment steps (every header read, then
	 * every segment walked and reported); TOTAL may grow once the walk is known. Called from
	 * the opening thread, for a progress line. */
	void (*progress_cb)(void *arg, uint64_t done, uint64_t total);
	void *progress_arg;
};

struct ftl;

/* Opens a formatted device. Reads every segment header, then the newest sound checkpoint, and
 * walks the pack summaries only of segments written since it (all of them without one, or
 * with cfg->full_scan). Chunks that were freed before an unclean stop may be found again:
 * their owner frees them. Errors: those of ftl_read_superblock, -ENOMEM, -EIO. */
int ftl_open(const struct ftl_config *cfg, struct ftl **out);
/* Writes a checkpoint, flushes, writes a checkpoint when it has changed and closes. NULL is a
 * no-op. */
void ftl_close(struct ftl *ftl);

/* Writes a checkpoint of the FTL's tables (segment table, L2P, owner words) to free segments
 * and frees the previous one once it is durable. Writers wait while the tables are copied
 * (tens of ms for 10 GiB), not while they are written. -ENOSPC when the free segments beyond
 * the GC reserve cannot hold it (the previous checkpoint stays; open walks more). */
int ftl_checkpoint(struct ftl *ftl);
/* The policy: a checkpoint when the segments opened since the last one reach a bound that
 * keeps the walk at open short and the checkpoint's own writes a small part of all writes.
 * Returns 1 if it wrote one, 0 if none was due, or the error of ftl_checkpoint(). */
int ftl_checkpoint_maybe(struct ftl *ftl);

struct ftl_write_opts {
	/* The chunk this write supersedes (an overwrite of the same logical data), or
	 * FTL_ADDR_NONE. The FTL uses the old chunk's age to place data by how often it is
	 * rewritten (hot/cold separation); it does not free PREV. */
	struct ftl_addr prev;
	uint8_t flags; /* caller-owned (any value but FTL_FLAGS_RESERVED), returned by read */
	/* Metadata whose write lets the caller free space (catalogue and map records written
	 * while deleting on a full device) may also take the free segments kept back for GC. */
	bool reserve;
};

/* Appends a chunk (1..FTL_CHUNK_MAX bytes). HASH is stored in the segment summary.
 * Errors: -ENOSPC (no free space even after GC; a write with opts->reserve gets it only when
 * taking another segment would leave GC less than half its reserve; also when the write or
 * segment sequence numbers reached their limit, which only forged metadata can bring about:
 * the FTL refuses a write rather than acknowledge one its next open would not find), -EIO,
 * -EINVAL (bad length). */
int ftl_write(struct ftl *ftl, const void *data, uint32_t len, const uint8_t hash[FTL_HASH_LEN],
              const struct ftl_write_opts *opts, struct ftl_addr *out);

/* One chunk of ftl_write_many: DATA, LEN, HASH (may be NULL) and OPTS as ftl_write's; OUT is
 * set when it is written. */
struct ftl_write_item {
	const void *data;
	uint32_t len;
	const uint8_t *hash;
	struct ftl_write_opts opts;
	struct ftl_addr out;
};
#define FTL_WRITE_MANY_MAX 64 /* items in one ftl_write_many */

/* ftl_write of ITEMS[0..N) in that order, each stream's lock taken once for a run of items that
 * go to it instead of once a chunk (writers of large requests queued on it, and its futex
 * wake-ups cost a tenth of a write's CPU). Their checksums and ids are made before any lock.
 * 0: every item written; else the first error (as ftl_write's), and none of them is left
 * written. N <= FTL_WRITE_MANY_MAX, else -EINVAL. */
int ftl_write_many(struct ftl *ftl, struct ftl_write_item *items, size_t n);

/* Reads a chunk into BUF (BUFLEN >= its length). Returns its length. FLAGS may be NULL.
 * Errors: -ENOENT (no such chunk), -ENOBUFS, -EIO (device error or checksum failure: the FTL
 * never returns bytes whose checksum fails). */
int ftl_read(struct ftl *ftl, struct ftl_addr addr, void *buf, uint32_t buflen, uint8_t *flags);
/* ftl_read without the copy: *DATA points at the verified payload in a buffer of the calling
 * thread, valid until that thread's next ftl_read or ftl_read_view (a decompressor reads it
 * there). Returns the length; errors as ftl_read, and -ENOMEM. */
int ftl_read_view(struct ftl *ftl, struct ftl_addr addr, const void **data, uint8_t *flags);
/* Read-ahead for the calling thread's next reads, until it sets 0 again: the first chunk, and
 * a chunk that starts where the previous one read from the device ended, is read with up to BYTES
 * (at most 256 KiB) of what follows it, and the chunks after it come from those bytes, each checked
 * as always. For a caller about to read many chunks that were written together (a large sequential
 * read on an O_DIRECT device would otherwise make one device read per chunk); chunks elsewhere are
 * read alone. Never fails: without memory it reads without read-ahead. */
void ftl_read_ahead(struct ftl *ftl, uint32_t bytes);
/* While ON, the calling thread's reads skip the bytes of the packs just written that the FTL keeps
 * in memory and read the device: for checking what the device holds (the scrub confirming damage
 * it found there; tests that damage the device). */
void ftl_read_device_only(bool on);

/* Length of a chunk, or -ENOENT. */
int ftl_chunk_len(struct ftl *ftl, struct ftl_addr addr);

/* Reads the hash stored with a chunk (from its summary entry). -ENOENT, -EIO. */
int ftl_read_hash(struct ftl *ftl, struct ftl_addr addr, uint8_t hash[FTL_HASH_LEN]);
/* The first FTL_SCAN_HASH_PREFIX bytes of the hash stored with a chunk, from RAM (the owner
 * word the L2P keeps for every chunk): no device read. -ENOENT. */
int ftl_hash_prefix(struct ftl *ftl, struct ftl_addr addr, uint8_t prefix[FTL_SCAN_HASH_PREFIX]);

/* Rewriting a chunk in place of its address (tiering: the same content, encoded anew by its
 * owner). A version names the copy a read saw; ftl_chunk_rewrite replaces exactly that copy, so
 * a chunk freed, reused or moved by GC since the read is never overwritten with stale bytes. */
struct ftl_chunk_ver {
	uint64_t loc; /* where the read found it */
	uint32_t gen; /* that segment's release count at the time */
};
/* ftl_read that also returns the version of the copy it read. -EAGAIN when the chunk kept moving
 * under 16 attempts; otherwise the errors of ftl_read. */
int ftl_read_ver(struct ftl *ftl, struct ftl_addr addr, void *buf, uint32_t buflen, uint8_t *flags,
                 struct ftl_chunk_ver *ver);
/* Replaces the chunk at ADDR, as long as it is still the copy VER names, with LEN bytes of DATA
 * and FLAGS, keeping its address and stored hash: the caller's references and maps stay as they
 * are. The new copy is written the way GC relocates (the cold GC stream, a new birth so the
 * scan at open prefers it to the old copy, whose segment GC frees only after the new copy is
 * flushed), so a power cut at any point leaves the old or the new copy, both sound. The L2P
 * switch is atomic against readers: a read returns the old or the new bytes with their own
 * flags, never a mix. Durable at the next ftl_sync (until then a power cut keeps the old copy).
 * Errors: -ESTALE (freed, moved or rewritten since VER: nothing changed, harmless), -ENOENT,
 * -ENOSPC (free segments are down to the GC reserve: the rewrite would eat GC's room), -EINVAL,
 * -EROFS, -EIO. */
int ftl_chunk_rewrite(struct ftl *ftl, struct ftl_addr addr, const struct ftl_chunk_ver *ver,
                      const void *data, uint32_t len, uint8_t flags);
/* The caller-owned flags a chunk was written with, from RAM (its owner word): no device read.
 * -ENOENT. */
int ftl_chunk_flags(struct ftl *ftl, struct ftl_addr addr);

/* Forgets a chunk; its space is reclaimed by GC. -ENOENT if it does not exist. */
int ftl_free(struct ftl *ftl, struct ftl_addr addr);

/* Writes every buffered chunk and flushes the device: when it returns, all chunks written
 * before the call survive a power cut. */
int ftl_sync(struct ftl *ftl);
/* Payload bytes the flash could still take if GC cleaned every dead byte: the usable room
 * outside the GC reserve less the live payload. Lock-free and approximate (chunk headers,
 * part-filled packs and checkpoints not counted); for an owner that holds frees back and
 * must know when to give them (fs/: a commit comes early when the room runs short). */
uint64_t ftl_room_bytes(struct ftl *ftl);

/* One GC pass: cleans up to MAX_SEGMENTS victims (0 = until gc_high_pct of the segments are
 * free). Returns the number of segments cleaned; each is free when it returns (victims that
 * waited for their copies' pack, flash/README.md "Victims", are freed first). */
int ftl_gc(struct ftl *ftl, uint32_t max_segments);

struct ftl_stats {
	uint64_t host_bytes_written;   /* chunk payload bytes written by callers */
	uint64_t device_bytes_written; /* bytes written to the device (headers, GC, padding) */
	uint64_t gc_runs;              /* segments cleaned */
	uint64_t gc_bytes_moved;       /* chunk bytes relocated by GC */
	uint64_t wear_moves;           /* segments cleaned by static wear leveling */
	uint64_t gc_greedy_picks;      /* victims picked by most dead space, not cost-benefit */
	uint64_t packs_written;        /* packs written by all streams (partial ones included) */
	uint64_t trims;                /* segments TRIMmed */
	uint64_t read_errors;          /* device errors and checksum failures on read */
	uint64_t checksum_errors;
	uint64_t chunks_live;
	uint64_t bytes_live; /* payload bytes of live chunks */
	uint32_t segments_total, segments_free, segments_open, segments_closed;
	uint32_t segments_gc_pending; /* closed ones GC cleaned, freed once their copies' pack is
	                                 written (flash/README.md "Victims") */
	uint32_t erase_min, erase_max;
	double erase_mean;
	uint32_t rated_pe_cycles;
	double life_used_pct;       /* mean erase count / rated endurance */
	double write_amplification; /* device / host bytes */
	uint64_t capacity_bytes;    /* bytes of all segments */
	uint64_t
	    free_bytes; /* free segments plus what no live chunk holds in open and closed ones */
	uint64_t stream_chunks[5]; /* chunks appended to user-hot, user-cold, gc-hot, gc-cold,
	                              reserve (ftl_write_opts.reserve) */
	/* Hot/cold separation: on while chunks predicted hot die young (within one turnover of
	 * the live set) clearly more often than those predicted cold; the two shares graded. */
	bool hot_cold_separation;
	double young_predicted_hot, young_predicted_cold;
	uint64_t mem_l2p_bytes;     /* RAM of the L2P map */
	uint64_t mem_segment_bytes; /* RAM of the per-segment table */
	/* Checkpoint and the last open. */
	uint32_t segments_ckpt; /* segments holding the current checkpoint */
	uint64_t ckpt_gen;      /* current checkpoint, 0 = none */
	uint64_t ckpt_writes, ckpt_bytes, ckpt_skipped;
	uint64_t segs_since_ckpt;  /* segments opened since the current checkpoint */
	bool open_from_ckpt;       /* the last open started from a checkpoint */
	uint64_t open_ckpt_gen;    /* ... this one */
	uint64_t open_segs_walked; /* segments whose summaries that open read */
	double open_seconds;       /* how long ftl_open took */
	/* Zoned namespaces (all 0 elsewhere). */
	bool zoned;
	uint32_t zone_max_active;    /* the device's limit, 0 = none */
	uint32_t zone_active_budget; /* zones the FTL may hold active: streams + checkpoint + log */
	uint32_t zone_streams;       /* write streams left after folding to fit the limit */
	uint64_t zone_resets;        /* segments freed by a zone reset (this FTL, since open) */
	uint64_t zone_finishes;      /* segments closed before full and finished */
	struct ftl_dev_zoned_stats zdev; /* the device's zone counters and the random-write log */
};
void ftl_get_stats(struct ftl *ftl, struct ftl_stats *st);

/* Human-readable multi-line summary; returns bytes written (like snprintf). */
int ftl_stats_to_text(const struct ftl_stats *st, char *buf, size_t len);
int ftl_stats_to_json(const struct ftl_stats *st, char *buf, size_t len);

/* SMART / health of the device under the FTL: the NVMe log where the device has one, otherwise
 * (smart->emulated) the same fields made up from the FTL's and the backend's counters by
 * ftl_smart_emulate(). Errors: those of reading the log (-EIO, -ENOMEM). */
int ftl_get_smart(struct ftl *ftl, struct ftl_dev_smart *smart);
/* The emulation (pure): data units from the device bytes written/read since open (512,000-byte
 * units, rounded up), media errors from failed reads (device errors and checksum failures),
 * percentage used from mean erases over rated P/E cycles, available spare from free segments
 * over RESERVE (the free segments the FTL keeps for GC alone), and the critical warning bits
 * that follow from those. */
void ftl_smart_emulate(const struct ftl_stats *st, const struct ftl_dev_stats *ds, uint32_t reserve,
                       struct ftl_dev_smart *smart);
/* Printers for .pstorage/flash/smart: a first line "source: nvme" or "source: emulated (not an
 * NVMe device)", then one field a line; n/a (JSON null) for what an emulation cannot know. */
int ftl_smart_to_text(const struct ftl_dev_smart *smart, char *buf, size_t len);
int ftl_smart_to_json(const struct ftl_dev_smart *smart, char *buf, size_t len);

/* Erase count of each segment (for wear reports): fills up to N entries, returns the count. */
int ftl_erase_counts(struct ftl *ftl, uint32_t *counts, uint32_t n);

/* ------------------------------------------------------------------------------------------ */
/* Scrub                                                                                        */
/* ------------------------------------------------------------------------------------------ */

/* What is wrong with a chunk the scrub lists (one X-macro list: enum and names agree). */
#define FTL_SCRUB_KIND_LIST(X)                                                                     \
	X(DATA, "data")             /* header or payload fails its checksum: reads give -EIO */    \
	X(UNREADABLE, "unreadable") /* the device cannot read it: reads give -EIO */               \
	X(SUMMARY, "summary")       /* the data verifies, but its pack summary or segment header   \
	                               does not: reads work, the hash may be wrong, and a scan at  \
	                               the next open would not find the chunk */                   \
	X(LOST, "lost")             /* a damaged copy of an id that has no live copy: the scan at  \
	                               open dropped it, reads give -ENOENT (the owner's reference  \
	                               dangles; a freed chunk not yet collected looks the same) */

enum ftl_scrub_kind {
#define FTL_SCRUB_KIND_ENUM(n, s) FTL_SCRUB_##n,
	FTL_SCRUB_KIND_LIST(FTL_SCRUB_KIND_ENUM)
#undef FTL_SCRUB_KIND_ENUM
	    FTL_SCRUB_KIND_COUNT
};
const char *ftl_scrub_kind_name(enum ftl_scrub_kind kind);

struct ftl_scrub_damage {
	struct ftl_addr addr;
	uint32_t seg; /* where the damaged copy is: segment, byte offset of its chunk header */
	uint32_t off;
	uint32_t len;
	uint8_t kind; /* enum ftl_scrub_kind */
};

#define FTL_SCRUB_LIST_MAX 256 /* damaged chunks listed by address; the counts are complete */

struct ftl_scrub_result {
	uint32_t segments_total;    /* segments of the namespace */
	uint32_t segments_done;     /* looked at so far (free segments count: nothing to check) */
	uint64_t bytes_checked;     /* device bytes read and verified */
	uint64_t chunks_checked;    /* live chunks whose checksum was verified */
	uint64_t damaged_chunks;    /* live chunks reads cannot return (DATA + UNREADABLE) */
	uint64_t lost_chunks;       /* LOST */
	uint64_t summary_chunks;    /* SUMMARY: readable, but at risk */
	uint64_t summary_errors;    /* pack summaries and segment headers failing their checks */
	uint64_t unreadable_ranges; /* runs of blocks the device could not read */
	uint64_t unreadable_bytes;
	uint32_t ckpt_segments; /* segments of the current checkpoint checked */
	uint32_t ckpt_errors;   /* of them: a header, or the checkpoint's contents, failing its
	                           checks (the next open passes over the checkpoint and walks
	                           more; the FTL writes a new one at close) */
	uint32_t nlisted; /* entries of damaged[] in use: the first FTL_SCRUB_LIST_MAX found */
	struct ftl_scrub_damage damaged[FTL_SCRUB_LIST_MAX];
};

/* Told after every segment with the totals so far (and once before the first). A non-zero
 * return stops the scrub. */
typedef int (*ftl_scrub_progress_fn)(void *arg, const struct ftl_scrub_result *so_far);

/* Reads every used segment (one large read each; only the sealed part of open ones) and checks
 * its header, each pack summary, and the checksum of every live chunk; and the segments of the
 * current checkpoint: their headers and the checkpoint's checksum over all its parts (damage
 * there adds to ftl_stats.checksum_errors too, and marks the checkpoint for rewriting). Locks are
 * held only to take a consistent view of one segment (microseconds), never across the device read,
 * so writes, reads and GC go on; a segment that GC frees while it is read is skipped, and chunks GC
 * moves may be missed or checked twice. A suspected chunk is read again through ftl_read before it
 * is counted, so a race is never reported as damage, and every damaged chunk adds to
 * ftl_stats.checksum_errors (read_errors too for DATA and UNREADABLE) as an ordinary read
 * would. A pack whose summary fails costs one pass over the L2P to find its live chunks.
 * FN may be NULL. Damage is not an error: it is in RES. Returns 0, -ECANCELED (FN asked to
 * stop; RES holds what was checked) or -ENOMEM. */
int ftl_scrub(struct ftl *ftl, ftl_scrub_progress_fn fn, void *arg, struct ftl_scrub_result *res);

#ifdef __cplusplus
}
#endif
#endif
