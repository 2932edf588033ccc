/* flash/dev/ftl_dev_block.c - FTL_DEV_BLOCK backend, and the O_DIRECT I/O helpers the NVMe and
 * image-file backends share: block size and size from ioctls, BLKDISCARD, identity from sysfs.
 * Block devices never go through the page cache (O_DIRECT always); no caller's buffer is assumed
 * aligned (unaligned ones are bounced).
 */
#include <errno.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ftl_dev_int.h"

/* Largest bounce buffer for unaligned callers: big enough to keep large I/O efficient, small
 * enough that many threads bouncing at once cost little memory. */
#define FTL_DEV_BOUNCE_MAX (1u << 20)

static struct ftl_dev_bdev *ftl_dev_bdev_of(struct ftl_dev *dev)
{
	return ftl_dev_container_of(dev, struct ftl_dev_bdev, dev);
}

static bool ftl_dev_bdev_aligned(const void *p, uint32_t align)
{
	return ((uintptr_t)p & (align - 1)) == 0;
}

static int ftl_dev_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	char *p = buf;

	while (len > 0) {
		ssize_t n = pread(fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO; /* end of device: the device shrank */
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int ftl_dev_pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int ftl_dev_bounce_alloc(struct ftl_dev_bdev *b, size_t len, void **bounce, size_t *chunk)
{
	*chunk = len < FTL_DEV_BOUNCE_MAX ? len : FTL_DEV_BOUNCE_MAX;
	/* posix_memalign returns the error, it does not set errno. */
	return -posix_memalign(bounce, b->mem_align, *chunk);
}

int ftl_dev_bdev_read(struct ftl_dev *dev, void *buf, size_t len, uint64_t off)
{
	struct ftl_dev_bdev *b = ftl_dev_bdev_of(dev);
	char *p = buf;
	void *bounce;
	size_t chunk;
	int err;

	if (ftl_dev_bdev_aligned(buf, b->mem_align))
		return ftl_dev_pread_full(b->fd, buf, len, off);
	err = ftl_dev_bounce_alloc(b, len, &bounce, &chunk);
	if (err < 0)
		return err;
	while (len > 0) {
		size_t n = len < chunk ? len : chunk;

		err = ftl_dev_pread_full(b->fd, bounce, n, off);
		if (err < 0)
			break;
		memcpy(p, bounce, n);
		p += n;
		len -= n;
		off += n;
	}
	free(bounce);
	return err;
}

int ftl_dev_bdev_write(struct ftl_dev *dev, const void *buf, size_t len, uint64_t off)
{
	struct ftl_dev_bdev *b = ftl_dev_bdev_of(dev);
	const char *p = buf;
	void *bounce;
	size_t chunk;
	int err;

	if (ftl_dev_bdev_aligned(buf, b->mem_align))
		return ftl_dev_pwrite_full(b->fd, buf, len, off);
	err = ftl_dev_bounce_alloc(b, len, &bounce, &chunk);
	if (err < 0)
		return err;
	while (len > 0) {
		size_t n = len < chunk ? len : chunk;

		memcpy(bounce, p, n);
		err = ftl_dev_pwrite_full(b->fd, bounce, n, off);
		if (err < 0)
			break;
		p += n;
		len -= n;
		off += n;
	}
	free(bounce);
	return err;
}

/* On a block device fdatasync() sends a cache flush to the device even with O_DIRECT writes. */
int ftl_dev_bdev_fdatasync(struct ftl_dev *dev)
{
	struct ftl_dev_bdev *b = ftl_dev_bdev_of(dev);

	while (fdatasync(b->fd) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

/* Queue attributes live on the whole disk: a partition finds them one level up. */
static int ftl_dev_bdev_queue_attr(struct ftl_dev_bdev *b, const char *name, char *buf, size_t len)
{
	char attr[64];

	snprintf(attr, sizeof(attr), "queue/%s", name);
	if (ftl_dev_sysfs_read(b->rdev, attr, buf, len) == 0)
		return 0;
	snprintf(attr, sizeof(attr), "../queue/%s", name);
	return ftl_dev_sysfs_read(b->rdev, attr, buf, len);
}

uint32_t ftl_dev_bdev_queue_u32(struct ftl_dev_bdev *b, const char *name)
{
	char val[32];
	unsigned long long v;
	char *end;

	if (ftl_dev_bdev_queue_attr(b, name, val, sizeof(val)) < 0)
		return 0;
	errno = 0;
	v = strtoull(val, &end, 10);
	if (errno || end == val || *end || v > UINT32_MAX)
		return 0;
	return (uint32_t)v;
}

void ftl_dev_bdev_identify_queue(struct ftl_dev_bdev *b, struct ftl_dev_identity *id)
{
	id->rotational = ftl_dev_bdev_queue_u32(b, "rotational") == 1;
	id->opt_write_size = ftl_dev_bdev_queue_u32(b, "optimal_io_size");
	/* Granularity only means something when the device discards at all. */
	if (ftl_dev_bdev_queue_u32(b, "discard_max_bytes") != 0)
		id->opt_dealloc_size = ftl_dev_bdev_queue_u32(b, "discard_granularity");
}

int ftl_dev_bdev_init(struct ftl_dev_bdev *b, const struct ftl_dev_ops *ops, enum ftl_dev_kind kind,
                      int fd, const char *path, bool rdonly)
{
	struct stat st;
	uint64_t size;
	int lbs;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (ioctl(fd, BLKSSZGET, &lbs) < 0)
		return -errno;
	if (ioctl(fd, BLKGETSIZE64, &size) < 0)
		return -errno;
	/* The kernel only reports powers of two from 512 up; anything else is not a disk. */
	if (lbs < 512 || lbs > 65536 || (lbs & (lbs - 1)))
		return -EINVAL;
	b->fd = fd;
	b->rdev = st.st_rdev;
	/* The logical block size always satisfies O_DIRECT's memory alignment. */
	b->mem_align = (uint32_t)lbs;
	int err = ftl_dev_init_common(&b->dev, ops, kind, path, size & ~(uint64_t)(lbs - 1),
	                              (uint32_t)lbs, rdonly);
	b->dev.direct = true;
	return err;
}

/* ------------------------------------------------------------------------------------------ */
/* FTL_DEV_BLOCK                                                                                */
/* ------------------------------------------------------------------------------------------ */

static int ftl_dev_block_trim(struct ftl_dev *dev, uint64_t off, uint64_t len)
{
	struct ftl_dev_bdev *b = ftl_dev_bdev_of(dev);
	uint64_t range[2] = {off, len};

	if (ioctl(b->fd, BLKDISCARD, range) == 0)
		return 0;
	/* Devices without discard say EOPNOTSUPP; old kernels said EINVAL for the same. */
	if (errno == EOPNOTSUPP || errno == ENOTTY || errno == EINVAL)
		return -EOPNOTSUPP;
	return -errno;
}

static int ftl_dev_block_identify(struct ftl_dev *dev, struct ftl_dev_identity *id)
{
	struct ftl_dev_bdev *b = ftl_dev_bdev_of(dev);

	if (ftl_dev_sysfs_read(b->rdev, "device/model", id->model, sizeof(id->model)) < 0 ||
	    !id->model[0])
		snprintf(id->model, sizeof(id->model), "block device");
	if (ftl_dev_sysfs_read(b->rdev, "device/serial", id->serial, sizeof(id->serial)) < 0 ||
	    !id->serial[0]) {
		/* No serial (loop, virtio): the kernel name at least tells devices apart. */
		if (ftl_dev_sysfs_name(b->rdev, id->serial, sizeof(id->serial)) < 0)
			id->serial[0] = '\0';
	}
	if (ftl_dev_sysfs_read(b->rdev, "device/firmware_rev", id->firmware, sizeof(id->firmware)) <
	        0 &&
	    ftl_dev_sysfs_read(b->rdev, "device/rev", id->firmware, sizeof(id->firmware)) < 0)
		id->firmware[0] = '\0';
	ftl_dev_bdev_identify_queue(b, id);
	return 0;
}

static void ftl_dev_block_close(struct ftl_dev *dev)
{
	struct ftl_dev_bdev *b = ftl_dev_bdev_of(dev);

	close(b->fd);
	ftl_dev_fini_common(&b->dev);
	free(b);
}

static const struct ftl_dev_ops ftl_dev_block_ops = {
    .read = ftl_dev_bdev_read,
    .write = ftl_dev_bdev_write,
    .flush = ftl_dev_bdev_fdatasync,
    .trim = ftl_dev_block_trim,
    .identify = ftl_dev_block_identify,
    .smart = NULL,
    .close = ftl_dev_block_close,
};

int ftl_dev_block_open(int fd, const char *path, bool rdonly, struct ftl_dev **out)
{
	struct ftl_dev_bdev *b;
	int err;

	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	err = ftl_dev_bdev_init(b, &ftl_dev_block_ops, FTL_DEV_BLOCK, fd, path, rdonly);
	if (err < 0)
		goto err_free;
	*out = &b->dev;
	return 0;

err_free:
	free(b);
	return err;
}
