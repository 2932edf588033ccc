/* flash/ftl_zone_int.h - the FTL on zoned (ZNS) namespaces: segment = zone (private to flash/).
 *
 * On a namespace formatted zoned (ftl_superblock_info.zoned) every write to a segment lands at
 * its zone's write pointer: the header at open, then packs one after the other, each written by
 * the one thread that holds the segment (its stream's lock, or ckpt_lock for checkpoint parts),
 * so no two writes to a zone are ever in flight. A free segment is an empty zone (release resets
 * it; open resets free zones that are not empty); a segment closed before it is full is
 * finished, so only the streams' segments, one checkpoint part and the random-write log's zone
 * are active at a time, and the streams are folded until that fits the device's limit.
 */
#ifndef PSTOR_FTL_ZONE_INT_H
#define PSTOR_FTL_ZONE_INT_H

#include "ftl_int.h"

/* The random-write log itself (ftl_dev_zoned_format, ftl_dev_zoned_log_zones) is the device
 * layer's: flash/dev/ftl_dev.h. */

/* Active zones the FTL needs at most with the streams folded to fit MAX_ACTIVE (0 = no limit):
 * the budget, and the stream map into MAP (may be NULL). 0 when even the tightest fold does not
 * fit. */
uint32_t ftl_zone_budget(uint32_t max_active, uint8_t map[FTL_STREAM_COUNT]);

/* ftl_zone.c, called by ftl_open: before the scan (checks the device against the superblock,
 * folds the streams, reads the zone report and the erase-count table), and after it (erase
 * counts from the table; free segments whose zone is not empty are reset, partly written zones
 * of closed segments finished). Both are no-ops on conventional namespaces but for setting the
 * identity stream map. -EINVAL (the device does not match), -EOPNOTSUPP (too few active zones),
 * -ENOMEM, -EIO. */
int ftl_zone_open(struct ftl *ftl);
int ftl_zone_after_scan(struct ftl *ftl);
void ftl_zone_free(struct ftl *ftl);
/* At open only, before ftl_zone_after_scan: the segment's zone is empty (its header need not be
 * read), and how far its zone is written (the scan reads no further). */
bool ftl_zone_seg_empty(const struct ftl *ftl, uint32_t seg);
uint32_t ftl_zone_seg_limit(const struct ftl *ftl, uint32_t seg);
/* A segment was closed (by its stream, a failed write, or a written checkpoint part): its zone
 * is finished unless full, so it stops counting as active. No-op when not zoned. */
void ftl_zone_seg_closed(struct ftl *ftl, uint32_t seg);
/* Frees a segment's zone: reset, and the erase count (already counted in seg->erase_count)
 * into the table. */
int ftl_zone_seg_reset(struct ftl *ftl, uint32_t seg);
/* The zoned fields of ftl_stats (left zero when not zoned). */
void ftl_zone_get_stats(struct ftl *ftl, struct ftl_stats *st);

#endif
