/* fs/meta/pfs_meta_int.h - what the SQL files of the metadata room share (pfs_meta.c and
 * pfs_meta_history.c): the handle's fields and the translation of SQLite's result codes.
 * Private to fs/meta: includes <sqlite3.h>, which no other room may see.
 */
#ifndef PSTOR_PFS_META_INT_H
#define PSTOR_PFS_META_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>

#include "pfs_meta.h"

struct pfs_meta {
	sqlite3 *db;
	/* Every SQLite call (a leaf lock: nothing else is taken under it but the VFS's own). */
	pthread_mutex_t db_lock;
	struct pfs_vfs *vfs;
	struct pfs_meta_params prm;
	_Atomic uint64_t damaged; /* map pages whose SQLite copy failed its checksum */
	_Atomic uint64_t healed;  /* ... and were read from their flash copy instead */
};

/* SQLITE_* to 0 or -errno: BUSY/LOCKED -EBUSY, NOMEM -ENOMEM, FULL -ENOSPC, CONSTRAINT -EEXIST,
 * CORRUPT/NOTADB -EUCLEAN, READONLY -EROFS, the rest -EIO. */
int pfs_meta_sql_errno(int rc);
/* Prepares SQL (the failure logged); runs a statement that returns no rows and finalizes it. */
int pfs_meta_prep(struct pfs_meta *m, const char *sql, sqlite3_stmt **st);
int pfs_meta_step_done(struct pfs_meta *m, sqlite3_stmt *st);

#endif
