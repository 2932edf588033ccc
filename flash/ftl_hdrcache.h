/* flash/ftl_hdrcache.h - the pack header cache (ftl_hdrcache.c): the summaries of recently read
 * packs, so that ftl_read_hash (dedupe verification, last-reference frees) reads no device block
 * for a pack it has seen. Private to flash/; ftl_core.c is its only user.
 */
#ifndef PSTOR_FTL_HDRCACHE_H
#define PSTOR_FTL_HDRCACHE_H

#include <stdint.h>

struct ftl;
struct ftl_hdrcache;

/* A fixed number of slots, each a pack header of at most FTL_PACK_HDR_MAX blocks: the memory
 * is bounded (FTL_HDRCACHE_SLOTS x 8 blocks at most), whatever the data. -ENOMEM. */
int ftl_hdrcache_create(struct ftl_hdrcache **out);
void ftl_hdrcache_destroy(struct ftl_hdrcache *c); /* NULL is a no-op */

/* The hash of chunk ID stored at byte OFF of segment SEGI, in the pack at PACK_OFF, the
 * segment holding sequence number SEQ (its incarnation: a pack of an earlier one never
 * answers). Reads and checks (crc, seq) the pack header on a miss. The entry must be the chunk
 * at OFF and carry ID. Returns 0, -ENOENT (no entry for OFF with that id), -EIO, -ENOMEM.
 * Takes no FTL lock; its own slot locks are leaves, never held across the device read. */
int ftl_hdrcache_hash(struct ftl *ftl, uint32_t segi, uint64_t seq, uint32_t pack_off, uint32_t off,
                      uint64_t id, uint8_t *hash);

struct ftl_hdrcache_stats {
	uint64_t hits, misses;
};
void ftl_hdrcache_stats(struct ftl_hdrcache *c, struct ftl_hdrcache_stats *st);

#endif
