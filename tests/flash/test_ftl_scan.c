/* tests/flash/test_ftl_scan.c - the scan at open against what a power cut or a stranger leaves:
 * a segment header whose sequence number would make next_seq wrap is refused.
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
