/* fs/pfs_tiering.h - the front's tiering report and metrics (pfs_tiering.c); the mover itself is
 * the store's (fs/vol/pfs_tier.c). Private to fs/ (front).
 */
#ifndef PSTOR_PFS_TIERING_H
#define PSTOR_PFS_TIERING_H

#include <stdbool.h>

#include "pfs.h"

/* .pstorage/analytics/tiering[.json]: the mover's progress and the recommendations, each with
 * what, why, the effect measured on the data and the ctl command that acts on it. Samples up to
 * 64 chunks a volume (re-encoded in memory with zstd:19, never written). -ENOMEM. */
int pfs_tiering_report(struct pfs *p, bool json, struct pfs_buf *b);
/* pstorfs_tier_* families for .pstorage/metrics. */
void pfs_tiering_metrics(struct pfs *p, struct pfs_buf *b);

#endif
