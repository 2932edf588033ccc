/* flash/dev/ftl_dev_nvme.c - FTL_DEV_NVME backend: an NVMe namespace node (/dev/nvmeXnY) driven
 * through libnvme for Identify, SMART, Flush, Dataset Management and, on zoned namespaces, zone
 * report and zone management; data I/O reuses the block backend's O_DIRECT helpers. The only
 * file that includes <libnvme.h>; the bytes it gets are parsed in ftl_nvme_parse.c.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libnvme.h>

#include "ftl_dev_int.h"

struct ftl_dev_nvme {
	struct ftl_dev_bdev b;
	uint32_t nsid;
	struct ftl_dev_identity ident; /* from Identify at open; it cannot change while open */
	uint32_t zone_wmax;            /* zoned: largest write the kernel sends as one command */
	_Atomic bool append;           /* zoned: writes go as Zone Append (until it is refused) */
};

static struct ftl_dev_nvme *ftl_dev_nvme_of(struct ftl_dev *dev)
{
	return ftl_dev_container_of(dev, struct ftl_dev_nvme, b.dev);
}

/* The one place NVMe results become errno. libnvme returns -1 with errno set when the ioctl
 * failed, or the positive NVMe status when the controller answered with an error. Call it
 * directly on the libnvme call's result, before anything else can clobber errno. */
static int ftl_dev_nvme_errno(int ret)
{
	int e;

	if (ret == 0)
		return 0;
	if (ret < 0)
		return errno > 0 ? -errno : -EIO;
	e = nvme_status_to_errno(ret, false);
	/* libnvme's catch-all for "the controller failed the command" is EREMOTEIO; callers of
	 * ftl_dev expect -EIO for a device error. */
	if (e == 0 || e == EREMOTEIO)
		return -EIO;
	return -e;
}

/* Raw structures go to the pure parsers of ftl_nvme_parse.c; buffers are page-aligned because
 * the kernel maps them for the controller's DMA. */
static void *ftl_dev_nvme_buf(size_t len)
{
	void *p = NULL;

	if (posix_memalign(&p, 4096, len))
		return NULL;
	memset(p, 0, len);
	return p;
}

/* ------------------------------------------------------------------------------------------ */
/* Ops                                                                                          */
/* ------------------------------------------------------------------------------------------ */

static int ftl_dev_nvme_flush(struct ftl_dev *dev)
{
	struct ftl_dev_nvme *n = ftl_dev_nvme_of(dev);

	return ftl_dev_nvme_errno(nvme_flush(n->b.fd, n->nsid));
}

/* Deallocates in commands of up to 256 ranges, each range at most 2^32-1 blocks (NLB is 32-bit). */
static int ftl_dev_nvme_trim(struct ftl_dev *dev, uint64_t off, uint64_t len)
{
	struct ftl_dev_nvme *n = ftl_dev_nvme_of(dev);
	uint64_t slba = off / dev->block_size;
	uint64_t nlb = len / dev->block_size;
	struct nvme_dsm_range *ranges;
	int err = 0;

	if (!n->ident.dealloc)
		return -EOPNOTSUPP;
	ranges = calloc(NVME_DSM_MAX_RANGES, sizeof(*ranges));
	if (!ranges)
		return -ENOMEM;
	while (nlb > 0 && err == 0) {
		struct nvme_dsm_args args = {
		    .args_size = sizeof(args),
		    .fd = n->b.fd,
		    .timeout = NVME_DEFAULT_IOCTL_TIMEOUT,
		    .nsid = n->nsid,
		    .attrs = NVME_DSMGMT_AD,
		    .dsm = ranges,
		};
		uint16_t nr = 0;

		while (nlb > 0 && nr < NVME_DSM_MAX_RANGES) {
			uint32_t cnt = nlb > UINT32_MAX ? UINT32_MAX : (uint32_t)nlb;

			ranges[nr].cattr = 0;
			ranges[nr].nlb = htole32(cnt);
			ranges[nr].slba = htole64(slba);
			nr++;
			slba += cnt;
			nlb -= cnt;
		}
		args.nr_ranges = nr;
		err = ftl_dev_nvme_errno(nvme_dsm(&args));
	}
	free(ranges);
	return err;
}

static int ftl_dev_nvme_identify(struct ftl_dev *dev, struct ftl_dev_identity *id)
{
	struct ftl_dev_nvme *n = ftl_dev_nvme_of(dev);

	*id = n->ident;
	return 0;
}

static int ftl_dev_nvme_smart(struct ftl_dev *dev, struct ftl_dev_smart *smart)
{
	struct ftl_dev_nvme *n = ftl_dev_nvme_of(dev);
	void *log;
	int err;

	log = ftl_dev_nvme_buf(FTL_NVME_SMART_LEN);
	if (!log)
		return -ENOMEM;
	/* Controller-wide log: per-namespace SMART is optional (LPA bit 0) and rarely there. */
	err = ftl_dev_nvme_errno(nvme_get_log_smart(n->b.fd, NVME_NSID_ALL, false, log));
	if (err == 0)
		err = ftl_nvme_parse_smart(log, FTL_NVME_SMART_LEN, smart);
	free(log);
	return err;
}

/* Descriptors asked for per Zone Management Receive: 64 KiB of data, well inside any MDTS. */
#define FTL_DEV_NVME_ZONES_PER_CMD 1023u

static int ftl_dev_nvme_report_zones(struct ftl_dev *dev, uint64_t off, struct ftl_zone *zones,
                                     uint32_t max)
{
	struct ftl_dev_nvme *n = ftl_dev_nvme_of(dev);
	size_t blen = FTL_NVME_ZONE_HDR_LEN + FTL_DEV_NVME_ZONES_PER_CMD * FTL_NVME_ZONE_DESC_LEN;
	uint32_t filled = 0;
	void *buf;
	int err = 0;

	buf = ftl_dev_nvme_buf(blen);
	if (!buf)
		return -ENOMEM;
	while (filled < max && off < dev->size) {
		uint32_t want = max - filled;
		int got;

		if (want > FTL_DEV_NVME_ZONES_PER_CMD)
			want = FTL_DEV_NVME_ZONES_PER_CMD;
		/* Partial report: the header counts the descriptors returned, not all zones. */
		err = ftl_dev_nvme_errno(nvme_zns_report_zones(
		    n->b.fd, n->nsid, off / dev->block_size, NVME_ZNS_ZRAS_REPORT_ALL, false, true,
		    (uint32_t)(FTL_NVME_ZONE_HDR_LEN + want * FTL_NVME_ZONE_DESC_LEN), buf,
		    NVME_DEFAULT_IOCTL_TIMEOUT, NULL));
		if (err < 0)
			break;
		got = ftl_nvme_parse_zone_report(buf, blen, 0, dev->block_size, zones + filled,
		                                 want, NULL);
		if (got <= 0) {
			err = got;
			break;
		}
		/* A controller that answers from elsewhere than asked would loop us forever. */
		if (zones[filled].start != off) {
			err = -EIO;
			break;
		}
		filled += (uint32_t)got;
		off = zones[filled - 1].start + dev->zone_size;
		if ((uint32_t)got < want)
			break;
	}
	free(buf);
	return err < 0 ? err : (int)filled;
}

static int ftl_dev_nvme_zone_action(struct ftl_dev *dev, enum ftl_zone_action action, uint64_t off,
                                    uint64_t len)
{
	static const enum nvme_zns_send_action zsa[] = {
	    [FTL_ZONE_RESET] = NVME_ZNS_ZSA_RESET,
	    [FTL_ZONE_FINISH] = NVME_ZNS_ZSA_FINISH,
	    [FTL_ZONE_OPEN] = NVME_ZNS_ZSA_OPEN,
	    [FTL_ZONE_CLOSE] = NVME_ZNS_ZSA_CLOSE,
	};
	struct ftl_dev_nvme *n = ftl_dev_nvme_of(dev);
	int err = 0;

	/* One command a zone: Select All would act on zones outside the range. */
	for (uint64_t z = off; z < off + len && err == 0; z += dev->zone_size) {
		struct nvme_zns_mgmt_send_args args = {
		    .args_size = sizeof(args),
		    .fd = n->b.fd,
		    .timeout = NVME_DEFAULT_IOCTL_TIMEOUT,
		    .nsid = n->nsid,
		    .slba = z / dev->block_size,
		    .zsa = zsa[action],
		};

		err = ftl_dev_nvme_errno(nvme_zns_mgmt_send(&args));
	}
	return err;
}

/* On a zoned namespace a write larger than one command is split by the kernel, and without
 * the mq-deadline scheduler (Debian's kernel gives NVMe "none") nothing keeps the pieces in
 * order at the write pointer. So the pieces are made here, each small enough to stay one
 * command, and sent one after the other: the next leaves only when the last has completed. */
/* Zone Append of one piece that must land at OFF: the FTL writes each zone from one thread, in
 * order, so the controller's choice is known; a different one means something else wrote the
 * zone, and the write fails rather than leave data where no map points. */
static int ftl_dev_nvme_append(struct ftl_dev_nvme *n, const void *buf, size_t len, uint64_t off)
{
	uint32_t lba = n->b.dev.block_size;
	__u64 placed = UINT64_MAX;
	struct nvme_zns_append_args args = {
	    .zslba = off / n->ident.zone_size * n->ident.zone_size / lba,
	    .result = &placed,
	    .data = (void *)buf,
	    .args_size = sizeof(args),
	    .fd = n->b.fd,
	    .timeout = NVME_DEFAULT_IOCTL_TIMEOUT,
	    .nsid = n->nsid,
	    .data_len = (__u32)len,
	    .nlb = (__u16)(len / lba - 1),
	};
	int err = ftl_dev_nvme_errno(nvme_zns_append(&args));
	if (err)
		return err;
	if (placed != off / lba)
		return -EIO;
	atomic_fetch_add_explicit(&n->b.dev.st.zone_appends, 1, memory_order_relaxed);
	return 0;
}

static int ftl_dev_nvme_write(struct ftl_dev *dev, const void *buf, size_t len, uint64_t off)
{
	struct ftl_dev_nvme *n = ftl_dev_nvme_of(dev);
	const uint8_t *p = buf;
	int err = 0;

	if (!n->zone_wmax)
		return ftl_dev_bdev_write(dev, buf, len, off);
	while (len > 0 && err == 0) {
		size_t k = len < n->zone_wmax ? len : n->zone_wmax;
		if (atomic_load(&n->append)) {
			if (k > n->ident.zone_append_max)
				k = n->ident.zone_append_max;
			err = ftl_dev_nvme_append(n, p, k, off);
			/* A controller or kernel that refuses the command: plain writes at the
			 * write pointer from now on, this piece included. */
			if (err == -EINVAL || err == -EOPNOTSUPP || err == -ENOTTY) {
				atomic_store(&n->append, false);
				err = 0;
				continue;
			}
		} else {
			err = ftl_dev_bdev_write(dev, p, k, off);
		}
		p += k;
		off += k;
		len -= k;
	}
	return err;
}

static void ftl_dev_nvme_close(struct ftl_dev *dev)
{
	struct ftl_dev_nvme *n = ftl_dev_nvme_of(dev);

	close(n->b.fd);
	ftl_dev_fini_common(&n->b.dev);
	free(n);
}

static const struct ftl_dev_ops ftl_dev_nvme_ops = {
    .read = ftl_dev_bdev_read,
    .write = ftl_dev_nvme_write,
    .flush = ftl_dev_nvme_flush,
    .trim = ftl_dev_nvme_trim,
    .identify = ftl_dev_nvme_identify,
    .smart = ftl_dev_nvme_smart,
    .report_zones = ftl_dev_nvme_report_zones,
    .zone_action = ftl_dev_nvme_zone_action,
    .close = ftl_dev_nvme_close,
};

/* True when the kernel drives RDEV as a host-managed zoned device (ZNS namespaces are). */
static bool ftl_dev_nvme_is_zoned(dev_t rdev)
{
	char model[32];

	return ftl_dev_sysfs_read(rdev, "queue/zoned", model, sizeof(model)) == 0 &&
	       strcmp(model, "host-managed") == 0;
}

/* Runs Identify Controller and Namespace (and the ZNS Identify Namespace of a zoned one) into
 * N. -ENODEV when the node does not answer as an NVMe namespace, so that the caller falls back
 * to the block backend. */
static int ftl_dev_nvme_probe(struct ftl_dev_nvme *n, int fd)
{
	struct stat st;
	void *buf;
	int err;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (nvme_get_nsid(fd, &n->nsid) < 0 || n->nsid == 0)
		return -ENODEV;
	buf = ftl_dev_nvme_buf(FTL_NVME_IDENTIFY_LEN);
	if (!buf)
		return -ENOMEM;
	if (ftl_dev_nvme_errno(nvme_identify_ctrl(fd, buf)) < 0 ||
	    ftl_nvme_parse_id_ctrl(buf, FTL_NVME_IDENTIFY_LEN, &n->ident) < 0 ||
	    ftl_dev_nvme_errno(nvme_identify_ns(fd, n->nsid, buf)) < 0 ||
	    ftl_nvme_parse_id_ns(buf, FTL_NVME_IDENTIFY_LEN, n->nsid, &n->ident) < 0) {
		err = -ENODEV;
		goto out_free;
	}
	err = 0;
	if (ftl_dev_nvme_is_zoned(st.st_rdev)) {
		/* A zoned namespace this cannot describe must not be driven as a conventional one:
		 * every write off the write pointer would fail. */
		memset(buf, 0, FTL_NVME_IDENTIFY_LEN);
		err = ftl_dev_nvme_errno(nvme_zns_identify_ns(fd, n->nsid, buf));
		if (err == 0)
			err = ftl_nvme_parse_zns_id_ns(buf, FTL_NVME_IDENTIFY_LEN, &n->ident);
	}

out_free:
	free(buf);
	return err;
}

int ftl_dev_nvme_open(int fd, const char *path, bool rdonly, struct ftl_dev **out)
{
	struct ftl_dev_nvme *n;
	int err;

	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	err = ftl_dev_nvme_probe(n, fd);
	if (err < 0)
		goto err_free;
	err = ftl_dev_bdev_init(&n->b, &ftl_dev_nvme_ops, FTL_DEV_NVME, fd, path, rdonly);
	if (err < 0)
		goto err_free;
	/* The kernel's view of the namespace is what I/O obeys; Identify agrees unless the
	 * namespace was reformatted under a stale node. */
	n->ident.lba_size = n->b.dev.block_size;
	n->ident.capacity_bytes = n->b.dev.size;
	if (n->ident.zoned) {
		if (n->ident.zone_size % n->b.dev.block_size) {
			err = -EINVAL;
			goto err_free;
		}
		n->b.dev.zone_size = n->ident.zone_size;
		n->ident.zone_count = (uint32_t)(n->b.dev.size / n->ident.zone_size);
		/* What the kernel lets one Zone Append carry (MDTS and ZASL together). */
		n->ident.zone_append_max = ftl_dev_bdev_queue_u32(&n->b, "zone_append_max_bytes");
		/* One command: within max_sectors_kb and within max_segments pages (user
		 * buffers are physically scattered: a page a segment at worst). */
		uint64_t w = (uint64_t)ftl_dev_bdev_queue_u32(&n->b, "max_sectors_kb") << 10;
		uint64_t segs = (uint64_t)ftl_dev_bdev_queue_u32(&n->b, "max_segments") *
		                (uint64_t)sysconf(_SC_PAGESIZE);
		if (!w || (segs && segs < w))
			w = segs;
		if (!w)
			w = 128u << 10;
		w = w / n->b.dev.block_size * n->b.dev.block_size;
		n->zone_wmax = (uint32_t)(w ? w : n->b.dev.block_size);
		/* Zone Append where the kernel says the controller has it: a block or more, and
		 * no more than a 16-bit block count carries. */
		uint64_t am = n->ident.zone_append_max / n->b.dev.block_size * n->b.dev.block_size;
		if (am > (uint64_t)n->b.dev.block_size << 16)
			am = (uint64_t)n->b.dev.block_size << 16;
		n->ident.zone_append_max = (uint32_t)am;
		atomic_init(&n->append, am >= n->b.dev.block_size);
	}
	*out = &n->b.dev;
	return 0;

err_free:
	/* ftl_dev_bdev_init may have taken the path copy; FD stays the caller's. */
	ftl_dev_fini_common(&n->b.dev);
	free(n);
	return err;
}
