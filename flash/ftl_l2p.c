/* flash/ftl_l2p.c - the L2P map: chunk id -> physical location, and the chunk id allocator.
 *
 * 8 bytes per chunk id in pages of 64Ki entries allocated on first use, plus 6 for the owner
 * word a checkpoint stores (a 4-byte and a 2-byte array, not a padded struct); ids are reused (free
 * ids are chained through their own entries) so memory follows live chunks, not history. Lookups
 * are lock-free atomic loads; allocation takes id_lock. Knows nothing of segments.
 */
#include <errno.h>
#include <stdlib.h>

#include "ftl_int.h"

int ftl_l2p_init(struct ftl_l2p *m, uint64_t max_ids)
{
	if (max_ids > FTL_L2P_ID_MAX)
		max_ids = FTL_L2P_ID_MAX;
	m->npages_max = (max_ids + FTL_L2P_PAGE_SIZE - 1) >> FTL_L2P_PAGE_SHIFT;
	m->pages = calloc(m->npages_max ? m->npages_max : 1, sizeof(*m->pages));
	m->words = calloc(m->npages_max ? m->npages_max : 1, sizeof(*m->words));
	if (!m->pages || !m->words) {
		free(m->pages);
		free(m->words);
		m->pages = NULL;
		m->words = NULL;
		return -ENOMEM;
	}
	pthread_mutex_init(&m->id_lock, NULL);
	m->next_id = 0;
	m->free_head = UINT64_MAX;
	m->npages = 0;
	atomic_init(&m->live, 0);
	return 0;
}

void ftl_l2p_destroy(struct ftl_l2p *m)
{
	if (!m->pages)
		return;
	for (uint64_t i = 0; i < m->npages_max; i++) {
		free((void *)m->pages[i]);
		free((void *)m->words[i]);
	}
	free(m->pages);
	free(m->words);
	m->pages = NULL;
	m->words = NULL;
	pthread_mutex_destroy(&m->id_lock);
}

static _Atomic(uint64_t) *l2p_slot(struct ftl_l2p *m, uint64_t id)
{
	uint64_t p = id >> FTL_L2P_PAGE_SHIFT;
	if (p >= m->npages_max)
		return NULL;
	_Atomic(uint64_t) *page = atomic_load_explicit((_Atomic(_Atomic(uint64_t) *) *)&m->pages[p],
	                                               memory_order_acquire);
	if (!page)
		return NULL;
	return &page[id & (FTL_L2P_PAGE_SIZE - 1)];
}

/* Caller holds id_lock. */
static int l2p_ensure_page(struct ftl_l2p *m, uint64_t id)
{
	uint64_t p = id >> FTL_L2P_PAGE_SHIFT;
	if (p >= m->npages_max)
		return -ENOSPC;
	if (m->pages[p])
		return 0;
	_Atomic(uint64_t) *page = calloc(FTL_L2P_PAGE_SIZE, sizeof(*page));
	struct ftl_l2p_words *words = calloc(1, sizeof(*words));
	if (!page || !words) {
		free((void *)page);
		free((void *)words);
		return -ENOMEM;
	}
	/* The words first: whoever sees the page may use its words. */
	atomic_store_explicit((struct ftl_l2p_words * _Atomic *)&m->words[p], words,
	                      memory_order_release);
	atomic_store_explicit((_Atomic(_Atomic(uint64_t) *) *)&m->pages[p], page,
	                      memory_order_release);
	m->npages++;
	return 0;
}

uint64_t ftl_l2p_get(struct ftl_l2p *m, uint64_t id)
{
	_Atomic(uint64_t) *s = l2p_slot(m, id);
	if (!s)
		return 0;
	uint64_t v = atomic_load_explicit(s, memory_order_acquire);
	return ftl_loc_is_chunk(v) ? v : 0;
}

void ftl_l2p_set(struct ftl_l2p *m, uint64_t id, uint64_t loc)
{
	_Atomic(uint64_t) *s = l2p_slot(m, id);
	if (s)
		atomic_store_explicit(s, loc, memory_order_release);
}

bool ftl_l2p_cas(struct ftl_l2p *m, uint64_t id, uint64_t old, uint64_t loc)
{
	_Atomic(uint64_t) *s = l2p_slot(m, id);
	if (!s)
		return false;
	return atomic_compare_exchange_strong(s, &old, loc);
}

int ftl_l2p_alloc(struct ftl_l2p *m, uint64_t *id)
{
	int rc = 0;
	pthread_mutex_lock(&m->id_lock);
	if (m->free_head != UINT64_MAX) {
		uint64_t fid = m->free_head;
		_Atomic(uint64_t) *s = l2p_slot(m, fid);
		uint64_t v = atomic_load(s);
		uint64_t next = v & ~FTL_L2P_FREE_TAG;
		m->free_head = next == (FTL_L2P_ID_MAX + 1) ? UINT64_MAX : next;
		/* A reserved non-chunk, non-free value until the caller sets the location. */
		atomic_store(s, 0);
		*id = fid;
		goto out_count;
	}
	if (m->next_id > FTL_L2P_ID_MAX) {
		rc = -ENOSPC;
		goto out_unlock;
	}
	rc = l2p_ensure_page(m, m->next_id);
	if (rc)
		goto out_unlock;
	*id = m->next_id++;
out_count:
	atomic_fetch_add(&m->live, 1);
out_unlock:
	pthread_mutex_unlock(&m->id_lock);
	return rc;
}

static void l2p_push_free(struct ftl_l2p *m, uint64_t id)
{
	uint64_t next = m->free_head == UINT64_MAX ? FTL_L2P_ID_MAX + 1 : m->free_head;
	atomic_store(l2p_slot(m, id), FTL_L2P_FREE_TAG | next);
	m->free_head = id;
}

int ftl_l2p_claim(struct ftl_l2p *m, uint64_t id)
{
	int rc;
	if (id > FTL_L2P_ID_MAX)
		return -EINVAL;
	pthread_mutex_lock(&m->id_lock);
	rc = l2p_ensure_page(m, id);
	if (rc)
		goto out_unlock;
	if (ftl_loc_is_chunk(atomic_load(l2p_slot(m, id)))) {
		rc = -EEXIST;
		goto out_unlock;
	}
	if (id >= m->next_id)
		m->next_id = id + 1;
	atomic_fetch_add(&m->live, 1);
out_unlock:
	pthread_mutex_unlock(&m->id_lock);
	return rc;
}

void ftl_l2p_release(struct ftl_l2p *m, uint64_t id)
{
	pthread_mutex_lock(&m->id_lock);
	l2p_push_free(m, id);
	atomic_fetch_sub(&m->live, 1);
	pthread_mutex_unlock(&m->id_lock);
}

void ftl_l2p_rebuild_free(struct ftl_l2p *m)
{
	pthread_mutex_lock(&m->id_lock);
	m->free_head = UINT64_MAX;
	/* Highest ids first in the loop so the lowest end up at the head (reused first). */
	for (uint64_t id = m->next_id; id-- > 0;) {
		_Atomic(uint64_t) *s = l2p_slot(m, id);
		if (s && !ftl_loc_is_chunk(atomic_load(s)))
			l2p_push_free(m, id);
	}
	pthread_mutex_unlock(&m->id_lock);
}

uint64_t ftl_l2p_mem_bytes(const struct ftl_l2p *m)
{
	return m->npages * (FTL_L2P_PAGE_SIZE * sizeof(uint64_t) + sizeof(struct ftl_l2p_words)) +
	       2 * m->npages_max * sizeof(*m->pages);
}

static struct ftl_l2p_words *words_page(struct ftl_l2p *m, uint64_t id)
{
	uint64_t p = id >> FTL_L2P_PAGE_SHIFT;
	if (p >= m->npages_max)
		return NULL;
	return atomic_load_explicit((struct ftl_l2p_words * _Atomic *)&m->words[p],
	                            memory_order_acquire);
}

/* Stored: hash bytes 0..3 in lo, hash byte 4 and the flags in hi. Writers hold the stream lock
 * of the chunk and the checkpoint holds every stream lock, so the two halves never tear. */
void ftl_l2p_set_word(struct ftl_l2p *m, uint64_t id, uint64_t word)
{
	struct ftl_l2p_words *w = words_page(m, id);
	uint32_t i = (uint32_t)(id & (FTL_L2P_PAGE_SIZE - 1));
	if (!w)
		return;
	atomic_store_explicit(&w->lo[i], (uint32_t)word, memory_order_relaxed);
	atomic_store_explicit(&w->hi[i], (uint16_t)((word >> 32 & 0xff) | (word >> 56) << 8),
	                      memory_order_relaxed);
}

uint64_t ftl_l2p_get_word(struct ftl_l2p *m, uint64_t id)
{
	struct ftl_l2p_words *w = words_page(m, id);
	uint32_t i = (uint32_t)(id & (FTL_L2P_PAGE_SIZE - 1));
	if (!w)
		return 0;
	uint64_t lo = atomic_load_explicit(&w->lo[i], memory_order_relaxed);
	uint64_t hi = atomic_load_explicit(&w->hi[i], memory_order_relaxed);
	return lo | (hi & 0xff) << 32 | (hi >> 8) << 56;
}

void ftl_l2p_set_heat(struct ftl_l2p *m, uint64_t id, uint8_t heat)
{
	struct ftl_l2p_words *w = words_page(m, id);
	if (w)
		atomic_store_explicit(&w->heat[id & (FTL_L2P_PAGE_SIZE - 1)], heat,
		                      memory_order_relaxed);
}

uint8_t ftl_l2p_get_heat(struct ftl_l2p *m, uint64_t id)
{
	struct ftl_l2p_words *w = words_page(m, id);
	return w ? atomic_load_explicit(&w->heat[id & (FTL_L2P_PAGE_SIZE - 1)],
	                                memory_order_relaxed)
	         : 0;
}
