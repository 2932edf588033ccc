/* flash/dev/ftl_dev_zoned.c - the random-write log of a zoned namespace: byte range
 * [0, data_offset) (superblocks, erase-count table, the fs's metadata region) kept as a log of
 * 4 KiB blocks in the first zones, so the layers above may write it anywhere. Knows nothing of
 * segments.
 *
 * Invariants (z = struct ftl_dev_zoned, one mutex `lock` guards all of it):
 *  1. Records are appended at the write pointer of the log zone `log` only, one device write
 *     each (header block + data blocks), so a zone holds a gap-free chain of records.
 *  2. map[lbn] is the newest sound version of each logical block: highest seq; on a tie (a
 *     compaction copy and its original, both sound) the copy. Reading the log back rebuilds
 *     exactly this, so what a flush covered survives a power cut; a record whose header or data
 *     fails its crc is ignored whole (a torn write), and a zone whose chain breaks before its
 *     write pointer takes no more appends (`sealed`).
 *  3. Outside a compaction at least one zone of the log is empty (the spare): when the log zone
 *     fills and only the spare is left, the zone with the fewest live blocks is copied into the
 *     spare, the copies flushed, then the zone reset and becomes the spare. The logical size is
 *     at most 2/5 of the non-spare zones, so a victim is at most 2/5 live and a compaction
 *     always leaves room. At most one zone of the log is active (open or closed): a log zone
 *     is finished before the next one is written.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ftl_dev_format.h"
#include "ftl_dev_int.h"

#define BLK       FTL_ZLOG_BLOCK
#define MAXE      ((uint32_t)FTL_ZLOG_MAX_ENTRIES)
#define ZONE_NONE UINT32_MAX
/* Zones looked at for a log at attach: it always starts at zone 0, but zone 0 may have just been
 * reset by a compaction, so the first record may be in any of the log's zones. */
#define ZLOG_PROBE_ZONES 64u
/* Entry flag of compaction copies (not in the format header: private to this file). */
#define ZLOG_COPY 0x2u

/* map[] words: present | zero | zone << 32 | block in zone. */
#define MAP_PRESENT (1ull << 63)
#define MAP_ZERO    (1ull << 62)

static inline uint64_t map_make(uint32_t zone, uint32_t blk, bool zero)
{
	return MAP_PRESENT | (zero ? MAP_ZERO : 0) | ((uint64_t)zone << 32) | blk;
}
static inline uint32_t map_zone(uint64_t m)
{
	return (uint32_t)((m >> 32) & 0x3fffffff);
}
static inline uint32_t map_blk(uint64_t m)
{
	return (uint32_t)m;
}

struct ftl_dev_zoned {
	pthread_mutex_t lock; /* guards all of it (invariants above); taken before the backend's */
	uint32_t nzones;      /* zones of the log, from zone 0 */
	uint32_t zblocks;     /* 4 KiB blocks per zone */
	uint64_t zone_size;
	uint64_t limit; /* logical bytes, a multiple of BLK */
	uint64_t nlbn;
	uint64_t *map; /* per logical block (invariant 2) */
	uint64_t *seq;
	uint32_t *refs; /* per zone: map entries pointing into it (data and zero entries) */
	uint32_t *wp;   /* per zone: blocks written */
	bool *sealed;
	uint32_t log;
	uint64_t next_seq;
	uint8_t *rec;  /* header block + MAXE data blocks */
	uint8_t *rbuf; /* MAXE blocks, for reads */
	uint64_t blocks_written, records, compactions, copied, torn;
};

static uint64_t zone_off(const struct ftl_dev_zoned *z, uint32_t zone, uint32_t blk)
{
	return (uint64_t)zone * z->zone_size + (uint64_t)blk * BLK;
}

static uint32_t entry_crc(uint64_t lbn, uint64_t seq, const void *data)
{
	uint32_t c = ftl_crc32c(0, &lbn, sizeof(lbn));
	c = ftl_crc32c(c, &seq, sizeof(seq));
	return data ? ftl_crc32c(c, data, BLK) : c;
}

/* Physical I/O straight to the backend, counted as the dispatcher would. */
static int raw_read(struct ftl_dev *dev, void *buf, size_t len, uint64_t off)
{
	int err = dev->ops->read(dev, buf, len, off);
	if (err < 0) {
		atomic_fetch_add_explicit(&dev->st.read_errors, 1, memory_order_relaxed);
		return err;
	}
	atomic_fetch_add_explicit(&dev->st.reads, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&dev->st.bytes_read, len, memory_order_relaxed);
	return 0;
}

static int raw_write(struct ftl_dev *dev, const void *buf, size_t len, uint64_t off)
{
	int err = dev->ops->write(dev, buf, len, off);
	if (err < 0) {
		atomic_fetch_add_explicit(&dev->st.write_errors, 1, memory_order_relaxed);
		return err;
	}
	atomic_fetch_add_explicit(&dev->st.writes, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&dev->st.bytes_written, len, memory_order_relaxed);
	return 0;
}

static void zlog_free(struct ftl_dev_zoned *z)
{
	if (!z)
		return;
	free(z->map);
	free(z->seq);
	free(z->refs);
	free(z->wp);
	free(z->sealed);
	free(z->rec);
	free(z->rbuf);
	pthread_mutex_destroy(&z->lock);
	free(z);
}

static struct ftl_dev_zoned *zlog_new(uint32_t nzones, uint64_t zone_size, uint64_t limit)
{
	struct ftl_dev_zoned *z = calloc(1, sizeof(*z));
	if (!z)
		return NULL;
	pthread_mutex_init(&z->lock, NULL);
	z->nzones = nzones;
	z->zone_size = zone_size;
	z->zblocks = (uint32_t)(zone_size / BLK);
	z->limit = limit;
	z->nlbn = limit / BLK;
	z->log = ZONE_NONE;
	z->next_seq = 1;
	z->map = calloc(z->nlbn ? z->nlbn : 1, sizeof(*z->map));
	z->seq = calloc(z->nlbn ? z->nlbn : 1, sizeof(*z->seq));
	z->refs = calloc(nzones, sizeof(*z->refs));
	z->wp = calloc(nzones, sizeof(*z->wp));
	z->sealed = calloc(nzones, sizeof(*z->sealed));
	z->rec = aligned_alloc(4096, (size_t)(MAXE + 1) * BLK);
	z->rbuf = aligned_alloc(4096, (size_t)MAXE * BLK);
	if (!z->map || !z->seq || !z->refs || !z->wp || !z->sealed || !z->rec || !z->rbuf) {
		zlog_free(z);
		return NULL;
	}
	return z;
}

/* Zones of the log needed for LIMIT logical bytes: the live blocks may fill 2/5 of the zones
 * other than the spare (invariant 3). */
uint32_t ftl_dev_zoned_log_zones(uint64_t rand_bytes, uint64_t zone_size)
{
	uint64_t limit = (rand_bytes + BLK - 1) / BLK * BLK;
	uint64_t n = 1 + (limit * 5 + 2 * zone_size - 1) / (2 * zone_size);
	return n < 2 ? 2 : n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

static bool rec_header_ok(const struct ftl_dev_zoned *z, struct ftl_zlog_rec_disk *h)
{
	if (h->magic != FTL_ZLOG_MAGIC || h->nentries == 0 || h->nentries > MAXE ||
	    h->ndata > h->nentries || h->nzones != z->nzones || h->zone_size != z->zone_size ||
	    h->limit != z->limit)
		return false;
	uint32_t crc = h->crc;
	h->crc = 0;
	bool ok =
	    ftl_crc32c(0, h, sizeof(*h) + h->nentries * sizeof(struct ftl_zlog_entry_disk)) == crc;
	h->crc = crc;
	return ok;
}

static void map_set(struct ftl_dev_zoned *z, uint64_t lbn, uint64_t v, uint64_t seq)
{
	if (z->map[lbn] & MAP_PRESENT)
		z->refs[map_zone(z->map[lbn])]--;
	z->map[lbn] = v;
	z->seq[lbn] = seq;
	z->refs[map_zone(v)]++;
}

/* Writes the record built in z->rec (header fields filled but magic/crc) at the log zone's
 * write pointer and points the map at it. */
static int zlog_commit(struct ftl_dev *dev, struct ftl_dev_zoned *z, uint32_t zone,
                       uint32_t nentries, uint32_t ndata)
{
	struct ftl_zlog_rec_disk *h = (struct ftl_zlog_rec_disk *)z->rec;
	struct ftl_zlog_entry_disk *e = (struct ftl_zlog_entry_disk *)(h + 1);
	uint32_t at = z->wp[zone];
	size_t used = sizeof(*h) + nentries * sizeof(*e);
	int err;

	h->magic = FTL_ZLOG_MAGIC;
	h->nentries = nentries;
	h->ndata = ndata;
	h->nzones = z->nzones;
	h->pad = 0;
	h->limit = z->limit;
	h->zone_size = z->zone_size;
	memset(h->reserved, 0, sizeof(h->reserved));
	memset(z->rec + used, 0, BLK - used);
	h->crc = 0;
	h->crc = ftl_crc32c(0, h, used);
	err = raw_write(dev, z->rec, (size_t)(1 + ndata) * BLK, zone_off(z, zone, at));
	if (err < 0) {
		/* Where the write pointer is now is unknown: no more appends to this zone. */
		z->sealed[zone] = true;
		if (z->log == zone)
			z->log = ZONE_NONE;
		(void)ftl_dev_zone_action(dev, FTL_ZONE_FINISH, zone_off(z, zone, 0), z->zone_size);
		return err;
	}
	z->wp[zone] = at + 1 + ndata;
	uint32_t d = 0;
	for (uint32_t i = 0; i < nentries; i++) {
		bool zero = e[i].flags & FTL_ZLOG_ZERO;
		map_set(z, e[i].lbn, map_make(zone, zero ? 0 : at + 1 + d, zero), e[i].seq);
		d += !zero;
	}
	z->blocks_written += 1 + ndata;
	z->records++;
	return 0;
}

static int zlog_reset_zone(struct ftl_dev *dev, struct ftl_dev_zoned *z, uint32_t zone)
{
	int err = ftl_dev_zone_action(dev, FTL_ZONE_RESET, zone_off(z, zone, 0), z->zone_size);
	if (err < 0)
		return err;
	z->wp[zone] = 0;
	z->sealed[zone] = false;
	return 0;
}

/* Moves the live blocks (and current zero entries) of the non-empty zone with the fewest of
 * them, other than TARGET, to TARGET; flushes; resets that zone (invariant 3). */
static int zlog_compact(struct ftl_dev *dev, struct ftl_dev_zoned *z, uint32_t target)
{
	struct ftl_zlog_rec_disk *h = (struct ftl_zlog_rec_disk *)z->rec;
	struct ftl_zlog_entry_disk *e = (struct ftl_zlog_entry_disk *)(h + 1);
	uint32_t victim = ZONE_NONE;
	uint64_t *lbns = NULL;
	uint32_t n = 0;
	int err = 0;

	for (uint32_t i = 0; i < z->nzones; i++)
		if (i != target && z->wp[i] > 0 &&
		    (victim == ZONE_NONE || z->refs[i] < z->refs[victim]))
			victim = i;
	if (victim == ZONE_NONE)
		return 0;
	if (z->refs[victim]) {
		lbns = malloc(z->refs[victim] * sizeof(*lbns));
		if (!lbns)
			return -ENOMEM;
		for (uint64_t l = 0; l < z->nlbn; l++)
			if ((z->map[l] & MAP_PRESENT) && map_zone(z->map[l]) == victim)
				lbns[n++] = l;
	}
	/* Room: the copies and one header per MAXE of them. */
	uint64_t need = n + (n + MAXE - 1) / MAXE;
	if (need > (uint64_t)(z->zblocks - z->wp[target])) {
		err = -ENOSPC;
		goto out;
	}
	for (uint32_t i = 0; i < n;) {
		uint32_t k = 0, nd = 0;
		while (i + k < n && k < MAXE) {
			uint64_t l = lbns[i + k], m = z->map[l];
			bool zero = m & MAP_ZERO;
			e[k] = (struct ftl_zlog_entry_disk){.lbn = l,
			                                    .seq = z->seq[l],
			                                    .flags = ZLOG_COPY |
			                                             (zero ? FTL_ZLOG_ZERO : 0)};
			if (!zero) {
				uint8_t *d = z->rec + (size_t)(1 + nd) * BLK;
				err = raw_read(dev, d, BLK, zone_off(z, victim, map_blk(m)));
				if (err < 0)
					goto out;
				e[k].crc = entry_crc(l, z->seq[l], d);
				nd++;
			}
			k++;
		}
		err = zlog_commit(dev, z, target, k, nd);
		if (err < 0)
			goto out;
		z->copied += nd;
		i += k;
	}
	/* The copies are durable before the originals go (invariant 2). */
	err = dev->ops->flush(dev);
	if (err < 0)
		goto out;
	err = zlog_reset_zone(dev, z, victim);
	if (err < 0)
		goto out;
	z->compactions++;
out:
	free(lbns);
	return err;
}

static uint32_t zlog_nempty(const struct ftl_dev_zoned *z, uint32_t *first)
{
	uint32_t n = 0;
	*first = ZONE_NONE;
	for (uint32_t i = 0; i < z->nzones; i++) {
		if (z->wp[i] == 0 && !z->sealed[i]) {
			if (*first == ZONE_NONE)
				*first = i;
			n++;
		}
	}
	return n;
}

/* A log zone with room for a header and one data block, keeping a spare (invariant 3). */
static int zlog_ensure(struct ftl_dev *dev, struct ftl_dev_zoned *z)
{
	uint32_t empty;
	int err;

	if (z->log != ZONE_NONE && z->zblocks - z->wp[z->log] >= 2)
		return 0;
	if (z->log != ZONE_NONE) {
		/* Finished before the next zone is written: one active zone at most. */
		if (z->wp[z->log] < z->zblocks) {
			err = ftl_dev_zone_action(dev, FTL_ZONE_FINISH, zone_off(z, z->log, 0),
			                          z->zone_size);
			if (err < 0)
				return err;
		}
		z->wp[z->log] = z->zblocks;
		z->log = ZONE_NONE;
	}
	uint32_t n = zlog_nempty(z, &empty);
	if (n == 0)
		return -ENOSPC; /* cannot happen while invariant 3 holds */
	z->log = empty;
	if (n == 1) {
		err = zlog_compact(dev, z, empty);
		if (err < 0)
			return err;
		if (z->zblocks - z->wp[z->log] < 2)
			return -ENOSPC;
	}
	return 0;
}

/* Reads logical block LBN into DST. */
static int zlog_read_block(struct ftl_dev *dev, struct ftl_dev_zoned *z, uint64_t lbn, void *dst)
{
	uint64_t m = z->map[lbn];
	if (!(m & MAP_PRESENT) || (m & MAP_ZERO)) {
		memset(dst, 0, BLK);
		return 0;
	}
	return raw_read(dev, dst, BLK, zone_off(z, map_zone(m), map_blk(m)));
}

int ftl_dev_zoned_read(struct ftl_dev *dev, void *buf, size_t len, uint64_t off)
{
	struct ftl_dev_zoned *z = dev->zlog;
	uint8_t *out = buf;
	int err = 0;

	pthread_mutex_lock(&z->lock);
	uint64_t end = off + len;
	uint64_t lbn = off / BLK;
	while (off < end) {
		uint64_t bstart = lbn * BLK;
		size_t skip = (size_t)(off - bstart);
		size_t n = BLK - skip < end - off ? BLK - skip : (size_t)(end - off);
		if (lbn >= z->nlbn) { /* past what may be written: never written */
			memset(out, 0, n);
		} else {
			/* Runs of blocks that lie one after the other in a zone: one read. */
			uint64_t m = z->map[lbn];
			uint32_t run = 1;
			if ((m & MAP_PRESENT) && !(m & MAP_ZERO)) {
				while (run < MAXE && lbn + run < z->nlbn &&
				       bstart + (uint64_t)run * BLK < end &&
				       z->map[lbn + run] == m + run)
					run++;
				err = raw_read(dev, z->rbuf, (size_t)run * BLK,
				               zone_off(z, map_zone(m), map_blk(m)));
			} else {
				memset(z->rbuf, 0, BLK);
			}
			if (err < 0)
				break;
			uint64_t rend = bstart + (uint64_t)run * BLK;
			n = (size_t)((rend < end ? rend : end) - off);
			memcpy(out, z->rbuf + skip, n);
			lbn += run - 1;
		}
		out += n;
		off += n;
		lbn++;
	}
	pthread_mutex_unlock(&z->lock);
	return err;
}

int ftl_dev_zoned_write(struct ftl_dev *dev, const void *buf, size_t len, uint64_t off)
{
	struct ftl_dev_zoned *z = dev->zlog;
	struct ftl_zlog_rec_disk *h = (struct ftl_zlog_rec_disk *)z->rec;
	struct ftl_zlog_entry_disk *e = (struct ftl_zlog_entry_disk *)(h + 1);
	const uint8_t *in = buf;
	uint64_t end = off + len;
	int err = 0;

	if (end > z->limit)
		return -ENOSPC; /* beyond what the log was sized for at format */
	pthread_mutex_lock(&z->lock);
	uint64_t lbn = off / BLK, last = (end + BLK - 1) / BLK;
	while (lbn < last) {
		err = zlog_ensure(dev, z);
		if (err < 0)
			break;
		uint32_t room = z->zblocks - z->wp[z->log] - 1;
		uint32_t k = 0;
		while (lbn + k < last && k < MAXE && k < room) {
			uint64_t l = lbn + k, bstart = l * BLK;
			uint8_t *d = z->rec + (size_t)(1 + k) * BLK;
			uint64_t lo = off > bstart ? off : bstart;
			uint64_t hi = end < bstart + BLK ? end : bstart + BLK;
			if (hi - lo < BLK) { /* part of a block: the rest is what it holds now */
				err = zlog_read_block(dev, z, l, d);
				if (err < 0)
					goto out_unlock;
			}
			memcpy(d + (lo - bstart), in + (lo - off), (size_t)(hi - lo));
			e[k] = (struct ftl_zlog_entry_disk){.lbn = l, .seq = z->next_seq++};
			e[k].crc = entry_crc(l, e[k].seq, d);
			k++;
		}
		err = zlog_commit(dev, z, z->log, k, k);
		if (err < 0)
			break;
		lbn += k;
	}
out_unlock:
	pthread_mutex_unlock(&z->lock);
	return err;
}

/* Whole blocks in the range read zeros from now on (zero entries, no data); parts of blocks are
 * left as they are, as TRIM may. */
int ftl_dev_zoned_trim(struct ftl_dev *dev, uint64_t off, uint64_t len)
{
	struct ftl_dev_zoned *z = dev->zlog;
	struct ftl_zlog_rec_disk *h = (struct ftl_zlog_rec_disk *)z->rec;
	struct ftl_zlog_entry_disk *e = (struct ftl_zlog_entry_disk *)(h + 1);
	uint64_t lbn = (off + BLK - 1) / BLK, last = (off + len) / BLK;
	int err = 0;

	if (last > z->nlbn)
		last = z->nlbn;
	pthread_mutex_lock(&z->lock);
	while (lbn < last) {
		uint32_t k = 0;
		err = zlog_ensure(dev, z);
		if (err < 0)
			break;
		for (; lbn < last && k < MAXE; lbn++) {
			uint64_t m = z->map[lbn];
			if (!(m & MAP_PRESENT) || (m & MAP_ZERO))
				continue; /* reads zeros already */
			e[k++] = (struct ftl_zlog_entry_disk){
			    .lbn = lbn, .seq = z->next_seq++, .crc = 0, .flags = FTL_ZLOG_ZERO};
		}
		if (k == 0)
			break;
		err = zlog_commit(dev, z, z->log, k, 0);
		if (err < 0)
			break;
	}
	pthread_mutex_unlock(&z->lock);
	return err;
}

/* ---- reading the log back ------------------------------------------------------------------ */

/* Walks one zone's record chain up to its write pointer WPB (blocks) into the map. */
static int zlog_scan_zone(struct ftl_dev *dev, struct ftl_dev_zoned *z, uint32_t zone, uint32_t wpb)
{
	struct ftl_zlog_rec_disk *h = (struct ftl_zlog_rec_disk *)z->rec;
	struct ftl_zlog_entry_disk *e = (struct ftl_zlog_entry_disk *)(h + 1);
	uint32_t pos = 0;
	int err;

	while (pos < wpb) {
		err = raw_read(dev, z->rec, BLK, zone_off(z, zone, pos));
		if (err < 0)
			return err;
		if (!rec_header_ok(z, h) || pos + 1 + h->ndata > wpb) {
			/* A torn record whose length is not known, or that the write pointer cuts:
			 * the chain breaks here (invariant 2). */
			if (h->magic || h->nentries) /* not the unwritten end of a finished zone */
				z->torn++;
			z->sealed[zone] = true;
			break;
		}
		uint32_t nd = h->ndata, ne = h->nentries, seen = 0;
		bool sound = true;
		if (nd) {
			err = raw_read(dev, z->rec + BLK, (size_t)nd * BLK,
			               zone_off(z, zone, pos + 1));
			if (err < 0)
				return err;
		}
		for (uint32_t i = 0; i < ne && sound; i++) {
			bool zero = e[i].flags & FTL_ZLOG_ZERO;
			if (e[i].lbn >= z->nlbn || (!zero && seen >= nd)) {
				sound = false;
				break;
			}
			const uint8_t *d = zero ? NULL : z->rec + (size_t)(1 + seen++) * BLK;
			sound = zero ? e[i].crc == 0 : entry_crc(e[i].lbn, e[i].seq, d) == e[i].crc;
		}
		if (!sound || seen != nd) {
			z->torn++; /* ignored whole; its length is known, the chain goes on */
			pos += 1 + nd;
			continue;
		}
		seen = 0;
		for (uint32_t i = 0; i < ne; i++) {
			bool zero = e[i].flags & FTL_ZLOG_ZERO;
			uint64_t l = e[i].lbn, s = e[i].seq;
			uint32_t blk = zero ? 0 : pos + 1 + seen++;
			bool copy = e[i].flags & ZLOG_COPY;
			if (s >= z->next_seq)
				z->next_seq = s + 1;
			if (s > z->seq[l] || !(z->map[l] & MAP_PRESENT) || (s == z->seq[l] && copy))
				map_set(z, l, map_make(zone, blk, zero), s);
		}
		pos += 1 + nd;
	}
	return 0;
}

/* Rebuilds Z from the device, then tidies the log if the device is writable: partly written
 * zones other than the one appends go on in are finished, zones nothing points into are reset,
 * and a spare is made if a compaction was cut short (invariant 3). */
static int zlog_rebuild(struct ftl_dev *dev, struct ftl_dev_zoned *z)
{
	struct ftl_zone *zr = calloc(z->nzones, sizeof(*zr));
	int err;

	if (!zr)
		return -ENOMEM;
	err = ftl_dev_report_zones(dev, 0, zr, z->nzones);
	if (err >= 0 && (uint32_t)err != z->nzones)
		err = -EIO;
	for (uint32_t i = 0; err >= 0 && i < z->nzones; i++) {
		uint64_t wp = zr[i].write_pointer - zr[i].start;
		z->wp[i] = zr[i].state == FTL_ZONE_FULL ? z->zblocks : (uint32_t)(wp / BLK);
		err = zlog_scan_zone(dev, z, i, z->wp[i]);
	}
	free(zr);
	if (err < 0)
		return err;
	if (dev->rdonly)
		return 0;
	/* What was read back is on the media before anything is reset on its strength. */
	err = dev->ops->flush(dev);
	if (err < 0)
		return err;
	for (uint32_t i = 0; i < z->nzones; i++) {
		if (z->wp[i] > 0 && z->refs[i] == 0) {
			err = zlog_reset_zone(dev, z, i);
			if (err < 0)
				return err;
			continue;
		}
		bool partial = z->wp[i] > 0 && z->wp[i] < z->zblocks;
		if (partial && !z->sealed[i] && z->log == ZONE_NONE) {
			z->log = i;
			continue;
		}
		if (partial) {
			err = ftl_dev_zone_action(dev, FTL_ZONE_FINISH, zone_off(z, i, 0),
			                          z->zone_size);
			if (err < 0)
				return err;
		}
		if (z->wp[i] > 0) {
			z->wp[i] = z->zblocks;
			z->sealed[i] = false;
		}
	}
	uint32_t empty;
	if (zlog_nempty(z, &empty) == 0 && z->log != ZONE_NONE)
		err = zlog_compact(dev, z, z->log);
	return err;
}

/* Looks for a record in the first zones: its geometry says where the log is. */
static int zlog_probe(struct ftl_dev *dev, struct ftl_zlog_rec_disk *geo)
{
	uint32_t nz = (uint32_t)(dev->size / dev->zone_size);
	uint32_t probe = nz < ZLOG_PROBE_ZONES ? nz : ZLOG_PROBE_ZONES;
	struct ftl_zone *zr = calloc(probe, sizeof(*zr));
	uint8_t *blk = aligned_alloc(4096, (size_t)(MAXE + 1) * BLK);
	int err, found = 0;

	if (!zr || !blk) {
		err = -ENOMEM;
		goto out;
	}
	err = ftl_dev_report_zones(dev, 0, zr, probe);
	if (err < 0)
		goto out;
	for (int i = 0; i < err && !found; i++) {
		if (zr[i].write_pointer <= zr[i].start || zr[i].state == FTL_ZONE_OFFLINE)
			continue;
		if (raw_read(dev, blk, BLK, zr[i].start) < 0)
			continue;
		struct ftl_zlog_rec_disk *h = (struct ftl_zlog_rec_disk *)blk;
		struct ftl_dev_zoned tmp = {
		    .nzones = h->nzones, .zone_size = dev->zone_size, .limit = h->limit};
		if (h->nzones < 2 || h->nzones >= nz || h->limit == 0 || h->limit % BLK ||
		    h->limit > (uint64_t)h->nzones * dev->zone_size || !rec_header_ok(&tmp, h))
			continue;
		*geo = *h;
		found = 1;
	}
	err = found;
out:
	free(blk);
	free(zr);
	return err;
}

int ftl_dev_zoned_attach(struct ftl_dev *dev)
{
	struct ftl_zlog_rec_disk geo;
	struct ftl_dev_zoned *z;
	int err;

	if (!dev->zone_size || dev->block_size > BLK || dev->zone_size % BLK)
		return 0; /* no log can live here: the device reads as it is */
	err = zlog_probe(dev, &geo);
	if (err <= 0)
		return err;
	z = zlog_new(geo.nzones, dev->zone_size, geo.limit);
	if (!z)
		return -ENOMEM;
	err = zlog_rebuild(dev, z);
	if (err < 0) {
		zlog_free(z);
		return err;
	}
	dev->zlog = z;
	dev->zlog_end = (uint64_t)z->nzones * z->zone_size;
	return 0;
}

void ftl_dev_zoned_detach(struct ftl_dev *dev)
{
	if (!dev || !dev->zlog)
		return;
	zlog_free(dev->zlog);
	dev->zlog = NULL;
	dev->zlog_end = 0;
}

int ftl_dev_zoned_reload(struct ftl_dev *dev)
{
	struct ftl_dev_zoned *z = dev->zlog;
	if (!z)
		return 0;
	/* The counters describe the device's life, not one attach. */
	uint64_t w = z->blocks_written, r = z->records, c = z->compactions, cp = z->copied,
	         t = z->torn;
	ftl_dev_zoned_detach(dev);
	int err = ftl_dev_zoned_attach(dev);
	if (err == 0 && (z = dev->zlog)) {
		z->blocks_written += w;
		z->records += r;
		z->compactions += c;
		z->copied += cp;
		z->torn += t;
	}
	return err;
}

int ftl_dev_zoned_format(struct ftl_dev *dev, uint64_t rand_bytes, uint64_t *data_offset)
{
	uint32_t nz;
	struct ftl_zone *zr = NULL;
	int err;

	if (!dev->zone_size)
		return -EINVAL;
	if (dev->block_size > BLK || dev->zone_size % BLK)
		return -EOPNOTSUPP;
	nz = (uint32_t)(dev->size / dev->zone_size);
	uint64_t limit = (rand_bytes + BLK - 1) / BLK * BLK;
	uint32_t nlog = ftl_dev_zoned_log_zones(limit, dev->zone_size);
	if (nlog >= nz)
		return -ENOSPC;
	zr = calloc(nz, sizeof(*zr));
	if (!zr)
		return -ENOMEM;
	err = ftl_dev_report_zones(dev, 0, zr, nz);
	if (err >= 0 && (uint32_t)err != nz)
		err = -EIO;
	if (err < 0)
		goto out;
	for (uint32_t i = 0; i < nz; i++) {
		/* A segment is a whole zone: zones that end before the next starts are not
		 * handled (they would need segments of the zone capacity). */
		if (zr[i].capacity != dev->zone_size) {
			err = -EOPNOTSUPP;
			goto out;
		}
		if (zr[i].state == FTL_ZONE_OFFLINE || zr[i].state == FTL_ZONE_READ_ONLY) {
			err = -EIO;
			goto out;
		}
	}
	ftl_dev_zoned_detach(dev);
	err = ftl_dev_zone_action(dev, FTL_ZONE_RESET, 0, (uint64_t)nz * dev->zone_size);
	if (err < 0)
		goto out;
	struct ftl_dev_zoned *z = zlog_new(nlog, dev->zone_size, limit);
	if (!z) {
		err = -ENOMEM;
		goto out;
	}
	dev->zlog = z;
	dev->zlog_end = (uint64_t)nlog * dev->zone_size;
	*data_offset = dev->zlog_end;
	err = 0;
out:
	free(zr);
	return err;
}

int ftl_dev_zoned_get_stats(const struct ftl_dev *dev, struct ftl_dev_zoned_stats *st)
{
	struct ftl_dev_identity id;

	if (!dev || !st)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	if (!dev->zone_size)
		return 0;
	(void)ftl_dev_identify((struct ftl_dev *)dev, &id);
	st->zoned = true;
	st->zone_size = dev->zone_size;
	st->zones = (uint32_t)(dev->size / dev->zone_size);
	st->max_open = id.max_open_zones;
	st->max_active = id.max_active_zones;
	st->zone_resets = atomic_load_explicit(&dev->st.zone_resets, memory_order_relaxed);
	st->zone_finishes = atomic_load_explicit(&dev->st.zone_finishes, memory_order_relaxed);
	st->zone_appends = atomic_load_explicit(&dev->st.zone_appends, memory_order_relaxed);
	struct ftl_dev_zoned *z = dev->zlog;
	if (!z)
		return 0;
	pthread_mutex_lock(&z->lock);
	st->log_zones = z->nzones;
	st->log_bytes = z->limit;
	st->log_blocks_written = z->blocks_written;
	st->log_records = z->records;
	st->log_compactions = z->compactions;
	st->log_blocks_copied = z->copied;
	st->log_torn_records = z->torn;
	for (uint32_t i = 0; i < z->nzones; i++)
		st->log_live_blocks += z->refs[i];
	pthread_mutex_unlock(&z->lock);
	return 0;
}
