/* tests/analytics/test_analytics_csv.c - the history's CSV form: what history.csv prints parses
 * back to the same samples, and every kind of bad import is refused with its line and reason,
 * leaving nothing behind.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analytics.h"

static int parse(const char *text, struct analytics_history *h, char *err, size_t errlen)
{
	return analytics_csv_parse(text, strlen(text), h, err, errlen);
}

Test(analytics_csv, write_then_parse_is_the_identity)
{
	struct analytics_history h = {0}, back = {0};
	struct analytics_sample s;
	char *csv, err[256];
	size_t len;

	for (int i = 0; i < 5; i++) {
		analytics_sample_clear(&s);
		s.time = 1700000000 + i * 60;
		s.v[ANALYTICS_COL_PHYSICAL_USED] = 1e9 + i * 4096;
		s.v[ANALYTICS_COL_CAPACITY] = 1e12;
		s.v[ANALYTICS_COL_ERASE_MEAN] = 1.25 + i;
		s.v[ANALYTICS_COL_SMART_TEMPERATURE] = -5 + i;
		if (i != 2)
			s.v[ANALYTICS_COL_READ_P99] = 123.5;
		cr_assert_eq(analytics_history_add(&h, &s), 0);
	}
	cr_assert_eq(analytics_csv_write(&h, &csv, &len), 0);
	cr_expect_eq(strncmp(csv, "time,physical_used_bytes,", 25), 0, "%.40s", csv);
	cr_assert_eq(analytics_csv_parse(csv, len, &back, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(back.n, h.n);
	for (size_t i = 0; i < h.n; i++) {
		cr_expect_eq(back.s[i].time, h.s[i].time);
		for (int c = 0; c < ANALYTICS_NCOLS; c++) {
			double a = h.s[i].v[c], b = back.s[i].v[c];
			if (isnan(a))
				cr_expect(isnan(b), "row %zu %s", i, analytics_col_names[c]);
			else
				cr_expect_eq(a, b, "row %zu %s: %g vs %g", i,
				             analytics_col_names[c], a, b);
		}
	}
	free(csv);
	analytics_history_free(&h);
	analytics_history_free(&back);
}

Test(analytics_csv, accepts_a_subset_of_columns_crlf_and_no_final_newline)
{
	struct analytics_history h = {0};
	char err[256];

	cr_assert_eq(parse("time,physical_used_bytes,volumes\r\n1700000000,10,1\r\n1700000060,20,",
	                   &h, err, sizeof(err)),
	             0, "%s", err);
	cr_assert_eq(h.n, 2);
	cr_expect_eq(h.s[1].v[ANALYTICS_COL_PHYSICAL_USED], 20);
	cr_expect(isnan(h.s[1].v[ANALYTICS_COL_VOLUMES]), "empty field is empty");
	cr_expect(isnan(h.s[0].v[ANALYTICS_COL_CAPACITY]), "absent column is empty");
	analytics_history_free(&h);
}

/* Each bad input: refused with -EINVAL, nothing in the history, and ERR names the problem. */
struct bad {
	const char *text, *want;
};

static void expect_refused(const struct bad *b)
{
	struct analytics_history h = {0};
	char err[256] = "";
	int rc = parse(b->text, &h, err, sizeof(err));

	cr_expect_eq(rc, -EINVAL, "accepted: %s", b->text);
	cr_expect_eq(h.n, 0);
	cr_expect_null(h.s);
	cr_expect_not_null(strstr(err, b->want), "'%s': error '%s' lacks '%s'", b->text, err,
	                   b->want);
}

Test(analytics_csv, refuses_bad_headers)
{
	static const struct bad cases[] = {
	    {"", "no header"},
	    {"physical_used_bytes,time\n1700000000,1\n", "must start with time,physical_used"},
	    {"time\n1700000000\n", "must start with"},
	    {"time,physical_used_bytes,bogus\n1700000000,1,2\n", "unknown column 'bogus'"},
	    {"time,physical_used_bytes,volumes,volumes\n1700000000,1,2,2\n", "twice"},
	    {"time,physical_used_bytes,physical_used_bytes\n1,1,1\n", "twice"},
	    {"time, physical_used_bytes\n1700000000,1\n", "line 1: unexpected byte 0x20"},
	    {"time,physical_used_bytes\n", "no samples"},
	    {"\"time\",\"physical_used_bytes\"\n1700000000,1\n", "must start with"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_refused(&cases[i]);
}

Test(analytics_csv, refuses_bad_times)
{
	static const struct bad cases[] = {
	    {"time,physical_used_bytes\n1700000060,1\n1700000000,2\n",
	     "line 3: time 1700000000 is not after the previous line's 1700000060"},
	    {"time,physical_used_bytes\n1700000000,1\n1700000000,2\n",
	     "line 3: time 1700000000 is not after"},
	    {"time,physical_used_bytes\n1700000000.5,1\n", "not whole Unix seconds"},
	    {"time,physical_used_bytes\n-1700000000,1\n", "not whole Unix seconds"},
	    {"time,physical_used_bytes\n1e9,1\n", "not whole Unix seconds"},
	    {"time,physical_used_bytes\n,1\n", "not whole Unix seconds"},
	    {"time,physical_used_bytes\n12,1\n", "outside 2000-01-01"},
	    {"time,physical_used_bytes\n99999999999,1\n", "outside 2000-01-01"},
	    {"time,physical_used_bytes\n99999999999999999999999,1\n", "outside 2000-01-01"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_refused(&cases[i]);
}

Test(analytics_csv, refuses_garbage_and_absurd_values)
{
	static const struct bad cases[] = {
	    {"time,physical_used_bytes\n1700000000,abc\n",
	     "physical_used_bytes 'abc' is not a number"},
	    {"time,physical_used_bytes\n1700000000,nan\n", "is not a number"},
	    {"time,physical_used_bytes\n1700000000,inf\n", "is not a number"},
	    {"time,physical_used_bytes\n1700000000,0x10\n", "is not a number"},
	    {"time,physical_used_bytes\n1700000000,1e999\n", "is not a number"},
	    {"time,physical_used_bytes\n1700000000,1.2.3\n", "is not a number"},
	    {"time,physical_used_bytes\n1700000000,\n", "physical_used_bytes is empty"},
	    {"time,physical_used_bytes\n1700000000,-5\n", "out of range"},
	    {"time,physical_used_bytes\n1700000000,1e30\n", "out of range"},
	    {"time,physical_used_bytes\n1700000000,10.5\n", "not a whole number"},
	    {"time,physical_used_bytes,smart_percentage_used\n1700000000,1,300\n", "out of range"},
	    {"time,physical_used_bytes,smart_temperature_celsius\n1700000000,1,-300\n",
	     "out of range"},
	    {"time,physical_used_bytes,reduction_ratio\n1700000000,1,-1\n", "out of range"},
	    {"time,physical_used_bytes,volumes\n1700000000,1,2.5\n", "not a whole number"},
	    {"time,physical_used_bytes,capacity_bytes\n1700000000,200,100\n",
	     "exceeds capacity_bytes"},
	    {"time,physical_used_bytes\n1700000000,1,2\n", "more fields than the header"},
	    {"time,physical_used_bytes,volumes\n1700000000,1\n", "2 fields, the header has 3"},
	    {"time,physical_used_bytes\n1700000000,1\n\n1700000060,2\n", "line 3: 1 fields"},
	    {"time,physical_used_bytes\n1700000000,1 \n", "unexpected byte 0x20"},
	    {"time,physical_used_bytes\n1700000000,\"1\"\n", "is not a number"},
	    {"time,physical_used_bytes\n1700000000,1\xff\n", "unexpected byte 0xff"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_refused(&cases[i]);
}

Test(analytics_csv, refuses_nul_bytes_and_overlong_fields)
{
	struct analytics_history h = {0};
	char err[256], text[256];
	const char nul[] = "time,physical_used_bytes\n1700000000,1\0\n";

	cr_expect_eq(analytics_csv_parse(nul, sizeof(nul) - 1, &h, err, sizeof(err)), -EINVAL);
	cr_expect_not_null(strstr(err, "line 2: a NUL byte"), "%s", err);
	snprintf(text, sizeof(text), "time,physical_used_bytes\n1700000000,%0100d\n", 1);
	expect_refused(&(struct bad){text, "too long"});
	cr_expect_eq(h.n, 0);
}

Test(analytics_csv, refuses_a_parse_into_a_non_empty_history)
{
	struct analytics_history h = {0};
	struct analytics_sample s;
	char err[64];

	analytics_sample_clear(&s);
	s.time = 1700000000;
	cr_assert_eq(analytics_history_add(&h, &s), 0);
	cr_expect_eq(parse("time,physical_used_bytes\n1700000000,1\n", &h, err, sizeof(err)),
	             -EINVAL);
	cr_expect_eq(h.n, 1);
	analytics_history_free(&h);
}

Test(analytics_csv, history_add_keeps_time_strictly_increasing)
{
	struct analytics_history h = {0};
	struct analytics_sample s;

	analytics_sample_clear(&s);
	s.time = 100;
	cr_assert_eq(analytics_history_add(&h, &s), 0);
	cr_expect_eq(analytics_history_add(&h, &s), -EINVAL);
	s.time = 99;
	cr_expect_eq(analytics_history_add(&h, &s), -EINVAL);
	s.time = 101;
	cr_expect_eq(analytics_history_add(&h, &s), 0);
	cr_expect_eq(h.n, 2);
	analytics_history_free(&h);
}
