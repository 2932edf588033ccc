/* fs/vol/pfs_replica.c - the seams the replication layer (cluster/) uses: its hook in front of
 * the change path, changes applied here with their block records captured, references read
 * with a count taken, a tag per map, and named blobs. Nothing here knows of pods or peers.
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "pfs_vol_int.h"

struct engine *pfs_engine(struct pfs *p)
{
	return p->eng;
}

void pfs_set_hooks(struct pfs *p, const struct pfs_hooks *h)
{
	if (h)
		p->hooks = *h;
	else
		memset(&p->hooks, 0, sizeof(p->hooks));
}

int pfs_sync_vol(struct pfs *p, struct pfs_vol *v)
{
	int rc = pfs_sync(p);

	/* After the sync: a pod that stopped being served here while it ran fails it too. */
	if (!rc && v && p->hooks.read_gate)
		rc = p->hooks.read_gate(p->hooks.arg, v);
	return rc;
}

int pfs_sync_local(struct pfs *p)
{
	return pfs_log_sync(p);
}

int pfs_change_apply_local(struct pfs *p, struct pfs_change *c, pfs_capture_fn fn, void *arg)
{
	int rc;

	pfs_log_capture_begin(p, fn, arg);
	rc = pfs_change_apply_here(p, c);
	pfs_log_capture_end();
	return rc;
}

int pfs_vol_refs(struct pfs *p, struct pfs_vol *v, uint64_t blk, uint32_t n,
                 struct engine_ref *refs)
{
	uint32_t done = 0;
	int rc = 0;

	pthread_rwlock_rdlock(&v->rw);
	while (done < n && !rc) {
		uint64_t b = blk + done, pidx = b / PFS_PAGE_REFS;
		pthread_rwlock_t *l = pfs_stripe(v, pidx);
		struct pfs_mpage *pg = NULL;

		pthread_rwlock_rdlock(l);
		rc = pfs_map_page(p, v, pidx, false, &pg);
		/* The count is taken under the stripe lock that keeps the block from changing, so
		 * the chunk cannot be released between the read and the get. */
		while (!rc && done < n && (blk + done) / PFS_PAGE_REFS == pidx) {
			struct engine_ref r =
			    pg ? pg->ref[(blk + done) % PFS_PAGE_REFS] : ENGINE_REF_ZERO_VALUE;
			rc = engine_ref_get(p->eng, r);
			if (!rc)
				refs[done++] = r;
		}
		pthread_rwlock_unlock(l);
	}
	pthread_rwlock_unlock(&v->rw);
	if (rc) {
		while (done)
			engine_ref_put(p->eng, refs[--done]);
	}
	return rc;
}

void pfs_vol_set_tag(struct pfs_vol *v, uint32_t tag)
{
	atomic_store(&v->tag, tag);
}

uint32_t pfs_vol_tag(struct pfs_vol *v)
{
	return atomic_load_explicit(&v->tag, memory_order_relaxed);
}

/* One blob change in a transaction of its own, under commit_lock as every SQLite change is (the
 * store's checkpoint transaction must not take it in, or roll it back). */
static int blob_change(struct pfs *p, const char *key, const void *val, size_t len, bool del)
{
	int rc;

	if (p->opts.readonly)
		return -EROFS;
	pthread_mutex_lock(&p->commit_lock);
	rc = pfs_meta_begin(p->meta);
	if (!rc) {
		rc = del ? pfs_meta_blob_delete(p->meta, key)
		         : pfs_meta_blob_set(p->meta, key, val, len);
		if (rc)
			pfs_meta_rollback(p->meta);
		else
			rc = pfs_meta_commit(p->meta);
	}
	pthread_mutex_unlock(&p->commit_lock);
	return rc;
}

int pfs_blob_put(struct pfs *p, const char *key, const void *val, size_t len)
{
	return blob_change(p, key, val, len, false);
}

int pfs_blob_delete(struct pfs *p, const char *key)
{
	return blob_change(p, key, NULL, 0, true);
}

int pfs_blob_each(struct pfs *p, const char *prefix, pfs_blob_fn fn, void *arg)
{
	return pfs_meta_blobs_each(p->meta, prefix, fn, arg);
}
