/* tests/fuzz/gen_seeds.c - writes the seed corpora of the fuzz targets (tests/fuzz/corpus) from
 * what the real formatter, FTL and VFS put on a device, encoded as each target reads its input
 * (fuzz_common.h). Run by hand when an on-disk format changes; CI only uses the files.
 * Usage: pstor-fuzz-seeds DIR (writes DIR/fuzz_superblock/..., DIR/fuzz_segment/..., ...)
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ftl.h"
#include "ftl_dev_fault.h"
#include "ftl_format.h"
#include "fuzz_common.h"
#include "pfs_meta.h"
#include "pfs_vol_int.h"

static const char *outdir;

/* A growable byte string: one seed being encoded. */
struct seed {
	uint8_t *b;
	size_t n, cap;
};

static void put(struct seed *s, const void *p, size_t n)
{
	if (s->n + n > s->cap) {
		size_t cap = s->cap ? s->cap : 4096;
		while (cap < s->n + n)
			cap *= 2;
		s->b = realloc(s->b, cap);
		if (!s->b)
			abort();
		s->cap = cap;
	}
	memcpy(s->b + s->n, p, n);
	s->n += n;
}

static void put8(struct seed *s, uint8_t v)
{
	put(s, &v, 1);
}

static void write_seed(const char *target, const char *name, const struct seed *s)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", outdir, target);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/%s", outdir, target, name);
	f = fopen(path, "wb");
	if (!f || fwrite(s->b, 1, s->n, f) != s->n || fclose(f)) {
		fprintf(stderr, "pstor-fuzz-seeds: cannot write %s\n", path);
		exit(1);
	}
	printf("%s: %zu bytes\n", path, s->n);
}

static void write_text(const char *target, const char *name, const char *text)
{
	struct seed s = {0};
	put(&s, text, strlen(text));
	write_seed(target, name, &s);
	free(s.b);
}

/* ---- fuzz_superblock ---------------------------------------------------------------------- */

static void sb_seed(const char *name, unsigned dev_idx, uint32_t dbs, uint64_t seg_size,
                    uint8_t extra_flags, void (*mangle)(struct ftl_sb_disk *a))
{
	static const uint64_t sizes[4] = {128ull << 10, 4ull << 20, 64ull << 20, 1ull << 30};
	static uint8_t blk[4096] __attribute__((aligned(4096)));
	struct ftl_format_params fp = {.segment_size = seg_size};
	struct ftl_dev *dev;
	struct seed s = {0};

	fz_check(ftl_dev_open_mem(sizes[dev_idx], dbs, &dev), "ftl_dev_open_mem");
	fz_check(ftl_format(dev, &fp), "ftl_format");
	put8(&s,
	     (uint8_t)(dev_idx << FZ_SB_DEV_SHIFT) | (dbs == 512 ? FZ_SB_BS512 : 0) | extra_flags);
	fz_check(ftl_dev_read(dev, blk, sizeof(blk), FTL_SB_OFFSET_A), "read A");
	if (mangle)
		mangle((struct ftl_sb_disk *)blk);
	put(&s, blk, FTL_SB_SIZE);
	fz_check(ftl_dev_read(dev, blk, sizeof(blk), FTL_SB_OFFSET_B), "read B");
	put(&s, blk, FTL_SB_SIZE);
	write_seed("fuzz_superblock", name, &s);
	free(s.b);
	ftl_dev_close(dev);
}

static void mangle_crc(struct ftl_sb_disk *a)
{
	a->crc ^= 1; /* copy A damaged: B must be used */
}

static void mangle_version(struct ftl_sb_disk *a)
{
	a->version = 2; /* with FZ_SB_FIX_A: a valid newer copy */
}

static void mangle_segments(struct ftl_sb_disk *a)
{
	a->segment_count += 1; /* with FZ_SB_FIX_A: one segment more than the device holds */
}

static void gen_superblock(void)
{
	sb_seed("valid-4m", 1, 4096, 256 << 10, FZ_SB_OPEN, NULL);
	sb_seed("valid-64m-bs512", 2, 512, 1 << 20, FZ_SB_OPEN, NULL);
	sb_seed("damaged-a", 1, 4096, 256 << 10, FZ_SB_OPEN, mangle_crc);
	sb_seed("newer-a", 2, 4096, 8 << 20, FZ_SB_FIX_A, mangle_version);
	sb_seed("too-many-segments", 1, 4096, 256 << 10, FZ_SB_FIX_A, mangle_segments);
}

/* ---- fuzz_segment ------------------------------------------------------------------------- */

/* Formats the harness's geometry, writes chunks in two packs, and returns the device. */
static struct ftl_dev *segment_device(void)
{
	static const uint32_t lens[] = {100, 700, 1500, 1, 300};
	struct ftl_format_params fp = {.segment_size = FZ_SEG_SIZE, .meta_blocks = 256};
	uint64_t dev_size = (1280ull << 10) + (uint64_t)FZ_SEG_COUNT * FZ_SEG_SIZE;
	struct ftl_config cfg = {0};
	struct ftl_dev *dev;
	struct ftl *ftl;
	uint8_t payload[1500], hash[FTL_HASH_LEN];

	fz_check(ftl_dev_open_mem(dev_size, 4096, &dev), "ftl_dev_open_mem");
	fz_check(ftl_format(dev, &fp), "ftl_format");
	cfg.dev = dev;
	fz_check(ftl_open(&cfg, &ftl), "ftl_open");
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		struct ftl_write_opts o = {.prev = FTL_ADDR_NONE, .flags = (uint8_t)(i * 37)};
		struct ftl_addr a;
		for (size_t k = 0; k < sizeof(payload); k++)
			payload[k] = (uint8_t)(k * (i + 3) >> 2); /* compressible, not constant */
		memset(hash, (int)(0x11 * (i + 1)), sizeof(hash));
		fz_check(ftl_write(ftl, payload, lens[i], hash, &o, &a), "ftl_write");
		if (i == 2)
			fz_check(ftl_sync(ftl), "ftl_sync"); /* ends the first pack */
	}
	ftl_close(ftl);
	return dev;
}

static void gen_segment(void)
{
	static uint8_t seg[FZ_SEG_SIZE] __attribute__((aligned(4096)));
	static const uint8_t variants[][2] = {
	    {FZ_SEG_FIX_HDR | FZ_SEG_FIX_PACK | FZ_SEG_FIX_CHUNK, 0},
	    {FZ_SEG_FIX_HDR | FZ_SEG_FIX_PACK | FZ_SEG_FIX_CHUNK | FZ_SEG_TWICE, 1},
	    {FZ_SEG_FIX_HDR | FZ_SEG_FIX_PACK | FZ_SEG_FIX_CHUNK | FZ_SEG_WORK, 2},
	    {FZ_SEG_FIX_HDR, 3},
	};
	static const char *const names[] = {"two-packs", "two-packs-twice", "two-packs-work",
	                                    "two-packs-hdr-fix-only"};
	struct ftl_superblock_info sb;
	struct ftl_dev *dev = segment_device();
	uint32_t segi;

	fz_check(ftl_read_superblock(dev, &sb), "ftl_read_superblock");
	/* The segment the FTL opened: the one whose header says OPEN. */
	for (segi = 0; segi < sb.segment_count; segi++) {
		fz_check(
		    ftl_dev_read(dev, seg, sizeof(seg), sb.data_offset + segi * sb.segment_size),
		    "segment read");
		if (((struct ftl_seg_disk *)seg)->magic == FTL_SEG_MAGIC &&
		    ((struct ftl_seg_disk *)seg)->state == FTL_SEG_DISK_OPEN)
			break;
	}
	if (segi == sb.segment_count) {
		fprintf(stderr, "pstor-fuzz-seeds: no segment was written\n");
		exit(1);
	}
	for (size_t v = 0; v < sizeof(variants) / sizeof(variants[0]); v++) {
		struct seed s = {0};
		uint32_t off = 4096;
		put8(&s, variants[v][0]);
		put(&s, seg, sizeof(struct ftl_seg_disk));
		/* Compact: each pack's header and entries, then its data bytes. */
		for (;;) {
			const struct ftl_pack_disk *ph = (const void *)(seg + off);
			if (ph->magic != FTL_PACK_MAGIC || off + ph->total_bytes > sizeof(seg))
				break;
			put(&s, ph,
			    sizeof(*ph) + ph->nentries * sizeof(struct ftl_pack_entry_disk));
			put(&s, seg + off + ph->hdr_blocks * 4096, ph->data_bytes);
			off += ph->total_bytes;
		}
		write_seed("fuzz_segment", names[v], &s);
		free(s.b);
	}
	ftl_dev_close(dev);
}

/* ---- fuzz_metaregion ---------------------------------------------------------------------- */

static const char *const meta_sql =
    "PRAGMA page_size=512; PRAGMA journal_mode=DELETE;"
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value);"
    "CREATE TABLE maps(id INTEGER PRIMARY KEY AUTOINCREMENT, kind INTEGER NOT NULL,"
    " parent INTEGER NOT NULL, name TEXT NOT NULL, size INTEGER NOT NULL,"
    " ctime INTEGER NOT NULL, nz INTEGER NOT NULL DEFAULT 0,"
    " chunks INTEGER NOT NULL DEFAULT 0, UNIQUE(kind, parent, name));"
    "CREATE TABLE pages(key INTEGER PRIMARY KEY, data BLOB NOT NULL, chunk INTEGER);"
    "CREATE TABLE patterns(ref INTEGER PRIMARY KEY, pat BLOB NOT NULL);"
    "CREATE TABLE config(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "INSERT INTO meta VALUES('format', 2);"
    "INSERT INTO maps(kind, parent, name, size, ctime) VALUES(0, 0, 'db', 1073741824, 1),"
    " (1, 1, 'nightly', 1073741824, 2);"
    "INSERT INTO pages VALUES(1099511627776, zeroblob(1200), 7);"
    "INSERT INTO config VALUES('compression', 'zstd:3'), ('dedupe', 'on');";

/* Encodes the region of DEV as fuzz_metaregion reads it. */
static void meta_encode(struct ftl_dev *dev, uint8_t flags, const char *name)
{
	static uint8_t region[FZ_META_REGION] __attribute__((aligned(4096)));
	struct pfs_vfs *v;
	struct pfs_vfs_stats st;
	struct seed s = {0};
	uint8_t lenb[4];

	fz_check(pfs_vfs_open(dev, FZ_META_OFF, FZ_META_REGION, "pstor-seed", &v), "pfs_vfs_open");
	pfs_vfs_get_stats(v, &st);
	pfs_vfs_close(v);
	fz_check(ftl_dev_read(dev, region, sizeof(region), FZ_META_OFF), "region read");
	uint32_t slot = fz_le32(region + FZ_META_SLOT);
	put8(&s, flags);
	put(&s, region, FZ_META_HDR);
	put(&s, region + slot, FZ_META_HDR);
	fz_put32(lenb, (uint32_t)st.db_bytes);
	put(&s, lenb, sizeof(lenb));
	put(&s, region + fz_le64(region + FZ_META_DB_OFF), st.db_bytes);
	put(&s, region + fz_le64(region + FZ_META_JNL_OFF), st.journal_bytes);
	write_seed("fuzz_metaregion", name, &s);
	free(s.b);
}

static struct ftl_dev *meta_device(void)
{
	struct ftl_dev *dev;
	struct pfs_vfs *v;
	sqlite3 *db;

	fz_check(ftl_dev_open_mem(FZ_META_DEV, 4096, &dev), "ftl_dev_open_mem");
	fz_check(pfs_vfs_format(dev, FZ_META_OFF, FZ_META_REGION), "pfs_vfs_format");
	fz_check(pfs_vfs_open(dev, FZ_META_OFF, FZ_META_REGION, "pstor-seed", &v), "pfs_vfs_open");
	fz_check(sqlite3_open_v2("fuzz.db", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
	                         "pstor-seed"),
	         "sqlite3_open_v2");
	fz_check(sqlite3_exec(db, meta_sql, NULL, NULL, NULL), "schema");
	fz_check(sqlite3_close(db), "sqlite3_close");
	pfs_vfs_close(v);
	return dev;
}

/* A crash in the middle of a commit: the journal is durable and named in the header, the
 * database pages are not. Cuts power after more and more writes until that state shows. */
static void gen_hot_journal(void)
{
	for (uint64_t n = 1; n < 64; n++) {
		struct ftl_dev *dev = meta_device();
		struct pfs_vfs *v;
		struct pfs_vfs_stats st;
		sqlite3 *db;

		fz_check(pfs_vfs_open(dev, FZ_META_OFF, FZ_META_REGION, "pstor-seed", &v),
		         "pfs_vfs_open");
		fz_check(sqlite3_open_v2("fuzz.db", &db, SQLITE_OPEN_READWRITE, "pstor-seed"),
		         "sqlite3_open_v2");
		fz_check(ftl_dev_mem_power_cut_after(dev, n, false), "power cut");
		sqlite3_exec(db,
		             "UPDATE maps SET size = size * 2; DELETE FROM pages;"
		             "INSERT INTO config VALUES('commit_interval_ms', '100');",
		             NULL, NULL, NULL);
		sqlite3_close(db);
		pfs_vfs_close(v);
		fz_check(ftl_dev_mem_revive(dev), "revive");
		fz_check(pfs_vfs_open(dev, FZ_META_OFF, FZ_META_REGION, "pstor-seed", &v),
		         "pfs_vfs_open after the cut");
		pfs_vfs_get_stats(v, &st);
		pfs_vfs_close(v);
		if (st.journal_bytes > 0) {
			meta_encode(dev, FZ_META_WRITE, "hot-journal");
			ftl_dev_close(dev);
			return;
		}
		ftl_dev_close(dev);
	}
	fprintf(stderr, "pstor-fuzz-seeds: no power cut left a hot journal\n");
	exit(1);
}

static void gen_metaregion(void)
{
	struct ftl_dev *dev = meta_device();
	meta_encode(dev, 0, "schema");
	meta_encode(dev, FZ_META_WRITE, "schema-write");
	meta_encode(dev, FZ_META_WRITE | FZ_META_BS512 | FZ_META_FIX_A | FZ_META_FIX_B,
	            "schema-write-bs512");
	ftl_dev_close(dev);
	gen_hot_journal();
}

/* ---- fuzz_ctl ----------------------------------------------------------------------------- */

static void gen_ctl(void)
{
	write_text("fuzz_ctl", "lifecycle",
	           "volume create a 16M\nsnapshot create a s1\nsnapshot clone a s1 b\n"
	           "volume resize b 32M\nvolume rename b c\nsnapshot restore a s1\n"
	           "snapshot delete a s1\nvolume delete c\nvolume delete a\n");
	write_text("fuzz_ctl", "config",
	           "config set compression zstd:3\nconfig set dedupe off\n"
	           "config set commit_interval_ms 100\n");
	write_text("fuzz_ctl", "too-big", "volume create x 1P\n");
	write_text("fuzz_ctl", "gc-sync", "gc start\nsync\nscrub start\nscrub stop\n");
	write_text("fuzz_ctl", "bad-name", "volume create .hidden 10M\n");
	write_text("fuzz_ctl", "busy",
	           "volume create v 4K\nsnapshot create v s\nvolume delete v\n");
	write_text(
	    "fuzz_ctl", "sizes",
	    "volume create k 1KiB\nvolume resize k 4096\nvolume resize k 18446744073709551615\n");
}

/* ---- fuzz_log, fuzz_catalog, fuzz_pfs_format ----------------------------------------------- */

struct fs_rec {
	uint64_t addr;
	struct pfs_mtag tag;
	uint8_t hash[FTL_HASH_LEN];
};

struct fs_recs {
	struct fs_rec v[256];
	size_t n;
};

static int fs_scan_cb(void *arg, struct ftl_addr addr, const uint8_t hash[FTL_HASH_LEN],
                      uint32_t hash_len, uint32_t len, uint8_t flags)
{
	struct fs_recs *l = arg;
	struct pfs_mtag t;

	(void)len;
	if (!(flags & PFS_CHUNK_META) || hash_len < FTL_HASH_LEN || pfs_mtag_decode(hash, &t) ||
	    l->n == sizeof(l->v) / sizeof(l->v[0]))
		return 0;
	l->v[l->n].addr = addr.v;
	l->v[l->n].tag = t;
	memcpy(l->v[l->n].hash, hash, FTL_HASH_LEN);
	l->n++;
	return 0;
}

static void fs_write(struct pfs *p, struct pfs_vol *v, uint32_t blk, int kind)
{
	static uint8_t b[4096];
	for (size_t i = 0; i < sizeof(b); i++)
		b[i] = kind == 0   ? (uint8_t)(i * 7 + blk) ^ (uint8_t)(i >> 5) /* data */
		       : kind == 1 ? (uint8_t)("0123456789ab"[i % 12])          /* table pattern */
		                   : 0;                                         /* zero */
	struct pfs_change c = {
	    .kind = PFS_CHANGE_WRITE, .vol = v, .buf = b, .off = (uint64_t)blk * 4096, .len = 4096};
	fz_check(pfs_change_apply(p, &c), "write");
}

/* A store on a memory device: volumes, data, table patterns and zeros, a snapshot, a commit
 * (page copies and a catalogue record), more changes and an fsync (log chunks), then a power
 * cut so the log chunks stay; the records are read back from a full scan. */
/* A formatted 64 MiB memory namespace, opened as a store. */
static struct pfs *mem_store(struct ftl_dev **devp)
{
	struct ftl_format_params fp = {
	    .segment_size = 1u << 20, .user_block_size = 4096, .meta_blocks = 256};
	struct pfs_opts o = {.device = "mem", .dedupe = -1, .commit_interval_ms = -1};
	struct ftl_superblock_info sb;
	struct ftl_dev *dev;
	struct pfs *p;
	char msg[256];

	fz_check(ftl_dev_open_mem(64ull << 20, 4096, &dev), "ftl_dev_open_mem");
	fz_check(ftl_format(dev, &fp), "ftl_format");
	fz_check(ftl_read_superblock(dev, &sb), "ftl_read_superblock");
	fz_check(pfs_vfs_format(dev, sb.meta_offset, sb.meta_size), "pfs_vfs_format");
	fz_check(pfs_open_dev(&o, dev, &p, msg, sizeof(msg)), "pfs_open_dev");
	*devp = dev;
	return p;
}

/* The change stream as the log's tap sees it, made into one log chunk: every record type,
 * CHANGE records of most kinds, derived records of a clone_range, SET_FP with fingerprints. */
struct tape {
	struct seed s;
	uint64_t first;
	uint32_t n;
	bool hole;
};

static void tape_rec(void *arg, uint64_t lsn, const uint8_t *rec, size_t len)
{
	struct tape *t = arg;

	if (!rec || (t->n && lsn != t->first + t->n)) {
		t->hole = true;
		return;
	}
	if (!t->n)
		t->first = lsn;
	put(&t->s, rec, len);
	t->n++;
}

static void gen_stream(void)
{
	static struct tape t;
	struct ftl_dev *dev;
	struct pfs *p = mem_store(&dev);

	pfs_log_set_tap(p, tape_rec, &t);
	struct pfs_change cr = {.kind = PFS_CHANGE_VOL_CREATE, .name = "a", .size = 1 << 20};
	fz_check(pfs_change_apply(p, &cr), "volume create");
	cr.name = "b";
	fz_check(pfs_change_apply(p, &cr), "volume create");
	struct pfs_vol *a = pfs_vol_find(p, PFS_MAP_VOLUME, 0, "a");
	struct pfs_vol *b = pfs_vol_find(p, PFS_MAP_VOLUME, 0, "b");
	for (uint32_t blk = 0; blk < 6; blk++)
		fs_write(p, a, blk, (int)(blk % 3));
	struct pfs_change c[] = {
	    {.kind = PFS_CHANGE_SNAP_CREATE, .name = "a", .snap = "s"},
	    {.kind = PFS_CHANGE_CLONE_RANGE, .src = a, .vol = b, .len = 3 * 4096},
	    {.kind = PFS_CHANGE_SETATTR, .vol = a, .attr = {.mask = PFS_ATTR_MODE, .mode = 0640}},
	    {.kind = PFS_CHANGE_RESIZE, .vol = a, .size = 2 << 20},
	    {.kind = PFS_CHANGE_PUNCH, .vol = a, .off = 4096, .len = 4096},
	    {.kind = PFS_CHANGE_CONFIG_SET, .name = "dedupe", .value = "on"},
	    {.kind = PFS_CHANGE_SNAP_CLONE, .name = "a", .snap = "s", .new_name = "c"},
	    {.kind = PFS_CHANGE_VOL_RENAME, .name = "c", .new_name = "d"},
	    {.kind = PFS_CHANGE_SNAP_DELETE, .name = "a", .snap = "s"},
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		fz_check(pfs_change_apply(p, &c[i]), pfs_change_kind_name(c[i].kind));
	pfs_log_set_tap(p, NULL, NULL);
	pfs_vol_unref(a);
	pfs_vol_unref(b);
	pfs_close(p);
	ftl_dev_close(dev);
	fz_check(t.hole || !t.n, "a hole in the tapped stream");

	struct seed chunk = {0};
	uint8_t hdr[3 + 16] = {FZ_LOG_LSN_OK, 0, 0};
	fz_put32(hdr + 3, 0x474f4c50u); /* "PLOG" */
	fz_put32(hdr + 7, t.n);
	for (int i = 0; i < 8; i++)
		hdr[11 + i] = (uint8_t)(t.first >> (8 * i));
	put(&chunk, hdr, sizeof(hdr));
	put(&chunk, t.s.b, t.s.n);
	write_seed("fuzz_log", "stream", &chunk);
	free(chunk.b);
	free(t.s.b);
}

static void gen_fs_records(void)
{
	struct ftl_dev *dev;
	struct pfs *p = mem_store(&dev);

	const char *names[] = {"db", "web-1.img"};
	for (int i = 0; i < 2; i++) {
		struct pfs_change c = {
		    .kind = PFS_CHANGE_VOL_CREATE, .name = names[i], .size = 8ull << 20};
		fz_check(pfs_change_apply(p, &c), "volume create");
	}
	struct pfs_vol *v = pfs_vol_find(p, PFS_MAP_VOLUME, 0, "db");
	for (uint32_t blk = 0; blk < 300; blk += 3)
		fs_write(p, v, blk, (int)(blk % 3 ? 2 : blk % 9 ? 0 : 1));
	struct pfs_change snap = {.kind = PFS_CHANGE_SNAP_CREATE, .name = "db", .snap = "nightly"};
	fz_check(pfs_change_apply(p, &snap), "snapshot create");
	fz_check(pfs_commit(p), "pfs_commit");
	/* A resize may commit: before the changes the log chunks should hold. */
	struct pfs_change rs = {.kind = PFS_CHANGE_RESIZE, .vol = v, .size = 12ull << 20};
	fz_check(pfs_change_apply(p, &rs), "resize");
	for (uint32_t blk = 1; blk < 40; blk += 2)
		fs_write(p, v, blk, (int)(blk % 3));
	struct pfs_change pu = {.kind = PFS_CHANGE_PUNCH, .vol = v, .off = 0, .len = 16384};
	fz_check(pfs_change_apply(p, &pu), "punch");
	fz_check(pfs_sync(p), "pfs_sync");
	pfs_vol_unref(v);
	fz_check(ftl_dev_mem_power_cut(dev, false), "power cut");
	fz_check(ftl_dev_mem_power_cut_after(dev, 0, false), "power cut after");
	pfs_close(p);
	fz_check(ftl_dev_mem_revive(dev), "revive");

	static struct fs_recs recs;
	struct ftl_config cfg = {
	    .dev = dev, .scan_cb = fs_scan_cb, .scan_arg = &recs, .full_scan = true};
	struct ftl *ftl;
	uint8_t *buf = malloc(FTL_CHUNK_MAX);
	int npage = 0, ncat = 0, nlog = 0;
	fz_check(!buf || ftl_open(&cfg, &ftl), "ftl_open");
	for (size_t i = 0; i < recs.n; i++) {
		const struct fs_rec *r = &recs.v[i];
		int len = ftl_read(ftl, (struct ftl_addr){r->addr}, buf, FTL_CHUNK_MAX, NULL);
		char name[64];
		struct seed s = {0};
		fz_check(len < 0, "ftl_read of a record");
		if (r->tag.kind == PFS_MCHUNK_LOG && nlog == 0) {
			/* As is, from a later lsn, stopping early, and for the wrong lsn. */
			static const uint8_t v[4][3] = {{FZ_LOG_LSN_OK, 0, 0},
			                                {FZ_LOG_LSN_OK, 5, 0},
			                                {FZ_LOG_LSN_OK | FZ_LOG_STOP, 0, 3},
			                                {0, 0, 0}};
			static const char *const vn[4] = {"log", "log-from-5", "log-stop-4",
			                                  "log-wrong-lsn"};
			for (int k = 0; k < 4; k++) {
				s.n = 0;
				put(&s, v[k], 3);
				put(&s, buf, (size_t)len);
				write_seed("fuzz_log", vn[k], &s);
			}
			nlog++;
		} else if (r->tag.kind == PFS_MCHUNK_CATALOG && ncat < 3) {
			put(&s, buf, (size_t)len);
			snprintf(name, sizeof(name), "catalog-%d", ncat++);
			write_seed("fuzz_catalog", name, &s);
			if (ncat == 1) {
				/* The same maps in a version-1 record: entries without attributes.
				 */
				struct seed v1 = {0};
				uint32_t n = fz_le32(buf + 24), cfglen = fz_le32(buf + 28);
				uint8_t hdr[PFS_CAT_HDR];
				memcpy(hdr, buf, sizeof(hdr));
				fz_put32(hdr + 4, 1);
				put(&v1, hdr, sizeof(hdr));
				for (uint32_t k = 0; k < n; k++)
					put(&v1, buf + PFS_CAT_HDR + k * PFS_CAT_ENTRY,
					    PFS_CAT_ENTRY_V1);
				put(&v1, buf + PFS_CAT_HDR + n * PFS_CAT_ENTRY, cfglen);
				write_seed("fuzz_catalog", "catalog-v1", &v1);
				free(v1.b);
			}
		} else if (r->tag.kind == PFS_MCHUNK_PAGE && npage < 4) {
			uint8_t key[16];
			fz_put64(key, r->tag.a);
			fz_put64(key + 8, r->tag.b);
			put8(&s, 0); /* a page */
			put8(&s, (uint8_t)(npage << 2 | npage << 4));
			put(&s, key, sizeof(key));
			put(&s, buf, PFS_PAGE_BLOB);
			snprintf(name, sizeof(name), "page-%d", npage);
			write_seed("fuzz_pfs_format", name, &s);
			free(s.b);
			s = (struct seed){0};
			put8(&s, 1); /* a tag */
			put(&s, r->hash, FTL_HASH_LEN);
			snprintf(name, sizeof(name), "tag-page-%d", npage++);
			write_seed("fuzz_pfs_format", name, &s);
		} else {
			continue;
		}
		free(s.b);
	}
	for (size_t i = 0; i < recs.n; i++) {
		/* One tag of each other kind. */
		static bool done[4];
		const struct fs_rec *r = &recs.v[i];
		if (r->tag.kind == PFS_MCHUNK_PAGE || done[r->tag.kind])
			continue;
		done[r->tag.kind] = true;
		struct seed s = {0};
		put8(&s, 1);
		put(&s, r->hash, FTL_HASH_LEN);
		write_seed("fuzz_pfs_format",
		           r->tag.kind == PFS_MCHUNK_LOG ? "tag-log" : "tag-catalog", &s);
		free(s.b);
	}
	if (!nlog || !ncat || !npage) {
		fprintf(stderr,
		        "pstor-fuzz-seeds: records missing: %d log, %d catalogue, %d page\n", nlog,
		        ncat, npage);
		exit(1);
	}
	free(buf);
	ftl_close(ftl);
	ftl_dev_close(dev);
}

/* ---- fuzz_nvme ----------------------------------------------------------------------------- */

static void le_put(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void nvme_seed(const char *name, uint8_t kind, uint8_t flags, const uint8_t *b, size_t n)
{
	struct seed s = {0};

	put8(&s, kind);
	put8(&s, flags);
	put(&s, b, n);
	write_seed("fuzz_nvme", name, &s);
	free(s.b);
}

/* What QEMU 7.2's NVMe controller answered in tests/vm (nvme_vm), trimmed of trailing zeros
 * (the seeds use FZ_NVME_PAD), plus a zone report of three zones in three states. */
static void gen_nvme(void)
{
	static uint8_t b[4096];

	memset(b, 0, sizeof(b));
	le_put(b + 0, 0x1b36, 2);
	memcpy(b + 4, "pstor-nvme-vm       ", 20);
	memcpy(b + 24, "QEMU NVMe Ctrl                          ", 40);
	memcpy(b + 64, "7.2.22  ", 8);
	le_put(b + 80, 0x00010400, 4);
	le_put(b + 520, 0x015d, 2);
	b[525] = 0x07;
	nvme_seed("id-ctrl-qemu", FZ_NVME_ID_CTRL, FZ_NVME_PAD, b, 526);

	memset(b, 0, sizeof(b));
	le_put(b + 0, 65536, 8); /* 256 MiB of 4 KiB LBAs */
	le_put(b + 8, 65536, 8);
	le_put(b + 16, 65536, 8);
	b[24] = 0x14; /* OPTPERF, DAE */
	b[25] = 7;    /* 8 formats */
	b[26] = 4;    /* format 4 in use */
	b[33] = 0x09;
	for (int i = 0; i < 8; i++) {
		static const uint8_t ms[8] = {0, 8, 16, 64, 0, 8, 16, 64};
		le_put(b + 128 + 4 * i, ms[i], 2);
		b[128 + 4 * i + 2] = i < 4 ? 9 : 12;
	}
	nvme_seed("id-ns-qemu-4k", FZ_NVME_ID_NS, FZ_NVME_PAD, b, 160);

	memset(b, 0, sizeof(b));
	le_put(b + 4, 5, 4);                 /* MAR: 6 active */
	le_put(b + 8, 3, 4);                 /* MOR: 4 open */
	le_put(b + 2816, 131072, 8);         /* format 0: 64 MiB zones of 512 B */
	le_put(b + 2816 + 4 * 16, 16384, 8); /* format 4 */
	nvme_seed("zns-id-ns-qemu", FZ_NVME_ZNS_ID_NS, FZ_NVME_PAD | FZ_NVME_LBA512, b, 2816 + 80);

	memset(b, 0, sizeof(b));
	le_put(b + 1, 323, 2);
	le_put(b + 32, 7639, 8);
	le_put(b + 48, 623, 8);
	le_put(b + 64, 699949, 8);
	le_put(b + 80, 1529, 8);
	nvme_seed("smart-qemu", FZ_NVME_SMART, FZ_NVME_PAD, b, 96);

	memset(b, 0, sizeof(b));
	le_put(b, 3, 8);
	for (int i = 0; i < 3; i++) {
		static const uint8_t zs[3] = {0x10, 0x20, 0xe0};
		uint8_t *d = b + 64 + 64 * i;
		d[0] = 2;
		d[1] = zs[i];
		le_put(d + 8, 131072, 8);
		le_put(d + 16, 131072ull * i, 8);
		le_put(d + 24, i == 2 ? UINT64_MAX : 131072ull * i + 8 * i, 8);
	}
	nvme_seed("zones-qemu", FZ_NVME_ZONES, FZ_NVME_LBA512, b, 64 + 3 * 64);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: pstor-fuzz-seeds DIR\n");
		return 2;
	}
	outdir = argv[1];
	mkdir(outdir, 0755);
	gen_superblock();
	gen_segment();
	gen_metaregion();
	gen_ctl();
	gen_nvme();
	gen_fs_records();
	gen_stream();
	return 0;
}
