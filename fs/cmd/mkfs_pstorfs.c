/* fs/cmd/mkfs_pstorfs.c - mkfs.pstorfs's entry point; everything is in pfs_mkfs_main(). */
#include "pfs.h"

int main(int argc, char **argv)
{
	return pfs_mkfs_main(argc, argv);
}
