/* flash/ftl_dev_nvme.c - FTL_DEV_NVME backend: an NVMe namespace node (/dev/nvmeXnY) driven
 * through libnvme for Identify, SMART, Flush and Dataset Management; data I/O reuses the block
 * backend's O_DIRECT helpers. The only file that includes <libnvme.h>; nothing else may.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libnvme.h>

#include "ftl_dev_int.h"

struct ftl_dev_nvme {
	struct ftl_dev_bdev b;
	uint32_t nsid;
	bool dsm;                      /* controller supports Dataset Management */
	struct ftl_dev_identity ident; /* from Identify at open; it cannot change while open */
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

/* ------------------------------------------------------------------------------------------ */
/* Parsing of raw Identify and SMART structures (pure: no I/O, testable on any host)           */
/* ------------------------------------------------------------------------------------------ */

static uint64_t ftl_dev_nvme_le128_sat(const uint8_t v[16])
{
	uint64_t lo = 0;

	/* Counters above 2^64 do not happen in practice; saturate rather than wrap if they do. */
	for (int i = 8; i < 16; i++) {
		if (v[i])
			return UINT64_MAX;
	}
	for (int i = 7; i >= 0; i--)
		lo = (lo << 8) | v[i];
	return lo;
}

static void ftl_dev_nvme_parse_ctrl(const struct nvme_id_ctrl *ctrl, struct ftl_dev_identity *id,
                                    bool *dsm)
{
	ftl_dev_copy_trimmed(id->model, sizeof(id->model), ctrl->mn, sizeof(ctrl->mn));
	ftl_dev_copy_trimmed(id->serial, sizeof(id->serial), ctrl->sn, sizeof(ctrl->sn));
	ftl_dev_copy_trimmed(id->firmware, sizeof(id->firmware), ctrl->fr, sizeof(ctrl->fr));
	*dsm = (le16toh(ctrl->oncs) & NVME_CTRL_ONCS_DSM) != 0;
}

/* -EINVAL when the namespace is unusable here (no capacity, LBA size outside 512..64K). */
static int ftl_dev_nvme_parse_ns(const struct nvme_id_ns *ns, uint32_t nsid,
                                 struct ftl_dev_identity *id)
{
	/* FLBAS bits 3:0 index the format in use, bits 6:5 extend it beyond 16 formats. */
	unsigned idx =
	    (ns->flbas & NVME_NS_FLBAS_LOWER_MASK) | ((ns->flbas & NVME_NS_FLBAS_HIGHER_MASK) >> 1);
	uint64_t nsze = le64toh(ns->nsze);
	unsigned ds;
	uint32_t lba;

	if (idx > (unsigned)ns->nlbaf + ns->nulbaf || idx >= 64)
		return -EINVAL;
	ds = ns->lbaf[idx].ds;
	if (ds < 9 || ds > 16)
		return -EINVAL;
	lba = 1u << ds;
	if (nsze == 0 || nsze > UINT64_MAX / lba)
		return -EINVAL;
	id->nsid = nsid;
	id->lba_size = lba;
	id->capacity_bytes = nsze * lba;
	/* NPWG and NPDG are 0's based block counts, defined only when OPTPERF is set. */
	if (ns->nsfeat & NVME_NS_FEAT_IO_OPT) {
		id->opt_write_size = ((uint32_t)le16toh(ns->npwg) + 1) * lba;
		id->opt_dealloc_size = ((uint32_t)le16toh(ns->npdg) + 1) * lba;
	}
	id->rotational = false;
	return 0;
}

static void ftl_dev_nvme_parse_smart(const struct nvme_smart_log *log, struct ftl_dev_smart *s)
{
	/* Composite temperature in Kelvin; 0 means the controller does not report one. */
	unsigned kelvin = (unsigned)log->temperature[0] | ((unsigned)log->temperature[1] << 8);

	s->critical_warning = log->critical_warning;
	s->temperature_c = kelvin ? (int32_t)kelvin - 273 : 0;
	s->available_spare_pct = log->avail_spare;
	s->percentage_used = log->percent_used;
	s->data_units_written = ftl_dev_nvme_le128_sat(log->data_units_written);
	s->data_units_read = ftl_dev_nvme_le128_sat(log->data_units_read);
	s->media_errors = ftl_dev_nvme_le128_sat(log->media_errors);
	s->unsafe_shutdowns = ftl_dev_nvme_le128_sat(log->unsafe_shutdowns);
	s->power_on_hours = ftl_dev_nvme_le128_sat(log->power_on_hours);
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

	if (!n->dsm)
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
	struct nvme_smart_log *log;
	int err;

	log = calloc(1, sizeof(*log));
	if (!log)
		return -ENOMEM;
	/* Controller-wide log: per-namespace SMART is optional (LPA bit 0) and rarely there. */
	err = ftl_dev_nvme_errno(nvme_get_log_smart(n->b.fd, NVME_NSID_ALL, false, log));
	if (err == 0)
		ftl_dev_nvme_parse_smart(log, smart);
	free(log);
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
    .write = ftl_dev_bdev_write,
    .flush = ftl_dev_nvme_flush,
    .trim = ftl_dev_nvme_trim,
    .identify = ftl_dev_nvme_identify,
    .smart = ftl_dev_nvme_smart,
    .close = ftl_dev_nvme_close,
};

/* Runs Identify Controller and Namespace into N. -ENODEV when the node does not answer as an
 * NVMe namespace, so that the caller falls back to the block backend. */
static int ftl_dev_nvme_probe(struct ftl_dev_nvme *n, int fd)
{
	struct nvme_id_ctrl *ctrl;
	struct nvme_id_ns *ns;
	int err = -ENOMEM;

	if (nvme_get_nsid(fd, &n->nsid) < 0 || n->nsid == 0)
		return -ENODEV;
	ctrl = calloc(1, sizeof(*ctrl));
	if (!ctrl)
		goto out;
	ns = calloc(1, sizeof(*ns));
	if (!ns)
		goto free_ctrl;
	if (ftl_dev_nvme_errno(nvme_identify_ctrl(fd, ctrl)) < 0 ||
	    ftl_dev_nvme_errno(nvme_identify_ns(fd, n->nsid, ns)) < 0) {
		err = -ENODEV;
		goto free_ns;
	}
	ftl_dev_nvme_parse_ctrl(ctrl, &n->ident, &n->dsm);
	err = ftl_dev_nvme_parse_ns(ns, n->nsid, &n->ident);
	if (err < 0)
		err = -ENODEV;

free_ns:
	free(ns);
free_ctrl:
	free(ctrl);
out:
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
	*out = &n->b.dev;
	return 0;

err_free:
	free(n);
	return err;
}
