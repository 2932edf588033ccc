/* flash/ftl_scan.c - rebuilding the in-memory state from the device at open.
 *
 * Reads every segment header, starts from the newest sound checkpoint (ftl_ckpt.c) where there
 * is one, and walks the pack chains of the segments written since: all of them without one.
 * Checks every walked chunk's checksum and keeps, for each chunk id, the copy with the highest
 * birth sequence. Everything it reads is untrusted: a pack that fails a check ends that
 * segment's walk. Writes nothing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ftl_zone_int.h"

struct scan_births {
	uint64_t *v; /* birth + 1 of the winning copy per id, | SCAN_DAMAGED; 0 = none */
	uint64_t n;
};
/* The winning copy fails its checksum: it stays in the L2P (reads give -EIO and the id is
 * never handed out again while references to it may exist). The owner is told of it through
 * cfg.lost_cb, not scan_cb, and frees it if it holds no reference: only the owner can tell a
 * chunk of a pack torn by a power cut (never synced, so never referenced) from bit rot. */
#define SCAN_DAMAGED (1ull << 63)
/* The entry came from the checkpoint: any sound copy the walk finds is newer (it was written
 * after the checkpoint: new content under a reused id, or a GC copy of the same). */
#define SCAN_CKPT (1ull << 62)
/* Owner word of a chunk that failed its checksum at a scan: a checkpoint keeps the mark, so
 * later opens do not report it either. Only its flags byte counts (no chunk is written with
 * FTL_FLAGS_RESERVED); checkpoints from before the 6-byte word stored all ones. */
#define SCAN_WORD_DAMAGED UINT64_MAX
static bool scan_word_damaged(uint64_t w)
{
	return (w >> 56) == FTL_FLAGS_RESERVED;
}

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

/* Births count chunk writes from 0 and never get near FTL_BIRTH_LIMIT (ftl_int.h). A
 * checksummed summary that claims one (written by a broken program) would overflow the births
 * table (birth + 1 must stay clear of SCAN_CKPT and SCAN_DAMAGED, and birth + 1 == 0 means
 * "none") and next_birth; ftl_write hands out births only below the same limit, so the scan
 * never ignores a chunk the FTL wrote. */
#define SCAN_BIRTH_LIMIT FTL_BIRTH_LIMIT

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
		bool have_ckpt = b->v[id] & SCAN_CKPT;
		/* Among sound copies the newest wins (GC copies keep their birth). A damaged copy
		 * wins only where no sound one exists: it keeps its id taken, so references to it
		 * read -EIO instead of the data of whatever reuses the id. (A sound copy beats a
		 * newer damaged one: a freed chunk comes back after a power cut that tore the pack
		 * of the chunk that reused its id.) */
		if (b->v[id] == 0) {
			rc = ftl_l2p_claim(&ftl->l2p, id);
			if (rc)
				return rc;
		} else if (have_ckpt ? damaged && !have_damaged
		                     : (damaged && !have_damaged) ||
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
		ftl_l2p_set_word(&ftl->l2p, id,
		                 damaged
		                     ? SCAN_WORD_DAMAGED
		                     : ftl_word_make(e[i].hash, (uint8_t)(e[i].len_flags >> 24)));
		ftl_l2p_set(&ftl->l2p, id, loc);
		atomic_fetch_add(&ftl->segs[segi].live_bytes, fp);
		atomic_fetch_add(&ftl->bytes_live, len);
		cur += fp;
	}
	return 0;
}

/* What the header pass learnt of each segment. */
enum hdr_kind {
	HDR_NONE = 0, /* unused since format, or not ours: free with 0 erases */
	HDR_OK,       /* valid header */
	HDR_IOERR,    /* unreadable: what the checkpoint says of it stands */
};

struct scan_state {
	struct scan_births b;
	struct ftl_seg_disk *hdrs;
	uint8_t *kind;   /* enum hdr_kind per segment */
	bool *hdr_ok;    /* kind == HDR_OK, as ftl_ckpt_load wants it */
	uint32_t *walk;  /* per segment: offset the walk starts at, UINT32_MAX = none */
	bool *from_ckpt; /* the checkpoint's entries into this segment stand */
	uint8_t *buf;
	uint64_t max_seq, max_clock, max_birth;
	uint64_t packs_walked;
	uint64_t steps_done, steps_total; /* progress: cfg.progress_cb */
};
#define WALK_NONE UINT32_MAX

static void scan_step(struct ftl *ftl, struct scan_state *ss)
{
	ss->steps_done++;
	if (ftl->cfg.progress_cb)
		ftl->cfg.progress_cb(ftl->cfg.progress_arg, ss->steps_done, ss->steps_total);
}

static int read_headers(struct ftl *ftl, struct scan_state *ss)
{
	for (uint32_t i = 0; i < ftl->nsegs; i++) {
		scan_step(ftl, ss);
		if (ftl_zone_seg_empty(ftl, i))
			continue; /* an empty zone: free, nothing to read */
		int rc = ftl_dev_read(ftl->dev, ss->buf, ftl->bs, ftl_seg_dev_off(ftl, i));
		if (rc == -ENOMEM)
			return rc;
		if (rc) {
			ss->kind[i] = HDR_IOERR;
			continue;
		}
		struct ftl_seg_disk *h = (struct ftl_seg_disk *)ss->buf;
		uint32_t crc = h->crc;
		h->crc = 0;
		if (h->magic == FTL_SEG_MAGIC && ftl_crc32c(0, h, sizeof(*h)) == crc &&
		    !memcmp(h->uuid, ftl->sb.uuid, sizeof(h->uuid)) && h->seg_index == i &&
		    (h->seq >= FTL_SEQ_LIMIT ||
		     (h->state != FTL_SEG_DISK_FREE && h->seq >= FTL_SEQ_ALLOC_LIMIT))) {
			/* Checksummed but impossible: it would make next_seq wrap, or leave no
			 * room to open a segment; and only a release writes a header (FREE) at or
			 * beyond FTL_SEQ_ALLOC_LIMIT (ftl_int.h). Not ours. */
			fprintf(stderr,
			        "pstorfs: flash: segment %u: header sequence number %llu is beyond "
			        "what this FTL writes: the segment is taken as free\n",
			        i, (unsigned long long)h->seq);
			atomic_fetch_add(&ftl->checksum_errors, 1);
			continue;
		}
		if (h->magic == FTL_SEG_MAGIC && ftl_crc32c(0, h, sizeof(*h)) == crc &&
		    !memcmp(h->uuid, ftl->sb.uuid, sizeof(h->uuid)) && h->seg_index == i) {
			ss->hdrs[i] = *h;
			ss->kind[i] = HDR_OK;
			ss->hdr_ok[i] = true;
			if (h->seq > ss->max_seq)
				ss->max_seq = h->seq;
		}
	}
	return 0;
}

/* One segment fewer in the free pool (segments start free in ftl_segs_init). */
static void seg_take(struct ftl *ftl)
{
	pthread_mutex_lock(&ftl->seg_lock);
	ftl->nfree--;
	pthread_mutex_unlock(&ftl->seg_lock);
}

/* A segment with packs, known from its header: it is walked from its first pack. */
static void seg_from_header(struct ftl *ftl, struct scan_state *ss, uint32_t segi)
{
	struct ftl_seg *s = &ftl->segs[segi];
	const struct ftl_seg_disk *h = &ss->hdrs[segi];
	s->stream = h->stream < FTL_STREAM_COUNT ? h->stream : FTL_STREAM_USER_COLD;
	s->open_clock = h->open_clock;
	s->close_clock = h->open_clock;
	s->end = ftl->bs;
	atomic_store(&s->state, FTL_SEG_CLOSED);
	seg_take(ftl);
	ss->walk[segi] = ftl->bs;
}

/* A segment the checkpoint describes and that has not changed since. */
static void seg_from_ckpt(struct ftl *ftl, struct scan_state *ss, const struct ftl_ckpt_image *ck,
                          uint32_t segi)
{
	struct ftl_seg *s = &ftl->segs[segi];
	const struct ftl_ckpt_seg_disk *c = ftl_ckpt_seg(ck, segi);
	s->stream = c->stream < FTL_STREAM_COUNT ? c->stream : FTL_STREAM_USER_COLD;
	s->open_clock = c->open_clock;
	s->close_clock = c->close_clock;
	atomic_store(&s->birth_sum, c->birth_sum);
	atomic_store(&s->birth_n, c->birth_n);
	s->end = c->end;
	const uint32_t *offs = ftl_ckpt_pack_offs(ck, segi);
	for (uint32_t j = 0; j < c->npacks; j++)
		ftl_seg_add_pack(ftl, segi, offs[j]);
	atomic_store(&s->state, FTL_SEG_CLOSED);
	seg_take(ftl);
	ss->from_ckpt[segi] = true;
	if (c->close_clock > ss->max_clock)
		ss->max_clock = c->close_clock;
	/* A stream's segment at the checkpoint may have got packs after it. */
	if (c->state == FTL_CKPT_SEG_OPEN && ss->kind[segi] == HDR_OK)
		ss->walk[segi] = c->end;
}

/* Sorts every segment into free, checkpoint, restored from the checkpoint, or to be walked. */
static void classify(struct ftl *ftl, struct scan_state *ss, const struct ftl_ckpt_image *ck,
                     const uint32_t *parts, uint32_t nparts)
{
	for (uint32_t i = 0; i < ftl->nsegs; i++) {
		struct ftl_seg *s = &ftl->segs[i];
		const struct ftl_seg_disk *h = &ss->hdrs[i];
		bool ok = ss->kind[i] == HDR_OK;
		if (ok) {
			s->erase_count = h->erase_count;
			s->seq = h->seq;
		}
		if (ok && h->stream == FTL_SEG_STREAM_CKPT && h->state == FTL_SEG_DISK_OPEN) {
			bool ours = false;
			for (uint32_t k = 0; k < nparts; k++)
				ours |= parts[k] == i;
			if (ours) { /* the checkpoint we start from: kept until the next one */
				atomic_store(&s->stream, FTL_SEG_STREAM_CKPT);
				s->ckpt_gen = h->ckpt_gen;
				s->ckpt_part = h->ckpt_part;
				s->ckpt_nparts = h->ckpt_nparts;
				atomic_store(&s->state, FTL_SEG_CKPT);
				seg_take(ftl);
			}
			continue; /* an older or broken checkpoint's: free */
		}
		if (ck) {
			const struct ftl_ckpt_seg_disk *c = ftl_ckpt_seg(ck, i);
			bool same = ok && h->seq == c->seq;
			if (c->state != FTL_CKPT_SEG_FREE && (same || ss->kind[i] == HDR_IOERR)) {
				if (!ok) {
					s->erase_count = c->erase_count;
					s->seq = c->seq;
				}
				seg_from_ckpt(ftl, ss, ck, i);
				continue;
			}
		}
		if (ok && h->state == FTL_SEG_DISK_OPEN)
			seg_from_header(ftl, ss, i);
	}
}

/* The checkpoint's L2P, for entries into segments that stand as it saw them. */
static int load_l2p(struct ftl *ftl, struct scan_state *ss, const struct ftl_ckpt_image *ck)
{
	const struct ftl_ckpt_disk *h = ftl_ckpt_header(ck);
	int rc = h->next_id ? births_reserve(&ss->b, h->next_id - 1) : 0;
	if (rc)
		return rc;
	for (uint32_t i = 0; i < ftl_ckpt_npages(ck); i++) {
		const uint64_t *locs, *words;
		uint32_t count;
		uint64_t p = ftl_ckpt_page(ck, i, &count, &locs, &words);
		for (uint32_t j = 0; j < count; j++) {
			uint64_t loc = locs[j], id = (p << FTL_L2P_PAGE_SHIFT) | j;
			if (!loc || !ss->from_ckpt[ftl_loc_seg(loc)])
				continue;
			rc = births_reserve(&ss->b, id);
			if (!rc)
				rc = ftl_l2p_claim(&ftl->l2p, id);
			if (rc)
				return rc;
			uint32_t len = ftl_loc_len(loc);
			ss->b.v[id] = SCAN_CKPT | (scan_word_damaged(words[j]) ? SCAN_DAMAGED : 0);
			ftl_l2p_set_word(&ftl->l2p, id, words[j]);
			ftl_l2p_set(&ftl->l2p, id, loc);
			atomic_fetch_add(&ftl->segs[ftl_loc_seg(loc)].live_bytes,
			                 ftl_chunk_footprint(len));
			atomic_fetch_add(&ftl->bytes_live, len);
		}
	}
	return 0;
}

/* Walks a segment's pack chain from FROM; the first pack that fails a check ends it. */
static int walk_segment(struct ftl *ftl, struct scan_state *ss, uint32_t segi, uint32_t from)
{
	struct ftl_seg *s = &ftl->segs[segi];
	uint64_t base = ftl_seg_dev_off(ftl, segi);
	uint64_t seq = s->seq;
	uint8_t *buf = ss->buf;
	uint32_t off = from;
	/* A zone's write pointer: nothing was written past it (reads there may fail). */
	uint32_t lim = ftl_zone_seg_limit(ftl, segi);
	int rc = 0;

	while (off + 2 * ftl->bs <= lim) {
		rc = ftl_dev_read(ftl->dev, buf, ftl->bs, base + off);
		if (rc)
			break; /* unreadable: what follows is unknown, keep what we have */
		struct ftl_pack_disk *ph = (struct ftl_pack_disk *)buf;
		/* Bound the read by what a pack can be before trusting the header's sizes. */
		if (ph->magic != FTL_PACK_MAGIC || ph->seg_seq != seq ||
		    ph->total_bytes < 2 * ftl->bs || ph->total_bytes % ftl->bs ||
		    ph->total_bytes > FTL_PACK_HDR_MAX * ftl->bs + ftl->pack_data_cap ||
		    (uint64_t)off + ph->total_bytes > lim)
			break;
		rc = ftl_dev_read(ftl->dev, buf + ftl->bs, ph->total_bytes - ftl->bs,
		                  base + off + ftl->bs);
		if (rc)
			break;
		if (!ftl_pack_header_ok(ftl, ph, seq, off))
			break;
		if (ph->clock > s->close_clock)
			s->close_clock = ph->clock;
		rc = scan_pack(ftl, segi, off, buf, &ss->b, &ss->max_birth);
		if (rc)
			return rc;
		ftl_seg_add_pack(ftl, segi, off);
		ss->packs_walked++;
		off += ph->total_bytes;
	}
	if (s->close_clock > ss->max_clock)
		ss->max_clock = s->close_clock;
	s->end = off;
	ftl->open_segs_walked++;
	return 0;
}

/* Tells the owner of one walked pack's winning chunks, with their whole hashes. */
static int report_pack(struct ftl *ftl, struct scan_state *ss, uint32_t segi, uint32_t off)
{
	uint8_t *buf = ss->buf;
	uint64_t base = ftl_seg_dev_off(ftl, segi);
	int rc = ftl_dev_read(ftl->dev, buf, ftl->bs, base + off);
	if (rc)
		return rc;
	struct ftl_pack_disk *ph = (struct ftl_pack_disk *)buf;
	if (ph->hdr_blocks > 1 && ph->hdr_blocks <= FTL_PACK_HDR_MAX) {
		rc = ftl_dev_read(ftl->dev, buf + ftl->bs, (ph->hdr_blocks - 1) * ftl->bs,
		                  base + off + ftl->bs);
		if (rc)
			return rc;
	}
	if (!ftl_pack_header_ok(ftl, ph, ftl->segs[segi].seq, off))
		return -EIO; /* it passed a moment ago */
	struct ftl_pack_entry_disk *e = (void *)(buf + sizeof(*ph));
	uint32_t cur = off + ph->hdr_blocks * ftl->bs;
	for (uint32_t i = 0; i < ph->nentries; i++) {
		uint32_t len = e[i].len_flags & FTL_LEN_MASK;
		uint64_t loc = ftl_loc_make(segi, cur, len);
		if (ftl_l2p_get(&ftl->l2p, e[i].id) == loc) {
			if (!(ss->b.v[e[i].id] & SCAN_DAMAGED))
				rc = ftl->cfg.scan_cb
				         ? ftl->cfg.scan_cb(ftl->cfg.scan_arg,
				                            (struct ftl_addr){e[i].id}, e[i].hash,
				                            FTL_HASH_LEN, len,
				                            (uint8_t)(e[i].len_flags >> 24))
				         : 0;
			else
				rc = ftl->cfg.lost_cb
				         ? ftl->cfg.lost_cb(ftl->cfg.scan_arg,
				                            (struct ftl_addr){e[i].id}, len)
				         : 0;
			if (rc)
				return rc;
		}
		cur += ftl_chunk_footprint(len);
	}
	return 0;
}

/* Second pass: the owner hears of every live chunk once: of sound ones through scan_cb, of
 * those kept only damaged through lost_cb. */
static int report(struct ftl *ftl, struct scan_state *ss, const struct ftl_ckpt_image *ck)
{
	int rc;

	for (uint32_t i = 0; ck && i < ftl_ckpt_npages(ck); i++) {
		const uint64_t *locs, *words;
		uint32_t count;
		uint64_t p = ftl_ckpt_page(ck, i, &count, &locs, &words);
		for (uint32_t j = 0; j < count; j++) {
			uint64_t id = (p << FTL_L2P_PAGE_SHIFT) | j;
			if (!locs[j] || ftl_l2p_get(&ftl->l2p, id) != locs[j])
				continue; /* replaced by a walked copy, or dropped */
			if (ss->b.v[id] == (SCAN_CKPT | SCAN_DAMAGED)) {
				rc = ftl->cfg.lost_cb ? ftl->cfg.lost_cb(ftl->cfg.scan_arg,
				                                         (struct ftl_addr){id},
				                                         ftl_loc_len(locs[j]))
				                      : 0;
				if (rc)
					return rc;
				continue;
			}
			if (ss->b.v[id] != SCAN_CKPT || !ftl->cfg.scan_cb)
				continue;
			uint8_t hash[FTL_HASH_LEN] = {0};
			for (int k = 0; k < FTL_SCAN_HASH_PREFIX; k++)
				hash[k] = (uint8_t)(words[j] >> (8 * k));
			rc = ftl->cfg.scan_cb(ftl->cfg.scan_arg, (struct ftl_addr){id}, hash,
			                      FTL_SCAN_HASH_PREFIX, ftl_loc_len(locs[j]),
			                      (uint8_t)(words[j] >> 56));
			if (rc)
				return rc;
		}
	}
	for (uint32_t segi = 0; segi < ftl->nsegs; segi++) {
		struct ftl_seg *s = &ftl->segs[segi];
		if (ss->walk[segi] == WALK_NONE)
			continue;
		scan_step(ftl, ss);
		for (uint32_t p = 0; p < s->npacks; p++) {
			if (s->pack_offs[p] < ss->walk[segi])
				continue;
			rc = report_pack(ftl, ss, segi, s->pack_offs[p]);
			if (rc)
				return rc;
		}
	}
	return 0;
}

int ftl_scan(struct ftl *ftl)
{
	struct scan_state ss = {0};
	struct ftl_ckpt_image *ck = NULL;
	uint32_t *parts = NULL, nparts = 0;
	int rc = -ENOMEM;

	ss.buf = aligned_alloc(4096, FTL_PACK_HDR_MAX * ftl->bs + ftl->pack_data_cap);
	ss.hdrs = calloc(ftl->nsegs, sizeof(*ss.hdrs));
	ss.kind = calloc(ftl->nsegs, 1);
	ss.hdr_ok = calloc(ftl->nsegs, sizeof(bool));
	ss.walk = malloc(ftl->nsegs * sizeof(*ss.walk));
	ss.from_ckpt = calloc(ftl->nsegs, sizeof(bool));
	if (!ss.buf || !ss.hdrs || !ss.kind || !ss.hdr_ok || !ss.walk || !ss.from_ckpt)
		goto out;
	for (uint32_t i = 0; i < ftl->nsegs; i++)
		ss.walk[i] = WALK_NONE;
	ss.steps_total = ftl->nsegs; /* the walk is added once it is known */
	rc = read_headers(ftl, &ss);
	if (rc)
		goto out;
	/* New checkpoints are numbered above every one on the device, used or not. */
	for (uint32_t i = 0; i < ftl->nsegs; i++)
		if (ss.hdr_ok[i] && ss.hdrs[i].stream == FTL_SEG_STREAM_CKPT &&
		    ss.hdrs[i].ckpt_gen > ftl->ckpt_gen)
			ftl->ckpt_gen = ss.hdrs[i].ckpt_gen;
	if (!ftl->cfg.full_scan) {
		rc = ftl_ckpt_load(ftl, ss.hdrs, ss.hdr_ok, &ck, &parts, &nparts);
		if (rc)
			goto out;
	}
	classify(ftl, &ss, ck, parts, nparts);
	if (ck) {
		const struct ftl_ckpt_disk *h = ftl_ckpt_header(ck);
		rc = load_l2p(ftl, &ss, ck);
		if (rc)
			goto out;
		ss.max_clock = h->clock > ss.max_clock ? h->clock : ss.max_clock;
		ss.max_birth = h->next_birth ? h->next_birth - 1 : 0;
		if (h->next_seq > ss.max_seq + 1)
			ss.max_seq = h->next_seq - 1;
		ftl->open_from_ckpt = true;
		ftl->open_ckpt_gen = h->gen;
		ftl->ckpt_segs = parts;
		ftl->ckpt_nsegs = nparts;
		parts = NULL;
	}
	uint64_t nwalk = 0;
	for (uint32_t i = 0; i < ftl->nsegs; i++)
		nwalk += ss.walk[i] != WALK_NONE;
	ss.steps_total += nwalk * (ftl->cfg.scan_cb || ftl->cfg.lost_cb ? 2 : 1);
	for (uint32_t i = 0; i < ftl->nsegs; i++) {
		if (ss.walk[i] == WALK_NONE)
			continue;
		scan_step(ftl, &ss);
		rc = walk_segment(ftl, &ss, i, ss.walk[i]);
		if (rc)
			goto out;
	}
	ftl->next_seq = ss.max_seq + 1;
	atomic_store(&ftl->clock, ss.max_clock);
	atomic_store(&ftl->next_birth, ss.max_birth + 1);
	/* Accepted, but leaving no room: only forged headers or summaries get here. The FTL
	 * refuses new writes rather than write what its next open would not take (ftl_int.h). */
	if (ftl->next_seq >= FTL_SEQ_ALLOC_LIMIT || ss.max_birth + 1 >= FTL_BIRTH_LIMIT)
		fprintf(stderr,
		        "pstorfs: flash: %s %llu is at its limit (not written by this FTL): "
		        "writes will fail with ENOSPC\n",
		        ftl->next_seq >= FTL_SEQ_ALLOC_LIMIT ? "next segment sequence number"
		                                             : "next write sequence number",
		        (unsigned long long)(ftl->next_seq >= FTL_SEQ_ALLOC_LIMIT
		                                 ? ftl->next_seq
		                                 : ss.max_birth + 1));
	ftl_l2p_rebuild_free(&ftl->l2p);
	/* Without a checkpoint, or with a walk since it, the next close writes one. */
	atomic_store(&ftl->ckpt_dirty, !ck || ss.packs_walked > 0);
	if (ftl->cfg.scan_cb || ftl->cfg.lost_cb)
		rc = report(ftl, &ss, ck);
out:
	ftl_ckpt_image_free(ck);
	free(parts);
	free(ss.b.v);
	free(ss.buf);
	free(ss.hdrs);
	free(ss.kind);
	free(ss.hdr_ok);
	free(ss.walk);
	free(ss.from_ckpt);
	return rc;
}
