/* tests/bench/analytics/bench_analytics.c - the capacity forecast on synthetic series whose
 * future is known and on real public series (data/, rolling origins): for each, the share of
 * 30-day-ahead actual values inside the 80% and 95% intervals, and the 30-day MASE of the
 * chosen model against the plain least squares line's; for the synthetic kinds also the
 * coverage 90 days ahead. Each coverage is printed with its 95% binomial band (Wilson):
 * `name: share [lo, hi]`; other figures as `name: value`. Asserts nothing (STYLE.md).
 * Arguments: [SEED [REPLICATES]] (REPLICATES series per synthetic kind, default 2,000); the
 * seed moves the synthetic series only. PSTOR_BENCH_EVERY_LENGTH=1: the real series with
 * several history lengths per origin run every one (minutes more).
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analytics.h"

#define HIST_DAYS_MIN 90
#define HIST_DAYS_MAX 240
#define FUTURE_DAYS   30
#define FAR_DAYS      90 /* a second horizon: the calibration moved past its backtest's */
/* Independent series per kind: 2,000 put the 95% binomial band of a coverage near 0.95 at
 * about +-0.01 (1.96 sqrt(0.95 * 0.05 / 2000) = 0.0096), enough to tell a method's change from
 * a seed's; the second argument overrides it for quick looks. */
#define REPLICATES 2000

static int replicates = REPLICATES;

static uint64_t rng_state;

static double uniform(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return ((rng_state >> 11) + 0.5) / 9007199254740992.0;
}

static double gauss(void)
{
	return sqrt(-2 * log(uniform())) * cos(2 * M_PI * uniform());
}

/* A series: the value on day D of a replicate (noise included, drawn per call in day order). */
enum scenario { LINEAR_NOISE, TREND_CHANGE, STEP_DOWN, WEEKLY, SATURATING, RANDOM_WALK, NSCEN };
static const char *const scen_names[NSCEN] = {"linear_noise", "trend_change",
                                              "step_down",    "weekly_seasonality",
                                              "saturating",   "random_walk_drift"};

struct params {
	double base, slope, noise, change_day, slope2, step, amp, cap, mid, width;
};

static void draw_params(enum scenario s, int hist, struct params *p)
{
	memset(p, 0, sizeof(*p));
	p->base = 2e12 * (0.5 + uniform());
	p->slope = 5e9 * (0.2 + uniform());
	p->noise = p->slope * (0.5 + 2 * uniform());
	switch (s) {
	case TREND_CHANGE:
		p->change_day = hist - 20 - uniform() * (hist / 2.0);
		p->slope2 = p->slope * (uniform() < 0.5 ? 0.3 : 2.5);
		break;
	case STEP_DOWN:
		p->change_day = hist - 10 - uniform() * (hist / 2.0);
		p->step = -p->slope * (20 + 40 * uniform());
		break;
	case WEEKLY:
		p->amp = p->slope * (2 + 4 * uniform());
		break;
	case SATURATING:
		p->cap = p->base * (0.5 + uniform());
		p->mid = hist * (0.5 + 0.5 * uniform());
		p->width = 20 + 40 * uniform();
		break;
	default:
		break;
	}
}

static void make_series(enum scenario s, const struct params *p, int days, double *y)
{
	double walk = 0;

	for (int d = 0; d < days; d++) {
		double v = p->base + p->slope * d;
		switch (s) {
		case TREND_CHANGE:
			if (d >= p->change_day)
				v += (p->slope2 - p->slope) * (d - p->change_day);
			break;
		case STEP_DOWN:
			if (d >= p->change_day)
				v += p->step;
			break;
		case WEEKLY:
			v += p->amp * sin(2 * M_PI * d / 7.0);
			break;
		case SATURATING:
			v = p->base + p->cap / (1 + exp(-(d - p->mid) / p->width));
			break;
		case RANDOM_WALK:
			walk += p->noise * gauss();
			v += walk;
			break;
		default:
			break;
		}
		y[d] = v + (s == RANDOM_WALK ? 0 : p->noise * gauss());
	}
}

struct tally {
	unsigned n, in80, in95;
	double mase_chosen, mase_linear;
	unsigned chosen[ANALYTICS_NMODELS], chosen_in95[ANALYTICS_NMODELS];
	unsigned far_in80, far_in95; /* at FAR_DAYS (synthetic kinds only) */
	/* The drift method's check on each history: eligible, or out for a trend in the steps'
	 * mean (|t| >= 2; the rest of the ineligible ones are out for a weekly period). */
	unsigned drift_eligible, step_trend;
	unsigned exp_eligible; /* the exponential model's check: the steps clearly grow */
};

/* Scores C's first forecast against ACTUAL, next to the line's forecast LINE, both scaled by
 * NAIVE (the history's mean absolute step: MASE). */
static void tally_add(struct tally *t, const struct analytics_capacity *c, double actual,
                      double line, double naive)
{
	bool in95 = actual >= c->fc[0].lo95 && actual <= c->fc[0].hi95;

	t->n++;
	t->in80 += actual >= c->fc[0].lo80 && actual <= c->fc[0].hi80;
	t->in95 += in95;
	t->mase_chosen += fabs(actual - c->fc[0].used) / naive;
	t->mase_linear += fabs(actual - line) / naive;
	t->chosen[c->model]++;
	t->chosen_in95[c->model] += in95;
	t->drift_eligible += c->drift_eligible;
	t->exp_eligible += c->exp_eligible;
	t->step_trend += !(fabs(c->step_trend_t) < 2);
}

static void run(enum scenario s, struct tally *t)
{
	static double y[HIST_DAYS_MAX + FAR_DAYS];
	static int64_t tm[HIST_DAYS_MAX + FAR_DAYS];
	const double horizons[] = {FUTURE_DAYS, FAR_DAYS};

	memset(t, 0, sizeof(*t));
	for (int r = 0; r < replicates; r++) {
		int hist = HIST_DAYS_MIN + (int)(uniform() * (HIST_DAYS_MAX - HIST_DAYS_MIN));
		struct params p;
		struct analytics_capacity c;
		draw_params(s, hist, &p);
		/* The days past FUTURE_DAYS are drawn after the rest and their draws then undone,
		 * so every 30-day figure is the one a 30-day future alone gives. */
		uint64_t before = rng_state;
		make_series(s, &p, hist + FUTURE_DAYS, y);
		uint64_t after = rng_state;
		rng_state = before;
		make_series(s, &p, hist + FAR_DAYS, y);
		rng_state = after;
		for (int d = 0; d < hist + FAR_DAYS; d++)
			tm[d] = 1600000000 + (int64_t)d * 86400;
		if (analytics_capacity_forecast(tm, y, (size_t)hist, 0, horizons, 2, &c) || !c.ok)
			continue;
		double far = y[hist - 1 + FAR_DAYS];
		t->far_in80 += far >= c.fc[1].lo80 && far <= c.fc[1].hi80;
		t->far_in95 += far >= c.fc[1].lo95 && far <= c.fc[1].hi95;
		double actual = y[hist - 1 + FUTURE_DAYS];
		double lin, sd, dof, naive = 0;
		if (analytics_model_forecast(ANALYTICS_MODEL_LINEAR, y, (size_t)hist, FUTURE_DAYS,
		                             &lin, &sd, &dof))
			continue;
		for (int d = 1; d < hist; d++)
			naive += fabs(y[d] - y[d - 1]);
		naive /= hist - 1;
		tally_add(t, &c, actual, lin, naive);
	}
}

/* ---- real series --------------------------------------------------------------------------- */
/* A real series read from data/: times in seconds (or an index, one "day" a row) and values,
 * NAN where the file has an empty field. */
struct real_series {
	const char *name, *file;
	bool index_days;        /* the first column is a label: row i is day i */
	int hist_min, hist_max; /* the range of the history lengths, days */
	int future;             /* days ahead; 0: FUTURE_DAYS */
	int draws;              /* history lengths at each origin; 0: 1 */
	int64_t *t;
	double *y;
	size_t n;
};

static int real_load(struct real_series *r)
{
	char path[4096], line[256];
	size_t cap = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", PSTOR_BENCH_DATA, r->file);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	if (!fgets(line, sizeof(line), f)) /* the header */
		goto out_close;
	while (fgets(line, sizeof(line), f)) {
		char *comma = strchr(line, ',');
		if (!comma)
			continue;
		if (r->n == cap) {
			cap = cap ? cap * 2 : 256;
			void *nt = realloc(r->t, cap * sizeof(*r->t));
			if (nt)
				r->t = nt;
			void *ny = nt ? realloc(r->y, cap * sizeof(*r->y)) : NULL;
			if (!ny) {
				fclose(f);
				return -ENOMEM;
			}
			r->y = ny;
		}
		char *end;
		double v = strtod(comma + 1, &end);
		r->t[r->n] =
		    r->index_days ? 1600000000 + (int64_t)r->n * 86400 : strtoll(line, NULL, 10);
		r->y[r->n] = end == comma + 1 ? NAN : v;
		r->n++;
	}
out_close:
	fclose(f);
	return r->n ? 0 : -EINVAL;
}

/* Rolling origins over R: at each origin a history of R->hist_min..R->hist_max days (drawn)
 * ending there, and the first sample at least FUTURE_DAYS later as the truth (skipped
 * when a gap puts it more than a week past that). The forecast is asked for exactly that
 * horizon; the line is the least squares fit over the same samples. */
#define REAL_ORIGINS 1000

/* One forecast at origin O of R, from a history length U of the way through R's range. */
static void run_real_origin(const struct real_series *r, size_t o, int future, double u,
                            struct tally *t)
{
	const double day = 86400;
	double hist = r->hist_min + u * (r->hist_max - r->hist_min);

	size_t from = o;
	while (from > 0 && r->t[o] - r->t[from - 1] <= hist * day)
		from--;
	size_t tgt = o + 1;
	while (tgt < r->n && (r->t[tgt] - r->t[o] < future * day || isnan(r->y[tgt])))
		tgt++;
	if (tgt >= r->n || r->t[tgt] - r->t[o] > (future + 7) * day)
		return;
	double horizon = (double)(r->t[tgt] - r->t[o]) / day, actual = r->y[tgt];
	struct analytics_capacity c;
	if (analytics_capacity_forecast(r->t + from, r->y + from, o + 1 - from, 0, &horizon, 1,
	                                &c) ||
	    !c.ok)
		return;
	/* The line and the naive scale over the samples with a value. */
	static double x[4096], yy[4096];
	double naive = 0;
	size_t m = 0;
	for (size_t i = from; i <= o && m < sizeof(x) / sizeof(x[0]); i++)
		if (!isnan(r->y[i])) {
			x[m] = (double)(r->t[i] - r->t[o]) / day;
			yy[m++] = r->y[i];
		}
	for (size_t i = 1; i < m; i++)
		naive += fabs(yy[i] - yy[i - 1]);
	struct analytics_linear lin;
	double lp, lsd;
	if (m < 3 || analytics_linear_fit(x, yy, m, &lin) || !(naive > 0))
		return;
	naive /= (double)(m - 1);
	analytics_linear_predict(&lin, horizon, &lp, &lsd);
	tally_add(t, &c, actual, lp, naive);
}

/* The history length of a real series' J-th forecast, as a share of its range: the golden
 * ratio's additive sequence (0.5 + J / phi, modulo 1). It spreads any run of consecutive
 * forecasts evenly over the range, as random draws do only on average, and depends on no
 * seed: a real series is measured the same at every seed. The random draws it replaces moved
 * GDP's 4-quarter coverage from 0.977 to 0.981 with the seed (analytics/README.md). */
static double real_length_share(size_t j)
{
	return fmod(0.5 + (double)j * 0.6180339887498949, 1.0);
}

/* PSTOR_BENCH_EVERY_LENGTH set: the series drawn several times per origin (GDP) run every
 * whole history length instead, the exact figure the sequence estimates (minutes of CPU). */
static bool every_length;

static void run_real(const struct real_series *r, struct tally *t)
{
	const double day = 86400;
	const int future = r->future ? r->future : FUTURE_DAYS;
	size_t first_origin = 0, norigins;

	memset(t, 0, sizeof(*t));
	while (first_origin < r->n && r->t[first_origin] - r->t[0] < r->hist_min * day)
		first_origin++;
	size_t last_origin = r->n;
	while (last_origin > first_origin && r->t[r->n - 1] - r->t[last_origin - 1] < future * day)
		last_origin--;
	if (last_origin <= first_origin)
		return;
	norigins = last_origin - first_origin;
	if (norigins > REAL_ORIGINS)
		norigins = REAL_ORIGINS;
	for (size_t k = 0; k < norigins; k++) {
		size_t o = first_origin +
		           (last_origin - 1 - first_origin) * k / (norigins > 1 ? norigins - 1 : 1);
		if (isnan(r->y[o]))
			continue;
		int nd = r->draws ? r->draws : 1;
		if (every_length && nd > 1) {
			for (int len = r->hist_min; len <= r->hist_max; len++)
				run_real_origin(
				    r, o, future,
				    (double)(len - r->hist_min) / (r->hist_max - r->hist_min), t);
			continue;
		}
		for (int d = 0; d < nd; d++)
			run_real_origin(r, o, future, real_length_share(k * (size_t)nd + (size_t)d),
			                t);
	}
}

/* The Wilson score interval at 95% of a share K of N: the band a coverage measured on N
 * independent forecasts has from chance alone (unlike p +- 1.96 sqrt(p (1 - p) / n) it does not
 * shrink to nothing at 0 or 1 of the forecasts inside). */
static void wilson95(unsigned k, unsigned n, double *lo, double *hi)
{
	const double z = 1.959963984540054;
	double p = (double)k / n, d = 1 + z * z / n, c = (p + z * z / (2.0 * n)) / d;
	double h = z * sqrt(p * (1 - p) / n + z * z / (4.0 * n * n)) / d;

	*lo = c - h;
	*hi = c + h;
}

/* `name: share [lo, hi]`: the share and its 95% binomial band. */
static void print_share(const char *name, const char *what, unsigned k, unsigned n)
{
	double lo, hi;

	wilson95(k, n, &lo, &hi);
	printf("analytics.%s.%s: %.3f [%.3f, %.3f]\n", name, what, (double)k / n, lo, hi);
}

static void print_tally(const char *name, const struct tally *t, bool far, double *ratio_sum)
{
	double mc = t->mase_chosen / t->n, ml = t->mase_linear / t->n;

	printf("analytics.%s.forecasts: %u\n", name, t->n);
	print_share(name, "coverage80", t->in80, t->n);
	print_share(name, "coverage95", t->in95, t->n);
	printf("analytics.%s.mase30_chosen: %.3f\n", name, mc);
	printf("analytics.%s.mase30_linear: %.3f\n", name, ml);
	printf("analytics.%s.mase30_ratio: %.3f\n", name, mc / ml);
	if (far) {
		char what[32];
		snprintf(what, sizeof(what), "coverage80_%dd", FAR_DAYS);
		print_share(name, what, t->far_in80, t->n);
		snprintf(what, sizeof(what), "coverage95_%dd", FAR_DAYS);
		print_share(name, what, t->far_in95, t->n);
	}
	printf("analytics.%s.models:", name);
	for (int m = 0; m < ANALYTICS_NMODELS; m++)
		printf(" %s=%u", analytics_model_names[m], t->chosen[m]);
	printf("\n");
	/* Where the misses are: the 95% coverage of the forecasts each model made. */
	printf("analytics.%s.coverage95_by_model:", name);
	for (int m = 0; m < ANALYTICS_NMODELS; m++)
		if (t->chosen[m])
			printf(" %s=%.3f", analytics_model_names[m],
			       (double)t->chosen_in95[m] / t->chosen[m]);
	printf("\n");
	printf("analytics.%s.drift_eligible: %.3f\n", name, (double)t->drift_eligible / t->n);
	printf("analytics.%s.step_trend_rejects: %.3f\n", name, (double)t->step_trend / t->n);
	printf("analytics.%s.exp_eligible: %.3f\n", name, (double)t->exp_eligible / t->n);
	*ratio_sum += mc / ml;
}

int main(int argc, char **argv)
{
	/* Public-domain series (data/README.md): weekly Mauna Loa CO2 at its real dates, with
	 * its gaps, from 90..240 days of history as the synthetic kinds (less than its yearly
	 * cycle) and from 1..3 years; US real GDP, one quarter a "day". Scale is irrelevant to
	 * coverage and MASE. */
	struct real_series real[] = {
	    {.name = "real_co2_weekly",
	     .file = "co2_mauna_loa_weekly.csv",
	     .hist_min = HIST_DAYS_MIN,
	     .hist_max = HIST_DAYS_MAX},
	    {.name = "real_co2_weekly_1to3y",
	     .file = "co2_mauna_loa_weekly.csv",
	     .hist_min = 365,
	     .hist_max = 3 * 365},
	    {.name = "real_us_gdp_quarterly",
	     .file = "us_real_gdp_quarterly.csv",
	     .index_days = true,
	     .hist_min = HIST_DAYS_MIN,
	     .hist_max = HIST_DAYS_MAX,
	     .draws = 10},
	    /* The same at 4 quarters ahead: a year, the horizon GDP is forecast at, where 30
	     * quarters (7.5 years, a business cycle or more) is a different problem from a
	     * pool's next month. */
	    {.name = "real_us_gdp_4q",
	     .file = "us_real_gdp_quarterly.csv",
	     .index_days = true,
	     .hist_min = HIST_DAYS_MIN,
	     .hist_max = HIST_DAYS_MAX,
	     .future = 4,
	     .draws = 10},
	};
	double ratio_sum = 0, real_sum = 0;
	struct tally t;

	rng_state = argc > 1 ? strtoull(argv[1], NULL, 0) : 0x9e3779b97f4a7c15ull;
	if (!rng_state)
		rng_state = 1;
	if (argc > 2) {
		char *end;
		long r = strtol(argv[2], &end, 10);
		if (*end || r < 1 || r > 1000000) {
			fprintf(stderr, "usage: %s [SEED [REPLICATES]]\n", argv[0]);
			return 2;
		}
		replicates = (int)r;
	}
	printf("analytics.replicates: %d\n", replicates);
	printf("analytics.horizon_days: %d\n", FUTURE_DAYS);
	for (int s = 0; s < NSCEN; s++) {
		run((enum scenario)s, &t);
		print_tally(scen_names[s], &t, true, &ratio_sum);
	}
	printf("analytics.mase30_ratio_mean: %.3f\n", ratio_sum / NSCEN);
	unsigned nreal = 0;
	every_length = getenv("PSTOR_BENCH_EVERY_LENGTH") != NULL;
	printf("analytics.real_history_lengths: %s\n",
	       every_length ? "every length (draws > 1), golden-ratio sequence otherwise"
	                    : "golden-ratio sequence");
	for (size_t i = 0; i < sizeof(real) / sizeof(real[0]); i++) {
		int rc = real_load(&real[i]);
		if (rc) {
			printf("analytics.%s: cannot read %s/%s: %s\n", real[i].name,
			       PSTOR_BENCH_DATA, real[i].file, strerror(-rc));
			continue;
		}
		run_real(&real[i], &t);
		printf("analytics.%s.horizon_days: %d\n", real[i].name,
		       real[i].future ? real[i].future : FUTURE_DAYS);
		print_tally(real[i].name, &t, false, &real_sum);
		nreal++;
		free(real[i].t);
		free(real[i].y);
	}
	if (nreal)
		printf("analytics.mase30_ratio_mean_with_real: %.3f\n",
		       (ratio_sum + real_sum) / (NSCEN + nreal));
	return 0;
}
