/* fs/cmd/fsck_pstorfs.c - fsck.pstorfs's entry point; everything is in pfs_fsck_main(). */
#include "pfs.h"

int main(int argc, char **argv)
{
	return pfs_fsck_main(argc, argv);
}
