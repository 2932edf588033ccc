/* analytics/analytics_svg.c - the capacity and wear charts as SVG a browser opens: history,
 * forecast cone, the limit and the day it is reached. Plain SVG 1.1 (no scripts, no external
 * fonts or links), so any renderer draws it; text is escaped.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "analytics.h"

#define W  800.0
#define H  400.0
#define ML 70.0 /* margins: left (y labels), right, top (title), bottom (dates) */
#define MR 20.0
#define MT 40.0
#define MB 40.0

struct svg {
	char *buf;
	size_t len, cap;
	int err;
	double t0, t1, y1; /* the axes: time (s) and value (scaled) ranges */
};

static void put(struct svg *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct svg *s, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (s->err)
		return;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		s->err = -EINVAL;
		return;
	}
	if (s->len + (size_t)n + 1 > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8192;
		while (cap < s->len + (size_t)n + 1)
			cap *= 2;
		char *b = realloc(s->buf, cap);
		if (!b) {
			s->err = -ENOMEM;
			return;
		}
		s->buf = b;
		s->cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(s->buf + s->len, s->cap - s->len, fmt, ap);
	va_end(ap);
	s->len += (size_t)n;
}

static void put_text(struct svg *s, const char *text)
{
	for (const char *q = text; *q; q++) {
		switch (*q) {
		case '<':
			put(s, "&lt;");
			break;
		case '>':
			put(s, "&gt;");
			break;
		case '&':
			put(s, "&amp;");
			break;
		case '"':
			put(s, "&quot;");
			break;
		default:
			if ((unsigned char)*q >= 0x20)
				put(s, "%c", *q);
		}
	}
}

static double px(const struct svg *s, double t)
{
	return ML + (t - s->t0) / (s->t1 - s->t0) * (W - ML - MR);
}

static double py(const struct svg *s, double v)
{
	double f = v / s->y1;
	if (f < 0)
		f = 0;
	if (f > 1.02)
		f = 1.02;
	return H - MB - f * (H - MT - MB);
}

static void date_label(double t, char *out, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, len, "%Y-%m-%d", &tm);
}

/* A band between two bounds of the forecast, from now out to its last horizon. */
static void band(struct svg *s, const struct analytics_capacity *c, double scale, size_t lo_off,
                 size_t hi_off, const char *fill)
{
	put(s, "<polygon fill=\"%s\" stroke=\"none\" points=\"%.1f,%.1f", fill,
	    px(s, (double)c->now), py(s, c->used_now / scale));
	for (size_t i = 0; i < c->nfc; i++) {
		double v = *(const double *)((const char *)&c->fc[i] + hi_off);
		put(s, " %.1f,%.1f", px(s, (double)c->now + c->fc[i].horizon_days * 86400),
		    py(s, v / scale));
	}
	for (size_t i = c->nfc; i-- > 0;) {
		double v = *(const double *)((const char *)&c->fc[i] + lo_off);
		put(s, " %.1f,%.1f", px(s, (double)c->now + c->fc[i].horizon_days * 86400),
		    py(s, v / scale));
	}
	put(s, "\"/>\n");
}

int analytics_svg_chart(const char *title, const int64_t *t, const double *y, size_t n,
                        const struct analytics_capacity *c, double y_scale, const char *y_unit,
                        char **out, size_t *len)
{
	struct svg s = {0};
	double ymax = 0, tmin = INFINITY, tmax = -INFINITY;
	char day[16];
	bool fc = c && c->ok && c->nfc;

	for (size_t i = 0; i < n; i++)
		if (!isnan(y[i])) {
			if (y[i] / y_scale > ymax)
				ymax = y[i] / y_scale;
			if (t[i] < tmin)
				tmin = (double)t[i];
			if (t[i] > tmax)
				tmax = (double)t[i];
		}
	if (fc) {
		for (size_t i = 0; i < c->nfc; i++)
			if (c->fc[i].hi95 / y_scale > ymax)
				ymax = c->fc[i].hi95 / y_scale;
		tmax = (double)c->now + c->fc[c->nfc - 1].horizon_days * 86400;
	}
	if (c && c->capacity > 0 && c->capacity / y_scale > ymax)
		ymax = c->capacity / y_scale;
	if (!isfinite(tmin)) {
		tmin = 0;
		tmax = 1;
	}
	if (tmax <= tmin)
		tmax = tmin + 3600;
	s.t0 = tmin;
	s.t1 = tmax;
	s.y1 = ymax > 0 ? ymax * 1.05 : 1;

	put(&s, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	        "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"800\" "
	        "height=\"400\" viewBox=\"0 0 800 400\" font-family=\"sans-serif\" "
	        "font-size=\"12\">\n<rect width=\"800\" height=\"400\" fill=\"white\"/>\n"
	        "<text x=\"400\" y=\"24\" text-anchor=\"middle\" font-size=\"16\">");
	put_text(&s, title);
	put(&s, "</text>\n");
	/* Axes, value grid and labels. */
	for (int k = 0; k <= 4; k++) {
		double v = s.y1 * k / 4;
		put(&s,
		    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n"
		    "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.3g</text>\n",
		    ML, py(&s, v), W - MR, py(&s, v), ML - 6, py(&s, v) + 4, v);
	}
	put(&s,
	    "<text x=\"12\" y=\"%.1f\" transform=\"rotate(-90 12 %.1f)\" "
	    "text-anchor=\"middle\">",
	    H / 2, H / 2);
	put_text(&s, y_unit);
	put(&s, "</text>\n");
	for (int k = 0; k <= 4; k++) {
		double tt = s.t0 + (s.t1 - s.t0) * k / 4;
		date_label(tt, day, sizeof(day));
		put(&s,
		    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>\n"
		    "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\">%s</text>\n",
		    px(&s, tt), MT, px(&s, tt), H - MB, px(&s, tt), H - MB + 18,
		    k == 0   ? "start"
		    : k == 4 ? "end"
		             : "middle",
		    day);
	}
	put(&s, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n", ML,
	    H - MB, W - MR, H - MB);
	put(&s, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n", ML,
	    MT, ML, H - MB);
	/* The forecast cone under the lines. */
	if (fc) {
		band(&s, c, y_scale, offsetof(struct analytics_forecast_point, lo95),
		     offsetof(struct analytics_forecast_point, hi95), "#dbe8f7");
		band(&s, c, y_scale, offsetof(struct analytics_forecast_point, lo80),
		     offsetof(struct analytics_forecast_point, hi80), "#b3cdee");
		put(&s,
		    "<polyline fill=\"none\" stroke=\"#1f5fae\" stroke-width=\"2\" "
		    "stroke-dasharray=\"6,4\" points=\"%.1f,%.1f",
		    px(&s, (double)c->now), py(&s, c->used_now / y_scale));
		for (size_t i = 0; i < c->nfc; i++)
			put(&s, " %.1f,%.1f",
			    px(&s, (double)c->now + c->fc[i].horizon_days * 86400),
			    py(&s, c->fc[i].used / y_scale));
		put(&s, "\"/>\n");
	}
	/* The history. */
	put(&s, "<polyline fill=\"none\" stroke=\"#1f5fae\" stroke-width=\"2\" points=\"");
	for (size_t i = 0; i < n; i++)
		if (!isnan(y[i]))
			put(&s, "%.1f,%.1f ", px(&s, (double)t[i]), py(&s, y[i] / y_scale));
	put(&s, "\"/>\n");
	if (c && c->capacity > 0) {
		put(&s,
		    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#c0392b\" "
		    "stroke-width=\"1.5\"/>\n<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" "
		    "fill=\"#c0392b\">limit %.3g</text>\n",
		    ML, py(&s, c->capacity / y_scale), W - MR, py(&s, c->capacity / y_scale),
		    W - MR, py(&s, c->capacity / y_scale) - 4, c->capacity / y_scale);
		double tf =
		    c->ok && c->full_within_year ? (double)c->now + c->full_days * 86400 : NAN;
		if (isfinite(tf) && tf <= s.t1) {
			date_label(tf, day, sizeof(day));
			put(&s,
			    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
			    "stroke=\"#c0392b\" "
			    "stroke-dasharray=\"3,3\"/>\n<text x=\"%.1f\" y=\"%.1f\" "
			    "text-anchor=\"end\" fill=\"#c0392b\">full %s</text>\n",
			    px(&s, tf), MT, px(&s, tf), H - MB, px(&s, tf) - 4, MT + 14, day);
		} else if (c->ok && c->full_within_year) {
			date_label(tf, day, sizeof(day));
			put(&s,
			    "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" fill=\"#c0392b\">full "
			    "%s (beyond the chart)</text>\n",
			    W - MR, MT + 14, day);
		}
	}
	if (c && !c->ok) {
		put(&s, "<text x=\"400\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#555\">", H / 2);
		put_text(&s, c->message);
		put(&s, "</text>\n");
	} else if (fc) {
		put(&s,
		    "<text x=\"%.1f\" y=\"%.1f\" fill=\"#555\">model %s; bands: 80%% and 95%% "
		    "prediction intervals</text>\n",
		    ML + 6, MT + 14, analytics_model_names[c->model]);
	}
	put(&s, "</svg>\n");
	if (s.err) {
		free(s.buf);
		return s.err;
	}
	*out = s.buf;
	*len = s.len;
	return 0;
}
