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
#include <string.h>

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
void pfs_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
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

#endif
