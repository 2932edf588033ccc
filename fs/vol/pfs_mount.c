/* fs/pfs_mount.c - opening and closing a namespace: device, FTL (with its scan), engine,
 * SQLite metadata, catalogue, and the rebuild of reference counts from the committed maps
 * (invariant 2). Chunks that no committed map references (written after the last commit, or
 * released before an unclean stop) are freed here.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pfs_vol_int.h"

struct scanned {
	uint64_t id;
	uint8_t hash[FTL_HASH_LEN];
};

struct scan_buf {
	struct scanned *v;
	size_t n, cap;
	uint64_t max_id;
	struct pfs_mrecs m; /* fs's own records (pfs_mchunk.c) */
	/* Ids the FTL keeps only damaged (a pack torn by a power cut, or rot); after the recount,
	 * those no map references are candidates to free (copies_free_unreferenced). */
	uint64_t *lost;
	size_t nlost, caplost, nlost_free;
};

/* Data chunks keep what the FTL knows of their hash: the engine's index keys on its first
 * FTL_SCAN_HASH_PREFIX bytes and verifies every match against flash. */
static int scan_collect(void *arg, struct ftl_addr addr, const uint8_t hash[FTL_HASH_LEN],
                        uint32_t hash_len, uint32_t len, uint8_t flags)
{
	struct scan_buf *b = arg;

	(void)len;
	if (flags & PFS_CHUNK_META)
		return pfs_mrecs_add(&b->m, addr.v, hash, hash_len);
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 4096;
		struct scanned *n = realloc(b->v, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		b->v = n;
		b->cap = cap;
	}
	b->v[b->n].id = addr.v;
	memcpy(b->v[b->n].hash, hash, FTL_HASH_LEN);
	b->n++;
	if (addr.v > b->max_id)
		b->max_id = addr.v;
	return 0;
}

static int lost_collect(void *arg, struct ftl_addr addr, uint32_t len)
{
	struct scan_buf *b = arg;

	(void)len;
	if (b->nlost == b->caplost) {
		size_t cap = b->caplost ? b->caplost * 2 : 64;
		uint64_t *n = realloc(b->lost, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		b->lost = n;
		b->caplost = cap;
	}
	b->lost[b->nlost++] = addr.v;
	if (addr.v > b->max_id)
		b->max_id = addr.v;
	return 0;
}

/* Lost ids count references from this base, so the recount tells them apart from ids the
 * scan did not find at all (UINT32_MAX). */
#define LOST_BASE 0x80000000u

struct recount {
	struct pfs *p;
	uint32_t *chunk_refs; /* by chunk id */
	uint64_t nchunks;
	uint32_t *pat_refs; /* by pattern table index */
	uint64_t npats;
	uint64_t dangling;
	uint64_t map;
};

static int recount_page(void *arg, uint64_t map, uint64_t idx, const struct engine_ref *refs)
{
	struct recount *r = arg;

	(void)map;
	(void)idx;
	for (uint32_t i = 0; i < PFS_PAGE_REFS; i++) {
		struct engine_ref ref = refs[i];
		if (engine_ref_kind(ref) == ENGINE_REF_CHUNK) {
			uint64_t id = ref.v & ((1ull << 62) - 1);
			if (id < r->nchunks && r->chunk_refs[id] != UINT32_MAX)
				r->chunk_refs[id]++;
			else
				r->dangling++;
		} else if (engine_ref_is_table_pattern(ref)) {
			uint64_t ix = ref.v & ((1ull << 61) - 1);
			if (ix < r->npats)
				r->pat_refs[ix]++;
			else
				r->dangling++;
		}
	}
	return 0;
}

static int restore_pattern(void *arg, uint64_t refv, const uint8_t *pat, uint32_t period)
{
	struct recount *r = arg;
	struct engine_ref ref = {refv};
	uint8_t full[16] = {0};
	uint64_t ix = refv & ((1ull << 61) - 1);

	if (!engine_ref_is_table_pattern(ref) || ix >= r->npats || !r->pat_refs[ix])
		return 0; /* no committed map uses it any more */
	memcpy(full, pat, period);
	int rc = engine_pattern_restore(r->p->eng, ref, full, period, r->pat_refs[ix]);
	if (rc)
		pfs_logl(LOG_ERR, "pstorfs: pattern %#llx: restore failed %d",
		         (unsigned long long)refv, rc);
	r->pat_refs[ix] = 0;
	return 0;
}

static int recount_map_page(void *arg, uint64_t idx, const struct engine_ref *refs)
{
	struct recount *r = arg;
	return recount_page(arg, r->map, idx, refs);
}

/* Patterns are indexed by table slot; the table is capped at 2^20 entries (engine). */
#define PFS_PATTERN_SLOTS (1u << 20)

static int rebuild(struct pfs *p, struct scan_buf *sb)
{
	struct recount r = {.p = p};
	int rc = 0;

	r.nchunks = sb->n || sb->nlost ? sb->max_id + 1 : 0;
	r.chunk_refs = calloc(r.nchunks ? r.nchunks : 1, sizeof(*r.chunk_refs));
	r.npats = PFS_PATTERN_SLOTS;
	r.pat_refs = calloc(r.npats, sizeof(*r.pat_refs));
	if (!r.chunk_refs || !r.pat_refs) {
		rc = -ENOMEM;
		goto out;
	}
	/* Ids that the scan did not find stay marked, so references to them count as dangling. */
	for (uint64_t i = 0; i < r.nchunks; i++)
		r.chunk_refs[i] = UINT32_MAX;
	for (size_t i = 0; i < sb->n; i++)
		r.chunk_refs[sb->v[i].id] = 0;
	for (size_t i = 0; i < sb->nlost; i++)
		r.chunk_refs[sb->lost[i]] = LOST_BASE;
	/* Every map of the catalogue, with the pages the log replay changed in memory. */
	for (struct pfs_vol *v = p->vols; v && !rc; v = v->next) {
		r.map = v->id;
		rc = pfs_map_each_page(p, v, recount_map_page, &r);
	}
	if (rc)
		goto out;
	for (size_t i = 0; i < sb->n; i++) {
		struct ftl_addr addr = {sb->v[i].id};
		uint32_t refs = r.chunk_refs[addr.v];
		if (refs) {
			rc = engine_index_add(p->eng, addr, sb->v[i].hash, refs);
			if (rc)
				goto out;
		} else if (!p->opts.readonly) {
			ftl_free(p->ftl, addr);
			p->mount_chunks_freed++;
		}
	}
	/* A lost id a map references stays (its blocks read EIO, never another chunk's data);
	 * one no map references goes to the candidates copies_free_unreferenced frees. */
	sb->nlost_free = 0;
	for (size_t i = 0; i < sb->nlost; i++) {
		uint32_t refs = r.chunk_refs[sb->lost[i]] - LOST_BASE;
		if (refs)
			r.dangling += refs;
		else
			sb->lost[sb->nlost_free++] = sb->lost[i];
	}
	rc = pfs_meta_patterns_each(p->meta, restore_pattern, &r);
	if (rc)
		goto out;
	for (uint64_t i = 0; i < r.npats; i++)
		r.dangling += r.pat_refs[i] ? 1 : 0;
	if (r.dangling) {
		/* Issue 4 territory (fsck); reads of those blocks fail with EIO, never wrong data.
		 */
		atomic_store(&p->damaged_refs, r.dangling);
		pfs_logl(LOG_ERR, "pstorfs: %llu block references point to missing data",
		         (unsigned long long)r.dangling);
	}
	p->mount_chunks_scanned = sb->n;
out:
	free(r.chunk_refs);
	free(r.pat_refs);
	return rc;
}

/* ---- roll-forward: log chunks since the last checkpoint ---------------------------------- */

struct replay {
	struct pfs *p;
	uint64_t records;
};

/* The mount's recovery draws progress lines on a terminal: the daemon's stderr until it
 * detaches (pstorfs -f, or the parent waiting for the mount), never under systemd or in tests. */
static FILE *recovery_progress(void)
{
	return pfs_progress_tty(stderr, false);
}

static void scan_progress(void *arg, uint64_t done, uint64_t total)
{
	pfs_progress_update(arg, done, total);
}

static int replay_rec(void *arg, const struct pfs_log_rec *rec)
{
	struct replay *r = arg;
	struct pfs *p = r->p;
	struct pfs_vol *v;
	uint64_t blk = rec->blk, value = rec->value;
	int rc = 0;

	/* Catalogue, attribute and setting changes commit to SQLite before they return: their
	 * records are in the stream for other boxes, and there is nothing to redo here. */
	if (rec->type == PFS_LOG_CHANGE)
		return 0;
	v = pfs_vol_by_id(p, rec->map);
	if (!v)
		return 0; /* deleted since: its records are moot */
	if (v->kind != PFS_MAP_VOLUME)
		goto out;
	if (rec->type == PFS_LOG_SIZE) {
		if (value > atomic_load(&v->size) && value <= p->max_volume_bytes) {
			atomic_store(&v->size, value);
			v->size_dirty = true;
		}
	} else {
		struct pfs_mpage *pg = NULL;
		rc = pfs_map_page(p, v, blk / PFS_PAGE_REFS, true, &pg);
		if (!rc)
			pfs_map_set(p, v, pg, (uint32_t)(blk % PFS_PAGE_REFS),
			            (struct engine_ref){value});
		if (!rc && rec->type == PFS_LOG_SET_PATTERN && !p->opts.readonly)
			rc = pfs_meta_pattern_store(p->meta, value, rec->pat, rec->period);
	}
	r->records++;
out:
	pfs_vol_unref(v);
	return rc;
}

/* Applies, in lsn order, every record at or above the checkpoint's lsn; the old references
 * the maps give back are not released (the recount that follows counts the final maps). */
static int replay_log(struct pfs *p, struct scan_buf *sb)
{
	uint8_t *buf = malloc(FTL_CHUNK_MAX);
	struct replay r = {.p = p};
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	p->replaying = true;
	struct pfs_progress pr;
	pfs_progress_begin(&pr, recovery_progress(), "recovery: replaying the log", "records");
	for (size_t i = 0; i < sb->m.n && !rc; i++) {
		struct pfs_mrec *m = &sb->m.v[i];
		pfs_progress_update(&pr, i + 1, sb->m.n);
		if (m->tag.kind != PFS_MCHUNK_LOG)
			continue;
		if (!p->opts.readonly)
			pfs_log_adopt(p, m->addr, m->tag.gen); /* freed by the next checkpoint */
		if (m->tag.gen <= p->ckpt_lsn)
			continue;
		int len = ftl_read(p->ftl, (struct ftl_addr){m->addr}, buf, FTL_CHUNK_MAX, NULL);
		if (len < 0) {
			/* Records of an fsync that never returned can be torn; anything
			 * acknowledged was flushed whole. Either way: skip, and say so. */
			pfs_logl(LOG_ERR, "pstorfs: log chunk at lsn %llu unreadable (%d): skipped",
			         (unsigned long long)m->tag.a, len);
			continue;
		}
		rc = pfs_log_decode(buf, (size_t)len, m->tag.a, p->ckpt_lsn, replay_rec, &r);
		if (rc == -EUCLEAN) {
			pfs_logl(LOG_ERR, "pstorfs: log chunk at lsn %llu is malformed: skipped",
			         (unsigned long long)m->tag.a);
			rc = 0;
		}
		p->replayed_chunks++;
	}
	p->replaying = false;
	p->replayed_records = r.records;
	pfs_progress_end(&pr);
	free(buf);
	return rc;
}

/* ---- page copies: which to keep, which to rewrite ---------------------------------------- */

struct copies {
	struct pfs_mrec *pages; /* sorted by (map, idx, gen) */
	size_t npages;
	uint64_t *refd; /* copy addresses rows point to, sorted */
	size_t nrefd, caprefd;
	struct pfs *p;
	uint64_t stale;
};

/* The newest copy found for (map, idx), or NULL. */
static const struct pfs_mrec *newest_copy(const struct copies *c, uint64_t map, uint64_t idx)
{
	size_t lo = 0, hi = c->npages;
	while (lo < hi) { /* first entry > (map, idx, max) */
		size_t mid = (lo + hi) / 2;
		const struct pfs_mtag *t = &c->pages[mid].tag;
		if (t->a < map || (t->a == map && t->b <= idx))
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	const struct pfs_mrec *m = &c->pages[lo - 1];
	return m->tag.a == map && m->tag.b == idx ? m : NULL;
}

/* A row whose copy is not the newest one found for its page (a checkpoint that wrote copies
 * and then crashed before its SQLite commit) gets a fresh copy at the next checkpoint, newer
 * than the stale one, so a rebuild from flash can never prefer the stale copy. */
static int check_row(void *arg, uint64_t map, uint64_t idx, const struct engine_ref *refs,
                     uint64_t chunk)
{
	struct copies *c = arg;
	const struct pfs_mrec *m = newest_copy(c, map, idx);
	uint64_t old;

	/* A snapshot row points to its volume's copy (tagged with the volume's id): only a copy
	 * tagged with the row's own map counts here. */
	if (!m || m->addr == chunk)
		return 0;
	c->stale++;
	return c->p->opts.readonly
	           ? 0
	           : pfs_meta_page_store(c->p->meta, map, idx, refs, PFS_NO_CHUNK, &old);
}

static int collect_refd(void *arg, uint64_t map, uint64_t idx, const struct engine_ref *refs,
                        uint64_t chunk)
{
	struct copies *c = arg;

	(void)map;
	(void)idx;
	(void)refs;
	if (chunk == PFS_NO_CHUNK)
		return 0;
	if (c->nrefd == c->caprefd) {
		size_t cap = c->caprefd ? c->caprefd * 2 : 1024;
		uint64_t *n = realloc(c->refd, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		c->refd = n;
		c->caprefd = cap;
	}
	c->refd[c->nrefd++] = chunk;
	return 0;
}

static int copies_check_rows(struct pfs *p, struct scan_buf *sb, struct copies *c)
{
	c->p = p;
	c->pages = sb->m.v;
	while (c->npages < sb->m.n && sb->m.v[c->npages].tag.kind == PFS_MCHUNK_PAGE)
		c->npages++;
	return pfs_meta_pages_each_chunk(p->meta, -1, false, check_row, c);
}

/* Before the mount checkpoint: copies and catalogue records nothing points to are freed. */
static void copies_free_unreferenced(struct pfs *p, struct scan_buf *sb, struct copies *c)
{
	c->nrefd = 0;
	if (pfs_meta_pages_each_chunk(p->meta, -1, false, collect_refd, c))
		return; /* keep everything: freed at a later mount */
	if (c->nrefd)   /* qsort(NULL, 0) is undefined */
		qsort(c->refd, c->nrefd, sizeof(*c->refd), pfs_cmp_u64);
	for (size_t i = 0; i < sb->m.n; i++) {
		struct pfs_mrec *m = &sb->m.v[i];
		bool keep;
		if (m->tag.kind == PFS_MCHUNK_PAGE)
			keep = c->nrefd &&
			       bsearch(&m->addr, c->refd, c->nrefd, sizeof(uint64_t), pfs_cmp_u64);
		else if (m->tag.kind == PFS_MCHUNK_CATALOG)
			keep = m->addr == p->cat_chunk;
		else
			continue; /* log chunks: the checkpoint freed those it covers */
		if (!keep)
			ftl_free(p->ftl, (struct ftl_addr){m->addr});
	}
	/* Lost ids no map holds: free unless a map row or the catalogue names one as its copy
	 * (rot in a copy SQLite still points to: that row's copy is freed when it is replaced,
	 * and must not be freed twice). A torn pack never reached the ftl_sync a commit starts
	 * with, so nothing durable points into it. */
	for (size_t i = 0; i < sb->nlost_free; i++) {
		uint64_t a = sb->lost[i];
		if (a == p->cat_chunk ||
		    (c->nrefd && bsearch(&a, c->refd, c->nrefd, sizeof(uint64_t), pfs_cmp_u64)))
			continue;
		ftl_free(p->ftl, (struct ftl_addr){a});
		p->mount_lost_freed++;
	}
	if (p->mount_lost_freed)
		pfs_logl(LOG_NOTICE,
		         "pstorfs: freed %llu damaged chunks nothing referenced (a pack torn by a "
		         "power cut)",
		         (unsigned long long)p->mount_lost_freed);
}

static void superblock_msg(const char *path, int rc, const struct ftl_superblock_info *sb,
                           uint64_t dev_size, char *msg, size_t msglen);

int pfs_probe(const char *path, char *msg, size_t msglen)
{
	struct ftl_dev *dev = NULL;
	struct ftl_superblock_info sb;
	int rc;

	rc = ftl_dev_open(path, FTL_DEV_RDONLY, 0, &dev);
	if (rc) {
		snprintf(msg, msglen, "%s: %s", path, strerror(-rc));
		return rc;
	}
	rc = ftl_read_superblock(dev, &sb);
	superblock_msg(path, rc, &sb, ftl_dev_size(dev), msg, msglen);
	ftl_dev_close(dev);
	return rc;
}

static void superblock_msg(const char *path, int rc, const struct ftl_superblock_info *sb,
                           uint64_t dev_size, char *msg, size_t msglen)
{
	if (rc == -EFBIG) {
		snprintf(msg, msglen,
		         "%.140s: truncated: %llu bytes, its pstorfs namespace needs %llu", path,
		         (unsigned long long)dev_size, (unsigned long long)sb->device_size);
		return;
	}
	if (rc == -EINVAL)
		snprintf(msg, msglen, "%s: not a pstorfs namespace (run mkfs.pstorfs first)", path);
	else if (rc == -EPROTONOSUPPORT)
		snprintf(msg, msglen, "%s: made by a newer pstorfs (format version not supported)",
		         path);
	else if (rc == -EUCLEAN)
		snprintf(msg, msglen, "%s: both superblocks are damaged", path);
	else if (rc)
		snprintf(msg, msglen, "%s: cannot read the superblock: %s", path, strerror(-rc));
}

/* Log replay, recount, and the mount checkpoint that makes the replayed state SQLite's. */
static int recover(struct pfs *p, struct scan_buf *sb)
{
	struct copies c = {0};
	uint64_t v;
	int rc;

	p->ckpt_lsn = pfs_meta_kv_get(p->meta, "ckpt_lsn", &v) == 0 ? v : 0;
	p->cat_chunk = pfs_meta_kv_get(p->meta, "cat_chunk", &v) == 0 ? v : PFS_NO_CHUNK;
	/* New lsns start above everything on flash, so new copies and records always win. */
	uint64_t next = (sb->m.max_gen > p->ckpt_lsn ? sb->m.max_gen : p->ckpt_lsn) + 1;
	p->log.next_lsn = p->log.buf_lsn = p->log.durable_lsn = next;

	if (sb->m.n) /* qsort(NULL, 0) is undefined */
		qsort(sb->m.v, sb->m.n, sizeof(*sb->m.v), pfs_mrec_cmp);
	int64_t t0 = pfs_now_ns();
	rc = replay_log(p, sb);
	p->replay_seconds = (double)(pfs_now_ns() - t0) / 1e9;
	if (rc)
		return rc;
	if (p->replayed_records)
		pfs_logl(LOG_NOTICE,
		         "pstorfs: replayed %llu map changes from %llu log chunks in %.3f s",
		         (unsigned long long)p->replayed_records,
		         (unsigned long long)p->replayed_chunks, p->replay_seconds);
	rc = rebuild(p, sb);
	if (rc)
		return rc;
	rc = copies_check_rows(p, sb, &c);
	if (rc || p->opts.readonly)
		goto out;
	/* Before the mount checkpoint: the copies it supersedes are queued for freeing after
	 * the next one, so freeing "unreferenced" copies after it would free those twice, the
	 * second time under an id a new chunk may hold by then. */
	copies_free_unreferenced(p, sb, &c);
	/* Frees from the rebuild reach the device now, so a crash cannot resurrect them, and
	 * the replayed changes move from the log into SQLite. */
	atomic_store(&p->cat_dirty, true);
	rc = pfs_commit(p);
out:
	free(c.refd);
	return rc;
}

static int open_common(const struct pfs_opts *opts, struct ftl_dev *dev, struct pfs **out,
                       char *msg, size_t msglen)
{
	struct scan_buf sb = {0};
	struct pfs_progress pr;
	struct pfs *p;
	int rc;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->opts = *opts;
	pthread_mutex_init(&p->commit_lock, NULL);
	pthread_mutex_init(&p->cat_lock, NULL);
	pthread_mutex_init(&p->cfg_lock, NULL);
	pthread_mutex_init(&p->puts_lock, NULL);
	pthread_mutex_init(&p->bg_lock, NULL);
	pthread_cond_init(&p->bg_cond, NULL);
	pthread_mutex_init(&p->msg_lock, NULL);
	pfs_log_init(p);
	p->cat_chunk = PFS_NO_CHUNK;
	snprintf(p->msg, sizeof(p->msg), "ok");
	int64_t t0 = pfs_now_ns();

	if (dev) {
		p->dev = dev;
	} else {
		rc = ftl_dev_open(opts->device,
		                  (opts->readonly ? FTL_DEV_RDONLY : 0) |
		                      (opts->buffered ? FTL_DEV_BUFFERED : 0),
		                  0, &p->dev);
		if (rc) {
			snprintf(msg, msglen, "%s: %s", opts->device,
			         rc == -EBUSY ? "in use (already mounted?)" : strerror(-rc));
			goto err;
		}
		p->dev_owned = p->dev;
	}
	rc = ftl_read_superblock(p->dev, &p->sb);
	if (rc) {
		superblock_msg(opts->device, rc, &p->sb, ftl_dev_size(p->dev), msg, msglen);
		goto err;
	}
	p->bs = p->sb.user_block_size;
	struct ftl_config fc = {
	    .dev = p->dev,
	    .gc_thread = opts->gc_thread && !opts->readonly,
	    .scan_cb = scan_collect,
	    .lost_cb = lost_collect,
	    .scan_arg = &sb,
	    .full_scan = opts->full_scan,
	    .progress_cb = scan_progress,
	    .progress_arg = &pr,
	};
	pfs_progress_begin(&pr, recovery_progress(), "recovery: reading segments", "steps");
	rc = ftl_open(&fc, &p->ftl);
	pfs_progress_end(&pr);
	if (!rc)
		rc = pfs_mrecs_resolve(&sb.m, p->ftl);
	if (rc) {
		snprintf(msg, msglen, "%s: cannot open the flash layer: %s", opts->device,
		         strerror(-rc));
		goto err;
	}
	struct ftl_stats fs;
	ftl_get_stats(p->ftl, &fs);
	/* Thin provisioning: a volume may be larger than the namespace; the bound keeps sizes
	 * sane (256x the namespace, and what 2^40 block-map entries address). */
	uint64_t thin = fs.capacity_bytes / p->bs * p->bs * 256;
	uint64_t addr = (uint64_t)p->bs << 40;
	p->max_volume_bytes = thin < addr ? thin : addr;

	rc = pfs_store_meta_open(p);
	if (rc) {
		snprintf(msg, msglen, "%s: cannot open the metadata: %s%s", opts->device,
		         strerror(-rc),
		         rc == -EUCLEAN || rc == -EIO ? " (run fsck.pstorfs --repair)" : "");
		goto err;
	}
	p->cfg.codec = ENGINE_CODEC_LZ4;
	p->cfg.dedupe = true;
	p->cfg.commit_interval_ms = 5000;
	p->cfg.analytics_interval = 60;
	p->cfg.temp_cold_after = 86400;        /* a day */
	p->cfg.temp_frozen_after = 30 * 86400; /* a month */
	p->cfg.temp_hot_heat = 64;
	p->cfg.temp_half_life = 3600;
	p->cfg.tier_rate = 1ull << 20; /* background work: about 86 GB of stored data a day */
	rc = pfs_config_load(p);
	if (rc) {
		snprintf(msg, msglen, "%s: bad option: %s", opts->device, p->msg);
		goto err;
	}
	struct engine_config ec = {
	    .ftl = p->ftl,
	    .block_size = p->bs,
	    .codec = p->cfg.codec,
	    .level = p->cfg.level,
	    .dedupe = p->cfg.dedupe,
	};
	rc = engine_open(&ec, &p->eng);
	if (rc) {
		snprintf(msg, msglen, "%s: cannot start the reduction engine: %s", opts->device,
		         strerror(-rc));
		goto err;
	}
	rc = pfs_catalog_load(p);
	if (rc) {
		snprintf(msg, msglen, "%s: cannot load the volume catalogue: %s%s", opts->device,
		         strerror(-rc), " (run fsck.pstorfs --repair)");
		goto err;
	}
	rc = recover(p, &sb);
	if (rc) {
		snprintf(msg, msglen, "%s: cannot recover the maps: %s", opts->device,
		         strerror(-rc));
		goto err;
	}
	free(sb.v);
	free(sb.lost);
	pfs_mrecs_free(&sb.m);
	sb.v = NULL;
	sb.lost = NULL;
	p->recovered = true;
	pfs_temp_open(p); /* never fails the mount: a store it cannot read starts afresh */
	if (!opts->readonly) {
		rc = pfs_commit_start(p);
		if (rc) {
			snprintf(msg, msglen, "cannot start the commit thread: %s", strerror(-rc));
			goto err;
		}
	}
	/* On a read-only mount too: the settings show; the mover does not run. */
	rc = pfs_tier_start(p);
	if (rc) {
		snprintf(msg, msglen, "cannot start the tiering mover: %s", strerror(-rc));
		goto err;
	}
	p->mount_time_ns = pfs_now_ns();
	p->mount_seconds = (double)(p->mount_time_ns - t0) / 1e9;
	*out = p;
	return 0;
err:
	free(sb.v);
	free(sb.lost);
	pfs_mrecs_free(&sb.m);
	pfs_close(p);
	return rc;
}

int pfs_open(const struct pfs_opts *opts, struct pfs **out, char *msg, size_t msglen)
{
	return open_common(opts, NULL, out, msg, msglen);
}

static int meta_read_copy(void *arg, uint64_t chunk, uint64_t idx, struct engine_ref *refs)
{
	struct pfs *p = arg;

	return p->ftl ? pfs_mchunk_read_page(p->ftl, chunk, idx, refs, NULL, NULL) : -ENOENT;
}

int pfs_store_meta_open(struct pfs *p)
{
	struct pfs_meta_params prm = {
	    .dev = p->dev,
	    .offset = p->sb.meta_offset,
	    .size = p->sb.meta_size,
	    .readonly = p->opts.readonly,
	    .read_copy = meta_read_copy,
	    .arg = p,
	};
	return pfs_meta_open(&prm, &p->meta);
}

void pfs_store_meta_close(struct pfs *p)
{
	pfs_meta_close(p->meta);
	p->meta = NULL;
}

int pfs_open_dev(const struct pfs_opts *opts, struct ftl_dev *dev, struct pfs **out, char *msg,
                 size_t msglen)
{
	return open_common(opts, dev, out, msg, msglen);
}

void pfs_close(struct pfs *p)
{
	pfs_scrub_stop(p);
	pfs_tier_stop(p);
	if (!p)
		return;
	pfs_commit_stop(p);
	pfs_temp_close(p); /* before the final commit: it makes the temperatures durable too */
	if (p->recovered) {
		int rc = pfs_commit(p);
		if (rc)
			pfs_logl(LOG_ERR,
			         "pstorfs: final commit failed: %d (the last changes are lost)",
			         rc);
	}
	pfs_catalog_free(p);
	pfs_temp_free(p);
	engine_close(p->eng);
	pfs_store_meta_close(p);
	ftl_close(p->ftl);
	ftl_dev_close(p->dev_owned);
	pfs_log_destroy(p);
	free(p->puts);
	free(p->mfrees);
	pthread_mutex_destroy(&p->commit_lock);
	pthread_mutex_destroy(&p->cat_lock);
	pthread_mutex_destroy(&p->cfg_lock);
	pthread_mutex_destroy(&p->puts_lock);
	pthread_mutex_destroy(&p->bg_lock);
	pthread_cond_destroy(&p->bg_cond);
	pthread_mutex_destroy(&p->msg_lock);
	free(p);
}
