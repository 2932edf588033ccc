/* fs/pfs_scrub.c - `scrub start|stop` and .pstorage/scrub: a background thread that checks every
 * live chunk (ftl_scrub), the SQLite metadata (PRAGMA quick_check), and then tells which volume
 * blocks and metadata records the damage hits. It only reads and reports; it repairs nothing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pfs_vol_int.h"

#define SCRUB_VOLS_MAX 32 /* maps listed with affected blocks */
#define SCRUB_HITS_MAX 8  /* offsets listed per map */
#define SCRUB_META_MAX 16 /* damaged metadata chunks listed */
/* A map reference whose chunk does not exist at all (the scan at open dropped a damaged chunk,
 * or it was lost otherwise): reads of the block fail like those of a damaged chunk. */
#define SCRUB_REF_MISSING FTL_SCRUB_KIND_COUNT

enum scrub_state { SCRUB_IDLE, SCRUB_RUNNING, SCRUB_DONE, SCRUB_CANCELLED, SCRUB_FAILED };
static const char *const state_names[] = {"idle", "running", "done", "cancelled", "failed"};
enum scrub_phase { PHASE_DATA, PHASE_METADATA, PHASE_MAPS, PHASE_END };
static const char *const phase_names[] = {"data", "metadata", "maps", "finished"};

struct scrub_hit {
	uint64_t off, addr;
	uint8_t kind; /* enum ftl_scrub_kind or SCRUB_REF_MISSING */
};

/* A volume or snapshot with references to damaged chunks. */
struct scrub_vol {
	uint64_t id;
	uint64_t failing; /* blocks whose reads fail */
	uint64_t at_risk; /* blocks on chunks whose summary is damaged (still readable) */
	uint32_t nhits;
	struct scrub_hit hits[SCRUB_HITS_MAX];
	char name[2 * PFS_NAME_MAX + 16]; /* as in the mount: volumes/X, snapshots/X/S */
};

struct scrub_meta_hit {
	uint64_t addr;
	char what[2 * PFS_NAME_MAX + 48];
};

/* What one run found; the report prints a copy. */
struct scrub_findings {
	struct ftl_scrub_result data;
	bool meta_checked;
	uint64_t meta_problems;
	char meta_first[256];
	uint64_t meta_chunks; /* damaged flash copies of metadata (pages, catalogue, log) */
	uint32_t nmeta;
	struct scrub_meta_hit meta[SCRUB_META_MAX];
	bool maps_checked;
	uint64_t pages;         /* map pages looked at */
	uint64_t refs_failing;  /* blocks whose reads fail */
	uint64_t refs_at_risk;  /* blocks on SUMMARY chunks */
	uint64_t vols_affected; /* maps with such blocks (only SCRUB_VOLS_MAX listed) */
	uint32_t nvols;
	struct scrub_vol vols[SCRUB_VOLS_MAX];
};

struct pfs_scrub {
	pthread_mutex_t ctl_lock; /* start, stop and close one at a time; taken before lock */
	pthread_mutex_t lock;     /* everything below */
	pthread_t thread;
	bool joinable;
	_Atomic bool stop;
	enum scrub_state state;
	enum scrub_phase phase;
	int error;
	int64_t start_ns, finish_ns;
	uint64_t runs;
	struct scrub_findings f;
};

/* p->scrub is set once, by the first `scrub start`, and cleared by pfs_close (no request can
 * run then); the pointer itself is read under this lock. */
static pthread_mutex_t scrub_ptr_lock = PTHREAD_MUTEX_INITIALIZER;

static struct pfs_scrub *scrub_of(struct pfs *p)
{
	pthread_mutex_lock(&scrub_ptr_lock);
	struct pfs_scrub *s = p->scrub;
	pthread_mutex_unlock(&scrub_ptr_lock);
	return s;
}

static struct pfs_scrub *scrub_get(struct pfs *p)
{
	struct pfs_scrub *s;

	pthread_mutex_lock(&scrub_ptr_lock);
	s = p->scrub;
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (s) {
			pthread_mutex_init(&s->ctl_lock, NULL);
			pthread_mutex_init(&s->lock, NULL);
			p->scrub = s;
		}
	}
	pthread_mutex_unlock(&scrub_ptr_lock);
	return s;
}

/* ---- the thread ---------------------------------------------------------------------------- */

static int data_progress(void *arg, const struct ftl_scrub_result *so_far)
{
	struct pfs_scrub *s = arg;

	pthread_mutex_lock(&s->lock);
	s->f.data = *so_far;
	pthread_mutex_unlock(&s->lock);
	return atomic_load(&s->stop);
}

static void set_phase(struct pfs_scrub *s, enum scrub_phase ph)
{
	pthread_mutex_lock(&s->lock);
	s->phase = ph;
	pthread_mutex_unlock(&s->lock);
}

struct bad_chunk {
	uint64_t addr;
	uint8_t kind;
};

static int cmp_bad(const void *a, const void *b)
{
	uint64_t x = ((const struct bad_chunk *)a)->addr, y = ((const struct bad_chunk *)b)->addr;
	return x < y ? -1 : x > y;
}

static int bad_kind(const struct bad_chunk *bad, uint32_t n, uint64_t addr)
{
	struct bad_chunk key = {.addr = addr};
	const struct bad_chunk *hit = n ? bsearch(&key, bad, n, sizeof(*bad), cmp_bad) : NULL;
	return hit ? hit->kind : -1;
}

struct map_walk {
	struct pfs *p;
	struct pfs_scrub *s;
	struct scrub_findings *f;
	const struct bad_chunk *bad;
	uint32_t nbad;
	uint64_t last_map; /* the map the last counted hit belonged to */
};

/* What a reference to ADDR reads now: -1 (its chunk is fine), a kind of ftl_scrub, or
 * SCRUB_REF_MISSING. An id the scrub found lost or missing counts only while no live chunk
 * has it (a write may have reused it since). */
static int ref_kind(const struct map_walk *w, uint64_t addr)
{
	int kind = bad_kind(w->bad, w->nbad, addr);

	if (kind >= 0 && kind != FTL_SCRUB_LOST)
		return kind;
	if (ftl_chunk_len(w->p->ftl, (struct ftl_addr){addr}) >= 0)
		return -1;
	return kind >= 0 ? kind : SCRUB_REF_MISSING;
}

static struct scrub_vol *vol_slot(struct map_walk *w, uint64_t map)
{
	struct scrub_findings *f = w->f;

	if (map != w->last_map) {
		w->last_map = map;
		f->vols_affected++; /* pages come in key order: a map's pages are together */
		if (f->nvols < SCRUB_VOLS_MAX)
			f->vols[f->nvols++].id = map;
		else
			return NULL;
	}
	struct scrub_vol *v = f->nvols ? &f->vols[f->nvols - 1] : NULL;
	return v && v->id == map ? v : NULL;
}

/* KIND[I] gets ref_kind of slot I of page IDX of MAP if it still holds what REFS[I] holds, -1
 * otherwise. Rows read by pfs_meta_pages_each may be older than a commit that released their
 * chunks in between, so a suspect page is read again under commit_lock, which no commit holds
 * apart from its releases. */
static int recheck(struct map_walk *w, uint64_t map, uint64_t idx, const struct engine_ref *refs,
                   int *kind)
{
	struct engine_ref *now = malloc(PFS_PAGE_REFS * sizeof(*now));
	int rc;

	if (!now)
		return -ENOMEM;
	pthread_mutex_lock(&w->p->commit_lock);
	rc = pfs_meta_page_load(w->p->meta, map, idx, now);
	for (uint32_t i = 0; i < PFS_PAGE_REFS; i++) {
		kind[i] = -1;
		if (rc || now[i].v != refs[i].v || engine_ref_kind(refs[i]) != ENGINE_REF_CHUNK)
			continue;
		kind[i] = ref_kind(w, refs[i].v & ((1ull << 62) - 1));
	}
	pthread_mutex_unlock(&w->p->commit_lock);
	free(now);
	return rc == -ENOENT ? 0 : rc; /* a row deleted meanwhile holds nothing */
}

static int walk_page(void *arg, uint64_t map, uint64_t idx, const struct engine_ref *refs)
{
	struct map_walk *w = arg;
	bool suspect = false;
	int kind[PFS_PAGE_REFS], rc;

	if (atomic_load(&w->s->stop))
		return -ECANCELED;
	w->f->pages++;
	for (uint32_t i = 0; i < PFS_PAGE_REFS && !suspect; i++) {
		if (engine_ref_kind(refs[i]) != ENGINE_REF_CHUNK)
			continue;
		suspect = ref_kind(w, refs[i].v & ((1ull << 62) - 1)) >= 0;
	}
	if (!suspect)
		return 0;
	rc = recheck(w, map, idx, refs, kind);
	if (rc)
		return rc;
	for (uint32_t i = 0; i < PFS_PAGE_REFS; i++) {
		if (kind[i] < 0)
			continue;
		uint64_t addr = refs[i].v & ((1ull << 62) - 1);
		bool risk = kind[i] == FTL_SCRUB_SUMMARY;
		if (risk)
			w->f->refs_at_risk++;
		else
			w->f->refs_failing++;
		struct scrub_vol *v = vol_slot(w, map);
		if (!v)
			continue;
		if (risk)
			v->at_risk++;
		else
			v->failing++;
		if (v->nhits < SCRUB_HITS_MAX)
			v->hits[v->nhits++] = (struct scrub_hit){
			    (idx * PFS_PAGE_REFS + i) * w->p->bs, addr, (uint8_t)kind[i]};
	}
	return 0;
}

static void vol_name(struct pfs *p, uint64_t id, char *out, size_t len)
{
	struct pfs_vol *v = pfs_vol_by_id(p, id), *parent = NULL;

	if (!v) {
		snprintf(out, len, "map %llu (deleted)", (unsigned long long)id);
		return;
	}
	if (v->kind == PFS_MAP_SNAPSHOT)
		parent = pfs_vol_by_id(p, v->parent);
	if (v->kind != PFS_MAP_SNAPSHOT)
		snprintf(out, len, "volumes/%s", v->name);
	else
		snprintf(out, len, "snapshots/%s/%s", parent ? parent->name : "?", v->name);
	if (parent)
		pfs_vol_unref(parent);
	pfs_vol_unref(v);
}

static void meta_hit(struct scrub_findings *f, uint64_t addr, const char *what)
{
	f->meta_chunks++;
	if (f->nmeta < SCRUB_META_MAX) {
		f->meta[f->nmeta].addr = addr;
		snprintf(f->meta[f->nmeta].what, sizeof(f->meta[0].what), "%s", what);
		f->nmeta++;
	}
}

static int walk_copy(void *arg, uint64_t map, uint64_t idx, const struct engine_ref *refs,
                     uint64_t chunk)
{
	struct map_walk *w = arg;
	char name[2 * PFS_NAME_MAX + 16], what[sizeof(((struct scrub_meta_hit *)0)->what)];

	(void)refs;
	if (atomic_load(&w->s->stop))
		return -ECANCELED;
	int kind = chunk == PFS_NO_CHUNK ? -1 : bad_kind(w->bad, w->nbad, chunk);
	if (kind < 0 || kind == FTL_SCRUB_SUMMARY)
		return 0; /* intact, or readable and only at risk */
	vol_name(w->p, map, name, sizeof(name));
	snprintf(what, sizeof(what), "flash copy of %s page %llu", name, (unsigned long long)idx);
	meta_hit(w->f, chunk, what);
	return 0;
}

/* Damaged chunks that are the fs's own records: the catalogue, log chunks, page copies. */
static int map_meta_chunks(struct map_walk *w)
{
	struct pfs *p = w->p;

	for (uint32_t i = 0; i < w->nbad; i++) {
		bool cat, log = false;
		if (w->bad[i].kind == FTL_SCRUB_SUMMARY)
			continue;
		pthread_mutex_lock(&p->commit_lock);
		cat = p->cat_chunk == w->bad[i].addr;
		pthread_mutex_unlock(&p->commit_lock);
		pthread_mutex_lock(&p->log.lock);
		for (size_t k = 0; k < p->log.nchunks && !log; k++)
			log = p->log.chunks[k].addr == w->bad[i].addr;
		pthread_mutex_unlock(&p->log.lock);
		if (cat)
			meta_hit(w->f, w->bad[i].addr, "catalogue record");
		else if (log)
			meta_hit(w->f, w->bad[i].addr, "roll-forward log chunk");
	}
	return pfs_meta_pages_each_chunk(p->meta, -1, false, walk_copy, w);
}

/* Which blocks of which volumes and snapshots reference a damaged or missing chunk. */
static int map_damage(struct pfs *p, struct pfs_scrub *s, struct scrub_findings *f)
{
	struct map_walk w = {.p = p, .s = s, .f = f, .last_map = UINT64_MAX};
	struct bad_chunk *bad = calloc(f->data.nlisted ? f->data.nlisted : 1, sizeof(*bad));
	int rc;

	if (!bad)
		return -ENOMEM;
	for (uint32_t i = 0; i < f->data.nlisted; i++)
		bad[i] = (struct bad_chunk){f->data.damaged[i].addr.v, f->data.damaged[i].kind};
	qsort(bad, f->data.nlisted, sizeof(*bad), cmp_bad);
	w.bad = bad;
	w.nbad = f->data.nlisted;
	/* The committed maps are what the walk reads: bring them up to now first. */
	if (!p->opts.readonly) {
		rc = pfs_commit(p);
		if (rc)
			pfs_logl(LOG_ERR, "pstorfs: scrub: commit before the map walk failed: %d",
			         rc);
	}
	rc = pfs_meta_pages_each(p->meta, -1, walk_page, &w);
	if (!rc && w.nbad)
		rc = map_meta_chunks(&w);
	for (uint32_t i = 0; i < f->nvols; i++)
		vol_name(p, f->vols[i].id, f->vols[i].name, sizeof(f->vols[i].name));
	free(bad);
	return rc;
}

static void finish(struct pfs_scrub *s, enum scrub_state st, int error,
                   const struct scrub_findings *f)
{
	pthread_mutex_lock(&s->lock);
	s->f = *f;
	s->state = st;
	s->error = error;
	s->phase = PHASE_END;
	s->finish_ns = pfs_now_ns();
	pthread_mutex_unlock(&s->lock);
}

static void *scrub_main(void *arg)
{
	struct pfs *p = arg;
	struct pfs_scrub *s = scrub_of(p);
	struct scrub_findings *f = calloc(1, sizeof(*f));
	int64_t t0 = pfs_now_ns();
	int rc;

	if (!f) {
		struct scrub_findings none = {0};
		finish(s, SCRUB_FAILED, -ENOMEM, &none);
		return NULL;
	}
	rc = ftl_scrub(p->ftl, data_progress, s, &f->data);
	if (rc)
		goto out;
	set_phase(s, PHASE_METADATA);
	rc = pfs_meta_quick_check(p->meta, &f->meta_problems, f->meta_first, sizeof(f->meta_first));
	if (rc)
		goto out;
	f->meta_checked = true;
	if (atomic_load(&s->stop)) {
		rc = -ECANCELED;
		goto out;
	}
	set_phase(s, PHASE_MAPS);
	rc = map_damage(p, s, f);
	if (rc)
		goto out;
	f->maps_checked = true;
out:
	if (rc && rc != -ECANCELED)
		pfs_logl(LOG_ERR, "pstorfs: scrub failed: %s", strerror(-rc));
	/* Damage found (or a failed scrub) is what `journalctl -p warning` must show. */
	bool bad = (rc && rc != -ECANCELED) || f->data.damaged_chunks || f->data.lost_chunks ||
	           f->data.summary_chunks || f->meta_problems || f->meta_chunks || f->refs_failing;
	pfs_logl(bad ? LOG_WARNING : LOG_NOTICE,
	         "pstorfs: scrub %s in %.1f s: %llu chunks checked, %llu damaged, %llu lost, %llu "
	         "at risk, %llu metadata problems, %llu volume blocks unreadable",
	         rc == -ECANCELED ? "cancelled"
	         : rc             ? "failed"
	                          : "done",
	         (double)(pfs_now_ns() - t0) / 1e9, (unsigned long long)f->data.chunks_checked,
	         (unsigned long long)f->data.damaged_chunks,
	         (unsigned long long)f->data.lost_chunks,
	         (unsigned long long)f->data.summary_chunks,
	         (unsigned long long)(f->meta_problems + f->meta_chunks),
	         (unsigned long long)f->refs_failing);
	finish(s, rc == -ECANCELED ? SCRUB_CANCELLED : rc ? SCRUB_FAILED : SCRUB_DONE, rc, f);
	free(f);
	return NULL;
}

/* ---- control ------------------------------------------------------------------------------- */

static double percent_locked(const struct pfs_scrub *s)
{
	const struct ftl_scrub_result *r = &s->f.data;

	if (s->state == SCRUB_DONE)
		return 100.0;
	if (!r->segments_total)
		return 0.0;
	/* The data pass is nearly all the work; metadata and maps take the last percent. */
	double pct = 99.0 * r->segments_done / r->segments_total;
	return s->phase == PHASE_MAPS ? 99.5 : pct;
}

int pfs_scrub_start(struct pfs *p)
{
	struct pfs_scrub *s = scrub_get(p);
	int rc = 0;

	if (!s)
		return -ENOMEM;
	pthread_mutex_lock(&s->ctl_lock);
	pthread_mutex_lock(&s->lock);
	bool running = s->state == SCRUB_RUNNING;
	double pct = percent_locked(s);
	pthread_mutex_unlock(&s->lock);
	if (running) {
		pfs_set_msg(p, "a scrub is already running (%.0f%% done); 'scrub stop' cancels it",
		            pct);
		rc = -EBUSY;
		goto out_unlock;
	}
	if (s->joinable) {
		pthread_join(s->thread, NULL); /* the last run, already finished */
		s->joinable = false;
	}
	pthread_mutex_lock(&s->lock);
	memset(&s->f, 0, sizeof(s->f));
	s->state = SCRUB_RUNNING;
	s->phase = PHASE_DATA;
	s->error = 0;
	s->start_ns = pfs_now_ns();
	s->finish_ns = 0;
	s->runs++;
	pthread_mutex_unlock(&s->lock);
	atomic_store(&s->stop, false);
	rc = -pthread_create(&s->thread, NULL, scrub_main, p);
	if (rc) {
		struct scrub_findings none = {0};
		finish(s, SCRUB_FAILED, rc, &none);
		pfs_set_msg(p, "cannot start the scrub thread: %s", strerror(-rc));
		goto out_unlock;
	}
	s->joinable = true;
	pfs_set_msg(p, "ok: scrub started; progress in .pstorage/scrub");
out_unlock:
	pthread_mutex_unlock(&s->ctl_lock);
	return rc;
}

int pfs_scrub_cancel(struct pfs *p)
{
	struct pfs_scrub *s = scrub_of(p);
	int rc = 0;

	if (!s) {
		pfs_set_msg(p, "no scrub is running");
		return -ENOENT;
	}
	pthread_mutex_lock(&s->ctl_lock);
	pthread_mutex_lock(&s->lock);
	bool running = s->state == SCRUB_RUNNING;
	pthread_mutex_unlock(&s->lock);
	if (!running) {
		pfs_set_msg(p, "no scrub is running");
		rc = -ENOENT;
		goto out_unlock;
	}
	/* It looks at the flag after every segment and every map page: a short wait. */
	atomic_store(&s->stop, true);
	pthread_join(s->thread, NULL);
	s->joinable = false;
	pthread_mutex_lock(&s->lock);
	pfs_set_msg(p, "ok: scrub %s", state_names[s->state]);
	pthread_mutex_unlock(&s->lock);
out_unlock:
	pthread_mutex_unlock(&s->ctl_lock);
	return rc;
}

void pfs_scrub_stop(struct pfs *p)
{
	struct pfs_scrub *s = p ? scrub_of(p) : NULL;

	if (!s)
		return;
	pthread_mutex_lock(&s->ctl_lock);
	atomic_store(&s->stop, true);
	if (s->joinable)
		pthread_join(s->thread, NULL);
	s->joinable = false;
	pthread_mutex_unlock(&s->ctl_lock);
	pthread_mutex_lock(&scrub_ptr_lock);
	p->scrub = NULL;
	pthread_mutex_unlock(&scrub_ptr_lock);
	pthread_mutex_destroy(&s->ctl_lock);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* ---- reports ------------------------------------------------------------------------------- */

/* A consistent copy of the state, so printing holds no lock. */
struct scrub_view {
	enum scrub_state state;
	enum scrub_phase phase;
	int error;
	int64_t start_ns, finish_ns;
	uint64_t runs;
	double percent;
	uint64_t rows_damaged, rows_healed; /* map rows failing their checksum since mount */
	struct scrub_findings f;
};

static struct scrub_view *view_get(struct pfs *p)
{
	struct pfs_scrub *s = scrub_of(p);
	struct scrub_view *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	/* Map rows are checked whenever they are read (pfs_meta.c), not only by the scrub. */
	struct pfs_meta_stats ms;
	pfs_meta_get_stats(p->meta, &ms);
	v->rows_damaged = ms.rows_damaged;
	v->rows_healed = ms.rows_healed;
	if (!s)
		return v;
	pthread_mutex_lock(&s->lock);
	v->state = s->state;
	v->phase = s->phase;
	v->error = s->error;
	v->start_ns = s->start_ns;
	v->finish_ns = s->finish_ns;
	v->runs = s->runs;
	v->percent = percent_locked(s);
	v->f = s->f;
	pthread_mutex_unlock(&s->lock);
	return v;
}

static const char *ref_kind_name(int kind)
{
	return kind == SCRUB_REF_MISSING ? "missing" : ftl_scrub_kind_name(kind);
}

static void iso_time(int64_t ns, char *out, size_t len)
{
	time_t t = (time_t)(ns / 1000000000);
	struct tm tm;

	if (!ns || !gmtime_r(&t, &tm) || !strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, len, "-");
}

static double seconds_of(const struct scrub_view *v)
{
	int64_t end = v->finish_ns ? v->finish_ns : pfs_now_ns();
	return v->start_ns ? (double)(end - v->start_ns) / 1e9 : 0.0;
}

static uint64_t damaged_metadata(const struct scrub_findings *f)
{
	return f->meta_problems + f->meta_chunks;
}

static void report_text(const struct scrub_view *v, struct pfs_buf *b)
{
	const struct scrub_findings *f = &v->f;
	const struct ftl_scrub_result *r = &f->data;
	char t0[32], t1[32];

	iso_time(v->start_ns, t0, sizeof(t0));
	iso_time(v->finish_ns, t1, sizeof(t1));
	pfs_buf_printf(b, "state       %s", state_names[v->state]);
	if (v->state == SCRUB_RUNNING)
		pfs_buf_printf(b, " (%s)", phase_names[v->phase]);
	if (v->state == SCRUB_FAILED)
		pfs_buf_printf(b, " (%s)", strerror(-v->error));
	pfs_buf_printf(b, "\n");
	if (v->state == SCRUB_IDLE) {
		pfs_buf_printf(b, "no scrub since mount: echo scrub start > .pstorage/ctl\n");
		return;
	}
	pfs_buf_printf(
	    b,
	    "progress    %.1f%%: %u of %u segments, %.1f MiB checked\n"
	    "started     %s\nfinished    %s (%.2f s)\n"
	    "data        %llu chunks checked: %llu damaged (reads fail), %llu lost, "
	    "%llu at risk (summary damaged)\n"
	    "            %llu summary errors, %llu unreadable ranges (%llu bytes)\n",
	    v->percent, r->segments_done, r->segments_total, r->bytes_checked / 1048576.0, t0, t1,
	    seconds_of(v), (unsigned long long)r->chunks_checked,
	    (unsigned long long)r->damaged_chunks, (unsigned long long)r->lost_chunks,
	    (unsigned long long)r->summary_chunks, (unsigned long long)r->summary_errors,
	    (unsigned long long)r->unreadable_ranges, (unsigned long long)r->unreadable_bytes);
	pfs_buf_printf(b,
	               "map rows    %llu failed their checksum since mount, %llu healed from their "
	               "flash copy\n",
	               (unsigned long long)v->rows_damaged, (unsigned long long)v->rows_healed);
	if (!f->meta_checked)
		pfs_buf_printf(b, "metadata    not checked yet\n");
	else if (!damaged_metadata(f))
		pfs_buf_printf(b, "metadata    ok (PRAGMA quick_check; flash copies)\n");
	else
		pfs_buf_printf(
		    b,
		    "metadata    %llu problems: quick_check %llu%s%s, damaged flash "
		    "copies %llu\n",
		    (unsigned long long)damaged_metadata(f), (unsigned long long)f->meta_problems,
		    f->meta_problems ? ", first: " : "", f->meta_problems ? f->meta_first : "",
		    (unsigned long long)f->meta_chunks);
	if (!f->maps_checked)
		pfs_buf_printf(b, "volumes     not checked yet\n");
	else
		pfs_buf_printf(
		    b,
		    "volumes     %llu blocks unreadable, %llu at risk, in %llu volumes or "
		    "snapshots (%llu map pages walked)\n",
		    (unsigned long long)f->refs_failing, (unsigned long long)f->refs_at_risk,
		    (unsigned long long)f->vols_affected, (unsigned long long)f->pages);
	if (r->nlisted)
		pfs_buf_printf(b, "damaged chunks (first %d):\n", FTL_SCRUB_LIST_MAX);
	for (uint32_t i = 0; i < r->nlisted; i++)
		pfs_buf_printf(b, "  chunk %llu: %s, segment %u offset %u, %u bytes\n",
		               (unsigned long long)r->damaged[i].addr.v,
		               ftl_scrub_kind_name(r->damaged[i].kind), r->damaged[i].seg,
		               r->damaged[i].off, r->damaged[i].len);
	for (uint32_t i = 0; i < f->nmeta; i++)
		pfs_buf_printf(b, "  chunk %llu: %s\n", (unsigned long long)f->meta[i].addr,
		               f->meta[i].what);
	if (f->nvols)
		pfs_buf_printf(b, "affected (first %d maps, %d offsets each):\n", SCRUB_VOLS_MAX,
		               SCRUB_HITS_MAX);
	for (uint32_t i = 0; i < f->nvols; i++) {
		const struct scrub_vol *sv = &f->vols[i];
		pfs_buf_printf(b, "  %s: %llu blocks unreadable, %llu at risk; offsets", sv->name,
		               (unsigned long long)sv->failing, (unsigned long long)sv->at_risk);
		for (uint32_t k = 0; k < sv->nhits; k++)
			pfs_buf_printf(b, "%s %llu (chunk %llu, %s)", k ? "," : "",
			               (unsigned long long)sv->hits[k].off,
			               (unsigned long long)sv->hits[k].addr,
			               ref_kind_name(sv->hits[k].kind));
		pfs_buf_printf(b, "\n");
	}
}

static void report_json(const struct scrub_view *v, struct pfs_buf *b)
{
	const struct scrub_findings *f = &v->f;
	const struct ftl_scrub_result *r = &f->data;
	char t0[32], t1[32];

	iso_time(v->start_ns, t0, sizeof(t0));
	iso_time(v->finish_ns, t1, sizeof(t1));
	pfs_buf_printf(b, "{\n  \"state\": \"%s\",\n  \"phase\": \"%s\",\n  \"error\": ",
	               state_names[v->state], phase_names[v->phase]);
	if (v->state == SCRUB_FAILED)
		pfs_buf_json_str(b, strerror(-v->error));
	else
		pfs_buf_printf(b, "null");
	pfs_buf_printf(
	    b,
	    ",\n  \"runs\": %llu,\n  \"map_rows_damaged\": %llu,\n"
	    "  \"map_rows_healed\": %llu,\n  \"percent\": %.1f,\n  \"segments_done\": %u,\n"
	    "  \"segments_total\": %u,\n  \"bytes_checked\": %llu,\n",
	    (unsigned long long)v->runs, (unsigned long long)v->rows_damaged,
	    (unsigned long long)v->rows_healed, v->percent, r->segments_done, r->segments_total,
	    (unsigned long long)r->bytes_checked);
	pfs_buf_printf(b, "  \"start_time\": ");
	if (v->start_ns)
		pfs_buf_printf(b, "\"%s\"", t0);
	else
		pfs_buf_printf(b, "null");
	pfs_buf_printf(b, ",\n  \"finish_time\": ");
	if (v->finish_ns)
		pfs_buf_printf(b, "\"%s\"", t1);
	else
		pfs_buf_printf(b, "null");
	pfs_buf_printf(
	    b,
	    ",\n  \"seconds\": %.3f,\n  \"chunks_checked\": %llu,\n  \"damaged_chunks\": %llu,\n"
	    "  \"lost_chunks\": %llu,\n  \"at_risk_chunks\": %llu,\n  \"summary_errors\": %llu,\n"
	    "  \"unreadable_ranges\": %llu,\n  \"unreadable_bytes\": %llu,\n"
	    "  \"metadata_checked\": %s,\n  \"damaged_metadata\": %llu,\n"
	    "  \"quick_check_problems\": %llu,\n  \"quick_check_first\": ",
	    seconds_of(v), (unsigned long long)r->chunks_checked,
	    (unsigned long long)r->damaged_chunks, (unsigned long long)r->lost_chunks,
	    (unsigned long long)r->summary_chunks, (unsigned long long)r->summary_errors,
	    (unsigned long long)r->unreadable_ranges, (unsigned long long)r->unreadable_bytes,
	    f->meta_checked ? "true" : "false", (unsigned long long)damaged_metadata(f),
	    (unsigned long long)f->meta_problems);
	if (f->meta_problems)
		pfs_buf_json_str(b, f->meta_first);
	else
		pfs_buf_printf(b, "null");
	pfs_buf_printf(b,
	               ",\n  \"damaged_metadata_chunks\": %llu,\n  \"maps_checked\": %s,\n"
	               "  \"affected_blocks\": %llu,\n  \"at_risk_blocks\": %llu,\n"
	               "  \"affected_maps\": %llu,\n  \"damaged\": [",
	               (unsigned long long)f->meta_chunks, f->maps_checked ? "true" : "false",
	               (unsigned long long)f->refs_failing, (unsigned long long)f->refs_at_risk,
	               (unsigned long long)f->vols_affected);
	for (uint32_t i = 0; i < r->nlisted; i++)
		pfs_buf_printf(b,
		               "%s\n    {\"chunk\": %llu, \"kind\": \"%s\", \"segment\": %u, "
		               "\"offset\": %u, \"length\": %u}",
		               i ? "," : "", (unsigned long long)r->damaged[i].addr.v,
		               ftl_scrub_kind_name(r->damaged[i].kind), r->damaged[i].seg,
		               r->damaged[i].off, r->damaged[i].len);
	pfs_buf_printf(b, "%s],\n  \"damaged_metadata_list\": [", r->nlisted ? "\n  " : "");
	for (uint32_t i = 0; i < f->nmeta; i++) {
		pfs_buf_printf(b, "%s\n    {\"chunk\": %llu, \"what\": ", i ? "," : "",
		               (unsigned long long)f->meta[i].addr);
		pfs_buf_json_str(b, f->meta[i].what);
		pfs_buf_printf(b, "}");
	}
	pfs_buf_printf(b, "%s],\n  \"affected\": [", f->nmeta ? "\n  " : "");
	for (uint32_t i = 0; i < f->nvols; i++) {
		const struct scrub_vol *sv = &f->vols[i];
		pfs_buf_printf(b, "%s\n    {\"map\": ", i ? "," : "");
		pfs_buf_json_str(b, sv->name);
		pfs_buf_printf(b, ", \"blocks\": %llu, \"at_risk_blocks\": %llu, \"offsets\": [",
		               (unsigned long long)sv->failing, (unsigned long long)sv->at_risk);
		for (uint32_t k = 0; k < sv->nhits; k++)
			pfs_buf_printf(b, "%s{\"offset\": %llu, \"chunk\": %llu, \"kind\": \"%s\"}",
			               k ? ", " : "", (unsigned long long)sv->hits[k].off,
			               (unsigned long long)sv->hits[k].addr,
			               ref_kind_name(sv->hits[k].kind));
		pfs_buf_printf(b, "]}");
	}
	pfs_buf_printf(b, "%s]\n}\n", f->nvols ? "\n  " : "");
}

void pfs_scrub_report(struct pfs *p, bool json, struct pfs_buf *b)
{
	struct scrub_view *v = view_get(p);

	if (!v) {
		b->err = -ENOMEM;
		return;
	}
	if (json)
		report_json(v, b);
	else
		report_text(v, b);
	free(v);
}

void pfs_scrub_status(struct pfs *p, bool json, struct pfs_buf *b)
{
	struct scrub_view *v = view_get(p);
	char t1[32];

	if (!v) {
		b->err = -ENOMEM;
		return;
	}
	const struct scrub_findings *f = &v->f;
	iso_time(v->finish_ns, t1, sizeof(t1));
	if (json) {
		pfs_buf_printf(
		    b,
		    "{\"state\": \"%s\", \"percent\": %.1f, \"damaged_chunks\": %llu, "
		    "\"lost_chunks\": %llu, \"at_risk_chunks\": %llu, "
		    "\"damaged_metadata\": %llu, \"affected_blocks\": %llu, "
		    "\"finish_time\": ",
		    state_names[v->state], v->percent, (unsigned long long)f->data.damaged_chunks,
		    (unsigned long long)f->data.lost_chunks,
		    (unsigned long long)f->data.summary_chunks,
		    (unsigned long long)damaged_metadata(f), (unsigned long long)f->refs_failing);
		if (v->finish_ns)
			pfs_buf_printf(b, "\"%s\"}", t1);
		else
			pfs_buf_printf(b, "null}");
	} else if (v->state == SCRUB_IDLE) {
		pfs_buf_printf(b, "scrub       not run since mount\n");
	} else if (v->state == SCRUB_RUNNING) {
		pfs_buf_printf(b, "scrub       running, %.1f%% (%s; %u of %u segments)\n",
		               v->percent, phase_names[v->phase], f->data.segments_done,
		               f->data.segments_total);
	} else {
		pfs_buf_printf(
		    b,
		    "scrub       %s %s: %llu damaged chunks, %llu lost, %llu at risk, "
		    "%llu metadata problems, %llu volume blocks unreadable\n",
		    state_names[v->state], t1, (unsigned long long)f->data.damaged_chunks,
		    (unsigned long long)f->data.lost_chunks,
		    (unsigned long long)f->data.summary_chunks,
		    (unsigned long long)damaged_metadata(f), (unsigned long long)f->refs_failing);
	}
	free(v);
}

bool pfs_scrub_counts(struct pfs *p, struct pfs_scrub_counts *c)
{
	struct scrub_view *v = view_get(p);
	bool bad = false;

	*c = (struct pfs_scrub_counts){0};
	if (v) {
		const struct scrub_findings *f = &v->f;
		bad = f->data.damaged_chunks || f->data.summary_chunks || f->data.summary_errors ||
		      f->data.unreadable_ranges || damaged_metadata(f) || f->refs_failing;
		c->damaged_chunks = f->data.damaged_chunks + f->data.lost_chunks;
		c->blocks_failing = f->refs_failing;
		c->at_risk = f->data.summary_chunks;
		c->metadata = damaged_metadata(f) + f->data.summary_errors;
	}
	free(v);
	return bad;
}

bool pfs_scrub_found_damage(struct pfs *p)
{
	struct pfs_scrub_counts c;
	return pfs_scrub_counts(p, &c);
}

void pfs_scrub_metrics(struct pfs *p, struct pfs_buf *b)
{
	struct scrub_view *v = view_get(p);

	if (!v) {
		b->err = -ENOMEM;
		return;
	}
	const struct scrub_findings *f = &v->f;
#define SCRUB_METRIC(name, type, help, fmt, val)                                                   \
	pfs_buf_printf(b,                                                                          \
	               "# HELP pstorfs_" name " " help "\n# TYPE pstorfs_" name " " type "\n"      \
	               "pstorfs_" name " " fmt "\n",                                               \
	               val)
	SCRUB_METRIC("scrubs_total", "counter", "Scrubs started since mount.", "%llu",
	             (unsigned long long)v->runs);
	SCRUB_METRIC("scrub_running", "gauge", "1 while a scrub runs.", "%d",
	             v->state == SCRUB_RUNNING);
	SCRUB_METRIC("scrub_progress_ratio", "gauge", "Progress of the running or last scrub.",
	             "%.4f", v->percent / 100.0);
	SCRUB_METRIC("scrub_damaged_chunks", "gauge",
	             "Live chunks the last scrub found unreadable or failing their checksum.",
	             "%llu", (unsigned long long)f->data.damaged_chunks);
	SCRUB_METRIC("scrub_lost_chunks", "gauge",
	             "Damaged chunks the last scrub found with no live copy.", "%llu",
	             (unsigned long long)f->data.lost_chunks);
	SCRUB_METRIC("scrub_at_risk_chunks", "gauge",
	             "Readable chunks whose segment summary the last scrub found damaged.", "%llu",
	             (unsigned long long)f->data.summary_chunks);
	SCRUB_METRIC("scrub_damaged_metadata", "gauge",
	             "Metadata problems the last scrub found (quick_check and flash copies).",
	             "%llu", (unsigned long long)damaged_metadata(f));
	SCRUB_METRIC("scrub_affected_blocks", "gauge",
	             "Volume and snapshot blocks whose reads fail, as the last scrub found.",
	             "%llu", (unsigned long long)f->refs_failing);
	SCRUB_METRIC("scrub_last_finish_timestamp_seconds", "gauge",
	             "When the last scrub ended (0: none yet).", "%lld",
	             (long long)(v->finish_ns / 1000000000));
#undef SCRUB_METRIC
	free(v);
}
