/* fs/pfs_front_int.h - the front of fs/ (FUSE operations, the ctl language, the reports),
 * private to the files in fs/ itself. The front reaches the store only through pfs_store.h.
 */
#ifndef PSTOR_PFS_FRONT_INT_H
#define PSTOR_PFS_FRONT_INT_H

#include "cluster.h"
#include "pfs.h"

#define PFS_MSG_MAX 256

/* ---- pfs_front_cluster.c: the cluster a mounted store is in (NULL: none) ------------------ */
void pfs_front_set_cluster(struct pfs *p, struct cluster *cl);
struct cluster *pfs_front_cluster(struct pfs *p);

/* ---- pfs_fuse.c ---------------------------------------------------------------------------- */
struct pfs_fuse;
struct fuse_session;
struct fuse_args;

struct pfs_fuse *pfs_fuse_new(struct pfs *p);
/* Creates the low-level session over P's operations (fuse_session_new). */
struct fuse_session *pfs_fuse_session(struct pfs_fuse *f, struct fuse_args *args);
void pfs_fuse_free(struct pfs_fuse *f);
/* The text a read of the control file PATH (relative to the mount root, such as
 * ".pstorage/reduction.json") gives, and the names a listing of the directory PATH gives, one a
 * line: the same lookups and printers as through FUSE (the REST API's door). -ENOENT, -ENOTDIR,
 * -EISDIR, -EACCES (volume data, the ctl file). */
int pfs_fuse_read_path(struct pfs_fuse *f, const char *path, struct pfs_buf *b);
int pfs_fuse_list_path(struct pfs_fuse *f, const char *path, struct pfs_buf *b);
/* A ctl line as a write to .pstorage/ctl runs it: pfs_ctl_exec, then the kernel forgets what
 * it cached of the volumes (a restore or a resize changed them behind it). */
int pfs_fuse_ctl(struct pfs_fuse *f, const char *line);

/* ---- pfs_front_api.c: the REST API (fs/api) on this mount --------------------------------- */
struct pfs_front_api;
struct papi_config;
/* Serves the API over P (ctl lines and control files through F) when CFG->listen is set;
 * *OUT NULL otherwise. MSG receives the reason of a failure. */
int pfs_front_api_start(struct pfs *p, struct pfs_fuse *f, const struct papi_config *cfg,
                        struct pfs_front_api **out, char *msg, size_t msglen);
/* Stops it (requests in flight finish first). NULL is a no-op. */
void pfs_front_api_stop(struct pfs_front_api *a);

/* ---- pfs_ctl.c ------------------------------------------------------------------------- */
/* Runs one ctl line. 0 or -errno; the reason is in p->msg. */
int pfs_ctl_exec(struct pfs *p, const char *line);
int pfs_ctl_write(struct pfs *p, const char *buf, size_t len);

/* ---- pfs_report.c ------------------------------------------------------------------------ */
enum pfs_report {
	PFS_REPORT_STATUS,
	PFS_REPORT_REDUCTION,
	PFS_REPORT_METRICS,
	PFS_REPORT_FLASH_IDENTITY,
	PFS_REPORT_FLASH_STATS,
	PFS_REPORT_FLASH_SMART, /* NVMe SMART / health log, or its emulation */
	PFS_REPORT_VOLUME,      /* summary of one volume */
	PFS_REPORT_SCRUB,       /* progress and findings of the scrub (pfs_scrub.c) */
	PFS_REPORT_STATS,       /* every counter of the store (pfs_get_stats) */
};
int pfs_report(struct pfs *p, enum pfs_report r, bool json, struct pfs_vol *v, struct pfs_buf *b);
/* One value of a volume: size, written, unique, shared, reduction, snapshots, temperature. */
int pfs_report_volume_value(struct pfs *p, struct pfs_vol *v, const char *what, struct pfs_buf *b);
extern const char *const pfs_volume_values[];
#define PFS_VOLUME_VALUES 7

#endif
