/* fs/meta/pfs_vfs_wb.h - the metadata VFS's write-back buffer: device blocks SQLite wrote since
 * the last sync, held in memory and written sorted and coalesced before the next flush.
 * Private to fs/meta (pfs_vfs.c); knows device offsets and blocks, nothing of files or SQLite.
 */
#ifndef PSTOR_PFS_VFS_WB_H
#define PSTOR_PFS_VFS_WB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ftl_dev;

struct pfs_vfs_wb_ent {
	uint64_t off;
	uint32_t slot;
};

struct pfs_vfs_wb {
	uint32_t bs;                  /* device block size: the unit of every entry */
	uint32_t cap;                 /* blocks it may hold; 0: disabled */
	uint32_t n;                   /* blocks held */
	uint8_t *blocks;              /* cap blocks, aligned for O_DIRECT */
	uint64_t *offs;               /* device offset of each held block, in slot order */
	uint32_t *hash;               /* open addressing, 2 * cap entries: slot + 1, 0 when empty */
	struct pfs_vfs_wb_ent *order; /* scratch for the sorted write-out */
	uint8_t *run;                 /* staging for one coalesced device write */
	uint32_t run_blocks;
	uint64_t device_writes; /* coalesced writes issued by pfs_vfs_wb_write_out */
};

/* Sets WB up for at most BYTES (rounded down to blocks of BS; 0 disables it), its buffers
 * aligned to ALIGN. Memory is reserved, not touched: pages fill as blocks come. -ENOMEM. */
int pfs_vfs_wb_init(struct pfs_vfs_wb *wb, uint32_t bs, uint32_t align, size_t bytes);
void pfs_vfs_wb_fini(struct pfs_vfs_wb *wb);

static inline bool pfs_vfs_wb_enabled(const struct pfs_vfs_wb *wb)
{
	return wb->cap != 0;
}

/* The held block at device offset OFF (block aligned), or NULL. */
uint8_t *pfs_vfs_wb_find(const struct pfs_vfs_wb *wb, uint64_t off);

/* A new block for OFF, which must not be held; its content is undefined. NULL when full
 * (write out first). */
uint8_t *pfs_vfs_wb_add(struct pfs_vfs_wb *wb, uint64_t off);

/* Forgets the blocks in [lo, hi) without writing them (a truncated or deleted file). */
void pfs_vfs_wb_drop(struct pfs_vfs_wb *wb, uint64_t lo, uint64_t hi);

/* Writes every held block to DEV in offset order, contiguous blocks in one write, and empties
 * the buffer. Does not flush. On an error the buffer is kept whole (written blocks are simply
 * written again next time) and the error returned. */
int pfs_vfs_wb_write_out(struct pfs_vfs_wb *wb, struct ftl_dev *dev);

#endif
