/* fs/pfs_analytics_grade.c - the front's side of forecasts that grade themselves: records the
 * box's forecasts (the pool's physical used and the wear-out once a day of history time, each
 * volume's logical written once a week) in the store, decides which ones a new history keeps,
 * and loads them to be scored (analytics_grade). Never on the I/O path: the sampler thread
 * and ctl/report readers only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pfs_analytics.h"
#include "pfs_front_int.h"

/* ---- recording ---------------------------------------------------------------------------- */
static int record_one(struct pfs *p, const char *kind, const struct analytics_capacity *c,
                      int column)
{
	struct analytics_recorded r;
	double v[ANALYTICS_RECORDED_VALUES];

	if (analytics_recorded_from(c, column, &r))
		return 0; /* no forecast (too little history): nothing to keep */
	analytics_recorded_pack(&r, v);
	int rc = pfs_forecast_record(p, kind, r.made_at, v, ANALYTICS_RECORDED_VALUES);
	return rc == -EEXIST ? 0 : rc;
}

static bool due(struct pfs *p, const char *kind, int64_t now)
{
	int64_t last = -1;

	if (pfs_forecast_last(p, kind, &last))
		return false;
	return last < 0 || now - last >= PFS_FORECAST_INTERVAL;
}

static bool is_volume_kind(const char *kind)
{
	return !strncmp(kind, PFS_GRADE_VOLUME, sizeof(PFS_GRADE_VOLUME) - 1);
}

/* Each volume whose last forecast is a week old or more (or that has none) records one. The
 * pass runs with the pool's daily record, so a thousand volumes cost a read of their history
 * once a day of history time, not at every sample. */
static int record_volumes(struct pfs *p, int64_t now)
{
	struct pfs_vol_set s;
	int rc = pfs_analytics_volume_series(p, &s);

	for (size_t i = 0; i < s.n && !rc; i++) {
		struct analytics_capacity c;
		char kind[PFS_GRADE_KIND_MAX];
		int64_t last = -1;

		/* Per-volume rows come once an ANALYTICS_VOL_INTERVAL: a volume with none in
		 * the last two is gone (or its sampling is failing), and what it would record
		 * was recorded while it was sampled. */
		int64_t newest = s.v[i].t[s.v[i].n - 1]; /* a series starts with its first row */
		if (now - newest > 2 * ANALYTICS_VOL_INTERVAL)
			continue;
		snprintf(kind, sizeof(kind), PFS_GRADE_VOLUME "%s", s.v[i].name);
		rc = pfs_forecast_last(p, kind, &last);
		if (rc ||
		    (last >= 0 && newest - last < PFS_FORECAST_VOL_INTERVAL && newest >= last))
			continue;
		rc = pfs_analytics_volume_forecast(&s.v[i], &c);
		if (!rc)
			rc = record_one(p, kind, &c, ANALYTICS_VOL_WRITTEN);
	}
	pfs_vol_set_free(&s);
	return rc;
}

int pfs_analytics_record_forecasts(struct pfs *p, int64_t now)
{
	struct analytics_history h = {0};
	struct analytics_capacity c;
	bool cap_due = due(p, PFS_GRADE_CAPACITY, now), wear_due = due(p, PFS_GRADE_WEAROUT, now);
	bool pool_forecast = false;
	int column, rc;

	/* The common case (every sample but one a day) reads one row of SQLite, no history. */
	if (!cap_due && !wear_due)
		return 0;
	rc = pfs_analytics_history(p, &h);
	if (rc)
		return rc;
	if (cap_due) {
		rc = pfs_analytics_capacity_of(&h, &c);
		pool_forecast = !rc && c.ok;
		if (!rc)
			rc = record_one(p, PFS_GRADE_CAPACITY, &c, ANALYTICS_COL_PHYSICAL_USED);
	}
	if (!rc && wear_due) {
		rc = pfs_analytics_wearout_of(p, &h, &c, &column);
		if (!rc)
			rc = record_one(p, PFS_GRADE_WEAROUT, &c, column);
	}
	/* The volumes' pass rides on the pool's daily record, not on its being due: a pool that
	 * cannot forecast yet (its first day) stays due at every sample, and the volumes' rows,
	 * sampled beside the pool's or cleared by an import, are no longer than its. */
	if (!rc && pool_forecast)
		rc = record_volumes(p, now);
	analytics_history_free(&h);
	return rc;
}

/* ---- loading -------------------------------------------------------------------------------- */
struct recorded_set {
	const char *kind; /* NULL: every kind */
	bool volumes;     /* KIND NULL: only the volumes' kinds */
	int column;       /* -1: every column */
	struct analytics_recorded *r;
	char (*kinds)[PFS_GRADE_KIND_MAX];
	size_t n, cap, all;
	int err;
};

static int collect_recorded(void *arg, const char *kind, int64_t made_at, const double *v,
                            uint32_t n)
{
	struct recorded_set *s = arg;
	struct analytics_recorded r;

	if (s->kind ? strcmp(kind, s->kind) != 0 : s->volumes && !is_volume_kind(kind))
		return 0;
	s->all++;
	/* A row that does not unpack (damaged, or from a later version) is skipped: never a
	 * made-up forecast, and never a failed report. */
	if (analytics_recorded_unpack(made_at, v, n, &r) ||
	    (s->column >= 0 && r.column != s->column))
		return 0;
	if (strlen(kind) >= sizeof(s->kinds[0]))
		return 0;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		void *nr = realloc(s->r, cap * sizeof(*s->r));
		if (nr)
			s->r = nr;
		void *nk = nr ? realloc(s->kinds, cap * sizeof(*s->kinds)) : NULL;
		if (!nk)
			return s->err = -ENOMEM;
		s->kinds = nk;
		s->cap = cap;
	}
	s->r[s->n] = r;
	strcpy(s->kinds[s->n], kind);
	s->n++;
	return 0;
}

static int load_recorded(struct pfs *p, struct recorded_set *s)
{
	int rc = pfs_forecasts_each(p, collect_recorded, s);

	if (!rc)
		rc = s->err;
	return rc;
}

static void recorded_set_free(struct recorded_set *s)
{
	free(s->r);
	free(s->kinds);
}

/* The history's column COL as arrays (malloc'd). */
static int column_of(const struct analytics_history *h, int col, int64_t **t, double **y)
{
	*t = malloc((h->n ? h->n : 1) * sizeof(**t));
	*y = malloc((h->n ? h->n : 1) * sizeof(**y));
	if (!*t || !*y) {
		free(*t);
		free(*y);
		*t = NULL;
		*y = NULL;
		return -ENOMEM;
	}
	for (size_t i = 0; i < h->n; i++) {
		(*t)[i] = h->s[i].time;
		(*y)[i] = h->s[i].v[col];
	}
	return 0;
}

int pfs_analytics_grade_kind(struct pfs *p, const char *kind, int column,
                             const struct analytics_history *h, struct analytics_grade *g)
{
	struct recorded_set s = {.kind = kind, .column = column};
	int64_t *t = NULL;
	double *y = NULL;
	int rc = load_recorded(p, &s);

	if (!rc)
		rc = column_of(h, column, &t, &y);
	if (!rc)
		rc = analytics_grade(s.r, s.n, t, y, h->n, g);
	free(t);
	free(y);
	recorded_set_free(&s);
	return rc;
}

int pfs_analytics_grade_keep(struct pfs *p, const struct analytics_history *h,
                             struct pfs_grade_keep *k)
{
	struct recorded_set s = {.column = -1};
	int64_t *t = NULL;
	double *y = NULL;
	int rc = load_recorded(p, &s);

	memset(k, 0, sizeof(*k));
	if (rc)
		goto out_free;
	k->all = s.all;
	k->kinds = calloc(s.n ? s.n : 1, sizeof(*k->kinds));
	k->made_at = calloc(s.n ? s.n : 1, sizeof(*k->made_at));
	k->names = calloc(s.n ? s.n : 1, sizeof(*k->names));
	if (!k->kinds || !k->made_at || !k->names) {
		rc = -ENOMEM;
		goto out_free;
	}
	/* Rows come by kind, and a kind's rows share a column: one copy of it per run (an
	 * import may hold a million rows). */
	for (size_t i = 0, col = SIZE_MAX; i < s.n; i++) {
		if (is_volume_kind(s.kinds[i]))
			continue; /* the new history has no per-volume rows to score it against */
		if ((size_t)s.r[i].column != col) {
			free(t);
			free(y);
			col = (size_t)s.r[i].column;
			rc = column_of(h, s.r[i].column, &t, &y);
			if (rc)
				goto out_free;
		}
		if (analytics_recorded_matches(&s.r[i], t, y, h->n)) {
			memcpy(k->names[k->n], s.kinds[i], sizeof(k->names[0]));
			k->kinds[k->n] = k->names[k->n];
			k->made_at[k->n++] = s.r[i].made_at;
		}
	}
out_free:
	free(t);
	free(y);
	if (rc)
		pfs_grade_keep_free(k);
	recorded_set_free(&s);
	return rc;
}

int pfs_analytics_grade_volumes(struct pfs *p, const struct pfs_vol_set *vs,
                                struct analytics_grade *g)
{
	struct recorded_set s = {.volumes = true, .column = ANALYTICS_VOL_WRITTEN};
	int rc = load_recorded(p, &s);

	/* The rows come ordered by kind (SQLite's BINARY collation, the order strcmp gives): a
	 * binary search finds each volume's run of them. */
	for (size_t i = 0; i < vs->n && !rc; i++) {
		char kind[PFS_GRADE_KIND_MAX];
		size_t lo = 0, hi = s.n;

		snprintf(kind, sizeof(kind), PFS_GRADE_VOLUME "%s", vs->v[i].name);
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (strcmp(s.kinds[mid], kind) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		hi = lo;
		while (hi < s.n && !strcmp(s.kinds[hi], kind))
			hi++;
		rc = analytics_grade(s.r + lo, hi - lo, vs->v[i].t, vs->v[i].written, vs->v[i].n,
		                     &g[i]);
	}
	recorded_set_free(&s);
	return rc;
}

void pfs_grade_keep_free(struct pfs_grade_keep *k)
{
	free(k->kinds);
	free(k->made_at);
	free(k->names);
	memset(k, 0, sizeof(*k));
}
