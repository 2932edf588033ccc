/* fs/pfs_mkfs.c - `mkfs.pstorfs`: creates a sparse image when asked, refuses to overwrite a
 * pstorfs or any other signature libblkid recognises unless forced, lays out the flash format
 * and an empty metadata region, and prints what it made.
 */
#include <blkid.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pfs_vol_int.h"
#include "pstor_version.h"

/* Metadata region: 1/64 of the namespace (maps cost 1/512 of the data they map at 4 KiB
 * blocks, so this holds maps for about 6x the namespace in volumes, snapshots and clones). */
#define PFS_META_FRACTION 64

/* Where mkfs.pstorfs draws its progress line (NULL: none; pfs_mkfs() called as a library). */
static FILE *mkfs_progress;

/* Discards everything after the superblocks in 1 GiB steps, so a large device shows progress
 * (ftl_format TRIMs the same range again in one call, which finds nothing left to do). Best
 * effort, as in ftl_format: a device without discard keeps its old bytes, which the new
 * superblock's uuid makes foreign. A zoned device is reset by ftl_format instead. */
static void discard_all(struct ftl_dev *dev, const struct ftl_dev_identity *id)
{
	const uint64_t step = 1ull << 30, from = 1ull << 20;
	uint32_t dbs = ftl_dev_block_size(dev);
	uint64_t end = ftl_dev_size(dev) / dbs * dbs;
	struct pfs_progress pr;

	if (id->zoned || end <= from)
		return;
	pfs_progress_begin(&pr, mkfs_progress, "discarding", NULL);
	for (uint64_t off = from; off < end; off += step) {
		uint64_t len = end - off < step ? end - off : step;
		if (ftl_dev_trim(dev, off, len))
			break; /* not supported: no point in asking for the rest */
		pfs_progress_update(&pr, off + len - from, end - from);
	}
	pfs_progress_end(&pr);
}

/* Another filesystem, partition table or pstorfs already there? */
static int existing_signature(const char *path, char *what, size_t len)
{
	blkid_probe pr = blkid_new_probe_from_filename(path);
	const char *type = NULL;
	int rc = 0;

	if (!pr)
		return 0; /* unreadable here: the open below reports it */
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE);
	blkid_probe_enable_partitions(pr, 1);
	if (blkid_do_safeprobe(pr) == 0) {
		if (blkid_probe_lookup_value(pr, "TYPE", &type, NULL) == 0 ||
		    blkid_probe_lookup_value(pr, "PTTYPE", &type, NULL) == 0) {
			snprintf(what, len, "%s", type);
			rc = 1;
		}
	}
	blkid_free_probe(pr);
	return rc;
}

int pfs_mkfs(const char *path, const struct pfs_mkfs_params *prm, char *msg, size_t msglen)
{
	struct ftl_dev *dev = NULL;
	struct ftl_superblock_info sb;
	struct ftl_dev_identity id;
	struct stat st;
	char what[64];
	int rc;

	bool exists = stat(path, &st) == 0;
	if (!exists && !prm->size) {
		snprintf(msg, msglen, "%s does not exist (give --size to create an image)", path);
		return -ENOENT;
	}
	if (exists && S_ISREG(st.st_mode) && st.st_size == 0 && !prm->size) {
		snprintf(msg, msglen, "%s is empty (give --size)", path);
		return -EINVAL;
	}
	if (exists && S_ISDIR(st.st_mode)) {
		snprintf(msg, msglen, "%s is a directory, not a block device or image file", path);
		return -EISDIR;
	}
	if (exists && !prm->force) {
		rc = ftl_dev_open(path, FTL_DEV_RDONLY, 0, &dev);
		if (rc == -EBUSY) {
			snprintf(msg, msglen, "%s is in use (mounted?)", path);
			return rc;
		}
		int sbrc = rc == 0 ? ftl_read_superblock(dev, &sb) : rc;
		ftl_dev_close(dev);
		dev = NULL;
		/* A damaged, truncated or newer pstorfs is still someone's data: blkid does not
		 * know our magic, so this is the only check that protects it. */
		if (sbrc == 0 || sbrc == -EUCLEAN || sbrc == -EFBIG || sbrc == -EPROTONOSUPPORT) {
			snprintf(msg, msglen,
			         "%s already holds a%s pstorfs namespace (use --force)", path,
			         sbrc == -EUCLEAN ? " damaged"
			         : sbrc == -EFBIG ? " truncated"
			         : sbrc != 0      ? " newer"
			                          : "");
			return -EEXIST;
		}
		if (existing_signature(path, what, sizeof(what))) {
			snprintf(msg, msglen,
			         "%s already holds data (%s signature); use --force to overwrite",
			         path, what);
			return -EEXIST;
		}
	}
	if (exists && S_ISREG(st.st_mode) && prm->size && (uint64_t)st.st_size != prm->size) {
		if (truncate(path, (off_t)prm->size)) {
			rc = -errno;
			snprintf(msg, msglen, "%s: cannot size it: %s", path, strerror(errno));
			return rc;
		}
	}
	rc = ftl_dev_open(path, exists ? 0 : FTL_DEV_CREATE, prm->size, &dev);
	if (rc) {
		snprintf(msg, msglen, "%s: %s", path,
		         rc == -EBUSY ? "in use (mounted?)" : strerror(-rc));
		return rc;
	}
	ftl_dev_identify(dev, &id);
	uint32_t fbs = id.lba_size > 4096 ? id.lba_size : 4096;
	struct ftl_format_params fp = {
	    .segment_size = prm->segment_size,
	    .user_block_size = prm->block_size ? prm->block_size : 4096,
	    .meta_blocks = (uint32_t)(id.capacity_bytes / PFS_META_FRACTION / fbs),
	};
	if (id.capacity_bytes < (64ull << 20)) {
		snprintf(msg, msglen, "%s: %llu bytes is too small (at least 64 MiB)", path,
		         (unsigned long long)id.capacity_bytes);
		rc = -ENOSPC;
		goto out_close;
	}
	discard_all(dev, &id);
	rc = ftl_format(dev, &fp);
	if (rc) {
		snprintf(msg, msglen, "%s: format failed: %s", path, strerror(-rc));
		goto out_close;
	}
	rc = ftl_read_superblock(dev, &sb);
	if (!rc)
		rc = pfs_vfs_format(dev, sb.meta_offset, sb.meta_size);
	if (!rc)
		rc = ftl_dev_flush(dev);
	if (rc) {
		snprintf(msg, msglen, "%s: cannot write the metadata region: %s", path,
		         strerror(-rc));
		goto out_close;
	}
	snprintf(msg, msglen,
	         "pstorfs namespace on %s\n"
	         "  capacity        %llu bytes (%.2f GiB)\n"
	         "  volume block    %u bytes\n"
	         "  segments        %u of %llu bytes\n"
	         "  metadata        %llu bytes at %llu\n"
	         "  format version  %u\n",
	         path, (unsigned long long)id.capacity_bytes, id.capacity_bytes / 1073741824.0,
	         sb.user_block_size, sb.segment_count, (unsigned long long)sb.segment_size,
	         (unsigned long long)sb.meta_size, (unsigned long long)sb.meta_offset, sb.version);
out_close:
	ftl_dev_close(dev);
	return rc;
}

static void mkfs_usage(FILE *f)
{
	fprintf(f, "usage: mkfs.pstorfs [--size SIZE] [--block-size 4K] [--segment-size 8M] "
	           "[--force] [-q] DEVICE|IMAGE\n"
	           "       mkfs.pstorfs --version\n"
	           "  -q, --quiet  no progress line (shown only on a terminal)\n");
}

int pfs_mkfs_main(int argc, char **argv)
{
	static const struct option lopts[] = {
	    {"size", required_argument, NULL, 's'},
	    {"block-size", required_argument, NULL, 'b'},
	    {"segment-size", required_argument, NULL, 'S'},
	    {"force", no_argument, NULL, 'f'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	struct pfs_mkfs_params prm = {0};
	char msg[1024];
	uint64_t v;
	bool quiet = false;
	int c;

	while ((c = getopt_long(argc, argv, "s:b:S:fqhV", lopts, NULL)) != -1) {
		switch (c) {
		case 's':
		case 'b':
		case 'S':
			if (pfs_parse_size(optarg, &v) || v == 0) {
				fprintf(stderr, "mkfs.pstorfs: bad size '%s'\n", optarg);
				return 1;
			}
			if (c == 's')
				prm.size = v;
			else if (c == 'S')
				prm.segment_size = v;
			else if (v < 4096 || v > 65536 || (v & (v - 1))) {
				fprintf(stderr,
				        "mkfs.pstorfs: block size must be a power of two from 4K "
				        "to 64K\n");
				return 1;
			} else
				prm.block_size = (uint32_t)v;
			break;
		case 'f':
			prm.force = true;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			mkfs_usage(stdout);
			return 0;
		case 'V':
			printf("mkfs.pstorfs %s\n", PSTOR_VERSION);
			return 0;
		default:
			mkfs_usage(stderr);
			return 1;
		}
	}
	if (optind != argc - 1) {
		mkfs_usage(stderr);
		return 1;
	}
	if (prm.segment_size &&
	    (prm.segment_size < (256u << 10) || prm.segment_size > (128u << 20) ||
	     (prm.segment_size & (prm.segment_size - 1)))) {
		fprintf(stderr, "mkfs.pstorfs: segment size must be a power of two from 256K to "
		                "128M\n");
		return 1;
	}
	mkfs_progress = pfs_progress_tty(stdout, quiet);
	if (pfs_mkfs(argv[optind], &prm, msg, sizeof(msg))) {
		fprintf(stderr, "mkfs.pstorfs: %s\n", msg);
		return 1;
	}
	fputs(msg, stdout);
	return 0;
}
