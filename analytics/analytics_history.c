/* analytics/analytics_history.c - the history's columns, series and CSV form (history.csv and
 * `analytics import`). The parser treats its input as hostile: every bad line is refused with
 * its number and reason, and a refused file yields nothing.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analytics.h"

const char *const analytics_col_names[ANALYTICS_NCOLS] = {
#define ANALYTICS_COL_NAME(n, s, k) s,
    ANALYTICS_COLUMNS(ANALYTICS_COL_NAME)
#undef ANALYTICS_COL_NAME
};

const enum analytics_kind analytics_col_kinds[ANALYTICS_NCOLS] = {
#define ANALYTICS_COL_KIND(n, s, k) ANALYTICS_##k,
    ANALYTICS_COLUMNS(ANALYTICS_COL_KIND)
#undef ANALYTICS_COL_KIND
};

const char *const analytics_vol_col_names[ANALYTICS_VOL_NCOLS] = {
#define ANALYTICS_VOL_NAME(n, s, k) s,
    ANALYTICS_VOL_COLUMNS(ANALYTICS_VOL_NAME)
#undef ANALYTICS_VOL_NAME
};

int analytics_col_find(const char *name)
{
	for (int i = 0; i < ANALYTICS_NCOLS; i++)
		if (!strcmp(name, analytics_col_names[i]))
			return i;
	return -ENOENT;
}

void analytics_sample_clear(struct analytics_sample *s)
{
	s->time = 0;
	for (int i = 0; i < ANALYTICS_NCOLS; i++)
		s->v[i] = NAN;
}

bool analytics_empty(double v)
{
	return isnan(v);
}

int analytics_history_add(struct analytics_history *h, const struct analytics_sample *s)
{
	if (h->n && s->time <= h->s[h->n - 1].time)
		return -EINVAL;
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 64;
		struct analytics_sample *n = realloc(h->s, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		h->s = n;
		h->cap = cap;
	}
	h->s[h->n++] = *s;
	return 0;
}

void analytics_history_free(struct analytics_history *h)
{
	free(h->s);
	h->s = NULL;
	h->n = h->cap = 0;
}

/* ---- writing ------------------------------------------------------------------------------- */
struct out {
	char *buf;
	size_t len, cap;
	int err;
};

static void out_printf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_printf(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->err)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(o->buf ? o->buf + o->len : NULL, o->buf ? o->cap - o->len : 0, fmt,
		              ap);
		va_end(ap);
		if (n < 0) {
			o->err = -EINVAL;
			return;
		}
		if (o->buf && o->len + (size_t)n < o->cap) {
			o->len += (size_t)n;
			return;
		}
		size_t cap = o->cap ? o->cap * 2 : 4096;
		while (cap < o->len + (size_t)n + 1)
			cap *= 2;
		char *b = realloc(o->buf, cap);
		if (!b) {
			o->err = -ENOMEM;
			return;
		}
		o->buf = b;
		o->cap = cap;
	}
}

/* Whole numbers print as integers (byte counts stay exact and readable); fractions with the
 * digits a double holds. */
static void out_value(struct out *o, double v)
{
	if (isnan(v))
		return;
	if (v == floor(v) && fabs(v) < 9.2e18)
		out_printf(o, "%lld", (long long)v);
	else
		out_printf(o, "%.10g", v);
}

int analytics_csv_write(const struct analytics_history *h, char **out, size_t *len)
{
	struct out o = {0};

	out_printf(&o, "time");
	for (int c = 0; c < ANALYTICS_NCOLS; c++)
		out_printf(&o, ",%s", analytics_col_names[c]);
	out_printf(&o, "\n");
	for (size_t i = 0; i < h->n; i++) {
		out_printf(&o, "%" PRId64, h->s[i].time);
		for (int c = 0; c < ANALYTICS_NCOLS; c++) {
			out_printf(&o, ",");
			out_value(&o, h->s[i].v[c]);
		}
		out_printf(&o, "\n");
	}
	if (o.err) {
		free(o.buf);
		return o.err;
	}
	*out = o.buf;
	*len = o.len;
	return 0;
}

/* ---- parsing ------------------------------------------------------------------------------- */
struct parser {
	const char *p, *end;
	unsigned line;
	char *err;
	size_t errlen;
};

static int fail(struct parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct parser *ps, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(ps->err, ps->errlen, "line %u: ", ps->line);

	if (n >= 0 && (size_t)n < ps->errlen) {
		va_start(ap, fmt);
		vsnprintf(ps->err + n, ps->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* The next line without its end (LF or CRLF); false at the end of the text. */
static bool next_line(struct parser *ps, const char **line, size_t *len)
{
	if (ps->p >= ps->end)
		return false;
	const char *nl = memchr(ps->p, '\n', (size_t)(ps->end - ps->p));
	const char *e = nl ? nl : ps->end;
	*line = ps->p;
	*len = (size_t)(e - ps->p);
	if (*len && (*line)[*len - 1] == '\r')
		(*len)--;
	ps->p = nl ? nl + 1 : ps->end;
	ps->line++;
	return true;
}

/* Splits LINE at commas into at most MAX fields (copied, NUL-terminated, each < FLEN). Returns
 * the count, or -EINVAL (a field too long, more than MAX fields, a byte that has no business
 * in a number or a column name). */
#define FIELD_MAX 64
static int split(struct parser *ps, const char *line, size_t len, char (*f)[FIELD_MAX], int max)
{
	int n = 0;
	size_t k = 0;

	for (size_t i = 0; i <= len; i++) {
		if (i == len || line[i] == ',') {
			if (n >= max)
				return fail(ps, "more fields than the header has columns");
			f[n][k] = 0;
			n++;
			k = 0;
			continue;
		}
		unsigned char ch = (unsigned char)line[i];
		/* A field past the last one must not be stored anywhere, not even its first
		 * byte. */
		if (n >= max)
			return fail(ps, "more fields than the header has columns");
		if (ch < 0x21 || ch > 0x7e)
			return fail(ps, "unexpected byte 0x%02x in field %d", ch, n + 1);
		if (k + 1 >= FIELD_MAX)
			return fail(ps, "field %d is too long", n + 1);
		f[n][k++] = (char)ch;
	}
	return n;
}

/* A plain decimal: [-]digits[.digits][(e|E)[+-]digits]. No spaces, hex, inf or nan. */
static bool plain_number(const char *s, double *out)
{
	const char *q = s;
	char *end;
	bool digits = false;

	if (*q == '-')
		q++;
	while (*q >= '0' && *q <= '9')
		q++, digits = true;
	if (*q == '.') {
		q++;
		while (*q >= '0' && *q <= '9')
			q++, digits = true;
	}
	if (!digits)
		return false;
	if (*q == 'e' || *q == 'E') {
		q++;
		if (*q == '+' || *q == '-')
			q++;
		if (!(*q >= '0' && *q <= '9'))
			return false;
		while (*q >= '0' && *q <= '9')
			q++;
	}
	if (*q)
		return false;
	errno = 0;
	*out = strtod(s, &end);
	return !errno && *end == 0 && isfinite(*out);
}

static int check_value(struct parser *ps, int col, double v)
{
	const char *name = analytics_col_names[col];
	double lo = 0, hi;

	switch (analytics_col_kinds[col]) {
	case ANALYTICS_BYTES:
		hi = 1152921504606846976.0; /* 2^60 */
		break;
	case ANALYTICS_COUNT:
	case ANALYTICS_MEAN:
		hi = 9007199254740992.0; /* 2^53 */
		break;
	case ANALYTICS_RATIO:
		hi = 1e6;
		break;
	case ANALYTICS_PERCENT:
		hi = 255;
		break;
	case ANALYTICS_MICROS:
		hi = 3600e6;
		break;
	case ANALYTICS_CELSIUS:
		lo = -273;
		hi = 200;
		break;
	default:
		return fail(ps, "%s: unknown kind", name);
	}
	if (v < lo || v > hi)
		return fail(ps, "%s %.10g is out of range (%.10g .. %.10g)", name, v, lo, hi);
	if ((analytics_col_kinds[col] == ANALYTICS_COUNT ||
	     analytics_col_kinds[col] == ANALYTICS_BYTES) &&
	    v != floor(v))
		return fail(ps, "%s %.10g is not a whole number", name, v);
	return 0;
}

/* The header: `time,physical_used_bytes` first, then known columns once each. COLS gets the
 * column of each field after time. */
static int parse_header(struct parser *ps, const char *line, size_t len, int *cols, int *nfields)
{
	char(*f)[FIELD_MAX] = malloc((ANALYTICS_NCOLS + 1) * sizeof(*f));
	bool seen[ANALYTICS_NCOLS] = {0};
	int n, rc = 0;

	if (!f)
		return -ENOMEM;
	n = split(ps, line, len, f, ANALYTICS_NCOLS + 1);
	if (n < 0) {
		rc = n;
		goto out_free;
	}
	if (n < 2 || strcmp(f[0], "time") || strcmp(f[1], "physical_used_bytes")) {
		rc = fail(ps, "the header must start with time,physical_used_bytes");
		goto out_free;
	}
	for (int i = 1; i < n; i++) {
		int c = analytics_col_find(f[i]);
		if (c < 0) {
			rc = fail(ps, "unknown column '%s'", f[i]);
			goto out_free;
		}
		if (seen[c]) {
			rc = fail(ps, "column '%s' twice", f[i]);
			goto out_free;
		}
		seen[c] = true;
		cols[i - 1] = c;
	}
	*nfields = n;
out_free:
	free(f);
	return rc;
}

static int parse_row(struct parser *ps, const char *line, size_t len, const int *cols, int nfields,
                     int64_t prev, bool first, struct analytics_sample *s, char (*f)[FIELD_MAX])
{
	double t;
	int n = split(ps, line, len, f, nfields);

	if (n < 0)
		return n;
	if (n != nfields)
		return fail(ps, "%d fields, the header has %d", n, nfields);
	analytics_sample_clear(s);
	for (const char *q = f[0]; *q; q++)
		if (*q < '0' || *q > '9')
			return fail(ps, "time '%s' is not whole Unix seconds", f[0]);
	if (!f[0][0] || !plain_number(f[0], &t))
		return fail(ps, "time '%s' is not whole Unix seconds", f[0]);
	if (t < (double)ANALYTICS_TIME_MIN || t >= (double)ANALYTICS_TIME_MAX)
		return fail(ps, "time %s is outside 2000-01-01 .. 2100-01-01", f[0]);
	s->time = (int64_t)t;
	if (!first && s->time <= prev)
		return fail(ps, "time %" PRId64 " is not after the previous line's %" PRId64,
		            s->time, prev);
	for (int i = 1; i < nfields; i++) {
		int c = cols[i - 1];
		double v;
		if (!f[i][0])
			continue; /* empty */
		if (!plain_number(f[i], &v))
			return fail(ps, "%s '%s' is not a number", analytics_col_names[c], f[i]);
		int rc = check_value(ps, c, v);
		if (rc)
			return rc;
		s->v[c] = v;
	}
	if (analytics_empty(s->v[ANALYTICS_COL_PHYSICAL_USED]))
		return fail(ps, "physical_used_bytes is empty");
	if (!analytics_empty(s->v[ANALYTICS_COL_CAPACITY]) &&
	    s->v[ANALYTICS_COL_PHYSICAL_USED] > s->v[ANALYTICS_COL_CAPACITY])
		return fail(ps, "physical_used_bytes %.0f exceeds capacity_bytes %.0f",
		            s->v[ANALYTICS_COL_PHYSICAL_USED], s->v[ANALYTICS_COL_CAPACITY]);
	return 0;
}

int analytics_csv_parse(const char *text, size_t len, struct analytics_history *out, char *err,
                        size_t errlen)
{
	struct parser ps = {text, text + len, 0, err, errlen};
	int cols[ANALYTICS_NCOLS], nfields = 0, rc;
	char(*f)[FIELD_MAX] = NULL;
	struct analytics_sample s;
	const char *line;
	size_t ll;

	if (err && errlen)
		err[0] = 0;
	if (out->n)
		return -EINVAL;
	const char *nul = memchr(text, 0, len);
	if (nul) {
		unsigned at = 1;
		for (const char *q = text; q < nul; q++)
			at += *q == '\n';
		snprintf(err, errlen, "line %u: a NUL byte: not a CSV text file", at);
		return -EINVAL;
	}
	if (!next_line(&ps, &line, &ll)) {
		snprintf(err, errlen, "empty file: no header line");
		return -EINVAL;
	}
	rc = parse_header(&ps, line, ll, cols, &nfields);
	if (rc)
		return rc;
	f = malloc((size_t)nfields * sizeof(*f));
	if (!f)
		return -ENOMEM;
	while (next_line(&ps, &line, &ll)) {
		if (!ll && ps.p >= ps.end)
			break; /* the final newline */
		if (out->n >= ANALYTICS_IMPORT_MAX_ROWS) {
			fail(&ps, "more than %u rows", ANALYTICS_IMPORT_MAX_ROWS);
			rc = -E2BIG;
			goto err_free;
		}
		rc = parse_row(&ps, line, ll, cols, nfields, out->n ? out->s[out->n - 1].time : 0,
		               out->n == 0, &s, f);
		if (rc)
			goto err_free;
		rc = analytics_history_add(out, &s);
		if (rc)
			goto err_free;
	}
	if (!out->n) {
		snprintf(err, errlen, "no samples after the header");
		rc = -EINVAL;
		goto err_free;
	}
	free(f);
	return 0;
err_free:
	free(f);
	analytics_history_free(out);
	return rc;
}
