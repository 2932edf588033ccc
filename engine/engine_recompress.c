/* engine/engine_recompress.c - tiering's re-encoding of a stored chunk in place of its address:
 * decode, check against the stored SHA-256, encode with another codec, check the round trip,
 * then ftl_chunk_rewrite. It never changes what a reference reads as; it takes no engine lock
 * (L1) and changes no reference count, so dedupe, snapshots and clones keep sharing the chunk.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

static uint8_t flags_of(enum engine_codec codec, int level)
{
	uint8_t f = (uint8_t)(codec & ENGINE_FLAG_CODEC_MASK);
	if (codec == ENGINE_CODEC_ZSTD)
		f |= (uint8_t)((unsigned)level << ENGINE_FLAG_LEVEL_SHIFT) & ENGINE_FLAG_LEVEL_MASK;
	return f;
}

/* Whether a chunk stored with FLAGS is already what CODEC at LEVEL would make of it. A zstd
 * chunk from the write path carries no level: it is re-encoded when the target asks for zstd
 * (the write path's level is the pool's, normally lower than a cold level). */
static bool in_target(uint8_t flags, enum engine_codec codec, int level)
{
	enum engine_codec have = (enum engine_codec)(flags & ENGINE_FLAG_CODEC_MASK);
	int have_level = (flags & ENGINE_FLAG_LEVEL_MASK) >> ENGINE_FLAG_LEVEL_SHIFT;

	if (have != codec)
		return false;
	return codec != ENGINE_CODEC_ZSTD || (have_level && have_level >= level);
}

int engine_chunk_codec(struct engine *e, struct engine_ref ref, enum engine_codec *codec,
                       int *level)
{
	if (engine_ref_kind(ref) != ENGINE_REF_CHUNK)
		return -EINVAL;
	int f = ftl_chunk_flags(e->ftl, engine_ref_addr(ref));
	if (f < 0)
		return f;
	*codec = (enum engine_codec)(f & ENGINE_FLAG_CODEC_MASK);
	*level = (f & ENGINE_FLAG_LEVEL_MASK) >> ENGINE_FLAG_LEVEL_SHIFT;
	return 0;
}

/* Encodes BLOCK with CODEC/LEVEL into OUT (block_size bytes); returns its length, the block size
 * for a raw copy (CODEC none, or no saving worth having). */
static int encode(struct engine *e, enum engine_codec codec, int level, const uint8_t *block,
                  uint8_t *out, enum engine_codec *used)
{
	const void *z;
	uint32_t zlen;
	int rc = engine_codec_compress(codec, level, block, e->block_size, &z, &zlen);

	if (rc < 0)
		return rc;
	if (zlen == 0) {
		memcpy(out, block, e->block_size);
		*used = ENGINE_CODEC_NONE;
		return (int)e->block_size;
	}
	memcpy(out, z, zlen); /* the codec's buffer is reused by its next call */
	*used = codec;
	return (int)zlen;
}

int engine_chunk_recompress(struct engine *e, struct engine_ref ref, enum engine_codec codec,
                            int level, unsigned flags, struct engine_recompress *res)
{
	uint32_t bs = e->block_size;
	uint8_t hash[ENGINE_FP_LEN], have[ENGINE_FP_LEN], sflags = 0;
	struct engine_recompress r = {0};
	struct ftl_chunk_ver ver;
	enum engine_codec used = ENGINE_CODEC_NONE;
	uint8_t *buf = NULL;
	int n, rc;

	if (engine_ref_kind(ref) != ENGINE_REF_CHUNK || (unsigned)codec >= ENGINE_CODEC_COUNT)
		return -EINVAL;
	if (codec == ENGINE_CODEC_ZSTD) {
		if (level == 0)
			level = 3;
		if (level < 1 || level > 19)
			return -EINVAL;
	} else {
		level = 0;
	}
	struct ftl_addr addr = engine_ref_addr(ref);
	/* Repeating a pass over data already moved costs a RAM lookup per chunk. */
	int f = ftl_chunk_flags(e->ftl, addr);
	if (f < 0)
		return f;
	if (!(flags & ENGINE_RECOMPRESS_DRY_RUN) && in_target((uint8_t)f, codec, level)) {
		r.skipped = true;
		n = ftl_chunk_len(e->ftl, addr);
		r.old_len = r.new_len = n > 0 ? (uint32_t)n : 0;
		rc = 0;
		goto out;
	}
	/* stored bytes | decoded block | new bytes | round trip */
	buf = malloc((size_t)FTL_CHUNK_MAX + 3 * (size_t)bs);
	if (!buf)
		return -ENOMEM;
	uint8_t *stored = buf, *block = buf + FTL_CHUNK_MAX, *enc = block + bs, *back = enc + bs;
	n = ftl_read_ver(e->ftl, addr, stored, FTL_CHUNK_MAX, &sflags, &ver);
	if (n < 0) {
		rc = n == -EAGAIN ? -ESTALE : n;
		goto out;
	}
	r.old_len = r.new_len = (uint32_t)n;
	if (sflags & ~(ENGINE_FLAG_CODEC_MASK | ENGINE_FLAG_LEVEL_MASK)) {
		rc = -EINVAL; /* not a chunk the engine wrote (the fs's metadata) */
		goto out;
	}
	if (!(flags & ENGINE_RECOMPRESS_DRY_RUN) && in_target(sflags, codec, level)) {
		r.skipped = true;
		rc = 0;
		goto out;
	}
	rc = engine_chunk_decode(e, (enum engine_codec)(sflags & ENGINE_FLAG_CODEC_MASK), stored,
	                         (uint32_t)n, NULL, block);
	if (rc) {
		rc = rc == -ENOMEM ? rc : -EIO;
		goto out;
	}
	/* The block must be the one the chunk was stored as: a decoder that went wrong must not
	 * make wrong bytes permanent under a good checksum. */
	rc = ftl_read_hash(e->ftl, addr, hash);
	if (!rc)
		rc = engine_sha256(block, bs, have);
	if (rc)
		goto out;
	if (memcmp(hash, have, ENGINE_FP_LEN)) {
		rc = -EIO;
		goto out;
	}
	int m = encode(e, codec, level, block, enc, &used);
	if (m < 0) {
		rc = m;
		goto out;
	}
	r.new_len = (uint32_t)m;
	if ((uint32_t)m >= (uint32_t)n) {
		r.skipped = true; /* not smaller: keep what is there */
		rc = 0;
		goto out;
	}
	if (flags & ENGINE_RECOMPRESS_DRY_RUN) {
		rc = n - m;
		goto out;
	}
	rc = engine_chunk_decode(e, used, enc, (uint32_t)m, NULL, back);
	if (rc || memcmp(back, block, bs)) {
		rc = rc == -ENOMEM ? rc : -EIO;
		goto out;
	}
	rc = ftl_chunk_rewrite(e->ftl, addr, &ver, enc, (uint32_t)m, flags_of(used, level));
	if (rc == 0)
		rc = n - m;
out:
	free(buf);
	if (res)
		*res = r;
	return rc;
}
