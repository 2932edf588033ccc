/* analytics/analytics_forecast.c - capacity forecasts: five models (least squares line, Holt's
 * damped trend, the line after the last change point, the line of log y, the drift method), chosen
 * per series by a rolling-origin backtest, with prediction intervals widened by what that backtest
 * saw so they stay honest. Pure computation on the arrays it is given.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analytics.h"

const char *const analytics_model_names[ANALYTICS_NMODELS] = {
#define ANALYTICS_MODEL_NAME(n, s) s,
    ANALYTICS_MODELS(ANALYTICS_MODEL_NAME)
#undef ANALYTICS_MODEL_NAME
};

/* ---- least squares ------------------------------------------------------------------------- */
int analytics_linear_fit(const double *x, const double *y, size_t n, struct analytics_linear *m)
{
	double sx = 0, sy = 0, sxx = 0, sxy = 0, sse = 0;

	if (n < 3)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		sx += x[i];
		sy += y[i];
	}
	double xbar = sx / (double)n, ybar = sy / (double)n;
	/* Centred sums: byte counts near 10^12 squared would lose every digit otherwise. */
	for (size_t i = 0; i < n; i++) {
		sxx += (x[i] - xbar) * (x[i] - xbar);
		sxy += (x[i] - xbar) * (y[i] - ybar);
	}
	if (sxx <= 0)
		return -EINVAL;
	m->b = sxy / sxx;
	m->a = ybar - m->b * xbar;
	for (size_t i = 0; i < n; i++) {
		double r = y[i] - (m->a + m->b * x[i]);
		sse += r * r;
	}
	m->s = sqrt(sse / (double)(n - 2));
	m->xbar = xbar;
	m->sxx = sxx;
	m->n = n;
	return 0;
}

void analytics_linear_predict(const struct analytics_linear *m, double x0, double *point,
                              double *sd)
{
	double dx = x0 - m->xbar;

	*point = m->a + m->b * x0;
	*sd = m->s * sqrt(1 + 1 / (double)m->n + dx * dx / m->sxx);
}

/* ---- Holt's damped trend ------------------------------------------------------------------- */
#define HOLT_INIT_STEPS 5

double analytics_holt_run(const double *y, size_t n, double alpha, double beta, double phi,
                          double *level, double *trend)
{
	/* The start: the level at y[k], the trend the mean step over the first k; one
	 * difference (k = 1) would hand the whole fit a noisy slope. Errors start at y[k + 1],
	 * the first value the initial state did not see. */
	size_t k = n > 2 ? (n - 2 < HOLT_INIT_STEPS ? n - 2 : HOLT_INIT_STEPS) : 1;
	double l = n > k ? y[k] : y[0], b = n > k ? (y[k] - y[0]) / (double)k : 0, sse = 0;

	for (size_t t = k + 1; t < n; t++) {
		double e = y[t] - (l + phi * b);
		sse += e * e;
		l = l + phi * b + alpha * e;
		b = phi * b + beta * e;
	}
	*level = l;
	*trend = b;
	return sse;
}

/* The grid: alpha 0.05..0.95, beta = alpha beta*, phi 0.8..0.98. */
#define HOLT_NA 19
#define HOLT_NB 7
#define HOLT_NP 5
#define HOLT_NC (HOLT_NA * HOLT_NB * HOLT_NP)

int analytics_holt_fit(const double *y, size_t n, struct analytics_holt *m)
{
	static const double bstar[HOLT_NB] = {0, 0.05, 0.1, 0.2, 0.4, 0.7, 1.0};
	static const double phis[HOLT_NP] = {0.8, 0.85, 0.9, 0.95, 0.98};
	double A[HOLT_NC], B[HOLT_NC], P[HOLT_NC], L[HOLT_NC], T[HOLT_NC], S[HOLT_NC];
	double best = INFINITY;
	size_t c = 0, bi = 0;

	if (n < 4)
		return -EINVAL;
	for (int ia = 1; ia <= HOLT_NA; ia++)
		for (size_t ib = 0; ib < HOLT_NB; ib++)
			for (size_t ip = 0; ip < HOLT_NP; ip++, c++) {
				A[c] = ia * 0.05;
				B[c] = A[c] * bstar[ib];
				P[c] = phis[ip];
			}
	/* Every grid point's recursion in lockstep, one time step at a time: the same
	 * operations in the same order as analytics_holt_run (so the same sums to the bit),
	 * but independent chains the CPU overlaps, where one chain at a time waits on each
	 * step's result (the fit was nearly all of a forecast's cost). */
	size_t k = n - 2 < HOLT_INIT_STEPS ? n - 2 : HOLT_INIT_STEPS;
	double l0 = y[k], b0 = (y[k] - y[0]) / (double)k;
	for (c = 0; c < HOLT_NC; c++) {
		L[c] = l0;
		T[c] = b0;
		S[c] = 0;
	}
	for (size_t t = k + 1; t < n; t++) {
		double yt = y[t];
		for (c = 0; c < HOLT_NC; c++) {
			double f = L[c] + P[c] * T[c], e = yt - f;
			S[c] += e * e;
			L[c] = f + A[c] * e;
			T[c] = P[c] * T[c] + B[c] * e;
		}
	}
	/* The first smallest in grid order, as a scan would find it. */
	for (c = 0; c < HOLT_NC; c++)
		if (S[c] < best) {
			best = S[c];
			bi = c;
		}
	*m = (struct analytics_holt){A[bi], B[bi], P[bi], L[bi], T[bi], 0, n};
	/* n - 1 - k one-step errors, three parameters fitted on them. */
	double dof = (double)(n - 1 - k) - 3;
	m->sigma = sqrt(best / (dof < 1 ? 1 : dof));
	return 0;
}

void analytics_holt_predict(const struct analytics_holt *m, int h, double *point, double *sd)
{
	double damp = 0, pj = 1, var = 1;

	for (int j = 1; j <= h; j++) {
		/* c_j: how much of the error j steps before the target is still in it. */
		if (j < h) {
			double geo = fabs(1 - m->phi) < 1e-12 ? (double)j
			                                      : (1 - pow(m->phi, j)) / (1 - m->phi);
			double c = m->alpha + m->beta * m->phi * geo;
			var += c * c;
		}
		pj *= m->phi;
		damp += pj;
	}
	*point = m->level + damp * m->trend;
	*sd = m->sigma * sqrt(var);
}

/* ---- the drift method ----------------------------------------------------------------------- */
int analytics_drift_fit(const double *y, size_t n, struct analytics_drift *m)
{
	double ss = 0, c1 = 0, prev = 0;

	if (n < 3)
		return -EINVAL;
	/* The mean step is the end points' difference over the steps between them; each step's
	 * departure from it is the walk's own noise. */
	double slope = (y[n - 1] - y[0]) / (double)(n - 1);
	for (size_t i = 1; i < n; i++) {
		double d = y[i] - y[i - 1] - slope;
		ss += d * d;
		if (i > 1)
			c1 += d * prev;
		prev = d;
	}
	/* Steps that move together (a business cycle's run of fast quarters) add up to more than
	 * independent ones: their lag-1 autocorrelation, clipped to 0..0.9 as the calibration's
	 * is, makes the sum of h of them AR(1)'s. */
	double rho = ss > 0 && isfinite(ss) ? c1 / ss : 0;
	if (rho < 0)
		rho = 0;
	if (rho > 0.9)
		rho = 0.9;
	*m = (struct analytics_drift){y[n - 1], slope, sqrt(ss / (double)(n - 2)), n, rho};
	return 0;
}

void analytics_drift_predict(const struct analytics_drift *m, int h, double *point, double *sd)
{
	double dh = (double)h, r = m->rho, lr = (1 + r) / (1 - r);
	/* The sum of h AR(1) steps: h (1 + r) / (1 - r) - 2 r (1 - r^h) / (1 - r)^2 (h at r = 0);
	 * the mean step's error, carried h steps, has the long-run variance over n - 1 steps. */
	double steps = dh * lr - 2 * r * (1 - pow(r, dh)) / ((1 - r) * (1 - r));

	*point = m->last + dh * m->slope;
	*sd = m->sigma * sqrt(steps + dh * dh * lr / (double)(m->n - 1));
}

int analytics_drift_scale(const double *y, size_t n, bool *log_scale, double *t)
{
	bool positive = true;

	*log_scale = false;
	*t = 0;
	if (n < 3)
		return -EINVAL;
	double *d = malloc((n - 1) * sizeof(*d));
	if (!d)
		return -ENOMEM;
	for (size_t i = 1; i < n; i++)
		d[i - 1] = y[i] - y[i - 1];
	*t = analytics_step_trend_t(d, n - 1);
	for (size_t i = 0; i < n && positive; i++)
		positive = y[i] > 0;
	if (positive) {
		for (size_t i = 1; i < n; i++)
			d[i - 1] = log(y[i]) - log(y[i - 1]);
		double tl = analytics_step_trend_t(d, n - 1);
		if (fabs(tl) < fabs(*t)) {
			*log_scale = true;
			*t = tl;
		}
	}
	free(d);
	return 0;
}

/* ---- change point -------------------------------------------------------------------------- */
/* Squared error of the least squares line over [i, j) from prefix sums (x = index). */
struct prefix {
	double *y, *xy, *yy;
};

static double seg_sse(const struct prefix *p, size_t i, size_t j)
{
	double n = (double)(j - i), di = (double)i, dj = (double)j;
	double sy = p->y[j] - p->y[i], syy = p->yy[j] - p->yy[i], sxy = p->xy[j] - p->xy[i];
	/* Sums of k and k^2 over [i, j) in closed form. */
	double sx = (dj * (dj - 1) - di * (di - 1)) / 2;
	double sxx = ((dj - 1) * dj * (2 * dj - 1) - (di - 1) * di * (2 * di - 1)) / 6;
	double mx = sx / n, my = sy / n;
	double cxx = sxx - n * mx * mx, cxy = sxy - n * mx * my, cyy = syy - n * my * my;
	double r = cyy - (cxx > 0 ? cxy * cxy / cxx : 0);
	return r > 0 ? r : 0;
}

size_t analytics_changepoint(const double *y, size_t n, size_t min_seg, size_t min_last)
{
	struct prefix p = {0};
	size_t best_k = 0;
	double best = INFINITY;

	if (min_seg < 3)
		min_seg = 3;
	if (min_last < 3)
		min_last = 3;
	if (n < min_seg + min_last)
		return 0;
	p.y = calloc(n + 1, sizeof(double));
	p.xy = calloc(n + 1, sizeof(double));
	p.yy = calloc(n + 1, sizeof(double));
	if (!p.y || !p.xy || !p.yy)
		goto out_free;
	/* Values relative to the first one: the sums of squares stay within a double's digits
	 * for byte counts (a line's residuals do not depend on the offset). */
	for (size_t i = 0; i < n; i++) {
		double v = y[i] - y[0];
		p.y[i + 1] = p.y[i] + v;
		p.xy[i + 1] = p.xy[i] + (double)i * v;
		p.yy[i + 1] = p.yy[i] + v * v;
	}
	for (size_t k = min_seg; k + min_last <= n; k++) {
		double sse = seg_sse(&p, 0, k) + seg_sse(&p, k, n);
		if (sse < best) {
			best = sse;
			best_k = k;
		}
	}
	double one = seg_sse(&p, 0, n), dn = (double)n;
	/* A floor under the errors (the prefix sums round at about 1e-16 of the sum of squares):
	 * a straight series must not "change" because one fit's rounding is below the other's. */
	double floor_sse = 1e-10 * (p.yy[n] + 1);
	double bic_one = dn * log((one + floor_sse) / dn) + 2 * log(dn);
	double bic_two = dn * log((best + floor_sse) / dn) + 5 * log(dn);
	if (!(bic_two < bic_one))
		best_k = 0;
out_free:
	free(p.y);
	free(p.xy);
	free(p.yy);
	return best_k;
}

/* ---- one interface for the models ------------------------------------------------------------ */
struct fit {
	enum analytics_model model;
	struct analytics_linear lin;
	struct analytics_holt holt;
	struct analytics_drift drift;
	bool drift_log; /* drift fitted on log(y) */
	size_t n;
	double dof;
};

static int fit_line(const double *y, size_t from, size_t n, struct analytics_linear *m)
{
	double *x = malloc((n - from) * sizeof(*x));
	int rc;

	if (!x)
		return -ENOMEM;
	for (size_t i = from; i < n; i++)
		x[i - from] = (double)i;
	rc = analytics_linear_fit(x, y + from, n - from, m);
	free(x);
	return rc;
}

/* Points after a change point needed to fit a slope of their own. */
#define CP_MIN_SLOPE_POINTS 8

static int model_fit(enum analytics_model model, const double *y, size_t n, struct fit *f)
{
	int rc;

	f->model = model;
	f->n = n;
	switch (model) {
	case ANALYTICS_MODEL_LINEAR:
		rc = fit_line(y, 0, n, &f->lin);
		f->dof = (double)n - 2;
		return rc;
	case ANALYTICS_MODEL_HOLT_DAMPED:
		rc = analytics_holt_fit(y, n, &f->holt);
		f->dof = (double)n - 5 < 1 ? 1 : (double)n - 5;
		return rc;
	case ANALYTICS_MODEL_CHANGEPOINT: {
		/* The history before the break must be long enough to call it a trend. A break
		 * among the last few points (a volume deleted yesterday) leaves too little for a
		 * slope of its own: the level moves to the new points, the slope stays the old
		 * one's. */
		size_t min_seg = n / 8 > 6 ? n / 8 : 6;
		size_t k = analytics_changepoint(y, n, min_seg, 3);
		if (!k || n - k >= CP_MIN_SLOPE_POINTS) {
			rc = fit_line(y, k, n, &f->lin);
			f->dof = (double)(n - k) - 2;
			return rc;
		}
		rc = fit_line(y, 0, k, &f->lin);
		if (rc)
			return rc;
		double my = 0, mx = 0;
		for (size_t i = k; i < n; i++) {
			my += y[i];
			mx += (double)i;
		}
		my /= (double)(n - k);
		mx /= (double)(n - k);
		f->lin.a = my - f->lin.b * mx;
		f->dof = (double)k - 2;
		return 0;
	}
	case ANALYTICS_MODEL_EXPONENTIAL: {
		/* Growth by a share of what is there (data that grows x% a year): a line through
		 * log(y). Only for a series that stays positive. */
		double *ly = malloc(n * sizeof(*ly));
		if (!ly)
			return -ENOMEM;
		rc = 0;
		for (size_t i = 0; i < n && !rc; i++)
			if (!(y[i] > 0))
				rc = -EINVAL;
			else
				ly[i] = log(y[i]);
		if (!rc)
			rc = fit_line(ly, 0, n, &f->lin);
		free(ly);
		f->dof = (double)n - 2;
		return rc;
	}
	case ANALYTICS_MODEL_DRIFT: {
		/* On the scale where its steps' mean is steadier (analytics_drift_scale): log(y)
		 * for a random walk whose steps are a share of what is there, where the whole
		 * history's mean step on y is too low for the present, a bias growing as h (GDP:
		 * its forecasts 30 quarters ahead covered 0.25..0.30). */
		double t;
		rc = analytics_drift_scale(y, n, &f->drift_log, &t);
		if (rc)
			return rc;
		double *ly = f->drift_log ? malloc(n * sizeof(*ly)) : NULL;
		if (f->drift_log && !ly)
			return -ENOMEM;
		for (size_t i = 0; ly && i < n; i++)
			ly[i] = log(y[i]);
		rc = analytics_drift_fit(ly ? ly : y, n, &f->drift);
		free(ly);
		f->dof = (double)n - 2;
		return rc;
	}
	default:
		return -EINVAL;
	}
}

static void model_predict(const struct fit *f, int h, double *point, double *sd)
{
	if (f->model == ANALYTICS_MODEL_HOLT_DAMPED) {
		analytics_holt_predict(&f->holt, h, point, sd);
	} else if (f->model == ANALYTICS_MODEL_DRIFT) {
		analytics_drift_predict(&f->drift, h, point, sd);
		if (f->drift_log) {
			/* As the exponential model's: the median, its sd to first order. */
			*point = exp(*point);
			*sd *= *point;
		}
	} else if (f->model == ANALYTICS_MODEL_EXPONENTIAL) {
		/* The median exp(log point); its sd to first order (the delta method): the
		 * intervals stay symmetric, as the other models' are. */
		double lp, lsd;
		analytics_linear_predict(&f->lin, (double)(f->n - 1) + h, &lp, &lsd);
		*point = exp(lp);
		*sd = *point * lsd;
	} else {
		analytics_linear_predict(&f->lin, (double)(f->n - 1) + h, point, sd);
	}
}

int analytics_model_forecast(enum analytics_model model, const double *y, size_t n, int h,
                             double *point, double *sd, double *dof)
{
	struct fit f;
	int rc = model_fit(model, y, n, &f);

	if (rc)
		return rc;
	model_predict(&f, h, point, sd);
	*dof = f.dof;
	return 0;
}

/* ---- the capacity forecast ------------------------------------------------------------------ */
#define MAX_ORIGINS 24
/* A model other than the line must beat it by this much in the backtest: a noisy backtest
 * (a random walk) otherwise switches models on chance and forecasts worse than the line. */
#define SWITCH_MARGIN 0.8
/* Independent backtest errors needed before intervals may be narrower than the model's. */
#define CALIB_NARROW_NEFF 8
#define MAX_GRID          4000 /* the newest points only, beyond: years of daily samples */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

double analytics_quantile(double *v, size_t n, double q)
{
	qsort(v, n, sizeof(*v), cmp_double);
	double pos = q * (double)(n - 1);
	size_t i = (size_t)pos;
	if (i + 1 >= n)
		return v[n - 1];
	return v[i] + (pos - (double)i) * (v[i + 1] - v[i]);
}

/* Resamples the (T, Y) points with a value onto a grid of STEP ending at the newest one,
 * interpolating linearly between the samples around each grid point (the history's tiers and
 * any gaps make the samples irregular; the models want a regular series). */
static size_t resample(const int64_t *t, const double *y, size_t n, int64_t step, double **out)
{
	int64_t first = INT64_MIN, last = INT64_MIN;
	size_t m, k = 0, prev = SIZE_MAX;

	for (size_t i = 0; i < n; i++)
		if (!isnan(y[i])) {
			if (first == INT64_MIN)
				first = t[i];
			last = t[i];
		}
	m = (size_t)((last - first) / step) + 1;
	if (m > MAX_GRID)
		m = MAX_GRID;
	*out = calloc(m, sizeof(double));
	if (!*out)
		return 0;
	/* The grid ends at the newest sample and starts at or after the first, so every point
	 * lies between two samples with values (or on one). */
	for (size_t j = 0; j < m; j++) {
		int64_t g = last - (int64_t)(m - 1 - j) * step;
		while (k < n && t[k] <= g) {
			if (!isnan(y[k]))
				prev = k;
			k++;
		}
		size_t next = k;
		while (next < n && isnan(y[next]))
			next++;
		if (t[prev] == g || next >= n)
			(*out)[j] = y[prev];
		else
			(*out)[j] = y[prev] + (y[next] - y[prev]) * (double)(g - t[prev]) /
			                          (double)(t[next] - t[prev]);
	}
	return m;
}

struct backtest {
	double mae[ANALYTICS_NMODELS];
	double err[ANALYTICS_NMODELS][MAX_ORIGINS]; /* |error|, per origin */
	double z[ANALYTICS_NMODELS][MAX_ORIGINS];   /* |error| / the model's sd, per origin */
	/* The same with its sign (NAN: no forecast): neighbours' dependence shows in it. */
	double zsigned[ANALYTICS_NMODELS][MAX_ORIGINS];
	size_t origin[MAX_ORIGINS];
	unsigned origins;
	int h;
};

static int run_backtest(const double *y, size_t n, int h, struct backtest *bt)
{
	size_t omin = n / 3 > 8 ? n / 3 : 8;
	memset(bt, 0, sizeof(*bt));
	bt->h = h;
	if (n < (size_t)h + omin)
		return 0;
	size_t omax = n - (size_t)h, span = omax - omin;
	unsigned count = span + 1 < MAX_ORIGINS ? (unsigned)(span + 1) : MAX_ORIGINS;
	for (unsigned i = 0; i < count; i++) {
		size_t o = omin + (count > 1 ? span * i / (count - 1) : 0);
		double actual = y[o - 1 + (size_t)h];
		bt->origin[i] = o;
		for (int m = 0; m < ANALYTICS_NMODELS; m++) {
			double pt = 0, sd = 0, dof = 0;
			int rc = analytics_model_forecast((enum analytics_model)m, y, o, h, &pt,
			                                  &sd, &dof);
			if (rc == -ENOMEM)
				return rc;
			double e = rc ? INFINITY : fabs(actual - pt);
			bt->mae[m] += e;
			bt->err[m][i] = e;
			bt->z[m][i] = sd > 0 ? e / sd : (e > 0 ? INFINITY : 0);
			bt->zsigned[m][i] = rc ? NAN : copysign(bt->z[m][i], actual - pt);
		}
	}
	for (int m = 0; m < ANALYTICS_NMODELS; m++)
		bt->mae[m] /= count;
	bt->origins = count;
	return 0;
}

double analytics_conformal_quantile(double *z, size_t n, double neff, double l)
{
	double lev = ceil((neff + 1) * l) / neff;

	if (lev <= 1)
		return analytics_quantile(z, n, lev);
	/* Past the largest error: a tail of Student's t with NEFF degrees of freedom, not the
	 * normal. The errors' scale is itself estimated from those NEFF (standardized errors
	 * centre on 0, so none is spent on a mean); with few of them (an integrated series'
	 * errors, which neighbouring origins share) the normal tail took that estimate as
	 * exact. */
	double dof = neff < 1 ? 1 : neff;
	double top = analytics_quantile(z, n, 1);
	return top * analytics_t_quantile(0.5 + l / 2, dof) /
	       analytics_t_quantile(0.5 + 0.5 * neff / (neff + 1), dof);
}

double analytics_effective_count(const double *e, size_t n)
{
	double mean = 0, c0 = 0, c1 = 0;

	for (size_t i = 0; i < n; i++)
		mean += e[i];
	mean /= (double)n;
	for (size_t i = 0; i < n; i++) {
		c0 += (e[i] - mean) * (e[i] - mean);
		if (i)
			c1 += (e[i] - mean) * (e[i - 1] - mean);
	}
	double rho = c0 > 0 && isfinite(c0) ? c1 / c0 : 0;
	if (rho < 0)
		rho = 0;
	if (rho > 0.9)
		rho = 0.9;
	return (double)n * (1 - rho) / (1 + rho);
}

double analytics_horizon_exponent(double scale, double h_far, double h_near)
{
	if (!(h_far > h_near && h_near > 0 && scale > 1))
		return 0;
	double g = log(scale) / log(h_far / h_near);
	return g < 1 ? g : 1;
}

double analytics_horizon_scale(const double *z_far, size_t n_far, const double *z_near,
                               size_t n_near)
{
	double a = 0, b = 0;
	size_t na = 0, nb = 0;

	for (size_t i = 0; i < n_far; i++)
		if (isfinite(z_far[i])) {
			a += z_far[i];
			na++;
		}
	for (size_t i = 0; i < n_near; i++)
		if (isfinite(z_near[i])) {
			b += z_near[i];
			nb++;
		}
	return na && nb && b > 0 && a > 0 ? (a / (double)na) / (b / (double)nb) : 1;
}

double analytics_diff_autocorr(const double *y, size_t n, size_t lag)
{
	double mean = 0, c0 = 0, cl = 0;

	if (lag < 1 || n < lag + 4)
		return 0;
	size_t nd = n - 1;
	for (size_t i = 1; i < n; i++)
		mean += y[i] - y[i - 1];
	mean /= (double)nd;
	for (size_t i = 1; i < n; i++) {
		double d = y[i] - y[i - 1] - mean;
		c0 += d * d;
		if (i > lag)
			cl += d * (y[i - lag] - y[i - lag - 1] - mean);
	}
	return c0 > 0 && isfinite(c0) ? cl / c0 : 0;
}

/* Two standard errors: a trend the backtest's errors show by chance (about 1 in 40 when there is
 * none) moves an interval rarely; one they show clearly always does. */
#define TREND_T 2.0
/* The same two standard errors for a trend in the steps' mean (analytics_step_trend_t). */
#define STEP_TREND_T 2.0

int analytics_trend_shift(double *z, const double *o, size_t n, double now, double tcrit)
{
	struct analytics_linear l;
	double c0 = 0, c1 = 0, prev = 0;

	if (n < 5 || analytics_linear_fit(o, z, n, &l) || !(l.b > 0))
		return 0;
	for (size_t i = 0; i < n; i++) {
		double r = z[i] - (l.a + l.b * o[i]);
		c0 += r * r;
		if (i)
			c1 += r * prev;
		prev = r;
	}
	/* Neighbouring origins' errors move together: the slope's standard error grows as
	 * sqrt((1 + rho) / (1 - rho)) with the residuals' lag-1 autocorrelation (capped at 0.9,
	 * as the calibration's effective count is). */
	double rho = c0 > 0 ? c1 / c0 : 0;
	if (rho < 0)
		rho = 0;
	if (rho > 0.9)
		rho = 0.9;
	double se = l.s / sqrt(l.sxx) * sqrt((1 + rho) / (1 - rho));
	if (!(l.b > tcrit * se))
		return 0;
	for (size_t i = 0; i < n; i++)
		z[i] += l.b * (now - o[i]);
	return 1;
}

double analytics_step_trend_t(const double *d, size_t n)
{
	double xbar = (double)(n - 1) / 2, dbar = 0, sxx = 0, sxd = 0, sse = 0, c1 = 0, prev = 0;

	if (n < 5)
		return 0;
	for (size_t i = 0; i < n; i++)
		dbar += d[i];
	dbar /= (double)n;
	for (size_t i = 0; i < n; i++) {
		sxx += ((double)i - xbar) * ((double)i - xbar);
		sxd += ((double)i - xbar) * (d[i] - dbar);
	}
	double kappa = sxd / sxx;
	for (size_t i = 0; i < n; i++) {
		double r = d[i] - dbar - kappa * ((double)i - xbar);
		sse += r * r;
		if (i)
			c1 += r * prev;
		prev = r;
	}
	if (!isfinite(sse))
		return 0;
	if (!(sse > 0))
		return kappa == 0 ? 0 : copysign(INFINITY, kappa);
	/* Steps that move together (a business cycle's run of fast quarters) make a slope
	 * of their mean look steeper than it is: its standard error grows as sqrt((1 + rho) /
	 * (1 - rho)), rho clipped to 0..0.9 as analytics_trend_shift's. */
	double rho = c1 / sse;
	if (rho < 0)
		rho = 0;
	if (rho > 0.9)
		rho = 0.9;
	double se = sqrt(sse / (double)(n - 2) / sxx) * sqrt((1 + rho) / (1 - rho));
	return kappa / se;
}

/* Interval widening for MODEL from a backtest's standardized errors (|error| / the model's
 * sd): C[0] for 80%, C[1] for 95%, each the factor by which the model's own quantile falls
 * short of the errors' (never below 1). Uses the origins after the change point CP when at
 * least 5 are, all otherwise; no widening with fewer than 3. */
/* Origins that saw enough of the present regime: at least CP_MIN_SLOPE_POINTS after the
 * change point (a forecast made the day after a change could not know it yet). */
static bool origin_after(size_t o, size_t cp)
{
	return o >= cp + CP_MIN_SLOPE_POINTS;
}

/* An origin whose forecast window holds the change point CP it had not seen (its last point
 * before CP, its target at or after it): its error measures the change, which the present's
 * forecast has in its history, not the model. */
static bool origin_straddles(size_t o, int h, size_t cp)
{
	return cp && o <= cp && o - 1 + (size_t)h >= cp;
}

static unsigned origins_after(const struct backtest *bt, size_t cp)
{
	unsigned after = 0;

	for (unsigned i = 0; i < bt->origins; i++)
		after += origin_after(bt->origin[i], cp);
	return after;
}

/* analytics_horizon_scale of MODEL's errors in FAR over NEAR's, leaving out the origins whose
 * target lies past the change point CP they did not see (their error measures the change, not
 * the horizon, and a far backtest's windows straddle a change more often than a near one's:
 * a step down's made the scale several times too large). */
static double horizon_scale_clean(const struct backtest *far, const struct backtest *near_bt,
                                  enum analytics_model model, size_t cp)
{
	double a[MAX_ORIGINS], b[MAX_ORIGINS];
	size_t na = 0, nb = 0;

	for (unsigned i = 0; i < far->origins; i++)
		if (!cp || far->origin[i] - 1 + (size_t)far->h < cp ||
		    origin_after(far->origin[i], cp))
			a[na++] = far->z[model][i];
	for (unsigned i = 0; i < near_bt->origins; i++)
		if (!cp || near_bt->origin[i] - 1 + (size_t)near_bt->h < cp ||
		    origin_after(near_bt->origin[i], cp))
			b[nb++] = near_bt->z[model][i];
	return analytics_horizon_scale(a, na, b, nb);
}

static void calibrate(const struct backtest *bt, const struct backtest *near_bt,
                      enum analytics_model model, size_t cp, size_t now, double q80, double q95,
                      double c[2])
{
	double z[MAX_ORIGINS], zs[MAX_ORIGINS], zsg[MAX_ORIGINS], scale = 1;
	unsigned n = 0;

	c[0] = c[1] = 1;
	/* Too few origins after the change at this horizon (the newest is a horizon old): the
	 * nearer backtest's standardized errors after it describe the present better than all
	 * of this one's, once scaled to this horizon. Unscaled, a line's week-ahead errors on a
	 * curve (GDP) stood for its month-ahead ones, which its bias makes 1.2..2 times larger
	 * in sd units. */
	if (cp && origins_after(bt, cp) < 5 && near_bt && origins_after(near_bt, cp) >= 5) {
		scale = horizon_scale_clean(bt, near_bt, model, cp);
		/* Never below 1, as the horizon exponent is never below 0: a stand-in moved to a
		 * further horizon is not narrowed by extrapolation. A ratio below 1 comes from
		 * origins before the change (GDP's cycles reverting there: 0.19..1.01), not from
		 * the present, whose errors the week's backtest after the change shows; scaled by
		 * it, the line's month-ahead interval was narrower than its week-ahead one and
		 * GDP's 30 quarters covered 0.75 through the stand-in. */
		if (scale < 1)
			scale = 1;
		bt = near_bt;
	}
	bool only_after = cp && origins_after(bt, cp) >= 5;
	/* Too few origins after the change: the rest, but a window that straddles the change
	 * measures how the model meets a change it has not seen. The change point model's
	 * forecast now has seen it (it fits the points after it), so those errors are not its
	 * present's; the others' forecasts still carry the change (the line averages over it and
	 * stays biased, Holt's smoothing takes it in slowly): theirs are. */
	bool drop_straddling = model == ANALYTICS_MODEL_CHANGEPOINT;
	double ox[MAX_ORIGINS]; /* each error's origin: the length of the window it saw */
	for (unsigned i = 0; i < bt->origins; i++)
		if (only_after ? origin_after(bt->origin[i], cp)
		               : !(drop_straddling && origin_straddles(bt->origin[i], bt->h, cp))) {
			ox[n] = (double)bt->origin[i];
			zsg[n] = bt->zsigned[model][i];
			z[n++] = bt->z[model][i] * scale;
		}
	if (n < 3)
		return;
	/* Neighbouring origins share most of their forecast window, so their errors move
	 * together (a random walk's most of all): count them as N_EFF independent ones, from
	 * the lag-1 autocorrelation of the signed errors in origin order. Not of |error|: an
	 * error drifting from -x to +x across origins is one excursion, but its absolute value
	 * makes a V that looks like fresh draws (normal errors correlated 0.9 have absolute values
	 * correlated 0.78: 2.3 times as many "independent" ones). */
	double neff = analytics_effective_count(zsg, n);
	memcpy(zs, z, n * sizeof(*z));
	/* The newest origin is a horizon older than now and its window that much shorter: where
	 * the errors grew with the window (a line's bias on a curve), the present's is larger
	 * than any the backtest saw. The rho and N_EFF above stay those of the errors as seen. */
	analytics_trend_shift(zs, ox, n, (double)now, TREND_T);
	double z80 = analytics_conformal_quantile(zs, n, neff, 0.80),
	       z95 = analytics_conformal_quantile(zs, n, neff, 0.95);
	/* Widen to what the backtest saw; narrow only on enough independent evidence, and
	 * at most by half (a model's sd from few points can be far too cautious). */
	double floor = neff >= CALIB_NARROW_NEFF ? 0.5 : 1;
	if (isfinite(z80))
		c[0] = z80 / q80 > floor ? z80 / q80 : floor;
	if (isfinite(z95))
		c[1] = z95 / q95 > floor ? z95 / q95 : floor;
	if (!isfinite(z80) || !isfinite(z95))
		c[0] = c[1] = 1;
	/* 95% never narrower than 80%. */
	if (q95 * c[1] < q80 * c[0])
		c[1] = c[0] * q80 / q95;
}

/* MODEL's mean absolute error over the origins whose window does not straddle the change
 * point CP (all of them when every one does): a window that holds a change its origin had not
 * seen measures the change, which every model misses alike and the present's forecast has
 * seen, and it drowned the difference the origins after the change show between the models. */
static double clean_mae(const struct backtest *bt, enum analytics_model model, size_t cp)
{
	double sum = 0;
	unsigned k = 0;

	for (unsigned i = 0; i < bt->origins; i++)
		if (!origin_straddles(bt->origin[i], bt->h, cp)) {
			sum += bt->err[model][i];
			k++;
		}
	return k ? sum / k : bt->mae[model];
}

/* A model's backtest error relative to the line's (1 when both are exact). */
static double rel_error(double mae, double mae_linear)
{
	if (mae_linear > 0)
		return mae / mae_linear;
	return mae > 0 ? INFINITY : 1;
}

static void clip(double *v, double cap)
{
	if (*v < 0)
		*v = 0;
	if (cap > 0 && *v > cap)
		*v = cap;
}

int analytics_capacity_forecast(const int64_t *t, const double *y, size_t n, double capacity,
                                const double *horizons, size_t nh, struct analytics_capacity *out)
{
	int64_t first = 0, last = 0;
	size_t have = 0;
	double *g = NULL;
	struct backtest bt, bt7;
	struct fit f;
	int rc;

	memset(out, 0, sizeof(*out));
	if (nh > ANALYTICS_MAX_HORIZONS)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!isnan(y[i])) {
			if (!have)
				first = t[i];
			last = t[i];
			out->used_now = y[i];
			have++;
		}
	out->now = last;
	out->capacity = capacity;
	if (!have || last - first < ANALYTICS_MIN_HISTORY_SECONDS) {
		snprintf(out->message, sizeof(out->message), "need 24 h of samples (have %.1f h)",
		         have ? (double)(last - first) / 3600 : 0.0);
		return 0;
	}
	int64_t step = last - first > 14 * 86400 ? 86400 : 3600;
	size_t m = resample(t, y, n, step, &g);
	if (!g)
		return -ENOMEM;
	out->step_days = (double)step / 86400;
	out->points = m;

	/* Backtest at 30 days ahead, or a third of the history when it is shorter. */
	int h30 = (int)(30 * 86400 / step), hb = (int)(m / 3);
	if (hb > h30)
		hb = h30;
	if (hb < 1)
		hb = 1;
	rc = run_backtest(g, m, hb, &bt);
	if (rc)
		goto out_free;
	/* A second backtest a week ahead: its origins reach closer to now, so a model that
	 * caught a recent change is seen doing so (30 days ahead, the newest origin is a month
	 * old). Each model's score is its error relative to the line's, averaged over both. */
	int h7 = (int)(7 * 86400 / step);
	if (h7 > hb)
		h7 = hb;
	rc = run_backtest(g, m, h7, &bt7);
	if (rc)
		goto out_free;
	out->backtest_days = hb * out->step_days;
	out->origins = bt.origins;
	out->model = ANALYTICS_MODEL_LINEAR;
	out->calib80 = out->calib95 = 1;
	/* Errors from before the last change point measure a world that is gone (a forecast
	 * made before a volume was deleted): the choice leaves out the windows that straddle
	 * it, the calibration uses the origins after it when there are enough. */
	size_t cp = analytics_changepoint(g, m, m / 8 > 6 ? m / 8 : 6, 3);
	if (bt.origins) {
		double score[ANALYTICS_NMODELS], mae30[ANALYTICS_NMODELS];
		/* A week-ahead horizon that is the series' period (its steps clearly correlated at
		 * that lag, two standard errors) lands every forecast on the phase of its origin:
		 * there a model carrying its last value (drift) is a seasonal naive forecast, 0.67
		 * of the line's error a week ahead and 1.73 a month ahead on weekly seasonality.
		 * The week's backtest does not tell how a model does off the phase, so it does not
		 * take part in the choice. */
		bool near_is_period = false;
		/* On the steps' changes (a trend's curvature makes the steps themselves correlated
		 * at every lag). */
		double *dg = malloc((m > 1 ? m - 1 : 1) * sizeof(*dg));
		if (!dg) {
			rc = -ENOMEM;
			goto out_free;
		}
		for (size_t i = 1; i < m; i++)
			dg[i - 1] = g[i] - g[i - 1];
		near_is_period =
		    h7 > 1 && m > 2 &&
		    analytics_diff_autocorr(dg, m - 1, (size_t)h7) > 2 / sqrt((double)(m - 2));
		/* The drift method takes the whole history's mean step for the present's: it
		 * competes only when the steps show no trend in their mean (two standard errors)
		 * and no period. A series that compounds has steps growing with it, and there the
		 * mean step is too low by a bias growing as the horizon (GDP: its forecasts 30
		 * quarters ahead covered 0.25..0.30); a period's steps are not independent draws.
		 * The steps on the scale drift is fitted on. */
		bool drift_log;
		rc = analytics_drift_scale(g, m, &drift_log, &out->step_trend_t);
		if (rc == -ENOMEM) {
			free(dg);
			goto out_free;
		}
		rc = 0;
		out->drift_eligible = fabs(out->step_trend_t) < STEP_TREND_T && !near_is_period;
		/* The exponential model says each step is a share of what is there: a growing
		 * series' steps grow with it. It competes only where they clearly do (the same two
		 * standard errors, one-sided). On a straight line its forecast is the line bent
		 * upward by the curvature of log y, a bias growing as the window and the horizon
		 * (2.5 noise sd at 30 days from 103 days: 2 of 2,000 linear series switched to it
		 * by a chance backtest win and missed their 95% interval). */
		out->exp_step_trend_t = analytics_step_trend_t(dg, m - 1);
		out->exp_eligible = out->exp_step_trend_t >= STEP_TREND_T;
		free(dg);
		for (int k = 0; k < ANALYTICS_NMODELS; k++)
			mae30[k] = clean_mae(&bt, (enum analytics_model)k, cp);
		for (int k = 0; k < ANALYTICS_NMODELS; k++) {
			out->backtest_mae[k] = mae30[k];
			score[k] = rel_error(mae30[k], mae30[0]);
			if (bt7.origins && h7 != hb && !near_is_period)
				score[k] =
				    (score[k] +
				     rel_error(clean_mae(&bt7, (enum analytics_model)k, cp),
				               clean_mae(&bt7, ANALYTICS_MODEL_LINEAR, cp))) /
				    2;
		}
		/* Clearly better than the line, else the line. */
		for (int k = 1; k < ANALYTICS_NMODELS; k++)
			if (score[k] < SWITCH_MARGIN * score[0] && score[k] < score[out->model] &&
			    (k != ANALYTICS_MODEL_DRIFT || out->drift_eligible) &&
			    (k != ANALYTICS_MODEL_EXPONENTIAL || out->exp_eligible))
				out->model = (enum analytics_model)k;
		double naive = 0;
		for (size_t i = 1; i < m; i++)
			naive += fabs(g[i] - g[i - 1]);
		naive /= (double)(m - 1);
		out->backtest_mase = naive > 0 ? mae30[out->model] / naive : NAN;
	}
	rc = model_fit(out->model, g, m, &f);
	if (rc)
		goto out_free;
	double q80 = analytics_t_quantile(0.90, f.dof), q95 = analytics_t_quantile(0.975, f.dof);
	double c30[2], c7[2];
	calibrate(&bt, &bt7, out->model, cp, m, q80, q95, c30);
	calibrate(&bt7, NULL, out->model, cp, m, q80, q95, c7);
	out->calib80 = c30[0];
	out->calib95 = c30[1];
	/* Horizons other than a backtest's own: the standardized error grows as (h / h_b)^gamma,
	 * with gamma from the two backtests (0 when the model's sd grows as its error does, 1/2
	 * for a line's sd on a random walk, up to 1 for a line's bias on a curve). */
	double gamma = 0;
	if (bt.origins && bt7.origins && hb > h7)
		gamma = analytics_horizon_exponent(horizon_scale_clean(&bt, &bt7, out->model, cp),
		                                   hb, h7);
	out->horizon_exponent = gamma;
	for (size_t i = 0; i < nh; i++) {
		struct analytics_forecast_point *p = &out->fc[i];
		int h = (int)lround(horizons[i] * 86400 / (double)step);
		double pt, sd;
		if (h < 1)
			h = 1;
		model_predict(&f, h, &pt, &sd);
		/* A week or less ahead: widened by the week's backtest; further, by the month's,
		 * each moved from its own horizon to this one. */
		bool week = horizons[i] <= 7 && bt7.origins;
		double hf = pow((double)h / (week ? h7 : hb), gamma);
		double c[2] = {(week ? c7 : c30)[0] * hf, (week ? c7 : c30)[1] * hf};
		p->horizon_days = horizons[i];
		p->used = pt;
		p->lo80 = pt - q80 * sd * c[0];
		p->hi80 = pt + q80 * sd * c[0];
		p->lo95 = pt - q95 * sd * c[1];
		p->hi95 = pt + q95 * sd * c[1];
		clip(&p->used, capacity);
		clip(&p->lo80, capacity);
		clip(&p->hi80, capacity);
		clip(&p->lo95, capacity);
		clip(&p->hi95, capacity);
	}
	out->nfc = nh;
	{
		double pt, sd;
		model_predict(&f, (int)lround(7 * 86400 / (double)step), &pt, &sd);
		out->growth_per_day = (pt - out->used_now) / 7;
	}
	/* Days until full: walk a year ahead a day at a time. */
	out->full_days = out->full_days_lo95 = out->full_days_hi95 = -1;
	if (capacity > 0) {
		for (int d = 0; d <= 365; d++) {
			double pt, sd;
			int h = (int)lround(d * 86400 / (double)step);
			if (h < 1)
				h = 1;
			model_predict(&f, h, &pt, &sd);
			double half = q95 * sd * out->calib95 * pow((double)h / hb, gamma);
			if (out->full_days < 0 && pt >= capacity)
				out->full_days = d;
			if (out->full_days_lo95 < 0 && pt + half >= capacity)
				out->full_days_lo95 = d;
			if (out->full_days_hi95 < 0 && pt - half >= capacity)
				out->full_days_hi95 = d;
		}
		out->full_within_year = out->full_days >= 0;
	}
	out->ok = true;
out_free:
	free(g);
	return rc;
}
