/* flash/dev/ftl_dev_file.c - FTL_DEV_FILE backend: a regular image file, through the page cache.
 * pread/pwrite loops, fdatasync for flush, PUNCH_HOLE for TRIM. It must not use O_DIRECT (the
 * image may sit on tmpfs or another filesystem that refuses it) nor change the file's size.
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

struct ftl_dev_file {
	struct ftl_dev dev;
	int fd;
	dev_t st_dev; /* the filesystem holding the image, for the identity */
	ino_t st_ino;
};

static struct ftl_dev_file *ftl_dev_file_of(struct ftl_dev *dev)
{
	return ftl_dev_container_of(dev, struct ftl_dev_file, dev);
}

static int ftl_dev_file_read(struct ftl_dev *dev, void *buf, size_t len, uint64_t off)
{
	struct ftl_dev_file *f = ftl_dev_file_of(dev);
	char *p = buf;

	while (len > 0) {
		ssize_t n = pread(f->fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO; /* the image shrank under us */
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int ftl_dev_file_write(struct ftl_dev *dev, const void *buf, size_t len, uint64_t off)
{
	struct ftl_dev_file *f = ftl_dev_file_of(dev);
	const char *p = buf;

	while (len > 0) {
		ssize_t n = pwrite(f->fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* Keep ENOSPC/EDQUOT: a sparse image on a full host filesystem is the
			 * likeliest failure and the operator needs to see it as such. */
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

static int ftl_dev_file_flush(struct ftl_dev *dev)
{
	struct ftl_dev_file *f = ftl_dev_file_of(dev);

	while (fdatasync(f->fd) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

static int ftl_dev_file_trim(struct ftl_dev *dev, uint64_t off, uint64_t len)
{
	struct ftl_dev_file *f = ftl_dev_file_of(dev);

	while (fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
	                 (off_t)len) < 0) {
		if (errno == EINTR)
			continue;
		if (errno == EOPNOTSUPP || errno == ENOSYS)
			return -EOPNOTSUPP;
		return -errno;
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
	return 0;
}

static void ftl_dev_file_close(struct ftl_dev *dev)
{
	struct ftl_dev_file *f = ftl_dev_file_of(dev);

	close(f->fd); /* also drops the flock */
	ftl_dev_fini_common(&f->dev);
	free(f);
}

static const struct ftl_dev_ops ftl_dev_file_ops = {
    .read = ftl_dev_file_read,
    .write = ftl_dev_file_write,
    .flush = ftl_dev_file_flush,
    .trim = ftl_dev_file_trim,
    .identify = ftl_dev_file_identify,
    .smart = NULL,
    .close = ftl_dev_file_close,
};

int ftl_dev_file_open(int fd, const char *path, bool rdonly, struct ftl_dev **out)
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
	err = ftl_dev_init_common(&f->dev, &ftl_dev_file_ops, FTL_DEV_FILE, path,
	                          (uint64_t)st.st_size & ~(uint64_t)(FTL_DEV_FILE_BLOCK - 1),
	                          FTL_DEV_FILE_BLOCK, rdonly);
	if (err < 0)
		goto err_free;
	f->fd = fd;
	f->st_dev = st.st_dev;
	f->st_ino = st.st_ino;
	*out = &f->dev;
	return 0;

err_free:
	free(f);
	return err;
}
