/* fs/meta/pfs_format.c - encoders and decoders of fs's on-disk records (pfs_format.h): pure
 * functions over byte buffers, no I/O, so the fuzz targets can drive them directly.
 */
#include <errno.h>
#include <string.h>

#include "pfs_meta.h"

static uint32_t page_crc(uint64_t map, uint64_t idx, const uint8_t *refs)
{
	uint8_t key[16];

	pfs_put64(key, map);
	pfs_put64(key + 8, idx);
	return ftl_crc32c(ftl_crc32c(0, key, sizeof(key)), refs, PFS_PAGE_REFS * 8u);
}

/* Little-endian references, then a CRC-32C that also covers the map and page index, so a row
 * (or a flash copy) read for the wrong page fails like a damaged one. */
void pfs_page_encode(uint64_t map, uint64_t idx, const struct engine_ref *refs, uint8_t *blob)
{
	for (uint32_t i = 0; i < PFS_PAGE_REFS; i++)
		pfs_put64(blob + i * 8, refs[i].v);
	pfs_put32(blob + PFS_PAGE_REFS * 8, page_crc(map, idx, blob));
}

int pfs_page_decode(uint64_t map, uint64_t idx, const uint8_t *blob, size_t len,
                    struct engine_ref *refs)
{
	if (len != PFS_PAGE_BLOB || pfs_get32(blob + PFS_PAGE_REFS * 8) != page_crc(map, idx, blob))
		return -EUCLEAN;
	for (uint32_t i = 0; i < PFS_PAGE_REFS; i++)
		refs[i].v = pfs_get64(blob + i * 8);
	return 0;
}

void pfs_mtag_encode(const struct pfs_mtag *t, uint8_t hash[FTL_HASH_LEN])
{
	memset(hash, 0, FTL_HASH_LEN);
	pfs_put32(hash, PFS_MTAG_MAGIC);
	hash[4] = (uint8_t)t->kind;
	pfs_put64(hash + 8, t->a);
	pfs_put64(hash + 16, t->b);
	pfs_put64(hash + 24, t->gen);
}

int pfs_mtag_decode(const uint8_t hash[FTL_HASH_LEN], struct pfs_mtag *t)
{
	if (pfs_get32(hash) != PFS_MTAG_MAGIC || hash[4] < PFS_MCHUNK_PAGE ||
	    hash[4] > PFS_MCHUNK_LOG)
		return -EINVAL;
	t->kind = (enum pfs_mchunk_kind)hash[4];
	t->a = pfs_get64(hash + 8);
	t->b = pfs_get64(hash + 16);
	t->gen = pfs_get64(hash + 24);
	return 0;
}
