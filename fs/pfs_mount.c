/* fs/pfs_mount.c - opening and closing a namespace: device, FTL (with its scan), engine,
 * SQLite metadata, catalogue, and the rebuild of reference counts from the committed maps
 * (invariant 2). Chunks that no committed map references (written after the last commit, or
 * released before an unclean stop) are freed here.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pfs_int.h"

struct scanned {
	uint64_t id;
	uint8_t hash[FTL_HASH_LEN];
};

struct scan_buf {
	struct scanned *v;
	size_t n, cap;
	uint64_t max_id;
};

static int scan_collect(void *arg, struct ftl_addr addr, const uint8_t hash[FTL_HASH_LEN],
                        uint32_t len, uint8_t flags)
{
	struct scan_buf *b = arg;

	(void)len;
	(void)flags;
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

struct recount {
	struct pfs *p;
	uint32_t *chunk_refs; /* by chunk id */
	uint64_t nchunks;
	uint32_t *pat_refs; /* by pattern table index */
	uint64_t npats;
	uint64_t dangling;
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
		pfs_log("pstorfs: pattern %#llx: restore failed %d", (unsigned long long)refv, rc);
	r->pat_refs[ix] = 0;
	return 0;
}

/* Patterns are indexed by table slot; the table is capped at 2^20 entries (engine). */
#define PFS_PATTERN_SLOTS (1u << 20)

static int rebuild(struct pfs *p, struct scan_buf *sb)
{
	struct recount r = {.p = p};
	int rc = 0;

	r.nchunks = sb->n ? sb->max_id + 1 : 0;
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
	rc = pfs_meta_pages_each(p, -1, recount_page, &r);
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
	rc = pfs_meta_patterns_each(p, restore_pattern, &r);
	if (rc)
		goto out;
	for (uint64_t i = 0; i < r.npats; i++)
		r.dangling += r.pat_refs[i] ? 1 : 0;
	if (r.dangling) {
		/* Issue 4 territory (fsck); reads of those blocks fail with EIO, never wrong data.
		 */
		atomic_store(&p->damaged_refs, r.dangling);
		pfs_log("pstorfs: %llu block references point to missing data",
		        (unsigned long long)r.dangling);
	}
	p->mount_chunks_scanned = sb->n;
out:
	free(r.chunk_refs);
	free(r.pat_refs);
	return rc;
}

static void superblock_msg(const char *path, int rc, char *msg, size_t msglen);

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
	superblock_msg(path, rc, msg, msglen);
	ftl_dev_close(dev);
	return rc;
}

static void superblock_msg(const char *path, int rc, char *msg, size_t msglen)
{
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

int pfs_open(const struct pfs_opts *opts, struct pfs **out, char *msg, size_t msglen)
{
	struct scan_buf sb = {0};
	struct pfs *p;
	int rc;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->opts = *opts;
	pthread_mutex_init(&p->commit_lock, NULL);
	pthread_mutex_init(&p->db_lock, NULL);
	pthread_mutex_init(&p->cat_lock, NULL);
	pthread_mutex_init(&p->cfg_lock, NULL);
	pthread_mutex_init(&p->puts_lock, NULL);
	pthread_mutex_init(&p->bg_lock, NULL);
	pthread_cond_init(&p->bg_cond, NULL);
	pthread_mutex_init(&p->msg_lock, NULL);
	snprintf(p->msg, sizeof(p->msg), "ok");
	int64_t t0 = pfs_now_ns();

	rc = ftl_dev_open(opts->device, opts->readonly ? FTL_DEV_RDONLY : 0, 0, &p->dev);
	if (rc) {
		snprintf(msg, msglen, "%s: %s", opts->device,
		         rc == -EBUSY ? "in use (already mounted?)" : strerror(-rc));
		goto err;
	}
	rc = ftl_read_superblock(p->dev, &p->sb);
	if (rc) {
		superblock_msg(opts->device, rc, msg, msglen);
		goto err;
	}
	p->bs = p->sb.user_block_size;
	struct ftl_config fc = {
	    .dev = p->dev,
	    .gc_thread = opts->gc_thread && !opts->readonly,
	    .scan_cb = scan_collect,
	    .scan_arg = &sb,
	};
	rc = ftl_open(&fc, &p->ftl);
	if (rc) {
		snprintf(msg, msglen, "%s: cannot open the flash layer: %s", opts->device,
		         strerror(-rc));
		goto err;
	}
	struct ftl_stats fs;
	ftl_get_stats(p->ftl, &fs);
	p->max_volume_bytes = fs.capacity_bytes / p->bs * p->bs;

	rc = pfs_meta_open(p);
	if (rc) {
		snprintf(msg, msglen, "%s: cannot open the metadata: %s", opts->device,
		         strerror(-rc));
		goto err;
	}
	p->cfg.codec = ENGINE_CODEC_LZ4;
	p->cfg.dedupe = true;
	p->cfg.commit_interval_ms = 5000;
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
	if (!rc)
		rc = rebuild(p, &sb);
	if (rc) {
		snprintf(msg, msglen, "%s: cannot load the volume catalogue: %s", opts->device,
		         strerror(-rc));
		goto err;
	}
	free(sb.v);
	sb.v = NULL;
	if (!opts->readonly) {
		/* Frees from the rebuild reach the device now, so a crash cannot resurrect them. */
		ftl_sync(p->ftl);
		rc = pfs_commit_start(p);
		if (rc) {
			snprintf(msg, msglen, "cannot start the commit thread: %s", strerror(-rc));
			goto err;
		}
	}
	p->mount_time_ns = pfs_now_ns();
	p->mount_seconds = (double)(p->mount_time_ns - t0) / 1e9;
	*out = p;
	return 0;
err:
	free(sb.v);
	pfs_close(p);
	return rc;
}

void pfs_close(struct pfs *p)
{
	if (!p)
		return;
	pfs_commit_stop(p);
	if (p->db && p->eng && p->ftl) {
		int rc = pfs_commit(p);
		if (rc)
			pfs_log("pstorfs: final commit failed: %d (the last changes are lost)", rc);
	}
	pfs_catalog_free(p);
	engine_close(p->eng);
	pfs_meta_close(p);
	ftl_close(p->ftl);
	ftl_dev_close(p->dev);
	free(p->puts);
	pthread_mutex_destroy(&p->commit_lock);
	pthread_mutex_destroy(&p->db_lock);
	pthread_mutex_destroy(&p->cat_lock);
	pthread_mutex_destroy(&p->cfg_lock);
	pthread_mutex_destroy(&p->puts_lock);
	pthread_mutex_destroy(&p->bg_lock);
	pthread_cond_destroy(&p->bg_cond);
	pthread_mutex_destroy(&p->msg_lock);
	free(p);
}
