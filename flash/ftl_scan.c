/* flash/ftl_scan.c - rebuilding the in-memory state from the segments at open.
 *
 * Reads every segment header, walks each segment's pack chain, checks every chunk's checksum
 * and keeps, for each chunk id, the copy with the highest birth sequence. Everything it reads is
 * untrusted: a pack that fails a check ends that segment's walk. Writes nothing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ftl_int.h"

struct scan_births {
	uint64_t *v; /* birth + 1 of the winning copy per id, | SCAN_DAMAGED; 0 = none */
	uint64_t n;
};
/* The winning copy fails its checksum: it stays in the L2P (reads give -EIO and the id is
 * never handed out again while references to it may exist) but the owner is not told of it. */
#define SCAN_DAMAGED (1ull << 63)

static int births_reserve(struct scan_births *b, uint64_t id)
{
	if (id < b->n)
		return 0;
	uint64_t n = b->n ? b->n : 4096;
	while (n <= id)
		n *= 2;
	uint64_t *nv = realloc(b->v, n * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	memset(nv + b->n, 0, (n - b->n) * sizeof(*nv));
	b->v = nv;
	b->n = n;
	return 0;
}

bool ftl_pack_header_ok(struct ftl *ftl, struct ftl_pack_disk *ph, uint64_t seq, uint32_t off)
{
	if (ph->magic != FTL_PACK_MAGIC || ph->seg_seq != seq || ph->nentries == 0 ||
	    ph->nentries > ftl->max_entries ||
	    ph->hdr_blocks != ftl_pack_hdr_blocks(ph->nentries, ftl->bs) ||
	    ph->total_bytes < (ph->hdr_blocks + 1) * ftl->bs || ph->total_bytes % ftl->bs ||
	    (uint64_t)off + ph->total_bytes > ftl->seg_size ||
	    ph->data_bytes > ph->total_bytes - ph->hdr_blocks * ftl->bs ||
	    ph->total_bytes > FTL_PACK_HDR_MAX * ftl->bs + ftl->pack_data_cap)
		return false;
	uint32_t crc = ph->crc;
	ph->crc = 0;
	uint32_t want =
	    ftl_crc32c(0, ph, sizeof(*ph) + ph->nentries * sizeof(struct ftl_pack_entry_disk));
	ph->crc = crc;
	return want == crc;
}

/* Births count chunk writes from 0 and never get near this. A checksummed summary that claims
 * one (written by a broken program) would wrap the births table (birth + 1 == 0 means "none",
 * so a second copy of the id fails the open with -EEXIST) and next_birth, after which new
 * writes lose to old copies at the next scan. */
#define SCAN_BIRTH_LIMIT (1ull << 62)

/* Ids are handed out below the L2P's capacity (ftl_l2p_init): a larger one in a summary whose
 * checksums hold was not written by this FTL, and must not size the births table or fail the
 * open (ftl_l2p_claim would refuse it). */
static bool scan_id_ok(const struct ftl *ftl, uint64_t id)
{
	return id <= FTL_L2P_ID_MAX && (id >> FTL_L2P_PAGE_SHIFT) < ftl->l2p.npages_max;
}

static int scan_pack(struct ftl *ftl, uint32_t segi, uint32_t off, const uint8_t *pk,
                     struct scan_births *b, uint64_t *max_birth)
{
	const struct ftl_pack_disk *ph = (const void *)pk;
	const struct ftl_pack_entry_disk *e = (const void *)(pk + sizeof(*ph));
	uint32_t dstart = ph->hdr_blocks * ftl->bs;
	uint32_t cur = dstart;
	int rc;

	for (uint32_t i = 0; i < ph->nentries; i++) {
		uint32_t len = e[i].len_flags & FTL_LEN_MASK;
		uint32_t fp = ftl_chunk_footprint(len);
		if (len == 0 || len > FTL_CHUNK_MAX || cur + fp > dstart + ph->data_bytes)
			return 0; /* a damaged summary: keep what came before */
		const uint8_t *c = pk + cur;
		struct ftl_chunk_disk hdr;
		memcpy(&hdr, c, sizeof(hdr));
		uint64_t id = e[i].id;
		/* len_flags must be exactly what ftl_read checks the crc against: bits 17..23
		 * set would pass here and fail every read. */
		if (!scan_id_ok(ftl, id) || e[i].birth >= SCAN_BIRTH_LIMIT) {
			atomic_fetch_add(&ftl->checksum_errors, 1);
			cur += fp;
			continue;
		}
		/* The summary checked out, so id and birth are sound even when the chunk is not. */
		bool damaged = hdr.crc != e[i].crc ||
		               e[i].len_flags != ftl_len_flags(len, hdr.flags) ||
		               ftl_chunk_crc(id, e[i].len_flags, c + sizeof(hdr), len) != hdr.crc;
		if (damaged)
			atomic_fetch_add(&ftl->checksum_errors, 1);
		if (e[i].birth > *max_birth)
			*max_birth = e[i].birth;
		atomic_fetch_add(&ftl->segs[segi].birth_sum, e[i].birth);
		atomic_fetch_add(&ftl->segs[segi].birth_n, 1);
		rc = births_reserve(b, id);
		if (rc)
			return rc;
		uint64_t loc = ftl_loc_make(segi, off + cur, len);
		bool have_damaged = b->v[id] & SCAN_DAMAGED;
		/* Among sound copies the newest wins (GC copies keep their birth). A damaged copy
		 * wins only where no sound one exists: it keeps its id taken, so references to it
		 * read -EIO instead of the data of whatever reuses the id. (A sound copy beats a
		 * newer damaged one: a freed chunk comes back after a power cut that tore the pack
		 * of the chunk that reused its id.) */
		if (b->v[id] == 0) {
			rc = ftl_l2p_claim(&ftl->l2p, id);
			if (rc)
				return rc;
		} else if ((damaged && !have_damaged) ||
		           (damaged == have_damaged &&
		            e[i].birth + 1 <= (b->v[id] & ~SCAN_DAMAGED))) {
			cur += fp; /* an older content, or an equal copy no better than ours */
			continue;
		} else {
			uint64_t old = ftl_l2p_get(&ftl->l2p, id);
			atomic_fetch_sub(&ftl->segs[ftl_loc_seg(old)].live_bytes,
			                 ftl_chunk_footprint(ftl_loc_len(old)));
			atomic_fetch_sub(&ftl->bytes_live, ftl_loc_len(old));
		}
		b->v[id] = (e[i].birth + 1) | (damaged ? SCAN_DAMAGED : 0);
		ftl_l2p_set(&ftl->l2p, id, loc);
		atomic_fetch_add(&ftl->segs[segi].live_bytes, fp);
		atomic_fetch_add(&ftl->bytes_live, len);
		cur += fp;
	}
	return 0;
}

static int scan_segment(struct ftl *ftl, uint32_t segi, uint8_t *buf, struct scan_births *b,
                        uint64_t *max_seq, uint64_t *max_clock, uint64_t *max_birth)
{
	struct ftl_seg *s = &ftl->segs[segi];
	uint64_t base = ftl_seg_dev_off(ftl, segi);
	int rc = ftl_dev_read(ftl->dev, buf, ftl->bs, base);
	if (rc)
		return rc;
	struct ftl_seg_disk *h = (struct ftl_seg_disk *)buf;
	uint32_t crc = h->crc;
	h->crc = 0;
	bool ok = h->magic == FTL_SEG_MAGIC && ftl_crc32c(0, h, sizeof(*h)) == crc &&
	          !memcmp(h->uuid, ftl->sb.uuid, sizeof(h->uuid)) && h->seg_index == segi;
	if (!ok)
		return 0; /* never used since format (or unreadable header): free, 0 erases */
	s->erase_count = h->erase_count;
	s->seq = h->seq;
	if (h->seq > *max_seq)
		*max_seq = h->seq;
	if (h->state != FTL_SEG_DISK_OPEN)
		return 0;

	uint64_t seq = h->seq;
	s->stream = h->stream < FTL_STREAM_COUNT ? h->stream : FTL_STREAM_USER_COLD;
	s->open_clock = h->open_clock;
	s->close_clock = h->open_clock;
	uint32_t off = ftl->bs;
	while (off + 2 * ftl->bs <= ftl->seg_size) {
		rc = ftl_dev_read(ftl->dev, buf, ftl->bs, base + off);
		if (rc)
			break; /* unreadable: what follows is unknown, keep what we have */
		struct ftl_pack_disk *ph = (struct ftl_pack_disk *)buf;
		/* Bound the read by what a pack can be before trusting the header's sizes. */
		if (ph->magic != FTL_PACK_MAGIC || ph->seg_seq != seq ||
		    ph->total_bytes < 2 * ftl->bs || ph->total_bytes % ftl->bs ||
		    ph->total_bytes > FTL_PACK_HDR_MAX * ftl->bs + ftl->pack_data_cap ||
		    (uint64_t)off + ph->total_bytes > ftl->seg_size)
			break;
		rc = ftl_dev_read(ftl->dev, buf + ftl->bs, ph->total_bytes - ftl->bs,
		                  base + off + ftl->bs);
		if (rc)
			break;
		if (!ftl_pack_header_ok(ftl, ph, seq, off))
			break;
		if (ph->clock > s->close_clock)
			s->close_clock = ph->clock;
		rc = scan_pack(ftl, segi, off, buf, b, max_birth);
		if (rc)
			return rc;
		ftl_seg_add_pack(ftl, segi, off);
		off += ph->total_bytes;
	}
	if (s->close_clock > *max_clock)
		*max_clock = s->close_clock;
	s->end = off;
	atomic_store(&s->state, FTL_SEG_CLOSED);
	pthread_mutex_lock(&ftl->seg_lock);
	ftl->nfree--;
	pthread_mutex_unlock(&ftl->seg_lock);
	return 0;
}

/* Second pass: tell the owner about every winning chunk, with its hash. */
static int scan_report(struct ftl *ftl, uint8_t *buf, const struct scan_births *b)
{
	for (uint32_t segi = 0; segi < ftl->nsegs; segi++) {
		struct ftl_seg *s = &ftl->segs[segi];
		if (atomic_load(&s->state) != FTL_SEG_CLOSED)
			continue;
		for (uint32_t p = 0; p < s->npacks; p++) {
			uint32_t off = s->pack_offs[p];
			int rc =
			    ftl_dev_read(ftl->dev, buf, ftl->bs, ftl_seg_dev_off(ftl, segi) + off);
			if (rc)
				return rc;
			struct ftl_pack_disk *ph = (struct ftl_pack_disk *)buf;
			if (ph->hdr_blocks > 1 && ph->hdr_blocks <= FTL_PACK_HDR_MAX) {
				rc = ftl_dev_read(ftl->dev, buf + ftl->bs,
				                  (ph->hdr_blocks - 1) * ftl->bs,
				                  ftl_seg_dev_off(ftl, segi) + off + ftl->bs);
				if (rc)
					return rc;
			}
			if (!ftl_pack_header_ok(ftl, ph, s->seq, off))
				return -EIO; /* it passed a moment ago */
			struct ftl_pack_entry_disk *e = (void *)(buf + sizeof(*ph));
			uint32_t cur = off + ph->hdr_blocks * ftl->bs;
			for (uint32_t i = 0; i < ph->nentries; i++) {
				uint32_t len = e[i].len_flags & FTL_LEN_MASK;
				uint64_t loc = ftl_loc_make(segi, cur, len);
				if (ftl_l2p_get(&ftl->l2p, e[i].id) == loc &&
				    !(b->v[e[i].id] & SCAN_DAMAGED)) {
					rc = ftl->cfg.scan_cb(ftl->cfg.scan_arg,
					                      (struct ftl_addr){e[i].id}, e[i].hash,
					                      len, (uint8_t)(e[i].len_flags >> 24));
					if (rc)
						return rc;
				}
				cur += ftl_chunk_footprint(len);
			}
		}
	}
	return 0;
}

int ftl_scan(struct ftl *ftl)
{
	struct scan_births b = {0};
	uint64_t max_seq = 0, max_clock = 0, max_birth = 0;
	uint8_t *buf = aligned_alloc(4096, FTL_PACK_HDR_MAX * ftl->bs + ftl->pack_data_cap);
	int rc = 0;
	if (!buf)
		return -ENOMEM;
	for (uint32_t i = 0; i < ftl->nsegs; i++) {
		rc = scan_segment(ftl, i, buf, &b, &max_seq, &max_clock, &max_birth);
		if (rc)
			goto out_free;
	}
	ftl->next_seq = max_seq + 1;
	atomic_store(&ftl->clock, max_clock);
	atomic_store(&ftl->next_birth, max_birth + 1);
	ftl_l2p_rebuild_free(&ftl->l2p);
	if (ftl->cfg.scan_cb)
		rc = scan_report(ftl, buf, &b);
out_free:
	free(b.v);
	free(buf);
	return rc;
}
