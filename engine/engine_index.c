/* engine/engine_index.c - the fingerprint index: SHA-256 -> FTL chunk id, in 64 shards of
 * bucketized open-addressing tables of 8-byte entries. A tag match is only a candidate: the
 * caller's match function confirms it against the full hash on flash. No device I/O here.
 *
 * Entry: tag (28 bits of SHA-256) << 36 | chunk id (36 bits). 0 = empty, 1 = tombstone.
 * Invariants (all under the shard lock):
 *  I1. An entry lives in its home bucket (from its tag) or in a later bucket (wrapping) reached
 *      only through buckets that had no free slot when it was inserted.
 *  I2. A lookup stops at the first bucket holding an empty slot. Only a rebuild creates empty
 *      slots in a full bucket, so I1 keeps every entry reachable.
 *  I3. Removal empties the slot when its bucket already has an empty slot (no probe passes it),
 *      and leaves a tombstone otherwise. Tombstones are reused by inserts and purged by rebuilds.
 *  I4. The home bucket is computed from the stored tag alone, so a rebuild (grow 1.5x, or purge
 *      tombstones) needs no hash from flash and cannot fail on I/O.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

#define TAG_BITS   28
#define TAG_MASK   ((UINT64_C(1) << TAG_BITS) - 1)
#define ID_MASK    ENGINE_CHUNK_ID_MAX
#define SLOT_EMPTY UINT64_C(0)
#define SLOT_TOMB  UINT64_C(1)
#define B          ENGINE_INDEX_BUCKET
#define NB_INITIAL 8u

/* The key: the first FTL_SCAN_HASH_PREFIX (5) bytes of the hash, byte 0 in the word's top bits.
 * The FTL's checkpoint keeps exactly those bytes, so chunks it restores at open can be indexed
 * without reading their summaries. */
static inline uint64_t hash_word(const uint8_t hash[32])
{
	uint64_t v = 0;

	_Static_assert(FTL_SCAN_HASH_PREFIX * 8 >= ENGINE_INDEX_SHARDS_LOG2 + TAG_BITS,
	               "the shard and tag come from the hash bytes the checkpoint keeps");
	for (int i = 0; i < FTL_SCAN_HASH_PREFIX; i++)
		v |= (uint64_t)hash[i] << (56 - 8 * i);
	return v;
}

/* Shard: the top 6 bits of the first hash word. Tag: the next 28 bits (never 0: 0 marks empty
 * and tombstone slots). */
static inline uint64_t hash_tag(const uint8_t hash[32])
{
	uint64_t t = hash_word(hash) >> (64 - ENGINE_INDEX_SHARDS_LOG2 - TAG_BITS) & TAG_MASK;

	return t ? t : 1;
}

/* Multiply-shift range reduction: any bucket count, no modulo. */
static inline uint32_t home_bucket(uint64_t tag, uint32_t nbuckets)
{
	return (uint32_t)((tag * nbuckets) >> TAG_BITS);
}

static inline bool slot_live(uint64_t e)
{
	return e > SLOT_TOMB;
}

static size_t table_bytes(uint32_t nbuckets)
{
	return (size_t)nbuckets * B * sizeof(uint64_t);
}

static uint64_t *table_alloc(uint32_t nbuckets)
{
	uint64_t *t = aligned_alloc(ENGINE_CACHELINE, table_bytes(nbuckets));

	if (t)
		memset(t, 0, table_bytes(nbuckets));
	return t;
}

int engine_idx_init(struct engine_index *ix)
{
	uint32_t i;

	atomic_init(&ix->mem_bytes, 0);
	atomic_init(&ix->entries, 0);
	for (i = 0; i < ENGINE_INDEX_SHARDS; i++) {
		struct engine_index_shard *s = &ix->shard[i];

		s->slots = table_alloc(NB_INITIAL);
		if (!s->slots)
			goto err_free_shards;
		s->nbuckets = NB_INITIAL;
		s->live = s->tombs = 0;
		pthread_mutex_init(&s->lock, NULL);
		atomic_fetch_add(&ix->mem_bytes, table_bytes(NB_INITIAL));
	}
	atomic_fetch_add(&ix->mem_bytes, sizeof(*ix));
	return 0;

err_free_shards:
	while (i--) {
		free(ix->shard[i].slots);
		pthread_mutex_destroy(&ix->shard[i].lock);
	}
	return -ENOMEM;
}

void engine_idx_destroy(struct engine_index *ix)
{
	for (uint32_t i = 0; i < ENGINE_INDEX_SHARDS; i++) {
		free(ix->shard[i].slots);
		pthread_mutex_destroy(&ix->shard[i].lock);
	}
}

struct engine_index_shard *engine_idx_shard(struct engine_index *ix, const uint8_t hash[32])
{
	return &ix->shard[hash_word(hash) >> (64 - ENGINE_INDEX_SHARDS_LOG2)];
}

void engine_idx_lock(struct engine_index_shard *s)
{
	pthread_mutex_lock(&s->lock);
}

void engine_idx_unlock(struct engine_index_shard *s)
{
	pthread_mutex_unlock(&s->lock);
}

static bool bucket_has_empty(const uint64_t *bk)
{
	for (int i = 0; i < B; i++)
		if (bk[i] == SLOT_EMPTY)
			return true;
	return false;
}

int engine_idx_lookup(struct engine_index *ix, struct engine_index_shard *s, const uint8_t hash[32],
                      engine_index_match_fn match, void *arg, uint64_t *id)
{
	uint64_t tag = hash_tag(hash);
	uint32_t b = home_bucket(tag, s->nbuckets);

	for (uint32_t n = 0; n < s->nbuckets; n++) {
		const uint64_t *bk = &s->slots[(size_t)b * B];
		bool stop = false;

		for (int i = 0; i < B; i++) {
			uint64_t e = bk[i];
			int r;

			if (e == SLOT_EMPTY) {
				stop = true;
				continue;
			}
			if (!slot_live(e) || e >> ENGINE_CHUNK_ID_BITS != tag)
				continue;
			r = match(arg, e & ID_MASK);
			if (r < 0)
				return r;
			if (r) {
				*id = e & ID_MASK;
				return 0;
			}
		}
		if (stop)
			break;
		b = b + 1 == s->nbuckets ? 0 : b + 1;
	}
	return -ENOENT;
}

/* Places E in the first bucket along its probe chain with a free slot. Returns false if the
 * table has no free slot at all. */
static bool table_place(uint64_t *slots, uint32_t nbuckets, uint64_t e, bool *reused_tomb)
{
	uint32_t b = home_bucket(e >> ENGINE_CHUNK_ID_BITS, nbuckets);

	for (uint32_t n = 0; n < nbuckets; n++) {
		uint64_t *bk = &slots[(size_t)b * B];

		for (int i = 0; i < B; i++) {
			if (!slot_live(bk[i])) {
				*reused_tomb = bk[i] == SLOT_TOMB;
				bk[i] = e;
				return true;
			}
		}
		b = b + 1 == nbuckets ? 0 : b + 1;
	}
	return false;
}

/* Rebuilds the shard into NBUCKETS buckets, dropping tombstones (I4: tags only). */
static int shard_rebuild(struct engine_index *ix, struct engine_index_shard *s, uint32_t nbuckets)
{
	uint64_t *slots = table_alloc(nbuckets);
	size_t old_n = (size_t)s->nbuckets * B;
	bool tomb;

	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < old_n; i++)
		if (slot_live(s->slots[i]))
			table_place(slots, nbuckets, s->slots[i], &tomb);
	free(s->slots);
	atomic_fetch_add(&ix->mem_bytes, table_bytes(nbuckets));
	atomic_fetch_sub(&ix->mem_bytes, table_bytes(s->nbuckets));
	s->slots = slots;
	s->nbuckets = nbuckets;
	s->tombs = 0;
	return 0;
}

/* Max load 0.9 counting tombstones. A full shard grows 1.5x when live entries alone exceed 0.6
 * (so it lands near 0.6 after growing); below that, tombstones are purged at the same size. */
int engine_idx_insert(struct engine_index *ix, struct engine_index_shard *s, const uint8_t hash[32],
                      uint64_t id)
{
	uint64_t e = hash_tag(hash) << ENGINE_CHUNK_ID_BITS | (id & ID_MASK);
	uint64_t nslots = (uint64_t)s->nbuckets * B;
	bool tomb = false;

	if (id > ID_MASK)
		return -ERANGE;
	if ((s->live + s->tombs + 1) * 10 > nslots * 9) {
		uint64_t nb = s->nbuckets;

		if ((s->live + 1) * 10 > nslots * 6)
			nb = nb + (nb + 1) / 2;
		if (nb > UINT32_MAX / B || shard_rebuild(ix, s, (uint32_t)nb)) {
			/* Cannot grow: keep going at a higher load while a slot is free. */
			if (s->live + 1 >= nslots)
				return -ENOMEM;
		}
	}
	if (!table_place(s->slots, s->nbuckets, e, &tomb))
		return -ENOMEM;
	if (tomb)
		s->tombs--;
	s->live++;
	atomic_fetch_add_explicit(&ix->entries, 1, memory_order_relaxed);
	return 0;
}

static void slot_remove(struct engine_index *ix, struct engine_index_shard *s, uint64_t *bk, int i)
{
	bk[i] = SLOT_TOMB;
	if (bucket_has_empty(bk))
		bk[i] = SLOT_EMPTY; /* I3 */
	else
		s->tombs++;
	s->live--;
	atomic_fetch_sub_explicit(&ix->entries, 1, memory_order_relaxed);
}

int engine_idx_remove(struct engine_index *ix, struct engine_index_shard *s, const uint8_t hash[32],
                      uint64_t id)
{
	uint64_t e = hash_tag(hash) << ENGINE_CHUNK_ID_BITS | (id & ID_MASK);
	uint32_t b = home_bucket(e >> ENGINE_CHUNK_ID_BITS, s->nbuckets);

	for (uint32_t n = 0; n < s->nbuckets; n++) {
		uint64_t *bk = &s->slots[(size_t)b * B];
		bool stop = false;

		for (int i = 0; i < B; i++) {
			if (bk[i] == e) {
				slot_remove(ix, s, bk, i);
				return 0;
			}
			if (bk[i] == SLOT_EMPTY)
				stop = true;
		}
		if (stop)
			break;
		b = b + 1 == s->nbuckets ? 0 : b + 1;
	}
	return -ENOENT;
}

int engine_idx_remove_id(struct engine_index *ix, uint64_t id)
{
	for (uint32_t k = 0; k < ENGINE_INDEX_SHARDS; k++) {
		struct engine_index_shard *s = &ix->shard[k];
		size_t n;

		pthread_mutex_lock(&s->lock);
		n = (size_t)s->nbuckets * B;
		for (size_t i = 0; i < n; i++) {
			if (slot_live(s->slots[i]) && (s->slots[i] & ID_MASK) == id) {
				slot_remove(ix, s, &s->slots[i - i % B], (int)(i % B));
				pthread_mutex_unlock(&s->lock);
				return 0;
			}
		}
		pthread_mutex_unlock(&s->lock);
	}
	return -ENOENT;
}
