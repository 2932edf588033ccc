/* fs/pfs.h - public interface of the mountable appliance: format a namespace, open it as a set of
 * volumes and snapshots, and serve it over FUSE. The command-line programs are thin mains over
 * pfs_mkfs_main() and pfs_daemon_main(). All functions return 0 or -errno.
 */
#ifndef PSTOR_PFS_H
#define PSTOR_PFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

struct pfs_mkfs_params {
	uint64_t size;         /* create a sparse image of this size when the path is missing */
	uint32_t block_size;   /* volume block (engine) size, 4K..64K; 0 = 4 KiB */
	uint64_t segment_size; /* 0 = 8 MiB */
	bool force;            /* overwrite an existing pstorfs or other signature */
};

/* Formats DEVICE (flash layout, empty metadata region). Prints nothing: MSG receives a
 * one-line reason on failure, a few lines on what was made on success. -EEXIST when it holds
 * a pstorfs or another known signature and !force. */
int pfs_mkfs(const char *path, const struct pfs_mkfs_params *prm, char *msg, size_t msglen);

struct pfs_opts {
	const char *device;
	bool readonly;
	const char *compression; /* NULL = keep the stored setting */
	int dedupe;              /* -1 keep, 0 off, 1 on */
	int commit_interval_ms;  /* -1 keep */
	bool gc_thread;          /* run GC in the background (default on) */
	bool full_scan;          /* ignore the flash checkpoint: read every segment summary */
};

struct pfs;

/* Opens a formatted namespace, rebuilds the in-memory state and starts the background threads.
 * MSG receives a one-line reason on failure. */
int pfs_open(const struct pfs_opts *opts, struct pfs **out, char *msg, size_t msglen);
/* Commits everything, stops the threads, closes. NULL is a no-op. */
void pfs_close(struct pfs *p);
/* Makes everything acknowledged so far durable. */
int pfs_sync(struct pfs *p);

/* Checks that PATH holds a pstorfs namespace this build can mount, without opening it for
 * writing or starting anything (used before daemonizing). */
int pfs_probe(const char *path, char *msg, size_t msglen);

int pfs_mkfs_main(int argc, char **argv);
int pfs_fsck_main(int argc, char **argv); /* fsck.pstorfs */
int pfs_daemon_main(int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif
