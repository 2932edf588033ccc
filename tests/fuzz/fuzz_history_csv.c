/* tests/fuzz/fuzz_history_csv.c - `analytics import` reads CSV files it cannot trust: the parser
 * must refuse or accept any bytes without a memory error, leave nothing behind on refusal, and
 * what it accepts must print (history.csv) and parse back to the same samples.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "analytics.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct analytics_history h = {0}, back = {0};
	char err[256], *csv = NULL;
	size_t len = 0;

	if (analytics_csv_parse((const char *)data, size, &h, err, sizeof(err))) {
		if (h.n || h.s)
			abort(); /* a refusal leaves nothing */
		if (!err[0])
			abort(); /* and always says why */
		return 0;
	}
	for (size_t i = 1; i < h.n; i++)
		if (h.s[i].time <= h.s[i - 1].time)
			abort();
	if (analytics_csv_write(&h, &csv, &len) ||
	    analytics_csv_parse(csv, len, &back, err, sizeof(err)) || back.n != h.n)
		abort();
	for (size_t i = 0; i < h.n; i++) {
		if (back.s[i].time != h.s[i].time)
			abort();
		for (int c = 0; c < ANALYTICS_NCOLS; c++) {
			double a = h.s[i].v[c], b = back.s[i].v[c];
			/* Fractions print with 10 significant digits. */
			if (isnan(a) != isnan(b) ||
			    (!isnan(a) && fabs(a - b) > 1e-9 * fabs(a) + 1e-12))
				abort();
		}
	}
	free(csv);
	analytics_history_free(&h);
	analytics_history_free(&back);
	return 0;
}
