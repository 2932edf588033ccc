/* analytics/analytics_grade.c - forecasts that grade themselves: a kept forecast packed into the
 * doubles the store keeps, checked when read back, scored against the history once its
 * horizons pass, and the error band observed over all of them. Pure computation: the front
 * records and loads the forecasts, nothing here touches the store.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analytics.h"

#define RECORD_VERSION 1
#define DAY            86400.0

/* ---- the kept form -------------------------------------------------------------------------- */
int analytics_recorded_from(const struct analytics_capacity *c, int column,
                            struct analytics_recorded *r)
{
	memset(r, 0, sizeof(*r));
	if (!c->ok || !c->nfc || column < 0 || column >= ANALYTICS_NCOLS)
		return -EINVAL;
	r->made_at = c->now;
	r->column = column;
	r->value_at = c->used_now;
	r->limit = c->capacity > 0 ? c->capacity : 0;
	r->model = c->model;
	r->nfc = c->nfc < ANALYTICS_GRADE_MAX_HORIZONS ? c->nfc : ANALYTICS_GRADE_MAX_HORIZONS;
	memcpy(r->fc, c->fc, r->nfc * sizeof(r->fc[0]));
	r->full_days = c->full_within_year ? c->full_days : -1;
	r->full_lo95 = c->full_days_lo95;
	r->full_hi95 = c->full_days_hi95;
	return 0;
}

void analytics_recorded_pack(const struct analytics_recorded *r, double *v)
{
	size_t k = 0;

	v[k++] = RECORD_VERSION;
	v[k++] = r->column;
	v[k++] = r->value_at;
	v[k++] = r->limit;
	v[k++] = r->model;
	v[k++] = (double)r->nfc;
	for (size_t i = 0; i < ANALYTICS_GRADE_MAX_HORIZONS; i++) {
		const struct analytics_forecast_point *f = &r->fc[i];
		bool set = i < r->nfc;
		v[k++] = set ? f->horizon_days : 0;
		v[k++] = set ? f->used : 0;
		v[k++] = set ? f->lo80 : 0;
		v[k++] = set ? f->hi80 : 0;
		v[k++] = set ? f->lo95 : 0;
		v[k++] = set ? f->hi95 : 0;
	}
	v[k++] = r->full_days;
	v[k++] = r->full_lo95;
	v[k++] = r->full_hi95;
}

static bool whole_in(double v, double lo, double hi)
{
	return isfinite(v) && v == floor(v) && v >= lo && v <= hi;
}

int analytics_recorded_unpack(int64_t made_at, const double *v, uint32_t n,
                              struct analytics_recorded *r)
{
	size_t k = 6;

	memset(r, 0, sizeof(*r));
	if (n < ANALYTICS_RECORDED_VALUES || v[0] != RECORD_VERSION ||
	    !whole_in(v[1], 0, ANALYTICS_NCOLS - 1) || !isfinite(v[2]) || !(v[3] >= 0) ||
	    !isfinite(v[3]) || !whole_in(v[4], 0, ANALYTICS_NMODELS - 1) ||
	    !whole_in(v[5], 1, ANALYTICS_GRADE_MAX_HORIZONS))
		return -EINVAL;
	r->made_at = made_at;
	r->column = (int)v[1];
	r->value_at = v[2];
	r->limit = v[3];
	r->model = (enum analytics_model)v[4];
	r->nfc = (size_t)v[5];
	for (size_t i = 0; i < r->nfc; i++, k += 6) {
		struct analytics_forecast_point *f = &r->fc[i];
		*f = (struct analytics_forecast_point){v[k],     v[k + 1], v[k + 2],
		                                       v[k + 3], v[k + 4], v[k + 5]};
		/* Horizons ascending; the bands nested around the point. */
		if (!(f->horizon_days > 0 && f->horizon_days <= 3650) ||
		    (i && !(f->horizon_days > r->fc[i - 1].horizon_days)) ||
		    !(f->lo95 <= f->lo80 && f->lo80 <= f->used && f->used <= f->hi80 &&
		      f->hi80 <= f->hi95) ||
		    !isfinite(f->lo95) || !isfinite(f->hi95))
			return -EINVAL;
	}
	k = 6 + 6 * ANALYTICS_GRADE_MAX_HORIZONS;
	r->full_days = v[k];
	r->full_lo95 = v[k + 1];
	r->full_hi95 = v[k + 2];
	for (int i = 0; i < 3; i++)
		if (!(v[k + i] >= -1 && v[k + i] <= 366))
			return -EINVAL;
	return 0;
}

/* ---- the history around a time ------------------------------------------------------------ */
/* The samples with a value at or before AT (*PREV) and at or after it (*NEXT). -ERANGE when AT
 * is outside them, -ENOENT when none has a value. T is increasing: a binary search, then a walk
 * past empty values (a report scores hundreds of forecasts against long histories). */
static int bracket(const int64_t *t, const double *y, size_t n, int64_t at, size_t *prev,
                   size_t *next)
{
	size_t lo = 0, hi = n, p, q;
	bool have_p = false;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t[mid] < at)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* LO is the first sample at or after AT; only it can be at AT (times increase). */
	for (q = lo; q < n && isnan(y[q]); q++)
		;
	if (q < n && t[q] == at) {
		p = q;
		have_p = true;
	} else {
		for (p = lo; p > 0 && !have_p;)
			have_p = !isnan(y[--p]);
	}
	if (!have_p && q >= n)
		return -ENOENT; /* no value before LO nor from it on */
	if (!have_p || q >= n)
		return -ERANGE;
	*prev = p;
	*next = q;
	return 0;
}

int analytics_value_at(const int64_t *t, const double *y, size_t n, int64_t at, double *out)
{
	size_t p, q;
	int rc = bracket(t, y, n, at, &p, &q);

	if (rc)
		return rc;
	if (p == q)
		*out = y[p];
	else
		*out = y[p] + (y[q] - y[p]) * (double)(at - t[p]) / (double)(t[q] - t[p]);
	return 0;
}

bool analytics_recorded_matches(const struct analytics_recorded *r, const int64_t *t,
                                const double *y, size_t n)
{
	size_t p, q;

	if (bracket(t, y, n, r->made_at, &p, &q))
		return false;
	double lo = fmin(y[p], y[q]), hi = fmax(y[p], y[q]);
	double slack = 1e-9 * fmax(1, fmax(fabs(lo), fabs(hi)));
	/* On a sample: that value. Between two (the history was downsampled since and the sample
	 * the forecast saw is gone): somewhere between them. */
	return r->value_at >= lo - slack && r->value_at <= hi + slack;
}

/* ---- scoring ----------------------------------------------------------------------------- */
/* Days after R->made_at when the history first reaches R->limit (0 when it had already). */
static bool reached_after(const struct analytics_recorded *r, const int64_t *t, const double *y,
                          size_t n, double *days)
{
	double yp;
	int64_t tp = r->made_at;

	if (analytics_value_at(t, y, n, r->made_at, &yp))
		return false;
	if (yp >= r->limit) {
		*days = 0;
		return true;
	}
	for (size_t i = 0; i < n; i++) {
		if (isnan(y[i]) || t[i] <= r->made_at)
			continue;
		if (y[i] >= r->limit) {
			double tc =
			    (double)tp + (r->limit - yp) / (y[i] - yp) * (double)(t[i] - tp);
			*days = (tc - (double)r->made_at) / DAY;
			return true;
		}
		tp = t[i];
		yp = y[i];
	}
	return false;
}

int analytics_grade_one(const struct analytics_recorded *r, const int64_t *t, const double *y,
                        size_t n, struct analytics_score *out)
{
	int64_t now = INT64_MIN;

	memset(out, 0, sizeof(*out));
	out->nh = r->nfc;
	for (size_t i = 0; i < n; i++)
		if (!isnan(y[i]))
			now = t[i];
	if (now == INT64_MIN)
		return 0;
	for (size_t i = 0; i < r->nfc; i++) {
		const struct analytics_forecast_point *f = &r->fc[i];
		int64_t at = r->made_at + (int64_t)llround(f->horizon_days * DAY);
		size_t p, q;
		double a;
		/* Inside a gap of the history (the box was off, or an imported history ends long
		 * before the box's own rows begin) the truth is unknown: not scored. */
		if (at > now || bracket(t, y, n, at, &p, &q) ||
		    t[q] - t[p] > ANALYTICS_GRADE_MAX_GAP)
			continue;
		a = p == q ? y[p]
		           : y[p] + (y[q] - y[p]) * (double)(at - t[p]) / (double)(t[q] - t[p]);
		out->h[i].scored = true;
		out->h[i].actual = a;
		out->h[i].error = a - f->used;
		out->h[i].abs_error = fabs(a - f->used);
		out->h[i].rel_error = a != 0 ? fabs(a - f->used) / fabs(a) : NAN;
		out->h[i].in80 = a >= f->lo80 && a <= f->hi80;
		out->h[i].in95 = a >= f->lo95 && a <= f->hi95;
	}
	if (!(r->limit > 0) || now < r->made_at)
		return 0;
	/* The date, to the day: the forecast walks whole days, so a bound of day D means the
	 * band reached the limit in (D - 1, D]. The 95% interval is (L, U]: L the day before the
	 * upper band reaches the limit (past a year when it does not), U the day the lower one
	 * does (no bound when it does not within a year). */
	double lo = r->full_lo95 >= 0 ? r->full_lo95 - 1 : 365;
	double hi = r->full_hi95 >= 0 ? r->full_hi95 : INFINITY;
	double elapsed = (double)(now - r->made_at) / DAY, a;
	if (reached_after(r, t, y, n, &a)) {
		out->reached = true;
		out->reached_days = a;
		out->date_decided = true;
		out->date_held95 = a > lo && a <= hi;
		if (r->full_days >= 0) {
			out->point_decided = true;
			out->point_error_days = r->full_days - a;
		}
	} else if (elapsed > hi) {
		out->date_decided = true; /* the latest day passed without it */
	} else if (isinf(hi) && elapsed > lo) {
		out->date_decided = true; /* not before the earliest: any day after it holds */
		out->date_held95 = true;
	}
	return 0;
}

/* The index of horizon H in OUT, added in ascending order; -1 when the table is full. */
static int horizon_slot(struct analytics_grade *out, double h)
{
	size_t i = 0;

	while (i < out->nh && out->h[i].horizon_days < h)
		i++;
	if (i < out->nh && out->h[i].horizon_days == h)
		return (int)i;
	if (out->nh == ANALYTICS_MAX_HORIZONS)
		return -1;
	memmove(&out->h[i + 1], &out->h[i], (out->nh - i) * sizeof(out->h[0]));
	memset(&out->h[i], 0, sizeof(out->h[0]));
	out->h[i].horizon_days = h;
	out->nh++;
	return (int)i;
}

int analytics_grade(const struct analytics_recorded *r, size_t nr, const int64_t *t,
                    const double *y, size_t n, struct analytics_grade *out)
{
	struct analytics_score *sc = NULL;
	double *abs = NULL, *rel = NULL, *dates = NULL;
	size_t ndates = 0;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	out->recorded = (unsigned)nr;
	out->date_abs_error_p50_days = NAN;
	sc = calloc(nr ? nr : 1, sizeof(*sc));
	abs = calloc(nr ? nr : 1, sizeof(*abs));
	rel = calloc(nr ? nr : 1, sizeof(*rel));
	dates = calloc(nr ? nr : 1, sizeof(*dates));
	if (!sc || !abs || !rel || !dates) {
		rc = -ENOMEM;
		goto out_free;
	}
	for (size_t k = 0; k < nr; k++) {
		analytics_grade_one(&r[k], t, y, n, &sc[k]);
		bool any = false;
		for (size_t i = 0; i < r[k].nfc; i++) {
			horizon_slot(out, r[k].fc[i].horizon_days);
			any |= sc[k].h[i].scored;
		}
		out->scored += any;
		out->dates_decided += sc[k].date_decided;
		out->dates_held95 += sc[k].date_decided && sc[k].date_held95;
		out->dates_reached += sc[k].reached;
		if (sc[k].point_decided)
			dates[ndates++] = fabs(sc[k].point_error_days);
	}
	for (size_t g = 0; g < out->nh; g++) {
		struct analytics_grade_horizon *gh = &out->h[g];
		size_t m = 0, mr = 0;
		double sum = 0;
		for (size_t k = 0; k < nr; k++)
			for (size_t i = 0; i < r[k].nfc; i++) {
				if (r[k].fc[i].horizon_days != gh->horizon_days ||
				    !sc[k].h[i].scored)
					continue;
				abs[m++] = sc[k].h[i].abs_error;
				if (!isnan(sc[k].h[i].rel_error))
					rel[mr++] = sc[k].h[i].rel_error;
				sum += sc[k].h[i].error;
				gh->in80 += sc[k].h[i].in80;
				gh->in95 += sc[k].h[i].in95;
			}
		gh->scored = (unsigned)m;
		gh->abs_p50 = m ? analytics_quantile(abs, m, 0.5) : NAN;
		gh->abs_p90 = m ? analytics_quantile(abs, m, 0.9) : NAN;
		gh->rel_p50 = mr ? analytics_quantile(rel, mr, 0.5) : NAN;
		gh->rel_p90 = mr ? analytics_quantile(rel, mr, 0.9) : NAN;
		gh->mean_error = m ? sum / (double)m : NAN;
		gh->coverage80 = m ? (double)gh->in80 / (double)m : NAN;
		gh->coverage95 = m ? (double)gh->in95 / (double)m : NAN;
	}
	if (ndates)
		out->date_abs_error_p50_days = analytics_quantile(dates, ndates, 0.5);
out_free:
	free(sc);
	free(abs);
	free(rel);
	free(dates);
	return rc;
}
