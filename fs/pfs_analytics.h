/* fs/pfs_analytics.h - the front's analytics: the sampler thread that appends a row of
 * counters to the store's history, the files of .pstorage/analytics/ and the `analytics`
 * ctl commands. Private to fs/ (front); the models live in analytics/.
 */
#ifndef PSTOR_PFS_ANALYTICS_H
#define PSTOR_PFS_ANALYTICS_H

#include "analytics.h"
#include "pfs.h"

/* ---- the sampler --------------------------------------------------------------------------- */
struct pfs_sampler;
/* Starts a thread that every analytics_interval seconds (read from the store's config each
 * time, so `config set` applies from the next sample) appends one sample to the history. The
 * first sample comes one interval after the start. Nothing on a read-only store (*OUT = NULL,
 * returns 0). -ENOMEM, -EAGAIN. */
int pfs_sampler_start(struct pfs *p, struct pfs_sampler **out);
/* Stops and joins the thread. NULL is a no-op. */
void pfs_sampler_stop(struct pfs_sampler *s);

/* One sample of P's counters now (time: Unix seconds). PREV (may be NULL) holds the volume I/O
 * counters of the previous sample and is updated: the latency quantiles are those of the
 * operations in between, empty when there were none. */
struct pfs_sample_prev {
	bool valid;
	struct pfs_io_stats read, write;
};
void pfs_analytics_sample(struct pfs *p, struct pfs_sample_prev *prev, struct analytics_sample *s);

/* One per-volume row for each volume (size, written, unique, shared) at TIME. */
int pfs_analytics_sample_volumes(struct pfs *p, int64_t time);

/* The whole history, oldest first. -ENOMEM, -EIO. */
int pfs_analytics_history(struct pfs *p, struct analytics_history *h);

/* The capacity forecast (+7, +30, +90 days) of physical_used_bytes from the history alone: its
 * newest sample is "now", its newest capacity_bytes the pool's size. -ENOMEM, -EIO. */
int pfs_analytics_capacity(struct pfs *p, struct analytics_capacity *c);

/* The forecast as Prometheus gauges (whole families with HELP and TYPE), for .pstorage/metrics:
 * pstorfs_analytics_history_samples, and once there are 24 h of history
 * pstorfs_capacity_forecast_{used,lo80,hi80,lo95,hi95}_bytes{horizon_days=}, and
 * pstorfs_capacity_full_timestamp_seconds when the pool fills within a year. Nothing of the
 * forecast when the history cannot be read. */
void pfs_analytics_metrics(struct pfs *p, struct pfs_buf *b);

/* The health grade and the wear-out and spare forecasts (pfs_analytics.c). */
struct pfs_health;
int pfs_analytics_health(struct pfs *p, struct pfs_health *hl);

/* The capacity forecast, the capacity files, the loaded history and the health's
 * history-derived parts are kept for the store's history generation (pfs_history_generation)
 * and computed again only when it moved: reports read in a row cost a lookup. HITS counts
 * parts found kept, FILLS parts computed (for tests and the bench; process-wide). */
void pfs_analytics_cache_counts(uint64_t *hits, uint64_t *fills);

/* The forecasts of H (the history, newest sample "now"): the pool's physical used (as
 * pfs_analytics_capacity) and the wear-out (life used reaching 100%: SMART percentage used
 * where the device has a log, else the FTL's; *COLUMN says which). -ENOMEM. */
int pfs_analytics_capacity_of(const struct analytics_history *h, struct analytics_capacity *c);
int pfs_analytics_wearout_of(struct pfs *p, const struct analytics_history *h,
                             struct analytics_capacity *c, int *column);

/* Each volume's logical written from the per-volume history (volumes.csv), by name: its
 * samples (T, WRITTEN, N of them) and its newest size. */
struct pfs_vol_series {
	char name[PFS_NAME_MAX + 1];
	int64_t *t;
	double *written, size;
	size_t n, cap;
};
struct pfs_vol_set {
	struct pfs_vol_series *v;
	size_t n, cap;
	int err;
};
int pfs_analytics_volume_series(struct pfs *p, struct pfs_vol_set *s);
void pfs_vol_set_free(struct pfs_vol_set *s);
/* V's forecast of logical written (+7, +30, +90 days), its size as the capacity. */
int pfs_analytics_volume_forecast(const struct pfs_vol_series *v, struct analytics_capacity *c);

/* ---- forecasts that grade themselves (pfs_analytics_grade.c) -------------------------------- */
/* The kinds of forecast the box records (the store's forecasts table). */
#define PFS_GRADE_CAPACITY "capacity"
#define PFS_GRADE_WEAROUT  "wearout"
/* A volume's forecasts of its logical written: this prefix and the volume's name. */
#define PFS_GRADE_VOLUME   "vol:"
#define PFS_GRADE_KIND_MAX (sizeof(PFS_GRADE_VOLUME) + PFS_NAME_MAX)
/* A volume's forecast is recorded once a week of history time, not once a day: a row is about
 * 250 bytes, and a box may hold a thousand volumes (analytics/README.md). */
#define PFS_FORECAST_VOL_INTERVAL (7 * 86400ll)
/* Records the forecasts of each kind that has none made within PFS_FORECAST_INTERVAL of NOW
 * (the history's newest sample time), and with the pool's daily one each volume's that has
 * none made within PFS_FORECAST_VOL_INTERVAL: called after the sampler appends a row and
 * after an import, so history time (not the wall clock) paces them and an imported history
 * records as a lived one does. Too little history records nothing. -ENOMEM, -ENOSPC, -EIO. */
int pfs_analytics_record_forecasts(struct pfs *p, int64_t now);
/* KIND's recorded forecasts about history column COLUMN, scored against H. */
int pfs_analytics_grade_kind(struct pfs *p, const char *kind, int column,
                             const struct analytics_history *h, struct analytics_grade *g);
/* Each volume's recorded forecasts scored against its series: G[i] for S->v[i] (S->n of
 * them). */
int pfs_analytics_grade_volumes(struct pfs *p, const struct pfs_vol_set *s,
                                struct analytics_grade *g);
/* Which recorded forecasts a new history H keeps: the pool's that it holds the value of at the
 * time they were made (analytics_recorded_matches), N of ALL recorded. The volumes' are never
 * kept: a new history has no per-volume rows. KINDS point into NAMES. */
struct pfs_grade_keep {
	size_t n, all;
	const char **kinds;
	int64_t *made_at;
	char (*names)[PFS_GRADE_KIND_MAX];
};
int pfs_analytics_grade_keep(struct pfs *p, const struct analytics_history *h,
                             struct pfs_grade_keep *k);
void pfs_grade_keep_free(struct pfs_grade_keep *k);

/* ---- data temperature (pfs_temperature.c) --------------------------------------------------- */
/* .pstorage/analytics/temperature[.json]: thresholds, the tracker, each volume's and the pool's
 * written bytes by class. -ENOMEM, -EIO. */
int pfs_temperature_report(struct pfs *p, bool json, struct pfs_buf *b);
/* .pstorage/volumes/NAME/temperature: V's bytes by class and its hottest extents. */
int pfs_temperature_volume(struct pfs *p, struct pfs_vol *v, struct pfs_buf *b);
/* pstorfs_temperature_bytes{class=} (the pool) and pstorfs_temperature_tracker_bytes. */
void pfs_temperature_metrics(struct pfs *p, struct pfs_buf *b);

/* ---- files and commands -------------------------------------------------------------------- */
/* .pstorage/analytics/<name>, in listing order. */
extern const char *const pfs_analytics_files[];
extern const unsigned pfs_analytics_nfiles;
/* The text of file I. */
int pfs_analytics_file(struct pfs *p, unsigned i, struct pfs_buf *b);

/* `analytics import PATH`: replaces the history with the CSV at PATH (absolute), checked
 * line by line first (analytics_csv_parse); nothing changes on any error. The reason is in the
 * store's message. -EINVAL, -ENOENT, -EFBIG, -EROFS, -ENOSPC, -EIO. */
int pfs_analytics_import(struct pfs *p, const char *path);

#endif
