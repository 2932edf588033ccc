/* fs/vol/pfs_history.c - the store's side of the analytics history and the forecasts kept to be
 * graded: each write is one SQLite transaction under commit_lock (the lock every other SQLite
 * transaction of the store takes), so a sample never lands inside a commit's transaction. Not
 * on the I/O path.
 */
#include <errno.h>
#include <stdatomic.h>

#include "pfs_vol_int.h"

/* One counter for the whole process: several stores can be open at once and a closed store's
 * address can come back for the next one, so a generation is never reused by any store and
 * (store, generation) names one state of one store's history for the life of the process. */
static _Atomic uint64_t history_generations;

/* After every transaction on the history or the forecasts (under commit_lock, after the commit
 * or rollback): a reader that took the generation before reading sees it change. A rolled-back
 * one changes it too: a spurious recompute costs little, a missed change would serve old
 * figures. */
static void history_changed(struct pfs *p)
{
	atomic_store(&p->history_gen, atomic_fetch_add(&history_generations, 1) + 1);
}

/* The per-volume reports' part: called beside history_changed by the writes they read. */
static void volumes_changed(struct pfs *p)
{
	atomic_store(&p->vol_history_gen, atomic_fetch_add(&history_generations, 1) + 1);
}

static uint64_t generation_of(_Atomic uint64_t *gen)
{
	uint64_t g = atomic_load(gen);

	if (g)
		return g;
	/* First asked for before any write: a fresh number, unless a writer got in first. */
	uint64_t fresh = atomic_fetch_add(&history_generations, 1) + 1;
	if (atomic_compare_exchange_strong(gen, &g, fresh))
		return fresh;
	return g;
}

uint64_t pfs_history_generation(struct pfs *p)
{
	return generation_of(&p->history_gen);
}

uint64_t pfs_history_volume_generation(struct pfs *p)
{
	return generation_of(&p->vol_history_gen);
}

int pfs_history_append(struct pfs *p, int64_t time, const double *v, uint32_t n)
{
	int64_t last;
	int rc;

	if (p->opts.readonly)
		return -EROFS;
	if (n > PFS_HISTORY_MAX_VALUES)
		return -EINVAL;
	pthread_mutex_lock(&p->commit_lock);
	rc = pfs_meta_history_last(p->meta, &last);
	if (!rc && last >= time)
		rc = -EEXIST;
	if (!rc)
		rc = pfs_meta_history_room(p->meta);
	if (rc)
		goto out_unlock;
	rc = pfs_meta_begin(p->meta);
	if (rc)
		goto out_unlock;
	rc = pfs_meta_history_put(p->meta, 0, time, v, n);
	if (!rc)
		rc = pfs_meta_history_roll(p->meta);
	if (rc)
		pfs_meta_rollback(p->meta);
	else
		rc = pfs_meta_commit(p->meta);
	history_changed(p);
out_unlock:
	pthread_mutex_unlock(&p->commit_lock);
	return rc;
}

int pfs_history_replace(struct pfs *p, size_t nrows, const int64_t *times, const double *vals,
                        uint32_t n)
{
	return pfs_history_replace_keep(p, nrows, times, vals, n, 0, NULL, NULL);
}

int pfs_history_replace_keep(struct pfs *p, size_t nrows, const int64_t *times, const double *vals,
                             uint32_t n, size_t nkeep, const char *const *kinds,
                             const int64_t *made_at)
{
	int rc;

	if (p->opts.readonly)
		return -EROFS;
	if (n > PFS_HISTORY_MAX_VALUES)
		return -EINVAL;
	for (size_t i = 1; i < nrows; i++)
		if (times[i] <= times[i - 1])
			return -EINVAL;
	pthread_mutex_lock(&p->commit_lock);
	rc = pfs_meta_begin(p->meta);
	if (rc)
		goto out_unlock;
	rc = pfs_meta_history_clear(p->meta);
	if (!rc)
		rc = pfs_meta_forecast_keep_only(p->meta, nkeep, kinds, made_at);
	/* Rolled as it goes, so a long import never holds more raw rows than the metadata
	 * region takes: the rows come in time order, so a roll at a partial "now" rolls only
	 * buckets that are complete already. */
	for (size_t i = 0; i < nrows && !rc; i++) {
		rc = pfs_meta_history_put(p->meta, 0, times[i], vals + i * n, n);
		if (!rc && i % 4096 == 4095)
			rc = pfs_meta_history_roll(p->meta);
		if (!rc && i % 4096 == 4095)
			rc = pfs_meta_history_room(p->meta);
	}
	if (!rc)
		rc = pfs_meta_history_roll(p->meta);
	if (!rc)
		rc = pfs_meta_history_room(p->meta);
	if (rc)
		pfs_meta_rollback(p->meta);
	else
		rc = pfs_meta_commit(p->meta);
	history_changed(p);
	volumes_changed(p);
out_unlock:
	pthread_mutex_unlock(&p->commit_lock);
	return rc;
}

int pfs_history_each(struct pfs *p, pfs_history_fn fn, void *arg)
{
	return pfs_meta_history_each(p->meta, fn, arg);
}

int pfs_history_count(struct pfs *p, int tier, uint64_t *n)
{
	return pfs_meta_history_count(p->meta, tier, n);
}

int pfs_history_append_volumes(struct pfs *p, int64_t time, size_t nvol, const char *const *names,
                               const double *vals, uint32_t n)
{
	int64_t last;
	int rc;

	if (p->opts.readonly)
		return -EROFS;
	if (n > PFS_HISTORY_MAX_VALUES)
		return -EINVAL;
	pthread_mutex_lock(&p->commit_lock);
	rc = pfs_meta_history_vol_last(p->meta, &last);
	if (!rc && last >= time)
		rc = -EEXIST;
	if (!rc)
		rc = pfs_meta_history_room(p->meta);
	if (rc)
		goto out_unlock;
	rc = pfs_meta_begin(p->meta);
	if (rc)
		goto out_unlock;
	for (size_t i = 0; i < nvol && !rc; i++)
		rc = pfs_meta_history_vol_put(p->meta, 0, time, names[i], vals + i * n, n);
	if (!rc)
		rc = pfs_meta_history_roll(p->meta);
	if (rc)
		pfs_meta_rollback(p->meta);
	else
		rc = pfs_meta_commit(p->meta);
	history_changed(p);
	volumes_changed(p);
out_unlock:
	pthread_mutex_unlock(&p->commit_lock);
	return rc;
}

int pfs_history_volumes_each(struct pfs *p, pfs_history_vol_fn fn, void *arg)
{
	return pfs_meta_history_vol_each(p->meta, fn, arg);
}

int pfs_forecast_record(struct pfs *p, const char *kind, int64_t made_at, const double *v,
                        uint32_t n)
{
	int64_t last;
	int rc;

	if (p->opts.readonly)
		return -EROFS;
	if (n > PFS_HISTORY_MAX_VALUES)
		return -EINVAL;
	pthread_mutex_lock(&p->commit_lock);
	rc = pfs_meta_forecast_last(p->meta, kind, &last);
	if (!rc && last >= 0 && made_at - last < PFS_FORECAST_INTERVAL)
		rc = -EEXIST;
	if (!rc)
		rc = pfs_meta_history_room(p->meta);
	if (rc)
		goto out_unlock;
	rc = pfs_meta_begin(p->meta);
	if (rc)
		goto out_unlock;
	rc = pfs_meta_forecast_put(p->meta, kind, made_at, v, n);
	if (!rc)
		/* Every kind: a deleted volume's rows records nothing more to trim them by. */
		rc = pfs_meta_forecast_trim(p->meta, made_at - PFS_FORECAST_KEEP_SECONDS);
	if (rc)
		pfs_meta_rollback(p->meta);
	else
		rc = pfs_meta_commit(p->meta);
	history_changed(p);
	volumes_changed(p);
out_unlock:
	pthread_mutex_unlock(&p->commit_lock);
	return rc;
}

int pfs_forecast_last(struct pfs *p, const char *kind, int64_t *made_at)
{
	return pfs_meta_forecast_last(p->meta, kind, made_at);
}

int pfs_forecasts_each(struct pfs *p, pfs_forecast_fn fn, void *arg)
{
	return pfs_meta_forecast_each(p->meta, fn, arg);
}
