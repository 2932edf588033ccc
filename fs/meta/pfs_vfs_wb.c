/* fs/meta/pfs_vfs_wb.c - the metadata VFS's write-back buffer (pfs_vfs_wb.h).
 * SQLite writes a rollback-journal record as three unaligned writes and the pages of a commit
 * one at a time; each was a synchronous device write (and a read for the partial blocks) until
 * these blocks waited in memory for the sync that must make them durable anyway.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ftl.h"
#include "pfs_vfs_wb.h"

/* The largest coalesced write: long enough that a journal or a run of pages goes in a few
 * device writes, small enough to stage without a second large buffer. */
#define PFS_VFS_WB_RUN_BYTES (1u << 20)

static uint32_t hash_size(const struct pfs_vfs_wb *wb)
{
	uint32_t h = 1;

	while (h < 2 * wb->cap)
		h <<= 1;
	return h;
}

static uint32_t hash_of(const struct pfs_vfs_wb *wb, uint64_t off)
{
	return (uint32_t)(((off / wb->bs) * 0x9e3779b97f4a7c15ull) >> 32) & (hash_size(wb) - 1);
}

static void *alloc_aligned(uint32_t align, size_t len)
{
	void *p = NULL;

	return posix_memalign(&p, align, len) ? NULL : p;
}

int pfs_vfs_wb_init(struct pfs_vfs_wb *wb, uint32_t bs, uint32_t align, size_t bytes)
{
	memset(wb, 0, sizeof(*wb));
	wb->bs = bs;
	if (bytes / bs == 0)
		return 0;
	wb->cap = (uint32_t)(bytes / bs);
	wb->run_blocks = PFS_VFS_WB_RUN_BYTES / bs ? PFS_VFS_WB_RUN_BYTES / bs : 1;
	wb->blocks = alloc_aligned(align, (size_t)wb->cap * bs);
	wb->run = alloc_aligned(align, (size_t)wb->run_blocks * bs);
	wb->offs = calloc(wb->cap, sizeof(*wb->offs));
	wb->order = calloc(wb->cap, sizeof(*wb->order));
	wb->hash = calloc(hash_size(wb), sizeof(*wb->hash));
	if (!wb->blocks || !wb->run || !wb->offs || !wb->order || !wb->hash) {
		pfs_vfs_wb_fini(wb);
		return -ENOMEM;
	}
	return 0;
}

void pfs_vfs_wb_fini(struct pfs_vfs_wb *wb)
{
	free(wb->blocks);
	free(wb->run);
	free(wb->offs);
	free(wb->order);
	free(wb->hash);
	memset(wb, 0, sizeof(*wb));
}

static uint8_t *slot_block(const struct pfs_vfs_wb *wb, uint32_t slot)
{
	return wb->blocks + (size_t)slot * wb->bs;
}

uint8_t *pfs_vfs_wb_find(const struct pfs_vfs_wb *wb, uint64_t off)
{
	if (!wb->n)
		return NULL;
	uint32_t mask = hash_size(wb) - 1;
	for (uint32_t h = hash_of(wb, off);; h = (h + 1) & mask) {
		uint32_t e = wb->hash[h];
		if (!e)
			return NULL;
		if (wb->offs[e - 1] == off)
			return slot_block(wb, e - 1);
	}
}

static void hash_insert(struct pfs_vfs_wb *wb, uint32_t slot)
{
	uint32_t mask = hash_size(wb) - 1, h = hash_of(wb, wb->offs[slot]);

	while (wb->hash[h])
		h = (h + 1) & mask;
	wb->hash[h] = slot + 1;
}

uint8_t *pfs_vfs_wb_add(struct pfs_vfs_wb *wb, uint64_t off)
{
	if (wb->n == wb->cap)
		return NULL;
	uint32_t slot = wb->n++;
	wb->offs[slot] = off;
	hash_insert(wb, slot); /* at most half full: a free entry exists */
	return slot_block(wb, slot);
}

static void clear(struct pfs_vfs_wb *wb)
{
	memset(wb->hash, 0, hash_size(wb) * sizeof(*wb->hash));
	wb->n = 0;
}

void pfs_vfs_wb_drop(struct pfs_vfs_wb *wb, uint64_t lo, uint64_t hi)
{
	uint32_t kept = 0;

	for (uint32_t s = 0; s < wb->n; s++) {
		if (wb->offs[s] >= lo && wb->offs[s] < hi)
			continue;
		if (kept != s) {
			wb->offs[kept] = wb->offs[s];
			memcpy(slot_block(wb, kept), slot_block(wb, s), wb->bs);
		}
		kept++;
	}
	if (kept == wb->n)
		return;
	clear(wb);
	for (uint32_t s = 0; s < kept; s++) {
		wb->n++;
		hash_insert(wb, s);
	}
}

static int cmp_ent_off(const void *a, const void *b)
{
	uint64_t x = ((const struct pfs_vfs_wb_ent *)a)->off,
	         y = ((const struct pfs_vfs_wb_ent *)b)->off;

	return x < y ? -1 : x > y;
}

int pfs_vfs_wb_write_out(struct pfs_vfs_wb *wb, struct ftl_dev *dev)
{
	int err = 0;

	if (!wb->n)
		return 0;
	for (uint32_t s = 0; s < wb->n; s++)
		wb->order[s] = (struct pfs_vfs_wb_ent){wb->offs[s], s};
	qsort(wb->order, wb->n, sizeof(*wb->order), cmp_ent_off);
	for (uint32_t i = 0; i < wb->n && !err;) {
		uint32_t len = 1;
		uint64_t start = wb->order[i].off;
		while (i + len < wb->n && len < wb->run_blocks &&
		       wb->order[i + len].off == start + (uint64_t)len * wb->bs)
			len++;
		const uint8_t *src = slot_block(wb, wb->order[i].slot);
		if (len > 1) {
			for (uint32_t k = 0; k < len; k++)
				memcpy(wb->run + (size_t)k * wb->bs,
				       slot_block(wb, wb->order[i + k].slot), wb->bs);
			src = wb->run;
		}
		err = ftl_dev_write(dev, src, (size_t)len * wb->bs, start);
		wb->device_writes++;
		i += len;
	}
	if (!err)
		clear(wb);
	return err;
}
