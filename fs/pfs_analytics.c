/* fs/pfs_analytics.c - the front's analytics: a sampler thread turns pfs_get_stats() into one
 * history row per analytics_interval (the store keeps it in SQLite), and the files and ctl
 * commands of .pstorage/analytics/ read and replace that history. Never on the I/O path: it
 * only reads counter snapshots, and writes through the store's history API.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pfs_analytics.h"
#include "pfs_tiering.h"
#include "pfs_front_int.h"

/* An import file larger than this is refused before it is read (a million rows of every
 * column is well under it). */
#define IMPORT_MAX_BYTES (512ull << 20)

/* ---- one sample ---------------------------------------------------------------------------- */
/* The latency quantile of the operations between PREV and NOW; empty when there were none. */
static double interval_quantile(const struct pfs_io_stats *now, const struct pfs_io_stats *prev,
                                double q)
{
	struct pfs_io_stats d = *now;

	if (prev) {
		if (now->ops < prev->ops)
			return NAN; /* a remount reset the counters */
		d.ops = now->ops - prev->ops;
		for (int i = 0; i <= PFS_LAT_BUCKETS; i++)
			d.lat_buckets[i] = now->lat_buckets[i] - prev->lat_buckets[i];
	}
	if (!d.ops)
		return NAN;
	return pfs_lat_quantile_us(&d, q);
}

void pfs_analytics_sample(struct pfs *p, struct pfs_sample_prev *prev, struct analytics_sample *s)
{
	struct pfs_stats st;
	struct ftl_dev_smart sm;
	double *v = s->v;

	pfs_get_stats(p, &st);
	analytics_sample_clear(s);
	s->time = (int64_t)time(NULL);
	v[ANALYTICS_COL_PHYSICAL_USED] = (double)(st.ftl.capacity_bytes - st.ftl.free_bytes);
	v[ANALYTICS_COL_PHYSICAL_FREE] = (double)st.ftl.free_bytes;
	v[ANALYTICS_COL_CAPACITY] = (double)st.ftl.capacity_bytes;
	v[ANALYTICS_COL_LOGICAL] = (double)st.logical_bytes;
	v[ANALYTICS_COL_PROVISIONED] = (double)st.provisioned_bytes;
	v[ANALYTICS_COL_STORED] = (double)st.ftl.bytes_live;
	v[ANALYTICS_COL_SNAPSHOT_LOGICAL] = (double)st.snapshot_logical_bytes;
	v[ANALYTICS_COL_VOLUMES] = (double)st.volumes;
	v[ANALYTICS_COL_SNAPSHOTS] = (double)st.snapshots;
	if (st.ftl.bytes_live)
		v[ANALYTICS_COL_REDUCTION] = (double)st.logical_bytes / (double)st.ftl.bytes_live;
	v[ANALYTICS_COL_HOST_WRITTEN] = (double)st.ftl.host_bytes_written;
	v[ANALYTICS_COL_DEVICE_WRITTEN] = (double)st.ftl.device_bytes_written;
	v[ANALYTICS_COL_ERASE_MEAN] = st.ftl.erase_mean;
	v[ANALYTICS_COL_ERASE_MAX] = (double)st.ftl.erase_max;
	v[ANALYTICS_COL_GC_MOVED] = (double)st.ftl.gc_bytes_moved;
	v[ANALYTICS_COL_READ_OPS] = (double)st.read.ops;
	v[ANALYTICS_COL_WRITE_OPS] = (double)st.write.ops;
	v[ANALYTICS_COL_READ_BYTES] = (double)st.read.bytes;
	v[ANALYTICS_COL_WRITE_BYTES] = (double)st.write.bytes;
	bool have_prev = prev && prev->valid;
	v[ANALYTICS_COL_READ_P50] =
	    interval_quantile(&st.read, have_prev ? &prev->read : NULL, 0.5);
	v[ANALYTICS_COL_READ_P99] =
	    interval_quantile(&st.read, have_prev ? &prev->read : NULL, 0.99);
	v[ANALYTICS_COL_WRITE_P50] =
	    interval_quantile(&st.write, have_prev ? &prev->write : NULL, 0.5);
	v[ANALYTICS_COL_WRITE_P99] =
	    interval_quantile(&st.write, have_prev ? &prev->write : NULL, 0.99);
	v[ANALYTICS_COL_CHECKSUM_ERRORS] = (double)st.ftl.checksum_errors;
	v[ANALYTICS_COL_LIFE_USED] = st.ftl.life_used_pct;
	/* SMART only where the device has a log of its own (an emulation repeats the FTL's
	 * counters, which are in the row already). */
	if (!pfs_flash_smart(p, &sm) && !sm.emulated) {
		v[ANALYTICS_COL_SMART_USED] = sm.percentage_used;
		v[ANALYTICS_COL_SMART_SPARE] = sm.available_spare_pct;
		v[ANALYTICS_COL_SMART_MEDIA_ERRORS] = (double)sm.media_errors;
		if (sm.has_temperature)
			v[ANALYTICS_COL_SMART_TEMPERATURE] = sm.temperature_c;
	}
	if (prev) {
		prev->valid = true;
		prev->read = st.read;
		prev->write = st.write;
	}
}

/* ---- per-volume samples ---------------------------------------------------------------------- */
struct vol_names {
	char (*name)[PFS_NAME_MAX + 1];
	size_t n, cap;
	int err;
};

/* Names only: the usage walk takes locks that must not nest under the catalogue's. */
static int collect_name(void *arg, struct pfs_vol *v, const struct pfs_vol_info *info)
{
	struct vol_names *l = arg;

	(void)v;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		void *n = realloc(l->name, cap * sizeof(*l->name));
		if (!n) {
			l->err = -ENOMEM;
			return -ENOMEM;
		}
		l->name = n;
		l->cap = cap;
	}
	snprintf(l->name[l->n++], sizeof(l->name[0]), "%s", info->name);
	return 0;
}

int pfs_analytics_sample_volumes(struct pfs *p, int64_t time)
{
	struct vol_names l = {0};
	const char **names = NULL;
	double *vals = NULL;
	size_t k = 0;
	int rc;

	rc = pfs_vol_each(p, PFS_MAP_VOLUME, 0, collect_name, &l);
	if (!rc)
		rc = l.err;
	if (rc || !l.n)
		goto out_free;
	names = calloc(l.n, sizeof(*names));
	vals = calloc(l.n * ANALYTICS_VOL_NCOLS, sizeof(*vals));
	if (!names || !vals) {
		rc = -ENOMEM;
		goto out_free;
	}
	for (size_t i = 0; i < l.n; i++) {
		struct pfs_vol *v = pfs_vol_find(p, PFS_MAP_VOLUME, 0, l.name[i]);
		struct pfs_vol_info info;
		uint64_t unique = 0, shared = 0;
		if (!v)
			continue; /* deleted meanwhile */
		pfs_vol_get_info(v, &info);
		int urc = pfs_vol_usage(p, v, false, &unique, &shared);
		pfs_vol_unref(v);
		double *row = vals + k * ANALYTICS_VOL_NCOLS;
		row[ANALYTICS_VOL_SIZE] = (double)info.size;
		row[ANALYTICS_VOL_WRITTEN] = (double)info.nz_blocks * pfs_block_size(p);
		row[ANALYTICS_VOL_UNIQUE] = urc ? NAN : (double)unique;
		row[ANALYTICS_VOL_SHARED] = urc ? NAN : (double)shared;
		names[k++] = l.name[i];
	}
	rc = pfs_history_append_volumes(p, time, k, names, vals, ANALYTICS_VOL_NCOLS);
out_free:
	free(names);
	free(vals);
	free(l.name);
	return rc;
}

/* ---- the sampler thread -------------------------------------------------------------------- */
struct pfs_sampler {
	struct pfs *p;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* CLOCK_MONOTONIC */
	bool stop;
	int last_rc;  /* log a failure once, not every interval */
	int last_frc; /* the same for recording forecasts */
};

static unsigned sampler_interval(struct pfs *p)
{
	char val[32];
	unsigned long s = 60;

	if (!pfs_config_get(p, "analytics_interval", val, sizeof(val)))
		s = strtoul(val, NULL, 10);
	return s ? (unsigned)s : 60;
}

static void *sampler_main(void *arg)
{
	struct pfs_sampler *s = arg;
	struct pfs_sample_prev prev = {0};
	struct analytics_sample smp;
	struct timespec due;
	int64_t last_vol = 0;

	clock_gettime(CLOCK_MONOTONIC, &due);
	pthread_mutex_lock(&s->lock);
	while (!s->stop) {
		/* Due times advance by whole intervals from the start, so samples do not drift
		 * by the time each one takes; a pause longer than an interval skips ahead. */
		due.tv_sec += sampler_interval(s->p);
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (due.tv_sec < now.tv_sec)
			due = now;
		while (!s->stop && pthread_cond_timedwait(&s->cond, &s->lock, &due) != ETIMEDOUT)
			;
		if (s->stop)
			break;
		pthread_mutex_unlock(&s->lock);
		pfs_analytics_sample(s->p, &prev, &smp);
		int rc = pfs_history_append(s->p, smp.time, smp.v, ANALYTICS_NCOLS);
		/* A day of history time since the last forecast of a kind: keep today's, to be
		 * graded when its horizons pass. */
		if (!rc) {
			int frc = pfs_analytics_record_forecasts(s->p, smp.time);
			if (frc && frc != s->last_frc)
				pfs_logl(LOG_WARNING,
				         "pstorfs: analytics: cannot record a forecast: %s",
				         strerror(-frc));
			s->last_frc = frc;
		}
		if (rc == -EEXIST)
			rc = 0; /* the wall clock went back, or an import reaches past now */
		/* Volumes once an hour (and at the first sample of a mount): each one's usage
		 * figures walk its map. */
		if (!rc && (!last_vol || smp.time - last_vol >= ANALYTICS_VOL_INTERVAL)) {
			rc = pfs_analytics_sample_volumes(s->p, smp.time);
			if (rc == -EEXIST)
				rc = 0;
			last_vol = smp.time;
		}
		pfs_temp_tick(s->p); /* data temperature: fold and persist (logs its own errors) */
		if (rc && rc != s->last_rc)
			pfs_logl(LOG_WARNING, "pstorfs: analytics: cannot append a sample: %s",
			         strerror(-rc));
		else if (!rc && s->last_rc)
			pfs_logl(LOG_NOTICE, "pstorfs: analytics: samples are appended again");
		s->last_rc = rc;
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

int pfs_sampler_start(struct pfs *p, struct pfs_sampler **out)
{
	struct pfs_sampler *s;
	pthread_condattr_t ca;
	int rc;

	*out = NULL;
	if (pfs_readonly(p))
		return 0;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->p = p;
	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cond, &ca);
	pthread_condattr_destroy(&ca);
	rc = pthread_create(&s->thread, NULL, sampler_main, s);
	if (rc) {
		pthread_cond_destroy(&s->cond);
		pthread_mutex_destroy(&s->lock);
		free(s);
		return -rc;
	}
	*out = s;
	return 0;
}

void pfs_sampler_stop(struct pfs_sampler *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->stop = true;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->thread, NULL);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* ---- reading the history ------------------------------------------------------------------- */
static int history_row(void *arg, int tier, int64_t time, const double *v, uint32_t n)
{
	struct analytics_history *h = arg;
	struct analytics_sample s;

	(void)tier;
	analytics_sample_clear(&s);
	s.time = time;
	for (uint32_t i = 0; i < n && i < ANALYTICS_NCOLS; i++)
		s.v[i] = v[i];
	/* Rows are in strictly increasing time (one per time across tiers); a duplicate
	 * would be a damaged table, skipped rather than failing every report. */
	int rc = analytics_history_add(h, &s);
	return rc == -EINVAL ? 0 : rc;
}

int pfs_analytics_history(struct pfs *p, struct analytics_history *h)
{
	int rc = pfs_history_each(p, history_row, h);

	if (rc)
		analytics_history_free(h);
	return rc;
}

/* ---- capacity forecast ---------------------------------------------------------------------- */
static const double capacity_horizons[] = {7, 30, 90};

int pfs_analytics_capacity_of(const struct analytics_history *h, struct analytics_capacity *c)
{
	int64_t *t = NULL;
	double *y = NULL, cap = 0;
	int rc;

	t = malloc((h->n ? h->n : 1) * sizeof(*t));
	y = malloc((h->n ? h->n : 1) * sizeof(*y));
	if (!t || !y) {
		rc = -ENOMEM;
		goto out_free;
	}
	for (size_t i = 0; i < h->n; i++) {
		t[i] = h->s[i].time;
		y[i] = h->s[i].v[ANALYTICS_COL_PHYSICAL_USED];
		/* The newest known capacity: the history alone is the truth (an imported one
		 * describes another pool). */
		if (!analytics_empty(h->s[i].v[ANALYTICS_COL_CAPACITY]))
			cap = h->s[i].v[ANALYTICS_COL_CAPACITY];
	}
	rc = analytics_capacity_forecast(t, y, h->n, cap, capacity_horizons,
	                                 sizeof(capacity_horizons) / sizeof(capacity_horizons[0]),
	                                 c);
out_free:
	free(t);
	free(y);
	return rc;
}

static void day_string(int64_t now, double days, char *out, size_t len)
{
	time_t t = (time_t)(now + (int64_t)llround(days * 86400));
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, len, "%Y-%m-%d", &tm);
}

static void json_num(struct pfs_buf *b, double v)
{
	if (!isfinite(v))
		pfs_buf_printf(b, "null");
	else if (v == floor(v) && fabs(v) < 9e15)
		pfs_buf_printf(b, "%.0f", v);
	else
		pfs_buf_printf(b, "%.6g", v);
}

static const char *const no_grade_yet = "no forecast has reached its horizon yet";

static double same(double v)
{
	return v;
}

static const struct analytics_grade_horizon *grade_at(const struct analytics_grade *g, double h)
{
	for (size_t i = 0; g && i < g->nh; i++)
		if (g->h[i].horizon_days == h)
			return &g->h[i];
	return NULL;
}

/* The error band observed on this box (G: the box's own forecasts scored against the history)
 * as JSON, absolute errors in UNIT ("bytes", "percent"), the date verdicts under DATE_KEY. */
static void grade_json(const struct analytics_grade *g, const char *unit, const char *date_key,
                       struct pfs_buf *b)
{
	/* Bytes are whole; percentages keep their fraction. */
	double (*fig)(double) = strcmp(unit, "bytes") ? same : round;

	pfs_buf_printf(b, "{\"recorded\": %u, \"scored\": %u, \"message\": ", g->recorded,
	               g->scored);
	if (g->scored)
		pfs_buf_printf(b, "null");
	else
		pfs_buf_json_str(b, no_grade_yet);
	pfs_buf_printf(b, ", \"horizons\": [");
	for (size_t i = 0; i < g->nh; i++) {
		const struct analytics_grade_horizon *h = &g->h[i];
		pfs_buf_printf(b, "%s{\"horizon_days\": ", i ? ", " : "");
		json_num(b, h->horizon_days);
		pfs_buf_printf(b, ", \"scored\": %u, \"abs_error_p50_%s\": ", h->scored, unit);
		json_num(b, fig(h->abs_p50));
		pfs_buf_printf(b, ", \"abs_error_p90_%s\": ", unit);
		json_num(b, fig(h->abs_p90));
		pfs_buf_printf(b, ", \"mean_error_%s\": ", unit);
		json_num(b, fig(h->mean_error));
		pfs_buf_printf(b, ", \"rel_error_p50\": ");
		json_num(b, h->rel_p50);
		pfs_buf_printf(b, ", \"rel_error_p90\": ");
		json_num(b, h->rel_p90);
		pfs_buf_printf(b, ", \"coverage80\": ");
		json_num(b, h->coverage80);
		pfs_buf_printf(b, ", \"coverage95\": ");
		json_num(b, h->coverage95);
		pfs_buf_printf(b, "}");
	}
	pfs_buf_printf(b, "], \"%s\": {\"decided\": %u, \"held95\": %u, \"coverage95\": ", date_key,
	               g->dates_decided, g->dates_held95);
	json_num(b, g->dates_decided ? (double)g->dates_held95 / g->dates_decided : NAN);
	pfs_buf_printf(b, ", \"reached\": %u, \"abs_error_p50_days\": ", g->dates_reached);
	json_num(b, g->date_abs_error_p50_days);
	pfs_buf_printf(b, "}}");
}

/* G as text lines under a LABEL, absolute errors divided by SCALE and shown in UNIT. */
static void grade_text(const struct analytics_grade *g, const char *label, double scale,
                       const char *unit, const char *date_label, struct pfs_buf *b)
{
	if (!g->scored) {
		pfs_buf_printf(b, "%-12s %s (%u recorded)\n", label, no_grade_yet, g->recorded);
		return;
	}
	pfs_buf_printf(b,
	               "%-12s the box's own past forecasts, scored as their horizons passed "
	               "(%u recorded, %u scored):\n",
	               label, g->recorded, g->scored);
	for (size_t i = 0; i < g->nh; i++) {
		const struct analytics_grade_horizon *h = &g->h[i];
		pfs_buf_printf(b, "  +%-3.0f days   ", h->horizon_days);
		if (!h->scored) {
			pfs_buf_printf(b, "%s\n", no_grade_yet);
			continue;
		}
		pfs_buf_printf(b,
		               "%u scored: abs error median %.3f %s, 90th pct %.3f %s (%.2g%%); "
		               "80%% held %u/%u, 95%% held %u/%u\n",
		               h->scored, h->abs_p50 / scale, unit, h->abs_p90 / scale, unit,
		               isfinite(h->rel_p90) ? 100 * h->rel_p90 : 0.0, h->in80, h->scored,
		               h->in95, h->scored);
	}
	if (g->dates_decided)
		pfs_buf_printf(b, "  %-11s 95%% interval held %u/%u decided", date_label,
		               g->dates_held95, g->dates_decided);
	else
		pfs_buf_printf(b, "  %-11s no 95%% interval decided yet", date_label);
	if (isfinite(g->date_abs_error_p50_days))
		pfs_buf_printf(b, "; point date off by %.1f days (median)",
		               g->date_abs_error_p50_days);
	pfs_buf_printf(b, "\n");
}

/* The forecasts list and the full object of C, with POINT_KEY ("used_bytes", "written_bytes")
 * for the point forecasts; INDENT before each forecast. G (may be NULL): the band observed on
 * this box at each horizon, next to the model's own interval. */
static void forecasts_json(const struct analytics_capacity *c, const char *point_key,
                           const char *indent, const struct analytics_grade *g, struct pfs_buf *b)
{
	char day[16];

	pfs_buf_printf(b, "\"forecasts\": [");
	for (size_t i = 0; i < c->nfc; i++) {
		const struct analytics_forecast_point *f = &c->fc[i];
		pfs_buf_printf(b, "%s\n%s{\"horizon_days\": ", i ? "," : "", indent);
		json_num(b, f->horizon_days);
		pfs_buf_printf(b, ", \"%s\": ", point_key);
		json_num(b, round(f->used));
		pfs_buf_printf(b, ", \"lo80_bytes\": ");
		json_num(b, round(f->lo80));
		pfs_buf_printf(b, ", \"hi80_bytes\": ");
		json_num(b, round(f->hi80));
		pfs_buf_printf(b, ", \"lo95_bytes\": ");
		json_num(b, round(f->lo95));
		pfs_buf_printf(b, ", \"hi95_bytes\": ");
		json_num(b, round(f->hi95));
		const struct analytics_grade_horizon *o = grade_at(g, f->horizon_days);
		if (g) {
			pfs_buf_printf(b,
			               ", \"observed\": {\"scored\": %u, \"abs_error_p90_bytes\": ",
			               o ? o->scored : 0);
			json_num(b, o ? round(o->abs_p90) : NAN);
			pfs_buf_printf(b, ", \"coverage80\": ");
			json_num(b, o ? o->coverage80 : NAN);
			pfs_buf_printf(b, ", \"coverage95\": ");
			json_num(b, o ? o->coverage95 : NAN);
			pfs_buf_printf(b, "}");
		}
		pfs_buf_printf(b, "}");
	}
	pfs_buf_printf(b, "], \"full\": {\"within_year\": %s",
	               c->full_within_year ? "true" : "false");
	if (c->full_within_year) {
		day_string(c->now, c->full_days, day, sizeof(day));
		pfs_buf_printf(b, ", \"days\": ");
		json_num(b, c->full_days);
		pfs_buf_printf(b, ", \"date\": \"%s\"", day);
		pfs_buf_printf(b, ", \"timestamp\": %lld",
		               (long long)(c->now + (int64_t)llround(c->full_days * 86400)));
	}
	pfs_buf_printf(b, ", \"days_lo95\": ");
	json_num(b, c->full_days_lo95 >= 0 ? c->full_days_lo95 : NAN);
	pfs_buf_printf(b, ", \"days_hi95\": ");
	json_num(b, c->full_days_hi95 >= 0 ? c->full_days_hi95 : NAN);
	pfs_buf_printf(b, "}");
}

/* The pool's object without its closing brace (the volumes follow); G the grading of the
 * box's past forecasts. */
static void capacity_json(const struct analytics_capacity *c, const struct analytics_grade *g,
                          struct pfs_buf *b)
{
	if (!c->ok) {
		pfs_buf_printf(b, "{\n  \"status\": \"insufficient_history\",\n  \"message\": ");
		pfs_buf_json_str(b, c->message);
		pfs_buf_printf(b, ",\n  \"model\": null,\n  \"forecasts\": [],\n  \"grading\": ");
		grade_json(g, "bytes", "full_date", b);
		return;
	}
	pfs_buf_printf(b, "{\n  \"status\": \"ok\",\n  \"model\": \"%s\",\n  \"time\": %lld,",
	               analytics_model_names[c->model], (long long)c->now);
	pfs_buf_printf(b, "\n  \"used_bytes\": ");
	json_num(b, c->used_now);
	pfs_buf_printf(b, ",\n  \"capacity_bytes\": ");
	json_num(b, c->capacity > 0 ? c->capacity : NAN);
	pfs_buf_printf(b, ",\n  \"growth_bytes_per_day\": ");
	json_num(b, round(c->growth_per_day));
	pfs_buf_printf(b, ",\n  \"backtest\": {\"horizon_days\": ");
	json_num(b, c->backtest_days);
	pfs_buf_printf(b, ", \"origins\": %u, \"mase\": ", c->origins);
	json_num(b, c->origins ? c->backtest_mase : NAN);
	pfs_buf_printf(b, ", \"mae_bytes\": {");
	for (int m = 0; m < ANALYTICS_NMODELS; m++) {
		pfs_buf_printf(b, "%s\"%s\": ", m ? ", " : "", analytics_model_names[m]);
		json_num(b, c->origins ? round(c->backtest_mae[m]) : NAN);
	}
	pfs_buf_printf(b, "}},\n  \"interval_widening\": {\"80\": ");
	json_num(b, c->calib80);
	pfs_buf_printf(b, ", \"95\": ");
	json_num(b, c->calib95);
	pfs_buf_printf(b, "},\n  ");
	forecasts_json(c, "used_bytes", "    ", g, b);
	pfs_buf_printf(b, ",\n  \"grading\": ");
	grade_json(g, "bytes", "full_date", b);
}

#define GIB(x) ((x) / 1073741824.0)

/* ---- per-volume forecasts of logical written ----------------------------------------------- */
static int vol_series_row(void *arg, int tier, int64_t time, const char *name, const double *v,
                          uint32_t n)
{
	struct pfs_vol_set *s = arg;
	struct pfs_vol_series *cur = s->n ? &s->v[s->n - 1] : NULL;

	(void)tier;
	if (!cur || strcmp(cur->name, name)) {
		if (s->n == s->cap) {
			size_t cap = s->cap ? s->cap * 2 : 8;
			void *nv = realloc(s->v, cap * sizeof(*s->v));
			if (!nv)
				return s->err = -ENOMEM;
			s->v = nv;
			s->cap = cap;
		}
		cur = &s->v[s->n++];
		memset(cur, 0, sizeof(*cur));
		snprintf(cur->name, sizeof(cur->name), "%s", name);
	}
	if (cur->n == cur->cap) {
		size_t cap = cur->cap ? cur->cap * 2 : 64;
		int64_t *nt = realloc(cur->t, cap * sizeof(*nt));
		if (nt)
			cur->t = nt;
		double *nw = nt ? realloc(cur->written, cap * sizeof(*nw)) : NULL;
		if (!nt || !nw)
			return s->err = -ENOMEM;
		cur->written = nw;
		cur->cap = cap;
	}
	cur->t[cur->n] = time;
	cur->written[cur->n++] = n > ANALYTICS_VOL_WRITTEN ? v[ANALYTICS_VOL_WRITTEN] : NAN;
	if (n > ANALYTICS_VOL_SIZE && isfinite(v[ANALYTICS_VOL_SIZE]))
		cur->size = v[ANALYTICS_VOL_SIZE];
	return 0;
}

int pfs_analytics_volume_series(struct pfs *p, struct pfs_vol_set *s)
{
	memset(s, 0, sizeof(*s));
	int rc = pfs_history_volumes_each(p, vol_series_row, s);

	if (!rc)
		rc = s->err;
	if (rc)
		pfs_vol_set_free(s);
	return rc;
}

void pfs_vol_set_free(struct pfs_vol_set *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i].t);
		free(s->v[i].written);
	}
	free(s->v);
	memset(s, 0, sizeof(*s));
}

int pfs_analytics_volume_forecast(const struct pfs_vol_series *v, struct analytics_capacity *c)
{
	return analytics_capacity_forecast(v->t, v->written, v->n, v->size, capacity_horizons,
	                                   sizeof(capacity_horizons) / sizeof(capacity_horizons[0]),
	                                   c);
}

/* Each volume's logical written, forecast as the pool's used bytes, its size as capacity, and
 * its own past forecasts scored as the pool's are. */
static int volumes_forecast(struct pfs *p, bool json, struct pfs_buf *b)
{
	struct pfs_vol_set s;
	struct analytics_grade *g = NULL;
	int rc = pfs_analytics_volume_series(p, &s);

	if (rc)
		return rc;
	g = calloc(s.n ? s.n : 1, sizeof(*g));
	rc = g ? pfs_analytics_grade_volumes(p, &s, g) : -ENOMEM;
	if (json)
		pfs_buf_printf(b, ",\n  \"volumes\": [");
	else if (!rc && s.n)
		pfs_buf_printf(b,
		               "\nvolumes (logical written)  now GiB   +30 days GiB (95%%)        "
		               "full               observed: +30 days 95%% held\n");
	for (size_t i = 0; i < s.n && !rc; i++) {
		struct pfs_vol_series *v = &s.v[i];
		struct analytics_capacity c;
		rc = pfs_analytics_volume_forecast(v, &c);
		if (rc)
			break;
		if (json) {
			pfs_buf_printf(b, "%s\n    {\"name\": ", i ? "," : "");
			pfs_buf_json_str(b, v->name);
			if (!c.ok) {
				pfs_buf_printf(
				    b, ", \"status\": \"insufficient_history\", \"message\": ");
				pfs_buf_json_str(b, c.message);
				pfs_buf_printf(
				    b, ", \"model\": null, \"forecasts\": [], \"grading\": ");
				grade_json(&g[i], "bytes", "full_date", b);
				pfs_buf_printf(b, "}");
				continue;
			}
			pfs_buf_printf(
			    b, ", \"status\": \"ok\", \"model\": \"%s\", \"written_bytes\": ",
			    analytics_model_names[c.model]);
			json_num(b, c.used_now);
			pfs_buf_printf(b, ", \"size_bytes\": ");
			json_num(b, v->size);
			pfs_buf_printf(b, ", \"growth_bytes_per_day\": ");
			json_num(b, round(c.growth_per_day));
			pfs_buf_printf(b, ", ");
			forecasts_json(&c, "written_bytes", "      ", &g[i], b);
			pfs_buf_printf(b, ", \"grading\": ");
			grade_json(&g[i], "bytes", "full_date", b);
			pfs_buf_printf(b, "}");
			continue;
		}
		if (!c.ok) {
			pfs_buf_printf(b, "  %-24s %s\n", v->name, c.message);
			continue;
		}
		const struct analytics_grade_horizon *o = grade_at(&g[i], 30);
		char held[32] = "none scored yet";
		if (o && o->scored)
			snprintf(held, sizeof(held), "%u/%u", o->in95, o->scored);
		pfs_buf_printf(b, "  %-24s %7.2f   %7.2f (%.2f .. %.2f)   ", v->name,
		               GIB(c.used_now), GIB(c.fc[1].used), GIB(c.fc[1].lo95),
		               GIB(c.fc[1].hi95));
		char full[32];
		if (c.full_within_year)
			snprintf(full, sizeof(full), "in %.0f days", c.full_days);
		else
			snprintf(full, sizeof(full), "not within a year");
		pfs_buf_printf(b, "%-18s %s\n", full, held);
	}
	if (json)
		pfs_buf_printf(b, "%s]\n}\n", s.n ? "\n  " : "");
	free(g);
	pfs_vol_set_free(&s);
	return rc;
}

static void capacity_text(const struct analytics_capacity *c, const struct analytics_grade *g,
                          struct pfs_buf *b)
{
	char day[16];

	if (!c->ok) {
		pfs_buf_printf(b, "capacity forecast: %s\n", c->message);
		grade_text(g, "observed", 1073741824.0, "GiB", "full date", b);
		return;
	}
	day_string(c->now, 0, day, sizeof(day));
	pfs_buf_printf(b, "capacity forecast from the history (newest sample %s UTC)\n", day);
	if (c->capacity > 0)
		pfs_buf_printf(b, "used now     %.2f GiB of %.2f GiB (%.1f%%)\n", GIB(c->used_now),
		               GIB(c->capacity), 100 * c->used_now / c->capacity);
	else
		pfs_buf_printf(b, "used now     %.2f GiB\n", GIB(c->used_now));
	pfs_buf_printf(b, "growth       %+.3f GiB/day\n", GIB(c->growth_per_day));
	pfs_buf_printf(b, "model        %s, chosen by a backtest %.0f days ahead from %u origins\n",
	               analytics_model_names[c->model], c->backtest_days, c->origins);
	if (c->origins) {
		pfs_buf_printf(b, "backtest     mean abs error:");
		for (int m = 0; m < ANALYTICS_NMODELS; m++)
			pfs_buf_printf(b, " %s %.3f GiB%s", analytics_model_names[m],
			               GIB(c->backtest_mae[m]),
			               m + 1 < ANALYTICS_NMODELS ? "," : "");
		pfs_buf_printf(b, " (MASE %.2f)\n", c->backtest_mase);
	}
	pfs_buf_printf(b, "horizon      used GiB       80%% interval           95%% interval"
	                  "       observed here: 90%% of errors within, held 80%%/95%%\n");
	for (size_t i = 0; i < c->nfc; i++) {
		const struct analytics_forecast_point *f = &c->fc[i];
		const struct analytics_grade_horizon *o = grade_at(g, f->horizon_days);
		pfs_buf_printf(b, "+%-3.0f days   %10.2f   %8.2f .. %8.2f   %8.2f .. %8.2f",
		               f->horizon_days, GIB(f->used), GIB(f->lo80), GIB(f->hi80),
		               GIB(f->lo95), GIB(f->hi95));
		if (o && o->scored)
			pfs_buf_printf(b, "   +-%.2f GiB, %u/%u %u/%u\n", GIB(o->abs_p90), o->in80,
			               o->scored, o->in95, o->scored);
		else
			pfs_buf_printf(b, "   none scored yet\n");
	}
	if (c->capacity <= 0) {
		pfs_buf_printf(b, "full         unknown (no capacity in the history)\n");
	} else if (!c->full_within_year) {
		pfs_buf_printf(b, "full         not within a year");
		if (c->full_days_lo95 >= 0)
			pfs_buf_printf(b, " (95%%: from %.0f days)", c->full_days_lo95);
		pfs_buf_printf(b, "\n");
	} else {
		day_string(c->now, c->full_days, day, sizeof(day));
		pfs_buf_printf(b, "full         in %.0f days (%s); 95%%: %.0f .. ", c->full_days,
		               day, c->full_days_lo95);
		if (c->full_days_hi95 >= 0)
			pfs_buf_printf(b, "%.0f days\n", c->full_days_hi95);
		else
			pfs_buf_printf(b, "beyond a year\n");
	}
	grade_text(g, "observed", 1073741824.0, "GiB", "full date", b);
}

/* ---- pictures ------------------------------------------------------------------------------- */
/* CAPACITY: physical used in GiB against the pool's capacity. WEAR: life used (SMART percentage
 * used where the device has a log, else the FTL's) against 100%. */
static int file_svg(struct pfs *p, bool wear, struct pfs_buf *b)
{
	static const double horizons[] = {1, 7, 14, 30, 45, 60, 75, 90};
	struct analytics_history h = {0};
	struct analytics_capacity c;
	struct ftl_dev_smart sm;
	int64_t *t = NULL;
	double *y = NULL, limit = 0;
	char *svg = NULL;
	size_t len = 0;
	int col = ANALYTICS_COL_PHYSICAL_USED, rc;

	if (wear)
		col = !pfs_flash_smart(p, &sm) && !sm.emulated ? ANALYTICS_COL_SMART_USED
		                                               : ANALYTICS_COL_LIFE_USED;
	rc = pfs_analytics_history(p, &h);
	if (rc)
		return rc;
	t = malloc((h.n ? h.n : 1) * sizeof(*t));
	y = malloc((h.n ? h.n : 1) * sizeof(*y));
	if (!t || !y) {
		rc = -ENOMEM;
		goto out_free;
	}
	for (size_t i = 0; i < h.n; i++) {
		t[i] = h.s[i].time;
		y[i] = h.s[i].v[col];
		if (!wear && !analytics_empty(h.s[i].v[ANALYTICS_COL_CAPACITY]))
			limit = h.s[i].v[ANALYTICS_COL_CAPACITY];
	}
	if (wear)
		limit = 100;
	rc = analytics_capacity_forecast(t, y, h.n, limit, horizons,
	                                 sizeof(horizons) / sizeof(horizons[0]), &c);
	if (!rc)
		rc = analytics_svg_chart(wear ? "pstorfs flash wear: life used"
		                              : "pstorfs capacity: physical bytes used",
		                         t, y, h.n, &c, wear ? 1 : 1073741824.0,
		                         wear ? "life used, %" : "used, GiB", &svg, &len);
	if (!rc)
		pfs_buf_printf(b, "%.*s", (int)len, svg);
out_free:
	free(svg);
	free(t);
	free(y);
	analytics_history_free(&h);
	return rc;
}

/* ---- health -------------------------------------------------------------------------------- */
struct pfs_health {
	struct analytics_health grade;
	struct analytics_health_input in;
	struct ftl_dev_smart smart;
	bool have_smart;
	/* The wear-out forecast: when life used (SMART percentage used where the device has a
	 * log, else the FTL's erase counts over the rated endurance) reaches 100%. */
	const char *wear_source;
	struct analytics_capacity wear, spare;
	bool spare_known;
	/* The box's past wear-out forecasts, scored against the history. */
	struct analytics_grade wear_grade;
};

/* Write amplification between the samples nearest to FROM and TO seconds before the newest
 * (NAN when the history does not reach that far or a remount reset the counters). */
static double history_wa(const struct analytics_history *h, int64_t from, int64_t to)
{
	const struct analytics_sample *a = NULL, *b = NULL;
	int64_t now;

	if (!h->n)
		return NAN;
	now = h->s[h->n - 1].time;
	for (size_t i = 0; i < h->n; i++) {
		if (h->s[i].time <= now - from)
			a = &h->s[i];
		if (h->s[i].time <= now - to)
			b = &h->s[i];
	}
	if (!a || !b || a == b)
		return NAN;
	double dev = b->v[ANALYTICS_COL_DEVICE_WRITTEN] - a->v[ANALYTICS_COL_DEVICE_WRITTEN];
	double host = b->v[ANALYTICS_COL_HOST_WRITTEN] - a->v[ANALYTICS_COL_HOST_WRITTEN];
	if (!(host > 0) || !(dev >= 0))
		return NAN;
	return dev / host;
}

/* The days until column COL (or 100 - it, for the spare) reaches LIMIT, by the capacity
 * models on the history. */
static int history_reach(const struct analytics_history *h, int col, bool falling, double limit,
                         struct analytics_capacity *out)
{
	static const double horizons[] = {30, 90, 365};
	int64_t *t = malloc((h->n ? h->n : 1) * sizeof(*t));
	double *y = malloc((h->n ? h->n : 1) * sizeof(*y));
	int rc;

	if (!t || !y) {
		free(t);
		free(y);
		return -ENOMEM;
	}
	for (size_t i = 0; i < h->n; i++) {
		t[i] = h->s[i].time;
		y[i] = falling && !analytics_empty(h->s[i].v[col]) ? 100 - h->s[i].v[col]
		                                                   : h->s[i].v[col];
	}
	rc = analytics_capacity_forecast(t, y, h->n, falling ? 100 - limit : limit, horizons,
	                                 sizeof(horizons) / sizeof(horizons[0]), out);
	free(t);
	free(y);
	return rc;
}

int pfs_analytics_wearout_of(struct pfs *p, const struct analytics_history *h,
                             struct analytics_capacity *c, int *column)
{
	struct ftl_dev_smart sm;

	*column = !pfs_flash_smart(p, &sm) && !sm.emulated ? ANALYTICS_COL_SMART_USED
	                                                   : ANALYTICS_COL_LIFE_USED;
	return history_reach(h, *column, false, 100, c);
}

static double full_days(const struct analytics_capacity *c)
{
	return c->ok && c->full_within_year ? c->full_days : NAN;
}

/* ---- the report cache ---------------------------------------------------------------------- */
/* The reports (capacity, health, metrics) are mostly forecasts of the history, whose newest
 * sample is "now" (issue 12): the same history gives the same figures, and fitting them with
 * their rolling-origin backtests costs tens of ms against a year of history, too much for a
 * scrape every second. So what comes from the history alone (the history itself, whose
 * length is the metrics' sample count, the capacity forecast, the rendered capacity files, the
 * health's wear and spare reach, write amplification and wear grading) is kept for one (store,
 * history generation) and recomputed once the generation moves (pfs_history_generation: every
 * history, per-volume or forecast write moves it). The capacity files' per-volume part (a
 * forecast of every volume) is kept for its own generation (pfs_history_volume_generation),
 * which a pool row alone does not move. What is live (stats counters, SMART, scrub
 * counts) is read at every report, and the SMART the health's parts were computed for is part of
 * their key.
 *
 * Invariants:
 *  1. An entry is filled only from reads made after its generation was taken (the generation
 *     is read under acache.lock, before any SQLite read): a write that lands during the fill
 *     moves the generation after its commit, so the next report recomputes. A figure served
 *     is therefore never older than the history was when the report began.
 *  2. acache.lock guards every field. It is held while a part is computed, SQLite reads
 *     included: readers arriving while the history changed compute it once, not once each.
 *     The sampler never takes it (it writes under commit_lock and the metadata's lock, which
 *     a filling reader holds only for each walk, as it did without the cache), so a slow
 *     report never delays a sample. Lock order: acache.lock, then the store's locks.
 *  3. One entry for the process: a daemon serves one store; a process with several (tests)
 *     refills it when the store changes. The key is (store, generation), and a generation is
 *     never reused by any store, so a new store at a freed one's address never matches. */
struct health_hist {
	/* The key beyond the generation: the SMART the device reports (the wear column and the
	 * spare threshold come from it). */
	bool have_smart;
	unsigned spare_threshold;
	bool life_known; /* the newest sample has life used */
	double life_used_pct;
	double wa_recent, wa_before;
	struct analytics_capacity wear, spare;
	struct analytics_grade wear_grade;
};

static struct {
	pthread_mutex_t lock;
	const struct pfs *store; /* compared, never dereferenced */
	uint64_t gen;
	bool have_h, have_cap, have_health;
	struct analytics_history h;
	struct analytics_capacity cap;
	struct health_hist health;
	struct pfs_buf capacity_file[2]; /* text, JSON; data NULL: not rendered yet */
	/* The capacity files' per-volume part, for (vol_store, vol_gen): the pool's rows come
	 * every minute, a volume's every hour, and this part forecasts every volume. */
	const struct pfs *vol_store;
	uint64_t vol_gen;
	bool have_vol_part[2];
	struct pfs_buf vol_part[2];
	uint64_t hits, fills;
} acache = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Takes acache.lock and makes the entry P's at P's current generation (emptied when it was
 * another's). */
static void cache_enter(struct pfs *p)
{
	pthread_mutex_lock(&acache.lock);
	uint64_t gen = pfs_history_generation(p);
	if (acache.store == p && acache.gen == gen)
		return;
	analytics_history_free(&acache.h);
	pfs_buf_free(&acache.capacity_file[0]);
	pfs_buf_free(&acache.capacity_file[1]);
	acache.have_h = acache.have_cap = acache.have_health = false;
	acache.store = p;
	acache.gen = gen;
}

static void cache_leave(void)
{
	pthread_mutex_unlock(&acache.lock);
}

/* Counts a part found (HIT) or computed. */
static void cache_count(bool hit)
{
	if (hit)
		acache.hits++;
	else
		acache.fills++;
}

void pfs_analytics_cache_counts(uint64_t *hits, uint64_t *fills)
{
	pthread_mutex_lock(&acache.lock);
	*hits = acache.hits;
	*fills = acache.fills;
	pthread_mutex_unlock(&acache.lock);
}

static int cache_history(struct pfs *p)
{
	if (acache.have_h)
		return 0;
	int rc = pfs_analytics_history(p, &acache.h);
	acache.have_h = !rc;
	return rc;
}

static int cache_capacity(struct pfs *p)
{
	cache_count(acache.have_cap);
	if (acache.have_cap)
		return 0;
	int rc = cache_history(p);
	if (!rc)
		rc = pfs_analytics_capacity_of(&acache.h, &acache.cap);
	acache.have_cap = !rc;
	return rc;
}

int pfs_analytics_capacity(struct pfs *p, struct analytics_capacity *c)
{
	cache_enter(p);
	int rc = cache_capacity(p);
	if (!rc)
		*c = acache.cap;
	cache_leave();
	return rc;
}

/* The per-volume part of the capacity files, kept for the per-volume generation (invariant 1
 * with pfs_history_volume_generation: read before the per-volume history is). */
static int cache_volumes_part(struct pfs *p, bool json)
{
	uint64_t gen = pfs_history_volume_generation(p);
	int rc = 0;

	if (acache.vol_store != p || acache.vol_gen != gen) {
		for (int i = 0; i < 2; i++) {
			pfs_buf_free(&acache.vol_part[i]);
			acache.have_vol_part[i] = false;
		}
		acache.vol_store = p;
		acache.vol_gen = gen;
	}
	cache_count(acache.have_vol_part[json]);
	if (acache.have_vol_part[json])
		return 0;
	rc = volumes_forecast(p, json, &acache.vol_part[json]);
	if (!rc)
		rc = acache.vol_part[json].err;
	if (rc)
		pfs_buf_free(&acache.vol_part[json]);
	else
		acache.have_vol_part[json] = true;
	return rc;
}

static int render_capacity(struct pfs *p, bool json, struct pfs_buf *b)
{
	struct analytics_grade g;
	int rc = cache_capacity(p);

	if (!rc)
		rc = pfs_analytics_grade_kind(p, PFS_GRADE_CAPACITY, ANALYTICS_COL_PHYSICAL_USED,
		                              &acache.h, &g);
	if (!rc)
		rc = cache_volumes_part(p, json);
	if (rc)
		return rc;
	if (json)
		capacity_json(&acache.cap, &g, b);
	else
		capacity_text(&acache.cap, &g, b);
	const struct pfs_buf *v = &acache.vol_part[json];
	if (v->len)
		pfs_buf_printf(b, "%.*s", (int)v->len, v->data);
	return b->err;
}

/* Every line of the capacity files comes from the history, the per-volume history and the
 * recorded forecasts: the rendered text is kept whole. */
static int file_capacity(struct pfs *p, bool json, struct pfs_buf *b)
{
	struct pfs_buf *f = &acache.capacity_file[json];
	int rc = 0;

	cache_enter(p);
	cache_count(f->data != NULL);
	if (!f->data) {
		rc = render_capacity(p, json, f);
		if (rc)
			pfs_buf_free(f);
	}
	if (!rc && f->data)
		pfs_buf_printf(b, "%.*s", (int)f->len, f->data);
	cache_leave();
	return rc;
}

/* The health's parts that come from the history, for a device with (HAVE_SMART) or without
 * SMART and that spare threshold. */
static int cache_health(struct pfs *p, bool have_smart, unsigned spare_threshold)
{
	struct health_hist *hh = &acache.health;
	int wear_col = have_smart ? ANALYTICS_COL_SMART_USED : ANALYTICS_COL_LIFE_USED;
	bool hit = acache.have_health && hh->have_smart == have_smart &&
	           (!have_smart || hh->spare_threshold == spare_threshold);
	int rc;

	cache_count(hit);
	if (hit)
		return 0;
	acache.have_health = false;
	rc = cache_history(p);
	if (rc)
		return rc;
	const struct analytics_history *h = &acache.h;
	hh->have_smart = have_smart;
	hh->spare_threshold = spare_threshold;
	/* Life used as the history's newest sample has it: the reports describe the history
	 * (an imported one too), whose newest sample is now. */
	hh->life_known = h->n && !analytics_empty(h->s[h->n - 1].v[ANALYTICS_COL_LIFE_USED]);
	hh->life_used_pct = hh->life_known ? h->s[h->n - 1].v[ANALYTICS_COL_LIFE_USED] : NAN;
	hh->wa_recent = history_wa(h, 7 * 86400, 0);
	hh->wa_before = history_wa(h, 14 * 86400, 7 * 86400);
	rc = history_reach(h, wear_col, false, 100, &hh->wear);
	if (!rc)
		rc = pfs_analytics_grade_kind(p, PFS_GRADE_WEAROUT, wear_col, h, &hh->wear_grade);
	if (!rc && have_smart)
		rc = history_reach(h, ANALYTICS_COL_SMART_SPARE, true, spare_threshold, &hh->spare);
	acache.have_health = !rc;
	return rc;
}

int pfs_analytics_health(struct pfs *p, struct pfs_health *hl)
{
	struct pfs_stats st;
	int rc;

	memset(hl, 0, sizeof(*hl));
	pfs_get_stats(p, &st);
	hl->have_smart = !pfs_flash_smart(p, &hl->smart) && !hl->smart.emulated;
	struct analytics_health_input *in = &hl->in;
	*in = (struct analytics_health_input){
	    .life_used_pct = st.ftl.life_used_pct,
	    .smart = hl->have_smart,
	    .percentage_used = NAN,
	    .spare_pct = NAN,
	    .spare_threshold_pct = NAN,
	    .media_errors = NAN,
	    .temperature_c = NAN,
	    .checksum_errors = (double)st.ftl.checksum_errors,
	    .read_errors = (double)(st.ftl.read_errors + st.io_errors),
	    .damaged_refs = (double)st.damaged_refs,
	    .commit_errors = (double)st.commit_errors,
	    .wearout_days = NAN,
	    .spare_days = NAN,
	};
	struct pfs_scrub_counts sc;
	in->scrub_found_damage = pfs_scrub_counts(p, &sc);
	in->scrub_damaged_chunks = (double)sc.damaged_chunks;
	in->scrub_blocks_failing = (double)sc.blocks_failing;
	in->scrub_at_risk = (double)sc.at_risk;
	in->scrub_metadata = (double)sc.metadata;
	if (hl->have_smart) {
		in->critical_warning = hl->smart.critical_warning;
		in->percentage_used = hl->smart.percentage_used;
		in->spare_pct = hl->smart.available_spare_pct;
		in->spare_threshold_pct = hl->smart.available_spare_threshold;
		in->media_errors = (double)hl->smart.media_errors;
		if (hl->smart.has_temperature)
			in->temperature_c = hl->smart.temperature_c;
	}
	hl->wear_source = hl->have_smart ? "smart_percentage_used" : "life_used_percent";
	cache_enter(p);
	rc = cache_health(p, hl->have_smart, hl->smart.available_spare_threshold);
	if (!rc) {
		const struct health_hist *hh = &acache.health;
		if (hh->life_known)
			in->life_used_pct = hh->life_used_pct;
		in->wa_recent = hh->wa_recent;
		in->wa_before = hh->wa_before;
		hl->wear = hh->wear;
		hl->wear_grade = hh->wear_grade;
		hl->spare_known = hl->have_smart;
		if (hl->spare_known)
			hl->spare = hh->spare;
	}
	cache_leave();
	if (rc)
		return rc;
	in->wearout_days = full_days(&hl->wear);
	if (hl->spare_known)
		in->spare_days = full_days(&hl->spare);
	analytics_health_grade(in, &hl->grade);
	return 0;
}

static void reach_json(const struct analytics_capacity *c, struct pfs_buf *b)
{
	char day[16];

	if (!c->ok) {
		pfs_buf_printf(b, "{\"status\": \"insufficient_history\", \"message\": ");
		pfs_buf_json_str(b, c->message);
		pfs_buf_printf(b, "}");
		return;
	}
	pfs_buf_printf(b, "{\"status\": \"ok\", \"model\": \"%s\", \"within_year\": %s",
	               analytics_model_names[c->model], c->full_within_year ? "true" : "false");
	if (c->full_within_year) {
		day_string(c->now, c->full_days, day, sizeof(day));
		pfs_buf_printf(b, ", \"days\": %.0f, \"date\": \"%s\", \"timestamp\": %lld",
		               c->full_days, day,
		               (long long)(c->now + (int64_t)llround(c->full_days * 86400)));
	}
	pfs_buf_printf(b, ", \"days_lo95\": ");
	json_num(b, c->full_days_lo95 >= 0 ? c->full_days_lo95 : NAN);
	pfs_buf_printf(b, ", \"days_hi95\": ");
	json_num(b, c->full_days_hi95 >= 0 ? c->full_days_hi95 : NAN);
	pfs_buf_printf(b, "}");
}

static void reach_text(const char *what, const struct analytics_capacity *c, struct pfs_buf *b)
{
	char day[16];

	if (!c->ok) {
		pfs_buf_printf(b, "%-12s %s\n", what, c->message);
	} else if (!c->full_within_year) {
		pfs_buf_printf(b, "%-12s not within a year (%s)\n", what,
		               analytics_model_names[c->model]);
	} else {
		day_string(c->now, c->full_days, day, sizeof(day));
		pfs_buf_printf(b, "%-12s in %.0f days (%s); 95%%: %.0f .. ", what, c->full_days,
		               day, c->full_days_lo95);
		if (c->full_days_hi95 >= 0)
			pfs_buf_printf(b, "%.0f days (%s)\n", c->full_days_hi95,
			               analytics_model_names[c->model]);
		else
			pfs_buf_printf(b, "beyond a year (%s)\n", analytics_model_names[c->model]);
	}
}

static const char *const percentage_used_note =
    "NVMe percentage_used is the vendor's estimate of rated life used; it may pass 100 "
    "(up to 255) without a failure";

static int file_health(struct pfs *p, bool json, struct pfs_buf *b)
{
	struct pfs_health hl;
	int rc = pfs_analytics_health(p, &hl);
	const struct analytics_health *g = &hl.grade;

	if (rc)
		return rc;
	if (json) {
		pfs_buf_printf(b, "{\n  \"status\": \"%s\",\n  \"reasons\": [",
		               analytics_health_names[g->status]);
		for (unsigned i = 0; i < g->nreasons; i++) {
			pfs_buf_printf(b, "%s\n    {\"level\": \"%s\", \"text\": ", i ? "," : "",
			               analytics_health_names[g->reason[i].level]);
			pfs_buf_json_str(b, g->reason[i].text);
			pfs_buf_printf(b, "}");
		}
		pfs_buf_printf(b, "%s],\n  \"life_used_percent\": ", g->nreasons ? "\n  " : "");
		json_num(b, hl.in.life_used_pct);
		pfs_buf_printf(b, ",\n  \"smart\": ");
		if (hl.have_smart) {
			pfs_buf_printf(
			    b,
			    "{\"percentage_used\": %u, \"available_spare_percent\": %u, "
			    "\"available_spare_threshold_percent\": %u, \"media_errors\": "
			    "%llu, \"critical_warning\": %u, \"note\": ",
			    hl.smart.percentage_used, hl.smart.available_spare_pct,
			    hl.smart.available_spare_threshold,
			    (unsigned long long)hl.smart.media_errors, hl.smart.critical_warning);
			pfs_buf_json_str(b, percentage_used_note);
			pfs_buf_printf(b, "}");
		} else {
			pfs_buf_printf(b, "null");
		}
		pfs_buf_printf(b, ",\n  \"checksum_errors\": %.0f,\n  \"read_errors\": %.0f,",
		               hl.in.checksum_errors, hl.in.read_errors);
		pfs_buf_printf(b, "\n  \"write_amplification\": {\"last_7_days\": ");
		json_num(b, hl.in.wa_recent);
		pfs_buf_printf(b, ", \"previous_7_days\": ");
		json_num(b, hl.in.wa_before);
		pfs_buf_printf(b, "},\n  \"wearout\": ");
		reach_json(&hl.wear, b);
		pfs_buf_printf(
		    b, ",\n  \"wearout_source\": \"%s\",\n  \"wearout_grading\": ", hl.wear_source);
		grade_json(&hl.wear_grade, "percent", "wearout_date", b);
		pfs_buf_printf(b, ",\n  \"spare\": ");
		if (hl.spare_known)
			reach_json(&hl.spare, b);
		else
			pfs_buf_printf(b, "null");
		pfs_buf_printf(b, "\n}\n");
		return 0;
	}
	pfs_buf_printf(b, "health       %s\n", analytics_health_names[g->status]);
	for (unsigned i = 0; i < g->nreasons; i++)
		pfs_buf_printf(b, "  %-9s  %s\n", analytics_health_names[g->reason[i].level],
		               g->reason[i].text);
	pfs_buf_printf(b, "life used    %.2f%% (FTL: mean erase count / rated endurance)\n",
	               hl.in.life_used_pct);
	if (hl.have_smart)
		pfs_buf_printf(
		    b,
		    "SMART        percentage used %u%%, spare %u%% (threshold %u%%), %llu "
		    "media errors\n             (%s)\n",
		    hl.smart.percentage_used, hl.smart.available_spare_pct,
		    hl.smart.available_spare_threshold, (unsigned long long)hl.smart.media_errors,
		    percentage_used_note);
	else
		pfs_buf_printf(b,
		               "SMART        none on this device (the FTL's counters stand in)\n");
	pfs_buf_printf(b, "errors       %.0f checksum, %.0f read\n", hl.in.checksum_errors,
	               hl.in.read_errors);
	if (isfinite(hl.in.wa_recent) && isfinite(hl.in.wa_before))
		pfs_buf_printf(b, "write ampl.  %.2f last 7 days, %.2f the 7 before\n",
		               hl.in.wa_recent, hl.in.wa_before);
	else if (isfinite(hl.in.wa_recent))
		pfs_buf_printf(b, "write ampl.  %.2f last 7 days\n", hl.in.wa_recent);
	reach_text("wear-out", &hl.wear, b);
	grade_text(&hl.wear_grade, "wear graded", 1, "%", "wear-out", b);
	if (hl.spare_known)
		reach_text("spare low", &hl.spare, b);
	return 0;
}

/* ---- metrics ------------------------------------------------------------------------------- */
void pfs_analytics_metrics(struct pfs *p, struct pfs_buf *b)
{
	static const struct {
		const char *name, *help;
		size_t off;
	} bounds[] = {
	    {"used", "Forecast physical bytes used",
	     offsetof(struct analytics_forecast_point, used)},
	    {"lo80", "Lower bound of the 80% prediction interval of physical bytes used",
	     offsetof(struct analytics_forecast_point, lo80)},
	    {"hi80", "Upper bound of the 80% prediction interval of physical bytes used",
	     offsetof(struct analytics_forecast_point, hi80)},
	    {"lo95", "Lower bound of the 95% prediction interval of physical bytes used",
	     offsetof(struct analytics_forecast_point, lo95)},
	    {"hi95", "Upper bound of the 95% prediction interval of physical bytes used",
	     offsetof(struct analytics_forecast_point, hi95)},
	};
	struct analytics_capacity c;
	uint64_t rows = 0;

	struct pfs_health hl;

	/* The samples the reports see: the history the capacity and health parts use. */
	cache_enter(p);
	cache_count(acache.have_h);
	int rc = cache_history(p);
	rows = acache.h.n;
	cache_leave();
	if (rc)
		return;
	if (!pfs_analytics_health(p, &hl)) {
		pfs_buf_printf(b,
		               "# HELP pstorfs_health_status Health grade: 0 ok, 1 warning, 2 "
		               "critical (.pstorage/analytics/health).\n"
		               "# TYPE pstorfs_health_status gauge\n"
		               "pstorfs_health_status %d\n",
		               (int)hl.grade.status);
		if (hl.wear.ok && hl.wear.full_within_year)
			pfs_buf_printf(
			    b,
			    "# HELP pstorfs_wearout_timestamp_seconds When the flash is "
			    "forecast to reach its rated endurance (Unix time).\n"
			    "# TYPE pstorfs_wearout_timestamp_seconds gauge\n"
			    "pstorfs_wearout_timestamp_seconds %lld\n",
			    (long long)(hl.wear.now + (int64_t)llround(hl.wear.full_days * 86400)));
	}
	pfs_buf_printf(b,
	               "# HELP pstorfs_analytics_history_samples Rows in the counter history.\n"
	               "# TYPE pstorfs_analytics_history_samples gauge\n"
	               "pstorfs_analytics_history_samples %llu\n",
	               (unsigned long long)rows);
	if (pfs_analytics_capacity(p, &c) || !c.ok)
		return;
	for (size_t k = 0; k < sizeof(bounds) / sizeof(bounds[0]); k++) {
		pfs_buf_printf(b,
		               "# HELP pstorfs_capacity_forecast_%s_bytes %s, by days ahead of the "
		               "newest sample.\n# TYPE pstorfs_capacity_forecast_%s_bytes gauge\n",
		               bounds[k].name, bounds[k].help, bounds[k].name);
		for (size_t i = 0; i < c.nfc; i++)
			pfs_buf_printf(
			    b, "pstorfs_capacity_forecast_%s_bytes{horizon_days=\"%.0f\"} %.0f\n",
			    bounds[k].name, c.fc[i].horizon_days,
			    *(const double *)((const char *)&c.fc[i] + bounds[k].off));
	}
	if (c.full_within_year)
		pfs_buf_printf(b,
		               "# HELP pstorfs_capacity_full_timestamp_seconds When the pool is "
		               "forecast to fill (Unix time).\n"
		               "# TYPE pstorfs_capacity_full_timestamp_seconds gauge\n"
		               "pstorfs_capacity_full_timestamp_seconds %lld\n",
		               (long long)(c.now + (int64_t)llround(c.full_days * 86400)));
}

/* ---- files --------------------------------------------------------------------------------- */
static int vol_row(void *arg, int tier, int64_t time, const char *name, const double *v, uint32_t n)
{
	struct pfs_buf *b = arg;

	(void)tier;
	pfs_buf_printf(b, "%lld,%s", (long long)time, name);
	for (uint32_t c = 0; c < ANALYTICS_VOL_NCOLS; c++) {
		if (c < n && isfinite(v[c]))
			pfs_buf_printf(b, ",%.0f", v[c]);
		else
			pfs_buf_printf(b, ",");
	}
	pfs_buf_printf(b, "\n");
	return 0;
}

static int file_volumes_csv(struct pfs *p, struct pfs_buf *b)
{
	pfs_buf_printf(b, "time,volume");
	for (int c = 0; c < ANALYTICS_VOL_NCOLS; c++)
		pfs_buf_printf(b, ",%s", analytics_vol_col_names[c]);
	pfs_buf_printf(b, "\n");
	return pfs_history_volumes_each(p, vol_row, b);
}

const char *const pfs_analytics_files[] = {
    "history.csv",  "volumes.csv", "capacity",    "capacity.json",    "health",  "health.json",
    "capacity.svg", "wear.svg",    "temperature", "temperature.json", "tiering", "tiering.json",
};
const unsigned pfs_analytics_nfiles = sizeof(pfs_analytics_files) / sizeof(pfs_analytics_files[0]);

static int file_history_csv(struct pfs *p, struct pfs_buf *b)
{
	struct analytics_history h = {0};
	char *csv = NULL;
	size_t len = 0;
	int rc = pfs_analytics_history(p, &h);

	if (rc)
		return rc;
	rc = analytics_csv_write(&h, &csv, &len);
	analytics_history_free(&h);
	if (rc)
		return rc;
	pfs_buf_printf(b, "%.*s", (int)len, csv);
	free(csv);
	return 0;
}

int pfs_analytics_file(struct pfs *p, unsigned i, struct pfs_buf *b)
{
	switch (i) {
	case 0:
		return file_history_csv(p, b);
	case 1:
		return file_volumes_csv(p, b);
	case 2:
		return file_capacity(p, false, b);
	case 3:
		return file_capacity(p, true, b);
	case 4:
		return file_health(p, false, b);
	case 5:
		return file_health(p, true, b);
	case 6:
		return file_svg(p, false, b);
	case 7:
		return file_svg(p, true, b);
	case 8:
		return pfs_temperature_report(p, false, b);
	case 9:
		return pfs_temperature_report(p, true, b);
	case 10:
		return pfs_tiering_report(p, false, b);
	case 11:
		return pfs_tiering_report(p, true, b);
	default:
		return -ENOENT;
	}
}

/* ---- analytics import ---------------------------------------------------------------------- */
static int read_file(struct pfs *p, const char *path, char **out, size_t *len)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	int fd, rc = 0;

	/* O_NONBLOCK: a FIFO named here must not hang the ctl write (it is refused below). A
	 * path that cannot be opened is ENOENT when missing, EINVAL otherwise (fs/README.md). */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		rc = -errno;
		pfs_set_msg(p, "%s", strerror(-rc));
		return rc == -ENOENT ? rc : -EINVAL;
	}
	if (fstat(fd, &st)) {
		rc = -errno;
		pfs_set_msg(p, "%s", strerror(-rc));
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		pfs_set_msg(p, "not a regular file");
		rc = -EINVAL;
		goto out_close;
	}
	if ((uint64_t)st.st_size > IMPORT_MAX_BYTES) {
		pfs_set_msg(p, "larger than %llu MiB", IMPORT_MAX_BYTES >> 20);
		rc = -EINVAL;
		goto out_close;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		rc = -ENOMEM;
		goto out_close;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			pfs_set_msg(p, "%s", strerror(-rc));
			goto out_free;
		}
		if (n == 0)
			break; /* shrank meanwhile: parse what is there */
		got += (size_t)n;
	}
	buf[got] = 0;
	*out = buf;
	*len = got;
	buf = NULL;
out_free:
	free(buf);
out_close:
	close(fd);
	return rc;
}

int pfs_analytics_import(struct pfs *p, const char *path)
{
	struct analytics_history h = {0};
	struct pfs_grade_keep keep = {0};
	char err[256], *text = NULL;
	int64_t *times = NULL;
	double *vals = NULL;
	size_t len = 0;
	int rc;

	if (pfs_readonly(p)) {
		pfs_set_msg(p, "the pool is mounted read-only");
		return -EROFS;
	}
	if (path[0] != '/') {
		/* The daemon's working directory is / once it detaches: a relative path would
		 * not mean what the caller's shell meant. */
		pfs_set_msg(p, "the path must be absolute");
		return -EINVAL;
	}
	rc = read_file(p, path, &text, &len);
	if (rc)
		return rc;
	rc = analytics_csv_parse(text, len, &h, err, sizeof(err));
	free(text);
	if (rc) {
		pfs_set_msg(p, "%s", err[0] ? err : strerror(-rc));
		return rc;
	}
	times = malloc(h.n * sizeof(*times));
	vals = malloc(h.n * sizeof(double) * ANALYTICS_NCOLS);
	if (!times || !vals) {
		rc = -ENOMEM;
		goto out_free;
	}
	for (size_t i = 0; i < h.n; i++) {
		times[i] = h.s[i].time;
		memcpy(vals + i * ANALYTICS_NCOLS, h.s[i].v, sizeof(h.s[i].v));
	}
	/* The recorded forecasts the new history still holds (it extends the old one) keep
	 * their chance to be graded; the rest describe a history that is gone. */
	rc = pfs_analytics_grade_keep(p, &h, &keep);
	if (rc) {
		pfs_set_msg(p, "cannot read the recorded forecasts: %s", strerror(-rc));
		goto out_free;
	}
	rc = pfs_history_replace_keep(p, h.n, times, vals, ANALYTICS_NCOLS, keep.n, keep.kinds,
	                              keep.made_at);
	if (rc) {
		pfs_set_msg(p, "cannot store the history: %s", strerror(-rc));
		goto out_free;
	}
	/* The imported history's newest sample is now: the forecasts made from it are kept as
	 * a lived history's would be. The history is in; a failure here only costs today's
	 * forecast (the sampler's next row tries again). */
	int frc = h.n ? pfs_analytics_record_forecasts(p, h.s[h.n - 1].time) : 0;
	pfs_set_msg(p, "ok: imported %zu samples; kept %zu of %zu recorded forecasts%s%s", h.n,
	            keep.n, keep.all, frc ? "; cannot record a forecast: " : "",
	            frc ? strerror(-frc) : "");
out_free:
	pfs_grade_keep_free(&keep);
	free(times);
	free(vals);
	analytics_history_free(&h);
	return rc;
}
