/* flash/ftl_super.c - formatting a namespace and reading/validating its superblocks.
 *
 * Superblocks are untrusted input: every field is range-checked before anything else uses it.
 * Nothing here touches segments beyond writing their initial FREE headers at format time.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/random.h>

#include "ftl_zone_int.h"

#define FTL_DEFAULT_SEGMENT (8ull << 20)
#define FTL_MIN_SEGMENT     (256ull << 10)
#define FTL_MAX_SEGMENT     (128ull << 20)

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

static void sb_to_info(const struct ftl_sb_disk *d, struct ftl_superblock_info *sb)
{
	memset(sb, 0, sizeof(*sb));
	memcpy(sb->uuid, d->uuid, sizeof(sb->uuid));
	sb->version = d->version;
	sb->block_size = d->block_size;
	sb->user_block_size = d->user_block_size;
	sb->segment_size = d->segment_size;
	sb->segment_count = d->segment_count;
	sb->rated_pe_cycles = d->rated_pe_cycles;
	sb->meta_offset = d->meta_offset;
	sb->meta_size = d->meta_size;
	sb->data_offset = d->data_offset;
	sb->device_size = d->device_size;
	sb->zoned = d->incompat_features & FTL_INCOMPAT_ZONED;
	sb->wear_offset = sb->zoned ? d->wear_offset : 0;
}

/* Returns 0 if the copy is a valid superblock for a device of DEV_SIZE bytes, -EINVAL if it is
 * not ours at all, -EUCLEAN if it is ours but damaged, -EPROTONOSUPPORT if it is newer, -EFBIG
 * if it is sound but describes a namespace larger than the device. */
static int sb_validate(const struct ftl_sb_disk *d, uint64_t dev_size, uint32_t dev_bs)
{
	struct ftl_sb_disk tmp;
	if (d->magic != FTL_SB_MAGIC)
		return -EINVAL;
	memcpy(&tmp, d, sizeof(tmp));
	tmp.crc = 0;
	if (ftl_crc32c(0, &tmp, sizeof(tmp)) != d->crc)
		return -EUCLEAN;
	if (d->version > FTL_FORMAT_VERSION || (d->incompat_features & ~FTL_INCOMPAT_ZONED))
		return -EPROTONOSUPPORT;
	if (d->version == 0)
		return -EUCLEAN;
	if (!is_pow2(d->block_size) || d->block_size < 4096 || d->block_size > 65536 ||
	    d->block_size < dev_bs)
		return -EUCLEAN;
	if (!is_pow2(d->user_block_size) || d->user_block_size < 4096 || d->user_block_size > 65536)
		return -EUCLEAN;
	if (d->segment_size < FTL_MIN_SEGMENT || d->segment_size > FTL_MAX_SEGMENT ||
	    d->segment_size % d->block_size || d->segment_count == 0 ||
	    d->segment_count > FTL_SEG_MAX)
		return -EUCLEAN;
	/* Written as differences: a sum of two checksummed but absurd fields could wrap. */
	if (d->meta_offset % d->block_size || d->data_offset % d->block_size ||
	    d->meta_offset < FTL_SB_OFFSET_B + FTL_SB_SIZE || d->meta_offset > d->data_offset ||
	    d->meta_size > d->data_offset - d->meta_offset)
		return -EUCLEAN;
	if (d->data_offset > d->device_size ||
	    (uint64_t)d->segment_count * d->segment_size > d->device_size - d->data_offset)
		return -EUCLEAN;
	/* Zoned: segments are zones (aligned), the erase-count table fits before the metadata. */
	if ((d->incompat_features & FTL_INCOMPAT_ZONED) &&
	    (d->data_offset % d->segment_size || d->wear_offset % d->block_size ||
	     d->wear_offset < FTL_SB_OFFSET_B + FTL_SB_SIZE || d->wear_offset > d->meta_offset ||
	     (uint64_t)d->segment_count * sizeof(uint32_t) > d->meta_offset - d->wear_offset))
		return -EUCLEAN;
	/* A device that shrank under us (truncated image): the segments no longer fit. Refused
	 * here, before anything is opened for writing, so the lost tail is not made worse. */
	if (d->device_size > dev_size)
		return -EFBIG;
	return 0;
}

int ftl_read_superblock(struct ftl_dev *dev, struct ftl_superblock_info *sb)
{
	uint32_t dbs = ftl_dev_block_size(dev);
	uint32_t rlen = dbs > FTL_SB_SIZE ? dbs : FTL_SB_SIZE;
	const uint64_t offs[2] = {FTL_SB_OFFSET_A, FTL_SB_OFFSET_B};
	/* Most specific reason first: newer format > truncated > damaged > not ours. */
	static const int order[] = {-EPROTONOSUPPORT, -EFBIG, -EUCLEAN, -EIO};
	int rcs[2], rc = -EINVAL;
	uint8_t *buf = aligned_alloc(4096, rlen < 4096 ? 4096 : rlen);
	if (!buf)
		return -ENOMEM;
	for (int i = 0; i < 2; i++) {
		/* A device cut short may still hold copy A: read what is there, so a truncated
		 * namespace is reported as such and not as "not formatted". */
		if (offs[i] + rlen > ftl_dev_size(dev)) {
			rcs[i] = -EINVAL;
			continue;
		}
		rcs[i] = ftl_dev_read(dev, buf, rlen, offs[i]);
		if (rcs[i] == 0)
			rcs[i] = sb_validate((struct ftl_sb_disk *)buf, ftl_dev_size(dev), dbs);
		if (rcs[i] == 0) {
			sb_to_info((struct ftl_sb_disk *)buf, sb);
			rc = 0;
			goto out_free;
		}
		/* Sound but larger than the device: the caller may say by how much. */
		if (rcs[i] == -EFBIG)
			sb_to_info((struct ftl_sb_disk *)buf, sb);
	}
	for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
		if (rcs[0] == order[k] || rcs[1] == order[k]) {
			rc = order[k];
			break;
		}
	}
out_free:
	free(buf);
	return rc;
}

int ftl_format(struct ftl_dev *dev, const struct ftl_format_params *p)
{
	struct ftl_format_params def = {0};
	struct ftl_sb_disk *d = NULL;
	uint64_t dev_size = ftl_dev_size(dev);
	uint32_t dbs = ftl_dev_block_size(dev);
	int rc;

	if (!p)
		p = &def;
	struct ftl_dev_identity id;
	ftl_dev_identify(dev, &id);
	uint32_t bs = p->block_size ? p->block_size : (dbs > 4096 ? dbs : 4096);
	uint64_t seg_size = p->segment_size ? p->segment_size : FTL_DEFAULT_SEGMENT;
	if (id.zoned) {
		/* A segment is a zone: the erase unit is the device's, not ours to choose. */
		if (p->segment_size && p->segment_size != id.zone_size) {
			fprintf(stderr,
			        "pstorfs: %s is zoned: the segment size is its zone size (%llu)\n",
			        ftl_dev_path(dev), (unsigned long long)id.zone_size);
			return -EINVAL;
		}
		seg_size = id.zone_size;
		if (seg_size < FTL_MIN_SEGMENT || seg_size > FTL_MAX_SEGMENT || seg_size % bs) {
			fprintf(
			    stderr,
			    "pstorfs: %s: zones of %llu bytes are not supported (%llu to %llu)\n",
			    ftl_dev_path(dev), (unsigned long long)seg_size,
			    (unsigned long long)FTL_MIN_SEGMENT,
			    (unsigned long long)FTL_MAX_SEGMENT);
			return -EOPNOTSUPP;
		}
		if (!ftl_zone_budget(id.max_active_zones, NULL)) {
			fprintf(stderr, "pstorfs: %s: %u active zones are too few (at least 4)\n",
			        ftl_dev_path(dev), id.max_active_zones);
			return -EOPNOTSUPP;
		}
	}
	uint32_t ubs = p->user_block_size ? p->user_block_size : 4096;
	if (!is_pow2(bs) || bs < 4096 || bs > 65536 || bs < dbs)
		return -EINVAL;
	if (!is_pow2(ubs) || ubs < 4096 || ubs > 65536)
		return -EINVAL;
	if (seg_size < FTL_MIN_SEGMENT || seg_size > FTL_MAX_SEGMENT || seg_size % bs)
		return -EINVAL;

	uint64_t meta_offset = FTL_SB_OFFSET_B + 64 * 1024; /* 128 KiB */
	meta_offset = (meta_offset + bs - 1) / bs * bs;
	/* Zoned: the erase-count table (u32 a zone) after superblock B, before the metadata. */
	uint64_t wear_offset = (FTL_SB_OFFSET_B + FTL_SB_SIZE + bs - 1) / bs * bs;
	if (id.zoned) {
		uint64_t wend = wear_offset + dev_size / seg_size * sizeof(uint32_t);
		wend = (wend + bs - 1) / bs * bs;
		if (wend > meta_offset)
			meta_offset = wend;
	}
	uint64_t meta_size = p->meta_blocks ? (uint64_t)p->meta_blocks * bs : dev_size / 256;
	if (meta_size < (1u << 20))
		meta_size = 1u << 20;
	meta_size = (meta_size + bs - 1) / bs * bs;
	/* Segments start on a segment-size boundary: erase units line up with the device's. */
	uint64_t data_offset = (meta_offset + meta_size + seg_size - 1) / seg_size * seg_size;
	if (id.zoned) {
		/* The random-write log sized for the superblocks, table and metadata: the zones
		 * after it are the segments. Nothing is reset before the checks below pass. */
		data_offset =
		    (uint64_t)ftl_dev_zoned_log_zones(meta_offset + meta_size, seg_size) * seg_size;
	}
	if (dev_size < data_offset + 4 * seg_size)
		return -ENOSPC; /* fewer than 4 segments leaves nothing after the GC reserve */
	uint64_t nsegs = (dev_size - data_offset) / seg_size;
	if (nsegs > FTL_SEG_MAX)
		return -EFBIG;
	if (id.zoned) {
		uint64_t at = 0;
		rc = ftl_dev_zoned_format(dev, meta_offset + meta_size, &at);
		if (rc == -EOPNOTSUPP)
			fprintf(stderr,
			        "pstorfs: %s: zones whose capacity is below their size are not "
			        "supported (a segment is a whole zone)\n",
			        ftl_dev_path(dev));
		if (rc)
			return rc;
		if (at != data_offset)
			return -EIO; /* the two sizings disagree: a bug, refuse */
	}

	d = aligned_alloc(4096, 4096);
	if (!d) {
		rc = -ENOMEM;
		goto out_free;
	}
	memset(d, 0, 4096);
	d->magic = FTL_SB_MAGIC;
	d->version = FTL_FORMAT_VERSION;
	if (getrandom(d->uuid, sizeof(d->uuid), 0) != (ssize_t)sizeof(d->uuid)) {
		rc = -EIO;
		goto out_free;
	}
	d->block_size = bs;
	d->user_block_size = ubs;
	d->segment_size = seg_size;
	d->segment_count = (uint32_t)nsegs;
	d->rated_pe_cycles = p->rated_pe_cycles ? p->rated_pe_cycles : 3000;
	d->meta_offset = meta_offset;
	d->meta_size = meta_size;
	d->data_offset = data_offset;
	d->device_size = data_offset + nsegs * seg_size;
	d->format_time = (uint64_t)time(NULL);
	if (id.zoned) {
		d->incompat_features = FTL_INCOMPAT_ZONED;
		d->wear_offset = wear_offset;
	}
	d->crc = ftl_crc32c(0, d, FTL_SB_SIZE);

	/* Old segment headers would otherwise be mistaken for ours only if the uuid matched, which
	 * it cannot; TRIM everything anyway so the device knows it is empty (a zoned one was
	 * reset above). */
	if (!id.zoned)
		(void)ftl_dev_trim(dev, meta_offset, dev_size / dbs * dbs - meta_offset);
	uint32_t wlen = dbs > 4096 ? dbs : 4096;
	uint8_t *blk = aligned_alloc(4096, wlen);
	if (!blk) {
		rc = -ENOMEM;
		goto out_free;
	}
	memset(blk, 0, wlen);
	memcpy(blk, d, FTL_SB_SIZE);
	rc = ftl_dev_write(dev, blk, wlen, FTL_SB_OFFSET_A);
	if (!rc)
		rc = ftl_dev_flush(dev);
	if (!rc)
		rc = ftl_dev_write(dev, blk, wlen, FTL_SB_OFFSET_B);
	if (!rc)
		rc = ftl_dev_flush(dev);
	free(blk);
out_free:
	free(d);
	return rc;
}
