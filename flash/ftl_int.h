/* flash/ftl_int.h - in-memory state of the FTL, shared by the ftl_*.c files (private to flash/).
 *
 * INVARIANTS (numbered, referred to from the code):
 *  1. Segment states: FREE, OPEN, CLOSED and CKPT, each described (what is true of a segment in
 *     it, and the one function that performs each transition) in the table at the top of
 *     ftl_segment.c. In short: FREE segments hold no live chunk and are in no stream; an OPEN
 *     segment belongs to exactly one stream (seg->stream) and only that stream appends to it,
 *     under the stream's lock; CLOSED segments are immutable until GC frees them; CKPT segments
 *     hold a part of a checkpoint, written once under ckpt_lock, and are never GC victims.
 *  2. A chunk's L2P entry is stored when it is appended to a stream's pack buffer, at a
 *     provisional location (the pack's header taken as one block). The pack is sealed under the
 *     stream lock (its place and size fixed, the next buffer filled behind it) and written to
 *     the device without the lock, in seal order (tickets), one write at a time per stream (an
 *     appender's sealed pack is queued and written by whichever thread's write comes before
 *     it, or by the sealer when none is under way: ftl_stream.c write_queued); the write's
 *     completion, under the lock again, moves the pack's chunks to their real locations and
 *     frees the buffer. Until then the chunk lives only in that buffer: readers that find a
 *     location inside the range of the pack being filled or of a sealed pack not yet written
 *     copy it from the buffer under the stream lock (ftl_stream_read_buffered). A segment is
 *     closed only when every pack sealed into it is written, so an OPEN segment is the only
 *     kind with buffered chunks.
 *  3. GC never frees a victim before the relocated copies are on the device and flushed, so a
 *     power cut at any point leaves at least one valid copy of every synced chunk. A victim
 *     whose last copies sit in a GC stream's part-filled pack waits (gc_pend, seg->gc_pending:
 *     CLOSED, no live chunk, never a victim again) until that pack is written, by a later
 *     victim's copies filling it or by a seal, and flushed; GC does not seal a small pack per
 *     victim (ftl_gc.c gc_release_ready).
 *  4. A reader that loses a race with GC (reads a location that was freed and reused) sees a
 *     checksum failure; it reloads the L2P entry and retries when it changed, and reports -EIO
 *     only when the entry is unchanged (real damage).
 *  5. Lock order (a thread holding one may take only those to its right):
 *       ckpt_lock -> stream lock -> gc_lock -> (another stream's lock, GC streams only)
 *       -> seg_lock -> seg stripe lock -> id_lock
 *     ftl_checkpoint holds ckpt_lock around all of it: it takes every stream lock and gc_lock
 *     (user and reserve streams before gc_lock, GC streams after: ftl_ckpt.c world_stop),
 *     draining each stream as soon as its lock is taken (so the drain's wait retakes that lock
 *     only with earlier ones held), and may run foreground GC, so nothing may take ckpt_lock while
 * holding any other FTL lock (ftl_get_stats takes it alone). The GC never takes a user or reserve
 * stream's lock. Leaves, held with nothing taken after them but the device layer's own locks: the
 *     erase-count table's wear_lock (zoned namespaces, ftl_zone.c) and gc_wait_lock (the GC
 *     thread's sleep; never held while GC runs), and a stream's recent_lock (its summaries
 *     of packs written last). A stream's cond is waited on with only that
 *     stream's lock released (its turn to write, a free buffer, the end of a drain): whoever
 *     signals it (a pack write's completion) needs that stream lock and nothing else, and a
 *     sealed pack's writer holds no FTL lock while it waits for the device. Device-layer locks
 * (flash/dev) come after every FTL lock: the FTL calls the device with locks held, never the other
 * way.
 *  6. seg->live_bytes counts the footprint (header + payload, aligned) of chunks whose L2P entry
 *     points into the segment. It is changed with atomics by writers, ftl_free and GC.
 *  7. Free segments: user writes never take the last `reserve` of them, reserve writes never
 *     the last ftl_reserve_keep() (about half the reserve, at least one), GC may take them all.
 *     So a caller freeing space on a full device can still write the metadata that frees it,
 *     and GC can still clean after that.
 */
#ifndef PSTOR_FTL_INT_H
#define PSTOR_FTL_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "ftl.h"
#include "ftl_format.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "on-disk structs are written in host order: little-endian hosts only");

/* Chunk checksum: covers the id, so a chunk read from the wrong place fails too. */
static inline uint32_t ftl_len_flags(uint32_t len, uint8_t flags)
{
	return len | ((uint32_t)flags << 24);
}
static inline uint32_t ftl_chunk_crc(uint64_t id, uint32_t len_flags, const void *payload,
                                     uint32_t len)
{
	uint32_t c = ftl_crc32c(0, &id, sizeof(id));
	c = ftl_crc32c(c, &len_flags, sizeof(len_flags));
	return ftl_crc32c(c, payload, len);
}

/* ---- L2P: chunk id -> location, two-level table of 64-bit entries ---- */
/* An entry: segment (24 bits) | offset in segment / 8 (24 bits) | payload length - 1 (16 bits).
 * 0 means "no chunk" (offset 0 is the segment header, never a chunk). Free ids are chained
 * through their entries: FTL_L2P_FREE_TAG | next free id. */
#define FTL_L2P_PAGE_SHIFT 16
#define FTL_L2P_PAGE_SIZE  (1u << FTL_L2P_PAGE_SHIFT)
#define FTL_L2P_FREE_TAG   (0xffffffull << 40)
#define FTL_L2P_ID_MAX     ((1ull << 40) - 2)
#define FTL_SEG_MAX        0xfffffeu
#define FTL_SEG_NONE       UINT32_MAX

static inline uint64_t ftl_loc_make(uint32_t seg, uint32_t off, uint32_t len)
{
	return ((uint64_t)seg << 40) | ((uint64_t)(off >> 3) << 16) | (uint64_t)(len - 1);
}
static inline uint32_t ftl_loc_seg(uint64_t loc)
{
	return (uint32_t)(loc >> 40);
}
static inline uint32_t ftl_loc_off(uint64_t loc)
{
	return (uint32_t)((loc >> 16) & 0xffffff) << 3;
}
static inline uint32_t ftl_loc_len(uint64_t loc)
{
	return (uint32_t)(loc & 0xffff) + 1;
}
static inline bool ftl_loc_is_chunk(uint64_t loc)
{
	return loc != 0 && (loc & FTL_L2P_FREE_TAG) != FTL_L2P_FREE_TAG;
}

/* Owner words of one L2P page: 6 bytes an id (see ftl_word_make). */
struct ftl_l2p_words {
	_Atomic uint32_t lo[FTL_L2P_PAGE_SIZE];
	_Atomic uint16_t hi[FTL_L2P_PAGE_SIZE];
	/* Heat (FTL_HEAT_*), RAM only: how long the versions before this chunk lived. */
	_Atomic uint8_t heat[FTL_L2P_PAGE_SIZE];
};

/* A chunk's heat: whether the lifetimes of the versions it replaced were measured, and how many
 * of the last ones in a row were short (ftl_core.c pick_user_stream). Not stored on the device:
 * after an open every chunk starts unknown, which costs placement quality for one rewrite, never
 * correctness. */
#define FTL_HEAT_KNOWN      0x1u
#define FTL_HEAT_RUNS_SHIFT 1
#define FTL_HEAT_RUNS_MAX   2u /* counted up to: two in a row make data hot */
/* What the classifier said of this chunk when it was written (whether or not the hot stream
 * took it): when the chunk dies, its lifetime grades that prediction (ftl_heat_grade). */
#define FTL_HEAT_PREDICTED     0x8u
#define FTL_HEAT_PREDICTED_HOT 0x10u
/* The chunk's own birth, coarsely: the half-turnover epoch (ftl->heat_epoch) it was written
 * in, modulo 8. The placement's age is its segment's mean birth, which GC mixes; the grade
 * needs the chunk's, or the stream a chunk sits in would decide how old it looks. */
#define FTL_HEAT_EPOCH_SHIFT 5

struct ftl_l2p {
	_Atomic(uint64_t) **pages; /* directory; pages allocated on demand */
	/* Per id, beside its location: the owner word (the first FTL_SCAN_HASH_PREFIX bytes of
	 * the chunk's hash and its flags) that a checkpoint stores so open need not read the
	 * summaries of checkpointed segments. Allocated with the location page. */
	struct ftl_l2p_words **words;
	uint64_t npages_max;
	pthread_mutex_t id_lock; /* guards the free chain, next_id, page allocation */
	uint64_t next_id;        /* ids below this have been handed out at least once */
	uint64_t free_head;      /* first free id or UINT64_MAX */
	uint64_t npages;         /* pages allocated */
	_Atomic uint64_t live;   /* ids in use */
};

int ftl_l2p_init(struct ftl_l2p *m, uint64_t max_ids);
void ftl_l2p_destroy(struct ftl_l2p *m);
uint64_t ftl_l2p_get(struct ftl_l2p *m, uint64_t id);
void ftl_l2p_set(struct ftl_l2p *m, uint64_t id, uint64_t loc);
bool ftl_l2p_cas(struct ftl_l2p *m, uint64_t id, uint64_t old, uint64_t loc);
int ftl_l2p_alloc(struct ftl_l2p *m, uint64_t *id);
/* Takes a specific id (scan at open); fails with -EEXIST if it is taken. */
int ftl_l2p_claim(struct ftl_l2p *m, uint64_t id);
void ftl_l2p_release(struct ftl_l2p *m, uint64_t id);
/* Rebuilds the free chain after a scan claimed ids out of order. */
void ftl_l2p_rebuild_free(struct ftl_l2p *m);
uint64_t ftl_l2p_mem_bytes(const struct ftl_l2p *m);
void ftl_l2p_set_word(struct ftl_l2p *m, uint64_t id, uint64_t word);
uint64_t ftl_l2p_get_word(struct ftl_l2p *m, uint64_t id);
void ftl_l2p_set_heat(struct ftl_l2p *m, uint64_t id, uint8_t heat);
/* Whether predicted-hot chunks die young clearly more often than predicted-cold ones (or too
 * few have died to tell); the two shares in the optional outputs (ftl_core.c). */
struct ftl;
bool ftl_heat_separation_pays(struct ftl *ftl, double *p_young_hot, double *p_young_cold);
uint8_t ftl_l2p_get_heat(struct ftl_l2p *m, uint64_t id);

/* The owner word: hash bytes 0..FTL_SCAN_HASH_PREFIX-1 from the bottom and the chunk's flags
 * in the top byte; the L2P keeps 6 bytes of it (ftl_l2p_set_word). */
static inline uint64_t ftl_word_make(const uint8_t *hash, uint8_t flags)
{
	uint64_t w = 0;
	for (int i = 0; i < FTL_SCAN_HASH_PREFIX; i++)
		w |= (uint64_t)hash[i] << (8 * i);
	return w | (uint64_t)flags << 56;
}

/* ---- segments and streams ---- */
/* Segment sequence numbers count allocations and releases from 0 and never get near this. A
 * header or checkpoint that claims one at or above it (whatever its checksum says) was not
 * written by this FTL: taking it would make next_seq wrap, and new segments would then look
 * older than stale ones. The scan refuses such headers and checkpoints (ftl_scan.c). */
#define FTL_SEQ_LIMIT (1ull << 62)
/* ...and the FTL never writes one that its own scan would refuse: a segment is allocated (an
 * OPEN or checkpoint header written) only below this, which leaves room for the releases that
 * may follow without an allocation (one per segment, fewer than 2^24: FREE headers) to stay
 * below FTL_SEQ_LIMIT. So the scan refuses a header other than FREE at or beyond this, and a
 * FREE one at or beyond FTL_SEQ_LIMIT. A FREE header or checkpoint just below FTL_SEQ_LIMIT,
 * or an OPEN header just below this (forged: accepted, but next_seq reaches this) leaves the
 * FTL unable to open a segment: writes fail with -ENOSPC rather than go to a segment the next
 * open would take as free (ftl_segment.c seg_alloc). */
#define FTL_SEQ_ALLOC_LIMIT (FTL_SEQ_LIMIT - (1ull << 32))

/* Births (write sequence of chunk contents, ftl_format.h) likewise count chunk writes from 0.
 * Every birth on the device and every one the FTL hands out is below this: the scan ignores a
 * summary entry at or above it as not written by this FTL (ftl_scan.c, whose table of births
 * keeps birth + 1 beside two flag bits, so it must stay below 2^62), a checkpoint whose
 * next_birth exceeds it is refused, and ftl_write fails with -ENOSPC rather than hand out a
 * birth at it: a chunk written with one would be ignored at the next open, though synced. */
#define FTL_BIRTH_LIMIT ((1ull << 62) - 1)

/* CKPT: holds (part of) the current checkpoint; neither free nor a GC victim. */
enum ftl_seg_state { FTL_SEG_FREE = 0, FTL_SEG_OPEN, FTL_SEG_CLOSED, FTL_SEG_CKPT };

struct ftl_seg {
	_Atomic uint8_t state; /* enum ftl_seg_state */
	_Atomic uint8_t stream;
	_Atomic uint8_t pinned;       /* GC could not account for every live chunk: never freed */
	_Atomic uint8_t gc_pending;   /* cleaned, freed once its copies are durable (ftl_gc.c) */
	_Atomic uint32_t erase_count; /* written under seg_lock, read unlocked by GC and stats */
	uint64_t seq;
	uint64_t open_clock, close_clock;
	_Atomic uint32_t live_bytes; /* invariant 6 */
	/* Births of the chunks appended (GC keeps a chunk's birth), so the mean is the age of
	 * the data in the segment even after it was moved: the rewrite-interval estimate. */
	_Atomic uint64_t birth_sum;
	_Atomic uint32_t birth_n;
	/* Releases so far (RAM only): what a stream remembers of the segment's packs holds only
	 * while this is unchanged (ftl_stream.c recent summaries). */
	_Atomic uint32_t gen;
	uint32_t end;      /* bytes used (next pack start) */
	uint64_t ckpt_gen; /* FTL_SEG_CKPT only: checkpoint and part, for the header */
	uint32_t ckpt_part, ckpt_nparts;
	uint32_t npacks, cap_packs; /* pack start offsets, guarded by the seg's stripe lock */
	uint32_t *pack_offs;
	/* Under seg_lock. A released segment's TRIM waits for a flush that started after its
	 * FREE header was written (ftl_flush): trim_after is the number of that flush, 0 when no
	 * TRIM is due. `trimming` holds it out of allocation while the TRIM is under way. */
	uint64_t trim_after;
	bool trimming;
	/* Under seg_lock. Its blocks were allocated in the image (ftl_dev_reserve) and no TRIM
	 * has punched them since: reused before its TRIM came due, the segment needs no second
	 * reserve, whose fallocate waits for every direct write in flight on the file. */
	bool reserved;
};

/* Write streams: data is placed by expected lifetime so GC finds segments that are mostly dead
 * (hot) or that it need not touch (cold). Reserve writes (ftl_write_opts.reserve) have a stream
 * of their own, so the segment they may open below the user limit is not filled by user data. */
#define FTL_STREAM_LIST(X)                                                                         \
	X(USER_HOT, "user-hot")                                                                    \
	X(USER_COLD, "user-cold")                                                                  \
	X(GC_HOT, "gc-hot")                                                                        \
	X(GC_COLD, "gc-cold")                                                                      \
	X(RESERVE, "reserve")

enum ftl_stream_id {
#define FTL_STREAM_ENUM(n, s) FTL_STREAM_##n,
	FTL_STREAM_LIST(FTL_STREAM_ENUM)
#undef FTL_STREAM_ENUM
	    FTL_STREAM_COUNT
};

/* Streams whose segments hold data expected to die soon. */
static inline bool ftl_stream_is_hot(uint8_t stream)
{
	return stream == FTL_STREAM_USER_HOT || stream == FTL_STREAM_GC_HOT;
}

/* Pack buffers per stream: one being filled while up to two sealed ones are written. Appends
 * wait only when every buffer is sealed and none of their writes has completed. */
#define FTL_STREAM_BUFS 3

/* One pack buffer. The buffer being filled is its stream's `cur`; a sealed one keeps where it
 * goes (seg, start) and what it holds until its device write completes (invariant 2). */
struct ftl_pack_buf {
	uint8_t *buf; /* [FTL_PACK_HDR_MAX header blocks][data] */
	/* Summary entries, apart from the header so readers may look at them while the sealer
	 * builds the header outside the stream lock. */
	struct ftl_pack_entry_disk *ents;
	uint32_t nent;
	uint32_t data_len;
	/* Set when sealed (under the stream lock), constant until the write completes. */
	bool sealed;
	uint32_t seg, start, total, hdr_blocks;
	uint64_t ticket; /* write order within the stream */
	bool close_seg;  /* the segment's last pack: its completion closes the segment */
	/* Sealed by an appender that left its write to whichever thread writes the stream's
	 * packs when its turn comes (ftl_stream_write_sealed). */
	bool queued;
	uint64_t clock;
};

/* Summaries of the packs a stream wrote last, kept so a dedupe check of a chunk written
 * moments ago (ftl_read_hash) finds its hash without reading the device. Valid while the
 * segment's gen is the one recorded. */
#define FTL_STREAM_RECENT 16
struct ftl_pack_recent {
	uint32_t seg, gen, start, hdr_blocks, total, nent;
	struct ftl_pack_entry_disk *ents; /* swapped with the written pack's buffer entries */
};

/* The bytes of the packs a user stream wrote last, as they went to the device, so a chunk read
 * moments after its pack was written is copied from memory: a replicated write's new chunks,
 * which the leader exports to the peer right after storing them, would otherwise cost a device
 * read each run. Valid while the segment's gen is the one recorded (a segment's contents do not
 * change before its release); the buffers change places with the written packs' (no copy).
 * Readers verify what they copy like a device read (the chunk's CRC covers its id). */
#define FTL_STREAM_RECENT_BYTES 4
struct ftl_pack_bytes {
	/* Written under recent_lock; also read without it, to skip the lock for a segment no kept
	 * pack is of (most reads): a read that misses a pack being recorded reads the device,
	 * whose write completed before. */
	_Atomic uint32_t seg;
	uint32_t gen, start, hdr_blocks, total;
	uint8_t *buf; /* as ftl_pack_buf.buf; NULL in streams that keep none */
};

struct ftl_stream {
	/* Guards everything below but `writes`: the open segment, the pack buffers' states and
	 * the buffer being filled (invariants 1, 2, 5). Not held across a pack's device write. */
	pthread_mutex_t lock;
	/* Signalled (under lock) when a pack write completes or a drain ends: the next ticket's
	 * turn, a buffer to fill again, everything drained. */
	pthread_cond_t cond;
	enum ftl_stream_id id;
	uint32_t seg;        /* open segment or FTL_SEG_NONE */
	uint32_t fill_start; /* offset in segment of the pack being filled */
	/* End of the packs of `seg` whose device writes completed (the scrub reads it). */
	uint32_t pack_start;
	struct ftl_pack_buf pbs[FTL_STREAM_BUFS];
	/* The buffer being filled; NULL while every buffer is sealed and on its way (appenders
	 * wait on cond). Chunk locations in it assume a one-block header until its seal knows the
	 * real size and moves them (invariant 2 covers readers in between). */
	struct ftl_pack_buf *cur;
	/* Tickets order the device writes of sealed packs: the pack with ticket t is written
	 * after t - 1 completed, so packs reach a segment in order (a zone's write pointer; a
	 * scan that stops at the first bad pack). */
	uint64_t next_ticket, done_ticket;
	uint32_t draining;   /* ftl_stream_seal at work: appenders wait */
	bool writing;        /* a thread writes queued packs (write_queued), without the lock */
	uint32_t failed_seg; /* a pack write into it failed: no more packs go there */
	int seal_err;        /* first failed pack write since the last ftl_streams_seal */
	/* Guards recent[], recent_next, bytes[] and bytes_next; a leaf (invariant 5), taken under
	 * lock by a write's completion and alone by readers. */
	pthread_mutex_t recent_lock;
	struct ftl_pack_recent recent[FTL_STREAM_RECENT];
	uint32_t recent_next;
	struct ftl_pack_bytes bytes[FTL_STREAM_RECENT_BYTES];
	uint32_t bytes_next;
	_Atomic uint64_t writes; /* chunks appended; read unlocked by ftl_get_stats */
	_Atomic uint64_t seals;  /* packs written; read unlocked by ftl_get_stats */
};

#define FTL_SEG_STRIPES 64
/* Cleaned victims waiting for their copies' pack to be written (ftl_gc.c): one at a time in
 * steady state; a few more while packs are larger than victims' live data. */
#define FTL_GC_PEND_MAX  8
#define FTL_PACK_HDR_MAX 8 /* header blocks of a pack, at most */

/* Blocks a pack header with N entries takes. */
static inline uint32_t ftl_pack_hdr_blocks(uint32_t n, uint32_t bs)
{
	return (uint32_t)((sizeof(struct ftl_pack_disk) +
	                   (size_t)n * sizeof(struct ftl_pack_entry_disk) + bs - 1) /
	                  bs);
}

struct ftl {
	struct ftl_dev *dev;
	struct ftl_superblock_info sb;
	struct ftl_config cfg;
	bool rdonly;

	uint32_t bs; /* FTL block size */
	uint32_t seg_size;
	uint32_t nsegs;
	uint32_t max_entries; /* summary entries per pack (header of at most FTL_PACK_HDR_MAX) */
	uint32_t pack_data_cap;

	struct ftl_seg *segs;
	/* Guards taking a segment from the free pool and returning it (ftl_segment.c: the FREE
	 * transitions and nfree's changes), next_seq, and each seg's seq, erase_count, ckpt_gen/
	 * part and end as allocation and release set them. OPEN -> CLOSED is its stream's. */
	pthread_mutex_t seg_lock;
	/* Stripe i % FTL_SEG_STRIPES guards segment i's pack offset list (npacks, cap_packs,
	 * pack_offs): appended by the segment's writer, read by ftl_read_hash and the scrub. */
	pthread_mutex_t seg_stripes[FTL_SEG_STRIPES];
	_Atomic uint32_t nfree;   /* changed under seg_lock, read without it */
	pthread_cond_t trim_cond; /* with seg_lock: a TRIM ended (seg_alloc waits for one) */
	_Atomic uint64_t flushes_started; /* ftl_flush: numbers the device flushes */
	/* Segments whose trim_after is set (changed under seg_lock): a flush with none due, every
	 * fsync's among them, looks at no segment. */
	_Atomic uint32_t trims_due;
	uint32_t reserve; /* free segments only GC may take */
	/* The background GC starts below gc_bg_low free segments and stops at gc_bg_high. */
	uint32_t gc_bg_low, gc_bg_high;
	uint64_t next_seq;

	struct ftl_stream streams[FTL_STREAM_COUNT];
	/* Every stream's pack buffers and kept pack bytes, in one region (ftl_streams_init). */
	uint8_t *pack_arena;
	/* Where each stream's writes go: itself, or on a zoned namespace with few active zones
	 * the stream it is folded into (ftl_zone.c). */
	uint8_t stream_map[FTL_STREAM_COUNT];
	struct ftl_zoned *zn; /* zoned namespaces only (ftl_zone_int.h) */
	/* Pack headers for ftl_read_hash (ftl_hdrcache.h). */
	struct ftl_hdrcache *hdrcache;
	struct ftl_l2p l2p;

	_Atomic uint64_t clock;      /* virtual time: host payload bytes written */
	_Atomic uint64_t next_birth; /* write sequence of chunk contents */
	/* Whether the hot/cold prediction is worth acting on (ftl_core.c): deaths of chunks
	 * predicted cold [0] and hot [1], and how many of each died young; halved as they grow,
	 * so they follow the workload. While predictions do not tell short lives from long ones
	 * (uniform writes), all user data goes to one stream: two streams of like data only
	 * spread the free space thinner. */
	_Atomic uint32_t heat_deaths[2], heat_short[2];
	_Atomic bool heat_separate;
	/* Half-turnover epochs of chunk births: heat_epoch ticks each time next_birth passes
	 * heat_epoch_birth by half the live chunks. */
	_Atomic uint32_t heat_epoch;
	_Atomic uint64_t heat_epoch_birth;

	/* Guards a GC pass: one cleaner at a time (background thread, foreground reclaim,
	 * ftl_gc), gc_buf, and the choice and relocation of a victim. */
	pthread_mutex_t gc_lock;
	uint8_t *gc_buf; /* one segment, for GC reads; guarded by gc_lock */
	/* Victims cleaned whose copies may still be in a GC stream's pack buffer (invariant 3),
	 * oldest first, each with the ticket of the last pack of each GC stream that may hold its
	 * copies. Guarded by gc_lock. */
	struct ftl_gc_pending {
		uint32_t seg;
		uint64_t need[2]; /* GC_HOT, GC_COLD (their stream_map streams) */
	} gc_pend[FTL_GC_PEND_MAX];
	uint32_t gc_npend;
	pthread_t gc_thread;
	bool gc_thread_running;
	_Atomic bool gc_stop;
	pthread_mutex_t gc_wait_lock; /* guards gc_stop's changes and the sleep on gc_cond */
	pthread_cond_t gc_cond;

	/* Checkpoint (ftl_ckpt.c). The segments of the current one are in ckpt_segs.
	 * segs_opened counts segment allocations, so the policy can bound how many segments an
	 * open must walk. ckpt_lock serialises checkpoints (one taker, who also writes the CKPT
	 * segments) and guards ckpt_gen, ckpt_segs, ckpt_nsegs and ckpt_segs_opened; it is the
	 * first lock of the order (invariant 5). */
	pthread_mutex_t ckpt_lock;
	uint64_t ckpt_gen;
	uint32_t *ckpt_segs, ckpt_nsegs;
	_Atomic uint64_t segs_opened;
	uint64_t ckpt_segs_opened; /* segs_opened when the current checkpoint was taken */
	_Atomic bool ckpt_dirty;   /* anything changed since the current checkpoint */
	_Atomic uint64_t ckpt_writes, ckpt_bytes, ckpt_skipped;
	/* How the last open went. */
	bool open_from_ckpt;
	uint64_t open_ckpt_gen, open_segs_walked, open_ns;

	/* counters */
	_Atomic uint64_t host_bytes, dev_bytes, gc_runs, gc_bytes, wear_moves, trims, gc_greedy;
	_Atomic uint64_t read_errors, checksum_errors, bytes_live;
};

/* Content bytes of one checkpoint part: a segment but its header block. */
static inline uint32_t ftl_ckpt_part_cap(const struct ftl *ftl)
{
	return ftl->seg_size - ftl->bs;
}

static inline uint64_t ftl_seg_dev_off(const struct ftl *ftl, uint32_t seg)
{
	return ftl->sb.data_offset + (uint64_t)seg * ftl->seg_size;
}

/* Who asks for a segment: how many free segments it must leave (invariant 7). */
enum ftl_alloc {
	FTL_ALLOC_USER,    /* leaves ftl->reserve */
	FTL_ALLOC_RESERVE, /* leaves ftl_reserve_keep() */
	FTL_ALLOC_GC,      /* may take the last one */
};

/* Free segments a reserve write must leave for GC: half the reserve, at least one. */
static inline uint32_t ftl_reserve_keep(const struct ftl *ftl)
{
	return ftl->reserve / 2 > 1 ? ftl->reserve / 2 : 1;
}

/* ftl_segment.c */
int ftl_segs_init(struct ftl *ftl);
void ftl_segs_destroy(struct ftl *ftl);
int ftl_seg_alloc(struct ftl *ftl, enum ftl_stream_id stream, enum ftl_alloc who, uint32_t *out);
/* A free segment for part PART of NPARTS of checkpoint GEN, its header written as such (one
 * header write: a zone cannot take a second one). */
int ftl_seg_alloc_ckpt(struct ftl *ftl, uint64_t gen, uint32_t part, uint32_t nparts,
                       uint32_t *out);
/* CLOSED or CKPT -> FREE: the FREE header is written; the TRIM waits for the next ftl_flush. */
int ftl_seg_release(struct ftl *ftl, uint32_t seg);
/* A device flush, then the TRIMs of the segments released before it started that were not
 * reused meanwhile. Every flush of the FTL goes through here. */
int ftl_flush(struct ftl *ftl);
/* A released segment still waits for its TRIM. */
bool ftl_seg_trims_due(struct ftl *ftl);
void ftl_seg_add_pack(struct ftl *ftl, uint32_t seg, uint32_t off);
int ftl_seg_write_header(struct ftl *ftl, uint32_t seg, uint8_t disk_state);

/* ftl_stream.c */
int ftl_streams_init(struct ftl *ftl);
void ftl_streams_destroy(struct ftl *ftl);
/* Appends one chunk; caller holds st->lock. With SEALP NULL a full pack is sealed and written
 * right there, under the lock (GC streams). Otherwise a full pack is only sealed: the call
 * returns 1 with *SEALP set and nothing appended, and the caller drops the lock, calls
 * ftl_stream_write_sealed(*SEALP) and appends again. */
int ftl_stream_append(struct ftl *ftl, struct ftl_stream *st, uint64_t id, uint64_t birth,
                      const uint8_t hash[FTL_HASH_LEN], uint32_t crc, uint8_t flags,
                      const void *payload, uint32_t len, uint64_t *loc_out, enum ftl_alloc who,
                      struct ftl_pack_buf **sealp);
/* Writes a pack sealed by ftl_stream_append; caller holds no stream lock. */
int ftl_stream_write_sealed(struct ftl *ftl, struct ftl_stream *st, struct ftl_pack_buf *pb);
/* Caller holds st->lock (and keeps it): seals the pack being filled and waits until every
 * sealed pack of the stream is written; appenders wait meanwhile. Returns this seal's error. */
int ftl_stream_seal(struct ftl *ftl, struct ftl_stream *st);
/* Seals streams [FIRST, LAST], each under its own lock but not across the device write, and
 * returns when every pack sealed before the call is written: the first pack write that failed
 * since the last call (for any appender) is its error. */
int ftl_streams_seal(struct ftl *ftl, enum ftl_stream_id first, enum ftl_stream_id last);
int ftl_stream_close_seg(struct ftl *ftl, struct ftl_stream *st);
/* Copies a chunk still in a pack buffer: returns 1 if found there, 0 if not, -errno. Asked
 * for the hash alone (OUT and HDR NULL), it also looks in the summaries of the packs the
 * stream wrote last; asked for the chunk (OUT and HDR), in the bytes of those packs it keeps,
 * when KEPT (not for a thread in ftl_read_device_only). */
int ftl_stream_read_buffered(struct ftl *ftl, uint64_t loc, uint64_t id, void *out, uint32_t len,
                             struct ftl_chunk_disk *hdr, uint8_t *hash, bool kept);

/* ftl_gc.c */
int ftl_gc_start(struct ftl *ftl);
void ftl_gc_stop(struct ftl *ftl);
void ftl_gc_kick(struct ftl *ftl);
/* Foreground GC when free segments ran out; caller holds no gc_lock. */
int ftl_gc_reclaim(struct ftl *ftl, uint32_t want_free);
/* Frees the cleaned victims waiting for their copies (seals the GC streams); at close. */
int ftl_gc_release_pending(struct ftl *ftl);

/* ftl_ckpt.c */
struct ftl_ckpt_image; /* a checkpoint read back at open */
/* Finds the newest sound checkpoint among the segment headers (HDR_OK: header valid); *OUT is
 * NULL when there is none. *PARTS gets its segments (caller frees). -ENOMEM only. */
int ftl_ckpt_load(struct ftl *ftl, const struct ftl_seg_disk *hdrs, const bool *hdr_ok,
                  struct ftl_ckpt_image **out, uint32_t **parts, uint32_t *nparts);
void ftl_checkpoint_at_close(struct ftl *ftl);
void ftl_ckpt_image_free(struct ftl_ckpt_image *ck);
const struct ftl_ckpt_disk *ftl_ckpt_header(const struct ftl_ckpt_image *ck);
const struct ftl_ckpt_seg_disk *ftl_ckpt_seg(const struct ftl_ckpt_image *ck, uint32_t segi);
const uint32_t *ftl_ckpt_pack_offs(const struct ftl_ckpt_image *ck, uint32_t segi);
/* Stored L2P page I (index in the image): its page number; COUNT locations and owner words
 * for the ids from page << FTL_L2P_PAGE_SHIFT on. */
uint32_t ftl_ckpt_npages(const struct ftl_ckpt_image *ck);
uint64_t ftl_ckpt_page(const struct ftl_ckpt_image *ck, uint32_t i, uint32_t *count,
                       const uint64_t **locs, const uint64_t **words);

/* ftl_scan.c */
int ftl_scan(struct ftl *ftl);
/* Checks a pack header (fixed part and entries, which must be in memory behind it). */
bool ftl_pack_header_ok(struct ftl *ftl, struct ftl_pack_disk *ph, uint64_t seq, uint32_t off);

#endif
