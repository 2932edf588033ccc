/* tests/fuzz/fuzz_catalog.c - libFuzzer target for the catalogue record decoder,
 * pfs_catalog_decode (fs/vol/pfs_mchunk.c), which fsck --repair trusts to rebuild the list of
 * volumes and snapshots from the segments alone.
 *
 * Input: the record verbatim. Must hold: only -EUCLEAN or -ENOMEM, and nothing kept on failure;
 * on success the map count is the header's and the length is exactly header, entries and
 * settings; each map is a volume or a snapshot with a valid name that is exactly the bytes the
 * entry stores, a mode of permission bits only; the settings text is terminated; and the record
 * re-encoded from what was decoded (PFS_CAT_* layout, the input's version) decodes to the same.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "pfs_vol_int.h"

_Static_assert(PFS_NAME_MAX == 64, "PFS_CAT_ENTRY_V1 assumes 64-byte names");

static void fail(const char *what, unsigned long long a)
{
	fprintf(stderr, "fuzz_catalog: %s (%llu)\n", what, a);
	abort();
}

/* The record as pfs_mchunk_write_catalog lays it out, from a decoded catalogue. */
static uint8_t *encode(const struct pfs_catalog *cat, uint32_t version, size_t *len)
{
	size_t esize = version == 1 ? PFS_CAT_ENTRY_V1 : PFS_CAT_ENTRY;
	size_t cfglen = strlen(cat->config);
	uint8_t *buf = calloc(1, PFS_CAT_HDR + cat->nmaps * esize + cfglen + 1);

	if (!buf)
		abort();
	fz_put32(buf, PFS_CAT_MAGIC);
	fz_put32(buf + 4, version);
	fz_put64(buf + 8, cat->gen);
	fz_put64(buf + 16, cat->next_id);
	fz_put32(buf + 24, (uint32_t)cat->nmaps);
	fz_put32(buf + 28, (uint32_t)cfglen);
	for (size_t i = 0; i < cat->nmaps; i++) {
		const struct pfs_cat_entry *m = &cat->maps[i];
		uint8_t *e = buf + PFS_CAT_HDR + i * esize;
		fz_put64(e, m->id);
		fz_put64(e + 8, m->parent);
		fz_put64(e + 16, m->size);
		fz_put64(e + 24, m->snap_gen);
		fz_put64(e + 32, (uint64_t)m->ctime_ns);
		fz_put32(e + 40, (uint32_t)m->kind);
		fz_put32(e + 44, (uint32_t)strlen(m->name));
		memcpy(e + 48, m->name, strlen(m->name));
		if (version >= 2) {
			fz_put32(e + PFS_CAT_ENTRY_V1, m->mode);
			fz_put32(e + PFS_CAT_ENTRY_V1 + 4, m->uid);
			fz_put32(e + PFS_CAT_ENTRY_V1 + 8, m->gid);
			fz_put64(e + PFS_CAT_ENTRY_V1 + 16, (uint64_t)m->atime_ns);
			fz_put64(e + PFS_CAT_ENTRY_V1 + 24, (uint64_t)m->mtime_ns);
		}
	}
	memcpy(buf + PFS_CAT_HDR + cat->nmaps * esize, cat->config, cfglen);
	*len = PFS_CAT_HDR + cat->nmaps * esize + cfglen;
	return buf;
}

static bool same_entry(const struct pfs_cat_entry *a, const struct pfs_cat_entry *b)
{
	return a->id == b->id && a->parent == b->parent && a->size == b->size &&
	       a->snap_gen == b->snap_gen && a->ctime_ns == b->ctime_ns &&
	       a->atime_ns == b->atime_ns && a->mtime_ns == b->mtime_ns && a->mode == b->mode &&
	       a->uid == b->uid && a->gid == b->gid && a->kind == b->kind &&
	       !strcmp(a->name, b->name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pfs_catalog cat, again;
	uint8_t *buf = malloc(size ? size : 1); /* its own copy: ASan sees reads past the end */

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	int rc = pfs_catalog_decode(buf, size, &cat);
	if (rc != 0 && rc != -EUCLEAN && rc != -ENOMEM)
		fail("undocumented error", (unsigned long long)-rc);
	if (rc) {
		if (cat.maps || cat.nmaps)
			fail("a failed decode keeps maps", cat.nmaps);
		free(buf);
		return 0;
	}
	uint32_t version = fz_le32(buf + 4);
	size_t esize = version == 1 ? PFS_CAT_ENTRY_V1 : PFS_CAT_ENTRY;
	uint32_t n = fz_le32(buf + 24), cfglen = fz_le32(buf + 28);
	if (cat.nmaps != n)
		fail("map count is not the header's", cat.nmaps);
	if (PFS_CAT_HDR + (uint64_t)n * esize + cfglen != size)
		fail("record length is not header + entries + settings", size);
	if (memchr(cat.config, 0, sizeof(cat.config)) == NULL || strlen(cat.config) > cfglen)
		fail("settings text not terminated inside its length", cfglen);
	for (size_t i = 0; i < cat.nmaps; i++) {
		const struct pfs_cat_entry *m = &cat.maps[i];
		const uint8_t *e = buf + PFS_CAT_HDR + i * esize;
		size_t nl = strlen(m->name);
		if (m->kind != PFS_MAP_VOLUME && m->kind != PFS_MAP_SNAPSHOT)
			fail("map of unknown kind", (unsigned long long)m->kind);
		if (!pfs_name_valid(m->name) || nl == 0 || nl > PFS_NAME_MAX)
			fail("invalid map name accepted", i);
		if (nl != fz_le32(e + 44) || memcmp(m->name, e + 48, nl))
			fail("map name is not the bytes the entry stores", i);
		if (m->mode & ~07777u)
			fail("mode beyond the permission bits", m->mode);
	}

	/* Re-encoded in the input's version, it decodes to the same catalogue. */
	size_t len2;
	uint8_t *buf2 = encode(&cat, version, &len2);
	rc = pfs_catalog_decode(buf2, len2, &again);
	if (rc == -ENOMEM)
		goto out;
	if (rc)
		fail("the re-encoded record does not decode", (unsigned long long)-rc);
	if (again.gen != cat.gen || again.next_id != cat.next_id || again.nmaps != cat.nmaps ||
	    strcmp(again.config, cat.config))
		fail("re-encoded header or settings differ", again.nmaps);
	for (size_t i = 0; i < cat.nmaps; i++)
		if (!same_entry(&cat.maps[i], &again.maps[i]))
			fail("re-encoded map differs", i);
	pfs_catalog_release(&again);
out:
	free(buf2);
	pfs_catalog_release(&cat);
	free(buf);
	return 0;
}
