/* flash/ftl_zone.c - the FTL's side of zoned namespaces: stream folding to fit the device's
 * active-zone limit, the zone report at open, zone finish and reset, the erase-count table.
 * Segment placement and the write order itself stay in ftl_segment.c and ftl_stream.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ftl_zone_int.h"

struct ftl_zoned {
	uint32_t max_active, budget, nstreams;
	/* At open, until ftl_zone_after_scan: per segment, the zone's state and how many bytes
	 * of it are written (the write pointer from the zone report). */
	uint8_t *zstate;
	uint32_t *written;
	/* Erase counts as in the table on the device (a reset zone keeps no header). */
	/* Guards wear[] and its write to the table on the device. A leaf (ftl_int.h invariant
	 * 5): no FTL lock is taken after it, only the device layer's. */
	pthread_mutex_t wear_lock;
	uint32_t *wear;
	uint32_t wear_bytes; /* of the table on the device, whole blocks */
	_Atomic uint64_t resets, finishes;
};

/* Stream folds, loosest first: the streams each one keeps apart. GC hot and cold share a zone
 * first (their data is old either way), then user hot and cold, then reserve writes join the
 * user stream (a segment one takes from the reserve may then get user data too). */
static const uint8_t ftl_zone_folds[][FTL_STREAM_COUNT] = {
    {FTL_STREAM_USER_HOT, FTL_STREAM_USER_COLD, FTL_STREAM_GC_HOT, FTL_STREAM_GC_COLD,
     FTL_STREAM_RESERVE},
    {FTL_STREAM_USER_HOT, FTL_STREAM_USER_COLD, FTL_STREAM_GC_HOT, FTL_STREAM_GC_HOT,
     FTL_STREAM_RESERVE},
    {FTL_STREAM_USER_COLD, FTL_STREAM_USER_COLD, FTL_STREAM_GC_HOT, FTL_STREAM_GC_HOT,
     FTL_STREAM_RESERVE},
    {FTL_STREAM_USER_COLD, FTL_STREAM_USER_COLD, FTL_STREAM_GC_HOT, FTL_STREAM_GC_HOT,
     FTL_STREAM_USER_COLD},
};
#define NFOLDS (sizeof(ftl_zone_folds) / sizeof(ftl_zone_folds[0]))

static uint32_t fold_streams(const uint8_t *map)
{
	uint32_t n = 0;
	for (int i = 0; i < FTL_STREAM_COUNT; i++)
		n += map[i] == i;
	return n;
}

uint32_t ftl_zone_budget(uint32_t max_active, uint8_t map[FTL_STREAM_COUNT])
{
	for (size_t f = 0; f < NFOLDS; f++) {
		/* The streams' segments, one checkpoint part being written, the log's zone. */
		uint32_t need = fold_streams(ftl_zone_folds[f]) + 2;
		if (max_active && need > max_active)
			continue;
		if (map)
			memcpy(map, ftl_zone_folds[f], FTL_STREAM_COUNT);
		return need;
	}
	return 0;
}

static uint64_t zone_of(const struct ftl *ftl, uint32_t seg)
{
	return ftl_seg_dev_off(ftl, seg);
}

static int wear_read(struct ftl *ftl, struct ftl_zoned *zn)
{
	uint8_t *buf = aligned_alloc(4096, (zn->wear_bytes + 4095) / 4096 * 4096);
	if (!buf)
		return -ENOMEM;
	int rc = ftl_dev_read(ftl->dev, buf, zn->wear_bytes, ftl->sb.wear_offset);
	if (rc == 0)
		memcpy(zn->wear, buf, (size_t)ftl->nsegs * sizeof(uint32_t));
	free(buf);
	return rc;
}

/* Writes the table block holding SEG's count. Not flushed: a count lost to a power cut costs
 * one erase of bookkeeping, and the next flush (every GC cleaning has one) carries it. */
static int wear_write(struct ftl *ftl, struct ftl_zoned *zn, uint32_t seg)
{
	uint32_t per = ftl->bs / sizeof(uint32_t), b = seg / per;
	uint8_t *blk = aligned_alloc(4096, (ftl->bs + 4095) / 4096 * 4096);
	if (!blk)
		return -ENOMEM;
	memset(blk, 0, ftl->bs);
	pthread_mutex_lock(&zn->wear_lock);
	zn->wear[seg] = atomic_load(&ftl->segs[seg].erase_count);
	uint32_t n = ftl->nsegs - b * per < per ? ftl->nsegs - b * per : per;
	memcpy(blk, zn->wear + (size_t)b * per, (size_t)n * sizeof(uint32_t));
	int rc = ftl_dev_write(ftl->dev, blk, ftl->bs, ftl->sb.wear_offset + (uint64_t)b * ftl->bs);
	pthread_mutex_unlock(&zn->wear_lock);
	free(blk);
	return rc;
}

int ftl_zone_open(struct ftl *ftl)
{
	struct ftl_dev_identity id;
	struct ftl_zoned *zn;
	struct ftl_zone *zr = NULL;
	int rc;

	for (int i = 0; i < FTL_STREAM_COUNT; i++)
		ftl->stream_map[i] = (uint8_t)i;
	ftl_dev_identify(ftl->dev, &id);
	if (!ftl->sb.zoned)
		return id.zoned ? -EINVAL : 0; /* cannot be: nothing random-writes a zoned one */
	if (!id.zoned || id.zone_size != ftl->seg_size || ftl->sb.data_offset % ftl->seg_size) {
		fprintf(stderr, "pstorfs: %s: formatted for zones of %u bytes, the device %s\n",
		        ftl_dev_path(ftl->dev), ftl->seg_size,
		        id.zoned ? "has other zones" : "is not zoned");
		return -EINVAL;
	}
	zn = calloc(1, sizeof(*zn));
	if (!zn)
		return -ENOMEM;
	ftl->zn = zn;
	pthread_mutex_init(&zn->wear_lock, NULL);
	zn->max_active = id.max_active_zones;
	zn->budget = ftl_zone_budget(zn->max_active, ftl->stream_map);
	if (!zn->budget) {
		fprintf(stderr,
		        "pstorfs: %s: the device allows %u active zones, the FTL needs at least %u "
		        "(two write streams, a checkpoint and the metadata log)\n",
		        ftl_dev_path(ftl->dev), zn->max_active,
		        fold_streams(ftl_zone_folds[NFOLDS - 1]) + 2);
		return -EOPNOTSUPP;
	}
	zn->nstreams = zn->budget - 2;
	zn->wear_bytes =
	    (uint32_t)(((uint64_t)ftl->nsegs * sizeof(uint32_t) + ftl->bs - 1) / ftl->bs * ftl->bs);
	zn->wear = calloc(ftl->nsegs, sizeof(*zn->wear));
	zn->zstate = calloc(ftl->nsegs, 1);
	zn->written = calloc(ftl->nsegs, sizeof(*zn->written));
	zr = calloc(ftl->nsegs, sizeof(*zr));
	if (!zn->wear || !zn->zstate || !zn->written || !zr) {
		rc = -ENOMEM;
		goto out;
	}
	rc = wear_read(ftl, zn);
	if (rc)
		goto out;
	rc = ftl_dev_report_zones(ftl->dev, ftl->sb.data_offset, zr, ftl->nsegs);
	if (rc >= 0 && (uint32_t)rc != ftl->nsegs)
		rc = -EIO;
	if (rc < 0)
		goto out;
	for (uint32_t i = 0; i < ftl->nsegs; i++) {
		zn->zstate[i] = zr[i].state;
		uint64_t w = zr[i].write_pointer - zr[i].start;
		zn->written[i] = w > ftl->seg_size ? ftl->seg_size : (uint32_t)w;
	}
	rc = 0;
out:
	free(zr);
	return rc;
}

bool ftl_zone_seg_empty(const struct ftl *ftl, uint32_t seg)
{
	return ftl->zn && ftl->zn->zstate && ftl->zn->zstate[seg] == FTL_ZONE_EMPTY;
}

uint32_t ftl_zone_seg_limit(const struct ftl *ftl, uint32_t seg)
{
	if (!ftl->zn || !ftl->zn->written)
		return ftl->seg_size;
	return ftl->zn->written[seg];
}

static bool zone_partial(uint8_t st)
{
	return st == FTL_ZONE_IMPL_OPEN || st == FTL_ZONE_EXPL_OPEN || st == FTL_ZONE_CLOSED;
}

int ftl_zone_after_scan(struct ftl *ftl)
{
	struct ftl_zoned *zn = ftl->zn;
	int rc = 0;

	if (!zn)
		return 0;
	for (uint32_t i = 0; i < ftl->nsegs && !rc; i++) {
		struct ftl_seg *s = &ftl->segs[i];
		uint8_t state = atomic_load(&s->state);
		if (zn->wear[i] > s->erase_count)
			s->erase_count = zn->wear[i];
		if (ftl->rdonly)
			continue;
		if (state == FTL_SEG_FREE && zn->zstate[i] != FTL_ZONE_EMPTY) {
			/* Free but written (a superseded checkpoint, a segment whose header was
			 * torn or not ours): only an empty zone can be opened. */
			s->erase_count++;
			rc = ftl_zone_seg_reset(ftl, i);
		} else if (state != FTL_SEG_FREE && zone_partial(zn->zstate[i])) {
			/* No stream holds a segment after open: all of them are closed. */
			rc = ftl_dev_zone_action(ftl->dev, FTL_ZONE_FINISH, zone_of(ftl, i),
			                         ftl->seg_size);
			if (rc == 0)
				atomic_fetch_add(&zn->finishes, 1);
		}
	}
	free(zn->zstate);
	free(zn->written);
	zn->zstate = NULL;
	zn->written = NULL;
	return rc;
}

void ftl_zone_free(struct ftl *ftl)
{
	struct ftl_zoned *zn = ftl->zn;
	if (!zn)
		return;
	free(zn->zstate);
	free(zn->written);
	free(zn->wear);
	pthread_mutex_destroy(&zn->wear_lock);
	free(zn);
	ftl->zn = NULL;
}

void ftl_zone_seg_closed(struct ftl *ftl, uint32_t seg)
{
	if (!ftl->zn || ftl->segs[seg].end >= ftl->seg_size)
		return; /* a full zone is no longer active anyway */
	/* A failure leaves the zone active; the next open finishes it. */
	if (ftl_dev_zone_action(ftl->dev, FTL_ZONE_FINISH, zone_of(ftl, seg), ftl->seg_size) == 0)
		atomic_fetch_add(&ftl->zn->finishes, 1);
}

int ftl_zone_seg_reset(struct ftl *ftl, uint32_t seg)
{
	int rc = ftl_dev_zone_action(ftl->dev, FTL_ZONE_RESET, zone_of(ftl, seg), ftl->seg_size);
	if (rc)
		return rc;
	atomic_fetch_add(&ftl->zn->resets, 1);
	return wear_write(ftl, ftl->zn, seg);
}

void ftl_zone_get_stats(struct ftl *ftl, struct ftl_stats *st)
{
	struct ftl_zoned *zn = ftl->zn;
	if (!zn)
		return;
	st->zoned = true;
	st->zone_max_active = zn->max_active;
	st->zone_active_budget = zn->budget;
	st->zone_streams = zn->nstreams;
	st->zone_resets = atomic_load(&zn->resets);
	st->zone_finishes = atomic_load(&zn->finishes);
	(void)ftl_dev_zoned_get_stats(ftl->dev, &st->zdev);
}
