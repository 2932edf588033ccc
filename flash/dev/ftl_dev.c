/* flash/dev/ftl_dev.c - namespace device front end: picks the backend for a path, checks every
 * argument once, keeps the counters, and dispatches to the backend's ops table.
 * It must not do I/O itself nor know any backend's internals beyond ftl_dev_int.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "ftl_dev_int.h"

static const char *const ftl_dev_kind_names[] = {
    [FTL_DEV_FILE] = "file",
    [FTL_DEV_BLOCK] = "block",
    [FTL_DEV_NVME] = "nvme",
    [FTL_DEV_MEM] = "mem",
};

const char *ftl_dev_kind_name(enum ftl_dev_kind kind)
{
	if ((unsigned)kind >= sizeof(ftl_dev_kind_names) / sizeof(ftl_dev_kind_names[0]))
		return "unknown";
	return ftl_dev_kind_names[kind];
}

int ftl_dev_init_common(struct ftl_dev *dev, const struct ftl_dev_ops *ops, enum ftl_dev_kind kind,
                        const char *path, uint64_t size, uint32_t block_size, bool rdonly)
{
	dev->path = strdup(path);
	if (!dev->path)
		return -ENOMEM;
	dev->ops = ops;
	dev->kind = kind;
	dev->size = size;
	dev->block_size = block_size;
	dev->rdonly = rdonly;
	dev->direct = false; /* O_DIRECT backends set it, and io_align, once they are */
	dev->io_align = block_size;
	atomic_init(&dev->st.reads, 0);
	atomic_init(&dev->st.writes, 0);
	atomic_init(&dev->st.flushes, 0);
	atomic_init(&dev->st.trims, 0);
	atomic_init(&dev->st.bytes_read, 0);
	atomic_init(&dev->st.bytes_written, 0);
	atomic_init(&dev->st.bytes_trimmed, 0);
	atomic_init(&dev->st.read_errors, 0);
	atomic_init(&dev->st.write_errors, 0);
	atomic_init(&dev->st.zone_resets, 0);
	atomic_init(&dev->st.zone_finishes, 0);
	atomic_init(&dev->st.zone_appends, 0);
	dev->zlog = NULL;
	dev->zlog_end = 0;
	return 0;
}

void ftl_dev_fini_common(struct ftl_dev *dev)
{
	free(dev->path);
	dev->path = NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* sysfs helpers shared by the backends                                                         */
/* ------------------------------------------------------------------------------------------ */

void ftl_dev_copy_trimmed(char *dst, size_t dlen, const char *src, size_t slen)
{
	size_t n = slen < dlen - 1 ? slen : dlen - 1;

	/* NVMe and SCSI pad identity strings with spaces; some devices pad with NULs. */
	while (n > 0 && (src[n - 1] == ' ' || src[n - 1] == '\0'))
		n--;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

int ftl_dev_sysfs_read(dev_t rdev, const char *attr, char *buf, size_t len)
{
	char path[PATH_MAX];
	char tmp[256];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/%s", major(rdev), minor(rdev), attr);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	do {
		n = read(fd, tmp, sizeof(tmp) - 1);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	close(fd);
	while (n > 0 && (tmp[n - 1] == '\n' || tmp[n - 1] == ' ' || tmp[n - 1] == '\t'))
		n--;
	ftl_dev_copy_trimmed(buf, len, tmp, (size_t)n);
	return 0;
}

int ftl_dev_sysfs_name(dev_t rdev, char *buf, size_t len)
{
	char path[64];
	char link[PATH_MAX];
	const char *base;
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u", major(rdev), minor(rdev));
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return -errno;
	link[n] = '\0';
	base = strrchr(link, '/');
	base = base ? base + 1 : link;
	if (strlen(base) >= len)
		return -ENAMETOOLONG;
	strcpy(buf, base);
	return 0;
}

/* True when RDEV is a whole NVMe namespace (nvmeXnY, which carries an "nsid" attribute), not
 * a partition of one (nvmeXnYpZ) nor any other block device. Identify confirms it later. */
static bool ftl_dev_sysfs_is_nvme_ns(dev_t rdev)
{
	char name[64];
	char nsid[32];
	unsigned ctrl, ns;
	int end = 0;

	if (ftl_dev_sysfs_name(rdev, name, sizeof(name)) < 0)
		return false;
	if (sscanf(name, "nvme%un%u%n", &ctrl, &ns, &end) != 2 || name[end] != '\0')
		return false;
	return ftl_dev_sysfs_read(rdev, "nsid", nsid, sizeof(nsid)) == 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Open                                                                                         */
/* ------------------------------------------------------------------------------------------ */

/* One daemon per device: a writer holds LOCK_EX, read-only openers share LOCK_SH, so nothing
 * ever opens a device that a mounted pstorfs is writing. flock() belongs to the open file
 * description, so a second open in the same process is refused too. */
static int ftl_dev_lock(int fd, bool rdonly)
{
	if (flock(fd, (rdonly ? LOCK_SH : LOCK_EX) | LOCK_NB) == 0)
		return 0;
	return errno == EWOULDBLOCK ? -EBUSY : -errno;
}

static int ftl_dev_open_regular(const char *path, bool rdonly, bool buffered, struct ftl_dev **out)
{
	struct stat st;
	int fd, err;

	fd = open(path, (rdonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return errno == EISDIR ? -EINVAL : -errno;
	/* The path may have been replaced since the caller's stat(). */
	if (fstat(fd, &st) < 0) {
		err = -errno;
		goto err_close_fd;
	}
	if (!S_ISREG(st.st_mode)) {
		err = -EINVAL;
		goto err_close_fd;
	}
	err = ftl_dev_lock(fd, rdonly);
	if (err < 0)
		goto err_close_fd;
	err = ftl_dev_file_open(fd, path, rdonly, buffered, out);
	if (err < 0)
		goto err_close_fd;
	return 0;

err_close_fd:
	close(fd);
	return err;
}

static int ftl_dev_create_regular(const char *path, uint64_t size, bool buffered,
                                  struct ftl_dev **out)
{
	int fd, err;

	if (size == 0 || size % FTL_DEV_FILE_BLOCK != 0 || size > (uint64_t)INT64_MAX)
		return -EINVAL;
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0644);
	if (fd < 0) {
		/* Someone else created it since our stat(): open what is there. */
		if (errno == EEXIST)
			return ftl_dev_open_regular(path, false, buffered, out);
		return -errno;
	}
	/* Lost a race with another opener of the file we just made: it is theirs now. */
	err = ftl_dev_lock(fd, false);
	if (err < 0)
		goto err_close_fd;
	/* ftruncate leaves the file sparse: no block is allocated until written. */
	if (ftruncate(fd, (off_t)size) < 0) {
		err = -errno;
		goto err_unlink;
	}
	err = ftl_dev_file_open(fd, path, false, buffered, out);
	if (err < 0)
		goto err_unlink;
	return 0;

err_unlink:
	unlink(path);
err_close_fd:
	close(fd);
	return err;
}

static int ftl_dev_open_blockdev(const char *path, bool rdonly, struct ftl_dev **out)
{
	struct stat st;
	int fd, err;

	/* O_EXCL on a block device makes the kernel refuse it while mounted or claimed, and
	 * refuses mount and other exclusive openers while we hold it. */
	fd = open(path, (rdonly ? O_RDONLY : O_RDWR | O_EXCL) | O_DIRECT | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		err = -errno;
		goto err_close_fd;
	}
	if (!S_ISBLK(st.st_mode)) {
		err = -EINVAL;
		goto err_close_fd;
	}
	err = ftl_dev_lock(fd, rdonly);
	if (err < 0)
		goto err_close_fd;
	if (ftl_dev_sysfs_is_nvme_ns(st.st_rdev)) {
		err = ftl_dev_nvme_open(fd, path, rdonly, out);
		if (err == 0)
			return 0;
		/* Identify did not confirm it: still a block device, drive it as one. */
		if (err != -ENODEV)
			goto err_close_fd;
	}
	err = ftl_dev_block_open(fd, path, rdonly, out);
	if (err < 0)
		goto err_close_fd;
	return 0;

err_close_fd:
	close(fd);
	return err;
}

static int ftl_dev_open_backend(const char *path, unsigned flags, uint64_t size,
                                struct ftl_dev **out)
{
	bool rdonly = flags & FTL_DEV_RDONLY, buffered = flags & FTL_DEV_BUFFERED;
	struct stat st;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!path || !*path ||
	    (flags & ~(unsigned)(FTL_DEV_RDONLY | FTL_DEV_CREATE | FTL_DEV_BUFFERED)))
		return -EINVAL;
	if (stat(path, &st) < 0) {
		if (errno != ENOENT || !(flags & FTL_DEV_CREATE))
			return -errno;
		if (rdonly)
			return -EINVAL; /* an empty read-only device is of no use */
		return ftl_dev_create_regular(path, size, buffered, out);
	}
	if (S_ISREG(st.st_mode))
		return ftl_dev_open_regular(path, rdonly, buffered, out);
	if (S_ISBLK(st.st_mode))
		return ftl_dev_open_blockdev(path, rdonly, out);
	return -EINVAL;
}

int ftl_dev_open(const char *path, unsigned flags, uint64_t size, struct ftl_dev **out)
{
	int err = ftl_dev_open_backend(path, flags, size, out);

	/* A zoned namespace formatted by us keeps its superblocks and metadata region in a
	 * random-write log in its first zones: find it before anyone reads offset 0. */
	if (err == 0 && (*out)->zone_size) {
		err = ftl_dev_zoned_attach(*out);
		if (err < 0) {
			ftl_dev_close(*out);
			*out = NULL;
		}
	}
	return err;
}

void ftl_dev_close(struct ftl_dev *dev)
{
	if (!dev)
		return;
	ftl_dev_zoned_detach(dev);
	dev->ops->close(dev);
}

/* ------------------------------------------------------------------------------------------ */
/* Accessors and dispatch                                                                       */
/* ------------------------------------------------------------------------------------------ */

enum ftl_dev_kind ftl_dev_kind(const struct ftl_dev *dev)
{
	return dev->kind;
}

uint64_t ftl_dev_size(const struct ftl_dev *dev)
{
	return dev->size;
}

uint32_t ftl_dev_block_size(const struct ftl_dev *dev)
{
	return dev->block_size;
}

const char *ftl_dev_path(const struct ftl_dev *dev)
{
	return dev->path;
}

bool ftl_dev_is_rdonly(const struct ftl_dev *dev)
{
	return dev->rdonly;
}

/* Zero-length requests are refused: the FTL always moves whole blocks, so one is a bug. */
static int ftl_dev_check_range(const struct ftl_dev *dev, uint64_t off, uint64_t len)
{
	uint64_t mask = (uint64_t)dev->block_size - 1;

	if (len == 0 || (off & mask) || (len & mask))
		return -EINVAL;
	if (off > dev->size || len > dev->size - off)
		return -EINVAL;
	return 0;
}

static void ftl_dev_count(_Atomic uint64_t *ctr, uint64_t v)
{
	atomic_fetch_add_explicit(ctr, v, memory_order_relaxed);
}

/* The backend read and its counters; the range was checked by the caller. */
static int ftl_dev_read_counted(struct ftl_dev *dev, void *buf, size_t len, uint64_t off)
{
	int err = dev->ops->read(dev, buf, len, off);

	if (err < 0) {
		ftl_dev_count(&dev->st.read_errors, 1);
		return err;
	}
	ftl_dev_count(&dev->st.reads, 1);
	ftl_dev_count(&dev->st.bytes_read, len);
	return 0;
}

/* 1: the range is the random-write log's, 0: the device's, -EINVAL: it straddles both. */
static int ftl_dev_in_zlog(const struct ftl_dev *dev, uint64_t off, uint64_t len)
{
	if (!dev->zlog || off >= dev->zlog_end)
		return 0;
	return len <= dev->zlog_end - off ? 1 : -EINVAL;
}

int ftl_dev_read(struct ftl_dev *dev, void *buf, size_t len, uint64_t off)
{
	int err;

	if (!dev || !buf)
		return -EINVAL;
	err = ftl_dev_check_range(dev, off, len);
	if (err < 0)
		return err;
	err = ftl_dev_in_zlog(dev, off, len);
	if (err)
		return err < 0 ? err : ftl_dev_zoned_read(dev, buf, len, off);
	return ftl_dev_read_counted(dev, buf, len, off);
}

/* The granularity a read of [OFF, OFF+LEN) must be widened to: whole blocks in the zoned log,
 * the O_DIRECT alignment on direct backends, a byte elsewhere. */
static uint32_t ftl_dev_read_grain(const struct ftl_dev *dev, uint64_t off)
{
	if (dev->zlog && off < dev->zlog_end)
		return dev->block_size;
	return dev->direct ? dev->io_align : 1;
}

int ftl_dev_read_span(struct ftl_dev *dev, void *buf, size_t cap, size_t len, uint64_t off)
{
	if (!dev || !buf || len == 0 || off > dev->size || len > dev->size - off)
		return -EINVAL;
	uint32_t g = ftl_dev_read_grain(dev, off);
	uint64_t start = off / g * g, end = (off + len + g - 1) / g * g;
	if (end - start > cap)
		return -EINVAL;
	/* Both ends stay inside the device: its size is a multiple of its blocks, and of g. */
	int err = g == dev->block_size ? ftl_dev_read(dev, buf, end - start, start)
	                               : ftl_dev_read_counted(dev, buf, end - start, start);
	return err < 0 ? err : (int)(off - start);
}

int ftl_dev_read_small(struct ftl_dev *dev, void *buf, size_t len, uint64_t off)
{
	int err;

	if (!dev || !buf || len == 0 || off > dev->size || len > dev->size - off)
		return -EINVAL;
	uint32_t g = ftl_dev_read_grain(dev, off);
	if (g == 1) /* byte-addressable through the page cache or memory: only what is asked */
		return ftl_dev_read_counted(dev, buf, len, off);
	/* O_DIRECT moves aligned ranges: read the one around the bytes through a bounce. */
	size_t cap = (size_t)((off + len + g - 1) / g * g - off / g * g);
	void *b = NULL;
	/* posix_memalign: aligned_alloc wants a size that is a multiple of the alignment. */
	if (posix_memalign(&b, 4096, cap))
		return -ENOMEM;
	err = ftl_dev_read_span(dev, b, cap, len, off);
	if (err >= 0) {
		memcpy(buf, (uint8_t *)b + err, len);
		err = 0;
	}
	free(b);
	return err;
}

/* What every op that changes [OFF, OFF+LEN) checks first: -errno, 1 when the range lies in a
 * zoned device's random-write log (which handles it), 0 when the backend does. */
static int check_change(struct ftl_dev *dev, uint64_t off, uint64_t len)
{
	int err = ftl_dev_check_range(dev, off, len);

	if (err < 0)
		return err;
	if (dev->rdonly)
		return -EROFS;
	return ftl_dev_in_zlog(dev, off, len);
}

int ftl_dev_write(struct ftl_dev *dev, const void *buf, size_t len, uint64_t off)
{
	int err;

	if (!dev || !buf)
		return -EINVAL;
	err = check_change(dev, off, len);
	if (err) /* the log counts the blocks it really writes */
		return err < 0 ? err : ftl_dev_zoned_write(dev, buf, len, off);
	err = dev->ops->write(dev, buf, len, off);
	if (err < 0) {
		ftl_dev_count(&dev->st.write_errors, 1);
		return err;
	}
	ftl_dev_count(&dev->st.writes, 1);
	ftl_dev_count(&dev->st.bytes_written, len);
	return 0;
}

int ftl_dev_flush(struct ftl_dev *dev)
{
	int err;

	if (!dev)
		return -EINVAL;
	err = dev->ops->flush(dev);
	if (err < 0) {
		/* A failed flush means acknowledged writes may be lost: a write error. */
		ftl_dev_count(&dev->st.write_errors, 1);
		return err;
	}
	ftl_dev_count(&dev->st.flushes, 1);
	return 0;
}

int ftl_dev_trim(struct ftl_dev *dev, uint64_t off, uint64_t len)
{
	int err;

	if (!dev)
		return -EINVAL;
	err = check_change(dev, off, len);
	if (err)
		return err < 0 ? err : ftl_dev_zoned_trim(dev, off, len);
	err = dev->ops->trim(dev, off, len);
	if (err < 0)
		return err; /* -EOPNOTSUPP is harmless and not a device error */
	ftl_dev_count(&dev->st.trims, 1);
	ftl_dev_count(&dev->st.bytes_trimmed, len);
	return 0;
}

int ftl_dev_reserve(struct ftl_dev *dev, uint64_t off, uint64_t len)
{
	int err;

	if (!dev)
		return -EINVAL;
	err = check_change(dev, off, len);
	if (err)
		return err < 0 ? err : 0; /* a zoned device's log allocates nothing ahead */
	return dev->ops->reserve ? dev->ops->reserve(dev, off, len) : 0;
}

int ftl_dev_identify(struct ftl_dev *dev, struct ftl_dev_identity *id)
{
	if (!dev || !id)
		return -EINVAL;
	memset(id, 0, sizeof(*id));
	id->lba_size = dev->block_size;
	id->capacity_bytes = dev->size;
	snprintf(id->cache, sizeof(id->cache), "%s",
	         dev->kind == FTL_DEV_MEM ? "memory"
	         : dev->direct            ? "direct"
	                                  : "buffered");
	/* Whatever the backend could not learn stays at these defaults: never fails. */
	(void)dev->ops->identify(dev, id);
	if (!id->model[0])
		snprintf(id->model, sizeof(id->model), "%s device", ftl_dev_kind_name(dev->kind));
	return 0;
}

int ftl_dev_smart(struct ftl_dev *dev, struct ftl_dev_smart *smart)
{
	if (!dev || !smart)
		return -EINVAL;
	if (!dev->ops->smart)
		return -EOPNOTSUPP;
	memset(smart, 0, sizeof(*smart));
	return dev->ops->smart(dev, smart);
}

int ftl_dev_report_zones(struct ftl_dev *dev, uint64_t off, struct ftl_zone *zones, uint32_t max)
{
	if (!dev || (!zones && max))
		return -EINVAL;
	if (!dev->ops->report_zones || !dev->zone_size)
		return -EOPNOTSUPP;
	if (off >= dev->size || max == 0)
		return 0;
	return dev->ops->report_zones(dev, off / dev->zone_size * dev->zone_size, zones, max);
}

int ftl_dev_zone_action(struct ftl_dev *dev, enum ftl_zone_action action, uint64_t off,
                        uint64_t len)
{
	if (!dev)
		return -EINVAL;
	if (!dev->ops->zone_action || !dev->zone_size)
		return -EOPNOTSUPP;
	if ((unsigned)action > FTL_ZONE_CLOSE || len == 0 || off % dev->zone_size ||
	    len % dev->zone_size || off > dev->size || len > dev->size - off)
		return -EINVAL;
	if (dev->rdonly)
		return -EROFS;
	int err = dev->ops->zone_action(dev, action, off, len);
	if (err == 0 && action == FTL_ZONE_RESET)
		ftl_dev_count(&dev->st.zone_resets, len / dev->zone_size);
	if (err == 0 && action == FTL_ZONE_FINISH)
		ftl_dev_count(&dev->st.zone_finishes, len / dev->zone_size);
	return err;
}

void ftl_dev_get_stats(const struct ftl_dev *dev, struct ftl_dev_stats *st)
{
	const struct ftl_dev_counters *c = &dev->st;

	st->reads = atomic_load_explicit(&c->reads, memory_order_relaxed);
	st->writes = atomic_load_explicit(&c->writes, memory_order_relaxed);
	st->flushes = atomic_load_explicit(&c->flushes, memory_order_relaxed);
	st->trims = atomic_load_explicit(&c->trims, memory_order_relaxed);
	st->bytes_read = atomic_load_explicit(&c->bytes_read, memory_order_relaxed);
	st->bytes_written = atomic_load_explicit(&c->bytes_written, memory_order_relaxed);
	st->bytes_trimmed = atomic_load_explicit(&c->bytes_trimmed, memory_order_relaxed);
	st->read_errors = atomic_load_explicit(&c->read_errors, memory_order_relaxed);
	st->write_errors = atomic_load_explicit(&c->write_errors, memory_order_relaxed);
}
