/* tests/fuzz/fuzz_superblock.c - libFuzzer target for the superblock parser: the input becomes
 * superblock copies A and B of an in-memory namespace, then ftl_read_superblock (and, by a flag,
 * ftl_open) must either refuse it or return a geometry that fits the device.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ftl.h"
#include "ftl_format.h"
#include "fuzz_common.h"

/* Four device sizes (chosen by two flag bits) so the "segments must fit the device" checks see
 * both sides; two block sizes. The devices are kept across inputs: every input rewrites both
 * superblock slots, and nothing else on them is ever written. */
static const uint64_t sb_dev_sizes[4] = {128ull << 10, 4ull << 20, 64ull << 20, 1ull << 30};
static struct ftl_dev *sb_devs[2][4];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	for (int b = 0; b < 2; b++)
		for (int i = 0; i < 4; i++)
			fz_check(ftl_dev_open_mem(sb_dev_sizes[i], b ? 512 : 4096, &sb_devs[b][i]),
			         "ftl_dev_open_mem");
	return 0;
}

/* Writes one superblock slot: the input bytes (zero-padded to the slot), optionally with the
 * CRC the parser expects, so the field checks behind the checksum get fuzzed too. */
static void put_slot(struct ftl_dev *dev, uint64_t off, const uint8_t *src, size_t len, bool fix)
{
	static uint8_t blk[4096] __attribute__((aligned(4096)));

	memset(blk, 0, sizeof(blk));
	memcpy(blk, src, len < FTL_SB_SIZE ? len : FTL_SB_SIZE);
	if (fix) {
		struct ftl_sb_disk *d = (struct ftl_sb_disk *)blk;
		d->crc = 0;
		d->crc = ftl_crc32c(0, d, FTL_SB_SIZE);
	}
	fz_check(ftl_dev_write(dev, blk, sizeof(blk), off), "superblock slot write");
}

/* What every caller of ftl_read_superblock relies on once it returned 0. */
static void check_geometry(const struct ftl_superblock_info *sb, uint64_t dev_size, uint32_t dbs)
{
	uint64_t meta_end, seg_bytes, data_end;
	const char *bad = NULL;

	if (sb->block_size < 4096 || sb->block_size > 65536 ||
	    (sb->block_size & (sb->block_size - 1)) || sb->block_size < dbs)
		bad = "block size";
	else if (sb->user_block_size < 4096 || sb->user_block_size > 65536 ||
	         (sb->user_block_size & (sb->user_block_size - 1)))
		bad = "user block size";
	else if (sb->segment_size < 2 * (uint64_t)sb->block_size ||
	         sb->segment_size % sb->block_size || sb->segment_count == 0)
		bad = "segment geometry";
	else if (sb->meta_offset < FTL_SB_OFFSET_B + FTL_SB_SIZE ||
	         sb->meta_offset % sb->block_size || sb->data_offset % sb->block_size)
		bad = "region alignment";
	else if (__builtin_add_overflow(sb->meta_offset, sb->meta_size, &meta_end) ||
	         meta_end > sb->data_offset)
		bad = "metadata region past the data";
	else if (__builtin_mul_overflow(sb->segment_size, (uint64_t)sb->segment_count,
	                                &seg_bytes) ||
	         __builtin_add_overflow(sb->data_offset, seg_bytes, &data_end) ||
	         data_end > dev_size)
		bad = "segments past the device";
	if (bad) {
		fprintf(stderr, "accepted a superblock with a bad %s\n", bad);
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ftl_superblock_info sb;
	uint8_t flags;
	struct ftl_dev *dev;
	int rc;

	if (size < 1)
		return 0;
	flags = data[0];
	data++;
	size--;
	dev = sb_devs[(flags & FZ_SB_BS512) ? 1 : 0][(flags >> FZ_SB_DEV_SHIFT) & 3];

	size_t la = size < FTL_SB_SIZE ? size : FTL_SB_SIZE;
	put_slot(dev, FTL_SB_OFFSET_A, data, la, flags & FZ_SB_FIX_A);
	put_slot(dev, FTL_SB_OFFSET_B, data + la, size - la, flags & FZ_SB_FIX_B);

	rc = ftl_read_superblock(dev, &sb);
	if (rc == 0)
		check_geometry(&sb, ftl_dev_size(dev), ftl_dev_block_size(dev));
	else if (rc != -EINVAL && rc != -EUCLEAN && rc != -EPROTONOSUPPORT && rc != -EFBIG &&
	         rc != -ENOMEM && rc != -EIO) {
		fprintf(stderr, "ftl_read_superblock: undocumented error %d\n", rc);
		abort();
	}

	/* Everything ftl_open derives from the superblock (pack limits, L2P size, buffers) and
	 * its scan of the (empty) segments. Opening writes nothing, so the device stays clean. */
	if (rc == 0 && (flags & FZ_SB_OPEN)) {
		struct ftl_config cfg = {.dev = dev};
		struct ftl *ftl = NULL;
		if (ftl_open(&cfg, &ftl) == 0) {
			struct ftl_stats st;
			char text[4096];
			ftl_get_stats(ftl, &st);
			ftl_stats_to_text(&st, text, sizeof(text));
			ftl_stats_to_json(&st, text, sizeof(text));
			ftl_close(ftl);
		}
	}
	return 0;
}
