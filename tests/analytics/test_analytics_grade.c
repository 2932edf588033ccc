/* tests/analytics/test_analytics_grade.c - forecasts that grade themselves: the kept form round
 * trips and refuses damaged rows, a known forecast against a known outcome gives exact errors,
 * interval verdicts and date verdicts, and the observed band over many is exact.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <string.h>

#include "analytics.h"

#define DAY 86400
#define T0  1735689600ll

/* A forecast made at T0 about physical used: 100 now, +7 days 114 (80% 110..118, 95% 106..122),
 * +30 days 160 (80% 150..170, 95% 140..180), +90 days 280 (80% 250..310, 95% 220..340); the
 * pool (limit 200) full in 50 days, 95% from 45 to 56 days. */
static struct analytics_recorded known(void)
{
	return (struct analytics_recorded){
	    .made_at = T0,
	    .column = ANALYTICS_COL_PHYSICAL_USED,
	    .value_at = 100,
	    .limit = 200,
	    .model = ANALYTICS_MODEL_HOLT_DAMPED,
	    .nfc = 3,
	    .fc = {{7, 114, 110, 118, 106, 122},
	           {30, 160, 150, 170, 140, 180},
	           {90, 280, 250, 310, 220, 340}},
	    .full_days = 50,
	    .full_lo95 = 45,
	    .full_hi95 = 56,
	};
}

/* Daily samples from T0 for DAYS days of y = 100 + SLOPE * day. */
static size_t line(int64_t *t, double *y, int days, double slope)
{
	for (int d = 0; d <= days; d++) {
		t[d] = T0 + (int64_t)d * DAY;
		y[d] = 100 + slope * d;
	}
	return (size_t)days + 1;
}

Test(analytics_grade, packed_record_round_trips)
{
	struct analytics_recorded r = known(), back;
	double v[ANALYTICS_RECORDED_VALUES], w[ANALYTICS_RECORDED_VALUES];

	analytics_recorded_pack(&r, v);
	cr_assert_eq(analytics_recorded_unpack(T0, v, ANALYTICS_RECORDED_VALUES, &back), 0);
	cr_expect_eq(back.made_at, T0);
	cr_expect_eq(back.column, ANALYTICS_COL_PHYSICAL_USED);
	cr_expect_eq(back.model, ANALYTICS_MODEL_HOLT_DAMPED);
	cr_expect_eq(back.nfc, 3);
	cr_expect_eq(back.fc[2].hi95, 340);
	cr_expect_eq(back.full_hi95, 56);
	analytics_recorded_pack(&back, w);
	cr_assert_eq(memcmp(v, w, sizeof(v)), 0);
}

Test(analytics_grade, damaged_rows_are_refused)
{
	struct analytics_recorded r = known(), back;
	double v[ANALYTICS_RECORDED_VALUES], w[ANALYTICS_RECORDED_VALUES];
	static const struct {
		size_t at;
		double val;
	} bad[] = {
	    {0, 2},         /* another version */
	    {1, -1},        /* no such column */
	    {1, 1.5},       /* not a column number */
	    {2, NAN},       /* no value at the time it was made */
	    {3, -5},        /* a negative limit */
	    {4, 9},         /* no such model */
	    {5, 0},         /* no horizon */
	    {5, 4},         /* more than kept */
	    {6, 0},         /* a horizon of 0 days */
	    {12, 7},        /* horizons not ascending */
	    {7, 130},       /* point outside its 80% band */
	    {10, 111},      /* 95% inside 80% */
	    {11, INFINITY}, /* unbounded */
	    {24, -2},       /* days until full below -1 */
	    {26, NAN},      /* no latest day */
	};

	analytics_recorded_pack(&r, v);
	cr_assert_eq(analytics_recorded_unpack(T0, v, ANALYTICS_RECORDED_VALUES - 1, &back),
	             -EINVAL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memcpy(w, v, sizeof(w));
		w[bad[i].at] = bad[i].val;
		cr_expect_eq(analytics_recorded_unpack(T0, w, ANALYTICS_RECORDED_VALUES, &back),
		             -EINVAL, "value %zu = %g accepted", bad[i].at, bad[i].val);
	}
}

Test(analytics_grade, record_from_a_capacity_forecast)
{
	struct analytics_capacity c = {
	    .ok = true, .now = T0, .used_now = 100, .capacity = 200, .model = 2, .nfc = 3};
	struct analytics_recorded r;

	c.fc[0] = (struct analytics_forecast_point){7, 114, 110, 118, 106, 122};
	c.full_within_year = false;
	c.full_days = 400;
	c.full_days_lo95 = 200;
	c.full_days_hi95 = -1;
	cr_assert_eq(analytics_recorded_from(&c, ANALYTICS_COL_LIFE_USED, &r), 0);
	cr_expect_eq(r.made_at, T0);
	cr_expect_eq(r.column, ANALYTICS_COL_LIFE_USED);
	cr_expect_eq(r.model, ANALYTICS_MODEL_CHANGEPOINT);
	cr_expect_eq(r.full_days, -1); /* not within a year */
	cr_expect_eq(r.full_lo95, 200);
	cr_expect_eq(r.fc[0].hi95, 122);
	c.ok = false;
	cr_expect_eq(analytics_recorded_from(&c, ANALYTICS_COL_LIFE_USED, &r), -EINVAL);
}

Test(analytics_grade, value_at_interpolates_between_samples)
{
	int64_t t[] = {100, 200, 300, 400};
	double y[] = {10, NAN, 30, 70}, v;

	cr_assert_eq(analytics_value_at(t, y, 4, 100, &v), 0);
	cr_expect_eq(v, 10);
	cr_assert_eq(analytics_value_at(t, y, 4, 250, &v), 0);
	cr_expect_float_eq(v, 25, 1e-12); /* the empty sample is skipped */
	cr_assert_eq(analytics_value_at(t, y, 4, 375, &v), 0);
	cr_expect_float_eq(v, 60, 1e-12);
	cr_expect_eq(analytics_value_at(t, y, 4, 99, &v), -ERANGE);
	cr_expect_eq(analytics_value_at(t, y, 4, 401, &v), -ERANGE);
	double none[] = {NAN, NAN};
	cr_expect_eq(analytics_value_at(t, none, 2, 150, &v), -ENOENT);
}

Test(analytics_grade, horizons_score_once_they_pass)
{
	struct analytics_recorded r = known();
	struct analytics_score s;
	int64_t t[64];
	double y[64];

	/* 40 days of 2 a day: +7 is 114 (exact), +30 is 160 (exact); +90 has not come. */
	size_t n = line(t, y, 40, 2);
	cr_assert_eq(analytics_grade_one(&r, t, y, n, &s), 0);
	cr_expect(s.h[0].scored && s.h[1].scored && !s.h[2].scored);
	cr_expect_eq(s.h[0].error, 0);
	cr_expect(s.h[0].in80 && s.h[0].in95);
	/* 3 a day: +7 is 121 (outside 80%, inside 95%), +30 is 190 (outside both). */
	n = line(t, y, 40, 3);
	cr_assert_eq(analytics_grade_one(&r, t, y, n, &s), 0);
	cr_expect_eq(s.h[0].actual, 121);
	cr_expect_eq(s.h[0].error, 7);
	cr_expect_float_eq(s.h[0].rel_error, 7.0 / 121, 1e-12);
	cr_expect(!s.h[0].in80 && s.h[0].in95);
	cr_expect_eq(s.h[1].error, 30);
	cr_expect(!s.h[1].in80 && !s.h[1].in95);
	/* A gap of 10 days around +7 (the box was off): not scored; +30, between samples a
	 * day either side, is. */
	int64_t tg[] = {T0, T0 + 2 * DAY, T0 + 12 * DAY, T0 + 29 * DAY, T0 + 31 * DAY};
	double yg[] = {100, 106, 136, 187, 193};
	cr_assert_eq(analytics_grade_one(&r, tg, yg, 5, &s), 0);
	cr_expect(!s.h[0].scored && s.h[1].scored);
	cr_expect_float_eq(s.h[1].actual, 190, 1e-9);
	/* Only 6 days: nothing scored yet. */
	n = line(t, y, 6, 3);
	cr_assert_eq(analytics_grade_one(&r, t, y, n, &s), 0);
	cr_expect(!s.h[0].scored && !s.h[1].scored && !s.h[2].scored);
	cr_expect(!s.date_decided && !s.reached);
}

Test(analytics_grade, the_full_date_is_judged_when_known)
{
	struct analytics_recorded r = known();
	struct analytics_score s;
	int64_t t[128];
	double y[128];

	/* 2 a day reaches 200 on day 50: the point was right, the interval (44, 56] held. */
	size_t n = line(t, y, 60, 2);
	cr_assert_eq(analytics_grade_one(&r, t, y, n, &s), 0);
	cr_expect(s.reached && s.date_decided && s.date_held95 && s.point_decided);
	cr_expect_float_eq(s.reached_days, 50, 1e-9);
	cr_expect_float_eq(s.point_error_days, 0, 1e-9);
	/* 2.5 a day: full on day 40, before the interval; the point was 10 days late. */
	n = line(t, y, 60, 2.5);
	cr_assert_eq(analytics_grade_one(&r, t, y, n, &s), 0);
	cr_expect(s.reached && s.date_decided && !s.date_held95);
	cr_expect_float_eq(s.point_error_days, 10, 1e-9);
	/* Between samples: 100, then 190 on day 1, then 230 on day 2: 200 on day 1.25. */
	int64_t t3[] = {T0, T0 + DAY, T0 + 2 * DAY};
	double y3[] = {100, 190, 230};
	cr_assert_eq(analytics_grade_one(&r, t3, y3, 3, &s), 0);
	cr_expect_float_eq(s.reached_days, 1.25, 1e-9);
	/* 1 a day for 57 days: the latest day (56) passed without it: failed, point unknown. */
	n = line(t, y, 57, 1);
	cr_assert_eq(analytics_grade_one(&r, t, y, n, &s), 0);
	cr_expect(!s.reached && s.date_decided && !s.date_held95 && !s.point_decided);
	/* ... but on day 56 it is still open. */
	n = line(t, y, 56, 1);
	cr_assert_eq(analytics_grade_one(&r, t, y, n, &s), 0);
	cr_expect(!s.date_decided);
	/* No latest day ("beyond a year"), earliest 45: held once day 45 passes without it. */
	r.full_hi95 = -1;
	n = line(t, y, 45, 1);
	cr_assert_eq(analytics_grade_one(&r, t, y, n, &s), 0);
	cr_expect(s.date_decided && s.date_held95);
	n = line(t, y, 43, 1);
	cr_assert_eq(analytics_grade_one(&r, t, y, n, &s), 0);
	cr_expect(!s.date_decided);
	/* No limit known: no date verdict at all. */
	r.limit = 0;
	n = line(t, y, 60, 2);
	cr_assert_eq(analytics_grade_one(&r, t, y, n, &s), 0);
	cr_expect(!s.reached && !s.date_decided);
}

Test(analytics_grade, observed_band_over_many_forecasts)
{
	struct analytics_recorded r[5];
	struct analytics_grade g;
	int64_t t[128];
	double y[128];

	/* Five forecasts made on days 0..4 of a series of 2 a day, each +7 point off by 0, 1,
	 * 2, 3 and 4 (too low): the 80% band is +-1.5 and the 95% band +-3.5 around it. */
	size_t n = line(t, y, 40, 2);
	for (int k = 0; k < 5; k++) {
		double truth = 100 + 2 * (k + 7), pt = truth - k;
		r[k] = known();
		r[k].made_at = T0 + (int64_t)k * DAY;
		r[k].value_at = 100 + 2 * k;
		r[k].nfc = 2;
		r[k].fc[0] = (struct analytics_forecast_point){7,        pt,       pt - 1.5,
		                                               pt + 1.5, pt - 3.5, pt + 3.5};
		/* +60 days: after the history's end, not scored. */
		r[k].fc[1] = (struct analytics_forecast_point){60, 0, 0, 0, 0, 0};
		r[k].limit = 0;
	}
	cr_assert_eq(analytics_grade(r, 5, t, y, n, &g), 0);
	cr_expect_eq(g.recorded, 5);
	cr_expect_eq(g.scored, 5);
	cr_assert_eq(g.nh, 2);
	cr_expect_eq(g.h[0].horizon_days, 7);
	cr_expect_eq(g.h[0].scored, 5);
	cr_expect_float_eq(g.h[0].abs_p50, 2, 1e-12);
	cr_expect_float_eq(g.h[0].abs_p90, 3.6, 1e-12); /* 3 + 0.6 (4 - 3) */
	cr_expect_float_eq(g.h[0].mean_error, 2, 1e-12);
	cr_expect_eq(g.h[0].in80, 2); /* errors 0, 1 */
	cr_expect_eq(g.h[0].in95, 4); /* errors 0..3 */
	cr_expect_float_eq(g.h[0].coverage80, 0.4, 1e-12);
	cr_expect_float_eq(g.h[0].coverage95, 0.8, 1e-12);
	cr_expect_float_eq(g.h[0].rel_p50, 2.0 / 118, 1e-12); /* forecast 2: truth 118 */
	cr_expect_eq(g.h[1].horizon_days, 60);
	cr_expect_eq(g.h[1].scored, 0);
	cr_expect(isnan(g.h[1].coverage95) && isnan(g.h[1].abs_p50));
	cr_expect_eq(g.dates_decided, 0);
	cr_expect(isnan(g.date_abs_error_p50_days));
	/* Too short a history: kept, none scored. */
	n = line(t, y, 5, 2);
	cr_assert_eq(analytics_grade(r, 5, t, y, n, &g), 0);
	cr_expect_eq(g.recorded, 5);
	cr_expect_eq(g.scored, 0);
	cr_expect_eq(g.h[0].scored, 0);
	cr_assert_eq(analytics_grade(NULL, 0, t, y, n, &g), 0);
	cr_expect_eq(g.recorded, 0);
	cr_expect_eq(g.nh, 0);
}

Test(analytics_grade, a_history_matches_the_one_a_forecast_saw)
{
	struct analytics_recorded r = known();
	int64_t t[] = {T0 - DAY, T0, T0 + DAY};
	double y[] = {90, 100, 110};

	cr_expect(analytics_recorded_matches(&r, t, y, 3));
	y[1] = 100.5; /* another value at that time: another history */
	cr_expect(!analytics_recorded_matches(&r, t, y, 3));
	/* The sample at made_at rolled away: 100 lies between its neighbours. */
	int64_t t2[] = {T0 - DAY, T0 + DAY};
	double y2[] = {90, 110}, y3[] = {120, 130};
	cr_expect(analytics_recorded_matches(&r, t2, y2, 2));
	cr_expect(!analytics_recorded_matches(&r, t2, y3, 2));
	/* A history that ends before it, or starts after it. */
	cr_expect(!analytics_recorded_matches(&r, t, y, 1));
	cr_expect(!analytics_recorded_matches(&r, t + 2, y + 2, 1));
}
