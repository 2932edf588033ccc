/* fs/base/pfs_util.c - small helpers of the fs module: time, size and name parsing, the daemon
 * log and a growable text buffer for reports.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "pfs_base.h"

int64_t pfs_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int pfs_parse_size(const char *s, uint64_t *out)
{
	const char *q = s;
	uint64_t v = 0, mul = 1;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	for (; isdigit((unsigned char)*q); q++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*q - '0');
	}
	switch (toupper((unsigned char)*q)) {
	case '\0':
		break;
	case 'K':
		mul = 1ull << 10;
		break;
	case 'M':
		mul = 1ull << 20;
		break;
	case 'G':
		mul = 1ull << 30;
		break;
	case 'T':
		mul = 1ull << 40;
		break;
	case 'P':
		mul = 1ull << 50;
		break;
	default:
		return -EINVAL;
	}
	if (*q) {
		q++;
		/* Accept "10G", "10GB" and "10GiB". */
		if (toupper((unsigned char)*q) == 'I')
			q++;
		if (toupper((unsigned char)*q) == 'B')
			q++;
		if (*q)
			return -EINVAL;
	}
	if (v > UINT64_MAX / mul)
		return -ERANGE;
	*out = v * mul;
	return 0;
}

bool pfs_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > PFS_NAME_MAX || name[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (!isalnum(c) && c != '.' && c != '_' && c != '-')
			return false;
	}
	return true;
}

static void (*_Atomic log_sink)(int level, const char *line);

void pfs_logl_set_sink(void (*sink)(int level, const char *line))
{
	log_sink = sink;
}

void pfs_logl(int level, const char *fmt, ...)
{
	void (*sink)(int, const char *) = log_sink;
	va_list ap;

	va_start(ap, fmt);
	/* The daemon's stderr is /dev/null once it detached; syslog is where an operator looks. */
	vsyslog(level, fmt, ap);
	va_end(ap);
	if (sink) {
		char line[1024];
		va_start(ap, fmt);
		vsnprintf(line, sizeof(line), fmt, ap);
		va_end(ap);
		sink(level, line);
	}
}

FILE *pfs_progress_tty(FILE *f, bool quiet)
{
	return !quiet && f && isatty(fileno(f)) ? f : NULL;
}

void pfs_progress_begin(struct pfs_progress *pr, FILE *f, const char *what, const char *unit)
{
	*pr = (struct pfs_progress){.f = f, .what = what, .unit = unit};
	pr->start_ns = pfs_now_ns();
}

void pfs_progress_update(struct pfs_progress *pr, uint64_t done, uint64_t total)
{
	if (!pr->f)
		return;
	int64_t now = pfs_now_ns();
	/* The first and the last update are drawn, so even quick work leaves a trace. */
	if (pr->drawn && done < total && now - pr->last_ns < 200000000)
		return;
	pr->last_ns = now;
	double secs = (double)(now - pr->start_ns) / 1e9, pct = total ? 100.0 * done / total : 100;
	double rate = secs > 0 ? done / secs : 0;
	int n;
	if (pr->unit)
		n = fprintf(pr->f, "\r%s: %5.1f%% (%llu/%llu %s, %.0f %s/s)", pr->what, pct,
		            (unsigned long long)done, (unsigned long long)total, pr->unit, rate,
		            pr->unit);
	else
		n = fprintf(pr->f, "\r%s: %5.1f%% (%.0f/%.0f MiB, %.0f MiB/s)", pr->what, pct,
		            done / 1048576.0, total / 1048576.0, rate / 1048576.0);
	/* Blank what a longer line before left behind. */
	for (int i = n; i < pr->drawn; i++)
		fputc(' ', pr->f);
	if (n > pr->drawn)
		pr->drawn = n;
	fflush(pr->f);
}

void pfs_progress_end(struct pfs_progress *pr)
{
	if (!pr->f || !pr->drawn)
		return;
	fprintf(pr->f, "\r%*s\r", pr->drawn, "");
	fflush(pr->f);
	pr->drawn = 0;
}

void pfs_buf_printf(struct pfs_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->err)
		return;
	for (;;) {
		size_t room = b->cap - b->len;
		va_start(ap, fmt);
		n = vsnprintf(b->data ? b->data + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->err = -EINVAL;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap * 2 : 4096;
		while (cap - b->len <= (size_t)n)
			cap *= 2;
		char *d = realloc(b->data, cap);
		if (!d) {
			b->err = -ENOMEM;
			return;
		}
		b->data = d;
		b->cap = cap;
	}
}

void pfs_buf_json_str(struct pfs_buf *b, const char *s)
{
	pfs_buf_printf(b, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			pfs_buf_printf(b, "\\%c", c);
		else if (c < 0x20)
			pfs_buf_printf(b, "\\u%04x", c);
		else
			pfs_buf_printf(b, "%c", c);
	}
	pfs_buf_printf(b, "\"");
}

void pfs_buf_free(struct pfs_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

int pfs_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static const struct {
	int err;
	const char *text;
} pfs_errors[PFS_ERR_COUNT] = {
#define PFS_ERR_ROW(n, e, s) [PFS_ERR_##n] = {e, s},
    PFS_ERRORS(PFS_ERR_ROW)
#undef PFS_ERR_ROW
};

const char *pfs_err_text(enum pfs_err e)
{
	return (unsigned)e < PFS_ERR_COUNT ? pfs_errors[e].text : "unknown error";
}

int pfs_err_errno(enum pfs_err e)
{
	return (unsigned)e < PFS_ERR_COUNT ? -pfs_errors[e].err : -EIO;
}

int pfs_err_format(char *out, size_t len, enum pfs_err e, int rc, const char *subject)
{
	if (rc < 0)
		snprintf(out, len, "%s: %s: %s", subject, pfs_err_text(e), strerror(-rc));
	else
		snprintf(out, len, "%s: %s", subject, pfs_err_text(e));
	return rc < 0 ? rc : pfs_err_errno(e);
}
