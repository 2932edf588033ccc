/* flash/ftl_rewrite.c - replacing a chunk's bytes in place of its address (tiering's
 * recompression), the way GC relocates it: a new copy in the cold GC stream, then the L2P switch.
 * It knows nothing of what the bytes mean; it must never change what an address reads as unless
 * the caller's version still names the copy it replaces.
 *
 * Why this is safe (ftl_int.h invariants 2-5):
 *  - The copy is appended under gc_lock and the GC stream's lock, exactly where GC appends, so
 *    a GC pass (which holds gc_lock) never runs at the same time, and the GC that later cleans
 *    the old copy's segment seals and flushes the GC streams (the new copy with them) before it
 *    frees that segment (invariant 3). Until then the old copy stays on the device.
 *  - The new copy takes a new birth: a scan at open that finds both copies keeps the newer, and
 *    one that finds only the old (power cut before the pack was written) keeps that. Both decode
 *    to the same content, so either outcome reads right.
 *  - The L2P switch is a compare-and-swap from the version's location, and the version also
 *    pins the old segment's release count: a chunk freed, reused, moved or rewritten since the
 *    caller's read fails with -ESTALE and nothing changes.
 *  - The owner word (hash prefix and flags) changes with the switch under id_lock, so a free
 *    that races the switch cannot release the id (and a writer reuse it) in between.
 */
#include <errno.h>
#include <string.h>

#include "ftl_int.h"

static uint32_t seg_gen(struct ftl *ftl, uint64_t loc)
{
	return atomic_load(&ftl->segs[ftl_loc_seg(loc)].gen);
}

int ftl_read_ver(struct ftl *ftl, struct ftl_addr addr, void *buf, uint32_t buflen, uint8_t *flags,
                 struct ftl_chunk_ver *ver)
{
	if (!ver)
		return -EINVAL;
	for (int attempt = 0; attempt < 16; attempt++) {
		uint64_t loc = ftl_l2p_get(&ftl->l2p, addr.v);
		if (!ftl_loc_is_chunk(loc))
			return -ENOENT;
		uint32_t gen = seg_gen(ftl, loc);
		/* The location, read again after the generation: the copy at LOC belongs to the
		 * segment incarnation GEN names. */
		if (ftl_l2p_get(&ftl->l2p, addr.v) != loc)
			continue;
		int n = ftl_read(ftl, addr, buf, buflen, flags);
		if (n < 0)
			return n;
		/* Unchanged across the read, with the segment never released: the read returned
		 * the copy at LOC (a chunk never comes back to a location it left without a
		 * release in between). */
		if (ftl_l2p_get(&ftl->l2p, addr.v) == loc && seg_gen(ftl, loc) == gen) {
			ver->loc = loc;
			ver->gen = gen;
			return n;
		}
	}
	return -EAGAIN;
}

int ftl_chunk_flags(struct ftl *ftl, struct ftl_addr addr)
{
	if (!ftl_loc_is_chunk(ftl_l2p_get(&ftl->l2p, addr.v)))
		return -ENOENT;
	return (int)(ftl_l2p_get_word(&ftl->l2p, addr.v) >> 56);
}

/* A birth for the new copy (the scan prefers the highest); never one the scan would ignore. */
static int new_birth(struct ftl *ftl, uint64_t *out)
{
	uint64_t birth = atomic_load(&ftl->next_birth);
	do {
		if (birth >= FTL_BIRTH_LIMIT)
			return -ENOSPC;
	} while (!atomic_compare_exchange_weak(&ftl->next_birth, &birth, birth + 1));
	*out = birth;
	return 0;
}

int ftl_chunk_rewrite(struct ftl *ftl, struct ftl_addr addr, const struct ftl_chunk_ver *ver,
                      const void *data, uint32_t len, uint8_t flags)
{
	uint8_t hash[FTL_HASH_LEN];
	uint64_t birth, nloc;
	int rc;

	if (!ver || !data || len == 0 || len > FTL_CHUNK_MAX || flags == FTL_FLAGS_RESERVED ||
	    !ftl_loc_is_chunk(ver->loc) || ftl_loc_seg(ver->loc) >= ftl->nsegs)
		return -EINVAL;
	if (ftl->rdonly)
		return -EROFS;
	/* The hash goes with the new copy's summary entry (the scan and dedupe read it there).
	 * Read before any lock (it may read a pack header); if the chunk changed since VER, the
	 * check under the locks refuses the rewrite, so a hash of other content never lands. */
	rc = ftl_read_hash(ftl, addr, hash);
	if (rc)
		return rc;
	rc = new_birth(ftl, &birth);
	if (rc)
		return rc;
	uint32_t crc = ftl_chunk_crc(addr.v, ftl_len_flags(len, flags), data, len);
	struct ftl_stream *st = &ftl->streams[ftl->stream_map[FTL_STREAM_GC_COLD]];

	pthread_mutex_lock(&ftl->gc_lock);
	/* A rewrite gives space back only later (when GC cleans the old copy's segment): it may
	 * not take the free segments GC needs to do that, nor those user writes may take. */
	if (atomic_load(&ftl->nfree) <= ftl->reserve + 2) {
		rc = -ENOSPC;
		goto out_unlock_gc;
	}
	pthread_mutex_lock(&st->lock);
	if (ftl_l2p_get(&ftl->l2p, addr.v) != ver->loc || seg_gen(ftl, ver->loc) != ver->gen) {
		rc = -ESTALE;
		goto out_unlock;
	}
	rc = ftl_stream_append(ftl, st, addr.v, birth, hash, crc, flags, data, len, &nloc,
	                       FTL_ALLOC_GC, NULL);
	if (rc)
		goto out_unlock;
	pthread_mutex_lock(&ftl->l2p.id_lock);
	bool switched = ftl_l2p_cas(&ftl->l2p, addr.v, ver->loc, nloc);
	if (switched)
		ftl_l2p_set_word(&ftl->l2p, addr.v, ftl_word_make(hash, flags));
	pthread_mutex_unlock(&ftl->l2p.id_lock);
	if (!switched) {
		/* Freed (or moved by a seal) since the check: the copy is dead on arrival. */
		atomic_fetch_sub(&ftl->segs[ftl_loc_seg(nloc)].live_bytes,
		                 ftl_chunk_footprint(len));
		rc = -ESTALE;
		goto out_unlock;
	}
	uint32_t old_len = ftl_loc_len(ver->loc);
	atomic_fetch_sub(&ftl->segs[ftl_loc_seg(ver->loc)].live_bytes,
	                 ftl_chunk_footprint(old_len));
	if (len >= old_len)
		atomic_fetch_add(&ftl->bytes_live, len - old_len);
	else
		atomic_fetch_sub(&ftl->bytes_live, old_len - len);
	if (!atomic_load_explicit(&ftl->ckpt_dirty, memory_order_relaxed))
		atomic_store(&ftl->ckpt_dirty, true);
out_unlock:
	pthread_mutex_unlock(&st->lock);
out_unlock_gc:
	pthread_mutex_unlock(&ftl->gc_lock);
	return rc;
}
