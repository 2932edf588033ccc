/* tests/fuzz/fuzz_pfs_format.c - libFuzzer target for the record codecs of fs/meta/pfs_format.c:
 * the map page blob (pfs_page_decode: SQLite rows, flash page copies, fsck) and the tag every
 * metadata chunk carries in its summary hash (pfs_mtag_decode: mount and fsck sort the
 * segments' records by it).
 *
 * Input: [kind][...] (FZ_PAGE_* in fuzz_common.h). Page: [flags][map][page][blob]; must hold:
 * only -EUCLEAN; accepted only at its full length; re-encoded for the same key it is the same
 * bytes; the same blob for a key one bit off is refused; a refused blob leaves the references
 * untouched. Tag: 32 bytes; must hold: only -EINVAL; an accepted tag has a known kind, and
 * re-encoded it is the same bytes but for the three pad bytes (which the decoder ignores);
 * decoding the re-encoded tag gives the same tag.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "pfs_meta.h"

static void fail(const char *what, unsigned long long a)
{
	fprintf(stderr, "fuzz_pfs_format: %s (%llu)\n", what, a);
	abort();
}

static void fuzz_page(const uint8_t *data, size_t size)
{
	static struct engine_ref refs[PFS_PAGE_REFS], back[PFS_PAGE_REFS];
	uint8_t canon[PFS_PAGE_BLOB];

	if (size < 17)
		return;
	uint8_t flags = data[0];
	uint64_t map = fz_le64(data + 1), idx = fz_le64(data + 9);
	size_t len = size - 17;
	if ((flags & FZ_PAGE_FULL) && len < PFS_PAGE_BLOB)
		len = PFS_PAGE_BLOB;
	uint8_t *blob = calloc(1, len ? len : 1); /* its own copy: ASan sees reads past it */
	if (!blob)
		return;
	memcpy(blob, data + 17, size - 17 < len ? size - 17 : len);
	if ((flags & FZ_PAGE_FIX_CRC) && len >= PFS_PAGE_BLOB) {
		for (uint32_t i = 0; i < PFS_PAGE_REFS; i++)
			refs[i].v = fz_le64(blob + 8 * i);
		pfs_page_encode(map, idx, refs, blob);
	}

	memset(refs, 0xa5, sizeof(refs));
	int rc = pfs_page_decode(map, idx, blob, len, refs);
	if (rc != 0 && rc != -EUCLEAN)
		fail("page: undocumented error", (unsigned long long)-rc);
	if (rc) {
		for (uint32_t i = 0; i < PFS_PAGE_REFS; i++)
			if (refs[i].v != 0xa5a5a5a5a5a5a5a5ull)
				fail("page: a refused blob changed the references", i);
		goto out;
	}
	if (len != PFS_PAGE_BLOB)
		fail("page: accepted at a length not its own", len);
	pfs_page_encode(map, idx, refs, canon);
	if (memcmp(canon, blob, PFS_PAGE_BLOB))
		fail("page: re-encoded blob differs", idx);
	/* The CRC covers the key: one bit off in the map or the page index is refused. */
	unsigned bit = (flags >> 3) * 2u; /* 0..62 */
	uint64_t omap = (flags & 0x04) ? map : map ^ (1ull << bit);
	uint64_t oidx = (flags & 0x04) ? idx ^ (1ull << bit) : idx;
	if (pfs_page_decode(omap, oidx, blob, len, back) != -EUCLEAN)
		fail("page: accepted for another key", bit);
out:
	free(blob);
}

static void fuzz_tag(const uint8_t *data, size_t size)
{
	uint8_t hash[FTL_HASH_LEN] = {0}, canon[FTL_HASH_LEN];
	struct pfs_mtag t, again;

	memcpy(hash, data, size < FTL_HASH_LEN ? size : FTL_HASH_LEN);
	int rc = pfs_mtag_decode(hash, &t);
	if (rc != 0 && rc != -EINVAL)
		fail("tag: undocumented error", (unsigned long long)-rc);
	if (rc)
		return;
	if (t.kind != PFS_MCHUNK_PAGE && t.kind != PFS_MCHUNK_CATALOG && t.kind != PFS_MCHUNK_LOG)
		fail("tag: unknown kind accepted", (unsigned long long)t.kind);
	pfs_mtag_encode(&t, canon);
	memcpy(canon + 5, hash + 5, 3); /* pad bytes: written as zero, not checked when read */
	if (memcmp(canon, hash, FTL_HASH_LEN))
		fail("tag: re-encoded tag differs", (unsigned long long)t.kind);
	pfs_mtag_encode(&t, canon);
	if (pfs_mtag_decode(canon, &again) || again.kind != t.kind || again.a != t.a ||
	    again.b != t.b || again.gen != t.gen)
		fail("tag: the re-encoded tag decodes differently", (unsigned long long)t.kind);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		fuzz_tag(data + 1, size - 1);
	else
		fuzz_page(data + 1, size - 1);
	return 0;
}
