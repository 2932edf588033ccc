/* fs/pfs_temperature.c - the temperature reports: .pstorage/analytics/temperature[.json] (each
 * volume and the pool), .pstorage/volumes/NAME/temperature and the metrics' class gauges, from
 * the store's tracker (fs/vol/pfs_temp.c). Reads only; each report walks the volumes' maps.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pfs_analytics.h"
#include "pfs_front_int.h"

struct temp_vol {
	char name[PFS_NAME_MAX + 1];
	uint64_t written;
	struct pfs_temp_usage u;
	int rc;
};

struct temp_pool {
	struct temp_vol *v;
	size_t n, cap;
	uint64_t bytes[PFS_TEMP_CLASSES], written;
	int err;
};

/* Names only: the walks take locks that must not nest under the catalogue's. */
static int collect(void *arg, struct pfs_vol *v, const struct pfs_vol_info *info)
{
	struct temp_pool *t = arg;

	(void)v;
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		void *n = realloc(t->v, cap * sizeof(*t->v));
		if (!n) {
			t->err = -ENOMEM;
			return -ENOMEM;
		}
		t->v = n;
		t->cap = cap;
	}
	memset(&t->v[t->n], 0, sizeof(t->v[0]));
	snprintf(t->v[t->n++].name, sizeof(t->v[0].name), "%s", info->name);
	return 0;
}

/* The pool's figures of the last walk, for the metrics: a scrape every few seconds must not walk
 * every map each time (a TiB written is a million map pages). POOL_CACHE_NS at most old. */
#define POOL_CACHE_NS (60ll * 1000000000)
static pthread_mutex_t pool_cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	const struct pfs *p;
	int64_t mount_ns; /* with P: the same mount, not a new store at the same address */
	int64_t at_ns;
	uint64_t bytes[PFS_TEMP_CLASSES];
} pool_cache;

static void pool_cache_put(struct pfs *p, const struct temp_pool *t)
{
	pthread_mutex_lock(&pool_cache_lock);
	pool_cache.p = p;
	pool_cache.mount_ns = pfs_mount_time_ns(p);
	pool_cache.at_ns = pfs_now_ns();
	memcpy(pool_cache.bytes, t->bytes, sizeof(pool_cache.bytes));
	pthread_mutex_unlock(&pool_cache_lock);
}

static bool pool_cache_get(struct pfs *p, uint64_t *bytes)
{
	bool hit;

	pthread_mutex_lock(&pool_cache_lock);
	hit = pool_cache.p == p && pool_cache.mount_ns == pfs_mount_time_ns(p) &&
	      pfs_now_ns() - pool_cache.at_ns < POOL_CACHE_NS;
	if (hit)
		memcpy(bytes, pool_cache.bytes, sizeof(pool_cache.bytes));
	pthread_mutex_unlock(&pool_cache_lock);
	return hit;
}

static int pool_walk(struct pfs *p, struct temp_pool *t)
{
	int rc;

	memset(t, 0, sizeof(*t));
	rc = pfs_vol_each(p, PFS_MAP_VOLUME, 0, collect, t);
	if (!rc)
		rc = t->err;
	if (rc)
		return rc;
	for (size_t i = 0; i < t->n; i++) {
		struct temp_vol *tv = &t->v[i];
		struct pfs_vol *v = pfs_vol_find(p, PFS_MAP_VOLUME, 0, tv->name);
		struct pfs_vol_info info;
		if (!v) {
			tv->rc = -ENOENT; /* deleted meanwhile */
			continue;
		}
		pfs_vol_get_info(v, &info);
		tv->written = (uint64_t)info.nz_blocks * pfs_block_size(p);
		tv->rc = pfs_temp_vol_usage(p, v, &tv->u);
		pfs_vol_unref(v);
		if (tv->rc)
			continue;
		for (int c = 0; c < PFS_TEMP_CLASSES; c++)
			t->bytes[c] += tv->u.bytes[c];
		t->written += tv->written;
	}
	pool_cache_put(p, t);
	return 0;
}

static void iso_time(int64_t t, char *out, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!t || !gmtime_r(&tt, &tm)) {
		snprintf(out, len, "never");
		return;
	}
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void thresholds_text(const struct pfs_temp_thresholds *th, struct pfs_buf *b)
{
	pfs_buf_printf(b,
	               "thresholds  hot: heat >= %u (accesses, half-life %u s), warm: accessed "
	               "within %u s, cold: within %u s, frozen: older\n",
	               th->hot_heat, th->half_life, th->cold_after, th->frozen_after);
}

static void thresholds_json(const struct pfs_temp_thresholds *th, struct pfs_buf *b)
{
	pfs_buf_printf(b,
	               "  \"thresholds\": {\"temp_hot_heat\": %u, \"temp_half_life\": %u, "
	               "\"temp_cold_after\": %u, \"temp_frozen_after\": %u},\n",
	               th->hot_heat, th->half_life, th->cold_after, th->frozen_after);
}

static void classes_json(const uint64_t *bytes, uint64_t written, struct pfs_buf *b)
{
	pfs_buf_printf(b, "\"written_bytes\": %llu", (unsigned long long)written);
	for (int c = 0; c < PFS_TEMP_CLASSES; c++)
		pfs_buf_printf(b, ", \"%s_bytes\": %llu", pfs_temp_class_name(c),
		               (unsigned long long)bytes[c]);
}

static void hottest_json(const struct pfs_temp_usage *u, struct pfs_buf *b)
{
	pfs_buf_printf(b, ", \"hottest\": [");
	for (unsigned i = 0; i < u->nhottest; i++)
		pfs_buf_printf(b, "%s{\"offset\": %llu, \"heat\": %.3f, \"last_access\": %lld}",
		               i ? ", " : "", (unsigned long long)u->hottest[i].offset,
		               u->hottest[i].heat, (long long)u->hottest[i].last_access);
	pfs_buf_printf(b, "]");
}

int pfs_temperature_report(struct pfs *p, bool json, struct pfs_buf *b)
{
	struct pfs_temp_stats st;
	struct temp_pool t;
	char since[32], saved[32];
	int rc;

	pfs_temp_get_stats(p, &st);
	rc = pool_walk(p, &t);
	if (rc)
		goto out;
	iso_time(st.since, since, sizeof(since));
	iso_time(st.last_save, saved, sizeof(saved));
	if (json) {
		pfs_buf_printf(b, "{\n");
		thresholds_json(&st.th, b);
		pfs_buf_printf(b,
		               "  \"tracker\": {\"extent_bytes\": %u, \"since\": %lld, "
		               "\"ram_bytes\": %llu, \"leaves\": %llu, \"nodes\": %llu, "
		               "\"accesses\": %llu, \"dropped\": %llu, \"saves\": %llu, "
		               "\"save_errors\": %llu, \"last_save\": %lld},\n",
		               st.extent_bytes, (long long)st.since,
		               (unsigned long long)st.ram_bytes, (unsigned long long)st.leaves,
		               (unsigned long long)st.nodes, (unsigned long long)st.touches,
		               (unsigned long long)st.dropped, (unsigned long long)st.saves,
		               (unsigned long long)st.save_errors, (long long)st.last_save);
		pfs_buf_printf(b, "  \"pool\": {");
		classes_json(t.bytes, t.written, b);
		pfs_buf_printf(b, "},\n  \"volumes\": [");
		bool first = true;
		for (size_t i = 0; i < t.n; i++) {
			if (t.v[i].rc)
				continue;
			pfs_buf_printf(b, "%s\n    {\"name\": ", first ? "" : ",");
			pfs_buf_json_str(b, t.v[i].name);
			pfs_buf_printf(b, ", ");
			classes_json(t.v[i].u.bytes, t.v[i].written, b);
			pfs_buf_printf(b, ", \"tracker_ram_bytes\": %llu",
			               (unsigned long long)t.v[i].u.ram_bytes);
			hottest_json(&t.v[i].u, b);
			pfs_buf_printf(b, "}");
			first = false;
		}
		pfs_buf_printf(b, "%s]\n}\n", first ? "" : "\n  ");
		goto out;
	}
	thresholds_text(&st.th, b);
	pfs_buf_printf(b,
	               "tracker     %u-byte extents since %s, %llu bytes of RAM, %llu accesses "
	               "counted, last saved %s%s\n\n",
	               st.extent_bytes, since, (unsigned long long)st.ram_bytes,
	               (unsigned long long)st.touches, saved,
	               st.save_errors ? " (saves have failed: see the log)" : "");
	pfs_buf_printf(b, "%-24s %14s %14s %14s %14s %14s\n", "volume", "written", "hot", "warm",
	               "cold", "frozen");
	for (size_t i = 0; i < t.n; i++) {
		const struct temp_vol *v = &t.v[i];
		if (v->rc)
			continue;
		pfs_buf_printf(b, "%-24s %14llu %14llu %14llu %14llu %14llu\n", v->name,
		               (unsigned long long)v->written, (unsigned long long)v->u.bytes[0],
		               (unsigned long long)v->u.bytes[1], (unsigned long long)v->u.bytes[2],
		               (unsigned long long)v->u.bytes[3]);
	}
	pfs_buf_printf(b, "%-24s %14llu %14llu %14llu %14llu %14llu\n", "(pool)",
	               (unsigned long long)t.written, (unsigned long long)t.bytes[0],
	               (unsigned long long)t.bytes[1], (unsigned long long)t.bytes[2],
	               (unsigned long long)t.bytes[3]);
out:
	free(t.v);
	return rc ? rc : b->err;
}

int pfs_temperature_volume(struct pfs *p, struct pfs_vol *v, struct pfs_buf *b)
{
	struct pfs_temp_usage u;
	struct pfs_vol_info info;
	int rc;

	pfs_vol_get_info(v, &info);
	rc = pfs_temp_vol_usage(p, v, &u);
	if (rc)
		return rc;
	uint64_t written = (uint64_t)info.nz_blocks * pfs_block_size(p);
	pfs_buf_printf(b, "volume      %s\nwritten     %llu bytes\n", info.name,
	               (unsigned long long)written);
	for (int c = 0; c < PFS_TEMP_CLASSES; c++)
		pfs_buf_printf(b, "%-11s %llu bytes (%llu extents)\n", pfs_temp_class_name(c),
		               (unsigned long long)u.bytes[c], (unsigned long long)u.extents[c]);
	thresholds_text(&u.th, b);
	char base[32];
	iso_time(u.baseline, base, sizeof(base));
	pfs_buf_printf(b, "untouched   data never accessed counts as accessed at %s\n", base);
	pfs_buf_printf(b, "tracker     %llu bytes of RAM\n", (unsigned long long)u.ram_bytes);
	if (u.nhottest)
		pfs_buf_printf(b, "hottest     offset, heat, last access:\n");
	for (unsigned i = 0; i < u.nhottest; i++) {
		char t[32];
		iso_time(u.hottest[i].last_access, t, sizeof(t));
		pfs_buf_printf(b, "  %llu %.1f %s (%lld s ago)\n",
		               (unsigned long long)u.hottest[i].offset, u.hottest[i].heat, t,
		               (long long)(u.now - u.hottest[i].last_access));
	}
	return b->err;
}

void pfs_temperature_metrics(struct pfs *p, struct pfs_buf *b)
{
	struct pfs_temp_stats st;
	struct temp_pool t;

	pfs_temp_get_stats(p, &st);
	pfs_buf_printf(b,
	               "# HELP pstorfs_temperature_tracker_bytes RAM the data temperature tracker "
	               "uses.\n# TYPE pstorfs_temperature_tracker_bytes gauge\n"
	               "pstorfs_temperature_tracker_bytes %llu\n",
	               (unsigned long long)st.ram_bytes);
	uint64_t bytes[PFS_TEMP_CLASSES];
	if (!pool_cache_get(p, bytes)) {
		int rc = pool_walk(p, &t);
		free(t.v);
		if (rc)
			return;
		memcpy(bytes, t.bytes, sizeof(bytes));
	}
	pfs_buf_printf(b, "# HELP pstorfs_temperature_bytes Written volume bytes by data "
	                  "temperature class (a walk at most a minute old).\n"
	                  "# TYPE pstorfs_temperature_bytes gauge\n");
	for (int c = 0; c < PFS_TEMP_CLASSES; c++)
		pfs_buf_printf(b, "pstorfs_temperature_bytes{class=\"%s\"} %llu\n",
		               pfs_temp_class_name(c), (unsigned long long)bytes[c]);
}
