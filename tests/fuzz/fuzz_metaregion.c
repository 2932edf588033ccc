/* tests/fuzz/fuzz_metaregion.c - libFuzzer target for the SQLite VFS over the metadata region
 * (fs/pfs_vfs.c): fuzz bytes replace the header copies, the database and the journal of a
 * formatted region, then pfs_vfs_open must refuse it or serve SQLite through it, and a region
 * it served must open again after a clean close.
 *
 * Input: [flags][header A: 128][header B: 128][db length: le32][db bytes][journal bytes]; any
 * part may be missing (it then keeps what pfs_vfs_format wrote). FZ_META_* in fuzz_common.h.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ftl.h"
#include "fuzz_common.h"
#include "pfs_meta.h"

#define VFS_NAME "pstor-fuzz"
#define DB_NAME  "fuzz.db"
/* VM steps between progress callbacks, and callbacks before a statement is interrupted: a
 * corrupt database must not turn a quick_check into a hang. */
#define PROGRESS_STEPS 1000
#define PROGRESS_MAX   2000

static uint8_t region[FZ_META_REGION] __attribute__((aligned(4096)));

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* A corrupt database may ask for absurd amounts of memory; SQLite then fails cleanly. */
	sqlite3_hard_heap_limit64(256ll << 20);
	return 0;
}

static int progress(void *arg)
{
	unsigned *calls = arg;
	return ++*calls > PROGRESS_MAX;
}

static int ignore_rows(void *arg, int n, char **vals, char **names)
{
	(void)arg;
	(void)n;
	(void)vals;
	(void)names;
	return 0;
}

/* What the daemon runs at mount (pfs_meta.c), then reads of every kind of page, then (by a flag)
 * writes, a rollback and a commit, so the journal and the header protocol run too. Errors are
 * the expected outcome for most inputs and are ignored; only crashes and leaks count. */
static void run_sql(sqlite3 *db, uint8_t flags)
{
	static const char *const reads[] = {
	    ("PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=DELETE; PRAGMA synchronous=FULL;"
	     "PRAGMA temp_store=MEMORY; PRAGMA secure_delete=OFF; PRAGMA cache_size=-1024;"),
	    "PRAGMA quick_check;",
	    "SELECT count(*) FROM sqlite_master;",
	    "SELECT * FROM meta; SELECT * FROM config; SELECT * FROM maps;",
	    "SELECT key, length(data), chunk FROM pages; SELECT count(*) FROM patterns;",
	};
	static const char *const writes[] = {
	    "CREATE TABLE IF NOT EXISTS fz(x);",
	    "INSERT INTO fz VALUES(zeroblob(3000)), (zeroblob(700)), ('pstor');",
	    "BEGIN; DELETE FROM fz; INSERT INTO fz VALUES(zeroblob(9000)); ROLLBACK;",
	    "BEGIN; DELETE FROM fz WHERE rowid % 2 = 0; UPDATE fz SET x = zeroblob(100); COMMIT;",
	    "PRAGMA integrity_check;",
	};
	unsigned calls = 0;

	sqlite3_progress_handler(db, PROGRESS_STEPS, progress, &calls);
	for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++) {
		calls = 0;
		sqlite3_exec(db, reads[i], ignore_rows, NULL, NULL);
	}
	if (!(flags & FZ_META_WRITE))
		return;
	for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++) {
		calls = 0;
		sqlite3_exec(db, writes[i], ignore_rows, NULL, NULL);
	}
	/* A statement interrupted inside BEGIN leaves the transaction open: end it. */
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK;", NULL, NULL, NULL);
}

/* Copies up to N input bytes to DST (the rest of DST keeps what was there). */
static size_t take(uint8_t *dst, const uint8_t **p, size_t *left, size_t n)
{
	if (n > *left)
		n = *left;
	memcpy(dst, *p, n);
	*p += n;
	*left -= n;
	return n;
}

static void fix_crc(uint8_t *hdr)
{
	fz_put32(hdr + FZ_META_CRC_OFF, ftl_crc32c(0, hdr, FZ_META_CRC_OFF));
}

static void check_open_rc(int rc, const char *what)
{
	if (rc != 0 && rc != -EINVAL && rc != -EUCLEAN && rc != -EPROTONOSUPPORT && rc != -ENOMEM &&
	    rc != -EIO) {
		fprintf(stderr, "%s: undocumented error %d\n", what, rc);
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ftl_dev *dev;
	struct pfs_vfs *v = NULL;
	const uint8_t *p = data;
	size_t left = size;
	uint8_t flags = 0, lenb[4] = {0};
	int rc;

	take(&flags, &p, &left, 1);
	fz_check(ftl_dev_open_mem(FZ_META_DEV, (flags & FZ_META_BS512) ? 512 : 4096, &dev),
	         "ftl_dev_open_mem");
	fz_check(pfs_vfs_format(dev, FZ_META_OFF, FZ_META_REGION), "pfs_vfs_format");
	fz_check(ftl_dev_read(dev, region, sizeof(region), FZ_META_OFF), "region read");

	/* The areas as format laid them out (header A is valid here). */
	uint64_t db_off = fz_le64(region + FZ_META_DB_OFF);
	uint64_t db_cap = fz_le64(region + FZ_META_DB_CAP);
	uint64_t jnl_off = fz_le64(region + FZ_META_JNL_OFF);
	uint64_t jnl_cap = fz_le64(region + FZ_META_JNL_CAP);
	uint32_t slot = fz_le32(region + FZ_META_SLOT);
	if (jnl_off + jnl_cap > sizeof(region) || db_off + db_cap > jnl_off || slot < 4096) {
		fprintf(stderr, "unexpected region layout\n");
		abort();
	}

	if (take(region, &p, &left, FZ_META_HDR) && (flags & FZ_META_FIX_A))
		fix_crc(region);
	if (take(region + slot, &p, &left, FZ_META_HDR) && (flags & FZ_META_FIX_B))
		fix_crc(region + slot);
	take(lenb, &p, &left, sizeof(lenb));
	uint32_t db_len = fz_le32(lenb);
	take(region + db_off, &p, &left, db_len < db_cap ? db_len : db_cap);
	take(region + jnl_off, &p, &left, jnl_cap);
	fz_check(ftl_dev_write(dev, region, sizeof(region), FZ_META_OFF), "region write");

	rc = pfs_vfs_open(dev, FZ_META_OFF, FZ_META_REGION, VFS_NAME, &v);
	check_open_rc(rc, "pfs_vfs_open");
	if (rc == 0) {
		struct pfs_vfs_stats st;
		char text[1024];
		sqlite3 *db = NULL;

		pfs_vfs_get_stats(v, &st);
		if (st.db_bytes > st.db_capacity || st.journal_bytes > st.journal_capacity ||
		    st.db_capacity + st.journal_capacity > FZ_META_REGION) {
			fprintf(stderr, "pfs_vfs_open accepted files beyond the region\n");
			abort();
		}
		int flg =
		    SQLITE_OPEN_READWRITE | ((flags & FZ_META_CREATE) ? SQLITE_OPEN_CREATE : 0);
		if (sqlite3_open_v2(DB_NAME, &db, flg, VFS_NAME) == SQLITE_OK)
			run_sql(db, flags);
		if (sqlite3_close(db) != SQLITE_OK) {
			fprintf(stderr, "sqlite3_close: %s\n", sqlite3_errmsg(db));
			abort();
		}
		pfs_vfs_get_stats(v, &st);
		pfs_vfs_stats_to_text(&st, text, sizeof(text));
		pfs_vfs_close(v);

		/* Whatever the database holds, the headers the VFS wrote must be valid and say
		 * what SQLite last saw. */
		struct pfs_vfs_stats again;
		rc = pfs_vfs_open(dev, FZ_META_OFF, FZ_META_REGION, VFS_NAME, &v);
		if (rc) {
			fprintf(stderr, "region does not open again after a clean close: %d\n", rc);
			abort();
		}
		pfs_vfs_get_stats(v, &again);
		if (again.db_bytes != st.db_bytes || again.journal_bytes != st.journal_bytes) {
			fprintf(
			    stderr, "sizes after reopen: db %llu journal %llu, before %llu %llu\n",
			    (unsigned long long)again.db_bytes,
			    (unsigned long long)again.journal_bytes,
			    (unsigned long long)st.db_bytes, (unsigned long long)st.journal_bytes);
			abort();
		}
		pfs_vfs_close(v);
	}
	ftl_dev_close(dev);
	return 0;
}
