/* analytics/analytics.h - the appliance's analytics: the columns of the counter history, its
 * CSV form (history.csv and `analytics import`), and the capacity forecast models. Pure
 * computation over samples handed in: it never touches the store, SQLite or the I/O path.
 * All functions return 0 or -errno.
 */
#ifndef PSTOR_ANALYTICS_H
#define PSTOR_ANALYTICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the history's columns ------------------------------------------------------------------ */
/* Kinds bound what an imported value may be (absurd values are refused). */
enum analytics_kind {
	ANALYTICS_BYTES,   /* 0 .. 2^60 (1 EiB) */
	ANALYTICS_COUNT,   /* 0 .. 2^53, a whole number */
	ANALYTICS_RATIO,   /* 0 .. 10^6 */
	ANALYTICS_PERCENT, /* 0 .. 255 (NVMe percentage_used may pass 100) */
	ANALYTICS_MICROS,  /* 0 .. 3600 s in microseconds */
	ANALYTICS_CELSIUS, /* -273 .. 200 */
	ANALYTICS_MEAN,    /* 0 .. 2^53, fractional (a mean of counts) */
};

/* The history's columns after `time`, in CSV order. Append only: SQLite rows store the values
 * in this order, and a row written by an older version is shorter (its missing columns are
 * empty). */
#define ANALYTICS_COLUMNS(X)                                                                       \
	X(PHYSICAL_USED, "physical_used_bytes", BYTES)                                             \
	X(PHYSICAL_FREE, "physical_free_bytes", BYTES)                                             \
	X(CAPACITY, "capacity_bytes", BYTES)                                                       \
	X(LOGICAL, "logical_written_bytes", BYTES)                                                 \
	X(PROVISIONED, "provisioned_bytes", BYTES)                                                 \
	X(STORED, "stored_bytes", BYTES)                                                           \
	X(SNAPSHOT_LOGICAL, "snapshot_logical_bytes", BYTES)                                       \
	X(VOLUMES, "volumes", COUNT)                                                               \
	X(SNAPSHOTS, "snapshots", COUNT)                                                           \
	X(REDUCTION, "reduction_ratio", RATIO)                                                     \
	X(HOST_WRITTEN, "host_bytes_written", BYTES)                                               \
	X(DEVICE_WRITTEN, "device_bytes_written", BYTES)                                           \
	X(ERASE_MEAN, "erase_count_mean", MEAN)                                                    \
	X(ERASE_MAX, "erase_count_max", COUNT)                                                     \
	X(GC_MOVED, "gc_bytes_moved", BYTES)                                                       \
	X(READ_OPS, "read_ops", COUNT)                                                             \
	X(WRITE_OPS, "write_ops", COUNT)                                                           \
	X(READ_BYTES, "read_bytes", BYTES)                                                         \
	X(WRITE_BYTES, "write_bytes", BYTES)                                                       \
	X(READ_P50, "read_latency_p50_us", MICROS)                                                 \
	X(READ_P99, "read_latency_p99_us", MICROS)                                                 \
	X(WRITE_P50, "write_latency_p50_us", MICROS)                                               \
	X(WRITE_P99, "write_latency_p99_us", MICROS)                                               \
	X(CHECKSUM_ERRORS, "checksum_errors", COUNT)                                               \
	X(LIFE_USED, "life_used_percent", PERCENT)                                                 \
	X(SMART_USED, "smart_percentage_used", PERCENT)                                            \
	X(SMART_SPARE, "smart_available_spare_percent", PERCENT)                                   \
	X(SMART_MEDIA_ERRORS, "smart_media_errors", COUNT)                                         \
	X(SMART_TEMPERATURE, "smart_temperature_celsius", CELSIUS)

enum analytics_col {
#define ANALYTICS_COL_ENUM(n, s, k) ANALYTICS_COL_##n,
	ANALYTICS_COLUMNS(ANALYTICS_COL_ENUM)
#undef ANALYTICS_COL_ENUM
	    ANALYTICS_NCOLS
};
extern const char *const analytics_col_names[ANALYTICS_NCOLS];
extern const enum analytics_kind analytics_col_kinds[ANALYTICS_NCOLS];
/* The column called NAME, or -ENOENT. */
int analytics_col_find(const char *name);

/* Imported times must fall in [2000-01-01, 2100-01-01) UTC. */
#define ANALYTICS_TIME_MIN 946684800ll
#define ANALYTICS_TIME_MAX 4102444800ll
/* An import holds at most this many rows (a century of hourly samples, far more than a
 * downsampled history ever has). */
#define ANALYTICS_IMPORT_MAX_ROWS 1000000u

/* One sample: Unix seconds (UTC) and the columns; NAN is an empty value. */
struct analytics_sample {
	int64_t time;
	double v[ANALYTICS_NCOLS];
};
void analytics_sample_clear(struct analytics_sample *s); /* every value empty */
bool analytics_empty(double v);

/* A series of samples in strictly increasing time. */
struct analytics_history {
	struct analytics_sample *s;
	size_t n, cap;
};
/* Appends S (copied). -ENOMEM; -EINVAL when S is not after the last sample. */
int analytics_history_add(struct analytics_history *h, const struct analytics_sample *s);
void analytics_history_free(struct analytics_history *h); /* leaves it empty, reusable */

/* ---- CSV ----------------------------------------------------------------------------------- */
/* The whole history as CSV: a header line `time,physical_used_bytes,...` (every column), then
 * one line a sample; empty values are empty fields. *OUT is malloc'd (NUL-terminated). */
int analytics_csv_write(const struct analytics_history *h, char **out, size_t *len);

/* Parses a CSV of history.csv's form into OUT (which must be empty). Untrusted input: the
 * header must start with `time,physical_used_bytes` and name known columns once each (any
 * subset, any order after those two); every line has as many fields as the header; times are
 * whole seconds, strictly increasing, in [ANALYTICS_TIME_MIN, ANALYTICS_TIME_MAX);
 * physical_used_bytes is never empty; every value is a plain decimal number within its
 * column's kind (and physical_used_bytes <= capacity_bytes where both are given). CRLF line ends
 * and a final newline are accepted. On any error OUT is left empty and ERR says where and why
 * ("line 7: time 1700000000 is not after the previous line's 1700000060").
 * Errors: -EINVAL (bad input), -E2BIG (more than ANALYTICS_IMPORT_MAX_ROWS rows), -ENOMEM. */
int analytics_csv_parse(const char *text, size_t len, struct analytics_history *out, char *err,
                        size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
