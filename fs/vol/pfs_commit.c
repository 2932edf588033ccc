/* fs/vol/pfs_commit.c - the commit protocol (invariants 3 and 4 of pfs_vol_int.h): dirty map
 * pages and volume sizes reach SQLite only after the chunks they point to are flushed, and
 * references dropped from the maps are released only once a commit without them is durable.
 * Also the background thread that commits every commit_interval_ms, and the release of clean
 * pages when the map cache grows past its budget.
 *
 * A commit, state by state (as SQLite's pager.c describes its own). pfs_commit_locked() runs
 * the transitions in this order; a failure in any state before DURABLE goes to FAILED.
 *
 *   OPEN          Nothing taken yet. Durable: the last checkpoint (SQLite rows, ckpt_lsn,
 *                 cat_chunk), the log chunks fsync wrote since, and the data they point to.
 *     commit_take_releases()
 *   TAKEN         The deferred puts and metadata frees queued so far belong to this commit;
 *                 later ones queue for the next. Taken before any page is copied (invariant
 *                 4): a put is queued after its map change, so the pages copied below hold
 *                 the change that dropped every reference taken here.
 *     commit_cut()
 *   CUT           The cut (an lsn) is taken. A map change marks its page dirty before its
 *                 record takes an lsn (pfs_map_set), so every change below the cut is in a
 *                 page that is dirty now or was committed before.
 *     commit_collect()
 *   COLLECTED     The changed volumes hold a struct reference; their dirty pages and rows
 *                 (size, counters, attributes) are copied and the dirty marks cleared. From
 *                 here a failure must mark them dirty again.
 *     commit_write_copies()
 *   WRITTEN       Flash copies of the pages (generation = cut), of up to PFS_UNWRITTEN_BATCH
 *                 rows that had none, and a catalogue record are in the FTL, not flushed.
 *                 Nothing durable points to them: a crash loses them, or mount frees them
 *                 as unreferenced.
 *     commit_flush_data()                        ftl_sync
 *   DATA_DURABLE  Invariant 3: the chunks the copied pages point to, and the copies, are
 *                 durable before SQLite names them. SQLite still holds the last checkpoint.
 *                 With nothing to store or release the commit goes straight to RELEASED.
 *     commit_transaction()
 *   BATCHED       (a large commit) Some SQLite transactions of the commit are durable: those
 *                 pages are new in SQLite, each one whole, the others old. ckpt_lsn and
 *                 cat_chunk go in the last one, so a crash here replays the log from the last
 *                 checkpoint; the copies the durable batches superseded stay until a mount
 *                 frees them.
 *   DURABLE       The last SQLite transaction is committed: the maps as of the cut, the
 *                 volume rows and the catalogue record are durable.
 *     commit_checkpointed()
 *   CHECKPOINTED  p->ckpt_lsn = cut; the previous catalogue record is freed; log records and
 *                 log chunks below the cut are dropped (pfs_log_checkpointed).
 *     commit_release()
 *   RELEASED      The copies this commit superseded are queued (pfs_release_page_copy:
 *                 unless a snapshot shares them) for after the next checkpoint; the copies
 *                 and records queued before this commit are freed; the taken puts are
 *                 released (engine_ref_put): no committed map holds them. Clean pages beyond
 *                 the cache budget are dropped.
 *
 *   FAILED        commit_fail(): the pages are dirty again and the volumes' rows marked, the
 *                 taken puts and frees are queued again, and the catalogue is marked dirty if
 *                 this commit took its mark; the next commit retries all of it. Copies
 *                 written meanwhile are freed by a mount as unreferenced.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pfs_vol_int.h"

/* Loaded map pages kept in memory after a commit: 2 KiB each, so 32768 pages = 64 MiB, which
 * maps 32 GiB of 4 KiB blocks. Beyond it clean pages are dropped and reloaded on demand. */
#define PFS_CACHE_PAGES 32768u

void pfs_defer_put(struct pfs *p, struct engine_ref ref)
{
	if (ref.v == 0)
		return;
	if (engine_ref_kind(ref) == ENGINE_REF_PATTERN && !engine_ref_is_table_pattern(ref))
		return; /* inline patterns are not counted */
	pthread_mutex_lock(&p->puts_lock);
	if (p->nputs == p->cap_puts) {
		size_t cap = p->cap_puts ? p->cap_puts * 2 : 1024;
		struct engine_ref *n = realloc(p->puts, cap * sizeof(*n));
		if (!n) {
			/* Leaking one reference keeps the data safe; it is recounted at mount. */
			pthread_mutex_unlock(&p->puts_lock);
			pfs_logl(
			    LOG_WARNING,
			    "pstorfs: out of memory queueing a release; reclaimed at next mount");
			return;
		}
		p->puts = n;
		p->cap_puts = cap;
	}
	p->puts[p->nputs++] = ref;
	pthread_mutex_unlock(&p->puts_lock);
}

bool pfs_releases_pending(struct pfs *p)
{
	pthread_mutex_lock(&p->puts_lock);
	/* Those a commit under way took count too: a write that finds the device full waits for
	 * that commit (pfs_commit) instead of failing while the space is on its way back (a
	 * commit asked early by the room check may have taken them a moment before). */
	bool any = p->nputs || p->nmfrees || p->releases_taken;
	pthread_mutex_unlock(&p->puts_lock);
	return any;
}

uint64_t pfs_releases_bytes(struct pfs *p)
{
	pthread_mutex_lock(&p->puts_lock);
	uint64_t n = (uint64_t)p->nputs + p->nmfrees;
	pthread_mutex_unlock(&p->puts_lock);
	return n * p->bs;
}

void pfs_defer_mfree(struct pfs *p, uint64_t addr)
{
	if (addr == PFS_NO_CHUNK)
		return;
	pthread_mutex_lock(&p->puts_lock);
	if (p->nmfrees == p->cap_mfrees) {
		size_t cap = p->cap_mfrees ? p->cap_mfrees * 2 : 256;
		uint64_t *n = realloc(p->mfrees, cap * sizeof(*n));
		if (!n) {
			pthread_mutex_unlock(&p->puts_lock);
			return; /* unreferenced copies are freed at the next mount */
		}
		p->mfrees = n;
		p->cap_mfrees = cap;
	}
	p->mfrees[p->nmfrees++] = addr;
	pthread_mutex_unlock(&p->puts_lock);
}

/* A snapshot's rows share its volume's page copies (a rebuild finds the snapshot's pages as
 * the volume's newest copies up to the snapshot's checkpoint), so a superseded copy stays
 * while any snapshot row still points to it. */
void pfs_release_page_copy(struct pfs *p, uint64_t vol, uint64_t idx, uint64_t old)
{
	bool shared = false;

	if (old == PFS_NO_CHUNK)
		return;
	pthread_mutex_lock(&p->cat_lock);
	size_t n = 0;
	for (struct pfs_vol *s = p->vols; s; s = s->next)
		n += s->kind == PFS_MAP_SNAPSHOT && s->parent == vol;
	uint64_t *snaps = malloc((n ? n : 1) * sizeof(*snaps));
	n = 0;
	for (struct pfs_vol *s = p->vols; snaps && s; s = s->next)
		if (s->kind == PFS_MAP_SNAPSHOT && s->parent == vol)
			snaps[n++] = s->id;
	pthread_mutex_unlock(&p->cat_lock);
	if (!snaps)
		return; /* kept: freed at the next mount if nothing points to it */
	for (size_t i = 0; i < n && !shared; i++) {
		uint64_t c;
		shared = pfs_meta_page_chunk(p->meta, snaps[i], idx, &c) == 0 && c == old;
	}
	free(snaps);
	if (!shared)
		pfs_defer_mfree(p, old);
}

struct dirty_page {
	uint64_t idx;
	uint64_t chunk; /* its flash copy, written by this checkpoint */
	struct engine_ref ref[PFS_PAGE_REFS];
};

struct vol_commit {
	struct pfs_vol *v;
	struct dirty_page *pages;
	size_t npages;
	char name[PFS_NAME_MAX + 1];
	uint64_t size;
	int64_t nz, chunks;
	struct pfs_meta_attr attr;
};

/* Copies the dirty pages of V (clearing their dirty bits) into VC. */
static int collect_volume(struct pfs_vol *v, struct vol_commit *vc)
{
	uint64_t *idxs = NULL;
	size_t n = 0;
	int rc = 0;

	pthread_mutex_lock(&v->lock);
	if (v->ndirty) {
		idxs = malloc(v->ndirty * sizeof(*idxs));
		if (!idxs) {
			pthread_mutex_unlock(&v->lock);
			return -ENOMEM;
		}
		for (uint32_t b = 0; b < v->nbuckets; b++)
			for (struct pfs_mpage *pg = v->buckets[b]; pg; pg = pg->next)
				if (pg->dirty && n < v->ndirty)
					idxs[n++] = pg->idx;
	}
	pthread_mutex_unlock(&v->lock);

	vc->v = v;
	vc->pages = n ? malloc(n * sizeof(*vc->pages)) : NULL;
	if (n && !vc->pages) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		pthread_rwlock_t *l = pfs_stripe(v, idxs[i]);
		struct pfs_mpage *pg = NULL;

		pthread_rwlock_wrlock(l);
		pthread_mutex_lock(&v->lock);
		pg = pfs_map_find_locked(v, idxs[i]);
		if (pg && pg->dirty) {
			pg->dirty = false;
			v->ndirty--;
			struct dirty_page *d = &vc->pages[vc->npages++];
			d->idx = pg->idx;
			memcpy(d->ref, pg->ref, sizeof(d->ref));
		}
		pthread_mutex_unlock(&v->lock);
		pthread_rwlock_unlock(l);
	}
	snprintf(vc->name, sizeof(vc->name), "%s", v->name);
	/* Written under commit_lock (which the commit holds) as well as cat_lock. */
	vc->attr =
	    (struct pfs_meta_attr){v->mode, v->uid, v->gid, v->atime_ns, atomic_load(&v->mtime_ns)};
	vc->size = atomic_load(&v->size);
	vc->nz = atomic_load(&v->nz_blocks);
	vc->chunks = atomic_load(&v->chunk_blocks);
out:
	free(idxs);
	return rc;
}

/* A failed commit: the pages become dirty again so the next commit retries them. */
static void redirty_volume(struct pfs *p, struct vol_commit *vc)
{
	struct pfs_vol *v = vc->v;

	for (size_t i = 0; i < vc->npages; i++) {
		pthread_rwlock_t *l = pfs_stripe(v, vc->pages[i].idx);
		struct pfs_mpage *pg = NULL;

		pthread_rwlock_wrlock(l);
		if (pfs_map_page(p, v, vc->pages[i].idx, true, &pg) == 0 && pg && !pg->dirty) {
			pg->dirty = true;
			pthread_mutex_lock(&v->lock);
			v->ndirty++;
			pthread_mutex_unlock(&v->lock);
		}
		pthread_rwlock_unlock(l);
	}
}

/* Drops clean pages of V from memory while the cache is over budget. */
static void evict_clean(struct pfs_vol *v, uint64_t keep)
{
	uint64_t *idxs;
	size_t n = 0;

	pthread_mutex_lock(&v->lock);
	if (v->npages <= keep) {
		pthread_mutex_unlock(&v->lock);
		return;
	}
	idxs = malloc(v->npages * sizeof(*idxs));
	if (idxs)
		for (uint32_t b = 0; b < v->nbuckets; b++)
			for (struct pfs_mpage *pg = v->buckets[b]; pg; pg = pg->next)
				if (!pg->dirty)
					idxs[n++] = pg->idx;
	pthread_mutex_unlock(&v->lock);
	for (size_t i = 0; i < n; i++) {
		pthread_rwlock_t *l = pfs_stripe(v, idxs[i]);

		pthread_rwlock_wrlock(l); /* no reader holds a pointer into this stripe */
		pthread_mutex_lock(&v->lock);
		if (v->npages <= keep) {
			pthread_mutex_unlock(&v->lock);
			pthread_rwlock_unlock(l);
			break;
		}
		pfs_map_drop_clean_locked(v, idxs[i]);
		pthread_mutex_unlock(&v->lock);
		pthread_rwlock_unlock(l);
	}
	free(idxs);
}

/* Long patterns referenced by the pages being committed get their table rows in the same
 * transaction, so every committed reference can be restored at mount. */
static int store_patterns(struct pfs *p, const struct dirty_page *d)
{
	for (uint32_t i = 0; i < PFS_PAGE_REFS; i++) {
		uint8_t pat[16];
		int period, rc;

		if (!engine_ref_is_table_pattern(d->ref[i]))
			continue;
		period = engine_ref_pattern(p->eng, d->ref[i], pat);
		if (period < 0)
			return period;
		rc = pfs_meta_pattern_store(p->meta, d->ref[i].v, pat, (uint32_t)period);
		if (rc)
			return rc;
	}
	return 0;
}

struct uw_row {
	uint64_t map;
	struct dirty_page d;
};

struct uw_list {
	struct uw_row *v;
	size_t n, cap;
	struct pfs *p;
	struct vol_commit *vcs;
	size_t nvc;
	uint64_t cut;
};

struct free_ent {
	uint64_t map, idx, addr;
};

struct free_list {
	struct free_ent *v;
	size_t n, cap;
};

static int frees_add(struct free_list *f, uint64_t map, uint64_t idx, uint64_t addr)
{
	if (addr == PFS_NO_CHUNK)
		return 0;
	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 256;
		struct free_ent *n = realloc(f->v, cap * sizeof(*n));
		if (!n)
			return 0; /* the copy stays until the next mount frees it */
		f->v = n;
		f->cap = cap;
	}
	f->v[f->n++] = (struct free_ent){map, idx, addr};
	return 0;
}

static int cmp_dirty(const void *a, const void *b)
{
	const struct dirty_page *x = a, *y = b;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Whether this checkpoint stores page IDX of MAP from memory anyway. */
static bool in_commit(const struct uw_list *u, uint64_t map, uint64_t idx)
{
	for (size_t i = 0; i < u->nvc; i++) {
		if (u->vcs[i].v->id != map)
			continue;
		struct dirty_page key = {.idx = idx};
		return u->vcs[i].npages &&
		       bsearch(&key, u->vcs[i].pages, u->vcs[i].npages, sizeof(key), cmp_dirty);
	}
	return false;
}

/* At most this many rows without a flash copy are given one per checkpoint, so memory stays
 * bounded after a clone or restore of a large volume; the rest follow in later ones. */
#define PFS_UNWRITTEN_BATCH 4096u

static int unwritten_row(void *arg, uint64_t map, uint64_t idx, const struct engine_ref *refs,
                         uint64_t chunk)
{
	struct uw_list *u = arg;

	(void)chunk;
	if (in_commit(u, map, idx))
		return 0;
	if (u->n == u->cap) {
		if (u->cap >= PFS_UNWRITTEN_BATCH)
			return 1; /* enough for this checkpoint */
		size_t cap = u->cap ? u->cap * 2 : 64;
		struct uw_row *n = realloc(u->v, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		u->v = n;
		u->cap = cap;
	}
	struct uw_row *r = &u->v[u->n];
	r->map = map;
	r->d.idx = idx;
	memcpy(r->d.ref, refs, sizeof(r->d.ref));
	if (pfs_mchunk_write_page(u->p, map, idx, refs, u->cut, &r->d.chunk))
		return 1; /* no room for copies now: try again next time */
	u->n++;
	return 0;
}

static int unwritten_rows(struct pfs *p, struct vol_commit *vcs, size_t nvc, uint64_t cut,
                          struct uw_list *u)
{
	u->p = p;
	u->vcs = vcs;
	u->nvc = nvc;
	u->cut = cut;
	for (size_t i = 0; i < nvc; i++)
		if (vcs[i].npages) /* qsort(NULL, 0) is undefined */
			qsort(vcs[i].pages, vcs[i].npages, sizeof(*vcs[i].pages), cmp_dirty);
	int rc = pfs_meta_pages_each_chunk(p->meta, -1, true, unwritten_row, u);
	return rc > 0 ? 0 : rc;
}

/* One commit in flight: what it took from the queues, what it copied and what it wrote. */
struct commit {
	struct pfs *p;
	int64_t t0;
	uint64_t cut;            /* lsn of this checkpoint */
	struct engine_ref *puts; /* deferred releases taken (invariant 4) */
	size_t nputs;
	uint64_t *mfrees; /* page copies and catalogue records taken: freed once durable */
	size_t nmfrees;
	struct vol_commit *vcs; /* changed volumes, a struct reference each */
	size_t nvc;
	struct uw_list uw;      /* rows given their first flash copy */
	bool cat_changed;       /* took p->cat_dirty: given back on failure */
	uint64_t new_cat;       /* catalogue record written, or PFS_NO_CHUNK */
	size_t batch, in_batch; /* pages per SQLite transaction, pages in this one */
	bool txn_open;          /* a SQLite transaction a failure must roll back */
	struct free_list olds;  /* page copies the stored rows superseded */
};

/* OPEN -> TAKEN. Invariant 4: take the queue before copying the pages. */
static void commit_take_releases(struct commit *c)
{
	struct pfs *p = c->p;

	pthread_mutex_lock(&p->puts_lock);
	c->puts = p->puts;
	c->nputs = p->nputs;
	p->puts = NULL;
	p->nputs = p->cap_puts = 0;
	c->mfrees = p->mfrees;
	c->nmfrees = p->nmfrees;
	p->mfrees = NULL;
	p->nmfrees = p->cap_mfrees = 0;
	p->releases_taken = c->nputs || c->nmfrees;
	pthread_mutex_unlock(&p->puts_lock);
}

/* The releases this commit took are given back (RELEASED) or queued again (FAILED). */
static void commit_releases_done(struct pfs *p)
{
	pthread_mutex_lock(&p->puts_lock);
	p->releases_taken = false;
	pthread_mutex_unlock(&p->puts_lock);
}

/* TAKEN -> CUT. Every map change with a lower lsn is in the pages copied below. */
static void commit_cut(struct commit *c)
{
	c->cut = pfs_log_cut(c->p);
}

static bool is_live_volume(struct pfs_vol *v)
{
	return v->kind == PFS_MAP_VOLUME && !atomic_load(&v->gone);
}

/* The volumes whose pages or rows changed since the last commit, each with a struct reference;
 * their size_dirty marks are taken. */
static int pick_volumes(struct commit *c)
{
	struct pfs *p = c->p;
	size_t cap = 0;

	pthread_mutex_lock(&p->cat_lock);
	for (struct pfs_vol *v = p->vols; v; v = v->next)
		if (is_live_volume(v))
			cap++;
	c->vcs = calloc(cap ? cap : 1, sizeof(*c->vcs));
	for (struct pfs_vol *v = p->vols; c->vcs && v && c->nvc < cap; v = v->next) {
		if (!is_live_volume(v))
			continue;
		pthread_mutex_lock(&v->lock);
		bool dirty = v->ndirty || v->size_dirty;
		v->size_dirty = false;
		pthread_mutex_unlock(&v->lock);
		if (!dirty)
			continue;
		atomic_fetch_add(&v->refs, 1);
		c->vcs[c->nvc++].v = v;
	}
	pthread_mutex_unlock(&p->cat_lock);
	return c->vcs ? 0 : -ENOMEM;
}

/* CUT -> COLLECTED. */
static int commit_collect(struct commit *c)
{
	int rc = pick_volumes(c);

	for (size_t i = 0; i < c->nvc && !rc; i++)
		rc = collect_volume(c->vcs[i].v, &c->vcs[i]);
	return rc;
}

/* COLLECTED -> WRITTEN. Flash copies of the pages and of the catalogue go out with the data
 * they point to (one flush covers both); a failed copy only leaves its row marked for the next
 * try. */
static int commit_write_copies(struct commit *c)
{
	struct pfs *p = c->p;
	int rc;

	for (size_t i = 0; i < c->nvc; i++) {
		struct vol_commit *vc = &c->vcs[i];
		for (size_t k = 0; k < vc->npages; k++)
			if (pfs_mchunk_write_page(p, vc->v->id, vc->pages[k].idx, vc->pages[k].ref,
			                          c->cut, &vc->pages[k].chunk))
				vc->pages[k].chunk = PFS_NO_CHUNK;
	}
	rc = unwritten_rows(p, c->vcs, c->nvc, c->cut, &c->uw);
	if (rc)
		return rc;
	c->cat_changed = atomic_exchange(&p->cat_dirty, false);
	if (c->cat_changed || c->nvc) {
		if (pfs_mchunk_write_catalog(p, c->cut, &c->new_cat))
			c->new_cat = PFS_NO_CHUNK;
	}
	return 0;
}

/* WRITTEN -> DATA_DURABLE. Invariant 3: data first. */
static int commit_flush_data(struct commit *c)
{
	return ftl_sync(c->p->ftl);
}

/* Whether there is anything to store or to release: an idle commit writes no transaction. */
static bool commit_has_work(const struct commit *c)
{
	return c->nvc || c->uw.n || c->new_cat != PFS_NO_CHUNK || c->nputs || c->nmfrees;
}

/* The rollback journal bounds how many existing SQLite pages one transaction may change, so a
 * large commit goes in batches of this many map pages. */
static size_t txn_batch_pages(struct pfs *p)
{
	struct pfs_meta_stats ms;

	pfs_meta_get_stats(p->meta, &ms);
	size_t batch = ms.journal_capacity / 8192;
	return batch < 32 ? 32 : batch;
}

static int txn_begin(struct commit *c)
{
	int rc = pfs_meta_begin(c->p->meta);

	c->txn_open = rc == 0;
	return rc;
}

/* Counts a stored page; a full batch is committed and the next one begun. A failure here
 * leaves no transaction to roll back. */
static int txn_page_done(struct commit *c)
{
	int rc;

	if (++c->in_batch != c->batch)
		return 0;
	c->in_batch = 0;
	c->txn_open = false;
	rc = pfs_meta_commit(c->p->meta);
	if (!rc)
		rc = txn_begin(c);
	return rc;
}

/* Rows that had no flash copy, with the copy just written. */
static int txn_store_unwritten(struct commit *c)
{
	int rc = 0;

	for (size_t i = 0; i < c->uw.n && !rc; i++) {
		struct uw_row *r = &c->uw.v[i];
		uint64_t old;
		rc = pfs_meta_page_store(c->p->meta, r->map, r->d.idx, r->d.ref, r->d.chunk, &old);
	}
	return rc;
}

/* A dirty page, whole, with the table patterns it references; the copy it supersedes is kept
 * for commit_release. */
static int txn_store_page(struct commit *c, struct vol_commit *vc, struct dirty_page *d)
{
	uint64_t old = PFS_NO_CHUNK;
	int rc = store_patterns(c->p, d);

	if (!rc)
		rc = pfs_meta_page_store(c->p->meta, vc->v->id, d->idx, d->ref, d->chunk, &old);
	if (!rc)
		rc = frees_add(&c->olds, vc->v->id, d->idx, old);
	if (!rc)
		rc = txn_page_done(c);
	return rc;
}

static int txn_store_volume(struct commit *c, struct vol_commit *vc)
{
	struct pfs_meta *m = c->p->meta;
	int rc = 0;

	for (size_t k = 0; k < vc->npages && !rc; k++)
		rc = txn_store_page(c, vc, &vc->pages[k]);
	if (!rc)
		rc = pfs_meta_map_update(m, vc->v->id, vc->name, vc->size, vc->nz, vc->chunks);
	/* The times writes moved (mtime) persist with the map. */
	if (!rc)
		rc = pfs_meta_attr_set(m, vc->v->id, &vc->attr);
	return rc;
}

/* DATA_DURABLE -> DURABLE (through BATCHED for a large commit). Each page is whole in every
 * batch; ckpt_lsn and cat_chunk go in the last one, and the releases wait for it
 * (invariant 4). */
static int commit_transaction(struct commit *c)
{
	struct pfs_meta *m = c->p->meta;
	int rc;

	c->batch = txn_batch_pages(c->p);
	rc = txn_begin(c);
	if (!rc)
		rc = txn_store_unwritten(c);
	for (size_t i = 0; i < c->nvc && !rc; i++)
		rc = txn_store_volume(c, &c->vcs[i]);
	if (!rc && c->new_cat != PFS_NO_CHUNK)
		rc = pfs_meta_kv_set(m, "cat_chunk", c->new_cat);
	if (!rc)
		rc = pfs_meta_kv_set(m, "ckpt_lsn", c->cut);
	if (rc) {
		if (c->txn_open)
			pfs_meta_rollback(m);
		c->txn_open = false;
		return rc;
	}
	c->txn_open = false;
	return pfs_meta_commit(m);
}

/* DURABLE -> CHECKPOINTED. */
static void commit_checkpointed(struct commit *c)
{
	struct pfs *p = c->p;

	p->ckpt_lsn = c->cut;
	if (c->new_cat != PFS_NO_CHUNK) {
		if (p->cat_chunk != PFS_NO_CHUNK)
			ftl_free(p->ftl, (struct ftl_addr){p->cat_chunk});
		p->cat_chunk = c->new_cat;
	}
	/* Records below the cut are in SQLite now; their log chunks can go. */
	pfs_log_checkpointed(p, c->cut);
}

/* CHECKPOINTED (or DATA_DURABLE with nothing to store) -> RELEASED. */
static void commit_release(struct commit *c)
{
	struct pfs *p = c->p;

	for (size_t i = 0; i < c->olds.n; i++)
		pfs_release_page_copy(p, c->olds.v[i].map, c->olds.v[i].idx, c->olds.v[i].addr);
	for (size_t i = 0; i < c->nmfrees; i++)
		ftl_free(p->ftl, (struct ftl_addr){c->mfrees[i]});
	/* Durable: what the maps no longer hold can go. */
	for (size_t i = 0; i < c->nputs; i++) {
		int prc = engine_ref_put(p->eng, c->puts[i]);
		if (prc)
			pfs_logl(LOG_ERR, "pstorfs: release of reference %#llx failed: %d",
			         (unsigned long long)c->puts[i].v, prc);
	}
	free(c->puts);
	c->puts = NULL;
	c->nputs = 0;
	commit_releases_done(p);
	for (size_t i = 0; i < c->nvc; i++)
		evict_clean(c->vcs[i].v, PFS_CACHE_PAGES / (c->nvc ? c->nvc : 1));
	atomic_fetch_add(&p->commits, 1);
	atomic_fetch_add(&p->commit_ns_total, (uint64_t)(pfs_now_ns() - c->t0));
}

/* Any state before DURABLE -> FAILED: everything goes back for the next commit to retry. */
static void commit_fail(struct commit *c, int rc)
{
	struct pfs *p = c->p;

	for (size_t i = 0; i < c->nvc; i++) {
		redirty_volume(p, &c->vcs[i]);
		pthread_mutex_lock(&c->vcs[i].v->lock);
		c->vcs[i].v->size_dirty = true;
		pthread_mutex_unlock(&c->vcs[i].v->lock);
	}
	atomic_fetch_add(&p->commit_errors, 1);
	pfs_logl(LOG_ERR, "pstorfs: commit failed: %d; will retry", rc);
	for (size_t i = 0; i < c->nputs; i++)
		pfs_defer_put(p, c->puts[i]);
	free(c->puts);
	c->puts = NULL;
	c->nputs = 0;
	for (size_t i = 0; i < c->nmfrees; i++)
		pfs_defer_mfree(p, c->mfrees[i]);
	commit_releases_done(p);
	if (c->cat_changed)
		atomic_store(&p->cat_dirty, true);
}

static void commit_free(struct commit *c)
{
	free(c->mfrees);
	free(c->uw.v);
	free(c->olds.v);
	for (size_t i = 0; i < c->nvc; i++) {
		free(c->vcs[i].pages);
		pfs_vol_unref(c->vcs[i].v);
	}
	free(c->vcs);
}

int pfs_commit_locked(struct pfs *p)
{
	struct commit c = {.p = p, .t0 = pfs_now_ns(), .new_cat = PFS_NO_CHUNK};
	int rc;

	if (p->opts.readonly)
		return 0;
	commit_take_releases(&c);
	commit_cut(&c);
	rc = commit_collect(&c);
	if (!rc)
		rc = commit_write_copies(&c);
	if (!rc)
		rc = commit_flush_data(&c);
	if (!rc && commit_has_work(&c)) {
		rc = commit_transaction(&c);
		if (!rc)
			commit_checkpointed(&c);
	}
	if (rc)
		commit_fail(&c, rc);
	else
		commit_release(&c);
	commit_free(&c);
	return rc;
}

/* The FTL's own checkpoint, when enough segments were written since the last one, bounds what
 * the next mount walks; it is independent of the map checkpoint. Taken after every commit, not
 * only the timed ones: a daemon killed within its first commit interval (or a busy one that
 * commits on snapshots and syncs) still leaves one. One caller at a time; the others skip. */
static void flash_checkpoint_maybe(struct pfs *p)
{
	if (p->opts.readonly || atomic_exchange(&p->ftl_ckpt_busy, true))
		return;
	int r = ftl_checkpoint_maybe(p->ftl);
	if (r < 0 && r != -ENOSPC)
		pfs_logl(LOG_WARNING, "pstorfs: flash checkpoint failed: %s", strerror(-r));
	atomic_store(&p->ftl_ckpt_busy, false);
}

int pfs_commit(struct pfs *p)
{
	pthread_mutex_lock(&p->commit_lock);
	int rc = pfs_commit_locked(p);
	pthread_mutex_unlock(&p->commit_lock);
	flash_checkpoint_maybe(p);
	return rc;
}

int pfs_sync(struct pfs *p)
{
	int rc = pfs_log_sync(p);

	if (!rc && p->hooks.sync)
		rc = p->hooks.sync(p->hooks.arg); /* and on the other box of each stretched pod */
	return rc;
}

static void *commit_thread_main(void *arg)
{
	struct pfs *p = arg;

	pthread_mutex_lock(&p->bg_lock);
	while (!p->bg_stop) {
		struct timespec ts;
		pthread_mutex_lock(&p->cfg_lock);
		uint32_t ms = p->cfg.commit_interval_ms;
		pthread_mutex_unlock(&p->cfg_lock);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += ms / 1000;
		ts.tv_nsec += (long)(ms % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&p->bg_cond, &p->bg_lock, &ts);
		if (p->bg_stop)
			break;
		pthread_mutex_unlock(&p->bg_lock);
		pfs_commit(p);
		pthread_mutex_lock(&p->bg_lock);
	}
	pthread_mutex_unlock(&p->bg_lock);
	return NULL;
}

int pfs_commit_start(struct pfs *p)
{
	int rc;

	if (p->opts.readonly)
		return 0;
	rc = -pthread_create(&p->commit_thread, NULL, commit_thread_main, p);
	if (!rc)
		p->commit_thread_started = true;
	return rc;
}

void pfs_commit_kick(struct pfs *p)
{
	pthread_mutex_lock(&p->bg_lock);
	pthread_cond_signal(&p->bg_cond);
	pthread_mutex_unlock(&p->bg_lock);
}

void pfs_commit_stop(struct pfs *p)
{
	if (!p->commit_thread_started)
		return;
	pthread_mutex_lock(&p->bg_lock);
	p->bg_stop = true;
	pthread_cond_signal(&p->bg_cond);
	pthread_mutex_unlock(&p->bg_lock);
	pthread_join(p->commit_thread, NULL);
	p->commit_thread_started = false;
}
