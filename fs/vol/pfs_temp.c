/* fs/vol/pfs_temp.c - data temperature: per 1 MiB extent of each volume, a decayed access heat
 * and the last access time, classed hot / warm / cold / frozen. The I/O path only adds to and
 * stores into an extent's slot (no lock; an allocation only the first time an extent is touched);
 * folding, classing, the report walk and persistence (blobs in SQLite) happen off it.
 *
 * Invariants:
 *  1. A volume's tracker is a radix tree of 64-way nodes over leaves of 64 extents (64 MiB),
 *     made on first touch and published with a compare-and-swap; nothing is freed before the
 *     volume's struct is (pfs_vol_unref), so a lock-free reader never sees freed memory.
 *  2. A slot's `hits` counts accesses not yet folded into `heat`; `last` is the newest access
 *     (Unix seconds, 0 = never). Only a holder of temp->lock folds (hits -> heat, heat_t) or
 *     reads heat and heat_t together, so the pair is consistent for every reader that holds it.
 *  3. A leaf is `dirty` when a fold changed it since it was last persisted; the save clears the
 *     mark before it encodes and sets it again when the write fails, so no change is lost.
 *  4. temp->lock is a leaf lock: nothing is taken under it. A save takes commit_lock after
 *     dropping it, and skips a volume that was deleted meanwhile (`gone` is set under
 *     commit_lock, in the same transaction that drops its blobs).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pfs_vol_int.h"

#define TEMP_FANOUT_BITS 6u
#define TEMP_FANOUT      (1u << TEMP_FANOUT_BITS) /* children of a node, extents of a leaf */
#define TEMP_EXT_SHIFT   20u                      /* PFS_TEMP_EXTENT_BYTES = 1 << 20 */
_Static_assert(PFS_TEMP_EXTENT_BYTES == 1u << TEMP_EXT_SHIFT, "extent shift");

/* Persisted leaf: magic, version << 16 | slot count, then per slot last, heat_t, heat (f32 bits),
 * all little-endian u32. Keys: "temp/<volume id, 16 hex>/<leaf index, 10 hex>"; "temp/since" holds
 * the pool's tracking start (u64 Unix seconds). */
#define TEMP_BLOB_MAGIC   0x504d4554u /* "TEMP" */
#define TEMP_BLOB_VERSION 1u
#define TEMP_BLOB_HDR     8u
#define TEMP_BLOB_SLOT    12u
#define TEMP_BLOB_LEN     (TEMP_BLOB_HDR + TEMP_FANOUT * TEMP_BLOB_SLOT)
#define TEMP_KEY_PREFIX   "temp/"
#define TEMP_KEY_SINCE    "temp/since"
#define TEMP_KEY_MAX      48
/* Records a transaction writes or deletes at most (about 100 KiB of rows): one for everything
 * could outgrow the metadata journal (1 MiB on a small namespace) and then fail every time. */
#define TEMP_BATCH 128u

struct temp_slot {
	_Atomic uint32_t hits;   /* accesses since the last fold (I/O path: atomic add) */
	_Atomic uint32_t last;   /* newest access, Unix seconds; 0 = never (I/O path: store) */
	_Atomic uint32_t heat;   /* float bits: heat at heat_t (temp->lock) */
	_Atomic uint32_t heat_t; /* Unix seconds of the last fold (temp->lock) */
};

struct temp_leaf {
	struct temp_slot s[TEMP_FANOUT];
	uint64_t idx;           /* extent index >> TEMP_FANOUT_BITS */
	struct temp_leaf *next; /* the tracker's list of leaves (set before the push) */
	_Atomic bool dirty;
};

struct temp_node {
	_Atomic(void *) child[TEMP_FANOUT];
};

struct pfs_temp_vol {
	_Atomic(void *) root;               /* the top node */
	unsigned levels;                    /* node levels above the leaves */
	_Atomic(struct temp_leaf *) leaves; /* every leaf, newest first */
	_Atomic uint64_t nleaves, nnodes;
};

struct pfs_temp {
	pthread_mutex_t lock; /* invariant 2 and 4 */
	int64_t since;        /* the pool's tracking start (Unix seconds) */
	unsigned levels;      /* node levels for this mount's largest volume */
	_Atomic uint64_t touches, dropped, saves, save_errors, leaves_saved;
	_Atomic int64_t last_save;
	int last_rc; /* log a failing save once */
};

static int64_t temp_clock_real(void)
{
	struct timespec ts;

	/* Coarse: the I/O path reads it, and second resolution is all the slots keep. */
	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	return ts.tv_sec;
}
int64_t (*pfs_temp_now)(void) = temp_clock_real;

/* ---- the math (pure) ------------------------------------------------------------------------- */
double pfs_temp_decay(double heat, int64_t dt, uint32_t half_life)
{
	if (dt <= 0 || heat <= 0)
		return heat > 0 ? heat : 0;
	if (!half_life)
		return 0;
	return heat * exp2(-(double)dt / (double)half_life);
}

enum pfs_temp_class pfs_temp_classify(const struct pfs_temp_thresholds *t, int64_t age, double heat)
{
	/* Frozen is tested first, so frozen_after <= cold_after leaves no extent cold (it goes
	 * from warm or hot straight to frozen) instead of refusing one of the two settings. */
	if (age >= (int64_t)t->frozen_after)
		return PFS_TEMP_FROZEN;
	if (age >= (int64_t)t->cold_after)
		return PFS_TEMP_COLD;
	if (heat >= (double)t->hot_heat)
		return PFS_TEMP_HOT;
	return PFS_TEMP_WARM;
}

const char *pfs_temp_class_name(enum pfs_temp_class c)
{
	static const char *const names[PFS_TEMP_CLASSES] = {"hot", "warm", "cold", "frozen"};

	return (unsigned)c < PFS_TEMP_CLASSES ? names[c] : "unknown";
}

static float bits_float(uint32_t b)
{
	float f;

	memcpy(&f, &b, sizeof(f));
	return f;
}

static uint32_t float_bits(float f)
{
	uint32_t b;

	memcpy(&b, &f, sizeof(b));
	return b;
}

/* ---- the tree -------------------------------------------------------------------------------- */
/* Levels so that TEMP_FANOUT^levels leaves cover the largest volume this mount allows. */
static unsigned levels_for(uint64_t max_bytes)
{
	uint64_t leaves = (max_bytes >> TEMP_EXT_SHIFT >> TEMP_FANOUT_BITS) + 1;
	unsigned l = 1;

	while (l < 8 && leaves > (1ull << (TEMP_FANOUT_BITS * l)))
		l++;
	return l;
}

static struct pfs_temp_vol *tracker(struct pfs *p, struct pfs_vol *v, bool create)
{
	struct pfs_temp_vol *t = atomic_load_explicit(&v->temp, memory_order_acquire), *exp = NULL;

	if (t || !create || !p->temp)
		return t;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->levels = p->temp->levels;
	if (!atomic_compare_exchange_strong(&v->temp, &exp, t)) {
		free(t);
		return exp;
	}
	return t;
}

/* The leaf holding extent index LIDX << 6, made (with its path) when CREATE; NULL when absent
 * or out of memory. Lock-free (invariant 1). */
static struct temp_leaf *leaf_get(struct pfs_temp_vol *t, uint64_t lidx, bool create)
{
	_Atomic(void *) *slot = &t->root;

	if (lidx >> (TEMP_FANOUT_BITS * t->levels))
		return NULL; /* beyond what this mount addresses */
	for (unsigned l = t->levels + 1; l-- > 0;) {
		void *c = atomic_load_explicit(slot, memory_order_acquire);
		if (!c) {
			void *exp = NULL;
			if (!create)
				return NULL;
			if (l == 0) {
				struct temp_leaf *lf = calloc(1, sizeof(*lf));
				if (!lf)
					return NULL;
				lf->idx = lidx;
				c = lf;
			} else {
				c = calloc(1, sizeof(struct temp_node));
				if (!c)
					return NULL;
			}
			if (!atomic_compare_exchange_strong(slot, &exp, c)) {
				free(c);
				c = exp;
			} else if (l == 0) {
				struct temp_leaf *lf = c, *head = atomic_load(&t->leaves);
				do
					lf->next = head;
				while (!atomic_compare_exchange_weak(&t->leaves, &head, lf));
				atomic_fetch_add_explicit(&t->nleaves, 1, memory_order_relaxed);
			} else {
				atomic_fetch_add_explicit(&t->nnodes, 1, memory_order_relaxed);
			}
		}
		if (l == 0)
			return c;
		struct temp_node *n = c;
		slot = &n->child[(lidx >> (TEMP_FANOUT_BITS * (l - 1))) & (TEMP_FANOUT - 1)];
	}
	return NULL;
}

static struct temp_slot *slot_get(struct pfs *p, struct pfs_vol *v, uint64_t ext, bool create)
{
	struct pfs_temp_vol *t = tracker(p, v, create);
	struct temp_leaf *lf = t ? leaf_get(t, ext >> TEMP_FANOUT_BITS, create) : NULL;

	return lf ? &lf->s[ext & (TEMP_FANOUT - 1)] : NULL;
}

static void free_node(void *c, unsigned level)
{
	struct temp_node *n = c;

	if (!c)
		return;
	if (level > 0)
		for (unsigned i = 0; i < TEMP_FANOUT; i++)
			free_node(atomic_load_explicit(&n->child[i], memory_order_relaxed),
			          level - 1);
	free(c);
}

void pfs_temp_vol_free(struct pfs_vol *v)
{
	struct pfs_temp_vol *t = atomic_load(&v->temp);

	if (!t)
		return;
	free_node(atomic_load(&t->root), t->levels);
	free(t);
	atomic_store(&v->temp, NULL);
}

static uint64_t tracker_ram(struct pfs_temp_vol *t)
{
	return sizeof(*t) + atomic_load(&t->nleaves) * sizeof(struct temp_leaf) +
	       atomic_load(&t->nnodes) * sizeof(struct temp_node);
}

/* ---- the I/O path ---------------------------------------------------------------------------- */
void pfs_temp_touch(struct pfs *p, struct pfs_vol *v, uint64_t off, uint64_t len)
{
	if (!len || !p->temp || v->kind != PFS_MAP_VOLUME)
		return;
	uint32_t now = (uint32_t)pfs_temp_now();
	uint64_t last = (off + len - 1) >> TEMP_EXT_SHIFT;

	for (uint64_t e = off >> TEMP_EXT_SHIFT; e <= last; e++) {
		struct temp_slot *s = slot_get(p, v, e, true);
		if (!s) {
			atomic_fetch_add_explicit(&p->temp->dropped, 1, memory_order_relaxed);
			continue;
		}
		atomic_fetch_add_explicit(&s->hits, 1, memory_order_relaxed);
		atomic_store_explicit(&s->last, now, memory_order_relaxed);
	}
	atomic_fetch_add_explicit(&p->temp->touches, 1, memory_order_relaxed);
}

/* ---- folding and classing (temp->lock held) ------------------------------------------------- */
static void thresholds(struct pfs *p, struct pfs_temp_thresholds *th)
{
	pthread_mutex_lock(&p->cfg_lock);
	th->cold_after = p->cfg.temp_cold_after;
	th->frozen_after = p->cfg.temp_frozen_after;
	th->hot_heat = p->cfg.temp_hot_heat;
	th->half_life = p->cfg.temp_half_life;
	pthread_mutex_unlock(&p->cfg_lock);
}

/* Folds the slot's pending hits into its heat at NOW; true when it changed. */
static bool slot_fold(struct temp_slot *s, int64_t now, uint32_t half_life)
{
	uint32_t h = atomic_exchange_explicit(&s->hits, 0, memory_order_relaxed);

	if (!h)
		return false;
	double heat = pfs_temp_decay(
	    bits_float(atomic_load_explicit(&s->heat, memory_order_relaxed)),
	    now - (int64_t)atomic_load_explicit(&s->heat_t, memory_order_relaxed), half_life);
	atomic_store_explicit(&s->heat, float_bits((float)(heat + h)), memory_order_relaxed);
	atomic_store_explicit(&s->heat_t, (uint32_t)now, memory_order_relaxed);
	return true;
}

/* When a volume's data that no access was recorded for counts as last accessed. */
static int64_t baseline(struct pfs *p, struct pfs_vol *v)
{
	int64_t c = v->ctime_ns / 1000000000;

	return c > p->temp->since ? c : p->temp->since;
}

/* The state of extent EXT now (temp->lock held): heat with unfolded hits, last access. */
static void extent_state(struct pfs *p, struct pfs_vol *v, uint64_t ext, int64_t now,
                         uint32_t half_life, int64_t *last, double *heat)
{
	struct temp_slot *s = slot_get(p, v, ext, false);
	uint32_t l = s ? atomic_load_explicit(&s->last, memory_order_relaxed) : 0;

	*last = l ? (int64_t)l : baseline(p, v);
	*heat = 0;
	if (!s)
		return;
	*heat =
	    pfs_temp_decay(bits_float(atomic_load_explicit(&s->heat, memory_order_relaxed)),
	                   now - (int64_t)atomic_load_explicit(&s->heat_t, memory_order_relaxed),
	                   half_life) +
	    atomic_load_explicit(&s->hits, memory_order_relaxed);
}

enum pfs_temp_class pfs_temp_class_at(struct pfs *p, struct pfs_vol *v, uint64_t off)
{
	struct pfs_temp_thresholds th;
	int64_t now = pfs_temp_now(), last;
	double heat;

	if (!p->temp)
		return PFS_TEMP_WARM; /* not tracked: nothing is known to be cold */
	thresholds(p, &th);
	pthread_mutex_lock(&p->temp->lock);
	extent_state(p, v, off >> TEMP_EXT_SHIFT, now, th.half_life, &last, &heat);
	pthread_mutex_unlock(&p->temp->lock);
	return pfs_temp_classify(&th, now - last, heat);
}

/* ---- the report walk ------------------------------------------------------------------------- */
struct usage_walk {
	struct pfs *p;
	struct pfs_vol *v;
	struct pfs_temp_usage *u;
	struct pfs_temp_thresholds th;
	int64_t now;
	uint64_t cur_ext; /* UINT64_MAX: none yet */
	enum pfs_temp_class cur_class;
	int64_t cur_last;
	double cur_heat;
};

static void top_insert(struct pfs_temp_usage *u, uint64_t off, double heat, int64_t last)
{
	unsigned n = u->nhottest, i;

	if (heat <= 0)
		return;
	if (n == PFS_TEMP_TOP && heat <= u->hottest[n - 1].heat)
		return;
	i = n < PFS_TEMP_TOP ? n : PFS_TEMP_TOP - 1;
	while (i > 0 && u->hottest[i - 1].heat < heat) {
		u->hottest[i] = u->hottest[i - 1];
		i--;
	}
	u->hottest[i] = (struct pfs_temp_extent){.offset = off, .heat = heat, .last_access = last};
	if (n < PFS_TEMP_TOP)
		u->nhottest++;
}

static void walk_extent(struct usage_walk *w, uint64_t ext)
{
	pthread_mutex_lock(&w->p->temp->lock);
	extent_state(w->p, w->v, ext, w->now, w->th.half_life, &w->cur_last, &w->cur_heat);
	pthread_mutex_unlock(&w->p->temp->lock);
	w->cur_ext = ext;
	w->cur_class = pfs_temp_classify(&w->th, w->now - w->cur_last, w->cur_heat);
	w->u->extents[w->cur_class]++;
	top_insert(w->u, ext << TEMP_EXT_SHIFT, w->cur_heat, w->cur_last);
}

static int usage_page(void *arg, uint64_t idx, const struct engine_ref *refs)
{
	struct usage_walk *w = arg;
	const uint64_t bs = pfs_block_size(w->p);

	for (uint32_t i = 0; i < PFS_PAGE_REFS; i++) {
		/* Loaded pages are walked without their stripe lock, as pfs_vol_usage does. */
		if (!__atomic_load_n(&refs[i].v, __ATOMIC_RELAXED))
			continue;
		uint64_t ext = ((idx * PFS_PAGE_REFS + i) * bs) >> TEMP_EXT_SHIFT;
		if (ext != w->cur_ext)
			walk_extent(w, ext);
		w->u->bytes[w->cur_class] += bs;
	}
	return 0;
}

int pfs_temp_vol_usage(struct pfs *p, struct pfs_vol *v, struct pfs_temp_usage *u)
{
	struct usage_walk w = {.p = p, .v = v, .u = u, .cur_ext = UINT64_MAX};
	int rc;

	memset(u, 0, sizeof(*u));
	w.now = u->now = pfs_temp_now();
	thresholds(p, &w.th);
	u->th = w.th;
	if (!p->temp)
		return -ENODATA;
	u->baseline = baseline(p, v);
	struct pfs_temp_vol *t = tracker(p, v, false);
	if (t) {
		u->ram_bytes = tracker_ram(t);
		u->leaves = atomic_load(&t->nleaves);
	}
	/* A page maps 256 blocks of at least 4 KiB, a whole number of extents: each extent is
	 * met in one page, as one run of its blocks, and classed once. */
	pthread_rwlock_rdlock(&v->rw);
	rc = pfs_map_each_page(p, v, usage_page, &w);
	pthread_rwlock_unlock(&v->rw);
	return rc;
}

/* ---- persistence ----------------------------------------------------------------------------- */
static void leaf_key(char *key, uint64_t vol, uint64_t lidx)
{
	snprintf(key, TEMP_KEY_MAX, TEMP_KEY_PREFIX "%016llx/%010llx", (unsigned long long)vol,
	         (unsigned long long)lidx);
}

static void leaf_encode(const struct temp_leaf *lf, uint8_t *b)
{
	pfs_put32(b, TEMP_BLOB_MAGIC);
	pfs_put32(b + 4, TEMP_BLOB_VERSION << 16 | TEMP_FANOUT);
	for (unsigned i = 0; i < TEMP_FANOUT; i++) {
		uint8_t *o = b + TEMP_BLOB_HDR + i * TEMP_BLOB_SLOT;
		pfs_put32(o, atomic_load_explicit(&lf->s[i].last, memory_order_relaxed));
		pfs_put32(o + 4, atomic_load_explicit(&lf->s[i].heat_t, memory_order_relaxed));
		pfs_put32(o + 8, atomic_load_explicit(&lf->s[i].heat, memory_order_relaxed));
	}
}

/* Checks a stored leaf: -EUCLEAN when it is not one this version wrote. */
int pfs_temp_leaf_check(const uint8_t *b, size_t len)
{
	if (len != TEMP_BLOB_LEN || pfs_get32(b) != TEMP_BLOB_MAGIC ||
	    pfs_get32(b + 4) != (TEMP_BLOB_VERSION << 16 | TEMP_FANOUT))
		return -EUCLEAN;
	for (unsigned i = 0; i < TEMP_FANOUT; i++) {
		float h = bits_float(pfs_get32(b + TEMP_BLOB_HDR + i * TEMP_BLOB_SLOT + 8));
		if (!isfinite(h) || h < 0)
			return -EUCLEAN;
	}
	return 0;
}

struct pending {
	struct pfs_vol *v;
	struct temp_leaf *lf;
	uint8_t blob[TEMP_BLOB_LEN];
};

struct pending_list {
	struct pending *e;
	size_t n, cap;
};

static int pending_add(struct pending_list *l, struct pfs_vol *v, struct temp_leaf *lf)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		void *n = realloc(l->e, cap * sizeof(*l->e));
		if (!n)
			return -ENOMEM;
		l->e = n;
		l->cap = cap;
	}
	struct pending *e = &l->e[l->n++];
	e->v = v;
	e->lf = lf;
	atomic_store(&lf->dirty, false); /* invariant 3: before the encode */
	leaf_encode(lf, e->blob);
	return 0;
}

/* The volumes that have a tracker, each with a reference taken. */
static int tracked_vols(struct pfs *p, struct pfs_vol ***out, size_t *n)
{
	struct pfs_vol **a = NULL;
	size_t k = 0, cap = 0;
	int rc = 0;

	pthread_mutex_lock(&p->cat_lock);
	for (struct pfs_vol *v = p->vols; v; v = v->next) {
		if (v->kind != PFS_MAP_VOLUME || !atomic_load(&v->temp))
			continue;
		if (k == cap) {
			cap = cap ? cap * 2 : 16;
			void *nn = realloc(a, cap * sizeof(*a));
			if (!nn) {
				rc = -ENOMEM;
				break;
			}
			a = nn;
		}
		atomic_fetch_add(&v->refs, 1);
		a[k++] = v;
	}
	pthread_mutex_unlock(&p->cat_lock);
	*out = a;
	*n = k;
	return rc;
}

/* Writes the pending leaves, TEMP_BATCH a transaction (commit_lock, invariant 4): one
 * transaction for all could outgrow the metadata journal, and then never succeed. *SAVED gets
 * the number of entries made durable (those before the first failed batch). */
static int pending_write(struct pfs *p, struct pending_list *l, size_t *saved)
{
	char key[TEMP_KEY_MAX];
	int rc = 0;

	*saved = 0;
	pthread_mutex_lock(&p->commit_lock);
	while (*saved < l->n && !rc) {
		size_t end = *saved + TEMP_BATCH < l->n ? *saved + TEMP_BATCH : l->n;
		rc = pfs_meta_history_room(p->meta); /* never the maps' room */
		if (!rc)
			rc = pfs_meta_begin(p->meta);
		if (rc)
			break;
		for (size_t i = *saved; i < end && !rc; i++) {
			if (atomic_load(&l->e[i].v->gone))
				continue; /* its blobs went with it */
			leaf_key(key, l->e[i].v->id, l->e[i].lf->idx);
			rc = pfs_meta_blob_set(p->meta, key, l->e[i].blob, TEMP_BLOB_LEN);
		}
		if (rc) {
			pfs_meta_rollback(p->meta);
			break;
		}
		rc = pfs_meta_commit(p->meta);
		if (!rc)
			*saved = end;
	}
	pthread_mutex_unlock(&p->commit_lock);
	return rc;
}

int pfs_temp_tick(struct pfs *p)
{
	struct pending_list l = {0};
	struct pfs_temp_thresholds th;
	struct pfs_vol **vols = NULL;
	size_t nvols = 0;
	int64_t now = pfs_temp_now();
	int rc;

	if (!p->temp || p->opts.readonly)
		return 0;
	thresholds(p, &th);
	rc = tracked_vols(p, &vols, &nvols);
	pthread_mutex_lock(&p->temp->lock);
	for (size_t i = 0; i < nvols && !rc; i++) {
		struct pfs_temp_vol *t = atomic_load(&vols[i]->temp);
		for (struct temp_leaf *lf = atomic_load(&t->leaves); lf && !rc; lf = lf->next) {
			bool changed = false;
			for (unsigned k = 0; k < TEMP_FANOUT; k++)
				changed |= slot_fold(&lf->s[k], now, th.half_life);
			if (changed)
				atomic_store(&lf->dirty, true);
			if (atomic_load(&lf->dirty))
				rc = pending_add(&l, vols[i], lf);
		}
	}
	pthread_mutex_unlock(&p->temp->lock);
	size_t saved = 0;
	if (!rc)
		rc = pending_write(p, &l, &saved);
	if (rc) {
		for (size_t i = saved; i < l.n; i++)
			atomic_store(&l.e[i].lf->dirty, true); /* invariant 3 */
		atomic_fetch_add(&p->temp->save_errors, 1);
		if (rc != p->temp->last_rc)
			pfs_logl(LOG_WARNING, "pstorfs: temperature: cannot save: %s",
			         strerror(-rc));
	} else {
		atomic_fetch_add(&p->temp->saves, 1);
		atomic_fetch_add(&p->temp->leaves_saved, saved);
		atomic_store(&p->temp->last_save, now);
	}
	p->temp->last_rc = rc;
	for (size_t i = 0; i < nvols; i++)
		pfs_vol_unref(vols[i]);
	free(vols);
	free(l.e);
	return rc;
}

/* Keys of persisted records, to delete. */
struct key_list {
	char (*k)[TEMP_KEY_MAX];
	size_t n, cap;
	int err;
};

static int key_collect(void *arg, const char *key, const void *val, size_t len)
{
	struct key_list *l = arg;

	(void)val;
	(void)len;
	if (strlen(key) >= TEMP_KEY_MAX)
		return 0; /* not ours */
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		void *n = realloc(l->k, cap * sizeof(*l->k));
		if (!n) {
			l->err = -ENOMEM;
			return -ENOMEM;
		}
		l->k = n;
		l->cap = cap;
	}
	snprintf(l->k[l->n++], TEMP_KEY_MAX, "%s", key);
	return 0;
}

/* Deletes the keys of L, TEMP_BATCH a transaction (caller holds commit_lock). */
static int delete_keys_locked(struct pfs *p, const struct key_list *l)
{
	size_t i = 0;
	int rc = 0;

	while (i < l->n && !rc) {
		size_t end = i + TEMP_BATCH < l->n ? i + TEMP_BATCH : l->n;
		rc = pfs_meta_begin(p->meta);
		if (rc)
			break;
		for (; i < end && !rc; i++)
			rc = pfs_meta_blob_delete(p->meta, l->k[i]);
		if (rc)
			pfs_meta_rollback(p->meta);
		else
			rc = pfs_meta_commit(p->meta);
	}
	return rc;
}

int pfs_temp_drop_locked(struct pfs *p, uint64_t vol)
{
	struct key_list l = {0};
	char prefix[TEMP_KEY_MAX];
	int rc;

	snprintf(prefix, sizeof(prefix), TEMP_KEY_PREFIX "%016llx/", (unsigned long long)vol);
	rc = pfs_meta_blobs_each(p->meta, prefix, key_collect, &l);
	if (!rc)
		rc = l.err;
	if (!rc)
		rc = delete_keys_locked(p, &l);
	free(l.k);
	return rc;
}

/* ---- mount and unmount ----------------------------------------------------------------------- */
struct loaded {
	uint64_t vol, lidx;
	uint8_t blob[TEMP_BLOB_LEN];
};

struct load_arg {
	struct loaded *e;
	size_t n, cap;
	int64_t since;
	struct key_list bad; /* keys to drop: malformed, or of a volume that is gone */
};

static int load_blob(void *arg, const char *key, const void *val, size_t len)
{
	struct load_arg *a = arg;
	unsigned long long vol, lidx;
	int end = 0;

	if (!strcmp(key, TEMP_KEY_SINCE)) {
		if (len == 8)
			a->since = (int64_t)pfs_get64(val);
		return 0;
	}
	if (sscanf(key, TEMP_KEY_PREFIX "%16llx/%10llx%n", &vol, &lidx, &end) != 2 || key[end] ||
	    pfs_temp_leaf_check(val, len))
		return key_collect(&a->bad, key, NULL, 0);
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 64;
		void *n = realloc(a->e, cap * sizeof(*a->e));
		if (!n)
			return -ENOMEM;
		a->e = n;
		a->cap = cap;
	}
	a->e[a->n].vol = vol;
	a->e[a->n].lidx = lidx;
	memcpy(a->e[a->n].blob, val, TEMP_BLOB_LEN);
	a->n++;
	return 0;
}

static bool install(struct pfs *p, const struct loaded *e)
{
	struct pfs_vol *v = pfs_vol_by_id(p, e->vol);
	struct temp_leaf *lf;
	bool ok = false;

	if (!v)
		return false;
	if (v->kind != PFS_MAP_VOLUME)
		goto out_unref;
	struct pfs_temp_vol *t = tracker(p, v, true);
	lf = t ? leaf_get(t, e->lidx, true) : NULL;
	if (!lf)
		goto out_unref;
	for (unsigned i = 0; i < TEMP_FANOUT; i++) {
		const uint8_t *o = e->blob + TEMP_BLOB_HDR + i * TEMP_BLOB_SLOT;
		atomic_store(&lf->s[i].last, pfs_get32(o));
		atomic_store(&lf->s[i].heat_t, pfs_get32(o + 4));
		atomic_store(&lf->s[i].heat, pfs_get32(o + 8));
	}
	ok = true;
out_unref:
	pfs_vol_unref(v);
	return ok;
}

/* Stores the tracking start (when STORE_SINCE) and drops the keys in L. */
static int load_fixup(struct pfs *p, const struct key_list *l, bool store_since)
{
	uint8_t b[8];
	int rc = 0;

	pthread_mutex_lock(&p->commit_lock);
	if (store_since) {
		pfs_put64(b, (uint64_t)p->temp->since);
		rc = pfs_meta_begin(p->meta);
		if (!rc) {
			rc = pfs_meta_blob_set(p->meta, TEMP_KEY_SINCE, b, sizeof(b));
			if (rc)
				pfs_meta_rollback(p->meta);
			else
				rc = pfs_meta_commit(p->meta);
		}
	}
	if (!rc)
		rc = delete_keys_locked(p, l);
	pthread_mutex_unlock(&p->commit_lock);
	return rc;
}

int pfs_temp_open(struct pfs *p)
{
	struct load_arg a = {.since = -1};
	struct pfs_temp *t = calloc(1, sizeof(*t));
	size_t lost = 0;
	int rc;

	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	t->levels = levels_for(p->max_volume_bytes);
	t->since = pfs_temp_now();
	p->temp = t;
	/* What a remount must find again; a store it cannot read starts afresh, it never fails
	 * the mount. */
	rc = pfs_meta_blobs_each(p->meta, TEMP_KEY_PREFIX, load_blob, &a);
	if (rc) {
		pfs_logl(LOG_WARNING, "pstorfs: temperature: cannot load (%s): starting afresh",
		         strerror(-rc));
		a.n = 0;
	}
	if (a.since > 0)
		t->since = a.since;
	for (size_t i = 0; i < a.n; i++) {
		if (!install(p, &a.e[i])) {
			char key[TEMP_KEY_MAX];
			leaf_key(key, a.e[i].vol, a.e[i].lidx);
			key_collect(&a.bad, key, NULL, 0);
			lost++;
		}
	}
	if (a.bad.n > lost)
		pfs_logl(LOG_WARNING, "pstorfs: temperature: dropping %zu malformed records",
		         a.bad.n - lost);
	if (!p->opts.readonly && (a.bad.n || a.since <= 0)) {
		rc = load_fixup(p, &a.bad, a.since <= 0);
		if (rc)
			pfs_logl(LOG_WARNING, "pstorfs: temperature: cannot tidy its records: %s",
			         strerror(-rc));
	}
	free(a.e);
	free(a.bad.k);
	return 0;
}

void pfs_temp_close(struct pfs *p)
{
	if (!p->temp)
		return;
	if (p->recovered)
		pfs_temp_tick(p);
}

void pfs_temp_free(struct pfs *p)
{
	if (!p->temp)
		return;
	pthread_mutex_destroy(&p->temp->lock);
	free(p->temp);
	p->temp = NULL;
}

void pfs_temp_get_stats(struct pfs *p, struct pfs_temp_stats *st)
{
	struct pfs_vol **vols = NULL;
	size_t n = 0;

	memset(st, 0, sizeof(*st));
	thresholds(p, &st->th);
	if (!p->temp)
		return;
	st->since = p->temp->since;
	st->extent_bytes = PFS_TEMP_EXTENT_BYTES;
	st->touches = atomic_load(&p->temp->touches);
	st->dropped = atomic_load(&p->temp->dropped);
	st->saves = atomic_load(&p->temp->saves);
	st->save_errors = atomic_load(&p->temp->save_errors);
	st->leaves_saved = atomic_load(&p->temp->leaves_saved);
	st->last_save = atomic_load(&p->temp->last_save);
	st->ram_bytes = sizeof(*p->temp);
	if (tracked_vols(p, &vols, &n))
		st->incomplete = true;
	for (size_t i = 0; i < n; i++) {
		struct pfs_temp_vol *t = atomic_load(&vols[i]->temp);
		st->ram_bytes += tracker_ram(t);
		st->leaves += atomic_load(&t->nleaves);
		st->nodes += atomic_load(&t->nnodes);
		pfs_vol_unref(vols[i]);
	}
	free(vols);
}
