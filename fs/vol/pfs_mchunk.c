/* fs/vol/pfs_mchunk.c - fs's own records in the FTL: page copies, catalogue records and their
 * tags (log chunks are encoded in pfs_log.c). They make the segments alone enough to rebuild
 * the SQLite metadata; their layouts are in meta/pfs_format.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pfs_vol_int.h"

#define CAT_MAGIC    PFS_CAT_MAGIC
#define CAT_VERSION  PFS_CAT_VERSION
#define CAT_HDR      PFS_CAT_HDR
#define CAT_ENTRY_V1 PFS_CAT_ENTRY_V1
#define CAT_ENTRY    PFS_CAT_ENTRY
#define PAT_ENTRY    PFS_PAGE_COPY_PAT_ENTRY

int pfs_mchunk_write(struct ftl *ftl, const void *buf, uint32_t len, const struct pfs_mtag *t,
                     uint64_t *addr)
{
	uint8_t hash[FTL_HASH_LEN];
	struct ftl_write_opts o = {.prev = FTL_ADDR_NONE, .flags = PFS_CHUNK_META, .reserve = true};
	struct ftl_addr a;
	int rc;

	pfs_mtag_encode(t, hash);
	rc = ftl_write(ftl, buf, len, hash, &o, &a);
	if (!rc)
		*addr = a.v;
	return rc;
}

int pfs_mrecs_add(struct pfs_mrecs *l, uint64_t addr, const uint8_t hash[FTL_HASH_LEN],
                  uint32_t hash_len)
{
	struct pfs_mtag t;

	if (hash_len < FTL_HASH_LEN) {
		if (l->nunread == l->capunread) {
			size_t cap = l->capunread ? l->capunread * 2 : 1024;
			uint64_t *n = realloc(l->unread, cap * sizeof(*n));
			if (!n)
				return -ENOMEM;
			l->unread = n;
			l->capunread = cap;
		}
		l->unread[l->nunread++] = addr;
		return 0;
	}
	if (pfs_mtag_decode(hash, &t))
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 1024;
		struct pfs_mrec *n = realloc(l->v, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		l->v = n;
		l->cap = cap;
	}
	l->v[l->n++] = (struct pfs_mrec){addr, t};
	if (t.gen > l->max_gen)
		l->max_gen = t.gen;
	return 0;
}

int pfs_mrecs_resolve(struct pfs_mrecs *l, struct ftl *ftl)
{
	uint8_t hash[FTL_HASH_LEN];
	int rc = 0;

	for (size_t i = 0; i < l->nunread && !rc; i++) {
		int r = ftl_read_hash(ftl, (struct ftl_addr){l->unread[i]}, hash);
		if (r == -ENOMEM)
			rc = r;
		else if (r == 0)
			rc = pfs_mrecs_add(l, l->unread[i], hash, FTL_HASH_LEN);
		else
			pfs_logl(LOG_WARNING,
			         "pstorfs: metadata record %llu: summary unreadable (%d): left out",
			         (unsigned long long)l->unread[i], r);
	}
	free(l->unread);
	l->unread = NULL;
	l->nunread = l->capunread = 0;
	return rc;
}

void pfs_mrecs_free(struct pfs_mrecs *l)
{
	free(l->v);
	free(l->unread);
	memset(l, 0, sizeof(*l));
}

int pfs_mrec_cmp(const void *a, const void *b)
{
	const struct pfs_mtag *x = &((const struct pfs_mrec *)a)->tag;
	const struct pfs_mtag *y = &((const struct pfs_mrec *)b)->tag;

	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	if (x->a != y->a)
		return x->a < y->a ? -1 : 1;
	if (x->b != y->b)
		return x->b < y->b ? -1 : 1;
	return x->gen < y->gen ? -1 : x->gen > y->gen;
}

int pfs_mchunk_write_page(struct pfs *p, uint64_t map, uint64_t idx, const struct engine_ref *refs,
                          uint64_t gen, uint64_t *addr)
{
	uint8_t *buf = malloc(PFS_PAGE_BLOB + 4 + PFS_PAGE_REFS * PAT_ENTRY);
	uint32_t npat = 0, len;
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	pfs_page_encode(map, idx, refs, buf);
	uint8_t *pe = buf + PFS_PAGE_BLOB + 4;
	for (uint32_t i = 0; i < PFS_PAGE_REFS; i++) {
		uint8_t pat[16];
		if (!engine_ref_is_table_pattern(refs[i]))
			continue;
		int period = engine_ref_pattern(p->eng, refs[i], pat);
		if (period < 0) {
			rc = period;
			goto out;
		}
		memset(pe, 0, PAT_ENTRY);
		pfs_put64(pe, refs[i].v);
		pe[8] = (uint8_t)period;
		memcpy(pe + 9, pat, 16);
		pe += PAT_ENTRY;
		npat++;
	}
	pfs_put32(buf + PFS_PAGE_BLOB, npat);
	len = PFS_PAGE_BLOB + 4 + npat * PAT_ENTRY;
	struct pfs_mtag t = {PFS_MCHUNK_PAGE, map, idx, gen};
	rc = pfs_mchunk_write(p->ftl, buf, len, &t, addr);
out:
	free(buf);
	return rc;
}

int pfs_mchunk_read_page(struct ftl *ftl, uint64_t addr, uint64_t idx, struct engine_ref *refs,
                         pfs_pattern_fn pats_fn, void *arg)
{
	uint8_t hash[FTL_HASH_LEN], flags = 0;
	uint8_t *buf = malloc(FTL_CHUNK_MAX);
	struct pfs_mtag t;
	int rc, len;

	if (!buf)
		return -ENOMEM;
	rc = ftl_read_hash(ftl, (struct ftl_addr){addr}, hash);
	if (rc)
		goto out;
	rc = -EUCLEAN;
	if (pfs_mtag_decode(hash, &t) || t.kind != PFS_MCHUNK_PAGE || t.b != idx)
		goto out;
	len = ftl_read(ftl, (struct ftl_addr){addr}, buf, FTL_CHUNK_MAX, &flags);
	if (len < 0) {
		rc = len;
		goto out;
	}
	rc = -EUCLEAN;
	if (!(flags & PFS_CHUNK_META) || len < (int)(PFS_PAGE_BLOB + 4))
		goto out;
	rc = pfs_page_decode(t.a, idx, buf, PFS_PAGE_BLOB, refs);
	if (rc)
		goto out;
	uint32_t npat = pfs_get32(buf + PFS_PAGE_BLOB);
	if ((size_t)len != PFS_PAGE_BLOB + 4 + (size_t)npat * PAT_ENTRY) {
		rc = -EUCLEAN;
		goto out;
	}
	for (uint32_t i = 0; i < npat && pats_fn && !rc; i++) {
		const uint8_t *pe = buf + PFS_PAGE_BLOB + 4 + (size_t)i * PAT_ENTRY;
		if (pe[8] < 1 || pe[8] > 16)
			rc = -EUCLEAN;
		else
			rc = pats_fn(arg, pfs_get64(pe), pe + 9, pe[8]);
	}
out:
	free(buf);
	return rc;
}

int pfs_mchunk_write_catalog(struct pfs *p, uint64_t gen, uint64_t *addr)
{
	char cfg[PFS_CFG_TEXT_MAX];
	size_t cfglen = 0, n = 0, cap;
	uint8_t *buf;
	uint64_t next_id = 0;
	int rc;

	for (int k = 0; k < PFS_CFG_COUNT; k++) {
		char v[128];
		if (pfs_config_get(p, pfs_config_names[k], v, sizeof(v)) == 0)
			cfglen += (size_t)snprintf(cfg + cfglen, sizeof(cfg) - cfglen, "%s=%s\n",
			                           pfs_config_names[k], v);
		if (cfglen >= sizeof(cfg))
			cfglen = sizeof(cfg) - 1;
	}
	buf = malloc(FTL_CHUNK_MAX);
	if (!buf)
		return -ENOMEM;
	cap = (FTL_CHUNK_MAX - CAT_HDR - cfglen) / CAT_ENTRY;
	pthread_mutex_lock(&p->cat_lock);
	for (struct pfs_vol *v = p->vols; v; v = v->next) {
		if (v->id >= next_id)
			next_id = v->id + 1;
		if (atomic_load(&v->gone))
			continue;
		if (n == cap) {
			n++;
			break;
		}
		uint8_t *e = buf + CAT_HDR + n * CAT_ENTRY;
		memset(e, 0, CAT_ENTRY);
		pfs_put64(e, v->id);
		pfs_put64(e + 8, v->parent);
		pfs_put64(e + 16, atomic_load(&v->size));
		pfs_put64(e + 24, v->snap_gen);
		pfs_put64(e + 32, (uint64_t)v->ctime_ns);
		pfs_put32(e + 40, (uint32_t)v->kind);
		pfs_put32(e + 44, (uint32_t)strlen(v->name));
		memcpy(e + 48, v->name, strlen(v->name));
		pfs_put32(e + CAT_ENTRY_V1, v->mode);
		pfs_put32(e + CAT_ENTRY_V1 + 4, v->uid);
		pfs_put32(e + CAT_ENTRY_V1 + 8, v->gid);
		pfs_put64(e + CAT_ENTRY_V1 + 16, (uint64_t)v->atime_ns);
		pfs_put64(e + CAT_ENTRY_V1 + 24, (uint64_t)atomic_load(&v->mtime_ns));
		n++;
	}
	pthread_mutex_unlock(&p->cat_lock);
	if (n > cap) {
		/* More maps than one record holds: the previous record stays the newest, so a
		 * rebuild misses the newest maps; mounting is not affected. */
		pfs_logl(
		    LOG_WARNING,
		    "pstorfs: catalogue record: more than %zu volumes and snapshots; the flash "
		    "copy of the catalogue is not updated",
		    cap);
		rc = -E2BIG;
		goto out;
	}
	pfs_put32(buf, CAT_MAGIC);
	pfs_put32(buf + 4, CAT_VERSION);
	pfs_put64(buf + 8, gen);
	pfs_put64(buf + 16, next_id);
	pfs_put32(buf + 24, (uint32_t)n);
	pfs_put32(buf + 28, (uint32_t)cfglen);
	memcpy(buf + CAT_HDR + n * CAT_ENTRY, cfg, cfglen);
	struct pfs_mtag t = {PFS_MCHUNK_CATALOG, 0, 0, gen};
	rc = pfs_mchunk_write(p->ftl, buf, (uint32_t)(CAT_HDR + n * CAT_ENTRY + cfglen), &t, addr);
out:
	free(buf);
	return rc;
}

int pfs_catalog_decode(const uint8_t *buf, size_t len, struct pfs_catalog *cat)
{
	int rc = -EUCLEAN;

	memset(cat, 0, sizeof(*cat));
	if (len < CAT_HDR || pfs_get32(buf) != CAT_MAGIC)
		return rc;
	uint32_t version = pfs_get32(buf + 4);
	if (version != 1 && version != CAT_VERSION)
		return rc;
	size_t esize = version == 1 ? CAT_ENTRY_V1 : CAT_ENTRY;
	uint32_t n = pfs_get32(buf + 24), cfglen = pfs_get32(buf + 28);
	if ((uint64_t)CAT_HDR + (uint64_t)n * esize + cfglen != (uint64_t)len ||
	    cfglen >= PFS_CFG_TEXT_MAX)
		return rc;
	cat->gen = pfs_get64(buf + 8);
	cat->next_id = pfs_get64(buf + 16);
	cat->maps = calloc(n ? n : 1, sizeof(*cat->maps));
	if (!cat->maps)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *e = buf + CAT_HDR + (size_t)i * esize;
		struct pfs_cat_entry *m = &cat->maps[i];
		uint32_t nl = pfs_get32(e + 44);
		m->id = pfs_get64(e);
		m->parent = pfs_get64(e + 8);
		m->size = pfs_get64(e + 16);
		m->snap_gen = pfs_get64(e + 24);
		m->ctime_ns = (int64_t)pfs_get64(e + 32);
		m->kind = (int)pfs_get32(e + 40);
		/* The name is exactly its NL bytes: a NUL inside would make a shorter name
		 * than the entry says (found by fuzz_catalog). */
		if (nl == 0 || nl > PFS_NAME_MAX || memchr(e + 48, 0, nl) ||
		    (m->kind != PFS_MAP_VOLUME && m->kind != PFS_MAP_SNAPSHOT))
			goto out_bad;
		memcpy(m->name, e + 48, nl);
		m->name[nl] = 0;
		if (!pfs_name_valid(m->name))
			goto out_bad;
		m->mode = PFS_VOL_MODE; /* v1 records predate attributes: the defaults */
		m->atime_ns = m->mtime_ns = m->ctime_ns;
		if (version >= 2) {
			m->mode = pfs_get32(e + CAT_ENTRY_V1) & 07777;
			m->uid = pfs_get32(e + CAT_ENTRY_V1 + 4);
			m->gid = pfs_get32(e + CAT_ENTRY_V1 + 8);
			m->atime_ns = (int64_t)pfs_get64(e + CAT_ENTRY_V1 + 16);
			m->mtime_ns = (int64_t)pfs_get64(e + CAT_ENTRY_V1 + 24);
		}
	}
	cat->nmaps = n;
	memcpy(cat->config, buf + CAT_HDR + (size_t)n * esize, cfglen);
	cat->config[cfglen] = 0;
	return 0;
out_bad:
	pfs_catalog_release(cat);
	return -EUCLEAN;
}

int pfs_mchunk_read_catalog(struct ftl *ftl, uint64_t addr, struct pfs_catalog *cat)
{
	uint8_t *buf = malloc(FTL_CHUNK_MAX), flags = 0;
	int len, rc;

	memset(cat, 0, sizeof(*cat));
	if (!buf)
		return -ENOMEM;
	len = ftl_read(ftl, (struct ftl_addr){addr}, buf, FTL_CHUNK_MAX, &flags);
	rc = len < 0 ? len : pfs_catalog_decode(buf, (size_t)len, cat);
	free(buf);
	return rc;
}

void pfs_catalog_release(struct pfs_catalog *cat)
{
	free(cat->maps);
	cat->maps = NULL;
	cat->nmaps = 0;
}
