/* fs/base/pfs_base.h - the bottom room of fs/: helpers every other room uses (time, size and
 * name parsing, the daemon log, little-endian fields, a growable text buffer) and the table of
 * the project's error causes. Knows nothing of volumes, SQLite or FUSE.
 */
#ifndef PSTOR_PFS_BASE_H
#define PSTOR_PFS_BASE_H

#include <endian.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#define PFS_NAME_MAX 64

int64_t pfs_now_ns(void);
int pfs_cmp_u64(const void *a, const void *b); /* qsort/bsearch of uint64_t */
/* Little-endian fields of on-disk records (unaligned). */
static inline void pfs_put64(uint8_t *b, uint64_t v)
{
	v = htole64(v);
	memcpy(b, &v, 8);
}
static inline uint64_t pfs_get64(const uint8_t *b)
{
	uint64_t v;
	memcpy(&v, b, 8);
	return le64toh(v);
}
static inline void pfs_put32(uint8_t *b, uint32_t v)
{
	v = htole32(v);
	memcpy(b, &v, 4);
}
static inline uint32_t pfs_get32(const uint8_t *b)
{
	uint32_t v;
	memcpy(&v, b, 4);
	return le32toh(v);
}
/* "10G", "4096", "1.5T"? no: integer with optional K/M/G/T/P (powers of 1024). -EINVAL. */
int pfs_parse_size(const char *s, uint64_t *out);
bool pfs_name_valid(const char *name);
/* The daemon's log: one syslog line at LEVEL (LOG_ERR: data or a change lost; LOG_WARNING:
 * damage found, a refused setting, something retried; LOG_NOTICE: mount, unmount, recovery;
 * LOG_INFO: routine, such as each ctl command), so `journalctl -p warning` shows what matters.
 * The daemon's openlog() decides where lines go (syslog, and stderr with -f). */
void pfs_logl(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Test seam: while set, every line also goes to SINK with its level (NULL: none). */
void pfs_logl_set_sink(void (*sink)(int level, const char *line));
/* A progress line for long work on a terminal (mkfs's discard, fsck's passes, the mount's
 * recovery), as e2fsck -C 0 and mkfs.xfs show one: "WHAT: 42.0% (1234/2740 UNIT, 310 UNIT/s)",
 * redrawn in place at most 5 times a second and erased at the end. Off (F NULL) unless the
 * stream is a terminal: pfs_progress_tty() decides. UNIT NULL counts bytes (shown in MiB). */
struct pfs_progress {
	FILE *f;
	const char *what, *unit;
	int64_t start_ns, last_ns;
	int drawn; /* characters on the line now */
};
/* F when it is a terminal and not QUIET, else NULL. */
FILE *pfs_progress_tty(FILE *f, bool quiet);
void pfs_progress_begin(struct pfs_progress *pr, FILE *f, const char *what, const char *unit);
void pfs_progress_update(struct pfs_progress *pr, uint64_t done, uint64_t total);
/* Erases the line (output that follows starts at column 0). */
void pfs_progress_end(struct pfs_progress *pr);
/* Growable text buffer for reports. */
struct pfs_buf {
	char *data;
	size_t len, cap;
	int err;
};
void pfs_buf_printf(struct pfs_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends S as a JSON string literal (quotes, backslashes and control characters escaped). */
void pfs_buf_json_str(struct pfs_buf *b, const char *s);
void pfs_buf_free(struct pfs_buf *b);

/* ---- error causes ---------------------------------------------------------------------------- */
/* What can fail, the errno a caller sees when nothing more precise is known, and the words an
 * operator reads (ctl's reason, the daemon's log). One table, so a message names its cause
 * instead of a number, and the errno of a cause is decided here and nowhere else. */
#define PFS_ERRORS(X)                                                                              \
	X(NO_VOLUME, ENOENT, "no such volume")                                                     \
	X(NO_SNAPSHOT, ENOENT, "no such snapshot")                                                 \
	X(VOLUME_EXISTS, EEXIST, "a volume of that name exists")                                   \
	X(SNAPSHOT_EXISTS, EEXIST, "a snapshot of that name exists")                               \
	X(BAD_NAME, EINVAL, "bad name (1..64 of A-Z a-z 0-9 . _ -, no leading .)")                 \
	X(BAD_SIZE, EINVAL, "bad size (a number with an optional K, M, G, T suffix)")              \
	X(TOO_LARGE, ENOSPC, "beyond the largest volume the namespace can hold")                   \
	X(HAS_SNAPSHOTS, EBUSY, "the volume has snapshots: delete them first")                     \
	X(SNAPSHOT_READONLY, EROFS, "snapshots are read-only")                                     \
	X(MOUNT_READONLY, EROFS, "the namespace is mounted read-only")                             \
	X(BAD_SETTING, EINVAL, "no such setting")                                                  \
	X(BAD_CHANGE, EINVAL, "not a change the store knows")                                      \
	X(META_WRITE, EIO, "cannot record the change in the metadata")                             \
	X(COMMIT, EIO, "cannot make the change durable (commit)")                                  \
	X(NO_MEMORY, ENOMEM, "out of memory")
enum pfs_err {
#define PFS_ERR_ENUM(n, e, s) PFS_ERR_##n,
	PFS_ERRORS(PFS_ERR_ENUM)
#undef PFS_ERR_ENUM
	    PFS_ERR_COUNT
};
const char *pfs_err_text(enum pfs_err e);
/* The cause's errno, negative. */
int pfs_err_errno(enum pfs_err e);
/* "SUBJECT: cause text[: strerror(RC)]" into OUT; returns RC when it is an error (the more
 * precise errno), else the cause's. */
int pfs_err_format(char *out, size_t len, enum pfs_err e, int rc, const char *subject);

#endif
