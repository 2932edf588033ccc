/* tests/flash/test_ftl_scan.c - the scan at open against what a power cut or a stranger leaves:
 * the ids of a pack torn by a power cut reach their owner (and come back once freed), a
 * segment header whose sequence number would make next_seq wrap is refused, and sound headers
 * and summaries whose sequence number or birth sits just below its limit lose no synced write.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ftl.h"
#include "ftl_dev_fault.h"
#include "ftl_format.h"
#include "ftl_int.h"

#define SEG  (256u << 10)
#define CLEN 3000u
#define NMAX 4096u

static void fresh(struct ftl_dev **dev)
{
	struct ftl_format_params p = {.segment_size = SEG, .meta_blocks = 256};
	cr_assert_eq(ftl_dev_open_mem(16u << 20, 4096, dev), 0);
	cr_assert_eq(ftl_format(*dev, &p), 0);
}

static void payload(uint8_t *buf, uint64_t key)
{
	uint64_t s = key * 0x9e3779b97f4a7c15ull + 3;
	for (uint32_t i = 0; i < CLEN; i++) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		buf[i] = (uint8_t)s;
	}
}

static struct ftl_addr put(struct ftl *ftl, uint64_t key)
{
	uint8_t buf[CLEN], h[FTL_HASH_LEN] = {0};
	struct ftl_addr a;
	payload(buf, key);
	memcpy(h, &key, sizeof(key));
	cr_assert_eq(ftl_write(ftl, buf, CLEN, h, NULL, &a), 0);
	return a;
}

/* What an open told the owner. */
struct told {
	uint32_t sound, lost;
	uint8_t seen[NMAX]; /* 1 sound, 2 lost */
	uint64_t lost_ids[NMAX];
};

static int told_sound(void *arg, struct ftl_addr a, const uint8_t *hash, uint32_t hash_len,
                      uint32_t len, uint8_t flags)
{
	struct told *t = arg;
	cr_assert_lt(a.v, NMAX);
	cr_assert_eq(t->seen[a.v], 0, "id %llu told twice", (unsigned long long)a.v);
	t->seen[a.v] = 1;
	t->sound++;
	return 0;
}

static int told_lost(void *arg, struct ftl_addr a, uint32_t len)
{
	struct told *t = arg;
	cr_assert_lt(a.v, NMAX);
	cr_assert_eq(t->seen[a.v], 0, "id %llu told twice", (unsigned long long)a.v);
	cr_assert_eq(len, CLEN);
	t->seen[a.v] = 2;
	t->lost_ids[t->lost++] = a.v;
	return 0;
}

static struct ftl *open_told(struct ftl_dev *dev, struct told *t)
{
	struct ftl *ftl;
	memset(t, 0, sizeof(*t));
	struct ftl_config cfg = {
	    .dev = dev, .scan_cb = told_sound, .lost_cb = told_lost, .scan_arg = t};
	cr_assert_eq(ftl_open(&cfg, &ftl), 0);
	return ftl;
}

static uint64_t live(struct ftl *ftl)
{
	struct ftl_stats st;
	ftl_get_stats(ftl, &st);
	return st.chunks_live;
}

Test(ftl_scan, ids_of_a_pack_torn_by_a_power_cut_reach_the_owner_and_are_not_leaked)
{
	struct ftl_dev *dev;
	struct ftl *ftl;
	struct told *t = calloc(1, sizeof(*t));
	struct ftl_addr synced[5], torn[24];

	fresh(&dev);
	cr_assert_eq(ftl_open(&(struct ftl_config){.dev = dev}, &ftl), 0);
	for (int i = 0; i < 5; i++)
		synced[i] = put(ftl, (uint64_t)i);
	cr_assert_eq(ftl_sync(ftl), 0);
	/* One pack of 24 chunks (18 blocks): the power goes during its write, which lands only
	 * its first half (the header and the first chunks). */
	for (int i = 0; i < 24; i++)
		torn[i] = put(ftl, 100 + (uint64_t)i);
	cr_assert_eq(ftl_dev_mem_power_cut_after(dev, 0, true), 0);
	cr_assert_neq(ftl_sync(ftl), 0);
	cr_assert(ftl_dev_mem_is_dead(dev));
	ftl_close(ftl); /* after the cut nothing it writes lands */
	cr_assert_eq(ftl_dev_mem_revive(dev), 0);

	/* Every id the FTL keeps is told to the owner: sound, or lost (damaged). */
	ftl = open_told(dev, t);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(t->seen[synced[i].v], 1);
	cr_assert_eq(t->sound + t->lost, live(ftl),
	             "%llu live ids, but the owner was told of %u sound and %u lost",
	             (unsigned long long)live(ftl), t->sound, t->lost);
	cr_assert_gt(t->lost, 0, "the tear left no damaged chunk: the test needs one");
	cr_assert_lt(t->lost, 24, "the tear kept no sound chunk of the pack");
	for (uint32_t i = 0; i < t->lost; i++) {
		uint8_t buf[FTL_CHUNK_MAX];
		cr_assert_eq(
		    ftl_read(ftl, (struct ftl_addr){t->lost_ids[i]}, buf, sizeof(buf), NULL), -EIO);
	}
	/* Not freed: the next open (from the checkpoint close writes) tells the owner again. */
	uint32_t lost = t->lost, sound = t->sound;
	ftl_close(ftl);
	ftl = open_told(dev, t);
	cr_assert_eq(t->lost, lost);
	cr_assert_eq(t->sound, sound);

	/* The owner holds no reference to them (they never reached a sync): it frees them, and
	 * they are gone for good, ids back in the pool. */
	for (uint32_t i = 0; i < t->lost; i++)
		cr_assert_eq(ftl_free(ftl, (struct ftl_addr){t->lost_ids[i]}), 0);
	cr_assert_eq(live(ftl), sound);
	ftl_close(ftl);
	ftl = open_told(dev, t);
	cr_assert_eq(t->lost, 0);
	cr_assert_eq(t->sound, sound);
	cr_assert_eq(live(ftl), sound);
	for (uint32_t i = 0; i < lost; i++) {
		struct ftl_addr a = put(ftl, 1000 + i);
		cr_assert_lt(a.v, 5 + 24, "a freed id was not reused");
	}
	(void)torn;
	ftl_close(ftl);
	ftl_dev_close(dev);
	free(t);
}

Test(ftl_scan, header_whose_sequence_number_would_wrap_is_refused)
{
	struct ftl_dev *dev;
	struct ftl *ftl;
	struct ftl_superblock_info sb;
	struct ftl_addr a[4];

	fresh(&dev);
	cr_assert_eq(ftl_open(&(struct ftl_config){.dev = dev}, &ftl), 0);
	for (int i = 0; i < 4; i++)
		a[i] = put(ftl, (uint64_t)i);
	cr_assert_eq(ftl_sync(ftl), 0);
	ftl_close(ftl);

	/* A checksummed, otherwise sound header with seq = UINT64_MAX in the last segment. */
	cr_assert_eq(ftl_read_superblock(dev, &sb), 0);
	uint32_t victim = sb.segment_count - 1;
	uint8_t *blk = aligned_alloc(4096, 4096);
	memset(blk, 0, 4096);
	struct ftl_seg_disk *h = (struct ftl_seg_disk *)blk;
	h->magic = FTL_SEG_MAGIC;
	memcpy(h->uuid, sb.uuid, sizeof(h->uuid));
	h->seq = UINT64_MAX;
	h->seg_index = victim;
	h->state = FTL_SEG_DISK_OPEN;
	h->stream = 0;
	h->crc = ftl_crc32c(0, h, sizeof(*h));
	cr_assert_eq(ftl_dev_write(dev, blk, 4096, sb.data_offset + (uint64_t)victim * SEG), 0);
	cr_assert_eq(ftl_dev_flush(dev), 0);
	free(blk);

	cr_assert_eq(ftl_open(&(struct ftl_config){.dev = dev}, &ftl), 0);
	/* Every segment in use is older than the next one to be opened, and no seq wrapped. */
	cr_assert_lt(ftl->next_seq, 1ull << 62);
	for (uint32_t i = 0; i < ftl->nsegs; i++)
		if (atomic_load(&ftl->segs[i].state) != FTL_SEG_FREE)
			cr_assert_lt(ftl->segs[i].seq, ftl->next_seq,
			             "segment %u seq %llu, next %llu", i,
			             (unsigned long long)ftl->segs[i].seq,
			             (unsigned long long)ftl->next_seq);
	cr_assert_eq(atomic_load(&ftl->segs[victim].state), FTL_SEG_FREE);
	struct ftl_stats st;
	ftl_get_stats(ftl, &st);
	cr_assert_geq(st.checksum_errors, 1, "the refused header was not counted");
	/* Life goes on: new writes survive a reopen, old ones too. */
	struct ftl_addr b = put(ftl, 77);
	cr_assert_eq(ftl_sync(ftl), 0);
	ftl_close(ftl);
	cr_assert_eq(ftl_open(&(struct ftl_config){.dev = dev}, &ftl), 0);
	uint8_t buf[FTL_CHUNK_MAX], want[CLEN];
	for (int i = 0; i < 4; i++) {
		payload(want, (uint64_t)i);
		cr_assert_eq(ftl_read(ftl, a[i], buf, sizeof(buf), NULL), (int)CLEN);
		cr_assert_eq(memcmp(buf, want, CLEN), 0);
	}
	payload(want, 77);
	cr_assert_eq(ftl_read(ftl, b, buf, sizeof(buf), NULL), (int)CLEN);
	cr_assert_eq(memcmp(buf, want, CLEN), 0);
	ftl_close(ftl);
	ftl_dev_close(dev);
}

/* ---- counters forged near their limits: no synced write may be lost ---- */

struct forged_ent {
	uint64_t id, birth;
	uint32_t len;
};

/* Writes segment 0 of DEV as this FTL would have: a header with SEQ and one pack holding N
 * chunks (payload(key = id), their summary entries with the given ids and births), every CRC
 * right. What the checksums cannot say is whether the numbers are possible. */
static void forge_segment0(struct ftl_dev *dev, uint64_t seq, const struct forged_ent *ents,
                           uint32_t n)
{
	const uint32_t bs = 4096;
	struct ftl_superblock_info sb;
	cr_assert_eq(ftl_read_superblock(dev, &sb), 0);
	uint8_t *seg = aligned_alloc(4096, SEG);
	cr_assert_not_null(seg);
	memset(seg, 0, SEG);

	struct ftl_seg_disk *h = (struct ftl_seg_disk *)seg;
	h->magic = FTL_SEG_MAGIC;
	memcpy(h->uuid, sb.uuid, sizeof(h->uuid));
	h->seq = seq;
	h->seg_index = 0;
	h->state = FTL_SEG_DISK_OPEN;
	h->stream = FTL_STREAM_USER_COLD;
	h->crc = ftl_crc32c(0, h, sizeof(*h));

	uint32_t off = bs, hb = ftl_pack_hdr_blocks(n, bs);
	struct ftl_pack_disk *ph = (struct ftl_pack_disk *)(seg + off);
	struct ftl_pack_entry_disk *e = (struct ftl_pack_entry_disk *)(ph + 1);
	uint32_t cur = off + hb * bs;
	for (uint32_t i = 0; i < n; i++) {
		uint8_t *c = seg + cur;
		struct ftl_chunk_disk ch = {.entry = (uint16_t)i};
		payload(c + sizeof(ch), ents[i].id);
		e[i].id = ents[i].id;
		e[i].birth = ents[i].birth;
		memcpy(e[i].hash, &ents[i].id, sizeof(ents[i].id));
		e[i].len_flags = ftl_len_flags(ents[i].len, 0);
		ch.crc = ftl_chunk_crc(ents[i].id, e[i].len_flags, c + sizeof(ch), ents[i].len);
		e[i].crc = ch.crc;
		memcpy(c, &ch, sizeof(ch));
		cur += ftl_chunk_footprint(ents[i].len);
	}
	ph->magic = FTL_PACK_MAGIC;
	ph->seg_seq = seq;
	ph->nentries = n;
	ph->hdr_blocks = hb;
	ph->data_bytes = cur - (off + hb * bs);
	ph->total_bytes = hb * bs + (ph->data_bytes + bs - 1) / bs * bs;
	ph->clock = 2300;
	ph->crc = ftl_crc32c(0, ph, sizeof(*ph) + n * sizeof(*e));

	cr_assert_eq(ftl_dev_write(dev, seg, SEG, sb.data_offset), 0);
	cr_assert_eq(ftl_dev_flush(dev), 0);
	free(seg);
}

/* What the fuzz target does after a hostile scan (tests/fuzz/fuzz_segment.c work()): free
 * every other chunk the scan reported, write 4 chunks, sync, GC everything, close, reopen.
 * Every write that was acknowledged must read back; one that failed must have failed with
 * -ENOSPC. Returns how many were acknowledged. */
static int write_sync_gc_reopen(struct ftl_dev *dev)
{
	struct ftl *ftl;
	struct told *t = calloc(1, sizeof(*t));
	struct ftl_addr a[4];
	uint8_t buf[FTL_CHUNK_MAX], want[CLEN];
	int nw = 0;

	ftl = open_told(dev, t);
	uint32_t k = 0;
	for (uint64_t id = 0; id < NMAX; id++)
		if (t->seen[id] == 1 && k++ % 2 == 0)
			cr_assert_eq(ftl_free(ftl, (struct ftl_addr){id}), 0);
	for (; nw < 4; nw++) {
		uint8_t h[FTL_HASH_LEN] = {0};
		payload(buf, 1000 + (uint64_t)nw);
		int rc = ftl_write(ftl, buf, CLEN, h, NULL, &a[nw]);
		if (rc == -ENOSPC)
			break;
		cr_assert_eq(rc, 0);
	}
	cr_assert_eq(ftl_sync(ftl), 0);
	int rc = ftl_gc(ftl, UINT32_MAX);
	cr_assert(rc >= 0 || rc == -ENOSPC, "ftl_gc: %d", rc);
	ftl_close(ftl);

	cr_assert_eq(ftl_open(&(struct ftl_config){.dev = dev}, &ftl), 0);
	for (int i = 0; i < nw; i++) {
		payload(want, 1000 + (uint64_t)i);
		cr_assert_eq(ftl_read(ftl, a[i], buf, sizeof(buf), NULL), (int)CLEN,
		             "synced chunk %d (id %llu) lost after reopen", i,
		             (unsigned long long)a[i].v);
		cr_assert_eq(memcmp(buf, want, CLEN), 0);
	}
	/* And once more from the checkpoint that close wrote (or the full scan without one). */
	ftl_close(ftl);
	cr_assert_eq(ftl_open(&(struct ftl_config){.dev = dev}, &ftl), 0);
	for (int i = 0; i < nw; i++)
		cr_assert_eq(ftl_read(ftl, a[i], buf, sizeof(buf), NULL), (int)CLEN);
	ftl_close(ftl);
	free(t);
	return nw;
}

/* The fuzz find (tests/fuzz/corpus/fuzz_segment/regress-birth-at-limit): a sound summary
 * entry whose birth is 2^62 - 1 was accepted, next_birth became 2^62, new writes got births
 * the next scan ignores as impossible (and the checkpoint close wrote was refused for its
 * next_birth), so synced chunks were gone after a reopen. Births just below the limit too. */
Test(ftl_scan, summary_birth_near_the_limit_loses_no_synced_write)
{
	static const uint64_t births[] = {(1ull << 62) - 1, (1ull << 62) - 2, (1ull << 62) - 3,
	                                  (1ull << 62) - 5};
	for (size_t b = 0; b < sizeof(births) / sizeof(births[0]); b++) {
		struct ftl_dev *dev;
		fresh(&dev);
		struct forged_ent ents[3] = {{0, 0x201, CLEN}, {1, births[b], CLEN}, {2, 3, CLEN}};
		forge_segment0(dev, 1, ents, 3);
		int nw = write_sync_gc_reopen(dev);
		/* An entry at the limit is not ours: ignored, the FTL goes on. */
		if (births[b] >= (1ull << 62) - 1)
			cr_assert_eq(nw, 4, "birth %#llx: only %d writes",
			             (unsigned long long)births[b], nw);
		ftl_dev_close(dev);
	}
}

/* The same with the segment header's sequence number: one just below 2^62 was accepted,
 * next_seq reached 2^62, and the segments opened for new writes had headers the next open
 * takes as free, with their data. Also just below 2^62 - 2^32, the highest an OPEN header
 * can have (the rest is for the FREE headers of releases), and further down. */
Test(ftl_scan, header_sequence_number_near_the_limit_loses_no_synced_write)
{
	static const uint64_t seqs[] = {(1ull << 62) - 1,
	                                (1ull << 62) - 2,
	                                (1ull << 62) - 40,
	                                (1ull << 62) - (1ull << 32) - 1,
	                                (1ull << 62) - (1ull << 32) - 3,
	                                (1ull << 62) - (1ull << 33)};
	for (size_t s = 0; s < sizeof(seqs) / sizeof(seqs[0]); s++) {
		struct ftl_dev *dev;
		fresh(&dev);
		struct forged_ent ents[3] = {{0, 1, CLEN}, {1, 2, CLEN}, {2, 3, CLEN}};
		forge_segment0(dev, seqs[s], ents, 3);
		int nw = write_sync_gc_reopen(dev);
		/* An OPEN header where this FTL never writes one is not ours: the segment is
		 * taken as free and the FTL goes on; far enough below, nothing stops either. */
		if (seqs[s] >= (1ull << 62) - (1ull << 32) ||
		    seqs[s] <= (1ull << 62) - (1ull << 33))
			cr_assert_eq(nw, 4, "seq %#llx: only %d writes",
			             (unsigned long long)seqs[s], nw);
		ftl_dev_close(dev);
	}
}
