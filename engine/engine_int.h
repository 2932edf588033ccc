/* engine/engine_int.h - private structures of the reduction engine, shared by engine_*.c.
 * Never include it from another folder: engine.h is the module's only public face.
 *
 * LOCKING RULES (numbered, cited from the code as L1..L8):
 *  L1. No engine lock is held during pattern detection, SHA-256, compression, decompression,
 *      ftl_write, ftl_read or ftl_free. The only FTL call made under an engine lock is
 *      ftl_read_hash (tag verification, under a shard lock).
 *  L2. A shard mutex guards that shard's table (slots, nbuckets, live, tombs). A dedupe hit
 *      increments the chunk's count while holding the shard lock under which it found the entry.
 *  L3. An indexed chunk has a count >= 1. A count goes 1 -> 0 only under the chunk's shard lock,
 *      in the same critical section that removes its index entry. (If the chunk's hash cannot be
 *      read, the count is dropped without the lock and the entry removed by a scan of all
 *      shards; this is safe because increments refuse a count of 0.)
 *  L4. One content, one index entry: a writer that missed re-checks under the shard lock after
 *      ftl_write; if the content appeared meanwhile it takes a reference on that chunk and frees
 *      its own after unlocking.
 *  L5. ref_get and decrements from counts > 1 are lock-free CAS loops on the chunk table. An
 *      increment never starts from 0 (a chunk at 0 is being freed and never comes back).
 *  L6. Chunk-table pages and directories are installed under grow_lock and never freed before
 *      engine_close, so readers need no lock. grow_lock is never taken under a shard lock.
 *  L7. Shard locks never nest; the pattern-table mutex is a leaf lock.
 *  L8. engine_close must not run concurrently with any other call on the same engine. Per-thread
 *      codec and digest contexts are freed when their thread exits (pthread key destructors),
 *      and the calling thread's when the last engine closes.
 *
 * Lock order: shard lock -> FTL internal locks (through ftl_read_hash; flash/ftl_int.h
 * invariant 5). The FTL never calls into the engine.
 */
#ifndef PSTOR_ENGINE_INT_H
#define PSTOR_ENGINE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"

#define ENGINE_CACHELINE 64

/* ---- reference encoding (see engine.h) ------------------------------------------------ */

#define ENGINE_REF_KIND_SHIFT 62
#define ENGINE_REF_PAT_TABLE  (UINT64_C(1) << 61)
#define ENGINE_REF_PAT_PSHIFT 56
#define ENGINE_REF_PAT_BYTES  UINT64_C(0x00ffffffffffffff)
#define ENGINE_REF_PAT_INDEX  (ENGINE_REF_PAT_TABLE - 1)
#define ENGINE_REF_CHUNK_ADDR ((UINT64_C(1) << 62) - 1)
#define ENGINE_PAT_INLINE_MAX 7
#define ENGINE_PAT_MAX        16

/* The index stores 36-bit chunk ids; the FTL must hand out smaller ones. */
#define ENGINE_CHUNK_ID_BITS 36
#define ENGINE_CHUNK_ID_MAX  ((UINT64_C(1) << ENGINE_CHUNK_ID_BITS) - 1)

/* Codec id stored in the low bits of the FTL chunk flags byte. */
#define ENGINE_FLAG_CODEC_MASK 0x03u
/* The zstd level of a chunk re-encoded by engine_chunk_recompress (bits 2..6; 0 = written by the
 * write path, at whatever level the pool had). Bit 7 is the fs's (PFS_CHUNK_META). */
#define ENGINE_FLAG_LEVEL_SHIFT 2
#define ENGINE_FLAG_LEVEL_MASK  0x7cu

/* Reference counts at or above this are treated as full: a dedupe hit then stores a new copy. */
#define ENGINE_REFS_MAX (UINT32_MAX - 1)

static inline struct engine_ref engine_chunk_ref(uint64_t id)
{
	return (struct engine_ref){(uint64_t)ENGINE_REF_CHUNK << ENGINE_REF_KIND_SHIFT | id};
}

static inline struct ftl_addr engine_ref_addr(struct engine_ref r)
{
	return (struct ftl_addr){r.v & ENGINE_REF_CHUNK_ADDR};
}

struct engine;
struct engine_index_shard;
/* Under the shard lock (L2): finds a chunk holding HASH (verified against the full hash kept
 * with the chunk) and takes a reference on it. -ENOENT: none; -EOVERFLOW: its count is full. */
int engine_dedupe_take(struct engine *e, struct engine_index_shard *s, const uint8_t *hash,
                       uint64_t *id);

/* ---- engine_pattern.c ------------------------------------------------------------------ */

void engine_pattern_fill(void *block, uint32_t len, const uint8_t *pat, uint32_t period);

/* ---- engine_pattab.c: patterns of period 8..16, shared with reference counts ----------- */

struct engine_pat_entry {
	uint8_t pat[ENGINE_PAT_MAX];
	uint32_t refs; /* 0 = free slot (on the free list) */
	uint32_t next; /* hash chain, or free list link; UINT32_MAX ends either */
	uint8_t period;
};

struct engine_pattab {
	pthread_mutex_t lock; /* guards the whole table below; a leaf (L7) */
	struct engine_pat_entry *ent;
	uint32_t nent, cap; /* slots in use or freed / allocated */
	uint32_t free_head;
	uint32_t *heads; /* hash chain heads */
	uint32_t nheads; /* power of two */
	uint32_t live;
	uint32_t max_entries;
};

int engine_pattab_init(struct engine_pattab *t, uint32_t max_entries);
void engine_pattab_destroy(struct engine_pattab *t);
/* Finds or adds PAT and takes one reference. -ENOSPC when the table is full. */
int engine_pattab_acquire(struct engine_pattab *t, const uint8_t *pat, uint32_t period,
                          uint32_t *index);
int engine_pattab_get(struct engine_pattab *t, uint32_t index);
int engine_pattab_put(struct engine_pattab *t, uint32_t index);
/* Copies the pattern out; -ENOENT for a free or unknown index. */
int engine_pattab_lookup(struct engine_pattab *t, uint32_t index, uint8_t pat[16],
                         uint32_t *period);
int64_t engine_pattab_count(struct engine_pattab *t, uint32_t index);
/* Rebuild: installs PAT at INDEX with REFS references. -EEXIST if the slot is taken. */
int engine_pattab_restore(struct engine_pattab *t, uint32_t index, const uint8_t *pat,
                          uint32_t period, uint32_t refs);

/* ---- engine_hash.c ----------------------------------------------------------------------- */

void engine_hash_thread_release(void);

/* ---- engine_codec.c (the only file that includes lz4.h / zstd.h) ------------------------ */

/* Largest block the per-thread buffers hold. */
#define ENGINE_BLOCK_MAX 65536u

/* Compresses SRC into a per-thread buffer. *OUT_LEN = 0 means "store raw": the codec is NONE or
 * compression would not save at least len/8. The buffer stays valid until the thread's next
 * engine_codec_* call. Returns 0, or 1 when a sample of SRC looked random and no compression was
 * tried (*OUT_LEN 0); errors: -ENOMEM. */
int engine_codec_compress(enum engine_codec codec, int level, const void *src, uint32_t len,
                          const void **out, uint32_t *out_len);
/* engine_codec_compress into DST (room for LEN - LEN / 8 bytes) instead of the thread's buffer. */
int engine_codec_compress_into(enum engine_codec codec, int level, const void *src, uint32_t len,
                               void *dst, uint32_t *out_len);
/* A per-thread area of ENGINE_BLOCK_MAX bytes where engine_write_run keeps a batch's
 * compressed blocks until the FTL has them (NULL: no memory). Freed with the thread's codec
 * state. A batch is ENGINE_RUN_BYTES of blocks, or one block when they are larger (a compressed
 * block is at most 7/8 of one, so the area holds either). Not more: a block missed in the index is
 * indexed only when its batch is stored, so two requests with the same data at the same time (fio's
 * duplicates are whole 1 MiB buffers) both store a batch before the second finds the first's chunks
 * and frees its copies. Measured on the mixed benchmark, flash bytes a GiB written: 0.26 one block
 * at a time, 0.265 with 8-block batches, 0.27 with 16, 0.29 with 64. */
#define ENGINE_RUN_BYTES (32u << 10)
uint8_t *engine_codec_stage(void);
/* Decompresses exactly DST_LEN bytes. -EBADMSG when the data is not a valid frame of DST_LEN
 * bytes, -ENOMEM, -EINVAL for an unknown codec. */
int engine_codec_decompress(enum engine_codec codec, const void *src, uint32_t src_len, void *dst,
                            uint32_t dst_len);
void engine_codec_thread_release(void);

/* ---- engine_chunks.c: reference counts by chunk id --------------------------------------- */

#define ENGINE_CHUNK_PAGE_SHIFT 16
#define ENGINE_CHUNK_PAGE       (1u << ENGINE_CHUNK_PAGE_SHIFT)

struct engine_chunk_dir {
	struct engine_chunk_dir *retired; /* older directories, freed at destroy */
	uint64_t npages;
	_Atomic(_Atomic uint32_t *) pages[];
};

struct engine_chunks {
	_Atomic(struct engine_chunk_dir *) dir;
	pthread_mutex_t grow_lock; /* page installation and directory growth (L6) */
	_Atomic uint64_t mem_bytes;
};

int engine_chunks_init(struct engine_chunks *c, uint64_t expect_ids);
void engine_chunks_destroy(struct engine_chunks *c);
/* 0 -> 1 for a newly written chunk. -EEXIST if the slot is in use, -ENOMEM. */
int engine_chunks_create(struct engine_chunks *c, uint64_t id, uint32_t refs);
/* Drops a slot set by engine_chunks_create that was never handed out. */
void engine_chunks_clear(struct engine_chunks *c, uint64_t id);
/* +1 on a live chunk. -ENOENT (count 0), -EOVERFLOW (count at ENGINE_REFS_MAX). */
int engine_chunks_inc(struct engine_chunks *c, uint64_t id);
/* -1 while the count stays >= 1: returns 1 done, 0 when the count is 1 (the caller must take the
 * shard lock and call engine_chunks_dec_last), -ENOENT when it is 0. */
int engine_chunks_dec(struct engine_chunks *c, uint64_t id);
/* Under the shard lock: returns 1 when the count went 1 -> 0, 0 when it was larger (decremented),
 * -ENOENT when it was already 0. */
int engine_chunks_dec_last(struct engine_chunks *c, uint64_t id);
uint32_t engine_chunks_count(struct engine_chunks *c, uint64_t id);
uint64_t engine_chunks_mem_bytes(struct engine_chunks *c);

/* ---- engine_index.c: fingerprint -> chunk id ------------------------------------------- */

#define ENGINE_INDEX_SHARDS_LOG2 6
#define ENGINE_INDEX_SHARDS      (1u << ENGINE_INDEX_SHARDS_LOG2)
#define ENGINE_INDEX_BUCKET      8 /* slots per bucket: one cache line */

struct engine_index_shard {
	pthread_mutex_t lock; /* guards slots, nbuckets, live, tombs (L2); never nested (L7) */
	uint64_t *slots;      /* nbuckets * ENGINE_INDEX_BUCKET, 64-byte aligned */
	uint32_t nbuckets;
	uint64_t live, tombs;
} __attribute__((aligned(ENGINE_CACHELINE)));

struct engine_index {
	struct engine_index_shard shard[ENGINE_INDEX_SHARDS];
	_Atomic uint64_t mem_bytes;
	_Atomic uint64_t entries;
};

/* Called for each entry whose tag matches; returns 1 when the chunk really holds HASH, 0 if not,
 * or -errno to stop the lookup. */
typedef int (*engine_index_match_fn)(void *arg, uint64_t id);

int engine_idx_init(struct engine_index *ix);
void engine_idx_destroy(struct engine_index *ix);
struct engine_index_shard *engine_idx_shard(struct engine_index *ix, const uint8_t hash[32]);
void engine_idx_lock(struct engine_index_shard *s);
void engine_idx_unlock(struct engine_index_shard *s);
/* The following need the shard lock. */
/* 0 and *ID on a verified match, -ENOENT when none, or the match function's error. */
int engine_idx_lookup(struct engine_index *ix, struct engine_index_shard *s, const uint8_t hash[32],
                      engine_index_match_fn match, void *arg, uint64_t *id);
/* Adds (HASH, ID); the caller has checked it is absent. -ENOMEM when the table cannot grow. */
int engine_idx_insert(struct engine_index *ix, struct engine_index_shard *s, const uint8_t hash[32],
                      uint64_t id);
/* Removes the entry (HASH, ID). -ENOENT when not present. */
int engine_idx_remove(struct engine_index *ix, struct engine_index_shard *s, const uint8_t hash[32],
                      uint64_t id);
/* Without any lock held: removes ID from whichever shard holds it (for when its hash cannot be
 * read). Scans every shard. -ENOENT when not present. */
int engine_idx_remove_id(struct engine_index *ix, uint64_t id);

/* ---- engine_core.c --------------------------------------------------------------------- */

struct engine_counters {
	_Atomic uint64_t blocks_written;
	_Atomic uint64_t pattern_blocks;
	_Atomic uint64_t dedupe_blocks;
	_Atomic uint64_t compressed_blocks;
	_Atomic uint64_t raw_blocks;
	_Atomic uint64_t raw_probed_blocks;
	_Atomic uint64_t stored_bytes;
	_Atomic uint64_t unique_chunks;
	_Atomic uint64_t hash_verify_misses;
	_Atomic uint64_t read_errors;
} __attribute__((aligned(ENGINE_CACHELINE)));

struct engine {
	struct ftl *ftl;
	uint32_t block_size;
	_Atomic uint32_t codec; /* codec | level << 8 */
	_Atomic bool dedupe;
	struct engine_counters cnt;
	struct engine_index index;
	struct engine_chunks chunks;
	struct engine_pattab pattab;
};

static inline uint32_t engine_codec_pack(enum engine_codec codec, int level)
{
	return (uint32_t)codec | (uint32_t)level << 8;
}

static inline void engine_cnt_add(_Atomic uint64_t *c, uint64_t v)
{
	atomic_fetch_add_explicit(c, v, memory_order_relaxed);
}

#endif
