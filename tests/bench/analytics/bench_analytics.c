/* tests/bench/analytics/bench_analytics.c - the capacity forecast on synthetic series whose
 * future is known: for each kind of history, the share of 30-day-ahead actual values inside the
 * 80% and 95% intervals, and the 30-day MASE of the chosen model against the plain least
 * squares line's. Prints `name: value` lines; asserts nothing (STYLE.md).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analytics.h"

#define HIST_DAYS_MIN 90
#define HIST_DAYS_MAX 240
#define FUTURE_DAYS   30
#define REPLICATES    200

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
	unsigned chosen[ANALYTICS_NMODELS];
};

static void run(enum scenario s, struct tally *t)
{
	static double y[HIST_DAYS_MAX + FUTURE_DAYS];
	static int64_t tm[HIST_DAYS_MAX + FUTURE_DAYS];
	const double horizons[] = {FUTURE_DAYS};

	memset(t, 0, sizeof(*t));
	for (int r = 0; r < REPLICATES; r++) {
		int hist = HIST_DAYS_MIN + (int)(uniform() * (HIST_DAYS_MAX - HIST_DAYS_MIN));
		struct params p;
		struct analytics_capacity c;
		draw_params(s, hist, &p);
		make_series(s, &p, hist + FUTURE_DAYS, y);
		for (int d = 0; d < hist + FUTURE_DAYS; d++)
			tm[d] = 1600000000 + (int64_t)d * 86400;
		if (analytics_capacity_forecast(tm, y, (size_t)hist, 0, horizons, 1, &c) || !c.ok)
			continue;
		double actual = y[hist - 1 + FUTURE_DAYS];
		double lin, sd, dof, naive = 0;
		if (analytics_model_forecast(ANALYTICS_MODEL_LINEAR, y, (size_t)hist, FUTURE_DAYS,
		                             &lin, &sd, &dof))
			continue;
		for (int d = 1; d < hist; d++)
			naive += fabs(y[d] - y[d - 1]);
		naive /= hist - 1;
		t->n++;
		t->in80 += actual >= c.fc[0].lo80 && actual <= c.fc[0].hi80;
		t->in95 += actual >= c.fc[0].lo95 && actual <= c.fc[0].hi95;
		t->mase_chosen += fabs(actual - c.fc[0].used) / naive;
		t->mase_linear += fabs(actual - lin) / naive;
		t->chosen[c.model]++;
	}
}

int main(int argc, char **argv)
{
	double ratio_sum = 0;
	struct tally t;

	rng_state = argc > 1 ? strtoull(argv[1], NULL, 0) : 0x9e3779b97f4a7c15ull;
	if (!rng_state)
		rng_state = 1;
	printf("analytics.replicates: %d\n", REPLICATES);
	printf("analytics.horizon_days: %d\n", FUTURE_DAYS);
	for (int s = 0; s < NSCEN; s++) {
		run((enum scenario)s, &t);
		double mc = t.mase_chosen / t.n, ml = t.mase_linear / t.n;
		printf("analytics.%s.coverage80: %.3f\n", scen_names[s], (double)t.in80 / t.n);
		printf("analytics.%s.coverage95: %.3f\n", scen_names[s], (double)t.in95 / t.n);
		printf("analytics.%s.mase30_chosen: %.3f\n", scen_names[s], mc);
		printf("analytics.%s.mase30_linear: %.3f\n", scen_names[s], ml);
		printf("analytics.%s.mase30_ratio: %.3f\n", scen_names[s], mc / ml);
		printf("analytics.%s.models:", scen_names[s]);
		for (int m = 0; m < ANALYTICS_NMODELS; m++)
			printf(" %s=%u", analytics_model_names[m], t.chosen[m]);
		printf("\n");
		ratio_sum += mc / ml;
	}
	printf("analytics.mase30_ratio_mean: %.3f\n", ratio_sum / NSCEN);
	return 0;
}
