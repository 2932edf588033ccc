/* flash/dev/ftl_dev_file.c - FTL_DEV_FILE backend: a regular image file, O_DIRECT by default (the
 * appliance owns its device: no second copy in the host's page cache), buffered where the host
 * filesystem refuses O_DIRECT or the caller asks for it. fdatasync for flush, PUNCH_HOLE for TRIM,
 * fallocate for a segment about to be written (ftl_dev_reserve).
 * It must not change the file's size. The O_DIRECT I/O (bounce buffers for unaligned callers) is
 * ftl_dev_block.c's, shared through struct ftl_dev_bdev.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "ftl_dev_int.h"

/* O_DIRECT alignment of buffers (others go through a bounce buffer) and of file offsets, when
 * the filesystem does not report its own (statx STATX_DIOALIGN, Linux 6.1): a page, which every
 * Linux filesystem accepts and the FTL's own buffers already have. */
#define FTL_DEV_FILE_DIO_ALIGN 4096u

struct ftl_dev_file {
	struct ftl_dev_bdev b; /* fd, and mem_align: 1 when buffered (no buffer is ever bounced) */
	dev_t st_dev;          /* the filesystem holding the image, for the identity */
	ino_t st_ino;
	bool forced;     /* buffered because the opener asked (FTL_DEV_BUFFERED) */
	int refused_err; /* buffered because O_DIRECT failed with this errno; 0 otherwise */
};

static struct ftl_dev_file *ftl_dev_file_of(struct ftl_dev *dev)
{
	return ftl_dev_container_of(dev, struct ftl_dev_file, b.dev);
}

static int ftl_dev_file_trim(struct ftl_dev *dev, uint64_t off, uint64_t len)
{
	struct ftl_dev_file *f = ftl_dev_file_of(dev);

	while (fallocate(f->b.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
	                 (off_t)len) < 0) {
		if (errno == EINTR)
			continue;
		if (errno == EOPNOTSUPP || errno == ENOSYS)
			return -EOPNOTSUPP;
		return -errno;
	}
	return 0;
}

/* Allocates without zeroing (unwritten extents read as zeros) and without growing the file. */
static int ftl_dev_file_reserve(struct ftl_dev *dev, uint64_t off, uint64_t len)
{
	struct ftl_dev_file *f = ftl_dev_file_of(dev);

	while (fallocate(f->b.fd, FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) < 0) {
		if (errno == EINTR)
			continue;
		return errno == EOPNOTSUPP || errno == ENOSYS ? 0 : -errno;
	}
	return 0;
}

static int ftl_dev_file_identify(struct ftl_dev *dev, struct ftl_dev_identity *id)
{
	struct ftl_dev_file *f = ftl_dev_file_of(dev);
	char rot[8];

	snprintf(id->model, sizeof(id->model), "pstorfs image file");
	/* Stable for as long as the image is not copied elsewhere, unique on this host. */
	snprintf(id->serial, sizeof(id->serial), "%x.%x.%llx", major(f->st_dev), minor(f->st_dev),
	         (unsigned long long)f->st_ino);
	/* The image is as rotational as the disk below it (absent for tmpfs, overlay...). */
	if (ftl_dev_sysfs_read(f->st_dev, "queue/rotational", rot, sizeof(rot)) == 0 ||
	    ftl_dev_sysfs_read(f->st_dev, "../queue/rotational", rot, sizeof(rot)) == 0)
		id->rotational = strcmp(rot, "1") == 0;
	if (dev->direct) {
		snprintf(id->cache, sizeof(id->cache), "direct");
	} else {
		snprintf(id->cache, sizeof(id->cache), "buffered");
		if (f->forced)
			snprintf(id->cache_reason, sizeof(id->cache_reason), "cache=buffered");
		else
			snprintf(id->cache_reason, sizeof(id->cache_reason),
			         "O_DIRECT refused by the host filesystem: %s",
			         strerror(f->refused_err));
	}
	return 0;
}

static void ftl_dev_file_close(struct ftl_dev *dev)
{
	struct ftl_dev_file *f = ftl_dev_file_of(dev);

	close(f->b.fd); /* also drops the flock */
	ftl_dev_fini_common(&f->b.dev);
	free(f);
}

/* A reported alignment we can use: a power of two no larger than a device block. */
static uint32_t ftl_dev_file_align(uint32_t reported)
{
	if (reported == 0 || reported > FTL_DEV_FILE_BLOCK || (reported & (reported - 1)))
		return FTL_DEV_FILE_DIO_ALIGN;
	return reported;
}

/* The filesystem's O_DIRECT alignments: reads of a chunk then move 512-byte sectors instead of
 * 4 KiB blocks, and buffers aligned to them need no bounce. */
static void ftl_dev_file_dio_align(struct ftl_dev_file *f)
{
	struct statx sx;

	f->b.mem_align = FTL_DEV_FILE_DIO_ALIGN;
	f->b.dev.io_align = FTL_DEV_FILE_DIO_ALIGN;
	if (statx(f->b.fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) < 0 ||
	    !(sx.stx_mask & STATX_DIOALIGN))
		return;
	f->b.mem_align = ftl_dev_file_align(sx.stx_dio_mem_align);
	f->b.dev.io_align = ftl_dev_file_align(sx.stx_dio_offset_align);
}

static const struct ftl_dev_ops ftl_dev_file_ops = {
    .read = ftl_dev_bdev_read,
    .write = ftl_dev_bdev_write,
    .flush = ftl_dev_bdev_fdatasync, /* with O_DIRECT too: the file's extents and the disk cache */
    .trim = ftl_dev_file_trim,
    .reserve = ftl_dev_file_reserve,
    .identify = ftl_dev_file_identify,
    .smart = NULL,
    .close = ftl_dev_file_close,
};

/* Switches FD to O_DIRECT and proves it with one read of the first block: some filesystems
 * take the flag and fail the I/O instead. Returns 0 or the -errno that says why not; FD is
 * back to buffered then. */
static int ftl_dev_file_go_direct(int fd, uint64_t size)
{
	int fl = fcntl(fd, F_GETFL);
	void *blk = NULL;
	int err = 0;

	if (fl < 0)
		return -errno;
	if (fcntl(fd, F_SETFL, fl | O_DIRECT) < 0)
		return -errno;
	if (size < FTL_DEV_FILE_BLOCK)
		return 0; /* nothing to read; the dispatcher refuses such a device anyway */
	err = -posix_memalign(&blk, FTL_DEV_FILE_DIO_ALIGN, FTL_DEV_FILE_BLOCK);
	if (err < 0)
		goto err_buffered;
	while (pread(fd, blk, FTL_DEV_FILE_BLOCK, 0) < 0) {
		if (errno != EINTR) {
			err = -errno;
			break;
		}
	}
	free(blk);
	if (err == 0)
		return 0;
err_buffered:
	/* Restoring the flags we had cannot fail where setting them worked. */
	(void)fcntl(fd, F_SETFL, fl);
	return err;
}

int ftl_dev_file_open(int fd, const char *path, bool rdonly, bool buffered, struct ftl_dev **out)
{
	struct ftl_dev_file *f;
	struct stat st;
	int err;

	if (fstat(fd, &st) < 0)
		return -errno;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	/* A tail shorter than a block is not part of the device. */
	uint64_t size = (uint64_t)st.st_size & ~(uint64_t)(FTL_DEV_FILE_BLOCK - 1);
	err = ftl_dev_init_common(&f->b.dev, &ftl_dev_file_ops, FTL_DEV_FILE, path, size,
	                          FTL_DEV_FILE_BLOCK, rdonly);
	if (err < 0)
		goto err_free;
	f->b.fd = fd;
	f->b.rdev = st.st_dev;
	f->st_dev = st.st_dev;
	f->st_ino = st.st_ino;
	f->forced = buffered;
	f->b.mem_align = 1;
	if (!buffered) {
		err = ftl_dev_file_go_direct(fd, size);
		if (err == -ENOMEM)
			goto err_fini;
		if (err == 0) {
			f->b.dev.direct = true;
			ftl_dev_file_dio_align(f);
		} else {
			f->refused_err = -err; /* tmpfs before Linux 6.6, some FUSE and 9p mounts */
		}
	}
	*out = &f->b.dev;
	return 0;

err_fini:
	ftl_dev_fini_common(&f->b.dev);
err_free:
	free(f);
	return err;
}
