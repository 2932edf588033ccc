/* engine/engine_core.c - open/close, the write path (pattern -> dedupe -> compress -> FTL), the
 * read path, and reference counting. It must not know volumes or offsets, and touches the
 * device only through ftl.h. The locking rules (L1-L8) are at the top of engine_int.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

#define PATTAB_MAX_ENTRIES (1u << 20)

static _Atomic int engines_open;

static int check_level(enum engine_codec codec, int *level)
{
	if ((unsigned)codec >= ENGINE_CODEC_COUNT)
		return -EINVAL;
	if (codec != ENGINE_CODEC_ZSTD) {
		*level = 0;
		return 0;
	}
	if (*level == 0)
		*level = 3;
	return *level >= 1 && *level <= 19 ? 0 : -EINVAL;
}

int engine_open(const struct engine_config *cfg, struct engine **out)
{
	uint32_t bs = cfg ? cfg->block_size : 0;
	int level = cfg ? cfg->level : 0;
	struct engine *e;
	int rc;

	if (!cfg || !cfg->ftl || !out || bs < 4096 || bs > ENGINE_BLOCK_MAX || (bs & (bs - 1)))
		return -EINVAL;
	rc = check_level(cfg->codec, &level);
	if (rc)
		return rc;
	e = aligned_alloc(ENGINE_CACHELINE,
	                  (sizeof(*e) + ENGINE_CACHELINE - 1) & ~(size_t)(ENGINE_CACHELINE - 1));
	if (!e)
		return -ENOMEM;
	memset(e, 0, sizeof(*e));
	e->ftl = cfg->ftl;
	e->block_size = bs;
	atomic_init(&e->codec, engine_codec_pack(cfg->codec, level));
	atomic_init(&e->dedupe, cfg->dedupe);
	rc = engine_idx_init(&e->index);
	if (rc)
		goto err_free_engine;
	rc = engine_chunks_init(&e->chunks, 0);
	if (rc)
		goto err_destroy_index;
	rc = engine_pattab_init(&e->pattab, PATTAB_MAX_ENTRIES);
	if (rc)
		goto err_destroy_chunks;
	atomic_fetch_add(&engines_open, 1);
	*out = e;
	return 0;

err_destroy_chunks:
	engine_chunks_destroy(&e->chunks);
err_destroy_index:
	engine_idx_destroy(&e->index);
err_free_engine:
	free(e);
	return rc;
}

void engine_close(struct engine *e)
{
	if (!e)
		return;
	engine_pattab_destroy(&e->pattab);
	engine_chunks_destroy(&e->chunks);
	engine_idx_destroy(&e->index);
	free(e);
	/* Other threads free their contexts when they exit (pthread key destructors); the thread
	 * closing the last engine frees its own now. */
	if (atomic_fetch_sub(&engines_open, 1) == 1) {
		engine_codec_thread_release();
		engine_hash_thread_release();
	}
}

int engine_set_codec(struct engine *e, enum engine_codec codec, int level)
{
	int rc = check_level(codec, &level);

	if (rc)
		return rc;
	atomic_store(&e->codec, engine_codec_pack(codec, level));
	return 0;
}

void engine_set_dedupe(struct engine *e, bool on)
{
	atomic_store(&e->dedupe, on);
}

/* ---- write path ----------------------------------------------------------------------- */

static int write_pattern(struct engine *e, const uint8_t *pat, uint32_t period,
                         struct engine_ref *out)
{
	uint64_t v = (uint64_t)ENGINE_REF_PATTERN << ENGINE_REF_KIND_SHIFT;
	uint32_t index;
	int rc;

	if (period == 1 && pat[0] == 0) {
		*out = ENGINE_REF_ZERO_VALUE;
		return 0;
	}
	if (period <= ENGINE_PAT_INLINE_MAX) {
		v |= (uint64_t)period << ENGINE_REF_PAT_PSHIFT;
		for (uint32_t i = 0; i < period; i++)
			v |= (uint64_t)pat[i] << (8 * i);
		out->v = v;
		return 0;
	}
	rc = engine_pattab_acquire(&e->pattab, pat, period, &index);
	if (rc)
		return rc;
	out->v = v | ENGINE_REF_PAT_TABLE | index;
	return 0;
}

struct verify_arg {
	struct engine *e;
	const uint8_t *hash;
};

/* The index keeps 28 bits of the hash: a tag match is confirmed with the full hash stored with
 * the chunk. A hash that cannot be read counts as a mismatch (the block is stored again). */
static int verify_match(void *arg, uint64_t id)
{
	struct verify_arg *va = arg;
	uint8_t h[FTL_HASH_LEN];

	if (ftl_read_hash(va->e->ftl, (struct ftl_addr){id}, h) == 0 &&
	    !memcmp(h, va->hash, FTL_HASH_LEN))
		return 1;
	engine_cnt_add(&va->e->cnt.hash_verify_misses, 1);
	return 0;
}

/* Under the shard lock (L2): finds a chunk holding HASH and takes a reference on it.
 * -ENOENT: none; -EOVERFLOW: found but its count is full (store a separate copy). */
int engine_dedupe_take(struct engine *e, struct engine_index_shard *s, const uint8_t *hash,
                       uint64_t *id)
{
	struct verify_arg va = {e, hash};
	int rc = engine_idx_lookup(&e->index, s, hash, verify_match, &va, id);

	if (rc)
		return rc;
	rc = engine_chunks_inc(&e->chunks, *id);
	/* Indexed chunks have a count >= 1 (L3), so -ENOENT cannot happen; treat it as a miss. */
	return rc;
}

int engine_write(struct engine *e, const void *block, struct engine_ref prev,
                 struct engine_ref *out)
{
	return engine_write_fp(e, block, prev, out, NULL);
}

static int write_block(struct engine *e, const void *block, const uint8_t *known,
                       struct engine_ref prev, struct engine_ref *out, uint8_t fp[ENGINE_FP_LEN]);

int engine_write_fp(struct engine *e, const void *block, struct engine_ref prev,
                    struct engine_ref *out, uint8_t fp[ENGINE_FP_LEN])
{
	return write_block(e, block, NULL, prev, out, fp);
}

int engine_write_hashed(struct engine *e, const void *block, const uint8_t fp[ENGINE_FP_LEN],
                        struct engine_ref prev, struct engine_ref *out)
{
	return write_block(e, block, fp, prev, out, NULL);
}

/* ---- the write path's stages: one block (write_block) or a run (engine_write_run) ----- */

/* What engine_write_run keeps of a block between its stages. */
struct run_block {
	enum { RUN_NONE, RUN_REF, RUN_MISS } state; /* RUN_REF: OUT holds its reference */
	bool indexable;                             /* to be indexed once stored */
	bool probed;   /* looked random: stored raw without a compression attempt */
	uint32_t item; /* RUN_MISS: its FTL item */
	uint8_t hash[FTL_HASH_LEN];
};

/* Stage 1 for one block: pattern, hash, dedupe, compression into STAGE at *STAGED. A pattern or
 * a dedupe hit sets OUT (RUN_REF); a miss fills IT (RUN_MISS). */
static int run_reduce(struct engine *e, const uint8_t *block, const uint8_t *known,
                      struct engine_ref prev, struct engine_ref *out, uint8_t *fp,
                      struct run_block *b, struct ftl_write_item *it, uint8_t *stage,
                      size_t *staged)
{
	uint32_t bs = e->block_size, codec, len;
	uint8_t pat[ENGINE_PAT_MAX];
	uint64_t id;
	int period, rc;

	engine_cnt_add(&e->cnt.blocks_written, 1);
	period = engine_pattern_detect(block, bs, pat);
	if (period) {
		rc = write_pattern(e, pat, (uint32_t)period, out);
		if (rc == 0) {
			engine_cnt_add(&e->cnt.pattern_blocks, 1);
			b->state = RUN_REF;
			return 0;
		}
		if (rc != -ENOSPC)
			return rc;
		/* Pattern table full: store the block as an ordinary chunk. */
	}
	if (known) {
		memcpy(b->hash, known, FTL_HASH_LEN);
	} else {
		rc = engine_sha256(block, bs, b->hash);
		if (rc)
			return rc;
	}
	if (fp)
		memcpy(fp, b->hash, ENGINE_FP_LEN);
	b->indexable = atomic_load_explicit(&e->dedupe, memory_order_relaxed);
	if (b->indexable) {
		struct engine_index_shard *s = engine_idx_shard(&e->index, b->hash);
		engine_idx_lock(s);
		rc = engine_dedupe_take(e, s, b->hash, &id);
		engine_idx_unlock(s);
		if (rc == 0) {
			engine_cnt_add(&e->cnt.dedupe_blocks, 1);
			*out = engine_chunk_ref(id);
			b->state = RUN_REF;
			return 0;
		}
		if (rc == -EOVERFLOW)
			b->indexable = false;
	}
	/* Miss: compress outside any lock (L1); the FTL stores it with its batch. */
	codec = atomic_load_explicit(&e->codec, memory_order_relaxed);
	rc = engine_codec_compress_into((enum engine_codec)(codec & 0xff), (int)(codec >> 8), block,
	                                bs, stage + *staged, &len);
	if (rc < 0)
		return rc;
	b->probed = rc == 1;
	*it = (struct ftl_write_item){.hash = b->hash,
	                              .opts = {.prev = FTL_ADDR_NONE, .flags = ENGINE_CODEC_NONE}};
	if (len) {
		it->data = stage + *staged;
		it->len = len;
		it->opts.flags = (uint8_t)(codec & ENGINE_FLAG_CODEC_MASK);
		*staged += len;
	} else {
		it->data = block;
		it->len = bs;
	}
	if (engine_ref_kind(prev) == ENGINE_REF_CHUNK)
		it->opts.prev = engine_ref_addr(prev);
	b->state = RUN_MISS;
	return 0;
}

/* Stage 3 for one stored block: its reference, and its index entry unless another writer
 * stored the same block meanwhile (L4), whose chunk it then shares. On error the chunk is
 * freed, or kept where it must be (an id still counted live). */
static int run_adopt(struct engine *e, struct run_block *b, const struct ftl_write_item *it,
                     struct engine_ref *out)
{
	uint32_t bs = e->block_size;
	uint64_t id;
	int rc = engine_chunks_create(&e->chunks, it->out.v, 1);

	if (rc == -EEXIST)
		return -EIO; /* the FTL handed out an id we still count as live: do not free it */
	if (rc) {
		ftl_free(e->ftl, it->out);
		return rc == -ERANGE ? -ENOSPC : rc;
	}
	if (b->indexable) {
		struct engine_index_shard *s = engine_idx_shard(&e->index, b->hash);
		engine_idx_lock(s);
		/* Someone may have stored the same block while we reduced and stored ours (L4). */
		rc = engine_dedupe_take(e, s, b->hash, &id);
		if (rc == 0) {
			engine_idx_unlock(s);
			engine_chunks_clear(&e->chunks, it->out.v);
			ftl_free(e->ftl, it->out);
			engine_cnt_add(&e->cnt.dedupe_blocks, 1);
			*out = engine_chunk_ref(id);
			return 0;
		}
		/* Without memory to grow the index the chunk stays valid, just not deduplicable;
		 * a full-count twin (-EOVERFLOW) keeps the index entry. */
		if (rc == -ENOENT)
			engine_idx_insert(&e->index, s, b->hash, it->out.v);
		engine_idx_unlock(s);
	}
	engine_cnt_add(&e->cnt.unique_chunks, 1);
	engine_cnt_add(it->len < bs ? &e->cnt.compressed_blocks : &e->cnt.raw_blocks, 1);
	if (b->probed)
		engine_cnt_add(&e->cnt.raw_probed_blocks, 1);
	engine_cnt_add(&e->cnt.stored_bytes, it->len);
	*out = engine_chunk_ref(it->out.v);
	return 0;
}

int engine_write_run(struct engine *e, const void *blocks, uint32_t n,
                     const struct engine_ref *prev, struct engine_ref *out,
                     uint8_t (*fp)[ENGINE_FP_LEN])
{
	struct run_block rb[FTL_WRITE_MANY_MAX];
	struct ftl_write_item items[FTL_WRITE_MANY_MAX];
	const uint8_t *src = blocks;
	uint32_t bs = e->block_size, batch = ENGINE_RUN_BYTES / bs, first, k = 0, nitems;
	bool written = false;
	uint8_t *stage = engine_codec_stage();
	int rc = 0;

	if (!stage)
		return -ENOMEM;
	/* At most ENGINE_RUN_BYTES of blocks, or one larger block: each compressed block is under
	 * 7/8 of a block, so a batch's fit in the stage's ENGINE_BLOCK_MAX. */
	if (batch > FTL_WRITE_MANY_MAX)
		batch = FTL_WRITE_MANY_MAX;
	if (batch < 1)
		batch = 1;
	for (first = 0; first < n; first += k) {
		size_t staged = 0;
		k = n - first < batch ? n - first : batch;
		nitems = 0;
		written = false;
		for (uint32_t i = 0; i < k; i++)
			rb[i].state = RUN_NONE;
		for (uint32_t i = 0; i < k; i++) {
			rc = run_reduce(e, src + (size_t)(first + i) * bs, NULL, prev[first + i],
			                &out[first + i], fp ? fp[first + i] : NULL, &rb[i],
			                &items[nitems], stage, &staged);
			if (rc)
				goto err_batch;
			if (rb[i].state == RUN_MISS)
				rb[i].item = nitems++;
		}
		rc = ftl_write_many(e->ftl, items, nitems);
		if (rc)
			goto err_batch; /* none of them is written */
		written = true;
		for (uint32_t i = 0; i < k; i++) {
			if (rb[i].state != RUN_MISS)
				continue;
			rc = run_adopt(e, &rb[i], &items[rb[i].item], &out[first + i]);
			rb[i].state = rc ? RUN_NONE : RUN_REF;
			if (rc)
				goto err_batch;
		}
	}
	return 0;

err_batch:
	/* Nothing of the run stays: this batch's references and stored chunks not yet adopted,
	 * and every earlier batch's references. */
	for (uint32_t i = 0; i < k; i++) {
		if (rb[i].state == RUN_REF)
			engine_ref_put(e, out[first + i]);
		else if (rb[i].state == RUN_MISS && written)
			ftl_free(e->ftl, items[rb[i].item].out);
	}
	for (uint32_t i = 0; i < first; i++)
		engine_ref_put(e, out[i]);
	return rc;
}

/* One block: engine_write_run's stages for it alone. KNOWN: the block's SHA-256 as the caller
 * checked it, or NULL to compute it here. */
static int write_block(struct engine *e, const void *block, const uint8_t *known,
                       struct engine_ref prev, struct engine_ref *out, uint8_t fp[ENGINE_FP_LEN])
{
	struct run_block b = {.state = RUN_NONE};
	struct ftl_write_item it;
	uint8_t *stage = engine_codec_stage();
	size_t staged = 0;
	int rc;

	if (!stage)
		return -ENOMEM;
	rc = run_reduce(e, block, known, prev, out, fp, &b, &it, stage, &staged);
	if (rc || b.state == RUN_REF)
		return rc;
	rc = ftl_write_many(e->ftl, &it, 1);
	if (rc)
		return rc;
	return run_adopt(e, &b, &it, out);
}

/* ---- read path ------------------------------------------------------------------------ */

/* The payload is verified and decompressed where the FTL read it (ftl_read_view): one copy for a
 * raw chunk, none before the decompressor for a compressed one. */
static int read_chunk(struct engine *e, struct ftl_addr addr, void *block)
{
	uint32_t bs = e->block_size;
	uint8_t flags = 0;
	const void *src;
	int n, rc;

	n = ftl_read_view(e->ftl, addr, &src, &flags);
	if (n < 0) {
		if (n == -EIO)
			engine_cnt_add(&e->cnt.read_errors, 1);
		return n;
	}
	if ((uint32_t)n > bs)
		goto err_corrupt; /* longer than a block: not something we wrote */
	if ((flags & ENGINE_FLAG_CODEC_MASK) == ENGINE_CODEC_NONE) {
		if ((uint32_t)n != bs)
			goto err_corrupt;
		memcpy(block, src, bs);
		return 0;
	}
	rc = engine_codec_decompress((enum engine_codec)(flags & ENGINE_FLAG_CODEC_MASK), src,
	                             (uint32_t)n, block, bs);
	if (rc == -ENOMEM)
		return rc;
	if (rc)
		goto err_corrupt;
	return 0;

err_corrupt:
	engine_cnt_add(&e->cnt.read_errors, 1);
	return -EIO;
}

void engine_read_ahead(struct engine *e, uint32_t bytes)
{
	ftl_read_ahead(e->ftl, bytes);
}

int engine_read(struct engine *e, struct engine_ref ref, void *block)
{
	uint8_t pat[ENGINE_PAT_MAX];
	uint32_t period;
	int rc;

	switch (engine_ref_kind(ref)) {
	case ENGINE_REF_ZERO:
		if (ref.v)
			return -EINVAL;
		memset(block, 0, e->block_size);
		return 0;
	case ENGINE_REF_PATTERN:
		if (ref.v & ENGINE_REF_PAT_TABLE) {
			rc = engine_pattab_lookup(
			    &e->pattab, (uint32_t)(ref.v & ENGINE_REF_PAT_INDEX), pat, &period);
			if (rc)
				return rc;
		} else {
			period = (uint32_t)(ref.v >> ENGINE_REF_PAT_PSHIFT) & 7;
			if (!period)
				return -EINVAL;
			for (uint32_t i = 0; i < period; i++)
				pat[i] = (uint8_t)(ref.v >> (8 * i));
		}
		engine_pattern_fill(block, e->block_size, pat, period);
		return 0;
	case ENGINE_REF_CHUNK:
		return read_chunk(e, engine_ref_addr(ref), block);
	default:
		return -EINVAL;
	}
}

/* ---- reference counting --------------------------------------------------------------- */

static int pattab_index(struct engine_ref ref, uint32_t *index)
{
	if (!(ref.v & ENGINE_REF_PAT_TABLE))
		return 0;
	if ((ref.v & ENGINE_REF_PAT_INDEX) > UINT32_MAX)
		return -ENOENT;
	*index = (uint32_t)(ref.v & ENGINE_REF_PAT_INDEX);
	return 1;
}

int engine_ref_get(struct engine *e, struct engine_ref ref)
{
	uint32_t index;
	int rc;

	switch (engine_ref_kind(ref)) {
	case ENGINE_REF_ZERO:
		return ref.v ? -EINVAL : 0;
	case ENGINE_REF_PATTERN:
		rc = pattab_index(ref, &index);
		return rc <= 0 ? rc : engine_pattab_get(&e->pattab, index);
	case ENGINE_REF_CHUNK:
		return engine_chunks_inc(&e->chunks, engine_ref_addr(ref).v);
	default:
		return -EINVAL;
	}
}

/* The last reference (L3): the count goes 1 -> 0 under the shard lock, together with the index
 * removal, so a concurrent dedupe hit either took its reference before (and the chunk lives) or
 * finds no entry. The chunk is freed in the FTL after the lock is dropped. */
static int chunk_put(struct engine *e, struct ftl_addr addr)
{
	uint8_t hash[FTL_HASH_LEN];
	struct engine_index_shard *s;
	int rc;

	rc = engine_chunks_dec(&e->chunks, addr.v);
	if (rc)
		return rc < 0 ? rc : 0;
	/* The shard and the index tag come from the hash's first bytes (engine_index.c), which the
	 * FTL keeps in RAM: no device read to drop a last reference. On an O_DIRECT device a
	 * commit releasing many overwritten chunks would otherwise read a pack header for each
	 * (an unmount after random overwrites took tens of seconds). The whole hash from flash
	 * is the fallback, read before locking: that may do device I/O. */
	memset(hash, 0, sizeof(hash));
	if (ftl_hash_prefix(e->ftl, addr, hash) == 0 || ftl_read_hash(e->ftl, addr, hash) == 0) {
		s = engine_idx_shard(&e->index, hash);
		engine_idx_lock(s);
		rc = engine_chunks_dec_last(&e->chunks, addr.v);
		if (rc == 1)
			engine_idx_remove(&e->index, s, hash, addr.v);
		engine_idx_unlock(s);
	} else {
		/* Hash unreadable: drop the count (dedupe hits refuse 0, L3) and scan for the id.
		 */
		rc = engine_chunks_dec_last(&e->chunks, addr.v);
		if (rc == 1)
			engine_idx_remove_id(&e->index, addr.v);
	}
	if (rc != 1)
		return rc < 0 ? rc : 0;
	atomic_fetch_sub_explicit(&e->cnt.unique_chunks, 1, memory_order_relaxed);
	rc = ftl_free(e->ftl, addr);
	return rc == -ENOENT ? -EIO : rc;
}

int engine_ref_put(struct engine *e, struct engine_ref ref)
{
	uint32_t index;
	int rc;

	switch (engine_ref_kind(ref)) {
	case ENGINE_REF_ZERO:
		return ref.v ? -EINVAL : 0;
	case ENGINE_REF_PATTERN:
		rc = pattab_index(ref, &index);
		return rc <= 0 ? rc : engine_pattab_put(&e->pattab, index);
	case ENGINE_REF_CHUNK:
		return chunk_put(e, engine_ref_addr(ref));
	default:
		return -EINVAL;
	}
}

int64_t engine_ref_count(struct engine *e, struct engine_ref ref)
{
	uint32_t index;

	switch (engine_ref_kind(ref)) {
	case ENGINE_REF_PATTERN:
		if (pattab_index(ref, &index) <= 0)
			return 0;
		return engine_pattab_count(&e->pattab, index);
	case ENGINE_REF_CHUNK:
		return engine_chunks_count(&e->chunks, engine_ref_addr(ref).v);
	default:
		return 0;
	}
}

int engine_index_add(struct engine *e, struct ftl_addr addr, const uint8_t hash[32], uint32_t refs)
{
	struct engine_index_shard *s = engine_idx_shard(&e->index, hash);
	int rc;

	if (!refs || refs > ENGINE_REFS_MAX)
		return -EINVAL;
	if (addr.v > ENGINE_CHUNK_ID_MAX)
		return -ERANGE;
	rc = engine_chunks_create(&e->chunks, addr.v, refs);
	if (rc)
		return rc;
	/* Indexed without a lookup: at mount the caller may know only the hash prefix the
	 * FTL's checkpoint keeps, against which no verification on flash can succeed, and a
	 * lookup per chunk made N copies of one content (stored with dedupe off) cost N^2/2
	 * flash reads. Equal copies get an entry each; a write-time lookup verifies them one
	 * by one and takes the first that matches, and a free removes only its own entry. */
	engine_idx_lock(s);
	rc = engine_idx_insert(&e->index, s, hash, addr.v);
	engine_idx_unlock(s);
	if (rc) {
		engine_chunks_clear(&e->chunks, addr.v);
		return rc;
	}
	engine_cnt_add(&e->cnt.unique_chunks, 1);
	return 0;
}

bool engine_ref_is_table_pattern(struct engine_ref ref)
{
	return engine_ref_kind(ref) == ENGINE_REF_PATTERN && (ref.v & ENGINE_REF_PAT_TABLE);
}

int engine_ref_pattern(struct engine *e, struct engine_ref ref, uint8_t pat[16])
{
	uint32_t index, period;
	int rc;

	if (!engine_ref_is_table_pattern(ref))
		return -EINVAL;
	rc = pattab_index(ref, &index);
	if (rc <= 0)
		return rc < 0 ? rc : -EINVAL;
	rc = engine_pattab_lookup(&e->pattab, index, pat, &period);
	return rc ? rc : (int)period;
}

int engine_pattern_restore(struct engine *e, struct engine_ref ref, const uint8_t pat[16],
                           uint32_t period, uint32_t refs)
{
	uint32_t index;
	uint8_t check[16];
	int rc;

	if (!engine_ref_is_table_pattern(ref) || period < 8 || period > 16)
		return -EINVAL;
	/* Only a pattern that is not shorter than its period deserves a table slot. */
	memset(check, 0, sizeof(check));
	memcpy(check, pat, period);
	rc = pattab_index(ref, &index);
	if (rc <= 0)
		return rc < 0 ? rc : -EINVAL;
	return engine_pattab_restore(&e->pattab, index, check, period, refs);
}
