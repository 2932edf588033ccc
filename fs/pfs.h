/* fs/pfs.h - public interface of the mountable appliance: the volume store (format, open, the
 * one change path, counters; fs/vol/pfs_store.h) and the daemon that serves it through FUSE.
 * The programs in fs/cmd/ and the test suites include this header and nothing else of fs/.
 */
#ifndef PSTOR_PFS_H
#define PSTOR_PFS_H

#include "pfs_store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* `pstorfs DEVICE MOUNTPOINT [-o OPTIONS] [-f] [-d]`. */
int pfs_daemon_main(int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif
