/* engine/engine_chunks.c - the chunk table: one atomic uint32 reference count per FTL chunk id,
 * in pages of 64Ki counts allocated on demand under a directory that grows by doubling.
 * Lock-free on the fast path; it must not decide when a chunk is freed (engine_core.c does).
 *
 * Invariants:
 *  C1. A page, once installed, is never moved or freed before engine_chunks_destroy().
 *  C2. Directories are replaced, never modified in place except to install a page; both happen
 *      under grow_lock, so a page installed in an old directory is always copied to the new one.
 *  C3. Replaced directories stay readable (on the retired list) until destroy, so a reader that
 *      loaded an old directory pointer never touches freed memory.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

#define PAGE_BYTES (ENGINE_CHUNK_PAGE * sizeof(uint32_t))

static struct engine_chunk_dir *dir_alloc(uint64_t npages)
{
	struct engine_chunk_dir *d = calloc(1, sizeof(*d) + npages * sizeof(d->pages[0]));

	if (d)
		d->npages = npages;
	return d;
}

static size_t dir_bytes(uint64_t npages)
{
	return sizeof(struct engine_chunk_dir) +
	       npages * sizeof(((struct engine_chunk_dir *)0)->pages[0]);
}

int engine_chunks_init(struct engine_chunks *c, uint64_t expect_ids)
{
	uint64_t npages = (expect_ids >> ENGINE_CHUNK_PAGE_SHIFT) + 1;
	struct engine_chunk_dir *d;

	if (npages < 16)
		npages = 16;
	d = dir_alloc(npages);
	if (!d)
		return -ENOMEM;
	atomic_init(&c->dir, d);
	atomic_init(&c->mem_bytes, dir_bytes(npages));
	pthread_mutex_init(&c->grow_lock, NULL);
	return 0;
}

void engine_chunks_destroy(struct engine_chunks *c)
{
	struct engine_chunk_dir *d = atomic_load(&c->dir);
	struct engine_chunk_dir *next;

	for (uint64_t i = 0; i < d->npages; i++)
		free(atomic_load(&d->pages[i]));
	for (; d; d = next) {
		next = d->retired;
		free(d);
	}
	pthread_mutex_destroy(&c->grow_lock);
}

/* Slow path: installs the page holding ID, growing the directory if needed (C2). */
static _Atomic uint32_t *chunks_page_install(struct engine_chunks *c, uint64_t pg)
{
	struct engine_chunk_dir *d, *nd;
	_Atomic uint32_t *page = NULL;

	pthread_mutex_lock(&c->grow_lock);
	d = atomic_load_explicit(&c->dir, memory_order_acquire);
	if (pg >= d->npages) {
		uint64_t n = d->npages * 2;

		while (n <= pg)
			n *= 2;
		nd = dir_alloc(n);
		if (!nd)
			goto out_unlock;
		for (uint64_t i = 0; i < d->npages; i++)
			atomic_init(&nd->pages[i], atomic_load(&d->pages[i]));
		nd->retired = d;
		atomic_fetch_add(&c->mem_bytes, dir_bytes(n));
		atomic_store_explicit(&c->dir, nd, memory_order_release);
		d = nd;
	}
	page = atomic_load(&d->pages[pg]);
	if (!page) {
		page = calloc(ENGINE_CHUNK_PAGE, sizeof(*page));
		if (!page)
			goto out_unlock;
		atomic_fetch_add(&c->mem_bytes, PAGE_BYTES);
		atomic_store_explicit(&d->pages[pg], page, memory_order_release);
	}
out_unlock:
	pthread_mutex_unlock(&c->grow_lock);
	return page;
}

static _Atomic uint32_t *chunks_slot(struct engine_chunks *c, uint64_t id, bool create)
{
	struct engine_chunk_dir *d = atomic_load_explicit(&c->dir, memory_order_acquire);
	uint64_t pg = id >> ENGINE_CHUNK_PAGE_SHIFT;
	_Atomic uint32_t *page = NULL;

	if (id > ENGINE_CHUNK_ID_MAX)
		return NULL;
	if (pg < d->npages)
		page = atomic_load_explicit(&d->pages[pg], memory_order_acquire);
	if (!page && create)
		page = chunks_page_install(c, pg);
	if (!page)
		return NULL;
	return &page[id & (ENGINE_CHUNK_PAGE - 1)];
}

int engine_chunks_create(struct engine_chunks *c, uint64_t id, uint32_t refs)
{
	_Atomic uint32_t *s = chunks_slot(c, id, true);
	uint32_t zero = 0;

	if (!s)
		return id > ENGINE_CHUNK_ID_MAX ? -ERANGE : -ENOMEM;
	if (!atomic_compare_exchange_strong(s, &zero, refs))
		return -EEXIST;
	return 0;
}

void engine_chunks_clear(struct engine_chunks *c, uint64_t id)
{
	_Atomic uint32_t *s = chunks_slot(c, id, false);

	if (s)
		atomic_store(s, 0);
}

int engine_chunks_inc(struct engine_chunks *c, uint64_t id)
{
	_Atomic uint32_t *s = chunks_slot(c, id, false);
	uint32_t v;

	if (!s)
		return -ENOENT;
	v = atomic_load_explicit(s, memory_order_relaxed);
	do {
		if (!v)
			return -ENOENT;
		if (v >= ENGINE_REFS_MAX)
			return -EOVERFLOW;
	} while (!atomic_compare_exchange_weak(s, &v, v + 1));
	return 0;
}

int engine_chunks_dec(struct engine_chunks *c, uint64_t id)
{
	_Atomic uint32_t *s = chunks_slot(c, id, false);
	uint32_t v;

	if (!s)
		return -ENOENT;
	v = atomic_load_explicit(s, memory_order_relaxed);
	do {
		if (!v)
			return -ENOENT;
		if (v == 1)
			return 0;
	} while (!atomic_compare_exchange_weak(s, &v, v - 1));
	return 1;
}

int engine_chunks_dec_last(struct engine_chunks *c, uint64_t id)
{
	_Atomic uint32_t *s = chunks_slot(c, id, false);
	uint32_t v;

	if (!s)
		return -ENOENT;
	v = atomic_load_explicit(s, memory_order_relaxed);
	do {
		if (!v)
			return -ENOENT;
	} while (!atomic_compare_exchange_weak(s, &v, v - 1));
	return v == 1;
}

uint32_t engine_chunks_count(struct engine_chunks *c, uint64_t id)
{
	_Atomic uint32_t *s = chunks_slot(c, id, false);

	return s ? atomic_load(s) : 0;
}

uint64_t engine_chunks_mem_bytes(struct engine_chunks *c)
{
	return atomic_load_explicit(&c->mem_bytes, memory_order_relaxed);
}
