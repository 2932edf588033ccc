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

/* Per-volume rows (.pstorage/analytics/volumes.csv: time,volume, then these), sampled at most
 * once an hour (ANALYTICS_VOL_INTERVAL): a usage figure walks the volume's whole map. */
#define ANALYTICS_VOL_COLUMNS(X)                                                                   \
	X(SIZE, "size_bytes", BYTES)                                                               \
	X(WRITTEN, "written_bytes", BYTES)                                                         \
	X(UNIQUE, "unique_bytes", BYTES)                                                           \
	X(SHARED, "shared_bytes", BYTES)
enum analytics_vol_col {
#define ANALYTICS_VOL_ENUM(n, s, k) ANALYTICS_VOL_##n,
	ANALYTICS_VOL_COLUMNS(ANALYTICS_VOL_ENUM)
#undef ANALYTICS_VOL_ENUM
	    ANALYTICS_VOL_NCOLS
};
extern const char *const analytics_vol_col_names[ANALYTICS_VOL_NCOLS];
#define ANALYTICS_VOL_INTERVAL 3600

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

/* ---- statistics ---------------------------------------------------------------------------- */
/* The P-quantile (0 < P < 1) of Student's t with DOF degrees of freedom (DOF >= 1; a DOF above
 * 10^6 is the normal distribution). Exact to about 1e-9 (bisection on the incomplete beta). */
double analytics_t_quantile(double p, double dof);
double analytics_normal_quantile(double p);

/* ---- forecast models ---------------------------------------------------------------------- */
/* Each model sees a series on a regular grid, Y[0..N) one STEP apart, and forecasts H steps
 * past its end: a point and the standard deviation of the forecast error, with DOF degrees of
 * freedom for its quantiles (intervals: point +- t(DOF) * sd). */
#define ANALYTICS_MODELS(X)                                                                        \
	X(LINEAR, "linear")           /* least squares line over the whole history (baseline) */   \
	X(HOLT_DAMPED, "holt_damped") /* Holt's linear trend, damped, additive errors */           \
	X(CHANGEPOINT, "changepoint") /* least squares line after the last change point */         \
	X(EXPONENTIAL, "exponential") /* least squares line of log(y): compound growth */          \
	X(DRIFT, "drift")             /* last value plus the mean step (random walk with drift) */
enum analytics_model {
#define ANALYTICS_MODEL_ENUM(n, s) ANALYTICS_MODEL_##n,
	ANALYTICS_MODELS(ANALYTICS_MODEL_ENUM)
#undef ANALYTICS_MODEL_ENUM
	    ANALYTICS_NMODELS
};
extern const char *const analytics_model_names[ANALYTICS_NMODELS];

/* Ordinary least squares y = a + b x. S is the residual standard error (N - 2 degrees of
 * freedom). -EINVAL with fewer than 3 points or all X equal. */
struct analytics_linear {
	double a, b, s;
	double xbar, sxx;
	size_t n;
};
int analytics_linear_fit(const double *x, const double *y, size_t n, struct analytics_linear *m);
/* Point and prediction standard error at X0: s * sqrt(1 + 1/n + (x0 - xbar)^2 / sxx). */
void analytics_linear_predict(const struct analytics_linear *m, double x0, double *point,
                              double *sd);

/* Holt's damped trend in error-correction form: e_t = y_t - (l + phi b), l += phi b + alpha e,
 * b = phi b + beta e; started at k = min(N - 2, 5) with l = y_k, b = (y_k - y_0) / k, errors from
 * y_{k+1}. Fit: the (alpha, beta, phi) of a grid with the
 * least one-step squared error; SIGMA from it. -EINVAL with fewer than 4 points. */
struct analytics_holt {
	double alpha, beta, phi;
	double level, trend, sigma;
	size_t n;
};
/* Runs the recursion with given parameters; returns the one-step sum of squared errors. */
double analytics_holt_run(const double *y, size_t n, double alpha, double beta, double phi,
                          double *level, double *trend);
int analytics_holt_fit(const double *y, size_t n, struct analytics_holt *m);
/* Point l + (phi + ... + phi^h) b; variance sigma^2 (1 + sum_{j<h} (alpha + beta phi
 * (1 - phi^j) / (1 - phi))^2), the ETS(A,Ad,N) closed form. */
void analytics_holt_predict(const struct analytics_holt *m, int h, double *point, double *sd);

/* The drift method (a random walk with drift): the forecast H steps past the last value
 * Y[N-1] is Y[N-1] + H * SLOPE, SLOPE the mean first difference (Y[N-1] - Y[0]) / (N - 1);
 * SIGMA the standard deviation of the first differences about it (N - 2 degrees of freedom).
 * The forecast error's variance sigma^2 h (1 + h / (N - 1)): h steps of the walk, and the
 * slope's own error carried h steps; with RHO, the steps' lag-1 autocorrelation clipped to
 * 0..0.9, above 0: sigma^2 (S_h + h^2 L / (N - 1)), L = (1 + rho) / (1 - rho), S_h = h L -
 * 2 rho (1 - rho^h) / (1 - rho)^2 (the variance of the sum of h AR(1) steps). The best forecast of
 * a random walk with drift, where a line fitted to the whole path is not. -EINVAL with fewer than 3
 * points. */
struct analytics_drift {
	double last, slope, sigma;
	size_t n;
	double rho; /* the steps' lag-1 autocorrelation, clipped to 0..0.9 */
};
int analytics_drift_fit(const double *y, size_t n, struct analytics_drift *m);
void analytics_drift_predict(const struct analytics_drift *m, int h, double *point, double *sd);

/* The scale the drift method is fitted on for Y[0..N): the one whose steps' mean is steadier,
 * the smaller |analytics_step_trend_t| of the steps of Y (*LOG_SCALE false) and of log Y (true;
 * only when Y stays above 0; Y wins a tie), that statistic in *T. A random walk whose steps are
 * a share of what is there (growth by x% a year) has a constant mean step in logs only; one whose
 * steps are bytes, on Y. -EINVAL for N < 3, -ENOMEM. */
int analytics_drift_scale(const double *y, size_t n, bool *log_scale, double *t);

/* The start of the last segment of Y: the break K (MIN_SEG <= K <= N - MIN_LAST) that minimises
 * the squared error of two separate lines over [0, K) and [K, N), kept when it lowers the BIC
 * (n ln(SSE/n) + p ln n; 2 parameters for one line, 5 for two lines and the break), else 0. */
size_t analytics_changepoint(const double *y, size_t n, size_t min_seg, size_t min_last);

/* MODEL fitted on Y[0..N), forecast H >= 1 steps ahead. -EINVAL when N is too short. */
int analytics_model_forecast(enum analytics_model model, const double *y, size_t n, int h,
                             double *point, double *sd, double *dof);

/* Standardized backtest errors Z[0..N) made at origins O[0..N) (the window lengths), moved to
 * the origin NOW when they trend upward: when the least squares slope b of Z on O exceeds TCRIT
 * standard errors (s / sqrt(Sxx), times sqrt((1 + rho) / (1 - rho)) for the residuals' lag-1
 * autocorrelation rho, clipped to 0..0.9), each Z[i] += b (NOW - O[i]) and 1 is returned; else
 * Z is unchanged and 0 is returned (also for N < 5 or all O equal). A line's error on a curve
 * grows with its window, so the newest origin's understates the present's. */
int analytics_trend_shift(double *z, const double *o, size_t n, double now, double tcrit);

/* The error quantile that covers a new error with probability L (0 < L < 1), from Z[0..N)
 * (N >= 1; sorted in place) worth NEFF > 0 independent errors. Split-conformal: the quantile
 * at ceil((neff + 1) L) / neff of Z, interpolated between order statistics. When that level
 * is past 1: the largest error times t(0.5 + L/2) / t(0.5 + neff / (2 (neff + 1))), Student's
 * t with max(NEFF, 1) degrees of freedom (the largest of NEFF draws sits near the
 * neff / (neff + 1) quantile of |t|). */
double analytics_conformal_quantile(double *z, size_t n, double neff, double l);
/* The Q-quantile of V[0..N), N >= 1 (sorted in place), interpolated between order statistics:
 * position q (n - 1). */
double analytics_quantile(double *v, size_t n, double q);

/* How many independent errors E[0..N) (N >= 1, in origin order, signed) are worth: N (1 - rho)
 * / (1 + rho), rho their lag-1 autocorrelation about their mean, clipped to 0..0.9 (0 when any
 * is not finite or all are equal). Neighbouring backtest origins share most of their forecast
 * window, so their errors move together. */
double analytics_effective_count(const double *e, size_t n);

/* The exponent gamma of a standardized error that grows as h^gamma with the horizon h, from
 * SCALE, how much larger it is at horizon H_FAR than at H_NEAR (analytics_horizon_scale):
 * log(SCALE) / log(H_FAR / H_NEAR), clipped to 0..1 (0 also when SCALE <= 1 or the horizons
 * are not 0 < H_NEAR < H_FAR). 0: the model's sd grows as its errors do; 1/2: a constant sd on
 * a random walk; 1: a bias growing with the horizon. Never negative, so a horizon past the
 * backtest's is never narrowed by extrapolation. */
double analytics_horizon_exponent(double scale, double h_far, double h_near);

/* How much larger standardized errors are at a far horizon than at a near one: the mean of the
 * finite values of Z_FAR[0..N_FAR) over that of Z_NEAR[0..N_NEAR); 1 when either has none or a
 * mean of 0. A standardized error is the same at every horizon only when the model's sd grows
 * as its error does; a line's bias grows faster. */
double analytics_horizon_scale(const double *z_far, size_t n_far, const double *z_near,
                               size_t n_near);

/* The autocorrelation at LAG of the first differences of Y[0..N) (about their mean); 0 when
 * there are fewer than LAG + 3 differences or they are all equal. A seasonal series' steps
 * repeat with its period, so it is clearly positive at the period and its multiples. */
double analytics_diff_autocorr(const double *y, size_t n, size_t lag);

/* Whether the steps D[0..N) (first differences, in time order) have a constant mean, the drift
 * method's assumption: the t statistic of kappa in d_i = mu + kappa i + e_i (least squares),
 * its standard error s / sqrt(Sxx) times sqrt((1 + rho) / (1 - rho)), rho the residuals' lag-1
 * autocorrelation clipped to 0..0.9. 0 for N < 5 or any value not finite; +-INFINITY when the
 * steps lie exactly on a sloped line. A series that compounds (its steps grow with it) is far
 * past 2; a random walk with drift past 2 about one time in 20. */
double analytics_step_trend_t(const double *d, size_t n);

/* ---- capacity forecast -------------------------------------------------------------------- */
#define ANALYTICS_MIN_HISTORY_SECONDS 86400 /* "need 24 h of samples" below this */
#define ANALYTICS_MAX_HORIZONS        8
struct analytics_forecast_point {
	double horizon_days;
	double used, lo80, hi80, lo95, hi95;
};
struct analytics_capacity {
	bool ok;                   /* false: MESSAGE says why (too little history), no figures */
	char message[96];          /* "need 24 h of samples (have 3.5 h)" */
	int64_t now;               /* the newest sample's time */
	double used_now, capacity; /* capacity 0: unknown (no clipping, no full date) */
	double growth_per_day;     /* of the chosen model over the next 7 days */
	double step_days;          /* the grid the models saw */
	size_t points;             /* grid points */
	enum analytics_model model;
	/* Rolling-origin backtest at BACKTEST_DAYS ahead over ORIGINS origins: mean absolute
	 * error of each model, and of the chosen one scaled by the in-sample mean absolute
	 * one-step change (MASE), over the origins whose window does not straddle the last
	 * change point (all of them when every one does): those measure the change, which every
	 * model missed alike. */
	double backtest_days;
	unsigned origins;
	double backtest_mae[ANALYTICS_NMODELS];
	double backtest_mase;
	/* Interval widening from the backtest: the model's sd is multiplied by these so the
	 * backtest's standardized errors would have been covered (never below 1). */
	double calib80, calib95;
	/* How the standardized error grows with the horizon, (h / h_backtest)^HORIZON_EXPONENT,
	 * from the two backtests (analytics_horizon_exponent); calib80/95 hold at the month's
	 * backtest horizon. */
	double horizon_exponent;
	/* The drift method's own check on the history: the t statistic of a trend in the steps'
	 * mean (analytics_step_trend_t); DRIFT_ELIGIBLE when it is within 2 and the steps show
	 * no weekly period, else `drift` is not chosen. */
	double step_trend_t;
	bool drift_eligible;
	/* The exponential model's check: the t statistic of a trend in the mean of the steps of
	 * the series itself (not of its logs); EXP_ELIGIBLE when it is at least 2 (steps that
	 * grow with what is there), else `exponential` is not chosen. */
	double exp_step_trend_t;
	bool exp_eligible;
	size_t nfc;
	struct analytics_forecast_point fc[ANALYTICS_MAX_HORIZONS];
	/* Days from now until the pool is full: point, and the 95% interval (earliest when the
	 * upper bound reaches capacity, latest when the lower one does; -1 = not within a
	 * year). FULL_WITHIN_YEAR false: the point forecast stays below capacity for 365 days. */
	bool full_within_year;
	double full_days, full_days_lo95, full_days_hi95;
};
/* Forecasts Y (bytes) sampled at times T (Unix seconds, increasing) at each of HORIZONS days
 * from the newest sample: resamples onto an hourly grid (daily when the history spans more
 * than 14 days), picks the model by rolling-origin backtest and widens its intervals by what
 * the backtest saw. Samples with an empty Y are skipped. OUT->ok false when the history spans
 * less than 24 h. -EINVAL (NH > ANALYTICS_MAX_HORIZONS), -ENOMEM. */
int analytics_capacity_forecast(const int64_t *t, const double *y, size_t n, double capacity,
                                const double *horizons, size_t nh, struct analytics_capacity *out);

/* ---- forecasts that grade themselves (analytics_grade.c) ------------------------------------ */
/* The box keeps the forecasts it made (at most one a day per kind, in the store) and scores
 * each against the history once its horizons pass. Pure computation here: the front records
 * and loads them; this file packs, checks and scores them. */
#define ANALYTICS_GRADE_MAX_HORIZONS 3
/* A forecast as kept: made from the history whose newest sample was at MADE_AT ("now" then),
 * about history column COLUMN, whose value then was VALUE_AT. */
struct analytics_recorded {
	int64_t made_at;
	/* An enum analytics_col (a pool's forecast) or analytics_vol_col (a volume's). */
	int column;
	double value_at;
	double limit; /* the capacity it was measured against (100 for life used); 0 unknown */
	enum analytics_model model;
	size_t nfc;
	struct analytics_forecast_point fc[ANALYTICS_GRADE_MAX_HORIZONS];
	/* Days after MADE_AT until the point forecast reaches LIMIT (-1: not within a year) and
	 * its 95% interval (-1: that bound does not reach it within a year). */
	double full_days, full_lo95, full_hi95;
};
/* Doubles in a packed record (a version, then the fields in order). */
#define ANALYTICS_RECORDED_VALUES (6 + 6 * ANALYTICS_GRADE_MAX_HORIZONS + 3)
/* The record of C (its first ANALYTICS_GRADE_MAX_HORIZONS horizons) about COLUMN. -EINVAL
 * when C has no forecast (C->ok false). */
int analytics_recorded_from(const struct analytics_capacity *c, int column,
                            struct analytics_recorded *r);
/* R as ANALYTICS_RECORDED_VALUES doubles in V; and back. Unpack checks what it reads (a
 * damaged or foreign row is -EINVAL, never a made-up forecast). */
void analytics_recorded_pack(const struct analytics_recorded *r, double *v);
int analytics_recorded_unpack(int64_t made_at, const double *v, uint32_t n,
                              struct analytics_recorded *r);

/* Y at time AT, interpolated linearly between the samples around it (samples with an empty Y
 * skipped; T increasing). -ERANGE when AT is outside the samples, -ENOENT when none has a
 * value. */
int analytics_value_at(const int64_t *t, const double *y, size_t n, int64_t at, double *out);

/* Whether a history (T, Y) is the one R was made from, as far as one value tells: it reaches
 * R->made_at and holds R->value_at there (the sample at that time, to 1e-9 relative; between
 * two samples, when the history was downsampled since, within their range). An import that
 * extends the old history keeps the forecasts; another box's history drops them. */
bool analytics_recorded_matches(const struct analytics_recorded *r, const int64_t *t,
                                const double *y, size_t n);

/* Samples further apart than this around a horizon's time leave it unscored (a gap). */
#define ANALYTICS_GRADE_MAX_GAP (2 * 86400)
/* One forecast scored against what happened (T, Y: the history of its column, newest sample
 * "now"). A horizon is scored once made_at + horizon days is within the history and not in a
 * gap of more than ANALYTICS_GRADE_MAX_GAP between samples: the actual value there, the error
 * (actual - point), its absolute and relative size (to the actual), and whether the 80% and 95%
 * intervals held. The date the limit is reached: REACHED when the history crosses the limit after
 * made_at (REACHED_DAYS after it, interpolated), and the 95% interval's verdict once it is known:
 * held when the crossing falls in [lo95, hi95] (hi95 -1: no upper bound within a year, so any
 * crossing after lo95 or none for a year), failed when it falls outside or hi95 passes without one.
 * POINT_ERROR_DAYS: the point date minus the actual one, when both are known. */
struct analytics_score {
	size_t nh;
	struct {
		bool scored;
		double actual, error, abs_error, rel_error;
		bool in80, in95;
	} h[ANALYTICS_GRADE_MAX_HORIZONS];
	bool reached;
	double reached_days;
	bool date_decided, date_held95;
	bool point_decided;
	double point_error_days;
};
int analytics_grade_one(const struct analytics_recorded *r, const int64_t *t, const double *y,
                        size_t n, struct analytics_score *out);

/* The error band observed on this box: NR recorded forecasts scored against the history, by
 * horizon (in ascending order, at most ANALYTICS_MAX_HORIZONS distinct): how many were
 * scored, the median and 90th percentile of the absolute and relative errors (interpolated
 * between order statistics), the mean error (bias: positive when the box forecast too low),
 * and the share of them inside their own 80% and 95% intervals; for the dates, how many
 * intervals were decided and held, and the median absolute error of the point date where the
 * limit was reached. SCORED counts forecasts with at least one horizon scored. */
struct analytics_grade {
	unsigned recorded, scored;
	size_t nh;
	struct analytics_grade_horizon {
		double horizon_days;
		unsigned scored, in80, in95;
		double abs_p50, abs_p90, rel_p50, rel_p90, mean_error;
		double coverage80, coverage95; /* NAN when none was scored */
	} h[ANALYTICS_MAX_HORIZONS];
	unsigned dates_decided, dates_held95, dates_reached;
	double date_abs_error_p50_days; /* NAN when no point date met a crossing */
};
int analytics_grade(const struct analytics_recorded *r, size_t nr, const int64_t *t,
                    const double *y, size_t n, struct analytics_grade *out);

/* ---- pictures ------------------------------------------------------------------------------ */
/* An SVG chart (800 x 400) of a series and its forecast: the history as a line, the forecast
 * C as a dashed line in its 80% and 95% bands, C->capacity as a red line ("full" when the
 * point forecast reaches it within C's horizons), dates along the bottom. C->ok false: the
 * history alone and C->message. Y values are divided by Y_SCALE and labelled with Y_UNIT
 * ("GiB", "%"). TITLE is plain text (escaped here). *OUT is malloc'd, NUL-terminated. */
int analytics_svg_chart(const char *title, const int64_t *t, const double *y, size_t n,
                        const struct analytics_capacity *c, double y_scale, const char *y_unit,
                        char **out, size_t *len);

/* ---- health ------------------------------------------------------------------------------- */
enum analytics_health_status { ANALYTICS_OK, ANALYTICS_WARNING, ANALYTICS_CRITICAL };
extern const char *const analytics_health_names[3]; /* "ok", "warning", "critical" */

/* What the health grade looks at; the caller fills what it knows (NAN or false: unknown). */
struct analytics_health_input {
	/* The FTL's own wear: mean erase count over the rated endurance, in percent. */
	double life_used_pct;
	/* NVMe SMART, where the device has a log of its own. */
	bool smart;
	unsigned critical_warning; /* NVMe critical warning bits */
	double percentage_used;    /* of rated life; may pass 100 */
	double spare_pct, spare_threshold_pct;
	double media_errors, temperature_c;
	/* The store. */
	double checksum_errors, read_errors, damaged_refs, commit_errors;
	/* The last finished scrub (all zero when none finished since the mount): live chunks
	 * reads cannot return, blocks of volumes whose reads fail, chunks readable but only
	 * through a damaged summary (at risk), and damaged metadata copies or structures. */
	bool scrub_found_damage;
	double scrub_damaged_chunks, scrub_blocks_failing, scrub_at_risk, scrub_metadata;
	/* Write amplification over the last 7 days and the 7 before (from the history). */
	double wa_recent, wa_before;
	/* Days until life used reaches 100% / spare reaches its threshold (NAN: not foreseen
	 * within a year or not known). */
	double wearout_days, spare_days;
};

#define ANALYTICS_HEALTH_MAX_REASONS 16
struct analytics_health {
	enum analytics_health_status status;
	unsigned nreasons;
	struct {
		enum analytics_health_status level;
		char text[128];
	} reason[ANALYTICS_HEALTH_MAX_REASONS];
};
/* Grades IN: critical for what loses data or stops writes (SMART critical warnings, spare
 * below its threshold, references to damaged chunks, failed commits), warning for what
 * foretells it (checksum, read and media errors, damage found by a scrub, life used at 80%
 * or more, wear-out or spare exhaustion foreseen within 90 days, write amplification up by
 * half in a week, 70 C or more), ok otherwise; each finding with a reason. */
void analytics_health_grade(const struct analytics_health_input *in, struct analytics_health *out);

#ifdef __cplusplus
}
#endif
#endif
