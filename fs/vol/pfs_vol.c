/* fs/pfs_vol.c - the catalogue of volumes and snapshots: loading it at mount, looking names up,
 * and the volume-level changes (create, delete, resize, rename). Every change runs under
 * commit_lock and is durable when it returns (its own SQLite transaction).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pfs_vol_int.h"

static struct pfs_vol *vol_new(struct pfs *p, uint64_t id, int kind, uint64_t parent,
                               const char *name, uint64_t size, int64_t ctime_ns, int64_t nz,
                               int64_t chunks)
{
	struct pfs_vol *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	if (pfs_map_init(v)) {
		free(v);
		return NULL;
	}
	v->id = id;
	v->kind = kind;
	v->parent = parent;
	snprintf(v->name, sizeof(v->name), "%s", name);
	atomic_init(&v->size, size);
	v->ctime_ns = ctime_ns;
	atomic_init(&v->mtime_ns, ctime_ns);
	v->mode = PFS_VOL_MODE;
	v->atime_ns = ctime_ns;
	v->store = p;
	atomic_init(&v->nz_blocks, nz);
	atomic_init(&v->chunk_blocks, chunks);
	atomic_init(&v->refs, 1);
	pthread_rwlock_init(&v->rw, NULL);
	for (uint32_t i = 0; i < PFS_STRIPES; i++)
		pthread_rwlock_init(&v->stripe[i], NULL);
	pthread_mutex_init(&v->usage_lock, NULL);
	return v;
}

void pfs_vol_unref(struct pfs_vol *v)
{
	if (!v || atomic_fetch_sub(&v->refs, 1) != 1)
		return;
	pfs_map_destroy(v);
	pfs_temp_vol_free(v);
	pthread_rwlock_destroy(&v->rw);
	for (uint32_t i = 0; i < PFS_STRIPES; i++)
		pthread_rwlock_destroy(&v->stripe[i]);
	pthread_mutex_destroy(&v->usage_lock);
	free(v);
}

static void cat_add(struct pfs *p, struct pfs_vol *v)
{
	pthread_mutex_lock(&p->cat_lock);
	struct pfs_vol **pp = &p->vols;
	while (*pp) /* keep id order: listings come out in creation order */
		pp = &(*pp)->next;
	v->next = NULL;
	*pp = v;
	pthread_mutex_unlock(&p->cat_lock);
}

/* Unlinks V from the catalogue and drops the catalogue's reference. */
static void cat_remove(struct pfs *p, struct pfs_vol *v)
{
	pthread_mutex_lock(&p->cat_lock);
	for (struct pfs_vol **pp = &p->vols; *pp; pp = &(*pp)->next) {
		if (*pp == v) {
			*pp = v->next;
			break;
		}
	}
	atomic_store(&v->gone, true);
	pthread_mutex_unlock(&p->cat_lock);
	pfs_vol_unref(v);
}

static int load_one(void *arg, uint64_t id, int kind, uint64_t parent, const char *name,
                    uint64_t size, int64_t ctime_ns, int64_t nz, int64_t chunks)
{
	struct pfs *p = arg;
	struct pfs_vol *v;

	if (kind != PFS_MAP_VOLUME && kind != PFS_MAP_SNAPSHOT)
		return -EUCLEAN;
	v = vol_new(p, id, kind, parent, name, size, ctime_ns, nz, chunks);
	if (!v)
		return -ENOMEM;
	cat_add(p, v);
	return 0;
}

static int load_attr(void *arg, uint64_t id, const struct pfs_meta_attr *a)
{
	struct pfs *p = arg;

	for (struct pfs_vol *v = p->vols; v; v = v->next) {
		if (v->id != id)
			continue;
		v->mode = a->mode;
		v->uid = a->uid;
		v->gid = a->gid;
		v->atime_ns = a->atime_ns;
		atomic_store(&v->mtime_ns, a->mtime_ns);
		break;
	}
	return 0; /* a row of a map that is gone is left for the map's delete */
}

int pfs_catalog_load(struct pfs *p)
{
	int rc = pfs_meta_maps_each(p->meta, load_one, p);

	if (!rc)
		rc = pfs_meta_attrs_each(p->meta, load_attr, p);

	/* Not inside the walk above: it holds db_lock. The catalogue is private to mount here. */
	for (struct pfs_vol *v = p->vols; v && !rc; v = v->next) {
		char key[48];
		snprintf(key, sizeof(key), "snapgen.%llu", (unsigned long long)v->id);
		if (v->kind == PFS_MAP_SNAPSHOT && pfs_meta_kv_get(p->meta, key, &v->snap_gen))
			v->snap_gen = 0;
	}
	return rc;
}

void pfs_catalog_free(struct pfs *p)
{
	pthread_mutex_lock(&p->cat_lock);
	struct pfs_vol *v = p->vols;
	p->vols = NULL;
	pthread_mutex_unlock(&p->cat_lock);
	while (v) {
		struct pfs_vol *next = v->next;
		pfs_vol_unref(v);
		v = next;
	}
}

static struct pfs_vol *find_locked(struct pfs *p, enum pfs_map_kind kind, uint64_t parent,
                                   const char *name)
{
	for (struct pfs_vol *v = p->vols; v; v = v->next)
		if (v->kind == kind && v->parent == parent && !strcmp(v->name, name))
			return v;
	return NULL;
}

struct pfs_vol *pfs_vol_find(struct pfs *p, enum pfs_map_kind kind, uint64_t parent,
                             const char *name)
{
	pthread_mutex_lock(&p->cat_lock);
	struct pfs_vol *v = find_locked(p, kind, parent, name);
	if (v)
		atomic_fetch_add(&v->refs, 1);
	pthread_mutex_unlock(&p->cat_lock);
	return v;
}

struct pfs_vol *pfs_vol_by_id(struct pfs *p, uint64_t id)
{
	struct pfs_vol *v;

	pthread_mutex_lock(&p->cat_lock);
	for (v = p->vols; v; v = v->next)
		if (v->id == id)
			break;
	if (v)
		atomic_fetch_add(&v->refs, 1);
	pthread_mutex_unlock(&p->cat_lock);
	return v;
}

static void cat_changed_locked(struct pfs *p);

/* Caller holds cat_lock. */
static void vol_info_locked(struct pfs_vol *v, struct pfs_vol_info *info)
{
	memset(info, 0, sizeof(*info));
	info->id = v->id;
	info->parent = v->parent;
	info->kind = v->kind;
	snprintf(info->name, sizeof(info->name), "%s", v->name);
	info->mode = v->mode;
	info->uid = v->uid;
	info->gid = v->gid;
	info->atime_ns = v->atime_ns;
	info->size = atomic_load(&v->size);
	info->ctime_ns = v->ctime_ns;
	info->mtime_ns = atomic_load(&v->mtime_ns);
	info->nz_blocks = atomic_load(&v->nz_blocks);
	info->chunk_blocks = atomic_load(&v->chunk_blocks);
	info->gone = atomic_load(&v->gone);
}

void pfs_vol_get_info(struct pfs_vol *v, struct pfs_vol_info *info)
{
	pthread_mutex_lock(&v->store->cat_lock);
	vol_info_locked(v, info);
	pthread_mutex_unlock(&v->store->cat_lock);
}

int pfs_vol_each(struct pfs *p, int kind, uint64_t parent, pfs_vol_fn fn, void *arg)
{
	struct pfs_vol_info info;
	int rc = 0;

	pthread_mutex_lock(&p->cat_lock);
	for (struct pfs_vol *v = p->vols; v && !rc; v = v->next) {
		if ((int)v->kind == kind && (kind == PFS_MAP_VOLUME || v->parent == parent)) {
			vol_info_locked(v, &info);
			rc = fn(arg, v, &info);
		}
	}
	pthread_mutex_unlock(&p->cat_lock);
	return rc;
}

int pfs_vol_setattr(struct pfs *p, struct pfs_vol *v, const struct pfs_attr *a)
{
	struct pfs_meta_attr at;
	int rc;

	if (v->kind != PFS_MAP_VOLUME) {
		return pfs_fail(p, PFS_ERR_SNAPSHOT_READONLY, 0, "attributes of %s", v->name);
	}
	pthread_mutex_lock(&p->commit_lock);
	if (atomic_load(&v->gone)) {
		rc = -ENOENT;
		goto out_unlock;
	}
	pthread_mutex_lock(&p->cat_lock);
	at =
	    (struct pfs_meta_attr){v->mode, v->uid, v->gid, v->atime_ns, atomic_load(&v->mtime_ns)};
	pthread_mutex_unlock(&p->cat_lock);
	if (a->mask & PFS_ATTR_MODE)
		at.mode = a->mode & 07777;
	if (a->mask & PFS_ATTR_UID)
		at.uid = a->uid;
	if (a->mask & PFS_ATTR_GID)
		at.gid = a->gid;
	if (a->mask & PFS_ATTR_ATIME)
		at.atime_ns = a->atime_ns;
	if (a->mask & PFS_ATTR_MTIME)
		at.mtime_ns = a->mtime_ns;
	/* SQLite first: memory changes only once the change is durable there. */
	rc = pfs_meta_begin(p->meta);
	if (rc)
		goto out_unlock;
	rc = pfs_meta_attr_set(p->meta, v->id, &at);
	if (rc) {
		pfs_meta_rollback(p->meta);
		goto out_unlock;
	}
	rc = pfs_meta_commit(p->meta);
	if (rc)
		goto out_unlock;
	pthread_mutex_lock(&p->cat_lock);
	v->mode = at.mode;
	v->uid = at.uid;
	v->gid = at.gid;
	v->atime_ns = at.atime_ns;
	atomic_store(&v->mtime_ns, at.mtime_ns);
	pthread_mutex_unlock(&p->cat_lock);
	pfs_log_change(
	    p, &(struct pfs_change){.kind = PFS_CHANGE_SETATTR, .name = v->name, .attr = *a}, v->id,
	    0);
	/* The catalogue's flash record follows at once, as for every catalogue change. */
	cat_changed_locked(p);
out_unlock:
	pthread_mutex_unlock(&p->commit_lock);
	if (rc && rc != -ENOENT)
		pfs_fail(p, PFS_ERR_META_WRITE, rc, "attributes of %s", v->name);
	return rc;
}

/* The catalogue's flash record follows every catalogue change at once, so a rebuild from
 * flash never misses a volume whose writes the log already holds. Caller holds commit_lock. */
static void cat_changed_locked(struct pfs *p)
{
	atomic_store(&p->cat_dirty, true);
	int rc = pfs_commit_locked(p);
	if (rc)
		pfs_logl(LOG_WARNING, "pstorfs: catalogue record: commit failed: %d (retried)", rc);
}

struct chunk_list {
	uint64_t *idx, *chunk;
	size_t n, cap;
};

static int list_chunk(void *arg, uint64_t map, uint64_t idx, const struct engine_ref *refs,
                      uint64_t chunk)
{
	struct chunk_list *l = arg;

	(void)map;
	(void)refs;
	if (chunk == PFS_NO_CHUNK)
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		uint64_t *a = realloc(l->idx, cap * sizeof(*a));
		if (!a)
			return -ENOMEM;
		l->idx = a;
		uint64_t *b = realloc(l->chunk, cap * sizeof(*b));
		if (!b)
			return -ENOMEM;
		l->chunk = b;
		l->cap = cap;
	}
	l->idx[l->n] = idx;
	l->chunk[l->n++] = chunk;
	return 0;
}

/* The flash copies a map's rows point to, to free after the change that drops the rows. */
static int chunks_of(struct pfs *p, uint64_t map, struct chunk_list *l)
{
	return pfs_meta_pages_each_chunk(p->meta, (int64_t)map, false, list_chunk, l);
}

static void chunk_list_free(struct chunk_list *l)
{
	free(l->idx);
	free(l->chunk);
}

static int check_size(struct pfs *p, uint64_t size)
{
	if (size == 0) {
		pfs_set_msg(p, "size must be greater than 0");
		return -EINVAL;
	}
	if (size > p->max_volume_bytes) {
		pfs_set_msg(p, "size %llu is beyond the largest volume (%llu bytes)",
		            (unsigned long long)size, (unsigned long long)p->max_volume_bytes);
		return -ENOSPC;
	}
	return 0;
}

/* Creates the catalogue row and the in-memory volume. Caller holds commit_lock and checked the
 * name. SIZE 0 is allowed here (a file created by open(O_CREAT) grows by writes). */
static int vol_create_locked(struct pfs *p, const char *name, uint64_t size, uint64_t *id_out,
                             struct pfs_vol **out)
{
	int64_t now = pfs_now_ns();
	uint64_t id;
	int rc;

	pthread_mutex_lock(&p->cat_lock);
	bool taken = find_locked(p, PFS_MAP_VOLUME, 0, name) != NULL;
	pthread_mutex_unlock(&p->cat_lock);
	if (taken) {
		pfs_set_msg(p, "volume %s already exists", name);
		return -EEXIST;
	}
	rc = pfs_meta_begin(p->meta);
	if (rc)
		return rc;
	rc = pfs_meta_map_insert(p->meta, PFS_MAP_VOLUME, 0, name, size, now, &id);
	if (rc) {
		pfs_meta_rollback(p->meta);
		pfs_fail(p, PFS_ERR_META_WRITE, rc, "volume create %s", name);
		return rc;
	}
	rc = pfs_meta_commit(p->meta);
	if (rc) {
		pfs_fail(p, PFS_ERR_META_WRITE, rc, "volume create %s", name);
		return rc;
	}
	struct pfs_vol *v = vol_new(p, id, PFS_MAP_VOLUME, 0, name, size, now, 0, 0);
	if (!v)
		return -ENOMEM; /* the row exists: it is loaded at the next mount */
	cat_add(p, v);
	pfs_log_change(
	    p, &(struct pfs_change){.kind = PFS_CHANGE_VOL_CREATE, .name = name, .size = size}, id,
	    0);
	cat_changed_locked(p);
	if (id_out)
		*id_out = id;
	if (out) {
		atomic_fetch_add(&v->refs, 1);
		*out = v;
	}
	return 0;
}

int pfs_vol_create_file(struct pfs *p, const char *name, struct pfs_vol **out)
{
	int rc;

	if (!pfs_name_valid(name))
		return -EINVAL;
	pthread_mutex_lock(&p->commit_lock);
	rc = vol_create_locked(p, name, 0, NULL, out);
	pthread_mutex_unlock(&p->commit_lock);
	return rc;
}

int pfs_vol_create(struct pfs *p, const char *name, uint64_t size, uint64_t *id)
{
	int rc;

	if (!pfs_name_valid(name)) {
		pfs_set_msg(p, "bad volume name '%s' (1..64 of A-Z a-z 0-9 . _ -, no leading .)",
		            name);
		return -EINVAL;
	}
	rc = check_size(p, size);
	if (rc)
		return rc;
	pthread_mutex_lock(&p->commit_lock);
	rc = vol_create_locked(p, name, size, id, NULL);
	pthread_mutex_unlock(&p->commit_lock);
	return rc;
}

struct defer_arg {
	struct pfs *p;
	uint64_t first_page;
	uint64_t *idxs;
	size_t n, cap;
};

static int defer_page_refs(void *arg, uint64_t idx, const struct engine_ref *refs)
{
	struct defer_arg *a = arg;

	(void)idx;
	for (uint32_t i = 0; i < PFS_PAGE_REFS; i++)
		pfs_defer_put(a->p, refs[i]);
	return 0;
}

/* Queues the release of every reference V holds. Caller holds v->rw for writing, so the map
 * does not change; the releases happen after the next durable commit (invariant 4). */
int pfs_vol_defer_all(struct pfs *p, struct pfs_vol *v)
{
	struct defer_arg a = {.p = p};
	return pfs_map_each_page(p, v, defer_page_refs, &a);
}

static int collect_idx(void *arg, uint64_t idx, const struct engine_ref *refs)
{
	struct defer_arg *a = arg;

	(void)refs;
	if (idx < a->first_page)
		return 0;
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 64;
		uint64_t *n = realloc(a->idxs, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		a->idxs = n;
		a->cap = cap;
	}
	a->idxs[a->n++] = idx;
	return 0;
}

/* Zeroes every reference of V from block FIRST_BLK on (shrink). Caller holds v->rw for
 * writing. */
static int clear_from(struct pfs *p, struct pfs_vol *v, uint64_t first_blk)
{
	struct defer_arg a = {.p = p, .first_page = first_blk / PFS_PAGE_REFS};
	int rc = pfs_map_each_page(p, v, collect_idx, &a);

	for (size_t i = 0; i < a.n && !rc; i++) {
		pthread_rwlock_t *l = pfs_stripe(v, a.idxs[i]);
		struct pfs_mpage *pg = NULL;

		pthread_rwlock_wrlock(l);
		rc = pfs_map_page(p, v, a.idxs[i], false, &pg);
		for (uint32_t s = 0; !rc && pg && s < PFS_PAGE_REFS; s++) {
			uint64_t blk = a.idxs[i] * PFS_PAGE_REFS + s;
			if (blk >= first_blk && pg->ref[s].v)
				pfs_defer_put(p, pfs_map_set(p, v, pg, s, ENGINE_REF_ZERO_VALUE));
		}
		pthread_rwlock_unlock(l);
	}
	free(a.idxs);
	return rc;
}

int pfs_vol_resize(struct pfs *p, struct pfs_vol *v, uint64_t size)
{
	uint64_t old;
	int rc = 0;

	if (size > p->max_volume_bytes) {
		pfs_set_msg(p, "size %llu is beyond the largest volume (%llu bytes)",
		            (unsigned long long)size, (unsigned long long)p->max_volume_bytes);
		return -ENOSPC;
	}
	if (v->kind != PFS_MAP_VOLUME)
		return -EROFS;
	pthread_rwlock_wrlock(&v->rw);
	old = atomic_load(&v->size);
	if (size < old) {
		/* Bytes past the new end must read as zeros if the volume grows again. */
		uint32_t bs = p->bs;
		if (size % bs) {
			uint64_t end = (size / bs + 1) * (uint64_t)bs;
			if (end > old)
				end = old;
			pthread_rwlock_unlock(&v->rw);
			rc = pfs_vol_punch(p, v, size, end - size);
			pthread_rwlock_wrlock(&v->rw);
			if (rc)
				goto out_unlock;
		}
		rc = clear_from(p, v, (size + bs - 1) / bs);
		if (rc)
			goto out_unlock;
	}
	atomic_store(&v->size, size);
	atomic_store(&v->mtime_ns, pfs_now_ns());
	pthread_mutex_lock(&v->lock);
	v->size_dirty = true;
	pthread_mutex_unlock(&v->lock);
	/* Under the write lock: ordered against every write to V. */
	pfs_log_change(
	    p, &(struct pfs_change){.kind = PFS_CHANGE_RESIZE, .name = v->name, .size = size},
	    v->id, 0);
out_unlock:
	pthread_rwlock_unlock(&v->rw);
	if (!rc)
		rc = pfs_commit(p); /* a size change is metadata the user expects to stick */
	return rc;
}

/* Takes one reference per block of a map: for a new map (invariant 2), or to undo
 * pfs_vol_defer_all when the change it prepared failed (the queued releases then balance). */
static int regain_page_refs(void *arg, uint64_t idx, const struct engine_ref *refs)
{
	struct pfs *p = arg;

	(void)idx;
	for (uint32_t i = 0; i < PFS_PAGE_REFS; i++) {
		int rc = engine_ref_get(p->eng, refs[i]);
		if (rc)
			pfs_logl(LOG_ERR, "pstorfs: reference %#llx: get failed %d",
			         (unsigned long long)refs[i].v, rc);
	}
	return 0;
}

int pfs_vol_delete(struct pfs *p, const char *name)
{
	struct pfs_vol *v;
	int rc;

	pthread_mutex_lock(&p->commit_lock);
	v = pfs_vol_find(p, PFS_MAP_VOLUME, 0, name);
	if (!v) {
		pfs_set_msg(p, "no volume %s", name);
		rc = -ENOENT;
		goto out_unlock;
	}
	pthread_mutex_lock(&p->cat_lock);
	bool has_snaps = false;
	for (struct pfs_vol *s = p->vols; s; s = s->next)
		has_snaps |= s->kind == PFS_MAP_SNAPSHOT && s->parent == v->id;
	pthread_mutex_unlock(&p->cat_lock);
	if (has_snaps) {
		pfs_set_msg(p, "volume %s has snapshots: delete them first", name);
		rc = -EBUSY;
		goto out_unref;
	}
	pthread_rwlock_wrlock(&v->rw);
	struct chunk_list copies = {0};
	/* Queue the releases while the rows still exist; they happen after the commit below. */
	rc = chunks_of(p, v->id, &copies);
	if (!rc)
		rc = pfs_vol_defer_all(p, v);
	if (!rc)
		rc = pfs_meta_begin(p->meta);
	if (!rc) {
		rc = pfs_meta_map_delete(p->meta, v->id);
		if (rc)
			pfs_meta_rollback(p->meta);
		else
			rc = pfs_meta_commit(p->meta);
	}
	if (rc) {
		pfs_map_each_page(p, v, regain_page_refs, p); /* the queued releases stand */
		pthread_rwlock_unlock(&v->rw);
		chunk_list_free(&copies);
		pfs_fail(p, PFS_ERR_META_WRITE, rc, "volume delete %s", name);
		goto out_unref;
	}
	atomic_store(&v->gone, true);
	pfs_map_forget(v);
	pfs_log_change(p, &(struct pfs_change){.kind = PFS_CHANGE_VOL_DELETE, .name = name}, v->id,
	               0);
	pthread_rwlock_unlock(&v->rw);
	cat_remove(p, v);
	for (size_t i = 0; i < copies.n; i++)
		pfs_defer_mfree(p, copies.chunk[i]); /* no snapshot shares them: it has none */
	chunk_list_free(&copies);
	atomic_store(&p->cat_dirty, true);
	rc = pfs_commit_locked(p);
	/* Its temperatures go too; what a failure leaves, the next mount drops. */
	int trc = pfs_temp_drop_locked(p, v->id);
	if (trc)
		pfs_logl(LOG_WARNING, "pstorfs: volume delete %s: temperatures left: %s", name,
		         strerror(-trc));
out_unref:
	pfs_vol_unref(v);
out_unlock:
	pthread_mutex_unlock(&p->commit_lock);
	return rc;
}

int pfs_vol_rename(struct pfs *p, const char *from, const char *to)
{
	struct pfs_vol *v = NULL;
	int rc;

	if (!pfs_name_valid(to)) {
		pfs_set_msg(p, "bad volume name '%s'", to);
		return -EINVAL;
	}
	pthread_mutex_lock(&p->commit_lock);
	v = pfs_vol_find(p, PFS_MAP_VOLUME, 0, from);
	if (!v) {
		pfs_set_msg(p, "no volume %s", from);
		rc = -ENOENT;
		goto out_unlock;
	}
	pthread_mutex_lock(&p->cat_lock);
	bool taken = find_locked(p, PFS_MAP_VOLUME, 0, to) != NULL;
	pthread_mutex_unlock(&p->cat_lock);
	if (taken) {
		pfs_set_msg(p, "volume %s already exists", to);
		rc = strcmp(from, to) ? -EEXIST : 0;
		goto out_unlock;
	}
	rc = pfs_meta_begin(p->meta);
	if (!rc) {
		rc = pfs_meta_map_update(p->meta, v->id, to, atomic_load(&v->size),
		                         atomic_load(&v->nz_blocks), atomic_load(&v->chunk_blocks));
		if (rc)
			pfs_meta_rollback(p->meta);
		else
			rc = pfs_meta_commit(p->meta);
	}
	if (rc) {
		pfs_fail(p, PFS_ERR_META_WRITE, rc, "volume rename %s", from);
		goto out_unlock;
	}
	pthread_mutex_lock(&p->cat_lock);
	snprintf(v->name, sizeof(v->name), "%s", to);
	pthread_mutex_unlock(&p->cat_lock);
	pfs_log_change(
	    p, &(struct pfs_change){.kind = PFS_CHANGE_VOL_RENAME, .name = from, .new_name = to},
	    v->id, 0);
	cat_changed_locked(p);
out_unlock:
	pfs_vol_unref(v);
	pthread_mutex_unlock(&p->commit_lock);
	return rc;
}

/* ---- snapshots --------------------------------------------------------------------------- */

/* Invariant 2 for a map read from its rows. */
static int get_page_refs(void *arg, uint64_t map, uint64_t idx, const struct engine_ref *refs)
{
	(void)map;
	return regain_page_refs(arg, idx, refs);
}

/* Copies the committed map of SRC into a new map row. Caller holds commit_lock and SRC's rw
 * lock, and committed SRC just before, so its rows are its whole map. */
static int map_copy_locked(struct pfs *p, struct pfs_vol *src, int kind, uint64_t parent,
                           const char *name, bool share, struct pfs_vol **out)
{
	int64_t now = pfs_now_ns();
	uint64_t id, size = atomic_load(&src->size);
	int64_t nz = atomic_load(&src->nz_blocks), ch = atomic_load(&src->chunk_blocks);
	int rc;

	rc = pfs_meta_begin(p->meta);
	if (rc)
		return rc;
	rc = pfs_meta_map_insert(p->meta, kind, parent, name, size, now, &id);
	if (!rc)
		rc = pfs_meta_map_update(p->meta, id, name, size, nz, ch);
	if (!rc)
		rc = pfs_meta_pages_copy(p->meta, src->id, id, share);
	char key[48];
	snprintf(key, sizeof(key), "snapgen.%llu", (unsigned long long)id);
	if (!rc && kind == PFS_MAP_SNAPSHOT)
		rc = pfs_meta_kv_set(p->meta, key, p->ckpt_lsn);
	if (rc) {
		pfs_meta_rollback(p->meta);
		return rc;
	}
	/* A snapshot or clone starts with its source's owner and mode (its times are its own). */
	pthread_mutex_lock(&p->cat_lock);
	struct pfs_meta_attr at = {src->mode, src->uid, src->gid, now, now};
	pthread_mutex_unlock(&p->cat_lock);
	if (!rc)
		rc = pfs_meta_attr_set(p->meta, id, &at);
	if (rc) {
		pfs_meta_rollback(p->meta);
		return rc;
	}
	rc = pfs_meta_commit(p->meta);
	if (rc)
		return rc;
	struct pfs_vol *v = vol_new(p, id, kind, parent, name, size, now, nz, ch);
	if (!v)
		return -ENOMEM;
	v->mode = at.mode;
	v->uid = at.uid;
	v->gid = at.gid;
	if (kind == PFS_MAP_SNAPSHOT)
		v->snap_gen = p->ckpt_lsn;
	/* Invariant 2: the new map owns one count of each reference it holds. */
	rc = pfs_meta_pages_each(p->meta, (int64_t)id, get_page_refs, p);
	cat_add(p, v);
	atomic_store(&p->cat_dirty, true);
	if (out) {
		atomic_fetch_add(&v->refs, 1);
		*out = v;
	}
	return rc;
}

static int snap_lookup(struct pfs *p, const char *vol, const char *snap, struct pfs_vol **vout,
                       struct pfs_vol **sout)
{
	*vout = pfs_vol_find(p, PFS_MAP_VOLUME, 0, vol);
	if (!*vout) {
		pfs_set_msg(p, "no volume %s", vol);
		return -ENOENT;
	}
	if (!sout)
		return 0;
	*sout = pfs_vol_find(p, PFS_MAP_SNAPSHOT, (*vout)->id, snap);
	if (!*sout) {
		pfs_set_msg(p, "volume %s has no snapshot %s", vol, snap);
		pfs_vol_unref(*vout);
		*vout = NULL;
		return -ENOENT;
	}
	return 0;
}

int pfs_snap_create(struct pfs *p, const char *vol, const char *snap)
{
	struct pfs_vol *v = NULL, *s;
	int rc;

	if (!pfs_name_valid(snap)) {
		pfs_set_msg(p, "bad snapshot name '%s'", snap);
		return -EINVAL;
	}
	pthread_mutex_lock(&p->commit_lock);
	rc = snap_lookup(p, vol, NULL, &v, NULL);
	if (rc)
		goto out_unlock;
	s = pfs_vol_find(p, PFS_MAP_SNAPSHOT, v->id, snap);
	if (s) {
		pfs_vol_unref(s);
		pfs_set_msg(p, "volume %s already has a snapshot %s", vol, snap);
		rc = -EEXIST;
		goto out_unref;
	}
	/* Writers wait for the length of a commit and a copy of the map rows: O(map), not
	 * O(data). */
	pthread_rwlock_wrlock(&v->rw);
	pthread_mutex_lock(&v->lock);
	v->size_dirty = true;
	pthread_mutex_unlock(&v->lock);
	rc = pfs_commit_locked(p);
	struct pfs_vol *sv = NULL;
	if (!rc)
		rc = map_copy_locked(p, v, PFS_MAP_SNAPSHOT, v->id, snap, true, &sv);
	/* Under V's write lock: the snapshot holds exactly the writes logged before it. */
	if (!rc)
		pfs_log_change(
		    p,
		    &(struct pfs_change){.kind = PFS_CHANGE_SNAP_CREATE, .name = vol, .snap = snap},
		    sv->id, v->id);
	pfs_vol_unref(sv);
	pthread_rwlock_unlock(&v->rw);
	if (!rc)
		cat_changed_locked(p);
	if (rc)
		pfs_fail(p, PFS_ERR_META_WRITE, rc, "snapshot create %s/%s", vol, snap);
out_unref:
	pfs_vol_unref(v);
out_unlock:
	pthread_mutex_unlock(&p->commit_lock);
	return rc;
}

int pfs_snap_delete(struct pfs *p, const char *vol, const char *snap)
{
	struct pfs_vol *v = NULL, *s = NULL;
	int rc;

	pthread_mutex_lock(&p->commit_lock);
	rc = snap_lookup(p, vol, snap, &v, &s);
	if (rc)
		goto out_unlock;
	pthread_rwlock_wrlock(&s->rw);
	struct chunk_list copies = {0};
	rc = chunks_of(p, s->id, &copies);
	if (!rc)
		rc = pfs_vol_defer_all(p, s); /* released after the commit below */
	if (!rc)
		rc = pfs_meta_begin(p->meta);
	if (!rc) {
		rc = pfs_meta_map_delete(p->meta, s->id);
		if (rc)
			pfs_meta_rollback(p->meta);
		else
			rc = pfs_meta_commit(p->meta);
	}
	pthread_rwlock_unlock(&s->rw);
	if (rc) {
		/* Nothing was deleted: the queued releases must not happen. Recount at mount is
		 * the safe fallback, so undo by taking the references again. */
		pfs_map_each_page(p, s, regain_page_refs, p);
		chunk_list_free(&copies);
		pfs_fail(p, PFS_ERR_META_WRITE, rc, "snapshot delete %s/%s", vol, snap);
		goto out_unref;
	}
	pfs_log_change(
	    p, &(struct pfs_change){.kind = PFS_CHANGE_SNAP_DELETE, .name = vol, .snap = snap},
	    s->id, v->id);
	cat_remove(p, s);
	/* Its rows shared the volume's page copies: free those the volume and its other
	 * snapshots no longer point to. */
	for (size_t i = 0; i < copies.n; i++) {
		uint64_t cur;
		if (pfs_meta_page_chunk(p->meta, v->id, copies.idx[i], &cur) == 0 &&
		    cur == copies.chunk[i])
			continue;
		pfs_release_page_copy(p, v->id, copies.idx[i], copies.chunk[i]);
	}
	chunk_list_free(&copies);
	atomic_store(&p->cat_dirty, true);
	rc = pfs_commit_locked(p);
out_unref:
	pfs_vol_unref(s);
	pfs_vol_unref(v);
out_unlock:
	pthread_mutex_unlock(&p->commit_lock);
	return rc;
}

int pfs_snap_restore(struct pfs *p, const char *vol, const char *snap)
{
	struct pfs_vol *v = NULL, *s = NULL;
	int rc;

	pthread_mutex_lock(&p->commit_lock);
	rc = snap_lookup(p, vol, snap, &v, &s);
	if (rc)
		goto out_unlock;
	pthread_rwlock_wrlock(&v->rw);
	rc = pfs_commit_locked(p);
	if (rc)
		goto out_wunlock;
	struct chunk_list copies = {0};
	rc = chunks_of(p, v->id, &copies);
	if (!rc)
		rc = pfs_vol_defer_all(p, v);
	if (rc) {
		chunk_list_free(&copies);
		goto out_wunlock;
	}
	rc = pfs_meta_begin(p->meta);
	if (!rc) {
		/* Rows the snapshot lacks become tombstones; all get new copies at the next
		 * checkpoint, newer than anything the volume had. */
		rc = pfs_meta_pages_zero_from(p->meta, v->id, 0);
		if (!rc)
			rc = pfs_meta_pages_copy(p->meta, s->id, v->id, false);
		if (!rc)
			rc = pfs_meta_map_update(p->meta, v->id, v->name, atomic_load(&s->size),
			                         atomic_load(&s->nz_blocks),
			                         atomic_load(&s->chunk_blocks));
		if (rc)
			pfs_meta_rollback(p->meta);
		else
			rc = pfs_meta_commit(p->meta);
	}
	if (rc) {
		pfs_map_each_page(p, v, regain_page_refs, p);
		chunk_list_free(&copies);
		goto out_wunlock;
	}
	for (size_t i = 0; i < copies.n; i++)
		pfs_release_page_copy(p, v->id, copies.idx[i], copies.chunk[i]);
	chunk_list_free(&copies);
	pfs_map_forget(v);
	atomic_store(&v->size, atomic_load(&s->size));
	atomic_store(&v->nz_blocks, atomic_load(&s->nz_blocks));
	atomic_store(&v->chunk_blocks, atomic_load(&s->chunk_blocks));
	atomic_store(&v->mtime_ns, pfs_now_ns());
	rc = pfs_meta_pages_each(p->meta, (int64_t)v->id, get_page_refs, p);
	pfs_log_change(
	    p, &(struct pfs_change){.kind = PFS_CHANGE_SNAP_RESTORE, .name = vol, .snap = snap},
	    v->id, s->id);
out_wunlock:
	pthread_rwlock_unlock(&v->rw);
	if (!rc)
		rc = pfs_commit_locked(p); /* releases the old blocks */
	else
		pfs_fail(p, PFS_ERR_META_WRITE, rc, "snapshot restore %s/%s", vol, snap);
out_unlock:
	pfs_vol_unref(s);
	pfs_vol_unref(v);
	pthread_mutex_unlock(&p->commit_lock);
	return rc;
}

int pfs_snap_clone(struct pfs *p, const char *vol, const char *snap, const char *newvol)
{
	struct pfs_vol *v = NULL, *s = NULL, *n;
	int rc;

	if (!pfs_name_valid(newvol)) {
		pfs_set_msg(p, "bad volume name '%s'", newvol);
		return -EINVAL;
	}
	pthread_mutex_lock(&p->commit_lock);
	rc = snap_lookup(p, vol, snap, &v, &s);
	if (rc)
		goto out_unlock;
	n = pfs_vol_find(p, PFS_MAP_VOLUME, 0, newvol);
	if (n) {
		pfs_vol_unref(n);
		pfs_set_msg(p, "volume %s already exists", newvol);
		rc = -EEXIST;
		goto out_unref;
	}
	pthread_rwlock_rdlock(&s->rw);
	rc = map_copy_locked(p, s, PFS_MAP_VOLUME, 0, newvol, false, &n);
	pthread_rwlock_unlock(&s->rw);
	if (!rc) {
		pfs_log_change(p,
		               &(struct pfs_change){.kind = PFS_CHANGE_SNAP_CLONE,
		                                    .name = vol,
		                                    .snap = snap,
		                                    .new_name = newvol},
		               n->id, s->id);
		pfs_vol_unref(n);
		cat_changed_locked(p);
	}
	if (rc)
		pfs_fail(p, PFS_ERR_META_WRITE, rc, "snapshot clone %s/%s", vol, snap);
out_unref:
	pfs_vol_unref(s);
	pfs_vol_unref(v);
out_unlock:
	pthread_mutex_unlock(&p->commit_lock);
	return rc;
}
