/* fs/pfs_fuse_int.h - the FUSE operations table, for the daemon's main (private to fs/). */
#ifndef PSTOR_PFS_FUSE_INT_H
#define PSTOR_PFS_FUSE_INT_H

struct pfs;
struct pfs_fuse;
struct fuse_session;
struct fuse_args;

struct pfs_fuse *pfs_fuse_new(struct pfs *p);
/* Creates the low-level session over P's operations (fuse_session_new). */
struct fuse_session *pfs_fuse_session(struct pfs_fuse *f, struct fuse_args *args);
void pfs_fuse_free(struct pfs_fuse *f);

#endif
