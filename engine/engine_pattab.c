/* engine/engine_pattab.c - the table of repeating patterns of 8..16 bytes (too long to inline
 * in a reference), with reference counts. One mutex: such blocks are rare. No device I/O here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

#define PAT_NONE UINT32_MAX

static uint32_t pat_hash(const uint8_t *pat, uint32_t period)
{
	uint64_t h = 0xcbf29ce484222325ull ^ period;

	for (uint32_t i = 0; i < period; i++)
		h = (h ^ pat[i]) * 0x100000001b3ull;
	return (uint32_t)(h ^ h >> 32);
}

int engine_pattab_init(struct engine_pattab *t, uint32_t max_entries)
{
	memset(t, 0, sizeof(*t));
	t->free_head = PAT_NONE;
	t->max_entries = max_entries;
	t->nheads = 64;
	t->heads = malloc(t->nheads * sizeof(*t->heads));
	if (!t->heads)
		return -ENOMEM;
	memset(t->heads, 0xff, t->nheads * sizeof(*t->heads));
	pthread_mutex_init(&t->lock, NULL);
	return 0;
}

void engine_pattab_destroy(struct engine_pattab *t)
{
	free(t->ent);
	free(t->heads);
	pthread_mutex_destroy(&t->lock);
}

static int pattab_rehash(struct engine_pattab *t, uint32_t nheads)
{
	uint32_t *heads = malloc(nheads * sizeof(*heads));

	if (!heads)
		return -ENOMEM;
	memset(heads, 0xff, nheads * sizeof(*heads));
	for (uint32_t i = 0; i < t->nent; i++) {
		struct engine_pat_entry *en = &t->ent[i];
		uint32_t h;

		if (!en->refs)
			continue;
		h = pat_hash(en->pat, en->period) & (nheads - 1);
		en->next = heads[h];
		heads[h] = i;
	}
	free(t->heads);
	t->heads = heads;
	t->nheads = nheads;
	return 0;
}

static int pattab_new_slot(struct engine_pattab *t, uint32_t *index)
{
	if (t->free_head != PAT_NONE) {
		*index = t->free_head;
		t->free_head = t->ent[*index].next;
		return 0;
	}
	if (t->nent >= t->max_entries)
		return -ENOSPC;
	if (t->nent == t->cap) {
		uint32_t cap = t->cap ? t->cap * 2 : 64;
		struct engine_pat_entry *ent = realloc(t->ent, cap * sizeof(*ent));

		if (!ent)
			return -ENOMEM;
		t->ent = ent;
		t->cap = cap;
	}
	*index = t->nent++;
	return 0;
}

int engine_pattab_acquire(struct engine_pattab *t, const uint8_t *pat, uint32_t period,
                          uint32_t *index)
{
	uint32_t h, i;
	int rc;

	pthread_mutex_lock(&t->lock);
	h = pat_hash(pat, period);
	for (i = t->heads[h & (t->nheads - 1)]; i != PAT_NONE; i = t->ent[i].next) {
		struct engine_pat_entry *en = &t->ent[i];

		if (en->period == period && !memcmp(en->pat, pat, period)) {
			if (en->refs >= ENGINE_REFS_MAX) {
				rc = -ENOSPC;
				goto out_unlock;
			}
			en->refs++;
			*index = i;
			rc = 0;
			goto out_unlock;
		}
	}
	if (t->live + 1 > t->nheads) {
		rc = pattab_rehash(t, t->nheads * 2);
		if (rc)
			goto out_unlock;
	}
	rc = pattab_new_slot(t, &i);
	if (rc)
		goto out_unlock;
	memset(&t->ent[i], 0, sizeof(t->ent[i]));
	memcpy(t->ent[i].pat, pat, period);
	t->ent[i].period = (uint8_t)period;
	t->ent[i].refs = 1;
	t->ent[i].next = t->heads[h & (t->nheads - 1)];
	t->heads[h & (t->nheads - 1)] = i;
	t->live++;
	*index = i;
out_unlock:
	pthread_mutex_unlock(&t->lock);
	return rc;
}

int engine_pattab_get(struct engine_pattab *t, uint32_t index)
{
	int rc = 0;

	pthread_mutex_lock(&t->lock);
	if (index >= t->nent || !t->ent[index].refs)
		rc = -ENOENT;
	else if (t->ent[index].refs >= ENGINE_REFS_MAX)
		rc = -EOVERFLOW;
	else
		t->ent[index].refs++;
	pthread_mutex_unlock(&t->lock);
	return rc;
}

int engine_pattab_put(struct engine_pattab *t, uint32_t index)
{
	struct engine_pat_entry *en;
	uint32_t *pp;
	int rc = 0;

	pthread_mutex_lock(&t->lock);
	if (index >= t->nent || !t->ent[index].refs) {
		rc = -ENOENT;
		goto out_unlock;
	}
	en = &t->ent[index];
	if (--en->refs)
		goto out_unlock;
	/* Last reference: unlink from its chain and put the slot on the free list. */
	pp = &t->heads[pat_hash(en->pat, en->period) & (t->nheads - 1)];
	while (*pp != index)
		pp = &t->ent[*pp].next;
	*pp = en->next;
	en->next = t->free_head;
	t->free_head = index;
	t->live--;
out_unlock:
	pthread_mutex_unlock(&t->lock);
	return rc;
}

int engine_pattab_lookup(struct engine_pattab *t, uint32_t index, uint8_t pat[16], uint32_t *period)
{
	int rc = 0;

	pthread_mutex_lock(&t->lock);
	if (index >= t->nent || !t->ent[index].refs) {
		rc = -ENOENT;
	} else {
		memcpy(pat, t->ent[index].pat, ENGINE_PAT_MAX);
		*period = t->ent[index].period;
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

int64_t engine_pattab_count(struct engine_pattab *t, uint32_t index)
{
	int64_t n = 0;

	pthread_mutex_lock(&t->lock);
	if (index < t->nent)
		n = t->ent[index].refs;
	pthread_mutex_unlock(&t->lock);
	return n;
}

int engine_pattab_restore(struct engine_pattab *t, uint32_t index, const uint8_t *pat,
                          uint32_t period, uint32_t refs)
{
	uint32_t h;
	int rc = 0;

	pthread_mutex_lock(&t->lock);
	if (index >= t->max_entries || !refs || refs > ENGINE_REFS_MAX) {
		rc = -EINVAL;
		goto out_unlock;
	}
	if (index < t->nent && t->ent[index].refs) {
		rc = -EEXIST;
		goto out_unlock;
	}
	/* Grow to INDEX; the slots skipped on the way join the free list. */
	while (t->nent <= index) {
		uint32_t i;

		rc = pattab_new_slot(t, &i);
		if (rc)
			goto out_unlock;
		memset(&t->ent[i], 0, sizeof(t->ent[i]));
		t->ent[i].next = t->free_head;
		t->free_head = i;
	}
	/* Unlink INDEX from the free list. */
	for (uint32_t *pp = &t->free_head; *pp != PAT_NONE; pp = &t->ent[*pp].next) {
		if (*pp == index) {
			*pp = t->ent[index].next;
			break;
		}
	}
	if (t->live + 1 > t->nheads) {
		rc = pattab_rehash(t, t->nheads * 2);
		if (rc)
			goto out_unlock;
	}
	h = pat_hash(pat, period) & (t->nheads - 1);
	memset(&t->ent[index], 0, sizeof(t->ent[index]));
	memcpy(t->ent[index].pat, pat, period);
	t->ent[index].period = (uint8_t)period;
	t->ent[index].refs = refs;
	t->ent[index].next = t->heads[h];
	t->heads[h] = index;
	t->live++;
out_unlock:
	pthread_mutex_unlock(&t->lock);
	return rc;
}
