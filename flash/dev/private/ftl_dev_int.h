/* flash/dev/private/ftl_dev_int.h - private interface between the ftl_dev dispatcher and its
 * backends. Included only by the sources in flash/dev (CMake gives its folder to pstor_flash_dev
 * alone). Backends never check arguments or count stats: the dispatcher (ftl_dev.c) has done both
 * before an op is called.
 *
 * Invariants:
 *  1. Every op receives off/len that are non-zero multiples of dev->block_size inside
 *     [0, dev->size), a non-NULL buffer, and never a write/trim on a read-only device. Reads
 *     alone may come at the finer grain of dev->io_align on a direct backend, or at any byte
 *     on the others (ftl_dev_read_span, ftl_dev_read_small).
 *  2. Ops are called concurrently from many threads; a backend serialises what it must itself.
 *  3. dev->kind, path, size, block_size, rdonly and zone_size never change after the backend's
 *     open.
 */
#ifndef PSTOR_FTL_DEV_INT_H
#define PSTOR_FTL_DEV_INT_H

#include <stdatomic.h>
#include <stddef.h>
#include <sys/types.h>

#include "ftl_dev.h"

#define ftl_dev_container_of(ptr, type, member)                                                    \
	((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* Page-sized blocks for image files: PUNCH_HOLE frees whole pages, the FTL block is >= 4 KiB. */
#define FTL_DEV_FILE_BLOCK 4096u

struct ftl_dev_ops {
	int (*read)(struct ftl_dev *dev, void *buf, size_t len, uint64_t off);
	int (*write)(struct ftl_dev *dev, const void *buf, size_t len, uint64_t off);
	int (*flush)(struct ftl_dev *dev);
	int (*trim)(struct ftl_dev *dev, uint64_t off, uint64_t len);
	int (*reserve)(struct ftl_dev *dev, uint64_t off, uint64_t len); /* NULL: nothing to do */
	/* Fills what it knows; the dispatcher has zeroed ID and set lba_size and capacity. */
	int (*identify)(struct ftl_dev *dev, struct ftl_dev_identity *id);
	int (*smart)(struct ftl_dev *dev, struct ftl_dev_smart *smart); /* NULL: -EOPNOTSUPP */
	/* Zoned devices only (NULL: -EOPNOTSUPP). OFF (and LEN) are zone-aligned and in range;
	 * report_zones gets MAX >= 1 and returns the count filled. */
	int (*report_zones)(struct ftl_dev *dev, uint64_t off, struct ftl_zone *zones,
	                    uint32_t max);
	int (*zone_action)(struct ftl_dev *dev, enum ftl_zone_action action, uint64_t off,
	                   uint64_t len);
	/* Frees the backend and everything it holds, including the ftl_dev and its path. */
	void (*close)(struct ftl_dev *dev);
};

/* Relaxed atomics: the counters are statistics, nothing is ordered by them. */
struct ftl_dev_counters {
	_Atomic uint64_t reads, writes, flushes, trims;
	_Atomic uint64_t bytes_read, bytes_written, bytes_trimmed;
	_Atomic uint64_t read_errors, write_errors;
	_Atomic uint64_t zone_resets, zone_finishes, zone_appends;
};

struct ftl_dev_zoned; /* the random-write log of a zoned device (ftl_dev_zoned.c) */

/* Embedded in every backend's own struct, which ops reach through container_of. */
struct ftl_dev {
	const struct ftl_dev_ops *ops;
	enum ftl_dev_kind kind;
	char *path; /* malloc'ed; "mem" for memory devices */
	uint64_t size;
	uint32_t block_size;
	bool rdonly;
	/* I/O bypasses the host's page cache (block devices, NVMe, image files opened O_DIRECT):
	 * only whole blocks move. False for buffered image files and memory, which move any byte
	 * range (ftl_dev_read_small uses that). */
	bool direct;
	/* Direct backends: the offset and length granularity of a read (a power of two, at most
	 * block_size: 512 for an image file on ext4 with 4 KiB blocks). ftl_dev_read_span and
	 * ftl_dev_read_small read at this granularity instead of whole blocks. */
	uint32_t io_align;
	uint64_t zone_size; /* zoned devices: bytes from one zone start to the next; 0 otherwise */
	struct ftl_dev_counters st;
	/* Zoned devices with a random-write log: I/O below zlog_end goes through it (ftl_dev.c).
	 * Set at open or by format, before any other thread uses the device. */
	struct ftl_dev_zoned *zlog;
	uint64_t zlog_end;
};

/* ftl_dev_zoned.c: the random-write log. Attach looks for one in the first zones (none found:
 * zlog stays NULL, the device reads as unformatted); -ENOMEM/-EIO. */
int ftl_dev_zoned_attach(struct ftl_dev *dev);
void ftl_dev_zoned_detach(struct ftl_dev *dev);
/* After a (simulated) power cut: forget the in-memory map and read the log back. */
int ftl_dev_zoned_reload(struct ftl_dev *dev);
int ftl_dev_zoned_read(struct ftl_dev *dev, void *buf, size_t len, uint64_t off);
int ftl_dev_zoned_write(struct ftl_dev *dev, const void *buf, size_t len, uint64_t off);
int ftl_dev_zoned_trim(struct ftl_dev *dev, uint64_t off, uint64_t len);

/* ftl_crc.c: the table version of ftl_crc32c (tests compare the two). */
uint32_t ftl_crc32c_sw(uint32_t crc, const void *data, size_t len);

/* Fills the common fields; takes a copy of PATH. -ENOMEM. */
int ftl_dev_init_common(struct ftl_dev *dev, const struct ftl_dev_ops *ops, enum ftl_dev_kind kind,
                        const char *path, uint64_t size, uint32_t block_size, bool rdonly);
void ftl_dev_fini_common(struct ftl_dev *dev);

/* Reads a one-line sysfs attribute relative to /sys/dev/block/MAJ:MIN/ of RDEV, trailing
 * whitespace stripped. -ENOENT (or another -errno) when absent; never a partial string. */
int ftl_dev_sysfs_read(dev_t rdev, const char *attr, char *buf, size_t len);
/* The kernel name (e.g. "loop0", "nvme0n1") of block device RDEV, from sysfs. */
int ftl_dev_sysfs_name(dev_t rdev, char *buf, size_t len);
/* Copies SRC into DST (DLEN bytes), dropping trailing spaces and NULs; always terminated. */
void ftl_dev_copy_trimmed(char *dst, size_t dlen, const char *src, size_t slen);

/* Backend openers. On success the backend owns FD (closes it in ->close); on failure the caller
 * still owns it. */
/* BUFFERED: keep the page cache even where O_DIRECT works (FTL_DEV_BUFFERED). */
int ftl_dev_file_open(int fd, const char *path, bool rdonly, bool buffered, struct ftl_dev **out);
int ftl_dev_block_open(int fd, const char *path, bool rdonly, struct ftl_dev **out);
/* -ENODEV when FD is not an NVMe namespace after all (the caller then uses the block backend). */
int ftl_dev_nvme_open(int fd, const char *path, bool rdonly, struct ftl_dev **out);

/* Block-device state shared by the BLOCK and NVME backends, and the FILE backend: I/O goes
 * through O_DIRECT pread/pwrite for all of them (a buffered image file sets mem_align to 1, so
 * nothing is bounced), so the helpers below are written once. */
struct ftl_dev_bdev {
	struct ftl_dev dev;
	int fd;             /* opened O_DIRECT (image files: unless buffered) */
	dev_t rdev;         /* for sysfs lookups */
	uint32_t mem_align; /* buffer alignment O_DIRECT needs */
};

/* Sets up B from FD: logical block size (BLKSSZGET), size (BLKGETSIZE64), alignment. B owns FD
 * only once this succeeds. */
int ftl_dev_bdev_init(struct ftl_dev_bdev *b, const struct ftl_dev_ops *ops, enum ftl_dev_kind kind,
                      int fd, const char *path, bool rdonly);
int ftl_dev_bdev_read(struct ftl_dev *dev, void *buf, size_t len, uint64_t off);
int ftl_dev_bdev_write(struct ftl_dev *dev, const void *buf, size_t len, uint64_t off);
int ftl_dev_bdev_fdatasync(struct ftl_dev *dev);
/* Fills rotational, opt_write_size, opt_dealloc_size from the queue attributes in sysfs. */
void ftl_dev_bdev_identify_queue(struct ftl_dev_bdev *b, struct ftl_dev_identity *id);
/* A decimal attribute of the block queue (queue/NAME, or the parent's for a partition); 0 when
 * missing or not a u32. */
uint32_t ftl_dev_bdev_queue_u32(struct ftl_dev_bdev *b, const char *name);

#endif
