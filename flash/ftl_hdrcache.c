/* flash/ftl_hdrcache.c - a small cache of pack headers (fixed part + summary entries) for
 * ftl_read_hash. Without it each hash lookup reads the chunk header and then its summary entry
 * from the device: on an O_DIRECT backend two real device reads per dedupe verification.
 *
 * Invariants:
 *  1. A slot holds one pack header exactly as read from the device and checked
 *     (ftl_pack_header_ok: magic, crc, the segment's seq), keyed by (segment, pack offset,
 *     segment seq). A segment reused since has a new seq, so its old packs never match.
 *  2. Pack headers are written once, with their pack, and never rewritten in place, so a
 *     checked header stays true for as long as its segment keeps its seq.
 *  3. A slot's mutex guards its key and buffer; it is a leaf (no other lock is taken under it)
 *     and never held across a device read. A miss reads into a private buffer and swaps it in.
 *  4. Memory: FTL_HDRCACHE_SLOTS buffers of at most FTL_PACK_HDR_MAX blocks each, nothing
 *     per chunk.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ftl_hdrcache.h"
#include "ftl_int.h"

/* Direct-mapped: recent packs (the ones dedupe hits point into while the same data is being
 * written) each get their own slot. A slot holds what its header takes: 64 headers of 1 MiB
 * packs of 4 KiB chunks (4 header blocks) are 1 MiB, 2 MiB at most with 4 KiB blocks. */
#define FTL_HDRCACHE_SLOTS 64u

struct ftl_hdrcache_slot {
	pthread_mutex_t lock;
	uint32_t segi, pack_off;
	uint64_t seq;
	uint8_t *hdr; /* NULL: empty; else hdr_blocks blocks, checked (invariant 1) */
} __attribute__((aligned(64)));

struct ftl_hdrcache {
	struct ftl_hdrcache_slot slot[FTL_HDRCACHE_SLOTS];
	_Atomic uint64_t hits, misses;
};

int ftl_hdrcache_create(struct ftl_hdrcache **out)
{
	struct ftl_hdrcache *c = aligned_alloc(64, sizeof(*c));

	if (!c)
		return -ENOMEM;
	memset(c, 0, sizeof(*c));
	for (uint32_t i = 0; i < FTL_HDRCACHE_SLOTS; i++)
		pthread_mutex_init(&c->slot[i].lock, NULL);
	atomic_init(&c->hits, 0);
	atomic_init(&c->misses, 0);
	*out = c;
	return 0;
}

void ftl_hdrcache_destroy(struct ftl_hdrcache *c)
{
	if (!c)
		return;
	for (uint32_t i = 0; i < FTL_HDRCACHE_SLOTS; i++) {
		pthread_mutex_destroy(&c->slot[i].lock);
		free(c->slot[i].hdr);
	}
	free(c);
}

void ftl_hdrcache_stats(struct ftl_hdrcache *c, struct ftl_hdrcache_stats *st)
{
	st->hits = atomic_load_explicit(&c->hits, memory_order_relaxed);
	st->misses = atomic_load_explicit(&c->misses, memory_order_relaxed);
}

static struct ftl_hdrcache_slot *slot_of(struct ftl_hdrcache *c, uint32_t segi, uint32_t pack_off)
{
	uint64_t k = ((uint64_t)segi << 32 | pack_off) * 0x9e3779b97f4a7c15ull;
	return &c->slot[(k >> 32) % FTL_HDRCACHE_SLOTS];
}

/* Finds the entry of the chunk at OFF in the checked header HDR of the pack at PACK_OFF: the
 * chunks follow the header blocks in entry order, each ftl_chunk_footprint of its length. */
static int entry_hash(struct ftl *ftl, const uint8_t *hdr, uint32_t pack_off, uint32_t off,
                      uint64_t id, uint8_t *hash)
{
	const struct ftl_pack_disk *ph = (const void *)hdr;
	const struct ftl_pack_entry_disk *e = (const void *)(hdr + sizeof(*ph));
	uint32_t cur = pack_off + ph->hdr_blocks * ftl->bs;

	for (uint32_t i = 0; i < ph->nentries && cur <= off; i++) {
		if (cur == off) {
			if (e[i].id != id)
				return -ENOENT;
			memcpy(hash, e[i].hash, FTL_HASH_LEN);
			return 0;
		}
		cur += ftl_chunk_footprint(e[i].len_flags & FTL_LEN_MASK);
	}
	return -ENOENT;
}

/* Reads and checks the header of the pack at PACK_OFF into a new buffer of its own size (*OUT). */
static int read_header(struct ftl *ftl, uint32_t segi, uint64_t seq, uint32_t pack_off,
                       uint8_t **out)
{
	uint64_t pos = ftl_seg_dev_off(ftl, segi) + pack_off;
	void *first = NULL, *b = NULL;
	int rc;

	/* posix_memalign: a 512-byte block is no multiple of the alignment aligned_alloc wants. */
	if (posix_memalign(&first, 4096, ftl->bs))
		return -ENOMEM;
	rc = ftl_dev_read(ftl->dev, first, ftl->bs, pos);
	if (rc)
		goto out_free;
	struct ftl_pack_disk *ph = first;
	/* Bound the rest of the read before the crc has vouched for hdr_blocks. */
	uint32_t nb = ph->hdr_blocks;
	if (nb == 0 || nb > FTL_PACK_HDR_MAX) {
		rc = -EIO;
		goto out_free;
	}
	if (posix_memalign(&b, 4096, (size_t)nb * ftl->bs)) {
		rc = -ENOMEM;
		goto out_free;
	}
	memcpy(b, first, ftl->bs);
	if (nb > 1) {
		rc = ftl_dev_read(ftl->dev, (uint8_t *)b + ftl->bs, (size_t)(nb - 1) * ftl->bs,
		                  pos + ftl->bs);
		if (rc)
			goto out_free;
	}
	if (!ftl_pack_header_ok(ftl, b, seq, pack_off)) {
		rc = -EIO; /* damaged, or the segment was reused since SEQ was read */
		goto out_free;
	}
	*out = b;
	b = NULL;
out_free:
	free(b);
	free(first);
	return rc;
}

int ftl_hdrcache_hash(struct ftl *ftl, uint32_t segi, uint64_t seq, uint32_t pack_off, uint32_t off,
                      uint64_t id, uint8_t *hash)
{
	struct ftl_hdrcache *c = ftl->hdrcache;
	struct ftl_hdrcache_slot *s = slot_of(c, segi, pack_off);
	uint8_t *hdr, *old;
	int rc;

	pthread_mutex_lock(&s->lock);
	if (s->hdr && s->segi == segi && s->pack_off == pack_off && s->seq == seq) {
		rc = entry_hash(ftl, s->hdr, pack_off, off, id, hash);
		pthread_mutex_unlock(&s->lock);
		atomic_fetch_add_explicit(&c->hits, 1, memory_order_relaxed);
		return rc;
	}
	pthread_mutex_unlock(&s->lock);
	atomic_fetch_add_explicit(&c->misses, 1, memory_order_relaxed);
	rc = read_header(ftl, segi, seq, pack_off, &hdr);
	if (rc)
		return rc;
	rc = entry_hash(ftl, hdr, pack_off, off, id, hash);
	/* Invariant 3: swapped in whole; another reader's fill of the same slot may win. */
	pthread_mutex_lock(&s->lock);
	old = s->hdr;
	s->hdr = hdr;
	s->segi = segi;
	s->pack_off = pack_off;
	s->seq = seq;
	pthread_mutex_unlock(&s->lock);
	free(old);
	return rc;
}
