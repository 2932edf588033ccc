/* tests/flash/test_ftl_truncated.c - a namespace on a device that became smaller than it (an
 * image cut short by a copy or a full disk): the superblocks say so with -EFBIG, even when only
 * copy A survived, and opening it is refused before anything is written.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ftl.h"

/* A memory device of NEW_SIZE bytes holding the first NEW_SIZE bytes of a formatted one. */
static struct ftl_dev *cut_copy(uint64_t new_size, uint64_t *ns_size)
{
	struct ftl_dev *big, *small;
	cr_assert_eq(ftl_dev_open_mem(16 << 20, 4096, &big), 0);
	struct ftl_format_params p = {.segment_size = 256 << 10, .meta_blocks = 256};
	cr_assert_eq(ftl_format(big, &p), 0);
	struct ftl_superblock_info sb;
	cr_assert_eq(ftl_read_superblock(big, &sb), 0);
	*ns_size = sb.device_size;
	cr_assert_eq(ftl_dev_open_mem(new_size, 4096, &small), 0);
	uint8_t *buf = malloc(4096);
	for (uint64_t off = 0; off < new_size; off += 4096) {
		cr_assert_eq(ftl_dev_read(big, buf, 4096, off), 0);
		cr_assert_eq(ftl_dev_write(small, buf, 4096, off), 0);
	}
	free(buf);
	ftl_dev_close(big);
	return small;
}

static void expect_truncated(uint64_t new_size)
{
	uint64_t ns_size;
	struct ftl_dev *dev = cut_copy(new_size, &ns_size);
	struct ftl_superblock_info sb = {0};
	cr_assert_eq(ftl_read_superblock(dev, &sb), -EFBIG, "device of %llu bytes",
	             (unsigned long long)new_size);
	cr_assert_eq(sb.device_size, ns_size, "the caller learns what the namespace needs");
	cr_assert_gt(sb.device_size, ftl_dev_size(dev));

	struct ftl_dev_stats before, after;
	ftl_dev_get_stats(dev, &before);
	struct ftl_config cfg = {.dev = dev};
	struct ftl *ftl = NULL;
	cr_assert_eq(ftl_open(&cfg, &ftl), -EFBIG);
	cr_assert_null(ftl);
	ftl_dev_get_stats(dev, &after);
	cr_assert_eq(after.writes, before.writes, "nothing written");
	cr_assert_eq(after.trims, before.trims, "nothing trimmed");
	ftl_dev_close(dev);
}

Test(ftl_super, device_cut_to_half_is_refused_as_truncated)
{
	expect_truncated(8 << 20);
}

Test(ftl_super, device_cut_before_copy_b_is_still_reported_as_truncated)
{
	expect_truncated(8 << 10); /* copy A only: not "not formatted" */
	expect_truncated(4 << 10);
}

Test(ftl_super, device_cut_after_copy_b_is_reported_as_truncated)
{
	expect_truncated(100 << 10);
}
