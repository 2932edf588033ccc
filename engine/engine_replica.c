/* engine/engine_replica.c - what the replication link needs of the engine: name a chunk by its
 * fingerprint on any box, hand its bytes over as they are stored (compressed or not), and
 * turn bytes that came from another box back into a block only once they prove to be it.
 */
#include <errno.h>
#include <string.h>

#include "engine_int.h"

int engine_find_fp(struct engine *e, const uint8_t fp[ENGINE_FP_LEN], struct engine_ref *out)
{
	struct engine_index_shard *s = engine_idx_shard(&e->index, fp);
	uint64_t id;
	int rc;

	engine_idx_lock(s);
	rc = engine_dedupe_take(e, s, fp, &id);
	engine_idx_unlock(s);
	if (rc == -EOVERFLOW)
		return -ENOENT; /* held, but no reference left to give: the caller stores a copy */
	if (rc)
		return rc;
	*out = engine_chunk_ref(id);
	return 0;
}

int engine_write_held(struct engine *e, struct engine_ref held, struct engine_ref *out)
{
	int rc;

	if (engine_ref_kind(held) != ENGINE_REF_CHUNK)
		return -EINVAL;
	rc = engine_chunks_inc(&e->chunks, engine_ref_addr(held).v);
	if (rc)
		return rc; /* -ENOENT: not a chunk held; -EOVERFLOW: its count is full */
	engine_cnt_add(&e->cnt.blocks_written, 1);
	engine_cnt_add(&e->cnt.dedupe_blocks, 1);
	*out = held;
	return 0;
}

int engine_ref_fp(struct engine *e, struct engine_ref ref, uint8_t fp[ENGINE_FP_LEN])
{
	if (engine_ref_kind(ref) != ENGINE_REF_CHUNK)
		return -EINVAL;
	return ftl_read_hash(e->ftl, engine_ref_addr(ref), fp);
}

int engine_chunk_export(struct engine *e, struct engine_ref ref, void *buf, uint32_t cap,
                        enum engine_codec *codec)
{
	uint8_t flags = 0;
	int n;

	if (engine_ref_kind(ref) != ENGINE_REF_CHUNK)
		return -EINVAL;
	if (cap < e->block_size)
		return -ENOBUFS;
	n = ftl_read(e->ftl, engine_ref_addr(ref), buf, cap, &flags);
	if (n < 0)
		return n;
	*codec = (enum engine_codec)(flags & ENGINE_FLAG_CODEC_MASK);
	if (*codec >= ENGINE_CODEC_COUNT ||
	    (*codec == ENGINE_CODEC_NONE && (uint32_t)n != e->block_size))
		return -EIO; /* not a chunk this engine wrote */
	return n;
}

int engine_chunk_decode(struct engine *e, enum engine_codec codec, const void *src, uint32_t len,
                        const uint8_t fp[ENGINE_FP_LEN], void *block)
{
	uint8_t hash[ENGINE_FP_LEN];
	int rc;

	if ((unsigned)codec >= ENGINE_CODEC_COUNT || len > e->block_size)
		return -EBADMSG;
	if (codec == ENGINE_CODEC_NONE) {
		if (len != e->block_size)
			return -EBADMSG;
		memcpy(block, src, len);
	} else {
		rc = engine_codec_decompress(codec, src, len, block, e->block_size);
		if (rc)
			return rc == -ENOMEM ? rc : -EBADMSG;
	}
	/* Bytes from another box are trusted only once they hash to the name they came under:
	 * a wrong block stored under a fingerprint would poison every later dedupe hit. (Without
	 * a name the caller stores the block through engine_write, which hashes it itself.) */
	if (!fp)
		return 0;
	rc = engine_sha256(block, e->block_size, hash);
	if (rc)
		return rc;
	return memcmp(hash, fp, ENGINE_FP_LEN) ? -EBADMSG : 0;
}
