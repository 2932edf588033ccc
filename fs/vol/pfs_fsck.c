/* fs/pfs_fsck.c - fsck.pstorfs: checks a namespace offline (superblock, segment summaries, the
 * SQLite catalogue and map rows, references, chunk checksums) and, with --repair, rebuilds the
 * metadata from what the segments hold: the newest catalogue record, the newest copy of every
 * map page, and the roll-forward log records written after those copies (pfs_mchunk.c).
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pfs_vol_int.h"
#include "pstor_version.h"

/* fsck(8) exit codes. */
#define FSCK_OK          0
#define FSCK_CORRECTED   1
#define FSCK_UNCORRECTED 4
#define FSCK_ERROR       8

struct scan {
	uint64_t *data; /* data chunk addresses, sorted after the scan */
	size_t ndata, capdata;
	struct pfs_mrecs meta;
};

static int scan_cb(void *arg, struct ftl_addr addr, const uint8_t hash[FTL_HASH_LEN],
                   uint32_t hash_len, uint32_t len, uint8_t flags)
{
	struct scan *s = arg;

	(void)len;
	if (flags & PFS_CHUNK_META)
		return pfs_mrecs_add(&s->meta, addr.v, hash, hash_len);
	if (s->ndata == s->capdata) {
		size_t cap = s->capdata ? s->capdata * 2 : 4096;
		uint64_t *n = realloc(s->data, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		s->data = n;
		s->capdata = cap;
	}
	s->data[s->ndata++] = addr.v;
	return 0;
}

/* Where fsck.pstorfs draws its progress lines (NULL: none; pfs_fsck_dev() as a library). */
static FILE *fsck_progress;

struct fsck {
	struct pfs p; /* just what pfs_meta.c needs: dev, sb, ftl, db, locks, counters */
	struct scan scan;
	FILE *out;
	FILE *progress;         /* a terminal, or NULL */
	struct pfs_progress pr; /* the pass under way */
	bool meta_ok;
	uint64_t errors;
	/* Check counters. */
	uint64_t maps, pages, refs, dangling, bad_chunks, bad_meta_chunks, unreferenced;
};

static void say(struct fsck *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct fsck *f, const char *fmt, ...)
{
	va_list ap;

	pfs_progress_end(&f->pr); /* a report line replaces the progress line */
	va_start(ap, fmt);
	vfprintf(f->out, fmt, ap);
	va_end(ap);
	fputc('\n', f->out);
}

static bool data_exists(struct fsck *f, uint64_t id)
{
	return f->scan.ndata &&
	       bsearch(&id, f->scan.data, f->scan.ndata, sizeof(uint64_t), pfs_cmp_u64) != NULL;
}

/* ---- check ---------------------------------------------------------------------------------- */

struct refset {
	uint64_t *v;
	size_t n, cap;
};

static int refset_add(struct refset *r, uint64_t id)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 4096;
		uint64_t *n = realloc(r->v, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		r->v = n;
		r->cap = cap;
	}
	r->v[r->n++] = id;
	return 0;
}

struct check_arg {
	struct fsck *f;
	struct refset used;
};

static int check_page(void *arg, uint64_t map, uint64_t idx, const struct engine_ref *refs,
                      uint64_t chunk)
{
	struct check_arg *a = arg;
	struct fsck *f = a->f;

	(void)map;
	(void)idx;
	(void)chunk;
	f->pages++;
	for (uint32_t i = 0; i < PFS_PAGE_REFS; i++) {
		if (engine_ref_kind(refs[i]) != ENGINE_REF_CHUNK)
			continue;
		uint64_t id = refs[i].v & ((1ull << 62) - 1);
		f->refs++;
		if (!data_exists(f, id)) {
			if (f->dangling < 10)
				say(f,
				    "  map %llu block %llu: refers to chunk %llu, which is not on "
				    "flash",
				    (unsigned long long)map,
				    (unsigned long long)(idx * PFS_PAGE_REFS + i),
				    (unsigned long long)id);
			f->dangling++;
		} else if (refset_add(&a->used, id)) {
			return -ENOMEM;
		}
	}
	return 0;
}

static int count_map(void *arg, uint64_t id, int kind, uint64_t parent, const char *name,
                     uint64_t size, int64_t ctime_ns, int64_t nz, int64_t chunks)
{
	struct fsck *f = arg;

	(void)id;
	(void)parent;
	(void)size;
	(void)ctime_ns;
	(void)nz;
	(void)chunks;
	if ((kind != PFS_MAP_VOLUME && kind != PFS_MAP_SNAPSHOT) || !pfs_name_valid(name)) {
		say(f, "  catalogue: map %llu has a bad kind or name", (unsigned long long)id);
		f->errors++;
	}
	f->maps++;
	return 0;
}

static void check_metadata(struct fsck *f)
{
	struct check_arg a = {.f = f};
	int rc;

	rc = pfs_meta_maps_each(f->p.meta, count_map, f);
	if (!rc)
		rc = pfs_meta_pages_each_chunk(f->p.meta, -1, false, check_page, &a);
	if (rc) {
		say(f, "metadata: cannot read the catalogue or the maps: %s", strerror(-rc));
		f->meta_ok = false;
		f->errors++;
		free(a.used.v);
		return;
	}
	struct pfs_meta_stats ms;
	pfs_meta_get_stats(f->p.meta, &ms);
	uint64_t damaged = ms.rows_damaged, healed = ms.rows_healed;
	say(f, "metadata: %llu maps, %llu map pages, %llu chunk references",
	    (unsigned long long)f->maps, (unsigned long long)f->pages, (unsigned long long)f->refs);
	if (damaged) {
		say(f,
		    "metadata: %llu map pages fail their checksum (%llu readable from their flash "
		    "copy)",
		    (unsigned long long)damaged, (unsigned long long)healed);
		f->errors++;
		if (healed < damaged)
			f->meta_ok = false;
	}
	if (f->dangling) {
		say(f, "metadata: %llu references to chunks that are not on flash",
		    (unsigned long long)f->dangling);
		f->errors++;
	}
	if (a.used.n) /* qsort(NULL, 0) is undefined */
		qsort(a.used.v, a.used.n, sizeof(uint64_t), pfs_cmp_u64);
	for (size_t i = 0; i < f->scan.ndata; i++)
		if (!a.used.n ||
		    !bsearch(&f->scan.data[i], a.used.v, a.used.n, sizeof(uint64_t), pfs_cmp_u64))
			f->unreferenced++;
	if (f->unreferenced)
		say(f,
		    "space: %llu chunks no committed map refers to (log records since the last "
		    "checkpoint hold them, or the next mount frees them; not an error)",
		    (unsigned long long)f->unreferenced);
	free(a.used.v);
}

/* Every chunk is read back: the FTL verifies each checksum. */
static void check_chunks(struct fsck *f)
{
	uint8_t *buf = malloc(FTL_CHUNK_MAX);

	if (!buf)
		return;
	uint64_t total = f->scan.ndata + f->scan.meta.n;
	pfs_progress_begin(&f->pr, f->progress, "check: reading chunks", "chunks");
	for (size_t i = 0; i < f->scan.ndata; i++) {
		if (ftl_read(f->p.ftl, (struct ftl_addr){f->scan.data[i]}, buf, FTL_CHUNK_MAX,
		             NULL) < 0)
			f->bad_chunks++;
		pfs_progress_update(&f->pr, i + 1, total);
	}
	for (size_t i = 0; i < f->scan.meta.n; i++) {
		if (ftl_read(f->p.ftl, (struct ftl_addr){f->scan.meta.v[i].addr}, buf,
		             FTL_CHUNK_MAX, NULL) < 0)
			f->bad_meta_chunks++;
		pfs_progress_update(&f->pr, f->scan.ndata + i + 1, total);
	}
	free(buf);
	say(f,
	    "chunks: %zu data chunks and %zu metadata records read back; %llu and %llu fail "
	    "their checksum",
	    f->scan.ndata, f->scan.meta.n, (unsigned long long)f->bad_chunks,
	    (unsigned long long)f->bad_meta_chunks);
	if (f->bad_chunks || f->bad_meta_chunks)
		f->errors++;
}

/* ---- rebuild from flash ------------------------------------------------------------------- */

struct rpage {
	struct rpage *next;
	uint64_t map, idx, gen, chunk;
	bool changed;
	struct engine_ref ref[PFS_PAGE_REFS];
};

#define RPAGE_BUCKETS 65536u

struct rebuild {
	struct fsck *f;
	struct pfs_catalog cat;
	struct rpage **pages; /* in the order they were made */
	size_t npages, cap;
	struct rpage **bucket; /* hash chains through rpage.next */
	uint64_t max_lsn;
	uint64_t records;
};

static struct pfs_cat_entry *cat_find(struct rebuild *r, uint64_t id)
{
	for (size_t i = 0; i < r->cat.nmaps; i++)
		if (r->cat.maps[i].id == id)
			return &r->cat.maps[i];
	return NULL;
}

static int store_pat(void *arg, uint64_t ref, const uint8_t *pat, uint32_t period)
{
	struct fsck *f = arg;
	return pfs_meta_pattern_store(f->p.meta, ref, pat, period);
}

static uint32_t rpage_hash(uint64_t map, uint64_t idx)
{
	return (uint32_t)(((map * 0x9e3779b97f4a7c15ull) ^ (idx * 0xc2b2ae3d27d4eb4full)) >> 40) %
	       RPAGE_BUCKETS;
}

static struct rpage *page_get(struct rebuild *r, uint64_t map, uint64_t idx, bool create)
{
	uint32_t h = rpage_hash(map, idx);

	for (struct rpage *pg = r->bucket[h]; pg; pg = pg->next)
		if (pg->map == map && pg->idx == idx)
			return pg;
	if (!create)
		return NULL;
	if (r->npages == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 256;
		struct rpage **n = realloc(r->pages, cap * sizeof(*n));
		if (!n)
			return NULL;
		r->pages = n;
		r->cap = cap;
	}
	struct rpage *pg = calloc(1, sizeof(*pg));
	if (!pg)
		return NULL;
	pg->map = map;
	pg->idx = idx;
	pg->chunk = PFS_NO_CHUNK;
	pg->next = r->bucket[h];
	r->bucket[h] = pg;
	r->pages[r->npages++] = pg;
	return pg;
}

/* The newest readable copy of each page of each map: a snapshot's own copies, else its
 * volume's newest copy up to the snapshot's checkpoint. */
static int rebuild_pages(struct rebuild *r)
{
	struct fsck *f = r->f;
	struct scan *s = &f->scan;

	for (size_t m = 0; m < r->cat.nmaps; m++) {
		pfs_progress_update(&f->pr, m + 1, 2 * (uint64_t)r->cat.nmaps);
		struct pfs_cat_entry *e = &r->cat.maps[m];
		/* Walk the copies tagged with this map, then (snapshots) with its volume. */
		for (int pass = 0; pass < 2; pass++) {
			uint64_t tagmap = pass == 0 ? e->id : e->parent;
			if (pass == 1 && e->kind != PFS_MAP_SNAPSHOT)
				break;
			for (size_t i = 0; i < s->meta.n; i++) {
				struct pfs_mrec *c = &s->meta.v[i];
				if (c->tag.kind != PFS_MCHUNK_PAGE || c->tag.a != tagmap)
					continue;
				if (pass == 1 && c->tag.gen > e->snap_gen)
					continue;
				/* Sorted by gen within (map, idx): take the last readable one. */
				if (i + 1 < s->meta.n &&
				    s->meta.v[i + 1].tag.kind == PFS_MCHUNK_PAGE &&
				    s->meta.v[i + 1].tag.a == tagmap &&
				    s->meta.v[i + 1].tag.b == c->tag.b &&
				    (pass == 0 || s->meta.v[i + 1].tag.gen <= e->snap_gen))
					continue;
				struct rpage *pg = page_get(r, e->id, c->tag.b, false);
				if (pg)
					continue; /* own copy found in pass 0 */
				struct engine_ref refs[PFS_PAGE_REFS];
				size_t k = i;
				int rc = -EUCLEAN;
				/* Newest first; an unreadable copy falls back to the one before. */
				for (;;) {
					rc = pfs_mchunk_read_page(f->p.ftl, s->meta.v[k].addr,
					                          c->tag.b, refs, store_pat, f);
					if (rc == 0 || k == 0 ||
					    s->meta.v[k - 1].tag.kind != PFS_MCHUNK_PAGE ||
					    s->meta.v[k - 1].tag.a != tagmap ||
					    s->meta.v[k - 1].tag.b != c->tag.b)
						break;
					k--;
				}
				if (rc) {
					say(f, "  map %llu page %llu: no readable copy",
					    (unsigned long long)e->id,
					    (unsigned long long)c->tag.b);
					f->errors++;
					continue;
				}
				pg = page_get(r, e->id, c->tag.b, true);
				if (!pg)
					return -ENOMEM;
				memcpy(pg->ref, refs, sizeof(refs));
				pg->gen = s->meta.v[k].tag.gen;
				pg->chunk = s->meta.v[k].addr;
			}
		}
	}
	return 0;
}

static int replay_rec(void *arg, const struct pfs_log_rec *rec)
{
	struct rebuild *r = arg;
	uint64_t lsn = rec->lsn, map = rec->map, blk = rec->blk, value = rec->value;
	struct pfs_cat_entry *e;

	if (lsn > r->max_lsn)
		r->max_lsn = lsn;
	/* Catalogue changes are in the catalogue record their commit wrote. */
	if (rec->type == PFS_LOG_CHANGE)
		return 0;
	e = cat_find(r, map);
	if (!e || e->kind != PFS_MAP_VOLUME)
		return 0;
	if (rec->type == PFS_LOG_SIZE) {
		if (lsn >= r->cat.gen && value > e->size)
			e->size = value;
		return 0;
	}
	struct rpage *pg = page_get(r, map, blk / PFS_PAGE_REFS, false);
	if (pg && lsn < pg->gen)
		return 0; /* the copy already holds this or a newer value */
	if (!pg && !(pg = page_get(r, map, blk / PFS_PAGE_REFS, true)))
		return -ENOMEM;
	pg->ref[blk % PFS_PAGE_REFS].v = value;
	pg->changed = true;
	r->records++;
	if (rec->type == PFS_LOG_SET_PATTERN)
		return pfs_meta_pattern_store(r->f->p.meta, value, rec->pat, rec->period);
	return 0;
}

static int rebuild_replay(struct rebuild *r)
{
	struct scan *s = &r->f->scan;
	uint8_t *buf = malloc(FTL_CHUNK_MAX);
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	/* Log chunks are sorted by first lsn (pfs_mrec_cmp), so records apply in lsn order. */
	for (size_t i = 0; i < s->meta.n && !rc; i++) {
		struct pfs_mrec *c = &s->meta.v[i];
		if (c->tag.gen > r->max_lsn)
			r->max_lsn = c->tag.gen;
		if (c->tag.kind != PFS_MCHUNK_LOG)
			continue;
		int len =
		    ftl_read(r->f->p.ftl, (struct ftl_addr){c->addr}, buf, FTL_CHUNK_MAX, NULL);
		if (len < 0)
			continue; /* a torn, unacknowledged log write */
		rc = pfs_log_decode(buf, (size_t)len, c->tag.a, 0, replay_rec, r);
		if (rc == -EUCLEAN)
			rc = 0;
	}
	free(buf);
	return rc;
}

static int rebuild_write(struct rebuild *r)
{
	struct fsck *f = r->f;
	struct pfs *p = &f->p;
	int rc;

	rc = pfs_meta_begin(p->meta);
	if (rc)
		return rc;
	for (size_t m = 0; m < r->cat.nmaps && !rc; m++) {
		struct pfs_cat_entry *e = &r->cat.maps[m];
		pfs_progress_update(&f->pr, r->cat.nmaps + m + 1, 2 * (uint64_t)r->cat.nmaps);
		int64_t nz = 0, chunks = 0;
		rc = pfs_meta_map_insert_id(p->meta, e->id, e->kind, e->parent, e->name, e->size,
		                            e->ctime_ns);
		for (size_t i = 0; i < r->npages && !rc; i++) {
			struct rpage *pg = r->pages[i];
			uint64_t old;
			if (pg->map != e->id)
				continue;
			for (uint32_t k = 0; k < PFS_PAGE_REFS; k++) {
				nz += pg->ref[k].v != 0;
				chunks += engine_ref_kind(pg->ref[k]) == ENGINE_REF_CHUNK;
			}
			rc = pfs_meta_page_store(p->meta, pg->map, pg->idx, pg->ref,
			                         pg->changed ? PFS_NO_CHUNK : pg->chunk, &old);
		}
		if (!rc)
			rc = pfs_meta_map_update(p->meta, e->id, e->name, e->size, nz, chunks);
		if (!rc) {
			struct pfs_meta_attr at = {e->mode, e->uid, e->gid, e->atime_ns,
			                           e->mtime_ns};
			rc = pfs_meta_attr_set(p->meta, e->id, &at);
		}
		if (!rc && e->kind == PFS_MAP_SNAPSHOT) {
			char key[48];
			snprintf(key, sizeof(key), "snapgen.%llu", (unsigned long long)e->id);
			rc = pfs_meta_kv_set(p->meta, key, e->snap_gen);
		}
	}
	/* Settings, as "key=value" lines. */
	for (char *line = r->cat.config, *nl; !rc && line && *line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = 0;
		char *eq = strchr(line, '=');
		if (eq) {
			*eq = 0;
			if (pfs_config_key(line) >= 0)
				rc = pfs_meta_config_set(p->meta, line, eq + 1);
		}
	}
	/* Everything the log held is in the rows now: the next mount replays nothing. */
	if (!rc)
		rc = pfs_meta_kv_set(p->meta, "ckpt_lsn", r->max_lsn + 1);
	if (!rc)
		rc = pfs_meta_map_id_floor(p->meta, r->cat.next_id);
	if (rc) {
		pfs_meta_rollback(p->meta);
		return rc;
	}
	return pfs_meta_commit(p->meta);
}

static int rebuild(struct fsck *f)
{
	struct rebuild r = {.f = f};
	struct scan *s = &f->scan;
	int rc = -ENOENT;

	r.bucket = calloc(RPAGE_BUCKETS, sizeof(*r.bucket));
	if (!r.bucket)
		return -ENOMEM;

	/* The newest catalogue record that reads back. */
	for (size_t i = s->meta.n; i > 0 && rc; i--) {
		struct pfs_mrec *c = &s->meta.v[i - 1];
		if (c->tag.kind == PFS_MCHUNK_CATALOG)
			rc = pfs_mchunk_read_catalog(f->p.ftl, c->addr, &r.cat);
	}
	if (rc) {
		say(f, "repair: no readable catalogue record on flash: cannot rebuild");
		return rc;
	}
	say(f, "repair: catalogue record of checkpoint %llu: %zu maps",
	    (unsigned long long)r.cat.gen, r.cat.nmaps);
	pfs_store_meta_close(&f->p);
	rc = pfs_vfs_format(f->p.dev, f->p.sb.meta_offset, f->p.sb.meta_size);
	if (!rc)
		rc = pfs_store_meta_open(&f->p);
	if (rc) {
		say(f, "repair: cannot format the metadata region: %s", strerror(-rc));
		goto out;
	}
	pfs_progress_begin(&f->pr, f->progress, "repair: rebuilding maps", "steps");
	rc = rebuild_pages(&r);
	if (!rc)
		rc = rebuild_replay(&r);
	if (!rc)
		rc = rebuild_write(&r);
	if (!rc)
		rc = ftl_dev_flush(f->p.dev);
	if (rc) {
		say(f, "repair: rebuild failed: %s", strerror(-rc));
		goto out;
	}
	say(f, "repair: rebuilt %zu map pages from their flash copies and %llu log records",
	    r.npages, (unsigned long long)r.records);
out:
	for (size_t i = 0; i < r.npages; i++)
		free(r.pages[i]);
	free(r.pages);
	free(r.bucket);
	pfs_catalog_release(&r.cat);
	return rc;
}

/* ---- driver ----------------------------------------------------------------------------- */

static void fsck_init(struct fsck *f, FILE *out)
{
	memset(f, 0, sizeof(*f));
	f->out = out;
	f->progress = fsck_progress;
	pthread_mutex_init(&f->p.commit_lock, NULL);
	pthread_mutex_init(&f->p.cat_lock, NULL);
	pthread_mutex_init(&f->p.cfg_lock, NULL);
	pthread_mutex_init(&f->p.puts_lock, NULL);
	pthread_mutex_init(&f->p.msg_lock, NULL);
}

static uint64_t meta_rows_damaged(struct pfs *p)
{
	struct pfs_meta_stats ms;

	pfs_meta_get_stats(p->meta, &ms);
	return ms.rows_damaged;
}

static void fsck_fini(struct fsck *f)
{
	pfs_store_meta_close(&f->p);
	ftl_close(f->p.ftl);
	f->p.ftl = NULL;
	free(f->scan.data);
	pfs_mrecs_free(&f->scan.meta);
	f->scan.data = NULL;
	f->scan.meta = (struct pfs_mrecs){0};
	f->scan.ndata = f->scan.capdata = 0;
}

static void fsck_destroy(struct fsck *f)
{
	pthread_mutex_destroy(&f->p.commit_lock);
	pthread_mutex_destroy(&f->p.cat_lock);
	pthread_mutex_destroy(&f->p.cfg_lock);
	pthread_mutex_destroy(&f->p.puts_lock);
	pthread_mutex_destroy(&f->p.msg_lock);
}

static void scan_progress(void *arg, uint64_t done, uint64_t total)
{
	pfs_progress_update(arg, done, total);
}

/* One check pass; leaves the FTL and (if it opened) SQLite open. Returns -errno only when the
 * namespace cannot be looked at at all. */
static int check_pass(struct fsck *f, struct ftl_dev *dev, bool rw, bool read_chunks)
{
	int rc;

	f->p.dev = dev;
	f->p.opts.readonly = !rw;
	f->meta_ok = true;
	f->errors = f->maps = f->pages = f->refs = f->dangling = 0;
	f->bad_chunks = f->bad_meta_chunks = f->unreferenced = 0;
	rc = ftl_read_superblock(dev, &f->p.sb);
	if (rc) {
		say(f, "superblock: %s",
		    rc == -EINVAL            ? "not a pstorfs namespace"
		    : rc == -EPROTONOSUPPORT ? "newer format version"
		    : rc == -EUCLEAN         ? "both copies damaged"
		                             : strerror(-rc));
		return rc;
	}
	f->p.bs = f->p.sb.user_block_size;
	say(f,
	    "superblock: format %u, %u segments of %llu bytes, block %u, metadata region %llu+%llu",
	    f->p.sb.version, f->p.sb.segment_count, (unsigned long long)f->p.sb.segment_size,
	    f->p.sb.user_block_size, (unsigned long long)f->p.sb.meta_offset,
	    (unsigned long long)f->p.sb.meta_size);
	/* The whole scan, not the checkpoint: every segment summary is checked. */
	struct ftl_config fc = {.dev = dev,
	                        .scan_cb = scan_cb,
	                        .scan_arg = &f->scan,
	                        .full_scan = true,
	                        .progress_cb = scan_progress,
	                        .progress_arg = &f->pr};
	pfs_progress_begin(&f->pr, f->progress, "scan: segments", "steps");
	rc = ftl_open(&fc, &f->p.ftl);
	pfs_progress_end(&f->pr);
	if (rc) {
		say(f, "segments: cannot scan: %s", strerror(-rc));
		return rc;
	}
	if (f->scan.ndata) /* qsort(NULL, 0) is undefined */
		qsort(f->scan.data, f->scan.ndata, sizeof(uint64_t), pfs_cmp_u64);
	if (f->scan.meta.n) /* qsort(NULL, 0) is undefined */
		qsort(f->scan.meta.v, f->scan.meta.n, sizeof(*f->scan.meta.v), pfs_mrec_cmp);
	struct ftl_stats st;
	ftl_get_stats(f->p.ftl, &st);
	say(f, "segments: %u in use, %zu data chunks, %zu metadata records (%llu bytes live)",
	    st.segments_open + st.segments_closed, f->scan.ndata, f->scan.meta.n,
	    (unsigned long long)st.bytes_live);
	rc = pfs_store_meta_open(&f->p);
	if (rc == -ENOENT && !rw && !st.segments_open && !st.segments_closed && !f->scan.meta.n) {
		/* Formatted and never mounted: no database yet, and nothing on flash needs one. */
		say(f, "metadata: empty (the namespace has never been mounted)");
		f->meta_ok = false;
	} else if (rc) {
		say(f, "metadata: cannot open the SQLite metadata region: %s", strerror(-rc));
		f->meta_ok = false;
		f->errors++;
	} else {
		check_metadata(f);
	}
	if (read_chunks)
		check_chunks(f);
	return 0;
}

int pfs_fsck_dev(struct ftl_dev *dev, bool repair, bool force_rebuild, FILE *out)
{
	struct fsck f;
	int rc, code;

	fsck_init(&f, out);
	rc = check_pass(&f, dev, repair, true);
	if (rc) {
		code = FSCK_ERROR;
		goto out;
	}
	if (!f.errors && !force_rebuild) {
		say(&f, "clean");
		code = FSCK_OK;
		goto out;
	}
	if (!repair) {
		say(&f, "%llu problems found; run with --repair to fix them",
		    (unsigned long long)f.errors);
		code = FSCK_UNCORRECTED;
		goto out;
	}
	if (!f.meta_ok || force_rebuild || f.dangling) {
		rc = rebuild(&f);
	} else {
		/* Map rows that failed their checksum were read from their flash copies: writing
		 * them back repairs the rows. Damaged chunks cannot be repaired (no redundancy). */
		rc = 0;
		if (meta_rows_damaged(&f.p))
			rc = rebuild(&f);
	}
	fsck_fini(&f);
	if (rc) {
		code = FSCK_UNCORRECTED;
		goto out;
	}
	say(&f, "checking again after the repair:");
	rc = check_pass(&f, dev, false, false);
	code = rc || f.errors ? FSCK_UNCORRECTED : FSCK_CORRECTED;
	say(&f, code == FSCK_CORRECTED ? "repaired" : "problems remain");
out:
	fsck_fini(&f);
	fsck_destroy(&f);
	return code;
}

static void fsck_usage(FILE *f)
{
	fprintf(f, "usage: fsck.pstorfs [--repair] [--rebuild] [-q] DEVICE|IMAGE\n"
	           "  --repair   fix what is found (rebuilds lost or damaged metadata from the\n"
	           "             segments)\n"
	           "  --rebuild  with --repair: rebuild the metadata from the segments even if it\n"
	           "             looks fine\n"
	           "  -q, --quiet  no progress lines (shown only on a terminal)\n"
	           "  --version  print the version and exit (-V)\n"
	           "exit: 0 clean, 1 repaired, 4 problems left, 8 cannot check, 16 usage\n");
}

int pfs_fsck_main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"repair", no_argument, NULL, 'r'},  {"rebuild", no_argument, NULL, 'R'},
	    {"quiet", no_argument, NULL, 'q'},   {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'}, {NULL, 0, NULL, 0},
	};
	bool repair = false, force = false, quiet = false;
	struct ftl_dev *dev = NULL;
	int c, rc;

	while ((c = getopt_long(argc, argv, "ryqhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'r':
		case 'y':
			repair = true;
			break;
		case 'R':
			force = true;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			fsck_usage(stdout);
			return 0;
		case 'V':
			printf("fsck.pstorfs %s\n", PSTOR_VERSION);
			return 0;
		default:
			fsck_usage(stderr);
			return 16;
		}
	}
	if (optind != argc - 1) {
		fsck_usage(stderr);
		return 16;
	}
	const char *path = argv[optind];
	rc = ftl_dev_open(path, repair ? 0 : FTL_DEV_RDONLY, 0, &dev);
	if (rc) {
		fprintf(stderr, "fsck.pstorfs: %s: %s\n", path,
		        rc == -EBUSY ? "in use (mounted?)" : strerror(-rc));
		return FSCK_ERROR;
	}
	printf("fsck.pstorfs %s\n", path);
	fsck_progress = pfs_progress_tty(stdout, quiet);
	rc = pfs_fsck_dev(dev, repair, force && repair, stdout);
	ftl_dev_close(dev);
	return rc;
}
