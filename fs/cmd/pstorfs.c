/* fs/cmd/pstorfs.c - the daemon's entry point; everything is in pfs_daemon_main(). */
#include "pfs.h"

int main(int argc, char **argv)
{
	return pfs_daemon_main(argc, argv);
}
