/* tests/fs/test_fs_vfs.c - criterion suite for pfs_vfs: SQLite over a byte range of a memory
 * device. Round trips through a fresh open, the two areas filling up (SQLITE_FULL), power cuts
 * at every device write of a commit (buffered and write-through), damaged headers, locking
 * between connections and threads, the write-back buffer.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ftl.h"
#include "ftl_dev_fault.h"
#include "pfs_meta.h"

#define BS       4096u
#define MIB      (1024u * 1024)
#define REG_OFF  (16 * BS)
#define REG_SIZE (2 * BS + 4 * MIB) /* journal area 1 MiB, db area 3 MiB */
#define DEV_SIZE (REG_OFF + REG_SIZE + 16 * BS)
#define VFS      "pfs-test"
#define DB_NAME  "meta.db"

#define LEAD_PRAGMAS                                                                               \
	"PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=DELETE; PRAGMA synchronous=FULL;"      \
	"PRAGMA temp_store=MEMORY;"
#define DELETE_PRAGMAS                                                                             \
	"PRAGMA journal_mode=DELETE; PRAGMA synchronous=FULL; PRAGMA temp_store=MEMORY;"
#define PERSIST_PRAGMAS                                                                            \
	"PRAGMA journal_mode=PERSIST; PRAGMA synchronous=NORMAL; PRAGMA temp_store=MEMORY;"

static struct {
	struct ftl_dev *dev;
	struct pfs_vfs *vfs;
	sqlite3 *db, *db2;
	bool write_through; /* vfs_open turns the write-back buffer off: a cut at every write */
} t;

static void close_dbs(void)
{
	sqlite3_close(t.db2);
	sqlite3_close(t.db);
	t.db = t.db2 = NULL;
}

static void scratch_fini(void)
{
	close_dbs();
	pfs_vfs_close(t.vfs);
	ftl_dev_close(t.dev);
	memset(&t, 0, sizeof(t));
}

TestSuite(fs_vfs, .fini = scratch_fini, .timeout = 300);

static void vfs_open(void)
{
	int err = pfs_vfs_open(t.dev, REG_OFF, REG_SIZE, VFS, &t.vfs);

	cr_assert_eq(err, 0, "pfs_vfs_open: %d", err);
	if (t.write_through)
		cr_assert_eq(pfs_vfs_set_writeback(t.vfs, 0), 0);
}

static void vfs_close(void)
{
	close_dbs();
	pfs_vfs_close(t.vfs);
	t.vfs = NULL;
}

/* A new memory device with a formatted region and the VFS open on it. */
static void fresh(void)
{
	vfs_close();
	ftl_dev_close(t.dev);
	cr_assert_eq(ftl_dev_open_mem(DEV_SIZE, BS, &t.dev), 0);
	cr_assert_eq(pfs_vfs_format(t.dev, REG_OFF, REG_SIZE), 0);
	vfs_open();
}

static void exec_ok(sqlite3 *db, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);

	cr_assert_eq(rc, SQLITE_OK, "%s: %s", sql, msg ? msg : sqlite3_errstr(rc));
}

static sqlite3 *db_open_flags(int flags, const char *pragmas)
{
	sqlite3 *db = NULL;
	int rc = sqlite3_open_v2(DB_NAME, &db, flags | SQLITE_OPEN_FULLMUTEX, VFS);

	cr_assert_eq(rc, SQLITE_OK, "open: %s", sqlite3_errstr(rc));
	if (pragmas)
		exec_ok(db, pragmas);
	return db;
}

static sqlite3 *db_open(const char *pragmas)
{
	return db_open_flags(SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, pragmas);
}

static int64_t query_i64(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	int64_t v;

	cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql,
	             sqlite3_errmsg(db));
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s: %s", sql, sqlite3_errmsg(db));
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void assert_integrity(sqlite3 *db)
{
	sqlite3_stmt *st;

	cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "integrity_check: %s", sqlite3_errmsg(db));
	cr_assert_str_eq((const char *)sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
}

/* FNV-1a over every column of every row of table t, in key order: "the same rows". */
static uint64_t digest(sqlite3 *db)
{
	sqlite3_stmt *st;
	uint64_t h = 14695981039346656037ull;
	int rc;

	cr_assert_eq(sqlite3_prepare_v2(db, "SELECT * FROM t ORDER BY 1", -1, &st, NULL), SQLITE_OK,
	             "%s", sqlite3_errmsg(db));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		for (int c = 0; c < sqlite3_column_count(st); c++) {
			const uint8_t *p = sqlite3_column_blob(st, c);
			int n = sqlite3_column_bytes(st, c);

			for (int i = 0; i < n; i++)
				h = (h ^ p[i]) * 1099511628211ull;
			h = (h ^ (uint64_t)n) * 1099511628211ull;
		}
	}
	cr_assert_eq(rc, SQLITE_DONE, "digest: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return h;
}

/* N rows of deterministic text and blobs of about BLOB bytes, keys from FIRST. */
static void insert_rows(sqlite3 *db, int first, int n, int blob)
{
	char sql[512];

	snprintf(sql, sizeof(sql),
	         "WITH RECURSIVE c(i) AS (SELECT %d UNION ALL SELECT i+1 FROM c WHERE i<%d)"
	         " INSERT INTO t SELECT i, 'row-'||i, CAST(replace(hex(zeroblob(%d + i %% 7)),"
	         " '00', char(65 + i %% 26)) AS BLOB) FROM c",
	         first, first + n - 1, blob);
	exec_ok(db, sql);
}

static void create_table(sqlite3 *db)
{
	exec_ok(db, "CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT, b BLOB)");
}

/* Closes everything, opens the region again and checks the rows are intact and are D. */
static void reopen_expect(const char *pragmas, uint64_t d)
{
	vfs_close();
	vfs_open();
	t.db = db_open(pragmas);
	assert_integrity(t.db);
	cr_assert_eq(digest(t.db), d);
}

/* ------------------------------------------------------------------------------------------ */
/* Format, open, round trip                                                                     */
/* ------------------------------------------------------------------------------------------ */

Test(fs_vfs, data_survives_close_and_fresh_open)
{
	uint64_t d;

	fresh();
	t.db = db_open(LEAD_PRAGMAS);
	create_table(t.db);
	insert_rows(t.db, 1, 500, 100);
	d = digest(t.db);
	vfs_close();

	vfs_open();
	t.db = db_open(LEAD_PRAGMAS);
	cr_assert_eq(query_i64(t.db, "SELECT count(*) FROM t"), 500);
	cr_assert_eq(digest(t.db), d);
	assert_integrity(t.db);
}

/* synchronous=OFF never calls xSync; closing the last handle still makes the data and sizes
 * durable (a power cut right after the close loses nothing). */
Test(fs_vfs, a_clean_close_keeps_data_even_with_synchronous_off)
{
	uint64_t d;

	fresh();
	t.db = db_open(
	    "PRAGMA journal_mode=PERSIST; PRAGMA synchronous=OFF; PRAGMA temp_store=MEMORY");
	create_table(t.db);
	insert_rows(t.db, 1, 300, 200);
	d = digest(t.db);
	close_dbs();
	cr_assert_eq(ftl_dev_mem_power_cut(t.dev, false), 0);
	vfs_close();
	vfs_open();
	t.db = db_open(NULL);
	cr_assert_eq(digest(t.db), d);
	assert_integrity(t.db);
}

/* Header slots stay 4 KiB; reads and writes go by 512-byte blocks. */
Test(fs_vfs, works_on_512_byte_blocks)
{
	uint64_t d;

	cr_assert_eq(ftl_dev_open_mem(DEV_SIZE, 512, &t.dev), 0);
	cr_assert_eq(pfs_vfs_format(t.dev, REG_OFF + 512, REG_SIZE), 0);
	cr_assert_eq(pfs_vfs_open(t.dev, REG_OFF + 512, REG_SIZE, VFS, &t.vfs), 0);
	t.db = db_open(LEAD_PRAGMAS);
	create_table(t.db);
	insert_rows(t.db, 1, 400, 300);
	exec_ok(t.db, "UPDATE t SET v = v || 'x' WHERE k % 3 = 0");
	d = digest(t.db);
	vfs_close();
	cr_assert_eq(pfs_vfs_open(t.dev, REG_OFF + 512, REG_SIZE, VFS, &t.vfs), 0);
	t.db = db_open(LEAD_PRAGMAS);
	cr_assert_eq(digest(t.db), d);
	assert_integrity(t.db);
}

Test(fs_vfs, format_then_open_gives_an_empty_region)
{
	struct pfs_vfs_stats st;
	sqlite3 *db = NULL;

	fresh();
	pfs_vfs_get_stats(t.vfs, &st);
	cr_assert_eq(st.db_bytes, 0);
	cr_assert_eq(st.journal_bytes, 0);
	cr_assert_eq(st.journal_capacity, 1 * MIB);
	cr_assert_eq(st.db_capacity, 3 * MIB);
	/* No database yet: opening without CREATE fails, with CREATE gives an empty schema. */
	cr_assert_eq(sqlite3_open_v2(DB_NAME, &db, SQLITE_OPEN_READWRITE, VFS), SQLITE_CANTOPEN);
	sqlite3_close(db);
	t.db = db_open(DELETE_PRAGMAS);
	cr_assert_eq(query_i64(t.db, "SELECT count(*) FROM sqlite_master"), 0);
	assert_integrity(t.db);
}

Test(fs_vfs, open_fails_on_an_unformatted_region)
{
	struct pfs_vfs *v = (struct pfs_vfs *)1;

	cr_assert_eq(ftl_dev_open_mem(DEV_SIZE, BS, &t.dev), 0);
	cr_assert_eq(pfs_vfs_open(t.dev, REG_OFF, REG_SIZE, VFS, &v), -EINVAL);
	cr_assert_null(v);
	cr_assert_null(sqlite3_vfs_find(VFS), "a failed open must not register the VFS");
}

Test(fs_vfs, bad_regions_are_rejected)
{
	cr_assert_eq(ftl_dev_open_mem(DEV_SIZE, BS, &t.dev), 0);
	cr_assert_eq(pfs_vfs_format(t.dev, REG_OFF + 512, REG_SIZE), -EINVAL);
	cr_assert_eq(pfs_vfs_format(t.dev, REG_OFF, REG_SIZE - 512), -EINVAL);
	cr_assert_eq(pfs_vfs_format(t.dev, REG_OFF, 32 * BS), -EINVAL); /* too small */
	cr_assert_eq(pfs_vfs_format(t.dev, DEV_SIZE - BS, REG_SIZE), -EINVAL);
	cr_assert_eq(pfs_vfs_format(NULL, REG_OFF, REG_SIZE), -EINVAL);
	/* Formatted for one size, opened with another: refused, not reinterpreted. */
	cr_assert_eq(pfs_vfs_format(t.dev, REG_OFF, REG_SIZE), 0);
	cr_assert_eq(pfs_vfs_open(t.dev, REG_OFF, REG_SIZE + BS, VFS, &t.vfs), -EINVAL);
	cr_assert_eq(pfs_vfs_open(t.dev, REG_OFF, REG_SIZE, "", &t.vfs), -EINVAL);
}

Test(fs_vfs, a_second_vfs_of_the_same_name_is_eexist)
{
	struct pfs_vfs *v2 = NULL;

	fresh();
	cr_assert_eq(pfs_vfs_open(t.dev, REG_OFF, REG_SIZE, VFS, &v2), -EEXIST);
	cr_assert_null(v2);
}

Test(fs_vfs, the_ftl_minimum_region_splits_evenly)
{
	struct pfs_vfs_stats st;

	cr_assert_eq(ftl_dev_open_mem(DEV_SIZE, BS, &t.dev), 0);
	cr_assert_eq(pfs_vfs_format(t.dev, REG_OFF, 1 * MIB), 0);
	cr_assert_eq(pfs_vfs_open(t.dev, REG_OFF, 1 * MIB, VFS, &t.vfs), 0);
	pfs_vfs_get_stats(t.vfs, &st);
	cr_assert_eq(st.db_capacity + st.journal_capacity, 1 * MIB - 2 * BS);
	cr_assert_eq(st.db_capacity, st.journal_capacity);
	t.db = db_open(LEAD_PRAGMAS);
	create_table(t.db);
	insert_rows(t.db, 1, 100, 1000);
	assert_integrity(t.db);
}

Test(fs_vfs, never_writes_outside_its_region)
{
	uint8_t before[BS], after[BS], buf[BS];

	cr_assert_eq(ftl_dev_open_mem(DEV_SIZE, BS, &t.dev), 0);
	memset(before, 0xa5, sizeof(before));
	memset(after, 0x5a, sizeof(after));
	cr_assert_eq(ftl_dev_write(t.dev, before, BS, REG_OFF - BS), 0);
	cr_assert_eq(ftl_dev_write(t.dev, after, BS, REG_OFF + REG_SIZE), 0);
	cr_assert_eq(pfs_vfs_format(t.dev, REG_OFF, REG_SIZE), 0);
	vfs_open();
	t.db = db_open(DELETE_PRAGMAS);
	create_table(t.db);
	/* Fill both areas to the brim: the db until SQLITE_FULL, the journal with an update. */
	for (int i = 0; i < 100; i++) {
		char sql[160];

		snprintf(sql, sizeof(sql), "INSERT INTO t VALUES(%d, 'x', zeroblob(65536))", i);
		if (sqlite3_exec(t.db, sql, NULL, NULL, NULL) != SQLITE_OK)
			break;
	}
	(void)sqlite3_exec(t.db, "UPDATE t SET v = 'y'", NULL, NULL, NULL);
	vfs_close();
	cr_assert_eq(ftl_dev_read(t.dev, buf, BS, REG_OFF - BS), 0);
	cr_assert_eq(memcmp(buf, before, BS), 0);
	cr_assert_eq(ftl_dev_read(t.dev, buf, BS, REG_OFF + REG_SIZE), 0);
	cr_assert_eq(memcmp(buf, after, BS), 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Areas filling up                                                                             */
/* ------------------------------------------------------------------------------------------ */

/* ~1.3 MiB of rows, then one UPDATE touching every page: its journal cannot fit in 1 MiB. */
Test(fs_vfs, a_transaction_bigger_than_the_journal_fails_full_and_changes_nothing)
{
	/* Default cache: db pages stay in memory. 20 pages: SQLite spills (writes db pages)
	 * before the journal overflows, so the rollback has to put them back. */
	static const char *const caches[] = {"PRAGMA cache_size=-2000", "PRAGMA cache_size=20"};

	for (int c = 0; c < 2; c++) {
		struct pfs_vfs_stats st;
		uint64_t d;
		int rc;

		fresh();
		t.db = db_open(LEAD_PRAGMAS);
		exec_ok(t.db, caches[c]);
		create_table(t.db);
		insert_rows(t.db, 1, 650, 2000);
		d = digest(t.db);
		rc = sqlite3_exec(t.db, "UPDATE t SET v = v || '-changed'", NULL, NULL, NULL);
		cr_assert_eq(rc, SQLITE_FULL, "cache %d: %s", c, sqlite3_errstr(rc));
		if (!sqlite3_get_autocommit(t.db))
			exec_ok(t.db, "ROLLBACK");
		pfs_vfs_get_stats(t.vfs, &st);
		cr_assert_leq(st.journal_bytes, st.journal_capacity);
		cr_assert_eq(digest(t.db), d);
		assert_integrity(t.db);
		/* Smaller transactions still work afterwards, and all of it survives a reopen. */
		exec_ok(t.db, "UPDATE t SET v = 'small' WHERE k < 10");
		d = digest(t.db);
		vfs_close();
		vfs_open();
		t.db = db_open(LEAD_PRAGMAS);
		cr_assert_eq(digest(t.db), d);
		assert_integrity(t.db);
	}
}

Test(fs_vfs, db_growth_past_its_area_fails_full_and_keeps_committed_rows)
{
	struct pfs_vfs_stats st;
	uint64_t d = 0;
	int i, rc = SQLITE_OK;

	fresh();
	t.db = db_open(LEAD_PRAGMAS);
	create_table(t.db);
	for (i = 0; i < 1000; i++) {
		char sql[160];

		snprintf(sql, sizeof(sql), "INSERT INTO t VALUES(%d, 'x', zeroblob(32768))", i);
		rc = sqlite3_exec(t.db, sql, NULL, NULL, NULL);
		if (rc != SQLITE_OK)
			break;
		d = digest(t.db);
	}
	cr_assert_eq(rc, SQLITE_FULL, "%s", sqlite3_errstr(rc));
	cr_assert_gt(i, 50, "3 MiB hold more than 50 rows of 32 KiB");
	cr_assert_eq(query_i64(t.db, "SELECT count(*) FROM t"), i);
	cr_assert_eq(digest(t.db), d);
	pfs_vfs_get_stats(t.vfs, &st);
	cr_assert_leq(st.db_bytes, st.db_capacity);
	assert_integrity(t.db);

	vfs_close();
	vfs_open();
	t.db = db_open(LEAD_PRAGMAS);
	cr_assert_eq(query_i64(t.db, "SELECT count(*) FROM t"), i);
	cr_assert_eq(digest(t.db), d);
	assert_integrity(t.db);
	/* Space freed by a delete is reused. (Debian's SQLite has secure_delete on, which
	 * journals every freed page: a delete is a transaction like any other.) */
	exec_ok(t.db, "DELETE FROM t WHERE k < 5");
	exec_ok(t.db, "INSERT INTO t VALUES(100000, 'again', zeroblob(32768))");
	assert_integrity(t.db);
}

/* ------------------------------------------------------------------------------------------ */
/* Power cuts                                                                                   */
/* ------------------------------------------------------------------------------------------ */

/* Rewrites half the rows, deletes a seventh, grows the db by ~80 KiB: a commit of a few dozen
 * journal records, db pages, a size change and (in DELETE mode) the journal's deletion. */
static const char *const cut_tx =
    "BEGIN;"
    "UPDATE t SET v = v || '-new', b = CAST(replace(hex(zeroblob(450 + k % 90)), '00', 'n')"
    " AS BLOB) WHERE k % 2 = 0;"
    "DELETE FROM t WHERE k % 7 = 0;"
    "WITH RECURSIVE c(i) AS (SELECT 1000 UNION ALL SELECT i+1 FROM c WHERE i<1040)"
    " INSERT INTO t SELECT i, 'add-'||i, zeroblob(2000) FROM c;"
    "COMMIT;";

static uint64_t cut_setup(const char *pragmas)
{
	fresh();
	t.db = db_open(pragmas);
	create_table(t.db);
	insert_rows(t.db, 1, 200, 300);
	return digest(t.db);
}

/* Cuts power during the Nth device write of the commit, for N = 0, 1, ... until the commit
 * completes first; after each cut the region must reopen with exactly the old or the new rows.
 * Through the write-back buffer, then without it (a device write per SQLite write). */
static void power_cut_during_commit_in(const char *pragmas, bool tear);

static void power_cut_during_commit(const char *pragmas, bool tear)
{
	t.write_through = false;
	power_cut_during_commit_in(pragmas, tear);
	t.write_through = true;
	power_cut_during_commit_in(pragmas, tear);
	t.write_through = false;
}

static void power_cut_during_commit_in(const char *pragmas, bool tear)
{
	uint64_t old_d, new_d, d;
	int64_t old_count, new_count;
	unsigned n, saw_old = 0, saw_new = 0;

	cut_setup(pragmas);
	old_count = query_i64(t.db, "SELECT count(*) FROM t");
	exec_ok(t.db, cut_tx);
	new_d = digest(t.db);
	new_count = query_i64(t.db, "SELECT count(*) FROM t");
	cr_assert_neq(old_count, new_count);

	for (n = 0; n < 5000; n++) {
		int rc;

		old_d = cut_setup(pragmas);
		cr_assert_eq(ftl_dev_mem_power_cut_after(t.dev, n, tear), 0);
		rc = sqlite3_exec(t.db, cut_tx, NULL, NULL, NULL);
		if (!ftl_dev_mem_is_dead(t.dev)) {
			cr_assert_eq(rc, SQLITE_OK, "n=%u: %s", n, sqlite3_errstr(rc));
			cr_assert_eq(ftl_dev_mem_revive(t.dev), 0); /* disarms the cut */
			break;
		}
		vfs_close();
		cr_assert_eq(ftl_dev_mem_revive(t.dev), 0);
		vfs_open();
		t.db = db_open(pragmas);
		assert_integrity(t.db);
		d = digest(t.db);
		cr_assert(d == old_d || d == new_d, "n=%u: neither the old nor the new rows", n);
		saw_old += d == old_d;
		saw_new += d == new_d;
		cr_assert_eq(query_i64(t.db, "SELECT count(*) FROM t"),
		             d == old_d ? old_count : new_count);
	}
	cr_assert_lt(n, 5000, "the commit never completed");
	/* Buffered, the journal, the pages and each header are a write or a few (coalesced). */
	cr_assert_gt(n, t.write_through ? 20u : 4u, "a commit is more device writes (%u)", n);
	cr_assert_gt(saw_old, 0);
	cr_log_info("%s%s%s: %u cut points, %u old, %u new", pragmas, tear ? " torn" : "",
	            t.write_through ? " write-through" : "", n, saw_old, saw_new);

	/* A commit that returned is durable: cut power right after it. */
	cr_assert_eq(digest(t.db), new_d);
	cr_assert_eq(ftl_dev_mem_power_cut(t.dev, tear), 0);
	reopen_expect(pragmas, new_d);
}

Test(fs_vfs, power_cut_during_commit_leaves_old_or_new_rows_lead_pragmas)
{
	power_cut_during_commit(LEAD_PRAGMAS, false);
}

Test(fs_vfs, torn_write_at_power_cut_leaves_old_or_new_rows_lead_pragmas)
{
	power_cut_during_commit(LEAD_PRAGMAS, true);
}

Test(fs_vfs, power_cut_during_commit_leaves_old_or_new_rows_delete_mode)
{
	power_cut_during_commit(DELETE_PRAGMAS, false);
}

Test(fs_vfs, torn_write_at_power_cut_leaves_old_or_new_rows_delete_mode)
{
	power_cut_during_commit(DELETE_PRAGMAS, true);
}

Test(fs_vfs, power_cut_during_commit_leaves_old_or_new_rows_persist_mode)
{
	power_cut_during_commit(PERSIST_PRAGMAS, false);
}

Test(fs_vfs, torn_write_at_power_cut_leaves_old_or_new_rows_persist_mode)
{
	power_cut_during_commit(PERSIST_PRAGMAS, true);
}

/* Opens the db and reads it with the cut armed; SQLite rolls the hot journal back on the way.
 * Returns whether the device survived. */
static bool recover_under_cut(const char *pragmas, uint64_t m, bool tear)
{
	sqlite3 *db = NULL;

	cr_assert_eq(ftl_dev_mem_power_cut_after(t.dev, m, tear), 0);
	if (sqlite3_open_v2(DB_NAME, &db, SQLITE_OPEN_READWRITE, VFS) == SQLITE_OK) {
		(void)sqlite3_exec(db, pragmas, NULL, NULL, NULL);
		(void)sqlite3_exec(db, "SELECT count(*) FROM t", NULL, NULL, NULL);
	}
	t.db = db;
	if (!ftl_dev_mem_is_dead(t.dev)) {
		cr_assert_eq(ftl_dev_mem_revive(t.dev), 0);
		return true;
	}
	vfs_close();
	cr_assert_eq(ftl_dev_mem_revive(t.dev), 0);
	vfs_open();
	return false;
}

/* Cuts power at write N of the commit, reopens the region and returns the digest of the rows
 * before the commit (OLD_D filled) ; the db is left unopened. */
static void cut_commit_at(const char *pragmas, uint64_t n, bool tear, uint64_t *old_d)
{
	*old_d = cut_setup(pragmas);
	cr_assert_eq(ftl_dev_mem_power_cut_after(t.dev, n, tear), 0);
	(void)sqlite3_exec(t.db, cut_tx, NULL, NULL, NULL);
	cr_assert(ftl_dev_mem_is_dead(t.dev));
	vfs_close();
	cr_assert_eq(ftl_dev_mem_revive(t.dev), 0);
	vfs_open();
}

/* A cut at write N of the commit, then cuts at every write of the recovery that follows, then
 * a clean recovery: always the rows EXPECT, or the old rows when EXPECT is 0. */
static void recovery_cuts(const char *pragmas, uint64_t n, bool tear, uint64_t expect)
{
	uint64_t old_d, m;

	for (m = 0; m < 1000; m++) {
		cut_commit_at(pragmas, n, tear, &old_d);
		uint64_t want = expect ? expect : old_d;
		if (recover_under_cut(pragmas, m, tear)) {
			cr_assert_eq(digest(t.db), want, "n=%llu m=%llu", (unsigned long long)n,
			             (unsigned long long)m);
			break;
		}
		t.db = db_open(pragmas);
		assert_integrity(t.db);
		cr_assert_eq(digest(t.db), want, "n=%llu m=%llu: after a second cut",
		             (unsigned long long)n, (unsigned long long)m);
	}
	cr_assert_lt(m, 1000);
	cr_log_info("%s%s%s: cut at write %llu, recovery cut at %llu points", pragmas,
	            tear ? " torn" : "", t.write_through ? " write-through" : "",
	            (unsigned long long)n, (unsigned long long)m);
}

/* The device writes of the whole commit, uncut, in the current mode; NEW_D gets its rows. */
static uint64_t commit_writes(const char *pragmas, uint64_t *new_d)
{
	struct ftl_dev_stats before, after;

	cut_setup(pragmas);
	ftl_dev_get_stats(t.dev, &before);
	exec_ok(t.db, cut_tx);
	ftl_dev_get_stats(t.dev, &after);
	*new_d = digest(t.db);
	return after.writes - before.writes;
}

/* Write-through, a cut late in the commit (db pages partly written: the journal is hot) always
 * rolls back. Buffered, the commit is a few coalesced writes and its last ones may follow its
 * commit point, so every cut point is tried, each expecting what a clean recovery from it
 * gives (the old or the new rows), and some must roll back. */
static void power_cut_during_recovery(const char *pragmas, bool tear)
{
	uint64_t old_d, new_d, k, rolled_back = 0;

	t.write_through = true;
	k = commit_writes(pragmas, &new_d);
	for (uint64_t n = k / 2; n < k; n += k / 8)
		recovery_cuts(pragmas, n, tear, 0);

	t.write_through = false;
	k = commit_writes(pragmas, &new_d);
	for (uint64_t n = 0; n < k; n++) {
		cut_commit_at(pragmas, n, tear, &old_d);
		t.db = db_open(pragmas);
		assert_integrity(t.db);
		uint64_t d = digest(t.db);
		cr_assert(d == old_d || d == new_d, "n=%llu: neither the old nor the new rows",
		          (unsigned long long)n);
		rolled_back += d == old_d;
		recovery_cuts(pragmas, n, tear, d);
	}
	cr_assert_gt(rolled_back, 0);
}

Test(fs_vfs, power_cut_during_recovery_still_rolls_back_lead_pragmas)
{
	power_cut_during_recovery(LEAD_PRAGMAS, false);
	power_cut_during_recovery(LEAD_PRAGMAS, true);
}

Test(fs_vfs, power_cut_during_recovery_still_rolls_back_delete_mode)
{
	power_cut_during_recovery(DELETE_PRAGMAS, false);
	power_cut_during_recovery(DELETE_PRAGMAS, true);
}

/* ------------------------------------------------------------------------------------------ */
/* Header copies                                                                                */
/* ------------------------------------------------------------------------------------------ */

/* Byte 16 of a copy is inside its sequence number: covered by the checksum, not the magic. */
static void rot_header(unsigned slot)
{
	cr_assert_eq(ftl_dev_mem_flip_bit(t.dev, REG_OFF + slot * BS + 16, 3), 0);
}

/* Either copy may rot after a clean close, the newest included: the other one holds the same
 * state. DELETE mode leaves a complete journal in its area, so falling back to a header older
 * than the journal's deletion would roll the last transaction back. */
Test(fs_vfs, one_damaged_header_copy_opens_with_the_other)
{
	static const char *const pragmas[] = {LEAD_PRAGMAS, DELETE_PRAGMAS};

	for (unsigned i = 0; i < 4; i++) {
		unsigned slot = i % 2;
		const char *pr = pragmas[i / 2];
		uint64_t d;

		fresh();
		t.db = db_open(pr);
		create_table(t.db);
		insert_rows(t.db, 1, 300, 500);
		d = digest(t.db);
		vfs_close();

		rot_header(slot);
		vfs_open();
		t.db = db_open(pr);
		cr_assert_eq(digest(t.db), d, "slot %u damaged", slot);
		assert_integrity(t.db);
		/* The next header update rewrites the damaged copy, so the other may rot now. */
		insert_rows(t.db, 1000, 50, 500);
		d = digest(t.db);
		vfs_close();
		rot_header(slot ^ 1);
		vfs_open();
		t.db = db_open(pr);
		cr_assert_eq(digest(t.db), d, "slot %u then %u damaged", slot, slot ^ 1);
		assert_integrity(t.db);
	}
}

Test(fs_vfs, both_header_copies_damaged_fails_euclean)
{
	struct pfs_vfs *v = NULL;

	fresh();
	vfs_close();
	rot_header(0);
	rot_header(1);
	cr_assert_eq(pfs_vfs_open(t.dev, REG_OFF, REG_SIZE, VFS, &v), -EUCLEAN);
	cr_assert_null(v);
	/* With the magic gone from both, the region is simply not ours. */
	cr_assert_eq(ftl_dev_mem_flip_bit(t.dev, REG_OFF, 0), 0);
	cr_assert_eq(ftl_dev_mem_flip_bit(t.dev, REG_OFF + BS, 0), 0);
	cr_assert_eq(pfs_vfs_open(t.dev, REG_OFF, REG_SIZE, VFS, &v), -EINVAL);
}

/* ------------------------------------------------------------------------------------------ */
/* Files, locks, threads, errors                                                                */
/* ------------------------------------------------------------------------------------------ */

Test(fs_vfs, only_one_database_and_no_wal_or_temp_files)
{
	sqlite3 *other = NULL;
	sqlite3_stmt *st;

	fresh();
	t.db = db_open(DELETE_PRAGMAS);
	create_table(t.db);
	cr_assert_eq(
	    sqlite3_open_v2("other.db", &other, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, VFS),
	    SQLITE_CANTOPEN);
	sqlite3_close(other);
	cr_assert_neq(sqlite3_exec(t.db, "ATTACH 'other.db' AS o", NULL, NULL, NULL), SQLITE_OK);
	/* No shared memory, so SQLite keeps the rollback journal. */
	cr_assert_eq(sqlite3_prepare_v2(t.db, "PRAGMA journal_mode=WAL", -1, &st, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	cr_assert_str_eq((const char *)sqlite3_column_text(st, 0), "delete");
	sqlite3_finalize(st);
	/* Without temp_store=MEMORY a temp table that outgrows its cache needs a temp file,
	 * which is refused; in memory it works. */
	insert_rows(t.db, 1, 2000, 200);
	exec_ok(t.db, "PRAGMA temp_store=FILE; PRAGMA temp.cache_size=10");
	cr_assert_neq(
	    sqlite3_exec(t.db, "CREATE TEMP TABLE x AS SELECT * FROM t", NULL, NULL, NULL),
	    SQLITE_OK);
	exec_ok(t.db, "PRAGMA temp_store=MEMORY; PRAGMA temp.cache_size=10");
	exec_ok(t.db, "CREATE TEMP TABLE x AS SELECT * FROM t");
	cr_assert_eq(query_i64(t.db, "SELECT count(*) FROM x"), 2000);
	assert_integrity(t.db);
}

Test(fs_vfs, two_connections_lock_each_other_out)
{
	fresh();
	t.db = db_open(DELETE_PRAGMAS);
	create_table(t.db);
	insert_rows(t.db, 1, 10, 10);
	t.db2 = db_open(DELETE_PRAGMAS);

	exec_ok(t.db, "BEGIN IMMEDIATE");
	exec_ok(t.db, "INSERT INTO t VALUES(100, 'a', NULL)");
	cr_assert_eq(sqlite3_exec(t.db2, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_BUSY);
	cr_assert_eq(query_i64(t.db2, "SELECT count(*) FROM t"), 10, "readers see the old rows");
	/* db2 holds SHARED while its read runs; here it is done, so the commit can go through. */
	exec_ok(t.db, "COMMIT");
	cr_assert_eq(query_i64(t.db2, "SELECT count(*) FROM t"), 11);

	/* A reader in an open read transaction keeps a committer out until it ends. */
	exec_ok(t.db2, "BEGIN; SELECT count(*) FROM t");
	cr_assert_eq(sqlite3_exec(t.db, "INSERT INTO t VALUES(101, 'b', NULL)", NULL, NULL, NULL),
	             SQLITE_BUSY);
	exec_ok(t.db2, "COMMIT");
	exec_ok(t.db, "INSERT INTO t VALUES(101, 'b', NULL)");
	cr_assert_eq(query_i64(t.db2, "SELECT count(*) FROM t"), 12);
	assert_integrity(t.db2);
}

struct thread_arg {
	sqlite3 *db; /* shared FULLMUTEX connection, or NULL: open one */
	int id;
};

static void *writer_thread(void *p)
{
	struct thread_arg *a = p;
	sqlite3 *db = a->db;
	long bad = 0;

	if (!db) {
		if (sqlite3_open_v2(DB_NAME, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX,
		                    VFS) != SQLITE_OK)
			return (void *)1;
		sqlite3_busy_timeout(db, 10000);
		sqlite3_exec(db, "PRAGMA temp_store=MEMORY", NULL, NULL, NULL);
	}
	for (int i = 0; i < 40; i++) {
		char sql[200];

		snprintf(sql, sizeof(sql), "INSERT INTO t VALUES(%d, 'thread', zeroblob(%d))",
		         a->id * 1000 + i, 100 + i * 10);
		if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
			bad++;
	}
	if (!a->db)
		sqlite3_close(db);
	return (void *)bad;
}

static void run_threads(bool shared)
{
	pthread_t th[4];
	struct thread_arg args[4];

	fresh();
	t.db = db_open(DELETE_PRAGMAS);
	create_table(t.db);
	for (int i = 0; i < 4; i++) {
		args[i] = (struct thread_arg){.db = shared ? t.db : NULL, .id = i + 1};
		cr_assert_eq(pthread_create(&th[i], NULL, writer_thread, &args[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		void *bad;

		pthread_join(th[i], &bad);
		cr_assert_null(bad, "thread %d: %ld failed inserts", i, (long)bad);
	}
	cr_assert_eq(query_i64(t.db, "SELECT count(*) FROM t"), 160);
	assert_integrity(t.db);
	vfs_close();
	vfs_open();
	t.db = db_open(DELETE_PRAGMAS);
	cr_assert_eq(query_i64(t.db, "SELECT count(*) FROM t"), 160);
	assert_integrity(t.db);
}

Test(fs_vfs, threads_share_one_fullmutex_connection)
{
	run_threads(true);
}

Test(fs_vfs, threads_with_their_own_connections_take_turns)
{
	run_threads(false);
}

Test(fs_vfs, device_errors_become_ioerr_and_the_db_survives)
{
	uint64_t d;
	int rc;

	fresh();
	t.db = db_open(LEAD_PRAGMAS);
	create_table(t.db);
	insert_rows(t.db, 1, 100, 100);
	d = digest(t.db);
	cr_assert_eq(ftl_dev_mem_inject(t.dev, FTL_FAULT_WRITE_EIO, REG_OFF, REG_SIZE, 1), 0);
	rc = sqlite3_exec(t.db, "UPDATE t SET v = 'z'", NULL, NULL, NULL);
	cr_assert_eq(rc & 0xff, SQLITE_IOERR, "%s", sqlite3_errstr(rc));
	if (!sqlite3_get_autocommit(t.db))
		exec_ok(t.db, "ROLLBACK");
	cr_assert_eq(digest(t.db), d);
	/* The write-back buffer kept what failed to go out (invariant 9): the next transaction
	 * commits, and a fresh open below finds it. */
	exec_ok(t.db, "UPDATE t SET v = 'kept' WHERE k < 10");
	d = digest(t.db);

	/* A read error on a page not in the cache: a fresh connection must read it. */
	vfs_close();
	vfs_open();
	t.db = db_open(NULL);
	cr_assert_eq(ftl_dev_mem_inject(t.dev, FTL_FAULT_READ_EIO, REG_OFF + 2 * BS, BS, 1), 0);
	rc = sqlite3_exec(t.db, "SELECT count(*) FROM t", NULL, NULL, NULL);
	cr_assert_eq(rc, SQLITE_IOERR, "%s", sqlite3_errstr(rc));
	cr_assert_eq(sqlite3_extended_errcode(t.db), SQLITE_IOERR_READ);
	cr_assert_eq(digest(t.db), d);
	assert_integrity(t.db);
}

Test(fs_vfs, stats_count_io_and_sizes)
{
	struct pfs_vfs_stats st;
	char text[1024];
	int n;

	fresh();
	t.db = db_open(DELETE_PRAGMAS);
	create_table(t.db);
	insert_rows(t.db, 1, 100, 100);
	pfs_vfs_get_stats(t.vfs, &st);
	cr_assert_eq(st.db_bytes, (uint64_t)query_i64(t.db, "PRAGMA page_count") *
	                              (uint64_t)query_i64(t.db, "PRAGMA page_size"));
	cr_assert_eq(st.journal_bytes, 0, "DELETE mode removed the journal");
	cr_assert_gt(st.writes, 0);
	cr_assert_gt(st.syncs, 0);
	cr_assert_geq(st.flushes, st.syncs / 2);
	cr_assert_gt(st.header_writes, 0);
	cr_assert_eq(st.header_writes % 2, 0, "each update writes both copies");
	n = pfs_vfs_stats_to_text(&st, text, sizeof(text));
	cr_assert(n > 0 && (size_t)n < sizeof(text));
	cr_assert_not_null(strstr(text, "header_writes: "));
	cr_assert_not_null(strstr(text, "db_capacity: 3145728\n"));
}

/* ------------------------------------------------------------------------------------------ */
/* Write-back buffer (invariant 9)                                                              */
/* ------------------------------------------------------------------------------------------ */

/* The journal's three writes a record and the commit's pages reach the device coalesced; what
 * was written reads back in the same connection and after a fresh open. */
Test(fs_vfs, buffered_writes_coalesce_and_read_back)
{
	struct pfs_vfs_stats st;
	uint64_t d;

	fresh();
	t.db = db_open(LEAD_PRAGMAS);
	create_table(t.db);
	insert_rows(t.db, 1, 300, 200);
	exec_ok(t.db, "UPDATE t SET v = v || '-x' WHERE k % 3 = 0");
	d = digest(t.db);
	pfs_vfs_get_stats(t.vfs, &st);
	cr_assert_gt(st.device_writes, 0);
	cr_assert_lt(st.device_writes * 4, st.writes, "%llu device writes for %llu xWrites",
	             (unsigned long long)st.device_writes, (unsigned long long)st.writes);
	reopen_expect(LEAD_PRAGMAS, d);
}

/* A transaction larger than the buffer writes it out as it goes (no flush) and commits whole;
 * a truncated journal that grows again reads zeros where nothing was written. */
Test(fs_vfs, a_small_buffer_writes_out_when_full)
{
	struct pfs_vfs_stats a, b;
	uint64_t d;

	fresh();
	cr_assert_eq(pfs_vfs_set_writeback(t.vfs, 8 * BS), 0);
	t.db = db_open("PRAGMA journal_mode=TRUNCATE; PRAGMA synchronous=FULL;");
	create_table(t.db);
	pfs_vfs_get_stats(t.vfs, &a);
	insert_rows(t.db, 1, 200, 1000);
	exec_ok(t.db, "UPDATE t SET v = v || '-y'");
	exec_ok(t.db, "DELETE FROM t WHERE k % 5 = 0");
	pfs_vfs_get_stats(t.vfs, &b);
	cr_assert_gt(b.device_writes - a.device_writes, b.syncs - a.syncs,
	             "a full buffer writes out between syncs");
	d = digest(t.db);
	assert_integrity(t.db);
	reopen_expect(NULL, d);
}
