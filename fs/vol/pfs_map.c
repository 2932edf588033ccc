/* fs/pfs_map.c - block maps in memory: a hash table of loaded pages per volume or snapshot,
 * loaded from SQLite on first use (invariant 1). Page contents are guarded by the volume's
 * stripe locks, the table itself by v->lock. No engine or FTL I/O here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pfs_vol_int.h"

int pfs_map_init(struct pfs_vol *v)
{
	v->nbuckets = 64;
	v->buckets = calloc(v->nbuckets, sizeof(*v->buckets));
	if (!v->buckets)
		return -ENOMEM;
	pthread_mutex_init(&v->lock, NULL);
	return 0;
}

void pfs_map_forget(struct pfs_vol *v)
{
	pthread_mutex_lock(&v->lock);
	for (uint32_t b = 0; b < v->nbuckets; b++) {
		struct pfs_mpage *pg = v->buckets[b], *next;
		for (; pg; pg = next) {
			next = pg->next;
			free(pg);
		}
		v->buckets[b] = NULL;
	}
	v->npages = 0;
	v->ndirty = 0;
	pthread_mutex_unlock(&v->lock);
}

void pfs_map_destroy(struct pfs_vol *v)
{
	if (!v->buckets)
		return;
	pfs_map_forget(v);
	free(v->buckets);
	v->buckets = NULL;
	pthread_mutex_destroy(&v->lock);
}

static uint32_t bucket_of(uint64_t idx, uint32_t nbuckets)
{
	return (uint32_t)((idx * 0x9e3779b97f4a7c15ull) >> 32) % nbuckets;
}

struct pfs_mpage *pfs_map_find_locked(struct pfs_vol *v, uint64_t idx)
{
	for (struct pfs_mpage *pg = v->buckets[bucket_of(idx, v->nbuckets)]; pg; pg = pg->next)
		if (pg->idx == idx)
			return pg;
	return NULL;
}

bool pfs_map_drop_clean_locked(struct pfs_vol *v, uint64_t idx)
{
	struct pfs_mpage **pp = &v->buckets[bucket_of(idx, v->nbuckets)];

	while (*pp && (*pp)->idx != idx)
		pp = &(*pp)->next;
	if (!*pp || (*pp)->dirty)
		return false;
	struct pfs_mpage *pg = *pp;
	*pp = pg->next;
	v->npages--;
	free(pg);
	return true;
}

static void grow_locked(struct pfs_vol *v)
{
	uint32_t n = v->nbuckets * 2;
	struct pfs_mpage **nb = calloc(n, sizeof(*nb));

	if (!nb)
		return; /* longer chains, still correct */
	for (uint32_t b = 0; b < v->nbuckets; b++) {
		struct pfs_mpage *pg = v->buckets[b], *next;
		for (; pg; pg = next) {
			next = pg->next;
			uint32_t h = bucket_of(pg->idx, n);
			pg->next = nb[h];
			nb[h] = pg;
		}
	}
	free(v->buckets);
	v->buckets = nb;
	v->nbuckets = n;
}

int pfs_map_page(struct pfs *p, struct pfs_vol *v, uint64_t idx, bool create,
                 struct pfs_mpage **out)
{
	struct pfs_mpage *pg, *fresh = NULL;
	int rc;

	pthread_mutex_lock(&v->lock);
	pg = pfs_map_find_locked(v, idx);
	pthread_mutex_unlock(&v->lock);
	if (pg) {
		*out = pg;
		return 0;
	}
	/* Not loaded. The caller holds the stripe lock of IDX: a writer holds it exclusively, so
	 * no page can appear under it; readers may race each other (checked below). */
	fresh = malloc(sizeof(*fresh));
	if (!fresh)
		return -ENOMEM;
	fresh->idx = idx;
	fresh->dirty = false;
	rc = pfs_meta_page_load(p->meta, v->id, idx, fresh->ref);
	if (rc == -ENOENT) {
		if (!create) {
			free(fresh);
			*out = NULL;
			return 0;
		}
		memset(fresh->ref, 0, sizeof(fresh->ref));
		rc = 0;
	}
	if (rc) {
		free(fresh);
		return rc;
	}
	pthread_mutex_lock(&v->lock);
	/* Readers share the stripe lock, so another one may have loaded it meanwhile. */
	pg = pfs_map_find_locked(v, idx);
	if (pg) {
		pthread_mutex_unlock(&v->lock);
		free(fresh);
		*out = pg;
		return 0;
	}
	if (v->npages + 1 > (uint64_t)v->nbuckets * 2)
		grow_locked(v);
	uint32_t h = bucket_of(idx, v->nbuckets);
	fresh->next = v->buckets[h];
	v->buckets[h] = fresh;
	v->npages++;
	pthread_mutex_unlock(&v->lock);
	*out = fresh;
	return 0;
}

void pfs_map_set_run(struct pfs *p, struct pfs_vol *v, struct pfs_mpage *pg, uint32_t slot,
                     uint32_t n, const struct engine_ref *refs, struct engine_ref *old,
                     const uint8_t (*fp)[ENGINE_FP_LEN], unsigned log_flags)
{
	int64_t dnz = 0, dch = 0;

	for (uint32_t i = 0; i < n; i++) {
		old[i] = pg->ref[slot + i];
		/* Atomic (relaxed): the temperature walk (pfs_temp.c) reads loaded pages
		 * without the stripe lock. */
		__atomic_store_n(&pg->ref[slot + i].v, refs[i].v, __ATOMIC_RELAXED);
		dnz += (refs[i].v != 0) - (old[i].v != 0);
		dch += (engine_ref_kind(refs[i]) == ENGINE_REF_CHUNK) -
		       (engine_ref_kind(old[i]) == ENGINE_REF_CHUNK);
	}
	/* The page is marked dirty before the records take their lsns. A checkpoint drops the
	 * records below its cut because the pages it copies hold them; it finds those pages by
	 * their dirty mark. Marked after the lsn, a cut landing in between would skip the page
	 * (not dirty yet) and drop the record (below the cut): an acknowledged write lost. */
	if (!pg->dirty) {
		pg->dirty = true;
		pthread_mutex_lock(&v->lock);
		v->ndirty++;
		pthread_mutex_unlock(&v->lock);
	}
	pfs_log_set_run(p, v->id, pg->idx * PFS_PAGE_REFS + slot, refs, n, fp, log_flags);
	if (p->test_after_log)
		p->test_after_log(p);
	if (dnz)
		atomic_fetch_add(&v->nz_blocks, dnz);
	if (dch)
		atomic_fetch_add(&v->chunk_blocks, dch);
}

struct engine_ref pfs_map_set(struct pfs *p, struct pfs_vol *v, struct pfs_mpage *pg, uint32_t slot,
                              struct engine_ref ref)
{
	struct engine_ref old;

	pfs_map_set_run(p, v, pg, slot, 1, &ref, &old, NULL, 0);
	return old;
}

struct each_arg {
	struct pfs_vol *v;
	pfs_map_page_fn fn;
	void *arg;
};

static int each_stored(void *arg, uint64_t map, uint64_t idx, const struct engine_ref *refs)
{
	struct each_arg *a = arg;
	struct pfs_mpage *pg;

	(void)map;
	pthread_mutex_lock(&a->v->lock);
	pg = pfs_map_find_locked(a->v, idx);
	pthread_mutex_unlock(&a->v->lock);
	if (pg)
		return 0; /* visited from memory */
	return a->fn(a->arg, idx, refs);
}

int pfs_map_each_page(struct pfs *p, struct pfs_vol *v, pfs_map_page_fn fn, void *arg)
{
	struct each_arg a = {v, fn, arg};
	int rc = 0;

	/* Loaded pages first: they are newer than their rows. The caller holds v->rw for
	 * writing or otherwise keeps the map from changing shape. */
	pthread_mutex_lock(&v->lock);
	for (uint32_t b = 0; b < v->nbuckets && !rc; b++)
		for (struct pfs_mpage *pg = v->buckets[b]; pg && !rc; pg = pg->next)
			rc = fn(arg, pg->idx, pg->ref);
	pthread_mutex_unlock(&v->lock);
	if (rc)
		return rc;
	return pfs_meta_pages_each(p->meta, (int64_t)v->id, each_stored, &a);
}
