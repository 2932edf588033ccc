/* engine/engine.h - public interface of the inline data-reduction engine.
 *
 * Turns a fixed-size block into a reference (zero, repeating pattern, or a deduplicated and
 * compressed chunk in the FTL) and back. Knows nothing of volumes or offsets: the caller maps
 * those to references. All functions return 0 (or a non-negative count) or -errno.
 */
#ifndef PSTOR_ENGINE_H
#define PSTOR_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ftl.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A reference to one block's content. 64 bits so block maps stay small:
 *   bits 63..62 kind: ENGINE_REF_ZERO, ENGINE_REF_PATTERN, ENGINE_REF_CHUNK
 *   PATTERN: bit 61 set = pattern table index in the low bits (periods 8..16 bytes);
 *            clear = inline: period (1..7) in bits 58..56, pattern bytes in bits 55..0
 *   CHUNK:   FTL chunk address in the low 62 bits
 * ENGINE_REF_ZERO with all other bits clear is the all-zero block (also what a hole reads as).
 */
struct engine_ref {
	uint64_t v;
};

enum engine_ref_kind {
	ENGINE_REF_ZERO = 0,
	ENGINE_REF_PATTERN = 1,
	ENGINE_REF_CHUNK = 2,
};

#define ENGINE_REF_ZERO_VALUE ((struct engine_ref){0})

static inline enum engine_ref_kind engine_ref_kind(struct engine_ref r)
{
	return (enum engine_ref_kind)(r.v >> 62);
}

/* Codecs, one X-macro list so the names and the enum cannot drift apart. */
#define ENGINE_CODEC_LIST(X)                                                                       \
	X(NONE, "none")                                                                            \
	X(LZ4, "lz4")                                                                              \
	X(ZSTD, "zstd")

enum engine_codec {
#define ENGINE_CODEC_ENUM(name, str) ENGINE_CODEC_##name,
	ENGINE_CODEC_LIST(ENGINE_CODEC_ENUM)
#undef ENGINE_CODEC_ENUM
	    ENGINE_CODEC_COUNT
};

const char *engine_codec_name(enum engine_codec c);
/* Parses "none", "lz4", "zstd" or "zstd:LEVEL" (1..19). -EINVAL on anything else. */
int engine_codec_parse(const char *s, enum engine_codec *codec, int *level);

struct engine_config {
	struct ftl *ftl;         /* not owned */
	uint32_t block_size;     /* 4096..65536, power of two */
	enum engine_codec codec; /* ENGINE_CODEC_LZ4 by default (0 means NONE: set it) */
	int level;               /* zstd level, 0 = 3 */
	bool dedupe;             /* look blocks up in the fingerprint index */
};

struct engine;

/* Opens the engine over an open FTL. The fingerprint index starts empty; engine_index_add()
 * fills it from chunks found at FTL open (the FTL's scan callback). */
int engine_open(const struct engine_config *cfg, struct engine **out);
void engine_close(struct engine *e); /* NULL is a no-op */

/* Live settings (thread-safe; take effect for the next block written). */
int engine_set_codec(struct engine *e, enum engine_codec codec, int level);
void engine_set_dedupe(struct engine *e, bool on);

/* Reduces one block of block_size bytes into *OUT, which holds one reference the caller owns.
 * PREV is the reference this block replaces (a hint for data placement; it is NOT released).
 * Errors: -ENOSPC, -EIO, -ENOMEM. Thread-safe: call from many threads at once. */
int engine_write(struct engine *e, const void *block, struct engine_ref prev,
                 struct engine_ref *out);
/* engine_write that also gives the block's SHA-256 fingerprint in FP when the block became or
 * deduplicated to a chunk (a reference of kind ENGINE_REF_CHUNK); FP is left alone for zero and
 * pattern blocks, whose reference says all there is. The fingerprint names the data on any box
 * (the reference only on this one): the change stream carries it. */
#define ENGINE_FP_LEN 32
int engine_write_fp(struct engine *e, const void *block, struct engine_ref prev,
                    struct engine_ref *out, uint8_t fp[ENGINE_FP_LEN]);

/* engine_write_fp of N blocks one after the other in BLOCKS, into OUT[i] with PREV[i] and FP[i]
 * (FP may be NULL) for block i: the same references and counters, but the FTL gets each batch of
 * new chunks at once (ftl_write_many), so a large write takes the FTL's stream lock once a
 * batch, not once a block. 0, or the first error with no reference left taken. */
int engine_write_run(struct engine *e, const void *blocks, uint32_t n,
                     const struct engine_ref *prev, struct engine_ref *out,
                     uint8_t (*fp)[ENGINE_FP_LEN]);

/* engine_write of a block whose SHA-256 the caller has just checked (FP, engine_chunk_decode's
 * check of a block from another box): the block is not hashed again. */
int engine_write_hashed(struct engine *e, const void *block, const uint8_t fp[ENGINE_FP_LEN],
                        struct engine_ref prev, struct engine_ref *out);

/* Restores the block behind REF into BLOCK (block_size bytes). -EIO when the stored chunk fails
 * its checksum or does not decompress to exactly one block; never wrong data. -ENOENT for a
 * reference to a chunk that does not exist. */
int engine_read(struct engine *e, struct engine_ref ref, void *block);
/* The calling thread is about to read many blocks (BYTES of them, 0 = done): their chunks are
 * read ahead where they lie together on the device (ftl_read_ahead). */
void engine_read_ahead(struct engine *e, uint32_t bytes);

/* Reference counting, for snapshots and clones that share blocks. Zero refs are free. */
int engine_ref_get(struct engine *e, struct engine_ref ref);
/* Drops one reference; the chunk is freed in the FTL when its last reference goes. */
int engine_ref_put(struct engine *e, struct engine_ref ref);
/* Current reference count of a chunk or table pattern (inline patterns and zero: 0). */
int64_t engine_ref_count(struct engine *e, struct engine_ref ref);

/* Rebuild support: registers a chunk found on flash with its hash and reference count. Reads
 * nothing from flash: HASH may be the FTL_SCAN_HASH_PREFIX bytes a checkpoint keeps (the rest
 * zero), and copies of one content may each be added (write-time lookups verify). */
int engine_index_add(struct engine *e, struct ftl_addr addr, const uint8_t hash[32], uint32_t refs);

/* Patterns of 8..16 bytes live in an in-memory table that the owner of the block maps must
 * persist: engine_ref_is_table_pattern() tells which references need it, engine_ref_pattern()
 * copies the pattern out (returns its period), and engine_pattern_restore() puts it back at
 * the same table index with REFS references when the maps are loaded. */
bool engine_ref_is_table_pattern(struct engine_ref ref);
int engine_ref_pattern(struct engine *e, struct engine_ref ref, uint8_t pat[16]);
int engine_pattern_restore(struct engine *e, struct engine_ref ref, const uint8_t pat[16],
                           uint32_t period, uint32_t refs);

/* Replication (engine_replica.c). A fingerprint names a block on any box; these let a box
 * send a chunk as it is stored and another box check and reuse it. */
/* Takes a reference on the chunk holding the block whose SHA-256 is FP, when this box holds
 * one (checked against the full hash kept with the chunk). -ENOENT when it does not. */
int engine_find_fp(struct engine *e, const uint8_t fp[ENGINE_FP_LEN], struct engine_ref *out);
/* The fingerprint kept with a chunk (from its summary: no payload read). -EINVAL for a
 * reference that is not a chunk. */
int engine_ref_fp(struct engine *e, struct engine_ref ref, uint8_t fp[ENGINE_FP_LEN]);
/* Copies the chunk's bytes as stored into BUF (CAP >= block size) and its codec into *CODEC;
 * returns the length. */
int engine_chunk_export(struct engine *e, struct engine_ref ref, void *buf, uint32_t cap,
                        enum engine_codec *codec);
/* engine_write of a block whose content this box already holds as HELD, a CHUNK reference the
 * caller owns (engine_find_fp's): *OUT is one more reference on it, counted as a written block
 * that deduplicated. Nothing is read, hashed or compressed. -EINVAL for another kind, -ENOENT
 * for a chunk that does not exist, -EOVERFLOW when its count is full. */
int engine_write_held(struct engine *e, struct engine_ref held, struct engine_ref *out);
/* Turns stored bytes from another box into BLOCK (block size bytes), and checks that the block's
 * SHA-256 is FP (unless FP is NULL): -EBADMSG when it does not decode to a block or is not that
 * block. */
int engine_chunk_decode(struct engine *e, enum engine_codec codec, const void *src, uint32_t len,
                        const uint8_t fp[ENGINE_FP_LEN], void *block);

/* Tiering (engine_recompress.c): re-encodes a stored chunk with another codec in place of its
 * address (ftl_chunk_rewrite), so no reference, map or count changes; a chunk shared by dedupe,
 * snapshots or clones is re-encoded once for all of them. The stored flags keep the codec and,
 * for chunks re-encoded here, the zstd level (ENGINE_LEVEL_* below), so a chunk already in the
 * target encoding is skipped from RAM, without a device read. */
struct engine_recompress {
	uint32_t old_len, new_len; /* stored bytes before, and after (or what they would be) */
	bool skipped;              /* already in the target encoding, or the new one not smaller */
};
enum {
	ENGINE_RECOMPRESS_DRY_RUN = 1u << 0, /* measure only: encode in memory, write nothing */
};
/* Decodes the chunk behind REF, checks the block against the SHA-256 stored with it, encodes it
 * with CODEC at LEVEL (zstd 1..19; 0 = the default), checks that the new bytes decode to the same
 * block, and rewrites the chunk when they are smaller. Returns the stored bytes saved (0 when
 * skipped) or: -EINVAL (REF is not a chunk, or a bad codec/level), -ESTALE (the chunk was freed,
 * moved or rewritten meanwhile: nothing changed, harmless), -ENOENT, -EIO (it does not decode or
 * does not match its hash: left alone), -ENOSPC (free space is down to GC's reserve), -ENOMEM.
 * RES (may be NULL) gets the sizes. Thread-safe; holds no engine lock (L1). */
int engine_chunk_recompress(struct engine *e, struct engine_ref ref, enum engine_codec codec,
                            int level, unsigned flags, struct engine_recompress *res);
/* The stored codec of the chunk behind REF and its zstd level when known (0: written by the write
 * path at the pool's level), from RAM. -EINVAL (not a chunk), -ENOENT. */
int engine_chunk_codec(struct engine *e, struct engine_ref ref, enum engine_codec *codec,
                       int *level);

struct engine_stats {
	uint64_t blocks_written; /* blocks given to engine_write */
	uint64_t logical_bytes;  /* blocks_written * block_size */
	uint64_t pattern_blocks; /* removed as zero or repeating pattern */
	uint64_t pattern_bytes;
	uint64_t dedupe_blocks; /* found in the index */
	uint64_t dedupe_bytes;
	uint64_t compressed_blocks; /* new chunks stored compressed */
	uint64_t raw_blocks;        /* new chunks stored raw (compression saved < 1/8) */
	uint64_t raw_probed_blocks; /* of those, judged random by a sample: no compression tried */
	uint64_t stored_bytes;      /* chunk payload bytes written to the FTL */
	uint64_t compression_saved_bytes; /* new-chunk input bytes minus stored bytes */
	uint64_t unique_chunks;           /* chunks currently referenced */
	uint64_t index_entries;
	uint64_t hash_verify_misses;    /* index tag matched, full hash did not */
	uint64_t read_errors;           /* -EIO on read (checksum or decompression) */
	uint64_t mem_index_bytes;       /* RAM of the fingerprint index */
	uint64_t mem_chunk_table_bytes; /* RAM of the chunk (reference count) table */
	double pattern_ratio, dedupe_ratio, compression_ratio, total_ratio;
};
void engine_get_stats(struct engine *e, struct engine_stats *st);
int engine_stats_to_text(const struct engine_stats *st, char *buf, size_t len);
int engine_stats_to_json(const struct engine_stats *st, char *buf, size_t len);

/* Pure helpers, exposed for tests and benchmarks. */

/* If BLOCK is one pattern of 1..16 bytes repeated (the last copy may be cut short), stores the
 * shortest such pattern in PAT and returns its period; returns 0 otherwise. */
int engine_pattern_detect(const void *block, uint32_t len, uint8_t pat[16]);

/* SHA-256 of LEN bytes (OpenSSL EVP). */
int engine_sha256(const void *data, size_t len, uint8_t out[32]);

#ifdef __cplusplus
}
#endif
#endif
