/* tests/fuzz/fuzz_recorded.c - a kept forecast is read back from the metadata database, which may
 * be damaged: analytics_recorded_unpack must refuse or accept any doubles, and what it accepts
 * must pack back the same and score against any history (analytics_grade_one, analytics_grade,
 * analytics_recorded_matches) without a memory error or an impossible verdict.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "analytics.h"

#define MAX_SAMPLES 512

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	double v[ANALYTICS_RECORDED_VALUES], w[ANALYTICS_RECORDED_VALUES];
	static int64_t t[MAX_SAMPLES];
	static double y[MAX_SAMPLES];
	struct analytics_recorded r[2], back;
	struct analytics_score sc;
	struct analytics_grade g;
	int64_t made_at;
	size_t n = 0;

	if (size < sizeof(v) + sizeof(made_at))
		return 0;
	memcpy(v, data, sizeof(v));
	memcpy(&made_at, data + sizeof(v), sizeof(made_at));
	data += sizeof(v) + sizeof(made_at);
	size -= sizeof(v) + sizeof(made_at);
	/* Bound the time so a horizon added to it cannot overflow (the store's times are Unix
	 * seconds of this century). */
	made_at = (int64_t)((uint64_t)made_at % 4102444800ull);
	if (analytics_recorded_unpack(made_at, v, ANALYTICS_RECORDED_VALUES, &r[0]))
		return 0;
	/* Accepted: nested, ascending, and it packs back to what unpacks the same. */
	for (size_t i = 0; i < r[0].nfc; i++) {
		const struct analytics_forecast_point *f = &r[0].fc[i];
		if (!(f->lo95 <= f->lo80 && f->lo80 <= f->used && f->used <= f->hi80 &&
		      f->hi80 <= f->hi95) ||
		    (i && !(f->horizon_days > r[0].fc[i - 1].horizon_days)))
			abort();
	}
	analytics_recorded_pack(&r[0], w);
	if (analytics_recorded_unpack(made_at, w, ANALYTICS_RECORDED_VALUES, &back))
		abort();
	analytics_recorded_pack(&back, v);
	if (memcmp(v, w, sizeof(v)))
		abort();
	/* A history from the rest: increasing times around made_at, finite values or empty. */
	int64_t tm = made_at - 86400 * 30;
	while (size >= 12 && n < MAX_SAMPLES) {
		uint32_t dt;
		double val;
		memcpy(&dt, data, 4);
		memcpy(&val, data + 4, 8);
		data += 12;
		size -= 12;
		tm += 1 + dt % (86400 * 40);
		t[n] = tm;
		y[n++] = isfinite(val) ? val : NAN;
	}
	if (analytics_grade_one(&r[0], t, y, n, &sc))
		abort();
	for (size_t i = 0; i < sc.nh; i++) {
		if (!sc.h[i].scored)
			continue;
		if (sc.h[i].in80 && !sc.h[i].in95)
			abort(); /* the 80% band lies inside the 95% one */
		if (sc.h[i].abs_error != fabs(sc.h[i].error))
			abort();
	}
	if (sc.date_held95 && !sc.date_decided)
		abort();
	if (sc.point_decided && !sc.reached)
		abort();
	(void)analytics_recorded_matches(&r[0], t, y, n);
	r[1] = r[0];
	r[1].made_at = made_at + 86400;
	if (analytics_grade(r, 2, t, y, n, &g))
		abort();
	if (g.recorded != 2 || g.scored > 2 || g.dates_held95 > g.dates_decided)
		abort();
	for (size_t i = 0; i < g.nh; i++)
		if (g.h[i].scored > 2 || g.h[i].in80 > g.h[i].in95 || g.h[i].in95 > g.h[i].scored)
			abort();
	return 0;
}
