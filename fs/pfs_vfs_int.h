/* fs/pfs_vfs_int.h - a SQLite VFS over a byte range of a namespace: one database and its rollback
 * journal in the FTL's metadata region. Private to fs/; does not include <sqlite3.h> (only
 * pfs_vfs.c does). All functions return 0 or -errno.
 */
#ifndef PSTOR_PFS_VFS_INT_H
#define PSTOR_PFS_VFS_INT_H

#include <stddef.h>
#include <stdint.h>

struct ftl_dev;
struct pfs_vfs;

/* Region layout (S = max(4096, device block size)): [header A: S][header B: S][db area]
 * [journal area]. Journal area = max(1 MiB, 1/4 of what follows the headers), but at most half
 * of it, rounded down to S; the db area is the rest. Both areas must be at least
 * PFS_VFS_MIN_AREA bytes. */
#define PFS_VFS_MIN_AREA (64u * 1024)

/* Lays out an empty region (both headers, no files). Destroys what was there. OFF and SIZE must
 * be multiples of the device block size.
 * Errors: -EINVAL (misaligned, out of the device, too small for two areas), -ENOMEM, -EIO. */
int pfs_vfs_format(struct ftl_dev *dev, uint64_t off, uint64_t size);

/* Registers a SQLite VFS called NAME (not the default VFS) over [off, off+size) of DEV, which
 * must stay open until pfs_vfs_close(). Open databases with sqlite3_open_v2(..., NAME).
 * Errors: -EINVAL (bad arguments; region not formatted, i.e. neither header copy is ours; or
 * formatted for a different region size), -EUCLEAN (a header copy is ours but both fail their
 * checksum), -EPROTONOSUPPORT (written by a newer version), -EEXIST (a VFS called NAME is
 * already registered), -ENOMEM, -EIO (device read error). */
int pfs_vfs_open(struct ftl_dev *dev, uint64_t off, uint64_t size, const char *name,
                 struct pfs_vfs **out);

/* Makes the header durable if needed and unregisters the VFS. Every sqlite3 handle opened
 * through it must be closed first (if one is not, the VFS is left registered and leaked rather
 * than freed under it). NULL is a no-op. */
void pfs_vfs_close(struct pfs_vfs *v);

struct pfs_vfs_stats {
	uint64_t reads, writes;                 /* xRead / xWrite calls that reached the device */
	uint64_t bytes_read, bytes_written;     /* bytes SQLite asked for (not RMW blocks) */
	uint64_t syncs;                         /* xSync calls */
	uint64_t flushes;                       /* ftl_dev_flush calls */
	uint64_t header_writes;                 /* header copies written (both slots) */
	uint64_t db_bytes, journal_bytes;       /* current sizes (0 when the file does not exist) */
	uint64_t db_capacity, journal_capacity; /* area sizes: SQLITE_FULL beyond them */
};
void pfs_vfs_get_stats(struct pfs_vfs *v, struct pfs_vfs_stats *st);

/* One "name: value" line per counter; returns the length it needed (as snprintf). */
int pfs_vfs_stats_to_text(const struct pfs_vfs_stats *st, char *buf, size_t len);

#endif
